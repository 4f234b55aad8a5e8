//! `junit.xml`: one test case per swept scenario (a file, or a subject's generated scenarios), so
//! CI systems show a sweep the way they show tests. A scenario fails when any of its runs found
//! something; the failure message lists its signatures and the text holds each finding's report
//! (for a finding another scenario showed first, that one's, saying so).
//! Times are the sum of the runs' durations. A merge that is not its whole plan (`incomplete`)
//! adds one case in error that names what is missing, and pairs sim could not run (internal
//! errors) one more.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::summary::Summary;
use crate::seed::format_seed;

/// A scenario's summed wall time as a test case's time. The results reader refuses a run's
/// duration that no `Duration` holds, but the sum is a float from a file all the same: the
/// conversion saturates (a time past `Duration::MAX` is that, and a negative or NaN one is
/// zero), where `Duration::from_secs_f64` panicked and no summary was written.
fn time_of(duration_ms: f64) -> Duration {
    let seconds = duration_ms / 1000.0;
    Duration::try_from_secs_f64(seconds).unwrap_or(if seconds > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

pub fn render(summary: &Summary) -> String {
    let mut suite = TestSuite::new("sim sweep");
    for scenario in &summary.scenarios {
        let name = scenario.label();
        let status = if scenario.runs_failed == 0 {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "{} of {} runs found: {}",
                scenario.runs_failed,
                scenario.runs,
                scenario.signatures.join(", ")
            ));
            status.set_type("finding");
            // Every finding this scenario showed, also one that another scenario showed first
            // (findings are deduplicated by subject, defects and signature, and reported once,
            // from their first pair): its failure listed the signature with no report at all.
            let reports: Vec<String> = summary
                .findings
                .iter()
                .filter(|f| {
                    f.subject == scenario.subject
                        && f.defects == scenario.defects
                        && scenario.signatures.contains(&f.signature)
                })
                .map(|f| {
                    let report = f
                        .report
                        .clone()
                        .unwrap_or_else(|| format!("error[{}]: {}\n", f.kind, f.headline));
                    if f.first_scenario == scenario.scenario && f.defects == scenario.defects {
                        report
                    } else {
                        format!(
                            "note: first found by {} seed {}; its report:\n{report}",
                            f.first_scenario,
                            format_seed(f.first_seed)
                        )
                    }
                })
                .collect();
            status.set_description(reports.join("\n"));
            status
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(scenario.subject.clone());
        case.set_time(time_of(scenario.duration_ms));
        case.add_property(quick_junit::Property::new(
            "runs",
            scenario.runs.to_string(),
        ));
        suite.add_test_case(case);
    }
    // A merge that misses part of its plan: the runs it holds may all be green, and CI must not
    // read that as the plan's result.
    if !summary.incomplete.is_empty() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!(
            "the merge is not the whole plan: {}",
            summary.incomplete.join("; ")
        ));
        status.set_type("incomplete");
        status.set_description(summary.incomplete.join("\n"));
        let mut case = TestCase::new("incomplete plan", status);
        case.set_classname("sim sweep merge");
        suite.add_test_case(case);
    }
    // Pairs sim could not run: an error of sim's, not a finding, and not a pass either.
    if !summary.internal_errors.is_empty() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!(
            "sim {}: a panic of sim's own code or of the subject's, or a repro that could not be written, as each says",
            summary.internal_errors_said()
        ));
        status.set_type("internal error");
        let described: Vec<String> = summary
            .internal_errors
            .iter()
            .map(|error| {
                format!(
                    "{} seed {}: {}\nreplay: {}",
                    error.scenario,
                    format_seed(error.seed),
                    error.message,
                    error.replay
                )
            })
            .collect();
        status.set_description(described.join("\n"));
        let mut case = TestCase::new("internal errors", status);
        case.set_classname("sim sweep");
        suite.add_test_case(case);
    }
    let mut report = Report::new("sim");
    report.add_test_suite(suite);
    report
        .to_string()
        .expect("a JUnit report of plain strings serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_no_duration_holds_saturates_and_never_panics() {
        assert_eq!(time_of(1500.0), Duration::from_millis(1500));
        assert_eq!(time_of(0.0), Duration::ZERO);
        assert_eq!(time_of(-5.0), Duration::ZERO);
        assert_eq!(time_of(f64::NAN), Duration::ZERO);
        assert_eq!(time_of(f64::NEG_INFINITY), Duration::ZERO);
        assert_eq!(time_of(1e308), Duration::MAX);
        assert_eq!(time_of(f64::INFINITY), Duration::MAX);
    }
}
