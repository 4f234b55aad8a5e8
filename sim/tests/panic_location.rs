//! A subject that panics in an op: the `panic` finding names where in the subject's source it
//! panicked (`panicked at: FILE:LINE:COLUMN`, `"panicked_at"` in JSON), in process and in the
//! child process of a host-backed run, without changing the finding's signature; and an internal
//! error of the CLI names where it panicked. This file is a test binary of its own: it installs a
//! panic hook (`sim::subject::install_panic_location_hook`), which is process-wide.

mod support;

use std::sync::Once;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::{FindingKind, SourceLocation};
use sim::os::{Os, Tid};
use sim::registry::{Registry, erase};
use sim::runner::{Outcome, RunOptions};
use sim::subject::{Config, Names, OpDoc, Step, Subject, SubjectInfo};
use support::rerun_test_in_child;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum FragileOp {
    Touch,
    /// Indexes past the end of an empty slice.
    Index,
    /// `unwrap`s an error from the OS.
    Unwrap,
    /// Panics in `validate`, which parsing calls: outside any run.
    BreakValidation,
}

/// The line of the index in `index_past_the_end`, which panics.
const INDEX_LINE: u32 = line!() + 2;
fn index_past_the_end(bytes: &[u8]) -> u8 {
    bytes[3]
}

/// The line of the `unwrap` in `unwrap_an_os_error`, which panics.
const UNWRAP_LINE: u32 = line!() + 2;
fn unwrap_an_os_error() -> std::fs::File {
    std::fs::File::open("/nonexistent/sim-panic-location").unwrap()
}

/// The line of the `assert!` in `check_op`, which `validate` calls, and which panics.
const VALIDATE_LINE: u32 = line!() + 2;
fn check_op(op: &FragileOp) {
    assert!(*op != FragileOp::BreakValidation, "validation broke");
}

/// Panics where its ops say; runs in a child process when `HOST_BACKED`.
struct Fragile<const HOST_BACKED: bool>;

impl<const HOST_BACKED: bool> Subject for Fragile<HOST_BACKED> {
    type Op = FragileOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: if HOST_BACKED {
                "fragile-host"
            } else {
                "fragile"
            },
            summary: "panics in its ops",
            ops: ["touch", "index", "unwrap", "break-validation"]
                .map(|name| OpDoc {
                    name,
                    summary: "see FragileOp",
                })
                .to_vec(),
            host_backed: HOST_BACKED,
            ..Default::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        Fragile
    }

    fn op_name(op: &FragileOp) -> &'static str {
        match op {
            FragileOp::Touch => "touch",
            FragileOp::Index => "index",
            FragileOp::Unwrap => "unwrap",
            FragileOp::BreakValidation => "break-validation",
        }
    }

    fn validate(op: &FragileOp, _names: &mut Names) -> Result<(), String> {
        check_op(op);
        Ok(())
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, op: &FragileOp) -> Step<Self> {
        match op {
            FragileOp::Index => {
                index_past_the_end(&[]);
            }
            FragileOp::Unwrap => {
                unwrap_an_os_error();
            }
            FragileOp::Touch | FragileOp::BreakValidation => {}
        }
        Step::Done
    }
}

fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(sim::subject::install_panic_location_hook);
}

fn scenario(subject: &str, op: &str) -> String {
    format!(
        "name = \"f\"\nsubject = \"{subject}\"\n[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"touch\" }}, {{ op = \"{op}\" }}]\n"
    )
}

fn run<const HOST_BACKED: bool>(op: &str) -> Outcome {
    let name = Fragile::<HOST_BACKED>::info().name;
    let parsed =
        sim::scenario::parse::parse::<Fragile<HOST_BACKED>>("fragile.toml", &scenario(name, op))
            .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    sim::runner::run::<Fragile<HOST_BACKED>>(&parsed, RunOptions::default())
}

fn here(line: u32) -> impl Fn(&SourceLocation) -> bool {
    move |location| location.file == file!() && location.line == line && location.column > 0
}

#[test]
fn a_panic_in_an_op_names_the_file_and_line_where_the_subject_panicked() {
    install_hook();
    let outcome = run::<false>("index");
    assert_eq!(outcome.signatures(), vec!["panic:subject:index"]);
    let finding = &outcome.findings[0];
    assert_eq!(finding.kind, FindingKind::Panic);
    assert!(
        finding.headline.contains("index out of bounds"),
        "{finding:?}"
    );
    let location = finding.panicked_at.as_ref().expect("a recorded location");
    assert!(here(INDEX_LINE)(location), "{location}");

    // In the text report, under the op it panicked during.
    let report = sim::report::render_finding(finding, &outcome, "replay");
    let line = format!("  panicked at: {location}\n");
    assert!(report.contains(&line), "{report}");
    assert!(
        report.find("  during: op #2 `index`") < report.find(&line),
        "{report}"
    );
    assert!(
        report.contains("note: signature `panic:subject:index`"),
        "{report}"
    );

    // In JSON: a key of its own, beside every key the finding had.
    let json = sim::report::finding_json(finding, &outcome);
    assert_eq!(json["panicked_at"]["file"], file!());
    assert_eq!(json["panicked_at"]["line"], INDEX_LINE);
    assert_eq!(json["panicked_at"]["column"], location.column);
    for key in [
        "kind",
        "resource",
        "lifecycle",
        "lifecycle_index",
        "repetition",
        "site",
        "signature",
        "headline",
        "details",
        "notes",
        "series",
    ] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["signature"], "panic:subject:index");

    // The location is taken with the finding: a run that does not panic finds none left over.
    assert_eq!(sim::subject::take_panic_location(), None);
    assert!(run::<false>("touch").passed());
}

#[test]
fn a_finding_that_is_no_panic_has_no_location() {
    install_hook();
    // Two ops under a budget of one step: a `budget` finding.
    let text = format!("{}[limits]\nsteps_max = 1\n", scenario("fragile", "touch"));
    let parsed = sim::scenario::parse::parse::<Fragile<false>>("fragile.toml", &text)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let outcome = sim::runner::run::<Fragile<false>>(&parsed, RunOptions::default());
    assert!(!outcome.findings.is_empty());
    assert!(
        outcome
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::Panic && f.panicked_at.is_none()),
        "{:?}",
        outcome.findings
    );
}

#[test]
fn an_unwrap_in_a_host_backed_subject_names_its_line_across_the_child_process() {
    install_hook();
    let outcome = run::<true>("unwrap");
    assert_eq!(outcome.signatures(), vec!["panic:subject:unwrap"]);
    let finding = &outcome.findings[0];
    assert!(
        finding.headline.contains("called `Result::unwrap()`"),
        "{finding:?}"
    );
    let location = finding.panicked_at.as_ref().expect("the child's location");
    assert!(here(UNWRAP_LINE)(location), "{location}");
    assert_eq!(
        finding.detail_text("panicked at"),
        Some(location.to_string().as_str())
    );
}

/// `sim ARGS` with `fragile` registered, run by the test `name` as a child process of this one
/// (`SIM_PANIC_LOCATION_CHILD` holds the arguments, one a line), since `main_with_args` prints
/// to stderr: the child's exit code and stderr. In the child, the call exits with the CLI's code.
fn fragile_cli(name: &str, args: &[&str]) -> (i32, String) {
    const CHILD: &str = "SIM_PANIC_LOCATION_CHILD";
    if let Ok(args) = std::env::var(CHILD) {
        install_hook();
        let registry = Registry::builtin().with(erase::<Fragile<false>>());
        let argv = std::iter::once("sim").chain(args.lines());
        std::process::exit(sim::cli::main_with_args(registry, argv));
    }
    let (code, _, stderr) = rerun_test_in_child(name, CHILD, args.join("\n"));
    (code, stderr)
}

/// A panic outside any run (here in a subject's `validate`, while the file is read) is said as
/// the subject's own, naming where it panicked and the op it was checking; exit 3, as an internal
/// error.
#[test]
fn an_internal_error_names_where_it_panicked() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("panic_location");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("break.toml");
    std::fs::write(&file, scenario("fragile", "break-validation")).unwrap();
    let file = file.display().to_string();
    let (code, stderr) = fragile_cli("an_internal_error_names_where_it_panicked", &["run", &file]);
    assert_eq!(code, 3, "{stderr}");
    let expected = format!(
        "error: subject `fragile`'s own code panicked: its `validate_op`, checking this op: \
         validation broke (panicked at {}:{VALIDATE_LINE}:",
        file!()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("break.toml:5:26"), "at the op: {stderr}");
}

/// `sim list` makes its example ops with the subject's own code (`Arbitrary`, `validate_op`,
/// `op_name`): a panic there (here `validate` of a generated `break-validation`) is said as the
/// subject's, which method and where, exit 3; it was said as a bug in sim.
#[test]
fn a_panic_of_the_subjects_code_in_sim_list_is_said_as_the_subjects() {
    let (code, stderr) = fragile_cli(
        "a_panic_of_the_subjects_code_in_sim_list_is_said_as_the_subjects",
        &["list", "fragile"],
    );
    assert_eq!(code, 3, "{stderr}");
    let expected = format!(
        "subject `fragile`'s own code panicked: its `validate_op`, making an example op for \
         `list`: validation broke (panicked at {}:{VALIDATE_LINE}:",
        file!()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("note: this is a bug in the subject's `validate_op`, not in sim"),
        "{stderr}"
    );
    assert!(!stderr.contains("bug in sim,"), "{stderr}");
}
