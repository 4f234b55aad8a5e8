//! The shrinker, through the library and through `sim shrink`: a 200-op failing scenario comes
//! out at a handful of ops with the same finding signature, in few runs, and the result replays.

mod support;

use std::path::Path;

use sim::registry::{DynScenario, Registry};
use sim::runner::RunOptions;
use support::{
    defects_off, parse_scenario, run_sim, scratch_dir, text_of_300000_op_leak, workspace_path,
    write_300000_op_leak, write_file,
};

const LEAK: &str = "leak:heap block:counter_create";
const DEADLOCK: &str = "deadlock:threads:join";

/// 200 ops of create/bump/evict churn over eight slots. Every object is evicted, so the heap is
/// balanced unless `leak-on-evict` makes an evict forget its block.
fn churn_200() -> String {
    let mut ops = Vec::new();
    let mut round = 0;
    while ops.len() < 200 {
        let slot = round % 8;
        ops.push(format!("  {{ op = \"create\", slot = {slot} }},"));
        ops.push("  { op = \"bump\" },".to_string());
        ops.push(format!("  {{ op = \"evict\", slot = {slot} }},"));
        round += 1;
    }
    // End on a complete create/evict pair so every create has its evict.
    ops.truncate(198);
    format!(
        "name = \"churn\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\nseed = 5\n\n\
         [[lifecycle]]\nname = \"churn\"\nrepeat = 3\nops = [\n{}\n  {{ op = \"create\", slot = 0 }},\n  {{ op = \"evict\", slot = 0 }},\n]\n",
        ops.join("\n")
    )
}

/// A deadlock whose three main-thread ops sit at 20, 100 and 180 among 200 ops of filler, with a
/// thread whose one `bump` matters between two that do not.
fn spread_deadlock() -> String {
    let mut ops = Vec::new();
    for i in 0..200 {
        ops.push(match i {
            20 => "  { op = \"hold\" },".to_string(),
            100 => "  { op = \"spawn\", thread = \"t\" },".to_string(),
            180 => "  { op = \"join\", thread = \"t\" },".to_string(),
            i if i % 2 == 0 => format!("  {{ op = \"create\", slot = {} }},", i % 8),
            i => format!("  {{ op = \"evict\", slot = {} }},", (i - 1) % 8),
        });
    }
    format!(
        "name = \"spread\"\nsubject = \"counter\"\nseed = 5\n\n[[lifecycle]]\nname = \"churn\"\nops = [\n{}\n]\n\n\
         [[lifecycle.thread]]\nname = \"t\"\nops = [{{ op = \"create\", slot = 9 }}, {{ op = \"bump\" }}, {{ op = \"create\", slot = 10 }}]\n",
        ops.join("\n")
    )
}

fn shows(scenario: &dyn DynScenario, signature: &str) -> bool {
    scenario
        .run(RunOptions::default())
        .signatures()
        .iter()
        .any(|s| s == signature)
}

/// No single-op removal of `scenario` still shows `signature`: the result is 1-minimal.
fn assert_one_minimal(scenario: &dyn DynScenario, signature: &str) {
    let ops = scenario.meta().op_count;
    for smaller in scenario.reductions() {
        if smaller.meta().op_count == ops - 1 {
            assert!(
                !shows(smaller.as_ref(), signature),
                "removing one more op keeps `{signature}`:\n{}",
                smaller.to_toml().unwrap()
            );
        }
    }
}

#[test]
fn a_200_op_leak_shrinks_to_at_most_8_ops_with_the_same_signature() {
    let scenario = parse_scenario(&churn_200());
    assert_eq!(scenario.meta().op_count, 200);
    assert!(shows(scenario.as_ref(), LEAK), "the defect leaks");
    let clean = scenario.run(defects_off());
    assert!(
        !clean.signatures().contains(&LEAK.to_string()),
        "without the defect the heap is balanced: {:?}",
        clean.signatures()
    );

    let shrunk = sim::shrink::shrink(scenario.as_ref(), LEAK, 1_000);
    assert_eq!(shrunk.ops_before, 200);
    assert!(
        shrunk.ops_after <= 8,
        "{} ops left:\n{}",
        shrunk.ops_after,
        shrunk.scenario.to_toml().unwrap()
    );
    assert_eq!(shrunk.ops_after, shrunk.scenario.meta().op_count);
    assert!(shows(shrunk.scenario.as_ref(), LEAK));
    assert!(
        shrunk.runs <= 20,
        "chunk removal first keeps the search short: {} runs",
        shrunk.runs
    );
    assert_one_minimal(shrunk.scenario.as_ref(), LEAK);
    // The result is a file a person could have written: it parses back to itself.
    let text = shrunk.scenario.to_toml().unwrap();
    assert_eq!(parse_scenario(&text).to_toml().unwrap(), text);
}

/// 2000 lifecycles of which one leaks: dropping lifecycles in halves first finds it in a few
/// dozen runs, where one at a time took a run per lifecycle before it (a 4 MB file of 30,000
/// lifecycles kept `sim shrink` busy for hours).
#[test]
fn one_leaking_lifecycle_among_thousands_is_found_in_few_runs() {
    let lifecycles: String = (0..2000)
        .map(|i| {
            let ops = if i == 1234 {
                "{ op = \"create\", slot = 0 }, { op = \"evict\", slot = 0 }"
            } else {
                "{ op = \"bump\" }"
            };
            format!("[[lifecycle]]\nname = \"l{i}\"\nops = [{ops}]\n")
        })
        .collect();
    let text = format!(
        "name = \"many\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\n{lifecycles}"
    );
    let scenario = parse_scenario(&text);
    let shrunk = sim::shrink::shrink(scenario.as_ref(), LEAK, 100);
    assert_eq!(
        shrunk.scenario.meta().lifecycle_count,
        1,
        "after {} runs:\n{}",
        shrunk.runs,
        shrunk.scenario.to_toml().unwrap()
    );
    assert!(shows(shrunk.scenario.as_ref(), LEAK));
    assert!(shrunk.runs <= 60, "{} runs", shrunk.runs);
}

/// The shrinker's work (ops of the candidates tried plus the steps of their runs) is bounded as
/// well as its runs: a large scenario stops after a bounded search with what it found, where
/// `runs_max` alone let 5,000 runs of a 4 MB file take hours.
#[test]
fn the_work_bound_stops_a_search_of_a_large_scenario_with_what_it_found() {
    let mut ops = vec![r#"{ op = "bump" }"#; 4000];
    ops.insert(
        2500,
        r#"{ op = "create", slot = 1 }, { op = "evict", slot = 1 }"#,
    );
    let text = format!(
        "name = \"large\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\n\
         [[lifecycle]]\nname = \"l\"\nops = [{}]\n",
        ops.join(",")
    );
    let scenario = sim::scenario::parse::parse::<sim::subjects::counter::Counter>("t.toml", &text)
        .unwrap_or_else(|e| panic!("{e}"));
    let unbounded = sim::shrink::shrink_scenario_within::<sim::subjects::counter::Counter>(
        &scenario,
        LEAK,
        5_000,
        false,
        u64::MAX,
    );
    // The first run is 8,000 ops and steps of work, the first cut about half as much: 10,000
    // allows that cut and no more.
    let (smaller, runs) = sim::shrink::shrink_scenario_within::<sim::subjects::counter::Counter>(
        &scenario, LEAK, 5_000, false, 10_000,
    );
    assert!(
        runs < unbounded.1 && runs <= 8,
        "{runs} runs, {} unbounded",
        unbounded.1
    );
    assert!(
        smaller.op_count() < scenario.op_count(),
        "it kept what it found"
    );
    assert!(unbounded.0.op_count() <= 2, "{}", unbounded.0.op_count());

    // Which bound ended the search is kept, for `sim shrink` to say the result may shrink
    // further; a search that ran out of cuts names none.
    let searched = |runs_max, work_max| {
        sim::shrink::shrink_scenario_searched::<sim::subjects::counter::Counter>(
            &scenario, LEAK, runs_max, false, work_max,
        )
        .stopped_at
    };
    use sim::shrink::ShrinkBound;
    assert_eq!(searched(5_000, 10_000), Some(ShrinkBound::Work));
    assert_eq!(searched(3, u64::MAX), Some(ShrinkBound::Runs));
    assert_eq!(searched(5_000, u64::MAX), None);
}

/// `sim shrink` says when its result is where a bound stopped the search, not the smallest.
#[test]
fn sim_shrink_says_when_runs_max_stopped_it() {
    let zoo = workspace_path("scenarios/zoo/heap-delete-exit.toml");
    let zoo = zoo.as_str();
    let (code, _, stderr) = run_sim(&["shrink", zoo, "--runs-max", "3"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "note: the search stopped at --runs-max 3; a larger one may shrink it further"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run_sim(&["shrink", zoo]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("the search stopped"), "{stderr}");
}

#[test]
fn a_deadlock_keeps_exactly_the_ops_it_needs_across_threads() {
    let scenario = parse_scenario(&spread_deadlock());
    assert!(shows(scenario.as_ref(), DEADLOCK));
    let shrunk = sim::shrink::shrink(scenario.as_ref(), DEADLOCK, 1_000);
    assert_eq!(shrunk.ops_before, 203);
    let text = shrunk.scenario.to_toml().unwrap();
    assert_eq!(shrunk.ops_after, 4, "{text}");
    for needed in [
        "{ op = \"hold\" }",
        "{ op = \"spawn\", thread = \"t\" }",
        "{ op = \"join\", thread = \"t\" }",
        "{ op = \"bump\" }",
    ] {
        assert!(text.contains(needed), "`{needed}` is kept:\n{text}");
    }
    assert!(!text.contains("create"), "{text}");
    assert!(shrunk.runs <= 70, "{} runs", shrunk.runs);
    assert_one_minimal(shrunk.scenario.as_ref(), DEADLOCK);
}

/// A thread's `create` and the `evict` of it in `ops` have nothing to do with the held lock, but
/// neither goes alone: without the `create` the `evict` does not validate (use before create),
/// and without the `evict` the run adds a heap leak the scenario did not show. They are in
/// different lists, as are the `spawn` and the `evict`, so no chunk or pair of one list removes
/// them: the cut of the `create` (or, once the `join` is gone, of the `spawn`) takes the `evict`
/// with it.
#[test]
fn a_create_in_a_thread_goes_with_its_evict_in_ops() {
    let scenario = parse_scenario(
        "name = \"pair\"\nsubject = \"counter\"\nseed = 5\n\n[[lifecycle]]\nname = \"l\"\n\
         setup = [{ op = \"spawn\", thread = \"maker\" }, { op = \"join\", thread = \"maker\" }]\n\
         ops = [{ op = \"evict\", slot = 9 }, { op = \"hold\" }]\n\n\
         [[lifecycle.thread]]\nname = \"maker\"\nops = [{ op = \"create\", slot = 9 }]\n",
    );
    const HELD: &str = "leak:held lock:counter_lock";
    assert_eq!(
        scenario.run(RunOptions::default()).signatures(),
        vec![HELD.to_string()]
    );
    let shrunk = sim::shrink::shrink(scenario.as_ref(), HELD, 1_000);
    let text = shrunk.scenario.to_toml().unwrap();
    assert_eq!((shrunk.ops_before, shrunk.ops_after), (5, 1), "{text}");
    assert!(text.contains("{ op = \"hold\" }"), "{text}");
    assert!(shrunk.runs <= 20, "{} runs", shrunk.runs);
}

/// Two create/evict pairs each leak alone with the defect on: one in `ops`, and one whose
/// `create` is in a thread and whose `evict` is in `ops`. The thread goes only with that
/// `evict` (alone it leaves an `evict` of nothing created); refused alone, it stayed, the op
/// pass cut the other pair, and the repro ended at 4 ops (`spawn`, `join`, `create`, `evict`)
/// where the pair in `ops` is 2.
#[test]
fn a_thread_goes_with_the_ops_that_name_what_it_created_so_the_smaller_pair_is_kept() {
    let scenario = parse_scenario(
        "name = \"two-pairs\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\nseed = 1\n\n\
         [[lifecycle]]\nname = \"l\"\n\
         ops = [{ op = \"create\", slot = 0 }, { op = \"spawn\", thread = \"t\" }, \
         { op = \"join\", thread = \"t\" }, { op = \"evict\", slot = 0 }, { op = \"evict\", slot = 2 }]\n\n\
         [[lifecycle.thread]]\nname = \"t\"\nops = [{ op = \"create\", slot = 2 }]\n",
    );
    assert!(sim::shrink::is_about_its_defects(scenario.as_ref()));
    let shrunk = sim::shrink::shrink_defect_only(scenario.as_ref(), LEAK, 1_000);
    let text = shrunk.scenario.to_toml().unwrap();
    assert_eq!((shrunk.ops_before, shrunk.ops_after), (6, 2), "{text}");
    assert!(!text.contains("thread"), "{text}");
    assert!(
        text.contains("{ op = \"create\", slot = 0 }")
            && text.contains("{ op = \"evict\", slot = 0 }"),
        "{text}"
    );
    assert_eq!(shrunk.stopped_at, None);
    assert_one_minimal_repro(shrunk.scenario.as_ref(), LEAK, &[LEAK.to_string()], true);
}

/// Whether `candidate` reproduces as the shrinker requires: it shows `signature`, nothing the
/// scenario did not show at first (`shown_at_first`), and, when `about_its_defects`, passes with
/// every defect off.
fn reproduces(
    candidate: &dyn DynScenario,
    signature: &str,
    shown_at_first: &[String],
    about_its_defects: bool,
) -> bool {
    let shown = candidate.run(RunOptions::default()).signatures();
    shown.iter().any(|s| s == signature)
        && shown.iter().all(|s| shown_at_first.contains(s))
        && (!about_its_defects || candidate.run(defects_off()).passed())
}

/// No reduction of `scenario` with fewer ops (one op, a thread with its `spawn` and `join`, a
/// lifecycle, a chunk of a list: every one that validates) still reproduces `signature`.
fn assert_one_minimal_repro(
    scenario: &dyn DynScenario,
    signature: &str,
    shown_at_first: &[String],
    about_its_defects: bool,
) {
    let ops = scenario.meta().op_count;
    for smaller in scenario.reductions() {
        if smaller.meta().op_count < ops {
            assert!(
                !reproduces(
                    smaller.as_ref(),
                    signature,
                    shown_at_first,
                    about_its_defects
                ),
                "{} ops of the {ops} still reproduce `{signature}`:\n{}\nshrunk:\n{}",
                smaller.meta().op_count,
                smaller.to_toml().unwrap(),
                scenario.to_toml().unwrap()
            );
        }
    }
}

/// Over generated scenarios of `counter` with its defect on, every repro, as the sweep and
/// `sim import-crash` shrink it, is 1-minimal: no cut of one op, thread or lifecycle still
/// reproduces its finding; and the search ended out of cuts, not at a bound.
#[test]
fn generated_repros_are_one_minimal() {
    let registry = Registry::builtin();
    let counter = registry.get("counter").unwrap();
    let options = sim::scenario::generate::GenerateOptions {
        defects: vec!["leak-on-evict".into()],
        faults: false,
    };
    let mut shrunk_count = 0;
    for seed in 0..12 {
        let scenario = counter.generate(seed, &options);
        let outcome = scenario.run(RunOptions::default());
        let Some(finding) = outcome.findings.first() else {
            continue;
        };
        let signature = finding.signature();
        let about_its_defects = sim::shrink::is_about_its_defects(scenario.as_ref());
        let shrunk =
            sim::shrink::shrink_repro(scenario.as_ref(), &signature, 1_000, about_its_defects);
        assert_eq!(shrunk.stopped_at, None, "seed {seed}");
        assert_one_minimal_repro(
            shrunk.scenario.as_ref(),
            &signature,
            &outcome.signatures(),
            about_its_defects,
        );
        shrunk_count += 1;
    }
    assert!(shrunk_count >= 6, "{shrunk_count} of 12 seeds failed");
}

/// A cut may make the repro show less, never something else: dropping the `join` keeps the heap
/// leak but adds a leaked thread, a smaller file about two bugs, so the join stays.
#[test]
fn a_cut_that_adds_a_finding_the_scenario_did_not_show_is_not_kept() {
    let scenario = parse_scenario(
        "name = \"unjoined\"\nsubject = \"counter\"\nseed = 1\n\
         [[lifecycle]]\nname = \"l\"\n\
         ops = [{ op = \"spawn\", thread = \"t\" }, { op = \"join\", thread = \"t\" }]\n\
         [[lifecycle.thread]]\nname = \"t\"\nops = [{ op = \"create\", slot = 1 }]\n",
    );
    assert_eq!(
        scenario.run(RunOptions::default()).signatures(),
        [LEAK],
        "before: the heap leak alone"
    );
    let shrunk = sim::shrink::shrink(scenario.as_ref(), LEAK, 1000);
    let outcome = shrunk.scenario.run(RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        [LEAK],
        "after: still the heap leak alone\n{}",
        shrunk.scenario.to_toml().unwrap()
    );
    assert!(
        shrunk.scenario.to_toml().unwrap().contains("op = \"join\""),
        "{}",
        shrunk.scenario.to_toml().unwrap()
    );
}

#[test]
fn the_run_budget_bounds_the_search_and_every_kept_step_still_fails() {
    let scenario = parse_scenario(&churn_200());
    let shrunk = sim::shrink::shrink(scenario.as_ref(), LEAK, 3);
    assert!(shrunk.runs <= 3, "{} runs", shrunk.runs);
    assert!(shrunk.ops_after < 200, "three runs already remove a half");
    assert!(shows(shrunk.scenario.as_ref(), LEAK));
    let none = sim::shrink::shrink(scenario.as_ref(), LEAK, 0);
    assert_eq!((none.runs, none.ops_after), (0, 200));
}

#[test]
fn sim_shrink_writes_a_small_repro_that_replays() {
    let dir = scratch_dir("sim-shrink");
    let input = write_file(&dir, "churn.toml", churn_200());
    let out = dir.join("small.toml");
    let path = |p: &Path| p.display().to_string();
    let (code, stdout, stderr) =
        run_sim(&["shrink", &path(&input), "--seed", "9", "--out", &path(&out)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.is_empty(),
        "with --out the scenario goes to the file"
    );
    assert!(
        stderr.contains(&format!("shrunk `{LEAK}`: 200 ops → ")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("replay with `sim replay {}`", path(&out))));

    let text = std::fs::read_to_string(&out).unwrap();
    let small = parse_scenario(&text);
    assert!(small.meta().op_count <= 8, "{text}");
    assert_eq!(small.meta().seed, 9, "the seed given is the seed pinned");
    let expect = small.meta().expect.expect("the result pins what it shows");
    assert!(expect.signatures.contains(&LEAK.to_string()));
    assert!(expect.trace_hash.is_some());

    let (code, stdout, _) = run_sim(&["replay", &path(&out)]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("replayed: the same findings and the same trace hash as recorded"),
        "{stdout}"
    );

    // Shrinking is deterministic: the same input gives the same file, but for the line that
    // names the file to replay.
    let again = dir.join("again.toml");
    run_sim(&[
        "shrink",
        &path(&input),
        "--seed",
        "9",
        "--out",
        &path(&again),
    ]);
    let again = std::fs::read_to_string(&again).unwrap();
    let without_replay_line = |text: &str| -> Vec<String> {
        let lines = text.lines().filter(|line| !line.starts_with("# Replay: "));
        lines.map(String::from).collect()
    };
    assert_eq!(without_replay_line(&again), without_replay_line(&text));
}

/// A zoo scenario fails only because of its defect: `sim shrink` keeps it about the defect, as
/// the sweep's repros and `sim import-crash` do. A plain signature shrink cuts `destroy` away and
/// keeps a lone `instantiate`, which leaks the same rwlock (and a dozen other things) with every
/// defect off.
#[test]
fn sim_shrink_of_a_defect_run_keeps_a_scenario_that_passes_with_the_defect_off() {
    let dir = scratch_dir("defect-only");
    let zoo = workspace_path("scenarios/zoo/instantiate-destroy.toml");
    let out = dir.join("small.toml").display().to_string();
    let (code, _, stderr) = run_sim(&["shrink", &zoo, "--seed", "1", "--out", &out]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("also passes with every defect off"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("op = \"destroy\""), "{text}");
    // Repros of the failing run go to the test's own directory, not the package's target/.
    let repros = dir.join("repros").display().to_string();
    let (code, stdout, _) = run_sim(&["run", &out, "--no-defects", "--repro-dir", &repros]);
    assert_eq!(
        code, 0,
        "the shrunk scenario passes without its defect:\n{stdout}"
    );
    let (code, stdout, _) = run_sim(&["run", &out, "--repro-dir", &repros]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("leak:rwlock:fd_prestats_init"), "{stdout}");
}

/// A passing run has nothing to shrink (exit 0, whatever `--signature` asks). A failing run
/// without the signature asked for has nothing to shrink either, but the command was wrong: exit
/// 2, naming the signatures the run does show.
#[test]
fn sim_shrink_of_a_passing_run_or_an_absent_signature_has_nothing_to_do() {
    let clean = workspace_path("sim/tests/ui/counter-clean.toml");
    for signature in [None, Some(LEAK)] {
        let mut args = vec!["shrink", clean.as_str()];
        args.extend(signature.map(|s| ["--signature", s]).into_iter().flatten());
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!((code, stdout.as_str()), (0, ""), "{args:?}: {stderr}");
        assert!(
            stderr.contains("the run passes; nothing to shrink"),
            "{stderr}"
        );
    }

    let dir = scratch_dir("absent").join("absent");
    std::fs::create_dir_all(&dir).unwrap();
    let input = write_file(&dir, "churn.toml", churn_200());
    let input = input.display().to_string();
    let (code, stdout, stderr) = run_sim(&["shrink", &input, "--signature", "leak:nothing:here"]);
    assert_eq!(
        (code, stdout.as_str()),
        (2, ""),
        "a run with findings but not the one asked for is a usage error: {stderr}"
    );
    assert!(
        stderr.contains("error: the run does not show `leak:nothing:here`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(LEAK),
        "it lists what the run does show: {stderr}"
    );
}

/// Beyond ops: lifecycles that do not matter, threads that do not matter and injected faults
/// that do not matter all go, and repetitions come down to one.
#[test]
fn the_shrinker_drops_lifecycles_threads_faults_and_repetitions_that_do_not_matter() {
    let text = r#"
name = "structure"
subject = "counter"
defects = ["leak-on-evict"]
seed = 9

[faults]
alloc = 0.001

[[lifecycle]]
name = "warm"
repeat = 4
ops = [{ op = "bump" }, { op = "spawn", thread = "helper" }, { op = "join", thread = "helper" }]

[[lifecycle.thread]]
name = "helper"
ops = [{ op = "bump" }, { op = "bump" }]

[[lifecycle]]
name = "leaky"
repeat = 5
ops = [
  { op = "spawn", thread = "bystander" },
  { op = "create", slot = 1 },
  { op = "bump" },
  { op = "evict", slot = 1 },
  { op = "join", thread = "bystander" },
]

[[lifecycle.thread]]
name = "bystander"
ops = [{ op = "bump" }]

[[lifecycle]]
name = "cool"
ops = [{ op = "bump" }]
"#;
    let scenario = parse_scenario(text);
    assert!(shows(scenario.as_ref(), LEAK));
    let shrunk = sim::shrink::shrink(scenario.as_ref(), LEAK, 5_000);
    let small = shrunk.scenario.to_toml().unwrap();
    assert!(shows(shrunk.scenario.as_ref(), LEAK), "{small}");
    let meta = shrunk.scenario.meta();
    assert_eq!(meta.lifecycle_count, 1, "{small}");
    assert!(!small.contains("[faults]"), "{small}");
    assert!(!small.contains("[[lifecycle.thread]]"), "{small}");
    assert!(
        !small.contains("repeat"),
        "one repetition is the default: {small}"
    );
    assert_eq!(meta.op_count, 1, "the create alone leaks: {small}");
    assert_one_minimal(shrunk.scenario.as_ref(), LEAK);
}

/// A file's `[limits]` may be allowed only because its `[faults]` may fire (a fault in the
/// constructor, or a failed spawn, leaves it taking less): the parser checks them against the
/// constructor and the threads a list has out only without such faults. Dropping the faults then
/// makes a file the parser refuses, though its run still shows the signature; the shrinker keeps
/// only candidates whose file parses, so every shrunk repro runs with `sim run`.
#[test]
fn a_shrunk_repro_keeps_the_faults_its_limits_need_to_parse() {
    let constructor = r#"
name = "objects"
subject = "counter"
seed = 1

[limits]
objects_max = 0

[faults]
alloc = 0.5

[[lifecycle]]
name = "l"
ops = [{ op = "create", slot = 1 }, { op = "evict", slot = 1 }]
"#;
    let spawns = r#"
name = "spawns"
subject = "counter"
seed = 1

[limits]
threads_max = 1

[faults]
spawn = 0.01

[[lifecycle]]
name = "l"
ops = [
  { op = "spawn", thread = "a" },
  { op = "spawn", thread = "b" },
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "bump" }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "bump" }]
"#;
    for (text, signature, faults) in [
        (
            constructor,
            "budget:objects_max:counter_lock_init",
            "[faults]\nalloc = 0.5\n",
        ),
        (
            spawns,
            "budget:threads_max:spawn",
            "[faults]\nspawn = 0.01\n",
        ),
    ] {
        let scenario = parse_scenario(text);
        assert!(shows(scenario.as_ref(), signature), "{text}");
        // Without its faults the file is refused, though its run would show the signature.
        assert!(text.contains(faults));
        let without_faults = text.replace(faults, "");
        assert!(
            Registry::builtin()
                .parse("test.toml", &without_faults)
                .is_err(),
            "{without_faults}"
        );
        let shrunk = sim::shrink::shrink(scenario.as_ref(), signature, 1_000);
        let small = shrunk.scenario.to_toml().unwrap();
        let parsed = Registry::builtin()
            .parse("shrunk.toml", &small)
            .unwrap_or_else(|e| panic!("the shrunk repro is refused: {e}\n{small}"));
        assert!(shows(parsed.as_ref(), signature), "{small}");
        assert!(small.contains("[faults]"), "{small}");
    }
}

/// An `--out` that cannot be written is refused before any shrinking (exit 2, naming the path); a
/// directory that does not exist yet is made, as for every other output of the tool; and a final
/// write that fails all the same (a full disk: `/dev/full`) puts the result on stdout rather than
/// losing it.
#[test]
fn sim_shrink_checks_its_output_before_shrinking_and_never_loses_the_result() {
    let dir = scratch_dir("out-checked");
    let input = write_file(&dir, "churn.toml", churn_200());
    let input = input.display().to_string();
    let a_file = write_file(&dir, "a-file", "");
    // Symbolic links to nothing: `metadata` takes them for paths not made yet, but no directory
    // can be made where one stands, nor a file written through one into no directory.
    let dangling_dir = dir.join("dangling-dir");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling_dir).unwrap();
    let dangling_file = dir.join("dangling-file.toml");
    std::os::unix::fs::symlink(dir.join("nowhere/small.toml"), &dangling_file).unwrap();
    let cases = [
        (a_file.join("small.toml"), "is not a directory"),
        (dir.clone(), "is a directory"),
        (
            dangling_dir.join("small.toml"),
            "dangling-dir is a symbolic link to ",
        ),
        (dangling_file.clone(), "is a symbolic link to "),
    ];
    for (out, says) in cases {
        let out = out.display().to_string();
        let (code, stdout, stderr) = run_sim(&["shrink", &input, "--out", &out]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{out}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: --out {out}: ")) && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            !stderr.contains("shrunk"),
            "refused before shrinking: {stderr}"
        );
    }

    let made = dir.join("no-such-dir/yet/small.toml");
    let (code, _, stderr) = run_sim(&["shrink", &input, "--out", &made.display().to_string()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(made.is_file(), "its directory was made: {stderr}");

    // Where no file can be made, the output path is bad input, exit 2 as for every other
    // command's output, said of the file; the shrunk scenario is printed.
    for (out, says) in [
        ("/proc/small.toml", "/proc/small.toml: cannot write: "),
        (
            "/proc/no-such-dir/small.toml",
            "/proc/no-such-dir/small.toml: cannot write: cannot create its directory /proc/no-such-dir: ",
        ),
    ] {
        let (code, stdout, stderr) = run_sim(&["shrink", &input, "--out", out]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("on standard output instead"),
            "{stderr}"
        );
        assert!(shows(parse_scenario(&stdout).as_ref(), LEAK), "{stdout}");
    }

    // A file made that cannot be written whole (a full disk) is no usage error: exit 3.
    let (code, stdout, stderr) = run_sim(&["shrink", &input, "--out", "/dev/full"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("/dev/full: cannot write: No space left on device")
            && stderr.contains("on standard output instead"),
        "{stderr}"
    );
    let small = parse_scenario(&stdout);
    assert!(small.meta().op_count <= 8, "the shrunk scenario: {stdout}");
    assert!(shows(small.as_ref(), LEAK));
}

/// `--out` naming the input file, however spelt, is refused before shrinking (exit 2), as
/// `--trace` naming an input is: it replaced the scenario with its shrunk self, whose header
/// then said it was shrunk from that same file.
#[test]
fn sim_shrink_refuses_an_out_that_is_its_input() {
    let dir = scratch_dir("out-is-input");
    let text = churn_200();
    let input = write_file(&dir, "churn.toml", &text);
    let other_spelling = dir.join(".").join("churn.toml").display().to_string();
    // The same file under another path.
    let hard_link = dir.join("churn-hard.toml");
    std::fs::hard_link(&input, &hard_link).unwrap();
    let hard_link = hard_link.display().to_string();
    let input = input.display().to_string();
    for out in [&input, &other_spelling, &hard_link] {
        let (code, stdout, stderr) = run_sim(&["shrink", &input, "--out", out]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{out}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: --out {out}: that is the input file {input}, which the shrunk scenario would overwrite"
            )),
            "{stderr}"
        );
        assert!(
            !stderr.contains("shrunk `"),
            "refused before shrinking: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    }
}

/// `sim import-crash` checks `--out` before it shrinks, as `sim shrink` does, and a final write
/// that fails puts the regression on stdout.
#[test]
fn sim_import_crash_checks_its_output_before_shrinking_and_never_loses_the_result() {
    let dir = scratch_dir("import-out-checked");
    let artifact = write_file(&dir, "crash-canary", "hello world 1234567890");
    let artifact = artifact.display().to_string();
    let a_file = write_file(&dir, "a-file", "");
    let a_file = a_file.display().to_string();
    for (flag, target) in [("--out", "canary"), ("--parser-corpus", "scenario-parser")] {
        let (code, stdout, stderr) = run_sim(&["import-crash", target, &artifact, flag, &a_file]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: {flag} {a_file}: {a_file} is not a directory"
            )),
            "{stderr}"
        );
        assert!(
            !stderr.contains("shrunk"),
            "refused before shrinking: {stderr}"
        );
    }
    // `open/` under --out, where an open finding would go, must be a directory too.
    let out = dir.join("regressions");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("open"), "").unwrap();
    let out = out.display().to_string();
    let (code, _, stderr) = run_sim(&["import-crash", "canary", &artifact, "--out", &out]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("open is not a directory"), "{stderr}");

    // A file that cannot be made after all (its name a link into `/dev/full`, which fails even
    // for root): bad usage of --out (exit 2), as every command's output path is, and the
    // regression comes out on stdout.
    let first = dir.join("first");
    let (code, stdout, stderr) = run_sim(&[
        "import-crash",
        "canary",
        &artifact,
        "--out",
        &first.display().to_string(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let name = std::fs::read_dir(&first)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let written = std::fs::read_to_string(first.join(&name)).unwrap();
    assert!(stdout.starts_with("wrote "), "{stdout}");
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::os::unix::fs::symlink("/dev/full/x", blocked.join(&name)).unwrap();
    let blocked = blocked.display().to_string();
    let (code, stdout, stderr) = run_sim(&["import-crash", "canary", &artifact, "--out", &blocked]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains("on standard output instead"),
        "{stderr}"
    );
    let text_lines = |text: &str| {
        text.lines()
            .filter(|line| !line.starts_with("# Replay:"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        text_lines(&stdout),
        text_lines(&written),
        "the same regression"
    );
    assert!(parse_scenario(&stdout).meta().expect.is_some(), "{stdout}");
}

/// A source path with a newline in it is escaped in the header's prose and in its `# Replay:`
/// command, so the shrunk file parses and replays: the raw newline ended the comment.
#[test]
fn a_shrunk_scenario_from_a_path_with_a_newline_parses() {
    let dir = scratch_dir("header-newline");
    let source = dir.join("heap\nseed = 5.toml");
    std::fs::copy(
        workspace_path("scenarios/zoo/heap-delete-exit.toml"),
        &source,
    )
    .unwrap();
    let out = dir.join("small\nx = 1.toml").display().to_string();
    let (code, _, stderr) = run_sim(&["shrink", &source.display().to_string(), "--out", &out]);
    assert_eq!(code, 1, "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("/heap\\nseed = 5.toml for "), "{text}");
    assert!(lines[1].ends_with("/small\\nx = 1.toml'"), "{text}");
    assert!(
        lines[2].contains("/heap\\nseed = 5.toml, which may speak"),
        "{text}"
    );
    let (code, stdout, stderr) = run_sim(&["replay", &out]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("replayed: the same findings"), "{stdout}");
}

/// A shrunk scenario says what it shows and where it comes from, and keeps the comments that
/// explain the original (a printed scenario has none of its own); shrinking it again quotes the
/// original's comments once, not the header about them.
#[test]
fn a_shrunk_scenario_says_what_it_shows_and_keeps_the_originals_comments() {
    let dir = scratch_dir("header");
    let zoo = workspace_path("scenarios/zoo/heap-delete-exit.toml");
    let out = dir.join("small.toml").display().to_string();
    let (code, stdout, stderr) = run_sim(&["shrink", &zoo, "--out", &out]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "# Shrunk by `sim shrink` from {zoo} for `fault:released page:segment_collect` (7 ops -> 6 ops; it passes with every defect off)."
        )
    );
    assert_eq!(lines[1], format!("# Replay: sim replay {out}"));
    assert_eq!(
        lines[2],
        format!("# The comments of {zoo}, which may speak of ops the shrink removed:")
    );
    assert!(
        lines[3].starts_with("# mimalloc #904, the reported sequence:"),
        "{text}"
    );
    let (code, stdout, _) = run_sim(&["replay", &out]);
    assert_eq!(code, 1);
    assert!(stdout.contains("replayed: the same findings and the same trace hash as recorded"));

    // Again, from the shrunk file, to standard output.
    let (code, again, stderr) = run_sim(&["shrink", &out]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        again.starts_with(&format!("# Shrunk by `sim shrink` from {out} for ")),
        "{again}"
    );
    assert!(
        !again.contains("# Replay:"),
        "no --out, no file to replay: {again}"
    );
    assert_eq!(again.matches("# The comments of ").count(), 1, "{again}");
    assert_eq!(again.matches("# mimalloc #904").count(), 1, "{again}");
    assert!(
        !again.contains(&zoo),
        "the first shrink's header is not carried over: {again}"
    );
}

/// A single lifecycle of 300,000 ops, one leak in the middle, as a 3.6 MB file: its candidates
/// printed past the 4 MiB a file may have (the printer spells each op out), and the shrinker,
/// which printed each candidate and parsed it back, took every one of them for invalid, and free:
/// `sim shrink --runs-max 3` ran past 500 s printing 600,000 candidates of 5 MB each. Halving
/// takes it to the two ops that matter in a few runs per halving, and in work (ops of the
/// candidates plus steps of their runs) a small multiple of the original run's.
#[test]
fn a_300000_op_lifecycle_shrinks_in_a_few_runs_per_halving() {
    let text = text_of_300000_op_leak();
    type Counter = sim::subjects::counter::Counter;
    let scenario =
        sim::scenario::parse::parse::<Counter>("big.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sim::scenario::print::to_toml(&scenario).unwrap().len()
            > sim::scenario::parse::SOURCE_BYTES_MAX,
        "the case of the bug: its candidates print past what a file may hold"
    );
    let original_work = scenario.op_count() as u64 + runner_steps(&scenario);
    // As `sim shrink` shrinks this file (every kept cut also passes with the defect off), under
    // a work bound of eight times the original run's: halving, the candidates' sizes add up to a
    // few times the original's (5.1 when written).
    let found = sim::shrink::shrink_scenario_searched::<Counter>(
        &scenario,
        LEAK,
        20_000,
        true,
        8 * original_work,
    );
    assert_eq!(found.stopped_at, None, "{} work", found.work);
    assert_eq!(found.scenario.op_count(), 2, "the create and its evict");
    // log2(300,002) is 18.2: a few candidates per halving (44 in all when written).
    assert!(found.candidates <= 60, "{} candidates", found.candidates);
    assert!(found.runs <= 40, "{} runs", found.runs);
}

fn runner_steps(scenario: &sim::scenario::Scenario<sim::subjects::counter::CounterOp>) -> u64 {
    sim::runner::run::<sim::subjects::counter::Counter>(scenario, RunOptions::default()).steps
}

/// `sim shrink --out` wrote a result `sim replay` then refused: two runs leave this 3.6 MB file
/// whole, and the printer spells its 300,000 ops out past the 4 MiB a scenario file may have.
/// Now it writes nothing, says why, and names what reruns the finding; exit 3.
#[test]
fn sim_shrink_writes_no_result_too_large_to_replay() {
    let dir = scratch_dir("too-large");
    let file = write_300000_op_leak(&dir);
    let (file, out) = (file.display().to_string(), dir.join("out.toml"));
    let out_text = out.display().to_string();
    for with_out in [true, false] {
        let mut args = vec!["shrink", &file, "--runs-max", "2"];
        if with_out {
            args.extend(["--out", &out_text]);
        }
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 3, "{stderr}");
        assert!(
            stderr.contains("the shrunk scenario (300002 ops) was not written")
                && stderr.contains("could not be replayed")
                && stderr.contains(&format!(
                    "\nnote: `sim run {file} --seed 0x0000000000000000 --defect leak-on-evict` reruns the finding"
                )),
            "{stderr}"
        );
        assert!(stdout.is_empty(), "nothing on stdout either");
        assert!(!out.exists(), "no file `sim replay` would refuse");
    }
}

/// `sim shrink` warns as `sim run` does, of its input (pointed into it) and of its result
/// (pointed into the `--out` file, read back): with `--runs-max 0` the result is the input as it
/// stands, so an op after an `exit` warns in both.
#[test]
fn shrink_warns_of_its_input_and_of_its_result() {
    let dir = scratch_dir("shrink-warnings");
    let file = write_file(
        &dir,
        "after-exit.toml",
        "name = \"x\"\nsubject = \"counter\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
         ops = [{ op = \"exit\" }, { op = \"create\", slot = 0 }]\n",
    );
    let out = dir.join("shrunk.toml");
    let (file, out) = (file.display().to_string(), out.display().to_string());
    let (code, _, stderr) = run_sim(&["shrink", &file, "--runs-max", "0", "--out", &out]);
    assert_eq!(code, 1, "{stderr}");
    let warning = |exit_line: usize| {
        format!(
            "warning: op `create` (op #2 of `ops` in lifecycle `l`) runs after the process exited: the `exit` at line {exit_line} (op #1 of `ops` in lifecycle `l`) ends the process, and a real one runs nothing after it; the simulation runs the op all the same, in the same process (end the scenario with the `exit`)\n"
        )
    };
    let input = format!("{}  --> {file}:6:25\n", warning(6));
    assert!(stderr.starts_with(&input), "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    let (line, text) = (written.lines().enumerate())
        .find(|(_, text)| text.contains("op = \"create\""))
        .unwrap_or_else(|| panic!("{written}"));
    let exit_line = 1
        + (written.lines())
            .position(|text| text.contains("op = \"exit\""))
            .unwrap_or_else(|| panic!("{written}"));
    let column = 1 + text.find("{ op = \"create\"").unwrap();
    let result = format!("{}  --> {out}:{}:{column}\n", warning(exit_line), line + 1);
    assert!(stderr.ends_with(&result), "{stderr}\n{written}");
}
