//! The `--json` contract of DESIGN.md, checked through the binary: one JSON object on stdout with
//! `verdict`, `findings` (each with `kind`, `resource`, `lifecycle`, `site`, `signature`), `repro`
//! and `trace_hash`, and exit codes 0 (every check held), 1 (a finding), 2 (bad input).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{
    HUGE_ARENA_SCENARIO, SIM, package_dir, repro_dir, run_sim, run_sim_under_memory_limit,
    scratch_dir, write_file,
};

const KINDS: [&str; 8] = [
    "leak",
    "growth",
    "fault",
    "deadlock",
    "invariant",
    "panic",
    "budget",
    "determinism",
];

/// Parses stdout as exactly one JSON object (nothing before or after it).
fn one_object(stdout: &str) -> Value {
    let mut stream = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let value = stream
        .next()
        .expect("a JSON value on stdout")
        .expect("valid JSON");
    assert!(stream.next().is_none(), "one JSON value, not several");
    assert!(value.is_object(), "the value is an object");
    value
}

fn is_hex64(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 18 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Checks the keys every run object must have, and returns the findings.
fn check_contract(value: &Value) -> Vec<Value> {
    let verdict = value["verdict"].as_str().expect("verdict is a string");
    assert!(verdict == "pass" || verdict == "fail", "{verdict}");
    assert!(is_hex64(&value["trace_hash"]), "{}", value["trace_hash"]);
    let findings = value["findings"].as_array().expect("findings is a list");
    assert_eq!(verdict == "pass", findings.is_empty(), "verdict agrees");
    for finding in findings {
        let kind = finding["kind"].as_str().expect("kind");
        assert!(KINDS.contains(&kind), "kind `{kind}` is one of {KINDS:?}");
        let resource = finding["resource"].as_str().expect("resource");
        let site = finding["site"].as_str().expect("site");
        assert!(finding["lifecycle"].is_string(), "lifecycle names it");
        assert_eq!(
            finding["signature"].as_str().expect("signature"),
            format!("{kind}:{resource}:{site}")
        );
    }
    match verdict {
        "pass" => assert!(value["repro"].is_null(), "nothing to replay"),
        // A repro file's replay, or, when none could be written, the rerun of the scenario file.
        _ => assert!(
            value["repro"]
                .as_str()
                .is_some_and(|r| r.starts_with("sim replay ") || r.starts_with("sim run ")),
            "{}",
            value["repro"]
        ),
    }
    findings.clone()
}

#[test]
fn a_passing_run_is_exit_0_and_verdict_pass() {
    let (code, stdout, stderr) = run_sim(&[
        "run",
        "tests/ui/counter-clean.toml",
        "--json",
        "--repro-dir",
        &repro_dir("pass"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let value = one_object(&stdout);
    assert!(check_contract(&value).is_empty());
    assert_eq!(value["verdict"], "pass");
}

#[test]
fn a_failing_run_is_exit_1_with_each_finding_described() {
    let (code, stdout, stderr) = run_sim(&[
        "run",
        "tests/ui/counter-leak-on-evict.toml",
        "--json",
        "--repro-dir",
        &repro_dir("fail"),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let value = one_object(&stdout);
    let findings = check_contract(&value);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["kind"], "leak");
    assert_eq!(findings[0]["resource"], "heap block");
    assert_eq!(findings[0]["site"], "counter_create");
    assert_eq!(findings[0]["lifecycle"], "object");
    let repro = value["repro"].as_str().unwrap();
    assert!(Path::new(repro.strip_prefix("sim replay ").unwrap()).is_file());

    // The same run with the defect off passes; the trace differs because the OS calls differ.
    let (code, stdout, _) = run_sim(&[
        "run",
        "tests/ui/counter-leak-on-evict.toml",
        "--json",
        "--no-defects",
        "--repro-dir",
        &repro_dir("fail-off"),
    ]);
    assert_eq!(code, 0);
    let off = one_object(&stdout);
    check_contract(&off);
    assert_ne!(off["trace_hash"], value["trace_hash"]);
}

#[test]
fn a_finding_of_a_check_at_a_lifecycles_end_says_which_check_and_others_leave_the_key_out() {
    for (file, end) in [
        ("tests/ui/counter-teardown-leak.toml", Some("teardown")),
        (
            "tests/ui/counter-setup-no-teardown.toml",
            Some("no-teardown"),
        ),
        ("tests/ui/counter-leak-on-evict.toml", None),
    ] {
        let (code, stdout, stderr) =
            run_sim(&["run", file, "--json", "--repro-dir", &repro_dir("end")]);
        assert_eq!(code, 1, "{file}: {stderr}");
        let findings = check_contract(&one_object(&stdout));
        assert!(!findings.is_empty(), "{file}");
        for finding in &findings {
            match end {
                Some(end) => assert_eq!(finding["lifecycle_end"], end, "{file}: {finding}"),
                None => assert!(finding.get("lifecycle_end").is_none(), "{file}: {finding}"),
            }
        }
    }
}

/// A finding made while a lifecycle's setup or teardown ran, which run once, has `"during"`
/// naming the list, and so has each op of those lists it names (a spawned thread's op too, by
/// the list that spawned the thread); a finding or op of a repetition leaves the key out. The
/// keys before it keep their meaning: `repetition` is still a number, `list` the op's own list.
#[test]
fn a_finding_or_op_of_a_setup_or_teardown_says_which_and_one_of_a_repetition_leaves_the_key_out() {
    let run = |file: &str| {
        let (code, stdout, stderr) =
            run_sim(&["run", file, "--json", "--repro-dir", &repro_dir("during")]);
        assert_eq!(code, 1, "{file}: {stderr}");
        check_contract(&one_object(&stdout))
    };
    let ops_of = |finding: &Value| -> Vec<Value> {
        let details = finding["details"].as_array().expect("details").iter();
        details.filter_map(|d| d.get("op").cloned()).collect()
    };

    let findings = run("tests/ui/counter-teardown-deadlock.toml");
    assert_eq!(findings.len(), 1);
    let deadlock = &findings[0];
    assert_eq!(deadlock["kind"], "deadlock");
    assert_eq!(deadlock["during"], "teardown", "{deadlock}");
    assert!(deadlock["repetition"].is_u64(), "{deadlock}");
    assert!(deadlock.get("lifecycle_end").is_none(), "{deadlock}");
    let ops = ops_of(deadlock);
    assert_eq!(ops.len(), 3, "blocked at twice, held once: {deadlock}");
    for op in &ops {
        assert_eq!(op["during"], "teardown", "{op}");
        assert!(op["repetition"].is_u64(), "{op}");
    }
    let lists: Vec<&str> = ops.iter().map(|op| op["list"].as_str().unwrap()).collect();
    assert_eq!(lists, ["teardown", "thread", "teardown"]);

    let findings = run("tests/ui/counter-setup-thread-holds-lock.toml");
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invariant", "deadlock"]);
    // The thread the setup spawned exits holding the lock: the setup's finding and op.
    assert_eq!(findings[0]["during"], "setup", "{}", findings[0]);
    let ops = ops_of(&findings[0]);
    assert_eq!(
        (ops[0]["list"].as_str(), ops[0]["during"].as_str()),
        (Some("thread"), Some("setup"))
    );
    // The first repetition then waits for it: its finding and its own op leave the key out,
    // and the op that took the lock still names the setup.
    assert!(findings[1].get("during").is_none(), "{}", findings[1]);
    assert_eq!(findings[1]["repetition"], 0);
    let ops = ops_of(&findings[1]);
    assert_eq!(ops.len(), 2, "{}", findings[1]);
    assert_eq!(ops[0]["list"], "ops");
    assert!(ops[0].get("during").is_none(), "{}", ops[0]);
    assert_eq!(ops[1]["during"], "setup", "{}", ops[1]);

    // A teardown leak is found after the teardown, not in it; its op is the setup's.
    let findings = run("tests/ui/counter-teardown-leak.toml");
    assert_eq!(findings[0]["lifecycle_end"], "teardown");
    assert!(findings[0].get("during").is_none(), "{}", findings[0]);
    assert_eq!(ops_of(&findings[0])[0]["during"], "setup");
}

#[test]
fn other_finding_kinds_keep_the_contract() {
    for (file, kind) in [
        ("tests/ui/counter-deadlock.toml", "deadlock"),
        ("tests/ui/counter-budget.toml", "budget"),
        ("tests/ui/counter-exit-holding-lock.toml", "invariant"),
    ] {
        let (code, stdout, stderr) =
            run_sim(&["run", file, "--json", "--repro-dir", &repro_dir(kind)]);
        assert_eq!(code, 1, "{file}: {stderr}");
        let findings = check_contract(&one_object(&stdout));
        assert_eq!(findings[0]["kind"], kind, "{file}");
    }
}

#[test]
fn several_files_give_one_object_with_every_finding() {
    let (code, stdout, _) = run_sim(&[
        "run",
        "tests/ui/counter-clean.toml",
        "tests/ui/counter-leak-on-evict.toml",
        "--json",
        "--repro-dir",
        &repro_dir("several"),
    ]);
    assert_eq!(code, 1);
    let value = one_object(&stdout);
    let findings = check_contract(&value);
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[0]["source"], "tests/ui/counter-leak-on-evict.toml",
        "a finding says which file it came from"
    );
    assert_eq!(value["runs"].as_array().unwrap().len(), 2);
    for run in value["runs"].as_array().unwrap() {
        check_contract(run);
    }
}

#[test]
fn replay_keeps_the_contract() {
    let dir = repro_dir("replay");
    let (_, stdout, _) = run_sim(&[
        "run",
        "tests/ui/counter-leak-on-evict.toml",
        "--json",
        "--repro-dir",
        &dir,
    ]);
    let run = one_object(&stdout);
    let repro = run["repro"].as_str().unwrap().strip_prefix("sim replay ");
    let (code, stdout, _) = run_sim(&["replay", repro.unwrap(), "--json"]);
    assert_eq!(code, 1);
    let replayed = one_object(&stdout);
    check_contract(&replayed);
    assert_eq!(replayed["trace_hash"], run["trace_hash"]);
}

#[test]
fn bad_input_is_exit_2_with_a_message_and_no_partial_json() {
    for args in [
        vec!["run", "tests/malformed/unknown-op.toml", "--json"],
        vec!["run", "tests/does-not-exist.toml", "--json"],
        vec![
            "run",
            "tests/ui/counter-clean.toml",
            "--json",
            "--defect",
            "no-such-defect",
        ],
        vec![
            "run",
            "tests/ui/counter-clean.toml",
            "--json",
            "--seed",
            "0xzz",
        ],
        vec!["run", "--json"],
        vec!["replay", "gen:no-such-subject:1", "--json"],
        vec!["frobnicate"],
    ] {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: stdout {stdout}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `--trace FILE` writes every trace event as one JSON object per line, the same file for the same
/// run, ending with the finding; the run's result is unchanged by it.
#[test]
fn trace_file_is_json_lines_identical_across_runs_and_ends_with_the_finding() {
    let dir = scratch_dir("json-trace");
    let scenario = "../scenarios/zoo/instantiate-destroy.toml";
    let traced = |name: &str| {
        let path = dir.join(name);
        let (code, stdout, stderr) = run_sim(&[
            "run",
            scenario,
            "--json",
            "--trace",
            &path.display().to_string(),
            "--repro-dir",
            &repro_dir("trace"),
        ]);
        assert_eq!(code, 1, "{stderr}");
        (one_object(&stdout), std::fs::read_to_string(path).unwrap())
    };
    let (first, lines) = traced("a.jsonl");
    let (second, again) = traced("b.jsonl");
    assert_eq!(lines, again, "one seed, one trace, bit for bit");
    assert_eq!(first["trace_hash"], second["trace_hash"]);
    let events: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(events.len() > 100, "{} events", events.len());
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["i"], index as u64 + 1, "numbered in order");
        assert!(event["ev"].is_string());
    }
    assert!(
        events
            .iter()
            .any(|e| e["ev"] == "finding" && e["text"] == "leak:rwlock:fd_prestats_init"),
        "the finding is an event"
    );
    let (code, untraced, _) = run_sim(&[
        "run",
        scenario,
        "--json",
        "--repro-dir",
        &repro_dir("untraced"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(one_object(&untraced)["trace_hash"], first["trace_hash"]);
}

/// `sim list SUBJECT...` shows only the subjects named, in the order given (a crate's own subject
/// is listed after every built-in one otherwise); an unknown name is bad input.
#[test]
fn list_shows_only_the_subjects_named() {
    let (code, stdout, _) = run_sim(&["list", "--json", "counter", "allocator"]);
    assert_eq!(code, 0);
    let subjects: Value = serde_json::from_str(&stdout).expect("valid JSON");
    let names: Vec<&str> = subjects
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["counter", "allocator"]);
    let (code, table, _) = run_sim(&["list", "counter"]);
    assert_eq!(code, 0);
    assert!(table.starts_with("counter — "), "{table}");
    assert!(!table.contains("allocator —"), "{table}");
    let (code, stdout, stderr) = run_sim(&["list", "nosuch"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains("unknown subject `nosuch`; known: interpreter, allocator"),
        "{stderr}"
    );
}

/// The example lines `sim list` prints under each subject's table: what a user pastes into an
/// op list, with the trailing comma and any `#` comment line (an op without an example).
fn listed_examples(table: &str) -> Vec<String> {
    let mut examples = Vec::new();
    let mut inside = false;
    for line in table.lines() {
        if line.starts_with("ops with every field") {
            inside = true;
        } else if line.is_empty() {
            inside = false;
        } else if inside {
            examples.push(line.to_string());
        }
    }
    examples
}

/// `sim list SUBJECT` shows what to write for each op: an example with every field, which the
/// user otherwise learnt only from a parse error's "expected one of" list.
#[test]
fn list_shows_an_example_with_every_field_for_each_op() {
    let (code, table, _) = run_sim(&["list", "allocator"]);
    assert_eq!(code, 0);
    let examples = listed_examples(&table);
    let (code, stdout, _) = run_sim(&["list", "--json", "allocator"]);
    assert_eq!(code, 0);
    let subjects: Value = serde_json::from_str(&stdout).expect("valid JSON");
    let ops = subjects[0]["ops"].as_array().expect("a list of ops");
    assert_eq!(examples.len(), ops.len(), "{table}");
    for op in ops {
        let name = op["name"].as_str().unwrap();
        let example = op["example"].as_str().unwrap_or_else(|| panic!("{op}"));
        assert!(
            example.starts_with(&format!("{{ op = \"{name}\"")),
            "{example}"
        );
        assert!(
            examples.contains(&format!("  {example},")),
            "`{example}` under the table:\n{table}"
        );
    }
    // Every field, the optional `heap` too, with small values.
    assert!(
        examples.contains(&r#"  { op = "malloc", slot = 0, bytes = 8, heap = 0 },"#.to_string()),
        "{table}"
    );
}

/// `sim list allocator` says what `malloc` and `realloc` do beyond their C names: it said only
/// "slot = malloc(bytes)", while a request above 32 KiB runs as a 32 KiB block and a malloc into
/// a filled slot frees the block there first.
#[test]
fn list_says_the_allocators_32_kib_clamp_slot_reuse_and_ranges() {
    let (code, stdout, _) = run_sim(&["list", "--json", "allocator"]);
    assert_eq!(code, 0);
    let subjects: Value = serde_json::from_str(&stdout).expect("valid JSON");
    let summary = |name: &str| {
        subjects[0]["ops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["name"] == name)
            .unwrap_or_else(|| panic!("op `{name}` listed"))["summary"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let malloc = summary("malloc");
    for said in [
        "a block already in the slot is freed first",
        "any request above 32 KiB gets a 32 KiB block",
        "slot 0 to 7, heap 0 to 3",
    ] {
        assert!(malloc.contains(said), "malloc: {malloc}");
    }
    let realloc = summary("realloc");
    assert!(
        realloc.contains("above 32 KiB is 32 KiB"),
        "realloc: {realloc}"
    );
}

/// `sim list --json`: every subject, each with its ops, defects and parameters.
fn listed_subjects() -> Value {
    let (code, stdout, stderr) = run_sim(&["list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("valid JSON")
}

/// What `sim list SUBJECT` shows under its table, pasted into a scenario's op list as it is,
/// parses, for every built-in subject: the examples are in an order where each name an op uses
/// (a `free`'s slot) is defined above it.
#[test]
fn every_listed_example_pasted_into_a_scenario_parses() {
    let subjects = listed_subjects();
    for subject in subjects.as_array().unwrap() {
        let name = subject["name"].as_str().unwrap();
        let (code, table, _) = run_sim(&["list", name]);
        assert_eq!(code, 0);
        let examples = listed_examples(&table);
        assert!(!examples.is_empty(), "{table}");
        let text = format!(
            "name = \"examples\"\nsubject = \"{name}\"\n\n[[lifecycle]]\nname = \"pasted\"\nops = [\n{}\n]\n",
            examples.join("\n")
        );
        if let Err(error) = sim::registry::Registry::builtin().parse("pasted.toml", &text) {
            panic!("{name}'s examples do not parse: {error}\n{text}");
        }
    }
}

/// `sim list`'s sentences wrap to the width it is given (the terminal's, or `COLUMNS` when the
/// output is no terminal): a defect's summary with its source made rows over 300 columns wide,
/// which a terminal broke mid-cell. Names stay whole, as one types them into a scenario.
#[test]
fn list_wraps_its_rows_to_the_width_it_is_given() {
    let output = Command::new(SIM)
        .arg("list")
        .env("COLUMNS", "80")
        .output()
        .expect("run sim");
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8(output.stdout).unwrap();
    // An example op under a table is a line to paste whole, as a name is.
    let examples = listed_examples(&table);
    for line in table
        .lines()
        .filter(|line| !line.contains(" — ") && !examples.iter().any(|e| e == line))
    {
        assert!(line.chars().count() <= 80, "wider than 80 columns:\n{line}");
    }
    assert!(
        table
            .lines()
            .any(|line| line.contains("┆ absorbed-pages-never-collected ┆")),
        "a defect's name stays on one line:\n{table}"
    );
}

#[test]
fn list_shows_each_subjects_config_parameters_with_kind_range_and_default() {
    let subjects = listed_subjects();
    let params = |name: &str| {
        subjects
            .as_array()
            .expect("a list of subjects")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("subject `{name}` listed"))["params"]
            .clone()
    };
    let blocking = &params("interpreter")[0];
    assert_eq!(blocking["name"], "blocking");
    assert_eq!(blocking["kind"]["type"], "choice");
    assert_eq!(
        blocking["kind"]["choices"],
        serde_json::json!(["owner-running", "linux"])
    );
    assert_eq!(blocking["kind"]["default"], "owner-running");
    let arena = &params("dlmalloc")[0];
    assert_eq!(arena["name"], "arena-bytes");
    assert_eq!(arena["kind"]["type"], "unsigned");
    assert_eq!(arena["kind"]["default"], 1u64 << 30);
    assert_eq!(params("counter"), serde_json::json!([]));
    // The table form names each parameter on a `config` row with what it must be.
    let (code, table, _) = run_sim(&["list"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.contains("config") && l.contains("blocking") && l.contains("\"linux\"")),
        "{table}"
    );
}

/// `sim run --repro-dir FILE`, a regular file where the directory would go, is bad usage, said
/// before any scenario runs: found after the runs, it was a warning per finding and exit 1, and
/// every finding lost its repro.
#[test]
fn a_repro_dir_that_is_a_file_is_refused_before_anything_runs() {
    let file = repro_dir("a-file-not-a-dir");
    std::fs::create_dir_all(Path::new(&file).parent().unwrap()).unwrap();
    std::fs::write(&file, "not a directory").unwrap();
    let trace = format!("{file}.trace.jsonl");
    let (code, stdout, stderr) = run_sim(&[
        "run",
        "../scenarios/zoo/instantiate-destroy.toml",
        "--repro-dir",
        &file,
        "--trace",
        &trace,
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains(&format!("--repro-dir {file}: {file} is not a directory")),
        "{stderr}"
    );
    assert!(!Path::new(&trace).exists(), "nothing ran");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

/// A repro directory that cannot be made when a repro is written loses no result: every file's
/// findings are reported, a warning names the directory and the OS error, each finding's command
/// reruns its scenario file as the run went, and the exit code is the findings' own. Here it is
/// under `/proc/self`, a directory where `mkdir` fails even for root, which no check before the
/// runs can tell. (A symbolic link to nothing, which this test used, is now refused before the
/// runs, as a file standing there is.)
#[test]
fn a_repro_that_cannot_be_written_is_a_warning_and_every_result_is_kept() {
    let dangling = repro_dir("a-dangling-link");
    std::fs::create_dir_all(Path::new(&dangling).parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(format!("{dangling}-nowhere"), &dangling).unwrap();
    let (code, stdout, stderr) = run_sim(&[
        "run",
        "../scenarios/zoo/instantiate-destroy.toml",
        "--repro-dir",
        &dangling,
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--repro-dir {dangling}: {dangling} is a symbolic link to {dangling}-nowhere, which does not exist"
        )),
        "{stderr}"
    );

    let blocked = "/proc/self/sim-repros".to_string();
    let files = [
        "../scenarios/zoo/instantiate-destroy.toml",
        "../scenarios/zoo/failed-init.toml",
    ];
    let (code, stdout, stderr) =
        run_sim(&["run", files[0], files[1], "--json", "--repro-dir", &blocked]);
    assert_eq!(code, 1, "{stderr}");
    let value = one_object(&stdout);
    assert_eq!(value["verdict"], "fail");
    let runs = value["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "both files' results: {value}");
    for (run, file) in runs.iter().zip(files) {
        assert!(!check_contract(run).is_empty(), "{run}");
        let rerun = run["repro"].as_str().unwrap();
        assert!(
            rerun.starts_with(&format!("sim run {file} --seed 0x")),
            "{rerun}"
        );
        // The command reruns the same run.
        let again = repro_dir("blocked-rerun");
        let mut args: Vec<&str> = rerun.split(' ').skip(1).collect();
        args.extend(["--json", "--repro-dir", &again]);
        let (rerun_code, rerun_stdout, rerun_stderr) = run_sim(&args);
        assert_eq!(rerun_code, 1, "{rerun_stderr}");
        assert_eq!(
            one_object(&rerun_stdout)["trace_hash"],
            run["trace_hash"],
            "{rerun}"
        );
        assert!(
            stderr.contains(&format!(
                "warning: cannot write a repro file for {file} into {blocked}: "
            )),
            "{stderr}"
        );
    }
    assert!(!Path::new(&blocked).exists(), "no directory was made");

    // As text, with the run's own defects and strategy in the command.
    let (code, stdout, stderr) = run_sim(&[
        "run",
        files[1],
        "--defect",
        "preopen-handle-leak",
        "--strategy",
        "pct",
        "--repro-dir",
        &blocked,
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "note: replay with `sim run {} --seed 0x0000000000000001 --defect preopen-handle-leak --strategy pct:3`",
            files[1]
        )),
        "{stdout}"
    );
    assert!(stdout.contains("fail: "), "the summary line: {stdout}");
    assert!(stderr.contains("no repro was written"), "{stderr}");
}

/// A scenario near the 4 MiB a file may have prints its repro past it (the printer spells each
/// op out): that repro could not be replayed, so none is written, and the findings name the
/// command that reruns the file, where the printed `sim replay` used to fail with exit 2.
#[test]
fn a_repro_too_large_to_replay_is_not_written_and_the_rerun_command_is_given() {
    let dir = scratch_dir("repro-too-large");
    let mut ops = vec![r#"{op="bump"}"#; 300_000];
    ops.insert(150_000, r#"{op="create",slot=1},{op="evict",slot=1}"#);
    let file = dir.join("big.toml");
    let text = format!(
        "name = \"big\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\n\
         [[lifecycle]]\nname = \"l\"\nops = [{}]\n",
        ops.join(",")
    );
    assert!(text.len() < 4 << 20, "the file itself parses");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let repros = dir.join("repros").display().to_string();
    let (code, stdout, stderr) = run_sim(&["run", &file, "--repro-dir", &repros]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("could not be replayed") && stderr.contains("no repro was written"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "note: replay with `sim run {file} --seed 0x0000000000000000"
        )),
        "{stdout}"
    );
    let written = std::fs::read_dir(&repros).map_or(0, |entries| entries.count());
    assert_eq!(written, 0, "no repro that `sim replay` would refuse");
}

/// Standard output that cannot be written (a full disk: `/dev/full`) is an internal error with a
/// message, as for `sim replay` and `sim list`, not a silent loss of the report; the repro files
/// are still written, and the message names how to replay them.
#[test]
fn a_report_that_cannot_be_written_to_stdout_is_exit_3_with_a_message() {
    let repros = repro_dir("stdout-full");
    for json in [true, false] {
        let mut args = vec![
            "run",
            "../scenarios/zoo/instantiate-destroy.toml",
            "--repro-dir",
            &repros,
        ];
        if json {
            args.push("--json");
        }
        let (code, stderr) = sim_onto_a_full_disk(&args);
        assert_eq!(code, Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: cannot write to standard output: No space left"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "note: replay with `sim replay {repros}/wasi-runtime-instantiate-destroy-0000000000000001.toml`"
            )),
            "{stderr}"
        );
    }
}

/// Runs `sim` with its stdout on a full disk (`/dev/full`): (exit code, stderr).
fn sim_onto_a_full_disk(args: &[&str]) -> (Option<i32>, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = Command::new(SIM)
        .args(args)
        .current_dir(package_dir())
        .stdout(full)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The other commands print as they go, so a full disk stops them mid-print: exit 3, with a
/// message that says what failed rather than calling it a bug in sim.
#[test]
fn other_commands_that_cannot_write_to_stdout_say_why_and_blame_no_bug() {
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["replay", "gen:counter:1"],
    ] {
        let (code, stderr) = sim_onto_a_full_disk(&args);
        assert_eq!(code, Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: cannot write to standard output: No space left"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("bug in sim"), "{args:?}: {stderr}");
    }
}

/// A trace that cannot be written (a full disk: `/dev/full`) is reported after the run's own
/// report, which is whole, and the exit code says the command failed (3) rather than only that
/// the run found something.
#[test]
fn a_trace_that_cannot_be_written_is_reported_after_the_findings() {
    let repros = repro_dir("trace-full");
    let scenario = "../scenarios/zoo/instantiate-destroy.toml";
    for json in [true, false] {
        let mut args = vec![
            "run",
            scenario,
            "--trace",
            "/dev/full",
            "--repro-dir",
            &repros,
        ];
        if json {
            args.push("--json");
        }
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: /dev/full: cannot write the trace: No space left on device"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        if json {
            let value = one_object(&stdout);
            assert_eq!(value["verdict"], "fail");
            assert!(!check_contract(&value).is_empty());
        } else {
            assert!(stdout.contains("leak:rwlock:fd_prestats_init"), "{stdout}");
            assert!(stdout.contains("fail: 1 finding(s)"), "{stdout}");
        }
    }
    let repro = format!("{repros}/wasi-runtime-instantiate-destroy-0000000000000001.toml");
    let (code, stdout, stderr) = run_sim(&["replay", &repro, "--trace", "/dev/full"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.contains("replayed: the same findings"), "{stdout}");
    assert!(
        stderr.contains("/dev/full: cannot write the trace"),
        "{stderr}"
    );
}

/// `--trace` into a FIFO (or a pipe: `--trace >(gzip > t.gz)`) gives the report it gives for a
/// file, each op named by its trace line, and the command ends: it notes the lines as it writes
/// them, where it opened the trace again to read it back and waited for ever for a writer.
#[test]
fn a_trace_into_a_fifo_names_each_ops_line_and_is_never_read_back() {
    let dir = scratch_dir("trace-fifo");
    let repros = dir.join("repros").display().to_string();
    let scenario = "../scenarios/zoo/instantiate-destroy.toml";
    let (code, _, stderr) = run_sim(&["run", scenario, "--repro-dir", &repros]);
    assert_eq!(code, 1, "{stderr}");
    let repro = format!("{repros}/wasi-runtime-instantiate-destroy-0000000000000001.toml");
    let run_args = ["run", scenario, "--repro-dir", &repros];
    for (index, command) in [&run_args[..], &["replay", &repro]].iter().enumerate() {
        let fifo = dir.join(format!("trace-{index}.fifo"));
        let fifo_name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path, as `mkfifo` takes.
        assert_eq!(unsafe { libc::mkfifo(fifo_name.as_ptr(), 0o600) }, 0);
        let fifo_arg = fifo.display().to_string();
        let mut args = command.to_vec();
        args.extend(["--trace", &fifo_arg]);
        let mut child = Command::new(SIM)
            .args(&args)
            .current_dir(package_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read to its end, as `gzip < FIFO` would.
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read_to_string(fifo).unwrap()
        });
        // A writer that comes and goes with nothing to say: once the trace is read, to a
        // command that opened the FIFO again to read it (and waits for a writer), so that it
        // ends with no line named rather than hanging the test; once the command ended, to the
        // reader, had the command never opened the FIFO.
        let nudge = || {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
        };
        while child.try_wait().unwrap().is_none() {
            if reader.is_finished() {
                nudge();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        nudge();
        let trace = reader.join().unwrap();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        // The op the leak names (`instantiate`, op #1 of the first repetition) and its line.
        assert!(
            stdout.contains(":15:3 (ops), trace event \"i\":10\n")
                || stdout.contains(":20:3 (ops), trace event \"i\":10\n"),
            "{args:?}: {stdout}"
        );
        let line: Value = serde_json::from_str(trace.lines().nth(9).unwrap()).unwrap();
        assert_eq!(line["i"], 10);
        assert_eq!(line["op"], "instantiate");
        assert_eq!(line["index"], 1);
        assert_eq!(line["repetition"], 0);
    }
}

/// `--trace` naming one of the command's input files, however spelt, is refused before anything
/// runs, and the file stays as it was.
#[test]
fn a_trace_file_that_is_an_input_is_refused() {
    let dir = PathBuf::from(repro_dir("trace-is-input"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("scenario.toml");
    let text =
        std::fs::read_to_string(package_dir().join("../scenarios/zoo/instantiate-destroy.toml"))
            .unwrap();
    std::fs::write(&input, &text).unwrap();
    let other_spelling = dir.join(".").join("scenario.toml").display().to_string();
    let repros = dir.join("repros").display().to_string();
    let input = input.display().to_string();
    for args in [
        vec![
            "run",
            &input,
            "--trace",
            &other_spelling,
            "--repro-dir",
            &repros,
        ],
        vec!["run", &input, "--json", "--trace", &input],
    ] {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "nothing runs: {stdout}");
        assert!(
            stderr.contains("that is the input file") && stderr.contains("overwrite"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    }
    let (code, _, _) = run_sim(&["run", &input, "--repro-dir", &repros]);
    assert_eq!(code, 1);
    let repro = format!("{repros}/wasi-runtime-instantiate-destroy-0000000000000001.toml");
    let before = std::fs::read_to_string(&repro).unwrap();
    let (code, stdout, stderr) = run_sim(&["replay", &repro, "--trace", &repro]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(std::fs::read_to_string(&repro).unwrap(), before);

    // A hard link is the same file under another path: as an output it would overwrite its
    // input, the scenario or the recorded trace to compare with.
    let linked_input = dir.join("scenario-hard.toml");
    std::fs::hard_link(&input, &linked_input).unwrap();
    let linked_input = linked_input.display().to_string();
    let recorded = dir.join("recorded.jsonl").display().to_string();
    let (code, _, stderr) = run_sim(&["replay", &repro, "--trace", &recorded]);
    assert_eq!(code, 1, "{stderr}");
    let trace = std::fs::read_to_string(&recorded).unwrap();
    let linked_trace = dir.join("recorded-hard.jsonl");
    std::fs::hard_link(&recorded, &linked_trace).unwrap();
    let linked_trace = linked_trace.display().to_string();
    for args in [
        vec![
            "run",
            &input,
            "--trace",
            &linked_input,
            "--repro-dir",
            &repros,
        ],
        vec![
            "replay",
            &repro,
            "--trace",
            &linked_trace,
            "--compare-trace",
            &recorded,
        ],
    ] {
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "nothing runs: {stdout}");
        assert!(stderr.contains("that is the input file"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&recorded).unwrap(), trace);
}

/// The runner's ops `sim list` shows under the examples, pasted whole into an op list with a
/// declared thread `t` for `spawn` and `join`, parse and run, for every built-in subject's
/// listing (they are the same lines in each).
#[test]
fn the_listed_runner_ops_pasted_into_a_scenario_parse_and_run() {
    let (code, table, _) = run_sim(&["list", "counter"]);
    assert_eq!(code, 0);
    let runner_ops: Vec<&str> = table
        .lines()
        .skip_while(|line| !line.starts_with("the runner's ops"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(runner_ops.len(), 4, "{table}");
    let text = format!(
        "name = \"runner-ops\"\nsubject = \"counter\"\n\n[[lifecycle]]\nname = \"pasted\"\nops = [\n{}\n]\n\
         [[lifecycle.thread]]\nname = \"t\"\nops = [{{ op = \"bump\" }}]\n",
        runner_ops.join("\n")
    );
    let scenario = sim::registry::Registry::builtin()
        .parse("pasted.toml", &text)
        .unwrap_or_else(|error| panic!("the runner's ops do not parse: {error}\n{text}"));
    let outcome = scenario.run(sim::runner::RunOptions::default());
    assert!(outcome.passed(), "{:?}\n{text}", outcome.findings);
}

/// `sim run --json` under a memory limit that refuses a dlmalloc arena: the file that did not
/// run is in the report, with its path and why, and the verdict is not "pass" (exit 3 as
/// before). The shape follows the files given: one file gives the one-run object, several the
/// object with `runs`, even when only one of them ran.
#[test]
fn a_file_the_host_refuses_is_in_the_json_and_the_verdict_is_not_pass() {
    let dir = scratch_dir("json-refused");
    let huge = write_file(&dir, "huge-arena.toml", HUGE_ARENA_SCENARIO)
        .display()
        .to_string();
    let clean = package_dir()
        .join("tests/ui/counter-clean.toml")
        .display()
        .to_string();
    let repros = dir.join("repros").display().to_string();
    let under_limit = |files: &[&str]| {
        let mut args = vec!["run"];
        args.extend(files);
        args.extend(["--json", "--repro-dir", &repros]);
        run_sim_under_memory_limit(&args)
    };
    let not_run_is_the_huge_file = |value: &Value| {
        let not_run = value["not_run"].as_array().expect("not_run is a list");
        assert_eq!(not_run.len(), 1, "{value}");
        assert_eq!(not_run[0]["source"], huge.as_str());
        assert!(
            not_run[0]["problem"]
                .as_str()
                .is_some_and(|p| p.starts_with("cannot run here:") && p.contains("arena-bytes")),
            "{value}"
        );
        assert_eq!(value["verdict"], "fail", "{value}");
    };

    let (code, stdout, stderr) = under_limit(&[&huge]);
    assert_eq!(code, 3, "{stderr}");
    let value = one_object(&stdout);
    not_run_is_the_huge_file(&value);
    assert!(
        value.get("runs").is_none(),
        "one file, one run's shape: {value}"
    );
    assert_eq!(value["source"], huge.as_str());
    assert_eq!(value["findings"], serde_json::json!([]));
    assert!(value["trace_hash"].is_null(), "no run, no trace: {value}");

    let (code, stdout, stderr) = under_limit(&[&clean, &huge]);
    assert_eq!(code, 3, "{stderr}");
    let value = one_object(&stdout);
    not_run_is_the_huge_file(&value);
    let runs = value["runs"]
        .as_array()
        .expect("two files, the shape with runs");
    assert_eq!(runs.len(), 1, "only the clean file ran: {value}");
    check_contract(&runs[0]);
    assert_eq!(runs[0]["verdict"], "pass");

    // Every file ran: `not_run` is there, and empty.
    let (code, stdout, _) = under_limit(&[&clean]);
    assert_eq!(code, 0);
    let value = one_object(&stdout);
    assert_eq!(value["not_run"], serde_json::json!([]));
    assert_eq!(value["verdict"], "pass");
}

/// `sim list --fuzz-targets --json` prints the targets as JSON, one object per line of the
/// tab-separated list, with the same name, expectation, subject and defects; it printed the
/// tab-separated list whatever `--json` said.
#[test]
fn list_fuzz_targets_prints_json_when_asked() {
    let (code, text, _) = run_sim(&["list", "--fuzz-targets"]);
    assert_eq!(code, 0);
    let (code, json, stderr) = run_sim(&["list", "--fuzz-targets", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Value> = serde_json::from_str(&json).expect("a JSON list");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), lines.len());
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(row["name"], line[0], "{row}");
        assert_eq!(row["expect"], line[1], "{row}");
        let subject = row["subject"].as_str().unwrap_or("-");
        assert_eq!(subject, line[2], "{row}");
        let defects: Vec<&str> = row["defects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let defects = if defects.is_empty() {
            "-".to_string()
        } else {
            defects.join(",")
        };
        assert_eq!(defects, line[3], "{row}");
        assert_eq!(row["summary"], line[4], "{row}");
    }
    let canary = rows.iter().find(|row| row["name"] == "canary").unwrap();
    assert_eq!(canary["expect"], "must-fail");
    let parser = rows
        .iter()
        .find(|row| row["name"] == "scenario-parser")
        .unwrap();
    assert!(parser["subject"].is_null(), "{parser}");
}
