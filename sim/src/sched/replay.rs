//! Replays a recorded schedule. A recorded choice that is not runnable any more, or none left,
//! means the run has diverged from the recording; the strategy notes it, and the runner reports it
//! and stops the run at that decision (the lowest runnable thread it returns then is never run).

use std::borrow::Cow;

use super::Strategy;
use crate::rng::Rng;

pub struct Replay {
    schedule: Vec<u32>,
    next: usize,
    divergence: Option<String>,
}

impl Replay {
    pub fn new(schedule: Vec<u32>) -> Replay {
        Replay {
            schedule,
            next: 0,
            divergence: None,
        }
    }
}

impl Strategy for Replay {
    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(format!("replay({} decisions)", self.schedule.len()))
    }

    fn next_thread(&mut self, runnable: &[u32], _rng: &mut Rng, _step: u64) -> u32 {
        let wanted = self.schedule.get(self.next).copied();
        self.next += 1;
        match wanted {
            Some(thread) if runnable.contains(&thread) => thread,
            _ => {
                if self.divergence.is_none() {
                    self.divergence = Some(match wanted {
                        Some(thread) => format!(
                            "decision {} wants thread {thread}, runnable are {runnable:?}",
                            self.next - 1
                        ),
                        None => format!(
                            "the recorded schedule ends after {} decisions",
                            self.schedule.len()
                        ),
                    });
                }
                runnable[0]
            }
        }
    }

    fn diverged(&self) -> Option<String> {
        self.divergence.clone()
    }
}
