//! [`FleetLimiter`]: one provider's fleet-wide rate limit and daily quota in
//! Redis (`limits.lua`), with a local fallback at this process's share when
//! Redis does not answer. See the [module docs](super) for the algorithm
//! and the keys.
//!
//! The local fallback is a GCRA of its own on tokio's clock rather than a
//! `governor` bucket: governor keeps its own clock, which a paused tokio
//! clock does not move, and the fallback is a dozen lines.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::civil::Date;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use crate::redact::{redact_url, scrub};
use crate::telemetry;
use crate::upstream::budget::DayClock;
use crate::upstream::retry::Jitter;

/// The fleet size a process assumes when `FAREWATCH_FLEET_SIZE` is unset and
/// Redis has not told it better. Redis reports how many processes called in
/// the last [`NODE_HORIZON`], and the fallback divides by the larger of the
/// two, so a fleet that had Redis when it started needs no setting; set
/// `FAREWATCH_FLEET_SIZE` for daemons that may start while Redis is down.
pub const DEFAULT_FLEET_SIZE: u32 = 1;

/// Requests the fleet may send at once when nothing else is configured
/// (`P_FLEET_BURST`): one, so the fleet is paced as strictly as each
/// process's own controller paces itself.
pub const DEFAULT_BURST: u32 = 1;

/// How long a process counts as part of the fleet after its last call.
/// Generous on purpose: counting a process that has gone only makes the
/// fallback's share smaller, which is the safe direction; a daemon on a
/// 15-minute interval is counted between its cycles.
pub const NODE_HORIZON: Duration = Duration::from_secs(60 * 60);

/// How often a degraded limiter asks (in the background) whether Redis
/// answers again.
pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Connect and response timeout for the limiter's Redis commands. Redis
/// answers a script in well under a millisecond; one that takes a second is
/// treated as down, and the lookups go on at the local share.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest one request waits for its fleet turn by default: past it the
/// lookup gives up on the provider (and fails over). Raised to a few
/// emission intervals for very slow rates ([`FleetLimiter::max_wait`]).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// A refused request waits its retry-after plus up to this fraction of the
/// emission interval, so processes refused together do not all come back
/// at the same microsecond.
const JITTER_DIVISOR: u32 = 10;

/// A process reserves at most this much of the rate's future in one round
/// trip ([`FleetLimiter::acquire_ahead`]): at 1,000 requests a second, 50
/// turns. Turns it reserves and never uses (it stops, its lookups give up)
/// are lost to the fleet: under-use, never over-use.
const RESERVE_WINDOW: Duration = Duration::from_millis(50);

/// And at most this many turns, whatever the rate.
const MAX_RESERVED: u32 = 64;

/// Fallback warnings are logged at most this often (every fallback is counted).
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// The GCRA and quota script (`KEYS` and `ARGV` are documented in it).
static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("limits.lua")));

/// What one try at the limit said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead. `remaining`: requests left today when there is a quota (on
    /// the local share, what is left of this process's share).
    Granted {
        /// Requests left today (`None`: no quota).
        remaining: Option<u64>,
    },
    /// Not now: the rate allows the next request after `retry_after`.
    Wait {
        /// Until the next turn.
        retry_after: Duration,
    },
    /// The day's quota is spent; it renews at 00:00 UTC, `retry_after` from now.
    QuotaSpent {
        /// Until the quota renews.
        retry_after: Duration,
    },
}

/// What the script said.
enum Verdict {
    /// `turns` turns, the first due `first` µs from now (zero or less: now),
    /// the others one emission interval apart.
    Granted {
        turns: u32,
        first: i64,
        remaining: Option<u64>,
    },
    /// None within the horizon: [`Attempt::Wait`] or [`Attempt::QuotaSpent`].
    Refused(Attempt),
}

/// Why [`FleetLimiter::acquire`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The fleet's rate leaves no turn before the deadline.
    #[error("the fleet-wide rate limit leaves no turn before the deadline (the next in {retry_after:?})")]
    Rate {
        /// Until the next turn, as of the last try.
        retry_after: Duration,
    },
    /// The fleet's daily quota is spent until 00:00 UTC.
    #[error("the fleet's daily budget of {per_day} requests is spent until 00:00 UTC")]
    Quota {
        /// The daily quota.
        per_day: u64,
        /// Until it renews.
        retry_after: Duration,
    },
}

/// The Redis connection a process's limiters share, and the process's node
/// id (how Redis counts the fleet). Connects on first use and reconnects by
/// itself; cheap to clone.
#[derive(Clone)]
pub struct FleetRedis {
    /// `Err`: the URL is unusable (why, password redacted); every limiter
    /// then runs on its local share.
    conn: Result<ConnectionManager, Arc<str>>,
    /// The URL with any password redacted, for logs.
    url: Arc<str>,
    node: Arc<str>,
}

impl fmt::Debug for FleetRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetRedis")
            .field("url", &self.url)
            .field("node", &self.node)
            .field("usable", &self.conn.is_ok())
            .finish()
    }
}

impl FleetRedis {
    /// A lazy connection to `url` (nothing is sent until the first request);
    /// call it inside a tokio runtime. A URL that does not parse is logged
    /// once, and the limiters on it run on their local share.
    pub fn open(url: &str) -> Self {
        let shown = redact_url(url);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            // A command fails at once while Redis is down (the limiter then
            // uses its local share); the next one reconnects.
            .set_number_of_retries(0);
        let conn = redis::Client::open(url)
            .and_then(|client| ConnectionManager::new_lazy_with_config(client, config))
            .map_err(|e| Arc::<str>::from(scrub(&e.to_string(), url)));
        if let Err(problem) = &conn {
            tracing::warn!(
                url = %shown,
                %problem,
                "REDIS_URL is not a usable Redis URL: fleet-wide provider limits \
                 run on this process's share"
            );
        }
        let mut random = Jitter::from_entropy();
        Self {
            conn,
            url: Arc::from(shown),
            node: Arc::from(format!("{}-{:016x}", std::process::id(), random.next_u64())),
        }
    }

    /// This process's id in the fleet (`PID-RANDOM`).
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// One provider's fleet-wide limit. Cheap to clone; clones share the state.
///
/// The `with_*` settings apply to a limiter not yet cloned (they panic on a
/// shared one: a programming error, not a run-time condition).
#[derive(Clone)]
pub struct FleetLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    redis: FleetRedis,
    provider: Arc<str>,
    /// Requests per second, `None`: no rate limit (a quota alone).
    rate: Option<f64>,
    /// `1 / rate` in µs, 0 without a rate.
    interval_us: u64,
    burst: u32,
    daily_quota: Option<u64>,
    /// `FAREWATCH_FLEET_SIZE`, when set.
    fleet_size: Option<u32>,
    probe_every: Duration,
    /// The local share's days.
    clock: DayClock,
    state: Mutex<State>,
    /// A background probe is under way.
    probing: AtomicBool,
    granted: AtomicU64,
    refused: AtomicU64,
    fallbacks: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// `Some` while Redis does not answer: the local share in force.
    local: Option<Local>,
    /// How many processes Redis saw lately, as of its last answer.
    live_nodes: u32,
    /// The fleet's quota left, as of Redis's last answer, and the day that
    /// was (this process's clock).
    remaining: Option<(Date, u64)>,
    /// The degraded gauge has been set once (it exists from the first answer).
    announced: bool,
    /// Turns Redis granted ahead and not yet taken, earliest first.
    reserved: VecDeque<Instant>,
    last_warning: Option<Instant>,
}

/// The local fallback: a GCRA at this process's share of the rate, and its
/// share of what was left of the day's quota.
#[derive(Debug)]
struct Local {
    /// The fleet size the limit is divided by.
    share: u32,
    interval: Option<Duration>,
    burst: u32,
    tat: Option<Instant>,
    /// The day and the requests this process may still send on it.
    quota: Option<(Date, u64)>,
    next_probe: Instant,
}

impl Local {
    fn decide(&mut self, now: Instant, clock: &DayClock, per_day: Option<u64>) -> Attempt {
        let today = clock.today();
        if let (Some((day, left)), Some(per_day)) = (&mut self.quota, per_day) {
            if *day != today {
                // A new day: a fresh share of a fresh quota.
                *day = today;
                *left = per_day / u64::from(self.share);
            }
            if *left == 0 {
                return Attempt::QuotaSpent {
                    retry_after: until_midnight(clock),
                };
            }
        }
        if let Some(interval) = self.interval {
            let tat = self.tat.map_or(now, |tat| tat.max(now));
            let next = tat + interval;
            let ahead = next - now;
            let allowance = interval * self.burst;
            if ahead > allowance {
                return Attempt::Wait {
                    retry_after: ahead - allowance,
                };
            }
            self.tat = Some(next);
        }
        let remaining = self.quota.as_mut().map(|(_, left)| {
            *left -= 1;
            *left
        });
        Attempt::Granted { remaining }
    }
}

/// Time to the next 00:00 UTC on `clock`.
fn until_midnight(clock: &DayClock) -> Duration {
    let now = clock.now();
    let midnight = clock
        .today()
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok());
    midnight
        .and_then(|m| Duration::try_from(m.timestamp().duration_since(now)).ok())
        .unwrap_or(Duration::from_secs(24 * 3600))
}

impl fmt::Debug for FleetLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("FleetLimiter")
            .field("provider", &inner.provider)
            .field("rate", &inner.rate)
            .field("burst", &inner.burst)
            .field("daily_quota", &inner.daily_quota)
            .field("fleet_size", &inner.fleet_size)
            .field("redis", &inner.redis)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

impl FleetLimiter {
    /// `provider`'s limit on `redis`: `rate_per_sec` requests per second
    /// across the fleet (`0` or less: no rate limit), `burst` at once (at
    /// least 1).
    pub fn new(redis: FleetRedis, provider: &str, rate_per_sec: f64, burst: u32) -> Self {
        let rate = (rate_per_sec > 0.0 && rate_per_sec.is_finite()).then_some(rate_per_sec);
        let interval_us = rate.map_or(0, |r| ((1_000_000.0 / r).round() as u64).max(1));
        Self {
            inner: Arc::new(Inner {
                redis,
                provider: Arc::from(provider),
                rate,
                interval_us,
                burst: burst.max(1),
                daily_quota: None,
                fleet_size: None,
                probe_every: DEFAULT_PROBE_EVERY,
                clock: DayClock::system(),
                state: Mutex::new(State::default()),
                probing: AtomicBool::new(false),
                granted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
            }),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("a FleetLimiter is configured before it is cloned or used");
        change(inner);
        self
    }

    /// Also caps the fleet at `per_day` requests per UTC day (Redis's day).
    pub fn with_daily_quota(self, per_day: u64) -> Self {
        self.configure(|inner| inner.daily_quota = Some(per_day))
    }

    /// The fleet size for the local share (`FAREWATCH_FLEET_SIZE`); the
    /// share uses the larger of this and the processes Redis saw lately.
    pub fn with_fleet_size(self, size: u32) -> Self {
        self.configure(|inner| inner.fleet_size = Some(size.max(1)))
    }

    /// How often a degraded limiter probes Redis ([`DEFAULT_PROBE_EVERY`]).
    pub fn with_probe_every(self, every: Duration) -> Self {
        self.configure(|inner| inner.probe_every = every)
    }

    /// The clock the local share counts days on (tests cross midnight with it).
    pub fn with_clock(self, clock: DayClock) -> Self {
        self.configure(|inner| inner.clock = clock)
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    /// Requests per second across the fleet (`None`: no rate limit).
    pub fn rate_per_sec(&self) -> Option<f64> {
        self.inner.rate
    }

    /// The fleet's daily quota, when there is one.
    pub fn daily_quota(&self) -> Option<u64> {
        self.inner.daily_quota
    }

    /// Whether Redis is not answering and the local share is in force.
    pub fn is_degraded(&self) -> bool {
        self.inner.lock().local.is_some()
    }

    /// The fleet size the local share divides by, while degraded.
    pub fn share(&self) -> Option<u32> {
        self.inner.lock().local.as_ref().map(|local| local.share)
    }

    /// How many processes Redis saw calling lately, as of its last answer.
    pub fn live_nodes(&self) -> u32 {
        self.inner.lock().live_nodes
    }

    /// Turns granted so far (shared or local).
    pub fn granted(&self) -> u64 {
        self.inner.granted.load(Ordering::Relaxed)
    }

    /// Tries refused so far (rate or quota).
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Times this limiter lost Redis and fell back to its local share.
    pub fn fallbacks(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    /// How long [`acquire`](Self::acquire) should wait at most for one
    /// turn: [`DEFAULT_MAX_WAIT`], or four emission intervals when the rate
    /// is slower than that allows.
    pub fn max_wait(&self) -> Duration {
        let interval = Duration::from_micros(self.inner.interval_us);
        DEFAULT_MAX_WAIT.max(interval * 4)
    }

    /// Waits for one turn until `deadline`; see [`acquire_ahead`](Self::acquire_ahead).
    pub async fn acquire(&self, deadline: Instant) -> Result<(), Refused> {
        self.acquire_ahead(1, deadline).await
    }

    /// Waits for a turn until `deadline`, reserving up to `wanted` turns
    /// (the lookups queued behind this one, say) in the same round trip to
    /// Redis: the next calls take those without asking again. Redis tells
    /// when each reserved turn is due and this process sleeps until then
    /// (tokio's clock), so waiting processes never poll. A turn that cannot
    /// come before `deadline` is refused at once, without sleeping.
    ///
    /// While Redis does not answer, the local share decides: a try, and
    /// when refused a sleep of the retry-after plus jitter, until `deadline`.
    pub async fn acquire_ahead(&self, wanted: u32, deadline: Instant) -> Result<(), Refused> {
        let inner = &self.inner;
        let reserved = inner.lock().reserved.pop_front();
        if let Some(at) = reserved {
            return self.take_turn(at, deadline).await;
        }
        if !self.is_degraded() {
            let now = Instant::now();
            let reach = deadline.saturating_duration_since(now);
            // Without a rate or a quota a turn costs nothing: take a full
            // reservation, so Redis is asked once per [`MAX_RESERVED`]
            // lookups (it only counts the processes then).
            let wanted = if inner.rate.is_none() && inner.daily_quota.is_none() {
                MAX_RESERVED
            } else {
                wanted.clamp(1, inner.reserve_cap())
            };
            match inner.call(wanted, reach).await {
                Ok(Verdict::Granted { turns, first, .. }) => {
                    let at = inner.schedule(Instant::now(), turns, first);
                    return self.take_turn(at, deadline).await;
                }
                Ok(Verdict::Refused(attempt)) => {
                    self.count(false);
                    return Err(self.refusal(attempt));
                }
                Err(error) => inner.fall_back(&mut inner.lock(), &error),
            }
        }
        // The local share: try, sleep, try again.
        let mut jitter = Jitter::from_entropy();
        let spread = Duration::from_micros(inner.interval_us) / JITTER_DIVISOR;
        loop {
            match self.try_acquire().await {
                Attempt::Granted { .. } => return Ok(()),
                Attempt::Wait { retry_after } => {
                    let now = Instant::now();
                    if now + retry_after > deadline {
                        return Err(Refused::Rate { retry_after });
                    }
                    let at = now + retry_after + jitter.duration_up_to(spread);
                    tokio::time::sleep_until(at.min(deadline)).await;
                }
                refused @ Attempt::QuotaSpent { .. } => return Err(self.refusal(refused)),
            }
        }
    }

    /// Sleeps until a granted turn due `at`, or gives it back (for the
    /// next caller) when it comes after `deadline`.
    async fn take_turn(&self, at: Instant, deadline: Instant) -> Result<(), Refused> {
        let inner = &self.inner;
        if at > deadline {
            inner.lock().reserved.push_front(at);
            self.count(false);
            return Err(Refused::Rate {
                retry_after: at.saturating_duration_since(Instant::now()),
            });
        }
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        self.count(true);
        Ok(())
    }

    /// Counts a turn granted or refused, here and in `/metrics`.
    fn count(&self, granted: bool) {
        let (counter, outcome) = if granted {
            (&self.inner.granted, "granted")
        } else {
            (&self.inner.refused, "refused")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(
            telemetry::FLEET_TURNS,
            "provider" => self.inner.provider.to_string(),
            "outcome" => outcome
        )
        .increment(1);
    }

    fn refusal(&self, attempt: Attempt) -> Refused {
        match attempt {
            Attempt::QuotaSpent { retry_after } => Refused::Quota {
                per_day: self.inner.daily_quota.unwrap_or(0),
                retry_after,
            },
            Attempt::Wait { retry_after } => Refused::Rate { retry_after },
            Attempt::Granted { .. } => Refused::Rate {
                retry_after: Duration::ZERO,
            },
        }
    }

    /// One try: Redis's verdict, or the local share's while Redis does not
    /// answer. Never sleeps; a Redis that fails now switches to the local share.
    pub async fn try_acquire(&self) -> Attempt {
        let inner = &self.inner;
        let attempt = match inner.local_attempt(self) {
            Some(attempt) => attempt,
            None => match inner.call(1, Duration::ZERO).await {
                Ok(Verdict::Granted { remaining, .. }) => Attempt::Granted { remaining },
                Ok(Verdict::Refused(attempt)) => attempt,
                Err(error) => {
                    let mut state = inner.lock();
                    inner.fall_back(&mut state, &error);
                    let local = state.local.as_mut().expect("just fell back");
                    local.decide(Instant::now(), &inner.clock, inner.daily_quota)
                }
            },
        };
        self.count(matches!(attempt, Attempt::Granted { .. }));
        attempt
    }

    /// Asks Redis now whether it answers; when it does, the limiter goes back
    /// to the shared limit. A degraded limiter does this by itself every
    /// [`DEFAULT_PROBE_EVERY`].
    pub async fn probe(&self) -> bool {
        self.inner.probe().await
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section can panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The local share's verdict while degraded (and a probe started when
    /// one is due); `None` when Redis is to be asked.
    fn local_attempt(&self, limiter: &FleetLimiter) -> Option<Attempt> {
        let mut state = self.lock();
        let local = state.local.as_mut()?;
        let now = Instant::now();
        if now >= local.next_probe && !self.probing.swap(true, Ordering::AcqRel) {
            local.next_probe = now + self.probe_every;
            let inner = limiter.inner.clone();
            tokio::spawn(async move {
                inner.probe().await;
                inner.probing.store(false, Ordering::Release);
            });
        }
        Some(local.decide(now, &self.clock, self.daily_quota))
    }

    /// Turns one round trip may reserve: [`RESERVE_WINDOW`] of the rate,
    /// at least one, at most [`MAX_RESERVED`].
    fn reserve_cap(&self) -> u32 {
        match self.rate {
            Some(rate) => ((rate * RESERVE_WINDOW.as_secs_f64()) as u32).clamp(1, MAX_RESERVED),
            None => MAX_RESERVED,
        }
    }

    /// The due times of `turns` turns granted from `now`, the first at
    /// `first` (µs, zero or less: now) and one emission interval apart:
    /// returns the first, keeps the others in [`State::reserved`].
    fn schedule(&self, now: Instant, turns: u32, first: i64) -> Instant {
        let due = |i: u32| {
            let offset = first.saturating_add(i64::from(i).saturating_mul(self.interval_us as i64));
            now + Duration::from_micros(u64::try_from(offset).unwrap_or(0))
        };
        let mut state = self.lock();
        state.reserved.extend((1..turns).map(due));
        due(0)
    }

    /// Runs the script once: up to `wanted` turns due within `reach`.
    async fn call(&self, wanted: u32, reach: Duration) -> Result<Verdict, String> {
        let conn = self.redis.conn.as_ref().map_err(|p| p.to_string())?;
        let mut conn = conn.clone();
        // The quota key is Redis's day: the script picks it among the
        // caller's yesterday, today and tomorrow.
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let day = |d: Result<Date, jiff::Error>| {
            format!("fw:quota:{{{}}}:{}", self.provider, d.unwrap_or(today))
        };
        let mut invocation = SCRIPT.prepare_invoke();
        invocation
            .key(format!("fw:rl:{{{}}}", self.provider))
            .key(day(today.yesterday()))
            .key(day(Ok(today)))
            .key(day(today.tomorrow()))
            .key(format!("fw:nodes:{{{}}}", self.provider))
            .arg(self.interval_us)
            .arg(self.burst)
            .arg(self.daily_quota.unwrap_or(0))
            .arg(&*self.redis.node)
            .arg(u64::try_from(NODE_HORIZON.as_micros()).unwrap_or(u64::MAX))
            .arg(wanted.max(1))
            .arg(u64::try_from(reach.as_micros()).unwrap_or(u64::MAX / 2));
        let reply: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let &[granted, offset_us, remaining, live] = reply.as_slice() else {
            return Err(format!(
                "unexpected reply from the limits script: {reply:?}"
            ));
        };
        let remaining = u64::try_from(remaining).ok();
        metrics::gauge!(telemetry::FLEET_LIMITER_NODES, "provider" => self.provider.to_string())
            .set(live as f64);
        let mut state = self.lock();
        state.live_nodes = u32::try_from(live).unwrap_or(u32::MAX);
        if let Some(left) = remaining {
            state.remaining = Some((self.clock.today(), left));
        }
        if !state.announced {
            state.announced = true;
            metrics::gauge!(telemetry::FLEET_DEGRADED, "provider" => self.provider.to_string())
                .set(0.0);
        }
        drop(state);
        if granted > 0 {
            return Ok(Verdict::Granted {
                turns: u32::try_from(granted).unwrap_or(1),
                first: offset_us,
                remaining,
            });
        }
        let retry_after = Duration::from_micros(u64::try_from(offset_us).unwrap_or(0));
        Ok(Verdict::Refused(
            if self.daily_quota.is_some() && remaining == Some(0) {
                Attempt::QuotaSpent { retry_after }
            } else {
                Attempt::Wait { retry_after }
            },
        ))
    }

    /// Switches to the local share (once; later failures keep it).
    fn fall_back(&self, state: &mut State, error: &str) {
        if state.local.is_some() {
            return;
        }
        let share = self
            .fleet_size
            .unwrap_or(DEFAULT_FLEET_SIZE)
            .max(state.live_nodes)
            .max(1);
        let today = self.clock.today();
        let quota = self.daily_quota.map(|per_day| {
            let left = match state.remaining {
                Some((day, left)) if day == today => left,
                _ => per_day,
            };
            (today, left / u64::from(share))
        });
        let local_rate = self.rate.map(|r| r / f64::from(share));
        state.local = Some(Local {
            share,
            interval: self
                .rate
                .map(|r| Duration::from_secs_f64(f64::from(share) / r)),
            burst: (self.burst / share).max(1),
            tat: None,
            quota,
            next_probe: Instant::now() + self.probe_every,
        });
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        let provider = self.provider.to_string();
        metrics::counter!(telemetry::FLEET_FALLBACKS, "provider" => provider.clone()).increment(1);
        metrics::gauge!(telemetry::FLEET_DEGRADED, "provider" => provider).set(1.0);
        state.announced = true;
        let now = Instant::now();
        if state
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL)
        {
            state.last_warning = Some(now);
            tracing::warn!(
                provider = %self.provider,
                url = %self.redis.url,
                %error,
                fleet_size = share,
                rate_per_sec = ?local_rate,
                daily_share = ?quota.map(|(_, left)| left),
                "Redis does not answer: the fleet-wide limit falls back to this process's \
                 share (rate / fleet size) until it does"
            );
        } else {
            tracing::debug!(provider = %self.provider, %error, "Redis does not answer again: local share");
        }
    }

    /// PING; when Redis answers, back to the shared limit.
    async fn probe(&self) -> bool {
        let Ok(conn) = &self.redis.conn else {
            return false;
        };
        // The first try may only find the connection that failed before,
        // and start a new one: the second then uses it.
        for _ in 0..2 {
            let mut conn = conn.clone();
            match redis::cmd("PING").query_async::<()>(&mut conn).await {
                Ok(()) => {
                    self.rejoin();
                    return true;
                }
                Err(error) => {
                    tracing::debug!(provider = %self.provider, %error, "Redis still does not answer");
                }
            }
        }
        false
    }

    fn rejoin(&self) {
        let mut state = self.lock();
        if state.local.take().is_some() {
            metrics::gauge!(telemetry::FLEET_DEGRADED, "provider" => self.provider.to_string())
                .set(0.0);
            tracing::info!(
                provider = %self.provider,
                url = %self.redis.url,
                "Redis answers again: back to the fleet-wide limit"
            );
        }
    }
}

/// One provider's shared limit as Redis holds it now (`farewatch fleet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitState {
    /// The provider.
    pub provider: String,
    /// How far ahead of now the rate's turns are given out (0: idle).
    pub backlog: Duration,
    /// Requests spent on today's quota (Redis's UTC day).
    pub spent_today: u64,
    /// Processes that called in the last [`NODE_HORIZON`].
    pub live_nodes: u64,
}

/// Every provider's shared limit in the Redis at `url`, found by its
/// `fw:nodes:{provider}` key (a provider no process called in the last
/// [`NODE_HORIZON`] has none). Errors are messages without the password.
pub async fn limit_states(url: &str) -> Result<Vec<LimitState>, String> {
    let scrubbed = |e: redis::RedisError| scrub(&e.to_string(), url);
    let client = redis::Client::open(url).map_err(scrubbed)?;
    let mut conn = tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| {
            format!(
                "{} did not answer within {REDIS_TIMEOUT:?}",
                redact_url(url)
            )
        })?
        .map_err(scrubbed)?;
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("fw:nodes:{*}")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(scrubbed)?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .map_err(scrubbed)?;
    let now_us = secs * 1_000_000 + micros;
    let today = jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for key in keys {
        let Some(provider) = key
            .strip_prefix("fw:nodes:{")
            .and_then(|rest| rest.strip_suffix('}'))
        else {
            continue;
        };
        let horizon = now_us.saturating_sub(u64::try_from(NODE_HORIZON.as_micros()).unwrap_or(0));
        let (tat, spent, live): (Option<u64>, Option<u64>, u64) = redis::pipe()
            .get(format!("fw:rl:{{{provider}}}"))
            .get(format!("fw:quota:{{{provider}}}:{today}"))
            .zcount(&key, horizon, "+inf")
            .query_async(&mut conn)
            .await
            .map_err(scrubbed)?;
        out.push(LimitState {
            provider: provider.to_owned(),
            backlog: Duration::from_micros(tat.unwrap_or(0).saturating_sub(now_us)),
            spent_today: spent.unwrap_or(0),
            live_nodes: live,
        });
    }
    out.sort_by(|a, b| a.provider.cmp(&b.provider));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(
        share: u32,
        interval_ms: u64,
        burst: u32,
        quota: Option<u64>,
        clock: &DayClock,
    ) -> Local {
        Local {
            share,
            interval: Some(Duration::from_millis(interval_ms)),
            burst,
            tat: None,
            quota: quota.map(|q| (clock.today(), q)),
            next_probe: Instant::now() + Duration::from_secs(3600),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_local_share_allows_its_burst_then_paces() {
        let clock = DayClock::starting_at("2026-12-04T12:00:00Z".parse().unwrap());
        let mut gcra = local(2, 200, 2, None, &clock);
        let now = Instant::now();
        assert!(matches!(
            gcra.decide(now, &clock, None),
            Attempt::Granted { remaining: None }
        ));
        assert!(matches!(
            gcra.decide(now, &clock, None),
            Attempt::Granted { .. }
        ));
        assert_eq!(
            gcra.decide(now, &clock, None),
            Attempt::Wait {
                retry_after: Duration::from_millis(200)
            }
        );
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(matches!(
            gcra.decide(Instant::now(), &clock, None),
            Attempt::Granted { .. }
        ));
        assert!(matches!(
            gcra.decide(Instant::now(), &clock, None),
            Attempt::Wait { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_local_quota_share_renews_at_utc_midnight() {
        let clock = DayClock::starting_at("2026-12-04T23:59:00Z".parse().unwrap());
        let mut gcra = local(2, 1, 10, Some(2), &clock);
        let per_day = Some(10);
        let now = Instant::now();
        assert_eq!(
            gcra.decide(now, &clock, per_day),
            Attempt::Granted { remaining: Some(1) }
        );
        assert_eq!(
            gcra.decide(now, &clock, per_day),
            Attempt::Granted { remaining: Some(0) }
        );
        assert_eq!(
            gcra.decide(now, &clock, per_day),
            Attempt::QuotaSpent {
                retry_after: Duration::from_secs(60)
            }
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        // A new day: half of the fleet's 10.
        assert_eq!(
            gcra.decide(Instant::now(), &clock, per_day),
            Attempt::Granted { remaining: Some(4) }
        );
    }

    #[test]
    fn every_key_shares_the_providers_hash_tag() {
        let script = include_str!("limits.lua");
        for key in [
            "fw:rl:{provider}",
            "fw:quota:{provider}:YYYY-MM-DD",
            "fw:nodes:{provider}",
        ] {
            assert!(
                script.contains(key),
                "{key} is not documented in limits.lua"
            );
        }
        // No key is built inside the script: every key arrives in KEYS.
        assert!(!script.contains("'fw:"), "a key name built in the script");
    }
}
