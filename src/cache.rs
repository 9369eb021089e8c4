//! The quote cache: Redis when `REDIS_URL` is set, otherwise in-process.
//!
//! A cache only saves provider calls; it never decides anything. So every
//! failure at run time is a miss (on read) or a skipped write, logged as a
//! warning at most once a minute. Only setting Redis up can fail
//! ([`QuoteCache::redis`]); the caller then falls back to [`QuoteCache::memory`].
//!
//! # Key layout
//! One key per provider and [`LookupKey`]:
//!
//! ```text
//! {prefix}:quote:v1:{provider}:{ORIGIN}:{DEST}:{YYYY-MM-DD}:{return YYYY-MM-DD or "ow"}:{adults}:{CUR}[:s{max stops}]
//! farewatch:quote:v1:amadeus:LHR:JFK:2027-03-01:2027-03-08:1:EUR
//! farewatch:quote:v1:amadeus:LHR:JFK:2027-03-01:ow:2:EUR
//! farewatch:quote:v1:amadeus:LHR:JFK:2027-03-01:ow:2:EUR:s0
//! ```
//!
//! - the `:s{n}` suffix is there only when the lookup limits the stops
//!   ([`LookupKey::max_stops`]), so a search without a limit keeps its key;
//! - `prefix` is `farewatch` unless changed with [`QuoteCache::with_prefix`]
//!   (several deployments sharing one Redis, or tests);
//! - `v1` is the value format; a change to [`CachedAnswer`]'s JSON bumps it,
//!   so an old and a new farewatch never read each other's values;
//! - the value is the JSON of the [`CachedAnswer`]: a [`Quote`] object, or
//!   `null` when the provider had no offers (that answer is cached too);
//! - every key is written with `SET … EX ttl`, so Redis expires it by itself.
//!
//! A lookup of many keys is one `MGET`. A value that does not decode (written
//! by something else) is a miss.
//!
//! The in-process backend uses the same keys in a `HashMap`, with expiry on
//! tokio's clock; expired entries read as misses and are pruned as the map grows.
//!
//! A TTL of zero turns the cache off ([`QuoteCache::off`]): every lookup is
//! a miss and nothing is written, to Redis or memory.
//!
//! # Single flight across processes
//! Within one process the engine asks each lookup once per cycle. Across
//! processes sharing one Redis (several daemons, workers), a missed lookup
//! is flown once: [`QuoteCache::flight`] claims it with
//! `SET {key}:flight TOKEN NX PX 30000` ([`FLIGHT_TTL`]); the process that
//! gets the claim looks in the cache once more (a flight may have landed
//! since it missed), then asks the providers, caches the answer and lands
//! the flight ([`Flight::land`], `DEL`); the others wait for the cached answer
//! (polling every [`FOLLOW_POLL`]), take the claim themselves if it goes
//! without an answer (the leader's lookup failed) or its holder (the
//! claim's value, this process's [`crate::store::RunId`]) is a process of this machine that is
//! gone, and ask on their own after [`FLIGHT_TTL`] (a leader elsewhere that
//! hangs or died: the claim has lapsed by then). Without Redis every flight
//! is led at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use crate::domain::{LookupKey, Quote};
use crate::redact::scrub;
// The one redaction helper, also known here to the flight snapshots.
pub(crate) use crate::redact::redact_url;

/// Default time a quote stays cached (a TTL of zero turns the cache off).
pub const DEFAULT_QUOTE_TTL: Duration = Duration::from_secs(5 * 60);

/// The key prefix unless [`QuoteCache::with_prefix`] sets another.
pub const DEFAULT_PREFIX: &str = "farewatch";

/// How long [`QuoteCache::redis`] waits for Redis before giving up. Short:
/// a cache that is not there must not delay a run; the caller falls back
/// to memory.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one command waits for an answer once connected. A slow cache
/// is worse than none: after this the lookup is a miss.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reconnect attempts the connection manager makes inside one command after
/// losing Redis. None: each retry waits a growing random delay (0.7-1.4 s
/// for three), and every lookup of a cycle would pay it while Redis is
/// down. A failed command is a miss at once, and the next command
/// reconnects by itself.
const REDIS_RECONNECT_RETRIES: usize = 0;

/// Run-time Redis failures are logged at most this often, so a Redis outage
/// gives one line a minute, not one per lookup.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// How long a lookup's claim to be asked ([`QuoteCache::flight`]) lasts in
/// Redis: longer than a provider's timeouts and retries take, so a live
/// leader keeps it; a dead one's lapses.
pub const FLIGHT_TTL: Duration = Duration::from_secs(30);

/// How often a process waiting on another's flight looks for its answer.
pub const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// The in-process map is swept for expired entries when it reaches this
/// size (and then when it doubles), so memory stays bounded by the live set.
const MIN_PRUNE_AT: usize = 1024;

/// A cached provider answer: `None` means the provider had no offers.
pub type CachedAnswer = Option<Quote>;

/// Could not set the cache up. URLs in messages have any password redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// `REDIS_URL` does not parse.
    #[error(
        "REDIS_URL `{url}` is not a usable Redis URL: {detail}; \
         expected redis://[:PASSWORD@]HOST[:PORT][/DB]"
    )]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// Redis did not answer, or refused us.
    #[error(
        "cannot connect to Redis at {url}: {detail}; check that Redis is running \
         and REDIS_URL is right, or unset REDIS_URL to use the in-process cache"
    )]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

/// The quote cache. Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct QuoteCache {
    /// First segment of every key.
    prefix: Arc<str>,
    /// How long an answer stays.
    ttl: Duration,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// No cache: a zero TTL.
    Off,
    Memory(Arc<Mutex<MemoryMap>>),
    Redis(Arc<RedisBackend>),
}

struct MemoryMap {
    /// Key -> (answer, expiry instant on tokio's clock).
    entries: HashMap<String, (CachedAnswer, Instant)>,
    /// Sweep expired entries when `entries` reaches this size.
    prune_at: usize,
}

struct RedisBackend {
    /// Reconnects by itself after Redis restarts.
    conn: ConnectionManager,
    /// The URL with any password redacted, for logs and `Debug`.
    url: String,
    warn: WarnLimiter,
}

impl fmt::Debug for QuoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("QuoteCache");
        s.field("kind", &self.kind());
        if let Backend::Redis(redis) = &self.backend {
            s.field("url", &redis.url);
        }
        s.field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl QuoteCache {
    /// No cache: every lookup misses and nothing is stored.
    pub fn off() -> Self {
        Self {
            prefix: Arc::from(DEFAULT_PREFIX),
            ttl: Duration::ZERO,
            backend: Backend::Off,
        }
    }

    /// An in-process cache; [`QuoteCache::off`] when `ttl` is zero.
    pub fn memory(ttl: Duration) -> Self {
        if ttl.is_zero() {
            return Self::off();
        }
        Self {
            prefix: Arc::from(DEFAULT_PREFIX),
            ttl,
            backend: Backend::Memory(Arc::new(Mutex::new(MemoryMap {
                entries: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }))),
        }
    }

    /// A Redis cache at `url`.
    ///
    /// Connects (and sends a `PING`) within [`REDIS_CONNECT_TIMEOUT`], so an
    /// unreachable Redis fails fast. With a zero `ttl` it is
    /// [`QuoteCache::off`] and Redis is not contacted at all.
    pub async fn redis(url: &str, ttl: Duration) -> Result<Self, CacheError> {
        if ttl.is_zero() {
            return Ok(Self::off());
        }
        let conn = connect_redis(url).await?;
        let shown = redact_url(url);
        Ok(Self {
            prefix: Arc::from(DEFAULT_PREFIX),
            ttl,
            backend: Backend::Redis(Arc::new(RedisBackend {
                conn,
                url: shown,
                warn: WarnLimiter::new(),
            })),
        })
    }

    /// The same cache with every key under `prefix` instead of [`DEFAULT_PREFIX`].
    pub fn with_prefix(self, prefix: impl Into<String>) -> Self {
        Self {
            prefix: Arc::from(prefix.into()),
            ..self
        }
    }

    /// The cache key for `provider` and `key`; see the module docs.
    pub fn key_for(&self, provider: &str, key: &LookupKey) -> String {
        use std::fmt::Write as _;
        let mut name = String::with_capacity(self.prefix.len() + provider.len() + 48);
        let _ = write!(
            name,
            "{}:quote:v1:{}:{}:{}:{}:",
            self.prefix, provider, key.origin, key.destination, key.depart
        );
        match key.return_date {
            Some(date) => {
                let _ = write!(name, "{date}");
            }
            None => name.push_str("ow"),
        }
        let _ = write!(name, ":{}:{}", key.adults, key.currency);
        // Like `LookupKey::history_key`: nothing without a stop limit, so
        // keys written before limits existed are still read.
        if let Some(stops) = key.max_stops {
            let _ = write!(name, ":s{stops}");
        }
        name
    }

    /// How long an answer stays cached.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// `"redis"`, `"memory"` or `"off"`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Off => "off",
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Looks up many keys at once; a miss (or a cache failure) is `None`.
    pub async fn get_many(&self, provider: &str, keys: &[LookupKey]) -> Vec<Option<CachedAnswer>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let names = || -> Vec<String> { keys.iter().map(|k| self.key_for(provider, k)).collect() };
        match &self.backend {
            Backend::Off => vec![None; keys.len()],
            Backend::Memory(map) => {
                let names = names();
                let now = Instant::now();
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                names
                    .iter()
                    .map(|name| match map.entries.get(name) {
                        Some((answer, expires)) if *expires > now => Some(answer.clone()),
                        Some(_) => {
                            map.entries.remove(name);
                            None
                        }
                        None => None,
                    })
                    .collect()
            }
            Backend::Redis(redis) => redis.get_many(&names()).await,
        }
    }

    /// Caches a provider's answer. Never call this with an error.
    pub async fn put(&self, provider: &str, key: &LookupKey, answer: &CachedAnswer) {
        match &self.backend {
            Backend::Off => {}
            Backend::Memory(map) => {
                let name = self.key_for(provider, key);
                let now = Instant::now();
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                if map.entries.len() >= map.prune_at {
                    map.entries.retain(|_, (_, expires)| *expires > now);
                    map.prune_at = MIN_PRUNE_AT.max(map.entries.len() * 2);
                }
                map.entries.insert(name, (answer.clone(), now + self.ttl));
            }
            Backend::Redis(redis) => {
                redis
                    .put(&self.key_for(provider, key), answer, self.ttl)
                    .await;
            }
        }
    }
}

/// Who asks the providers for a missed lookup ([`QuoteCache::flight`]).
#[derive(Debug)]
pub enum Flight {
    /// This process: ask, cache the answer, then [`Flight::land`].
    Lead(Option<FlightClaim>),
    /// Another process asked; its answer, from the cache (boxed: a quote
    /// is large beside a claim).
    Landed(Box<CachedAnswer>),
}

/// A claim on a lookup in Redis, released by [`Flight::land`] (or lapsing
/// after [`FLIGHT_TTL`]).
pub struct FlightClaim {
    name: String,
    redis: Arc<RedisBackend>,
}

impl fmt::Debug for FlightClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightClaim")
            .field("name", &self.name)
            .finish()
    }
}

impl Flight {
    /// Ends a led flight: the claim is released so waiting processes read
    /// the cached answer (or, if the lookup failed, one of them takes over
    /// at once). Call after [`QuoteCache::put`].
    pub async fn land(self) {
        if let Self::Lead(Some(claim)) = self {
            let mut conn = claim.redis.conn.clone();
            let done: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(&claim.name)
                .query_async(&mut conn)
                .await;
            if let Err(error) = done {
                claim.redis.warn_failure("release", &error);
            }
        }
    }
}

impl QuoteCache {
    /// Decides who asks the providers for a lookup the cache missed (see
    /// the module docs): this process ([`Flight::Lead`]), or another one
    /// that shares this Redis and answers within [`FLIGHT_TTL`]
    /// ([`Flight::Landed`]). Without Redis, or when Redis fails, this
    /// process leads.
    pub async fn flight(&self, provider: &str, key: &LookupKey) -> Flight {
        let Backend::Redis(redis) = &self.backend else {
            return Flight::Lead(None);
        };
        let name = self.key_for(provider, key);
        let claim = format!("{name}:flight");
        let waited = Instant::now();
        loop {
            let mut conn = redis.conn.clone();
            let claimed: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&claim)
                .arg(crate::store::process_run().as_str())
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(FLIGHT_TTL.as_millis()).unwrap_or(u64::MAX))
                .query_async(&mut conn)
                .await;
            match claimed {
                Ok(Some(_)) => {
                    let led = Flight::Lead(Some(FlightClaim {
                        name: claim,
                        redis: redis.clone(),
                    }));
                    // Another process may have landed this lookup since this
                    // one missed the cache (its answer stored, its claim
                    // gone): then take that answer, not a second request.
                    if let Some(Some(answer)) =
                        redis.get_many(std::slice::from_ref(&name)).await.pop()
                    {
                        led.land().await;
                        return Flight::Landed(Box::new(answer));
                    }
                    return led;
                }
                Ok(None) => {}
                Err(error) => {
                    redis.warn_failure("flight claim", &error);
                    return Flight::Lead(None);
                }
            }
            // Another process is asking: wait for its answer, or for its
            // claim to go (then loop and claim).
            loop {
                if waited.elapsed() >= FLIGHT_TTL {
                    return Flight::Lead(None);
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                if let Some(Some(answer)) = redis.get_many(std::slice::from_ref(&name)).await.pop()
                {
                    return Flight::Landed(Box::new(answer));
                }
                let mut conn = redis.conn.clone();
                let holder: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(&claim).query_async(&mut conn).await;
                match holder {
                    Ok(Some(holder)) => {
                        // A leader on this machine whose process is gone
                        // will never land: its claim is dropped, not waited out.
                        if !crate::store::known_dead(&[holder]).is_empty() {
                            let _: redis::RedisResult<()> =
                                redis::cmd("DEL").arg(&claim).query_async(&mut conn).await;
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
    }
}

impl RedisBackend {
    async fn get_many(&self, names: &[String]) -> Vec<Option<CachedAnswer>> {
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> =
            match redis::cmd("MGET").arg(names).query_async(&mut conn).await {
                Ok(values) => values,
                Err(error) => {
                    self.warn_failure("read", &error);
                    return vec![None; names.len()];
                }
            };
        if values.len() != names.len() {
            self.warn_failure(
                "read",
                &format!(
                    "MGET returned {} values for {} keys",
                    values.len(),
                    names.len()
                ),
            );
            return vec![None; names.len()];
        }
        names
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let bytes = value?;
                match serde_json::from_slice::<CachedAnswer>(&bytes) {
                    Ok(answer) => Some(answer),
                    Err(error) => {
                        tracing::debug!(key = %name, %error, "undecodable cached quote; treating it as a miss");
                        None
                    }
                }
            })
            .collect()
    }

    async fn put(&self, name: &str, answer: &CachedAnswer, ttl: Duration) {
        let value = match serde_json::to_string(answer) {
            Ok(value) => value,
            Err(error) => {
                tracing::debug!(key = %name, %error, "cannot encode quote for the cache; not cached");
                return;
            }
        };
        // Redis counts whole seconds; round up so a short TTL is never 0 (an error).
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<()> = redis::cmd("SET")
            .arg(name)
            .arg(value)
            .arg("EX")
            .arg(secs.max(1))
            .query_async(&mut conn)
            .await;
        if let Err(error) = result {
            self.warn_failure("write", &error);
        }
    }

    fn warn_failure(&self, what: &str, error: &dyn fmt::Display) {
        if let Some(suppressed) = self.warn.allow() {
            tracing::warn!(
                url = %self.url,
                %error,
                suppressed,
                "Redis quote cache {what} failed; carrying on without the cache \
                 (further failures are logged at most once a minute)"
            );
        }
    }
}

/// Lets one warning through per [`WARN_INTERVAL`] and counts the rest.
struct WarnLimiter {
    start: std::time::Instant,
    /// Milliseconds since `start` of the last warning, plus one; 0 = never.
    last: AtomicU64,
    /// Failures not logged since the last warning.
    suppressed: AtomicU64,
}

impl WarnLimiter {
    fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed since the last warning)` when a warning may be logged now.
    fn allow(&self) -> Option<u64> {
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.allow_at(now_ms)
    }

    fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let stamp = now_ms.saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || stamp.saturating_sub(last) >= interval;
        // Only one of several racing callers wins the slot.
        if due
            && self
                .last
                .compare_exchange(last, stamp, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Connects to Redis at `url` (and sends a `PING`) within
/// [`REDIS_CONNECT_TIMEOUT`], so an unreachable Redis fails fast. The
/// connection manager reconnects by itself later. Shared by the quote cache
/// and the flight snapshots.
pub async fn connect_redis(url: &str) -> Result<ConnectionManager, CacheError> {
    let shown = redact_url(url);
    let client = redis::Client::open(url).map_err(|e| CacheError::InvalidUrl {
        url: shown.clone(),
        detail: scrub(&e.to_string(), url),
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
        .set_number_of_retries(REDIS_RECONNECT_RETRIES)
        .set_max_delay(Duration::from_secs(1));
    let connect = async {
        let mut conn = ConnectionManager::new_with_config(client, config).await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(CacheError::Connect {
            url: shown,
            detail: scrub(&e.to_string(), url),
        }),
        Err(_) => Err(CacheError::Connect {
            url: shown,
            detail: format!("no answer within {} s", REDIS_CONNECT_TIMEOUT.as_secs_f32()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited() {
        let limiter = WarnLimiter::new();
        assert_eq!(limiter.allow_at(0), Some(0));
        assert_eq!(limiter.allow_at(1), None);
        assert_eq!(limiter.allow_at(59_999), None);
        // A minute after the first: allowed, and reports the two it held back.
        assert_eq!(limiter.allow_at(60_000), Some(2));
        assert_eq!(limiter.allow_at(60_001), None);
        assert_eq!(limiter.allow_at(120_000), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_prunes_expired_entries_as_it_grows() {
        let cache = QuoteCache::memory(Duration::from_secs(10));
        let base = LookupKey {
            origin: crate::domain::Iata::parse("LHR").unwrap(),
            destination: crate::domain::Iata::parse("JFK").unwrap(),
            depart: jiff::civil::date(2027, 1, 1),
            return_date: None,
            adults: 1,
            currency: crate::domain::Currency::EUR,
            max_stops: None,
        };
        let day = |i: i32| LookupKey {
            depart: base
                .depart
                .checked_add(jiff::Span::new().days(i64::from(i)))
                .unwrap(),
            ..base
        };
        for i in 0..1000 {
            cache.put("demo", &day(i), &None).await;
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for i in 1000..1100 {
            cache.put("demo", &day(i), &None).await;
        }
        let Backend::Memory(map) = &cache.backend else {
            unreachable!()
        };
        let len = map.lock().unwrap().entries.len();
        assert!(len <= 100, "expired entries were not pruned: {len} left");
    }
}
