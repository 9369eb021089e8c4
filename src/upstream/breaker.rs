//! A circuit breaker per provider, written as an explicit state machine.
//!
//! ```text
//!            failure × threshold                 open_for elapses
//!   Closed ───────────────────────▶ Open{until} ──────────────────▶ HalfOpen
//!     ▲  ▲                            ▲   ▲                           │  │
//!     │  └── success resets count     │   └──── probe fails ──────────┘  │
//!     │                          trip_until       (open_for doubles,     │
//!     │                          (any state)       up to max_open_for)   │
//!     └──────────────────── probe successes × successes_to_close ────────┘
//! ```
//!
//! A caller asks [`Breaker::try_acquire`] before each request. In `Closed`
//! it always gets a [`Permit`]; in `Open` it is refused with the instant the
//! circuit may be tried again (the provider list moves on to the next
//! provider); once that instant has passed, the breaker turns `HalfOpen` and
//! hands out at most [`BreakerConfig::half_open_probes`] probe permits at a
//! time. The caller reports what happened through [`Permit::record`]:
//! [`Outcome::Success`], [`Outcome::Failure`], or [`Outcome::Neutral`] for an
//! answer that says nothing about the provider's health (a 400 for a bad
//! airport, a 429). Record once per request, retries included: a dead
//! provider then opens within its first window of requests, and the
//! retries still queued fail over instead of going out.
//!
//! A permit dropped without a record (a cancelled lookup) counts as neutral
//! and frees its probe slot, so a cancelled probe can never wedge the
//! breaker half-open. Outcomes of permits taken before the latest transition
//! are ignored: a slow request started while `Closed` cannot close a circuit
//! that has since opened.
//!
//! Time is tokio's [`Instant`], so tests drive the breaker with a paused
//! clock and `tokio::time::advance`.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::upstream::UpstreamError;

/// Consecutive failed requests that open a closed circuit.
///
/// Counted per request, retries included, so a dead provider is detected
/// within its first window of requests and its retries never go out. One
/// failure is noise; ten in a row means the provider is down rather than
/// flaky: a provider failing a random 30 % of requests has odds of about
/// 1 in 170,000 per request of starting such a run.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 10;

/// How long a circuit stays open the first time it opens.
///
/// A fare cycle's fan-out lasts seconds to a minute, and cycles run every 15
/// minutes by default ([`crate::daemon::DEFAULT_INTERVAL`]). A minute is
/// enough to stop hammering a failing provider for the rest of the cycle,
/// and short enough that a provider that blinked is back for the next cycle.
/// Providers that stay down are opened for longer each time, see
/// [`DEFAULT_MAX_OPEN_FOR`].
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(60);

/// The longest a circuit stays open after failed probes.
///
/// Each failed probe doubles the open time (60 s, 2, 4, 8 minutes) up to
/// this cap: the flight-status issue's "10 minutes". Staying below the
/// default 15-minute cycle means a provider that stays down is still probed
/// once per cycle, so its recovery is noticed within a cycle.
pub const DEFAULT_MAX_OPEN_FOR: Duration = Duration::from_secs(10 * 60);

/// Probe requests allowed at once while half-open.
///
/// One probe is enough to learn whether the provider is back, and costs a
/// struggling provider a single request (vector's health service also sends
/// one request at a time while on probation).
pub const DEFAULT_HALF_OPEN_PROBES: u32 = 1;

/// Successful probes needed to close a half-open circuit.
///
/// A fare lookup that succeeds end to end is a strong signal; if the provider
/// is only half back, its next failures re-open the circuit quickly anyway
/// (after [`DEFAULT_FAILURE_THRESHOLD`] of them).
pub const DEFAULT_SUCCESSES_TO_CLOSE: u32 = 1;

/// Ceiling for any instant the breaker computes: about 30 years. Keeps
/// `now + huge duration` from overflowing the clock.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// How a [`Breaker`] behaves. Zero counts are treated as one, and a
/// `max_open_for` below `open_for` as `open_for` (no doubling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open the first time.
    pub open_for: Duration,
    /// How long it may stay open at most after failed probes doubled
    /// `open_for`; set it equal to `open_for` to disable doubling.
    pub max_open_for: Duration,
    /// Probe requests allowed at once while half-open.
    pub half_open_probes: u32,
    /// Successful probes that close a half-open circuit.
    pub successes_to_close: u32,
}

impl BreakerConfig {
    /// The documented defaults, as a constant.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: DEFAULT_FAILURE_THRESHOLD,
        open_for: DEFAULT_OPEN_FOR,
        max_open_for: DEFAULT_MAX_OPEN_FOR,
        half_open_probes: DEFAULT_HALF_OPEN_PROBES,
        successes_to_close: DEFAULT_SUCCESSES_TO_CLOSE,
    };

    /// The same values with zero counts raised to one and `max_open_for` no
    /// lower than `open_for`.
    fn normalised(self) -> Self {
        BreakerConfig {
            failure_threshold: self.failure_threshold.max(1),
            open_for: self.open_for,
            max_open_for: self.max_open_for.max(self.open_for),
            half_open_probes: self.half_open_probes.max(1),
            successes_to_close: self.successes_to_close.max(1),
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::DEFAULT
    }
}

/// Where a breaker is in its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; failures are being counted.
    Closed {
        /// Failures since the last success (neutral outcomes do not count).
        consecutive_failures: u32,
    },
    /// Requests are refused until `until`.
    Open {
        /// When the breaker will let a probe through.
        until: Instant,
    },
    /// A few probe requests decide whether to close or re-open.
    HalfOpen {
        /// Probes started and not yet settled.
        probes_in_flight: u32,
        /// Probes that succeeded so far.
        successes: u32,
    },
}

impl BreakerState {
    /// The state's name for logs and JSON: `"closed"`, `"open"` or `"half_open"`.
    pub fn name(&self) -> &'static str {
        self.phase().name()
    }

    /// Which of the three states this is, without its details.
    pub fn phase(&self) -> BreakerPhase {
        match self {
            BreakerState::Closed { .. } => BreakerPhase::Closed,
            BreakerState::Open { .. } => BreakerPhase::Open,
            BreakerState::HalfOpen { .. } => BreakerPhase::HalfOpen,
        }
    }
}

/// A breaker's state without its details, for reports and JSON
/// (`"closed"`, `"open"`, `"half_open"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPhase {
    /// Requests flow.
    Closed,
    /// Requests are refused for now.
    Open,
    /// A probe decides.
    HalfOpen,
}

impl BreakerPhase {
    /// The phase's name: `"closed"`, `"open"` or `"half_open"`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerPhase::Closed => "closed",
            BreakerPhase::Open => "open",
            BreakerPhase::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one request said about the provider's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered properly.
    Success,
    /// The provider failed: down, erroring, throttling, unreadable.
    Failure,
    /// The provider answered, but the answer says nothing about its health
    /// (a 400 for a bad airport or a past date).
    Neutral,
}

impl Outcome {
    /// The health signal in one request's result.
    ///
    /// `Ok` (offers or none) is a success. `Rejected` is neutral: the
    /// provider worked and our request was wrong. `RateLimited` is neutral
    /// too: a provider asking us to slow down is healthy, and slowing down is
    /// the controller's job ([`crate::upstream::arc`]); a lookup refused too
    /// often fails over by itself. Everything else is a failure. `Auth` and
    /// `QuotaExhausted` moreover [`UpstreamError::opens_circuit`]: the pool
    /// trips the breaker for them.
    pub fn of_request<T>(result: &Result<T, UpstreamError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            // A bad request says nothing about the provider's health, and a
            // skipped lookup never reached it.
            Err(
                UpstreamError::Rejected { .. }
                | UpstreamError::RateLimited { .. }
                | UpstreamError::CircuitOpen(_)
                | UpstreamError::BudgetSpent(_)
                | UpstreamError::FleetLimited(_),
            ) => Outcome::Neutral,
            Err(
                UpstreamError::Timeout(_)
                | UpstreamError::Connect(_)
                | UpstreamError::Auth(_)
                | UpstreamError::QuotaExhausted(_)
                | UpstreamError::Upstream { .. }
                | UpstreamError::Decode(_),
            ) => Outcome::Failure,
        }
    }
}

/// Why [`Breaker::try_acquire`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The circuit is open; it lets a probe through at `until`.
    #[error("circuit breaker open: the provider is failing and is skipped for now")]
    Open {
        /// When the circuit will let a probe through.
        until: Instant,
    },
    /// The circuit is half-open and every probe slot is taken; try another
    /// provider, or this one again once a probe settles.
    #[error("circuit breaker half-open: a probe is already testing the provider")]
    ProbesBusy,
}

impl Rejected {
    /// When the circuit will let a probe through, if it is open.
    pub fn until(&self) -> Option<Instant> {
        match self {
            Rejected::Open { until } => Some(*until),
            Rejected::ProbesBusy => None,
        }
    }
}

/// A circuit breaker for one provider. `Send + Sync`; share it by reference
/// (or in an `Arc`) and call it from any task.
#[derive(Debug)]
pub struct Breaker {
    provider: &'static str,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Bumped on every transition; permits from an older generation are stale.
    generation: u64,
    /// How long the next opening lasts (doubles on failed probes).
    next_open_for: Duration,
}

/// A state change, logged once the lock is released.
#[derive(Debug)]
struct Transition {
    from: BreakerState,
    to: BreakerState,
    why: &'static str,
}

impl Breaker {
    /// A closed breaker for `provider` (used in log lines).
    pub fn new(provider: &'static str, config: BreakerConfig) -> Self {
        let config = config.normalised();
        Breaker {
            provider,
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed {
                    consecutive_failures: 0,
                },
                generation: 0,
                next_open_for: config.open_for,
            }),
        }
    }

    /// The provider this breaker guards.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The configuration in force (after normalisation).
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state. An `Open` whose `until` has passed stays `Open`
    /// here until the next [`Breaker::try_acquire`] turns it `HalfOpen`.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Asks to send one request.
    ///
    /// Closed: granted. Open before `until`: refused with `until`. Open at
    /// or after `until`: the breaker turns half-open and grants a probe.
    /// Half-open: a probe is granted while fewer than
    /// [`BreakerConfig::half_open_probes`] are in flight.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let now = Instant::now();
        let mut inner = self.lock();
        let (probe, transition) = match inner.state {
            BreakerState::Closed { .. } => (false, None),
            BreakerState::Open { until } if now < until => return Err(Rejected::Open { until }),
            BreakerState::Open { .. } => {
                let transition = inner.transition(
                    BreakerState::HalfOpen {
                        probes_in_flight: 1,
                        successes: 0,
                    },
                    "the open period is over; probing",
                );
                (true, Some(transition))
            }
            BreakerState::HalfOpen {
                probes_in_flight,
                successes,
            } => {
                if probes_in_flight >= self.config.half_open_probes {
                    return Err(Rejected::ProbesBusy);
                }
                inner.state = BreakerState::HalfOpen {
                    probes_in_flight: probes_in_flight + 1,
                    successes,
                };
                (true, None)
            }
        };
        let permit = Permit {
            breaker: self,
            generation: inner.generation,
            probe,
            outcome: None,
        };
        drop(inner);
        self.log(transition, now);
        Ok(permit)
    }

    /// Forces the circuit open until `until`, whatever its state (Amadeus
    /// 38195: the monthly quota is gone until the 1st of next month).
    /// Never shortens an open period already in force. Afterwards the
    /// breaker probes as usual.
    pub fn trip_until(&self, until: Instant) {
        let now = Instant::now();
        let mut inner = self.lock();
        let until = match inner.state {
            BreakerState::Open { until: current } => until.max(current),
            _ => until,
        };
        let transition = inner.transition(
            BreakerState::Open { until },
            "tripped: the provider cannot serve requests until then",
        );
        drop(inner);
        self.log(Some(transition), now);
    }

    /// [`Breaker::trip_until`] `now + duration`.
    pub fn trip_for(&self, duration: Duration) {
        self.trip_until(later(Instant::now(), duration));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections cannot panic half-way, so a poisoned lock
        // still holds a consistent state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a settled permit. `None` is a permit dropped without a record.
    fn settle(&self, generation: u64, probe: bool, outcome: Option<Outcome>) {
        let now = Instant::now();
        let mut inner = self.lock();
        if generation != inner.generation {
            // Taken before the last transition: it describes a state that is gone.
            return;
        }
        let transition = match (inner.state, outcome) {
            (
                BreakerState::Closed {
                    consecutive_failures,
                },
                Some(Outcome::Failure),
            ) => {
                let consecutive_failures = consecutive_failures.saturating_add(1);
                if consecutive_failures >= self.config.failure_threshold {
                    let until = later(now, inner.next_open_for);
                    Some(inner.transition(
                        BreakerState::Open { until },
                        "too many consecutive failures",
                    ))
                } else {
                    inner.state = BreakerState::Closed {
                        consecutive_failures,
                    };
                    None
                }
            }
            (BreakerState::Closed { .. }, Some(Outcome::Success)) => {
                inner.state = BreakerState::Closed {
                    consecutive_failures: 0,
                };
                None
            }
            (
                BreakerState::HalfOpen {
                    probes_in_flight,
                    successes,
                },
                outcome,
            ) if probe => {
                let probes_in_flight = probes_in_flight.saturating_sub(1);
                match outcome {
                    Some(Outcome::Success) if successes + 1 >= self.config.successes_to_close => {
                        inner.next_open_for = self.config.open_for;
                        Some(inner.transition(
                            BreakerState::Closed {
                                consecutive_failures: 0,
                            },
                            "the provider answered a probe",
                        ))
                    }
                    Some(Outcome::Success) => {
                        inner.state = BreakerState::HalfOpen {
                            probes_in_flight,
                            successes: successes + 1,
                        };
                        None
                    }
                    Some(Outcome::Failure) => {
                        inner.next_open_for = inner
                            .next_open_for
                            .saturating_mul(2)
                            .min(self.config.max_open_for);
                        let until = later(now, inner.next_open_for);
                        Some(inner.transition(BreakerState::Open { until }, "a probe failed"))
                    }
                    Some(Outcome::Neutral) | None => {
                        inner.state = BreakerState::HalfOpen {
                            probes_in_flight,
                            successes,
                        };
                        None
                    }
                }
            }
            // Neutral or abandoned while closed; anything else cannot carry
            // the current generation.
            _ => None,
        };
        drop(inner);
        self.log(transition, now);
    }

    fn log(&self, transition: Option<Transition>, now: Instant) {
        let Some(Transition { from, to, why }) = transition else {
            return;
        };
        let provider = self.provider;
        match to {
            BreakerState::Open { until } => {
                let open_for = until.saturating_duration_since(now);
                tracing::warn!(
                    provider,
                    from = from.name(),
                    to = to.name(),
                    open_for_secs = open_for.as_secs(),
                    "{provider}: circuit breaker {from} -> {to} ({why}); requests refused for {open_for:?}"
                );
            }
            BreakerState::HalfOpen { .. } | BreakerState::Closed { .. } => {
                tracing::info!(
                    provider,
                    from = from.name(),
                    to = to.name(),
                    "{provider}: circuit breaker {from} -> {to} ({why})"
                );
            }
        }
    }
}

impl Inner {
    /// Moves to `to`, invalidating outstanding permits.
    fn transition(&mut self, to: BreakerState, why: &'static str) -> Transition {
        let from = std::mem::replace(&mut self.state, to);
        self.generation = self.generation.wrapping_add(1);
        Transition { from, to, why }
    }
}

/// `now + duration`, saturating at about 30 years from now.
fn later(now: Instant, duration: Duration) -> Instant {
    now + duration.min(FAR_FUTURE)
}

/// Leave to send one request; report how it went with [`Permit::record`].
///
/// Dropping a permit without recording counts as [`Outcome::Neutral`].
#[derive(Debug)]
#[must_use = "record the request's outcome with Permit::record"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    probe: bool,
    outcome: Option<Outcome>,
}

impl Permit<'_> {
    /// Whether this request is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Reports how the request went.
    pub fn record(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        // `Drop` settles it.
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker
            .settle(self.generation, self.probe, self.outcome.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(60),
            max_open_for: Duration::from_secs(300),
            half_open_probes: 2,
            successes_to_close: 1,
        }
    }

    fn record(breaker: &Breaker, outcome: Outcome) {
        breaker.try_acquire().expect("a permit").record(outcome);
    }

    fn closed(consecutive_failures: u32) -> BreakerState {
        BreakerState::Closed {
            consecutive_failures,
        }
    }

    /// Opens `breaker` (threshold 3) and returns when it will probe.
    fn open(breaker: &Breaker) -> Instant {
        for _ in 0..breaker.config().failure_threshold {
            record(breaker, Outcome::Failure);
        }
        match breaker.state() {
            BreakerState::Open { until } => until,
            other => panic!("expected open, got {other:?}"),
        }
    }

    #[test]
    fn breaker_is_send_sync_and_defaults_are_the_consts() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Breaker>();
        assert_send_sync::<Permit<'_>>();
        let b = Breaker::new("amadeus", BreakerConfig::default());
        assert_eq!(b.config(), &BreakerConfig::DEFAULT);
        assert_eq!(b.config().failure_threshold, DEFAULT_FAILURE_THRESHOLD);
        assert_eq!(b.config().open_for, DEFAULT_OPEN_FOR);
        assert_eq!(b.state(), closed(0));
        assert_eq!(b.provider(), "amadeus");
    }

    #[test]
    fn zero_counts_are_normalised() {
        let b = Breaker::new(
            "p",
            BreakerConfig {
                failure_threshold: 0,
                open_for: SECOND * 10,
                max_open_for: SECOND,
                half_open_probes: 0,
                successes_to_close: 0,
            },
        );
        assert_eq!(b.config().failure_threshold, 1);
        assert_eq!(b.config().max_open_for, SECOND * 10);
        assert_eq!(b.config().half_open_probes, 1);
        assert_eq!(b.config().successes_to_close, 1);
    }

    #[test]
    fn state_names_for_logs_and_json() {
        let now = Instant::now();
        assert_eq!(closed(2).to_string(), "closed");
        assert_eq!(BreakerState::Open { until: now }.name(), "open");
        let half = BreakerState::HalfOpen {
            probes_in_flight: 0,
            successes: 0,
        };
        assert_eq!(half.to_string(), "half_open");
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_exactly_threshold_consecutive_failures() {
        let b = Breaker::new("amadeus", config());
        let start = Instant::now();
        record(&b, Outcome::Failure);
        record(&b, Outcome::Failure);
        assert_eq!(b.state(), closed(2));
        record(&b, Outcome::Failure);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: start + SECOND * 60
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_in_between_resets_the_count() {
        let b = Breaker::new("amadeus", config());
        record(&b, Outcome::Failure);
        record(&b, Outcome::Failure);
        record(&b, Outcome::Success);
        assert_eq!(b.state(), closed(0));
        record(&b, Outcome::Failure);
        record(&b, Outcome::Failure);
        assert_eq!(b.state(), closed(2));
    }

    #[tokio::test(start_paused = true)]
    async fn neutral_changes_nothing() {
        let b = Breaker::new("amadeus", config());
        record(&b, Outcome::Failure);
        record(&b, Outcome::Failure);
        record(&b, Outcome::Neutral);
        assert_eq!(b.state(), closed(2));
        // An abandoned permit is neutral too.
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state(), closed(2));
        record(&b, Outcome::Failure);
        assert!(matches!(b.state(), BreakerState::Open { .. }));

        // Half-open: a neutral probe frees its slot and decides nothing.
        tokio::time::advance(SECOND * 60).await;
        record(&b, Outcome::Neutral);
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen {
                probes_in_flight: 0,
                successes: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rejects_while_open_and_reports_until() {
        let b = Breaker::new("amadeus", config());
        let until = open(&b);
        assert_eq!(b.try_acquire().unwrap_err(), Rejected::Open { until });
        assert_eq!(b.try_acquire().unwrap_err().until(), Some(until));
        tokio::time::advance(SECOND * 60 - Duration::from_millis(1)).await;
        assert_eq!(b.try_acquire().unwrap_err(), Rejected::Open { until });
        assert_eq!(b.state(), BreakerState::Open { until });
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_after_open_for_allows_only_the_configured_probes() {
        let b = Breaker::new("amadeus", config());
        open(&b);
        tokio::time::advance(SECOND * 60).await;
        let first = b.try_acquire().expect("first probe");
        let second = b.try_acquire().expect("second probe");
        assert!(first.is_probe() && second.is_probe());
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen {
                probes_in_flight: 2,
                successes: 0
            }
        );
        assert_eq!(b.try_acquire().unwrap_err(), Rejected::ProbesBusy);
        assert_eq!(Rejected::ProbesBusy.until(), None);
        // A cancelled probe frees its slot.
        drop(first);
        let third = b.try_acquire().expect("slot freed");
        assert_eq!(b.try_acquire().unwrap_err(), Rejected::ProbesBusy);
        drop((second, third));
    }

    #[tokio::test(start_paused = true)]
    async fn probe_success_closes_and_resets_the_open_time() {
        let b = Breaker::new("amadeus", config());
        open(&b);
        tokio::time::advance(SECOND * 60).await;
        let probe = b.try_acquire().unwrap();
        let other = b.try_acquire().unwrap();
        probe.record(Outcome::Success);
        assert_eq!(b.state(), closed(0));
        // The other probe belongs to the half-open period that is over.
        other.record(Outcome::Failure);
        assert_eq!(b.state(), closed(0));
        // Closed again: the full threshold and the base open time apply.
        let now = Instant::now();
        assert_eq!(open(&b), now + SECOND * 60);
    }

    #[tokio::test(start_paused = true)]
    async fn probe_failure_reopens_with_a_doubled_capped_open_time() {
        let b = Breaker::new("amadeus", config());
        open(&b);
        let mut expected = Vec::new();
        let mut observed = Vec::new();
        for open_for in [120, 240, 300, 300] {
            let until = match b.state() {
                BreakerState::Open { until } => until,
                other => panic!("expected open, got {other:?}"),
            };
            tokio::time::advance(until - Instant::now()).await;
            let probe = b.try_acquire().expect("a probe once the period is over");
            probe.record(Outcome::Failure);
            expected.push(Instant::now() + SECOND * open_for);
            observed.push(b.state());
        }
        let expected: Vec<_> = expected
            .into_iter()
            .map(|until| BreakerState::Open { until })
            .collect();
        assert_eq!(observed, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn several_successes_may_be_needed_to_close() {
        let b = Breaker::new(
            "amadeus",
            BreakerConfig {
                successes_to_close: 2,
                ..config()
            },
        );
        open(&b);
        tokio::time::advance(SECOND * 60).await;
        record(&b, Outcome::Success);
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen {
                probes_in_flight: 0,
                successes: 1
            }
        );
        record(&b, Outcome::Success);
        assert_eq!(b.state(), closed(0));
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_from_before_a_transition_are_ignored() {
        let b = Breaker::new("amadeus", config());
        let slow = b.try_acquire().unwrap();
        let until = open(&b);
        // A request started while closed finishes after the circuit opened.
        slow.record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Open { until });
    }

    #[tokio::test(start_paused = true)]
    async fn trip_until_forces_open_until_the_given_instant() {
        let b = Breaker::new("amadeus", config());
        record(&b, Outcome::Failure);
        let in_flight = b.try_acquire().unwrap();
        let month_end = Instant::now() + SECOND * 3600 * 24 * 9;
        b.trip_until(month_end);
        assert_eq!(b.state(), BreakerState::Open { until: month_end });
        assert_eq!(
            b.try_acquire().unwrap_err(),
            Rejected::Open { until: month_end }
        );
        in_flight.record(Outcome::Success);
        assert_eq!(b.state(), BreakerState::Open { until: month_end });

        // A shorter trip does not shorten it.
        b.trip_for(SECOND);
        assert_eq!(b.state(), BreakerState::Open { until: month_end });

        tokio::time::advance(month_end - Instant::now() - SECOND).await;
        assert!(b.try_acquire().is_err());
        tokio::time::advance(SECOND).await;
        let probe = b.try_acquire().expect("a probe after the trip");
        assert!(probe.is_probe());
        probe.record(Outcome::Success);
        assert_eq!(b.state(), closed(0));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_durations_do_not_overflow_the_clock() {
        let b = Breaker::new(
            "p",
            BreakerConfig {
                open_for: Duration::MAX,
                max_open_for: Duration::MAX,
                failure_threshold: 1,
                ..config()
            },
        );
        let now = Instant::now();
        record(&b, Outcome::Failure);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: now + FAR_FUTURE
            }
        );
        b.trip_for(Duration::MAX);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: now + FAR_FUTURE
            }
        );
    }

    #[test]
    fn fare_results_map_to_outcomes() {
        let table: [(Result<(), UpstreamError>, Outcome); 9] = [
            (Ok(()), Outcome::Success),
            (
                Err(UpstreamError::Rejected {
                    status: 400,
                    code: Some("425".into()),
                    message: "INVALID DATE".into(),
                }),
                Outcome::Neutral,
            ),
            (Err(UpstreamError::Timeout(SECOND)), Outcome::Failure),
            (
                Err(UpstreamError::Connect("refused".into())),
                Outcome::Failure,
            ),
            (
                Err(UpstreamError::Auth("bad secret".into())),
                Outcome::Failure,
            ),
            (
                Err(UpstreamError::RateLimited { retry_after: None }),
                Outcome::Neutral,
            ),
            (
                Err(UpstreamError::QuotaExhausted("38195".into())),
                Outcome::Failure,
            ),
            (
                Err(UpstreamError::Upstream {
                    status: 500,
                    code: Some("38189".into()),
                    message: "Internal error".into(),
                }),
                Outcome::Failure,
            ),
            (Err(UpstreamError::Decode("eof".into())), Outcome::Failure),
        ];
        for (result, outcome) in table {
            assert_eq!(Outcome::of_request(&result), outcome, "{result:?}");
        }
    }
}
