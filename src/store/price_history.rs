//! Price history: every quote the engine obtained from a provider, per
//! search, for the verdict ([`crate::verdict`]) and the history chart. The
//! [`PriceHistory`] trait is the backends' half; [`Store`] methods are the
//! typed API.
//!
//! Schema (version 5, `migrations/*/0005_price_history.sql`):
//! - `price_history`: `id` (identity), `search_key` (the search's identity,
//!   [`LookupKey::history_key`]: origin, destination, dates, adults and
//!   currency), `observed_at` (when the provider was asked), `price_minor`
//!   and `currency` (the quoted total), `source` (the provider's name);
//!   indexed on (`search_key`, `observed_at`).
//!
//! # What is recorded
//! Each answer a provider gave the engine in a cycle (see
//! [`crate::engine`]): one row per fresh lookup, written in one batch at the
//! end of the cycle. A quote served from farewatch's own quote cache is
//! *not* a new observation (it is a copy of one already recorded) and a dry
//! run records nothing.
//!
//! # Retention
//! [`Store::compact_price_history`] keeps every observation of the last
//! [`KEEP_ALL_FOR`] (14 days); older ones are downsampled to one row per
//! search, currency and UTC day: the day's minimum (the earliest of equal
//! minimums), kept as it was observed (its time and source). Compaction is
//! idempotent: running it again changes nothing until time moves on. A
//! search checked every 15 minutes keeps about 1,350 rows for its first
//! 14 days and one a day after that: a year is under 1,700 rows.
//!
//! [`LookupKey::history_key`]: crate::domain::LookupKey::history_key

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::{Store, StoreError};
use crate::domain::{LookupKey, Money, Quote};

/// How long every observation is kept before it is downsampled to one a day.
pub const KEEP_ALL_FOR: SignedDuration = SignedDuration::from_hours(14 * 24);

/// One observed price of one search.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PricePoint {
    /// The search, [`LookupKey::history_key`].
    pub search_key: String,
    /// When the provider was asked.
    pub observed_at: Timestamp,
    /// The quoted total for all passengers.
    pub price: Money,
    /// The provider that answered (`"serpapi"`, `"demo"`, ...).
    pub source: String,
}

impl PricePoint {
    /// The observation a provider's quote for `key` makes.
    pub fn from_quote(key: &LookupKey, quote: &Quote) -> Self {
        Self {
            search_key: key.history_key(),
            observed_at: quote.fetched_at,
            price: quote.price,
            source: quote.provider.clone(),
        }
    }
}

/// The backends' half of the price history; each method is documented on
/// the [`Store`] method of the same name.
#[allow(missing_docs)]
#[async_trait]
pub trait PriceHistory: Send + Sync + 'static {
    async fn record_prices(&self, points: &[PricePoint]) -> Result<u64, StoreError>;
    async fn price_history(
        &self,
        search_key: &str,
        since: Timestamp,
    ) -> Result<Vec<PricePoint>, StoreError>;
    async fn compact_price_history(&self, before: Timestamp) -> Result<u64, StoreError>;
}

impl Store {
    /// Appends `points` to the history in one write (one statement per
    /// batch of rows, committed with the writer's group commit); returns
    /// how many rows were written. Nothing is de-duplicated: each point is
    /// one observation.
    pub async fn record_prices(&self, points: &[PricePoint]) -> Result<u64, StoreError> {
        if points.is_empty() {
            return Ok(0);
        }
        self.backend.record_prices(points).await
    }

    /// The observations of `search_key` at or after `since`, oldest first
    /// (equal times in the order they were recorded).
    pub async fn price_history(
        &self,
        search_key: &str,
        since: Timestamp,
    ) -> Result<Vec<PricePoint>, StoreError> {
        self.backend.price_history(search_key, since).await
    }

    /// Applies the retention (see the module docs): observations older than
    /// `now - 14 days` are reduced to one per search, currency and UTC day,
    /// the day's minimum. Returns how many rows were deleted.
    pub async fn compact_price_history(&self, now: Timestamp) -> Result<u64, StoreError> {
        let before = now.checked_sub(KEEP_ALL_FOR).unwrap_or(Timestamp::MIN);
        self.backend.compact_price_history(before).await
    }
}
