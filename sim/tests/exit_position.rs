//! Where a thread's exit is: its TLS destructors run at the position `thread-exit`, whose slot
//! is the exiting thread's last op, whatever op of another thread ran just before the exit.

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::{FindingKind, OpList};
use sim::os::modules::{CodeAddr, MAIN_CODE};
use sim::os::tls::TlsKey;
use sim::os::{Os, Tid};
use sim::runner::RunOptions;
use sim::subject::{Config, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ExitOp {
    /// Does nothing: an op for the main thread to run while the other exits.
    Idle,
    /// Sets the thread's TLS value, so that its exit calls the destructor, which panics.
    Arm,
}

/// A subject whose TLS destructor panics: the panic's finding says the position it ran at.
pub struct ExitBreaker {
    key: TlsKey,
}

const DESTRUCTOR: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x10);

impl Subject for ExitBreaker {
    type Op = ExitOp;
    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "exit-breaker",
            summary: "a TLS destructor that panics",
            ops: vec![],
            defects: vec![],
            caches: vec![],
            params: vec![],
            host_backed: false,
        }
    }
    fn new(os: &mut Os, _config: &Config) -> Self {
        let key = os.tls_key_create(Some(DESTRUCTOR), "breaker_new").unwrap();
        ExitBreaker { key }
    }
    fn op_name(op: &ExitOp) -> &'static str {
        match op {
            ExitOp::Idle => "idle",
            ExitOp::Arm => "arm",
        }
    }
    fn apply(&mut self, os: &mut Os, tid: Tid, op: &ExitOp) -> Step<Self> {
        if *op == ExitOp::Arm {
            os.tls_set(tid, self.key, 1, "breaker_arm").unwrap();
        }
        Step::Done
    }
    fn call(&mut self, _os: &mut Os, _tid: Tid, code: CodeAddr, _arg: u64) -> Step<Self> {
        assert!(code != DESTRUCTOR, "the destructor broke");
        Step::Done
    }
}

/// The thread `armed` has two ops; the main thread has more, so that the op run just before the
/// thread's exit is often the main thread's, at an index the thread's list does not have.
const SCENARIO: &str = r#"
name = "exit"
subject = "exit-breaker"

[[lifecycle]]
name = "l"
ops = [
  { op = "spawn", thread = "armed" },
  { op = "idle" },
  { op = "idle" },
  { op = "idle" },
  { op = "idle" },
  { op = "join", thread = "armed" },
]

[[lifecycle.thread]]
name = "armed"
ops = [{ op = "arm" }, { op = "idle" }]
"#;

#[test]
fn a_tls_destructor_runs_at_its_threads_exit_after_its_last_op() {
    let scenario = sim::scenario::parse::parse::<ExitBreaker>("exit.toml", SCENARIO).unwrap();
    for seed in 0..16 {
        let outcome = sim::runner::run::<ExitBreaker>(
            &scenario,
            RunOptions {
                seed: Some(seed),
                ..RunOptions::default()
            },
        );
        assert_eq!(
            outcome.findings.len(),
            1,
            "seed {seed}: {:?}",
            outcome.findings
        );
        let finding = &outcome.findings[0];
        assert_eq!(finding.kind, FindingKind::Panic);
        assert_eq!(
            finding.detail_text("during"),
            Some("op #2 `thread-exit` on thread 1"),
            "seed {seed}"
        );
        let op = finding.details[0].op.as_ref().expect("the exit as data");
        assert_eq!(
            (op.list, op.index, op.name.as_str(), op.thread),
            (OpList::Thread, 2, "thread-exit", 1),
            "seed {seed}"
        );
    }
}
