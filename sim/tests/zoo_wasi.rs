//! The `wasi-runtime` subject against WAMR #4192: the zoo scenarios find each defect by the
//! generic leak check, pass with the defects off, and generated scenarios find the same
//! signatures without knowing anything about them.

mod support;

use sim::findings::FindingKind;
use sim::registry::{DynScenario, Registry};
use sim::runner::RunOptions;
use sim::scenario::generate::GenerateOptions;
use support::{
    assert_generated_pass, defects_off, print_and_parse_back, scenario_text, workspace_path,
};

fn load(path: &str) -> Box<dyn DynScenario> {
    let full = workspace_path(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    Registry::builtin()
        .parse(path, &text)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn instantiate_destroy_without_preopens_leaks_the_prestats_lock_once_per_lifecycle() {
    let scenario = load("scenarios/zoo/instantiate-destroy.toml");
    let outcome = scenario.run(RunOptions::default());
    assert_eq!(outcome.signatures(), vec!["leak:rwlock:fd_prestats_init"]);
    let leak = &outcome.findings[0];
    assert_eq!(leak.kind, FindingKind::Leak);
    assert_eq!(leak.repetition, 0, "noticed after the first lifecycle");
    assert_eq!(leak.headline, "1 rwlock (216 B) not released");
    let acquired = leak.detail_text("acquired").expect("an acquired detail");
    assert!(
        acquired.contains("`instantiate`") && acquired.contains("fd_prestats_init"),
        "{}",
        acquired
    );
    assert!(
        leak.notes.iter().any(|n| n.contains("seen 100 times")),
        "one per lifecycle: {:?}",
        leak.notes
    );
    assert_eq!(
        scenario.meta().expect.unwrap().signatures,
        outcome.signatures(),
        "the file pins what it finds"
    );

    let fixed = scenario.run(defects_off());
    assert!(fixed.passed(), "{:?}", fixed.findings);
}

/// `[platform]` sets what a leaked object costs: glibc's x86-64 rwlock is 56 B, where the default
/// model follows WAMR's report on ESP32-S3 (216 B). It prints back with the scenario.
#[test]
fn the_platform_section_sets_the_size_a_leaked_lock_reports() {
    let text = scenario_text("zoo/instantiate-destroy.toml").replace(
        "[[lifecycle]]",
        "[platform]\nrwlock_bytes = 56\n\n[[lifecycle]]",
    );
    let registry = Registry::builtin();
    let scenario = registry.parse("glibc.toml", &text).unwrap();
    let outcome = scenario.run(RunOptions::default());
    assert_eq!(outcome.findings[0].headline, "1 rwlock (56 B) not released");
    let printed = scenario.to_toml().unwrap();
    assert!(
        printed.contains("[platform]\nrwlock_bytes = 56"),
        "{printed}"
    );
    let reparsed = registry.parse("printed.toml", &printed).unwrap();
    assert_eq!(
        reparsed.run(RunOptions::default()).trace_hash,
        outcome.trace_hash
    );
    let unknown = text.replace("rwlock_bytes = 56", "spinlock_bytes = 8");
    let error = registry
        .parse("bad.toml", &unknown)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("spinlock_bytes"), "{error}");
}

#[test]
fn with_a_preopened_directory_the_same_defect_leaks_nothing() {
    let scenario = load("scenarios/zoo/instantiate-destroy-preopen.toml");
    assert_eq!(scenario.meta().defects, vec!["prestats-lock-leak"]);
    let outcome = scenario.run(RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.findings);
    assert!(scenario.run(defects_off()).passed());
}

#[test]
fn a_failed_init_leaks_the_fd_table_lock_only_with_its_defect() {
    let scenario = load("scenarios/zoo/failed-init.toml");
    let outcome = scenario.run(RunOptions::default());
    assert_eq!(outcome.signatures(), vec!["leak:rwlock:fd_table_init"]);
    let acquired = outcome.findings[0].detail_text("acquired").unwrap();
    assert!(
        acquired.contains("`instantiate`") && acquired.contains("fd_table_init"),
        "{}",
        acquired
    );
    // The report says which injected fault sent init down its error path, in the leak's own
    // repetition.
    let injected: Vec<&str> = outcome.findings[0].detail_texts("injected").collect();
    assert_eq!(
        injected,
        [
            "alloc fault at op #1 `instantiate` → fd_object_new (lifecycle 1, repetition 4, thread 0)"
        ]
    );
    let fixed = scenario.run(defects_off());
    assert!(
        fixed.passed(),
        "every error path of init returns what it took: {:?}",
        fixed.findings
    );
    // The other defect alone does not reach this leak: failed inits end in the same path.
    let other = scenario.run(RunOptions {
        defects: Some(vec!["prestats-lock-leak".into()]),
        ..RunOptions::default()
    });
    assert!(
        !other
            .signatures()
            .contains(&"leak:rwlock:fd_table_init".to_string())
    );
}

#[test]
fn the_basic_scenario_exercises_every_guest_call_and_passes() {
    let scenario = load("scenarios/wasi-runtime-basic.toml");
    let outcome = scenario.run(RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.findings);
    assert_eq!(outcome.ops, 20 * (16 + 4) as u64);
    let again = scenario.run(RunOptions::default());
    assert_eq!(outcome.trace_hash, again.trace_hash, "deterministic");
    // With the prestats defect on, instance 1 (no preopens) leaks its lock and instance 0 does not.
    let with_defect = scenario.run(RunOptions {
        defects: Some(vec!["prestats-lock-leak".into()]),
        ..RunOptions::default()
    });
    assert_eq!(
        with_defect.signatures(),
        vec!["leak:rwlock:fd_prestats_init"]
    );
    let acquired = with_defect.findings[0].detail_text("acquired").unwrap();
    assert!(acquired.starts_with("op #2 `instantiate`"), "{}", acquired);
    assert_eq!(
        with_defect.findings[0].headline,
        "1 rwlock (216 B) not released"
    );
}

/// The first seed in `seeds` whose generated scenario finds `signature`, with `defect` on.
fn first_finding(
    defect: &str,
    faults: bool,
    signature: &str,
    seeds: std::ops::Range<u64>,
) -> Option<u64> {
    let registry = Registry::builtin();
    let subject = registry.get("wasi-runtime").unwrap();
    let options = GenerateOptions {
        defects: vec![defect.to_string()],
        faults,
    };
    seeds.into_iter().find(|&seed| {
        subject
            .generate(seed, &options)
            .run(RunOptions::default())
            .signatures()
            .iter()
            .any(|s| s == signature)
    })
}

#[test]
fn generated_scenarios_find_each_defect_by_the_generic_checks() {
    let prestats = first_finding(
        "prestats-lock-leak",
        false,
        "leak:rwlock:fd_prestats_init",
        0..300,
    );
    assert!(
        prestats.is_some(),
        "prestats-lock-leak found within 300 generated seeds"
    );
    let table = first_finding(
        "fd-table-lock-leak",
        true,
        "leak:rwlock:fd_table_init",
        0..300,
    );
    assert!(
        table.is_some(),
        "fd-table-lock-leak found within 300 generated seeds with faults"
    );
    // Without fault injection init never fails, so the fd-table lock cannot leak.
    assert_eq!(
        first_finding(
            "fd-table-lock-leak",
            false,
            "leak:rwlock:fd_table_init",
            0..100
        ),
        None
    );
    let handle = first_finding(
        "preopen-handle-leak",
        true,
        "leak:fd:os_open_preopendir",
        0..600,
    );
    assert!(
        handle.is_some(),
        "preopen-handle-leak found within 600 generated seeds with faults"
    );
}

#[test]
fn generated_scenarios_with_every_defect_off_find_nothing() {
    for faults in [false, true] {
        let options = GenerateOptions {
            defects: vec![],
            faults,
        };
        assert_generated_pass("wasi-runtime", 0..2000, &options);
    }
}

#[test]
fn generated_scenarios_print_back_to_files_that_parse_and_run_the_same() {
    let registry = Registry::builtin();
    let subject = registry.get("wasi-runtime").unwrap();
    for seed in 0..100 {
        let generated = subject.generate(
            seed,
            &GenerateOptions {
                defects: vec![],
                faults: true,
            },
        );
        let parsed = print_and_parse_back(&registry, generated.as_ref(), &format!("seed {seed}"));
        assert_eq!(
            generated.run(RunOptions::default()).trace_hash,
            parsed.run(RunOptions::default()).trace_hash,
            "seed {seed}"
        );
    }
}

#[test]
fn using_an_instance_never_instantiated_is_rejected_with_a_clear_error() {
    let text = r#"
name = "bad"
subject = "wasi-runtime"

[[lifecycle]]
name = "l"
ops = [{ op = "destroy", instance = 2 }]
"#;
    let Err(error) = Registry::builtin().parse("bad.toml", text) else {
        panic!("a destroy of an instance never instantiated is rejected")
    };
    let error = error.to_string();
    assert!(
        error.contains("instance `2` is used before any op defines it"),
        "{error}"
    );
    let out_of_range = text.replace(
        r#"{ op = "destroy", instance = 2 }"#,
        r#"{ op = "instantiate", instance = 9 }"#,
    );
    let Err(error) = Registry::builtin().parse("bad.toml", &out_of_range) else {
        panic!("an instance slot out of range is rejected")
    };
    let error = error.to_string();
    assert!(error.contains("out of range"), "{error}");
}

/// A file may give an `fds_max` below the four the runtime's constructor opens at once where its
/// faults may fire (the parser does not build the subject to check its limits then, as a fault
/// may leave the constructor taking less): its run ends with the budget finding that says why,
/// the runtime starting without stdio. Without faults, the parser refuses it.
#[test]
fn a_file_whose_faults_may_fire_may_refuse_the_runtime_its_stdio() {
    let source = "name = \"t\"\nsubject = \"wasi-runtime\"\n[limits]\nfds_max = 3\n\
                  [faults]\nshort-write = 0.01\n[[lifecycle]]\nname = \"l\"\n\
                  ops = [{ op = \"instantiate\", instance = 0, argv = [\"app.wasm\"] }]\n";
    let registry = Registry::builtin();
    let scenario = registry
        .parse("f.toml", source)
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = scenario.run(RunOptions::default());
    assert!(
        outcome
            .findings
            .iter()
            .any(|finding| finding.kind == FindingKind::Budget && finding.resource == "fds_max"),
        "{:?}",
        outcome.signatures()
    );
    let without_faults = source.replace("[faults]\nshort-write = 0.01\n", "");
    let Err(error) = registry.parse("f.toml", &without_faults) else {
        panic!("without faults, an `fds_max` below the runtime's stdio is refused")
    };
    let error = error.to_string();
    assert!(error.contains("fds_max"), "{error}");
}
