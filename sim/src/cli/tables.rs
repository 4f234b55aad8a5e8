//! The command line's tables (`sim run`'s summary, `sim list`, `sim zoo`, `sim sweep`'s, `sim
//! detect`'s), fitted to the width of the terminal they print to, one way for all of them.
//!
//! A table is as wide as its widest row wherever no width is known (a pipe, a file, with no
//! `COLUMNS`): a script reading it and the README's examples see whole rows. Given a width, a
//! table keeps every name, signature and path whole, on one line, since a person copies them
//! into a command (`--signature`, `--defect`, `sim replay`), and wraps only its free text, between
//! words. Where even that is wider than the terminal, each row becomes a record of its own, one
//! `header: value` line per cell: a signature then sits alone on its line at any width.

use comfy_table::{
    ColumnConstraint, ContentArrangement, Table, Width, presets::UTF8_FULL_CONDENSED,
};
use unicode_width::UnicodeWidthStr;

/// How a column's cells may be broken over lines to fit a width.
pub enum Fit {
    /// Each line of a cell stays whole: a name one types, a signature, path or seed one copies.
    Whole,
    /// Free text (or a list of names separated by `, `): breaks between words, never inside one.
    Wrap,
    /// Free text whose lines may open with one of these strings, each kept whole on its line: a
    /// finding's signature before its headline (`signature: headline`). A kept string holds
    /// spaces, which `Wrap` would break at.
    WrapAfter(Vec<String>),
}

/// A header, its columns' `Fit`s and the rows, printed by `render`.
pub struct FittedTable {
    header: Vec<String>,
    fits: Vec<Fit>,
    rows: Vec<Vec<String>>,
}

/// Indents of a record: a cell under its row's heading, a line of a cell too long to follow its
/// header, and the lines a wrapped line goes on to.
const FIELD_INDENT: &str = "  ";
const BLOCK_INDENT: &str = "    ";
const WRAPPED_INDENT: &str = "      ";

impl FittedTable {
    pub fn new(columns: Vec<(&str, Fit)>) -> FittedTable {
        let (header, fits) = columns
            .into_iter()
            .map(|(header, fit)| (header.to_string(), fit))
            .unzip();
        FittedTable {
            header,
            fits,
            rows: Vec::new(),
        }
    }

    pub fn add_row(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len(), "a cell for each column");
        self.rows.push(row);
    }

    /// The table for standard output: fitted to the terminal's width, or, when standard output
    /// is no terminal, to `COLUMNS` where the shell exports it; with neither, whole rows.
    pub fn render(&self) -> String {
        let table = self.plain_table();
        match width_to_fit(&table) {
            Some(width) => self.render_at(width),
            None => table.to_string(),
        }
    }

    /// The table within `width` columns with every `Whole` line and every word whole; or, where
    /// that is too wide, a record per row.
    pub fn render_at(&self, width: usize) -> String {
        self.table_within(width)
            .unwrap_or_else(|| self.records(width))
    }

    fn plain_table(&self) -> Table {
        let mut table = Table::new();
        table.load_style(UTF8_FULL_CONDENSED);
        table.set_header(self.header.clone());
        for row in &self.rows {
            table.add_row(row.clone());
        }
        table
    }

    /// The narrowest each column's text may be: a `Whole` column's widest line, another's widest
    /// word or kept string. The header's words count too, so that none is broken; with
    /// `headers_whole`, a `Whole` column's whole header does.
    fn narrowest_widths(&self, headers_whole: bool) -> Vec<usize> {
        self.fits
            .iter()
            .enumerate()
            .map(|(index, fit)| {
                let header = &self.header[index];
                let mut narrowest = match fit {
                    Fit::Whole if headers_whole => header.width(),
                    _ => widest_word(header),
                };
                for line in self.rows.iter().flat_map(|row| row[index].lines()) {
                    let unbreakable = match fit {
                        Fit::Whole => line.width(),
                        Fit::WrapAfter(kept) => {
                            kept_prefix(line, kept).map_or(0, UnicodeWidthStr::width)
                        }
                        Fit::Wrap => 0,
                    };
                    narrowest = narrowest.max(unbreakable).max(widest_word(line));
                }
                narrowest
            })
            .collect()
    }

    /// The table within `width`, its free text wrapped by comfy-table's dynamic arrangement;
    /// with the headers of its `Whole` columns on one line where that fits, else wrapped between
    /// words; `None` where even that is wider than `width`.
    fn table_within(&self, width: usize) -> Option<String> {
        [true, false].into_iter().find_map(|headers_whole| {
            self.table_no_narrower(&self.narrowest_widths(headers_whole), width)
        })
    }

    /// The table within `width`, no column's text narrower than `narrowest`; `None` where that
    /// is wider than `width`.
    fn table_no_narrower(&self, narrowest: &[usize], width: usize) -> Option<String> {
        let mut table = self.plain_table();
        table.set_content_arrangement(ContentArrangement::Dynamic);
        table.set_width(u16::try_from(width).unwrap_or(u16::MAX));
        let mut needed = 1;
        for (index, narrowest) in narrowest.iter().enumerate() {
            let column = table.column_mut(index).expect("a column per header cell");
            let padding = usize::from(column.padding_width());
            // One border or separator to the right of each column, one at the table's left.
            needed += narrowest + padding + 1;
            // comfy-table's lower boundary counts the padding.
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(
                u16::try_from(narrowest + padding).unwrap_or(u16::MAX),
            )));
        }
        if needed > width {
            return None;
        }
        let text = table.to_string();
        // The arrangement is comfy-table's: should it ever give more than asked, the records
        // still fit.
        text.lines()
            .all(|line| line.width() <= width)
            .then_some(text)
    }

    /// A record per row: the first cell as its heading, then `  header: value` for each other
    /// cell that is not empty; a value of more lines than one, or too long to follow its header,
    /// goes on lines of its own under it, free text wrapped to `width`. A `Whole` line longer
    /// than `width` is left whole.
    fn records(&self, width: usize) -> String {
        let mut lines = Vec::new();
        for row in &self.rows {
            for line in row[0].lines() {
                lines.extend(self.wrapped(0, line, "", WRAPPED_INDENT, width));
            }
            for (index, cell) in row.iter().enumerate().skip(1) {
                let header = &self.header[index];
                let inline = format!("{FIELD_INDENT}{header}: {cell}");
                if cell.is_empty() {
                    continue;
                }
                if !cell.contains('\n') && inline.width() <= width {
                    lines.push(inline);
                    continue;
                }
                lines.push(format!("{FIELD_INDENT}{header}:"));
                for line in cell.lines() {
                    lines.extend(self.wrapped(index, line, BLOCK_INDENT, WRAPPED_INDENT, width));
                }
            }
        }
        lines.join("\n")
    }

    /// A line of a cell of column `index` on lines of at most `width` where its `Fit` lets it
    /// break: the first line indented by `first`, the others by `rest`.
    fn wrapped(
        &self,
        index: usize,
        line: &str,
        first: &str,
        rest: &str,
        width: usize,
    ) -> Vec<String> {
        let (kept, text) = match &self.fits[index] {
            Fit::Whole => return vec![format!("{first}{line}")],
            Fit::Wrap => ("", line),
            Fit::WrapAfter(kept) => match kept_prefix(line, kept) {
                Some(prefix) => (prefix, line[prefix.len()..].trim_start()),
                None => ("", line),
            },
        };
        let first = match (kept, text) {
            ("", _) => first.to_string(),
            (kept, "") => return vec![format!("{first}{kept}")],
            (kept, _) => format!("{first}{kept} "),
        };
        // The kept string is in the first line's indent, which textwrap never breaks; nor does it
        // break a word, at a hyphen (`warm-up`, a defect's name) or anywhere else.
        let options = textwrap::Options::new(width)
            .initial_indent(&first)
            .subsequent_indent(rest)
            .word_splitter(textwrap::WordSplitter::NoHyphenation)
            .break_words(false);
        textwrap::wrap(text, options)
            .into_iter()
            .map(|line| line.into_owned())
            .collect()
    }
}

fn widest_word(text: &str) -> usize {
    text.split(' ')
        .map(UnicodeWidthStr::width)
        .max()
        .unwrap_or(0)
}

/// The longest of `kept` that `line` opens with, followed by a space or nothing.
fn kept_prefix<'a>(line: &str, kept: &'a [String]) -> Option<&'a str> {
    kept.iter()
        .filter(|prefix| {
            line.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        })
        .max_by_key(|prefix| prefix.len())
        .map(String::as_str)
}

/// The terminal's width when standard output is one; otherwise `COLUMNS`, where the shell
/// exports it (a pager, `| less`); otherwise none.
fn width_to_fit(table: &Table) -> Option<usize> {
    let terminal = if table.is_tty() { table.width() } else { None };
    chosen_width(terminal, std::env::var("COLUMNS").ok())
}

/// The width to fit from the terminal's (`None` when standard output is no terminal) and the
/// `COLUMNS` variable's. A terminal that reports 0 columns has no size set (a pseudo-terminal no
/// one sized: `script`, some CI runners and editors' shells), which is no width: fitting to 0
/// put every word on a line of its own.
fn chosen_width(terminal: Option<u16>, columns_var: Option<String>) -> Option<usize> {
    let columns = || {
        columns_var
            .as_deref()
            .and_then(|text| text.trim().parse::<u16>().ok())
    };
    terminal
        .filter(|&width| width > 0)
        .or_else(columns)
        .filter(|&width| width > 0)
        .map(usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str = "deadlock:threads:emulated fd readable";

    fn findings() -> FittedTable {
        let mut table = FittedTable::new(vec![
            ("#", Fit::Whole),
            ("signature", Fit::Whole),
            ("seeds to first", Fit::Whole),
            ("what", Fit::Wrap),
        ]);
        table.add_row(vec![
            "#1".into(),
            SIGNATURE.into(),
            "1".into(),
            "no thread can run and no timer is pending; 2 thread(s) blocked forever".into(),
        ]);
        table
    }

    fn assert_within(text: &str, width: usize) {
        for line in text.lines() {
            assert!(line.width() <= width, "wider than {width}:\n{line}\n{text}");
        }
    }

    #[test]
    fn with_room_for_whole_signatures_the_table_wraps_its_free_text_and_headers_between_words() {
        let text = findings().render_at(70);
        assert!(text.starts_with('┌'), "{text}");
        assert_within(&text, 70);
        assert!(text.lines().any(|line| line.contains(SIGNATURE)), "{text}");
        // The header wraps between its words, not inside one.
        assert!(text.lines().any(|line| line.contains("┆ seeds ")), "{text}");
        assert!(text.lines().any(|line| line.contains("┆ first ")), "{text}");
        assert!(text.lines().any(|line| line.contains("blocked")), "{text}");
        assert!(
            !text.lines().any(|line| line.contains("┆ seeds to first ┆")),
            "{text}"
        );
    }

    #[test]
    fn with_room_for_every_row_whole_the_table_is_as_it_is_with_no_width() {
        let table = findings();
        assert_eq!(table.render_at(200), table.plain_table().to_string());
    }

    #[test]
    fn without_room_for_whole_signatures_each_row_is_a_record_of_its_own() {
        let text = findings().render_at(44);
        assert_within(&text, 44);
        assert_eq!(
            text,
            "#1\n\
             \x20 signature:\n\
             \x20   deadlock:threads:emulated fd readable\n\
             \x20 seeds to first: 1\n\
             \x20 what:\n\
             \x20   no thread can run and no timer is\n\
             \x20     pending; 2 thread(s) blocked forever"
        );
    }

    #[test]
    fn a_kept_string_opening_free_text_stays_on_one_line() {
        let headline = format!("{SIGNATURE}: no thread can run and no timer is pending");
        let mut table = FittedTable::new(vec![
            ("scenario", Fit::Whole),
            ("findings", Fit::WrapAfter(vec![format!("{SIGNATURE}:")])),
        ]);
        table.add_row(vec!["a.toml".into(), headline]);
        // As a table: the column is no narrower than the signature.
        let text = table.render_at(60);
        assert!(text.starts_with('┌'), "{text}");
        assert_within(&text, 60);
        assert!(text.lines().any(|line| line.contains(SIGNATURE)), "{text}");
        // As a record: the signature opens the first line, the headline wraps after it.
        let text = table.render_at(46);
        assert_within(&text, 46);
        assert_eq!(
            text,
            "a.toml\n\
             \x20 findings:\n\
             \x20   deadlock:threads:emulated fd readable: no\n\
             \x20     thread can run and no timer is pending"
        );
    }

    #[test]
    fn a_line_kept_whole_is_not_broken_where_it_is_wider_than_the_width() {
        let text = findings().render_at(20);
        assert!(
            text.lines().any(|line| line == format!("    {SIGNATURE}")),
            "{text}"
        );
    }

    #[test]
    fn a_terminal_of_no_size_is_no_width_to_fit() {
        let columns = |text: &str| Some(text.to_string());
        assert_eq!(chosen_width(Some(80), columns("120")), Some(80));
        assert_eq!(
            chosen_width(Some(0), None),
            None,
            "whole rows, not a word a line"
        );
        assert_eq!(chosen_width(Some(0), columns("100")), Some(100));
        assert_eq!(chosen_width(None, columns(" 90 ")), Some(90));
        assert_eq!(chosen_width(None, columns("0")), None);
        assert_eq!(chosen_width(None, columns("wide")), None);
        assert_eq!(chosen_width(None, None), None);
    }
}
