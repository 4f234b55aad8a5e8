//! The `sim` command line: run, replay, shrink, list, sweep (and `sweep merge`), promote, zoo,
//! import-crash, and two hidden ones that `make` calls: `detect` and `sweep-scaling`.
//!
//! This is the edge of the program: the one place (besides the host arena) that may read files,
//! the environment and the clock. Exit codes are a contract: 0 every check held, 1 at least one
//! finding, 2 bad input or usage (always with a message, never a panic), 3 internal error.

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::findings::OpRef;
use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::{Outcome, RunOptions};
use crate::scenario::examples::OpExample;
use crate::sched::StrategyChoice;
use crate::seed::{format_seed, parse_seed};
use crate::subject::SubjectInfo;
use crate::sweep::{self, ProgressMode, Shard, Source, SweepConfig, SweepError, parse_seed_range};
use crate::trace::{
    BoundedWriter, ErrorKeepingWriter, RecordedTraceError, TRACE_FILE_BYTES_MAX,
    TraceAgainstRecorded, TraceComparison, WriteErrorSlot,
};

mod tables;

use tables::{Fit, FittedTable};

pub const EXIT_PASS: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERNAL: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    version,
    about = "Deterministic simulation testing for allocators and runtimes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenario files (or directories of them) and report findings.
    Run(RunArgs),
    /// Replay a repro file, or a one-line repro `gen:SUBJECT:SEED[:DEFECTS]`.
    Replay(ReplayArgs),
    /// Shrink a failing scenario while the same finding signature still appears.
    Shrink(ShrinkArgs),
    /// List subjects with their ops, defects, bounded caches and `[config]` parameters, and an
    /// example of each op with every field, as a scenario writes it.
    List(ListArgs),
    /// Turn a fuzzer crash artifact into a minimised regression file in corpus/regressions/.
    ImportCrash(ImportCrashArgs),
    /// Run many seeds across scenarios in parallel: resumable, shardable, with every new finding
    /// minimised. `sim sweep merge DIR...` merges the outputs of shards.
    Sweep(SweepArgs),
    /// Copy chosen repro files into corpus/regressions/.
    Promote(PromoteArgs),
    /// Run each zoo scenario with its defect on and with every defect off; print found / clean.
    Zoo(ZooArgs),
    /// For each defect of each subject, sweep generated scenarios and record how soon it is found
    /// (`make detect`; writes target/bench/detection.json).
    #[command(hide = true)]
    Detect(DetectArgs),
    /// Measure sweep throughput with 1 and 2 jobs; merge `sweep_scaling_2_jobs` into
    /// target/bench/results.json.
    #[command(hide = true, name = "sweep-scaling")]
    SweepScaling(ScalingArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct DefectArgs {
    /// Enable this defect (repeatable); replaces the scenario's own list.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<String>,
    /// Run with every defect off, whatever the scenario enables.
    #[arg(long, conflicts_with = "defects")]
    pub no_defects: bool,
}

impl DefectArgs {
    /// `Some` when the command line overrides the scenario's defects.
    pub fn resolve(&self) -> Option<Vec<String>> {
        if self.no_defects {
            Some(Vec::new())
        } else if self.defects.is_empty() {
            None
        } else {
            Some(self.defects.clone())
        }
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scenario files or directories (searched recursively for .toml).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Seed: decimal, 0x-hex, or a 40-digit commit hash. Overrides the scenario's.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    seed: Option<u64>,
    #[command(flatten)]
    defects: DefectArgs,
    /// Schedule strategy: random, pct (depth 3) or pct:DEPTH, its change points spread over the
    /// scenario's own steps.
    #[arg(long, value_parser = parse_strategy)]
    strategy: Option<StrategyChoice>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write every trace event as JSON lines to this file (one scenario only).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Where failing runs write their repro files.
    #[arg(long, value_name = "DIR", default_value = "target/sim/repros")]
    repro_dir: PathBuf,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// A repro file written by `sim`, or `gen:SUBJECT:SEED[:DEFECTS]`.
    repro: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write every trace event of the replayed run as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Compare the replayed run's trace with this one (a `--trace` file of the recorded run,
    /// written by the build before a change, say) and say where they part: the first event that
    /// differs, each run's version of it, and the last op started before it.
    #[arg(long, value_name = "FILE")]
    compare_trace: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ShrinkArgs {
    /// The scenario file whose run fails.
    file: PathBuf,
    /// Seed of the failing run: decimal, 0x-hex, or a 40-digit commit hash. Overrides the
    /// scenario's.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    seed: Option<u64>,
    #[command(flatten)]
    defects: DefectArgs,
    /// The signature to keep (default: the run's first finding).
    #[arg(long)]
    signature: Option<String>,
    /// Write the smallest scenario here (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Upper bound on runs spent shrinking.
    #[arg(long, default_value_t = 20_000)]
    runs_max: u64,
}

/// Where `sim import-crash` writes by default: the repository's own corpus, which `cargo test`
/// replays. Relative to the current directory, so they are used only where they already exist
/// (a run from another directory would fill a corpus no test reads).
const DEFAULT_REGRESSIONS: &str = "corpus/regressions";
const DEFAULT_PARSER_CORPUS: &str = "corpus/scenario-parser";

#[derive(Args, Debug)]
struct ImportCrashArgs {
    /// The fuzz target that crashed (one of `sim::fuzzing::TARGETS`, as in `fuzz/fuzz_targets/`),
    /// or the subject that a fuzz target of your own ran (`sim::fuzzing::run_subject_bytes`).
    target: String,
    /// TARGET is a subject of this binary, run by a fuzz target of your own, where a built-in
    /// fuzz target has the same name.
    #[arg(long, conflicts_with = "fuzz_target")]
    subject: bool,
    /// TARGET is a built-in fuzz target, where a subject of this binary has the same name.
    #[arg(long)]
    fuzz_target: bool,
    /// The crash artifact libFuzzer wrote (`fuzz/artifacts/TARGET/crash-…`).
    file: PathBuf,
    /// A defect the fuzzer ran with (`SIM_FUZZ_DEFECTS`); repeatable. The canary's is implied.
    #[arg(long = "defect", value_name = "NAME")]
    defects: Vec<String>,
    /// Directory of regression files (open findings, which fail with every defect off, go in its
    /// `open/` subdirectory).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_REGRESSIONS)]
    out: PathBuf,
    /// Where `scenario-parser` artifacts go: its seed corpus, which `cargo test` replays.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PARSER_CORPUS)]
    parser_corpus: PathBuf,
    /// Upper bound on runs spent shrinking.
    #[arg(long, default_value_t = 20_000)]
    runs_max: u64,
    /// Only say what the artifact is, on one line, and write nothing: `defect SIGNATURE` (it
    /// fails with the defects and passes without), `open SIGNATURE` (it fails without them too;
    /// `open scenario-parser: PROBLEM` for the parser's target), or `pass`. For scripts such as
    /// `make fuzz-bench`.
    #[arg(long)]
    classify: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Only these subjects (default: every one), in the order given.
    #[arg(value_name = "SUBJECT", conflicts_with = "fuzz_targets")]
    subjects: Vec<String>,
    /// Print the subjects as one JSON list on stdout (each op with its `example`, or null).
    #[arg(long)]
    json: bool,
    /// List the fuzz targets instead (`sim::fuzzing::TARGETS`), one per line, tab-separated: name,
    /// `must-pass` or `must-fail`, subject (or `-`), the subject's defects (or `-`), summary. A
    /// binary of one's own adds a line per subject it registers, which `import-crash` takes too;
    /// where one has a built-in target's name, both rows' summaries begin with the
    /// `(import-crash …)` command that takes each.
    #[arg(long)]
    fuzz_targets: bool,
}

fn parse_strategy(text: &str) -> Result<StrategyChoice, String> {
    match text {
        "random" => Ok(StrategyChoice::Random),
        "pct" => Ok(StrategyChoice::pct(3)),
        other => match other.strip_prefix("pct:").map(str::parse::<u32>) {
            Some(Ok(depth)) => {
                let choice = StrategyChoice::pct(depth);
                choice
                    .check()
                    .map(|()| choice)
                    .map_err(|(_, problem)| format!("`{other}`: {problem}"))
            }
            // `pct:` with a depth that is no u32 (`pct:-1`, `pct:99999999999`) is a depth out
            // of range, not an unknown strategy.
            Some(Err(_)) => Err(format!(
                "`{other}`: PCT `depth` must be a whole number between {} and {}",
                crate::sched::PCT_DEPTH_MIN,
                crate::sched::PCT_DEPTH_MAX
            )),
            None => Err(format!(
                "unknown strategy `{other}`; expected `random`, `pct` or `pct:DEPTH`"
            )),
        },
    }
}

/// A failure of the command itself, with the exit code it maps to.
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

/// Runs the CLI with the built-in registry and returns the exit code.
pub fn main() -> i32 {
    main_with(Registry::builtin())
}

/// Runs the CLI with `registry`: another crate's binary can add its own subjects and reuse every
/// command (`sim::cli::main_with(Registry::builtin().with(erase::<Mine>()))`).
pub fn main_with(registry: Registry) -> i32 {
    restore_default_sigpipe();
    // Replay lines name this binary: a crate's own, built on `main_with`, knows subjects that
    // `sim` does not, so `sim replay …` would not replay its findings.
    if let Some(program) = std::env::args_os().next().and_then(printed_program) {
        report::set_program(&program);
    }
    install_quiet_panic_hook();
    main_with_args(registry, std::env::args_os())
}

/// How the commands this binary prints name it, from `argv0`, the path it was started by: by its
/// file name where that name alone starts it (`sim`, whose README puts it on `PATH`, or a binary
/// found on `PATH` as this one), else by the path it was started by. A binary of one's own run
/// through `cargo run` is not on `PATH`, and a replay line naming it by file name alone would
/// not paste (`bump_allocator: command not found`).
fn printed_program(argv0: std::ffi::OsString) -> Option<String> {
    let this = std::env::current_exe().ok();
    printed_program_for(argv0, std::env::var_os("PATH"), this.as_deref())
}

/// `printed_program` with the `PATH` and this executable's path given.
fn printed_program_for(
    argv0: std::ffi::OsString,
    path_var: Option<std::ffi::OsString>,
    this: Option<&Path>,
) -> Option<String> {
    let name = Path::new(&argv0).file_name()?.to_str()?.to_string();
    let started_by_path = argv0.to_str()?.contains('/');
    if name == "sim" || !started_by_path {
        return Some(name);
    }
    // The first file of that name on `PATH` is this executable: the name alone starts it.
    let first_on_path = path_var.and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&name))
            .find(|candidate| candidate.is_file())
    });
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    match (first_on_path, this) {
        (Some(found), Some(this)) if same(&found, this) => Some(name),
        _ => argv0.into_string().ok(),
    }
}

/// `your-binary list | head` should end quietly when the reader goes away, as other Unix tools
/// do, rather than fail a write and report an internal error. Rust ignores SIGPIPE by default;
/// `main_with` is what a binary's `main` calls, before any thread starts, so every binary built
/// on it (`sim`, and a crate's own with its subjects) gets this, not only `sim`.
fn restore_default_sigpipe() {
    // SAFETY: restoring the default disposition of one signal, before the CLI starts a thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs the CLI with `registry` on `args` (the first is the program name), without touching the
/// process's panic hook: tests and embedding programs call this; `main_with` is for `main`.
pub fn main_with_args<I, T>(registry: Registry, args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_PASS
            };
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatch(&registry, cli.command)
    }));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            // Every failure reads the same way: `error: ` first, as diagnostics print it.
            if error.code != EXIT_PASS && !error.message.starts_with("error") {
                eprintln!("error: {}", error.message);
            } else {
                eprintln!("{}", error.message);
            }
            error.code
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            // `print!` panics when stdout cannot be written (a full disk, a closed file): the
            // machine's trouble, not a bug to report. Still exit 3: the output is lost.
            if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
                eprintln!("error: cannot write to standard output: {cause}");
            } else {
                eprintln!(
                    "sim: internal error: {message}\nnote: this is a bug in sim, not in the subject; please report it with the command line"
                );
            }
            EXIT_INTERNAL
        }
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Subject panics become findings; the default hook would also print them to stderr mid-report.
fn install_quiet_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(|q| q.get()) {
            default(info);
        }
    }));
}

fn dispatch(registry: &Registry, command: Command) -> Result<i32, CliError> {
    match command {
        Command::Run(args) => run(registry, args),
        Command::Replay(args) => replay(registry, args),
        Command::Shrink(args) => shrink(registry, args),
        Command::List(args) => list(registry, args),
        Command::ImportCrash(args) => import_crash(registry, args),
        Command::Sweep(args) => sweep_command(registry, args),
        Command::Promote(args) => promote(registry, args),
        Command::Zoo(args) => zoo(registry, args),
        Command::Detect(args) => detect(registry, args),
        Command::SweepScaling(args) => sweep_scaling(registry, args),
    }
}

/// Expands directories into their .toml files (sorted, recursive).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_toml(path, &mut found)
                .map_err(|e| CliError::usage(format!("{}: cannot list: {e}", path.display())))?;
            found.sort();
            if found.is_empty() {
                return Err(CliError::usage(format!(
                    "{}: no .toml scenario files in this directory",
                    path.display()
                )));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(CliError::usage(format!(
                "{}: no such file or directory{}",
                path.display(),
                where_a_relative_path_was_looked_for(path)
            )));
        }
    }
    Ok(files)
}

/// For a file that is not there: the directory a relative path was looked for in. Printed
/// commands (`sim replay target/sim/repros/…`) name files relative to the directory the command
/// that printed them ran in, so pasted into a shell elsewhere they find nothing, and the OS's
/// "No such file or directory" alone does not say why.
fn where_a_relative_path_was_looked_for(path: &Path) -> String {
    if path.is_absolute() || path.exists() {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(dir) => format!(
            " (looked for under {}; the relative paths of a printed command hold in the directory it was printed in)",
            dir.display()
        ),
        Err(_) => String::new(),
    }
}

/// A file that does not parse as a scenario, with what it most likely is when it is JSON: a
/// sweep writes each finding as `NAME.toml`, the repro to replay, beside `NAME.json`, its record,
/// and the TOML parser's "invalid key-value pair" at 1:1 says nothing of that.
fn not_a_scenario(path: &Path, bytes: &[u8], diagnostic: String) -> CliError {
    let looks_like_json = path.extension().is_some_and(|e| e == "json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !looks_like_json {
        return CliError::usage(diagnostic);
    }
    let beside = path.with_extension("toml");
    let hint = if beside.is_file() {
        format!(
            "; its repro is `{}`",
            report::replay_command(&beside.display().to_string())
        )
    } else {
        String::new()
    };
    CliError::usage(format!(
        "{diagnostic}\nnote: {} is JSON; scenarios and repros are TOML files (a sweep writes each finding's repro as NAME.toml beside NAME.json, its record){hint}",
        path.display()
    ))
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and parses a scenario file, and prints its warnings (`print_warnings`): every command
/// that reads a file says what looks wrong in it. Bad input is exit code 2 with the diagnostic.
pub fn load_scenario(registry: &Registry, path: &Path) -> Result<Box<dyn DynScenario>, CliError> {
    // `sim run` expands a directory before it gets here; every other command takes one file.
    if path.is_dir() {
        return Err(CliError::usage(format!(
            "{}: is a directory; this command takes one scenario or repro file (`sim run {}` runs every .toml file under it)",
            path.display(),
            report::shell_word(&path.display().to_string())
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::usage(format!(
            "{}: cannot read: {e}{}",
            path.display(),
            where_a_relative_path_was_looked_for(path)
        ))
    })?;
    let scenario = registry
        .parse_bytes(&path.display().to_string(), &bytes)
        .map_err(|diagnostic| not_a_scenario(path, &bytes, diagnostic.to_string()))?;
    print_warnings(scenario.as_ref());
    Ok(scenario)
}

/// A scenario's warnings (`DynScenario::warnings`) on stderr, each with where the file has it:
/// legal, so the run goes ahead, but likely not what the writer meant.
fn print_warnings(scenario: &dyn DynScenario) {
    for (warning, location) in scenario.warnings() {
        eprintln!("warning: {warning}");
        if let Some(location) = location {
            eprintln!(
                "  --> {}:{}:{}",
                location.file, location.line, location.column
            );
        }
    }
}

/// Checks `--defect` names against the subject of the scenario read from `path`. The error names
/// the file, since a command may read many of several subjects, and says which subjects declare
/// the defect when others do.
pub fn check_defects(
    registry: &Registry,
    path: &Path,
    scenario: &dyn DynScenario,
    defects: &Option<Vec<String>>,
) -> Result<(), CliError> {
    let Some(defects) = defects else {
        return Ok(());
    };
    let subject = registry
        .get(&scenario.meta().subject)
        .expect("parsed scenarios name registered subjects");
    crate::fuzzing::check_subject_defects(subject, defects).map_err(|message| {
        let unknown = defects
            .iter()
            .find(|defect| !subject.info().defects.iter().any(|d| d.name == *defect));
        let owners: Vec<&str> = registry
            .subjects()
            .filter(|other| {
                unknown.is_some_and(|defect| other.info().defects.iter().any(|d| d.name == *defect))
            })
            .map(|other| other.info().name)
            .collect();
        let hint = match owners.as_slice() {
            [] => String::new(),
            owners => format!(
                " (it is a defect of subject {}: give only that subject's scenarios)",
                owners
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        CliError::usage(format!("{}: {message}{hint}", path.display()))
    })
}

/// A trace file's sink, and the slot where it keeps its first write error.
type TraceSink = (Box<dyn Write>, WriteErrorSlot);

/// The `--trace` file's sink, and the slot where it keeps its first write error (the trace goes
/// on without it; `trace_write_problem` reports it after the run).
fn trace_sink(path: &Option<PathBuf>) -> Result<Option<TraceSink>, CliError> {
    match path {
        None => Ok(None),
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                CliError::usage(format!("{}: cannot create trace file: {e}", path.display()))
            })?;
            // The error keeper goes under the buffer, where the file's own errors arrive,
            // including those of the last flush.
            let (file, write_error) =
                ErrorKeepingWriter::new(BoundedWriter::new(file, TRACE_FILE_BYTES_MAX));
            Ok(Some((Box::new(std::io::BufWriter::new(file)), write_error)))
        }
    }
}

/// What to say when the `--trace` file could not be written whole.
fn trace_write_problem(path: &Option<PathBuf>, slot: Option<WriteErrorSlot>) -> Option<String> {
    let error = slot?.take()?;
    Some(format!(
        "{}: cannot write the trace: {error}; the trace is incomplete",
        path.as_deref().unwrap_or(Path::new("--trace")).display()
    ))
}

/// The `--compare-trace` file, opened for the comparison; a file that cannot be opened is bad
/// input, found before the run.
fn recorded_trace(path: &Option<PathBuf>) -> Result<Option<TraceAgainstRecorded>, CliError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::usage(format!("{}: cannot read the trace: {e}", path.display())))?;
    Ok(Some(TraceAgainstRecorded::new(Box::new(
        std::io::BufReader::new(file),
    ))))
}

/// Why the `--compare-trace` file could not be compared with. A file that is no trace is bad
/// input, said as such, where it is: compared as a trace, it would read as a replay that parts
/// from the recorded run at its first line, as if the build had changed behaviour.
fn recorded_trace_problem(file: &Path, error: RecordedTraceError) -> String {
    let file = file.display();
    let what_it_takes = "`--compare-trace` takes the JSON-lines file that `sim run` or \
                         `sim replay` wrote with `--trace FILE`";
    match error {
        RecordedTraceError::Unreadable(error) => format!("{file}: cannot read the trace: {error}"),
        RecordedTraceError::Empty => {
            format!("{file} is empty, so it is not a trace written by --trace; {what_it_takes}")
        }
        RecordedTraceError::NotATraceLine {
            line,
            column,
            problem,
        } => format!(
            "{file} is not a trace written by --trace: line {line}: {problem}\n  --> {file}:{line}:{column}\nnote: {what_it_takes}"
        ),
    }
}

/// Writes to two sinks: the `--trace` file and the `--compare-trace` comparison.
struct Tee(Box<dyn Write>, Box<dyn Write>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Where the replayed trace parts from the recorded one, under the `replay mismatch:` lines:
/// each run's version of the first event that differs, and the last op both started before it
/// (its line says where it is in the scenario), which is where to start looking.
fn comparison_text(
    comparison: &TraceComparison,
    file: &Path,
    scenario: &dyn DynScenario,
) -> String {
    match comparison {
        TraceComparison::Parted {
            first,
            second,
            last_op,
            ..
        } => {
            let mut text = format!(
                "  recorded: {}\n  replayed: {}\n  last op started: {}\n",
                TraceComparison::event_text(first),
                TraceComparison::event_text(second),
                TraceComparison::last_op_text(last_op)
            );
            if let Some(located) = last_op_located(comparison, scenario)
                .as_ref()
                .and_then(report::located_text)
            {
                text.push_str(&format!("    --> {located}\n"));
            }
            text
        }
        TraceComparison::Agreed { events } => {
            format!("trace: the same {events} events as {}\n", file.display())
        }
        // Not given by a comparison with a recorded trace, which is read whole.
        TraceComparison::AgreedAsFarAsKept { kept, .. } => format!(
            "trace: the first {kept} events agree with {}\n",
            file.display()
        ),
    }
}

fn comparison_json(
    comparison: &TraceComparison,
    file: &Path,
    scenario: &dyn DynScenario,
) -> serde_json::Value {
    match comparison {
        TraceComparison::Parted {
            event,
            first,
            second,
            last_op,
            ..
        } => {
            let mut value = serde_json::json!({
                "file": file.display().to_string(),
                "parted_at": event,
                "recorded": first,
                "replayed": second,
                "last_op": last_op,
            });
            // The op as a finding's details give one: where it is in the replayed file.
            if let Some(op) = last_op_located(comparison, scenario) {
                value["last_op_at"] = report::op_json(&op);
            }
            value
        }
        TraceComparison::Agreed { events } => serde_json::json!({
            "file": file.display().to_string(),
            "agreed_events": events,
        }),
        // Not given by a comparison with a recorded trace, which is read whole.
        TraceComparison::AgreedAsFarAsKept { kept, .. } => serde_json::json!({
            "file": file.display().to_string(),
            "agreed_events": kept,
        }),
    }
}

/// The last op both runs started before their traces parted, as an op located in `scenario`'s
/// file (on a spawned thread, in its declared thread's list), for the comparison to point at as
/// a finding's op is pointed at.
fn last_op_located(comparison: &TraceComparison, scenario: &dyn DynScenario) -> Option<OpRef> {
    let mut op = comparison.last_op_ref(|spawn| scenario.spawned_thread(spawn))?;
    op.location = scenario.op_location(&op);
    Some(op)
}

/// Gives each op the findings name the index of its line in the `--trace` file, if one was
/// written whole. A trace that cannot be read back costs only those indices: the report is
/// complete without them.
fn find_in_trace(outcome: &mut Outcome, trace: &Option<PathBuf>) {
    if let Some(trace) = trace {
        let _ = report::find_in_trace(outcome, trace);
    }
}

/// Refuses a `--trace` file that is one of the command's input files, which the trace would
/// overwrite.
fn check_trace_is_no_input(trace: &Option<PathBuf>, inputs: &[&Path]) -> Result<(), CliError> {
    // A trace file that does not exist yet is no input.
    let Some(trace_canonical) = trace.as_ref().and_then(|t| t.canonicalize().ok()) else {
        return Ok(());
    };
    for input in inputs {
        if input.canonicalize().is_ok_and(|c| c == trace_canonical) {
            return Err(CliError::usage(format!(
                "--trace {}: that is the input file {}, which the trace would overwrite; give another file",
                trace.as_deref().unwrap_or(input).display(),
                input.display()
            )));
        }
    }
    Ok(())
}

fn run(registry: &Registry, args: RunArgs) -> Result<i32, CliError> {
    let files = expand_paths(&args.files)?;
    if args.trace.is_some() && files.len() > 1 {
        return Err(CliError::usage(
            "--trace writes one scenario's trace; give a single FILE",
        ));
    }
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    check_trace_is_no_input(&args.trace, &inputs)?;
    // A repro directory that can never be made (a file stands there) is a typo, refused before
    // the runs: found after them, it cost every finding its repro. One that fails only when a
    // repro is written is a warning then, and the findings keep their results.
    check_output_dir(&args.repro_dir, "--repro-dir")?;
    // Parse everything first: bad input fails before any run starts.
    let mut scenarios = Vec::new();
    for path in &files {
        let scenario = load_scenario(registry, path)?;
        check_defects(registry, path, scenario.as_ref(), &args.defects.resolve())?;
        scenarios.push((path.display().to_string(), scenario));
    }
    let mut results: Vec<(String, Outcome, Option<String>)> = Vec::new();
    // A failed write is remembered, not ignored (the report would be lost without a word) nor a
    // panic (as `print!` makes it, which would stop the command before it keeps what it found):
    // the command finishes its work and then says so.
    let (mut stdout, stdout_error) = ErrorKeepingWriter::new(std::io::stdout().lock());
    let mut problems = Vec::new();
    for (source, scenario) in &scenarios {
        // Not a finding, and no reason to drop the other files' reports: said after them.
        if let Err(refusal) = scenario.check_host() {
            problems.push(format!("{source}: cannot run here: {refusal}"));
            continue;
        }
        let (trace_sink, trace_write_error) = trace_sink(&args.trace)?.unzip();
        let options = RunOptions {
            seed: args.seed,
            defects: args.defects.resolve(),
            strategy: args.strategy.clone(),
            trace_sink,
            record_schedule: true,
        };
        let mut outcome = scenario.run(options);
        report::locate(&mut outcome, scenario.as_ref());
        let trace_problem = trace_write_problem(&args.trace, trace_write_error);
        if trace_problem.is_none() {
            find_in_trace(&mut outcome, &args.trace);
        }
        problems.extend(trace_problem);
        if !args.json {
            let _ = write!(stdout, "{}", report::render_header(&outcome.header, source));
        }
        let replay = (!outcome.passed())
            .then(|| replay_of_failing_run(&args, source, scenario.as_ref(), &outcome));
        if !args.json {
            for finding in &outcome.findings {
                let _ = write!(
                    stdout,
                    "{}",
                    report::render_finding(finding, &outcome, replay.as_deref().unwrap_or(""))
                );
            }
            let _ = write!(stdout, "{}", report::render_summary(&outcome));
        }
        results.push((source.clone(), outcome, replay));
    }
    if args.json {
        let value = if results.len() == 1 {
            let (source, outcome, replay) = &results[0];
            report::outcome_json(outcome, source, replay.as_deref())
        } else {
            let runs: Vec<serde_json::Value> = results
                .iter()
                .map(|(s, o, r)| report::outcome_json(o, s, r.as_deref()))
                .collect();
            let findings: Vec<serde_json::Value> = results
                .iter()
                .flat_map(|(s, o, _)| {
                    o.findings.iter().map(move |f| {
                        let mut value = report::finding_json(f, o);
                        value["source"] = serde_json::Value::String(s.clone());
                        value
                    })
                })
                .collect();
            serde_json::json!({
                "verdict": if results.iter().all(|(_, o, _)| o.passed()) { "pass" } else { "fail" },
                "findings": findings,
                "repro": results.iter().find_map(|(_, _, r)| r.clone()),
                "trace_hash": format_seed(results.iter().fold(0u64, |h, (_, o, _)| h.rotate_left(5) ^ o.trace_hash)),
                "runs": runs,
            })
        };
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&value).expect("json")
        );
    } else if results.len() > 1 {
        let _ = writeln!(stdout, "\n{}", summary_table(&results).render());
    }
    let _ = stdout.flush();
    if let Some(error) = stdout_error.take() {
        let kept: Vec<String> = results
            .iter()
            .filter_map(|(_, _, replay)| replay.as_ref())
            .map(|replay| format!("\nnote: replay with `{replay}`"))
            .collect();
        problems.push(format!(
            "cannot write to standard output: {error}{}",
            kept.concat()
        ));
    }
    // After the report: what was found is said first, then what the command failed to do.
    if !problems.is_empty() {
        return Err(CliError {
            code: EXIT_INTERNAL,
            message: problems.join("\nerror: "),
        });
    }
    Ok(if results.iter().all(|(_, o, _)| o.passed()) {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    })
}

/// A scenario this host cannot run (`DynScenario::check_host`): an error of the command, exit 3.
fn check_host(source: &str, scenario: &dyn DynScenario) -> Result<(), CliError> {
    scenario.check_host().map_err(|refusal| CliError {
        code: EXIT_INTERNAL,
        message: format!("{source}: cannot run here: {refusal}"),
    })
}

/// The command that replays a failing run: its repro file's. When the repro cannot be written,
/// the run's findings are still reported, with a warning and the command that reruns the
/// scenario file as this run went (while the file stays as it is).
fn replay_of_failing_run(
    args: &RunArgs,
    source: &str,
    scenario: &dyn DynScenario,
    outcome: &Outcome,
) -> String {
    match report::write_repro(&args.repro_dir, scenario, outcome) {
        Ok(path) => report::replay_command(&path.display().to_string()),
        Err(error) => {
            let rerun = rerun_command(source, outcome, args.strategy.as_ref());
            eprintln!(
                "warning: cannot write a repro file for {source} into {}: {error}\n\
                 note: no repro was written; the findings name the command that reruns the scenario file instead: `{rerun}`",
                args.repro_dir.display()
            );
            rerun
        }
    }
}

/// `sim run SOURCE` with the seed, defects and strategy the run had: the same run again, as long
/// as the scenario file does not change.
fn rerun_command(source: &str, outcome: &Outcome, strategy: Option<&StrategyChoice>) -> String {
    let mut command = report::run_command(source, outcome.header.seed);
    if outcome.header.defects.is_empty() {
        command.push_str(" --no-defects");
    }
    for defect in &outcome.header.defects {
        command.push_str(&format!(" --defect {}", report::shell_word(defect)));
    }
    // `--strategy` as `parse_strategy` reads it; a scenario's own strategy needs no flag.
    match strategy {
        Some(StrategyChoice::Random) => command.push_str(" --strategy random"),
        Some(StrategyChoice::Pct { depth, .. }) => {
            command.push_str(&format!(" --strategy pct:{depth}"))
        }
        Some(StrategyChoice::Replay { .. }) | None => {}
    }
    command
}

fn summary_table(results: &[(String, Outcome, Option<String>)]) -> FittedTable {
    let mut table = FittedTable::new(vec![
        ("scenario", Fit::Whole),
        ("subject", Fit::Whole),
        ("defects", Fit::Wrap),
        ("verdict", Fit::Whole),
        ("findings", Fit::Whole),
        ("trace", Fit::Whole),
    ]);
    for (source, outcome, _) in results {
        let defects = if outcome.header.defects.is_empty() {
            "-".to_string()
        } else {
            outcome.header.defects.join(", ")
        };
        let signatures = if outcome.passed() {
            "-".to_string()
        } else {
            outcome.signatures().join("\n")
        };
        table.add_row(vec![
            source.clone(),
            outcome.header.subject.to_string(),
            defects,
            if outcome.passed() {
                "pass".into()
            } else {
                "FAIL".into()
            },
            signatures,
            format_seed(outcome.trace_hash),
        ]);
    }
    table
}

fn replay(registry: &Registry, args: ReplayArgs) -> Result<i32, CliError> {
    let (source, scenario) = if args.repro.starts_with("gen:") {
        let (source, scenario) =
            report::load_repro(registry, &args.repro).map_err(CliError::usage)?;
        // A generated scenario has none (`no_generated_scenario_warns`), but goes the same way
        // as a file: a generator that began to write one would be heard of.
        print_warnings(scenario.as_ref());
        (source, scenario)
    } else {
        let path = Path::new(&args.repro);
        let scenario = load_scenario(registry, path)?;
        (args.repro.clone(), scenario)
    };
    let mut inputs: Vec<&Path> = args.compare_trace.iter().map(PathBuf::as_path).collect();
    if !args.repro.starts_with("gen:") {
        inputs.push(Path::new(&args.repro));
    }
    check_trace_is_no_input(&args.trace, &inputs)?;
    let against_recorded = recorded_trace(&args.compare_trace)?;
    check_host(&source, scenario.as_ref())?;
    let (trace_sink, trace_write_error) = trace_sink(&args.trace)?.unzip();
    let trace_sink = match (trace_sink, &against_recorded) {
        (Some(file), Some(against)) => Some(Box::new(Tee(file, against.sink())) as Box<dyn Write>),
        (None, Some(against)) => Some(against.sink()),
        (file, None) => file,
    };
    let mut outcome = scenario.run(RunOptions {
        trace_sink,
        record_schedule: true,
        ..RunOptions::default()
    });
    report::locate(&mut outcome, scenario.as_ref());
    let trace_problem = trace_write_problem(&args.trace, trace_write_error);
    if trace_problem.is_none() {
        find_in_trace(&mut outcome, &args.trace);
    }
    let expect = scenario.meta().expect;
    let mut problems = Vec::new();
    if let Some(expect) = &expect {
        if let Some(hash) = &expect.trace_hash
            && parse_seed(hash).ok() != Some(outcome.trace_hash)
        {
            // Editing a repro to try a variant (an op removed, a `repeat` lowered) is the common
            // cause: said first, so that the reader does not go hunting nondeterminism.
            problems.push(format!("trace hash {} differs from the recorded {hash}: the run is not the recorded one (the file was edited after it was written, the code changed, or the run is nondeterministic)", format_seed(outcome.trace_hash)));
        }
        let difference = report::PinnedDifference::of(&expect.signatures, &outcome.signatures());
        for signature in &difference.not_shown {
            problems.push(format!("expected finding `{signature}` did not appear"));
        }
        // A repro that records its findings records all of them (`report::pin`), so one it does
        // not list is as much a difference as one missing: without a trace hash to compare (an
        // imported crash), it is the only sign that the run is not the recorded one.
        if !expect.signatures.is_empty() {
            for signature in &difference.not_pinned {
                problems.push(format!(
                    "finding `{signature}` appeared, which the repro does not record"
                ));
            }
        }
    }
    let comparison = match (against_recorded, &args.compare_trace) {
        (Some(against), Some(file)) => Some(
            against
                .finish()
                .map_err(|error| CliError::usage(recorded_trace_problem(file, error)))?,
        ),
        _ => None,
    };
    if let (Some(TraceComparison::Parted { event, .. }), Some(file)) =
        (&comparison, &args.compare_trace)
    {
        problems.push(format!(
            "the trace parts from {} at event \"i\":{event}",
            file.display()
        ));
    }
    let replay_line = report::replay_command(&args.repro);
    if args.json {
        let mut value = report::outcome_json(&outcome, &source, Some(&replay_line));
        value["replay_problems"] = serde_json::json!(problems);
        if let (Some(comparison), Some(file)) = (&comparison, &args.compare_trace) {
            value["trace_comparison"] = comparison_json(comparison, file, scenario.as_ref());
        }
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    } else {
        print!("{}", report::render_header(&outcome.header, &source));
        for finding in &outcome.findings {
            print!(
                "{}",
                report::render_finding(finding, &outcome, &replay_line)
            );
        }
        print!("{}", report::render_summary(&outcome));
        for problem in &problems {
            println!("replay mismatch: {problem}");
        }
        if let (Some(comparison), Some(file)) = (&comparison, &args.compare_trace) {
            print!("{}", comparison_text(comparison, file, scenario.as_ref()));
        }
        if let Some(expect) = expect.as_ref().filter(|_| problems.is_empty()) {
            // A repro that `sim import-crash` wrote records its findings, not a trace hash.
            if expect.trace_hash.is_some() {
                println!("replayed: the same findings and the same trace hash as recorded");
            } else {
                println!(
                    "replayed: the same findings as recorded (the file records no trace hash)"
                );
            }
        }
    }
    // After the report, as `sim run` does.
    if let Some(trace_problem) = trace_problem {
        return Err(CliError {
            code: EXIT_INTERNAL,
            message: trace_problem,
        });
    }
    Ok(if outcome.passed() && problems.is_empty() {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    })
}

/// The comment lines `sim shrink` starts its result with: what it shows and where it comes
/// from, the command that replays it (with `--out`), and the leading comments of the file it was
/// shrunk from, which say what the scenario is about (a printed scenario keeps no comments of its
/// own, only its `description`). Lines the tool wrote about another file (its replay command, an
/// earlier shrink's header) are not carried over.
fn shrunk_header(
    args: &ShrinkArgs,
    signature: &str,
    shrunk: &crate::shrink::Shrunk,
    about_its_defects: bool,
) -> String {
    let source = args.file.display().to_string();
    let mut header = format!(
        "# Shrunk by `{} shrink` from {source} for `{signature}` ({} ops -> {} ops{}).\n",
        report::program(),
        shrunk.ops_before,
        shrunk.ops_after,
        if about_its_defects {
            "; it passes with every defect off"
        } else {
            ""
        }
    );
    if let Some(out) = &args.out {
        header.push_str(&format!(
            "# Replay: {}\n",
            report::replay_command(&out.display().to_string())
        ));
    }
    let written_by_the_tool = [
        "# Shrunk by ",
        "# Replay:",
        "# Repro written by ",
        "# Minimised from ",
        "# Imported by ",
        "# The comments of ",
    ];
    let text = std::fs::read_to_string(&args.file).unwrap_or_default();
    let comments: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .take_while(|line| line.is_empty() || line.starts_with('#'))
        .filter(|line| line.starts_with('#'))
        .filter(|line| !written_by_the_tool.iter().any(|p| line.starts_with(p)))
        .collect();
    if !comments.is_empty() {
        header.push_str(&format!(
            "# The comments of {source}, which may speak of ops the shrink removed:\n"
        ));
        for comment in comments {
            header.push_str(comment);
            header.push('\n');
        }
    }
    header
}

fn shrink(registry: &Registry, args: ShrinkArgs) -> Result<i32, CliError> {
    let mut scenario = load_scenario(registry, &args.file)?;
    let defects = args.defects.resolve();
    check_defects(registry, &args.file, scenario.as_ref(), &defects)?;
    if let Some(out) = &args.out {
        check_output_file(out, "--out")?;
    }
    if let Some(seed) = args.seed {
        scenario.set_seed(seed);
    }
    if let Some(defects) = defects {
        scenario.set_defects(defects);
    }
    check_host(&args.file.display().to_string(), scenario.as_ref())?;
    let outcome = scenario.run(RunOptions::default());
    let signature = match &args.signature {
        Some(signature) if outcome.signatures().contains(signature) => signature.clone(),
        // A run that passes has nothing to shrink, whatever was asked; one that fails without
        // the signature asked for was given the wrong signature (or seed, or defects).
        _ if outcome.passed() => {
            return Err(CliError {
                code: EXIT_PASS,
                message: "the run passes; nothing to shrink".into(),
            });
        }
        Some(signature) => {
            return Err(CliError::usage(format!(
                "the run does not show `{signature}`; nothing to shrink (it shows: {})",
                outcome
                    .signatures()
                    .iter()
                    .map(|shown| format!("`{shown}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None => outcome.findings[0].signature(),
    };
    // As the sweep's repros and `sim import-crash` do: a run that fails only because of its
    // defects shrinks to a scenario that still passes with them off, so that the result is about
    // the defect rather than, say, an `instantiate` whose `destroy` was cut away.
    let about_its_defects = crate::shrink::is_about_its_defects(scenario.as_ref());
    let shrunk = crate::shrink::shrink_repro(
        scenario.as_ref(),
        &signature,
        args.runs_max,
        about_its_defects,
    );
    let final_outcome = shrunk.scenario.run(RunOptions::default());
    let pinned = report::pin(shrunk.scenario.as_ref(), &final_outcome);
    let text = format!(
        "{}{}",
        shrunk_header(&args, &signature, &shrunk, about_its_defects),
        pinned.to_toml()
    );
    eprintln!(
        "shrunk `{signature}`: {} ops → {} ops in {} runs{}",
        shrunk.ops_before,
        shrunk.ops_after,
        shrunk.runs,
        if about_its_defects {
            " (each kept step also passes with every defect off)"
        } else {
            ""
        }
    );
    note_shrink_bound(&shrunk, args.runs_max);
    // A result `sim replay` would refuse is no repro, in a file or on standard output: the
    // original file's run shows the finding, and a longer search may cut it below the bound.
    if let Err(why) = report::check_scenario_file_size(text.len()) {
        let source = args.file.display().to_string();
        return Err(CliError {
            code: EXIT_INTERNAL,
            message: format!(
                "the shrunk scenario ({} ops) was not written: {why}\n\
                 note: `{}` reruns the finding from {source}; a larger --runs-max may shrink it small enough",
                shrunk.ops_after,
                rerun_command(&source, &outcome, None)
            ),
        });
    }
    match &args.out {
        Some(path) => {
            if let Err(mut error) = write_file(path, text.as_bytes()) {
                // The shrink may have taken minutes: its result goes where it can.
                print!("{text}");
                error
                    .message
                    .push_str("; the shrunk scenario is on standard output instead");
                return Err(error);
            }
            eprintln!(
                "wrote {}; replay with `{}`",
                path.display(),
                report::replay_command(&path.display().to_string())
            );
        }
        None => print!("{text}"),
    }
    print_result_warnings(registry, args.out.as_deref(), &text, pinned.as_ref());
    Ok(EXIT_FINDINGS)
}

/// The warnings of a shrink's result, pointed into the file it was written to (read back from
/// its text), or without a place when it went to standard output. Cuts keep the order of what
/// is left, so a result warns of an op after an `exit` only where its input did; but a search
/// that stopped at a bound may have cut a thread's `spawn` and not yet the thread.
fn print_result_warnings(
    registry: &Registry,
    out: Option<&Path>,
    text: &str,
    result: &dyn DynScenario,
) {
    let read_back = out.and_then(|path| registry.parse(&path.display().to_string(), text).ok());
    print_warnings(read_back.as_deref().unwrap_or(result));
}

/// Says on stderr when a shrink ended at a bound rather than out of cuts to try: the result
/// may not be the smallest, and a reader should not take it for one.
fn note_shrink_bound(shrunk: &crate::shrink::Shrunk, runs_max: u64) {
    match shrunk.stopped_at {
        Some(crate::shrink::ShrinkBound::Runs) => eprintln!(
            "note: the search stopped at --runs-max {runs_max}; a larger one may shrink it further"
        ),
        Some(crate::shrink::ShrinkBound::Work) => eprintln!(
            "note: the search stopped at its work bound ({} ops tried and steps run); the result may shrink further, by shrinking it again",
            crate::shrink::SHRINK_WORK_MAX
        ),
        None => {}
    }
}

fn list(registry: &Registry, args: ListArgs) -> Result<i32, CliError> {
    if args.fuzz_targets {
        for line in fuzz_target_lines(registry) {
            println!("{line}");
        }
        return Ok(EXIT_PASS);
    }
    // The subjects named, each checked before anything prints; with none, every subject.
    let mut chosen = Vec::new();
    for name in &args.subjects {
        match registry.get(name) {
            Some(subject) => chosen.push(subject),
            None => {
                return Err(CliError::usage(format!(
                    "unknown subject `{name}`; known: {}",
                    registry.names().join(", ")
                )));
            }
        }
    }
    if chosen.is_empty() {
        chosen = registry.subjects().collect();
    }
    if args.json {
        let infos: Vec<_> = chosen.iter().map(|s| s.info()).collect();
        let examples: Vec<_> = chosen.iter().map(|s| s.op_examples()).collect();
        let listed: Vec<_> = infos
            .iter()
            .zip(&examples)
            .map(|(info, examples)| ListedSubject::new(info, examples))
            .collect();
        println!("{}", serde_json::to_string_pretty(&listed).expect("json"));
        return Ok(EXIT_PASS);
    }
    for subject in chosen {
        let info = subject.info();
        let examples = subject.op_examples();
        println!("{} — {}", info.name, info.summary);
        // The kind and the name are never broken: a name is what one types into a scenario.
        let mut table = FittedTable::new(vec![
            ("", Fit::Whole),
            ("name", Fit::Whole),
            ("what", Fit::Wrap),
        ]);
        for op in &info.ops {
            table.add_row(vec!["op".into(), op.name.into(), op.summary.into()]);
        }
        for defect in &info.defects {
            table.add_row(vec![
                "defect".to_string(),
                defect.name.to_string(),
                format!("{} ({})", defect.summary, defect.source),
            ]);
        }
        for cache in &info.caches {
            table.add_row(vec![
                "cache".to_string(),
                cache.kind.to_string(),
                format!("up to {} per key: {}", cache.per_key_max, cache.why),
            ]);
        }
        for param in &info.params {
            table.add_row(vec![
                "config".to_string(),
                param.name.to_string(),
                format!(
                    "{} ({}; default {})",
                    param.summary,
                    param.kind.expected(),
                    param.kind.default_text()
                ),
            ]);
        }
        println!("{}", table.render());
        print_op_examples(&examples);
        print_runner_ops();
        println!();
    }
    Ok(EXIT_PASS)
}

/// The lines of `list --fuzz-targets`, tab-separated: name, `must-pass` or `must-fail`, subject
/// (or `-`), the subject's defects (or `-`), summary.
fn fuzz_target_lines(registry: &Registry) -> Vec<String> {
    let mut lines = Vec::new();
    for target in crate::fuzzing::TARGETS {
        let expect = if target.must_fail() {
            "must-fail"
        } else {
            "must-pass"
        };
        let subject = target.subject().unwrap_or("-");
        // The built-in subject's, which the target runs whatever the registry holds under its
        // name (`ImportTarget::entry`).
        let defects = target
            .subject()
            .and_then(|name| crate::fuzzing::registry().get(name))
            .map_or_else(|| "-".to_string(), |entry| defects_column(&entry.info()));
        let note = SharedName::of(registry, target.name)
            .map(|shared| shared.target_note(target.name))
            .unwrap_or_default();
        lines.push(format!(
            "{}\t{expect}\t{subject}\t{defects}\t{note}{}",
            target.name, target.summary
        ));
    }
    // A binary of one's own lists its subjects too, in the same columns: `import-crash`
    // takes their names, for the fuzz targets their users write with `run_subject_bytes`.
    // `sim`'s own list stays the targets of `fuzz/`, which scripts run one binary each of.
    // One named like a built-in target too: both rows then begin their summary with what
    // `import-crash` takes for each (`SharedName`), as the name alone no longer tells.
    for subject in registry.subjects() {
        if crate::fuzzing::is_builtin_subject(subject) {
            continue;
        }
        let info = subject.info();
        let note = SharedName::of(registry, info.name)
            .map(|shared| shared.subject_note(info.name))
            .unwrap_or_default();
        lines.push(format!(
            "{0}\tmust-pass\t{0}\t{1}\t{note}your subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): {2}",
            info.name,
            defects_column(&info),
            info.summary
        ));
    }
    lines
}

/// A subject's defects in `list --fuzz-targets`: comma-separated, or `-` for none.
fn defects_column(info: &SubjectInfo) -> String {
    let defects: Vec<&str> = info.defects.iter().map(|d| d.name).collect();
    if defects.is_empty() {
        "-".to_string()
    } else {
        defects.join(",")
    }
}

/// The runner's own ops, which every subject's op lists take besides its own (a subject's
/// `info().ops` does not list them, and a scenario writer would meet them only in an error's
/// list of known ops). Not pasteable whole: `spawn` and `join` name a declared thread.
fn print_runner_ops() {
    println!();
    println!("the runner's ops, in every subject's op lists:");
    for (example, what) in [
        (
            "{ op = \"spawn\", thread = \"t\" }",
            "starts [[lifecycle.thread]] t",
        ),
        (
            "{ op = \"join\", thread = \"t\" }",
            "waits for t's latest spawn to exit",
        ),
        (
            "{ op = \"exit\" }",
            "process exit: runs exit hooks, newest first",
        ),
        (
            "{ op = \"sleep\", ticks = 1 }",
            "sleeps `ticks` ticks of the virtual clock",
        ),
    ] {
        // Within 80 columns, as the table wraps to a terminal's.
        println!("  {:<32}# {what}", format!("{example},"));
    }
}

/// The examples of `sim list SUBJECT`, under its table, as lines to paste into an op list: each
/// ends with a comma, in an order in which they parse together, and an op without an example is
/// a TOML comment. Outside the table, so that copying them takes no border with them.
fn print_op_examples(examples: &[OpExample]) {
    if examples.is_empty() {
        return;
    }
    println!("ops with every field, to paste into `ops = [ … ]`:");
    for example in examples {
        match &example.example {
            Some(text) => println!("  {text},"),
            None => println!(
                "  # {}: no example (no input the generator decodes gives it)",
                example.name
            ),
        }
    }
}

/// A subject as `sim list --json` prints it: `SubjectInfo`'s keys in their order, with each op's
/// `example` (null when it has none) added.
#[derive(serde::Serialize)]
struct ListedSubject<'a> {
    name: &'a str,
    summary: &'a str,
    ops: Vec<ListedOp<'a>>,
    defects: &'a [crate::subject::DefectInfo],
    caches: &'a [crate::subject::CacheDecl],
    params: &'a [crate::subject::ParamDecl],
    host_backed: bool,
}

#[derive(serde::Serialize)]
struct ListedOp<'a> {
    #[serde(flatten)]
    doc: &'a crate::subject::OpDoc,
    example: Option<&'a str>,
}

impl<'a> ListedSubject<'a> {
    fn new(info: &'a SubjectInfo, examples: &'a [OpExample]) -> ListedSubject<'a> {
        // Taken apart field by field, so that a field added to `SubjectInfo` fails to compile
        // here until `sim list --json` prints it too.
        let SubjectInfo {
            name,
            summary,
            ops,
            defects,
            caches,
            params,
            host_backed,
        } = info;
        let ops = ops
            .iter()
            .map(|doc| ListedOp {
                doc,
                example: examples
                    .iter()
                    .find(|example| example.name == doc.name)
                    .and_then(|example| example.example.as_deref()),
            })
            .collect();
        ListedSubject {
            name,
            summary,
            ops,
            defects,
            caches,
            params,
            host_backed: *host_backed,
        }
    }
}

/// A short stable name for a signature in a file name: FNV-1a, 32 bits, in hex.
fn signature_tag(signature: &str) -> String {
    format!("{:08x}", crate::trace::hash_str(signature) as u32)
}

/// Checks, before the work, that a file can be written at `path` (given as `flag`): it is no
/// directory, and its directory is one or can be made (`write_file` makes it). The work (a
/// shrink) can take minutes, and a typo in the path must not cost its result.
fn check_output_file(path: &Path, flag: &str) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::usage(format!(
            "{flag} {}: is a directory; give the file to write",
            path.display()
        )));
    }
    // Writing through a symbolic link to no file makes that file, but not its directory.
    if let Some(target) = dangling_symlink(path) {
        let resolved = path.parent().unwrap_or(Path::new("")).join(&target);
        let target_dir = resolved.parent().unwrap_or(Path::new(""));
        let target_dir = if target_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            target_dir
        };
        if !target_dir.is_dir() {
            return Err(CliError::usage(format!(
                "{flag} {}: is a symbolic link to {}, whose directory {} does not exist; make it, or give another path",
                path.display(),
                target.display(),
                target_dir.display()
            )));
        }
    }
    check_dir_can_be_made(path.parent().unwrap_or(Path::new("")), flag, path)
}

/// Where `path` points when it is a symbolic link to nothing: a directory cannot be made there
/// (`mkdir` finds the link and fails with "File exists"), and `metadata`, which follows links,
/// takes it for a path that does not exist yet.
fn dangling_symlink(path: &Path) -> Option<PathBuf> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink());
    if is_link && std::fs::metadata(path).is_err() {
        std::fs::read_link(path).ok()
    } else {
        None
    }
}

/// Checks, before the work, that the directory `dir` (given as `flag`) is one or can be made:
/// the nearest of it and its ancestors that exists is a directory.
/// Refuses `dir` when it is the repository's own `default` (`corpus/regressions`) and nothing is
/// there: the command was run outside the repository's root, and making the
/// directory there would put the files where `cargo test` never reads them, with a line saying
/// they were saved. `flag` names the option that picks another directory, where there is one.
fn check_repository_dir(dir: &Path, default: &str, flag: Option<&str>) -> Result<(), CliError> {
    // Anything at the path (a file, say) is left for the check of the output directory to
    // explain.
    if dir != Path::new(default) || std::fs::symlink_metadata(dir).is_ok() {
        return Ok(());
    }
    let or_flag = flag.map_or(String::new(), |flag| {
        format!(", or name a directory with {flag}")
    });
    Err(CliError::usage(format!(
        "{default}: no such directory here, and `cargo test` replays only the repository's own: run from the repository's root{or_flag}"
    )))
}

fn check_output_dir(dir: &Path, flag: &str) -> Result<(), CliError> {
    check_dir_can_be_made(dir, flag, dir)
}

/// `check_output_dir` for `dir`, with errors that name `given`, the path as the user gave it.
fn check_dir_can_be_made(dir: &Path, flag: &str, given: &Path) -> Result<(), CliError> {
    for ancestor in dir.ancestors() {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(CliError::usage(format!(
                    "{flag} {}: {} is not a directory",
                    given.display(),
                    ancestor.display()
                )));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(target) = dangling_symlink(ancestor) {
                    return Err(CliError::usage(format!(
                        "{flag} {}: {} is a symbolic link to {}, which does not exist; make that directory, or give another path",
                        given.display(),
                        ancestor.display(),
                        target.display()
                    )));
                }
            }
            Err(error) => {
                return Err(CliError::usage(format!(
                    "{flag} {}: cannot write there: {}: {error}",
                    given.display(),
                    ancestor.display()
                )));
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError {
            code: EXIT_INTERNAL,
            message: format!("{}: cannot create: {e}", dir.display()),
        })?;
    }
    std::fs::write(path, contents).map_err(|e| CliError {
        code: EXIT_INTERNAL,
        message: format!("{}: cannot write: {e}", path.display()),
    })
}

/// How `import-crash` takes a name without `--fuzz-target` or `--subject`, where a built-in fuzz
/// target and a subject of the binary's own both have it. `ImportTarget::resolve` follows it,
/// and `list --fuzz-targets` says on the two rows what to type for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SharedName {
    /// The subject replaced the built-in subject the target runs (one's own `allocator`): the
    /// name means the subject, and `--fuzz-target` picks the target.
    MeansOwnSubject,
    /// The target runs another subject, or none (one's own `canary`, whose target runs the
    /// built-in `counter`): the name is refused until `--fuzz-target` or `--subject` picks one.
    Ambiguous,
}

impl SharedName {
    /// `None` where the name is not both a built-in target's and a subject's of `registry` that
    /// is not the built-in one of that name.
    fn of(registry: &Registry, name: &str) -> Option<SharedName> {
        let target = crate::fuzzing::target(name)?;
        registry
            .get(name)
            .filter(|subject| !crate::fuzzing::is_builtin_subject(*subject))?;
        Some(if target.subject() == Some(name) {
            SharedName::MeansOwnSubject
        } else {
            SharedName::Ambiguous
        })
    }

    /// What `list --fuzz-targets` puts before the built-in target's summary: the command that
    /// imports its artifacts in this binary.
    fn target_note(self, name: &str) -> String {
        let bare = match self {
            SharedName::MeansOwnSubject => "this binary's own subject",
            SharedName::Ambiguous => "refused: this binary has a subject of the name too",
        };
        format!(
            "(import-crash --fuzz-target {name} ARTIFACT; `import-crash {name}` alone is {bare}) "
        )
    }

    /// The same before the summary of the binary's own subject of the name.
    fn subject_note(self, name: &str) -> String {
        match self {
            SharedName::MeansOwnSubject => format!(
                "(import-crash {name} ARTIFACT, or with --subject; --fuzz-target {name} is the built-in target) "
            ),
            SharedName::Ambiguous => format!(
                "(import-crash --subject {name} ARTIFACT; `import-crash {name}` alone is refused: a built-in fuzz target has the name too) "
            ),
        }
    }
}

/// What `import-crash` imports the artifact of: a built-in fuzz target, or a subject of the
/// registry by its name, whose fuzz target is its user's own (`fuzzing::run_subject_bytes`).
#[derive(Clone, Copy)]
enum ImportTarget {
    Fuzz(&'static crate::fuzzing::FuzzTarget),
    Subject(&'static str),
}

impl ImportTarget {
    /// The target `args` names. A built-in target's name means that target, so that every target
    /// keeps what its name meant, unless the registry has a subject of its own under the name:
    /// then the name means that subject where it replaced the built-in subject the target runs
    /// (one's own `allocator`), and is refused as ambiguous otherwise (one's own `canary`).
    /// `--subject` and `--fuzz-target` say which one is meant. Any other name is a subject of
    /// `registry`.
    fn resolve(registry: &Registry, args: &ImportCrashArgs) -> Result<ImportTarget, CliError> {
        use crate::fuzzing;
        let name = args.target.as_str();
        let builtin = fuzzing::target(name);
        let subject = registry.get(name);
        if args.fuzz_target {
            return builtin.map(ImportTarget::Fuzz).ok_or_else(|| {
                CliError::usage(format!(
                    "--fuzz-target: no built-in fuzz target `{name}`; fuzz targets: {}",
                    Self::fuzz_target_names()
                ))
            });
        }
        if args.subject {
            return subject
                .map(|subject| ImportTarget::Subject(subject.info().name))
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--subject: this binary has no subject `{name}`; subjects: {}",
                        registry.names().join(", ")
                    ))
                });
        }
        match (builtin, SharedName::of(registry, name)) {
            (Some(target), None) => Ok(ImportTarget::Fuzz(target)),
            (Some(target), Some(SharedName::Ambiguous)) => Err(CliError::usage(format!(
                "`{name}` names both the built-in fuzz target `{name}` ({}) and this binary's own subject `{name}` ({}): say which with --fuzz-target or --subject",
                target.summary,
                subject
                    .expect("a shared name is a subject's")
                    .info()
                    .summary
            ))),
            _ => match subject {
                Some(subject) => Ok(ImportTarget::Subject(subject.info().name)),
                None => Err(CliError::usage(format!(
                    "unknown fuzz target or subject `{name}`; fuzz targets: {}; subjects (a fuzz target \
                     of your own that runs one with `sim::fuzzing::run_subject_bytes`): {}",
                    Self::fuzz_target_names(),
                    registry.names().join(", ")
                ))),
            },
        }
    }

    fn fuzz_target_names() -> String {
        let names: Vec<&str> = crate::fuzzing::TARGETS.iter().map(|t| t.name).collect();
        names.join(", ")
    }

    /// The name the command was given.
    fn name(self) -> &'static str {
        match self {
            ImportTarget::Fuzz(target) => target.name,
            ImportTarget::Subject(subject) => subject,
        }
    }

    /// The subject the target runs (none for `scenario-parser`).
    fn subject(self) -> Option<&'static str> {
        match self {
            ImportTarget::Fuzz(target) => target.subject(),
            ImportTarget::Subject(subject) => Some(subject),
        }
    }

    /// The defects the target ran with, given the ones named: the canary adds its own.
    fn defects(self, named: &[String]) -> Vec<String> {
        match self {
            ImportTarget::Fuzz(target) => target.defects(named),
            ImportTarget::Subject(_) => named.to_vec(),
        }
    }

    /// The subject an artifact of this target runs on: a built-in target's is always the
    /// built-in subject, whatever the binary's registry holds under its name (a subject of its
    /// own that replaced it would run the artifact on other code, and take other defects).
    fn entry(self, registry: &Registry) -> Option<&dyn crate::registry::DynSubject> {
        match self {
            ImportTarget::Fuzz(target) => crate::fuzzing::registry().get(target.subject()?),
            ImportTarget::Subject(subject) => registry.get(subject),
        }
    }

    fn check_defects(self, registry: &Registry, defects: &[String]) -> Result<(), String> {
        match self {
            ImportTarget::Fuzz(target) => target.check_defects(defects),
            ImportTarget::Subject(subject) => crate::fuzzing::check_subject_defects(
                registry.get(subject).expect("resolved from the registry"),
                defects,
            ),
        }
    }
}

/// What `import-crash` says of an artifact that passes. Only the built-in targets read their
/// defects from `SIM_FUZZ_DEFECTS`; a target of one's own sets them in its code.
fn nothing_to_import(file: &Path, defects: &[String], builtin_target: bool) -> String {
    let from_env = if builtin_target {
        format!(
            " or by {} as the fuzzer had it",
            crate::fuzzing::DEFECTS_ENV
        )
    } else {
        String::new()
    };
    format!(
        "{}: passes with defects [{}]: nothing to import (name the defects the fuzzer ran with, by --defect NAME{from_env}; or the crash is from another commit)",
        file.display(),
        defects.join(","),
    )
}

/// `sim import-crash TARGET FILE`: decodes the artifact exactly as the fuzz target did, runs it
/// with the same defects, shrinks it while its first finding's signature still appears, and writes
/// the result (with `[expect] signatures`) into the regression corpus, which `cargo test` replays.
/// TARGET is a built-in fuzz target or the name of any subject of `registry`: a binary of one's
/// own imports what its fuzz target (`fuzzing::run_subject_bytes`) found, decoded the same way
/// (`ImportTarget::resolve` says which a name means where it could be either).
fn import_crash(registry: &Registry, args: ImportCrashArgs) -> Result<i32, CliError> {
    use crate::fuzzing;
    let target = ImportTarget::resolve(registry, &args)?;
    // The fuzzer read its defects from the environment; an import with none named reads the
    // same variable, so that the command libFuzzer's session suggests works as it stands.
    let mut args = args;
    if args.defects.is_empty()
        && let Some(from_env) = std::env::var_os(fuzzing::DEFECTS_ENV)
    {
        args.defects = fuzzing::parse_defects(&from_env.to_string_lossy());
        if !args.defects.is_empty() {
            eprintln!(
                "note: defects from {}: {}",
                fuzzing::DEFECTS_ENV,
                args.defects.join(",")
            );
        }
    }
    target
        .check_defects(registry, &args.defects)
        .map_err(CliError::usage)?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::usage(format!("{}: cannot read: {e}", args.file.display())))?;
    if !args.classify {
        let (out, default, flag) = if target.subject().is_some() {
            (&args.out, DEFAULT_REGRESSIONS, "--out")
        } else {
            (
                &args.parser_corpus,
                DEFAULT_PARSER_CORPUS,
                "--parser-corpus",
            )
        };
        match target {
            ImportTarget::Fuzz(_) => check_repository_dir(out, default, Some(flag))?,
            ImportTarget::Subject(_) if out == Path::new(default) && !out.is_dir() => {
                return Err(CliError::usage(format!(
                    "{default}: no such directory here: name the directory your `cargo test` replays (`sim::fuzzing::replay_regressions`) with {flag}"
                )));
            }
            ImportTarget::Subject(_) => {}
        }
        if target.subject().is_some() {
            // Open findings go in `open/` under it.
            check_output_dir(&args.out, "--out")?;
            check_output_dir(&args.out.join("open"), "--out")?;
        } else {
            check_output_dir(&args.parser_corpus, "--parser-corpus")?;
        }
    }
    let Some(subject) = target.subject() else {
        return import_parser_crash(&args, &bytes);
    };
    let defects = target.defects(&args.defects);
    let entry = target.entry(registry).ok_or_else(|| {
        CliError::usage(format!(
            "fuzz target `{}` runs subject `{subject}`, which this build does not have",
            target.name()
        ))
    })?;
    let scenario = entry.from_bytes(&bytes, &fuzzing::generate_options(&defects));
    // As `sim run` asks before it runs a file: a host that refuses what the subject needs (the
    // host arena of `dlmalloc`, or of a host-backed subject of one's own) is an error of the
    // command, not a finding to import.
    check_host(&args.file.display().to_string(), scenario.as_ref())?;
    let options = || RunOptions {
        defects: Some(defects.clone()),
        ..RunOptions::default()
    };
    let outcome = scenario.run(options());
    let Some(first) = outcome.findings.first() else {
        if args.classify {
            println!("pass");
            return Ok(EXIT_PASS);
        }
        eprintln!(
            "{}",
            nothing_to_import(
                &args.file,
                &defects,
                matches!(target, ImportTarget::Fuzz(_))
            )
        );
        return Ok(EXIT_PASS);
    };
    let signature = first.signature();
    let shows_finding =
        |candidate: &dyn DynScenario| candidate.run(options()).signatures().contains(&signature);
    // A seeded defect's regression must stay about the defect: with it off the run passes. Keep
    // that while shrinking when the artifact has it (a run that also fails with defects off is a
    // real bug, and shrinks on its finding alone).
    let defect_only = crate::shrink::is_about_its_defects(scenario.as_ref());
    if args.classify {
        let class = if defect_only { "defect" } else { "open" };
        println!("{class} {signature}");
        return Ok(EXIT_FINDINGS);
    }
    let shrunk =
        crate::shrink::shrink_repro(scenario.as_ref(), &signature, args.runs_max, defect_only);
    note_shrink_bound(&shrunk, args.runs_max);
    let mut regression = shrunk.scenario.clone_box();
    regression.set_defects(defects.clone());
    // Every signature the shrunk run shows (the regression test checks there is nothing more),
    // but no trace hash: that changes with every change to the subject, while the findings must
    // stay what they are.
    let mut signatures = vec![signature.clone()];
    for shown in regression.run(options()).signatures() {
        if !signatures.contains(&shown) {
            signatures.push(shown);
        }
    }
    regression.set_expect(Some(crate::scenario::Expect {
        signatures,
        trace_hash: None,
    }));
    if !shows_finding(regression.as_ref()) {
        return Err(CliError {
            code: EXIT_INTERNAL,
            message: format!(
                "the shrunk scenario no longer shows `{signature}`; please report this with the artifact"
            ),
        });
    }
    if !defects.is_empty() && !defect_only {
        eprintln!("note: the run fails with defects off too: this is not (only) the seeded defect");
    }
    let defects_part = if defects.is_empty() {
        "no-defects".to_string()
    } else {
        defects.join("+")
    };
    // A finding that does not go away with every defect off is a bug nobody seeded: it is open
    // until fixed, and its file waits in `open/` (cargo test checks it still fails there, and
    // tells whoever fixes it to move it up, where it must then pass).
    let open = !defect_only;
    let dir = if open {
        args.out.join("open")
    } else {
        args.out.clone()
    };
    let path = dir.join(format!(
        "{subject}-{defects_part}-{}-{}.toml",
        first.kind.name(),
        signature_tag(&signature)
    ));
    eprintln!(
        "shrunk `{signature}`: {} ops → {} ops in {} runs",
        shrunk.ops_before, shrunk.ops_after, shrunk.runs
    );
    if path.exists() {
        println!(
            "already recorded: {} holds `{signature}` with defects [{}]",
            path.display(),
            defects.join(",")
        );
        return Ok(EXIT_FINDINGS);
    }
    let what = match (target, open) {
        (ImportTarget::Fuzz(_), true) => "An open finding (it fails with every defect off): `cargo test` (sim/tests/regressions.rs)\n\
         # checks that it still fails; once fixed, move this file up to corpus/regressions/."
            .to_string(),
        (ImportTarget::Fuzz(_), false) => "`cargo test` (sim/tests/regressions.rs) checks that the run still shows it with its\n\
         # defects on and passes with them off."
            .to_string(),
        (ImportTarget::Subject(_), true) => format!(
            "An open finding (it fails with every defect off): replayed by\n\
             # `sim::fuzzing::replay_regressions`, it must still fail; once fixed, move this file up to\n\
             # {}/.",
            args.out.display()
        ),
        (ImportTarget::Subject(_), false) => "Replayed by `sim::fuzzing::replay_regressions` (your `cargo test`),\n\
         # the run must still show it with its defects on and pass with them off."
            .to_string(),
    };
    // The command as run, defects included, so that it imports the same file again.
    let imported_by = fuzzing::import_command_of(
        &report::shell_word(report::program()),
        target.name(),
        &defects,
    )
    .replace(
        "ARTIFACT",
        &report::shell_word(&args.file.display().to_string()),
    );
    // A subject's regressions live in a directory of its crate's own, never the default.
    let imported_by = match target {
        ImportTarget::Fuzz(_) => imported_by,
        ImportTarget::Subject(_) => format!(
            "{imported_by} --out {}",
            report::shell_word(&args.out.display().to_string())
        ),
    };
    let text = format!(
        "# Imported by `{imported_by}` from a fuzzer crash.\n\
         # Finding `{signature}`. {what}\n\
         # Replay: {}\n{}",
        report::replay_command(&path.display().to_string()),
        regression.to_toml()
    );
    if let Err(why) = report::check_scenario_file_size(text.len()) {
        return Err(CliError {
            code: EXIT_INTERNAL,
            message: format!(
                "{}: the regression was not written: {why}\n\
                 note: the artifact {} is unchanged; `{imported_by} --classify` runs it again and names its finding, writing nothing",
                path.display(),
                args.file.display()
            ),
        });
    }
    if let Err(mut error) = write_file(&path, text.as_bytes()) {
        // The shrink may have taken minutes: its result goes where it can.
        print!("{text}");
        error
            .message
            .push_str("; the regression is on standard output instead");
        return Err(error);
    }
    println!(
        "wrote {}; replay with `{}`",
        path.display(),
        report::replay_command(&path.display().to_string())
    );
    Ok(EXIT_FINDINGS)
}

/// A `scenario-parser` crash has no scenario to shrink: the input text is the repro. It joins the
/// target's seed corpus, which `cargo test` replays through the parser.
fn import_parser_crash(args: &ImportCrashArgs, bytes: &[u8]) -> Result<i32, CliError> {
    let result = std::panic::catch_unwind(|| crate::fuzzing::check_scenario_text(bytes));
    let problem = match result {
        Ok(Ok(())) => {
            if args.classify {
                println!("pass");
            } else {
                eprintln!(
                    "{}: the parser handles it now: nothing to import",
                    args.file.display()
                );
            }
            return Ok(EXIT_PASS);
        }
        Ok(Err(report)) => report,
        Err(_) => "the parser panicked".to_string(),
    };
    if args.classify {
        // A parser bug has no defect to switch off: it is open until fixed. One line, and no
        // file written, as `--classify` promises for every target.
        let summary = problem.lines().next().unwrap_or("");
        let summary = summary
            .strip_prefix("sim fuzz target `scenario-parser`: ")
            .unwrap_or(summary);
        println!("open scenario-parser: {summary}");
        return Ok(EXIT_FINDINGS);
    }
    let name = format!(
        "regression-{:016x}",
        crate::trace::hash_str(&String::from_utf8_lossy(bytes))
    );
    let path = args.parser_corpus.join(name);
    write_file(&path, bytes).map_err(|mut error| {
        // Nothing is lost: the artifact is the whole result, and it stays where it is.
        error.message.push_str(&format!(
            "; the artifact {} is unchanged",
            args.file.display()
        ));
        error
    })?;
    println!(
        "{problem}\nwrote {}; `cargo test` replays it (sim/tests/fuzz_corpus.rs)",
        path.display()
    );
    Ok(EXIT_FINDINGS)
}

#[derive(Args, Debug)]
struct SweepSourceArgs {
    /// Scenario files or directories (searched recursively for .toml), each run as written with
    /// every seed of the range.
    #[arg(value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Generate one scenario per seed for this subject (repeatable; `all` for every subject).
    #[arg(long = "subject", value_name = "NAME")]
    subjects: Vec<String>,
    /// Leave this subject out of `--subject all` (repeatable).
    #[arg(long = "skip-subject", value_name = "NAME")]
    skip_subjects: Vec<String>,
    /// Enable this defect in the generated scenarios (repeatable; needs exactly one --subject).
    #[arg(long = "defect", value_name = "NAME", requires = "subjects")]
    defects: Vec<String>,
    /// Seeds to run, half-open: `A..B` runs A up to B-1.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range, default_value = "0..100")]
    seeds: Range<u64>,
    /// Seeds for the scenario files, when they should differ from --seeds (hand-written files
    /// often cost far more per run than generated scenarios).
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    file_seeds: Option<Range<u64>>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    #[command(flatten)]
    sources: SweepSourceArgs,
    /// Worker threads, at least 1 (default: the machine's available parallelism).
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// Run only shard I of N (1 <= I <= N): a fixed partition of the (scenario, seed) pairs.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Output directory: results.jsonl, repros/, summary.json, junit.xml, report.html.
    #[arg(long, value_name = "DIR", default_value = "target/sweep")]
    out: PathBuf,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Copy every finding's minimised repro into corpus/regressions/.
    #[arg(long)]
    promote: bool,
    /// Share of passing runs (in percent) run twice to check determinism; failing runs always are.
    #[arg(long, value_name = "PERCENT", default_value_t = sweep::RECHECK_PERCENT_DEFAULT)]
    recheck_percent: f64,
    /// Upper bound on runs spent shrinking each finding.
    #[arg(long, value_name = "N", default_value_t = sweep::SHRINK_RUNS_MAX_DEFAULT)]
    shrink_runs_max: u64,
}

#[derive(Subcommand, Debug)]
enum SweepAction {
    /// Merge sweep output directories (shards, or earlier merges) into one; merging is idempotent.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// Sweep output directories.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = "target/sweep/merged")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
    /// Merge directories that are not the shards of one sweep (other seeds, sources or builds of
    /// sim) instead of refusing them; the summary's `warnings` say what differs.
    #[arg(long)]
    allow_mismatch: bool,
}

#[derive(Args, Debug)]
struct PromoteArgs {
    /// Repro files written by `sim sweep` or `sim shrink`.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = sweep::promote::REGRESSIONS_DIR)]
    to: PathBuf,
}

#[derive(Args, Debug)]
struct ZooArgs {
    /// Zoo scenario files or directories.
    #[arg(value_name = "FILE|DIR", default_value = "scenarios/zoo")]
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct DetectArgs {
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range, default_value = "0..1000")]
    seeds: Range<u64>,
    /// Worker threads, at least 1 (default: the machine's available parallelism).
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// Where the sweeps write their directories.
    #[arg(long, value_name = "DIR", default_value = "target/sweep/detect")]
    dir: PathBuf,
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/bench/detection.json"
    )]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct ScalingArgs {
    #[command(flatten)]
    sources: SweepSourceArgs,
    /// Alternating rounds of 1 and 2 jobs; the median of each is kept.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, value_name = "FILE", default_value = "target/bench/results.json")]
    results: PathBuf,
}

impl From<SweepError> for CliError {
    fn from(error: SweepError) -> CliError {
        CliError {
            code: if error.internal {
                EXIT_INTERNAL
            } else {
                EXIT_USAGE
            },
            message: error.message,
        }
    }
}

/// `--jobs J`: a count of worker threads. 0 was taken as 1 without a word, which reads as if it
/// meant "as many as the machine has" (the default, when the flag is left out): refused instead.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(format!(
            "a sweep needs at least 1 worker; leave --jobs out for the machine's available parallelism ({} here)",
            default_jobs()
        )),
        Ok(jobs) => Ok(jobs),
        Err(error) => Err(format!("`{text}` is no count of workers: {error}")),
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A hash of this executable: two builds of sim give two ids (for `SweepConfig::build_id`).
fn build_id() -> Option<String> {
    use std::hash::Hasher;
    let bytes = std::fs::read(std::env::current_exe().ok()?).ok()?;
    // `DefaultHasher::new()` has fixed keys, so the id is the same on every run of one build.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(&bytes);
    Some(format!("{:016x}", hasher.finish()))
}

fn progress_mode() -> ProgressMode {
    if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    }
}

/// The sources a sweep's command line names: files as written, and generated scenarios per
/// subject.
fn sweep_sources(registry: &Registry, args: &SweepSourceArgs) -> Result<Vec<Source>, CliError> {
    if args.files.is_empty() && args.subjects.is_empty() {
        return Err(CliError::usage(
            "nothing to sweep: give scenario files or directories, or --subject NAME (or --subject all)",
        ));
    }
    let mut sources = Vec::new();
    if !args.files.is_empty() {
        for path in expand_paths(&args.files)? {
            // Warned of once per file, before any run: its seeds all share what the text says.
            let scenario = load_scenario(registry, &path)?;
            let source = Source::file(&path, scenario);
            sources.push(match &args.file_seeds {
                Some(seeds) => source.with_seeds(seeds.clone()),
                None => source,
            });
        }
    }
    let without_files = sources.is_empty();
    let known = || registry.names().join(", ");
    for name in &args.skip_subjects {
        if registry.get(name).is_none() {
            eprintln!(
                "warning: --skip-subject {name}: no such subject (known: {})",
                known()
            );
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for name in &args.subjects {
        let add: Vec<&str> = if name == "all" {
            registry.names()
        } else if registry.get(name).is_some() {
            vec![name.as_str()]
        } else {
            return Err(CliError::usage(format!(
                "unknown subject `{name}`; known: {} (or `all`)",
                known()
            )));
        };
        for name in add {
            if !names.contains(&name) && !args.skip_subjects.iter().any(|s| s == name) {
                names.push(name);
            }
        }
    }
    if !args.defects.is_empty() && names.len() != 1 {
        return Err(CliError::usage(
            "--defect needs exactly one --subject: defect names belong to one subject",
        ));
    }
    for name in names {
        let subject = registry.get(name).expect("checked above");
        crate::fuzzing::check_subject_defects(subject, &args.defects).map_err(CliError::usage)?;
        sources.push(Source::generated(name, args.defects.clone()));
    }
    // Not an error: a script may pass the same flags whether or not it found files to sweep.
    // But a range that sets nothing must not pass for one that set the generated seeds.
    if let Some(seeds) = &args.file_seeds
        && without_files
    {
        eprintln!(
            "warning: --file-seeds {}..{}: no scenario files in this sweep, so it sets no seeds; \
             the generated scenarios of --subject run the --seeds range",
            seeds.start, seeds.end
        );
    }
    Ok(sources)
}

fn sweep_command(registry: &Registry, args: SweepArgs) -> Result<i32, CliError> {
    if let Some(SweepAction::Merge(merge)) = args.action {
        let mismatched = if merge.allow_mismatch {
            sweep::summary::Mismatched::Allow
        } else {
            sweep::summary::Mismatched::Refuse
        };
        check_output_dir(&merge.out, "--out")?;
        let summary = sweep::summary::merge(&merge.dirs, &merge.out, mismatched)?;
        print_sweep_summary(&summary, merge.json, None);
        return Ok(sweep_exit(&summary));
    }
    if !(0.0..=100.0).contains(&args.recheck_percent) {
        return Err(CliError::usage(
            "--recheck-percent must be between 0 and 100",
        ));
    }
    check_output_dir(&args.out, "--out")?;
    let sources = sweep_sources(registry, &args.sources)?;
    // An empty sweep would pass with nothing checked, which a nightly job would read as clean.
    if sources.is_empty() {
        return Err(CliError::usage(
            "every named subject was skipped; nothing to sweep",
        ));
    }
    let mut config = SweepConfig::new(sources, args.sources.seeds.clone(), &args.out);
    config.jobs = args.jobs.unwrap_or_else(default_jobs);
    config.shard = args.shard;
    config.recheck_percent = args.recheck_percent;
    config.shrink_runs_max = args.shrink_runs_max;
    config.progress = progress_mode();
    config.promote_to = args
        .promote
        .then(|| PathBuf::from(sweep::promote::REGRESSIONS_DIR));
    if let Some(dir) = &config.promote_to {
        // Before the sweep, not after it: its findings would otherwise be promoted nowhere.
        check_repository_dir(dir, sweep::promote::REGRESSIONS_DIR, None)?;
    }
    config.build_id = build_id();
    let report = sweep::sweep(registry, &config)?;
    for warning in &report.warnings[report.warnings_printed..] {
        eprintln!("warning: {warning}");
    }
    print_sweep_summary(
        &report.summary,
        args.json,
        Some((report.ran, report.resumed)),
    );
    if let Some(message) = report.promote_error {
        return Err(CliError::usage(message));
    }
    Ok(sweep_exit(&report.summary))
}

fn sweep_exit(summary: &sweep::summary::Summary) -> i32 {
    if summary.verdict == "pass" {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    }
}

fn print_sweep_summary(
    summary: &sweep::summary::Summary,
    json: bool,
    ran_resumed: Option<(usize, usize)>,
) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summaries serialize")
        );
        return;
    }
    let how = match ran_resumed {
        Some((ran, resumed)) if resumed > 0 => format!(" ({ran} run now, {resumed} resumed)"),
        _ => String::new(),
    };
    println!(
        "sweep: {} runs{how} over {} seeds ({}..{}) in {:.1} s ({:.1} runs/s); {} failed; {} rechecked for determinism, {} mismatches",
        summary.runs,
        summary.seeds_run,
        summary.seeds.start,
        summary.seeds.end,
        summary.wall_seconds,
        summary.runs_per_second,
        summary.runs_failed,
        summary.determinism.rechecked,
        summary.determinism.mismatches
    );
    // The table a person reads first: what ran, and what each scenario found.
    // The label (a path), the subject and the signatures are kept whole, to copy; the defects'
    // names wrap between names.
    let mut scenarios = FittedTable::new(vec![
        ("scenario", Fit::Whole),
        ("subject", Fit::Whole),
        ("defects", Fit::Wrap),
        ("runs", Fit::Whole),
        ("failed", Fit::Whole),
        ("found", Fit::Whole),
    ]);
    for scenario in &summary.scenarios {
        scenarios.add_row(vec![
            scenario.scenario.clone(),
            scenario.subject.clone(),
            if scenario.defects.is_empty() {
                "-".to_string()
            } else {
                scenario.defects.join(", ")
            },
            scenario.runs.to_string(),
            scenario.runs_failed.to_string(),
            if scenario.signatures.is_empty() {
                "clean".to_string()
            } else {
                scenario.signatures.join("\n")
            },
        ]);
    }
    println!("{}", scenarios.render());
    if summary.findings.is_empty() {
        println!("no findings");
    } else {
        // Nothing here is free text: each cell stays whole, the headers wrap between words.
        // The replay commands go under the table, each on a line of its own: in a cell, a
        // command as long as a path left the other columns a few letters wide at a terminal's
        // width, and a command is to paste whole.
        let mut table = FittedTable::new(vec![
            ("#", Fit::Whole),
            ("signature", Fit::Whole),
            ("subject", Fit::Whole),
            ("runs", Fit::Whole),
            ("first seed", Fit::Whole),
            ("seeds to first", Fit::Whole),
            ("ops (minimised)", Fit::Whole),
        ]);
        let mut replays = Vec::new();
        for (index, finding) in summary.findings.iter().enumerate() {
            let ops = match (finding.ops_before, finding.ops_after) {
                (Some(before), Some(after)) => format!("{before} → {after}"),
                _ => "-".into(),
            };
            let number = format!("#{}", index + 1);
            table.add_row(vec![
                number.clone(),
                finding.signature.clone(),
                finding.subject.clone(),
                finding.count.to_string(),
                format_seed(finding.first_seed),
                finding.seeds_to_first.to_string(),
                ops,
            ]);
            let replay = finding
                .replay
                .clone()
                .or_else(|| finding.original_replay.clone())
                .unwrap_or_default();
            replays.push(format!("  {number} {replay}"));
        }
        println!("{}", table.render());
        println!("replay:");
        for replay in replays {
            println!("{replay}");
        }
    }
    println!("report: {}", summary.report_html);
}

fn promote(registry: &Registry, args: PromoteArgs) -> Result<i32, CliError> {
    // Every file is read as a scenario before any is copied: a bad one (a sweep's NAME.json
    // record beside its repro, say) stops the command with nothing promoted, and is explained
    // as `sim replay` explains it.
    for file in &args.files {
        // A regression keeps what its file says for good: say now what looks wrong in it.
        load_scenario(registry, file)?;
    }
    check_repository_dir(&args.to, sweep::promote::REGRESSIONS_DIR, Some("--to"))?;
    let lines =
        sweep::promote::promote(registry, &args.files, &args.to).map_err(CliError::usage)?;
    for line in lines {
        println!("{line}");
    }
    Ok(EXIT_PASS)
}

fn zoo(registry: &Registry, args: ZooArgs) -> Result<i32, CliError> {
    let mut files = Vec::new();
    for path in expand_paths(&args.files)? {
        let scenario = load_scenario(registry, &path)?;
        files.push((path.display().to_string(), scenario));
    }
    let rows = sweep::zoo::check(&files);
    // The verdicts may name signatures (`NOT CLEAN: SIGNATURE`), kept whole as names are; the
    // findings' headlines wrap after their signatures.
    let signatures = rows
        .iter()
        .flat_map(|row| &row.with_defects)
        .map(|finding| format!("{}:", finding.signature))
        .collect();
    let mut table = FittedTable::new(vec![
        ("scenario", Fit::Whole),
        ("subject", Fit::Whole),
        ("defects", Fit::Wrap),
        ("with defects", Fit::Whole),
        ("defects off", Fit::Whole),
        ("findings (with defects)", Fit::WrapAfter(signatures)),
    ]);
    for row in &rows {
        let with = match (&row.expected, row.with_defects.is_empty()) {
            (Some(expected), true) if expected.is_empty() => "clean (a control)".to_string(),
            (Some(expected), false) if expected.is_empty() => {
                format!("FOUND ({}) in a control", row.with_defects.len())
            }
            _ if row.defects.is_empty() => "no defect enabled".to_string(),
            (_, true) => "MISSED".to_string(),
            (_, false) if row.as_expected() || !row.without_defects.is_empty() => {
                format!("found ({})", row.with_defects.len())
            }
            (_, false) => format!(
                "found ({}), not the expected {}",
                row.with_defects.len(),
                row.expected.as_deref().unwrap_or_default().join(", ")
            ),
        };
        let without = if row.without_defects.is_empty() {
            "clean".to_string()
        } else {
            let signatures: Vec<&str> = row
                .without_defects
                .iter()
                .map(|f| f.signature.as_str())
                .collect();
            format!("NOT CLEAN: {}", signatures.join(", "))
        };
        let lines: Vec<String> = row
            .with_defects
            .iter()
            .map(|f| format!("{}: {}", f.signature, f.headline))
            .collect();
        table.add_row(vec![
            row.file.clone(),
            row.subject.clone(),
            row.defects.join(", "),
            with,
            without,
            lines.join("\n"),
        ]);
    }
    println!("{}", table.render());
    let unexpected = rows.iter().filter(|r| !r.as_expected()).count();
    if unexpected == 0 {
        println!(
            "zoo: all {} scenarios as expected: found with their defect (controls clean), clean without",
            rows.len()
        );
        Ok(EXIT_PASS)
    } else {
        println!(
            "zoo: {unexpected} of {} scenarios not as expected (found with the defect or as [expect] says, clean without)",
            rows.len()
        );
        Ok(EXIT_FINDINGS)
    }
}

fn detect(registry: &Registry, args: DetectArgs) -> Result<i32, CliError> {
    let detection = sweep::measure::detect(
        registry,
        args.seeds.clone(),
        args.jobs.unwrap_or_else(default_jobs),
        &args.dir,
        progress_mode(),
    )?;
    let mut table = FittedTable::new(vec![
        ("subject", Fit::Whole),
        ("defect", Fit::Whole),
        ("detected", Fit::Wrap),
        ("seeds to first", Fit::Whole),
        ("minimised ops", Fit::Whole),
        ("wall s", Fit::Whole),
        ("signatures", Fit::Whole),
    ]);
    for subject in &detection.subjects {
        table.add_row(vec![
            subject.subject.clone(),
            "(defects off)".into(),
            format!(
                "{} of {} runs found something",
                subject.defects_off.runs_failed, subject.defects_off.runs
            ),
            "-".into(),
            "-".into(),
            format!("{:.2}", subject.defects_off.wall_seconds),
            subject.defects_off.signatures.join("\n"),
        ]);
        for defect in &subject.defects {
            let optional = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            table.add_row(vec![
                subject.subject.clone(),
                defect.defect.clone(),
                if defect.detected { "yes" } else { "NO" }.into(),
                optional(defect.seeds_to_first_finding),
                optional(defect.minimised_ops),
                format!("{:.2}", defect.wall_seconds),
                defect.signatures.join("\n"),
            ]);
        }
    }
    println!("{}", table.render());
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError {
            code: EXIT_USAGE,
            message: format!("{}: cannot create: {e}", parent.display()),
        })?;
    }
    let text = serde_json::to_string_pretty(&detection).expect("json") + "\n";
    std::fs::write(&args.out, text).map_err(|e| CliError {
        code: EXIT_USAGE,
        message: format!("{}: cannot write: {e}", args.out.display()),
    })?;
    println!("wrote {}", args.out.display());
    Ok(if detection.all_detected() {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    })
}

fn sweep_scaling(registry: &Registry, args: ScalingArgs) -> Result<i32, CliError> {
    let sources = sweep_sources(registry, &args.sources)?;
    if sources.is_empty() {
        return Err(CliError::usage(
            "every named subject was skipped; nothing to measure",
        ));
    }
    // Before a minute of measuring, not after: a file that cannot take the figure is refused now.
    sweep::measure::read_metrics(&args.results).map_err(CliError::usage)?;
    let scaling = sweep::measure::scaling(
        registry,
        &sources,
        args.sources.seeds.clone(),
        args.rounds,
        Path::new("target/sweep/scaling"),
    )?;
    let metric = scaling.metric();
    println!(
        "{}: {} runs; 1 job {:.1} runs/s, 2 jobs {:.1} runs/s; ratio {} (median of the rounds' own)",
        sweep::measure::SCALING_METRIC,
        scaling.runs,
        scaling.one_job_runs_per_second,
        scaling.two_jobs_runs_per_second,
        metric["ratio"]
    );
    println!(
        "machine check: two threads spinning on arithmetic ran {}x as fast as one after each round (median; well under 2 means busy neighbours)",
        metric["spin_parallelism"]
    );
    sweep::measure::merge_metric(&args.results, sweep::measure::SCALING_METRIC, metric)
        .map_err(CliError::usage)?;
    println!("wrote {}", args.results.display());
    Ok(EXIT_PASS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{Os, Tid};
    use crate::sweep::scratch::ScratchDir;

    #[test]
    fn an_artifact_that_passes_points_at_sim_fuzz_defects_only_for_a_built_in_target() {
        let defects = vec!["leak-overflow-chunks".to_string()];
        let file = Path::new("crash-1");
        let builtin = nothing_to_import(file, &defects, true);
        assert!(builtin.contains("crash-1: passes with defects [leak-overflow-chunks]"));
        assert!(builtin.contains("SIM_FUZZ_DEFECTS"), "{builtin}");
        let own = nothing_to_import(file, &defects, false);
        assert!(own.contains("by --defect NAME;"), "{own}");
        assert!(!own.contains("SIM_FUZZ_DEFECTS"), "{own}");
    }
    use crate::registry::erase;
    use crate::subject::{Config, DefectInfo, OpDoc, Step, Subject};

    /// Printed commands name `sim` by its name, and another binary by its name only where that
    /// starts it: where `PATH` finds this executable by it, else by the path it was started by
    /// (`cargo run --example …` starts `target/debug/examples/NAME`, not on `PATH`).
    #[test]
    fn a_binary_is_named_in_printed_commands_as_it_can_be_started() {
        let this = std::env::current_exe().unwrap();
        let this_dir = this.parent().unwrap().as_os_str().to_owned();
        let this_name = this.file_name().unwrap().to_str().unwrap().to_string();
        let printed = |argv0: &std::ffi::OsStr, path_var: Option<&std::ffi::OsStr>| {
            printed_program_for(
                argv0.to_owned(),
                path_var.map(|p| p.to_owned()),
                Some(&this),
            )
        };
        let os = std::ffi::OsStr::new;
        assert_eq!(printed(os("/anywhere/sim"), None).as_deref(), Some("sim"));
        assert_eq!(printed(os("mine"), None).as_deref(), Some("mine"));
        // Started by its path, and not on `PATH`: the path, which pastes.
        assert_eq!(
            printed(this.as_os_str(), Some(os("/nonexistent-dir"))).as_deref(),
            this.to_str()
        );
        assert_eq!(printed(this.as_os_str(), None).as_deref(), this.to_str());
        // On `PATH` as this executable: its name.
        assert_eq!(
            printed(this.as_os_str(), Some(&this_dir)).as_deref(),
            Some(this_name.as_str())
        );
    }

    #[derive(
        Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, arbitrary::Arbitrary,
    )]
    #[serde(tag = "op", rename_all = "kebab-case")]
    enum NopOp {
        Nop,
    }

    /// A subject of a crate's own, as a binary built on `main_with` registers it.
    type Mine = Own<MineName>;

    /// `sim`'s list is the targets of `fuzz/` (scripts run one binary per line), and a binary of
    /// one's own adds its subjects, whose names its `import-crash` takes, in the same columns.
    #[test]
    fn fuzz_targets_list_a_binarys_own_subjects_after_the_built_in_targets() {
        let builtin = fuzz_target_lines(&Registry::builtin());
        let names: Vec<&str> = builtin
            .iter()
            .map(|line| line.split('\t').next().unwrap())
            .collect();
        let targets: Vec<&str> = crate::fuzzing::TARGETS.iter().map(|t| t.name).collect();
        assert_eq!(names, targets, "`counter` has no target of its own");
        let custom = fuzz_target_lines(&Registry::builtin().with(erase::<Mine>()));
        assert_eq!(custom[..builtin.len()], builtin[..]);
        assert_eq!(
            custom[builtin.len()..],
            [
                "mine\tmust-pass\tmine\tmy-bug\tyour subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): a subject of one's own"
            ]
        );
        let canary = fuzz_target_lines(&Registry::builtin().with(erase::<Own<CanaryName>>()));
        assert_eq!(
            canary[builtin.len()..],
            [
                "canary\tmust-pass\tcanary\tmy-bug\t(import-crash --subject canary ARTIFACT; `import-crash canary` alone is refused: a built-in fuzz target has the name too) your subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): a subject of one's own"
            ],
            "a subject of one's own named like a built-in target is listed too"
        );
    }

    /// Where a subject of one's own has a built-in target's name, the list has two rows of that
    /// name, and each begins its summary with the `import-crash` command that takes it: the
    /// command each row gives resolves to that row's target or subject, and the bare name to
    /// what its notes say (or nothing, where they say it is refused). Rows of names no other row
    /// has carry no note.
    #[test]
    fn fuzz_targets_rows_of_a_shared_name_say_which_flag_picks_each() {
        let builtin_rows = fuzz_target_lines(&Registry::builtin());
        assert!(builtin_rows.iter().all(|row| !row.contains("import-crash")));
        for (registry, name, bare_name_refused) in [
            (
                Registry::builtin().with(erase::<Own<CanaryName>>()),
                "canary",
                true,
            ),
            (
                Registry::builtin().with(erase::<Own<ParserName>>()),
                "scenario-parser",
                true,
            ),
            (
                Registry::builtin().with(erase::<Own<AllocatorName>>()),
                "allocator",
                false,
            ),
        ] {
            let lines = fuzz_target_lines(&registry);
            let rows: Vec<&String> = lines
                .iter()
                .filter(|line| line.split('\t').next() == Some(name))
                .collect();
            assert_eq!(rows.len(), 2, "{rows:?}");
            // The words of `(import-crash WORDS ARTIFACT…` at the start of a row's summary.
            let command = |row: &str| -> Vec<String> {
                let summary = row.splitn(5, '\t').nth(4).unwrap();
                let words = summary
                    .strip_prefix("(import-crash ")
                    .and_then(|rest| rest.split_once(" ARTIFACT"))
                    .unwrap_or_else(|| panic!("no import-crash command in {row}"))
                    .0;
                words.split(' ').map(str::to_string).collect()
            };
            let resolve = |words: &[String]| {
                let mut line: Vec<&str> = words.iter().map(String::as_str).collect();
                line.push("crash-1");
                ImportTarget::resolve(&registry, &import_args(&line))
            };
            let (target_row, subject_row) = (rows[0], rows[1]);
            assert!(
                matches!(resolve(&command(target_row)), Ok(ImportTarget::Fuzz(t)) if t.name == name),
                "{target_row}"
            );
            assert!(
                matches!(resolve(&command(subject_row)), Ok(ImportTarget::Subject(s)) if s == name),
                "{subject_row}"
            );
            let bare = resolve(&[name.to_string()]);
            if bare_name_refused {
                assert!(bare.is_err());
                for row in [target_row, subject_row] {
                    assert!(
                        row.contains(&format!("`import-crash {name}` alone is refused")),
                        "{row}"
                    );
                }
            } else {
                assert!(matches!(bare, Ok(ImportTarget::Subject(s)) if s == name));
                assert_eq!(command(subject_row), [name]);
                assert!(
                    target_row.contains(&format!(
                        "`import-crash {name}` alone is this binary's own subject"
                    )),
                    "{target_row}"
                );
            }
            // The other rows are as in `sim`'s own list.
            let others: Vec<&String> = lines
                .iter()
                .filter(|line| line.split('\t').next() != Some(name))
                .collect();
            assert!(others.iter().all(|row| builtin_rows.contains(row)));
        }
    }

    /// `import-crash` takes a built-in target by its name, and any subject of the registry by
    /// its own; an unknown name is refused with both lists.
    #[test]
    fn import_targets_are_the_fuzz_targets_then_the_registrys_subjects() {
        let registry = Registry::builtin().with(erase::<Mine>());
        let resolve = |name| ImportTarget::resolve(&registry, &import_args(&[name, "crash-1"]));
        assert!(matches!(resolve("canary"), Ok(ImportTarget::Fuzz(t)) if t.name == "canary"));
        assert!(matches!(resolve("mine"), Ok(ImportTarget::Subject("mine"))));
        assert!(matches!(
            resolve("counter"),
            Ok(ImportTarget::Subject("counter"))
        ));
        let Err(error) = resolve("yours") else {
            panic!("an unknown name is refused");
        };
        assert_eq!(error.code, EXIT_USAGE);
        assert!(
            error.message.starts_with(
                "unknown fuzz target or subject `yours`; fuzz targets: interpreter, allocator, "
            ) && error.message.contains(", canary; subjects (")
                && error.message.ends_with(", mine"),
            "{}",
            error.message
        );
        assert_eq!(
            resolve("mine")
                .ok()
                .unwrap()
                .check_defects(&registry, &["nope".into()]),
            Err("unknown defect `nope` for subject `mine`; known: my-bug".to_string())
        );
    }

    /// `sim import-crash WORDS…`, parsed.
    fn import_args(words: &[&str]) -> ImportCrashArgs {
        let line = ["sim", "import-crash"].iter().chain(words);
        match Cli::try_parse_from(line).unwrap().command {
            Command::ImportCrash(args) => args,
            other => panic!("{other:?}"),
        }
    }

    /// The name a subject of one's own takes (`Own`), and whether the host refuses its runs.
    trait OwnName: Send + Sync + 'static {
        const NAME: &'static str;
        const HOST_REFUSES: bool = false;
    }
    /// A type for each name the tests give `Own`.
    macro_rules! own_names {
        ($($type:ident = $name:literal),* $(,)?) => {$(
            struct $type;
            impl OwnName for $type {
                const NAME: &'static str = $name;
            }
        )*};
    }
    own_names!(
        MineName = "mine",
        AllocatorName = "allocator",
        CanaryName = "canary",
        ParserName = "scenario-parser",
        CounterName = "counter",
    );
    struct RefusedName;
    impl OwnName for RefusedName {
        const NAME: &'static str = "host-refused";
        const HOST_REFUSES: bool = true;
    }

    /// A subject of one's own under `N::NAME`, with a defect `my-bug` of its own: as a binary
    /// built on `main_with` registers one, maybe under a built-in fuzz target's name.
    struct Own<N>(std::marker::PhantomData<N>);

    impl<N: OwnName> Subject for Own<N> {
        type Op = NopOp;
        fn info() -> SubjectInfo {
            SubjectInfo {
                name: N::NAME,
                summary: "a subject of one's own",
                ops: vec![OpDoc {
                    name: "nop",
                    summary: "nothing",
                }],
                defects: vec![DefectInfo {
                    name: "my-bug",
                    ..Default::default()
                }],
                ..Default::default()
            }
        }
        fn new(_: &mut Os, _: &Config) -> Self {
            Own(std::marker::PhantomData)
        }
        fn check_host(_: &Config) -> Result<(), String> {
            if N::HOST_REFUSES {
                Err("this host gives no arena".to_string())
            } else {
                Ok(())
            }
        }
        fn op_name(_: &NopOp) -> &'static str {
            "nop"
        }
        fn apply(&mut self, _: &mut Os, _: Tid, _: &NopOp) -> Step<Self> {
            Step::Done
        }
    }

    /// A binary's own subject under a built-in fuzz target's name is the one `import-crash`
    /// takes where it replaced the subject the target runs (`allocator`); otherwise the name is
    /// refused until `--subject` or `--fuzz-target` says which. A built-in subject is no
    /// subject of one's own: `sim`'s spelling stays.
    #[test]
    fn a_subject_of_ones_own_named_as_a_built_in_target_is_imported_or_the_name_refused() {
        let resolve = |registry: &Registry, words: &[&str]| {
            let mut line = words.to_vec();
            line.push("crash-1");
            ImportTarget::resolve(registry, &import_args(&line))
        };
        let builtin = Registry::builtin();
        assert!(
            matches!(resolve(&builtin, &["allocator"]), Ok(ImportTarget::Fuzz(t)) if t.name == "allocator")
        );
        assert!(matches!(
            resolve(&builtin, &["--subject", "allocator"]),
            Ok(ImportTarget::Subject("allocator"))
        ));

        // `with` replaced the built-in allocator: the built-in target has nothing to run.
        let own_allocator = Registry::builtin().with(erase::<Own<AllocatorName>>());
        assert!(matches!(
            resolve(&own_allocator, &["allocator"]),
            Ok(ImportTarget::Subject("allocator"))
        ));
        assert!(matches!(
            resolve(&own_allocator, &["--fuzz-target", "allocator"]),
            Ok(ImportTarget::Fuzz(t)) if t.name == "allocator"
        ));

        // The canary runs `counter`, which is still there; the parser's target runs no subject.
        for (registry, name, summary) in [
            (
                Registry::builtin().with(erase::<Own<CanaryName>>()),
                "canary",
                "the teaching subject with `leak-on-evict` on",
            ),
            (
                Registry::builtin().with(erase::<Own<ParserName>>()),
                "scenario-parser",
                "arbitrary bytes as a scenario file",
            ),
        ] {
            let Err(error) = resolve(&registry, &[name]) else {
                panic!("`{name}` is ambiguous");
            };
            assert_eq!(error.code, EXIT_USAGE);
            assert!(
                error.message.starts_with(&format!(
                    "`{name}` names both the built-in fuzz target `{name}` ({summary}"
                )) && error.message.ends_with(&format!(
                    "and this binary's own subject `{name}` (a subject of one's own): say which with --fuzz-target or --subject"
                )),
                "{}",
                error.message
            );
            assert!(
                matches!(resolve(&registry, &["--subject", name]), Ok(ImportTarget::Subject(s)) if s == name)
            );
            assert!(
                matches!(resolve(&registry, &["--fuzz-target", name]), Ok(ImportTarget::Fuzz(t)) if t.name == name)
            );
        }
        // With no `counter` in the registry the canary's artifact still runs on the built-in
        // one (`ImportTarget::entry`): the name stays ambiguous.
        let canary_alone = Registry::empty().with(erase::<Own<CanaryName>>());
        assert!(resolve(&canary_alone, &["canary"]).is_err());

        let refused = |words: &[&str]| resolve(&canary_alone, words).err().unwrap();
        assert_eq!(
            refused(&["--subject", "counter"]).message,
            "--subject: this binary has no subject `counter`; subjects: canary"
        );
        assert!(refused(&["--fuzz-target", "mine"]).message.starts_with(
            "--fuzz-target: no built-in fuzz target `mine`; fuzz targets: interpreter, "
        ),);
        let line = [
            "sim",
            "import-crash",
            "canary",
            "crash-1",
            "--subject",
            "--fuzz-target",
        ];
        assert!(Cli::try_parse_from(line).is_err(), "the two flags conflict");
    }

    /// The command a crash report of one's own subject names (`run_subject_bytes`) says which
    /// `canary` it means, and names its defect, which the built-in canary's name implies.
    #[test]
    fn the_import_command_of_ones_own_subject_picks_it_where_a_built_in_target_has_its_name() {
        let command = |subject: Box<dyn crate::registry::DynSubject>, defect: &str| {
            crate::fuzzing::own_subject_import_command(subject.as_ref(), &[defect.to_string()])
        };
        assert_eq!(
            command(erase::<Own<CanaryName>>(), "leak-on-evict"),
            "<your binary> import-crash --subject canary ARTIFACT --defect leak-on-evict"
        );
        assert_eq!(
            command(erase::<Own<AllocatorName>>(), "my-bug"),
            "<your binary> import-crash --subject allocator ARTIFACT --defect my-bug"
        );
        assert_eq!(
            command(erase::<crate::subjects::allocator::Allocator>(), "my-bug"),
            "<your binary> import-crash allocator ARTIFACT --defect my-bug"
        );
        assert_eq!(
            command(erase::<Own<RefusedName>>(), "my-bug"),
            "<your binary> import-crash host-refused ARTIFACT --defect my-bug"
        );
    }

    /// An artifact file holding `bytes`, in a directory of the test's own that goes when the
    /// test does: bind the directory to a named variable (`let (_dir, file)`), as `_` would drop
    /// it at once.
    fn artifact(name: &str, bytes: &[u8]) -> (ScratchDir, PathBuf) {
        let dir = ScratchDir::new(&format!("cli-{name}"));
        let file = dir.path().join("crash-1");
        std::fs::write(&file, bytes).unwrap();
        (dir, file)
    }

    /// The artifact of one's own `allocator` runs with that subject and its defects, where the
    /// built-in target took the name and refused `my-bug` as no defect of the built-in one.
    #[test]
    fn import_crash_runs_ones_own_subject_under_a_built_in_targets_name() {
        let registry = Registry::builtin().with(erase::<Own<AllocatorName>>());
        let (_dir, file) = artifact("own-allocator", &[0; 16]);
        let file = file.to_str().unwrap();
        let words = ["allocator", file, "--defect", "my-bug", "--classify"];
        assert_eq!(
            import_crash(&registry, import_args(&words)).ok(),
            Some(EXIT_PASS)
        );
    }

    /// A built-in target's artifact runs on the built-in subject, whatever the binary's registry
    /// holds under that subject's name: the canary's crash, which runs `counter`, is still found
    /// in a binary with a `counter` of its own, and `--fuzz-target allocator` in one with its own
    /// `allocator` takes the built-in allocator's defects and lists them.
    #[test]
    fn a_built_in_targets_artifact_runs_on_the_built_in_subject_in_any_binary() {
        let crash = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../corpus/canary/crash-37b41243a5e03c8c04340d5be8f107a92b0b4689"),
        )
        .unwrap();
        let (_dir, file) = artifact("canary-own-counter", &crash);
        let file = file.to_str().unwrap();
        let classify = |registry: &Registry, words: &[&str]| {
            import_crash(registry, import_args(words)).map_err(|error| error.message)
        };
        let canary = ["canary", file, "--classify"];
        assert_eq!(classify(&Registry::builtin(), &canary), Ok(EXIT_FINDINGS));
        let own_counter = Registry::builtin().with(erase::<Own<CounterName>>());
        assert_eq!(classify(&own_counter, &canary), Ok(EXIT_FINDINGS));

        let own_allocator = Registry::builtin().with(erase::<Own<AllocatorName>>());
        let words = ["--fuzz-target", "allocator", file, "--classify"];
        let defect = ["--defect", "collect-after-segment-free"];
        assert!(classify(&own_allocator, &[&words[..], &defect[..]].concat()).is_ok());
        let mine = ["--defect", "my-bug"];
        assert!(classify(&own_allocator, &[&words[..], &mine[..]].concat()).is_err());
        let listed = fuzz_target_lines(&own_allocator);
        let allocator_row = listed
            .iter()
            .find(|line| line.starts_with("allocator\t"))
            .unwrap();
        assert!(
            allocator_row.contains("collect-after-segment-free")
                && !allocator_row.contains("my-bug"),
            "{allocator_row}"
        );
    }

    /// `import-crash` asks the host before it runs, as `sim run` does: a refusal is the same
    /// error, exit 3, and nothing runs.
    #[test]
    fn import_crash_refuses_to_run_what_the_host_refuses_as_sim_run_does() {
        let registry = Registry::builtin().with(erase::<Own<RefusedName>>());
        let (_dir, file) = artifact("host-refused", &[0; 16]);
        let name = file.to_str().unwrap();
        let Err(error) = import_crash(
            &registry,
            import_args(&["host-refused", name, "--classify"]),
        ) else {
            panic!("the host refuses the run");
        };
        assert_eq!(error.code, EXIT_INTERNAL);
        assert_eq!(
            error.message,
            format!("{name}: cannot run here: this host gives no arena")
        );
    }
}
