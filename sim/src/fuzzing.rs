//! Fuzzing: the body of every cargo-fuzz target, usable without libFuzzer.
//!
//! A fuzz target is a thin decoder (STYLE.md item 8). Its bytes become a scenario through the same
//! `arbitrary` decoder that `sim sweep --subject` uses (`DynSubject::from_bytes`), over the same op
//! types that scenario files use, and the scenario runs with every generic check on: leak, growth,
//! fault, deadlock, invariant, panic and budget. Defects are off unless the caller names them; the
//! libFuzzer binaries in `fuzz/` read them once, at start, from `SIM_FUZZ_DEFECTS` (this module
//! never reads the environment: the simulation stays a function of its bytes).
//!
//! Every target is listed once, in `TARGETS`: one per subject, `scenario-parser` (arbitrary bytes
//! as a scenario file: the parser must never panic, and what it accepts must print back to a file
//! that parses to the same text, and a file read op by op from its sketch must read as it does
//! whole), and `canary` (the teaching subject with its defect on, which must
//! fail within seconds, proving that the harness can fail). The smoke run (`make fuzz-smoke`) and
//! the tests iterate this list.
//!
//! A finding is returned as `Err(report)`: the rendered findings, the command that imports the
//! crash artifact as a regression (`sim import-crash TARGET FILE`), and the scenario the bytes
//! decoded to, printed as TOML so that it can be read and replayed without the fuzzer. A subject
//! of one's own has no target here: `run_subject_bytes` is the body of a target of its user's, and
//! the user's binary (`cli::main_with`) imports its crashes by the subject's name.
//!
//! What this module does not do: run the determinism check (two runs per input would halve the
//! fuzzer's speed; the bolero properties in `sim/tests/properties.rs` check it), or isolate
//! host-backed subjects (`dlmalloc`) in a child process: a fork per input would cost far more
//! than the run, and under libFuzzer a crash of real code is already a crash ("deadly signal",
//! with its artifact). `sim import-crash` replays such an artifact isolated, where the crash
//! becomes a `fault` finding with its report.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;

use crate::ledger::GrowthProgress;
use crate::registry::{DynScenario, DynSubject, Registry};
use crate::report;
use crate::rng::{Rng, Stream};
use crate::runner::{Outcome, RunOptions};
use crate::scenario::generate::GenerateOptions;
use crate::subject::{SimulationGuard, Subject, info_of};

/// Replays a directory of regression files (what `sim import-crash` writes) with a registry: the
/// call a crate of its own makes from its `cargo test`, as `sim/tests/regressions.rs` does for
/// `corpus/regressions/`. Here beside `run_subject_bytes`, where a fuzzing user looks for it.
pub use crate::sweep::promote::replay_regressions;

/// The environment variable the libFuzzer binaries read once, at start: comma-separated defect
/// names to switch on (`SIM_FUZZ_DEFECTS=prestats-lock-leak`).
pub const DEFECTS_ENV: &str = "SIM_FUZZ_DEFECTS";

/// What a fuzz target does with its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// Decode the bytes into a scenario for this subject and run it.
    Subject(&'static str),
    /// Parse the bytes as a scenario file; print and re-parse what is accepted.
    ScenarioParser,
    /// A subject target with a defect always on: it must fail.
    Canary {
        subject: &'static str,
        defect: &'static str,
    },
}

/// One cargo-fuzz target: `fuzz/fuzz_targets/<name>.rs`, corpus in `corpus/<name>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuzzTarget {
    pub name: &'static str,
    pub kind: TargetKind,
    pub summary: &'static str,
}

/// Every fuzz target, in the order the smoke run takes them.
pub const TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "interpreter",
        kind: TargetKind::Subject("interpreter"),
        summary: "Miri-like interpreter: fn-pointer casts, allocations, threads, blocking fds",
    },
    FuzzTarget {
        name: "allocator",
        kind: TargetKind::Subject("allocator"),
        summary: "mimalloc-like allocator: segments, thread heaps, abandon, exit-time collect",
    },
    FuzzTarget {
        name: "wasi-runtime",
        kind: TargetKind::Subject("wasi-runtime"),
        summary: "WAMR-like runtime: instantiate/destroy with fd table, prestats and locks",
    },
    FuzzTarget {
        name: "reloadable-lib",
        kind: TargetKind::Subject("reloadable-lib"),
        summary: "snmalloc-like allocator in a loadable module with a pagemap reservation",
    },
    FuzzTarget {
        name: "dlmalloc",
        kind: TargetKind::Subject("dlmalloc"),
        summary: "the real dlmalloc crate on simulated pages",
    },
    FuzzTarget {
        name: "scenario-parser",
        kind: TargetKind::ScenarioParser,
        summary: "arbitrary bytes as a scenario file: never panics, prints back what it accepts",
    },
    FuzzTarget {
        name: "canary",
        kind: TargetKind::Canary {
            subject: "counter",
            defect: "leak-on-evict",
        },
        summary: "the teaching subject with `leak-on-evict` on: must fail within seconds",
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static FuzzTarget> {
    TARGETS.iter().find(|t| t.name == name)
}

impl FuzzTarget {
    /// The subject this target runs, if it runs one.
    pub fn subject(&self) -> Option<&'static str> {
        match self.kind {
            TargetKind::Subject(subject) | TargetKind::Canary { subject, .. } => Some(subject),
            TargetKind::ScenarioParser => None,
        }
    }

    /// The defects this target runs with: the canary's own, plus `extra`.
    pub fn defects(&self, extra: &[String]) -> Vec<String> {
        let mut defects = Vec::new();
        if let TargetKind::Canary { defect, .. } = self.kind {
            defects.push(defect.to_string());
        }
        for defect in extra {
            if !defects.contains(defect) {
                defects.push(defect.clone());
            }
        }
        defects
    }

    /// True for a target that must fail (the canary).
    pub fn must_fail(&self) -> bool {
        matches!(self.kind, TargetKind::Canary { .. })
    }

    /// Runs one input; `defects` are switched on in addition to the target's own.
    pub fn run(&self, bytes: &[u8], defects: &[String]) -> Result<(), String> {
        self.run_guided(bytes, defects, &mut GrowthCounters::default())
    }

    /// `run`, also marking in `growth` how far the run went toward a growth finding (see
    /// `GrowthCounters`); the counters are only ever set, so the caller clears them.
    pub fn run_guided(
        &self,
        bytes: &[u8],
        defects: &[String],
        growth: &mut GrowthCounters,
    ) -> Result<(), String> {
        let result = match self.kind {
            TargetKind::Subject(subject) | TargetKind::Canary { subject, .. } => {
                run_target_as(self.name, subject, bytes, &self.defects(defects), growth)
            }
            TargetKind::ScenarioParser => check_scenario_text(bytes),
        };
        // Here, not before the next input: freeing the spares is code too, and it belongs to the
        // input that left them.
        reset_thread_spares();
        result
    }

    /// Checks that this build has the target's subject and that it declares every one of
    /// `defects`: a clear error at start instead of a fuzzer that crashes on its first input or
    /// silently runs with a misspelt defect off.
    pub fn check_defects(&self, defects: &[String]) -> Result<(), String> {
        if let Some(subject) = self.subject() {
            subject_entry(subject)?;
        }
        if defects.is_empty() {
            return Ok(());
        }
        let Some(subject) = self.subject() else {
            return Err(format!(
                "fuzz target `{}` runs no subject; defects do not apply to it",
                self.name
            ));
        };
        check_subject_defects(subject_entry(subject)?, defects)
    }
}

/// Checks that `subject` declares every one of `defects`: for a fuzz target's subject, and for a
/// subject of one's own that `import-crash` takes by its name.
pub fn check_subject_defects(subject: &dyn DynSubject, defects: &[String]) -> Result<(), String> {
    let info = subject.info();
    let known = info.defect_names();
    for defect in defects {
        if !known.contains(&defect.as_str()) {
            return Err(format!(
                "unknown defect `{defect}` for subject `{}`; known: {}",
                info.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    Ok(())
}

/// Splits a `SIM_FUZZ_DEFECTS` value (`a,b`, spaces allowed) into defect names.
pub fn parse_defects(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect()
}

/// The generator options every fuzz target and `sim import-crash` use, so that one artifact
/// decodes to one scenario in both. Fault injection is on: error paths are where init/destroy
/// asymmetries hide.
pub fn generate_options(defects: &[String]) -> GenerateOptions {
    GenerateOptions {
        defects: defects.to_vec(),
        faults: true,
    }
}

/// The built-in registry and its subject names, built once: a lookup by name must not rebuild
/// every subject's `info()` on each of the fuzzer's hundreds of thousands of inputs per second.
struct Subjects {
    registry: Registry,
    names: Vec<&'static str>,
}

fn subjects() -> &'static Subjects {
    static SUBJECTS: OnceLock<Subjects> = OnceLock::new();
    SUBJECTS.get_or_init(|| {
        let registry = Registry::builtin();
        let names = registry.names();
        Subjects { registry, names }
    })
}

/// The registry the fuzz targets use (the built-in one).
pub fn registry() -> &'static Registry {
    &subjects().registry
}

fn subject_entry(subject: &str) -> Result<&'static dyn DynSubject, String> {
    let subjects = subjects();
    match subjects.names.iter().position(|&name| name == subject) {
        Some(index) => Ok(subjects
            .registry
            .subjects()
            .nth(index)
            .expect("names and subjects are listed in the same order")),
        None => Err(format!(
            "unknown subject `{subject}`; known: {}",
            subjects.names.join(", ")
        )),
    }
}

/// Whether `subject` is the built-in subject of its name, the one a built-in fuzz target runs, and
/// not a subject of one's own registered under that name (`Registry::with`).
pub fn is_builtin_subject(subject: &dyn DynSubject) -> bool {
    let own_type = subject.subject_type();
    own_type.is_some()
        && subject_entry(subject.info().name)
            .is_ok_and(|builtin| builtin.subject_type() == own_type)
}

/// Makes the code an input runs a function of the input alone, whatever ran before it in this
/// process: called once, before the first input (a libFuzzer binary's init), on the thread that
/// runs the inputs.
///
/// libFuzzer keeps an input when it covers code that no input before it did, and `make fuzz-cmin`
/// keeps the fewest inputs that cover what the corpus covers. Both assume that one input covers
/// the same code every time it runs. Values made on first use and kept for the process (the
/// registry, each subject's `info`, each generated scenario's name, std's cache of the CPU's
/// features) broke that: the first input that asked for one took the branch that makes it. So
/// did the spare lists a run leaves to the next one on its thread, which `run_guided` frees at
/// the end of every input (`reset_thread_spares`). A second `cmin` over a minimised corpus then
/// removed files that the first had kept for code they covered only in one position.
///
/// This makes every such value now, by decoding and running the empty input of every subject
/// and by drawing a random number. (The libFuzzer binaries also make libfuzzer-sys's own such
/// value in their init: `fuzz/src/lib.rs`.)
pub fn warm_up() {
    for entry in registry().subjects() {
        let scenario = entry.from_bytes(&[], &generate_options(&[]));
        let _ = in_simulation_printing_escapes(|| {
            scenario.run_in_process(RunOptions {
                defects: Some(Vec::new()),
                record_schedule: false,
                ..RunOptions::default()
            })
        });
    }
    // The first ChaCha block made in the process asks the CPU which vector instructions it has
    // (ppv-lite86's dispatch, through std's cache of CPU features), and the empty inputs above
    // draw no random number: make one here.
    Rng::new(0, Stream::Scheduler).next_u64();
    reset_thread_spares();
}

/// Puts what runs on this thread keep for the next run back into one fixed state: the OS's
/// lists, the ledger's and the name checker's buffers, and the allocator's and the WASI runtime's
/// spares freed, and the pool of cleared page frames full (`os::reset_thread_spares`). Every run
/// then starts from that state and runs the same code. A run that found spares did the same
/// things (the trace does not change) through other code: it skipped allocations and took the
/// branch that reuses a list, and which of the two it took depended on what ran before it.
/// `run_guided` calls this after every input; it costs the allocations the spares saved: 2.6% of
/// an allocator corpus input's instructions, 2.9% of a WASI runtime's (README, Fuzzing).
pub fn reset_thread_spares() {
    crate::os::reset_thread_spares();
    crate::ledger::forget_thread_spares();
    crate::subject::forget_thread_spares();
    crate::subjects::allocator::forget_thread_spares();
    crate::subjects::wasi_runtime::forget_thread_spares();
}

/// The body of a subject target with every defect off.
pub fn run_target(subject: &str, bytes: &[u8]) -> Result<(), String> {
    run_target_with(subject, bytes, &[])
}

/// The body of a subject target: decode `bytes` into a scenario for `subject`, run it with
/// `defects` on, and return the report of any finding.
pub fn run_target_with(subject: &str, bytes: &[u8], defects: &[String]) -> Result<(), String> {
    let target_name = target(subject).map_or(subject, |t| t.name);
    run_target_as(
        target_name,
        subject,
        bytes,
        defects,
        &mut GrowthCounters::default(),
    )
}

/// Kept here too, where panic hooks of one's own found it before it moved to `subject.rs`.
pub use crate::subject::in_simulation;

/// Installs a panic hook that stays silent for panics inside a simulation (the runner catches them
/// and reports a `panic` finding with the call that caused it) or a subject's constructor the
/// parser runs (a diagnostic at `[limits]`), and defers to the previous hook for every other
/// panic. libFuzzer's hook aborts on any panic, caught or not, which would turn a subject panic
/// into a bare crash without the report; the fuzz targets call this in their init. A panic of
/// the runner's or the OS's own in a run is silent here too (the hook cannot tell it from the
/// subject's), and printed when it escapes the run (`in_simulation_printing_escapes`).
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // For the `panic` finding's `panicked at` line, which the silence below would lose.
        crate::subject::note_panic_location(info);
        if !in_simulation() {
            previous(info);
        }
    }));
}

fn run_target_as(
    target_name: &str,
    subject: &str,
    bytes: &[u8],
    defects: &[String],
    growth: &mut GrowthCounters,
) -> Result<(), String> {
    let entry = subject_entry(subject)?;
    let (scenario, outcome) = run_input(entry, bytes, defects, Isolation::InProcess);
    growth.mark(&outcome.growth_progress);
    if outcome.passed() {
        return Ok(());
    }
    let import = import_command(target_name, defects);
    let keep = format!(
        "note: keep it as a regression with `{import}`, ARTIFACT being the file libFuzzer names \
         below (`Test unit written to …`): it shrinks the run and writes it into \
         corpus/regressions/, where `sim replay` replays it\n"
    );
    Err(failing_input_report(
        &format!("sim fuzz target `{target_name}`"),
        subject,
        defects,
        (scenario.as_ref(), &outcome),
        &keep,
        "`sim replay` it",
    ))
}

/// Runs `run`, a run of the runner, marked as a simulation (`SimulationGuard`), so that the panic
/// hook (`install_panic_hook`) keeps quiet about the subject's panics, which the runner turns into
/// findings. A panic that escapes the run is therefore not the subject's but sim's own bug (the
/// runner's or the OS's), which the hook kept quiet about too: printed here, with where it was
/// raised (as the CLI prints its internal errors), and unwound on. Under libFuzzer the target's
/// wrapper then aborts, and the message is what says why. Deciding in the hook instead would need
/// a mark around every call into the subject, two thread-local writes per step, on the hottest
/// path there is (tried once, with the README's callgrind command for the scheduler benchmark:
/// about 1.4% more instructions per decision).
fn in_simulation_printing_escapes<T>(run: impl FnOnce() -> T) -> T {
    in_simulation_reporting_escapes(run, |text| eprintln!("{text}"))
}

/// `in_simulation_printing_escapes`, handing the text of a panic that escapes the run to
/// `report`.
fn in_simulation_reporting_escapes<T>(run: impl FnOnce() -> T, report: impl FnOnce(&str)) -> T {
    let guard = SimulationGuard::enter();
    let ran = catch_unwind(AssertUnwindSafe(run));
    drop(guard);
    ran.unwrap_or_else(|payload| {
        report(&crate::subject::internal_error_report(
            &*payload,
            " in a run",
            "",
        ));
        resume_unwind(payload)
    })
}

/// Whether an input's run goes in a child process for a host-backed subject (`runner::run`), or
/// stays in this one (`run_in_process`).
enum Isolation {
    AsTheSubjectNeeds,
    InProcess,
}

/// Decodes `bytes` into a scenario for `entry` as every fuzz target does and runs it with
/// `defects` on: the scenario and its outcome.
fn run_input(
    entry: &dyn DynSubject,
    bytes: &[u8],
    defects: &[String],
    isolation: Isolation,
) -> (Box<dyn DynScenario>, Outcome) {
    let scenario = entry.from_bytes(bytes, &generate_options(defects));
    let options = RunOptions {
        defects: Some(defects.to_vec()),
        record_schedule: false,
        ..RunOptions::default()
    };
    let outcome = in_simulation_printing_escapes(|| match isolation {
        Isolation::AsTheSubjectNeeds => scenario.run(options),
        Isolation::InProcess => scenario.run_in_process(options),
    });
    (scenario, outcome)
}

/// The report of a failing input: what ran, each finding as `sim run` prints it, `keep_note` (how
/// to keep the input as a regression), and the scenario the input decoded to, pinned, to save and
/// replay (`replay_it` says how).
fn failing_input_report(
    what: &str,
    subject: &str,
    defects: &[String],
    (scenario, outcome): (&dyn DynScenario, &Outcome),
    keep_note: &str,
    replay_it: &str,
) -> String {
    let mut text = format!(
        "{what}: {} finding(s) in subject `{subject}` (defects: {})\n",
        outcome.findings.len(),
        if defects.is_empty() {
            "none".to_string()
        } else {
            defects.join(",")
        }
    );
    for finding in &outcome.findings {
        text.push_str(&report::render_finding_body(finding, outcome));
    }
    text.push_str(keep_note);
    match report::pin(scenario, outcome).to_toml() {
        Ok(printed) => {
            text.push_str(&format!(
                "note: the input decodes to this scenario (save it as a .toml file and {replay_it}):\n"
            ));
            text.push_str(&printed);
        }
        // Not for a generated scenario, whose generation dropped every op that does not print
        // (`generate::keeps`); `to_toml` answers for any scenario, so this is answered too.
        Err(why) => text.push_str(&format!("note: the input's scenario is not shown: {why}\n")),
    }
    text
}

/// The body of a fuzz target or a property test for a subject of your own, which `TARGETS` and
/// the fuzz targets in `fuzz/` do not know: decodes `bytes` into a scenario exactly as a built-in
/// target does (the `arbitrary` decoder of `sim sweep --subject`, with swarm fault injection),
/// runs it with `defects` on, and returns the report of any finding.
///
/// The report gives each finding as `sim run` prints it, the command that keeps the input as a
/// regression (`your-binary import-crash SUBJECT ARTIFACT --out DIR`: a binary built on
/// `cli::main_with` takes its subjects' names as targets, and decodes the file as this function
/// does), and the scenario the bytes decoded to, pinned as a repro file: save it as a `.toml`
/// file and replay it with your binary (`your-binary replay FILE`, section 6 of the README), or
/// shrink it with `your-binary shrink`.
/// Unlike a built-in target's body this runs a host-backed subject in a child process
/// (`runner::run`), so a crash of real code is a `fault` finding here rather than the end of the
/// test process; under libFuzzer, where a crash is already an artifact, that costs a fork per
/// input.
///
/// ```no_run
/// # fn check<MySubject: sim::subject::Subject>(bytes: &[u8]) {
/// if let Err(report) = sim::fuzzing::run_subject_bytes::<MySubject>(bytes, &[]) {
///     panic!("{report}");
/// }
/// # }
/// ```
pub fn run_subject_bytes<S: Subject>(bytes: &[u8], defects: &[String]) -> Result<(), String> {
    let entry = crate::registry::erase::<S>();
    let (scenario, outcome) =
        run_input(entry.as_ref(), bytes, defects, Isolation::AsTheSubjectNeeds);
    if outcome.passed() {
        return Ok(());
    }
    let subject = info_of::<S>().name;
    // The library cannot know the name of the binary that registers the subject: the command
    // says where it goes, and the note says what it is.
    let import = own_subject_import_command(entry.as_ref(), defects);
    let keep = format!(
        "note: keep it as a regression with `{import} --out DIR`, {YOUR_BINARY} being your binary \
         whose `main` calls `sim::cli::main_with` with `{subject}` registered, ARTIFACT a file \
         holding these bytes (under libFuzzer, the one it names below: `Test unit written to …`) \
         and DIR the directory your `cargo test` replays with \
         `sim::fuzzing::replay_regressions`: it shrinks the run and writes it there with \
         `[expect] signatures`\n"
    );
    Err(failing_input_report(
        "sim fuzz input",
        subject,
        defects,
        (scenario.as_ref(), &outcome),
        &keep,
        "replay it with your binary's `replay`",
    ))
}

/// The command that imports a crash of `subject`, run by a fuzz target of one's own: by its name,
/// with `--subject` before it where a built-in fuzz target has that name too (`import-crash`
/// would not know which is meant, and the built-in target's implied defects are not the
/// subject's).
pub(crate) fn own_subject_import_command(subject: &dyn DynSubject, defects: &[String]) -> String {
    let name = subject.info().name;
    if target(name).is_none() || is_builtin_subject(subject) {
        import_command_of(YOUR_BINARY, name, defects)
    } else {
        command_importing(YOUR_BINARY, &format!("--subject {name}"), &[], defects)
    }
}

/// What `run_subject_bytes`'s report calls the binary that imports its crash: the library does
/// not know its name.
const YOUR_BINARY: &str = "<your binary>";

/// The command that turns a crash artifact of `target_name` into a regression file.
pub fn import_command(target_name: &str, defects: &[String]) -> String {
    import_command_of("sim", target_name, defects)
}

/// `import_command` as `program` runs it: a binary of one's own built on `cli::main_with`, whose
/// `import-crash` also takes the name of each subject it registers.
pub fn import_command_of(program: &str, target_name: &str, defects: &[String]) -> String {
    // The canary's own defect is implied by its name.
    let implied = target(target_name).map_or_else(Vec::new, |t| t.defects(&[]));
    command_importing(program, target_name, &implied, defects)
}

/// `PROGRAM import-crash TARGET ARTIFACT`, with a `--defect` for each of `defects` that is not
/// `implied` by the target.
fn command_importing(
    program: &str,
    target: &str,
    implied: &[String],
    defects: &[String],
) -> String {
    let mut command = format!("{program} import-crash {target} ARTIFACT");
    for defect in defects.iter().filter(|defect| !implied.contains(defect)) {
        command.push_str(&format!(" --defect {defect}"));
    }
    command
}

/// The body of the `scenario-parser` target: `bytes` as a scenario file. Rejected input must come
/// back as a diagnostic (never a panic); accepted input must print to a file that parses again and
/// prints to the same text, so that every scenario `sim` writes can be read back.
pub fn check_scenario_text(bytes: &[u8]) -> Result<(), String> {
    // The CLI rejects non-UTF-8 files before parsing; so does this target.
    let Ok(source) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    let registry = registry();
    // A large file is read op by op from a sketch of it, to save memory: that reading must give
    // what reading the whole file gives.
    if let Ok(file) = crate::scenario::parse::ScenarioFile::read("fuzz.toml", source)
        && let Ok(entry) = file.subject(subject_entry)
        && let Some(difference) = entry.sketch_disagrees(source)
    {
        return Err(format!(
            "sim fuzz target `scenario-parser`: the file reads otherwise by way of its sketch than whole\n\
             --- input ---\n{source}\n{difference}"
        ));
    }
    let scenario = match registry.parse("fuzz.toml", source) {
        Ok(scenario) => scenario,
        Err(diagnostic) => {
            // Rendering points into the source: it must not panic on any span either.
            let _ = diagnostic.to_string();
            return Ok(());
        }
    };
    let printed = scenario.to_toml().map_err(|why| {
        format!(
            "sim fuzz target `scenario-parser`: a scenario the parser accepted does not print\n\
             {why}\n--- input ---\n{source}"
        )
    })?;
    // The printer spells every op out, so a file near the bound can print past it: no writer
    // writes such a print (`report::check_scenario_file_size`), and the parser rightly refuses it.
    if report::check_scenario_file_size(printed.len()).is_err() {
        return Ok(());
    }
    let reparsed = registry.parse("printed.toml", &printed).map_err(|diagnostic| {
        format!(
            "sim fuzz target `scenario-parser`: a scenario the parser accepted printed to a file it rejects\n\
             {diagnostic}\n--- input ---\n{source}\n--- printed ---\n{printed}"
        )
    })?;
    let printed_again = reparsed.to_toml().map_err(|why| {
        format!(
            "sim fuzz target `scenario-parser`: a printed scenario parsed back does not print\n\
             {why}\n--- input ---\n{source}\n--- printed ---\n{printed}"
        )
    })?;
    if printed_again != printed {
        return Err(format!(
            "sim fuzz target `scenario-parser`: printing is not stable: print(parse(print(s))) differs from print(s)\n\
             --- input ---\n{source}\n--- printed ---\n{printed}\n--- printed again ---\n{printed_again}"
        ));
    }
    Ok(())
}

/// What a libFuzzer target calls for each input: runs `target`, marks `growth` (the binary's
/// extra coverage counters, which libFuzzer clears before each input) and panics with the report
/// on a finding, which libFuzzer records as a crash with its artifact. `rerun` ends the report:
/// `rerun_note` of the binary and the defects it read.
pub fn fuzz(
    target: &FuzzTarget,
    bytes: &[u8],
    defects: &[String],
    growth: &mut GrowthCounters,
    rerun: &str,
) {
    if let Err(report) = target.run_guided(bytes, defects, growth) {
        panic!("{report}{rerun}");
    }
}

/// The line of a crash report that runs the input again: the libFuzzer `binary` given the
/// artifact, with `SIM_FUZZ_DEFECTS` set to the `defects` it read. libFuzzer's own "Reproduce
/// with" line, which cargo-fuzz prints, leaves the variable out (its run passes, with every
/// defect off), and its `cargo fuzz run` rebuilds unless given the flags of the first build.
pub fn rerun_note(binary: &str, defects: &[String]) -> String {
    let binary = report::shell_word(binary);
    let head = "note: run it again with";
    let artifact = "ARTIFACT being the file libFuzzer names below";
    if defects.is_empty() {
        return format!("{head} `{binary} ARTIFACT`, {artifact}\n");
    }
    format!(
        "{head} `{DEFECTS_ENV}={} {binary} ARTIFACT`, {artifact} (its `Reproduce with` line leaves {DEFECTS_ENV} out, and so runs with every defect off)\n",
        defects.join(",")
    )
}

/// Kinds the growth counters tell apart; kinds past the last share its counters.
const GROWTH_KINDS: usize = 32;
/// Growth buckets per kind: for a declared cache, one per 32nd of its allowance (the last one also
/// holds every rise past it); for any other kind, one per power of two of the rise.
const GROWTH_BUCKETS: usize = 32;

/// Extra coverage for libFuzzer that leads it toward growth findings.
///
/// A growth defect shows only when a kind keeps rising over many repetitions past its allowance
/// (a cache of 16,384 committed pages, say), and code coverage does not tell an input that leaks
/// one page per repetition from one that leaks a hundred: both run the same code. These counters
/// do. Per kind, one counter marks how far its rise after the warm-up got (in 32nds of a cache's
/// allowance, since a healthy cache may fill half of it and only the rest tells a leak apart; in
/// powers of two for any other kind), and one holds how many repetitions it rose in. libFuzzer
/// reads each counter as a feature, so an input that takes some kind closer to a finding joins
/// the corpus, and the fuzzer climbs toward the allowance step by step instead of by one lucky
/// mutation.
///
/// A libFuzzer binary keeps one of these in its `__libfuzzer_extra_counters` section
/// (`fuzz/src/lib.rs`); everything else passes a scratch one.
#[repr(C, align(8))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowthCounters {
    /// `GROWTH_BUCKETS` growth buckets per kind, then one rise count per kind.
    pub counters: [u8; GROWTH_KINDS * GROWTH_BUCKETS + GROWTH_KINDS],
}

impl Default for GrowthCounters {
    fn default() -> Self {
        GrowthCounters::ZERO
    }
}

impl GrowthCounters {
    /// All counters clear (what libFuzzer resets them to before each input).
    pub const ZERO: GrowthCounters = GrowthCounters {
        counters: [0; GROWTH_KINDS * GROWTH_BUCKETS + GROWTH_KINDS],
    };

    /// Marks what each kind of `progress` reached.
    pub fn mark(&mut self, progress: &[GrowthProgress]) {
        for progress in progress {
            let kind = usize::from(progress.kind.0).min(GROWTH_KINDS - 1);
            if progress.growth > 0 {
                // 32nds of a declared cache's allowance; powers of two for a kind without one.
                let bucket = progress
                    .growth
                    .saturating_mul(GROWTH_BUCKETS as u64)
                    .checked_div(progress.allowance)
                    .unwrap_or_else(|| u64::from(progress.growth.ilog2()));
                let bucket = (bucket as usize).min(GROWTH_BUCKETS - 1);
                self.counters[kind * GROWTH_BUCKETS + bucket] = 1;
            }
            let rises = &mut self.counters[GROWTH_KINDS * GROWTH_BUCKETS + kind];
            *rises = (*rises).max(progress.rises.min(u32::from(u8::MAX)) as u8);
        }
    }

    /// How many counters are set: the features this input gave libFuzzer.
    pub fn marked(&self) -> usize {
        self.counters.iter().filter(|&&counter| counter > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::KindId;

    #[test]
    fn growth_counters_mark_how_close_a_kind_got_and_its_rises() {
        let progress = |kind, growth, rises, allowance| GrowthProgress {
            kind: KindId(kind),
            growth,
            rises,
            allowance,
        };
        let mut growth = GrowthCounters::default();
        growth.mark(&[
            // Not a cache: powers of two.
            progress(1, 300, 9, 0),
            // A cache: 32nds of its allowance, the last bucket holding all past it.
            progress(3, 12_288, 20, 16_384),
            progress(4, 40_000, 30, 16_384),
            // A kind past the last one told apart shares its counters; rises saturate.
            progress(40, 1, 1000, 0),
            // Rose, but ended no higher than after the warm-up: its rises still count.
            progress(2, 0, 3, 0),
        ]);
        let rises_at = GROWTH_KINDS * GROWTH_BUCKETS;
        assert_eq!(
            growth.counters[GROWTH_BUCKETS + 8],
            1,
            "300 lies in [2^8, 2^9)"
        );
        assert_eq!(growth.counters[rises_at + 1], 9);
        assert_eq!(
            growth.counters[3 * GROWTH_BUCKETS + 24],
            1,
            "three quarters"
        );
        assert_eq!(growth.counters[4 * GROWTH_BUCKETS + GROWTH_BUCKETS - 1], 1);
        assert_eq!(growth.counters[(GROWTH_KINDS - 1) * GROWTH_BUCKETS], 1);
        assert_eq!(growth.counters[rises_at + GROWTH_KINDS - 1], u8::MAX);
        assert_eq!(growth.counters[rises_at + 2], 3);
        assert_eq!(growth.marked(), 9);
    }

    /// The counters see a growth on its way, before the detector reports it: the interpreter's
    /// fn-pointer loop with its defect on leaks one id per repetition, within the cache allowance
    /// of 32 ids (one function) for the runs below, and the longer run marks a bucket closer to it.
    #[test]
    fn a_run_that_grows_further_marks_a_higher_power_before_any_finding() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/zoo/fn-ptr-cast-loop.toml"
        ))
        .unwrap();
        let reached = |repeat: u32| {
            let text = text.replace("repeat = 10000", &format!("repeat = {repeat}"));
            let scenario = registry().parse("loop.toml", &text).unwrap();
            let outcome = scenario.run(RunOptions::default());
            assert!(outcome.passed(), "{:#?}", outcome.findings);
            let mut growth = GrowthCounters::default();
            growth.mark(&outcome.growth_progress);
            let fn_ptr_ids = outcome
                .growth_progress
                .iter()
                .max_by_key(|p| p.growth)
                .expect("a kind grew");
            let kind = usize::from(fn_ptr_ids.kind.0);
            let buckets: Vec<usize> = (0..GROWTH_BUCKETS)
                .filter(|&bucket| growth.counters[kind * GROWTH_BUCKETS + bucket] > 0)
                .collect();
            (
                fn_ptr_ids.growth,
                fn_ptr_ids.rises,
                fn_ptr_ids.allowance,
                buckets,
            )
        };
        // Warm-ups of 4 and 10 repetitions (a quarter of the run).
        assert_eq!(reached(16), (12, 12, 32, vec![12]));
        assert_eq!(reached(40), (30, 30, 32, vec![30]));
    }

    #[test]
    fn every_target_is_named_once_and_the_canary_must_fail() {
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
        assert_eq!(TARGETS.iter().filter(|t| t.must_fail()).count(), 1);
        assert_eq!(
            target("canary").unwrap().defects(&[]),
            vec!["leak-on-evict"]
        );
        assert!(target("scenario-parser").unwrap().subject().is_none());
    }

    #[test]
    fn defects_parse_from_a_comma_list_and_are_checked_against_the_subject() {
        assert_eq!(parse_defects(" a, b ,,"), vec!["a", "b"]);
        assert!(parse_defects("").is_empty());
        let canary = target("canary").unwrap();
        assert!(canary.check_defects(&["leak-on-evict".into()]).is_ok());
        let error = canary.check_defects(&["nope".into()]).unwrap_err();
        assert!(error.contains("unknown defect `nope`"), "{error}");
        assert!(
            target("scenario-parser")
                .unwrap()
                .check_defects(&["x".into()])
                .is_err()
        );
    }

    #[test]
    fn the_rerun_note_sets_the_defects_the_binary_read() {
        let defects = ["collect-after-segment-free".to_string(), "x".to_string()];
        assert!(
            rerun_note("/f/release/allocator", &defects).starts_with(
                "note: run it again with `SIM_FUZZ_DEFECTS=collect-after-segment-free,x /f/release/allocator ARTIFACT`"
            )
        );
        assert!(
            rerun_note("/f/release/allocator", &defects).contains("leaves SIM_FUZZ_DEFECTS out")
        );
        assert_eq!(
            rerun_note("/a b/canary", &[]),
            "note: run it again with `'/a b/canary' ARTIFACT`, ARTIFACT being the file libFuzzer names below\n"
        );
    }

    #[test]
    fn import_command_names_only_defects_the_target_does_not_imply() {
        assert_eq!(
            import_command("canary", &["leak-on-evict".into()]),
            "sim import-crash canary ARTIFACT"
        );
        assert_eq!(
            import_command("allocator", &["collect-after-segment-free".into()]),
            "sim import-crash allocator ARTIFACT --defect collect-after-segment-free"
        );
    }

    /// A panic that escapes a run is sim's own bug, not the subject's (the runner makes those
    /// findings): the panic hook (`install_panic_hook`) kept quiet about it, as about any panic
    /// inside the run, so it is reported where it escapes, and then unwinds on, to the fuzz
    /// target's wrapper, where libFuzzer aborts. A run that returns reports nothing, and the
    /// mark of a simulation ends with the run either way.
    #[test]
    fn a_panic_escaping_a_run_is_reported_and_unwinds_on() {
        let mut reported = Vec::new();
        let escaped = std::panic::catch_unwind(AssertUnwindSafe(|| {
            in_simulation_reporting_escapes(
                || {
                    assert!(in_simulation(), "the run is marked as a simulation");
                    panic!("the runner's own bug")
                },
                |text| reported.push(text.to_string()),
            )
        }));
        let payload = escaped.expect_err("the panic unwinds on");
        assert_eq!(
            crate::subject::panic_message(&*payload),
            "the runner's own bug"
        );
        assert!(!in_simulation(), "the mark ended with the run");
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert!(
            reported[0].starts_with("sim: internal error in a run: the runner's own bug\n"),
            "{reported:?}"
        );
        assert!(
            reported[0].ends_with("note: this is a bug in sim, not in the subject"),
            "{reported:?}"
        );

        let returned = in_simulation_reporting_escapes(|| 7, |text| reported.push(text.into()));
        assert_eq!((returned, reported.len()), (7, 1));
    }
}
