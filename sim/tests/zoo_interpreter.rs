//! The interpreter's two real bugs (SEED-BUGS.md sections 1 and 2), found by the generic checks
//! alone: in their zoo scenarios, in hand-written neighbours, and in scenarios generated from seeds.

mod support;

use sim::findings::{Finding, FindingKind};
use sim::registry::{DynScenario, Registry};
use sim::runner::{Outcome, RunOptions};
use sim::scenario::generate::GenerateOptions;
use support::{defects_off, parse_scenario, print_and_parse_back, scenario_text};

const GROWTH: &str = "growth:fn ptr id:fn_ptr_cast";
const DEADLOCK: &str = "deadlock:threads:emulated fd readable";

fn run(scenario: &dyn DynScenario, defects: Option<&[&str]>) -> Outcome {
    let defects = defects.map(|list| list.iter().map(|d| d.to_string()).collect());
    scenario.run(RunOptions {
        defects,
        ..RunOptions::default()
    })
}

fn blocked_details(finding: &Finding) -> Vec<&str> {
    finding.detail_texts("blocked").collect()
}

/// A lifecycle's `warmup` is when the growth detector starts comparing: the same 60-iteration
/// loop grows with the default warm-up (16), and shows no trend when the warm-up covers all but
/// the last few repetitions (fewer rises than a trend needs).
#[test]
fn a_longer_warmup_delays_the_growth_check() {
    let text = scenario_text("zoo/fn-ptr-cast-loop.toml").replace("repeat = 10000", "repeat = 60");
    let default = run(&*parse_scenario(&text), None);
    assert_eq!(
        default.signatures(),
        vec![GROWTH],
        "{:#?}",
        default.findings
    );
    assert!(default.findings[0].repetition >= 16);
    let late = text.replace("repeat = 60", "repeat = 60\nwarmup = 56");
    let late = run(&*parse_scenario(&late), None);
    assert!(late.passed(), "{:#?}", late.findings);
}

#[test]
fn fn_ptr_cast_loop_grows_with_the_defect_and_plateaus_at_32_ids_without_it() {
    let text = scenario_text("zoo/fn-ptr-cast-loop.toml");
    assert!(
        text.contains("repeat = 10000"),
        "the zoo loop is the report's 10,000 iterations"
    );
    let scenario = parse_scenario(&text);
    assert_eq!(scenario.meta().defects, vec!["fn-ptr-fresh-alloc"]);

    let buggy = run(&*scenario, None);
    assert_eq!(buggy.signatures(), vec![GROWTH], "{:#?}", buggy.findings);
    let growth = &buggy.findings[0];
    assert_eq!(growth.kind, FindingKind::Growth);
    assert!(
        growth.repetition < 100,
        "seen soon after the warm-up, at repetition {}",
        growth.repetition
    );
    assert!(
        growth
            .detail_texts("acquired")
            .any(|text| text.contains("`cast-fn`")),
        "{:?}",
        growth.details
    );
    assert!(
        growth.series.windows(2).all(|w| w[1] == w[0] + 1),
        "one fresh id per iteration: {:?}",
        &growth.series[..20]
    );

    let fixed = run(&*scenario, Some(&[]));
    assert!(
        fixed.passed(),
        "salted ids plateau at 32, and the program's end frees them: {:?}",
        fixed.findings
    );
    assert_eq!(fixed.ops, 2 * 10_000 + 2);
}

#[test]
fn blocked_read_close_deadlocks_with_the_defect_and_the_read_completes_without_it() {
    let scenario = parse_scenario(&scenario_text("zoo/blocked-read-close.toml"));
    assert_eq!(scenario.meta().defects, vec!["blocked-read-weak-ref"]);

    let buggy = run(&*scenario, None);
    assert_eq!(buggy.signatures(), vec![DEADLOCK], "{:#?}", buggy.findings);
    let blocked = blocked_details(&buggy.findings[0]);
    assert_eq!(blocked.len(), 2, "{blocked:?}");
    assert!(
        blocked
            .iter()
            .any(|b| b.contains("`main`") && b.contains("joining thread")),
        "{blocked:?}"
    );
    assert!(
        blocked
            .iter()
            .any(|b| b.contains("`reader`") && b.contains("waiting for emulated fd readable")),
        "{blocked:?}"
    );

    let fixed = run(&*scenario, Some(&[]));
    assert!(
        fixed.passed(),
        "the peer's write completes the blocked read; everything is back to baseline: {:?}",
        fixed.findings
    );
}

const TWO_READERS: &str = r#"
name = "two-readers-one-write"
subject = "interpreter"
seed = 5

[config]
blocking = "linux"

[[lifecycle]]
name = "readers"
ops = [
  { op = "pipe", read = 0, write = 1 },
  { op = "spawn", thread = "a" },
  { op = "spawn", thread = "b" },
  { op = "sleep", ticks = 1 },
  { op = "write", fd = 1, bytes = 4 },
  SECOND_WRITE
  { op = "join", thread = "a" },
  { op = "join", thread = "b" },
]
teardown = [{ op = "end-program" }]

[[lifecycle.thread]]
name = "a"
ops = [{ op = "read", fd = 0, bytes = 4 }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "read", fd = 0, bytes = 4 }]
"#;

#[test]
fn two_blocked_readers_and_one_write_one_completes_and_the_other_blocks_again() {
    let one_write = parse_scenario(&TWO_READERS.replace("SECOND_WRITE", ""));
    for seed in 0..8 {
        let outcome = one_write.run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        assert_eq!(
            outcome.signatures(),
            vec![DEADLOCK],
            "seed {seed}: {:?}",
            outcome.findings
        );
        let blocked = blocked_details(&outcome.findings[0]);
        let readers: Vec<&&str> = blocked
            .iter()
            .filter(|b| b.contains("waiting for emulated fd readable"))
            .collect();
        assert_eq!(
            readers.len(),
            1,
            "seed {seed}: exactly one reader is left waiting: {blocked:?}"
        );
    }
    let two_writes = parse_scenario(
        &TWO_READERS.replace("SECOND_WRITE", r#"{ op = "write", fd = 1, bytes = 4 },"#),
    );
    for seed in 0..8 {
        let outcome = two_writes.run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        assert!(
            outcome.passed(),
            "seed {seed}: the second write wakes the reader that blocked again: {:?}",
            outcome.findings
        );
    }
}

const VTABLES: &str = r#"
name = "vtable-loop"
subject = "interpreter"
defects = ["fn-ptr-fresh-alloc", "blocked-read-weak-ref", "host-fn-fresh-alloc"]
seed = 3

[[lifecycle]]
name = "casts"
repeat = 400
ops = [
  { op = "vtable-cast", ty = 1, trait = 2, ptr = 0 },
  { op = "vtable-cast", ty = 3, trait = 0, ptr = 1 },
  { op = "ptr-to-int", ptr = 0 },
  FN_CAST
]
teardown = [{ op = "end-program" }]
"#;

#[test]
fn vtable_casts_are_bounded_like_salted_functions_while_fresh_fn_ids_grow() {
    let vtables = parse_scenario(&VTABLES.replace("FN_CAST", ""));
    let outcome = run(&*vtables, None);
    assert!(
        outcome.passed(),
        "32 salts per (type, trait), whatever the defects: {:?}",
        outcome.findings
    );

    let with_fn = VTABLES.replace("FN_CAST", r#"{ op = "declare-fn", fn = 1, kind = "inlinable" }, { op = "cast-fn", fn = 1, ptr = 2 },"#);
    let outcome = run(&*parse_scenario(&with_fn), None);
    assert_eq!(
        outcome.signatures(),
        vec![GROWTH],
        "an inlinable function is not unique either"
    );
    let unique = with_fn.replace("inlinable", "never-inline");
    assert!(
        run(&*parse_scenario(&unique), None).passed(),
        "a never-inline function always has one id"
    );
    let host = with_fn.replace("inlinable", "host");
    assert_eq!(
        run(&*parse_scenario(&host), None).signatures(),
        vec![GROWTH],
        "host functions still mint an id per cast upstream"
    );
    assert!(
        run(&*parse_scenario(&host), Some(&["fn-ptr-fresh-alloc"])).passed(),
        "with that neighbour defect off, they are salted"
    );
}

#[test]
fn the_basic_scenario_passes_and_its_blocked_consumer_is_lost_with_the_weak_ref_defect() {
    let scenario = parse_scenario(&scenario_text("interpreter-basic.toml"));
    let clean = run(&*scenario, None);
    assert!(clean.passed(), "{:?}", clean.findings);
    assert!(clean.ops > 40 * 20, "the whole program ran 40 times");
    // The producer's exit closes the consumer's end first: with a weak reference, nobody is left
    // to wake the consumer when the producer's end closes.
    let buggy = run(&*scenario, Some(&["blocked-read-weak-ref"]));
    assert_eq!(buggy.signatures(), vec![DEADLOCK]);
    assert!(
        blocked_details(&buggy.findings[0])
            .iter()
            .any(|b| b.contains("`consumer`"))
    );
}

fn generated(seed: u64, defects: &[&str]) -> Box<dyn DynScenario> {
    let options = GenerateOptions {
        defects: defects.iter().map(|d| d.to_string()).collect(),
        faults: false,
    };
    Registry::builtin()
        .get("interpreter")
        .unwrap()
        .generate(seed, &options)
}

#[test]
fn generated_programs_find_nothing_with_defects_off() {
    for seed in 0..2000 {
        let outcome = generated(seed, &[]).run(RunOptions::default());
        assert!(
            outcome.passed(),
            "seed {seed}: {:?}\n{}",
            outcome.findings,
            generated(seed, &[]).to_toml().unwrap()
        );
    }
}

#[test]
fn generated_programs_find_the_lost_blocked_reader() {
    let found: Vec<u64> = (0..300)
        .filter(|&seed| {
            generated(seed, &["blocked-read-weak-ref"])
                .run(RunOptions::default())
                .signatures()
                == vec![DEADLOCK]
        })
        .collect();
    // Seeds 11, 98, 103, 159 and 283 find it with today's generator; any is enough.
    assert!(
        !found.is_empty(),
        "no generated program of 300 lost a blocked reader"
    );
    let first = generated(found[0], &["blocked-read-weak-ref"]);
    assert!(
        first.run(defects_off()).passed(),
        "the same program passes without the defect"
    );
}

/// Growth needs a long lifecycle: a warm-up (at most 16), then 8 rises and more than 32 ids per
/// function. The generator draws repeats up to 96 so that it can show: over 600 seeds some
/// programs have such lifecycles, and the generic growth check finds the fresh ids in them (the
/// sweep finds the first at seed 172 or so; `make detect` measures it).
#[test]
fn generated_programs_find_fresh_fn_ptr_ids_when_a_lifecycle_repeats_long_enough() {
    let mut long = 0;
    let mut found = 0;
    for seed in 0..600 {
        let outcome = generated(seed, &["fn-ptr-fresh-alloc"]).run(RunOptions::default());
        if outcome.lifecycle_repeats.iter().any(|&repeat| repeat >= 64) {
            long += 1;
        }
        if outcome.signatures().contains(&GROWTH.to_string()) {
            found += 1;
            assert!(
                outcome.lifecycle_repeats.iter().any(|&repeat| repeat >= 32),
                "growth needs repetitions"
            );
            assert!(
                generated(seed, &[]).run(RunOptions::default()).passed(),
                "seed {seed}: the same program passes without the defect"
            );
        }
    }
    assert!(
        long > 10,
        "the generator makes long lifecycles ({long} in 600 seeds)"
    );
    assert!(
        found > 0,
        "{long} generated programs had long lifecycles, and none grew fn ptr ids"
    );
}

#[test]
fn generated_programs_print_back_and_replay_bit_for_bit() {
    let registry = Registry::builtin();
    for seed in 0..100 {
        let original = generated(seed, &["blocked-read-weak-ref"]);
        let parsed = print_and_parse_back(&registry, original.as_ref(), &format!("seed {seed}"));
        assert_eq!(
            original.run(RunOptions::default()).trace_hash,
            parsed.run(RunOptions::default()).trace_hash,
            "seed {seed}"
        );
    }
}

#[test]
fn hand_written_mistakes_get_clear_errors() {
    let error = |text: &str| {
        Registry::builtin()
            .parse("bad.toml", text)
            .expect_err("rejected")
            .to_string()
    };
    let head = "name = \"x\"\nsubject = \"interpreter\"\n[[lifecycle]]\nname = \"l\"\nops = [";
    assert!(
        error(&format!("{head}{{ op = \"read\", fd = 1, bytes = 1 }}]"))
            .contains("fd slot `1` is used before any op defines it")
    );
    assert!(
        error(&format!("{head}{{ op = \"pipe\", read = 1, write = 9 }}]")).contains("out of range")
    );
    assert!(
        error(&format!("{head}{{ op = \"pipe\", read = 2, write = 2 }}]"))
            .contains("two different slots")
    );
    assert!(
        error(&format!("{head}{{ op = \"cast-fn\", fn = 0, ptr = 0 }}]")).contains("function `0`")
    );
}
