//! `sim list`: subjects with their ops, defects, caches and examples, and `--fuzz-targets`.

use clap::Args;

use crate::registry::Registry;
use crate::scenario::examples::OpExample;
use crate::subject::SubjectInfo;

use super::tables::{Fit, FittedTable};
use super::{CliError, EXIT_PASS};

use super::import_crash::SharedName;

#[derive(Args, Debug)]
pub(super) struct ListArgs {
    /// Only these subjects (default: every one), in the order given.
    #[arg(value_name = "SUBJECT", conflicts_with = "fuzz_targets")]
    subjects: Vec<String>,
    /// Print the subjects as one JSON list on stdout (each op with its `example`, or null); with
    /// `--fuzz-targets`, the targets (`name`, `expect`, `subject` or null, `defects`,
    /// `import_note` where a subject shares the name, `summary`).
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

pub(super) fn list(registry: &Registry, args: ListArgs) -> Result<i32, CliError> {
    if args.fuzz_targets {
        if args.json {
            let rows = fuzz_target_rows(registry);
            println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        } else {
            for line in fuzz_target_lines(registry) {
                println!("{line}");
            }
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

/// A row of `list --fuzz-targets`: a built-in fuzz target, or a subject of a binary of one's own
/// (which `import-crash` takes too).
#[derive(serde::Serialize)]
struct FuzzTargetRow {
    name: &'static str,
    /// `must-pass`, or `must-fail` for the canary.
    expect: &'static str,
    /// The subject it runs; none for the parser's target and the canary.
    subject: Option<&'static str>,
    defects: Vec<&'static str>,
    /// Where a built-in target and a subject share the name: the `import-crash` command that
    /// takes this row (`SharedName`); else empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    import_note: String,
    summary: String,
}

impl FuzzTargetRow {
    /// Tab-separated: name, expectation, subject (or `-`), defects (comma-separated, or `-`),
    /// the note and summary.
    fn line(&self) -> String {
        let defects = if self.defects.is_empty() {
            "-".to_string()
        } else {
            self.defects.join(",")
        };
        format!(
            "{}\t{}\t{}\t{defects}\t{}{}",
            self.name,
            self.expect,
            self.subject.unwrap_or("-"),
            self.import_note,
            self.summary
        )
    }
}

fn fuzz_target_rows(registry: &Registry) -> Vec<FuzzTargetRow> {
    let mut rows = Vec::new();
    for target in crate::fuzzing::TARGETS {
        // The built-in subject's, which the target runs whatever the registry holds under its
        // name (`ImportTarget::entry`).
        let defects = target
            .subject()
            .and_then(|name| crate::fuzzing::registry().get(name))
            .map_or_else(Vec::new, |entry| entry.info().defect_names());
        rows.push(FuzzTargetRow {
            name: target.name,
            expect: if target.must_fail() {
                "must-fail"
            } else {
                "must-pass"
            },
            subject: target.subject(),
            defects,
            import_note: SharedName::of(registry, target.name)
                .map(|shared| shared.target_note(target.name))
                .unwrap_or_default(),
            summary: target.summary.to_string(),
        });
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
        rows.push(FuzzTargetRow {
            name: info.name,
            expect: "must-pass",
            subject: Some(info.name),
            defects: info.defect_names(),
            import_note: SharedName::of(registry, info.name)
                .map(|shared| shared.subject_note(info.name))
                .unwrap_or_default(),
            summary: format!(
                "your subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): {}",
                info.summary
            ),
        });
    }
    rows
}

/// The lines `list --fuzz-targets` prints, one per row.
pub(super) fn fuzz_target_lines(registry: &Registry) -> Vec<String> {
    fuzz_target_rows(registry)
        .iter()
        .map(FuzzTargetRow::line)
        .collect()
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
