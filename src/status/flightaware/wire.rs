//! FlightAware AeroAPI v4 JSON (`GET /flights/{ident}`): only the fields
//! farewatch reads, private to this provider.
//!
//! The spec marks every `Flight` field `required` but most are nullable, and
//! the 401/429 bodies are not in the spec at all. So every field of a flight
//! is optional and read leniently: a field of the wrong type is dropped on
//! its own, and a `flights[]` entry that is not an object is dropped on its
//! own. Only the envelope is strict: a 2xx body must be an object with a
//! `flights` array.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
pub(super) use crate::upstream::wire::{present, text, Lenient, Text};

/// Longest error `reason` kept from a body (`INVALID_ARGUMENT`, ...).
const CODE_CHARS: usize = 40;

// ----- success path -------------------------------------------------------

/// `GET /flights/{ident}` reply: `{links, num_pages, flights}`.
#[derive(Deserialize)]
pub(super) struct FlightsReply {
    /// `None` when missing; `Some(None)` when `null`.
    #[serde(default, deserialize_with = "present")]
    pub(super) flights: Option<Option<Vec<Lenient<Flight>>>>,
    /// `{"next": "<uri>"}` when there are more pages; read only to log it.
    #[serde(default)]
    pub(super) links: Option<Lenient<Links>>,
}

/// `links`.
#[derive(Deserialize)]
pub(super) struct Links {
    #[serde(default)]
    pub(super) next: Option<Lenient<Text>>,
}

/// One `flights[]` entry; times are true UTC instants (`…Z`).
#[derive(Deserialize)]
pub(super) struct Flight {
    #[serde(default)]
    pub(super) ident: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) ident_icao: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) ident_iata: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) operator: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) operator_icao: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) operator_iata: Option<Lenient<Text>>,
    /// IATA designators the flight is also sold under (`["SQ7361"]`); the
    /// record itself is the operating flight.
    #[serde(default)]
    pub(super) codeshares_iata: Option<Lenient<Vec<Lenient<Text>>>>,
    /// "No longer tracked by FlightAware": an airline cancellation is one
    /// cause, not the only one.
    #[serde(default)]
    pub(super) cancelled: Option<Lenient<bool>>,
    #[serde(default)]
    pub(super) diverted: Option<Lenient<bool>>,
    #[serde(default)]
    pub(super) origin: Option<Lenient<Airport>>,
    #[serde(default)]
    pub(super) destination: Option<Lenient<Airport>>,
    /// Seconds late (negative: early), gate-based, else runway-based.
    #[serde(default)]
    pub(super) departure_delay: Option<Lenient<Seconds>>,
    #[serde(default)]
    pub(super) arrival_delay: Option<Lenient<Seconds>>,
    /// Free text ("Scheduled", "En Route / Delayed", "Arrived / Gate Arrival").
    #[serde(default)]
    pub(super) status: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) gate_origin: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) gate_destination: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) terminal_origin: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) terminal_destination: Option<Lenient<Text>>,
    /// Gate departure (out), runway departure (off), runway arrival (on),
    /// gate arrival (in).
    #[serde(default)]
    pub(super) scheduled_out: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) estimated_out: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) actual_out: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) scheduled_off: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) estimated_off: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) actual_off: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) scheduled_on: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) estimated_on: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) actual_on: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) scheduled_in: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) estimated_in: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) actual_in: Option<Lenient<Text>>,
}

/// `origin` or `destination`.
#[derive(Deserialize)]
pub(super) struct Airport {
    #[serde(default)]
    pub(super) code_icao: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) code_iata: Option<Lenient<Text>>,
    /// IANA zone name, used for the local departure date.
    #[serde(default)]
    pub(super) timezone: Option<Lenient<Text>>,
}

/// A duration in whole seconds: an integer, or a float (rounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seconds(pub(super) i64);

/// No real delay is anywhere near this (about 11 days); larger values are garbage.
const MAX_SECONDS: f64 = 1e6;

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v.abs() < MAX_SECONDS {
                    // In range, so the cast is exact after rounding.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Seconds(v.round() as i64))
                } else {
                    Err(E::custom("delay out of range"))
                }
            }
        }
        deserializer.deserialize_any(SecondsVisitor)
    }
}

// ----- error path ---------------------------------------------------------

/// AeroAPI's `Error`: `{title, reason, detail, status}`. `status` is not
/// read: the HTTP status is authoritative.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    title: Option<Lenient<Text>>,
    #[serde(default)]
    reason: Option<Lenient<Text>>,
    #[serde(default)]
    detail: Option<Lenient<Text>>,
}

/// What an error reply says, cleaned for a person and with secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ErrorSummary {
    /// AeroAPI's `reason` (`INVALID_ARGUMENT`), when sent.
    pub(super) code: Option<String>,
    /// `title: detail`, or an excerpt of a body that could not be read.
    pub(super) message: String,
}

/// The error in a non-2xx body: AeroAPI's `{title, reason, detail}`, or a
/// short, sanitised excerpt of a body that could not be read.
pub(super) fn summarize_error(body: &[u8], secrets: &[&str]) -> ErrorSummary {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let (title, reason, detail) = match parsed {
        Some(body) => (text(body.title), text(body.reason), text(body.detail)),
        None => (None, None, None),
    };
    let message = match (title, detail) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => {
            return ErrorSummary {
                code: reason.map(|r| one_line(&r, secrets, CODE_CHARS)),
                message: unrecognised_error_body(body, secrets),
            }
        }
    };
    ErrorSummary {
        code: reason.map(|r| one_line(&r, secrets, CODE_CHARS)),
        message: one_line(&message, secrets, MESSAGE_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(json: &str) -> Option<i64> {
        serde_json::from_str::<Seconds>(json).ok().map(|s| s.0)
    }

    #[test]
    fn seconds_are_integers_or_rounded_floats() {
        assert_eq!(seconds("2820"), Some(2820));
        assert_eq!(seconds("-420"), Some(-420));
        assert_eq!(seconds("59.6"), Some(60));
        assert_eq!(seconds("\"60\""), None);
        assert_eq!(seconds("1e300"), None);
    }

    #[test]
    fn error_bodies_are_read_or_excerpted_and_redacted() {
        let summary = summarize_error(
            br#"{"title":"Invalid argument","reason":"INVALID_ARGUMENT","detail":"start: too early","status":400}"#,
            &[],
        );
        assert_eq!(summary.code.as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(summary.message, "Invalid argument: start: too early");

        let summary = summarize_error(br#"{"detail":"key KEY123 unknown"}"#, &["KEY123"]);
        assert_eq!(summary.message, "key [REDACTED] unknown");

        let summary = summarize_error(b"<html>KEY123</html>", &["KEY123"]);
        assert_eq!(
            summary.message,
            "unrecognised error body: <html>[REDACTED]</html>"
        );
        assert_eq!(
            summarize_error(b"", &[]).message,
            "unrecognised error body: (empty body)"
        );
    }

    #[test]
    fn a_malformed_field_is_dropped_alone() {
        let flight: Flight = serde_json::from_str(
            r#"{"cancelled":"yes","departure_delay":"soon","gate_origin":12,"status":null}"#,
        )
        .unwrap();
        assert!(flight.cancelled.unwrap().valid().is_none());
        assert!(flight.departure_delay.unwrap().valid().is_none());
        assert_eq!(text(flight.gate_origin).as_deref(), Some("12"));
        assert_eq!(text(flight.status), None);
    }
}
