//! The shrinker: makes a failing scenario smaller while the same finding signature still appears,
//! and no signature the scenario did not show at first.
//!
//! The search alternates two passes until neither makes progress:
//!
//! - a structural pass drops whole lifecycles, the fault spec (all of it, then one kind at a time),
//!   repetitions (down to 1, half, one less) and threads (with their spawn and join, and, when
//!   the cut does not validate without them, the ops of other lists that name what the thread
//!   created);
//! - an op pass runs delta debugging (ddmin) on every op list: it removes contiguous chunks of half
//!   the list, then quarters, and so on down to single ops, keeping every removal that still shows
//!   the signature and continuing from where it stands instead of starting over. A single op whose
//!   removal leaves later ops naming what it created (use before create) is tried once more with
//!   those ops removed too, in whichever list or lifecycle they are: a `create` in a thread and
//!   its `destroy` in `ops` can go only together.
//!
//! A 200-op list with one op that matters takes about 2·log2(200) runs; the result is 1-minimal
//! with respect to removing any single op, thread or lifecycle. Candidates are only built and
//! validated (by the parser's own checks, so that a candidate is always a file a person could
//! have written) when they are tried.

use crate::runner::{self, RunOptions};
use crate::scenario::{FaultSpec, Scenario, ScenarioOp, parse};
use crate::subject::Subject;

/// Every one-step reduction of `scenario`, largest first. Some may not validate; the caller
/// filters them.
pub fn reductions<O: Clone>(scenario: &Scenario<O>) -> Vec<Scenario<O>> {
    let mut out = Vec::new();
    if scenario.lifecycles.len() > 1 {
        for index in 0..scenario.lifecycles.len() {
            let mut smaller = scenario.clone();
            smaller.lifecycles.remove(index);
            out.push(smaller);
        }
    }
    if scenario.faults != FaultSpec::default() {
        let mut smaller = scenario.clone();
        smaller.faults = FaultSpec::default();
        out.push(smaller);
        for kind in scenario.faults.probabilities.keys() {
            let mut smaller = scenario.clone();
            smaller.faults.probabilities.remove(kind);
            out.push(smaller);
        }
    }
    for (index, lifecycle) in scenario.lifecycles.iter().enumerate() {
        for repeat in [1, lifecycle.repeat / 2, lifecycle.repeat.saturating_sub(1)] {
            if repeat >= 1 && repeat < lifecycle.repeat {
                let mut smaller = scenario.clone();
                let target = &mut smaller.lifecycles[index];
                target.repeat = repeat;
                target.warmup = crate::scenario::default_warmup(repeat).min(target.warmup);
                out.push(smaller);
            }
        }
        for thread in &lifecycle.threads {
            let mut smaller = scenario.clone();
            let target = &mut smaller.lifecycles[index];
            target.threads.retain(|t| t.name != thread.name);
            let mentions = |op: &ScenarioOp<O>| matches!(op, ScenarioOp::Spawn { thread: t } | ScenarioOp::Join { thread: t } if *t == thread.name);
            target.setup.retain(|op| !mentions(op));
            target.ops.retain(|op| !mentions(op));
            target.teardown.retain(|op| !mentions(op));
            out.push(smaller);
        }
    }
    // Chunks of every op list, then single ops.
    let list_count = |s: &Scenario<O>, index: usize| 3 + s.lifecycles[index].threads.len();
    for chunk_divisor in [2usize, 4, 8, usize::MAX] {
        for index in 0..scenario.lifecycles.len() {
            for list in 0..list_count(scenario, index) {
                let len = op_list(&scenario.lifecycles[index], list).len();
                let chunk = if chunk_divisor == usize::MAX {
                    1
                } else {
                    len / chunk_divisor
                };
                if chunk == 0 || (chunk_divisor != usize::MAX && chunk < 2) {
                    continue;
                }
                let mut start = 0;
                while start < len {
                    let mut smaller = scenario.clone();
                    let ops = op_list_mut(&mut smaller.lifecycles[index], list);
                    let end = (start + chunk).min(ops.len());
                    ops.drain(start..end);
                    out.push(smaller);
                    start += chunk;
                }
            }
        }
    }
    out
}

fn op_list<O>(lifecycle: &crate::scenario::Lifecycle<O>, list: usize) -> &Vec<ScenarioOp<O>> {
    match list {
        0 => &lifecycle.setup,
        1 => &lifecycle.ops,
        2 => &lifecycle.teardown,
        n => &lifecycle.threads[n - 3].ops,
    }
}

fn op_list_mut<O>(
    lifecycle: &mut crate::scenario::Lifecycle<O>,
    list: usize,
) -> &mut Vec<ScenarioOp<O>> {
    match list {
        0 => &mut lifecycle.setup,
        1 => &mut lifecycle.ops,
        2 => &mut lifecycle.teardown,
        n => &mut lifecycle.threads[n - 3].ops,
    }
}

/// Result of a shrink.
pub struct Shrunk {
    pub scenario: Box<dyn crate::registry::DynScenario>,
    pub runs: u64,
    pub ops_before: usize,
    pub ops_after: usize,
    /// The bound that ended the search while cuts were left to try, if one did: the result
    /// may then shrink further with more runs.
    pub stopped_at: Option<ShrinkBound>,
}

/// A bound that can end a shrink before it runs out of cuts to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkBound {
    /// `runs_max` runs (`sim shrink --runs-max`, the sweep's `--shrink-runs-max`).
    Runs,
    /// [`SHRINK_WORK_MAX`]: the ops tried and steps run.
    Work,
}

/// What the typed shrinker found: the smallest scenario, the runs it spent, and the bound that
/// stopped it, if one did.
pub struct ShrinkSearch<Op> {
    pub scenario: Scenario<Op>,
    pub runs: u64,
    pub stopped_at: Option<ShrinkBound>,
    /// Candidates tried, those that did not validate (and so did not run) among them.
    pub candidates: u64,
    /// The work spent, as [`SHRINK_WORK_MAX`] counts it.
    pub work: u64,
}

/// Shrinks `scenario` while its run still shows `signature`. Bounded by `runs_max` runs.
pub fn shrink(
    scenario: &dyn crate::registry::DynScenario,
    signature: &str,
    runs_max: u64,
) -> Shrunk {
    scenario.shrink_while(signature, runs_max)
}

/// Shrinks a run of seeded defects while it still shows `signature` *and* passes with every
/// defect off. `sim import-crash` uses it so that a defect's regression stays about the defect:
/// without the second condition the shrinker may trade the defect's finding for the same finding
/// of an unbalanced scenario (a `create` whose `evict` was removed leaks with or without it).
pub fn shrink_defect_only(
    scenario: &dyn crate::registry::DynScenario,
    signature: &str,
    runs_max: u64,
) -> Shrunk {
    scenario.shrink_defect_only(signature, runs_max)
}

/// Whether `scenario` fails only because of its seeded defects: it names some, and with every
/// defect off it passes. A repro of such a run must stay about them while it shrinks.
pub fn is_about_its_defects(scenario: &dyn crate::registry::DynScenario) -> bool {
    !scenario.meta().defects.is_empty()
        && scenario
            .run(RunOptions {
                defects: Some(Vec::new()),
                ..RunOptions::default()
            })
            .passed()
}

/// The shrink a repro wants: [`shrink_defect_only`] when `about_its_defects` (see
/// [`is_about_its_defects`]), else [`shrink`]. `sim import-crash` and the sweep's minimised repros
/// both use it, so a seeded defect's repro never trades its finding for an unbalanced scenario's.
pub fn shrink_repro(
    scenario: &dyn crate::registry::DynScenario,
    signature: &str,
    runs_max: u64,
    about_its_defects: bool,
) -> Shrunk {
    if about_its_defects {
        shrink_defect_only(scenario, signature, runs_max)
    } else {
        shrink(scenario, signature, runs_max)
    }
}

/// The typed shrinker behind [`shrink`]: returns the smallest scenario found and the runs spent.
pub fn shrink_scenario<S: Subject>(
    scenario: &Scenario<S::Op>,
    signature: &str,
    runs_max: u64,
) -> (Scenario<S::Op>, u64) {
    shrink_scenario_with::<S>(scenario, signature, runs_max, false)
}

/// The typed shrinker behind [`shrink_defect_only`] (with `passes_without_defects`) and
/// [`shrink`] (without).
pub fn shrink_scenario_with<S: Subject>(
    scenario: &Scenario<S::Op>,
    signature: &str,
    runs_max: u64,
    passes_without_defects: bool,
) -> (Scenario<S::Op>, u64) {
    shrink_scenario_within::<S>(
        scenario,
        signature,
        runs_max,
        passes_without_defects,
        SHRINK_WORK_MAX,
    )
}

/// The most work one shrink does: the ops of every candidate it tries (each is built and
/// validated, and run if it validates) plus the steps their runs take. `runs_max` alone bounds
/// the runs but not their size: 5,000 runs of a 4 MB scenario, a few seconds each, were hours of
/// `sim shrink` or of a sweep's minimisation. A candidate that does not validate is no run but
/// costs its ops all the same: left out, a search whose cuts failed to validate ran unbounded.
/// This stops such a search within tens of seconds (`counter` does about 3 million in a second),
/// with what it has found so far; 5,000 runs of a scenario of a few hundred ops and steps never
/// come near it.
pub const SHRINK_WORK_MAX: u64 = 30_000_000;

/// [`shrink_scenario_with`] under a bound of `work_max` instead of `SHRINK_WORK_MAX`.
pub fn shrink_scenario_within<S: Subject>(
    scenario: &Scenario<S::Op>,
    signature: &str,
    runs_max: u64,
    passes_without_defects: bool,
    work_max: u64,
) -> (Scenario<S::Op>, u64) {
    let found = shrink_scenario_searched::<S>(
        scenario,
        signature,
        runs_max,
        passes_without_defects,
        work_max,
    );
    (found.scenario, found.runs)
}

/// [`shrink_scenario_within`], saying also which bound stopped the search, if one did.
pub fn shrink_scenario_searched<S: Subject>(
    scenario: &Scenario<S::Op>,
    signature: &str,
    runs_max: u64,
    passes_without_defects: bool,
    work_max: u64,
) -> ShrinkSearch<S::Op> {
    if runs_max == 0 {
        return ShrinkSearch {
            scenario: scenario.clone(),
            runs: 0,
            stopped_at: Some(ShrinkBound::Runs),
            candidates: 0,
            work: 0,
        };
    }
    // The first of the budget's runs: what the scenario shows before any cut.
    let original = runner::run::<S>(scenario, RunOptions::default());
    let mut search = Search::<S> {
        current: scenario.clone(),
        signature,
        shown_at_first: original.signatures().into_iter().collect(),
        passes_without_defects,
        runs: 1,
        runs_max,
        candidates: 0,
        work: (scenario.op_count() as u64).saturating_add(original.steps),
        work_max,
    };
    let stopped_at = loop {
        let structural = search.structural_pass();
        let ops = search.op_pass();
        // A pass cut short by a bound may report no progress: the bound is checked first, so
        // that such a search is not taken for one that tried every cut.
        if search.runs >= search.runs_max {
            break Some(ShrinkBound::Runs);
        }
        if search.work >= search.work_max {
            break Some(ShrinkBound::Work);
        }
        if !(structural || ops) {
            break None;
        }
    };
    ShrinkSearch {
        scenario: search.current,
        runs: search.runs,
        stopped_at,
        candidates: search.candidates,
        work: search.work,
    }
}

/// Scenarios with more lifecycles than this drop them in chunks first (`drop_lifecycle_chunks`);
/// smaller ones, every generated scenario among them, shrink one lifecycle at a time as before.
const LIFECYCLE_CHUNKS_FROM: usize = 8;

/// Lists longer than this are not searched pair by pair (the pairs grow with the square).
const PAIR_SEARCH_OPS_MAX: usize = 24;

/// What became of a candidate the search tried.
enum Cut<O> {
    /// It still shows the signature; it is the search's scenario now.
    Kept,
    /// It did not validate, and did not run. The candidate comes back, for a caller that tries
    /// it once more with the ops that named what it cut (`without_refused_ops`), which then
    /// need not build it again. Boxed: a `Cut` is otherwise the size of a whole scenario.
    Refused(Box<Scenario<O>>),
    /// It ran without showing the signature, or showed something else, or a bound was reached.
    Lost,
}

struct Search<'a, S: Subject> {
    current: Scenario<S::Op>,
    signature: &'a str,
    /// What the scenario showed before shrinking. A candidate may show less, never anything else:
    /// a cut that drops a `join` and adds `leak:thread:spawn` to a heap leak's repro makes a
    /// smaller file about two things, which a person must then tell apart.
    shown_at_first: std::collections::BTreeSet<String>,
    /// Also require that the candidate passes with every defect off.
    passes_without_defects: bool,
    runs: u64,
    runs_max: u64,
    /// Candidates tried so far, whether they validated or not.
    candidates: u64,
    /// Ops of the candidates tried and steps of their runs so far (`SHRINK_WORK_MAX`).
    work: u64,
    work_max: u64,
}

impl<S: Subject> Search<'_, S> {
    fn exhausted(&self) -> bool {
        self.runs >= self.runs_max || self.work >= self.work_max
    }

    /// Keeps `candidate` if it is a valid scenario whose run still shows the signature.
    fn try_keep(&mut self, candidate: Scenario<S::Op>) -> bool {
        matches!(self.try_cut(candidate), Cut::Kept)
    }

    /// [`Search::try_keep`], saying also whether a candidate not kept did not validate.
    fn try_cut(&mut self, candidate: Scenario<S::Op>) -> Cut<S::Op> {
        if self.exhausted() {
            return Cut::Lost;
        }
        // Building and validating the candidate walk its ops whether or not it then runs.
        self.candidates += 1;
        self.work = self.work.saturating_add(candidate.op_count() as u64);
        // A candidate must validate as its file would (no join without its spawn, no use of a
        // name whose definition was removed, no `[limits]` that only the `[faults]` it dropped
        // made acceptable), so that the repro written of it parses. Its size is no reason to refuse it: a repro too
        // large for a file is the writer's to decline, and a cut may yet make it small enough.
        if parse::validate::<S>(&candidate).is_err() {
            return Cut::Refused(Box::new(candidate));
        }
        self.runs += 1;
        let outcome = runner::run::<S>(&candidate, RunOptions::default());
        self.work = self.work.saturating_add(outcome.steps);
        let signatures = outcome.signatures();
        let shows = signatures.iter().any(|s| s == self.signature)
            && signatures.iter().all(|s| self.shown_at_first.contains(s));
        let mut clean = || {
            let outcome = runner::run::<S>(
                &candidate,
                RunOptions {
                    defects: Some(Vec::new()),
                    ..RunOptions::default()
                },
            );
            self.work = self.work.saturating_add(outcome.steps);
            outcome.passed()
        };
        if shows && (!self.passes_without_defects || clean()) {
            self.current = candidate;
            Cut::Kept
        } else {
            Cut::Lost
        }
    }

    /// [`Search::try_keep`], and when `candidate` does not validate, once more with the ops that
    /// named what it cut removed too (`without_refused_ops`). A thread that creates what a later
    /// op of another list destroys goes only with that op: refused alone, it stayed, and the op
    /// pass then cut every other create/destroy pair that showed the finding, ending at the
    /// thread's pair with its `spawn` and `join` (4 ops) where a pair of `ops` alone (2) showed
    /// it.
    fn try_keep_with_dependents(&mut self, candidate: Scenario<S::Op>) -> bool {
        match self.try_cut(candidate) {
            Cut::Kept => true,
            Cut::Refused(refused) => self
                .without_refused_ops(*refused)
                .is_some_and(|smaller| self.try_keep(smaller)),
            Cut::Lost => false,
        }
    }

    /// `candidate`, a cut that did not validate, with every subject op that validation then
    /// refuses removed as well, one at a time in program order, across every list and lifecycle:
    /// the ops that named what the cut op created. Without the first the others do not validate
    /// and without the others the run shows a leak the scenario did not, so no cut of one op
    /// removes them, and the pair search looks within one list only. `None` if the refusal is not
    /// of a subject op (a `join` whose `spawn` was cut, a `[limits]` value): the structural pass
    /// removes threads with their spawns and joins.
    fn without_refused_ops(&mut self, mut candidate: Scenario<S::Op>) -> Option<Scenario<S::Op>> {
        let mut removed = false;
        while !self.exhausted() {
            // Each check walks the candidate's ops, as validating it does.
            self.work = self.work.saturating_add(candidate.op_count() as u64);
            let Some((lifecycle, list, index)) = parse::first_refused_op::<S>(&candidate) else {
                return removed.then_some(candidate);
            };
            let ops = op_list_mut(&mut candidate.lifecycles[lifecycle], list);
            if !matches!(ops[index], ScenarioOp::Subject(_)) {
                return None;
            }
            ops.remove(index);
            removed = true;
        }
        None
    }

    /// Drops lifecycles, faults, repetitions and threads; true if anything was removed.
    fn structural_pass(&mut self) -> bool {
        let mut progress = self.drop_lifecycle_chunks();
        let mut index = 0;
        while self.current.lifecycles.len() > 1 && index < self.current.lifecycles.len() {
            let mut smaller = self.current.clone();
            smaller.lifecycles.remove(index);
            if self.try_keep(smaller) {
                progress = true;
            } else {
                index += 1;
            }
        }
        if self.current.faults != FaultSpec::default() {
            let mut smaller = self.current.clone();
            smaller.faults = FaultSpec::default();
            if self.try_keep(smaller) {
                progress = true;
            } else {
                let kinds: Vec<_> = self.current.faults.probabilities.keys().copied().collect();
                for kind in kinds {
                    let mut smaller = self.current.clone();
                    smaller.faults.probabilities.remove(&kind);
                    progress |= self.try_keep(smaller);
                }
            }
        }
        for index in 0..self.current.lifecycles.len() {
            let repeat = self.current.lifecycles[index].repeat;
            for fewer in [1, repeat / 2, repeat.saturating_sub(1)] {
                if fewer >= 1 && fewer < self.current.lifecycles[index].repeat {
                    let mut smaller = self.current.clone();
                    let target = &mut smaller.lifecycles[index];
                    target.repeat = fewer;
                    target.warmup = crate::scenario::default_warmup(fewer).min(target.warmup);
                    if self.try_keep(smaller) {
                        progress = true;
                        break;
                    }
                }
            }
            let mut thread = 0;
            while thread < self.current.lifecycles[index].threads.len() {
                let mut smaller = self.current.clone();
                let target = &mut smaller.lifecycles[index];
                let name = target.threads.remove(thread).name;
                let mentions = |op: &ScenarioOp<S::Op>| matches!(op, ScenarioOp::Spawn { thread: t } | ScenarioOp::Join { thread: t } if *t == name);
                target.setup.retain(|op| !mentions(op));
                target.ops.retain(|op| !mentions(op));
                target.teardown.retain(|op| !mentions(op));
                if self.try_keep_with_dependents(smaller) {
                    progress = true;
                } else {
                    thread += 1;
                }
            }
        }
        progress
    }

    /// With more than `LIFECYCLE_CHUNKS_FROM` lifecycles, drops them in halves, then quarters,
    /// and so on down to pairs (delta debugging, as the op pass does with ops), before the
    /// one-by-one removal that follows: one at a time, a file of 30,000 lifecycles needed a run
    /// per lifecycle, and `sim shrink` ran for hours. True if any was dropped.
    fn drop_lifecycle_chunks(&mut self) -> bool {
        let mut progress = false;
        if self.current.lifecycles.len() <= LIFECYCLE_CHUNKS_FROM {
            return progress;
        }
        let mut chunk = self.current.lifecycles.len() / 2;
        while chunk >= 2 && !self.exhausted() {
            let mut start = 0;
            while start < self.current.lifecycles.len() && self.current.lifecycles.len() > chunk {
                let end = (start + chunk).min(self.current.lifecycles.len());
                let mut smaller = self.current.clone();
                smaller.lifecycles.drain(start..end);
                if self.try_keep(smaller) {
                    progress = true;
                } else if self.exhausted() {
                    return progress;
                } else {
                    start = end;
                }
            }
            chunk /= 2;
        }
        progress
    }

    /// Delta debugging over every op list; true if any op was removed.
    fn op_pass(&mut self) -> bool {
        let mut progress = false;
        let mut index = 0;
        while index < self.current.lifecycles.len() {
            let mut list = 0;
            while list < 3 + self.current.lifecycles[index].threads.len() {
                progress |= self.ddmin(index, list);
                list += 1;
            }
            index += 1;
        }
        progress
    }

    /// Tries removing two ops at once, anywhere in a short list: an op and the one that balances
    /// it (a `create` and its `evict`) can go only together, since without the first the second
    /// does not validate and without the second the run fails with every defect off.
    fn remove_a_pair(&mut self, lifecycle: usize, list: usize) -> bool {
        let len = op_list(&self.current.lifecycles[lifecycle], list).len();
        if len > PAIR_SEARCH_OPS_MAX {
            return false;
        }
        for first in 0..len {
            for second in first + 1..len {
                if self.exhausted() {
                    return false;
                }
                let mut smaller = self.current.clone();
                let ops = op_list_mut(&mut smaller.lifecycles[lifecycle], list);
                ops.remove(second);
                ops.remove(first);
                if self.try_keep(smaller) {
                    return true;
                }
            }
        }
        false
    }

    /// Removes chunks of one op list: halves, quarters, ... single ops. Each removal that keeps
    /// the signature is kept and the sweep goes on from the same place with the same chunk size.
    fn ddmin(&mut self, lifecycle: usize, list: usize) -> bool {
        let len = |s: &Scenario<S::Op>| op_list(&s.lifecycles[lifecycle], list).len();
        let mut progress = false;
        let mut chunk = len(&self.current).div_ceil(2);
        while chunk >= 1 && len(&self.current) > 0 && !self.exhausted() {
            let mut removed = false;
            let mut start = 0;
            while start < len(&self.current) && !self.exhausted() {
                let mut smaller = self.current.clone();
                let ops = op_list_mut(&mut smaller.lifecycles[lifecycle], list);
                let end = (start + chunk).min(ops.len());
                ops.drain(start..end);
                let kept = match self.try_cut(smaller) {
                    Cut::Kept => true,
                    Cut::Refused(refused) if chunk == 1 => self
                        .without_refused_ops(*refused)
                        .is_some_and(|smaller| self.try_keep(smaller)),
                    Cut::Refused(_) | Cut::Lost => false,
                };
                if kept {
                    removed = true;
                } else {
                    start += chunk;
                }
            }
            progress |= removed;
            if chunk == 1 {
                // Single ops: sweep again only if the last sweep removed something, since one
                // removal can make another possible (an `evict` whose `create` went first).
                if !removed && !self.remove_a_pair(lifecycle, list) {
                    break;
                }
            } else {
                chunk = chunk.div_ceil(2).min(len(&self.current).max(1));
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::counter::Counter;

    /// A candidate that does not validate is no run, but building and checking it walked its
    /// ops: they count toward the work bound. Free, they let a search whose candidates all failed
    /// to validate (printed past 4 MiB, every candidate of a 300,000-op lifecycle did) run for
    /// hours under a bound it never reached.
    #[test]
    fn a_candidate_that_does_not_validate_costs_its_ops_and_no_run() {
        let scenario = parse::parse::<Counter>(
            "t.toml",
            "name = \"t\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\n\
             ops = [{ op = \"create\", slot = 1 }, { op = \"evict\", slot = 1 }, { op = \"bump\" }]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut search = Search::<Counter> {
            current: scenario.clone(),
            signature: "leak:heap block:counter_create",
            shown_at_first: Default::default(),
            passes_without_defects: false,
            runs: 1,
            runs_max: 10,
            candidates: 0,
            work: 0,
            work_max: u64::MAX,
        };
        let mut evict_without_create = scenario.clone();
        evict_without_create.lifecycles[0].ops.remove(0);
        // The refusal hands the candidate back, for a retry that need not build it again.
        match search.try_cut(evict_without_create.clone()) {
            Cut::Refused(refused) => assert_eq!(*refused, evict_without_create),
            Cut::Kept | Cut::Lost => panic!("an evict of nothing created does not validate"),
        }
        assert_eq!(
            (search.runs, search.candidates, search.work),
            (1, 1, 2),
            "two ops built and checked, nothing run"
        );
    }
}
