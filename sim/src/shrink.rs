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

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;
use crate::runner::isolated::{self, ForkServer};
use crate::runner::{self, Outcome, RunOptions};
use crate::scenario::{FaultSpec, Lifecycle, Scenario, ScenarioOp, ThreadSpec, parse};
use crate::subject::{Subject, info_of};

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
    search_with(
        CandidateRuns::<S>::start(scenario),
        scenario,
        signature,
        runs_max,
        passes_without_defects,
        work_max,
    )
}

/// [`shrink_scenario_searched`] with at least one run to spend, running its candidates by
/// `candidate_runs`.
fn search_with<S: Subject>(
    mut candidate_runs: CandidateRuns<S>,
    scenario: &Scenario<S::Op>,
    signature: &str,
    runs_max: u64,
    passes_without_defects: bool,
    work_max: u64,
) -> ShrinkSearch<S::Op> {
    // The first of the budget's runs: what the scenario shows before any cut.
    let original = candidate_runs.run(scenario, false);
    let mut search = Search::<S> {
        candidate_runs,
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

/// How the search runs its candidates: in this process, or, for a subject that runs real code on
/// host-backed memory (`SubjectInfo::host_backed`), through one fork server for the whole search
/// (`runner::isolated::ForkServer`), whose runner runs candidate after candidate and is forked
/// again only after a crash of real code. Through `runner::run` every candidate of such a subject
/// was a fork of this process of its own, most of a small candidate's cost. A sweep minimises on
/// its worker threads, so there the server is forked from a process with threads, as each
/// candidate's own fork was (`isolated.rs` says what that risks, and how its watchdog bounds it);
/// one fork per search rather than one per candidate.
enum CandidateRuns<S: Subject> {
    /// `runner::run`: in this process, or a fork per run for a host-backed subject whose server
    /// could not start (or is gone).
    Direct,
    Served {
        server: ForkServer<CandidateRequest>,
        /// The scenario the server was forked with, which the runner applies each request to.
        /// Boxed: `Direct` is no larger than a word.
        original: Box<Scenario<S::Op>>,
    },
}

impl<S: Subject> CandidateRuns<S> {
    /// Forks the server for a search of `original` when its subject is host-backed. A server that
    /// cannot start is run as before, a fork per run: the same outcomes, more slowly.
    fn start(original: &Scenario<S::Op>) -> Self {
        if !info_of::<S>().host_backed {
            return CandidateRuns::Direct;
        }
        let started = ForkServer::start(
            |request: &CandidateRequest| {
                isolated::run_here::<S>(&request.rebuilt(original), request.run_options())
            },
            |request: &CandidateRequest, status| {
                isolated::lost_run::<S>(&request.rebuilt(original), &request.run_options(), status)
            },
        );
        match started {
            Ok(server) => CandidateRuns::Served {
                server,
                original: Box::new(original.clone()),
            },
            Err(_) => CandidateRuns::Direct,
        }
    }

    /// The outcome of `candidate`'s run, with every defect off when `defects_off`: what
    /// `runner::run` gives.
    fn run(&mut self, candidate: &Scenario<S::Op>, defects_off: bool) -> Outcome {
        if let CandidateRuns::Served { server, original } = self
            && let Some(request) = CandidateRequest::of(original, candidate, defects_off)
        {
            match server.ask(&request) {
                Some(outcome) => return outcome,
                // A server that is gone (killed from outside) costs speed, not results.
                None => *self = CandidateRuns::Direct,
            }
        }
        runner::run::<S>(candidate, run_options(defects_off))
    }
}

/// The options a candidate runs with: the scenario's own, or every defect off.
fn run_options(defects_off: bool) -> RunOptions {
    RunOptions {
        defects: defects_off.then(Vec::new),
        ..RunOptions::default()
    }
}

/// A candidate as it crosses to the fork server's runner, as what it kept of the scenario the
/// server was forked with: a cut only removes (lifecycles, threads, ops, `[faults]` kinds) or
/// lowers a lifecycle's `repeat` and `warmup`, so a candidate is the original's lifecycles, threads
/// and ops at some indices, which the runner takes from its own copy. No op crosses as JSON, so
/// none has to come back from it as it was.
#[derive(Serialize, Deserialize)]
struct CandidateRequest {
    lifecycles: Vec<LifecycleKept>,
    /// The kinds of the original's `[faults]` still on, each at its probability there: a
    /// probability itself need not come back from JSON bit for bit.
    fault_kinds: Vec<FaultKind>,
    swarm: bool,
    defects_off: bool,
}

/// One lifecycle of a candidate: the original's at `index`, with the ops of its setup, ops and
/// teardown (`lists`) and its threads (each the original's at an index, with its ops) that the
/// candidate kept, by index in the original's.
#[derive(Serialize, Deserialize)]
struct LifecycleKept {
    index: usize,
    repeat: u32,
    warmup: u32,
    lists: [Vec<usize>; 3],
    threads: Vec<(usize, Vec<usize>)>,
}

/// The indices in `original` of `candidate`'s items in order, each paired with what `fits` said
/// of it, when `candidate` is `original` with items removed (and those kept cut as `fits`
/// allows); `None` when it is not. Each takes the earliest original item that fits after the
/// last one taken, which finds a match whenever there is one.
fn kept_indices<T, K>(
    original: &[T],
    candidate: &[T],
    fits: impl Fn(&T, &T) -> Option<K>,
) -> Option<Vec<(usize, K)>> {
    let mut next = 0;
    candidate
        .iter()
        .map(|item| {
            let (index, fit) = (next..original.len())
                .find_map(|index| Some((index, fits(&original[index], item)?)))?;
            next = index + 1;
            Some((index, fit))
        })
        .collect()
}

/// The indices of `candidate`'s ops in `original`'s list.
fn kept_ops<O: PartialEq>(
    original: &[ScenarioOp<O>],
    candidate: &[ScenarioOp<O>],
) -> Option<Vec<usize>> {
    let kept = kept_indices(original, candidate, |a, b| (a == b).then_some(()))?;
    Some(kept.into_iter().map(|(index, ())| index).collect())
}

/// What `candidate`, a cut of the lifecycle `original`, kept of it (its index left for the caller).
fn kept_of_lifecycle<O: PartialEq>(
    original: &Lifecycle<O>,
    candidate: &Lifecycle<O>,
) -> Option<LifecycleKept> {
    if original.name != candidate.name
        || candidate.repeat > original.repeat
        || candidate.warmup > original.warmup
    {
        return None;
    }
    let lists = [
        kept_ops(&original.setup, &candidate.setup)?,
        kept_ops(&original.ops, &candidate.ops)?,
        kept_ops(&original.teardown, &candidate.teardown)?,
    ];
    let threads = kept_indices(&original.threads, &candidate.threads, |a, b| {
        (a.name == b.name)
            .then(|| kept_ops(&a.ops, &b.ops))
            .flatten()
    })?;
    Some(LifecycleKept {
        index: 0,
        repeat: candidate.repeat,
        warmup: candidate.warmup,
        lists,
        threads,
    })
}

impl CandidateRequest {
    /// The request for `candidate`, a cut of `original`; `None` for a scenario that is no cut
    /// of it, which the caller runs itself.
    fn of<O: Clone + PartialEq>(
        original: &Scenario<O>,
        candidate: &Scenario<O>,
        defects_off: bool,
    ) -> Option<Self> {
        let lifecycles = kept_indices(&original.lifecycles, &candidate.lifecycles, |a, b| {
            kept_of_lifecycle(a, b)
        })?;
        let request = CandidateRequest {
            lifecycles: (lifecycles.into_iter())
                .map(|(index, kept)| LifecycleKept { index, ..kept })
                .collect(),
            fault_kinds: candidate.faults.probabilities.keys().copied().collect(),
            swarm: candidate.faults.swarm,
            defects_off,
        };
        // What no cut changes (a kept fault kind's probability, every other field) the runner
        // takes from the original.
        debug_assert!(
            request.rebuilt(original) == *candidate,
            "a candidate is a cut of the original"
        );
        Some(request)
    }

    /// The candidate this request describes, cut from `original`.
    fn rebuilt<O: Clone>(&self, original: &Scenario<O>) -> Scenario<O> {
        let ops = |list: &[ScenarioOp<O>], kept: &[usize]| -> Vec<ScenarioOp<O>> {
            kept.iter().map(|&index| list[index].clone()).collect()
        };
        let probabilities = self
            .fault_kinds
            .iter()
            .filter_map(|kind| Some((*kind, *original.faults.probabilities.get(kind)?)))
            .collect();
        let lifecycles = self
            .lifecycles
            .iter()
            .map(|kept| {
                let lifecycle = &original.lifecycles[kept.index];
                Lifecycle {
                    name: lifecycle.name.clone(),
                    repeat: kept.repeat,
                    warmup: kept.warmup,
                    setup: ops(&lifecycle.setup, &kept.lists[0]),
                    ops: ops(&lifecycle.ops, &kept.lists[1]),
                    teardown: ops(&lifecycle.teardown, &kept.lists[2]),
                    threads: (kept.threads.iter())
                        .map(|(thread, kept_ops)| {
                            let thread = &lifecycle.threads[*thread];
                            ThreadSpec {
                                name: thread.name.clone(),
                                ops: ops(&thread.ops, kept_ops),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        // Field by field: `..original.clone()` would copy the original's lifecycles too.
        Scenario {
            name: original.name.clone(),
            description: original.description.clone(),
            subject: original.subject.clone(),
            defects: original.defects.clone(),
            seed: original.seed,
            limits: original.limits.clone(),
            platform: original.platform.clone(),
            faults: FaultSpec {
                probabilities,
                swarm: self.swarm,
            },
            schedule: original.schedule.clone(),
            config: original.config.clone(),
            caches: original.caches.clone(),
            lifecycles,
            expect: original.expect.clone(),
        }
    }

    fn run_options(&self) -> RunOptions {
        run_options(self.defects_off)
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
    candidate_runs: CandidateRuns<S>,
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
        let outcome = self.candidate_runs.run(&candidate, false);
        self.work = self.work.saturating_add(outcome.steps);
        let signatures = outcome.signatures();
        let shows = signatures.iter().any(|s| s == self.signature)
            && signatures.iter().all(|s| self.shown_at_first.contains(s));
        let mut clean = || {
            let outcome = self.candidate_runs.run(&candidate, true);
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
    use crate::subjects::dlmalloc::{DlmallocOp, DlmallocSubject};

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
            candidate_runs: CandidateRuns::Direct,
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

    /// A use-after-release by real dlmalloc code among ops that do not matter: every candidate
    /// that keeps the `release-behind-back` and the `malloc` after it crashes its runner.
    fn dlmalloc_crash_among_padding() -> Scenario<DlmallocOp> {
        let padding = "{ op = \"malloc\", slot = 2, size = 500 }, { op = \"write\", slot = 2 }, \
                       { op = \"free\", slot = 2 }, ";
        let text = format!(
            "name = \"t\"\nsubject = \"dlmalloc\"\nseed = 1\n[[lifecycle]]\nname = \"l\"\n\
             ops = [{{ op = \"create\" }}, {padding}{{ op = \"malloc\", slot = 0, size = 64 }}, \
             {padding}{{ op = \"release-behind-back\" }}, {padding}\
             {{ op = \"malloc\", slot = 1, size = 64 }}, {{ op = \"destroy\" }}]\n\
             [[lifecycle]]\nname = \"m\"\nrepeat = 3\n\
             ops = [{{ op = \"create\" }}, {padding}{{ op = \"destroy\" }}]\n"
        );
        parse::parse::<DlmallocSubject>("t.toml", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A host-backed subject's search runs every candidate through one fork server, whose
    /// runner runs them one after another (and is forked again after a crash), where each was
    /// a fork of this process (`isolated::run`); and it finds what that search finds, in as
    /// many runs and as much work.
    #[test]
    fn a_host_backed_search_runs_its_candidates_through_one_fork_server() {
        const FAULT: &str = "fault:released page:dlmalloc_malloc";
        let scenario = dlmalloc_crash_among_padding();
        let forked_before = isolated::RUNS_FORKED.get();
        let served =
            shrink_scenario_searched::<DlmallocSubject>(&scenario, FAULT, 1_000, false, u64::MAX);
        assert_eq!(
            isolated::RUNS_FORKED.get(),
            forked_before,
            "no run forked by itself"
        );
        assert!(served.runs > 10, "{} runs", served.runs);
        assert_eq!(served.stopped_at, None);
        assert!(served.scenario.op_count() < scenario.op_count() / 3);
        let shown = runner::run::<DlmallocSubject>(&served.scenario, RunOptions::default());
        assert_eq!(shown.signatures(), [FAULT]);
        let direct = search_with::<DlmallocSubject>(
            CandidateRuns::Direct,
            &scenario,
            FAULT,
            1_000,
            false,
            u64::MAX,
        );
        assert!(isolated::RUNS_FORKED.get() >= forked_before + direct.runs);
        assert_eq!(served.scenario, direct.scenario);
        assert_eq!(
            (served.runs, served.candidates, served.work),
            (direct.runs, direct.candidates, direct.work)
        );
    }

    /// A request names what a cut kept by index, and no op: every one-step cut of a scenario
    /// with threads, faults, repeats and equal ops, and every cut of those, is rebuilt from the
    /// request as it was.
    #[test]
    fn a_candidate_request_names_what_a_cut_kept_and_rebuilds_it() {
        let text = "name = \"t\"\nsubject = \"allocator\"\nseed = 1\n\
                    [faults]\ncommit = 0.25\nreserve = 0.125\n\
                    [[lifecycle]]\nname = \"l\"\nrepeat = 4\nops = [\
                    { op = \"malloc\", slot = 0, bytes = 64 }, { op = \"spawn\", thread = \"t\" }, \
                    { op = \"join\", thread = \"t\" }, { op = \"malloc\", slot = 1, bytes = 64 }, \
                    { op = \"free\", slot = 1 }, { op = \"malloc\", slot = 1, bytes = 64 }, \
                    { op = \"free\", slot = 1 }]\nteardown = [{ op = \"exit\" }]\n\
                    [[lifecycle.thread]]\nname = \"t\"\nops = [{ op = \"free\", slot = 0 }]\n\
                    [[lifecycle]]\nname = \"m\"\nops = [{ op = \"malloc\", slot = 0, bytes = 8 }]\n";
        let original = parse::parse::<crate::subjects::allocator::Allocator>("t.toml", text)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cuts = 0;
        for cut in reductions(&original) {
            for candidate in std::iter::once(cut.clone()).chain(reductions(&cut)) {
                let request = CandidateRequest::of(&original, &candidate, false).unwrap();
                assert!(request.rebuilt(&original) == candidate, "{candidate:?}");
                let json = serde_json::to_string(&request).unwrap();
                assert!(
                    !json.contains("malloc") && !json.contains("spawn"),
                    "{json}"
                );
                cuts += 1;
            }
        }
        assert!(cuts > 100, "{cuts}");
    }

    /// The server's runner runs a candidate as `runner::run` does: the same outcome, whether the
    /// candidate crashes real code, runs clean, or runs with every defect off; and a cut of the
    /// `[faults]` arrives as it was cut.
    #[test]
    fn a_candidate_run_by_the_fork_server_is_the_run_of_the_candidate() {
        let mut original = dlmalloc_crash_among_padding();
        original
            .faults
            .probabilities
            .insert(crate::faults::FaultKind::Commit, 0.25);
        original
            .faults
            .probabilities
            .insert(crate::faults::FaultKind::Reserve, 0.125);
        let mut served = CandidateRuns::<DlmallocSubject>::start(&original);
        assert!(matches!(served, CandidateRuns::Served { .. }));
        let mut without_the_crash = original.clone();
        without_the_crash.lifecycles.remove(0);
        let mut one_fault_kind = original.clone();
        one_fault_kind
            .faults
            .probabilities
            .remove(&crate::faults::FaultKind::Commit);
        let mut no_faults = without_the_crash.clone();
        no_faults.faults = FaultSpec::default();
        for candidate in [&original, &without_the_crash, &one_fault_kind, &no_faults] {
            for defects_off in [false, true] {
                let by_server = served.run(candidate, defects_off);
                let direct = runner::run::<DlmallocSubject>(candidate, run_options(defects_off));
                assert_eq!(
                    (
                        by_server.trace_hash,
                        by_server.signatures(),
                        &by_server.header
                    ),
                    (direct.trace_hash, direct.signatures(), &direct.header)
                );
            }
        }
        assert!(matches!(served, CandidateRuns::Served { .. }));
    }
}
