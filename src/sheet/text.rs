//! Text handling shared by the two CSV readers, the routes sheet
//! ([`crate::sheet`]) and the flight watch list ([`crate::status::watch`]):
//! bytes into text ([`decode`]: size, UTF-16, UTF-8, byte-order mark, blank
//! file), cell values into text safe to quote in a message ([`shown`],
//! [`clean_message`], [`escape_controls`]), and the cap on duplicate-row
//! warnings ([`DuplicateRows`]).
//!
//! Each reader keeps its own error type and wording; [`TextError`] is what
//! they share, and each maps it to its own variants.

use std::borrow::Cow;

use super::MAX_DUPLICATE_WARNINGS;

/// Values longer than this are cut short in messages: enough to recognise
/// the cell, not so much that one pasted paragraph floods the report.
const MAX_SHOWN_CHARS: usize = 40;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why bytes are not usable CSV text; the reader names the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextError {
    /// More than the reader's limit, in bytes.
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// UTF-16, as some spreadsheets save "Unicode text".
    Utf16,
    /// Not UTF-8 (probably a legacy encoding such as Windows-1252).
    NotUtf8 {
        /// The first line with a bad byte.
        line: usize,
    },
    /// Nothing but white space.
    Empty,
}

/// Checks size and encoding, and returns the text without its byte-order mark.
pub(crate) fn decode(bytes: &[u8], limit: usize) -> Result<&str, TextError> {
    if bytes.len() > limit {
        return Err(TextError::TooLarge { limit });
    }
    if looks_like_utf16(bytes) {
        return Err(TextError::Utf16);
    }
    let bytes = strip_bom(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| TextError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
    })?;
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    Ok(text)
}

pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// A UTF-16 byte-order mark, or ASCII text with every other byte zero
/// (UTF-16 saved without a mark).
fn looks_like_utf16(bytes: &[u8]) -> bool {
    match bytes {
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => true,
        [a, 0, b, 0, ..] | [0, a, 0, b, ..] => *a != 0 && *b != 0,
        _ => false,
    }
}

/// Turns every CR that is not part of a CRLF into a LF.
///
/// Old Mac spreadsheets (Excel's "CSV (Macintosh)") end rows with a bare CR
/// but break lines inside a quoted cell with a LF. The CSV reader ends
/// records at a bare CR but comments only at a LF, and lines are counted at
/// LFs, so a bare CR would hide the rows after a comment and shift every
/// line number; as a LF it is the line break it looks like in an editor.
pub(crate) fn bare_cr_to_lf(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let is_bare_cr = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(is_bare_cr) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(if c == '\r' && chars.peek() != Some(&'\n') {
            '\n'
        } else {
            c
        });
    }
    Cow::Owned(out)
}

/// A cell value made safe and short for a message: control and invisible
/// characters escaped, backticks swapped so the quoting stays readable, and
/// long values cut at [`MAX_SHOWN_CHARS`].
pub(crate) fn shown(value: &str) -> String {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        match c {
            '`' => out.push('\''),
            c if is_unprintable(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Control characters, plus the invisible and direction-changing ones that
/// arrive with text pasted from the web and make a cell look right but parse wrong.
pub(crate) fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Escapes any unprintable characters left in a finished message.
pub(crate) fn escape_controls(message: &str) -> String {
    if !message.chars().any(is_unprintable) {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites a domain parser's message about the cell text `value` so the
/// text it quotes is shown safely: `value` wherever it appears, and every
/// backticked part (a date range quotes only its bad half) shortened the
/// same way.
pub(crate) fn clean_message(message: &str, value: &str) -> String {
    let safe_value = shown(value);
    let message = if safe_value == value {
        Cow::Borrowed(message)
    } else {
        Cow::Owned(message.replace(value, &safe_value))
    };
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                shown(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// Most runs of line numbers the summary of duplicates lists before `…`.
const MAX_SUMMARY_RUNS: usize = 10;

/// Counts the duplicate rows a reader ignores, so each reader warns about
/// the first [`MAX_DUPLICATE_WARNINGS`] in its own words and sums up the
/// rest in one [`DuplicateRows::summary`].
#[derive(Debug, Default)]
pub(crate) struct DuplicateRows {
    warned: usize,
    /// Lines of the duplicates past the cap, in file order.
    unwarned: Vec<usize>,
}

impl DuplicateRows {
    /// Records a duplicate row on `line`: `true` when the caller should warn
    /// about it by itself, `false` once the cap is reached (the line is
    /// then counted in the summary).
    pub(crate) fn note(&mut self, line: usize) -> bool {
        if self.warned < MAX_DUPLICATE_WARNINGS {
            self.warned += 1;
            true
        } else {
            self.unwarned.push(line);
            false
        }
    }

    /// One warning for the duplicates past the cap, if there were any:
    /// `routes.csv:14: 4990 more duplicate rows ignored (lines 14-5003)`,
    /// its lines as runs (at most [`MAX_SUMMARY_RUNS`] of them, then `…`).
    pub(crate) fn summary(&self, source: &str) -> Option<String> {
        let first = *self.unwarned.first()?;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &line in &self.unwarned {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == line => *last = line,
                _ => runs.push((line, line)),
            }
        }
        let mut lines: Vec<String> = runs
            .iter()
            .take(MAX_SUMMARY_RUNS)
            .map(|&(from, to)| {
                if from == to {
                    from.to_string()
                } else {
                    format!("{from}-{to}")
                }
            })
            .collect();
        if runs.len() > MAX_SUMMARY_RUNS {
            lines.push("…".to_owned());
        }
        let count = self.unwarned.len();
        let (rows, word) = if count == 1 {
            ("row", "line")
        } else {
            ("rows", "lines")
        };
        Some(format!(
            "{source}:{first}: {count} more duplicate {rows} ignored ({word} {})",
            lines.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_warnings_are_capped_and_summed_up_in_runs() {
        let mut duplicates = DuplicateRows::default();
        assert_eq!(duplicates.summary("x.csv"), None);
        let warned = (2..=MAX_DUPLICATE_WARNINGS + 1)
            .filter(|&line| duplicates.note(line))
            .count();
        assert_eq!(warned, MAX_DUPLICATE_WARNINGS);
        assert_eq!(duplicates.summary("x.csv"), None, "nothing past the cap");
        assert!(!duplicates.note(20));
        assert_eq!(
            duplicates.summary("x.csv").as_deref(),
            Some("x.csv:20: 1 more duplicate row ignored (line 20)")
        );
        for line in [21, 22, 30, 40, 41] {
            assert!(!duplicates.note(line));
        }
        assert_eq!(
            duplicates.summary("x.csv").as_deref(),
            Some("x.csv:20: 6 more duplicate rows ignored (lines 20-22, 30, 40-41)")
        );
        for line in (50..80).step_by(2) {
            duplicates.note(line);
        }
        assert_eq!(
            duplicates.summary("x.csv").as_deref(),
            Some("x.csv:20: 21 more duplicate rows ignored (lines 20-22, 30, 40-41, 50, 52, 54, 56, 58, 60, 62, …)")
        );
    }

    #[test]
    fn shows_values_short_and_printable() {
        assert_eq!(shown("LHR"), "LHR");
        assert_eq!(shown("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(shown("LHR\u{200b}"), "LHR\\u{200b}");
        let long = "x".repeat(100);
        assert_eq!(shown(&long), format!("{}…", "x".repeat(40)));
        assert_eq!(shown(&shown(&long)), shown(&long), "idempotent");
        assert_eq!(
            clean_message("`2027-01-01..bad\u{7}` is not a date", "x"),
            "`2027-01-01..bad\\u{7}` is not a date"
        );
    }

    #[test]
    fn a_backtick_in_the_value_does_not_shift_the_quoting() {
        let message = "`slack`x\u{7}` is not a recipient";
        assert_eq!(
            clean_message(message, "slack`x\u{7}"),
            "`slack'x\\u{7}` is not a recipient"
        );
    }

    #[test]
    fn decodes_utf8_with_or_without_a_bom_and_refuses_the_rest() {
        assert_eq!(decode(b"\xEF\xBB\xBFa,b\n", 100), Ok("a,b\n"));
        assert_eq!(decode(b"a,b\n", 100), Ok("a,b\n"));
        assert_eq!(decode(b"a,b\n", 3), Err(TextError::TooLarge { limit: 3 }));
        assert_eq!(decode(b"\xFF\xFEa\0", 100), Err(TextError::Utf16));
        assert_eq!(decode(b"a\0,\0", 100), Err(TextError::Utf16));
        assert_eq!(
            decode(b"a\nb\n\xE9\n", 100),
            Err(TextError::NotUtf8 { line: 3 })
        );
        assert_eq!(decode(b" \r\n\t", 100), Err(TextError::Empty));
    }
}
