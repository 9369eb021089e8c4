//! Twilio Programmable Messaging: a small hand-written client.
//!
//! One call sends: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! HTTP Basic with the account SID and auth token, form-encoded `To`, `From`
//! or `MessagingServiceSid`, and `Body`. Twilio answers `201` with the message
//! resource (`num_segments` is a *string*, dates are RFC 2822).
//!
//! The `twilio` crate is not used: its base URL is hard-coded, so no fake
//! server can stand in for Twilio, and it drops the error body, losing the
//! Twilio code that decides whether a retry is safe (the error bodies are in
//! `tests/fixtures/notify/twilio-error-*.json`; the codes are listed at
//! <https://www.twilio.com/docs/api/errors>).
//!
//! # Retry classes
//!
//! Errors are classified by Twilio's numeric `code` (and the HTTP status),
//! never by the message text, whose wording has changed over the years:
//!
//! | outcome | [`NotifyError`] | retry? |
//! |---|---|---|
//! | HTTP 429 / 20429 | `RateLimited` | yes: Twilio documents it as never processed |
//! | 21610 (the recipient replied STOP) | `Unsubscribed` | never, until they reply START |
//! | 21211, 21604, 21408, 21612, 21614 | `Permanent` | never for this recipient |
//! | 20003 / HTTP 401, 21212, 21606, 21608 | `Configuration` | after fixing the configuration |
//! | 21611 (sender queue full) and any other 4xx | `Other` | later, or not at all |
//! | HTTP 5xx, timeout, connection lost after sending | `Ambiguous` | only after [`Twilio::find_sent`] |
//! | connection refused, DNS, TLS (before sending) | `Unreachable` | yes: nothing was sent |
//!
//! The Messages API has **no idempotency key**, so an ambiguous outcome must
//! be reconciled (see [`Twilio::find_sent`]) before a resend; the outbox
//! does that within the cycle (`src/engine/outbox.rs`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::fmt::rfc2822::DateTimeParser;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::webhook::{describe_body_error, describe_reply};
use super::{Delivery, Notifier, NotifyError};
use crate::domain::{Recipient, E164};
use crate::upstream::http::{read_body_capped, MAX_BODY_BYTES};
use crate::upstream::reply::error_chain;

/// Twilio's API host, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// The most Twilio requests farewatch ever keeps in flight at once: a
/// ceiling for the adaptive controller ([`crate::upstream::arc`]), which
/// starts at 50 and finds the account's real cap by itself.
///
/// Twilio caps concurrent REST requests per account and answers 20429
/// (HTTP 429) above the cap, without publishing the number; the controller
/// halves its window on a 20429 and grows it back while sends succeed.
pub const DEFAULT_MAX_CONCURRENCY: usize = 100;

/// A ceiling on Twilio requests started per second; `0` is none.
///
/// Twilio queues messages sent faster than the sender's throughput (a US long
/// code sends 1 segment/s) and only refuses new ones (21611) once a `From`
/// number's queue holds 10 hours of sends; the account-wide ceiling is 2000
/// segments/s (63017). What it refuses at once is concurrency (20429), which
/// the controller handles, so by default there is no client-side pace: 23
/// alerts go out in one round trip, not over 2.3 seconds.
pub const DEFAULT_RATE_PER_SEC: f64 = 0.0;

/// Pages of the message list [`Twilio::find_sent`] reads before giving up.
///
/// The list is that one recipient's messages, newest first, and the search
/// stops at the first page reaching back past the intent's creation time,
/// so one page of 100 normally settles it; 5 pages (500 messages to one
/// number within minutes) bounds the work if the number is very busy.
pub const MAX_RECONCILE_PAGES: usize = 5;

/// How far before `since` a message may have been created and still count as
/// ours in [`Twilio::find_sent`]: Twilio's clock and ours can disagree.
pub const RECONCILE_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(5 * 60);

/// Twilio's largest page size for list calls.
const PAGE_SIZE: &str = "100";

/// The one REST API version the Messages resource lives under.
const API_VERSION: &str = "2010-04-01";

/// Longest piece of an error's `details` quoted in an error message.
const MAX_QUOTED_BODY_CHARS: usize = 200;

/// Hint appended to authentication failures.
const CHECK_CREDENTIALS: &str = "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN";

/// Hint appended to sender failures.
const CHECK_SENDER: &str = "check TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID";

/// Who the message comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A Twilio phone number (`TWILIO_FROM`).
    From(String),
    /// A Messaging Service SID `MG...` (`TWILIO_MESSAGING_SERVICE_SID`).
    MessagingService(String),
}

/// How to reach Twilio.
///
/// `Debug` prints everything but the auth token.
#[derive(Clone)]
pub struct TwilioConfig {
    /// Base URL, [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// `AC...` account SID, also the basic-auth user.
    pub account_sid: String,
    /// Auth token (or API key secret).
    pub auth_token: SecretString,
    /// The sender.
    pub sender: Sender,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Twilio SMS notifier.
///
/// `Debug` prints the configuration without the auth token.
pub struct Twilio {
    client: reqwest::Client,
    config: TwilioConfig,
    /// `{base}/2010-04-01/Accounts/{sid}/Messages.json`, or why the base URL
    /// cannot be used (reported on every call, since `new` cannot fail).
    messages_url: Result<Url, String>,
}

impl fmt::Debug for Twilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Twilio")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Twilio {
    /// A notifier using the shared `client`.
    pub fn new(client: reqwest::Client, config: TwilioConfig) -> Self {
        let messages_url = messages_url(&config.base_url, &config.account_sid);
        Self {
            client,
            config,
            messages_url,
        }
    }

    /// Looks for a message already sent to `to` with exactly this `body`,
    /// created at or after `since` (minus [`RECONCILE_CLOCK_SKEW`]), and
    /// returns its SID.
    ///
    /// This is how an [`NotifyError::Ambiguous`] send is reconciled before a
    /// resend, since Twilio has no idempotency key. It lists
    /// `Messages.json?To=…&PageSize=100`, which Twilio serves newest first,
    /// and follows `next_page_uri` until a page reaches back past `since`
    /// (minus the skew), for at most [`MAX_RECONCILE_PAGES`] pages.
    ///
    /// There is deliberately **no `DateSent` filter**: Twilio leaves
    /// `date_sent` empty while a message is queued, so such a filter hides
    /// exactly the messages whose fate is in question (just accepted, not yet
    /// handed to the carrier). Matching is on `date_created`, which Twilio
    /// sets on acceptance. A match counts whatever its status (a `queued` or
    /// `failed` message was still accepted), so `Ok(None)` means Twilio has
    /// no such message.
    ///
    /// # Errors
    ///
    /// The same classes as [`Notifier::send`]; [`NotifyError::Ambiguous`]
    /// also when more than [`MAX_RECONCILE_PAGES`] pages would be needed.
    pub async fn find_sent(
        &self,
        to: &E164,
        body: &str,
        since: Timestamp,
    ) -> Result<Option<String>, NotifyError> {
        let earliest = since
            .checked_sub(RECONCILE_CLOCK_SKEW)
            .unwrap_or(Timestamp::MIN);
        let mut request = self
            .client
            .get(
                self.messages_url
                    .clone()
                    .map_err(NotifyError::Unreachable)?,
            )
            .query(&[("To", to.as_str()), ("PageSize", PAGE_SIZE)]);
        for _ in 0..MAX_RECONCILE_PAGES {
            let bytes = self.execute(request).await?;
            match search_page(&bytes, to, body, earliest)? {
                (Some(sid), _) => return Ok(Some(sid)),
                (None, None) => return Ok(None),
                (None, Some(uri)) => request = self.client.get(self.next_page_url(&uri)?),
            }
        }
        Err(NotifyError::Ambiguous(format!(
            "searched {MAX_RECONCILE_PAGES} pages of messages to {to} without finding this one; \
             more remain, so whether it was sent is unknown"
        )))
    }

    /// Adds auth and the timeout, sends, and returns the body of a 2xx
    /// response; anything else becomes a classified [`NotifyError`].
    async fn execute(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, NotifyError> {
        let response = request
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose_secret()),
            )
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = read_body_capped(response, MAX_BODY_BYTES).await;
        if status.is_success() {
            return body.map(Vec::from).map_err(|e| {
                NotifyError::Ambiguous(format!(
                    "Twilio answered HTTP {status} but the body could not be read: {}",
                    describe_body_error(e)
                ))
            });
        }
        // A refusal is a refusal even if its body is lost; classify on the status.
        let body = body.map(Vec::from).unwrap_or_else(|e| {
            tracing::debug!(
                error = %describe_body_error(e),
                %status,
                "could not read Twilio's error body"
            );
            Vec::new()
        });
        Err(classify(status, &body))
    }

    /// The absolute URL of a `next_page_uri`, which Twilio gives relative to the host.
    fn next_page_url(&self, uri: &str) -> Result<Url, NotifyError> {
        // Only follow paths: an absolute or protocol-relative URI would send
        // our credentials to another host.
        if !uri.starts_with('/') || uri.starts_with("//") {
            return Err(NotifyError::Ambiguous(format!(
                "Twilio's next_page_uri `{uri}` is not a path; stopped listing messages"
            )));
        }
        let joined = format!("{}{uri}", self.config.base_url.trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| {
            NotifyError::Ambiguous(format!(
                "Twilio's next_page_uri `{uri}` does not make a URL: {e}"
            ))
        })
    }

    /// Maps a failure to send or to read the response head.
    fn transport_error(&self, err: reqwest::Error) -> NotifyError {
        let (builder, connect, timeout) = (err.is_builder(), err.is_connect(), err.is_timeout());
        // The URL can carry the recipient's number (find_sent); keep it out of messages.
        let detail = error_chain(&err.without_url());
        if builder {
            NotifyError::Unreachable(format!("could not build the request to Twilio: {detail}"))
        } else if connect {
            // Includes DNS, TLS and connect timeouts: the request was never written.
            NotifyError::Unreachable(format!("could not connect to Twilio: {detail}"))
        } else if timeout {
            NotifyError::Ambiguous(format!(
                "no answer from Twilio within {:?}; it may have accepted the message: {detail}",
                self.config.timeout
            ))
        } else {
            NotifyError::Ambiguous(format!(
                "the connection to Twilio failed after the request was sent: {detail}"
            ))
        }
    }
}

/// Twilio sends SMS: only phone numbers are its recipients.
fn sms_recipient(to: &Recipient) -> Result<&E164, NotifyError> {
    to.phone().ok_or_else(|| NotifyError::Other {
        status: 0,
        code: None,
        message: format!("{to} is not a phone number; Twilio only sends SMS"),
    })
}

#[async_trait]
impl Notifier for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let to = sms_recipient(to)?;
        let url = self
            .messages_url
            .clone()
            .map_err(NotifyError::Unreachable)?;
        let (from, messaging_service_sid) = match &self.config.sender {
            Sender::From(number) => (Some(number.as_str()), None),
            Sender::MessagingService(sid) => (None, Some(sid.as_str())),
        };
        let form = CreateMessageForm {
            to: to.as_str(),
            from,
            messaging_service_sid,
            body,
        };
        let bytes = self.execute(self.client.post(url).form(&form)).await?;
        read_created(&bytes)
    }

    /// Twilio lists the account's messages: see [`Twilio::find_sent`].
    fn can_list_sent(&self) -> bool {
        true
    }

    async fn find_sent(
        &self,
        to: &Recipient,
        body: &str,
        since: jiff::Timestamp,
    ) -> Result<Option<String>, NotifyError> {
        Twilio::find_sent(self, sms_recipient(to)?, body, since).await
    }
}

/// Reads the `201` reply of a message create into a [`Delivery`].
pub(crate) fn read_created(bytes: &[u8]) -> Result<Delivery, NotifyError> {
    let created: CreatedMessage = serde_json::from_slice(bytes).map_err(|e| {
        NotifyError::Ambiguous(format!(
            "Twilio accepted the request but its reply could not be read: {e}"
        ))
    })?;
    let segments = created
        .num_segments
        .as_ref()
        .and_then(NumberOrString::as_u32);
    tracing::debug!(
        sid = %created.sid,
        status = ?created.status,
        segments,
        "Twilio accepted the message"
    );
    Ok(Delivery {
        id: created.sid,
        // "0" means no sender has been assigned yet (Messaging Service,
        // scheduled send): the count is not known, not zero.
        segments: segments.filter(|&n| n > 0),
    })
}

/// Reads one page of the message list (newest first): the SID of a message
/// matching [`ListedMessage::is_match`], or else the next page's URI when
/// the search must go on: there is one, and every message on this page was
/// created at or after `earliest` (a page reaching back past it ends the
/// search; checking the whole page tolerates messages created in the same
/// second listed slightly out of order).
pub(crate) fn search_page(
    bytes: &[u8],
    to: &E164,
    body: &str,
    earliest: Timestamp,
) -> Result<(Option<String>, Option<String>), NotifyError> {
    let page: MessagePage = serde_json::from_slice(bytes).map_err(|e| {
        NotifyError::Ambiguous(format!("Twilio's message list could not be read: {e}"))
    })?;
    if let Some(found) = page
        .messages
        .iter()
        .find(|m| m.is_match(to, body, earliest))
    {
        return Ok((Some(found.sid.clone()), None));
    }
    let reached_earlier = page
        .messages
        .iter()
        .any(|m| m.created().is_some_and(|created| created < earliest));
    if reached_earlier {
        return Ok((None, None));
    }
    Ok((None, page.next_page_uri.filter(|uri| !uri.is_empty())))
}

/// [`classify`] for a raw status code; `None` for a status that is not an
/// HTTP status or is a success (which never reaches `classify`). For
/// [`crate::fuzzing`].
pub(crate) fn classify_reply(status: u16, body: &[u8]) -> Option<NotifyError> {
    let status = reqwest::StatusCode::from_u16(status).ok()?;
    (!status.is_success()).then(|| classify(status, body))
}

/// `{base}/2010-04-01/Accounts/{sid}/Messages.json`, segments percent-encoded.
fn messages_url(base: &str, account_sid: &str) -> Result<Url, String> {
    let mut url = Url::parse(base).map_err(|e| {
        format!("the Twilio base URL `{base}` is not a URL ({e}); expected e.g. {DEFAULT_BASE_URL}")
    })?;
    url.path_segments_mut()
        .map_err(|()| format!("the Twilio base URL `{base}` cannot have a path"))?
        .pop_if_empty()
        .extend([API_VERSION, "Accounts", account_sid, "Messages.json"]);
    Ok(url)
}

/// Turns a non-2xx answer into an error, keyed on Twilio's code and the HTTP
/// status, never on the message text.
fn classify(status: reqwest::StatusCode, body: &[u8]) -> NotifyError {
    let http = status.as_u16();
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|b| b.code.as_ref())
        .and_then(NumberOrString::as_u32);
    let message = match &parsed {
        Some(error) => error.describe(status),
        // A proxy's HTML or text, quoted briefly.
        None => describe_reply(status, body),
    };

    // Twilio: "An API Request that receives an error 429 response is never
    // processed and is always safe to retry."
    if http == 429 || code == Some(20429) {
        return NotifyError::RateLimited {
            code: code.unwrap_or(u32::from(http)),
            // Twilio documents no Retry-After for Messages: back off with jitter.
            retry_after: None,
        };
    }
    if status.is_server_error() {
        let code = code.map(|c| format!(", code {c}")).unwrap_or_default();
        return NotifyError::Ambiguous(format!(
            "Twilio answered HTTP {http}{code} ({message}); it may have accepted the message"
        ));
    }
    match code {
        // Invalid `To`, `To` missing, region not enabled, recipient replied
        // STOP, unreachable from this sender, not a mobile number.
        Some(c @ 21211) => NotifyError::Permanent {
            code: c,
            message: format!("{message}; check the phone number in the routes sheet"),
        },
        Some(c @ 21610) => NotifyError::Unsubscribed {
            code: c,
            message: format!(
                "{message}; the recipient replied STOP and must reply START before they can be texted again"
            ),
        },
        Some(c @ (21604 | 21408 | 21612 | 21614)) => NotifyError::Permanent { code: c, message },
        Some(c @ 20003) => NotifyError::Configuration {
            code: c,
            message: format!("{message}; {CHECK_CREDENTIALS}"),
        },
        None if http == 401 => NotifyError::Configuration {
            code: u32::from(http),
            message: format!("{message}; {CHECK_CREDENTIALS}"),
        },
        // Invalid `From`; `From` is not an SMS-capable number of this account.
        Some(c @ (21212 | 21606)) => NotifyError::Configuration {
            code: c,
            message: format!("{message}; {CHECK_SENDER}"),
        },
        Some(c @ 21608) => NotifyError::Configuration {
            code: c,
            message: format!(
                "{message}; TWILIO_ACCOUNT_SID is a trial account (or lacks an approved \
                 compliance profile), which can only text verified numbers"
            ),
        },
        // 21611 (the sender's queue is full: retry later) and every other 4xx.
        _ => NotifyError::Other {
            status: http,
            code,
            message,
        },
    }
}

static RFC2822: DateTimeParser = DateTimeParser::new();

/// The form of a Message create.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateMessageForm<'a> {
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messaging_service_sid: Option<&'a str>,
    body: &'a str,
}

/// The parts of the 201 reply farewatch uses.
#[derive(Deserialize)]
struct CreatedMessage {
    sid: String,
    #[serde(default)]
    status: Option<MessageStatus>,
    /// A string such as `"1"` in every documented example.
    #[serde(default)]
    num_segments: Option<NumberOrString>,
}

/// Twilio's message status, with a catch-all for values added later.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Delivered,
    Undelivered,
    Receiving,
    Received,
    Accepted,
    Scheduled,
    Read,
    PartiallyDelivered,
    Canceled,
    #[serde(other)]
    Unknown,
}

/// Both error shapes: legacy `{code, message, more_info, status[, details]}`
/// (401s add `detail`) and RFC 9457 `{type, title, status, code, detail, ...}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<NumberOrString>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

impl ErrorBody {
    fn describe(&self, status: reqwest::StatusCode) -> String {
        let headline = self.message.as_deref().or(self.title.as_deref());
        let mut text = match (headline, self.detail.as_deref()) {
            (Some(h), Some(d)) if h != d => format!("{h}: {d}"),
            (Some(h), _) => h.to_owned(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("unknown status")
            ),
        };
        if let Some(details) = self.details.as_ref().filter(|d| !d.is_null()) {
            let details = details.to_string();
            let quoted: String = details.chars().take(MAX_QUOTED_BODY_CHARS).collect();
            text.push_str(&format!(" (details: {quoted})"));
        }
        if let Some(more_info) = &self.more_info {
            text.push_str(&format!(" (see {more_info})"));
        }
        text
    }
}

/// Twilio sends some numbers as strings (`num_segments`); accept either.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    String(String),
}

impl NumberOrString {
    fn as_u32(&self) -> Option<u32> {
        match self {
            Self::Number(n) => u32::try_from(*n).ok(),
            Self::String(s) => s.trim().parse().ok(),
        }
    }
}

/// One page of `GET Messages.json`.
#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<ListedMessage>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

/// The parts of a listed message reconciliation compares.
#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    /// RFC 2822, e.g. `Thu, 24 Aug 2023 05:01:45 +0000`; set when Twilio
    /// accepts the message. (`date_sent` is not read: it stays `null` while
    /// the message is queued.)
    #[serde(default)]
    date_created: Option<String>,
}

impl ListedMessage {
    /// When Twilio accepted the message, if the date can be read.
    fn created(&self) -> Option<Timestamp> {
        self.date_created
            .as_deref()
            .and_then(|d| RFC2822.parse_timestamp(d).ok())
    }

    fn is_match(&self, to: &E164, body: &str, earliest: Timestamp) -> bool {
        let outbound = self
            .direction
            .as_deref()
            .is_some_and(|d| d.starts_with("outbound"));
        // The server filters on `To` already; a fake or a future API might not.
        let same_recipient = self.to.as_deref().is_none_or(|t| t == to.as_str());
        let recent = self.created().is_some_and(|created| created >= earliest);
        outbound && same_recipient && recent && self.body.as_deref() == Some(body)
    }
}
