//! The Kiwi Tequila fare source against a wiremock fake serving the recorded
//! fixtures in `tests/fixtures/fares/`.

use std::time::Duration;

use farewatch::domain::{Currency, Iata, Itinerary, LookupKey, Money, Quote};
use farewatch::fare::tequila::{Tequila, TequilaConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT};
use farewatch::fare::FareSource;
use farewatch::upstream::UpstreamError;
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

macro_rules! fixture {
    ($name:literal) => {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fares/",
            $name
        ))
        .expect(concat!("fixture ", $name))
    };
}

const API_KEY: &str = "tequila-k3y-never-print-me";
const SEARCH_PATH: &str = "/v2/search";

fn json_reply(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json")
}

fn config(server: &MockServer, timeout: Duration) -> TequilaConfig {
    TequilaConfig {
        base_url: server.uri(),
        api_key: SecretString::from(API_KEY),
        timeout,
    }
}

fn source(server: &MockServer) -> Tequila {
    Tequila::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
    )
}

fn key(
    origin: &str,
    destination: &str,
    depart: &str,
    ret: Option<&str>,
    adults: u8,
    currency: &str,
) -> LookupKey {
    LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse(destination).unwrap(),
        depart: depart.parse().unwrap(),
        return_date: ret.map(|r| r.parse().unwrap()),
        adults,
        currency: Currency::parse(currency).unwrap(),
        max_stops: None,
    }
}

/// The day the LON-NYC fixture's itineraries leave.
fn lon_nyc() -> LookupKey {
    key("LON", "NYC", "2026-12-10", None, 1, "GBP")
}

fn money(minor: i64, currency: &str) -> Money {
    Money::from_minor(minor, Currency::parse(currency).unwrap())
}

/// `deep_link` of the fixture's itinerary `index`.
fn deep_link(fixture: &str, index: usize) -> String {
    let reply: Value = serde_json::from_str(fixture).unwrap();
    reply["data"][index]["deep_link"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Matches when the query string has exactly these parameters (any order).
fn query_is(expected: Vec<(&'static str, &'static str)>) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        let mut got: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        got == want
    }
}

/// `/v2/search` answering `template` once, for `key`.
async fn search_with(
    template: ResponseTemplate,
    key: &LookupKey,
) -> Result<Option<Quote>, UpstreamError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    source(&server).cheapest(key).await
}

async fn search_error(template: ResponseTemplate) -> UpstreamError {
    search_with(template, &lon_nyc()).await.unwrap_err()
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_one_way_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("fly_from", "LON"),
            ("fly_to", "NYC"),
            ("date_from", "10/12/2026"),
            ("date_to", "10/12/2026"),
            ("flight_type", "oneway"),
            ("adults", "1"),
            ("selected_cabins", "M"),
            ("curr", "GBP"),
            ("sort", "price"),
            ("limit", "20"),
        ]))
        .and(header("apikey", API_KEY))
        .and(header("accept", "application/json"))
        .respond_with(json_reply(200, fixture!("tequila-search-LON-NYC.json")))
        .expect(1)
        .mount(&server)
        .await;

    let quote = source(&server).cheapest(&lon_nyc()).await.unwrap();
    assert_eq!(quote.unwrap().price, money(271_35, "GBP"));
}

#[tokio::test]
async fn a_round_trip_for_two_adults_asks_for_the_return_day() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("fly_from", "LON"),
            ("fly_to", "PAR"),
            ("date_from", "22/11/2023"),
            ("date_to", "22/11/2023"),
            ("return_from", "05/12/2023"),
            ("return_to", "05/12/2023"),
            ("flight_type", "round"),
            ("adults", "2"),
            ("selected_cabins", "M"),
            ("curr", "EUR"),
            ("sort", "price"),
            ("limit", "20"),
        ]))
        .and(header("apikey", API_KEY))
        .respond_with(json_reply(
            200,
            fixture!("tequila-search-LON-PAR-captured.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let key = key("LON", "PAR", "2023-11-22", Some("2023-12-05"), 2, "EUR");
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // The captured reply is in GBP although EUR was asked for here: the
    // reply's own `currency` is what the price is in.
    assert_eq!(quote.price, money(54_00, "GBP"));
}

// ----- successful searches ---------------------------------------------------

#[tokio::test]
async fn prices_the_lon_nyc_fixture_at_its_cheapest_itinerary() {
    let body = fixture!("tequila-search-LON-NYC.json");
    // The file holds 271.35 (FI via KEF), 389 (VS nonstop) and 402.18
    // (SK/DY self-transfer), in GBP.
    let reply: Value = serde_json::from_str(&body).unwrap();
    let prices: Vec<String> = reply["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["price"].to_string())
        .collect();
    assert_eq!(prices, ["271.35", "389", "402.18"]);

    let before = Timestamp::now();
    let quote = search_with(json_reply(200, body.clone()), &lon_nyc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(271_35, "GBP"));
    assert_eq!(quote.provider, "tequila");
    assert!(!quote.cached);
    assert_eq!(quote.found_at, None);
    assert_eq!(quote.insights, None);
    assert_eq!(quote.link, Some(deep_link(&body, 0)));
    assert!(quote.fetched_at >= before && quote.fetched_at <= Timestamp::now());
    // FI 455 LGW-KEF and FI 615 KEF-JFK; `duration.departure` 38400 s.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("FI".to_owned()),
            stops: Some(1),
            duration_minutes: Some(38_400 / 60),
        })
    );
}

#[tokio::test]
async fn a_stop_limit_is_sent_as_max_stopovers_and_filters_the_itineraries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("fly_from", "LON"),
            ("fly_to", "NYC"),
            ("date_from", "10/12/2026"),
            ("date_to", "10/12/2026"),
            ("flight_type", "oneway"),
            ("adults", "1"),
            ("max_stopovers", "0"),
            ("selected_cabins", "M"),
            ("curr", "GBP"),
            ("sort", "price"),
            ("limit", "20"),
        ]))
        .respond_with(json_reply(200, fixture!("tequila-search-LON-NYC.json")))
        .expect(1)
        .mount(&server)
        .await;

    let body = fixture!("tequila-search-LON-NYC.json");
    let mut key = lon_nyc();
    key.max_stops = Some(0);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // The fake still sends the 271.35 FI itinerary via KEF; the nonstop VS 3
    // at 389 (`duration.departure` 28500 s) is the cheapest within the limit.
    assert_eq!(quote.price, money(389_00, "GBP"));
    assert_eq!(quote.link, Some(deep_link(&body, 1)));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("VS".to_owned()),
            stops: Some(0),
            duration_minutes: Some(28_500 / 60),
        })
    );
}

#[tokio::test]
async fn one_stop_allowed_keeps_the_cheapest_and_none_within_the_limit_is_no_fare() {
    let mut key = lon_nyc();
    key.max_stops = Some(1);
    let quote = search_with(
        json_reply(200, fixture!("tequila-search-LON-NYC.json")),
        &key,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(quote.price, money(271_35, "GBP"));

    // Only the two connecting itineraries left: nothing is direct.
    let mut reply: Value = serde_json::from_str(&fixture!("tequila-search-LON-NYC.json")).unwrap();
    reply["data"].as_array_mut().unwrap().remove(1);
    key.max_stops = Some(0);
    assert_eq!(
        search_with(json_reply(200, reply.to_string()), &key).await,
        Ok(None)
    );
}

#[tokio::test]
async fn prices_the_captured_lon_par_reply() {
    let body = fixture!("tequila-search-LON-PAR-captured.json");
    let key = key("LON", "PAR", "2023-11-22", Some("2023-12-05"), 1, "GBP");
    let quote = search_with(json_reply(200, body.clone()), &key)
        .await
        .unwrap()
        .unwrap();
    // An integer `price` (54).
    assert_eq!(quote.price, money(54_00, "GBP"));
    assert_eq!(quote.link, Some(deep_link(&body, 0)));
    assert!(quote
        .link
        .unwrap()
        .starts_with("https://www.kiwi.com/deep?affilid=theverypulseflightsearch"));
    // The outbound (`return: 0`) is U2 4646 SEN-CDG, 4200 s; the return
    // (VY 6944 ORY-LGW) is not part of it.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("U2".to_owned()),
            stops: Some(0),
            duration_minutes: Some(70),
        })
    );
}

#[tokio::test]
async fn a_round_trip_is_within_a_limit_only_if_both_directions_are() {
    let key = |max_stops| LookupKey {
        max_stops: Some(max_stops),
        ..self::key("LON", "PAR", "2023-11-22", Some("2023-12-05"), 1, "GBP")
    };
    // As captured, both directions are direct.
    let quote = search_with(
        json_reply(200, fixture!("tequila-search-LON-PAR-captured.json")),
        &key(0),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(quote.price, money(54_00, "GBP"));

    // With a connection added to the return only, it is no longer direct.
    let mut reply: Value =
        serde_json::from_str(&fixture!("tequila-search-LON-PAR-captured.json")).unwrap();
    let route = reply["data"][0]["route"].as_array_mut().unwrap();
    let back = route[1].clone();
    assert_eq!(back["return"], 1);
    route.push(back);
    let body = reply.to_string();
    assert_eq!(
        search_with(json_reply(200, body.clone()), &key(0)).await,
        Ok(None)
    );
    let quote = search_with(json_reply(200, body), &key(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.itinerary.unwrap().stops, Some(0));
}

#[tokio::test]
async fn the_cheapest_is_found_whatever_the_order_and_integer_prices_compare() {
    // Reversed order, and a fare in whole pounds that undercuts the rest.
    let mut reply: Value = serde_json::from_str(&fixture!("tequila-search-LON-NYC.json")).unwrap();
    let data = reply["data"].as_array_mut().unwrap();
    data.reverse();
    data[1]["price"] = serde_json::json!(271);
    let quote = search_with(json_reply(200, reply.to_string()), &lon_nyc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(271_00, "GBP"));
}

#[tokio::test]
async fn a_reply_without_currency_is_in_the_currency_asked_for() {
    let mut reply: Value = serde_json::from_str(&fixture!("tequila-search-LON-NYC.json")).unwrap();
    reply.as_object_mut().unwrap().remove("currency");
    let key = key("LON", "NYC", "2026-12-10", None, 1, "USD");
    let quote = search_with(json_reply(200, reply.to_string()), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(271_35, "USD"));
}

#[tokio::test]
async fn no_itineraries_is_none() {
    assert_eq!(
        search_with(
            json_reply(200, fixture!("tequila-search-empty.json")),
            &lon_nyc()
        )
        .await,
        Ok(None)
    );
}

#[tokio::test]
async fn a_gzip_compressed_reply_is_read() {
    // Tequila compresses its replies; the shared client must unpack them.
    let body = fixture!("tequila-search-LON-NYC.json");
    let template = ResponseTemplate::new(200)
        .set_body_raw(gzip_stored(body.as_bytes()), "application/json")
        .insert_header("content-encoding", "gzip");
    let quote = search_with(template, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(271_35, "GBP"));
}

// ----- errors ------------------------------------------------------------------

#[tokio::test]
async fn a_400_is_rejected_with_its_error_text() {
    assert_eq!(
        search_error(json_reply(400, fixture!("tequila-error-400.json"))).await,
        UpstreamError::Rejected {
            status: 400,
            code: None,
            message: "date_from: Not a valid date.".into(),
        }
    );
}

#[tokio::test]
async fn a_403_is_an_auth_error_naming_the_variable() {
    let error = search_error(json_reply(403, fixture!("tequila-error-403.json"))).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(
        message.starts_with(
            "Tequila refused the API key (HTTP 403: Invalid authentication credentials); check TEQUILA_API_KEY"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_401_is_an_auth_error_too() {
    let error = search_error(ResponseTemplate::new(401)).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(
        message.contains("HTTP 401: unrecognised error body: (empty body)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited() {
    assert_eq!(
        search_error(json_reply(429, fixture!("tequila-error-429.json"))).await,
        UpstreamError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_429_honours_retry_after_when_sent() {
    let template =
        json_reply(429, fixture!("tequila-error-429.json")).insert_header("retry-after", "5");
    assert_eq!(
        search_error(template).await,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        }
    );
}

#[tokio::test]
async fn a_500_is_upstream() {
    assert_eq!(
        search_error(json_reply(500, r#"{"message": "Internal server error"}"#)).await,
        UpstreamError::Upstream {
            status: 500,
            code: None,
            message: "Internal server error".into(),
        }
    );
    let html = "<html>\n<head><title>503 Service Temporarily Unavailable</title></head></html>";
    assert_eq!(
        search_error(ResponseTemplate::new(503).set_body_raw(html, "text/html")).await,
        UpstreamError::Upstream {
            status: 503,
            code: None,
            message: "unrecognised error body: <html> <head><title>503 Service Temporarily \
                      Unavailable</title></head></html>"
                .into(),
        }
    );
}

// ----- unreadable successes ----------------------------------------------------------

#[tokio::test]
async fn malformed_replies_are_decode_errors() {
    let full = fixture!("tequila-search-LON-NYC.json");
    let error = search_error(json_reply(200, &full.as_bytes()[..full.len() / 2])).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.starts_with("search reply: EOF while parsing")),
        "{error:?}"
    );

    let error = search_error(json_reply(200, r#"{"currency":"GBP","data":"none"}"#)).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.contains("invalid type: string \"none\"")),
        "{error:?}"
    );

    let error = search_error(json_reply(
        200,
        r#"{"currency":"GBP","data":[{"price":"cheap"}]}"#,
    ))
    .await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.contains("price `cheap` is not a number")),
        "{error:?}"
    );

    let error = search_error(json_reply(200, r#"{"currency":"pounds","data":[]}"#)).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.contains("`pounds` is not a currency")),
        "{error:?}"
    );

    let error = search_error(
        ResponseTemplate::new(200).set_body_raw("<html>Service maintenance</html>", "text/html"),
    )
    .await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.contains("`text/html`") && m.contains("Service maintenance")),
        "{error:?}"
    );
}

// ----- transport -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_search_times_out_after_the_configured_timeout() {
    // Not from wiremock's pool: with the clock paused the client may give up
    // before the server has even read the request, and a pooled server would
    // record that stray request in whichever test uses it next.
    let server = MockServer::builder().start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(
            json_reply(200, fixture!("tequila-search-LON-NYC.json"))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let tequila = Tequila::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = tequila.cheapest(&lon_nyc()).await;
    assert_eq!(result, Err(UpstreamError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let tequila = Tequila::new(
        farewatch::upstream::http::build_client(),
        TequilaConfig {
            base_url,
            api_key: SecretString::from(API_KEY),
            timeout: Duration::from_secs(5),
        },
    );

    let error = tequila.cheapest(&lon_nyc()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
}

// ----- secrets and configuration -------------------------------------------------------

#[tokio::test]
async fn replies_echoing_the_key_are_redacted_in_errors() {
    let echo = format!("apikey: {API_KEY}");
    let rejected = search_error(json_reply(
        400,
        format!(r#"{{"status":"Bad Request","error":"{echo}"}}"#),
    ))
    .await;
    let auth = search_error(json_reply(403, format!(r#"{{"message":"{echo}"}}"#))).await;
    let html = search_error(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = search_error(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;

    for error in [rejected, auth, html, proxy] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(API_KEY), "{text}");
    }
}

#[test]
fn debug_output_never_shows_the_key() {
    let config = TequilaConfig {
        base_url: DEFAULT_BASE_URL.to_owned(),
        api_key: SecretString::from(API_KEY),
        timeout: DEFAULT_TIMEOUT,
    };
    let tequila = Tequila::new(farewatch::upstream::http::build_client(), config.clone());
    for debug in [
        format!("{tequila:?}"),
        format!("{tequila:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(API_KEY), "{debug}");
        assert!(!debug.contains("k3y"), "{debug}");
    }
}

#[test]
fn default_limits_pace_one_lookup_a_second_four_in_flight() {
    let tequila = Tequila::new(
        farewatch::upstream::http::build_client(),
        TequilaConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: SecretString::from(API_KEY),
            timeout: Duration::from_secs(15),
        },
    );
    let limits = tequila.default_limits();
    assert_eq!(limits.max_concurrency, 4);
    assert_eq!(limits.rate_per_sec, 1.0);
    assert_eq!(limits.timeout, Duration::from_secs(15));
    assert_eq!(tequila.name(), "tequila");
    assert_eq!(DEFAULT_BASE_URL, "https://api.tequila.kiwi.com");
}

// ----- helpers -------------------------------------------------------------------

/// `data` as a gzip member of uncompressed ("stored") deflate blocks: enough
/// for a client to unpack, with no compression crate among the dev-deps.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(u16::MAX as usize).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}
