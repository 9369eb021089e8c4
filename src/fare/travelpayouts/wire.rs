//! Travelpayouts' (Aviasales Data API v3) JSON: only the fields farewatch
//! reads, private to this provider.
//!
//! Every reply, success or failure, comes in one envelope:
//! `{"success": bool, "data": [...] | {}, "currency": "usd", "error": "..."}`.
//! `data` is a list of cached prices on success and an empty object on
//! failure, so it is read by hand rather than as a plain `Vec`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::fare::FareError;

/// Longest excerpt of an unreadable body that goes into an error message.
const EXCERPT_CHARS: usize = 200;

/// Longest message taken from a readable error body.
const MESSAGE_CHARS: usize = 500;

// ----- success path -------------------------------------------------------

/// `GET /aviasales/v3/prices_for_dates` reply.
#[derive(Deserialize)]
pub(super) struct Envelope {
    /// `false` when the request was refused; missing counts as `true`
    /// (judged by `data` and the HTTP status instead).
    #[serde(default)]
    pub(super) success: Option<bool>,
    #[serde(default)]
    pub(super) data: Items,
    /// The prices' currency, lower case (`"usd"`).
    #[serde(default)]
    pub(super) currency: Option<String>,
    /// A short description when `success` is `false`.
    #[serde(default)]
    pub(super) error: Option<ErrorText>,
}

/// `data`: the price list, or nothing (`{}`, `null` or missing) on failure.
#[derive(Default)]
pub(super) struct Items(pub(super) Vec<Item>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of prices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Items::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::default())
            }
        }
        deserializer.deserialize_any(ItemsVisitor)
    }
}

/// One cached price; routes, airlines, flight numbers and durations are skipped.
#[derive(Deserialize)]
pub(super) struct Item {
    /// For all of the trip, one passenger, in the envelope's currency.
    pub(super) price: Amount,
    /// ISO 8601 with the departure airport's real local offset
    /// (`2025-05-02T17:00:00+03:00`).
    pub(super) departure_at: String,
    /// Like `departure_at`; missing or `""` on one-way prices.
    #[serde(default)]
    pub(super) return_at: Option<String>,
    /// Relative to `https://www.aviasales.com` (`/search/SVO0205LED1?t=...`).
    #[serde(default)]
    pub(super) link: Option<String>,
    /// When the price was found. Not in the documented v3 `prices_for_dates`
    /// item (other Data API endpoints have it); read if it ever appears.
    #[serde(default)]
    pub(super) found_at: Option<String>,
}

/// A price: a JSON number (Travelpayouts sends integers) or, to be lenient,
/// a numeric string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Amount(pub(super) Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price (a number)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Decimal::try_from(v)
                    .map(Amount)
                    .map_err(|_| E::custom(format!("price {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Decimal::from_str(v.trim())
                    .map(Amount)
                    .map_err(|_| E::custom(format!("price `{v}` is not a number")))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// `error`: a string in the documented envelope; anything else is kept as
/// "no description" rather than failing the reply.
pub(super) struct ErrorText(pub(super) Option<String>);

impl<'de> Deserialize<'de> for ErrorText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ErrorVisitor;
        impl<'de> Visitor<'de> for ErrorVisitor {
            type Value = ErrorText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error description")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ErrorText(Some(v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ErrorText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ErrorText(None))
            }
        }
        deserializer.deserialize_any(ErrorVisitor)
    }
}

// ----- error path ---------------------------------------------------------

/// The error envelope, plus `message`, which API gateways tend to use.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorText>,
    #[serde(default)]
    message: Option<ErrorText>,
}

/// One line for a person from an error reply: its `error` (or `message`),
/// or a short, sanitised excerpt of a body that could not be read.
/// `secrets` are replaced wherever the body quotes them.
pub(super) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    let described = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|parsed| {
            let error = parsed.error.and_then(|e| e.0);
            error.or_else(|| parsed.message.and_then(|m| m.0))
        })
        .filter(|message| !message.trim().is_empty());
    match described {
        Some(message) => clean(&redact(&message, secrets), MESSAGE_CHARS),
        None => format!("unrecognised error body: {}", excerpt(body, secrets)),
    }
}

/// A short, single-line, printable excerpt of a body for error messages,
/// with `secrets` replaced.
pub(super) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "(empty body)".to_owned();
    }
    // Enough bytes for EXCERPT_CHARS characters even if all are 4-byte UTF-8,
    // plus room for a secret straddling the cut, so it is still recognised.
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let head = &body[..body.len().min(EXCERPT_CHARS * 4 + longest)];
    clean(
        &redact(&String::from_utf8_lossy(head), secrets),
        EXCERPT_CHARS,
    )
}

/// Replaces every non-empty `secrets` entry in `text` with `[REDACTED]`.
///
/// The token only travels in a header, but a misbehaving proxy might echo
/// the request, and these messages end up in logs and reports.
pub(super) fn redact<'t>(text: &'t str, secrets: &[&str]) -> Cow<'t, str> {
    let mut text = Cow::Borrowed(text);
    for secret in secrets {
        // An empty needle would match between every character.
        if !secret.is_empty() && text.contains(secret) {
            text = Cow::Owned(text.replace(secret, "[REDACTED]"));
        }
    }
    text
}

/// Collapses whitespace and control characters to single spaces, drops
/// characters that could reorder or hide text in a terminal, and truncates
/// to `max_chars` with an ellipsis.
fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0;
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() || ch.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if is_invisible(ch) {
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if chars + needed > max_chars {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(ch);
        chars += needed;
    }
    out
}

/// Zero-width, bidirectional-override and replacement characters.
fn is_invisible(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFFD}')
}

/// Refuses a reply whose `Content-Type` is not JSON, saying what arrived.
/// A missing header is left to the JSON parser to judge.
pub(super) fn ensure_json(
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> Result<(), FareError> {
    let Some(content_type) = content_type else {
        return Ok(());
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" || media_type.ends_with("+json") {
        return Ok(());
    }
    Err(FareError::Decode(format!(
        "prices reply: expected JSON, got `{}`: {}",
        clean(content_type, 100),
        excerpt(body, secrets)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_may_be_a_list_an_empty_object_or_missing() {
        let ok: Envelope = serde_json::from_str(
            r#"{"success":true,"data":[{"price":4213,"departure_at":"2025-05-02T17:00:00+03:00"}],"currency":"rub"}"#,
        )
        .unwrap();
        assert_eq!(ok.data.0.len(), 1);
        assert_eq!(ok.data.0[0].price.0, Decimal::from(4213));
        assert!(ok.data.0[0].return_at.is_none());
        let refused: Envelope =
            serde_json::from_str(r#"{"success":false,"data":{},"error":"Unauthorized"}"#).unwrap();
        assert_eq!(refused.success, Some(false));
        assert!(refused.data.0.is_empty());
        assert_eq!(refused.error.unwrap().0.as_deref(), Some("Unauthorized"));
        let bare: Envelope = serde_json::from_str(r#"{"data":null,"error":{"x":1}}"#).unwrap();
        assert!(bare.data.0.is_empty());
        assert!(bare.error.unwrap().0.is_none());
    }

    #[test]
    fn a_malformed_price_fails_the_reply() {
        let bad = serde_json::from_str::<Envelope>(
            r#"{"data":[{"price":"cheap","departure_at":"2025-05-02T17:00:00+03:00"}]}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn error_messages_are_read_or_excerpted_and_redacted() {
        assert_eq!(
            error_message(
                br#"{"success":false,"data":{},"error":"bad TOK"}"#,
                &["TOK"]
            ),
            "bad [REDACTED]"
        );
        assert_eq!(
            error_message(br#"{"message":"API rate limit exceeded"}"#, &[]),
            "API rate limit exceeded"
        );
        assert_eq!(
            error_message(b"<html>\n<p>TOK</p>", &["TOK"]),
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
    }

    #[test]
    fn only_json_content_types_pass() {
        assert!(ensure_json(Some("application/json; charset=utf-8"), b"{}", &[]).is_ok());
        assert!(ensure_json(None, b"{}", &[]).is_ok());
        assert!(ensure_json(Some("text/html"), b"<html>", &[]).is_err());
    }
}
