//! The runner end to end on the teaching subject: leaks, deadlocks, panics-free runs, replay.

mod support;

use sim::findings::FindingKind;
use sim::registry::Registry;
use sim::runner::RunOptions;
use sim::scenario::generate::GenerateOptions;
use sim::sched::StrategyChoice;
use support::{parse_scenario, print_and_parse_back};

const CREATE_EVICT: &str = r#"
name = "create-evict"
subject = "counter"
seed = 7

[[lifecycle]]
name = "object"
repeat = 50
ops = [
  { op = "create", slot = 1 },
  { op = "evict", slot = 1 },
]
"#;

#[test]
fn balanced_lifecycles_pass_and_the_defect_leaks_once_per_repetition() {
    let clean = parse_scenario(CREATE_EVICT).run(RunOptions::default());
    assert!(clean.passed(), "{:?}", clean.findings);
    assert_eq!(clean.ops, 100);

    let leaky = parse_scenario(CREATE_EVICT).run(RunOptions {
        defects: Some(vec!["leak-on-evict".into()]),
        ..RunOptions::default()
    });
    assert_eq!(leaky.signatures(), vec!["leak:heap block:counter_create"]);
    let finding = &leaky.findings[0];
    assert_eq!(finding.repetition, 0, "noticed after the first repetition");
    assert!(
        finding.notes.iter().any(|n| n.contains("seen 50 times")),
        "{:?}",
        finding.notes
    );
    assert!(
        finding
            .detail_texts("acquired")
            .any(|text| text.contains("op #1 `create`")),
        "{:?}",
        finding.details
    );
}

const DEADLOCK: &str = r#"
name = "hold-and-join"
subject = "counter"

[[lifecycle]]
name = "deadlock"
ops = [
  { op = "hold" },
  { op = "spawn", thread = "bumper" },
  { op = "join", thread = "bumper" },
  { op = "release" },
]

[[lifecycle.thread]]
name = "bumper"
ops = [{ op = "bump" }]
"#;

#[test]
fn a_thread_blocked_on_a_held_lock_while_its_holder_joins_it_is_a_deadlock_listing_both() {
    let outcome = parse_scenario(DEADLOCK).run(RunOptions::default());
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
    let deadlock = &outcome.findings[0];
    assert_eq!(deadlock.kind, FindingKind::Deadlock);
    let blocked: Vec<&str> = deadlock.detail_texts("blocked").collect();
    assert_eq!(blocked.len(), 2, "{blocked:?}");
    assert!(
        blocked[0].contains("main") && blocked[0].contains("joining thread 1"),
        "{blocked:?}"
    );
    assert!(
        blocked[1].contains("bumper") && blocked[1].contains("waiting for lock"),
        "{blocked:?}"
    );
    // Each blocked thread's op, and who holds the lock it waits for since when: enough to see
    // the missing release without replaying.
    let blocked_at: Vec<&str> = deadlock.detail_texts("blocked at").collect();
    assert_eq!(
        blocked_at,
        [
            "op #3 `join` (lifecycle 1, repetition 1, thread 0)",
            "op #1 `bump` (lifecycle 1, repetition 1, thread 1)"
        ]
    );
    let held: Vec<&str> = deadlock.detail_texts("held").collect();
    assert_eq!(
        held,
        [
            "lock #0 by thread 0 `main`, taken at op #1 `hold` → counter_lock (lifecycle 1, repetition 1, thread 0)"
        ]
    );
}

const CONTENDED: &str = r#"
name = "contended"
subject = "counter"
seed = 3

[[lifecycle]]
name = "bumps"
repeat = 5
setup = [{ op = "bump" }]
ops = [
  { op = "spawn", thread = "a" },
  { op = "spawn", thread = "b" },
  { op = "bump" },
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "hold" }, { op = "release" }, { op = "bump" }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "bump" }, { op = "bump" }]
"#;

#[test]
fn same_seed_same_trace_and_a_recorded_schedule_replays_bit_for_bit() {
    let s = parse_scenario(CONTENDED);
    let first = s.run(RunOptions {
        record_schedule: true,
        ..RunOptions::default()
    });
    assert!(first.passed(), "{:?}", first.findings);
    let second = s.run(RunOptions::default());
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(
        !first.schedule.is_empty(),
        "three threads make scheduling decisions"
    );
    assert!(second.schedule.is_empty(), "not recorded by default");
    assert_eq!(
        (first.decisions, second.decisions),
        (first.schedule.len() as u64, first.schedule.len() as u64),
        "the decisions are counted whether the schedule is recorded or not"
    );
    let replayed = s.run(RunOptions {
        seed: Some(999),
        strategy: Some(StrategyChoice::Replay {
            schedule: first.schedule.clone(),
        }),
        record_schedule: true,
        ..RunOptions::default()
    });
    assert!(
        replayed.passed(),
        "a faithful replay does not diverge: {:?}",
        replayed.findings
    );
    assert_eq!(
        replayed.schedule, first.schedule,
        "the replay follows the recording"
    );
    let other = s.run(RunOptions {
        seed: Some(4),
        ..RunOptions::default()
    });
    assert_ne!(
        other.trace_hash, first.trace_hash,
        "another seed takes another path"
    );
}

const TWO_BUMPERS: &str = r#"
name = "two-bumpers"
subject = "counter"

[[lifecycle]]
name = "race"
ops = [
  { op = "spawn", thread = "a" },
  { op = "spawn", thread = "b" },
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }, { op = "bump" }]
"#;

/// Whether a spawned thread of `TWO_BUMPERS` lost the processor before its end: the first one
/// the decisions name is named fewer times than its 9 steps (8 bumps and its exit) before the
/// other one is. PCT with fixed priorities never does that: once chosen over every runnable
/// thread, a thread keeps the highest priority until it exits. Only a change point, fired while
/// both could run, demotes it.
fn preempted(schedule: &[u32]) -> bool {
    let mut spawned = schedule.iter().copied().filter(|&tid| tid != 0).peekable();
    let Some(&first) = spawned.peek() else {
        return false;
    };
    spawned
        .position(|tid| tid != first)
        .is_some_and(|runs| runs < 9)
}

#[test]
fn pct_spreads_its_change_points_over_the_scenarios_own_steps() {
    let s = parse_scenario(TWO_BUMPERS);
    let run = |seed: u64, choice: &StrategyChoice| {
        s.run(RunOptions {
            seed: Some(seed),
            strategy: Some(choice.clone()),
            record_schedule: true,
            ..RunOptions::default()
        })
    };
    let preempted = |choice: &StrategyChoice| {
        (0..40)
            .filter(|&seed| {
                let outcome = run(seed, choice);
                assert!(outcome.passed(), "{:?}", outcome.findings);
                preempted(&outcome.schedule)
            })
            .count()
    };
    assert_eq!(
        preempted(&StrategyChoice::pct(1)),
        0,
        "depth 1 has no change point"
    );
    let default_steps = preempted(&StrategyChoice::pct(2));
    assert!(
        default_steps >= 10,
        "a change point fell where both threads could run in only {default_steps} of 40 runs"
    );
    // 22 steps: each thread's 8 ops and its exit, and main's 4 ops. The figure the run used is in
    // its header, so that a repro pinned from it replays the same
    // change points whatever the shrinker later removes.
    let outcome = run(0, &StrategyChoice::pct(2));
    assert_eq!(
        outcome.header.schedule,
        StrategyChoice::Pct {
            depth: 2,
            steps: Some(22),
        }
    );
    // Spread over 1,000 steps, as every PCT run once was, a change point nearly never lands in
    // a run of a couple of dozen decisions.
    let thousand = preempted(&StrategyChoice::Pct {
        depth: 2,
        steps: Some(1000),
    });
    assert!(
        thousand < default_steps,
        "{thousand} against {default_steps}"
    );
}

#[test]
fn a_thread_exiting_with_a_lock_held_is_reported() {
    let text = CONTENDED.replace(
        r#"ops = [{ op = "hold" }, { op = "release" }, { op = "bump" }]"#,
        r#"ops = [{ op = "hold" }]"#,
    );
    let outcome = parse_scenario(&text).run(RunOptions::default());
    let signatures = outcome.signatures();
    assert!(
        signatures.contains(&"invariant:held lock:counter_lock".to_string()),
        "{signatures:?}"
    );
    // The report says which op took the lock, so that the missing release is found after it.
    let finding = outcome
        .findings
        .iter()
        .find(|f| f.signature() == "invariant:held lock:counter_lock")
        .unwrap();
    let taken = finding
        .details
        .iter()
        .find(|d| d.label == "taken")
        .unwrap_or_else(|| panic!("no `taken` detail: {:?}", finding.details));
    assert!(taken.text.starts_with("op #1 `hold`"), "{}", taken.text);
    let op = taken.op.as_ref().expect("the op as data, to be located");
    assert_eq!((op.index, op.name.as_str()), (1, "hold"));
}

/// Two threads block on the lock the main thread holds; its release wakes both, one takes the
/// lock in its continuation and exits holding it, the other blocks again in its own: what each
/// continuation records happens after other threads' ops moved the run's position.
const TWO_WAITERS: &str = r#"
name = "two-waiters"
subject = "counter"

[[lifecycle]]
name = "handoff"
ops = [
  { op = "hold" },
  { op = "spawn", thread = "a" },
  { op = "spawn", thread = "b" },
  { op = "sleep", ticks = 1 },
  { op = "release" },
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "hold" }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "hold" }]
"#;

/// The thread and op of the line `label` of `finding` that names thread `tid`'s op.
fn op_of(finding: &sim::findings::Finding, label: &str, tid: u32) -> Option<(u32, String)> {
    let mut ops = finding.details.iter().filter(|d| d.label == label);
    let op = ops.find_map(|d| d.op.as_ref().filter(|op| op.thread == tid))?;
    Some((op.index, op.name.clone()))
}

#[test]
fn a_thread_blocked_again_in_its_continuation_is_blocked_at_its_own_op() {
    for seed in 0..8 {
        let outcome = parse_scenario(TWO_WAITERS).run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        let deadlock = outcome
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::Deadlock)
            .unwrap_or_else(|| panic!("seed {seed}: no deadlock: {:?}", outcome.findings));
        // The waiter that lost the race (thread 1 `a` or 2 `b`) and the main thread joining it.
        let loser = [1, 2]
            .into_iter()
            .find(|tid| op_of(deadlock, "blocked at", *tid).is_some())
            .unwrap_or_else(|| panic!("seed {seed}: no waiter blocked: {:?}", deadlock.details));
        let blocked_at: Vec<&str> = deadlock.detail_texts("blocked at").collect();
        assert_eq!(
            blocked_at,
            [
                format!(
                    "op #{} `join` (lifecycle 1, repetition 1, thread 0)",
                    5 + loser
                ),
                format!("op #1 `hold` (lifecycle 1, repetition 1, thread {loser})"),
            ],
            "seed {seed}"
        );
    }
}

#[test]
fn a_lock_taken_in_a_continuation_is_taken_at_the_taking_threads_op() {
    for seed in 0..8 {
        let outcome = parse_scenario(TWO_WAITERS).run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        let exit = outcome
            .findings
            .iter()
            .find(|f| f.signature() == "invariant:held lock:counter_lock")
            .unwrap_or_else(|| panic!("seed {seed}: no held lock: {:?}", outcome.findings));
        let taken: Vec<&str> = exit.detail_texts("taken").collect();
        let winner = if taken[0].ends_with("thread 1)") {
            1
        } else {
            2
        };
        assert_eq!(
            taken,
            [format!(
                "op #1 `hold` → counter_lock (lifecycle 1, repetition 1, thread {winner})"
            )],
            "seed {seed}"
        );
        // The deadlock's line about the lock names the same taking op.
        let deadlock = outcome
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::Deadlock)
            .unwrap();
        assert_eq!(
            op_of(deadlock, "held", winner),
            Some((1, "hold".to_string())),
            "seed {seed}: {:?}",
            deadlock.details
        );
    }
}

#[test]
fn steps_max_ends_a_runaway_run_with_a_budget_finding() {
    let text = CREATE_EVICT
        .replace("repeat = 50", "repeat = 5000")
        .replace("seed = 7", "seed = 7\n[limits]\nsteps_max = 100");
    let outcome = parse_scenario(&text).run(RunOptions::default());
    assert_eq!(outcome.signatures(), vec!["budget:steps_max:runner"]);
    assert_eq!(outcome.steps, 101);
    // Printed back, `[limits]` holds the one limit that differs from its default.
    let printed = parse_scenario(&text).to_toml().unwrap();
    let limits = printed
        .split("[limits]\n")
        .nth(1)
        .expect("a [limits] section");
    assert!(limits.starts_with("steps_max = 100\n\n"), "{printed}");
}

#[test]
fn generated_scenarios_print_back_to_files_that_parse_to_the_same_scenario() {
    let registry = Registry::builtin();
    let subject = registry.get("counter").unwrap();
    for seed in 0..200 {
        let generated = subject.generate(seed, &GenerateOptions::default());
        let parsed = print_and_parse_back(&registry, generated.as_ref(), &format!("seed {seed}"));
        assert_eq!(parsed.meta(), generated.meta());
        let a = generated.run(RunOptions::default());
        let b = parsed.run(RunOptions::default());
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
    }
}

#[test]
fn a_recorded_schedule_replayed_with_the_same_seed_gives_the_same_trace_hash() {
    let s = parse_scenario(CONTENDED);
    let first = s.run(RunOptions {
        record_schedule: true,
        ..RunOptions::default()
    });
    assert!(!first.schedule.is_empty());
    let replayed = s.run(RunOptions {
        strategy: Some(StrategyChoice::Replay {
            schedule: first.schedule.clone(),
        }),
        record_schedule: true,
        ..RunOptions::default()
    });
    assert_eq!(replayed.trace_hash, first.trace_hash, "bit for bit");
    assert_eq!(replayed.schedule, first.schedule);
    // A schedule that differs in one decision is another run.
    let mut changed = first.schedule.clone();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == 0 { 1 } else { 0 };
    let diverged = s.run(RunOptions {
        strategy: Some(StrategyChoice::Replay { schedule: changed }),
        ..RunOptions::default()
    });
    assert_ne!(diverged.trace_hash, first.trace_hash);
}

#[test]
fn a_thread_spawned_and_never_joined_is_a_leak_of_a_thread() {
    let text = CONTENDED.replace(r#"{ op = "join", thread = "b" },"#, "");
    assert_ne!(text, CONTENDED, "the fixture joins thread b");
    let outcome = parse_scenario(&text).run(RunOptions::default());
    let signatures = outcome.signatures();
    assert!(
        signatures.iter().any(|s| s.starts_with("leak:thread:")),
        "{signatures:?}"
    );
    assert!(
        parse_scenario(CONTENDED)
            .run(RunOptions::default())
            .passed()
    );
}

/// The determinism wrapper: a subject that reads state from outside the simulation (a process-wide
/// counter standing in for the clock or OS randomness) gives two traces, and the wrapper says so;
/// the built-in subjects do not.
mod determinism {
    use std::sync::atomic::{AtomicU64, Ordering};

    use arbitrary::Arbitrary;
    use serde::{Deserialize, Serialize};
    use sim::findings::{Finding, FindingKind, OpRef};
    use sim::os::{Os, Tid};
    use sim::subject::{Config, Step, Subject, SubjectInfo};

    static OUTSIDE: AtomicU64 = AtomicU64::new(0);
    /// `grow`'s own count of its calls, apart from `touch`'s.
    static GROW_CALLS: AtomicU64 = AtomicU64::new(0);

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
    #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum FlakyOp {
        Touch,
        Noop,
        /// Allocates a block whose size follows the count of `grow` calls: a run with one
        /// `grow` differs from the run before, whatever runs in between.
        Grow,
    }

    pub struct Flaky;

    impl Subject for Flaky {
        type Op = FlakyOp;
        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "flaky",
                summary: "reads a process-wide counter: not a function of its seed",
                ops: vec![],
                defects: vec![],
                caches: vec![],
                params: vec![],
                host_backed: false,
            }
        }
        fn new(_os: &mut Os, _config: &Config) -> Self {
            Flaky
        }
        fn op_name(op: &FlakyOp) -> &'static str {
            match op {
                FlakyOp::Touch => "touch",
                FlakyOp::Noop => "noop",
                FlakyOp::Grow => "grow",
            }
        }
        fn apply(&mut self, os: &mut Os, _tid: Tid, op: &FlakyOp) -> Step<Self> {
            let bytes = match op {
                FlakyOp::Noop => return Step::Done,
                FlakyOp::Touch => 8 + OUTSIDE.fetch_add(1, Ordering::Relaxed) % 2 * 8,
                FlakyOp::Grow => 16 * (1 + GROW_CALLS.fetch_add(1, Ordering::Relaxed) % 64),
            };
            let block = os.malloc(bytes, "flaky").unwrap();
            os.free(block, "flaky").unwrap();
            Step::Done
        }
    }

    /// The op a determinism finding names as the last one started before the traces part, as
    /// data (`details[].op`), as every other finding names an op.
    fn last_op_started(finding: &Finding) -> &OpRef {
        finding
            .details
            .iter()
            .find(|d| d.label == "last op started")
            .and_then(|d| d.op.as_ref())
            .unwrap_or_else(|| panic!("the last op started is not named as an op: {finding:#?}"))
    }

    const FLAKY: &str = r#"
name = "flaky"
subject = "flaky"

[[lifecycle]]
name = "once"
ops = [{ op = "noop" }, { op = "touch" }, { op = "noop" }]
"#;

    #[test]
    fn check_determinism_reports_a_subject_that_reads_outside_state() {
        let scenario = sim::scenario::parse::parse::<Flaky>("flaky.toml", FLAKY).unwrap();
        let finding = sim::runner::check_determinism::<Flaky>(&scenario, None)
            .expect("two runs differ in the block size they allocate");
        assert_eq!(finding.kind, FindingKind::Determinism);
        assert!(
            finding.headline.contains("differ: trace"),
            "{}",
            finding.headline
        );
        // Two more runs, traced side by side, part at the allocation whose size the counter
        // chose, and the finding says so: the event, each run's version of it, and the op.
        let detail = |label: &str| {
            finding
                .detail_text(label)
                .unwrap_or_else(|| panic!("no `{label}` detail in {finding:#?}"))
        };
        assert!(
            detail("traces part at").starts_with("event #"),
            "{finding:#?}"
        );
        let (first, second) = (detail("traced run 1"), detail("traced run 2"));
        assert_ne!(first, second);
        for line in [&first, &second] {
            assert!(line.contains("\"ev\":\"heap.malloc\""), "{line}");
        }
        assert!(
            first.contains("\"b\":8") != second.contains("\"b\":8"),
            "{first} / {second}"
        );
        assert!(
            detail("last op started").contains("\"op\":\"touch\""),
            "{finding:#?}"
        );
        // That op as data, as every other finding names an op (`details[].op`), so that a
        // report points at it in the file: the second op of the lifecycle's `ops`. The finding
        // is placed where the traces part.
        let last_op = last_op_started(&finding);
        assert_eq!(
            (last_op.name.as_str(), last_op.list, last_op.index),
            ("touch", sim::findings::OpList::Ops, 2)
        );
        assert_eq!((last_op.lifecycle, last_op.repetition), (0, 0));
        assert!(finding.position_known, "{finding:#?}");
        let counter = sim::scenario::parse::parse::<sim::subjects::counter::Counter>(
            "c.toml",
            super::CONTENDED,
        )
        .unwrap();
        assert!(
            sim::runner::check_determinism::<sim::subjects::counter::Counter>(&counter, None)
                .is_none()
        );
    }

    /// Where the traces part in an op of the setup, or of a thread the teardown spawned, the
    /// finding is placed in that list, as the op is, not in a repetition.
    #[test]
    fn check_determinism_places_a_finding_of_a_setup_or_teardown_op_in_its_list() {
        use sim::findings::OpList;
        let scenario = |lists: &str| {
            format!(
                r#"
name = "flaky"
subject = "flaky"
[[lifecycle]]
name = "l"
repeat = 2
ops = [{{ op = "noop" }}]
{lists}
[[lifecycle.thread]]
name = "t"
ops = [{{ op = "noop" }}, {{ op = "touch" }}]
"#
            )
        };
        for (lists, list, during) in [
            (
                r#"setup = [{ op = "noop" }, { op = "touch" }]"#,
                OpList::Setup,
                OpList::Setup,
            ),
            (
                r#"teardown = [{ op = "spawn", thread = "t" }, { op = "join", thread = "t" }]"#,
                OpList::Thread,
                OpList::Teardown,
            ),
        ] {
            let text = scenario(lists);
            let scenario = sim::scenario::parse::parse::<Flaky>("flaky.toml", &text).unwrap();
            let finding = sim::runner::check_determinism::<Flaky>(&scenario, None)
                .expect("two runs differ in the block size they allocate");
            let last_op = last_op_started(&finding);
            assert_eq!(
                (last_op.name.as_str(), last_op.list, last_op.during),
                ("touch", list, Some(during)),
                "{lists}: {finding:#?}"
            );
            assert_eq!(finding.during, Some(during), "{lists}: {finding:#?}");
        }
    }

    /// Where the traces part after an op of a spawned thread, the finding's op names its
    /// declared thread (what finds it in the file): from the spawn that started the thread,
    /// here the second lifecycle's `w` (tid 3), not the first lifecycle's, nor `v`.
    #[test]
    fn check_determinism_names_the_declared_thread_of_the_last_op() {
        let text = super::support::spawned_threads_scenario("flaky");
        let scenario = sim::scenario::parse::parse::<Flaky>("threads.toml", &text).unwrap();
        let finding = sim::runner::check_determinism::<Flaky>(&scenario, None)
            .expect("two runs differ in the block size they allocate");
        let last_op = last_op_started(&finding);
        assert_eq!(
            (last_op.name.as_str(), last_op.list, last_op.index),
            ("grow", sim::findings::OpList::Thread, 2)
        );
        assert_eq!((last_op.lifecycle, last_op.thread), (1, 3));
        assert_eq!(last_op.thread_name.as_deref(), Some("w"), "{finding:#?}");
    }
}

/// A panicking subject is a `panic` finding with its message and where it happened, not a crash
/// of the tool: in an op, in the constructor (which reads `[config]`), in its invariant check and
/// in its drop.
mod panics {
    use arbitrary::Arbitrary;
    use serde::{Deserialize, Serialize};
    use sim::findings::FindingKind;
    use sim::os::{Os, Tid};
    use sim::runner::RunOptions;
    use sim::subject::{BoolParam, Config, Step, Subject, SubjectInfo};

    /// `sim run FILE --repro-dir DIR` through the CLI with `Brittle` registered: its exit code.
    fn brittle_cli_run(file: &std::path::Path, dir: &std::path::Path) -> i32 {
        sim::cli::main_with_args(
            sim::registry::Registry::builtin().with(sim::registry::erase::<Brittle>()),
            [
                "sim".to_string(),
                "run".into(),
                file.display().to_string(),
                "--repro-dir".into(),
                dir.display().to_string(),
            ],
        )
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
    #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum BrittleOp {
        Fine,
        Break,
        /// Allocates and frees a block: a call that an `alloc` fault can fail.
        Alloc,
        /// Panics in `validate`: a bug outside any run, which the CLI reports as internal.
        BreakValidation,
        /// Panics in `op_name`: the subject's code, called by the runner at every op.
        Unnamed,
        /// Blocks for good, with a continuation whose captured value panics when dropped.
        BlockForever,
    }

    /// Captured by `block-forever`'s continuation, which never runs: its drop panics.
    struct PanicsWhenDropped;

    impl Drop for PanicsWhenDropped {
        fn drop(&mut self) {
            panic!("the captured value broke");
        }
    }

    pub struct Brittle {
        panic_in_check_invariants: bool,
        panic_in_drop: bool,
    }

    /// How many times `Brittle::new` tries its malloc before it gives up.
    const BRITTLE_NEW_ALLOC_TRIES_MAX: u32 = 64;

    const FAIL_IN_NEW: BoolParam = BoolParam {
        name: "fail_in_new",
        summary: "panic in `new`",
        default: false,
    };

    const PANIC_IN_CHECK_INVARIANTS: BoolParam = BoolParam {
        name: "panic_in_check_invariants",
        summary: "panic in `check_invariants`",
        default: false,
    };

    const PANIC_IN_DROP: BoolParam = BoolParam {
        name: "panic_in_drop",
        summary: "panic when dropped",
        default: false,
    };

    const HUGE_MALLOC_IN_NEW: BoolParam = BoolParam {
        name: "huge_malloc_in_new",
        summary: "ask for more than any heap in `new`: a budget finding of the OS's, which stops the run",
        default: false,
    };

    const DOUBLE_FREE_IN_NEW: BoolParam = BoolParam {
        name: "double_free_in_new",
        summary: "free a block twice in `new`: an invariant finding of the OS's",
        default: false,
    };

    impl Subject for Brittle {
        type Op = BrittleOp;
        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "brittle",
                summary: "panics on `break`, or in `new` when [config] says so",
                ops: vec![],
                defects: vec![],
                caches: vec![],
                params: vec![
                    FAIL_IN_NEW.decl(),
                    DOUBLE_FREE_IN_NEW.decl(),
                    HUGE_MALLOC_IN_NEW.decl(),
                    PANIC_IN_CHECK_INVARIANTS.decl(),
                    PANIC_IN_DROP.decl(),
                ],
                host_backed: false,
            }
        }
        fn new(os: &mut Os, config: &Config) -> Self {
            if config.flag(&DOUBLE_FREE_IN_NEW) {
                // Retried until it succeeds, so that a file with `alloc` faults has faults
                // injected in `new`; bounded, so that a fault that always fires ends the test.
                let block = (0..BRITTLE_NEW_ALLOC_TRIES_MAX)
                    .find_map(|_| os.malloc(8, "brittle_new").ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "`new`'s malloc failed {BRITTLE_NEW_ALLOC_TRIES_MAX} times in a row: \
                             is the `alloc` fault's probability 1?"
                        )
                    });
                os.free(block, "brittle_new").unwrap();
                let _ = os.free(block, "brittle_new");
            }
            if config.flag(&HUGE_MALLOC_IN_NEW) {
                let _ = os.malloc(u64::MAX, "brittle_new");
            }
            assert!(!config.flag(&FAIL_IN_NEW), "bad [config]");
            Brittle {
                panic_in_check_invariants: config.flag(&PANIC_IN_CHECK_INVARIANTS),
                panic_in_drop: config.flag(&PANIC_IN_DROP),
            }
        }
        fn op_name(op: &BrittleOp) -> &'static str {
            match op {
                BrittleOp::Fine => "fine",
                BrittleOp::Break => "break",
                BrittleOp::Alloc => "alloc",
                BrittleOp::BreakValidation => "break-validation",
                BrittleOp::Unnamed => panic!("the naming broke"),
                BrittleOp::BlockForever => "block-forever",
            }
        }
        fn apply(&mut self, os: &mut Os, _tid: Tid, op: &BrittleOp) -> Step<Self> {
            assert!(*op != BrittleOp::Break, "the subject broke");
            if *op == BrittleOp::BlockForever {
                let captured = PanicsWhenDropped;
                let reason = sim::os::BlockReason::Subject {
                    what: "nothing",
                    id: 0,
                };
                return Step::block(reason, move |_, _, _| {
                    drop(captured);
                    Step::Done
                });
            }
            if *op == BrittleOp::Alloc
                && let Ok(block) = os.malloc(8, "brittle_alloc")
            {
                os.free(block, "brittle_alloc").unwrap();
            }
            Step::Done
        }
        fn validate(op: &BrittleOp, _names: &mut sim::subject::Names) -> Result<(), String> {
            assert!(*op != BrittleOp::BreakValidation, "validation broke");
            Ok(())
        }
        fn check_invariants(&self, _os: &Os) -> Vec<String> {
            assert!(!self.panic_in_check_invariants, "the invariant check broke");
            Vec::new()
        }
    }

    impl Drop for Brittle {
        fn drop(&mut self) {
            assert!(!self.panic_in_drop, "the drop broke");
        }
    }

    fn run(text: &str) -> sim::runner::Outcome {
        let scenario = sim::scenario::parse::parse::<Brittle>("brittle.toml", text).unwrap();
        sim::runner::run::<Brittle>(&scenario, RunOptions::default())
    }

    #[test]
    fn a_panic_in_an_op_or_in_new_is_a_panic_finding_saying_where() {
        let in_op = run(r#"
name = "b"
subject = "brittle"
[[lifecycle]]
name = "l"
ops = [{ op = "fine" }, { op = "break" }, { op = "fine" }]
"#);
        assert_eq!(in_op.findings.len(), 1, "{:?}", in_op.findings);
        let finding = &in_op.findings[0];
        assert_eq!(finding.kind, FindingKind::Panic);
        assert!(
            finding.headline.contains("the subject broke"),
            "{}",
            finding.headline
        );
        let during = finding.detail_text("during").unwrap();
        assert!(during.contains("op #2 `break`"), "{during}");
        // The op as data too, for the report to point at it in the file.
        let op = finding.details[0]
            .op
            .as_ref()
            .expect("the op it panicked in");
        assert_eq!(
            (op.list, op.index, op.name.as_str()),
            (sim::findings::OpList::Ops, 2, "break")
        );

        let in_new = run(r#"
name = "b"
subject = "brittle"
[config]
fail_in_new = true
[[lifecycle]]
name = "l"
ops = [{ op = "fine" }]
"#);
        assert_eq!(in_new.findings.len(), 1, "{:?}", in_new.findings);
        assert_eq!(in_new.findings[0].kind, FindingKind::Panic);
        let during = in_new.findings[0].detail_text("during").unwrap();
        assert!(during.contains("`brittle::new`"), "{during}");
        assert_eq!(in_new.findings[0].details[0].op, None, "no op has run");
        assert_eq!(in_new.ops, 0);
    }

    /// A finding the OS reports while `new` runs (a double free) is placed as the runner places
    /// its own there (the panic of `new`): in the subject's `new`, before any list of the first
    /// lifecycle, so neither `during` its setup, whether it has one or not, nor in its first
    /// repetition.
    #[test]
    fn a_finding_the_os_reports_in_new_is_placed_as_the_runners_are_not_in_the_setup() {
        for config in ["double_free_in_new = true", "fail_in_new = true"] {
            for setup in ["", r#"setup = [{ op = "fine" }]"#] {
                let outcome = run(&format!(
                    r#"
name = "b"
subject = "brittle"
[config]
{config}
[[lifecycle]]
name = "l"
repeat = 3
{setup}
ops = [{{ op = "fine" }}]
"#
                ));
                assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
                let finding = &outcome.findings[0];
                assert_eq!(finding.during, None, "{config} {setup}: {finding:#?}");
                assert!(finding.in_new, "{config} {setup}: {finding:#?}");
                let json = sim::report::finding_json(finding, &outcome);
                assert_eq!(json["in_new"], true, "{json}");
                assert_eq!(
                    sim::report::where_noticed(finding, &outcome),
                    "lifecycle `l` (before its first op, in the subject's `new`)",
                    "{config} {setup}"
                );
            }
        }
    }

    /// A finding the OS reports in `new` is reported before the first op runs: it lists the
    /// faults injected in `new`, which it follows, and none of the first op's, which follow it;
    /// and what it noticed is placed in `new`, not in an op #0 of the setup.
    #[test]
    fn a_finding_in_new_lists_the_faults_of_new_and_none_of_the_first_op() {
        let mut faults_in_new = 0;
        for seed in 0..40 {
            let scenario = sim::scenario::parse::parse::<Brittle>(
                "brittle.toml",
                r#"
name = "b"
subject = "brittle"
[config]
double_free_in_new = true
[faults]
alloc = 0.5
[[lifecycle]]
name = "l"
repeat = 2
ops = [{ op = "alloc" }]
"#,
            )
            .unwrap();
            let outcome = sim::runner::run::<Brittle>(
                &scenario,
                RunOptions {
                    seed: Some(seed),
                    ..RunOptions::default()
                },
            );
            let finding = &outcome.findings[0];
            let details = |key: &str| {
                let found = finding.details.iter().filter(move |d| d.label == key);
                found.map(|d| d.text.clone()).collect::<Vec<_>>()
            };
            assert_eq!(
                details("noticed"),
                ["the subject's `new`, before the first op → brittle_new"],
                "seed {seed}: {finding:#?}"
            );
            for injected in details("injected") {
                // Listed, or counted among those too many to list.
                let of_new = injected
                    .starts_with("alloc fault at the subject's `new`, before the first op")
                    || injected.ends_with("earlier fault(s) in the subject's `new`, not listed");
                assert!(of_new, "seed {seed}: {injected}");
                faults_in_new += 1;
            }
        }
        // About half the seeds fail the first op's allocation too, which a finding collected
        // after that op listed as its own.
        assert!(faults_in_new > 0, "no seed injected a fault in `new`");
    }

    /// A panic in the teardown, or in a thread the setup spawned, happened once, outside the
    /// repetitions: the finding and the op it names say which list (`during`), and the report
    /// says so where it would name a repetition. One in a repetition names its repetition.
    #[test]
    fn a_panic_in_a_setup_or_teardown_names_that_list_not_a_repetition() {
        use sim::findings::OpList;
        let lifecycle = |lists: &str| {
            format!(
                r#"
name = "b"
subject = "brittle"
[[lifecycle]]
name = "l"
repeat = 3
{lists}
[[lifecycle.thread]]
name = "t"
ops = [{{ op = "fine" }}, {{ op = "break" }}]
"#
            )
        };
        for (lists, during, list, words) in [
            (
                r#"ops = [{ op = "fine" }]
teardown = [{ op = "fine" }, { op = "break" }]"#,
                Some(OpList::Teardown),
                OpList::Teardown,
                "lifecycle `l` (during its `teardown`)",
            ),
            (
                r#"setup = [{ op = "spawn", thread = "t" }, { op = "join", thread = "t" }]
ops = [{ op = "fine" }]"#,
                Some(OpList::Setup),
                OpList::Thread,
                "lifecycle `l` (during its `setup`)",
            ),
            (
                r#"setup = [{ op = "fine" }]
ops = [{ op = "fine" }, { op = "break" }]"#,
                None,
                OpList::Ops,
                "lifecycle `l` (repetition 1 of 3)",
            ),
        ] {
            let outcome = run(&lifecycle(lists));
            assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
            let finding = &outcome.findings[0];
            assert_eq!(finding.kind, FindingKind::Panic);
            assert_eq!(finding.during, during, "{lists}: {finding:#?}");
            let op = finding.details[0]
                .op
                .as_ref()
                .expect("the op it panicked in");
            assert_eq!((op.list, op.during, op.index), (list, during, 2), "{lists}");
            assert_eq!(sim::report::where_noticed(finding, &outcome), words);
        }
    }

    /// The subject's `check_invariants` and its `drop` are its code as much as an op: a panic
    /// in either is a `panic` finding naming it, which ends the run with the findings before it
    /// kept, and a failing verdict (exit 1); not an internal error of sim's (exit 3).
    #[test]
    fn a_panic_in_check_invariants_or_drop_is_a_panic_finding_naming_it() {
        let file = |config: &str, teardown: &str| {
            format!(
                r#"
name = "b"
subject = "brittle"
[config]
{config}
[[lifecycle]]
name = "l"
repeat = 3
ops = [{{ op = "fine" }}]
{teardown}
"#
            )
        };
        let in_check = run(&file("panic_in_check_invariants = true", ""));
        assert_eq!(
            in_check.signatures(),
            ["panic:subject:check_invariants"],
            "{:?}",
            in_check.findings
        );
        let finding = &in_check.findings[0];
        assert!(
            finding.headline.contains("the invariant check broke"),
            "{finding:?}"
        );
        assert_eq!(
            finding.detail_text("during"),
            Some("`brittle::check_invariants`, after the op list")
        );
        // Checked after the first repetition, whose finding ends the run there.
        assert_eq!((finding.repetition, in_check.ops), (0, 1));
        assert_eq!(
            sim::report::where_noticed(finding, &in_check),
            "lifecycle `l` (repetition 1 of 3)"
        );

        let teardown = r#"teardown = [{ op = "fine" }]"#;
        let in_drop = run(&file("panic_in_drop = true", teardown));
        assert_eq!(
            in_drop.signatures(),
            ["panic:subject:drop"],
            "{:?}",
            in_drop.findings
        );
        let finding = &in_drop.findings[0];
        assert!(finding.headline.contains("the drop broke"), "{finding:?}");
        assert_eq!(
            finding.detail_text("during"),
            Some("`brittle`'s drop, at the end of the run")
        );
        assert_eq!(finding.during, None, "the teardown had ended");
        assert_eq!(in_drop.ops, 4, "every op ran");

        // A run already stopped by a panic drops its subject too: the drop's panic, likely a
        // consequence of the first, is a note on the first finding, not a signature of its own.
        let both = run(&file(
            "panic_in_check_invariants = true\npanic_in_drop = true",
            "",
        ));
        assert_eq!(both.signatures(), ["panic:subject:check_invariants"]);
        assert!(
            both.findings[0]
                .notes
                .iter()
                .any(|note| note == "the subject's drop panicked too, after it: the drop broke"),
            "{:?}",
            both.findings[0].notes
        );

        // Through the CLI: a failing verdict, not an internal error.
        let dir = super::support::scratch_dir("check-invariants-and-drop");
        for config in ["panic_in_check_invariants = true", "panic_in_drop = true"] {
            let path = super::support::write_file(&dir, "b.toml", file(config, ""));
            let code = brittle_cli_run(&path, &dir);
            assert_eq!(code, 1, "{config}");
        }
    }

    /// The subject's `op_name`, which the runner calls at every op, is its code too: a panic
    /// there is a `panic` finding at the op it was naming (site `op_name`), not sim's internal
    /// error (exit 3).
    #[test]
    fn a_panic_in_op_name_is_a_panic_finding_at_the_op() {
        let file = r#"
name = "b"
subject = "brittle"
[[lifecycle]]
name = "l"
repeat = 3
ops = [{ op = "fine" }, { op = "unnamed" }, { op = "fine" }]
"#;
        let outcome = run(file);
        assert_eq!(
            outcome.signatures(),
            ["panic:subject:op_name"],
            "{:?}",
            outcome.findings
        );
        let finding = &outcome.findings[0];
        assert!(finding.headline.contains("the naming broke"), "{finding:?}");
        assert_eq!(finding.detail_text("during"), Some("op #2 `?` on thread 0"));
        let op = finding.details[0]
            .op
            .as_ref()
            .expect("the op it was naming");
        assert_eq!((op.list, op.index), (sim::findings::OpList::Ops, 2));
        assert_eq!(
            sim::report::where_noticed(finding, &outcome),
            "lifecycle `l` (repetition 1 of 3)"
        );
        assert_eq!(outcome.ops, 1, "the op it could not name did not run");

        let dir = super::support::scratch_dir("op-name-panic");
        let path = super::support::write_file(&dir, "b.toml", file);
        let code = brittle_cli_run(&path, &dir);
        assert_eq!(code, 1, "a failing verdict, not an internal error");
    }

    /// The warning of an op that runs after an `exit` names the op, at load time, through the
    /// subject's `op_name`: a panic there names the op by its place and says the subject's code
    /// panicked, with its message, at the op's line and column, and the run goes ahead to report it as a `panic`
    /// finding (exit 1), not sim's internal error (exit 3).
    #[test]
    fn a_panic_in_op_name_when_warning_of_an_op_after_exit_is_said_in_the_warning() {
        let file = r#"
name = "b"
subject = "brittle"
[[lifecycle]]
name = "l"
ops = [{ op = "exit" }, { op = "unnamed" }]
"#;
        let registry = sim::registry::Registry::builtin().with(sim::registry::erase::<Brittle>());
        let scenario = registry
            .parse_bytes("b.toml", file.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let warnings = scenario.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let (message, location) = &warnings[0];
        assert!(
            message.starts_with(
                "op `?` (op #2 of `ops` in lifecycle `l`; subject `brittle`'s own code panicked: its `op_name`, naming it: the naming broke"
            ) && message.contains(") runs after the process exited"),
            "{message}"
        );
        let location = location.as_ref().expect("the op's place in the file");
        assert_eq!((location.line, location.column), (6, 25));

        let dir = super::support::scratch_dir("op-name-panic-after-exit");
        let path = super::support::write_file(&dir, "b.toml", file);
        let code = brittle_cli_run(&path, &dir);
        assert_eq!(code, 1, "the run's panic finding, not an internal error");
    }

    /// A thread still blocked when the run stops keeps its continuation, which the run drops
    /// unrun: what it captured is the subject's, and a panic in its drop is a `panic` finding at
    /// the op that blocked (site `continuation-drop`), not sim's internal error (exit 3); after
    /// an earlier panic finding, a note on that one.
    #[test]
    fn a_panic_in_the_drop_of_a_continuation_left_unrun_is_a_panic_finding() {
        let file = |config: &str| {
            format!(
                r#"
name = "b"
subject = "brittle"
[config]
{config}
[[lifecycle]]
name = "l"
ops = [{{ op = "fine" }}, {{ op = "block-forever" }}]
"#
            )
        };
        let outcome = run(&file(""));
        assert_eq!(
            outcome.signatures(),
            [
                "deadlock:threads:nothing",
                "panic:subject:continuation-drop"
            ],
            "{:?}",
            outcome.findings
        );
        let finding = &outcome.findings[1];
        assert!(
            finding.headline.contains("the captured value broke"),
            "{finding:?}"
        );
        assert_eq!(
            finding.detail_text("during"),
            Some("op #2 `block-forever` on thread 0")
        );

        let after_panic = run(&file("panic_in_drop = true"));
        assert_eq!(
            after_panic.signatures(),
            [
                "deadlock:threads:nothing",
                "panic:subject:continuation-drop"
            ],
        );
        assert!(
            after_panic.findings[1]
                .notes
                .iter()
                .any(|note| note == "the subject's drop panicked too, after it: the drop broke"),
            "{:?}",
            after_panic.findings[1].notes
        );

        let dir = super::support::scratch_dir("continuation-drop-panic");
        let path = super::support::write_file(&dir, "b.toml", file(""));
        let code = brittle_cli_run(&path, &dir);
        assert_eq!(code, 1, "a failing verdict, not an internal error");
    }

    /// A run that a fatal finding of `new` stops before any list still drops its subject: a
    /// panic in that drop is a finding placed after `new`, not in the first repetition, which
    /// never ran (its report read "repetition 1 of 3").
    #[test]
    fn a_panic_in_drop_after_a_run_stopped_in_new_claims_no_repetition() {
        let outcome = run(r#"
name = "b"
subject = "brittle"
[config]
huge_malloc_in_new = true
panic_in_drop = true
[[lifecycle]]
name = "l"
repeat = 3
ops = [{ op = "fine" }]
"#);
        assert_eq!(
            outcome.signatures(),
            [
                "budget:heap address space:brittle_new",
                "panic:subject:drop"
            ],
            "{:?}",
            outcome.findings
        );
        assert_eq!(outcome.ops, 0, "no op ran");
        let finding = &outcome.findings[1];
        assert_eq!(
            finding.detail_text("during"),
            Some(
                "`brittle`'s drop, at the end of a run that stopped after `new`, before any op ran"
            )
        );
        assert!(finding.after_new && !finding.in_new, "{finding:#?}");
        assert_eq!(
            sim::report::where_noticed(finding, &outcome),
            "lifecycle `l` (after the subject's `new`, in a run that stopped before any op)"
        );
        let json = sim::report::finding_json(finding, &outcome);
        assert_eq!(json["after_new"], true, "{json}");
        assert_eq!(json.get("in_new"), None, "{json}");
    }

    /// Exit code 3 is for a command a bug stopped: a panic that escapes every run (here, in a
    /// subject's `validate`, which parsing calls, and which the report says is the subject's bug,
    /// not sim's) ends the command with exit 3, not a crash, and not exit 1 (nothing ran, so
    /// there is no finding) or 2 (the file is not at fault).
    #[test]
    fn a_panic_outside_any_run_is_exit_3_internal_error() {
        let dir = super::support::scratch_dir("exit-3");
        let file = super::support::write_file(
            &dir,
            "break.toml",
            "name = \"b\"\nsubject = \"brittle\"\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"break-validation\" }]\n",
        );
        let run = |file: &std::path::Path| brittle_cli_run(file, &dir);
        assert_eq!(run(&file), 3);
        std::fs::write(
            &file,
            "name = \"b\"\nsubject = \"brittle\"\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"break\" }]\n",
        )
        .unwrap();
        assert_eq!(run(&file), 1, "a panic inside a run is a finding");
    }
}

/// What a run's outcome says, in a form two runs can be compared by: every finding whole, the
/// trace, and the counts.
fn outcome_digest(outcome: &sim::runner::Outcome) -> String {
    format!(
        "findings {:?}\ntrace {:#x} ({} events), steps {}, ops {}, decisions {}, growth {:?}",
        outcome.findings,
        outcome.trace_hash,
        outcome.trace_events,
        outcome.steps,
        outcome.ops,
        outcome.decisions,
        outcome.growth_progress
    )
}

/// An OS made on a thread where others were dropped reuses their storage (`Os::new`); it must
/// run exactly as the first OS of a fresh thread. Each subject's last scenario runs alone on a
/// thread of its own, then again on a thread that ran every other scenario first (with every
/// defect on, so that they leave findings, leaks, threads, fds and locks behind): the outcomes
/// must be the same, finding for finding. It would catch a list kept from one run with something
/// still in it, or a run that reads a kept list's capacity.
#[test]
fn a_run_after_other_runs_on_its_thread_is_the_run_on_a_fresh_thread() {
    let registry = sim::fuzzing::registry();
    for entry in registry.subjects() {
        let info = entry.info();
        if info.host_backed {
            continue;
        }
        let subject = info.name;
        let defects: Vec<String> = info.defects.iter().map(|d| d.name.to_string()).collect();
        let options = GenerateOptions {
            defects: defects.clone(),
            faults: true,
        };
        const SEEDS: u64 = 12;
        let run = move |seed: u64| {
            let entry = sim::fuzzing::registry().get(subject).unwrap();
            let scenario = entry.generate(seed, &options);
            outcome_digest(&scenario.run_in_process(RunOptions::default()))
        };
        let alone = std::thread::spawn({
            let run = run.clone();
            move || run(SEEDS)
        })
        .join()
        .unwrap();
        let (after_others, others_found) = std::thread::spawn(move || {
            let others_found = (0..SEEDS)
                .filter(|&seed| !run(seed).starts_with("findings []"))
                .count();
            (run(SEEDS), others_found)
        })
        .join()
        .unwrap();
        assert!(
            defects.is_empty() || others_found > 0,
            "{subject}: the runs before found nothing, so they tested little"
        );
        assert_eq!(alone, after_others, "{subject}");
    }
}

/// A fault injected while the setup ran is the setup's story, not the first repetition's (whose
/// number the setup's ops carry): the leak of a repetition does not list it, and the finding of
/// what the setup left behind does. The same file is the UI case `counter-setup-fault`.
#[test]
fn a_fault_of_the_setup_is_listed_with_the_setups_finding_and_not_a_repetitions() {
    let text =
        std::fs::read_to_string(support::package_dir().join("tests/ui/counter-setup-fault.toml"))
            .unwrap();
    let outcome = parse_scenario(&text).run(RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        [
            "leak:heap block:counter_create",
            "leak:held lock:counter_lock"
        ]
    );
    let injected = |signature: &str| -> Vec<String> {
        let finding = outcome
            .findings
            .iter()
            .find(|f| f.signature() == signature)
            .unwrap();
        finding.detail_texts("injected").map(String::from).collect()
    };
    let (repetition, setup) = (
        injected("leak:heap block:counter_create"),
        injected("leak:held lock:counter_lock"),
    );
    assert!(repetition.is_empty(), "{repetition:?}");
    assert_eq!(
        setup,
        ["spawn fault at op #1 `spawn` → spawn (lifecycle 1, setup, thread 0)"]
    );
}

/// The runner tells PCT the step each decision starts, so a change point drawn in a long stretch
/// where one thread alone can run still fires, at the first decision after it. Here main bumps 60
/// times before it spawns anything: 60 of the 82 steps are no decision. Counted in decisions, as
/// they once were, a change point fired only when its draw was below the run's two dozen or so
/// decisions, and a spawned thread was preempted in 10 runs of 100 (47 now).
#[test]
fn a_pct_change_point_drawn_where_no_decision_is_made_fires_at_the_next_one() {
    let bumps = "{ op = \"bump\" }, ".repeat(60);
    let text = TWO_BUMPERS.replace(
        "ops = [\n  { op = \"spawn\", thread = \"a\" },",
        &format!("ops = [\n  {bumps}{{ op = \"spawn\", thread = \"a\" }},"),
    );
    assert_ne!(text, TWO_BUMPERS, "main's bumps come before its spawns");
    let s = parse_scenario(&text);
    let preempted_runs = (0..100)
        .filter(|&seed| {
            let outcome = s.run(RunOptions {
                seed: Some(seed),
                strategy: Some(StrategyChoice::pct(2)),
                record_schedule: true,
                ..RunOptions::default()
            });
            assert!(outcome.passed(), "{:?}", outcome.findings);
            assert_eq!(
                outcome.header.schedule,
                StrategyChoice::Pct {
                    depth: 2,
                    steps: Some(82),
                }
            );
            preempted(&outcome.schedule)
        })
        .count();
    assert!(
        preempted_runs >= 30,
        "a spawned thread was preempted in only {preempted_runs} runs of 100"
    );
}
