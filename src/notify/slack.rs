//! Slack incoming webhooks (Slack's guide:
//! <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>;
//! the replies it sends are in `tests/fixtures/notify/slack-webhook-*`).
//!
//! One call: `POST https://hooks.slack.com/services/T…/B…/…` with
//! `{"text": "..."}`. The URL is both the destination and the secret (there
//! is no auth header), so it is never printed: `Debug` shows only its host,
//! and no error message quotes it.
//!
//! Slack answers `200` with the plain-text body `ok`, and refuses with a
//! plain-text error code. Errors are classified by that code and the HTTP
//! status, never by free text:
//!
//! | answer | [`NotifyError`] | why |
//! |---|---|---|
//! | 200 `ok` | success, `Delivery { id: "slack-<ms>-<n>", segments: None }` | Slack returns no message id |
//! | 429 | `RateLimited { code: 429, retry_after }` (from `Retry-After`) | about one message per second per webhook |
//! | 5xx (`rollup_error`, ...) | `Ambiguous` | Slack may have posted it |
//! | 400 `invalid_payload`, `no_text`, `too_many_attachments` | `Other { status: 400 }` | farewatch sent something Slack cannot post: a bug |
//! | `action_prohibited`, `invalid_token`, `posting_to_general_channel_denied` (403) | `Configuration { code: <status> }` | the webhook exists but may not post |
//! | `channel_not_found`, `no_service`, `no_service_id`, `no_team`, `team_disabled`, `no_active_hooks` (404), `channel_is_archived` (410) | `Permanent { code: <status> }` | the webhook or its channel is gone: it will never post again |
//! | other 401/403, 404/410 without a known code | `Configuration` / `Permanent` as above, by status |
//! | any other status, or a 2xx that is not `ok` | `Other` / `Ambiguous` | |
//! | connection refused, DNS, TLS | `Unreachable` | nothing was sent |
//! | timeout, connection lost after sending | `Ambiguous` | |
//!
//! Slack's error codes are strings, so the `code` of `Permanent` and
//! `Configuration` is the HTTP status; the Slack code is in the message.
//!
//! `&`, `<` and `>` in the text are escaped as Slack asks, so text from the
//! routes sheet cannot form a control sequence such as `<!channel>` (which
//! would notify everyone in the channel) or a disguised link.
//!
//! Slack cannot be asked what a webhook posted, so [`Notifier::find_sent`]
//! keeps its default `Ok(None)`: after an ambiguous outcome the outbox posts
//! again, and the channel may see an alert twice (at-least-once).

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use super::webhook::{
    describe_reply, local_id, log_rate_limit, parse_url, quote_body, redact_url, send, Reply,
};
use super::{Delivery, Notifier, NotifyError};
use crate::domain::Recipient;

/// Per-request timeout a configuration should use unless told otherwise.
///
/// Slack answers a webhook in well under a second; ten seconds rides out a
/// slow moment without holding the cycle's other alerts back for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Hint for failures only a new webhook URL can fix.
const CHECK_WEBHOOK: &str =
    "check this channel's SLACK_WEBHOOK_* setting (create a new incoming webhook if it was removed)";

/// How to reach one Slack incoming webhook.
///
/// `Debug` shows only the webhook's host: the URL is the secret.
#[derive(Clone)]
pub struct SlackConfig {
    /// `https://hooks.slack.com/services/T…/B…/…`, or a local fake.
    pub webhook_url: SecretString,
    /// Per-request timeout ([`DEFAULT_TIMEOUT`] is a sensible value).
    pub timeout: Duration,
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field(
                "webhook_url",
                &redact_url(self.webhook_url.expose_secret(), false),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How hard one Slack webhook may be driven: Slack allows about one
/// message a second per webhook.
pub const DEFAULT_LIMITS: super::NotifyLimits = super::webhook_limits(1, 1.0);

/// The Slack incoming-webhook notifier.
///
/// The webhook is the recipient: [`Notifier::send`] ignores its `to`
/// argument and posts to the webhook's channel: the engine routes `slack:NAME`
/// in the sheet to the webhook in `SLACK_WEBHOOK_NAME`.
pub struct Slack {
    client: reqwest::Client,
    config: SlackConfig,
    /// The parsed URL, or why it cannot be used (reported on every call,
    /// since `new` cannot fail). Never printed.
    url: Result<Url, String>,
    sent: AtomicU64,
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slack")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// A notifier using the shared `client`.
    pub fn new(client: reqwest::Client, config: SlackConfig) -> Self {
        let url = parse_url(config.webhook_url.expose_secret(), "the Slack webhook URL")
            .map_err(|e| format!("{e}; {CHECK_WEBHOOK}"));
        Self {
            client,
            config,
            url,
            sent: AtomicU64::new(0),
        }
    }

    /// Posts `text` to the webhook's channel.
    ///
    /// # Errors
    ///
    /// See the module's outcome table.
    pub async fn post(&self, text: &str) -> Result<Delivery, NotifyError> {
        let url = self.url.clone().map_err(NotifyError::Unreachable)?;
        let escaped = escape(text);
        let request = self.client.post(url).json(&Message { text: &escaped });
        let reply = send(request, "Slack", self.config.timeout, true).await?;
        if reply.status.is_success() && reply.body.trim_ascii() == b"ok" {
            let id = local_id("slack", &self.sent);
            tracing::debug!(%id, "Slack accepted the message");
            return Ok(Delivery { id, segments: None });
        }
        Err(classify(&reply))
    }
}

#[async_trait]
impl Notifier for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    /// Posts `body` to the webhook; `to` is ignored (the webhook itself is
    /// the recipient).
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let _ = to;
        self.post(body).await
    }
}

/// Slack's escaping for message text: `&`, `<`, `>` only (and `&` first).
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return text.into();
    }
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .into()
}

/// What Slack's plain-text error code says about the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlackCode {
    /// The payload was malformed: a bug on our side.
    BadPayload,
    /// The webhook may not post (revoked token, restricted channel).
    Forbidden,
    /// The webhook, its app, workspace or channel is gone.
    Gone,
}

fn slack_code(code: &str) -> Option<SlackCode> {
    match code {
        "invalid_payload" | "no_text" | "too_many_attachments" => Some(SlackCode::BadPayload),
        "action_prohibited" | "invalid_token" | "posting_to_general_channel_denied" => {
            Some(SlackCode::Forbidden)
        }
        "channel_not_found"
        | "no_service"
        | "no_service_id"
        | "no_team"
        | "team_disabled"
        | "no_active_hooks"
        | "channel_is_archived" => Some(SlackCode::Gone),
        _ => None,
    }
}

/// Classifies a reply that is not `200 ok`: rate limits and server errors by
/// status first (whatever the body), then Slack's code, then the status.
fn classify(reply: &Reply) -> NotifyError {
    let status = reply.status;
    let http = status.as_u16();
    let described = describe_reply(status, &reply.body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = log_rate_limit("Slack", reply, None, "");
        return NotifyError::RateLimited {
            code: u32::from(http),
            retry_after,
        };
    }
    if status.is_server_error() {
        return NotifyError::Ambiguous(format!(
            "Slack answered {described}; it may have posted the message"
        ));
    }
    let code = quote_body(&reply.body);
    let kind = slack_code(&code).or(match http {
        400 => Some(SlackCode::BadPayload),
        401 | 403 => Some(SlackCode::Forbidden),
        404 | 410 => Some(SlackCode::Gone),
        _ => None,
    });
    match kind {
        Some(SlackCode::BadPayload) => NotifyError::Other {
            status: http,
            code: None,
            message: format!(
                "Slack refused the message as malformed ({described}); \
                 this is a farewatch bug, please report it"
            ),
        },
        Some(SlackCode::Forbidden) => NotifyError::Configuration {
            code: u32::from(http),
            message: format!("the Slack webhook may not post ({described}); {CHECK_WEBHOOK}"),
        },
        Some(SlackCode::Gone) => NotifyError::Permanent {
            code: u32::from(http),
            message: format!(
                "the Slack webhook or its channel no longer exists ({described}); {CHECK_WEBHOOK}"
            ),
        },
        None if status.is_success() => NotifyError::Ambiguous(format!(
            "Slack answered {described} instead of `ok`; it may have posted the message"
        )),
        None => NotifyError::Other {
            status: http,
            code: None,
            message: format!("Slack refused the message ({described})"),
        },
    }
}

/// The JSON Slack gets.
#[derive(Serialize)]
struct Message<'a> {
    text: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_the_three_control_characters() {
        assert_eq!(escape("plain: 5% off, café"), "plain: 5% off, café");
        assert_eq!(
            escape("<!channel> Mum & Dad > 2 &amp;"),
            "&lt;!channel&gt; Mum &amp; Dad &gt; 2 &amp;amp;"
        );
    }

    #[test]
    fn every_documented_code_has_a_class() {
        for code in [
            "invalid_payload",
            "no_text",
            "too_many_attachments",
            "action_prohibited",
            "invalid_token",
            "posting_to_general_channel_denied",
            "channel_not_found",
            "no_service",
            "no_service_id",
            "no_team",
            "team_disabled",
            "no_active_hooks",
            "channel_is_archived",
        ] {
            assert!(slack_code(code).is_some(), "{code}");
        }
        assert_eq!(
            slack_code("rollup_error"),
            None,
            "a 5xx: ambiguous by status"
        );
    }
}
