//! Parsing and validating scenario files, with errors that point at file:line:column.
//!
//! Parsing happens in two steps. The file is first read into a raw structure in which every op
//! is decoded as it is read (serde's internally tagged enums cannot carry spans, so each op is
//! read as a spanned TOML value, decoded into the runner's or the subject's op type and the value
//! dropped), keeping its span and, if it does not decode, the error to report. Then the whole
//! scenario is validated in program order: threads must be declared before they are spawned,
//! joined only after, and names must be defined before they are used.
//!
//! Memory (`tests/parse_memory.rs` bounds it): toml builds its own tree of a whole file before
//! any field is read, over 100 times the size of a file of small ops, so the ops of op lists are
//! read one at a time (`sketch`) and only a file that fails to read that way is read whole (for
//! the error, exactly as toml reports it). Either way nothing of the file's size is held beside
//! toml's tree: the first reading (`ScenarioFile::read`, which checks the file as TOML) keeps
//! nothing but the `subject` and the sketch (the file's size again), and the second each op decoded rather than as a
//! TOML value. The registry reads a file once for its subject and hands that reading to the
//! subject's parser: the sketch is made once, and each op read once, as it is decoded.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor, value};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use toml_parser::lexer::Token;
use unicode_width::UnicodeWidthChar;

use super::construction::{LimitShort, Shortfall};
use super::locations::{LifecycleSpans, LineIndex, OpLocations, ThreadSpans};
use super::nesting::{self, NESTING_LEVELS_MAX, TooDeep};
use super::op_keys;
use super::sketch::{self, Sketch};
use super::{
    Expect, FaultSpec, Lifecycle, RUNNER_OPS, RunnerOp, Scenario, ScenarioOp, ThreadSpec,
    default_warmup,
};
use crate::faults::FaultKind;
use crate::os::{Limits, PlatformModel, SLEEP_TICKS_MAX};
use crate::sched::{PCT_DEPTH_MAX, PCT_DEPTH_MIN, STRATEGY_KEYS, StrategyChoice};
use crate::seed::parse_seed;
use crate::subject::{Names, OpRefusal, Subject, SubjectInfo, info_of};

/// A problem with a scenario file, with the position it concerns where there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    pub source: String,
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        path: &str,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            path: path.to_string(),
            source: source.to_string(),
            span,
            message: message.into(),
        }
    }

    /// 1-based line and column of the span's start.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        let span = self.span.clone()?;
        let (line, column) = LineIndex::new(&self.source).line_column(span);
        Some((line as usize, column as usize))
    }

    /// `path:line:column`, or the path alone.
    pub fn location(&self) -> String {
        match self.line_column() {
            Some((line, column)) => format!("{}:{line}:{column}", self.path),
            None => self.path.clone(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        // Lines as `LineIndex` counts them (split at each newline), so that a span at the very
        // end of a file, on the empty line after its last newline (or in an empty file), still
        // has a line to show.
        let line_text = |line: usize| {
            let text = self.source.split('\n').nth(line - 1)?;
            Some(text.strip_suffix('\r').unwrap_or(text))
        };
        if let (Some((line, column)), Some(text)) = (
            self.line_column(),
            self.line_column().and_then(|(l, _)| line_text(l)),
        ) {
            let gutter = line.to_string().len();
            // Control characters (a stray NUL, a bell) would garble the terminal or shift the
            // caret; each is shown as one replacement character so columns still line up. A tab,
            // which hand-written files indent with, is no stray: it shows as one space, which
            // keeps the caret where the column (one per character) puts it.
            let shown = |c: char| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{fffd}',
                c => c,
            };
            let text: String = text.chars().take(200).map(shown).collect();
            // The caret goes under the span as a terminal lays the line out: a wide character
            // (CJK, most emoji) takes two cells, so cells are counted, not characters (the
            // column in `-->` stays a count of characters, as an editor's is).
            let cells = |text: &str| text.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
            let before: String = text.chars().take(column - 1).collect();
            let after = &text[before.len()..];
            let width = self.span.as_ref().map_or(1, |s| {
                let spanned: String = self
                    .source
                    .get(s.clone())
                    .map_or("", |t| t.lines().next().unwrap_or(""))
                    .chars()
                    .map(shown)
                    .collect();
                let spanned: String = spanned.chars().take(after.chars().count()).collect();
                cells(&spanned).max(1)
            });
            writeln!(f)?;
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            write!(
                f,
                "{:gutter$} | {:>pad$}{}",
                "",
                "",
                "^".repeat(width),
                // Past the 200 characters shown, one cell a character, as before the cut.
                pad = cells(&before) + (column - 1).saturating_sub(before.chars().count())
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A scenario file as it spells things, with spans; `Op` is what an op of its op lists is read
/// as (a `RawOp`, or a placeholder's offset in a sketch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario<Op> {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    subject: Spanned<String>,
    #[serde(default)]
    defects: Vec<Spanned<String>>,
    #[serde(default)]
    seed: Option<Spanned<toml::Value>>,
    #[serde(default)]
    limits: Option<Spanned<Limits>>,
    #[serde(default)]
    platform: PlatformModel,
    #[serde(default)]
    faults: RawFaults,
    #[serde(default)]
    schedule: Option<Spanned<toml::Value>>,
    #[serde(default)]
    config: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    caches: BTreeMap<Spanned<String>, u64>,
    // Not `default`: serde would ask `Op: Default` of it.
    #[serde(default = "Vec::new", rename = "lifecycle")]
    lifecycles: Vec<Spanned<RawLifecycle<Op>>>,
    #[serde(default)]
    expect: Option<RawExpect>,
}

/// `[expect]` as the file spells it, with spans: its values are checked where they are written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    signatures: Vec<Spanned<String>>,
    #[serde(default)]
    trace_hash: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFaults {
    #[serde(default)]
    swarm: bool,
    reserve: Option<Spanned<f64>>,
    commit: Option<Spanned<f64>>,
    alloc: Option<Spanned<f64>>,
    short_read: Option<Spanned<f64>>,
    short_write: Option<Spanned<f64>>,
    eintr: Option<Spanned<f64>>,
    eagain: Option<Spanned<f64>>,
    spawn: Option<Spanned<f64>>,
}

/// A `[[lifecycle]]` as the file spells it, with spans.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifecycle<Op> {
    name: Spanned<String>,
    repeat: Option<Spanned<i64>>,
    warmup: Option<Spanned<i64>>,
    #[serde(default = "Vec::new")]
    setup: Vec<Op>,
    #[serde(default = "Vec::new")]
    ops: Vec<Op>,
    #[serde(default = "Vec::new")]
    teardown: Vec<Op>,
    #[serde(default = "Vec::new", rename = "thread")]
    threads: Vec<Spanned<RawThread<Op>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThread<Op> {
    name: Spanned<String>,
    #[serde(default = "Vec::new")]
    ops: Vec<Op>,
}

impl<Op> RawScenario<Op> {
    /// The same scenario with each op replaced by what `read` makes of it; `None` if it makes
    /// nothing of one.
    fn try_map_ops<To>(self, mut read: impl FnMut(Op) -> Option<To>) -> Option<RawScenario<To>> {
        let mut list = |ops: Vec<Op>| ops.into_iter().map(&mut read).collect::<Option<Vec<To>>>();
        let mut lifecycles = Vec::with_capacity(self.lifecycles.len());
        for lifecycle in self.lifecycles {
            let span = lifecycle.span();
            let lifecycle = lifecycle.into_inner();
            let mut threads = Vec::with_capacity(lifecycle.threads.len());
            for thread in lifecycle.threads {
                let span = thread.span();
                let thread = thread.into_inner();
                let ops = list(thread.ops)?;
                threads.push(Spanned::new(
                    span,
                    RawThread {
                        name: thread.name,
                        ops,
                    },
                ));
            }
            let lifecycle = RawLifecycle {
                name: lifecycle.name,
                repeat: lifecycle.repeat,
                warmup: lifecycle.warmup,
                setup: list(lifecycle.setup)?,
                ops: list(lifecycle.ops)?,
                teardown: list(lifecycle.teardown)?,
                threads,
            };
            lifecycles.push(Spanned::new(span, lifecycle));
        }
        Some(RawScenario {
            name: self.name,
            description: self.description,
            subject: self.subject,
            defects: self.defects,
            seed: self.seed,
            limits: self.limits,
            platform: self.platform,
            faults: self.faults,
            schedule: self.schedule,
            config: self.config,
            caches: self.caches,
            lifecycles,
            expect: self.expect,
        })
    }
}

/// An op of a sketch (`sketch::Sketch`): where its placeholder starts.
struct OpPlaceholder(usize);

impl<'de> Deserialize<'de> for OpPlaceholder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let placeholder = Spanned::<de::IgnoredAny>::deserialize(deserializer)?;
        Ok(OpPlaceholder(placeholder.span().start))
    }
}

/// One op of the file: where it is, and what it decodes to or why it does not. Decoded as it is
/// read, so that the file's ops are never all held as TOML values (a table each: ~40 times the
/// text of a small op); a decode error waits, to be reported where validation meets it, after
/// every error of the file's shape.
struct RawOp<S: Subject> {
    span: Range<usize>,
    decoded: Result<ScenarioOp<S::Op>, OpDecodeError>,
}

impl<S: Subject> std::fmt::Debug for RawOp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {:?}", self.span, self.decoded)
    }
}

impl<'de, S: Subject> Deserialize<'de> for RawOp<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Spanned::<toml::Value>::deserialize(deserializer).map(RawOp::decode)
    }
}

impl<S: Subject> RawOp<S> {
    fn decode(value: Spanned<toml::Value>) -> RawOp<S> {
        RawOp {
            span: value.span(),
            decoded: decode_op::<S>(value.get_ref()),
        }
    }
}

/// Repetitions allowed in one lifecycle: enough for long soak loops, small enough to bound a run.
pub const REPEAT_MAX: i64 = 10_000_000;
/// Scenario files larger than this are refused before parsing.
pub const SOURCE_BYTES_MAX: usize = 4 << 20;

/// A scenario file read as TOML before any of its fields is checked: what tells which subject's
/// parser reads the rest (`subject`), kept for that parser to go on from, so that one parse reads
/// the file, and each op, once.
pub struct ScenarioFile<'s> {
    path: &'s str,
    source: &'s str,
    subject: Option<Spanned<toml::Value>>,
    /// The file's sketch, read as TOML but for its ops, which are checked as the parser reads
    /// them; `None` when the file was read whole (and all of it checked).
    sketch: Option<Sketch>,
}

impl<'s> ScenarioFile<'s> {
    /// Reads `source` as TOML, failing where reading it into a `toml::Table` would and with the
    /// same error (after refusing a file too large, or nested too deeply for toml to read it on a
    /// small stack), except for an error in an op of a file read by way of its sketch: that one is
    /// reported by whatever reads the ops (`subject`, or the subject's parser), before anything
    /// else they report. Keeps only the `subject` (a table of a large file would be many times
    /// its size, and is not needed: the fields are read again, typed).
    pub fn read(path: &'s str, source: &'s str) -> Result<ScenarioFile<'s>, Diagnostic> {
        check_size(path, source)?;
        // Lexed once for both, and dropped before toml reads the file (as it builds a tree of
        // it, the largest part of reading it).
        let tokens = sketch::tokens_of(source);
        check_nesting(path, source, &tokens)?;
        let sketch = Sketch::of(source, &tokens);
        drop(tokens);
        if let Some(sketch) = sketch
            && let Ok(table) = toml::from_str::<CheckedTable>(sketch.text())
        {
            return Ok(ScenarioFile {
                path,
                source,
                subject: table.subject,
                sketch: Some(sketch),
            });
        }
        Ok(ScenarioFile {
            path,
            source,
            subject: read_whole_toml(path, source)?,
            sketch: None,
        })
    }

    /// What `find` makes of the subject the file names, so the registry can pick the parser. A
    /// missing subject, one that is not a string or one `find` refuses is reported at the subject
    /// only once the whole file reads as TOML: a TOML error anywhere comes first, as it would
    /// from reading the file whole.
    pub fn subject<T>(
        &self,
        find: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Diagnostic> {
        let error = |span, message: String| Diagnostic::new(self.path, self.source, span, message);
        let found = match &self.subject {
            Some(value) => match value.get_ref().as_str() {
                Some(name) => find(name).map_err(|message| error(Some(value.span()), message)),
                None => Err(error(
                    Some(value.span()),
                    format!(
                        "`subject` must be a string naming a subject (see `{} list`)",
                        super::program()
                    ),
                )),
            },
            None => Err(error(
                Some(TOP_OF_FILE),
                format!(
                    "missing field `subject`: every scenario names the subject it runs; add \
                     `subject = \"…\"` at the top of the file (`{} list` shows the subjects)",
                    super::program()
                ),
            )),
        };
        if found.is_err() {
            self.check_ops()?;
        }
        found
    }

    /// The error of reading the file whole if one of the ops its sketch left out does not read
    /// as TOML (which only the parser that decodes them checks otherwise).
    fn check_ops(&self) -> Result<(), Diagnostic> {
        let Some(sketch) = &self.sketch else {
            return Ok(());
        };
        let op_reads = |op: &Range<usize>| {
            toml::de::ValueDeserializer::parse(&self.source[op.clone()])
                .ok()
                .is_some_and(|deserializer| CheckedValue::deserialize(deserializer).is_ok())
        };
        if !sketch.ops().iter().all(op_reads) {
            read_whole_toml(self.path, self.source)?;
        }
        Ok(())
    }
}

/// `ScenarioFile::read` of the whole file, at once.
fn read_whole_toml(path: &str, source: &str) -> Result<Option<Spanned<toml::Value>>, Diagnostic> {
    toml::from_str::<CheckedTable>(source)
        .map(|table| table.subject)
        .map_err(|error| toml_diagnostic(path, source, &error, Stage::Syntax))
}

/// The file's fields with their spans, its ops decoded: by way of its sketch, or if that fails,
/// read whole. Takes the file so that its sketch is dropped once read.
fn read_raw<S: Subject>(file: ScenarioFile) -> Result<RawScenario<RawOp<S>>, Diagnostic> {
    let ScenarioFile {
        path,
        source,
        sketch,
        ..
    } = file;
    if let Some(sketch) = sketch {
        if let Some(raw) = read_sketch::<S>(source, &sketch) {
            return Ok(raw);
        }
        // Its ops were not checked as TOML: the whole reading tells the error if one is there.
        drop(sketch);
        read_whole_toml(path, source)?;
    }
    toml::from_str(source).map_err(|error| toml_diagnostic(path, source, &error, Stage::Fields))
}

/// How `source` read by way of its sketch differs from `source` read whole, when both read: the
/// two readings side by side (their fields, spans and decoded ops). `None` when they agree, or
/// when either fails to read (`parse` then reads the file whole, and so gives what the whole
/// reading gives). For the `scenario-parser` fuzz target, which looks for a file the sketch
/// reads otherwise.
pub fn sketch_disagrees<S: Subject>(source: &str) -> Option<String> {
    let file = ScenarioFile::read("", source).ok()?;
    let sketched = read_sketch::<S>(source, file.sketch.as_ref()?)?;
    let whole: RawScenario<RawOp<S>> = toml::from_str(source).ok()?;
    let (sketched, whole) = (format!("{sketched:#?}"), format!("{whole:#?}"));
    (sketched != whole).then(|| {
        format!("--- read by way of the sketch ---\n{sketched}\n--- read whole ---\n{whole}")
    })
}

/// `read_raw` by way of a sketch that reads as TOML (`ScenarioFile::read`), each op read and
/// decoded as it is met: `None` if anything fails, for the whole file to tell what.
fn read_sketch<S: Subject>(source: &str, sketch: &Sketch) -> Option<RawScenario<RawOp<S>>> {
    let placeholders: RawScenario<OpPlaceholder> = toml::from_str(sketch.text()).ok()?;
    let mut read = 0;
    let raw = placeholders.try_map_ops(|OpPlaceholder(offset)| {
        read += 1;
        sketch.op_at(source, offset).map(RawOp::decode)
    })?;
    // Every op of the file stands in an op list of the scenario: none was left unread.
    (read == sketch.ops().len()).then_some(raw)
}

/// Refuses a file nested more deeply than toml can read on a small stack (`nesting`), before
/// toml reads it.
fn check_nesting(path: &str, source: &str, tokens: &[Token]) -> Result<(), Diagnostic> {
    let Some(TooDeep { span, what }) = nesting::first_too_deep(source, tokens) else {
        return Ok(());
    };
    Err(Diagnostic::new(
        path,
        source,
        Some(span),
        format!(
            "nested too deeply: this {what} goes past the {NESTING_LEVELS_MAX} levels a scenario \
             file may nest (each part of a key, and each array's elements, are a level deeper \
             than what holds them); a scenario needs 7"
        ),
    ))
}

/// The error for a file above `SOURCE_BYTES_MAX`, of `bytes` bytes, or of more than the bound
/// where its size is not known (a device such as `/dev/zero`, read only as far as the bound):
/// one message whether the parser or the reader of the file finds it.
pub fn too_large(path: &str, bytes: Option<u64>) -> Diagnostic {
    let size = match bytes {
        Some(bytes) => format!("{bytes} bytes"),
        None => format!("more than {SOURCE_BYTES_MAX} bytes"),
    };
    Diagnostic::new(
        path,
        "",
        None,
        format!("file is {size}; scenarios are at most {SOURCE_BYTES_MAX}"),
    )
}

/// Refuses a file too large to read, or empty.
fn check_size(path: &str, source: &str) -> Result<(), Diagnostic> {
    if source.len() > SOURCE_BYTES_MAX {
        return Err(too_large(path, Some(source.len() as u64)));
    }
    if source.trim().is_empty() {
        return Err(Diagnostic::new(
            path,
            source,
            Some(TOP_OF_FILE),
            "empty file: a scenario needs at least `name`, `subject` and one [[lifecycle]]",
        ));
    }
    Ok(())
}

/// A document read as a `toml::Table` would be, its values checked and dropped as they are
/// read; its `subject` kept.
struct CheckedTable {
    subject: Option<Spanned<toml::Value>>,
}

impl<'de> Deserialize<'de> for CheckedTable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = CheckedTable;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckedTable, A::Error> {
                let mut subject = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "subject" {
                        subject = Some(map.next_value()?);
                    } else {
                        map.next_value::<CheckedValue>()?;
                    }
                }
                Ok(CheckedTable { subject })
            }
        }
        deserializer.deserialize_map(TableVisitor)
    }
}

/// A value read as a `toml::Value` would be, and dropped: the same errors, without the value.
struct CheckedValue;

impl<'de> Deserialize<'de> for CheckedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedValue)
    }
}

impl<'de> Visitor<'de> for CheckedValue {
    type Value = CheckedValue;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any valid TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<CheckedValue, E> {
        Ok(CheckedValue)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<CheckedValue, E> {
        Ok(CheckedValue)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<CheckedValue, E> {
        Ok(CheckedValue)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<CheckedValue, E> {
        Ok(CheckedValue)
    }

    // Integers past `i64` are refused by `toml::Value` itself, in words of its own: asked, for
    // the same words.
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<CheckedValue, E> {
        toml::Value::deserialize(value::U64Deserializer::<E>::new(value)).map(|_| CheckedValue)
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<CheckedValue, E> {
        toml::Value::deserialize(value::I128Deserializer::<E>::new(value)).map(|_| CheckedValue)
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<CheckedValue, E> {
        toml::Value::deserialize(value::U128Deserializer::<E>::new(value)).map(|_| CheckedValue)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CheckedValue, A::Error> {
        while seq.next_element::<CheckedValue>()?.is_some() {}
        Ok(CheckedValue)
    }

    // A table, or a date-time (which toml hands over as a table of one private key).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckedValue, A::Error> {
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value::<CheckedValue>()?;
        }
        Ok(CheckedValue)
    }
}

/// Which reading of the file a TOML error comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the text as TOML: every error has a real position, offset 0 included.
    Syntax,
    /// Reading the TOML into the scenario's fields, where a missing field has no position.
    Fields,
}

/// Where an error about the top-level table as a whole points (a key it lacks): the top of the
/// file, where its keys go, as the table has no header line of its own.
const TOP_OF_FILE: Range<usize> = 0..0;

fn toml_diagnostic(path: &str, source: &str, error: &toml::de::Error, stage: Stage) -> Diagnostic {
    // A missing top-level field comes with an empty span at offset 0 or one covering the whole
    // document, which would underline the whole file: it is the top-level table's, and points
    // at the top of the file. A syntax error at offset 0 (a file that starts with `{` or `=`) is
    // where it says it is.
    let span = error.span().map(|span| {
        let whole_document = span.start == 0 && span.end >= source.trim_end().len();
        let empty_at_start = span.start == 0 && span.is_empty();
        if stage == Stage::Fields && (whole_document || empty_at_start) {
            TOP_OF_FILE
        } else {
            span
        }
    });
    let message = error.message().trim();
    let message = match &span {
        Some(span) if message == "u64 value was too large" => too_large_message(source, span),
        Some(span) if message.starts_with("missing field `") => {
            missing_field_message(message, source, span)
        }
        // toml names no key; the span is the second setting of it.
        Some(span) if message == "duplicate key" => {
            let in_header = source
                .get(..span.start)
                .is_some_and(|before| before.trim_end_matches([' ', '\t']).ends_with('['));
            match source.get(span.clone()).map(str::trim) {
                Some(key) if !key.is_empty() && in_header => format!(
                    "duplicate key `{key}`: table [{key}] is declared earlier; merge the two"
                ),
                Some(key) if !key.is_empty() => {
                    format!("duplicate key `{key}`: it is set earlier in the same table; keep one")
                }
                _ => message.to_string(),
            }
        }
        // serde names the value and the type it wanted, not the key: the key written before the
        // value on its line is the one.
        Some(span)
            if stage == Stage::Fields
                && (message.starts_with("invalid type:")
                    || message.starts_with("invalid value:")) =>
        {
            match key_of_value(source, span.start) {
                Some(key) => format!("`{key}`: {}", friendly_message(message)),
                None => friendly_message(message),
            }
        }
        _ => friendly_message(message),
    };
    Diagnostic::new(path, source, span, message)
}

/// The key a value starting at `offset` is set to when its line reads `key = value`: `None` for
/// a value inside an array or an inline table, whose line has more before it.
fn key_of_value(source: &str, offset: usize) -> Option<&str> {
    let before = source.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let key = before[line_start..].trim().strip_suffix('=')?.trim_end();
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

/// serde's "missing field `KEY`" (of a table that lacks a key with no default: the scenario's,
/// a lifecycle's or a thread's `name`), with what to add and where: `span` is the table's
/// header, or `TOP_OF_FILE` for the top-level table.
fn missing_field_message(message: &str, source: &str, span: &Range<usize>) -> String {
    let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    else {
        return message.to_string();
    };
    let header = source.get(span.clone()).unwrap_or("").trim_start();
    let (to, why) = if *span == TOP_OF_FILE {
        (
            "at the top of the file",
            " (the scenario's name in reports)",
        )
    } else if header.starts_with("[[lifecycle.thread]]") {
        (
            "under this [[lifecycle.thread]]",
            " (spawn and join name the thread by it)",
        )
    } else if header.starts_with("[[lifecycle]]") {
        (
            "under this [[lifecycle]]",
            " (reports name the lifecycle by it)",
        )
    } else {
        ("to this table", "")
    };
    let why = if key == "name" { why } else { "" };
    format!("{message}: add `{key} = \"…\"` {to}{why}")
}

/// The TOML library reads integers up to `u64::MAX` but a TOML value holds at most `i64::MAX`,
/// and it says so in Rust's terms ("u64 value was too large"). `span` is the integer as written.
fn too_large_message(source: &str, span: &Range<usize>) -> String {
    let text = source.get(span.clone()).unwrap_or("").trim();
    let mut message = integer_too_large(text);
    // The seed is a u64, and its string form holds all of them.
    if let Ok(seed) = text.replace('_', "").parse::<u64>()
        && is_top_level_key(source, span.start, "seed")
    {
        message.push_str(&format!(
            "; write the seed as a string: seed = \"{}\"",
            crate::seed::format_seed(seed)
        ));
    }
    message
}

/// What to say of an integer written past what TOML holds, whichever way the library put it.
fn integer_too_large(written: &str) -> String {
    format!(
        "integer `{written}` is too large: TOML integers are at most {}",
        i64::MAX
    )
}

/// Whether the value at `offset` is that of top-level key `key`: its line reads `key = …`, and
/// no table header comes before it.
fn is_top_level_key(source: &str, offset: usize, key: &str) -> bool {
    let Some(before) = source.get(..offset) else {
        return false;
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let written_key = before[line_start..].trim().trim_end_matches('=').trim();
    let in_a_table = before[..line_start]
        .lines()
        .any(|line| line.trim_start().starts_with('['));
    written_key == key && !in_a_table
}

/// Rewords the TOML library's messages where they speak of Rust types rather than of the file.
fn friendly_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: integer `")
        && let Some((digits, _)) = rest.split_once("` as i128")
    {
        return integer_too_large(digits);
    }
    // serde names Rust types ("expected u8", "expected struct Limits"); say what to write.
    let mut message = message.to_string();
    for (rust, toml) in [
        ("invalid type: map,", "invalid type: table,"),
        ("invalid type: sequence,", "invalid type: array,"),
    ] {
        message = message.replace(rust, toml);
    }
    if let Some(at) = message.rfind(", expected ") {
        let expected = &message[at + ", expected ".len()..];
        let plain = match expected {
            "u8" => Some("an integer in 0..=255"),
            "u16" => Some("an integer in 0..=65535"),
            "u32" => Some("an integer in 0..=4294967295"),
            "u64" => Some("a non-negative integer"),
            "i64" => Some("an integer"),
            "f64" => Some("a number such as 0.05"),
            "a sequence" => Some("an array"),
            "a map" => Some("a table"),
            _ if expected.starts_with("struct ") => Some("a table"),
            _ => None,
        };
        if let Some(plain) = plain {
            message = format!("{}, expected {plain}", &message[..at]);
        }
    }
    message
}

/// The text of a scenario file: UTF-8, or a diagnostic pointing at the first byte that is not.
pub fn source_text(path: &str, bytes: &[u8]) -> Result<String, Diagnostic> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(error) => {
            // The valid prefix is the same in the lossy copy, so the span's offset still holds.
            let lossy = String::from_utf8_lossy(bytes).into_owned();
            let start = error.valid_up_to();
            Err(Diagnostic::new(
                path,
                &lossy,
                Some(start..start + 1),
                format!(
                    "not UTF-8 text (byte 0x{:02x} at offset {start}); a scenario is a TOML file",
                    bytes[start]
                ),
            ))
        }
    }
}

/// Parses and validates a scenario for subject `S`.
pub fn parse<S: Subject>(path: &str, source: &str) -> Result<Scenario<S::Op>, Diagnostic> {
    parse_with_spans::<S>(ScenarioFile::read(path, source)?).map(|(scenario, _)| scenario)
}

/// [`parse`], and where each op is in the file, for reports to point at.
pub fn parse_located<S: Subject>(
    path: &str,
    source: &str,
) -> Result<(Scenario<S::Op>, OpLocations), Diagnostic> {
    parse_file_located::<S>(ScenarioFile::read(path, source)?)
}

/// [`parse_located`] of a file already read as TOML (to learn its subject).
pub fn parse_file_located<S: Subject>(
    file: ScenarioFile,
) -> Result<(Scenario<S::Op>, OpLocations), Diagnostic> {
    let (path, source) = (file.path, file.source);
    let (scenario, spans) = parse_with_spans::<S>(file)?;
    Ok((scenario, OpLocations::of(path, source, &spans)))
}

/// The scenario, and where each lifecycle's ops are.
fn parse_with_spans<S: Subject>(
    file: ScenarioFile,
) -> Result<(Scenario<S::Op>, Vec<LifecycleSpans>), Diagnostic> {
    let (path, source) = (file.path, file.source);
    let raw = read_raw::<S>(file)?;
    let error =
        |span: Range<usize>, message: String| Diagnostic::new(path, source, Some(span), message);
    let info = info_of::<S>();
    if raw.subject.get_ref() != info.name {
        return Err(error(
            raw.subject.span(),
            format!(
                "this parser is for `{}`, the file names `{}`",
                info.name,
                raw.subject.get_ref()
            ),
        ));
    }
    check_name(&raw.name, "the scenario's name in reports").map_err(|(span, m)| error(span, m))?;
    let mut defects = Vec::new();
    for defect in &raw.defects {
        if !info.defects.iter().any(|d| d.name == defect.get_ref()) {
            let known = info.defect_names();
            return Err(error(
                defect.span(),
                format!(
                    "unknown defect `{}` for `{}`; known: {}",
                    defect.get_ref(),
                    info.name,
                    list_or_none(&known)
                ),
            ));
        }
        if !defects.contains(defect.get_ref()) {
            defects.push(defect.get_ref().clone());
        }
    }
    let seed =
        match &raw.seed {
            None => 0,
            Some(value) => match value.get_ref() {
                toml::Value::Integer(n) if *n >= 0 => *n as u64,
                toml::Value::String(text) => {
                    parse_seed(text).map_err(|message| error(value.span(), message))?
                }
                _ => return Err(error(
                    value.span(),
                    "`seed` must be a non-negative integer or a string (\"0x2a\" or a commit hash)"
                        .into(),
                )),
            },
        };
    let mut faults = FaultSpec {
        swarm: raw.faults.swarm,
        ..FaultSpec::default()
    };
    let f = &raw.faults;
    for (kind, value) in [
        (FaultKind::Reserve, &f.reserve),
        (FaultKind::Commit, &f.commit),
        (FaultKind::Alloc, &f.alloc),
        (FaultKind::ShortRead, &f.short_read),
        (FaultKind::ShortWrite, &f.short_write),
        (FaultKind::Eintr, &f.eintr),
        (FaultKind::Eagain, &f.eagain),
        (FaultKind::Spawn, &f.spawn),
    ] {
        if let Some(value) = value {
            let p = *value.get_ref();
            if !(0.0..=1.0).contains(&p) {
                return Err(error(
                    value.span(),
                    format!(
                        "fault probability {p} for `{}` is outside 0.0..=1.0",
                        kind.name()
                    ),
                ));
            }
            faults.probabilities.insert(kind, p);
        }
    }
    let limits = match &raw.limits {
        None => Limits::default(),
        Some(limits) => {
            if let Some((range, value)) = limits.get_ref().out_of_range() {
                let span = limit_value_span(source, range.name).unwrap_or(limits.span());
                return Err(error(
                    span,
                    format!(
                        "`{}` must be between {} and {}, found {value} ({})",
                        range.name, range.min, range.max, range.why
                    ),
                ));
            }
            limits.get_ref().clone()
        }
    };
    // A misspelt kind would otherwise allow nothing, silently.
    let mut caches = BTreeMap::new();
    for (name, &bound) in &raw.caches {
        let kind = name.get_ref();
        let declared = info.caches.iter().any(|cache| cache.kind == kind);
        if !declared && !crate::os::resources::BUILTIN_KIND_NAMES.contains(&kind.as_str()) {
            let mut known: Vec<&str> = crate::os::resources::BUILTIN_KIND_NAMES.to_vec();
            for cache in &info.caches {
                if !known.contains(&cache.kind) {
                    known.push(cache.kind);
                }
            }
            return Err(error(
                name.span(),
                format!(
                    "`[caches]` names `{kind}`, which is not a resource kind of `{}`; known: {}",
                    info.name,
                    known.join(", ")
                ),
            ));
        }
        caches.insert(kind.clone(), bound);
    }
    let config = parse_config(&raw.config, info).map_err(|(span, message)| error(span, message))?;
    let checked =
        crate::subject::catch_subject_code::<S, _>("check_config", "checking `[config]`", || {
            S::check_config(&crate::subject::Config::new(&defects, &config))
        });
    let checked = checked.unwrap_or_else(|headline| {
        // The subject's code panicked, not sim's and not the file's: said at the `[config]`
        // values it was checking (the table's first entry; the file's top when it sets none).
        let span = raw
            .config
            .iter()
            .next()
            .map(|(key, value)| key.span().start..value.span().end);
        let panicked = Diagnostic::new(path, source, span.or(Some(TOP_OF_FILE)), headline);
        crate::subject::unwind_subject_panic(panicked, "check_config")
    });
    checked.map_err(|(param, why)| {
        // At the value that was set; a parameter left at its default has no position of its
        // own, so the table's first key stands for it (a file that sets none has no problem).
        let span = raw
            .config
            .iter()
            .find(|(key, _)| key.get_ref() == param)
            .or_else(|| raw.config.iter().next())
            .map(|(key, value)| {
                if key.get_ref() == param {
                    value.span()
                } else {
                    key.span()
                }
            });
        Diagnostic::new(path, source, span, format!("`[config]`: {why}"))
    })?;
    let schedule = match &raw.schedule {
        None => StrategyChoice::default(),
        Some(value) => parse_schedule(value.get_ref()).map_err(|(at, message)| {
            let span = schedule_entry_span(source, &at).unwrap_or(value.span());
            error(span, message)
        })?,
    };
    let expect = match &raw.expect {
        None => None,
        Some(expect) => Some(parse_expect(expect).map_err(|(span, m)| error(span, m))?),
    };
    if raw.lifecycles.is_empty() {
        return Err(Diagnostic::new(
            path,
            source,
            Some(TOP_OF_FILE),
            format!(
                "no [[lifecycle]]: a scenario needs at least one lifecycle with ops; add \
                 `[[lifecycle]]` with `name = \"…\"` and `ops = [{{ op = \"…\" }}]` \
                 (`{} list {}` shows the ops)",
                super::program(),
                info.name
            ),
        ));
    }
    let mut lifecycles = Vec::with_capacity(raw.lifecycles.len());
    let mut spans = Vec::with_capacity(raw.lifecycles.len());
    // Names defined in one lifecycle stay defined in the next: validation follows program order.
    let mut names = Names::default();
    // Reports and repros name a lifecycle only by its name, so two of one name could not be told
    // apart.
    let mut lifecycle_names = BTreeMap::new();
    let mut threads_out = Vec::with_capacity(raw.lifecycles.len());
    for (index, raw_lifecycle) in raw.lifecycles.into_iter().enumerate() {
        let name = &raw_lifecycle.get_ref().name;
        check_name(name, "reports name the lifecycle by it").map_err(|(span, m)| error(span, m))?;
        if let Some(first) = lifecycle_names.insert(name.get_ref().clone(), name.span()) {
            return Err(error(
                name.span(),
                format!(
                    "lifecycle `{}` is declared twice (first at line {}); rename one",
                    name.get_ref(),
                    line_of(source, &first)
                ),
            ));
        }
        let (lifecycle, lifecycle_spans, lifecycle_threads_out) =
            parse_lifecycle::<S>(path, source, index, raw_lifecycle, &mut names)?;
        lifecycles.push(lifecycle);
        spans.push(lifecycle_spans);
        threads_out.push(lifecycle_threads_out);
    }
    // Only a file that writes `[limits]` can set one that every run exhausts; the file is read
    // again for a limit's span only when one is refused (it keeps none per limit).
    if raw.limits.is_some() {
        let construction = crate::subject::Config::new(&defects, &config);
        let limits_of_file = LimitsOfFile {
            limits: &limits,
            platform: &raw.platform,
            config: &construction,
            faults: &faults,
        };
        let written = |name: &str| limit_value_span(source, name).is_some();
        if let Err(refusal) = check_limits::<S>(&limits_of_file, &lifecycles, &threads_out, written)
        {
            let span = refusal
                .limit
                .and_then(|name| limit_value_span(source, name))
                .or_else(|| raw.limits.as_ref().map(|limits| limits.span()))
                .expect("a file that lowers a limit has [limits]");
            return Err(error(span, refusal.message));
        }
    }
    let scenario = Scenario {
        name: raw.name.into_inner().into(),
        description: raw.description,
        subject: Cow::Borrowed(info.name),
        defects,
        seed,
        limits,
        platform: raw.platform,
        faults,
        schedule,
        config,
        caches,
        lifecycles,
        expect,
    };
    Ok((scenario, spans))
}

/// `[expect]`, each value checked: a signature that no finding could have, or a trace hash that
/// no run could, would only show after the run, as a finding that did not appear or a hash that
/// differs, which reads as the run having changed.
fn parse_expect(raw: &RawExpect) -> Result<Expect, (Range<usize>, String)> {
    let mut signatures = Vec::with_capacity(raw.signatures.len());
    for signature in &raw.signatures {
        if let Some(problem) = crate::findings::signature_problem(signature.get_ref()) {
            return Err((
                signature.span(),
                format!("`[expect]` `signatures`: {problem}"),
            ));
        }
        signatures.push(signature.get_ref().clone());
    }
    let trace_hash = match &raw.trace_hash {
        None => None,
        Some(hash) => {
            // Read as `sim run` reads it to compare: a hash it could not read, or a commit hash
            // (which folds to a number no run's trace hash is), every run of the file would
            // differ from.
            if crate::seed::parse_trace_hash(hash.get_ref()).is_none() {
                return Err((
                    hash.span(),
                    format!(
                        "`[expect]` `trace_hash` must be a run's trace hash as `sim` prints it, \
                         `0x` and 16 hex digits (\"0x0797ad6e92befd7a\"), or the same number in \
                         decimal; found `{}`",
                        hash.get_ref()
                    ),
                ));
            }
            Some(hash.get_ref().clone())
        }
    };
    Ok(Expect {
        signatures,
        trace_hash,
    })
}

/// Refuses an empty `name` (the scenario's, a lifecycle's or a thread's) at its `""`: a report
/// would say `lifecycle ``` and a thread of no name could not be told apart in a trace. `why` says
/// what the name is for.
fn check_name(name: &Spanned<String>, why: &str) -> Result<(), (Range<usize>, String)> {
    let blank = if name.get_ref().is_empty() {
        ""
    } else if name.get_ref().trim().is_empty() {
        ", not only whitespace"
    } else {
        return Ok(());
    };
    Err((
        name.span(),
        format!("`name` must be non-empty{blank} ({why}); write `name = \"…\"`"),
    ))
}

/// What in `schedule` an error is about: the whole value, or one key of its table or that key's
/// value.
enum ScheduleAt {
    Whole,
    Key(String),
    Value(&'static str),
}

/// `schedule = { strategy = "pct", depth = 3 }`: decoded here so that errors name the field.
fn parse_schedule(value: &toml::Value) -> Result<StrategyChoice, (ScheduleAt, String)> {
    const SHAPE: &str =
        "a table like { strategy = \"random\" } or { strategy = \"pct\", depth = 3 }";
    if !value.is_table() {
        return Err((
            ScheduleAt::Whole,
            format!("`schedule` must be {SHAPE}, found {}", value.type_str()),
        ));
    }
    if let Some(table) = value.as_table()
        && let Some(strategy) = table.get("strategy").and_then(|s| s.as_str())
        && let Some((_, keys)) = STRATEGY_KEYS.iter().find(|(name, _)| *name == strategy)
    {
        // serde would name the field's Rust type ("an integer in 0..=4294967295"), not what PCT
        // takes.
        if strategy == "pct"
            && let Some(depth) = table.get("depth")
            && !depth.is_integer()
        {
            return Err((
                ScheduleAt::Value("depth"),
                format!(
                    "`schedule`: PCT `depth` must be an integer between {PCT_DEPTH_MIN} and {PCT_DEPTH_MAX}, found {}",
                    depth.type_str()
                ),
            ));
        }
        if strategy == "replay" {
            check_replay_schedule(table)?;
        }
        for key in table.keys().filter(|key| *key != "strategy") {
            if keys.contains(&key.as_str()) {
                continue;
            }
            let takes = if keys.is_empty() {
                "no other keys".to_string()
            } else {
                keys.join(", ")
            };
            let of_another = STRATEGY_KEYS
                .iter()
                .any(|(_, keys)| keys.contains(&key.as_str()));
            let at = ScheduleAt::Key(key.clone());
            return Err(if of_another {
                (
                    at,
                    format!(
                        "`schedule`: `{key}` does not apply to strategy `{strategy}`, which takes {takes}"
                    ),
                )
            } else {
                (
                    at,
                    format!("`schedule`: unknown key `{key}`; strategy `{strategy}` takes {takes}"),
                )
            });
        }
    }
    let choice = value.clone().try_into::<StrategyChoice>().map_err(|e| {
        let message = friendly_message(e.message().trim());
        // A strategy of no name STRATEGY_KEYS lists is its `strategy` value's error; others are
        // the table's.
        let strategy = value.get("strategy").and_then(toml::Value::as_str);
        let at = match strategy {
            Some(name) if !STRATEGY_KEYS.iter().any(|(known, _)| *known == name) => {
                ScheduleAt::Value("strategy")
            }
            _ => ScheduleAt::Whole,
        };
        (at, format!("`schedule`: {message}; write {SHAPE}"))
    })?;
    choice
        .check()
        .map_err(|(key, problem)| (ScheduleAt::Value(key), format!("`schedule`: {problem}")))?;
    Ok(choice)
}

/// A `replay` strategy's list, which serde would call a "missing field `schedule`" or name its
/// Rust type: the thread chosen at each decision, as the trace's `schedule` events give them.
fn check_replay_schedule(table: &toml::Table) -> Result<(), (ScheduleAt, String)> {
    const NEEDS: &str = "a replay schedule needs `schedule = [thread ids…]`, the thread chosen at \
                         each scheduling decision in order (the `a` of each `\"ev\":\"schedule\"` \
                         line of a trace written with `--trace FILE`): \
                         `schedule = { strategy = \"replay\", schedule = [0, 1, 1, 0] }`";
    match table.get("schedule") {
        None => Err((ScheduleAt::Whole, format!("`schedule`: {NEEDS}"))),
        Some(list)
            if !list.as_array().is_some_and(|ids| {
                ids.iter()
                    .all(|id| id.as_integer().is_some_and(|id| u32::try_from(id).is_ok()))
            }) =>
        {
            Err((
                ScheduleAt::Value("schedule"),
                format!(
                    "`schedule`: {NEEDS}; found {}",
                    if list.is_array() {
                        "an entry that is not a thread id (an integer from 0)"
                    } else {
                        list.type_str()
                    }
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Where in the file what `at` names is, for an error about it; `None` for the whole value.
fn schedule_entry_span(source: &str, at: &ScheduleAt) -> Option<Range<usize>> {
    let schedule = [PathStep::Key("schedule")];
    match at {
        ScheduleAt::Whole => None,
        ScheduleAt::Key(key) => file_entry_spans(source, &schedule, key).map(|(key, _)| key),
        ScheduleAt::Value(key) => file_entry_spans(source, &schedule, key).map(|(_, value)| value),
    }
}

/// Where the empty op list of the lifecycle at `index` is written (`ops`, else `setup`, else
/// `teardown`), for "has no ops"; `None` when it writes none.
fn empty_op_list_span(source: &str, index: usize) -> Option<Range<usize>> {
    let lifecycle = [PathStep::Key("lifecycle"), PathStep::Index(index)];
    ["ops", "setup", "teardown"]
        .into_iter()
        .find_map(|list| file_entry_spans(source, &lifecycle, list))
        .map(|(_, value)| value)
}

/// Where the value of `[limits]` field `name` is, for an error about it.
fn limit_value_span(source: &str, name: &str) -> Option<Range<usize>> {
    file_entry_spans(source, &[PathStep::Key("limits")], name).map(|(_, value)| value)
}

/// The `[config]` table, each key checked against the subject's declared parameters: a misspelt
/// key or a value of the wrong kind would otherwise be ignored, or reach the subject and fail the
/// run as a finding of its own.
fn parse_config(
    raw: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    info: &SubjectInfo,
) -> Result<toml::Table, (Range<usize>, String)> {
    let mut config = toml::Table::new();
    for (key, value) in raw {
        let name = key.get_ref();
        let Some(param) = info.params.iter().find(|param| param.name == name) else {
            let known: Vec<&str> = info.params.iter().map(|param| param.name).collect();
            return Err((
                key.span(),
                format!(
                    "unknown `[config]` key `{name}` for `{}`; known: {}",
                    info.name,
                    list_or_none(&known)
                ),
            ));
        };
        if let Some(problem) = param.kind.check(value.get_ref()) {
            return Err((value.span(), format!("`[config]` `{name}` {problem}")));
        }
        config.insert(name.clone(), value.get_ref().clone());
    }
    Ok(config)
}

/// The 1-based line where `span` starts, for an error that points at one place and names another.
fn line_of(source: &str, span: &Range<usize>) -> u32 {
    LineIndex::new(source).line_column(span.clone()).0
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn parse_lifecycle<S: Subject>(
    path: &str,
    source: &str,
    index: usize,
    raw: Spanned<RawLifecycle<RawOp<S>>>,
    names: &mut Names,
) -> Result<(Lifecycle<S::Op>, LifecycleSpans, ThreadsOut), Diagnostic> {
    let error =
        |span: Range<usize>, message: String| Diagnostic::new(path, source, Some(span), message);
    let lifecycle_span = raw.span();
    let raw = raw.into_inner();
    let repeat = match &raw.repeat {
        None => 1,
        Some(value) if (1..=REPEAT_MAX).contains(value.get_ref()) => *value.get_ref() as u32,
        Some(value) => {
            return Err(error(
                value.span(),
                format!("`repeat` must be between 1 and {REPEAT_MAX}"),
            ));
        }
    };
    let warmup = match &raw.warmup {
        None => default_warmup(repeat),
        Some(value) if (0..i64::from(repeat)).contains(value.get_ref()) => *value.get_ref() as u32,
        Some(value) if *value.get_ref() < 0 => {
            return Err(error(
                value.span(),
                "`warmup` must be a non-negative integer: the repetitions run before the growth check starts"
                    .into(),
            ));
        }
        Some(value) => {
            // With no `repeat`, the file shows no number to compare with: say where it comes from.
            let unset = if raw.repeat.is_none() {
                ", the default: set `repeat` above it"
            } else {
                ""
            };
            return Err(error(
                value.span(),
                format!("`warmup` must be below `repeat` ({repeat}{unset})"),
            ));
        }
    };
    let lifecycle_name = raw.name.get_ref();
    let mut threads = Vec::with_capacity(raw.threads.len());
    let mut thread_spans = Vec::with_capacity(raw.threads.len());
    let mut thread_names = BTreeMap::new();
    for thread in raw.threads {
        let thread = thread.into_inner();
        check_name(&thread.name, "spawn and join name the thread by it")
            .map_err(|(span, m)| error(span, m))?;
        let name_span = thread.name.span();
        let name = thread.name.into_inner();
        if let Some(first) = thread_names.insert(name.clone(), name_span.clone()) {
            return Err(error(
                name_span,
                format!(
                    "thread `{name}` is declared twice in lifecycle `{lifecycle_name}` (first at \
                     line {}); rename one",
                    line_of(source, &first)
                ),
            ));
        }
        let (ops, op_spans) = decode_ops(path, source, thread.ops)?;
        thread_spans.push(ThreadSpans {
            name: name.clone(),
            name_span,
            ops: op_spans,
        });
        threads.push(ThreadSpec { name, ops });
    }
    let (setup, setup_spans) = decode_ops(path, source, raw.setup)?;
    let (ops, ops_spans) = decode_ops(path, source, raw.ops)?;
    let (teardown, teardown_spans) = decode_ops(path, source, raw.teardown)?;
    let spans = LifecycleSpans {
        setup: setup_spans,
        ops: ops_spans,
        teardown: teardown_spans,
        threads: thread_spans,
    };
    let lifecycle = Lifecycle {
        name: lifecycle_name.clone().into(),
        repeat,
        warmup,
        setup,
        ops,
        teardown,
        threads,
    };
    let threads_out = check_lifecycle::<S>(&lifecycle, names).map_err(|(at, message)| {
        let span = match at {
            // At the empty list the file writes (`ops = []`), if it writes one.
            ProblemAt::NoOps => empty_op_list_span(source, index).unwrap_or(lifecycle_span.clone()),
            ProblemAt::Op { list, index, field } => {
                let op = op_span(&spans, list, index);
                // The field's value, where the op writes it; the op if it does not.
                field
                    .and_then(|field| op_entry_spans(source, op, field))
                    .map_or(op.clone(), |(_, value)| value)
            }
            ProblemAt::OpPanicked { list, index } => {
                let panicked = error(op_span(&spans, list, index).clone(), message);
                crate::subject::unwind_subject_panic(panicked, "validate_op")
            }
        };
        error(span, message)
    })?;
    Ok((lifecycle, spans, threads_out))
}

/// Where the file writes op `index` of `list`.
fn op_span(spans: &LifecycleSpans, list: ListAt, index: usize) -> &Range<usize> {
    match list {
        ListAt::Setup => &spans.setup[index],
        ListAt::Ops => &spans.ops[index],
        ListAt::Teardown => &spans.teardown[index],
        ListAt::Thread(thread) => &spans.threads[thread].ops[index],
    }
}

/// Checks a scenario built in memory as [`parse`] checks a file: at least one lifecycle, each
/// with ops, threads spawned only if declared and joined only after their spawn, and every name
/// defined before it is used, and `[limits]` that no run exhausts before its ops (`check_limits`,
/// with a limit written where the printed file writes it). The shrinker checks its candidates
/// with it, so that a candidate it keeps is a file `parse` accepts: printing each one and parsing
/// it back cost seconds per candidate for a 300,000-op scenario, and refused every one whose
/// printed text passed the 4 MiB a file may have.
pub fn validate<S: Subject>(scenario: &Scenario<S::Op>) -> Result<(), String> {
    if scenario.lifecycles.is_empty() {
        return Err("no [[lifecycle]]: a scenario needs at least one lifecycle with ops".into());
    }
    let mut names = Names::default();
    let mut threads_out = Vec::with_capacity(scenario.lifecycles.len());
    for lifecycle in &scenario.lifecycles {
        threads_out.push(check_lifecycle::<S>(lifecycle, &mut names).map_err(
            |(at, message)| match at {
                // The subject's panic goes on as it would have: this is no refusal of the
                // scenario, and the shrinker would take it for one.
                ProblemAt::OpPanicked { .. } => {
                    crate::subject::unwind_subject_panic(message, "validate_op")
                }
                _ => message,
            },
        )?);
    }
    // The printed file writes a limit where it differs from the default (`print::to_toml`).
    let defaults = Limits::default().fields();
    let fields = scenario.limits.fields();
    let written = |name: &str| {
        fields
            .iter()
            .zip(&defaults)
            .any(|(field, default)| field.0 == name && field != default)
    };
    let construction = crate::subject::Config::new(&scenario.defects, &scenario.config);
    let limits_of_file = LimitsOfFile {
        limits: &scenario.limits,
        platform: &scenario.platform,
        config: &construction,
        faults: &scenario.faults,
    };
    check_limits::<S>(&limits_of_file, &scenario.lifecycles, &threads_out, written)
        .map_err(|refusal| refusal.message)
}

/// The first op of `scenario` that [`validate`] refuses, in program order, as (lifecycle, list,
/// index), lists numbered setup 0, ops 1, teardown 2 and each thread from 3; `None` if its
/// lifecycles pass (a refusal of `[limits]` is no op's). The shrinker uses it to take out, with a
/// cut op, the ops that named what it created wherever they are (a thread's `create` and the
/// `destroy` of it in `ops`).
pub(crate) fn first_refused_op<S: Subject>(
    scenario: &Scenario<S::Op>,
) -> Option<(usize, usize, usize)> {
    let mut names = Names::default();
    for (at, lifecycle) in scenario.lifecycles.iter().enumerate() {
        match check_lifecycle::<S>(lifecycle, &mut names) {
            Ok(_) => {}
            Err((ProblemAt::Op { list, index, .. }, _)) => {
                let list = match list {
                    ListAt::Setup => 0,
                    ListAt::Ops => 1,
                    ListAt::Teardown => 2,
                    ListAt::Thread(thread) => 3 + thread,
                };
                return Some((at, list, index));
            }
            // A panic of the subject's `validate_op` is no refusal: `validate`, which the
            // shrinker runs first, unwinds with it.
            Err((ProblemAt::NoOps | ProblemAt::OpPanicked { .. }, _)) => return None,
        }
    }
    None
}

/// What the checks of `[limits]` read of a scenario besides its lifecycles.
struct LimitsOfFile<'a> {
    limits: &'a Limits,
    platform: &'a PlatformModel,
    /// The file's defects and `[config]`, as the subject's constructor gets them.
    config: &'a crate::subject::Config,
    faults: &'a FaultSpec,
}

/// A `[limits]` value that ends every run of the file before the run shows anything of its ops.
struct LimitRefusal {
    /// The field at fault; `None` for the `[limits]` table as a whole.
    limit: Option<&'static str>,
    message: String,
}

/// The refusal of limits with which every run would end in the subject's constructor.
fn constructor_refusal(subject: &str, short: Shortfall) -> LimitRefusal {
    let must = |short: &LimitShort| match short.least {
        Some(least) => format!(
            "for `{subject}` it must be between {least} and {}",
            short.range.max
        ),
        None => format!(
            "even {} is too few with the file's other limits",
            short.range.max
        ),
    };
    match short {
        Shortfall::Exhausted(short) => LimitRefusal {
            limit: Some(short.range.name),
            message: format!(
                "`{}` is {}, but the constructor of `{subject}` (what runs before its first op) \
                 needs more: every run would end there with a budget finding; {}",
                short.range.name,
                short.value,
                must(&short)
            ),
        },
        Shortfall::Panicked {
            message,
            limit: Some(short),
        } => LimitRefusal {
            limit: Some(short.range.name),
            message: format!(
                "`{}` is {}, and with it the constructor of `{subject}` (what runs before its \
                 first op) panicked: {message}; every run would end there with a panic finding; {}",
                short.range.name,
                short.value,
                must(&short)
            ),
        },
        Shortfall::Panicked {
            message,
            limit: None,
        } => LimitRefusal {
            limit: None,
            message: format!(
                "with these limits the constructor of `{subject}` (what runs before its first op) \
                 panicked, and with the default limits it does not: {message}; every run would \
                 end there with a panic finding; raise the limits it needs"
            ),
        },
    }
}

/// The checks of `[limits]` against the whole scenario, for [`parse`] (which points at the
/// field's value) and [`validate`] (so that a shrunk scenario is one its file would be:
/// dropping `[faults]` can make a limit the file was allowed one that every run exhausts).
/// `written` says whether the file writes a field: `threads_max` is checked only then.
fn check_limits<S: Subject>(
    file: &LimitsOfFile,
    lifecycles: &[Lifecycle<S::Op>],
    threads_out: &[ThreadsOut],
    written: impl Fn(&str) -> bool,
) -> Result<(), LimitRefusal> {
    let info = info_of::<S>();
    let (limits, faults) = (file.limits, file.faults);
    // A limit the subject's constructor exhausts ends every run before its first op
    // (`construction.rs`); a limit of 0 is otherwise legitimate (`os::LIMIT_RANGES`).
    let faults_may_fire = FaultKind::ALL.into_iter().any(|kind| faults.may_fire(kind));
    if let Some(short) =
        super::construction::shortfall::<S>(limits, file.platform, file.config, faults_may_fire)
    {
        return Err(constructor_refusal(info.name, short));
    }
    // A list that has more threads out at once than `threads_max` ends every run at a spawn,
    // with a budget finding that says nothing of the subject (the main thread does not count);
    // unless spawns may fail by injection, which leaves fewer out.
    if !faults.may_fire(FaultKind::Spawn)
        && let Some((lifecycle, (list, out))) =
            lifecycles
                .iter()
                .zip(threads_out)
                .find_map(|(lifecycle, lists)| {
                    let over = lists.iter().find(|(_, out)| *out > limits.threads_max)?;
                    Some((&lifecycle.name, over))
                })
        && written("threads_max")
    {
        return Err(LimitRefusal {
            limit: Some("threads_max"),
            message: format!(
                "`threads_max` is {}, but `{list}` of lifecycle `{lifecycle}` has {out} thread(s) \
                 spawned and not yet joined at once (the main thread does not count): every run \
                 would end at a spawn with a budget finding; raise it to at least {out}",
                limits.threads_max
            ),
        });
    }
    Ok(())
}

/// One of a lifecycle's op lists, a thread's by its index in the lifecycle (a report's
/// `findings::OpList` names a thread's list by the thread's name instead).
#[derive(Clone, Copy)]
enum ListAt {
    Setup,
    Ops,
    Teardown,
    /// The ops of the lifecycle's thread at this index.
    Thread(usize),
}

/// What a lifecycle's problem concerns: its having no ops, or the op at an index of a list.
enum ProblemAt {
    /// The lifecycle has no op in any list: at its header, or the empty list it writes.
    NoOps,
    /// The op, at the value of `field` when one field's value is at fault.
    Op {
        list: ListAt,
        index: usize,
        field: Option<&'static str>,
    },
    /// The subject's `validate_op` panicked on the op: no refusal, a bug in the subject's code,
    /// which the message (`subject::subject_panic_headline`) says.
    OpPanicked { list: ListAt, index: usize },
}

/// The most threads each list of a lifecycle (setup, ops, teardown) has spawned and not yet
/// joined at any point, as the runner counts them against `threads_max`.
type ThreadsOut = [(&'static str, u64); 3];

/// The checks of a decoded lifecycle, for [`parse_lifecycle`] (which turns where a problem is
/// into a span of the file) and [`validate`]. `names` holds what earlier lifecycles defined.
/// Counts the threads each list has out at once on the way, for the parser's check of
/// `threads_max`.
fn check_lifecycle<S: Subject>(
    lifecycle: &Lifecycle<S::Op>,
    names: &mut Names,
) -> Result<ThreadsOut, (ProblemAt, String)> {
    if lifecycle.setup.is_empty() && lifecycle.ops.is_empty() && lifecycle.teardown.is_empty() {
        return Err((
            ProblemAt::NoOps,
            format!(
                "lifecycle `{}` has no ops; add `ops = [{{ op = \"…\" }}]` (`{} list {}` shows \
                 the ops)",
                lifecycle.name,
                super::program(),
                info_of::<S>().name
            ),
        ));
    }
    let lists = [
        ("setup", ListAt::Setup, &lifecycle.setup),
        ("ops", ListAt::Ops, &lifecycle.ops),
        ("teardown", ListAt::Teardown, &lifecycle.teardown),
    ];
    // Thread references: spawn only declared threads, join only ones the same list spawned. The
    // runner runs each list (setup, ops, teardown) until its threads are done and resolves a
    // join within its list, so a join in `ops` of a thread `setup` spawned would do nothing, in
    // every repetition, without a word.
    let mut threads_out: ThreadsOut = [("setup", 0), ("ops", 0), ("teardown", 0)];
    for ((name, list, ops), (_, most_out)) in lists.into_iter().zip(&mut threads_out) {
        // Each thread spawned earlier in the list, with how many of its spawns are not joined.
        let mut spawned: BTreeMap<&str, u64> = BTreeMap::new();
        let mut out = 0;
        for (index, op) in ops.iter().enumerate() {
            let at_thread = ProblemAt::Op {
                list,
                index,
                field: Some("thread"),
            };
            match op {
                ScenarioOp::Spawn { thread } => {
                    if lifecycle.thread(thread).is_none() {
                        let declared: Vec<&str> =
                            lifecycle.threads.iter().map(|t| t.name.as_str()).collect();
                        return Err((
                            at_thread,
                            format!(
                                "spawn of thread `{thread}`, which lifecycle `{}` does not declare ([[lifecycle.thread]]); it declares: {}",
                                lifecycle.name,
                                list_or_none(&declared)
                            ),
                        ));
                    }
                    *spawned.entry(thread).or_default() += 1;
                    out += 1;
                    *most_out = (*most_out).max(out);
                }
                ScenarioOp::Join { thread } => {
                    let Some(not_joined) = spawned.get_mut(thread.as_str()) else {
                        return Err((
                            at_thread,
                            format!(
                                "join of thread `{thread}`, which is not spawned before this op in `{name}` (a list joins only the threads it spawns: its threads finish with it)"
                            ),
                        ));
                    };
                    // A join of a thread with no spawn left out joins nothing.
                    if *not_joined > 0 {
                        *not_joined -= 1;
                        out -= 1;
                    }
                }
                _ => {}
            }
        }
    }
    for (thread, spec) in lifecycle.threads.iter().enumerate() {
        for (index, op) in spec.ops.iter().enumerate() {
            if matches!(op, ScenarioOp::Spawn { .. } | ScenarioOp::Join { .. }) {
                return Err((
                    ProblemAt::Op {
                        list: ListAt::Thread(thread),
                        index,
                        field: Some("op"),
                    },
                    "threads other than main cannot spawn or join in this version".into(),
                ));
            }
        }
    }
    validate_names::<S>(lifecycle, names)?;
    Ok(threads_out)
}

/// Walks ops in program order (setup, ops with each spawned thread's ops at its spawn, teardown)
/// and asks the subject whether each op's names are defined before use.
fn validate_names<S: Subject>(
    lifecycle: &Lifecycle<S::Op>,
    names: &mut Names,
) -> Result<(), (ProblemAt, String)> {
    let lists = [
        (ListAt::Setup, &lifecycle.setup),
        (ListAt::Ops, &lifecycle.ops),
        (ListAt::Teardown, &lifecycle.teardown),
    ];
    let refused = |list, index| {
        move |check: OpCheck| match check {
            OpCheck::Refused(refusal) => {
                let field = refusal.field;
                (ProblemAt::Op { list, index, field }, refusal.message)
            }
            OpCheck::Panicked(headline) => (ProblemAt::OpPanicked { list, index }, headline),
        }
    };
    for (list, ops) in lists {
        for (index, op) in ops.iter().enumerate() {
            check_op::<S>(op, names).map_err(refused(list, index))?;
            if let ScenarioOp::Spawn { thread } = op {
                let spawned = lifecycle
                    .threads
                    .iter()
                    .position(|t| &t.name == thread)
                    .expect("checked above");
                for (thread_index, thread_op) in lifecycle.threads[spawned].ops.iter().enumerate() {
                    check_op::<S>(thread_op, names)
                        .map_err(refused(ListAt::Thread(spawned), thread_index))?;
                }
            }
        }
    }
    Ok(())
}

/// Why an op did not pass the subject's `validate_op`.
enum OpCheck {
    Refused(OpRefusal),
    /// `validate_op` panicked: the headline that says so (`subject::subject_panic_headline`).
    Panicked(String),
}

fn check_op<S: Subject>(op: &ScenarioOp<S::Op>, names: &mut Names) -> Result<(), OpCheck> {
    match op {
        // A panic here is the subject's code, not sim's and not the file's: caught to say so, at
        // the op it was checking (a cold call: once per op of a parsed or shrunk scenario).
        ScenarioOp::Subject(op) => {
            crate::subject::catch_subject_code::<S, _>("validate_op", "checking this op", || {
                S::validate_op(op, names)
            })
            .map_err(OpCheck::Panicked)?
            .map_err(OpCheck::Refused)
        }
        _ => Ok(()),
    }
}

/// The ops of a list, and where each is in the file.
type DecodedList<O> = (Vec<ScenarioOp<O>>, Vec<Range<usize>>);

/// The ops of one list and their spans, or a diagnostic at the first that does not decode.
fn decode_ops<S: Subject>(
    path: &str,
    source: &str,
    raw: Vec<RawOp<S>>,
) -> Result<DecodedList<S::Op>, Diagnostic> {
    let mut ops = Vec::with_capacity(raw.len());
    let mut spans = Vec::with_capacity(raw.len());
    for op in raw {
        match op.decoded {
            Ok(decoded) => ops.push(decoded),
            Err(error) => return Err(op_diagnostic(path, source, op.span, error)),
        }
        spans.push(op.span);
    }
    Ok((ops, spans))
}

/// Why an op does not decode ([`decode_op`]), and the part of it at fault, for the error to point
/// at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpDecodeError {
    pub at: OpPart,
    pub message: String,
}

/// The part of an op an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpPart {
    /// The op as a whole: a field it lacks, or a problem no one field brings.
    Whole,
    /// The key of a field the op does not take.
    Key(String),
    /// The value of a field (`op`'s, for an op that is not known).
    Value(String),
}

impl OpDecodeError {
    fn whole(message: String) -> OpDecodeError {
        OpDecodeError {
            at: OpPart::Whole,
            message,
        }
    }

    fn value(field: &str, message: String) -> OpDecodeError {
        OpDecodeError {
            at: OpPart::Value(field.to_string()),
            message,
        }
    }
}

/// Decodes one op table: a runner op (`spawn`, `join`, `exit`, `sleep`) or one of the subject's.
pub fn decode_op<S: Subject>(value: &toml::Value) -> Result<ScenarioOp<S::Op>, OpDecodeError> {
    let subject = info_of::<S>().name;
    let Some(table) = value.as_table() else {
        return Err(OpDecodeError::whole(format!(
            "an op must be a table like {{ op = \"name\", ... }}, found {}",
            value.type_str()
        )));
    };
    let Some(name) = table.get("op") else {
        return Err(OpDecodeError::whole(format!(
            "this op has no `op` field naming what to do; add `op = \"…\"` (`{} list {subject}` \
             shows the ops)",
            super::program()
        )));
    };
    let Some(name) = name.as_str() else {
        return Err(OpDecodeError::value("op", "`op` must be a string".into()));
    };
    if RUNNER_OPS.contains(&name) {
        let op: RunnerOp = decode_as(table).map_err(|e| refusal::<S, RunnerOp>(name, table, e))?;
        refuse_unknown_key(name, table, &op)?;
        return Ok(match op {
            RunnerOp::Spawn { thread } => ScenarioOp::Spawn { thread },
            RunnerOp::Join { thread } => ScenarioOp::Join { thread },
            RunnerOp::Exit => ScenarioOp::Exit,
            RunnerOp::Sleep { ticks } if ticks > SLEEP_TICKS_MAX => {
                // The OS would cut it to the longest sleep; the file says more than it would do.
                return Err(OpDecodeError::value(
                    "ticks",
                    format!(
                        "op `sleep`, field `ticks`: invalid value: integer `{ticks}`, expected an \
                         integer in 0..={SLEEP_TICKS_MAX}, the longest sleep (it outlasts every \
                         delay a subject waits on, and keeps a run's clock far from overflowing)"
                    ),
                ));
            }
            RunnerOp::Sleep { ticks } => ScenarioOp::Sleep { ticks },
        });
    }
    let op: S::Op = decode_as(table).map_err(|e| refusal::<S, S::Op>(name, table, e))?;
    refuse_unknown_key(name, table, &op)?;
    Ok(ScenarioOp::Subject(op))
}

/// `table` decoded as an `O`, or why not, in serde's words made friendlier.
fn decode_as<O: DeserializeOwned>(table: &toml::Table) -> Result<O, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| friendly_message(e.message().trim()))
}

/// serde lets an unknown key through on an op without fields (and on any op of an enum without
/// `deny_unknown_fields`): refused here, at the key, as serde refuses the others.
fn refuse_unknown_key<O: Serialize + DeserializeOwned + PartialEq>(
    name: &str,
    table: &toml::Table,
    op: &O,
) -> Result<(), OpDecodeError> {
    match op_keys::unknown_field(table, op, |value| value.try_into().ok()) {
        Some((key, problem)) => Err(OpDecodeError {
            at: OpPart::Key(key),
            message: format!("op `{name}`: {problem}"),
        }),
        None => Ok(()),
    }
}

/// The error of op `name`, written `table`, that serde refused as an `O` with `problem`.
///
/// toml's error keeps no kind, only serde's words, and serde words the errors of a field's key
/// (`unknown field`, `missing field`) and of the tag (`unknown variant`) the same way for every
/// type: they are read here, where serde's error is met, and nowhere else.
fn refusal<S: Subject, O: DeserializeOwned>(
    name: &str,
    table: &toml::Table,
    problem: String,
) -> OpDecodeError {
    let info = info_of::<S>();
    // An unknown variant of a field's value (an interpreter op's `kind`) is no unknown op.
    let op_known = RUNNER_OPS.contains(&name) || info.ops.iter().any(|op| op.name == name);
    if problem.contains("unknown variant") && !op_known {
        let ops: Vec<&str> = info.ops.iter().map(|o| o.name).chain(RUNNER_OPS).collect();
        return OpDecodeError::value(
            "op",
            format!(
                "unknown op `{name}` for subject `{}`; known ops: {}",
                info.name,
                ops.join(", ")
            ),
        );
    }
    let named_field = |prefix: &str| {
        let rest = problem.strip_prefix(prefix)?;
        Some(rest[..rest.find('`')?].to_string())
    };
    if let Some(key) = named_field("unknown field `") {
        return OpDecodeError {
            at: OpPart::Key(key),
            message: format!("op `{name}`: {problem}"),
        };
    }
    // A missing field is the op's (and the op cut short would miss an earlier field: the search
    // would blame the wrong one); `sim list` shows how it is written.
    if let Some(field) = named_field("missing field `") {
        return OpDecodeError::whole(format!(
            "op `{name}`: {problem}; add `{field} = …` (`{} list {}` shows `{name}` with every \
             field)",
            super::program(),
            info.name
        ));
    }
    match field_at_fault::<O>(table, &problem) {
        Some(field) => {
            OpDecodeError::value(field, format!("op `{name}`, field `{field}`: {problem}"))
        }
        None => OpDecodeError::whole(format!("op `{name}`: {problem}")),
    }
}

/// The field of op `table` whose value alone brings `problem`, serde's refusal of the op as an
/// `O`; `None` if no one field's does.
///
/// serde decodes an internally tagged enum from a buffered copy of the table, so its errors
/// (and serde_path_to_error's path) lose the field. It meets the fields in the table's order and
/// stops at the first value it refuses, so the op cut to its first `count` fields fails with the
/// very same error exactly when `count` reaches that field: found by bisection (an op may have
/// many fields), then checked. Only an op that fails is searched: a valid file costs nothing more.
fn field_at_fault<'t, O: DeserializeOwned>(
    table: &'t toml::Table,
    problem: &str,
) -> Option<&'t str> {
    let tag = table.get("op")?;
    let fields: Vec<(&String, &toml::Value)> =
        table.iter().filter(|(key, _)| *key != "op").collect();
    let fails_the_same = |count: usize| {
        let mut cut = toml::Table::new();
        cut.insert("op".to_string(), tag.clone());
        for (key, value) in &fields[..count] {
            cut.insert(key.to_string(), (*value).clone());
        }
        decode_as::<O>(&cut).err().as_deref() == Some(problem)
    };
    let counts: Vec<usize> = (0..=fields.len()).collect();
    let count = counts.partition_point(|&count| !fails_the_same(count));
    // Past the last count when even the whole op did not fail so (it always should).
    let found =
        (1..=fields.len()).contains(&count) && fails_the_same(count) && !fails_the_same(count - 1);
    found.then(|| fields[count - 1].0.as_str())
}

/// The diagnostic for an op at `op_span` that does not decode: at the part of it at fault.
fn op_diagnostic(
    path: &str,
    source: &str,
    op_span: Range<usize>,
    error: OpDecodeError,
) -> Diagnostic {
    let span = match &error.at {
        OpPart::Whole => None,
        OpPart::Key(key) => op_entry_spans(source, &op_span, key).map(|(key, _)| key),
        OpPart::Value(field) => op_entry_spans(source, &op_span, field).map(|(_, value)| value),
    };
    Diagnostic::new(path, source, Some(span.unwrap_or(op_span)), error.message)
}

/// Where field `key` of the op at `op_span` is in `source`: its key and its value. `None` if the
/// op writes no such field.
///
/// An op written inline (`{ op = "bump" }`) is read again alone, from its own text. An op
/// written as a section of an array of tables (`[[lifecycle.ops]]` and the keys below it) has
/// its header for its span, the only span toml gives such a table: its keys are found in the
/// file read again, in the table of that header. That second reading is for an error only,
/// and of a file that toml read whole already (a sketch leaves out only inline ops).
fn op_entry_spans(
    source: &str,
    op_span: &Range<usize>,
    key: &str,
) -> Option<(Range<usize>, Range<usize>)> {
    let text = source.get(op_span.clone())?;
    if text.starts_with("[[") {
        let document = DeTable::parse(source).ok()?;
        let document = Spanned::new(document.span(), DeValue::Table(document.into_inner()));
        let op = section_with_header(&document, op_span)?;
        return entry_spans(op, key);
    }
    let op = DeValue::parse(text).ok()?;
    let (key, value) = entry_spans(op.get_ref(), key)?;
    let inside = |span: &Range<usize>| !span.is_empty() && span.end <= text.len();
    let in_file = |span: Range<usize>| op_span.start + span.start..op_span.start + span.end;
    (inside(&key) && inside(&value)).then(|| (in_file(key), in_file(value)))
}

/// The table written as the section whose header is at `header`: `value`, or one in the tables
/// and arrays it holds. toml spans a section's table by its header and no other table by that
/// span: a table a header implies (`lifecycle` of `[[lifecycle.ops]]`) is spanned by the key
/// that implies it, and the array of a section's tables, by its first header, is no table.
fn section_with_header<'t, 'i>(
    value: &'t Spanned<DeValue<'i>>,
    header: &Range<usize>,
) -> Option<&'t DeValue<'i>> {
    let within = |value| section_with_header(value, header);
    match value.get_ref() {
        DeValue::Table(_) if value.span() == *header => Some(value.get_ref()),
        DeValue::Table(table) => table.values().find_map(within),
        DeValue::Array(array) => array.iter().find_map(within),
        _ => None,
    }
}

/// Where entry `key` of `table` is in the text it was read from: its key and its value. `None`
/// if `table` is no table or has no such entry.
fn entry_spans(table: &DeValue, key: &str) -> Option<(Range<usize>, Range<usize>)> {
    let (key, value) = table
        .as_table()?
        .iter()
        .find(|(name, _)| name.get_ref() == key)?;
    Some((key.span(), value.span()))
}

/// One step from a table of a file to a value in it.
enum PathStep<'a> {
    Key(&'a str),
    /// An element of an array (of tables).
    Index(usize),
}

/// Where entry `key` is in the table of file `source` that `path` leads to from the top: its key
/// and its value. Found by reading the file again, for an error only: the first reading keeps no
/// span per key (and a table may be an inline table or a section).
fn file_entry_spans(
    source: &str,
    path: &[PathStep],
    key: &str,
) -> Option<(Range<usize>, Range<usize>)> {
    let root = DeValue::Table(DeTable::parse(source).ok()?.into_inner());
    let mut table = &root;
    for step in path {
        table = match step {
            PathStep::Key(key) => table.get(*key)?,
            PathStep::Index(index) => table.get(*index)?,
        }
        .get_ref();
    }
    entry_spans(table, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::{
        allocator::Allocator, counter::Counter, dlmalloc::DlmallocSubject,
        interpreter::Interpreter, reloadable_lib::ReloadableLib, wasi_runtime::WasiRuntime,
    };

    /// Hints name the program the command was called as (`cli::main_with_args`'s argv[0]), not
    /// `sim`: a binary of one's own knows subjects that `sim` does not, and `sim list mine`
    /// would say there is no `mine`. Outside such a call they name `sim`.
    #[test]
    fn hints_name_the_program_the_command_was_called_as() {
        let missing_field = "name = \"m\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"create\" }]\n";
        let no_ops = "name = \"m\"\nsubject = \"counter\"\n";
        let hints = || {
            [missing_field, no_ops]
                .map(|source| parse::<Counter>("m.toml", source).unwrap_err().message)
        };
        {
            let _called_as = crate::scenario::name_program_for_call("mybin");
            let [missing, none] = hints();
            assert!(
                missing.contains("(`mybin list counter` shows `create` with every field)"),
                "{missing}"
            );
            assert!(
                none.contains("(`mybin list counter` shows the ops)"),
                "{none}"
            );
            assert_eq!(crate::scenario::program(), "mybin");
        }
        let [missing, none] = hints();
        assert!(
            missing.contains("(`sim list counter` shows `create` with every field)"),
            "{missing}"
        );
        assert!(
            none.contains("(`sim list counter` shows the ops)"),
            "{none}"
        );
    }

    /// A line indented with a tab shows as the file has it, a space for the tab (it showed a
    /// replacement character, as for a stray control byte), with the caret under the op; a real
    /// control character still shows as one.
    #[test]
    fn a_diagnostic_shows_a_tab_as_a_space_and_a_control_character_replaced() {
        let source = "ops = [\n\t{ op = \"x\" },\n]\n";
        let start = source.find('{').unwrap();
        let shown = Diagnostic::new("t.toml", source, Some(start..start + 12), "bad").to_string();
        assert_eq!(
            shown,
            "error: bad\n  --> t.toml:2:2\n  |\n2 |  { op = \"x\" },\n  |  ^^^^^^^^^^^^"
        );
        let source = "a = \u{7}1\n";
        let shown = Diagnostic::new("t.toml", source, Some(4..5), "bad").to_string();
        assert!(shown.contains("1 | a = \u{fffd}1\n"), "{shown}");
    }

    /// Wide characters (two terminal cells each) before the span push the caret right by two
    /// cells each, and one inside it widens the underline: the caret stays under the span as a
    /// terminal shows the line. The column stays a count of characters.
    #[test]
    fn a_diagnostic_puts_the_caret_under_the_span_past_wide_characters() {
        let source = "ops = [{ thread = \"日本\" }, { op = \"日\" }]\n";
        let start = source.rfind('{').unwrap();
        let shown = Diagnostic::new("t.toml", source, Some(start..source.len() - 2), "bad");
        // 26 characters before the span, two of them wide; 12 in it, one wide.
        let caret = format!("  | {}{}", " ".repeat(26 + 2), "^".repeat(12 + 1));
        assert_eq!(
            shown.to_string(),
            format!(
                "error: bad\n  --> t.toml:1:27\n  |\n1 | {}\n{caret}",
                source.trim_end()
            )
        );
    }

    /// Where `parse` puts the error of `source`, and what it says.
    fn error_of<S: Subject>(source: &str) -> (Option<Range<usize>>, String) {
        let error = parse::<S>("f.toml", source).map(|_| ()).unwrap_err();
        (error.span, error.message)
    }

    /// `[expect] trace_hash` takes every numeric spelling a seed has, as `sim run` reads it to
    /// compare (files written before keep working), and refuses a commit hash, which no run's
    /// hash equals, with a message naming the numeric ones.
    #[test]
    fn an_expected_trace_hash_is_read_in_any_numeric_spelling_and_its_refusal_says_so() {
        let with = |hash: &str| {
            format!(
                "name = \"t\"\nsubject = \"counter\"\n[expect]\ntrace_hash = \"{hash}\"\n\
                 [[lifecycle]]\nname = \"l\"\nops = [{{ op = \"bump\" }}]\n"
            )
        };
        for hash in ["0x0797ad6e92befd7a", "0x2a", "42"] {
            let scenario = parse::<Counter>("f.toml", &with(hash)).unwrap();
            assert_eq!(scenario.expect.unwrap().trace_hash.as_deref(), Some(hash));
        }
        for refused in ["zz", "e7bfd13a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"] {
            let source = with(refused);
            let value = source.find(&format!("\"{refused}\"")).unwrap();
            assert_eq!(
                error_of::<Counter>(&source),
                (
                    Some(value..value + refused.len() + 2),
                    format!(
                        "`[expect]` `trace_hash` must be a run's trace hash as `sim` prints it, \
                         `0x` and 16 hex digits (\"0x0797ad6e92befd7a\"), or the same number in \
                         decimal; found `{refused}`"
                    )
                )
            );
        }
    }

    /// `threads_max` is refused only when a list has more threads out at once than it allows:
    /// one at a time fits a limit of 1, and a limit of 0 fits a scenario that spawns none or
    /// whose spawns may fail by injection (a spawn probability, or swarm mode).
    #[test]
    fn threads_max_is_refused_only_below_the_threads_a_list_has_out_at_once() {
        let with = |limit: u32, faults: &str, ops: &str| {
            format!(
                "name = \"t\"\nsubject = \"counter\"\n[limits]\nthreads_max = {limit}\n{faults}\n\
                 [[lifecycle]]\nname = \"l\"\nops = [{ops}]\n\
                 [[lifecycle.thread]]\nname = \"a\"\nops = [{{ op = \"bump\" }}]\n"
            )
        };
        let one_at_a_time = "{ op = \"spawn\", thread = \"a\" }, { op = \"join\", thread = \"a\" }, \
                             { op = \"spawn\", thread = \"a\" }, { op = \"join\", thread = \"a\" }";
        parse::<Counter>("f.toml", &with(1, "", one_at_a_time)).unwrap();
        parse::<Counter>("f.toml", &with(0, "", "{ op = \"bump\" }")).unwrap();
        parse::<Counter>("f.toml", &with(0, "[faults]\nspawn = 0.5", one_at_a_time)).unwrap();
        parse::<Counter>("f.toml", &with(0, "[faults]\nswarm = true", one_at_a_time)).unwrap();
        // Faults of other kinds, or spawn faults that never fire, leave every spawn succeeding.
        // A rate under half a part per million rounds to none in the fault plan.
        for faults in [
            "",
            "[faults]\nalloc = 0.5",
            "[faults]\nspawn = 0.0",
            "[faults]\nspawn = 1e-7",
        ] {
            let (_, message) = error_of::<Counter>(&with(0, faults, one_at_a_time));
            assert!(
                message.starts_with("`threads_max` is 0"),
                "{faults}: {message}"
            );
        }
    }

    /// A wrong value in an op is reported at the value, naming the field (serde's internally
    /// tagged enums lose it), in every op list, a thread's included, in a file read by way of
    /// its sketch or read whole (an array of inline lifecycles has no sketch).
    #[test]
    fn a_wrong_value_in_an_op_names_the_field_and_is_reported_at_it() {
        let head = "name = \"t\"\nsubject = \"counter\"\n";
        let bad = "{ op = \"create\",\n  slot = \"one\" }";
        let good = "{ op = \"bump\" }";
        let message = "op `create`, field `slot`: invalid type: string \"one\", \
                       expected an integer in 0..=255";
        for rest in [
            format!("[[lifecycle]]\nname = \"l\"\nops = [{good}, {bad}]\n"),
            format!("[[lifecycle]]\nname = \"l\"\nsetup = [{bad}]\nops = [{good}]\n"),
            format!("[[lifecycle]]\nname = \"l\"\nops = [{good}]\nteardown = [{bad}]\n"),
            format!(
                "[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"spawn\", thread = \"w\" }}]\n\
                 [[lifecycle.thread]]\nname = \"w\"\nops = [{good}, {bad}]\n"
            ),
            format!("lifecycle = [{{ name = \"l\", ops = [{good}, {bad}] }}]\n"),
        ] {
            let source = format!("{head}{rest}");
            let value = source.find("\"one\"").unwrap();
            assert_eq!(
                error_of::<Counter>(&source),
                (Some(value..value + 5), message.to_string()),
                "{source}"
            );
        }
        // Of three integer fields, the one out of range.
        let source = "name = \"t\"\nsubject = \"wasi-runtime\"\n[[lifecycle]]\nname = \"l\"\n\
                      ops = [{ op = \"fd-write\", instance = 0, fd = 4294967296, bytes = 12 }]\n";
        let value = source.find("4294967296").unwrap();
        assert_eq!(
            error_of::<WasiRuntime>(source),
            (
                Some(value..value + 10),
                "op `fd-write`, field `fd`: invalid value: integer `4294967296`, \
                 expected an integer in 0..=4294967295"
                    .to_string()
            )
        );
        // Of several wrong values, the one serde refused: the value the message quotes.
        let source = "name = \"t\"\nsubject = \"wasi-runtime\"\n[[lifecycle]]\nname = \"l\"\n\
                      ops = [{ op = \"fd-write\", instance = \"a\", fd = \"b\", bytes = \"c\" }]\n";
        let (span, message) = error_of::<WasiRuntime>(source);
        let value = &source[span.unwrap()];
        assert!(
            message.contains(&format!("invalid type: string {value}")),
            "{message}"
        );
        // A runner op's field too.
        let source = format!(
            "{head}[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"sleep\", ticks = -5 }}]\n"
        );
        let value = source.find("-5").unwrap();
        assert_eq!(
            error_of::<Counter>(&source),
            (
                Some(value..value + 2),
                "op `sleep`, field `ticks`: invalid value: integer `-5`, expected a non-negative integer".to_string()
            )
        );
        // A sleep past the longest, at its value; the longest itself is taken.
        let sleep = |ticks: u64| {
            format!(
                "{head}[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"sleep\", ticks = {ticks} }}]\n"
            )
        };
        let source = sleep(SLEEP_TICKS_MAX + 1);
        let value = source.find("1000000001").unwrap();
        let (span, message) = error_of::<Counter>(&source);
        assert_eq!(span, Some(value..value + 10));
        assert!(
            message.starts_with(
                "op `sleep`, field `ticks`: invalid value: integer `1000000001`, expected an \
                 integer in 0..=1000000000, the longest sleep"
            ),
            "{message}"
        );
        assert!(parse::<Counter>("f.toml", &sleep(SLEEP_TICKS_MAX)).is_ok());
    }

    /// An unknown value of a field that is an enum is that field's error, not an unknown op (it
    /// said "unknown op `declare-fn`" and listed `declare-fn` among the known ops).
    #[test]
    fn an_unknown_variant_of_a_field_is_not_an_unknown_op() {
        let source = "name = \"t\"\nsubject = \"interpreter\"\n[[lifecycle]]\nname = \"l\"\n\
                      ops = [{ op = \"declare-fn\", fn = 0, kind = \"bogus\" }]\n";
        let (span, message) = error_of::<Interpreter>(source);
        let value = source.find("\"bogus\"").unwrap();
        assert_eq!(span, Some(value..value + 7));
        assert!(
            message.starts_with("op `declare-fn`, field `kind`: unknown variant `bogus`"),
            "{message}"
        );
    }

    /// An unknown field is reported at its key, with its words as they were (they name it).
    #[test]
    fn an_unknown_field_in_an_op_is_reported_at_its_key() {
        let head = "name = \"t\"\nsubject = \"wasi-runtime\"\n[[lifecycle]]\nname = \"l\"\nops = [";
        let source =
            format!("{head}{{ op = \"fd-write\", instance = 0, fd = 1, bytes = 1, xyz = 2 }}]\n");
        let key = source.find("xyz").unwrap();
        assert_eq!(
            error_of::<WasiRuntime>(&source),
            (
                Some(key..key + 3),
                "op `fd-write`: unknown field `xyz`, expected one of `instance`, `fd`, `bytes`"
                    .to_string()
            )
        );
    }

    /// An error that is about no one field keeps its words and the op's span: a missing field
    /// (adding the fields one at a time would blame the one before it).
    #[test]
    fn an_op_error_about_no_one_value_stays_at_the_op() {
        let head = "name = \"t\"\nsubject = \"wasi-runtime\"\n[[lifecycle]]\nname = \"l\"\nops = [";
        let op = "{ op = \"fd-write\", instance = 0, fd = 1 }";
        let source = format!("{head}{op}]\n");
        let start = head.len();
        assert_eq!(
            error_of::<WasiRuntime>(&source),
            (
                Some(start..start + op.len()),
                "op `fd-write`: missing field `bytes`; add `bytes = …` (`sim list wasi-runtime` \
                 shows `fd-write` with every field)"
                    .to_string()
            ),
        );
    }

    /// An unknown op, or an `op` that is no string, is pointed at by the op's `op` value (it
    /// was the whole op), with its words as they were.
    #[test]
    fn an_unknown_op_is_reported_at_its_name() {
        let head = "name = \"t\"\nsubject = \"wasi-runtime\"\n[[lifecycle]]\nname = \"l\"\nops = [";
        for (op, value, message) in [
            (
                "{ instance = \"0\", op = \"nosuch\" }",
                "\"nosuch\"",
                "unknown op `nosuch` for subject `wasi-runtime`; known ops: instantiate, destroy, \
                 fd-write, fd-read, fd-close, fd-prestat-get, fd-prestat-dir-name, path-open, \
                 fd-renumber, spawn, join, exit, sleep",
            ),
            ("{ op = 3, instance = 0 }", "3", "`op` must be a string"),
        ] {
            let source = format!("{head}{op}]\n");
            let start = head.len() + op.find(value).unwrap();
            assert_eq!(
                error_of::<WasiRuntime>(&source),
                (Some(start..start + value.len()), message.to_string()),
                "{source}"
            );
        }
    }

    /// A spawn of a thread the lifecycle does not declare, a join of one its list did not spawn,
    /// and a spawn in a thread are pointed at by the value at fault (they were the whole op):
    /// the thread's name, and the thread's op.
    #[test]
    fn a_thread_reference_at_fault_is_reported_at_the_value() {
        let head = "name = \"t\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\n";
        for (rest, value, message) in [
            (
                "ops = [{ op = \"spawn\", thread = \"w\" }]\n",
                "\"w\"",
                "spawn of thread `w`, which lifecycle `l` does not declare",
            ),
            (
                "setup = [{ op = \"spawn\", thread = \"v\" }]\n\
                 ops = [{ thread = \"v\", op = \"join\" }]\n\
                 [[lifecycle.thread]]\nname = \"v\"\n",
                "\"v\", op = \"join\"",
                "join of thread `v`, which is not spawned before this op in `ops`",
            ),
            (
                "ops = [{ op = \"spawn\", thread = \"v\" }]\n\
                 [[lifecycle.thread]]\nname = \"v\"\nops = [{ op = \"join\", thread = \"v\" }]\n",
                "\"join\"",
                "threads other than main cannot spawn or join",
            ),
        ] {
            let source = format!("{head}{rest}");
            let start = source.rfind(value).unwrap();
            let length = value.find(',').unwrap_or(value.len());
            let (span, said) = error_of::<Counter>(&source);
            assert_eq!(span, Some(start..start + length), "{source}");
            assert!(said.starts_with(message), "{said}");
        }
    }

    /// A subject's refusal of an op is pointed at by the value of the field the subject names
    /// (it was the whole op, then the value the message quoted); the op when it names none.
    #[test]
    fn a_subject_refusal_is_reported_at_the_field_it_names() {
        let head = "[[lifecycle]]\nname = \"l\"\n";
        let at = |subject: &str, ops: &str, value: Option<&str>| {
            let source = format!("name = \"t\"\nsubject = \"{subject}\"\n{head}{ops}");
            let registry = crate::registry::Registry::builtin();
            let error = registry.parse("f.toml", &source).map(|_| ()).unwrap_err();
            let expected = match value {
                // The value is `value`'s first word, found where `value` is last.
                Some(value) => {
                    let start = source.rfind(value).unwrap();
                    start..start + value.split([' ', ',']).next().unwrap().len()
                }
                None => {
                    let start = source.rfind('{').unwrap();
                    start..source.rfind('}').unwrap() + 1
                }
            };
            assert_eq!(error.span, Some(expected), "{source}\n{}", error.message);
        };
        // Used before defined: the one field of that value.
        at(
            "counter",
            "ops = [{ op = \"evict\", slot = 2 }]\n",
            Some("2"),
        );
        // Of three fields of the value, the one the subject names.
        at(
            "allocator",
            "ops = [{ op = \"malloc\", slot = 3, bytes = 3, heap = 3 }]\n",
            Some("3 }"),
        );
        // The heap the message quotes (`heap `1``) is also the value of another field, `slot`,
        // which the message's words pointed at; in a thread's op too.
        let undefined_heap = "{ op = \"malloc\", slot = 1, bytes = 64, heap = 1 }";
        at(
            "allocator",
            &format!("ops = [{undefined_heap}]\n"),
            Some("1 }"),
        );
        at(
            "allocator",
            &format!(
                "ops = [{{ op = \"spawn\", thread = \"w\" }}]\n\
                 [[lifecycle.thread]]\nname = \"w\"\nops = [{undefined_heap}]\n"
            ),
            Some("1 }"),
        );
        // Out of range, with other numbers in the message.
        at(
            "allocator",
            "ops = [{ op = \"malloc\", slot = 0, bytes = 64, heap = 7 }]\n",
            Some("7 }"),
        );
        at(
            "allocator",
            "ops = [{ op = \"malloc\", slot = 0, bytes = 64 }, { op = \"free\", slot = 11 }]\n",
            Some("11 }"),
        );
        at(
            "dlmalloc",
            "ops = [{ op = \"create\" }, { op = \"malloc\", slot = 70, size = 64, align = 8 }]\n",
            Some("70"),
        );
        at(
            "interpreter",
            "ops = [{ op = \"declare-fn\", fn = 9, kind = \"generic\" }]\n",
            Some("9"),
        );
        // Two fields of the value, the subject names `fn`.
        at(
            "interpreter",
            "ops = [{ op = \"cast-fn\", fn = 0, ptr = 0 }]\n",
            Some("0, ptr"),
        );
        // Out of range in a field whose key the message's words did not name: at the op, before.
        at(
            "interpreter",
            "ops = [{ op = \"pipe\", read = 9, write = 0 }]\n",
            Some("9,"),
        );
        at(
            "wasi-runtime",
            "ops = [{ op = \"fd-renumber\", instance = 9, from = 0, to = 9 }]\n",
            Some("9, from"),
        );
        // Two fields of the value and neither at fault alone: the op.
        at(
            "interpreter",
            "ops = [{ op = \"pipe\", read = 2, write = 2 }]\n",
            None,
        );
    }

    /// An op written as a section (`[[lifecycle.ops]]`, a thread's `[[lifecycle.thread.ops]]`)
    /// is reported as the same op written inline is, with the same words at the same key or
    /// value (it was at the section's header): in a file of sections only, and in one whose
    /// other ops are inline (which its sketch cannot stand for: read whole).
    #[test]
    fn a_section_op_is_reported_at_the_field_as_an_inline_op_is() {
        let head = "name = \"t\"\nsubject = \"allocator\"\n[[lifecycle]]\nname = \"l\"\n";
        let spawn =
            "ops = [{ op = \"spawn\", thread = \"w\" }]\n[[lifecycle.thread]]\nname = \"w\"\n";
        let cases: [&[&str]; 7] = [
            // An unknown op, and an `op` that is no string: at the value.
            &["op = \"nosuch\""],
            &["op = 3"],
            // A key the op does not take.
            &[
                "op = \"malloc\"",
                "slot = 1",
                "bytes = 64",
                "heap = 0",
                "size = 8",
            ],
            // A value of the wrong type, of a subject's op and of a runner's.
            &[
                "op = \"malloc\"",
                "slot = \"one\"",
                "bytes = 64",
                "heap = 0",
            ],
            &["op = \"sleep\"", "ticks = -5"],
            // The subject's refusal of one field: a heap never created.
            &["op = \"malloc\"", "slot = 1", "bytes = 64", "heap = 5"],
            // A thread none declares; in a thread's list, a spawn at all.
            &["op = \"spawn\"", "thread = \"nosuch\""],
        ];
        for fields in cases {
            let inline = format!("[{{ {} }}]\n", fields.join(", "));
            let section = |header: &str| format!("[[{header}]]\n{}\n", fields.join("\n"));
            for (inline, sections) in [
                (
                    format!("{head}ops = {inline}"),
                    format!("{head}{}", section("lifecycle.ops")),
                ),
                (
                    format!("{head}{spawn}ops = {inline}"),
                    format!("{head}{spawn}{}", section("lifecycle.thread.ops")),
                ),
            ] {
                let (inline_span, inline_message) = error_of::<Allocator>(&inline);
                let (section_span, section_message) = error_of::<Allocator>(&sections);
                assert_eq!(section_message, inline_message, "{sections}");
                let at_fault = |source: &str, span: Option<Range<usize>>| {
                    let span = span.unwrap_or_else(|| panic!("no span in\n{source}"));
                    source[span].to_string()
                };
                let section_text = at_fault(&sections, section_span);
                assert_eq!(section_text, at_fault(&inline, inline_span), "{sections}");
                assert!(!section_text.starts_with('['), "{sections}");
            }
        }
    }

    /// An error the op does not bring (a message from elsewhere) names no field.
    #[test]
    fn an_error_the_op_does_not_bring_names_no_field() {
        let op: toml::Table = toml::from_str("op = \"create\"\nslot = 1").unwrap();
        assert_eq!(
            field_at_fault::<crate::subjects::counter::CounterOp>(
                &op,
                "invalid type: not this op's"
            ),
            None
        );
    }

    /// An op nested as deeply as a file may nest is read by way of the sketch, as the whole file
    /// reads it (the sketch refused nesting past half of that, with a guard of its own); one
    /// level deeper, in an op or in a key, is refused before any sketch is made, with the
    /// nesting error at the level too deep.
    #[test]
    fn deep_nesting_is_sketched_up_to_the_bound_and_refused_past_it() {
        let head = "name = \"t\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\n";
        // An op is at level 4 (`lifecycle`, its table, `ops`, the op): an op that is an array
        // of arrays puts its innermost array at level 3 + the arrays, its key's last part at
        // 4 + the parts.
        let arrays_max = NESTING_LEVELS_MAX as usize - 3;
        let in_op = |arrays: usize| {
            format!(
                "{head}ops = [{{ op = \"bump\" }}, {}1{}]\n",
                "[".repeat(arrays),
                "]".repeat(arrays)
            )
        };
        reads_the_same_both_ways::<Counter>(&in_op(arrays_max));
        let parts_max = NESTING_LEVELS_MAX as usize - 4;
        let in_key = |parts: usize| {
            format!(
                "{head}ops = [{{ op = \"bump\", {} = 1 }}]\n",
                vec!["k"; parts].join(".")
            )
        };
        reads_the_same_both_ways::<Counter>(&in_key(parts_max));
        for (source, what) in [
            (in_op(arrays_max + 1), "array"),
            (in_key(parts_max + 1), "key"),
        ] {
            let error = ScenarioFile::read("f", &source).map(|_| ()).unwrap_err();
            // The innermost array, the key's last part.
            let start = match what {
                "array" => source.rfind('[').unwrap(),
                _ => source.rfind(".k").unwrap() + 1,
            };
            assert_eq!(error.span, Some(start..start + 1), "{source}");
            assert!(
                error.message.starts_with(&format!(
                    "nested too deeply: this {what} goes past the {NESTING_LEVELS_MAX} levels"
                )),
                "{}",
                error.message
            );
        }
    }

    /// Checks that `source` reads by way of its sketch (it does not fall back to the whole
    /// reading), and as it reads whole.
    fn reads_the_same_both_ways<S: Subject>(source: &str) {
        let file = ScenarioFile::read("f", source).unwrap_or_else(|error| panic!("{error}"));
        let sketched = file
            .sketch
            .as_ref()
            .and_then(|sketch| read_sketch::<S>(source, sketch));
        assert!(sketched.is_some(), "no sketch of\n{source}");
        if let Some(difference) = sketch_disagrees::<S>(source) {
            panic!("{source}\n{difference}");
        }
    }

    /// A file read by way of its sketch reads as it does whole: every bundled scenario, and the
    /// shapes of op lists a sketch has to get right.
    #[test]
    fn a_sketch_reads_as_the_whole_file_does() {
        let counter = "name = \"t\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\n";
        let mut files: Vec<(String, String)> = [
            "ops = [\n  { op = \"create\",\n    slot = 1, },  # é\n  { op = \"bump\" }, # c\n]\n",
            "ops = [\r\n { op = \"bump\" },\r\n { op = \"create\", slot = 2 },\r\n]\r\n",
            "ops = [ 1, \"x\", [1, [2]], { op = \"bümp\" }, 1979-05-27T07:32:00Z ]\n",
            "ops = [\t{ op = \"b\\u0075mp\" }\t,{ op = 'bump' }]\nsetup = []\n",
            "setup = [{ op = \"create\", slot = 1 }]\nteardown = [{ op = \"evict\", slot = 1 }]\n\
             ops = [{ op = \"spawn\", thread = \"t\" }, { op = \"join\", thread = \"t\" }]\n\
             [[lifecycle.thread]]\nname = \"t\"\nops = [{ op = \"bump\" }]\n\
             [[lifecycle]]\nname = \"m\"\nops = [{ op = \"bump\" }]\n",
        ]
        .iter()
        .map(|ops| ("counter".to_string(), format!("{counter}{ops}")))
        .collect();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        let mut paths = Vec::new();
        for dir in [root.to_string(), format!("{root}/zoo")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        for path in paths {
            let source = std::fs::read_to_string(&path).unwrap();
            let subject = ScenarioFile::read("f", &source)
                .and_then(|file| file.subject(|name| Ok(name.to_string())))
                .unwrap();
            files.push((subject, source));
        }
        assert!(files.len() > 10);
        for (subject, source) in &files {
            match subject.as_str() {
                "counter" => reads_the_same_both_ways::<Counter>(source),
                "wasi-runtime" => reads_the_same_both_ways::<WasiRuntime>(source),
                "interpreter" => reads_the_same_both_ways::<Interpreter>(source),
                "allocator" => reads_the_same_both_ways::<Allocator>(source),
                "reloadable-lib" => reads_the_same_both_ways::<ReloadableLib>(source),
                "dlmalloc" => reads_the_same_both_ways::<DlmallocSubject>(source),
                other => panic!("no subject `{other}`"),
            }
        }
    }

    /// A TOML error in an op is reported before anything about the subject, as reading the file
    /// whole reports it, although the ops a sketch leaves out are read only by the subject's
    /// parser when the subject is found.
    #[test]
    fn an_op_that_is_not_toml_is_reported_before_the_subject() {
        let registry = crate::registry::Registry::builtin();
        let integer = "99999999999999999999";
        for subject in [
            "",
            "subject = 3\n",
            "subject = \"nosuch\"\n",
            "subject = \"counter\"\n",
        ] {
            let source = format!(
                "name = \"t\"\n{subject}[[lifecycle]]\nname = \"l\"\n\
                 ops = [{{ op = \"bump\" }}, {{ op = \"create\", slot = {integer} }}]\n"
            );
            assert!(
                Sketch::of(&source, &sketch::tokens_of(&source)).is_some(),
                "{source}"
            );
            let error = registry.parse("f.toml", &source).map(|_| ()).unwrap_err();
            assert_eq!(
                (error.span.map(|span| span.start), error.message),
                (
                    source.find(integer),
                    format!(
                        "integer `{integer}` is too large: TOML integers are at most {}",
                        i64::MAX
                    )
                ),
                "{source}"
            );
        }
    }

    /// What the sketch cannot stand for is read whole: an op where no op list of a scenario
    /// is, an error in an op, an op list inside an inline table, a syntax error.
    #[test]
    fn a_file_the_sketch_cannot_stand_for_is_read_whole() {
        let head = "name = \"t\"\nsubject = \"counter\"\n";
        for rest in [
            "[config]\nops = [{ op = \"bump\" }]\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"bump\" }]\n",
            "[[lifecycle]]\nname = \"l\"\nops = [{ op = \"create\", slot = 99999999999999999999 }]\n",
        ] {
            let source = format!("{head}{rest}");
            let sketch = Sketch::of(&source, &sketch::tokens_of(&source))
                .unwrap_or_else(|| panic!("no sketch of\n{source}"));
            assert!(
                read_sketch::<Counter>(&source, &sketch).is_none(),
                "{source}"
            );
        }
        for rest in [
            "lifecycle = [{ name = \"l\", ops = [{ op = \"bump\" }] }]\n".to_string(),
            "[[lifecycle]]\nname = \"l\"\nops = [{ op = \"bump\" } { op = \"bump\" }]\n"
                .to_string(),
        ] {
            let source = format!("{head}{rest}");
            assert!(
                Sketch::of(&source, &sketch::tokens_of(&source)).is_none(),
                "{source}"
            );
        }
    }
}
