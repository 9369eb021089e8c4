//! Discord webhooks (Discord's reference:
//! <https://discord.com/developers/docs/resources/webhook>; the replies it
//! sends are in `tests/fixtures/notify/discord-*.json`).
//!
//! One call: `POST https://discord.com/api/webhooks/{id}/{token}?wait=true`
//! with `{"content": "...", "allowed_mentions": {"parse": []}}` (plus
//! `username` when configured). The URL carries the webhook's token, so it
//! is the secret: `Debug` shows only its host, and no error message quotes it.
//!
//! - `allowed_mentions: {"parse": []}` means no `@everyone`, `@here`, role or
//!   user mention in an alert ever pings anyone, whatever the text says.
//! - `content` is cut to [`MAX_CONTENT_CHARS`] characters (Unicode scalar
//!   values, which is how Discord's API counts) on a character boundary,
//!   ending in `…` when cut, since a longer message is refused outright.
//! - `wait=true` is added unless the URL already sets `wait`: Discord then
//!   answers only once the message is saved (without it, "a message that is
//!   not saved does not return an error") and returns the message, whose id
//!   becomes [`Delivery::id`]. A `204` (a URL with `wait=false`) is a
//!   success too, with a local id `discord-<ms>-<n>`. Other query
//!   parameters of the URL (`thread_id`) are kept.
//!
//! # Outcomes
//!
//! Classified by the HTTP status and Discord's numeric JSON `code`, never by
//! the message text:
//!
//! | answer | [`NotifyError`] | why |
//! |---|---|---|
//! | 200 / 204 | success | |
//! | 429, any `X-RateLimit-Scope` (`user`, `global`, `shared`) | `RateLimited { code: 429, retry_after }` | the wait (body `retry_after`, else `Retry-After`) is carried and logged with the scope |
//! | 404 with code 10015 (Unknown Webhook) | `Permanent { code: 10015 }` | the webhook was deleted; Discord says not to use it again |
//! | 401, 403, or another 404 | `Configuration { code: <Discord code, else status> }` | bad token or URL |
//! | 400 (50035 Invalid Form Body, ...) and other 4xx | `Other { status, code }` | farewatch sent something Discord refuses |
//! | 5xx, timeout, connection lost after sending | `Ambiguous` | Discord may have posted it |
//! | connection refused, DNS, TLS | `Unreachable` | nothing was sent |
//!
//! Too many 401, 403 and 429 answers (10,000 in 10 minutes) get the IP
//! banned by Cloudflare for a while, so none of these is retried blindly:
//! only `RateLimited` is retryable, and the configuration errors wait for a
//! person.
//!
//! Discord can fetch a webhook message by id but not list them, so
//! [`Notifier::find_sent`] keeps its default `Ok(None)`: after an ambiguous
//! outcome the outbox posts again (at-least-once).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::webhook::{
    describe_reply, local_id, log_rate_limit, parse_url, quote_body, redact_url, send, Reply,
};
use super::{Delivery, Notifier, NotifyError};
use crate::domain::Recipient;

/// Discord's limit on a message's `content`, in characters (code points).
pub const MAX_CONTENT_CHARS: usize = 2000;

/// Per-request timeout a configuration should use unless told otherwise.
///
/// With `wait=true` Discord answers once the message is stored, normally
/// well under a second; ten seconds rides out a slow moment.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Discord's JSON error code for a deleted webhook.
pub const UNKNOWN_WEBHOOK: u32 = 10015;

/// Appended to content cut at [`MAX_CONTENT_CHARS`].
const ELLIPSIS: char = '…';

/// Hint for failures only a new webhook URL can fix.
const CHECK_WEBHOOK: &str =
    "check this channel's DISCORD_WEBHOOK_* setting (create a new webhook if it was deleted)";

/// How to reach one Discord webhook.
///
/// `Debug` shows only the webhook's host: the URL holds its token.
#[derive(Clone)]
pub struct DiscordConfig {
    /// `https://discord.com/api/webhooks/{id}/{token}`, optionally with
    /// `?thread_id=…` or `?wait=false`; or a local fake.
    pub webhook_url: SecretString,
    /// Overrides the webhook's default display name.
    pub username: Option<String>,
    /// Per-request timeout ([`DEFAULT_TIMEOUT`] is a sensible value).
    pub timeout: Duration,
}

impl fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordConfig")
            .field(
                "webhook_url",
                &redact_url(self.webhook_url.expose_secret(), false),
            )
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How hard one Discord webhook may be driven: Discord allows 5 requests
/// per 2 seconds per webhook.
pub const DEFAULT_LIMITS: super::NotifyLimits = super::webhook_limits(2, 2.5);

/// The Discord webhook notifier.
///
/// The webhook is the recipient: [`Notifier::send`] ignores its `to`
/// argument and posts to the webhook's channel: the engine routes
/// `discord:NAME` in the sheet to the webhook in `DISCORD_WEBHOOK_NAME`.
pub struct Discord {
    client: reqwest::Client,
    config: DiscordConfig,
    /// The URL with `wait=true`, or why it cannot be used (reported on every
    /// call, since `new` cannot fail). Never printed.
    url: Result<Url, String>,
    sent: AtomicU64,
}

impl fmt::Debug for Discord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discord")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Discord {
    /// A notifier using the shared `client`.
    pub fn new(client: reqwest::Client, config: DiscordConfig) -> Self {
        let url = parse_url(
            config.webhook_url.expose_secret(),
            "the Discord webhook URL",
        )
        .map(with_wait)
        .map_err(|e| format!("{e}; {CHECK_WEBHOOK}"));
        Self {
            client,
            config,
            url,
            sent: AtomicU64::new(0),
        }
    }

    /// Posts `text` (cut to [`MAX_CONTENT_CHARS`]) to the webhook's channel.
    ///
    /// # Errors
    ///
    /// See the module's outcome table.
    pub async fn post(&self, text: &str) -> Result<Delivery, NotifyError> {
        let url = self.url.clone().map_err(NotifyError::Unreachable)?;
        let content = truncate_content(text);
        let message = Message {
            content: &content,
            username: self.config.username.as_deref(),
            allowed_mentions: AllowedMentions { parse: [] },
        };
        let request = self.client.post(url).json(&message);
        let reply = send(request, "Discord", self.config.timeout, true).await?;
        if reply.status.is_success() {
            let id = serde_json::from_slice::<CreatedMessage>(&reply.body)
                .ok()
                .map(|m| m.id)
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| local_id("discord", &self.sent));
            tracing::debug!(%id, status = %reply.status, "Discord accepted the message");
            return Ok(Delivery { id, segments: None });
        }
        Err(classify(&reply))
    }
}

#[async_trait]
impl Notifier for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    /// Posts `body` to the webhook; `to` is ignored (the webhook itself is
    /// the recipient).
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let _ = to;
        self.post(body).await
    }
}

/// `text` if it fits in [`MAX_CONTENT_CHARS`] characters; otherwise its
/// first `MAX_CONTENT_CHARS - 1` characters and `…`. Never splits a
/// character (a multi-byte UTF-8 sequence).
pub fn truncate_content(text: &str) -> Cow<'_, str> {
    let mut starts = text.char_indices().map(|(i, _)| i);
    // The byte offset of the last character that may be kept before the
    // ellipsis, and whether anything follows the limit at all.
    let Some(cut) = starts.nth(MAX_CONTENT_CHARS - 1) else {
        return Cow::Borrowed(text);
    };
    if starts.next().is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(cut + ELLIPSIS.len_utf8());
    out.push_str(&text[..cut]);
    out.push(ELLIPSIS);
    Cow::Owned(out)
}

/// The URL with `wait=true` appended, unless it already says `wait`.
fn with_wait(mut url: Url) -> Url {
    if !url.query_pairs().any(|(k, _)| k == "wait") {
        url.query_pairs_mut().append_pair("wait", "true");
    }
    url
}

/// Classifies a non-2xx answer.
fn classify(reply: &Reply) -> NotifyError {
    let status = reply.status;
    let http = status.as_u16();
    let parsed = serde_json::from_slice::<ErrorBody>(&reply.body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let described = match parsed.as_ref().and_then(|b| b.message.as_deref()) {
        Some(message) => {
            let mut text = format!(
                "HTTP {http}, code {}: {message}",
                code.map_or_else(|| "none".to_owned(), |c| c.to_string())
            );
            // Which fields were invalid (50035), quoted briefly.
            if let Some(errors) = parsed.as_ref().and_then(|b| b.errors.as_ref()) {
                text.push_str(&format!(
                    " (errors: {})",
                    quote_body(errors.to_string().as_bytes())
                ));
            }
            text
        }
        None => describe_reply(status, &reply.body),
    };

    if status == StatusCode::TOO_MANY_REQUESTS {
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let asked = parsed
            .as_ref()
            .and_then(|b| b.retry_after)
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let global = header("x-ratelimit-global").is_some_and(|g| g.eq_ignore_ascii_case("true"))
            || parsed.as_ref().and_then(|b| b.global).unwrap_or(false);
        let scope = header("x-ratelimit-scope").unwrap_or_else(|| "unknown".to_owned());
        let retry_after = log_rate_limit(
            "Discord",
            reply,
            asked,
            &format!("scope {scope}, global {global}"),
        );
        return NotifyError::RateLimited {
            code: u32::from(http),
            retry_after,
        };
    }
    if status.is_server_error() {
        return NotifyError::Ambiguous(format!(
            "Discord answered {described}; it may have posted the message"
        ));
    }
    match (http, code) {
        (404, Some(c @ UNKNOWN_WEBHOOK)) => NotifyError::Permanent {
            code: c,
            message: format!(
                "the Discord webhook was deleted ({described}); stop using it and {CHECK_WEBHOOK}"
            ),
        },
        (401 | 403 | 404, _) => NotifyError::Configuration {
            code: code.unwrap_or(u32::from(http)),
            message: format!("Discord refused the webhook ({described}); {CHECK_WEBHOOK}"),
        },
        _ => NotifyError::Other {
            status: http,
            code,
            message: format!("Discord refused the message ({described})"),
        },
    }
}

/// The JSON Discord gets.
#[derive(Serialize)]
struct Message<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    allowed_mentions: AllowedMentions,
}

/// `{"parse": []}`: mention nobody.
#[derive(Serialize)]
struct AllowedMentions {
    parse: [&'static str; 0],
}

/// The part of the `wait=true` reply (a message object) farewatch uses.
#[derive(Deserialize)]
struct CreatedMessage {
    id: String,
}

/// Discord's error object, and the rate-limit body.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
    /// Seconds, with decimals (`64.57`).
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    global: Option<bool>,
    /// Per-field problems of a 50035 Invalid Form Body.
    #[serde(default)]
    errors: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn wait_is_added_once_and_other_parameters_kept() {
        let url = |s: &str| with_wait(Url::parse(s).unwrap()).to_string();
        assert_eq!(
            url("https://discord.com/api/webhooks/1/tok"),
            "https://discord.com/api/webhooks/1/tok?wait=true"
        );
        assert_eq!(
            url("https://discord.com/api/webhooks/1/tok?thread_id=9"),
            "https://discord.com/api/webhooks/1/tok?thread_id=9&wait=true"
        );
        assert_eq!(
            url("https://discord.com/api/webhooks/1/tok?wait=false"),
            "https://discord.com/api/webhooks/1/tok?wait=false"
        );
    }

    #[test]
    fn truncation_edges() {
        let exact = "a".repeat(MAX_CONTENT_CHARS);
        assert!(matches!(truncate_content(&exact), Cow::Borrowed(_)));
        let over = "é".repeat(MAX_CONTENT_CHARS + 1);
        let cut = truncate_content(&over);
        assert_eq!(cut.chars().count(), MAX_CONTENT_CHARS);
        assert!(cut.ends_with(ELLIPSIS));
        assert_eq!(truncate_content(""), "");
    }

    proptest! {
        #[test]
        fn truncated_content_fits_and_is_a_prefix(text in "\\PC{0,2100}|.{1990,2010}") {
            let cut = truncate_content(&text);
            prop_assert!(cut.chars().count() <= MAX_CONTENT_CHARS);
            if text.chars().count() <= MAX_CONTENT_CHARS {
                prop_assert_eq!(cut.as_ref(), text.as_str());
            } else {
                let kept = cut.strip_suffix(ELLIPSIS).unwrap();
                prop_assert!(text.starts_with(kept));
                prop_assert_eq!(kept.chars().count(), MAX_CONTENT_CHARS - 1);
            }
        }
    }
}
