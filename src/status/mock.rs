//! A scripted, offline flight-status provider for development and tests.
//!
//! [`MockStatus`] answers every [`StatusQuery`] from data it makes up, with
//! no network and no keys:
//!
//! - **Unscripted flights** are on time, derived from a stable hash of the
//!   designator (as [`crate::fare::demo`] does for prices): a known airline
//!   (`LH`/`DLH`, `BA`/`BAW`, `SQ`/`SIA`...) flies from its hub, the
//!   destination, departure time, terminal and gate come from the hash, and
//!   the block time from the great-circle distance. The route, time and
//!   terminal are the same every day (as a real flight number's are); the
//!   gate changes with the date. `LH400`, `DLH400` and `lh 0400` are one
//!   flight.
//! - **Scripted flights** follow a [`Scenario`], or a timed sequence of them
//!   ([`MockStatus::script`]) evaluated against tokio's clock since the mock
//!   was created, so a test under `tokio::time::pause()` can `advance` the
//!   clock and watch a flight go from on time to delayed to landed.
//! - **Low-signal flights** ([`MockStatus::low_signal`]) answer `Scheduled`
//!   with no times, no delay and no gate: the answer a failover should not
//!   trust.
//! - **Failures** are injected with [`MockStatus::fail_with`] (every call)
//!   or [`MockStatus::fail_next`] (the next few), and **latency** with
//!   [`MockStatus::with_latency`] (a tokio sleep, so paused-clock tests
//!   take no real time).
//!
//! Times are real instants. Each airport has a fixed UTC offset (its
//! standard time, no daylight saving), so answers do not depend on the
//! machine's time-zone database.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

use super::{
    is_late, Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery,
};

/// The name the mock answers with unless [`MockStatus::named`] says otherwise.
pub const DEFAULT_NAME: &str = "mock";

/// The timeout the mock reports unless [`MockStatus::with_timeout`] says
/// otherwise: ten seconds, like a quick real provider.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What happens to a scripted flight.
///
/// In a timed script ([`MockStatus::script`]) the steps build on each other:
/// a delay stays until an [`Scenario::OnTime`] clears it (so a flight
/// delayed 45 minutes departs and lands 45 minutes late), and a gate change
/// holds from then on; before it, the flight shows the change's `from` gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Not departed, on time: `Scheduled`, delay 0, estimates equal to the schedule.
    OnTime,
    /// Not departed, running late: estimates and `delay_minutes` moved by
    /// `minutes`. The state is `Delayed` from
    /// [`DISRUPTION_DELAY_MINUTES`](super::DISRUPTION_DELAY_MINUTES) on; a smaller slip stays `Scheduled`
    /// (with its delay), as airlines count a flight within 15 minutes as on time.
    Delayed {
        /// Minutes late.
        minutes: u32,
    },
    /// Will not fly: `Cancelled`, no estimates.
    Cancelled,
    /// Landed elsewhere: `Diverted`, with the arrival endpoint describing
    /// the airport it landed at (no schedule there).
    Diverted {
        /// IATA code of the airport it landed at.
        to_iata: String,
    },
    /// Not departed, on time, leaving from gate `to` instead of `from`.
    GateChange {
        /// The gate shown before the change (in a timed script).
        from: String,
        /// The gate shown from the change on.
        to: String,
    },
    /// In the air: `Active`, with the departure's actual time.
    Departed,
    /// Arrived: `Landed`, with both actual times and an arrival gate.
    Landed,
}

/// The scripted, offline status provider; see the module docs.
#[derive(Debug)]
pub struct MockStatus {
    name: &'static str,
    timeout: Duration,
    latency: Duration,
    /// Scripts are evaluated against tokio's clock since this instant.
    created: tokio::time::Instant,
    scripts: Vec<Scripted>,
    /// Canonical keys of the low-signal flights.
    low_signal: Vec<String>,
    failing: Option<StatusError>,
    queued_failures: Mutex<VecDeque<StatusError>>,
    calls: AtomicUsize,
}

#[derive(Debug)]
struct Scripted {
    flight: Designator,
    date: Date,
    /// Sorted by time.
    steps: Vec<(Duration, Scenario)>,
}

impl Default for MockStatus {
    fn default() -> Self {
        Self::new()
    }
}

impl MockStatus {
    /// A mock with no scripts, no failures and no latency. Its script clock
    /// starts now (tokio's clock: create it inside the runtime whose clock
    /// a test pauses).
    pub fn new() -> Self {
        Self {
            name: DEFAULT_NAME,
            timeout: DEFAULT_TIMEOUT,
            latency: Duration::ZERO,
            created: tokio::time::Instant::now(),
            scripts: Vec::new(),
            low_signal: Vec::new(),
            failing: None,
            queued_failures: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
        }
    }

    /// Answers as `name` (in [`StatusProvider::name`] and
    /// [`FlightStatus::provider`]), e.g. to stand in for two providers.
    #[must_use]
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Reports `timeout` from [`StatusProvider::timeout`]. The mock itself
    /// never times out; callers that enforce the timeout do.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Scripts `ident` on `date` (the local departure date) to `scenario`,
    /// replacing any earlier script for that flight and date.
    #[must_use]
    pub fn with_flight(self, ident: &str, date: Date, scenario: Scenario) -> Self {
        self.script(ident, date, vec![(Duration::ZERO, scenario)])
    }

    /// Scripts `ident` on `date` to change over time: each step applies from
    /// its `Duration` after the mock's creation (tokio's clock) until the
    /// next one. Before the first step the flight is on time. Replaces any
    /// earlier script for that flight and date.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use farewatch::status::mock::{MockStatus, Scenario};
    /// let min = |m: u64| Duration::from_secs(60 * m);
    /// let mock = MockStatus::new().script(
    ///     "LH400",
    ///     jiff::civil::date(2027, 3, 1),
    ///     vec![
    ///         (min(0), Scenario::OnTime),
    ///         (min(10), Scenario::Delayed { minutes: 20 }),
    ///         (min(20), Scenario::Delayed { minutes: 45 }),
    ///         (min(30), Scenario::GateChange { from: "A26".into(), to: "B44".into() }),
    ///         (min(90), Scenario::Departed),
    ///         (min(600), Scenario::Landed),
    ///     ],
    /// );
    /// ```
    #[must_use]
    pub fn script(mut self, ident: &str, date: Date, mut steps: Vec<(Duration, Scenario)>) -> Self {
        steps.sort_by_key(|(after, _)| *after);
        let flight = Designator::parse(ident);
        self.scripts
            .retain(|s| !(s.flight.key == flight.key && s.date == date));
        self.scripts.push(Scripted {
            flight,
            date,
            steps,
        });
        self
    }

    /// Makes `ident` a low-signal flight on every date: it answers
    /// `Scheduled` with its airports but no times, delay, terminal or gate.
    /// Takes precedence over a script for the same flight. Low-signal
    /// flights only answer [`StatusQuery::Flight`].
    #[must_use]
    pub fn low_signal(mut self, ident: &str) -> Self {
        self.low_signal.push(Designator::parse(ident).key);
        self
    }

    /// Fails every call with `error` (after the latency, and after any
    /// [`MockStatus::fail_next`] failures are used up).
    #[must_use]
    pub fn fail_with(mut self, error: StatusError) -> Self {
        self.failing = Some(error);
        self
    }

    /// Fails the next `n` calls with `error`, then answers normally. Calls
    /// add up: `fail_next(1, a).fail_next(2, b)` fails with `a`, `b`, `b`.
    #[must_use]
    pub fn fail_next(self, n: usize, error: StatusError) -> Self {
        self.queued_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(std::iter::repeat_n(error, n));
        self
    }

    /// Waits `latency` (a tokio sleep) before every answer, failures included.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// How many times [`StatusProvider::flights`] was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    fn answer(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        let now = Timestamp::now();
        let elapsed = self.created.elapsed();
        match query {
            StatusQuery::Flight { ident, date } => {
                let flight = Designator::parse(ident);
                if flight.key.is_empty() {
                    return Err(StatusError::Rejected {
                        status: 400,
                        code: None,
                        message: "empty flight designator".to_owned(),
                    });
                }
                let on = date.unwrap_or_else(|| Offset::UTC.to_datetime(now).date());
                if self.low_signal.contains(&flight.key) {
                    return Ok(vec![self.low_signal_status(&flight, on, now)]);
                }
                let mut scripted: Vec<&Scripted> = self
                    .scripts
                    .iter()
                    .filter(|s| s.flight.key == flight.key)
                    .filter(|s| date.is_none_or(|d| d == s.date))
                    .collect();
                if scripted.is_empty() {
                    let plan = Plan::derive(&flight, on);
                    let snapshot = Snapshot::at(&[], elapsed, &plan);
                    return Ok(vec![self.render(&flight, &plan, &snapshot, now)]);
                }
                scripted.sort_by_key(|s| s.date);
                Ok(scripted
                    .into_iter()
                    .map(|s| self.render_scripted(s, elapsed, now))
                    .collect())
            }
            StatusQuery::Filter {
                dep_iata,
                arr_iata,
                state,
                limit,
            } => {
                let same = |want: &Option<String>, got: &Option<String>| {
                    want.as_ref().is_none_or(|w| {
                        got.as_ref()
                            .is_some_and(|g| g.eq_ignore_ascii_case(w.trim()))
                    })
                };
                Ok(self
                    .all_scripted(elapsed, now)
                    .into_iter()
                    .filter(|f| same(dep_iata, &f.departure.iata))
                    .filter(|f| same(arr_iata, &f.arrival.iata))
                    .filter(|f| state.is_none_or(|s| s == f.state))
                    .take(*limit)
                    .collect())
            }
            StatusQuery::Departures {
                airport_icao,
                begin,
                end,
            }
            | StatusQuery::Arrivals {
                airport_icao,
                begin,
                end,
            } => {
                let departures = matches!(query, StatusQuery::Departures { .. });
                Ok(self
                    .all_scripted(elapsed, now)
                    .into_iter()
                    .filter(|f| {
                        let end_point = if departures { &f.departure } else { &f.arrival };
                        let at_airport = end_point
                            .icao
                            .as_ref()
                            .is_some_and(|i| i.eq_ignore_ascii_case(airport_icao.trim()));
                        let when = end_point
                            .actual
                            .or(end_point.estimated)
                            .or(end_point.scheduled);
                        at_airport && when.is_some_and(|t| *begin <= t && t < *end)
                    })
                    .collect())
            }
        }
    }

    /// Every scripted flight as it stands now, by scheduled departure.
    fn all_scripted(&self, elapsed: Duration, now: Timestamp) -> Vec<FlightStatus> {
        let mut all: Vec<FlightStatus> = self
            .scripts
            .iter()
            .map(|s| self.render_scripted(s, elapsed, now))
            .collect();
        all.sort_by(|a, b| {
            (a.departure.scheduled, &a.flight_iata, &a.flight_icao).cmp(&(
                b.departure.scheduled,
                &b.flight_iata,
                &b.flight_icao,
            ))
        });
        all
    }

    fn render_scripted(
        &self,
        scripted: &Scripted,
        elapsed: Duration,
        now: Timestamp,
    ) -> FlightStatus {
        let plan = Plan::derive(&scripted.flight, scripted.date);
        let snapshot = Snapshot::at(&scripted.steps, elapsed, &plan);
        self.render(&scripted.flight, &plan, &snapshot, now)
    }

    fn render(
        &self,
        flight: &Designator,
        plan: &Plan,
        snapshot: &Snapshot,
        now: Timestamp,
    ) -> FlightStatus {
        let delay = i64::from(snapshot.delay);
        let departs = plus_minutes(plan.departs, delay);
        let arrives = plus_minutes(plan.arrives, delay);
        let mut departure = Endpoint {
            iata: Some(plan.origin.iata.to_owned()),
            icao: Some(plan.origin.icao.to_owned()),
            scheduled: Some(plan.departs),
            terminal: Some(plan.departure_terminal.clone()),
            gate: Some(snapshot.gate.clone()),
            ..Endpoint::default()
        };
        let mut arrival = Endpoint {
            iata: Some(plan.destination.iata.to_owned()),
            icao: Some(plan.destination.icao.to_owned()),
            scheduled: Some(plan.arrives),
            terminal: Some(plan.arrival_terminal.clone()),
            ..Endpoint::default()
        };
        let state = match &snapshot.phase {
            Phase::Scheduled => {
                departure.estimated = Some(departs);
                departure.delay_minutes = Some(delay);
                arrival.estimated = Some(arrives);
                arrival.delay_minutes = Some(delay);
                if is_late(Some(delay)) {
                    FlightState::Delayed
                } else {
                    FlightState::Scheduled
                }
            }
            Phase::Cancelled => FlightState::Cancelled,
            Phase::Departed | Phase::Landed => {
                departure.estimated = Some(departs);
                departure.actual = Some(departs);
                departure.delay_minutes = Some(delay);
                arrival.estimated = Some(arrives);
                arrival.delay_minutes = Some(delay);
                arrival.gate = Some(plan.arrival_gate.clone());
                if snapshot.phase == Phase::Landed {
                    arrival.actual = Some(arrives);
                    FlightState::Landed
                } else {
                    FlightState::Active
                }
            }
            Phase::Diverted(to_iata) => {
                departure.estimated = Some(departs);
                departure.actual = Some(departs);
                departure.delay_minutes = Some(delay);
                let iata = to_iata.trim().to_ascii_uppercase();
                arrival = Endpoint {
                    icao: airport(&iata).map(|a| a.icao.to_owned()),
                    iata: Some(iata),
                    actual: Some(arrives),
                    ..Endpoint::default()
                };
                FlightState::Diverted
            }
        };
        FlightStatus {
            flight_iata: flight.iata.clone(),
            flight_icao: flight.icao.clone(),
            airline: flight.airline.map(|a| a.name.to_owned()),
            flight_date: Some(plan.date),
            state,
            departure,
            arrival,
            provider: self.name.to_owned(),
            fetched_at: now,
            operated_by: None,
            codeshares: Vec::new(),
        }
    }

    fn low_signal_status(&self, flight: &Designator, date: Date, now: Timestamp) -> FlightStatus {
        let plan = Plan::derive(flight, date);
        let bare = |a: &Airport| Endpoint {
            iata: Some(a.iata.to_owned()),
            icao: Some(a.icao.to_owned()),
            ..Endpoint::default()
        };
        FlightStatus {
            flight_iata: flight.iata.clone(),
            flight_icao: flight.icao.clone(),
            airline: flight.airline.map(|a| a.name.to_owned()),
            flight_date: Some(date),
            state: FlightState::Scheduled,
            departure: bare(plan.origin),
            arrival: bare(plan.destination),
            provider: self.name.to_owned(),
            fetched_at: now,
            operated_by: None,
            codeshares: Vec::new(),
        }
    }

    fn next_failure(&self) -> Option<StatusError> {
        let queued = self
            .queued_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        queued.or_else(|| self.failing.clone())
    }
}

#[async_trait]
impl StatusProvider for MockStatus {
    fn name(&self) -> &'static str {
        self.name
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn supports(&self, _query: &StatusQuery) -> bool {
        true
    }

    async fn flights(&self, query: &StatusQuery) -> Result<Vec<FlightStatus>, StatusError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if let Some(error) = self.next_failure() {
            return Err(error);
        }
        self.answer(query)
    }
}

// ----- where a scripted flight stands ---------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Scheduled,
    Cancelled,
    Diverted(String),
    Departed,
    Landed,
}

/// A scripted flight at one moment: the steps so far, folded.
struct Snapshot {
    phase: Phase,
    /// Minutes late.
    delay: u32,
    /// Departure gate.
    gate: String,
}

impl Snapshot {
    fn at(steps: &[(Duration, Scenario)], elapsed: Duration, plan: &Plan) -> Self {
        // Before a gate change the flight shows the gate it changes from.
        let gate = steps
            .iter()
            .find_map(|(_, s)| match s {
                Scenario::GateChange { from, .. } => Some(from.clone()),
                _ => None,
            })
            .unwrap_or_else(|| plan.departure_gate.clone());
        let mut snapshot = Snapshot {
            phase: Phase::Scheduled,
            delay: 0,
            gate,
        };
        for (_, scenario) in steps.iter().take_while(|(after, _)| *after <= elapsed) {
            match scenario {
                Scenario::OnTime => {
                    snapshot.phase = Phase::Scheduled;
                    snapshot.delay = 0;
                }
                Scenario::Delayed { minutes } => {
                    snapshot.phase = Phase::Scheduled;
                    snapshot.delay = *minutes;
                }
                Scenario::Cancelled => snapshot.phase = Phase::Cancelled,
                Scenario::Diverted { to_iata } => snapshot.phase = Phase::Diverted(to_iata.clone()),
                Scenario::GateChange { to, .. } => snapshot.gate = to.clone(),
                Scenario::Departed => snapshot.phase = Phase::Departed,
                Scenario::Landed => snapshot.phase = Phase::Landed,
            }
        }
        snapshot
    }
}

// ----- the made-up flight ------------------------------------------------------

/// A flight designator, normalised so `LH400`, `DLH400` and `lh 0400` match.
#[derive(Clone, Debug)]
struct Designator {
    /// What flights are matched by: `LH400` for a known airline, else the
    /// designator upper-cased without spaces.
    key: String,
    airline: Option<&'static Airline>,
    iata: Option<String>,
    icao: Option<String>,
}

impl Designator {
    fn parse(ident: &str) -> Self {
        let text: String = ident
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let known = |prefix_len: usize| {
            let prefix = text.get(..prefix_len)?;
            let number = text.get(prefix_len..)?;
            if !number.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            let airline = AIRLINES.iter().find(|a| {
                if prefix_len == 3 {
                    a.icao == prefix
                } else {
                    a.iata == prefix
                }
            })?;
            let trimmed = number.trim_start_matches('0');
            let number = if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                trimmed
            } else {
                // All zeros, or zeros then a suffix letter: keep one zero.
                &number[number.len() - trimmed.len() - 1..]
            };
            Some((airline, number.to_owned()))
        };
        if let Some((airline, number)) = known(3).or_else(|| known(2)) {
            return Designator {
                key: format!("{}{number}", airline.iata),
                airline: Some(airline),
                iata: Some(format!("{}{number}", airline.iata)),
                icao: Some(format!("{}{number}", airline.icao)),
            };
        }
        // An unknown airline: three letters then a digit looks ICAO-style.
        let bytes = text.as_bytes();
        let icao_style = bytes.len() > 3
            && bytes[..3].iter().all(u8::is_ascii_alphabetic)
            && bytes[3].is_ascii_digit();
        let (iata, icao) = if text.is_empty() {
            (None, None)
        } else if icao_style {
            (None, Some(text.clone()))
        } else {
            (Some(text.clone()), None)
        };
        Designator {
            key: text,
            airline: None,
            iata,
            icao,
        }
    }
}

/// Everything about a flight on one date that does not depend on a scenario.
struct Plan {
    date: Date,
    origin: &'static Airport,
    destination: &'static Airport,
    departs: Timestamp,
    arrives: Timestamp,
    departure_terminal: String,
    departure_gate: String,
    arrival_terminal: String,
    arrival_gate: String,
}

impl Plan {
    /// Pure: the same flight and date always give the same plan.
    fn derive(flight: &Designator, date: Date) -> Self {
        let route = stable_hash(flight.key.as_bytes());
        let day = stable_hash(format!("{}/{date}", flight.key).as_bytes());
        let origin = flight
            .airline
            .and_then(|a| airport(a.hub))
            .unwrap_or(&AIRPORTS[pick(route, AIRPORTS.len())]);
        let others: Vec<&'static Airport> =
            AIRPORTS.iter().filter(|a| a.iata != origin.iata).collect();
        let destination = others[pick(route >> 16, others.len())];
        // 06:00 to 22:20 local, on five-minute marks.
        let minute_of_day = 6 * 60 + 5 * pick(route >> 32, 197);
        let local = date.at(
            i8::try_from(minute_of_day / 60).unwrap_or(12),
            i8::try_from(minute_of_day % 60).unwrap_or(0),
            0,
            0,
        );
        let departs = Offset::constant(origin.utc_offset)
            .to_timestamp(local)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let arrives = plus_minutes(departs, block_minutes(origin, destination));
        let (departure_terminal, departure_gate) = origin.stand(route >> 40, day);
        let (arrival_terminal, arrival_gate) = destination.stand(route >> 48, day >> 24);
        Plan {
            date,
            origin,
            destination,
            departs,
            arrives,
            departure_terminal,
            departure_gate,
            arrival_terminal,
            arrival_gate,
        }
    }
}

/// Gate to gate: the great-circle distance at 830 km/h plus 40 minutes for
/// taxiing, climb and approach, rounded up to five minutes.
fn block_minutes(from: &Airport, to: &Airport) -> i64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lon1) = (from.lat.to_radians(), from.lon.to_radians());
    let (lat2, lon2) = (to.lat.to_radians(), to.lon.to_radians());
    let a = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    let km = 2.0 * EARTH_RADIUS_KM * a.sqrt().asin();
    // At most ~1,500 minutes: the cast cannot truncate.
    let minutes = (km / (830.0 / 60.0)).ceil() as i64 + 40;
    (minutes + 4) / 5 * 5
}

fn plus_minutes(at: Timestamp, minutes: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_mins(minutes))
        .unwrap_or(at)
}

/// `hash` reduced to `0..len`.
fn pick(hash: u64, len: usize) -> usize {
    // `len` is a table size, far below u64::MAX; the result is below `len`.
    usize::try_from(hash % len as u64).unwrap_or(0)
}

/// FNV-1a over the bytes: stable across processes, platforms and Rust versions.
fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug)]
struct Airline {
    iata: &'static str,
    icao: &'static str,
    name: &'static str,
    /// IATA code of its main base, where its made-up flights depart from.
    hub: &'static str,
}

#[rustfmt::skip]
static AIRLINES: &[Airline] = &[
    Airline { iata: "LH", icao: "DLH", name: "Lufthansa", hub: "FRA" },
    Airline { iata: "LX", icao: "SWR", name: "Swiss", hub: "ZRH" },
    Airline { iata: "BA", icao: "BAW", name: "British Airways", hub: "LHR" },
    Airline { iata: "AF", icao: "AFR", name: "Air France", hub: "CDG" },
    Airline { iata: "KL", icao: "KLM", name: "KLM", hub: "AMS" },
    Airline { iata: "IB", icao: "IBE", name: "Iberia", hub: "MAD" },
    Airline { iata: "TP", icao: "TAP", name: "TAP Air Portugal", hub: "LIS" },
    Airline { iata: "EI", icao: "EIN", name: "Aer Lingus", hub: "DUB" },
    Airline { iata: "UA", icao: "UAL", name: "United Airlines", hub: "SFO" },
    Airline { iata: "AA", icao: "AAL", name: "American Airlines", hub: "DFW" },
    Airline { iata: "DL", icao: "DAL", name: "Delta Air Lines", hub: "ATL" },
    Airline { iata: "EK", icao: "UAE", name: "Emirates", hub: "DXB" },
    Airline { iata: "SQ", icao: "SIA", name: "Singapore Airlines", hub: "SIN" },
    Airline { iata: "NH", icao: "ANA", name: "All Nippon Airways", hub: "HND" },
    Airline { iata: "TK", icao: "THY", name: "Turkish Airlines", hub: "IST" },
];

#[derive(Debug)]
struct Airport {
    iata: &'static str,
    icao: &'static str,
    /// Standard-time offset from UTC, in hours.
    utc_offset: i8,
    lat: f64,
    lon: f64,
    /// Terminals and the letters of their gates (`""`: numbered gates only).
    terminals: &'static [(&'static str, &'static [&'static str])],
}

impl Airport {
    /// A terminal chosen by `terminal_hash` (stable per flight) and a gate
    /// in it chosen by `gate_hash` (changing by date).
    fn stand(&self, terminal_hash: u64, gate_hash: u64) -> (String, String) {
        let (terminal, letters) = self.terminals[pick(terminal_hash, self.terminals.len())];
        let letter = letters[pick(gate_hash, letters.len())];
        let number = 1 + pick(gate_hash >> 8, 48);
        (terminal.to_owned(), format!("{letter}{number}"))
    }
}

fn airport(iata: &str) -> Option<&'static Airport> {
    AIRPORTS.iter().find(|a| a.iata.eq_ignore_ascii_case(iata))
}

#[rustfmt::skip]
static AIRPORTS: &[Airport] = &[
    Airport { iata: "FRA", icao: "EDDF", utc_offset: 1, lat: 50.0379, lon: 8.5622,
              terminals: &[("1", &["A", "B", "C", "Z"]), ("2", &["D", "E"])] },
    Airport { iata: "MUC", icao: "EDDM", utc_offset: 1, lat: 48.3538, lon: 11.7861,
              terminals: &[("1", &["B", "C", "D"]), ("2", &["G", "H", "K", "L"])] },
    Airport { iata: "ZRH", icao: "LSZH", utc_offset: 1, lat: 47.4647, lon: 8.5492,
              terminals: &[("1", &["A", "B", "D"]), ("2", &["E"])] },
    Airport { iata: "LHR", icao: "EGLL", utc_offset: 0, lat: 51.4700, lon: -0.4543,
              terminals: &[("2", &["A", "B"]), ("3", &[""]), ("5", &["A", "B", "C"])] },
    Airport { iata: "CDG", icao: "LFPG", utc_offset: 1, lat: 49.0097, lon: 2.5479,
              terminals: &[("2E", &["K", "L", "M"]), ("2F", &["F"]), ("2G", &["G"])] },
    Airport { iata: "AMS", icao: "EHAM", utc_offset: 1, lat: 52.3105, lon: 4.7683,
              terminals: &[("1", &["B", "C"]), ("2", &["D", "E"]), ("3", &["F", "G", "H"])] },
    Airport { iata: "MAD", icao: "LEMD", utc_offset: 1, lat: 40.4983, lon: -3.5676,
              terminals: &[("4", &["H", "J", "K"]), ("4S", &["M", "R", "S", "U"]), ("2", &["D"])] },
    Airport { iata: "LIS", icao: "LPPT", utc_offset: 0, lat: 38.7742, lon: -9.1342,
              terminals: &[("1", &["A", "B", "C", "D"]), ("2", &["E"])] },
    Airport { iata: "DUB", icao: "EIDW", utc_offset: 0, lat: 53.4264, lon: -6.2499,
              terminals: &[("1", &[""]), ("2", &[""])] },
    Airport { iata: "IST", icao: "LTFM", utc_offset: 3, lat: 41.2753, lon: 28.7519,
              terminals: &[("1", &["A", "B", "D", "F"])] },
    Airport { iata: "DXB", icao: "OMDB", utc_offset: 4, lat: 25.2532, lon: 55.3657,
              terminals: &[("3", &["A", "B", "C"]), ("1", &["C", "D"])] },
    Airport { iata: "SIN", icao: "WSSS", utc_offset: 8, lat: 1.3644, lon: 103.9915,
              terminals: &[("1", &["C", "D"]), ("2", &["E", "F"]), ("3", &["A", "B"]), ("4", &["G"])] },
    Airport { iata: "HND", icao: "RJTT", utc_offset: 9, lat: 35.5494, lon: 139.7798,
              terminals: &[("1", &[""]), ("2", &[""]), ("3", &[""])] },
    Airport { iata: "JFK", icao: "KJFK", utc_offset: -5, lat: 40.6413, lon: -73.7781,
              terminals: &[("1", &[""]), ("4", &["A", "B"]), ("7", &[""]), ("8", &[""])] },
    Airport { iata: "ATL", icao: "KATL", utc_offset: -5, lat: 33.6407, lon: -84.4277,
              terminals: &[("S", &["A", "B", "C", "D"]), ("I", &["E", "F"])] },
    Airport { iata: "DFW", icao: "KDFW", utc_offset: -6, lat: 32.8998, lon: -97.0403,
              terminals: &[("A", &["A"]), ("C", &["C"]), ("D", &["D"]), ("E", &["E"])] },
    Airport { iata: "SFO", icao: "KSFO", utc_offset: -8, lat: 37.6213, lon: -122.3790,
              terminals: &[("1", &["B", "C"]), ("2", &["D"]), ("3", &["E", "F"]), ("I", &["A", "G"])] },
    Airport { iata: "LAX", icao: "KLAX", utc_offset: -8, lat: 33.9416, lon: -118.4085,
              terminals: &[("B", &[""]), ("4", &[""]), ("7", &[""])] },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designators_match_across_iata_icao_spacing_and_leading_zeros() {
        let keys: Vec<String> = ["LH400", "DLH400", "lh 0400", " dlh0400 "]
            .iter()
            .map(|i| Designator::parse(i).key)
            .collect();
        assert!(keys.iter().all(|k| k == "LH400"), "{keys:?}");
        let lh = Designator::parse("lh0400");
        assert_eq!(lh.iata.as_deref(), Some("LH400"));
        assert_eq!(lh.icao.as_deref(), Some("DLH400"));
        assert_eq!(Designator::parse("LH0").key, "LH0");
        assert_eq!(Designator::parse("LH00A").key, "LH0A");
        let unknown = Designator::parse("xyz123");
        assert_eq!(
            (unknown.key.as_str(), unknown.iata, unknown.icao.as_deref()),
            ("XYZ123", None, Some("XYZ123"))
        );
        let unknown = Designator::parse("Q7 55");
        assert_eq!(
            (unknown.key.as_str(), unknown.iata.as_deref()),
            ("Q755", Some("Q755"))
        );
        assert_eq!(Designator::parse("  ").key, "");
        // Not ASCII: no panic slicing inside a character.
        assert_eq!(Designator::parse("ÅÅ1").key, "ÅÅ1");
    }

    #[test]
    fn block_times_are_realistic() {
        let fra = airport("FRA").unwrap();
        assert_eq!(block_minutes(fra, airport("LHR").unwrap()), 90);
        let sin = block_minutes(fra, airport("SIN").unwrap());
        assert!((700..800).contains(&sin), "{sin}");
    }

    #[test]
    fn every_table_entry_is_usable() {
        for airline in AIRLINES {
            assert!(airport(airline.hub).is_some(), "{}", airline.hub);
        }
        for a in AIRPORTS {
            assert!(!a.terminals.is_empty() && a.terminals.iter().all(|(_, g)| !g.is_empty()));
        }
    }
}
