//! `sim sweep` end to end on the teaching subject (`counter`, defect `leak-on-evict`): resuming
//! after `kill -9`, shards, merge, corrupted results files, dedup and minimised repros, the JSON
//! keys, and the determinism check.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sim::os::{Os, Tid};
use sim::registry::{Registry, erase};
use sim::runner::RunOptions;
use sim::subject::{Config, Step, Subject, SubjectInfo};
use sim::sweep::results::{self, RunRecord};
use sim::sweep::summary::{self, Summary};
use sim::sweep::{Shard, Source, SweepConfig, sweep};
use support::{
    SIM, defects_off, file_source, last_op_started_lines, package_dir, paste_into_shell,
    rerun_test_in_child, run_sim, run_sim_in, scratch_dir, spawned_threads_scenario,
    workspace_root, write_300000_op_leak, write_file,
};

fn records(dir: &Path) -> Vec<RunRecord> {
    results::load(&dir.join(results::RESULTS_FILE), false)
        .unwrap()
        .records
}

/// What must be equal between two sweeps of the same pairs, keyed by pair.
fn essence(records: &[RunRecord]) -> BTreeMap<(String, u64), (String, Vec<String>, String)> {
    records
        .iter()
        .map(|r| {
            (
                (r.scenario.clone(), r.seed),
                (
                    r.verdict.clone(),
                    r.signatures.clone(),
                    r.trace_hash.clone(),
                ),
            )
        })
        .collect()
}

fn leaky_counter() -> Vec<Source> {
    vec![Source::generated("counter", vec!["leak-on-evict".into()])]
}

fn library_sweep(out: &Path, seeds: std::ops::Range<u64>, shard: Option<Shard>) -> Summary {
    let mut config = SweepConfig::new(leaky_counter(), seeds, out);
    config.jobs = 2;
    config.shard = shard;
    config.shrink_runs_max = 200;
    sweep(&Registry::builtin(), &config).unwrap().summary
}

fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn a_sweep_killed_at_random_points_resumes_without_losing_or_duplicating_runs() {
    let dir = scratch_dir("kill");
    let out = dir.join("out");
    let out_text = out.display().to_string();
    let seeds_end = 1500u64;
    let args = [
        "sweep",
        "--subject",
        "counter",
        "--defect",
        "leak-on-evict",
        "--seeds",
        "0..1500",
        "--jobs",
        "2",
        "--shrink-runs-max",
        "200",
        "--out",
        &out_text,
    ];
    let results_path = out.join(results::RESULTS_FILE);
    // Kill points drawn from a fixed LCG: "random", but the same on every run of the test.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills_mid_sweep = 0;
    for _ in 0..3 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let grow_by = 20 + (state >> 33) as usize % 300;
        let start = line_count(&results_path);
        let mut child = Command::new(SIM)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if line_count(&results_path) >= start + grow_by {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills_mid_sweep += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        kills_mid_sweep >= 1,
        "the test killed at least one sweep in the middle"
    );
    let before = line_count(&results_path);
    assert!(
        before < seeds_end as usize,
        "{before} runs recorded before the last resume"
    );
    // What an interrupted append leaves behind: half a record, no newline.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&results_path)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"scenario":"gen:counter","subj"#).unwrap();
    drop(file);

    let (code, _, stderr) = run_sim(&args);
    assert_eq!(code, 1, "findings: {stderr}");
    let warning = format!(
        "warning: {}:{}: dropping a truncated last line",
        results_path.display(),
        before + 1
    );
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    // Said as the runs start, not only after them: a long sweep's user sees it at once.
    let first_progress = stderr.find("sweep: ").expect("progress lines");
    assert!(stderr.find(&warning).unwrap() < first_progress, "{stderr}");
    let resumed = records(&out);
    assert_eq!(resumed.len(), seeds_end as usize, "every pair exactly once");
    assert_eq!(
        line_count(&results_path),
        seeds_end as usize,
        "no duplicate lines"
    );

    let reference = dir.join("reference");
    library_sweep(&reference, 0..seeds_end, None);
    assert_eq!(
        essence(&resumed),
        essence(&records(&reference)),
        "the resumed sweep recorded what an uninterrupted one records"
    );
    // Running it once more runs nothing and changes nothing.
    let (code, stdout, _) = run_sim(&args);
    assert_eq!(code, 1);
    assert!(stdout.contains("(0 run now, 1500 resumed)"), "{stdout}");
    assert_eq!(line_count(&results_path), seeds_end as usize);
}

#[test]
fn the_union_of_the_shards_is_the_unsharded_sweep_and_merging_is_idempotent() {
    let dir = scratch_dir("shards");
    let whole = library_sweep(&dir.join("whole"), 0..150, None);
    let mut shard_dirs = Vec::new();
    let mut sizes = Vec::new();
    for index in 1..=3 {
        let shard_dir = dir.join(format!("shard-{index}"));
        library_sweep(&shard_dir, 0..150, Some(Shard { index, count: 3 }));
        sizes.push(records(&shard_dir).len());
        shard_dirs.push(shard_dir);
    }
    assert!(sizes.iter().all(|&n| n > 0 && n < 150), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 150, "disjoint");
    let mut union: Vec<RunRecord> = shard_dirs.iter().flat_map(|d| records(d)).collect();
    union.sort_by_key(RunRecord::key);
    assert_eq!(essence(&union), essence(&records(&dir.join("whole"))));

    let merged_dir = dir.join("merged");
    let merged = summary::merge(&shard_dirs, &merged_dir, summary::Mismatched::Refuse).unwrap();
    assert_eq!(merged.runs, 150);
    assert_eq!(merged.trace_hash, whole.trace_hash);
    type Shape = Vec<(String, u64, u64, Option<u64>, Option<u64>)>;
    let shape = |s: &Summary| -> Shape {
        s.findings
            .iter()
            .map(|f| {
                (
                    f.signature.clone(),
                    f.count,
                    f.first_seed,
                    f.ops_before,
                    f.ops_after,
                )
            })
            .collect()
    };
    assert_eq!(
        shape(&merged),
        shape(&whole),
        "same findings, counts, first seeds, repros"
    );
    assert!(merged.findings.iter().all(|f| {
        f.repro.as_ref().is_some_and(|r| {
            r.starts_with(&merged_dir.display().to_string()) && Path::new(r).exists()
        })
    }));
    assert_eq!(merged.shards.len(), 3);
    // Each shard says which it is in fields, which the merge reads, not only in its label.
    for (index, shard) in (1..=3).zip(&merged.shards) {
        assert_eq!(
            (shard.index, shard.count),
            (Some(index), Some(3)),
            "{shard:?}"
        );
        assert_eq!(shard.seeds, Some(whole.seeds), "{shard:?}");
        assert!(
            shard.shard.starts_with(&format!("{index}/3 seeds ")),
            "{shard:?}"
        );
    }
    assert_eq!(
        whole.shards[0].index, None,
        "an unsharded sweep is no shard"
    );

    let snapshot = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for sub in [dir.to_path_buf(), dir.join("repros")] {
            for entry in std::fs::read_dir(&sub).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    files.insert(path.display().to_string(), std::fs::read(&path).unwrap());
                }
            }
        }
        files
    };
    let first = snapshot(&merged_dir);
    // Through the binary this time: the same inputs again, then the merge with a shard again.
    let (code, stdout, stderr) = sweep_merge(&shard_dirs, &merged_dir, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        snapshot(&merged_dir),
        first,
        "merging twice gives the same files"
    );
    let (code, _, _) = sweep_merge(&[&merged_dir, &shard_dirs[1]], &merged_dir, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        snapshot(&merged_dir),
        first,
        "merging a shard into the merge again changes nothing"
    );

    // Shard directories moved elsewhere (CI artifacts downloaded into another tree) still merge
    // with their repros: a repro is found beside its sidecar, not at the path it was written to.
    let moved: Vec<PathBuf> = shard_dirs
        .iter()
        .enumerate()
        .map(|(index, from)| {
            let to = dir.join("downloaded").join(format!("artifact-{index}"));
            copy_tree(from, &to);
            to
        })
        .collect();
    for from in &shard_dirs {
        std::fs::remove_dir_all(from).unwrap();
    }
    let again = summary::merge(
        &moved,
        &dir.join("merged-again"),
        summary::Mismatched::Refuse,
    )
    .unwrap();
    assert_eq!(shape(&again), shape(&whole));
    assert!(again.findings.iter().all(|f| {
        f.repro.as_ref().is_some_and(|r| Path::new(r).exists())
            && f.report
                .as_ref()
                .unwrap()
                .contains(f.repro.as_ref().unwrap())
    }));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn a_corrupted_results_file_is_a_clear_error_that_keeps_every_intact_line() {
    let dir = scratch_dir("corrupt");
    let out = dir.join("out");
    let out_text = out.display().to_string();
    // Generated counter scenarios are balanced: with defects off, they pass.
    let args = [
        "sweep",
        "--subject",
        "counter",
        "--seeds",
        "0..6",
        "--out",
        &out_text,
    ];
    let (code, _, _) = run_sim(&args);
    assert_eq!(
        code, 0,
        "the teaching subject's generated scenarios are clean with defects off"
    );
    let path = out.join(results::RESULTS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    let broken = lines[2][..lines[2].len() / 2].to_string();
    lines[2] = &broken;
    let corrupted = lines.join("\n") + "\n";
    std::fs::write(&path, &corrupted).unwrap();
    // The sweep refuses the file, pointing at line 3 and the column where `why` begins.
    let refused = |column: usize, why: &str| {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 2, "bad input: {stdout}{stderr}");
        let said = format!(
            "{}:3:{column}: corrupted results file: not a run record ({why}",
            path.display()
        );
        assert!(stderr.contains(&said), "{stderr}");
        stderr
    };

    let stderr = refused(broken.len(), "EOF while parsing");
    assert!(stderr.contains("delete line 3"), "{stderr}");
    // A merge reads the same file and stops at the same line, with a merge's advice: it resumes
    // nothing.
    let (code, _, merged) = sweep_merge(&[&out], dir.join("merged"), &[]);
    assert_eq!(code, 2, "{merged}");
    assert!(
        merged.contains(&format!("{}:3:", path.display()))
            && merged.contains("run the sweep that wrote this directory again")
            && merged.contains("then merge again")
            && !merged.contains("resume"),
        "{merged}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        corrupted,
        "the file is left as it was"
    );
    // A line that parses but holds a verdict sim never writes is corrupt too, not a pass.
    let bogus = text
        .lines()
        .enumerate()
        .map(|(index, line)| {
            let line = if index == 2 {
                line.replace("\"verdict\":\"pass\"", "\"verdict\":\"bogus\"")
            } else {
                line.to_string()
            };
            line + "\n"
        })
        .collect::<String>();
    assert!(bogus.contains("\"verdict\":\"bogus\""));
    std::fs::write(&path, &bogus).unwrap();
    let verdict_column = text.lines().nth(2).unwrap().find("\"verdict\"").unwrap() + 1;
    refused(verdict_column, "unknown verdict `bogus`");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bogus);
    // So is a duration no run took (a hand edit), where the summary's JUnit times panicked on
    // it: the sweep and a merge stop at its line and column, and the file stays as it was.
    for duration in ["-5", "1e308"] {
        let edited = text
            .lines()
            .enumerate()
            .map(|(index, line)| {
                let line = if index == 2 {
                    let at = line.find("\"duration_ms\":").unwrap() + "\"duration_ms\":".len();
                    let end = at + line[at..].find([',', '}']).unwrap();
                    format!("{}{duration}{}", &line[..at], &line[end..])
                } else {
                    line.to_string()
                };
                line + "\n"
            })
            .collect::<String>();
        std::fs::write(&path, &edited).unwrap();
        let column = edited
            .lines()
            .nth(2)
            .unwrap()
            .find("\"duration_ms\"")
            .unwrap()
            + 1;
        let stderr = refused(column, "duration_ms ");
        assert!(stderr.contains("is no wall time"), "{stderr}");
        let (code, _, merged) = sweep_merge(&[&out], dir.join("merged"), &[]);
        assert_eq!(code, 2, "{merged}");
        assert!(
            merged.contains(&format!("{}:3:{column}:", path.display())),
            "{merged}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    }
    // Deleting the line, as the message says, resumes: only that run is redone.
    let mut kept: Vec<&str> = corrupted.lines().collect();
    kept.remove(2);
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let (code, stdout, _) = run_sim(&args);
    assert_eq!(code, 0);
    assert!(stdout.contains("(1 run now, 5 resumed)"), "{stdout}");
    assert_eq!(records(&out).len(), 6);
}

const CREATE_EVICT: &str = r#"
name = "create-evict"
subject = "counter"
defects = ["leak-on-evict"]
seed = 1

[[lifecycle]]
name = "object"
repeat = 6
ops = [
  { op = "create", slot = 1 },
  { op = "create", slot = 2 },
  { op = "evict", slot = 2 },
  { op = "create", slot = 3 },
  { op = "evict", slot = 3 },
  { op = "evict", slot = 1 },
]
"#;

/// `sim sweep SCENARIO --seeds SEEDS --out OUT`, then `extra`: (exit code, stdout, stderr),
/// whatever the code.
fn sweep_file(scenario: &Path, seeds: &str, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let (scenario, out) = (scenario.display().to_string(), out.display().to_string());
    let mut args = vec!["sweep", &scenario, "--seeds", seeds, "--out", &out];
    args.extend(extra);
    run_sim(&args)
}

/// The `--json` summary of `sim sweep SCENARIO --seeds SEEDS --out OUT`, which must exit 1: the
/// scenario has a finding.
fn failing_sweep_summary(scenario: &Path, seeds: &str, out: &Path) -> Value {
    let (code, stdout, stderr) = sweep_file(scenario, seeds, out, &["--json"]);
    assert_eq!(code, 1, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// An output a sweep cannot write is named by its own path, not its directory's: a directory
/// where `summary.json` goes, a file where `repros/` goes. Each is bad input (exit 2).
#[test]
fn an_output_that_cannot_be_written_is_named_by_its_own_path() {
    let dir = scratch_dir("unwritable-output");
    let scenario = write_file(&dir, "create-evict.toml", CREATE_EVICT);
    let summary_taken = dir.join("summary-taken");
    std::fs::create_dir_all(summary_taken.join(summary::SUMMARY_FILE)).unwrap();
    let repros_taken = dir.join("repros-taken");
    std::fs::create_dir_all(&repros_taken).unwrap();
    std::fs::write(repros_taken.join("repros"), "").unwrap();
    for (out, culprit, says) in [
        (
            &summary_taken,
            summary::SUMMARY_FILE,
            "cannot write: Is a directory",
        ),
        (
            &repros_taken,
            "repros",
            "cannot create the output directory: Not a directory",
        ),
    ] {
        let (code, _, stderr) = sweep_file(&scenario, "3..5", out, &[]);
        assert_eq!(code, 2, "{stderr}");
        let culprit = out.join(culprit).display().to_string();
        assert!(
            stderr.contains(&format!("error: {culprit}: {says}")),
            "{culprit}: {stderr}"
        );
    }
}

/// A finding's repro that cannot be written (here a directory stands at its name; a full disk
/// alike) costs that finding its repro alone, as a panic while minimising it does: it is listed
/// among the internal errors (exit 3, no panic said), and the sweep writes its summary, where it
/// stopped with none.
#[test]
fn a_repro_that_cannot_be_written_costs_its_finding_the_repro_alone() {
    let dir = scratch_dir("repro-unwritable");
    let scenario = write_file(&dir, "create-evict.toml", CREATE_EVICT);
    let first = failing_sweep_summary(&scenario, "3..5", &dir.join("first"));
    let repro = first["findings"][0]["repro"].as_str().unwrap();
    let name = Path::new(repro).file_name().unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("repros").join(name)).unwrap();
    let (code, stdout, stderr) = sweep_file(&scenario, "3..5", &out, &[]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(summary::SUMMARY_FILE)).unwrap())
            .unwrap();
    let errors = summary["internal_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["minimising"], first["findings"][0]["signature"]);
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("could not write the repro of `") && message.contains("Is a directory"),
        "{message}"
    );
    assert!(
        stdout.contains("could not write the repro of `") && !stdout.contains("panicked"),
        "{stdout}"
    );
    // The report and the junit case do not call it a panic alone.
    for file in [summary::REPORT_FILE, summary::JUNIT_FILE] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            text.contains("a repro that could not be written"),
            "{file}: {text}"
        );
    }
}

#[test]
fn findings_are_deduplicated_and_the_first_seed_is_shrunk_into_a_replayable_repro() {
    let dir = scratch_dir("dedup");
    let scenario = write_file(&dir, "create-evict.toml", CREATE_EVICT);
    let out = dir.join("out");
    let summary = failing_sweep_summary(&scenario, "3..11", &out);
    let findings = summary["findings"].as_array().unwrap();
    assert_eq!(
        findings.len(),
        1,
        "8 failing runs, one signature: {findings:?}"
    );
    let finding = &findings[0];
    assert_eq!(finding["signature"], "leak:heap block:counter_create");
    assert_eq!(finding["count"], 8);
    assert_eq!(finding["first_seed"], 3);
    assert_eq!(finding["seeds_to_first"], 1);
    assert_eq!(finding["ops_before"], 6);
    let ops_after = finding["ops_after"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&ops_after),
        "shrunk to the create (and the evict that leaks it): {ops_after}"
    );
    let repro = finding["repro"].as_str().unwrap();
    assert!(repro.starts_with(&out.join("repros").display().to_string()));
    assert_eq!(
        std::fs::read_dir(out.join("repros"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "toml")
            .count(),
        1,
        "one repro per signature"
    );
    assert!(
        finding["report"]
            .as_str()
            .unwrap()
            .contains(&format!("note: replay with `sim replay {repro}`"))
    );

    let (code, stdout, _) = run_sim(&["replay", repro]);
    assert_eq!(code, 1);
    assert!(stdout.contains("error[leak]: 1 heap block"), "{stdout}");
    // The sweep's report of the finding is the repro's own: the replay prints it word for word,
    // its ops pointed at in the repro file rather than named by their place in the original.
    let report = finding["report"].as_str().unwrap();
    assert!(report.contains(&format!("--> {repro}:")), "{report}");
    assert!(
        stdout.contains(report),
        "{report}\nis not in the replay's\n{stdout}"
    );
    assert!(
        stdout.contains("replayed: the same findings and the same trace hash as recorded"),
        "{stdout}"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "a plot of the leaked blocks");
    assert!(html.contains("leak:heap block:counter_create"));
    assert!(html.contains(&format!("sim replay {repro}")));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"1\"") && junit.contains("failures=\"1\""),
        "{junit}"
    );

    // Promotion copies the repro once.
    let regressions = dir.join("regressions");
    let regressions_text = regressions.display().to_string();
    let (code, stdout, _) = run_sim(&["promote", repro, "--to", &regressions_text]);
    assert_eq!(code, 0);
    assert!(stdout.contains("promoted"), "{stdout}");
    let (code, stdout, _) = run_sim(&["promote", repro, "--to", &regressions_text]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already promoted"), "{stdout}");
    let (code, _, stderr) = run_sim(&[
        "promote",
        &scenario.display().to_string(),
        "--to",
        &regressions_text,
    ]);
    assert_eq!(code, 2, "a scenario that pins nothing is not a repro");
    assert!(stderr.contains("not a repro"), "{stderr}");
    // Run where there is no `corpus/regressions/` (here the crate's directory), the default
    // target is refused: a promotion there would go where `cargo test` never reads.
    let (code, stdout, stderr) = run_sim(&["promote", repro]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("corpus/regressions: no such directory here")
            && stderr.contains("or name a directory with --to"),
        "{stderr}"
    );
    assert!(
        !package_dir().join("corpus").exists(),
        "nothing was created"
    );
    // The finding's record beside its repro is no repro either: refused as JSON, naming the
    // repro, before anything is copied (the repro named first was copied, then the record
    // stopped the command with a TOML error at 1:1).
    let record = Path::new(repro).with_extension("json");
    assert!(
        record.is_file(),
        "a sweep writes a record beside each repro"
    );
    let elsewhere = dir.join("regressions-2").display().to_string();
    let (code, _, stderr) = run_sim(&[
        "promote",
        repro,
        &record.display().to_string(),
        "--to",
        &elsewhere,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is JSON; scenarios and repros are TOML files")
            && stderr.contains(&format!("its repro is `sim replay {repro}`")),
        "{stderr}"
    );
    assert!(!Path::new(&elsewhere).exists(), "nothing promoted");
}

#[test]
fn json_output_keeps_the_contract_keys_and_a_clean_sweep_exits_zero() {
    let dir = scratch_dir("json");
    let clean = write_file(
        &dir,
        "clean.toml",
        CREATE_EVICT.replace("defects = [\"leak-on-evict\"]\n", ""),
    );
    let extra = ["--json", "--recheck-percent", "100"];
    let (code, stdout, stderr) = sweep_file(&clean, "0..4", &dir.join("out"), &extra);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "verdict",
        "findings",
        "repro",
        "trace_hash",
        "runs",
        "seeds_run",
        "wall_seconds",
        "determinism",
        "scenarios",
    ] {
        assert!(summary.get(key).is_some(), "missing `{key}`: {summary}");
    }
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["runs"], 4);
    assert_eq!(summary["determinism"]["rechecked"], 4);
    assert_eq!(summary["determinism"]["mismatches"], 0);
    // Without --json a clean sweep still ends with its table and the report's path.
    let (code, stdout, _) = sweep_file(&clean, "0..4", &dir.join("out-text"), &[]);
    assert_eq!(code, 0, "{stdout}");
    let table_row = stdout
        .lines()
        .find(|line| line.contains("clean.toml"))
        .unwrap_or_else(|| panic!("no table row for the scenario: {stdout}"));
    assert!(table_row.contains("clean"), "{table_row}");
    assert!(stdout.trim_end().ends_with("report.html"), "{stdout}");

    let (code, stdout, _) = run_sim(&[
        "sweep",
        "--subject",
        "counter",
        "--defect",
        "leak-on-evict",
        "--seeds",
        "0..3",
        "--out",
        &dir.join("gen").display().to_string(),
        "--json",
    ]);
    assert_eq!(code, 1);
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["verdict"], "fail");
    assert!(
        summary["repro"]
            .as_str()
            .unwrap()
            .starts_with("sim replay ")
    );
    for finding in summary["findings"].as_array().unwrap() {
        for key in ["kind", "resource", "lifecycle", "site", "signature"] {
            assert!(finding.get(key).is_some(), "finding without `{key}`");
        }
    }
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("gen").join(results::RESULTS_FILE))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for key in ["scenario", "seed", "verdict", "signatures", "trace_hash"] {
        assert!(line.get(key).is_some(), "results line without `{key}`");
    }
}

#[test]
fn bad_input_exits_two_with_a_message() {
    for (args, expected) in [
        (vec!["sweep"], "nothing to sweep"),
        (vec!["sweep", "--subject", "nope"], "unknown subject `nope`"),
        (
            vec!["sweep", "--subject", "counter", "--defect", "nope"],
            "unknown defect `nope`",
        ),
        (
            vec!["sweep", "--subject", "counter", "--seeds", "5..5"],
            "empty",
        ),
        (
            vec!["sweep", "--subject", "counter", "--shard", "0/3"],
            "bad shard",
        ),
        (
            vec!["sweep", "--subject", "counter", "--skip-subject", "counter"],
            "every named subject was skipped; nothing to sweep",
        ),
        // It swept every subject after a warning, the one meant to be skipped too.
        (
            vec!["sweep", "--subject", "all", "--skip-subject", "nosuch"],
            "--skip-subject nosuch: unknown subject `nosuch`; known: ",
        ),
        (
            vec!["sweep", "merge", "/nonexistent-sweep-dir"],
            "not a sweep directory",
        ),
        // A plan this large filled the host's memory until the process aborted.
        (
            vec![
                "sweep",
                "--subject",
                "counter",
                "--seeds",
                "0..18446744073709551615",
            ],
            "one sweep plans at most 4000000 pairs per shard",
        ),
        // Each shard walks every pair to pick its own: sharding does not make any range fine.
        (
            vec![
                "sweep",
                "--subject",
                "counter",
                "--seeds",
                "0..18446744073709551615",
                "--shard",
                "1/4294967295",
            ],
            "use a shorter `--seeds` range",
        ),
    ] {
        let (code, _, stderr) = run_sim(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `--jobs 0` is refused before anything runs, for `sim sweep` and for `sim detect` (which runs
/// sweeps): it was taken as 1 job without a word, where a reader may take 0 for "as many as the
/// machine has", which is what leaving the flag out gives.
#[test]
fn zero_jobs_is_bad_usage_before_anything_runs() {
    let dir = scratch_dir("zero-jobs");
    let out = dir.join("out").display().to_string();
    for args in [
        vec![
            "sweep",
            "--subject",
            "counter",
            "--seeds",
            "0..2",
            "--jobs",
            "0",
            "--out",
            &out,
        ],
        vec!["detect", "--seeds", "0..1", "--jobs", "0", "--dir", &out],
    ] {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}: {stderr}");
        assert!(
            stderr.contains("invalid value '0' for '--jobs <J>': a sweep needs at least 1 worker; leave --jobs out for the machine's available parallelism"),
            "{args:?}: {stderr}"
        );
        assert!(!Path::new(&out).exists(), "{args:?}: nothing ran");
    }
    let (code, _, stderr) = run_sim(&["sweep", "--subject", "counter", "--jobs", "two"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`two` is no count of workers"), "{stderr}");
}

/// `--file-seeds` sets the seeds of the sweep's scenario files; in a sweep of none it sets nothing,
/// and says so on stderr instead of passing for a range that ran. The sweep still runs (a
/// script may pass the flag whether or not it found files), and with files there is no warning.
#[test]
fn file_seeds_without_scenario_files_is_a_warning() {
    let dir = scratch_dir("file-seeds-without-files");
    let out = dir.join("generated").display().to_string();
    let (code, _, stderr) = run_sim(&[
        "sweep",
        "--subject",
        "counter",
        "--seeds",
        "0..2",
        "--file-seeds",
        "0..5",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "warning: --file-seeds 0..5: no scenario files in this sweep, so it sets no seeds"
        ),
        "{stderr}"
    );
    assert_eq!(records(Path::new(&out)).len(), 2, "the --seeds range ran");
    let out = dir.join("with-a-file").display().to_string();
    let (code, stdout, stderr) = run_sim(&[
        "sweep",
        "../scenarios/allocator-basic.toml",
        "--subject",
        "counter",
        "--seeds",
        "0..2",
        "--file-seeds",
        "0..1",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("--file-seeds"), "{stderr}");
    assert_eq!(
        records(Path::new(&out)).len(),
        3,
        "1 file seed, 2 generated"
    );
    // The status line gives the files' seeds beside the span, not only the span.
    assert!(
        stdout.contains("runs over 2 seeds (0..2; scenario files 0..1) in "),
        "{stdout}"
    );
}

/// A sweep, `sim zoo` and `sim promote` warn of a file as `sim run` does (here, an op after the
/// process `exit`), once per file however many seeds it runs, pointed into the file; the sweep
/// still runs every seed.
#[test]
fn sweep_zoo_and_promote_warn_of_a_file_once_each() {
    let dir = scratch_dir("sweep-warnings");
    let file = write_file(
        &dir,
        "after-exit.toml",
        "name = \"x\"\nsubject = \"counter\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
         ops = [{ op = \"exit\" }, { op = \"create\", slot = 0 }, { op = \"evict\", slot = 0 }]\n",
    );
    let file = file.display().to_string();
    let warning =
        "warning: op `create` (op #2 of `ops` in lifecycle `l`) runs after the process exited";
    let pointer = format!("  --> {file}:6:25\n");
    let once = |stderr: &str| {
        assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
        assert_eq!(stderr.matches(&pointer).count(), 1, "{stderr}");
    };
    let out = dir.join("sweep").display().to_string();
    let (code, _, stderr) = run_sim(&["sweep", &file, "--file-seeds", "0..3", "--out", &out]);
    assert_eq!(code, 0, "{stderr}");
    once(&stderr);
    assert_eq!(records(Path::new(&out)).len(), 3, "every seed ran");
    let (_, _, stderr) = run_sim(&["zoo", &file]);
    once(&stderr);
    // A repro pins its finding: the same ops without the evict leak a heap block.
    let repro = write_file(
        &dir,
        "after-exit-repro.toml",
        "name = \"x\"\nsubject = \"counter\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
         ops = [{ op = \"exit\" }, { op = \"create\", slot = 0 }]\n\
         [expect]\nsignatures = [\"leak:heap block:counter_create\"]\n",
    );
    let to = dir.join("regressions").display().to_string();
    let repro = repro.display().to_string();
    let (code, _, stderr) = run_sim(&["promote", &repro, "--to", &to]);
    let pointer = format!("  --> {repro}:6:25\n");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    assert_eq!(stderr.matches(&pointer).count(), 1, "{stderr}");
}

/// The same sweep started twice into one directory: the second runs nothing and says why. The
/// first is stood in for by its lock, held here for longer than a sweep waits for a busy lock
/// (a moment's holder is a child between its fork and its exec, `results::Appender::open`).
#[test]
fn a_second_sweep_into_a_directory_a_sweep_is_writing_runs_nothing() {
    let out = scratch_dir("twice").join("out");
    library_sweep(&out, 0..20, None);
    let results_path = out.join(results::RESULTS_FILE);
    let before = std::fs::read(&results_path).unwrap();
    let running = results::Appender::open(&results_path).unwrap();
    let out_text = out.display().to_string();
    let (code, _, stderr) = run_sim(&[
        "sweep",
        "--subject",
        "counter",
        "--seeds",
        "0..40",
        "--out",
        &out_text,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("another sweep is writing to it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&results_path).unwrap(), before, "nothing ran");
    drop(running);
}

/// A subject that reads state outside its seed: a process-wide counter. Its runs differ from
/// each other, which is exactly what the determinism check must catch.
static OUTSIDE_STATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `grow`'s own count of its calls: `touch`'s is shared by the runs of another test.
static GROW_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum LeakyOp {
    Touch,
    /// Allocates a block whose size follows the process-wide count of `grow` calls: a run with
    /// one `grow` differs from the run before, whatever runs in between.
    Grow,
    /// Does nothing: the same in every run.
    Noop,
}

struct Nondeterministic;

impl Subject for Nondeterministic {
    type Op = LeakyOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "nondeterministic",
            summary: "reads a process-wide counter: not deterministic on purpose",
            ..SubjectInfo::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        Nondeterministic
    }

    fn op_name(op: &LeakyOp) -> &'static str {
        match op {
            LeakyOp::Touch => "touch",
            LeakyOp::Grow => "grow",
            LeakyOp::Noop => "noop",
        }
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, op: &LeakyOp) -> Step<Self> {
        match op {
            LeakyOp::Touch => {}
            LeakyOp::Grow => {
                let n = GROW_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let block = os.malloc(16 * (1 + n % 64), "grow").unwrap();
                os.free(block, "grow").unwrap();
                return Step::Done;
            }
            LeakyOp::Noop => return Step::Done,
        }
        let n = OUTSIDE_STATE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..(n % 3) {
            let block = os.malloc(16, "touch").unwrap();
            os.free(block, "touch").unwrap();
        }
        Step::Done
    }
}

#[test]
fn two_runs_of_one_pair_that_differ_are_a_determinism_finding() {
    let dir = scratch_dir("determinism");
    let registry = Registry::builtin().with(erase::<Nondeterministic>());
    // Seeds 0..20 of a scenario of one `touch`, into `out`, rechecking `recheck_percent` of them.
    let sweep_touch = |out: PathBuf, recheck_percent: f64| {
        let scenario = registry
            .parse(
                "nondet.toml",
                "name = \"n\"\nsubject = \"nondeterministic\"\nseed = 1\n\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"touch\" }]\n",
            )
            .unwrap();
        let mut config = SweepConfig::new(vec![Source::file("nondet.toml", scenario)], 0..20, out);
        config.recheck_percent = recheck_percent;
        sweep(&registry, &config).unwrap().summary
    };
    let summary = sweep_touch(dir.clone(), 100.0);
    assert_eq!(summary.verdict, "fail");
    assert!(summary.determinism.mismatches > 0);
    let finding = &summary.findings[0];
    assert_eq!(finding.signature, "determinism:trace hash:nondeterministic");
    assert_eq!(finding.kind, "determinism");
    assert!(
        finding
            .report
            .as_ref()
            .unwrap()
            .contains("error[determinism]")
    );
    // The report says where two more runs, traced side by side, parted: the subject's counter
    // decides how many blocks the op allocates, so they part at a heap event after the op.
    let report = finding.report.as_ref().unwrap();
    assert!(report.contains("traces part at: event #"), "{report}");
    assert!(report.contains("last op started: {\"i\":"), "{report}");
    assert!(report.contains("\"op\":\"touch\""), "{report}");
    // And it points at that op in the repro file, as every report that names an op does.
    let repro = finding.repro.as_deref().expect("written");
    let pointed = last_op_started_lines(report)
        .get(1)
        .copied()
        .unwrap_or_default();
    let at = pointed
        .strip_prefix(&format!("    --> {repro}:"))
        .and_then(|rest| rest.strip_suffix(" (ops)"))
        .unwrap_or_else(|| panic!("no `--> {repro}:LINE:COLUMN (ops)` line: {report}"));
    let (line, column) = at.split_once(':').unwrap();
    let (line, column): (usize, usize) = (line.parse().unwrap(), column.parse().unwrap());
    let text = std::fs::read_to_string(repro).unwrap();
    let op_text = &text.lines().nth(line - 1).unwrap()[column - 1..];
    assert!(op_text.starts_with("{ op = \"touch\""), "{op_text}");
    assert_eq!(finding.ops_after, finding.ops_before, "not shrunk");

    // With no rechecks of passing runs, nothing is run twice and nothing is found.
    let summary = sweep_touch(dir.join("unchecked"), 0.0);
    assert_eq!(summary.verdict, "pass");
    assert_eq!(summary.determinism.rechecked, 0);
}

/// Where the traces of a determinism finding part after an op of a spawned thread, its report
/// points at that op in the repro, in its declared thread's list: here `grow`, the second op of
/// thread `w` of the second lifecycle (tid 3, after `v`), whose name the first lifecycle also
/// declares, with one op.
#[test]
fn a_determinism_finding_points_at_an_op_of_a_spawned_thread_in_its_declared_list() {
    let dir = scratch_dir("determinism-thread");
    let registry = Registry::builtin().with(erase::<Nondeterministic>());
    let scenario = registry
        .parse(
            "threads.toml",
            &spawned_threads_scenario("nondeterministic"),
        )
        .unwrap();
    let mut config = SweepConfig::new(vec![Source::file("threads.toml", scenario)], 0..1, &dir);
    config.recheck_percent = 100.0;
    let summary = sweep(&registry, &config).unwrap().summary;
    let finding = &summary.findings[0];
    assert_eq!(finding.kind, "determinism");
    let report = finding.report.as_ref().unwrap();
    let repro = finding.repro.as_deref().expect("written");
    let last_op = last_op_started_lines(report);
    assert!(last_op[0].contains("\"op\":\"grow\""), "{report}");
    assert!(last_op[0].contains("\"a\":3,"), "{report}");
    let text = std::fs::read_to_string(repro).unwrap();
    assert_eq!(
        last_op.get(1),
        Some(&format!("    --> {repro}:46:3 (thread `w`)").as_str()),
        "{report}\n{text}"
    );
    // That is `grow` in the second lifecycle's thread `w` (the repro prints an op a line).
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[45][2..], "{ op = \"grow\" },", "{text}");
    assert_eq!(lines[42], "name = \"w\"", "{text}");
    let lifecycles_before = lines[..42]
        .iter()
        .filter(|line| **line == "[[lifecycle]]")
        .count();
    assert_eq!(lifecycles_before, 2, "{text}");
}

#[test]
fn detection_runs_every_defect_of_every_subject_against_its_defects_off_baseline() {
    let dir = scratch_dir("detect");
    let registry = Registry::empty().with(erase::<sim::subjects::counter::Counter>());
    let detection =
        sim::sweep::measure::detect(&registry, 0..150, 2, &dir, sim::sweep::ProgressMode::Quiet)
            .unwrap();
    assert_eq!(detection.subjects.len(), 1);
    let counter = &detection.subjects[0];
    assert_eq!(counter.defects_off.runs, 150);
    assert_eq!(counter.defects.len(), 1);
    let leak = &counter.defects[0];
    assert_eq!(leak.defect, "leak-on-evict");
    assert!(leak.detected, "{leak:?}");
    assert_eq!(leak.signatures, vec!["leak:heap block:counter_create"]);
    let first_seed = leak.first_seed.unwrap();
    assert_eq!(leak.seeds_to_first_finding, Some(first_seed + 1));
    // The detecting seed shows the leak only with the defect on.
    let off: Vec<RunRecord> = records(&dir.join("counter"));
    let on: Vec<RunRecord> = records(&dir.join("counter+leak-on-evict"));
    let signature = "leak:heap block:counter_create".to_string();
    let at = |records: &[RunRecord], seed: u64| {
        records
            .iter()
            .find(|r| r.seed == seed)
            .unwrap()
            .signatures
            .contains(&signature)
    };
    assert!(at(&on, first_seed) && !at(&off, first_seed));
    assert!((0..first_seed).all(|seed| !at(&on, seed) || at(&off, seed)));
    assert!(leak.minimised_ops.unwrap() <= leak.ops_before.unwrap());
}

#[test]
fn zoo_reports_found_with_the_defect_and_clean_without_and_honours_controls() {
    let dir = scratch_dir("zoo");
    std::fs::write(dir.join("leak.toml"), CREATE_EVICT).unwrap();
    let control = CREATE_EVICT.replace(
        "ops = [",
        "ops = [\n  { op = \"create\", slot = 9 },\n  { op = \"evict\", slot = 9 },",
    );
    // A control: the defect is on, yet [expect] says nothing may be found. This one does find
    // the leak, so it is not as expected.
    std::fs::write(
        dir.join("control.toml"),
        control.replace("seed = 1\n", "seed = 1\n\n[expect]\nsignatures = []\n"),
    )
    .unwrap();
    let (code, stdout, _) = run_sim(&["zoo", &dir.display().to_string()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FOUND (1) in a control"), "{stdout}");
    assert!(stdout.contains("found (1)"), "{stdout}");
    assert!(
        stdout.contains("leak:heap block:counter_create: 3 heap blocks (192 B) not released"),
        "the finding's one-line summary: {stdout}"
    );
    assert!(
        stdout.contains("1 of 2 scenarios not as expected"),
        "{stdout}"
    );
    std::fs::remove_file(dir.join("control.toml")).unwrap();
    let (code, stdout, _) = run_sim(&["zoo", &dir.display().to_string()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("clean"), "{stdout}");
}

/// `make detect`'s goals on a built-in subject: every defect found within the seeds, minimised to
/// at most 8 ops, and each minimised repro about its defect (it fails with the defect on and
/// passes with every defect off), while the defects-off sweep over the same seeds finds nothing.
#[test]
fn detection_minimises_each_wasi_defect_to_a_repro_that_is_about_the_defect() {
    let dir = scratch_dir("detect-wasi");
    let registry = Registry::empty().with(erase::<sim::subjects::wasi_runtime::WasiRuntime>());
    let detection =
        sim::sweep::measure::detect(&registry, 0..200, 2, &dir, sim::sweep::ProgressMode::Quiet)
            .unwrap();
    let wasi = &detection.subjects[0];
    assert_eq!(wasi.defects_off.runs, 200);
    assert!(
        wasi.defects_off.signatures.is_empty(),
        "{:?}",
        wasi.defects_off.signatures
    );
    assert!(wasi.defects.len() >= 2);
    for defect in &wasi.defects {
        assert!(defect.detected, "{defect:?}");
        assert!(defect.minimised_ops.unwrap() <= 8, "{defect:?}");
        let repro = defect.repro.as_deref().unwrap();
        let path = repro.strip_prefix("sim replay ").unwrap_or(repro);
        let source = std::fs::read_to_string(path).unwrap();
        let scenario = registry.parse(path, &source).unwrap();
        let with = scenario.run(RunOptions::default());
        assert!(!with.passed(), "{}: fails with {}", path, defect.defect);
        let without = scenario.run(defects_off());
        assert!(
            without.passed(),
            "{path}: the minimised repro of {} fails with defects off too: {:?}",
            defect.defect,
            without.signatures()
        );
    }
}

/// `sim sweep leak.toml --seeds 0..5 --out out --promote`, run in `dir`.
fn sweep_leak_toml_promoting(dir: &Path) -> (i32, String, String) {
    run_sim_in(
        dir,
        &[
            "sweep",
            "leak.toml",
            "--seeds",
            "0..5",
            "--out",
            "out",
            "--promote",
        ],
    )
}

/// `--promote` copies each new finding's minimised repro into `corpus/regressions/` (relative to
/// where the sweep runs), and without a terminal the progress is plain lines on stderr that end
/// with the final count. Where there is no `corpus/regressions/` (not the repository's root),
/// the sweep is refused before it runs, rather than promoting into a new directory that no
/// `cargo test` reads.
#[test]
fn promote_copies_repros_into_the_regressions_and_progress_is_plain_lines_off_a_terminal() {
    let dir = scratch_dir("promote");
    std::fs::write(dir.join("leak.toml"), CREATE_EVICT).unwrap();
    let (code, _, stderr) = sweep_leak_toml_promoting(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("corpus/regressions: no such directory here")
            && stderr.contains("run from the repository's root"),
        "{stderr}"
    );
    assert!(!dir.join("corpus").exists(), "nothing was created");
    assert!(!dir.join("out").exists(), "nothing ran: {stderr}");
    assert!(
        stderr.contains("or name a directory with --promote-to"),
        "{stderr}"
    );

    // A crate of its own names the directory its `cargo test` replays.
    let (code, stdout, stderr) = run_sim_in(
        &dir,
        &[
            "sweep",
            "leak.toml",
            "--seeds",
            "0..5",
            "--out",
            "own-out",
            "--promote-to",
            "tests/regressions",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("promoted own-out/repros/")
                && l.contains("-> tests/regressions/")),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("tests/regressions"))
            .unwrap()
            .count(),
        1,
        "one finding, one regression"
    );
    assert!(!dir.join("corpus").exists(), "nothing promoted elsewhere");
    let (code, _, stderr) = run_sim_in(
        &dir,
        &["sweep", "leak.toml", "--promote", "--promote-to", "x"],
    );
    assert_eq!(code, 2, "one place to promote to: {stderr}");

    std::fs::create_dir_all(dir.join("corpus/regressions")).unwrap();
    let (code, stdout, stderr) = sweep_leak_toml_promoting(&dir);
    assert_eq!(code, 1, "{stderr}");
    // A promotion is a result, said under the summary, not a warning.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("promoted out/repros/") && l.contains("-> corpus/regressions/")),
        "{stdout}"
    );
    assert!(!stderr.contains("promoted"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("sweep: 5/5 runs,") && l.contains("runs/s")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no bar redraws off a terminal: {stderr:?}"
    );
    let promoted: Vec<PathBuf> = std::fs::read_dir(dir.join("corpus/regressions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(promoted.len(), 1, "{promoted:?}");
    let text = std::fs::read_to_string(&promoted[0]).unwrap();
    let scenario = Registry::builtin()
        .parse(&promoted[0].display().to_string(), &text)
        .unwrap();
    let pinned = scenario.meta().expect.unwrap().signatures;
    assert_eq!(pinned, vec!["leak:heap block:counter_create"]);
    assert!(
        scenario.run(defects_off()).passed(),
        "a promoted repro of a seeded defect passes with it off: {text}"
    );

    // A regression of the same finding under another name (as `sim import-crash` names its
    // files, with another header): neither a sweep nor `sim promote` copies the repro again.
    let imported = dir.join("corpus/regressions/counter-leak-on-evict-leak-0badcafe.toml");
    std::fs::write(&imported, format!("# Imported by hand.\n{text}")).unwrap();
    std::fs::remove_file(&promoted[0]).unwrap();
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let (code, stdout, stderr) = sweep_leak_toml_promoting(&dir);
    assert_eq!(code, 1, "{stderr}");
    let said = "is already pinned by corpus/regressions/counter-leak-on-evict-leak-0badcafe.toml";
    assert!(stdout.contains(said), "{stdout}");
    let repro = dir
        .join("out/repros")
        .join(promoted[0].file_name().unwrap());
    let (code, stdout, stderr) = run_sim_in(&dir, &["promote", &repro.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(said), "{stdout}");
    let left: Vec<PathBuf> = std::fs::read_dir(dir.join("corpus/regressions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![imported], "no copy of a pinned finding");
}

/// The zoo's WAMR scenario swept with `--promote` against a copy of this repository's
/// regressions: its finding is the one `sim import-crash` pinned long ago, under a name of its
/// own, so nothing is added.
#[test]
fn promoting_a_finding_the_real_corpus_already_pins_adds_nothing() {
    let dir = scratch_dir("promote-real-corpus");
    let root = workspace_root();
    copy_tree(
        &root.join("corpus/regressions"),
        &dir.join("corpus/regressions"),
    );
    let before = std::fs::read_dir(dir.join("corpus/regressions"))
        .unwrap()
        .count();
    let scenario = root.join("scenarios/zoo/instantiate-destroy.toml");
    let scenario = scenario.display().to_string();
    let (code, stdout, stderr) = run_sim_in(
        &dir,
        &[
            "sweep",
            &scenario,
            "--seeds",
            "0..3",
            "--out",
            "out",
            "--promote",
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "leak:rwlock:fd_prestats_init is already pinned by corpus/regressions/wasi-runtime-prestats-lock-leak-leak-1276c8f0.toml"
        ),
        "{stdout}"
    );
    let after = std::fs::read_dir(dir.join("corpus/regressions"))
        .unwrap()
        .count();
    assert_eq!(after, before, "{stdout}");
}

/// `sweep-scaling` refuses what would cost other figures or report a meaningless one: a results
/// file it cannot read (left as it is, checked before measuring), no rounds, and a sweep too
/// short to time.
#[test]
fn sweep_scaling_refuses_a_broken_results_file_zero_rounds_and_a_sweep_too_short_to_time() {
    let dir = scratch_dir("scaling");
    let results_path = dir.join("results.json");
    let broken = "{\"os_page_cycle\": {\"value\": 1},\n oops}\n";
    std::fs::write(&results_path, broken).unwrap();
    let run = |args: &[&str]| {
        let (code, _, stderr) = run_sim_in(&dir, args);
        (code, stderr)
    };
    let (code, stderr) = run(&[
        "sweep-scaling",
        "--subject",
        "counter",
        "--seeds",
        "0..3",
        "--results",
        "results.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("results.json:2:2: not a JSON object of metrics"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&results_path).unwrap(), broken);
    assert!(!dir.join("target").exists(), "refused before measuring");

    std::fs::remove_file(&results_path).unwrap();
    let (code, stderr) = run(&[
        "sweep-scaling",
        "--subject",
        "counter",
        "--seeds",
        "0..3",
        "--rounds",
        "0",
        "--results",
        "results.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--rounds 0"), "{stderr}");

    let (code, stderr) = run(&[
        "sweep-scaling",
        "--subject",
        "counter",
        "--seeds",
        "0..3",
        "--rounds",
        "1",
        "--results",
        "results.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the 1-job sweep of 3 runs took") && stderr.contains("give more seeds"),
        "{stderr}"
    );
    assert!(!results_path.exists(), "no rate recorded from it");
}

/// A promotion target that cannot be a directory fails the sweep before any run, not after the
/// whole sweep and its minimising.
#[test]
fn promote_into_a_target_that_is_not_a_directory_fails_before_running() {
    let dir = scratch_dir("promote-target");
    std::fs::write(dir.join("leak.toml"), CREATE_EVICT).unwrap();
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    std::fs::write(dir.join("corpus/regressions"), "not a directory\n").unwrap();
    let (code, _, stderr) = sweep_leak_toml_promoting(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "corpus/regressions: cannot promote repros into it: it is a file, not a directory"
        ),
        "{stderr}"
    );
    assert!(
        !dir.join("out").join(results::RESULTS_FILE).exists(),
        "nothing ran: {stderr}"
    );

    // A promotion that still fails at the end (here the repro's name in the target is a
    // dangling symlink into a missing directory) fails after the summary is printed.
    std::fs::remove_file(dir.join("corpus/regressions")).unwrap();
    std::fs::create_dir_all(dir.join("corpus/regressions")).unwrap();
    let stem = sim::sweep::minimise::stem_of(
        "counter",
        &["leak-on-evict".to_string()],
        "leak:heap block:counter_create",
    );
    std::os::unix::fs::symlink(
        dir.join("missing-dir/x.toml"),
        dir.join("corpus/regressions").join(format!("{stem}.toml")),
    )
    .unwrap();
    let (code, stdout, stderr) = sweep_leak_toml_promoting(&dir);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert!(
        stdout.contains("leak:heap block:counter_create") && stdout.contains("report: "),
        "the summary comes first: {stdout}"
    );

    // `sim promote --to` a file says it is one, where it said `cannot create: File exists`.
    let repro = format!("out/repros/{stem}.toml");
    let (code, stdout, stderr) = run_sim_in(&dir, &["promote", &repro, "--to", "leak.toml"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("leak.toml: cannot promote repros into it: it is a file, not a directory"),
        "{stderr}"
    );
}

/// One directory spelt two ways (`scen` and `./scen/`) is one plan: the same labels, the same
/// shard, and a resume that runs nothing again.
#[test]
fn a_directory_spelt_differently_is_the_same_plan_and_shard() {
    let dir = scratch_dir("spelling");
    std::fs::create_dir_all(dir.join("scen")).unwrap();
    std::fs::write(dir.join("scen/leak.toml"), CREATE_EVICT).unwrap();
    std::fs::write(
        dir.join("scen/clean.toml"),
        CREATE_EVICT.replace("defects = [\"leak-on-evict\"]\n", ""),
    )
    .unwrap();
    let sweep_as = |spelling: &str| {
        run_sim_in(
            &dir,
            &[
                "sweep",
                spelling,
                "--seeds",
                "0..8",
                "--shard",
                "1/2",
                "--shrink-runs-max",
                "50",
                "--out",
                "out",
            ],
        )
    };
    let (code, _, stderr) = sweep_as("scen");
    assert_eq!(code, 1, "{stderr}");
    let first = records(&dir.join("out"));
    assert!(!first.is_empty() && first.len() < 16, "{}", first.len());
    let labels: std::collections::BTreeSet<&str> =
        first.iter().map(|r| r.scenario.as_str()).collect();
    assert!(
        labels
            .iter()
            .all(|l| ["scen/clean.toml", "scen/leak.toml"].contains(l)),
        "{labels:?}"
    );
    for spelling in ["./scen/", "scen//", "./scen/./"] {
        let (code, stdout, stderr) = sweep_as(spelling);
        assert_eq!(code, 1, "{spelling}: {stderr}");
        assert!(
            stdout.contains(&format!("(0 run now, {} resumed)", first.len())),
            "{spelling}: {stdout}"
        );
        assert!(!stderr.contains("another plan"), "{spelling}: {stderr}");
        assert!(!stdout.contains("./scen"), "{spelling}: {stdout}");
    }
    assert_eq!(records(&dir.join("out")), first);
}

/// A scenario directory with a symbolic link back up its tree (`scen/up -> .`) holds each file
/// once, for `sim run` and `sim sweep` alike: a linked directory is not entered (the walk ran the
/// file again at every level the OS resolved, 41 times, and two such links never ended), while a
/// link to a file is read. A directory that holds only a linked directory says so.
#[test]
fn a_directory_linking_back_up_its_tree_holds_each_file_once() {
    use std::os::unix::fs::symlink;
    let dir = scratch_dir("linked-dirs");
    std::fs::create_dir_all(dir.join("scen")).unwrap();
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    std::fs::write(dir.join("scen/leak.toml"), CREATE_EVICT).unwrap();
    std::fs::write(
        dir.join("elsewhere/clean.toml"),
        CREATE_EVICT.replace("defects = [\"leak-on-evict\"]\n", ""),
    )
    .unwrap();
    symlink(".", dir.join("scen/up")).unwrap();
    symlink("../elsewhere/clean.toml", dir.join("scen/linked.toml")).unwrap();

    let (code, stdout, stderr) =
        run_sim_in(&dir, &["run", "scen", "--json", "--repro-dir", "repros"]);
    assert_eq!(code, 1, "{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    let sources: Vec<&str> = value["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["scen/leak.toml", "scen/linked.toml"]);
    // The files found are run, and the linked directory left out is said, not passed over.
    assert!(
        stderr.contains("note: not followed: scen/up (a symbolic link to a directory; name the directory it links to, to run its .toml files)"),
        "{stderr}"
    );

    let (code, _, stderr) = run_sim_in(
        &dir,
        &[
            "sweep",
            "scen",
            "--seeds",
            "0..2",
            "--shrink-runs-max",
            "50",
            "--out",
            "out",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let mut labels: Vec<String> = records(&dir.join("out"))
        .into_iter()
        .map(|r| format!("{} {}", r.scenario, r.seed))
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "scen/leak.toml 0",
            "scen/leak.toml 1",
            "scen/linked.toml 0",
            "scen/linked.toml 1"
        ]
    );

    std::fs::create_dir_all(dir.join("only-a-link")).unwrap();
    symlink("../elsewhere", dir.join("only-a-link/sub")).unwrap();
    let (code, _, stderr) = run_sim_in(&dir, &["run", "only-a-link"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "only-a-link: no .toml scenario files in this directory\nnote: not followed: only-a-link/sub (a symbolic link to a directory; name the directory it links to, to run its .toml files)"
        ),
        "{stderr}"
    );
}

/// A scenario file edited between two runs of one sweep command: its old records are not
/// resumed (the sweep says so), the new version's runs are what the summary shows, and the
/// next resume reuses them. Records from before records held a version are rerun too.
#[test]
fn resuming_after_a_scenario_file_was_edited_reruns_its_records() {
    let dir = scratch_dir("edited");
    let scenario = write_file(&dir, "e.toml", CREATE_EVICT);
    let out = dir.join("ed");
    let args_owned = [
        "sweep".to_string(),
        scenario.display().to_string(),
        "--seeds".into(),
        "0..10".into(),
        "--shrink-runs-max".into(),
        "50".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
    let (code, _, stderr) = run_sim(&args);
    assert_eq!(code, 1, "the leaky version fails: {stderr}");
    let leaky = records(&out);
    assert!(leaky.iter().all(|r| r.scenario_hash.is_some()));

    // A comment and the file's own seed change no run: nothing is redone.
    std::fs::write(
        &scenario,
        format!(
            "# a comment\n{}",
            CREATE_EVICT.replace("seed = 1", "seed = 7")
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run_sim(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("(0 run now, 10 resumed)"), "{stdout}");

    // The same pairs (the file's defects are part of a pair), with ops that leak nothing.
    let ops_start = CREATE_EVICT.find("ops = [").unwrap();
    let balanced = format!(
        "{}ops = [{{ op = \"bump\" }}]\n",
        &CREATE_EVICT[..ops_start]
    );
    std::fs::write(&scenario, balanced).unwrap();
    let (code, stdout, stderr) = run_sim(&args);
    assert_eq!(code, 0, "the edited version passes: {stdout}{stderr}");
    assert!(!stdout.contains("resumed"), "{stdout}");
    assert!(
        stderr.contains("10 record(s) ran another version of their scenario file"),
        "{stderr}"
    );
    assert!(stdout.contains("no findings"), "{stdout}");
    let edited = records(&out);
    assert_eq!(edited.len(), 10);
    assert!(edited.iter().all(|r| r.verdict == "pass"));
    assert_ne!(edited[0].scenario_hash, leaky[0].scenario_hash);
    assert_eq!(
        line_count(&out.join(results::RESULTS_FILE)),
        20,
        "the old records are kept in the file"
    );
    let (code, stdout, stderr) = run_sim(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(0 run now, 10 resumed)"), "{stdout}");
    assert!(!stderr.contains("another version"), "{stderr}");

    // Records written before records held a version load, and are rerun once.
    let path = out.join(results::RESULTS_FILE);
    let unversioned: String = edited
        .iter()
        .map(|r| {
            let mut value = serde_json::to_value(r).unwrap();
            value.as_object_mut().unwrap().remove("scenario_hash");
            value.to_string() + "\n"
        })
        .collect();
    std::fs::write(&path, unversioned).unwrap();
    let (code, stdout, stderr) = run_sim(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("resumed"), "{stdout}");
    assert!(
        stderr.contains("10 record(s) ran another version"),
        "{stderr}"
    );
    let (_, stdout, _) = run_sim(&args);
    assert!(stdout.contains("(0 run now, 10 resumed)"), "{stdout}");
}

/// A merge that is not a whole plan says so, in its text and in `summary.json`: a shard missing,
/// or inputs written by different builds. The shard missing is said once (under the summary,
/// or on stderr with `--json`), though `summary.json` keeps it under both `warnings` and
/// `incomplete`.
#[test]
fn merging_part_of_a_plan_or_different_builds_warns() {
    let dir = scratch_dir("merge-partial");
    let shard_dirs: Vec<PathBuf> = (1..=3)
        .map(|index| {
            let shard_dir = dir.join(format!("sh-{index}"));
            library_sweep(&shard_dir, 0..30, Some(Shard { index, count: 3 }));
            shard_dir
        })
        .collect();
    let merge = |inputs: &[&PathBuf], out: &str| {
        let (code, stdout, stderr) = sweep_merge(inputs, dir.join(out), &[]);
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(out).join("summary.json")).unwrap(),
        )
        .unwrap();
        (code, stdout, stderr, summary)
    };
    let partial = [&shard_dirs[0], &shard_dirs[1]];
    let (code, stdout, stderr, summary) = merge(&partial, "partial");
    let said = stdout + &stderr;
    assert_eq!(code, 2, "an incomplete merge: {said}");
    assert_eq!(said.matches("shard 3/3").count(), 1, "{said}");
    assert!(
        said.contains("  - shard 3/3: no directory merged holds it"),
        "{said}"
    );
    assert!(
        summary["warnings"][0]
            .as_str()
            .unwrap()
            .contains("shard 3/3 missing"),
        "{summary}"
    );
    assert_eq!(
        summary["incomplete"],
        serde_json::json!(["shard 3/3: no directory merged holds it"]),
        "{summary}"
    );
    let (code, stdout, stderr) = sweep_merge(&partial, dir.join("partial-json"), &["--json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["incomplete"], summary["incomplete"], "{stdout}");
    assert_eq!(stderr.matches("shard 3/3").count(), 1, "{stderr}");

    let (_, _, stderr, summary) = merge(&shard_dirs.iter().collect::<Vec<_>>(), "whole");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(summary.get("warnings").is_none(), "{summary}");

    // Directories of different builds are refused, and merged only when asked.
    std::fs::write(shard_dirs[0].join("build-id"), "aaaa\n").unwrap();
    std::fs::write(shard_dirs[1].join("build-id"), "bbbb\n").unwrap();
    let all: Vec<String> = shard_dirs.iter().map(|d| d.display().to_string()).collect();
    let says = ["written by different builds of sim: aaaa"];
    sweep_merge_says(&all, dir.join("builds"), &[], 2, &says);
    assert!(!dir.join("builds").exists(), "nothing written");
    let says = ["warning: the directories were written by different builds of sim: aaaa"];
    sweep_merge_says(
        &all,
        dir.join("builds-allowed"),
        &["--allow-mismatch"],
        1,
        &says,
    );
}

/// `sim sweep --subject counter --seeds SEEDS --out OUT`, then `extra`: a sweep that finds
/// nothing (the counter with its defects off), which must exit 0.
fn clean_sweep(out: &Path, seeds: &str, extra: &[&str]) {
    let out = out.display().to_string();
    let mut args = vec![
        "sweep",
        "--subject",
        "counter",
        "--seeds",
        seeds,
        "--out",
        &out,
    ];
    args.extend(extra);
    let (code, stdout, stderr) = run_sim(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// A merge that is not its whole plan (a shard not given; a shard killed before it finished,
/// which leaves its results but no summary; an unsharded sweep killed so) writes every output
/// with the runs it has, but does not pass, even when every run it holds passed: `verdict` is
/// `fail`, `incomplete` names what is missing, `junit.xml` has a case in error, the text says
/// so, and it exits 2. A nightly job that lost part of its work must not go green.
#[test]
fn a_merge_missing_part_of_its_plan_writes_what_it_has_and_does_not_pass() {
    let dir = scratch_dir("merge-incomplete");
    let shard_dirs: Vec<PathBuf> = (1..=3)
        .map(|index| {
            let shard_dir = dir.join(format!("sh-{index}"));
            clean_sweep(&shard_dir, "0..30", &["--shard", &format!("{index}/3")]);
            shard_dir
        })
        .collect();
    let merge = |inputs: &[&PathBuf], out: &str| {
        let (code, stdout, stderr) = sweep_merge(inputs, dir.join(out), &[]);
        let read = |name: &str| std::fs::read_to_string(dir.join(out).join(name)).unwrap();
        let summary: Value = serde_json::from_str(&read("summary.json")).unwrap();
        (code, stdout + &stderr, summary, read("junit.xml"))
    };
    let (code, said, summary, junit) = merge(&shard_dirs.iter().collect::<Vec<_>>(), "whole");
    assert_eq!(code, 0, "{said}");
    assert_eq!(summary["verdict"], "pass", "{summary}");
    assert!(summary.get("incomplete").is_none(), "{summary}");
    assert!(
        !junit.contains("incomplete") && !said.contains("INCOMPLETE"),
        "{junit}{said}"
    );

    // `missing` is what `incomplete` holds; each problem's text is said once.
    let check = |out: &str, inputs: &[&PathBuf], missing: &[String], runs: u64| {
        let (code, said, summary, junit) = merge(inputs, out);
        assert_eq!(code, 2, "{said}");
        assert_eq!(summary["verdict"], "fail", "{summary}");
        assert_eq!(
            summary["runs"], runs,
            "the runs it has are merged: {summary}"
        );
        assert_eq!(
            summary["findings"].as_array().map(Vec::len),
            Some(0),
            "{summary}"
        );
        let incomplete: Vec<&str> = summary["incomplete"]
            .as_array()
            .unwrap_or_else(|| panic!("no `incomplete`: {summary}"))
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert_eq!(incomplete, missing, "{summary}");
        assert!(
            said.contains("INCOMPLETE: this merge is not the whole plan"),
            "{said}"
        );
        assert!(junit.contains(r#"type="incomplete""#), "{junit}");
        for missing in missing {
            assert!(said.contains(missing.as_str()), "{said}");
            assert!(junit.contains(missing.as_str()), "{junit}");
            // What the problem is about: the shard, or the input and the file it lacks.
            let about = match missing.split_once(": no directory") {
                Some((shard, _)) => shard,
                None => &missing[..missing.find("summary.json").unwrap()],
            };
            assert_eq!(said.matches(about).count(), 1, "`{about}` in: {said}");
        }
    };
    let shard_runs = |index: usize| records(&shard_dirs[index]).len() as u64;
    // Shard 1 not given at all.
    let not_given = vec!["shard 1/3: no directory merged holds it".to_string()];
    check(
        "not-given",
        &[&shard_dirs[1], &shard_dirs[2]],
        &not_given,
        shard_runs(1) + shard_runs(2),
    );
    // Shard 1 killed before it finished: its results, and no summary (written last).
    let killed = dir.join("killed-1");
    copy_tree(&shard_dirs[0], &killed);
    std::fs::remove_file(killed.join("summary.json")).unwrap();
    let unfinished = format!(
        "{}: no summary.json: a sweep stopped before it finished; its {} recorded runs are merged, the rest of its share never ran",
        killed.display(),
        shard_runs(0)
    );
    check(
        "killed",
        &[&killed, &shard_dirs[1], &shard_dirs[2]],
        &[not_given[0].clone(), unfinished],
        30,
    );
    // An unsharded sweep killed so, merged alone: no shard is missing, and it is still no pass.
    let whole_killed = dir.join("whole-killed");
    clean_sweep(&whole_killed, "0..10", &[]);
    std::fs::remove_file(whole_killed.join("summary.json")).unwrap();
    let unfinished = format!(
        "{}: no summary.json: a sweep stopped before it finished; its 10 recorded runs are merged, the rest of its share never ran",
        whole_killed.display()
    );
    check("whole-killed", &[&whole_killed], &[unfinished], 10);
}

/// Shards of different sweeps (other seeds, other defects) merge into no sweep's result: the
/// merge refuses them, writes nothing, and says what each directory holds, so the one that does
/// not belong is plain. A shard directory that also holds an earlier sweep's records (other
/// seeds, swept into the same `--out`) is refused too: merged, they would count as this plan's.
#[test]
fn a_merge_of_shards_of_different_sweeps_is_refused_and_says_what_each_holds() {
    let dir = scratch_dir("merge-mismatch");
    let sweep_into = |name: &str, seeds: &str, defect: bool, shard: &str| {
        let out = dir.join(name).display().to_string();
        let mut args = vec!["sweep", "--subject", "counter", "--seeds", seeds];
        if defect {
            args.extend(["--defect", "leak-on-evict"]);
        }
        args.extend(["--shard", shard, "--shrink-runs-max", "200", "--out", &out]);
        let (code, _, stderr) = run_sim(&args);
        assert!(code == 0 || code == 1, "{stderr}");
        out
    };
    let first = sweep_into("first", "0..60", true, "1/2");
    let second = sweep_into("second", "0..60", true, "2/2");
    let other_seeds = sweep_into("other-seeds", "0..90", true, "2/2");
    let other_defects = sweep_into("other-defects", "0..60", false, "2/2");
    let merged = dir.join("merged");
    for odd in [&other_seeds, &other_defects] {
        let says = [
            "error: these directories are not the shards of one sweep",
            "the merged shards come from 2 different plans",
        ];
        let stderr = sweep_merge_says(&[&first, odd], &merged, &[], 2, &says);
        assert!(
            stderr.contains(&format!("  {first}: shard 1/2 of plan "))
                && stderr.contains(&format!("  {odd}: shard 2/2 of plan ")),
            "{stderr}"
        );
        assert!(!merged.exists(), "nothing written: {stderr}");
    }
    assert!(
        sweep_merge(&[&first, &other_seeds], &merged, &[])
            .2
            .contains("(seeds 0..90); sources gen:counter [leak-on-evict]")
    );
    let (_, _, stderr) = sweep_merge(&[&first, &other_defects], &merged, &[]);
    assert!(stderr.contains("sources gen:counter; build"), "{stderr}");

    let (code, _, stderr) = sweep_merge(&[&first, &second], &merged, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // A summary cut short or edited by hand is pointed at, not taken for a missing one.
    let summary_path = Path::new(&second).join("summary.json");
    let summary_text = std::fs::read_to_string(&summary_path).unwrap();
    std::fs::write(&summary_path, &summary_text[..40]).unwrap();
    let says = format!("{}:4:1: EOF while parsing", summary_path.display());
    sweep_merge_says(&[&first, &second], &merged, &[], 2, &[&says]);
    std::fs::write(&summary_path, &summary_text).unwrap();

    // The second shard swept again into its own directory with fewer seeds: its file keeps the
    // records of 30..60, which its new summary leaves out.
    sweep_into("second", "0..30", true, "2/2");
    let says = [
        "results.jsonl: holds ",
        "the others are from an earlier sweep into that directory",
    ];
    sweep_merge_says(&[&second], &merged, &[], 2, &says);
}

/// An output directory and a scenario file whose names hold a space: every command the sweep
/// prints (the minimised repro's replay, the run as swept, the report's note, the repro file's
/// own header) still pastes into a shell and runs.
#[test]
fn replay_commands_quote_paths_that_a_shell_would_split() {
    // What a person pasting a command sees: its exit code, and its stdout then its stderr.
    let paste = |command: &str| {
        let (code, stdout, stderr) = paste_into_shell(package_dir(), command);
        (code, stdout + &stderr)
    };
    let dir = scratch_dir("sp ace");
    let scenario = write_file(&dir, "create evict.toml", CREATE_EVICT);
    let out = dir.join("out dir");
    let summary = failing_sweep_summary(&scenario, "3..5", &out);
    let finding = &summary["findings"][0];
    let repro = finding["repro"].as_str().unwrap();
    let replay = finding["replay"].as_str().unwrap();
    assert_eq!(replay, format!("sim replay '{repro}'"));
    let (code, output) = paste(replay);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("replayed: the same findings and the same trace hash as recorded"),
        "{output}"
    );
    let original = finding["original_replay"].as_str().unwrap();
    let (code, output) = paste(&format!("{original} --repro-dir '{}/run'", dir.display()));
    assert_eq!(code, 1, "`{original}`: {output}");
    assert!(
        output.contains("leak:heap block:counter_create"),
        "{output}"
    );
    let report = finding["report"].as_str().unwrap();
    assert!(
        report.contains(&format!("note: replay with `{replay}`")),
        "{report}"
    );
    let text = std::fs::read_to_string(repro).unwrap();
    assert!(text.contains(&format!("# Replay: {replay}\n")), "{text}");

    // Promoted into another such directory, the copy's header names the copy, quoted.
    let regressions = dir.join("regress ions");
    let (code, stdout, stderr) =
        run_sim(&["promote", repro, "--to", &regressions.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("promoted"), "{stdout}");
    let copy = std::fs::read_dir(&regressions)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&copy).unwrap();
    let replay_copy = format!("sim replay '{}'", copy.display());
    assert!(text.contains(&replay_copy), "{text}");
    let (code, output) = paste(&replay_copy);
    assert_eq!(code, 1, "{output}");
}

/// A scenario file of 300,000 ops whose minimised repro would print past the 4 MiB a scenario
/// file may have (two runs of shrinking leave it whole): the sweep wrote it all the same, a file
/// `sim replay` refused. It writes none now, and records the finding with why and with the
/// command that replays the first pair.
#[test]
fn a_minimised_repro_too_large_to_replay_is_not_written_and_the_finding_is_kept() {
    let dir = scratch_dir("repro-too-large");
    let scenario = write_300000_op_leak(&dir);
    let out = dir.join("out");
    let extra = ["--shrink-runs-max", "2", "--json"];
    let (code, stdout, stderr) = sweep_file(&scenario, "0..1", &out, &extra);
    assert_eq!(code, 1, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let findings = summary["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert_eq!(finding["signature"], "leak:heap block:counter_create");
    assert_eq!(finding["repro"], Value::Null, "no repro file");
    let original = finding["original_replay"].as_str().unwrap();
    assert_eq!(finding["replay"].as_str(), Some(original));
    let report = finding["report"].as_str().unwrap();
    assert!(
        report.contains("no repro file was written: the scenario file would be")
            && report.contains("could not be replayed")
            && report.contains(&format!("`{original}` reproduces the finding")),
        "{report}"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(out.join("repros"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.iter().all(|f| f.extension().unwrap() == "json"),
        "the sidecar only: {files:?}"
    );
}

/// A merge into a directory a sweep is still appending to (a shard's own, merged into while it
/// runs) is refused before it writes anything: it would replace the results file under the
/// sweep, and every run the sweep finished from then on would go into the file replaced.
#[test]
fn a_merge_into_the_directory_of_a_running_sweep_is_refused_and_changes_nothing() {
    let dir = scratch_dir("merge-into-running");
    let live = dir.join("live");
    let other = dir.join("other");
    library_sweep(&live, 0..30, Some(Shard { index: 1, count: 2 }));
    library_sweep(&other, 0..30, Some(Shard { index: 2, count: 2 }));
    let results_path = live.join(results::RESULTS_FILE);
    let before = std::fs::read(&results_path).unwrap();
    // What the running sweep holds while it appends.
    let running = results::Appender::open(&results_path).unwrap();
    let says = ["cannot merge into it: another sweep is writing to it"];
    sweep_merge_says(&[&live, &other], &live, &[], 2, &says);
    drop(running);
    assert_eq!(std::fs::read(&results_path).unwrap(), before);
    // With the sweep gone, the same merge goes ahead.
    let (code, _, stderr) = sweep_merge(&[&live, &other], &live, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(records(&live).len(), 30);
}

/// A resumed sweep's wall time is its own invocation's: the runs it found done took none of it,
/// and counting them made the rate of a sweep that ran nothing read hundreds of thousands of
/// runs a second. The shard says how many it resumed.
#[test]
fn a_resumed_sweep_rates_only_the_runs_it_ran() {
    let out = scratch_dir("resumed-rate").join("out");
    let first = library_sweep(&out, 0..200, None);
    assert_eq!(first.shards[0].resumed, 0);
    let again = library_sweep(&out, 0..200, None);
    assert_eq!((again.runs, again.shards[0].resumed), (200, 200));
    assert_eq!(again.runs_per_second, 0.0);
    let written = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(written.contains("\"resumed\": 200"), "{written}");
}

/// A sweep run again after a kill says, before it runs anything, that it resumes, from which
/// file, and how much is left.
#[test]
fn a_resumed_sweep_says_what_it_resumed_before_it_runs() {
    let out = scratch_dir("resume-note").join("out");
    library_sweep(&out, 0..40, None);
    let out_text = out.display().to_string();
    let (code, stdout, stderr) = run_sim(&[
        "sweep",
        "--subject",
        "counter",
        "--defect",
        "leak-on-evict",
        "--seeds",
        "0..100",
        "--shrink-runs-max",
        "200",
        "--out",
        &out_text,
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let failed = records(&out)
        .iter()
        .filter(|r| r.seed < 40 && r.failed())
        .count();
    let note = format!(
        "sweep: resuming {}: 40 of 100 runs already recorded ({failed} of them failed), running the other 60\n",
        out.join(results::RESULTS_FILE).display()
    );
    assert!(stderr.starts_with(&note), "{stderr}");
    assert!(stdout.contains("(60 run now, 40 resumed)"), "{stdout}");
}

/// An `--out` that is a symbolic link to nothing (a scratch disk not mounted, say) is refused
/// before anything runs, saying so: `mkdir` there fails with "File exists", which named no link.
#[test]
fn a_sweep_or_merge_into_a_symbolic_link_to_nothing_says_so() {
    let dir = scratch_dir("dangling-out");
    let link = dir.join("out");
    std::os::unix::fs::symlink(dir.join("scratch-disk/sweeps"), &link).unwrap();
    let link_text = link.display().to_string();
    let shard = dir.join("shard");
    library_sweep(&shard, 0..10, None);
    let shard_text = shard.display().to_string();
    for args in [
        vec![
            "sweep",
            "--subject",
            "counter",
            "--seeds",
            "0..10",
            "--out",
            &link_text,
        ],
        vec!["sweep", "merge", &shard_text, "--out", &link_text],
    ] {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: --out {link_text}: {link_text} is a symbolic link to {}, which does not exist",
                dir.join("scratch-disk/sweeps").display()
            )),
            "{stderr}"
        );
    }
}

/// `sim zoo`'s, `sim sweep`'s and `sim run`'s tables fit the width they are given (the
/// terminal's, or `COLUMNS` when the output is no terminal) and keep whole, each on one line,
/// every signature, path and header word: at 80 columns the findings table squeezed its
/// signatures to a letter a line and was still 90 wide, at 100 it broke them mid-word (which
/// `--signature` cannot take back), `sim zoo` broke its header `scenario`, and `sim run`'s table
/// took no width at all. A table that cannot fit with its names whole prints a record per row.
/// With no width given, rows stay whole, one line each, as a script reading them expects; each
/// finding's replay command is a line of its own under the findings, at any width.
#[test]
fn tables_fit_the_width_they_are_given_and_keep_signatures_paths_and_header_words_whole() {
    let dir = scratch_dir("tables-fit");
    let run_with_columns = |args: &[&str], columns: Option<&str>| {
        let mut command = Command::new(SIM);
        command.args(args).current_dir(support::workspace_root());
        match columns {
            Some(columns) => command.env("COLUMNS", columns),
            None => command.env_remove("COLUMNS"),
        };
        let output = command.output().expect("run sim");
        String::from_utf8(output.stdout).unwrap()
    };
    let out = dir.join("out");
    let out_text = out.display().to_string();
    let sweep_args = [
        "sweep",
        "scenarios/zoo",
        "--seeds",
        "0..2",
        "--out",
        &out_text,
    ];
    let unfitted_sweep = run_with_columns(&sweep_args, None);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let signatures: Vec<String> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["signature"].as_str().unwrap().to_string())
        .collect();
    assert!(
        signatures.iter().any(|signature| signature.contains(' ')),
        "a signature with a space, which wrapping at spaces would break: {signatures:?}"
    );
    let paths: Vec<String> =
        support::toml_files_in(&support::workspace_root().join("scenarios/zoo"))
            .iter()
            .map(|path| {
                format!(
                    "scenarios/zoo/{}",
                    path.file_name().unwrap().to_string_lossy()
                )
            })
            .collect();
    // Each command, the header words of its tables (but the first column's, which a record
    // shows as its heading, and only a table above the column), and the part of its output that
    // is tables:
    // not the lines about the run (`sweep: …`, `zoo: …`), nor a run's report before its summary
    // table, nor the replay commands, which are whole commands to paste.
    let run_args = ["run", "scenarios/zoo"];
    let commands: [(&[&str], &str, &str); 3] = [
        (
            &["zoo", "scenarios/zoo"],
            "scenario",
            "subject defects with defects defects off findings (with defects)",
        ),
        (
            &sweep_args,
            "scenario #",
            "subject defects runs failed found signature subject runs first seed seeds to first \
             ops (minimised)",
        ),
        (
            &run_args,
            "scenario",
            "subject defects verdict findings trace",
        ),
    ];
    let tables = |args: &[&str], text: &str| -> String {
        let text = if args[0] == "run" {
            // The summary table follows the runs' reports, after a blank line.
            text.rsplit_once("\n\n").unwrap().1
        } else {
            text
        };
        text.lines()
            .filter(|line| {
                let about_the_run = ["sweep: ", "zoo: ", "report: "]
                    .iter()
                    .any(|prefix| line.starts_with(prefix));
                let replay = line.starts_with("  #") && line.contains(" sim replay ");
                !about_the_run && !replay
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (args, first_headers, header) in commands {
        let unfitted = if args[0] == "sweep" {
            unfitted_sweep.clone()
        } else {
            run_with_columns(args, None)
        };
        // With no width, a row is one line: as many lines between borders as rows and headers.
        let row_lines = unfitted
            .lines()
            .filter(|line| line.starts_with('│'))
            .count();
        let rows_and_headers = match args[0] {
            "zoo" | "run" => paths.len() + 1,
            _ => paths.len() + 1 + signatures.len() + 1,
        };
        assert_eq!(row_lines, rows_and_headers, "{unfitted}");
        assert!(
            unfitted.lines().any(|line| line.chars().count() > 150),
            "unfitted rows stay whole:\n{unfitted}"
        );
        for width in [80, 100] {
            let fitted = run_with_columns(args, Some(&width.to_string()));
            let tables = tables(args, &fitted);
            for line in tables.lines() {
                assert!(
                    line.chars().count() <= width,
                    "wider than {width}:\n{line}\n{fitted}"
                );
            }
            for whole in signatures.iter().chain(&paths) {
                assert!(
                    tables.lines().any(|line| line.contains(whole.as_str())),
                    "`{whole}` is not whole on a line at {width} columns:\n{fitted}"
                );
            }
            let words: Vec<&str> = tables
                .split(|c: char| c.is_whitespace() || "│┆".contains(c))
                .map(|word| word.trim_end_matches(':'))
                .collect();
            let is_table = tables.contains('┌');
            let header = match is_table {
                true => format!("{first_headers} {header}"),
                false => header.to_string(),
            };
            for word in header.split(' ') {
                assert!(
                    words.contains(&word),
                    "header word `{word}` broken at {width} columns:\n{fitted}"
                );
            }
        }
    }
    let fitted = run_with_columns(&sweep_args, Some("80"));
    let replays: Vec<&str> = fitted
        .lines()
        .filter(|line| line.starts_with("  #"))
        .collect();
    assert_eq!(replays.len(), signatures.len(), "{fitted}");
    assert!(
        replays[0].starts_with(&format!("  #1 sim replay {out_text}/repros/")),
        "{fitted}"
    );
}

/// A finding two scenarios show is reported once, from the first; in `junit.xml`, the other
/// scenario's failure held its signature and no report, an empty failure in a CI's view. Each
/// failing test case now holds the report of every finding it showed, naming the first pair
/// when that was another scenario's.
#[test]
fn every_failing_junit_case_holds_the_report_of_each_finding_it_showed() {
    let out = scratch_dir("junit-shared").join("out");
    let out_text = out.display().to_string();
    let (code, _, stderr) = run_sim_in(
        &support::workspace_root(),
        &[
            "sweep",
            "scenarios/zoo/cross-thread-free-exit.toml",
            "scenarios/zoo/heap-delete-exit.toml",
            "--seeds",
            "0..2",
            "--out",
            &out_text,
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let cases: Vec<&str> = junit.split("<testcase ").skip(1).collect();
    assert_eq!(cases.len(), 2, "{junit}");
    let signature = "fault:released page:segment_collect";
    for case in &cases {
        assert!(
            case.contains(&format!("runs found: {signature}\""))
                && case.contains(&format!("note: signature `{signature}`")),
            "{case}"
        );
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let first = summary["findings"][0]["first_scenario"].as_str().unwrap();
    let other = cases
        .iter()
        .find(|case| !case.starts_with(&format!("name=\"{first} ")))
        .unwrap();
    assert!(
        other.contains(&format!("note: first found by {first} seed 0x")),
        "{other}"
    );
}

/// `sim sweep --subject counter --defect leak-on-evict --seeds SEEDS [--shard S] --out OUT`, with
/// its exit code checked (0 or 1) and its stderr returned.
fn cli_sweep(out: &Path, seeds: &str, extra: &[&str]) -> String {
    let out = out.display().to_string();
    let mut args = vec![
        "sweep",
        "--subject",
        "counter",
        "--defect",
        "leak-on-evict",
        "--seeds",
        seeds,
        "--out",
        &out,
    ];
    if !extra.contains(&"--shrink-runs-max") {
        args.extend(["--shrink-runs-max", "200"]);
    }
    args.extend(extra);
    let (code, stdout, stderr) = run_sim(&args);
    assert!(code == 0 || code == 1, "{stdout}{stderr}");
    stderr
}

/// `sim sweep merge INPUT... --out OUT`, then `extra` (such as `--allow-mismatch`): (exit code,
/// stdout, stderr), whatever the code.
fn sweep_merge<P: AsRef<Path>>(
    inputs: &[P],
    out: impl AsRef<Path>,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec!["sweep".to_string(), "merge".to_string()];
    args.extend(
        inputs
            .iter()
            .map(|input| input.as_ref().display().to_string()),
    );
    args.extend(["--out".to_string(), out.as_ref().display().to_string()]);
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_sim(&args)
}

/// `sweep_merge`, checked: it exits `code`, and its stderr holds each of `says`; returns the
/// stderr.
fn sweep_merge_says<P: AsRef<Path>>(
    inputs: &[P],
    out: impl AsRef<Path>,
    extra: &[&str],
    code: i32,
    says: &[&str],
) -> String {
    let (exit_code, stdout, stderr) = sweep_merge(inputs, out, extra);
    assert_eq!(exit_code, code, "{stdout}{stderr}");
    for said in says {
        assert!(stderr.contains(said), "no `{said}` in: {stderr}");
    }
    stderr
}

/// The first sidecar (by name) in `out/repros`.
fn first_sidecar(out: &Path) -> PathBuf {
    let mut sidecars: Vec<PathBuf> = std::fs::read_dir(out.join("repros"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    sidecars.sort();
    sidecars
        .into_iter()
        .next()
        .expect("the sweep found something")
}

/// A repro sidecar damaged between two sweeps of one directory is named, at its line and
/// column, with what becomes of its finding (minimised again, which rewrites the file), rather
/// than skipped in silence.
#[test]
fn a_corrupt_repro_sidecar_is_named_and_its_finding_minimised_again() {
    // Through the command line: a library sweep's results lock could be held a moment longer
    // by a process another test forks.
    let out = scratch_dir("corrupt-sidecar").join("out");
    cli_sweep(&out, "0..40", &[]);
    let sidecar = first_sidecar(&out);
    let whole = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, "{\n  \"subject\": 3\n}\n").unwrap();
    let stderr = cli_sweep(&out, "0..40", &[]);
    let expected = format!(
        "warning: {}:2:14: not a repro sidecar (invalid type: integer `3`, expected a string); the file is ignored, and its finding `leak:heap block:counter_create` is minimised again, which replaces it\n",
        sidecar.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(std::fs::read_to_string(&sidecar).unwrap(), whole);
}

/// A merge that meets a damaged sidecar says which file and what the merge does without it.
#[test]
fn a_merge_names_a_corrupt_repro_sidecar_and_the_finding_it_leaves_without_a_repro() {
    let dir = scratch_dir("merge-corrupt-sidecar");
    let (first, second) = (dir.join("first"), dir.join("second"));
    cli_sweep(&first, "0..40", &["--shard", "1/2"]);
    cli_sweep(&second, "0..40", &["--shard", "2/2"]);
    // The same finding's sidecar damaged in both shards: no directory has a repro for it.
    let name = first_sidecar(&first).file_name().unwrap().to_owned();
    let mut damaged = Vec::new();
    for shard in [&first, &second] {
        let path = shard.join("repros").join(&name);
        if path.exists() {
            std::fs::write(&path, "{\"subject\": ").unwrap();
            damaged.push(path);
        }
    }
    // Merges into `out`, which exits 1 (the finding) and warns of each damaged sidecar with
    // `warning: PATH:` and then `says`.
    let merge_warns = |out: &str, says: &str| {
        let (code, _, stderr) = sweep_merge(&[&first, &second], dir.join(out), &[]);
        assert_eq!(code, 1, "{stderr}");
        for path in &damaged {
            let expected = format!("warning: {}:{says}", path.display());
            assert!(stderr.contains(&expected), "{stderr}");
        }
    };
    merge_warns(
        "merged",
        "1:12: not a repro sidecar (EOF while parsing a value); the file is ignored, so the merge has no repro for `",
    );
    // An empty sidecar: columns start at 1 here as everywhere (serde_json says 0).
    for path in &damaged {
        std::fs::write(path, "").unwrap();
    }
    merge_warns(
        "merged-empty",
        "1:1: not a repro sidecar (EOF while parsing a value)",
    );
}

/// A second sweep of a directory whose repros are all up to date has nothing to minimise and
/// does not say it is minimising.
#[test]
fn a_sweep_whose_repros_are_up_to_date_does_not_say_it_is_minimising() {
    let out = scratch_dir("up-to-date-repros").join("out");
    let first = cli_sweep(&out, "0..40", &[]);
    assert!(first.contains("sweep: minimising findings"), "{first}");
    let again = cli_sweep(&out, "0..40", &[]);
    assert!(!again.contains("minimising"), "{again}");
}

/// The temporary files of a sweep killed while writing a repro (`STEM.partial`) are removed by
/// the next sweep of the directory; files of other names are left alone.
#[test]
fn a_later_sweep_removes_the_partial_files_a_killed_one_left_in_repros() {
    let out = scratch_dir("stale-partials").join("out");
    cli_sweep(&out, "0..40", &[]);
    let repros = out.join("repros");
    let ours = first_sidecar(&out).with_extension("partial");
    std::fs::write(&ours, "# half a repro").unwrap();
    let not_ours = write_file(&repros, "notes.partial", "mine");
    cli_sweep(&out, "0..40", &[]);
    assert!(!ours.exists(), "{}", ours.display());
    assert!(not_ours.exists());
}

/// A sweep or merge killed while writing a file of its directory whole leaves the file's
/// temporary: `results.partial`, which only a merge writes, stayed for good beside the results.
/// The next sweep, and the next merge, into the directory remove every such temporary (and a
/// merge those of repros too); the results are whole, and other files are left alone.
#[test]
fn a_later_sweep_or_merge_removes_the_temporaries_a_killed_merge_left() {
    let dir = scratch_dir("stale-temporaries");
    let (swept, merged) = (dir.join("swept"), dir.join("merged"));
    cli_sweep(&swept, "0..40", &[]);
    let merge = || {
        let (code, _, stderr) = sweep_merge(&[&swept], &merged, &[]);
        assert_eq!(code, 1, "{stderr}");
    };
    merge();
    let expected = essence(&records(&swept));
    assert_eq!(expected.len(), 40);
    for (out, merged_into) in [(&swept, false), (&merged, true)] {
        let temporaries = [
            "results.partial",
            "summary.partial",
            "junit.partial",
            "report.partial",
            "build-id.partial",
            "settings.partial",
        ]
        .map(|name| out.join(name));
        let line = std::fs::read_to_string(out.join(results::RESULTS_FILE)).unwrap();
        for temporary in &temporaries {
            // Half of what was being written.
            std::fs::write(temporary, &line[..line.len() / 2]).unwrap();
        }
        let repro_temporary = first_sidecar(out).with_extension("partial");
        std::fs::write(&repro_temporary, "{\"subject\": ").unwrap();
        let not_ours = write_file(out, "notes.partial", "mine");
        if merged_into {
            merge();
        } else {
            cli_sweep(out, "0..40", &[]);
        }
        for temporary in temporaries.iter().chain([&repro_temporary]) {
            assert!(!temporary.exists(), "{}", temporary.display());
        }
        assert!(not_ours.exists());
        assert_eq!(essence(&records(out)), expected, "{}", out.display());
    }
}

/// Shards run with different `--recheck-percent` or `--shrink-runs-max` are refused as shards of
/// different sweeps are (their merged counts and repro sizes would mean nothing), each directory
/// said with its settings; `--allow-mismatch` merges them with the problem as a warning.
#[test]
fn a_merge_of_shards_run_with_different_recheck_or_shrink_settings_is_refused() {
    let dir = scratch_dir("merge-settings");
    let (first, second) = (dir.join("first"), dir.join("second"));
    cli_sweep(&first, "0..40", &["--shard", "1/2"]);
    cli_sweep(
        &second,
        "0..40",
        &["--shard", "2/2", "--recheck-percent", "50"],
    );
    let third = dir.join("third");
    cli_sweep(
        &third,
        "0..40",
        &["--shard", "2/2", "--shrink-runs-max", "150"],
    );
    let merged = dir.join("merged");
    let [first, second, third] = [&first, &second, &third].map(|p| p.display().to_string());
    let differ = format!(
        "the directories were swept with different --recheck-percent: 1 ({first}); 50 ({second})"
    );
    let says = [
        differ.as_str(),
        "; --recheck-percent 1 --shrink-runs-max 200\n",
        "; --recheck-percent 50 --shrink-runs-max 200\n",
    ];
    sweep_merge_says(&[&first, &second], &merged, &[], 2, &says);
    assert!(!merged.exists());
    let says = format!(
        "the directories were swept with different --shrink-runs-max: 150 ({third}); 200 ({first})"
    );
    sweep_merge_says(&[&first, &third], &merged, &[], 2, &[&says]);
    let says = ["warning: the directories were swept with different --recheck-percent"];
    sweep_merge_says(&[&first, &second], &merged, &["--allow-mismatch"], 1, &says);
}

/// Fields a newer build wrote into run records and repro sidecars survive a merge by this one,
/// which rewrites both: kept as they were, after the fields it knows, in key order.
#[test]
fn a_merge_keeps_the_fields_of_records_and_sidecars_it_does_not_know() {
    let dir = scratch_dir("merge-unknown-fields");
    let shard = dir.join("shard");
    cli_sweep(&shard, "0..40", &[]);
    let results_path = shard.join(results::RESULTS_FILE);
    let newer: String = std::fs::read_to_string(&results_path)
        .unwrap()
        .lines()
        .map(|line| {
            format!(
                "{{\"zeta\":1,\"from_the_future\":{{\"a\":[2],\"b\":\"x\"}},{}\n",
                &line[1..]
            )
        })
        .collect();
    std::fs::write(&results_path, newer).unwrap();
    let sidecar = first_sidecar(&shard);
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, text.replacen('{', "{\"later\": true,", 1)).unwrap();

    let merged = dir.join("merged");
    let (code, _, stderr) = sweep_merge(&[&shard], &merged, &[]);
    assert_eq!(code, 1, "{stderr}");
    let written = std::fs::read_to_string(merged.join(results::RESULTS_FILE)).unwrap();
    assert_eq!(written.lines().count(), 40);
    for line in written.lines() {
        assert!(
            line.ends_with(",\"from_the_future\":{\"a\":[2],\"b\":\"x\"},\"zeta\":1}"),
            "{line}"
        );
    }
    let merged_sidecar = merged.join("repros").join(sidecar.file_name().unwrap());
    let text = std::fs::read_to_string(merged_sidecar).unwrap();
    assert!(text.ends_with("  \"later\": true\n}\n"), "{text}");
}

/// The fields a newer build wrote into a record's `findings[]` entries survive a merge too, kept
/// as the record's are: after the fields this build knows, in key order.
#[test]
fn a_merge_keeps_the_fields_of_findings_it_does_not_know() {
    let dir = scratch_dir("merge-unknown-finding-fields");
    let shard = dir.join("shard");
    std::fs::create_dir_all(&shard).unwrap();
    let finding = "{\"signature\":\"leak:counter:create\",\"kind\":\"leak\",\"resource\":\"counter\",\
        \"site\":\"create\",\"lifecycle\":\"l\",\"headline\":\"1 counter not released\",\
        \"zeta\":[1,{\"b\":2}],\"from_the_future\":\"x\"}";
    let record = format!(
        "{{\"scenario\":\"gen:counter\",\"subject\":\"counter\",\"defects\":[\"leak-on-evict\"],\
         \"seed\":3,\"verdict\":\"fail\",\"signatures\":[\"leak:counter:create\"],\
         \"findings\":[{finding}],\"trace_hash\":\"0x0000000000000007\",\"ops\":3,\"steps\":4,\
         \"rechecked\":true,\"duration_ms\":0.5}}\n"
    );
    std::fs::write(shard.join(results::RESULTS_FILE), &record).unwrap();

    let merged = dir.join("merged");
    let (code, _, stderr) = sweep_merge(&[&shard], &merged, &[]);
    // A directory with no summary is a sweep that did not finish: the merge is incomplete (2),
    // and written all the same.
    assert_eq!(code, 2, "{stderr}");
    let written = std::fs::read_to_string(merged.join(results::RESULTS_FILE)).unwrap();
    assert!(
        written.contains(
            ",\"headline\":\"1 counter not released\",\"from_the_future\":\"x\",\"zeta\":[1,{\"b\":2}]}]"
        ),
        "{written}"
    );
}

/// A resume is given the settings its directory's results were made with, or it is refused
/// (exit 2, nothing run or rewritten), naming the recorded and the given settings and both ways
/// on. Resumed, the results of other settings went under a summary that named the new ones: a
/// 0% recheck sample counted as a 100% one's, a repro shrunk with 1 run kept as if shrunk with
/// 5000, and a merge's check of settings passed on that word. A directory written before the
/// settings were recorded resumes as it did; a merge records the settings its shards agree on.
#[test]
fn a_resume_with_other_recheck_or_shrink_settings_is_refused() {
    let dir = scratch_dir("resume-settings");
    let out = dir.join("out");
    let sweep_into = |out: &Path, extra: &[&str]| {
        let out = out.display().to_string();
        let mut args = vec![
            "sweep",
            "--subject",
            "counter",
            "--defect",
            "leak-on-evict",
            "--seeds",
            "0..40",
            "--out",
            &out,
        ];
        args.extend(extra);
        run_sim(&args)
    };
    let recorded = ["--recheck-percent", "0", "--shrink-runs-max", "1"];
    let (code, _, stderr) = sweep_into(&out, &recorded);
    assert_eq!(code, 1, "{stderr}");
    let kept = ["results.jsonl", "summary.json", "settings.json"]
        .map(|name| std::fs::read_to_string(out.join(name)).unwrap());
    for (given, given_flags) in [
        (
            vec!["--recheck-percent", "100", "--shrink-runs-max", "1"],
            "--recheck-percent 100 --shrink-runs-max 1",
        ),
        (
            vec!["--recheck-percent", "0"],
            "--recheck-percent 0 --shrink-runs-max 5000",
        ),
    ] {
        let (code, stdout, stderr) = sweep_into(&out, &given);
        assert_eq!(code, 2, "{stdout}{stderr}");
        let says = format!(
            "error: {}: its results were swept with --recheck-percent 0 --shrink-runs-max 1, and this sweep gives {given_flags};",
            out.display()
        );
        assert!(stderr.contains(&says), "{stderr}");
        assert!(
            stderr.contains("start afresh with another --out")
                && stderr.contains(
                    "to resume, give the recorded settings: --recheck-percent 0 --shrink-runs-max 1"
                ),
            "{stderr}"
        );
        let now = ["results.jsonl", "summary.json", "settings.json"]
            .map(|name| std::fs::read_to_string(out.join(name)).unwrap());
        assert_eq!(now, kept, "nothing rewritten");
    }
    let (code, stdout, stderr) = sweep_into(&out, &[&recorded[..], &["--json"]].concat());
    assert_eq!(code, 1, "the recorded settings resume: {stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["determinism"]["rechecked"], summary["runs_failed"],
        "failing runs only: {stdout}"
    );
    assert_eq!(summary["shards"][0]["shrink_runs_max"], 1);

    // Written before sims recorded the settings: resumed with whatever is given, as always, and
    // left unrecorded, since what made its results is unknown.
    std::fs::remove_file(out.join("settings.json")).unwrap();
    let (code, _, stderr) = sweep_into(&out, &["--recheck-percent", "100"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!out.join("settings.json").exists());

    // A merge of shards that agree records their settings; a sweep resumed in it is checked.
    let shards = ["1/2", "2/2"].map(|shard| {
        let shard_dir = dir.join(shard.replace('/', "-of-"));
        let (code, _, stderr) = sweep_into(&shard_dir, &["--shard", shard]);
        assert_eq!(code, 1, "{stderr}");
        shard_dir
    });
    let merged = dir.join("merged");
    let (code, _, stderr) = sweep_merge(&shards, &merged, &[]);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = sweep_into(&merged, &["--shrink-runs-max", "7"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("swept with --recheck-percent 1 --shrink-runs-max 5000, and this sweep gives --recheck-percent 1 --shrink-runs-max 7"),
        "{stderr}"
    );
    let (code, _, stderr) = sweep_into(&merged, &[]);
    assert_eq!(code, 1, "{stderr}");
}

/// A determinism finding that a merge makes of two inputs' different runs of one pair has no
/// repro, and gets the pair's own replay command: in the table's replay list (where it printed
/// a bare `  #N ` line) and as `replay` and `original_replay` in `summary.json` (both null).
#[test]
fn a_determinism_finding_a_merge_makes_is_given_the_pairs_replay_command() {
    let dir = scratch_dir("merge-determinism-replay");
    let (whole, second) = (dir.join("whole"), dir.join("second"));
    cli_sweep(&whole, "0..40", &[]);
    cli_sweep(&second, "0..40", &["--shard", "2/2"]);
    // A copy of the second shard in which one pair ran otherwise than in the unsharded sweep:
    // one trace hash changed.
    let tampered = dir.join("tampered");
    copy_tree(&second, &tampered);
    let results_path = tampered.join(results::RESULTS_FILE);
    let text = std::fs::read_to_string(&results_path).unwrap();
    let (line, rest) = text.split_once('\n').unwrap();
    let mut record: RunRecord = serde_json::from_str(line).unwrap();
    let seed = record.seed;
    record.trace_hash = "0x00000000000000ff".into();
    let changed = serde_json::to_string(&record).unwrap();
    std::fs::write(&results_path, format!("{changed}\n{rest}")).unwrap();

    let merged = dir.join("merged");
    let (code, stdout, stderr) = sweep_merge(&[&whole, &tampered], &merged, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let command = format!(
        "sim replay gen:counter:{}:leak-on-evict",
        sim::seed::format_seed(seed)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap())
            .unwrap();
    let findings = summary["findings"].as_array().unwrap();
    let (number, finding) = findings
        .iter()
        .enumerate()
        .find(|(_, f)| f["kind"] == "determinism")
        .expect("the merge found the mismatch");
    assert_eq!(finding["replay"], command.as_str(), "{finding}");
    assert_eq!(finding["original_replay"], command.as_str(), "{finding}");
    assert!(finding["repro"].is_null(), "{finding}");
    let listed = format!("  #{} {command}\n", number + 1);
    assert!(stdout.contains(&listed), "{stdout}");
    let replays = stdout.split_once("\nreplay:\n").unwrap().1;
    for line in replays.lines().take(findings.len()) {
        assert!(
            line.contains(" sim "),
            "a line with no command: {line:?} in {stdout}"
        );
    }
}

/// `sim promote` points the `# Replay:` line at the promoted file, whatever spelling of the
/// repro's path it was given: the sweep's (here absolute) path is rewritten even when the file
/// was named relatively, where it was kept and broke once the sweep's directory was deleted.
#[test]
fn a_promoted_repro_replays_from_where_it_was_promoted_to_however_it_was_named() {
    let dir = scratch_dir("promote-replay-line");
    let sweep_dir = dir.join("sweep");
    cli_sweep(&sweep_dir, "0..10", &[]);
    let repro = first_sidecar(&sweep_dir).with_extension("toml");
    let name = repro.file_name().unwrap().to_str().unwrap().to_string();
    let written = std::fs::read_to_string(&repro).unwrap();
    assert!(
        written.contains(&format!("# Replay: sim replay {}\n", repro.display())),
        "the sweep names its repro by its absolute path: {written}"
    );
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("corpus/regressions")).unwrap();
    let given = format!("../sweep/repros/{name}");
    let (code, stdout, stderr) = run_sim_in(&work, &["promote", &given]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let promoted = std::fs::read_to_string(work.join("corpus/regressions").join(&name)).unwrap();
    let replay_line = format!("# Replay: sim replay corpus/regressions/{name}\n");
    assert!(promoted.contains(&replay_line), "{promoted}");
    assert_eq!(
        promoted,
        written.replace(
            &format!("# Replay: sim replay {}\n", repro.display()),
            &replay_line
        ),
        "nothing else changes"
    );
    std::fs::remove_dir_all(&sweep_dir).unwrap();
    let command = replay_line
        .trim_end()
        .strip_prefix("# Replay: ")
        .unwrap()
        .to_string();
    let (code, stdout, stderr) = paste_into_shell(&work, &command);
    assert_eq!(code, 1, "the repro replays its finding: {stdout}{stderr}");
    assert!(
        stdout.contains("error[leak]") && !stdout.contains("replay mismatch"),
        "{stdout}"
    );
}

/// `shaky`'s op: a number that its `validate` takes for a bug when it is under
/// `SHAKY_BROKEN_BELOW`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum ShakyOp {
    Tick { n: u8 },
}

/// `tick`s under this make `validate` panic: about one op in 64, so that some of a few seeds'
/// generated scenarios hold one and some do not.
const SHAKY_BROKEN_BELOW: u8 = 4;

/// A subject whose `validate` panics on some generated ops. Generation runs outside any run, so
/// its panic is not a finding but the pair's internal error (as `validate` panicking while a file
/// is parsed is, exit 3), whose message says the subject's code panicked: a stand-in for a bug
/// in sim's own code that only some pairs of a sweep meet. `HOST_BACKED` runs it through the sweep's fork servers.
struct Shaky<const HOST_BACKED: bool>;

impl<const HOST_BACKED: bool> Subject for Shaky<HOST_BACKED> {
    type Op = ShakyOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: if HOST_BACKED { "shaky-host" } else { "shaky" },
            summary: "validate panics on a small tick: an internal error of some generated pairs",
            host_backed: HOST_BACKED,
            ..SubjectInfo::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        Shaky
    }

    fn op_name(_op: &ShakyOp) -> &'static str {
        "tick"
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &ShakyOp) -> Step<Self> {
        Step::Done
    }

    fn validate(op: &ShakyOp, _names: &mut sim::subject::Names) -> Result<(), String> {
        let ShakyOp::Tick { n } = op;
        assert!(*n >= SHAKY_BROKEN_BELOW, "sim's own code broke on tick {n}");
        Ok(())
    }
}

/// The registry of the sweep tests of internal errors: the built-in subjects, both `shaky`s,
/// `fragile-shrink` and `undecodable`.
fn shaky_registry() -> Registry {
    Registry::builtin()
        .with(erase::<Shaky<false>>())
        .with(erase::<Shaky<true>>())
        .with(erase::<FragileShrink>())
        .with(erase::<Undecodable>())
}

/// `undecodable`'s op, whose `Arbitrary` panics: the subject's own bug in decoding, which only
/// generating its scenarios meets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum UndecodableOp {
    Nothing,
}

impl<'a> Arbitrary<'a> for UndecodableOp {
    fn arbitrary(_input: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        panic!("the decoding broke")
    }
}

/// A subject whose generated scenarios cannot be made: its op's `Arbitrary` panics.
struct Undecodable;

impl Subject for Undecodable {
    type Op = UndecodableOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "undecodable",
            summary: "its op's Arbitrary panics: an internal error of every generated pair",
            ..SubjectInfo::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        Undecodable
    }

    fn op_name(_op: &UndecodableOp) -> &'static str {
        "nothing"
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &UndecodableOp) -> Step<Self> {
        Step::Done
    }
}

/// `fragile-shrink`'s ops: a `mark`, a `check` of it, and a `boom`, the subject's own bug.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum FragileShrinkOp {
    Mark,
    Check,
    Boom,
}

/// A subject whose `boom` panics (a finding, `panic:…`) and whose `validate` panics on a `check`
/// with no `mark` before it: a file written with the `mark` runs and finds the panic, and only
/// the shrinker, cutting the `mark` the finding does not need, meets sim's "own" bug. A stand-in
/// for a bug in sim's code that only the minimising of a finding meets.
struct FragileShrink;

impl Subject for FragileShrink {
    type Op = FragileShrinkOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "fragile-shrink",
            summary: "validate panics on a check without its mark, which only shrinking makes",
            ..SubjectInfo::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        FragileShrink
    }

    fn op_name(op: &FragileShrinkOp) -> &'static str {
        match op {
            FragileShrinkOp::Mark => "mark",
            FragileShrinkOp::Check => "check",
            FragileShrinkOp::Boom => "boom",
        }
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, op: &FragileShrinkOp) -> Step<Self> {
        assert!(*op != FragileShrinkOp::Boom, "the subject's own bug");
        Step::Done
    }

    fn validate(op: &FragileShrinkOp, names: &mut sim::subject::Names) -> Result<(), String> {
        match op {
            FragileShrinkOp::Mark => names.define("mark", 0),
            FragileShrinkOp::Check => assert!(
                names.is_defined("mark", 0),
                "sim's own code broke while shrinking"
            ),
            FragileShrinkOp::Boom => {}
        }
        Ok(())
    }
}

/// A `fragile-shrink` scenario whose run finds `boom`'s panic and whose shrinking panics.
const FRAGILE_SHRINK_FILE: &str = r#"name = "fragile-shrink"
subject = "fragile-shrink"
seed = 1

[[lifecycle]]
name = "main"
ops = [
  { op = "mark" },
  { op = "check" },
  { op = "check" },
  { op = "boom" },
]
"#;

/// The seeds this sweep test runs of `shaky`: from the first whose generated scenario breaks
/// `validate` (so that the sweep's check of its first scenario meets the bug too) up to
/// `SHAKY_SEEDS_END`; and which of them break. Found by generating each, as the sweep does,
/// rather than written down, so that the test follows the generator.
fn shaky_seeds() -> (std::ops::Range<u64>, Vec<u64>) {
    const SHAKY_SEEDS_END: u64 = 16;
    let registry = shaky_registry();
    let options = sim::scenario::generate::GenerateOptions {
        defects: vec![],
        faults: sim::sweep::GENERATED_FAULTS,
    };
    let breaks = |seed: u64| {
        let subject = registry.get("shaky").unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            subject.generate(seed, &options)
        }))
        .is_err()
    };
    let broken: Vec<u64> = (0..SHAKY_SEEDS_END).filter(|&seed| breaks(seed)).collect();
    let seeds = broken[0]..SHAKY_SEEDS_END;
    assert!(
        broken.len() > 1 && (broken.len() as u64) < seeds.end - seeds.start,
        "some pairs break and some do not: {broken:?}"
    );
    (seeds, broken)
}

fn install_panic_location_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(sim::subject::install_panic_location_hook);
}

/// A sweep of `subject` (a `shaky`) over `seeds` into `out` with `jobs` workers: it must finish.
fn shaky_sweep(
    subject: &str,
    seeds: std::ops::Range<u64>,
    out: &Path,
    jobs: usize,
) -> sim::sweep::SweepReport {
    let mut config = SweepConfig::new(vec![Source::generated(subject, vec![])], seeds, out);
    config.jobs = jobs;
    sweep(&shaky_registry(), &config).unwrap_or_else(|error| panic!("the sweep stopped: {error:?}"))
}

/// A panic of sim's own code in some pairs (here `validate`, called while their scenario is
/// generated, outside any run) is an internal error of those pairs alone: every other pair runs
/// and is recorded, the summary is written and lists each broken pair apart from the findings,
/// with its message, where it panicked and its replay command, in pair order whatever the
/// workers (threads, and the fork servers of a host-backed subject). It stopped the whole sweep
/// with exit 3, no summary and the pairs after it never run.
#[test]
fn a_panic_of_sim_in_one_pair_is_that_pairs_internal_error_and_the_sweep_goes_on() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-pairs");
    let (seeds, broken) = shaky_seeds();
    let pairs = seeds.end - seeds.start;
    let mut summaries = Vec::new();
    for (subject, jobs) in [("shaky", 1), ("shaky", 3), ("shaky-host", 2)] {
        let out = dir.join(format!("{subject}-{jobs}"));
        let report = shaky_sweep(subject, seeds.clone(), &out, jobs);
        // Detection and scaling, which measure with a sweep, stop at them as sim's error.
        let stop = report.internal_errors_stop().unwrap_err();
        assert!(stop.internal, "{stop:?}");
        assert!(
            stop.message
                .contains(&format!("could not run {} pair(s)", broken.len())),
            "{stop:?}"
        );
        let summary = report.summary;
        assert_eq!((report.ran, summary.runs), (pairs as usize, pairs));
        assert_eq!(summary.verdict, "fail");
        assert!(summary.findings.is_empty(), "{:?}", summary.findings);
        assert_eq!(summary.runs_failed, 0, "an internal error is no finding");
        let errors = &summary.internal_errors;
        assert_eq!(
            errors.iter().map(|e| e.seed).collect::<Vec<_>>(),
            broken,
            "{subject} with {jobs} job(s)"
        );
        for error in errors {
            assert_eq!(
                (error.scenario.as_str(), error.subject.as_str()),
                (format!("gen:{subject}").as_str(), subject)
            );
            assert!(error.subject_code, "{error:?}");
            assert!(
                error.message.starts_with(&format!(
                    "subject `{subject}`'s own code panicked: its `validate_op`, checking a \
                     generated op: sim's own code broke on tick "
                )),
                "{}",
                error.message
            );
            assert!(
                error
                    .message
                    .contains(&format!(" (panicked at {}:", file!())),
                "{}",
                error.message
            );
            assert_eq!(
                error.replay,
                sim::report::replay_command(sim::report::generated_repro(subject, error.seed, &[]))
            );
        }
        assert_eq!(summary.scenarios[0].internal_errors, broken.len() as u64);
        // Every pair is on file, and the summary is written and says the same.
        let recorded = records(&out);
        assert_eq!(recorded.len() as u64, pairs);
        let on_file: Vec<u64> = recorded
            .iter()
            .filter(|r| r.internal_error.is_some())
            .map(|r| r.seed)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(on_file, broken);
        let written = summary::read(&out).unwrap().expect("summary.json written");
        assert_eq!(written.internal_errors, summary.internal_errors);
        let junit = std::fs::read_to_string(out.join(summary::JUNIT_FILE)).unwrap();
        assert!(junit.contains("internal errors"), "{junit}");
        summaries.push(summary);
    }
    // The same sweep, whatever its workers: the same runs, hash and internal errors.
    let (threads_one, threads_three) = (&summaries[0], &summaries[1]);
    assert_eq!(threads_one.trace_hash, threads_three.trace_hash);
    assert_eq!(threads_one.internal_errors, threads_three.internal_errors);
}

/// A panic of the subject's `Arbitrary` while a sweep generates a pair's scenario is the pair's
/// internal error, said as the subject's code (which method, where) and flagged so in the
/// records and the summary (`subject_code`), not told by its text: it was said as sim's own.
#[test]
fn a_panic_of_the_subjects_arbitrary_in_a_sweep_is_said_as_the_subjects() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-arbitrary");
    let out = dir.join("out");
    let report = shaky_sweep("undecodable", 0..2, &out, 2);
    let errors = &report.summary.internal_errors;
    assert_eq!(errors.iter().map(|e| e.seed).collect::<Vec<_>>(), [0, 1]);
    for error in errors {
        assert!(error.subject_code, "{error:?}");
        assert!(
            error.message.starts_with(
                "subject `undecodable`'s own code panicked: its `Arbitrary`, decoding a generated \
                 op: the decoding broke"
            ),
            "{}",
            error.message
        );
        assert!(
            error
                .message
                .contains(&format!(" (panicked at {}:", file!())),
            "{}",
            error.message
        );
    }
    assert!(records(&out).iter().all(|record| record.subject_code));
    let written = std::fs::read_to_string(out.join(summary::SUMMARY_FILE)).unwrap();
    let json: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        json["internal_errors"][0]["subject_code"], true,
        "{written}"
    );

    let out_text = out.display().to_string();
    let args = [
        "sweep",
        "--subject",
        "undecodable",
        "--seeds",
        "0..2",
        "--out",
        &out_text,
    ];
    let (code, stdout, stderr) = run_shaky_cli(&args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "  - gen:undecodable seed 0x0000000000000000: subject `undecodable`'s own code panicked: \
             its `Arbitrary`"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("sim's own code panicked"), "{stdout}");
}

/// A resumed sweep runs the broken pairs again, as sim may be fixed since: with the same broken
/// build it meets and reports the same internal errors again (exit 3, the summary printed), each
/// pair once, its latest record replacing the old. It kept them as done, so that every resume
/// exited 3 even after sim was fixed.
#[test]
fn a_resumed_sweep_runs_its_internal_errors_again_and_reports_them_while_sim_is_broken() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-resume");
    let (seeds, broken) = shaky_seeds();
    let pairs = (seeds.end - seeds.start) as usize;
    let out = dir.join("out");
    let first = shaky_sweep("shaky", seeds.clone(), &out, 2);
    let lines = line_count(&out.join(results::RESULTS_FILE));
    assert_eq!(lines, pairs);
    let resumed = shaky_sweep("shaky", seeds.clone(), &out, 2);
    assert_eq!(
        (resumed.ran, resumed.resumed),
        (broken.len(), pairs - broken.len())
    );
    assert_eq!(
        line_count(&out.join(results::RESULTS_FILE)),
        lines + broken.len(),
        "the broken pairs run again, and appended"
    );
    assert_eq!(records(&out).len(), pairs, "each pair read back once");
    assert_eq!(resumed.summary.runs, pairs as u64);
    assert_eq!(
        resumed.summary.internal_errors,
        first.summary.internal_errors
    );
    assert_eq!(
        resumed
            .summary
            .internal_errors
            .iter()
            .map(|e| e.seed)
            .collect::<Vec<_>>(),
        broken
    );
    assert_eq!(
        resumed.summary.scenarios[0].internal_errors,
        broken.len() as u64
    );
    assert_eq!(resumed.summary.trace_hash, first.summary.trace_hash);
    // The report's row says so too, in red, as the text table's does.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains(&format!(
            "<td class=\"fail\">0</td><td><code>{} internal error(s)</code></td>",
            broken.len()
        )),
        "{html}"
    );

    // Through the CLI, resuming again: the summary, with the internal errors apart from the
    // findings, then exit 3; and with --json, the one JSON object holding them.
    let seeds_text = format!("{}..{}", seeds.start, seeds.end);
    let out_text = out.display().to_string();
    let args = [
        "sweep",
        "--subject",
        "shaky",
        "--seeds",
        &seeds_text,
        "--out",
        &out_text,
    ];
    let (code, stdout, stderr) = run_shaky_cli(&args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "({} run now, {} resumed)",
            broken.len(),
            pairs - broken.len()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "of them failed), running the other {0} ({0} of them met an internal error and are run again)",
            broken.len()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("a second record"),
        "a pair's rerun replaces its record: {stderr}"
    );
    assert!(stdout.contains("no findings"), "{stdout}");
    assert!(
        stdout.contains(&format!("{} internal error(s)", broken.len())),
        "the scenario's row says so: {stdout}"
    );
    assert!(
        stdout.contains("note: a resume runs these pairs again")
            && stdout.contains(
                "note: a panic of the subject's own code is a bug in the subject, not in sim"
            ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("is a bug in sim") && !stdout.contains("sim's own code panicked"),
        "the subject's panics are not sim's: {stdout}"
    );
    let heading = format!(
        "INTERNAL ERROR: sim could not run {} pair(s) (exit 3); every other pair's result above stands:",
        broken.len()
    );
    assert!(stdout.contains(&heading), "{stdout}");
    for seed in &broken {
        let seed = sim::seed::format_seed(*seed);
        assert!(
            stdout.contains(&format!(
                "  - gen:shaky seed {seed}: subject `shaky`'s own code panicked: its `validate_op`, \
                 checking a generated op: sim's own code broke on tick "
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("    replay: sim replay gen:shaky:{seed}")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(" (panicked at {}:", file!())),
        "{stdout}"
    );
    assert!(stdout.contains("report: "), "{stdout}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, stdout, stderr) = run_shaky_cli(&json_args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    // After the test harness's own words, which stdout holds too.
    let json_start = stdout.find('{').unwrap_or(0);
    let json: Value = serde_json::from_str(stdout[json_start..].trim()).unwrap_or_else(|error| {
        panic!("{error}: {stdout}");
    });
    assert_eq!(json["verdict"], "fail");
    let seeds_listed: Vec<u64> = json["internal_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds_listed, broken);
    assert!(stderr.contains(&heading), "{stderr}");
}

/// A merge of results written before `subject_code` was kept reads a line whose message begins
/// as those builds said the subject's panic as the subject's: it blamed sim's own code for it.
#[test]
fn a_merge_of_an_old_line_of_the_subjects_panic_says_it_as_the_subjects() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-old-subject");
    let (seeds, broken) = shaky_seeds();
    let seed = seeds.clone().find(|seed| !broken.contains(seed)).unwrap();
    let out = dir.join("out");
    shaky_sweep("shaky", seed..seed + 1, &out, 1);
    let ran = records(&out);
    let old_line = RunRecord::internal_error(
        &ran[0].key(),
        "shaky",
        &"subject `shaky`'s own code panicked: its `validate_op`, checking this op: boom",
    );
    let line = serde_json::to_string(&old_line).unwrap();
    assert!(!line.contains("subject_code"), "{line}");
    std::fs::write(out.join(results::RESULTS_FILE), line + "\n").unwrap();

    let out_text = out.display().to_string();
    let merged_text = dir.join("merged").display().to_string();
    let (code, stdout, stderr) =
        run_shaky_cli(&["sweep", "merge", &out_text, "--out", &merged_text]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("subject `shaky`'s own code panicked: its `validate_op`"),
        "{stdout}"
    );
    assert!(!stdout.contains("sim's own code panicked"), "{stdout}");
}

/// A pair whose record is an internal error of a sim since fixed (written here by hand over a
/// pair of `shaky` that does not panic) gets its real result from a resume: its new run replaces
/// the error, on file and in the summary, and the sweep passes (exit 0) where every resume
/// exited 3. A merge of that directory before the resume says what a merge's user can do (resume
/// the sweep that recorded the pair, then merge again), not what a resume does.
#[test]
fn a_resume_gives_a_pair_that_met_an_internal_error_its_result_once_sim_is_fixed() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-fixed");
    let (seeds, broken) = shaky_seeds();
    let seed = seeds.clone().find(|seed| !broken.contains(seed)).unwrap();
    let out = dir.join("out");
    let clean = shaky_sweep("shaky", seed..seed + 1, &out, 1);
    assert!(clean.summary.internal_errors.is_empty());
    let ran = records(&out);
    assert_eq!(ran.len(), 1);
    let old_bug = RunRecord::internal_error(
        &ran[0].key(),
        "shaky",
        &"an old bug of sim's\n  panicked at: src/old.rs:1:2",
    );
    let results_path = out.join(results::RESULTS_FILE);
    std::fs::write(
        &results_path,
        serde_json::to_string(&old_bug).unwrap() + "\n",
    )
    .unwrap();

    let out_text = out.display().to_string();
    let merged_text = dir.join("merged").display().to_string();
    let (code, stdout, stderr) =
        run_shaky_cli(&["sweep", "merge", &out_text, "--out", &merged_text]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sim's own code panicked: an old bug of sim's"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: a panic of sim's own code is a bug in sim: please report it with the replay command")
            && stdout.contains("note: once the bug is fixed, resume the sweep that recorded a pair (its same command) to run it again, then merge again"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("a resume runs these pairs again"),
        "{stdout}"
    );

    let seeds_text = format!("{seed}..{}", seed + 1);
    let (code, stdout, stderr) = run_shaky_cli(&[
        "sweep",
        "--subject",
        "shaky",
        "--seeds",
        &seeds_text,
        "--out",
        &out_text,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("running the other 1 (1 of them met an internal error and are run again)"),
        "{stderr}"
    );
    assert!(!stdout.contains("INTERNAL ERROR"), "{stdout}");
    assert_eq!(
        line_count(&results_path),
        2,
        "the run appended after the error"
    );
    let rerun = records(&out);
    assert_eq!(rerun.len(), 1, "{rerun:?}");
    assert_eq!(rerun[0].internal_error, None);
    assert_eq!(
        (rerun[0].verdict.as_str(), &rerun[0].trace_hash),
        ("pass", &ran[0].trace_hash)
    );
    let written = summary::read(&out).unwrap().expect("summary.json written");
    assert!(
        written.internal_errors.is_empty(),
        "{:?}",
        written.internal_errors
    );
    assert_eq!((written.verdict.as_str(), written.runs), ("pass", 1));
}

/// `sim ARGS` with the `shaky` subjects registered: (exit code, stdout, stderr). The `sim`
/// binary knows only the built-in subjects, so this test binary runs itself as the CLI, as a
/// crate's own binary built on `main_with` would, in a child process whose output it reads.
fn run_shaky_cli(args: &[&str]) -> (i32, String, String) {
    rerun_test_in_child(SHAKY_CLI_TEST, SHAKY_CLI_ARGS, args.join("\n"))
}

/// The test that, given `SHAKY_CLI_ARGS` (one argument a line), runs the CLI on them and exits
/// with its code; without it (an ordinary test run) it does nothing.
const SHAKY_CLI_TEST: &str = "shaky_cli";
const SHAKY_CLI_ARGS: &str = "SIM_SWEEP_TEST_SHAKY_CLI_ARGS";

#[test]
fn shaky_cli() {
    let Some(args) = std::env::var_os(SHAKY_CLI_ARGS) else {
        return;
    };
    // The CLI's own quiet hook, as `main_with` installs it.
    std::panic::set_hook(Box::new(sim::subject::note_panic_location));
    let args = args.into_string().unwrap();
    let argv = std::iter::once("sim").chain(args.lines());
    std::process::exit(sim::cli::main_with_args(shaky_registry(), argv));
}

/// A panic of sim's own code while minimising a finding (here the shrinker's validation of a
/// candidate) costs that finding's repro alone: the finding is in the summary, replayed by its
/// first pair's command and with no repro; the panic is an internal error of the sweep (said to be
/// of minimising, which finding, where it panicked), every output is written and the exit is 3.
/// A resume minimises the finding again and reports the error again. It stopped the sweep with
/// exit 3 and no summary, though every run was recorded.
#[test]
fn a_panic_of_sim_while_minimising_costs_that_findings_repro_alone() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-minimising");
    let registry = shaky_registry();
    let source = file_source(&registry, &dir, "fragile.toml", FRAGILE_SHRINK_FILE);
    let out = dir.join("out");
    let config = SweepConfig::new(vec![source], 0..2, &out);
    let check = |report: &sim::sweep::SweepReport| {
        let summary = &report.summary;
        assert_eq!(summary.verdict, "fail");
        assert_eq!(summary.runs, 2);
        assert_eq!(summary.findings.len(), 1, "{:?}", summary.findings);
        let finding = &summary.findings[0];
        assert!(
            finding.signature.starts_with("panic:"),
            "{}",
            finding.signature
        );
        assert_eq!((finding.count, finding.first_seed), (2, 0));
        assert_eq!(finding.repro, None, "no repro was written");
        assert_eq!(finding.replay, finding.original_replay);
        let errors = &summary.internal_errors;
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = &errors[0];
        assert_eq!(
            error.minimising.as_deref(),
            Some(finding.signature.as_str())
        );
        assert_eq!((error.seed, error.subject.as_str()), (0, "fragile-shrink"));
        assert!(
            error.subject_code,
            "the shrinker met the subject's panic: {error:?}"
        );
        assert_eq!(Some(&error.replay), finding.original_replay.as_ref());
        assert!(
            error.message.starts_with(&format!(
                "while minimising `{}` (its repro is not written; the finding stands): subject `fragile-shrink`'s own code panicked: its `validate_op`, checking this op: sim's own code broke while shrinking",
                finding.signature
            )),
            "{}",
            error.message
        );
        assert!(
            error
                .message
                .contains(&format!(" (panicked at {}:", file!())),
            "{}",
            error.message
        );
        assert_eq!(summary.scenarios[0].internal_errors, 0, "every pair ran");
        let stop = report.internal_errors_stop().unwrap_err();
        assert!(stop.internal, "{stop:?}");
        assert!(
            stop.message.contains("sim could not minimise 1 finding(s)"),
            "{stop:?}"
        );
        // Every output is written, and says the same.
        let written = summary::read(&out).unwrap().expect("summary.json written");
        assert_eq!(&written.internal_errors, errors);
        assert_eq!(written.findings, summary.findings);
        let junit = std::fs::read_to_string(out.join(summary::JUNIT_FILE)).unwrap();
        assert!(junit.contains("could not minimise 1 finding(s)"), "{junit}");
        let html = std::fs::read_to_string(out.join(summary::REPORT_FILE)).unwrap();
        assert!(html.contains("while minimising"), "{html}");
    };
    let first =
        sweep(&registry, &config).unwrap_or_else(|error| panic!("the sweep stopped: {error:?}"));
    assert_eq!(first.ran, 2);
    check(&first);
    assert_eq!(records(&out).len(), 2);
    // A resume runs nothing again, minimises the finding again and meets the error again.
    let resumed =
        sweep(&registry, &config).unwrap_or_else(|error| panic!("the resume stopped: {error:?}"));
    assert_eq!((resumed.ran, resumed.resumed), (0, 2));
    check(&resumed);

    // Through the CLI: the summary with the finding and the error apart, then exit 3.
    let out_text = out.display().to_string();
    let path = dir.join("fragile.toml").display().to_string();
    let args = ["sweep", &path, "--seeds", "0..2", "--out", &out_text];
    let (code, stdout, stderr) = run_shaky_cli(&args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "INTERNAL ERROR: sim could not minimise 1 finding(s) (exit 3); every other pair's result above stands:"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("while minimising `panic:"), "{stdout}");
    assert!(stdout.contains("a resume minimises it again"), "{stdout}");
    assert!(stdout.contains("report: "), "{stdout}");
}

/// A merge lists the findings its shards could not minimise (their summaries' internal errors
/// of minimising), once a finding, at its first pair, and exits 3 as the shards did; it listed
/// none, and passed their findings on without a repro and without saying why.
#[test]
fn a_merge_lists_the_findings_its_shards_could_not_minimise() {
    install_panic_location_hook();
    let dir = scratch_dir("internal-error-minimising-merge");
    let registry = shaky_registry();
    let shard_dirs: Vec<PathBuf> = (1..=2)
        .map(|index| {
            let source = file_source(&registry, &dir, "fragile.toml", FRAGILE_SHRINK_FILE);
            let out = dir.join(format!("shard-{index}"));
            let mut config = SweepConfig::new(vec![source], 0..6, &out);
            config.shard = Some(Shard { index, count: 2 });
            let report = sweep(&registry, &config).unwrap();
            let errors = &report.summary.internal_errors;
            assert_eq!(errors.len(), 1, "shard {index}: {errors:?}");
            assert!(errors[0].minimising.is_some(), "{errors:?}");
            out
        })
        .collect();
    let merged_dir = dir.join("merged");
    let merged = summary::merge(&shard_dirs, &merged_dir, summary::Mismatched::Refuse).unwrap();
    assert_eq!(merged.findings.len(), 1, "{:?}", merged.findings);
    let finding = &merged.findings[0];
    assert_eq!((finding.count, finding.first_seed), (6, 0));
    assert_eq!(finding.repro, None);
    let errors = &merged.internal_errors;
    assert_eq!(errors.len(), 1, "one a finding: {errors:?}");
    assert_eq!(errors[0].seed, 0, "at the finding's first pair: {errors:?}");
    assert_eq!(
        errors[0].minimising.as_deref(),
        Some(finding.signature.as_str())
    );
    assert_eq!(summary::read(&merged_dir).unwrap().unwrap(), merged);
    // Merged again, the merge keeps it.
    let again_dir = dir.join("again");
    let again = summary::merge(
        std::slice::from_ref(&merged_dir),
        &again_dir,
        summary::Mismatched::Refuse,
    )
    .unwrap();
    assert_eq!(again.internal_errors, merged.internal_errors);

    let mut args = vec!["sweep".to_string(), "merge".to_string()];
    args.extend(shard_dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".to_string(), merged_dir.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run_shaky_cli(&args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("INTERNAL ERROR: sim could not minimise 1 finding(s) (exit 3)"),
        "{stdout}"
    );
    assert!(stdout.contains("while minimising `panic:"), "{stdout}");
    assert!(
        stdout.contains("resume the sweep that found it (its same command) to minimise it again, then merge again"),
        "{stdout}"
    );
}

/// A `counter` file that leaks with every defect off: a bug of the subject nobody seeded, whose
/// signature is the one `leak-on-evict`'s finding has (`CREATE_EVICT`).
const CREATE_FORGET: &str = r#"
name = "create-forget"
subject = "counter"
seed = 1

[[lifecycle]]
name = "object"
repeat = 2
ops = [
  { op = "create", slot = 1 },
]
"#;

/// A finding is one per subject, defect set and signature: a bug found with defects off that
/// signs as a seeded defect's finding is reported as a finding of its own, with its own first
/// pair, count and repro (named apart), rather than counted into the seeded one. Deduplicated
/// by subject and signature alone, the two were one finding, first found by the seeded file,
/// its repro the seeded one's: the unseeded bug was never reported (a merge did the same).
#[test]
fn a_bug_with_defects_off_is_not_folded_into_a_seeded_defects_finding_of_its_signature() {
    let dir = scratch_dir("findings-by-defect-set");
    let registry = Registry::builtin();
    let sources = || {
        vec![
            file_source(&registry, &dir, "seeded.toml", CREATE_EVICT),
            file_source(&registry, &dir, "unseeded.toml", CREATE_FORGET),
        ]
    };
    let out = dir.join("out");
    let report = sweep(&registry, &SweepConfig::new(sources(), 0..2, &out)).unwrap();
    let signature = "leak:heap block:counter_create";
    let findings = &report.summary.findings;
    let of = |defects: &[&str]| {
        findings
            .iter()
            .find(|f| f.defects == defects)
            .unwrap_or_else(|| panic!("no finding with defects {defects:?}: {findings:?}"))
    };
    assert_eq!(findings.len(), 2, "{findings:?}");
    for (finding, file) in [
        (of(&["leak-on-evict"]), "seeded.toml"),
        (of(&[]), "unseeded.toml"),
    ] {
        assert_eq!(finding.signature, signature);
        assert_eq!(finding.count, 2, "{finding:?}");
        assert!(finding.first_scenario.ends_with(file), "{finding:?}");
        let repro = finding.repro.as_ref().expect("minimised");
        // The repro shows the finding with the defects its first pair ran with.
        let text = std::fs::read_to_string(repro).unwrap();
        assert_eq!(
            text.contains("leak-on-evict"),
            !finding.defects.is_empty(),
            "{text}"
        );
    }
    assert_ne!(of(&["leak-on-evict"]).repro, of(&[]).repro);
    // A resume finds both repros up to date and keeps them.
    let resumed = sweep(&registry, &SweepConfig::new(sources(), 0..2, &out)).unwrap();
    assert_eq!(&resumed.summary.findings, findings);
    // A merge of the directory keeps them apart too.
    let merged = dir.join("merged");
    let merged_summary = summary::merge(
        std::slice::from_ref(&out),
        &merged,
        summary::Mismatched::Refuse,
    )
    .unwrap();
    assert_eq!(merged_summary.findings.len(), 2, "{merged_summary:?}");
}

/// A resume of a directory an older sim wrote, which named a seeded finding's repro as the
/// finding with defects off of its signature is named now (`stem`), minimises the seeded finding
/// again under its own name and the one with defects off into its own: each finding keeps a
/// repro that shows it. The old sidecar, which still says its finding, counted as that finding's
/// repro, and the finding with defects off was then minimised into the same two files: the
/// seeded finding's repro became the unseeded bug's.
#[test]
fn a_resume_renames_a_repro_an_older_sim_named_as_another_findings() {
    let dir = scratch_dir("findings-old-names");
    let registry = Registry::builtin();
    let sources = || {
        [
            ("seeded.toml", CREATE_EVICT),
            ("unseeded.toml", CREATE_FORGET),
        ]
        .into_iter()
        .map(|(name, text)| file_source(&registry, &dir, name, text))
        .collect::<Vec<_>>()
    };
    let out = dir.join("out");
    let config = || SweepConfig::new(sources(), 0..2, &out);
    sweep(&registry, &config()).unwrap();
    // What the older sim left: the seeded finding's repro alone, named SUBJECT-KIND-HASH.
    let signature = "leak:heap block:counter_create";
    let repros = out.join("repros");
    let seeded_stem =
        sim::sweep::minimise::stem_of("counter", &["leak-on-evict".into()], signature);
    let old_stem = sim::sweep::minimise::stem("counter", signature);
    assert_ne!(seeded_stem, old_stem);
    let seeded: sim::sweep::minimise::ReproRecord = serde_json::from_str(
        &std::fs::read_to_string(repros.join(format!("{seeded_stem}.json"))).unwrap(),
    )
    .unwrap();
    for stem in [&seeded_stem, &old_stem] {
        std::fs::remove_file(repros.join(format!("{stem}.json"))).unwrap();
    }
    std::fs::rename(
        repros.join(format!("{seeded_stem}.toml")),
        repros.join(format!("{old_stem}.toml")),
    )
    .unwrap();
    let old = seeded.moved_to(
        repros
            .join(format!("{old_stem}.toml"))
            .display()
            .to_string(),
    );
    std::fs::write(
        repros.join(format!("{old_stem}.json")),
        serde_json::to_string_pretty(&old).unwrap(),
    )
    .unwrap();
    let resumed = sweep(&registry, &config()).unwrap();
    let findings = &resumed.summary.findings;
    assert_eq!(findings.len(), 2, "{findings:?}");
    for finding in findings {
        let repro = finding.repro.as_ref().expect("minimised");
        let stem = sim::sweep::minimise::stem_of("counter", &finding.defects, signature);
        assert!(repro.ends_with(&format!("/{stem}.toml")), "{repro}");
        // The repro shows the finding with the defects its first pair ran with.
        let text = std::fs::read_to_string(repro).unwrap();
        assert_eq!(
            text.contains("leak-on-evict"),
            !finding.defects.is_empty(),
            "{repro}: {text}"
        );
    }
}

/// `wasi-runtime` with both its lock defects on, listed in either order.
fn two_defects_file(defects: &str) -> String {
    format!(
        r#"name = "two-defects"
subject = "wasi-runtime"
defects = [{defects}]
seed = 1

[[lifecycle]]
name = "instance"
repeat = 3
ops = [
  {{ op = "instantiate", instance = 0, argv = ["app.wasm"], environ = ["HOME=/"] }},
  {{ op = "destroy", instance = 0 }},
]
"#
    )
}

/// One defect set is one finding and one repro name, whatever order its scenarios (or
/// `--defect`s) list it in and however often: records keep the order they ran with; the finding
/// does not. They were a finding each, with a repro each of one signature.
#[test]
fn a_defect_set_in_another_order_or_with_a_repeat_is_one_finding() {
    let dir = scratch_dir("findings-defect-order");
    let registry = Registry::builtin();
    let sources = [
        ("ab.toml", r#""prestats-lock-leak", "fd-table-lock-leak""#),
        ("ba.toml", r#""fd-table-lock-leak", "prestats-lock-leak""#),
    ]
    .into_iter()
    .map(|(name, defects)| file_source(&registry, &dir, name, &two_defects_file(defects)))
    .collect();
    let out = dir.join("out");
    let report = sweep(&registry, &SweepConfig::new(sources, 0..2, &out)).unwrap();
    let findings = &report.summary.findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].count, 4, "{findings:?}");
    let signature = "leak:rwlock:fd_prestats_init";
    assert_eq!(findings[0].signature, signature);
    let stem = sim::sweep::minimise::stem_of(
        "wasi-runtime",
        &["fd-table-lock-leak".into(), "prestats-lock-leak".into()],
        signature,
    );
    assert_eq!(
        stem,
        format!(
            "wasi-runtime+fd-table-lock-leak+prestats-lock-leak-leak-{}",
            &stem[stem.len() - 8..]
        )
    );
    let repro = findings[0].repro.as_ref().expect("minimised");
    assert!(repro.ends_with(&format!("/{stem}.toml")), "{repro}");

    // A defect given twice on the command line is one defect in the repro's name.
    let (code, stdout, stderr) = run_sim_in(
        &dir,
        &[
            "sweep",
            "--subject",
            "wasi-runtime",
            "--defect",
            "prestats-lock-leak",
            "--defect",
            "prestats-lock-leak",
            "--seeds",
            "0..2",
            "--out",
            "dup",
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    let mut written: Vec<String> = std::fs::read_dir(dir.join("dup/repros"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let stem =
        sim::sweep::minimise::stem_of("wasi-runtime", &["prestats-lock-leak".into()], signature);
    assert_eq!(written, [format!("{stem}.json"), format!("{stem}.toml")]);
}

/// The progress line counts findings as the summary does (one per subject, defect set and
/// signature), and the findings table and `report.html` say each finding's defects, which is what
/// tells two findings of one signature and subject apart. The progress line said 1 finding and
/// the table then listed 2 rows that looked the same.
#[test]
fn findings_of_one_signature_apart_by_defects_are_counted_and_shown_apart() {
    let dir = scratch_dir("findings-shown-by-defects");
    std::fs::write(dir.join("seeded.toml"), CREATE_EVICT).unwrap();
    std::fs::write(dir.join("unseeded.toml"), CREATE_FORGET).unwrap();
    let (code, stdout, stderr) = run_sim_in(
        &dir,
        &[
            "sweep",
            "seeded.toml",
            "unseeded.toml",
            "--seeds",
            "0..2",
            "--out",
            "out",
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(", 2 finding(s) in 4 failing run(s)"),
        "{stderr}"
    );
    assert!(!stderr.contains("1 finding(s)"), "{stderr}");
    // The findings table's rows: signature, subject, defects.
    let rows: Vec<Vec<String>> = stdout
        .lines()
        .filter(|line| line.starts_with("│ #"))
        .map(|line| {
            line.trim_matches('│')
                .split('┆')
                .map(|cell| cell.trim().to_string())
                .collect::<Vec<String>>()
        })
        .filter(|row| row[0] != "#")
        .collect();
    let mut shown: Vec<[&str; 3]> = rows
        .iter()
        .map(|row| [row[1].as_str(), row[2].as_str(), row[3].as_str()])
        .collect();
    shown.sort();
    let signature = "leak:heap block:counter_create";
    assert_eq!(
        shown,
        [
            [signature, "counter", "-"],
            [signature, "counter", "leak-on-evict"]
        ],
        "{stdout}"
    );
    let html = std::fs::read_to_string(dir.join("out").join(summary::REPORT_FILE)).unwrap();
    for defects in ["-", "leak-on-evict"] {
        let row = format!("<td><code>{signature}</code></td><td>counter</td><td>{defects}</td>");
        assert!(html.contains(&row), "{row}: {html}");
    }
}

/// A sweep called through `main_with_args` as `mybin` names `mybin` in what its worker threads
/// write too (each repro's `# Replay:` line and header), not the process's program.
#[test]
fn a_sweeps_workers_name_the_program_its_call_was_given() {
    let dir = scratch_dir("program-of-call");
    let out = dir.join("out");
    let out_text = out.display().to_string();
    let code = sim::cli::main_with_args(
        Registry::builtin(),
        [
            "mybin",
            "sweep",
            "--subject",
            "counter",
            "--defect",
            "leak-on-evict",
            "--seeds",
            "0..40",
            "--jobs",
            "2",
            "--out",
            &out_text,
        ],
    );
    assert_eq!(code, 1, "the seeded leak is found");
    let repros: Vec<String> = support::toml_files_in(&out.join("repros"))
        .into_iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(!repros.is_empty(), "a repro was written");
    for text in &repros {
        assert!(text.contains("# Replay: mybin replay "), "{text}");
        assert!(!text.contains("sim replay"), "{text}");
    }
}

/// A resumed sweep names each up-to-date repro where it is now, as its own `--out` reaches it:
/// the directory may have moved since the sweep that minimised it, or this sweep may run from
/// another directory. It named the path the first sweep was told, which no longer led to the
/// file, and `--promote-to` could not read it.
#[test]
fn a_resumed_sweep_names_its_repros_where_they_are_now_from_where_it_runs() {
    let dir = scratch_dir("moved-out");
    let sweep_in = |cwd: &Path, out: &str, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "--subject",
            "counter",
            "--defect",
            "leak-on-evict",
            "--seeds",
            "0..20",
            "--jobs",
            "1",
            "--shrink-runs-max",
            "200",
            "--out",
            out,
        ];
        args.extend(extra);
        let (code, stdout, stderr) = run_sim_in(cwd, &args);
        assert_eq!(code, 1, "{stdout}{stderr}");
        stdout + &stderr
    };
    sweep_in(&dir, "first", &[]);
    std::fs::rename(dir.join("first"), dir.join("moved")).unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let said = sweep_in(&sub, "../moved", &["--promote-to", "../promoted"]);
    let replay = said
        .lines()
        .find_map(|line| line.trim().strip_prefix("#1 "))
        .unwrap_or_else(|| panic!("no replay line in: {said}"))
        .to_string();
    assert!(replay.starts_with("sim replay ../moved/repros/"), "{said}");
    let (code, stdout, replayed) = paste_into_shell(&sub, &replay);
    assert_eq!(code, 1, "{stdout}{replayed}");
    let summary = std::fs::read_to_string(dir.join("moved/summary.json")).unwrap();
    let report = std::fs::read_to_string(dir.join("moved/report.html")).unwrap();
    for text in [&said, &summary, &report] {
        assert!(!text.contains("first/"), "{text}");
    }
    assert_eq!(
        support::toml_files_in(&dir.join("promoted")).len(),
        1,
        "{said}"
    );
}

/// `sim sweep DIR` does not take what it wrote for sources: a walk of DIR passes over the
/// sweep's `--out` wherever it lies under DIR, and over any directory named `target` (where
/// every default output of sim goes), with a note. Its repros became scenarios of the next
/// sweep of DIR, which then resumed "2 of 4 runs" and swept them too.
#[test]
fn a_sweep_of_a_directory_does_not_sweep_its_own_output_or_target() {
    let dir = scratch_dir("own-out");
    std::fs::create_dir_all(dir.join("scen")).unwrap();
    write_file(&dir.join("scen"), "create-evict.toml", CREATE_EVICT);
    let sweep_dot = |extra: &[&str]| {
        let mut args = vec!["sweep", ".", "--seeds", "0..2", "--jobs", "1"];
        args.extend(extra);
        let (code, stdout, stderr) = run_sim_in(&dir, &args);
        assert_eq!(code, 1, "{stdout}{stderr}");
        stderr
    };
    for extra in [&[][..], &["--out", "sweeps/one"]] {
        sweep_dot(extra);
        let stderr = sweep_dot(extra);
        assert!(
            stderr.contains(": 2 of 2 runs already recorded"),
            "{stderr}"
        );
    }
    // A sweep into another directory says it passed over `target`, where the first sweeps
    // wrote, and sweeps the scenario alone. (Another sweep's `--out` outside `target` is walked:
    // only this one's own is known for output.)
    std::fs::remove_dir_all(dir.join("sweeps")).unwrap();
    let stderr = sweep_dot(&["--out", "sweeps/two"]);
    assert!(
        stderr.contains("note: not searched: ./target (a directory named `target`; name it to run its .toml files)"),
        "{stderr}"
    );
    assert!(!stderr.contains("resuming"), "{stderr}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("sweeps/two/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["runs"], 2, "{summary}");
}
