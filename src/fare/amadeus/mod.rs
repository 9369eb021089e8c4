//! Amadeus Self-Service Flight Offers Search v2 with OAuth2 client credentials.
//!
//! Amadeus Self-Service shut on 2026-07-17 and its keys stopped working; the
//! source is kept for Amadeus Enterprise credentials, pointed at the
//! Enterprise host with `AMADEUS_BASE_URL`.
//!
//! One [`Amadeus`] per process. Its access token is held by the shared
//! [`crate::upstream::oauth`] holder: fetched on first need (or taken from
//! the [`TokenCache`], saved there by an earlier run), shared across
//! concurrent lookups, and when Amadeus rejects it refreshed once and the
//! lookup replayed once. Nothing else is retried here: failures come
//! back as typed [`UpstreamError`]s and the pool decides about retries.
//!
//! A stop limit on the lookup is sent as `nonStop=true` when it is zero
//! (the only limit Amadeus takes) and, whatever was sent, applied to the
//! reply: only offers with at most that many stops on every itinerary count.
//! The quote's [`Itinerary`] is the chosen offer's outbound: its airlines'
//! names from `dictionaries.carriers` (else their codes), its stops (changes
//! of plane plus any `numberOfStops`) and its ISO 8601 `duration`.
//!
//! The replies it reads are in `tests/fixtures/fares/amadeus-*.json`; the
//! error codes and rate limits are documented in
//! <https://github.com/amadeus4dev/developer-guides> (`docs/common-errors.md`,
//! `docs/api-rate-limits.md`).

mod wire;

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::itinerary::{airlines, iso_duration_minutes, known, stops, within};
use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Currency, Itinerary, LookupKey, Money, Quote};
use crate::store::TokenCache;
use crate::upstream::oauth::{
    Attempt, Bearer, ClientCredentials, Persistence, TokenHolder, TokenPolicy,
};
use crate::upstream::reply::{
    ensure_json, error_for_status, one_line, parse_json, Reply, MESSAGE_CHARS,
};
use crate::upstream::scan::Malformed;

/// Amadeus's test environment, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://test.api.amadeus.com";

/// Amadeus's production environment.
pub const PRODUCTION_BASE_URL: &str = "https://api.amadeus.com";

const TOKEN_PATH: &str = "/v1/security/oauth2/token";
const SEARCH_PATH: &str = "/v2/shopping/flight-offers";

/// Amadeus labels its JSON with its own media type; the SDKs send both.
const ACCEPT_AMADEUS_JSON: &str = "application/vnd.amadeus+json, application/json";

/// Offers asked for per search (`max`; Amadeus's default is 250). The search
/// returns the cheapest offers it finds, so the minimum is among the first
/// few; 50 keeps replies and parsing small while leaving room for ties and
/// odd rankings. The order within a reply is not documented, so the minimum
/// is computed here rather than trusting the first offer (hence not `max=1`).
const MAX_OFFERS: &str = "50";

/// Documented test-environment limit: 10 transactions per second per user
/// ("no more than 1 request every 100 ms"). Also used for any other base
/// URL, such as a local fake, as the cautious choice.
const TEST_RATE_PER_SEC: f64 = 10.0;

/// Documented production limit: 40 transactions per second per user.
const PRODUCTION_RATE_PER_SEC: f64 = 40.0;

/// Amadeus documents no concurrency limit; the rate is what binds. At 10–40
/// requests a second and searches taking a second or more, 50 in flight
/// keeps the rate limiter, not the semaphore, the bottleneck.
const MAX_CONCURRENCY: usize = 50;

/// Added to every message about rejected credentials.
const CREDENTIALS_HINT: &str = "check AMADEUS_CLIENT_ID and AMADEUS_CLIENT_SECRET";

/// Amadeus's token endpoint, as the shared holder needs it. The 10 s margin
/// is what the official Python and Java SDKs use; `expires_in` is always sent.
const TOKEN_POLICY: TokenPolicy = TokenPolicy {
    provider: "Amadeus",
    credentials_hint: CREDENTIALS_HINT,
    expiry_margin: Duration::from_secs(10),
    default_lifetime: None,
    token_error,
};

/// How to reach Amadeus.
///
/// `Debug` shows the secret as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct AmadeusConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// API key.
    pub client_id: String,
    /// API secret.
    pub client_secret: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The Amadeus fare source.
///
/// `Debug` never shows the secret or the access token.
pub struct Amadeus {
    client: reqwest::Client,
    config: AmadeusConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    /// Parsed once: each search clones it and appends its query, instead
    /// of reqwest parsing the whole URL again per request.
    search_url: Result<reqwest::Url, url::ParseError>,
    tokens: TokenHolder,
}

impl Amadeus {
    /// A source using the shared `client`; `tokens` keeps the OAuth token across runs.
    ///
    /// The token is saved under `amadeus:<client_id>:<base_url>`, so test
    /// and production tokens, or two API keys, never mix.
    pub fn new(
        client: reqwest::Client,
        config: AmadeusConfig,
        tokens: Option<Arc<dyn TokenCache>>,
    ) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        // The key earlier versions saved under, so saved tokens still load.
        let persistence = tokens.map(|cache| Persistence {
            cache,
            key: format!("amadeus:{}:{}", config.client_id, base_url),
        });
        let credentials = ClientCredentials {
            token_url: format!("{base_url}{TOKEN_PATH}"),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            timeout: config.timeout,
        };
        Self {
            tokens: TokenHolder::new(client.clone(), credentials, TOKEN_POLICY, persistence),
            client,
            search_url: reqwest::Url::parse(&format!("{base_url}{SEARCH_PATH}")),
            base_url,
            config,
        }
    }

    async fn lookup(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        self.tokens
            .authorized(|bearer| async move { self.search(key, &bearer).await })
            .await
    }

    /// One `GET /v2/shopping/flight-offers` with `bearer`.
    async fn search(
        &self,
        key: &LookupKey,
        bearer: &Bearer,
    ) -> Result<Attempt<Option<Quote>>, UpstreamError> {
        let fetched_at = Timestamp::now();
        let mut url = self.search_url.clone().map_err(|e| {
            // What reqwest itself would report for the unparsable URL.
            UpstreamError::Connect(format!(
                "the Amadeus base URL {:?} is not a valid URL: {e}",
                self.base_url
            ))
        })?;
        {
            // Codes, dates and numbers: nothing here needs escaping, but
            // the serializer escapes anyway, for safety.
            let mut query = url.query_pairs_mut();
            query
                .append_pair("originLocationCode", key.origin.as_str())
                .append_pair("destinationLocationCode", key.destination.as_str())
                .append_pair("departureDate", &key.depart.to_string());
            if let Some(return_date) = key.return_date {
                query.append_pair("returnDate", &return_date.to_string());
            }
            query.append_pair("adults", &key.adults.to_string());
            if key.max_stops == Some(0) {
                // Amadeus can only be asked for direct flights; a looser
                // limit is applied to the reply alone.
                query.append_pair("nonStop", "true");
            }
            query
                .append_pair("currencyCode", key.currency.as_str())
                .append_pair("max", MAX_OFFERS);
        }

        let secrets = self.secrets(Some(bearer));
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, bearer.header())
            .header(ACCEPT, ACCEPT_AMADEUS_JSON)
            .timeout(self.config.timeout);
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if reply.status.is_success() {
            return cheapest_offer(
                reply.content_type(),
                &reply.body,
                key.max_stops,
                fetched_at,
                &secrets,
            )
            .map(Attempt::Answer);
        }
        self.search_error(&reply, bearer)
    }

    /// Maps a failed search. A rejected token is not an error yet: the
    /// caller refreshes it and replays once.
    fn search_error(
        &self,
        reply: &Reply,
        bearer: &Bearer,
    ) -> Result<Attempt<Option<Quote>>, UpstreamError> {
        let summary = wire::summarize_error(&reply.body, &self.secrets(Some(bearer)));
        let code = summary.code.as_deref();
        let described = || match code {
            Some(code) => format!("code {code}: {}", summary.message),
            None => summary.message.clone(),
        };
        if reply.status == StatusCode::UNAUTHORIZED {
            return match code {
                // 38191: the Authorization header itself is malformed, which
                // a new token cannot fix.
                Some("38191") => Err(UpstreamError::Auth(format!(
                    "Amadeus refused the Authorization header ({}); this is a farewatch bug, please report it",
                    described()
                ))),
                Some(c @ ("39683" | "39686")) => Err(UpstreamError::Auth(format!(
                    "Amadeus says the API key is {} ({}); {CREDENTIALS_HINT}",
                    if c == "39683" { "revoked" } else { "invalid" },
                    described()
                ))),
                // 38190 invalid, 38192 expired, 38193 revoked token; and a 401
                // without a recognisable body (a proxy, say) is most likely
                // a token problem too. The replay limit keeps this bounded.
                _ => Ok(Attempt::TokenRejected(described())),
            };
        }
        Err(status_error(reply, summary))
    }

    /// What must never be quoted from a reply: the client secret and the
    /// token the request carried (`""` when there is none).
    fn secrets<'s>(&'s self, bearer: Option<&'s Bearer>) -> [&'s str; 2] {
        let token = bearer.map(Bearer::token).unwrap_or_default();
        [self.config.client_secret.expose_secret(), token]
    }
}

/// Maps a failed token request. Any 4xx except 429 means no lookup can
/// succeed, so it is an authentication failure whatever its cause.
fn token_error(reply: &Reply, secrets: &[&str]) -> UpstreamError {
    let summary = wire::summarize_error(&reply.body, secrets);
    let status = reply.status;
    if status == StatusCode::TOO_MANY_REQUESTS || !status.is_client_error() {
        return status_error(reply, summary);
    }
    let code = summary
        .code
        .map(|code| format!(", code {code}"))
        .unwrap_or_default();
    let credentials =
        status == StatusCode::UNAUTHORIZED || summary.message.starts_with("invalid_client");
    let advice = if credentials {
        CREDENTIALS_HINT
    } else {
        "the token request itself was refused; this is likely a farewatch bug"
    };
    UpstreamError::Auth(format!(
        "Amadeus refused the token request (HTTP {}{code}: {}); {advice}",
        status.as_u16(),
        summary.message
    ))
}

/// The mapping shared by both endpoints for everything but 401s.
fn status_error(reply: &Reply, summary: wire::ErrorSummary) -> UpstreamError {
    if reply.status == StatusCode::TOO_MANY_REQUESTS && summary.code.as_deref() == Some("38195") {
        // The monthly (test) quota: retrying before next month is pointless.
        return UpstreamError::QuotaExhausted(summary.message);
    }
    // A 429 with 38194, or unrecognisable, is a throttle.
    error_for_status(
        reply.status,
        retry_after(&reply.headers),
        summary.code,
        summary.message,
    )
}

/// The cheapest offer by `grandTotal` (else `total`) in a success reply's
/// body, in the reply's own currency, among the offers with at most
/// `max_stops` stops on every itinerary. The first of equal prices wins.
///
/// `secrets` are redacted from any excerpt of the body in an error.
fn cheapest_offer(
    content_type: Option<&str>,
    body: &[u8],
    max_stops: Option<u8>,
    fetched_at: Timestamp,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    ensure_json(content_type, body, "flight offers", secrets)?;
    let parsed = match wire::OffersReply::walk(body) {
        Ok(parsed) => parsed,
        // What the walk cannot follow, serde reads, or reports exactly.
        Err(Malformed) => parse_json(content_type, body, "flight offers", secrets)?,
    };
    cheapest_in(&parsed, max_stops, fetched_at, secrets)
}

/// [`cheapest_offer`] on a reply already read.
fn cheapest_in(
    parsed: &wire::OffersReply<'_>,
    max_stops: Option<u8>,
    fetched_at: Timestamp,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    let mut cheapest: Option<(Money, &wire::Offer<'_>)> = None;
    for (index, offer) in parsed.data.iter().enumerate() {
        if max_stops.is_some() && !within_limit(offer, max_stops) {
            continue;
        }
        let price = offer_price(&offer.price).map_err(|problem| {
            // The problem quotes the offer's own text: keep it printable.
            let problem = one_line(&problem, secrets, MESSAGE_CHARS);
            UpstreamError::Decode(format!("flight offer #{}: {problem}", index + 1))
        })?;
        cheapest = match cheapest {
            None => Some((price, offer)),
            Some((best, best_offer)) => match price.checked_cmp(&best) {
                Some(Ordering::Less) => Some((price, offer)),
                Some(_) => Some((best, best_offer)),
                // Never documented; refusing beats silently picking one currency.
                None => {
                    return Err(UpstreamError::Decode(format!(
                        "flight offers mix currencies ({} and {})",
                        best.currency, price.currency
                    )))
                }
            },
        };
    }
    Ok(cheapest.map(|(price, offer)| Quote {
        price,
        provider: "amadeus".to_owned(),
        fetched_at,
        cached: false,
        found_at: None,
        link: None,
        insights: None,
        itinerary: known(outbound(parsed, offer)),
    }))
}

/// Whether every itinerary of `offer` has at most `max_stops` stops; an
/// offer whose stops cannot be counted is not known to be, so it is not.
fn within_limit(offer: &wire::Offer<'_>, max_stops: Option<u8>) -> bool {
    offer.itineraries().is_some_and(|itineraries| {
        itineraries
            .iter()
            .all(|itinerary| itinerary.stops().is_some_and(|n| within(n, max_stops)))
    })
}

/// The outbound itinerary's flights: its segments' marketing airlines (by
/// name from `dictionaries`, else by code), stops and duration.
fn outbound(reply: &wire::OffersReply<'_>, offer: &wire::Offer<'_>) -> Itinerary {
    let Some(first) = offer
        .itineraries()
        .and_then(|itineraries| itineraries.into_iter().next())
    else {
        return Itinerary::default();
    };
    let names = reply.carrier_names();
    let airline = first.segments().and_then(|segments| {
        airlines(segments.iter().filter_map(|segment| {
            let code = segment.carrier_code.as_deref()?.trim();
            Some(names.get(code).map_or(code, String::as_str))
        }))
    });
    Itinerary {
        airline,
        stops: first.stops().and_then(stops),
        duration_minutes: first.duration().and_then(iso_duration_minutes),
    }
}

/// [`cheapest_offer`] on a raw `200` body, as a search without a stop limit
/// reads it (with `fetched_at` at the Unix epoch). For [`crate::fuzzing`].
pub(crate) fn read_offers(
    body: &[u8],
    content_type: Option<&str>,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    cheapest_offer(content_type, body, None, Timestamp::UNIX_EPOCH, secrets)
}

/// [`read_offers`] with the whole body read by serde, never walked: what
/// the walk must agree with. For [`crate::fuzzing`].
pub(crate) fn read_offers_by_serde(
    body: &[u8],
    content_type: Option<&str>,
    secrets: &[&str],
) -> Result<Option<Quote>, UpstreamError> {
    let parsed = parse_json(content_type, body, "flight offers", secrets)?;
    cheapest_in(&parsed, None, Timestamp::UNIX_EPOCH, secrets)
}

/// Whether the reader can walk `body` (valid JSON always can), rather than
/// fall back to serde. For [`crate::fuzzing`].
pub(crate) fn walks(body: &[u8]) -> bool {
    wire::OffersReply::walk(body).is_ok()
}

/// What an error body says, as `(code, message)`: the summary every failed
/// search and token request is mapped from. For [`crate::fuzzing`].
pub(crate) fn read_error(body: &[u8], secrets: &[&str]) -> (Option<String>, String) {
    let summary = wire::summarize_error(body, secrets);
    (summary.code, summary.message)
}

fn offer_price(price: &wire::Price<'_>) -> Result<Money, String> {
    let currency = Currency::parse(price.currency.as_str())?;
    let amount = price
        .grand_total
        .as_ref()
        .or(price.total.as_ref())
        .ok_or("price has neither grandTotal nor total")?;
    Money::parse_rounded(amount.as_str(), currency).map_err(|e| e.to_string())
}

/// `Retry-After` in seconds; Amadeus documents none, but honour it if sent.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl fmt::Debug for Amadeus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the secret and the token must never reach a log.
        f.debug_struct("Amadeus")
            .field("base_url", &self.base_url)
            .field("client_id", &self.config.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .field("has_token", &self.tokens.has_token())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FareSource for Amadeus {
    fn name(&self) -> &'static str {
        "amadeus"
    }

    fn default_limits(&self) -> Limits {
        let rate_per_sec = if self.base_url == PRODUCTION_BASE_URL {
            PRODUCTION_RATE_PER_SEC
        } else {
            TEST_RATE_PER_SEC
        };
        Limits {
            max_concurrency: MAX_CONCURRENCY,
            rate_per_sec,
            timeout: self.config.timeout,
        }
    }

    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        let span = tracing::debug_span!("amadeus", route = %key);
        self.lookup(key).instrument(span).await
    }
}
