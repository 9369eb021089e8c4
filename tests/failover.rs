//! Failover across fare sources: a failing primary falls through to the
//! next source, an open circuit stops calling it, and it is used again once
//! its breaker closes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use farewatch::domain::{Currency, Iata, LookupKey, Money, Quote};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::failover::{Failover, Strategy};
use farewatch::fare::FarePool;
use farewatch::fare::FareSource;
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::breaker::BreakerPhase;
use farewatch::upstream::retry::Backoff;
use farewatch::upstream::{Limits, UpstreamError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

fn key(origin: &str) -> LookupKey {
    LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse("JFK").unwrap(),
        depart: days_from_today(30).parse().unwrap(),
        return_date: None,
        adults: 1,
        currency: Currency::parse("GBP").unwrap(),
        max_stops: None,
    }
}

/// A real Amadeus client against `server`, with a tiny retry policy so
/// failures are quick and a breaker that opens after `threshold` failures.
fn amadeus_pool(server: &MockServer, threshold: u32) -> Arc<FarePool> {
    let source = Amadeus::new(
        farewatch::upstream::http::build_client(),
        AmadeusConfig {
            base_url: server.uri(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
            timeout: Duration::from_millis(300),
        },
        None,
    );
    let limits = Limits {
        max_concurrency: 4,
        rate_per_sec: 0.0,
        timeout: Duration::from_millis(300),
    };
    let breaker = BreakerConfig {
        failure_threshold: threshold,
        ..BreakerConfig::default()
    };
    Arc::new(FarePool::with_policy(
        Arc::new(source),
        limits,
        Backoff::new(Duration::from_millis(1), Duration::from_millis(2), 2),
        breaker,
    ))
}

async fn primary_answering(status: u16, fixture_file: &str) -> MockServer {
    let server = amadeus(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v2/shopping/flight-offers"))
        .respond_with(amadeus_json(fixture(fixture_file), status))
        .mount(&server)
        .await;
    server
}

fn searches(requests: &[wiremock::Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.url.path() == "/v2/shopping/flight-offers")
        .count()
}

#[tokio::test]
async fn each_kind_of_primary_failure_falls_through_to_the_secondary() {
    let secondary = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let hung = amadeus(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v2/shopping/flight-offers"))
        .respond_with(
            amadeus_json(fixture("fares/amadeus-flight-offers-LHR-JFK.json"), 200)
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&hung)
        .await;
    let cases = [
        (
            "5xx",
            primary_answering(500, "fares/amadeus-error-500.json").await,
        ),
        (
            "429",
            primary_answering(429, "fares/amadeus-error-429.json").await,
        ),
        (
            "quota",
            primary_answering(429, "fares/amadeus-error-429-quota.json").await,
        ),
        ("hang", hung),
    ];
    for (what, primary) in cases {
        let chain = Failover::new(
            vec![amadeus_pool(&primary, 5), amadeus_pool(&secondary, 5)],
            Strategy::FirstAnswer,
        );
        let quote = chain
            .cheapest(&key("LHR"))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .expect("offers");
        assert_eq!(
            quote.price,
            Money::from_minor(312_46, Currency::parse("GBP").unwrap()),
            "{what}"
        );
        let health = chain.health();
        assert_eq!(
            health[0].errors, 1,
            "{what}: the primary's failure is counted"
        );
        assert_eq!(health[1].errors, 0, "{what}");
    }
}

#[tokio::test]
async fn no_offers_is_an_answer_not_a_failure() {
    let primary = primary_answering(200, "fares/amadeus-flight-offers-empty.json").await;
    let secondary = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let chain = Failover::new(
        vec![amadeus_pool(&primary, 5), amadeus_pool(&secondary, 5)],
        Strategy::FirstAnswer,
    );
    assert_eq!(chain.cheapest(&key("LHR")).await.unwrap(), None);
    assert_eq!(
        searches(&secondary.received_requests().await.unwrap()),
        0,
        "the secondary is not asked"
    );
}

#[tokio::test]
async fn an_open_circuit_stops_calling_the_primary() {
    let primary = primary_answering(500, "fares/amadeus-error-500.json").await;
    let secondary = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let chain = Failover::new(
        vec![amadeus_pool(&primary, 2), amadeus_pool(&secondary, 5)],
        Strategy::FirstAnswer,
    );
    for _ in 0..5 {
        assert!(chain.cheapest(&key("LHR")).await.unwrap().is_some());
    }
    // The breaker counts requests: the first lookup's two failed attempts
    // opened the circuit, and every later lookup skipped the primary.
    assert_eq!(searches(&primary.received_requests().await.unwrap()), 2);
    let health = chain.health();
    assert_eq!(health[0].breaker, BreakerPhase::Open);
    assert_eq!(health[0].skipped, 4);
    assert_eq!(health[0].errors_by_kind.get("upstream"), Some(&1));
    assert_eq!(searches(&secondary.received_requests().await.unwrap()), 5);
}

#[tokio::test]
async fn when_every_source_fails_the_error_names_each_one() {
    let a = primary_answering(500, "fares/amadeus-error-500.json").await;
    let b = primary_answering(401, "fares/amadeus-error-401-invalid-header.json").await;
    let chain = Failover::new(
        vec![amadeus_pool(&a, 5), amadeus_pool(&b, 5)],
        Strategy::FirstAnswer,
    );
    let error = chain.cheapest(&key("LHR")).await.unwrap_err();
    assert_eq!(error.attempts.len(), 2);
    assert!(matches!(
        error.attempts[0].1,
        UpstreamError::Upstream { status: 500, .. }
    ));
    assert!(matches!(error.attempts[1].1, UpstreamError::Auth(_)));
    let text = error.to_string();
    assert!(
        text.starts_with("amadeus: ") && text.contains("; amadeus: "),
        "{text}"
    );
}

#[tokio::test]
async fn compare_asks_the_top_sources_and_keeps_the_cheapest() {
    let failing = primary_answering(500, "fares/amadeus-error-500.json").await;
    // The same offers 200.00 dearer, from a source ranked before the cheaper one.
    let dearer = amadeus(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v2/shopping/flight-offers"))
        .respond_with(amadeus_json(
            fixture("fares/amadeus-flight-offers-LHR-JFK.json").replace("312.46", "512.46"),
            200,
        ))
        .mount(&dearer)
        .await;
    let cheaper = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let unasked = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let chain = Failover::new(
        vec![
            amadeus_pool(&failing, 5),
            amadeus_pool(&dearer, 5),
            amadeus_pool(&cheaper, 5),
            amadeus_pool(&unasked, 5),
        ],
        Strategy::Compare(2),
    );
    let quote = chain.cheapest(&key("LHR")).await.unwrap().unwrap();
    assert_eq!(
        quote.price.minor, 312_46,
        "the cheaper of the two answers wins"
    );
    // The failing source was replaced by the next one, so exactly two answered.
    assert_eq!(searches(&dearer.received_requests().await.unwrap()), 1);
    assert_eq!(searches(&cheaper.received_requests().await.unwrap()), 1);
    assert_eq!(searches(&unasked.received_requests().await.unwrap()), 0);
}

/// A provider that fails while `down` is set: a stand-in for an outage.
struct Flaky {
    down: Arc<std::sync::atomic::AtomicBool>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl FareSource for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: 1,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(5),
        }
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(UpstreamError::Upstream {
                status: 503,
                code: None,
                message: "down".into(),
            });
        }
        Ok(Some(Quote {
            price: Money::from_minor(100_00, key.currency),
            provider: "flaky".into(),
            fetched_at: jiff::Timestamp::now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        }))
    }
}

struct Steady;

#[async_trait]
impl FareSource for Steady {
    fn name(&self) -> &'static str {
        "steady"
    }
    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: 1,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(5),
        }
    }
    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        Ok(Some(Quote {
            price: Money::from_minor(200_00, key.currency),
            provider: "steady".into(),
            fetched_at: jiff::Timestamp::now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn the_primary_is_used_again_once_its_breaker_closes() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        down: down.clone(),
        calls: calls.clone(),
    };
    let limits = flaky.default_limits();
    let breaker = BreakerConfig {
        failure_threshold: 2,
        open_for: Duration::from_secs(60),
        ..BreakerConfig::default()
    };
    let primary = Arc::new(FarePool::with_policy(
        Arc::new(flaky),
        limits,
        Backoff::new(Duration::from_millis(10), Duration::from_millis(10), 1),
        breaker,
    ));
    let secondary = Arc::new(FarePool::new(Arc::new(Steady), Steady.default_limits()));
    let chain = Failover::new(vec![primary, secondary], Strategy::FirstAnswer);

    for _ in 0..4 {
        assert_eq!(
            chain.cheapest(&key("LHR")).await.unwrap().unwrap().provider,
            "steady"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the open circuit spared the primary"
    );
    assert_eq!(chain.health()[0].breaker, BreakerPhase::Open);

    down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        chain.cheapest(&key("LHR")).await.unwrap().unwrap().provider,
        "steady",
        "still open after 30 s"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    // Half-open: one probe goes to the primary, succeeds and closes the circuit.
    assert_eq!(
        chain.cheapest(&key("LHR")).await.unwrap().unwrap().provider,
        "flaky"
    );
    assert_eq!(chain.health()[0].breaker, BreakerPhase::Closed);
    assert_eq!(
        chain.cheapest(&key("LHR")).await.unwrap().unwrap().provider,
        "flaky"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// Rate-limit headers on a real provider's answer reach that provider's
/// controller through the shared reply plumbing and set its pace directly:
/// 20 requests left for 10 seconds is 2 a second.
#[tokio::test]
async fn rate_limit_headers_set_the_providers_pace() {
    let server = amadeus(&[]).await;
    Mock::given(method("GET"))
        .and(path("/v2/shopping/flight-offers"))
        .respond_with(
            amadeus_json(fixture("fares/amadeus-flight-offers-LHR-JFK.json"), 200)
                .insert_header("x-ratelimit-remaining", "20")
                .insert_header("x-ratelimit-reset", "10"),
        )
        .mount(&server)
        .await;
    let pool = amadeus_pool(&server, 5);
    assert_eq!(pool.controller().operating_point().rate_per_sec, None);
    assert!(pool.cheapest(&key("LHR")).await.unwrap().is_some());
    assert_eq!(pool.controller().operating_point().rate_per_sec, Some(2.0));
}
