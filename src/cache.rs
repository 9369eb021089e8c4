//! STUB — to be implemented (helper: store). The public API below is the contract.
//!
//! The quote cache: Redis when `REDIS_URL` is set, otherwise in-process.

use std::time::Duration;

use crate::domain::{LookupKey, Quote};

/// Default time a quote stays cached.
pub const DEFAULT_QUOTE_TTL: Duration = Duration::from_secs(5 * 60);

/// A cached provider answer: `None` means the provider had no offers.
pub type CachedAnswer = Option<Quote>;

/// Could not set the cache up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// Placeholder.
    #[error("cache error: {0}")]
    Other(String),
}

/// The quote cache.
#[derive(Clone, Debug)]
pub struct QuoteCache {}

impl QuoteCache {
    /// An in-process cache.
    pub fn memory(ttl: Duration) -> Self {
        let _ = ttl;
        todo!()
    }

    /// A Redis cache at `url`.
    pub async fn redis(url: &str, ttl: Duration) -> Result<Self, CacheError> {
        let _ = (url, ttl);
        todo!()
    }

    /// `"redis"` or `"memory"`.
    pub fn kind(&self) -> &'static str {
        todo!()
    }

    /// Looks up many keys at once; a miss (or a cache failure) is `None`.
    pub async fn get_many(&self, provider: &str, keys: &[LookupKey]) -> Vec<Option<CachedAnswer>> {
        let _ = (provider, keys);
        todo!()
    }

    /// Caches a provider's answer. Never call this with an error.
    pub async fn put(&self, provider: &str, key: &LookupKey, answer: &CachedAnswer) {
        let _ = (provider, key, answer);
        todo!()
    }
}
