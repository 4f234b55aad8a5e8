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
use support::{defects_off, scratch_dir, write_file};

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
            scenario.to_toml().unwrap()
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
    let mut failures = Vec::new();
    for bytes in fuzz_inputs(200) {
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

/// `count` fixed inputs of 256 bytes, as a fuzzer would hand them over.
fn fuzz_inputs(count: usize) -> Vec<Vec<u8>> {
    support::xorshift_inputs(0x9e37_79b9_7f4a_7c15, count, 256)
}

/// The path README section 7 describes, end to end: an input of the user's own fuzz target that
/// fails with the defect on becomes a crash artifact; the user's binary imports it by the
/// subject's name (decoded as `run_subject_bytes` decoded it) into a directory of the user's
/// own, as a shrunk file pinning its signatures; and the user's `cargo test` replays that
/// directory with `replay_regressions`, which fails once the file pins another signature.
#[test]
fn a_crash_of_ones_own_fuzz_target_imports_into_a_regression_directory_that_replays() {
    let defect = vec!["leak-overflow-chunks".to_string()];
    let (bytes, report) = fuzz_inputs(200)
        .into_iter()
        .find_map(|bytes| {
            sim::fuzzing::run_subject_bytes::<BumpAllocator>(&bytes, &defect)
                .err()
                .map(|report| (bytes, report))
        })
        .expect("some inputs reach `leak-overflow-chunks`");
    // The report says how to keep it, naming no binary it cannot know.
    assert!(
        report.contains(
            "note: keep it as a regression with `<your binary> import-crash bump-allocator \
             ARTIFACT --defect leak-overflow-chunks --out DIR`, <your binary> being your binary \
             whose `main` calls `sim::cli::main_with` with `bump-allocator` registered"
        ),
        "{report}"
    );
    let first_signature = report
        .lines()
        .find_map(|line| line.strip_prefix("note: signature `"))
        .and_then(|rest| rest.strip_suffix('`'))
        .expect("the report names each finding's signature")
        .to_string();

    let scratch = scratch_dir("import-crash");
    let artifact = write_file(&scratch, "crash-bump", &bytes);
    let out = scratch.join("tests/regressions");
    // `import-crash bump-allocator ARTIFACT --out OUT` through a binary with `registry`, plus `extra`.
    let import_into = |registry: Registry, extra: &[&str]| {
        let mut args = vec![
            "my-binary".to_string(),
            "import-crash".into(),
            "bump-allocator".into(),
            artifact.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        main_with_args(registry, args)
    };
    let import = |extra: &[&str]| {
        let mut args = vec!["--defect", "leak-overflow-chunks"];
        args.extend(extra);
        import_into(bump_allocator::registry(), &args)
    };
    // The built-in registry has no such subject: bad input, nothing written.
    assert_eq!(import_into(Registry::builtin(), &[]), 2);
    assert!(!out.exists());
    // Without the defect the fuzzer ran with, the input passes: nothing to import.
    assert_eq!(import_into(bump_allocator::registry(), &[]), 0);
    assert!(!out.exists());
    assert_eq!(import(&["--classify"]), 1, "a finding of the defect");

    // Unshrunk, the import is the scenario the fuzz target ran: the one its report pinned.
    let marker = "replay it with your binary's `replay`):\n";
    let ran = &report[report.find(marker).expect(marker) + marker.len()..];
    assert_eq!(import(&["--runs-max", "0"]), 1, "imported");
    let unshrunk = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let without_expect = |name: &str, text: &str| {
        let mut scenario = bump_allocator::registry().parse(name, text).unwrap();
        scenario.set_expect(None);
        scenario.to_toml().unwrap()
    };
    assert_eq!(
        without_expect(
            "imported.toml",
            &std::fs::read_to_string(&unshrunk).unwrap()
        ),
        without_expect("ran.toml", ran)
    );
    std::fs::remove_dir_all(&out).unwrap();

    assert_eq!(import(&[]), 1, "imported");

    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "one file, no open/ finding: {written:?}");
    let file = &written[0];
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("bump-allocator-leak-overflow-chunks-leak-"),
        "{name}"
    );
    let source = std::fs::read_to_string(file).unwrap();
    let registry = bump_allocator::registry();
    let regression = registry.parse(&name, &source).unwrap();
    let pinned = regression.meta().expect.unwrap().signatures;
    assert_eq!(
        pinned[0], first_signature,
        "the import ran the scenario the fuzz target ran: its first finding first"
    );
    assert_eq!(
        regression.run(RunOptions::default()).signatures(),
        pinned,
        "the file pins every signature its run shows"
    );
    assert!(
        regression.meta().op_count < 20,
        "shrunk: {}",
        regression.to_toml().unwrap()
    );
    // The header's command imports the same file again, through the binary that imported it
    // (`sim` does not know its subject): defects and directory are in it.
    assert!(
        source.starts_with(&format!(
            "# Imported by `my-binary import-crash bump-allocator {} --defect leak-overflow-chunks --out {}` from a fuzzer crash.\n",
            artifact.display(),
            out.display()
        )) && source.contains("Replayed by `sim::fuzzing::replay_regressions` (your `cargo test`)"),
        "{source}"
    );

    // The user's `cargo test`: the directory replays, and a file that pins a signature its run
    // no longer shows is a failure naming it.
    assert_eq!(
        sim::fuzzing::replay_regressions(&registry, &out).unwrap(),
        1
    );
    std::fs::write(
        file,
        source.replace(
            &format!("\"{first_signature}\""),
            "\"leak:reservation:elsewhere\"",
        ),
    )
    .unwrap();
    let failures = sim::fuzzing::replay_regressions(&registry, &out).unwrap_err();
    assert!(
        failures.to_string().contains(&format!(
            "{}: with defects [leak-overflow-chunks] the run no longer shows `leak:reservation:elsewhere`",
            file.display()
        )),
        "{failures}"
    );
}

#[test]
fn hand_written_ops_on_an_arena_never_created_are_refused() {
    let mut names = sim::subject::Names::default();
    let alloc = BumpOp::Alloc { arena: 1, bytes: 8 };
    let refusal = BumpAllocator::validate_op(&alloc, &mut names).unwrap_err();
    assert_eq!(refusal.field, Some("arena"), "{refusal}");
    BumpAllocator::validate_op(&BumpOp::Create { arena: 5 }, &mut names).unwrap();
    assert!(
        BumpAllocator::validate_op(&alloc, &mut names).is_ok(),
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
    // The error points at the value at fault, the first op's `arena = 0`.
    let span = error.span.clone().expect("the error has a place");
    let alloc_op = text.find("{ op = \"alloc\"").unwrap();
    let value = alloc_op + text[alloc_op..].find("arena = 0").unwrap() + "arena = ".len();
    assert_eq!(span.start, value, "{error}");
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
    assert!(small.meta().op_count < 8, "{}", small.to_toml().unwrap());
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
