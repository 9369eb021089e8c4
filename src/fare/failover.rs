//! Fare providers in priority order behind one lookup: the walk described
//! in [`crate::upstream::failover`], applied to fare searches.

use std::sync::Arc;

use futures::future::join_all;

use super::FarePool;
use crate::domain::{LookupKey, Quote};
pub use crate::upstream::failover::{AllFailed, Strategy};
use crate::upstream::pool::PoolHealth;

/// Fare providers in priority order.
#[derive(Debug)]
pub struct Failover {
    pools: Vec<Arc<FarePool>>,
    strategy: Strategy,
}

impl Failover {
    /// Providers in priority order (the first is asked first).
    pub fn new(pools: Vec<Arc<FarePool>>, strategy: Strategy) -> Self {
        Self { pools, strategy }
    }

    /// A single provider.
    pub fn single(pool: Arc<FarePool>) -> Self {
        Self::new(vec![pool], Strategy::FirstAnswer)
    }

    /// The providers, in priority order.
    pub fn pools(&self) -> &[Arc<FarePool>] {
        &self.pools
    }

    /// How many lookups a cycle should keep in flight: each provider's
    /// controller gates its own requests, so the fan-out only has to be wide
    /// enough for every provider to reach its ceiling (a lookup waits in at
    /// most one provider's queue at a time). Lookups beyond it wait in the
    /// cycle's stream, costing nothing.
    pub fn max_concurrency(&self) -> usize {
        self.pools
            .iter()
            .map(|p| p.limits().max_concurrency.max(1))
            .fold(0usize, usize::saturating_add)
            .max(1)
    }

    /// Requests sent to every provider so far.
    pub fn requests(&self) -> u64 {
        self.pools.iter().map(|p| p.stats().requests()).sum()
    }

    /// Each provider's health.
    pub fn health(&self) -> Vec<PoolHealth> {
        self.pools.iter().map(|p| p.health()).collect()
    }

    /// The cheapest quote for `key`, per the strategy.
    pub async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, AllFailed> {
        match self.strategy {
            Strategy::FirstAnswer => self.first_answer(key).await,
            Strategy::Compare(k) => self.compare(key, k.max(1)).await,
        }
    }

    async fn first_answer(&self, key: &LookupKey) -> Result<Option<Quote>, AllFailed> {
        let mut attempts = Vec::new();
        for pool in &self.pools {
            match pool.cheapest(key).await {
                Ok(answer) => {
                    if !attempts.is_empty() {
                        tracing::info!(route = %key, provider = pool.name(), failed_over_from = %AllFailed { attempts: attempts.clone() }, "answered after failover");
                    }
                    return Ok(answer);
                }
                Err(error) => attempts.push((pool.name(), error)),
            }
        }
        Err(AllFailed { attempts })
    }

    async fn compare(&self, key: &LookupKey, k: usize) -> Result<Option<Quote>, AllFailed> {
        let mut attempts = Vec::new();
        let mut answers: Vec<Option<Quote>> = Vec::new();
        let mut remaining = self.pools.iter();
        // Ask k at a time; providers that fail are replaced by the next ones.
        loop {
            let batch: Vec<&Arc<FarePool>> =
                remaining.by_ref().take(k - answers.len().min(k)).collect();
            if batch.is_empty() {
                break;
            }
            let results = join_all(batch.iter().map(|pool| pool.cheapest(key))).await;
            for (pool, result) in batch.into_iter().zip(results) {
                match result {
                    Ok(answer) => answers.push(answer),
                    Err(error) => attempts.push((pool.name(), error)),
                }
            }
            if answers.len() >= k {
                break;
            }
        }
        if answers.is_empty() {
            return Err(AllFailed { attempts });
        }
        let cheapest = answers.into_iter().flatten().min_by(|a, b| {
            // Quotes in different currencies cannot be ranked; keep the first.
            a.price
                .checked_cmp(&b.price)
                .unwrap_or(std::cmp::Ordering::Less)
        });
        Ok(cheapest)
    }
}
