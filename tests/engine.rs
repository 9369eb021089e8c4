//! The cycle engine against real stores and fake providers: early dispatch,
//! pacing, the Redis cache across cycles, and the outbox's per-recipient
//! exactly-once delivery.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::db::TestDb;
use common::*;
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, LookupKey, Money, Quote, Recipient};
use farewatch::engine::{
    AlertOutcome, Engine, EngineParts, NoProgress, NotifyLimits, Progress, RouteReport, RouteStatus,
};
use farewatch::fare::demo::DemoSource;
use farewatch::fare::failover::Failover;
use farewatch::fare::FarePool;
use farewatch::fare::FareSource;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::notify::twilio::{Sender, Twilio, TwilioConfig};
use farewatch::notify::Notifier;
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::Store;
use farewatch::upstream::{Limits, UpstreamError};
use tokio::time::Instant;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn route(line: usize, origin: &str, max_minor: i64, recipients: &[&str]) -> Route {
    Route {
        line,
        label: None,
        origins: vec![Iata::parse(origin).unwrap()],
        destinations: vec![Iata::parse("JFK").unwrap()],
        depart: DateRange::parse(&days_from_today(30)).unwrap(),
        return_dates: None,
        adults: 1,
        rule: Rule {
            max_price: Money::from_minor(max_minor, Currency::EUR),
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

fn engine(
    source: Arc<dyn FareSource>,
    limits: Limits,
    cache: QuoteCache,
    notifier: Arc<dyn Notifier>,
    store: Store,
) -> Arc<Engine> {
    Arc::new(Engine::new(EngineParts {
        fares: Arc::new(Failover::single(Arc::new(FarePool::new(source, limits)))),
        cache,
        notifier,
        notify_limits: NotifyLimits {
            max_concurrency: 4,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
            // Real clock: settle unknown outcomes in milliseconds, not seconds.
            settle_delay: Duration::from_millis(5),
            settle_bound: Duration::from_secs(5),
        },
        store,
        dry_run: false,
    }))
}

fn console() -> Arc<dyn Notifier> {
    Arc::new(ConsoleNotifier::new(ConsoleTarget::Stderr))
}

fn memory_store() -> Store {
    Store::memory().unwrap()
}

/// A provider whose latency depends on the origin: a stand-in for a slow upstream.
struct SlowFor {
    latency: HashMap<&'static str, Duration>,
}

#[async_trait]
impl FareSource for SlowFor {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: 50,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(120),
        }
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        tokio::time::sleep(self.latency[key.origin.as_str()]).await;
        Ok(Some(Quote {
            price: Money::from_minor(100_00, key.currency),
            provider: "slow".into(),
            fetched_at: jiff::Timestamp::now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        }))
    }
}

/// Records when each route was finished.
#[derive(Default)]
struct Finished(Mutex<Vec<(usize, Instant)>>);
impl Progress for Finished {
    fn route_done(&self, report: &RouteReport) {
        self.0.lock().unwrap().push((report.row, Instant::now()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_route_is_decided_and_alerted_without_waiting_for_the_slowest() {
    let source = SlowFor {
        latency: HashMap::from([
            ("AAA", Duration::from_secs(60)),
            ("BBB", Duration::from_secs(1)),
        ]),
    };
    let limits = source.default_limits();
    let engine = engine(
        Arc::new(source),
        limits,
        QuoteCache::memory(Duration::from_secs(60)),
        console(),
        memory_store(),
    );
    let finished = Arc::new(Finished::default());
    let start = Instant::now();
    let report = engine
        .run_cycle(
            vec![
                route(2, "AAA", 200_00, &["+447911123456"]),
                route(3, "BBB", 200_00, &["+447911123456"]),
            ],
            finished.clone(),
        )
        .await
        .unwrap();
    let done: HashMap<usize, Duration> = finished
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(row, at)| (*row, *at - start))
        .collect();
    assert_eq!(
        done[&3],
        Duration::from_secs(1),
        "the fast route finished (alert sent) at its own latency"
    );
    assert_eq!(done[&2], Duration::from_secs(60));
    assert!(report.routes.iter().all(|r| r.alert == AlertOutcome::Sent));
    assert_eq!(report.routes[0].row, 2, "the report stays in sheet order");
}

#[tokio::test(start_paused = true)]
async fn the_pool_paces_lookups_at_the_configured_rate() {
    let limits = Limits {
        max_concurrency: 50,
        rate_per_sec: 10.0,
        timeout: Duration::from_secs(10),
    };
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        limits,
        QuoteCache::memory(Duration::from_secs(60)),
        console(),
        memory_store(),
    );
    // 5 origins x 10 days = 50 unique lookups in one row.
    let mut r = route(2, "LHR", 1, &["+447911123456"]);
    r.origins = ["LHR", "LGW", "STN", "LTN", "LCY"]
        .iter()
        .map(|c| Iata::parse(c).unwrap())
        .collect();
    r.depart =
        DateRange::parse(&format!("{}..{}", days_from_today(30), days_from_today(39))).unwrap();
    let start = Instant::now();
    let report = engine
        .run_cycle(vec![r], Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(report.summary.lookups, 50);
    // Starts at 0, 100 ms, ..., 4.9 s.
    assert_eq!(Instant::now() - start, Duration::from_millis(4900));
}

#[tokio::test]
async fn a_second_cycle_is_answered_from_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!("farewatch-test-{}", std::process::id());
    let cache = QuoteCache::redis(&url, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("these tests need Redis at {url}: {e}"))
        .with_prefix(prefix);
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        cache,
        console(),
        memory_store(),
    );
    let routes = || {
        vec![
            route(2, "LHR", 1, &["+447911123456"]),
            route(3, "CDG", 1, &["+447911123456"]),
        ]
    };
    let first = engine
        .run_cycle(routes(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!((first.summary.lookups, first.summary.cache_hits), (2, 0));
    let second = engine
        .run_cycle(routes(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!((second.summary.lookups, second.summary.cache_hits), (0, 2));
    assert_eq!(
        first.routes[0].price_minor(),
        second.routes[0].price_minor()
    );
}

async fn twilio_for(server: &MockServer) -> Arc<dyn Notifier> {
    Arc::new(Twilio::new(
        farewatch::upstream::http::build_client(),
        TwilioConfig {
            base_url: server.uri(),
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.to_owned().into(),
            sender: Sender::From("+15005550006".into()),
            timeout: Duration::from_secs(5),
        },
    ))
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

/// A 503 leaves one recipient's send unknown; within the same cycle the
/// outbox looks it up, finds nothing, and sends it again. The other
/// recipient is never texted twice.
#[tokio::test]
async fn a_failed_recipient_is_retried_within_the_cycle_without_texting_the_others_again() {
    let twilio = MockServer::start().await;
    let created = fixture("notify/twilio-message-created.json");
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("To=%2B447911123456"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(created.clone(), "application/json"))
        .mount(&twilio)
        .await;
    // The second recipient's first attempt fails on Twilio's side.
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("To=%2B61412345678"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("To=%2B61412345678"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(created, "application/json"))
        .mount(&twilio)
        .await;
    // Reconciliation (after the settle delay) before the retry: Twilio has
    // no such message.
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"messages": [], "next_page_uri": null})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_secs(1)),
        twilio_for(&twilio).await,
        store.clone(),
    );
    let rows = || {
        vec![route(
            2,
            "LHR",
            10_000_00,
            &["+447911123456", "+61412345678"],
        )]
    };

    let first = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(
        first.routes[0].alert,
        AlertOutcome::Sent,
        "{:?}",
        first.routes[0].errors
    );
    assert_eq!(
        (first.summary.alerts_sent, first.summary.alerts_failed),
        (2, 0),
        "both recipients' messages in the one cycle"
    );
    assert!(store.pending_intents().await.unwrap().is_empty());

    let second = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(
        second.routes[0].alert,
        AlertOutcome::Suppressed,
        "the drop is complete"
    );

    let to: Vec<String> = twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .map(|r| field(&form(r), "To").unwrap().to_owned())
        .collect();
    assert_eq!(
        to.iter().filter(|t| *t == "+447911123456").count(),
        1,
        "no recipient texted twice: {to:?}"
    );
    assert_eq!(
        to.iter().filter(|t| *t == "+61412345678").count(),
        2,
        "one unknown outcome, one resend after finding nothing: {to:?}"
    );
    assert_eq!(store.sent_log(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_permanent_rejection_is_recorded_and_not_retried() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("notify/twilio-error-21211.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_secs(1)),
        twilio_for(&twilio).await,
        memory_store(),
    );
    let rows = || vec![route(2, "LHR", 10_000_00, &["+447911123456"])];
    let first = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(first.routes[0].alert, AlertOutcome::Failed);
    assert!(
        first.routes[0].errors[0].contains("21211"),
        "{:?}",
        first.routes[0].errors
    );
    let second = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(second.routes[0].status, RouteStatus::Below);
    assert_eq!(second.routes[0].alert, AlertOutcome::Suppressed);
}

#[tokio::test]
async fn a_rise_above_rearms_and_the_next_drop_alerts_again() {
    // The demo price for a key is fixed, so move the threshold around it instead.
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_millis(1)),
        console(),
        store.clone(),
    );
    let below = route(2, "LHR", 10_000_00, &["+447911123456"]);
    let mut above = below.clone();
    above.rule.max_price = Money::from_minor(1, Currency::EUR);
    let outcomes: Vec<(RouteStatus, AlertOutcome)> = {
        let mut v = Vec::new();
        for r in [&below, &below, &above, &below] {
            let report = engine
                .run_cycle(vec![r.clone()], Arc::new(NoProgress))
                .await
                .unwrap();
            v.push((report.routes[0].status, report.routes[0].alert));
        }
        v
    };
    assert_eq!(
        outcomes,
        [
            (RouteStatus::Below, AlertOutcome::Sent),
            (RouteStatus::Below, AlertOutcome::Suppressed),
            (RouteStatus::Above, AlertOutcome::None),
            (RouteStatus::Below, AlertOutcome::Sent),
        ]
    );
}

/// A fare that is whatever the test last set, in the route's currency.
struct Moving(std::sync::atomic::AtomicI64);

#[async_trait]
impl FareSource for Moving {
    fn name(&self) -> &'static str {
        "moving"
    }
    fn default_limits(&self) -> Limits {
        Cheap.default_limits()
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let minor = self.0.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Some(Quote {
            price: Money::from_minor(minor, key.currency),
            ..Cheap.cheapest(key).await?.unwrap()
        }))
    }
}

/// A 6-hour cooldown, end to end on the engine's one clock: a deeper drop
/// five hours after an alert is held back; six hours after, it is sent.
#[tokio::test(start_paused = true)]
async fn a_cooldown_holds_a_deeper_drop_until_it_has_passed() {
    let fare = Arc::new(Moving(std::sync::atomic::AtomicI64::new(300_00)));
    // The engine's clock moves with tokio's paused one.
    let engine = engine(
        fare.clone(),
        Cheap.default_limits(),
        QuoteCache::off(),
        console(),
        memory_store(),
    );
    let mut row = route(2, "LHR", 350_00, &["+447911123456"]);
    row.rule.cooldown = Some(jiff::SignedDuration::from_hours(6));
    let outcome = || {
        let (engine, row) = (engine.clone(), row.clone());
        async move {
            let report = engine
                .run_cycle(vec![row], Arc::new(NoProgress))
                .await
                .unwrap();
            (report.routes[0].price_minor(), report.routes[0].alert)
        }
    };
    assert_eq!(outcome().await, (Some(300_00), AlertOutcome::Sent));
    fare.0.store(250_00, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(5 * 3600)).await;
    assert_eq!(
        outcome().await,
        (Some(250_00), AlertOutcome::Suppressed),
        "5 h: cooling down"
    );
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(
        outcome().await,
        (Some(250_00), AlertOutcome::Sent),
        "6 h: the deeper drop is sent"
    );
}

/// Twilio accepts the message but answers 500, and the message list cannot
/// be read during that cycle (404 here), so the send stays unknown: it is
/// left pending, never resent blindly, and the next cycle finds it.
/// (`tests/faults.rs` covers the usual case, settled within the cycle.)
#[tokio::test]
async fn a_lost_acknowledgement_is_reconciled_and_never_sent_twice() {
    let twilio = MockServer::start().await;
    // Twilio accepts the message, but the client sees a 500.
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream error"))
        .expect(1)
        .mount(&twilio)
        .await;
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_secs(1)),
        twilio_for(&twilio).await,
        store.clone(),
    );
    let rows = || vec![route(2, "LHR", 10_000_00, &["+447911123456"])];
    let first = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(first.routes[0].alert, AlertOutcome::Failed);
    assert!(
        first.routes[0].errors[0].contains("still unknown after reconciling"),
        "{:?}",
        first.routes[0].errors
    );
    let pending = store.pending_intents().await.unwrap();
    assert_eq!(pending.len(), 1, "the unconfirmed send stays pending");

    // The next cycle lists the account's messages and finds it.
    let mut listed: serde_json::Value =
        serde_json::from_str(&fixture("notify/twilio-message-created.json")).unwrap();
    listed["to"] = "+447911123456".into();
    listed["body"] = pending[0].body.clone().into();
    listed["sid"] = "SMreconciled0000000000000000000000".into();
    listed["date_created"] = jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
        .into();
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"messages": [listed], "next_page_uri": null})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let second = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(
        second.routes[0].alert,
        AlertOutcome::Sent,
        "{:?}",
        second.routes[0].errors
    );
    assert_eq!(second.summary.alerts_sent, 0, "nothing was sent again");
    let log = store.sent_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].message_id, "SMreconciled0000000000000000000000");
    let third = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(third.routes[0].alert, AlertOutcome::Suppressed);
}

#[tokio::test]
async fn a_stop_reply_silences_that_recipient_only() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("To=%2B447911123456"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("notify/twilio-error-21610.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("To=%2B61412345678"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            fixture("notify/twilio-message-created.json"),
            "application/json",
        ))
        .expect(2)
        .mount(&twilio)
        .await;
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_millis(1)),
        twilio_for(&twilio).await,
        store.clone(),
    );
    let below = route(2, "LHR", 10_000_00, &["+447911123456", "+61412345678"]);
    let mut above = below.clone();
    above.rule.max_price = Money::from_minor(1, Currency::EUR);
    // Alert (STOP for the first recipient), re-arm, alert again: the STOP
    // recipient is not texted the second time.
    for r in [&below, &above, &below] {
        engine
            .run_cycle(vec![r.clone()], Arc::new(NoProgress))
            .await
            .unwrap();
    }
    let report = engine
        .run_cycle(vec![below.clone()], Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(report.routes[0].alert, AlertOutcome::Suppressed);
    assert_eq!(store.suppressed().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_drop_that_ends_before_delivery_is_closed_and_the_next_drop_alerts() {
    let twilio = MockServer::start().await;
    // The first attempt's outcome is unknown (a 503), and stays unknown
    // that cycle: the message list cannot be read (404) ...
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string("service unavailable"))
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(404).set_body_string("not found"))
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            fixture("notify/twilio-message-created.json"),
            "application/json",
        ))
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"messages": [], "next_page_uri": null})),
        )
        .mount(&twilio)
        .await;
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_millis(1)),
        twilio_for(&twilio).await,
        store.clone(),
    );
    let below = route(2, "LHR", 10_000_00, &["+447911123456"]);
    let mut above = below.clone();
    above.rule.max_price = Money::from_minor(1, Currency::EUR);
    let outcomes: Vec<AlertOutcome> = {
        let mut v = Vec::new();
        // ...then the price rises before a retry, and later falls again.
        for r in [&below, &above, &below] {
            v.push(
                engine
                    .run_cycle(vec![r.clone()], Arc::new(NoProgress))
                    .await
                    .unwrap()
                    .routes[0]
                    .alert,
            );
        }
        v
    };
    assert_eq!(
        outcomes,
        [AlertOutcome::Failed, AlertOutcome::None, AlertOutcome::Sent]
    );
    assert!(
        store.pending_intents().await.unwrap().is_empty(),
        "the first alert was closed, not left pending"
    );
    assert_eq!(store.sent_log(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_throttled_send_is_retried_at_once_because_twilio_never_processed_it() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(429).set_body_raw(
            fixture("notify/twilio-error-20429.json"),
            "application/json",
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            fixture("notify/twilio-message-created.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_secs(1)),
        twilio_for(&twilio).await,
        memory_store(),
    );
    let report = engine
        .run_cycle(
            vec![route(2, "LHR", 10_000_00, &["+447911123456"])],
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(report.routes[0].alert, AlertOutcome::Sent);
    assert_eq!(
        (report.summary.alerts_sent, report.summary.alerts_failed),
        (1, 0)
    );
}

/// A channel that cannot list what it sent (the trait's default, like
/// Slack, Discord and webhooks): every send's outcome is unknown the first
/// time, then accepted.
#[derive(Default)]
struct Unlistable {
    sends: Mutex<u32>,
}

#[async_trait]
impl Notifier for Unlistable {
    fn name(&self) -> &'static str {
        "unlistable"
    }

    async fn send(
        &self,
        _to: &Recipient,
        _body: &str,
    ) -> Result<farewatch::notify::Delivery, farewatch::notify::NotifyError> {
        let mut sends = self.sends.lock().unwrap();
        *sends += 1;
        if *sends == 1 {
            return Err(farewatch::notify::NotifyError::Ambiguous(
                "timed out after posting".into(),
            ));
        }
        Ok(farewatch::notify::Delivery {
            id: format!("post-{sends}"),
            segments: None,
        })
    }
}

/// Without a way to list what was sent, an unknown outcome is not settled
/// (nor resent) within the cycle: it stays pending and the next cycle sends
/// it once more, at least once rather than exactly once (README, Channels).
/// The in-cycle loop never multiplies such duplicates.
#[tokio::test]
async fn a_channel_that_cannot_list_is_resent_once_by_the_next_cycle_not_within_it() {
    let notifier = Arc::new(Unlistable::default());
    let store = memory_store();
    let engine = engine(
        Arc::new(DemoSource::new(Duration::ZERO)),
        DemoSource::default().default_limits(),
        QuoteCache::memory(Duration::from_secs(1)),
        notifier.clone(),
        store.clone(),
    );
    let rows = || vec![route(2, "LHR", 10_000_00, &["+447911123456"])];

    let first = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(first.routes[0].alert, AlertOutcome::Failed);
    assert_eq!(
        *notifier.sends.lock().unwrap(),
        1,
        "not resent within the cycle"
    );
    assert_eq!(store.pending_intents().await.unwrap().len(), 1);

    let second = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(second.routes[0].alert, AlertOutcome::Sent);
    assert_eq!(*notifier.sends.lock().unwrap(), 2, "resent once");

    let third = engine
        .run_cycle(rows(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(third.routes[0].alert, AlertOutcome::Suppressed);
    assert_eq!(*notifier.sends.lock().unwrap(), 2);
}

// ---------------------------------------------------------------- overlapping runs

/// Every lookup answers 100.00 at once: every route below its maximum.
struct Cheap;

#[async_trait]
impl FareSource for Cheap {
    fn name(&self) -> &'static str {
        "cheap"
    }
    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: 50,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
        }
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        Ok(Some(Quote {
            price: Money::from_minor(100_00, key.currency),
            provider: "cheap".into(),
            fetched_at: jiff::Timestamp::now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        }))
    }
}

/// A channel shared by two runs, like Twilio: it accepts a message the
/// moment the request arrives, answers after `latency`, and lists what it
/// accepted. `accepted` counts every message, and wakes whoever waits for a
/// number of them.
struct SlowChannel {
    latency: Duration,
    accepted: Mutex<Vec<(String, String)>>,
    changed: tokio::sync::Notify,
    /// The first `held` messages are accepted but not answered until
    /// [`SlowChannel::release`].
    held: usize,
    gate: tokio::sync::Semaphore,
}

impl SlowChannel {
    fn new(latency: Duration) -> Self {
        Self::holding(latency, 0)
    }

    fn holding(latency: Duration, held: usize) -> Self {
        Self {
            latency,
            accepted: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
            held,
            gate: tokio::sync::Semaphore::new(0),
        }
    }

    fn release(&self) {
        self.gate.add_permits(self.held);
    }

    fn accepted(&self) -> Vec<(String, String)> {
        self.accepted.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if self.accepted.lock().unwrap().len() >= n {
                return;
            }
            changed.await;
        }
    }
}

#[async_trait]
impl Notifier for SlowChannel {
    fn name(&self) -> &'static str {
        "twilio"
    }
    async fn send(
        &self,
        to: &Recipient,
        body: &str,
    ) -> Result<farewatch::notify::Delivery, farewatch::notify::NotifyError> {
        let (id, n) = {
            let mut accepted = self.accepted.lock().unwrap();
            accepted.push((to.to_string(), body.to_owned()));
            (format!("SM{:032}", accepted.len()), accepted.len())
        };
        self.changed.notify_waiters();
        if n <= self.held {
            self.gate.acquire().await.unwrap().forget();
        }
        tokio::time::sleep(self.latency).await;
        Ok(farewatch::notify::Delivery { id, segments: None })
    }
    fn can_list_sent(&self) -> bool {
        true
    }
    async fn find_sent(
        &self,
        to: &Recipient,
        body: &str,
        _since: jiff::Timestamp,
    ) -> Result<Option<String>, farewatch::notify::NotifyError> {
        let to = to.to_string();
        Ok(self
            .accepted
            .lock()
            .unwrap()
            .iter()
            .position(|(t, b)| *t == to && b == body)
            .map(|i| format!("SM{:032}", i + 1)))
    }
}

/// How a run's routes ended, by the report's JSON name (`sent`, `failed`, ...).
fn outcomes(report: &farewatch::engine::CycleReport) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for route in &report.routes {
        let name = serde_json::to_value(route.alert).unwrap();
        *counts.entry(name.as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

/// Each route's alert was sent by exactly one of the two runs; the other
/// reports it as another run's (or, if it started after the alert was
/// saved, as already alerted). Neither run counts anything failed.
#[track_caller]
fn assert_runs_add_up(
    a: &farewatch::engine::CycleReport,
    b: &farewatch::engine::CycleReport,
    due: usize,
) {
    use AlertOutcome::{InProgressElsewhere, Sent, SentElsewhere, Suppressed};
    assert_eq!(a.routes.len(), due);
    assert_eq!(b.routes.len(), due);
    for (ra, rb) in a.routes.iter().zip(&b.routes) {
        let ok = match (ra.alert, rb.alert) {
            (Sent, other) | (other, Sent) => {
                matches!(other, SentElsewhere | InProgressElsewhere | Suppressed)
            }
            _ => false,
        };
        assert!(ok, "row {}: {:?} and {:?}", ra.row, ra.alert, rb.alert);
    }
    for r in [a, b] {
        assert_eq!(r.summary.alerts_failed, 0, "{:#?}", r.routes);
        let elsewhere = r
            .routes
            .iter()
            .filter(|x| matches!(x.alert, SentElsewhere | InProgressElsewhere))
            .count();
        assert_eq!(
            r.summary.alerts_elsewhere, elsewhere,
            "one recipient per row"
        );
        assert!(
            r.routes.iter().all(|x| x.errors.is_empty()),
            "{:#?}",
            r.routes
        );
    }
    assert_eq!(a.summary.alerts_sent + b.summary.alerts_sent, due);
}

/// Two overlapping runs (A, B) together texted each of `due` recipients
/// exactly once, and their reports add up.
#[track_caller]
fn assert_each_texted_once(
    first: &farewatch::engine::CycleReport,
    second: &farewatch::engine::CycleReport,
    channel: &SlowChannel,
    due: usize,
) {
    let (oa, ob) = (outcomes(first), outcomes(second));
    let accepted = channel.accepted();
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    eprintln!(
        "run A: {oa:?} sent {} failed {}; run B: {ob:?} sent {} failed {}; accepted {} ({} distinct)",
        first.summary.alerts_sent,
        first.summary.alerts_failed,
        second.summary.alerts_sent,
        second.summary.alerts_failed,
        accepted.len(),
        unique.len()
    );
    assert_eq!(accepted.len(), due, "nobody texted twice: {accepted:#?}");
    assert_eq!(unique.len(), due, "every recipient texted");
    assert_runs_add_up(first, second, due);
}

/// A third run after both: everything is already alerted, nothing is sent.
async fn assert_a_later_run_sends_nothing(
    db: &TestDb,
    channel: &Arc<SlowChannel>,
    routes: &[Route],
) {
    let before = channel.accepted().len();
    let later = engine(
        Arc::new(Cheap),
        Cheap.default_limits(),
        QuoteCache::memory(Duration::from_secs(60)),
        channel.clone(),
        db.open().await,
    );
    let report = later
        .run_cycle(routes.to_vec(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(
        report
            .routes
            .iter()
            .all(|r| r.alert == AlertOutcome::Suppressed),
        "{:#?}",
        report.routes
    );
    assert_eq!(channel.accepted().len(), before);
    assert!(later.store().pending_intents().await.unwrap().is_empty());
}

/// Two engines on one database (two `Store::open`s: two connections or
/// pools, as two processes have), both sending through `channel`.
async fn two_runs_on_one_database(
    db: &TestDb,
    channel: &Arc<SlowChannel>,
) -> (Arc<Engine>, Arc<Engine>) {
    let run = |store| {
        engine(
            Arc::new(Cheap),
            Cheap.default_limits(),
            QuoteCache::memory(Duration::from_secs(60)),
            channel.clone(),
            store,
        )
    };
    (run(db.open().await), run(db.open().await))
}

/// `n` alerting routes from `QAA`, `QAB`, ... each to its own phone.
fn numbered_routes(n: usize) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let origin = format!(
                "Q{}{}",
                (b'A' + (i / 26) as u8) as char,
                (b'A' + (i % 26) as u8) as char
            );
            route(i + 2, &origin, 200_00, &[&format!("+4479111234{i:02}")])
        })
        .collect()
}

on_both_backends! {
    /// A slow cron run (A) and the next tick (B) on one database. B starts while
    /// A is mid-send, with most of A's intents written and not yet sent.
    ///
    /// Nobody is texted twice; neither run calls the other's alerts failed;
    /// together they send each due alert once.
    ///
    /// Before outbox claims (schema 2), B reported the 20 or so alerts A was
    /// still sending `failed` ("an earlier send is unconfirmed"), with 20
    /// messages failed and so exit 2, while A sent all 40. Now B reports them
    /// `in_progress_elsewhere` / `sent_elsewhere` and fails nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_overlapping_runs_on_one_database_send_nothing_twice_and_fail_nothing(db: TestDb) {
        const ROUTES: usize = 40;
        let channel = Arc::new(SlowChannel::new(Duration::from_millis(25)));
        let (a, b) = two_runs_on_one_database(&db, &channel).await;
        let routes = numbered_routes(ROUTES);

        let first = tokio::spawn({
            let (a, routes) = (a.clone(), routes.clone());
            async move { a.run_cycle(routes, Arc::new(NoProgress)).await.unwrap() }
        });
        // The next tick starts while A is mid-send.
        channel.wait_for(ROUTES / 5).await;
        let second = b
            .run_cycle(routes.clone(), Arc::new(NoProgress))
            .await
            .unwrap();
        let first = first.await.unwrap();

        assert_each_texted_once(&first, &second, &channel, ROUTES);
        assert_a_later_run_sends_nothing(&db, &channel, &routes).await;
    }
}

on_both_backends! {
    /// The race at the start of a run: B starts while A has written every
    /// intent but is still waiting for its first answers. B's reconciliation
    /// finds A's unsent intents missing from the provider's list; it must not
    /// send them itself (A is about to), nor call them failed.
    ///
    /// Before outbox claims (schema 2): 25 messages accepted for 24 recipients
    /// (B resent one of A's fresh intents) and B reported 19 routes failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_starting_mid_send_does_not_resend_the_other_runs_fresh_intents(db: TestDb) {
        const ROUTES: usize = 24;
        const IN_FLIGHT: usize = 4;
        // A's first sends are accepted and then hang until released.
        let channel = Arc::new(SlowChannel::holding(Duration::from_millis(5), IN_FLIGHT));
        let (a, b) = two_runs_on_one_database(&db, &channel).await;
        let routes = numbered_routes(ROUTES);

        let first = tokio::spawn({
            let (a, routes) = (a.clone(), routes.clone());
            async move { a.run_cycle(routes, Arc::new(NoProgress)).await.unwrap() }
        });
        // A has its concurrency's worth of sends in flight, the rest queued.
        channel.wait_for(IN_FLIGHT).await;
        let second = b
            .run_cycle(routes.clone(), Arc::new(NoProgress))
            .await
            .unwrap();
        channel.release();
        let first = first.await.unwrap();

        assert_each_texted_once(&first, &second, &channel, ROUTES);
        // A's held sends were pending under A while B ran: B left them to A.
        let left_to_a = second
            .routes
            .iter()
            .filter(|r| r.alert == AlertOutcome::InProgressElsewhere)
            .count();
        assert!(left_to_a >= IN_FLIGHT, "{:#?}", second.routes);
        assert_a_later_run_sends_nothing(&db, &channel, &routes).await;
    }
}

/// More alerting routes than the engine decides and delivers at once (512):
/// every one is still alerted exactly once, and the report keeps the
/// sheet's order.
#[tokio::test(start_paused = true)]
async fn more_alerting_routes_than_the_finishing_window_are_all_alerted_once() {
    const ROUTES: usize = 1_300;
    let channel = Arc::new(SlowChannel::new(Duration::from_millis(20)));
    let engine = engine(
        Arc::new(Cheap),
        Cheap.default_limits(),
        QuoteCache::memory(Duration::from_secs(60)),
        channel.clone(),
        memory_store(),
    );
    let routes: Vec<Route> = (0..ROUTES)
        .map(|i| {
            let origin = format!(
                "{}{}{}",
                (b'A' + (i / 676) as u8) as char,
                (b'A' + (i / 26 % 26) as u8) as char,
                (b'A' + (i % 26) as u8) as char
            );
            route(i + 2, &origin, 200_00, &[&format!("+4479111{i:05}")])
        })
        .filter(|r| r.origins[0].as_str() != "JFK")
        .collect();
    let due = routes.len();
    let report = engine
        .run_cycle(routes, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(report.summary.alerts_sent, due);
    assert_eq!(report.summary.alerts_failed, 0);
    let mut accepted = channel.accepted();
    assert_eq!(accepted.len(), due);
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), due, "nobody texted twice");
    let rows: Vec<usize> = report.routes.iter().map(|r| r.row).collect();
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_eq!(rows, sorted, "the report keeps the sheet's order");
}
