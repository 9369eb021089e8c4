//! Adaptive request concurrency and pacing: one [`Controller`] per provider
//! finds how hard that provider can be pushed, by itself.
//!
//! The model is vector's Adaptive Request Concurrency (an AIMD controller),
//! plus slow start and a learned pace for providers that limit a *rate*:
//!
//! - **Window.** Answers are judged a round trip at a time: a window lasts
//!   one smoothed round-trip time, and the limits change **at most once per
//!   window**, never once per response. A burst of 429s therefore cuts the
//!   window once, not once per 429.
//! - **Concurrency.** Requests in flight are capped by the *limit*. It starts
//!   at [`DEFAULT_INITIAL_CONCURRENCY`] (or what the last run learned), doubles
//!   each window while nothing pushes back (slow start), then grows by one
//!   per window, and only when requests actually filled it. It is cut ×0.5
//!   on an explicit refusal (429, Twilio's 20429), ×0.9 on overload (503, a
//!   timeout) or when latency rises past its mean plus 2.5 deviations (the
//!   deviation counted as at least a tenth of the mean, so a steady
//!   provider's scheduling noise is not read as overload).
//! - **Pace.** A provider that refuses with 429 is limiting a rate, which a
//!   concurrency limit alone tracks poorly. The window that saw refusals sets
//!   the pace to the rate the provider actually accepted over the last second,
//!   and every later window without refusals probes 5 % faster. `Retry-After`
//!   pauses the provider; `RateLimit-*` / `X-RateLimit-*` headers set the pace
//!   directly. A request's start time is decided when it is about to start:
//!   nothing queued holds a reserved slot, so a change of pace applies to
//!   everything still waiting.
//! - **Ceilings.** The configured `*_MAX_CONCURRENCY` and `*_RATE_LIMIT` are
//!   ceilings the controller never exceeds, not the operating point.
//! - **Timeouts.** Once a few answers have been timed, a request far slower
//!   than the provider's smoothed round trip (the larger of `srtt + 4 ×
//!   rttvar` and `1.5 × srtt`, at least [`MIN_ADAPTIVE_TIMEOUT`], at most the
//!   configured timeout) is given up on and retried or failed over.
//!
//! Waiting is fair: callers queue on a FIFO gate, and only the head of the
//! queue watches the clock and the in-flight count, so thousands of queued
//! lookups cost one timer, not thousands. Everything runs on tokio's clock.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The starting window when nothing was learned before: big enough that a
/// typical cron cycle (50 lookups) is one round trip, small enough that a
/// dead or throttling provider costs at most one window of requests.
pub const DEFAULT_INITIAL_CONCURRENCY: usize = 50;

/// The shortest adaptive timeout: below it, scheduling noise would look like
/// a hung request.
pub const MIN_ADAPTIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Timed answers needed before the adaptive timeout applies; until then a
/// request gets the configured timeout.
const SAMPLES_FOR_TIMEOUT: u32 = 8;

/// Longest pause a provider's headers can impose at once (as for `Retry-After`).
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// vector's smoothing of the window's mean round trip.
const EWMA_ALPHA: f64 = 0.4;
/// vector's tolerance: latency this many deviations above its mean is overload.
const RTT_DEVIATION_SCALE: f64 = 2.5;
/// The smallest deviation the latency test assumes, as a share of the mean
/// round trip: latency counts as rising only 25 % above its mean.
const RTT_NOISE_FLOOR: f64 = 0.1;
/// Cut on rising latency, a timeout or a 503.
const OVERLOAD_DECREASE: f64 = 0.9;
/// Cut on an explicit refusal (429): stronger than latency, as TCP halves.
const REFUSAL_DECREASE: f64 = 0.5;
/// How much faster each window without refusals probes once a pace is set.
const PACE_PROBE_GROWTH: f64 = 1.05;
/// The period over which the accepted rate is measured after a refusal.
const ACCEPTED_RATE_HORIZON: Duration = Duration::from_secs(1);
/// How late a paced start may be and the next still be timed from when it
/// was due: a little more than a timer's rounding.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// The slowest learned pace: one request every ten seconds.
const MIN_RATE: f64 = 0.1;
/// A window is never shorter than this, so a provider that answers in
/// microseconds (a local fake) is still judged on several answers.
const MIN_WINDOW: Duration = Duration::from_millis(10);

/// What one answer tells the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// The provider answered in `rtt` (with offers, none, or a 4xx: it is
    /// healthy and this is its latency).
    Answered {
        /// Request start to last byte.
        rtt: Duration,
    },
    /// An explicit refusal: 429, Twilio's 20429. `retry_after` pauses the
    /// provider when it said how long.
    Refused {
        /// The provider's `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// Overload: a 503 or 504, or no answer within the timeout.
    Overloaded,
    /// Any other failure: it says nothing about how hard we push.
    Failed,
}

/// Rate-limit headers seen on an answer (`RateLimit-Remaining` and
/// `RateLimit-Reset`, or their `X-RateLimit-*` forms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateHint {
    /// Requests left in the provider's current window.
    pub remaining: u64,
    /// Until the window resets.
    pub reset: Duration,
}

impl RateHint {
    /// Reads the headers, if the provider sent them. `Reset` is read as
    /// seconds from now, or as a Unix time when it is larger than a day.
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Option<Self> {
        let number = |names: &[&str]| {
            names.iter().find_map(|name| {
                headers
                    .get(*name)?
                    .to_str()
                    .ok()?
                    .split([',', ';'])
                    .next()?
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            })
        };
        let remaining = number(&["ratelimit-remaining", "x-ratelimit-remaining"])?;
        let reset = number(&["ratelimit-reset", "x-ratelimit-reset"])?;
        let reset = if reset > 86_400.0 {
            // A Unix time.
            (reset - jiff::Timestamp::now().as_second() as f64).max(0.0)
        } else {
            reset
        };
        Some(Self {
            remaining: remaining as u64,
            reset: Duration::from_secs_f64(reset.min(MAX_PAUSE.as_secs_f64())),
        })
    }
}

/// Where a provider's controller starts and what it may never exceed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerConfig {
    /// Ceiling on requests in flight (`*_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
    /// Ceiling on requests started per second (`*_RATE_LIMIT`); `None` is unlimited.
    pub max_rate: Option<f64>,
    /// Ceiling on one request's time (`*_TIMEOUT`).
    pub timeout: Duration,
    /// The starting window (clamped to the ceiling).
    pub initial_concurrency: usize,
    /// A pace learned on an earlier run, if any.
    pub initial_rate: Option<f64>,
}

impl ControllerConfig {
    /// Ceilings from the configured limits, starting from the defaults.
    pub fn new(max_concurrency: usize, rate_per_sec: f64, timeout: Duration) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            max_rate: (rate_per_sec > 0.0 && rate_per_sec.is_finite()).then_some(rate_per_sec),
            timeout,
            initial_concurrency: DEFAULT_INITIAL_CONCURRENCY,
            initial_rate: None,
        }
    }
}

/// The operating point a controller has found, for reports and for the next
/// run to start from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OperatingPoint {
    /// The concurrency limit in force.
    pub concurrency: usize,
    /// The learned pace in requests per second (`None`: not pacing).
    pub rate_per_sec: Option<f64>,
    /// Smoothed round trip, in milliseconds (`None` before any answer).
    pub srtt_ms: Option<f64>,
}

/// One provider's adaptive concurrency and pacing.
#[derive(Debug)]
pub struct Controller {
    config: ControllerConfig,
    state: Mutex<State>,
    /// Wakes the head of the queue: a request finished, a limit changed, or
    /// the caller's give-up condition may have become true.
    changed: Notify,
    /// FIFO queue of callers waiting for their turn.
    gate: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    /// Learned pace (requests per second), before the configured ceiling.
    rate: Option<f64>,
    /// The earliest the next request may start (pace and pauses).
    not_before: Option<Instant>,
    last_start: Option<Instant>,
    /// Processes sharing the provider's concurrency ceiling (1: alone).
    fleet_share: usize,
    /// Past windows' mean round trip (EWMA) and its deviation.
    past_rtt: Option<Ewma>,
    /// Jacobson's estimators for the adaptive timeout.
    srtt: Option<f64>,
    rttvar: f64,
    samples: u32,
    window: Window,
    /// Completion times of recent successes, to measure the accepted rate.
    accepted: VecDeque<Instant>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    rtt_sum: f64,
    rtt_count: u32,
    reached_limit: bool,
    paced: bool,
    refused: bool,
    /// A refusal came with `Retry-After`: the provider's own pace.
    told: bool,
    overloaded: bool,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            rtt_sum: 0.0,
            rtt_count: 0,
            reached_limit: false,
            paced: false,
            refused: false,
            told: false,
            overloaded: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ewma {
    mean: f64,
    variance: f64,
}

impl Ewma {
    fn update(&mut self, sample: f64) {
        let delta = sample - self.mean;
        self.mean += EWMA_ALPHA * delta;
        self.variance = (1.0 - EWMA_ALPHA) * (self.variance + EWMA_ALPHA * delta * delta);
    }
}

/// One request's turn: counts as in flight until it is dropped.
#[derive(Debug)]
pub struct Ticket<'a> {
    controller: &'a Controller,
    started: Instant,
}

impl Ticket<'_> {
    /// When the request started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The deadline for this request as known now (it may move earlier as
    /// the provider's latency becomes known).
    pub fn deadline(&self) -> Instant {
        self.started + self.controller.timeout()
    }

    /// Reports what the answer said; the ticket is then released.
    pub fn finish(self, signal: Signal) {
        self.controller.record(signal);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut state = self.controller.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.controller.changed.notify_waiters();
    }
}

impl Controller {
    /// A controller within `config`'s ceilings.
    pub fn new(config: ControllerConfig) -> Self {
        let now = Instant::now();
        let limit = config.initial_concurrency.clamp(1, config.max_concurrency) as f64;
        Self {
            config,
            state: Mutex::new(State {
                limit,
                in_flight: 0,
                slow_start: true,
                rate: config.initial_rate.filter(|r| r.is_finite() && *r > 0.0),
                not_before: None,
                last_start: None,
                past_rtt: None,
                srtt: None,
                rttvar: 0.0,
                samples: 0,
                window: Window::new(now),
                accepted: VecDeque::new(),
                fleet_share: 1,
            }),
            changed: Notify::new(),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The ceilings in force.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section can panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts from an operating point learned earlier (a previous run's),
    /// within the ceilings. Only a controller that has not timed an answer
    /// yet takes it: a live one knows better.
    pub fn resume_from(&self, point: OperatingPoint) -> bool {
        let mut state = self.lock();
        if state.samples > 0 {
            return false;
        }
        state.limit = point.concurrency.clamp(1, self.ceiling(&state)) as f64;
        state.rate = point.rate_per_sec.filter(|r| r.is_finite() && *r > 0.0);
        if let Some(srtt) = point.srtt_ms.filter(|s| s.is_finite() && *s > 0.0) {
            // The window length until this run's own answers come in.
            state.past_rtt = Some(Ewma {
                mean: srtt / 1000.0,
                variance: 0.0,
            });
        }
        // A learned point is past slow start: grow from it additively.
        state.slow_start = false;
        true
    }

    /// Where the controller stands now.
    pub fn operating_point(&self) -> OperatingPoint {
        let state = self.lock();
        OperatingPoint {
            concurrency: state.limit as usize,
            rate_per_sec: self.effective_rate(&state),
            srtt_ms: state.srtt.map(|s| s * 1000.0),
        }
    }

    /// Whether the provider accepted anything over the last second: a
    /// refusal then means "slow down", not "no more".
    pub fn accepting(&self) -> bool {
        let now = Instant::now();
        self.lock()
            .accepted
            .back()
            .is_some_and(|t| now.duration_since(*t) <= ACCEPTED_RATE_HORIZON)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// This process's share of the concurrency ceiling: the configured
    /// ceiling divided by the processes sharing the provider, at least 1.
    fn ceiling(&self, state: &State) -> usize {
        (self.config.max_concurrency / state.fleet_share.max(1)).max(1)
    }

    /// `processes` share the provider (a fleet on one Redis, as its limiter
    /// last counted them): the ceiling on requests in flight becomes this
    /// process's share of the configured one, so the fleet as a whole keeps
    /// to it. The current window shrinks at once when above the new ceiling.
    pub fn set_fleet_share(&self, processes: usize) {
        let mut state = self.lock();
        let processes = processes.max(1);
        if state.fleet_share == processes {
            return;
        }
        state.fleet_share = processes;
        let ceiling = self.ceiling(&state) as f64;
        state.limit = state.limit.min(ceiling);
        drop(state);
        self.changed.notify_waiters();
    }

    /// The ceiling on requests in flight now (the configured one, or this
    /// process's share of it in a fleet).
    pub fn max_concurrency(&self) -> usize {
        self.ceiling(&self.lock())
    }

    /// The timeout for a request starting now.
    pub fn timeout(&self) -> Duration {
        let state = self.lock();
        match state.srtt {
            Some(srtt) if state.samples >= SAMPLES_FOR_TIMEOUT => {
                let adaptive = (srtt + 4.0 * state.rttvar).max(1.5 * srtt);
                Duration::from_secs_f64(adaptive)
                    .max(MIN_ADAPTIVE_TIMEOUT)
                    .min(self.config.timeout)
            }
            _ => self.config.timeout,
        }
    }

    /// Wakes the queue's head so it re-checks its give-up condition (the
    /// provider's circuit just opened, say).
    pub fn wake(&self) {
        self.changed.notify_waiters();
    }

    /// Waits for this caller's turn: a free slot under the limit and the
    /// pace's next start. Returns `None` as soon as `give_up()` is true
    /// (checked on every wake-up), so a caller queued behind a provider
    /// whose circuit opened can go elsewhere at once.
    pub async fn acquire(&self, give_up: impl Fn() -> bool) -> Option<Ticket<'_>> {
        let _turn = self.gate.lock().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if give_up() {
                return None;
            }
            let now = Instant::now();
            let wait_until = {
                let mut state = self.lock();
                if (state.in_flight as f64) >= state.limit.floor().max(1.0) {
                    state.window.reached_limit = true;
                    None
                } else if let Some(at) = state.not_before.filter(|at| *at > now) {
                    state.window.paced = true;
                    Some(at)
                } else {
                    state.in_flight += 1;
                    if (state.in_flight as f64) >= state.limit.floor() {
                        state.window.reached_limit = true;
                    }
                    state.last_start = Some(now);
                    // The next start is one interval after the start this
                    // one was due at, when the timer woke it a little late
                    // (tokio's timers round up to the millisecond): late
                    // wake-ups do not add up over a run, so 1,000/s means
                    // 1,000/s, not ~400. After a pause or idle: from now.
                    let due = state
                        .not_before
                        .filter(|at| now.saturating_duration_since(*at) <= TIMER_SLACK)
                        .unwrap_or(now);
                    state.not_before = self
                        .effective_rate(&state)
                        .map(|rate| due + Duration::from_secs_f64(1.0 / rate));
                    return Some(Ticket {
                        controller: self,
                        started: now,
                    });
                }
            };
            match wait_until {
                None => changed.await,
                Some(at) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }

    /// The pace in force: the learned one under the configured ceiling.
    fn effective_rate(&self, state: &State) -> Option<f64> {
        match (state.rate, self.config.max_rate) {
            (Some(learned), Some(ceiling)) => Some(learned.min(ceiling)),
            (learned, ceiling) => learned.or(ceiling),
        }
    }

    /// Applies a provider's rate-limit headers: no requests left pauses
    /// until the reset; otherwise the pace becomes what is left per second.
    pub fn hint(&self, hint: RateHint) {
        let now = Instant::now();
        let mut state = self.lock();
        if hint.remaining == 0 {
            let until = now + hint.reset.min(MAX_PAUSE);
            state.not_before = Some(state.not_before.map_or(until, |at| at.max(until)));
        } else if !hint.reset.is_zero() {
            let rate = (hint.remaining as f64 / hint.reset.as_secs_f64()).max(MIN_RATE);
            state.rate = Some(rate);
            // The pace applies from the last start, not from some queued slot.
            state.not_before = state
                .last_start
                .map(|last| last + Duration::from_secs_f64(1.0 / rate));
        }
        drop(state);
        self.changed.notify_waiters();
    }

    fn record(&self, signal: Signal) {
        let now = Instant::now();
        let mut state = self.lock();
        match signal {
            Signal::Answered { rtt } => {
                let r = rtt.as_secs_f64();
                state.window.rtt_sum += r;
                state.window.rtt_count += 1;
                match state.srtt {
                    None => {
                        state.srtt = Some(r);
                        state.rttvar = r / 2.0;
                    }
                    Some(srtt) => {
                        state.rttvar = 0.75 * state.rttvar + 0.25 * (srtt - r).abs();
                        state.srtt = Some(0.875 * srtt + 0.125 * r);
                    }
                }
                state.samples = state.samples.saturating_add(1);
                state.accepted.push_back(now);
            }
            Signal::Refused { retry_after } => {
                state.window.refused = true;
                if let Some(after) = retry_after {
                    // The provider set the pace itself: pause, learn nothing.
                    state.window.told = true;
                    let until = now + after.min(MAX_PAUSE);
                    state.not_before = Some(state.not_before.map_or(until, |at| at.max(until)));
                }
            }
            Signal::Overloaded => state.window.overloaded = true,
            Signal::Failed => {}
        }
        while state
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) > ACCEPTED_RATE_HORIZON)
        {
            state.accepted.pop_front();
        }
        let window_length = state
            .past_rtt
            .map(|e| Duration::from_secs_f64(e.mean))
            .or(state.srtt.map(Duration::from_secs_f64))
            .unwrap_or(MIN_WINDOW)
            .max(MIN_WINDOW);
        if now.duration_since(state.window.started) >= window_length {
            self.end_window(&mut state, now);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Once per window: the AIMD step for the limit, and the pace's.
    fn end_window(&self, state: &mut State, now: Instant) {
        let ceiling = self.ceiling(state) as f64;
        let window = std::mem::replace(&mut state.window, Window::new(now));
        let mean_rtt = (window.rtt_count > 0).then(|| window.rtt_sum / f64::from(window.rtt_count));
        let slow = match (mean_rtt, state.past_rtt) {
            (Some(mean), Some(past)) => {
                // A very steady provider has almost no deviation, and then
                // any scheduling noise would read as overload: the deviation
                // counted is at least a tenth of the mean.
                let deviation = past.variance.sqrt().max(RTT_NOISE_FLOOR * past.mean);
                mean > past.mean + RTT_DEVIATION_SCALE * deviation
            }
            _ => false,
        };
        if window.refused {
            // Cut the window only if it was what let too much through; when
            // the pace was binding, the pace is what must change.
            if window.reached_limit || state.rate.is_none() {
                state.limit = (state.limit * REFUSAL_DECREASE).floor().max(1.0);
            }
            state.slow_start = false;
            // The provider limits a rate: pace at what it accepted lately.
            let accepted = state.accepted.len() as f64 / ACCEPTED_RATE_HORIZON.as_secs_f64();
            let current = self.effective_rate(state).or_else(|| {
                state
                    .srtt
                    .filter(|srtt| *srtt > 0.0)
                    .map(|srtt| state.limit / srtt)
            });
            if accepted >= 1.0 && !window.told {
                state.rate = Some(current.map_or(accepted, |c| accepted.min(c)).max(MIN_RATE));
            }
            // Nothing got through lately: there is no rate to learn (the
            // provider may be out of quota); the halved window is the answer.
            let rate = state.rate;
            tracing::debug!(limit = state.limit, ?rate, "refused: slowing down");
        } else if window.overloaded || slow {
            state.limit = (state.limit * OVERLOAD_DECREASE).floor().max(1.0);
            state.slow_start = false;
        } else {
            if window.reached_limit {
                state.limit = if state.slow_start {
                    (state.limit * 2.0).min(ceiling)
                } else {
                    (state.limit + 1.0).min(ceiling)
                };
            }
            if window.paced {
                if let Some(rate) = state.rate {
                    let next = rate * PACE_PROBE_GROWTH;
                    // Once the pace no longer binds before the limit does, stop pacing.
                    let unbinding = state
                        .srtt
                        .is_some_and(|srtt| next * srtt > 2.0 * state.limit);
                    state.rate = (!unbinding).then_some(next);
                }
            }
        }
        if let Some(mean) = mean_rtt {
            match state.past_rtt.as_mut() {
                Some(past) => past.update(mean),
                None => {
                    state.past_rtt = Some(Ewma {
                        mean,
                        variance: 0.0,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn controller(max: usize, initial: usize) -> Arc<Controller> {
        Arc::new(Controller::new(ControllerConfig {
            initial_concurrency: initial,
            ..ControllerConfig::new(max, 0.0, Duration::from_secs(20))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_caps_requests_in_flight() {
        let c = controller(100, 3);
        let a = c.acquire(|| false).await.unwrap();
        let _b = c.acquire(|| false).await.unwrap();
        let _c = c.acquire(|| false).await.unwrap();
        assert_eq!(c.in_flight(), 3);
        let waiting = {
            let c = c.clone();
            tokio::spawn(async move { c.acquire(|| false).await.is_some() })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a fourth request waits");
        drop(a);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_doubles_once_per_window_then_refusal_halves_once() {
        let c = controller(1000, 4);
        // Window 1: four requests fill the limit, all answer in 100 ms.
        let tickets: Vec<_> = futures::future::join_all((0..4).map(|_| c.acquire(|| false))).await;
        tokio::time::advance(Duration::from_millis(100)).await;
        for t in tickets {
            t.unwrap().finish(Signal::Answered {
                rtt: Duration::from_millis(100),
            });
        }
        assert_eq!(c.operating_point().concurrency, 8, "doubled once");
        // Window 2: a burst of eight refusals cuts once, not eight times.
        let tickets: Vec<_> = futures::future::join_all((0..8).map(|_| c.acquire(|| false))).await;
        tokio::time::advance(Duration::from_millis(100)).await;
        for t in tickets {
            t.unwrap().finish(Signal::Refused { retry_after: None });
        }
        assert_eq!(c.operating_point().concurrency, 4);
        assert!(c.operating_point().rate_per_sec.is_some(), "now pacing");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_never_passes_the_ceiling() {
        let c = controller(6, 50);
        assert_eq!(c.operating_point().concurrency, 6);
        for _ in 0..20 {
            let tickets: Vec<_> =
                futures::future::join_all((0..6).map(|_| c.acquire(|| false))).await;
            tokio::time::advance(Duration::from_millis(50)).await;
            for t in tickets {
                t.unwrap().finish(Signal::Answered {
                    rtt: Duration::from_millis(50),
                });
            }
        }
        assert_eq!(c.operating_point().concurrency, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_share_divides_the_ceiling() {
        let c = controller(9, 9);
        assert_eq!(c.max_concurrency(), 9);
        c.set_fleet_share(3);
        assert_eq!(c.max_concurrency(), 3);
        assert_eq!(c.operating_point().concurrency, 3, "the window shrank");
        let _held: Vec<_> = futures::future::join_all((0..3).map(|_| c.acquire(|| false))).await;
        let fourth = {
            let c = c.clone();
            tokio::spawn(async move { c.acquire(|| false).await.is_some() })
        };
        tokio::task::yield_now().await;
        assert!(!fourth.is_finished(), "a fourth waits: the share is 3");
        // Alone again: the window may grow back to 9 (it does not jump).
        c.set_fleet_share(1);
        assert_eq!(c.max_concurrency(), 9);
        // More processes than slots: still one each.
        c.set_fleet_share(20);
        assert_eq!(c.max_concurrency(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_wake_up_does_not_slow_the_pace() {
        // A ceiling of 1,000 requests a second: one every millisecond.
        let c = Arc::new(Controller::new(ControllerConfig::new(
            100,
            1000.0,
            Duration::from_secs(20),
        )));
        let start = Instant::now();
        c.acquire(|| false).await.unwrap();
        // The second is due at 1 ms; its timer wakes it at 1.5 ms.
        tokio::time::advance(Duration::from_micros(1500)).await;
        let late = c.acquire(|| false).await.unwrap();
        assert_eq!(late.started() - start, Duration::from_micros(1500));
        // The third is due at 2 ms, not 2.5: lateness does not add up.
        tokio::time::advance(Duration::from_micros(500)).await;
        let third = c.acquire(|| false).await.unwrap();
        assert_eq!(third.started() - start, Duration::from_millis(2));
        // After an idle second the pace starts from now, not in a burst.
        tokio::time::advance(Duration::from_secs(1)).await;
        let idle = c.acquire(|| false).await.unwrap().started();
        let next = c.acquire(|| false).await.unwrap().started();
        assert!(next - idle >= Duration::from_millis(1), "{:?}", next - idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pace_applies_to_requests_already_queued() {
        let c = controller(100, 100);
        let start = Instant::now();
        c.hint(RateHint {
            remaining: 10,
            reset: Duration::from_secs(1),
        });
        let mut starts = Vec::new();
        for _ in 0..3 {
            let t = c.acquire(|| false).await.unwrap();
            starts.push(t.started() - start);
        }
        assert_eq!(
            starts,
            vec![
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_millis(200)
            ]
        );
        // Headers now say nothing is left for 2 s: the next start waits for the reset.
        c.hint(RateHint {
            remaining: 0,
            reset: Duration::from_secs(2),
        });
        let t = c.acquire(|| false).await.unwrap();
        assert_eq!(t.started() - start, Duration::from_millis(2200));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_caller() {
        let c = controller(100, 10);
        let start = Instant::now();
        let t = c.acquire(|| false).await.unwrap();
        t.finish(Signal::Refused {
            retry_after: Some(Duration::from_secs(3)),
        });
        let next = c.acquire(|| false).await.unwrap();
        assert!(next.started() - start >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_gives_up_when_told_to_while_queued() {
        let c = controller(100, 1);
        let _held = c.acquire(|| false).await.unwrap();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiting = {
            let c = c.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                c.acquire(|| flag.load(std::sync::atomic::Ordering::SeqCst))
                    .await
                    .is_none()
            })
        };
        tokio::task::yield_now().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        c.wake();
        assert!(waiting.await.unwrap(), "gave up without a slot");
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_adapts_to_the_observed_latency() {
        let c = controller(100, 100);
        assert_eq!(
            c.timeout(),
            Duration::from_secs(20),
            "configured until timed"
        );
        for _ in 0..SAMPLES_FOR_TIMEOUT {
            let t = c.acquire(|| false).await.unwrap();
            t.finish(Signal::Answered {
                rtt: Duration::from_millis(20),
            });
        }
        assert_eq!(c.timeout(), MIN_ADAPTIVE_TIMEOUT, "floored");
        for _ in 0..50 {
            let t = c.acquire(|| false).await.unwrap();
            t.finish(Signal::Answered {
                rtt: Duration::from_secs(4),
            });
        }
        let timeout = c.timeout();
        assert!(
            timeout >= Duration::from_secs(5) && timeout <= Duration::from_secs(20),
            "{timeout:?}"
        );
    }

    #[test]
    fn rate_limit_headers_are_read_in_both_spellings() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "30".parse().unwrap());
        headers.insert("x-ratelimit-reset", "15".parse().unwrap());
        assert_eq!(
            RateHint::from_headers(&headers),
            Some(RateHint {
                remaining: 30,
                reset: Duration::from_secs(15)
            })
        );
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("ratelimit-remaining", "0".parse().unwrap());
        assert_eq!(RateHint::from_headers(&headers), None, "no reset, no hint");
        headers.insert("ratelimit-reset", "soon".parse().unwrap());
        assert_eq!(RateHint::from_headers(&headers), None);
    }
}
