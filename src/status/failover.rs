//! Flight-status providers in priority order behind one lookup.
//!
//! Each provider sits in a [`ProviderPool`] (its own concurrency, pacing,
//! retries and circuit breaker). The walk:
//! - providers that cannot answer this kind of query are passed over;
//! - a failure (after the pool's retries) or an open circuit falls through to
//!   the next provider;
//! - **low signal**: an answer that only says `scheduled` with no times at
//!   all is kept as a fallback while a healthy later provider is asked; if
//!   that one has more to say, its answer wins;
//! - answers are cached for [`DEFAULT_STATUS_TTL`], so many watchers of one
//!   flight cost one call.
//!
//! [`StatusFailover::flights_many`] sends a batch to the healthiest, fastest
//! provider first (closed circuit, then lowest median latency).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{FlightState, FlightStatus, StatusProvider, StatusQuery};
use crate::upstream::breaker::{BreakerConfig, BreakerPhase};
use crate::upstream::failover::AllFailed;
use crate::upstream::pool::{PoolHealth, ProviderPool};
use crate::upstream::retry::Backoff;
use crate::upstream::{Limits, UpstreamError};

/// How long a status answer is reused: statuses move in minutes, and a
/// poller or many alert rows asking about one flight should cost one call.
pub const DEFAULT_STATUS_TTL: Duration = Duration::from_secs(2 * 60);

/// A status provider with its limits, retries and breaker.
pub type StatusPool = ProviderPool<dyn StatusProvider>;

/// Status providers in priority order, with an answer cache.
#[derive(Debug)]
pub struct StatusFailover {
    pools: Vec<Arc<StatusPool>>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Vec<FlightStatus>)>>,
}

impl StatusFailover {
    /// Providers in priority order; answers cached for `ttl`.
    pub fn new(pools: Vec<Arc<StatusPool>>, ttl: Duration) -> Self {
        Self {
            pools,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The providers, in priority order.
    pub fn pools(&self) -> &[Arc<StatusPool>] {
        &self.pools
    }

    /// Each provider's health.
    pub fn health(&self) -> Vec<PoolHealth> {
        self.pools.iter().map(|p| p.health()).collect()
    }

    /// The flights matching `query`, from the cache or the providers.
    pub async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, AllFailed> {
        let order: Vec<&Arc<StatusPool>> = self.pools.iter().collect();
        self.walk(query, &order).await
    }

    /// Many lookups (a poller's batch), asking the healthiest, fastest provider first.
    pub async fn flights_many(
        &self,
        queries: &[StatusQuery],
    ) -> Vec<Result<Vec<FlightStatus>, AllFailed>> {
        let mut order: Vec<&Arc<StatusPool>> = self.pools.iter().collect();
        order.sort_by(|a, b| {
            let rank = |p: &StatusPool| {
                let health = p.health();
                let closed = health.breaker == BreakerPhase::Closed;
                let p50 = health.latency.map_or(f64::MAX, |l| l.p50_ms);
                (!closed, p50)
            };
            let (ra, rb) = (rank(a), rank(b));
            ra.0.cmp(&rb.0).then(ra.1.total_cmp(&rb.1))
        });
        let mut out = Vec::with_capacity(queries.len());
        for query in queries {
            out.push(self.walk(query, &order).await);
        }
        out
    }

    async fn walk(
        &self,
        query: &StatusQuery,
        order: &[&Arc<StatusPool>],
    ) -> Result<Vec<FlightStatus>, AllFailed> {
        let key = query.to_string() + &format!("{query:?}");
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let candidates: Vec<&&Arc<StatusPool>> =
            order.iter().filter(|p| p.source_supports(query)).collect();
        if candidates.is_empty() && !order.is_empty() {
            return Err(unsupported(query, order));
        }
        let mut attempts = Vec::new();
        let mut fallback: Option<Vec<FlightStatus>> = None;
        for (i, pool) in candidates.iter().enumerate() {
            match pool.flights(query).await {
                Ok(flights) => {
                    let healthy_next = candidates[i + 1..]
                        .iter()
                        .any(|p| p.breaker_state().phase() == BreakerPhase::Closed);
                    if is_low_signal(&flights) && healthy_next {
                        tracing::info!(provider = pool.name(), %query, "low-signal answer (scheduled, no times): asking the next provider");
                        fallback.get_or_insert(flights);
                        continue;
                    }
                    self.store(key, &flights);
                    return Ok(flights);
                }
                Err(error) => attempts.push((pool.name(), error)),
            }
        }
        match fallback {
            Some(flights) => {
                self.store(key, &flights);
                Ok(flights)
            }
            None => Err(AllFailed { attempts }),
        }
    }

    fn cached(&self, key: &str) -> Option<Vec<FlightStatus>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, flights)| flights.clone())
    }

    fn store(&self, key: String, flights: &[FlightStatus]) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Keep memory flat: drop what has expired before adding.
        let ttl = self.ttl;
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        cache.insert(key, (Instant::now(), flights.to_vec()));
    }
}

/// Providers are configured but none can answer this kind of query (say,
/// departures by ICAO airport with only Aviationstack): say so, rather than
/// `AllFailed`'s "no provider is configured", which sends people looking
/// for missing keys. The one attempt is not a provider's, hence [`NOT_SENT`].
fn unsupported(query: &StatusQuery, configured: &[&Arc<StatusPool>]) -> AllFailed {
    let names: Vec<&str> = configured.iter().map(|p| p.name()).collect();
    AllFailed {
        attempts: vec![(
            NOT_SENT,
            UpstreamError::Rejected {
                status: 0,
                code: None,
                message: format!(
                    "no status provider supports {query} (configured: {})",
                    names.join(", ")
                ),
            },
        )],
    }
}

/// Names the attempt of a lookup no provider was asked about.
pub const NOT_SENT: &str = "status";

/// Only `scheduled`, and no time of any kind: nothing a watcher can use.
pub fn is_low_signal(flights: &[FlightStatus]) -> bool {
    !flights.is_empty()
        && flights.iter().all(|f| {
            let no_times = |e: &super::Endpoint| {
                e.scheduled.is_none()
                    && e.estimated.is_none()
                    && e.actual.is_none()
                    && e.delay_minutes.is_none()
            };
            f.state == FlightState::Scheduled && no_times(&f.departure) && no_times(&f.arrival)
        })
}

impl ProviderPool<dyn StatusProvider> {
    /// Wraps a flight-status provider with `limits` and a breaker.
    pub fn for_status(
        provider: Arc<dyn StatusProvider>,
        limits: Limits,
        breaker: BreakerConfig,
    ) -> Self {
        Self::build(
            provider.name(),
            provider,
            limits,
            Backoff::default(),
            breaker,
        )
    }

    /// Whether the provider can answer this kind of query at all.
    pub fn source_supports(&self, query: &StatusQuery) -> bool {
        self.source().supports(query)
    }

    /// Looks flights up, within the limits, retrying what is worth retrying.
    pub async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, UpstreamError> {
        let owned = query.clone();
        self.guarded(query, move |provider: Arc<dyn StatusProvider>| {
            let query = owned.clone();
            async move { provider.flights(&query).await }
        })
        .await
    }
}
