//! Retry decisions in one place: which failures are worth another attempt,
//! how long to wait before it, and the loop that does the waiting.
//!
//! - [`Retryable`] classifies a failure as [`RetryClass::Retry`] (optionally
//!   with the wait the provider asked for) or [`RetryClass::GiveUp`]. It is
//!   implemented for HTTP status codes, [`reqwest::Error`], [`UpstreamError`] and
//!   `crate::notify::NotifyError` (in `notify`), and nowhere else decides retryability.
//! - [`Backoff`] turns an attempt number into a wait: exponential growth with
//!   a cap and **full jitter** (a uniform draw between zero and the ceiling),
//!   so clients that failed together do not come back together. A provider's
//!   `Retry-After` wins over the jitter, capped at [`MAX_RETRY_AFTER`].
//! - [`parse_retry_after`] reads the header (delta-seconds, decimal seconds,
//!   or an HTTP-date).
//! - [`retry`] and [`retry_notify`] run an operation until it succeeds, fails
//!   for good, or runs out of attempts, sleeping on tokio's clock so tests
//!   drive them with a paused clock.
//! - [`Jitter`] is a tiny seedable PRNG (SplitMix64), so tests are
//!   deterministic and the crate needs no `rand`.
//!
//! Anything that might be retried must not be cached: a cached 429 or 5xx
//! would turn a passing hiccup into a cached answer. Cache only successes and
//! answers that [`Retryable`] classifies as [`RetryClass::GiveUp`].

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use jiff::Timestamp;

use crate::upstream::UpstreamError;

/// The first retry waits up to this long; each later retry doubles the ceiling.
///
/// A quarter of a second is long enough for a provider's brief hiccup (a
/// dropped connection, a 503 while a node restarts) to pass, and short
/// enough that a lookup which recovers on its second try barely slows the
/// cycle. With [`DEFAULT_MAX_ATTEMPTS`] the ceilings are 250 ms then 500 ms.
pub const DEFAULT_BASE: Duration = Duration::from_millis(250);

/// No jittered wait is ever longer than this.
///
/// Ten seconds bounds how long one lookup can hold its provider's
/// concurrency permit while sleeping; past that, the circuit breaker and the
/// next cycle (15 minutes later by default) are the better tools. With the
/// default base it first bites on the seventh retry (250 ms × 2⁶ = 16 s), so
/// it only matters when `max_attempts` is raised.
pub const DEFAULT_CAP: Duration = Duration::from_secs(10);

/// Attempts in total, the first one included (so two retries).
///
/// Three is lychee's `DEFAULT_MAX_RETRIES` and fli's `stop_after_attempt(3)`:
/// enough to ride out a transient error, few enough that a provider that is
/// really down costs each lookup at most three requests before the circuit
/// breaker takes over.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The longest `Retry-After` we honour; longer requests are capped to this,
/// with a warning.
///
/// A provider may ask for minutes or hours (an exhausted quota, a global
/// ban). Sleeping that long inside a lookup would stall the cycle while
/// holding a concurrency permit; a minute is lychee's `MAXIMUM_BACKOFF` and
/// about the longest a cycle can afford. If the provider is still refusing
/// after the capped wait, the lookup fails and the circuit breaker decides.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Try again: after `after` when the provider said how long to wait,
    /// otherwise after a jittered backoff.
    Retry {
        /// The wait the provider asked for (`Retry-After`), uncapped.
        after: Option<Duration>,
    },
    /// Another attempt would fail the same way, or could do harm.
    GiveUp,
}

impl RetryClass {
    /// A retry with no wait requested by the provider.
    pub const RETRY: RetryClass = RetryClass::Retry { after: None };

    /// Whether another attempt is worth making.
    pub fn should_retry(self) -> bool {
        matches!(self, RetryClass::Retry { .. })
    }

    /// The wait the provider asked for, if it asked.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            RetryClass::Retry { after } => after,
            RetryClass::GiveUp => None,
        }
    }
}

/// A failure that knows whether it is worth retrying.
///
/// This trait is the one place that decides retryability (house style G5);
/// callers ask it rather than matching on error variants themselves.
pub trait Retryable {
    /// How to react to this failure.
    fn retry_class(&self) -> RetryClass;

    /// Shorthand for `self.retry_class().should_retry()`.
    fn should_retry(&self) -> bool {
        self.retry_class().should_retry()
    }
}

/// 408 (request timeout), 429 (too many requests) and every 5xx are retried;
/// everything else gives up.
///
/// Only meaningful for a status that is not a success: a 2xx is not an error
/// and is classified [`RetryClass::GiveUp`] ("nothing to retry"). A 429's
/// `Retry-After` lives in a header, which a bare status cannot see: use
/// [`parse_retry_after`] and build [`UpstreamError::RateLimited`] to carry it.
impl Retryable for reqwest::StatusCode {
    fn retry_class(&self) -> RetryClass {
        let retry = *self == reqwest::StatusCode::REQUEST_TIMEOUT
            || *self == reqwest::StatusCode::TOO_MANY_REQUESTS
            || self.is_server_error();
        if retry {
            RetryClass::RETRY
        } else {
            RetryClass::GiveUp
        }
    }
}

/// Timeouts are retried; an error carrying a status is classified by that
/// status; connection, redirect, body and decode errors give up (the same
/// split as lychee's `retry.rs`). Connect errors give up for the reason
/// given on [`UpstreamError::Connect`].
impl Retryable for reqwest::Error {
    fn retry_class(&self) -> RetryClass {
        if self.is_timeout() {
            RetryClass::RETRY
        } else if let Some(status) = self.status() {
            status.retry_class()
        } else {
            RetryClass::GiveUp
        }
    }
}

/// | variant | class | why |
/// |---|---|---|
/// | `Timeout` | retry | usually transient; a fare lookup is a read, so repeating it is harmless |
/// | `Connect` | give up | a refused or broken connection means the provider (or our network) is down; retrying within milliseconds rarely helps, so the failure goes straight to the circuit breaker, which fails over and probes later |
/// | `Auth` | give up | the source already refreshes its token once; wrong credentials stay wrong ([`UpstreamError::opens_circuit`]) |
/// | `RateLimited { retry_after }` | retry after `retry_after` | a throttle (Amadeus 38194) is an invitation to come back later |
/// | `QuotaExhausted` | give up | the period's quota (Amadeus 38195) will not come back within a cycle ([`UpstreamError::opens_circuit`]) |
/// | `Rejected` | give up | the request itself is wrong (bad airport, past date) |
/// | `Upstream` | retry | a 5xx on the provider's side is often momentary |
/// | `Decode` | give up | the same bytes would decode the same way |
/// | `CircuitOpen` | give up | the breaker already decided; the next cycle tries again |
/// | `BudgetSpent` | give up | the day's paid searches are used up; tomorrow's budget is fresh |
/// | `FleetLimited` | give up | the fleet's limiter already waited as long as a lookup may; the next source is asked |
impl Retryable for UpstreamError {
    fn retry_class(&self) -> RetryClass {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::Upstream { .. } => RetryClass::RETRY,
            UpstreamError::RateLimited { retry_after } => RetryClass::Retry {
                after: *retry_after,
            },
            UpstreamError::Connect(_)
            | UpstreamError::Auth(_)
            | UpstreamError::QuotaExhausted(_)
            | UpstreamError::Rejected { .. }
            | UpstreamError::Decode(_)
            | UpstreamError::CircuitOpen(_)
            | UpstreamError::BudgetSpent(_)
            | UpstreamError::FleetLimited(_) => RetryClass::GiveUp,
        }
    }
}

// An inherent method on a type from another module of this crate: it lives
// here so that every "what does this failure mean for the next request"
// decision about fares is read in one file.
impl UpstreamError {
    /// Whether this failure should open the provider's circuit at once,
    /// rather than count towards the failure threshold: no request can
    /// succeed until someone fixes the credentials (`Auth`) or the quota
    /// period rolls over (`QuotaExhausted`, Amadeus 38195: until the 1st of
    /// next month). See [`crate::upstream::breaker::Breaker::trip_until`].
    pub fn opens_circuit(&self) -> bool {
        matches!(
            self,
            UpstreamError::QuotaExhausted(_) | UpstreamError::Auth(_)
        )
    }
}

/// Exponential backoff with a cap and full jitter.
///
/// Retry *n* (counting from 0) waits a uniform random time in
/// `[0, min(cap, base * 2^n)]`. Full jitter spreads retries from clients that
/// failed at the same moment across the whole window, which is what lets a
/// recovering provider recover (vector's `JitterMode::Full`; "Exponential
/// Backoff And Jitter", AWS Architecture Blog, 2015).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(DEFAULT_BASE, DEFAULT_CAP, DEFAULT_MAX_ATTEMPTS)
    }
}

impl Backoff {
    /// A backoff starting at `base`, never above `cap`, for `max_attempts`
    /// attempts in total (the first included; `0` is treated as `1`).
    pub const fn new(base: Duration, cap: Duration, max_attempts: u32) -> Self {
        Backoff {
            base,
            cap,
            max_attempts: if max_attempts == 0 { 1 } else { max_attempts },
        }
    }

    /// This backoff with another base.
    pub const fn with_base(self, base: Duration) -> Self {
        Backoff { base, ..self }
    }

    /// This backoff with another cap.
    pub const fn with_cap(self, cap: Duration) -> Self {
        Backoff { cap, ..self }
    }

    /// This backoff with another number of attempts (`0` is treated as `1`).
    pub const fn with_max_attempts(self, max_attempts: u32) -> Self {
        Backoff::new(self.base, self.cap, max_attempts)
    }

    /// The first retry's ceiling.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The largest jittered wait.
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// Attempts in total, the first included.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The ceiling for retry `retry` (0 for the first retry):
    /// `min(cap, base * 2^retry)`, without overflowing.
    pub fn ceiling(&self, retry: u32) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        1u32.checked_shl(retry)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A full-jitter wait before retry `retry` (0 for the first retry):
    /// uniform in `[0, self.ceiling(retry)]`, in whole milliseconds.
    ///
    /// Milliseconds are the resolution of tokio's timer, which rounds finer
    /// sleeps up; drawing whole milliseconds keeps the wait we report (to
    /// [`retry_notify`]'s callback, in logs) equal to the wait we get.
    pub fn delay(&self, retry: u32, rng: &mut Jitter) -> Duration {
        let ceiling_ms = u64::try_from(self.ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.up_to(ceiling_ms))
    }

    /// The wait before retry `retry`: the provider's `retry_after` when it
    /// gave one (capped at [`MAX_RETRY_AFTER`], with a warning when capped),
    /// otherwise [`Backoff::delay`].
    ///
    /// The warning carries no provider name; the caller's tracing span does.
    pub fn delay_for(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut Jitter,
    ) -> Duration {
        match retry_after {
            Some(asked) => cap_retry_after(asked),
            None => self.delay(retry, rng),
        }
    }
}

/// `asked`, or [`MAX_RETRY_AFTER`] with a warning when `asked` is longer.
pub fn cap_retry_after(asked: Duration) -> Duration {
    if asked > MAX_RETRY_AFTER {
        tracing::warn!(
            asked_secs = asked.as_secs_f64(),
            capped_secs = MAX_RETRY_AFTER.as_secs_f64(),
            "the provider asked us to wait {asked:?} before retrying; capped to {MAX_RETRY_AFTER:?}"
        );
        MAX_RETRY_AFTER
    } else {
        asked
    }
}

/// Parses a `Retry-After` value into a wait from `now`.
///
/// Accepts delta-seconds (`"120"`), decimal seconds (`"1.5"`, as Discord
/// sends) and an HTTP-date (`"Wed, 21 Oct 2026 07:28:00 GMT"`; the obsolete
/// RFC 850 and asctime forms too, since RFC 9110 asks recipients to accept
/// them). A date in the past means "now": `Some(Duration::ZERO)`. Anything
/// else is `None`. The result is not capped; [`Backoff::delay_for`] caps it.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Some(seconds) = parse_delta_seconds(value) {
        return Some(seconds);
    }
    let at = parse_http_date(value)?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// `"120"` or `"1.5"`: digits, optionally one `.` followed by digits.
/// Values too large to represent saturate to [`Duration::MAX`].
fn parse_delta_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return None;
    }
    match fraction {
        None => Some(whole.parse().map_or(Duration::MAX, Duration::from_secs)),
        Some(_) => {
            let seconds: f64 = value.parse().ok()?;
            Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
        }
    }
}

/// An HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and
/// asctime forms, all in GMT.
fn parse_http_date(value: &str) -> Option<Timestamp> {
    // IMF-fixdate is a subset of RFC 2822. A wrong weekday is the sender's
    // slip, not a reason to ignore the date.
    static IMF: jiff::fmt::rfc2822::DateTimeParser =
        jiff::fmt::rfc2822::DateTimeParser::new().relaxed_weekday(true);
    if let Ok(ts) = IMF.parse_timestamp(value) {
        return Some(ts);
    }
    // RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
    // ("Sun Nov  6 08:49:37 1994"), both in UTC.
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| {
            let civil = jiff::fmt::strtime::parse(format, value)
                .ok()?
                .to_datetime()
                .ok()?;
            civil.to_zoned(jiff::tz::TimeZone::UTC).ok()
        })
        .map(|zoned| zoned.timestamp())
}

/// Retries allowed over a window, as a share of the requests sent in it.
pub const RETRY_BUDGET_RATIO: f64 = 0.2;

/// Retries always allowed per window, so a quiet provider can still retry.
pub const RETRY_BUDGET_MIN: f64 = 10.0;

/// The window a [`RetryBudget`] counts over.
pub const RETRY_BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Caps retries at a share of the traffic (Finagle's retry budget): over the
/// last [`RETRY_BUDGET_WINDOW`], retries may be at most [`RETRY_BUDGET_MIN`]
/// plus [`RETRY_BUDGET_RATIO`] of first attempts. A failing provider then
/// receives at most about 1.2 times the requests it would have without
/// retries, not three times: past the budget a failed lookup goes to the
/// next source instead of back to the same one.
///
/// Counts decay exponentially over the window, on tokio's clock.
#[derive(Debug)]
pub struct RetryBudget {
    inner: std::sync::Mutex<BudgetCounts>,
}

#[derive(Debug)]
struct BudgetCounts {
    requests: f64,
    retries: f64,
    at: tokio::time::Instant,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryBudget {
    /// An empty budget (only the minimum is available).
    pub fn new() -> Self {
        Self {
            inner: std::sync::Mutex::new(BudgetCounts {
                requests: 0.0,
                retries: 0.0,
                at: tokio::time::Instant::now(),
            }),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, BudgetCounts> {
        let mut counts = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(counts.at).as_secs_f64();
        if elapsed > 0.0 {
            let keep = (-elapsed / RETRY_BUDGET_WINDOW.as_secs_f64()).exp();
            counts.requests *= keep;
            counts.retries *= keep;
            counts.at = now;
        }
        counts
    }

    /// A first attempt was sent.
    pub fn deposit(&self) {
        self.counts().requests += 1.0;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let mut counts = self.counts();
        if counts.retries + 1.0 <= RETRY_BUDGET_MIN + RETRY_BUDGET_RATIO * counts.requests {
            counts.retries += 1.0;
            true
        } else {
            false
        }
    }
}

/// A small seedable PRNG (SplitMix64) for jitter.
///
/// Not for anything secret. Seed it with [`Jitter::seeded`] in tests for
/// repeatable delays, and with [`Jitter::from_entropy`] otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator that always yields the same sequence for the same seed.
    pub const fn seeded(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// A generator seeded from the process's hash randomness and the clock,
    /// different on every call.
    pub fn from_entropy() -> Self {
        // `RandomState` draws random keys once per thread and varies them on
        // every `new()`; the wall clock separates processes further.
        let mut hasher = RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        Jitter::seeded(hasher.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `[0, max]` (multiply-shift, no modulo bias worth
    /// the name).
    pub fn up_to(&mut self, max: u64) -> u64 {
        let span = u128::from(max) + 1;
        ((u128::from(self.next_u64()) * span) >> 64) as u64
    }

    /// A uniform duration in `[0, max]`, to the nanosecond (durations beyond
    /// `u64::MAX` nanoseconds, about 584 years, are treated as that).
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.up_to(max_nanos))
    }
}

/// One failed attempt that is about to be retried, as told to
/// [`retry_notify`]'s callback.
#[derive(Debug)]
pub struct RetryNotice<'a, E> {
    /// The attempt that failed, counting from 0.
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a E,
    /// How long we wait before the next attempt.
    pub delay: Duration,
}

/// Runs `op` until it succeeds, fails with an error that should not be
/// retried, or has been tried [`Backoff::max_attempts`] times; returns the
/// last result.
///
/// `op` receives the attempt number, counting from 0. Between attempts it
/// sleeps on tokio's clock for [`Backoff::delay_for`] (the error's
/// `Retry-After` when it has one, else a full-jitter backoff). There is no
/// sleep after the last attempt.
pub async fn retry<T, E, F, Fut>(backoff: &Backoff, jitter: &mut Jitter, op: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_notify(backoff, jitter, op, |_| {}).await
}

/// [`retry`], calling `notify` before each wait (for logs or metrics).
pub async fn retry_notify<T, E, F, Fut, N>(
    backoff: &Backoff,
    jitter: &mut Jitter,
    mut op: F,
    mut notify: N,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    N: FnMut(&RetryNotice<'_, E>),
{
    let mut attempt = 0;
    loop {
        let error = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let class = error.retry_class();
        if !class.should_retry() || attempt + 1 >= backoff.max_attempts() {
            return Err(error);
        }
        let delay = backoff.delay_for(attempt, class.retry_after(), jitter);
        tracing::debug!(
            attempt,
            delay_ms = delay.as_millis(),
            "retrying after a failure"
        );
        notify(&RetryNotice {
            attempt,
            error: &error,
            delay,
        });
        drop(error);
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use reqwest::StatusCode;
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_allows_a_share_of_the_traffic() {
        let budget = RetryBudget::new();
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 30, "10 always, plus 20 % of 100 requests");
        // The window moves on: old traffic and old retries fade out together.
        tokio::time::advance(RETRY_BUDGET_WINDOW * 5).await;
        assert!(budget.try_withdraw(), "the minimum is back");
    }

    fn upstream() -> UpstreamError {
        UpstreamError::Upstream {
            status: 503,
            code: None,
            message: "down".into(),
        }
    }

    #[test]
    fn status_codes_are_classified() {
        let table = [
            (200, false),
            (400, false),
            (404, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
        ];
        for (code, retry) in table {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status.should_retry(), retry, "HTTP {code}");
            if retry {
                assert_eq!(status.retry_class(), RetryClass::RETRY, "HTTP {code}");
            }
        }
    }

    #[test]
    fn every_fare_error_is_classified() {
        let s = |d| Some(Duration::from_secs(d));
        let table = [
            (
                UpstreamError::Timeout(Duration::from_secs(5)),
                RetryClass::RETRY,
            ),
            (UpstreamError::Connect("refused".into()), RetryClass::GiveUp),
            (
                UpstreamError::Auth("invalid_client".into()),
                RetryClass::GiveUp,
            ),
            (
                UpstreamError::RateLimited { retry_after: None },
                RetryClass::Retry { after: None },
            ),
            (
                UpstreamError::RateLimited { retry_after: s(7) },
                RetryClass::Retry { after: s(7) },
            ),
            (
                UpstreamError::QuotaExhausted("38195".into()),
                RetryClass::GiveUp,
            ),
            (
                UpstreamError::Rejected {
                    status: 400,
                    code: Some("477".into()),
                    message: "INVALID FORMAT".into(),
                },
                RetryClass::GiveUp,
            ),
            (upstream(), RetryClass::RETRY),
            (UpstreamError::Decode("eof".into()), RetryClass::GiveUp),
        ];
        for (error, class) in table {
            assert_eq!(error.retry_class(), class, "{error:?}");
            let opens = matches!(
                error,
                UpstreamError::QuotaExhausted(_) | UpstreamError::Auth(_)
            );
            assert_eq!(error.opens_circuit(), opens, "{error:?}");
        }
    }

    #[test]
    fn ceiling_doubles_then_caps_without_overflow() {
        let b = Backoff::new(Duration::from_millis(250), Duration::from_secs(10), 3);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(b.ceiling(0), ms(250));
        assert_eq!(b.ceiling(1), ms(500));
        assert_eq!(b.ceiling(5), ms(8_000));
        assert_eq!(b.ceiling(6), ms(10_000));
        assert_eq!(b.ceiling(31), ms(10_000));
        assert_eq!(b.ceiling(32), ms(10_000));
        assert_eq!(b.ceiling(u32::MAX), ms(10_000));
    }

    #[test]
    fn defaults_are_the_documented_consts() {
        let b = Backoff::default();
        assert_eq!(b.base(), DEFAULT_BASE);
        assert_eq!(b.cap(), DEFAULT_CAP);
        assert_eq!(b.max_attempts(), DEFAULT_MAX_ATTEMPTS);
        assert_eq!(b.with_max_attempts(0).max_attempts(), 1);
    }

    #[test]
    fn jitter_is_deterministic_per_seed_and_not_constant() {
        let b = Backoff::default();
        let draw = |seed| {
            let mut rng = Jitter::seeded(seed);
            (0..64).map(|_| b.delay(3, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let samples = draw(7);
        let ceiling = b.ceiling(3);
        // Full jitter uses the whole window, not just its top.
        assert!(samples.iter().any(|d| *d < ceiling / 4), "{samples:?}");
        assert!(samples.iter().any(|d| *d > ceiling * 3 / 4), "{samples:?}");
        let mut distinct = samples.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 60, "{} distinct of 64", distinct.len());
        assert_ne!(Jitter::from_entropy(), Jitter::from_entropy());
    }

    #[test]
    fn up_to_covers_both_ends_of_a_small_range() {
        let mut rng = Jitter::seeded(1);
        let mut seen = [0u32; 3];
        for _ in 0..3000 {
            seen[rng.up_to(2) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
        assert_eq!(rng.up_to(0), 0);
        assert_eq!(rng.duration_up_to(Duration::ZERO), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn full_jitter_stays_within_the_ceiling(
            seed: u64,
            retry in 0u32..80,
            base_ms in 0u64..20_000,
            cap_ms in 0u64..120_000,
        ) {
            let base = Duration::from_millis(base_ms);
            let cap = Duration::from_millis(cap_ms);
            let b = Backoff::new(base, cap, 3);
            // min(cap, base * 2^retry), in u128 nanoseconds (no overflow below 2^128).
            let ceiling = (base.as_nanos() << retry).min(cap.as_nanos());
            prop_assert_eq!(b.ceiling(retry).as_nanos(), ceiling);
            let mut rng = Jitter::seeded(seed);
            for _ in 0..8 {
                let d = b.delay(retry, &mut rng);
                prop_assert!(d.as_nanos() <= ceiling, "{d:?} > {ceiling}ns");
                prop_assert!(d <= cap);
            }
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn retry_after_seconds_and_decimals() {
        let now = ts("2026-10-21T07:00:00Z");
        let parse = |v| parse_retry_after(v, now);
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("64.57"), Some(Duration::from_secs_f64(64.57)));
        assert_eq!(parse("99999999999999999999999"), Some(Duration::MAX));
    }

    #[test]
    fn retry_after_http_dates() {
        let now = ts("2026-10-21T07:00:00Z");
        let parse = |v| parse_retry_after(v, now);
        assert_eq!(
            parse("Wed, 21 Oct 2026 07:28:00 GMT"),
            Some(Duration::from_secs(28 * 60))
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            parse("Wednesday, 21-Oct-26 07:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Wed Oct 21 07:01:00 2026"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse("Sun Nov  1 07:00:00 2026"),
            Some(Duration::from_secs(11 * 24 * 3600))
        );
        // A date in the past means "retry now".
        assert_eq!(parse("Tue, 20 Oct 2026 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_none() {
        let now = ts("2026-10-21T07:00:00Z");
        for garbage in [
            "",
            " ",
            "soon",
            "-5",
            "+5",
            "1e3",
            "1.",
            ".5",
            "1.2.3",
            "NaN",
            "inf",
            "12s",
            "Wed, 32 Oct 2026 07:28:00 GMT",
            "2026-10-21T07:28:00Z",
        ] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    /// Collects what `tracing` writes while `f` runs.
    fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    #[test]
    fn retry_after_wins_over_jitter_and_is_capped_with_a_warning() {
        let b = Backoff::default();
        let mut rng = Jitter::seeded(9);
        let ((short, long), logs) = capture_logs(|| {
            let short = b.delay_for(2, Some(Duration::from_secs(42)), &mut rng);
            let long = b.delay_for(0, Some(Duration::from_secs(3600)), &mut rng);
            (short, long)
        });
        // 42 s is above the jitter cap (10 s): the provider's word wins.
        assert_eq!(short, Duration::from_secs(42));
        assert_eq!(long, MAX_RETRY_AFTER);
        assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
        assert!(logs.contains("asked us to wait 3600s"), "{logs}");
        assert!(logs.contains("capped to 60s"), "{logs}");
        // The Retry-After path draws no randomness.
        assert_eq!(rng, Jitter::seeded(9));
        assert!(b.delay_for(0, None, &mut rng) <= DEFAULT_BASE);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_succeeds_on_the_third_attempt_after_the_jittered_delays() {
        let backoff = Backoff::default();
        let mut jitter = Jitter::seeded(2026);
        let mut expected_rng = jitter.clone();
        let expected = backoff.delay(0, &mut expected_rng) + backoff.delay(1, &mut expected_rng);
        assert!(expected > Duration::ZERO);

        let calls = Cell::new(0u32);
        let start = Instant::now();
        let result = retry(&backoff, &mut jitter, |attempt| {
            assert_eq!(attempt, calls.get());
            calls.set(calls.get() + 1);
            async move {
                if attempt < 2 {
                    Err(upstream())
                } else {
                    Ok("fare")
                }
            }
        })
        .await;
        assert_eq!(result, Ok("fare"));
        assert_eq!(calls.get(), 3);
        assert_eq!(Instant::now() - start, expected);
    }

    #[test]
    fn the_retry_future_is_send_when_the_operation_is() {
        fn assert_send<T: Send>(_: &T) {}
        let mut jitter = Jitter::seeded(0);
        let backoff = Backoff::default();
        let fut = retry(&backoff, &mut jitter, |_| async {
            Ok::<(), UpstreamError>(())
        });
        assert_send(&fut);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_at_once_on_a_permanent_error() {
        let mut jitter = Jitter::seeded(1);
        let calls = Cell::new(0u32);
        let start = Instant::now();
        let result: Result<(), _> = retry(&Backoff::default(), &mut jitter, |_| {
            calls.set(calls.get() + 1);
            async { Err(UpstreamError::QuotaExhausted("38195".into())) }
        })
        .await;
        assert_eq!(result, Err(UpstreamError::QuotaExhausted("38195".into())));
        assert_eq!(calls.get(), 1);
        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_after_max_attempts_and_returns_the_last_error() {
        let backoff = Backoff::default().with_max_attempts(4);
        let mut jitter = Jitter::seeded(5);
        let mut expected_rng = jitter.clone();
        let expected: Duration = (0..3).map(|n| backoff.delay(n, &mut expected_rng)).sum();

        let mut notices = Vec::new();
        let start = Instant::now();
        let result: Result<(), _> = retry_notify(
            &backoff,
            &mut jitter,
            |attempt| async move {
                Err(UpstreamError::Timeout(Duration::from_secs(u64::from(
                    attempt,
                ))))
            },
            |notice| notices.push((notice.attempt, notice.error.clone(), notice.delay)),
        )
        .await;
        assert_eq!(result, Err(UpstreamError::Timeout(Duration::from_secs(3))));
        assert_eq!(
            notices.iter().map(|n| n.0).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(notices[1].1, UpstreamError::Timeout(Duration::from_secs(1)));
        assert_eq!(notices.iter().map(|n| n.2).sum::<Duration>(), expected);
        // No sleep after the last attempt.
        assert_eq!(Instant::now() - start, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_honours_the_errors_retry_after() {
        let mut jitter = Jitter::seeded(3);
        let calls = Cell::new(0u32);
        let start = Instant::now();
        let result = retry(&Backoff::default(), &mut jitter, |attempt| {
            calls.set(calls.get() + 1);
            async move {
                match attempt {
                    0 => Err(UpstreamError::RateLimited {
                        retry_after: Some(Duration::from_secs(2)),
                    }),
                    1 => Err(UpstreamError::RateLimited {
                        retry_after: Some(Duration::from_secs(600)),
                    }),
                    _ => Ok(attempt),
                }
            }
        })
        .await;
        assert_eq!(result, Ok(2));
        assert_eq!(calls.get(), 3);
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(2) + MAX_RETRY_AFTER
        );
    }
}
