//! OpenSky's JSON: only the fields farewatch reads, and its error bodies,
//! private to this provider. Quoting a reply safely is
//! [`crate::upstream::reply`]'s job.

use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
use crate::upstream::wire::Lenient;

// ----- success path -------------------------------------------------------

/// One record of `/flights/arrival` or `/flights/departure` (OpenSky's
/// `FlightData`). The standard status reads the times, airports and
/// callsign; the airport collector ([`super::OpenSky::airport_flights`])
/// keeps every field.
///
/// Every field is optional: the docs mark the airports and the callsign as
/// nullable, and a record missing its times is still worth its callsign.
/// A distance or count of an unexpected type (a fraction, a string) is
/// dropped rather than failing the reply.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Flight {
    /// The transponder's 24-bit address, lower-case hex.
    #[serde(default)]
    pub(super) icao24: Option<String>,
    /// Unix seconds; OpenSky's "estimated time of departure", in practice
    /// when the network first saw the aircraft.
    #[serde(default)]
    pub(super) first_seen: Option<i64>,
    /// Unix seconds; "estimated time of arrival", when it was last seen.
    #[serde(default)]
    pub(super) last_seen: Option<i64>,
    /// ICAO code, or `null` when no airport could be identified.
    #[serde(default)]
    pub(super) est_departure_airport: Option<String>,
    /// ICAO code, or `null`.
    #[serde(default)]
    pub(super) est_arrival_airport: Option<String>,
    /// 8 characters right-padded with spaces (`"DLH400  "`), or `null`.
    #[serde(default)]
    pub(super) callsign: Option<String>,
    /// Metres from the departure airport, horizontally, where first seen.
    #[serde(default)]
    pub(super) est_departure_airport_horiz_distance: Option<Lenient<i64>>,
    /// Metres from the departure airport, vertically.
    #[serde(default)]
    pub(super) est_departure_airport_vert_distance: Option<Lenient<i64>>,
    /// Metres from the arrival airport, horizontally, where last seen.
    #[serde(default)]
    pub(super) est_arrival_airport_horiz_distance: Option<Lenient<i64>>,
    /// Metres from the arrival airport, vertically.
    #[serde(default)]
    pub(super) est_arrival_airport_vert_distance: Option<Lenient<i64>>,
    /// How many other airports could have been the departure airport.
    #[serde(default)]
    pub(super) departure_airport_candidates_count: Option<Lenient<i64>>,
    /// How many other airports could have been the arrival airport.
    #[serde(default)]
    pub(super) arrival_airport_candidates_count: Option<Lenient<i64>>,
}

/// A lenient number: `None` when missing, `null` or of another type.
pub(super) fn number(field: Option<Lenient<i64>>) -> Option<i64> {
    field.and_then(Lenient::valid)
}

// ----- error path ---------------------------------------------------------

/// What an error body may say: Keycloak's `{error, error_description}`, or a
/// Spring-style `{status, error, message}` from the API. Owned strings: this
/// is the cold path.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// One line for a person from an error reply: the body's own words when it
/// is one of the known JSON shapes, else a short sanitised excerpt.
/// `secrets` are replaced wherever the body quotes them.
pub(super) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let words: Vec<String> = parsed
        .into_iter()
        .flat_map(|p| [p.error, p.error_description.or(p.message)])
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
    if words.is_empty() {
        return unrecognised_error_body(body, secrets);
    }
    one_line(&words.join(": "), secrets, MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusError;
    use crate::upstream::reply::ensure_json;

    #[test]
    fn records_tolerate_nulls_and_skip_unknown_fields() {
        let flights: Vec<Flight> = serde_json::from_str(
            r#"[{"icao24":"3c4ad1","firstSeen":1517229033,"estDepartureAirport":"EDDF",
                 "lastSeen":null,"estArrivalAirport":null,"callsign":null,
                 "estArrivalAirportHorizDistance":null,"newField":[1,2]}]"#,
        )
        .unwrap();
        assert_eq!(flights[0].first_seen, Some(1_517_229_033));
        assert_eq!(flights[0].last_seen, None);
        assert_eq!(flights[0].est_departure_airport.as_deref(), Some("EDDF"));
        assert!(flights[0].est_arrival_airport.is_none());
        assert!(flights[0].callsign.is_none());
    }

    #[test]
    fn every_field_of_a_record_is_read_and_odd_numbers_are_dropped() {
        let flights: Vec<Flight> = serde_json::from_str(
            r#"[{"icao24":"3c6586","firstSeen":1517221822,"lastSeen":1517227901,
                 "estDepartureAirportHorizDistance":1523,"estDepartureAirportVertDistance":57.5,
                 "estArrivalAirportHorizDistance":"far","estArrivalAirportVertDistance":null,
                 "departureAirportCandidatesCount":1,"arrivalAirportCandidatesCount":3}]"#,
        )
        .unwrap();
        let f = flights.into_iter().next().unwrap();
        assert_eq!(f.icao24.as_deref(), Some("3c6586"));
        assert_eq!(number(f.est_departure_airport_horiz_distance), Some(1523));
        assert_eq!(number(f.est_departure_airport_vert_distance), None);
        assert_eq!(number(f.est_arrival_airport_horiz_distance), None);
        assert_eq!(number(f.est_arrival_airport_vert_distance), None);
        assert_eq!(number(f.departure_airport_candidates_count), Some(1));
        assert_eq!(number(f.arrival_airport_candidates_count), Some(3));
    }

    #[test]
    fn error_messages_are_read_or_excerpted_and_redacted() {
        assert_eq!(
            error_message(
                br#"{"error":"invalid_client","error_description":"Invalid client credentials for KEY"}"#,
                &["KEY"]
            ),
            "invalid_client: Invalid client credentials for [REDACTED]"
        );
        assert_eq!(
            error_message(
                br#"{"status":400,"error":"Bad Request","message":"begin > end"}"#,
                &[]
            ),
            "Bad Request: begin > end"
        );
        assert_eq!(
            error_message(b"<html>\n<p>KEY</p>", &["KEY"]),
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
        assert_eq!(
            error_message(b"", &[]),
            "unrecognised error body: (empty body)"
        );
        assert_eq!(
            error_message(br#"{"error":"  "}"#, &[]),
            r#"unrecognised error body: {"error":" "}"#
        );
    }

    #[test]
    fn only_json_content_types_pass() {
        assert!(ensure_json(Some("application/json;charset=UTF-8"), b"[]", "x", &[]).is_ok());
        assert!(ensure_json(None, b"[]", "x", &[]).is_ok());
        let err = ensure_json(Some("text/html"), b"<html>", "flights", &[]).unwrap_err();
        assert_eq!(
            err,
            StatusError::Decode("flights: expected JSON, got `text/html`: <html>".to_owned())
        );
    }
}
