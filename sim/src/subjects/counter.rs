//! `counter`: a tiny subject that holds named objects, each a heap block, optionally guarded by a
//! mutex. It exists to exercise the runner end to end (threads, blocking on a lock, leaks, growth)
//! with the least possible model, and as the smallest example of the Subject trait.
//!
//! Defect `leak-on-evict`: `evict` forgets the object without freeing its block, the shape of
//! every "destroy skips a release" bug.
//!
//! Generated scenarios (sweeps, fuzz targets, property tests) use only `create`, `evict` and
//! `bump`, on slots 0 to 7, and end each lifecycle by evicting what it created, so that with the
//! defect off they pass and with it on they leak: the fuzz canary relies on both. `hold` and
//! `release` are for hand-written scenarios: a `hold` that is never released, or a `release`
//! without a `hold`, is a bug of the scenario, which the runner reports, not of the subject.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::{Io, LockId, LockKind, Os, Tid};
use crate::subject::{Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CounterOp {
    /// Creates object `slot` (a 64-byte heap block).
    Create { slot: u8 },
    /// Frees object `slot`.
    Evict { slot: u8 },
    /// Takes the shared mutex (blocking), increments, releases.
    Bump,
    /// Takes the shared mutex and keeps it: a thread that does this and exits holds it forever.
    /// Hand-written scenarios only: a random `hold` is a bug of the generated program, not of the
    /// subject. (The hand-written `Arbitrary` below never generates it.)
    Hold,
    /// Releases the shared mutex taken by `hold`. Hand-written scenarios only.
    Release,
}

/// Slots generated scenarios use (hand-written ones may use any `u8`).
const GENERATED_SLOTS: u8 = 8;

impl<'a> Arbitrary<'a> for CounterOp {
    fn arbitrary(input: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let slot = u8::arbitrary(input)? % GENERATED_SLOTS;
        Ok(match input.int_in_range(0..=2u8)? {
            0 => CounterOp::Create { slot },
            1 => CounterOp::Evict { slot },
            _ => CounterOp::Bump,
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (2, Some(2))
    }
}

pub struct Counter {
    objects: BTreeMap<u8, u64>,
    lock: Option<LockId>,
    leak_on_evict: bool,
    count: u64,
}

impl Subject for Counter {
    type Op = CounterOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "counter",
            summary: "named heap objects and one shared mutex: the teaching subject",
            ops: vec![
                OpDoc {
                    name: "create",
                    summary: "create object `slot` (a 64 B heap block)",
                },
                OpDoc {
                    name: "evict",
                    summary: "free object `slot`",
                },
                OpDoc {
                    name: "bump",
                    summary: "lock, increment, unlock the shared mutex",
                },
                OpDoc {
                    name: "hold",
                    summary: "lock the shared mutex and keep it",
                },
                OpDoc {
                    name: "release",
                    summary: "unlock the shared mutex",
                },
            ],
            defects: vec![DefectInfo {
                name: "leak-on-evict",
                summary: "evict forgets the block without freeing it",
                source: "the generic destroy-skips-release shape",
            }],
            caches: vec![],
            params: vec![],
            host_backed: false,
        }
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        // The shared mutex lives for the whole process, like a static: created before the first
        // lifecycle, so no lifecycle's baseline sees it appear.
        let lock = os.lock_create(LockKind::Mutex, "counter_lock_init").ok();
        Counter {
            objects: BTreeMap::new(),
            lock,
            leak_on_evict: config.defect("leak-on-evict"),
            count: 0,
        }
    }

    fn op_name(op: &CounterOp) -> &'static str {
        match op {
            CounterOp::Create { .. } => "create",
            CounterOp::Evict { .. } => "evict",
            CounterOp::Bump => "bump",
            CounterOp::Hold => "hold",
            CounterOp::Release => "release",
        }
    }

    fn validate_op(op: &CounterOp, names: &mut Names) -> Result<(), OpRefusal> {
        match op {
            CounterOp::Create { slot } => names.define("slot", slot),
            CounterOp::Evict { slot } => names
                .require("slot", slot, "object")
                .map_err(OpRefusal::of_field("slot"))?,
            _ => {}
        }
        Ok(())
    }

    /// A generated lifecycle ends by evicting every object it may have created, as a well-behaved
    /// program would; only the defect then leaves blocks behind.
    fn closing_ops(names: &Names) -> Vec<CounterOp> {
        (0..GENERATED_SLOTS)
            .filter(|slot| names.is_defined("slot", slot))
            .map(|slot| CounterOp::Evict { slot })
            .collect()
    }

    fn apply(&mut self, os: &mut Os, tid: Tid, op: &CounterOp) -> Step<Self> {
        match op {
            CounterOp::Create { slot } => {
                if !self.objects.contains_key(slot)
                    && let Ok(block) = os.malloc(64, "counter_create")
                {
                    self.objects.insert(*slot, block);
                }
                Step::Done
            }
            CounterOp::Evict { slot } => {
                if let Some(block) = self.objects.remove(slot)
                    && !self.leak_on_evict
                {
                    let _ = os.free(block, "counter_evict");
                }
                Step::Done
            }
            CounterOp::Bump => self.lock_then(os, tid, true),
            CounterOp::Hold => self.lock_then(os, tid, false),
            CounterOp::Release => {
                if let Some(lock) = self.lock {
                    let _ = os.lock_release(tid, lock, "counter_release");
                }
                Step::Done
            }
        }
    }
}

impl Counter {
    fn lock_then(&mut self, os: &mut Os, tid: Tid, release: bool) -> Step<Self> {
        let Some(lock) = self.lock else {
            return Step::Done;
        };
        match os.lock_acquire(tid, lock, "counter_lock") {
            Io::Ready(Ok(())) => {
                self.count += 1;
                if release {
                    let _ = os.lock_release(tid, lock, "counter_unlock");
                }
                Step::Done
            }
            Io::Ready(Err(_)) => Step::Done,
            Io::Block(reason) => Step::block(reason, move |subject: &mut Counter, os, tid| {
                subject.lock_then(os, tid, release)
            }),
        }
    }
}
