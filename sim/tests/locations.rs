//! A report points at each op it names in the scenario file (`--> FILE:LINE:COLUMN (LIST)`), and
//! `--json` gives the same as data (`details[].op`: `file`, `line`, `column`, `list`, `index`,
//! `name`, `thread_name`), so that a person or a script goes from a finding to the op without
//! counting ops by hand. Checked through the binary, on every zoo and UI scenario: each location
//! must be the place in the file where the named op is written.

mod support;

use serde_json::{Value, json};
use support::{
    fields_of, fresh_path, repro_dir, run_sim_from_root, scratch_dir, workspace_root, write_file,
};

fn scenario_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["scenarios/zoo", "sim/tests/ui"] {
        let mut in_dir: Vec<String> = std::fs::read_dir(workspace_root().join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .map(|path| format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()))
            .collect();
        in_dir.sort();
        files.extend(in_dir);
    }
    files
}

/// The text of `file` (relative to the workspace root, or absolute) from `line`:`column` (both
/// from 1, the column in characters) to the end of that line.
fn text_at(file: &str, line: u64, column: u64) -> String {
    let source = std::fs::read_to_string(workspace_root().join(file)).unwrap();
    let text = source
        .lines()
        .nth(line as usize - 1)
        .expect("the line exists");
    text.chars().skip(column as usize - 1).collect()
}

/// Every op a finding's details name, as `--json` gives them.
fn named_ops(run: &Value) -> Vec<(String, Value)> {
    let findings = run["findings"].as_array().unwrap();
    findings
        .iter()
        .flat_map(|finding| finding["details"].as_array().unwrap().iter())
        .filter(|detail| detail.get("op").is_some())
        .map(|detail| {
            (
                detail["label"].as_str().unwrap().to_string(),
                detail["op"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_op_a_report_names_is_located_where_the_file_writes_it() {
    let mut checked = 0;
    for file in scenario_files() {
        let dir = repro_dir("every");
        let (_, stdout, _) = run_sim_from_root(&["run", &file, "--json", "--repro-dir", &dir]);
        let run: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{file}: not one JSON object ({e}): {stdout}"));
        let (_, text_report, _) = run_sim_from_root(&["run", &file, "--repro-dir", &dir]);
        for (label, op) in named_ops(&run) {
            let name = op["name"].as_str().unwrap();
            assert_eq!(op["file"], file.as_str(), "{file}: `{label}` names {op}");
            let (line, column) = (op["line"].as_u64().unwrap(), op["column"].as_u64().unwrap());
            let at = text_at(&file, line, column);
            if name == "thread-exit" {
                // A thread's exit is where the thread is declared: its name.
                let thread = op["thread_name"].as_str().unwrap();
                assert!(
                    at.starts_with(&format!("\"{thread}\"")),
                    "{file}:{line}:{column}: {at}"
                );
            } else {
                assert!(
                    at.starts_with(&format!("{{ op = \"{name}\"")),
                    "{file}:{line}:{column} should hold `{name}` ({label}), holds: {at}"
                );
            }
            assert_eq!(
                op["list"] == "thread",
                op.get("thread_name").is_some(),
                "{op}"
            );
            let arrow = format!("    --> {file}:{line}:{column} (");
            assert!(
                text_report.contains(&arrow),
                "{file}: the text report lacks `{arrow}`:\n{text_report}"
            );
            checked += 1;
        }
    }
    // The zoo alone names more than twenty ops: a run that located none would pass vacuously.
    assert!(checked >= 20, "only {checked} located ops");
}

/// A leak of the setup's `create`, whose lifecycle's `ops` also begin with a `create`.
const SETUP_LEAK: &str = r#"name = "setup-leak"
subject = "counter"

[[lifecycle]]
name = "objects"
setup = [{ op = "create", slot = 0 }]
ops = [
  { op = "create", slot = 1 },
  { op = "evict", slot = 1 },
]
teardown = [{ op = "bump" }]
"#;

/// The setup's first op and the repeated list's first op are both `op #1`, in the same
/// repetition, with the same name: only the list tells them apart, and the location follows it.
#[test]
fn a_setup_op_is_not_taken_for_the_repeated_op_of_the_same_name_and_number() {
    let file = write_file(
        &scratch_dir("locations-setup"),
        "setup-leak.toml",
        SETUP_LEAK,
    );
    let file = file.display().to_string();
    let repros = repro_dir("setup");
    let (code, stdout, _) = run_sim_from_root(&["run", &file, "--json", "--repro-dir", &repros]);
    assert_eq!(code, 1, "{stdout}");
    let run: Value = serde_json::from_str(&stdout).unwrap();
    let ops = named_ops(&run);
    let (label, op) = ops.first().expect("the leak names its op");
    assert_eq!(label, "acquired");
    assert_eq!(
        fields_of(op, &["list", "index", "name", "line", "column"]),
        json!({"list": "setup", "index": 1, "name": "create", "line": 6, "column": 10})
    );
    let (_, text, _) = run_sim_from_root(&["run", &file, "--repro-dir", &repros]);
    assert!(
        text.contains(&format!("    --> {file}:6:10 (setup)\n")),
        "{text}"
    );
}

/// A replay points into the repro file it replays, whose lines are not the original's.
#[test]
fn a_replay_points_into_the_repro_file() {
    let repros = repro_dir("replay");
    let (code, stdout, _) = run_sim_from_root(&[
        "run",
        "scenarios/zoo/heap-delete-exit.toml",
        "--json",
        "--repro-dir",
        &repros,
    ]);
    assert_eq!(code, 1);
    let run: Value = serde_json::from_str(&stdout).unwrap();
    let repro = run["repro"]
        .as_str()
        .unwrap()
        .strip_prefix("sim replay ")
        .unwrap()
        .to_string();
    let (code, stdout, _) = run_sim_from_root(&["replay", &repro, "--json"]);
    assert_eq!(code, 1);
    let replayed: Value = serde_json::from_str(&stdout).unwrap();
    let ops = named_ops(&replayed);
    assert!(!ops.is_empty());
    for (label, op) in ops {
        assert_eq!(op["file"], repro.as_str(), "{label}: {op}");
        let at = text_at(
            &repro,
            op["line"].as_u64().unwrap(),
            op["column"].as_u64().unwrap(),
        );
        assert!(
            at.starts_with(&format!("{{ op = \"{}\"", op["name"].as_str().unwrap())),
            "{label}: {at}"
        );
    }
}

/// Each op a report names is one op line of the run's `--trace`, found by the keys the report's
/// `details[].op` and the trace's op lines share (`lifecycle_index`, `repetition`, `list`,
/// `index`, the thread as the line's `a`, the name as its `op`), and a run that writes a trace
/// names that line's `i`: where to start reading the trace.
#[test]
fn every_op_a_report_names_is_one_op_line_of_the_trace() {
    let mut found = 0;
    for file in scenario_files() {
        let trace = fresh_path("locations-trace.jsonl");
        let trace = trace.display().to_string();
        let dir = repro_dir("trace");
        let (code, stdout, stderr) = run_sim_from_root(&[
            "run",
            &file,
            "--json",
            "--trace",
            &trace,
            "--repro-dir",
            &dir,
        ]);
        assert!(code < 2, "{file}: exit {code}: {stderr}");
        let run: Value = serde_json::from_str(&stdout).unwrap();
        let (_, text_report, _) =
            run_sim_from_root(&["run", &file, "--trace", &trace, "--repro-dir", &dir]);
        let op_lines: Vec<Value> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| event["ev"] == "op")
            .collect();
        for (label, op) in named_ops(&run) {
            if op["name"] == "thread-exit" {
                continue; // no op of a list: it has no op line
            }
            let matching: Vec<&Value> = op_lines
                .iter()
                .filter(|event| {
                    ["lifecycle_index", "repetition", "list", "index"]
                        .iter()
                        .all(|key| event[key] == op[key])
                        && event["a"] == op["thread"]
                        && event["op"] == op["name"]
                })
                .collect();
            assert_eq!(matching.len(), 1, "{file}: `{label}` {op}: {matching:?}");
            // The report names that line's index, in JSON and in words a search finds as is.
            let event = &matching[0]["i"];
            assert_eq!(&op["trace_event"], event, "{file}: `{label}` {op}");
            let needle = format!("trace event \"i\":{event}\n");
            assert!(
                text_report.contains(&needle),
                "{file}: no `{needle}` in\n{text_report}"
            );
            found += 1;
        }
    }
    assert!(found >= 20, "only {found} ops found in traces");
}

/// `count` different ops of the repeated list, one per line, each creating an object it never
/// frees: every one of them leaks a heap block at `counter_create`.
fn creates_never_freed(count: u32) -> String {
    let mut text = String::from(
        "name = \"forget\"\nsubject = \"counter\"\n\n[[lifecycle]]\nname = \"objects\"\nrepeat = 3\nops = [\n",
    );
    for slot in 1..=count {
        text.push_str(&format!("  {{ op = \"create\", slot = {slot} }},\n"));
    }
    text.push_str("]\n");
    text
}

/// A leak whose records at one site three ops acquired points at each of the three, oldest
/// first: the first on its `acquired:` line as before, the others on `also acquired:` lines, each
/// with its `-->`; with six, the first four, then how many more.
#[test]
fn a_leak_at_one_site_points_at_every_op_that_acquired_there() {
    let dir = scratch_dir("locations-several");
    let repros = repro_dir("several");
    let three = write_file(&dir, "three.toml", creates_never_freed(3));
    let three = three.display().to_string();
    let (code, text, _) = run_sim_from_root(&["run", &three, "--repro-dir", &repros]);
    assert_eq!(code, 1, "{text}");
    let expected = format!(
        "error[leak]: 3 heap blocks (192 B) not released after lifecycle `objects` (repetition 1 of 3)\n\
         \x20 acquired: op #1 `create` → counter_create (lifecycle 1, repetition 1, thread 0)\n\
         \x20   --> {three}:8:3 (ops)\n\
         \x20 also acquired: op #2 `create` → counter_create (lifecycle 1, repetition 1, thread 0)\n\
         \x20   --> {three}:9:3 (ops)\n\
         \x20 also acquired: op #3 `create` → counter_create (lifecycle 1, repetition 1, thread 0)\n\
         \x20   --> {three}:10:3 (ops)\n\
         \x20 baseline: 0 heap blocks; now: 3\n"
    );
    assert!(text.contains(&expected), "{text}");

    let (_, json_text, _) = run_sim_from_root(&["run", &three, "--json", "--repro-dir", &repros]);
    let run: Value = serde_json::from_str(&json_text).unwrap();
    let ops: Vec<(String, Value)> = named_ops(&run)
        .into_iter()
        .map(|(label, op)| (label, fields_of(&op, &["index", "line", "column"])))
        .collect();
    let at = |index, line| json!({"index": index, "line": line, "column": 3});
    assert_eq!(
        ops,
        [
            ("acquired".to_string(), at(1, 8)),
            ("also acquired".to_string(), at(2, 9)),
            ("also acquired".to_string(), at(3, 10)),
        ]
    );

    let six = write_file(&dir, "six.toml", creates_never_freed(6));
    let six = six.display().to_string();
    let (_, text, _) = run_sim_from_root(&["run", &six, "--repro-dir", &repros]);
    let arrows: Vec<&str> = text.lines().filter(|l| l.contains("-->")).collect();
    assert_eq!(
        arrows,
        (8..12)
            .map(|line| format!("    --> {six}:{line}:3 (ops)"))
            .collect::<Vec<_>>(),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    --> {six}:11:3 (ops)\n  also acquired: (+2 more ops)\n  baseline: 0 heap blocks; now: 6\n"
        )),
        "{text}"
    );
}
