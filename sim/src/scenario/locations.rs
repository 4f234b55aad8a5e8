//! Where each op of a scenario file is: what a report points at (`--> FILE:LINE:COLUMN`), so
//! that "op #1 `exit` … thread 0" leads to the line without counting ops by hand, and the first
//! op of the setup is not taken for the first op of the repeated list or of a thread.
//!
//! Only a scenario read from a file has locations. A generated one has none, and neither has a
//! shrunk one until it is written to a file and read back: its ops are not where the original's
//! were.

use std::cell::Cell;
use std::ops::Range;

use crate::findings::{OpList, OpLocation, OpRef, THREAD_EXIT_OP};

/// A line and column, both from 1; the column counts characters, as `Diagnostic` does.
type LineColumn = (u32, u32);

/// Where one lifecycle's ops are in the file, list by list, as byte ranges: what parsing keeps of
/// the file's spans once the ops are decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LifecycleSpans {
    pub(super) setup: Vec<Range<usize>>,
    pub(super) ops: Vec<Range<usize>>,
    pub(super) teardown: Vec<Range<usize>>,
    /// Per declared thread, in file order.
    pub(super) threads: Vec<ThreadSpans>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ThreadSpans {
    pub(super) name: String,
    pub(super) name_span: Range<usize>,
    pub(super) ops: Vec<Range<usize>>,
}

/// The locations of one lifecycle's ops, list by list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LifecycleLocations {
    setup: Vec<LineColumn>,
    ops: Vec<LineColumn>,
    teardown: Vec<LineColumn>,
    /// Per declared thread, in file order: its name, where the name is, and its ops.
    threads: Vec<(String, LineColumn, Vec<LineColumn>)>,
}

/// The locations of every op of a scenario file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpLocations {
    file: String,
    lifecycles: Vec<LifecycleLocations>,
}

/// Byte offsets to lines and columns, with the start of every line found once: the one
/// conversion behind a report's `--> FILE:LINE:COLUMN` and a parse error's.
pub(crate) struct LineIndex<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
    /// The last offset converted, its line and the characters before it on that line. Ops come
    /// in file order, so the next one on the same line counts only the characters since: a file
    /// of one 4 MiB line of ops would otherwise count from the line's start for every op
    /// (quadratic: minutes for 300,000 ops).
    last: Cell<(usize, usize, usize)>,
}

impl<'s> LineIndex<'s> {
    pub(crate) fn new(source: &'s str) -> LineIndex<'s> {
        let newlines = source.match_indices('\n').map(|(at, _)| at + 1);
        LineIndex {
            source,
            line_starts: std::iter::once(0).chain(newlines).collect(),
            last: Cell::new((0, 1, 0)),
        }
    }

    /// The line and column (both from 1) where `span` starts. The column counts characters;
    /// an offset inside one counts it as a replacement character.
    pub(crate) fn line_column(&self, span: Range<usize>) -> LineColumn {
        let offset = span.start.min(self.source.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let (last_offset, last_line, last_chars) = self.last.get();
        let (from, chars_before) =
            if last_line == line && (line_start..=offset).contains(&last_offset) {
                (last_offset, last_chars)
            } else {
                (line_start, 0)
            };
        let chars = chars_before + self.chars_in(from..offset);
        self.last.set((offset, line, chars));
        (line as u32, chars as u32 + 1)
    }

    /// The characters in `range`: a slice of the text where it falls on character boundaries,
    /// else its bytes read as UTF-8 with replacements.
    fn chars_in(&self, range: Range<usize>) -> usize {
        match self.source.get(range.clone()) {
            Some(text) => text.chars().count(),
            None => String::from_utf8_lossy(&self.source.as_bytes()[range])
                .chars()
                .count(),
        }
    }

    fn list(&self, spans: &[Range<usize>]) -> Vec<LineColumn> {
        spans
            .iter()
            .map(|span| self.line_column(span.clone()))
            .collect()
    }
}

impl OpLocations {
    /// The ops' locations in `source`, from the spans `parse::parse_located` read from it (the
    /// parse's own spans: the file is not read a second time).
    pub(super) fn of(file: &str, source: &str, lifecycles: &[LifecycleSpans]) -> OpLocations {
        let index = LineIndex::new(source);
        let lifecycles = lifecycles
            .iter()
            .map(|lifecycle| LifecycleLocations {
                setup: index.list(&lifecycle.setup),
                ops: index.list(&lifecycle.ops),
                teardown: index.list(&lifecycle.teardown),
                threads: lifecycle
                    .threads
                    .iter()
                    .map(|thread| {
                        (
                            thread.name.clone(),
                            index.line_column(thread.name_span.clone()),
                            index.list(&thread.ops),
                        )
                    })
                    .collect(),
            })
            .collect();
        OpLocations {
            file: file.to_string(),
            lifecycles,
        }
    }

    /// Where `op` is in the file. A thread's exit (`thread-exit`, after its last op) is where
    /// the thread is declared: it is no op of the file. `None` for a position this file does not
    /// have (a report of another version of the scenario).
    pub fn locate(&self, op: &OpRef) -> Option<OpLocation> {
        let lifecycle = self.lifecycles.get(op.lifecycle as usize)?;
        let at_index = |list: &[LineColumn]| {
            let index = (op.index as usize).checked_sub(1)?;
            list.get(index).copied()
        };
        let (line, column) = match op.list {
            OpList::Setup => at_index(&lifecycle.setup)?,
            OpList::Ops => at_index(&lifecycle.ops)?,
            OpList::Teardown => at_index(&lifecycle.teardown)?,
            OpList::Thread => {
                let thread_name = op.thread_name.as_deref()?;
                let (_, declared, ops) = lifecycle
                    .threads
                    .iter()
                    .find(|(name, _, _)| name == thread_name)?;
                if op.name == THREAD_EXIT_OP {
                    *declared
                } else {
                    at_index(ops)?
                }
            }
        };
        Some(OpLocation {
            file: self.file.clone(),
            line,
            column,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "x"
subject = "counter"

[[lifecycle]]
name = "a"
setup = [{ op = "bump" }]
ops = [
  { op = "bump" },
  { op = "spawn", thread = "t" },
]
teardown = [{ op = "exit" }]

[[lifecycle.thread]]
name = "t"
ops = [{ op = "bump" }, { op = "bump" }]
"#;

    fn op(list: OpList, index: u32, name: &str) -> OpRef {
        OpRef {
            lifecycle: 0,
            repetition: 0,
            list,
            index,
            name: name.into(),
            thread: 0,
            during: None,
            thread_name: (list == OpList::Thread).then(|| "t".to_string()),
            location: None,
            trace_event: None,
        }
    }

    fn located(source: &str) -> OpLocations {
        let parsed = crate::scenario::parse::parse_located::<crate::subjects::counter::Counter>(
            "x.toml", source,
        );
        parsed.unwrap_or_else(|e| panic!("{e}")).1
    }

    /// The same line and column as a parse error at that place gives.
    #[test]
    fn columns_count_characters_as_a_parse_error_does() {
        let source = "a = \"é\"\nb = \"ü\" ; c\n";
        let at = source.find('c').unwrap();
        let diagnostic = super::super::parse::Diagnostic::new("f", source, Some(at..at + 1), "m");
        assert_eq!(diagnostic.line_column(), Some((2, 11)));
        assert_eq!(LineIndex::new(source).line_column(at..at + 1), (2, 11));
    }

    /// Offsets taken in order reuse the count up to the last one; out of order, or on another
    /// line, they count afresh. Either way each gives what a fresh index gives.
    #[test]
    fn a_reused_index_gives_what_a_fresh_one_gives_in_any_order() {
        let source = "é = [1, \"ü\", 3]\nx = 1 ; ö\n";
        let offsets: Vec<usize> = source.char_indices().map(|(at, _)| at).collect();
        let reused = LineIndex::new(source);
        let order = offsets.iter().chain(offsets.iter().rev()).chain(&offsets);
        for &at in order {
            assert_eq!(
                reused.line_column(at..at),
                LineIndex::new(source).line_column(at..at),
                "offset {at}"
            );
        }
    }

    fn line_column(locations: &OpLocations, op: OpRef) -> Option<(u32, u32)> {
        locations.locate(&op).map(|at| (at.line, at.column))
    }

    #[test]
    fn each_list_has_its_own_first_op() {
        let locations = located(FILE);
        assert_eq!(
            line_column(&locations, op(OpList::Setup, 1, "bump")),
            Some((6, 10))
        );
        assert_eq!(
            line_column(&locations, op(OpList::Ops, 1, "bump")),
            Some((8, 3))
        );
        assert_eq!(
            line_column(&locations, op(OpList::Ops, 2, "spawn")),
            Some((9, 3))
        );
        assert_eq!(
            line_column(&locations, op(OpList::Teardown, 1, "exit")),
            Some((11, 13))
        );
        let in_thread = locations.locate(&op(OpList::Thread, 2, "bump")).unwrap();
        assert_eq!((in_thread.line, in_thread.column), (15, 25));
        assert_eq!(in_thread.file, "x.toml");
        // A thread's exit is where the thread is declared.
        assert_eq!(
            line_column(&locations, op(OpList::Thread, 2, "thread-exit")),
            Some((14, 8))
        );
    }

    #[test]
    fn a_position_the_file_does_not_have_has_no_location() {
        let locations = located(FILE);
        assert_eq!(line_column(&locations, op(OpList::Ops, 3, "bump")), None);
        assert_eq!(line_column(&locations, op(OpList::Ops, 0, "bump")), None);
        let mut undeclared_thread = op(OpList::Thread, 1, "bump");
        undeclared_thread.thread_name = Some("u".into());
        assert_eq!(line_column(&locations, undeclared_thread), None);
        let mut other_lifecycle = op(OpList::Ops, 1, "bump");
        other_lifecycle.lifecycle = 1;
        assert_eq!(line_column(&locations, other_lifecycle), None);
    }
}
