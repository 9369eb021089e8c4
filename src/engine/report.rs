//! What a cycle reports: per-route outcomes and totals (the JSON contract).

use std::fmt;
use std::sync::Arc;

use jiff::civil::Date;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::domain::{Currency, Iata};
use crate::route::Route;

/// Where a route stands after the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    /// The cheapest fare is at or below the maximum.
    Below,
    /// The cheapest fare is above the maximum.
    Above,
    /// Every lookup answered, none had offers.
    NoOffers,
    /// Lookups failed (or answered in another currency): nothing decided.
    Error,
    /// The row has `active=false`.
    Inactive,
}

/// What happened to a route's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    /// Every recipient's message was accepted (now or in an earlier run).
    Sent,
    /// At or below, but already alerted for this drop or cooling down.
    Suppressed,
    /// At least one recipient's message was not accepted; retried next cycle.
    Failed,
    /// Another run sharing the database sent it (overlapping runs): not sent
    /// by this run, and not a failure.
    SentElsewhere,
    /// Another run that is still alive is sending it (overlapping runs):
    /// left to that run, not a failure.
    InProgressElsewhere,
    /// An alert was due but `--dry-run` sent nothing.
    DryRun,
    /// No alert due.
    None,
}

/// The lookup that produced a route's price: its airports and dates, and
/// the quote itself, shared with every route that asked the same lookup
/// (its provider, when it was fetched, whether it was cached, its link)
/// rather than copied into each report (~70 bytes and an allocation a
/// route). Serialized flat: `origin`, `destination`, `depart_date`,
/// `return_date`, `provider`, `fetched_at`, `cached`, `link` (when there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cheapest {
    /// Origin airport of the cheapest fare.
    pub origin: Iata,
    /// Destination airport of the cheapest fare.
    pub destination: Iata,
    /// Its departure date.
    pub depart_date: Date,
    /// Its return date, for round trips.
    pub return_date: Option<Date>,
    /// The quote.
    pub quote: Arc<crate::domain::Quote>,
}

impl Cheapest {
    /// The provider that quoted it.
    pub fn provider(&self) -> &str {
        &self.quote.provider
    }

    /// When the provider was asked.
    pub fn fetched_at(&self) -> jiff::Timestamp {
        self.quote.fetched_at
    }

    /// Whether it is a cached price (other users' recent searches) rather
    /// than a live one.
    pub fn cached(&self) -> bool {
        self.quote.cached
    }

    /// A booking or search link, where the provider gave one.
    pub fn link(&self) -> Option<&str> {
        self.quote.link.as_deref()
    }
}

impl Serialize for Cheapest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let link = self.link();
        let mut out = serializer.serialize_struct("Cheapest", 7 + usize::from(link.is_some()))?;
        out.serialize_field("origin", &self.origin)?;
        out.serialize_field("destination", &self.destination)?;
        out.serialize_field("depart_date", &self.depart_date)?;
        out.serialize_field("return_date", &self.return_date)?;
        out.serialize_field("provider", self.provider())?;
        out.serialize_field("fetched_at", &self.fetched_at())?;
        out.serialize_field("cached", &self.cached())?;
        if let Some(link) = link {
            out.serialize_field("link", link)?;
        }
        out.end()
    }
}

/// A route of a cycle, shared with the cycle's whole routes vector rather
/// than copied behind an `Arc` of its own: a cycle keeps one report per
/// route until it ends, and copying each route (~200 bytes) while the
/// vector still held it was the peak of a large cycle's memory. Derefs to
/// the [`Route`].
#[derive(Clone)]
pub struct RouteRef {
    routes: Arc<Vec<Route>>,
    index: usize,
}

impl RouteRef {
    /// The `index`th of `routes`.
    ///
    /// # Panics
    /// If `index` is out of bounds: a cycle only makes references to its
    /// own routes.
    pub fn new(routes: Arc<Vec<Route>>, index: usize) -> Self {
        assert!(index < routes.len(), "a route of the cycle");
        Self { routes, index }
    }

    /// A reference to a route on its own (tests, single-route callers).
    pub fn single(route: Route) -> Self {
        Self::new(Arc::new(vec![route]), 0)
    }
}

impl std::ops::Deref for RouteRef {
    type Target = Route;
    fn deref(&self) -> &Route {
        &self.routes[self.index]
    }
}

impl fmt::Debug for RouteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Route::fmt(self, f)
    }
}

/// One route's result.
///
/// It refers to its route rather than copying the row's text: a cycle keeps
/// one report per route until it ends, so every byte here is multiplied by
/// the sheet's length. The JSON has the row's fields all the same
/// (`origin`, `destination`, `depart_date`, `return_date`, `currency`,
/// `label`), and the price (`price`, `price_minor`) and `max_price` come
/// from the cheapest quote and the row's rule rather than being kept twice.
#[derive(Debug, Clone)]
pub struct RouteReport {
    /// The row reported on.
    pub route: RouteRef,
    /// The row's line in the sheet.
    pub row: usize,
    /// Where the route stands.
    pub status: RouteStatus,
    /// What happened to its alert.
    pub alert: AlertOutcome,
    /// The cheapest lookup, when there was a price.
    pub cheapest: Option<Cheapest>,
    /// Lookups the row expands to.
    pub lookups: u32,
    /// Problems: failed lookups (provider, route and cause) and failed sends.
    pub errors: thin_vec::ThinVec<String>,
    /// Messages accepted for this route in this cycle.
    pub messages_sent: u32,
    /// Messages not accepted for this route in this cycle.
    pub messages_failed: u32,
    /// Messages another run sent or is sending (overlapping runs).
    pub messages_elsewhere: u32,
    /// Its alert is not settled: the outbox could not be written, the
    /// channel refused it for now, or whether it was delivered is still
    /// unknown. The next check of the route settles it; a fleet checks
    /// such a route again at its next tick, not an interval later.
    pub unsettled: bool,
}

impl RouteReport {
    /// The cheapest price found in minor units (exact), in `currency`.
    pub fn price_minor(&self) -> Option<i64> {
        self.cheapest
            .as_ref()
            .map(|cheapest| cheapest.quote.price.minor)
    }

    /// The cheapest price found, as a decimal number in `currency`.
    pub fn price(&self) -> Option<f64> {
        self.cheapest
            .as_ref()
            .map(|cheapest| cheapest.quote.price.to_f64())
    }

    /// The row's maximum, as a decimal number.
    pub fn max_price(&self) -> f64 {
        self.route.rule.max_price.to_f64()
    }

    /// The row's label.
    pub fn label(&self) -> Option<&str> {
        self.route.label.as_deref()
    }

    /// Origins as in the sheet (`LHR|LGW`).
    pub fn origin(&self) -> String {
        Places(&self.route.origins).to_string()
    }

    /// Destinations as in the sheet.
    pub fn destination(&self) -> String {
        Places(&self.route.destinations).to_string()
    }

    /// Departure date or range.
    pub fn depart_date(&self) -> String {
        self.route.depart.to_string()
    }

    /// Return date or range.
    pub fn return_date(&self) -> Option<String> {
        self.route.return_dates.map(|r| r.to_string())
    }

    /// The row's currency.
    pub fn currency(&self) -> Currency {
        self.route.currency()
    }
}

/// Airports as the sheet writes several: `LHR|LGW`.
struct Places<'a>(&'a [Iata]);

impl fmt::Display for Places<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, code) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("|")?;
            }
            f.write_str(code.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for RouteReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let route = &self.route;
        let label = route.label.as_deref();
        let fields = 13 + usize::from(label.is_some()) + usize::from(!self.errors.is_empty());
        let mut out = serializer.serialize_struct("RouteReport", fields)?;
        out.serialize_field("row", &self.row)?;
        if let Some(label) = label {
            out.serialize_field("label", label)?;
        }
        out.serialize_field("origin", &Places(&route.origins).to_string())?;
        out.serialize_field("destination", &Places(&route.destinations).to_string())?;
        out.serialize_field("depart_date", &route.depart.to_string())?;
        out.serialize_field("return_date", &self.return_date())?;
        out.serialize_field("price", &self.price())?;
        out.serialize_field("price_minor", &self.price_minor())?;
        out.serialize_field("currency", route.currency().as_str())?;
        out.serialize_field("max_price", &self.max_price())?;
        out.serialize_field("status", &self.status)?;
        out.serialize_field("alert", &self.alert)?;
        out.serialize_field("cheapest", &self.cheapest)?;
        out.serialize_field("lookups", &self.lookups)?;
        if !self.errors.is_empty() {
            out.serialize_field("errors", &self.errors)?;
        }
        out.end()
    }
}

/// Totals for a cycle.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Valid rows in the sheet (inactive ones included).
    pub routes: usize,
    /// Requests actually sent to fare providers.
    pub lookups: u64,
    /// Lookups answered by the cache.
    pub cache_hits: usize,
    /// Routes at or below their maximum.
    pub below: usize,
    /// Messages accepted by the channel.
    pub alerts_sent: usize,
    /// Messages the channel did not accept.
    pub alerts_failed: usize,
    /// Messages another run sharing the database sent or is sending
    /// (overlapping runs): neither sent by this run nor failed.
    pub alerts_elsewhere: usize,
    /// Unique lookups that failed.
    pub lookup_errors: usize,
    /// Rows the sheet reader rejected (filled in by the caller).
    pub invalid_rows: usize,
    /// Wall time of the cycle.
    pub elapsed_ms: u64,
    /// Each fare provider's counters (since the process started) and circuit breaker state.
    pub providers: Vec<crate::upstream::pool::PoolHealth>,
}

/// farewatch's version, as the report's `version` field.
pub(super) const REPORT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A finished cycle (the JSON output; its schema is `docs/report.schema.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CycleReport {
    /// The farewatch version that wrote the report.
    pub version: &'static str,
    /// When the cycle finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<jiff::Timestamp>,
    /// Totals.
    pub summary: Summary,
    /// One entry per valid row, in sheet order.
    pub routes: Vec<RouteReport>,
    /// Watched flights (`--flights`), when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flights: Vec<super::WatchReport>,
    /// Rows the sheet (or watch list) reader rejected, each with every
    /// problem found in it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid_rows: Vec<InvalidRow>,
    /// Remarks about the sheet that did not stop a row (unknown columns,
    /// clipped date ranges, duplicate rows), each `NAME:LINE: ...`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Default for CycleReport {
    fn default() -> Self {
        Self {
            version: REPORT_VERSION,
            finished_at: None,
            summary: Summary::default(),
            routes: Vec::new(),
            flights: Vec::new(),
            invalid_rows: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl CycleReport {
    /// The routes' problems grouped by cause, most frequent first: a failed
    /// lookup's `KEY: ` prefix is dropped and each provider's failure counted
    /// once per lookup, so an outage is one line per provider and cause.
    pub fn problems(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for route in &self.routes {
            for error in &route.errors {
                // `LHR-JFK 2027-01-03: serpapi: ...; duffel: ...`
                let cause = match error.split_once(": ") {
                    Some((key, rest)) if is_lookup_key(key) => rest,
                    _ => error.as_str(),
                };
                for part in cause.split("; ") {
                    *counts.entry(part).or_default() += 1;
                }
            }
        }
        let mut grouped: Vec<(String, usize)> =
            counts.into_iter().map(|(c, n)| (c.to_owned(), n)).collect();
        grouped.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        grouped
    }
}

/// Whether `text` is a lookup key as displayed (`LHR-JFK 2027-01-03`,
/// maybe followed by ` return 2027-01-10`).
fn is_lookup_key(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 18
        && b[3] == b'-'
        && b[7] == b' '
        && b[..3].iter().chain(&b[4..7]).all(u8::is_ascii_uppercase)
        && text[8..18].parse::<Date>().is_ok()
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidRow {
    /// The sheet's name as shown (a URL without credentials).
    pub source: String,
    /// 1-based line where the row starts.
    pub line: usize,
    /// Every problem in the row: the column at fault (`row` for the row as
    /// a whole) and what is wrong.
    pub problems: Vec<RowProblem>,
}

/// One problem in a rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    /// The column at fault (lower-case header), or `row`.
    pub column: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl InvalidRow {
    /// Groups per-cell errors into rows, in line order.
    pub fn group(mut errors: Vec<crate::sheet::RowError>) -> Vec<Self> {
        // Stable: a row's problems keep the order they were found in.
        errors.sort_by(|a, b| (a.line, &a.source).cmp(&(b.line, &b.source)));
        let mut rows: Vec<Self> = Vec::new();
        for error in errors {
            let problem = RowProblem {
                column: error.column,
                message: error.message,
            };
            match rows.last_mut() {
                Some(row) if row.line == error.line && row.source == error.source => {
                    row.problems.push(problem);
                }
                _ => rows.push(Self {
                    source: error.source,
                    line: error.line,
                    problems: vec![problem],
                }),
            }
        }
        rows
    }
}

/// `count` added to a report's counter, which saturates (a report keeps
/// its counters in 32 bits: every byte of it is held for every route).
pub(super) fn add_count(counter: u32, count: usize) -> u32 {
    counter.saturating_add(u32::try_from(count).unwrap_or(u32::MAX))
}

pub(super) fn base_report(route: &RouteRef, lookups: usize) -> RouteReport {
    RouteReport {
        route: route.clone(),
        row: route.line,
        status: RouteStatus::Error,
        alert: AlertOutcome::None,
        cheapest: None,
        lookups: add_count(0, lookups),
        errors: thin_vec::ThinVec::new(),
        messages_sent: 0,
        messages_failed: 0,
        messages_elsewhere: 0,
        unsettled: false,
    }
}

pub(super) fn inactive_report(route: &RouteRef) -> RouteReport {
    RouteReport {
        status: RouteStatus::Inactive,
        ..base_report(route, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counters_add_and_saturate() {
        assert_eq!(add_count(2, 3), 5);
        assert_eq!(add_count(u32::MAX - 1, 5), u32::MAX);
        assert_eq!(add_count(0, usize::MAX), u32::MAX);
    }
}
