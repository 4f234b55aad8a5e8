//! What README section 3b ("A real crate on real bytes") tells a subject of one's own, checked:
//! it must declare `host_backed`; then real code run with `Os::lend`, whose callbacks reach the
//! OS with `with_lent`, writing through `Os::host_ptr` into a page its platform released is a
//! `fault` finding that names the code `lend` named; and a callback that reaches for the OS when
//! no lend is running is a `panic` finding of its op, not the end of the process.

mod support;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::FindingKind;
use sim::os::{Os, PAGE_SIZE, Tid, with_lent};
use sim::registry::{Registry, erase};
use sim::runner::{Outcome, RunOptions};
use sim::subject::{Config, Names, OpDoc, Step, Subject, SubjectInfo};
use support::{scratch_dir, write_file};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum ArenaOp {
    Touch,
    /// Real code that gets a page from its platform layer, writes it through its real pointer,
    /// has the platform release it, and writes it again: what an allocator crate does when its
    /// platform layer gives memory back early.
    WriteAfterRelease,
    /// A platform callback run outside any lend: the subject forgot `Os::lend`.
    CallbackOutsideLend,
}

/// A subject that backs its memory with the host arena, as a real allocator crate's platform
/// layer would, and declares `host_backed` only when `DECLARED` says so; its drop panics when
/// `DROP_PANICS` says so.
struct ArenaUser<const DECLARED: bool, const DROP_PANICS: bool = false>;

impl<const DECLARED: bool, const DROP_PANICS: bool> Drop for ArenaUser<DECLARED, DROP_PANICS> {
    fn drop(&mut self) {
        assert!(!DROP_PANICS, "the arena user's drop broke");
    }
}

impl<const DECLARED: bool, const DROP_PANICS: bool> Subject for ArenaUser<DECLARED, DROP_PANICS> {
    type Op = ArenaOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: if DECLARED {
                "arena-declared"
            } else {
                "arena-undeclared"
            },
            summary: "enables the host arena",
            ops: vec![
                OpDoc {
                    name: "touch",
                    summary: "does nothing",
                },
                OpDoc {
                    name: "write-after-release",
                    summary: "writes a page through its real pointer after releasing it",
                },
                OpDoc {
                    name: "callback-outside-lend",
                    summary: "reaches for the OS from a platform callback with nothing lent",
                },
            ],
            host_backed: DECLARED,
            ..Default::default()
        }
    }

    fn new(os: &mut Os, _config: &Config) -> Self {
        match os.enable_host_arena(1 << 20) {
            Ok(()) => assert!(DECLARED, "a host arena made for an undeclared subject"),
            // Ignored, as a careless subject would: the runner reports the refusal itself.
            Err(_) if !DECLARED => assert!(!os.host_arena_enabled()),
            Err(error) => panic!("a 1 MiB host arena: {error}"),
        }
        ArenaUser::<DECLARED, DROP_PANICS>
    }

    fn op_name(op: &ArenaOp) -> &'static str {
        match op {
            ArenaOp::Touch => "touch",
            ArenaOp::WriteAfterRelease => "write-after-release",
            ArenaOp::CallbackOutsideLend => "callback-outside-lend",
        }
    }

    fn validate(_op: &ArenaOp, _names: &mut Names) -> Result<(), String> {
        Ok(())
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, op: &ArenaOp) -> Step<Self> {
        match op {
            ArenaOp::Touch => {}
            ArenaOp::WriteAfterRelease => os.lend("crate_write", crate_write_after_release),
            ArenaOp::CallbackOutsideLend => {
                platform_page();
            }
        }
        Step::Done
    }
}

/// A platform layer's callback: a committed page from the lent OS, as its simulated address and
/// its real pointer.
fn platform_page() -> (u64, *mut u8) {
    with_lent(|os| {
        let page = os.reserve(PAGE_SIZE, 0, "crate_reserve").expect("a page");
        os.commit(page, PAGE_SIZE, "crate_reserve")
            .expect("committed");
        (
            page,
            os.host_ptr(page).expect("the host arena backs the page"),
        )
    })
}

/// The real code: it has no `&mut Os`, only its platform callbacks.
fn crate_write_after_release() {
    let (page, real) = platform_page();
    // SAFETY: the page is committed and ours; the second write is the bug under test, which the
    // arena makes a crash that the isolated run turns into a finding.
    unsafe { real.write_volatile(1) };
    with_lent(|os| os.release(page, PAGE_SIZE, "crate_release")).expect("released");
    unsafe { real.write_volatile(2) };
}

/// The text of a scenario of `subject` whose one lifecycle runs the one op `op`.
fn scenario(subject: &str, op: &str) -> String {
    format!(
        "name = \"one-op\"\nsubject = \"{subject}\"\nseed = 1\n\n[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"{op}\" }}]\n"
    )
}

/// Runs a scenario of the one op `op` on `ArenaUser<DECLARED>` with the default options.
fn run_one_op<const DECLARED: bool>(op: &str) -> Outcome {
    let source = scenario(ArenaUser::<DECLARED>::info().name, op);
    let parsed = sim::scenario::parse::parse::<ArenaUser<DECLARED>>(&format!("{op}.toml"), &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    sim::runner::run::<ArenaUser<DECLARED>>(&parsed, RunOptions::default())
}

/// Without `host_backed`, a crash of real code on that memory would end the tool with no report
/// (SIGSEGV in `sim run`'s own process): the OS refuses the arena to such a subject, so that no
/// real reservation is made in the tool's process, and the runner reports the refusal at once,
/// saying what to set, whatever `new` did with it (this one ignores it), instead of passing runs
/// until the first crash.
/// That `headline` says `asker` asked for the host arena and what to set.
fn assert_told_to_declare(headline: &str, asker: &str) {
    assert!(
        headline.starts_with(&format!("{asker} asked for the host arena"))
            && headline.contains("set `host_backed: true`"),
        "{headline}"
    );
}

#[test]
fn a_subject_that_enables_the_host_arena_without_declaring_it_is_told_to() {
    let outcome = run_one_op::<false>("touch");
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
    let finding = &outcome.findings[0];
    assert_eq!(finding.kind, FindingKind::Panic);
    assert_told_to_declare(&finding.headline, "`arena-undeclared::new`");
    assert_eq!(finding.signature(), "panic:subject:new");
    assert_eq!(outcome.ops, 0, "no op runs on an undeclared host arena");
}

/// The subject `new` made is dropped with its panic caught on the refusal's path too: its drop's
/// panic is a note on the refusal's finding, where it escaped the run as sim's own bug.
#[test]
fn the_drop_of_a_subject_refused_the_host_arena_is_caught_and_noted() {
    let source = scenario("arena-undeclared", "touch");
    let parsed = sim::scenario::parse::parse::<ArenaUser<false, true>>("touch.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let outcome = sim::runner::run::<ArenaUser<false, true>>(&parsed, RunOptions::default());
    assert_eq!(
        outcome.signatures(),
        ["panic:subject:new"],
        "{:?}",
        outcome.findings
    );
    let notes = &outcome.findings[0].notes;
    assert!(
        notes
            .iter()
            .any(|note| note.contains("drop panicked too") && note.contains("drop broke")),
        "{notes:?}"
    );
}

/// A subject that asks for the host arena only in its op, undeclared, and goes on with the
/// error: the runner hears of no refusal in `new`, so the OS reports it at the op.
struct LateArena;

impl Subject for LateArena {
    type Op = ArenaOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "late-arena",
            summary: "asks for the host arena in an op",
            ops: vec![OpDoc {
                name: "touch",
                summary: "asks for the host arena",
            }],
            ..Default::default()
        }
    }

    fn new(_os: &mut Os, _config: &Config) -> Self {
        LateArena
    }

    fn op_name(_op: &ArenaOp) -> &'static str {
        "touch"
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, _op: &ArenaOp) -> Step<Self> {
        assert!(os.enable_host_arena(1 << 20).is_err());
        assert!(!os.host_arena_enabled());
        Step::Done
    }
}

#[test]
fn a_subject_that_asks_for_the_host_arena_in_an_op_is_told_at_the_op() {
    let source = scenario("late-arena", "touch");
    let parsed = sim::scenario::parse::parse::<LateArena>("late.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let outcome = sim::runner::run::<LateArena>(&parsed, RunOptions::default());
    assert_eq!(outcome.signatures(), vec!["panic:subject:touch"]);
    let finding = &outcome.findings[0];
    assert_told_to_declare(&finding.headline, "op `touch` of `late-arena`");
    let during = &finding.details[0];
    assert_eq!(during.text, "op #1 `touch` on thread 0");
    assert_eq!(during.op.as_ref().map(|op| op.index), Some(1));
}

#[test]
fn a_subject_that_declares_its_host_arena_runs() {
    let outcome = run_one_op::<true>("touch");
    assert!(outcome.passed(), "{:?}", outcome.findings);
    assert_eq!(outcome.ops, 1);
}

/// The pattern section 3b gives, end to end: a real write into a released page, in a declared
/// subject's isolated run, is a `fault` finding that names the code `lend` named as the toucher
/// and the release its callback made as the releaser.
#[test]
fn real_code_touching_a_released_page_is_a_fault_naming_the_code() {
    let outcome = run_one_op::<true>("write-after-release");
    assert_eq!(
        outcome.signatures(),
        vec!["fault:released page:crate_write"],
        "{:?}",
        outcome.findings
    );
    let report = sim::report::render_finding(&outcome.findings[0], &outcome, "replay");
    assert!(report.contains("→ crate_release"), "{report}");
}

/// A host-backed subject of one's own gets the fuzz-to-regression path: its fuzz target's
/// crash (`run_subject_bytes`, which runs it isolated) imports by the subject's name through a
/// binary of one's own, isolated too (a write into a released page in this process would end
/// the test), and lands in `open/`, since it fails with every defect off; the directory replays.
#[test]
fn a_crash_of_real_code_imports_isolated_by_the_subjects_name() {
    let registry = || Registry::builtin().with(erase::<ArenaUser<true>>());
    let bytes = (0u8..=255)
        .map(|byte| vec![byte; 16])
        .find(|bytes| sim::fuzzing::run_subject_bytes::<ArenaUser<true>>(bytes, &[]).is_err())
        .expect("some input writes after a release");
    let dir = scratch_dir("host-backed-import");
    let artifact = write_file(&dir, "crash-arena", &bytes);
    let out = dir.join("regressions");
    let code = sim::cli::main_with_args(
        registry(),
        [
            "my-binary",
            "import-crash",
            "arena-declared",
            &artifact.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
    );
    assert_eq!(code, 1, "a finding, imported");
    let open: Vec<_> = std::fs::read_dir(out.join("open"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    let source = std::fs::read_to_string(&open[0]).unwrap();
    assert!(
        source.contains("signatures = [\"fault:released page:crate_write\"]"),
        "{source}"
    );
    assert_eq!(
        sim::fuzzing::replay_regressions(&registry(), &out).unwrap(),
        1,
        "the open finding still fails, as it must"
    );
}

/// A callback that reaches for the OS outside `Os::lend` is the subject's bug: a `panic` finding
/// that says what was missing and names the op, not a crash of the child (which would be a
/// `fault` finding about a null pointer) nor of the tool.
#[test]
fn a_callback_outside_a_lend_is_a_panic_finding_of_its_op() {
    let outcome = run_one_op::<true>("callback-outside-lend");
    assert_eq!(
        outcome.signatures(),
        vec!["panic:subject:callback-outside-lend"],
        "{:?}",
        outcome.findings
    );
    let report = sim::report::render_finding(&outcome.findings[0], &outcome, "replay");
    assert!(
        report.contains("with_lent called outside Os::lend"),
        "{report}"
    );
    assert!(report.contains("op #1 `callback-outside-lend`"), "{report}");
    // Where the callback called it (`platform_page`, in this file), not `with_lent`'s own file.
    let caller = format!("at {}:", file!());
    assert!(report.contains(&caller), "{caller} in {report}");
}
