//! What the framework asks of a subject of one's own that runs real code on real bytes (README,
//! "Real code on real bytes"): it must say so in `info().host_backed`.

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::FindingKind;
use sim::os::{Os, Tid};
use sim::runner::RunOptions;
use sim::subject::{Config, Names, OpDoc, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum ArenaOp {
    Touch,
}

/// A subject that backs its memory with the host arena, as a real allocator crate's platform
/// layer would, and declares `host_backed` only when `DECLARED` says so.
struct ArenaUser<const DECLARED: bool>;

impl<const DECLARED: bool> Subject for ArenaUser<DECLARED> {
    type Op = ArenaOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: if DECLARED {
                "arena-declared"
            } else {
                "arena-undeclared"
            },
            summary: "enables the host arena",
            ops: vec![OpDoc {
                name: "touch",
                summary: "does nothing",
            }],
            host_backed: DECLARED,
            ..Default::default()
        }
    }

    fn new(os: &mut Os, _config: &Config) -> Self {
        os.enable_host_arena(1 << 20).expect("a 1 MiB host arena");
        ArenaUser
    }

    fn op_name(_op: &ArenaOp) -> &'static str {
        "touch"
    }

    fn validate(_op: &ArenaOp, _names: &mut Names) -> Result<(), String> {
        Ok(())
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &ArenaOp) -> Step<Self> {
        Step::Done
    }
}

fn scenario(subject: &str) -> String {
    format!(
        "name = \"touch\"\nsubject = \"{subject}\"\nseed = 1\n\n[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"touch\" }}]\n"
    )
}

/// Without `host_backed`, a crash of real code on that memory would end the tool with no report
/// (SIGSEGV in `sim run`'s own process): the runner refuses such a subject at once, saying what to
/// set, instead of passing runs until the first crash.
#[test]
fn a_subject_that_enables_the_host_arena_without_declaring_it_is_told_to() {
    let source = scenario("arena-undeclared");
    let parsed = sim::scenario::parse::parse::<ArenaUser<false>>("touch.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let outcome = sim::runner::run::<ArenaUser<false>>(&parsed, RunOptions::default());
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
    let finding = &outcome.findings[0];
    assert_eq!(finding.kind, FindingKind::Panic);
    assert!(
        finding.headline.contains("set `host_backed: true`"),
        "{}",
        finding.headline
    );
    assert_eq!(outcome.ops, 0, "no op runs on an undeclared host arena");
}

#[test]
fn a_subject_that_declares_its_host_arena_runs() {
    let source = scenario("arena-declared");
    let parsed = sim::scenario::parse::parse::<ArenaUser<true>>("touch.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let outcome = sim::runner::run::<ArenaUser<true>>(&parsed, RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.findings);
    assert_eq!(outcome.ops, 1);
}
