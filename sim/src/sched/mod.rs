//! The scheduler: the one oracle for every nondeterministic choice of a run.
//!
//! It decides which runnable thread goes next (through a pluggable strategy, one per file), hands
//! out the subject's random values, and decides whether a fault fires. Every decision is drawn
//! from a seeded ChaCha8 stream of its own, so the seed alone reproduces the run. Thread choices
//! are recorded so that a run can also be replayed from its schedule.
//!
//! Fidelity: threads are interleaved at op granularity (one subject op, or one continuation, per
//! step). Choices are made only where two or more threads are runnable.

mod pct;
mod random;
mod replay;

pub use pct::Pct;
pub use random::RandomStrategy;
pub use replay::Replay;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::faults::{FaultKind, FaultPlan};
use crate::rng::{Rng, Stream};

/// How the next thread is chosen. Implementations are deterministic given their rng.
pub trait Strategy {
    /// The name the run's header prints: borrowed when it has no parameters, so that a run with
    /// the default strategy (every fuzz input's) does not allocate it.
    fn name(&self) -> Cow<'static, str>;
    /// Picks one of `runnable` (never empty, sorted ascending) for `step`, the run's step this
    /// decision starts, counted from 1 with the steps where one thread alone could run, which
    /// the strategy is not asked about (PCT's change points are steps).
    fn next_thread(&mut self, runnable: &[u32], rng: &mut Rng, step: u64) -> u32;
    /// Whether the strategy noticed that a recorded schedule no longer fits the run.
    fn diverged(&self) -> Option<String> {
        None
    }
}

/// The strategy a scenario or command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StrategyChoice {
    #[default]
    Random,
    Pct {
        #[serde(default = "default_pct_depth")]
        depth: u32,
        /// The k of PCT: how many steps the run is expected to take, over which the change
        /// points are spread (each fires at the first decision at or after its step). Left out,
        /// it is the scenario's own count of steps (`Scenario::steps_estimate`), filled in before
        /// the run (`with_steps_from`) so that the header, and a repro pinned from it, carry the
        /// figure the run used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        steps: Option<u64>,
    },
    Replay {
        schedule: Vec<u32>,
    },
}

fn default_pct_depth() -> u32 {
    3
}

/// PCT's depth: one priority level at least, and change points (depth - 1 of them, drawn up
/// front) few enough to draw. Bugs deeper than a handful are out of PCT's reach anyway.
pub const PCT_DEPTH_MIN: u32 = 1;
pub const PCT_DEPTH_MAX: u32 = 1000;

/// The keys each strategy takes in a scenario's `schedule` table, besides `strategy` itself.
/// serde ignores a key that belongs to another strategy, and for `random` (a unit variant) any key
/// at all, so the parser checks against this list.
pub const STRATEGY_KEYS: &[(&str, &[&str])] = &[
    ("random", &[]),
    ("pct", &["depth", "steps"]),
    ("replay", &["schedule"]),
];
/// PCT's k when neither the schedule nor a scenario gives one (a `Scheduler` made directly).
const PCT_STEPS_UNKNOWN: u64 = 1000;

impl StrategyChoice {
    /// PCT with `depth` and the steps of the scenario it will run.
    pub fn pct(depth: u32) -> StrategyChoice {
        StrategyChoice::Pct { depth, steps: None }
    }

    /// This choice with PCT's `steps` filled in, if left out, by `estimate` (the scenario's
    /// count of steps). Change points drawn over a fixed 1,000 steps would mostly fall after a
    /// run of a few dozen decisions, where they change nothing, and PCT would then run every
    /// thread to its end in priority order.
    pub fn with_steps_from(self, estimate: impl FnOnce() -> u64) -> StrategyChoice {
        match self {
            StrategyChoice::Pct { depth, steps: None } => StrategyChoice::Pct {
                depth,
                steps: Some(estimate().max(1)),
            },
            other => other,
        }
    }

    /// Why this choice cannot run as asked, if it cannot: the key of a `schedule` table whose
    /// value is refused, and why. One rule for scenario files and the command line.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match self {
            StrategyChoice::Pct { depth, .. }
                if !(PCT_DEPTH_MIN..=PCT_DEPTH_MAX).contains(depth) =>
            {
                Err((
                    "depth",
                    format!(
                        "PCT `depth` must be between {PCT_DEPTH_MIN} and {PCT_DEPTH_MAX}, found {depth}"
                    ),
                ))
            }
            // `Pct::new` would quietly count it as 1.
            StrategyChoice::Pct { steps: Some(0), .. } => {
                Err(("steps", "PCT `steps` must be at least 1".into()))
            }
            _ => Ok(()),
        }
    }

    pub fn build(&self, seed: u64) -> Box<dyn Strategy> {
        match self {
            StrategyChoice::Random => Box::new(RandomStrategy),
            StrategyChoice::Pct { depth, steps } => {
                Box::new(Pct::new(seed, *depth, steps.unwrap_or(PCT_STEPS_UNKNOWN)))
            }
            StrategyChoice::Replay { schedule } => Box::new(Replay::new(schedule.clone())),
        }
    }
}

/// The strategy of a run. The random one, the most common, is called directly instead of
/// through the trait object: a scheduling decision is a handful of nanoseconds.
enum Built {
    Random(RandomStrategy),
    Other(Box<dyn Strategy>),
}

impl Built {
    fn get(&self) -> &dyn Strategy {
        match self {
            Built::Random(random) => random,
            Built::Other(strategy) => strategy.as_ref(),
        }
    }
}

/// Decisions a recording scheduler makes room for when it records its first: a run with threads
/// makes hundreds, and a list grown from empty would move at every doubling on the way.
const DECISIONS_RESERVED: usize = 1024;

pub struct Scheduler {
    strategy: Built,
    thread_rng: Rng,
    fault_rng: Rng,
    subject_rng: Rng,
    plan: FaultPlan,
    decisions: Vec<u32>,
    record_decisions: bool,
    /// Decisions made, recorded or not: what a caller that only counts them (the scheduler
    /// benchmark) reads instead of having the whole list recorded.
    decisions_made: u64,
}

impl Scheduler {
    pub fn new(seed: u64, choice: &StrategyChoice, plan: FaultPlan) -> Scheduler {
        Scheduler {
            strategy: match choice {
                StrategyChoice::Random => Built::Random(RandomStrategy),
                other => Built::Other(other.build(seed)),
            },
            thread_rng: Rng::new(seed, Stream::Scheduler),
            fault_rng: Rng::new(seed, Stream::Faults),
            subject_rng: Rng::new(seed, Stream::Subject),
            plan,
            decisions: Vec::new(),
            record_decisions: true,
            decisions_made: 0,
        }
    }

    pub fn strategy_name(&self) -> Cow<'static, str> {
        self.strategy.get().name()
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Stops keeping the list of decisions (fuzzing does not need it).
    pub fn set_recording(&mut self, on: bool) {
        self.record_decisions = on;
    }

    /// The thread of `runnable` to run next; `None` where a recorded schedule being replayed
    /// stopped fitting the run at this decision (`diverged` says how), where the caller stops.
    /// Only a strategy other than random can answer `None`, and only its arm checks: with the
    /// answer an `Option` built in each arm, the random arm's `Some` goes straight to the
    /// caller's use of it once inlined, where a flag the caller read after every decision cost
    /// the scheduler benchmark 1.4 instructions per decision.
    ///
    /// `step` is the run's step this decision starts (see `Strategy::next_thread`).
    #[inline]
    pub fn next_thread(&mut self, runnable: &[u32], step: u64) -> Option<u32> {
        debug_assert!(!runnable.is_empty());
        let choice = match &mut self.strategy {
            Built::Random(random) => random.next_thread(runnable, &mut self.thread_rng, step),
            Built::Other(strategy) => {
                let choice = strategy.next_thread(runnable, &mut self.thread_rng, step);
                if strategy.diverged().is_some() {
                    return None;
                }
                choice
            }
        };
        self.decisions_made += 1;
        if self.record_decisions {
            // One check for a full list, whose growth is out of line: the push that follows then
            // knows there is room, and checks nothing.
            if self.decisions.len() == self.decisions.capacity() {
                self.make_room_for_decisions();
            }
            self.decisions.push(choice);
        }
        Some(choice)
    }

    /// Room for more decisions: `DECISIONS_RESERVED` for the first, then as much again as the
    /// list holds (the doubling a push would do).
    #[cold]
    fn make_room_for_decisions(&mut self) {
        self.decisions
            .reserve(DECISIONS_RESERVED.max(self.decisions.len()));
    }

    /// A uniform value in `0..bound` from the subject's stream.
    pub fn random_below(&mut self, bound: u64) -> u64 {
        self.subject_rng.below(bound.max(1))
    }

    pub fn random_u64(&mut self) -> u64 {
        self.subject_rng.next_u64()
    }

    /// Decides whether a fault of `kind` fires now. Draws only when the kind is enabled, so a plan
    /// without faults consumes nothing.
    #[inline]
    pub fn fault(&mut self, kind: FaultKind) -> bool {
        let ppm = self.plan.ppm(kind);
        ppm > 0 && self.fault_rng.chance_ppm(ppm)
    }

    /// The decisions recorded so far, taken out (the scheduler keeps none): for an outcome,
    /// which ends the run.
    pub fn take_decisions(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.decisions)
    }

    /// How many decisions were made so far, recorded or not.
    pub fn decisions_made(&self) -> u64 {
        self.decisions_made
    }

    pub fn diverged(&self) -> Option<String> {
        self.strategy.get().diverged()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pct_depth_and_steps_are_checked_at_both_ends_and_other_strategies_pass() {
        assert!(StrategyChoice::pct(PCT_DEPTH_MIN).check().is_ok());
        assert!(StrategyChoice::pct(PCT_DEPTH_MAX).check().is_ok());
        let error = StrategyChoice::pct(0).check().unwrap_err();
        assert_eq!(
            error,
            (
                "depth",
                "PCT `depth` must be between 1 and 1000, found 0".to_string()
            )
        );
        assert!(StrategyChoice::pct(PCT_DEPTH_MAX + 1).check().is_err());
        let no_steps = StrategyChoice::Pct {
            depth: 3,
            steps: Some(0),
        };
        assert_eq!(
            no_steps.check().unwrap_err(),
            ("steps", "PCT `steps` must be at least 1".to_string())
        );
        assert!(StrategyChoice::Random.check().is_ok());
        let replay = StrategyChoice::Replay { schedule: vec![] };
        assert!(replay.check().is_ok());
    }

    fn choices(choice: &StrategyChoice, seed: u64) -> Vec<u32> {
        let mut scheduler = Scheduler::new(seed, choice, FaultPlan::none());
        (0..200)
            .map_while(|step| {
                let runnable: &[u32] = if step % 3 == 0 { &[0, 2] } else { &[0, 1, 2] };
                scheduler.next_thread(runnable, step + 1)
            })
            .collect()
    }

    #[test]
    fn every_strategy_is_deterministic_and_replay_reproduces_it() {
        for choice in [
            StrategyChoice::Random,
            StrategyChoice::Pct {
                depth: 3,
                steps: Some(200),
            },
        ] {
            let first = choices(&choice, 11);
            assert_eq!(first, choices(&choice, 11));
            let replayed = choices(
                &StrategyChoice::Replay {
                    schedule: first.clone(),
                },
                999,
            );
            assert_eq!(
                first, replayed,
                "replaying the recorded schedule gives the same choices"
            );
        }
        assert_ne!(
            choices(&StrategyChoice::Random, 1),
            choices(&StrategyChoice::Random, 2)
        );
    }

    #[test]
    fn faults_fire_only_when_planned() {
        let mut off = Scheduler::new(5, &StrategyChoice::Random, FaultPlan::none());
        assert!((0..1000).all(|_| !off.fault(FaultKind::Alloc)));
        let mut on = Scheduler::new(
            5,
            &StrategyChoice::Random,
            FaultPlan::none().with(FaultKind::Alloc, 1_000_000),
        );
        assert!(on.fault(FaultKind::Alloc));
        assert!(!on.fault(FaultKind::Reserve));
    }
}
