//! Notification channels behind the [`Notifier`] trait, and the SMS text.

pub mod console;
pub mod discord;
pub mod slack;
pub mod sms;
pub mod twilio;
pub mod webhook;

use async_trait::async_trait;

use std::time::Duration;

use crate::domain::Recipient;
use crate::upstream::retry::{RetryClass, Retryable};

/// The most the notifier may be driven: ceilings for its adaptive
/// controller ([`crate::upstream::arc`]), which finds the operating point.
#[derive(Debug, Clone, Copy)]
pub struct NotifyLimits {
    /// Ceiling on sends in flight at once.
    pub max_concurrency: usize,
    /// Ceiling on sends started per second; `0` is unlimited.
    pub rate_per_sec: f64,
    /// Hard bound on one send, after which its outcome is unknown.
    pub timeout: Duration,
    /// How long to wait after a send with an unknown outcome before asking a
    /// channel that can list what it sent whether the message is there
    /// ([`DEFAULT_SETTLE_DELAY`]; tests use a few milliseconds).
    pub settle_delay: Duration,
    /// How long one message may spend being reconciled and sent again within
    /// a cycle before it is left for the next cycle ([`DEFAULT_SETTLE_BOUND`]).
    pub settle_bound: Duration,
}

/// The default [`NotifyLimits::settle_delay`]: 2 s.
///
/// A create that Twilio accepted just before answering 5xx (or before the
/// connection dropped) is listed once its write is visible to reads; two
/// seconds covers that with a wide margin while keeping a cycle short.
pub const DEFAULT_SETTLE_DELAY: Duration = Duration::from_secs(2);

/// The default [`NotifyLimits::settle_bound`]: 30 s per message.
///
/// With a 2 s settle delay and full-jitter backoff this allows four or five
/// rounds of "list, then send again if not found", enough to ride out a
/// provider failing a large share of requests, without letting one message
/// hold up the run for long. What is still unknown after it is reconciled
/// by the next cycle.
pub const DEFAULT_SETTLE_BOUND: Duration = Duration::from_secs(30);

/// How hard a webhook-style channel (Slack, Discord, a signed webhook) may
/// be driven: `max_concurrency` sends at once, at most `rate_per_sec`. The
/// settle settings are unused: these channels cannot list what they posted,
/// so an unknown outcome is resent by the next cycle, never settled within one.
pub const fn webhook_limits(max_concurrency: usize, rate_per_sec: f64) -> NotifyLimits {
    NotifyLimits {
        max_concurrency,
        rate_per_sec,
        timeout: Duration::from_secs(15),
        settle_delay: DEFAULT_SETTLE_DELAY,
        settle_bound: DEFAULT_SETTLE_BOUND,
    }
}

/// A channel that can deliver one text to one recipient.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// A short lower-case name for logs and reports (`"twilio"`).
    fn name(&self) -> &'static str;

    /// Sends `body` to `to`. Succeeds only once the provider has accepted the message.
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError>;

    /// Whether [`Notifier::find_sent`] really lists what the provider
    /// accepted, so that "not found" means "not sent".
    ///
    /// The outbox decides on it: an unknown outcome on a channel that can
    /// list is reconciled within the cycle and sent again only when not
    /// found (exactly once in effect). A channel that cannot (Slack, Discord,
    /// webhooks: the default) is resent once per later cycle, never within
    /// the cycle: at least once, rather than exactly once.
    fn can_list_sent(&self) -> bool {
        false
    }

    /// Looks for a message with exactly `body` already accepted for `to`
    /// since `since`, returning its id. This is how the outbox settles a send
    /// whose outcome is unknown (a timeout, a 5xx, a crash) before deciding to
    /// send again. A channel that cannot list what it sent answers `None`
    /// (and says so in [`Notifier::can_list_sent`]).
    async fn find_sent(
        &self,
        to: &Recipient,
        body: &str,
        since: jiff::Timestamp,
    ) -> Result<Option<String>, NotifyError> {
        let _ = (to, body, since);
        Ok(None)
    }
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's message id (Twilio's `SM...` SID).
    pub id: String,
    /// Segments billed, when the provider says.
    pub segments: Option<u32>,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The provider refused this message for good (invalid number, region
    /// not enabled, not a mobile number...). Retrying will not help.
    #[error("rejected by the provider (code {code}): {message}")]
    Permanent {
        /// The provider's error code (Twilio: 21211, 21614, ...).
        code: u32,
        /// The provider's message.
        message: String,
    },
    /// The recipient has opted out of this sender (replied STOP). Permanent
    /// like [`NotifyError::Permanent`] until the recipient opts back in; the
    /// outbox records the recipient as suppressed.
    #[error("rejected by the provider, the recipient unsubscribed (code {code}): {message}")]
    Unsubscribed {
        /// The provider's error code (Twilio: 21610).
        code: u32,
        /// The provider's message.
        message: String,
    },
    /// The credentials or sender configuration are wrong; fix the configuration.
    #[error("configuration rejected by the provider (code {code}): {message}")]
    Configuration {
        /// The provider's error code (Twilio: 20003, 21608, ...).
        code: u32,
        /// The provider's message.
        message: String,
    },
    /// The provider says it did not process the request; safe to retry later.
    #[error("rate limited by the provider (code {code})")]
    RateLimited {
        /// The provider's error code (Twilio: 20429).
        code: u32,
        /// How long the provider asked us to wait, when it said (Slack,
        /// Discord `Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    /// The request was never sent (connection refused, DNS): safe to retry.
    #[error("could not reach the provider: {0}")]
    Unreachable(String),
    /// It is unknown whether the provider accepted the message (timeout,
    /// 5xx, connection lost after sending). Must be reconciled before a resend.
    #[error("delivery outcome unknown: {0}")]
    Ambiguous(String),
    /// Any other refusal (HTTP status with the provider's code and message).
    #[error("provider error (HTTP {status}, code {code:?}): {message}")]
    Other {
        /// HTTP status.
        status: u16,
        /// The provider's error code, when it sent one.
        code: Option<u32>,
        /// The provider's message.
        message: String,
    },
}

/// | variant | class | why |
/// |---|---|---|
/// | `RateLimited` | retry | Twilio documents 20429 as "never processed and always safe to retry" |
/// | `Unreachable` | retry | the request never left (connection refused, DNS, TLS), so it cannot have been delivered |
/// | `Ambiguous` | **give up** | the provider may have accepted the message (timeout or 5xx after sending) and Twilio has no idempotency key: a blind re-send can text the user twice. The outbox must reconcile first (look the message up), then decide |
/// | `Permanent` | give up | invalid number, not a mobile: the same message fails the same way |
/// | `Unsubscribed` | give up | the recipient replied STOP: nothing reaches them until they reply START |
/// | `Configuration` | give up | credentials or sender are wrong until someone fixes them |
/// | `Other` | give up | unknown refusals are not retried blindly. Twilio 21611 (the sender's queue holds more than 10 hours of messages) would succeed only much later, which is the outbox's next pass, not a retry within seconds |
impl Retryable for NotifyError {
    fn retry_class(&self) -> RetryClass {
        match self {
            NotifyError::RateLimited { retry_after, .. } => RetryClass::Retry {
                after: *retry_after,
            },
            NotifyError::Unreachable(_) => RetryClass::RETRY,
            NotifyError::Ambiguous(_)
            | NotifyError::Permanent { .. }
            | NotifyError::Unsubscribed { .. }
            | NotifyError::Configuration { .. }
            | NotifyError::Other { .. } => RetryClass::GiveUp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notify_error_is_classified() {
        let table = [
            (
                NotifyError::RateLimited {
                    code: 20429,
                    retry_after: None,
                },
                true,
            ),
            (NotifyError::Unreachable("connection refused".into()), true),
            (
                NotifyError::Ambiguous("timed out after sending".into()),
                false,
            ),
            (
                NotifyError::Permanent {
                    code: 21211,
                    message: "invalid number".into(),
                },
                false,
            ),
            (
                NotifyError::Unsubscribed {
                    code: 21610,
                    message: "unsubscribed".into(),
                },
                false,
            ),
            (
                NotifyError::Configuration {
                    code: 20003,
                    message: "Authenticate".into(),
                },
                false,
            ),
            (
                NotifyError::Other {
                    status: 400,
                    code: Some(21611),
                    message: "queue full".into(),
                },
                false,
            ),
        ];
        for (error, retry) in table {
            assert_eq!(error.should_retry(), retry, "{error:?}");
            assert_eq!(error.retry_class().retry_after(), None, "{error:?}");
        }
    }
}
