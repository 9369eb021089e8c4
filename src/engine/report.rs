//! What a cycle reports: per-route outcomes and totals (the JSON contract).

use crate::domain::Money;
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

/// The lookup that produced a route's price.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cheapest {
    /// Origin airport of the cheapest fare.
    pub origin: String,
    /// Destination airport of the cheapest fare.
    pub destination: String,
    /// Its departure date.
    pub depart_date: String,
    /// Its return date, for round trips.
    pub return_date: Option<String>,
    /// The provider that quoted it.
    pub provider: String,
    /// When the provider was asked.
    pub fetched_at: jiff::Timestamp,
    /// Whether it is a cached price (other users' recent searches) rather than a live one.
    pub cached: bool,
    /// A booking or search link, where the provider gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One route's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteReport {
    /// The row's line in the sheet.
    pub row: usize,
    /// The row's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Origins as in the sheet (`LHR|LGW`).
    pub origin: String,
    /// Destinations as in the sheet.
    pub destination: String,
    /// Departure date or range.
    pub depart_date: String,
    /// Return date or range.
    pub return_date: Option<String>,
    /// Cheapest price found, as a decimal number in `currency`.
    pub price: Option<f64>,
    /// The same price in minor units (exact).
    pub price_minor: Option<i64>,
    /// The row's currency.
    pub currency: String,
    /// The row's maximum.
    pub max_price: f64,
    /// Where the route stands.
    pub status: RouteStatus,
    /// What happened to its alert.
    pub alert: AlertOutcome,
    /// The cheapest lookup, when there was a price.
    pub cheapest: Option<Cheapest>,
    /// Lookups the row expands to.
    pub lookups: usize,
    /// Problems: failed lookups (provider, route and cause) and failed sends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Messages accepted for this route in this cycle.
    #[serde(skip)]
    pub messages_sent: usize,
    /// Messages not accepted for this route in this cycle.
    #[serde(skip)]
    pub messages_failed: usize,
    /// Messages another run sent or is sending (overlapping runs).
    #[serde(skip)]
    pub messages_elsewhere: usize,
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

/// A finished cycle.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CycleReport {
    /// Totals.
    pub summary: Summary,
    /// One entry per valid row, in sheet order.
    pub routes: Vec<RouteReport>,
    /// Watched flights (`--flights`), when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flights: Vec<super::WatchReport>,
}

fn money_number(m: &Money) -> f64 {
    m.to_decimal().to_string().parse().unwrap_or(f64::NAN)
}

pub(super) fn base_report(route: &Route, lookups: usize) -> RouteReport {
    let join = |codes: &[crate::domain::Iata]| {
        codes
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("|")
    };
    RouteReport {
        row: route.line,
        label: route.label.clone(),
        origin: join(&route.origins),
        destination: join(&route.destinations),
        depart_date: route.depart.to_string(),
        return_date: route.return_dates.map(|r| r.to_string()),
        price: None,
        price_minor: None,
        currency: route.currency().to_string(),
        max_price: money_number(&route.rule.max_price),
        status: RouteStatus::Error,
        alert: AlertOutcome::None,
        cheapest: None,
        lookups,
        errors: Vec::new(),
        messages_sent: 0,
        messages_failed: 0,
        messages_elsewhere: 0,
    }
}

pub(super) fn inactive_report(route: &Route) -> RouteReport {
    RouteReport {
        status: RouteStatus::Inactive,
        ..base_report(route, 0)
    }
}
