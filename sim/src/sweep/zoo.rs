//! `sim zoo`: each zoo scenario (one per real bug) run twice, as written with its defect on and
//! with every defect off. A zoo file is as expected when the first run finds something and the
//! second finds nothing: the defect is what the checks caught, not something else in the script.
//!
//! A file can say otherwise with an `[expect]` table: its `signatures` must all appear with the
//! defect on, and `signatures = []` marks a control, a script that enables the defect where it
//! must stay harmless (a prestats leak with a preopened directory, say) and so must find nothing.

use super::results::FindingBrief;
use crate::registry::DynScenario;
use crate::runner::RunOptions;

pub struct ZooRow {
    pub file: String,
    pub subject: String,
    /// The defects the file enables.
    pub defects: Vec<String>,
    /// The file's `[expect]` signatures, if it has that table (`[]` for a control).
    pub expected: Option<Vec<String>>,
    pub with_defects: Vec<FindingBrief>,
    pub without_defects: Vec<FindingBrief>,
}

impl ZooRow {
    /// Clean without defects; with them, what `[expect]` says, or else found.
    pub fn as_expected(&self) -> bool {
        let found =
            |signature: &String| self.with_defects.iter().any(|f| &f.signature == signature);
        let with_ok = match &self.expected {
            Some(expected) if expected.is_empty() => self.with_defects.is_empty(),
            Some(expected) => expected.iter().all(found),
            None => !self.defects.is_empty() && !self.with_defects.is_empty(),
        };
        with_ok && self.without_defects.is_empty()
    }
}

fn briefs(scenario: &dyn DynScenario, defects: Option<Vec<String>>) -> Vec<FindingBrief> {
    let outcome = scenario.run(RunOptions {
        defects,
        ..RunOptions::default()
    });
    outcome
        .findings
        .iter()
        .map(|f| FindingBrief::of(f, &outcome))
        .collect()
}

pub fn check(files: &[(String, Box<dyn DynScenario>)]) -> Vec<ZooRow> {
    files
        .iter()
        .map(|(file, scenario)| {
            let meta = scenario.meta();
            ZooRow {
                file: file.clone(),
                subject: meta.subject,
                defects: meta.defects,
                expected: meta.expect.map(|e| e.signatures),
                with_defects: briefs(scenario.as_ref(), None),
                without_defects: briefs(scenario.as_ref(), Some(Vec::new())),
            }
        })
        .collect()
}
