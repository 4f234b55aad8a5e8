//! `sim import-crash`: a fuzzer's crash artifact into a minimised regression file (or, for the
//! parser's target, a seed of its corpus).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::RunOptions;

use super::shrink::note_shrink_bound;
use super::{
    CliError, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_PASS, Replayer, check_host, check_output_dir,
    check_repository_dir, write_file, write_or_print_shrunk,
};
use crate::sweep::promote::open_dir;

/// Where `sim import-crash` writes by default: the repository's own corpus, which `cargo test`
/// replays. Relative to the current directory, so they are used only where they already exist
/// (a run from another directory would fill a corpus no test reads).
const DEFAULT_REGRESSIONS: &str = crate::sweep::promote::REGRESSIONS_DIR;
const DEFAULT_PARSER_CORPUS: &str = "corpus/scenario-parser";

#[derive(Args, Debug)]
pub(super) struct ImportCrashArgs {
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

/// A short stable name for a signature in a file name: FNV-1a, 32 bits, in hex.
fn signature_tag(signature: &str) -> String {
    format!("{:08x}", crate::trace::hash_str(signature) as u32)
}

/// How `import-crash` takes a name without `--fuzz-target` or `--subject`, where a built-in fuzz
/// target and a subject of the binary's own both have it. `ImportTarget::resolve` follows it,
/// and `list --fuzz-targets` says on the two rows what to type for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SharedName {
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
    pub(super) fn of(registry: &Registry, name: &str) -> Option<SharedName> {
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
    pub(super) fn target_note(self, name: &str) -> String {
        let bare = match self {
            SharedName::MeansOwnSubject => "this binary's own subject",
            SharedName::Ambiguous => "refused: this binary has a subject of the name too",
        };
        format!(
            "(import-crash --fuzz-target {name} ARTIFACT; `import-crash {name}` alone is {bare}) "
        )
    }

    /// The same before the summary of the binary's own subject of the name.
    pub(super) fn subject_note(self, name: &str) -> String {
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
pub(super) enum ImportTarget {
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
    pub(super) fn resolve(
        registry: &Registry,
        args: &ImportCrashArgs,
    ) -> Result<ImportTarget, CliError> {
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

    pub(super) fn check_defects(
        self,
        registry: &Registry,
        defects: &[String],
    ) -> Result<(), String> {
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
pub(super) fn nothing_to_import(file: &Path, defects: &[String], builtin_target: bool) -> String {
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

/// The most a crash artifact may have: as much as a scenario file (`SOURCE_BYTES_MAX`, 4 MiB),
/// which the parser's target reads an artifact as. libFuzzer's inputs are far smaller (this
/// project fuzzes with `-max_len=256`, `fuzz/fuzz.sh`'s `MAX_LEN`), so the bound is generous;
/// without one, `/dev/zero` given as the artifact was read until memory ran out.
pub const ARTIFACT_BYTES_MAX: u64 = crate::scenario::parse::SOURCE_BYTES_MAX as u64;

/// The bytes of the crash artifact at `path`, at most `ARTIFACT_BYTES_MAX` of them: a larger
/// file is bad input (exit 2) that names the file and the bound.
fn read_artifact(path: &Path) -> Result<Vec<u8>, CliError> {
    report::read_at_most(path, ARTIFACT_BYTES_MAX).map_err(|error| {
        CliError::usage(match error {
            report::ReadAtMostError::Unreadable(error) => {
                format!("{}: cannot read: {error}", path.display())
            }
            report::ReadAtMostError::TooLarge(size) => format!(
                "{}: {}; a crash artifact is at most {ARTIFACT_BYTES_MAX} bytes (a fuzz target's input is far smaller: this project fuzzes with -max_len=256)",
                path.display(),
                match size {
                    Some(size) => format!("file is {size} bytes"),
                    None => format!("more than {ARTIFACT_BYTES_MAX} bytes"),
                }
            ),
        })
    })
}

/// `sim import-crash TARGET FILE`: decodes the artifact exactly as the fuzz target did, runs it
/// with the same defects, shrinks it while its first finding's signature still appears, and writes
/// the result (with `[expect] signatures`) into the regression corpus, which `cargo test` replays.
/// TARGET is a built-in fuzz target or the name of any subject of `registry`: a binary of one's
/// own imports what its fuzz target (`fuzzing::run_subject_bytes`) found, decoded the same way
/// (`ImportTarget::resolve` says which a name means where it could be either).
pub(super) fn import_crash(registry: &Registry, args: ImportCrashArgs) -> Result<i32, CliError> {
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
    let bytes = read_artifact(&args.file)?;
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
        let replayer = match target {
            ImportTarget::Fuzz(_) => Replayer::Repository,
            ImportTarget::Subject(_) => Replayer::OwnCrate,
        };
        check_repository_dir(out, default, Some(flag), replayer)?;
        if target.subject().is_some() {
            // Open findings go in `open/` under it.
            check_output_dir(&args.out, "--out")?;
            check_output_dir(&open_dir(&args.out), "--out")?;
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
    // Asked before shrinking, which may take up to --runs-max runs: a regression that pins this
    // finding under any name (a sweep's promotion names files otherwise) already keeps it.
    if let Some(pinned) =
        crate::sweep::promote::pinned_by(registry, &args.out, subject, &defects, &signature)
    {
        println!(
            "already recorded: {} pins `{signature}` with defects [{}]; nothing written",
            pinned.display(),
            defects.join(",")
        );
        return Ok(EXIT_FINDINGS);
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
        open_dir(&args.out)
    } else {
        args.out.clone()
    };
    let path = dir.join(format!(
        "{subject}-{defects_part}-{}-{}.toml",
        first.kind.name(),
        signature_tag(&signature)
    ));
    // A file of that name that pins something else (or does not parse) is kept as it is.
    if path.exists() {
        println!(
            "{}: already there, and does not pin `{signature}` with defects [{}] (or does not parse); kept it, and wrote nothing",
            path.display(),
            defects.join(",")
        );
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
    eprintln!(
        "shrunk `{signature}`: {} ops → {} ops in {} runs",
        shrunk.ops_before, shrunk.ops_after, shrunk.runs
    );
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
            report::one_line(&args.out.display().to_string())
        ),
        (ImportTarget::Subject(_), false) => "Replayed by `sim::fuzzing::replay_regressions` (your `cargo test`),\n\
         # the run must still show it with its defects on and pass with them off."
            .to_string(),
    };
    // The command as run, defects included, so that it imports the same file again.
    let imported_by = fuzzing::import_command_of(
        &report::shell_word(crate::scenario::program()),
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
    let body = regression.to_toml().map_err(|why| CliError {
        code: EXIT_INTERNAL,
        message: format!(
            "{}: the regression was not written: {why}\n\
             note: the artifact {} is unchanged",
            path.display(),
            args.file.display()
        ),
    })?;
    let text = format!(
        "# Imported by `{imported_by}` from a fuzzer crash.\n\
         # Finding `{signature}`. {what}\n\
         {}{}",
        report::replay_line(&path),
        body
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
    write_or_print_shrunk(&path, &text, "the regression")?;
    println!(
        "wrote {}; replay with `{}`",
        path.display(),
        report::replay_command(&path)
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
