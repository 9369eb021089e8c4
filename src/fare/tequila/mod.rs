//! Kiwi.com Tequila flight search (`GET /v2/search`): live Kiwi prices with
//! a link to book them.
//!
//! | | |
//! |---|---|
//! | **needs** | a Tequila API key, `TEQUILA_API_KEY`, sent as the `apikey` header. **Kiwi has closed sign-ups**: by mid-2024 new keys were by invitation only, so this source is for people who already hold a partner key |
//! | **costs** | no published per-search fee: access came with Kiwi's affiliate programme (the `affilid` in every deep link), which pays partners commission on bookings rather than charging for searches; unconfirmed for keys still in use |
//! | **prices** | **live** results of Kiwi's own search, including its self-transfer ("virtual interlining") combinations, for every passenger, in the asked-for currency (`curr`). Each quote carries Kiwi's `deep_link` to book it |
//! | **limits** | not published (per partner); no rate-limit headers are known. Defaults here: 1 lookup a second, 4 in flight ([`Tequila::default_limits`](crate::fare::FareSource::default_limits)) |
//!
//! The search asks for one departure day (`date_from` = `date_to`, written
//! `dd/mm/YYYY`), and for a return trip one return day too, economy
//! (`selected_cabins=M`), sorted by price, and `max_stopovers` when the
//! lookup limits the stops. Of the first 20 itineraries the cheapest is
//! taken, skipping the hidden-city and throw-away fares Kiwi can sell (an
//! ordinary traveller cannot use them) and, with a stop limit, any with
//! more stops on either direction than asked, whatever Kiwi sent.
//!
//! The quote's [`Itinerary`] is the outbound of the chosen one: the airline
//! codes of its `route` segments (`return: 0`), their number less one as
//! stops, and `duration.departure` (seconds) as minutes.
//!
//! Tequila's `price` is a JSON number, integer or fraction; it becomes an
//! exact decimal with the digits as written (the private `wire::Amount`
//! explains how), then the currency's minor units. Its `local_*` times carry
//! a false `Z`; only `utc_*` are instants (the return leg of
//! `tests/fixtures/fares/tequila-search-LON-PAR-captured.json`, a captured
//! reply, has `local_departure` 17:25Z for `utc_departure` 16:25Z), and
//! both only feed the debug log, since a [`Quote`] holds no
//! times.
//!
//! No Tequila error body has ever been published, so errors are keyed on the
//! HTTP status (401 and 403: the key; 429: throttled; other 4xx: the request;
//! 5xx: Kiwi) and the message is whatever the body says, or an excerpt.
//! Nothing is retried here; the pool decides. The replies it reads are in
//! `tests/fixtures/fares/tequila-*.json`.

mod wire;

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::itinerary::{airlines, known, seconds_to_minutes, stops, within};
use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Currency, Itinerary, LookupKey, Money, Quote};
use crate::upstream::reply::{error_for_status, Reply};

/// Tequila's API host. Older clients use `https://tequila-api.kiwi.com`,
/// which served the same API.
pub const DEFAULT_BASE_URL: &str = "https://api.tequila.kiwi.com";

/// A sensible lookup timeout: a search usually answers within a few seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

const SEARCH_PATH: &str = "/v2/search";

/// Itineraries asked for per search. Kiwi sorts by price, so the cheapest
/// comes first; 20 rather than 1 leaves room to skip hidden-city and
/// throw-away fares. An itinerary with its segments is a few kilobytes.
const LIMIT: u32 = 20;

/// Kiwi publishes no limit. One lookup a second is 900 in a 15-minute
/// cycle, plenty for a routes sheet, and gentle enough for a partner key
/// whose quota nobody can look up; the pool slows down further on a 429.
const RATE_PER_SEC: f64 = 1.0;

/// No documented concurrency limit either; searches take a second or two,
/// so four in flight keep up with one start a second.
const MAX_CONCURRENCY: usize = 4;

/// Added to every message about a rejected key.
const CREDENTIALS_HINT: &str =
    "check TEQUILA_API_KEY (Kiwi no longer issues new keys; an old one may have been withdrawn)";

/// How to reach Tequila.
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct TequilaConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// The partner API key, sent as the `apikey` header.
    pub api_key: SecretString,
    /// Time allowed for one search, connect to last byte ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
}

/// The Kiwi Tequila fare source.
///
/// `Debug` never shows the API key.
pub struct Tequila {
    client: reqwest::Client,
    config: TequilaConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    search_url: String,
    /// The `apikey` header, marked sensitive; `Err` when the key cannot be
    /// sent in a header, reported on every lookup.
    api_key: Result<HeaderValue, String>,
}

impl Tequila {
    /// A source using the shared `client`.
    pub fn new(client: reqwest::Client, config: TequilaConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let api_key = HeaderValue::from_str(config.api_key.expose_secret().trim())
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                format!(
                    "the Tequila API key contains characters an HTTP header cannot carry; {CREDENTIALS_HINT}"
                )
            });
        Self {
            client,
            search_url: format!("{base_url}{SEARCH_PATH}"),
            base_url,
            config,
            api_key,
        }
    }

    async fn lookup(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let api_key = self.api_key.clone().map_err(UpstreamError::Auth)?;
        let fetched_at = Timestamp::now();
        let secrets = self.secrets();
        let request = self
            .client
            .get(&self.search_url)
            .query(&search_query(key))
            .header("apikey", api_key)
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if !reply.status.is_success() {
            return Err(self.status_error(&reply));
        }
        let parsed: wire::SearchReply = reply.json("search reply", &secrets)?;
        let currency = match parsed.currency.as_deref() {
            Some(code) => Currency::parse(code)
                .map_err(|problem| UpstreamError::Decode(format!("search reply: {problem}")))?,
            // `price` is in `curr`, which the reply normally echoes.
            None => key.currency,
        };
        let Some((itinerary, price)) = cheapest(&parsed.data, currency, key.max_stops)? else {
            return Ok(None);
        };
        tracing::debug!(
            %price,
            from = itinerary.fly_from.as_deref().unwrap_or("?"),
            to = itinerary.fly_to.as_deref().unwrap_or("?"),
            departs_utc = ?itinerary.departs_at(),
            departs_local = ?itinerary.departs_local(),
            "cheapest Tequila itinerary"
        );
        Ok(Some(Quote {
            price,
            provider: "tequila".to_owned(),
            fetched_at,
            cached: false,
            found_at: None,
            link: itinerary.deep_link.as_deref().and_then(booking_link),
            insights: None,
            itinerary: known(outbound(itinerary)),
        }))
    }

    /// Maps a non-2xx reply, by status: the bodies are unconfirmed guesses.
    fn status_error(&self, reply: &Reply) -> UpstreamError {
        let message = wire::summarize_error(&reply.body, &self.secrets());
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => UpstreamError::Auth(format!(
                "Tequila refused the API key (HTTP {}: {message}); {CREDENTIALS_HINT}",
                reply.status.as_u16()
            )),
            status => error_for_status(status, reply.retry_after(), None, message),
        }
    }

    /// What must never be quoted from a reply: the API key.
    fn secrets(&self) -> [&str; 1] {
        [self.config.api_key.expose_secret().trim()]
    }
}

/// The `/v2/search` query for `key`.
fn search_query(key: &LookupKey) -> Vec<(&'static str, String)> {
    // Tequila wants `dd/mm/YYYY`; a window of one day asks for that day.
    let day = |date: jiff::civil::Date| date.strftime("%d/%m/%Y").to_string();
    let mut query = vec![
        ("fly_from", key.origin.as_str().to_owned()),
        ("fly_to", key.destination.as_str().to_owned()),
        ("date_from", day(key.depart)),
        ("date_to", day(key.depart)),
    ];
    match key.return_date {
        Some(return_date) => {
            query.push(("return_from", day(return_date)));
            query.push(("return_to", day(return_date)));
            query.push(("flight_type", "round".to_owned()));
        }
        None => query.push(("flight_type", "oneway".to_owned())),
    }
    query.push(("adults", key.adults.to_string()));
    if let Some(max) = key.max_stops {
        // Per direction, like the limit itself.
        query.push(("max_stopovers", max.to_string()));
    }
    query.extend([
        // Economy, as the other sources search.
        ("selected_cabins", "M".to_owned()),
        ("curr", key.currency.as_str().to_owned()),
        ("sort", "price".to_owned()),
        ("limit", LIMIT.to_string()),
    ]);
    query
}

/// The cheapest usable itinerary and its price in `currency`.
///
/// Itineraries without a price are skipped (never read as free), as are
/// hidden-city and throw-away fares and, with a stop limit, itineraries
/// with more stops on either direction (or whose stops cannot be counted).
/// The first of equal prices wins, which keeps Kiwi's own ranking among ties.
fn cheapest(
    itineraries: &[wire::Itinerary],
    currency: Currency,
    max_stops: Option<u8>,
) -> Result<Option<(&wire::Itinerary, Money)>, UpstreamError> {
    let mut best: Option<(&wire::Itinerary, Money)> = None;
    for (index, itinerary) in itineraries.iter().enumerate() {
        if itinerary.is_skiplagged() {
            continue;
        }
        if max_stops.is_some() && !within_limit(itinerary, max_stops) {
            continue;
        }
        let Some(amount) = &itinerary.price else {
            continue;
        };
        let price = Money::from_decimal(amount.0, currency).ok_or_else(|| {
            UpstreamError::Decode(format!(
                "itinerary #{}: price {} is too large",
                index + 1,
                amount.0
            ))
        })?;
        if best
            .as_ref()
            .is_none_or(|(_, b)| price.checked_cmp(b) == Some(Ordering::Less))
        {
            best = Some((itinerary, price));
        }
    }
    Ok(best)
}

/// Whether both directions of `itinerary` have at most `max_stops` stops.
fn within_limit(itinerary: &wire::Itinerary, max_stops: Option<u8>) -> bool {
    itinerary.legs().is_some_and(|(outbound, back)| {
        within(outbound.len() - 1, max_stops)
            && (back.is_empty() || within(back.len() - 1, max_stops))
    })
}

/// The outbound's flights: its segments' airline codes (Tequila gives no
/// names), its stops and `duration.departure`.
fn outbound(itinerary: &wire::Itinerary) -> Itinerary {
    let legs = itinerary.legs();
    let outbound = legs.as_ref().map(|(outbound, _)| outbound);
    Itinerary {
        airline: outbound
            .and_then(|segments| airlines(segments.iter().filter_map(|s| s.airline()))),
        stops: outbound.and_then(|segments| stops(segments.len() - 1)),
        duration_minutes: itinerary.outbound_seconds().and_then(seconds_to_minutes),
    }
}

/// Kiwi's `deep_link`, if it is an `https` URL: it goes into a text message,
/// so anything else is dropped rather than passed on.
fn booking_link(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    (url.scheme() == "https" && url.host().is_some()).then(|| url.to_string())
}

impl fmt::Debug for Tequila {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the key must never reach a log.
        f.debug_struct("Tequila")
            .field("base_url", &self.base_url)
            .field("api_key", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FareSource for Tequila {
    fn name(&self) -> &'static str {
        "tequila"
    }

    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: MAX_CONCURRENCY,
            rate_per_sec: RATE_PER_SEC,
            timeout: self.config.timeout,
        }
    }

    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let span = tracing::debug_span!("tequila", route = %key);
        self.lookup(key).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_links_are_passed_on() {
        assert_eq!(
            booking_link(" https://www.kiwi.com/deep?a=1&booking_token=x== ").as_deref(),
            Some("https://www.kiwi.com/deep?a=1&booking_token=x==")
        );
        assert_eq!(booking_link("http://www.kiwi.com/deep?a=1"), None);
        assert_eq!(booking_link("javascript:alert(1)"), None);
        assert_eq!(booking_link("/deep?a=1"), None);
        assert_eq!(booking_link(""), None);
    }

    #[test]
    fn skips_priceless_and_skiplagged_itineraries_and_keeps_the_first_of_ties() {
        let itineraries: Vec<wire::Itinerary> = serde_json::from_str(
            r#"[{"price":99,"deep_link":"https://a"},
                {"deep_link":"https://no-price"},
                {"price":10,"hidden_city_ticketing":true},
                {"price":11,"throw_away_ticketing":true},
                {"price":98.5,"deep_link":"https://b"},
                {"price":98.50,"deep_link":"https://c"}]"#,
        )
        .unwrap();
        let gbp = Currency::parse("GBP").unwrap();
        let (itinerary, price) = cheapest(&itineraries, gbp, None).unwrap().unwrap();
        assert_eq!(price, Money::from_minor(98_50, gbp));
        assert_eq!(itinerary.deep_link.as_deref(), Some("https://b"));
        assert!(cheapest(&itineraries[1..4], gbp, None).unwrap().is_none());
    }
}
