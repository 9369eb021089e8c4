//! Duffel flight search: live, booking-grade airline offers.
//!
//! | | |
//! |---|---|
//! | **needs** | a Duffel access token, `DUFFEL_ACCESS_TOKEN` (self-service sign-up at duffel.com). A test token (`duffel_test_…`) only ever sees Duffel's fictional test airline, so its prices are not real fares; a live token (`duffel_live_…`) needs the account activated for live mode |
//! | **costs** | no fee per search while an account books at least one order per 1,500 searches; past that ratio, $0.005 per excess search (duffel.com/pricing when this was written). farewatch never books, so count on **$5 per 1,000 lookups**, and by default spends at most [`DEFAULT_DAILY_BUDGET`] searches a day (`DUFFEL_DAILY_BUDGET`, 0 = unlimited). Duffel also says it may not suit metasearch-style, look-only use |
//! | **prices** | **live** and **booking-grade**: the total Duffel would charge to book the offer now, for every passenger, taxes included, in the offer's `total_currency` (the account's billing currency; it cannot be chosen per request). Offers expire, typically within 30 minutes |
//! | **limits** | per endpoint, reported in `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` (60 per window in the example we have); a 429 says `rate_limit_exceeded`. Defaults here: 1 lookup a second, 5 in flight ([`Duffel::default_limits`](crate::fare::FareSource::default_limits)) |
//!
//! # One lookup, two requests
//!
//! 1. `POST /air/offer_requests?return_offers=false&supplier_timeout=…` with
//!    the slices (a second one for a return trip), one adult passenger per
//!    adult, `cabin_class: economy` and, when the lookup limits the stops,
//!    `max_connections` (per slice; without it Duffel applies its own
//!    default). Duffel asks the airlines and answers with the offer
//!    request's id.
//! 2. `GET /air/offers?offer_request_id=…&sort=total_amount&limit=20`: the
//!    cheapest offers, sorted by Duffel. With a stop limit, offers with more
//!    connections on any slice (or segments too garbled to count) are
//!    skipped here too, whatever Duffel sent.
//!
//! The quote's [`Itinerary`] is the chosen offer's outbound slice: its
//! segments' marketing airlines by name (else the offer's `owner`), their
//! number less one as stops, and the slice's ISO 8601 `duration`.
//!
//! Why not `return_offers=true`, one request with every offer inline? On
//! busy routes Duffel returns thousands of offers ("up to the tens of
//! thousands" in its search best-practices guide), megabytes of JSON for the
//! one price an alert needs, well past
//! [`MAX_BODY_BYTES`](crate::upstream::http::MAX_BODY_BYTES). The sorted page is a few
//! kilobytes, costs no extra search, and the list endpoint has its own rate
//! limit.
//!
//! `supplier_timeout` is derived from the configured timeout so that Duffel
//! answers with the airlines that did reply before farewatch gives up, which
//! is what Duffel recommends. The configured timeout bounds the whole lookup,
//! both requests together.
//!
//! Nothing is retried here: failures come back as typed [`UpstreamError`]s and
//! the pool decides about retries. The replies it reads are in
//! `tests/fixtures/fares/duffel-*.json`; the API is documented at
//! <https://duffel.com/docs/api/offer-requests>.

mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::Instrument;

use super::itinerary::{airlines, iso_duration_minutes, known, stops, within};
use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Currency, Itinerary, LookupKey, Money, Quote};
use crate::upstream::reply::{error_for_status, Reply};
use crate::upstream::retry::parse_retry_after;

/// Duffel's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.duffel.com";

/// A sensible lookup timeout. `supplier_timeout` is the lookup timeout
/// less 5 s, so this asks Duffel to wait its own default of 20 s for the
/// airlines and leaves 5 s for Duffel's overhead and the list request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);

/// Sent as `Duffel-Version` on every request; v1 was switched off on
/// 2025-01-23, and a request without the header is refused.
const API_VERSION: &str = "v2";

const OFFER_REQUESTS_PATH: &str = "/air/offer_requests";
const OFFERS_PATH: &str = "/air/offers";

/// Offers read per lookup. Duffel sorts by `total_amount`, so the cheapest
/// comes first; 20 rather than 1 leaves room to skip partial offers and to
/// prefer the asked-for currency should an account see offers in several.
/// A page this size is a few tens of kilobytes.
const PAGE_SIZE: &str = "20";

/// Taken off the lookup timeout to get `supplier_timeout`: Duffel's own
/// overhead after the airlines answer, the transfer, and the list request.
const SUPPLIER_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// Duffel ignores a `supplier_timeout` outside 2–60 s (and then waits its
/// default 20 s), so the derived value is clamped into that range.
const MIN_SUPPLIER_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_SUPPLIER_TIMEOUT: Duration = Duration::from_secs(60);

/// The example rate-limit headers say `RateLimit-Limit: 60` per window; Duffel
/// does not publish the window, and a minute is the common one. One lookup a
/// second stays within 60 a minute on each of the two endpoints a lookup uses.
const RATE_PER_SEC: f64 = 1.0;

/// Duffel documents no concurrency limit. A search takes up to its
/// `supplier_timeout` (20 s by default) while Duffel fans it out to the
/// airlines, so at one start a second up to 20 would be in flight; five keeps
/// farewatch a light user of those fan-outs, and of a paid search budget
/// (see the module docs), at the cost of a slower cycle.
const MAX_CONCURRENCY: usize = 5;

/// Searches a day unless `DUFFEL_DAILY_BUDGET` says otherwise (0 lifts it).
/// Duffel charges for every search past 1,500 per booked order ($0.005
/// each when this was written, see the module docs), and farewatch only ever
/// searches, so an account reaches that ratio quickly and every search after
/// it is billed. A thousand a day caps that at about $5 a day, and still
/// covers about ten lookups every 15 minutes, or forty every hour.
pub const DEFAULT_DAILY_BUDGET: u64 = 1_000;

/// Added to every message about rejected credentials.
const CREDENTIALS_HINT: &str = "check DUFFEL_ACCESS_TOKEN";

/// A `RateLimit-Reset` at least this large is a Unix time (this one is
/// 2001-09-09), not a number of seconds to wait: Duffel sends the instant
/// the window resets; the IETF draft the header comes from sends seconds.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// How to reach Duffel.
///
/// `Debug` shows the token as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct DuffelConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// Access token (`duffel_live_…` or `duffel_test_…`), sent as a bearer token.
    pub access_token: SecretString,
    /// Time allowed for one lookup, both requests together. Duffel is told
    /// to stop waiting for airlines 5 s before it ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
}

/// The Duffel fare source.
///
/// `Debug` never shows the access token.
pub struct Duffel {
    client: reqwest::Client,
    config: DuffelConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    offer_requests_url: String,
    offers_url: String,
    /// `Bearer <token>`, marked sensitive; `Err` when the token cannot be
    /// sent in a header (a stray newline, say), reported on every lookup.
    authorization: Result<HeaderValue, String>,
    /// Whether the token is a test-mode one (fictional airline, unreal prices).
    test_mode: bool,
}

impl Duffel {
    /// A source using the shared `client`.
    pub fn new(client: reqwest::Client, config: DuffelConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let token = config.access_token.expose_secret();
        let authorization = HeaderValue::try_from(format!("Bearer {}", token.trim()))
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                format!(
                    "the Duffel access token contains characters an HTTP header cannot carry; {CREDENTIALS_HINT}"
                )
            });
        let test_mode = token.trim().starts_with("duffel_test_");
        if test_mode {
            tracing::warn!(
                "DUFFEL_ACCESS_TOKEN is a test token: Duffel answers with its fictional test airline, so prices are not real fares"
            );
        }
        Self {
            client,
            offer_requests_url: format!("{base_url}{OFFER_REQUESTS_PATH}"),
            offers_url: format!("{base_url}{OFFERS_PATH}"),
            base_url,
            config,
            authorization,
            test_mode,
        }
    }

    async fn lookup(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let authorization = self.authorization.clone().map_err(UpstreamError::Auth)?;
        let deadline = Instant::now() + self.config.timeout;
        // Taken before asking: the price is at least this fresh.
        let fetched_at = Timestamp::now();
        let offer_request_id = self
            .create_offer_request(key, &authorization, deadline)
            .await?;
        self.cheapest_offer(&offer_request_id, key, &authorization, deadline, fetched_at)
            .await
    }

    /// `POST /air/offer_requests`: Duffel searches the airlines; its id comes back.
    async fn create_offer_request(
        &self,
        key: &LookupKey,
        authorization: &HeaderValue,
        deadline: Instant,
    ) -> Result<String, UpstreamError> {
        let supplier_timeout = supplier_timeout(self.config.timeout)
            .as_millis()
            .to_string();
        let request = self
            .client
            .post(&self.offer_requests_url)
            .query(&[
                ("return_offers", "false"),
                ("supplier_timeout", supplier_timeout.as_str()),
            ])
            // Sets `Content-Type: application/json`.
            .json(&wire::OfferRequestBody::for_key(key));
        // 201 Created is what a create should answer; 200 is taken too, as
        // nothing public confirms which one Duffel sends.
        let reply = self.send(request, authorization, deadline).await?;
        let created: wire::CreatedReply<'_> = self.decode(&reply, "offer request reply")?;
        let id = created.data.id.trim();
        if id.is_empty() {
            return Err(UpstreamError::Decode(
                "offer request reply has an empty id".into(),
            ));
        }
        tracing::debug!(offer_request_id = id, "Duffel created the offer request");
        Ok(id.to_owned())
    }

    /// `GET /air/offers`: the cheapest page of the offer request's offers,
    /// reduced to one quote.
    async fn cheapest_offer(
        &self,
        offer_request_id: &str,
        key: &LookupKey,
        authorization: &HeaderValue,
        deadline: Instant,
        fetched_at: Timestamp,
    ) -> Result<Option<Quote>, UpstreamError> {
        let request = self.client.get(&self.offers_url).query(&[
            ("offer_request_id", offer_request_id),
            ("sort", "total_amount"),
            ("limit", PAGE_SIZE),
        ]);
        let reply = self.send(request, authorization, deadline).await?;
        let page: wire::OffersPage<'_> = self.decode(&reply, "offers")?;
        let Some((price, index)) = cheapest(&page.data, key.currency, key.max_stops)? else {
            return Ok(None);
        };
        Ok(Some(Quote {
            price,
            provider: "duffel".to_owned(),
            fetched_at,
            cached: false,
            found_at: None,
            // Duffel sells through the API; it has no page to send a traveller to.
            link: None,
            insights: None,
            itinerary: known(outbound(&page.data[index])),
        }))
    }

    /// Adds the headers every request carries, sends it within what is left
    /// of the lookup's time, and reads the reply.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        authorization: &HeaderValue,
        deadline: Instant,
    ) -> Result<Reply, UpstreamError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpstreamError::Timeout(self.config.timeout));
        }
        let request = request
            .header(AUTHORIZATION, authorization.clone())
            .header("Duffel-Version", API_VERSION)
            .header(ACCEPT, "application/json")
            .timeout(left);
        // A timeout is reported as the lookup's, the limit that ran out.
        Reply::send(request, self.config.timeout, &self.secrets()).await
    }

    /// A 2xx reply parsed as `T`; anything else mapped to a [`UpstreamError`].
    fn decode<'r, T: serde::Deserialize<'r>>(
        &self,
        reply: &'r Reply,
        what: &str,
    ) -> Result<T, UpstreamError> {
        if !reply.status.is_success() {
            return Err(self.status_error(reply));
        }
        reply.json(what, &self.secrets())
    }

    /// Maps a non-2xx reply from either endpoint.
    fn status_error(&self, reply: &Reply) -> UpstreamError {
        let summary = wire::summarize_error(&reply.body, &self.secrets());
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let code = summary
                    .code
                    .map(|code| format!(", code {code}"))
                    .unwrap_or_default();
                UpstreamError::Auth(format!(
                    "Duffel refused the access token (HTTP {}{code}: {}); {CREDENTIALS_HINT}",
                    reply.status.as_u16(),
                    summary.message
                ))
            }
            // Rejected: 400 and 422 `validation_error` (a bad airport, a past
            // date), 404 for an unknown offer request. Upstream: 5xx,
            // `airline_error` included, and anything unexpected.
            status => error_for_status(
                status,
                retry_after(&reply.headers, Timestamp::now()),
                summary.code,
                summary.message,
            ),
        }
    }

    /// What must never be quoted from a reply: the access token.
    fn secrets(&self) -> [&str; 1] {
        [self.config.access_token.expose_secret().trim()]
    }
}

/// The `supplier_timeout` sent with a lookup allowed `timeout` in all:
/// [`SUPPLIER_TIMEOUT_MARGIN`] less, within Duffel's 2–60 s.
fn supplier_timeout(timeout: Duration) -> Duration {
    timeout
        .saturating_sub(SUPPLIER_TIMEOUT_MARGIN)
        .clamp(MIN_SUPPLIER_TIMEOUT, MAX_SUPPLIER_TIMEOUT)
}

/// The cheapest complete offer within `max_stops` connections on every
/// slice, preferring the currency the lookup asked for: its price and its
/// index in `offers`.
///
/// An account normally sees every offer in its billing currency, which may
/// not be the one asked for: then that currency is returned, and the rule
/// engine declines to compare it with a threshold in another. Offers in
/// several currencies, none of them the one asked for, are refused rather
/// than one being picked arbitrarily. The first of equal prices wins,
/// keeping Duffel's order.
fn cheapest(
    offers: &[wire::Offer<'_>],
    wanted: Currency,
    max_stops: Option<u8>,
) -> Result<Option<(Money, usize)>, UpstreamError> {
    let mut best: BTreeMap<Currency, (Money, usize)> = BTreeMap::new();
    for (index, offer) in offers.iter().enumerate() {
        if offer.partial {
            // Prices only part of the trip: it would undercut real fares.
            continue;
        }
        if max_stops.is_some() && !within_limit(offer, max_stops) {
            // Duffel was told `max_connections`; this checks it kept to it.
            continue;
        }
        let price = offer_price(offer)
            .map_err(|problem| UpstreamError::Decode(format!("offer #{}: {problem}", index + 1)))?;
        best.entry(price.currency)
            .and_modify(|b| {
                if price.minor < b.0.minor {
                    *b = (price, index);
                }
            })
            .or_insert((price, index));
    }
    if let Some(found) = best.get(&wanted) {
        return Ok(Some(*found));
    }
    if best.len() > 1 {
        let currencies: Vec<&str> = best.keys().map(Currency::as_str).collect();
        return Err(UpstreamError::Decode(format!(
            "offers are priced in {} but none in {wanted} as asked",
            currencies.join(", ")
        )));
    }
    Ok(best.into_values().next())
}

/// Whether every slice of `offer` has at most `max_stops` connections; an
/// offer whose segments cannot be counted is not known to be, so it is not.
fn within_limit(offer: &wire::Offer<'_>, max_stops: Option<u8>) -> bool {
    offer.slices().is_some_and(|slices| {
        slices.iter().all(|slice| {
            slice
                .segments()
                .is_some_and(|segments| within(segments.len() - 1, max_stops))
        })
    })
}

/// The outbound slice's flights: its segments' airlines (else the offer's
/// owner), connections and duration.
fn outbound(offer: &wire::Offer<'_>) -> Itinerary {
    let slice = offer.slices().and_then(|slices| slices.first().copied());
    let segments = slice.and_then(wire::OfferSlice::segments);
    let airline = segments
        .as_ref()
        .and_then(|segments| airlines(segments.iter().filter_map(|s| s.airline())))
        .or_else(|| offer.owner().map(str::to_owned));
    Itinerary {
        airline,
        stops: segments.as_ref().and_then(|s| stops(s.len() - 1)),
        duration_minutes: slice
            .and_then(wire::OfferSlice::duration)
            .and_then(iso_duration_minutes),
    }
}

fn offer_price(offer: &wire::Offer<'_>) -> Result<Money, String> {
    let currency = Currency::parse(&offer.total_currency)?;
    Money::parse_rounded(&offer.total_amount, currency).map_err(|e| e.to_string())
}

/// How long a 429 asks us to wait: `Retry-After` if sent (relative, so
/// immune to clock skew), else `RateLimit-Reset`, which Duffel documents.
///
/// `RateLimit-Reset` is read as a Unix time when it is one (see
/// [`EPOCH_THRESHOLD`]) and as seconds otherwise; a reset in the past
/// means "now".
fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = header(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, now)) {
        return Some(wait);
    }
    let reset: u64 = header("ratelimit-reset")?.trim().parse().ok()?;
    if reset < EPOCH_THRESHOLD {
        return Some(Duration::from_secs(reset));
    }
    let at = Timestamp::from_second(i64::try_from(reset).ok()?).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

impl fmt::Debug for Duffel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the token must never reach a log.
        f.debug_struct("Duffel")
            .field("base_url", &self.base_url)
            .field("access_token", &"[REDACTED]")
            .field("test_mode", &self.test_mode)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FareSource for Duffel {
    fn name(&self) -> &'static str {
        "duffel"
    }

    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: MAX_CONCURRENCY,
            rate_per_sec: RATE_PER_SEC,
            timeout: self.config.timeout,
        }
    }

    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let span = tracing::debug_span!("duffel", route = %key);
        self.lookup(key).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer<'a>(amount: &'a str, currency: &'a str, partial: bool) -> wire::Offer<'a> {
        wire::Offer {
            total_amount: amount.into(),
            total_currency: currency.into(),
            partial,
            slices: None,
            owner: None,
        }
    }

    /// What `cheapest` picked, as its price.
    fn price(
        picked: Result<Option<(Money, usize)>, UpstreamError>,
    ) -> Result<Option<Money>, UpstreamError> {
        picked.map(|found| found.map(|(price, _)| price))
    }

    fn money(minor: i64, currency: &str) -> Money {
        Money::from_minor(minor, Currency::parse(currency).unwrap())
    }

    fn gbp() -> Currency {
        Currency::parse("GBP").unwrap()
    }

    #[test]
    fn supplier_timeout_leaves_a_margin_within_duffels_range() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(supplier_timeout(DEFAULT_TIMEOUT), secs(20));
        assert_eq!(supplier_timeout(secs(30)), secs(25));
        assert_eq!(supplier_timeout(secs(6)), secs(2));
        assert_eq!(supplier_timeout(secs(1)), secs(2));
        assert_eq!(supplier_timeout(secs(600)), secs(60));
    }

    #[test]
    fn the_cheapest_complete_offer_wins_in_the_wanted_currency() {
        let offers = [
            offer("120.50", "GBP", false),
            offer("10.00", "GBP", true),
            offer("99.995", "GBP", false),
            offer("50.00", "EUR", false),
        ];
        assert_eq!(
            price(cheapest(&offers, gbp(), None)),
            Ok(Some(money(10_000, "GBP")))
        );
    }

    #[test]
    fn another_single_currency_is_returned_as_is() {
        let offers = [offer("80.00", "EUR", false), offer("70.00", "EUR", false)];
        assert_eq!(
            cheapest(&offers, gbp(), None),
            Ok(Some((money(7_000, "EUR"), 1)))
        );
        assert_eq!(cheapest(&[], gbp(), None), Ok(None));
        assert_eq!(
            cheapest(&[offer("1.00", "GBP", true)], gbp(), None),
            Ok(None)
        );
    }

    #[test]
    fn several_foreign_currencies_are_refused() {
        let offers = [offer("80.00", "EUR", false), offer("70.00", "USD", false)];
        assert_eq!(
            cheapest(&offers, gbp(), None),
            Err(UpstreamError::Decode(
                "offers are priced in EUR, USD but none in GBP as asked".into()
            ))
        );
    }

    #[test]
    fn a_malformed_price_names_the_offer() {
        let offers = [offer("45.00", "GBP", false), offer("n/a", "GBP", false)];
        let Err(UpstreamError::Decode(message)) = cheapest(&offers, gbp(), None) else {
            panic!("expected a decode error");
        };
        assert!(
            message.starts_with("offer #2: `n/a` is not an amount"),
            "{message}"
        );
        let offers = [offer("45.00", "pounds", false)];
        assert!(cheapest(&offers, gbp(), None).is_err());
    }

    #[test]
    fn rate_limit_reset_is_an_epoch_or_seconds_and_retry_after_wins() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        let secs = Duration::from_secs;
        assert_eq!(
            retry_after(&headers(&[("ratelimit-reset", "1800000042")]), now),
            Some(secs(42))
        );
        assert_eq!(
            retry_after(&headers(&[("ratelimit-reset", "1799999990")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers(&[("ratelimit-reset", "12")]), now),
            Some(secs(12))
        );
        assert_eq!(
            retry_after(
                &headers(&[("ratelimit-reset", "1800000042"), ("retry-after", "3")]),
                now
            ),
            Some(secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("ratelimit-reset", "soon")]), now),
            None
        );
        assert_eq!(retry_after(&headers(&[]), now), None);
    }
}
