//! Flight-status failover with scripted providers under tokio's paused
//! clock: primary down, primary slow, primary low-signal, recovery, the
//! answer cache, healthiest-first batches; and the poller against Redis.

use std::sync::Arc;
use std::time::Duration;

use farewatch::status::failover::{StatusFailover, StatusPool};
use farewatch::status::mock::{MockStatus, Scenario};
use farewatch::status::poller::poll_once;
use farewatch::status::snapshots::SnapshotStore;
use farewatch::status::{FlightState, StatusProvider, StatusQuery};
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::breaker::BreakerPhase;
use farewatch::upstream::{Limits, UpstreamError};
use tokio::time::Instant;

fn date() -> jiff::civil::Date {
    "2026-12-01".parse().unwrap()
}

fn query() -> StatusQuery {
    StatusQuery::Flight {
        ident: "LH400".into(),
        date: Some(date()),
    }
}

fn pool(mock: &Arc<MockStatus>, threshold: u32) -> Arc<StatusPool> {
    let provider: Arc<dyn StatusProvider> = mock.clone();
    let limits = Limits {
        max_concurrency: 4,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(5),
    };
    let breaker = BreakerConfig {
        failure_threshold: threshold,
        open_for: Duration::from_secs(60),
        ..BreakerConfig::default()
    };
    Arc::new(StatusPool::for_status(provider, limits, breaker))
}

fn upstream_down() -> UpstreamError {
    UpstreamError::Upstream {
        status: 503,
        code: None,
        message: "down".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_is_down_falls_through_to_the_secondary() {
    let primary = Arc::new(
        MockStatus::new()
            .named("primary")
            .fail_with(upstream_down()),
    );
    let secondary = Arc::new(MockStatus::new().named("secondary").with_flight(
        "LH400",
        date(),
        Scenario::Delayed { minutes: 40 },
    ));
    let failover = StatusFailover::new(
        vec![pool(&primary, 5), pool(&secondary, 5)],
        Duration::from_secs(120),
    );
    let flights = failover.flights(&query()).await.unwrap();
    assert_eq!(flights[0].provider, "secondary");
    assert_eq!(flights[0].state, FlightState::Delayed);
    assert_eq!(failover.health()[0].errors, 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_times_out_and_the_secondary_answers_within_the_bound() {
    let primary = Arc::new(
        MockStatus::new()
            .named("primary")
            .with_latency(Duration::from_secs(600)),
    );
    let secondary = Arc::new(MockStatus::new().named("secondary").with_flight(
        "LH400",
        date(),
        Scenario::OnTime,
    ));
    let failover = StatusFailover::new(
        vec![pool(&primary, 5), pool(&secondary, 5)],
        Duration::from_secs(120),
    );
    let start = Instant::now();
    let flights = failover.flights(&query()).await.unwrap();
    assert_eq!(flights[0].provider, "secondary");
    // Three attempts of 5 s plus two short backoffs: far below the 600 s hang.
    let elapsed = Instant::now() - start;
    assert!(
        elapsed >= Duration::from_secs(15) && elapsed < Duration::from_secs(30),
        "{elapsed:?}"
    );
    assert_eq!(failover.health()[0].errors_by_kind.get("timeout"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn a_low_signal_answer_defers_to_a_healthy_secondary() {
    let primary = Arc::new(MockStatus::new().named("primary").low_signal("LH400"));
    let secondary = Arc::new(MockStatus::new().named("secondary").with_flight(
        "LH400",
        date(),
        Scenario::GateChange {
            from: "A12".into(),
            to: "B20".into(),
        },
    ));
    let failover = StatusFailover::new(
        vec![pool(&primary, 5), pool(&secondary, 5)],
        Duration::from_secs(120),
    );
    let flights = failover.flights(&query()).await.unwrap();
    assert_eq!(flights[0].provider, "secondary");
    assert_eq!(flights[0].departure.gate.as_deref(), Some("B20"));

    // With the secondary down, the low-signal answer is better than nothing.
    let primary = Arc::new(MockStatus::new().named("primary").low_signal("LH400"));
    let down = Arc::new(
        MockStatus::new()
            .named("secondary")
            .fail_with(upstream_down()),
    );
    let failover = StatusFailover::new(
        vec![pool(&primary, 5), pool(&down, 5)],
        Duration::from_secs(120),
    );
    let flights = failover.flights(&query()).await.unwrap();
    assert_eq!(flights[0].provider, "primary");
    assert_eq!(flights[0].state, FlightState::Scheduled);
}

#[tokio::test(start_paused = true)]
async fn the_primary_is_used_again_once_it_recovers() {
    let primary = Arc::new(
        MockStatus::new()
            .named("primary")
            .fail_next(1, upstream_down())
            .with_flight("LH400", date(), Scenario::OnTime),
    );
    let secondary = Arc::new(MockStatus::new().named("secondary").with_flight(
        "LH400",
        date(),
        Scenario::OnTime,
    ));
    // The breaker counts requests: the first failure opens the circuit
    // (threshold 1), and the lookup fails over at once instead of retrying.
    // No answer cache, so every lookup walks the providers.
    let failover =
        StatusFailover::new(vec![pool(&primary, 1), pool(&secondary, 5)], Duration::ZERO);
    assert_eq!(
        failover.flights(&query()).await.unwrap()[0].provider,
        "secondary"
    );
    assert_eq!(failover.health()[0].breaker, BreakerPhase::Open);
    let calls = primary.calls();
    assert_eq!(
        failover.flights(&query()).await.unwrap()[0].provider,
        "secondary"
    );
    assert_eq!(
        primary.calls(),
        calls,
        "the open circuit spares the primary"
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    // Half-open probe: the primary has recovered.
    assert_eq!(
        failover.flights(&query()).await.unwrap()[0].provider,
        "primary"
    );
    assert_eq!(failover.health()[0].breaker, BreakerPhase::Closed);
}

#[tokio::test(start_paused = true)]
async fn many_watchers_of_one_flight_cost_one_call_within_the_ttl() {
    let primary = Arc::new(MockStatus::new().named("primary").with_flight(
        "LH400",
        date(),
        Scenario::OnTime,
    ));
    let failover = StatusFailover::new(vec![pool(&primary, 5)], Duration::from_secs(120));
    for _ in 0..10 {
        failover.flights(&query()).await.unwrap();
    }
    assert_eq!(primary.calls(), 1);
    tokio::time::advance(Duration::from_secs(121)).await;
    failover.flights(&query()).await.unwrap();
    assert_eq!(primary.calls(), 2, "asked again once the answer expired");
}

#[tokio::test(start_paused = true)]
async fn a_batch_goes_to_the_healthiest_provider_first() {
    let broken = Arc::new(MockStatus::new().named("broken").fail_with(upstream_down()));
    let healthy = Arc::new(MockStatus::new().named("healthy").with_flight(
        "LH400",
        date(),
        Scenario::OnTime,
    ));
    let failover = StatusFailover::new(vec![pool(&broken, 1), pool(&healthy, 5)], Duration::ZERO);
    // One failure opens the broken provider's circuit.
    failover.flights(&query()).await.unwrap();
    let broken_calls = broken.calls();
    let answers = failover.flights_many(&[query(), query(), query()]).await;
    assert!(answers
        .iter()
        .all(|a| a.as_ref().unwrap()[0].provider == "healthy"));
    assert_eq!(
        broken.calls(),
        broken_calls,
        "the batch started with the healthy provider"
    );
}

#[tokio::test]
async fn the_poller_writes_snapshots_and_reports_created_then_updated() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!("farewatch-test-{}-poller:flight:", std::process::id());
    let store = SnapshotStore::connect(&url, &prefix, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("this test needs Redis at {url}: {e}"));
    let filter = StatusQuery::Filter {
        dep_iata: Some("FRA".into()),
        arr_iata: None,
        state: None,
        limit: 10,
    };
    let on_time = Arc::new(MockStatus::new().named("mock").with_flight(
        "LH400",
        date(),
        Scenario::OnTime,
    ));
    let failover = StatusFailover::new(vec![pool(&on_time, 5)], Duration::ZERO);
    let first = poll_once(&failover, &store, &filter).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!((first.flights, first.created, first.updated), (1, 1, 0));

    let again = poll_once(&failover, &store, &filter).await;
    assert_eq!((again.created, again.updated, again.refreshed), (0, 0, 1));

    let delayed = Arc::new(MockStatus::new().named("mock").with_flight(
        "LH400",
        date(),
        Scenario::Delayed { minutes: 45 },
    ));
    let failover = StatusFailover::new(vec![pool(&delayed, 5)], Duration::ZERO);
    let changed = poll_once(&failover, &store, &filter).await;
    assert_eq!((changed.created, changed.updated), (0, 1));
    let snapshot = store.get("LH400").await.unwrap().unwrap();
    assert_eq!(snapshot.status, FlightState::Delayed);
    assert_eq!(snapshot.dep.delay_min, Some(45));
    assert!(snapshot.disrupted);
}

#[tokio::test(start_paused = true)]
async fn a_query_no_provider_supports_says_so_instead_of_no_provider_configured() {
    use farewatch::status::opensky::{OpenSky, OpenSkyConfig};
    // OpenSky answers departures and arrivals only; never asked here.
    let opensky: Arc<dyn StatusProvider> = Arc::new(OpenSky::new(
        farewatch::upstream::http::build_client(),
        OpenSkyConfig::new("id", "secret".into()),
    ));
    let limits = Limits {
        max_concurrency: 1,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(5),
    };
    let only_opensky = StatusFailover::new(
        vec![Arc::new(StatusPool::for_status(
            opensky,
            limits,
            BreakerConfig::default(),
        ))],
        Duration::from_secs(60),
    );
    let error = only_opensky.flights(&query()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "status: request not sent: no status provider supports flight LH400 on 2026-12-01 \
         (configured: opensky)"
    );

    let none = StatusFailover::new(Vec::new(), Duration::from_secs(60));
    let error = none.flights(&query()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "no provider is configured for this request"
    );
}
