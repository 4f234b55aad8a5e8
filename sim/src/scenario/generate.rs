//! Scenarios generated whole from a seed or from fuzz bytes, through `arbitrary`.
//!
//! The same decoder serves `sim sweep --subject` (bytes drawn from the seed's generator stream)
//! and the cargo-fuzz targets (bytes from libFuzzer), so a fuzz finding and a sweep finding are
//! the same kind of scenario. Op lists are built with `arbitrary_loop`, because a plain `Vec`
//! decoded from random bytes averages about one element. Generated ops that would not validate
//! (a `free` of a name no earlier op defined) are dropped, and so are ops TOML cannot hold (a
//! `u64` field past `i64::MAX`, which `arbitrary` draws for a field a subject does not bound), so
//! every generated scenario is one a person could have written, and printing it gives a file that
//! parses to the same scenario.
//! Each generated lifecycle ends with the subject's `closing_ops` (a WASI host destroys the
//! instances it created), so that a leak the check reports is the subject's, not an unbalanced
//! random sequence's. The generator knows nothing of any defect.

use std::borrow::Cow;
use std::sync::RwLock;

use arbitrary::{Arbitrary, Unstructured};

use super::{FaultSpec, Lifecycle, Scenario, ScenarioOp, ThreadSpec, default_warmup};
use crate::faults::FaultKind;
use crate::os::Limits;
use crate::rng::{Rng, Stream};
use crate::sched::StrategyChoice;
use crate::subject::{MadeOnce, Names, Subject, info_of, made_once};

/// Bytes of generator input drawn per seed: ample for the largest shape below.
const SEED_BYTES: usize = 4096;
const LIFECYCLES_MAX: u32 = 3;
const MAIN_OPS_MAX: u32 = 24;
const THREAD_OPS_MAX: u32 = 10;
const THREADS_MAX: u32 = 2;
/// Lifecycle and thread names by position, spelt out so that naming them per fuzz input borrows
/// them (lifecycles) or copies them (threads) rather than `format!`ting them. They count from 1,
/// as a report's text does: `lifecycle-2` is the one a finding places in "lifecycle 2".
const LIFECYCLE_NAMES: [&str; LIFECYCLES_MAX as usize] =
    ["lifecycle-1", "lifecycle-2", "lifecycle-3"];
const THREAD_NAMES: [&str; THREADS_MAX as usize] = ["t1", "t2"];
/// Repetition counts a generated lifecycle draws from: mostly short, sometimes long enough for the
/// growth detector (warm-up 16, then 8 rises past a cache bound of 32 per key) to see a trend.
const REPEAT_CHOICES: [u32; 8] = [1, 1, 2, 2, 3, 4, 8, 96];

/// How generation is steered for one sweep or fuzz target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerateOptions {
    pub defects: Vec<String>,
    /// Inject faults (swarm mode) in about half the scenarios.
    pub faults: bool,
}

/// A scenario for subject `S` made from `seed` alone.
pub fn from_seed<S: Subject>(seed: u64, options: &GenerateOptions) -> Scenario<S::Op> {
    let mut rng = Rng::new(seed, Stream::Generator);
    let mut bytes = vec![0u8; SEED_BYTES];
    rng.fill_bytes(&mut bytes);
    let mut input = Unstructured::new(&bytes);
    let mut scenario = decode::<S>(&mut input, options);
    scenario.seed = seed;
    scenario.name = Cow::Owned(format!(
        "{}-generated-{}",
        info_of::<S>().name,
        crate::seed::format_seed(seed)
    ));
    scenario
}

/// A scenario for subject `S` decoded from fuzz bytes. Never fails: short input gives a short
/// scenario.
pub fn from_bytes<S: Subject>(bytes: &[u8], options: &GenerateOptions) -> Scenario<S::Op> {
    let mut input = Unstructured::new(bytes);
    let seed = u64::arbitrary(&mut input).unwrap_or(0);
    let mut scenario = decode::<S>(&mut input, options);
    scenario.seed = seed;
    scenario
}

fn decode<S: Subject>(input: &mut Unstructured, options: &GenerateOptions) -> Scenario<S::Op> {
    let info = info_of::<S>();
    let mut names = Names::default();
    let mut lifecycles = Vec::new();
    let count = input.int_in_range(1..=LIFECYCLES_MAX).unwrap_or(1);
    for _ in 0..count {
        lifecycles.push(decode_lifecycle::<S>(input, &mut names));
    }
    // Process exit is part of the vocabulary of every subject; end with it about half the time.
    if input.arbitrary::<bool>().unwrap_or(false)
        && let Some(last) = lifecycles.last_mut()
    {
        last.teardown.push(ScenarioOp::Exit);
    }
    let mut faults = FaultSpec::default();
    if options.faults && input.arbitrary::<bool>().unwrap_or(false) {
        faults.swarm = true;
        faults.probabilities.insert(FaultKind::Alloc, 0.05);
    }
    Scenario {
        name: Cow::Borrowed(generated_name(info.name)),
        description: None,
        subject: Cow::Borrowed(info.name),
        defects: options.defects.clone(),
        seed: 0,
        limits: Limits {
            steps_max: 200_000,
            ..Limits::default()
        },
        platform: Default::default(),
        faults,
        schedule: StrategyChoice::Random,
        config: toml::Table::new(),
        caches: Default::default(),
        lifecycles: named_by_position(
            lifecycles
                .into_iter()
                .filter(|l: &Lifecycle<S::Op>| l.op_count() > 0)
                .collect::<Vec<_>>(),
        ),
        expect: None,
    }
    .ensure_nonempty()
}

/// `<subject>-generated`, the name of every scenario decoded from fuzz bytes for `subject`: made
/// once per subject and kept for the life of the process, so that naming a fuzz input's scenario,
/// and its run's header, allocates nothing. There are a handful of subjects: a short list.
fn generated_name(subject: &'static str) -> &'static str {
    static NAMES: MadeOnce<&'static str, str> = RwLock::new(Vec::new());
    made_once(&NAMES, subject, || {
        Box::leak([subject, "-generated"].concat().into_boxed_str())
    })
}

/// Names each lifecycle by its position once the empty ones are dropped, so that a name never
/// says another lifecycle than the report's count does.
fn named_by_position<O>(mut lifecycles: Vec<Lifecycle<O>>) -> Vec<Lifecycle<O>> {
    for (lifecycle, name) in lifecycles.iter_mut().zip(LIFECYCLE_NAMES) {
        lifecycle.name = Cow::Borrowed(name);
    }
    lifecycles
}

impl<O> Scenario<O> {
    fn ensure_nonempty(mut self) -> Self {
        if self.lifecycles.is_empty() {
            self.lifecycles.push(Lifecycle {
                name: Cow::Borrowed("empty"),
                repeat: 1,
                warmup: 0,
                setup: vec![],
                ops: vec![ScenarioOp::Sleep { ticks: 1 }],
                teardown: vec![],
                threads: vec![],
            });
        }
        self
    }
}

/// Whether a generated `op` is kept: it validates against the names defined before it (and
/// defines its own), and it prints. TOML's integers are `i64`, so an op with a `u64` field past
/// `i64::MAX`, which `arbitrary` draws about half the time for a field that does not bound its
/// values, has no spelling in a scenario file; kept, it would make the scenario unprintable.
/// `fits_toml::fits` answers without building the TOML value, since every drawn op is asked.
fn keeps<S: Subject>(op: &S::Op, names: &mut Names) -> bool {
    let checkpoint = names.checkpoint();
    let valid = crate::subject::calling_subject_code::<S, _>(
        "validate_op",
        "checking a generated op",
        || S::validate_op(op, names),
    );
    if valid.is_ok() && super::fits_toml::fits(op) {
        return true;
    }
    names.rollback(checkpoint);
    false
}

fn subject_ops<S: Subject>(
    input: &mut Unstructured,
    max: u32,
    names: &mut Names,
) -> Vec<ScenarioOp<S::Op>> {
    let mut ops = Vec::new();
    let _ = input.arbitrary_loop(Some(0), Some(max), |input| {
        let op = crate::subject::calling_subject_code::<S, _>(
            "Arbitrary",
            "decoding a generated op",
            || S::Op::arbitrary(input),
        )?;
        if keeps::<S>(&op, names) {
            ops.push(ScenarioOp::Subject(op));
        }
        Ok(std::ops::ControlFlow::Continue(()))
    });
    ops
}

/// A lifecycle, named later by its position (`named_by_position`).
fn decode_lifecycle<S: Subject>(input: &mut Unstructured, names: &mut Names) -> Lifecycle<S::Op> {
    let repeat = *input.choose(&REPEAT_CHOICES).unwrap_or(&1);
    let thread_count = input.int_in_range(0..=THREADS_MAX).unwrap_or(0);
    let mut ops = Vec::new();
    let mut threads = Vec::new();
    // Main ops come in chunks with a spawn after each; a thread's ops are validated against the
    // names defined before its spawn (the order `parse` checks in), and every thread is joined at
    // the end of the list, followed by the subject's closing ops.
    for thread_index in 0..thread_count {
        ops.extend(subject_ops::<S>(
            input,
            MAIN_OPS_MAX / (thread_count + 1),
            names,
        ));
        let name = THREAD_NAMES[thread_index as usize].to_string();
        ops.push(ScenarioOp::Spawn {
            thread: name.clone(),
        });
        threads.push(ThreadSpec {
            name,
            ops: subject_ops::<S>(input, THREAD_OPS_MAX, names),
        });
    }
    ops.extend(subject_ops::<S>(
        input,
        MAIN_OPS_MAX / (thread_count + 1),
        names,
    ));
    for thread in &threads {
        ops.push(ScenarioOp::Join {
            thread: thread.name.clone(),
        });
    }
    // The subject's closing ops (destroy what the lifecycle may have created), validated like
    // every other generated op so that the printed file parses.
    let closing = crate::subject::calling_subject_code::<S, _>(
        "closing_ops",
        "ending a generated lifecycle",
        || S::closing_ops(names),
    );
    for op in closing {
        if keeps::<S>(&op, names) {
            ops.push(ScenarioOp::Subject(op));
        }
    }
    Lifecycle {
        name: Cow::Borrowed(""),
        repeat,
        warmup: default_warmup(repeat),
        setup: Vec::new(),
        ops,
        teardown: Vec::new(),
        threads,
    }
}
