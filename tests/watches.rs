//! Watched flights through the engine: a scripted flight on tokio's paused
//! clock, one alert per meaningful change, through the real outbox.

use std::sync::Arc;
use std::time::Duration;

use farewatch::cache::QuoteCache;
use farewatch::engine::{Engine, EngineParts, NotifyLimits};
use farewatch::fare::demo::DemoSource;
use farewatch::fare::failover::Failover;
use farewatch::fare::FarePool;
use farewatch::fare::FareSource;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::status::failover::{StatusFailover, StatusPool};
use farewatch::status::mock::{MockStatus, Scenario};
use farewatch::status::{FlightState, StatusProvider};
use farewatch::store::Store;
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::Limits;

#[tokio::test(start_paused = true)]
async fn each_change_of_a_watched_flight_is_alerted_once() {
    let today = jiff::Zoned::now().date();
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let mock: Arc<dyn StatusProvider> = Arc::new(MockStatus::new().script(
        "LH902",
        today,
        vec![
            (Duration::ZERO, Scenario::OnTime),
            (hours(2), Scenario::Delayed { minutes: 25 }),
            (hours(4), Scenario::Delayed { minutes: 45 }),
            (
                hours(6),
                Scenario::GateChange {
                    from: "E12".into(),
                    to: "E20".into(),
                },
            ),
        ],
    ));
    let limits = Limits {
        max_concurrency: 2,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(5),
    };
    let status = StatusFailover::new(
        vec![Arc::new(StatusPool::for_status(
            mock,
            limits,
            BreakerConfig::default(),
        ))],
        Duration::ZERO,
    );
    let store = Store::memory().unwrap();
    let console = Arc::new(ConsoleNotifier::new(ConsoleTarget::Stderr));
    let demo = DemoSource::new(Duration::ZERO);
    let fare_limits = demo.default_limits();
    let engine = Engine::new(EngineParts {
        fares: Arc::new(Failover::single(Arc::new(FarePool::new(
            Arc::new(demo),
            fare_limits,
        )))),
        cache: QuoteCache::memory(Duration::from_secs(60)),
        notifier: console.clone(),
        notify_limits: NotifyLimits {
            max_concurrency: 2,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(5),
            // Real clock: settle unknown outcomes in milliseconds, not seconds.
            settle_delay: Duration::from_millis(5),
            settle_bound: Duration::from_secs(5),
        },
        store: store.clone(),
        dry_run: false,
    });
    let csv = format!("flight,date,phone,min_delay\nLH902,{today},+442079460123,15\n");
    let watches = farewatch::status::watch::parse("flights.csv", csv.as_bytes(), today)
        .unwrap()
        .watches;
    assert_eq!(watches.len(), 1);

    let mut alerts_per_poll = Vec::new();
    for step in 0..4 {
        if step > 0 {
            tokio::time::advance(hours(2)).await;
        }
        let report = engine.run_watches(&watches, &status).await.unwrap();
        assert!(report[0].polled, "due every two hours at the most");
        assert!(report[0].errors.is_empty(), "{:?}", report[0].errors);
        alerts_per_poll.push((report[0].status, report[0].alerts.clone()));
    }
    let counts: Vec<usize> = alerts_per_poll.iter().map(|(_, a)| a.len()).collect();
    assert_eq!(counts, [0, 1, 1, 1], "{alerts_per_poll:#?}");
    assert_eq!(alerts_per_poll[1].0, Some(FlightState::Delayed));
    assert!(
        alerts_per_poll[1].1[0].contains("delayed 25 min"),
        "{:?}",
        alerts_per_poll[1].1
    );
    assert!(
        alerts_per_poll[2].1[0].contains("45"),
        "{:?}",
        alerts_per_poll[2].1
    );
    assert!(
        alerts_per_poll[3].1[0].contains("E20"),
        "{:?}",
        alerts_per_poll[3].1
    );
    for (_, alerts) in &alerts_per_poll {
        for alert in alerts {
            assert!(
                farewatch::notify::sms::gsm7_len(alert).is_some_and(|n| n <= 160),
                "{alert}"
            );
        }
    }

    // Polled again at once: not due yet, nothing sent.
    let again = engine.run_watches(&watches, &status).await.unwrap();
    assert!(!again[0].polled);
    assert_eq!(console.sent(), 3);
    let log = store.sent_log(10).await.unwrap();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter().all(|r| r.route_id.starts_with("watch:LH902:")),
        "{log:#?}"
    );
}
