//! One [`ProviderPool`] per provider: the single place that owns how hard
//! that provider is driven and how its failures are handled — the adaptive
//! concurrency and pacing controller ([`crate::upstream::arc`]), timeouts,
//! retries, the retry budget, the circuit breaker, the daily budget and the
//! counters.
//!
//! One lookup goes through these steps, outermost first; each retry goes
//! through all of them again, so it never waits while holding a slot:
//! 1. **the circuit breaker**: an open circuit fails the attempt at once
//!    ([`UpstreamError::CircuitOpen`]), so the failover moves to the next
//!    provider. Lookups queued behind a provider whose circuit opens, and
//!    retries sleeping in their backoff, are woken and fail over too;
//! 2. **the fleet's turn**, when the pool has a [`FleetLimiter`] (several
//!    processes on one Redis): the provider's rate and daily budget held
//!    across the fleet, and its concurrency ceiling divided among the
//!    processes the limiter counts ([`Controller::set_fleet_share`]). One lookup at a time takes it, then waits for the
//!    controller's turn, so a fleet turn is spent only by the request that
//!    starts next. A turn that does not come within
//!    [`FleetLimiter::max_wait`] fails the attempt
//!    ([`UpstreamError::FleetLimited`]) and the failover moves on; a spent
//!    fleet budget is [`UpstreamError::BudgetSpent`]. Without a fleet
//!    limiter this step does not exist;
//! 3. **the controller's turn**: a free slot under the adaptive limit and the
//!    pace's next start (decided now, never reserved in advance);
//! 4. **the daily budget**, spent just before sending: every request bills;
//! 5. **the request**, under the adaptive timeout;
//! 6. what the answer said feeds the controller (latency, refusal, overload)
//!    and the breaker (per request: a 429 or a 400 says nothing about the
//!    provider's health);
//! 7. a failure is retried when [`crate::upstream::retry`] says so and the
//!    [`RetryBudget`] allows, after a full-jitter backoff. A 429 from a
//!    provider that is accepting other requests is the controller's business:
//!    the lookup queues again, without backoff and outside the retry budget,
//!    up to [`RATE_LIMITED_MAX_ATTEMPTS`]. A 429 from one that accepts nothing
//!    (out of quota, say) is an ordinary failure.
//!
//! Everything waits on tokio's clock, so tests drive it with `tokio::time::pause`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::fleet::{FleetLimiter, Refused};
use crate::telemetry;
use crate::upstream::arc::{Controller, ControllerConfig, OperatingPoint, Signal};
use crate::upstream::breaker::{Breaker, BreakerConfig, BreakerPhase, BreakerState, Outcome};
use crate::upstream::budget::Budget;
use crate::upstream::retry::{Backoff, Jitter, RetryBudget, RetryClass, Retryable};
use crate::upstream::{Limits, UpstreamError};

/// Times a lookup may be refused with 429 before it gives up on the
/// provider (and fails over): the controller slows down on each refusal, so
/// a lookup refused this often is facing a provider that is out of quota,
/// not one that wants a slower pace.
pub const RATE_LIMITED_MAX_ATTEMPTS: u32 = 12;

/// How long rejected credentials keep a provider's circuit open: retrying
/// them every lookup would only fill the log. The next cycle tries again.
const AUTH_FAILURE_OPEN_FOR: Duration = Duration::from_secs(10 * 60);

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
    pub breaker: BreakerPhase,
    /// Failed lookups by kind (`timeout`, `rate_limited`, `upstream`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Recent request latency percentiles.
    pub latency: Option<Latency>,
    /// The daily budget, when one is set.
    pub budget: Option<BudgetHealth>,
    /// Where the adaptive controller stands: the next run starts from it.
    #[serde(default)]
    pub operating_point: Option<OperatingPoint>,
}

/// A provider with its controller, retry policy, breaker and budget.
///
/// Generic over the kind of provider: fare sources (`crate::fare::FarePool`)
/// and flight-status providers (`crate::status::failover::StatusPool`) share
/// the same guarded call ([`ProviderPool::guarded`]).
pub struct ProviderPool<S: ?Sized> {
    name: &'static str,
    source: Arc<S>,
    limits: Limits,
    controller: Arc<Controller>,
    backoff: Backoff,
    retry_budget: RetryBudget,
    breaker: Breaker,
    /// Wakes retries sleeping in their backoff when the circuit opens.
    tripped: Notify,
    /// Why the breaker was forced open (quota, credentials), for the message
    /// of every lookup it skips; `None` when it opened on failures.
    trip_reason: std::sync::Mutex<Option<String>>,
    budget: Option<Budget>,
    /// The provider's limit shared with the other processes on the same
    /// Redis, when configured.
    fleet: Option<FleetLimiter>,
    /// Lookups take the fleet's turn one at a time, each keeping it until
    /// the controller lets it start (see the module docs).
    fleet_gate: tokio::sync::Mutex<()>,
    /// Lookups waiting at `fleet_gate`.
    fleet_waiting: AtomicU64,
    stats: PoolStats,
}

impl<S: ?Sized> std::fmt::Debug for ProviderPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPool")
            .field("provider", &self.name)
            .field("limits", &self.limits)
            .field("fleet", &self.fleet)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended, for the retry loop.
enum Next<T> {
    Done(Result<T, UpstreamError>),
    Throttled(UpstreamError),
    Failed(UpstreamError),
}

impl<S: ?Sized + Send + Sync> ProviderPool<S> {
    /// Wraps `source` (named `name`) with `limits` as ceilings, `backoff`
    /// and `breaker`; the controller starts from its defaults.
    pub fn build(
        name: &'static str,
        source: Arc<S>,
        limits: Limits,
        backoff: Backoff,
        breaker: BreakerConfig,
    ) -> Self {
        Self {
            name,
            controller: Arc::new(Controller::new(ControllerConfig::new(
                limits.max_concurrency,
                limits.rate_per_sec,
                limits.timeout,
            ))),
            breaker: Breaker::new(name, breaker),
            tripped: Notify::new(),
            trip_reason: std::sync::Mutex::new(None),
            retry_budget: RetryBudget::new(),
            source,
            limits,
            backoff,
            budget: None,
            fleet: None,
            fleet_gate: tokio::sync::Mutex::new(()),
            fleet_waiting: AtomicU64::new(0),
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

    /// Shares the provider's rate (and daily budget) with the other
    /// processes on the same Redis: every request first takes a turn from
    /// `limiter`. The adaptive controller still runs per process.
    pub fn with_fleet_limiter(mut self, limiter: FleetLimiter) -> Self {
        self.fleet = Some(limiter);
        self
    }

    /// The fleet-wide limiter, when one is set.
    pub fn fleet_limiter(&self) -> Option<&FleetLimiter> {
        self.fleet.as_ref()
    }

    /// The provider's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configured limits: ceilings for the controller.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The adaptive controller.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The provider's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Counters, breaker state and operating point, for reports.
    pub fn health(&self) -> PoolHealth {
        PoolHealth {
            name: self.name().to_owned(),
            requests: self.stats.requests(),
            errors: self.stats.errors(),
            retries: self.stats.retries(),
            throttled: self.stats.throttled(),
            skipped: self.stats.skipped(),
            breaker: self.breaker.state().phase(),
            errors_by_kind: self.stats.errors_by_kind(),
            latency: self.stats.latency(),
            budget: self.budget.as_ref().map(|b| BudgetHealth {
                per_day: b.per_day(),
                spent: b.spent_today().1,
                remaining: b.remaining(),
            }),
            operating_point: Some(self.controller.operating_point()),
        }
    }

    /// The open circuit's message for a skipped lookup.
    fn circuit_open(&self, why: impl std::fmt::Display) -> UpstreamError {
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        let reason = self
            .trip_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // The failover names the provider; the message says why.
        UpstreamError::CircuitOpen(
            reason.unwrap_or_else(|| format!("it has failed repeatedly ({why})")),
        )
    }

    /// Runs `call` against the provider under the pool's whole policy (see
    /// the module docs). `what` names the request in logs.
    pub async fn guarded<T, F, Fut>(
        &self,
        what: &(dyn std::fmt::Display + Sync),
        call: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Arc<S>) -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let mut jitter = Jitter::from_entropy();
        let mut failures: u32 = 0;
        let mut refusals: u32 = 0;
        let result = loop {
            let error = match self.attempt(&call, failures + refusals == 0).await {
                Next::Done(result) => break result,
                Next::Throttled(error) => {
                    refusals += 1;
                    if refusals >= RATE_LIMITED_MAX_ATTEMPTS {
                        break Err(error);
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Next::Failed(error) => error,
            };
            failures += 1;
            let RetryClass::Retry { after } = error.retry_class() else {
                break Err(error);
            };
            if failures >= self.backoff.max_attempts() {
                break Err(error);
            }
            if !self.retry_budget.try_withdraw() {
                tracing::info!(provider = self.name(), request = %what, %error, "retry budget spent: not retrying");
                break Err(error);
            }
            let delay = self.backoff.delay_for(failures - 1, after, &mut jitter);
            tracing::info!(provider = self.name(), request = %what, attempt = failures, %error, ?delay, "retrying");
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            // A circuit that opens meanwhile sends the lookup elsewhere at once.
            let tripped = self.tripped.notified();
            tokio::pin!(tripped);
            tripped.as_mut().enable();
            if self.breaker_refusing() {
                break Err(self.circuit_open("while waiting to retry"));
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = tripped => break Err(self.circuit_open("while waiting to retry")),
            }
        };

        // A lookup skipped at an open circuit is counted as skipped, not as an error.
        if let Some(error) = result
            .as_ref()
            .err()
            .filter(|e| !matches!(e, UpstreamError::CircuitOpen(_)))
        {
            self.stats.record_error(error);
        }
        // Exported only when the daemon serves /metrics (no-ops otherwise).
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        metrics::counter!(telemetry::LOOKUPS, "provider" => self.name, "outcome" => outcome)
            .increment(1);
        let state = match self.breaker.state() {
            BreakerState::Closed { .. } => 0.0,
            BreakerState::HalfOpen { .. } => 1.0,
            BreakerState::Open { .. } => 2.0,
        };
        metrics::gauge!(telemetry::BREAKER_STATE, "provider" => self.name).set(state);
        result
    }

    /// Whether the breaker would refuse a request now.
    fn breaker_refusing(&self) -> bool {
        matches!(self.breaker.state(), BreakerState::Open { until } if until > Instant::now())
    }

    fn set_trip_reason(&self, reason: String) {
        *self
            .trip_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    /// The daily budget's refusal.
    fn budget_spent(&self, budget: &Budget) -> UpstreamError {
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        UpstreamError::BudgetSpent(format!(
            "its daily budget of {} searches is spent until 00:00 UTC",
            budget.per_day()
        ))
    }

    /// Waits for the fleet's turn, one lookup at a time; the guard keeps
    /// the others waiting until this one has the controller's turn too. An
    /// open circuit sends the lookup elsewhere at once.
    async fn fleet_turn(
        &self,
        fleet: &FleetLimiter,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, UpstreamError> {
        // A spent local budget would skip the lookup anyway: no fleet turn for it.
        if let Some(budget) = self.budget.as_ref().filter(|b| b.remaining() == 0) {
            return Err(self.budget_spent(budget));
        }
        let tripped = self.tripped.notified();
        tokio::pin!(tripped);
        tripped.as_mut().enable();
        if self.breaker_refusing() {
            return Err(self.circuit_open("while queued"));
        }
        let turn = async {
            // Counted while queued, so the one at the gate reserves turns
            // for the others in the same round trip to Redis.
            let queued = Queued::join(&self.fleet_waiting);
            let gate = self.fleet_gate.lock().await;
            let queued = queued.leave();
            let wait = fleet.max_wait();
            fleet
                .acquire_ahead(
                    u32::try_from(queued).unwrap_or(u32::MAX),
                    Instant::now() + wait,
                )
                .await
                .map(|()| gate)
                .map_err(|refused| (refused, wait))
        };
        let refused = tokio::select! {
            result = turn => match result {
                Ok(gate) => {
                    // The concurrency ceiling is the fleet's too: this
                    // process keeps to its share of it.
                    let processes = usize::try_from(fleet.live_nodes()).unwrap_or(1);
                    self.controller.set_fleet_share(processes);
                    return Ok(gate);
                }
                Err(refused) => refused,
            },
            () = tripped => return Err(self.circuit_open("while queued")),
        };
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        Err(match refused {
            (Refused::Quota { per_day, .. }, _) => UpstreamError::BudgetSpent(format!(
                "the fleet's daily budget of {per_day} searches is spent until 00:00 UTC"
            )),
            (Refused::Rate { retry_after }, wait) => UpstreamError::FleetLimited(format!(
                "the fleet-wide rate limit{} left no turn within {} s (the next in {:.1} s)",
                fleet
                    .rate_per_sec()
                    .map(|r| format!(" of {r}/s"))
                    .unwrap_or_default(),
                wait.as_secs(),
                retry_after.as_secs_f64()
            )),
        })
    }

    /// One request: the fleet's turn, the controller's, the breaker, the
    /// budget, then the provider call under the adaptive timeout.
    async fn attempt<T, F, Fut>(&self, call: &F, first: bool) -> Next<T>
    where
        F: Fn(Arc<S>) -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let fleet_turn = match &self.fleet {
            Some(fleet) => match self.fleet_turn(fleet).await {
                Ok(gate) => Some(gate),
                Err(error) => return Next::Done(Err(error)),
            },
            None => None,
        };
        let Some(ticket) = self.controller.acquire(|| self.breaker_refusing()).await else {
            return Next::Done(Err(self.circuit_open("while queued")));
        };
        // This request starts: the next lookup may take its fleet turn.
        drop(fleet_turn);
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => return Next::Done(Err(self.circuit_open(rejected))),
        };
        // Every request bills a search, retries included: spend just before sending.
        if let Some(budget) = &self.budget {
            if !budget.try_spend() {
                return Next::Done(Err(self.budget_spent(budget)));
            }
        }
        if first {
            self.retry_budget.deposit();
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = ticket.started();
        // The provider sets its own HTTP timeout; this one also bounds
        // everything around it (token refresh, body reads) and shrinks to
        // the provider's observed latency, so a hung request costs about a
        // few round trips, not the configured timeout.
        let request = hints::CONTROLLER.scope(self.controller.clone(), call(self.source.clone()));
        tokio::pin!(request);
        let outcome = loop {
            let deadline = ticket.deadline();
            // Re-read the deadline now and then: it tightens as answers are timed.
            let check = deadline.min(Instant::now() + DEADLINE_RECHECK);
            tokio::select! {
                result = &mut request => break result,
                () = tokio::time::sleep_until(check) => {
                    let timeout = self.controller.timeout();
                    if Instant::now() >= started + timeout {
                        break Err(UpstreamError::Timeout(timeout));
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        self.stats.record_latency(elapsed);
        metrics::histogram!(telemetry::PROVIDER_LATENCY, "provider" => self.name)
            .record(elapsed.as_secs_f64());
        ticket.finish(signal_of(&outcome, elapsed));
        permit.record(Outcome::of_request(&outcome));
        if let Err(error) = &outcome {
            self.note_failure(error);
        } else {
            // A success means the circuit let us through again.
            self.trip_reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
        }
        if self.breaker_refusing() {
            // Wake whoever waits on this provider: they go elsewhere now.
            self.controller.wake();
            self.tripped.notify_waiters();
        }
        match outcome {
            Ok(value) => Next::Done(Ok(value)),
            Err(error @ UpstreamError::RateLimited { .. }) => {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                // A provider that accepts others' requests is pacing us: queue
                // again. One that accepts nothing may be out of quota: that is
                // a failure, retried within the budget, then failed over.
                if self.controller.accepting() {
                    Next::Throttled(error)
                } else {
                    Next::Failed(error)
                }
            }
            Err(error) => Next::Failed(error),
        }
    }

    /// Quota exhaustion and rejected credentials open the circuit at once.
    fn note_failure(&self, error: &UpstreamError) {
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
}

/// How often a request in flight re-reads its adaptive deadline.
const DEADLINE_RECHECK: Duration = Duration::from_millis(250);

/// What an attempt's outcome tells the controller.
fn signal_of<T>(outcome: &Result<T, UpstreamError>, rtt: Duration) -> Signal {
    match outcome {
        // A 4xx is a quick, healthy answer to a bad question.
        Ok(_) | Err(UpstreamError::Rejected { .. }) => Signal::Answered { rtt },
        Err(UpstreamError::RateLimited { retry_after }) => Signal::Refused {
            retry_after: *retry_after,
        },
        Err(UpstreamError::Timeout(_)) => Signal::Overloaded,
        Err(UpstreamError::Upstream {
            status: 503 | 504, ..
        }) => Signal::Overloaded,
        Err(_) => Signal::Failed,
    }
}

/// Rate-limit headers reach the controller of the pool that sent the
/// request, without every provider having to pass them up: the pool runs
/// each call inside a task-local holding its controller, and the shared
/// reply plumbing reports what it sees.
pub(crate) mod hints {
    use std::sync::Arc;

    use crate::upstream::arc::{Controller, RateHint};

    tokio::task_local! {
        pub(super) static CONTROLLER: Arc<Controller>;
    }

    /// Reports an answer's rate-limit headers to the current pool's controller.
    pub(crate) fn observe(headers: &reqwest::header::HeaderMap) {
        if let Some(hint) = RateHint::from_headers(headers) {
            let _ = CONTROLLER.try_with(|controller| controller.hint(hint));
        }
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

/// A lookup counted in a queue until it leaves it (or is dropped, when the
/// lookup is cancelled while queued).
struct Queued<'a>(&'a AtomicU64);

impl<'a> Queued<'a> {
    fn join(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }

    /// Leaves the queue; returns how many were in it, this one included.
    fn leave(self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_month_is_less_than_a_month_away() {
        let d = until_next_month();
        assert!(
            d > Duration::ZERO && d <= Duration::from_secs(31 * 24 * 3600),
            "{d:?}"
        );
    }
}
