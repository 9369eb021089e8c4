//! OpenSky Network: departures from and arrivals at an airport within a
//! time window, with OAuth2 client credentials.
//!
//! One [`OpenSky`] per process: it fetches an access token on first need,
//! shares it across concurrent lookups, replaces it 30 s before it expires,
//! and when OpenSky rejects it (HTTP 401) refreshes it once, however many
//! lookups saw the 401, and replays each lookup once. Nothing else is
//! retried here: failures come back as typed [`StatusError`]s and the caller
//! decides about retries.
//!
//! # What OpenSky can and cannot say
//!
//! OpenSky records what its receivers saw: no schedule, no delays, no
//! terminals or gates, no IATA flight numbers, and (for these endpoints)
//! only the previous day or earlier, from a nightly batch. A record becomes
//! a [`FlightStatus`] by these rules:
//!
//! - `callsign`, trimmed of its space padding, is the ICAO-style flight
//!   designator (`DLH400`) in [`FlightStatus::flight_icao`]; when it is three
//!   letters then a digit, the three letters are the ICAO airline designator
//!   in [`FlightStatus::airline`]. [`FlightStatus::flight_iata`] stays empty:
//!   an ICAO callsign does not reliably map to an IATA flight number.
//! - `estDepartureAirport` / `estArrivalAirport` are the endpoints' ICAO
//!   codes, `None` where OpenSky could not tell.
//! - `firstSeen` / `lastSeen` are the departure's and arrival's `actual`
//!   instants (OpenSky's own "estimated departure/arrival time"; strictly,
//!   when its network first and last saw the aircraft, so for an end with
//!   no identified airport it is where coverage began or ended).
//! - State: a flight last seen in the past with an identified arrival
//!   airport is [`FlightState::Landed`]; anything else is
//!   [`FlightState::Active`].
//! - [`FlightStatus::flight_date`] stays empty: the local date would need
//!   the airport's time zone, which OpenSky does not send.
//!
//! Wire formats, errors and limits: `docs/wire-formats.md` §8.

mod wire;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tracing::Instrument;

use super::{Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery};
use crate::upstream::reply::{ensure_json, error_for_status, one_line, Reply, MESSAGE_CHARS};
use crate::upstream::retry::parse_retry_after;
use crate::upstream::wire::non_blank;

/// OpenSky's REST API.
pub const DEFAULT_BASE_URL: &str = "https://opensky-network.org/api";

/// OpenSky's Keycloak token endpoint for the client-credentials flow.
pub const DEFAULT_AUTH_URL: &str =
    "https://auth.opensky-network.org/auth/realms/opensky-network/protocol/openid-connect/token";

/// Time allowed for one request. The flights endpoints read a nightly
/// batch store and a busy airport's day can take several seconds; 30 s
/// leaves room for that without letting a hung request stall a cycle.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const NAME: &str = "opensky";
const DEPARTURES_PATH: &str = "/flights/departure";
const ARRIVALS_PATH: &str = "/flights/arrival";

/// A token is replaced this long before OpenSky says it expires, so a
/// request signed just before expiry does not arrive just after it. Thirty
/// seconds is what OpenSky's own Python SDK uses.
const TOKEN_EXPIRY_BUFFER: Duration = Duration::from_secs(30);

/// Token lifetime assumed when the reply has no `expires_in`: OpenSky
/// documents 30 minutes, and its SDK assumes the same.
const DEFAULT_EXPIRES_IN: u64 = 1800;

/// OpenSky's own header on a 429: seconds until credits are available again.
const RATE_LIMIT_RETRY_AFTER: &str = "x-rate-limit-retry-after-seconds";

/// Added to every message about rejected credentials.
const CREDENTIALS_HINT: &str = "check OPENSKY_CLIENT_ID/OPENSKY_CLIENT_SECRET";

/// How to reach OpenSky.
///
/// `Debug` shows the secret as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct OpenSkyConfig {
    /// API base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// Token endpoint, e.g. [`DEFAULT_AUTH_URL`] or a local fake.
    pub auth_url: String,
    /// API client id (from the OpenSky account page).
    pub client_id: String,
    /// API client secret.
    pub client_secret: SecretString,
    /// Per-request timeout, for the token request and each lookup alike.
    pub timeout: Duration,
}

impl OpenSkyConfig {
    /// The real service with these credentials and [`DEFAULT_TIMEOUT`].
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            client_id: client_id.into(),
            client_secret,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The OpenSky status provider.
///
/// `Debug` never shows the secret or the access token.
pub struct OpenSky {
    client: reqwest::Client,
    config: OpenSkyConfig,
    departures_url: String,
    arrivals_url: String,
    tokens: Tokens,
}

impl OpenSky {
    /// A provider using the shared `client`.
    pub fn new(client: reqwest::Client, config: OpenSkyConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/');
        Self {
            client,
            departures_url: format!("{base_url}{DEPARTURES_PATH}"),
            arrivals_url: format!("{base_url}{ARRIVALS_PATH}"),
            config,
            tokens: Tokens::default(),
        }
    }

    async fn lookup(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let search = self.search_for(query)?;
        let bearer = self.tokens.bearer(None, || self.fetch_token()).await?;
        let reason = match self.search(&search, &bearer).await? {
            Attempt::Answer(flights) => return Ok(flights),
            Attempt::TokenRejected(reason) => reason,
        };
        tracing::debug!(%reason, "OpenSky rejected the access token; refreshing it and replaying once");
        let bearer = self
            .tokens
            .bearer(Some(bearer.generation), || self.fetch_token())
            .await?;
        match self.search(&search, &bearer).await? {
            Attempt::Answer(flights) => Ok(flights),
            // Twice in a row means the credentials, not the token, are the
            // problem; looping would only burn credits.
            Attempt::TokenRejected(reason) => Err(StatusError::Auth(format!(
                "OpenSky rejected a freshly issued access token ({reason}); {CREDENTIALS_HINT}"
            ))),
        }
    }

    /// The request for a departures or arrivals query, checked before any
    /// credits are spent on it.
    fn search_for(&self, query: &StatusQuery) -> Result<Search, StatusError> {
        let (url, airport, begin, end) = match query {
            StatusQuery::Departures {
                airport_icao,
                begin,
                end,
            } => (&self.departures_url, airport_icao, begin, end),
            StatusQuery::Arrivals {
                airport_icao,
                begin,
                end,
            } => (&self.arrivals_url, airport_icao, begin, end),
            StatusQuery::Flight { .. } | StatusQuery::Filter { .. } => {
                return Err(not_sent(
                    "OpenSky only answers departures or arrivals by airport and time window",
                ))
            }
        };
        let airport = airport.trim();
        if airport.len() != 4 || !airport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(not_sent(&format!(
                "`{}` is not an ICAO airport code (four letters, like EDDF)",
                one_line(airport, &[], MESSAGE_CHARS)
            )));
        }
        if begin >= end {
            return Err(not_sent(&format!(
                "the window must begin before it ends (begin {begin}, end {end})"
            )));
        }
        Ok(Search {
            url: url.clone(),
            airport: airport.to_ascii_uppercase(),
            begin: begin.as_second().to_string(),
            end: end.as_second().to_string(),
        })
    }

    /// `POST` the client credentials to the token endpoint.
    async fn fetch_token(&self) -> Result<FetchedToken, StatusError> {
        // Taken before sending, so the recorded expiry is never later than OpenSky's.
        let requested_at = Instant::now();
        let request = self
            .client
            .post(&self.config.auth_url)
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.config.client_id.as_str()),
                ("client_secret", self.config.client_secret.expose_secret()),
            ])
            .timeout(self.config.timeout);
        let secrets = self.secrets(None);
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if !reply.status.is_success() {
            return Err(self.token_error(&reply));
        }
        ensure_json(reply.content_type(), &reply.body, "token reply", &secrets)?;
        // No excerpt: the body holds the token.
        let parsed: wire::TokenReply = serde_json::from_slice(&reply.body).map_err(|e| {
            StatusError::Decode(format!(
                "token reply: {}",
                one_line(&e.to_string(), &secrets, MESSAGE_CHARS)
            ))
        })?;
        if parsed.access_token.is_empty() {
            return Err(StatusError::Decode(
                "token reply has an empty access_token".into(),
            ));
        }
        let header = bearer_header(&parsed.access_token)?;
        let expires_in = parsed.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        // An absurd lifetime is capped rather than overflowing the clock.
        let lifetime = Duration::from_secs(expires_in.min(u64::from(u32::MAX)));
        tracing::debug!(expires_in, "fetched an OpenSky access token");
        Ok(FetchedToken {
            header,
            expires_at: requested_at + lifetime,
        })
    }

    /// One `GET` of departures or arrivals with `bearer`.
    async fn search(&self, search: &Search, bearer: &Bearer) -> Result<Attempt, StatusError> {
        let fetched_at = Timestamp::now();
        let request = self
            .client
            .get(&search.url)
            .query(&[
                ("airport", search.airport.as_str()),
                ("begin", search.begin.as_str()),
                ("end", search.end.as_str()),
            ])
            .header(AUTHORIZATION, bearer.header.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let secrets = self.secrets(Some(bearer));
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        match reply.status {
            s if s.is_success() => flights(&reply, fetched_at, &secrets).map(Attempt::Answer),
            // OpenSky's way of saying "no flights"; a 404 with a body is
            // something else (a wrong base URL, say) and is reported.
            StatusCode::NOT_FOUND if reply.body.iter().all(u8::is_ascii_whitespace) => {
                Ok(Attempt::Answer(Vec::new()))
            }
            StatusCode::UNAUTHORIZED => Ok(Attempt::TokenRejected(wire::error_message(
                &reply.body,
                &secrets,
            ))),
            // The token was accepted but the account may not use this
            // endpoint: a new token will not help.
            StatusCode::FORBIDDEN => Err(StatusError::Auth(format!(
                "OpenSky refused access (HTTP 403: {}); {CREDENTIALS_HINT}",
                wire::error_message(&reply.body, &secrets)
            ))),
            _ => Err(status_error(&reply, &secrets)),
        }
    }

    /// Maps a failed token request. Any 4xx except 429 means no lookup can
    /// succeed, so it is an authentication failure whatever its cause.
    fn token_error(&self, reply: &Reply) -> StatusError {
        let secrets = self.secrets(None);
        if reply.status == StatusCode::TOO_MANY_REQUESTS || !reply.status.is_client_error() {
            return status_error(reply, &secrets);
        }
        StatusError::Auth(format!(
            "OpenSky refused the token request (HTTP {}: {}); {CREDENTIALS_HINT}",
            reply.status.as_u16(),
            wire::error_message(&reply.body, &secrets)
        ))
    }

    /// What must never be quoted from a reply: the client secret and the
    /// token the request carried (`""` when there is none).
    fn secrets<'s>(&'s self, bearer: Option<&'s Bearer>) -> [&'s str; 2] {
        let token = bearer
            .and_then(|b| b.header.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        [self.config.client_secret.expose_secret(), token]
    }
}

/// A departures or arrivals request, validated.
struct Search {
    url: String,
    /// Upper-case ICAO code.
    airport: String,
    /// Unix seconds.
    begin: String,
    /// Unix seconds.
    end: String,
}

/// The outcome of one search attempt.
enum Attempt {
    /// OpenSky answered (an empty list when it had no flights).
    Answer(Vec<FlightStatus>),
    /// OpenSky refused the token (401); what it said, for logs.
    TokenRejected(String),
}

/// A query this provider does not send: `Rejected` with status 0, as the
/// [`StatusProvider`] contract asks.
fn not_sent(message: &str) -> StatusError {
    StatusError::Rejected {
        status: 0,
        code: None,
        message: message.to_owned(),
    }
}

/// The mapping shared by both endpoints for everything but 401s and 403s;
/// a 429 means out of credits for this bucket, and the header says when
/// they return.
fn status_error(reply: &Reply, secrets: &[&str]) -> StatusError {
    error_for_status(
        reply.status,
        retry_after(&reply.headers),
        None,
        wire::error_message(&reply.body, secrets),
    )
}

/// A `200` reply as standard statuses.
fn flights(
    reply: &Reply,
    fetched_at: Timestamp,
    secrets: &[&str],
) -> Result<Vec<FlightStatus>, StatusError> {
    let records: Vec<wire::Flight> = reply.json("flights", secrets)?;
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            to_status(record, fetched_at).map_err(|problem| {
                StatusError::Decode(format!("flight record #{}: {problem}", index + 1))
            })
        })
        .collect()
}

/// One record as a standard status; see the module docs for the rules.
fn to_status(record: wire::Flight, fetched_at: Timestamp) -> Result<FlightStatus, String> {
    let callsign = non_blank(record.callsign);
    let airline = callsign.as_deref().and_then(airline_designator);
    let departed = instant(record.first_seen, "firstSeen")?;
    let arrived = instant(record.last_seen, "lastSeen")?;
    let arrival_icao = non_blank(record.est_arrival_airport);
    let state = if arrival_icao.is_some() && arrived.is_some_and(|t| t <= fetched_at) {
        FlightState::Landed
    } else {
        FlightState::Active
    };
    Ok(FlightStatus {
        flight_iata: None,
        flight_icao: callsign,
        airline,
        flight_date: None,
        state,
        departure: Endpoint {
            icao: non_blank(record.est_departure_airport),
            actual: departed,
            ..Endpoint::default()
        },
        arrival: Endpoint {
            icao: arrival_icao,
            actual: arrived,
            ..Endpoint::default()
        },
        provider: NAME.to_owned(),
        fetched_at,
    })
}

/// `DLH` from `DLH400`: an ICAO airline designator is three letters, and a
/// flight callsign continues with the flight number. Registrations used as
/// callsigns (`DEABC`) do not match.
fn airline_designator(callsign: &str) -> Option<String> {
    let bytes = callsign.as_bytes();
    let is_flight = bytes.len() > 3
        && bytes[..3].iter().all(u8::is_ascii_alphabetic)
        && bytes[3].is_ascii_digit();
    is_flight.then(|| callsign[..3].to_ascii_uppercase())
}

fn instant(seconds: Option<i64>, field: &str) -> Result<Option<Timestamp>, String> {
    seconds
        .map(|s| Timestamp::from_second(s).map_err(|_| format!("{field} {s} is not a valid time")))
        .transpose()
}

/// `X-Rate-Limit-Retry-After-Seconds`, OpenSky's own header; a standard
/// `Retry-After` is honoured too should a proxy send one instead.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    [RATE_LIMIT_RETRY_AFTER, RETRY_AFTER.as_str()]
        .into_iter()
        .find_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            parse_retry_after(value, Timestamp::now())
        })
}

fn bearer_header(token: &str) -> Result<HeaderValue, StatusError> {
    let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        StatusError::Decode("the access token contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

impl fmt::Debug for OpenSky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the secret and the token must never reach a log.
        f.debug_struct("OpenSky")
            .field("base_url", &self.config.base_url)
            .field("auth_url", &self.config.auth_url)
            .field("client_id", &self.config.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .field("has_token", &self.tokens.has_token())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StatusProvider for OpenSky {
    fn name(&self) -> &'static str {
        NAME
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn supports(&self, query: &StatusQuery) -> bool {
        matches!(
            query,
            StatusQuery::Departures { .. } | StatusQuery::Arrivals { .. }
        )
    }

    async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let span = tracing::debug_span!("opensky", ?query);
        self.lookup(query).instrument(span).await
    }
}

// ----- the access token ------------------------------------------------------
//
// One token per process, shared by every lookup, fetched by exactly one
// caller at a time: the state sits behind a `tokio::sync::Mutex` held across
// the token request, so callers that find no usable token queue behind the
// one fetching it and then reuse its result. Every installed token gets a
// new *generation*; a caller whose token drew a 401 names the generation it
// used and only refreshes if that is still the current one, so twenty
// lookups that all see a 401 cause one token request, not twenty. (The
// Amadeus source does the same, plus a cross-run cache OpenSky's 30-minute
// tokens do not need.)

/// A token as the token endpoint handed it over.
struct FetchedToken {
    /// `Bearer <token>`, marked sensitive so `http`'s `Debug` prints `Sensitive`.
    header: HeaderValue,
    /// When OpenSky will stop accepting it (monotonic, immune to clock changes).
    expires_at: Instant,
}

/// A token ready to put on a request.
#[derive(Clone)]
struct Bearer {
    header: HeaderValue,
    /// Which installed token this is.
    generation: u64,
}

struct Current {
    bearer: Bearer,
    expires_at: Instant,
}

#[derive(Default)]
struct TokenState {
    current: Option<Current>,
    /// Generation of the most recently installed token (0: none yet).
    generation: u64,
    /// Why the latest token request failed, until one succeeds.
    last_failure: Option<StatusError>,
}

#[derive(Default)]
struct Tokens {
    state: Mutex<TokenState>,
    /// Completed token requests, bumped under the lock. Read *before*
    /// queueing for the lock, it tells a caller whether a request finished
    /// while it waited: if that one failed, the caller shares its error
    /// rather than sending another doomed request (bad credentials would
    /// otherwise cost one token request per queued lookup).
    attempts: AtomicU64,
}

impl Tokens {
    /// Whether a token is held (for `Debug`, which must not wait).
    fn has_token(&self) -> Option<bool> {
        self.state.try_lock().ok().map(|s| s.current.is_some())
    }

    /// A usable token: the one held, else a new one from `fetch`.
    ///
    /// `rejected` is the generation OpenSky just refused with a 401: that
    /// token is replaced once, however many callers saw the 401.
    async fn bearer<F, Fut>(&self, rejected: Option<u64>, fetch: F) -> Result<Bearer, StatusError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<FetchedToken, StatusError>>,
    {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current {
            let is_rejected = rejected == Some(current.bearer.generation);
            let fresh = current
                .expires_at
                .checked_duration_since(Instant::now())
                .is_some_and(|left| left > TOKEN_EXPIRY_BUFFER);
            if !is_rejected && fresh {
                return Ok(current.bearer.clone());
            }
        }
        if self.attempts.load(Ordering::Acquire) != attempts_seen {
            if let Some(failure) = &state.last_failure {
                return Err(failure.clone());
            }
        }
        let outcome = fetch().await;
        self.attempts.fetch_add(1, Ordering::Release);
        match outcome {
            Ok(token) => {
                state.last_failure = None;
                state.generation += 1;
                let bearer = Bearer {
                    header: token.header,
                    generation: state.generation,
                };
                state.current = Some(Current {
                    bearer: bearer.clone(),
                    expires_at: token.expires_at,
                });
                Ok(bearer)
            }
            Err(error) => {
                state.last_failure = Some(error.clone());
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airline_designators_come_from_flight_callsigns_only() {
        assert_eq!(airline_designator("DLH400").as_deref(), Some("DLH"));
        assert_eq!(airline_designator("DLH9CK").as_deref(), Some("DLH"));
        assert_eq!(airline_designator("DEABC"), None);
        assert_eq!(airline_designator("N12345"), None);
        assert_eq!(airline_designator("DLH"), None);
    }

    #[test]
    fn out_of_range_times_are_reported() {
        assert_eq!(instant(None, "firstSeen"), Ok(None));
        assert!(instant(Some(i64::MAX), "lastSeen")
            .unwrap_err()
            .contains("lastSeen"));
    }
}
