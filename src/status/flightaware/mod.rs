//! FlightAware AeroAPI v4, `GET /flights/{ident}`.
//!
//! | | |
//! |---|---|
//! | needs | an AeroAPI key (`FLIGHTAWARE_API_KEY`, from flightaware.com/aeroapi/portal), sent as the `x-apikey` header |
//! | costs | billed per query (per *result set*: one page is one); the free tier is a $5 monthly credit |
//! | answers | [`StatusQuery::Flight`] only: one designator, optionally on a date |
//! | limits | per tier, in result sets: Personal 10 a minute, Standard 5 a second, Premium 100 a second. The spec declares no 429 and no rate-limit headers, so pace on the client side |
//!
//! One lookup is one request for one page: `GET {base}/flights/{IDENT}?ident_type=designator`,
//! plus `start` and `end` for a date. Without a date AeroAPI answers with
//! about the last 11 days through the next 2, newest first; that order is
//! kept. Further pages (`links.next`) are not fetched: each costs a query,
//! and one page holds well over the two weeks of a daily flight.
//!
//! # What comes back, and the choices made
//!
//! - **Identifiers.** The designator is sent as given (upper-cased, spaces
//!   dropped). FlightAware prefers ICAO idents (`UAL1`) but accepts IATA
//!   ones (`UA1`); no translation table is kept here.
//! - **Dates.** [`StatusQuery::Flight::date`] is the *local* departure date,
//!   while AeroAPI compares `start`/`end` with the UTC scheduled departure.
//!   So the window asked for runs from the day before to the day after
//!   (UTC), clipped to what AeroAPI serves (10 days back to 2 days ahead,
//!   less a few minutes' margin), and flights are then kept when their
//!   scheduled departure, in the origin's own time zone, falls on the date.
//!   When the origin's zone is missing or unknown the UTC date is used. A
//!   date wholly outside AeroAPI's range is [`StatusError::Rejected`] with
//!   status 0, without asking.
//! - **Times** are AeroAPI's true UTC instants. Departure times are the
//!   gate times (`*_out`), falling back to the runway times (`*_off`);
//!   arrival times are `*_in`, falling back to `*_on`. `flight_date` is the
//!   scheduled departure's date in the origin's zone, `None` without one.
//! - **Delays** are AeroAPI's `departure_delay`/`arrival_delay`, seconds,
//!   truncated to whole minutes (negative: early).
//! - **State** comes from the booleans and timestamps first, as the spec
//!   advises, and from the free-text `status` only when they say nothing:
//!   `cancelled` → Cancelled; `diverted` → Diverted; an actual arrival
//!   (`actual_in`/`actual_on`) → Landed; an actual departure
//!   (`actual_out`/`actual_off`) → Active; otherwise a status text naming
//!   a cancellation, diversion, arrival or departure; otherwise, not yet
//!   departed: Delayed when `departure_delay` is at least
//!   [`DISRUPTION_DELAY_MINUTES`](super::DISRUPTION_DELAY_MINUTES) (or,
//!   without a delay, when the text says "Delayed"), else Scheduled when there is a schedule or the
//!   text says "Scheduled", else Unknown. "En Route / Delayed" is therefore
//!   Active, with its delay in minutes.
//! - **Airline** is the operator's IATA code, else its ICAO code.
//! - **Codeshares.** A record is the operating flight; `codeshares_iata`
//!   (upper-cased) becomes [`FlightStatus::codeshares`].
//!
//! # Errors
//!
//! Errors are `{title, reason, detail, status}` (`reason` becomes the
//! code). 401 and 403 are `Auth` naming `FLIGHTAWARE_API_KEY`; 429 is
//! `RateLimited` (no `Retry-After` is documented; one is honoured if sent);
//! other 4xx are `Rejected`; 5xx are `Upstream`. The key never appears in
//! an error or in `Debug`. Nothing is retried here.
//!
//! The replies it reads are in `tests/fixtures/status/flightaware-*.json`;
//! the API is specified at
//! <https://flightaware.com/commercial/aeroapi/resources/aeroapi-openapi.yml>.

mod wire;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::{
    is_late, Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery,
};
use crate::upstream::reply::{error_for_status, excerpt, Reply};

use wire::{text, Lenient};

/// AeroAPI v4's base URL, the default.
pub const DEFAULT_BASE_URL: &str = "https://aeroapi.flightaware.com/aeroapi";

/// A sensible per-request timeout: AeroAPI answers from its own database,
/// so a reply slower than this means trouble.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name this provider goes by in logs and reports.
const NAME: &str = "flightaware";

/// The header carrying the API key.
const API_KEY_HEADER: &str = "x-apikey";

/// Added to every message about a rejected key.
const KEY_HINT: &str = "check FLIGHTAWARE_API_KEY";

/// How far back `start` may reach: "no earlier than 10 days in the past".
const HISTORY: SignedDuration = SignedDuration::from_hours(10 * 24);

/// How far ahead `end` may reach: 2 days in the future.
const HORIZON: SignedDuration = SignedDuration::from_hours(2 * 24);

/// Kept clear of AeroAPI's range limits, for clock skew and request latency.
const EDGE_MARGIN: SignedDuration = SignedDuration::from_mins(5);

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// How to reach FlightAware AeroAPI.
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct FlightAwareConfig {
    /// Base URL, e.g. [`DEFAULT_BASE_URL`] or a local fake.
    pub base_url: String,
    /// The AeroAPI key, sent as the `x-apikey` header.
    pub api_key: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl FlightAwareConfig {
    /// The production API with [`DEFAULT_TIMEOUT`].
    pub fn new(api_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The FlightAware AeroAPI flight-status provider.
///
/// `Debug` never shows the API key.
pub struct FlightAware {
    client: reqwest::Client,
    config: FlightAwareConfig,
    /// `config.base_url` without a trailing slash.
    base_url: String,
}

impl FlightAware {
    /// A provider using the shared `client`.
    pub fn new(client: reqwest::Client, config: FlightAwareConfig) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        Self {
            client,
            base_url,
            config,
        }
    }

    async fn lookup(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let StatusQuery::Flight { ident, date } = query else {
            return Err(unsupported(
                "FlightAware AeroAPI looks flights up by designator only; \
                 airport filters and windows are not supported here",
            ));
        };
        let ident = designator(ident)?;
        let now = Timestamp::now();
        let mut params: Vec<(&str, String)> = vec![("ident_type", "designator".to_owned())];
        if let Some(date) = date {
            let (start, end) = window(*date, now)?;
            params.push(("start", start.to_string()));
            params.push(("end", end.to_string()));
        }

        let mut key = HeaderValue::from_str(self.config.api_key.expose_secret()).map_err(|_| {
            StatusError::Auth(format!(
                "the FlightAware API key cannot be sent as a header; {KEY_HINT}"
            ))
        })?;
        key.set_sensitive(true);
        let url = format!("{}/flights/{ident}", self.base_url);
        let request = self
            .client
            .get(&url)
            .query(&params)
            .header(API_KEY_HEADER, key)
            .header(ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let secrets = self.secrets();
        let reply = Reply::send(request, self.config.timeout, &secrets).await?;
        if !reply.status.is_success() {
            let summary = wire::summarize_error(&reply.body, &secrets);
            return Err(error_for(reply.status, reply.retry_after(), summary));
        }

        let parsed: wire::FlightsReply = reply.json("flights reply", &secrets)?;
        let Some(flights) = parsed.flights else {
            return Err(StatusError::Decode(format!(
                "flights reply has no `flights`: {}",
                excerpt(&reply.body, &secrets)
            )));
        };
        if parsed
            .links
            .and_then(Lenient::valid)
            .and_then(|links| text(links.next))
            .is_some()
        {
            tracing::debug!("AeroAPI has more pages; only the first is read");
        }

        let mut statuses = Vec::new();
        for (index, flight) in flights.unwrap_or_default().into_iter().enumerate() {
            match flight.valid() {
                Some(flight) => statuses.push(status(flight, now)),
                None => tracing::warn!(index, "skipping a flights entry that is not an object"),
            }
        }
        if let Some(date) = date {
            statuses.retain(|status| departs_on(status, *date));
        }
        Ok(statuses)
    }

    /// What must never be quoted from a reply: the API key.
    fn secrets(&self) -> [&str; 1] {
        [self.config.api_key.expose_secret()]
    }
}

// ----- the request -----------------------------------------------------------------

/// The designator upper-cased, spaces dropped; letters and digits only, so
/// it is safe as a path segment.
fn designator(ident: &str) -> Result<String, StatusError> {
    let ident: String = ident
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if (3..=10).contains(&ident.len()) && ident.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(ident)
    } else {
        Err(StatusError::Rejected {
            status: 0,
            code: None,
            message: format!(
                "`{}` is not a flight designator such as UAL1 or UA1",
                ident.chars().take(20).collect::<String>()
            ),
        })
    }
}

/// `start` and `end` (whole seconds, UTC) for flights departing on the
/// local `date` anywhere: the day before through the day after, clipped to
/// AeroAPI's range around `now`.
fn window(date: Date, now: Timestamp) -> Result<(Timestamp, Timestamp), StatusError> {
    let outside = || {
        unsupported(&format!(
            "FlightAware AeroAPI only has flights from 10 days ago to 2 days ahead; {date} is outside that"
        ))
    };
    let midnight = date
        .to_zoned(TimeZone::UTC)
        .map_err(|_| outside())?
        .timestamp();
    let start = midnight.checked_sub(DAY).map_err(|_| outside())?;
    let end = midnight.checked_add(DAY * 2).map_err(|_| outside())?;
    let earliest = now
        .checked_sub(HISTORY)
        .and_then(|t| t.checked_add(EDGE_MARGIN))
        .map_err(|_| outside())?;
    let latest = now
        .checked_add(HORIZON)
        .and_then(|t| t.checked_sub(EDGE_MARGIN))
        .map_err(|_| outside())?;
    let start = whole_seconds(start.max(earliest), true);
    let end = whole_seconds(end.min(latest), false);
    if start >= end {
        return Err(outside());
    }
    Ok((start, end))
}

/// `at` without its fraction of a second, rounded up or down.
fn whole_seconds(at: Timestamp, up: bool) -> Timestamp {
    let second = at.as_second();
    let second = if up && at.subsec_nanosecond() > 0 {
        second + 1
    } else {
        second
    };
    Timestamp::from_second(second).unwrap_or(at)
}

/// A query this provider cannot answer at all.
fn unsupported(message: &str) -> StatusError {
    StatusError::Rejected {
        status: 0,
        code: None,
        message: message.to_owned(),
    }
}

// ----- the answer ---------------------------------------------------------------------

fn status(flight: wire::Flight, fetched_at: Timestamp) -> FlightStatus {
    let at = |field| instant(text(field));
    let origin = flight.origin.and_then(Lenient::valid);
    let destination = flight.destination.and_then(Lenient::valid);
    let origin_zone = origin
        .as_ref()
        .and_then(|o| o.timezone.as_ref())
        .and_then(|z| match z {
            Lenient::Valid(wire::Text(name)) => TimeZone::get(name.trim()).ok(),
            Lenient::Invalid(_) => None,
        })
        .filter(|zone| !zone.is_unknown());
    let (dep_iata, dep_icao) = airport(origin);
    let (arr_iata, arr_icao) = airport(destination);

    let departure_delay = flight.departure_delay.and_then(Lenient::valid).map(|s| s.0);
    let arrival_delay = flight.arrival_delay.and_then(Lenient::valid).map(|s| s.0);
    let departure = Endpoint {
        iata: dep_iata,
        icao: dep_icao,
        scheduled: at(flight.scheduled_out).or_else(|| at(flight.scheduled_off)),
        estimated: at(flight.estimated_out).or_else(|| at(flight.estimated_off)),
        actual: at(flight.actual_out).or_else(|| at(flight.actual_off)),
        delay_minutes: departure_delay.map(|s| s / 60),
        terminal: text(flight.terminal_origin),
        gate: text(flight.gate_origin),
    };
    let arrival_actual = at(flight.actual_in).or_else(|| at(flight.actual_on));
    let arrival = Endpoint {
        iata: arr_iata,
        icao: arr_icao,
        scheduled: at(flight.scheduled_in).or_else(|| at(flight.scheduled_on)),
        estimated: at(flight.estimated_in).or_else(|| at(flight.estimated_on)),
        actual: arrival_actual,
        delay_minutes: arrival_delay.map(|s| s / 60),
        terminal: text(flight.terminal_destination),
        gate: text(flight.gate_destination),
    };
    let flags = Flags {
        cancelled: flight.cancelled.and_then(Lenient::valid).unwrap_or(false),
        diverted: flight.diverted.and_then(Lenient::valid).unwrap_or(false),
        departed: departure.actual.is_some(),
        arrived: arrival.actual.is_some(),
        scheduled: departure.scheduled.is_some(),
        departure_delay,
    };
    let state = state(&flags, text(flight.status).as_deref());
    let flight_date = departure
        .scheduled
        .zip(origin_zone)
        .map(|(at, zone)| zone.to_datetime(at).date());

    let flight_iata = code(flight.ident_iata);
    let mut flight_icao = code(flight.ident_icao);
    if flight_iata.is_none() && flight_icao.is_none() {
        // `ident` is normally the ICAO ident.
        flight_icao = code(flight.ident);
    }
    let mut codeshares: Vec<String> = Vec::new();
    let listed = flight.codeshares_iata.and_then(Lenient::valid);
    for designator in listed.into_iter().flatten().filter_map(|d| code(Some(d))) {
        if flight_iata.as_ref() != Some(&designator) && !codeshares.contains(&designator) {
            codeshares.push(designator);
        }
    }
    let airline = code(flight.operator_iata)
        .or_else(|| code(flight.operator_icao))
        .or_else(|| code(flight.operator));
    FlightStatus {
        flight_iata,
        flight_icao,
        airline,
        flight_date,
        state,
        departure,
        arrival,
        provider: NAME.to_owned(),
        fetched_at,
        // AeroAPI's record is always the operating flight.
        operated_by: None,
        codeshares,
    }
}

/// An instant from an ISO 8601 UTC text; an unreadable one is left out.
fn instant(raw: Option<String>) -> Option<Timestamp> {
    let raw = raw?;
    let parsed = raw.parse::<Timestamp>().ok();
    if parsed.is_none() {
        tracing::debug!(time = %raw, "unreadable time; leaving it out");
    }
    parsed
}

/// An upper-cased code or designator.
fn code(field: Option<Lenient<wire::Text>>) -> Option<String> {
    text(field).map(|c| c.to_ascii_uppercase())
}

/// `(iata, icao)` of an airport.
fn airport(airport: Option<wire::Airport>) -> (Option<String>, Option<String>) {
    match airport {
        Some(airport) => (code(airport.code_iata), code(airport.code_icao)),
        None => (None, None),
    }
}

/// What the booleans and timestamps say about a flight.
struct Flags {
    cancelled: bool,
    diverted: bool,
    departed: bool,
    arrived: bool,
    scheduled: bool,
    departure_delay: Option<i64>,
}

/// The state: booleans and timestamps first, the status text only when
/// they say nothing (it is not an enumerated field).
fn state(flags: &Flags, status: Option<&str>) -> FlightState {
    let status = status.unwrap_or_default().to_ascii_lowercase();
    let says = |word: &str| status.contains(word);
    if flags.cancelled {
        return FlightState::Cancelled;
    }
    if flags.diverted {
        return FlightState::Diverted;
    }
    if flags.arrived {
        return FlightState::Landed;
    }
    if flags.departed {
        return FlightState::Active;
    }
    if says("cancel") {
        FlightState::Cancelled
    } else if says("divert") {
        FlightState::Diverted
    } else if says("arrived") || says("landed") {
        FlightState::Landed
    } else if says("en route") || says("departed") || says("taxiing") {
        FlightState::Active
    } else if match flags.departure_delay {
        // AeroAPI's text says "Delayed" for any slip; the minutes decide.
        Some(seconds) => is_late(Some(seconds / 60)),
        None => says("delayed"),
    } {
        FlightState::Delayed
    } else if flags.scheduled || says("scheduled") {
        FlightState::Scheduled
    } else {
        FlightState::Unknown
    }
}

/// Whether `status` departs on the local `date`: by `flight_date` (the
/// origin's zone), else by the UTC date of the scheduled departure. A
/// flight without a scheduled departure cannot be placed and is dropped.
fn departs_on(status: &FlightStatus, date: Date) -> bool {
    let local = status.flight_date.or_else(|| {
        status
            .departure
            .scheduled
            .map(|at| TimeZone::UTC.to_datetime(at).date())
    });
    local == Some(date)
}

// ----- errors ------------------------------------------------------------------------

/// Maps a non-2xx reply (`tests/fixtures/status/flightaware-error-*.json`).
fn error_for(
    status: StatusCode,
    retry_after: Option<Duration>,
    summary: wire::ErrorSummary,
) -> StatusError {
    let wire::ErrorSummary { code, message } = summary;
    let http = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StatusError::Auth(format!(
            "FlightAware rejected the API key (HTTP {http}: {message}); {KEY_HINT}"
        )),
        _ => error_for_status(status, retry_after, code, message),
    }
}

impl fmt::Debug for FlightAware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the API key must never reach a log.
        f.debug_struct("FlightAware")
            .field("base_url", &self.base_url)
            .field("api_key", &"[REDACTED]")
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StatusProvider for FlightAware {
    fn name(&self) -> &'static str {
        NAME
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn supports(&self, query: &StatusQuery) -> bool {
        matches!(query, StatusQuery::Flight { .. })
    }

    async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let span = tracing::debug_span!("flightaware", ?query);
        self.lookup(query).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_spans_the_day_either_side() {
        let now = ts("2026-11-24T09:05:08.5Z");
        let date: Date = "2026-11-20".parse().unwrap();
        assert_eq!(
            window(date, now).unwrap(),
            (ts("2026-11-19T00:00:00Z"), ts("2026-11-22T00:00:00Z"))
        );
    }

    #[test]
    fn the_window_is_clipped_to_aeroapis_range() {
        let now = ts("2026-11-24T09:05:08.5Z");
        // Ten days back: the start is clipped, with the margin, rounded up.
        let (start, end) = window("2026-11-14".parse().unwrap(), now).unwrap();
        assert_eq!(start, ts("2026-11-14T09:10:09Z"));
        assert_eq!(end, ts("2026-11-16T00:00:00Z"));
        // Two days ahead: the end is clipped, rounded down.
        let (start, end) = window("2026-11-26".parse().unwrap(), now).unwrap();
        assert_eq!(start, ts("2026-11-25T00:00:00Z"));
        assert_eq!(end, ts("2026-11-26T09:00:08Z"));
        // Out of range altogether.
        for date in ["2026-11-12", "2026-11-28", "2025-01-01"] {
            let error = window(date.parse().unwrap(), now).unwrap_err();
            assert!(
                matches!(error, StatusError::Rejected { status: 0, .. }),
                "{error:?}"
            );
        }
    }

    fn flags() -> Flags {
        Flags {
            cancelled: false,
            diverted: false,
            departed: false,
            arrived: false,
            scheduled: true,
            departure_delay: Some(0),
        }
    }

    #[test]
    fn booleans_and_timestamps_win_over_the_text() {
        let f = Flags {
            cancelled: true,
            ..flags()
        };
        assert_eq!(state(&f, Some("Scheduled")), FlightState::Cancelled);
        let f = Flags {
            diverted: true,
            arrived: true,
            ..flags()
        };
        assert_eq!(state(&f, Some("Arrived")), FlightState::Diverted);
        let f = Flags {
            departed: true,
            departure_delay: Some(2820),
            ..flags()
        };
        assert_eq!(state(&f, Some("En Route / Delayed")), FlightState::Active);
        let f = Flags {
            departed: true,
            arrived: true,
            ..flags()
        };
        assert_eq!(state(&f, Some("En Route")), FlightState::Landed);
    }

    #[test]
    fn the_text_decides_only_when_the_flags_are_silent() {
        assert_eq!(state(&flags(), Some("Scheduled")), FlightState::Scheduled);
        assert_eq!(state(&flags(), None), FlightState::Scheduled);
        assert_eq!(state(&flags(), Some("Cancelled")), FlightState::Cancelled);
        assert_eq!(state(&flags(), Some("Diverted")), FlightState::Diverted);
        assert_eq!(
            state(&flags(), Some("Arrived / Gate Arrival")),
            FlightState::Landed
        );
        assert_eq!(state(&flags(), Some("En Route")), FlightState::Active);
        // "Delayed" with a known delay under 15 minutes is on time.
        assert_eq!(state(&flags(), Some("Delayed")), FlightState::Scheduled);
        let unknown_delay = Flags {
            departure_delay: None,
            ..flags()
        };
        assert_eq!(state(&unknown_delay, Some("Delayed")), FlightState::Delayed);
        let late = Flags {
            departure_delay: Some(15 * 60),
            ..flags()
        };
        assert_eq!(state(&late, Some("Scheduled")), FlightState::Delayed);
        let barely = Flags {
            departure_delay: Some(15 * 60 - 1),
            ..flags()
        };
        assert_eq!(
            state(&barely, Some("Scheduled / Delayed")),
            FlightState::Scheduled
        );
        let nothing = Flags {
            scheduled: false,
            departure_delay: None,
            ..flags()
        };
        assert_eq!(state(&nothing, None), FlightState::Unknown);
    }

    #[test]
    fn designators_are_normalised_and_checked() {
        assert_eq!(designator(" ual 1 ").unwrap(), "UAL1");
        assert!(designator("UA").is_err());
        assert!(designator("UAL1/../x").is_err());
        assert!(designator("UAL1?x=1").is_err());
    }
}
