//! The results log: `DIR/results.jsonl`, one JSON object per finished run, appended as each run
//! finishes, and read back to resume.
//!
//! Durability: the file is opened with `O_APPEND` and each record goes out as one `write` of one
//! whole line, so a `kill -9` can lose only the runs still in flight, never a record already
//! written, and two records never interleave. (A record survives a killed process, not a power
//! cut: there is no `fsync`, because the runs are cheap to redo.)
//!
//! Reading back: every complete line must be a record. A last line without its newline is what an
//! interrupted write leaves behind; it is dropped with a warning (the file is cut back to the last
//! intact line) and its run is redone. Any other bad line is an error that names the file and the
//! line and leaves the file as it is, so that every intact line is kept.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::findings::Finding;
use crate::runner::Outcome;
use crate::seed::format_seed;

pub const RESULTS_FILE: &str = "results.jsonl";

/// The verdict of a record whose pair met an internal error (`RunRecord::internal_error`). A sim
/// that predates it refuses such a line as corrupted, rather than resume it as a pass.
pub const VERDICT_INTERNAL_ERROR: &str = "error";

/// What identifies one run of a sweep: the scenario (a file path, or `gen:SUBJECT`), the defects
/// it ran with, and the seed. Ordered by seed first, so "the first seed of a finding" is the
/// smallest key that shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PairKey {
    pub seed: u64,
    pub scenario: String,
    pub defects: Vec<String>,
}

/// One finding of one run, as much of it as a summary needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingBrief {
    pub signature: String,
    pub kind: String,
    pub resource: String,
    pub site: String,
    /// The name of the lifecycle where it was noticed; empty when that is not known.
    pub lifecycle: String,
    pub headline: String,
    /// Fields this build does not know, kept as `RunRecord::unknown` keeps the record's.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl FindingBrief {
    pub fn of(finding: &Finding, outcome: &Outcome) -> FindingBrief {
        FindingBrief {
            signature: finding.signature(),
            kind: finding.kind.name().to_string(),
            resource: finding.resource.clone(),
            site: finding.site.clone(),
            lifecycle: crate::report::lifecycle_name(finding, outcome),
            headline: finding.headline.clone(),
            unknown: BTreeMap::new(),
        }
    }
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// A scenario file as given on the command line, or `gen:SUBJECT` for generated scenarios.
    pub scenario: String,
    pub subject: String,
    pub defects: Vec<String>,
    pub seed: u64,
    /// `pass` or `fail`; `error` for a pair whose run sim could not finish (`internal_error`).
    pub verdict: String,
    /// Finding signatures, in the order the run found them.
    pub signatures: Vec<String>,
    pub findings: Vec<FindingBrief>,
    /// `0x…` hex, as everywhere else.
    pub trace_hash: String,
    pub ops: u64,
    pub steps: u64,
    /// Whether the run was done twice to check determinism (every failing run, and a sample of
    /// passing ones).
    pub rechecked: bool,
    /// Wall time of the first run; not part of determinism and never compared.
    #[serde(default)]
    pub duration_ms: f64,
    /// For a scenario file, the hash of the version that ran (`sweep::scenario_hash`); absent
    /// for generated scenarios and in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_hash: Option<String>,
    /// Why sim could not run the pair: a panic outside the run (sim's own code's, or the subject's
    /// while its scenario was made; the subject's in a run is a `panic` finding), with where it was raised when a hook of sim's saw it. Such a record has
    /// verdict `error` and no findings. A resume runs its pair again (sim may be fixed since), and
    /// the record appended then replaces it when the file is read (`load`); a merge keeps another
    /// input's run of the pair over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_error: Option<String>,
    /// Whether `internal_error`'s panic was the subject's own code's (its `validate_op` or
    /// `Arbitrary` while the pair's scenario was made), not sim's: told by the payload caught
    /// (`subject::SubjectCodePanic`). Absent when false, and in records written before it was
    /// kept, which `load` reads as the subject's when their message begins as those builds said
    /// the subject's panic (whose pairs a resume runs again anyway).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subject_code: bool,
    /// Fields this build does not know (a newer build wrote them), kept as they were, in key
    /// order, so that a merge, which rewrites every record, passes them on rather than drop them.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl RunRecord {
    pub fn key(&self) -> PairKey {
        PairKey {
            seed: self.seed,
            scenario: self.scenario.clone(),
            defects: self.defects.clone(),
        }
    }

    pub fn failed(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The record of a pair that panicked outside its run (`internal_error`), with what the panic
    /// `payload` says, where, and whose code it was. Its trace hash is 0, the hash of no run, so
    /// that summaries of equal sweeps stay equal.
    pub fn internal_error(
        key: &PairKey,
        subject: &str,
        payload: &(dyn std::any::Any + Send),
    ) -> RunRecord {
        RunRecord {
            scenario: key.scenario.clone(),
            subject: subject.to_string(),
            defects: key.defects.clone(),
            seed: key.seed,
            verdict: VERDICT_INTERNAL_ERROR.to_string(),
            signatures: Vec::new(),
            findings: Vec::new(),
            trace_hash: format_seed(0),
            ops: 0,
            steps: 0,
            rechecked: false,
            duration_ms: 0.0,
            scenario_hash: None,
            // With where it panicked, which the CLI's quiet hook recorded on this thread.
            internal_error: Some(crate::subject::internal_panic_text(payload)),
            subject_code: payload.is::<crate::subject::SubjectCodePanic>(),
            unknown: BTreeMap::new(),
        }
    }

    /// The command that replays this pair as it was swept (`Source::original_replay`'s). A
    /// generated scenario's record is labelled as its source is, and names no file version.
    pub fn original_replay(&self) -> String {
        let generated =
            self.scenario_hash.is_none() && self.scenario == super::generated_label(&self.subject);
        super::pair_replay(
            &self.scenario,
            &self.subject,
            &self.defects,
            self.seed,
            generated,
        )
    }

    /// The record of `outcome` (the first run of the pair).
    pub fn of(key: &PairKey, outcome: &Outcome, rechecked: bool, duration_ms: f64) -> RunRecord {
        RunRecord {
            scenario: key.scenario.clone(),
            subject: outcome.header.subject.to_string(),
            defects: key.defects.clone(),
            seed: key.seed,
            verdict: if outcome.passed() { "pass" } else { "fail" }.to_string(),
            signatures: outcome.signatures(),
            findings: outcome
                .findings
                .iter()
                .map(|f| FindingBrief::of(f, outcome))
                .collect(),
            trace_hash: format_seed(outcome.trace_hash),
            ops: outcome.ops,
            steps: outcome.steps,
            rechecked,
            duration_ms: (duration_ms * 1000.0).round() / 1000.0,
            scenario_hash: None,
            internal_error: None,
            subject_code: false,
            unknown: BTreeMap::new(),
        }
    }

    /// The parts that must be equal when the same pair runs twice (anywhere, on any shard).
    pub fn deterministic_part(&self) -> (&str, &[String], &str, u64, u64) {
        (
            &self.verdict,
            &self.signatures,
            &self.trace_hash,
            self.ops,
            self.steps,
        )
    }
}

/// A results file that cannot be trusted as it is.
#[derive(Debug)]
pub struct ResultsError {
    pub message: String,
}

/// What reading a results file found.
pub struct Loaded {
    pub records: Vec<RunRecord>,
    /// Things the reader fixed and the user should know about.
    pub warnings: Vec<String>,
}

/// The UTF-8 byte order mark, which `load` passes over at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a results file. `repair` cuts a truncated last line off the file (the resume case); a
/// merge reads without changing its inputs.
pub fn load(path: &Path, repair: bool) -> Result<Loaded, ResultsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded {
                records: Vec::new(),
                warnings: Vec::new(),
            });
        }
        Err(error) => {
            return Err(ResultsError {
                message: format!("{}: cannot read: {error}", path.display()),
            });
        }
    };
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    // Where each key's record is in `records`.
    let mut seen: BTreeMap<PairKey, usize> = BTreeMap::new();
    // A byte order mark an editor saved the file with is no part of line 1's record, which
    // was refused as corrupted with the advice to delete it, a run done.
    let mut offset = if bytes.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let mut line_number = 0usize;
    while offset < bytes.len() {
        line_number += 1;
        let rest = &bytes[offset..];
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            // A whole record that lacks only its newline (an editor that drops the last one,
            // or a write cut short by one byte) is a run done: kept, and on repair given its
            // newline, so that the next append starts a line of its own.
            if let Ok(record) = parse_line(rest) {
                if repair {
                    end_with_newline(path)?;
                }
                keep(
                    record,
                    line_number,
                    path,
                    &mut records,
                    &mut seen,
                    &mut warnings,
                );
                break;
            }
            // An interrupted append: the record never finished, so its run is redone by a
            // resume (a merge, which changes no input, leaves it out). Bytes that do not begin
            // as a record does held no run, and none is redone or left out for them.
            let began_a_record = rest.trim_ascii_start().first() == Some(&b'{');
            let fate = match (began_a_record, repair) {
                (true, true) => "its run will be redone",
                (true, false) => {
                    "its run is left out (resume the sweep that wrote it to redo the run)"
                }
                (false, _) => "it is no start of a record (`{`), so it held no run",
            };
            warnings.push(format!(
                "{}:{line_number}: dropping a truncated last line ({} bytes, no newline): an interrupted write; {fate}",
                path.display(),
                rest.len()
            ));
            if repair {
                cut_at(path, offset as u64)?;
            }
            break;
        };
        let line = &rest[..newline];
        offset += newline + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = parse_line(line).map_err(|NotARecord { column, why }| {
            // A sweep resumes from the file; a merge only reads it, and the run the line held
            // is redone by the sweep that wrote the directory.
            let advice = if repair {
                format!(
                    "delete line {line_number} (or the whole file to start over) and run the same command again to resume"
                )
            } else {
                format!(
                    "delete line {line_number}, run the sweep that wrote this directory again (its same command) to redo that run, then merge again"
                )
            };
            ResultsError {
                message: format!(
                    "{}:{line_number}:{column}: corrupted results file: {why}\n  line: {}\nnote: every other line is intact and the file was not changed; {advice}",
                    path.display(),
                    preview(line)
                ),
            }
        })?;
        keep(
            record,
            line_number,
            path,
            &mut records,
            &mut seen,
            &mut warnings,
        );
    }
    Ok(Loaded { records, warnings })
}

/// Adds the record read at `line_number` to `records` (`seen` maps each key to its place there).
fn keep(
    record: RunRecord,
    line_number: usize,
    path: &Path,
    records: &mut Vec<RunRecord>,
    seen: &mut BTreeMap<PairKey, usize>,
    warnings: &mut Vec<String>,
) {
    // Appends repeat a key only to rerun a scenario file that was edited, or a pair that met an
    // internal error (a resume runs it again): the later record, of another version or of the
    // rerun, replaces the earlier. Any other repeat means a person concatenated files, and the
    // first record wins.
    let key = record.key();
    match seen.get(&key) {
        None => {
            seen.insert(key, records.len());
            records.push(record);
        }
        Some(&at)
            if records[at].scenario_hash != record.scenario_hash
                || records[at].internal_error.is_some() =>
        {
            records[at] = record
        }
        Some(_) => warnings.push(format!(
            "{}:{line_number}: a second record for {} seed {}; keeping the first",
            path.display(),
            record.scenario,
            format_seed(record.seed)
        )),
    }
}

fn end_with_newline(path: &Path) -> Result<(), ResultsError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(b"\n"))
        .map_err(|error| ResultsError {
            message: format!(
                "{}: cannot end the last record with its newline: {error}",
                path.display()
            ),
        })
}

/// Why a line is no run record, and the column (from 1, in bytes) where it goes wrong.
struct NotARecord {
    column: usize,
    why: String,
}

fn parse_line(line: &[u8]) -> Result<RunRecord, NotARecord> {
    let text = std::str::from_utf8(line).map_err(|error| NotARecord {
        column: error.valid_up_to() + 1,
        why: "not UTF-8 text".to_string(),
    })?;
    let record = serde_json::from_str::<RunRecord>(text).map_err(|error| NotARecord {
        column: crate::trace::json_error_column(&error),
        why: format!(
            "not a run record ({})",
            crate::trace::json_error_words(&error)
        ),
    })?;
    // Summaries count a run as failed by its signatures alone, so a verdict that sim never
    // writes (or one that disagrees with the signatures) would be resumed as a pass: such a line
    // is as corrupt as one that does not parse.
    let expected = match (&record.internal_error, record.signatures.is_empty()) {
        (Some(_), _) => VERDICT_INTERNAL_ERROR,
        (None, true) => "pass",
        (None, false) => "fail",
    };
    let internal_error_with_findings =
        record.internal_error.is_some() && !record.signatures.is_empty();
    if record.verdict != expected || internal_error_with_findings {
        let why = if internal_error_with_findings {
            format!(
                "an internal error with {} signature(s)",
                record.signatures.len()
            )
        } else if record.verdict == VERDICT_INTERNAL_ERROR {
            "verdict `error` without its internal_error".to_string()
        } else if ["pass", "fail"].contains(&record.verdict.as_str()) {
            format!(
                "verdict `{}` with {} signature(s)",
                record.verdict,
                record.signatures.len()
            )
        } else {
            format!(
                "unknown verdict `{}`; expected pass, fail or error",
                record.verdict
            )
        };
        return Err(NotARecord {
            column: text.find("\"verdict\"").map_or(1, |at| at + 1),
            why: format!("not a run record ({why})"),
        });
    }
    // A wall time that no `Duration` holds (negative, or past `Duration::MAX`, as a hand edit
    // leaves) is no run's: the summary's JUnit times are `Duration`s.
    if Duration::try_from_secs_f64(record.duration_ms / 1000.0).is_err() {
        return Err(NotARecord {
            column: text.find("\"duration_ms\"").map_or(1, |at| at + 1),
            why: format!(
                "not a run record (duration_ms {:?} is no wall time: expected 0 or more milliseconds, at most {:?})",
                record.duration_ms,
                Duration::MAX.as_secs_f64() * 1000.0
            ),
        });
    }
    let mut record = record;
    record.subject_code =
        record.subject_code || was_said_as_the_subjects_before_it_was_kept(&record);
    Ok(record)
}

/// Whether `record`, which does not say `subject_code` (a line written before it was kept, or
/// one of sim's own panic), reports the subject's own panic: builds before it told it by the
/// text alone, which began with `subject_panic_headline`'s words. Without this, merging such a
/// file blamed sim for the subject's bug. A newer build leaves the key out for sim's panic too
/// (it writes it only when true), so the text decides for both: sim's own panic messages do not
/// begin with a subject's headline.
fn was_said_as_the_subjects_before_it_was_kept(record: &RunRecord) -> bool {
    let Some(message) = &record.internal_error else {
        return false;
    };
    message.starts_with(&format!(
        "subject `{}`'s own code panicked: its `",
        record.subject
    ))
}

/// `FILE:LINE:COLUMN: WHAT (WORDS)` for an error in a file that is one JSON text (a summary, a
/// repro sidecar, the benchmarks' results), the way scenario errors point into files; with no
/// `what`, serde_json's words alone.
pub fn json_error_at(file: &str, what: Option<&str>, error: &serde_json::Error) -> String {
    let words = crate::trace::json_error_words(error);
    let said = match what {
        Some(what) => format!("{what} ({words})"),
        None => words,
    };
    format!(
        "{file}:{}:{}: {said}",
        error.line(),
        crate::trace::json_error_column(error)
    )
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

fn cut_at(path: &Path, length: u64) -> Result<(), ResultsError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(length))
        .map_err(|error| ResultsError {
            message: format!(
                "{}: cannot cut off the truncated last line: {error}",
                path.display()
            ),
        })
}

/// How long `Appender::open` tries a busy lock again before it refuses, and how often: far
/// longer than any fork-to-exec, and a moment to whoever started the same command twice.
const LOCK_GRACE: Duration = Duration::from_secs(1);
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// The open results file, for appending.
pub struct Appender {
    path: PathBuf,
    file: File,
}

impl Appender {
    /// Opens the file for appending and takes an exclusive advisory lock on it, so that a second
    /// sweep into the same directory fails before it runs anything, instead of running every
    /// pair twice. The lock goes away with the process, however it ends.
    ///
    /// A lock that is busy is tried again for `LOCK_GRACE` before the refusal. The lock belongs
    /// to the file's open description, and a process that this one (or a sweep before it in the
    /// same process) starts while the file is open holds a copy of its descriptor from its fork
    /// until its exec closes it: a sweep right after another into the same directory, while a
    /// third thread started a child, found the lock taken by nobody that was writing.
    ///
    /// The lock is taken on the file the path names when the lock is had: a merge replaces the
    /// file (`replace_with`), and a sweep that opened the file before it was replaced, and waited
    /// for its lock, would otherwise hold the lock of a file nobody reads and append to it. So
    /// each try opens the path again, and a lock had on a file since replaced is let go.
    pub fn open(path: &Path) -> std::io::Result<Appender> {
        let mut waited = Duration::ZERO;
        loop {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            match file.try_lock() {
                Ok(()) if names(path, &file)? => {
                    return Ok(Appender {
                        path: path.to_path_buf(),
                        file,
                    });
                }
                // Replaced while this one waited: the lock of the file the path names now.
                Ok(()) => continue,
                Err(std::fs::TryLockError::WouldBlock) if waited < LOCK_GRACE => {
                    std::thread::sleep(LOCK_RETRY);
                    waited += LOCK_RETRY;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "another sweep is writing to it (is the same command running twice?)",
                    ));
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(error),
            }
        }
    }

    /// Replaces the file with `records` (merge output), sorted by key, through a temporary file
    /// and a rename: a merge into one of its own inputs (merging a shard into the merge again)
    /// that is killed or runs out of disk while writing leaves the old file whole, where writing
    /// in place would already have emptied it. The new file is locked before the rename, and the
    /// lock kept, so that the path is never without one while this holds it.
    pub fn replace_with(&mut self, records: &[RunRecord]) -> std::io::Result<()> {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).expect("records serialize"));
            text.push('\n');
        }
        let temporary = super::minimise::temporary_of(&self.path);
        std::fs::write(&temporary, text)?;
        let file = OpenOptions::new().append(true).open(&temporary)?;
        file.lock()?;
        std::fs::rename(&temporary, &self.path)?;
        self.file = file;
        Ok(())
    }

    /// Appends one record as one write of one whole line. Workers call it side by side: with
    /// `O_APPEND`, each `write` lands whole at the end of the file, never interleaved.
    pub fn append(&self, record: &RunRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        (&self.file).write_all(line.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `path` names `file` (the same device and inode), and not a file put in its place.
fn names(path: &Path, file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let named = match std::fs::metadata(path) {
        Ok(named) => named,
        // Removed since it was opened: the path names no file, and not this one.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    let open = file.metadata()?;
    Ok(named.dev() == open.dev() && named.ino() == open.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::scratch::ScratchDir;

    fn record(seed: u64) -> RunRecord {
        RunRecord {
            scenario: "gen:counter".into(),
            subject: "counter".into(),
            defects: vec![],
            seed,
            verdict: "pass".into(),
            signatures: vec![],
            findings: vec![],
            trace_hash: format_seed(seed * 7),
            ops: 3,
            steps: 4,
            rechecked: false,
            duration_ms: 0.5,
            scenario_hash: None,
            internal_error: None,
            subject_code: false,
            unknown: BTreeMap::new(),
        }
    }

    /// Whose panic an internal error was is told by the payload caught, not by its text, and
    /// kept as `subject_code`: written only when true, so that a line of sim's panic is as it
    /// was.
    #[test]
    fn an_internal_error_says_whose_panic_it_was_by_its_payload() {
        let looks_like_the_subjects =
            "sim broke saying subject `counter`'s own code panicked: its `validate_op`";
        let sims = RunRecord::internal_error(&record(1).key(), "counter", &looks_like_the_subjects);
        assert!(!sims.subject_code, "{sims:?}");
        let report = crate::subject::SubjectCodePanic("it broke".into());
        let subjects = RunRecord::internal_error(&record(2).key(), "counter", &report);
        assert!(subjects.subject_code, "{subjects:?}");
        assert_eq!(subjects.internal_error.as_deref(), Some("it broke"));
        let (_dir, path) = scratch("subject-code");
        let sims_line = serde_json::to_string(&sims).unwrap();
        assert!(!sims_line.contains("subject_code"), "{sims_line}");
        let subjects_line = serde_json::to_string(&subjects).unwrap();
        assert!(
            subjects_line.contains(r#""subject_code":true"#),
            "{subjects_line}"
        );
        std::fs::write(&path, format!("{sims_line}\n{subjects_line}\n")).unwrap();
        assert_eq!(load(&path, false).unwrap().records, vec![sims, subjects]);
    }

    /// A line written before `subject_code` was kept (no such key) whose message begins as those
    /// builds said the subject's own panic loads as the subject's, where it loaded as sim's; one
    /// whose message only quotes those words stays sim's.
    #[test]
    fn an_old_line_of_the_subjects_panic_loads_as_the_subjects() {
        let old_words = "subject `counter`'s own code panicked: its `validate_op`, checking this \
                         op: boom";
        let old = RunRecord::internal_error(&record(1).key(), "counter", &old_words);
        let quoting = format!("sim broke: {old_words}");
        let quoting = RunRecord::internal_error(&record(2).key(), "counter", &quoting);
        let (_dir, path) = scratch("old-subject-code");
        let lines = [
            serde_json::to_string(&old).unwrap(),
            serde_json::to_string(&quoting).unwrap(),
        ];
        assert!(!lines[0].contains("subject_code"), "{}", lines[0]);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let loaded = load(&path, false).unwrap().records;
        let whose: Vec<bool> = loaded.iter().map(|record| record.subject_code).collect();
        assert_eq!(whose, [true, false], "{loaded:?}");
    }

    /// A results file in a fresh directory of the test's own, which goes when the test does:
    /// bind the directory to a named variable (`let (_dir, path)`), as `_` would drop it at once.
    fn scratch(name: &str) -> (ScratchDir, PathBuf) {
        let dir = ScratchDir::new(&format!("results-{name}"));
        let path = dir.path().join(RESULTS_FILE);
        (dir, path)
    }

    /// A lock held a moment by another open description of the file (as a child between its
    /// fork and its exec holds one) is waited for; one held past `LOCK_GRACE` is refused.
    #[test]
    fn a_lock_held_a_moment_is_waited_for_and_one_held_on_is_refused() {
        let (_dir, path) = scratch("lock-grace");
        let holder = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        holder.lock().unwrap();
        let releaser = std::thread::spawn(move || {
            // Let go after the opener below has found the lock busy (it tries at once).
            std::thread::sleep(LOCK_RETRY * 5);
            drop(holder);
        });
        let appender = Appender::open(&path).expect("the lock, once its holder let go");
        releaser.join().unwrap();
        let other = OpenOptions::new().append(true).open(&path).unwrap();
        assert!(
            matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "the appender holds the lock"
        );
        let refused = Appender::open(&path).err().expect("held past the grace");
        assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock);
        assert!(
            refused
                .to_string()
                .contains("another sweep is writing to it")
        );
        drop(appender);
        Appender::open(&path).expect("free again");
    }

    /// A merge replaces the file under its lock; a sweep that opened the file before and waited
    /// for the lock appends to the file the path names afterwards, not to the one replaced, and
    /// while the merge holds on, the new file is locked too.
    #[test]
    fn a_sweep_waiting_while_a_merge_replaces_the_file_appends_to_the_new_one() {
        let (_dir, path) = scratch("replaced");
        let mut merge = Appender::open(&path).unwrap();
        let waiting_path = path.clone();
        let sweep = std::thread::spawn(move || {
            let appender = Appender::open(&waiting_path).expect("free once the merge ends");
            appender.append(&record(2)).unwrap();
        });
        // Let the sweep open the file and find it locked (it tries at once).
        std::thread::sleep(LOCK_RETRY * 5);
        merge.replace_with(&[record(1)]).unwrap();
        let other = OpenOptions::new().append(true).open(&path).unwrap();
        assert!(
            matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "the new file is locked as soon as it is in place"
        );
        drop(other);
        drop(merge);
        sweep.join().unwrap();
        assert_eq!(
            load(&path, false).unwrap().records,
            vec![record(1), record(2)],
            "the waiting sweep's record is in the file the path names"
        );
    }

    #[test]
    fn a_truncated_last_line_is_cut_off_and_every_whole_line_kept() {
        let (_dir, path) = scratch("truncated");
        let log = Appender::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        log.append(&record(2)).unwrap();
        drop(log);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"scenario":"gen:coun"#).unwrap();
        drop(file);
        let loaded = load(&path, true).unwrap();
        assert_eq!(loaded.records, vec![record(1), record(2)]);
        assert!(loaded.warnings[0].contains(":3: dropping a truncated last line"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        // Reading without repair leaves the file alone.
        std::fs::write(&path, b"{\"x\"").unwrap();
        assert!(load(&path, false).unwrap().records.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"x\"");
    }

    /// A tail that does not begin as a record does (a byte or two of garbage) is cut off as a
    /// truncated line is, but said as holding no run: "its run will be redone" promised a run
    /// no resume made.
    #[test]
    fn a_garbage_tail_is_cut_off_without_promising_a_run() {
        let (_dir, path) = scratch("garbage-tail");
        let log = Appender::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        drop(log);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"xy").unwrap();
        drop(file);
        let loaded = load(&path, true).unwrap();
        assert_eq!(loaded.records, vec![record(1)]);
        assert!(
            loaded.warnings[0].ends_with(
                ":2: dropping a truncated last line (2 bytes, no newline): an interrupted write; it is no start of a record (`{`), so it held no run"
            ),
            "{:?}",
            loaded.warnings
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    }

    /// A byte order mark at the start of the file (an editor's) is passed over: line 1's record
    /// is read, where it was refused as corrupted with the advice to delete the line.
    #[test]
    fn a_byte_order_mark_before_the_first_record_is_passed_over() {
        let (_dir, path) = scratch("bom");
        let log = Appender::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        log.append(&record(2)).unwrap();
        drop(log);
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let loaded = load(&path, true).unwrap();
        assert_eq!(loaded.records, vec![record(1), record(2)]);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    /// A last record whole but for its newline (an editor that drops it) is a run done: a resume
    /// keeps it and ends it with the newline, so that its next append starts a line of its own,
    /// and a merge keeps it and leaves the file as it is.
    #[test]
    fn a_whole_last_record_without_its_newline_is_kept() {
        let (_dir, path) = scratch("no-newline");
        let text = format!(
            "{}\n{}",
            serde_json::to_string(&record(1)).unwrap(),
            serde_json::to_string(&record(2)).unwrap()
        );
        std::fs::write(&path, &text).unwrap();
        let merged = load(&path, false).unwrap();
        assert_eq!(merged.records, vec![record(1), record(2)]);
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let resumed = load(&path, true).unwrap();
        assert_eq!(resumed.records, vec![record(1), record(2)]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text.clone() + "\n");
        Appender::open(&path).unwrap().append(&record(3)).unwrap();
        assert_eq!(
            load(&path, true).unwrap().records,
            vec![record(1), record(2), record(3)]
        );
    }

    #[test]
    fn a_corrupted_line_is_an_error_naming_the_line_and_the_file_is_untouched() {
        let (_dir, path) = scratch("corrupt");
        let log = Appender::open(&path).unwrap();
        log.append(&record(1)).unwrap();
        drop(log);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("garbage\n");
        text.push_str(&serde_json::to_string(&record(3)).unwrap());
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        assert_refused_untouched(
            &path,
            &text,
            "results.jsonl:2:1: corrupted results file: not a run record (expected value)",
        );
    }

    /// Loading the file at `path`, which holds `text`, to resume a sweep is an error that says
    /// `message`, and leaves the file as it was.
    fn assert_refused_untouched(path: &Path, text: &str, message: &str) {
        let error = load(path, true).err().unwrap();
        assert!(error.message.contains(message), "{}", error.message);
        assert_eq!(std::fs::read_to_string(path).unwrap(), text);
    }

    /// A duration no `Duration` holds (a hand edit) is a corrupted line like any bad field, at
    /// its column, where the summary's JUnit times panicked on it (exit 3, no summary written).
    #[test]
    fn a_negative_or_huge_duration_is_a_corrupted_line() {
        for (name, duration_ms, said) in [
            ("negative", -5.0, "duration_ms -5.0 is no wall time"),
            ("huge", 1e308, "duration_ms 1e308 is no wall time"),
        ] {
            let (_dir, path) = scratch(&format!("duration-{name}"));
            let mut bogus = record(2);
            bogus.duration_ms = duration_ms;
            let text = [record(1), bogus, record(3)]
                .iter()
                .map(|r| serde_json::to_string(r).unwrap() + "\n")
                .collect::<String>();
            std::fs::write(&path, &text).unwrap();
            let column = text
                .lines()
                .nth(1)
                .unwrap()
                .find("\"duration_ms\"")
                .unwrap()
                + 1;
            assert_refused_untouched(
                &path,
                &text,
                &format!(
                    "results.jsonl:2:{column}: corrupted results file: not a run record ({said}"
                ),
            );
        }
        let (_dir, path) = scratch("duration-zero");
        let mut zero = record(1);
        zero.duration_ms = 0.0;
        std::fs::write(&path, serde_json::to_string(&zero).unwrap() + "\n").unwrap();
        assert_eq!(load(&path, true).unwrap().records, vec![zero]);
    }

    #[test]
    fn an_unknown_verdict_is_a_corrupted_line_not_a_pass() {
        let (_dir, path) = scratch("verdict");
        let mut bogus = record(2);
        bogus.verdict = "bogus".into();
        let text = [record(1), bogus, record(3)]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect::<String>();
        std::fs::write(&path, &text).unwrap();
        assert_refused_untouched(
            &path,
            &text,
            "results.jsonl:2:69: corrupted results file: not a run record (unknown verdict `bogus`",
        );
    }

    /// An internal error's record reads back as it was written, and one whose verdict and
    /// `internal_error` disagree (a hand edit) is a corrupted line, not a pass or a finding.
    #[test]
    fn an_internal_errors_record_reads_back_and_must_agree_with_its_verdict() {
        let (_dir, path) = scratch("internal-error");
        let broken = RunRecord::internal_error(
            &record(2).key(),
            "counter",
            &"it broke\n  panicked at: src/x.rs:1:2",
        );
        let log = Appender::open(&path).unwrap();
        for kept in [record(1), broken.clone()] {
            log.append(&kept).unwrap();
        }
        drop(log);
        assert_eq!(
            load(&path, true).unwrap().records,
            vec![record(1), broken.clone()]
        );

        let mut unexplained = record(3);
        unexplained.verdict = VERDICT_INTERNAL_ERROR.into();
        let mut passing = broken.clone();
        passing.verdict = "pass".into();
        let mut with_findings = broken;
        with_findings.signatures = vec!["leak:heap block:x".into()];
        for (bogus, said) in [
            (unexplained, "verdict `error` without its internal_error"),
            (passing, "verdict `pass` with 0 signature(s)"),
            (with_findings, "an internal error with 1 signature(s)"),
        ] {
            let text = serde_json::to_string(&bogus).unwrap() + "\n";
            std::fs::write(&path, &text).unwrap();
            assert_refused_untouched(&path, &text, said);
        }
    }

    /// A pair's record after its internal error's (a resume ran it again) replaces it, in its
    /// place, whether it ran or met the error again, with no warning: the file holds one pair
    /// once, its latest result. An internal error after a run of the pair (files concatenated)
    /// does not replace the run.
    #[test]
    fn a_rerun_of_an_internal_error_replaces_its_record() {
        let (_dir, path) = scratch("rerun");
        let broken = |seed: u64, message: &'static str| {
            RunRecord::internal_error(&record(seed).key(), "counter", &message)
        };
        let log = Appender::open(&path).unwrap();
        for line in [
            broken(1, "it broke"),
            record(2),
            broken(3, "it broke"),
            record(1),
            broken(3, "it broke again"),
            broken(2, "it broke late"),
        ] {
            log.append(&line).unwrap();
        }
        drop(log);
        let loaded = load(&path, false).unwrap();
        assert_eq!(
            loaded.records,
            vec![record(1), record(2), broken(3, "it broke again")]
        );
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].contains(":6: a second record for gen:counter seed "),
            "{:?}",
            loaded.warnings
        );
    }
}
