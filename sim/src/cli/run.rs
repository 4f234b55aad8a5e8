//! `sim run` and `sim replay`: running scenario files and repros, the summary table, the
//! replay command a failing run prints, and `--trace` / `--compare-trace` files.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::findings::OpRef;
use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::{Outcome, RunOptions};
use crate::sched::StrategyChoice;
use crate::seed::{format_seed, parse_seed, parse_trace_hash};
use crate::trace::{
    BoundedWriter, ErrorKeepingWriter, RecordedTraceError, TRACE_FILE_BYTES_MAX,
    TraceAgainstRecorded, TraceComparison, WriteErrorSlot,
};

use super::tables::{Fit, FittedTable};
use super::{
    CliError, DefectArgs, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_PASS, check_defects, check_host,
    check_output_dir, check_output_is_no_input, expand_paths, load_scenario, print_warnings,
};

#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// Scenario files or directories (searched recursively for .toml).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Seed: decimal, 0x-hex, or a 40-digit commit hash. Overrides the scenario's.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    seed: Option<u64>,
    #[command(flatten)]
    defects: DefectArgs,
    /// Schedule strategy: random, pct (depth 3) or pct:DEPTH, its change points spread over the
    /// scenario's own steps; or replay:0,1,1,0, the thread chosen at each scheduling decision,
    /// or replay:TRACE, the decisions of a run's `--trace` file (its "ev":"schedule" lines).
    #[arg(long, value_parser = parse_strategy, value_name = "STRATEGY")]
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

/// Every spelling `--strategy` takes, for its errors.
const STRATEGIES: &str = "`random`, `pct`, `pct:DEPTH`, `replay:0,1,1,0` (the thread chosen at \
                          each scheduling decision) or `replay:TRACE` (the decisions of a \
                          `--trace` file)";

fn parse_strategy(text: &str) -> Result<StrategyChoice, String> {
    match text {
        "random" => Ok(StrategyChoice::Random),
        "pct" => Ok(StrategyChoice::pct(3)),
        "replay" => Err(REPLAY_NEEDS.into()),
        other if let Some(schedule) = other.strip_prefix("replay:") => {
            replay_schedule(schedule).map(|schedule| StrategyChoice::Replay { schedule })
        }
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
            None => Err(format!("unknown strategy `{other}`; expected {STRATEGIES}")),
        },
    }
}

const REPLAY_NEEDS: &str = "`replay` needs the schedule to replay: `replay:0,1,1,0`, the \
                            thread chosen at each scheduling decision, or `replay:TRACE`, a file \
                            that `--trace` wrote";

/// The schedule of `--strategy replay:…`: a list of thread ids (`0,1,1,0`), or, where it is not
/// one, the path of a `--trace` file, whose `"ev":"schedule"` lines give the thread chosen at
/// each decision in their `a`. A failing run's repro records its schedule the same way, in
/// `schedule = { strategy = "replay", schedule = [...] }`; from the command line, the schedule
/// of one run (its trace) can be replayed against another scenario file, an edited one say.
fn replay_schedule(given: &str) -> Result<Vec<u32>, String> {
    if given.is_empty() {
        return Err(REPLAY_NEEDS.into());
    }
    let is_list = given
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b' ');
    if !is_list {
        return schedule_of_trace(Path::new(given));
    }
    given
        .split(',')
        .map(|id| {
            id.trim().parse::<u32>().map_err(|_| {
                format!(
                    "`replay:{given}`: `{}` is not a thread id (a whole number from 0); write the ids with commas between: `replay:0,1,1,0`",
                    id.trim()
                )
            })
        })
        .collect()
}

/// The thread chosen at each scheduling decision of the run that wrote the `--trace` file at
/// `path` (`trace::recorded_schedule`).
fn schedule_of_trace(path: &Path) -> Result<Vec<u32>, String> {
    let what_it_takes =
        "`replay:` takes a file that `--trace` wrote, or thread ids such as `replay:0,1,1,0`";
    let file = open_trace(path, what_it_takes)?;
    crate::trace::recorded_schedule(file)
        .map_err(|error| recorded_trace_problem(path, error, what_it_takes))
}

#[derive(Args, Debug)]
pub(super) struct ReplayArgs {
    /// A repro file written by `sim`, or `gen:SUBJECT:SEED[:DEFECTS]`. A path, which need not
    /// be UTF-8, as every other command's files.
    #[arg(value_name = "REPRO")]
    repro: PathBuf,
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

/// A trace file's sink, the slot where it keeps its first write error, and the op lines it
/// wrote, noted as they were written (the report names each op's line without reading the file
/// back, which may be a pipe).
type TraceSink = (Box<dyn Write>, TraceKept);

/// What a trace file's sink keeps for after the run.
struct TraceKept {
    write_error: WriteErrorSlot,
    op_lines: report::TraceOpLines,
}

/// The `--trace` file's sink, the slot where it keeps its first write error (the trace goes on
/// without it; `trace_write_problem` reports it after the run), and its op lines.
fn trace_sink(path: &Option<PathBuf>) -> Result<Option<TraceSink>, CliError> {
    match path {
        None => Ok(None),
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                CliError::usage(format!("{}: cannot create trace file: {e}", path.display()))
            })?;
            // The error keeper goes under the buffer, where the file's own errors arrive,
            // including those of the last flush; the op lines are noted above it, as the file
            // took them.
            let (file, write_error) =
                ErrorKeepingWriter::new(BoundedWriter::new(file, TRACE_FILE_BYTES_MAX));
            let op_lines = report::TraceOpLines::default();
            let file = op_lines.watching(Box::new(file));
            let kept = TraceKept {
                write_error,
                op_lines,
            };
            Ok(Some((Box::new(std::io::BufWriter::new(file)), kept)))
        }
    }
}

/// What to say when the `--trace` file could not be written whole.
fn trace_write_problem(path: &Option<PathBuf>, kept: Option<&TraceKept>) -> Option<String> {
    let error = kept?.write_error.take()?;
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
    let file = open_trace(path, COMPARE_TRACE_TAKES).map_err(CliError::usage)?;
    Ok(Some(TraceAgainstRecorded::new(Box::new(file))))
}

/// A file given as a trace, opened to be read; `what_it_takes` says what the flag that named it
/// takes, for a file that cannot be opened.
fn open_trace(
    path: &Path,
    what_it_takes: &str,
) -> Result<std::io::BufReader<std::fs::File>, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        recorded_trace_problem(path, RecordedTraceError::Unreadable(e), what_it_takes)
    })?;
    Ok(std::io::BufReader::new(file))
}

const COMPARE_TRACE_TAKES: &str = "`--compare-trace` takes the JSON-lines file that `sim run` \
                                   or `sim replay` wrote with `--trace FILE`";

/// Why a file given as a trace (to `--compare-trace`, or `--strategy replay:TRACE`) could not be
/// read as one, and `what_it_takes`: what the flag that named it takes. A file that is no trace
/// is bad input, said as such, where it is: compared as a trace, it would read as a replay that
/// parts from the recorded run at its first line, as if the build had changed behaviour.
fn recorded_trace_problem(file: &Path, error: RecordedTraceError, what_it_takes: &str) -> String {
    let file = file.display();
    match error {
        RecordedTraceError::Unreadable(error) => {
            format!("{file}: cannot read the trace: {error}; {what_it_takes}")
        }
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
/// written whole (`trace_write_problem` says otherwise).
fn find_in_trace(outcome: &mut Outcome, kept: Option<TraceKept>) {
    if let Some(kept) = kept {
        report::find_in_trace(outcome, &kept.op_lines);
    }
}

/// Refuses a `--trace` file that is one of the command's input files, which the trace would
/// overwrite.
fn check_trace_is_no_input(trace: &Option<PathBuf>, inputs: &[&Path]) -> Result<(), CliError> {
    check_output_is_no_input(trace.as_deref(), "--trace", "the trace", inputs)
}

pub(super) fn run(registry: &Registry, args: RunArgs) -> Result<i32, CliError> {
    let files = expand_paths(&args.files, &[&args.repro_dir])?;
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
    // The files that did not run, and why: in the report too, which would otherwise pass over
    // them as if they had passed.
    let mut not_run: Vec<(String, String)> = Vec::new();
    for (source, scenario) in &scenarios {
        // Not a finding, and no reason to drop the other files' reports: said after them.
        if let Err(refusal) = scenario.check_host() {
            let problem = format!("cannot run here: {refusal}");
            problems.push(format!("{source}: {problem}"));
            not_run.push((source.clone(), problem));
            continue;
        }
        let (trace_sink, trace_kept) = trace_sink(&args.trace)?.unzip();
        let options = RunOptions {
            seed: args.seed,
            defects: args.defects.resolve(),
            strategy: args.strategy.clone(),
            trace_sink,
            record_schedule: true,
        };
        let mut outcome = scenario.run(options);
        report::locate(&mut outcome, scenario.as_ref());
        let trace_problem = trace_write_problem(&args.trace, trace_kept.as_ref());
        if trace_problem.is_none() {
            find_in_trace(&mut outcome, trace_kept);
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
        let value = run_json(&results, &not_run, scenarios.len() == 1);
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&value).expect("json")
        );
    } else if scenarios.len() > 1 {
        let _ = writeln!(stdout, "\n{}", summary_table(&results, &not_run).render());
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

/// The JSON object of `sim run`: one run's object when one file was given, else the combined
/// one with each run's object under `runs`; the shape follows what was asked for, not how many
/// files ran. A file that did not run (`not_run`, each with its source and the problem) makes the
/// verdict "fail" even without a finding: "pass" says every check held, and its checks were
/// never made.
fn run_json(
    results: &[(String, Outcome, Option<String>)],
    not_run: &[(String, String)],
    one_file: bool,
) -> serde_json::Value {
    let verdict = if not_run.is_empty() && results.iter().all(|(_, o, _)| o.passed()) {
        "pass"
    } else {
        "fail"
    };
    let mut value = match (one_file, results) {
        (true, [(source, outcome, replay)]) => {
            report::outcome_json(outcome, source, replay.as_deref())
        }
        // The one file given did not run: there is no trace, so no hash of one.
        (true, _) => serde_json::json!({
            "source": not_run.first().map(|(source, _)| source.clone()),
            "findings": [],
            "repro": null,
            "trace_hash": null,
        }),
        (false, _) => {
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
                "findings": findings,
                "repro": results.iter().find_map(|(_, _, r)| r.clone()),
                "trace_hash": format_seed(results.iter().fold(0u64, |h, (_, o, _)| h.rotate_left(5) ^ o.trace_hash)),
                "runs": runs,
            })
        }
    };
    // Set here for every shape: a run's own verdict does not know of the files that did not run.
    value["verdict"] = serde_json::json!(verdict);
    value["not_run"] = not_run
        .iter()
        .map(|(source, problem)| serde_json::json!({ "source": source, "problem": problem }))
        .collect();
    value
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
        Ok(path) => report::replay_command(&path),
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
pub(super) fn rerun_command(
    source: &str,
    outcome: &Outcome,
    strategy: Option<&StrategyChoice>,
) -> String {
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
        Some(StrategyChoice::Replay { schedule }) => command.push_str(&format!(
            " --strategy replay:{}",
            schedule
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )),
        None => {}
    }
    command
}

fn summary_table(
    results: &[(String, Outcome, Option<String>)],
    not_run: &[(String, String)],
) -> FittedTable {
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
    // Listed as not run, where leaving them out would read as if they had never been given
    // (why is said on stderr).
    for (source, _) in not_run {
        table.add_row(vec![
            source.clone(),
            "-".into(),
            "-".into(),
            "NOT RUN".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    table
}

pub(super) fn replay(registry: &Registry, args: ReplayArgs) -> Result<i32, CliError> {
    let mut inputs: Vec<&Path> = args.compare_trace.iter().map(PathBuf::as_path).collect();
    let generated = args
        .repro
        .to_str()
        .and_then(|repro| report::load_generated_repro(registry, repro));
    let scenario = match generated {
        Some(generated) => {
            let scenario = generated.map_err(CliError::usage)?;
            // A generated scenario has none (`no_generated_scenario_warns`), but goes the same
            // way as a file: a generator that began to write one would be heard of.
            print_warnings(scenario.as_ref());
            scenario
        }
        None => {
            inputs.push(&args.repro);
            load_scenario(registry, &args.repro)?
        }
    };
    // A one-liner is named without the whitespace it was pasted with, each defect once. The
    // replay command is made from the path itself, not from `source`, which gives a path that is
    // no UTF-8 with a stand-in character and so would name no file.
    let (source, replay_line) = match args.repro.to_str().and_then(report::generated_repro_named) {
        Some(one_liner) => {
            let replay_line = report::replay_command(&one_liner);
            (one_liner, replay_line)
        }
        None => (
            args.repro.display().to_string(),
            report::replay_command(&args.repro),
        ),
    };
    check_trace_is_no_input(&args.trace, &inputs)?;
    let against_recorded = recorded_trace(&args.compare_trace)?;
    check_host(&source, scenario.as_ref())?;
    let (trace_sink, trace_kept) = trace_sink(&args.trace)?.unzip();
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
    let trace_problem = trace_write_problem(&args.trace, trace_kept.as_ref());
    if trace_problem.is_none() {
        find_in_trace(&mut outcome, trace_kept);
    }
    let expect = scenario.meta().expect;
    let mut problems = Vec::new();
    if let Some(expect) = &expect {
        if let Some(hash) = &expect.trace_hash
            && parse_trace_hash(hash) != Some(outcome.trace_hash)
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
        (Some(against), Some(file)) => Some(against.finish().map_err(|error| {
            CliError::usage(recorded_trace_problem(file, error, COMPARE_TRACE_TAKES))
        })?),
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
    // A repro that pins no findings and no trace hash (`signatures = []` with the hash cut, an
    // edit) has nothing of its own to compare the run with: said so, with what the run found,
    // where the closing line claimed the same findings as recorded. With `--compare-trace` the
    // run was compared with the recorded trace (the result is above, a difference a problem),
    // and the line says that instead.
    let pins_nothing = expect
        .as_ref()
        .filter(|expect| expect.signatures.is_empty() && expect.trace_hash.is_none())
        .filter(|_| problems.is_empty() || comparison.is_some())
        .map(|_| {
            let found = match outcome.signatures() {
                found if found.is_empty() => "no finding".to_string(),
                found => found
                    .iter()
                    .map(|signature| format!("`{signature}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            match &args.compare_trace {
                Some(file) if comparison.is_some() => format!(
                    "the repro pins no findings and no trace hash, but the trace was compared with {}; this run found {found}",
                    file.display()
                ),
                _ => format!(
                    "the repro pins no findings and no trace hash, so nothing was compared with a recorded run; this run found {found}"
                ),
            }
        });
    if args.json {
        let mut value = report::outcome_json(&outcome, &source, Some(&replay_line));
        // A replay checks more than the run's own checks: one that does not reproduce the
        // recorded run fails, findings or not (`replay_problems` says why).
        if !problems.is_empty() {
            value["verdict"] = serde_json::json!("fail");
        }
        value["replay_problems"] = serde_json::json!(problems);
        if let Some(note) = &pins_nothing {
            value["replay_unchecked"] = serde_json::json!(note);
        }
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
        // The closing verdict, as `--json` gives it: a run that passes its own checks but is
        // not the recorded one is no reproduction.
        if !problems.is_empty() {
            println!(
                "fail: the replay does not reproduce the recorded run ({} replay mismatch(es) above)",
                problems.len()
            );
        }
        if let Some(note) = &pins_nothing {
            println!("replayed: {note}");
        } else if let Some(expect) = expect.as_ref().filter(|_| problems.is_empty()) {
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
