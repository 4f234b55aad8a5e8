//! Replay round trips through the `sim` binary, for every subject in `Registry::builtin()`.
//!
//! For each subject: a failing scenario (its zoo file, or else a generated scenario with every
//! defect on, searched seed by seed until one fails) runs with `sim run`, which writes a repro
//! file; `sim replay REPRO` must then show the same findings, the same trace hash and the same exit
//! code. The one-line form `sim replay gen:SUBJECT:SEED:DEFECTS` must agree with the library's own
//! run of the same generated scenario. A subject added to the registry is covered without editing
//! this file.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sim::registry::Registry;
use sim::runner::RunOptions;
use sim::scenario::generate::GenerateOptions;
use sim::seed::format_seed;
use support::{
    fields_of, last_op_started_lines, paste_into_shell, run_sim_from_root, scratch_dir,
    workspace_root, write_file,
};

/// Seeds tried per subject when looking for a generated scenario that fails.
const SEARCH_SEEDS_MAX: u64 = 400;

struct Ran {
    code: i32,
    json: Value,
    stdout: String,
}

fn sim(args: &[&str]) -> Ran {
    let (code, stdout, stderr) = run_sim_from_root(args);
    assert!(
        code == 0 || code == 1,
        "`sim {}` exited {code}: {stderr}",
        args.join(" ")
    );
    let json = if args.contains(&"--json") {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("`sim {}`: not JSON ({e}):\n{stdout}", args.join(" ")))
    } else {
        Value::Null
    };
    Ran { code, json, stdout }
}

fn signatures(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["signature"].as_str().unwrap().to_string())
        .collect()
}

/// A zoo scenario (or test data file) of `subject` that fails as written, if there is one (the
/// zoo also holds control scenarios that pass; a subject without seeded defects, such as
/// `dlmalloc`, fails through a test data file that misuses it).
fn zoo_scenario(registry: &Registry, subject: &str) -> Option<PathBuf> {
    let mut paths: Vec<PathBuf> = ["scenarios/zoo", "sim/tests/data"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(workspace_root().join(dir)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().find(|path| {
        let text = std::fs::read_to_string(path).unwrap();
        registry
            .parse(&path.display().to_string(), &text)
            .is_ok_and(|s| s.meta().subject == subject && !s.run(RunOptions::default()).passed())
    })
}

/// A generated scenario of `subject` with every defect on that fails, as (seed, defects, file).
/// A subject without defects gets seed 0, which may pass: the round trip is checked all the same.
fn generated_failing(
    registry: &Registry,
    subject: &str,
    dir: &Path,
) -> (u64, Vec<String>, PathBuf) {
    let entry = registry.get(subject).unwrap();
    let defects: Vec<String> = entry
        .info()
        .defects
        .iter()
        .map(|d| d.name.to_string())
        .collect();
    let options = GenerateOptions {
        defects: defects.clone(),
        faults: false,
    };
    let seed = (0..SEARCH_SEEDS_MAX)
        .find(|&seed| !entry.generate(seed, &options).run(RunOptions::default()).passed())
        .unwrap_or_else(|| {
            assert!(
                defects.is_empty(),
                "no generated `{subject}` scenario with defects {defects:?} fails in {SEARCH_SEEDS_MAX} seeds"
            );
            0
        });
    let path = write_file(
        dir,
        format!("{subject}-generated.toml"),
        entry.generate(seed, &options).to_toml().unwrap(),
    );
    (seed, defects, path)
}

fn round_trip_file(scenario: &Path, repro_dir: &Path) -> Ran {
    let scenario = scenario.display().to_string();
    let repros = repro_dir.display().to_string();
    let first = sim(&["run", &scenario, "--json", "--repro-dir", &repros]);
    let repro = first.json["repro"].as_str().map(String::from);
    if first.code == 0 {
        assert_eq!(first.json["verdict"], "pass");
        assert!(repro.is_none(), "a passing run writes no repro");
        return first;
    }
    assert_eq!(first.json["verdict"], "fail");
    let repro = repro.expect("a failing run names its repro");
    let path = repro
        .strip_prefix("sim replay ")
        .expect("the repro is a `sim replay` command line");
    assert!(Path::new(path).is_file(), "{path} was written");

    let replayed = sim(&["replay", path, "--json"]);
    assert_eq!(replayed.code, first.code, "{scenario}: same exit code");
    assert_eq!(
        signatures(&replayed.json),
        signatures(&first.json),
        "{scenario}: same findings"
    );
    assert_eq!(
        replayed.json["trace_hash"], first.json["trace_hash"],
        "{scenario}: same trace hash"
    );
    assert_eq!(
        replayed.json["replay_problems"],
        Value::Array(vec![]),
        "{scenario}: the replay matches the recorded expectations"
    );
    let text = sim(&["replay", path]);
    assert_eq!(text.code, first.code);
    assert!(
        text.stdout
            .contains("replayed: the same findings and the same trace hash as recorded"),
        "{}",
        text.stdout
    );
    first
}

#[test]
fn every_builtin_subject_replays_its_failure_bit_for_bit() {
    let registry = Registry::builtin();
    let names = registry.names();
    assert!(!names.is_empty());
    for subject in names {
        let dir = scratch_dir(subject);
        let scenario = match zoo_scenario(&registry, subject) {
            Some(path) => path,
            None => generated_failing(&registry, subject, &dir).2,
        };
        let first = round_trip_file(&scenario, &dir.join("repros"));
        assert_eq!(
            first.code,
            1,
            "{subject}: the scenario chosen for the round trip fails ({})",
            scenario.display()
        );
    }
}

#[test]
fn a_repro_pins_the_schedule_strategy_it_ran_with() {
    let dir = scratch_dir("pct");
    let repros = dir.display().to_string();
    let first = sim(&[
        "run",
        "scenarios/zoo/cross-thread-free-exit.toml",
        "--strategy",
        "pct",
        "--json",
        "--repro-dir",
        &repros,
    ]);
    assert_eq!(first.code, 1);
    // The header names the steps the change points were spread over, the scenario's 6: malloc,
    // spawn (with the thread's free and exit), join, and the teardown's exit.
    assert_eq!(
        first.json["strategy"], "pct(depth=3, steps=6)",
        "{}",
        first.json
    );
    let repro = first.json["repro"].as_str().unwrap();
    let path = repro.strip_prefix("sim replay ").unwrap_or(repro);
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    assert!(text.contains(r#"strategy = "pct""#), "{text}");
    // With the steps its change points were spread over: the shrinker's repro has fewer ops,
    // from which a fresh estimate would draw other change points.
    assert!(text.contains("steps = "), "{text}");
    let replayed = sim(&["replay", path, "--json"]);
    assert_eq!(replayed.code, 1);
    assert_eq!(replayed.json["trace_hash"], first.json["trace_hash"]);
    assert_eq!(replayed.json["strategy"], first.json["strategy"]);
}

#[test]
fn generated_one_liners_replay_the_same_run_as_the_library() {
    let registry = Registry::builtin();
    for subject in registry.names() {
        let dir = scratch_dir(&format!("{subject}-gen"));
        let (seed, defects, file) = generated_failing(&registry, subject, &dir);
        let line = sim::report::generated_repro(subject, seed, &defects);
        assert!(line.starts_with(&format!("gen:{subject}:{}", format_seed(seed))));
        let options = GenerateOptions {
            defects: defects.clone(),
            faults: true,
        };
        let library = registry
            .get(subject)
            .unwrap()
            .generate(seed, &options)
            .run(RunOptions::default());

        let replayed = sim(&["replay", &line, "--json"]);
        assert_eq!(
            replayed.json["trace_hash"],
            format_seed(library.trace_hash),
            "{line}: the binary replays the library's run"
        );
        assert_eq!(signatures(&replayed.json), library.signatures(), "{line}");
        assert_eq!(replayed.code, i32::from(!library.passed()), "{line}");
        let again = sim(&["replay", &line, "--json"]);
        assert_eq!(again.json["trace_hash"], replayed.json["trace_hash"]);

        // The generated file (printed without faults) round-trips through a repro as well.
        round_trip_file(&file, &dir.join("repros"));
    }
}

/// A one-liner cut or mistyped to an empty defect name is refused, where it ran with the defects
/// left (or none) and passed; a defect named twice is on once, as `--defect` given twice is and
/// a file's `defects` list; and the whitespace a one-liner is pasted with is none of it, where a
/// space before it made it a file name and a space or CR after it was kept in its name.
#[test]
fn a_one_liner_with_an_empty_or_repeated_defect_or_whitespace_around_it() {
    for cut in [
        "gen:allocator:5:",
        "gen:allocator:5:collect-after-segment-free,",
    ] {
        let (code, stdout, stderr) = run_sim_from_root(&["replay", cut]);
        assert_eq!(code, 2, "{cut}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!("repro `{cut}`: an empty defect name")),
            "{stderr}"
        );
    }
    let once = "gen:counter:0x0000000000000001:leak-on-evict";
    for line in [
        "gen:counter:0x0000000000000001:leak-on-evict,leak-on-evict",
        " gen:counter:0x0000000000000001:leak-on-evict",
        "gen:counter:0x0000000000000001:leak-on-evict \r",
    ] {
        let (code, stdout, stderr) = run_sim_from_root(&["replay", line]);
        assert_eq!(code, 1, "{line:?}: {stdout}{stderr}");
        assert!(stdout.contains("· defects leak-on-evict ·"), "{stdout}");
        if line.trim() != line {
            assert!(stdout.starts_with(&format!("sim: {once}\n")), "{stdout}");
        }
    }
    let zoo = "scenarios/zoo/heap-delete-exit.toml";
    let defect = "collect-after-segment-free";
    let (code, stdout, stderr) =
        run_sim_from_root(&["run", zoo, "--defect", defect, "--defect", defect]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("· defects {defect} ·")),
        "{stdout}"
    );
}

/// Whitespace around a one-liner's defect names is none of them, as around the one-liner
/// (`…:a, b` was refused for an unknown defect ` b`), and the run is named as it was made: each
/// defect once, where the note echoed a repeated one.
#[test]
fn a_one_liner_with_spaces_in_its_defect_list_or_a_repeat_is_named_as_it_runs() {
    let once = "gen:counter:0x0000000000000001:leak-on-evict";
    for line in [
        "gen:counter:0x0000000000000001:leak-on-evict, leak-on-evict",
        "gen:counter:0x0000000000000001: leak-on-evict ",
        "gen:counter:0x0000000000000001:leak-on-evict,leak-on-evict",
    ] {
        let (code, stdout, stderr) = run_sim_from_root(&["replay", line]);
        assert_eq!(code, 1, "{line:?}: {stdout}{stderr}");
        assert!(stdout.contains("· defects leak-on-evict ·"), "{stdout}");
        assert!(stdout.starts_with(&format!("sim: {once}\n")), "{stdout}");
    }
}

#[test]
fn a_repro_whose_recorded_run_differs_is_reported_as_a_mismatch() {
    let dir = scratch_dir("mismatch");
    let scenario = workspace_root().join("sim/tests/ui/counter-leak-on-evict.toml");
    let repros = dir.join("repros");
    let first = sim(&[
        "run",
        &scenario.display().to_string(),
        "--json",
        "--repro-dir",
        &repros.display().to_string(),
    ]);
    let repro = first.json["repro"].as_str().unwrap();
    let path = repro.strip_prefix("sim replay ").unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let hash = first.json["trace_hash"].as_str().unwrap();
    let tampered = write_file(
        &dir,
        "tampered.toml",
        text.replace(hash, "0x0000000000000001").replace(
            "leak:heap block:counter_create",
            "leak:heap block:elsewhere",
        ),
    );
    let replayed = sim(&["replay", &tampered.display().to_string(), "--json"]);
    assert_eq!(replayed.code, 1);
    let problems: Vec<&str> = replayed.json["replay_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("differs from the recorded 0x0000000000000001"));
    // Editing the file is the first cause named: a reader trying a variant of a repro is not
    // sent to look for nondeterminism alone.
    assert!(
        problems[0].contains("not the recorded one (the file was edited after it was written,"),
        "{problems:?}"
    );
    assert!(problems[1].contains("`leak:heap block:elsewhere` did not appear"));
    // The finding the run did show is one the tampered file does not record: a difference too.
    assert!(
        problems[2]
            .contains("`leak:heap block:counter_create` appeared, which the repro does not record"),
        "{problems:?}"
    );
}

/// A replay that does not reproduce its repro (the defect turned off in the file: the run
/// passes its own checks, but the recorded finding does not appear and the trace differs) is a
/// failure in both outputs: `"verdict": "fail"` in `--json`, a closing `fail:` line in the text,
/// and exit 1, where it said "pass".
#[test]
fn a_replay_that_does_not_reproduce_fails_in_json_and_text() {
    let dir = scratch_dir("not-reproduced");
    let scenario = workspace_root().join("sim/tests/ui/counter-leak-on-evict.toml");
    let first = sim(&[
        "run",
        &scenario.display().to_string(),
        "--json",
        "--repro-dir",
        &dir.join("repros").display().to_string(),
    ]);
    let path = first.json["repro"]
        .as_str()
        .unwrap()
        .strip_prefix("sim replay ")
        .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let defects_off: String = text
        .lines()
        .map(|line| {
            if line.starts_with("defects = ") {
                "defects = []"
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(defects_off, text, "the repro names its defects");
    let edited = write_file(&dir, "defects-off.toml", defects_off);
    let edited = edited.display().to_string();

    let replayed = sim(&["replay", &edited, "--json"]);
    assert_eq!(replayed.code, 1);
    assert_eq!(
        replayed.json["findings"],
        json!([]),
        "the run itself passes"
    );
    assert_eq!(
        replayed.json["replay_problems"].as_array().unwrap().len(),
        2,
        "{}",
        replayed.json
    );
    assert_eq!(replayed.json["verdict"], "fail", "{}", replayed.json);

    let replayed = sim(&["replay", &edited]);
    assert_eq!(replayed.code, 1);
    assert!(
        replayed.stdout.ends_with(
            "fail: the replay does not reproduce the recorded run (2 replay mismatch(es) above)\n"
        ),
        "{}",
        replayed.stdout
    );
}

/// A regression that `sim import-crash` wrote pins its findings and no trace hash: its replay
/// says that it matched the findings, and claims nothing of a trace hash.
#[test]
fn a_regression_without_a_trace_hash_replays_without_claiming_one() {
    let path = "corpus/regressions/counter-leak-on-evict-leak-6e747dfa.toml";
    let source = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    assert!(
        !source.contains("trace_hash"),
        "{path} records no trace hash"
    );
    let replayed = sim(&["replay", path]);
    assert_eq!(replayed.code, 1, "its defect is on in the file");
    assert!(
        replayed
            .stdout
            .contains("replayed: the same findings as recorded (the file records no trace hash)"),
        "{}",
        replayed.stdout
    );
    assert!(
        !replayed.stdout.contains("same trace hash"),
        "{}",
        replayed.stdout
    );
}

/// A repro directory whose name holds a space: the printed replay command is quoted, so that it
/// pastes into a shell and replays the run.
#[test]
fn a_replay_command_pastes_into_a_shell_whatever_the_repro_directory() {
    let repros = scratch_dir("sp ace").join("repro dir");
    let first = sim(&[
        "run",
        "scenarios/zoo/instantiate-destroy.toml",
        "--json",
        "--repro-dir",
        &repros.display().to_string(),
    ]);
    assert_eq!(first.code, 1);
    let command = first.json["repro"].as_str().unwrap();
    let path = command
        .strip_prefix("sim replay '")
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("a quoted path: {command}"));
    assert!(Path::new(path).is_file(), "{path}");
    let (code, stdout, _) = paste_into_shell(&workspace_root(), command);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("replayed: the same findings and the same trace hash as recorded"),
        "{stdout}"
    );
}

/// A printed replay command names its repro relative to where `sim run` ran (the README's
/// `target/sim/repros/…`); pasted into a shell in another directory it finds no file, and the
/// error says where it looked, so that the reader knows to `cd` back.
#[test]
fn a_replay_command_pasted_elsewhere_says_where_it_looked() {
    let repros = "target/sim/repros";
    let first = sim(&[
        "run",
        "scenarios/zoo/instantiate-destroy.toml",
        "--json",
        "--repro-dir",
        repros,
    ]);
    let command = first.json["repro"].as_str().unwrap();
    assert!(
        command.starts_with("sim replay target/sim/repros/"),
        "{command}"
    );
    let elsewhere = scratch_dir("pasted-elsewhere");
    let (code, _, stderr) = paste_into_shell(&elsewhere, command);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read: No such file or directory")
            && stderr.contains(&format!("(looked for under {}", elsewhere.display())),
        "{stderr}"
    );
}

/// A sweep writes each finding as `NAME.toml`, the repro, beside `NAME.json`, its record; a
/// replay of the record is refused (exit 2) with the command that replays the repro, not only
/// the TOML parser's complaint about a `{` at 1:1.
#[test]
fn replaying_a_sweeps_json_record_names_the_repro_beside_it() {
    let dir = scratch_dir("json-record");
    write_file(
        &dir,
        "counter-leak-6e747dfa.toml",
        support::scenario_text("zoo/instantiate-destroy.toml"),
    );
    write_file(
        &dir,
        "counter-leak-6e747dfa.json",
        "{\n  \"subject\": \"wasi-runtime\"\n}\n",
    );
    let (code, stdout, stderr) =
        support::run_sim_in(&dir, &["replay", "counter-leak-6e747dfa.json"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains(
            "note: counter-leak-6e747dfa.json is JSON; scenarios and repros are TOML files"
        ) && stderr.contains("its repro is `sim replay counter-leak-6e747dfa.toml`"),
        "{stderr}"
    );
}

/// The repro file `sim run` printed for a run, from a command line of `sim run`.
fn repro_of(run: &Ran) -> PathBuf {
    let command = run.json["repro"]
        .as_str()
        .expect("a failing run names its repro");
    let path = command
        .strip_prefix("sim replay ")
        .expect("a `sim replay` command line");
    workspace_root().join(path)
}

/// Two runs that differ but share a (subject, name, seed) each keep their own repro file: the
/// replay command printed for the first still replays the first after the second has run. The
/// same run again reuses its file, under the name the README shows.
#[test]
fn runs_that_share_a_name_and_seed_never_overwrite_each_others_repro() {
    let dir = scratch_dir("collide");
    let repros = dir.join("repros").display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "scenarios/zoo/failed-init.toml",
            "--json",
            "--repro-dir",
            &repros,
        ];
        args.extend_from_slice(extra);
        let ran = sim(&args);
        assert_eq!(ran.code, 1, "{}", ran.stdout);
        ran
    };
    let first = run(&[]);
    let first_repro = repro_of(&first);
    assert_eq!(
        first_repro.file_name().unwrap(),
        "wasi-runtime-failed-init-0000000000000001.toml"
    );
    let other_defect = run(&["--defect", "preopen-handle-leak"]);
    let other_strategy = run(&["--strategy", "pct"]);
    let again = run(&[]);
    let paths = [
        repro_of(&first),
        repro_of(&other_defect),
        repro_of(&other_strategy),
    ];
    assert_eq!(
        paths[1].file_name().unwrap(),
        "wasi-runtime-failed-init-0000000000000001-2.toml"
    );
    assert_eq!(
        paths[2].file_name().unwrap(),
        "wasi-runtime-failed-init-0000000000000001-3.toml"
    );
    assert_eq!(repro_of(&again), paths[0], "the same run, the same file");
    for (path, ran) in paths.iter().zip([&first, &other_defect, &other_strategy]) {
        let replayed = sim(&["replay", &path.display().to_string(), "--json"]);
        assert_eq!(
            (
                replayed.json["trace_hash"].clone(),
                signatures(&replayed.json)
            ),
            (ran.json["trace_hash"].clone(), signatures(&ran.json)),
            "{} replays the run it was printed for",
            path.display()
        );
        assert_eq!(replayed.json["defects"], ran.json["defects"]);
        assert_eq!(replayed.json["replay_problems"], Value::Array(vec![]));
    }
    let text = std::fs::read_to_string(&paths[1]).unwrap();
    assert!(
        text.starts_with(&format!(
            "# Repro written by `sim` for a failing run. Replay: sim replay {}\n",
            paths[1].display()
        )),
        "the file names itself: {text}"
    );

    // A name too long for a file name is cut short in the repro's name.
    let long = dir.join("long.toml");
    let scenario = std::fs::read_to_string(workspace_root().join("scenarios/zoo/failed-init.toml"))
        .unwrap()
        .replacen(
            "name = \"failed-init\"",
            &format!("name = \"{}\"", "n".repeat(300)),
            1,
        );
    std::fs::write(&long, scenario).unwrap();
    let ran = sim(&[
        "run",
        &long.display().to_string(),
        "--json",
        "--repro-dir",
        &repros,
    ]);
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    let path = repro_of(&ran);
    assert!(path.is_file(), "{}", path.display());
    assert!(path.file_name().unwrap().len() < 255, "{}", path.display());
}

/// A crate's own binary built on `cli::main_with` knows subjects that `sim` does not, so the
/// commands it prints name it, not `sim`: here the `sim` binary itself, linked under another
/// name. Where `PATH` finds it, by its name; where it does not (a binary run by `cargo run`),
/// by the path it was started by. Either way the printed replay command runs as printed.
#[test]
fn printed_commands_name_the_binary_that_printed_them() {
    let dir = scratch_dir("own-binary");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let own = bin.join("my-sim");
    // A link, not a copy: a copy's file is open for writing a moment, and a process another
    // test forks just then keeps it open, which makes running it fail ("Text file busy").
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sim"), &own).unwrap();
    let repros = dir.join("repros").display().to_string();
    let with_bin = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let without_bin = std::env::var_os("PATH").unwrap_or_default();
    // (the replay command printed, and what running it printed) with `path` as `PATH`.
    let run_and_replay = |path: &std::ffi::OsStr| {
        let output = Command::new(&own)
            .args([
                "run",
                "scenarios/zoo/instantiate-destroy.toml",
                "--json",
                "--repro-dir",
                &repros,
            ])
            .env("PATH", path)
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        let repro = json["repro"].as_str().unwrap().to_string();
        let replayed = Command::new("sh")
            .args(["-c", &repro])
            .env("PATH", path)
            .current_dir(workspace_root())
            .output()
            .unwrap();
        (
            repro,
            String::from_utf8_lossy(&replayed.stdout).into_owned(),
        )
    };
    let replayed_alike = "replayed: the same findings and the same trace hash as recorded";
    let (repro, stdout) = run_and_replay(&with_bin);
    assert!(repro.starts_with("my-sim replay "), "{repro}");
    assert!(stdout.contains(replayed_alike), "{stdout}");
    let (repro, stdout) = run_and_replay(&without_bin);
    assert!(
        repro.starts_with(&format!("{} replay ", own.display())),
        "{repro}"
    );
    assert!(stdout.contains(replayed_alike), "{stdout}");
}

/// `sim replay --compare-trace RECORDED` after a change: the replay says where its trace parts
/// from the recorded run's, and which op had started (where it is in the scenario), so that the
/// first divergence is found without diffing two traces by hand. The change here is an op's
/// argument, as a changed constant in the subject would be: the worker's `malloc` asks for
/// another size, and the page commit after it differs.
#[test]
fn compare_trace_names_the_first_event_that_differs_and_the_op_before_it() {
    let dir = scratch_dir("compare-trace");
    let repros = dir.join("repros").display().to_string();
    let run = sim(&[
        "run",
        "scenarios/zoo/heap-delete-exit.toml",
        "--json",
        "--repro-dir",
        &repros,
    ]);
    let repro = run.json["repro"].as_str().unwrap()["sim replay ".len()..].to_string();
    let recorded = dir.join("recorded.jsonl").display().to_string();
    let same = sim(&["replay", &repro, "--trace", &recorded]);
    assert_eq!(same.code, 1);

    // The same run: every event agrees, and nothing is a mismatch.
    let again = dir.join("again.jsonl").display().to_string();
    let (code, stdout, _) = run_sim_from_root(&[
        "replay",
        &repro,
        "--compare-trace",
        &recorded,
        "--trace",
        &again,
    ]);
    assert_eq!(code, 1, "the finding, and no mismatch: {stdout}");
    assert!(!stdout.contains("replay mismatch"), "{stdout}");
    let events = std::fs::read_to_string(&recorded).unwrap().lines().count();
    assert!(
        stdout.contains(&format!("trace: the same {events} events as {recorded}\n")),
        "{stdout}"
    );
    // With --trace too, the trace is still written whole.
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&recorded).unwrap()
    );

    let changed = dir.join("changed.toml");
    let text = std::fs::read_to_string(&repro).unwrap();
    assert!(text.contains("bytes = 1024"));
    std::fs::write(&changed, text.replace("bytes = 1024", "bytes = 70000")).unwrap();
    let changed = changed.display().to_string();
    let (code, stdout, _) = run_sim_from_root(&["replay", &changed, "--compare-trace", &recorded]);
    assert_eq!(code, 1);
    let parted = format!("replay mismatch: the trace parts from {recorded} at event \"i\":15\n");
    assert!(stdout.contains(&parted), "{stdout}");
    assert!(
        stdout.contains("  recorded: {\"i\":15,\"ev\":\"pages.commit\","),
        "{stdout}"
    );
    assert!(
        stdout.contains("  replayed: {\"i\":15,\"ev\":\"pages.commit\","),
        "{stdout}"
    );
    let last_op = stdout
        .lines()
        .find_map(|line| line.strip_prefix("  last op started: "))
        .unwrap_or_else(|| panic!("no last op: {stdout}"));
    let last_op: Value = serde_json::from_str(last_op).unwrap();
    assert_eq!(
        fields_of(&last_op, &["op", "list", "index"]),
        json!({"op": "malloc", "list": "thread", "index": 2})
    );

    let (code, stdout, _) =
        run_sim_from_root(&["replay", &changed, "--compare-trace", &recorded, "--json"]);
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let comparison = &json["trace_comparison"];
    assert_eq!(comparison["parted_at"], 15);
    assert_eq!(comparison["file"], recorded.as_str());
    assert!(
        comparison["recorded"]
            .as_str()
            .unwrap()
            .contains("\"b\":65536")
    );
    assert!(
        comparison["replayed"]
            .as_str()
            .unwrap()
            .contains("\"b\":524288")
    );
    assert!(
        comparison["last_op"]
            .as_str()
            .unwrap()
            .contains("\"op\":\"malloc\"")
    );
    let problems = json["replay_problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains("at event \"i\":15"))
    );
}

/// A recorded trace that cannot be read, or that `--trace` would overwrite before it is read,
/// is bad input: exit 2, before anything runs.
#[test]
fn compare_trace_refuses_a_missing_file_and_the_trace_file_itself() {
    let dir = scratch_dir("compare-trace-bad");
    let missing = dir.join("missing.jsonl").display().to_string();
    let (code, _, stderr) =
        run_sim_from_root(&["replay", "gen:counter:1", "--compare-trace", &missing]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{missing}: cannot read the trace")),
        "{stderr}"
    );
    let recorded = dir.join("recorded.jsonl").display().to_string();
    std::fs::write(&recorded, "{\"i\":1}\n").unwrap();
    let (code, _, stderr) = run_sim_from_root(&[
        "replay",
        "gen:counter:1",
        "--compare-trace",
        &recorded,
        "--trace",
        &recorded,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("which the trace would overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&recorded).unwrap(), "{\"i\":1}\n");
}

/// A `--compare-trace` file that is no trace (the repro given instead of its trace, a binary, an
/// empty file, `/dev/zero`) is bad input, said as such at its line and column, exit 2: not a replay that
/// parts from the recorded run at event 1, which reads as if the build had changed behaviour.
/// No report is printed, and none of a binary's bytes reach the terminal.
#[test]
fn compare_trace_refuses_a_file_that_is_no_trace_at_its_line() {
    let dir = scratch_dir("compare-trace-not-a-trace");
    let scenario = "scenarios/zoo/heap-delete-exit.toml";
    let binary = dir.join("sim.bin");
    std::fs::write(
        &binary,
        b"\x7fELF\x02\x01\x01\x00\xff\xfe\x1b[31mred\n\x00\x01",
    )
    .unwrap();
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    let binary = binary.display().to_string();
    let empty = empty.display().to_string();
    let cases = [
        (
            scenario.to_string(),
            format!(
                "{scenario} is not a trace written by --trace: line 1: does not start with `{{`"
            ),
            format!("--> {scenario}:1:1"),
        ),
        (
            binary.clone(),
            format!("{binary} is not a trace written by --trace: line 1: byte 0xff is not UTF-8"),
            format!("--> {binary}:1:9"),
        ),
        (
            empty.clone(),
            format!("{empty} is empty, so it is not a trace written by --trace"),
            "`--compare-trace` takes the JSON-lines file".to_string(),
        ),
        // Read no further than the limit, and said as `--strategy replay:/dev/zero` says it.
        (
            "/dev/zero".to_string(),
            "/dev/zero is not a trace written by --trace: line 1: a line longer than 1048576 bytes, which no trace writes".to_string(),
            "--> /dev/zero:1:1".to_string(),
        ),
    ];
    for (file, said, where_or_what) in cases {
        let (code, stdout, stderr) =
            run_sim_from_root(&["replay", scenario, "--compare-trace", &file]);
        assert_eq!(code, 2, "{file}: {stdout}{stderr}");
        assert!(stderr.contains(&said), "{file}: {stderr}");
        assert!(stderr.contains(&where_or_what), "{file}: {stderr}");
        assert!(!stderr.contains("replay mismatch"), "{stderr}");
        assert!(stdout.is_empty(), "{file}: {stdout}");
        assert!(
            !stderr.contains('\u{1b}') && !stderr.contains("ELF") && !stderr.contains('\u{fffd}'),
            "{file}: the file's bytes reach the terminal: {stderr:?}"
        );
    }
    // A byte that is not UTF-8 is named by its value and column, not shown.
    let bytes = dir.join("bytes.jsonl");
    std::fs::write(&bytes, b"{\"i\":1,\"ev\":\"\xff\x1b[2J\"}\n").unwrap();
    let bytes = bytes.display().to_string();
    let (code, _, stderr) = run_sim_from_root(&["replay", scenario, "--compare-trace", &bytes]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("line 1: byte 0xff is not UTF-8 text"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("--> {bytes}:1:14")), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// The thread chosen at each scheduling decision of the run that wrote the trace at `path`.
fn schedule_in_trace(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["ev"] == "schedule")
        .map(|event| event["a"].as_u64().unwrap())
        .collect()
}

/// `sim run --strategy replay:TRACE` replays the schedule of a run's `--trace` file, and
/// `replay:0,1,1,0` a list of thread ids, as a file's `schedule = { strategy = "replay", … }`
/// does: the replayed run makes the same decisions and shows the same findings. Every spelling
/// `--strategy` takes is in its error, and `replay` alone says how to give the schedule.
#[test]
fn sim_run_replays_a_schedule_from_a_trace_or_a_list() {
    let dir = scratch_dir("strategy-replay");
    let scenario = "scenarios/zoo/cross-thread-free-exit.toml";
    let repros = dir.join("repros").display().to_string();
    let recorded = dir.join("recorded.jsonl").display().to_string();
    let first = sim(&[
        "run",
        scenario,
        "--trace",
        &recorded,
        "--json",
        "--repro-dir",
        &repros,
    ]);
    let schedule = schedule_in_trace(&recorded);
    assert!(schedule.len() > 1, "the run has threads to schedule");
    let list = schedule
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // Under another seed, the random strategy takes another schedule: only a replay gives the
    // recorded one back.
    let other_seed = "7";
    let other_trace = dir.join("other-seed.jsonl").display().to_string();
    sim(&[
        "run",
        scenario,
        "--seed",
        other_seed,
        "--trace",
        &other_trace,
        "--repro-dir",
        &repros,
    ]);
    assert_ne!(schedule_in_trace(&other_trace), schedule);
    for strategy in [format!("replay:{recorded}"), format!("replay:{list}")] {
        let replayed_trace = dir.join("replayed.jsonl").display().to_string();
        let replayed = sim(&[
            "run",
            scenario,
            "--seed",
            other_seed,
            "--strategy",
            &strategy,
            "--trace",
            &replayed_trace,
            "--json",
            "--repro-dir",
            &repros,
        ]);
        assert_eq!(replayed.code, first.code, "{strategy}: {}", replayed.json);
        assert_eq!(
            replayed.json["strategy"],
            format!("replay({} decisions)", schedule.len()),
            "{strategy}"
        );
        assert_eq!(
            signatures(&replayed.json),
            signatures(&first.json),
            "{strategy}"
        );
        assert_eq!(schedule_in_trace(&replayed_trace), schedule, "{strategy}");
    }

    let not_a_trace = workspace_root().join(scenario).display().to_string();
    for (strategy, says) in [
        (
            "bogus",
            "expected `random`, `pct`, `pct:DEPTH`, `replay:0,1,1,0`",
        ),
        (
            "replay",
            "`replay` needs the schedule to replay: `replay:0,1,1,0`",
        ),
        ("replay:", "`replay` needs the schedule to replay"),
        (
            "replay:0,x",
            "0,x: cannot read the trace: No such file or directory (os error 2); `replay:` takes a file that `--trace` wrote, or thread ids such as `replay:0,1,1,0`",
        ),
        ("replay:0,,1", "`` is not a thread id"),
        (
            &format!("replay:{not_a_trace}"),
            &format!(
                "{not_a_trace} is not a trace written by --trace: line 1: does not start with `{{`"
            ),
        ),
        (
            "replay:/dev/zero",
            "/dev/zero is not a trace written by --trace: line 1: a line longer than 1048576 bytes",
        ),
    ] {
        let (code, stdout, stderr) = run_sim_from_root(&["run", scenario, "--strategy", strategy]);
        assert_eq!(code, 2, "{strategy}: {stderr}");
        assert!(stdout.is_empty(), "{strategy}: {stdout}");
        assert!(stderr.contains(says), "{strategy}: {stderr}");
    }
}

/// A recorded schedule that does not fit the run is a `determinism` finding stamped at the
/// decision where it stopped fitting (its lifecycle and repetition, and the last op started),
/// and the run stops there: nothing after it is the recorded run. Here decision 0, in
/// repetition 1 of 20, wants a thread that does not exist; and a schedule of 4 decisions runs
/// out at the fifth, still in repetition 1. Neither goes on through the 342 ops of the file.
#[test]
fn a_replayed_schedule_that_does_not_fit_stops_the_run_where_it_stopped_fitting() {
    let dir = scratch_dir("replay-schedule-diverges");
    let source =
        std::fs::read_to_string(workspace_root().join("scenarios/allocator-basic.toml")).unwrap();
    for (schedule, headline) in [
        (
            "[7, 7, 7, 7]",
            "decision 0 wants thread 7, runnable are [0, 1]",
        ),
        (
            "[1, 1, 1, 1]",
            "the recorded schedule ends after 4 decisions",
        ),
    ] {
        let file = dir.join("diverges.toml");
        let line =
            format!("seed = 1\nschedule = {{ strategy = \"replay\", schedule = {schedule} }}\n");
        std::fs::write(&file, source.replacen("seed = 1\n", &line, 1)).unwrap();
        let file = file.display().to_string();
        let (code, stdout, stderr) = run_sim_from_root(&["run", &file]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "error[determinism]: the replayed schedule no longer fits the run: {headline} (in lifecycle `churn`, repetition 1 of 20)"
            )),
            "{stdout}"
        );
        assert!(stdout.contains("  last op started: op #"), "{stdout}");
        assert!(stdout.contains(&format!("    --> {file}:")), "{stdout}");
        let json = sim(&["run", &file, "--json"]).json;
        let findings = json["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{json}");
        assert_eq!(findings[0]["repetition"], 0, "{json}");
        let ops = json["ops"].as_u64().unwrap();
        assert!(ops < 10, "the run went on after the divergence: {ops} ops");
    }
}

/// The op `--compare-trace` names as the last started before the traces part is pointed at in
/// the replayed file, as a finding's op is (`-->` in text, `last_op_at` in JSON): here the first
/// `malloc` of `ops`, whose size was changed, on line 12.
#[test]
fn compare_trace_points_at_the_last_op_in_the_replayed_file() {
    let dir = scratch_dir("compare-trace-located");
    let recorded = dir.join("recorded.jsonl").display().to_string();
    let (code, _, stderr) = run_sim_from_root(&[
        "run",
        "scenarios/allocator-basic.toml",
        "--trace",
        &recorded,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let text =
        std::fs::read_to_string(workspace_root().join("scenarios/allocator-basic.toml")).unwrap();
    let first_malloc = "{ op = \"malloc\", slot = 0, bytes = 64 }";
    assert_eq!(
        text.lines().nth(11).map(str::trim_end),
        Some(format!("  {first_malloc},").as_str())
    );
    let changed = write_file(
        &dir,
        "changed.toml",
        text.replacen(
            first_malloc,
            "{ op = \"malloc\", slot = 0, bytes = 300000 }",
            1,
        ),
    );
    let changed = changed.display().to_string();
    let (code, stdout, _) = run_sim_from_root(&["replay", &changed, "--compare-trace", &recorded]);
    assert_eq!(code, 1, "a mismatch: {stdout}");
    let last_op = last_op_started_lines(&stdout);
    assert!(last_op[0].contains("\"op\":\"malloc\""), "{stdout}");
    assert_eq!(
        last_op.get(1),
        Some(&format!("    --> {changed}:12:3 (ops)").as_str()),
        "{stdout}"
    );

    let (_, stdout, _) =
        run_sim_from_root(&["replay", &changed, "--compare-trace", &recorded, "--json"]);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let at = &json["trace_comparison"]["last_op_at"];
    assert_eq!(
        fields_of(at, &["name", "list", "file", "line", "column"]),
        json!({"name": "malloc", "list": "ops", "file": changed, "line": 12, "column": 3}),
        "{json}"
    );
}

/// Where the traces part after an op of a spawned thread, `--compare-trace` points at that op in
/// its declared thread's list (the trace names the thread only by its id; the spawn that started
/// it names the declared thread): here the second `bump` of thread `a` of the second lifecycle,
/// in its third repetition (tid 7), whose name the first lifecycle also declares and whose
/// repetition also spawns `b` first. The recorded trace is changed right after that op.
#[test]
fn compare_trace_points_at_an_op_of_a_spawned_thread_in_its_declared_list() {
    const THREADS: &str = r#"name = "threads"
subject = "counter"
seed = 1

[[lifecycle]]
name = "first"
ops = [{ op = "spawn", thread = "a" }, { op = "join", thread = "a" }]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "bump" }, { op = "bump" }]

[[lifecycle]]
name = "second"
repeat = 3
ops = [
  { op = "spawn", thread = "b" },
  { op = "spawn", thread = "a" },
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "bump" }, { op = "bump" }]

[[lifecycle.thread]]
name = "a"
ops = [
  { op = "bump" },
  { op = "bump" },
]
"#;
    let dir = scratch_dir("compare-trace-thread");
    let scenario = write_file(&dir, "threads.toml", THREADS);
    let scenario = scenario.display().to_string();
    let recorded = dir.join("recorded.jsonl").display().to_string();
    let (code, _, stderr) = run_sim_from_root(&["run", &scenario, "--trace", &recorded]);
    assert_eq!(code, 0, "{stderr}");
    // The recorded run's event after that op, changed.
    let trace = std::fs::read_to_string(&recorded).unwrap();
    let mut lines: Vec<String> = trace.lines().map(String::from).collect();
    let the_op = lines
        .iter()
        .position(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            let keys = ["ev", "a", "lifecycle_index", "repetition", "list", "index"];
            fields_of(&event, &keys)
                == json!({
                    "ev": "op",
                    "a": 7,
                    "lifecycle_index": 1,
                    "repetition": 2,
                    "list": "thread",
                    "index": 2,
                })
        })
        .unwrap_or_else(|| panic!("no second op of tid 7 in repetition 2: {trace}"));
    let changed_event = the_op + 2;
    lines[the_op + 1] = format!("{{\"i\":{changed_event},\"ev\":\"changed\",\"a\":0,\"b\":0}}");
    std::fs::write(&recorded, lines.join("\n") + "\n").unwrap();

    let (code, stdout, _) = run_sim_from_root(&["replay", &scenario, "--compare-trace", &recorded]);
    assert_eq!(code, 1, "a mismatch: {stdout}");
    assert!(
        stdout.contains(&format!("at event \"i\":{changed_event}\n")),
        "{stdout}"
    );
    let last_op = last_op_started_lines(&stdout);
    assert!(last_op[0].contains("\"a\":7,"), "{stdout}");
    assert_eq!(
        last_op.get(1),
        Some(&format!("    --> {scenario}:31:3 (thread `a`)").as_str()),
        "{stdout}"
    );
    assert_eq!(
        THREADS.lines().nth(30).map(|line| &line[2..]),
        Some("{ op = \"bump\" },")
    );

    let (_, stdout, _) =
        run_sim_from_root(&["replay", &scenario, "--compare-trace", &recorded, "--json"]);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let at = &json["trace_comparison"]["last_op_at"];
    assert_eq!(
        fields_of(
            at,
            &[
                "name",
                "list",
                "thread",
                "thread_name",
                "lifecycle_index",
                "repetition",
                "index",
                "file",
                "line",
                "column",
            ]
        ),
        json!({
            "name": "bump",
            "list": "thread",
            "thread": 7,
            "thread_name": "a",
            "lifecycle_index": 1,
            "repetition": 2,
            "index": 2,
            "file": scenario,
            "line": 31,
            "column": 3,
        }),
        "{json}"
    );
}

/// A directory given to a command that takes one file is named as such, with the command that
/// takes a directory, not only the OS's "Is a directory".
#[test]
fn replay_and_shrink_of_a_directory_say_to_name_a_file() {
    for command in ["replay", "shrink"] {
        let (code, _, stderr) = run_sim_from_root(&[command, "scenarios/zoo"]);
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains(
                "scenarios/zoo: is a directory; this command takes one scenario or repro file (`sim run scenarios/zoo` runs every .toml file under it)"
            ),
            "{command}: {stderr}"
        );
    }
}

/// A declared thread that no op spawns never runs, and the scenario passes without a word of it:
/// `sim run` and `sim replay` warn, pointing at where the thread is declared, and run it all the same. A
/// thread that is spawned gets no warning.
#[test]
fn a_declared_thread_never_spawned_is_warned_of_and_the_run_goes_ahead() {
    let dir = scratch_dir("unspawned-thread");
    let file = dir.join("unspawned.toml");
    let text = |spawn: &str| {
        format!(
            "name = \"x\"\nsubject = \"allocator\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
             ops = [{{ op = \"malloc\", bytes = 8, slot = 0 }}{spawn}]\n\
             [[lifecycle.thread]]\nname = \"t\"\nops = [{{ op = \"free\", slot = 0 }}]\n"
        )
    };
    std::fs::write(&file, text("")).unwrap();
    let file = file.display().to_string();
    let repros = dir.join("repros").display().to_string();
    let expected = format!(
        "warning: thread `t` of lifecycle `l` is declared but never spawned: its ops never run (start it with {{ op = \"spawn\", thread = \"t\" }})\n  --> {file}:8:8\n"
    );
    assert_run_and_replay_pass_saying(&file, &repros, &expected);
    std::fs::write(
        &file,
        text(", { op = \"spawn\", thread = \"t\" }, { op = \"join\", thread = \"t\" }"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_sim_from_root(&["run", &file, "--repro-dir", &repros]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
}

/// `exit` is process exit, but the runner runs the ops after it all the same, where a real process
/// runs nothing: `sim run` and `sim replay` warn of the first op after each `exit`, pointing at
/// that op and naming the exit's line, and run the scenario all the same. The op after it in its
/// list, in the next repetition of a repeated `ops`, and after a thread's `exit` the main op
/// after its join; an `exit` at the end of the last list has nothing after it, and no warning.
#[test]
fn an_op_after_a_process_exit_is_warned_of_and_the_run_goes_ahead() {
    let dir = scratch_dir("op-after-exit");
    let file = write_file(
        &dir,
        "after-exit.toml",
        r#"name = "x"
subject = "allocator"
seed = 1
[[lifecycle]]
name = "a"
ops = [{ op = "malloc", slot = 0, bytes = 8 }, { op = "exit" }, { op = "free", slot = 0 }]
[[lifecycle]]
name = "b"
repeat = 2
ops = [{ op = "malloc", slot = 1, bytes = 8 }, { op = "free", slot = 1 }, { op = "exit" }]
[[lifecycle]]
name = "c"
ops = [{ op = "spawn", thread = "t" }, { op = "join", thread = "t" }, { op = "sleep", ticks = 1 }]
teardown = [{ op = "exit" }]
[[lifecycle.thread]]
name = "t"
ops = [{ op = "exit" }]
"#,
    );
    let file = file.display().to_string();
    let repros = dir.join("repros").display().to_string();
    let tail = "ends the process, and a real one runs nothing after it; the simulation runs the op all the same, in the same process (end the scenario with the `exit`)";
    let expected = format!(
        "warning: op `free` (op #3 of `ops` in lifecycle `a`) runs after the process exited: the `exit` at line 6 (op #2 of `ops` in lifecycle `a`) {tail}\n  --> {file}:6:65\n\
         warning: op `malloc` (op #1 of `ops` in lifecycle `b`) runs after the process exited, in the next repetition: the `exit` at line 10 (op #3 of `ops` in lifecycle `b`) {tail}\n  --> {file}:10:8\n\
         warning: op `sleep` (op #3 of `ops` in lifecycle `c`) runs after the process exited: the `exit` at line 17 (op #1 of thread `t` in lifecycle `c`) {tail}\n  --> {file}:13:71\n"
    );
    assert_run_and_replay_pass_saying(&file, &repros, &expected);
}

/// `sim run FILE` (its repros into `repros`) and `sim replay FILE` each pass, from the
/// repository's root, and say exactly `expected_stderr` on stderr.
fn assert_run_and_replay_pass_saying(file: &str, repros: &str, expected_stderr: &str) {
    for args in [
        vec!["run", file, "--repro-dir", repros],
        vec!["replay", file],
    ] {
        let command = args[0];
        let (code, stdout, stderr) = run_sim_from_root(&args);
        assert_eq!(code, 0, "{command}: {stdout}\n{stderr}");
        assert!(stdout.contains("pass: 0 finding(s)"), "{command}: {stdout}");
        assert_eq!(stderr, expected_stderr, "{command}");
    }
}

/// No bundled scenario, regression or test scenario warns (`DynScenario::warnings`): a warning
/// there would be printed by every `make run`, and each says the file is likely not what its
/// writer meant. The malformed ones are read too, and none may parse; what each says is
/// `malformed.rs`'s to check.
#[test]
fn no_bundled_or_test_scenario_warns() {
    let registry = Registry::builtin();
    let mut warned = Vec::new();
    let mut parsed = 0;
    let dirs = [
        "scenarios",
        "corpus/regressions",
        "sim/tests/ui",
        "sim/tests/data",
        "sim/tests/malformed",
    ];
    let mut pending: Vec<PathBuf> = dirs.iter().map(|d| workspace_root().join(d)).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let parse = registry.parse_bytes(&path.display().to_string(), &bytes);
            let malformed = path.parent().is_some_and(|dir| dir.ends_with("malformed"));
            assert_eq!(parse.is_err(), malformed, "{}", path.display());
            let Ok(scenario) = parse else {
                continue;
            };
            parsed += 1;
            for (warning, _) in scenario.warnings() {
                warned.push(format!("{}: {warning}", path.display()));
            }
        }
    }
    assert!(parsed >= 30, "only {parsed} files parsed");
    assert!(warned.is_empty(), "{}", warned.join("\n"));
}

/// A spawn that no join reaches leaves its thread's record (a join waits for the thread's latest
/// spawn, so a thread spawned again before a join is never joined). In a setup with no teardown
/// after it, the check at the end of the lifecycle reports it as a leak of the setup's `spawn`,
/// pointing at it, as a teardown's check does; no warning comes before the run (one did when
/// nothing checked such a setup). Spawned, joined, spawned and joined again leaves nothing.
#[test]
fn a_spawn_no_join_reaches_in_a_setup_without_teardown_is_a_leak_of_its_thread() {
    let dir = scratch_dir("unjoined-spawn");
    let file = dir.join("unjoined.toml");
    let text = |setup: &str| {
        format!(
            "name = \"x\"\nsubject = \"allocator\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
             setup = [{setup}]\nops = [{{ op = \"sleep\", ticks = 1 }}]\n\
             [[lifecycle.thread]]\nname = \"t\"\nops = [{{ op = \"sleep\", ticks = 1 }}]\n"
        )
    };
    let spawn = "{ op = \"spawn\", thread = \"t\" }";
    let join = "{ op = \"join\", thread = \"t\" }";
    let file_name = file.display().to_string();
    let repros = dir.join("repros").display().to_string();
    for setup in [format!("{spawn}, {spawn}, {join}"), spawn.to_string()] {
        std::fs::write(&file, text(&setup)).unwrap();
        let (code, stdout, stderr) =
            run_sim_from_root(&["run", &file_name, "--repro-dir", &repros]);
        assert_eq!((code, stderr.as_str()), (1, ""), "{setup}: {stdout}");
        let expected = format!(
            "error[leak]: 1 thread (0 B) acquired by `setup` not released after lifecycle `l` \
             (checked at its end)\n\
             \x20 acquired: op #1 `spawn` → spawn (lifecycle 1, setup, thread 0)\n\
             \x20   --> {file_name}:6:10 (setup)\n"
        );
        assert!(stdout.contains(&expected), "{setup}: {stdout}");
        assert!(
            stdout.contains("note: signature `leak:thread:spawn`"),
            "{stdout}"
        );
    }
    std::fs::write(&file, text(&format!("{spawn}, {join}, {spawn}, {join}"))).unwrap();
    let (code, stdout, stderr) = run_sim_from_root(&["run", &file_name, "--repro-dir", &repros]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
}

/// The replay command a run prints, and the `# Replay:` line `shrink --out` writes, paste into a
/// shell and replay the repro, whatever its path: one that starts with `-` (which `sim replay`
/// would take for a flag) is given as `./-…`, and one that is no UTF-8 has its bytes escaped,
/// where it was printed with a stand-in character. `sim replay` takes such a path, as `run` does.
#[test]
fn a_printed_replay_command_names_a_path_with_a_leading_dash_or_no_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch_dir("odd-repro-paths");
    let scenario = workspace_root().join("scenarios/zoo/instantiate-destroy.toml");
    let scenario = scenario.display().to_string();
    let no_utf8 = std::ffi::OsStr::from_bytes(b"repros-\xff");
    for repro_dir in [std::ffi::OsStr::new("-x"), no_utf8] {
        let command = printed_replay_command(
            Command::new(support::SIM)
                .arg("run")
                .arg(&scenario)
                .arg({
                    let mut flag = std::ffi::OsString::from("--repro-dir=");
                    flag.push(repro_dir);
                    flag
                })
                .current_dir(&dir),
        );
        paste_into_bash_and_replay(&dir, &command);
    }
    let (code, _, stderr) = support::run_sim_in(&dir, &["shrink", &scenario, "--out=-out.toml"]);
    assert_eq!(code, 1, "{stderr}");
    let shrunk = std::fs::read_to_string(dir.join("-out.toml")).unwrap();
    let command = shrunk
        .lines()
        .find_map(|line| line.strip_prefix("# Replay: "))
        .unwrap_or_else(|| panic!("no replay line in {shrunk}"));
    assert_eq!(command, "sim replay ./-out.toml");
    let (code, replayed, stderr) = paste_into_shell(&dir, command);
    assert_eq!(code, 1, "{command}: {stderr}");
    assert!(
        replayed.contains("leak:rwlock:fd_prestats_init"),
        "{replayed}"
    );
}

/// The `sim replay …` that `command` (a run that finds something, exit 1) prints in its note.
fn printed_replay_command(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("note: replay with `"))
        .and_then(|line| line.strip_suffix('`'))
        .unwrap_or_else(|| panic!("no replay command in {stdout}"))
        .to_string()
}

/// `command`, a printed `sim replay …`, pasted into bash in `dir`: it replays the recorded run.
fn paste_into_bash_and_replay(dir: &Path, command: &str) {
    // In bash: `$'…'` quoting is not POSIX before 2024, and `sh` may be dash.
    let pasted = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec \"$SIM\" {}",
            command.strip_prefix("sim ").unwrap()
        ))
        .env("SIM", support::SIM)
        .current_dir(dir)
        .output()
        .unwrap();
    let replayed = String::from_utf8_lossy(&pasted.stdout);
    let stderr = String::from_utf8_lossy(&pasted.stderr);
    assert_eq!(pasted.status.code(), Some(1), "{command}: {stderr}");
    assert!(
        replayed.contains("replayed: the same findings and the same trace hash as recorded"),
        "{command}: {replayed}"
    );
}

/// The replay command `sim replay` prints for a repro whose path is no UTF-8 names that file,
/// its bytes escaped, where it was made from the path as printed, with a stand-in character.
#[test]
fn a_replay_of_a_repro_whose_path_is_no_utf8_prints_a_replay_command_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch_dir("replay-no-utf8-path");
    let scenario = workspace_root().join("scenarios/zoo/instantiate-destroy.toml");
    let (code, _, stderr) = support::run_sim_in(
        &dir,
        &["run", &scenario.display().to_string(), "--repro-dir=repros"],
    );
    assert_eq!(code, 1, "{stderr}");
    let repro = std::ffi::OsStr::from_bytes(b"repro-\xff.toml");
    std::fs::copy(
        dir.join("repros/wasi-runtime-instantiate-destroy-0000000000000001.toml"),
        dir.join(repro),
    )
    .unwrap();
    let command = printed_replay_command(
        Command::new(support::SIM)
            .arg("replay")
            .arg(repro)
            .current_dir(&dir),
    );
    assert_eq!(command, "sim replay $'repro-\\xff.toml'");
    paste_into_bash_and_replay(&dir, &command);
}

/// A repro edited to pin nothing (`signatures = []`, no trace hash) is not said to replay "the
/// same findings as recorded": nothing was compared, and the closing line says so with what the
/// run found, as `--json`'s `replay_unchecked` does.
#[test]
fn a_repro_that_pins_nothing_is_not_said_to_match() {
    let dir = scratch_dir("pins-nothing");
    let edited = repro_edited_to_pin_nothing(&dir);
    let (code, stdout, stderr) = run_sim_from_root(&["replay", &edited]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stdout.contains("the same findings"), "{stdout}");
    assert!(
        stdout.ends_with("replayed: the repro pins no findings and no trace hash, so nothing was compared with a recorded run; this run found `leak:rwlock:fd_prestats_init`\n"),
        "{stdout}"
    );
    let (_, json, _) = run_sim_from_root(&["replay", &edited, "--json"]);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert!(
        json["replay_unchecked"]
            .as_str()
            .is_some_and(|note| note.contains("pins no findings")),
        "{json}"
    );
}

/// With `--compare-trace`, a repro that pins nothing still has its run compared with the
/// recorded trace: the closing line says so, where it said that nothing was compared just after
/// the line that gave the comparison, and `--json`'s `replay_unchecked` says the same.
#[test]
fn a_repro_that_pins_nothing_replayed_with_compare_trace_is_said_to_be_compared() {
    let dir = scratch_dir("pins-nothing-compared");
    let edited = repro_edited_to_pin_nothing(&dir);
    let recorded = dir.join("rec.jsonl").display().to_string();
    let (code, _, stderr) = run_sim_from_root(&["replay", &edited, "--trace", &recorded]);
    assert_eq!(code, 1, "{stderr}");
    let (code, stdout, stderr) =
        run_sim_from_root(&["replay", &edited, "--compare-trace", &recorded]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains(&format!("as {recorded}")), "{stdout}");
    assert!(!stdout.contains("nothing was compared"), "{stdout}");
    let note = format!(
        "the repro pins no findings and no trace hash, but the trace was compared with {recorded}; this run found `leak:rwlock:fd_prestats_init`"
    );
    assert!(stdout.ends_with(&format!("replayed: {note}\n")), "{stdout}");
    let (_, json, _) =
        run_sim_from_root(&["replay", &edited, "--compare-trace", &recorded, "--json"]);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["replay_unchecked"].as_str(),
        Some(note.as_str()),
        "{json}"
    );
}

/// A repro of `instantiate-destroy` run in `dir`, edited to pin nothing (`signatures = []`, its
/// trace hash cut): its path.
fn repro_edited_to_pin_nothing(dir: &Path) -> String {
    let scenario = workspace_root().join("scenarios/zoo/instantiate-destroy.toml");
    let repros = dir.join("repros").display().to_string();
    let (code, _, stderr) = run_sim_from_root(&[
        "run",
        &scenario.display().to_string(),
        "--repro-dir",
        &repros,
    ]);
    assert_eq!(code, 1, "{stderr}");
    let repro = std::fs::read_to_string(
        dir.join("repros/wasi-runtime-instantiate-destroy-0000000000000001.toml"),
    )
    .unwrap();
    let edited: String = repro
        .lines()
        .filter(|line| !line.starts_with("trace_hash = "))
        .map(|line| match line.starts_with("signatures = ") {
            true => "signatures = []\n".to_string(),
            false => format!("{line}\n"),
        })
        .collect();
    assert!(edited.contains("[expect]\nsignatures = []\n"), "{edited}");
    write_file(dir, "edited.toml", edited).display().to_string()
}
