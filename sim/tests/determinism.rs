//! "One seed gives one trace, bit for bit", from the outside: what a user changes around a run
//! (the directory it starts in, how it names the scenario file, the environment, how many jobs a
//! sweep has) changes neither the trace nor the repro file nor a sweep's records. Only the fields
//! that echo a path as the user gave it (`source`, `repro`) may differ.
//!
//! Not checked here: a release build against a debug one (a test runs one build; the sweeps of
//! both builds agreed when last compared by hand, 24,000 generated runs and every zoo file), and
//! shards against an unsharded sweep (`sweep.rs`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{SIM, scratch_dir, workspace_root};

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                found.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

/// The JSON report without the fields that echo a path as the user spelt it.
/// The report without the scenario's path as the command spelled it: the `source` and `repro`
/// keys, and the `file` of each op a finding's details locate.
fn without_paths(mut json: Value) -> Value {
    let object = json.as_object_mut().unwrap();
    object.remove("source");
    object.remove("repro");
    for finding in object["findings"].as_array_mut().unwrap() {
        for detail in finding["details"].as_array_mut().unwrap() {
            if let Some(op) = detail.get_mut("op").and_then(Value::as_object_mut) {
                op.remove("file");
            }
        }
    }
    json
}

struct Ran {
    code: i32,
    json: Value,
}

fn run(command: &mut Command) -> Ran {
    let output = command.output().unwrap();
    let code = output.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "{command:?} exited {code}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ran {
        code,
        json: serde_json::from_slice(&output.stdout).unwrap(),
    }
}

/// `sim run` of one zoo scenario, with `--trace` and `--repro-dir` inside `dir`, from `cwd`.
fn sim_run(cwd: &Path, scenario: &Path, dir: &Path) -> Command {
    let mut command = Command::new(SIM);
    command.current_dir(cwd).arg("run").arg(scenario).args([
        "--seed",
        "7",
        "--json",
        "--trace",
        &dir.join("trace.jsonl").display().to_string(),
        "--repro-dir",
        &dir.join("repros").display().to_string(),
    ]);
    command
}

#[test]
fn a_run_traces_and_writes_its_repro_alike_from_any_directory_and_environment() {
    let root = workspace_root();
    let relative = Path::new("scenarios/zoo/instantiate-destroy.toml");
    let absolute = root.join(relative);
    let elsewhere = scratch_dir("elsewhere");

    // Both runs write to one place, as the repro names its own path in its replay command.
    let out = scratch_dir("out");
    let plain = run(&mut sim_run(&root, relative, &out));
    assert_eq!(plain.code, 1, "the zoo scenario fails with its defect");
    let plain_files = files(&out);

    // From another directory, naming the file by its absolute path, in an environment that
    // changes the locale, the time zone, backtraces and logging, and has no HOME.
    let out = scratch_dir("out");
    let mut hostile = sim_run(&elsewhere, &absolute, &out);
    hostile
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "tr_TR.UTF-8")
        .env("TZ", "Pacific/Chatham")
        .env("RUST_BACKTRACE", "full")
        .env("RUST_LOG", "trace")
        .env_remove("HOME");
    let hostile = run(&mut hostile);
    let hostile_files = files(&out);

    assert_eq!(hostile.code, plain.code);
    assert_eq!(
        without_paths(hostile.json),
        without_paths(plain.json.clone())
    );
    assert_eq!(
        plain_files.keys().collect::<Vec<_>>(),
        hostile_files.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &plain_files {
        assert!(
            hostile_files[path] == *bytes,
            "{} differs between the two runs",
            path.display()
        );
    }

    // The repro replays from yet another directory to the same trace, with nothing amiss.
    let repro = out
        .join("repros")
        .join("wasi-runtime-instantiate-destroy-0000000000000007.toml");
    let replay_dir = scratch_dir("replay");
    let replayed = run(Command::new(SIM).current_dir(&elsewhere).args([
        "replay",
        &repro.display().to_string(),
        "--json",
        "--trace",
        &replay_dir.join("trace.jsonl").display().to_string(),
    ]));
    assert_eq!(replayed.code, 1);
    assert_eq!(replayed.json["replay_problems"], Value::Array(vec![]));
    assert_eq!(replayed.json["trace_hash"], plain.json["trace_hash"]);
    assert!(
        std::fs::read(replay_dir.join("trace.jsonl")).unwrap()
            == plain_files[Path::new("trace.jsonl")],
        "the replay's trace is the run's, event for event"
    );
}

/// A sweep's `results.jsonl` as records keyed by pair, without the timing.
fn records(out: &Path) -> BTreeMap<(String, u64, String), Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            let object = record.as_object_mut().unwrap();
            object.remove("duration_ms");
            let key = (
                object["scenario"].as_str().unwrap().to_string(),
                object["seed"].as_u64().unwrap(),
                object["defects"].to_string(),
            );
            (key, record)
        })
        .collect()
}

/// A sweep of generated scenarios with defects on and of two zoo files, with `jobs` workers,
/// run in `dir` with `--out out`: the repros then name the same relative paths in every sweep.
fn sweep(dir: &Path, jobs: &str) -> Ran {
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    for file in ["instantiate-destroy.toml", "heap-delete-exit.toml"] {
        std::fs::copy(
            workspace_root().join("scenarios/zoo").join(file),
            dir.join("scenarios").join(file),
        )
        .unwrap();
    }
    run(Command::new(SIM).current_dir(dir).args([
        "sweep",
        "scenarios",
        "--subject",
        "wasi-runtime",
        "--defect",
        "prestats-lock-leak",
        "--defect",
        "fd-table-lock-leak",
        "--seeds",
        "0..120",
        "--file-seeds",
        "0..4",
        "--jobs",
        jobs,
        "--out",
        "out",
        "--json",
    ]))
}

#[test]
fn a_sweep_with_one_job_records_and_minimises_what_one_with_two_does() {
    let one = scratch_dir("jobs-1");
    let two = scratch_dir("jobs-2");
    let with_one = sweep(&one, "1");
    let with_two = sweep(&two, "2");
    assert_eq!(with_one.code, 1, "the defects are found");
    assert_eq!(with_two.code, with_one.code);

    let (records_one, records_two) = (records(&one.join("out")), records(&two.join("out")));
    assert_eq!(
        records_one.len(),
        120 + 2 * 4,
        "every (scenario, seed) pair"
    );
    assert_eq!(records_one, records_two);

    assert!(!with_one.json["findings"].as_array().unwrap().is_empty());
    assert_eq!(with_one.json["findings"], with_two.json["findings"]);
    assert_eq!(with_one.json["trace_hash"], with_two.json["trace_hash"]);
    assert_eq!(
        files(&one.join("out/repros")),
        files(&two.join("out/repros")),
        "the same repros, byte for byte"
    );
}
