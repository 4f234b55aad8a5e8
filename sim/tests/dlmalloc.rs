//! The real `dlmalloc` crate on simulated pages: exact accounting, crash isolation that turns a
//! use-after-release by real code into a `fault` finding, generated programs, determinism.

mod support;

use sim::findings::{Finding, FindingKind};
use sim::os::Os;
use sim::registry::Registry;
use sim::runner::RunOptions;
use sim::scenario::generate::GenerateOptions;
use sim::subject::{Config, Subject};
use sim::subjects::dlmalloc::{DlmallocOp, DlmallocSubject};
use sim::trace::MemorySink;
use support::{
    HUGE_ARENA_SCENARIO, for_each_passing_generated_scenario, fresh_path, parse_scenario,
    print_and_parse_back, run_sim, run_sim_under_memory_limit, scratch_dir, workspace_path,
    write_file,
};

const BASIC: &str = include_str!("../../scenarios/dlmalloc-basic.toml");
const RELEASE_BEHIND_BACK: &str = include_str!("data/dlmalloc-release-behind-back.toml");

fn detail<'f>(finding: &'f Finding, label: &str) -> &'f str {
    finding
        .detail_text(label)
        .unwrap_or_else(|| panic!("no `{label}` detail in {finding:?}"))
}

#[test]
fn the_basic_scenario_passes_with_exact_accounting_over_its_repetitions() {
    let outcome = parse_scenario(BASIC).run(RunOptions::default());
    assert!(outcome.passed(), "{:#?}", outcome.findings);
    assert_eq!(outcome.lifecycle_repeats, vec![50, 20, 20]);
    assert_eq!(outcome.ops, 50 * 21 + 20 * 19 + 20 * 6 + 1, "every op ran");
}

#[test]
fn destroy_returns_every_segment_and_the_os_is_back_at_zero() {
    let mut os = Os::for_tests(1);
    let mut subject = DlmallocSubject::new(&mut os, &Config::default());
    let live_before = os.resources().live_records();
    let ops = [
        DlmallocOp::Create,
        DlmallocOp::Malloc {
            slot: 0,
            size: 100,
            align: 16,
        },
        DlmallocOp::Malloc {
            slot: 1,
            size: 3 << 20,
            align: 16,
        },
        DlmallocOp::Malloc {
            slot: 2,
            size: 70_000,
            align: 4096,
        },
        DlmallocOp::Write { slot: 1 },
        DlmallocOp::Free { slot: 0 },
        DlmallocOp::Realloc {
            slot: 2,
            size: 400_000,
        },
    ];
    for op in &ops {
        subject.apply(&mut os, sim::os::Tid(0), op);
    }
    assert!(
        os.reserved_bytes() >= (3 << 20) + 400_000,
        "the heap took memory from the OS"
    );
    assert!(os.committed_pages() > 0);
    assert!(subject.check_invariants(&os).is_empty());
    subject.apply(&mut os, sim::os::Tid(0), &DlmallocOp::Destroy);
    assert_eq!(os.reserved_bytes(), 0, "destroy released every reservation");
    assert_eq!(os.committed_pages(), 0);
    assert_eq!(os.resources().live_records(), live_before);
    assert!(os.findings().is_empty(), "{:?}", os.findings());
}

/// A heap kept across repetitions keeps its top segment, which the subject declares as a bounded
/// cache: allowed across repetitions, and a leak at teardown if `destroy` is missing.
const LONG_LIVED_HEAP: &str = r#"
name = "long-lived-heap"
subject = "dlmalloc"
seed = 5

[[lifecycle]]
name = "heap-outlives-repetitions"
repeat = 40
setup = [{ op = "create" }]
ops = [
  { op = "malloc", slot = 0, size = 1000 },
  { op = "write", slot = 0 },
  { op = "free", slot = 0 },
]
teardown = [{ op = "destroy" }]
"#;

#[test]
fn a_heap_kept_across_repetitions_may_keep_its_declared_segment_until_teardown() {
    let outcome = parse_scenario(LONG_LIVED_HEAP).run(RunOptions::default());
    assert!(
        outcome.passed(),
        "one 64 KiB top segment is the declared cache: {:#?}",
        outcome.findings
    );
    // Without `destroy` the teardown check, which allows no cache, sees the segment.
    let undestroyed = LONG_LIVED_HEAP.replace(
        r#"teardown = [{ op = "destroy" }]"#,
        r#"teardown = [{ op = "trim" }]"#,
    );
    let outcome = parse_scenario(&undestroyed).run(RunOptions::default());
    assert!(
        outcome
            .signatures()
            .contains(&"leak:reservation:dlmalloc_sys_alloc".to_string()),
        "{:#?}",
        outcome.signatures()
    );
}

#[test]
fn real_code_touching_a_region_released_behind_its_back_is_a_fault_naming_the_release() {
    let outcome = parse_scenario(RELEASE_BEHIND_BACK).run(RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        vec!["fault:released page:dlmalloc_malloc"]
    );
    let fault = &outcome.findings[0];
    assert_eq!(fault.kind, FindingKind::Fault);
    assert!(
        fault.headline.starts_with("write by real code at 0x2000")
            && fault.headline.ends_with("touches a released page"),
        "{}",
        fault.headline
    );
    assert!(detail(fault, "page").ends_with("(released)"));
    assert!(
        detail(fault, "released")
            .contains("op #4 `release-behind-back` → dlmalloc_release_behind_back")
    );
    assert!(detail(fault, "acquired").contains("dlmalloc_sys_alloc"));
    assert!(detail(fault, "touched").contains("op #5 `malloc` → dlmalloc_malloc"));
    assert_eq!(outcome.ops, 5, "the run ended at the crash");

    let again = parse_scenario(RELEASE_BEHIND_BACK).run(RunOptions::default());
    assert_eq!(
        again.trace_hash, outcome.trace_hash,
        "a crash is as deterministic as a pass"
    );
    assert_eq!(again.findings, outcome.findings);
}

#[test]
fn a_free_into_a_released_region_is_a_read_fault_in_dlmalloc_free() {
    let text = RELEASE_BEHIND_BACK.replace(
        r#"{ op = "malloc", slot = 1, size = 64 },"#,
        r#"{ op = "free", slot = 0 },"#,
    );
    let outcome = parse_scenario(&text).run(RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        vec!["fault:released page:dlmalloc_free"],
        "{:#?}",
        outcome.findings
    );
    assert!(
        outcome.findings[0]
            .headline
            .starts_with("read by real code"),
        "{}",
        outcome.findings[0].headline
    );
}

#[test]
fn the_programs_own_access_to_a_released_block_is_caught_by_the_checked_path() {
    let text = RELEASE_BEHIND_BACK.replace(
        r#"{ op = "malloc", slot = 1, size = 64 },"#,
        r#"{ op = "read", slot = 0 },"#,
    );
    let outcome = parse_scenario(&text).run(RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        vec!["fault:released page:program_read"]
    );
    assert!(
        outcome.findings[0]
            .headline
            .starts_with("read of 64 B at 0x2000"),
        "{}",
        outcome.findings[0].headline
    );
}

#[test]
fn the_trace_of_an_isolated_run_reaches_the_callers_sink_up_to_the_crash() {
    let sink = MemorySink::default();
    let outcome = parse_scenario(RELEASE_BEHIND_BACK).run(RunOptions {
        trace_sink: Some(Box::new(sink.clone())),
        ..RunOptions::default()
    });
    let text = sink.take_text();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events.len() as u64,
        outcome.trace_events,
        "every event, once"
    );
    assert!(
        events.iter().any(|e| e["ev"] == "pages.release"),
        "the release behind dlmalloc's back"
    );
    assert_eq!(
        events.last().unwrap()["text"],
        "fault:released page:dlmalloc_malloc"
    );
}

/// What explains a determinism finding works for isolated runs too: two runs of real code,
/// each in its own child, are compared event by event through the traces they send back.
#[test]
fn two_isolated_runs_compare_event_by_event() {
    let basic = parse_scenario(BASIC);
    let mut events = Vec::new();
    let comparison = sim::runner::compare_traces(|sink| {
        let outcome = basic.run(RunOptions {
            trace_sink: Some(sink),
            ..RunOptions::default()
        });
        events.push(outcome.trace_events);
        outcome
    });
    assert_eq!(events.len(), 2);
    assert!(events[0] > 1000, "{events:?}");
    assert_eq!(
        comparison,
        sim::trace::TraceComparison::Agreed { events: events[0] }
    );
}

#[test]
fn injected_reserve_and_commit_failures_are_handled_by_the_real_code() {
    let text = BASIC.replace(
        "seed = 1",
        "seed = 1\n\n[faults]\nreserve = 0.3\ncommit = 0.3",
    );
    for seed in 1..6 {
        let outcome = parse_scenario(&text).run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        assert!(outcome.passed(), "seed {seed}: {:#?}", outcome.findings);
    }
}

#[test]
fn generated_programs_find_nothing_and_replay_to_the_same_trace() {
    let registry = Registry::builtin();
    assert!(registry.get("dlmalloc").unwrap().info().host_backed);
    let mut ops = 0;
    let options = GenerateOptions::default();
    for_each_passing_generated_scenario(
        "dlmalloc",
        0..2000,
        &options,
        |seed, generated, outcome| {
            assert!(
                !generated.to_toml().unwrap().contains("release-behind-back"),
                "fault injection is never generated"
            );
            ops += outcome.ops;
            if seed % 20 == 0 {
                let parsed = print_and_parse_back(&registry, generated, &format!("seed {seed}"));
                assert_eq!(
                    parsed.run(RunOptions::default()).trace_hash,
                    outcome.trace_hash,
                    "seed {seed}"
                );
            }
        },
    );
    assert!(ops > 2000, "generated programs do real work ({ops} ops)");
}

#[test]
fn the_same_scenario_twice_gives_the_same_trace_hash() {
    let basic = parse_scenario(BASIC);
    let first = basic.run(RunOptions::default());
    let second = basic.run(RunOptions::default());
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_ne!(first.trace_hash, 0);
    let generated = Registry::builtin()
        .get("dlmalloc")
        .unwrap()
        .generate(7, &GenerateOptions::default());
    assert_eq!(
        generated.run(RunOptions::default()).trace_hash,
        generated.run(RunOptions::default()).trace_hash
    );
}

/// `sim run` and `sim sweep` survive real code crashing: the crash is the `fault` finding, with
/// the same trace hash in both, and the sweep goes on with the other seeds and scenarios.
#[test]
fn the_cli_run_and_sweep_survive_a_crash_of_real_code() {
    let dir = scratch_dir("dlmalloc-cli");
    let crash = workspace_path("sim/tests/data/dlmalloc-release-behind-back.toml");
    let basic = workspace_path("scenarios/dlmalloc-basic.toml");
    let repros = dir.join("repros").display().to_string();
    let (code, stdout, stderr) = run_sim(&["run", &crash, "--json", "--repro-dir", &repros]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let run: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        run["findings"][0]["signature"],
        "fault:released page:dlmalloc_malloc"
    );

    let out = dir.join("sweep").display().to_string();
    let (code, stdout, stderr) = run_sim(&[
        "sweep",
        &crash,
        &basic,
        "--seeds",
        "0..4",
        "--file-seeds",
        "1..2",
        "--jobs",
        "2",
        "--out",
        &out,
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let scenarios = summary["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2, "{summary}");
    let crashed = scenarios
        .iter()
        .find(|s| {
            s["scenario"]
                .as_str()
                .unwrap()
                .ends_with("release-behind-back.toml")
        })
        .unwrap();
    assert_eq!(crashed["runs_failed"], 1);
    let clean = scenarios
        .iter()
        .find(|s| {
            s["scenario"]
                .as_str()
                .unwrap()
                .ends_with("dlmalloc-basic.toml")
        })
        .unwrap();
    assert_eq!(clean["runs_failed"], 0, "the sweep went on after the crash");
    let records = std::fs::read_to_string(dir.join("sweep/results.jsonl")).unwrap();
    let crashed_record: serde_json::Value = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["verdict"] == "fail")
        .unwrap();
    assert_eq!(
        crashed_record["trace_hash"], run["trace_hash"],
        "the same run, bit for bit"
    );
}

/// A sweep runs host-backed pairs through a fork server per worker (`sweep::Worker`). Whatever
/// the server does, each record must be what `sim run` gives for the pair: a crash of real code in
/// the server's grandchild is the same `fault` with the same trace hash, the server survives it
/// and answers the next pairs, and generated clean pairs pass with their own hashes.
#[test]
fn a_sweep_through_the_fork_servers_records_what_direct_runs_give_crash_or_not() {
    use sim::seed::format_seed;
    use sim::sweep::{GENERATED_FAULTS, Source, SweepConfig, results, sweep};

    let registry = Registry::builtin();
    let dir = fresh_path("dlmalloc-sweep-servers");
    let crash = parse_scenario(RELEASE_BEHIND_BACK);
    let sources = vec![
        Source::file("release-behind-back.toml", crash.clone_box()).with_seeds(0..6),
        Source::generated("dlmalloc", vec![]),
    ];
    let mut config = SweepConfig::new(sources, 0..12, &dir);
    config.jobs = 2;
    config.shrink_runs_max = 20;
    sweep(&registry, &config).unwrap();

    let records = results::load(&dir.join(results::RESULTS_FILE), false)
        .unwrap()
        .records;
    assert_eq!(records.len(), 6 + 12, "every pair recorded once");
    let options = GenerateOptions {
        defects: vec![],
        faults: GENERATED_FAULTS,
    };
    for record in &records {
        let direct = if record.scenario == "gen:dlmalloc" {
            registry
                .get("dlmalloc")
                .unwrap()
                .generate(record.seed, &options)
                .run(RunOptions::default())
        } else {
            crash.run(RunOptions {
                seed: Some(record.seed),
                ..RunOptions::default()
            })
        };
        assert_eq!(
            record.signatures,
            direct.signatures(),
            "{} seed {}",
            record.scenario,
            record.seed
        );
        assert_eq!(
            record.trace_hash,
            format_seed(direct.trace_hash),
            "{} seed {}",
            record.scenario,
            record.seed
        );
        if record.scenario == "gen:dlmalloc" {
            assert_eq!(
                record.verdict, "pass",
                "seed {}: {:?}",
                record.seed, record.signatures
            );
        } else {
            assert_eq!(
                record.signatures,
                vec!["fault:released page:dlmalloc_malloc"]
            );
        }
    }
}

/// A host that refuses dlmalloc's arena (here a 2 GB `ulimit -v` against a 64 GiB `arena-bytes`)
/// is an error of the command, exit 3, that names the setting: not a `panic` finding about
/// dlmalloc with a repro file, as it was, and not at the cost of the other files' reports.
#[test]
fn an_arena_the_host_refuses_is_an_error_that_keeps_the_other_reports() {
    let dir = scratch_dir("dlmalloc-refused");
    let huge = write_file(&dir, "huge-arena.toml", HUGE_ARENA_SCENARIO);
    let other = workspace_path("scenarios/zoo/instantiate-destroy.toml");
    let repros = dir.join("repros");
    let huge = huge.display().to_string();
    let repro_dir = repros.display().to_string();
    let (code, stdout, stderr) =
        run_sim_under_memory_limit(&["run", &huge, &other, "--repro-dir", &repro_dir]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("huge-arena.toml: cannot run here")
            && stderr.contains("`arena-bytes`")
            && stderr.contains("68719476736"),
        "{stderr}"
    );
    // A panic finding, not the word (a path of the checkout or build may hold it).
    assert!(
        !stdout.contains("error[panic]") && !stdout.contains("panicked"),
        "{stdout}"
    );
    assert!(
        stdout.contains("leak:rwlock:fd_prestats_init"),
        "the other file ran and its finding is reported: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("huge-arena.toml") && line.contains("NOT RUN")),
        "the summary table lists the file that did not run: {stdout}"
    );
    let written: Vec<String> = std::fs::read_dir(&repros)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        written.iter().all(|name| !name.starts_with("dlmalloc")),
        "no repro of a run that did not happen: {written:?}"
    );
    for args in [
        vec!["replay", huge.as_str()],
        vec!["shrink", huge.as_str()],
        vec!["sweep", huge.as_str(), "--seeds", "0..2", "--out"],
    ] {
        let mut args = args;
        let out = dir.join("sweep").display().to_string();
        if args[0] == "sweep" {
            args.push(&out);
        }
        let (code, stdout, stderr) = run_sim_under_memory_limit(&args);
        assert_eq!(code, 3, "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains("cannot run here"), "{args:?}: {stderr}");
    }
}

/// A block larger than the whole arena fails on the first try: its budget finding names the host
/// arena (not the 128 TiB address space) and says that no leak is needed for it, where it used
/// to send the reader looking for a leaking reservation that does not exist.
#[test]
fn a_block_larger_than_the_arena_is_a_budget_finding_that_blames_the_size_not_a_leak() {
    let text = "name = \"small-arena\"\nsubject = \"dlmalloc\"\n[config]\narena-bytes = 1048576\n\
                [[lifecycle]]\nname = \"l\"\nops = [{ op = \"create\" }, \
                { op = \"malloc\", slot = 0, size = 8388608 }, { op = \"destroy\" }]\n";
    let outcome = parse_scenario(text).run(RunOptions::default());
    let budget = outcome
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Budget)
        .unwrap_or_else(|| panic!("{:#?}", outcome.findings));
    assert!(
        budget
            .headline
            .contains("the 1 MiB host arena has no free range"),
        "{}",
        budget.headline
    );
    assert!(
        budget.notes.iter().any(|n| n.contains("no leak is needed"))
            && !budget.notes.iter().any(|n| n.contains("a consequence")),
        "{:?}",
        budget.notes
    );
}

/// The subject runs the dlmalloc version its summary names, wherever `sim` is built. A crate that
/// depends on `sim` by path or git resolves `sim`'s dependencies in its own lock file, where a
/// caret requirement would take the newest 0.2.x: a different allocator than the one whose
/// behaviour the subject describes, under repro files whose trace hashes it would not reproduce.
/// So the requirement is exact, and it is the version the summary names.
#[test]
fn the_dlmalloc_dependency_is_pinned_to_the_version_the_subject_names() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("sim/Cargo.toml");
    let requirement = manifest
        .lines()
        .find_map(|line| line.strip_prefix("dlmalloc = "))
        .expect("sim/Cargo.toml depends on dlmalloc");
    let summary = DlmallocSubject::info().summary;
    let named = summary
        .split(['(', ')'])
        .nth(1)
        .expect("the summary names a version in parentheses");
    assert_eq!(requirement, format!("\"={named}\""), "summary: {summary}");
}

/// `import-crash` asks the host before it runs, as `sim run` does: under a memory limit below
/// dlmalloc's default arena (1 GiB), an artifact of its fuzz target is the error `sim run` gives,
/// exit 3, and not a `panic` finding of dlmalloc's to import, as it was.
#[test]
fn import_crash_on_a_host_that_refuses_the_arena_is_the_error_sim_run_gives() {
    let dir = support::scratch_dir("dlmalloc-import-refused");
    let artifact = dir.join("crash-1");
    std::fs::write(&artifact, [0u8; 64]).unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 900000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sim"))
        .args(["import-crash", "dlmalloc"])
        .arg(&artifact)
        .arg("--classify")
        .env_remove(sim::fuzzing::DEFECTS_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: cannot run here: dlmalloc runs on a host arena of 1073741824 bytes",
            artifact.display()
        )) && stderr.contains("`arena-bytes`"),
        "{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "nothing ran, so nothing is classified: {stdout}"
    );
}
