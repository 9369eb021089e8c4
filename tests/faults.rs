//! Fault injection: the engine (and the binary) against stateful fakes that
//! fail deterministically: 5xx on lookups, lost Twilio acknowledgements,
//! hung lookups, 429 with `Retry-After`, token expiry mid-cycle, quota
//! exhaustion, and Redis killed mid-cycle.
//!
//! Every test checks the same three things:
//! 1. the messages the fake Twilio *accepted* are exactly the alerts due,
//!    one per (recipient, body), never two;
//! 2. the cycle's summary and per-route report say what really happened
//!    (`lookup_errors`, `alerts_sent`, `alerts_failed`, `status`, `alert`,
//!    the provider's `breaker`, `retries`, `throttled`, `skipped`);
//! 3. for the binary, the exit code agrees.
//!
//! Time: tests that talk to wiremock run on the real clock with tiny retry
//! policies (a paused clock auto-advances while the runtime waits on
//! sockets, which fires timeouts spuriously). Tests about timing semantics
//! use a paused clock and a scripted [`FareSource`] instead, and assert
//! exact virtual durations. No test body sleeps.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::amadeus_fake::{AmadeusFake, Reply, OFFERS_CHEAPEST_MINOR};
use common::binary::{farewatch, run, write_sheet};
use common::redis_server::RedisServer;
use common::twilio_fake::{Post, TwilioFake};
use common::*;
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, LookupKey, Money, Quote, Recipient};
use farewatch::engine::{
    AlertOutcome, CycleReport, Engine, EngineParts, NoProgress, NotifyLimits, Progress,
    RouteReport, RouteStatus,
};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::failover::Failover;
use farewatch::fare::FarePool;
use farewatch::fare::FareSource;
use farewatch::notify::twilio::{Sender, Twilio, TwilioConfig};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::Store;
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::breaker::BreakerPhase;
use farewatch::upstream::retry::{Backoff, MAX_RETRY_AFTER};
use farewatch::upstream::{Limits, UpstreamError};
use secrecy::SecretString;

// ---------------------------------------------------------------------------
// Routes and the alerts they make due
// ---------------------------------------------------------------------------

/// Every route's maximum: above the fixture's GBP 312.46, so every priced
/// route is due an alert.
const MAX_MINOR: i64 = 350_00;

/// Tiny retry policy for real-time tests: 3 attempts, at most 5 ms apart.
const FAST_BACKOFF: Backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5), 3);

fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

fn depart() -> String {
    days_from_today(30)
}

/// Route number `i`'s origin: `QAA`, `QAB`, ... (distinct, three letters).
fn origin(i: usize) -> String {
    let letter = |k: usize| char::from(b'A' + u8::try_from(k % 26).unwrap());
    format!("Q{}{}", letter(i / 26), letter(i))
}

/// The inverse of [`origin`].
fn index_of(origin: &str) -> usize {
    let b = origin.as_bytes();
    usize::from(b[1] - b'A') * 26 + usize::from(b[2] - b'A')
}

/// Recipient number `i`: distinct valid UK mobiles (`+447911123400` on).
fn phone(i: usize) -> String {
    format!("+447911{:06}", 123_400 + i)
}

/// A one-way GBP route from `origin` to JFK, 30 days out.
fn route(line: usize, origin: &str, recipients: &[String]) -> Route {
    Route {
        line,
        label: None,
        origins: vec![Iata::parse(origin).unwrap()],
        destinations: vec![Iata::parse("JFK").unwrap()],
        depart: DateRange::parse(&depart()).unwrap(),
        return_dates: None,
        adults: 1,
        rule: Rule {
            max_price: Money::from_minor(MAX_MINOR, gbp()),
            min_drop: MinDrop::Zero,
            cooldown: None,
        },
        recipients: recipients
            .iter()
            .map(|p| Recipient::parse(p).unwrap())
            .collect(),
        active: true,
        namespace: None,
    }
}

/// `n` routes, route `i` from `origin(i)` to `phone(i)`.
fn routes(range: std::ops::Range<usize>) -> Vec<Route> {
    range
        .map(|i| route(i + 2, &origin(i), &[phone(i)]))
        .collect()
}

/// The exact SMS a route priced at the fixture's fare gets.
fn alert_body(origin: &str) -> String {
    alert_to_jfk(origin, &depart(), OFFERS_CHEAPEST_MINOR, MAX_MINOR)
}

/// (recipient, body) of every alert `routes` are due, sorted.
fn due<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Vec<(String, String)> {
    let mut due: Vec<(String, String)> = routes
        .into_iter()
        .flat_map(|r| {
            let body = alert_body(r.origins[0].as_str());
            r.recipients
                .iter()
                .map(move |p| (p.to_string(), body.clone()))
        })
        .collect();
    due.sort();
    due
}

/// The routes of `all` whose report line is `row`s in `rows`.
fn routes_at<'a>(all: &'a [Route], rows: &[usize]) -> Vec<&'a Route> {
    all.iter().filter(|r| rows.contains(&r.line)).collect()
}

/// What the fake accepted is exactly `due`: same pairs, none twice.
#[track_caller]
fn assert_delivered_exactly_once(accepted: Vec<(String, String)>, due: &[(String, String)]) {
    let mut counts: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for pair in &accepted {
        *counts.entry(pair).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "texted twice: {twice:?}");
    let mut accepted = accepted;
    accepted.sort();
    assert_eq!(
        accepted.len(),
        due.len(),
        "accepted {} messages for {} alerts due",
        accepted.len(),
        due.len()
    );
    assert_eq!(
        accepted, due,
        "accepted messages differ from the alerts due"
    );
}

/// The store's sent log agrees with what the provider accepted, id for id.
async fn assert_outbox_matches(store: &Store, fake: &TwilioFake) {
    let mut recorded: Vec<(String, String, String)> = store
        .sent_log(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.recipient, r.body, r.message_id))
        .collect();
    recorded.sort();
    let mut accepted: Vec<(String, String, String)> = fake
        .accepted_messages()
        .into_iter()
        .map(|m| (m.to, m.body, m.sid))
        .collect();
    accepted.sort();
    assert_eq!(recorded, accepted, "the outbox records every accepted SID");
    assert!(
        store.pending_intents().await.unwrap().is_empty(),
        "nothing left unsettled"
    );
}

#[track_caller]
fn assert_all(report: &CycleReport, status: RouteStatus, alert: AlertOutcome) {
    for r in &report.routes {
        assert_eq!(
            (r.status, r.alert),
            (status, alert),
            "row {}: {:?}",
            r.row,
            r.errors
        );
    }
}

// ---------------------------------------------------------------------------
// An engine wired to the fakes
// ---------------------------------------------------------------------------

fn limits(max_concurrency: usize, timeout: Duration) -> Limits {
    Limits {
        max_concurrency,
        rate_per_sec: 0.0,
        timeout,
    }
}

fn amadeus_pool(fake: &AmadeusFake, limits: Limits) -> Arc<FarePool> {
    let source = Amadeus::new(
        farewatch::upstream::http::build_client(),
        AmadeusConfig {
            base_url: fake.uri(),
            client_id: CLIENT_ID.to_owned(),
            client_secret: SecretString::from(CLIENT_SECRET),
            // The pool's own timeout is the one under test.
            timeout: Duration::from_secs(30),
        },
        None,
    );
    Arc::new(FarePool::with_policy(
        Arc::new(source),
        limits,
        FAST_BACKOFF,
        BreakerConfig::DEFAULT,
    ))
}

fn twilio(fake: &TwilioFake) -> Arc<dyn Notifier> {
    Arc::new(Twilio::new(
        farewatch::upstream::http::build_client(),
        TwilioConfig {
            base_url: fake.uri(),
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.to_owned().into(),
            sender: Sender::From("+15005550006".into()),
            timeout: Duration::from_secs(10),
        },
    ))
}

fn engine(
    fares: Arc<FarePool>,
    cache: QuoteCache,
    notifier: Arc<dyn Notifier>,
    store: Store,
) -> Arc<Engine> {
    Arc::new(Engine::new(EngineParts {
        fares: Arc::new(Failover::single(fares)),
        cache,
        notifier,
        notify_limits: NotifyLimits {
            max_concurrency: 4,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(15),
            // Real clock: settle unknown outcomes in milliseconds, not seconds.
            settle_delay: Duration::from_millis(5),
            settle_bound: Duration::from_secs(5),
        },
        store,
        dry_run: false,
    }))
}

fn memory_store() -> Store {
    Store::memory().unwrap()
}

fn memory_cache() -> QuoteCache {
    QuoteCache::memory(Duration::from_secs(600))
}

async fn cycle(engine: &Arc<Engine>, routes: &[Route]) -> CycleReport {
    engine
        .run_cycle(routes.to_vec(), Arc::new(NoProgress))
        .await
        .expect("the cycle runs")
}

// ---------------------------------------------------------------------------
// Lookups failing
// ---------------------------------------------------------------------------

/// 30% of the 40 search requests answer 500 (38189): the first attempt of
/// every route whose index ends in 0, 1 or 2, and the second attempt of
/// those ending in 0. With 3 attempts every row is priced in the same cycle.
#[tokio::test]
async fn thirty_percent_5xx_on_lookups_every_row_priced_and_texted_once() {
    let fails_for = |i: usize| match i % 10 {
        0 => 2,
        1 | 2 => 1,
        _ => 0,
    };
    let amadeus = AmadeusFake::start(move |s| {
        if s.attempt < fails_for(index_of(&s.origin)) {
            Reply::ServerError
        } else {
            Reply::Offers
        }
    })
    .await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    // 28 routes; every 7th has a second recipient.
    let rows: Vec<Route> = (0..28)
        .map(|i| {
            let mut to = vec![phone(i)];
            if i % 7 == 0 {
                to.push(phone(50 + i));
            }
            route(i + 2, &origin(i), &to)
        })
        .collect();

    let report = cycle(&engine, &rows).await;

    assert_eq!(amadeus.searches(), 40);
    assert_eq!(amadeus.count(Reply::ServerError), 12, "30% of 40 requests");
    assert_eq!(amadeus.tokens(), 1);
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    assert!(report
        .routes
        .iter()
        .all(|r| r.price_minor() == Some(OFFERS_CHEAPEST_MINOR) && r.errors.is_empty()));
    let s = &report.summary;
    assert_eq!(
        (s.routes, s.lookups, s.cache_hits, s.lookup_errors, s.below),
        (28, 40, 0, 0, 28)
    );
    assert_eq!((s.alerts_sent, s.alerts_failed), (32, 0));
    let p = &s.providers[0];
    assert_eq!(p.name, "amadeus");
    assert_eq!(
        (p.requests, p.retries, p.errors, p.throttled, p.skipped),
        (40, 12, 0, 0, 0)
    );
    assert_eq!(
        p.breaker,
        BreakerPhase::Closed,
        "every lookup succeeded in the end"
    );
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert_outbox_matches(&store, &twilio_fake).await;

    // The next cycle sends nothing more.
    let again = cycle(&engine, &rows).await;
    assert_all(&again, RouteStatus::Below, AlertOutcome::Suppressed);
    assert_eq!(
        (again.summary.alerts_sent, again.summary.alerts_failed),
        (0, 0)
    );
    assert_eq!(twilio_fake.posts(), 32);
}

/// A search that never answers costs at most `timeout × attempts`; the other
/// routes are priced and texted without waiting for it.
#[tokio::test]
async fn a_hung_lookup_is_bounded_by_the_pool_timeout_and_holds_nothing_back() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let hung = origin(0);
    let amadeus = {
        let hung = hung.clone();
        AmadeusFake::start(move |s| {
            if s.origin == hung {
                Reply::Hang(Duration::from_secs(60))
            } else {
                Reply::Offers
            }
        })
        .await
    };
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, TIMEOUT)),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..6);
    let finished = Arc::new(Finished::default());

    let started = std::time::Instant::now();
    let report = engine
        .run_cycle(rows.clone(), finished.clone())
        .await
        .unwrap();
    let elapsed = started.elapsed();

    let attempts = 3;
    assert!(
        elapsed >= TIMEOUT * attempts,
        "every attempt waited the full timeout: {elapsed:?}"
    );
    assert!(
        elapsed < TIMEOUT * attempts + Duration::from_millis(1500),
        "bounded by timeout × attempts (+ margin): {elapsed:?}"
    );
    let hung_searches = amadeus
        .log()
        .iter()
        .filter(|l| l.search.origin == hung)
        .count();
    assert_eq!(hung_searches, 3, "three attempts, then give up");

    let hung_row = &report.routes[0];
    assert_eq!(
        (hung_row.status, hung_row.alert),
        (RouteStatus::Error, AlertOutcome::None)
    );
    assert_eq!(hung_row.errors.len(), 1);
    let error = &hung_row.errors[0];
    assert!(
        error.contains("amadeus: ") && error.contains(&hung) && error.contains("timed out"),
        "{error}"
    );
    for r in &report.routes[1..] {
        assert_eq!(
            (r.status, r.alert),
            (RouteStatus::Below, AlertOutcome::Sent)
        );
    }
    let done = finished.order();
    assert_eq!(
        done.last(),
        Some(&hung_row.row),
        "the other routes were decided and texted before the hung one gave up: {done:?}"
    );
    let s = &report.summary;
    assert_eq!(
        (s.lookups, s.lookup_errors, s.alerts_sent, s.alerts_failed),
        (8, 1, 5, 0)
    );
    let p = &s.providers[0];
    assert_eq!((p.retries, p.errors, p.throttled), (2, 1, 0));
    assert_eq!(
        p.breaker,
        BreakerPhase::Closed,
        "one failure is below the threshold"
    );
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows[1..]));
    assert_outbox_matches(&store, &twilio_fake).await;
}

/// Records the order in which routes finish.
#[derive(Default)]
struct Finished(Mutex<Vec<(usize, tokio::time::Instant)>>);

impl Finished {
    fn order(&self) -> Vec<usize> {
        self.0.lock().unwrap().iter().map(|(row, _)| *row).collect()
    }
    fn at(&self) -> HashMap<usize, tokio::time::Instant> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

impl Progress for Finished {
    fn route_done(&self, report: &RouteReport) {
        self.0
            .lock()
            .unwrap()
            .push((report.row, tokio::time::Instant::now()));
    }
}

/// 429 38194 with `Retry-After: 1` on the first attempt of two routes: each
/// is retried no sooner than a second later, and nothing is lost.
#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_no_row_is_lost() {
    let amadeus = AmadeusFake::start(|s| {
        if index_of(&s.origin) < 2 && s.attempt == 0 {
            Reply::Throttle {
                retry_after: Some(1),
            }
        } else {
            Reply::Offers
        }
    })
    .await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..4);
    let report = cycle(&engine, &rows).await;

    let log = amadeus.log();
    for i in 0..2 {
        let tries: Vec<_> = log
            .iter()
            .filter(|l| l.search.origin == origin(i))
            .collect();
        assert_eq!(tries.len(), 2, "{}: throttled, then answered", origin(i));
        assert_eq!(
            tries[0].reply,
            Reply::Throttle {
                retry_after: Some(1)
            }
        );
        let waited = tries[1].at - tries[0].at;
        assert!(
            waited >= Duration::from_secs(1),
            "Retry-After honoured: retried after {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "and not much later: {waited:?}"
        );
    }
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    let s = &report.summary;
    assert_eq!((s.lookups, s.lookup_errors, s.alerts_sent), (6, 0, 4));
    let p = &s.providers[0];
    assert_eq!((p.throttled, p.retries, p.errors), (2, 2, 0));
    assert_eq!(p.breaker, BreakerPhase::Closed);
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert_outbox_matches(&store, &twilio_fake).await;
}

/// The access token expires after the fifth search: every later search
/// carrying it gets 401 38192. The source refreshes once (however many
/// lookups were in flight with the old token) and replays; no row fails.
#[tokio::test]
async fn a_token_expiring_mid_cycle_costs_one_token_request_and_no_row() {
    let amadeus = AmadeusFake::start(|s| {
        if s.token == "token-1" && s.n >= 5 {
            Reply::TokenExpired
        } else {
            Reply::Offers
        }
    })
    .await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(4, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..12);
    let report = cycle(&engine, &rows).await;

    assert_eq!(amadeus.tokens(), 2, "exactly one extra token request");
    let rejected = amadeus.count(Reply::TokenExpired);
    assert!(
        (1..=4).contains(&rejected),
        "at most one 401 per lookup in flight: {rejected}"
    );
    let log = amadeus.log();
    assert!(log
        .iter()
        .filter(|l| l.reply == Reply::TokenExpired)
        .all(|l| l.search.token == "token-1"));
    let answered: Vec<_> = log.iter().filter(|l| l.reply == Reply::Offers).collect();
    assert_eq!(answered.len(), 12, "each lookup answered once");
    assert_eq!(
        answered
            .iter()
            .filter(|l| l.search.token == "token-2")
            .count(),
        12 - 5,
        "everything after the expiry used the new token"
    );
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    let s = &report.summary;
    assert_eq!(
        (s.lookups, s.lookup_errors, s.alerts_sent, s.alerts_failed),
        (12, 0, 12, 0),
        "the replay happens inside one pool request"
    );
    let p = &s.providers[0];
    assert_eq!(
        (p.retries, p.errors, p.breaker),
        (0, 0, BreakerPhase::Closed)
    );
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert_outbox_matches(&store, &twilio_fake).await;
}

/// 429 38195 from the fourth search on: the quota is gone. The breaker opens
/// at once, the remaining lookups are skipped (never sent), reported as
/// errors naming the provider, and nobody is texted for them.
#[tokio::test]
async fn quota_exhausted_opens_the_breaker_and_skips_the_remaining_lookups() {
    let amadeus = AmadeusFake::start(|s| {
        if s.n >= 3 {
            Reply::QuotaExhausted
        } else {
            Reply::Offers
        }
    })
    .await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    // One lookup at a time, so exactly one request meets the exhausted quota.
    let engine = engine(
        amadeus_pool(&amadeus, limits(1, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..10);
    let report = cycle(&engine, &rows).await;

    assert_eq!(amadeus.searches(), 4, "nothing sent after the quota answer");
    let priced: Vec<usize> = report
        .routes
        .iter()
        .filter(|r| r.status == RouteStatus::Below)
        .map(|r| r.row)
        .collect();
    assert_eq!(priced.len(), 3);
    for r in &report.routes {
        if priced.contains(&r.row) {
            assert_eq!(r.alert, AlertOutcome::Sent);
        } else {
            assert_eq!(
                (r.status, r.alert, r.errors.len()),
                (RouteStatus::Error, AlertOutcome::None, 1),
                "{:?}",
                r.errors
            );
            assert!(r.errors[0].contains("amadeus: "), "{:?}", r.errors);
        }
    }
    let errors: Vec<&String> = report.routes.iter().flat_map(|r| &r.errors).collect();
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.contains("quota exhausted"))
            .count(),
        1,
        "{errors:#?}"
    );
    assert_eq!(
        errors.iter().filter(|e| e.contains("skipped")).count(),
        6,
        "{errors:#?}"
    );
    let s = &report.summary;
    assert_eq!(
        (s.lookups, s.lookup_errors, s.alerts_sent, s.alerts_failed),
        (4, 7, 3, 0)
    );
    let p = &s.providers[0];
    assert_eq!(p.breaker, BreakerPhase::Open);
    assert_eq!((p.skipped, p.errors, p.retries), (6, 1, 0));
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(routes_at(&rows, &priced)));
    assert_outbox_matches(&store, &twilio_fake).await;

    // The next cycle sends Amadeus nothing: the circuit stays open until the
    // quota renews. The priced routes come from the cache, already texted.
    let next = cycle(&engine, &rows).await;
    assert_eq!(amadeus.searches(), 4);
    let s = &next.summary;
    assert_eq!(
        (s.lookups, s.cache_hits, s.lookup_errors, s.alerts_sent),
        (0, 3, 7, 0)
    );
    assert_eq!(s.providers[0].breaker, BreakerPhase::Open);
    assert_eq!(twilio_fake.posts(), 3);

    // Truthful reasons: a lookup skipped because the quota is gone must say
    // so (the circuit stays open until the quota renews, weeks perhaps), not
    // that the provider "has failed repeatedly" after a single answer.
    for e in next.routes.iter().flat_map(|r| &r.errors) {
        assert!(
            e.contains("skipped") && e.contains("quota"),
            "a skipped lookup does not say the quota is exhausted: {e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Sends failing
// ---------------------------------------------------------------------------

/// Of the first ten sends, three are accepted but answered 500 (lost
/// acknowledgements) and one is refused with 429 20429 (never processed, so
/// retried at once within the send). Within the same cycle the outbox
/// reconciles the three through the message list: found and recorded, not
/// sent again; nobody gets a message twice and nothing waits for the next
/// cycle.
#[tokio::test]
async fn thirty_percent_lost_acknowledgements_are_reconciled_never_resent() {
    let twilio_fake = TwilioFake::start(|n| match (n < 10, n % 10) {
        (true, 0..=2) => Post::LoseAck,
        (true, 3) => Post::Throttle,
        _ => Post::Accept,
    })
    .await;
    let amadeus = AmadeusFake::healthy().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..10);

    let first = cycle(&engine, &rows).await;
    assert_eq!(
        twilio_fake.posts(),
        11,
        "the throttled send was retried at once, the lost acks never"
    );
    assert_eq!(
        twilio_fake.lists(),
        3,
        "each unconfirmed send was looked up once"
    );
    let s = &first.summary;
    assert_eq!(
        (s.lookup_errors, s.below, s.alerts_sent, s.alerts_failed),
        (0, 10, 10, 0)
    );
    assert_all(&first, RouteStatus::Below, AlertOutcome::Sent);
    assert!(
        first.routes.iter().all(|r| r.errors.is_empty()),
        "the throttle and the lost acks were absorbed: {:#?}",
        first.routes
    );
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert_outbox_matches(&store, &twilio_fake).await;

    let second = cycle(&engine, &rows).await;
    assert_all(&second, RouteStatus::Below, AlertOutcome::Suppressed);
    assert_eq!((twilio_fake.posts(), twilio_fake.lists()), (11, 3));
}

/// The measured case, "every due alert delivered in the same run":
/// 400 routes due, and of Twilio's answers to POSTs 20% are a plain 500
/// (nothing accepted) and 20% a lost acknowledgement (accepted, then 500),
/// by POST index. One cycle reconciles every ambiguous send within the run
/// (list, match the body, send again only if not found), so every recipient
/// gets exactly one message, the report counts every alert sent, and
/// nothing is left for the next cycle.
#[tokio::test]
async fn twenty_percent_5xx_and_twenty_percent_lost_acks_every_alert_delivered_in_one_run() {
    let twilio_fake = TwilioFake::start(|n| match n % 10 {
        1 | 6 => Post::ServerError,
        3 | 8 => Post::LoseAck,
        _ => Post::Accept,
    })
    .await;
    let amadeus = AmadeusFake::healthy().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        memory_cache(),
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..400);
    let due = due(&rows);

    let report = cycle(&engine, &rows).await;

    let accepted = twilio_fake.accepted();
    let delivered = accepted
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let s = &report.summary;
    eprintln!(
        "delivered {delivered} of {} due in one run; alerts_sent {}, alerts_failed {}, \
         {} POSTs, {} list calls",
        due.len(),
        s.alerts_sent,
        s.alerts_failed,
        twilio_fake.posts(),
        twilio_fake.lists()
    );
    assert_delivered_exactly_once(accepted, &due);
    assert_eq!(
        (s.lookup_errors, s.below, s.alerts_sent, s.alerts_failed),
        (0, 400, 400, 0)
    );
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    assert_outbox_matches(&store, &twilio_fake).await;
}

// ---------------------------------------------------------------------------
// The cache failing
// ---------------------------------------------------------------------------

/// A real `redis-server` is killed while the provider is answering: the
/// cycle completes (cache writes are skipped), the next cycle reads nothing
/// from the dead cache and asks the provider, and once Redis is back on the
/// same port the connection manager reconnects and quotes are cached again.
#[tokio::test]
async fn redis_killed_mid_cycle_falls_through_to_the_provider_and_recovers() {
    let redis = Arc::new(Mutex::new(RedisServer::start()));
    let url = redis.lock().unwrap().url();
    let cache = QuoteCache::redis(&url, Duration::from_secs(600))
        .await
        .unwrap();
    let kill_at = Arc::new(AtomicU64::new(u64::MAX));
    let amadeus = {
        let (redis, kill_at) = (redis.clone(), kill_at.clone());
        AmadeusFake::start(move |s| {
            if s.n == kill_at.load(Ordering::SeqCst) {
                // Dead (and reaped) before this answer leaves.
                redis.lock().unwrap().kill();
            }
            Reply::Offers
        })
        .await
    };
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        cache,
        twilio(&twilio_fake),
        store.clone(),
    );
    let old = routes(0..4);
    let all = routes(0..8);

    let first = cycle(&engine, &old).await;
    assert_eq!((first.summary.lookups, first.summary.cache_hits), (4, 0));
    assert_eq!(first.summary.alerts_sent, 4);

    // Cycle 2: the old routes come from Redis; Redis dies as the first new
    // lookup is answered, so none of the new answers can be cached.
    kill_at.store(4, Ordering::SeqCst);
    let second = cycle(&engine, &all).await;
    assert!(!redis.lock().unwrap().is_running());
    let s = &second.summary;
    assert_eq!((s.cache_hits, s.lookups, s.lookup_errors), (4, 4, 0));
    assert_eq!((s.alerts_sent, s.alerts_failed), (4, 0));
    assert!(second.routes.iter().all(|r| r.status == RouteStatus::Below));

    // Cycle 3: Redis is down: every lookup is a miss, answered by the provider.
    let started = std::time::Instant::now();
    let third = cycle(&engine, &all).await;
    let down = started.elapsed();
    let s = &third.summary;
    assert_eq!(
        (
            s.cache_hits,
            s.lookups,
            s.lookup_errors,
            s.alerts_sent,
            s.alerts_failed
        ),
        (0, 8, 0, 0, 0),
        "misses, not errors"
    );
    assert_all(&third, RouteStatus::Below, AlertOutcome::Suppressed);
    assert!(
        down < Duration::from_secs(10),
        "a dead cache does not stall the cycle: {down:?}"
    );

    // Redis comes back, empty, on the same port.
    redis.lock().unwrap().restart();
    let fourth = cycle(&engine, &all).await;
    assert_eq!(
        (
            fourth.summary.cache_hits,
            fourth.summary.lookups,
            fourth.summary.lookup_errors
        ),
        (0, 8, 0)
    );
    let fifth = cycle(&engine, &all).await;
    assert_eq!(
        (fifth.summary.cache_hits, fifth.summary.lookups),
        (8, 0),
        "the connection manager reconnected and the fourth cycle's quotes were cached"
    );
    assert_all(&fifth, RouteStatus::Below, AlertOutcome::Suppressed);
    assert_eq!(amadeus.searches(), 4 + 4 + 8 + 8);
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&all));
    assert_outbox_matches(&store, &twilio_fake).await;
}

/// Redis dies between runs and stays dead. The cache's contract is that a
/// run-time failure is a miss or a skipped write and that "a slow cache is
/// worse than none" (`REDIS_RESPONSE_TIMEOUT`), so a dead Redis may cost a
/// cycle about one command timeout, not one per lookup. Lookups one at a
/// time (as with `AMADEUS_MAX_CONCURRENCY=1`) make the per-lookup cost
/// visible: every cache write is awaited inside its lookup.
#[tokio::test]
async fn a_dead_redis_costs_a_cycle_at_most_one_response_timeout() {
    let mut redis = RedisServer::start();
    let cache = QuoteCache::redis(&redis.url(), Duration::from_secs(600))
        .await
        .unwrap();
    redis.kill();
    let amadeus = AmadeusFake::healthy().await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(1, Duration::from_secs(5))),
        cache,
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..3);
    let started = std::time::Instant::now();
    let report = cycle(&engine, &rows).await;
    let elapsed = started.elapsed();

    let s = &report.summary;
    assert_eq!(
        (
            s.cache_hits,
            s.lookups,
            s.lookup_errors,
            s.alerts_sent,
            s.alerts_failed
        ),
        (0, 3, 0, 3, 0)
    );
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert!(
        elapsed < farewatch::cache::REDIS_RESPONSE_TIMEOUT,
        "a dead Redis made a 3-lookup cycle take {elapsed:?}: each lookup waited for \
         its cache write to fail (the connection manager's reconnect attempts)"
    );
}

/// `FLUSHALL` between cycles: the next cycle's lookups are misses that go
/// to the provider, not errors; nothing is texted again.
#[tokio::test]
async fn redis_flushed_mid_run_means_misses_not_errors() {
    let redis = RedisServer::start();
    let cache = QuoteCache::redis(&redis.url(), Duration::from_secs(600))
        .await
        .unwrap();
    let amadeus = AmadeusFake::healthy().await;
    let twilio_fake = TwilioFake::accepting().await;
    let store = memory_store();
    let engine = engine(
        amadeus_pool(&amadeus, limits(8, Duration::from_secs(5))),
        cache,
        twilio(&twilio_fake),
        store.clone(),
    );
    let rows = routes(0..4);
    let first = cycle(&engine, &rows).await;
    assert_eq!((first.summary.lookups, first.summary.cache_hits), (4, 0));
    let second = cycle(&engine, &rows).await;
    assert_eq!((second.summary.lookups, second.summary.cache_hits), (0, 4));

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    let third = cycle(&engine, &rows).await;
    let s = &third.summary;
    assert_eq!(
        (
            s.lookups,
            s.cache_hits,
            s.lookup_errors,
            s.alerts_sent,
            s.alerts_failed
        ),
        (4, 0, 0, 0, 0)
    );
    assert_all(&third, RouteStatus::Below, AlertOutcome::Suppressed);
    let fourth = cycle(&engine, &rows).await;
    assert_eq!((fourth.summary.lookups, fourth.summary.cache_hits), (0, 4));
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
    assert_outbox_matches(&store, &twilio_fake).await;
}

// ---------------------------------------------------------------------------
// Timing semantics on a paused clock, with a scripted provider
// ---------------------------------------------------------------------------

/// `script(request number, key, attempt for that key)`: the error to answer
/// with, or `None` for the fixture's price.
type Script = Box<dyn Fn(u64, &LookupKey, u32) -> Option<UpstreamError> + Send + Sync>;

/// A provider at the trait boundary that answers the fixture's price, except
/// where its [`Script`] says otherwise.
struct Scripted {
    requests: AtomicU64,
    attempts: Mutex<HashMap<LookupKey, u32>>,
    script: Script,
}

impl Scripted {
    fn new(
        script: impl Fn(u64, &LookupKey, u32) -> Option<UpstreamError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            requests: AtomicU64::new(0),
            attempts: Mutex::new(HashMap::new()),
            script: Box::new(script),
        }
    }
}

#[async_trait]
impl FareSource for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn default_limits(&self) -> Limits {
        limits(50, Duration::from_secs(120))
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let slot = attempts.entry(*key).or_default();
            *slot += 1;
            *slot - 1
        };
        match (self.script)(n, key, attempt) {
            Some(error) => Err(error),
            None => Ok(Some(Quote {
                price: Money::from_minor(OFFERS_CHEAPEST_MINOR, key.currency),
                provider: "scripted".into(),
                fetched_at: jiff::Timestamp::now(),
                cached: false,
                found_at: None,
                link: None,
                insights: None,
                itinerary: None,
            })),
        }
    }
}

/// A notifier at the trait boundary that accepts and records every message.
#[derive(Default)]
struct Recording(Mutex<Vec<(String, String)>>);

#[async_trait]
impl Notifier for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let mut sent = self.0.lock().unwrap();
        sent.push((to.to_string(), body.to_owned()));
        Ok(Delivery {
            id: format!("R{}", sent.len()),
            segments: Some(1),
        })
    }
}

fn scripted_engine(
    source: Scripted,
    limits: Limits,
    backoff: Backoff,
    notifier: Arc<Recording>,
) -> Arc<Engine> {
    let pool = FarePool::with_policy(Arc::new(source), limits, backoff, BreakerConfig::DEFAULT);
    engine(Arc::new(pool), memory_cache(), notifier, memory_store())
}

/// `Retry-After` is waited exactly, and capped at [`MAX_RETRY_AFTER`]: a
/// provider asking for an hour gets a minute.
#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_exactly_and_capped() {
    for (origin, asked, waited) in [
        ("RTA", Duration::from_secs(7), Duration::from_secs(7)),
        ("CAP", Duration::from_secs(3600), MAX_RETRY_AFTER),
    ] {
        let source = Scripted::new(move |_, _, attempt| {
            (attempt == 0).then_some(UpstreamError::RateLimited {
                retry_after: Some(asked),
            })
        });
        let sent = Arc::new(Recording::default());
        let engine = scripted_engine(
            source,
            limits(50, Duration::from_secs(120)),
            Backoff::default(),
            sent.clone(),
        );
        let rows = vec![route(3, origin, &[phone(1)])];
        let start = tokio::time::Instant::now();
        let report = cycle(&engine, &rows).await;

        assert_eq!(tokio::time::Instant::now() - start, waited, "{origin}");
        assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
        let s = &report.summary;
        assert_eq!((s.lookups, s.lookup_errors, s.alerts_sent), (2, 0, 1));
        let p = &s.providers[0];
        assert_eq!((p.throttled, p.retries, p.errors), (1, 1, 0));
        assert_delivered_exactly_once(sent.0.lock().unwrap().clone(), &due(&rows));
    }
}

/// N lookups at R requests a second take (N-1)/R seconds (the first starts
/// at once); a 429 with `Retry-After` in the middle pauses the provider for
/// that long (it is the provider's own pace) and loses nothing.
#[tokio::test(start_paused = true)]
async fn n_routes_at_r_per_second_take_n_over_r_and_a_throttle_loses_no_row() {
    let rate = Limits {
        max_concurrency: 50,
        rate_per_sec: 10.0,
        timeout: Duration::from_secs(10),
    };
    let rows = routes(0..20);

    // Undisturbed: 20 starts, 100 ms apart.
    let sent = Arc::new(Recording::default());
    let engine = scripted_engine(
        Scripted::new(|_, _, _| None),
        rate,
        Backoff::default(),
        sent.clone(),
    );
    let start = tokio::time::Instant::now();
    let report = cycle(&engine, &rows).await;
    assert_eq!(
        tokio::time::Instant::now() - start,
        Duration::from_millis(1900)
    );
    assert_eq!(report.summary.alerts_sent, 20);
    assert_delivered_exactly_once(sent.0.lock().unwrap().clone(), &due(&rows));

    // The sixth request (at 0.5 s) is refused with `Retry-After: 2`: no
    // request starts until 2.5 s, then the rest go out at the configured
    // rate, the refused lookup last (it queues again behind the others).
    let sent = Arc::new(Recording::default());
    let engine = scripted_engine(
        Scripted::new(|n, _, _| {
            (n == 5).then_some(UpstreamError::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
            })
        }),
        rate,
        Backoff::default(),
        sent.clone(),
    );
    let finished = Arc::new(Finished::default());
    let start = tokio::time::Instant::now();
    let report = engine
        .run_cycle(rows.clone(), finished.clone())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::Instant::now() - start,
        Duration::from_millis(3900)
    );
    let mut times: Vec<Duration> = finished.at().values().map(|t| *t - start).collect();
    times.sort();
    let expected: Vec<Duration> = (0..5u64)
        .map(|i| Duration::from_millis(100 * i))
        .chain((0..15u64).map(|i| Duration::from_millis(2500 + 100 * i)))
        .collect();
    assert_eq!(times, expected);
    assert_all(&report, RouteStatus::Below, AlertOutcome::Sent);
    let s = &report.summary;
    assert_eq!((s.lookups, s.lookup_errors, s.alerts_sent), (21, 0, 20));
    assert_eq!((s.providers[0].throttled, s.providers[0].retries), (1, 1));
    assert_delivered_exactly_once(sent.0.lock().unwrap().clone(), &due(&rows));
}

// ---------------------------------------------------------------------------
// The binary: exit codes and the JSON report
// ---------------------------------------------------------------------------

fn sheet_rows(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{},JFK,{},350,GBP,{},", origin(i), depart(), phone(i)))
        .collect()
}

/// A lost acknowledgement is reconciled within the run (`TWILIO_SETTLE_DELAY`
/// shortened for the test): found in Twilio's list, recorded, not sent
/// again, and the run exits 0. The next run sends nothing.
#[tokio::test]
async fn the_binary_reconciles_a_lost_acknowledgement_within_the_run_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = AmadeusFake::healthy().await;
    let twilio_fake =
        TwilioFake::start(|n| if n == 0 { Post::LoseAck } else { Post::Accept }).await;
    write_sheet(dir.path(), &sheet_rows(0..3));
    let check = || {
        let mut cmd = farewatch(dir.path(), &amadeus.uri(), &twilio_fake.uri());
        cmd.env("TWILIO_SETTLE_DELAY", "5ms")
            .env("TWILIO_SETTLE_BOUND", "5s")
            .args(["check", "--format", "json", "--no-progress"]);
        cmd
    };

    let first = run(check()).await;
    assert_eq!(first.code, 0, "reconciled within the run: {}", first.stderr);
    let json = first.json();
    let summary = &json["summary"];
    assert_eq!(summary["alerts_sent"], 3);
    assert_eq!(summary["alerts_failed"], 0);
    assert_eq!(summary["lookup_errors"], 0);
    for r in json["routes"].as_array().unwrap() {
        assert_eq!(r["alert"], "sent", "{r}");
    }
    assert_eq!((twilio_fake.posts(), twilio_fake.lists()), (3, 1));

    let second = run(check()).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let json = second.json();
    assert_eq!(json["summary"]["alerts_sent"], 0);
    assert_eq!(json["summary"]["alerts_failed"], 0);
    for r in json["routes"].as_array().unwrap() {
        assert_eq!(r["alert"], "suppressed", "{r}");
    }
    assert_eq!((twilio_fake.posts(), twilio_fake.lists()), (3, 1));
    let rows = routes(0..3);
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(&rows));
}

/// An exhausted quota is a partial run (exit 2) whose JSON shows the open
/// circuit and the skipped lookups.
#[tokio::test]
async fn the_binary_exits_2_with_the_circuit_open_when_the_quota_is_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = AmadeusFake::start(|s| {
        if s.n >= 1 {
            Reply::QuotaExhausted
        } else {
            Reply::Offers
        }
    })
    .await;
    let twilio_fake = TwilioFake::accepting().await;
    write_sheet(dir.path(), &sheet_rows(0..4));
    let mut cmd = farewatch(dir.path(), &amadeus.uri(), &twilio_fake.uri());
    cmd.env("AMADEUS_MAX_CONCURRENCY", "1")
        .args(["check", "--format", "json", "--no-progress"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let json = run.json();
    let summary = &json["summary"];
    assert_eq!(summary["lookups"], 2);
    assert_eq!(summary["lookup_errors"], 3);
    assert_eq!(summary["alerts_sent"], 1);
    assert_eq!(summary["alerts_failed"], 0);
    let provider = &summary["providers"][0];
    assert_eq!(provider["name"], "amadeus");
    assert_eq!(provider["breaker"], "open");
    assert_eq!(provider["skipped"], 2);
    assert_eq!(provider["retries"], 0);
    let routes_json = json["routes"].as_array().unwrap();
    let sent_rows: Vec<usize> = routes_json
        .iter()
        .filter(|r| r["alert"] == "sent")
        .map(|r| usize::try_from(r["row"].as_u64().unwrap()).unwrap())
        .collect();
    assert_eq!(sent_rows.len(), 1);
    for r in routes_json.iter().filter(|r| r["alert"] != "sent") {
        assert_eq!(r["status"], "error");
        assert!(
            r["errors"][0].as_str().unwrap().contains("amadeus: "),
            "{r}"
        );
    }
    assert_eq!(amadeus.searches(), 2);
    let rows = routes(0..4);
    assert_delivered_exactly_once(twilio_fake.accepted(), &due(routes_at(&rows, &sent_rows)));
}
