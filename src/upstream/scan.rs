//! Walking a JSON document's outline without reading every value.
//!
//! Most of a fare reply is text farewatch never reads: an Amadeus offer's
//! fare rules and each traveller's pricing, pretty-printed. serde_json
//! checks and skips those parts a byte at a time, indentation included.
//! Here a [`Cursor`] walks only the levels a reader asks for, and crosses
//! every other value by looking at its quotes, backslashes and brackets
//! sixty-four bytes at a time (the way simdjson finds a document's
//! structure); the members that matter are handed back as text for serde
//! to read.
//!
//! Lenient on purpose, like the wire types it feeds: a value that is
//! crossed is checked no further than its strings and brackets, so a
//! malformed number deep in a part nobody reads cannot lose the price.
//! Whatever it cannot follow (an escaped key, a bracket that never closes,
//! text after the document) is [`Malformed`], and the caller reads the
//! whole document with serde instead, which accepts or reports it exactly.

/// The text could not be walked; read it with serde instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// A position in a JSON text, walked value by value.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    /// Walks the object at the cursor: `member` is called with each key as
    /// written (without its quotes; a key with escapes is [`Malformed`])
    /// and the cursor at the member's value, which it must move past
    /// ([`Cursor::value`], [`Cursor::object`] or [`Cursor::array`]).
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&'a str, &mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.entries(b'{', b'}', |cursor| {
            if cursor.peek() != Some(b'"') {
                return Err(Malformed);
            }
            let end = string_end(cursor.bytes(), cursor.pos + 1).ok_or(Malformed)?;
            let key = &cursor.text[cursor.pos + 1..end - 1];
            if key.contains('\\') {
                return Err(Malformed);
            }
            cursor.pos = end;
            cursor.skip_whitespace();
            if cursor.peek() != Some(b':') {
                return Err(Malformed);
            }
            cursor.pos += 1;
            cursor.skip_whitespace();
            member(key, cursor)
        })
    }

    /// Walks the array at the cursor: `element` is called with the cursor
    /// at each element, which it must move past.
    pub(crate) fn array(
        &mut self,
        element: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.entries(b'[', b']', element)
    }

    /// The value at the cursor, exactly as written; the cursor moves past it.
    pub(crate) fn value(&mut self) -> Result<&'a str, Malformed> {
        self.skip_whitespace();
        let end = value_end(self.bytes(), self.pos).ok_or(Malformed)?;
        let value = &self.text[self.pos..end];
        self.pos = end;
        Ok(value)
    }

    /// Checks that only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<(), Malformed> {
        self.skip_whitespace();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// `open`, entries separated by commas (each walked by `entry`), `close`.
    fn entries(
        &mut self,
        open: u8,
        close: u8,
        mut entry: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.skip_whitespace();
        if self.peek() != Some(open) {
            return Err(Malformed);
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            entry(self)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(byte) if byte == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Malformed),
            }
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The byte at the cursor, past any whitespace.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self
            .bytes()
            .get(self.pos)
            .copied()
            .is_some_and(is_whitespace)
        {
            self.pos += 1;
        }
    }
}

// ----- reading as serde would ---------------------------------------------
//
// Building blocks for a provider's walker that must answer exactly as its
// serde types do on the same JSON (and give up, [`Malformed`], where serde
// would refuse, so that serde reports it).

/// Sets a member seen for the first time; a second one is [`Malformed`]
/// (serde refuses a repeated field, and the caller then reports it).
pub(crate) fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), Malformed> {
    match slot {
        Some(_) => Err(Malformed),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// A member's text, or `None` for `null` (as serde reads an `Option`).
pub(crate) fn not_null(text: &str) -> Option<&str> {
    (text != "null").then_some(text)
}

/// A small value read by serde, as it would be inside the whole document.
pub(crate) fn json<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, Malformed> {
    serde_json::from_str(text).map_err(|_| Malformed)
}

/// The text of the member `name` of the object `text`, or `None` when it
/// is missing or `null`.
pub(crate) fn member<'a>(text: &'a str, name: &str) -> Result<Option<&'a str>, Malformed> {
    let mut found = None;
    let mut cursor = Cursor::new(text);
    cursor.object(|key, cursor| {
        let value = cursor.value()?;
        if key == name {
            once(&mut found, not_null(value))?;
        }
        Ok(())
    })?;
    cursor.end()?;
    Ok(found.flatten())
}

/// The JSON array `text`, each element walked by `item`: `Ok(None)` (as
/// serde's `Vec` would fail) when some element is not readable.
pub(crate) fn list<'a, T>(
    text: &'a str,
    mut item: impl FnMut(&mut Cursor<'a>) -> Result<Option<T>, Malformed>,
) -> Result<Option<Vec<T>>, Malformed> {
    let mut cursor = Cursor::new(text);
    if cursor.peek() != Some(b'[') {
        return Err(Malformed);
    }
    let mut items = Some(Vec::new());
    cursor.array(|cursor| {
        let next = item(cursor)?;
        items = items.take().zip(next).map(|(mut items, next)| {
            items.push(next);
            items
        });
        Ok(())
    })?;
    cursor.end()?;
    Ok(items)
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// One past the end of the value that starts at `at`, if it ends.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at + 1),
        b'{' | b'[' => container_end(bytes, at),
        b'}' | b']' | b',' | b':' => None,
        // A number, `true`, `false` or `null`: up to the next delimiter.
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|&byte| {
                    is_whitespace(byte) || matches!(byte, b',' | b'}' | b']' | b':' | b'"')
                })
                .unwrap_or(bytes.len() - at);
            Some(at + len)
        }
    }
}

/// One past the closing quote of the string whose text starts at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        at += 2;
    }
}

/// Bytes classified together.
const BLOCK: usize = 64;

/// One past the bracket that closes the container opening at `open`.
/// Brackets inside strings do not count; escaped quotes do not end them.
///
/// Each block of 64 bytes becomes bit masks (quotes, backslashes, opening
/// and closing brackets); the escaped bytes and the bytes inside strings
/// follow from those with a few integer operations, without a branch per
/// byte, and only the brackets outside strings are then looked at.
fn container_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0u64;
    // Whether the byte before the block is an unescaped backslash, and
    // whether the block starts inside a string (all ones) or not.
    let mut escape_carry = 0u64;
    let mut string_carry = 0u64;
    let mut base = open;
    while base < bytes.len() {
        let masks = Masks::of(&bytes[base..]);
        let escaped = escaped(masks.backslash, &mut escape_carry);
        let quotes = masks.quote & !escaped;
        let in_string = prefix_xor(quotes) ^ string_carry;
        string_carry = 0u64.wrapping_sub(in_string >> 63);
        let opens = masks.open & !in_string;
        // Brackets are few (one or two a block in a pretty-printed reply),
        // so they are taken one by one; counting them would need POPCNT,
        // which a generic x86_64 build cannot assume.
        let mut brackets = opens | (masks.close & !in_string);
        while brackets != 0 {
            let bit = brackets & brackets.wrapping_neg();
            brackets ^= bit;
            if opens & bit != 0 {
                depth += 1;
            } else {
                // `open` is the first byte looked at, so depth >= 1 here.
                depth -= 1;
                if depth == 0 {
                    return Some(base + bit.trailing_zeros() as usize + 1);
                }
            }
        }
        base += BLOCK;
    }
    None
}

/// Bit `i` set when the byte `i` of the block is of that kind.
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

impl Masks {
    /// The masks of `chunk`'s first [`BLOCK`] bytes; past its end, spaces.
    fn of(chunk: &[u8]) -> Self {
        match chunk.first_chunk::<BLOCK>() {
            Some(block) => Masks::of_block(block),
            // Only a document's last block is short.
            None => {
                let mut block = [b' '; BLOCK];
                block[..chunk.len()].copy_from_slice(chunk);
                Masks::of_block(&block)
            }
        }
    }

    fn of_block(block: &[u8; BLOCK]) -> Self {
        let mut masks = Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        let (parts, _) = block.as_chunks::<LANES>();
        for (lane, part) in parts.iter().enumerate() {
            let [quote, backslash, open, close] = lanes(part);
            let shift = lane * LANES;
            masks.quote |= u64::from(quote) << shift;
            masks.backslash |= u64::from(backslash) << shift;
            masks.open |= u64::from(open) << shift;
            masks.close |= u64::from(close) << shift;
        }
        masks
    }
}

/// Bytes compared at once.
const LANES: usize = 16;

/// Quote, backslash, opening and closing bracket masks of 16 bytes.
#[cfg(target_arch = "x86_64")]
fn lanes(part: &[u8; LANES]) -> [u16; 4] {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 CPU, and the load reads the 16
    // bytes of `part`, which need no alignment.
    unsafe {
        let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
        // `[` and `]` are `{` and `}` with bit 5 clear; no other byte is.
        let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let mask = |bytes: __m128i, byte: u8| {
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(byte as i8))) as u16
        };
        [
            mask(v, b'"'),
            mask(v, b'\\'),
            mask(folded, b'{'),
            mask(folded, b'}'),
        ]
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn lanes(part: &[u8; LANES]) -> [u16; 4] {
    let mut masks = [0u16; 4];
    for (i, &byte) in part.iter().enumerate() {
        let kind = match byte {
            b'"' => 0,
            b'\\' => 1,
            b'{' | b'[' => 2,
            b'}' | b']' => 3,
            _ => continue,
        };
        masks[kind] |= 1 << i;
    }
    masks
}

/// The bytes escaped by a backslash (the byte after each odd-length run of
/// backslashes), given the block's backslashes; `carry` says whether the
/// previous block ended in an escaping backslash, and is updated for the
/// next. simdjson's method: runs starting on even and odd bits are told
/// apart by adding to them and watching the carries.
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_starting, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_starting << 1;
    (EVEN ^ invert) & follows_escape
}

/// Bit `i` is the XOR of bits `0..=i`: set inside strings (from an
/// opening quote up to, not including, its closing one).
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member of the object `text` as (key, value text).
    fn members(text: &str) -> Result<Vec<(&str, &str)>, Malformed> {
        let mut cursor = Cursor::new(text);
        let mut out = Vec::new();
        cursor.object(|key, cursor| {
            out.push((key, cursor.value()?));
            Ok(())
        })?;
        cursor.end()?;
        Ok(out)
    }

    fn elements(text: &str) -> Result<Vec<&str>, Malformed> {
        let mut cursor = Cursor::new(text);
        let mut out = Vec::new();
        cursor.array(|cursor| {
            out.push(cursor.value()?);
            Ok(())
        })?;
        cursor.end()?;
        Ok(out)
    }

    #[test]
    fn an_object_is_walked_member_by_member() {
        let text = r#" { "a" : 1 , "b":{"c":[1,2,{"}":"]"}]}, "d" : "x\"}" ,"e":[] , "f": null} "#;
        assert_eq!(
            members(text),
            Ok(vec![
                ("a", "1"),
                ("b", r#"{"c":[1,2,{"}":"]"}]}"#),
                ("d", r#""x\"}""#),
                ("e", "[]"),
                ("f", "null"),
            ])
        );
        assert_eq!(members("{}"), Ok(vec![]));
        assert_eq!(members(" {\n} "), Ok(vec![]));
    }

    #[test]
    fn an_array_is_walked_element_by_element() {
        assert_eq!(
            elements("[1, \"a\" ,{}, [[]] ]"),
            Ok(vec!["1", "\"a\"", "{}", "[[]]"])
        );
        assert_eq!(elements("[]"), Ok(vec![]));
        assert_eq!(elements("[,]"), Err(Malformed));
        assert_eq!(elements("[1,]"), Err(Malformed));
        assert_eq!(elements("[1 2]"), Err(Malformed));
    }

    #[test]
    fn what_cannot_be_followed_is_malformed() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"\u0061":1}"#,
            r#"{"a":"}"#,
            r#"{"a":{"b":"\"}"}"#,
            r#"{"a":[1,2}"#,
            r#"{1:2}"#,
        ] {
            assert_eq!(members(text), Err(Malformed), "{text:?}");
        }
    }

    #[test]
    fn escapes_inside_crossed_strings_are_followed() {
        // A backslash run: even leaves the quote closing, odd escapes it.
        assert_eq!(
            members(r#"{"a":["\\"],"b":["\\\"]"],"c":"\\\\"}"#),
            Ok(vec![
                ("a", r#"["\\"]"#),
                ("b", r#"["\\\"]"]"#),
                ("c", r#""\\\\""#)
            ])
        );
    }

    #[test]
    fn long_values_cross_the_blocks() {
        // Quotes, backslash runs and brackets at every offset around the
        // 16- and 64-byte boundaries, inside and outside strings.
        for pad in 0..140 {
            for run in 0..4 {
                let escapes = "\\".repeat(run * 2);
                let inner = format!(
                    r#"{}"{escapes}\"{{[{escapes}" , {{"k": [1, {{}}, "]"]}}"#,
                    " ".repeat(pad)
                );
                let text = format!(r#"{{"x": [{inner}], "y": 2}}"#);
                assert_eq!(
                    members(&text),
                    Ok(vec![("x", format!("[{inner}]").as_str()), ("y", "2")]),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn escaped_bytes_follow_odd_backslash_runs_across_blocks() {
        let mut carry = 0;
        // One backslash at bit 63 escapes bit 0 of the next block.
        assert_eq!(escaped(1 << 63, &mut carry), 0);
        assert_eq!(carry, 1);
        assert_eq!(escaped(0, &mut carry), 1);
        assert_eq!(carry, 0);
        // Runs of one, two and three at bits 0, 4 and 8: the byte after
        // each backslash that is not itself escaped.
        let runs = 0b1 | 0b11 << 4 | 0b111 << 8;
        assert_eq!(
            escaped(runs, &mut carry),
            1 << 1 | 1 << 5 | 1 << 9 | 1 << 11
        );
        assert_eq!(prefix_xor(1 << 2 | 1 << 5), 0b11100);
    }
}
