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
        operated_by: None,
        codeshares: Vec::new(),
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
    assert_eq!(json["operated_by"], serde_json::Value::Null);
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

// ----- codeshares, end to end: provider fixture → failover → poller → Redis ----------

mod codeshares {
    use std::sync::Arc;
    use std::time::Duration;

    use farewatch::status::aviationstack::{Aviationstack, AviationstackConfig};
    use farewatch::status::failover::{StatusFailover, StatusPool};
    use farewatch::status::flightaware::{FlightAware, FlightAwareConfig};
    use farewatch::status::poller::poll_once;
    use farewatch::status::{StatusProvider, StatusQuery};
    use farewatch::upstream::breaker::BreakerConfig;
    use farewatch::upstream::Limits;
    use secrecy::SecretString;
    use serde_json::{json, Value};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::{raw, store};

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/status/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    async fn serve(at: &str, body: &Value) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json"),
            )
            .mount(&server)
            .await;
        server
    }

    fn aviationstack(server: &MockServer) -> Arc<dyn StatusProvider> {
        Arc::new(Aviationstack::new(
            farewatch::upstream::http::build_client(),
            AviationstackConfig {
                base_url: server.uri(),
                access_key: SecretString::from("key"),
                timeout: Duration::from_secs(10),
            },
        ))
    }

    fn failover(provider: Arc<dyn StatusProvider>) -> StatusFailover {
        let limits = Limits {
            max_concurrency: 1,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
        };
        let pool = StatusPool::for_status(provider, limits, BreakerConfig::default());
        StatusFailover::new(vec![Arc::new(pool)], Duration::from_secs(60))
    }

    /// The JSON stored under `flight:<designator>` (with the test's prefix).
    async fn stored(
        store: &farewatch::status::snapshots::SnapshotStore,
        designator: &str,
    ) -> Value {
        let (value, _) = raw(&store.key(designator)).await;
        let value = value.unwrap_or_else(|| panic!("no snapshot for {designator}"));
        serde_json::from_str(&value).unwrap()
    }

    fn wuh_szx() -> StatusQuery {
        StatusQuery::Filter {
            dep_iata: Some("WUH".into()),
            arr_iata: Some("SZX".into()),
            state: None,
            limit: 100,
        }
    }

    #[tokio::test]
    async fn aviationstack_each_designator_of_a_codeshare_has_its_snapshot_naming_the_operator() {
        let server = serve(
            "/v1/flights",
            &fixture("aviationstack-flights-WUH-SZX.json"),
        )
        .await;
        let store = store("codeshare-avs").await;

        let report = poll_once(&failover(aviationstack(&server)), &store, &wuh_szx()).await;
        assert!(report.errors.is_empty(), "{report:?}");
        // Four flights (CA3907 is ZH9572 sold by Air China), five keys.
        assert_eq!((report.flights, report.created), (4, 5), "{report:?}");

        let operating = stored(&store, "ZH9572").await;
        let marketing = stored(&store, "CA3907").await;
        assert_eq!(operating["flight"], "ZH9572");
        assert_eq!(operating["operated_by"], Value::Null);
        assert_eq!(marketing["flight"], "CA3907");
        assert_eq!(marketing["operated_by"], "ZH9572");
        // The same flight: same status, times and gates.
        for field in ["status", "disrupted", "dep", "arr", "date"] {
            assert_eq!(marketing[field], operating[field], "{field}");
        }
        for plain in ["CZ3361", "MU2503", "HU7087"] {
            assert_eq!(stored(&store, plain).await["operated_by"], Value::Null);
        }
    }

    #[tokio::test]
    async fn aviationstack_a_codeshare_without_its_operator_in_the_reply_writes_both_keys() {
        let body = fixture("aviationstack-flights-captured-codeshare.json");
        let server = serve("/v1/flights", &body).await;
        let store = store("codeshare-avs-alone").await;
        let query = StatusQuery::Flight {
            ident: "TV3260".into(),
            date: None,
        };

        let report = poll_once(&failover(aviationstack(&server)), &store, &query).await;
        assert!(report.errors.is_empty(), "{report:?}");

        let marketing = stored(&store, "TV3260").await;
        assert_eq!(marketing["operated_by"], "SC4951");
        let operating = stored(&store, "SC4951").await;
        assert_eq!(operating["operated_by"], Value::Null);
        assert_eq!(operating["dep"], marketing["dep"]);
    }

    #[tokio::test]
    async fn flightaware_each_codeshare_of_the_operating_flight_has_its_snapshot() {
        let body = fixture("flightaware-flights-UAL1.json");
        let one = json!({"links": null, "num_pages": 1, "flights": [body["flights"][1].clone()]});
        let server = serve("/aeroapi/flights/UAL1", &one).await;
        let provider: Arc<dyn StatusProvider> = Arc::new(FlightAware::new(
            farewatch::upstream::http::build_client(),
            FlightAwareConfig {
                base_url: format!("{}/aeroapi", server.uri()),
                api_key: SecretString::from("key"),
                timeout: Duration::from_secs(10),
            },
        ));
        let store = store("codeshare-fa").await;
        let query = StatusQuery::Flight {
            ident: "UAL1".into(),
            date: None,
        };

        let report = poll_once(&failover(provider), &store, &query).await;
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!((report.flights, report.created), (1, 3), "{report:?}");

        let operating = stored(&store, "UA1").await;
        assert_eq!(operating["operated_by"], Value::Null);
        assert_eq!(operating["flight_icao"], "UAL1");
        for marketing in ["SQ7361", "AC6033"] {
            let snapshot = stored(&store, marketing).await;
            assert_eq!(snapshot["flight"], marketing);
            assert_eq!(snapshot["operated_by"], "UA1");
            assert_eq!(snapshot["status"], operating["status"]);
            assert_eq!(snapshot["dep"], operating["dep"]);
        }
    }
}
