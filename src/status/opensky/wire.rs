//! OpenSky's JSON: only the fields farewatch reads, and its error bodies,
//! private to this provider. Quoting a reply safely is
//! [`crate::upstream::reply`]'s job.

use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};

// ----- success path -------------------------------------------------------

/// One record of `/flights/arrival` or `/flights/departure` (OpenSky's
/// `FlightData`). `icao24`, the four `est*Distance` fields and the two
/// candidate counts are skipped: the standard status has no place for them.
///
/// Every field is optional: the docs mark the airports and the callsign as
/// nullable, and a record missing its times is still worth its callsign.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Flight {
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
