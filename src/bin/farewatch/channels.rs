//! Named channels from the environment: `SLACK_WEBHOOK_<NAME>`,
//! `DISCORD_WEBHOOK_<NAME>`, and `WEBHOOK_URL_<NAME>` with
//! `WEBHOOK_SECRET_<NAME>`. A sheet row sends to them as `slack:name`,
//! `discord:name` or `webhook:name`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use farewatch::domain::Recipient;
use farewatch::engine::{Engine, NotifyLimits, DEFAULT_SETTLE_BOUND, DEFAULT_SETTLE_DELAY};
use farewatch::notify::discord::{self, Discord, DiscordConfig};
use farewatch::notify::slack::{self, Slack, SlackConfig};
use farewatch::notify::webhook::{self, Webhook, WebhookConfig};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use secrecy::SecretString;

use crate::setup::SetupError;

/// Slack allows about one message a second per webhook.
const SLACK_LIMITS: NotifyLimits = NotifyLimits {
    max_concurrency: 1,
    rate_per_sec: 1.0,
    timeout: Duration::from_secs(15),
    // Unused: these channels cannot list what they posted, so an unknown
    // outcome is resent by the next cycle, never settled within one.
    settle_delay: DEFAULT_SETTLE_DELAY,
    settle_bound: DEFAULT_SETTLE_BOUND,
};
/// Discord allows 5 requests per 2 seconds per webhook.
const DISCORD_LIMITS: NotifyLimits = NotifyLimits {
    max_concurrency: 2,
    rate_per_sec: 2.5,
    timeout: Duration::from_secs(15),
    // Unused: these channels cannot list what they posted, so an unknown
    // outcome is resent by the next cycle, never settled within one.
    settle_delay: DEFAULT_SETTLE_DELAY,
    settle_bound: DEFAULT_SETTLE_BOUND,
};
/// A receiver of our own: modest, it may be a small service.
const WEBHOOK_LIMITS: NotifyLimits = NotifyLimits {
    max_concurrency: 4,
    rate_per_sec: 10.0,
    timeout: Duration::from_secs(15),
    // Unused: these channels cannot list what they posted, so an unknown
    // outcome is resent by the next cycle, never settled within one.
    settle_delay: DEFAULT_SETTLE_DELAY,
    settle_bound: DEFAULT_SETTLE_BOUND,
};

/// Registers every configured channel on the engine; returns how many.
pub fn register(
    mut engine: Engine,
    client: &reqwest::Client,
) -> Result<(Engine, usize), SetupError> {
    let mut count = 0;
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (name, value) in vars {
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        let notifier: Arc<dyn Notifier> = if name.starts_with("SLACK_WEBHOOK_") {
            Arc::new(Slack::new(
                client.clone(),
                SlackConfig {
                    webhook_url: SecretString::from(value),
                    timeout: slack::DEFAULT_TIMEOUT,
                },
            ))
        } else if name.starts_with("DISCORD_WEBHOOK_") {
            Arc::new(Discord::new(
                client.clone(),
                DiscordConfig {
                    webhook_url: SecretString::from(value),
                    username: Some("farewatch".into()),
                    timeout: discord::DEFAULT_TIMEOUT,
                },
            ))
        } else if let Some(suffix) = name.strip_prefix("WEBHOOK_URL_") {
            let secret_var = format!("WEBHOOK_SECRET_{suffix}");
            let Some(secret) = crate::sources::env(&secret_var) else {
                return Err(SetupError::Invalid {
                    name: "WEBHOOK_URL_*",
                    message: format!("{name} is set but {secret_var} is not: every webhook is signed; set a shared secret"),
                });
            };
            Arc::new(Webhook::new(
                client.clone(),
                WebhookConfig {
                    url: value,
                    secret: SecretString::from(secret),
                    timeout: webhook::DEFAULT_TIMEOUT,
                },
            ))
        } else {
            continue;
        };
        let limits = if name.starts_with("SLACK") {
            SLACK_LIMITS
        } else if name.starts_with("DISCORD") {
            DISCORD_LIMITS
        } else {
            WEBHOOK_LIMITS
        };
        engine = engine.with_channel(&name, notifier, limits);
        count += 1;
    }
    Ok((engine, count))
}

/// Stands in for SMS when Twilio is not configured (a channels-only setup):
/// rows with phone numbers are rejected when the sheet is read, so this
/// only answers if that check is bypassed.
#[derive(Debug)]
pub struct NoSms;

/// The variables SMS needs.
pub const TWILIO_VARS: &str =
    "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM (or TWILIO_MESSAGING_SERVICE_SID)";

#[async_trait]
impl Notifier for NoSms {
    fn name(&self) -> &'static str {
        "sms-unconfigured"
    }

    async fn send(&self, to: &Recipient, _body: &str) -> Result<Delivery, NotifyError> {
        Err(NotifyError::Configuration {
            code: 0,
            message: format!("cannot text {to}: SMS is not configured; set {TWILIO_VARS}"),
        })
    }
}
