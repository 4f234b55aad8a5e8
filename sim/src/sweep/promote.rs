//! Promotion: copying chosen repros into `corpus/regressions/`, where every finding ever made is
//! kept and replayed. Only files that parse and pin at least one signature are taken. A repro
//! whose finding a regression already pins (the same subject and defects, and every signature it
//! pins among that file's) is not copied: the file that pins it is named instead. Regressions are
//! known by what they pin, read as the replay reads them, not by their names, which differ by
//! who wrote them (`sim sweep` names a repro SUBJECT-KIND-HASH with defects off and
//! SUBJECT+DEFECT-KIND-HASH with some, `sim import-crash` SUBJECT-DEFECTS-KIND-HASH, its defects
//! joined by `+` or `no-defects`). A file of the repro's name that pins something else is kept
//! too.
//!
//! Replaying: `replay_regressions` checks a directory of regressions (this repository's
//! `corpus/regressions/`, or one of a crate's own, which its binary's `import-crash` fills) as
//! `cargo test` does, and returns what no longer holds.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::registry::{DynScenario, Registry};
use crate::report::{self, PinnedDifference};
use crate::runner::RunOptions;

/// The directory `sim promote` and `sim sweep --promote` copy into.
pub const REGRESSIONS_DIR: &str = "corpus/regressions";

/// The subdirectory of a regressions directory that holds its open findings: real bugs not fixed
/// yet, which must still fail (`replay_regressions`), and where `sim import-crash` puts a finding
/// that fails with every defect off.
pub const OPEN_DIR: &str = "open";

/// `dir`'s subdirectory of open findings (`OPEN_DIR`).
pub fn open_dir(dir: &Path) -> PathBuf {
    dir.join(OPEN_DIR)
}

/// Makes sure `dir` is a directory that promotion can copy into, creating it if need be. A sweep
/// with `--promote` calls it before its runs, so that a target that cannot be one (a regular file
/// in its place, say) fails in a second rather than after hours of runs and minimising. A file in
/// its place is said as what it is: the OS's "File exists" reads as if the directory were there.
pub fn prepare_target(dir: &Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "{}: cannot promote repros into it: it is a file, not a directory; give a directory",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot promote repros into it: {e}", dir.display()))
}

/// What a regression pins: its subject, its defects and its signatures, each list sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pins {
    subject: String,
    defects: Vec<String>,
    signatures: Vec<String>,
}

impl Pins {
    fn new(subject: String, defects: Vec<String>, mut signatures: Vec<String>) -> Pins {
        // The set a finding is keyed by, so that a pin and a finding compare alike.
        let defects = super::minimise::defect_set(&defects);
        signatures.sort();
        signatures.dedup();
        Pins {
            subject,
            defects,
            signatures,
        }
    }

    fn of(scenario: &dyn DynScenario) -> Pins {
        let meta = scenario.meta();
        Pins::new(meta.subject, meta.defects, pinned_signatures(scenario))
    }

    /// Whether a regression pinning `self` already holds what `other` would pin: the same
    /// subject with the same defects, and every signature of `other` among its own.
    fn covers(&self, other: &Pins) -> bool {
        self.subject == other.subject
            && self.defects == other.defects
            && other
                .signatures
                .iter()
                .all(|signature| self.signatures.contains(signature))
    }
}

/// The regressions of `dir` and `dir/open/`, with what each pins, parsed as `replay_regressions`
/// parses them. A file that does not parse or pins nothing is left out: it pins nothing a repro
/// could repeat, and the replay reports it.
fn existing_pins(registry: &Registry, dir: &Path) -> Vec<(PathBuf, Pins)> {
    [dir.to_path_buf(), open_dir(dir)]
        .iter()
        .flat_map(|list| toml_files_in(list).unwrap_or_default())
        .filter_map(|file| {
            let (scenario, _) = load_regression(registry, &file).ok()?;
            Some((file, Pins::of(scenario.as_ref())))
        })
        .collect()
}

/// The regression of `dir` (or `dir/open/`) that already pins `signature` for `subject` run with
/// `defects`, if one does: `sim import-crash` asks before it spends its runs on shrinking.
pub fn pinned_by(
    registry: &Registry,
    dir: &Path,
    subject: &str,
    defects: &[String],
    signature: &str,
) -> Option<PathBuf> {
    let wanted = Pins::new(
        subject.to_string(),
        defects.to_vec(),
        vec![signature.to_string()],
    );
    existing_pins(registry, dir)
        .into_iter()
        .find(|(_, held)| held.covers(&wanted))
        .map(|(file, _)| file)
}

/// Copies each repro file into `dir`, unless a regression there already pins its finding; returns
/// one line per file saying what happened.
pub fn promote(registry: &Registry, files: &[PathBuf], dir: &Path) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut existing = existing_pins(registry, dir);
    for file in files {
        let label = file.display().to_string();
        let bytes = report::read_scenario_file(file).map_err(|error| error.to_string())?;
        let scenario = registry
            .parse_bytes(&label, &bytes)
            .map_err(|diagnostic| diagnostic.to_string())?;
        let text = String::from_utf8_lossy(&bytes);
        let pins = Pins::of(scenario.as_ref());
        if pins.signatures.is_empty() {
            return Err(format!(
                "{label}: not a repro: it pins no finding (no `signatures` under [expect]); write one with `sim sweep` or `sim shrink`"
            ));
        }
        let signatures = pins.signatures.join(", ");
        let name = file
            .file_name()
            .ok_or_else(|| format!("{label}: not a file name"))?;
        let target = dir.join(name);
        let rewritten = report::with_replay_line(&text, &target.display().to_string());
        let same_file = std::fs::read_to_string(&target).ok().as_deref() == Some(&rewritten);
        if same_file {
            lines.push(format!("{}: already promoted", target.display()));
            continue;
        }
        if let Some((pinned_by, _)) = existing.iter().find(|(_, held)| held.covers(&pins)) {
            lines.push(format!(
                "{label}: not promoted: {} is already pinned by {}",
                signatures,
                pinned_by.display()
            ));
            continue;
        }
        if target.exists() {
            lines.push(format!(
                "{}: already there, and pins something else than {label} ({}); kept it, and {label} was not copied (copy it under another name to keep both)",
                target.display(),
                signatures
            ));
            continue;
        }
        prepare_target(dir)?;
        std::fs::write(&target, rewritten)
            .map_err(|e| format!("{}: cannot write: {e}", target.display()))?;
        existing.push((target.clone(), pins));
        lines.push(format!(
            "promoted {label} -> {} ({})",
            target.display(),
            signatures
        ));
    }
    Ok(lines)
}

/// A regression file that no longer holds, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegressionFailure {
    pub file: PathBuf,
    pub problem: String,
}

impl fmt::Display for RegressionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

/// Every regression of a directory that no longer holds. Prints one failure per line, for `{:?}`
/// too, so that a test's `replay_regressions(…).unwrap()` reads like the list it is.
#[derive(Clone, PartialEq, Eq)]
pub struct RegressionFailures(pub Vec<RegressionFailure>);

impl fmt::Display for RegressionFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        let plural = if count == 1 { "" } else { "s" };
        writeln!(f, "{count} problem{plural} in regression files:")?;
        for failure in &self.0 {
            writeln!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RegressionFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for RegressionFailures {}

/// Replays every regression file in `dir` with the subjects of `registry`, as `cargo test` replays
/// this repository's `corpus/regressions/` (`sim/tests/regressions.rs`), and returns how many
/// files it replayed, or every one that no longer holds. A crate that keeps the regressions its
/// binary's `import-crash` writes calls it from a test of its own:
///
/// ```no_run
/// # fn registry() -> sim::registry::Registry { sim::registry::Registry::builtin() }
/// // In a `#[test]` function; `registry()` is the one your binary's `main` passes to `main_with`.
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
/// sim::fuzzing::replay_regressions(&registry(), &dir).unwrap();
/// ```
///
/// Each `*.toml` file directly in `dir` must parse and pin `[expect] signatures`. One with
/// defects (a seeded bug) must show every signature it pins with its defects on, and nothing it
/// does not pin; with every defect off it must pass, as must one without defects (a real bug,
/// fixed: it must not come back). Each file in `dir/open/` (a real bug not fixed yet, where
/// `import-crash` puts a finding that fails with every defect off) must still show the
/// signatures it pins, so that it stays a working repro; once it passes, it belongs in `dir`.
/// A `dir` that cannot be read is a failure; a `dir` without `open/` is not.
pub fn replay_regressions(registry: &Registry, dir: &Path) -> Result<usize, RegressionFailures> {
    let mut failures = Vec::new();
    let mut replayed = 0;
    let open = open_dir(dir);
    let lists = [(dir.to_path_buf(), false), (open.clone(), true)];
    for (list, is_open) in lists {
        if is_open && !open.is_dir() {
            continue;
        }
        let files = match toml_files_in(&list) {
            Ok(files) => files,
            Err(problem) => {
                failures.push(RegressionFailure {
                    file: list,
                    problem,
                });
                continue;
            }
        };
        for file in files {
            replayed += 1;
            let problems = match load_regression(registry, &file) {
                Err(problem) => vec![problem],
                Ok((scenario, pinned)) if is_open => {
                    open_finding_problems(scenario.as_ref(), &pinned, dir)
                }
                Ok((scenario, pinned)) => regression_problems(scenario.as_ref(), &pinned),
            };
            failures.extend(problems.into_iter().map(|problem| RegressionFailure {
                file: file.clone(),
                problem,
            }));
        }
    }
    if failures.is_empty() {
        Ok(replayed)
    } else {
        Err(RegressionFailures(failures))
    }
}

/// The `.toml` files directly in `dir`, sorted.
fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read the directory: {e}"))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The signatures `scenario` pins (`[expect] signatures`); none when it has no `[expect]`.
fn pinned_signatures(scenario: &dyn DynScenario) -> Vec<String> {
    let expect = scenario.meta().expect;
    expect.map(|expect| expect.signatures).unwrap_or_default()
}

/// The regression in `file`, parsed, with the signatures it pins; a failure when it cannot be.
fn load_regression(
    registry: &Registry,
    file: &Path,
) -> Result<(Box<dyn DynScenario>, Vec<String>), String> {
    let bytes = report::read_scenario_file(file).map_err(|error| match error {
        // The caller names the file.
        report::ScenarioFileError::Unreadable(_, e) => format!("cannot read: {e}"),
        report::ScenarioFileError::TooLarge(diagnostic) => diagnostic.to_string(),
    })?;
    let scenario = registry
        .parse_bytes(&file.display().to_string(), &bytes)
        .map_err(|diagnostic| diagnostic.to_string())?;
    let pinned = pinned_signatures(scenario.as_ref());
    if pinned.is_empty() {
        return Err("a regression pins `[expect] signatures`, and this file pins none".to_string());
    }
    Ok((scenario, pinned))
}

/// What no longer holds of a regression in the main directory (see `replay_regressions`).
fn regression_problems(scenario: &dyn DynScenario, pinned: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let defects = scenario.meta().defects;
    if !defects.is_empty() {
        let (shown, difference) = run_against_pins(scenario, pinned);
        for signature in &difference.not_shown {
            problems.push(format!(
                "with defects [{}] the run no longer shows `{signature}` (it shows {shown:?})",
                defects.join(",")
            ));
        }
        // Nothing else either: a finding the file does not pin is a new bug or a misreport (such
        // as blaming a site that only replaced what it released).
        for signature in &difference.not_pinned {
            problems.push(format!(
                "with defects [{}] the run also shows `{signature}`, which the file does not pin",
                defects.join(",")
            ));
        }
    }
    let without = scenario.run(RunOptions {
        defects: Some(Vec::new()),
        ..RunOptions::default()
    });
    if !without.passed() {
        problems.push(format!(
            "with every defect off the run fails: {:?}",
            without.signatures()
        ));
    }
    problems
}

/// What no longer holds of an open finding in `dir/open/`: it must still fail as it pins.
fn open_finding_problems(scenario: &dyn DynScenario, pinned: &[String], dir: &Path) -> Vec<String> {
    let (shown, difference) = run_against_pins(scenario, pinned);
    difference
        .not_shown
        .iter()
        .map(|signature| {
            format!(
                "`{signature}` no longer appears (it shows {shown:?}); if the bug is fixed, move the \
                 file up to {}/, where it must pass",
                dir.display()
            )
        })
        .collect()
}

/// The signatures a regression's run shows with its own defects, and how they differ from those
/// it pins.
fn run_against_pins(
    scenario: &dyn DynScenario,
    pinned: &[String],
) -> (Vec<String>, PinnedDifference) {
    let shown = scenario.run(RunOptions::default()).signatures();
    let difference = PinnedDifference::of(pinned, &shown);
    (shown, difference)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's line is rewritten whatever path it named, with its line end; a `# Replay:`
    /// past the leading comments (in the scenario's own text) is not the header's and is kept.
    #[test]
    fn the_replay_line_of_the_header_names_the_new_path_and_nothing_else_changes() {
        let text = "# Repro written by `sim sweep`.\r\n# Replay: sim replay /tmp/out/repros/a.toml\r\nsubject = \"counter\"\n# Replay: kept\n";
        assert_eq!(
            report::with_replay_line(text, "corpus/regressions/a.toml"),
            text.replace("/tmp/out/repros/a.toml", "corpus/regressions/a.toml")
        );
        let without = "# Shrunk by hand.\nsubject = \"counter\"\n# Replay: not a header\n";
        assert_eq!(report::with_replay_line(without, "x.toml"), without);
    }
}
