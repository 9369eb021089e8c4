//! The upstream layer under the conditions real providers create every day,
//! each as a whole cycle (lookups, decisions, outbox, sends) on tokio's
//! paused clock, so the durations asserted are exact virtual time:
//!
//! - a rate limit nobody told us about (a token bucket of 50/s);
//! - a first source that is down, with a healthy second source;
//! - 2 % of lookups that hang;
//! - seed 001's scenario: 50 routes, 1.2 s per call (token, lookup, SMS).
//!
//! The providers are fakes at the trait boundary ([`FareSource`],
//! [`Notifier`]): a paused clock cannot drive real sockets (it auto-advances
//! while the runtime waits on them, firing timeouts spuriously), and these
//! tests are about time. What they model is what the wire does: latency, a
//! 429 from a token bucket, a 500, an answer that never comes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, LookupKey, Money, Quote, Recipient};
use farewatch::engine::{
    AlertOutcome, CycleReport, Engine, EngineParts, NoProgress, NotifyLimits, RouteStatus,
};
use farewatch::fare::failover::{Failover, Strategy};
use farewatch::fare::{FarePool, FareSource};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::Store;
use farewatch::upstream::arc::DEFAULT_INITIAL_CONCURRENCY;
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::breaker::BreakerPhase;
use farewatch::upstream::retry::Backoff;
use farewatch::upstream::{Limits, UpstreamError};
use tokio::time::Instant;

const PRICE_MINOR: i64 = 200_00;

fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

/// Distinct three-letter origins: `QAA`, `QAB`, ... then `RAA`, ...
fn origin(i: usize) -> String {
    let letter = |k: usize| char::from(b'A' + u8::try_from(k % 26).unwrap());
    format!("{}{}{}", letter(16 + i / 676), letter(i / 26), letter(i))
}

/// Route `i`: a one-way trip 30 days out, to one phone; `due` routes have a
/// maximum above the fake's price, so they alert.
fn route(i: usize, due: bool) -> Route {
    let depart = jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(30))
        .unwrap();
    Route {
        line: i + 2,
        label: None,
        origins: vec![Iata::parse(&origin(i)).unwrap()],
        destinations: vec![Iata::parse("JFK").unwrap()],
        depart: DateRange::parse(&depart.to_string()).unwrap(),
        return_dates: None,
        adults: 1,
        rule: Rule {
            max_price: Money::from_minor(if due { 300_00 } else { 100_00 }, gbp()),
            min_drop: MinDrop::Zero,
            cooldown: None,
        },
        recipients: vec![Recipient::parse(&format!("+4479111{:05}", i)).unwrap()],
        active: true,
        namespace: None,
    }
}

fn quote(key: &LookupKey, provider: &str) -> Quote {
    Quote {
        price: Money::from_minor(PRICE_MINOR, key.currency),
        provider: provider.into(),
        fetched_at: jiff::Timestamp::now(),
        cached: false,
        found_at: None,
        link: None,
        insights: None,
        itinerary: None,
    }
}

/// No `*_RATE_LIMIT` set: the controller must find the pace itself.
fn unpaced(max_concurrency: usize) -> Limits {
    Limits {
        max_concurrency,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(20),
    }
}

/// A token bucket, as providers enforce their rate limits: `rate` tokens a
/// second, at most `burst` saved up. The engine is not told about it.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        // A hair of tolerance: requests paced at exactly the rate must pass.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a fake provider does with request number `n` (attempt `attempt`
/// of `key`).
#[derive(Clone, Copy)]
enum Answer {
    Offers,
    Refuse,
    ServerError,
    Hang,
}

/// A fare provider with a fixed latency and a scripted answer per request,
/// optionally behind a token bucket.
struct FakeProvider {
    name: &'static str,
    latency: Duration,
    bucket: Option<Mutex<Bucket>>,
    script: Box<dyn Fn(u64, u32) -> Answer + Send + Sync>,
    /// Fetched once, single-flight, before the first search (an OAuth token).
    token: Option<(Duration, tokio::sync::OnceCell<()>)>,
    requests: AtomicU64,
    refused: AtomicU64,
    attempts: Mutex<std::collections::HashMap<LookupKey, u32>>,
}

impl FakeProvider {
    fn new(name: &'static str, latency: Duration) -> Self {
        Self {
            name,
            latency,
            bucket: None,
            script: Box::new(|_, _| Answer::Offers),
            token: None,
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            attempts: Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn limited(mut self, rate: f64, burst: f64) -> Self {
        self.bucket = Some(Mutex::new(Bucket::new(rate, burst)));
        self
    }

    fn scripted(mut self, script: impl Fn(u64, u32) -> Answer + Send + Sync + 'static) -> Self {
        self.script = Box::new(script);
        self
    }

    fn with_token(mut self, latency: Duration) -> Self {
        self.token = Some((latency, tokio::sync::OnceCell::new()));
        self
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl FareSource for FakeProvider {
    fn name(&self) -> &'static str {
        self.name
    }
    fn default_limits(&self) -> Limits {
        unpaced(50)
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        if let Some((latency, cell)) = &self.token {
            cell.get_or_init(|| tokio::time::sleep(*latency)).await;
        }
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let slot = attempts.entry(*key).or_default();
            *slot += 1;
            *slot - 1
        };
        let mut answer = (self.script)(n, attempt);
        if let Some(bucket) = &self.bucket {
            if !bucket.lock().unwrap().take() {
                answer = Answer::Refuse;
            }
        }
        tokio::time::sleep(self.latency).await;
        match answer {
            Answer::Offers => Ok(Some(quote(key, self.name))),
            Answer::Refuse => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                Err(UpstreamError::RateLimited { retry_after: None })
            }
            Answer::ServerError => Err(UpstreamError::Upstream {
                status: 500,
                code: None,
                message: "Internal Server Error".into(),
            }),
            Answer::Hang => std::future::pending().await,
        }
    }
}

/// An SMS provider at the trait boundary: accepts every message after
/// `latency` and records it.
struct FakeSms {
    latency: Duration,
    sent: Mutex<Vec<(String, String)>>,
}

impl FakeSms {
    fn new(latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            latency,
            sent: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Notifier for FakeSms {
    fn name(&self) -> &'static str {
        "fake-sms"
    }
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        tokio::time::sleep(self.latency).await;
        let mut sent = self.sent.lock().unwrap();
        sent.push((to.to_string(), body.to_owned()));
        Ok(Delivery {
            id: format!("SM{}", sent.len()),
            segments: Some(1),
        })
    }
}

fn pool(provider: &Arc<FakeProvider>, limits: Limits) -> Arc<FarePool> {
    Arc::new(FarePool::with_policy(
        provider.clone(),
        limits,
        Backoff::default(),
        BreakerConfig::DEFAULT,
    ))
}

/// An engine with the default SMS ceilings (Twilio's defaults).
fn engine(pools: Vec<Arc<FarePool>>, sms: Arc<FakeSms>) -> Arc<Engine> {
    Arc::new(Engine::new(EngineParts {
        fares: Arc::new(Failover::new(pools, Strategy::FirstAnswer)),
        cache: QuoteCache::memory(Duration::from_secs(600)),
        notifier: sms,
        notify_limits: NotifyLimits {
            max_concurrency: farewatch::notify::twilio::DEFAULT_MAX_CONCURRENCY,
            rate_per_sec: farewatch::notify::twilio::DEFAULT_RATE_PER_SEC,
            timeout: Duration::from_secs(15),
            settle_delay: farewatch::engine::DEFAULT_SETTLE_DELAY,
            settle_bound: farewatch::engine::DEFAULT_SETTLE_BOUND,
        },
        store: Store::memory().unwrap(),
        dry_run: false,
    }))
}

async fn timed_cycle(engine: &Arc<Engine>, routes: &[Route]) -> (CycleReport, Duration) {
    let start = Instant::now();
    let report = engine
        .run_cycle(routes.to_vec(), Arc::new(NoProgress))
        .await
        .expect("the cycle runs");
    (report, start.elapsed())
}

/// Every due route alerted and every other one priced, each recipient texted
/// exactly once: nothing lost, nothing twice.
fn assert_nothing_lost(report: &CycleReport, routes: &[Route], sms: &FakeSms, due: usize) {
    for r in &report.routes {
        assert!(
            matches!(r.status, RouteStatus::Below | RouteStatus::Above),
            "row {}: {:?} {:?}",
            r.row,
            r.status,
            r.errors
        );
        if r.status == RouteStatus::Below {
            assert_eq!(r.alert, AlertOutcome::Sent, "row {}", r.row);
        }
    }
    assert_eq!(report.routes.len(), routes.len());
    assert_eq!(report.summary.lookup_errors, 0);
    let sent = sms.sent.lock().unwrap();
    let distinct: HashSet<&String> = sent.iter().map(|(to, _)| to).collect();
    assert_eq!(sent.len(), due, "one SMS per due alert");
    assert_eq!(distinct.len(), due, "nobody texted twice");
}

/// The provider allows 50 requests a second (a bucket of 50); 1,000 lookups;
/// no rate limit configured. The bound is N/R = 20 s: the cycle must finish
/// within 1.5 × N/R + 2 s, losing nothing.
#[tokio::test(start_paused = true)]
async fn an_unknown_rate_limit_is_found_and_followed() {
    let n = 1000;
    let provider =
        Arc::new(FakeProvider::new("bucket", Duration::from_millis(100)).limited(50.0, 50.0));
    let sms = FakeSms::new(Duration::from_millis(100));
    let engine = engine(vec![pool(&provider, unpaced(50))], sms.clone());
    let routes: Vec<Route> = (0..n).map(|i| route(i, i % 10 == 0)).collect();

    let (report, elapsed) = timed_cycle(&engine, &routes).await;

    let bound = Duration::from_secs_f64(1.5 * n as f64 / 50.0 + 2.0);
    let refused = provider.refused.load(Ordering::SeqCst);
    println!(
        "{n} lookups at an unknown 50/s: {elapsed:?}, {} requests, {refused} refused, operating point {:?}",
        provider.requests(),
        report.summary.providers[0].operating_point
    );
    assert!(elapsed <= bound, "{elapsed:?} > {bound:?}");
    assert_nothing_lost(&report, &routes, &sms, n / 10);
    assert_eq!(
        provider.requests(),
        n as u64 + refused,
        "every request is a lookup or a refused one"
    );
}

/// The first source answers 500 to everything; a healthy second source is
/// configured. The dead one gets at most its starting window of requests
/// (none of them retried once its circuit opens), and failing over costs
/// about one round trip over what the healthy source alone takes.
#[tokio::test(start_paused = true)]
async fn a_dead_first_source_costs_one_window_and_one_round_trip() {
    let n = 200;
    let rtt = Duration::from_millis(100);
    let routes: Vec<Route> = (0..n).map(|i| route(i, false)).collect();

    // The healthy source alone, for reference.
    let alone = Arc::new(FakeProvider::new("healthy", rtt));
    let sms = FakeSms::new(rtt);
    let (_, healthy_alone) =
        timed_cycle(&engine(vec![pool(&alone, unpaced(200))], sms), &routes).await;

    let dead = Arc::new(FakeProvider::new("dead", rtt).scripted(|_, _| Answer::ServerError));
    let healthy = Arc::new(FakeProvider::new("healthy", rtt));
    let sms = FakeSms::new(rtt);
    let engine = engine(
        vec![pool(&dead, unpaced(50)), pool(&healthy, unpaced(200))],
        sms.clone(),
    );
    let (report, elapsed) = timed_cycle(&engine, &routes).await;

    println!(
        "{n} lookups, dead first source: {elapsed:?} (healthy alone {healthy_alone:?}), {} requests to the dead one",
        dead.requests()
    );
    assert!(
        dead.requests() <= DEFAULT_INITIAL_CONCURRENCY as u64,
        "{} requests to the dead source",
        dead.requests()
    );
    assert_eq!(report.summary.providers[0].breaker, BreakerPhase::Open);
    assert!(
        elapsed <= healthy_alone + 2 * rtt,
        "{elapsed:?} against {healthy_alone:?} for the healthy source alone"
    );
    assert_eq!(
        healthy.requests(),
        n as u64,
        "each lookup once on the healthy one"
    );
    assert_nothing_lost(&report, &routes, &sms, 0);
}

/// 2 % of lookups never answer; the others take 20 ms. The configured
/// timeout is 20 s, but the cycle ends within a few seconds: a request far
/// slower than the provider's observed latency is given up on and retried.
#[tokio::test(start_paused = true)]
async fn hung_lookups_cost_seconds_not_the_configured_timeout() {
    let n = 400;
    // The first attempt of every 50th lookup hangs (2 %); its retry answers.
    let provider = Arc::new(
        FakeProvider::new("hangs", Duration::from_millis(20)).scripted(|n, attempt| {
            if attempt == 0 && n % 50 == 7 {
                Answer::Hang
            } else {
                Answer::Offers
            }
        }),
    );
    let sms = FakeSms::new(Duration::from_millis(20));
    let engine = engine(vec![pool(&provider, unpaced(50))], sms.clone());
    let routes: Vec<Route> = (0..n).map(|i| route(i, i % 4 == 0)).collect();

    let (report, elapsed) = timed_cycle(&engine, &routes).await;

    println!("{n} lookups, 2 % hung: {elapsed:?}");
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(
        report.summary.providers[0].errors_by_kind.get("timeout"),
        None
    );
    assert!(
        report.summary.providers[0].retries >= 8,
        "the hung ones were retried"
    );
    assert_nothing_lost(&report, &routes, &sms, n / 4);
}

/// Seed 001's scenario: 50 routes, every call 1.2 s (the OAuth token, each
/// lookup, each SMS), 23 alerts due. The physical limit is token + lookup +
/// SMS = 3.6 s; the cycle must be within 5 % of it.
#[tokio::test(start_paused = true)]
async fn seed_001_fifty_routes_take_three_latencies() {
    let latency = Duration::from_millis(1200);
    let provider = Arc::new(FakeProvider::new("amadeus-like", latency).with_token(latency));
    let sms = FakeSms::new(latency);
    let engine = engine(vec![pool(&provider, unpaced(50))], sms.clone());
    let routes: Vec<Route> = (0..50).map(|i| route(i, i < 23)).collect();

    let (report, elapsed) = timed_cycle(&engine, &routes).await;

    println!("seed 001: {elapsed:?}");
    let limit = latency * 3;
    assert!(
        elapsed.as_secs_f64() <= limit.as_secs_f64() * 1.05,
        "{elapsed:?}"
    );
    assert_nothing_lost(&report, &routes, &sms, 23);
}

/// A cron run starts from the operating point the last run learned, so it
/// does not rediscover a rate limit by tripping over it again.
#[tokio::test(start_paused = true)]
async fn the_next_run_starts_from_the_learned_operating_point() {
    let store = Store::memory().unwrap();
    let build = |provider: &Arc<FakeProvider>| {
        let pool = pool(provider, unpaced(50));
        let engine = Arc::new(Engine::new(EngineParts {
            fares: Arc::new(Failover::single(pool.clone())),
            cache: QuoteCache::memory(Duration::from_secs(600)),
            notifier: FakeSms::new(Duration::from_millis(10)),
            notify_limits: NotifyLimits {
                max_concurrency: 10,
                rate_per_sec: 0.0,
                timeout: Duration::from_secs(15),
                settle_delay: farewatch::engine::DEFAULT_SETTLE_DELAY,
                settle_bound: farewatch::engine::DEFAULT_SETTLE_BOUND,
            },
            store: store.clone(),
            dry_run: false,
        }));
        (pool, engine)
    };
    let routes: Vec<Route> = (0..300).map(|i| route(i, false)).collect();

    let first =
        Arc::new(FakeProvider::new("bucket", Duration::from_millis(100)).limited(50.0, 50.0));
    let (pool, engine) = build(&first);
    timed_cycle(&engine, &routes).await;
    let learned = pool.controller().operating_point();
    assert!(learned.rate_per_sec.is_some(), "{learned:?}");

    // A new process: fresh pools, the same state database.
    let second =
        Arc::new(FakeProvider::new("bucket", Duration::from_millis(100)).limited(50.0, 50.0));
    let (pool, engine) = build(&second);
    assert_eq!(pool.controller().operating_point().rate_per_sec, None);
    timed_cycle(&engine, &[]).await;
    let resumed = pool.controller().operating_point();
    assert_eq!(
        (resumed.concurrency, resumed.rate_per_sec),
        (learned.concurrency, learned.rate_per_sec)
    );
}
