//! Travelpayouts' Aviasales Data API v3, `prices_for_dates`: cheap, **cached**
//! prices that Aviasales users found in recent searches.
//!
//! | | |
//! |---|---|
//! | needs | a Travelpayouts partner API token (`TRAVELPAYOUTS_TOKEN`, from the partner dashboard) |
//! | costs | free for Travelpayouts partners; no per-search charge |
//! | prices | **cached**, not live: prices other users' searches found, kept 2 to 7 days (`prices_for_dates` covers about the last 48 h), so `Quote::cached` is `true`. Integers in the requested currency, for one adult, multiplied here by the number of adults. Good as a cheap baseline; a price may be gone when the user clicks through |
//! | limits | 600 requests a minute for `/v3/prices_for_dates` (from 2024-06-14); over it, HTTP 429 and the token stays blocked for the rest of the minute. No rate-limit headers |
//!
//! One lookup is one request: `GET {base}/aviasales/v3/prices_for_dates`
//! with `origin`, `destination`, `departure_at`, `return_at` (round trips
//! only), `one_way`, `direct=true` when the lookup wants direct flights only
//! (the API's one stop filter), a lower-case `currency`, `sorting=price` and
//! a `limit`.
//! The token goes in the `X-Access-Token` header, which the API accepts in
//! place of the `token` query parameter, so it never sits in a URL.
//!
//! The reply is filtered here: only prices departing on the requested date
//! (as the airport's local date: `departure_at` carries the real local
//! offset, whatever the general docs say about UTC) and, for a round trip,
//! returning on the requested date count; a one-way lookup ignores round-trip
//! prices; with a stop limit, only prices with at most that many
//! `transfers` (and `return_transfers` on a round trip) count, whatever was
//! sent. Nothing left is `Ok(None)`. The quote's [`Itinerary`] is the price's
//! airline code, its outbound `transfers` and `duration_to` (minutes).
//!
//! Nothing is retried here: failures come back as typed [`UpstreamError`]s and
//! the pool decides about retries.
//!
//! The replies it reads are in `tests/fixtures/fares/travelpayouts-*.json`;
//! the API is documented at
//! <https://support.travelpayouts.com/hc/en-us/articles/203956163-Aviasales-Data-API>.

mod wire;

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::fmt::temporal::Pieces;
use jiff::Timestamp;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::itinerary::{airlines, known, stops, within};
use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Currency, Itinerary, LookupKey, Money, Quote};
use crate::upstream::reply::{error_for_status, redact, Reply};

/// Travelpayouts' API host, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.travelpayouts.com";

/// A sensible per-request timeout: the API answers from a cache, so a reply
/// slower than this means trouble, not a long search.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the relative `link` of a price points.
pub const LINK_BASE: &str = "https://www.aviasales.com";

/// The name this source goes by in logs, cache keys and reports.
const NAME: &str = "travelpayouts";

const PRICES_PATH: &str = "/aviasales/v3/prices_for_dates";

/// The header that carries the token (the alternative is `token=` in the query).
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-access-token");

/// Prices asked for per lookup (`limit`; the API's default is 30, its
/// maximum 1000). Sorted by price, the cheapest matching one is normally
/// first; the rest are a margin for prices the API returns for other dates,
/// which are filtered out here. 100 items is about 50 KB.
const LIMIT: &str = "100";

/// Requests started per second: 8, i.e. 480 a minute, under the documented
/// 600 a minute with a fifth to spare. Overshooting is costly: a 429 blocks
/// the token for the rest of the minute, so the margin absorbs a pacer's
/// bursts and other users of the same token.
const RATE_PER_SEC: f64 = 8.0;

/// Requests in flight at once. Cached answers come back in well under a
/// second, so 10 in flight is plenty for 8 a second.
const MAX_CONCURRENCY: usize = 10;

/// Added to every message about a rejected token.
const TOKEN_HINT: &str = "check TRAVELPAYOUTS_TOKEN";

/// How to reach Travelpayouts.
///
/// `Debug` shows the token as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct TravelpayoutsConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// The partner API token.
    pub token: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl TravelpayoutsConfig {
    /// The production API with [`DEFAULT_TIMEOUT`].
    pub fn new(token: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The Travelpayouts (Aviasales Data API) fare source.
///
/// `Debug` never shows the token.
pub struct Travelpayouts {
    client: reqwest::Client,
    config: TravelpayoutsConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    prices_url: String,
}

impl Travelpayouts {
    /// A source using the shared `client`.
    pub fn new(client: reqwest::Client, config: TravelpayoutsConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        Self {
            client,
            prices_url: format!("{base_url}{PRICES_PATH}"),
            base_url,
            config,
        }
    }

    /// One `GET /aviasales/v3/prices_for_dates`.
    async fn prices(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let fetched_at = Timestamp::now();
        let depart = key.depart.to_string();
        let return_date = key.return_date.map(|d| d.to_string());
        let currency = key.currency.as_str().to_ascii_lowercase();
        let mut query: Vec<(&str, &str)> = Vec::with_capacity(9);
        query.push(("origin", key.origin.as_str()));
        query.push(("destination", key.destination.as_str()));
        query.push(("departure_at", &depart));
        if let Some(return_date) = &return_date {
            query.push(("return_at", return_date));
        }
        query.push((
            "one_way",
            if return_date.is_some() {
                "false"
            } else {
                "true"
            },
        ));
        if key.max_stops == Some(0) {
            // The API's only stop filter; a looser limit is applied to the
            // reply alone.
            query.push(("direct", "true"));
        }
        query.push(("currency", &currency));
        query.push(("sorting", "price"));
        query.push(("limit", LIMIT));

        // A token with characters a header cannot hold could never be valid.
        let mut token = HeaderValue::from_str(self.config.token.expose_secret()).map_err(|_| {
            UpstreamError::Auth(format!(
                "the Travelpayouts token contains characters no token has; {TOKEN_HINT}"
            ))
        })?;
        token.set_sensitive(true);

        let secrets = self.secrets();
        let request = self
            .client
            .get(&self.prices_url)
            .query(&query)
            .header(TOKEN_HEADER, token)
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if reply.status.is_success() {
            cheapest_price(&reply, key, fetched_at, &secrets)
        } else {
            Err(self.status_error(&reply))
        }
    }

    /// Maps a non-2xx reply. The exact v3 error bodies are undocumented, so
    /// only the status decides; the body only supplies the message.
    ///
    /// A 429 has no `Retry-After` in the docs, which say the token stays
    /// blocked until the minute is over: the pool's backoff and pacing deal
    /// with it, and a `Retry-After`, if one is ever sent, is honoured.
    fn status_error(&self, reply: &Reply) -> UpstreamError {
        let message = wire::error_message(&reply.body, &self.secrets());
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => UpstreamError::Auth(format!(
                "Travelpayouts rejected the token (HTTP {}: {message}); {TOKEN_HINT}",
                reply.status.as_u16()
            )),
            status => error_for_status(status, reply.retry_after(), None, message),
        }
    }

    /// What must never be quoted from a reply: the token.
    fn secrets(&self) -> [&str; 1] {
        [self.config.token.expose_secret()]
    }
}

/// The cheapest cached price for exactly `key`'s dates, or `None`.
///
/// `secrets` are redacted from any excerpt of the body in an error.
fn cheapest_price(
    reply: &Reply,
    key: &LookupKey,
    fetched_at: Timestamp,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    let parsed: wire::Envelope = reply.json("prices reply", secrets)?;
    if parsed.success == Some(false) {
        // The envelope's documented failure. With HTTP 200 the only refusal
        // a well-formed request can meet is the token's.
        let message = parsed
            .error
            .and_then(|e| e.0)
            .map(|e| redact(&e, secrets).into_owned())
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "no description".to_owned());
        return Err(UpstreamError::Auth(format!(
            "Travelpayouts refused the request ({message}); {TOKEN_HINT}"
        )));
    }
    let currency = match parsed.currency.as_deref() {
        Some(code) => Currency::parse(code)
            .map_err(|e| UpstreamError::Decode(format!("prices reply currency: {e}")))?,
        None => key.currency,
    };
    let adults = Decimal::from(key.adults.max(1));

    let mut cheapest: Option<(Money, &wire::Item)> = None;
    for (index, item) in parsed.data.0.iter().enumerate() {
        let departs = local_date(&item.departure_at).map_err(|e| {
            UpstreamError::Decode(format!("price #{}: departure_at {e}", index + 1))
        })?;
        if departs != key.depart {
            continue;
        }
        let returns = match item.return_at.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(at) => Some(local_date(at).map_err(|e| {
                UpstreamError::Decode(format!("price #{}: return_at {e}", index + 1))
            })?),
        };
        if returns != key.return_date {
            continue;
        }
        if key.max_stops.is_some() && !within_limit(item, returns.is_some(), key.max_stops) {
            continue;
        }
        // Prices are for one adult; the quote is for the whole party.
        let Some(price) = item
            .price
            .0
            .checked_mul(adults)
            .and_then(|total| Money::from_decimal(total, currency))
            .filter(|m| m.minor > 0)
        else {
            tracing::debug!(index, price = %item.price.0, "skipping a price that is zero, negative or too large");
            continue;
        };
        if cheapest
            .as_ref()
            .is_none_or(|(best, _)| price.checked_cmp(best) == Some(Ordering::Less))
        {
            cheapest = Some((price, item));
        }
    }
    let Some((price, item)) = cheapest else {
        return Ok(None);
    };
    let one_way = key.return_date.is_none();
    Ok(Some(Quote {
        price,
        provider: NAME.to_owned(),
        fetched_at,
        cached: true,
        found_at: item
            .found_at
            .as_deref()
            .and_then(|at| at.trim().parse::<Timestamp>().ok()),
        link: item.link.as_deref().and_then(link),
        insights: None,
        itinerary: known(Itinerary {
            airline: airlines(item.airline()),
            stops: item
                .transfers()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(stops),
            duration_minutes: item.outbound_minutes(one_way),
        }),
    }))
}

/// Whether `item` has at most `max_stops` transfers on the outbound and, on
/// a round trip, on the return; unknown counts are not known to be.
fn within_limit(item: &wire::Item, round_trip: bool, max_stops: Option<u8>) -> bool {
    let fits = |count: Option<u32>| {
        count
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| within(n, max_stops))
    };
    fits(item.transfers()) && (!round_trip || fits(item.return_transfers()))
}

/// The calendar date of an ISO 8601 time as written, i.e. in the offset it
/// carries (the airport's local date), not converted to UTC.
fn local_date(at: &str) -> Result<Date, String> {
    Pieces::parse(at.trim())
        .map(|pieces| pieces.date())
        .map_err(|_| format!("`{at}` is not an ISO 8601 date-time"))
}

/// An absolute Aviasales link from the API's relative one.
fn link(relative: &str) -> Option<String> {
    let relative = relative.trim();
    if relative.starts_with("https://") {
        Some(relative.to_owned())
    } else if relative.starts_with('/') && !relative.starts_with("//") {
        Some(format!("{LINK_BASE}{relative}"))
    } else {
        None
    }
}

impl fmt::Debug for Travelpayouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the token must never reach a log.
        f.debug_struct("Travelpayouts")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FareSource for Travelpayouts {
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
        let span = tracing::debug_span!("travelpayouts", route = %key);
        self.prices(key).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_keep_the_offset_as_given() {
        // 00:30 in Moscow is still the previous day in UTC.
        assert_eq!(
            local_date("2025-05-02T00:30:00+03:00").unwrap(),
            jiff::civil::date(2025, 5, 2)
        );
        assert_eq!(
            local_date("2025-05-02T17:00:00Z").unwrap(),
            jiff::civil::date(2025, 5, 2)
        );
        assert_eq!(
            local_date("2025-05-02").unwrap(),
            jiff::civil::date(2025, 5, 2)
        );
        assert!(local_date("tomorrow").is_err());
    }

    #[test]
    fn links_are_made_absolute_on_aviasales() {
        assert_eq!(
            link("/search/SVO0205LED1?t=x").as_deref(),
            Some("https://www.aviasales.com/search/SVO0205LED1?t=x")
        );
        assert_eq!(
            link("https://www.aviasales.ru/search/x").as_deref(),
            Some("https://www.aviasales.ru/search/x")
        );
        assert_eq!(link("//evil.example/x"), None);
        assert_eq!(link("javascript:alert(1)"), None);
        assert_eq!(link(""), None);
    }
}
