//! Reports: findings as text that reads like a compiler error, as JSON, and repro files.
//!
//! ```text
//! error[leak]: 1 rwlock (216 B) not released after lifecycle `instance` (repetition 1 of 100)
//!   acquired: op #1 `instantiate` → fd_prestats_init (lifecycle 1, repetition 1, thread 0)
//!     --> scenarios/zoo/instantiate-destroy.toml:15:3 (ops)
//!   baseline: 0 rwlocks; now: 1
//! note: seen 100 times in this run (reported once)
//! note: signature `leak:rwlock:fd_prestats_init`
//! note: replay with `sim replay target/sim/repros/wasi-runtime-instantiate-destroy-0000000000000001.toml`
//! ```

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{Value, json};

use crate::findings::{Detail, Finding, FindingKind, LifecyclePart, OpList, OpRef, THREAD_EXIT_OP};
use crate::registry::{DynScenario, Registry};
use crate::runner::{Header, Outcome};
use crate::scenario::{Expect, program};
use crate::seed::format_seed;

/// Where a finding was noticed, as a report says it.
enum Noticed {
    /// `lifecycle `instance``, and where in it (`When`).
    In(String, When),
    /// Nothing that ran reported where it was (`Finding::position_known`).
    Unknown,
}

/// Where in its lifecycle a finding was noticed.
enum When {
    /// In (or after) a repetition: its number (from 1) and the lifecycle's repeat count, for a
    /// lifecycle that repeats.
    Repetition(u32, u32),
    /// In the one run of a lifecycle that does not repeat.
    Once,
    /// By a check at the end of the lifecycle (`Finding::lifecycle_end`), in its words.
    End(&'static str),
    /// While a list that runs once (`setup`, `teardown`) ran (`Finding::during`): by its name.
    During(&'static str),
    /// In the subject's `new`, before the lifecycle's first list (`Finding::in_new`).
    New,
    /// After the subject's `new`, in a run that stopped before any list (`Finding::after_new`).
    AfterNew,
}

impl When {
    /// The words for it after the lifecycle's name, if any: `repetition 3 of 100`.
    fn words(&self) -> Option<String> {
        match self {
            When::Repetition(repetition, repeat) => {
                Some(format!("repetition {repetition} of {repeat}"))
            }
            When::Once => None,
            When::End(words) => Some(words.to_string()),
            When::During(list) => Some(format!("during its `{list}`")),
            When::New => Some("before its first op, in the subject's `new`".to_string()),
            When::AfterNew => {
                Some("after the subject's `new`, in a run that stopped before any op".to_string())
            }
        }
    }
}

/// The lifecycle a finding was noticed in, and where in it.
fn noticed_in(finding: &Finding, outcome: &Outcome) -> Noticed {
    if !finding.position_known {
        return Noticed::Unknown;
    }
    let index = finding.lifecycle as usize;
    let name = outcome
        .lifecycle_names
        .get(index)
        .map_or("?", |name| name.as_ref());
    let repeat = outcome.lifecycle_repeats.get(index).copied().unwrap_or(1);
    let when = match finding.part() {
        LifecyclePart::New => When::New,
        LifecyclePart::AfterNew => When::AfterNew,
        LifecyclePart::End(end) => When::End(end.words()),
        LifecyclePart::RunOnce(list) => When::During(list.name()),
        LifecyclePart::Repetition if repeat > 1 => When::Repetition(finding.repetition + 1, repeat),
        LifecyclePart::Repetition => When::Once,
    };
    Noticed::In(format!("lifecycle `{name}`"), when)
}

/// What a report says of a finding whose position is not known.
const POSITION_UNKNOWN: &str = "at a point in the run that is not known";

/// Where the finding was noticed, in words: `lifecycle `instance` (repetition 3 of 100)`,
/// `lifecycle `instance` (during its `teardown`)` for one of a list that runs once, or
/// `lifecycle `instance` (checked after its teardown)` for a check at its end.
pub fn where_noticed(finding: &Finding, outcome: &Outcome) -> String {
    match noticed_in(finding, outcome) {
        Noticed::In(lifecycle, when) => match when.words() {
            Some(words) => format!("{lifecycle} ({words})"),
            None => lifecycle,
        },
        Noticed::Unknown => POSITION_UNKNOWN.to_string(),
    }
}

fn headline(finding: &Finding, outcome: &Outcome) -> String {
    match (finding.kind, noticed_in(finding, outcome)) {
        (_, Noticed::Unknown) => format!("{} ({POSITION_UNKNOWN})", finding.headline),
        (FindingKind::Leak, _) => {
            format!(
                "{} after {}",
                finding.headline,
                where_noticed(finding, outcome)
            )
        }
        // No parentheses inside parentheses: "(in lifecycle `x`, repetition 3 of 100)".
        (_, Noticed::In(lifecycle, when)) => match when.words() {
            Some(words) => format!("{} (in {lifecycle}, {words})", finding.headline),
            None => format!("{} (in {lifecycle})", finding.headline),
        },
    }
}

/// The name of the lifecycle where `finding` was noticed; empty when that is not known.
pub fn lifecycle_name(finding: &Finding, outcome: &Outcome) -> String {
    if !finding.position_known {
        return String::new();
    }
    outcome
        .lifecycle_names
        .get(finding.lifecycle as usize)
        .map(|name| name.to_string())
        .unwrap_or_default()
}

/// One finding as text. `replay` is the command line that replays the run.
pub fn render_finding(finding: &Finding, outcome: &Outcome, replay: &str) -> String {
    let mut text = render_finding_body(finding, outcome);
    text.push_str(&format!("note: replay with `{replay}`\n"));
    text
}

/// One finding as text, without the line that says how to replay it: for a caller whose run has
/// no replay command of its own yet (a fuzz input, which becomes one when it is imported).
pub fn render_finding_body(finding: &Finding, outcome: &Outcome) -> String {
    let mut text = format!(
        "error[{}]: {}\n",
        finding.kind.name(),
        headline(finding, outcome)
    );
    for detail in &finding.details {
        text.push_str(&format!("  {}: {}\n", detail.label, detail.text));
        if let Some(op) = &detail.op
            && let Some(located) = located_text(op)
        {
            text.push_str(&format!("    --> {located}\n"));
        }
    }
    for note in &finding.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    text.push_str(&format!("note: signature `{}`\n", finding.signature()));
    text
}

/// `FILE:LINE:COLUMN (LIST)`: where an op is, and which list of its lifecycle holds it (each
/// has an `op #1`); then, when the run wrote a trace, `trace event "i":N`, which a search of the
/// trace finds as it is written. `None` when neither is known.
pub fn located_text(op: &OpRef) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(location) = &op.location {
        let list = match (&op.thread_name, op.name.as_str()) {
            (Some(thread), THREAD_EXIT_OP) => format!("thread `{thread}`, which exits here"),
            (Some(thread), _) => format!("thread `{thread}`"),
            (None, _) => op.list.name().to_string(),
        };
        parts.push(format!(
            "{}:{}:{} ({list})",
            location.file, location.line, location.column
        ));
    }
    if let Some(event) = op.trace_event {
        parts.push(format!("trace event \"i\":{event}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Fills in where each op the findings name is in the file `scenario` was read from (see
/// `OpRef::location`), for the report to point at. The scenario must be the one the outcome
/// ran: its lists are what the positions count in.
pub fn locate(outcome: &mut Outcome, scenario: &dyn DynScenario) {
    for finding in &mut outcome.findings {
        locate_finding(finding, scenario);
    }
}

/// `locate` for one finding, such as one made outside a run (a determinism finding, which two
/// runs make): `scenario` must have the lists of the run its ops name.
pub fn locate_finding(finding: &mut Finding, scenario: &dyn DynScenario) {
    for detail in &mut finding.details {
        if let Some(op) = &mut detail.op {
            op.location = scenario.op_location(op);
        }
    }
}

/// Fills in, for each op the findings name, the index `i` of its op line in the JSON trace the
/// run wrote (see `OpRef::trace_event`), as `op_lines` noted it while the trace was written: the
/// trace's op lines carry the same thread, name, lifecycle, repetition, list and index as the op.
/// An op the trace does not hold (a thread's exit, which has no op line) stays without one.
pub fn find_in_trace(outcome: &mut Outcome, op_lines: &TraceOpLines) {
    let noted = op_lines.0.borrow();
    let details = outcome.findings.iter_mut().flat_map(|f| &mut f.details);
    for op in details.filter_map(|detail| detail.op.as_mut()) {
        if op.trace_event.is_none() && op.name != THREAD_EXIT_OP {
            op.trace_event = noted.event_of(op);
        }
    }
}

/// The op lines of a JSON trace, noted as the trace is written (`watching`): the index `i` of
/// each, by the keys a report's op shares with it, for `find_in_trace`. The trace is never read
/// back: a `--trace` that is a pipe or a FIFO (`--trace >(gzip > t.gz)`) cannot be, and opening
/// it to read waited for ever. Clones share what is noted.
#[derive(Clone, Default)]
pub struct TraceOpLines(Rc<RefCell<NotedOpLines>>);

#[derive(Default)]
struct NotedOpLines {
    /// What was written since the last newline.
    partial: Vec<u8>,
    /// Each op name seen, numbered, so that a key holds a number rather than a string.
    names: BTreeMap<String, u32>,
    /// The `i` of the first op line of each key (each op runs once at its place, so there is
    /// one); only looked up, never iterated.
    events: BTreeMap<OpLineKey, u64>,
}

/// An op line's thread, name (as numbered in `NotedOpLines::names`), lifecycle, repetition, list
/// and index.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OpLineKey {
    thread: u32,
    name: u32,
    lifecycle: u32,
    repetition: u32,
    list: OpList,
    index: u32,
}

/// The fields of a trace's op line (`Trace::op` writes them) that `TraceOpLines` notes.
#[derive(serde::Deserialize)]
struct OpLine<'a> {
    i: u64,
    ev: &'a str,
    a: u32,
    #[serde(borrow)]
    op: Cow<'a, str>,
    lifecycle_index: u32,
    repetition: u32,
    list: OpList,
    index: u32,
}

impl TraceOpLines {
    /// `sink`, through which every byte written is noted.
    pub fn watching(&self, sink: Box<dyn Write>) -> Box<dyn Write> {
        Box::new(OpLineWatcher {
            sink,
            op_lines: self.clone(),
        })
    }
}

impl NotedOpLines {
    /// Notes the bytes `written`, whole lines as they end.
    fn note(&mut self, written: &[u8]) {
        let mut rest = written;
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
            if self.partial.is_empty() {
                self.note_line(&rest[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                self.note_line(&line);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    fn note_line(&mut self, line: &[u8]) {
        // Most lines are syscalls and schedule decisions: told apart without parsing them.
        if !line.windows(10).any(|window| window == br#""ev":"op","#) {
            return;
        }
        let Ok(line) = serde_json::from_slice::<OpLine>(line) else {
            return;
        };
        if line.ev != "op" {
            return;
        }
        let numbered = self.names.len() as u32;
        let name = *self.names.entry(line.op.into_owned()).or_insert(numbered);
        let key = OpLineKey {
            thread: line.a,
            name,
            lifecycle: line.lifecycle_index,
            repetition: line.repetition,
            list: line.list,
            index: line.index,
        };
        self.events.entry(key).or_insert(line.i);
    }

    /// The `i` of `op`'s line, if one was written.
    fn event_of(&self, op: &OpRef) -> Option<u64> {
        let key = OpLineKey {
            thread: op.thread,
            name: *self.names.get(&op.name)?,
            lifecycle: op.lifecycle,
            repetition: op.repetition,
            list: op.list,
            index: op.index,
        };
        self.events.get(&key).copied()
    }
}

/// A trace sink that notes what it writes in a `TraceOpLines`: only the bytes its sink took, so
/// that a line the file did not get is not named.
struct OpLineWatcher {
    sink: Box<dyn Write>,
    op_lines: TraceOpLines,
}

impl Write for OpLineWatcher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.sink.write(buf)?;
        self.op_lines.0.borrow_mut().note(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// An op a report line names, as JSON: the same fields as the finding's own where they are the
/// same thing (`lifecycle_index` and `repetition` from 0, `during` for an op run in the setup or
/// the teardown, or in a thread either spawned), the op's list and its index in it (from 1, as
/// `op #1`), and where the scenario file has it.
pub fn op_json(op: &OpRef) -> Value {
    let mut value = json!({
        "lifecycle_index": op.lifecycle,
        "repetition": op.repetition,
        "list": op.list.name(),
        "index": op.index,
        "name": op.name,
        "thread": op.thread,
    });
    if let Some(thread) = &op.thread_name {
        value["thread_name"] = json!(thread);
    }
    if let Some(list) = op.during {
        value["during"] = json!(list.name());
    }
    if let Some(location) = &op.location {
        value["file"] = json!(location.file);
        value["line"] = json!(location.line);
        value["column"] = json!(location.column);
    }
    if let Some(event) = op.trace_event {
        value["trace_event"] = json!(event);
    }
    value
}

fn detail_json(detail: &Detail) -> Value {
    let mut value = json!({"label": detail.label, "text": detail.text});
    if let Some(op) = &detail.op {
        value["op"] = op_json(op);
    }
    value
}

/// The banner printed before a run: everything decided from the seed.
pub fn render_header(header: &Header, source: &str) -> String {
    let defects = if header.defects.is_empty() {
        "none".to_string()
    } else {
        header.defects.join(",")
    };
    format!(
        "sim: {source}\n  subject {} · scenario {} · seed {} · defects {} · schedule {} · faults {} · steps_max {}\n",
        header.subject,
        header.scenario,
        format_seed(header.seed),
        defects,
        header.strategy,
        header.faults,
        header.steps_max
    )
}

/// A run's closing line.
pub fn render_summary(outcome: &Outcome) -> String {
    let verdict = if outcome.passed() { "pass" } else { "fail" };
    format!(
        "{verdict}: {} finding(s), {} ops, {} steps, trace {}\n",
        outcome.findings.len(),
        outcome.ops,
        outcome.steps,
        format_seed(outcome.trace_hash)
    )
}

/// A finding as JSON. One whose position is not known (`Finding::position_known`) has
/// `"position_known": false` and an empty `lifecycle`: the name of the first lifecycle would be a
/// claim, and null would break a reader that takes `lifecycle` as a string (DESIGN.md's keys).
/// `lifecycle_index` and `repetition` keep their types for the same reason, as 0. One that a
/// check at the end of its lifecycle noticed has `"lifecycle_end"` (`teardown`, `no-teardown`),
/// and one noticed while its lifecycle's setup or teardown ran has `"during"` (`setup`,
/// `teardown`): its `repetition` is then only the first or the last one's. One noticed in the
/// subject's `new` has `"in_new": true` (its lifecycle and repetition are the first, unrun), and
/// one noticed after it in a run that stopped before any op (the subject's drop) has
/// `"after_new": true`, alike. A `panic` finding that knows where the subject panicked has
/// `"panicked_at"`: `{"file", "line", "column"}`.
pub fn finding_json(finding: &Finding, outcome: &Outcome) -> Value {
    let known = finding.position_known;
    let mut value = json!({
        "kind": finding.kind.name(),
        "resource": finding.resource,
        "lifecycle": lifecycle_name(finding, outcome),
        "lifecycle_index": finding.lifecycle,
        "repetition": finding.repetition,
        "site": finding.site,
        "signature": finding.signature(),
        "headline": finding.headline,
        "details": finding.details.iter().map(detail_json).collect::<Vec<_>>(),
        "notes": finding.notes,
        "series": finding.series,
    });
    if !known {
        value["position_known"] = json!(false);
    }
    // Which check at the end of the lifecycle noticed it: its `repetition` is then only the
    // last one's, and a reader must not take it for that repetition's finding.
    if let Some(end) = finding.lifecycle_end {
        value["lifecycle_end"] = json!(end);
    }
    // Likewise the list that runs once in which it was noticed, or the subject's `new`.
    if let Some(list) = finding.during {
        value["during"] = json!(list.name());
    }
    if finding.in_new {
        value["in_new"] = json!(true);
    }
    if finding.after_new {
        value["after_new"] = json!(true);
    }
    // Where a subject panicked, in its source (`Finding::panicked_at`).
    if let Some(location) = &finding.panicked_at {
        value["panicked_at"] = json!(location);
    }
    value
}

/// The JSON object of one run (keys per DESIGN.md: verdict, findings, repro, trace_hash). Its
/// verdict is the run's own checks'; a command that checks more (a replay, against the recorded
/// run) sets "fail" where those fail.
pub fn outcome_json(outcome: &Outcome, source: &str, replay: Option<&str>) -> Value {
    json!({
        "verdict": if outcome.passed() { "pass" } else { "fail" },
        "scenario": outcome.header.scenario,
        "source": source,
        "subject": outcome.header.subject,
        "seed": format_seed(outcome.header.seed),
        "defects": outcome.header.defects,
        "strategy": outcome.header.strategy,
        "faults": outcome.header.faults,
        "findings": outcome.findings.iter().map(|f| finding_json(f, outcome)).collect::<Vec<_>>(),
        "repro": replay,
        "trace_hash": format_seed(outcome.trace_hash),
        "steps": outcome.steps,
        "ops": outcome.ops,
    })
}

/// Pins a scenario to the run that failed: seed, defects, schedule strategy, expected signatures
/// and trace hash.
pub fn pin(scenario: &dyn DynScenario, outcome: &Outcome) -> Box<dyn DynScenario> {
    let mut pinned = scenario.clone_box();
    pinned.set_seed(outcome.header.seed);
    pinned.set_defects(outcome.header.defects.clone());
    pinned.set_schedule(outcome.header.schedule.clone());
    pinned.set_expect(Some(Expect {
        signatures: outcome.signatures(),
        trace_hash: Some(format_seed(outcome.trace_hash)),
    }));
    pinned
}

/// How the signatures a run shows differ from those a file pins (`[expect] signatures`): the
/// pinned ones the run did not show, and the ones it showed that the file does not pin. Which
/// of the two matter is the caller's: a regression file pins every finding (`pin`), so both do;
/// a file still open needs only its pinned findings shown, and a repro that pins none checks
/// only its trace.
pub struct PinnedDifference {
    pub not_shown: Vec<String>,
    pub not_pinned: Vec<String>,
}

impl PinnedDifference {
    /// `pinned` against `shown`, each list in its own order.
    pub fn of(pinned: &[String], shown: &[String]) -> PinnedDifference {
        let missing_from = |list: &[String], from: &[String]| -> Vec<String> {
            list.iter()
                .filter(|signature| !from.contains(signature))
                .cloned()
                .collect()
        };
        PinnedDifference {
            not_shown: missing_from(pinned, shown),
            not_pinned: missing_from(shown, pinned),
        }
    }
}

/// The longest a repro file's name keeps of the scenario's name, and of the subject's: a file
/// system refuses names over 255 bytes, and the rest of the name (seed, suffix, `.toml`) needs
/// room too.
const NAME_IN_FILE_NAME_MAX: usize = 120;
const SUBJECT_IN_FILE_NAME_MAX: usize = 60;

/// Repro files tried for one (subject, name, seed) before giving up: `STEM.toml`, `STEM-2.toml`,
/// … `STEM-1000.toml`.
const REPRO_SUFFIXES_MAX: u32 = 1000;

/// `text` as part of a file name: ASCII letters, digits and `-` kept, anything else `_`, cut to
/// `chars_max`.
fn file_name_part(text: &str, chars_max: usize) -> String {
    text.chars()
        .take(chars_max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Why a scenario or repro file was not read. Displayed, it names the file: `PATH: cannot read:
/// …`, or the parser's error for a file past the bound.
pub enum ScenarioFileError {
    Unreadable(String, std::io::Error),
    /// Above `SOURCE_BYTES_MAX`: the parser's error for it.
    TooLarge(crate::scenario::parse::Diagnostic),
}

impl std::fmt::Display for ScenarioFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioFileError::Unreadable(path, error) => write!(f, "{path}: cannot read: {error}"),
            ScenarioFileError::TooLarge(diagnostic) => write!(f, "{diagnostic}"),
        }
    }
}

/// Reads a scenario or repro file, but no more of it than one byte past the most a scenario may
/// have (`SOURCE_BYTES_MAX`): a file past the bound is refused as the parser refuses it, without
/// reading gigabytes of it first, or reading for ever from a device such as `/dev/zero`.
pub fn read_scenario_file(path: &Path) -> Result<Vec<u8>, ScenarioFileError> {
    let bytes_max = crate::scenario::parse::SOURCE_BYTES_MAX as u64;
    read_at_most(path, bytes_max).map_err(|error| match error {
        ReadAtMostError::Unreadable(error) => {
            ScenarioFileError::Unreadable(path.display().to_string(), error)
        }
        ReadAtMostError::TooLarge(size) => ScenarioFileError::TooLarge(
            crate::scenario::parse::too_large(&path.display().to_string(), size),
        ),
    })
}

/// Why `read_at_most` read no file.
pub enum ReadAtMostError {
    Unreadable(std::io::Error),
    /// Past the bound: the file's size where it is a regular file, `None` for a device (such as
    /// `/dev/zero`), whose size is not known.
    TooLarge(Option<u64>),
}

/// The bytes of the file at `path`, but no more of it than one byte past `bytes_max`, so that a
/// file past the bound is refused without reading gigabytes of it first, or reading for ever.
pub fn read_at_most(path: &Path, bytes_max: u64) -> Result<Vec<u8>, ReadAtMostError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadAtMostError::Unreadable)?;
    let mut bytes = Vec::new();
    file.take(bytes_max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadAtMostError::Unreadable)?;
    if bytes.len() as u64 > bytes_max {
        let size = std::fs::metadata(path)
            .ok()
            .filter(|meta| meta.is_file() && meta.len() > bytes_max)
            .map(|meta| meta.len());
        return Err(ReadAtMostError::TooLarge(size));
    }
    Ok(bytes)
}

/// Whether a scenario file of `bytes` bytes would be read back: `sim run` and `sim replay` refuse
/// one above `SOURCE_BYTES_MAX`. Every writer of a scenario file (a run's repro, `sim shrink`'s
/// result, a sweep's minimised repro) checks with this before writing, so that `sim` never writes
/// a file it then refuses to read; the error says why, for the writer to add what reproduces the
/// finding instead.
pub fn check_scenario_file_size(bytes: usize) -> Result<(), String> {
    let bytes_max = crate::scenario::parse::SOURCE_BYTES_MAX;
    if bytes > bytes_max {
        Err(format!(
            "the scenario file would be {bytes} bytes, above the {bytes_max} a scenario file may have, and could not be replayed"
        ))
    } else {
        Ok(())
    }
}

/// Writes a self-contained repro file for a failing run and returns its path:
/// `DIR/SUBJECT-NAME-SEED.toml`, or, when that file holds another run's repro (the same scenario
/// with other defects or another strategy, another file with the same `name`), the first of
/// `DIR/SUBJECT-NAME-SEED-2.toml`, `-3`, … that is free or holds this very repro. A replay
/// command printed earlier must go on replaying the run it was printed for, so no repro is ever
/// overwritten by a different one.
pub fn write_repro(
    dir: &Path,
    scenario: &dyn DynScenario,
    outcome: &Outcome,
) -> std::io::Result<PathBuf> {
    if let Err(error) = std::fs::create_dir_all(dir) {
        // An existing regular file there gives "File exists", which reads as if all were well.
        return Err(if dir.exists() && !dir.is_dir() {
            std::io::Error::from_raw_os_error(libc::ENOTDIR)
        } else {
            error
        });
    }
    let meta = scenario.meta();
    let stem = format!(
        "{}-{}-{:016x}",
        file_name_part(&meta.subject, SUBJECT_IN_FILE_NAME_MAX),
        file_name_part(&meta.name, NAME_IN_FILE_NAME_MAX),
        outcome.header.seed
    );
    let body = pin(scenario, outcome)
        .to_toml()
        .map_err(std::io::Error::other)?;
    for attempt in 1..=REPRO_SUFFIXES_MAX {
        let path = if attempt == 1 {
            dir.join(format!("{stem}.toml"))
        } else {
            dir.join(format!("{stem}-{attempt}.toml"))
        };
        let text = format!(
            "# Repro written by `sim` for a failing run. Replay: {}\n{body}",
            replay_command(&path)
        );
        // The printer spells every op out (`{ op = "bump" }` where a file may say
        // `{op="bump"}`), so a file near the parser's bound prints past it: a repro that `sim
        // replay` would refuse is no repro, and the caller names the command that reruns the
        // file instead. Checked on the whole text, whose first line holds the path.
        check_scenario_file_size(text.len())
            .map_err(|why| std::io::Error::new(std::io::ErrorKind::FileTooLarge, why))?;
        if claim_and_write(&path, &text)? || holds_repro(&path, &body) {
            return Ok(path);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{stem}.toml and {stem}-2.toml … {stem}-{REPRO_SUFFIXES_MAX}.toml all hold other repros"
        ),
    ))
}

/// Creates `path` and writes `text` into it, unless it already exists (`Ok(false)`). Creating
/// and checking are one step, so that two runs at once never both take one name.
fn claim_and_write(path: &Path, text: &str) -> std::io::Result<bool> {
    use std::io::Write;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(error),
    };
    if let Err(error) = file.write_all(text.as_bytes()) {
        // A half-written file would hold no repro, and would push the next run to another name.
        let _ = std::fs::remove_file(path);
        return Err(error);
    }
    Ok(true)
}

/// Whether the repro file at `path` pins exactly `body` (its first line, the comment naming the
/// file, may spell the directory otherwise).
fn holds_repro(path: &Path, body: &str) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_once('\n').map(|(_, rest)| rest == body))
        .unwrap_or(false)
}

/// `text` as one word of a POSIX shell command line: unchanged when the shell reads it back as it
/// is (every path the tool picks by default), else quoted, so that a printed command still pastes
/// when the user chose a directory such as `--out "/tmp/sp ace"`.
///
/// A word with a control character (a path with a newline in it) is written in `$'…'`
/// quoting, with the character escaped (`\n`, `\x01`): a single-quoted newline is a correct word,
/// but it breaks the line, and a command written into a file's comment (`# Replay: …`, the
/// import-crash header) must stay on its comment line for the file to parse. `$'…'` is read by
/// bash, zsh, ksh and POSIX 2024 shells.
pub fn shell_word(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        return Cow::Owned(ansi_c_quoted(text));
    }
    // shlex also quotes a comma, in case the word sits inside a brace expansion `{a,b}`. Ours
    // stand alone, where a comma is literal, and a `gen:` repro lists its defects with commas.
    let plain = |word: &str| shlex::try_quote(word).is_ok_and(|quoted| quoted == word);
    if plain(&text.replace(',', "")) {
        return Cow::Borrowed(text);
    }
    // shlex refuses only a NUL byte, which no path or command-line argument can hold.
    shlex::try_quote(text).unwrap_or(Cow::Borrowed(text))
}

/// `text` as one word of a shell command line that names a file (or is a `gen:` one-liner) to a
/// command: `shell_word`'s, with `./` before a path that starts with `-`, which the command would
/// read as a flag (`--repro-dir=-x` made `sim replay -x/….toml`), and with the bytes of a path
/// that is no UTF-8 escaped in `$'…'` quoting (`\xff`), where it was printed with a stand-in
/// character, naming no file. That quoting is bash's, zsh's and ksh's (and POSIX.1-2024 sh's),
/// which an older `sh` such as dash refuses; the other words are any POSIX shell's.
pub fn path_word(text: impl AsRef<std::ffi::OsStr>) -> String {
    let text = text.as_ref();
    let bytes = text.as_encoded_bytes();
    let dotted;
    let bytes = if bytes.first() == Some(&b'-') {
        dotted = [b"./", bytes].concat();
        &dotted[..]
    } else {
        bytes
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => shell_word(text).into_owned(),
        Err(_) => ansi_c_quoted_bytes(bytes),
    }
}

/// `text` in the shell's `$'…'` quoting, every control character escaped, so that it is one
/// line.
fn ansi_c_quoted(text: &str) -> String {
    ansi_c_quoted_bytes(text.as_bytes())
}

/// `ansi_c_quoted` for bytes that need not be UTF-8: each byte of no character is `\xHH`.
fn ansi_c_quoted_bytes(bytes: &[u8]) -> String {
    let mut quoted = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        push_ansi_c_quoted(&mut quoted, chunk.valid());
        for byte in chunk.invalid() {
            quoted.push_str(&format!("\\x{byte:02x}"));
        }
    }
    quoted.push('\'');
    quoted
}

/// Pushes `text`'s characters onto a `$'…'` word, each control character escaped.
fn push_ansi_c_quoted(quoted: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_ascii_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            // Its UTF-8 bytes, each `\xHH`: bash reads `\uHHHH` only in a UTF-8 locale (under
            // `LC_ALL=C` it keeps the six characters), and the bytes read alike in every locale.
            c if c.is_control() => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    quoted.push_str(&format!("\\x{byte:02x}"));
                }
            }
            c => quoted.push(c),
        }
    }
}

/// `text` for prose on one comment line: unchanged unless it holds a control character, which
/// is escaped as Rust escapes it (`\n`), so that a path with a newline cannot end the comment.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut line = String::new();
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    Cow::Owned(line)
}

/// The command that runs the scenario file `source` with `seed`: the same run again while the
/// file stays as it is (a caller adds the flags the run had beyond the file's own).
pub fn run_command(source: &str, seed: u64) -> String {
    format!(
        "{} run {} --seed {}",
        shell_word(program()),
        path_word(source),
        format_seed(seed)
    )
}

/// The start of the header line that says how to replay a repro (`sim sweep`, `sim shrink
/// --out` and `sim import-crash` write one, through `replay_line`), and of the lines
/// `with_replay_line` rewrites and `sim shrink` leaves out of a shrunk file's header.
pub(crate) const REPLAY_LINE_PREFIX: &str = "# Replay:";

/// The header line, newline included, that says how to replay the repro at `path`: the one
/// spelling every writer of a repro uses, so that `with_replay_line` finds the line it rewrites.
pub(crate) fn replay_line(path: impl AsRef<std::ffi::OsStr>) -> String {
    format!("{REPLAY_LINE_PREFIX} {}\n", replay_command(path))
}

/// `text` with the first `# Replay:` line of its leading comments naming `path`. Found by its
/// prefix, whatever path it named: the path as the sweep printed it, which a promotion given the
/// file by another spelling (`../sweep/repros/X.toml` for `/tmp/sweep/repros/X.toml`) did not
/// match, and a promoted file kept the command of a repro that is deleted with its sweep. Only that
/// line: a path elsewhere in the file (a scenario's string field, say) is left alone.
pub(crate) fn with_replay_line(text: &str, path: &str) -> String {
    let mut rewritten = String::with_capacity(text.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && !line.starts_with('#') {
            done = true;
        }
        if !done && line.starts_with(REPLAY_LINE_PREFIX) {
            let end = &line[line.trim_end_matches(['\r', '\n']).len()..];
            let replay = replay_line(path);
            rewritten.push_str(replay.trim_end_matches('\n'));
            rewritten.push_str(end);
            done = true;
            continue;
        }
        rewritten.push_str(line);
    }
    rewritten
}

/// The command that replays `repro` (a repro file's path, or a `gen:` one-liner), as a shell
/// reads it back (`path_word`).
pub fn replay_command(repro: impl AsRef<std::ffi::OsStr>) -> String {
    format!("{} replay {}", shell_word(program()), path_word(repro))
}

/// A one-line repro for a generated scenario: `gen:SUBJECT:SEED[:DEFECT,DEFECT]`.
pub fn generated_repro(subject: &str, seed: u64, defects: &[String]) -> String {
    if defects.is_empty() {
        format!("gen:{subject}:{}", format_seed(seed))
    } else {
        format!("gen:{subject}:{}:{}", format_seed(seed), defects.join(","))
    }
}

/// The scenario a `gen:SUBJECT:SEED[:DEFECTS]` repro string (as `generated_repro` writes it)
/// names; `None` for any other string. A repro file is loaded as every scenario file is
/// (`sim replay` does so, with the file's warnings).
///
/// Whitespace around the string (`generated_repro_text`) is no part of it: a one-liner holds
/// none, and one pasted with a space before it or a CR after it (copied from a CRLF file) is
/// the same repro, where a space before it made it a file name that could not be read.
pub fn load_generated_repro(
    registry: &Registry,
    repro: &str,
) -> Option<Result<Box<dyn DynScenario>, String>> {
    let repro = generated_repro_text(repro)?;
    let rest = repro.strip_prefix("gen:")?;
    Some(generate_repro(registry, repro, rest))
}

/// `repro` without the whitespace around it, when that is a `gen:` one-liner.
pub fn generated_repro_text(repro: &str) -> Option<&str> {
    let trimmed = repro.trim();
    trimmed.starts_with("gen:").then_some(trimmed)
}

/// The `gen:` one-liner `repro` as a run of it is named: without the whitespace around it or
/// around its defect names, each name once, as the scenario holds them; the subject and seed as
/// given. `None` for any other string; a list that `load_generated_repro` refuses is left as it
/// is.
pub fn generated_repro_named(repro: &str) -> Option<String> {
    let repro = generated_repro_text(repro)?;
    let mut parts = repro.splitn(4, ':');
    let (prefix, subject, seed) = (parts.next()?, parts.next(), parts.next());
    let (Some(subject), Some(seed), Some(list)) = (subject, seed, parts.next()) else {
        return Some(repro.to_string());
    };
    Some(match generated_defects(repro, list) {
        Ok(defects) => format!("{prefix}:{subject}:{seed}:{}", defects.join(",")),
        Err(_) => repro.to_string(),
    })
}

/// The defect names of a one-liner's comma-separated `list`, each without the whitespace around
/// it and once, in the order first given, as a scenario file's `defects` list and a repeated
/// `--defect` take them. An empty name (`…:SEED:`, `…:a,`, `…:a,,b`) is refused: the string was
/// cut or mistyped, and a run with the defects it kept passed for the one meant.
fn generated_defects(repro: &str, list: &str) -> Result<Vec<String>, String> {
    let mut defects: Vec<String> = Vec::new();
    for defect in list.split(',').map(str::trim) {
        if defect.is_empty() {
            return Err(format!(
                "repro `{repro}`: an empty defect name; after `SEED:` comes a comma-separated list of defect names (leave out `:` and the list for defects off)"
            ));
        }
        if !defects.iter().any(|known| known == defect) {
            defects.push(defect.to_string());
        }
    }
    Ok(defects)
}

/// The scenario of the repro string `repro`, whose part after `gen:` is `rest`.
fn generate_repro(
    registry: &Registry,
    repro: &str,
    rest: &str,
) -> Result<Box<dyn DynScenario>, String> {
    let mut parts = rest.splitn(3, ':');
    let subject = parts.next().unwrap_or_default();
    let seed = crate::seed::parse_seed(parts.next().unwrap_or_default())
        .map_err(|e| format!("repro `{repro}`: {e}"))?;
    let defects = match parts.next() {
        Some(list) => generated_defects(repro, list)?,
        None => Vec::new(),
    };
    let entry = registry.get(subject).ok_or_else(|| {
        format!(
            "repro `{repro}`: unknown subject `{subject}`; known: {}",
            registry.names().join(", ")
        )
    })?;
    crate::fuzzing::check_subject_defects(entry, &defects)
        .map_err(|error| format!("repro `{repro}`: {error}"))?;
    // Generated as `sim sweep`, which writes these one-liners, generated the scenario.
    let options = crate::scenario::generate::GenerateOptions {
        defects,
        faults: crate::sweep::GENERATED_FAULTS,
    };
    Ok(entry.generate(seed, &options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_repro_strings_round_trip() {
        let registry = Registry::builtin();
        let line = generated_repro("counter", 0x2a, &["leak-on-evict".into()]);
        assert_eq!(line, "gen:counter:0x000000000000002a:leak-on-evict");
        let scenario = load_generated_repro(&registry, &line).unwrap().unwrap();
        assert_eq!(scenario.meta().seed, 0x2a);
        assert_eq!(scenario.meta().defects, vec!["leak-on-evict"]);
        assert!(
            load_generated_repro(&registry, "gen:nope:1")
                .unwrap()
                .unwrap_err()
                .contains("unknown subject")
        );
        // A misspelt defect is refused with the names it could have been, as in a file.
        assert!(
            load_generated_repro(&registry, "gen:counter:1:nope")
                .unwrap()
                .unwrap_err()
                .ends_with("unknown defect `nope` for subject `counter`; known: leak-on-evict")
        );
        // Cut or mistyped lists are refused, where they ran with what was left.
        for cut in [
            "gen:counter:1:",
            "gen:counter:1:leak-on-evict,",
            "gen:counter:1:,leak-on-evict",
        ] {
            let error = load_generated_repro(&registry, cut).unwrap().unwrap_err();
            assert!(error.contains("an empty defect name"), "{cut}: {error}");
        }
        // A repeat is the defect once, and the whitespace around a string is none of it.
        for line in [
            "gen:counter:1:leak-on-evict,leak-on-evict",
            " gen:counter:1:leak-on-evict\r\n",
        ] {
            let scenario = load_generated_repro(&registry, line).unwrap().unwrap();
            assert_eq!(scenario.meta().defects, vec!["leak-on-evict"], "{line:?}");
        }
        assert!(
            load_generated_repro(&registry, "gen:counter:zz")
                .unwrap()
                .unwrap_err()
                .contains("bad seed")
        );
        // A path is no generated repro, even one of a file that is there: `sim replay` loads
        // a file as every scenario file is loaded, with its warnings.
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/zoo/reload-loop.toml"
        );
        assert!(std::path::Path::new(file).is_file(), "{file}");
        assert!(load_generated_repro(&registry, file).is_none());
    }

    #[test]
    fn prose_on_a_comment_line_escapes_only_control_characters() {
        assert_eq!(one_line("scenarios/a b.toml"), "scenarios/a b.toml");
        assert_eq!(one_line("a\nb = 1\r\t"), r"a\nb = 1\r\t");
    }

    #[test]
    fn shell_words_are_quoted_only_when_the_shell_would_change_them() {
        for plain in [
            "target/sim/repros/wasi-runtime-instantiate-destroy-0000000000000001.toml",
            "../scenarios/zoo/failed-init.toml",
            "gen:wasi-runtime:0x0000000000000007:prestats-lock-leak,fd-table-lock-leak",
        ] {
            assert_eq!(shell_word(plain), plain);
        }
        assert_eq!(shell_word("/tmp/x/sp ace/a.toml"), "'/tmp/x/sp ace/a.toml'");
        assert_eq!(shell_word("it's"), "\"it's\"");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word(","), "','");
        assert_eq!(
            replay_command("/tmp/a b.toml"),
            "sim replay '/tmp/a b.toml'"
        );
        // A path the command would take for a flag, and one that is no UTF-8.
        assert_eq!(replay_command("-x/a.toml"), "sim replay ./-x/a.toml");
        assert_eq!(replay_command("-a b.toml"), "sim replay './-a b.toml'");
        let no_utf8 = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"d\xff/a\n");
        assert_eq!(replay_command(no_utf8), r"sim replay $'d\xff/a\n'");
        // A control character makes a `$'…'` word, on one line, that bash reads back as `text`.
        for (text, word) in [
            ("crash\nseed = 5", r"$'crash\nseed = 5'"),
            ("it's\t\\\r", r"$'it\'s\t\\\r'"),
            ("a\x01b\x7f", r"$'a\x01b\x7f'"),
            // Past ASCII: its UTF-8 bytes, which read back alike in the C locale of a CI box.
            ("a\u{85}", r"$'a\xc2\x85'"),
        ] {
            assert_eq!(shell_word(text), word);
            let echoed = std::process::Command::new("bash")
                .args(["-c", &format!("printf %s {word}")])
                .env("LC_ALL", "C")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(echoed.stdout).unwrap(), text);
        }
    }
}
