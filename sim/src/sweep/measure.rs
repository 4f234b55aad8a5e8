//! Measurements built on the sweep: how fast each defect is detected (`make detect`), and how the
//! sweep's throughput scales from one job to two (`sweep_scaling_2_jobs`, for `make bench`).
//!
//! Detection is generic over the registry: for every subject, one sweep of its generated
//! scenarios with every defect off, then one per defect with only that defect on, over the same
//! seeds. A seed *detects* a defect when its run with the defect shows a signature that the same
//! seed's run without defects does not; "seeds to first finding" counts seeds up to the first such
//! seed. Attributing by seed keeps a subject's defects-off findings (if it has any) from being
//! credited to a defect.
//!
//! A defect missed fails `make detect`, unless `NOT_REACHED_BY_GENERATED` lists it: a defect
//! known to need a scenario that seeds do not generate within the detection's budget. Its row
//! still runs and says what it found; a listed defect that is found is `yes` as any other.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::results::RunRecord;
use super::summary::Summary;
use super::{ProgressMode, Source, SweepConfig, SweepError, round3, sweep};
use crate::registry::Registry;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub runs: u64,
    pub runs_failed: u64,
    pub signatures: Vec<String>,
    pub wall_seconds: f64,
}

/// Defects that generated scenarios are known not to reach within `make detect`'s seeds, as
/// (subject, defect, why). Missing one of them does not fail the detection; every other defect
/// missed does. Each is checked elsewhere (a zoo scenario and a regression file).
pub const NOT_REACHED_BY_GENERATED: &[(&str, &str, &str)] = &[(
    "allocator",
    "absorbed-pages-never-collected",
    "found by the fuzzer, not seeded: its growth of committed pages past the declared cache of 16,384 needs one shape (private heaps rotated twice, another thread freeing their medium blocks) repeated about 96 times with nothing else in that size class, which the coverage-guided fuzzer took 60-83 s to build (README, Fuzzing); with the defect on, generated seeds 0..20000 found nothing at all (0 of 20000 runs failed), twenty times the detection's seeds; `make zoo` (heap-rotate-cross-thread-free.toml) and its regression file check it",
)];

/// Why `make detect` does not expect generated scenarios of `subject` to find `defect`, when it
/// does not (`NOT_REACHED_BY_GENERATED`).
pub fn not_reached_by_generated(subject: &str, defect: &str) -> Option<&'static str> {
    NOT_REACHED_BY_GENERATED
        .iter()
        .find(|(s, d, _)| *s == subject && *d == defect)
        .map(|(_, _, why)| *why)
}

fn expected_by_default() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DefectDetection {
    pub defect: String,
    pub runs: u64,
    pub detected: bool,
    /// Whether the generated scenarios are expected to find the defect; false for one that
    /// `NOT_REACHED_BY_GENERATED` lists, whose miss fails nothing.
    #[serde(default = "expected_by_default")]
    pub expected: bool,
    /// Seeds swept up to and including the first seed that detected the defect.
    pub seeds_to_first_finding: Option<u64>,
    pub first_seed: Option<u64>,
    /// Signatures that appeared with the defect on and not on the same seed with defects off.
    pub signatures: Vec<String>,
    /// Op count of the minimised repro of the first detecting signature, and before shrinking.
    pub minimised_ops: Option<u64>,
    pub ops_before: Option<u64>,
    pub repro: Option<String>,
    pub wall_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubjectDetection {
    pub subject: String,
    pub defects_off: Baseline,
    pub defects: Vec<DefectDetection>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub seeds: String,
    pub subjects: Vec<SubjectDetection>,
}

impl Detection {
    /// Whether every defect the generated scenarios are expected to find was found.
    pub fn all_detected(&self) -> bool {
        self.subjects
            .iter()
            .all(|s| s.defects.iter().all(|d| d.detected || !d.expected))
    }
}

fn records_of(dir: &Path) -> Result<Vec<RunRecord>, SweepError> {
    super::results::load(&dir.join(super::results::RESULTS_FILE), false)
        .map(|loaded| loaded.records)
        .map_err(|e| SweepError::input(e.message))
}

/// Runs the detection sweeps into `dir/SUBJECT` and `dir/SUBJECT+DEFECT`.
pub fn detect(
    registry: &Registry,
    seeds: Range<u64>,
    jobs: usize,
    dir: &Path,
    progress: ProgressMode,
) -> Result<Detection, SweepError> {
    let mut subjects = Vec::new();
    for subject in registry.subjects() {
        let info = subject.info();
        let run =
            |defects: Vec<String>, name: String| -> Result<(Summary, Vec<RunRecord>), SweepError> {
                let out = dir.join(name);
                let mut config = SweepConfig::new(
                    vec![Source::generated(info.name, defects)],
                    seeds.clone(),
                    &out,
                );
                config.jobs = jobs;
                config.progress = progress;
                let report = sweep(registry, &config)?;
                report.internal_errors_stop()?;
                Ok((report.summary, records_of(&out)?))
            };
        let (off_summary, off_records) = run(Vec::new(), info.name.to_string())?;
        let off_by_seed: BTreeMap<u64, BTreeSet<&String>> = off_records
            .iter()
            .map(|r| (r.seed, r.signatures.iter().collect()))
            .collect();
        let mut defects = Vec::new();
        for defect in &info.defects {
            let (summary, records) = run(
                vec![defect.name.to_string()],
                format!("{}+{}", info.name, defect.name),
            )?;
            let mut first: Option<(u64, String)> = None;
            let mut signatures = BTreeSet::new();
            for record in &records {
                let off = off_by_seed.get(&record.seed);
                for signature in &record.signatures {
                    if off.is_none_or(|off| !off.contains(signature)) {
                        signatures.insert(signature.clone());
                        // Records are in the order runs finished, which with several jobs is
                        // not seed order: the first finding is the lowest seed's.
                        if first.as_ref().is_none_or(|(seed, _)| record.seed < *seed) {
                            first = Some((record.seed, signature.clone()));
                        }
                    }
                }
            }
            let minimised = first.as_ref().and_then(|(_, signature)| {
                summary.findings.iter().find(|f| &f.signature == signature)
            });
            defects.push(DefectDetection {
                defect: defect.name.to_string(),
                runs: summary.runs,
                detected: first.is_some(),
                expected: not_reached_by_generated(info.name, defect.name).is_none(),
                seeds_to_first_finding: first.as_ref().map(|(seed, _)| seed - seeds.start + 1),
                first_seed: first.as_ref().map(|(seed, _)| *seed),
                signatures: signatures.into_iter().collect(),
                minimised_ops: minimised.and_then(|f| f.ops_after),
                ops_before: minimised.and_then(|f| f.ops_before),
                repro: minimised.and_then(|f| f.repro.clone()),
                wall_seconds: summary.wall_seconds,
            });
        }
        subjects.push(SubjectDetection {
            subject: info.name.to_string(),
            defects_off: Baseline {
                runs: off_summary.runs,
                runs_failed: off_summary.runs_failed,
                signatures: off_summary
                    .findings
                    .iter()
                    .map(|f| f.signature.clone())
                    .collect(),
                wall_seconds: off_summary.wall_seconds,
            },
            defects,
        });
    }
    Ok(Detection {
        seeds: format!("{}..{}", seeds.start, seeds.end),
        subjects,
    })
}

/// Runs per second of one sweep with 1 job and with 2, each the median of `rounds`; the ratio of
/// the two and the machine check beside it, each the median of the rounds' own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub runs: u64,
    pub one_job_runs_per_second: f64,
    pub two_jobs_runs_per_second: f64,
    /// The median over rounds of each round's 2-job rate over its 1-job rate: the two sweeps of
    /// a round run back to back, so drift between rounds (a neighbour starting or stopping on a
    /// shared machine) does not enter a ratio as it can enter a quotient of two medians.
    pub ratio: f64,
    /// The median over rounds of `spin_parallelism`, measured after each round's sweeps.
    pub spin_parallelism: f64,
}

impl Scaling {
    /// The `make bench` entry (DESIGN.md format): our value is the 2-job rate, the peer the 1-job
    /// rate, and the ratio (> 1 is faster) their quotient.
    pub fn metric(&self) -> Value {
        json!({
            "value": round3(self.two_jobs_runs_per_second),
            "unit": "runs/s",
            "peer": "sim sweep --jobs 1",
            "peer_value": round3(self.one_job_runs_per_second),
            "ratio": round3(self.ratio),
            "spin_parallelism": round3(self.spin_parallelism),
        })
    }
}

pub const SCALING_METRIC: &str = "sweep_scaling_2_jobs";

/// The shortest timed sweep a rate is taken from. A sweep of a few runs is over in
/// milliseconds: the runs' time is then mostly the pool's start (threads, fork servers) and the
/// clock's resolution, and a rate from it says nothing about throughput (a sweep recorded as 0 s
/// gave billions of runs/s). Refusing is better than lengthening the sweep behind the user's back:
/// the seeds they gave are what they asked to measure.
pub const SCALING_RUN_SECONDS_MIN: f64 = 1.0;

/// Measures `sources` over `seeds` with `--jobs 1` and `--jobs 2`, alternating, in fresh
/// directories under `scratch`, and after each pair the machine check (`spin_parallelism`).
/// Only the runs are timed (not minimising or reports), and nothing is shrunk, so the figure is
/// the pool's throughput.
pub fn scaling(
    registry: &Registry,
    sources: &[Source],
    seeds: Range<u64>,
    rounds: usize,
    scratch: &Path,
) -> Result<Scaling, SweepError> {
    if rounds == 0 {
        return Err(SweepError::input(
            "--rounds 0: at least one round is needed to measure anything",
        ));
    }
    let mut measured = Vec::new();
    let mut runs = 0;
    for round in 0..rounds {
        let mut rates = [0.0; 2];
        for jobs in [1usize, 2] {
            let out = scratch.join(format!("jobs-{jobs}-round-{round}"));
            let _ = std::fs::remove_dir_all(&out);
            let mut config = SweepConfig::new(
                sources.iter().map(Source::duplicate).collect(),
                seeds.clone(),
                &out,
            );
            config.jobs = jobs;
            config.shrink_runs_max = 0;
            let report = sweep(registry, &config)?;
            report.internal_errors_stop()?;
            let _ = std::fs::remove_dir_all(&out);
            let shard = &report.summary.shards[0];
            if shard.run_seconds < SCALING_RUN_SECONDS_MIN {
                return Err(SweepError::input(format!(
                    "the {jobs}-job sweep of {} runs took {:.3} s, under the {SCALING_RUN_SECONDS_MIN} s a rate is taken from (shorter, the pool's start and the clock's resolution outweigh the runs); give more seeds (make bench uses --seeds 0..6000)",
                    shard.runs, shard.run_seconds
                )));
            }
            runs = shard.runs;
            rates[jobs - 1] = shard.runs as f64 / shard.run_seconds;
        }
        measured.push(Round {
            one_job_runs_per_second: rates[0],
            two_jobs_runs_per_second: rates[1],
            spin_parallelism: spin_parallelism(),
        });
    }
    Ok(Scaling::from_rounds(runs, &measured))
}

/// One round of `scaling`: the two sweeps, then the machine check.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub one_job_runs_per_second: f64,
    pub two_jobs_runs_per_second: f64,
    pub spin_parallelism: f64,
}

impl Scaling {
    /// The medians of `rounds` (at least one): of each rate, of each round's ratio, and of the
    /// machine checks.
    pub fn from_rounds(runs: u64, rounds: &[Round]) -> Scaling {
        let median = |value: fn(&Round) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(value).collect();
            values.sort_by(|a, b| a.total_cmp(b));
            values[values.len() / 2]
        };
        Scaling {
            runs,
            one_job_runs_per_second: median(|r| r.one_job_runs_per_second),
            two_jobs_runs_per_second: median(|r| r.two_jobs_runs_per_second),
            ratio: median(|r| r.two_jobs_runs_per_second / r.one_job_runs_per_second.max(1e-9)),
            spin_parallelism: median(|r| r.spin_parallelism),
        }
    }
}

/// How much parallelism the machine gives right now: the speed-up of two threads that only
/// spin on arithmetic over one. On a shared machine it can be well under 2, and a low
/// `sweep_scaling_2_jobs` then says more about the neighbours than about the sweep. It is not a
/// ceiling for the sweep: an arithmetic loop and a sweep ask different things of the CPUs (and
/// of whatever the host shares between them), and on the machine this was written on the sweep
/// gained more from a second job (2.0–2.1, measured in the same rounds) than the loop did
/// (1.88–1.98). Where it gains more than 2, the pool is not why: that comes with the host-backed
/// subject in the mix (README, Benchmarks, Sweeps).
pub fn spin_parallelism() -> f64 {
    fn spin() {
        let mut x = 0u64;
        for i in 0..200_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
    }
    let timed = |threads: usize| {
        let started = std::time::Instant::now();
        side_by_side(threads, spin);
        started.elapsed().as_secs_f64()
    };
    let one = timed(1);
    let two = timed(2);
    round3(2.0 * one / two.max(1e-9))
}

/// Calls `work` once on each of `threads` threads at once. A call whose thread the host will not
/// start (`ulimit -u`) is made on the calling thread instead, after the others started, so the
/// figure says the parallelism the host gave: `std::thread::scope`'s own spawn panicked there, as
/// sim's internal error. Returns how many calls the calling thread made.
fn side_by_side(threads: usize, work: impl Fn() + Sync) -> usize {
    let work = &work;
    std::thread::scope(|scope| {
        (0..threads)
            .filter(|&thread| super::spawn_worker(scope, thread, work).is_err())
            .collect::<Vec<_>>()
            .into_iter()
            .map(|_| work())
            .count()
    })
}

/// The metrics of a `results.json` (metric name → entry); none when the file does not exist
/// yet. A file that exists but is not such an object is an error that names it, and is never
/// replaced: it holds other benchmarks' figures, which one metric must not cost.
pub fn read_metrics(path: &Path) -> Result<BTreeMap<String, Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new());
        }
        Err(error) => return Err(format!("{}: cannot read: {error}", path.display())),
    };
    serde_json::from_str(&text).map_err(|error| {
        let at = super::results::json_error_at(
            &path.display().to_string(),
            Some("not a JSON object of metrics"),
            &error,
        );
        format!("{at}; the file was left as it is: fix or delete it and run again")
    })
}

/// Merges one metric into a `results.json` (metric name → entry), keeping the others.
pub fn merge_metric(path: &Path, name: &str, value: Value) -> Result<(), String> {
    merge_metrics(path, BTreeMap::from([(name.to_string(), value)]))
}

/// Merges `fresh` metrics into a `results.json`, keeping the others (`make bench` writes its
/// figures here, `sim sweep-scaling` and `fuzz/bench.py` theirs).
pub fn merge_metrics(path: &Path, fresh: BTreeMap<String, Value>) -> Result<(), String> {
    let mut all = read_metrics(path)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("{}: cannot create: {e}", parent.display()))?;
    }
    all.extend(fresh);
    std::fs::write(
        path,
        serde_json::to_string_pretty(&all).expect("json") + "\n",
    )
    .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sweep::scratch::ScratchDir;

    /// A detection of one subject whose defects were found or not as `found` says.
    pub(crate) fn detection(subject: &str, found: &[(&str, bool)]) -> Detection {
        let defects = found
            .iter()
            .map(|(defect, detected)| DefectDetection {
                defect: defect.to_string(),
                runs: 1,
                detected: *detected,
                expected: not_reached_by_generated(subject, defect).is_none(),
                seeds_to_first_finding: None,
                first_seed: None,
                signatures: Vec::new(),
                minimised_ops: None,
                ops_before: None,
                repro: None,
                wall_seconds: 0.0,
            })
            .collect();
        Detection {
            seeds: "0..1".into(),
            subjects: vec![SubjectDetection {
                subject: subject.into(),
                defects_off: Baseline {
                    runs: 1,
                    runs_failed: 0,
                    signatures: Vec::new(),
                    wall_seconds: 0.0,
                },
                defects,
            }],
        }
    }

    /// The allocator's fuzzer-found defect, which generated scenarios do not reach, fails no
    /// detection when missed; its seeded defect, and any defect of another subject, still does.
    #[test]
    fn a_missed_defect_fails_the_detection_unless_generated_scenarios_are_known_not_to_reach_it() {
        let registry = crate::registry::Registry::builtin();
        for (subject, defect, _) in NOT_REACHED_BY_GENERATED {
            let info = registry
                .get(subject)
                .expect("a subject of the registry")
                .info();
            assert!(
                info.defects.iter().any(|d| d.name == *defect),
                "{subject} has no defect {defect}"
            );
        }
        let absorbed = "absorbed-pages-never-collected";
        let seeded = "collect-after-segment-free";
        assert!(detection("allocator", &[(seeded, true), (absorbed, false)]).all_detected());
        assert!(!detection("allocator", &[(seeded, false), (absorbed, true)]).all_detected());
        assert!(!detection("wasi-runtime", &[(absorbed, false)]).all_detected());
        // Written before `expected` was kept, a row is expected.
        let old = r#"{"defect":"d","runs":1,"detected":false,"seeds_to_first_finding":null,"first_seed":null,"signatures":[],"minimised_ops":null,"ops_before":null,"repro":null,"wall_seconds":0.0}"#;
        assert!(
            serde_json::from_str::<DefectDetection>(old)
                .unwrap()
                .expected
        );
    }

    #[test]
    fn merging_a_metric_keeps_the_others_and_never_replaces_a_file_it_cannot_read() {
        let dir = ScratchDir::new("metrics");
        let path = dir.path().join("bench").join("results.json");
        merge_metric(&path, "a", json!({"value": 1})).unwrap();
        merge_metric(&path, "b", json!({"value": 2})).unwrap();
        let all = read_metrics(&path).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);

        let broken = "{\n  \"a\": {\"value\": 1},\n  \"b\": oops\n}\n";
        std::fs::write(&path, broken).unwrap();
        let error = merge_metric(&path, "c", json!({"value": 3})).unwrap_err();
        assert!(
            error.starts_with(&format!("{}:3:", path.display())),
            "names the file and the line: {error}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    }

    /// A thread the host will not start (here `run_pool`'s test hook, which with
    /// `WORKER_THREADS_MAX` at 1 refuses every spawn after the first, the second and third here, as
    /// if the host had said EAGAIN) has its call made on the calling thread: every call is made,
    /// and none panics.
    #[test]
    fn a_spin_thread_the_host_cannot_start_spins_on_the_calling_thread() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let count = || {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        assert_eq!(side_by_side(2, count), 0);
        super::super::WORKER_THREADS_MAX.set(Some(1));
        let on_caller = side_by_side(3, count);
        super::super::WORKER_THREADS_MAX.set(None);
        assert_eq!(on_caller, 2);
        assert_eq!(calls.into_inner(), 5);
    }

    /// A slow neighbour in one round slows both of its sweeps: the round's own ratio is kept,
    /// where a quotient of the two medians would mix rounds measured under different loads.
    #[test]
    fn the_scaling_ratio_is_the_median_of_each_rounds_own() {
        let round = |one, two, spin_parallelism| Round {
            one_job_runs_per_second: one,
            two_jobs_runs_per_second: two,
            spin_parallelism,
        };
        let rounds = [
            round(1000.0, 1900.0, 1.95),
            round(600.0, 1150.0, 1.9),
            round(1050.0, 2000.0, 1.97),
        ];
        let scaling = Scaling::from_rounds(36_000, &rounds);
        assert_eq!(scaling.one_job_runs_per_second, 1000.0);
        assert_eq!(scaling.two_jobs_runs_per_second, 1900.0);
        // The rounds' ratios are 1.9, 1.917 and 1.905; the quotient of the medians is 1.9.
        assert_eq!(round3(scaling.ratio), 1.905);
        assert_eq!(scaling.spin_parallelism, 1.95);
        let metric = scaling.metric();
        assert_eq!(metric["ratio"], 1.905);
        assert_eq!(metric["spin_parallelism"], 1.95);
        assert_eq!(metric["peer_value"], 1000.0);
    }
}
