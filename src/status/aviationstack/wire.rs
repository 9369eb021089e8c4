//! Aviationstack's `/v1/flights` JSON: only the fields farewatch reads,
//! private to this provider.
//!
//! Real replies are loose: most strings may be `null`, `aircraft` and `live`
//! usually are, `delay` is `null` rather than `0`, and codeshare values come
//! in lower case. So every field of a flight is optional and read
//! leniently: a field of the wrong type is dropped on its own, never a
//! reason to lose the flight, and a `data[]` entry that is not an object at
//! all is dropped on its own, never a reason to lose the reply. Only the
//! envelope is strict: a 2xx body must be a JSON object with either `data`
//! (an array) or `error`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
pub(super) use crate::upstream::wire::{present, text, Lenient, Text};

/// Longest error `code` kept from a body. The documented codes are at most
/// 26 characters (`function_access_restricted`); anything longer is cut so
/// it cannot flood a message.
const CODE_CHARS: usize = 40;

// ----- success path -------------------------------------------------------

/// `GET /v1/flights` reply: `{pagination, data}`, or `{error}` (possibly
/// with HTTP 200).
#[derive(Deserialize)]
pub(super) struct FlightsReply {
    /// Present when the request failed, whatever the HTTP status said.
    #[serde(default)]
    pub(super) error: Option<Lenient<ApiError>>,
    /// `None` when the key is missing; `Some(None)` when it is `null`.
    #[serde(default, deserialize_with = "present")]
    pub(super) data: Option<Option<Vec<Lenient<Flight>>>>,
    #[serde(default)]
    pub(super) pagination: Option<Lenient<Pagination>>,
}

/// `pagination`; read only to say in the logs that a reply was cut short.
#[derive(Deserialize)]
pub(super) struct Pagination {
    #[serde(default)]
    pub(super) count: Option<Lenient<u64>>,
    #[serde(default)]
    pub(super) total: Option<Lenient<u64>>,
}

/// One `data[]` entry.
#[derive(Deserialize)]
pub(super) struct Flight {
    /// `YYYY-MM-DD`, the local departure date.
    #[serde(default)]
    pub(super) flight_date: Option<Lenient<Text>>,
    /// `scheduled`, `active`, `landed`, `cancelled`, `incident`, `diverted`
    /// (and `unknown` in practice).
    #[serde(default)]
    pub(super) flight_status: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) departure: Option<Lenient<Place>>,
    #[serde(default)]
    pub(super) arrival: Option<Lenient<Place>>,
    #[serde(default)]
    pub(super) airline: Option<Lenient<Airline>>,
    #[serde(default)]
    pub(super) flight: Option<Lenient<Designators>>,
}

/// `departure` or `arrival`. Times are local wall-clock times labelled with
/// a false `+00:00`: in `tests/fixtures/status/aviationstack-flights-TR428-compact.json`
/// a Singapore departure at 20:25 local time is sent as `20:25:00+00:00`.
#[derive(Deserialize)]
pub(super) struct Place {
    /// IANA zone name (`Asia/Singapore`, sent as `Asia\/Singapore`).
    #[serde(default)]
    pub(super) timezone: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) iata: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) icao: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) terminal: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) gate: Option<Lenient<Text>>,
    /// Minutes late; often `null` rather than `0`.
    #[serde(default)]
    pub(super) delay: Option<Lenient<Minutes>>,
    #[serde(default)]
    pub(super) scheduled: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) estimated: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) actual: Option<Lenient<Text>>,
}

/// `airline`.
#[derive(Deserialize)]
pub(super) struct Airline {
    #[serde(default)]
    pub(super) name: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) iata: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) icao: Option<Lenient<Text>>,
}

/// `flight`.
#[derive(Deserialize)]
pub(super) struct Designators {
    #[serde(default)]
    pub(super) iata: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) icao: Option<Lenient<Text>>,
    /// Set on a marketing (codeshare) entry: the *operating* flight, in
    /// lower case (`"flight_iata": "sc4951"`).
    #[serde(default)]
    pub(super) codeshared: Option<Lenient<Codeshared>>,
}

/// `flight.codeshared`: the operating flight of a codeshare entry.
#[derive(Deserialize)]
pub(super) struct Codeshared {
    #[serde(default)]
    pub(super) flight_iata: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) flight_icao: Option<Lenient<Text>>,
}

/// A delay in whole minutes: a JSON integer, a float (rounded) or a numeric
/// string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Minutes(pub(super) i64);

/// No real delay is anywhere near this; larger values are garbage.
const MAX_MINUTES: f64 = 1e6;

impl<'de> Deserialize<'de> for Minutes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MinutesVisitor;
        impl Visitor<'_> for MinutesVisitor {
            type Value = Minutes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of minutes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(Minutes)
                    .map_err(|_| E::custom("delay out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Minutes(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v.abs() < MAX_MINUTES {
                    // In range, so the cast is exact after rounding.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Minutes(v.round() as i64))
                } else {
                    Err(E::custom("delay out of range"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let v = v.trim();
                if let Ok(n) = i64::from_str(v) {
                    return Ok(Minutes(n));
                }
                f64::from_str(v)
                    .map_err(|_| E::custom("delay is not a number"))
                    .and_then(|f| self.visit_f64(f))
            }
        }
        deserializer.deserialize_any(MinutesVisitor)
    }
}

// ----- error path ---------------------------------------------------------

/// `{"error": {"code", "message", "context"}}`.
#[derive(Deserialize)]
pub(super) struct ApiError {
    #[serde(default)]
    code: Option<Lenient<Text>>,
    #[serde(default)]
    message: Option<Lenient<Text>>,
    /// `validation_error` only: `{param: [{key, message}]}`.
    #[serde(default)]
    context: Option<Lenient<serde_json::Map<String, serde_json::Value>>>,
}

/// Only used to find an `error` object in a non-2xx body.
#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<Lenient<ApiError>>,
}

/// What an error reply says, cleaned for a person and with secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ErrorSummary {
    /// Aviationstack's `error.code` (`usage_limit_reached`), when sent.
    pub(super) code: Option<String>,
    /// The message, with validation details appended, or an excerpt of a
    /// body that could not be read.
    pub(super) message: String,
}

impl ApiError {
    /// The summary of an `error` object found in a reply.
    pub(super) fn summarize(self, secrets: &[&str]) -> ErrorSummary {
        let code = text(self.code).map(|c| one_line(&c, secrets, CODE_CHARS));
        let mut message = text(self.message).unwrap_or_default();
        let details = self
            .context
            .and_then(Lenient::valid)
            .map(|context| describe_context(&context))
            .unwrap_or_default();
        if !details.is_empty() {
            if message.is_empty() {
                message = details;
            } else {
                message = format!("{message} ({details})");
            }
        }
        if message.is_empty() {
            message = "(no message)".to_owned();
        }
        ErrorSummary {
            code,
            message: one_line(&message, secrets, MESSAGE_CHARS),
        }
    }
}

/// `{"flight_date":[{"key":…,"message":"…"}]}` as
/// `flight_date: The flight date must be …`.
fn describe_context(context: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut parts = Vec::new();
    for (param, issues) in context {
        let messages: Vec<&str> = match issues {
            serde_json::Value::Array(issues) => issues
                .iter()
                .filter_map(|issue| {
                    issue
                        .get("message")
                        .or_else(|| issue.get("key"))
                        .and_then(serde_json::Value::as_str)
                })
                .collect(),
            serde_json::Value::String(message) => vec![message.as_str()],
            _ => Vec::new(),
        };
        if messages.is_empty() {
            parts.push(param.clone());
        } else {
            parts.push(format!("{param}: {}", messages.join("; ")));
        }
    }
    parts.join(", ")
}

/// The error in a non-2xx body: Aviationstack's own `error` object, or a
/// short, sanitised excerpt of a body that could not be read.
pub(super) fn summarize_error(body: &[u8], secrets: &[&str]) -> ErrorSummary {
    match serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|envelope| envelope.error)
        .and_then(Lenient::valid)
    {
        Some(error) => error.summarize(secrets),
        None => ErrorSummary {
            code: None,
            message: unrecognised_error_body(body, secrets),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::reply::ensure_json;

    fn minutes(json: &str) -> Option<i64> {
        serde_json::from_str::<Minutes>(json).ok().map(|m| m.0)
    }

    #[test]
    fn minutes_are_lenient_numbers() {
        assert_eq!(minutes("13"), Some(13));
        assert_eq!(minutes("-4"), Some(-4));
        assert_eq!(minutes("12.6"), Some(13));
        assert_eq!(minutes("\" 7 \""), Some(7));
        assert_eq!(minutes("\"soon\""), None);
        assert_eq!(minutes("1e300"), None);
        assert_eq!(minutes("true"), None);
    }

    #[test]
    fn a_malformed_field_is_dropped_alone() {
        let place: Place = serde_json::from_str(
            r#"{"timezone":"Asia\/Singapore","gate":12,"terminal":["1"],"delay":"n/a","iata":"  "}"#,
        )
        .unwrap();
        assert_eq!(text(place.timezone).as_deref(), Some("Asia/Singapore"));
        assert_eq!(text(place.gate).as_deref(), Some("12"));
        assert_eq!(text(place.terminal), None);
        assert!(place.delay.unwrap().valid().is_none());
        assert_eq!(text(place.iata), None);
    }

    #[test]
    fn missing_and_null_data_differ() {
        let missing: FlightsReply = serde_json::from_str("{}").unwrap();
        assert!(missing.data.is_none());
        let null: FlightsReply = serde_json::from_str(r#"{"data":null}"#).unwrap();
        assert!(matches!(null.data, Some(None)));
    }

    #[test]
    fn validation_context_is_spelled_out() {
        let summary = summarize_error(
            br#"{"error":{"code":"validation_error","message":"Request failed with validation error",
                "context":{"flight_date":[{"key":"invalid_flight_date","message":"The flight date must be in a YYYY-MM-DD format."}]}}}"#,
            &[],
        );
        assert_eq!(summary.code.as_deref(), Some("validation_error"));
        assert_eq!(
            summary.message,
            "Request failed with validation error (flight_date: The flight date must be in a YYYY-MM-DD format.)"
        );
    }

    #[test]
    fn error_bodies_are_read_or_excerpted_and_redacted() {
        let summary = summarize_error(
            br#"{"error":{"code":"invalid_access_key","message":"bad key KEY123"}}"#,
            &["KEY123"],
        );
        assert_eq!(summary.message, "bad key [REDACTED]");
        let summary = summarize_error(b"<html>\n<p>KEY123</p>", &["KEY123"]);
        assert_eq!(summary.code, None);
        assert_eq!(
            summary.message,
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
        assert_eq!(
            summarize_error(b"", &[]).message,
            "unrecognised error body: (empty body)"
        );
    }

    #[test]
    fn only_json_content_types_pass() {
        // The check is `reply`'s; these are the cases Aviationstack sends.
        let ensure_json =
            |content_type, body| ensure_json(content_type, body, "flights reply", &[]);
        assert!(ensure_json(Some("application/json; Charset=UTF-8"), b"{}").is_ok());
        assert!(ensure_json(None, b"{}").is_ok());
        assert!(ensure_json(Some("text/html"), b"<html>").is_err());
    }
}
