//! Memory that parsing a scenario file takes, counted by this binary's allocator: a 4 MiB file
//! (the most `sim` reads) once took ~180× its size, ~700 MB, enough to end a sweep on a small CI
//! machine without a report. Counted, not timed: the peak of bytes allocated at once while one
//! file is parsed, against the file's size; and all the bytes allocated, a measure of the work,
//! against those of the subject's parser alone.
//!
//! In its own test binary because the allocator is the whole process's, and alone in it so that
//! no other test allocates during a measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sim::registry::{DynScenario, Registry};
use sim::scenario::parse::Diagnostic;

/// The system allocator, counting the bytes held and the most held at once.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            // Counted as the allocator may do it: the new block, then the old one freed.
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
            let held = HELD.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(held, Ordering::Relaxed);
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What parsing one file took: the most bytes held at once (the parsed scenario included), over
/// what was held before, and all the bytes allocated.
struct Cost {
    peak: usize,
    allocated: usize,
}

/// The cost of `parse`, which must parse a large file.
fn cost_of(parse: impl FnOnce() -> Result<Box<dyn DynScenario>, Diagnostic>) -> Cost {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    let parsed = parse();
    let cost = Cost {
        peak: PEAK.load(Ordering::Relaxed) - before,
        allocated: ALLOCATED.load(Ordering::Relaxed) - allocated_before,
    };
    let scenario = parsed.unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    assert!(scenario.meta().op_count > 1000);
    cost
}

const SIZE: usize = 1 << 20;

/// `ops = [...]` with `ops` repeated until the file is about `SIZE` bytes, `separator` between.
fn one_lifecycle(subject: &str, ops: &[&str], separator: &str) -> String {
    let mut source =
        format!("name = \"big\"\nsubject = \"{subject}\"\n\n[[lifecycle]]\nname = \"l\"\nops = [");
    while source.len() < SIZE {
        source.push_str(&ops.join(separator));
        source.push_str(separator);
    }
    source.push_str("]\n");
    source
}

fn many_lifecycles() -> String {
    let mut source = String::from("name = \"big\"\nsubject = \"counter\"\n");
    let mut index = 0;
    while source.len() < SIZE {
        source.push_str(&format!(
            "\n[[lifecycle]]\nname = \"l{index}\"\nops = [{{ op = \"create\", slot = 1 }}, {{ op = \"bump\" }}, {{ op = \"evict\", slot = 1 }}]\n"
        ));
        index += 1;
    }
    source
}

/// At most this many times the file's size, measured at about half of it for every shape below
/// (toml's own tree of the file, which it builds before any field is read, is most of it): the
/// parse that held every op as a `toml::Value` and read the file four times took 110× to 190×.
const PEAK_PER_FILE_BYTE_MAX: usize = 60;

/// The bytes the registry's parse may allocate per 100 its subject's parser alone does, measured
/// at 100: the registry hands the parser the reading that found the file's `subject`. When it
/// read the file for its subject and the parser read it again, it allocated 157 to 163.
const REGISTRY_ALLOCATED_PER_100_MAX: usize = 125;

#[test]
fn parsing_a_large_file_takes_a_bounded_multiple_of_its_size_and_reads_it_once() {
    let counter = [
        "{ op = \"create\", slot = 1 }",
        "{ op = \"bump\" }",
        "{ op = \"evict\", slot = 1 }",
    ];
    let wasi = [
        "{ op = \"instantiate\", instance = 0 }",
        "{ op = \"fd-write\", instance = 0, fd = 1, bytes = 64 }",
        "{ op = \"destroy\", instance = 0 }",
    ];
    let files = [
        (
            "bump ops on one line",
            "counter",
            one_lifecycle("counter", &["{ op = \"bump\" }"], ","),
        ),
        (
            "counter ops, one a line",
            "counter",
            one_lifecycle("counter", &counter, ",\n  "),
        ),
        (
            "wasi-runtime ops on one line",
            "wasi-runtime",
            one_lifecycle("wasi-runtime", &wasi, ", "),
        ),
        ("many lifecycles", "counter", many_lifecycles()),
    ];
    let registry = Registry::builtin();
    let mut report = String::new();
    let (mut worst_peak, mut worst_allocated) = (0, 0);
    for (shape, subject, source) in &files {
        let cost = cost_of(|| registry.parse("big.toml", source));
        let subject = registry.get(subject).unwrap();
        let parser_alone = cost_of(|| subject.parse("big.toml", source));
        let peak_per_byte = cost.peak / source.len();
        let allocated_per_100 = cost.allocated * 100 / parser_alone.allocated;
        report.push_str(&format!(
            "{shape}: {} bytes, peak {} bytes ({peak_per_byte}×), allocated {} bytes, {} by the \
             subject's parser alone ({allocated_per_100} per 100)\n",
            source.len(),
            cost.peak,
            cost.allocated,
            parser_alone.allocated,
        ));
        worst_peak = worst_peak.max(peak_per_byte);
        worst_allocated = worst_allocated.max(allocated_per_100);
    }
    eprint!("{report}");
    assert!(
        worst_peak <= PEAK_PER_FILE_BYTE_MAX,
        "parsing takes more than {PEAK_PER_FILE_BYTE_MAX}× the file's size:\n{report}"
    );
    assert!(
        worst_allocated <= REGISTRY_ALLOCATED_PER_100_MAX,
        "the registry's parse allocates more than {REGISTRY_ALLOCATED_PER_100_MAX} bytes per 100 \
         its subject's parser alone does: it reads the file more than once\n{report}"
    );
}
