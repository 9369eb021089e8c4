//! OpenSky's JSON: only the fields farewatch reads, private to this provider,
//! and the helpers that turn an unreadable or hostile reply into a short,
//! safe message.

use std::borrow::Cow;

use serde::Deserialize;

use crate::status::StatusError;

/// Longest excerpt of an unreadable body that goes into an error message.
const EXCERPT_CHARS: usize = 200;

/// Longest message built from a readable error body.
const MESSAGE_CHARS: usize = 500;

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

/// The Keycloak client-credentials reply; `token_type`, `scope`,
/// `refresh_expires_in`... are skipped.
#[derive(Deserialize)]
pub(super) struct TokenReply {
    pub(super) access_token: String,
    /// Seconds until the token expires; OpenSky's SDK assumes 1800 when absent.
    #[serde(default)]
    pub(super) expires_in: Option<u64>,
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
        return format!("unrecognised error body: {}", excerpt(body, secrets));
    }
    one_line(&words.join(": "), secrets)
}

/// `text` (which may quote a reply) as one printable line of at most 500
/// characters, with `secrets` replaced.
pub(super) fn one_line(text: &str, secrets: &[&str]) -> String {
    clean(&redact(text, secrets), MESSAGE_CHARS)
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
/// OpenSky never echoes credentials, but a misbehaving proxy might echo the
/// request, and these messages end up in logs and reports.
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
    what: &str,
    secrets: &[&str],
) -> Result<(), StatusError> {
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
    Err(StatusError::Decode(format!(
        "{what}: expected JSON, got `{}`: {}",
        clean(&redact(content_type, secrets), 100),
        excerpt(body, secrets)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

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
