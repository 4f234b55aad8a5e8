//! PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).
//!
//! Each thread gets a random initial priority when first seen; the highest-priority runnable
//! thread always runs. At `depth - 1` change points, drawn uniformly from 1..=k where k is the
//! expected number of decisions (`steps`), the running thread's priority drops below every
//! initial priority. A bug of depth d is found with probability at least 1/(n * k^(d-1)), so k
//! should be near the run's length: the runner fills it in from the scenario
//! (`StrategyChoice::with_steps_from`) unless the schedule names it.

use std::borrow::Cow;

use super::Strategy;
use crate::rng::{Rng, Stream};

pub struct Pct {
    depth: u32,
    /// The k its change points were drawn over, for the run's header.
    steps: u64,
    priorities: Vec<Option<u64>>,
    change_points: Vec<u64>,
    step: u64,
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
        change_points.sort_unstable();
        Pct {
            depth,
            steps,
            priorities: Vec::new(),
            change_points,
            step: 0,
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

/// The decision (counted from 1) at which a change point drawn as `draw` in `0..steps` fires:
/// the draw itself, except that 0, which no decision has, stands for the last one. Drawn this way
/// rather than as `1 + draw`, every change point a pinned repro drew before keeps its decision.
fn change_point(draw: u64, steps: u64) -> u64 {
    if draw == 0 { steps } else { draw }
}

impl Strategy for Pct {
    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(format!("pct(depth={}, steps={})", self.depth, self.steps))
    }

    fn next_thread(&mut self, runnable: &[u32], _rng: &mut Rng) -> u32 {
        let mut best = runnable[0];
        let mut best_priority = self.priority(best);
        for &thread in &runnable[1..] {
            let priority = self.priority(thread);
            if priority > best_priority {
                best = thread;
                best_priority = priority;
            }
        }
        self.step += 1;
        while let Some(position) = self
            .change_points
            .iter()
            .position(|&point| point == self.step)
        {
            self.change_points.remove(position);
            self.priorities[best as usize] = Some(self.change_points.len() as u64);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_runs_until_a_change_point() {
        let mut pct = Pct::new(3, 1, 100);
        let mut rng = Rng::new(0, Stream::Scheduler);
        let first = pct.next_thread(&[0, 1, 2], &mut rng);
        assert!(
            (0..50).all(|_| pct.next_thread(&[0, 1, 2], &mut rng) == first),
            "depth 1 never switches"
        );
        let mut deep = Pct::new(3, 20, 30);
        let picks: Vec<u32> = (0..30)
            .map(|_| deep.next_thread(&[0, 1, 2], &mut rng))
            .collect();
        assert!(
            picks.windows(2).any(|w| w[0] != w[1]),
            "change points switch threads: {picks:?}"
        );
    }

    #[test]
    fn change_points_fall_on_decisions_one_to_k() {
        assert_eq!(
            change_point(0, 7),
            7,
            "a draw of 0 stands for the last decision"
        );
        assert_eq!(change_point(1, 7), 1);
        assert_eq!(change_point(6, 7), 6);
        // With one step and depth 2, the one change point is decision 1: the first thread
        // chosen loses its priority at once, and the other runs from then on.
        let mut rng = Rng::new(0, Stream::Scheduler);
        for seed in 0..20 {
            let mut pct = Pct::new(seed, 2, 1);
            assert_eq!(pct.change_points, vec![1], "seed {seed}");
            let first = pct.next_thread(&[0, 1], &mut rng);
            let second = pct.next_thread(&[0, 1], &mut rng);
            assert_ne!(
                first, second,
                "seed {seed}: the change point at decision 1 fired"
            );
        }
    }
}
