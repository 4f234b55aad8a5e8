//! UI tests: a scenario file with a blessed expected report is a test, so a change to a report
//! shows up as a reviewed diff.
//!
//! Every `tests/ui/NAME.toml` runs as `sim run tests/ui/NAME.toml --repro-dir DIR` and its stdout
//! must equal `tests/ui/NAME.stdout`. Every zoo scenario (`scenarios/zoo/NAME.toml`, one per real
//! bug) is a case too, blessed in `tests/ui/zoo/NAME.stdout`. A first line
//! `# ui-args: --no-defects --json` adds arguments for one case. A zoo scenario must also keep its
//! contract (DESIGN.md): it passes with `--no-defects` (exit 0).
//!
//! Volatile parts are normalised before comparing: the temporary repro directory prints as
//! `$REPROS`. Paths are relative to the workspace root, where the command runs.
//!
//! To accept new output after reviewing it: `make bless` (which runs this test with `SIM_BLESS=1`
//! and rewrites the expected files; `git diff` then shows what changed).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{SIM, scratch_dir, toml_files_in, workspace_root};

struct Case {
    /// The scenario, relative to the workspace root.
    scenario: String,
    /// The blessed stdout, absolute.
    expected: PathBuf,
    args: Vec<String>,
    /// A zoo scenario: it must pass with `--no-defects` (DESIGN.md). Most fail as written; a
    /// control scenario may not, and its blessed report shows which it is.
    zoo: bool,
}

fn args_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# ui-args:"))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn cases() -> Vec<Case> {
    let root = workspace_root();
    let ui = root.join("sim/tests/ui");
    let mut cases = Vec::new();
    for (dir, expected_dir) in [
        (ui.clone(), ui.clone()),
        (root.join("scenarios/zoo"), ui.join("zoo")),
    ] {
        for path in toml_files_in(&dir) {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            cases.push(Case {
                scenario: path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                expected: expected_dir.join(format!("{stem}.stdout")),
                args: args_of(&path),
                zoo: dir.ends_with("zoo"),
            });
        }
    }
    cases
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_case(case: &Case, repro_dir: &Path, extra: &[&str]) -> Ran {
    let repro = repro_dir.display().to_string();
    let output = Command::new(SIM)
        .arg("run")
        .arg(&case.scenario)
        .args(["--repro-dir", &repro])
        .args(&case.args)
        .args(extra)
        .current_dir(workspace_root())
        .output()
        .expect("run sim");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).replace(&repro, "$REPROS"),
        stderr: String::from_utf8_lossy(&output.stderr).replace(&repro, "$REPROS"),
    }
}

/// A line diff (longest common subsequence), `-` expected, `+` actual, with two lines of context.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].0 != ' ').collect();
    let near = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= 2);
    let mut out = String::new();
    let mut skipped = false;
    for (k, (mark, line)) in lines.iter().enumerate() {
        if near(k) {
            out.push_str(&format!("{mark} {line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str("  ...\n");
            skipped = true;
        }
    }
    out
}

#[test]
fn reports_match_their_blessed_output() {
    let bless = std::env::var_os("SIM_BLESS").is_some_and(|v| v != "0");
    let cases = cases();
    assert!(
        cases
            .iter()
            .any(|c| c.scenario.starts_with("sim/tests/ui/")),
        "no UI cases found"
    );
    let tmp = scratch_dir("ui-repros");
    let mut problems = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let repro_dir = tmp.join(index.to_string());
        let ran = run_case(case, &repro_dir, &[]);
        if case.zoo {
            let off = run_case(case, &repro_dir.join("no-defects"), &["--no-defects"]);
            if off.code != Some(0) {
                problems.push(format!(
                    "{}: a zoo scenario must pass with --no-defects, but exits {:?}:\n{}",
                    case.scenario, off.code, off.stdout
                ));
            }
        }
        // The exit code agrees with the verdict the report prints, and nothing goes to stderr.
        let verdict_fail =
            ran.stdout.contains("\"verdict\": \"fail\"") || ran.stdout.contains("\nfail: ");
        let expected_code = if verdict_fail { 1 } else { 0 };
        if ran.code != Some(expected_code) {
            problems.push(format!(
                "{}: exit {:?}, but the report's verdict means {expected_code}\n{}",
                case.scenario, ran.code, ran.stderr
            ));
        }
        if !ran.stderr.is_empty() {
            problems.push(format!(
                "{}: unexpected stderr:\n{}",
                case.scenario, ran.stderr
            ));
        }
        // A failing run writes exactly the repro its report names.
        if verdict_fail {
            let named = ran.stdout.contains("sim replay $REPROS/");
            let written = std::fs::read_dir(&repro_dir).map_or(0, |d| d.count());
            if !named || written != 1 {
                problems.push(format!(
                    "{}: the report names a repro: {named}; repro files written: {written}",
                    case.scenario
                ));
            }
        }
        if bless {
            std::fs::create_dir_all(case.expected.parent().unwrap()).unwrap();
            std::fs::write(&case.expected, &ran.stdout).unwrap();
            continue;
        }
        match std::fs::read_to_string(&case.expected) {
            Err(_) => problems.push(format!(
                "{}: no blessed output at {}; review the report and run `make bless`",
                case.scenario,
                case.expected.display()
            )),
            Ok(expected) if expected != ran.stdout => problems.push(format!(
                "{}: the report differs from {} (`make bless` accepts it):\n{}",
                case.scenario,
                case.expected.display(),
                diff(&expected, &ran.stdout)
            )),
            Ok(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_blessed_file_has_its_scenario() {
    let root = workspace_root();
    let expected: Vec<PathBuf> = cases().into_iter().map(|c| c.expected).collect();
    let mut stale = Vec::new();
    for dir in [root.join("sim/tests/ui"), root.join("sim/tests/ui/zoo")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "stdout") && !expected.contains(&path) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "blessed output without a scenario (delete it): {stale:?}"
    );
}

#[test]
fn the_diff_marks_changed_lines() {
    let shown = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(shown, "  a\n- b\n+ B\n  c\n");
    assert_eq!(diff("same\n", "same\n").trim(), "...");
}
