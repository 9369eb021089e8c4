//! The price history on both backends: recording and reading in time order,
//! the retention (every observation for 14 days, then one a day: the
//! minimum), and what an engine cycle records (one point per fresh lookup,
//! none for a cache hit or in a dry run).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, Money};
use farewatch::engine::{Engine, EngineParts, NoProgress, NotifyLimits};
use farewatch::fare::demo::DemoSource;
use farewatch::fare::failover::Failover;
use farewatch::fare::{FarePool, FareSource};
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::{PricePoint, Store};
use jiff::Timestamp;

const KEY: &str = "LHR:JFK:2027-03-01:ow:1:EUR";
const OTHER: &str = "LGW:JFK:2027-03-01:ow:1:EUR";
const DAY: i64 = 86_400;

/// Midnight UTC, a Friday in 2027: whole seconds (PostgreSQL keeps microseconds).
fn midnight() -> i64 {
    1_800_000_000 - 1_800_000_000 % DAY
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn point(key: &str, secs: i64, minor: i64) -> PricePoint {
    PricePoint {
        search_key: key.to_owned(),
        observed_at: at(secs),
        price: Money::from_minor(minor, Currency::EUR),
        source: "demo".to_owned(),
    }
}

fn prices(points: &[PricePoint]) -> Vec<(i64, i64)> {
    points
        .iter()
        .map(|p| (p.observed_at.as_second(), p.price.minor))
        .collect()
}

on_both_backends! {
    async fn records_and_reads_in_time_order(db: TestDb) {
        let store = db.open().await;
        let t = midnight();
        // Written out of order, and another search in between.
        let written = store
            .record_prices(&[
                point(KEY, t + 300, 250_00),
                point(OTHER, t + 100, 999_00),
                point(KEY, t + 100, 240_00),
                point(KEY, t + 200, 260_00),
            ])
            .await
            .unwrap();
        assert_eq!(written, 4);
        assert_eq!(store.record_prices(&[]).await.unwrap(), 0);
        // The same time twice: both kept, in the order recorded.
        let mut twin = point(KEY, t + 300, 251_00);
        twin.source = "serpapi".into();
        store.record_prices(&[twin.clone()]).await.unwrap();

        let all = store.price_history(KEY, at(0)).await.unwrap();
        assert_eq!(
            prices(&all),
            [(t + 100, 240_00), (t + 200, 260_00), (t + 300, 250_00), (t + 300, 251_00)]
        );
        assert_eq!(all[3], twin, "every field round-trips");
        // `since` is inclusive.
        let recent = store.price_history(KEY, at(t + 200)).await.unwrap();
        assert_eq!(prices(&recent), [(t + 200, 260_00), (t + 300, 250_00), (t + 300, 251_00)]);
        assert_eq!(store.price_history(OTHER, at(0)).await.unwrap().len(), 1);
        assert!(store.price_history("nothing", at(0)).await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn a_big_batch_is_one_call(db: TestDb) {
        let store = db.open().await;
        let t = midnight();
        let batch: Vec<PricePoint> = (0..2_500).map(|i| point(KEY, t + i, 100_00 + i)).collect();
        assert_eq!(store.record_prices(&batch).await.unwrap(), 2_500);
        let read = store.price_history(KEY, at(0)).await.unwrap();
        assert_eq!(read.len(), 2_500);
        assert!(read.windows(2).all(|w| w[0].observed_at < w[1].observed_at));
    }
}

on_both_backends! {
    async fn compaction_keeps_14_days_then_the_daily_minimum(db: TestDb) {
        let store = db.open().await;
        let now = midnight() + 12 * 3600; // midday
        let cutoff = now - 14 * DAY;
        let day20 = midnight() - 20 * DAY; // an old UTC day
        let day30 = midnight() - 30 * DAY;
        store
            .record_prices(&[
                // Day -20: three checks; the cheapest (not the first) stays.
                point(KEY, day20 + 3600, 300_00),
                point(KEY, day20 + 7200, 280_00),
                point(KEY, day20 + 80_000, 290_00),
                // Day -30: equal minimums: the earliest stays.
                point(KEY, day30 + 100, 200_00),
                point(KEY, day30 + 200, 200_00),
                // Another search on day -20: its own minimum.
                point(OTHER, day20 + 100, 500_00),
                point(OTHER, day20 + 200, 400_00),
                // The 14-day boundary: just before it, on the same UTC day as
                // rows just after it; those after are all kept.
                point(KEY, cutoff - 1, 150_00),
                point(KEY, cutoff - 2, 160_00),
                point(KEY, cutoff, 170_00),
                point(KEY, cutoff + 1, 180_00),
                // Recent: everything kept.
                point(KEY, now - 3600, 330_00),
                point(KEY, now - 1800, 320_00),
            ])
            .await
            .unwrap();
        let deleted = store.compact_price_history(at(now)).await.unwrap();
        assert_eq!(deleted, 5, "two on day -20, one on day -30, one of OTHER's, one before the cutoff");
        assert_eq!(
            prices(&store.price_history(KEY, at(0)).await.unwrap()),
            [
                (day30 + 100, 200_00),
                (day20 + 7200, 280_00),
                (cutoff - 1, 150_00),
                (cutoff, 170_00),
                (cutoff + 1, 180_00),
                (now - 3600, 330_00),
                (now - 1800, 320_00),
            ]
        );
        assert_eq!(
            prices(&store.price_history(OTHER, at(0)).await.unwrap()),
            [(day20 + 200, 400_00)]
        );
        // Idempotent.
        assert_eq!(store.compact_price_history(at(now)).await.unwrap(), 0);
        // A day later, the boundary day's rows fold into one: the minimum.
        assert_eq!(store.compact_price_history(at(now + DAY)).await.unwrap(), 2);
        let kept = prices(&store.price_history(KEY, at(cutoff - DAY)).await.unwrap());
        assert_eq!(kept, [(cutoff - 1, 150_00), (now - 3600, 330_00), (now - 1800, 320_00)]);
    }
}

fn route(depart_in_days: i64) -> Route {
    Route {
        line: 2,
        label: None,
        origins: ["LHR", "LGW"]
            .iter()
            .map(|c| Iata::parse(c).unwrap())
            .collect(),
        destinations: vec![Iata::parse("JFK").unwrap()],
        depart: DateRange::parse(&days_from_today(depart_in_days)).unwrap(),
        return_dates: None,
        adults: 1,
        rule: Rule {
            // Never alerts: only the history matters here.
            max_price: Money::from_minor(1, Currency::EUR),
            min_drop: MinDrop::Zero,
            cooldown: None,
        },
        recipients: Vec::new(),
        active: true,
        namespace: None,
    }
}

fn engine(store: Store, cache: QuoteCache, dry_run: bool) -> Arc<Engine> {
    let source: Arc<dyn FareSource> = Arc::new(DemoSource::new(Duration::ZERO));
    let limits = source.default_limits();
    Arc::new(Engine::new(EngineParts {
        fares: Arc::new(Failover::single(Arc::new(FarePool::new(source, limits)))),
        cache,
        notifier: Arc::new(ConsoleNotifier::new(ConsoleTarget::Stderr)),
        notify_limits: NotifyLimits {
            max_concurrency: 4,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
            settle_delay: Duration::from_millis(5),
            settle_bound: Duration::from_secs(5),
        },
        store,
        dry_run,
    }))
}

/// Each of the route's searches and its history.
async fn histories(store: &Store, route: &Route) -> Vec<Vec<PricePoint>> {
    let today = jiff::Zoned::now().date();
    let mut out = Vec::new();
    for key in route.lookups_from(today) {
        let points = store
            .price_history(&key.history_key(), at(0))
            .await
            .unwrap();
        for p in &points {
            assert_eq!(p.price, DemoSource::price_for(&key), "{key}");
            assert_eq!(p.source, "demo");
        }
        out.push(points);
    }
    out
}

on_both_backends! {
    async fn a_cycle_records_fresh_quotes_not_cached_ones(db: TestDb) {
        let store = db.open().await;
        let r = route(30);
        let cache = QuoteCache::memory(Duration::from_secs(600));
        let engine = engine(store.clone(), cache, false);

        let report = engine.run_cycle(vec![r.clone()], Arc::new(NoProgress)).await.unwrap();
        assert_eq!((report.summary.lookups, report.summary.cache_hits), (2, 0));
        let first = histories(&store, &r).await;
        assert_eq!(first.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1], "one point per fresh lookup");

        // The same searches again, answered by the cache: nothing new.
        let report = engine.run_cycle(vec![r.clone()], Arc::new(NoProgress)).await.unwrap();
        assert_eq!((report.summary.lookups, report.summary.cache_hits), (0, 2));
        assert_eq!(histories(&store, &r).await, first);
    }
}

on_both_backends! {
    async fn a_dry_run_records_nothing(db: TestDb) {
        let store = db.open().await;
        let r = route(31);
        let engine = engine(store.clone(), QuoteCache::off(), true);
        let report = engine.run_cycle(vec![r.clone()], Arc::new(NoProgress)).await.unwrap();
        assert_eq!(report.summary.lookups, 2, "looked up");
        assert!(histories(&store, &r).await.iter().all(Vec::is_empty), "recorded nothing");
    }
}
