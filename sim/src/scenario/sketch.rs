//! A scenario file read without toml's tree of all its ops at once.
//!
//! toml builds a tree of the whole document before any field is read, with the document's tokens
//! and parse events alongside: for a file of small ops over 100 times its size (each inline
//! table is a B-tree node of about 1 KiB). A 4 MiB file, the most `sim` reads, took ~600 MB, two
//! of them at once in a sweep with `--jobs 2`. Ops are most of any large file, so they are read
//! one at a time: the *sketch* of a file is its text with every op of an op list (`setup = [...]`,
//! `ops = [...]`, `teardown = [...]`) replaced by a placeholder `0` padded with spaces to the op's
//! length, so that everything else, and every span, is where it is in the file; the sketch is
//! read as TOML, and each op from its own text.
//!
//! That reading gives what reading the whole file gives whenever it succeeds: the sketch differs
//! from the file only inside ops, and an op is a value that means the same wherever it stands.
//! A file the sketch cannot stand for (a syntax error), or with any error in the sketch or an op,
//! is read whole instead (`parse`), which reports the error exactly as toml does. A file is
//! sketched only once it nests no deeper than `nesting` allows, far below toml's own limits: an
//! op read alone, shallower than in its file, meets no limit the file as a whole would not.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml_parser::decoder::Encoding;
use toml_parser::lexer::Token;
use toml_parser::parser::{EventReceiver, parse_document};
use toml_parser::{ErrorSink, ParseError, Source, Span};

/// Keys whose array value is a list of ops.
const OP_LISTS: [&str; 3] = ["setup", "ops", "teardown"];

/// A file's text with its ops replaced by placeholders, and where the ops are.
pub(super) struct Sketch {
    text: String,
    /// Byte ranges of the ops in the file, in file order.
    ops: Vec<Range<usize>>,
}

impl Sketch {
    /// The sketch of `source`, whose tokens are `tokens` (`tokens_of`); `None` when it has no op
    /// lists to leave out or cannot be sketched (a syntax error). `source` nests no deeper than
    /// `nesting` allows: toml's parser recurses into each level as it makes the sketch.
    pub(super) fn of(source: &str, tokens: &[Token]) -> Option<Sketch> {
        let ops = op_ranges(source, tokens)?;
        if ops.is_empty() {
            return None;
        }
        let mut bytes = source.as_bytes().to_vec();
        for op in &ops {
            bytes[op.start] = b'0';
            // Line ends stay, so that the sketch has the file's lines.
            for byte in &mut bytes[op.start + 1..op.end] {
                if *byte != b'\n' && *byte != b'\r' {
                    *byte = b' ';
                }
            }
        }
        // Whole characters were replaced by ASCII: still UTF-8.
        let text = String::from_utf8(bytes).ok()?;
        Some(Sketch { text, ops })
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn ops(&self) -> &[Range<usize>] {
        &self.ops
    }

    /// The op whose placeholder starts at `offset`, read from the file's text, with its span in
    /// the file; `None` if no op starts there or it does not read.
    pub(super) fn op_at(&self, source: &str, offset: usize) -> Option<Spanned<toml::Value>> {
        let index = self
            .ops
            .binary_search_by_key(&offset, |range| range.start)
            .ok()?;
        let range = self.ops[index].clone();
        let deserializer = toml::de::ValueDeserializer::parse(&source[range.clone()]).ok()?;
        let value = Spanned::<toml::Value>::deserialize(deserializer).ok()?;
        let span = value.span();
        Some(Spanned::new(
            range.start + span.start..range.start + span.end,
            value.into_inner(),
        ))
    }
}

/// The tokens of `source` as toml's own lexer reads them, for `Sketch::of` and the check of the
/// file's nesting to share. Counted first, so that they take no more room than they need.
pub(super) fn tokens_of(source: &str) -> Vec<Token> {
    let source = Source::new(source);
    let mut tokens = Vec::with_capacity(source.lex().count());
    tokens.extend(source.lex());
    tokens
}

/// The byte ranges of the values in the op lists of `source`, from toml's own parser; `None` if
/// it reports an error.
fn op_ranges(source: &str, tokens: &[Token]) -> Option<Vec<Range<usize>>> {
    let mut finder = OpFinder::new(Source::new(source));
    let mut error: Option<ParseError> = None;
    parse_document(tokens, &mut finder, &mut error);
    (error.is_none() && !finder.refused).then_some(finder.ops)
}

/// Collects the spans of the values of op lists as toml's parser reads the file.
struct OpFinder<'s> {
    source: Source<'s>,
    /// Arrays and inline tables open around the current event.
    depth: u32,
    /// Whether the key last read is a bare `setup`, `ops` or `teardown`.
    key_names_op_list: bool,
    /// Whether the value about to be read, at the top of a table, is that of such a key.
    value_of_op_list_key: bool,
    /// Whether the events are inside an op list.
    in_op_list: bool,
    /// Where the op being read starts.
    op_start: usize,
    ops: Vec<Range<usize>>,
    /// An error event.
    refused: bool,
}

impl<'s> OpFinder<'s> {
    fn new(source: Source<'s>) -> OpFinder<'s> {
        OpFinder {
            source,
            depth: 0,
            key_names_op_list: false,
            value_of_op_list_key: false,
            in_op_list: false,
            op_start: 0,
            ops: Vec::new(),
            refused: false,
        }
    }

    /// An array or inline table opens.
    fn open(&mut self, span: Span, is_array: bool) -> bool {
        if self.depth == 0 {
            self.in_op_list = is_array && self.value_of_op_list_key;
            self.value_of_op_list_key = false;
        } else if self.in_op_list && self.depth == 1 {
            self.op_start = span.start();
        }
        self.depth += 1;
        true
    }

    fn close(&mut self, span: Span) {
        self.depth = self.depth.saturating_sub(1);
        if self.in_op_list {
            if self.depth == 0 {
                self.in_op_list = false;
            } else if self.depth == 1 {
                self.ops.push(self.op_start..span.end());
            }
        }
    }
}

impl EventReceiver for OpFinder<'_> {
    fn inline_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.open(span, false)
    }

    fn inline_table_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.close(span);
    }

    fn array_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.open(span, true)
    }

    fn array_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.close(span);
    }

    fn simple_key(&mut self, span: Span, kind: Option<Encoding>, _error: &mut dyn ErrorSink) {
        let text = self.source.get(span).map(|raw| raw.as_str());
        self.key_names_op_list = kind.is_none() && text.is_some_and(|key| OP_LISTS.contains(&key));
    }

    fn key_val_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        if self.depth == 0 {
            self.value_of_op_list_key = self.key_names_op_list;
        }
    }

    fn scalar(&mut self, span: Span, _kind: Option<Encoding>, _error: &mut dyn ErrorSink) {
        if self.depth == 0 {
            self.value_of_op_list_key = false;
        } else if self.in_op_list && self.depth == 1 {
            self.ops.push(span.start()..span.end());
        }
    }

    fn error(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.refused = true;
    }
}
