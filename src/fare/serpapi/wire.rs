//! SerpApi's Google Flights JSON: only the fields farewatch reads, private to this provider.
//!
//! A reply carries far more than an alert needs (legs, layovers, emissions,
//! airports); everything but the prices, `price_insights`, the Google
//! Flights link and the echoed currency is skipped unread.
//!
//! Reading is strict where a wrong value would mislead (an itinerary's
//! `price` that is present but not a number fails the reply) and lenient
//! where it would only cost context: a malformed `price_insights` field, link
//! or history point is dropped, never a reason to lose the quote.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use crate::fare::FareError;

/// Longest excerpt of an unreadable body that goes into an error message.
const EXCERPT_CHARS: usize = 200;

/// Longest message taken from a readable error body; SerpApi's are one line.
const MESSAGE_CHARS: usize = 500;

// ----- success path -------------------------------------------------------

/// `GET /search.json?engine=google_flights` reply.
#[derive(Deserialize)]
pub(super) struct SearchReply {
    /// Present (with HTTP 200) when Google Flights found nothing.
    #[serde(default)]
    pub(super) error: Option<Lenient<String>>,
    #[serde(default)]
    pub(super) search_metadata: Option<Lenient<Metadata>>,
    #[serde(default)]
    pub(super) search_parameters: Option<Lenient<Parameters>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) best_flights: Vec<Itinerary>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) other_flights: Vec<Itinerary>,
    #[serde(default)]
    pub(super) price_insights: Option<Lenient<Insights>>,
}

/// `search_metadata`; only the link to the same search on Google Flights is read.
#[derive(Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub(super) google_flights_url: Option<Lenient<String>>,
}

/// `search_parameters`, SerpApi's echo of the request. Its numbers may come
/// back as strings (`"type": "1"`), so only the currency is read.
#[derive(Deserialize)]
pub(super) struct Parameters {
    #[serde(default)]
    pub(super) currency: Option<Lenient<String>>,
}

/// One entry of `best_flights` or `other_flights`.
#[derive(Deserialize)]
pub(super) struct Itinerary {
    /// The whole trip's price (round-trip total for `type=1`); sometimes
    /// absent, which means "no price", never zero.
    #[serde(default)]
    pub(super) price: Option<Amount>,
}

/// `price_insights`: Google's verdict on the price. Every field is optional
/// and dropped if malformed.
#[derive(Deserialize)]
pub(super) struct Insights {
    #[serde(default)]
    pub(super) lowest_price: Option<Lenient<Amount>>,
    /// `"low"`, `"typical"` or `"high"`.
    #[serde(default)]
    pub(super) price_level: Option<Lenient<String>>,
    /// `[low, high]`.
    #[serde(default)]
    pub(super) typical_price_range: Option<Lenient<(Amount, Amount)>>,
    /// `[[unix_seconds, price], ...]`, oldest first.
    #[serde(default)]
    pub(super) price_history: Option<Lenient<Vec<HistoryPoint>>>,
}

/// One `[unix_seconds, price]` point of `price_history`; a malformed point
/// is dropped on its own.
pub(super) type HistoryPoint = Lenient<(i64, Amount)>;

/// A value that is kept when it has the expected shape and dropped
/// otherwise, instead of failing the whole reply.
///
/// Untagged, so serde buffers the value to try it; only used for small
/// fields (`price_insights` is the largest, about 2 KB).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Lenient<T> {
    Valid(T),
    Invalid(IgnoredAny),
}

impl<T> Lenient<T> {
    pub(super) fn valid(self) -> Option<T> {
        match self {
            Lenient::Valid(value) => Some(value),
            Lenient::Invalid(_) => None,
        }
    }
}

/// A price: a JSON number (SerpApi sends integers) or, to be lenient, a
/// numeric string. Kept as a decimal so a fraction is never lost to `f64`
/// arithmetic later.
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

/// `null` or a missing key as an empty list.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

// ----- error path ---------------------------------------------------------

/// SerpApi's one error shape: `{"error": "human-readable message"}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<Lenient<String>>,
}

/// One line for a person from an error reply: SerpApi's message, or a
/// short, sanitised excerpt of a body that could not be read. `secrets`
/// are replaced wherever the body quotes them.
pub(super) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    match serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|parsed| parsed.error)
        .and_then(Lenient::valid)
    {
        Some(message) if !message.trim().is_empty() => {
            clean(&redact(&message, secrets), MESSAGE_CHARS)
        }
        _ => format!("unrecognised error body: {}", excerpt(body, secrets)),
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
/// The API key travels in the query string, so a proxy or an error page
/// echoing the request URL would quote it; these messages end up in logs.
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
        "search reply: expected JSON, got `{}`: {}",
        clean(content_type, 100),
        excerpt(body, secrets)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> Result<Amount, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn amounts_are_numbers_or_numeric_strings() {
        assert_eq!(amount("920").unwrap().0, Decimal::from(920));
        assert_eq!(amount("-3").unwrap().0, Decimal::from(-3));
        assert_eq!(amount("612.5").unwrap().0, Decimal::new(6125, 1));
        assert_eq!(amount("\" 612.50 \"").unwrap().0, Decimal::new(61250, 2));
        assert!(amount("\"$920\"").is_err());
        assert!(amount("true").is_err());
    }

    #[test]
    fn malformed_insights_fields_are_dropped_one_by_one() {
        let insights: Insights = serde_json::from_str(
            r#"{"lowest_price":"n/a","price_level":"low","typical_price_range":[1],
                "price_history":[[1746374400,956],["x",1],[1746460800,950]]}"#,
        )
        .unwrap();
        assert!(insights.lowest_price.unwrap().valid().is_none());
        assert_eq!(insights.price_level.unwrap().valid().unwrap(), "low");
        assert!(insights.typical_price_range.unwrap().valid().is_none());
        let history = insights.price_history.unwrap().valid().unwrap();
        let points: Vec<_> = history.into_iter().filter_map(Lenient::valid).collect();
        assert_eq!(points.len(), 2);
    }

    #[test]
    fn error_messages_are_read_or_excerpted_and_redacted() {
        assert_eq!(
            error_message(br#"{"error":"Invalid API key for KEY123."}"#, &["KEY123"]),
            "Invalid API key for [REDACTED]."
        );
        assert_eq!(
            error_message(b"<html>\n<p>KEY123</p>", &["KEY123"]),
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
        assert_eq!(
            error_message(b"", &[]),
            "unrecognised error body: (empty body)"
        );
    }

    #[test]
    fn only_json_content_types_pass() {
        assert!(ensure_json(Some("application/json; charset=utf-8"), b"{}", &[]).is_ok());
        assert!(ensure_json(None, b"{}", &[]).is_ok());
        let err = ensure_json(Some("text/html"), b"<html>", &[]).unwrap_err();
        assert_eq!(
            err,
            FareError::Decode("search reply: expected JSON, got `text/html`: <html>".to_owned())
        );
    }
}
