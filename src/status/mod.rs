//! Flight status: one module per provider behind the [`StatusProvider`]
//! trait, all answering with the one standard [`FlightStatus`].
//!
//! Provider failures reuse [`UpstreamError`](crate::upstream::UpstreamError)'s variants (timeouts, throttling,
//! quota, rejected requests, undecodable answers...), so retry decisions
//! ([`crate::upstream::retry`]) and circuit breaking ([`crate::upstream::breaker`]) apply to
//! status providers unchanged.

pub mod alerts;
pub mod aviationstack;
pub mod failover;
pub mod flightaware;
pub mod mock;
pub mod opensky;
pub mod poller;
pub mod snapshots;
pub mod watch;

use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::Timestamp;

pub use crate::upstream::UpstreamError as StatusError;

/// How long a departure may slip before the flight counts as disrupted.
pub const DISRUPTION_DELAY_MINUTES: i64 = 15;

/// Whether a flight this many minutes late counts as late: airlines call a
/// flight within 15 minutes on time, so every provider's mapping (and
/// [`FlightStatus::is_disrupted`]) asks this one question.
pub fn is_late(delay_minutes: Option<i64>) -> bool {
    delay_minutes.is_some_and(|m| m >= DISRUPTION_DELAY_MINUTES)
}

/// Where a flight stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlightState {
    /// Not yet departed, on time as far as is known.
    Scheduled,
    /// In the air (or taxiing).
    Active,
    /// Not yet departed, and late.
    Delayed,
    /// Arrived.
    Landed,
    /// Will not fly.
    Cancelled,
    /// Landed somewhere else than planned.
    Diverted,
    /// An incident was reported.
    Incident,
    /// The provider did not say.
    Unknown,
}

/// One end of a flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// IATA airport code (`FRA`).
    pub iata: Option<String>,
    /// ICAO airport code (`EDDF`).
    pub icao: Option<String>,
    /// Scheduled time, as a real instant.
    pub scheduled: Option<Timestamp>,
    /// Estimated time, as a real instant.
    pub estimated: Option<Timestamp>,
    /// Actual time, as a real instant.
    pub actual: Option<Timestamp>,
    /// Minutes late (negative: early), when known.
    pub delay_minutes: Option<i64>,
    /// Terminal.
    pub terminal: Option<String>,
    /// Gate.
    pub gate: Option<String>,
}

/// The standard status of one flight, whatever the provider.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlightStatus {
    /// IATA flight designator (`LH400`).
    pub flight_iata: Option<String>,
    /// ICAO flight designator (`DLH400`).
    pub flight_icao: Option<String>,
    /// Airline name or code.
    pub airline: Option<String>,
    /// The flight's date (local departure date), when known.
    pub flight_date: Option<Date>,
    /// Where it stands.
    pub state: FlightState,
    /// Departure airport and times.
    pub departure: Endpoint,
    /// Arrival airport and times.
    pub arrival: Endpoint,
    /// Which provider answered.
    pub provider: String,
    /// When the provider was asked.
    pub fetched_at: Timestamp,
    /// For a codeshare's marketing designator: the operating flight (IATA,
    /// else ICAO designator). `None` for the operating flight itself, or
    /// when the provider did not say.
    #[serde(default)]
    pub operated_by: Option<String>,
    /// Other designators the same flight is sold under (IATA, upper case),
    /// as far as the provider said; each gets its own snapshot.
    #[serde(default)]
    pub codeshares: Vec<String>,
}

impl FlightStatus {
    /// Delayed (by at least [`DISRUPTION_DELAY_MINUTES`]), cancelled,
    /// diverted or in an incident.
    pub fn is_disrupted(&self) -> bool {
        matches!(
            self.state,
            FlightState::Delayed
                | FlightState::Cancelled
                | FlightState::Diverted
                | FlightState::Incident
        ) || is_late(self.departure.delay_minutes.or(self.arrival.delay_minutes))
    }
}

/// What to look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusQuery {
    /// One flight by designator (`LH400`), optionally on a date.
    Flight {
        /// IATA (or ICAO) designator.
        ident: String,
        /// The flight date, local to the departure airport.
        date: Option<Date>,
    },
    /// Flights matching filters (Aviationstack's style).
    Filter {
        /// Departure airport, IATA.
        dep_iata: Option<String>,
        /// Arrival airport, IATA.
        arr_iata: Option<String>,
        /// Only flights in this state.
        state: Option<FlightState>,
        /// At most this many.
        limit: usize,
    },
    /// Departures from an airport within a time window (OpenSky's style).
    Departures {
        /// Airport, ICAO (`EDDF`).
        airport_icao: String,
        /// Window start.
        begin: Timestamp,
        /// Window end.
        end: Timestamp,
    },
    /// Arrivals at an airport within a time window.
    Arrivals {
        /// Airport, ICAO.
        airport_icao: String,
        /// Window start.
        begin: Timestamp,
        /// Window end.
        end: Timestamp,
    },
}

impl std::fmt::Display for StatusQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flight {
                ident,
                date: Some(d),
            } => write!(f, "flight {ident} on {d}"),
            Self::Flight { ident, date: None } => write!(f, "flight {ident}"),
            Self::Filter {
                dep_iata, arr_iata, ..
            } => write!(
                f,
                "flights {}-{}",
                dep_iata.as_deref().unwrap_or("*"),
                arr_iata.as_deref().unwrap_or("*")
            ),
            Self::Departures { airport_icao, .. } => write!(f, "departures from {airport_icao}"),
            Self::Arrivals { airport_icao, .. } => write!(f, "arrivals at {airport_icao}"),
        }
    }
}

/// A flight-status provider.
#[async_trait]
pub trait StatusProvider: Send + Sync + 'static {
    /// A short lower-case name (`"aviationstack"`).
    fn name(&self) -> &'static str;

    /// Per-request timeout.
    fn timeout(&self) -> Duration;

    /// Whether it can answer this kind of query at all.
    fn supports(&self, query: &StatusQuery) -> bool;

    /// Looks the flights up. An empty list means "none found" (an answer).
    /// A query it does not support is `StatusError::Rejected` with status 0.
    async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError>;
}
