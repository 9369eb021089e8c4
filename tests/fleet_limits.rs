//! Fleet-wide provider limits (`src/fleet/`): the GCRA and quota script
//! against a real, private `redis-server` per test (`common::redis_server`),
//! and the local fallback with that server killed and restarted.
//!
//! Redis decides by its own clock (`TIME`), which is real time, so nothing
//! here asserts how long a turn took: rates are tiny where a refusal must be
//! certain, and the "within the rate" bound is checked against Redis's own
//! clock, which is exactly what the script accounts with. Only the local
//! fallback runs on tokio's clock, and is measured there, paused.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use common::redis_server::{free_port, RedisServer};
use farewatch::domain::{Currency, Iata, LookupKey, Quote};
use farewatch::fare::{FarePool, FareSource};
use farewatch::fleet::{Attempt, FleetLimiter, FleetRedis, Refused};
use farewatch::upstream::budget::DayClock;
use farewatch::upstream::{Limits, UpstreamError};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::time::Instant;

/// A plain connection to `server`, to look at the keys.
async fn redis(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Redis's clock in microseconds: the one the script decides by.
async fn redis_time_us(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let (secs, micros): (String, String) = redis::cmd("TIME").query_async(conn).await.unwrap();
    secs.parse::<u64>().unwrap() * 1_000_000 + micros.parse::<u64>().unwrap()
}

/// The Prometheus recorder of this test binary (installed once).
fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        farewatch::telemetry::builder()
            .unwrap()
            .install_recorder()
            .unwrap()
    })
}

/// The value of the series `series` (`name{labels}`) in a scrape, if there.
fn scraped(series: &str) -> Option<f64> {
    metrics().render().lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    })
}

fn granted(attempt: Attempt) -> bool {
    matches!(attempt, Attempt::Granted { .. })
}

// ------------------------------------------------------------- the script

#[tokio::test]
async fn a_burst_is_allowed_then_refused_with_a_retry_after() {
    let server = RedisServer::start();
    // One request every 2 s, three at once: the fourth is refused for sure.
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "burst", 0.5, 3);
    for _ in 0..3 {
        assert_eq!(
            limiter.try_acquire().await,
            Attempt::Granted { remaining: None }
        );
    }
    let Attempt::Wait { retry_after } = limiter.try_acquire().await else {
        panic!("the fourth request of a burst of three must wait");
    };
    assert!(
        retry_after > Duration::from_secs(1) && retry_after <= Duration::from_secs(2),
        "the next turn is one emission interval (2 s) after the first: {retry_after:?}"
    );
    // A turn that cannot come before the deadline is refused at once.
    let started = std::time::Instant::now();
    let refused = limiter
        .acquire(Instant::now() + Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(refused, Refused::Rate { .. }), "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not sleep first"
    );
    assert_eq!((limiter.granted(), limiter.refused()), (3, 2));
    assert!(!limiter.is_degraded());

    // The TAT lives under the provider's hash tag and expires by itself.
    let mut conn = redis(&server).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg("fw:rl:{burst}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 6_000, "PTTL {ttl}");
}

#[tokio::test]
async fn a_refused_request_gets_its_turn_after_the_interval() {
    let server = RedisServer::start();
    // Four a second, one at a time.
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "recovery", 4.0, 1);
    assert!(granted(limiter.try_acquire().await));
    let Attempt::Wait { retry_after } = limiter.try_acquire().await else {
        panic!("the second request right after the first must wait");
    };
    assert!(retry_after <= Duration::from_millis(250), "{retry_after:?}");
    // acquire sleeps the retry-after (plus jitter) and takes the next turn.
    limiter
        .acquire(Instant::now() + Duration::from_secs(10))
        .await
        .expect("a turn within the interval");
    assert_eq!(limiter.granted(), 2);
    assert!(limiter.refused() >= 1);
}

#[tokio::test]
async fn two_processes_sharing_a_provider_stay_within_its_rate() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    // Two processes: two connections, two node ids, one provider.
    let limiter = |_| FleetLimiter::new(FleetRedis::open(&server.url()), "shared", 20.0, 2);
    let (a, b) = (limiter(0), limiter(1));
    const EACH: u64 = 10;
    let started = redis_time_us(&mut conn).await;
    let run = |limiter: FleetLimiter| async move {
        for _ in 0..EACH {
            limiter
                .acquire(Instant::now() + Duration::from_secs(30))
                .await
                .unwrap();
        }
        limiter
    };
    let (a, b) = tokio::join!(run(a), run(b));
    let ended = redis_time_us(&mut conn).await;

    // GCRA: the n-th turn on a fresh key comes no earlier than (n - burst)
    // intervals after the first, by Redis's clock.
    let grants = a.granted() + b.granted();
    assert_eq!(grants, 2 * EACH);
    let interval_us = 1_000_000 / 20;
    let elapsed_us = ended - started;
    assert!(
        elapsed_us >= (grants - 2) * interval_us,
        "{grants} turns at 20/s (burst 2) within {elapsed_us} µs of Redis's clock"
    );
    // Within the deadline no turn is refused: each waits for the one Redis
    // gave it rather than asking again.
    assert_eq!(a.refused() + b.refused(), 0);
    assert_eq!(a.live_nodes(), 2, "Redis counts both processes");
    assert!(!a.is_degraded() && !b.is_degraded());
}

/// Script calls Redis has run (`EVALSHA` and `EVAL`), from `INFO commandstats`.
async fn script_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn queued_lookups_reserve_their_turns_in_one_round_trip() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    // 200 a second, one at a time: a window of 50 ms holds 10 turns.
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "ahead", 200.0, 1);
    // Loads the script, so the count below is of the calls alone.
    assert!(granted(limiter.try_acquire().await));
    let before = script_calls(&mut conn).await;
    let started = redis_time_us(&mut conn).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ten lookups queued: the first reserves for all of them.
    limiter.acquire_ahead(10, deadline).await.unwrap();
    for _ in 0..9 {
        limiter.acquire(deadline).await.unwrap();
    }
    let ended = redis_time_us(&mut conn).await;
    assert_eq!(
        script_calls(&mut conn).await - before,
        1,
        "one round trip for ten turns"
    );
    assert_eq!((limiter.granted(), limiter.refused()), (11, 0));
    // Each turn waited for its time: ten more turns after the first take
    // ten intervals of 5 ms (the first is one interval after the try above).
    assert!(
        ended - started >= 9 * 5_000,
        "ten turns at 200/s within {} µs",
        ended - started
    );
    // The next call asks Redis again, and the TAT there counts all eleven.
    limiter.acquire(deadline).await.unwrap();
    assert_eq!(script_calls(&mut conn).await - before, 2);
}

#[tokio::test]
async fn an_unlimited_source_asks_redis_once_per_64_turns() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    // No rate, no quota: Redis only counts the processes.
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "free", 0.0, 1);
    assert!(granted(limiter.try_acquire().await), "loads the script");
    let before = script_calls(&mut conn).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..128 {
        limiter.acquire(deadline).await.unwrap();
    }
    assert_eq!(
        script_calls(&mut conn).await - before,
        2,
        "128 turns, 2 round trips"
    );
    assert_eq!(limiter.live_nodes(), 1);
}

#[tokio::test]
async fn the_shared_limits_are_read_back_from_redis() {
    let server = RedisServer::start();
    let url = server.url();
    assert_eq!(farewatch::fleet::limit_states(&url).await.unwrap(), vec![]);
    // Two processes on one source, 10 a second with a burst of 5, and a quota.
    let a = FleetLimiter::new(FleetRedis::open(&url), "shown", 10.0, 5).with_daily_quota(100);
    let b = FleetLimiter::new(FleetRedis::open(&url), "shown", 10.0, 5).with_daily_quota(100);
    for _ in 0..5 {
        assert!(granted(a.try_acquire().await));
    }
    // Right after a's burst of five, b must wait a tenth of a second.
    assert!(!granted(b.try_acquire().await));
    let states = farewatch::fleet::limit_states(&url).await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    let shown = &states[0];
    assert_eq!(shown.provider, "shown");
    assert_eq!(shown.live_nodes, 2);
    // b's refused try spent nothing.
    assert_eq!(shown.spent_today, 5);
    assert!(
        shown.backlog > Duration::ZERO && shown.backlog <= Duration::from_millis(600),
        "five turns at 10/s put the TAT up to 0.5 s ahead: {:?}",
        shown.backlog
    );
    // A Redis that does not answer is an error naming it, without its password.
    let error = farewatch::fleet::limit_states("redis://:hunter2@127.0.0.1:1/")
        .await
        .unwrap_err();
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn the_daily_quota_refuses_past_the_quota_for_the_whole_fleet() {
    let server = RedisServer::start();
    let quota = |_| {
        FleetLimiter::new(FleetRedis::open(&server.url()), "quota", 1000.0, 10).with_daily_quota(3)
    };
    let (a, b) = (quota(0), quota(1));
    assert_eq!(
        a.try_acquire().await,
        Attempt::Granted { remaining: Some(2) }
    );
    assert_eq!(
        b.try_acquire().await,
        Attempt::Granted { remaining: Some(1) }
    );
    assert_eq!(
        a.try_acquire().await,
        Attempt::Granted { remaining: Some(0) }
    );
    for limiter in [&a, &b] {
        let Attempt::QuotaSpent { retry_after } = limiter.try_acquire().await else {
            panic!("the fleet's fourth request of the day is refused");
        };
        assert!(
            retry_after <= Duration::from_secs(24 * 3600),
            "{retry_after:?}"
        );
        let refused = limiter
            .acquire(Instant::now() + Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, Refused::Quota { per_day: 3, .. }),
            "{refused:?}"
        );
    }

    // Counted under today's date by Redis's clock, kept for two days.
    let mut conn = redis(&server).await;
    let now = redis_time_us(&mut conn).await;
    let today = jiff::Timestamp::from_microsecond(now as i64)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let key = format!("fw:quota:{{quota}}:{today}");
    let spent: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(spent, "3", "{key}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_400 && ttl <= 172_800, "TTL {ttl}");
}

// ------------------------------------------------------------- the pool

/// A source that answers at once and counts what it was asked.
struct Counting(AtomicU64);

#[async_trait]
impl FareSource for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn default_limits(&self) -> Limits {
        unpaced()
    }
    async fn cheapest(&self, _key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }
}

fn unpaced() -> Limits {
    Limits {
        max_concurrency: 4,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(5),
    }
}

fn key() -> LookupKey {
    LookupKey {
        origin: Iata::parse("LHR").unwrap(),
        destination: Iata::parse("JFK").unwrap(),
        depart: jiff::civil::date(2027, 3, 1),
        return_date: None,
        adults: 1,
        currency: Currency::EUR,
        max_stops: None,
    }
}

#[tokio::test]
async fn the_pool_takes_a_fleet_turn_before_every_request() {
    let server = RedisServer::start();
    let source = Arc::new(Counting(AtomicU64::new(0)));
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "counting", 1000.0, 10)
        .with_daily_quota(2);
    let pool = FarePool::new(source.clone(), unpaced()).with_fleet_limiter(limiter.clone());
    assert_eq!(pool.cheapest(&key()).await, Ok(None));
    assert_eq!(pool.cheapest(&key()).await, Ok(None));
    let error = pool.cheapest(&key()).await.unwrap_err();
    assert!(
        matches!(&error, UpstreamError::BudgetSpent(m) if m.contains("the fleet's daily budget of 2")),
        "{error}"
    );
    assert_eq!(
        source.0.load(Ordering::SeqCst),
        2,
        "the third was never sent"
    );
    assert_eq!(pool.stats().skipped(), 1);
    assert_eq!(limiter.granted(), 2);
}

#[tokio::test]
async fn the_concurrency_ceiling_is_divided_among_the_processes_redis_counts() {
    let server = RedisServer::start();
    // Another process has used the source: Redis counts two from now on.
    let other = FleetLimiter::new(FleetRedis::open(&server.url()), "counting", 1000.0, 10);
    assert!(granted(other.try_acquire().await));
    let source = Arc::new(Counting(AtomicU64::new(0)));
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "counting", 1000.0, 10);
    let pool = FarePool::new(source.clone(), unpaced()).with_fleet_limiter(limiter.clone());
    assert_eq!(
        pool.controller().max_concurrency(),
        4,
        "alone, the configured 4"
    );
    assert_eq!(pool.cheapest(&key()).await, Ok(None));
    assert_eq!(limiter.live_nodes(), 2);
    assert_eq!(
        pool.controller().max_concurrency(),
        2,
        "two processes: two requests in flight each"
    );
}

#[tokio::test]
async fn a_fleet_turn_too_far_away_fails_the_lookup_over_without_sending_it() {
    let server = RedisServer::start();
    // Another process has just taken a hundred turns at one a second: the
    // next is 100 s away, past the 60 s a lookup waits for it.
    let other = FleetLimiter::new(FleetRedis::open(&server.url()), "counting", 1.0, 100);
    for _ in 0..100 {
        assert!(granted(other.try_acquire().await));
    }
    let source = Arc::new(Counting(AtomicU64::new(0)));
    let limiter = FleetLimiter::new(FleetRedis::open(&server.url()), "counting", 1.0, 1);
    let pool = FarePool::new(source.clone(), unpaced()).with_fleet_limiter(limiter);
    let started = std::time::Instant::now();
    let error = pool.cheapest(&key()).await.unwrap_err();
    assert!(
        matches!(&error, UpstreamError::FleetLimited(m) if m.contains("fleet-wide rate limit of 1/s")),
        "{error}"
    );
    assert_eq!(error.kind(), "fleet_limited");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait"
    );
    assert_eq!(source.0.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().skipped(), 1);
}

// ------------------------------------------------------------- Redis down

#[tokio::test]
async fn with_redis_down_the_fallback_paces_at_its_share_and_rejoins_when_it_is_back() {
    // Recording from here on.
    metrics();
    let mut server = RedisServer::start();
    // 10 requests a second for the fleet; two processes have called.
    let limiter = |_| {
        FleetLimiter::new(FleetRedis::open(&server.url()), "fallback", 10.0, 2)
            .with_probe_every(Duration::from_secs(3600))
    };
    let (a, b) = (limiter(0), limiter(1));
    assert!(granted(a.try_acquire().await));
    assert!(granted(b.try_acquire().await));
    // Granted or not (the burst of 2 is spent), a learns the fleet's size.
    a.try_acquire().await;
    assert_eq!(a.live_nodes(), 2);

    server.kill();
    // The first try after Redis died is answered by the local share at once.
    assert!(granted(a.try_acquire().await));
    assert!(a.is_degraded());
    assert_eq!(
        a.share(),
        Some(2),
        "FAREWATCH_FLEET_SIZE unset: the two processes Redis counted"
    );

    // On the local share: 10/s divided by 2 = one turn every 200 ms, a burst
    // of 1 (2 / 2). The local limiter runs on tokio's clock: measured paused.
    tokio::time::pause();
    let started = Instant::now();
    for _ in 0..10 {
        a.acquire(started + Duration::from_secs(60)).await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1_800) && elapsed <= Duration::from_millis(2_200),
        "ten turns at 5/s took {elapsed:?}"
    );
    // One fallback: one warning, one count, however many turns.
    assert_eq!(a.fallbacks(), 1);
    assert_eq!(
        scraped("farewatch_fleet_fallbacks_total{provider=\"fallback\"}"),
        Some(1.0)
    );
    assert_eq!(
        scraped("farewatch_fleet_degraded{provider=\"fallback\"}"),
        Some(1.0)
    );

    // Redis back: the next probe (due after the hour) finds it, and the
    // limiter goes back to the shared limit.
    tokio::time::advance(Duration::from_secs(3600)).await;
    tokio::time::resume();
    server.restart();
    assert!(granted(a.try_acquire().await), "still the local share");
    let patience = std::time::Instant::now() + Duration::from_secs(10);
    while a.is_degraded() {
        assert!(
            std::time::Instant::now() < patience,
            "no rejoin within 10 s"
        );
        // Waiting on the background probe's round trips to the real server.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(granted(a.try_acquire().await));
    let mut conn = redis(&server).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("fw:rl:{fallback}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists, "the restarted (empty) Redis holds the TAT again");
    assert_eq!(a.live_nodes(), 1, "only this process called the new server");
    assert_eq!(a.fallbacks(), 1);
    assert_eq!(
        scraped("farewatch_fleet_degraded{provider=\"fallback\"}"),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_process_that_never_reached_redis_takes_the_configured_share_of_rate_and_quota() {
    // Nothing listens there: Redis is down from the start.
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let limiter = FleetLimiter::new(FleetRedis::open(&url), "never", 1000.0, 8)
        .with_daily_quota(100)
        .with_fleet_size(4)
        .with_probe_every(Duration::from_secs(3600))
        .with_clock(DayClock::starting_at(
            "2026-12-04T12:00:00Z".parse().unwrap(),
        ));
    // 1000/s over 4 = 250/s, burst 2; a quarter of the day's 100.
    assert_eq!(
        limiter.try_acquire().await,
        Attempt::Granted {
            remaining: Some(24)
        }
    );
    assert_eq!(limiter.share(), Some(4));
    tokio::time::pause();
    let started = Instant::now();
    for _ in 0..24 {
        limiter
            .acquire(started + Duration::from_secs(60))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(4 * 22),
        "25 turns at 250/s, burst 2: {:?}",
        started.elapsed()
    );
    let refused = limiter
        .acquire(started + Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Refused::Quota { per_day: 100, .. }),
        "{refused:?}"
    );
    assert_eq!(limiter.fallbacks(), 1);
}

// ------------------------------------------------------------- configuration

/// `App::assemble` on a dry run with SerpApi (unpaced here, no budget) and
/// Duffel (paced, a daily budget), plus `extra` settings.
async fn fare_pools(extra: &[(&str, &str)]) -> Vec<Arc<FarePool>> {
    use farewatch::app::{App, Options};
    use farewatch::config::{Env, Mode};
    use farewatch::notify::console::ConsoleTarget;
    let mut pairs = vec![
        ("DATABASE_URL", "sqlite::memory:"),
        ("FARE_SOURCES", "serpapi,duffel"),
        ("SERPAPI_API_KEY", "k"),
        ("SERPAPI_RATE_LIMIT", "0"),
        ("DUFFEL_ACCESS_TOKEN", "t"),
        ("DUFFEL_DAILY_BUDGET", "500"),
    ];
    pairs.extend_from_slice(extra);
    let app = App::assemble(
        Env::from_pairs(pairs),
        Options {
            mode: Mode::DryRun,
            dry_run: true,
            compare: None,
            routes: String::new(),
            flights: None,
            console: ConsoleTarget::Stderr,
        },
    )
    .await
    .unwrap();
    app.engine.fares().pools().to_vec()
}

#[tokio::test]
async fn redis_url_puts_every_source_under_a_fleet_limit() {
    let server = RedisServer::start();
    let url = server.url();
    let pools = fare_pools(&[("REDIS_URL", &url), ("FAREWATCH_FLEET_SIZE", "3")]).await;
    let names: Vec<&str> = pools.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["serpapi", "duffel"]);
    // No rate and no budget: the limiter only counts the processes, whose
    // number divides the concurrency ceiling.
    let serpapi = pools[0].fleet_limiter().expect("every source has one");
    assert_eq!(
        (serpapi.rate_per_sec(), serpapi.daily_quota()),
        (None, None)
    );
    let duffel = pools[1]
        .fleet_limiter()
        .expect("Duffel is paced and budgeted");
    assert_eq!(duffel.provider(), "duffel");
    assert_eq!(duffel.daily_quota(), Some(500));
    assert_eq!(duffel.rate_per_sec(), Some(pools[1].limits().rate_per_sec));
    // Configured, not contacted: nothing was looked up.
    assert!(!duffel.is_degraded());

    // Off, or no Redis: every process on its own, as before.
    for extra in [
        &[
            ("REDIS_URL", url.as_str()),
            ("FAREWATCH_FLEET_LIMITS", "off"),
        ][..],
        &[],
    ] {
        let pools = fare_pools(extra).await;
        assert!(
            pools.iter().all(|p| p.fleet_limiter().is_none()),
            "{extra:?}"
        );
    }
}
