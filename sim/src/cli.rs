//! The `sim` command line: run, replay, shrink, list, sweep (and `sweep merge`), promote, zoo,
//! import-crash, and two hidden ones that `make` calls: `detect` and `sweep-scaling`.
//!
//! One file per command family: `run.rs` (run and replay, with trace files), `shrink.rs`,
//! `list.rs`, `import_crash.rs`, `sweep.rs` (sweep, merge, promote, zoo and the hidden two), and
//! `tables.rs` for the tables they print. This file holds the command line's shape, the entry
//! points, and what several commands share: reading scenario files, checking `--defect` names and
//! the host, and checking where output may be written.
//!
//! This is the edge of the program: the one place (besides the host arena) that may read files,
//! the environment and the clock. Exit codes are a contract: 0 every check held, 1 at least one
//! finding, 2 bad input or usage (always with a message, never a panic), 3 internal error.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::registry::{DynScenario, Registry};
use crate::report;

mod import_crash;
mod list;
mod run;
mod shrink;
mod sweep;
mod tables;
#[cfg(test)]
mod tests;

pub use import_crash::ARTIFACT_BYTES_MAX;
use import_crash::ImportCrashArgs;
use list::ListArgs;
use run::{ReplayArgs, RunArgs};
use shrink::ShrinkArgs;
use sweep::{DetectArgs, PromoteArgs, ScalingArgs, SweepArgs, ZooArgs};

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
    /// `Some` when the command line overrides the scenario's defects: each once, in the order
    /// first given, as a scenario file's `defects` list and a `gen:` one-liner take them (a
    /// repeat was listed twice in the run's header and its replay command).
    pub fn resolve(&self) -> Option<Vec<String>> {
        if self.no_defects {
            Some(Vec::new())
        } else if self.defects.is_empty() {
            None
        } else {
            let mut defects: Vec<String> = Vec::new();
            for defect in &self.defects {
                if !defects.contains(defect) {
                    defects.push(defect.clone());
                }
            }
            Some(defects)
        }
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
        crate::scenario::set_program(&program);
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
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    // Printed commands and hints name the program this call was given as argv[0], as `main_with`
    // names its binary: a test of one's own that calls this with its binary's name gets replay
    // lines and `… list SUBJECT` hints that its binary runs, a sweep's worker threads' too.
    let _program = args
        .first()
        .cloned()
        .and_then(printed_program)
        .map(|program| crate::scenario::name_program_for_call(&program));
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
            // `print!` panics when stdout cannot be written (a full disk, a closed file): the
            // machine's trouble, not a bug to report. Still exit 3: the output is lost.
            let message = crate::subject::panic_message(&*payload);
            if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
                eprintln!("error: cannot write to standard output: {cause}");
            } else {
                // With where it panicked, which the quiet hook kept from stderr.
                let report = crate::subject::internal_error_report(
                    &*payload,
                    "",
                    "; please report it with the command line",
                );
                eprintln!("{report}");
            }
            EXIT_INTERNAL
        }
    }
}

/// Subject panics become findings; the default hook would also print them to stderr mid-report.
/// The hook prints nothing, and only records where each panic was raised, for whoever catches it:
/// the runner's `panic` finding says where the subject panicked (`panicked at`), and an internal
/// error where sim did.
fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(crate::subject::note_panic_location));
}

fn dispatch(registry: &Registry, command: Command) -> Result<i32, CliError> {
    match command {
        Command::Run(args) => run::run(registry, args),
        Command::Replay(args) => run::replay(registry, args),
        Command::Shrink(args) => shrink::shrink(registry, args),
        Command::List(args) => list::list(registry, args),
        Command::ImportCrash(args) => import_crash::import_crash(registry, args),
        Command::Sweep(args) => sweep::sweep_command(registry, args),
        Command::Promote(args) => sweep::promote(registry, args),
        Command::Zoo(args) => sweep::zoo(registry, args),
        Command::Detect(args) => sweep::detect(registry, args),
        Command::SweepScaling(args) => sweep::sweep_scaling(registry, args),
    }
}

/// Expands directories into their .toml files (sorted, recursive; `collect_toml` says which).
/// A walk does not enter `outputs`, the directories the command itself writes (a sweep's
/// `--out`, a run's `--repro-dir`), nor a directory named `target` below the one named (cargo's
/// and every default output of sim's): the repros written there are no sources, and `sim sweep
/// .` took the repros of its last run for scenarios of its own. A directory named on the
/// command line is walked whatever its name.
pub fn expand_paths(paths: &[PathBuf], outputs: &[&Path]) -> Result<Vec<PathBuf>, CliError> {
    let outputs: Vec<PathBuf> = outputs
        .iter()
        .filter_map(|output| output.canonicalize().ok())
        .collect();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut walk = TomlWalk {
                outputs: &outputs,
                found: Vec::new(),
                links_skipped: Vec::new(),
                targets_skipped: Vec::new(),
            };
            walk.collect(path)
                .map_err(|e| CliError::usage(format!("{}: cannot list: {e}", path.display())))?;
            let TomlWalk {
                mut found,
                mut links_skipped,
                mut targets_skipped,
                ..
            } = walk;
            found.sort();
            links_skipped.sort();
            targets_skipped.sort();
            // Each says what to name to run the files it passed over, found files or not.
            let notes: Vec<String> = [
                passed_over_note(
                    &links_skipped,
                    "not followed",
                    [
                        "a symbolic link to a directory; name the directory it links to, to run \
                         its .toml files",
                        "symbolic links to directories; name the directory one links to, to run \
                         its .toml files",
                    ],
                ),
                passed_over_note(
                    &targets_skipped,
                    "not searched",
                    [
                        "a directory named `target`; name it to run its .toml files",
                        "directories named `target`; name one to run its .toml files",
                    ],
                ),
            ]
            .into_iter()
            .flatten()
            .collect();
            if found.is_empty() {
                let notes: String = notes.iter().map(|note| format!("\nnote: {note}")).collect();
                return Err(CliError::usage(format!(
                    "{}: no .toml scenario files in this directory{notes}",
                    path.display(),
                )));
            }
            // Said even when files were found: a linked directory's files are left out, and a
            // run that silently holds fewer scenarios than the tree shows would mislead.
            for note in notes {
                eprintln!("note: {note}");
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
    if std::str::from_utf8(bytes).is_err() {
        // Most often a fuzzer's crash artifact, whose bytes decode into a scenario only through
        // its target.
        return CliError::usage(format!(
            "{diagnostic}\nnote: a fuzz target's crash artifact is bytes, not a scenario: `{program} import-crash TARGET {} --classify` runs it as the target did and names its finding, and without --classify it writes the scenario as a regression file, which `{program} replay` takes",
            report::shell_word(&path.display().to_string()),
            program = report::shell_word(crate::scenario::program())
        ));
    }
    let looks_like_json = path.extension().is_some_and(|e| e == "json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !looks_like_json {
        return CliError::usage(diagnostic);
    }
    let beside = path.with_extension("toml");
    let hint = if beside.is_file() {
        format!("; its repro is `{}`", report::replay_command(&beside))
    } else {
        String::new()
    };
    CliError::usage(format!(
        "{diagnostic}\nnote: {} is JSON; scenarios and repros are TOML files (a sweep writes each finding's repro as NAME.toml beside NAME.json, its record){hint}",
        path.display()
    ))
}

/// What a directory's walk says of the directories of one kind it passed over (`skipped`,
/// sorted), if any: the first, how many more, and which kind with what to name to run one's files
/// (`why`, for one and for more).
fn passed_over_note(skipped: &[PathBuf], not_done: &str, why: [&str; 2]) -> Option<String> {
    let first = skipped.first()?;
    let (more, why) = match skipped.len() - 1 {
        0 => (String::new(), why[0]),
        more => (format!(" and {more} more"), why[1]),
    };
    Some(format!("{not_done}: {}{more} ({why})", first.display()))
}

/// One walk of `expand_paths`: the .toml files it found, and the directories it passed over.
struct TomlWalk<'a> {
    /// The command's own output directories, canonical, which the walk does not enter.
    outputs: &'a [PathBuf],
    found: Vec<PathBuf>,
    links_skipped: Vec<PathBuf>,
    targets_skipped: Vec<PathBuf>,
}

impl TomlWalk<'_> {
    /// The .toml files under `dir`, in its subdirectories too, but not through a symbolic link
    /// to a directory: a link back up the tree (`d/a -> .`) made the walk run each file again at
    /// every depth the OS resolves (41 times), and two such links made it exponential. As `find`
    /// and `grep -r` do, a linked directory is not entered; a link to a .toml file is read. Each
    /// linked directory passed over goes in `links_skipped`, and each `target` directory in
    /// `targets_skipped`, for a note each (`passed_over_note`); an output
    /// directory is passed over without a word, as nothing in it was ever a source.
    fn collect(&mut self, dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            // `DirEntry::file_type` does not follow a link; `Path::is_dir` does.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if entry.file_name() == "target" {
                    self.targets_skipped.push(path);
                } else if !path
                    .canonicalize()
                    .is_ok_and(|canonical| self.outputs.contains(&canonical))
                {
                    self.collect(&path)?;
                }
            } else if kind.is_symlink() && path.is_dir() {
                self.links_skipped.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                self.found.push(path);
            }
        }
        Ok(())
    }
}

/// Reads and parses a scenario file, and prints its warnings (`print_warnings`): every command
/// that reads a file says what looks wrong in it. Bad input is exit code 2 with the diagnostic.
pub fn load_scenario(registry: &Registry, path: &Path) -> Result<Box<dyn DynScenario>, CliError> {
    // `sim run` expands a directory before it gets here; every other command takes one file.
    if path.is_dir() {
        return Err(CliError::usage(format!(
            "{}: is a directory; this command takes one scenario or repro file (`{} run {}` runs every .toml file under it)",
            path.display(),
            report::shell_word(crate::scenario::program()),
            report::shell_word(&path.display().to_string())
        )));
    }
    let bytes = report::read_scenario_file(path).map_err(|error| {
        let suffix = match error {
            report::ScenarioFileError::Unreadable(..) => where_a_relative_path_was_looked_for(path),
            report::ScenarioFileError::TooLarge(_) => String::new(),
        };
        CliError::usage(format!("{error}{suffix}"))
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

/// A scenario this host cannot run (`DynScenario::check_host`): an error of the command, exit 3.
fn check_host(source: &str, scenario: &dyn DynScenario) -> Result<(), CliError> {
    scenario.check_host().map_err(|refusal| CliError {
        code: EXIT_INTERNAL,
        message: format!("{source}: cannot run here: {refusal}"),
    })
}

/// Refuses an output file (given as `flag`) that is one of the command's `inputs`, however
/// spelt, which `what` would overwrite: by the same canonical path, or, for a file that exists,
/// by the same device and inode, which a hard link to the input shares under another path. An
/// output that does not exist yet is no input.
fn check_output_is_no_input(
    output: Option<&Path>,
    flag: &str,
    what: &str,
    inputs: &[&Path],
) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    let Some((output, output_canonical)) =
        output.and_then(|output| Some((output, output.canonicalize().ok()?)))
    else {
        return Ok(());
    };
    let file_id = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let output_id = file_id(output);
    for input in inputs {
        let same_file = output_id.is_some() && file_id(input) == output_id;
        if same_file || input.canonicalize().is_ok_and(|c| c == output_canonical) {
            return Err(CliError::usage(format!(
                "{flag} {}: that is the input file {}, which {what} would overwrite; give another file",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
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

/// Refuses `dir` when it is the default directory `default` (`corpus/regressions`, or
/// `corpus/scenario-parser` for the parser's artifacts) and nothing is there: the command was
/// run where no `cargo test` reads that directory (outside the repository's root, or, for one's
/// own subject, in a crate without one), and making it there would put the files where nothing
/// replays them, with a line saying they were saved. `flag`
/// names the option that picks another directory, where there is one. `replayer` says whose
/// `cargo test` reads the directory, and so what to do instead. Anything else is left to
/// `check_output_dir`.
fn check_repository_dir(
    dir: &Path,
    default: &str,
    flag: Option<&str>,
    replayer: Replayer,
) -> Result<(), CliError> {
    // Anything at the path (a file, say) is left for the check of the output directory to
    // explain.
    if dir != Path::new(default) || std::fs::symlink_metadata(dir).is_ok() {
        return Ok(());
    }
    let message = match replayer {
        Replayer::Repository => {
            let or_flag = flag.map_or(String::new(), |flag| {
                format!(", or name a directory with {flag}")
            });
            format!(
                "{default}: no such directory here, and `cargo test` replays only the repository's own: run from the repository's root{or_flag}"
            )
        }
        Replayer::OwnCrate => format!(
            "{default}: no such directory here: name the directory your `cargo test` replays (`sim::fuzzing::replay_regressions`){}",
            flag.map_or(String::new(), |flag| format!(" with {flag}"))
        ),
    };
    Err(CliError::usage(message))
}

/// Whose `cargo test` replays the regressions a command writes, for `check_repository_dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replayer {
    /// This repository's (`sim/tests/regressions.rs`, the parser's corpus), from its root.
    Repository,
    /// A crate of one's own, through `sim::fuzzing::replay_regressions`, from a directory of
    /// its own: the repository's default is never it.
    OwnCrate,
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

/// Writes a shrink's result (`what`: "the shrunk scenario", "the regression") to `path`; where
/// it cannot, prints it on standard output and says so in the error: the shrink may have taken
/// minutes, and its result goes where it can.
fn write_or_print_shrunk(path: &Path, text: &str, what: &str) -> Result<(), CliError> {
    write_file(path, text.as_bytes()).map_err(|mut error| {
        print!("{text}");
        error
            .message
            .push_str(&format!("; {what} is on standard output instead"));
        error
    })
}

/// Writes `contents` to the output file `path` the user named, making its directory. A path
/// where no file can be made (a read-only directory, `/proc`) is bad usage, exit 2, as every
/// other command's output path is (`--trace`, `sweep --out`, `promote`); a file made that then
/// cannot be written whole (a full disk) is exit 3, as a `--trace` cut short is.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::usage(format!(
                "{}: cannot write: cannot create its directory {}: {e}",
                path.display(),
                dir.display()
            ))
        })?;
    }
    let mut file = std::fs::File::create(path)
        .map_err(|e| CliError::usage(format!("{}: cannot write: {e}", path.display())))?;
    file.write_all(contents).map_err(|e| CliError {
        code: EXIT_INTERNAL,
        message: format!("{}: cannot write: {e}", path.display()),
    })
}
