//! `sim sweep` (and `sweep merge`), `sim promote`, `sim zoo`, and the two hidden commands `make`
//! calls, `detect` and `sweep-scaling`.

use std::io::IsTerminal;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::registry::Registry;
use crate::seed::format_seed;
use crate::sweep::summary::defects_cell;
use crate::sweep::{self, ProgressMode, Shard, Source, SweepConfig, SweepError, parse_seed_range};

use super::tables::{Fit, FittedTable};
use super::{
    CliError, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_PASS, EXIT_USAGE, Replayer, check_host,
    check_output_dir, check_repository_dir, expand_paths, load_scenario, write_file,
};

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
pub(super) struct SweepArgs {
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
    /// Copy every finding's minimised repro into DIR, the regressions a crate of one's own
    /// replays (`sim::fuzzing::replay_regressions`); `--promote` is `--promote-to
    /// corpus/regressions`.
    #[arg(long, value_name = "DIR", conflicts_with = "promote")]
    promote_to: Option<PathBuf>,
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
pub(super) struct PromoteArgs {
    /// Repro files written by `sim sweep` or `sim shrink`.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = sweep::promote::REGRESSIONS_DIR)]
    to: PathBuf,
}

#[derive(Args, Debug)]
pub(super) struct ZooArgs {
    /// Zoo scenario files or directories.
    #[arg(value_name = "FILE|DIR", default_value = "scenarios/zoo")]
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct DetectArgs {
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
pub(super) struct ScalingArgs {
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
/// `outputs`: the directories the command writes, which a walk of a directory does not enter
/// (`expand_paths`).
fn sweep_sources(
    registry: &Registry,
    args: &SweepSourceArgs,
    outputs: &[&Path],
) -> Result<Vec<Source>, CliError> {
    if args.files.is_empty() && args.subjects.is_empty() {
        return Err(CliError::usage(
            "nothing to sweep: give scenario files or directories, or --subject NAME (or --subject all)",
        ));
    }
    let mut sources = Vec::new();
    if !args.files.is_empty() {
        for path in expand_paths(&args.files, outputs)? {
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
    // Refused as an unknown --subject is: a misspelt name left in the sweep the subject it
    // meant to skip (a host-backed one, say), with only a warning scrolled past.
    if let Some(name) = args
        .skip_subjects
        .iter()
        .find(|name| registry.get(name).is_none())
    {
        return Err(CliError::usage(format!(
            "--skip-subject {name}: unknown subject `{name}`; known: {}",
            known()
        )));
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

pub(super) fn sweep_command(registry: &Registry, args: SweepArgs) -> Result<i32, CliError> {
    if let Some(SweepAction::Merge(merge)) = args.action {
        let mismatched = if merge.allow_mismatch {
            sweep::summary::Mismatched::Allow
        } else {
            sweep::summary::Mismatched::Refuse
        };
        check_output_dir(&merge.out, "--out")?;
        let summary = sweep::summary::merge(&merge.dirs, &merge.out, mismatched)?;
        print_sweep_summary(&summary, SummaryCommand::Merge, merge.json, None, None);
        return Ok(sweep_exit(&summary));
    }
    if !(0.0..=100.0).contains(&args.recheck_percent) {
        return Err(CliError::usage(
            "--recheck-percent must be between 0 and 100",
        ));
    }
    check_output_dir(&args.out, "--out")?;
    let sources = sweep_sources(registry, &args.sources, &[&args.out])?;
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
    config.promote_to = args.promote_to.clone().or_else(|| {
        args.promote
            .then(|| PathBuf::from(sweep::promote::REGRESSIONS_DIR))
    });
    if let Some(dir) = &config.promote_to {
        // Before the sweep, not after it: its findings would otherwise be promoted nowhere.
        check_repository_dir(
            dir,
            sweep::promote::REGRESSIONS_DIR,
            Some("--promote-to"),
            Replayer::Repository,
        )?;
    }
    config.build_id = build_id();
    let report = sweep::sweep(registry, &config)?;
    for warning in &report.warnings[report.warnings_printed..] {
        eprintln!("warning: {warning}");
    }
    // The files' own seeds, when they are not the span the status line gives.
    let file_seeds = args
        .sources
        .file_seeds
        .as_ref()
        .filter(|_| !args.sources.files.is_empty());
    print_sweep_summary(
        &report.summary,
        SummaryCommand::Sweep,
        args.json,
        Some((report.ran, report.resumed)),
        file_seeds,
    );
    // Under the summary, as `sim promote` prints them; on stderr with --json, whose stdout is
    // the one JSON object.
    for line in &report.promoted {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if let Some(message) = report.promote_error {
        // The summary's internal errors still decide the code: they are the worse news.
        let code = match sweep_exit(&report.summary) {
            EXIT_INTERNAL => EXIT_INTERNAL,
            _ => EXIT_USAGE,
        };
        return Err(CliError { code, message });
    }
    Ok(sweep_exit(&report.summary))
}

/// 0 when every run of the plan is there and passed; 1 for findings. A summary that is not the
/// whole plan's (a merge missing a shard, or holding a sweep killed before it finished) is 2,
/// findings or not: its inputs cannot give the result asked for, as with other bad input, and 1
/// would claim a finding that may not exist; 3 would blame sim for a shard lost outside it.
/// A pair sim could not run for a panic outside the run (`internal_errors`, sim's bug or the
/// subject's) is 3, findings or not: no run can say anything of it, and every output was
/// written before.
fn sweep_exit(summary: &sweep::summary::Summary) -> i32 {
    if !summary.internal_errors.is_empty() {
        EXIT_INTERNAL
    } else if !summary.incomplete.is_empty() {
        EXIT_USAGE
    } else if summary.verdict == "pass" {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    }
}

fn print_sweep_summary(
    summary: &sweep::summary::Summary,
    command: SummaryCommand,
    json: bool,
    ran_resumed: Option<(usize, usize)>,
    file_seeds: Option<&Range<u64>>,
) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summaries serialize")
        );
        // The merge prints no warning of what `incomplete` says: with --json, whose stdout is
        // the one JSON object, stderr is where a person reads it, and the internal errors too.
        for line in internal_error_lines(summary, command)
            .into_iter()
            .chain(incomplete_lines(summary))
        {
            eprintln!("{line}");
        }
        return;
    }
    let how = match ran_resumed {
        Some((ran, resumed)) if resumed > 0 => format!(" ({ran} run now, {resumed} resumed)"),
        _ => String::new(),
    };
    // `--file-seeds` gives the files a range of their own: the span alone read as if the files
    // ran every seed of it.
    let files = match file_seeds {
        Some(seeds) if (seeds.start, seeds.end) != (summary.seeds.start, summary.seeds.end) => {
            format!("; scenario files {}..{}", seeds.start, seeds.end)
        }
        _ => String::new(),
    };
    println!(
        "sweep: {} runs{how} over {} seeds ({}..{}{files}) in {:.1} s ({:.1} runs/s); {} failed; {} rechecked for determinism, {} mismatches",
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
            defects_cell(&scenario.defects),
            scenario.runs.to_string(),
            scenario.runs_failed.to_string(),
            scenario_found(scenario),
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
            ("defects", Fit::Whole),
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
                defects_cell(&finding.defects),
                finding.count.to_string(),
                format_seed(finding.first_seed),
                finding.seeds_to_first.to_string(),
                ops,
            ]);
            // A summary built by this sim gives every finding one; a line with no command
            // would be nothing to paste.
            if let Some(replay) = finding
                .replay
                .as_ref()
                .or(finding.original_replay.as_ref())
                .filter(|replay| !replay.is_empty())
            {
                replays.push(format!("  {number} {replay}"));
            }
        }
        println!("{}", table.render());
        if !replays.is_empty() {
            println!("replay:");
        }
        for replay in replays {
            println!("{replay}");
        }
    }
    for line in internal_error_lines(summary, command)
        .into_iter()
        .chain(incomplete_lines(summary))
    {
        println!("{line}");
    }
    println!("report: {}", summary.report_html);
}

/// What a scenario's runs found, for its row (`ScenarioSummary::found`), a line each; `clean`
/// only when every pair ran and found nothing.
fn scenario_found(scenario: &sweep::summary::ScenarioSummary) -> String {
    let found = scenario.found();
    if found.is_empty() {
        "clean".to_string()
    } else {
        found.join("\n")
    }
}

/// Which command prints a summary: its notes say what that command's user can do next.
#[derive(Clone, Copy)]
enum SummaryCommand {
    Sweep,
    Merge,
}

/// The pairs sim could not run (`internal_errors`), as lines to print, apart from the findings:
/// each pair, the panic's message and where it was raised, and the command that replays the
/// pair; none when every pair ran.
fn internal_error_lines(summary: &sweep::summary::Summary, command: SummaryCommand) -> Vec<String> {
    if summary.internal_errors.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "INTERNAL ERROR: sim {} (exit 3); every other pair's result above stands:",
        summary.internal_errors_said()
    )];
    for error in &summary.internal_errors {
        let defects = match error.defects.as_slice() {
            [] => String::new(),
            defects => format!(" [{}]", defects.join(",")),
        };
        let mut message = error.message.lines();
        // Whose code panicked: a subject's says so itself; a repro that could not be written
        // is no panic.
        let whose =
            match error.subject_code || sweep::minimise::is_repro_write_failure(&error.message) {
                true => "",
                false => "sim's own code panicked: ",
            };
        lines.push(format!(
            "  - {}{defects} seed {}: {whose}{}",
            error.scenario,
            format_seed(error.seed),
            message.next().unwrap_or_default()
        ));
        lines.extend(message.map(|line| format!("    {}", line.trim_start())));
        lines.push(format!("    replay: {}", error.replay));
    }
    let (subjects, sims): (Vec<_>, Vec<_>) = (summary.internal_errors.iter())
        .filter(|error| !sweep::minimise::is_repro_write_failure(&error.message))
        .partition(|error| error.subject_code);
    if !sims.is_empty() {
        lines.push("note: a panic of sim's own code is a bug in sim: please report it with the replay command".to_string());
    }
    if !subjects.is_empty() {
        lines.push(
            "note: a panic of the subject's own code is a bug in the subject, not in sim"
                .to_string(),
        );
    }
    if summary
        .internal_errors
        .iter()
        .any(|error| error.minimising.is_none())
    {
        lines.push(match command {
            SummaryCommand::Sweep => "note: a resume runs these pairs again (and, once the bug is fixed, gives them their results)",
            SummaryCommand::Merge => "note: once the bug is fixed, resume the sweep that recorded a pair (its same command) to run it again, then merge again",
        }.to_string());
    }
    if summary
        .internal_errors
        .iter()
        .any(|error| error.minimising.is_some())
    {
        lines.push(match command {
            SummaryCommand::Sweep => "note: a finding that could not be minimised is reported above without a repro; a resume minimises it again",
            SummaryCommand::Merge => "note: a finding that could not be minimised is reported above without a repro; once the bug is fixed, resume the sweep that found it (its same command) to minimise it again, then merge again",
        }.to_string());
    }
    lines
}

/// What a merge's summary says is missing of its plan (`incomplete`), as lines to print; none
/// when the plan is whole.
fn incomplete_lines(summary: &sweep::summary::Summary) -> Vec<String> {
    if summary.incomplete.is_empty() {
        return Vec::new();
    }
    let heading = "INCOMPLETE: this merge is not the whole plan, so it does not pass (exit 2), whatever its runs found:";
    std::iter::once(heading.to_string())
        .chain(
            summary
                .incomplete
                .iter()
                .map(|missing| format!("  - {missing}")),
        )
        .collect()
}

pub(super) fn promote(registry: &Registry, args: PromoteArgs) -> Result<i32, CliError> {
    // Every file is read as a scenario before any is copied: a bad one (a sweep's NAME.json
    // record beside its repro, say) stops the command with nothing promoted, and is explained
    // as `sim replay` explains it.
    for file in &args.files {
        // A regression keeps what its file says for good: say now what looks wrong in it.
        load_scenario(registry, file)?;
    }
    check_repository_dir(
        &args.to,
        sweep::promote::REGRESSIONS_DIR,
        Some("--to"),
        Replayer::Repository,
    )?;
    let lines =
        sweep::promote::promote(registry, &args.files, &args.to).map_err(CliError::usage)?;
    for line in lines {
        println!("{line}");
    }
    Ok(EXIT_PASS)
}

pub(super) fn zoo(registry: &Registry, args: ZooArgs) -> Result<i32, CliError> {
    let mut files = Vec::new();
    for path in expand_paths(&args.files, &[])? {
        let scenario = load_scenario(registry, &path)?;
        files.push((path.display().to_string(), scenario));
    }
    // A file the host cannot run (its real memory refused) is said, exit 3, before anything
    // runs, as `sim sweep` says it, where its run's panic in the subject's `new` read as the
    // file's finding: NOT CLEAN, exit 1.
    for (file, scenario) in &files {
        check_host(file, scenario.as_ref())?;
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

pub(super) fn detect(registry: &Registry, args: DetectArgs) -> Result<i32, CliError> {
    let detection = sweep::measure::detect(
        registry,
        args.seeds.clone(),
        args.jobs.unwrap_or_else(default_jobs),
        &args.dir,
        progress_mode(),
    )?;
    let (table, not_expected) = detection_table(&detection);
    println!("{}", table.render());
    for note in not_expected {
        println!("{note}");
    }
    let text = serde_json::to_string_pretty(&detection).expect("json") + "\n";
    write_file(&args.out, text.as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(if detection.all_detected() {
        EXIT_PASS
    } else {
        EXIT_FINDINGS
    })
}

/// The table `sim detect` prints, one row per subject's baseline and per defect, and a `note:`
/// for each defect missed that generated scenarios are not expected to find.
pub(super) fn detection_table(detection: &sweep::measure::Detection) -> (FittedTable, Vec<String>) {
    let mut table = FittedTable::new(vec![
        ("subject", Fit::Whole),
        ("defect", Fit::Whole),
        ("detected", Fit::Wrap),
        ("seeds to first", Fit::Whole),
        ("minimised ops", Fit::Whole),
        ("wall s", Fit::Whole),
        ("signatures", Fit::Whole),
    ]);
    let mut not_expected = Vec::new();
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
            // `expected` says whether the miss counts (as `all_detected` reads it); the note
            // says why it does not.
            let detected = match (defect.detected, defect.expected) {
                (true, _) => "yes",
                (false, true) => "NO",
                (false, false) => {
                    if let Some(why) =
                        sweep::measure::not_reached_by_generated(&subject.subject, &defect.defect)
                    {
                        not_expected.push(format!(
                            "note: {} {}: not expected from generated scenarios: {why}",
                            subject.subject, defect.defect
                        ));
                    }
                    "no (not expected)"
                }
            };
            table.add_row(vec![
                subject.subject.clone(),
                defect.defect.clone(),
                detected.into(),
                optional(defect.seeds_to_first_finding),
                optional(defect.minimised_ops),
                format!("{:.2}", defect.wall_seconds),
                defect.signatures.join("\n"),
            ]);
        }
    }
    (table, not_expected)
}

/// Where `sim sweep-scaling` sweeps, a round at a time.
const SCALING_OUT: &str = "target/sweep/scaling";

pub(super) fn sweep_scaling(registry: &Registry, args: ScalingArgs) -> Result<i32, CliError> {
    let sources = sweep_sources(registry, &args.sources, &[Path::new(SCALING_OUT)])?;
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
        Path::new(SCALING_OUT),
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
