//! What a thread leaves behind when it exits: the locks it still holds (each an invariant
//! finding named by the site that took it, as the held lock's leak is) and a TLS value its
//! destructors kept setting past the last round (lost, as glibc loses it after
//! PTHREAD_DESTRUCTOR_ITERATIONS rounds, so what it named is a leak of the site that acquired it).

use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::FindingKind;
use sim::os::modules::{CodeAddr, MAIN_CODE};
use sim::os::tls::TlsKey;
use sim::os::{Io, LockId, LockKind, Os, Tid};
use sim::runner::{Outcome, RunOptions};
use sim::subject::{Config, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LeaverOp {
    /// Takes mutex A (at the site `take_a`) and keeps it.
    TakeA,
    /// Takes mutex B (at the site `take_b`) and keeps it.
    TakeB,
    /// Allocates a block (at the site `cling_block`) and sets the thread's TLS value to it; the
    /// key's destructor sets the value again every round, and never frees the block.
    Cling,
}

/// A subject whose threads leave things behind at their exit.
pub struct Leaver {
    lock_a: LockId,
    lock_b: LockId,
    key: TlsKey,
}

const SET_AGAIN: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x20);

/// Calls of the destructor, in every run of this file (only one test's threads call it).
static SET_AGAIN_CALLS: AtomicU64 = AtomicU64::new(0);

impl Leaver {
    fn take(os: &mut Os, tid: Tid, lock: LockId, site: &'static str) -> Step<Self> {
        match os.lock_acquire(tid, lock, site) {
            Io::Ready(_) => Step::Done,
            Io::Block(reason) => Step::block(reason, move |_: &mut Leaver, os, tid| {
                Leaver::take(os, tid, lock, site)
            }),
        }
    }
}

impl Subject for Leaver {
    type Op = LeaverOp;
    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "leaver",
            summary: "threads that exit holding locks or with a TLS value set for good",
            ops: vec![],
            defects: vec![],
            caches: vec![],
            params: vec![],
            host_backed: false,
        }
    }
    fn new(os: &mut Os, _config: &Config) -> Self {
        Leaver {
            lock_a: os.lock_create(LockKind::Mutex, "lock_a_init").unwrap(),
            lock_b: os.lock_create(LockKind::Mutex, "lock_b_init").unwrap(),
            key: os.tls_key_create(Some(SET_AGAIN), "key_init").unwrap(),
        }
    }
    fn op_name(op: &LeaverOp) -> &'static str {
        match op {
            LeaverOp::TakeA => "take-a",
            LeaverOp::TakeB => "take-b",
            LeaverOp::Cling => "cling",
        }
    }
    fn apply(&mut self, os: &mut Os, tid: Tid, op: &LeaverOp) -> Step<Self> {
        match op {
            LeaverOp::TakeA => Leaver::take(os, tid, self.lock_a, "take_a"),
            LeaverOp::TakeB => Leaver::take(os, tid, self.lock_b, "take_b"),
            LeaverOp::Cling => {
                if let Ok(block) = os.malloc(64, "cling_block") {
                    os.tls_set(tid, self.key, block, "cling_set").unwrap();
                }
                Step::Done
            }
        }
    }
    fn call(&mut self, os: &mut Os, tid: Tid, code: CodeAddr, value: u64) -> Step<Self> {
        assert_eq!(code, SET_AGAIN, "the only destructor");
        SET_AGAIN_CALLS.fetch_add(1, Ordering::Relaxed);
        os.tls_set(tid, self.key, value, "destructor_set_again")
            .unwrap();
        Step::Done
    }
}

fn run(scenario: &str) -> Outcome {
    let parsed = sim::scenario::parse::parse::<Leaver>("leaver.toml", scenario).unwrap();
    sim::runner::run::<Leaver>(&parsed, RunOptions::default())
}

/// Two threads, each exiting with a lock of its own held, taken at a site of its own.
const TWO_LOCKS: &str = r#"
name = "two-locks"
subject = "leaver"

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
ops = [{ op = "take-a" }]

[[lifecycle.thread]]
name = "b"
ops = [{ op = "take-b" }]
"#;

#[test]
fn two_locks_held_at_exit_from_two_sites_are_two_findings() {
    let outcome = run(TWO_LOCKS);
    let mut at_exit: Vec<String> = outcome
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Invariant)
        .map(|f| f.signature())
        .collect();
    at_exit.sort();
    assert_eq!(
        at_exit,
        ["invariant:held lock:take_a", "invariant:held lock:take_b"],
        "{:?}",
        outcome.findings
    );
    // The same site as the leak of each held lock at the end of the lifecycle.
    let mut leaks: Vec<String> = outcome
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Leak)
        .map(|f| f.signature())
        .collect();
    leaks.sort();
    assert_eq!(
        leaks,
        ["leak:held lock:take_a", "leak:held lock:take_b"],
        "{:?}",
        outcome.findings
    );
}

/// A thread whose TLS destructor sets its value again in every round.
const CLINGING: &str = r#"
name = "clinging"
subject = "leaver"

[[lifecycle]]
name = "l"
repeat = 3
ops = [
  { op = "spawn", thread = "c" },
  { op = "join", thread = "c" },
]

[[lifecycle.thread]]
name = "c"
ops = [{ op = "cling" }]
"#;

/// The destructor runs four rounds (PTHREAD_DESTRUCTOR_ITERATIONS), then the value is lost with
/// the thread: the run ends, and the block it named is the only thing left, a leak of the op that
/// allocated it, in each repetition.
#[test]
fn a_tls_value_set_again_past_the_last_round_is_lost_and_what_it_named_leaks() {
    let outcome = run(CLINGING);
    assert_eq!(
        outcome.signatures(),
        ["leak:heap block:cling_block"],
        "{:?}",
        outcome.findings
    );
    let leak = &outcome.findings[0];
    assert!(
        leak.detail_texts("acquired")
            .any(|text| text.starts_with("op #1 `cling` → cling_block")),
        "{:?}",
        leak.details
    );
    // Four destructor calls for each of the three threads: one per round, none after.
    assert_eq!(SET_AGAIN_CALLS.load(Ordering::Relaxed), 3 * 4);
}
