//! The latest status of each flight in Redis, for any script or service to
//! read without calling a paid API: `redis-cli GET flight:MU2557`.
//!
//! # Keys and values
//! `{prefix}{FLIGHT_IATA}` (default prefix `flight:`), written with
//! `SET … EX <ttl>` so a flight that stops being polled disappears. The
//! value is a compact JSON [`Snapshot`]:
//!
//! ```json
//! {"flight":"MU2557","flight_icao":"CES2557","airline":"China Eastern Airlines",
//!  "date":"2026-11-24","status":"delayed","disrupted":true,
//!  "dep":{"iata":"WUH","icao":"ZHHH","scheduled":"2026-11-24T06:30:00Z",
//!         "estimated":"2026-11-24T07:10:00Z","actual":null,"delay_min":40,
//!         "terminal":"3","gate":"12"},
//!  "arr":{...same fields...},
//!  "provider":"aviationstack","fetched_at":"2026-11-24T06:01:12Z",
//!  "operated_by":null}
//! ```
//!
//! Times are real instants in UTC (RFC 3339), whatever the provider sent.
//!
//! # Codeshares
//! Travellers look up the number on their ticket, often a marketing
//! designator, so every designator of a codeshared flight gets its own key
//! ([`Snapshot::all_of`]): `flight:CA3907` and `flight:ZH9572` hold the same
//! status, and the marketing one names the operating flight in
//! `operated_by` (`"ZH9572"`); the operating flight's own has `null`.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Endpoint, FlightState, FlightStatus};
use crate::cache::{connect_redis, redact_url, CacheError};

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "flight:";

/// Default snapshot lifetime: a few poll intervals, so a stopped poller's
/// data ages out instead of looking current.
pub const DEFAULT_SNAPSHOT_TTL: Duration = Duration::from_secs(15 * 60);

/// One end of a flight, compact.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotEnd {
    /// IATA airport code.
    pub iata: Option<String>,
    /// ICAO airport code.
    pub icao: Option<String>,
    /// Scheduled time (UTC).
    pub scheduled: Option<jiff::Timestamp>,
    /// Estimated time (UTC).
    pub estimated: Option<jiff::Timestamp>,
    /// Actual time (UTC).
    pub actual: Option<jiff::Timestamp>,
    /// Minutes late.
    pub delay_min: Option<i64>,
    /// Terminal.
    pub terminal: Option<String>,
    /// Gate.
    pub gate: Option<String>,
}

/// What is stored under `flight:<iata>`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// IATA designator (the key's suffix).
    pub flight: String,
    /// ICAO designator.
    pub flight_icao: Option<String>,
    /// Airline.
    pub airline: Option<String>,
    /// Flight date (local departure date).
    pub date: Option<jiff::civil::Date>,
    /// `scheduled`, `active`, `delayed`, `landed`, `cancelled`, `diverted`, `incident`, `unknown`.
    pub status: FlightState,
    /// Delayed 15+ minutes, cancelled, diverted or in an incident.
    pub disrupted: bool,
    /// Departure.
    pub dep: SnapshotEnd,
    /// Arrival.
    pub arr: SnapshotEnd,
    /// Which provider answered.
    pub provider: String,
    /// When it answered.
    pub fetched_at: jiff::Timestamp,
    /// For a codeshare's marketing designator, the operating flight;
    /// `null` for the operating flight itself. Absent in snapshots written
    /// before codeshares had their own keys.
    #[serde(default)]
    pub operated_by: Option<String>,
}

impl Snapshot {
    /// One snapshot per designator of the flight: its own, the operating
    /// flight's (when it is a codeshare's marketing designator) and every
    /// other codeshare; empty without an IATA designator. See the module docs.
    pub fn all_of(status: &FlightStatus) -> Vec<Self> {
        let Some(own) = Self::of(status) else {
            return Vec::new();
        };
        let operating = own
            .operated_by
            .clone()
            .unwrap_or_else(|| own.flight.clone());
        let mut designators = vec![own.flight.clone()];
        for designator in status.operated_by.iter().chain(&status.codeshares) {
            let designator = designator.trim().to_ascii_uppercase();
            if !designator.is_empty() && !designators.contains(&designator) {
                designators.push(designator);
            }
        }
        let mut snapshots = Vec::with_capacity(designators.len());
        for designator in designators.into_iter().skip(1) {
            snapshots.push(Self {
                operated_by: (designator != operating).then(|| operating.clone()),
                // The provider's ICAO designator belongs to its own designator only.
                flight_icao: None,
                flight: designator,
                ..own.clone()
            });
        }
        snapshots.insert(0, own);
        snapshots
    }

    /// The snapshot of a status under its own IATA designator, if it has one.
    pub fn of(status: &FlightStatus) -> Option<Self> {
        let end = |e: &Endpoint| SnapshotEnd {
            iata: e.iata.clone(),
            icao: e.icao.clone(),
            scheduled: e.scheduled,
            estimated: e.estimated,
            actual: e.actual,
            delay_min: e.delay_minutes,
            terminal: e.terminal.clone(),
            gate: e.gate.clone(),
        };
        Some(Self {
            flight: status.flight_iata.clone()?.to_ascii_uppercase(),
            flight_icao: status.flight_icao.clone(),
            airline: status.airline.clone(),
            date: status.flight_date,
            status: status.state,
            disrupted: status.is_disrupted(),
            dep: end(&status.departure),
            arr: end(&status.arrival),
            provider: status.provider.clone(),
            fetched_at: status.fetched_at,
            operated_by: status
                .operated_by
                .as_ref()
                .map(|o| o.trim().to_ascii_uppercase()),
        })
    }
}

/// What a write did to the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    /// The key did not exist.
    Created,
    /// The key existed and the flight's status changed.
    Updated,
    /// The key existed with the same status (only its TTL and fetch time were renewed).
    Refreshed,
}

/// Flight snapshots in Redis.
#[derive(Clone)]
pub struct SnapshotStore {
    conn: ConnectionManager,
    url: String,
    prefix: String,
    ttl: Duration,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Could not connect.
    #[error(transparent)]
    Connect(#[from] CacheError),
    /// Redis refused or failed a command.
    #[error("Redis at {url}: {detail}")]
    Command {
        /// The URL, password redacted.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl SnapshotStore {
    /// Connects to Redis at `url`.
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Self, SnapshotError> {
        Ok(Self {
            conn: connect_redis(url).await?,
            url: redact_url(url),
            prefix: prefix.to_owned(),
            ttl,
        })
    }

    /// The key for a flight: `flight:MU2557`.
    pub fn key(&self, flight_iata: &str) -> String {
        format!("{}{}", self.prefix, flight_iata.trim().to_ascii_uppercase())
    }

    fn command_error(&self, e: &redis::RedisError) -> SnapshotError {
        SnapshotError::Command {
            url: self.url.clone(),
            detail: e.to_string(),
        }
    }

    /// Writes the snapshot with the TTL, in one round trip (`SET … EX … GET`).
    pub async fn put(&self, snapshot: &Snapshot) -> Result<Written, SnapshotError> {
        let key = self.key(&snapshot.flight);
        let json = serde_json::to_string(snapshot).map_err(|e| SnapshotError::Command {
            url: self.url.clone(),
            detail: e.to_string(),
        })?;
        let mut conn = self.conn.clone();
        let previous: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&json)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .arg("GET")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.command_error(&e))?;
        let written = match previous.and_then(|p| serde_json::from_str::<Snapshot>(&p).ok()) {
            None => Written::Created,
            Some(old) if same_status(&old, snapshot) => Written::Refreshed,
            Some(_) => Written::Updated,
        };
        Ok(written)
    }

    /// The snapshot of a flight, if one is stored and still alive.
    pub async fn get(&self, flight_iata: &str) -> Result<Option<Snapshot>, SnapshotError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.key(flight_iata))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.command_error(&e))?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }
}

/// Equal but for when and from whom it was fetched.
fn same_status(a: &Snapshot, b: &Snapshot) -> bool {
    let strip = |s: &Snapshot| Snapshot {
        provider: String::new(),
        fetched_at: jiff::Timestamp::UNIX_EPOCH,
        ..s.clone()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(iata: &str, operated_by: Option<&str>, codeshares: &[&str]) -> FlightStatus {
        FlightStatus {
            flight_iata: Some(iata.into()),
            flight_icao: Some("ICAO1".into()),
            airline: None,
            flight_date: None,
            state: FlightState::Active,
            departure: Endpoint::default(),
            arrival: Endpoint::default(),
            provider: "mock".into(),
            fetched_at: jiff::Timestamp::UNIX_EPOCH,
            operated_by: operated_by.map(str::to_owned),
            codeshares: codeshares.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn keys(status: &FlightStatus) -> Vec<(String, Option<String>)> {
        Snapshot::all_of(status)
            .into_iter()
            .map(|s| (s.flight, s.operated_by))
            .collect()
    }

    fn key(flight: &str, operated_by: Option<&str>) -> (String, Option<String>) {
        (flight.into(), operated_by.map(str::to_owned))
    }

    #[test]
    fn every_designator_gets_a_snapshot_naming_the_operating_flight() {
        assert_eq!(
            keys(&status("UA1", None, &["SQ7361", "ac6033", "UA1"])),
            [
                key("UA1", None),
                key("SQ7361", Some("UA1")),
                key("AC6033", Some("UA1")),
            ]
        );
        // A marketing designator whose operator was not in the reply.
        assert_eq!(
            keys(&status("TV3260", Some("sc4951"), &["MU1234"])),
            [
                key("TV3260", Some("SC4951")),
                key("SC4951", None),
                key("MU1234", Some("SC4951")),
            ]
        );
        assert_eq!(keys(&status("LH400", None, &[])), [key("LH400", None)]);
        let all = Snapshot::all_of(&status("UA1", None, &["SQ7361"]));
        assert_eq!(all[0].flight_icao.as_deref(), Some("ICAO1"));
        assert_eq!(all[1].flight_icao, None);
    }
}
