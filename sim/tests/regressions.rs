//! Replays every finding ever made: `corpus/regressions/*.toml`, written by `sim import-crash`
//! from fuzzer crashes (or by hand), each pinning `[expect] signatures`.
//!
//! A regression of a seeded defect (its `defects` list is not empty) must still show every
//! expected signature with its defects on, so the generic checks keep finding that bug, and must
//! pass with every defect off, so the fix stays fixed. With its defects on it must show nothing
//! beyond what it pins. A regression of a real bug (no defects)
//! must pass: the bug it recorded was fixed, and its signature must not come back.
//!
//! Open findings (`corpus/regressions/open/`: real bugs not fixed yet) must still fail with the
//! signatures they pin, so that each stays a working repro; when one passes, the test says to
//! move it up, where it then guards the fix.

mod support;

use std::path::PathBuf;

use sim::registry::Registry;
use sim::runner::RunOptions;
use support::{defects_off, toml_files_in, workspace_root};

fn regression_files() -> Vec<PathBuf> {
    toml_files_in(&workspace_root().join("corpus/regressions"))
}

#[test]
fn every_regression_shows_its_finding_with_its_defects_and_passes_without() {
    let registry = Registry::builtin();
    let files = regression_files();
    assert!(
        !files.is_empty(),
        "corpus/regressions/ holds the canary's at least"
    );
    let mut problems = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let source = std::fs::read_to_string(path).unwrap();
        let scenario = registry
            .parse(&name, &source)
            .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
        let meta = scenario.meta();
        let expected = meta
            .expect
            .as_ref()
            .map(|e| e.signatures.clone())
            .unwrap_or_default();
        assert!(
            !expected.is_empty(),
            "{name}: a regression pins `[expect] signatures`"
        );
        if !meta.defects.is_empty() {
            let with = scenario.run(RunOptions::default());
            for signature in &expected {
                if !with.signatures().contains(signature) {
                    problems.push(format!(
                        "{name}: with defects [{}] the run no longer shows `{signature}` (it shows {:?})",
                        meta.defects.join(","),
                        with.signatures()
                    ));
                }
            }
            // Nothing else either: a finding the file does not pin is a new bug or a misreport
            // (such as blaming a site that only replaced what it released).
            for signature in with.signatures() {
                if !expected.contains(&signature) {
                    problems.push(format!(
                        "{name}: with defects [{}] the run also shows `{signature}`, which the file does not pin",
                        meta.defects.join(",")
                    ));
                }
            }
        }
        let without = scenario.run(defects_off());
        if !without.passed() {
            problems.push(format!(
                "{name}: with every defect off the run fails: {:?}",
                without.signatures()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_open_finding_still_fails_with_its_signatures() {
    let registry = Registry::builtin();
    let mut problems = Vec::new();
    for path in toml_files_in(&workspace_root().join("corpus/regressions/open")) {
        let name = path.display().to_string();
        let source = std::fs::read_to_string(&path).unwrap();
        let scenario = registry
            .parse(&name, &source)
            .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
        let expected = scenario
            .meta()
            .expect
            .map(|e| e.signatures)
            .unwrap_or_default();
        assert!(!expected.is_empty(), "{name}: pins `[expect] signatures`");
        let outcome = scenario.run(RunOptions::default());
        for signature in &expected {
            if !outcome.signatures().contains(signature) {
                problems.push(format!(
                    "{name}: `{signature}` no longer appears (it shows {:?}); if the bug is fixed, \
                     move the file up to corpus/regressions/, where it must pass",
                    outcome.signatures()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
