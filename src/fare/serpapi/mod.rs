//! SerpApi's Google Flights engine (`engine=google_flights`): live Google
//! Flights prices, with Google's own low/typical/high verdict.
//!
//! | | |
//! |---|---|
//! | needs | a SerpApi API key (`SERPAPI_API_KEY`, from serpapi.com/manage-api-key) |
//! | costs | one search credit per lookup; plans sell a monthly number of searches (a small free tier exists). SerpApi counts only successful searches, and answers a search identical to one made within the last hour from its own cache, free (farewatch does not send `no_cache`) |
//! | prices | **live**: what Google Flights shows now (`Quote::cached` is `false`), at most an hour old (SerpApi's cache), in the requested currency, for the whole trip and (as Google Flights shows it; not confirmed for SerpApi) all `adults`, plus `price_insights` (lowest price, low/typical/high, typical range, price history) |
//! | limits | a monthly search allowance plus an hourly throughput cap, both per plan; no rate-limit headers. HTTP 429 means either one is used up |
//!
//! One lookup is one request: `GET {base}/search.json` with the route, dates,
//! `type=1` (round trip, with `return_date`) or `type=2` (one way), `adults`,
//! `stops` for a stop limit (`1` nonstop, `2` at most one, `3` at most two),
//! `currency` and `hl=en`. For a round trip the prices on the outbound list
//! are already round-trip totals, so the `departure_token` follow-up that
//! lists return flights is never needed for a price.
//!
//! The quote's [`Itinerary`] is the outbound of the cheapest option: its legs'
//! airline names, its number of legs less one as stops, and its
//! `total_duration`. With a stop limit, options with more stops (or with legs
//! too garbled to count) are skipped whatever SerpApi was asked, since the
//! `stops` values are not confirmed; the outbound is all a reply shows, so
//! the return's stops are left to SerpApi's own filter.
//!
//! The API key travels in the query string (SerpApi has no header for it),
//! so request URLs are never logged or quoted in errors, and any echo of the
//! key in a reply is replaced with `[REDACTED]`.
//!
//! Nothing is retried here: failures come back as typed [`UpstreamError`]s and
//! the pool decides about retries.
//!
//! The replies it reads are in `tests/fixtures/fares/serpapi-*.json`; the
//! API is documented at <https://serpapi.com/google-flights-api>, its error
//! statuses at <https://serpapi.com/api-status-and-error-codes>.

mod wire;

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::itinerary::{airlines, known, stops, within};
use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Currency, Itinerary, LookupKey, Money, PriceInsights, PriceLevel, Quote};
use crate::upstream::reply::{error_for_status, redact, Reply};
use crate::upstream::wire::Amount;

use wire::Lenient;

/// SerpApi's API host, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://serpapi.com";

/// A sensible per-request timeout. SerpApi drives a real Google Flights
/// search: the captured reply took 2 s (`total_time_taken`), and slow ones
/// take several times that, so the timeout is longer than for an API that
/// answers from a database.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The name this source goes by in logs, cache keys and reports.
const NAME: &str = "serpapi";

const SEARCH_PATH: &str = "/search.json";

/// `type`: 1 is a round trip (SerpApi's default, needs `return_date`), 2 one way.
const TYPE_ROUND_TRIP: &str = "1";
const TYPE_ONE_WAY: &str = "2";

/// `hl`: the language of Google's texts. Prices do not depend on it; fixing
/// it keeps replies (and any error text we quote) the same for every user.
const LANGUAGE: &str = "en";

/// Requests started per second. SerpApi publishes no per-second limit, only
/// an hourly throughput cap per plan (the Account API example shows 6,000 an
/// hour, i.e. under 2 a second, on a 30,000-a-month plan) and the monthly
/// allowance, which is what really binds: at 5 a second a small plan's month
/// is gone in minutes. 5 a second keeps a cycle of a few dozen lookups quick
/// without hammering the API; the per-day and per-month budget belongs to the
/// pool's budget settings, not to this rate.
const RATE_PER_SEC: f64 = 5.0;

/// Requests in flight at once. A search takes about 2 to 5 s, so 10 in flight
/// is what 5 a second needs to keep the rate limiter, not this cap, in charge.
const MAX_CONCURRENCY: usize = 10;

/// Added to every message about a rejected key.
const KEY_HINT: &str = "check SERPAPI_API_KEY";

/// How to reach SerpApi.
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct SerpApiConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// The account's private API key.
    pub api_key: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl SerpApiConfig {
    /// The production API with [`DEFAULT_TIMEOUT`].
    pub fn new(api_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The SerpApi Google Flights fare source.
///
/// `Debug` never shows the API key.
pub struct SerpApi {
    client: reqwest::Client,
    config: SerpApiConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    search_url: String,
}

impl SerpApi {
    /// A source using the shared `client`.
    pub fn new(client: reqwest::Client, config: SerpApiConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        Self {
            client,
            search_url: format!("{base_url}{SEARCH_PATH}"),
            base_url,
            config,
        }
    }

    /// One `GET /search.json?engine=google_flights`.
    async fn search(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let fetched_at = Timestamp::now();
        let depart = key.depart.to_string();
        let return_date = key.return_date.map(|d| d.to_string());
        let adults = key.adults.to_string();
        let mut query: Vec<(&str, &str)> = Vec::with_capacity(11);
        query.push(("engine", "google_flights"));
        query.push(("departure_id", key.origin.as_str()));
        query.push(("arrival_id", key.destination.as_str()));
        query.push(("outbound_date", &depart));
        match &return_date {
            Some(return_date) => {
                query.push(("return_date", return_date));
                query.push(("type", TYPE_ROUND_TRIP));
            }
            None => query.push(("type", TYPE_ONE_WAY)),
        }
        query.push(("adults", &adults));
        if let Some(stops) = key.max_stops.and_then(stops_param) {
            query.push(("stops", stops));
        }
        query.push(("currency", key.currency.as_str()));
        query.push(("hl", LANGUAGE));
        query.push(("api_key", self.config.api_key.expose_secret()));

        let secrets = self.secrets();
        let request = self
            .client
            .get(&self.search_url)
            .query(&query)
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if reply.status.is_success() {
            cheapest_itinerary(&reply, key, fetched_at, &secrets)
        } else {
            Err(self.status_error(&reply))
        }
    }

    /// Maps a non-2xx reply (`tests/fixtures/fares/serpapi-error-*.json`).
    ///
    /// HTTP 429 is ambiguous: SerpApi sends it both when the plan's hourly
    /// throughput is exceeded (come back later) and when the account has
    /// run out of searches for the month (coming back will not help), and
    /// says which only in free text, which is not a contract. It is
    /// reported as [`UpstreamError::RateLimited`]: the pool backs off and the
    /// breaker opens if it persists. Telling the two apart belongs to the
    /// per-provider budgets (searches per day and per month), which will
    /// stop asking before the allowance runs out.
    fn status_error(&self, reply: &Reply) -> UpstreamError {
        let message = wire::error_message(&reply.body, &self.secrets());
        match reply.status {
            StatusCode::UNAUTHORIZED => {
                UpstreamError::Auth(format!("SerpApi rejected the API key ({message}); {KEY_HINT}"))
            }
            StatusCode::FORBIDDEN => UpstreamError::Auth(format!(
                "SerpApi refused the account (HTTP 403: {message}); it may be deleted or lack access to the Google Flights API; {KEY_HINT}"
            )),
            status => error_for_status(status, reply.retry_after(), None, message),
        }
    }

    /// What must never be quoted from a reply: the API key.
    fn secrets(&self) -> [&str; 1] {
        [self.config.api_key.expose_secret()]
    }
}

/// SerpApi's `stops` for at most `max` stops: `1` nonstop, `2` one stop or
/// fewer, `3` two or fewer (`0`, any, is the default). A looser limit has no
/// value of its own, so nothing is sent and the reply is filtered here as
/// always. (The enum is SerpApi's documented one; that the search honours it
/// exactly is not confirmed, hence the filtering in [`cheapest_itinerary`].)
fn stops_param(max: u8) -> Option<&'static str> {
    match max {
        0 => Some("1"),
        1 => Some("2"),
        2 => Some("3"),
        _ => None,
    }
}

/// The cheapest priced itinerary across `best_flights` and `other_flights`
/// within `key`'s stop limit, with its flights and Google's price insights,
/// or `None` when Google found nothing (or nothing within the limit).
///
/// `secrets` are redacted from any excerpt of the body in an error.
fn cheapest_itinerary(
    reply: &Reply,
    key: &LookupKey,
    fetched_at: Timestamp,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    let requested = key.currency;
    let parsed: wire::SearchReply = reply.json("search reply", secrets)?;
    if let Some(error) = parsed.error {
        // HTTP 200 with a top-level `error` is how SerpApi says "no results".
        let message = error.valid().unwrap_or_default();
        tracing::debug!(
            message = %redact(&message, secrets),
            "SerpApi found no flights"
        );
        return Ok(None);
    }
    let currency = reply_currency(parsed.search_parameters, requested)?;

    let mut cheapest: Option<(Money, Itinerary)> = None;
    for (list, itineraries) in [
        ("best_flights", &parsed.best_flights),
        ("other_flights", &parsed.other_flights),
    ] {
        for (index, option) in itineraries.iter().enumerate() {
            // Missing means "no price shown", never a free flight.
            let Some(amount) = option.price else {
                continue;
            };
            let Some(price) = positive_money(amount, currency) else {
                tracing::debug!(list, index, price = %amount.0, "skipping an itinerary with an impossible price");
                continue;
            };
            let legs = option.legs();
            let stop_count = legs.as_ref().map(|legs| legs.len() - 1);
            if key.max_stops.is_some() && !stop_count.is_some_and(|n| within(n, key.max_stops)) {
                // Over the limit, or flights too garbled to tell: not an answer to this search.
                tracing::debug!(list, index, stops = ?stop_count, "skipping an itinerary outside the stop limit");
                continue;
            }
            if cheapest
                .as_ref()
                .is_none_or(|(best, _)| price.checked_cmp(best) == Some(Ordering::Less))
            {
                let itinerary = Itinerary {
                    airline: legs
                        .as_ref()
                        .and_then(|legs| airlines(legs.iter().filter_map(|leg| leg.airline()))),
                    stops: stop_count.and_then(stops),
                    duration_minutes: option.total_minutes(),
                };
                cheapest = Some((price, itinerary));
            }
        }
    }
    let Some((price, itinerary)) = cheapest else {
        return Ok(None);
    };
    let link = parsed
        .search_metadata
        .and_then(Lenient::valid)
        .and_then(|m| m.google_flights_url)
        .and_then(Lenient::valid)
        .filter(|url| url.starts_with("https://"));
    let insights = parsed
        .price_insights
        .and_then(Lenient::valid)
        .and_then(|insights| price_insights(insights, currency));
    Ok(Some(Quote {
        price,
        provider: NAME.to_owned(),
        fetched_at,
        cached: false,
        found_at: None,
        link,
        insights,
        itinerary: known(itinerary),
    }))
}

/// The currency the prices are in: SerpApi's echo of `currency` when it has
/// one (it is what the prices were computed in), else the one requested.
fn reply_currency(
    parameters: Option<Lenient<wire::Parameters>>,
    requested: Currency,
) -> Result<Currency, UpstreamError> {
    let echoed = parameters
        .and_then(Lenient::valid)
        .and_then(|p| p.currency)
        .and_then(Lenient::valid);
    match echoed {
        Some(code) => Currency::parse(&code)
            .map_err(|e| UpstreamError::Decode(format!("search_parameters.currency: {e}"))),
        None => Ok(requested),
    }
}

/// A price in minor units, or `None` for zero, negative or absurd amounts.
fn positive_money(amount: Amount, currency: Currency) -> Option<Money> {
    Money::from_decimal(amount.0, currency).filter(|m| m.minor > 0)
}

/// `price_insights` in the quote's currency; `None` when nothing usable is left.
fn price_insights(insights: wire::Insights, currency: Currency) -> Option<PriceInsights> {
    let lowest = insights
        .lowest_price
        .and_then(Lenient::valid)
        .and_then(|a| positive_money(a, currency));
    let level = insights
        .price_level
        .and_then(Lenient::valid)
        .and_then(|level| match level.trim().to_ascii_lowercase().as_str() {
            "low" => Some(PriceLevel::Low),
            "typical" => Some(PriceLevel::Typical),
            "high" => Some(PriceLevel::High),
            _ => None,
        });
    let typical_range = insights
        .typical_price_range
        .and_then(Lenient::valid)
        .and_then(|(a, b)| Some((positive_money(a, currency)?, positive_money(b, currency)?)))
        .map(|(a, b)| if b.minor < a.minor { (b, a) } else { (a, b) });
    let mut history: Vec<(Timestamp, Money)> = insights
        .price_history
        .and_then(Lenient::valid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(Lenient::valid)
        .filter_map(|(secs, amount)| {
            Some((
                Timestamp::from_second(secs).ok()?,
                positive_money(amount, currency)?,
            ))
        })
        .collect();
    // Documented oldest first; sorting makes it so (stable: equal times keep their order).
    history.sort_by_key(|(at, _)| *at);
    if lowest.is_none() && level.is_none() && typical_range.is_none() && history.is_empty() {
        return None;
    }
    Some(PriceInsights {
        lowest,
        level,
        typical_range,
        history,
    })
}

impl fmt::Debug for SerpApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the API key must never reach a log.
        f.debug_struct("SerpApi")
            .field("base_url", &self.base_url)
            .field("api_key", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FareSource for SerpApi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: MAX_CONCURRENCY,
            rate_per_sec: RATE_PER_SEC,
            timeout: self.config.timeout,
        }
    }

    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let span = tracing::debug_span!("serpapi", route = %key);
        self.search(key).instrument(span).await
    }
}
