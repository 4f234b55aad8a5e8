//! `sim zoo`: each zoo scenario (one per real bug) run twice, as written with its defect on and
//! with every defect off. A zoo file is as expected when the first run finds something and the
//! second finds nothing: the defect is what the checks caught, not something else in the script.

use super::results::FindingBrief;
use crate::registry::DynScenario;
use crate::runner::RunOptions;

pub struct ZooRow {
    pub file: String,
    pub subject: String,
    /// The defects the file enables.
    pub defects: Vec<String>,
    pub with_defects: Vec<FindingBrief>,
    pub without_defects: Vec<FindingBrief>,
}

impl ZooRow {
    /// Found with its defect, clean without.
    pub fn as_expected(&self) -> bool {
        !self.defects.is_empty() && !self.with_defects.is_empty() && self.without_defects.is_empty()
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
                with_defects: briefs(scenario.as_ref(), None),
                without_defects: briefs(scenario.as_ref(), Some(Vec::new())),
            }
        })
        .collect()
}
