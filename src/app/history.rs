//! A search's price history with its verdict and chart: what
//! `farewatch history` prints and `GET /users/{email}/watches/{id}/history`
//! (and `.../history.svg`) serve.
//!
//! A search is one [`LookupKey`] ([`load`]); a watch or a sheet row may
//! expand to several (origins, destinations, dates), and [`load_many`]
//! reduces them to one series: **the cheapest price per observation time**
//! across its lookups (a cycle records every lookup of a row at the same
//! time, so each point is "the best the row could book then"). The verdict
//! is [`verdict::from_history`] on that series for its latest price, with
//! the typical range of [`verdict::typical_range`] (the last
//! [`verdict::WINDOW`], whatever `since` is).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::chart::{self, ChartError, ChartSpec, Point};
use crate::domain::{Currency, LookupKey, Money};
use crate::store::{PricePoint, Store, StoreError};
use crate::verdict::{self, Verdict};

/// A search's (or a row's) recent prices and where the latest stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    /// The observations at or after `since`, oldest first.
    pub points: Vec<PricePoint>,
    /// The newest observation (also the last of `points` when there are any).
    pub latest: Option<PricePoint>,
    /// The typical range (25th to 75th percentile of the daily minimums
    /// of the last 60 days); `None` with too little history.
    pub typical_range: Option<(Money, Money)>,
    /// The verdict on the latest price ([`Verdict::Unknown`] without one).
    pub verdict: Verdict,
}

impl History {
    /// The prices in minor units, oldest first (for [`chart::sparkline`]).
    pub fn prices(&self) -> Vec<i64> {
        self.points.iter().map(|p| p.price.minor).collect()
    }
}

/// The history of one search: its observations since `since`, and the
/// verdict on the latest at `now`.
pub async fn load(
    store: &Store,
    key: &LookupKey,
    since: Timestamp,
    now: Timestamp,
) -> Result<History, StoreError> {
    load_many(store, std::slice::from_ref(key), since, now).await
}

/// The history of several searches (a watch's lookups) as one series: the
/// cheapest price per observation time in `currency` of the first key
/// (see the module docs).
pub async fn load_many(
    store: &Store,
    keys: &[LookupKey],
    since: Timestamp,
    now: Timestamp,
) -> Result<History, StoreError> {
    let window = now.checked_sub(verdict::WINDOW).unwrap_or(Timestamp::MIN);
    let from = since.min(window);
    let currency = keys.first().map(|k| k.currency);
    let mut cheapest: BTreeMap<Timestamp, PricePoint> = BTreeMap::new();
    for key in keys {
        for point in store.price_history(&key.history_key(), from).await? {
            if Some(point.price.currency) != currency {
                continue;
            }
            match cheapest.get(&point.observed_at) {
                Some(kept) if kept.price.minor <= point.price.minor => {}
                _ => {
                    cheapest.insert(point.observed_at, point);
                }
            }
        }
    }
    let all: Vec<PricePoint> = cheapest.into_values().collect();
    Ok(summarize(all, since, now))
}

/// The [`History`] of `all` (oldest first): points since `since`, the
/// verdict at `now` on the newest.
pub fn summarize(all: Vec<PricePoint>, since: Timestamp, now: Timestamp) -> History {
    let latest = all.iter().rev().find(|p| p.observed_at <= now).cloned();
    let (typical_range, verdict) = match &latest {
        Some(latest) => (
            verdict::typical_range(&all, latest.price.currency, now),
            verdict::from_history(latest.price, &all, now),
        ),
        None => (None, Verdict::Unknown),
    };
    let points = all.into_iter().filter(|p| p.observed_at >= since).collect();
    History {
        points,
        latest,
        typical_range,
        verdict,
    }
}

/// What [`svg`] draws besides the history.
#[derive(Debug, Clone, Default)]
pub struct ChartExtras {
    /// The row's maximum price, drawn as a line.
    pub max_price: Option<Money>,
    /// When alerts were sent; each is marked on the price seen at (or
    /// last before) that time.
    pub alerts_at: Vec<Timestamp>,
}

/// The history as an SVG chart titled `title`: the prices, the typical
/// range shaded, and the `extras`.
pub fn svg(
    history: &History,
    currency: Currency,
    title: &str,
    extras: &ChartExtras,
) -> Result<String, ChartError> {
    let points: Vec<Point> = history
        .points
        .iter()
        .map(|p| Point {
            at: p.observed_at,
            price_minor: p.price.minor,
        })
        .collect();
    let alerts: Vec<Point> = extras
        .alerts_at
        .iter()
        .filter_map(|&at| {
            points.iter().rev().find(|p| p.at <= at).map(|p| Point {
                at,
                price_minor: p.price_minor,
            })
        })
        .collect();
    let code = currency.as_str().to_owned();
    chart::svg(&ChartSpec {
        title,
        currency: &code,
        decimals: currency.exponent(),
        points: &points,
        max_price_minor: extras
            .max_price
            .filter(|m| m.currency == currency)
            .map(|m| m.minor),
        alerts: &alerts,
        typical_range: history.typical_range.map(|(lo, hi)| (lo.minor, hi.minor)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(day: i64, minor: i64) -> PricePoint {
        PricePoint {
            search_key: "k".into(),
            observed_at: Timestamp::from_second(1_800_000_000 + day * 86_400).unwrap(),
            price: Money::from_minor(minor, Currency::EUR),
            source: "demo".into(),
        }
    }

    #[test]
    fn summarize_judges_the_latest_price() {
        let mut all: Vec<PricePoint> = (0..10).map(|d| point(d, 40_000 + d * 10)).collect();
        all.push(point(10, 30_000));
        let now = all.last().unwrap().observed_at;
        let since = point(5, 0).observed_at;
        let history = summarize(all, since, now);
        assert_eq!(history.points.len(), 6);
        assert_eq!(history.latest.as_ref().unwrap().price.minor, 30_000);
        assert_eq!(history.verdict, Verdict::Low);
        assert!(history.typical_range.is_some());
    }

    #[test]
    fn an_empty_history_is_unknown() {
        let history = summarize(Vec::new(), Timestamp::MIN, Timestamp::now());
        assert_eq!(history.verdict, Verdict::Unknown);
        assert!(history.latest.is_none());
    }
}
