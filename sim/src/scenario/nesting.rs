//! A bound on how deeply a scenario file nests, checked before toml reads it.
//!
//! toml reads a nested value by recursion, as does everything that walks the value after it (serde's
//! visitors, `toml::Value`'s drop). In a debug build each level takes several KiB of stack, so a
//! file a few KiB long overflows a thread's stack and aborts the process, where a library user
//! parsing untrusted files expects an error (`sim/tests/malformed/deep-nesting.toml` aborted a
//! test thread's 2 MiB stack). toml's own guard cannot prevent it: it allows 80 arrays and inline
//! tables and, apart from those, 80 parts in each key, so the levels of keys and values add up
//! (and it is a constant of the crate, not a setting).
//!
//! The bound counts the levels of the tree the file describes, whatever the spelling: each part
//! of a key (`a.b.c = 1`, `[a.b]`) is a level below the table it names a key of, and each element
//! of an array a level below the array, be it written `[…]` or as an array of tables (`[[a]]`,
//! whose last table a later header `[a.b]` goes through); an inline table is at the level of its
//! key, as `[a]` is. So `config = { a = 1 }`, `config.a = 1` and `[config]` with `a = 1` all put
//! `a` at level 2, and a scenario printed back (`print`, which may spell tables otherwise than the
//! file did) nests no deeper than the file it was read from. A scenario needs 7
//! levels: an op's field in a thread of a lifecycle is at 7 (`lifecycle`, its table, `thread`, its
//! table, `ops`, the op, the field).
//!
//! The check walks the file with toml's own parser (`toml_parser`), so strings, comments and table
//! headers are told apart from nesting exactly as toml tells them. That parser recurses into each
//! array and inline table it enters; the check lets it enter none past the bound, and the parser
//! skips what it does not enter without recursion.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Range;

use toml_parser::decoder::Encoding;
use toml_parser::lexer::Token;
use toml_parser::parser::{EventReceiver, parse_document};
use toml_parser::{ErrorSink, Raw, Source, Span};

/// The deepest level a scenario file may nest to: four times what a scenario needs, and few
/// enough for a debug build to read a file nested this deeply on a 256 KiB stack.
pub const NESTING_LEVELS_MAX: u32 = 32;

/// Where a file first nests past [`NESTING_LEVELS_MAX`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TooDeep {
    /// The bracket or brace that opens the array or inline table, or the part of a key, that is
    /// a level too deep.
    pub(super) span: Range<usize>,
    /// What `span` is, as an error message names it: "array", "inline table" or "key".
    pub(super) what: &'static str,
}

/// Where `source`, whose tokens are `tokens` (`sketch::tokens_of`), first nests past
/// [`NESTING_LEVELS_MAX`], or `None` if it does not. A file that is not valid TOML is walked as
/// toml's parser recovers from its errors, and those errors are left for toml to report.
pub(super) fn first_too_deep(source: &str, tokens: &[Token]) -> Option<TooDeep> {
    let mut levels = Levels::new(Source::new(source));
    parse_document(tokens, &mut levels, &mut ());
    levels.first_too_deep
}

/// Follows the level of each key and value as toml's parser reads a file.
struct Levels<'s> {
    source: Source<'s>,
    /// The level of the current table, whose keys are a level deeper: that of its header's last
    /// part, one more for an array of tables (the part names the array, the table is its last
    /// element).
    table_level: u32,
    /// Whether the parser is inside a table header.
    in_header: bool,
    /// The parts of the header being read, as keys (a quoted part decoded), and its level so far.
    header_key: Vec<Cow<'s, str>>,
    header_level: u32,
    /// The keys of the arrays of tables declared so far (`[[a.b]]`): a later header's part that
    /// names one stands for its last table, a level below the array.
    arrays_of_tables: BTreeSet<Vec<Cow<'s, str>>>,
    /// The parts of the key of a key-value being read (or last read, while its value is).
    key_parts: u32,
    /// Whether a dot came after the last part of a key, so that the next part continues it.
    after_dot: bool,
    /// The arrays and inline tables the parser is inside, innermost last: each one's level and
    /// whether it is an array. Bounded: one past the bound is not entered, so nothing nests in it.
    open: Vec<(u32, bool)>,
    first_too_deep: Option<TooDeep>,
}

impl<'s> Levels<'s> {
    fn new(source: Source<'s>) -> Levels<'s> {
        Levels {
            source,
            table_level: 0,
            in_header: false,
            header_key: Vec::new(),
            header_level: 0,
            arrays_of_tables: BTreeSet::new(),
            key_parts: 0,
            after_dot: false,
            open: Vec::new(),
            first_too_deep: None,
        }
    }

    /// Whether `level` is within the bound; if not and it is the first, keeps where it is.
    fn within_bound(&mut self, level: u32, span: Span, what: &'static str) -> bool {
        let within = level <= NESTING_LEVELS_MAX;
        if !within && self.first_too_deep.is_none() {
            self.first_too_deep = Some(TooDeep {
                span: span.start()..span.end(),
                what,
            });
        }
        within
    }

    /// An array or inline table opens as a value; returns whether the parser may enter it.
    fn open(&mut self, span: Span, is_array: bool) -> bool {
        let level = match self.open.last() {
            // An element of an array.
            Some(&(array_level, true)) => array_level + 1,
            // The value of the key just read, in an inline table or the current table.
            Some(&(table_level, false)) => table_level + self.key_parts,
            None => self.table_level + self.key_parts,
        };
        let what = if is_array { "array" } else { "inline table" };
        let within = self.within_bound(level, span, what);
        // Pushed even when not entered: the parser still reports where the value closes.
        self.open.push((level, is_array));
        self.key_parts = 0;
        self.after_dot = false;
        within
    }

    fn close(&mut self) {
        self.open.pop();
    }

    /// A part of a header's key: a level below the part before it, or two when that one names an
    /// array of tables.
    fn header_key_part(&mut self, span: Span, encoding: Option<Encoding>) {
        if !self.after_dot {
            self.header_key.clear();
            self.header_level = 0;
        } else if self.arrays_of_tables.contains(&self.header_key) {
            self.header_level += 1;
        }
        let mut part = Cow::Borrowed("");
        if let Some(raw) = self.source.get(span) {
            Raw::new_unchecked(raw.as_str(), encoding, span).decode_key(&mut part, &mut ());
        }
        self.header_key.push(part);
        self.header_level += 1;
        self.within_bound(self.header_level, span, "key");
    }

    fn table_header_opens(&mut self) {
        self.in_header = true;
        self.after_dot = false;
        self.header_key.clear();
        self.header_level = 0;
    }

    fn table_header_closes(&mut self, array_of_tables: bool) {
        self.in_header = false;
        self.table_level = self.header_level + u32::from(array_of_tables);
        // Copied only when new: a file of many lifecycles repeats `[[lifecycle]]` thousands of
        // times.
        if array_of_tables && !self.arrays_of_tables.contains(&self.header_key) {
            self.arrays_of_tables.insert(self.header_key.clone());
        }
        self.key_parts = 0;
    }
}

impl EventReceiver for Levels<'_> {
    fn std_table_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.table_header_opens();
    }

    fn std_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.table_header_closes(false);
    }

    fn array_table_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.table_header_opens();
    }

    fn array_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.table_header_closes(true);
    }

    fn inline_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.open(span, false)
    }

    fn inline_table_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.close();
    }

    fn array_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.open(span, true)
    }

    fn array_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.close();
    }

    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        if self.in_header {
            self.header_key_part(span, encoding);
        } else {
            // A part after a dot continues the key; any other starts a new one.
            self.key_parts = if self.after_dot {
                self.key_parts + 1
            } else {
                1
            };
            let parent_level = match self.open.last() {
                Some(&(level, _)) => level,
                None => self.table_level,
            };
            self.within_bound(parent_level + self.key_parts, span, "key");
        }
        self.after_dot = false;
    }

    fn key_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.after_dot = true;
    }

    fn newline(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        // A header the parser found no `]` for (a syntax error) ends with its line all the same.
        if self.in_header {
            self.table_header_closes(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::sketch::tokens_of;

    /// `source` with `value` put where `@` is, once nested `levels` levels deep by `wrap`.
    fn nested(levels: usize, wrap: impl Fn(&str) -> String) -> String {
        (0..levels).fold("1".to_string(), |inner, _| wrap(&inner))
    }

    /// The line and column of the first place too deep, 1-based, and what is there.
    fn refusal(source: &str) -> Option<(usize, usize, &'static str)> {
        let TooDeep { span, what } = first_too_deep(source, &tokens_of(source))?;
        let before = &source[..span.start];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
        Some((line, column, what))
    }

    const MAX: usize = NESTING_LEVELS_MAX as usize;

    /// A key of `parts` parts.
    fn dotted(parts: usize) -> String {
        vec!["a"; parts].join(".")
    }

    /// One tree, spelt as TOML allows, nests as deeply: the level of `a` is 2 in each, and a
    /// chain under it to level 32 is allowed, to 33 refused at the part that reaches it.
    #[test]
    fn every_spelling_of_a_tree_nests_as_deeply() {
        // `config` is level 1 and each `a` one more: the text to a level, and the column of the
        // last `a` of the text to level 33.
        type Spelling = fn(usize) -> String;
        let spellings: [(Spelling, usize); 4] = [
            (
                |levels| format!("config.{} = 1\n", dotted(levels - 1)),
                8 + 2 * (MAX - 1),
            ),
            (
                |levels| format!("[config.{}]\n", dotted(levels - 1)),
                9 + 2 * (MAX - 1),
            ),
            (
                |levels| format!("[config]\n{} = 1\n", dotted(levels - 1)),
                1 + 2 * (MAX - 1),
            ),
            (
                |levels| {
                    let tables = nested(levels - 1, |inner| format!("{{ a = {inner} }}"));
                    format!("config = {tables}\n")
                },
                12 + 6 * (MAX - 1),
            ),
        ];
        for (spell, column) in &spellings {
            let at_bound = spell(MAX);
            assert_eq!(refusal(&at_bound), None, "{at_bound}");
            let past = spell(MAX + 1);
            let line = 1 + past.starts_with("[config]\n") as usize;
            assert_eq!(refusal(&past), Some((line, *column, "key")), "{past}");
        }
    }

    /// An array's elements are a level below it, an array of tables' tables too; an inline
    /// table is at its key's level, and so is the array that is a key's value.
    #[test]
    fn arrays_and_inline_tables_nest_as_the_tree_does() {
        // `a` at 1, its array at 1, the arrays inside at 2, 3, …
        let arrays = |count: usize| format!("a = {}\n", nested(count, |i| format!("[{i}]")));
        assert_eq!(refusal(&arrays(MAX)), None);
        assert_eq!(refusal(&arrays(MAX + 1)), Some((1, 5 + MAX, "array")));
        // An array of inline tables of arrays: `a` 1, `[` 1, `{` 2, `b` 3, `[` 3, `{` 4, `b` 5, …
        let mixed = |pairs: usize| {
            format!(
                "a = {}\n",
                nested(pairs, |inner| format!("[{{ b = {inner} }}]"))
            )
        };
        assert_eq!(refusal(&mixed(MAX / 2 - 1)), None);
        assert_eq!(
            refusal(&mixed(MAX / 2)),
            Some((1, 5 + 7 * (MAX / 2 - 1) + 3, "key"))
        );
        // An inline table as the element of the deepest array there may be.
        let table_in_arrays =
            |count: usize| format!("a = {}{{}}{}\n", "[".repeat(count), "]".repeat(count));
        assert_eq!(refusal(&table_in_arrays(MAX - 1)), None);
        assert_eq!(
            refusal(&table_in_arrays(MAX)),
            Some((1, 5 + MAX, "inline table"))
        );
        // `[[a]]`: `a` at 1, its table at 2, `b` at 3.
        let headers = format!("[[{}]]\nb = 1\n", vec!["a"; MAX - 2].join("."));
        assert_eq!(refusal(&headers), None);
        let headers = format!("[[{}]]\nb = 1\n", vec!["a"; MAX - 1].join("."));
        assert_eq!(refusal(&headers), Some((2, 1, "key")));
    }

    /// A header's part that names an array of tables stands for its last table, a level below:
    /// `[[a]]`, `[[a.a]]`, … each start a table two levels below the one before, whichever way
    /// the parts are quoted.
    #[test]
    fn a_header_through_arrays_of_tables_nests_as_the_tree_does() {
        let chain = |count: usize| {
            let header = |parts: usize| {
                let quoted = (0..parts).map(|part| ["a", "\"a\"", "'a'"][part % 3]);
                format!("[[{}]]\n", quoted.collect::<Vec<_>>().join("."))
            };
            // `a` 1, its table 2, `a` 3, its table 4, …, `b` 2 × count + 1.
            format!("{}b = 1\n", (1..=count).map(header).collect::<String>())
        };
        assert_eq!(refusal(&chain(MAX / 2 - 1)), None);
        assert_eq!(refusal(&chain(MAX / 2)), Some((MAX / 2 + 1, 1, "key")));
        // A table in the last element of an array of tables.
        let text = format!("[[a]]\n[a.{}]\n", dotted(MAX - 2));
        assert_eq!(refusal(&text), None);
        let text = format!("[[a]]\n[a.{}]\n", dotted(MAX - 1));
        assert_eq!(refusal(&text), Some((2, 4 + 2 * (MAX - 2), "key")));
    }

    /// Brackets and braces in strings of every kind (with the escapes that keep them open) and in
    /// comments are no nesting, nor are the brackets of table headers, however many.
    #[test]
    fn brackets_in_strings_comments_and_headers_do_not_nest() {
        let deep = "[".repeat(MAX + 8);
        let closing = "]".repeat(MAX + 8);
        let texts = [
            format!("a = \"{deep}\"\n"),
            format!("a = \"\\\" {deep} \\\\\"\n"),
            format!("a = '{deep}'\n"),
            format!("a = \"\"\"\n\\\"\"\" {deep}\n{{ \"\" \"\"\"\n"),
            format!("a = '''\n' '' {deep} {{\n'''\n"),
            format!("# {deep}\na = 1 # {deep}\n"),
            format!("[\"{deep}\"]\n['{closing}']\nb = [ # {deep}\n 1, \"{deep}\" ]\n"),
            (0..MAX + 8).fold(String::new(), |text, i| {
                format!("{text}[t{i}]\nk = [1]\n[[u]]\nk = {{ l = [2] }}\n")
            }),
        ];
        for text in &texts {
            assert_eq!(refusal(text), None, "{text}");
            // The control: the same text with an array nested too deeply after it is refused.
            let control = format!("{text}[z]\nb = {deep}{closing}\n");
            assert!(refusal(&control).is_some(), "{control}");
        }
    }

    /// A file that is no valid TOML is walked as toml's parser recovers, neither panicking nor
    /// missing nesting after the error.
    #[test]
    fn nesting_after_a_syntax_error_is_still_found() {
        let deep = format!("b = {}\n", nested(MAX + 1, |inner| format!("[{inner}]")));
        for broken in [
            "[a\n",
            "[[a]\n",
            "= 1\n",
            "a = [1,,\n",
            "a = \"open\n",
            "a = {\n",
        ] {
            let text = format!("{broken}{deep}");
            let _ = first_too_deep(&text, &tokens_of(&text));
            let text = format!("{broken}\n\n{deep}");
            let _ = first_too_deep(&text, &tokens_of(&text));
        }
        assert!(refusal(&format!("[a\n{deep}")).is_some());
        assert!(refusal(&format!("= 1\n{deep}")).is_some());
    }
}
