//! OpenSky Network: departures from and arrivals at an airport within a
//! time window, with OAuth2 client credentials.
//!
//! One [`OpenSky`] per process. Its access token is held by the shared
//! [`crate::upstream::oauth`] holder: fetched on first need, shared across
//! concurrent lookups, replaced 30 s before it expires, and when OpenSky
//! rejects it (HTTP 401) refreshed once, however many lookups saw the 401,
//! and each lookup replayed once. Nothing else is
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
//! # Flights by airport, every field
//!
//! [`OpenSky::airport_flights`] asks the same two endpoints for the airport
//! collector ([`crate::collector`]) and keeps every field of every record as
//! a [`crate::store::AirportFlight`] (`icao24`, both times, both airports,
//! the callsign trimmed, the four distances and the two candidate counts).
//! It enforces OpenSky's rules before spending credits: an ICAO airport,
//! `begin < end`, and at most [`MAX_WINDOW`] (2 days) per request. A record
//! without `icao24`, `firstSeen` or `lastSeen` cannot be stored once (those
//! are its key) and is skipped. [`OpenSkyPool`] puts it behind the upstream
//! layer's [`ProviderPool`] (breaker, pacing, retries), as the status
//! failover does for [`StatusProvider`] lookups.
//!
//! The replies it reads are in `tests/fixtures/status/opensky-*.json`; the
//! API, its errors and limits are documented in
//! <https://github.com/openskynetwork/opensky-api> (`docs/`).

mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::{Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery};
use crate::store::{AirportFlight, Direction};
use crate::upstream::breaker::BreakerConfig;
use crate::upstream::oauth::{Attempt, Bearer, ClientCredentials, TokenHolder, TokenPolicy};
use crate::upstream::pool::ProviderPool;
use crate::upstream::reply::{error_for_status, one_line, Reply, MESSAGE_CHARS};
use crate::upstream::retry::{parse_retry_after, Backoff};
use crate::upstream::wire::non_blank;
use crate::upstream::Limits;

/// OpenSky's REST API.
pub const DEFAULT_BASE_URL: &str = "https://opensky-network.org/api";

/// OpenSky's Keycloak token endpoint for the client-credentials flow.
pub const DEFAULT_AUTH_URL: &str =
    "https://auth.opensky-network.org/auth/realms/opensky-network/protocol/openid-connect/token";

/// Time allowed for one request. The flights endpoints read a nightly
/// batch store and a busy airport's day can take several seconds; 30 s
/// leaves room for that without letting a hung request stall a cycle.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest window one `/flights/arrival` or `/flights/departure`
/// request may cover: OpenSky refuses more than two days.
pub const MAX_WINDOW: Duration = Duration::from_secs(2 * 24 * 60 * 60);

/// OpenSky behind the upstream layer's pool, for the airport collector.
pub type OpenSkyPool = ProviderPool<OpenSky>;

const NAME: &str = "opensky";
const DEPARTURES_PATH: &str = "/flights/departure";
const ARRIVALS_PATH: &str = "/flights/arrival";

/// OpenSky's token endpoint, as the shared holder needs it. The 30 s
/// margin is what OpenSky's own Python SDK uses; without `expires_in`, the
/// documented 30 minutes (the SDK assumes the same).
const TOKEN_POLICY: TokenPolicy = TokenPolicy {
    provider: "OpenSky",
    credentials_hint: CREDENTIALS_HINT,
    expiry_margin: Duration::from_secs(30),
    default_lifetime: Some(Duration::from_secs(1800)),
    token_error,
};

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
    tokens: TokenHolder,
}

impl OpenSky {
    /// A provider using the shared `client`.
    pub fn new(client: reqwest::Client, config: OpenSkyConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/');
        let credentials = ClientCredentials {
            token_url: config.auth_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            timeout: config.timeout,
        };
        Self {
            // 30-minute tokens: not worth keeping across runs.
            tokens: TokenHolder::new(client.clone(), credentials, TOKEN_POLICY, None),
            client,
            departures_url: format!("{base_url}{DEPARTURES_PATH}"),
            arrivals_url: format!("{base_url}{ARRIVALS_PATH}"),
            config,
        }
    }

    async fn lookup(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let search = &self.search_for(query)?;
        self.tokens
            .authorized(|bearer| async move {
                let fetched_at = Timestamp::now();
                let secrets = self.secrets(Some(&bearer));
                Ok(match self.fetch(search, &bearer).await? {
                    Attempt::Answer(Some(reply)) => {
                        Attempt::Answer(flights(&reply, fetched_at, &secrets)?)
                    }
                    Attempt::Answer(None) => Attempt::Answer(Vec::new()),
                    Attempt::TokenRejected(reason) => Attempt::TokenRejected(reason),
                })
            })
            .await
    }

    /// Every flight OpenSky recorded arriving at or departing from
    /// `airport` (ICAO) in `[begin, end]`, with all its fields, for the
    /// airport collector. No flights (OpenSky's 404 with an empty body) is
    /// an empty list. Refused unsent ([`StatusError::Rejected`], status 0)
    /// when the airport is not an ICAO code, `begin` is not before `end`,
    /// or the window is longer than [`MAX_WINDOW`].
    pub async fn airport_flights(
        &self,
        airport: &str,
        direction: Direction,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<AirportFlight>, StatusError> {
        let window = end.duration_since(begin);
        if window > jiff::SignedDuration::try_from(MAX_WINDOW).unwrap_or_default() {
            return Err(not_sent(&format!(
                "OpenSky answers at most two days per request (asked for {:.1} hours)",
                window.as_secs_f64() / 3600.0
            )));
        }
        let url = match direction {
            Direction::Arrivals => &self.arrivals_url,
            Direction::Departures => &self.departures_url,
        };
        let search = &self.search(url, airport, begin, end)?;
        let span = tracing::debug_span!("opensky", airport = %search.airport, ?direction);
        self.tokens
            .authorized(|bearer| async move {
                let secrets = self.secrets(Some(&bearer));
                Ok(match self.fetch(search, &bearer).await? {
                    Attempt::Answer(Some(reply)) => {
                        Attempt::Answer(airport_records(&reply, &secrets)?)
                    }
                    Attempt::Answer(None) => Attempt::Answer(Vec::new()),
                    Attempt::TokenRejected(reason) => Attempt::TokenRejected(reason),
                })
            })
            .instrument(span)
            .await
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
        self.search(url, airport, *begin, *end)
    }

    /// A checked request to `url` (the departures or the arrivals endpoint).
    fn search(
        &self,
        url: &str,
        airport: &str,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Search, StatusError> {
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
            url: url.to_owned(),
            airport: airport.to_ascii_uppercase(),
            begin: begin.as_second().to_string(),
            end: end.as_second().to_string(),
        })
    }

    /// One `GET` of departures or arrivals with `bearer`: the 2xx reply, or
    /// `None` for OpenSky's way of saying "no flights".
    async fn fetch(
        &self,
        search: &Search,
        bearer: &Bearer,
    ) -> Result<Attempt<Option<Reply>>, StatusError> {
        let request = self
            .client
            .get(&search.url)
            .query(&[
                ("airport", search.airport.as_str()),
                ("begin", search.begin.as_str()),
                ("end", search.end.as_str()),
            ])
            .header(AUTHORIZATION, bearer.header())
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let secrets = self.secrets(Some(bearer));
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        match reply.status {
            s if s.is_success() => Ok(Attempt::Answer(Some(reply))),
            // OpenSky's way of saying "no flights"; a 404 with a body is
            // something else (a wrong base URL, say) and is reported.
            StatusCode::NOT_FOUND if reply.body.iter().all(u8::is_ascii_whitespace) => {
                Ok(Attempt::Answer(None))
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

    /// What must never be quoted from a reply: the client secret and the
    /// token the request carried (`""` when there is none).
    fn secrets<'s>(&'s self, bearer: Option<&'s Bearer>) -> [&'s str; 2] {
        let token = bearer.map(Bearer::token).unwrap_or_default();
        [self.config.client_secret.expose_secret(), token]
    }
}

/// Maps a failed token request. Any 4xx except 429 means no lookup can
/// succeed, so it is an authentication failure whatever its cause.
fn token_error(reply: &Reply, secrets: &[&str]) -> StatusError {
    if reply.status == StatusCode::TOO_MANY_REQUESTS || !reply.status.is_client_error() {
        return status_error(reply, secrets);
    }
    StatusError::Auth(format!(
        "OpenSky refused the token request (HTTP {}: {}); {CREDENTIALS_HINT}",
        reply.status.as_u16(),
        wire::error_message(&reply.body, secrets)
    ))
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

/// A `200` reply as storable airport flights; records without their key
/// (`icao24`, `firstSeen`) or `lastSeen` are skipped.
fn airport_records(reply: &Reply, secrets: &[&str]) -> Result<Vec<AirportFlight>, StatusError> {
    let records: Vec<wire::Flight> = reply.json("flights", secrets)?;
    let total = records.len();
    let mut out = Vec::with_capacity(total);
    for (index, record) in records.into_iter().enumerate() {
        match to_airport_flight(record) {
            Ok(Some(flight)) => out.push(flight),
            Ok(None) => {}
            Err(problem) => {
                return Err(StatusError::Decode(format!(
                    "flight record #{}: {problem}",
                    index + 1
                )))
            }
        }
    }
    if out.len() < total {
        tracing::debug!(
            skipped = total - out.len(),
            "OpenSky records without icao24, firstSeen or lastSeen skipped"
        );
    }
    Ok(out)
}

/// One record with every field; `None` when it lacks what identifies it.
fn to_airport_flight(record: wire::Flight) -> Result<Option<AirportFlight>, String> {
    let (Some(icao24), Some(first_seen), Some(last_seen)) = (
        non_blank(record.icao24),
        instant(record.first_seen, "firstSeen")?,
        instant(record.last_seen, "lastSeen")?,
    ) else {
        return Ok(None);
    };
    let airport = |code: Option<String>| non_blank(code).map(|c| c.to_ascii_uppercase());
    Ok(Some(AirportFlight {
        icao24: icao24.to_ascii_lowercase(),
        first_seen,
        last_seen,
        departure_airport: airport(record.est_departure_airport),
        arrival_airport: airport(record.est_arrival_airport),
        callsign: non_blank(record.callsign),
        departure_horizontal_distance: wire::number(record.est_departure_airport_horiz_distance),
        departure_vertical_distance: wire::number(record.est_departure_airport_vert_distance),
        arrival_horizontal_distance: wire::number(record.est_arrival_airport_horiz_distance),
        arrival_vertical_distance: wire::number(record.est_arrival_airport_vert_distance),
        departure_candidates: wire::number(record.departure_airport_candidates_count),
        arrival_candidates: wire::number(record.arrival_airport_candidates_count),
    }))
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
        operated_by: None,
        codeshares: Vec::new(),
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

impl ProviderPool<OpenSky> {
    /// OpenSky for the airport collector, with `limits`, the default
    /// backoff and `breaker`: the same guarded call the status failover
    /// makes for its lookups.
    pub fn for_opensky(opensky: Arc<OpenSky>, limits: Limits, breaker: BreakerConfig) -> Self {
        Self::build(NAME, opensky, limits, Backoff::default(), breaker)
    }

    /// [`OpenSky::airport_flights`] under the pool's policy (breaker,
    /// pacing, retries of what is worth retrying).
    pub async fn airport_flights(
        &self,
        airport: &str,
        direction: Direction,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<AirportFlight>, StatusError> {
        let what = format!(
            "{} {airport} {}..{}",
            match direction {
                Direction::Arrivals => "arrivals at",
                Direction::Departures => "departures from",
            },
            begin.as_second(),
            end.as_second()
        );
        self.guarded(&what, |opensky: Arc<OpenSky>| {
            let airport = airport.to_owned();
            async move {
                opensky
                    .airport_flights(&airport, direction, begin, end)
                    .await
            }
        })
        .await
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
