//! The airport collector against a wiremock OpenSky serving the recorded
//! fixtures (`tests/fixtures/status/opensky-*.json`): the windows it asks
//! for (chunks of at most two days, never past yesterday 00:00 UTC), 404
//! with an empty body as "no flights", one token refresh for a rejected
//! token, one row per flight however often and from wherever it is seen,
//! and one fetch per airport however many users follow it. Time is
//! injected (`now`), never slept on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use farewatch::collector::{self, Collector, CollectorConfig, Trigger};
use farewatch::status::opensky::{OpenSky, OpenSkyConfig, OpenSkyPool};
use farewatch::status::StatusError;
use farewatch::store::{Direction, NewUser, Store};
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::Limits;
use jiff::Timestamp;
use secrecy::SecretString;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN_PATH: &str = "/auth/realms/opensky-network/protocol/openid-connect/token";
const ARRIVALS: &str = "/api/flights/arrival";
const DEPARTURES: &str = "/api/flights/departure";
/// `access_token` in `opensky-token.json`.
const FIXTURE_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIn0.fake.signature";

/// 2018-01-31 12:00 UTC: two days after the fixtures' flights (29 January).
const NOW: &str = "2018-01-31T12:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn secs(s: &str) -> i64 {
    at(s).as_second()
}

fn json(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json")
}

fn token_reply(token: &str) -> ResponseTemplate {
    json(
        200,
        common::fixture("status/opensky-token.json").replace(FIXTURE_TOKEN, token),
    )
}

/// The one EDDF departure that lands at EGLL (DLH900), as EGLL's arrivals.
fn egll_arrivals() -> String {
    let departures: serde_json::Value =
        serde_json::from_str(&common::fixture("status/opensky-departures-EDDF.json")).unwrap();
    let to_egll: Vec<&serde_json::Value> = departures
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["estArrivalAirport"] == "EGLL")
        .collect();
    assert_eq!(to_egll.len(), 1);
    serde_json::to_string(&to_egll).unwrap()
}

/// OpenSky with the fixture token: EDDF's arrivals and departures from the
/// fixtures, EGLL's arrivals (DLH900 from EDDF), and 404 with an empty body
/// (no flights) for everything else.
async fn opensky_fake() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .mount(&server)
        .await;
    mount_flights(&server).await;
    server
}

async fn mount_flights(server: &MockServer) {
    for (endpoint, airport, body) in [
        (
            ARRIVALS,
            "EDDF",
            common::fixture("status/opensky-arrivals-EDDF.json"),
        ),
        (
            DEPARTURES,
            "EDDF",
            common::fixture("status/opensky-departures-EDDF.json"),
        ),
        (ARRIVALS, "EGLL", egll_arrivals()),
    ] {
        Mock::given(method("GET"))
            .and(path(endpoint))
            .and(query_param("airport", airport))
            .respond_with(json(200, body).insert_header("X-Rate-Limit-Remaining", "3996"))
            .with_priority(1)
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/flights/arrival"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(5)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/flights/departure"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(5)
        .mount(server)
        .await;
}

fn opensky(server: &MockServer) -> OpenSky {
    OpenSky::new(
        farewatch::upstream::http::build_client(),
        OpenSkyConfig {
            base_url: format!("{}/api", server.uri()),
            auth_url: format!("{}{TOKEN_PATH}", server.uri()),
            client_id: "farewatch-test".to_owned(),
            client_secret: SecretString::from("opensky-secret-do-not-log"),
            timeout: Duration::from_secs(10),
        },
    )
}

fn pool(server: &MockServer) -> Arc<OpenSkyPool> {
    let limits = Limits {
        max_concurrency: 4,
        rate_per_sec: 0.0,
        timeout: Duration::from_secs(10),
    };
    Arc::new(OpenSkyPool::for_opensky(
        Arc::new(opensky(server)),
        limits,
        BreakerConfig::default(),
    ))
}

fn config(backfill_days: u32) -> CollectorConfig {
    CollectorConfig {
        backfill_days,
        ..CollectorConfig::default()
    }
}

/// A user interested in `airports`.
async fn interested(store: &Store, email: &str, airports: &[&str]) {
    let user = NewUser {
        email: email.to_owned(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        phone: None,
    };
    let token = farewatch::api::auth::hash_token(email);
    let created = store
        .create_user(&user, &token, Timestamp::now())
        .await
        .unwrap();
    let farewatch::store::CreatedUser::Created(user) = created else {
        panic!("{email} exists");
    };
    for airport in airports {
        store
            .add_interest(user.id, airport, Timestamp::now())
            .await
            .unwrap();
    }
}

/// One flights request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Asked {
    endpoint: String,
    airport: String,
    begin: i64,
    end: i64,
}

async fn flight_requests(server: &MockServer) -> Vec<Asked> {
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let mut asked: Vec<Asked> = requests
        .iter()
        .filter(|r| r.url.path().starts_with("/api/flights/"))
        .map(|r| {
            let param = |name: &str| {
                r.url
                    .query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| panic!("{name} missing in {}", r.url))
            };
            Asked {
                endpoint: r.url.path().rsplit('/').next().unwrap().to_owned(),
                airport: param("airport"),
                begin: param("begin").parse().unwrap(),
                end: param("end").parse().unwrap(),
            }
        })
        .collect();
    asked.sort();
    asked
}

async fn token_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == TOKEN_PATH)
        .count()
}

async fn rows(store: &Store, airport: &str) -> u64 {
    store
        .airport_flight_span(airport)
        .await
        .unwrap()
        .map_or(0, |(_, _, count)| count)
}

#[tokio::test]
async fn windows_are_split_at_two_days_and_end_yesterday_at_midnight_utc() {
    let server = opensky_fake().await;
    let store = Store::memory().unwrap();
    interested(&store, "ann@example.org", &["EDDF"]).await;
    let collector = Collector::new(store.clone(), pool(&server), config(5));

    let reports = collector.collect_all(at(NOW)).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].error, None);
    assert_eq!(reports[0].chunks, 3);
    // 5 days back from yesterday (30 January) 00:00 UTC, in 2-day chunks.
    let chunks = [
        ("2018-01-25T00:00:00Z", "2018-01-27T00:00:00Z"),
        ("2018-01-27T00:00:00Z", "2018-01-29T00:00:00Z"),
        ("2018-01-29T00:00:00Z", "2018-01-30T00:00:00Z"),
    ];
    let mut expected: Vec<Asked> = ["arrival", "departure"]
        .iter()
        .flat_map(|endpoint| {
            chunks.iter().map(|(begin, end)| Asked {
                endpoint: (*endpoint).to_owned(),
                airport: "EDDF".to_owned(),
                begin: secs(begin),
                end: secs(end),
            })
        })
        .collect();
    expected.sort();
    let asked = flight_requests(&server).await;
    assert_eq!(asked, expected);
    assert!(asked.iter().all(|a| a.end - a.begin <= 172_800));
    assert!(asked.iter().all(|a| a.end <= secs("2018-01-30T00:00:00Z")));
    assert_eq!(rows(&store, "EDDF").await, 7);
    let coverage = collector::coverage(&store, "EDDF").await.unwrap().unwrap();
    assert_eq!(
        (coverage.from, coverage.to),
        (at("2018-01-25T00:00:00Z"), at("2018-01-30T00:00:00Z"))
    );

    // Later the same day: up to date, nothing is asked.
    server.reset().await;
    mount_flights(&server).await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .mount(&server)
        .await;
    let reports = collector
        .collect_all(at("2018-01-31T23:59:59Z"))
        .await
        .unwrap();
    assert_eq!((reports[0].window, reports[0].chunks), (None, 0));
    assert!(flight_requests(&server).await.is_empty());

    // The next day: the one new day, from where the last pass stopped.
    collector
        .collect_all(at("2018-02-01T00:30:00Z"))
        .await
        .unwrap();
    let asked = flight_requests(&server).await;
    assert_eq!(asked.len(), 2, "{asked:?}");
    for a in &asked {
        assert_eq!(
            (a.begin, a.end),
            (secs("2018-01-30T00:00:00Z"), secs("2018-01-31T00:00:00Z"))
        );
    }
}

#[tokio::test]
async fn a_404_with_an_empty_body_is_no_flights_and_one_with_a_body_is_an_error() {
    let server = opensky_fake().await;
    let store = Store::memory().unwrap();
    // Cascais (LPCS): the fake has no flights for it.
    interested(&store, "ann@example.org", &["LPCS"]).await;
    let collector = Collector::new(store.clone(), pool(&server), config(2));
    let reports = collector.collect_all(at(NOW)).await.unwrap();
    assert_eq!(reports[0].error, None);
    assert_eq!((reports[0].chunks, reports[0].flights), (1, 0));
    assert_eq!(rows(&store, "LPCS").await, 0);
    assert_eq!(
        collector::coverage(&store, "LPCS")
            .await
            .unwrap()
            .map(|c| c.to),
        Some(at("2018-01-30T00:00:00Z")),
        "an empty window is collected, not retried"
    );

    // A 404 that says something (a wrong base URL, say) is not "no flights".
    let other = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .mount(&other)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .mount(&other)
        .await;
    let store = Store::memory().unwrap();
    interested(&store, "ann@example.org", &["LPCS"]).await;
    let collector = Collector::new(store.clone(), pool(&other), config(2));
    let reports = collector.collect_all(at(NOW)).await.unwrap();
    assert!(reports[0].error.is_some(), "{reports:?}");
    assert_eq!(reports[0].chunks, 0);
    assert_eq!(collector::coverage(&store, "LPCS").await.unwrap(), None);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_requests_replayed() {
    let server = MockServer::start().await;
    // The first token OpenSky hands out has expired by the time it is used.
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply("expired-token"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply("fresh-token"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer expired-token"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(1)
        .mount(&server)
        .await;
    for (endpoint, file) in [
        (ARRIVALS, "status/opensky-arrivals-EDDF.json"),
        (DEPARTURES, "status/opensky-departures-EDDF.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(endpoint))
            .and(header("authorization", "Bearer fresh-token"))
            .respond_with(json(200, common::fixture(file)))
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let store = Store::memory().unwrap();
    interested(&store, "ann@example.org", &["EDDF"]).await;
    let collector = Collector::new(store.clone(), pool(&server), config(2));
    let reports = collector.collect_all(at(NOW)).await.unwrap();
    assert_eq!(reports[0].error, None, "{reports:?}");
    // Arrivals and departures both saw the 401; one refresh served both.
    assert_eq!(token_requests(&server).await, 2);
    assert_eq!(rows(&store, "EDDF").await, 7);
}

on_both_backends! {
    /// Two collectors at once (two processes on one database), a later pass
    /// that gets the same flights again, and a flight seen from both of its
    /// airports (DLH900, EDDF to EGLL): one row per flight throughout.
    async fn overlapping_runs_never_duplicate_a_flight(db: TestDb) {
        let server = opensky_fake().await;
        let store = db.open().await;
        interested(&store, "ann@example.org", &["EDDF", "EGLL"]).await;
        let first = Collector::new(store.clone(), pool(&server), config(2));
        let second = Collector::new(db.open().await, pool(&server), config(2));
        let (a, b) = tokio::join!(first.collect_all(at(NOW)), second.collect_all(at(NOW)));
        for report in a.unwrap().into_iter().chain(b.unwrap()) {
            assert_eq!(report.error, None, "{report:?}");
        }
        // 4 arrivals + 3 departures at EDDF; DLH900 is also EGLL's arrival.
        assert_eq!(rows(&store, "EDDF").await, 7);
        assert_eq!(rows(&store, "EGLL").await, 1);

        // The fake answers every window with the same flights.
        first.collect_all(at("2018-02-01T12:00:00Z")).await.unwrap();
        assert_eq!(rows(&store, "EDDF").await, 7);
        assert_eq!(rows(&store, "EGLL").await, 1);

        // Every field is kept, the callsign trimmed.
        let from = at("2018-01-29T00:00:00Z");
        let to = at("2018-01-30T00:00:00Z");
        let departures = store
            .airport_flights("EDDF", Direction::Departures, from, to, 0, 10)
            .await
            .unwrap();
        let tap = departures.iter().find(|f| f.icao24 == "4951d0").unwrap();
        assert_eq!(tap.callsign.as_deref(), Some("TAP583"));
        assert_eq!(tap.first_seen, Timestamp::from_second(1_517_230_550).unwrap());
        assert_eq!(tap.last_seen, Timestamp::from_second(1_517_240_237).unwrap());
        assert_eq!(tap.arrival_airport.as_deref(), Some("LPCS"));
        assert_eq!(
            (tap.departure_horizontal_distance, tap.departure_vertical_distance),
            (Some(3808), Some(80))
        );
        assert_eq!(
            (tap.arrival_horizontal_distance, tap.arrival_vertical_distance),
            (Some(14016), Some(708))
        );
        assert_eq!((tap.departure_candidates, tap.arrival_candidates), (Some(2), Some(3)));
        let unnamed = departures.iter().find(|f| f.icao24 == "3c4ad1").unwrap();
        assert_eq!((unnamed.callsign.as_deref(), unnamed.arrival_airport.as_deref()), (None, None));
    }
}

#[tokio::test]
async fn each_airport_is_fetched_once_however_many_users_follow_it() {
    let server = opensky_fake().await;
    let store = Store::memory().unwrap();
    interested(&store, "ann@example.org", &["EDDF", "LPCS"]).await;
    interested(&store, "bob@example.org", &["EDDF"]).await;
    let collector = Collector::new(store.clone(), pool(&server), config(2));
    let reports = collector.collect_all(at(NOW)).await.unwrap();
    assert_eq!(reports.len(), 2);
    let asked = flight_requests(&server).await;
    let count = |endpoint: &str, airport: &str| {
        asked
            .iter()
            .filter(|a| a.endpoint == endpoint && a.airport == airport)
            .count()
    };
    assert_eq!(count("arrival", "EDDF"), 1, "{asked:?}");
    assert_eq!(count("departure", "EDDF"), 1, "{asked:?}");
    assert_eq!(count("arrival", "LPCS"), 1, "{asked:?}");
    assert_eq!(count("departure", "LPCS"), 1, "{asked:?}");
    assert_eq!(asked.len(), 4);
    assert_eq!(
        token_requests(&server).await,
        1,
        "one token for every request"
    );
}

#[tokio::test]
async fn windows_over_two_days_are_refused_before_anything_is_sent() {
    let server = opensky_fake().await;
    let opensky = opensky(&server);
    let error = opensky
        .airport_flights(
            "EDDF",
            Direction::Arrivals,
            at("2018-01-25T00:00:00Z"),
            at("2018-01-27T00:00:01Z"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StatusError::Rejected { status: 0, .. }),
        "{error:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let flights = opensky
        .airport_flights(
            "eddf",
            Direction::Arrivals,
            at("2018-01-25T00:00:00Z"),
            at("2018-01-27T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(flights.len(), 4, "exactly two days is allowed");
}

#[tokio::test]
async fn the_running_collector_fetches_a_triggered_airport_and_stops_on_shutdown() {
    let server = opensky_fake().await;
    let store = Store::memory().unwrap();
    let trigger = Trigger::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = collector::spawn_collector(
        store.clone(),
        pool(&server),
        config(2),
        trigger.clone(),
        async {
            let _ = stopped.await;
        },
    );
    // Nobody follows EDDF, so only the trigger can make it fetched (what
    // `POST /interests` does right after storing the interest).
    trigger.fetch_now("EDDF");
    tokio::time::timeout(Duration::from_secs(20), async {
        while rows(&store, "EDDF").await < 7 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the triggered fetch stores EDDF's flights");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the collector stops on shutdown")
        .unwrap();
}

/// `POST /interests` pulls the running collector's trigger: the airport is
/// fetched at once, and `GET /flights/last/...` turns from 202
/// "collecting" to the most recent flight.
#[tokio::test]
async fn an_interest_posted_to_the_api_is_fetched_at_once() {
    use farewatch::api::{self, ApiConfig, AppState};
    let server = opensky_fake().await;
    let store = Store::memory().unwrap();
    interested(&store, "ann@example.org", &[]).await;
    let trigger = Trigger::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = futures::future::FutureExt::shared(async {
        let _ = stopped.await;
    });
    let collector = collector::spawn_collector(
        store.clone(),
        pool(&server),
        config(2),
        trigger.clone(),
        stopped.clone(),
    );
    let config = ApiConfig {
        operator_token: Some(SecretString::from("operator".to_owned())),
        rate_per_sec: 0.0,
        burst: 1,
    };
    let state = AppState::new(store.clone(), &config).with_collector(trigger);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let api = tokio::spawn(api::serve(listener, state, stopped));
    let client = farewatch::upstream::http::build_client();
    let get_last = || async {
        let response = client
            .get(format!("{base}/flights/last/FRA"))
            .bearer_auth("operator")
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };

    let added: serde_json::Value = client
        .post(format!("{base}/interests"))
        .bearer_auth("operator")
        .json(&serde_json::json!({"email": "ann@example.org", "airport_code": "FRA"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["collection"], "started", "{added}");
    let last = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match get_last().await {
                (200, body) => return body,
                (202, body) => assert_eq!(body["state"], "collecting"),
                other => panic!("{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the interest's airport is fetched");
    // TAP583 (EDDF to LPCS) is the fixtures' latest first_seen.
    assert_eq!(last["flight"]["icao24"], "4951d0", "{last}");
    assert_eq!(last["flight"]["callsign"], "TAP583");
    assert_eq!(last["type"], "departures");

    // Cascais had no flights in the window (404, empty body): collected,
    // so ready with zeros, not "collecting".
    let added: serde_json::Value = client
        .post(format!("{base}/interests"))
        .bearer_auth("operator")
        .json(&serde_json::json!({"email": "ann@example.org", "airport_code": "CAT"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["airport"], "LPCS", "{added}");
    let average = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let response = client
                .get(format!("{base}/flights/average/LPCS"))
                .bearer_auth("operator")
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                return response.json::<serde_json::Value>().await.unwrap();
            }
            assert_eq!(response.status(), 202);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the empty airport is collected");
    assert_eq!(average["state"], "ready");
    assert_eq!(average["window"]["days"], 2.0, "{average}");
    assert_eq!(
        average["counts"],
        serde_json::json!({"arrivals": 0, "departures": 0, "total": 0})
    );

    stop.send(()).unwrap();
    collector.await.unwrap();
    api.await.unwrap().unwrap();
}
