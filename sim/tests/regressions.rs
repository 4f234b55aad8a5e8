//! Replays every finding ever made: `corpus/regressions/*.toml`, written by `sim import-crash`
//! from fuzzer crashes (or by hand), each pinning `[expect] signatures`, and the open findings of
//! `corpus/regressions/open/`.
//!
//! What each file must do is `sim::fuzzing::replay_regressions`'s to say, the function a
//! crate of its own calls for its own directory (README, "Keep it tested"): a regression of a
//! seeded defect still shows exactly the signatures it pins with its defects on and passes with
//! them off; a regression of a real bug, fixed, passes; an open finding still fails with its
//! signatures. The tests here check that the function fails when a file stops holding.

mod support;

use std::path::Path;

use sim::fuzzing::replay_regressions;
use sim::registry::Registry;
use support::{scratch_dir, toml_files_in, workspace_root};

#[test]
fn every_regression_shows_its_finding_with_its_defects_and_passes_without() {
    let dir = workspace_root().join("corpus/regressions");
    assert!(
        !toml_files_in(&dir).is_empty(),
        "corpus/regressions/ holds the canary's at least"
    );
    let replayed = replay_regressions(&Registry::builtin(), &dir).unwrap();
    assert_eq!(
        replayed,
        toml_files_in(&dir).len() + toml_files_in(&dir.join("open")).len(),
        "every file, open ones included"
    );
}

/// The canary's regression, copied into a scratch directory as `NAME.toml` after `edit`.
fn canary_regression_in(dir: &Path, name: &str, edit: impl Fn(&str) -> String) {
    let source = std::fs::read_to_string(
        workspace_root().join("corpus/regressions/counter-leak-on-evict-leak-6e747dfa.toml"),
    )
    .unwrap();
    assert!(
        source.contains("signatures = [\"leak:heap block:counter_create\"]"),
        "{source}"
    );
    std::fs::write(dir.join(format!("{name}.toml")), edit(&source)).unwrap();
}

/// Each way a regression can stop holding is a failure that names the file and says what, and
/// the other files' failures are listed with it rather than lost behind the first.
#[test]
fn a_regression_that_no_longer_holds_is_a_failure_naming_its_file() {
    let dir = scratch_dir("broken");
    canary_regression_in(&dir, "a-holds", str::to_string);
    canary_regression_in(&dir, "b-other-signature", |source| {
        source.replace("counter_create\"]", "elsewhere\"]")
    });
    // Without its `evict`, the slot leaks with every defect off: a bug nobody seeded.
    canary_regression_in(&dir, "c-fails-without-its-defect", |source| {
        source
            .replace("defects = [\"leak-on-evict\"]\n", "")
            .replace("  { op = \"evict\", slot = 2 },\n", "")
    });
    canary_regression_in(&dir, "d-pins-nothing", |source| {
        source.replace("signatures = [\"leak:heap block:counter_create\"]", "")
    });
    std::fs::write(dir.join("e-bad.toml"), "name = \"x\"\nsubject = 3\n").unwrap();
    std::fs::create_dir(dir.join("open")).unwrap();
    // An open finding that passes now: fixed, so it belongs a level up.
    canary_regression_in(&dir.join("open"), "fixed", |source| {
        source.replace("defects = [\"leak-on-evict\"]\n", "defects = []\n")
    });

    let failures = replay_regressions(&Registry::builtin(), &dir).unwrap_err();
    let text = failures.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let file = |name: &str| dir.join(name).display().to_string();
    assert_eq!(lines[0], "6 problems in regression files:", "{text}");
    assert!(
        lines[1].starts_with(&format!(
            "{}: with defects [leak-on-evict] the run no longer shows `leak:heap block:elsewhere`",
            file("b-other-signature.toml")
        )),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!(
            "{}: with defects [leak-on-evict] the run also shows `leak:heap block:counter_create`, which the file does not pin",
            file("b-other-signature.toml")
        ),
        "{text}"
    );
    assert_eq!(
        lines[3],
        format!(
            "{}: with every defect off the run fails: [\"leak:heap block:counter_create\"]",
            file("c-fails-without-its-defect.toml")
        ),
        "{text}"
    );
    assert_eq!(
        lines[4],
        format!(
            "{}: a regression pins `[expect] signatures`, and this file pins none",
            file("d-pins-nothing.toml")
        ),
        "{text}"
    );
    assert!(
        lines[5].starts_with(&format!("{}: error: ", file("e-bad.toml"))),
        "a parse error, with where: {text}"
    );
    assert!(
        text.contains(&format!("--> {}:2:11", file("e-bad.toml"))),
        "{text}"
    );
    let fixed = text.lines().last().unwrap();
    assert!(
        fixed.starts_with(&format!(
            "{}: `leak:heap block:counter_create` no longer appears",
            file("open/fixed.toml")
        )) && fixed.ends_with(&format!(
            "move the file up to {}/, where it must pass",
            dir.display()
        )),
        "{text}"
    );
    assert_eq!(failures.0.len(), 6);
    assert!(
        !text.contains("a-holds.toml"),
        "the file that holds is no failure: {text}"
    );
}

/// A directory that does not exist is a failure (a wrong path in a test must not pass with
/// nothing replayed); an empty one replays nothing and holds.
#[test]
fn a_missing_directory_is_a_failure_and_an_empty_one_holds() {
    let dir = scratch_dir("empty");
    assert_eq!(replay_regressions(&Registry::builtin(), &dir).unwrap(), 0);
    let missing = dir.join("nowhere");
    let failures = replay_regressions(&Registry::builtin(), &missing).unwrap_err();
    assert_eq!(failures.0.len(), 1);
    assert!(
        failures.0[0].to_string().starts_with(&format!(
            "{}: cannot read the directory: ",
            missing.display()
        )),
        "{failures}"
    );
}
