//! One [`ProviderPool`] per provider: the single place that owns how hard
//! that provider is driven (concurrency, pacing, timeout) and its counters.
//!
//! The order of operations for one request is fixed and documented here:
//! take a concurrency permit, wait for the pacer's slot, then call the
//! provider under a hard timeout. Taking the permit first means a slow
//! provider cannot pile up sleeping requests beyond its concurrency limit.
//!
//! Pacing uses tokio's clock, so tests drive it with `tokio::time::pause`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::domain::{LookupKey, Quote};
use crate::fare::{FareError, FareSource, Limits};

/// Spaces request starts evenly at a fixed rate (a token bucket of burst 1).
///
/// Request *i* starts no earlier than `first + i / rate`. With burst 1 the
/// provider never sees more than the configured rate over any window, which
/// is what the documented per-second limits (e.g. Amadeus's "no more than 1
/// request every 100 ms") ask for.
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate_per_sec` starts per second; `0` (or less) means unlimited.
    pub fn new(rate_per_sec: f64) -> Self {
        let interval = (rate_per_sec > 0.0 && rate_per_sec.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / rate_per_sec));
        Self {
            interval,
            next_slot: Mutex::new(None),
        }
    }

    /// Waits until this caller's slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Counters for one provider, readable while a cycle runs.
#[derive(Debug, Default)]
pub struct PoolStats {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl PoolStats {
    /// Requests actually sent to the provider.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Requests that ended in an error.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// A fare source with its concurrency limit, pacer and timeout.
pub struct ProviderPool {
    source: Arc<dyn FareSource>,
    limits: Limits,
    permits: Semaphore,
    pacer: Pacer,
    stats: PoolStats,
}

impl std::fmt::Debug for ProviderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPool")
            .field("provider", &self.source.name())
            .field("limits", &self.limits)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ProviderPool {
    /// Wraps `source` with `limits` (use `source.default_limits()` when unconfigured).
    pub fn new(source: Arc<dyn FareSource>, limits: Limits) -> Self {
        Self {
            permits: Semaphore::new(limits.max_concurrency.max(1)),
            pacer: Pacer::new(limits.rate_per_sec),
            source,
            limits,
            stats: PoolStats::default(),
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &'static str {
        self.source.name()
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The provider's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Asks the provider for `key`'s cheapest quote, within the limits.
    pub async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, FareError> {
        // The semaphore is never closed, so acquire cannot fail; if it ever
        // did, going ahead unthrottled beats failing the lookup.
        let _permit = self.permits.acquire().await.ok();
        self.pacer.wait().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        // The source sets its own HTTP timeout; this outer one also bounds
        // everything around it (token refresh, body reads) so a hung
        // upstream can never stall a cycle.
        let outcome =
            match tokio::time::timeout(self.limits.timeout, self.source.cheapest(key)).await {
                Ok(result) => result,
                Err(_) => Err(FareError::Timeout(self.limits.timeout)),
            };
        if outcome.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_starts_at_the_rate() {
        let pacer = Arc::new(Pacer::new(10.0));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..5 {
            let p = pacer.clone();
            handles.push(tokio::spawn(async move {
                p.wait().await;
                Instant::now()
            }));
        }
        let mut times: Vec<Duration> = Vec::new();
        for h in handles {
            times.push(h.await.unwrap() - start);
        }
        times.sort();
        let expected: Vec<Duration> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(times, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_pacer_never_waits() {
        let pacer = Pacer::new(0.0);
        let start = Instant::now();
        for _ in 0..100 {
            pacer.wait().await;
        }
        assert_eq!(Instant::now(), start);
    }
}
