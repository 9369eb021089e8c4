//! STUB — to be implemented (helper: twilio). The public API below is the contract.
//!
//! Twilio Programmable Messaging: a small hand-written client.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Delivery, Notifier, NotifyError};
use crate::domain::E164;

/// Twilio's API host, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Who the message comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A Twilio phone number (`TWILIO_FROM`).
    From(String),
    /// A Messaging Service SID `MG...` (`TWILIO_MESSAGING_SERVICE_SID`).
    MessagingService(String),
}

/// How to reach Twilio.
#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// Base URL, [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// `AC...` account SID (also the basic-auth user unless `api_key_sid` is set).
    pub account_sid: String,
    /// Auth token (or API key secret).
    pub auth_token: SecretString,
    /// The sender.
    pub sender: Sender,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The Twilio SMS notifier.
#[derive(Debug)]
pub struct Twilio {}

impl Twilio {
    /// A notifier using the shared `client`.
    pub fn new(client: reqwest::Client, config: TwilioConfig) -> Self {
        let _ = (client, config);
        todo!()
    }
}

#[async_trait]
impl Notifier for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }
    async fn send(&self, to: &E164, body: &str) -> Result<Delivery, NotifyError> {
        let _ = (to, body);
        todo!()
    }
}
