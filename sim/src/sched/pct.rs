//! PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).
//!
//! Each thread gets a random initial priority when first seen; the highest-priority runnable
//! thread always runs. At `depth - 1` change points, drawn uniformly from 1..=k where k is the
//! expected number of steps of the run (`steps`), the running thread's priority drops below every
//! initial priority. A bug of depth d is found with probability at least 1/(n * k^(d-1)), so k
//! should be near the run's length: the runner fills it in from the scenario
//! (`StrategyChoice::with_steps_from`) unless the schedule names it.
//!
//! The change points are steps of the run, as k counts them, but the strategy is asked only at a
//! decision (a step where two or more threads could run). A change point whose step is no
//! decision fires at the first decision at or after it, one change point per decision, so that
//! each demotes a thread of its own. Counted in decisions instead, a change point past the run's
//! count of decisions (often half its steps or fewer) never fired, and PCT ran with fewer than
//! `depth - 1` of them.

use std::borrow::Cow;

use super::Strategy;
use crate::rng::{Rng, Stream};

pub struct Pct {
    depth: u32,
    /// The k its change points were drawn over, for the run's header.
    steps: u64,
    priorities: Vec<Option<u64>>,
    /// The steps (from 1) of the change points not yet fired, latest first: the next to fire is
    /// the last.
    change_points: Vec<u64>,
    rng: Rng,
}

impl Pct {
    pub fn new(seed: u64, depth: u32, steps: u64) -> Pct {
        // PCT draws from a stream derived from the scheduler's, so that choosing PCT over random
        // does not shift the scheduler stream other strategies use.
        let mut rng = Rng::new(seed ^ 0x5043_5400, Stream::Scheduler);
        let steps = steps.max(1);
        let mut change_points: Vec<u64> = (1..depth.max(1))
            .map(|_| change_point(rng.below(steps), steps))
            .collect();
        change_points.sort_unstable_by(|a, b| b.cmp(a));
        Pct {
            depth,
            steps,
            priorities: Vec::new(),
            change_points,
            rng,
        }
    }

    fn priority(&mut self, thread: u32) -> u64 {
        let index = thread as usize;
        if self.priorities.len() <= index {
            self.priorities.resize(index + 1, None);
        }
        if self.priorities[index].is_none() {
            // Initial priorities sit above every change-point priority (which are below `depth`).
            self.priorities[index] = Some(u64::from(self.depth) + 1 + self.rng.below(1 << 32));
        }
        self.priorities[index].expect("set above")
    }
}

/// The step (counted from 1) of a change point drawn as `draw` in `0..steps`: the draw itself,
/// except that 0, which no step has, stands for the last one. Drawn this way rather than as
/// `1 + draw`, every draw a pinned repro made before names the number it named then.
fn change_point(draw: u64, steps: u64) -> u64 {
    if draw == 0 { steps } else { draw }
}

impl Strategy for Pct {
    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(format!("pct(depth={}, steps={})", self.depth, self.steps))
    }

    fn next_thread(&mut self, runnable: &[u32], _rng: &mut Rng, step: u64) -> u32 {
        let mut best = runnable[0];
        let mut best_priority = self.priority(best);
        for &thread in &runnable[1..] {
            let priority = self.priority(thread);
            if priority > best_priority {
                best = thread;
                best_priority = priority;
            }
        }
        // The earliest change point due by this step fires here; another one also due waits for
        // the next decision (see the module's header).
        if self
            .change_points
            .last()
            .is_some_and(|&point| point <= step)
        {
            self.change_points.pop();
            self.priorities[best as usize] = Some(self.change_points.len() as u64);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threads `pct` picks from `threads` at decisions made at `steps` of the run.
    fn picks(pct: &mut Pct, threads: &[u32], steps: impl Iterator<Item = u64>) -> Vec<u32> {
        let mut rng = Rng::new(0, Stream::Scheduler);
        steps
            .map(|step| pct.next_thread(threads, &mut rng, step))
            .collect()
    }

    /// How many times the picked thread changes from one decision to the next.
    fn switches(picks: &[u32]) -> usize {
        picks.windows(2).filter(|w| w[0] != w[1]).count()
    }

    #[test]
    fn highest_priority_runs_until_a_change_point() {
        let mut pct = Pct::new(3, 1, 100);
        let picked = picks(&mut pct, &[0, 1, 2], 1..=51);
        assert_eq!(switches(&picked), 0, "depth 1 never switches: {picked:?}");
        let mut deep = Pct::new(3, 20, 30);
        let picked = picks(&mut deep, &[0, 1, 2], 1..=30);
        assert!(
            switches(&picked) > 0,
            "change points switch threads: {picked:?}"
        );
    }

    #[test]
    fn change_points_fall_on_steps_one_to_k() {
        assert_eq!(
            change_point(0, 7),
            7,
            "a draw of 0 stands for the last step"
        );
        assert_eq!(change_point(1, 7), 1);
        assert_eq!(change_point(6, 7), 6);
        // With one step and depth 2, the one change point is step 1: the first thread chosen
        // loses its priority at once, and the other runs from then on.
        for seed in 0..20 {
            let mut pct = Pct::new(seed, 2, 1);
            assert_eq!(pct.change_points, vec![1], "seed {seed}");
            let picked = picks(&mut pct, &[0, 1], 1..=2);
            assert_ne!(
                picked[0], picked[1],
                "seed {seed}: the change point at step 1 fired"
            );
        }
    }

    /// A run makes a decision at only some of its steps (here every third: between them one
    /// thread alone can run). Every one of the `depth - 1` change points, drawn over all 30
    /// steps, still fires, each at a decision of its own, and each demotes the thread that had
    /// the processor: with more threads than change points, the pick changes once per change
    /// point, and never otherwise.
    #[test]
    fn every_change_point_fires_though_most_steps_are_no_decision() {
        let depth = 5;
        for seed in 0..40 {
            let mut pct = Pct::new(seed, depth, 30);
            let decisions = (1..=20).map(|decision| 3 * decision);
            let picked = picks(&mut pct, &[0, 1, 2, 3, 4, 5, 6, 7], decisions);
            assert!(
                pct.change_points.is_empty(),
                "seed {seed}: {:?} left",
                pct.change_points
            );
            assert_eq!(
                switches(&picked),
                depth as usize - 1,
                "seed {seed}: {picked:?}"
            );
        }
    }
}
