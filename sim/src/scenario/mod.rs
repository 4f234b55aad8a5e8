//! Scenarios: TOML scripts that say what to run, and the same scripts generated from a seed.
//!
//! A scenario names a subject, its defects, a seed, limits, faults, a schedule strategy and a
//! sequence of lifecycles. Each lifecycle is `setup`, then `ops` repeated `repeat` times, then
//! `teardown`; the checks run after every repetition (against the baseline at its start) and after
//! the teardown (against the baseline before the setup), or, with a setup and no teardown, at
//! the end of the lifecycle (for what the setup acquired). Threads declared in a lifecycle run their
//! own op lists once spawned by a `spawn` op, interleaved by the scheduler.
//!
//! ```toml
//! name = "instantiate-destroy"
//! subject = "wasi-runtime"
//! defects = ["prestats-lock-leak"]
//! seed = 1
//!
//! [[lifecycle]]
//! name = "instance"
//! repeat = 100
//! ops = [
//!   { op = "instantiate", instance = 0 },
//!   { op = "destroy", instance = 0 },
//! ]
//! ```

mod construction;
pub mod examples;
pub(crate) mod fits_toml;
pub mod generate;
pub mod lints;
pub mod locations;
pub mod nesting;
mod op_keys;
pub mod parse;
pub mod print;
mod sketch;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::{FaultKind, FaultPlan};
use crate::findings::{OpList, OpRef};
use crate::os::{Limits, PlatformModel};
use crate::sched::StrategyChoice;

/// An op as a scenario holds it: the runner's own, or the subject's.
#[derive(Clone, Debug, PartialEq)]
pub enum ScenarioOp<O> {
    /// Starts the declared thread's op list.
    Spawn {
        thread: String,
    },
    /// Waits for a spawned thread to finish.
    Join {
        thread: String,
    },
    /// Process exit: runs exit hooks in reverse registration order.
    Exit,
    /// Sleeps on the virtual clock.
    Sleep {
        ticks: u64,
    },
    Subject(O),
}

/// The runner's ops as they appear in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum RunnerOp {
    Spawn { thread: String },
    Join { thread: String },
    Exit,
    Sleep { ticks: u64 },
}

pub(crate) use crate::subject::RUNNER_OPS;

static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the program that printed commands and hints start with: `sim`, or a crate's own binary
/// built on `cli::main_with` (whose subjects `sim` does not know); the first call wins
/// (`cli::main_with` calls it; `cli::main_with_args` names it for its call alone,
/// `name_program_for_call`).
pub(crate) fn set_program(name: &str) {
    let _ = PROGRAM.set(name.to_string());
}

thread_local! {
    /// The program a command running on this thread was called as (`cli::main_with_args`'s
    /// argv[0]), for the length of that call: tests of one binary call the CLI under several
    /// names, in parallel, so one name for the process would be whichever test came first.
    static PROGRAM_OF_CALL: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// Names the program for printed commands and hints on this thread until the guard is dropped;
/// then as it was.
pub(crate) fn name_program_for_call(name: &str) -> ProgramOfCall {
    // One leaked copy per distinct name: a process calls the CLI under a handful of names.
    static NAMES: crate::subject::MadeOnce<String, str> = std::sync::RwLock::new(Vec::new());
    let name = crate::subject::made_once(&NAMES, name.to_string(), || {
        Box::leak(name.to_string().into_boxed_str())
    });
    ProgramOfCall {
        before: PROGRAM_OF_CALL.with(|program| program.replace(Some(name))),
    }
}

/// Restores the program name of the call before it on drop (`name_program_for_call`).
pub(crate) struct ProgramOfCall {
    before: Option<&'static str>,
}

impl Drop for ProgramOfCall {
    fn drop(&mut self) {
        let _ = PROGRAM_OF_CALL.try_with(|program| program.set(self.before));
    }
}

/// The program that printed commands and hints start with: the one the command running on this
/// thread was called as (`cli::main_with_args`), else the process's (`set_program`), else `sim`.
/// A binary of one's own built on `cli::main_with` knows subjects that `sim` does not, so a hint
/// of `sim list mine` would name a command that does not know `mine`.
pub fn program() -> &'static str {
    PROGRAM_OF_CALL
        .try_with(std::cell::Cell::get)
        .ok()
        .flatten()
        .unwrap_or_else(|| PROGRAM.get().map_or("sim", String::as_str))
}

impl<O> ScenarioOp<O> {
    pub fn name(&self, subject_name: impl Fn(&O) -> &'static str) -> &'static str {
        match self {
            ScenarioOp::Spawn { .. } => "spawn",
            ScenarioOp::Join { .. } => "join",
            ScenarioOp::Exit => "exit",
            ScenarioOp::Sleep { .. } => "sleep",
            ScenarioOp::Subject(op) => subject_name(op),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ThreadSpec<O> {
    pub name: String,
    pub ops: Vec<ScenarioOp<O>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle<O> {
    /// Borrowed when generated (`lifecycle-1`, …), owned when parsed: a fuzz input's lifecycles
    /// are named, and their names copied into the outcome, without allocating.
    pub name: Cow<'static, str>,
    pub repeat: u32,
    /// Repetitions before the growth detector starts comparing.
    pub warmup: u32,
    pub setup: Vec<ScenarioOp<O>>,
    pub ops: Vec<ScenarioOp<O>>,
    pub teardown: Vec<ScenarioOp<O>>,
    pub threads: Vec<ThreadSpec<O>>,
}

impl<O> Lifecycle<O> {
    pub fn thread(&self, name: &str) -> Option<&ThreadSpec<O>> {
        self.threads.iter().find(|t| t.name == name)
    }

    /// Ops in all lists, counting each thread's once.
    pub fn op_count(&self) -> usize {
        self.setup.len()
            + self.ops.len()
            + self.teardown.len()
            + self.threads.iter().map(|t| t.ops.len()).sum::<usize>()
    }

    /// Steps the lifecycle takes when nothing blocks: setup and teardown once, the op list once
    /// per repetition, each op one step, and each thread spawned its ops and its exit.
    pub fn steps_estimate(&self) -> u64 {
        let list = |ops: &[ScenarioOp<O>]| -> u64 {
            ops.iter()
                .map(|op| match op {
                    ScenarioOp::Spawn { thread } => {
                        1 + self.thread(thread).map_or(0, |t| t.ops.len() as u64 + 1)
                    }
                    _ => 1,
                })
                .sum()
        };
        list(&self.setup)
            .saturating_add(u64::from(self.repeat).saturating_mul(list(&self.ops)))
            .saturating_add(list(&self.teardown))
    }
}

/// Where an op is in a scenario: its lifecycle, its list (a declared thread's by the thread's
/// name) and its index in the list, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpPlace<'s> {
    pub lifecycle: usize,
    pub list: OpList,
    pub thread: Option<&'s str>,
    pub index: usize,
}

impl OpPlace<'_> {
    /// The place as a report names an op (`index` from 1), for `OpLocations::locate`.
    pub fn op_ref(&self, name: &str) -> OpRef {
        OpRef {
            lifecycle: self.lifecycle as u32,
            repetition: 0,
            list: self.list,
            index: self.index as u32 + 1,
            name: name.to_string(),
            thread: 0,
            during: None,
            thread_name: self.thread.map(str::to_string),
            location: None,
            trace_event: None,
        }
    }
}

/// Default warm-up: a quarter of the repetitions, at most 16.
pub fn default_warmup(repeat: u32) -> u32 {
    (repeat / 4).min(16)
}

/// Fault probabilities per kind and swarm mode, as written in `[faults]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    pub probabilities: BTreeMap<FaultKind, f64>,
    pub swarm: bool,
}

impl FaultSpec {
    /// The plan for one seed: the probabilities, reduced to a random subset in swarm mode.
    pub fn plan(&self, seed: u64) -> FaultPlan {
        let mut plan = FaultPlan::none();
        for (&kind, &probability) in &self.probabilities {
            plan = plan.with(kind, parts_per_million(probability));
        }
        if self.swarm { plan.swarm(seed) } else { plan }
    }

    /// Whether some run may inject a fault of `kind`: swarm mode may enable any kind, at a
    /// default rate where the file gives it none (`FaultPlan::swarm`). A rate that rounds to 0
    /// parts per million (`plan`'s unit) never fires.
    pub fn may_fire(&self, kind: FaultKind) -> bool {
        self.swarm
            || self
                .probabilities
                .get(&kind)
                .is_some_and(|&p| parts_per_million(p) > 0)
    }
}

/// A fault probability in the fault plan's unit, parts per million, rounded.
fn parts_per_million(probability: f64) -> u32 {
    (probability * 1e6).round() as u32
}

/// Expectations a repro or regression file pins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Finding signatures the run must produce (with its defects on).
    #[serde(default)]
    pub signatures: Vec<String>,
    /// The trace hash of the run, as `0x…` hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario<O> {
    /// Borrowed for a scenario decoded from fuzz bytes (see `generate::from_bytes`).
    pub name: Cow<'static, str>,
    pub description: Option<String>,
    /// The subject's own name (`SubjectInfo::name`, which parsing checks the file against):
    /// borrowed, so that a fuzz input's scenario and header name it without allocating.
    pub subject: Cow<'static, str>,
    pub defects: Vec<String>,
    pub seed: u64,
    pub limits: Limits,
    /// Object sizes of the modelled platform (`[platform]`): what a leaked lock costs.
    pub platform: PlatformModel,
    pub faults: FaultSpec,
    pub schedule: StrategyChoice,
    pub config: toml::Table,
    /// Extra bounded-cache allowances: resource kind → units allowed per key.
    pub caches: BTreeMap<String, u64>,
    pub lifecycles: Vec<Lifecycle<O>>,
    pub expect: Option<Expect>,
}

impl<O> Scenario<O> {
    pub fn op_count(&self) -> usize {
        self.lifecycles.iter().map(Lifecycle::op_count).sum()
    }

    /// Steps a run takes when nothing blocks (`Lifecycle::steps_estimate`, summed): the k that
    /// PCT spreads its change points over when the schedule does not name one.
    pub fn steps_estimate(&self) -> u64 {
        self.lifecycles
            .iter()
            .map(Lifecycle::steps_estimate)
            .fold(0, u64::saturating_add)
    }

    /// The op at `place`, if the scenario has one there.
    pub fn op_at(&self, place: &OpPlace) -> Option<&ScenarioOp<O>> {
        let lifecycle = self.lifecycles.get(place.lifecycle)?;
        let list = match place.list {
            OpList::Setup => &lifecycle.setup,
            OpList::Ops => &lifecycle.ops,
            OpList::Teardown => &lifecycle.teardown,
            OpList::Thread => &lifecycle.thread(place.thread?)?.ops,
        };
        list.get(place.index)
    }

    /// The declared thread that the op at `spawn`'s place starts, when that op is a `spawn`:
    /// what names the thread an op of a spawned thread ran on, where only the thread's id and
    /// the spawn's place are known (two traces compared). `None` for a place this scenario does
    /// not have, or an op there that spawns nothing.
    pub fn spawned_thread(&self, spawn: &OpRef) -> Option<&str> {
        let place = OpPlace {
            lifecycle: spawn.lifecycle as usize,
            list: spawn.list,
            // Threads other than main do not spawn: a thread's list is no place of a spawn.
            thread: None,
            index: (spawn.index as usize).checked_sub(1)?,
        };
        match self.op_at(&place)? {
            ScenarioOp::Spawn { thread } => Some(thread),
            _ => None,
        }
    }
}
