//! One [`ProviderPool`] per provider: the single place that owns how hard
//! that provider is driven and how its failures are handled — concurrency,
//! pacing, timeout, retries with backoff, the circuit breaker and counters.
//!
//! One lookup goes through these steps, in this order:
//! 1. the circuit breaker: an open circuit fails the lookup at once
//!    ([`UpstreamError::CircuitOpen`]), so a dead provider costs nothing;
//! 2. for each attempt: a concurrency permit, then the pacer's slot, then the
//!    provider call under a hard timeout. Taking the permit first means a
//!    slow provider cannot pile up sleeping requests beyond its limit;
//! 3. a failed attempt is retried only when [`crate::upstream::retry`] says so, after a
//!    full-jitter backoff or the provider's (capped) `Retry-After`. A 429
//!    also slows the pacer down (and successes speed it back up), so a cycle
//!    under a rate limit takes longer instead of losing rows;
//! 4. the final outcome is recorded once in the breaker. Quota exhaustion and
//!    rejected credentials open the circuit straight away.
//!
//! Everything waits on tokio's clock, so tests drive it with `tokio::time::pause`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::upstream::breaker::{Breaker, BreakerConfig, BreakerState, Outcome};
use crate::upstream::budget::Budget;
use crate::upstream::retry::{Backoff, Jitter, RetryClass, Retryable};
use crate::upstream::{Limits, UpstreamError};

/// Attempts a lookup gets when the provider keeps answering 429: more than
/// for other failures, because a throttle is the provider asking us to slow
/// down (which the pacer does), not a sign the lookup cannot succeed.
pub const RATE_LIMITED_MAX_ATTEMPTS: u32 = 8;

/// The slowest the pacer backs off to after repeated 429s (one request
/// every this long). Past it, retries' own backoff takes over.
pub const MAX_PACING_INTERVAL: Duration = Duration::from_secs(5);

/// The pacing interval the pacer starts from after a 429 when no rate limit
/// was configured (unlimited): ten requests a second.
const FIRST_THROTTLED_INTERVAL: Duration = Duration::from_millis(100);

/// How long rejected credentials keep a provider's circuit open: retrying
/// them every lookup would only fill the log. The next cycle tries again.
const AUTH_FAILURE_OPEN_FOR: Duration = Duration::from_secs(10 * 60);

/// Spaces request starts evenly (a token bucket of burst 1), and slows down
/// when the provider throttles us.
///
/// Request *i* starts no earlier than `first + i * interval`. With burst 1 the
/// provider never sees more than the configured rate over any window, which
/// is what the documented per-second limits (e.g. Amadeus's "no more than 1
/// request every 100 ms") ask for. On a 429 the interval doubles (up to
/// [`MAX_PACING_INTERVAL`]); each success takes a tenth off again, down to
/// the configured interval: multiplicative decrease, gradual recovery.
#[derive(Debug)]
pub struct Pacer {
    base: Option<Duration>,
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    interval: Option<Duration>,
    next_slot: Option<Instant>,
}

impl Pacer {
    /// A pacer for `rate_per_sec` starts per second; `0` (or less) means unlimited.
    pub fn new(rate_per_sec: f64) -> Self {
        let base = (rate_per_sec > 0.0 && rate_per_sec.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / rate_per_sec));
        Self {
            base,
            state: Mutex::new(PacerState {
                interval: base,
                next_slot: None,
            }),
        }
    }

    /// Waits until this caller's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut state = self.state.lock().await;
            let Some(interval) = state.interval else {
                return;
            };
            let now = Instant::now();
            let slot = state.next_slot.map_or(now, |n| n.max(now));
            state.next_slot = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// The provider throttled us: halve the rate. Returns the new interval.
    pub async fn slow_down(&self) -> Duration {
        let mut state = self.state.lock().await;
        let next = state
            .interval
            .map_or(FIRST_THROTTLED_INTERVAL, |i| i.saturating_mul(2))
            .min(MAX_PACING_INTERVAL);
        state.interval = Some(next);
        next
    }

    /// A request succeeded: recover a tenth of the way towards the configured rate.
    pub async fn speed_up(&self) {
        let mut state = self.state.lock().await;
        if let Some(current) = state.interval {
            let floor = self.base.unwrap_or(Duration::ZERO);
            if current > floor {
                let next = current.mul_f64(0.9);
                state.interval = if next <= floor { self.base } else { Some(next) };
            }
        }
    }

    /// The interval in force (`None`: unlimited).
    pub async fn interval(&self) -> Option<Duration> {
        self.state.lock().await.interval
    }
}

/// How many recent request latencies are kept for percentiles: enough for
/// stable p99s, small enough to stay flat in memory however long it runs.
const LATENCY_WINDOW: usize = 1024;

/// Counters for one provider, readable while a cycle runs.
#[derive(Debug, Default)]
pub struct PoolStats {
    requests: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    skipped: AtomicU64,
    by_kind: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    latencies: std::sync::Mutex<VecDeque<Duration>>,
}

/// Latency percentiles over the recent window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl PoolStats {
    /// Requests actually sent to the provider (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Lookups that ended in an error after their retries.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Attempts that were retried.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// 429 answers received.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
    /// Lookups skipped because the circuit was open or the budget spent.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Failed lookups by [`UpstreamError::kind`].
    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        let map = self
            .by_kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// Percentiles of the recent request latencies (`None` before any request).
    pub fn latency(&self) -> Option<Latency> {
        let window = self
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = window.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| {
            let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
        };
        Some(Latency {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
        })
    }

    fn record_latency(&self, latency: Duration) {
        let mut window = self
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(latency);
    }

    fn record_error(&self, error: &UpstreamError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .by_kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(error.kind()).or_default() += 1;
    }
}

/// A daily budget's standing, for reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetHealth {
    /// Requests allowed per UTC day.
    pub per_day: u64,
    /// Spent today.
    pub spent: u64,
    /// Left today.
    pub remaining: u64,
}

/// A provider's health at a glance, for reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolHealth {
    /// The provider's name.
    pub name: String,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Lookups that failed after retries.
    pub errors: u64,
    /// Attempts that were retried.
    pub retries: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// Lookups skipped (open circuit or spent budget).
    pub skipped: u64,
    /// `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Failed lookups by kind (`timeout`, `rate_limited`, `upstream`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Recent request latency percentiles.
    pub latency: Option<Latency>,
    /// The daily budget, when one is set.
    pub budget: Option<BudgetHealth>,
}

/// A fare source with its limits, retry policy and circuit breaker.
///
/// Generic over the kind of provider: fare sources (the default) and
/// flight-status providers share the same guarded call
/// ([`ProviderPool::guarded`]).
pub struct ProviderPool<S: ?Sized> {
    name: &'static str,
    source: Arc<S>,
    limits: Limits,
    permits: Semaphore,
    pacer: Pacer,
    backoff: Backoff,
    breaker: Breaker,
    /// Why the breaker was forced open (quota, credentials), for the message
    /// of every lookup it skips; `None` when it opened on failures.
    trip_reason: std::sync::Mutex<Option<String>>,
    budget: Option<Budget>,
    stats: PoolStats,
}

impl<S: ?Sized> std::fmt::Debug for ProviderPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPool")
            .field("provider", &self.name)
            .field("limits", &self.limits)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: ?Sized + Send + Sync> ProviderPool<S> {
    /// Wraps `source` (named `name`) with `limits`, `backoff` and `breaker`.
    pub fn build(
        name: &'static str,
        source: Arc<S>,
        limits: Limits,
        backoff: Backoff,
        breaker: BreakerConfig,
    ) -> Self {
        Self {
            name,
            permits: Semaphore::new(limits.max_concurrency.max(1)),
            pacer: Pacer::new(limits.rate_per_sec),
            breaker: Breaker::new(name, breaker),
            trip_reason: std::sync::Mutex::new(None),
            source,
            limits,
            backoff,
            budget: None,
            stats: PoolStats::default(),
        }
    }

    /// The provider behind the pool.
    pub fn source(&self) -> &Arc<S> {
        &self.source
    }

    /// Limits the provider to a daily budget of requests.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The daily budget, when one is set.
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// The provider's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The provider's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Counters and breaker state, for reports.
    pub fn health(&self) -> PoolHealth {
        PoolHealth {
            name: self.name().to_owned(),
            requests: self.stats.requests(),
            errors: self.stats.errors(),
            retries: self.stats.retries(),
            throttled: self.stats.throttled(),
            skipped: self.stats.skipped(),
            breaker: self.breaker.state().name().to_owned(),
            errors_by_kind: self.stats.errors_by_kind(),
            latency: self.stats.latency(),
            budget: self.budget.as_ref().map(|b| BudgetHealth {
                per_day: b.per_day(),
                spent: b.spent_today().1,
                remaining: b.remaining(),
            }),
        }
    }

    /// Runs `call` against the provider under the pool's whole policy: the
    /// breaker, then per attempt a permit, a pacer slot, the budget and a hard
    /// timeout, retrying what [`crate::upstream::retry`] says is worth retrying.
    /// `what` names the request in logs.
    pub async fn guarded<T, F, Fut>(
        &self,
        what: &(dyn std::fmt::Display + Sync),
        call: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Arc<S>) -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                let reason = self
                    .trip_reason
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                // The failover names the provider; the message says why.
                return Err(UpstreamError::CircuitOpen(match reason {
                    Some(reason) => reason,
                    None => format!("it has failed repeatedly ({rejected})"),
                }));
            }
        };
        let mut jitter = Jitter::from_entropy();
        let mut attempt: u32 = 0;
        let result = loop {
            let result = self.attempt(&call).await;
            let error = match &result {
                Ok(_) => {
                    self.pacer.speed_up().await;
                    // A success means the circuit let us through again.
                    self.trip_reason
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    break result;
                }
                Err(error) => error,
            };
            let throttled = matches!(error, UpstreamError::RateLimited { .. });
            if throttled {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                let interval = self.pacer.slow_down().await;
                tracing::warn!(
                    provider = self.name(),
                    per_sec = format!("{:.2}", 1.0 / interval.as_secs_f64()),
                    "provider answered 429: slowing down"
                );
            }
            let max_attempts = if throttled {
                RATE_LIMITED_MAX_ATTEMPTS.max(self.backoff.max_attempts())
            } else {
                self.backoff.max_attempts()
            };
            let RetryClass::Retry { after } = error.retry_class() else {
                break result;
            };
            if attempt + 1 >= max_attempts {
                break result;
            }
            let delay = self.backoff.delay_for(attempt, after, &mut jitter);
            tracing::info!(provider = self.name(), request = %what, attempt = attempt + 1, %error, ?delay, "retrying");
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            attempt += 1;
        };

        if let Err(error) = &result {
            self.stats.record_error(error);
            match error {
                UpstreamError::QuotaExhausted(_) => {
                    let until = until_next_month();
                    tracing::warn!(
                        provider = self.name(),
                        reopens_in_hours = until.as_secs() / 3600,
                        "quota exhausted: no more lookups until the quota renews"
                    );
                    self.set_trip_reason(
                        "its quota is exhausted until the 1st of next month (UTC)".into(),
                    );
                    self.breaker.trip_for(until);
                }
                UpstreamError::Auth(_) => {
                    self.set_trip_reason(format!(
                        "its credentials were rejected; not retried for {} minutes",
                        AUTH_FAILURE_OPEN_FOR.as_secs() / 60
                    ));
                    self.breaker.trip_for(AUTH_FAILURE_OPEN_FOR);
                }
                _ => {}
            }
        }
        permit.record(Outcome::of_fare(&result));
        // Exported only when the daemon serves /metrics (no-ops otherwise).
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        metrics::counter!("farewatch_lookups_total", "provider" => self.name, "outcome" => outcome)
            .increment(1);
        let state = match self.breaker.state().name() {
            "closed" => 0.0,
            "half_open" => 1.0,
            _ => 2.0,
        };
        metrics::gauge!("farewatch_breaker_state", "provider" => self.name).set(state);
        result
    }

    fn set_trip_reason(&self, reason: String) {
        *self
            .trip_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    /// One request: permit, pacer slot, budget, provider call under the hard timeout.
    async fn attempt<T, F, Fut>(&self, call: &F) -> Result<T, UpstreamError>
    where
        F: Fn(Arc<S>) -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        // The semaphore is never closed, so acquire cannot fail; if it ever
        // did, going ahead unthrottled beats failing the lookup.
        let _permit = self.permits.acquire().await.ok();
        self.pacer.wait().await;
        // Every request bills a search, retries included: spend just before sending.
        if let Some(budget) = &self.budget {
            if !budget.try_spend() {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                return Err(UpstreamError::BudgetSpent(format!(
                    "its daily budget of {} searches is spent until 00:00 UTC",
                    budget.per_day()
                )));
            }
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        // The provider sets its own HTTP timeout; this outer one also bounds
        // everything around it (token refresh, body reads) so a hung
        // upstream can never stall a cycle.
        let outcome =
            match tokio::time::timeout(self.limits.timeout, call(self.source.clone())).await {
                Ok(result) => result,
                Err(_) => Err(UpstreamError::Timeout(self.limits.timeout)),
            };
        let elapsed = started.elapsed();
        self.stats.record_latency(elapsed);
        metrics::histogram!("farewatch_provider_latency_seconds", "provider" => self.name)
            .record(elapsed.as_secs_f64());
        outcome
    }
}

/// Time until 00:00 UTC on the first of next month, when monthly API quotas
/// (Amadeus's free tier) renew.
fn until_next_month() -> Duration {
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first_of_next = today
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok());
    first_of_next
        .and_then(|z| Duration::try_from(z.timestamp().duration_since(now)).ok())
        .unwrap_or(Duration::from_secs(24 * 3600))
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

    #[tokio::test(start_paused = true)]
    async fn pacer_halves_the_rate_on_429_and_recovers_to_the_configured_rate() {
        let pacer = Pacer::new(10.0);
        assert_eq!(pacer.slow_down().await, Duration::from_millis(200));
        assert_eq!(pacer.slow_down().await, Duration::from_millis(400));
        for _ in 0..100 {
            pacer.speed_up().await;
        }
        assert_eq!(
            pacer.interval().await,
            Some(Duration::from_millis(100)),
            "never faster than configured"
        );
        let unlimited = Pacer::new(0.0);
        assert_eq!(unlimited.slow_down().await, FIRST_THROTTLED_INTERVAL);
        for _ in 0..10 {
            unlimited.slow_down().await;
        }
        assert_eq!(unlimited.interval().await, Some(MAX_PACING_INTERVAL));
    }

    #[test]
    fn next_month_is_less_than_a_month_away() {
        let d = until_next_month();
        assert!(
            d > Duration::ZERO && d <= Duration::from_secs(31 * 24 * 3600),
            "{d:?}"
        );
    }
}
