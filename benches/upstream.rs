//! The upstream controller on real time against a real HTTP fake: whole
//! cycles ([`Engine::run_cycle`]: lookups, decisions, outbox, sends) with the
//! real Amadeus client speaking the real wire format to an in-process fake
//! (`benches/common`), on the binary's single-threaded runtime.
//!
//! `tests/upstream.rs` proves the same behaviour on a paused clock with fakes
//! at the trait boundary; this measures what it costs on a real clock, with
//! sockets, HTTP parsing and the token exchange included.
//!
//! Two cases, each run 3 times on a fresh engine, client, store, cache and
//! fakes (so every run fetches a token, opens its connections and misses
//! the cache, as a cron run does):
//!
//! 1. **Unknown rate limit.** The fake enforces a token bucket of R = 200
//!    requests/s with a burst of R, answering Amadeus's `429` (code 38194)
//!    when it is empty; farewatch is told nothing (`rate_per_sec: 0`,
//!    `max_concurrency: 50`). N = 1,000 lookups, 50 ms upstream latency.
//!    No schedule can beat N/R = 5 s. One route in ten alerts (a no-op
//!    notifier takes the sends).
//! 2. **Dead first source.** 200 lookups; the first source answers every
//!    search `500` (Amadeus's code 38189), the second is healthy; 100 ms
//!    latency each. The same cycle against the healthy source alone is the
//!    reference.
//!
//! Run it with `cargo bench --bench upstream`. Without `--bench` (as under
//! `cargo test --all-targets`) it runs a small smoke version of each case
//! once, to prove it still works, and exits.
//!
//! Reading the output, one row per run, then wall-time min / median / max:
//! - case 1: `wall` is the cycle's wall time and `wall/(N/R)` its ratio to
//!   N/R (the target is within 1.5 × N/R + 2 s). The bucket starts full, so
//!   the first B = burst requests cost no wait and the true floor is
//!   (N − B)/R (4 s here), plus a round trip or two (the token, the last
//!   search): `wall/((N-B)/R)` is the ratio to it. `requests` are searches that reached
//!   the fake (N plus the refused ones, which are queued again), `429s` the
//!   refused ones, `lost` routes left without a price or with an alert not
//!   sent (must be 0), and the last column the controller's operating point
//!   at the end (its concurrency limit, learned pace, smoothed round trip).
//! - case 2: `wall` with the dead source first, `alone` the healthy source
//!   alone, `extra` the difference in seconds and in round trips (upstream
//!   latencies), `dead reqs` the searches that reached the dead source (at
//!   most its starting window of 50), `lost` as above.
//!
//! The fakes answer every request, 429s and 500s included, after the full
//! latency, and judge the bucket when a request arrives.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{routes, Behaviour, Fake};
use farewatch::cache::QuoteCache;
use farewatch::domain::Recipient;
use farewatch::engine::{
    AlertOutcome, CycleReport, Engine, EngineParts, NoProgress, NotifyLimits, RouteStatus,
};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::failover::{Failover, Strategy};
use farewatch::fare::FarePool;
use farewatch::notify::{Delivery, Notifier, NotifyError};
use farewatch::route::Route;
use farewatch::upstream::arc::OperatingPoint;
use farewatch::upstream::Limits;

/// The same allocator as the `farewatch` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs of each case in a full run.
const RUNS: usize = 3;

/// The configured timeout: a ceiling the adaptive timeout stays under.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Case 1's parameters.
#[derive(Debug, Clone, Copy)]
struct RateCase {
    lookups: usize,
    rate: f64,
    burst: f64,
    latency: Duration,
}

/// Case 2's parameters.
#[derive(Debug, Clone, Copy)]
struct DeadCase {
    lookups: usize,
    latency: Duration,
}

/// Accepts every message at once, counting them.
#[derive(Debug, Default)]
struct NoopNotifier {
    sent: AtomicU64,
}

#[async_trait]
impl Notifier for NoopNotifier {
    fn name(&self) -> &'static str {
        "noop"
    }

    async fn send(&self, _to: &Recipient, _body: &str) -> Result<Delivery, NotifyError> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Delivery {
            id: format!("SM{n:032}"),
            segments: Some(1),
        })
    }
}

/// A fresh Amadeus pool against `fake`, with its own HTTP client.
fn pool(fake: &Fake, max_concurrency: usize) -> Arc<FarePool> {
    let amadeus = Arc::new(Amadeus::new(
        farewatch::upstream::http::build_client(),
        AmadeusConfig {
            base_url: fake.url(),
            client_id: "bench".into(),
            client_secret: "bench".to_owned().into(),
            timeout: TIMEOUT,
        },
        None,
    ));
    Arc::new(FarePool::new(
        amadeus,
        Limits {
            max_concurrency,
            // No rate limit configured: the controller must find it.
            rate_per_sec: 0.0,
            timeout: TIMEOUT,
        },
    ))
}

/// A fresh engine: in-memory store, an empty quote cache (a long TTL, but
/// nothing in it), the no-op notifier.
fn engine(pools: Vec<Arc<FarePool>>, notifier: Arc<NoopNotifier>) -> Arc<Engine> {
    Arc::new(Engine::new(EngineParts {
        fares: Arc::new(Failover::new(pools, Strategy::FirstAnswer)),
        cache: QuoteCache::memory(Duration::from_secs(3600)),
        notifier,
        notify_limits: NotifyLimits {
            max_concurrency: 10,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
            settle_delay: farewatch::engine::DEFAULT_SETTLE_DELAY,
            settle_bound: farewatch::engine::DEFAULT_SETTLE_BOUND,
        },
        store: farewatch::store::Store::memory().unwrap(),
        dry_run: false,
    }))
}

/// Runs a cycle as a spawned task, as the binary does; returns its report
/// and wall time.
fn run(
    runtime: &tokio::runtime::Runtime,
    engine: Arc<Engine>,
    routes: Vec<Route>,
) -> (CycleReport, Duration) {
    let start = Instant::now();
    let report = runtime
        .block_on(
            runtime.spawn(async move { engine.run_cycle(routes, Arc::new(NoProgress)).await }),
        )
        .unwrap()
        .expect("the cycle runs");
    (report, start.elapsed())
}

/// Routes the cycle did not carry through: no price (an error, or no
/// report at all), or an alert due and not sent.
fn lost(report: &CycleReport, routes: &[Route]) -> usize {
    let carried = report
        .routes
        .iter()
        .filter(|r| match r.status {
            RouteStatus::Below => r.alert == AlertOutcome::Sent,
            RouteStatus::Above => true,
            _ => false,
        })
        .count();
    routes.len().saturating_sub(carried)
}

fn is_due(i: usize) -> bool {
    i.is_multiple_of(10)
}

struct RateRun {
    wall: Duration,
    requests: u64,
    refused: u64,
    lost: usize,
    sent: u64,
    point: OperatingPoint,
}

fn rate_run(runtime: &tokio::runtime::Runtime, case: RateCase) -> RateRun {
    let fake = Fake::start(
        Behaviour::TokenBucket {
            rate: case.rate,
            burst: case.burst,
        },
        case.latency,
    );
    let pool = pool(&fake, 50);
    let notifier = Arc::new(NoopNotifier::default());
    let routes = routes(case.lookups, is_due);
    let (report, wall) = run(
        runtime,
        engine(vec![pool.clone()], notifier.clone()),
        routes.clone(),
    );
    let due = routes
        .iter()
        .enumerate()
        .filter(|(i, _)| is_due(*i))
        .count() as u64;
    let sent = notifier.sent.load(Ordering::Relaxed);
    RateRun {
        wall,
        requests: fake.searches(),
        refused: fake.refused(),
        lost: lost(&report, &routes) + due.saturating_sub(sent) as usize,
        sent,
        point: pool.controller().operating_point(),
    }
}

struct DeadRun {
    wall: Duration,
    alone: Duration,
    dead_requests: u64,
    healthy_requests: u64,
    lost: usize,
    breaker: String,
}

fn dead_run(runtime: &tokio::runtime::Runtime, case: DeadCase) -> DeadRun {
    let routes = routes(case.lookups, |_| false);

    // The healthy source alone, for reference.
    let alone = {
        let healthy = Fake::start(Behaviour::Healthy, case.latency);
        let notifier = Arc::new(NoopNotifier::default());
        let engine = engine(vec![pool(&healthy, case.lookups)], notifier);
        let (report, wall) = run(runtime, engine, routes.clone());
        assert_eq!(
            lost(&report, &routes),
            0,
            "the healthy source alone lost lookups"
        );
        wall
    };

    let dead = Fake::start(Behaviour::ServerError, case.latency);
    let healthy = Fake::start(Behaviour::Healthy, case.latency);
    let dead_pool = pool(&dead, 50);
    let notifier = Arc::new(NoopNotifier::default());
    let engine = engine(
        vec![dead_pool.clone(), pool(&healthy, case.lookups)],
        notifier,
    );
    let (report, wall) = run(runtime, engine, routes.clone());
    DeadRun {
        wall,
        alone,
        dead_requests: dead.searches(),
        healthy_requests: healthy.searches(),
        lost: lost(&report, &routes),
        breaker: dead_pool.breaker_state().phase().to_string(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn point(p: &OperatingPoint) -> String {
    let pace = match p.rate_per_sec {
        Some(r) => format!("{r:.1}/s"),
        None => "none".into(),
    };
    let srtt = match p.srtt_ms {
        Some(s) => format!("{s:.0} ms"),
        None => "-".into(),
    };
    format!("limit {}, pace {pace}, srtt {srtt}", p.concurrency)
}

/// `min / median / max` of the walls.
fn spread(mut walls: Vec<Duration>) -> String {
    walls.sort();
    format!(
        "{} / {} / {}",
        secs(walls[0]),
        secs(walls[walls.len() / 2]),
        secs(walls[walls.len() - 1])
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, rate_case, dead_case) = if full {
        (
            RUNS,
            RateCase {
                lookups: 1000,
                rate: 200.0,
                burst: 200.0,
                latency: Duration::from_millis(50),
            },
            DeadCase {
                lookups: 200,
                latency: Duration::from_millis(100),
            },
        )
    } else {
        // Smoke: a burst of a tenth of the rate, so some requests are refused.
        (
            1,
            RateCase {
                lookups: 50,
                rate: 100.0,
                burst: 10.0,
                latency: Duration::from_millis(10),
            },
            DeadCase {
                lookups: 20,
                latency: Duration::from_millis(10),
            },
        )
    };
    // The binary's runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lost_any = false;

    let n = rate_case.lookups;
    let floor = n as f64 / rate_case.rate;
    let burst_floor = (n as f64 - rate_case.burst).max(0.0) / rate_case.rate;
    println!(
        "case 1: unknown rate limit: {n} lookups, bucket {}/s burst {}, latency {} ms, \
         max_concurrency 50, no rate configured; N/R = {floor:.2} s, (N-B)/R = {burst_floor:.2} s",
        rate_case.rate,
        rate_case.burst,
        rate_case.latency.as_millis()
    );
    println!(
        "{:<4} {:>9} {:>10} {:>14} {:>9} {:>6} {:>5} {:>5}  final operating point",
        "run", "wall", "wall/(N/R)", "wall/((N-B)/R)", "requests", "429s", "lost", "sent"
    );
    let mut walls = Vec::new();
    for i in 1..=runs {
        let r = rate_run(&runtime, rate_case);
        println!(
            "{:<4} {:>9} {:>10.2} {:>14.2} {:>9} {:>6} {:>5} {:>5}  {}",
            i,
            secs(r.wall),
            r.wall.as_secs_f64() / floor,
            r.wall.as_secs_f64() / burst_floor,
            r.requests,
            r.refused,
            r.lost,
            r.sent,
            point(&r.point)
        );
        lost_any |= r.lost > 0;
        walls.push(r.wall);
    }
    println!(
        "wall min / median / max: {}   (target: <= 1.5 x N/R + 2 s = {:.1} s)",
        spread(walls),
        1.5 * floor + 2.0
    );
    println!();

    let n = dead_case.lookups;
    let rtt = dead_case.latency;
    println!(
        "case 2: dead first source: {n} lookups, first source 500s every search, \
         second healthy, latency {} ms each",
        rtt.as_millis()
    );
    println!(
        "{:<4} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9} {:>5}  dead breaker",
        "run", "wall", "alone", "extra", "extra (RTTs)", "dead reqs", "live reqs", "lost"
    );
    let mut walls = Vec::new();
    let mut alones = Vec::new();
    for i in 1..=runs {
        let r = dead_run(&runtime, dead_case);
        let extra = r.wall.as_secs_f64() - r.alone.as_secs_f64();
        println!(
            "{:<4} {:>9} {:>9} {:>9} {:>12.2} {:>9} {:>9} {:>5}  {}",
            i,
            secs(r.wall),
            secs(r.alone),
            format!("{extra:+.3} s"),
            extra / rtt.as_secs_f64(),
            r.dead_requests,
            r.healthy_requests,
            r.lost,
            r.breaker
        );
        lost_any |= r.lost > 0;
        walls.push(r.wall);
        alones.push(r.alone);
    }
    println!("wall min / median / max:  {}", spread(walls));
    println!("alone min / median / max: {}", spread(alones));

    if lost_any {
        eprintln!("error: lookups were lost (see the `lost` columns)");
        std::process::exit(1);
    }
}
