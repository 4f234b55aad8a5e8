//! What every libFuzzer binary in `fuzz_targets/` shares: its start-up (read `SIM_FUZZ_DEFECTS`
//! once, check the names, install the panic hook) and the call into `sim::fuzzing` per input.
//!
//! This crate is the edge where the environment is read; the simulation in `sim` never reads it.

use std::sync::OnceLock;

use sim::fuzzing::{self, FuzzTarget, GrowthCounters};

struct Harness {
    target: &'static FuzzTarget,
    defects: Vec<String>,
    /// The end of every crash report: how to run the artifact again with this binary.
    rerun: String,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// libFuzzer's init for the target `name`: reads the defects to switch on from `SIM_FUZZ_DEFECTS`
/// (comma-separated, default none) and exits with a message if a name is wrong.
pub fn init(name: &str) {
    let target = fuzzing::target(name)
        .unwrap_or_else(|| fail(&format!("no fuzz target `{name}` in sim::fuzzing::TARGETS")));
    let defects = fuzzing::parse_defects(&std::env::var(fuzzing::DEFECTS_ENV).unwrap_or_default());
    if let Err(message) = target.check_defects(&defects) {
        fail(&format!("{} (from {})", message, fuzzing::DEFECTS_ENV));
    }
    if !defects.is_empty() {
        eprintln!(
            "sim fuzz target `{name}`: defects on: {}",
            defects.join(",")
        );
    }
    fuzzing::install_panic_hook();
    // Before the first input, so that it runs the same code as every later input (see warm_up).
    fuzzing::warm_up();
    // libfuzzer-sys reads `RUST_LIBFUZZER_DEBUG_PATH` into a lazily made static on the first
    // input, in code built with coverage: ask for it now, so that no input is charged with it.
    let _ = libfuzzer_sys::rust_libfuzzer_debug_path();
    let binary = std::env::current_exe().map_or_else(
        |_| format!("fuzz/target/<triple>/release/{name}"),
        |path| path.display().to_string(),
    );
    let rerun = fuzzing::rerun_note(&binary, &defects);
    let _ = HARNESS.set(Harness {
        target,
        defects,
        rerun,
    });
}

/// The growth counters (`sim::fuzzing::GrowthCounters`) that libFuzzer reads as extra coverage.
/// The linker gathers this section between `__start___libfuzzer_extra_counters` and
/// `__stop___libfuzzer_extra_counters`; libFuzzer clears it before each input and reads it after.
#[used]
#[unsafe(link_section = "__libfuzzer_extra_counters")]
static mut GROWTH: GrowthCounters = GrowthCounters::ZERO;

/// One input: a finding panics with its report, which libFuzzer records as a crash.
pub fn run(bytes: &[u8]) {
    let harness = HARNESS.get().expect("init runs before the first input");
    // SAFETY: libFuzzer runs one input at a time, on this thread, and reads or clears the section
    // only between inputs; nothing else in this process refers to it.
    let growth = unsafe { (&raw mut GROWTH).as_mut() }.expect("a static is never null");
    fuzzing::fuzz(
        harness.target,
        bytes,
        &harness.defects,
        growth,
        &harness.rerun,
    );
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}
