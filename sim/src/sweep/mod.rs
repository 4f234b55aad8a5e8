//! The sweep: many (scenario, seed) pairs, in parallel, sharded, resumable, with every new finding
//! minimised and reported.
//!
//! A sweep's *plan* is every pair of a source (a scenario file, or a subject whose scenarios are
//! generated from each seed) and a seed in a half-open range, ordered by seed. `--shard I/N` keeps
//! the pairs whose stable hash is `I-1` modulo `N`; the shards of one plan are disjoint and their
//! union is exactly the unsharded plan, whatever machines run them.
//!
//! Each pair runs on one of `jobs` worker threads, or of those the host would start (`run_pool`'s
//! `Shortfall`, said in a warning); each worker owns its own copies of the sources, and every run
//! builds its own `Os`, so nothing is shared between runs. As each run finishes its
//! record is appended to `DIR/results.jsonl` (see `results.rs`); running the same command again
//! skips every pair already recorded. A failing run is run a second time, and so is a sample of
//! the passing runs (1% by default, chosen by a hash of the pair, so the sample is the same on
//! every machine); different trace hashes or findings are a `determinism` finding.
//!
//! A panic outside a run while running a pair (sim's own code's, or the subject's `Arbitrary`,
//! `validate_op` or `closing_ops` while the pair's scenario is made, which its record's
//! `subject_code` tells apart; the subject's in a run are `panic` findings) is that pair's
//! internal error, recorded like a run (verdict `error`, `Worker::internal_error`, by
//! `run_pool`'s one catch): the other pairs run on, the summary lists it apart from
//! the findings, a resume runs it again (its new record replaces the old, so a sim fixed since
//! gives the pair its result), and the sweep exits 3 once every output is written. A panic
//! while minimising a finding costs that finding's repro alone (`minimise::minimise_all`): it is
//! listed with the pairs' internal errors, and a resume minimises the finding again.
//!
//! Findings are deduplicated by subject, defect set and signature (`minimise::FindingKey`): a bug
//! found with defects off that signs as a seeded defect's finding is a finding of its own, not
//! counted into the seeded one. For each, the first pair that shows it (the
//! smallest seed) is shrunk and written to `DIR/repros/` (`minimise.rs`). Shrinking happens after
//! the runs, on the first pair in plan order, so the repro does not depend on which worker
//! finished first, and a shard that holds the first pair writes the same repro as the unsharded
//! sweep. Then `summary.json`, `junit.xml` and `report.html` are written (`summary.rs`,
//! `junit.rs`, `html.rs`); `sim sweep merge` unions the directories of shards.
//!
//! Generated scenarios are made with fault injection on (`GENERATED_FAULTS`): error paths are where
//! init/destroy asymmetries hide, a subject with its defects off must handle injected faults
//! cleanly, and the one-line repro `gen:SUBJECT:SEED` replays generated scenarios with faults on,
//! so a sweep that turned them off would print repro lines that replay a different run.
//!
//! The sweep reads the clock, but only to report durations and progress: no time reaches a run,
//! and durations are never compared.

pub mod html;
pub mod junit;
pub mod measure;
pub mod minimise;
pub mod progress;
pub mod promote;
pub mod results;
#[cfg(test)]
pub(crate) mod scratch;
pub mod summary;
pub mod zoo;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::registry::{DynScenario, Registry};
use crate::report;
use crate::runner::isolated::ForkServer;
use crate::runner::{Outcome, RunOptions, determinism_finding};
use crate::scenario::generate::GenerateOptions;
use crate::seed::{format_seed, parse_seed};

use results::{FindingBrief, PairKey, RunRecord};

/// Generated scenarios inject faults (in swarm mode, in about half of them); see the module docs.
pub const GENERATED_FAULTS: bool = true;

/// Where a sweep directory records the build that wrote it.
pub const BUILD_ID_FILE: &str = "build-id";

/// Where a sweep directory records the settings its results were made with (`SweepSettings`).
pub const SETTINGS_FILE: &str = "settings.json";

/// The settings of a sweep that shape what it keeps, beyond which pairs it runs (its plan): how
/// many passing runs were run twice, and how far each repro was shrunk. A resume keeps the
/// records and repros of the runs before it, so it must be given the settings they were made
/// with, or the summary would name settings that made only some of them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    pub recheck_percent: f64,
    pub shrink_runs_max: u64,
}

impl SweepSettings {
    /// The settings as the command line gives them.
    pub fn flags(&self) -> String {
        settings_flags(Some(self.recheck_percent), Some(self.shrink_runs_max)).join(" ")
    }

    /// The settings `dir` records; `None` when it records none (a directory a sweep wrote before
    /// they were recorded, or none at all).
    pub fn read(dir: &Path) -> Result<Option<SweepSettings>, String> {
        let path = dir.join(SETTINGS_FILE);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{shown}: cannot read: {error}")),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| results::json_error_at(&shown, Some("not a sweep's settings"), &error))
    }

    /// Records the settings in `dir`, whole or not at all.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(SETTINGS_FILE);
        let text = serde_json::to_string_pretty(self).expect("settings serialize") + "\n";
        minimise::write_atomic(&path, &text)
            .map_err(|error| format!("{}: cannot write: {error}", path.display()))
    }
}

/// `SweepSettings` as the command line gives them, a flag with its value each, where a setting
/// not known (in a summary written before it was kept) is left out: one spelling for a resume's
/// refusal and a merge's list of what its inputs hold.
fn settings_flags(recheck_percent: Option<f64>, shrink_runs_max: Option<u64>) -> Vec<String> {
    let recheck = recheck_percent.map(|percent| format!("--recheck-percent {percent}"));
    let shrink = shrink_runs_max.map(|runs| format!("--shrink-runs-max {runs}"));
    recheck.into_iter().chain(shrink).collect()
}

/// Checks a sweep's settings against those `out` records before it resumes anything. Results
/// made with other settings are refused, not resumed: their rechecks are of another sample and
/// their repros were shrunk with another budget, and a summary naming the new settings would
/// misstate them (and pass a merge's check of settings). A directory that holds no results yet
/// records the given settings; one that holds results but records no settings (written before
/// sims recorded them) resumes as it always did, and stays unrecorded, since what made its
/// results is unknown.
fn check_settings(out: &Path, results_path: &Path, given: SweepSettings) -> Result<(), SweepError> {
    let holds_results = std::fs::metadata(results_path).is_ok_and(|m| m.len() > 0);
    if !holds_results {
        return given.write(out).map_err(SweepError::input);
    }
    match SweepSettings::read(out).map_err(SweepError::input)? {
        Some(recorded) if recorded != given => Err(SweepError::input(format!(
            "{}: its results were swept with {}, and this sweep gives {}; resuming would keep \
             those results under a summary that names these settings, so nothing was run\n\
             note: to sweep with these settings, start afresh with another --out (or delete {}); \
             to resume, give the recorded settings: {}",
            out.display(),
            recorded.flags(),
            given.flags(),
            out.display(),
            recorded.flags()
        ))),
        _ => Ok(()),
    }
}

/// The default share of passing runs that are run twice to check determinism.
pub const RECHECK_PERCENT_DEFAULT: f64 = 1.0;

/// The default bound on runs spent shrinking one finding.
pub const SHRINK_RUNS_MAX_DEFAULT: u64 = 5_000;

/// Parses `A..B` (half-open; each side a seed as `sim run --seed` takes it) or a single seed `N`
/// (meaning `N..N+1`).
pub fn parse_seed_range(text: &str) -> Result<Range<u64>, String> {
    let range = match text.split_once("..") {
        Some((start, end)) => {
            let start = parse_seed(start).map_err(|e| format!("seed range `{text}`: {e}"))?;
            let end = parse_seed(end).map_err(|e| format!("seed range `{text}`: {e}"))?;
            start..end
        }
        None => {
            let seed = parse_seed(text).map_err(|e| format!("seed range `{text}`: {e}"))?;
            seed..seed.saturating_add(1)
        }
    };
    if range.is_empty() {
        return Err(format!(
            "seed range `{text}` is empty: it is half-open, `A..B` runs seeds A up to B-1, so B must be larger than A"
        ));
    }
    Ok(range)
}

/// One shard of a sweep: `index` counts from 1 up to `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `1 <= I <= N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("bad shard `{text}`: expected I/N with 1 <= I <= N, such as 2/4");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard runs `key`.
    pub fn contains(&self, key: &PairKey) -> bool {
        stable_hash(key) % u64::from(self.count) == u64::from(self.index - 1)
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// FNV-1a over the pair key: fixed here (not `std`'s hasher, whose output may change between
/// releases), so a shard holds the same pairs on every machine.
pub fn stable_hash(key: &PairKey) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(key.scenario.as_bytes());
    feed(&[0xff]);
    feed(key.defects.join(",").as_bytes());
    feed(&[0xff]);
    feed(&key.seed.to_le_bytes());
    hash
}

/// Whether a passing pair is in the determinism sample: a second mix of the stable hash, so the
/// sample is independent of the shard partition.
pub fn in_recheck_sample(key: &PairKey, percent: f64) -> bool {
    let mut mixed = stable_hash(key) ^ 0x9e37_79b9_7f4a_7c15;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    let threshold = (percent.clamp(0.0, 100.0) * 100.0).round() as u64;
    mixed % 10_000 < threshold
}

/// Where a sweep's scenarios come from.
pub struct Source {
    label: String,
    subject: String,
    defects: Vec<String>,
    /// A parsed file; `None` for generated scenarios.
    template: Option<Box<dyn DynScenario>>,
    /// Seeds of this source when not the sweep's (hand-written files may cost far more per run
    /// than generated scenarios, so `--file-seeds` gives them their own budget).
    seeds: Option<Range<u64>>,
    /// For a file, `scenario_hash` of its scenario: a resume reruns the records of a file that
    /// has changed since. `None` for generated scenarios, which only the seed, the defects and
    /// the build decide (a resume by another build warns).
    content_hash: Option<String>,
}

impl Source {
    /// A scenario file, run as written (its own defects) with each seed of the plan. Its label
    /// is `path` normalized by `file_label`.
    pub fn file(path: impl AsRef<Path>, scenario: Box<dyn DynScenario>) -> Source {
        let meta = scenario.meta();
        Source {
            label: file_label(path.as_ref()),
            subject: meta.subject,
            defects: meta.defects,
            content_hash: Some(scenario_hash(scenario.as_ref())),
            template: Some(scenario),
            seeds: None,
        }
    }

    /// Scenarios generated for `subject` from each seed, with `defects` on.
    pub fn generated(subject: &str, defects: Vec<String>) -> Source {
        Source {
            label: generated_label(subject),
            subject: subject.to_string(),
            defects,
            template: None,
            seeds: None,
            content_hash: None,
        }
    }

    /// Runs this source with `seeds` instead of the sweep's range.
    pub fn with_seeds(mut self, seeds: Range<u64>) -> Source {
        self.seeds = Some(seeds);
        self
    }

    /// The seeds this source runs in a sweep over `default`.
    pub fn seeds(&self, default: &Range<u64>) -> Range<u64> {
        self.seeds.clone().unwrap_or_else(|| default.clone())
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn defects(&self) -> &[String] {
        &self.defects
    }

    pub fn content_hash(&self) -> Option<&str> {
        self.content_hash.as_deref()
    }

    fn key(&self, seed: u64) -> PairKey {
        PairKey {
            seed,
            scenario: self.label.clone(),
            defects: self.defects.clone(),
        }
    }

    /// A copy for another worker thread (scenarios are `Send`, not `Sync`).
    pub fn duplicate(&self) -> Source {
        Source {
            label: self.label.clone(),
            subject: self.subject.clone(),
            defects: self.defects.clone(),
            template: self.template.as_ref().map(|t| t.clone_box()),
            seeds: self.seeds.clone(),
            content_hash: self.content_hash.clone(),
        }
    }

    /// The scenario of one seed.
    pub fn instantiate(&self, registry: &Registry, seed: u64) -> Box<dyn DynScenario> {
        match &self.template {
            Some(template) => {
                let mut scenario = template.clone_box();
                scenario.set_seed(seed);
                scenario
            }
            None => {
                let options = GenerateOptions {
                    defects: self.defects.clone(),
                    faults: GENERATED_FAULTS,
                };
                registry
                    .get(&self.subject)
                    .expect("sources name registered subjects (checked by the caller)")
                    .generate(seed, &options)
            }
        }
    }

    /// The command that replays the pair as it was swept (before shrinking).
    pub fn original_replay(&self, seed: u64) -> String {
        pair_replay(
            &self.label,
            &self.subject,
            &self.defects,
            seed,
            self.template.is_none(),
        )
    }
}

/// The label of the scenarios generated for `subject`, which keys their records.
pub fn generated_label(subject: &str) -> String {
    format!("gen:{subject}")
}

/// The command that replays one pair as it was swept: `sim run FILE --seed N` for a scenario
/// file (`label`), `sim replay gen:SUBJECT:SEED…` for a scenario `generated` for `subject`.
pub fn pair_replay(
    label: &str,
    subject: &str,
    defects: &[String],
    seed: u64,
    generated: bool,
) -> String {
    if generated {
        report::replay_command(report::generated_repro(subject, seed, defects))
    } else {
        report::run_command(label, seed)
    }
}

/// The label of a scenario file: its path with `.` components, repeated separators and a
/// trailing separator dropped, so that `./scenarios/zoo/` and `scenarios/zoo` name the same files.
/// The label keys resume and the shard hash, so two spellings of one directory must give one
/// label. It stays as relative as it was given (labels are printed, stored in results and put in
/// replay commands, which must keep working from where the sweep ran), and `..` is kept (resolving
/// it without the file system is wrong when a component is a symlink). A path already in this form
/// (`scenarios/x.toml`, as `make sweep` passes them) keeps its label exactly.
pub fn file_label(path: &Path) -> String {
    let mut label = PathBuf::new();
    for component in path.components() {
        // `components()` already drops `.` everywhere but at the start, and empty components.
        if component != std::path::Component::CurDir {
            label.push(component);
        }
    }
    if label.as_os_str().is_empty() {
        return path.display().to_string();
    }
    label.display().to_string()
}

/// A hash of what a scenario file makes a sweep run: the parsed scenario printed back
/// (`to_toml`), with its seed set to 0 since the sweep sets the seed of every run.
///
/// Printed back rather than the file's bytes: a comment, a blank line or a checkout that turned
/// line ends into CRLF (one shard's CI runner, say) changes the bytes and not one run, and would
/// rerun the file's every record and split a merge. The printer is already trusted to hold
/// everything a run depends on: repros are written with it and replay the same trace hash.
///
/// A scenario that does not print (an op TOML cannot hold, which a subject's own deserializer
/// may make) hashes its printing with each such op as JSON (`to_toml_for_hash`), which holds any
/// integer: the text of the refusal, hashed before, named only the first such op, so two
/// versions of a file that differ elsewhere shared a hash, and a resume kept the old version's
/// records as this one's (and a merge took the two for one version).
pub fn scenario_hash(scenario: &dyn DynScenario) -> String {
    let mut scenario = scenario.clone_box();
    scenario.set_seed(0);
    format_seed(crate::trace::hash_str(&scenario.to_toml_for_hash()))
}

/// How progress is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// A plain line every few seconds (logs, CI).
    Lines,
    Quiet,
}

/// Everything one sweep needs.
pub struct SweepConfig {
    pub sources: Vec<Source>,
    pub seeds: Range<u64>,
    pub jobs: usize,
    pub shard: Option<Shard>,
    pub out: PathBuf,
    pub recheck_percent: f64,
    pub shrink_runs_max: u64,
    pub progress: ProgressMode,
    /// Copy each finding's repro into this directory (`--promote`).
    pub promote_to: Option<PathBuf>,
    /// Identifies the build of sim that runs the sweep (the CLI hashes its executable). A resume
    /// by another build warns: its earlier records may no longer be what this build would find.
    pub build_id: Option<String>,
}

impl SweepConfig {
    pub fn new(sources: Vec<Source>, seeds: Range<u64>, out: impl Into<PathBuf>) -> SweepConfig {
        SweepConfig {
            sources,
            seeds,
            jobs: 1,
            shard: None,
            out: out.into(),
            recheck_percent: RECHECK_PERCENT_DEFAULT,
            shrink_runs_max: SHRINK_RUNS_MAX_DEFAULT,
            progress: ProgressMode::Quiet,
            promote_to: None,
            build_id: None,
        }
    }
}

/// Why a sweep could not finish: bad input (exit 2) or a bug in sim (exit 3).
#[derive(Debug)]
pub struct SweepError {
    pub internal: bool,
    pub message: String,
}

impl SweepError {
    pub fn input(message: impl Into<String>) -> SweepError {
        SweepError {
            internal: false,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> SweepError {
        SweepError {
            internal: true,
            message: message.into(),
        }
    }
}

/// What a finished sweep hands back to its caller.
pub struct SweepReport {
    pub summary: summary::Summary,
    /// Things fixed on the way (a truncated results line) that the user should know about.
    pub warnings: Vec<String>,
    /// How many of `warnings`, from the first, were already printed as the runs started (with
    /// progress on): those known before the runs, such as a fork server that could not start.
    /// A nightly sweep should say so at once, not hours later.
    pub warnings_printed: usize,
    /// Pairs found already done in the results file.
    pub resumed: usize,
    /// Pairs run by this invocation.
    pub ran: usize,
    /// Why copying the repros into `config.promote_to` failed at the end. The summary and the
    /// outputs are complete then, and the caller shows them before the error.
    pub promote_error: Option<String>,
    /// What promotion did with each repro, a line each (`promote::promote`'s: copied, already
    /// promoted, not promoted as already pinned by another file, or a file of that name kept):
    /// results, not warnings.
    pub promoted: Vec<String>,
}

impl SweepReport {
    /// The sweep's internal errors (`summary::Summary::internal_errors`) as one error of sim's,
    /// for a caller that measures with a sweep (detection, scaling): a pair that never ran would
    /// skew its numbers unseen, so it stops, as it did before such pairs were recorded.
    pub fn internal_errors_stop(&self) -> Result<(), SweepError> {
        let errors = &self.summary.internal_errors;
        let Some(first) = errors.first() else {
            return Ok(());
        };
        Err(SweepError::internal(format!(
            "internal error in a sweep: sim {}, the first {} seed {}: {}\n  replay: {}\n  the sweep's outputs are in {}",
            self.summary.internal_errors_said(),
            first.scenario,
            format_seed(first.seed),
            first.message,
            first.replay,
            self.summary.out
        )))
    }
}

/// The most (scenario, seed) pairs one sweep invocation plans. Its plan and its records are held
/// in memory, about 400 B a pair (4 million pairs measured 1.7 GB), so a range such as
/// `--seeds 0..18446744073709551615`, which used to fill the host's memory until an allocation
/// failed and the process aborted, is refused before anything runs.
pub const PLANNED_PAIRS_MAX: u64 = 4_000_000;

/// The most pairs all shards of one sweep may share: each shard walks all of them to pick its own
/// (about 40 ns a pair), so this bounds that walk to under a minute.
pub const SHARDED_PAIRS_MAX: u64 = 256_000_000;

/// Refuses a sweep whose plan would not fit `PLANNED_PAIRS_MAX` (per shard, as the shards split
/// the pairs about evenly) or `SHARDED_PAIRS_MAX`, saying how to split it.
pub fn check_plan_size(
    sources: &[Source],
    seeds: &Range<u64>,
    shard: Option<Shard>,
) -> Result<(), String> {
    let total: u128 = sources
        .iter()
        .map(|source| {
            let range = source.seeds(seeds);
            u128::from(range.end.saturating_sub(range.start))
        })
        .sum();
    let shards = u128::from(shard.map_or(1, |s| s.count));
    let per_shard = total.div_ceil(shards);
    if per_shard > u128::from(PLANNED_PAIRS_MAX) || total > u128::from(SHARDED_PAIRS_MAX) {
        return Err(format!(
            "this sweep has {total} (scenario, seed) pairs ({} source(s) over their seed ranges); \
             one sweep plans at most {PLANNED_PAIRS_MAX} pairs per shard and {SHARDED_PAIRS_MAX} \
             over all its shards: use a shorter `--seeds` range (or `--file-seeds`), or split it with `--shard I/N`",
            sources.len()
        ));
    }
    Ok(())
}

/// The plan: every (source, seed) pair of this shard, in key order, with its source's index.
pub fn plan(sources: &[Source], seeds: &Range<u64>, shard: Option<Shard>) -> Vec<(PairKey, usize)> {
    let mut pairs = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        for seed in source.seeds(seeds) {
            let key = source.key(seed);
            if shard.is_none_or(|s| s.contains(&key)) {
                // A source given twice is swept once.
                pairs.entry(key).or_insert(index);
            }
        }
    }
    pairs.into_iter().collect()
}

/// Names the plan of `sources` over `seeds` (not the shard): every source's label, defects,
/// seeds and scenario version, in a fixed order. Shards of one sweep command share it, so a
/// merge can tell whether its shards make up one plan.
pub fn plan_id(sources: &[Source], seeds: &Range<u64>) -> String {
    let mut described: Vec<String> = sources
        .iter()
        .map(|source| {
            let range = source.seeds(seeds);
            format!(
                "{}\u{ff}{}\u{ff}{}..{}\u{ff}{}",
                source.label,
                source.defects.join(","),
                range.start,
                range.end,
                source.content_hash.as_deref().unwrap_or("")
            )
        })
        .collect();
    described.sort();
    described.dedup();
    format_seed(crate::trace::hash_str(&described.join("\n")))
}

/// The smallest range holding every source's seeds.
pub fn seeds_span(sources: &[Source], seeds: &Range<u64>) -> Range<u64> {
    let ranges: Vec<Range<u64>> = sources.iter().map(|s| s.seeds(seeds)).collect();
    match (
        ranges.iter().map(|r| r.start).min(),
        ranges.iter().map(|r| r.end).max(),
    ) {
        (Some(start), Some(end)) => start..end,
        _ => seeds.clone(),
    }
}

fn run_options() -> RunOptions {
    RunOptions {
        // Repro files pin signatures and the trace hash, not the schedule, so recording it would
        // only cost time.
        record_schedule: false,
        ..RunOptions::default()
    }
}

/// Runs one pair (twice when it fails or is in the sample) and returns its record.
pub fn run_pair(
    registry: &Registry,
    source: &Source,
    key: &PairKey,
    recheck_percent: f64,
) -> RunRecord {
    let scenario = source.instantiate(registry, key.seed);
    run_pair_with(key, recheck_percent, || scenario.run(run_options()))
}

/// `run_pair` with the run itself given: `run` runs the pair once, wherever it likes.
fn run_pair_with(
    key: &PairKey,
    recheck_percent: f64,
    mut run: impl FnMut() -> Outcome,
) -> RunRecord {
    let started = Instant::now();
    let first = run();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let recheck = !first.passed() || in_recheck_sample(key, recheck_percent);
    let mut record = RunRecord::of(key, &first, recheck, duration_ms);
    if recheck {
        let second = run();
        if second.trace_hash != first.trace_hash || second.signatures() != first.signatures() {
            let finding = determinism_finding(&first, &second);
            record.signatures.push(finding.signature());
            record.findings.push(FindingBrief::of(&finding, &first));
            record.verdict = "fail".into();
        }
    }
    record
}

/// What a worker asks its fork server: run the pair of this source (by index) and seed.
type PairRequest = (usize, u64);

/// One sweep worker: its own copies of the sources and, when some source is host-backed, its own
/// fork server (`runner::isolated::ForkServer`).
///
/// Without the server, every host-backed run forks this process from a worker thread, and a
/// fork costs in proportion to the process's memory, which grows with the records collected: at
/// 10,000 seeds of every subject the forks took more system time than the runs. The server is
/// forked before any worker starts, while the process is small and single-threaded, so no fork
/// happens in a multi-threaded process; and its runner runs request after request, so that a
/// fork is paid per crash of real code rather than per run (which halved a `dlmalloc` sweep).
struct Worker {
    sources: Vec<Source>,
    server: Option<ForkServer<PairRequest>>,
}

impl Worker {
    /// Workers for `jobs` threads, and a warning for each reason some of their fork servers could
    /// not start. Call before any thread starts (see `Worker`).
    ///
    /// A worker whose server cannot start forks for each host-backed run itself: the same
    /// records, more slowly. The warning says why (the failed call and its errno), so that a
    /// slow sweep is not a mystery; workers that failed for one reason share one line.
    fn start_all(
        registry: &Registry,
        sources: &[Source],
        host_backed: &[bool],
        jobs: usize,
    ) -> (Vec<Worker>, Vec<String>) {
        let any_host_backed = host_backed.iter().any(|&h| h);
        let mut workers_by_failure: BTreeMap<String, usize> = BTreeMap::new();
        let workers = (0..jobs)
            .map(|_| {
                let started = any_host_backed.then(|| {
                    ForkServer::start(
                        |&(index, seed): &PairRequest| {
                            sources[index]
                                .instantiate(registry, seed)
                                .run_here(run_options())
                        },
                        |&(index, seed): &PairRequest, status| {
                            sources[index]
                                .instantiate(registry, seed)
                                .lost_run(run_options(), status)
                        },
                    )
                });
                let server = match started {
                    Some(Ok(server)) => Some(server),
                    Some(Err(error)) => {
                        *workers_by_failure.entry(error.to_string()).or_default() += 1;
                        None
                    }
                    None => None,
                };
                Worker {
                    sources: sources.iter().map(Source::duplicate).collect(),
                    server,
                }
            })
            .collect();
        let warnings = workers_by_failure
            .into_iter()
            .map(|(reason, failed)| {
                format!(
                    "{failed} of {jobs} sweep workers could not start their fork server ({reason}); they fork for each host-backed run instead: the same results, more slowly"
                )
            })
            .collect();
        (workers, warnings)
    }

    /// The record of the pair at `key` whose making or run panicked outside the run, with the
    /// `payload` (`run_pool`'s `on_panic`): the subject's panics in a run are findings, so a
    /// panic here is sim's (comparing the pair's two runs, say) or the subject's while the pair's
    /// scenario is made (its report says so), and one pair's bug costs that pair, not the sweep
    /// and the runs still to come. Its record keeps a resume from meeting the bug again.
    ///
    /// The worker's fork server is let go: it may have unwound mid-exchange, and a reply left on
    /// its channel would be read as the next pair's. Without it the worker forks for each
    /// host-backed run: the same records, more slowly.
    fn internal_error(
        &mut self,
        index: usize,
        key: &PairKey,
        payload: &(dyn std::any::Any + Send),
    ) -> RunRecord {
        self.server = None;
        RunRecord::internal_error(key, self.sources[index].subject(), payload)
    }

    /// `run_pair` for the source at `index`, through the server when that source is host-backed.
    fn run_pair(
        &mut self,
        registry: &Registry,
        index: usize,
        host_backed: bool,
        key: &PairKey,
        recheck_percent: f64,
    ) -> RunRecord {
        let source = &self.sources[index];
        match self.server.as_mut().filter(|_| host_backed) {
            Some(server) => run_pair_with(key, recheck_percent, || {
                // A server that died (killed from outside) costs speed, not results.
                server
                    .ask(&(index, key.seed))
                    .unwrap_or_else(|| source.instantiate(registry, key.seed).run(run_options()))
            }),
            None => run_pair(registry, source, key, recheck_percent),
        }
    }
}

/// How often the calling thread collects finished results from the workers.
const COLLECT_EVERY: Duration = Duration::from_millis(50);

/// Runs `work` over `items` on `states.len()` threads, each with its own state, and hands every
/// result to `sink` on the calling thread. `sink` returns false to stop handing out new items. A
/// panic in `work` is the item's alone: `on_panic` makes the item's result of its payload, on the
/// worker's thread (where a hook of sim's noted where it was raised) with the worker's state.
///
/// Workers never wake the calling thread per result: they push onto a shared list, and the caller
/// collects it every `COLLECT_EVERY` (and once the last worker is done). Waking a thread per run
/// costs a context switch per run, which on a small virtual machine halved the throughput of
/// short runs; anything that must happen as soon as a run finishes (appending its record) belongs
/// in `work` (and `on_panic`).
///
/// A host that gives fewer threads than states (`ulimit -u`, address space for the stacks) costs
/// speed, not items: the workers that did start take every item, and the returned `Shortfall`
/// says how many started and why the rest did not. With none started no item is run (the
/// `Shortfall` says 0), and the caller says so: `std::thread::scope`'s own spawn panicked there,
/// which stopped a sweep as sim's internal error with no summary.
#[must_use]
pub fn run_pool<I: Sync, S: Send, R: Send>(
    items: &[I],
    states: Vec<S>,
    work: impl Fn(&mut S, &I) -> R + Sync,
    on_panic: impl Fn(&mut S, &I, Box<dyn std::any::Any + Send>) -> R + Sync,
    mut sink: impl FnMut(R) -> bool,
) -> Option<Shortfall> {
    let asked = states.len();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let finished = Mutex::new(Finished {
        results: Vec::new(),
        workers_done: 0,
    });
    let all_done = Condvar::new();
    // The program the sweep's call was given (`cli::main_with_args`), which the workers' repro
    // headers and replay lines name as the calling thread's do.
    let program = crate::scenario::program();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(asked);
        let mut shortfall = None;
        for mut state in states {
            let (next, stop, work, on_panic) = (&next, &stop, &work, &on_panic);
            let (finished, all_done) = (&finished, &all_done);
            let spawned = spawn_worker(scope, handles.len(), move || {
                // First, so that however the worker ends it is counted done.
                let done = WorkerDone { finished, all_done };
                let _program = crate::scenario::name_program_for_call(program);
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        break;
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        work(&mut state, item)
                    }))
                    .unwrap_or_else(|payload| on_panic(&mut state, item, payload));
                    done.push(result);
                }
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    // The host is out of threads for this process: asking again for each of the
                    // states left would fail the same way.
                    shortfall = Some(Shortfall {
                        started: handles.len(),
                        asked,
                        error,
                    });
                    break;
                }
            }
        }
        let started = handles.len();
        loop {
            let (batch, done) = {
                let mut guard = lock(&finished);
                if guard.workers_done < started {
                    guard = all_done
                        .wait_timeout(guard, COLLECT_EVERY)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                (
                    std::mem::take(&mut guard.results),
                    guard.workers_done == started,
                )
            };
            for result in batch {
                if !sink(result) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            if done {
                break;
            }
        }
        // A panic of `on_panic` itself, sim's bug, goes on as it came.
        for handle in handles {
            if let Err(payload) = handle.join() {
                std::panic::resume_unwind(payload);
            }
        }
        shortfall
    })
}

/// How many of the workers asked of `run_pool` the host gave a thread, and why it refused the
/// next one.
#[derive(Debug)]
pub struct Shortfall {
    pub started: usize,
    pub asked: usize,
    pub error: std::io::Error,
}

impl Shortfall {
    /// The warning for workers of `what` (`sweep`, `minimising`) when some started: the results
    /// are the same, only slower.
    pub fn warning(&self, what: &str) -> String {
        let Shortfall {
            started,
            asked,
            error,
        } = self;
        format!(
            "only {started} of {asked} {what} workers could start a thread ({error}); {started} did the work of {asked}: the same results, more slowly (a --jobs within what the host gives, `ulimit -u`, starts them all)"
        )
    }

    /// The error when no worker of `what` started: nothing could run (exit 2). `jobs` is the
    /// `--jobs` asked.
    pub fn none_started(&self, what: &str, jobs: usize) -> SweepError {
        SweepError::input(format!(
            "--jobs {jobs}: not one {what} worker could start a thread ({}); the host gives this process no more threads (see `ulimit -u`)",
            self.error
        ))
    }
}

#[cfg(test)]
thread_local! {
    /// When set, each `run_pool` called on this thread starts at most this many worker threads
    /// and is refused the next as if the host had said EAGAIN, so that a test can see how it
    /// copes with a host out of threads.
    static WORKER_THREADS_MAX: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// Starts `run_pool`'s worker number `worker` (from 0), or says why the host would not.
fn spawn_worker<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    worker: usize,
    body: impl FnOnce() + Send + 'scope,
) -> std::io::Result<std::thread::ScopedJoinHandle<'scope, ()>> {
    #[cfg(test)]
    if WORKER_THREADS_MAX.get().is_some_and(|max| worker >= max) {
        return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
    }
    #[cfg(not(test))]
    let _ = worker;
    std::thread::Builder::new().spawn_scoped(scope, body)
}

/// The results `run_pool`'s workers have pushed and the calling thread not yet collected.
struct Finished<R> {
    results: Vec<R>,
    workers_done: usize,
}

/// Counts its `run_pool` worker done when the worker ends, however it ends: one that a panic of
/// `on_panic` ended must not leave the calling thread waiting for it.
struct WorkerDone<'a, R> {
    finished: &'a Mutex<Finished<R>>,
    all_done: &'a Condvar,
}

impl<R> WorkerDone<'_, R> {
    fn push(&self, result: R) {
        lock(self.finished).results.push(result);
    }
}

impl<R> Drop for WorkerDone<'_, R> {
    fn drop(&mut self) {
        lock(self.finished).workers_done += 1;
        // Once per worker, not per result: the calling thread checks whether it was the last.
        self.all_done.notify_one();
    }
}

/// The files a sweep or merge writes whole at the top of its directory, each through a temporary
/// (`minimise::write_atomic`), and only while it holds the directory's results lock.
const WRITTEN_WHOLE: [&str; 6] = [
    results::RESULTS_FILE,
    summary::SUMMARY_FILE,
    summary::JUNIT_FILE,
    summary::REPORT_FILE,
    BUILD_ID_FILE,
    SETTINGS_FILE,
];

/// Removes the temporaries that a sweep or merge killed while writing left in `out`: those of
/// `WRITTEN_WHOLE`, and in `repros/` those of repros and sidecars. The next write of a file
/// replaces its temporary, but nothing might write it again: a sweep appends to the results
/// file, which only a merge writes whole, so a merge killed while writing it left
/// `results.partial` beside the results for good. `_lock` is `out`'s results lock, which every
/// writer of these files holds while it writes them: none is being written.
pub(crate) fn remove_stale_temporaries(out: &Path, _lock: &results::Appender) {
    for name in WRITTEN_WHOLE {
        // Best effort: one that cannot be removed is replaced by the next write of its file.
        let _ = std::fs::remove_file(minimise::temporary_of(&out.join(name)));
    }
    minimise::remove_stale_partials(&out.join(minimise::REPROS_DIR));
}

/// Locks a mutex whose holders never panic while holding it (a worker's panic is caught before).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a sweep to the end: the runs (resuming), the minimisation of new findings, and the
/// outputs in `config.out`.
pub fn sweep(registry: &Registry, config: &SweepConfig) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    check_plan_size(&config.sources, &config.seeds, config.shard).map_err(SweepError::input)?;
    // A source the host cannot run (its real memory refused) would fail every one of its seeds
    // the same way: said once, before anything runs, rather than recorded as a finding per seed.
    for source in &config.sources {
        let seeds = source.seeds(&config.seeds);
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            source.instantiate(registry, seeds.start)
        }));
        let Ok(scenario) = made else {
            // Making the first seed's scenario panicked (sim's code or the subject's): that pair records the
            // panic as its internal error when it runs, as any other pair's would be; stopping
            // here would stop every resume of the sweep here too. The location the hook noted
            // is that pair's to report, not a later panic's on this thread.
            let _ = crate::subject::take_panic_location();
            continue;
        };
        scenario.check_host().map_err(|refusal| {
            SweepError::internal(format!("{}: cannot run here: {refusal}", source.label))
        })?;
    }
    if let Some(dir) = &config.promote_to {
        promote::prepare_target(dir).map_err(SweepError::input)?;
    }
    let out = &config.out;
    let repros = out.join(minimise::REPROS_DIR);
    std::fs::create_dir_all(&repros).map_err(|e| {
        SweepError::input(format!(
            "{}: cannot create the output directory: {}",
            repros.display(),
            summary::dir_error(&repros, e)
        ))
    })?;
    let results_path = out.join(results::RESULTS_FILE);
    // Locked before reading, so a second sweep into the same directory never reads (or repairs)
    // a file the first is appending to.
    let appender = results::Appender::open(&results_path).map_err(|e| {
        SweepError::input(format!(
            "{}: cannot open for appending: {e}",
            results_path.display()
        ))
    })?;
    remove_stale_temporaries(out, &appender);
    let settings = SweepSettings {
        recheck_percent: config.recheck_percent,
        shrink_runs_max: config.shrink_runs_max,
    };
    check_settings(out, &results_path, settings)?;
    let loaded = results::load(&results_path, true).map_err(|e| SweepError::input(e.message))?;
    let mut warnings = loaded.warnings;
    if let Some(build_id) = &config.build_id {
        let path = out.join(BUILD_ID_FILE);
        let previous = std::fs::read_to_string(&path).ok();
        if !loaded.records.is_empty() && previous.as_ref().is_some_and(|p| p.trim() != build_id) {
            warnings.push(format!(
                "{}: resuming results recorded by another build of sim; they are kept as they are, but for its internal errors, which are run again (delete the directory, or use another --out, to sweep afresh with this build)",
                results_path.display()
            ));
        }
        // Whole or not at all: an empty id left by a kill would make the next resume warn of
        // another build.
        minimise::write_atomic(&path, &format!("{build_id}\n"))
            .map_err(|e| SweepError::input(format!("{}: cannot write: {e}", path.display())))?;
    }

    let plan = plan(&config.sources, &config.seeds, config.shard);
    let planned: BTreeMap<&PairKey, usize> =
        plan.iter().map(|(key, index)| (key, *index)).collect();
    let content_hashes: Vec<Option<String>> = config
        .sources
        .iter()
        .map(|source| source.content_hash.clone())
        .collect();
    let mut records: BTreeMap<PairKey, RunRecord> = BTreeMap::new();
    let mut outside = 0usize;
    let mut stale = 0usize;
    let mut broken = 0usize;
    for record in loaded.records {
        match planned.get(&record.key()) {
            // A record without a hash (written before records held one) cannot show that it ran
            // this version of the file, so it is run again too: file runs are a small share of
            // a nightly sweep, and a stale failure or pass costs more than rerunning them.
            Some(&index)
                if content_hashes[index].is_some()
                    && record.scenario_hash != content_hashes[index] =>
            {
                stale += 1;
            }
            // Sim's own bug met this pair: run again, as it may be fixed by now (its panic,
            // if not, is caught again as this pair's alone). The new record is appended after
            // it and replaces it when the file is read back (`results::load`).
            Some(_) if record.internal_error.is_some() => broken += 1,
            Some(_) => {
                records.insert(record.key(), record);
            }
            None => outside += 1,
        }
    }
    if outside > 0 {
        warnings.push(format!(
            "{}: {outside} record(s) from another plan (other seeds, scenarios or shard) are kept in the file and left out of this summary",
            results_path.display()
        ));
    }
    if stale > 0 {
        warnings.push(format!(
            "{}: {stale} record(s) ran another version of their scenario file (it was edited since, or they were recorded by a sim that did not note the version); they are run again, and the old records are kept in the file and left out of this summary",
            results_path.display()
        ));
    }
    let resumed = records.len();
    let todo: Vec<(PairKey, usize)> = plan
        .iter()
        .filter(|(key, _)| !records.contains_key(key))
        .cloned()
        .collect();

    let jobs = config.jobs.max(1).min(todo.len().max(1));
    let host_backed: Vec<bool> = config
        .sources
        .iter()
        .map(|source| {
            registry
                .get(source.subject())
                .is_some_and(|subject| subject.info().host_backed)
        })
        .collect();
    // Before the progress display, which may start a thread of its own.
    let (workers, server_warnings) =
        Worker::start_all(registry, &config.sources, &host_backed, jobs);
    warnings.extend(server_warnings);
    let mut progress = progress::Progress::new(config.progress, plan.len() as u64);
    let mut warnings_printed = progress.warn_all(&warnings);
    for record in records.values() {
        progress.resumed(record);
    }
    // Said before the runs: whoever reruns a killed sweep learns at once that it picked up where
    // the last one stopped, and from which file, rather than only in the closing summary.
    if resumed > 0 || broken > 0 {
        let failed = records.values().filter(|r| r.failed()).count();
        // Said at once: whoever resumes after fixing sim learns that those pairs get their
        // results now, and otherwise why the same internal errors come back.
        let broken = match broken {
            0 => String::new(),
            broken => format!(" ({broken} of them met an internal error and are run again)"),
        };
        progress.note(&format!(
            "resuming {}: {resumed} of {} runs already recorded ({failed} of them failed), running the other {}{broken}",
            results_path.display(),
            plan.len(),
            todo.len()
        ));
    }
    let mut failure: Option<SweepError> = None;
    let runs_started = Instant::now();
    // The closure runs on every worker, so it takes the plain settings, not the config (whose
    // sources are `Send` but not `Sync`). Each worker appends its record itself, the moment the
    // run is done, so a kill loses only the runs still in flight.
    let recheck_percent = config.recheck_percent;
    let (appender, host_backed, content_hashes) = (&appender, &host_backed, &content_hashes);
    let append = |mut record: RunRecord, index: usize| {
        record.scenario_hash = content_hashes[index].clone();
        appender
            .append(&record)
            .map(|()| record)
            .map_err(|error| format!("{}: cannot append: {error}", appender.path().display()))
    };
    let shortfall = run_pool(
        &todo,
        workers,
        |worker, (key, index)| {
            let record =
                worker.run_pair(registry, *index, host_backed[*index], key, recheck_percent);
            append(record, *index)
        },
        |worker, (key, index), payload| {
            append(worker.internal_error(*index, key, &*payload), *index)
        },
        |result| {
            let record = match result {
                Ok(record) => record,
                Err(message) => {
                    failure = Some(SweepError::input(message));
                    return false;
                }
            };
            progress.finished(&record);
            records.insert(record.key(), record);
            true
        },
    );
    let run_seconds = runs_started.elapsed().as_secs_f64();
    if let Some(error) = failure {
        progress.abandon();
        return Err(error);
    }
    let runs_short_of_threads = shortfall.is_some();
    if let Some(shortfall) = shortfall {
        if shortfall.started == 0 {
            progress.abandon();
            return Err(shortfall.none_started("sweep", config.jobs));
        }
        let warning = shortfall.warning("sweep");
        warnings_printed += progress.warn_all(std::slice::from_ref(&warning));
        warnings.push(warning);
    }
    let ran = records.len() - resumed;

    let records: Vec<RunRecord> = records.into_values().collect();
    let pending = minimise::pending(config, &records);
    warnings_printed += progress.warn_all(&pending.warnings);
    warnings.extend(pending.warnings.iter().cloned());
    // Said only when there is work: a resumed sweep whose repros are all up to date has none.
    if pending.to_minimise() > 0 {
        progress.phase("minimising findings");
    }
    let mut minimised = minimise::minimise_all(registry, config, pending)?;
    // The host that gave the runs fewer threads than asked most likely gives minimising fewer
    // too: that was said once already.
    if !runs_short_of_threads {
        warnings_printed += progress.warn_all(&minimised.warnings);
        warnings.append(&mut minimised.warnings);
    }
    progress.finish();

    let span = seeds_span(&config.sources, &config.seeds);
    let span = summary::SeedsSpan {
        start: span.start,
        end: span.end,
    };
    let mut shard_summary = summary::ShardSummary::new(
        config.shard,
        span,
        records.len() as u64,
        resumed as u64,
        round3(started.elapsed().as_secs_f64()),
        round3(run_seconds),
        Some(plan_id(&config.sources, &config.seeds)),
    );
    shard_summary.recheck_percent = Some(config.recheck_percent);
    shard_summary.shrink_runs_max = Some(config.shrink_runs_max);
    let mut summary = summary::build(
        &records,
        &minimised.sidecars,
        span,
        vec![shard_summary],
        out,
    );
    // After the pairs' own: each is a finding's, whose first pair ran.
    summary.internal_errors.extend(minimised.internal_errors);
    summary::write_outputs(out, &summary).map_err(SweepError::input)?;
    let mut promote_error = None;
    let mut promoted = Vec::new();
    if let Some(dir) = &config.promote_to {
        let files: Vec<PathBuf> = summary
            .findings
            .iter()
            .filter_map(|f| f.repro.as_ref().map(PathBuf::from))
            .collect();
        match promote::promote(registry, &files, dir) {
            Ok(lines) => promoted = lines,
            Err(message) => promote_error = Some(message),
        }
    }
    Ok(SweepReport {
        summary,
        warnings,
        warnings_printed,
        resumed,
        ran,
        promote_error,
        promoted,
    })
}

pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `dir/name` as a string, the way paths are printed in reports and replay commands.
pub(crate) fn display_path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job's panic is that job's result, which `on_panic` makes of its payload; the other jobs
    /// run on, each result handed over once.
    #[test]
    fn a_jobs_panic_is_made_its_result_by_on_panic_and_the_other_jobs_run() {
        let items: Vec<u32> = (0..20).collect();
        let mut results = Vec::new();
        let shortfall = run_pool(
            &items,
            vec![(); 3],
            |_, &item| {
                assert!(item % 7 != 3, "job {item} broke");
                item
            },
            |_, &item, payload| {
                let message = crate::subject::panic_message(&*payload);
                assert_eq!(message, format!("job {item} broke"));
                1000 + item
            },
            |result| {
                results.push(result);
                true
            },
        );
        assert!(shortfall.is_none(), "{shortfall:?}");
        results.sort();
        let mut expected: Vec<u32> = (0..20)
            .map(|item| if item % 7 == 3 { 1000 + item } else { item })
            .collect();
        expected.sort();
        assert_eq!(results, expected);
    }

    /// A panic of `on_panic` itself (sim's bug) unwinds out of `run_pool` as it came, once every
    /// worker is done, rather than leave the calling thread waiting for the worker it ended.
    #[test]
    fn a_panic_of_on_panic_unwinds_out_of_run_pool() {
        let escaped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = run_pool(
                &[1u8, 2, 3],
                vec![(); 2],
                |_, _| -> u8 { panic!("the job broke") },
                |_, _, _| panic!("on_panic broke"),
                |_| true,
            );
        }))
        .expect_err("the panic unwinds out");
        assert_eq!(crate::subject::panic_message(&*escaped), "on_panic broke");
    }

    /// A host that starts fewer worker threads than asked (here a test hook, as if the third
    /// spawn had met EAGAIN under `ulimit -u`) costs speed, not items: the workers that started
    /// run every item, and the shortfall says how many started and why. `std::thread::scope`'s
    /// own spawn panicked there, which stopped a sweep as sim's internal error.
    #[test]
    fn workers_the_host_cannot_start_leave_their_items_to_those_that_did() {
        let items: Vec<u32> = (0..50).collect();
        let mut results = Vec::new();
        WORKER_THREADS_MAX.set(Some(2));
        let shortfall = run_pool(
            &items,
            vec![(); 5],
            |_, &item| item,
            |_, _, payload| std::panic::resume_unwind(payload),
            |result| {
                results.push(result);
                true
            },
        );
        WORKER_THREADS_MAX.set(None);
        results.sort();
        assert_eq!(results, items);
        let shortfall = shortfall.expect("the host refused the third worker");
        assert_eq!((shortfall.started, shortfall.asked), (2, 5));
        assert_eq!(shortfall.error.raw_os_error(), Some(libc::EAGAIN));
        let reason = std::io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(
            shortfall.warning("sweep"),
            format!(
                "only 2 of 5 sweep workers could start a thread ({reason}); 2 did the work of 5: the same results, more slowly (a --jobs within what the host gives, `ulimit -u`, starts them all)"
            )
        );
    }

    /// With no worker thread started, no item runs and `run_pool` neither waits for one nor
    /// panics; the sweep says so as a usage error naming `--jobs` (exit 2).
    #[test]
    fn a_host_that_starts_no_worker_runs_no_item_and_the_sweep_names_jobs() {
        WORKER_THREADS_MAX.set(Some(0));
        let mut handed = 0;
        let shortfall = run_pool(
            &[1u8, 2, 3],
            vec![(); 2],
            |_, &item| item,
            |_, _, payload| std::panic::resume_unwind(payload),
            |_| {
                handed += 1;
                true
            },
        );
        assert_eq!(handed, 0);
        let shortfall = shortfall.expect("no worker started");
        assert_eq!((shortfall.started, shortfall.asked), (0, 2));

        let registry = Registry::builtin();
        let scratch = scratch::ScratchDir::new("no-worker-threads");
        let out = scratch.path().join("sweep");
        let mut config = SweepConfig::new(vec![Source::generated("counter", vec![])], 0..4, &out);
        config.jobs = 3;
        let error = sweep(&registry, &config).err().expect("nothing could run");
        WORKER_THREADS_MAX.set(None);
        assert!(!error.internal, "a usage error (exit 2): {}", error.message);
        assert!(
            error
                .message
                .starts_with("--jobs 3: not one sweep worker could start a thread ("),
            "{}",
            error.message
        );
    }

    /// A whole sweep on a host that starts one worker of three completes with its summary, the
    /// same as one that starts them all, and warns once of the shortfall.
    #[test]
    fn a_sweep_the_host_gives_fewer_threads_completes_and_warns_once() {
        let registry = Registry::builtin();
        let sweep_into = |name: &str| {
            let scratch = scratch::ScratchDir::new(name);
            let out = scratch.path().join("sweep");
            let sources = vec![
                Source::generated("counter", vec![]),
                Source::generated("counter", vec!["leak-on-evict".into()]),
            ];
            let mut config = SweepConfig::new(sources, 0..6, &out);
            config.jobs = 3;
            let report = sweep(&registry, &config).unwrap();
            assert!(out.join("summary.json").is_file());
            report
        };
        let all = sweep_into("all-worker-threads");
        WORKER_THREADS_MAX.set(Some(1));
        let one = sweep_into("one-worker-thread");
        WORKER_THREADS_MAX.set(None);

        assert!(all.warnings.is_empty(), "{:?}", all.warnings);
        assert_eq!(one.warnings.len(), 1, "{:?}", one.warnings);
        assert!(
            one.warnings[0].starts_with("only 1 of 3 sweep workers could start a thread ("),
            "{:?}",
            one.warnings
        );
        assert!(
            !one.summary.findings.is_empty(),
            "minimising ran on one worker too"
        );
        assert_eq!(one.ran, 12);
        assert_eq!(one.summary.verdict, all.summary.verdict);
        assert_eq!(one.summary.trace_hash, all.summary.trace_hash);
    }

    /// Minimising warns of its own shortfall when the runs had none: here a resume with every
    /// pair recorded (one worker asked for no runs) minimises the findings whose repros were
    /// lost on a host that starts one worker of the three asked.
    #[test]
    fn minimising_on_fewer_threads_than_asked_writes_every_repro_and_warns() {
        let registry = Registry::builtin();
        let scratch = scratch::ScratchDir::new("minimise-one-worker-thread");
        let out = scratch.path().join("sweep");
        let sources = vec![
            Source::generated("counter", vec!["leak-on-evict".into()]),
            Source::generated("wasi-runtime", vec!["prestats-lock-leak".into()]),
            Source::generated("wasi-runtime", vec!["fd-table-lock-leak".into()]),
        ];
        let mut config = SweepConfig::new(sources, 0..6, &out);
        config.jobs = 3;
        let first = sweep(&registry, &config).unwrap();
        assert!(first.summary.findings.len() >= 2, "{:?}", first.summary);
        let repros = out.join(minimise::REPROS_DIR);
        let written = |dir: &Path| std::fs::read_dir(dir).unwrap().count();
        let repro_files = written(&repros);
        std::fs::remove_dir_all(&repros).unwrap();

        WORKER_THREADS_MAX.set(Some(1));
        let resumed = sweep(&registry, &config).unwrap();
        WORKER_THREADS_MAX.set(None);
        assert_eq!(resumed.ran, 0);
        assert_eq!(written(&repros), repro_files);
        assert_eq!(resumed.warnings.len(), 1, "{:?}", resumed.warnings);
        let asked = first.summary.findings.len().min(3);
        assert!(
            resumed.warnings[0].starts_with(&format!(
                "only 1 of {asked} minimising workers could start a thread ("
            )),
            "{:?}",
            resumed.warnings
        );
    }

    #[test]
    fn seed_ranges_are_half_open_and_reject_empty_ones() {
        assert_eq!(parse_seed_range("0..100").unwrap(), 0..100);
        assert_eq!(parse_seed_range("0x10..0x12").unwrap(), 16..18);
        assert_eq!(parse_seed_range("7").unwrap(), 7..8);
        assert!(parse_seed_range("5..5").unwrap_err().contains("empty"));
        assert!(parse_seed_range("9..3").is_err());
        assert!(parse_seed_range("a..b").is_err());
    }

    #[test]
    fn shards_partition_the_plan_exactly() {
        assert!(Shard::parse("0/4").is_err());
        assert!(Shard::parse("5/4").is_err());
        assert!(Shard::parse("1/0").is_err());
        let sources = vec![
            Source::generated("counter", vec![]),
            Source::generated("counter", vec!["leak-on-evict".into()]),
        ];
        let all = plan(&sources, &(0..300), None);
        assert_eq!(all.len(), 600);
        let mut union = Vec::new();
        for index in 1..=3 {
            let shard = Shard::parse(&format!("{index}/3")).unwrap();
            let part = plan(&sources, &(0..300), Some(shard));
            assert!(
                part.len() > 100 && part.len() < 300,
                "roughly balanced: {}",
                part.len()
            );
            union.extend(part);
        }
        union.sort();
        assert_eq!(union, all, "disjoint, and together exactly the whole plan");
    }

    #[test]
    fn a_plan_too_large_to_hold_or_to_walk_is_refused_before_it_is_made() {
        let sources = vec![
            Source::generated("counter", vec![]),
            Source::generated("counter", vec!["leak-on-evict".into()]),
        ];
        let half = PLANNED_PAIRS_MAX / 2;
        assert_eq!(check_plan_size(&sources, &(0..half), None), Ok(()));
        let error = check_plan_size(&sources, &(0..half + 1), None).unwrap_err();
        assert!(
            error.contains(&format!("{} (scenario, seed) pairs", 2 * half + 2)),
            "{error}"
        );
        let two = Shard::parse("1/2").unwrap();
        assert_eq!(check_plan_size(&sources, &(0..half * 2), Some(two)), Ok(()));
        let many = Shard::parse("1/4294967295").unwrap();
        assert!(check_plan_size(&sources, &(0..u64::MAX), Some(many)).is_err());
        // A file's own `--file-seeds` range counts, not the sweep's.
        let file = Source::generated("counter", vec![]).with_seeds(0..PLANNED_PAIRS_MAX + 1);
        assert!(check_plan_size(&[file], &(0..1), None).is_err());
    }

    #[test]
    fn file_labels_of_one_path_spelt_differently_are_one_label() {
        for (given, label) in [
            ("scenarios/zoo/x.toml", "scenarios/zoo/x.toml"),
            ("./scenarios/zoo/x.toml", "scenarios/zoo/x.toml"),
            ("./scenarios//zoo/./x.toml", "scenarios/zoo/x.toml"),
            ("scenarios/zoo/x.toml/", "scenarios/zoo/x.toml"),
            ("x.toml", "x.toml"),
            ("/abs//dir/./x.toml", "/abs/dir/x.toml"),
            ("../up/x.toml", "../up/x.toml"),
            ("a/../b.toml", "a/../b.toml"),
        ] {
            assert_eq!(file_label(Path::new(given)), label, "{given}");
        }
    }

    #[test]
    fn the_recheck_sample_is_about_the_asked_share() {
        let sampled = (0..100_000u64)
            .filter(|&seed| {
                let key = PairKey {
                    seed,
                    scenario: "gen:counter".into(),
                    defects: vec![],
                };
                in_recheck_sample(&key, 1.0)
            })
            .count();
        assert!((800..1200).contains(&sampled), "{sampled}");
        let key = PairKey {
            seed: 1,
            scenario: "x".into(),
            defects: vec![],
        };
        assert!(in_recheck_sample(&key, 100.0));
        assert!(!in_recheck_sample(&key, 0.0));
    }

    /// A fork server that cannot start (here a test hook, as if `fork` had failed with EAGAIN)
    /// costs speed, never results, and the sweep says why.
    #[test]
    fn workers_whose_fork_server_cannot_start_warn_once_and_record_the_same_runs() {
        use crate::runner::isolated::FORK_SERVER_START_ERRNO;

        let registry = Registry::builtin();
        let sweep_into = |name: &str| {
            let scratch = scratch::ScratchDir::new(name);
            let out = scratch.path().join("sweep");
            let mut config =
                SweepConfig::new(vec![Source::generated("dlmalloc", vec![])], 0..4, &out);
            config.jobs = 2;
            sweep(&registry, &config).unwrap()
        };
        let served = sweep_into("fork-servers");
        FORK_SERVER_START_ERRNO.set(Some(libc::EAGAIN));
        let unserved = sweep_into("no-fork-servers");
        FORK_SERVER_START_ERRNO.set(None);

        assert!(served.warnings.is_empty(), "{:?}", served.warnings);
        let reason = std::io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(
            unserved.warnings,
            vec![format!(
                "2 of 2 sweep workers could not start their fork server (fork failed: {reason}); they fork for each host-backed run instead: the same results, more slowly"
            )]
        );
        assert_eq!(unserved.ran, 4);
        assert_eq!(unserved.summary.verdict, served.summary.verdict);
        assert_eq!(unserved.summary.trace_hash, served.summary.trace_hash);
    }
}
