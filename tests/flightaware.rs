//! The FlightAware AeroAPI flight-status provider against a wiremock fake
//! serving the recorded fixtures in `tests/fixtures/status/`.

use std::time::Duration;

use farewatch::status::flightaware::{
    FlightAware, FlightAwareConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT,
};
use farewatch::status::{
    Endpoint, FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery,
};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use serde_json::{json, Value};
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

const API_KEY: &str = "aeroapi-key-never-print-me-0123456789";
/// The fake serves AeroAPI under the same `/aeroapi` prefix as production.
const PREFIX: &str = "/aeroapi";
const UAL1_PATH: &str = "/aeroapi/flights/UAL1";

fn json_reply(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json; charset=UTF-8")
}

fn config(server: &MockServer, timeout: Duration) -> FlightAwareConfig {
    FlightAwareConfig {
        base_url: format!("{}{PREFIX}", server.uri()),
        api_key: SecretString::from(API_KEY),
        timeout,
    }
}

fn provider(server: &MockServer) -> FlightAware {
    FlightAware::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
    )
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn flight(ident: &str, on: Option<Date>) -> StatusQuery {
    StatusQuery::Flight {
        ident: ident.to_owned(),
        date: on,
    }
}

/// Today's UTC date.
fn today() -> Date {
    TimeZone::UTC.to_datetime(Timestamp::now()).date()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn shift(d: Date, n: i64) -> Date {
    d.checked_add(jiff::Span::new().days(n)).unwrap()
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

/// A fake answering `GET /aeroapi/flights/UAL1` with `template`, expected `times` times.
async fn serve(template: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(UAL1_PATH))
        .respond_with(template)
        .expect(times)
        .mount(&server)
        .await;
    server
}

/// The statuses for `query` from a fake serving `body` with HTTP 200.
async fn statuses(body: impl Into<Vec<u8>>, query: &StatusQuery) -> Vec<FlightStatus> {
    let server = serve(json_reply(200, body), 1).await;
    let before = Timestamp::now();
    let mut got = provider(&server).flights(query).await.unwrap();
    let after = Timestamp::now();
    for status in &mut got {
        assert_eq!(status.provider, "flightaware");
        assert!(status.fetched_at >= before && status.fetched_at <= after);
        // Normalised so whole statuses compare equal.
        status.fetched_at = Timestamp::UNIX_EPOCH;
    }
    got
}

async fn error_with(template: ResponseTemplate) -> StatusError {
    let server = serve(template, 1).await;
    provider(&server)
        .flights(&flight("UAL1", None))
        .await
        .unwrap_err()
}

async fn error(status: u16, body: impl Into<Vec<u8>>) -> StatusError {
    error_with(json_reply(status, body)).await
}

#[allow(clippy::too_many_arguments)]
fn endpoint(
    iata: &str,
    icao: &str,
    scheduled: &str,
    estimated: &str,
    actual: Option<&str>,
    delay_minutes: i64,
    terminal: &str,
    gate: Option<&str>,
) -> Endpoint {
    Endpoint {
        iata: Some(iata.to_owned()),
        icao: Some(icao.to_owned()),
        scheduled: Some(ts(scheduled)),
        estimated: Some(ts(estimated)),
        actual: actual.map(ts),
        delay_minutes: Some(delay_minutes),
        terminal: Some(terminal.to_owned()),
        gate: gate.map(str::to_owned),
    }
}

fn ual1(on: &str, state: FlightState, departure: Endpoint, arrival: Endpoint) -> FlightStatus {
    FlightStatus {
        flight_iata: Some("UA1".to_owned()),
        flight_icao: Some("UAL1".to_owned()),
        airline: Some("UA".to_owned()),
        flight_date: Some(date(on)),
        state,
        departure,
        arrival,
        provider: "flightaware".to_owned(),
        fetched_at: Timestamp::UNIX_EPOCH,
        operated_by: None,
        codeshares: vec!["SQ7361".to_owned(), "AC6033".to_owned()],
    }
}

/// The UAL1 fixture's first (scheduled) flight, for editing.
fn template_flight() -> Value {
    let body: Value = serde_json::from_str(&fixture!("flightaware-flights-UAL1.json")).unwrap();
    body["flights"][0].clone()
}

fn reply(flights: Vec<Value>) -> String {
    json!({"links": null, "num_pages": 1, "flights": flights}).to_string()
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_request_without_a_date() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(UAL1_PATH))
        .and(header("x-apikey", API_KEY))
        .and(header("accept", "application/json"))
        .and(query_is(vec![("ident_type", "designator".to_owned())]))
        .respond_with(json_reply(200, fixture!("flightaware-flights-empty.json")))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(
        provider(&server).flights(&flight(" ual 1 ", None)).await,
        Ok(vec![])
    );
}

#[tokio::test]
async fn a_date_asks_for_the_day_either_side_in_utc() {
    let d = shift(today(), -3);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(UAL1_PATH))
        .and(header("x-apikey", API_KEY))
        .and(query_is(vec![
            ("ident_type", "designator".to_owned()),
            ("start", format!("{}T00:00:00Z", shift(d, -1))),
            ("end", format!("{}T00:00:00Z", shift(d, 2))),
        ]))
        .respond_with(json_reply(200, fixture!("flightaware-flights-empty.json")))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(
        provider(&server).flights(&flight("UAL1", Some(d))).await,
        Ok(vec![])
    );
}

#[tokio::test]
async fn a_date_near_the_horizon_is_clipped_to_aeroapis_range() {
    let server = serve(
        json_reply(200, fixture!("flightaware-flights-empty.json")),
        1,
    )
    .await;
    let d = shift(today(), 2);
    let asked_at = Timestamp::now();
    assert_eq!(
        provider(&server).flights(&flight("UAL1", Some(d))).await,
        Ok(vec![])
    );
    let requests = server.received_requests().await.unwrap();
    let param = |name: &str| -> Timestamp {
        requests[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
            .parse()
            .unwrap()
    };
    let (start, end) = (param("start"), param("end"));
    assert_eq!(start, ts(&format!("{}T00:00:00Z", shift(d, -1))));
    assert!(end <= asked_at.checked_add(days(2)).unwrap(), "{end}");
    assert!(end > start, "{start} {end}");
}

#[tokio::test]
async fn dates_outside_aeroapis_range_are_rejected_without_asking() {
    let server = serve(
        json_reply(200, fixture!("flightaware-flights-empty.json")),
        0,
    )
    .await;
    let flightaware = provider(&server);
    for d in [shift(today(), 5), shift(today(), -15)] {
        let error = flightaware
            .flights(&flight("UAL1", Some(d)))
            .await
            .unwrap_err();
        let StatusError::Rejected {
            status: 0, message, ..
        } = &error
        else {
            panic!("expected Rejected with status 0, got {error:?}");
        };
        assert!(message.contains("10 days ago to 2 days ahead"), "{message}");
    }
}

#[tokio::test]
async fn only_flight_lookups_are_supported() {
    let server = serve(
        json_reply(200, fixture!("flightaware-flights-empty.json")),
        0,
    )
    .await;
    let flightaware = provider(&server);
    let (begin, end) = (ts("2026-03-14T00:00:00Z"), ts("2026-03-14T06:00:00Z"));
    let queries = [
        StatusQuery::Filter {
            dep_iata: Some("SFO".to_owned()),
            arr_iata: None,
            state: None,
            limit: 10,
        },
        StatusQuery::Departures {
            airport_icao: "KSFO".to_owned(),
            begin,
            end,
        },
        StatusQuery::Arrivals {
            airport_icao: "WSSS".to_owned(),
            begin,
            end,
        },
    ];
    for query in &queries {
        assert!(!flightaware.supports(query), "{query:?}");
        let error = flightaware.flights(query).await.unwrap_err();
        assert!(
            matches!(error, StatusError::Rejected { status: 0, .. }),
            "{error:?}"
        );
    }
    assert!(flightaware.supports(&flight("UAL1", None)));
    // Not a designator (and never a path): refused before asking.
    for ident in ["", "UA", "UAL1/../../x", "UAL1?max_pages=10", "UAL1%2F"] {
        let error = flightaware.flights(&flight(ident, None)).await.unwrap_err();
        assert!(
            matches!(error, StatusError::Rejected { status: 0, .. }),
            "{ident}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_ignored() {
    let server = serve(
        json_reply(200, fixture!("flightaware-flights-empty.json")),
        1,
    )
    .await;
    let mut config = config(&server, Duration::from_secs(10));
    config.base_url.push('/');
    let flightaware = FlightAware::new(farewatch::upstream::http::build_client(), config);
    assert_eq!(flightaware.flights(&flight("UAL1", None)).await, Ok(vec![]));
}

// ----- the fixtures ----------------------------------------------------------------

#[tokio::test]
async fn ual1_four_flights_with_exact_states_delays_gates_and_instants() {
    let got = statuses(
        fixture!("flightaware-flights-UAL1.json"),
        &flight("UAL1", None),
    )
    .await;
    // Newest first, as AeroAPI sends them. Flight dates are the local
    // departure dates in San Francisco (PDT, UTC-7, in mid-March 2026).
    assert_eq!(
        got,
        [
            ual1(
                "2026-03-16",
                FlightState::Scheduled,
                endpoint(
                    "SFO",
                    "KSFO",
                    "2026-03-16T23:10:00Z",
                    "2026-03-16T23:10:00Z",
                    None,
                    0,
                    "3",
                    Some("G98"),
                ),
                endpoint(
                    "SIN",
                    "WSSS",
                    "2026-03-17T16:10:00Z",
                    "2026-03-17T16:10:00Z",
                    None,
                    0,
                    "3",
                    None,
                ),
            ),
            // "En Route / Delayed": off the gate, so active, 47 minutes late
            // (2820 s) leaving and 36 (2160 s) expected arriving.
            ual1(
                "2026-03-15",
                FlightState::Active,
                endpoint(
                    "SFO",
                    "KSFO",
                    "2026-03-15T23:10:00Z",
                    "2026-03-15T23:57:00Z",
                    Some("2026-03-15T23:57:00Z"),
                    47,
                    "3",
                    Some("G96"),
                ),
                endpoint(
                    "SIN",
                    "WSSS",
                    "2026-03-16T16:10:00Z",
                    "2026-03-16T16:46:00Z",
                    None,
                    36,
                    "3",
                    Some("B8"),
                ),
            ),
            // "Arrived / Gate Arrival": 5 minutes late out, 7 early in.
            ual1(
                "2026-03-14",
                FlightState::Landed,
                endpoint(
                    "SFO",
                    "KSFO",
                    "2026-03-14T23:10:00Z",
                    "2026-03-14T23:15:00Z",
                    Some("2026-03-14T23:15:00Z"),
                    5,
                    "3",
                    Some("G94"),
                ),
                endpoint(
                    "SIN",
                    "WSSS",
                    "2026-03-15T16:10:00Z",
                    "2026-03-15T16:03:00Z",
                    Some("2026-03-15T16:03:00Z"),
                    -7,
                    "3",
                    Some("B6"),
                ),
            ),
            ual1(
                "2026-03-13",
                FlightState::Cancelled,
                endpoint(
                    "SFO",
                    "KSFO",
                    "2026-03-13T23:10:00Z",
                    "2026-03-13T23:10:00Z",
                    None,
                    0,
                    "3",
                    None,
                ),
                endpoint(
                    "SIN",
                    "WSSS",
                    "2026-03-14T16:10:00Z",
                    "2026-03-14T16:10:00Z",
                    None,
                    0,
                    "3",
                    None,
                ),
            ),
        ]
    );
    let disrupted: Vec<bool> = got.iter().map(FlightStatus::is_disrupted).collect();
    assert_eq!(disrupted, [false, true, false, true]);
}

#[tokio::test]
async fn an_empty_reply_is_an_empty_list() {
    let got = statuses(
        fixture!("flightaware-flights-empty.json"),
        &flight("UAL1", None),
    )
    .await;
    assert_eq!(got, []);
    let got = statuses(
        r#"{"links":null,"num_pages":0,"flights":null}"#,
        &flight("UAL1", None),
    )
    .await;
    assert_eq!(got, []);
}

#[tokio::test]
async fn flights_are_kept_by_their_local_departure_date() {
    let d = shift(today(), -3);
    let with_out = |scheduled_out: String, zone: Value| {
        let mut flight = template_flight();
        flight["scheduled_out"] = json!(scheduled_out);
        flight["scheduled_off"] = Value::Null;
        flight["estimated_out"] = Value::Null;
        flight["origin"]["timezone"] = zone;
        flight["gate_origin"] = json!(scheduled_out);
        flight
    };
    let la = json!("America/Los_Angeles");
    let mut off_only = with_out(format!("{d}T18:00:00Z"), la.clone());
    off_only["scheduled_out"] = Value::Null;
    off_only["scheduled_off"] = json!(format!("{d}T18:00:00Z"));
    let mut unplaced = with_out(String::new(), la.clone());
    unplaced["scheduled_out"] = Value::Null;
    let body = reply(vec![
        // The evening before, in San Francisco.
        with_out(format!("{}T23:10:00Z", shift(d, -1)), la.clone()),
        // The day itself.
        with_out(format!("{d}T23:10:00Z"), la.clone()),
        // The next day in UTC, still the evening of the day in San Francisco.
        with_out(format!("{}T03:00:00Z", shift(d, 1)), la.clone()),
        // The next day in San Francisco too.
        with_out(format!("{}T23:10:00Z", shift(d, 1)), la.clone()),
        // No zone: the UTC date decides (in San Francisco this is the day before).
        with_out(format!("{d}T01:00:00Z"), Value::Null),
        // Scheduled runway departure only.
        off_only,
        // No schedule at all: cannot be placed.
        unplaced,
    ]);
    let got = statuses(body, &flight("UAL1", Some(d))).await;
    let kept: Vec<_> = got
        .iter()
        .map(|s| (s.departure.scheduled, s.flight_date))
        .collect();
    assert_eq!(
        kept,
        [
            (Some(ts(&format!("{d}T23:10:00Z"))), Some(d)),
            (Some(ts(&format!("{}T03:00:00Z", shift(d, 1)))), Some(d)),
            (Some(ts(&format!("{d}T01:00:00Z"))), None),
            (Some(ts(&format!("{d}T18:00:00Z"))), Some(d)),
        ]
    );
}

#[tokio::test]
async fn nullable_fields_are_read_leniently() {
    let mut flight = template_flight();
    for key in [
        "ident_iata",
        "ident_icao",
        "operator_iata",
        "cancelled",
        "diverted",
        "departure_delay",
        "arrival_delay",
        "status",
        "gate_origin",
        "terminal_origin",
        "destination",
        "estimated_out",
        "estimated_in",
        "estimated_on",
    ] {
        flight[key] = Value::Null;
    }
    flight["scheduled_in"] = json!("not a time");
    flight["registration"] = json!(42);
    let got = statuses(reply(vec![json!("garbage"), flight]), &flight_query()).await;
    assert_eq!(got.len(), 1);
    let got = &got[0];
    assert_eq!(got.flight_iata, None);
    assert_eq!(got.flight_icao.as_deref(), Some("UAL1"), "from `ident`");
    assert_eq!(got.airline.as_deref(), Some("UAL"), "from `operator_icao`");
    assert_eq!(got.state, FlightState::Scheduled);
    assert_eq!(got.departure.delay_minutes, None);
    assert_eq!(got.departure.gate, None);
    assert_eq!(
        got.departure.estimated,
        Some(ts("2026-03-16T23:26:00Z")),
        "from `estimated_off`"
    );
    assert_eq!(got.arrival.iata, None);
    assert_eq!(
        got.arrival.scheduled,
        Some(ts("2026-03-17T15:56:00Z")),
        "from `scheduled_on`"
    );
    assert_eq!(got.arrival.estimated, None);
}

fn flight_query() -> StatusQuery {
    flight("UAL1", None)
}

#[tokio::test]
async fn diverted_and_text_only_states() {
    let mut diverted = template_flight();
    diverted["diverted"] = json!(true);
    diverted["status"] = json!("Diverted");
    let mut late = template_flight();
    late["departure_delay"] = json!(1800);
    late["status"] = json!("Scheduled / Delayed");
    let mut landed_by_text = template_flight();
    landed_by_text["status"] = json!("Landed / Taxiing");
    let got = statuses(reply(vec![diverted, late, landed_by_text]), &flight_query()).await;
    let states: Vec<_> = got
        .iter()
        .map(|s| (s.state, s.departure.delay_minutes))
        .collect();
    assert_eq!(
        states,
        [
            (FlightState::Diverted, Some(0)),
            (FlightState::Delayed, Some(30)),
            (FlightState::Landed, Some(0)),
        ]
    );
}

// ----- errors ------------------------------------------------------------------------

#[tokio::test]
async fn a_400_is_rejected_with_aeroapis_reason_and_detail() {
    assert_eq!(
        error(400, fixture!("flightaware-error-400.json")).await,
        StatusError::Rejected {
            status: 400,
            code: Some("INVALID_ARGUMENT".into()),
            message: "Invalid argument: start: Value must be no earlier than 10 days in the past"
                .into(),
        }
    );
}

#[tokio::test]
async fn a_401_or_403_is_an_auth_error_naming_the_variable() {
    for status in [401, 403] {
        let error = error(status, fixture!("flightaware-error-401.json")).await;
        let StatusError::Auth(message) = &error else {
            panic!("expected Auth, got {error:?}");
        };
        assert!(
            message.contains("Unauthorized: Invalid API key"),
            "{message}"
        );
        assert!(message.contains("FLIGHTAWARE_API_KEY"), "{message}");
        assert!(error.opens_circuit());
    }
}

#[tokio::test]
async fn a_429_is_rate_limited() {
    assert_eq!(
        error(429, fixture!("flightaware-error-429.json")).await,
        StatusError::RateLimited { retry_after: None }
    );
    let template =
        json_reply(429, fixture!("flightaware-error-429.json")).insert_header("retry-after", "6");
    assert_eq!(
        error_with(template).await,
        StatusError::RateLimited {
            retry_after: Some(Duration::from_secs(6))
        }
    );
}

#[tokio::test]
async fn a_404_is_rejected() {
    let body = json!({"title": "Not found", "reason": "NOT_FOUND", "detail": "Unknown ident", "status": 404});
    assert_eq!(
        error(404, body.to_string()).await,
        StatusError::Rejected {
            status: 404,
            code: Some("NOT_FOUND".into()),
            message: "Not found: Unknown ident".into(),
        }
    );
}

#[tokio::test]
async fn a_500_is_upstream() {
    let body = json!({"title": "Internal Server Error", "reason": "INTERNAL", "detail": "Please retry", "status": 500});
    assert_eq!(
        error(500, body.to_string()).await,
        StatusError::Upstream {
            status: 500,
            code: Some("INTERNAL".into()),
            message: "Internal Server Error: Please retry".into(),
        }
    );
    let html = "<html>\n<head><title>502 Bad Gateway</title></head></html>";
    let error = error_with(ResponseTemplate::new(502).set_body_raw(html, "text/html")).await;
    assert_eq!(
        error,
        StatusError::Upstream {
            status: 502,
            code: None,
            message:
                "unrecognised error body: <html> <head><title>502 Bad Gateway</title></head></html>"
                    .into(),
        }
    );
}

// ----- unreadable successes --------------------------------------------------------

#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let full = fixture!("flightaware-flights-UAL1.json");
    let truncated = error(200, &full.as_bytes()[..full.len() / 2]).await;
    let StatusError::Decode(message) = &truncated else {
        panic!("expected Decode, got {truncated:?}");
    };
    assert!(message.contains("EOF while parsing"), "{message}");

    let missing = error(200, r#"{"links":null,"num_pages":1}"#).await;
    let StatusError::Decode(message) = &missing else {
        panic!("expected Decode, got {missing:?}");
    };
    assert!(message.contains("no `flights`"), "{message}");

    for body in [r#"{"flights":{"ident":"UAL1"}}"#, "null", "not json"] {
        let error = error(200, body).await;
        assert!(matches!(error, StatusError::Decode(_)), "{body}: {error:?}");
    }
}

#[tokio::test]
async fn an_html_200_is_a_decode_error_saying_what_arrived() {
    let template = ResponseTemplate::new(200)
        .set_body_raw("<html><body>Service maintenance</body></html>", "text/html");
    let error = error_with(template).await;
    let StatusError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("`text/html`"), "{message}");
    assert!(message.contains("Service maintenance"), "{message}");
}

// ----- transport -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_reply_times_out_after_the_configured_timeout() {
    // Not from wiremock's pool: with the clock paused the client may give up
    // before the server has even read the request, and a pooled server would
    // record that stray request in whichever test uses it next.
    let server = MockServer::builder().start().await;
    Mock::given(method("GET"))
        .and(path(UAL1_PATH))
        .respond_with(
            json_reply(200, fixture!("flightaware-flights-UAL1.json"))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let flightaware = FlightAware::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = flightaware.flights(&flight("UAL1", None)).await;
    assert_eq!(result, Err(StatusError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_without_the_key() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}{PREFIX}", closed.local_addr().unwrap());
    drop(closed);
    let flightaware = FlightAware::new(
        farewatch::upstream::http::build_client(),
        FlightAwareConfig {
            base_url,
            api_key: SecretString::from(API_KEY),
            timeout: Duration::from_secs(5),
        },
    );

    let error = flightaware
        .flights(&flight("UAL1", None))
        .await
        .unwrap_err();
    assert!(matches!(error, StatusError::Connect(_)), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(API_KEY), "{text}");
}

#[tokio::test]
async fn replies_echoing_the_key_are_redacted_in_errors() {
    let body = |status: u16| {
        json!({"title": "Error", "reason": "X", "detail": format!("x-apikey: {API_KEY}"), "status": status})
            .to_string()
    };
    let auth = error(401, body(401)).await;
    let rejected = error(400, body(400)).await;
    let upstream = error(500, body(500)).await;
    let html = error_with(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{API_KEY}</pre>"), "text/html"),
    )
    .await;
    let garbled = error(200, format!("{{\"{API_KEY}\": [")).await;
    for error in [auth, rejected, upstream, html, garbled] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(API_KEY), "{text}");
    }
}

// ----- configuration ---------------------------------------------------------------

#[test]
fn debug_output_never_shows_the_key() {
    let config = FlightAwareConfig {
        base_url: "http://127.0.0.1:9/aeroapi".to_owned(),
        api_key: SecretString::from(API_KEY),
        timeout: Duration::from_secs(10),
    };
    let flightaware = FlightAware::new(farewatch::upstream::http::build_client(), config.clone());
    for debug in [
        format!("{flightaware:?}"),
        format!("{flightaware:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(API_KEY), "{debug}");
        assert!(debug.contains("127.0.0.1:9"), "{debug}");
    }
}

#[test]
fn defaults() {
    let config = FlightAwareConfig::new(SecretString::from(API_KEY));
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(DEFAULT_BASE_URL, "https://aeroapi.flightaware.com/aeroapi");
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);

    let flightaware = FlightAware::new(
        farewatch::upstream::http::build_client(),
        FlightAwareConfig {
            timeout: Duration::from_secs(12),
            ..config
        },
    );
    assert_eq!(flightaware.name(), "flightaware");
    assert_eq!(flightaware.timeout(), Duration::from_secs(12));
}
