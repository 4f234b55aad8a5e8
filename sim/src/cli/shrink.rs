//! `sim shrink`: the smallest scenario that still fails with the same signature.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::RunOptions;
use crate::seed::parse_seed;

use super::run::rerun_command;
use super::{
    CliError, DefectArgs, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_PASS, check_defects, check_host,
    check_output_file, check_output_is_no_input, load_scenario, print_warnings,
    write_or_print_shrunk,
};

#[derive(Args, Debug)]
pub(super) struct ShrinkArgs {
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
    // Prose on a comment line: a control character in the path would end the comment.
    let source = args.file.display().to_string();
    let source = report::one_line(&source);
    let mut header = format!(
        "# Shrunk by `{} shrink` from {source} for `{signature}` ({} ops -> {} ops{}).\n",
        crate::scenario::program(),
        shrunk.ops_before,
        shrunk.ops_after,
        if about_its_defects {
            "; it passes with every defect off"
        } else {
            ""
        }
    );
    if let Some(out) = &args.out {
        header.push_str(&report::replay_line(out));
    }
    let written_by_the_tool = [
        "# Shrunk by ",
        report::REPLAY_LINE_PREFIX,
        "# Repro written by ",
        "# Minimised from ",
        "# Imported by ",
        "# The comments of ",
    ];
    // Read as `load_scenario` read it, no further than a scenario may go.
    let text = report::read_scenario_file(&args.file)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
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

pub(super) fn shrink(registry: &Registry, args: ShrinkArgs) -> Result<i32, CliError> {
    let mut scenario = load_scenario(registry, &args.file)?;
    let defects = args.defects.resolve();
    check_defects(registry, &args.file, scenario.as_ref(), &defects)?;
    if let Some(out) = &args.out {
        check_output_file(out, "--out")?;
        // The shrink would replace the scenario it was shrunk from, and its header would name
        // that file as its source.
        check_output_is_no_input(Some(out), "--out", "the shrunk scenario", &[&args.file])?;
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
    let body = pinned.to_toml().map_err(|why| CliError {
        code: EXIT_INTERNAL,
        message: format!(
            "{}: the shrunk scenario was not written: {why}",
            args.file.display()
        ),
    })?;
    let text = format!(
        "{}{body}",
        shrunk_header(&args, &signature, &shrunk, about_its_defects),
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
            write_or_print_shrunk(path, &text, "the shrunk scenario")?;
            eprintln!(
                "wrote {}; replay with `{}`",
                path.display(),
                report::replay_command(path)
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
pub(super) fn note_shrink_bound(shrunk: &crate::shrink::Shrunk, runs_max: u64) {
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
