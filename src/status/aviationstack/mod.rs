//! Aviationstack's real-time flights endpoint, `GET /v1/flights`.
//!
//! | | |
//! |---|---|
//! | needs | an Aviationstack access key (`AVIATIONSTACK_ACCESS_KEY`, from aviationstack.com/dashboard) |
//! | costs | one request of the plan's monthly allowance per lookup (the 2019 Free plan had 500 a month; the current figure is unconfirmed) |
//! | answers | [`StatusQuery::Flight`] (by IATA or ICAO designator, optionally on a date) and [`StatusQuery::Filter`] (departure and/or arrival airport, state, limit). Not [`StatusQuery::Departures`] / [`StatusQuery::Arrivals`] by ICAO airport and time window |
//! | limits | a monthly request allowance and a rate limit, both per plan; HTTP 429 `usage_limit_reached` (month used up) versus `rate_limit_reached` (slow down) |
//!
//! One lookup is one request: `GET {base}/v1/flights?access_key=…` plus
//! `flight_iata` or `flight_icao` (and `flight_date`) for a flight, or
//! `dep_iata`, `arr_iata`, `flight_status`, `limit` for a filter. No paging:
//! a filter gets at most [`MAX_LIMIT`] flights, the most every plan allows
//! in one page.
//!
//! # What comes back, and the choices made
//!
//! - **Times.** Aviationstack sends local wall-clock times labelled with a
//!   false `+00:00` (`"2020-02-04T20:25:00+00:00"` for a 20:25 departure in
//!   Singapore). The offset is dropped and the wall-clock time is placed in
//!   the endpoint's own `timezone` (an IANA name), giving a real instant. A
//!   wall-clock time skipped by a daylight-saving change is moved forward by
//!   the gap's length, and one that happens twice is taken at its first
//!   occurrence (jiff's "compatible" rule, as RFC 5545 does). When the
//!   `timezone` is missing or not a zone this machine knows, the
//!   endpoint's times are left `None` rather than guessed; its airport,
//!   gate and delay are still filled in.
//! - **State.** `flight_status` maps one to one onto [`FlightState`]
//!   (`unknown` or anything unheard-of is [`FlightState::Unknown`]), except
//!   that a `scheduled` flight with a departure `delay` of
//!   [`DISRUPTION_DELAY_MINUTES`](super::DISRUPTION_DELAY_MINUTES) or more
//!   and no actual departure time is [`FlightState::Delayed`].
//! - **Codeshares.** Aviationstack lists each marketing flight of a
//!   codeshare as its own `data[]` entry, carrying `flight.codeshared` (the
//!   *operating* flight, in lower case). An entry whose operating flight is
//!   also in the reply (same operating designator, date and departure
//!   airport) is folded into it: the flight is reported once, under its
//!   operating designator, with the marketing designator in
//!   [`FlightStatus::codeshares`]. When several marketing entries of one
//!   operating flight arrive without it, the first is kept and the others
//!   folded into it. A codeshare entry whose operating flight is absent is
//!   kept under its own (marketing) designator, which is what a lookup of
//!   that designator asked for, naming the operating flight in
//!   [`FlightStatus::operated_by`].
//! - **Filters are honoured exactly.** A filter by state returns only
//!   flights in that state *as mapped here*: asking for `Scheduled` leaves
//!   out scheduled flights that are [`FlightState::Delayed`], and asking for
//!   `Delayed` sends `flight_status=scheduled&min_delay_dep=15`. A filter by
//!   [`FlightState::Unknown`] is not supported. A flight lookup on a date
//!   drops any entry whose `flight_date` is another day. A `limit` of 0
//!   returns an empty list without asking; larger limits are capped at
//!   [`MAX_LIMIT`].
//! - **Dates need a paid plan.** `flight_date` lookups need the Basic plan
//!   or higher and reach back only three months; on the Free plan a flight
//!   lookup with a date fails as [`StatusError::Rejected`]
//!   (`function_access_restricted`). Look up without a date to get the
//!   current real-time data on any plan.
//!
//! # Errors
//!
//! Errors are `{"error":{"code","message"[,"context"]}}`, and the body is
//! checked for an `error` key even on HTTP 200 (older apilayer APIs sent
//! errors that way). A `Rejected` or `Upstream` error carries the HTTP
//! status that actually arrived, so an error inside a 200 says `HTTP 200`
//! and is recognised by its code.
//!
//! | `error.code` (documented status) | [`StatusError`] |
//! |---|---|
//! | `invalid_access_key`, `missing_access_key`, `inactive_user` (401) | `Auth`, naming `AVIATIONSTACK_ACCESS_KEY` |
//! | `usage_limit_reached` (429) | `QuotaExhausted`: the month's allowance is gone |
//! | `rate_limit_reached` (429) | `RateLimited` (with `Retry-After` if one is ever sent) |
//! | `function_access_restricted`, `https_access_restricted` (403) | `Rejected`, saying the plan does not include it |
//! | `validation_error` | `Rejected`, with the per-parameter details |
//! | `internal_error` (500) | `Upstream` |
//! | anything else | by HTTP status: 401 `Auth`, 429 `RateLimited`, other 4xx (and 2xx) `Rejected`, 5xx `Upstream` |
//!
//! The access key travels in the query string (Aviationstack has no header
//! for it), so request URLs are never logged or quoted in errors, and any
//! echo of the key in a reply is replaced with `[REDACTED]`. Nothing is
//! retried here: failures come back as typed errors and the caller decides.
//!
//! The replies it reads are in `tests/fixtures/status/aviationstack-*.json`;
//! the API, its error codes and limits are documented at
//! <https://aviationstack.com/documentation>.

mod wire;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::{
    is_late, Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery,
};
use crate::upstream::reply::{error_for_status, excerpt, Reply};

use wire::{text, Lenient};

/// Aviationstack's API host, the default base URL. HTTPS is allowed on
/// every plan now, Free included (<https://aviationstack.com/documentation>),
/// and the key travels in the URL, so plain HTTP is never the default.
pub const DEFAULT_BASE_URL: &str = "https://api.aviationstack.com";

/// A sensible per-request timeout: the API answers from its own database,
/// so a reply slower than this means trouble, not a long search.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most flights one filter lookup asks for (`limit`). Plans below
/// Professional allow at most 100 per request (Professional and above,
/// 1000), so 100 works on every plan; farewatch does not page.
pub const MAX_LIMIT: usize = 100;

/// The name this provider goes by in logs and reports.
const NAME: &str = "aviationstack";

const FLIGHTS_PATH: &str = "/v1/flights";

/// Added to every message about a rejected key.
const KEY_HINT: &str = "check AVIATIONSTACK_ACCESS_KEY";

/// `min_delay_dep` for a filter by [`FlightState::Delayed`]: the 15-minute
/// rule ([`super::DISRUPTION_DELAY_MINUTES`]), so the API does the filtering.
const MIN_DELAY_DEP: &str = "15";

/// How to reach Aviationstack.
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct AviationstackConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// The account's access key, sent as the `access_key` query parameter.
    pub access_key: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl AviationstackConfig {
    /// The production API with [`DEFAULT_TIMEOUT`].
    pub fn new(access_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            access_key,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The Aviationstack flight-status provider.
///
/// `Debug` never shows the access key.
pub struct Aviationstack {
    client: reqwest::Client,
    config: AviationstackConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
    flights_url: String,
}

impl Aviationstack {
    /// A provider using the shared `client`.
    pub fn new(client: reqwest::Client, config: AviationstackConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        Self {
            client,
            flights_url: format!("{base_url}{FLIGHTS_PATH}"),
            base_url,
            config,
        }
    }

    /// One `GET /v1/flights`, then the entries turned into standard statuses.
    async fn lookup(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let Some(plan) = plan(query)? else {
            return Ok(Vec::new());
        };
        let fetched_at = Timestamp::now();
        let mut params: Vec<(&str, &str)> = plan
            .params
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        params.push(("access_key", self.config.access_key.expose_secret()));

        let request = self
            .client
            .get(&self.flights_url)
            .query(&params)
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let secrets = self.secrets();
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if !reply.status.is_success() {
            let summary = wire::summarize_error(&reply.body, &secrets);
            return Err(error_for(reply.status, reply.retry_after(), summary));
        }

        let parsed: wire::FlightsReply = reply.json("flights reply", &secrets)?;
        if let Some(error) = parsed.error {
            // An error inside a 2xx: apilayer's older habit, checked always.
            let summary = match error.valid() {
                Some(error) => error.summarize(&secrets),
                None => wire::ErrorSummary {
                    code: None,
                    message: format!("unrecognised error: {}", excerpt(&reply.body, &secrets)),
                },
            };
            return Err(error_for(reply.status, reply.retry_after(), summary));
        }
        let Some(data) = parsed.data else {
            return Err(StatusError::Decode(format!(
                "flights reply has neither `data` nor `error`: {}",
                excerpt(&reply.body, &secrets)
            )));
        };
        let data = data.unwrap_or_default();
        log_truncation(parsed.pagination, data.len());

        let mut entries = Vec::with_capacity(data.len());
        for (index, flight) in data.into_iter().enumerate() {
            match flight.valid() {
                Some(flight) => entries.push(entry(flight, fetched_at)),
                None => tracing::warn!(index, "skipping a flights entry that is not an object"),
            }
        }
        let mut statuses = dedupe_codeshares(entries);
        statuses.retain(|status| plan.keeps(status));
        if let Some(limit) = plan.limit {
            statuses.truncate(limit);
        }
        Ok(statuses)
    }

    /// What must never be quoted from a reply: the access key.
    fn secrets(&self) -> [&str; 1] {
        [self.config.access_key.expose_secret()]
    }
}

// ----- the request -----------------------------------------------------------------

/// What to ask and how to filter the answer.
struct Plan {
    /// Query parameters, the access key aside.
    params: Vec<(&'static str, String)>,
    /// Keep only flights on this date (a flight lookup with a date).
    date: Option<Date>,
    /// Keep only flights in this state (a filter by state).
    state: Option<FlightState>,
    /// Keep at most this many (a filter).
    limit: Option<usize>,
}

impl Plan {
    fn keeps(&self, status: &FlightStatus) -> bool {
        // A flight without a date cannot be shown to be on another day.
        let date_ok = match (self.date, status.flight_date) {
            (Some(wanted), Some(date)) => wanted == date,
            _ => true,
        };
        let state_ok = self.state.is_none_or(|state| state == status.state);
        date_ok && state_ok
    }
}

/// The request for `query`, `None` when the answer is known to be empty
/// without asking (a limit of 0), or `Rejected` with status 0 for a query
/// this provider cannot answer.
fn plan(query: &StatusQuery) -> Result<Option<Plan>, StatusError> {
    match query {
        StatusQuery::Flight { ident, date } => {
            let (param, designator) = designator(ident)?;
            let mut params = vec![(param, designator)];
            if let Some(date) = date {
                params.push(("flight_date", date.to_string()));
            }
            Ok(Some(Plan {
                params,
                date: *date,
                state: None,
                limit: None,
            }))
        }
        StatusQuery::Filter {
            dep_iata,
            arr_iata,
            state,
            limit,
        } => {
            if *limit == 0 {
                return Ok(None);
            }
            let mut params = Vec::with_capacity(5);
            if let Some(code) = dep_iata {
                params.push(("dep_iata", airport(code, "dep_iata")?));
            }
            if let Some(code) = arr_iata {
                params.push(("arr_iata", airport(code, "arr_iata")?));
            }
            if let Some(state) = state {
                let (status, min_delay) = status_filter(*state).ok_or_else(|| {
                    unsupported("Aviationstack cannot filter flights by an unknown state")
                })?;
                params.push(("flight_status", status.to_owned()));
                if let Some(min_delay) = min_delay {
                    params.push(("min_delay_dep", min_delay.to_owned()));
                }
            }
            let limit = (*limit).min(MAX_LIMIT);
            params.push(("limit", limit.to_string()));
            Ok(Some(Plan {
                params,
                date: None,
                state: *state,
                limit: Some(limit),
            }))
        }
        StatusQuery::Departures { .. } | StatusQuery::Arrivals { .. } => Err(unsupported(
            "Aviationstack cannot list an airport's departures or arrivals by ICAO code and \
             time window; use a filter by IATA airport code instead",
        )),
    }
}

/// `flight_status` (and `min_delay_dep`) asking for flights in `state`.
fn status_filter(state: FlightState) -> Option<(&'static str, Option<&'static str>)> {
    Some(match state {
        FlightState::Scheduled => ("scheduled", None),
        // Delayed is "scheduled, and late": ask for exactly that, then keep
        // only those with no actual departure yet.
        FlightState::Delayed => ("scheduled", Some(MIN_DELAY_DEP)),
        FlightState::Active => ("active", None),
        FlightState::Landed => ("landed", None),
        FlightState::Cancelled => ("cancelled", None),
        FlightState::Incident => ("incident", None),
        FlightState::Diverted => ("diverted", None),
        FlightState::Unknown => return None,
    })
}

/// `("flight_icao", "DLH400")` for a three-letter airline prefix, else
/// `("flight_iata", "LH400")`. Spaces are dropped and letters upper-cased.
fn designator(ident: &str) -> Result<(&'static str, String), StatusError> {
    let ident: String = ident
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = (3..=10).contains(&ident.len()) && ident.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(invalid(format!(
            "`{}` is not a flight designator such as LH400 or DLH400",
            ident.chars().take(20).collect::<String>()
        )));
    }
    let bytes = ident.as_bytes();
    let icao = bytes.len() > 3 && bytes[..3].iter().all(u8::is_ascii_alphabetic);
    Ok((if icao { "flight_icao" } else { "flight_iata" }, ident))
}

/// A three-letter airport (or city) code, upper-cased.
fn airport(code: &str, param: &str) -> Result<String, StatusError> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code)
    } else {
        Err(invalid(format!(
            "{param} `{}` is not a three-letter IATA code",
            code.chars().take(20).collect::<String>()
        )))
    }
}

/// A query this provider cannot answer at all.
fn unsupported(message: &str) -> StatusError {
    StatusError::Rejected {
        status: 0,
        code: None,
        message: message.to_owned(),
    }
}

/// A query refused before asking, because it could not be right.
fn invalid(message: String) -> StatusError {
    StatusError::Rejected {
        status: 0,
        code: None,
        message,
    }
}

// ----- the answer ---------------------------------------------------------------------

/// One entry, converted, with the operating flight of a codeshare.
struct Entry {
    status: FlightStatus,
    /// For a codeshare entry: the operating flight's designators, upper-cased.
    operating: Option<[Option<String>; 2]>,
}

fn entry(flight: wire::Flight, fetched_at: Timestamp) -> Entry {
    let departure = endpoint(flight.departure.and_then(Lenient::valid), "departure");
    let arrival = endpoint(flight.arrival.and_then(Lenient::valid), "arrival");
    let state = state(text(flight.flight_status).as_deref(), &departure);
    let flight_date = text(flight.flight_date).and_then(|d| d.parse::<Date>().ok());
    let airline = flight.airline.and_then(Lenient::valid).and_then(|a| {
        text(a.name)
            .or_else(|| text(a.iata))
            .or_else(|| text(a.icao))
    });
    let (flight_iata, flight_icao, operating) = match flight.flight.and_then(Lenient::valid) {
        Some(designators) => {
            let operating = designators
                .codeshared
                .and_then(Lenient::valid)
                .map(|c| [code(c.flight_iata), code(c.flight_icao)])
                .filter(|[iata, icao]| iata.is_some() || icao.is_some());
            (code(designators.iata), code(designators.icao), operating)
        }
        None => (None, None, None),
    };
    Entry {
        status: FlightStatus {
            flight_iata,
            flight_icao,
            airline,
            flight_date,
            state,
            departure,
            arrival,
            provider: NAME.to_owned(),
            fetched_at,
            operated_by: operating
                .as_ref()
                .and_then(|[iata, icao]| iata.clone().or_else(|| icao.clone())),
            codeshares: Vec::new(),
        },
        operating,
    }
}

/// An upper-cased code or designator.
fn code(field: Option<Lenient<wire::Text>>) -> Option<String> {
    text(field).map(|c| c.to_ascii_uppercase())
}

fn endpoint(place: Option<wire::Place>, which: &'static str) -> Endpoint {
    let Some(place) = place else {
        return Endpoint::default();
    };
    let zone = text(place.timezone).and_then(|name| {
        let zone = TimeZone::get(&name).ok().filter(|zone| !zone.is_unknown());
        if zone.is_none() {
            tracing::debug!(which, timezone = %name, "unknown time zone; leaving the times out");
        }
        zone
    });
    let at = |field: Option<Lenient<wire::Text>>| {
        let zone = zone.as_ref()?;
        let raw = text(field)?;
        let instant = local_instant(&raw, zone);
        if instant.is_none() {
            tracing::debug!(which, time = %raw, "unreadable time; leaving it out");
        }
        instant
    };
    Endpoint {
        iata: code(place.iata),
        icao: code(place.icao),
        scheduled: at(place.scheduled),
        estimated: at(place.estimated),
        actual: at(place.actual),
        delay_minutes: place.delay.and_then(Lenient::valid).map(|m| m.0),
        terminal: text(place.terminal),
        gate: text(place.gate),
    }
}

/// The instant of a wall-clock time in `zone`, ignoring whatever offset
/// the text carries (Aviationstack's `+00:00` is false).
///
/// A time skipped by a daylight-saving change moves forward by the gap;
/// a time that happens twice is taken at its first occurrence.
fn local_instant(raw: &str, zone: &TimeZone) -> Option<Timestamp> {
    let wall: DateTime = strip_offset(raw.trim()).parse().ok()?;
    zone.to_timestamp(wall).ok()
}

/// `2020-02-04T20:25:00+00:00` → `2020-02-04T20:25:00` (also drops `Z`
/// and negative offsets).
fn strip_offset(raw: &str) -> &str {
    let Some(time_at) = raw.find(['T', 't', ' ']) else {
        return raw;
    };
    match raw[time_at..].find(['Z', 'z', '+', '-']) {
        Some(offset_at) => &raw[..time_at + offset_at],
        None => raw,
    }
}

/// `flight_status` as a [`FlightState`]; `scheduled` but late and not yet
/// gone is [`FlightState::Delayed`].
fn state(flight_status: Option<&str>, departure: &Endpoint) -> FlightState {
    let Some(flight_status) = flight_status else {
        return FlightState::Unknown;
    };
    match flight_status.to_ascii_lowercase().as_str() {
        "scheduled" => {
            if is_late(departure.delay_minutes) && departure.actual.is_none() {
                FlightState::Delayed
            } else {
                FlightState::Scheduled
            }
        }
        "active" => FlightState::Active,
        "landed" => FlightState::Landed,
        "cancelled" | "canceled" => FlightState::Cancelled,
        "incident" => FlightState::Incident,
        "diverted" => FlightState::Diverted,
        _ => FlightState::Unknown,
    }
}

/// Folds codeshare entries standing in for a flight already listed into
/// that flight's [`FlightStatus::codeshares`]: when the operating flight is
/// in the reply, or when an earlier codeshare entry of the same operating
/// flight was kept. "The same" means the same designator (IATA or ICAO,
/// either matches), date and departure airport.
fn dedupe_codeshares(entries: Vec<Entry>) -> Vec<FlightStatus> {
    type Key = (String, Option<Date>, Option<String>);
    let key = |designator: &str, status: &FlightStatus| -> Key {
        (
            designator.to_owned(),
            status.flight_date,
            status
                .departure
                .iata
                .clone()
                .or_else(|| status.departure.icao.clone()),
        )
    };
    // Which entry stands for each operated flight: the operating entry
    // itself, else the first marketing entry.
    let mut stands_for: HashMap<Key, usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.operating.is_none() {
            let status = &entry.status;
            for designator in [&status.flight_iata, &status.flight_icao]
                .into_iter()
                .flatten()
            {
                stands_for.entry(key(designator, status)).or_insert(index);
            }
        }
    }
    let mut folded_into: Vec<Option<usize>> = vec![None; entries.len()];
    for (index, entry) in entries.iter().enumerate() {
        let Some(operating) = &entry.operating else {
            continue;
        };
        let keys: Vec<Key> = operating
            .iter()
            .flatten()
            .map(|designator| key(designator, &entry.status))
            .collect();
        match keys.iter().find_map(|k| stands_for.get(k)) {
            Some(&kept) => {
                tracing::debug!(
                    flight = ?entry.status.flight_iata,
                    operated_as = ?operating,
                    "folding a codeshare twin into a listed flight"
                );
                folded_into[index] = Some(kept);
            }
            None => {
                for k in keys {
                    stands_for.insert(k, index);
                }
            }
        }
    }
    let mut statuses: Vec<Option<FlightStatus>> =
        entries.into_iter().map(|e| Some(e.status)).collect();
    for (index, kept) in folded_into.into_iter().enumerate() {
        let Some(kept) = kept else { continue };
        let twin = statuses[index].take().expect("each entry folds once");
        if let (Some(designator), Some(flight)) = (twin.flight_iata, &mut statuses[kept]) {
            if flight.flight_iata.as_ref() != Some(&designator)
                && !flight.codeshares.contains(&designator)
            {
                flight.codeshares.push(designator);
            }
        }
    }
    statuses.into_iter().flatten().collect()
}

fn log_truncation(pagination: Option<Lenient<wire::Pagination>>, received: usize) {
    let Some(pagination) = pagination.and_then(Lenient::valid) else {
        return;
    };
    let total = pagination.total.and_then(Lenient::valid);
    let count = pagination.count.and_then(Lenient::valid);
    if let Some(total) = total {
        if total > u64::try_from(received).unwrap_or(u64::MAX) {
            tracing::debug!(
                total,
                ?count,
                received,
                "Aviationstack has more flights than one page; only the first page is read"
            );
        }
    }
}

// ----- errors ------------------------------------------------------------------------

/// Maps an error reply (`tests/fixtures/status/aviationstack-error-*.json`)
/// by its code, falling back to the HTTP status.
fn error_for(
    status: StatusCode,
    retry_after: Option<Duration>,
    summary: wire::ErrorSummary,
) -> StatusError {
    let wire::ErrorSummary { code, message } = summary;
    let described = match &code {
        Some(code) => format!("{code}: {message}"),
        None => message.clone(),
    };
    let http = status.as_u16();
    match code.as_deref() {
        Some("invalid_access_key" | "missing_access_key" | "inactive_user") => StatusError::Auth(
            format!("Aviationstack rejected the access key ({described}); {KEY_HINT}"),
        ),
        Some("usage_limit_reached") => StatusError::QuotaExhausted(format!(
            "Aviationstack's monthly request allowance is used up ({message}); it renews with the \
             next billing period, or upgrade the plan"
        )),
        Some("rate_limit_reached") => StatusError::RateLimited { retry_after },
        Some("function_access_restricted") => StatusError::Rejected {
            status: http,
            code,
            message: format!(
                "{message}; the Aviationstack subscription plan does not include this endpoint or \
                 parameter (looking flights up by date needs the Basic plan or higher)"
            ),
        },
        Some("https_access_restricted") => StatusError::Rejected {
            status: http,
            code,
            message: format!(
                "{message}; the Aviationstack subscription plan does not allow HTTPS (upgrade it; \
                 the access key would travel in clear over HTTP)"
            ),
        },
        Some("internal_error") if !status.is_client_error() => StatusError::Upstream {
            status: http,
            code,
            message,
        },
        _ => match status {
            StatusCode::UNAUTHORIZED => StatusError::Auth(format!(
                "Aviationstack rejected the access key (HTTP 401: {described}); {KEY_HINT}"
            )),
            // An `error` inside a 2xx: a refused request, not an outage.
            s if s.is_success() => StatusError::Rejected {
                status: http,
                code,
                message,
            },
            _ => error_for_status(status, retry_after, code, message),
        },
    }
}

impl fmt::Debug for Aviationstack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the access key must never reach a log.
        f.debug_struct("Aviationstack")
            .field("base_url", &self.base_url)
            .field("access_key", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StatusProvider for Aviationstack {
    fn name(&self) -> &'static str {
        NAME
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn supports(&self, query: &StatusQuery) -> bool {
        match query {
            StatusQuery::Flight { .. } => true,
            StatusQuery::Filter { state, .. } => *state != Some(FlightState::Unknown),
            StatusQuery::Departures { .. } | StatusQuery::Arrivals { .. } => false,
        }
    }

    async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let span = tracing::debug_span!("aviationstack", ?query);
        self.lookup(query).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stripped_whatever_they_say() {
        assert_eq!(
            strip_offset("2020-02-04T20:25:00+00:00"),
            "2020-02-04T20:25:00"
        );
        assert_eq!(
            strip_offset("2020-02-04T20:25:00-05:00"),
            "2020-02-04T20:25:00"
        );
        assert_eq!(strip_offset("2020-02-04T20:25:00Z"), "2020-02-04T20:25:00");
        assert_eq!(
            strip_offset("2020-02-04T20:25:00.5+00:00"),
            "2020-02-04T20:25:00.5"
        );
        assert_eq!(strip_offset("2020-02-04T20:25:00"), "2020-02-04T20:25:00");
        assert_eq!(strip_offset("2020-02-04"), "2020-02-04");
    }

    #[test]
    fn wall_clock_times_are_placed_in_the_zone() {
        let singapore = TimeZone::get("Asia/Singapore").unwrap();
        assert_eq!(
            local_instant("2020-02-04T20:25:00+00:00", &singapore),
            Some("2020-02-04T12:25:00Z".parse().unwrap())
        );
        assert_eq!(local_instant("20:25", &singapore), None);
        assert_eq!(local_instant("", &singapore), None);
    }

    #[test]
    fn designators_pick_iata_or_icao() {
        assert_eq!(
            designator("lh 400").unwrap(),
            ("flight_iata", "LH400".to_owned())
        );
        assert_eq!(
            designator("DLH400").unwrap(),
            ("flight_icao", "DLH400".to_owned())
        );
        assert_eq!(
            designator("U21234").unwrap(),
            ("flight_iata", "U21234".to_owned())
        );
        assert_eq!(
            designator("9W123").unwrap(),
            ("flight_iata", "9W123".to_owned())
        );
        assert!(designator("").is_err());
        assert!(designator("LH-400").is_err());
        assert!(designator("LH400&access_key=x").is_err());
    }

    #[test]
    fn the_delayed_filter_asks_for_the_15_minute_rule() {
        assert_eq!(
            MIN_DELAY_DEP,
            crate::status::DISRUPTION_DELAY_MINUTES.to_string()
        );
    }

    #[test]
    fn states_map_with_delayed_for_late_scheduled_flights() {
        let mut departure = Endpoint::default();
        assert_eq!(state(Some("scheduled"), &departure), FlightState::Scheduled);
        departure.delay_minutes = Some(0);
        assert_eq!(state(Some("scheduled"), &departure), FlightState::Scheduled);
        departure.delay_minutes = Some(14);
        assert_eq!(state(Some("scheduled"), &departure), FlightState::Scheduled);
        departure.delay_minutes = Some(15);
        assert_eq!(state(Some("Scheduled"), &departure), FlightState::Delayed);
        departure.actual = Some(Timestamp::UNIX_EPOCH);
        assert_eq!(state(Some("scheduled"), &departure), FlightState::Scheduled);
        assert_eq!(state(Some("active"), &departure), FlightState::Active);
        assert_eq!(state(Some("landed"), &departure), FlightState::Landed);
        assert_eq!(state(Some("cancelled"), &departure), FlightState::Cancelled);
        assert_eq!(state(Some("incident"), &departure), FlightState::Incident);
        assert_eq!(state(Some("diverted"), &departure), FlightState::Diverted);
        assert_eq!(state(Some("unknown"), &departure), FlightState::Unknown);
        assert_eq!(state(Some("boarding"), &departure), FlightState::Unknown);
        assert_eq!(state(None, &departure), FlightState::Unknown);
    }
}
