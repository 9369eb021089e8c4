//! The airport collector (seed 002's data collector): OpenSky arrivals and
//! departures for every airport someone is interested in, stored once per
//! flight for `GET /flights/...`.
//!
//! # What one pass does
//! For every airport in [`Store::interest_airports`] (once per airport,
//! however many users are interested in it):
//! 1. the **window** ([`window`]): from where the last pass stopped (the
//!    airport's [`Coverage`], kept in the store's saved values) or, for an
//!    airport never collected, [`CollectorConfig::backfill_days`] back, up to
//!    **yesterday 00:00 UTC**: OpenSky's flights come from a nightly batch,
//!    so nothing later is asked for. A collector that was stopped longer
//!    than [`CollectorConfig::catch_up_days`] starts again that many days
//!    back rather than spending a month of credits at once.
//! 2. the window in **chunks of at most two days** ([`chunks`],
//!    [`MAX_WINDOW`]), oldest first; for each, arrivals and departures
//!    through the upstream layer's pool ([`OpenSkyPool`]: breaker, pacing,
//!    retries, the OAuth token refreshed once on a 401). A 404 with an empty
//!    body is OpenSky's "no flights": an empty chunk, not an error.
//! 3. each chunk's flights **upserted** ([`Store::upsert_airport_flights`]:
//!    one row per `icao24` and `first_seen`, so overlapping windows and the
//!    same flight seen from both of its airports never duplicate), then the
//!    coverage moved to the chunk's end. A failure stops that airport's
//!    pass; the next pass resumes from the last chunk stored.
//!
//! # Running it
//! [`spawn_collector`] (or [`run`]) runs a pass at start, then every
//! [`CollectorConfig::interval`] (default 1 hour,
//! `FAREWATCH_COLLECTOR_INTERVAL`), and at once for the airports a
//! [`Trigger`] names (`POST /interests` pulls it, through
//! [`crate::api::AppState::with_collector`]), until its shutdown future
//! fires. Without OpenSky credentials there is nothing to run:
//! [`opensky_pool`] answers `None`.
//!
//! ```no_run
//! # async fn wire(store: farewatch::store::Store, env: farewatch::config::Env,
//! #               api: farewatch::api::ApiConfig) -> anyhow::Result<()> {
//! use farewatch::collector::{self, CollectorConfig, Trigger};
//! let client = farewatch::upstream::http::build_client();
//! let trigger = Trigger::new();
//! let state = farewatch::api::AppState::new(store.clone(), &api).with_collector(trigger.clone());
//! if let Some(opensky) = collector::opensky_pool(&env, &client)? {
//!     let config = CollectorConfig::from_env(&env)?;
//!     let shutdown = async { tokio::signal::ctrl_c().await.ok(); };
//!     collector::spawn_collector(store, opensky, config, trigger, shutdown);
//! }
//! # Ok(()) }
//! ```
//!
//! Two processes on one database (a `serve` and a `daemon`) may both
//! collect: they spend credits twice, but the upserts keep one row per
//! flight. Run the collector in one of them.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

use crate::config::{registry, ConfigError, Env};
use crate::status::opensky::{self, OpenSky, OpenSkyConfig, OpenSkyPool, MAX_WINDOW};
use crate::store::{AirportFlight, Direction, Store, StoreError};
use crate::upstream::breaker::BreakerConfig;
use crate::upstream::Limits;

/// Default time between passes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Default days fetched for an airport never collected before.
pub const DEFAULT_BACKFILL_DAYS: u32 = 2;

/// Default longest gap a pass fills after a stop.
pub const DEFAULT_CATCH_UP_DAYS: u32 = 14;

/// Airports collected at once in a pass (the pool paces the requests).
const AIRPORTS_AT_ONCE: usize = 4;

/// How the collector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Days fetched for an airport never collected before.
    pub backfill_days: u32,
    /// Longest gap filled after a stop: older data is skipped.
    pub catch_up_days: u32,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            backfill_days: DEFAULT_BACKFILL_DAYS,
            catch_up_days: DEFAULT_CATCH_UP_DAYS,
        }
    }
}

impl CollectorConfig {
    /// `FAREWATCH_COLLECTOR_INTERVAL` (a duration, default 1h),
    /// `FAREWATCH_COLLECTOR_BACKFILL_DAYS` (1 to 30, default 2) and
    /// `FAREWATCH_COLLECTOR_CATCH_UP_DAYS` (1 to 90, default 14, at least
    /// the backfill).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let days = |name: &str, default: u32, max: u32| -> Result<u32, ConfigError> {
            let value: u32 = env
                .parse(name, "a whole number of days")?
                .unwrap_or(default);
            if !(1..=max).contains(&value) {
                return Err(ConfigError::invalid(
                    name,
                    format!("must be 1 to {max} days"),
                ));
            }
            Ok(value)
        };
        let backfill_days = days(
            "FAREWATCH_COLLECTOR_BACKFILL_DAYS",
            DEFAULT_BACKFILL_DAYS,
            30,
        )?;
        let catch_up_days = days(
            "FAREWATCH_COLLECTOR_CATCH_UP_DAYS",
            DEFAULT_CATCH_UP_DAYS,
            90,
        )?;
        Ok(Self {
            interval: env.duration("FAREWATCH_COLLECTOR_INTERVAL", DEFAULT_INTERVAL)?,
            backfill_days,
            catch_up_days: catch_up_days.max(backfill_days),
        })
    }
}

/// OpenSky behind its pool, from `OPENSKY_CLIENT_ID` and
/// `OPENSKY_CLIENT_SECRET` (and `OPENSKY_BASE_URL`, `OPENSKY_AUTH_URL`,
/// `OPENSKY_TIMEOUT`, `OPENSKY_MAX_CONCURRENCY`, `OPENSKY_RATE_LIMIT`,
/// `STATUS_BREAKER_THRESHOLD`, `STATUS_BREAKER_RESET`, as for the status
/// provider); `None` without credentials.
pub fn opensky_pool(
    env: &Env,
    client: &reqwest::Client,
) -> Result<Option<Arc<OpenSkyPool>>, ConfigError> {
    let (Some(id), true) = (
        env.get("OPENSKY_CLIENT_ID"),
        env.has("OPENSKY_CLIENT_SECRET"),
    ) else {
        return Ok(None);
    };
    let mut config = OpenSkyConfig::new(id, env.secret("OPENSKY_CLIENT_SECRET"));
    config.base_url = env.base_url("OPENSKY_BASE_URL", opensky::DEFAULT_BASE_URL);
    config.auth_url = env.base_url("OPENSKY_AUTH_URL", opensky::DEFAULT_AUTH_URL);
    config.timeout = env.duration("OPENSKY_TIMEOUT", config.timeout)?;
    let defaults = Limits {
        max_concurrency: 4,
        rate_per_sec: 2.0,
        timeout: config.timeout,
    };
    let limits = registry::limits(env, "OPENSKY", defaults)?;
    let breaker = BreakerConfig {
        failure_threshold: env
            .parse("STATUS_BREAKER_THRESHOLD", "a whole number of failures")?
            .unwrap_or(5),
        open_for: env.duration("STATUS_BREAKER_RESET", Duration::from_secs(10 * 60))?,
        ..BreakerConfig::default()
    };
    let opensky = Arc::new(OpenSky::new(client.clone(), config));
    Ok(Some(Arc::new(OpenSkyPool::for_opensky(
        opensky, limits, breaker,
    ))))
}

/// What has been collected for an airport: every flight of `[from, to)`,
/// both directions. Whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Where collection started.
    pub from: Timestamp,
    /// Where the last stored chunk ended.
    pub to: Timestamp,
}

fn coverage_key(airport: &str) -> String {
    format!("collector:opensky:{airport}")
}

/// The airport's coverage, as the last pass left it; `None` before the
/// first chunk was stored (or when the saved value is unreadable).
pub async fn coverage(store: &Store, airport: &str) -> Result<Option<Coverage>, StoreError> {
    let Some(saved) = store.kv_get(&coverage_key(airport)).await? else {
        return Ok(None);
    };
    let parse = |part: Option<&str>| {
        part.and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|s| Timestamp::from_second(s).ok())
    };
    let mut parts = saved.split_whitespace();
    Ok(match (parse(parts.next()), parse(parts.next())) {
        (Some(from), Some(to)) if from <= to => Some(Coverage { from, to }),
        _ => None,
    })
}

async fn save_coverage(store: &Store, airport: &str, c: Coverage) -> Result<(), StoreError> {
    let value = format!("{} {}", c.from.as_second(), c.to.as_second());
    store.kv_put(&coverage_key(airport), &value, None).await
}

/// Yesterday 00:00 UTC: the end of what OpenSky's nightly batch holds.
pub fn collectable_until(now: Timestamp) -> Timestamp {
    let today = now.to_zoned(TimeZone::UTC).date();
    today
        .yesterday()
        .ok()
        .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
        .map_or(now, |z| z.timestamp())
}

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(n))
}

/// The window the next pass fetches for an airport with `coverage`, and
/// the coverage's new start; `None` when it is up to date.
pub fn window(
    coverage: Option<Coverage>,
    now: Timestamp,
    config: &CollectorConfig,
) -> Option<(Timestamp, Timestamp, Timestamp)> {
    let end = collectable_until(now);
    let earliest = end.checked_sub(days(config.catch_up_days)).ok()?;
    let (begin, from) = match coverage {
        Some(c) if c.to >= earliest => (c.to, c.from),
        Some(c) => {
            tracing::info!(stopped_at = %c.to, restart_at = %earliest, "collector gap too long: older days skipped");
            (earliest, earliest)
        }
        None => {
            let begin = end.checked_sub(days(config.backfill_days)).ok()?;
            (begin, begin)
        }
    };
    (begin < end).then_some((begin, end, from))
}

/// `[begin, end)` in consecutive chunks of at most [`MAX_WINDOW`], oldest first.
pub fn chunks(begin: Timestamp, end: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let step = SignedDuration::try_from(MAX_WINDOW).unwrap_or(SignedDuration::from_hours(48));
    let mut out = Vec::new();
    let mut at = begin;
    while at < end {
        let next = at.checked_add(step).map_or(end, |n| n.min(end));
        out.push((at, next));
        at = next;
    }
    out
}

/// What a pass did for one airport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirportReport {
    /// The airport (ICAO).
    pub airport: String,
    /// The window it asked for, if it was not up to date.
    pub window: Option<(Timestamp, Timestamp)>,
    /// Chunks stored (both directions fetched and upserted).
    pub chunks: u32,
    /// Flights received (both directions, before deduplication).
    pub flights: u64,
    /// Why it stopped early.
    pub error: Option<String>,
}

/// The airport collector: the store, OpenSky and the settings.
#[derive(Debug, Clone)]
pub struct Collector {
    store: Store,
    opensky: Arc<OpenSkyPool>,
    config: CollectorConfig,
}

impl Collector {
    /// A collector writing to `store`.
    pub fn new(store: Store, opensky: Arc<OpenSkyPool>, config: CollectorConfig) -> Self {
        Self {
            store,
            opensky,
            config,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// One pass over every airport someone is interested in, as at `now`.
    pub async fn collect_all(&self, now: Timestamp) -> Result<Vec<AirportReport>, StoreError> {
        let airports = self.store.interest_airports().await?;
        Ok(self.collect(&airports, now).await)
    }

    /// One pass over `airports` (ICAO, each once), as at `now`.
    pub async fn collect(&self, airports: &[String], now: Timestamp) -> Vec<AirportReport> {
        let unique: BTreeSet<String> = airports.iter().cloned().collect();
        futures::stream::iter(unique)
            .map(|airport| async move { self.collect_airport(&airport, now).await })
            .buffer_unordered(AIRPORTS_AT_ONCE)
            .collect()
            .await
    }

    /// One airport's pass, as at `now` (see the module docs).
    pub async fn collect_airport(&self, airport: &str, now: Timestamp) -> AirportReport {
        let mut report = AirportReport {
            airport: airport.to_owned(),
            window: None,
            chunks: 0,
            flights: 0,
            error: None,
        };
        if let Err(error) = self.fill(airport, now, &mut report).await {
            tracing::warn!(airport, %error, "collector: stopped for this pass");
            report.error = Some(error);
        } else if report.window.is_some() {
            tracing::info!(
                airport,
                chunks = report.chunks,
                flights = report.flights,
                "collector: airport updated"
            );
        }
        report
    }

    async fn fill(
        &self,
        airport: &str,
        now: Timestamp,
        report: &mut AirportReport,
    ) -> Result<(), String> {
        let saved = coverage(&self.store, airport)
            .await
            .map_err(|e| e.to_string())?;
        let Some((begin, end, from)) = window(saved, now, &self.config) else {
            return Ok(());
        };
        report.window = Some((begin, end));
        for (chunk_begin, chunk_end) in chunks(begin, end) {
            let (arrivals, departures) = tokio::join!(
                self.fetch(airport, Direction::Arrivals, chunk_begin, chunk_end),
                self.fetch(airport, Direction::Departures, chunk_begin, chunk_end),
            );
            let mut flights = arrivals?;
            flights.extend(departures?);
            report.flights += flights.len() as u64;
            if !flights.is_empty() {
                self.store
                    .upsert_airport_flights(&flights)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let covered = Coverage {
                from,
                to: chunk_end,
            };
            save_coverage(&self.store, airport, covered)
                .await
                .map_err(|e| e.to_string())?;
            report.chunks += 1;
        }
        Ok(())
    }

    async fn fetch(
        &self,
        airport: &str,
        direction: Direction,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<AirportFlight>, String> {
        self.opensky
            .airport_flights(airport, direction, begin, end)
            .await
            .map_err(|e| {
                let what = match direction {
                    Direction::Arrivals => "arrivals",
                    Direction::Departures => "departures",
                };
                format!("OpenSky {what} {}..{}: {e}", begin, end)
            })
    }
}

/// Airports to collect now, named by `POST /interests`: clone it into the
/// API's state and give it to [`run`]. Requests for one airport made while
/// it waits are merged, and none is lost while a pass runs.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    inner: Arc<TriggerInner>,
}

#[derive(Debug, Default)]
struct TriggerInner {
    pending: Mutex<BTreeSet<String>>,
    notify: Notify,
}

impl Trigger {
    /// A trigger nobody listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for `airport` (ICAO) to be collected now.
    pub fn fetch_now(&self, airport: &str) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(airport.to_owned());
        self.inner.notify.notify_one();
    }

    /// The airports asked for since the last call.
    fn take(&self) -> Vec<String> {
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending).into_iter().collect()
    }
}

/// Runs `collector` until `shutdown` fires: a pass at once and every
/// interval, and a pass over the airports `trigger` names as they come. A
/// pass in progress is abandoned at shutdown (what it stored is kept; the
/// next start resumes from there).
pub async fn run(collector: Collector, trigger: Trigger, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut every = tokio::time::interval(collector.config.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let pass = async {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(error) = collector.collect_all(Timestamp::now()).await {
                        tracing::warn!(%error, "collector: cannot read the interests");
                    }
                }
                () = trigger.inner.notify.notified() => {
                    let airports = trigger.take();
                    if !airports.is_empty() {
                        collector.collect(&airports, Timestamp::now()).await;
                    }
                }
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = pass => {}
        }
    }
    tracing::debug!("collector stopped");
}

/// Starts the collector when OpenSky is configured (`OPENSKY_CLIENT_ID` and
/// `OPENSKY_CLIENT_SECRET`): returns the trigger the API pulls when an
/// interest is added; `None` without credentials (interests are kept, and
/// their airports stay "collecting").
pub fn start(
    store: &Store,
    env: &Env,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<Trigger>, ConfigError> {
    let client = crate::upstream::http::build_client();
    let Some(opensky) = opensky_pool(env, &client)? else {
        tracing::info!("OpenSky is not configured: no airport statistics are collected");
        return Ok(None);
    };
    let config = CollectorConfig::from_env(env)?;
    let trigger = Trigger::new();
    spawn_collector(store.clone(), opensky, config, trigger.clone(), shutdown);
    Ok(Some(trigger))
}

/// Spawns [`run`] on the current runtime: what `serve` and `daemon
/// --serve` call beside the API (see the module docs for the wiring).
pub fn spawn_collector(
    store: Store,
    opensky: Arc<OpenSkyPool>,
    config: CollectorConfig,
    trigger: Trigger,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let collector = Collector::new(store, opensky, config);
    tokio::spawn(run(collector, trigger, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_ends_yesterday_at_midnight_utc() {
        assert_eq!(
            collectable_until(at("2026-03-10T17:45:00Z")),
            at("2026-03-09T00:00:00Z")
        );
        assert_eq!(
            collectable_until(at("2026-03-10T00:00:00Z")),
            at("2026-03-09T00:00:00Z")
        );
    }

    #[test]
    fn windows_start_from_the_coverage_or_the_backfill() {
        let config = CollectorConfig::default();
        let now = at("2026-03-10T17:45:00Z");
        assert_eq!(
            window(None, now, &config),
            Some((
                at("2026-03-07T00:00:00Z"),
                at("2026-03-09T00:00:00Z"),
                at("2026-03-07T00:00:00Z")
            ))
        );
        let covered = Coverage {
            from: at("2026-03-01T00:00:00Z"),
            to: at("2026-03-08T00:00:00Z"),
        };
        assert_eq!(
            window(Some(covered), now, &config),
            Some((
                at("2026-03-08T00:00:00Z"),
                at("2026-03-09T00:00:00Z"),
                at("2026-03-01T00:00:00Z")
            ))
        );
        let up_to_date = Coverage {
            to: at("2026-03-09T00:00:00Z"),
            ..covered
        };
        assert_eq!(window(Some(up_to_date), now, &config), None);
        let stale = Coverage {
            from: at("2025-01-01T00:00:00Z"),
            to: at("2025-02-01T00:00:00Z"),
        };
        let (begin, _, from) = window(Some(stale), now, &config).unwrap();
        assert_eq!(begin, at("2026-02-23T00:00:00Z"));
        assert_eq!(from, begin);
    }

    #[test]
    fn chunks_are_at_most_two_days() {
        let got = chunks(at("2026-03-01T00:00:00Z"), at("2026-03-06T00:00:00Z"));
        assert_eq!(
            got,
            [
                (at("2026-03-01T00:00:00Z"), at("2026-03-03T00:00:00Z")),
                (at("2026-03-03T00:00:00Z"), at("2026-03-05T00:00:00Z")),
                (at("2026-03-05T00:00:00Z"), at("2026-03-06T00:00:00Z")),
            ]
        );
        assert!(chunks(at("2026-03-01T00:00:00Z"), at("2026-03-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn settings_are_read_and_checked() {
        let env = Env::from_pairs([
            ("FAREWATCH_COLLECTOR_INTERVAL", "30m"),
            ("FAREWATCH_COLLECTOR_BACKFILL_DAYS", "5"),
            ("FAREWATCH_COLLECTOR_CATCH_UP_DAYS", "3"),
        ]);
        let config = CollectorConfig::from_env(&env).unwrap();
        assert_eq!(config.interval, Duration::from_secs(30 * 60));
        assert_eq!((config.backfill_days, config.catch_up_days), (5, 5));
        let bad = Env::from_pairs([("FAREWATCH_COLLECTOR_BACKFILL_DAYS", "0")]);
        assert!(CollectorConfig::from_env(&bad).is_err());
        let none = Env::from_pairs([("OPENSKY_CLIENT_ID", "id")]);
        let client = crate::upstream::http::build_client();
        assert!(opensky_pool(&none, &client).unwrap().is_none());
    }
}
