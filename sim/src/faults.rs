//! Fault injection: seeded, per-operation-kind probabilities, and swarm mode.
//!
//! The plan is decided once from the scenario and the seed, before the run starts, and printed in
//! the run's header. Swarm mode enables a random subset of the fault kinds per seed (drawn from the
//! swarm stream, so it does not disturb any other stream); a seed that disables a kind never
//! injects it. Every injected fault is a trace event, and the baseline checks still run after it:
//! error paths are where init/destroy asymmetries hide (WAMR #4192's fd-table lock).

use std::borrow::Cow;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::rng::{Rng, Stream};

/// The operation kinds a fault can be injected into. Order is part of the replay contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `reserve` fails with ENOMEM.
    Reserve,
    /// `commit` fails with ENOMEM.
    Commit,
    /// A heap allocation (`os.malloc`) fails with ENOMEM.
    Alloc,
    /// A read returns fewer bytes than were available.
    ShortRead,
    /// A write accepts fewer bytes than it could.
    ShortWrite,
    /// A blocking call returns EINTR.
    Eintr,
    /// A non-blocking-capable call returns EAGAIN spuriously.
    Eagain,
    /// Thread spawn fails with EAGAIN.
    Spawn,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Reserve,
        FaultKind::Commit,
        FaultKind::Alloc,
        FaultKind::ShortRead,
        FaultKind::ShortWrite,
        FaultKind::Eintr,
        FaultKind::Eagain,
        FaultKind::Spawn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reserve => "reserve",
            FaultKind::Commit => "commit",
            FaultKind::Alloc => "alloc",
            FaultKind::ShortRead => "short-read",
            FaultKind::ShortWrite => "short-write",
            FaultKind::Eintr => "eintr",
            FaultKind::Eagain => "eagain",
            FaultKind::Spawn => "spawn",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Probability used for a kind that swarm mode enables without an explicit probability.
pub const SWARM_DEFAULT_PPM: u32 = 50_000;

/// The fault plan of one run: a probability per kind, in parts per million.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    ppm: [u32; 8],
}

impl FaultPlan {
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    pub fn with(mut self, kind: FaultKind, parts_per_million: u32) -> FaultPlan {
        self.ppm[kind.index()] = parts_per_million.min(1_000_000);
        self
    }

    pub fn ppm(&self, kind: FaultKind) -> u32 {
        self.ppm[kind.index()]
    }

    pub fn is_empty(&self) -> bool {
        self.ppm.iter().all(|&p| p == 0)
    }

    /// Swarm mode: each kind is kept with probability 1/2, decided from the seed. Kinds with no
    /// probability of their own get `SWARM_DEFAULT_PPM` when kept.
    pub fn swarm(&self, seed: u64) -> FaultPlan {
        let mut rng = Rng::new(seed, Stream::Swarm);
        let mut plan = FaultPlan::default();
        for kind in FaultKind::ALL {
            if rng.below(2) == 1 {
                let ppm = self.ppm(kind);
                plan.ppm[kind.index()] = if ppm == 0 { SWARM_DEFAULT_PPM } else { ppm };
            }
        }
        plan
    }

    /// The enabled kinds with their probabilities, for the run's header.
    /// Borrowed when no kind is enabled, so that a run without faults does not allocate it.
    ///
    /// Written into one string, each probability as `{:.4}` of `ppm / 1e6` prints it, but by
    /// integer arithmetic when it has at most four decimals (the rates plans are made of, whose
    /// float is then far from a tie): every fuzz input with faults describes its plan, and
    /// formatting floats was about 2,000 instructions of each.
    pub fn describe(&self) -> Cow<'static, str> {
        let mut text = String::new();
        for kind in FaultKind::ALL {
            let ppm = self.ppm(kind);
            if ppm == 0 {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(kind.name());
            text.push('=');
            // Writing to a `String` cannot fail.
            let _ = if ppm.is_multiple_of(100) {
                let ten_thousandths = ppm / 100;
                write!(
                    text,
                    "{}.{:04}",
                    ten_thousandths / 10_000,
                    ten_thousandths % 10_000
                )
            } else {
                write!(text, "{:.4}", f64::from(ppm) / 1e6)
            };
        }
        if text.is_empty() {
            Cow::Borrowed("none")
        } else {
            Cow::Owned(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_is_a_deterministic_subset_per_seed() {
        let base = FaultPlan::none().with(FaultKind::Alloc, 10_000);
        assert_eq!(base.swarm(1), base.swarm(1));
        let plans: Vec<FaultPlan> = (0..64).map(|seed| base.swarm(seed)).collect();
        assert!(
            plans.iter().any(|p| p.ppm(FaultKind::Alloc) == 10_000),
            "some seed keeps alloc at its own rate"
        );
        assert!(
            plans.iter().any(|p| p.ppm(FaultKind::Alloc) == 0),
            "some seed drops alloc"
        );
        assert!(
            plans
                .iter()
                .any(|p| p.ppm(FaultKind::Spawn) == SWARM_DEFAULT_PPM)
        );
        for plan in &plans {
            for kind in FaultKind::ALL {
                assert!(
                    plan.ppm(kind) == 0
                        || plan.ppm(kind)
                            == base
                                .ppm(kind)
                                .max(SWARM_DEFAULT_PPM)
                                .min(if base.ppm(kind) > 0 {
                                    base.ppm(kind)
                                } else {
                                    SWARM_DEFAULT_PPM
                                })
                );
            }
        }
    }

    #[test]
    fn describe_lists_enabled_kinds() {
        assert_eq!(FaultPlan::none().describe(), "none");
        let plan = FaultPlan::none().with(FaultKind::Reserve, 500_000);
        assert_eq!(plan.describe(), "reserve=0.5000");
        // Every probability prints as the float formatting would, with or without more than
        // four decimals.
        for ppm in [
            1, 49, 50, 51, 99, 100, 150, 12_345, 10_000, 999_999, 1_000_000,
        ] {
            let plan = FaultPlan::none()
                .with(FaultKind::Alloc, ppm)
                .with(FaultKind::Reserve, 1_000_000 - ppm + 1);
            let expected = format!(
                "{}={:.4} {}={:.4}",
                FaultKind::Alloc.name(),
                f64::from(plan.ppm(FaultKind::Alloc)) / 1e6,
                FaultKind::Reserve.name(),
                f64::from(plan.ppm(FaultKind::Reserve)) / 1e6
            );
            let mut words: Vec<&str> = expected.split(' ').collect();
            let described = plan.describe();
            let mut got: Vec<&str> = described.split(' ').collect();
            words.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, words, "ppm {ppm}");
        }
        assert_eq!(
            FaultPlan::none()
                .with(FaultKind::Commit, 5_000_000)
                .ppm(FaultKind::Commit),
            1_000_000
        );
    }
}
