//! Minimising findings: for each new (subject, defects, signature) (`FindingKey`), the first pair
//! that shows it is shrunk (`crate::shrink::shrink`) and pinned (`report::pin`) into
//! `DIR/repros/SUBJECT-KIND-HASH.toml` (`SUBJECT+DEFECT-KIND-HASH.toml` with defects on:
//! `stem_of`), with a sidecar `.json` that records what the summary and the report need (the
//! first pair, op counts before and after, the finding's report text and its series).
//!
//! The file name hashes the signature (and names the defects), not the seed, so the same bug
//! found by another sweep, on another shard or another night gets the same name: promoting it
//! into `corpus/regressions/` twice keeps one file. Both files are written to a temporary name
//! and renamed, so a kill leaves either the whole pair of files or none; a resumed sweep redoes
//! only the findings without a sidecar of their own name.
//!
//! A `determinism` finding is not shrunk (the shrinker looks for a signature in one run, and this
//! one needs two): its repro is the original scenario, pinned to the first run's trace hash, so
//! `sim replay` shows the mismatch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::results::{PairKey, RunRecord};
use super::summary::InternalErrorSummary;
use super::{Source, SweepConfig, SweepError, run_pool};
use crate::findings::{Finding, FindingKind};
use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::{self, Outcome, RunOptions, determinism_finding};
use crate::shrink;

pub const REPROS_DIR: &str = "repros";

/// The sidecar of one minimised repro.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReproRecord {
    pub subject: String,
    pub signature: String,
    /// The first pair that showed the signature.
    pub scenario: String,
    pub defects: Vec<String>,
    pub seed: u64,
    /// The repro file, as a path from where the sweep ran.
    pub repro: String,
    /// Why no file was written at `repro`, when none was: it would have been too large to
    /// replay. The finding is recorded all the same, and `original_replay` reproduces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_written: Option<String>,
    pub ops_before: u64,
    pub ops_after: u64,
    pub shrink_runs: u64,
    pub shrunk: bool,
    /// The finding as `sim replay REPRO` prints it: from the run of the repro file (its ops
    /// located in it), or of the first pair when the scenario was kept whole.
    pub report: String,
    /// The resource's count per repetition in the first pair's run, for the plot.
    pub series: Vec<u64>,
    /// The command that replays the first pair before shrinking.
    pub original_replay: String,
    /// The first pair's `RunRecord::scenario_hash`: a repro of an earlier version of a scenario
    /// file is minimised again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_hash: Option<String>,
    /// Fields this build does not know (a newer build wrote them), kept as they were, in key
    /// order, so that a merge, which writes every sidecar again, passes them on.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl ReproRecord {
    pub fn key(&self) -> PairKey {
        PairKey {
            seed: self.seed,
            scenario: self.scenario.clone(),
            defects: self.defects.clone(),
        }
    }

    /// Whether this is the repro of `record`'s run (the same pair, the same scenario version).
    pub fn is_of(&self, record: &RunRecord) -> bool {
        self.key() == record.key() && self.scenario_hash == record.scenario_hash
    }

    /// Points the record (and its report text: the replay command, and the `--> FILE:LINE`
    /// lines that locate ops in the repro) at a repro file that moved.
    pub fn moved_to(mut self, repro: String) -> ReproRecord {
        self.report = self
            .report
            .replace(
                &report::replay_command(&self.repro),
                &report::replay_command(&repro),
            )
            .replace(&format!("--> {}:", self.repro), &format!("--> {repro}:"));
        self.repro = repro;
        self
    }
}

/// `SUBJECT-KIND-HASH`: stable for a signature, across seeds, shards and nights. The stem of a
/// finding with defects off (`stem_of` with none).
pub fn stem(subject: &str, signature: &str) -> String {
    stem_of(subject, &[], signature)
}

/// The file name stem of the finding `signature` of `subject` with `defects` on: `stem`'s
/// `SUBJECT-KIND-HASH` with defects off, `SUBJECT+DEFECT-KIND-HASH` with one on and
/// `SUBJECT+DEFECT+DEFECT-KIND-HASH` with more (the defect set: sorted, each once, as in
/// `FindingKey`). Each name is written with every character but an ASCII letter or digit as `-`;
/// `+`, which no name keeps, marks where the subject and each defect begin, so subject `x` with
/// defect `y` and subject `x-y` with none are two files. A finding is one per subject, defect set
/// and signature (`FindingKey`), so a bug found with defects off and a seeded defect's finding of
/// the same signature have a repro each. (`sim import-crash` names its files otherwise, which
/// promotion does not mind: it knows a regression by what it pins.)
pub fn stem_of(subject: &str, defects: &[String], signature: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    let kind = signature.split(':').next().unwrap_or("finding");
    let defects: String = defect_set(defects)
        .iter()
        .map(|defect| format!("+{}", clean(defect)))
        .collect();
    format!(
        "{}{defects}-{}-{}",
        clean(subject),
        clean(kind),
        stem_hash(signature_hash(signature))
    )
}

/// `defects` as a set: sorted, each once. Records keep the defects as their scenario or
/// `--defect` listed them (a resume knows a pair by them); a finding and its file name do not
/// depend on the order or on repeats.
pub(crate) fn defect_set(defects: &[String]) -> Vec<String> {
    let mut set = defects.to_vec();
    set.sort();
    set.dedup();
    set
}

/// What a finding is, for deduplication: the subject, the defect set on (`defect_set`) and the
/// signature. With the defects left out, a bug found with defects off (or with another defect
/// set) that signs as a seeded defect's finding was counted into it, its first pair and repro the
/// seeded one's, and never reported as a finding of its own. Made by `key_of`.
pub type FindingKey = (String, Vec<String>, String);

/// The `FindingKey` of `signature` found in a run of `subject` with `defects` on.
pub fn key_of(subject: &str, defects: &[String], signature: &str) -> FindingKey {
    (
        subject.to_string(),
        defect_set(defects),
        signature.to_string(),
    )
}

/// The `FindingKey` of a repro's finding.
pub fn finding_key(record: &ReproRecord) -> FindingKey {
    key_of(&record.subject, &record.defects, &record.signature)
}

/// Whether the sidecar at `path` has the name of its own finding (`stem_of`). One that does not
/// was written under another naming (an older sim's, which named a seeded finding as the one with
/// defects off is named now): its finding is minimised again under its own name, and the file may
/// be another finding's name, which that finding's repro then replaces.
pub fn is_named_for(path: &Path, record: &ReproRecord) -> bool {
    let own = stem_of(&record.subject, &record.defects, &record.signature);
    path.file_stem() == Some(std::ffi::OsStr::new(&own))
}

/// A signature's FNV-1a hash, which ends its `stem`.
fn signature_hash(signature: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in signature.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// How a `stem` writes its hash: eight lower-case hex digits.
fn stem_hash(hash: u32) -> String {
    format!("{hash:08x}")
}

/// Whether `name` ends as a `stem` does, in `-` and a hash as `stem_hash` writes it, after
/// something.
fn is_stem(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(rest, hash)| {
        !rest.is_empty()
            && u32::from_str_radix(hash, 16).is_ok_and(|value| stem_hash(value) == hash)
    })
}

/// The first record (smallest key) of every finding (`FindingKey`), in finding key order.
pub fn first_pairs(records: &[RunRecord]) -> BTreeMap<FindingKey, &RunRecord> {
    let mut first: BTreeMap<FindingKey, &RunRecord> = BTreeMap::new();
    for record in records {
        for signature in &record.signatures {
            let entry = first
                .entry(key_of(&record.subject, &record.defects, signature))
                .or_insert(record);
            if record.key() < entry.key() {
                *entry = record;
            }
        }
    }
    first
}

/// A sidecar that is there but could not be read: `FILE:LINE:COLUMN: why` (or `FILE: why`).
#[derive(Clone, Debug)]
pub struct BadSidecar {
    pub path: PathBuf,
    pub problem: String,
}

impl BadSidecar {
    /// The repro file name stem the sidecar belongs to (`stem`).
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A warning for each of `bad`: its problem, then what the command does about the file, which
/// `fate` says given which finding has the file's name (`named(subject, defects, signature)`:
/// `stem_of`).
pub fn bad_sidecar_warnings(
    bad: &[BadSidecar],
    fate: impl Fn(&dyn Fn(&str, &[String], &str) -> bool) -> String,
) -> Vec<String> {
    bad.iter()
        .map(|bad| {
            let file_stem = bad.stem();
            let named = |subject: &str, defects: &[String], signature: &str| {
                stem_of(subject, defects, signature) == file_stem
            };
            format!("{}; {}", bad.problem, fate(&named))
        })
        .collect()
}

/// The sidecars in a repros directory: the ones read, by file name, and the ones that could not
/// be (a half-edited or damaged file), each said by the caller together with what it does
/// about it.
pub struct Sidecars {
    pub read: Vec<(PathBuf, ReproRecord)>,
    pub bad: Vec<BadSidecar>,
}

/// Every sidecar in `dir`, by file name.
pub fn load_sidecars(dir: &Path) -> Sidecars {
    let mut sidecars = Sidecars {
        read: Vec::new(),
        bad: Vec::new(),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sidecars;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let shown = path.display().to_string();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| format!("{shown}: cannot read: {error}"))
            .and_then(|text| {
                serde_json::from_str::<ReproRecord>(&text).map_err(|error| {
                    super::results::json_error_at(&shown, Some("not a repro sidecar"), &error)
                })
            });
        match parsed {
            Ok(record) => sidecars.read.push((path, record)),
            Err(problem) => sidecars.bad.push(BadSidecar { path, problem }),
        }
    }
    sidecars
}

/// Writes `text` to `path` through a temporary file (`temporary_of`) and a rename.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = temporary_of(path);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// The temporary file `write_atomic` writes `path` through: `STEM.partial`.
pub fn temporary_of(path: &Path) -> PathBuf {
    path.with_extension("partial")
}

/// Writes a repro record's sidecar next to its repro file.
pub fn write_sidecar(dir: &Path, record: &ReproRecord) -> std::io::Result<()> {
    let name = format!(
        "{}.json",
        stem_of(&record.subject, &record.defects, &record.signature)
    );
    let text = serde_json::to_string_pretty(record).expect("sidecars serialize") + "\n";
    write_atomic(&dir.join(name), &text)
}

/// What a sweep has to minimise: the findings without an up-to-date sidecar, and the sidecars of
/// the others.
pub struct Pending {
    done: BTreeMap<FindingKey, ReproRecord>,
    todo: Vec<(usize, PairKey, String, String)>,
    /// Sidecars that could not be read, each with what happens to its finding.
    pub warnings: Vec<String>,
}

impl Pending {
    /// How many findings are to be minimised (0: every repro is up to date).
    pub fn to_minimise(&self) -> usize {
        self.todo.len()
    }
}

/// Sorts the findings (`FindingKey`) of `records` into those with an up-to-date sidecar in
/// `DIR/repros` and those to minimise.
pub fn pending(config: &SweepConfig, records: &[RunRecord]) -> Pending {
    let dir = config.out.join(REPROS_DIR);
    let sidecars = load_sidecars(&dir);
    let existing: BTreeMap<FindingKey, ReproRecord> = sidecars
        .read
        .into_iter()
        .filter(|(json, r)| r.not_written.is_some() || json.with_extension("toml").exists())
        // A sidecar under another finding's name (an older sim's) is not this one's repro: the
        // other finding is minimised into that name.
        .filter(|(json, r)| is_named_for(json, r))
        // The sidecar names its repro as the sweep that wrote it was told the directory; this
        // sweep may be told it from elsewhere, or the directory may have moved since, so the
        // repro is named where it is now, as this sweep's `--out` reaches it.
        .map(|(json, r)| {
            let repro = json.with_extension("toml").display().to_string();
            (finding_key(&r), r.moved_to(repro))
        })
        .collect();
    let source_index: BTreeMap<(&str, &[String]), usize> = config
        .sources
        .iter()
        .enumerate()
        .map(|(index, s)| ((s.label(), s.defects()), index))
        .collect();
    let mut done = BTreeMap::new();
    let mut todo = Vec::new();
    for (finding, record) in first_pairs(records) {
        let fresh = existing.get(&finding).filter(|r| r.is_of(record));
        let (subject, _, signature) = finding;
        match fresh {
            Some(sidecar) => {
                done.insert(finding_key(sidecar), sidecar.clone());
            }
            None => {
                let index = *source_index
                    .get(&(record.scenario.as_str(), record.defects.as_slice()))
                    .expect("records of the plan come from its sources");
                todo.push((index, record.key(), subject, signature));
            }
        }
    }
    let warnings = bad_sidecar_warnings(&sidecars.bad, |named| {
        match todo
            .iter()
            .find(|(_, key, subject, signature)| named(subject, &key.defects, signature))
        {
            Some((_, _, _, signature)) => format!(
                "the file is ignored, and its finding `{signature}` is minimised again, which replaces it"
            ),
            None => "the file is ignored and left as it is: no finding of this sweep has its name"
                .to_string(),
        }
    });
    Pending {
        done,
        todo,
        warnings,
    }
}

/// Removes the temporary files (`write_atomic`'s `STEM.partial`) that a sweep or merge killed
/// while writing a repro or sidecar left in the repros directory `dir`. Only names of the form a
/// sweep writes (`stem`'s `…-HHHHHHHH.partial`) are touched; the caller holds the directory's
/// results lock (`super::remove_stale_temporaries`), so no other sweep or merge is writing them.
pub(super) fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let is_ours = path.extension().is_some_and(|e| e == "partial")
            && path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .is_some_and(is_stem);
        if is_ours {
            // Best effort: a file that cannot be removed is overwritten by the next write anyway.
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// What `minimise_all` made: the sidecars of every finding it has one for, and the findings sim's
/// own code panicked while minimising.
pub struct Minimised {
    /// In finding key (`FindingKey`) order.
    pub sidecars: Vec<ReproRecord>,
    /// In the order of their first pairs (then signatures), whichever worker met them first.
    pub internal_errors: Vec<InternalErrorSummary>,
    /// That fewer minimising workers than asked could start a thread (`Shortfall::warning`).
    pub warnings: Vec<String>,
}

/// Minimises every finding `pending` has to, in parallel, and returns the sidecars of all of
/// them in finding key (`FindingKey`) order.
///
/// A panic of sim's own code while minimising one finding (shrinking its first pair, writing its
/// repro) costs that finding's repro alone: the finding is reported without one, replayed by its
/// first pair's command, as one whose sidecar is missing; the panic is an internal error of the
/// sweep, beside those of the pairs it could not run (exit 3); and the other findings are
/// minimised. With no sidecar written, a resume minimises the finding again: it meets and reports
/// the bug again, or, with sim fixed, writes the repro.
pub fn minimise_all(
    registry: &Registry,
    config: &SweepConfig,
    pending: Pending,
) -> Result<Minimised, SweepError> {
    let dir = config.out.join(REPROS_DIR);
    let Pending { mut done, todo, .. } = pending;
    let jobs = config.jobs.max(1).min(todo.len().max(1));
    let states: Vec<Vec<Source>> = (0..jobs)
        .map(|_| config.sources.iter().map(Source::duplicate).collect())
        .collect();
    let mut broken: Vec<InternalErrorSummary> = Vec::new();
    let (dir, shrink_runs_max) = (&dir, config.shrink_runs_max);
    let shortfall = run_pool(
        &todo,
        states,
        |sources, (index, key, subject, signature)| {
            // A repro that cannot be written costs that finding its repro alone, as a panic
            // while minimising it does: the sweep goes on and writes its summary.
            minimise_one(
                registry,
                &sources[*index],
                key,
                subject,
                signature,
                dir,
                shrink_runs_max,
            )
        },
        |sources, (index, key, subject, signature), payload| {
            // With where it panicked, which the CLI's quiet hook recorded on this thread.
            let panic = crate::subject::internal_panic_text(&*payload);
            let error = InternalErrorSummary {
                scenario: key.scenario.clone(),
                subject: subject.clone(),
                defects: key.defects.clone(),
                seed: key.seed,
                replay: sources[*index].original_replay(key.seed),
                message: format!(
                    "while minimising `{signature}` (its repro is not written; the finding stands): {panic}"
                ),
                minimising: Some(signature.clone()),
                subject_code: payload.is::<crate::subject::SubjectCodePanic>(),
            };
            Err(Box::new(error))
        },
        |result| match result {
            Ok(record) => {
                done.insert(finding_key(&record), record);
                true
            }
            Err(error) => {
                broken.push(*error);
                true
            }
        },
    );
    let mut warnings = Vec::new();
    if let Some(shortfall) = shortfall {
        if shortfall.started == 0 {
            return Err(shortfall.none_started("minimising", config.jobs));
        }
        warnings.push(shortfall.warning("minimising"));
    }
    broken.sort_by(|a, b| a.order().cmp(&b.order()));
    Ok(Minimised {
        sidecars: done.into_values().collect(),
        internal_errors: broken,
        warnings,
    })
}

/// How the message of an internal error begins when a finding's repro or sidecar could not be
/// written (`is_repro_write_failure`): no panic, and no bug in sim.
const REPRO_WRITE_FAILED: &str = "could not write the repro of `";

/// Whether an internal error's message says a finding's repro could not be written, rather than
/// that sim's own code panicked.
pub fn is_repro_write_failure(message: &str) -> bool {
    message.starts_with(REPRO_WRITE_FAILED)
}

/// Shrinks one finding and writes its repro and sidecar. A repro or sidecar that cannot be
/// written (a full disk) is the finding's internal error, as a panic while minimising it is.
pub fn minimise_one(
    registry: &Registry,
    source: &Source,
    key: &PairKey,
    subject: &str,
    signature: &str,
    dir: &Path,
    shrink_runs_max: u64,
) -> Result<ReproRecord, Box<InternalErrorSummary>> {
    let scenario = source.instantiate(registry, key.seed);
    let original = scenario.run(RunOptions::default());
    let repro_path = dir.join(format!(
        "{}.toml",
        stem_of(subject, &key.defects, signature)
    ));
    let repro = repro_path.display().to_string();
    let replay = report::replay_command(&repro);
    let ops_before = scenario.meta().op_count as u64;
    let (finding, pinned, ops_after, shrink_runs, shrunk): (Finding, _, u64, u64, bool) =
        match original
            .findings
            .iter()
            .find(|f| f.signature() == signature)
        {
            Some(finding) if finding.kind != FindingKind::Determinism => {
                // A seeded defect's repro stays about the defect, as `import-crash`'s does.
                let result = shrink::shrink_repro(
                    scenario.as_ref(),
                    signature,
                    shrink_runs_max,
                    shrink::is_about_its_defects(scenario.as_ref()),
                );
                let last = result.scenario.run(RunOptions::default());
                let pinned = report::pin(result.scenario.as_ref(), &last);
                (
                    finding.clone(),
                    pinned,
                    result.ops_after as u64,
                    result.runs,
                    true,
                )
            }
            _ => {
                // A determinism finding, or a signature that did not come back on this run
                // (which is itself nondeterminism): keep the scenario whole.
                let second = scenario.run(RunOptions::default());
                let mut finding = determinism_finding(&original, &second);
                if !signature.starts_with("determinism:") {
                    finding = finding.note(format!(
                        "the sweep saw `{signature}` on this pair; this run of it did not"
                    ));
                }
                if second.trace_hash != original.trace_hash {
                    let comparison = runner::compare_traces(|sink| {
                        scenario.run(RunOptions {
                            trace_sink: Some(sink),
                            ..RunOptions::default()
                        })
                    });
                    finding = runner::with_trace_comparison(finding, &comparison, |spawn| {
                        scenario.spawned_thread(spawn)
                    });
                }
                let pinned = report::pin(scenario.as_ref(), &original);
                (finding, pinned, ops_before, 0, false)
            }
        };
    let original_replay = source.original_replay(key.seed);
    let header = format!(
        "# Repro written by `sim sweep` for `{signature}`.\n# Minimised from `{original_replay}` ({ops_before} ops -> {ops_after} ops).\n{}",
        report::replay_line(&repro)
    );
    let io_error = |e: std::io::Error| {
        Box::new(InternalErrorSummary {
            scenario: key.scenario.clone(),
            subject: subject.to_string(),
            defects: key.defects.clone(),
            seed: key.seed,
            replay: source.original_replay(key.seed),
            message: format!(
                "{REPRO_WRITE_FAILED}{signature}` (the finding stands): {}: cannot write: {e}",
                repro_path.display()
            ),
            minimising: Some(signature.to_string()),
            subject_code: false,
        })
    };
    // A repro `sim replay` would refuse (too large), or one that does not print (an op TOML
    // cannot hold, which a subject's own deserializer may make), is not written; the finding is
    // recorded all the same, with why, and the command that replays the first pair names how to
    // reproduce it.
    let (repro_text, why_not_written) = match pinned.to_toml() {
        Ok(body) => {
            let text = format!("{header}{body}");
            let too_large = report::check_scenario_file_size(text.len()).err();
            (text, too_large.map(|why| why.to_string()))
        }
        Err(why) => (
            String::new(),
            Some(format!("the scenario does not print: {why}")),
        ),
    };
    let not_written = why_not_written.map(|why| {
        format!("no repro file was written: {why}; `{original_replay}` reproduces the finding")
    });
    if not_written.is_none() {
        write_atomic(&repro_path, &repro_text).map_err(io_error)?;
    }
    // The report a reader gets is the repro's own, as `sim replay` prints it: its ops are the
    // ones in the file beside it, each pointed at by line. The original run's would name ops
    // the shrinker cut, and the run of a generated scenario has no file to point into.
    // The plot keeps the first pair's series: the shrinker may have cut the repetitions that
    // show the count climbing.
    let series = finding.series.clone();
    // The repro as `sim replay` reads it, when one was written. A determinism finding is made
    // from runs of the whole scenario (it is not shrunk): it keeps its report, with its ops
    // located in the repro, which pins that scenario; so does a finding whose repro's run does
    // not show it.
    let written = match &not_written {
        None => registry.parse(&repro, &repro_text).ok(),
        Some(_) => None,
    };
    let replayed = written
        .as_deref()
        .filter(|_| shrunk)
        .and_then(|scenario| replayed(scenario, signature));
    let (finding, reported) = match replayed {
        Some(replayed) => replayed,
        None => {
            let mut finding = finding;
            if let Some(scenario) = &written {
                report::locate_finding(&mut finding, scenario.as_ref());
            }
            (finding, original)
        }
    };
    let (finding, replay) = match &not_written {
        Some(note) => (finding.note(note.clone()), original_replay.clone()),
        None => (finding, replay),
    };
    let record = ReproRecord {
        subject: subject.to_string(),
        signature: signature.to_string(),
        scenario: key.scenario.clone(),
        defects: key.defects.clone(),
        seed: key.seed,
        repro,
        not_written,
        ops_before,
        ops_after,
        shrink_runs,
        shrunk,
        report: report::render_finding(&finding, &reported, &replay),
        series,
        original_replay,
        scenario_hash: source.content_hash().map(str::to_string),
        unknown: BTreeMap::new(),
    };
    write_sidecar(dir, &record).map_err(io_error)?;
    Ok(record)
}

/// The finding `signature` as a replay of the repro file `scenario` was read from shows it,
/// with its ops located in that file; `None` if its run lacks the finding (the report of the
/// original run is kept then).
fn replayed(scenario: &dyn DynScenario, signature: &str) -> Option<(Finding, Outcome)> {
    let mut outcome = scenario.run(RunOptions::default());
    report::locate(&mut outcome, scenario);
    let finding = outcome
        .findings
        .iter()
        .find(|f| f.signature() == signature)?
        .clone();
    Some((finding, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_repro_is_named_where_it_is_now_by_its_replay_command_and_its_op_locations() {
        let report = "error[leak]: 1 heap block (16 B) not released\n  acquired: op #1 `create` (lifecycle 1, repetition 1, thread 0)\n    --> out/repros/a.toml:12:3 (ops)\nnote: replay with `sim replay out/repros/a.toml`\n";
        let record = ReproRecord {
            subject: "counter".into(),
            signature: "leak:heap block:counter_create".into(),
            scenario: "gen".into(),
            defects: Vec::new(),
            seed: 3,
            repro: "out/repros/a.toml".into(),
            not_written: None,
            ops_before: 6,
            ops_after: 1,
            shrink_runs: 4,
            shrunk: true,
            report: report.into(),
            series: Vec::new(),
            original_replay: String::new(),
            scenario_hash: None,
            unknown: BTreeMap::new(),
        };
        let moved = record.moved_to("merged/repros/a.toml".into());
        assert_eq!(moved.repro, "merged/repros/a.toml");
        assert_eq!(moved.report, report.replace("out/repros", "merged/repros"));
    }

    #[test]
    fn stems_depend_on_subject_and_signature_only() {
        let a = stem("wasi-runtime", "leak:rwlock:fd_prestats_init");
        assert!(a.starts_with("wasi-runtime-leak-"), "{a}");
        assert_eq!(a, stem("wasi-runtime", "leak:rwlock:fd_prestats_init"));
        assert_ne!(a, stem("wasi-runtime", "leak:mutex:fd_prestats_init"));
        assert_ne!(a, stem("counter", "leak:rwlock:fd_prestats_init"));
    }

    /// With defects off a stem is `stem`'s; with some it names them, so that the finding of a
    /// seeded defect and a bug of the same signature found with defects off have a file each.
    #[test]
    fn stems_name_the_defects_on() {
        let signature = "leak:heap block:counter_create";
        assert_eq!(
            stem_of("counter", &[], signature),
            stem("counter", signature)
        );
        let seeded = stem_of("counter", &["leak-on-evict".into()], signature);
        assert!(
            seeded.starts_with("counter+leak-on-evict-leak-"),
            "{seeded}"
        );
        assert_ne!(seeded, stem("counter", signature));
        assert!(is_stem(&seeded));
        let two = stem_of("counter", &["a".into(), "b".into()], signature);
        assert!(two.starts_with("counter+a+b-leak-"), "{two}");
        // Where the subject ends and each defect begins is in the name: `-` alone, which names
        // hold, made these one.
        assert_ne!(
            stem_of("x", &["y".into()], signature),
            stem("x-y", signature)
        );
        assert_ne!(two, stem_of("counter", &["a-b".into()], signature));
    }

    /// A defect set's stem and finding key are the set's: neither the order the defects were
    /// listed in nor a repeat makes another finding or another file.
    #[test]
    fn stems_and_finding_keys_take_the_defects_as_a_set() {
        let signature = "leak:rwlock:fd_prestats_init";
        let listed =
            |defects: &[&str]| -> Vec<String> { defects.iter().map(|d| d.to_string()).collect() };
        let (ab, ba) = (listed(&["a", "b"]), listed(&["b", "a", "b"]));
        assert_eq!(stem_of("x", &ab, signature), stem_of("x", &ba, signature));
        assert_eq!(key_of("x", &ab, signature), key_of("x", &ba, signature));
        assert_eq!(key_of("x", &ba, signature).1, ab);
        let once = listed(&["p"]);
        assert_eq!(
            stem_of("x", &listed(&["p", "p"]), signature),
            stem_of("x", &once, signature)
        );
    }

    /// A sidecar counts as its finding's repro only under that finding's own name.
    #[test]
    fn a_sidecar_is_named_for_its_finding_under_its_own_stem_alone() {
        let signature = "leak:heap block:counter_create";
        let record = ReproRecord {
            subject: "counter".into(),
            signature: signature.into(),
            scenario: "s.toml".into(),
            defects: vec!["leak-on-evict".into(), "leak-on-evict".into()],
            seed: 0,
            repro: String::new(),
            not_written: None,
            ops_before: 1,
            ops_after: 1,
            shrink_runs: 0,
            shrunk: false,
            report: String::new(),
            series: Vec::new(),
            original_replay: String::new(),
            scenario_hash: None,
            unknown: BTreeMap::new(),
        };
        let own = stem_of("counter", &["leak-on-evict".into()], signature);
        assert!(is_named_for(
            Path::new(&format!("out/repros/{own}.json")),
            &record
        ));
        let older = stem("counter", signature);
        assert!(!is_named_for(
            Path::new(&format!("out/repros/{older}.json")),
            &record
        ));
    }

    /// What `remove_stale_partials` takes for a sweep's own file: a name that ends as a stem does.
    #[test]
    fn a_name_is_a_stem_when_it_ends_in_a_hash_as_stems_write_it() {
        assert!(is_stem(&stem("counter", "leak:heap block:counter_create")));
        assert!(is_stem("x-0000abcd"));
        for name in [
            "-0000abcd",
            "x-0000ABCD",
            "x-+000abcd",
            "x-abcd",
            "x-0000abcde",
            "x",
        ] {
            assert!(!is_stem(name), "{name}");
        }
    }
}
