//! STUB — to be implemented (helper: amadeus). The public API below is the contract.
//!
//! Amadeus Self-Service Flight Offers Search v2 with OAuth2 client credentials.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{FareError, FareSource, Limits};
use crate::domain::{LookupKey, Quote};
use crate::store::TokenCache;

/// Amadeus's test environment, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://test.api.amadeus.com";

/// How to reach Amadeus.
#[derive(Clone, Debug)]
pub struct AmadeusConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// API key.
    pub client_id: String,
    /// API secret.
    pub client_secret: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The Amadeus fare source.
#[derive(Debug)]
pub struct Amadeus {}

impl Amadeus {
    /// A source using the shared `client`; `tokens` keeps the OAuth token across runs.
    pub fn new(
        client: reqwest::Client,
        config: AmadeusConfig,
        tokens: Option<Arc<dyn TokenCache>>,
    ) -> Self {
        let _ = (client, config, tokens);
        todo!()
    }
}

#[async_trait]
impl FareSource for Amadeus {
    fn name(&self) -> &'static str {
        "amadeus"
    }
    fn default_limits(&self) -> Limits {
        todo!()
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, FareError> {
        let _ = key;
        todo!()
    }
}
