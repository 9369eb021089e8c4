//! Flight snapshots in a real Redis: keys, JSON, TTL, created vs updated.

use std::time::Duration;

use farewatch::status::snapshots::{Snapshot, SnapshotStore, Written};
use farewatch::status::{Endpoint, FlightState, FlightStatus};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

async fn store(test: &str) -> SnapshotStore {
    let prefix = format!("farewatch-test-{}-{test}:flight:", std::process::id());
    SnapshotStore::connect(&redis_url(), &prefix, Duration::from_secs(600))
        .await
        .unwrap_or_else(|e| panic!("these tests need Redis at {}: {e}", redis_url()))
}

fn status(gate: &str, state: FlightState) -> FlightStatus {
    FlightStatus {
        flight_iata: Some("mu2557".into()),
        flight_icao: Some("CES2557".into()),
        airline: Some("China Eastern Airlines".into()),
        flight_date: Some("2026-11-24".parse().unwrap()),
        state,
        departure: Endpoint {
            iata: Some("WUH".into()),
            icao: Some("ZHHH".into()),
            scheduled: Some("2026-11-24T06:30:00Z".parse().unwrap()),
            estimated: Some("2026-11-24T07:10:00Z".parse().unwrap()),
            actual: None,
            delay_minutes: Some(40),
            terminal: Some("3".into()),
            gate: Some(gate.into()),
        },
        arrival: Endpoint {
            iata: Some("SZX".into()),
            ..Endpoint::default()
        },
        provider: "aviationstack".into(),
        fetched_at: jiff::Timestamp::now(),
    }
}

async fn raw(key: &str) -> (Option<String>, i64) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value: Option<String> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    (value, ttl)
}

#[tokio::test]
async fn first_write_creates_the_key_with_its_ttl_and_documented_json() {
    let store = store("create").await;
    let snapshot = Snapshot::of(&status("12", FlightState::Delayed)).unwrap();
    assert_eq!(store.put(&snapshot).await.unwrap(), Written::Created);
    let key = store.key("mu2557");
    assert!(key.ends_with(":flight:MU2557"), "{key}");
    let (value, ttl) = raw(&key).await;
    assert!((598..=600).contains(&ttl), "TTL {ttl}");
    let json: serde_json::Value = serde_json::from_str(&value.unwrap()).unwrap();
    assert_eq!(json["flight"], "MU2557");
    assert_eq!(json["status"], "delayed");
    assert_eq!(json["disrupted"], true);
    assert_eq!(json["dep"]["iata"], "WUH");
    assert_eq!(json["dep"]["scheduled"], "2026-11-24T06:30:00Z");
    assert_eq!(json["dep"]["delay_min"], 40);
    assert_eq!(json["dep"]["gate"], "12");
    assert_eq!(json["arr"]["iata"], "SZX");
    assert_eq!(json["provider"], "aviationstack");
    assert_eq!(store.get("MU2557").await.unwrap(), Some(snapshot));
}

#[tokio::test]
async fn a_rewrite_is_refreshed_when_nothing_changed_and_updated_when_something_did() {
    let store = store("update").await;
    let first = Snapshot::of(&status("12", FlightState::Delayed)).unwrap();
    assert_eq!(store.put(&first).await.unwrap(), Written::Created);
    // Same status, fetched again later (maybe by another provider).
    let mut again = Snapshot::of(&status("12", FlightState::Delayed)).unwrap();
    again.provider = "flightaware".into();
    assert_eq!(store.put(&again).await.unwrap(), Written::Refreshed);
    let moved = Snapshot::of(&status("14", FlightState::Delayed)).unwrap();
    assert_eq!(store.put(&moved).await.unwrap(), Written::Updated);
    assert_eq!(
        store
            .get("MU2557")
            .await
            .unwrap()
            .unwrap()
            .dep
            .gate
            .as_deref(),
        Some("14")
    );
}

#[tokio::test]
async fn a_flight_without_an_iata_designator_has_no_snapshot_and_a_missing_key_reads_none() {
    let mut no_iata = status("1", FlightState::Scheduled);
    no_iata.flight_iata = None;
    assert!(Snapshot::of(&no_iata).is_none());
    let store = store("missing").await;
    assert_eq!(store.get("ZZ9999").await.unwrap(), None);
}
