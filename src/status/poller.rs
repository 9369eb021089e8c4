//! The status poller: ask the providers, write each flight's snapshot to
//! Redis, say what changed. And when to poll a watched flight next.

use std::time::Duration;

use jiff::Timestamp;

use super::failover::StatusFailover;
use super::snapshots::{Snapshot, SnapshotStore, Written};
use super::{FlightState, FlightStatus, StatusQuery};

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    /// Flights the providers returned.
    pub flights: usize,
    /// Keys written for the first time (a codeshared flight writes one key
    /// per designator).
    pub created: usize,
    /// Keys whose flight status changed.
    pub updated: usize,
    /// Keys rewritten with the same status (TTL renewed).
    pub refreshed: usize,
    /// Flights without an IATA designator (no key to write).
    pub without_iata: usize,
    /// What went wrong (provider failures, Redis errors).
    pub errors: Vec<String>,
}

/// Polls once: looks `query` up and writes every flight's snapshots, one
/// per designator (codeshares included).
pub async fn poll_once(
    failover: &StatusFailover,
    store: &SnapshotStore,
    query: &StatusQuery,
) -> PollReport {
    let mut report = PollReport::default();
    let flights = match failover.flights(query).await {
        Ok(flights) => flights,
        Err(error) => {
            report.errors.push(format!("{query}: {error}"));
            return report;
        }
    };
    report.flights = flights.len();
    for flight in &flights {
        let snapshots = Snapshot::all_of(flight);
        if snapshots.is_empty() {
            report.without_iata += 1;
        }
        for snapshot in snapshots {
            let key = store.key(&snapshot.flight);
            match store.put(&snapshot).await {
                Ok(written) => {
                    match written {
                        Written::Created => report.created += 1,
                        Written::Updated => report.updated += 1,
                        Written::Refreshed => report.refreshed += 1,
                    }
                    tracing::info!(%key, status = ?snapshot.status, written = ?written, "flight snapshot written");
                }
                Err(error) => report.errors.push(format!("{key}: {error}")),
            }
        }
    }
    report
}

/// How long before departure polling goes from hourly to every 5 minutes.
pub const CLOSE_WINDOW: Duration = Duration::from_secs(3 * 3600);
/// How long before departure polling goes to every minute.
pub const FINAL_WINDOW: Duration = Duration::from_secs(3600);

/// When to look at a watched flight again: hourly while departure is more
/// than 3 hours away, every 5 minutes within 3 hours, every minute from an
/// hour before departure until it lands; `None` once it has landed or been
/// cancelled (nothing more will change). An airborne flight is polled every
/// 5 minutes (delays and diversions still happen), every minute within an
/// hour of its arrival.
pub fn next_poll_in(flight: &FlightStatus, now: Timestamp) -> Option<Duration> {
    match flight.state {
        FlightState::Landed | FlightState::Cancelled => return None,
        FlightState::Active | FlightState::Diverted => {
            let arrival = flight
                .arrival
                .estimated
                .or(flight.arrival.scheduled)
                .map(|t| t.duration_since(now));
            let close = arrival
                .and_then(|d| Duration::try_from(d).ok())
                .is_some_and(|d| d <= FINAL_WINDOW);
            return Some(if close {
                Duration::from_secs(60)
            } else {
                Duration::from_secs(5 * 60)
            });
        }
        _ => {}
    }
    let departure = flight
        .departure
        .estimated
        .or(flight.departure.scheduled)
        .map(|t| t.duration_since(now));
    let until = match departure.map(Duration::try_from) {
        // Unknown departure: a middle pace.
        None => return Some(Duration::from_secs(15 * 60)),
        // Departure time passed without a takeoff: watch closely.
        Some(Err(_)) => return Some(Duration::from_secs(60)),
        Some(Ok(until)) => until,
    };
    Some(if until <= FINAL_WINDOW {
        Duration::from_secs(60)
    } else if until <= CLOSE_WINDOW {
        Duration::from_secs(5 * 60)
    } else {
        Duration::from_secs(3600)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Endpoint;

    fn flight(state: FlightState, departs_in_min: i64, arrives_in_min: i64) -> FlightStatus {
        let now: Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
        let at = |m: i64| now.checked_add(jiff::SignedDuration::from_mins(m)).unwrap();
        FlightStatus {
            flight_iata: Some("LH400".into()),
            flight_icao: None,
            airline: None,
            flight_date: None,
            state,
            departure: Endpoint {
                scheduled: Some(at(departs_in_min)),
                ..Endpoint::default()
            },
            arrival: Endpoint {
                scheduled: Some(at(arrives_in_min)),
                ..Endpoint::default()
            },
            provider: "mock".into(),
            fetched_at: now,
            operated_by: None,
            codeshares: Vec::new(),
        }
    }

    fn now() -> Timestamp {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn polling_tightens_as_departure_nears_and_stops_after_landing() {
        let min = |m: u64| Some(Duration::from_secs(m * 60));
        let cases = [
            (
                flight(FlightState::Scheduled, 3 * 24 * 60, 3 * 24 * 60 + 500),
                min(60),
            ),
            (flight(FlightState::Scheduled, 181, 700), min(60)),
            (flight(FlightState::Scheduled, 180, 700), min(5)),
            (flight(FlightState::Delayed, 61, 700), min(5)),
            (flight(FlightState::Delayed, 60, 700), min(1)),
            (flight(FlightState::Scheduled, -10, 500), min(1)),
            (flight(FlightState::Active, -60, 300), min(5)),
            (flight(FlightState::Active, -300, 45), min(1)),
            (flight(FlightState::Landed, -300, -5), None),
            (flight(FlightState::Cancelled, 30, 300), None),
        ];
        for (f, expected) in cases {
            assert_eq!(
                next_poll_in(&f, now()),
                expected,
                "{:?} dep {:?}",
                f.state,
                f.departure.scheduled
            );
        }
    }

    #[test]
    fn an_unknown_departure_time_gets_a_middle_pace() {
        let mut f = flight(FlightState::Scheduled, 0, 0);
        f.departure.scheduled = None;
        assert_eq!(next_poll_in(&f, now()), Some(Duration::from_secs(15 * 60)));
    }
}
