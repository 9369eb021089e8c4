//! Fare sources: one module per provider behind the [`FareSource`] trait.
//!
//! Wire types stay private to each provider's file; only domain types
//! ([`LookupKey`] in, [`Quote`] out) cross the trait. Concurrency, pacing and
//! de-duplication are not a source's business: [`crate::upstream::pool::ProviderPool`]
//! owns them, so a source only knows how to ask one question. The reply
//! plumbing every source shares (sending, capped reading, mapping failures
//! to [`UpstreamError`], and quoting replies without their secrets) lives in the
//! crate-private `reply` module.

pub mod amadeus;
pub mod demo;
pub mod duffel;
pub mod failover;
mod itinerary;
pub mod serpapi;
pub mod tequila;
pub mod travelpayouts;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{LookupKey, Quote};
use crate::upstream::breaker::BreakerConfig;
use crate::upstream::pool::ProviderPool;
use crate::upstream::retry::Backoff;
use crate::upstream::{Limits, UpstreamError};

/// A provider that can price one [`LookupKey`].
#[async_trait]
pub trait FareSource: Send + Sync + 'static {
    /// A short lower-case name used in logs, cache keys and reports (`"amadeus"`).
    fn name(&self) -> &'static str;

    /// The provider's documented limits, used when the configuration does not override them.
    fn default_limits(&self) -> Limits;

    /// Asks for the cheapest offer. `Ok(None)` means the provider answered
    /// and has no offers: that is an answer, not a failure.
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError>;
}

/// A fare source with its limits, retry policy and circuit breaker.
pub type FarePool = ProviderPool<dyn FareSource>;

impl ProviderPool<dyn FareSource> {
    /// Wraps `source` with `limits`, the default backoff and breaker.
    pub fn new(source: Arc<dyn FareSource>, limits: Limits) -> Self {
        Self::with_policy(source, limits, Backoff::default(), BreakerConfig::default())
    }

    /// Wraps `source` with explicit retry and breaker settings.
    pub fn with_policy(
        source: Arc<dyn FareSource>,
        limits: Limits,
        backoff: Backoff,
        breaker: BreakerConfig,
    ) -> Self {
        Self::build(source.name(), source, limits, backoff, breaker)
    }

    /// Asks the provider for `key`'s cheapest quote, within the limits,
    /// retrying what is worth retrying.
    pub async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let key = *key;
        self.guarded(&key, move |source: Arc<dyn FareSource>| async move {
            source.cheapest(&key).await
        })
        .await
    }
}
