//! The OpenSky status provider against a wiremock fake serving the recorded
//! fixtures in `tests/fixtures/status/`.

use std::time::Duration;

use farewatch::status::opensky::{
    OpenSky, OpenSkyConfig, DEFAULT_AUTH_URL, DEFAULT_BASE_URL, DEFAULT_TIMEOUT,
};
use farewatch::status::{
    Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery,
};
use jiff::Timestamp;
use secrecy::SecretString;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

macro_rules! fixture {
    ($name:literal) => {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/status/",
            $name
        ))
        .expect(concat!("fixture ", $name))
    };
}

const CLIENT_ID: &str = "farewatch-api-client";
const CLIENT_SECRET: &str = "s3cr3t-never-print-me";
/// `access_token` in `opensky-token.json`.
const FIXTURE_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIn0.fake.signature";
/// The real token path, served by the fake under its own root.
const TOKEN_PATH: &str = "/auth/realms/opensky-network/protocol/openid-connect/token";
/// The fake's API sits under `/api`, like the real one, to check the base URL is joined.
const DEPARTURES_PATH: &str = "/api/flights/departure";
const ARRIVALS_PATH: &str = "/api/flights/arrival";

/// 2018-01-29T10:00:00Z and 14:00:00Z, around the fixtures' flights.
const BEGIN: i64 = 1_517_220_000;
const END: i64 = 1_517_234_400;

fn json(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json")
}

/// A token reply like the fixture's, with another `access_token`.
fn token_reply(token: &str) -> ResponseTemplate {
    json(
        200,
        fixture!("opensky-token.json").replace(FIXTURE_TOKEN, token),
    )
}

fn config(server: &MockServer, timeout: Duration) -> OpenSkyConfig {
    OpenSkyConfig {
        base_url: format!("{}/api/", server.uri()),
        auth_url: format!("{}{TOKEN_PATH}", server.uri()),
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        timeout,
    }
}

fn provider(server: &MockServer) -> OpenSky {
    OpenSky::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
    )
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn departures(airport: &str) -> StatusQuery {
    StatusQuery::Departures {
        airport_icao: airport.to_owned(),
        begin: at(BEGIN),
        end: at(END),
    }
}

fn arrivals(airport: &str) -> StatusQuery {
    StatusQuery::Arrivals {
        airport_icao: airport.to_owned(),
        begin: at(BEGIN),
        end: at(END),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The token endpoint answering with the fixture token.
async fn mount_token(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .expect(times)
        .named("token")
        .mount(server)
        .await;
}

/// The token endpoint handing out `first` once, then `second` for every later request.
async fn mount_two_tokens(server: &MockServer, first: &str, second: &str, second_times: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(first))
        .up_to_n_times(1)
        .expect(1)
        .named("first token")
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(second))
        .expect(second_times)
        .named("second token")
        .with_priority(2)
        .mount(server)
        .await;
}

/// `GET path` answering `template` to requests signed with `token`.
async fn mount_get(
    server: &MockServer,
    at_path: &str,
    token: &str,
    template: ResponseTemplate,
    times: u64,
) {
    Mock::given(method("GET"))
        .and(path(at_path))
        .and(header("authorization", bearer(token).as_str()))
        .respond_with(template)
        .expect(times)
        .named(format!("GET {at_path} with {token}"))
        .mount(server)
        .await;
}

/// Matches when the request's form body has exactly these fields (any order).
fn form_is(expected: &'static [(&'static str, &'static str)]) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        let mut got: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        got == want
    }
}

/// Matches when the query string has exactly these parameters (any order).
fn query_is(expected: Vec<(&'static str, String)>) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        let mut got: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        want.sort();
        got == want
    }
}

/// A record as the provider should map it (one argument per column of the fixture).
#[allow(clippy::too_many_arguments)]
fn record(
    callsign: Option<&str>,
    airline: Option<&str>,
    from: Option<&str>,
    first_seen: i64,
    to: Option<&str>,
    last_seen: i64,
    state: FlightState,
    fetched_at: Timestamp,
) -> FlightStatus {
    FlightStatus {
        flight_iata: None,
        flight_icao: callsign.map(str::to_owned),
        airline: airline.map(str::to_owned),
        flight_date: None,
        state,
        departure: Endpoint {
            icao: from.map(str::to_owned),
            actual: Some(at(first_seen)),
            ..Endpoint::default()
        },
        arrival: Endpoint {
            icao: to.map(str::to_owned),
            actual: Some(at(last_seen)),
            ..Endpoint::default()
        },
        provider: "opensky".to_owned(),
        fetched_at,
        operated_by: None,
        codeshares: Vec::new(),
    }
}

/// The one `fetched_at` of a reply, checked to lie within the lookup.
fn fetched_at(flights: &[FlightStatus], before: Timestamp) -> Timestamp {
    let at = flights[0].fetched_at;
    assert!(flights.iter().all(|f| f.fetched_at == at));
    assert!(before <= at && at <= Timestamp::now(), "{at}");
    at
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_token_and_departures_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form_is(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DEPARTURES_PATH))
        .and(query_is(vec![
            ("airport", "EDDF".to_owned()),
            ("begin", BEGIN.to_string()),
            ("end", END.to_string()),
        ]))
        .and(header("authorization", bearer(FIXTURE_TOKEN).as_str()))
        .and(header("accept", "application/json"))
        .respond_with(json(200, fixture!("opensky-departures-EDDF.json")))
        .expect(1)
        .mount(&server)
        .await;

    let flights = provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap();
    assert_eq!(flights.len(), 3);
}

#[tokio::test]
async fn arrivals_go_to_the_arrival_endpoint_with_a_normalised_airport() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(ARRIVALS_PATH))
        .and(query_is(vec![
            ("airport", "EDDF".to_owned()),
            ("begin", BEGIN.to_string()),
            ("end", END.to_string()),
        ]))
        .respond_with(json(200, fixture!("opensky-arrivals-EDDF.json")))
        .expect(1)
        .mount(&server)
        .await;

    let flights = provider(&server)
        .flights(&arrivals(" eddf "))
        .await
        .unwrap();
    assert_eq!(flights.len(), 4);
}

// ----- successful lookups ---------------------------------------------------------

#[tokio::test]
async fn maps_the_eddf_arrivals_fixture_to_exact_records() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        json(200, fixture!("opensky-arrivals-EDDF.json")),
        1,
    )
    .await;

    let before = Timestamp::now();
    let flights = provider(&server).flights(&arrivals("EDDF")).await.unwrap();
    let now = fetched_at(&flights, before);
    let landed = FlightState::Landed;
    let eddf = Some("EDDF");
    #[rustfmt::skip]
    let expected = vec![
        record(Some("DLH1113"), Some("DLH"), Some("LEMD"), 1_517_221_822, eddf, 1_517_227_901, landed, now),
        record(Some("EIN654"), Some("EIN"), Some("EIDW"), 1_517_224_409, eddf, 1_517_228_688, landed, now),
        record(Some("CES219"), Some("CES"), Some("ZSPD"), 1_517_181_734, eddf, 1_517_229_377, landed, now),
        // No departure airport identified: kept as None, not guessed.
        record(Some("DLH9CK"), Some("DLH"), None, 1_517_226_110, eddf, 1_517_230_176, landed, now),
    ];
    assert_eq!(flights, expected);
}

#[tokio::test]
async fn maps_the_eddf_departures_fixture_to_exact_records() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        DEPARTURES_PATH,
        FIXTURE_TOKEN,
        json(200, fixture!("opensky-departures-EDDF.json")),
        1,
    )
    .await;

    let before = Timestamp::now();
    let flights = provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap();
    let now = fetched_at(&flights, before);
    let eddf = Some("EDDF");
    #[rustfmt::skip]
    let expected = vec![
        record(Some("TAP583"), Some("TAP"), eddf, 1_517_230_550, Some("LPCS"), 1_517_240_237, FlightState::Landed, now),
        record(Some("DLH900"), Some("DLH"), eddf, 1_517_227_512, Some("EGLL"), 1_517_231_870, FlightState::Landed, now),
        // No callsign and no arrival airport: nothing to call it by, and
        // nowhere known that it landed, so it stays Active.
        record(None, None, eddf, 1_517_229_033, None, 1_517_232_604, FlightState::Active, now),
    ];
    assert_eq!(flights, expected);
    assert!(flights.iter().all(|f| f.departure.gate.is_none()
        && f.departure.scheduled.is_none()
        && f.departure.delay_minutes.is_none()));
}

#[tokio::test]
async fn a_flight_last_seen_in_the_future_is_active() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let soon = Timestamp::now().as_second() + 3600;
    let body = format!(
        r#"[{{"icao24":"3c6744","firstSeen":{BEGIN},"lastSeen":{soon},
              "estDepartureAirport":"EDDF","estArrivalAirport":"EGLL","callsign":"DLH900  "}}]"#
    );
    mount_get(&server, DEPARTURES_PATH, FIXTURE_TOKEN, json(200, body), 1).await;

    let flights = provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap();
    assert_eq!(flights[0].state, FlightState::Active);
    assert_eq!(flights[0].arrival.actual, Some(at(soon)));
}

#[tokio::test]
async fn a_404_with_an_empty_body_means_no_flights() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        1,
    )
    .await;

    let flights = provider(&server).flights(&arrivals("EDDF")).await;
    assert_eq!(flights, Ok(vec![]));
}

#[tokio::test]
async fn an_empty_array_means_no_flights_too() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(&server, ARRIVALS_PATH, FIXTURE_TOKEN, json(200, "[]"), 1).await;

    assert_eq!(
        provider(&server).flights(&arrivals("EDDF")).await,
        Ok(vec![])
    );
}

// ----- the token ------------------------------------------------------------------

#[tokio::test]
async fn reuses_the_token_across_lookups() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        DEPARTURES_PATH,
        FIXTURE_TOKEN,
        json(200, fixture!("opensky-departures-EDDF.json")),
        2,
    )
    .await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        1,
    )
    .await;

    let opensky = provider(&server);
    opensky.flights(&departures("EDDF")).await.unwrap();
    opensky.flights(&arrivals("EDDF")).await.unwrap();
    opensky.flights(&departures("EDDF")).await.unwrap();
}

#[tokio::test]
async fn a_token_without_expires_in_is_assumed_to_last_30_minutes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(json(
            200,
            format!(r#"{{"access_token":"{FIXTURE_TOKEN}"}}"#),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        2,
    )
    .await;

    let opensky = provider(&server);
    opensky.flights(&arrivals("EDDF")).await.unwrap();
    opensky.flights(&arrivals("EDDF")).await.unwrap();
}

#[tokio::test]
async fn a_token_within_30_seconds_of_expiry_is_replaced_before_use() {
    let server = MockServer::start().await;
    let short_lived = fixture!("opensky-token.json").replace("1800", "25");
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(json(200, short_lived))
        .expect(2)
        .mount(&server)
        .await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        2,
    )
    .await;

    let opensky = provider(&server);
    opensky.flights(&arrivals("EDDF")).await.unwrap();
    opensky.flights(&arrivals("EDDF")).await.unwrap();
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_replays() {
    let server = MockServer::start().await;
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    mount_get(
        &server,
        DEPARTURES_PATH,
        "old-token",
        ResponseTemplate::new(401),
        1,
    )
    .await;
    mount_get(
        &server,
        DEPARTURES_PATH,
        "new-token",
        json(200, fixture!("opensky-departures-EDDF.json")),
        1,
    )
    .await;

    let flights = provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap();
    assert_eq!(flights[0].flight_icao.as_deref(), Some("TAP583"));
    // Exactly two token requests: `mount_two_tokens` expects one of each.
}

#[tokio::test]
async fn a_second_401_after_refreshing_is_an_auth_error_naming_the_variables() {
    let server = MockServer::start().await;
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    Mock::given(method("GET"))
        .and(path(DEPARTURES_PATH))
        .respond_with(json(
            401,
            r#"{"error":"invalid_token","error_description":"Token verification failed"}"#,
        ))
        .expect(2)
        .mount(&server)
        .await;

    let error = provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap_err();
    let StatusError::Auth(message) = error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("Token verification failed"), "{message}");
    assert!(
        message.contains("check OPENSKY_CLIENT_ID/OPENSKY_CLIENT_SECRET"),
        "{message}"
    );
}

#[tokio::test]
async fn concurrent_401s_cause_exactly_one_refresh() {
    let server = MockServer::start().await;
    // One token for the first requests, one refresh: two token requests in all.
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        "old-token",
        ResponseTemplate::new(401),
        20,
    )
    .await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        "new-token",
        json(200, fixture!("opensky-arrivals-EDDF.json")),
        20,
    )
    .await;

    // Polled together in one task: the 20 lookups queue on the token lock
    // behind the first fetch, all sign with the old token in the same pass,
    // and then all see a 401 for it. Spawned tasks on a busy machine may
    // instead start after the refresh, which would prove nothing.
    let opensky = provider(&server);
    let query = arrivals("EDDF");
    let results = futures::future::join_all((0..20).map(|_| opensky.flights(&query))).await;
    for result in results {
        assert_eq!(result.unwrap().len(), 4);
    }
}

#[tokio::test]
async fn invalid_client_credentials_are_an_auth_error_without_a_lookup() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(json(
            401,
            r#"{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}"#,
        ))
        // Twenty lookups waiting for the token share the one failed request.
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, DEPARTURES_PATH, FIXTURE_TOKEN, json(200, "[]"), 0).await;

    let opensky = provider(&server);
    let query = departures("EDDF");
    let results = futures::future::join_all((0..20).map(|_| opensky.flights(&query))).await;
    for result in results {
        let error = result.unwrap_err();
        let StatusError::Auth(message) = error else {
            panic!("expected Auth, got {error:?}");
        };
        assert!(message.contains("HTTP 401"), "{message}");
        assert!(message.contains("invalid_client"), "{message}");
        assert!(message.contains("OPENSKY_CLIENT_SECRET"), "{message}");
    }
}

#[tokio::test]
async fn a_token_endpoint_outage_is_upstream_and_a_later_lookup_retries_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        1,
    )
    .await;

    let opensky = provider(&server);
    let error = opensky.flights(&arrivals("EDDF")).await.unwrap_err();
    assert!(
        matches!(error, StatusError::Upstream { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(opensky.flights(&arrivals("EDDF")).await, Ok(vec![]));
}

#[tokio::test]
async fn a_non_json_token_reply_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>login</html>", "text/html"))
        .mount(&server)
        .await;

    let error = provider(&server)
        .flights(&arrivals("EDDF"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        StatusError::Decode(
            "token reply: expected JSON, got `text/html`: <html>login</html>".into()
        )
    );
}

// ----- errors ---------------------------------------------------------------------

/// The error for one departures lookup answered with `template`.
async fn lookup_error(template: ResponseTemplate) -> StatusError {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(&server, DEPARTURES_PATH, FIXTURE_TOKEN, template, 1).await;
    provider(&server)
        .flights(&departures("EDDF"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_429_is_rate_limited_for_as_long_as_the_header_says() {
    let error = lookup_error(
        ResponseTemplate::new(429).insert_header("X-Rate-Limit-Retry-After-Seconds", "37"),
    )
    .await;
    assert_eq!(
        error,
        StatusError::RateLimited {
            retry_after: Some(Duration::from_secs(37))
        }
    );
}

#[tokio::test]
async fn a_429_without_the_header_is_rate_limited_without_a_wait() {
    let error = lookup_error(ResponseTemplate::new(429)).await;
    assert_eq!(error, StatusError::RateLimited { retry_after: None });
}

#[tokio::test]
async fn a_400_is_rejected_with_the_reason() {
    let error = lookup_error(json(
        400,
        r#"{"status":400,"error":"Bad Request","message":"The time interval must be smaller than 2 days"}"#,
    ))
    .await;
    assert_eq!(
        error,
        StatusError::Rejected {
            status: 400,
            code: None,
            message: "Bad Request: The time interval must be smaller than 2 days".into(),
        }
    );
}

#[tokio::test]
async fn a_404_with_a_body_is_rejected_not_empty() {
    // A wrong base URL, say: a web server's page, not OpenSky's "no flights".
    let error =
        lookup_error(ResponseTemplate::new(404).set_body_raw("<h1>Not Found</h1>", "text/html"))
            .await;
    assert_eq!(
        error,
        StatusError::Rejected {
            status: 404,
            code: None,
            message: "unrecognised error body: <h1>Not Found</h1>".into(),
        }
    );
}

#[tokio::test]
async fn a_403_is_an_auth_error() {
    let error = lookup_error(ResponseTemplate::new(403)).await;
    let StatusError::Auth(message) = error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(message.contains("OPENSKY_CLIENT_ID"), "{message}");
}

#[tokio::test]
async fn a_5xx_is_upstream() {
    let error = lookup_error(
        ResponseTemplate::new(502).set_body_raw("<html>\n<b>Bad gateway</b>\n</html>", "text/html"),
    )
    .await;
    assert_eq!(
        error,
        StatusError::Upstream {
            status: 502,
            code: None,
            message: "unrecognised error body: <html> <b>Bad gateway</b> </html>".into(),
        }
    );
    let error = lookup_error(ResponseTemplate::new(500)).await;
    assert!(
        matches!(error, StatusError::Upstream { status: 500, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn truncated_json_is_a_decode_error_with_an_excerpt() {
    let body = fixture!("opensky-arrivals-EDDF.json");
    let error = lookup_error(json(200, &body[..300])).await;
    let StatusError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(
        message.starts_with("flights: EOF while parsing"),
        "{message}"
    );
    assert!(message.contains(r#"[ { "icao24": "3c6586""#), "{message}");
}

#[tokio::test]
async fn an_object_instead_of_a_list_is_a_decode_error() {
    let error = lookup_error(json(200, r#"{"flights":[]}"#)).await;
    assert!(
        matches!(&error, StatusError::Decode(m) if m.contains("expected a sequence")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_record_with_an_impossible_time_is_a_decode_error_naming_it() {
    let body = r#"[{"callsign":"DLH900  ","firstSeen":1517227512,"lastSeen":1517231870},
                   {"callsign":"DLH901  ","firstSeen":99999999999999,"lastSeen":1517231870}]"#;
    let error = lookup_error(json(200, body)).await;
    assert_eq!(
        error,
        StatusError::Decode(
            "flight record #2: firstSeen 99999999999999 is not a valid time".into()
        )
    );
}

#[tokio::test]
async fn an_html_200_is_a_decode_error_saying_what_arrived() {
    let error = lookup_error(
        ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
    )
    .await;
    assert_eq!(
        error,
        StatusError::Decode(
            "flights: expected JSON, got `text/html`: <html>maintenance</html>".into()
        )
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_decode_error() {
    let huge = vec![b' '; farewatch::upstream::http::MAX_BODY_BYTES + 1];
    let error = lookup_error(json(200, huge)).await;
    assert_eq!(
        error,
        StatusError::Decode(format!(
            "reply larger than {} bytes",
            farewatch::upstream::http::MAX_BODY_BYTES
        ))
    );
}

#[tokio::test]
async fn replies_echoing_the_secret_or_the_token_are_redacted_in_errors() {
    let echo = format!("client_secret={CLIENT_SECRET} Authorization: Bearer {FIXTURE_TOKEN}");
    let rejected = lookup_error(json(
        400,
        format!(r#"{{"error":"Bad Request","message":"{echo}"}}"#),
    ))
    .await;
    let html = lookup_error(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = lookup_error(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    // The token endpoint can only echo the secret: no token exists yet.
    let token_endpoint = {
        let server = MockServer::start().await;
        let echo = format!("client_secret={CLIENT_SECRET}");
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(json(
                400,
                format!(r#"{{"error":"invalid_request","error_description":"{echo}"}}"#),
            ))
            .mount(&server)
            .await;
        provider(&server)
            .flights(&departures("EDDF"))
            .await
            .unwrap_err()
    };

    for error in [rejected, html, proxy, token_endpoint] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert!(!text.contains(FIXTURE_TOKEN), "{text}");
    }
}

// ----- transport ------------------------------------------------------------------

#[tokio::test]
async fn a_slow_lookup_times_out_after_the_configured_timeout() {
    // Not from wiremock's pool: with the clock paused the client may give up
    // before the server has even read the request, and a pooled server would
    // record that stray request in whichever test uses it next.
    let server = MockServer::builder().start().await;
    mount_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(DEPARTURES_PATH))
        .respond_with(json(200, "[]"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DEPARTURES_PATH))
        .respond_with(json(200, "[]").set_delay(Duration::from_secs(60)))
        .with_priority(2)
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let opensky = OpenSky::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );
    // The token is fetched on the real clock first: paused, the clock jumps
    // whenever the runtime waits on the fake server, which could time the
    // token request out instead.
    assert_eq!(opensky.flights(&departures("EDDF")).await, Ok(vec![]));

    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let result = opensky.flights(&departures("EDDF")).await;
    assert_eq!(result, Err(StatusError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_token_endpoint_times_out_without_a_lookup() {
    let server = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    mount_get(&server, DEPARTURES_PATH, FIXTURE_TOKEN, json(200, "[]"), 0).await;
    let timeout = Duration::from_secs(3);
    let opensky = OpenSky::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = opensky.flights(&departures("EDDF")).await;
    assert_eq!(result, Err(StatusError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = OpenSkyConfig::new(CLIENT_ID, SecretString::from(CLIENT_SECRET));
    config.base_url = base.clone();
    config.auth_url = format!("{base}{TOKEN_PATH}");
    config.timeout = Duration::from_secs(5);
    let opensky = OpenSky::new(farewatch::upstream::http::build_client(), config);

    let error = opensky.flights(&departures("EDDF")).await.unwrap_err();
    assert!(matches!(error, StatusError::Connect(_)), "{error:?}");
}

// ----- what it answers ------------------------------------------------------------

#[tokio::test]
async fn flight_and_filter_queries_are_unsupported_and_never_sent() {
    let server = MockServer::start().await;
    let opensky = provider(&server);
    let unsupported = [
        StatusQuery::Flight {
            ident: "LH400".into(),
            date: None,
        },
        StatusQuery::Filter {
            dep_iata: Some("FRA".into()),
            arr_iata: None,
            state: None,
            limit: 10,
        },
    ];
    for query in unsupported {
        assert!(!opensky.supports(&query));
        let error = opensky.flights(&query).await.unwrap_err();
        assert!(
            matches!(error, StatusError::Rejected { status: 0, .. }),
            "{error:?}"
        );
    }
    assert!(opensky.supports(&departures("EDDF")));
    assert!(opensky.supports(&arrivals("EDDF")));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_airports_and_windows_are_rejected_before_spending_credits() {
    let server = MockServer::start().await;
    let opensky = provider(&server);
    let backwards = StatusQuery::Departures {
        airport_icao: "EDDF".into(),
        begin: at(END),
        end: at(BEGIN),
    };
    for query in [
        departures("FRA"),
        arrivals("ED DF"),
        arrivals(""),
        backwards,
    ] {
        let error = opensky.flights(&query).await.unwrap_err();
        assert!(
            matches!(error, StatusError::Rejected { status: 0, .. }),
            "{query:?}: {error:?}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_output_never_shows_the_secret_or_the_token() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_get(
        &server,
        ARRIVALS_PATH,
        FIXTURE_TOKEN,
        ResponseTemplate::new(404),
        1,
    )
    .await;
    let config = config(&server, Duration::from_secs(10));
    let opensky = OpenSky::new(farewatch::upstream::http::build_client(), config.clone());
    opensky.flights(&arrivals("EDDF")).await.unwrap();

    for debug in [
        format!("{opensky:?}"),
        format!("{opensky:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(CLIENT_SECRET), "{debug}");
        assert!(!debug.contains(FIXTURE_TOKEN), "{debug}");
        assert!(debug.contains(CLIENT_ID), "{debug}");
    }
}

#[test]
fn defaults_point_at_the_real_service() {
    let config = OpenSkyConfig::new(CLIENT_ID, SecretString::from(CLIENT_SECRET));
    assert_eq!(config.base_url, "https://opensky-network.org/api");
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(
        config.auth_url,
        "https://auth.opensky-network.org/auth/realms/opensky-network/protocol/openid-connect/token"
    );
    assert_eq!(config.auth_url, DEFAULT_AUTH_URL);
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);
    let opensky = OpenSky::new(farewatch::upstream::http::build_client(), config);
    assert_eq!(opensky.name(), "opensky");
    assert_eq!(opensky.timeout(), DEFAULT_TIMEOUT);
}
