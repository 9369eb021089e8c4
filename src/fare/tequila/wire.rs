//! Kiwi Tequila's JSON: the fields farewatch reads from `/v2/search`,
//! private to this provider.
//!
//! Tequila's own documentation sits behind a partner login, so every shape
//! here is lenient: optional where public captures could plausibly omit a
//! field, and the error bodies (never published) are read by trying the
//! usual keys, falling back to an excerpt.

use jiff::civil::DateTime;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
use crate::upstream::wire::{Amount, Lenient, Text};

// ----- success path -------------------------------------------------------

/// `/v2/search` reply; `search_id`, `fx_rate` and `_results` are skipped.
#[derive(Deserialize)]
pub(super) struct SearchReply {
    /// The currency of every `price`: the `curr` that was asked for.
    #[serde(default)]
    pub(super) currency: Option<String>,
    pub(super) data: Vec<Itinerary>,
}

/// One itinerary (one-way, or both legs of a return trip). Of the `route`
/// segments only the airline and direction are read; bags, fares and the
/// rest are skipped unread.
#[derive(Deserialize)]
pub(super) struct Itinerary {
    /// What the traveller pays, in the reply's currency.
    #[serde(default)]
    pub(super) price: Option<Amount>,
    /// `https://www.kiwi.com/deep?…&booking_token=…`: where to book it.
    #[serde(default)]
    pub(super) deep_link: Option<String>,
    /// The outbound departure as a true UTC instant (`…T16:25:00.000Z`).
    #[serde(default)]
    pub(super) utc_departure: Option<String>,
    /// The outbound departure in the airport's wall-clock time, carrying a
    /// **false** `Z`: `17:25:00.000Z` is 17:25 in Paris, not in UTC.
    #[serde(default)]
    pub(super) local_departure: Option<String>,
    #[serde(default, rename = "flyFrom")]
    pub(super) fly_from: Option<String>,
    #[serde(default, rename = "flyTo")]
    pub(super) fly_to: Option<String>,
    /// A ticket to a farther city, abandoned at the connection.
    #[serde(default)]
    pub(super) hidden_city_ticketing: Option<bool>,
    /// A return ticket whose return leg is thrown away.
    #[serde(default)]
    pub(super) throw_away_ticketing: Option<bool>,
    /// The flights, outbound then return (`return` 0 or 1). Malformed, the
    /// flights are unknown, not the price.
    #[serde(default)]
    pub(super) route: Option<Lenient<Vec<Lenient<Segment>>>>,
    /// Travel times in seconds: `{departure, return, total}`.
    #[serde(default)]
    pub(super) duration: Option<Lenient<Durations>>,
}

/// One flight of an itinerary's `route`.
#[derive(Deserialize)]
pub(super) struct Segment {
    /// The marketing airline's IATA code (`"FI"`).
    #[serde(default)]
    pub(super) airline: Option<Lenient<Text>>,
    /// 0 on the outbound, 1 on the return.
    #[serde(default, rename = "return")]
    pub(super) return_leg: Option<Lenient<u8>>,
}

impl Segment {
    /// Whether the flight belongs to the return; `None` when unknown.
    fn is_return(&self) -> Option<bool> {
        match self.return_leg.as_ref()?.as_valid()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// The airline's code, if there is one.
    pub(super) fn airline(&self) -> Option<&str> {
        let Text(code) = self.airline.as_ref()?.as_valid()?;
        Some(code)
    }
}

/// `duration`: seconds of travel on each direction.
#[derive(Deserialize)]
pub(super) struct Durations {
    /// The outbound, first departure to last arrival.
    #[serde(default)]
    pub(super) departure: Option<Lenient<u64>>,
}

impl Itinerary {
    /// Whether this fare relies on not flying part of the ticket, which an
    /// ordinary traveller cannot use (no checked bags, no return leg).
    pub(super) fn is_skiplagged(&self) -> bool {
        self.hidden_city_ticketing == Some(true) || self.throw_away_ticketing == Some(true)
    }

    /// The outbound departure instant, from `utc_departure`.
    pub(super) fn departs_at(&self) -> Option<Timestamp> {
        self.utc_departure.as_deref()?.trim().parse().ok()
    }

    /// The outbound and return flights, in order (the return empty on a
    /// one-way trip), or `None` when `route` is missing or has a segment
    /// that cannot be placed: the stops are then unknown.
    pub(super) fn legs(&self) -> Option<(Vec<&Segment>, Vec<&Segment>)> {
        let route = self.route.as_ref()?.as_valid()?;
        let (mut outbound, mut back) = (Vec::new(), Vec::new());
        for segment in route {
            let segment = segment.as_valid()?;
            if segment.is_return()? {
                back.push(segment);
            } else {
                outbound.push(segment);
            }
        }
        (!outbound.is_empty()).then_some((outbound, back))
    }

    /// The outbound's travel time in seconds, `duration.departure`.
    pub(super) fn outbound_seconds(&self) -> Option<u64> {
        let durations = self.duration.as_ref()?.as_valid()?;
        durations.departure.as_ref()?.as_valid().copied()
    }

    /// The outbound departure's local wall-clock time, from
    /// `local_departure` with its false `Z` dropped.
    pub(super) fn departs_local(&self) -> Option<DateTime> {
        let raw = self.local_departure.as_deref()?.trim();
        let raw = raw
            .strip_suffix('Z')
            .or_else(|| raw.strip_suffix('z'))
            .unwrap_or(raw);
        raw.parse().ok()
    }
}

// ----- error path ---------------------------------------------------------

/// What an error reply said, reduced to one line for a person.
///
/// No Tequila error body has been published: `{"status", "error"}` for
/// validation errors and a gateway's `{"message"}` for auth and throttling
/// are what the fixtures guess. The first non-empty string among `error`,
/// `message` and `detail` is taken; anything else becomes an excerpt.
pub(super) fn summarize_error(body: &[u8], secrets: &[&str]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let said = parsed.as_ref().and_then(|value| {
        ["error", "message", "detail"].iter().find_map(|name| {
            match value.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
                // `{"error": {"message": …}}`, as many gateways nest it.
                Some(nested @ Value::Object(_)) => nested
                    .get("message")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty()),
                _ => None,
            }
        })
    });
    match said {
        Some(message) => one_line(message, secrets, MESSAGE_CHARS),
        None => unrecognised_error_body(body, secrets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_drop_the_false_z_and_utc_times_are_instants() {
        // The captured LON-PAR return leg: 17:25 in Paris is 16:25 UTC.
        let itinerary: Itinerary = serde_json::from_str(
            r#"{"price":54,"local_departure":"2023-12-05T17:25:00.000Z",
                "utc_departure":"2023-12-05T16:25:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(
            itinerary.departs_local().unwrap().to_string(),
            "2023-12-05T17:25:00"
        );
        assert_eq!(
            itinerary.departs_at().unwrap().to_string(),
            "2023-12-05T16:25:00Z"
        );
        let bare: Itinerary = serde_json::from_str("{}").unwrap();
        assert!(bare.price.is_none() && bare.departs_at().is_none() && !bare.is_skiplagged());
    }

    #[test]
    fn error_bodies_are_read_leniently() {
        assert_eq!(
            summarize_error(
                br#"{"status":"Bad Request","error":"date_from: Not a valid date."}"#,
                &[]
            ),
            "date_from: Not a valid date."
        );
        assert_eq!(
            summarize_error(br#"{"message":"Invalid authentication credentials"}"#, &[]),
            "Invalid authentication credentials"
        );
        assert_eq!(
            summarize_error(br#"{"error":{"message":"nested"}}"#, &[]),
            "nested"
        );
        assert_eq!(
            summarize_error(b"<h1>502</h1>\n key=k-123", &["k-123"]),
            "unrecognised error body: <h1>502</h1> key=[REDACTED]"
        );
        assert_eq!(
            summarize_error(b"", &[]),
            "unrecognised error body: (empty body)"
        );
    }
}
