//! The runner: runs a scenario against a subject and asks the ledger after every lifecycle.
//!
//! For each lifecycle it takes a baseline, runs the setup, then the ops `repeat` times (checking
//! leaks against the baseline at the start of each repetition and feeding the growth detector),
//! then the teardown (checking against the baseline before the setup). A lifecycle with a setup
//! and no teardown is checked at its end for what its setup added and still holds
//! (`ledger::SetupCheck`). Each op list runs on the
//! main thread; `spawn` starts a declared thread, and the scheduler interleaves every runnable
//! thread one op (or one continuation) at a time until all have finished. No runnable thread and
//! no pending timer with threads still blocked is a deadlock. A panicking subject is a `panic`
//! finding, an exhausted `steps_max` a `budget` finding; fatal findings end the run.
//!
//! A subject that runs real third-party code on host-backed memory (`SubjectInfo::host_backed`)
//! runs in a child process (`isolated.rs`), so that a real crash becomes a `fault` finding instead
//! of killing the tool; `run` chooses that path by itself.
//!
//! What the runner does not check: anything a subject does outside the `Os` it was given.

pub mod isolated;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::findings::{
    Finding, FindingKind, LifecycleEnd, LifecyclePart, OpRef, SourceLocation, THREAD_EXIT_OP,
};
use crate::ledger::{self, CacheAllowance, GrowthDetector, GrowthProgress, SetupCheck};
use crate::os::modules::CodeAddr;
use crate::os::threads::{MAIN_THREAD, ThreadSet};
use crate::os::{Io, OpList, OpSlot, Os, ThreadState, Tid};
use crate::scenario::{Lifecycle, Scenario, ScenarioOp};
use crate::sched::{Scheduler, StrategyChoice};
use crate::seed::format_seed;
use crate::subject::{Config, Continuation, Step, Subject, SubjectInfo, info_of, panic_message};
use crate::trace::{EventKind, TraceComparer, TraceComparison};

/// What a caller may change about a run without editing the scenario.
#[derive(Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    /// `Some` replaces the scenario's defects (`--defect`, `--no-defects`).
    pub defects: Option<Vec<String>>,
    pub strategy: Option<StrategyChoice>,
    pub trace_sink: Option<Box<dyn Write>>,
    /// Keep the list of scheduling decisions (for replay files). Fuzzing turns it off.
    pub record_schedule: bool,
}

/// Everything decided before the run starts, printed first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub scenario: Cow<'static, str>,
    pub subject: Cow<'static, str>,
    pub seed: u64,
    pub defects: Vec<String>,
    /// Borrowed for the strategies and fault plans that have a fixed name (see
    /// `Strategy::name`, `FaultPlan::describe`).
    pub strategy: Cow<'static, str>,
    /// The strategy itself, so that a repro file can pin it (`strategy` is its printed name).
    #[serde(default)]
    pub schedule: StrategyChoice,
    pub faults: Cow<'static, str>,
    pub steps_max: u64,
}

/// What a run found. It crosses a process boundary as JSON when the run was isolated.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub header: Header,
    pub findings: Vec<Finding>,
    pub trace_hash: u64,
    pub trace_events: u64,
    pub steps: u64,
    pub ops: u64,
    pub schedule: Vec<u32>,
    /// Scheduling decisions made (choices among two or more runnable threads): the length
    /// `schedule` has when it is recorded, counted whether it is or not.
    #[serde(default)]
    pub decisions: u64,
    pub lifecycle_names: Vec<Cow<'static, str>>,
    pub lifecycle_repeats: Vec<u32>,
    /// Per kind, the furthest it went toward a growth finding in any repeated lifecycle (what the
    /// fuzz targets feed back to libFuzzer as coverage).
    #[serde(default)]
    pub growth_progress: Vec<GrowthProgress>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn signatures(&self) -> Vec<String> {
        self.findings.iter().map(Finding::signature).collect()
    }
}

/// Why a run stopped early.
struct Stop;

/// What a lifecycle with a teardown or a setup checks at its end (`Runner::end_lifecycle`).
enum EndCheck {
    /// After the teardown, against this baseline, taken before the setup.
    Teardown(ledger::Baseline),
    /// With no teardown: what the setup added.
    Setup(SetupCheck),
}

/// A `runnable_made_from` that no `Os::changes_version` equals (a version counts changes from 0
/// and never gets near it): the kept set of runnable threads must be made again, and the OS's
/// findings collected, after the next step. A plain number rather than an `Option`, so that the
/// check at every step is one compare.
const REMAKE: u64 = u64::MAX;

/// The most thread contexts a lifecycle reserves room for up front (see `run_lifecycles`).
const CONTEXTS_RESERVED_MAX: usize = 1024;

struct ThreadCtx<'a, S: Subject> {
    ops: &'a [ScenarioOp<S::Op>],
    /// Which list of the lifecycle `ops` is, and which list the main thread runs (the same
    /// for the main thread's own), as `OpSlot::list_bits` gives them: each op's position names
    /// them, so that a report can point at the op in the file and say whether it ran in a
    /// repetition or in the setup or teardown.
    list_bits: u32,
    pc: usize,
    /// The name of the op `pc` last started, or `thread-exit` once the thread exits: what
    /// `restore_position` puts back. Kept when the op starts, where the name is at hand (two
    /// stores), rather than looked up again at each continuation (the op, its variant, then the
    /// subject's name of it): by the README's callgrind command for the scheduler, the look-up
    /// cost about 4 more instructions per decision than this.
    op_name: &'static str,
    pending: Option<Continuation<S>>,
    calls: VecDeque<(CodeAddr, u64, &'static str)>,
    finished: bool,
    /// TLS destructor rounds run so far at thread exit.
    exit_rounds: u32,
}

impl<'a, S: Subject> ThreadCtx<'a, S> {
    /// The context of a thread that runs `ops`, list `list` of its lifecycle, while the main
    /// thread runs `main_list` (the same list, for the main thread).
    fn new(ops: &'a [ScenarioOp<S::Op>], list: OpList, main_list: OpList) -> Self {
        ThreadCtx {
            ops,
            list_bits: OpSlot::list_bits(list, main_list),
            pc: 0,
            op_name: "",
            pending: None,
            calls: VecDeque::new(),
            finished: false,
            exit_rounds: 0,
        }
    }

    /// The context of a thread that has none in this list: finished, so that it never steps.
    /// A slot holds one of these rather than being an `Option`: a step then looks its thread's
    /// context up without a test of the slot (2.3 instructions off a scheduling decision, and an
    /// allocator fuzz input 0.4% cheaper).
    fn none() -> Self {
        ThreadCtx {
            finished: true,
            ..ThreadCtx::new(&[], OpList::Setup, OpList::Setup)
        }
    }

    /// The list the main thread runs while this context's thread runs (see `new`).
    fn main_list(&self) -> OpList {
        OpSlot::with_index(self.list_bits, 0).main_list()
    }

    /// Sets `os`'s position back to this thread's (`tid`'s) before its continuation or a call
    /// it queued runs, so that what those record (a waiter, a held lock, a leak, a finding)
    /// names the thread's own op: other threads' ops may have moved the position since this
    /// thread's last step. Its op is the last it started (`pc` counts from 1, as a slot's index
    /// does): the op that blocked, a join included, or the `exit` whose hooks run; once the
    /// thread exits (its TLS destructors), its exit, whose slot is its last op's.
    ///
    /// Always, with no test of whether the position is still this thread's: in the scheduler
    /// benchmark every continuation follows another thread's step, and the test cost more than
    /// it saved (the README's callgrind command for the scheduler).
    #[inline(always)]
    fn restore_position(&self, os: &mut Os, tid: Tid) {
        os.set_op_position(self.last_op_slot(), self.op_name, tid.0);
    }

    /// The slot of the last op this thread started (index 0 before its first).
    #[inline(always)]
    fn last_op_slot(&self) -> OpSlot {
        OpSlot::with_index(self.list_bits, self.pc as u32)
    }

    /// Whether anything is left to run before the end of the list: what decides whether the
    /// main thread can step (a spawned thread still has to exit after that).
    fn work_left(&self) -> bool {
        self.pending.is_some() || !self.calls.is_empty() || self.pc < self.ops.len()
    }
}

/// A run in progress. The subject is not one of its fields: it is made after the runner (with
/// the runner's OS), and is handed to each method that calls it, so that a call needs no test
/// of whether it exists yet (see `run_inner`).
struct Runner<'a, S: Subject> {
    os: Os,
    /// Contexts by tid. Tids are never reused, so the list is as long as the run has spawned
    /// threads, but only the main thread and the current op list's threads have a context; the
    /// other slots hold `ThreadCtx::none()`, empty and finished.
    threads: Vec<ThreadCtx<'a, S>>,
    /// Where the current op list's spawned threads start in `threads`: every slot between the
    /// main thread's and this one holds no context (see `run_list`).
    list_contexts_from: usize,
    /// The current op list's spawns by thread name, latest last, with the tid each got (`None`
    /// for an injected spawn failure, whose join does nothing). Kept here and emptied per list,
    /// not made per list: a list that spawns then cost a map's allocation and its inserts.
    spawned: Vec<(&'a str, Option<Tid>)>,
    findings: Vec<Finding>,
    occurrences: BTreeMap<String, u32>,
    /// Steps the run may still take, plus one: counted down by every step, which stops the run
    /// (`steps_exhausted`) when it reaches 0, so that a step tests its budget with one decrement
    /// where a count up was a load, a store and a compare with the limit. `steps_taken` gives the
    /// count up from it.
    steps_left_plus_one: u64,
    ops: u64,
    lifecycle_index: u32,
    repetition: u32,
    /// The threads with a context here and work left: every spawned thread until it has exited,
    /// the main thread while its list has something left to run (see `can_step`).
    has_work: ThreadSet,
    /// The threads that can take a step (see `remake_runnable`), kept from step to step.
    runnable: Vec<u32>,
    /// The OS's `changes_version` when `runnable` was last made and its findings collected (see
    /// `after_step`); `REMAKE` when both must be done after the next step whatever the OS says.
    runnable_made_from: u64,
    /// The subject call in progress (an op, a continuation, or what a call by address runs):
    /// what a panic that unwinds out of the stepping loop is reported as (see `run_list`).
    calling: Calling,
    /// The check at the end of a lifecycle under way, if one is (`end_lifecycle`): what the
    /// findings it makes are placed at, rather than the lifecycle's last repetition.
    checking_end: Option<LifecycleEnd>,
    header: Header,
    scenario: &'a Scenario<S::Op>,
    /// See `Outcome::growth_progress`.
    growth_progress: Vec<GrowthProgress>,
    /// An empty call queue kept from a thread that exited, for the next thread's TLS destructors:
    /// nearly every thread queues one at its exit, and a queue of its own was an allocation (and
    /// a free) per thread.
    spare_calls: VecDeque<(CodeAddr, u64, &'static str)>,
}

/// Runs `scenario` with subject `S`: in this process, or in a child process when the subject
/// runs real code on host-backed memory (see `isolated.rs`).
pub fn run<S: Subject>(scenario: &Scenario<S::Op>, options: RunOptions) -> Outcome {
    if info_of::<S>().host_backed {
        isolated::run::<S>(scenario, options)
    } else {
        run_in_process::<S>(scenario, options)
    }
}

/// Runs `scenario` in this process, whatever the subject. A crash of real code kills the caller.
pub fn run_in_process<S: Subject>(scenario: &Scenario<S::Op>, options: RunOptions) -> Outcome {
    run_inner::<S>(scenario, options, false)
}

/// The seed, defects and scheduler a run uses, and the header that describes them. Always
/// inlined, so that the scheduler it makes is not copied out of it (see `Os::new`).
#[inline(always)]
fn prepare<S: Subject>(
    scenario: &Scenario<S::Op>,
    options: &RunOptions,
) -> (Header, Scheduler, Vec<String>) {
    let seed = options.seed.unwrap_or(scenario.seed);
    let defects = options
        .defects
        .clone()
        .unwrap_or_else(|| scenario.defects.clone());
    let strategy = options
        .strategy
        .clone()
        .unwrap_or_else(|| scenario.schedule.clone())
        .with_steps_from(|| scenario.steps_estimate());
    let plan = scenario.faults.plan(seed);
    let mut scheduler = Scheduler::new(seed, &strategy, plan.clone());
    scheduler.set_recording(options.record_schedule);
    let header = Header {
        scenario: scenario.name.clone(),
        subject: scenario.subject.clone(),
        seed,
        defects: defects.clone(),
        strategy: scheduler.strategy_name(),
        schedule: strategy,
        faults: plan.describe(),
        steps_max: scenario.limits.steps_max,
    };
    (header, scheduler, defects)
}

/// The header a run of `scenario` with `options` prints, without running it.
pub(crate) fn header<S: Subject>(scenario: &Scenario<S::Op>, options: &RunOptions) -> Header {
    prepare::<S>(scenario, options).0
}

/// Runs `scenario` here. With `report_crashes`, the runner is published to the crash handler of
/// an isolated child for the duration of the run (see `isolated::publish`).
fn run_inner<S: Subject>(
    scenario: &Scenario<S::Op>,
    mut options: RunOptions,
    report_crashes: bool,
) -> Outcome {
    let (header, scheduler, defects) = prepare::<S>(scenario, &options);
    let seed = header.seed;
    let config = Config::new(&defects, &scenario.config);
    // The subject, made once the runner is (with the runner's OS), and dropped before the
    // outcome is taken, its panic caught (`Calling::Drop`).
    let mut subject: Option<S> = None;
    // The OS is made in its place in the runner, and the runner is never moved (the outcome is
    // taken from it in place): the OS is kilobytes, and every move of it is a copy.
    let mut runner: Runner<S> = Runner {
        os: Os::new(
            scheduler,
            scenario.limits.clone(),
            scenario.platform.clone(),
        ),
        threads: Vec::new(),
        list_contexts_from: 0,
        spawned: Vec::new(),
        findings: Vec::new(),
        occurrences: BTreeMap::new(),
        steps_left_plus_one: steps_budget(&scenario.limits),
        ops: 0,
        lifecycle_index: 0,
        repetition: 0,
        has_work: ThreadSet::default(),
        runnable: Vec::new(),
        runnable_made_from: REMAKE,
        calling: Calling::Nothing,
        checking_end: None,
        header,
        scenario,
        growth_progress: Vec::new(),
        spare_calls: VecDeque::new(),
    };
    if let Some(sink) = options.trace_sink.take() {
        runner.os.trace().attach_sink(sink);
    }
    // From here until `unpublish` the runner stays where it is: `run_lifecycles` borrows it in
    // place.
    let published = report_crashes.then(|| isolated::publish(&mut runner));
    runner.os.trace().event(EventKind::Lifecycle, seed, 0);
    // Real code on host memory crashes where it misbehaves, and only a run in a child process
    // (what `host_backed` asks for) turns that crash into a finding: in the tool's own process
    // it ends `sim` with no report at all. So the OS refuses the arena to any other subject, and
    // the refusal is the finding, whatever the subject's `new` did with it (most panic).
    let info = info_of::<S>();
    if !info.host_backed {
        runner.os.refuse_host_arena(info.name);
    }
    let created = catch_unwind(AssertUnwindSafe(|| S::new(&mut runner.os, &config)));
    // What the OS noticed in `new` is reported now, before any op runs (and before a panic of
    // `new`, which came after it): collected after the first step, it would list that op's
    // faults as if they came before it.
    let collected = runner.collect_os_findings();
    let refused = runner.os.host_arena_refusal().is_some();
    match created {
        // Kept, though it never runs, so that it is dropped below with its panic caught.
        Ok(made) if refused => {
            subject = Some(made);
            runner.undeclared_host_arena();
        }
        Err(_) if refused => runner.undeclared_host_arena(),
        Ok(made) => {
            let subject = subject.insert(made);
            // A run that stops may leave threads blocked, whose continuations are dropped
            // before the subject they were made for: what they captured is the subject's, and so
            // is a panic in its drop. One that ends has none left (a list ends with every thread
            // done, or its deadlock stops the run), so it pays nothing for the look.
            if collected.is_ok() && runner.run_lifecycles(subject, scenario, info).is_err() {
                runner.drop_continuations();
            }
            debug_assert!(
                runner.threads.iter().all(|ctx| ctx.pending.is_none()),
                "a continuation outlives the run"
            );
        }
        Err(payload) => runner.panicked(payload, "new"),
    }
    // Dropped while the runner can still report it: the subject's `drop` is its code too, and a
    // panic there is a finding, where it escaped the run as sim's own bug.
    if let Some(made) = subject.take() {
        let _ = runner.call_outside_ops(Calling::Drop, |_| drop(made));
    }
    if let Some(published) = published {
        isolated::unpublish(published);
    }
    runner.outcome()
}

/// The `steps_left_plus_one` of a run that has taken no step: `steps_max` steps may run, and the
/// one after them stops the run. (With a `steps_max` of `u64::MAX`, which no scenario file can
/// give, the run would stop one step early, after more steps than any run ever takes.)
fn steps_budget(limits: &crate::os::Limits) -> u64 {
    limits.steps_max.saturating_add(1)
}

/// Whether thread `index` can take a step: runnable in the OS and with something left to run
/// (the main thread is done when its list is; a spawned thread still has to exit). What the
/// two thread sets of `remake_runnable` say, written out for its debug check.
fn can_step<S: Subject>(index: usize, state: &ThreadState, ctx: &ThreadCtx<'_, S>) -> bool {
    if !matches!(state, ThreadState::Runnable) {
        return false;
    }
    !ctx.finished && (index != 0 || ctx.work_left())
}

fn join_step<S: Subject>(os: &mut Os, me: Tid, target: Tid) -> Step<S> {
    match os.join(me, target, "join") {
        Io::Ready(_) => Step::Done,
        Io::Block(reason) => Step::block(reason, move |_, os, me| join_step(os, me, target)),
    }
}

/// The site of a `panic` finding raised by the drop of a blocked thread's continuation, which
/// never ran (`Runner::drop_continuations`).
const CONTINUATION_DROP_SITE: &str = "continuation-drop";

/// The name a position gives an op whose name the subject's `op_name` panicked computing.
const UNNAMED_OP: &str = "?";

/// The subject call in progress, kept for the report of a panic in it. An op's call is reported
/// by the op's name, which the position holds while it runs (the runner sets it before the op;
/// a subject that sets it itself, through `Os::set_position`, names its own op): the op and the
/// continuation, the calls of nearly every step, are one byte to write, where the name itself
/// was two words (scheduler 383.7 -> 383.0 instructions per decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calling {
    Nothing,
    Op,
    Continuation,
    Other(&'static str),
    /// The subject's `check_invariants`, after a repetition or a teardown: outside any op.
    CheckInvariants,
    /// The subject's `drop`, at the end of the run: outside any op.
    Drop,
}

/// Calls into the subject for thread `tid`; if it blocks, blocks the thread in `os` and keeps the
/// continuation in `pending` (the thread's context's, empty while it runs). A panic unwinds to
/// `run_list`, which reports it as `what` (kept in `calling` for the call's length).
#[inline(always)]
fn call_subject<S: Subject>(
    subject: &mut S,
    os: &mut Os,
    calling: &mut Calling,
    pending: &mut Option<Continuation<S>>,
    tid: Tid,
    what: Calling,
    call: impl FnOnce(&mut S, &mut Os) -> Step<S>,
) {
    *calling = what;
    let step = call(subject, os);
    *calling = Calling::Nothing;
    park_if_blocked(os, pending, tid, step);
}

/// Thread `tid`'s context, borrowed from the list alone, so that the runner's other fields stay
/// usable beside it (`call_subject` takes them apart). A thread the runner steps always has one;
/// any other's is `ThreadCtx::none()`.
#[inline(always)]
fn context_of<'t, 'a, S: Subject>(
    threads: &'t mut [ThreadCtx<'a, S>],
    tid: Tid,
) -> &'t mut ThreadCtx<'a, S> {
    &mut threads[tid.0 as usize]
}

/// If `step` blocks, blocks thread `tid` in `os` and keeps its continuation in `pending` (the
/// thread's context's), to run when the thread is woken.
#[inline(always)]
fn park_if_blocked<S: Subject>(
    os: &mut Os,
    pending: &mut Option<Continuation<S>>,
    tid: Tid,
    step: Step<S>,
) {
    if let Step::Block(reason, continuation) = step {
        os.block(tid, reason, "runner");
        // The slot is empty: a continuation is taken before it runs, and an op runs only with
        // none pending. Replaced and forgotten rather than assigned, so that the slot's old
        // value is neither tested nor dropped (a load, a test and a branch on every block).
        let previous = pending.replace(continuation);
        debug_assert!(previous.is_none(), "a blocked thread has one continuation");
        std::mem::forget(previous);
    }
}

impl<'a, S: Subject> Runner<'a, S> {
    /// Runs every lifecycle of `scenario`; `info` is the subject's (`info_of`), for its caches.
    fn run_lifecycles(
        &mut self,
        subject: &mut S,
        scenario: &'a Scenario<S::Op>,
        info: &SubjectInfo,
    ) -> Result<(), Stop> {
        let mut allowances = Vec::new();
        for cache in &info.caches {
            if let Some(kind) = self.os.resources().kind_by_name(cache.kind) {
                allowances.push(CacheAllowance {
                    kind,
                    per_key_max: cache.per_key_max,
                });
            }
        }
        for (name, bound) in &scenario.caches {
            if let Some(kind) = self.os.resources().kind_by_name(name) {
                allowances.retain(|a| a.kind != kind);
                allowances.push(CacheAllowance {
                    kind,
                    per_key_max: *bound,
                });
            }
        }
        // One detector for the whole run, started again for each lifecycle: its allowances and
        // storage are made once, not per lifecycle.
        let mut detector = GrowthDetector::new(0, allowances);
        // The baseline at the start of each repetition, retaken in place.
        let mut before = ledger::baseline(&self.os);
        for (index, lifecycle) in scenario.lifecycles.iter().enumerate() {
            self.lifecycle_index = index as u32;
            self.repetition = 0;
            self.os
                .trace()
                .event_text(EventKind::Lifecycle, &lifecycle.name);
            // The baseline before the setup, which the check after the teardown compares with,
            // or, in a lifecycle with a setup and no teardown, the check of what the setup
            // added (`SetupCheck`), which also takes the baseline after the setup and notes
            // what each repetition leaves. A lifecycle with neither list takes none.
            let mut end_check = if !lifecycle.teardown.is_empty() {
                Some(EndCheck::Teardown(ledger::baseline(&self.os)))
            } else if !lifecycle.setup.is_empty() {
                Some(EndCheck::Setup(SetupCheck::new(ledger::baseline(&self.os))))
            } else {
                None
            };
            self.run_list(subject, &lifecycle.setup, OpList::Setup, lifecycle)?;
            if let Some(EndCheck::Setup(check)) = &mut end_check {
                check.setup_ended(&self.os);
            }
            detector.restart(lifecycle.warmup);
            detector.reserve_series(lifecycle.repeat, self.os.resources().kinds().len());
            // Room for a context per thread the repetitions spawn (tids are never reused), up
            // to a bound: a fuzz input repeats a spawn about seventy times, and the contexts
            // were copied on each of the list's regrowths.
            let is_spawn = |op: &&ScenarioOp<S::Op>| matches!(op, ScenarioOp::Spawn { .. });
            let spawns = lifecycle.ops.iter().filter(is_spawn).count();
            let contexts = spawns.saturating_mul(lifecycle.repeat as usize);
            self.threads.reserve(contexts.min(CONTEXTS_RESERVED_MAX));
            // Whether the last repetition left every site's totals as it found them. Most do:
            // then nothing leaked, the baseline already holds the totals the next one starts
            // from, and every kind's count is what the detector observed after the repetition
            // before (nothing acquires or releases between an observation and the next
            // baseline).
            let mut unchanged = false;
            for repetition in 0..lifecycle.repeat {
                self.repetition = repetition;
                if unchanged {
                    before.retake_unchanged(&self.os);
                } else {
                    before.retake(&self.os);
                }
                self.run_list(subject, &lifecycle.ops, OpList::Ops, lifecycle)?;
                unchanged = before.unchanged(&self.os);
                let setup_check = match &mut end_check {
                    Some(EndCheck::Setup(check)) => Some(check),
                    _ => None,
                };
                let leaks = ledger::check_repetition(
                    &self.os,
                    &before,
                    unchanged,
                    detector.allowances(),
                    setup_check,
                );
                let leaking: Vec<String> = leaks.iter().map(|f| f.resource.clone()).collect();
                for mut finding in leaks {
                    if let Some(kind) = self.os.resources().kind_by_name(&finding.resource) {
                        finding.series = detector.series(kind);
                    }
                    self.add(self.stamp(finding))?;
                }
                let growth = if unchanged {
                    detector.observe_unchanged(&self.os)
                } else {
                    detector.observe(&self.os)
                };
                for finding in growth {
                    if !leaking.contains(&finding.resource) {
                        self.add(self.stamp(finding))?;
                    }
                }
                self.check_invariants(subject)?;
            }
            GrowthProgress::merge(&mut self.growth_progress, detector.progress(&self.os));
            self.repetition = lifecycle.repeat.saturating_sub(1);
            if let Some(end_check) = &end_check {
                self.end_lifecycle(subject, lifecycle, end_check)?;
            }
        }
        Ok(())
    }

    /// The end of a lifecycle that has a teardown or a setup, after its repetitions: the
    /// teardown and the check against the baseline before the setup, or, with no teardown, the
    /// check of what the setup added and the lifecycle still holds (`SetupCheck`), declared
    /// caches included as after a teardown. The repetitions' leaks were reported after each,
    /// and the invariants checked after the last. Out of line, as none of it runs in the loop
    /// of a lifecycle with neither list (as generated ones mostly are). What it finds is placed
    /// at the end of the lifecycle (`Finding::at_end`), not in its last repetition.
    #[inline(never)]
    fn end_lifecycle(
        &mut self,
        subject: &mut S,
        lifecycle: &'a Lifecycle<S::Op>,
        end_check: &EndCheck,
    ) -> Result<(), Stop> {
        let before_setup = match end_check {
            EndCheck::Setup(check) => {
                self.checking_end = Some(LifecycleEnd::NoTeardown);
                let found = check.leaks(&self.os);
                let added = found
                    .into_iter()
                    .try_for_each(|finding| self.add(self.stamp(finding)));
                self.checking_end = None;
                return added;
            }
            EndCheck::Teardown(before_setup) => before_setup,
        };
        self.run_list(subject, &lifecycle.teardown, OpList::Teardown, lifecycle)?;
        self.checking_end = Some(LifecycleEnd::Teardown);
        let checked = ledger::leaks(&self.os, before_setup, &[])
            .into_iter()
            .try_for_each(|finding| self.add(self.stamp(finding)))
            .and_then(|()| self.check_invariants(subject));
        self.checking_end = None;
        checked
    }

    /// The invariants checked after every repetition and teardown: the OS's own (bytes written
    /// minus bytes read equal what every pipe and socket buffer holds) and those the subject
    /// declares.
    fn check_invariants(&mut self, subject: &S) -> Result<(), Stop> {
        if !self.os.check_fd_conservation() {
            self.collect_os_findings()?;
        }
        let violations =
            self.call_outside_ops(Calling::CheckInvariants, |os| subject.check_invariants(os))?;
        for violation in violations {
            let finding = Finding::new(
                FindingKind::Invariant,
                "subject invariant",
                S::info().name,
                violation,
            );
            self.add(self.stamp(finding))?;
        }
        Ok(())
    }

    /// Marks a finding the runner or ledger made with where the run is now: in a repetition,
    /// in the list the main thread runs (the setup, the teardown: `Os::place_in_list`, as the
    /// OS places its own), or at the end of the lifecycle.
    fn stamp(&self, finding: Finding) -> Finding {
        let finding = finding.at(self.lifecycle_index, self.repetition);
        match self.checking_end {
            Some(end) => finding.at_end(end),
            None => self.os.place_in_list(finding),
        }
    }

    /// Adds a finding; a repeat of a signature already reported only counts.
    fn add(&mut self, finding: Finding) -> Result<(), Stop> {
        let signature = finding.signature();
        let count = self.occurrences.entry(signature.clone()).or_insert(0);
        *count += 1;
        let fatal = finding.kind.is_fatal();
        if *count == 1 {
            self.os.trace().event_text(EventKind::Finding, &signature);
            let finding = with_injected_faults(finding, self.os.injected_faults());
            self.findings.push(finding);
        } else if let Some(first) = self
            .findings
            .iter_mut()
            .find(|f| f.signature() == signature)
        {
            // The report keeps the first occurrence, but the plot of a leak repeated in every
            // repetition should show all of them.
            if finding.series.len() > first.series.len() {
                first.series = finding.series;
            }
        }
        if fatal { Err(Stop) } else { Ok(()) }
    }

    #[inline]
    fn collect_os_findings(&mut self) -> Result<(), Stop> {
        if self.os.findings().is_empty() {
            return Ok(());
        }
        for finding in self.os.take_findings() {
            self.add(finding)?;
        }
        Ok(())
    }

    fn panicked(&mut self, payload: Box<dyn std::any::Any + Send>, op_name: &str) {
        let message = panic_message(&*payload);
        let headline = format!("the subject panicked: {message}");
        // The panic just caught is this thread's last: its hook recorded where it was raised
        // (when a hook of sim's is installed), and taking it leaves none for a later catcher.
        let location = crate::subject::take_panic_location();
        // A panic before any op is the constructor's, which reads `[config]`.
        self.subject_failed(op_name, headline, " (check `[config]`)", location);
    }

    /// The finding for a subject whose `new` asked for the host arena though its `info()` does
    /// not set `host_backed`, which the OS refused (`Os::refuse_host_arena`): a `panic` finding
    /// in `new`, as any other refusal of the constructor, saying what to set.
    fn undeclared_host_arena(&mut self) {
        let refusal = self.os.host_arena_refusal().unwrap_or_default().to_string();
        // Where `new` panicked on the refusal, if it did, is not where the fault is: the
        // refusal names what to set.
        let _ = crate::subject::take_panic_location();
        self.subject_failed("new", refusal, "", None);
    }

    /// A `panic` finding about the subject at the OS's position (`Position::subject_failed`),
    /// raised at `location` in the subject's source when that is known. The location stays out
    /// of the signature and the trace (`add` hashes the signature alone): it moves with every
    /// edit of the source, and a trace hash must not.
    fn subject_failed(
        &mut self,
        site: &str,
        headline: String,
        new_hint: &str,
        location: Option<SourceLocation>,
    ) {
        let position = self.os.position();
        let finding = position
            .subject_failed(info_of::<S>().name, site, headline, new_hint)
            .panicked_at(location);
        let _ = self.add(self.stamp(finding));
    }

    /// Runs one op list on the main thread, with spawned threads, until every thread is done.
    ///
    /// A panic in the subject unwinds out of the whole stepping loop to here, where it becomes a
    /// finding: one guard per list rather than one per subject call, whose result the guard
    /// would copy on every step.
    fn run_list(
        &mut self,
        subject: &mut S,
        ops: &'a [ScenarioOp<S::Op>],
        list: OpList,
        lifecycle: &'a Lifecycle<S::Op>,
    ) -> Result<(), Stop> {
        // Only the last list's threads (and the main thread, replaced below) can have a context:
        // the lists before emptied their own. Emptying the whole list and growing it back to the
        // next spawned tid cost every list a step per thread the run had ever spawned.
        for ctx in &mut self.threads[self.list_contexts_from..] {
            *ctx = ThreadCtx::none();
        }
        self.list_contexts_from = self.threads.len();
        self.spawned.clear();
        self.has_work.clear();
        self.set_ctx(MAIN_THREAD, ThreadCtx::new(ops, list, list));
        self.os.start_list(list);
        self.runnable_made_from = REMAKE;
        // The lifecycle and repetition of the position are the list's, written here once rather
        // than with every op (scheduler 384.2 -> 383.7 instructions per decision). Only for a
        // list with ops: its first step is the main thread's first op, which writes the rest of
        // the position before anything reads it, so no reader sees the list's lifecycle with the
        // op of the list before. An empty list leaves the position as it found it.
        if !ops.is_empty() {
            self.os
                .set_list_position(self.lifecycle_index, self.repetition);
        }
        match catch_unwind(AssertUnwindSafe(|| {
            self.step_until_done(subject, lifecycle)
        })) {
            Ok(done) => done,
            Err(payload) => self.subject_panicked(payload),
        }
    }

    /// A panic caught by `run_list`: a finding if it came from a subject call. Anywhere else it
    /// is the runner's or the OS's own bug, and keeps unwinding.
    #[cold]
    fn subject_panicked(&mut self, payload: Box<dyn std::any::Any + Send>) -> Result<(), Stop> {
        let what = match std::mem::replace(&mut self.calling, Calling::Nothing) {
            Calling::Nothing => resume_unwind(payload),
            Calling::Op => self.os.position().op_name,
            Calling::Continuation => "continuation",
            Calling::Other(what) => what,
            outside @ (Calling::CheckInvariants | Calling::Drop) => {
                self.collect_os_findings()?;
                self.panicked_outside_ops(payload, outside);
                return Err(Stop);
            }
        };
        self.collect_os_findings()?;
        self.panicked(payload, what);
        Err(Stop)
    }

    /// Calls the subject's code that runs outside any op (`what`: its invariant check, its
    /// drop) with its panic caught, as `run_list` catches an op's: the panic is a `panic`
    /// finding naming `what`, and stops the run.
    fn call_outside_ops<T>(
        &mut self,
        what: Calling,
        call: impl FnOnce(&Os) -> T,
    ) -> Result<T, Stop> {
        self.calling = what;
        let called = catch_unwind(AssertUnwindSafe(|| call(&self.os)));
        match called {
            Ok(value) => {
                self.calling = Calling::Nothing;
                Ok(value)
            }
            Err(payload) => self.subject_panicked(payload).and(Err(Stop)),
        }
    }

    /// The `panic` finding of a call outside any op (`call_outside_ops`), with no op named: the
    /// op that ran last had returned. A panic in `check_invariants` is placed as its
    /// violations are (the repetition, or the end of the lifecycle it checks); one in `drop` in
    /// the repetition where the run ended, and in no list: the list that ran last, a teardown
    /// say, had ended. A drop after a run that stopped before any list ran (a fatal finding in
    /// `new`) is placed after `new` (`Finding::after_new`): the first repetition, which the
    /// position names, never ran.
    #[cold]
    fn panicked_outside_ops(&mut self, payload: Box<dyn std::any::Any + Send>, what: Calling) {
        let subject = info_of::<S>().name;
        let no_list_ran = !self.any_list_started();
        let (site, during) = match what {
            Calling::Drop if no_list_ran => (
                "drop",
                format!(
                    "`{subject}`'s drop, at the end of a run that stopped after `new`, before any op ran"
                ),
            ),
            Calling::Drop => ("drop", format!("`{subject}`'s drop, at the end of the run")),
            _ => (
                "check_invariants",
                format!("`{subject}::check_invariants`, after the op list"),
            ),
        };
        let message = panic_message(&*payload);
        let location = crate::subject::take_panic_location();
        // A subject that panicked in an op or a check is often left half-updated, and its drop
        // then panics as a consequence: a note on the first panic, not a finding of its own
        // (a sweep would count one bug under two signatures).
        if let Calling::Drop = what
            && let Some(first) = self
                .findings
                .iter_mut()
                .find(|f| f.kind == FindingKind::Panic)
        {
            first.notes.push(format!(
                "the subject's drop panicked too, after it: {message}"
            ));
            return;
        }
        let headline = format!("the subject panicked: {message}");
        let finding = Finding::new(FindingKind::Panic, "subject", site, headline)
            .detail("during", during)
            .panicked_at(location);
        let finding = match what {
            Calling::Drop if no_list_ran => finding.at(0, 0).after_new(),
            Calling::Drop => finding.at(self.lifecycle_index, self.repetition),
            _ => self.stamp(finding),
        };
        let _ = self.add(finding);
    }

    /// Drops the continuation of every thread still blocked (a run stops with threads blocked:
    /// a deadlock, a fatal finding in another thread), each with its panic caught: what it
    /// captured is the subject's, and a panic in its drop is a `panic` finding at the op that
    /// blocked (site `continuation-drop`), or after an earlier panic a note on that one, as the
    /// subject's own drop's is. Once, at the end of a run that stopped: a list ends only with
    /// no thread blocked, or stops the run, so no continuation is left for the next list to
    /// drop; where the runner dropped them with itself, after the outcome was taken, the panic
    /// escaped the run as sim's own bug.
    #[cold]
    #[inline(never)]
    fn drop_continuations(&mut self) {
        for index in 0..self.threads.len() {
            let tid = Tid(index as u32);
            let ctx = &mut self.threads[index];
            let Some(continuation) = ctx.pending.take() else {
                continue;
            };
            ctx.restore_position(&mut self.os, tid);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(continuation))) {
                let _ = self.collect_os_findings();
                self.continuation_drop_panicked(payload);
            }
        }
    }

    /// The finding of a panic in a continuation's drop (`drop_continuations`), at the op that
    /// blocked; a note on the run's first panic finding when it has one (a subject stopped by a
    /// panic is often left half-updated, as for its `drop`).
    #[cold]
    fn continuation_drop_panicked(&mut self, payload: Box<dyn std::any::Any + Send>) {
        if let Some(first) = self
            .findings
            .iter_mut()
            .find(|f| f.kind == FindingKind::Panic)
        {
            let message = panic_message(&*payload);
            let _ = crate::subject::take_panic_location();
            first.notes.push(format!(
                "a blocked thread's continuation panicked too when dropped, after it: {message}"
            ));
            return;
        }
        let headline = format!("the subject panicked: {}", panic_message(&*payload));
        let location = crate::subject::take_panic_location();
        let finding = self
            .os
            .position()
            .subject_failed(info_of::<S>().name, CONTINUATION_DROP_SITE, headline, "")
            .panicked_at(location)
            .note("the op blocked, and the run stopped before its thread woke: its continuation never ran, and what it captured panicked when dropped");
        let _ = self.add(self.stamp(finding));
    }

    /// Whether any op list has started: `run_list` gives every list the main thread's context,
    /// so the run has none before its first list.
    fn any_list_started(&self) -> bool {
        !self.threads.is_empty()
    }

    /// Steps the threads of the list `run_list` set up until none can step.
    fn step_until_done(
        &mut self,
        subject: &mut S,
        lifecycle: &'a Lifecycle<S::Op>,
    ) -> Result<(), Stop> {
        // The list's first set. Not noted as made from the OS's version (`run_list` left
        // `REMAKE`): the first step then ends with a new set and a collection of findings, some of
        // which may have been reported before the list.
        self.remake_runnable();
        loop {
            debug_assert!(
                self.runnable_is_fresh(),
                "the kept set of runnable threads {:?} is stale",
                self.runnable
            );
            if self.runnable.is_empty() {
                if self.os.advance_timers() {
                    // Not noted either, as after the list's start: the findings of a wake-up
                    // (there are none) would be collected after the next step.
                    self.remake_runnable();
                    continue;
                }
                return self.check_quiescent();
            }
            let count = self.runnable.len();
            let tid = if count == 1 {
                self.runnable[0]
            } else {
                let step = self.steps_taken() + 1;
                let Some(choice) = self.os.scheduler().next_thread(&self.runnable, step) else {
                    return self.schedule_diverged();
                };
                self.os
                    .trace()
                    .event(EventKind::Schedule, u64::from(choice), count as u64);
                choice
            };
            self.steps_left_plus_one -= 1;
            if self.steps_left_plus_one == 0 {
                // A budget finding is fatal: no step follows, and the count never goes below 0.
                return self.steps_exhausted();
            }
            self.step(subject, Tid(tid), lifecycle)?;
            if tid == MAIN_THREAD.0 {
                // Whether the main thread has work left changes only when it runs.
                self.note_main_work();
            }
            self.after_step()?;
        }
    }

    /// After a step: if it changed a thread's state or reported a finding (or the main thread's
    /// work changed, which set `REMAKE`), the set of threads that can take the next step, and the
    /// OS's findings collected. Most steps change neither, and then cost one compare, where a
    /// look at the set's version before every step and at the findings after it were two.
    /// Whether a spawned thread has work left changes only when it exits, which is a change of
    /// state too; a step that takes a free lock changes nothing, and needs no new set.
    #[inline]
    fn after_step(&mut self) -> Result<(), Stop> {
        let version = self.os.changes_version();
        if self.runnable_made_from != version {
            // Noted before the set is made, not after: the version then goes from the register
            // it was compared in, rather than to the stack and back around the set's growth.
            self.runnable_made_from = version;
            self.remake_runnable();
            self.collect_os_findings()?;
        }
        Ok(())
    }

    /// A replayed schedule that no longer fits the run, at the decision where it stopped
    /// fitting: a `determinism` finding stamped there, with the last op started before it, and
    /// the end of the run, since nothing after that decision is the recorded run.
    #[cold]
    fn schedule_diverged(&mut self) -> Result<(), Stop> {
        let divergence = self.os.scheduler().diverged().unwrap_or_default();
        let position = self.os.position();
        let mut finding = Finding::new(
            FindingKind::Determinism,
            "schedule",
            "replay",
            format!("the replayed schedule no longer fits the run: {divergence}"),
        );
        if let Some(op) = position.op_ref() {
            finding = finding.detail_op("last op started", position.to_string(), Some(op));
        }
        let finding = finding
            .note("the run stops at this decision: nothing after it would be the recorded run");
        self.add(self.stamp(finding))?;
        Err(Stop)
    }

    /// The steps taken so far, the one that found the budget spent included.
    fn steps_taken(&self) -> u64 {
        steps_budget(self.os.limits()) - self.steps_left_plus_one
    }

    #[cold]
    fn steps_exhausted(&mut self) -> Result<(), Stop> {
        let steps_max = self.os.limits().steps_max;
        // A scenario that asks for more steps than the limit when nothing blocks or retries
        // (`repeat = 10000000`) stops here however well its subject behaves: blaming a spin
        // loop would send its author hunting for a bug that is not there.
        let steps_asked = self.scenario.steps_estimate();
        let cause = if steps_asked > steps_max {
            let ceiling = crate::os::LIMIT_RANGES
                .iter()
                .find(|range| range.name == "steps_max")
                .map_or(u64::MAX, |range| range.max);
            let remedy = if steps_asked <= ceiling {
                format!(
                    "lower a `repeat`, or raise `steps_max` to at least {steps_asked} under [limits]"
                )
            } else {
                format!("lower a `repeat`: `steps_max` goes no higher than {ceiling}")
            };
            format!(
                "likely cause: the scenario itself takes {steps_asked} steps when nothing blocks (each lifecycle's ops times its `repeat`, with setup, teardown and spawned threads' ops), more than `steps_max`; {remedy}"
            )
        } else {
            "likely cause: a spin loop (a thread retrying without blocking) or an unfair schedule starving the thread that would make progress".to_string()
        };
        let finding = Finding::budget("steps_max", steps_max, "runner").note(cause);
        self.add(self.stamp(finding))
    }

    /// Makes `runnable`, the threads that can take a step, ascending: runnable in the OS and with
    /// something left to run (the main thread is done when its list is; a spawned thread still
    /// has to exit), as the intersection of the OS's runnable threads and the runner's threads
    /// with work left (`has_work`). When it must be made again is for its callers to say: at the
    /// start of a list, after timers woke a thread, and after a step that changed something
    /// (`after_step`).
    #[inline]
    fn remake_runnable(&mut self) {
        let runnable_in_os = &self.os.threads.runnable;
        runnable_in_os.intersection_into(&self.has_work, &mut self.runnable);
    }

    /// Whether `runnable` is what a look at every thread's state and context gives now: a debug
    /// assertion that the two thread sets it is made from are kept right. It does not allocate,
    /// so that fuzzing builds with debug assertions stay fast.
    fn runnable_is_fresh(&self) -> bool {
        let states = self.os.threads.threads.iter().map(|t| &t.state);
        let scanned = states
            .zip(&self.threads)
            .enumerate()
            .filter(|(index, (state, ctx))| can_step(*index, state, ctx))
            .map(|(index, _)| index as u32);
        self.runnable.iter().copied().eq(scanned)
    }

    fn set_ctx(&mut self, tid: Tid, ctx: ThreadCtx<'a, S>) {
        let index = tid.0 as usize;
        debug_assert!(
            tid == MAIN_THREAD || index >= self.list_contexts_from,
            "thread {index}'s context would outlive its list (spawned threads of the list start at {})",
            self.list_contexts_from
        );
        // Only the main thread can start with nothing to run: a spawned thread still has to exit.
        if tid != MAIN_THREAD || ctx.work_left() {
            self.has_work.insert(tid);
        }
        if index < self.threads.len() {
            self.threads[index] = ctx;
        } else {
            // A spawn: tids count up, so its slot is nearly always the next one, which a push
            // makes at less cost than a resize and a store.
            if self.threads.len() < index {
                self.threads.resize_with(index, ThreadCtx::none);
            }
            self.threads.push(ctx);
        }
    }

    /// After the main thread stepped: whether it has work left, and if that changed, a new set
    /// of threads that can step at the next step.
    fn note_main_work(&mut self) {
        let work_left = self.ctx(MAIN_THREAD).work_left();
        if work_left != self.has_work.contains(MAIN_THREAD) {
            if work_left {
                self.has_work.insert(MAIN_THREAD);
            } else {
                self.has_work.remove(MAIN_THREAD);
            }
            self.runnable_made_from = REMAKE;
        }
    }

    /// The tid of the latest spawn of `thread` in this list, if it spawned.
    fn spawned_tid(&self, thread: &str) -> Option<Tid> {
        let mut spawns = self.spawned.iter().rev();
        spawns.find(|(name, _)| *name == thread)?.1
    }

    fn ctx(&mut self, tid: Tid) -> &mut ThreadCtx<'a, S> {
        context_of(&mut self.threads, tid)
    }

    /// With nothing runnable: either everyone is done, or the blocked threads are deadlocked.
    fn check_quiescent(&mut self) -> Result<(), Stop> {
        let blocked = self.os.blocked_threads();
        if blocked.is_empty() {
            return Ok(());
        }
        let mut finding = Finding::new(
            FindingKind::Deadlock,
            "threads",
            blocked
                .iter()
                .map(|(_, _, reason)| reason_kind(reason))
                .min()
                .unwrap_or("blocked"),
            format!(
                "no thread can run and no timer is pending; {} thread(s) blocked forever",
                blocked.len()
            ),
        );
        for (tid, name, reason) in &blocked {
            finding = finding.detail("blocked", format!("thread {} `{name}`: {reason}", tid.0));
            // Where it blocked, and for a lock who holds it since when: what a reader needs to
            // find the missing release or wake-up without replaying the run.
            if let Some(at) = self.os.blocked_at(*tid) {
                finding = finding.detail_op("blocked at", at.to_string(), at.op_ref());
            }
            if let crate::os::BlockReason::Lock(lock) = reason {
                for (holder, taken) in self.os.lock_holders(*lock) {
                    finding = finding.detail_op(
                        "held",
                        format!(
                            "lock #{} by thread {} `{}`, taken at {taken}",
                            lock.index,
                            holder.0,
                            self.os.thread_name(holder)
                        ),
                        taken.op_ref(),
                    );
                }
            }
        }
        finding = finding.note("a waker that never comes: check who should have unblocked each thread (a closed description, a lost wake-up, a lock never released)");
        self.add(self.stamp(finding))
    }

    /// Runs thread `tid`'s next piece of work. The context is looked up once: the subject is
    /// called through `call_subject`, which takes the runner's fields apart, so that a block
    /// keeps its continuation in the context already at hand (looking it up again cost every
    /// block a bounds check and a test of the slot).
    fn step(
        &mut self,
        subject: &mut S,
        tid: Tid,
        lifecycle: &'a Lifecycle<S::Op>,
    ) -> Result<(), Stop> {
        let ctx = context_of(&mut self.threads, tid);
        // Looked at before it is taken: taken at once, it cost every op (which has none) the
        // writing of an empty slot.
        if ctx.pending.is_some()
            && let Some(continuation) = ctx.pending.take()
        {
            ctx.restore_position(&mut self.os, tid);
            call_subject(
                subject,
                &mut self.os,
                &mut self.calling,
                &mut ctx.pending,
                tid,
                Calling::Continuation,
                |subject, os| continuation(subject, os, tid),
            );
            return Ok(());
        }
        // Only checked here, and taken in `run_call`: taken here, it cost every step (which
        // almost never has one) the writing of an empty result to the stack.
        if !ctx.calls.is_empty() {
            return self.run_call(subject, tid);
        }
        if ctx.pc < ctx.ops.len() {
            let index = ctx.pc;
            ctx.pc += 1;
            let ops: &'a [ScenarioOp<S::Op>] = ctx.ops;
            let op = &ops[index];
            // The subject's code, so a panic in it is the subject's finding. Caught here, on its
            // own: an `op_name` that cannot panic (a match of the op's variants) is inlined
            // without the landing pad, and the guard costs the step nothing (the scheduler
            // bench's `run_list`, the stepping loop, counts the same instructions with it).
            let name = match catch_unwind(AssertUnwindSafe(|| op.name(S::op_name))) {
                Ok(name) => name,
                Err(payload) => return self.op_name_panicked(payload, tid, index),
            };
            ctx.op_name = name;
            self.ops += 1;
            // The lifecycle and repetition were set when the list began (`run_list`).
            let slot = OpSlot::with_index(ctx.list_bits, index as u32 + 1);
            self.os.set_op_position(slot, name, tid.0);
            self.os.trace_op(tid.0, name);
            return match op {
                ScenarioOp::Subject(op) => {
                    call_subject(
                        subject,
                        &mut self.os,
                        &mut self.calling,
                        &mut ctx.pending,
                        tid,
                        Calling::Op,
                        |subject, os| subject.apply(os, tid, op),
                    );
                    Ok(())
                }
                _ => self.run_runner_op(tid, op, lifecycle),
            };
        }
        self.exit_thread(tid)
    }

    /// A panic in the subject's `op_name`, naming op `index` of thread `tid`'s list: a `panic`
    /// finding at that op (whose name is not known: `?`), with `op_name` as its site, and the
    /// run stops. Outside `calling`, which the stepping loop's guard reads: setting it before
    /// every op's name cost a store per op.
    #[cold]
    #[inline(never)]
    fn op_name_panicked(
        &mut self,
        payload: Box<dyn std::any::Any + Send>,
        tid: Tid,
        index: usize,
    ) -> Result<(), Stop> {
        let ctx = context_of(&mut self.threads, tid);
        ctx.op_name = UNNAMED_OP;
        let slot = OpSlot::with_index(ctx.list_bits, index as u32 + 1);
        self.os.set_op_position(slot, UNNAMED_OP, tid.0);
        self.collect_os_findings()?;
        self.panicked(payload, "op_name");
        Err(Stop)
    }

    /// Calls subject code by address (an exit hook, a TLS destructor), the first that thread
    /// `tid` has queued: rare, so out of line.
    #[inline(never)]
    fn run_call(&mut self, subject: &mut S, tid: Tid) -> Result<(), Stop> {
        let ctx = context_of(&mut self.threads, tid);
        ctx.restore_position(&mut self.os, tid);
        let (code, arg, what) = ctx
            .calls
            .pop_front()
            .expect("run_call is called with a call queued");
        if !self.os.check_code(code, what, what) {
            return Ok(());
        }
        self.invoke(subject, tid, what, |subject, os| {
            subject.call(os, tid, code, arg)
        })
    }

    /// A thread whose ops are done runs its TLS destructors (up to four rounds), then exits.
    /// Once per thread: kept out of the stepping loop.
    #[inline(never)]
    fn exit_thread(&mut self, tid: Tid) -> Result<(), Stop> {
        debug_assert_ne!(
            tid, MAIN_THREAD,
            "the main thread steps only while it has work"
        );
        let ctx = context_of(&mut self.threads, tid);
        ctx.op_name = THREAD_EXIT_OP;
        ctx.restore_position(&mut self.os, tid);
        if ctx.exit_rounds < crate::os::tls::DESTRUCTOR_ROUNDS_MAX {
            if ctx.calls.capacity() == 0 {
                ctx.calls = std::mem::take(&mut self.spare_calls);
            }
            let any_due = self.os.tls_destructors_due(tid, |_, code, value| {
                ctx.calls.push_back((code, value, "tls destructor"));
            });
            if any_due {
                ctx.exit_rounds += 1;
                return Ok(());
            }
        }
        for (lock, kind) in self.os.locks_held_by(tid) {
            // Where it took the lock: the op whose release is missing is after that one. A thread
            // holds a lock once (taking it again is refused), so there is one such hold.
            let taken = (self.os.lock_holders(lock).into_iter())
                .find_map(|(holder, taken)| (holder == tid).then_some(taken));
            // The site that took the lock is the finding's, as the held lock's leak at the end of
            // the lifecycle has it: two locks left held at two sites are two findings, not one.
            let site = taken.map_or(THREAD_EXIT_OP, |taken| taken.site);
            let mut finding = Finding::new(
                FindingKind::Invariant,
                "held lock",
                site,
                format!(
                    "thread {} exits holding {} #{}",
                    tid.0,
                    kind.name(),
                    lock.index
                ),
            );
            if let Some(taken) = taken {
                finding = finding.detail_op("taken", taken.to_string(), taken.op_ref());
            }
            let finding = finding.note("no other thread can ever acquire it");
            self.add(self.stamp(finding))?;
        }
        self.os.exit_thread(tid, "thread-exit");
        let ctx = self.ctx(tid);
        ctx.finished = true;
        if ctx.calls.capacity() > 0 {
            self.spare_calls = std::mem::take(&mut ctx.calls);
        }
        self.has_work.remove(tid);
        Ok(())
    }

    /// The runner's own ops (spawn, join, exit, sleep). They are rare next to the subject's, so
    /// they stay out of line: the loop that steps threads then keeps its values in registers.
    #[inline(never)]
    fn run_runner_op(
        &mut self,
        tid: Tid,
        op: &'a ScenarioOp<S::Op>,
        lifecycle: &'a Lifecycle<S::Op>,
    ) -> Result<(), Stop> {
        match op {
            ScenarioOp::Spawn { thread } => {
                let spec = lifecycle
                    .thread(thread)
                    .expect("validated: spawned threads are declared");
                // An injected spawn failure: the thread never runs, its join is a no-op.
                let new = self.os.spawn_thread(thread, "spawn").ok();
                if let Some(new) = new {
                    // It runs in the main thread's list, whichever thread spawned it.
                    let main_list = self.ctx(MAIN_THREAD).main_list();
                    let ctx = ThreadCtx::new(&spec.ops, OpList::Thread, main_list);
                    self.set_ctx(new, ctx);
                }
                self.spawned.push((thread.as_str(), new));
                Ok(())
            }
            ScenarioOp::Join { thread } => match self.spawned_tid(thread) {
                Some(target) => {
                    // Not the subject's code: no `calling`, so a panic here is the runner's own.
                    let step = join_step::<S>(&mut self.os, tid, target);
                    let ctx = context_of(&mut self.threads, tid);
                    park_if_blocked(&mut self.os, &mut ctx.pending, tid, step);
                    Ok(())
                }
                None => Ok(()),
            },
            ScenarioOp::Exit => {
                let hooks = self.os.begin_exit();
                let ctx = self.ctx(tid);
                for hook in hooks {
                    ctx.calls.push_back((hook.code, hook.arg, "exit hook"));
                }
                Ok(())
            }
            ScenarioOp::Sleep { ticks } => {
                self.os.sleep(tid, *ticks, "sleep");
                self.ctx(tid).pending = Some(Box::new(|_, _, _| Step::Done));
                Ok(())
            }
            ScenarioOp::Subject(_) => unreachable!("subject ops run in `run_op`"),
        }
    }

    /// Calls into the subject (an exit hook, a TLS destructor, a join's retry): see
    /// `call_subject`.
    fn invoke(
        &mut self,
        subject: &mut S,
        tid: Tid,
        what: &'static str,
        call: impl FnOnce(&mut S, &mut Os) -> Step<S>,
    ) -> Result<(), Stop> {
        let ctx = context_of(&mut self.threads, tid);
        call_subject(
            subject,
            &mut self.os,
            &mut self.calling,
            &mut ctx.pending,
            tid,
            Calling::Other(what),
            call,
        );
        Ok(())
    }

    /// Names the declared thread of each op `finding` names on a spawned thread: a position
    /// holds only the thread's id, and the op's list is that thread's.
    fn name_threads(&self, finding: &mut Finding) {
        let ops = finding.details.iter_mut().filter_map(|d| d.op.as_mut());
        for op in ops.filter(|op| op.list == OpList::Thread) {
            op.thread_name = Some(self.os.thread_name(Tid(op.thread)).to_string());
        }
    }

    /// The outcome so far: every finding, the trace hash and the schedule. Used at the end of a
    /// run, and by the crash handler of an isolated run, which never lets the run resume.
    fn outcome(&mut self) -> Outcome {
        let _ = self.collect_os_findings();
        let mut findings = std::mem::take(&mut self.findings);
        for finding in &mut findings {
            self.name_threads(finding);
            let count = self
                .occurrences
                .get(&finding.signature())
                .copied()
                .unwrap_or(1);
            if count > 1 {
                finding
                    .notes
                    .push(format!("seen {count} times in this run (reported once)"));
            }
        }
        self.os.trace().flush();
        // The header and the schedule are taken, not cloned: the outcome is made once, and the
        // run never resumes after it.
        Outcome {
            header: std::mem::take(&mut self.header),
            findings,
            trace_hash: self.os.trace_hash(),
            trace_events: self.os.trace().events(),
            steps: self.steps_taken(),
            ops: self.ops,
            schedule: self.os.scheduler().take_decisions(),
            decisions: self.os.scheduler().decisions_made(),
            lifecycle_names: self
                .scenario
                .lifecycles
                .iter()
                .map(|l| l.name.clone())
                .collect(),
            lifecycle_repeats: self.scenario.lifecycles.iter().map(|l| l.repeat).collect(),
            growth_progress: std::mem::take(&mut self.growth_progress),
        }
    }
}

impl<'a, S: Subject> isolated::CrashReport for Runner<'a, S> {
    fn crashed(&mut self, host_addr: *const u8, access: Option<crate::os::Access>) -> Outcome {
        self.os.report_host_fault(host_addr, access);
        self.outcome()
    }
}

/// The faults injected most recently before shown with a finding; older ones are counted.
const INJECTED_SHOWN_MAX: usize = 4;

/// `finding` with the faults the run injected in its part of its lifecycle, the latest last: a
/// leak or a fault on an error path follows one of them, and a reader should not have to replay
/// the run with a trace to learn which. The part (`Finding::part`) is the finding's repetition,
/// or the setup or the teardown it was noticed during, or the subject's `new`, or for a check at
/// the lifecycle's end the setup and the teardown whose acquisitions it checks. A fault of
/// the setup carries the first repetition's number and one of the teardown the last's (as every
/// op of those lists does), so lifecycle and repetition alone gave a leak of the first
/// repetition the setup's faults, and one of the last the teardown's.
fn with_injected_faults(
    mut finding: Finding,
    injected: &[(crate::faults::FaultKind, crate::os::Attribution)],
) -> Finding {
    let part = finding.part();
    let in_part: Vec<_> = injected
        .iter()
        .filter(|(_, at)| in_part_of(&finding, part, &at.position))
        .collect();
    let shown_from = in_part.len().saturating_sub(INJECTED_SHOWN_MAX);
    if shown_from > 0 {
        let part = match part {
            LifecyclePart::End(_) => "during the lifecycle's `setup` and `teardown`".to_string(),
            LifecyclePart::RunOnce(list) => format!("during the lifecycle's `{}`", list.name()),
            LifecyclePart::Repetition => "in this repetition".to_string(),
            LifecyclePart::New | LifecyclePart::AfterNew => "in the subject's `new`".to_string(),
        };
        finding = finding.detail(
            "injected",
            format!("{shown_from} earlier fault(s) {part}, not listed"),
        );
    }
    for (kind, at) in &in_part[shown_from..] {
        finding = finding.detail_op(
            "injected",
            format!("{} fault at {at}", kind.name()),
            at.op_ref(),
        );
    }
    finding
}

/// Whether something done at `position` (a fault) is in `part` (`Finding::part`) of
/// `finding`'s lifecycle.
fn in_part_of(finding: &Finding, part: LifecyclePart, position: &crate::os::Position) -> bool {
    if position.lifecycle != finding.lifecycle {
        return false;
    }
    // The list the lifecycle's main thread ran: a spawned thread's fault is its spawner's list's.
    let run_once = position.op.main_list().run_once();
    // Before the first op, the position's op slot is the default one, which names the setup.
    let in_new = position.before_first_op();
    match part {
        // What follows a `new` after which no list ran is `new`'s doing, faults included.
        LifecyclePart::New | LifecyclePart::AfterNew => in_new,
        _ if in_new => false,
        LifecyclePart::End(_) => run_once.is_some(),
        LifecyclePart::RunOnce(list) => run_once == Some(list),
        LifecyclePart::Repetition => {
            run_once.is_none() && position.repetition == finding.repetition
        }
    }
}

fn reason_kind(reason: &crate::os::BlockReason) -> &'static str {
    use crate::os::BlockReason;
    match reason {
        BlockReason::FdReadable(_) => "fd-readable",
        BlockReason::FdWritable(_) => "fd-writable",
        BlockReason::Join(_) => "join",
        BlockReason::Lock(_) => "lock",
        BlockReason::Sleep(_) => "sleep",
        BlockReason::Subject { what, .. } => what,
    }
}

/// Runs a scenario twice and compares trace hashes: a mismatch is a `determinism` finding.
pub fn check_determinism<S: Subject>(
    scenario: &Scenario<S::Op>,
    seed: Option<u64>,
) -> Option<Finding> {
    let first = run::<S>(
        scenario,
        RunOptions {
            seed,
            ..RunOptions::default()
        },
    );
    let second = run::<S>(
        scenario,
        RunOptions {
            seed,
            ..RunOptions::default()
        },
    );
    if first.trace_hash == second.trace_hash {
        return None;
    }
    let finding = determinism_finding(&first, &second);
    let comparison = compare_traces(|sink| {
        run::<S>(
            scenario,
            RunOptions {
                seed,
                trace_sink: Some(sink),
                ..RunOptions::default()
            },
        )
    });
    Some(with_trace_comparison(finding, &comparison, |spawn| {
        scenario.spawned_thread(spawn).map(str::to_string)
    }))
}

/// The finding for two runs of one scenario and seed that differ (in trace or findings).
pub fn determinism_finding(first: &Outcome, second: &Outcome) -> Finding {
    Finding::new(
        FindingKind::Determinism,
        "trace hash",
        first.header.subject.clone(),
        format!(
            "two runs of the same scenario and seed differ: trace {} then {}",
            format_seed(first.trace_hash),
            format_seed(second.trace_hash)
        ),
    )
    .detail("first run", format!("findings {:?}", first.signatures()))
    .detail("second run", format!("findings {:?}", second.signatures()))
    .note("something outside the seed reached the run: the clock, the environment, a hash map's iteration order, or host memory")
}

/// How much of the first trace `compare_traces` keeps: enough for millions of events, bounded
/// whatever the run.
const TRACE_KEPT_BYTES_MAX: usize = 64 << 20;

/// Runs `run` twice, giving each run the trace sink it is passed, and says where the two traces
/// part: for a determinism finding, which only knows that two hashes differ.
pub fn compare_traces(mut run: impl FnMut(Box<dyn Write>) -> Outcome) -> TraceComparison {
    let comparer = TraceComparer::new(TRACE_KEPT_BYTES_MAX);
    run(comparer.first_sink());
    run(comparer.second_sink());
    comparer.finish()
}

/// A determinism finding with where two more runs' traces parted: the first event that differs,
/// each run's version of it, and the last op started before it (the events before it are the
/// same, so what differs was decided since). `spawned_thread` names the declared thread a spawn
/// op of the runs' scenario starts (`Scenario::spawned_thread`): what an op of a spawned thread
/// needs to be found in the file.
pub fn with_trace_comparison(
    finding: Finding,
    comparison: &TraceComparison,
    spawned_thread: impl FnOnce(&OpRef) -> Option<String>,
) -> Finding {
    let last_op_ref = comparison.last_op_ref(spawned_thread);
    match comparison {
        TraceComparison::Parted {
            event,
            first,
            second,
            last_op,
            ..
        } => placed_at(finding, last_op_ref.clone())
            .detail(
                "traces part at",
                format!("event #{event}, in two more runs traced side by side"),
            )
            .detail("traced run 1", TraceComparison::event_text(first))
            .detail("traced run 2", TraceComparison::event_text(second))
            .detail_op(
                "last op started",
                TraceComparison::last_op_text(last_op),
                last_op_ref,
            )
            .note("every event before that one is the same in both runs: look at what the ops running then read that is not a function of the seed (the last one started, or another thread's still running)"),
        TraceComparison::Agreed { events } => finding.note(format!(
            "two more runs, traced side by side, agreed on all {events} events: the difference did not come back (it depends on state outside the run, such as a process-wide counter, that those runs saw alike)"
        )),
        TraceComparison::AgreedAsFarAsKept {
            kept,
            first_events,
            second_events,
        } => finding.note(format!(
            "two more runs, traced side by side, agreed on the first {kept} events (all of the first trace that was kept); they had {first_events} and {second_events} events in all"
        )),
    }
}

/// `finding` placed in the lifecycle and repetition of `op`, when there is one: where the
/// traces of a determinism finding part, which is the only position it has (two whole runs were
/// compared, and no run noticed it).
fn placed_at(finding: Finding, op: Option<OpRef>) -> Finding {
    match op {
        Some(op) => {
            let finding = finding.at(op.lifecycle, op.repetition);
            match op.during {
                Some(list) => finding.during(list),
                None => finding,
            }
        }
        None => finding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultKind;
    use crate::os::{Attribution, Position};
    use crate::registry::Registry;

    /// A finding lists the faults injected in its own repetition, the latest four, and counts
    /// the earlier ones; faults of other repetitions are not its story.
    #[test]
    fn a_finding_lists_the_latest_faults_injected_in_its_repetition() {
        let at = |repetition: u32, op_index: u32| Attribution {
            position: Position {
                lifecycle: 0,
                repetition,
                op: OpSlot::new(OpList::Ops, OpList::Ops, op_index),
                op_name: "op",
                thread: 0,
            },
            site: "site",
        };
        let mut injected = vec![(FaultKind::Commit, at(0, 1))];
        injected.extend((1..=6).map(|op| (FaultKind::Alloc, at(1, op))));
        injected.push((FaultKind::Spawn, at(2, 1)));
        let finding = Finding::new(FindingKind::Leak, "thing", "site", "leaked").at(0, 1);
        let finding = with_injected_faults(finding, &injected);
        let listed: Vec<&str> = finding.detail_texts("injected").collect();
        assert_eq!(
            listed,
            [
                "2 earlier fault(s) in this repetition, not listed",
                "alloc fault at op #3 `op` → site (lifecycle 1, repetition 2, thread 0)",
                "alloc fault at op #4 `op` → site (lifecycle 1, repetition 2, thread 0)",
                "alloc fault at op #5 `op` → site (lifecycle 1, repetition 2, thread 0)",
                "alloc fault at op #6 `op` → site (lifecycle 1, repetition 2, thread 0)",
            ]
        );
        let quiet = Finding::new(FindingKind::Leak, "thing", "site", "leaked").at(0, 3);
        assert_eq!(
            with_injected_faults(quiet, &injected)
                .detail_texts("injected")
                .count(),
            0
        );
    }

    /// A fault of the setup is listed with a finding of the setup and with the check at the
    /// lifecycle's end, not with a finding of the first repetition, whose number it carries; a
    /// fault of the teardown likewise with the last repetition's; and a fault of a thread the
    /// setup spawned is the setup's.
    #[test]
    fn a_finding_lists_the_faults_of_its_setup_repetition_or_teardown_only() {
        let at = |repetition: u32, list: OpList, main_list: OpList| Attribution {
            position: Position {
                lifecycle: 0,
                repetition,
                op: OpSlot::new(list, main_list, 1),
                op_name: "op",
                thread: 0,
            },
            site: "site",
        };
        let injected = [
            (FaultKind::Spawn, at(0, OpList::Setup, OpList::Setup)),
            (FaultKind::Alloc, at(0, OpList::Thread, OpList::Setup)),
            (FaultKind::Commit, at(0, OpList::Ops, OpList::Ops)),
            (FaultKind::Reserve, at(2, OpList::Ops, OpList::Ops)),
            (FaultKind::Eintr, at(2, OpList::Teardown, OpList::Teardown)),
        ];
        let listed = |finding: Finding| -> Vec<String> {
            with_injected_faults(finding, &injected)
                .details
                .iter()
                .filter(|detail| detail.label == "injected")
                .map(|detail| detail.text.split(' ').next().unwrap().to_string())
                .collect()
        };
        let leak = || Finding::new(FindingKind::Leak, "thing", "site", "leaked");
        assert_eq!(listed(leak().at(0, 0).during(OpList::Ops)), ["commit"]);
        assert_eq!(listed(leak().at(0, 2).during(OpList::Ops)), ["reserve"]);
        assert_eq!(
            listed(leak().at(0, 0).during(OpList::Setup)),
            ["spawn", "alloc"]
        );
        assert_eq!(listed(leak().at(0, 2).during(OpList::Teardown)), ["eintr"]);
        assert_eq!(
            listed(leak().at(0, 2).at_end(LifecycleEnd::Teardown)),
            ["spawn", "alloc", "eintr"]
        );
        assert!(listed(leak().at(1, 0).during(OpList::Setup)).is_empty());
    }

    /// More threads than the first word of a `ThreadSet` holds: every one of them is scheduled
    /// and the run passes. (Debug builds also check the kept set of runnable threads against a
    /// look at every thread, at every step.)
    #[test]
    fn threads_past_the_first_word_of_the_thread_sets_step() {
        const THREADS: usize = 70;
        let mut text = String::from("name = \"many\"\nsubject = \"counter\"\n");
        text += "[[lifecycle]]\nname = \"all\"\nops = [";
        for i in 0..THREADS {
            text += &format!("{{ op = \"spawn\", thread = \"t{i}\" }}, ");
        }
        for i in 0..THREADS {
            text += &format!("{{ op = \"join\", thread = \"t{i}\" }}, ");
        }
        text += "]\n";
        for i in 0..THREADS {
            text += &format!("[[lifecycle.thread]]\nname = \"t{i}\"\n");
            text += "ops = [{ op = \"bump\" }, { op = \"bump\" }]\n";
        }
        let scenario = Registry::builtin().parse("many.toml", &text).unwrap();
        let outcome = scenario.run(RunOptions {
            record_schedule: true,
            ..RunOptions::default()
        });
        assert!(outcome.passed(), "{:?}", outcome.findings);
        assert_eq!(outcome.ops, 4 * THREADS as u64);
        assert!(outcome.schedule.iter().any(|&tid| tid >= 64));
    }

    /// Every op list (setup, each repetition, teardown) spawns threads of its own, past the first
    /// word of the thread sets by the end: each list's threads step, exit and are joined. (Debug
    /// builds also check that each list's contexts start where the list before emptied them.)
    #[test]
    fn threads_spawned_by_every_list_of_a_repeated_lifecycle_step() {
        const REPEAT: usize = 40;
        let text = format!(
            r#"name = "lists"
subject = "counter"
[[lifecycle]]
name = "all"
repeat = {REPEAT}
setup = [{{ op = "spawn", thread = "a" }}, {{ op = "join", thread = "a" }}]
ops = [{{ op = "spawn", thread = "a" }}, {{ op = "spawn", thread = "b" }}, {{ op = "bump" }}, {{ op = "join", thread = "b" }}, {{ op = "join", thread = "a" }}]
teardown = [{{ op = "spawn", thread = "b" }}, {{ op = "join", thread = "b" }}]
[[lifecycle.thread]]
name = "a"
ops = [{{ op = "bump" }}, {{ op = "bump" }}]
[[lifecycle.thread]]
name = "b"
ops = [{{ op = "bump" }}]
"#
        );
        let scenario = Registry::builtin().parse("lists.toml", &text).unwrap();
        let outcome = scenario.run(RunOptions::default());
        assert!(outcome.passed(), "{:?}", outcome.findings);
        // Main's ops and then its threads': setup 2 + 2, each repetition 5 + 3, teardown 2 + 1.
        assert_eq!(outcome.ops, (2 + 2) + REPEAT as u64 * (5 + 3) + (2 + 1));
    }

    /// A join finds its thread by name among the list's spawns: the latest spawn of that name,
    /// or nothing when the spawn failed (an injected failure: the join does nothing, and no
    /// thread is left unjoined or waited for).
    #[test]
    fn a_join_waits_for_the_latest_spawn_of_its_name_and_skips_a_failed_one() {
        let text = |spawn_faults: &str| {
            format!(
                r#"name = "joins"
subject = "counter"
[faults]
spawn = {spawn_faults}
[[lifecycle]]
name = "all"
repeat = 3
ops = [{{ op = "spawn", thread = "a" }}, {{ op = "join", thread = "a" }}, {{ op = "spawn", thread = "a" }}, {{ op = "spawn", thread = "b" }}, {{ op = "join", thread = "b" }}, {{ op = "join", thread = "a" }}]
[[lifecycle.thread]]
name = "a"
ops = [{{ op = "bump" }}]
[[lifecycle.thread]]
name = "b"
ops = [{{ op = "bump" }}, {{ op = "bump" }}]
"#
            )
        };
        let run = |spawn_faults| {
            let scenario = Registry::builtin()
                .parse("joins.toml", &text(spawn_faults))
                .unwrap();
            scenario.run(RunOptions::default())
        };
        let spawned = run("0.0");
        assert!(spawned.passed(), "{:?}", spawned.findings);
        // Main's six ops and its three threads' four, each repetition.
        assert_eq!(spawned.ops, 3 * (6 + 4));
        let failed = run("1.0");
        assert!(failed.passed(), "{:?}", failed.findings);
        assert_eq!(failed.ops, 3 * 6, "no thread ran");
    }
}
