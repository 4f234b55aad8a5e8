//! `summary.json`: what a sweep found, and the merge of several sweeps' directories into one.
//!
//! The summary is a function of the run records and the repro sidecars, plus the shards' wall
//! times: it keeps the `--json` keys of DESIGN.md (`verdict`, `findings` with `kind`, `resource`,
//! `lifecycle`, `site`, `signature`, then `repro` and `trace_hash`) and adds the sweep's own
//! (runs, seeds, count and first seed per finding, the minimised repro and its op count).
//!
//! Merging takes the union of the records by pair (so merging a directory twice, or merging a
//! merge again, changes nothing), keeps for each finding the repro of its first pair, and writes
//! the same four files a sweep writes. The same pair recorded with different results in two
//! inputs means one of the runs was not deterministic, and becomes a `determinism` finding.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::minimise::{self, REPROS_DIR, ReproRecord};
use super::results::{self, FindingBrief, PairKey, RunRecord};
use super::{SweepError, SweepSettings, display_path, html, junit, round3};
use crate::report;
use crate::seed::format_seed;

pub const SUMMARY_FILE: &str = "summary.json";
pub const JUNIT_FILE: &str = "junit.xml";
pub const REPORT_FILE: &str = "report.html";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedsSpan {
    pub start: u64,
    pub end: u64,
}

/// One shard's (or one unsharded sweep's) share of the work; a merge lists them all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// `I/N seeds A..B`, or `all seeds A..B`: for people. A merge reads `index`, `count` and
    /// `seeds`, and this only in summaries written before those were kept.
    pub shard: String,
    /// The shard's index (from 1) and the number of shards of its plan, as `--shard I/N` gave
    /// them; both absent for an unsharded sweep (and in summaries written before they were kept,
    /// which `seeds` tells apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The seeds of the plan the shard takes its share of, as the summary's own `seeds`. Always
    /// written by a sweep; absent only in summaries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<SeedsSpan>,
    pub runs: u64,
    /// Of `runs`, those found done in the results file by a resumed sweep; the shard's wall
    /// time is its last invocation's, which ran only the others. Absent when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed: u64,
    pub wall_seconds: f64,
    /// Wall time of the runs alone (without minimising and reports).
    pub run_seconds: f64,
    /// Identifies the plan the shard is part of (`sweep::plan_id`): a merge checks that its
    /// shards are of one plan and cover it. Absent in summaries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The sweep's `--recheck-percent` and `--shrink-runs-max`. They are not part of `plan`
    /// (which pairs run), but a merge of shards run with different ones would count rechecks
    /// of different samples and hold repros shrunk with different budgets as one sweep's, so it
    /// checks them too. Absent in summaries written before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_runs_max: Option<u64>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl ShardSummary {
    /// The summary of shard `part` (`None`: the whole plan, unsharded) of the plan over
    /// `seeds`, with its label.
    pub fn new(
        part: Option<super::Shard>,
        seeds: SeedsSpan,
        runs: u64,
        resumed: u64,
        wall_seconds: f64,
        run_seconds: f64,
        plan: Option<String>,
    ) -> ShardSummary {
        let shard = match part {
            Some(part) => format!("{} seeds {}..{}", part.label(), seeds.start, seeds.end),
            None => format!("all seeds {}..{}", seeds.start, seeds.end),
        };
        ShardSummary {
            shard,
            index: part.map(|p| p.index),
            count: part.map(|p| p.count),
            seeds: Some(seeds),
            runs,
            resumed,
            wall_seconds,
            run_seconds,
            plan,
            recheck_percent: None,
            shrink_runs_max: None,
        }
    }

    /// The shard's `--recheck-percent` and `--shrink-runs-max`, as a merge compares them, in
    /// command-line words; empty for a shard whose summary did not keep them.
    fn settings(&self) -> Vec<String> {
        super::settings_flags(self.recheck_percent, self.shrink_runs_max)
    }

    /// Which shard this is (`None`: an unsharded sweep) and its plan's seeds as a label's words
    /// (`seeds A..B`), which tell plans apart when no `plan` was kept. From the fields, or, in a
    /// summary written before they were kept, from the label `I/N seeds A..B`.
    fn part(&self) -> (Option<super::Shard>, String) {
        if let Some(seeds) = self.seeds {
            let part = self
                .index
                .zip(self.count)
                .map(|(index, count)| super::Shard { index, count });
            return (part, format!("seeds {}..{}", seeds.start, seeds.end));
        }
        let (part, seeds) = self
            .shard
            .split_once(' ')
            .unwrap_or((self.shard.as_str(), ""));
        (super::Shard::parse(part).ok(), seeds.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    pub subject: String,
    pub defects: Vec<String>,
    pub runs: u64,
    pub runs_failed: u64,
    /// Of `runs`, the pairs sim could not run (`Summary::internal_errors`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub internal_errors: u64,
    /// Every signature any run of this scenario showed, sorted.
    pub signatures: Vec<String>,
    pub duration_ms: f64,
}

impl ScenarioSummary {
    /// What its runs found, a line each, for its row in a table: its signatures, then how many
    /// of its pairs sim could not run; none when every pair ran and found nothing.
    pub fn found(&self) -> Vec<String> {
        let mut found = self.signatures.clone();
        if self.internal_errors > 0 {
            found.push(format!("{} internal error(s)", self.internal_errors));
        }
        found
    }

    /// Whether every pair ran and found nothing: a row to show as passing.
    pub fn clean(&self) -> bool {
        self.runs_failed == 0 && self.internal_errors == 0
    }

    /// `NAME [DEFECTS]`, or `NAME` alone with no defects: what a merge and a JUnit report call
    /// the swept source.
    pub fn label(&self) -> String {
        match self.defects.as_slice() {
            [] => self.scenario.clone(),
            defects => format!("{} [{}]", self.scenario, defects.join(",")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingSummary {
    pub signature: String,
    pub kind: String,
    pub resource: String,
    /// The lifecycle where the first pair noticed it.
    pub lifecycle: String,
    pub site: String,
    pub subject: String,
    pub headline: String,
    /// Runs that showed it.
    pub count: u64,
    pub first_seed: u64,
    pub first_scenario: String,
    pub defects: Vec<String>,
    /// Seeds swept until the first one that showed it (1 when the first seed did).
    pub seeds_to_first: u64,
    /// The minimised repro file; `None` until it has been minimised.
    pub repro: Option<String>,
    /// `sim replay REPRO`; without a repro (one too large to write, or a determinism finding
    /// a merge made of two directories' runs of the pair), the first pair's command.
    pub replay: Option<String>,
    /// The command that replays the first pair as swept.
    pub original_replay: Option<String>,
    pub ops_before: Option<u64>,
    /// Op count of the minimised repro.
    pub ops_after: Option<u64>,
    /// The finding's report, as `sim run` prints it.
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<u64>,
}

/// A pair that sim could not run, or a finding it could not minimise: a panic outside the run, of
/// sim's own code or of the subject's while the scenario was made, or a repro that could not be
/// written, as `message` says (an internal error, exit 3). Not a finding: it says nothing of the
/// subject, only that this pair's result (or that finding's repro) is missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternalErrorSummary {
    pub scenario: String,
    pub subject: String,
    pub defects: Vec<String>,
    pub seed: u64,
    /// The command that replays the pair as it was swept, which meets the error again.
    pub replay: String,
    /// The panic's message, then `  panicked at: FILE:LINE:COLUMN` when that is known.
    pub message: String,
    /// The signature of the finding whose minimising met the error, when the pair itself ran
    /// (its finding is reported without a repro); absent for a pair sim could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimising: Option<String>,
    /// Whether the panic was the subject's own code's (`RunRecord::subject_code`), not sim's.
    /// False in summaries written before it was kept.
    #[serde(default)]
    pub subject_code: bool,
}

impl InternalErrorSummary {
    /// Where it is listed: in its pair's key order (`PairKey`: seed first), then by the finding
    /// whose minimising met it, so that the list is the same whichever worker met it first.
    pub fn order(&self) -> (u64, &str, &[String], Option<&str>) {
        (
            self.seed,
            &self.scenario,
            &self.defects,
            self.minimising.as_deref(),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeterminismSummary {
    /// Runs done twice (every failing run and the sample of passing ones).
    pub rechecked: u64,
    /// Runs whose two runs differed.
    pub mismatches: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `pass` when no run found anything and every pair ran, else `fail`.
    pub verdict: String,
    pub findings: Vec<FindingSummary>,
    /// The pairs sim could not run for a panic outside the run (`InternalErrorSummary`), in pair
    /// order: apart from `findings`,
    /// as they are no finding of the subject's. Any makes the verdict `fail` and the sweep exit
    /// 3. Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internal_errors: Vec<InternalErrorSummary>,
    /// The replay command of the first finding.
    pub repro: Option<String>,
    /// A hash over every run's trace hash, in pair order: equal summaries of equal sweeps.
    pub trace_hash: String,
    pub runs: u64,
    pub runs_failed: u64,
    /// Distinct seeds run.
    pub seeds_run: u64,
    pub seeds: SeedsSpan,
    pub scenarios: Vec<ScenarioSummary>,
    pub determinism: DeterminismSummary,
    /// The longest shard's wall time (shards run side by side).
    pub wall_seconds: f64,
    /// Runs per second of `wall_seconds`, of the runs done in it (a resumed sweep's runs found
    /// done are not).
    pub runs_per_second: f64,
    pub shards: Vec<ShardSummary>,
    pub out: String,
    pub report_html: String,
    pub junit_xml: String,
    /// What a merge found wrong with its inputs (a shard missing, shards of different plans or
    /// builds): the summary may not be the whole plan's. Empty for a sweep. A shard missing and
    /// an input without its summary are here and in `incomplete` too (both keys have held them);
    /// `sim sweep merge` prints them once, with `incomplete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What of the plan a merge does not hold: each shard no input holds (`shard 2/3: …`, or
    /// `shard 2/3 of plan P: …` when the merge holds more than one plan), each input a killed sweep left
    /// without its summary, each input holding fewer runs than its summary counts. A summary with
    /// any is not the plan's whole result, so its `verdict` is `fail` and `sim sweep merge` exits 2.
    /// Absent when the plan is whole, and in a sweep's own summary (written only once every run
    /// of its share is done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}

impl Summary {
    /// What `internal_errors` lost, for a heading: `could not run N pair(s)`, `could not
    /// minimise M finding(s)`, or both joined by `nor`.
    pub fn internal_errors_said(&self) -> String {
        let minimising = self
            .internal_errors
            .iter()
            .filter(|e| e.minimising.is_some())
            .count();
        let pairs = self.internal_errors.len() - minimising;
        match (pairs, minimising) {
            (pairs, 0) => format!("could not run {pairs} pair(s)"),
            (0, minimising) => format!("could not minimise {minimising} finding(s)"),
            (pairs, minimising) => {
                format!("could not run {pairs} pair(s) nor minimise {minimising} finding(s)")
            }
        }
    }

    /// Marks the summary as not the whole plan's result (see `incomplete`): it fails, whatever
    /// its runs found, since runs that never happened found nothing either way.
    pub fn set_incomplete(&mut self, incomplete: Vec<String>) {
        if !incomplete.is_empty() {
            self.verdict = "fail".into();
        }
        self.incomplete = incomplete;
    }
}

fn split_signature(signature: &str) -> (String, String, String) {
    let kind = signature.split(':').next().unwrap_or_default().to_string();
    let site = signature.rsplit(':').next().unwrap_or_default().to_string();
    let resource = signature
        .strip_prefix(&format!("{kind}:"))
        .and_then(|rest| rest.strip_suffix(&format!(":{site}")))
        .unwrap_or_default()
        .to_string();
    (kind, resource, site)
}

/// The defects of a scenario's or a finding's row in a table, as the set a finding is keyed by
/// (`minimise::defect_set`: sorted, each once): `a, b`, or `-` with none. A finding's row says
/// them because one signature of one subject is a finding per defect set.
pub fn defects_cell(defects: &[String]) -> String {
    let set = super::minimise::defect_set(defects);
    if set.is_empty() {
        "-".to_string()
    } else {
        set.join(", ")
    }
}

/// Builds the summary of `records` (in key order) with the repro sidecars of their findings.
pub fn build(
    records: &[RunRecord],
    sidecars: &[ReproRecord],
    seeds: SeedsSpan,
    shards: Vec<ShardSummary>,
    out: &Path,
) -> Summary {
    let sidecars: BTreeMap<minimise::FindingKey, &ReproRecord> = sidecars
        .iter()
        .map(|r| (minimise::finding_key(r), r))
        .collect();
    let mut counts: BTreeMap<minimise::FindingKey, u64> = BTreeMap::new();
    let mut trace_hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut scenarios: BTreeMap<(String, Vec<String>), ScenarioSummary> = BTreeMap::new();
    let mut seeds_run = BTreeSet::new();
    for record in records {
        for signature in &record.signatures {
            *counts
                .entry(minimise::key_of(
                    &record.subject,
                    &record.defects,
                    signature,
                ))
                .or_default() += 1;
        }
        let hash = crate::seed::parse_trace_hash(&record.trace_hash).unwrap_or(0);
        trace_hash = (trace_hash ^ hash).wrapping_mul(0x0000_0100_0000_01b3);
        seeds_run.insert(record.seed);
        let scenario = scenarios
            .entry((record.scenario.clone(), record.defects.clone()))
            .or_insert_with(|| ScenarioSummary {
                scenario: record.scenario.clone(),
                subject: record.subject.clone(),
                defects: record.defects.clone(),
                runs: 0,
                runs_failed: 0,
                internal_errors: 0,
                signatures: Vec::new(),
                duration_ms: 0.0,
            });
        scenario.runs += 1;
        if record.internal_error.is_some() {
            scenario.internal_errors += 1;
        }
        scenario.duration_ms = round3(scenario.duration_ms + record.duration_ms);
        if record.failed() {
            scenario.runs_failed += 1;
            for signature in &record.signatures {
                if !scenario.signatures.contains(signature) {
                    scenario.signatures.push(signature.clone());
                }
            }
        }
    }
    for scenario in scenarios.values_mut() {
        scenario.signatures.sort();
    }
    let mut findings: Vec<(PairKey, FindingSummary)> = minimise::first_pairs(records)
        .into_iter()
        .map(|(finding, first)| {
            let count = counts[&finding];
            let sidecar = sidecars.get(&finding).filter(|s| s.is_of(first));
            let (subject, _, signature) = finding;
            let brief = first
                .findings
                .iter()
                .find(|f| f.signature == signature)
                .cloned()
                .unwrap_or_else(|| {
                    let (kind, resource, site) = split_signature(&signature);
                    FindingBrief {
                        signature: signature.clone(),
                        kind,
                        resource,
                        site,
                        lifecycle: String::new(),
                        headline: String::new(),
                        unknown: BTreeMap::new(),
                    }
                });
            let summary = FindingSummary {
                signature: signature.clone(),
                kind: brief.kind,
                resource: brief.resource,
                lifecycle: brief.lifecycle,
                site: brief.site,
                subject: subject.clone(),
                headline: brief.headline,
                count,
                first_seed: first.seed,
                first_scenario: first.scenario.clone(),
                defects: first.defects.clone(),
                seeds_to_first: first.seed.saturating_sub(seeds.start) + 1,
                // A repro too large to replay was not written: the first pair's replay stands in.
                repro: sidecar
                    .filter(|s| s.not_written.is_none())
                    .map(|s| s.repro.clone()),
                // Without a sidecar (a determinism finding a merge made of two inputs' runs of
                // the pair, or a sidecar that could not be read), there is no repro: the pair's
                // own command replays it, as it does a repro too large to write.
                replay: Some(match sidecar {
                    Some(s) if s.not_written.is_none() => report::replay_command(&s.repro),
                    Some(s) => s.original_replay.clone(),
                    None => first.original_replay(),
                }),
                original_replay: Some(
                    sidecar.map_or_else(|| first.original_replay(), |s| s.original_replay.clone()),
                ),
                ops_before: sidecar.map(|s| s.ops_before),
                ops_after: sidecar.map(|s| s.ops_after),
                report: sidecar.map(|s| s.report.clone()),
                series: sidecar.map(|s| s.series.clone()).unwrap_or_default(),
            };
            (first.key(), summary)
        })
        .collect();
    findings.sort_by(|a, b| (&a.0, &a.1.signature).cmp(&(&b.0, &b.1.signature)));
    let findings: Vec<FindingSummary> = findings.into_iter().map(|(_, f)| f).collect();
    let runs = records.len() as u64;
    let wall_seconds = shards.iter().map(|s| s.wall_seconds).fold(0.0, f64::max);
    // The rate of the runs the wall time timed: a resumed shard's wall time is its last
    // invocation's, and the runs it found done took none of it.
    let runs_timed: u64 = shards
        .iter()
        .map(|s| s.runs.saturating_sub(s.resumed))
        .sum();
    // In key order, as `records` are: the same list whichever worker met them first.
    let internal_errors: Vec<InternalErrorSummary> = records
        .iter()
        .filter_map(|record| {
            let message = record.internal_error.clone()?;
            Some(InternalErrorSummary {
                scenario: record.scenario.clone(),
                subject: record.subject.clone(),
                defects: record.defects.clone(),
                seed: record.seed,
                replay: record.original_replay(),
                message,
                minimising: None,
                subject_code: record.subject_code,
            })
        })
        .collect();
    let passed = findings.is_empty() && internal_errors.is_empty();
    Summary {
        verdict: if passed { "pass" } else { "fail" }.into(),
        internal_errors,
        repro: findings
            .iter()
            .find_map(|f| f.replay.clone().or_else(|| f.original_replay.clone())),
        trace_hash: format_seed(trace_hash),
        runs,
        runs_failed: records.iter().filter(|r| r.failed()).count() as u64,
        seeds_run: seeds_run.len() as u64,
        seeds,
        scenarios: scenarios.into_values().collect(),
        determinism: DeterminismSummary {
            rechecked: records.iter().filter(|r| r.rechecked).count() as u64,
            mismatches: records
                .iter()
                .filter(|r| r.signatures.iter().any(|s| s.starts_with("determinism:")))
                .count() as u64,
        },
        wall_seconds: round3(wall_seconds),
        runs_per_second: if wall_seconds > 0.0 {
            round3(runs_timed as f64 / wall_seconds)
        } else {
            0.0
        },
        findings,
        shards,
        out: out.display().to_string(),
        report_html: display_path(out, REPORT_FILE),
        junit_xml: display_path(out, JUNIT_FILE),
        warnings: Vec::new(),
        incomplete: Vec::new(),
    }
}

/// Writes `summary.json`, `junit.xml` and `report.html` into `out`.
pub fn write_outputs(out: &Path, summary: &Summary) -> Result<(), String> {
    let json = serde_json::to_string_pretty(summary).expect("summaries serialize") + "\n";
    write_output(&out.join(SUMMARY_FILE), &json)?;
    write_output(&out.join(JUNIT_FILE), &junit::render(summary))?;
    write_output(&out.join(REPORT_FILE), &html::render(summary))
}

/// Writes one output file of a sweep (`minimise::write_atomic`); its error names the file, not
/// the directory: `OUT: cannot write: Is a directory` sent the reader to the wrong place.
fn write_output(path: &Path, text: &str) -> Result<(), String> {
    minimise::write_atomic(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// `error`, from making the directory `dir`, as a reader needs it: an existing file in its way
/// gives `File exists`, which reads as if all were well, and is said as what it is.
pub(crate) fn dir_error(dir: &Path, error: std::io::Error) -> std::io::Error {
    if dir.exists() && !dir.is_dir() {
        std::io::Error::from_raw_os_error(libc::ENOTDIR)
    } else {
        error
    }
}

/// Reads a `summary.json`: `Ok(None)` when there is none, and why it cannot be read (with
/// `FILE:LINE:COLUMN` when it is no summary) when there is one.
pub fn read(dir: &Path) -> Result<Option<Summary>, String> {
    let path = dir.join(SUMMARY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: cannot read: {error}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| results::json_error_at(&path.display().to_string(), None, &error))
}

/// What `merge` does with directories that are not the shards of one sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatched {
    /// Refuse them, writing nothing (`sim sweep merge`).
    Refuse,
    /// Merge them, with the summary's `warnings` saying what is wrong (`--allow-mismatch`).
    Allow,
}

/// Merges sweep directories (shards, or earlier merges) into `out`. Directories that are not
/// the shards of one sweep (of other plans, split other ways, or by other builds of sim) are
/// refused, unless `mismatched` allows them. A shard missing, or an input a killed sweep left
/// unfinished, does not stop the merge, as a nightly run whose one shard died still wants the
/// report of the others; but its summary says what is missing (`incomplete`) and does not pass.
/// What `incomplete` says is not printed here: the caller shows it with the summary, as
/// `sim sweep merge` does. It is in `warnings` too; `merge` prints the other warnings itself.
pub fn merge(
    inputs: &[PathBuf],
    out: &Path,
    mismatched: Mismatched,
) -> Result<Summary, SweepError> {
    let mut records: BTreeMap<PairKey, RunRecord> = BTreeMap::new();
    // Each sidecar with the repro file beside it: the recorded path is where the sweep wrote it,
    // which need not be where it is now (a CI artifact downloaded elsewhere).
    let mut sidecars: Vec<(PathBuf, ReproRecord)> = Vec::new();
    let mut shards: BTreeMap<(String, Option<String>), ShardSummary> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut build_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut span: Option<SeedsSpan> = None;
    let mut other_versions = 0usize;
    // Why the inputs are not the shards of one sweep, beyond what their shards' plans say.
    let mut mismatches = Vec::new();
    // What each input holds, for the message that refuses a mismatched merge.
    let mut held = Vec::new();
    // Sidecars that could not be read: said once it is known what becomes of their findings.
    let mut bad_sidecars = Vec::new();
    // Each `--recheck-percent` and `--shrink-runs-max` the inputs' shards ran with, and where.
    let mut recheck_percents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut shrink_budgets: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    // The settings of each shard merged (`None` where they are not known), for the merge's own
    // record of them.
    let mut settings_merged: Vec<Option<SweepSettings>> = Vec::new();
    // The findings the inputs' sweeps could not minimise (their summaries' internal errors of
    // minimising): they have no record of their own, as a pair sim could not run has.
    let mut minimising_errors: Vec<InternalErrorSummary> = Vec::new();
    // Inputs that do not hold all the runs of their share of the plan (for `incomplete`).
    let mut unfinished = Vec::new();
    // Warnings that `incomplete` says again in its own words: kept apart from `warnings` and
    // not printed here, since `incomplete` is printed with the summary; added to the summary's
    // `warnings` at the end, as summaries always held them.
    let mut said_by_incomplete = Vec::new();
    for input in inputs {
        let path = input.join(results::RESULTS_FILE);
        if !path.exists() {
            return Err(SweepError::input(format!(
                "{}: not a sweep directory (no {})",
                input.display(),
                results::RESULTS_FILE
            )));
        }
        let loaded = results::load(&path, false).map_err(|e| SweepError::input(e.message))?;
        for warning in loaded.warnings {
            eprintln!("warning: {warning}");
        }
        let summary = read(input).map_err(SweepError::input)?;
        let build_id = std::fs::read_to_string(input.join(super::BUILD_ID_FILE))
            .ok()
            .map(|id| id.trim().to_string());
        held.push(holding(input, summary.as_ref(), build_id.as_deref()));
        // A sweep keeps in its file the records of an earlier sweep into the same directory
        // with other seeds or sources, and leaves them out of its summary: merged, they would
        // be counted as runs of this plan.
        match &summary {
            None => unfinished.push(format!(
                "{}: no {SUMMARY_FILE}: a sweep stopped before it finished; its {} recorded runs are merged, the rest of its share never ran",
                input.display(),
                loaded.records.len()
            )),
            // A sweep writes its summary once every run of its share is recorded, and a merge
            // the records it counts: fewer means runs were lost since (a line cut off the file).
            Some(summary) if (loaded.records.len() as u64) < summary.runs => {
                unfinished.push(format!(
                    "{}: holds {} runs and its {SUMMARY_FILE} counts {}; the other {} are lost",
                    path.display(),
                    loaded.records.len(),
                    summary.runs,
                    summary.runs - loaded.records.len() as u64
                ))
            }
            Some(_) => {}
        }
        if let Some(summary) = &summary
            && loaded.records.len() as u64 > summary.runs
        {
            mismatches.push(format!(
                "{}: holds {} records and its {SUMMARY_FILE} counts {}: the others are from an earlier sweep into that directory, of other seeds or sources",
                path.display(),
                loaded.records.len(),
                summary.runs
            ));
        }
        for record in loaded.records {
            let key = record.key();
            let kept = match records.remove(&key) {
                // Runs of two versions of a scenario file differ by design, not by
                // nondeterminism: the directory named later wins, as a later line of one
                // results file does.
                Some(other) if other.scenario_hash != record.scenario_hash => {
                    other_versions += 1;
                    record
                }
                Some(other) => reconcile(other, record),
                None => record,
            };
            records.insert(key, kept);
        }
        match &summary {
            Some(summary) => settings_merged.extend(summary.shards.iter().map(|shard| {
                shard.recheck_percent.zip(shard.shrink_runs_max).map(
                    |(recheck_percent, shrink_runs_max)| SweepSettings {
                        recheck_percent,
                        shrink_runs_max,
                    },
                )
            })),
            None => settings_merged.push(SweepSettings::read(input).ok().flatten()),
        }
        if let Some(summary) = &summary {
            minimising_errors.extend(
                (summary.internal_errors.iter())
                    .filter(|error| error.minimising.is_some())
                    .cloned(),
            );
            for shard in &summary.shards {
                if let Some(percent) = shard.recheck_percent {
                    recheck_percents
                        .entry(percent.to_string())
                        .or_default()
                        .insert(input.display().to_string());
                }
                if let Some(runs) = shard.shrink_runs_max {
                    shrink_budgets
                        .entry(runs)
                        .or_default()
                        .insert(input.display().to_string());
                }
            }
        }
        if let Some(summary) = summary {
            span = Some(match span {
                Some(s) => SeedsSpan {
                    start: s.start.min(summary.seeds.start),
                    end: s.end.max(summary.seeds.end),
                },
                None => summary.seeds,
            });
            for shard in summary.shards {
                shards
                    .entry((shard.shard.clone(), shard.plan.clone()))
                    .or_insert(shard);
            }
        } else {
            let warning = format!(
                "{}: no {SUMMARY_FILE} (an unfinished sweep?), so which shard of which plan it holds is unknown",
                input.display()
            );
            said_by_incomplete.push(warning);
        }
        if let Some(id) = build_id {
            build_ids
                .entry(id)
                .or_default()
                .push(input.display().to_string());
        }
        let found = minimise::load_sidecars(&input.join(REPROS_DIR));
        bad_sidecars.extend(found.bad);
        sidecars.extend(
            found
                .read
                .into_iter()
                .map(|(json, record)| (json.with_extension("toml"), record))
                .filter(|(toml, record)| record.not_written.is_some() || toml.exists()),
        );
    }
    if other_versions > 0 {
        warnings.push(format!(
            "{other_versions} pair(s) ran different versions of their scenario file in different directories; the run from the directory named later is kept"
        ));
    }
    let shards: Vec<ShardSummary> = shards.into_values().collect();
    let coverage = coverage_problems(&shards);
    mismatches.extend(coverage.mismatched);
    if build_ids.len() > 1 {
        let builds: Vec<String> = build_ids
            .iter()
            .map(|(id, dirs)| format!("{id} ({})", dirs.join(", ")))
            .collect();
        mismatches.push(format!(
            "the directories were written by different builds of sim: {}; a pair may not run the same on both",
            builds.join("; ")
        ));
    }
    let listed = |values: Vec<(String, &BTreeSet<String>)>| -> String {
        values
            .iter()
            .map(|(value, dirs)| {
                format!(
                    "{value} ({})",
                    dirs.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if recheck_percents.len() > 1 {
        mismatches.push(format!(
            "the directories were swept with different --recheck-percent: {}; their `rechecked` counts are of samples of different sizes",
            listed(recheck_percents.iter().map(|(p, d)| (p.clone(), d)).collect())
        ));
    }
    if shrink_budgets.len() > 1 {
        mismatches.push(format!(
            "the directories were swept with different --shrink-runs-max: {}; their repros were shrunk with different budgets, so their sizes do not compare",
            listed(shrink_budgets.iter().map(|(n, d)| (n.to_string(), d)).collect())
        ));
    }
    if !mismatches.is_empty() && mismatched == Mismatched::Refuse {
        return Err(SweepError::input(format!(
            "these directories are not the shards of one sweep, so their merge would be no sweep's result; nothing was written:\n{}\nwhat each directory holds:\n{}\nnote: shards merge when each ran the same command but for its --shard, with one build of sim; to merge these anyway, with the problems above as the summary's warnings, pass --allow-mismatch",
            mismatches
                .iter()
                .map(|m| format!("  - {m}"))
                .collect::<Vec<_>>()
                .join("\n"),
            held.iter()
                .map(|h| format!("  {h}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )));
    }
    warnings.extend(mismatches);
    said_by_incomplete.extend(coverage.missing);
    let incomplete: Vec<String> = coverage
        .shards_missing
        .iter()
        .map(|shard| format!("shard {shard}: no directory merged holds it"))
        .chain(unfinished)
        .collect();
    let records: Vec<RunRecord> = records.into_values().collect();
    let span = span.unwrap_or_else(|| SeedsSpan {
        start: records.iter().map(|r| r.seed).min().unwrap_or(0),
        end: records.iter().map(|r| r.seed + 1).max().unwrap_or(0),
    });
    let repros = out.join(REPROS_DIR);
    std::fs::create_dir_all(&repros).map_err(|e| {
        SweepError::input(format!(
            "{}: cannot create: {}",
            repros.display(),
            dir_error(&repros, e)
        ))
    })?;
    // The merge replaces `out`'s results file. A sweep still appending to it (a merge into a
    // shard's own directory while that shard runs) would go on writing into the file replaced,
    // and every run it finished from then on would be lost: refused, as a second sweep into one
    // directory is. The lock is held until the merge is written.
    let results_path = out.join(results::RESULTS_FILE);
    let mut results_lock = results::Appender::open(&results_path).map_err(|e| {
        SweepError::input(format!(
            "{}: cannot merge into it: {e}",
            results_path.display()
        ))
    })?;
    super::remove_stale_temporaries(out, &results_lock);
    let mut chosen = Vec::new();
    for (finding, first) in minimise::first_pairs(&records) {
        // The sidecar of the first pair when a shard minimised it; any other one otherwise.
        let mut candidates: Vec<&(PathBuf, ReproRecord)> = sidecars
            .iter()
            .filter(|(_, s)| minimise::finding_key(s) == finding)
            .collect();
        let (subject, defects, signature) = finding;
        // Of sidecars as fresh, one of its own name (`minimise::is_named_for`) first: another
        // is left over from an older naming.
        candidates
            .sort_by_key(|(path, s)| (!s.is_of(first), !minimise::is_named_for(path, s), s.key()));
        let Some((found_at, sidecar)) = candidates.first() else {
            continue;
        };
        let target = display_path(
            &repros,
            &format!("{}.toml", minimise::stem_of(&subject, &defects, &signature)),
        );
        if sidecar.not_written.is_none() && found_at.as_path() != Path::new(&target) {
            let text = std::fs::read_to_string(found_at).map_err(|e| {
                SweepError::input(format!("{}: cannot read: {e}", found_at.display()))
            })?;
            let text = report::with_replay_line(&text, &target);
            minimise::write_atomic(Path::new(&target), &text)
                .map_err(|e| SweepError::input(format!("{target}: cannot write: {e}")))?;
        }
        let moved = sidecar.clone().moved_to(target);
        minimise::write_sidecar(&repros, &moved)
            .map_err(|e| SweepError::input(format!("{}: cannot write: {e}", repros.display())))?;
        chosen.push(moved);
    }
    let firsts = minimise::first_pairs(&records);
    warnings.extend(minimise::bad_sidecar_warnings(&bad_sidecars, |named| {
        if chosen
            .iter()
            .any(|c| named(&c.subject, &c.defects, &c.signature))
        {
            "the file is ignored; its finding's repro is taken from another directory".to_string()
        } else if let Some((_, _, signature)) = firsts
            .keys()
            .find(|(sub, defects, sig)| named(sub, defects, sig))
        {
            format!(
                "the file is ignored, so the merge has no repro for `{signature}`; fix or delete the file and merge again, or sweep that directory again to minimise it anew"
            )
        } else {
            "the file is ignored: no finding of the merge has its name".to_string()
        }
    }));
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    warnings.extend(said_by_incomplete);
    let mut summary = build(&records, &chosen, span, shards, out);
    // After the pairs' own, as a sweep lists them.
    (summary.internal_errors).extend(still_unminimised(minimising_errors, &firsts, &chosen));
    summary.warnings = warnings;
    summary.set_incomplete(incomplete);
    results_lock
        .replace_with(&records)
        .map_err(|e| SweepError::input(format!("{}: cannot write: {e}", results_path.display())))?;
    write_outputs(out, &summary).map_err(SweepError::input)?;
    // The merge is one build's work when its inputs were, so that merging it again still checks.
    if let [(id, _)] = build_ids.iter().collect::<Vec<_>>().as_slice() {
        write_output(&out.join(super::BUILD_ID_FILE), &format!("{id}\n"))
            .map_err(SweepError::input)?;
    }
    // A sweep resumed in the merge's directory is checked against the settings its runs were
    // made with, when every shard's are known and the same; otherwise they are unknown, and a
    // record left there (by a sweep into the directory, merged with others) would misstate them.
    let agreed = match settings_merged.split_first() {
        Some((Some(first), rest)) if rest.iter().all(|s| s.as_ref() == Some(first)) => Some(first),
        _ => None,
    };
    match agreed {
        Some(settings) => settings.write(out).map_err(SweepError::input)?,
        None => {
            let settings = out.join(super::SETTINGS_FILE);
            match std::fs::remove_file(&settings) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(SweepError::input(format!(
                        "{}: cannot remove: {error}",
                        settings.display()
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(summary)
}

/// Of the errors the merge's inputs met while minimising findings (`errors`), those of findings
/// the merge holds (`firsts`) and has no repro of (`chosen`: another input's minimised it), one a
/// finding, the first in pair order (its first pair's, where that input met it), in that order.
fn still_unminimised(
    errors: Vec<InternalErrorSummary>,
    firsts: &BTreeMap<minimise::FindingKey, &RunRecord>,
    chosen: &[ReproRecord],
) -> Vec<InternalErrorSummary> {
    let minimised: BTreeSet<minimise::FindingKey> =
        chosen.iter().map(minimise::finding_key).collect();
    let mut kept: BTreeMap<minimise::FindingKey, InternalErrorSummary> = BTreeMap::new();
    for error in errors {
        let Some(signature) = &error.minimising else {
            continue;
        };
        let finding = minimise::key_of(&error.subject, &error.defects, signature);
        if !firsts.contains_key(&finding) || minimised.contains(&finding) {
            continue;
        }
        match kept.get(&finding) {
            Some(earlier) if earlier.order() <= error.order() => {}
            _ => {
                kept.insert(finding, error);
            }
        }
    }
    let mut kept: Vec<InternalErrorSummary> = kept.into_values().collect();
    kept.sort_by(|a, b| a.order().cmp(&b.order()));
    kept
}

/// One line of what a merge's input holds: its shards (and their plans and seeds), the sources
/// it swept and the build of sim that wrote it.
fn holding(input: &Path, summary: Option<&Summary>, build_id: Option<&str>) -> String {
    let build = build_id.unwrap_or("not recorded");
    let Some(summary) = summary else {
        return format!(
            "{}: no {SUMMARY_FILE} (an unfinished sweep?); build {build}",
            input.display()
        );
    };
    let shards: Vec<String> = summary
        .shards
        .iter()
        .map(|shard| {
            let (part, seeds) = shard.part();
            let part = part.map_or("all".to_string(), |p| p.label());
            match &shard.plan {
                Some(plan) => format!("{part} of plan {plan} ({seeds})"),
                None => format!("{part} ({seeds})"),
            }
        })
        .collect();
    let sources: Vec<String> = summary
        .scenarios
        .iter()
        .map(ScenarioSummary::label)
        .collect();
    let mut settings: Vec<String> = summary
        .shards
        .iter()
        .flat_map(ShardSummary::settings)
        .collect();
    settings.sort();
    settings.dedup();
    let settings = match settings.as_slice() {
        [] => String::new(),
        _ => format!("; {}", settings.join(" ")),
    };
    format!(
        "{}: shard {}; sources {}; build {build}{settings}",
        input.display(),
        shards.join(", "),
        sources.join(", ")
    )
}

/// `coverage_problems`, all of them (what the tests compare).
#[cfg(test)]
fn coverage_warnings(shards: &[ShardSummary]) -> Vec<String> {
    let problems = coverage_problems(shards);
    problems
        .mismatched
        .into_iter()
        .chain(problems.missing)
        .collect()
}

/// What keeps a merge's shards from being one whole plan.
pub struct CoverageProblems {
    /// Shards of more than one plan, or of one plan split different ways (`1/3` with `2/4`).
    pub mismatched: Vec<String>,
    /// Shards of a plan that are not among them.
    pub missing: Vec<String>,
    /// The same shards, one entry each (`2/3`; `2/3 of plan P` when there is more than one plan),
    /// for the summary's `incomplete`.
    pub shards_missing: Vec<String>,
}

/// What is wrong with a merge of `shards` as a whole plan: shards of more than one plan, shards
/// that split one plan different ways (`1/3` with `2/4`), or a plan with shards missing. Shards
/// written before summaries named their plan are told apart by their seeds.
pub fn coverage_problems(shards: &[ShardSummary]) -> CoverageProblems {
    // Plan → shard counts → shard indices; `None` for an unsharded sweep (the whole plan).
    let mut plans: BTreeMap<String, BTreeMap<Option<u32>, BTreeSet<u32>>> = BTreeMap::new();
    for shard in shards {
        let (part, seeds) = shard.part();
        let plan = shard.plan.clone().unwrap_or(seeds);
        plans
            .entry(plan)
            .or_default()
            .entry(part.map(|s| s.count))
            .or_default()
            .extend(part.map(|s| s.index));
    }
    let label = |plan: &BTreeMap<Option<u32>, BTreeSet<u32>>| -> String {
        let parts: Vec<String> = plan
            .iter()
            .flat_map(|(count, indices)| match count {
                None => vec!["all".to_string()],
                Some(count) => indices.iter().map(|i| format!("{i}/{count}")).collect(),
            })
            .collect();
        parts.join(", ")
    };
    let mut mismatched = Vec::new();
    let mut missing_shards = Vec::new();
    let mut shards_missing = Vec::new();
    if plans.len() > 1 {
        let listed: Vec<String> = plans
            .iter()
            .map(|(plan, parts)| format!("{plan}: {}", label(parts)))
            .collect();
        mismatched.push(format!(
            "the merged shards come from {} different plans (other sources, seeds or scenario versions): {}",
            plans.len(),
            listed.join("; ")
        ));
    }
    for (plan, parts) in &plans {
        if parts.contains_key(&None) {
            continue; // An unsharded sweep covers its plan.
        }
        if parts.len() > 1 {
            mismatched.push(format!(
                "plan {plan}: the merged shards split it in different ways ({}); they overlap and leave gaps",
                label(parts)
            ));
            continue;
        }
        for (count, indices) in parts {
            let count = count.expect("unsharded plans were skipped");
            let missing: Vec<String> = (1..=count)
                .filter(|i| !indices.contains(i))
                .map(|i| format!("{i}/{count}"))
                .collect();
            shards_missing.extend(missing.iter().map(|shard| match plans.len() {
                1 => shard.clone(),
                _ => format!("{shard} of plan {plan}"),
            }));
            if !missing.is_empty() {
                missing_shards.push(format!(
                    "plan {plan}: shard {} missing; the merge holds {} of its {count} shards, so its summary is not the whole plan's",
                    missing.join(", "),
                    indices.len()
                ));
            }
        }
    }
    CoverageProblems {
        mismatched,
        missing: missing_shards,
        shards_missing,
    }
}

/// Two records of one pair from different inputs. Equal runs keep one of them (the same one
/// whatever the order of the inputs); different runs are a determinism finding.
fn reconcile(a: RunRecord, b: RunRecord) -> RunRecord {
    // A pair one input ran and another could not (sim's own bug, since fixed or met only
    // there) keeps the run: the internal error says nothing of the subject to compare.
    match (a.internal_error.is_some(), b.internal_error.is_some()) {
        (true, false) => return b,
        (false, true) => return a,
        _ => {}
    }
    let has_mismatch = |r: &RunRecord| r.signatures.iter().any(|s| s.starts_with("determinism:"));
    if has_mismatch(&a) || has_mismatch(&b) {
        return if has_mismatch(&a) { a } else { b };
    }
    let text = |r: &RunRecord| serde_json::to_string(r).expect("records serialize");
    let (mut kept, other) = if text(&a) <= text(&b) { (a, b) } else { (b, a) };
    if kept.deterministic_part() != other.deterministic_part() {
        let signature = format!("determinism:trace hash:{}", kept.subject);
        kept.findings.push(FindingBrief {
            signature: signature.clone(),
            kind: "determinism".into(),
            resource: "trace hash".into(),
            site: kept.subject.clone(),
            lifecycle: String::new(),
            headline: format!(
                "two sweeps ran this scenario and seed with different results: trace {} and {}",
                kept.trace_hash, other.trace_hash
            ),
            unknown: BTreeMap::new(),
        });
        kept.signatures.push(signature);
        kept.verdict = "fail".into();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_defects_are_the_set_its_finding_is_keyed_by() {
        let listed = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(defects_cell(&listed(&[])), "-");
        assert_eq!(defects_cell(&listed(&["b", "a", "b"])), "a, b");
    }

    /// A shard as a summary written before `index`, `count` and `seeds` were kept has it: its
    /// label alone says which it is.
    fn shard(label: &str, plan: Option<&str>) -> ShardSummary {
        ShardSummary {
            shard: label.into(),
            index: None,
            count: None,
            seeds: None,
            runs: 1,
            resumed: 0,
            wall_seconds: 0.0,
            run_seconds: 0.0,
            plan: plan.map(str::to_string),
            recheck_percent: None,
            shrink_runs_max: None,
        }
    }

    /// The same shard as a sweep writes it now: its label and its fields.
    fn shard_with_fields(label: &str, plan: Option<&str>) -> ShardSummary {
        let (part, seeds) = label.split_once(" seeds ").unwrap();
        let (start, end) = seeds.split_once("..").unwrap();
        let seeds = SeedsSpan {
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        };
        let part = (part != "all").then(|| super::super::Shard::parse(part).unwrap());
        let made = ShardSummary::new(part, seeds, 1, 0, 0.0, 0.0, plan.map(str::to_string));
        assert_eq!(made.shard, label);
        made
    }

    /// A summary written before the fields loads (serde defaults) and merges with the warnings
    /// its label gives; one written now gives the same warnings from its fields, whatever its
    /// label says, and old and new shards of one plan merge as one.
    #[test]
    fn shards_are_told_apart_by_their_fields_and_by_their_labels_in_older_summaries() {
        let old_json = r#"{"shard":"2/3 seeds 0..9","runs":4,"wall_seconds":1.0,"run_seconds":0.5,"plan":"p"}"#;
        let old: ShardSummary = serde_json::from_str(old_json).unwrap();
        assert_eq!(
            old,
            ShardSummary {
                runs: 4,
                wall_seconds: 1.0,
                run_seconds: 0.5,
                ..shard("2/3 seeds 0..9", Some("p"))
            }
        );
        let new = shard_with_fields("2/3 seeds 0..9", Some("p"));
        let written = serde_json::to_string(&new).unwrap();
        assert!(
            written.contains(r#""index":2,"count":3,"seeds":{"start":0,"end":9}"#),
            "{written}"
        );
        assert_eq!(serde_json::from_str::<ShardSummary>(&written).unwrap(), new);
        let unsharded = serde_json::to_string(&shard_with_fields("all seeds 0..9", None)).unwrap();
        assert!(
            !unsharded.contains("\"index\"") && unsharded.contains("\"seeds\""),
            "{unsharded}"
        );

        for plan in [Some("p"), None] {
            let (first_old, second_old) =
                (shard("1/3 seeds 0..9", plan), shard("2/3 seeds 0..9", plan));
            let warnings = coverage_warnings(&[first_old.clone(), second_old]);
            let second_new = shard_with_fields("2/3 seeds 0..9", plan);
            assert_eq!(
                warnings,
                coverage_warnings(&[
                    shard_with_fields("1/3 seeds 0..9", plan),
                    second_new.clone()
                ]),
                "plan {plan:?}"
            );
            assert_eq!(
                warnings,
                coverage_warnings(&[first_old, second_new]),
                "old and new together, plan {plan:?}"
            );
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("shard 3/3 missing"), "{warnings:?}");
        }
        // The fields decide: a label that does not parse (edited by a person, say) does not
        // make its shard pass for an unsharded sweep that covers the plan.
        let mut relabelled = new.clone();
        relabelled.shard = "shard two of three".into();
        let warnings =
            coverage_warnings(&[shard_with_fields("1/3 seeds 0..9", Some("p")), relabelled]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("shard 3/3 missing"), "{warnings:?}");
    }

    /// Summaries written before shards kept `index`, `count` and `seeds` (their labels say which
    /// shard they are) and summaries written now give the same warnings.
    #[test]
    fn a_merge_that_misses_a_shard_or_mixes_plans_or_counts_says_so() {
        let makers: [fn(&str, Option<&str>) -> ShardSummary; 2] = [shard, shard_with_fields];
        for shard in makers {
            let whole = [
                shard("1/3 seeds 0..9", Some("p")),
                shard("2/3 seeds 0..9", Some("p")),
                shard("3/3 seeds 0..9", Some("p")),
            ];
            assert!(coverage_warnings(&whole).is_empty());
            assert!(coverage_warnings(&[shard("all seeds 0..9", Some("p"))]).is_empty());

            let missing = coverage_warnings(&whole[..2]);
            assert_eq!(missing.len(), 1, "{missing:?}");
            assert!(missing[0].contains("shard 3/3 missing"), "{missing:?}");

            let mixed_counts =
                coverage_warnings(&[whole[0].clone(), shard("2/4 seeds 0..9", Some("p"))]);
            assert!(
                mixed_counts[0].contains("split it in different ways (1/3, 2/4)"),
                "{mixed_counts:?}"
            );

            let mut plans = whole.to_vec();
            plans.push(shard("all seeds 0..9", Some("q")));
            let mixed_plans = coverage_warnings(&plans);
            assert_eq!(mixed_plans.len(), 1, "{mixed_plans:?}");
            assert!(
                mixed_plans[0].contains("2 different plans"),
                "{mixed_plans:?}"
            );

            // Older summaries name no plan: their seeds tell plans apart.
            let old = [
                shard("1/2 seeds 0..9", None),
                shard("2/2 seeds 10..19", None),
            ];
            let warnings = coverage_warnings(&old);
            assert!(warnings[0].contains("2 different plans"), "{warnings:?}");
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("seeds 0..9: shard 2/2 missing")),
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn signatures_split_into_kind_resource_and_site() {
        assert_eq!(
            split_signature("leak:heap block:counter_create"),
            ("leak".into(), "heap block".into(), "counter_create".into())
        );
    }

    /// Internal errors are listed in their pairs' key order (seed first, as `PairKey` sorts),
    /// then by the finding whose minimising met them, which is all a sweep sorts them by.
    #[test]
    fn internal_errors_are_ordered_as_their_pairs_then_their_findings() {
        let error = |seed: u64, scenario: &str, defects: &[&str], minimising: Option<&str>| {
            InternalErrorSummary {
                scenario: scenario.into(),
                subject: "counter".into(),
                defects: defects.iter().map(|d| d.to_string()).collect(),
                seed,
                replay: String::new(),
                message: String::new(),
                minimising: minimising.map(String::from),
                subject_code: false,
            }
        };
        let mut errors = [
            error(2, "a", &[], None),
            error(1, "b", &[], Some("y")),
            error(1, "b", &["d"], Some("x")),
            error(1, "b", &[], Some("x")),
            error(1, "c", &[], None),
        ];
        let mut by_pair: Vec<(PairKey, Option<String>)> = errors
            .iter()
            .map(|e| {
                let key = PairKey {
                    seed: e.seed,
                    scenario: e.scenario.clone(),
                    defects: e.defects.clone(),
                };
                (key, e.minimising.clone())
            })
            .collect();
        by_pair.sort();
        errors.sort_by(|a, b| a.order().cmp(&b.order()));
        let sorted: Vec<(u64, &str, &[String], Option<&str>)> =
            errors.iter().map(InternalErrorSummary::order).collect();
        let expected: Vec<(u64, &str, &[String], Option<&str>)> = by_pair
            .iter()
            .map(|(k, m)| (k.seed, k.scenario.as_str(), &k.defects[..], m.as_deref()))
            .collect();
        assert_eq!(sorted, expected);
        assert_eq!((sorted[0].0, sorted[0].1, sorted[0].3), (1, "b", Some("x")));
        assert_eq!(sorted[4].0, 2, "seed first, not scenario");
    }

    /// A pair that one merged input ran and another could not (an internal error) keeps the
    /// run, in either order, and is no determinism finding; two internal errors stay one.
    #[test]
    fn a_merge_keeps_a_pairs_run_over_its_internal_error() {
        let key = PairKey {
            seed: 5,
            scenario: "gen:counter".into(),
            defects: Vec::new(),
        };
        let broken = RunRecord::internal_error(&key, "counter", &"it broke");
        let mut ran = broken.clone();
        ran.verdict = "pass".into();
        ran.internal_error = None;
        ran.trace_hash = format_seed(0x1234);
        assert_eq!(reconcile(broken.clone(), ran.clone()), ran);
        assert_eq!(reconcile(ran.clone(), broken.clone()), ran);
        assert_eq!(reconcile(broken.clone(), broken.clone()), broken);
        let summary = build(
            &[broken],
            &[],
            SeedsSpan { start: 0, end: 10 },
            Vec::new(),
            Path::new("out"),
        );
        assert_eq!(summary.verdict, "fail");
        assert!(summary.findings.is_empty());
        assert_eq!(summary.internal_errors.len(), 1);
        assert_eq!(summary.internal_errors[0].message, "it broke");
        assert_eq!(summary.runs_failed, 0);
    }
}
