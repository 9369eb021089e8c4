//! `/flights/...`: what the airport collector ([`crate::collector`]) has
//! stored: an airport's arrivals or departures, its average flights per
//! day, its most recent flight. Any valid token may read them.
//!
//! # Which data
//! An airport's **window** is what the collector has covered for it (whole
//! UTC days, both directions complete): flights stored for it outside that
//! window (seen while fetching another airport) are partial and left out of
//! the defaults and the averages. An airport nobody follows and the
//! collector never fetched, but with flights stored (imported, or seen from
//! a followed airport), has the whole UTC days of those flights as its
//! window. Flights are placed in time by `first_seen` (when OpenSky first
//! saw the aircraft), which is what the store orders and filters by.
//!
//! # Not collected yet
//! An airport someone follows that the collector has not covered yet
//! answers **202 Accepted** with `{"state": "collecting", "airport",
//! "message"}` (poll again), never a zero that would read as "no flights",
//! nor partial flights seen from other airports. One nobody follows with
//! nothing stored will never be collected: 404 `not_collected`. Answers
//! with data carry `"state": "ready"`.

use axum::extract::rejection::{PathRejection, QueryRejection};

use super::{bad_path, bad_query};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::airports;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::collector;
use crate::store::{AirportFlight, Direction};

/// Flights per page by default.
pub const DEFAULT_LIMIT: u32 = 100;

/// Most flights per page.
pub const MAX_LIMIT: u32 = 500;

/// Most days an average covers: it counts the window's rows.
pub const MAX_AVERAGE_DAYS: u32 = 31;

/// Rows read per query when counting.
const COUNT_PAGE: u32 = 2000;

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// One stored flight.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlightView {
    /// The transponder's 24-bit address, lower-case hex.
    pub icao24: String,
    /// Callsign (`DLH400`), trimmed.
    pub callsign: Option<String>,
    /// When OpenSky first saw it.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    /// When OpenSky last saw it.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Estimated departure airport (ICAO).
    pub departure_airport: Option<String>,
    /// Estimated arrival airport (ICAO).
    pub arrival_airport: Option<String>,
    /// Horizontal distance to the departure airport where first seen (metres).
    pub departure_horizontal_distance: Option<i64>,
    /// Vertical distance to the departure airport (metres).
    pub departure_vertical_distance: Option<i64>,
    /// Horizontal distance to the arrival airport where last seen (metres).
    pub arrival_horizontal_distance: Option<i64>,
    /// Vertical distance to the arrival airport (metres).
    pub arrival_vertical_distance: Option<i64>,
    /// Other airports that could have been the departure airport.
    pub departure_candidates: Option<i64>,
    /// Other airports that could have been the arrival airport.
    pub arrival_candidates: Option<i64>,
}

impl From<AirportFlight> for FlightView {
    fn from(f: AirportFlight) -> Self {
        Self {
            icao24: f.icao24,
            callsign: f.callsign,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            departure_airport: f.departure_airport,
            arrival_airport: f.arrival_airport,
            departure_horizontal_distance: f.departure_horizontal_distance,
            departure_vertical_distance: f.departure_vertical_distance,
            arrival_horizontal_distance: f.arrival_horizontal_distance,
            arrival_vertical_distance: f.arrival_vertical_distance,
            departure_candidates: f.departure_candidates,
            arrival_candidates: f.arrival_candidates,
        }
    }
}

/// The answer for an airport with no data yet (HTTP 202).
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectingView {
    /// Always `collecting`.
    pub state: &'static str,
    /// The airport (ICAO).
    pub airport: String,
    /// What is happening, for people.
    pub message: String,
}

/// A time window `[from, to)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    /// Start (included).
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End (excluded).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
}

/// A page of an airport's arrivals or departures.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlightPage {
    /// Always `ready`.
    pub state: &'static str,
    /// The airport (ICAO).
    pub airport: String,
    /// `arrivals` or `departures`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The window asked for (by default the airport's whole window).
    pub window: Window,
    /// Flights by `first_seen`, then `icao24`.
    pub flights: Vec<FlightView>,
    /// The page size.
    pub limit: u32,
    /// This page's offset.
    pub offset: u32,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
}

/// Flights counted in a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlightCounts {
    /// Flights arriving at the airport.
    pub arrivals: u64,
    /// Flights departing from it.
    pub departures: u64,
    /// Distinct flights either way (one that left and returned counts once).
    pub total: u64,
}

/// Flights per day, two decimals.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyAverages {
    /// Arrivals per day.
    pub arrivals: f64,
    /// Departures per day.
    pub departures: f64,
    /// Distinct flights per day.
    pub total: f64,
}

/// An averaging window: its bounds and length.
#[derive(Debug, Serialize, ToSchema)]
pub struct AverageWindow {
    /// Start (included).
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// End (excluded).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Its length in days.
    pub days: f64,
}

/// Average flights per day at an airport.
#[derive(Debug, Serialize, ToSchema)]
pub struct AverageView {
    /// Always `ready`.
    pub state: &'static str,
    /// The airport (ICAO).
    pub airport: String,
    /// The last `days` of the airport's window (all of it, up to 31 days,
    /// when `days` is not given).
    pub window: AverageWindow,
    /// `days` as asked, if it was.
    pub requested_days: Option<u32>,
    /// Flights in the window.
    pub counts: FlightCounts,
    /// Flights per day, two decimals.
    pub average_per_day: DailyAverages,
}

/// An airport's most recent flight.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastView {
    /// Always `ready`.
    pub state: &'static str,
    /// The airport (ICAO).
    pub airport: String,
    /// The airport's window.
    pub window: Window,
    /// `arrivals` or `departures`: which way the flight went at the airport.
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
    /// The flight with the latest `first_seen`; `null` when the window
    /// holds no flight at all.
    pub flight: Option<FlightView>,
}

/// `GET /flights/{airport}`'s query. Every value is text, checked here, so
/// a bad one is a JSON 422 naming it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlightsQuery {
    /// `arrivals` or `departures` (required).
    #[serde(rename = "type")]
    #[param(rename = "type", required = true, value_type = String)]
    pub kind: Option<String>,
    /// Start: RFC 3339 (`2026-03-01T06:00:00Z`) or a date (`2026-03-01`,
    /// its 00:00 UTC). Default: the start of the airport's window.
    pub from: Option<String>,
    /// End, excluded: RFC 3339, or a date (the end of that day, so
    /// `from=2026-03-01&to=2026-03-01` is that whole day). Default: the end
    /// of the airport's window.
    pub to: Option<String>,
    /// Flights per page, 1 to 500 (default 100).
    pub limit: Option<String>,
    /// Flights to skip (default 0): the previous page's `next_offset`.
    pub offset: Option<String>,
}

/// `GET /flights/average/{airport}`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AverageQuery {
    /// Average over the last N days of the window, 1 to 31 (default: the
    /// whole window, up to 31 days).
    pub days: Option<String>,
}

/// What is known about an airport.
enum Known {
    /// Its window.
    Ready(Timestamp, Timestamp),
    /// Nothing yet: the answer to send.
    Not(Response),
}

fn midnight(t: Timestamp) -> Timestamp {
    t.to_zoned(TimeZone::UTC)
        .date()
        .to_zoned(TimeZone::UTC)
        .map_or(t, |z| z.timestamp())
}

/// The airport's window, or the collecting / not collected answer.
async fn known(state: &AppState, airport: &str) -> Result<Known, ApiError> {
    if let Some(c) = collector::coverage(&state.store, airport).await? {
        if c.from < c.to {
            return Ok(Known::Ready(c.from, c.to));
        }
    }
    let interested = state
        .store
        .interest_airports()
        .await?
        .iter()
        .any(|a| a == airport);
    if interested {
        // Flights already stored for it (seen from another airport) are
        // partial until the collector has covered it.
        let view = CollectingView {
            state: "collecting",
            airport: airport.to_owned(),
            message: format!(
                "{airport}'s flights are being collected (OpenSky publishes a day's flights \
                 the next day); try again later"
            ),
        };
        return Ok(Known::Not(
            (StatusCode::ACCEPTED, axum::Json(view)).into_response(),
        ));
    }
    if let Some((first, last, _)) = state.store.airport_flight_span(airport).await? {
        let to = midnight(last).checked_add(DAY).unwrap_or(last);
        return Ok(Known::Ready(midnight(first), to));
    }
    Ok(Known::Not(
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_collected",
            format!(
                "no flights are collected for {airport}: nobody follows it; \
                 POST /interests to start"
            ),
        )
        .into_response(),
    ))
}

fn direction(raw: Option<&str>) -> Result<(Direction, &'static str), ApiError> {
    match raw.map(str::trim) {
        Some("arrivals") => Ok((Direction::Arrivals, "arrivals")),
        Some("departures") => Ok((Direction::Departures, "departures")),
        Some(_) => Err(ApiError::invalid_field(
            "type",
            "must be `arrivals` or `departures`",
        )),
        None => Err(ApiError::invalid_field(
            "type",
            "required: `arrivals` or `departures`",
        )),
    }
}

/// An instant from RFC 3339 or a date; a date as `to` means the end of
/// that day.
fn instant(field: &str, raw: &str, end_of_day: bool) -> Result<Timestamp, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(t);
    }
    let day = raw
        .parse::<Date>()
        .ok()
        .and_then(|d| {
            if end_of_day {
                d.tomorrow().ok()
            } else {
                Some(d)
            }
        })
        .and_then(|d| d.to_zoned(TimeZone::UTC).ok());
    day.map(|z| z.timestamp()).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            "must be an RFC 3339 time (2026-03-01T06:00:00Z) or a date (2026-03-01)",
        )
    })
}

fn number(
    field: &str,
    raw: Option<&str>,
    default: u32,
    range: (u32, u32),
) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (range.0..=range.1).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("must be a whole number from {} to {}", range.0, range.1),
            )
        })
}

/// An airport's arrivals or departures in a window, paginated.
#[utoipa::path(
    get,
    path = "/flights/{airport}",
    params(
        ("airport" = String, Path, description = "ICAO (EGLL) or IATA (LHR) code"),
        FlightsQuery,
    ),
    responses(
        (status = 200, description = "OK", body = FlightPage),
        (status = 202, description = "No data yet: the airport is being collected", body = CollectingView),
        (status = 400, description = "Undecodable path or query string", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Nobody follows the airport, so nothing is collected", body = ErrorBody),
        (status = 422, description = "Bad airport, type, from, to, limit or offset", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "flights"
)]
pub async fn list_flights(
    State(state): State<AppState>,
    _caller: Caller,
    airport: Result<Path<String>, PathRejection>,
    query: Result<Query<FlightsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (Path(airport), Query(query)) = (airport.map_err(bad_path)?, query.map_err(bad_query)?);
    let airport = airports::normalise_field("airport", &airport)?;
    let (direction, kind) = direction(query.kind.as_deref())?;
    let from = query
        .from
        .as_deref()
        .map(|raw| instant("from", raw, false))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|raw| instant("to", raw, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(ApiError::invalid_field("to", "must be after `from`"));
        }
    }
    let limit = number(
        "limit",
        query.limit.as_deref(),
        DEFAULT_LIMIT,
        (1, MAX_LIMIT),
    )?;
    let offset = number(
        "offset",
        query.offset.as_deref(),
        0,
        (0, u32::MAX - MAX_LIMIT - 1),
    )?;
    let (window_from, window_to) = match known(&state, &airport).await? {
        Known::Ready(from, to) => (from, to),
        Known::Not(response) => return Ok(response),
    };
    let (from, to) = (from.unwrap_or(window_from), to.unwrap_or(window_to));
    let mut flights = if from < to {
        state
            .store
            .airport_flights(&airport, direction, from, to, offset, limit + 1)
            .await?
    } else {
        Vec::new()
    };
    let next_offset = (flights.len() > limit as usize).then(|| {
        flights.truncate(limit as usize);
        offset + limit
    });
    let page = FlightPage {
        state: "ready",
        airport,
        kind,
        window: Window { from, to },
        flights: flights.into_iter().map(FlightView::from).collect(),
        limit,
        offset,
        next_offset,
    };
    Ok(axum::Json(page).into_response())
}

/// Counts an airport's flights in `[from, to)` one way; also how many of
/// them both left from and arrived at it (counted once in the total).
async fn count(
    state: &AppState,
    airport: &str,
    direction: Direction,
    from: Timestamp,
    to: Timestamp,
) -> Result<(u64, u64), ApiError> {
    let (mut all, mut round_trips, mut offset) = (0u64, 0u64, 0u32);
    loop {
        let page = state
            .store
            .airport_flights(airport, direction, from, to, offset, COUNT_PAGE)
            .await?;
        all += page.len() as u64;
        round_trips += page
            .iter()
            .filter(|f| {
                f.departure_airport.as_deref() == Some(airport)
                    && f.arrival_airport.as_deref() == Some(airport)
            })
            .count() as u64;
        if page.len() < COUNT_PAGE as usize {
            return Ok((all, round_trips));
        }
        offset = offset.saturating_add(COUNT_PAGE);
    }
}

fn per_day(count: u64, days: f64) -> f64 {
    (count as f64 / days * 100.0).round() / 100.0
}

/// Average flights per day over the airport's window (or its last N days).
#[utoipa::path(
    get,
    path = "/flights/average/{airport}",
    params(
        ("airport" = String, Path, description = "ICAO (EGLL) or IATA (LHR) code"),
        AverageQuery,
    ),
    responses(
        (status = 200, description = "OK", body = AverageView),
        (status = 202, description = "No data yet: the airport is being collected", body = CollectingView),
        (status = 400, description = "Undecodable path or query string", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Nobody follows the airport, so nothing is collected", body = ErrorBody),
        (status = 422, description = "Bad airport or days", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "flights"
)]
pub async fn average_flights(
    State(state): State<AppState>,
    _caller: Caller,
    airport: Result<Path<String>, PathRejection>,
    query: Result<Query<AverageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (Path(airport), Query(query)) = (airport.map_err(bad_path)?, query.map_err(bad_query)?);
    let airport = airports::normalise_field("airport", &airport)?;
    let requested = query
        .days
        .as_deref()
        .map(|raw| number("days", Some(raw), 1, (1, MAX_AVERAGE_DAYS)))
        .transpose()?;
    let (window_from, to) = match known(&state, &airport).await? {
        Known::Ready(from, to) => (from, to),
        Known::Not(response) => return Ok(response),
    };
    let span = DAY * i32::try_from(requested.unwrap_or(MAX_AVERAGE_DAYS)).unwrap_or(31);
    let from = to
        .checked_sub(span)
        .map_or(window_from, |f| f.max(window_from));
    let days = to.duration_since(from).as_secs_f64() / DAY.as_secs_f64();
    let (arrivals, arrival_round_trips) =
        count(&state, &airport, Direction::Arrivals, from, to).await?;
    let (departures, _) = count(&state, &airport, Direction::Departures, from, to).await?;
    let total = arrivals + departures - arrival_round_trips;
    let view = AverageView {
        state: "ready",
        airport,
        window: AverageWindow { from, to, days },
        requested_days: requested,
        counts: FlightCounts {
            arrivals,
            departures,
            total,
        },
        average_per_day: DailyAverages {
            arrivals: per_day(arrivals, days),
            departures: per_day(departures, days),
            total: per_day(total, days),
        },
    };
    Ok(axum::Json(view).into_response())
}

/// The airport's most recent flight: the latest `first_seen`, either way.
#[utoipa::path(
    get,
    path = "/flights/last/{airport}",
    params(("airport" = String, Path, description = "ICAO (EGLL) or IATA (LHR) code")),
    responses(
        (status = 200, description = "OK", body = LastView),
        (status = 202, description = "No data yet: the airport is being collected", body = CollectingView),
        (status = 400, description = "Undecodable path or query string", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Nobody follows the airport, so nothing is collected", body = ErrorBody),
        (status = 422, description = "Bad airport", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "flights"
)]
pub async fn last_flight(
    State(state): State<AppState>,
    _caller: Caller,
    airport: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(airport) = airport.map_err(bad_path)?;
    let airport = airports::normalise_field("airport", &airport)?;
    let (from, to) = match known(&state, &airport).await? {
        Known::Ready(from, to) => (from, to),
        Known::Not(response) => return Ok(response),
    };
    let mut latest: Option<(AirportFlight, &'static str)> = None;
    if let Some((_, last, _)) = state.store.airport_flight_span(&airport).await? {
        // Every flight seen at that very instant, either way; the one last
        // seen latest wins.
        let until = last
            .checked_add(SignedDuration::from_secs(1))
            .unwrap_or(last);
        for (direction, kind) in [
            (Direction::Arrivals, "arrivals"),
            (Direction::Departures, "departures"),
        ] {
            let found = state
                .store
                .airport_flights(&airport, direction, last, until, 0, 100)
                .await?;
            for flight in found {
                let later = latest.as_ref().is_none_or(|(best, _)| {
                    (flight.first_seen, flight.last_seen) > (best.first_seen, best.last_seen)
                });
                if later {
                    latest = Some((flight, kind));
                }
            }
        }
    }
    let view = LastView {
        state: "ready",
        airport,
        window: Window { from, to },
        kind: latest.as_ref().map(|(_, kind)| *kind),
        flight: latest.map(|(flight, _)| flight.into()),
    };
    Ok(axum::Json(view).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_dates_and_a_date_as_end_is_its_whole_day() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            instant("from", "2026-03-01T06:00:00+01:00", false).unwrap(),
            at("2026-03-01T05:00:00Z")
        );
        assert_eq!(
            instant("from", "2026-03-01", false).unwrap(),
            at("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            instant("to", "2026-03-01", true).unwrap(),
            at("2026-03-02T00:00:00Z")
        );
        let error = instant("to", "yesterday", true).unwrap_err();
        assert_eq!(error.body.fields[0].field, "to");
    }

    #[test]
    fn averages_round_to_two_decimals() {
        assert_eq!(per_day(7, 3.0), 2.33);
        assert_eq!(per_day(0, 2.0), 0.0);
    }
}
