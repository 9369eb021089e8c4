//! Text handling shared by the two CSV readers, the routes sheet
//! ([`crate::sheet`]) and the flight watch list ([`crate::status::watch`]):
//! bytes into text ([`decode`]: size, UTF-16, UTF-8, byte-order mark, blank
//! file), and cell values into text safe to quote in a message ([`shown`],
//! [`clean_message`], [`escape_controls`]).
//!
//! Each reader keeps its own error type and wording; [`TextError`] is what
//! they share, and each maps it to its own variants.

use std::borrow::Cow;

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

#[cfg(test)]
mod tests {
    use super::*;

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
