//! A subject whose op has a `u64` field it does not bound: `arbitrary` draws values past
//! `i64::MAX` about half the time, and TOML's integers are `i64`. Generation drops such ops, as it
//! drops ops that do not validate, so that a generated scenario still prints to a file that parses
//! (and a fuzz target's report shows it); printing a scenario that holds one by other means
//! refuses with the op, where it panicked.

mod support;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::os::{Os, Tid};
use sim::registry::{DynSubject, Registry, erase};
use sim::scenario::generate::{self, GenerateOptions};
use sim::scenario::{ScenarioOp, print};
use sim::subject::{Config, OpDoc, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum PokeOp {
    Poke {
        slot: u8,
        #[serde(deserialize_with = "twos_complement")]
        value: u64,
    },
}

/// A deserializer of the subject's own, as some subjects have: a file's negative number is its
/// two's complement (C's `(uint64_t)-1`), so a file that parses can hold an op past `i64::MAX`,
/// which then does not print.
fn twos_complement<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    i64::deserialize(deserializer).map(|value| value as u64)
}

/// Reports an invariant violation once it has been poked, so that any scenario with an op fails.
struct Poker {
    pokes: u32,
}

impl Subject for Poker {
    type Op = PokeOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "poker",
            summary: "takes any u64; any poke is a violation",
            ops: vec![OpDoc {
                name: "poke",
                summary: "counts a poke",
            }],
            ..Default::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        Poker { pokes: 0 }
    }

    fn op_name(_op: &PokeOp) -> &'static str {
        "poke"
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &PokeOp) -> Step<Self> {
        self.pokes += 1;
        Step::Done
    }

    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        if self.pokes == 0 {
            vec![]
        } else {
            vec![format!("poked {} times", self.pokes)]
        }
    }
}

/// Bytes whose ops draw `value`s of all ones: past `i64::MAX`.
fn ones_after(prefix: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    bytes.extend([0xff; 64]);
    bytes
}

#[test]
fn generated_scenarios_print_and_parse_back_whatever_values_arbitrary_draws() {
    let registry = poker_registry();
    let subject: &dyn DynSubject = registry.get("poker").unwrap();
    let mut with_ops = 0;
    let mut inputs = vec![ones_after(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 7])];
    // Pseudo-random inputs, a fixed sequence: about half their values are past `i64::MAX`.
    inputs.extend(support::xorshift_inputs(0x2545_f491_4f6c_dd1d, 200, 256));
    for bytes in &inputs {
        let scenario = subject.from_bytes(bytes, &GenerateOptions::default());
        let printed = scenario
            .to_toml()
            .unwrap_or_else(|why| panic!("a generated scenario does not print: {why}"));
        let reparsed = registry.parse("printed.toml", &printed).unwrap();
        assert_eq!(reparsed.to_toml().unwrap(), printed);
        with_ops += usize::from(scenario.meta().op_count > 0);
    }
    assert!(with_ops > 50, "only {with_ops} inputs made any op");
}

#[test]
fn a_fuzz_targets_report_shows_the_scenario_where_printing_it_panicked() {
    let bytes = ones_after(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 7]);
    let report =
        sim::fuzzing::run_subject_bytes::<Poker>(&bytes, &[]).expect_err("a poke is a violation");
    assert!(report.contains("poked"), "{report}");
    assert!(
        report.contains("note: the input decodes to this scenario"),
        "{report}"
    );
}

#[test]
fn printing_an_op_toml_cannot_hold_is_refused_with_the_op() {
    let mut scenario = generate::from_seed::<Poker>(1, &GenerateOptions::default());
    let printable = print::to_toml(&scenario).unwrap();
    assert!(!printable.contains(&u64::MAX.to_string()));
    scenario.lifecycles[0].ops.insert(
        0,
        ScenarioOp::Subject(PokeOp::Poke {
            slot: 3,
            value: u64::MAX,
        }),
    );
    let why = print::to_toml(&scenario).unwrap_err();
    let lifecycle = &scenario.lifecycles[0].name;
    assert_eq!(why.place, format!("lifecycle `{lifecycle}`, ops #0"));
    assert_eq!(
        why.op,
        r#"{"op":"poke","slot":3,"value":18446744073709551615}"#
    );
    assert!(why.to_string().contains("u64 value was too large"), "{why}");
}

/// An open finding of a subject of one's own (it fails with every defect off) is imported with a
/// header naming where to move the file once fixed: that directory, like every path in a comment
/// line, is escaped, so a newline in it cannot end the comment and break the file.
#[test]
fn an_open_findings_header_names_its_directory_on_one_line() {
    let dir = support::scratch_dir("unprintable-open-import");
    let artifact = dir.join("crash");
    std::fs::write(&artifact, [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 7, 1]).unwrap();
    let out = dir.join("out\nx = 1");
    let registry = poker_registry;
    let args = [
        "sim",
        "import-crash",
        "poker",
        &artifact.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from);
    assert_eq!(sim::cli::main_with_args(registry(), args.to_vec()), 1);
    // An open finding goes in `open/`, apart from the regressions that must pass.
    let written = support::toml_files_in(&out.join("open"));
    assert_eq!(written.len(), 1, "one regression file: {written:?}");
    let source = std::fs::read_to_string(&written[0]).unwrap();
    assert!(source.contains("An open finding"), "{source}");
    assert!(source.contains("out\\nx = 1/."), "{source}");
    registry()
        .parse("regression.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}\n{source}"));
}

/// A poker file whose second op is `second`: every such file holds an op past `i64::MAX` first
/// (`value = -1`), and so does not print, and the refusal names that first op alone.
fn unprintable_file(second: &str) -> String {
    format!(
        "name = \"wide\"\nsubject = \"poker\"\n[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"poke\", slot = 1, value = -1 }}, {second}]\n"
    )
}

fn poker_registry() -> Registry {
    Registry::builtin().with(erase::<Poker>())
}

/// A sweep's scenario hash, which a resume compares with its records' to rerun an edited file's
/// and a merge to keep two versions apart, tells apart two files that do not print and differ
/// past their first unprintable op: it hashed the refusal, which names that op alone. A file
/// that prints hashes its printing, as before.
#[test]
fn scenarios_that_do_not_print_and_differ_hash_apart() {
    let registry = poker_registry();
    let parse = |text: &str| registry.parse("wide.toml", text).unwrap();
    let one = parse(&unprintable_file(r#"{ op = "poke", slot = 2, value = 3 }"#));
    let other = parse(&unprintable_file(r#"{ op = "poke", slot = 2, value = 4 }"#));
    let (why_one, why_other) = (one.to_toml().unwrap_err(), other.to_toml().unwrap_err());
    assert_eq!(why_one, why_other, "the same refusal");
    assert_ne!(
        sim::sweep::scenario_hash(one.as_ref()),
        sim::sweep::scenario_hash(other.as_ref())
    );
    // The same scenario hashes the same, whatever its seed (a sweep sets every run's).
    let mut reseeded = one.clone_box();
    reseeded.set_seed(77);
    assert_eq!(
        sim::sweep::scenario_hash(one.as_ref()),
        sim::sweep::scenario_hash(reseeded.as_ref())
    );
    let printable = parse(
        "name = \"p\"\nsubject = \"poker\"\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"poke\", slot = 1, value = 5 }]\n",
    );
    let mut unseeded = printable.clone_box();
    unseeded.set_seed(0);
    assert_eq!(
        sim::sweep::scenario_hash(printable.as_ref()),
        sim::seed::format_seed(sim::trace::hash_str(&unseeded.to_toml().unwrap()))
    );
}

/// A sweep resumed after its file was edited reruns the file's records, also for a file that
/// does not print: with the hash of the refusal, an edit past the first unprintable op kept the
/// old version's records as this one's, and the new version never ran.
#[test]
fn a_resumed_sweep_reruns_an_edited_file_that_does_not_print() {
    let dir = support::scratch_dir("unprintable-resume");
    let out = dir.join("out");
    let registry = poker_registry();
    let sweep_version = |second: &str| {
        let source = support::file_source(&registry, &dir, "wide.toml", &unprintable_file(second));
        let mut config = sim::sweep::SweepConfig::new(vec![source], 0..2, &out);
        config.shrink_runs_max = 20;
        sim::sweep::sweep(&registry, &config).unwrap()
    };
    let first = sweep_version(r#"{ op = "poke", slot = 2, value = 3 }"#);
    assert_eq!((first.ran, first.resumed), (2, 0));
    let edited = sweep_version(r#"{ op = "poke", slot = 2, value = 4 }"#);
    assert_eq!(
        (edited.ran, edited.resumed),
        (2, 0),
        "the edited file runs again"
    );
    let unchanged = sweep_version(r#"{ op = "poke", slot = 2, value = 4 }"#);
    assert_eq!((unchanged.ran, unchanged.resumed), (0, 2));
}

/// A sweep's finding in a file that does not print, left whole by the shrinker, is minimised
/// without a repro file, which could not be written: the finding is kept, its report says why no file was written and which
/// command reproduces it, and the sweep neither panics nor stops.
#[test]
fn a_finding_in_a_file_that_does_not_print_is_kept_without_a_repro() {
    let dir = support::scratch_dir("unprintable-minimise");
    let out = dir.join("out");
    let registry = poker_registry();
    let text = unprintable_file(r#"{ op = "poke", slot = 2, value = 3 }"#);
    let source = support::file_source(&registry, &dir, "wide.toml", &text);
    let mut config = sim::sweep::SweepConfig::new(vec![source], 0..3, &out);
    // One run, the first pair's as it is: a shrink would find that one poke of a printable
    // value shows the finding, and its repro would print.
    config.shrink_runs_max = 1;
    let report = sim::sweep::sweep(&registry, &config).unwrap();
    let summary = &report.summary;
    assert_eq!(summary.verdict, "fail");
    assert_eq!(summary.findings.len(), 1, "{:?}", summary.findings);
    let finding = &summary.findings[0];
    assert_eq!(finding.signature, "invariant:subject invariant:poker");
    assert_eq!(finding.count, 3);
    assert_eq!(finding.repro, None, "no repro file");
    let original = finding
        .original_replay
        .clone()
        .expect("the first pair's command");
    assert_eq!(finding.replay.as_deref(), Some(original.as_str()));
    let text = finding.report.as_deref().expect("the finding's report");
    assert!(
        text.contains("no repro file was written: the scenario does not print: the scenario cannot be printed as TOML: lifecycle `l`, ops #0 is `{\"op\":\"poke\",\"slot\":1,\"value\":18446744073709551615}`")
            && text.contains(&format!("`{original}` reproduces the finding")),
        "{text}"
    );
    let written: Vec<_> = std::fs::read_dir(out.join("repros"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(
        written
            .iter()
            .all(|path| path.extension().is_some_and(|e| e == "json")),
        "the sidecar only: {written:?}"
    );
}
