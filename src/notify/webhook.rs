//! A generic JSON webhook, signed with HMAC-SHA256, plus the HTTP plumbing
//! the Slack and Discord channels share with it.
//!
//! # The request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Farewatch-Timestamp: 1773457331
//! X-Farewatch-Signature: sha256=5d1f…(64 lower-case hex digits)
//!
//! {"event":"fare_alert","text":"farewatch: LHR-JFK …","sent_at":"2026-03-14T03:02:11Z"}
//! ```
//!
//! `sent_at` is the instant of `X-Farewatch-Timestamp` (whole seconds, UTC,
//! RFC 3339). Any 2xx means the receiver accepted the alert; its body is not read.
//!
//! # Verifying a request (for the receiver)
//!
//! 1. Read `X-Farewatch-Timestamp` (Unix seconds) and the **raw** body
//!    bytes, before any JSON parsing (re-serialising changes the bytes).
//! 2. Compute `HMAC-SHA256(secret, "<timestamp>.<body>")`, i.e. the decimal
//!    timestamp, one `.`, then the body bytes, and hex-encode it.
//! 3. Compare `sha256=<hex>` with `X-Farewatch-Signature` in **constant
//!    time**. [`verify`] does steps 2 and 3.
//! 4. Reject the request if the timestamp is more than
//!    [`SIGNATURE_TOLERANCE`] away from your clock ([`verify_fresh`] does
//!    steps 2 to 4). Because the timestamp is signed, an attacker cannot
//!    move it, so an old captured request stops verifying after the
//!    tolerance. To reject a replay *within* the window as well, remember the
//!    signatures seen during the last tolerance period and refuse repeats.
//!
//! This is the scheme Stripe and Slack use for their own webhooks (a signed
//! `timestamp.body`), so receivers built for those adapt easily.
//!
//! # Outcomes
//!
//! | answer | [`NotifyError`] |
//! |---|---|
//! | 2xx | success, `Delivery { id: "webhook-<ms>-<n>", segments: None }` |
//! | 429 | `RateLimited { code: 429, retry_after }` (from `Retry-After`, also logged) |
//! | 410 Gone | `Permanent { code: 410 }`: the receiver says the endpoint is gone |
//! | 401, 403, 404 | `Configuration { code }`: wrong secret or URL |
//! | other 4xx | `Other { status, code: None }` |
//! | 5xx, timeout, connection lost after sending | `Ambiguous` |
//! | connection refused, DNS, TLS, bad URL | `Unreachable` |
//!
//! A webhook cannot be asked what it received, so [`Notifier::find_sent`]
//! keeps its default `Ok(None)`: after an ambiguous outcome the outbox sends
//! again, and a receiver may see an alert twice (at-least-once). Receivers
//! that care can deduplicate on `text` within a short window.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use super::{Delivery, Notifier, NotifyError};
use crate::domain::Recipient;
use crate::upstream::http::{read_body_capped, BodyError};
use crate::upstream::reply::error_chain;

/// Header carrying the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Farewatch-Timestamp";

/// Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Farewatch-Signature";

/// The value of the payload's `event` field.
pub const EVENT_FARE_ALERT: &str = "fare_alert";

/// How far a request's timestamp may be from the receiver's clock in
/// [`verify_fresh`].
///
/// Five minutes is what Stripe and Slack use for their signed webhooks: wide
/// enough for clock skew between two hosts plus a slow delivery, narrow
/// enough that a captured request is useless soon after.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Per-request timeout a configuration should use unless told otherwise.
///
/// A webhook receiver answers in well under a second when healthy; ten
/// seconds rides out a slow one without holding an alert back for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest reply body a channel reads. Webhook replies are a word
/// (Slack's `ok`), an error object, or one Discord message object; anything
/// bigger is not the service we think we are talking to.
pub(super) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Longest piece of a reply body quoted in an error message.
const MAX_QUOTED_BODY_CHARS: usize = 200;

/// The scheme prefix of [`SIGNATURE_HEADER`]'s value.
const SIGNATURE_PREFIX: &str = "sha256=";

/// Hint appended to authentication and addressing failures.
const CHECK_WEBHOOK: &str = "check the webhook's URL and signing secret";

/// Where to POST alerts and how to sign them.
///
/// `Debug` prints the URL without its query or user info (they can carry
/// tokens) and never the secret.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The receiver's `http(s)` URL.
    pub url: String,
    /// Shared HMAC-SHA256 key; the receiver verifies signatures with it.
    pub secret: SecretString,
    /// Per-request timeout ([`DEFAULT_TIMEOUT`] is a sensible value).
    pub timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url, true))
            .field("secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How hard one webhook may be driven: a receiver of the user's own,
/// modest, as it may be a small service.
pub const DEFAULT_LIMITS: super::NotifyLimits = super::webhook_limits(4, 10.0);

/// The generic signed JSON webhook notifier.
///
/// The URL is the recipient: [`Notifier::send`] ignores its `to` argument
/// and posts the text once: the engine routes `webhook:NAME` in the sheet to
/// the URL in `WEBHOOK_URL_NAME`, signed with `WEBHOOK_SECRET_NAME`.
pub struct Webhook {
    client: reqwest::Client,
    config: WebhookConfig,
    /// The parsed URL, or why it cannot be used (reported on every call,
    /// since `new` cannot fail).
    url: Result<Url, String>,
    sent: AtomicU64,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A notifier using the shared `client`.
    pub fn new(client: reqwest::Client, config: WebhookConfig) -> Self {
        let url = parse_url(&config.url, "the webhook URL");
        Self {
            client,
            config,
            url,
            sent: AtomicU64::new(0),
        }
    }

    /// Posts `text` as a signed `fare_alert` event.
    ///
    /// # Errors
    ///
    /// See the module's outcome table.
    pub async fn post(&self, text: &str) -> Result<Delivery, NotifyError> {
        let url = self.url.clone().map_err(NotifyError::Unreachable)?;
        // Whole seconds, so `sent_at` and the signed timestamp are the same instant.
        let timestamp = Timestamp::now().as_second();
        let sent_at = Timestamp::from_second(timestamp)
            .map_err(|e| NotifyError::Unreachable(format!("the clock is unusable: {e}")))?;
        let body = serde_json::to_vec(&AlertEvent {
            event: EVENT_FARE_ALERT,
            text,
            sent_at,
        })
        .map_err(|e| NotifyError::Unreachable(format!("could not encode the alert: {e}")))?;
        let signature = sign(
            self.config.secret.expose_secret().as_bytes(),
            timestamp,
            &body,
        );
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        let reply = send(request, "the webhook", self.config.timeout, false).await?;
        if reply.status.is_success() {
            let id = local_id("webhook", &self.sent);
            tracing::debug!(%id, status = %reply.status, "the webhook accepted the alert");
            return Ok(Delivery { id, segments: None });
        }
        Err(classify(&reply))
    }
}

#[async_trait]
impl Notifier for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    /// Posts `body` to the webhook; `to` is ignored (the webhook itself is
    /// the recipient).
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let _ = to;
        self.post(body).await
    }
}

/// `sha256=<lower-case hex HMAC-SHA256 of "<timestamp>.<body>">` under `secret`:
/// the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_payload(timestamp, body));
    let mut out = String::with_capacity(SIGNATURE_PREFIX.len() + 64);
    out.push_str(SIGNATURE_PREFIX);
    for byte in tag.as_ref() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `header` (the value of [`SIGNATURE_HEADER`]) is the signature of
/// `timestamp` and `body` under `secret`.
///
/// The comparison is constant-time (`ring::hmac::verify`), so timing does
/// not reveal how much of a forged signature was right. Hex digits may be
/// upper- or lower-case. This does **not** check that the timestamp is
/// recent: use [`verify_fresh`] to reject replays.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(tag) = header
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(decode_hex)
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_payload(timestamp, body), &tag).is_ok()
}

/// [`verify`], and the timestamp is within [`SIGNATURE_TOLERANCE`] of `now`
/// (either side, for clock skew).
pub fn verify_fresh(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: Timestamp,
) -> bool {
    let age = now.as_second().abs_diff(timestamp);
    age <= SIGNATURE_TOLERANCE.as_secs() && verify(secret, timestamp, body, header)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `"<timestamp>.<body>"`, the bytes that are signed.
fn signed_payload(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut payload = Vec::with_capacity(timestamp.len() + 1 + body.len());
    payload.extend_from_slice(timestamp.as_bytes());
    payload.push(b'.');
    payload.extend_from_slice(body);
    payload
}

/// Hex digits (either case) to bytes; `None` on odd length or a non-hex digit.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// A non-2xx answer from a generic receiver, classified by status alone.
fn classify(reply: &Reply) -> NotifyError {
    let status = reply.status.as_u16();
    let quoted = describe_reply(reply.status, &reply.body);
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = log_rate_limit("the webhook", reply, None, "");
        return NotifyError::RateLimited {
            code: u32::from(status),
            retry_after,
        };
    }
    if reply.status.is_server_error() {
        return NotifyError::Ambiguous(format!(
            "the webhook answered {quoted}; it may have received the alert"
        ));
    }
    match status {
        410 => NotifyError::Permanent {
            code: u32::from(status),
            message: format!(
                "the webhook says it is gone ({quoted}); remove it from the configuration"
            ),
        },
        401 | 403 | 404 => NotifyError::Configuration {
            code: u32::from(status),
            message: format!("the webhook refused the alert ({quoted}); {CHECK_WEBHOOK}"),
        },
        _ => NotifyError::Other {
            status,
            code: None,
            message: format!("the webhook refused the alert ({quoted})"),
        },
    }
}

/// The JSON a generic receiver gets.
#[derive(Serialize)]
struct AlertEvent<'a> {
    event: &'static str,
    text: &'a str,
    /// Serialised as RFC 3339 (`2026-03-14T03:02:11Z`).
    sent_at: Timestamp,
}

// ---- plumbing shared with the Slack and Discord channels ----

/// What came back: status, headers, and the body (empty when unread or
/// unreadable).
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

/// Sends `request` with `timeout` and collects the reply. `service` names
/// the other end in messages ("Slack"). The body of a 2xx is read only when
/// `read_success_body`; a body that cannot be read is left empty (the status
/// still decides). Transport failures become `Unreachable` (nothing sent) or
/// `Ambiguous` (maybe received); their text never includes the URL.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    service: &str,
    timeout: Duration,
    read_success_body: bool,
) -> Result<Reply, NotifyError> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(service, timeout, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = if status.is_success() && !read_success_body {
        Vec::new()
    } else {
        read_body_capped(response, MAX_REPLY_BYTES)
            .await
            .map(Vec::from)
            .unwrap_or_else(|e| {
                let error = describe_body_error(e);
                tracing::debug!(%status, %error, "could not read the reply body from {service}");
                Vec::new()
            })
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Maps a failure to send or to read the response head. The URL (a secret
/// for Slack and Discord) is stripped before the error is described.
fn transport_error(service: &str, timeout: Duration, err: reqwest::Error) -> NotifyError {
    let (builder, connect, timed_out) = (err.is_builder(), err.is_connect(), err.is_timeout());
    let detail = error_chain(&err.without_url());
    if builder {
        NotifyError::Unreachable(format!(
            "could not build the request to {service}: {detail}"
        ))
    } else if connect {
        // DNS, TLS and connect timeouts included: the request was never written.
        NotifyError::Unreachable(format!("could not connect to {service}: {detail}"))
    } else if timed_out {
        NotifyError::Ambiguous(format!(
            "no answer from {service} within {timeout:?}; it may have received the alert: {detail}"
        ))
    } else {
        NotifyError::Ambiguous(format!(
            "the connection to {service} failed after the request was sent: {detail}"
        ))
    }
}

/// Parses a configured `http(s)` URL; the error names `what` but never
/// quotes the URL, which may be a secret.
pub(super) fn parse_url(raw: &str, what: &str) -> Result<Url, String> {
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        Ok(url) => Err(format!(
            "{what} must be an http(s) URL with a host, not a `{}:` URL",
            url.scheme()
        )),
        Err(e) => Err(format!("{what} is not a URL ({e})")),
    }
}

/// A URL fit for logs. With `keep_path`, scheme, host, port and path (query
/// and user info dropped); without, only scheme, host and port, for URLs
/// whose path is the secret (Slack, Discord).
pub(super) fn redact_url(raw: &str, keep_path: bool) -> String {
    let Ok(url) = Url::parse(raw.trim()) else {
        return "[redacted: not a URL]".to_owned();
    };
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    if keep_path {
        shown.push_str(url.path());
        if url.query().is_some() {
            shown.push_str("?[redacted]");
        }
    } else {
        shown.push_str("/[redacted]");
    }
    shown
}

/// A local delivery id, `<prefix>-<unix ms>-<n>`, for channels that do not
/// return one: unique within a process, and across restarts unless two
/// sends share a millisecond *and* a counter value.
pub(super) fn local_id(prefix: &str, counter: &AtomicU64) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{prefix}-{}-{n}", Timestamp::now().as_millisecond())
}

/// The `Retry-After` header as a wait, if present and readable.
pub(super) fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    crate::upstream::retry::parse_retry_after(value, Timestamp::now())
}

/// Logs a 429's requested wait. [`NotifyError::RateLimited`] has no field
/// for it yet, so this log line is where it is reported. `asked` is a wait
/// read from the body, which wins over the header when present; `detail`
/// is anything else worth knowing (Discord's scope).
/// Logs a 429 and returns the wait the service asked for, if it said.
pub(super) fn log_rate_limit(
    service: &str,
    reply: &Reply,
    asked: Option<Duration>,
    detail: &str,
) -> Option<Duration> {
    let retry_after = asked.or_else(|| retry_after_header(&reply.headers));
    tracing::warn!(
        channel = service,
        retry_after_secs = retry_after.map(|d| d.as_secs_f64()),
        detail,
        "{service} is rate limiting alerts{}",
        retry_after
            .map(|d| format!("; it asks for a wait of {d:?}"))
            .unwrap_or_default()
    );
    retry_after
}

/// `HTTP 404 Not Found: <body, quoted briefly>`.
pub(super) fn describe_reply(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("unknown status");
    let quoted = quote_body(body);
    if quoted.is_empty() {
        format!("HTTP {} {reason}, empty body", status.as_u16())
    } else {
        format!("HTTP {} {reason}: {quoted}", status.as_u16())
    }
}

/// The body as one short line: trimmed, control characters blanked, at most
/// [`MAX_QUOTED_BODY_CHARS`] characters with `...` when cut.
pub(super) fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut quoted: String = text
        .chars()
        .take(MAX_QUOTED_BODY_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_QUOTED_BODY_CHARS {
        quoted.push_str("...");
    }
    quoted
}

/// A body that could not be read whole: the transfer's causes (without the
/// URL), or the size limit.
pub(super) fn describe_body_error(err: BodyError) -> String {
    match err {
        BodyError::Transport(e) => error_chain(&e.without_url()),
        too_large @ BodyError::TooLarge { .. } => too_large.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(decode_hex("00ff10Ab"), Some(vec![0x00, 0xff, 0x10, 0xab]));
        for junk in ["", "0", "abc", "zz", "0g", "+1"] {
            assert_eq!(decode_hex(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn verify_accepts_upper_case_hex_and_surrounding_space() {
        let signature = sign(b"k", 1, b"{}");
        let upper = format!("sha256={}", signature["sha256=".len()..].to_uppercase());
        assert!(verify(b"k", 1, b"{}", &upper));
        assert!(verify(b"k", 1, b"{}", &format!(" {signature} ")));
        assert!(!verify(
            b"k",
            1,
            b"{}",
            &signature.replace("sha256=", "sha1=")
        ));
        assert!(!verify(b"k", 1, b"{}", &signature[..signature.len() - 2]));
    }

    #[test]
    fn redact_url_hides_secret_paths_and_queries() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XXXX", false),
            "https://hooks.slack.com/[redacted]"
        );
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:8080/hook?token=abc", true),
            "http://127.0.0.1:8080/hook?[redacted]"
        );
        assert_eq!(redact_url("not a url", true), "[redacted: not a URL]");
    }

    #[test]
    fn parse_url_never_quotes_the_url() {
        let err =
            parse_url("hooks.slack.com/services/SECRET", "the Slack webhook URL").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        let err = parse_url("mailto:SECRET@example.com", "the webhook URL").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
