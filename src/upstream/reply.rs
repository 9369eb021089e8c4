//! What every fare source does with an HTTP reply, in one place: send the
//! request and read the capped body, map transport failures and error
//! statuses to [`UpstreamError`], check that a reply is JSON, and quote a reply
//! safely in a message.
//!
//! Quoted text ends up in logs, reports and possibly an SMS, so it is
//! short, one printable line, and never shows a credential. The rules are
//! the strictest any source had (Amadeus's, hardened by fuzzing: see
//! `tests/parsers_props.rs`), so every source gets them.
//!
//! Provider-specific shapes (offers, error bodies) stay private in each
//! provider's `wire.rs`; this module knows none of them.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;

use super::UpstreamError;
use crate::upstream::http::{read_body_capped, BodyError, MAX_BODY_BYTES};
use crate::upstream::retry::parse_retry_after;

/// Longest excerpt of an unreadable body that goes into an error message.
const EXCERPT_CHARS: usize = 200;

/// Longest message built from a readable error body; providers' own are one line.
pub(crate) const MESSAGE_CHARS: usize = 500;

/// Longest `Content-Type` quoted when a reply is not JSON.
const CONTENT_TYPE_CHARS: usize = 100;

// ----- sending and reading ------------------------------------------------

/// A response read to the end.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// Sends `request` and reads the reply, whatever its status, refusing a
    /// body over [`MAX_BODY_BYTES`].
    ///
    /// The caller sets the request's own timeout; `timeout` is what a
    /// timeout is reported as. `secrets` are redacted from transport errors.
    pub(crate) async fn send(
        request: reqwest::RequestBuilder,
        timeout: Duration,
        secrets: &[&str],
    ) -> Result<Self, UpstreamError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, timeout, secrets))?;
        let status = response.status();
        let headers = response.headers().clone();
        // Rate-limit headers set the provider's pace directly.
        crate::upstream::pool::hints::observe(&headers);
        let body = read_body_capped(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => {
                    UpstreamError::Decode(format!("reply larger than {limit} bytes"))
                }
                BodyError::Transport(e) => transport_error(e, timeout, secrets),
            })?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The `Content-Type` header, when it is readable text.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE)?.to_str().ok()
    }

    /// `Retry-After`, in seconds or as an HTTP date. Most sources document
    /// none, but honour it if sent.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, Timestamp::now())
    }

    /// The body as `T`, by [`parse_json`]; `what` names the reply in errors.
    pub(crate) fn json<'r, T: Deserialize<'r>>(
        &'r self,
        what: &str,
        secrets: &[&str],
    ) -> Result<T, UpstreamError> {
        parse_json(self.content_type(), &self.body, what, secrets)
    }
}

/// Maps a failed transfer: a timeout (reported as `timeout`), a body that
/// could not be decoded, and otherwise a connection problem.
fn transport_error(error: reqwest::Error, timeout: Duration, secrets: &[&str]) -> UpstreamError {
    if error.is_timeout() {
        UpstreamError::Timeout(timeout)
    } else if error.is_decode() {
        UpstreamError::Decode(describe(error, secrets))
    } else {
        // Connect failures, and connections that broke mid-transfer.
        UpstreamError::Connect(describe(error, secrets))
    }
}

/// A transport error with its causes, without the URL (it may hold a key:
/// SerpApi's travels in the query string) and with `secrets` redacted
/// should any cause quote one.
fn describe(error: reqwest::Error, secrets: &[&str]) -> String {
    redact(&error_chain(&error.without_url()), secrets).into_owned()
}

/// `error: cause: cause`, since reqwest's own message is only the outermost
/// layer. A cause whose text is already in the message (some errors repeat
/// their source's) is not repeated. Strip a reqwest error's URL
/// (`without_url`) before, as it may carry a credential.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The usual reading of a failed reply's status, once a source has dealt
/// with what only it knows (rejected credentials, a spent quota): 429 is a
/// throttle, any other 4xx a refused request, anything else the provider's
/// own failure.
pub(crate) fn error_for_status(
    status: StatusCode,
    retry_after: Option<Duration>,
    code: Option<String>,
    message: String,
) -> UpstreamError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return UpstreamError::RateLimited { retry_after };
    }
    let status_code = status.as_u16();
    if status.is_client_error() {
        UpstreamError::Rejected {
            status: status_code,
            code,
            message,
        }
    } else {
        UpstreamError::Upstream {
            status: status_code,
            code,
            message,
        }
    }
}

// ----- JSON ---------------------------------------------------------------

/// Refuses a reply whose `Content-Type` is not JSON, saying what arrived;
/// `what` names the reply.
///
/// Any `+json` type counts (Amadeus labels its JSON
/// `application/vnd.amadeus+json`); a missing header is left to the JSON
/// parser to judge.
pub(crate) fn ensure_json(
    content_type: Option<&str>,
    body: &[u8],
    what: &str,
    secrets: &[&str],
) -> Result<(), UpstreamError> {
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
    Err(UpstreamError::Decode(format!(
        "{what}: expected JSON, got `{}`: {}",
        one_line(content_type, secrets, CONTENT_TYPE_CHARS),
        excerpt(body, secrets)
    )))
}

/// A success body as `T`: first [`ensure_json`], then the parser. `what`
/// names the reply in errors.
pub(crate) fn parse_json<'b, T: Deserialize<'b>>(
    content_type: Option<&str>,
    body: &'b [u8],
    what: &str,
    secrets: &[&str],
) -> Result<T, UpstreamError> {
    ensure_json(content_type, body, what, secrets)?;
    serde_json::from_slice(body).map_err(|e| {
        UpstreamError::Decode(format!(
            "{what}: {}: {}",
            // The parser's message may quote a string from the body.
            one_line(&e.to_string(), secrets, MESSAGE_CHARS),
            excerpt(body, secrets)
        ))
    })
}

// ----- quoting a reply ----------------------------------------------------

/// The message for an error body the source's own reader could not make
/// sense of: an excerpt of it.
pub(crate) fn unrecognised_error_body(body: &[u8], secrets: &[&str]) -> String {
    format!("unrecognised error body: {}", excerpt(body, secrets))
}

/// A short, single-line, printable excerpt of a body for error messages,
/// with `secrets` replaced.
pub(crate) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "(empty body)".to_owned();
    }
    // Enough bytes for EXCERPT_CHARS characters even if all are 4-byte UTF-8,
    // plus room for a secret straddling the cut, so it is still recognised;
    // a character cut in half at the end becomes U+FFFD and is then dropped.
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let head = &body[..body.len().min(EXCERPT_CHARS * 4 + longest)];
    one_line(&String::from_utf8_lossy(head), secrets, EXCERPT_CHARS)
}

/// `text` as one printable line of at most `max_chars` characters, with
/// `secrets` replaced.
///
/// Redacts before cleaning, so a secret the cut would halve is still
/// recognised, and after it too: cleaning drops invisible characters (and
/// the U+FFFD of bytes that are not UTF-8), which could have split a secret.
pub(crate) fn one_line(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let redacted = redact(text, secrets);
    // Never cut: a text has no more characters than bytes.
    let whole = clean(&redacted, redacted.len());
    clean(&redact(&whole, secrets), max_chars)
}

/// Replaces every non-empty `secrets` entry in `text` with `[REDACTED]`.
///
/// Providers do not echo credentials on purpose, but a proxy or an error
/// page might echo the request (SerpApi's key even travels in the URL), and
/// these messages end up in logs and reports.
pub(crate) fn redact<'t>(text: &'t str, secrets: &[&str]) -> Cow<'t, str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and, optionally, a cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn error_chains_name_every_cause_once() {
        let refused = Layer("Connection refused (os error 111)", None);
        let connect = Layer(
            "tcp connect error: Connection refused (os error 111)",
            Some(Box::new(refused)),
        );
        let client = Layer("client error (Connect)", Some(Box::new(connect)));
        let request = Layer("error sending request", Some(Box::new(client)));
        assert_eq!(
            error_chain(&request),
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }

    #[test]
    fn excerpts_are_short_single_line_and_printable() {
        let body = format!("<html>\n\t<body>\u{1b}[31m{}</body>", "x".repeat(500));
        let short = excerpt(body.as_bytes(), &[]);
        assert!(short.chars().count() <= EXCERPT_CHARS + 1, "{short}");
        assert!(short.starts_with("<html> <body> [31mxxx"), "{short}");
        assert!(short.ends_with('…'));
        assert!(!short.chars().any(char::is_control));
        assert_eq!(excerpt(b" \n", &[]), "(empty body)");
    }

    #[test]
    fn secrets_are_redacted_even_where_the_excerpt_is_cut() {
        let secret = "TOPSECRET-0123456789";
        // 4-byte characters put the excerpt's byte cut inside the secret,
        // whose first three characters would still be shown.
        let body = format!("{}{secret} tail", "😀".repeat(EXCERPT_CHARS - 3));
        let short = excerpt(body.as_bytes(), &[secret, ""]);
        assert!(short.ends_with("[RE…"), "{short}");
    }

    #[test]
    fn only_json_content_types_pass() {
        assert!(ensure_json(Some("application/vnd.amadeus+json"), b"{}", "x", &[]).is_ok());
        assert!(ensure_json(Some("application/json; charset=UTF-8"), b"{}", "x", &[]).is_ok());
        assert!(ensure_json(Some("application/json; charset=utf-8"), b"{}", "x", &[]).is_ok());
        assert!(ensure_json(None, b"{}", "x", &[]).is_ok());
        let err = ensure_json(Some("text/html"), b"<html>", "offers", &[]).unwrap_err();
        assert_eq!(
            err,
            UpstreamError::Decode("offers: expected JSON, got `text/html`: <html>".to_owned())
        );
        let err = ensure_json(Some("text/html"), b"<html>", "search reply", &[]).unwrap_err();
        assert_eq!(
            err,
            UpstreamError::Decode(
                "search reply: expected JSON, got `text/html`: <html>".to_owned()
            )
        );
    }

    #[test]
    fn statuses_map_to_throttles_rejections_and_upstream_failures() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(
            error_for_status(StatusCode::TOO_MANY_REQUESTS, wait, None, "slow".into()),
            UpstreamError::RateLimited { retry_after: wait }
        );
        assert_eq!(
            error_for_status(
                StatusCode::BAD_REQUEST,
                wait,
                Some("c".into()),
                "bad".into()
            ),
            UpstreamError::Rejected {
                status: 400,
                code: Some("c".into()),
                message: "bad".into()
            }
        );
        assert_eq!(
            error_for_status(StatusCode::BAD_GATEWAY, None, None, "down".into()),
            UpstreamError::Upstream {
                status: 502,
                code: None,
                message: "down".into()
            }
        );
    }
}
