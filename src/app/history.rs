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
//!
//! A sheet row and an API watch are both a [`Route`], and share the rest:
//! [`load_route`] (every lookup, past dates included), [`route_extras`]
//! (the route's maximum price, and the alerts sent for it from the sent
//! log, under its [`Route::id`]) and [`route_title`]. [`sheet_row`] finds a
//! row by its line, [`watch_route`] reads a stored watch.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::Date;
use jiff::Timestamp;

use crate::chart::{self, ChartError, ChartSpec, ImageFormat, Point};
use crate::domain::{Currency, Iata, LookupKey, Money};
use crate::route::Route;
use crate::sheet::{RowError, Sheet, SheetOptions};
use crate::store::{ApiWatch, PricePoint, Store, StoreError};
use crate::verdict::{self, Verdict};

/// Most sent messages scanned for a route's alerts (newest first): the
/// sent log is shared by every row and watch, so this bounds the read.
pub const ALERT_SCAN: usize = crate::api::watches::HISTORY_SCAN;

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

/// How a sheet is parsed to find a row's history: dates before today are
/// no error (a row whose dates have passed still has a history), rows
/// without a currency take `default_currency`.
pub fn sheet_options(default_currency: Currency) -> SheetOptions {
    SheetOptions {
        default_currency,
        today: Date::MIN,
    }
}

/// What one line of a parsed sheet holds.
#[derive(Debug)]
pub enum SheetRow<'a> {
    /// A valid row starts there.
    Route(&'a Route),
    /// A row starts there, but it is invalid: every problem.
    Invalid(Vec<&'a RowError>),
    /// No row starts there (the header, a blank or comment line, a
    /// duplicate that was ignored, or past the end).
    Missing,
}

/// The row starting on 1-based `line` of `sheet` (the `ROW` of `check`'s
/// table, the `NAME:LINE` of its messages).
pub fn sheet_row(sheet: &Sheet, line: usize) -> SheetRow<'_> {
    if let Some(route) = sheet.routes.iter().find(|r| r.line == line) {
        return SheetRow::Route(route);
    }
    let errors: Vec<&RowError> = sheet.errors.iter().filter(|e| e.line == line).collect();
    if errors.is_empty() {
        SheetRow::Missing
    } else {
        SheetRow::Invalid(errors)
    }
}

/// A stored fare watch as the route the cycles check (its alert state
/// namespaced to the watch), read whatever today's date, so a watch whose
/// dates have passed still has a history; or why its fields no longer
/// parse.
pub fn watch_route(watch: &ApiWatch) -> Result<Route, Vec<RowError>> {
    crate::api::watches::fare_route(watch, &sheet_options(Currency::EUR)).map(|(route, _)| route)
}

/// The history of a route (a sheet row or an API watch): [`load_many`]
/// over every lookup it expands to, past dates included.
pub async fn load_route(
    store: &Store,
    route: &Route,
    since: Timestamp,
    now: Timestamp,
) -> Result<History, StoreError> {
    load_many(store, &route.lookups(), since, now).await
}

/// When alerts were sent for `route` at or after `after`, newest first:
/// the sent messages recorded under its [`Route::id`] (one per recipient)
/// among the last [`ALERT_SCAN`] sent.
pub async fn alerts_sent(
    store: &Store,
    route: &Route,
    after: Timestamp,
) -> Result<Vec<Timestamp>, StoreError> {
    let id = route.id();
    Ok(store
        .sent_log(ALERT_SCAN)
        .await?
        .into_iter()
        .filter(|sent| sent.route_id == id && sent.sent_at >= after)
        .map(|sent| sent.sent_at)
        .collect())
}

/// What a route's chart draws besides its history: its maximum price as
/// a line and the alerts sent for it at or after `after` ([`alerts_sent`]).
pub async fn route_extras(
    store: &Store,
    route: &Route,
    after: Timestamp,
) -> Result<ChartExtras, StoreError> {
    Ok(ChartExtras {
        max_price: Some(route.rule.max_price),
        alerts_at: alerts_sent(store, route, after).await?,
    })
}

/// `LHR → JFK, 2027-03-01`: a route's chart title (several airports
/// joined by `|`, date ranges as the sheet writes them).
pub fn route_title(route: &Route) -> String {
    let codes = |c: &[Iata]| c.iter().map(|i| i.as_str()).collect::<Vec<_>>().join("|");
    let mut title = format!(
        "{} → {}, {}",
        codes(&route.origins),
        codes(&route.destinations),
        route.depart
    );
    if let Some(ret) = route.return_dates {
        title.push_str(&format!(" – {ret}"));
    }
    title
}

/// What [`svg`] and [`write_chart`] draw besides the history.
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
    with_spec(history, currency, title, extras, chart::svg)
}

/// The chart of [`svg`] written to `path`, as SVG or PNG by its extension
/// ([`chart::write`]); returns the format written.
pub fn write_chart(
    history: &History,
    currency: Currency,
    title: &str,
    extras: &ChartExtras,
    path: &Path,
) -> Result<ImageFormat, ChartError> {
    with_spec(history, currency, title, extras, |spec| {
        chart::write(spec, path)
    })
}

/// Calls `draw` with the [`ChartSpec`] of the history and its extras.
fn with_spec<T>(
    history: &History,
    currency: Currency,
    title: &str,
    extras: &ChartExtras,
    draw: impl FnOnce(&ChartSpec<'_>) -> T,
) -> T {
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
    draw(&ChartSpec {
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
    fn a_row_is_found_by_its_line() {
        let csv = "origin,destination,depart_date,max_price,phone\n\
                   # a comment\n\
                   LHR|LGW,JFK,2020-03-01..2020-03-02,350,+447911123456\n\
                   LHR,XXXX,2020-03-01,350,+447911123456\n";
        let sheet =
            crate::sheet::parse("routes.csv", csv.as_bytes(), &sheet_options(Currency::EUR))
                .unwrap();
        let SheetRow::Route(route) = sheet_row(&sheet, 3) else {
            panic!("line 3 is a row: {sheet:?}");
        };
        // Past dates are no error, and every date is a lookup.
        assert_eq!(route.lookups().len(), 4);
        assert_eq!(route_title(route), "LHR|LGW → JFK, 2020-03-01..2020-03-02");
        let SheetRow::Invalid(errors) = sheet_row(&sheet, 4) else {
            panic!("line 4 is an invalid row");
        };
        assert_eq!(errors[0].column, "destination");
        assert!(matches!(sheet_row(&sheet, 2), SheetRow::Missing));
        assert!(matches!(sheet_row(&sheet, 1), SheetRow::Missing));
        assert!(matches!(sheet_row(&sheet, 9), SheetRow::Missing));
    }

    #[test]
    fn an_empty_history_is_unknown() {
        let history = summarize(Vec::new(), Timestamp::MIN, Timestamp::now());
        assert_eq!(history.verdict, Verdict::Unknown);
        assert!(history.latest.is_none());
    }
}
