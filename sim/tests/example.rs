//! The bump allocator example (`sim/examples/bump_allocator.rs`), written against the public API
//! as a user would, keeps working: its defect is found by the generic leak check and vanishes with
//! the defect off, and the `sim` CLI runs its scenarios once the subject is registered.

mod support;

#[allow(dead_code)]
#[path = "../examples/bump_allocator.rs"]
mod bump_allocator;

use std::path::Path;

use bump_allocator::{BumpAllocator, BumpOp};
use sim::cli::main_with_args;
use sim::registry::Registry;
use sim::runner::RunOptions;
use sim::scenario::generate::GenerateOptions;
use sim::subject::Subject;
use support::{defects_off, scratch_dir};

fn example_scenario() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/bump_allocator.toml")
        .display()
        .to_string()
}

#[test]
fn the_demo_finds_the_leaked_overflow_chunk_and_passes_without_the_defect() {
    let (with_defect, without) = bump_allocator::demo();
    assert_eq!(
        with_defect.signatures(),
        vec![
            "leak:reservation:bump_chunk_reserve",
            "leak:committed pages:bump_commit"
        ]
    );
    let leak = &with_defect.findings[0];
    assert_eq!(leak.repetition, 0, "noticed after the first repetition");
    assert!(
        leak.details
            .iter()
            .any(|d| d.label == "acquired" && d.text.contains("op #7 `alloc`")),
        "the report names the op that reserved the overflow chunk: {:?}",
        leak.details
    );
    assert!(without.passed(), "{:?}", without.signatures());
    assert_eq!(without.ops, with_defect.ops, "the same ops ran");
}

#[test]
fn generated_scenarios_pass_without_the_defect_and_reach_it_with_it() {
    // Every generated lifecycle ends with the example's `closing_ops` (destroy each arena it
    // created), so a correct allocator passes every check, leaks included, with or without
    // injected faults; and the defect shows up as findings the same scenario without it lacks.
    let registry = bump_allocator::registry();
    let subject = registry.get("bump-allocator").expect("registered");
    let mut defect_seen = 0;
    for seed in 0..80 {
        let on = GenerateOptions {
            defects: vec!["leak-overflow-chunks".into()],
            faults: seed % 2 == 1,
        };
        let scenario = subject.generate(seed, &on);
        let without = scenario.run(defects_off());
        assert!(
            without.passed(),
            "seed {seed}: {:?}\n{}",
            without.signatures(),
            scenario.to_toml()
        );
        let with = scenario.run(RunOptions::default());
        if !with.passed() {
            defect_seen += 1;
        }
    }
    assert!(
        defect_seen >= 3,
        "generated scenarios reach the defect: {defect_seen} of 80"
    );
}

/// A fuzz target or property test of the user's own (`sim::fuzzing::run_subject_bytes`): bytes
/// decode into scenarios of the example's subject, which pass with the defect off; with it on,
/// some fail, and the report's scenario, saved as a file, replays through the user's CLI.
#[test]
fn fuzz_bytes_run_the_example_subject_and_a_failure_replays_through_its_cli() {
    let defect = vec!["leak-overflow-chunks".to_string()];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut failures = Vec::new();
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..256)
            .map(|_| {
                // xorshift64: fixed inputs, the same on every run.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        if let Err(report) = sim::fuzzing::run_subject_bytes::<BumpAllocator>(&bytes, &[]) {
            panic!("defect off: {report}");
        }
        if let Err(report) = sim::fuzzing::run_subject_bytes::<BumpAllocator>(&bytes, &defect) {
            failures.push(report);
        }
    }
    let report = failures
        .first()
        .expect("some inputs reach `leak-overflow-chunks`");
    assert!(
        report.contains("in subject `bump-allocator` (defects: leak-overflow-chunks)"),
        "{report}"
    );
    let marker = "replay it with your binary's `replay`):\n";
    let pinned = &report[report.find(marker).expect(marker) + marker.len()..];
    let file = scratch_dir("fuzz-bytes").join("input.toml");
    std::fs::write(&file, pinned).unwrap();
    let file = file.display().to_string();
    assert_eq!(
        main_with_args(bump_allocator::registry(), ["sim", "replay", file.as_str()]),
        1,
        "the pinned scenario replays to its findings and trace hash"
    );
}

#[test]
fn hand_written_ops_on_an_arena_never_created_are_refused() {
    let mut names = sim::subject::Names::default();
    let alloc = BumpOp::Alloc { arena: 1, bytes: 8 };
    assert!(BumpAllocator::validate(&alloc, &mut names).is_err());
    BumpAllocator::validate(&BumpOp::Create { arena: 5 }, &mut names).unwrap();
    assert!(
        BumpAllocator::validate(&alloc, &mut names).is_ok(),
        "arena 5 wraps to 1"
    );
    let text = std::fs::read_to_string(example_scenario())
        .unwrap()
        .replace("{ op = \"create\", arena = 0 },", "");
    let error = bump_allocator::registry()
        .parse("no-create.toml", &text)
        .unwrap_err();
    assert!(
        error
            .message
            .contains("arena `0` is used before any op defines it"),
        "{error}"
    );
}

#[test]
fn the_cli_runs_the_example_subject_once_it_is_registered() {
    let file = example_scenario();
    let dir = scratch_dir("cli");
    let args = |rest: &[&str]| {
        let mut all = vec!["sim".to_string()];
        all.extend(rest.iter().map(|s| s.to_string()));
        all
    };

    // The built-in registry does not know the subject: bad input, exit 2.
    assert_eq!(
        main_with_args(Registry::builtin(), args(&["replay", &file])),
        2
    );
    // Registered, the scenario runs and its finding is exit 1.
    assert_eq!(
        main_with_args(bump_allocator::registry(), args(&["replay", &file])),
        1
    );
    assert_eq!(
        main_with_args(bump_allocator::registry(), args(&["list", "--json"])),
        0
    );

    // Shrink to a repro, then replay it: the same findings and trace hash as recorded.
    let out = dir.join("small.toml").display().to_string();
    assert_eq!(
        main_with_args(
            bump_allocator::registry(),
            args(&["shrink", &file, "--out", &out])
        ),
        1
    );
    let small = bump_allocator::registry()
        .parse(&out, &std::fs::read_to_string(&out).unwrap())
        .unwrap();
    assert!(small.meta().op_count < 8, "{}", small.to_toml());
    assert_eq!(
        main_with_args(bump_allocator::registry(), args(&["replay", &out])),
        1
    );
    let outcome = small.run(RunOptions::default());
    let expect = small.meta().expect.unwrap();
    assert_eq!(outcome.signatures(), expect.signatures);
    assert_eq!(
        Some(sim::seed::format_seed(outcome.trace_hash)),
        expect.trace_hash
    );
}

#[test]
fn a_subject_from_another_crate_declares_its_config_and_the_parser_checks_it() {
    let scenario = |config: &str| {
        format!(
            "name = \"c\"\nsubject = \"bump-allocator\"\n\n[config]\n{config}\n\n\
             [[lifecycle]]\nname = \"l\"\nops = [{{ op = \"create\", arena = 0 }}]\n"
        )
    };
    let registry = bump_allocator::registry();
    assert!(
        registry
            .parse("ok.toml", &scenario("chunk_bytes = 8192"))
            .is_ok()
    );
    let Err(error) = registry.parse("small.toml", &scenario("chunk_bytes = 100")) else {
        panic!("a chunk below a page is refused");
    };
    assert_eq!(error.location(), "small.toml:5:15");
    assert!(
        error
            .message
            .contains("`chunk_bytes` must be an integer in 4096..=")
    );
    let Err(error) = registry.parse("typo.toml", &scenario("chunk_size = 8192")) else {
        panic!("an unknown key is refused");
    };
    assert!(
        error.message.contains("known: chunk_bytes"),
        "{}",
        error.message
    );
}

/// `check_description` is what a subject's own tests call: the example passes it, and a subject
/// whose `op_name` and op docs drifted from its serde tags does not.
#[test]
fn check_description_passes_the_example_and_names_what_drifted() {
    sim::subject::check_description::<BumpAllocator>().unwrap();

    #[derive(
        Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, arbitrary::Arbitrary,
    )]
    #[serde(tag = "op", rename_all = "kebab-case")]
    enum DriftOp {
        Open { slot: u8 },
        Close { slot: u8 },
    }
    struct Drifted;
    impl Subject for Drifted {
        type Op = DriftOp;
        fn info() -> sim::subject::SubjectInfo {
            sim::subject::SubjectInfo {
                name: "drifted",
                ops: vec![sim::subject::OpDoc {
                    name: "open",
                    summary: "open `slot`",
                }],
                ..Default::default()
            }
        }
        fn new(_: &mut sim::os::Os, _: &sim::subject::Config) -> Self {
            Drifted
        }
        fn op_name(op: &DriftOp) -> &'static str {
            match op {
                DriftOp::Open { .. } => "open",
                DriftOp::Close { .. } => "klose",
            }
        }
        fn apply(
            &mut self,
            _: &mut sim::os::Os,
            _: sim::os::Tid,
            _: &DriftOp,
        ) -> sim::subject::Step<Self> {
            sim::subject::Step::Done
        }
    }
    let problems = sim::subject::check_description::<Drifted>().unwrap_err();
    assert!(
        problems.contains("op `klose` (`op_name` of Close { slot: "),
        "{problems}"
    );
    assert!(
        problems.contains("`op_name` says `klose` for an op written `op = \"close\"`"),
        "{problems}"
    );
    assert!(!problems.contains("`open`"), "{problems}");
}
