//! One fuzz input runs the same code every time, whatever the process ran before it.
//!
//! libFuzzer keeps an input for the code it covers, and `make fuzz-cmin` keeps the fewest inputs
//! that cover what the corpus covers; both take an input's coverage to be a function of the input.
//! It was not: a run left its lists to the next run on its thread, so an input that followed a
//! larger one skipped the allocations and list growths it made when it ran first, and values
//! made on first use (a subject's `info`, a generated scenario's name) were made by whichever
//! input came first. A second `make fuzz-cmin` over a minimised corpus then deleted 37 of its 420
//! files.
//!
//! Coverage instrumentation needs libFuzzer; this test counts heap allocations and frees instead
//! (a global allocator that counts, per thread), which every one of those first-execution paths
//! made: making a value on first use, growing a list that a spare would have spared, and freeing
//! at the start of one input the spares that the input before it left. Each target runs its
//! corpus smallest first, then in the other order: the two runs of each input must allocate and
//! free as many times and give the same result and growth counters. That test is alone in its process when it runs, so that no other
//! test fills a per-process value first: the other test here only starts processes.
//!
//! The same input must also run the same code in another process, where the loader put the
//! binary elsewhere (ASLR): the ledger once picked its hint entries by label address, and so
//! grew its table of labels in some processes and not in others. `make fuzz-cmin` runs its
//! inputs in a fresh process.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use sim::fuzzing::{self, FuzzTarget, GrowthCounters, TARGETS};
use support::rerun_test_in_child;

/// The system allocator, counting the allocations (reallocations included) and the frees made on
/// each thread.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn count(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: an allocation during the thread's teardown finds the counter gone.
    let _ = counter.try_with(|count| count.set(count.get() + 1));
}

fn count_allocation() {
    count(&ALLOCATIONS);
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged; counting touches
// only a thread-local `Cell<u64>`, which needs no allocation and no destructor.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(&FREES);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What one run of an input did that coverage would tell apart: how many allocations and frees
/// it made, its result and the growth counters it marked.
#[derive(Debug, PartialEq)]
struct Execution {
    allocations: u64,
    frees: u64,
    result: Result<(), String>,
    growth: GrowthCounters,
}

fn execute(target: &FuzzTarget, bytes: &[u8]) -> Execution {
    let mut growth = GrowthCounters::default();
    let (allocations_before, frees_before) = (ALLOCATIONS.with(Cell::get), FREES.with(Cell::get));
    let result = target.run_guided(bytes, &[], &mut growth);
    Execution {
        allocations: ALLOCATIONS.with(Cell::get) - allocations_before,
        frees: FREES.with(Cell::get) - frees_before,
        result,
        growth,
    }
}

#[test]
fn an_input_runs_the_same_code_whatever_ran_before_it_in_the_process() {
    // What a libFuzzer binary's init does before its first input.
    fuzzing::warm_up();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for target in TARGETS {
        let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(corpus.join(target.name))
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        // Smallest first, then in the other order: the smallest then runs first of all and last,
        // after the inputs that leave the most behind; every other input runs after others.
        inputs.sort_by_key(|bytes| (bytes.len(), bytes.clone()));
        let forward: Vec<Execution> = inputs.iter().map(|bytes| execute(target, bytes)).collect();
        let mut backward: Vec<Execution> = inputs
            .iter()
            .rev()
            .map(|bytes| execute(target, bytes))
            .collect();
        backward.reverse();
        assert!(
            forward.iter().any(|run| run.allocations > 0),
            "target `{}`: the count sees the runs",
            target.name
        );
        for (index, (first, again)) in forward.iter().zip(&backward).enumerate() {
            let context = format!(
                "target `{}`: corpus input {} of {} (smallest first), run in two orders",
                target.name,
                index + 1,
                inputs.len()
            );
            assert_eq!(
                first.allocations, again.allocations,
                "{context}: allocations"
            );
            assert_eq!(first.frees, again.frees, "{context}: frees");
            assert_eq!(first, again, "{context}");
        }
    }
}

/// Set in the processes `every_process_runs_an_input_through_the_same_code` starts.
const CHILD_ENV: &str = "SIM_FUZZ_STABILITY_CHILD";

/// Every corpus input of the subject targets that keep a ledger of labels, with what it did:
/// one line per input.
fn executions_of_every_input() -> String {
    fuzzing::warm_up();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut lines = String::new();
    for target in TARGETS.iter().filter(|target| target.subject().is_some()) {
        let mut paths: Vec<_> = std::fs::read_dir(corpus.join(target.name))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let execution = execute(target, &std::fs::read(&path).unwrap());
            lines.push_str(&format!(
                "{} {}: {} allocations, {} frees, passed {}\n",
                target.name,
                path.file_name().unwrap().to_string_lossy(),
                execution.allocations,
                execution.frees,
                execution.result.is_ok()
            ));
        }
    }
    lines
}

#[test]
fn every_process_runs_an_input_through_the_same_code() {
    if std::env::var_os(CHILD_ENV).is_some() {
        print!("{}", executions_of_every_input());
        return;
    }
    // This test binary again, running only this test: each process is loaded at another
    // address (where the system randomises them, as Linux does by default).
    let run_in_new_process = || {
        let (code, stdout, stderr) = rerun_test_in_child(
            "every_process_runs_an_input_through_the_same_code",
            CHILD_ENV,
            "1",
        );
        assert_eq!(code, 0, "{stderr}");
        stdout
            .lines()
            .filter(|line| line.contains(" allocations, "))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    let first = run_in_new_process();
    assert!(first.lines().count() > 100, "{first}");
    // Two processes agree by chance often enough (a quarter to a half of the time, for the
    // ledger's old hint by address); eight rarely do.
    for _ in 0..7 {
        let other = run_in_new_process();
        let differing: Vec<(&str, &str)> = first
            .lines()
            .zip(other.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert!(
            differing.is_empty(),
            "inputs that ran other code in another process: {differing:#?}"
        );
    }
}
