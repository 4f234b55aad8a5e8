//! Uniform random choice among the runnable threads.

use std::borrow::Cow;

use super::Strategy;
use crate::rng::Rng;

pub struct RandomStrategy;

impl Strategy for RandomStrategy {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("random")
    }

    #[inline]
    fn next_thread(&mut self, runnable: &[u32], rng: &mut Rng, _step: u64) -> u32 {
        runnable[rng.below(runnable.len() as u64) as usize]
    }
}
