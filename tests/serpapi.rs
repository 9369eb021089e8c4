//! The SerpApi Google Flights fare source against a wiremock fake serving
//! the recorded fixtures in `tests/fixtures/fares/`.

use std::time::Duration;

use farewatch::domain::{Currency, Iata, Itinerary, LookupKey, Money, PriceLevel};
use farewatch::fare::serpapi::{SerpApi, SerpApiConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT};
use farewatch::fare::FareSource;
use farewatch::upstream::UpstreamError;
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::Value;
use wiremock::matchers::{method, path};
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

const API_KEY: &str = "serpapi-key-never-print-me-0123456789";
const SEARCH_PATH: &str = "/search.json";
/// `search_metadata.google_flights_url` in the SIN-AUS outbound fixture.
const SIN_AUS_GOOGLE_URL: &str = "https://www.google.com/travel/flights?hl=en&gl=us&curr=USD&tfs=CBwQAhoeEgoyMDI1LTA5LTA5agcIARIDU0lOcgcIARIDQVVTGh4SCjIwMjUtMDktMTlqBwgBEgNBVVNyBwgBEgNTSU5CAQFIAXABmAEB&tfu=EgIIAQ";

fn json(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json; charset=utf-8")
}

fn config(server: &MockServer, timeout: Duration) -> SerpApiConfig {
    SerpApiConfig {
        base_url: server.uri(),
        api_key: SecretString::from(API_KEY),
        timeout,
    }
}

fn source(server: &MockServer) -> SerpApi {
    SerpApi::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
    )
}

fn key(
    origin: &str,
    destination: &str,
    depart: &str,
    ret: Option<&str>,
    currency: &str,
) -> LookupKey {
    LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse(destination).unwrap(),
        depart: depart.parse().unwrap(),
        return_date: ret.map(|r| r.parse().unwrap()),
        adults: 1,
        currency: Currency::parse(currency).unwrap(),
        max_stops: None,
    }
}

/// The round trip the SIN-AUS fixtures were captured for.
fn sin_aus() -> LookupKey {
    key("SIN", "AUS", "2025-09-09", Some("2025-09-19"), "USD")
}

fn lhr_jfk() -> LookupKey {
    key("LHR", "JFK", "2027-03-01", None, "GBP")
}

fn money(minor: i64, currency: &str) -> Money {
    Money::from_minor(minor, Currency::parse(currency).unwrap())
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
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

/// A fake answering every search with `template`, expected `times` times.
async fn serve(template: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(template)
        .expect(times)
        .mount(&server)
        .await;
    server
}

async fn search_error_with(template: ResponseTemplate) -> UpstreamError {
    let server = serve(template, 1).await;
    source(&server).cheapest(&lhr_jfk()).await.unwrap_err()
}

async fn search_error(status: u16, body: impl Into<Vec<u8>>) -> UpstreamError {
    search_error_with(json(status, body)).await
}

/// The outbound fixture with its lists edited by `edit`.
fn edited_outbound(edit: impl FnOnce(&mut Value)) -> String {
    let mut body: Value =
        serde_json::from_str(&fixture!("serpapi-google-flights-SIN-AUS-outbound.json")).unwrap();
    edit(&mut body);
    body.to_string()
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_one_way_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("engine", "google_flights"),
            ("departure_id", "LHR"),
            ("arrival_id", "JFK"),
            ("outbound_date", "2027-03-01"),
            ("type", "2"),
            ("adults", "1"),
            ("currency", "GBP"),
            ("hl", "en"),
            ("api_key", API_KEY),
        ]))
        .and(|r: &Request| {
            r.headers.get("accept").map(|v| v.as_bytes()) == Some(&b"application/json"[..])
        })
        .respond_with(json(
            200,
            fixture!("serpapi-google-flights-no-results.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(source(&server).cheapest(&lhr_jfk()).await, Ok(None));
}

#[tokio::test]
async fn sends_the_exact_round_trip_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("engine", "google_flights"),
            ("departure_id", "SIN"),
            ("arrival_id", "AUS"),
            ("outbound_date", "2025-09-09"),
            ("return_date", "2025-09-19"),
            ("type", "1"),
            ("adults", "3"),
            ("currency", "USD"),
            ("hl", "en"),
            ("api_key", API_KEY),
        ]))
        .respond_with(json(
            200,
            fixture!("serpapi-google-flights-SIN-AUS-outbound.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let mut key = sin_aus();
    key.adults = 3;
    let quote = source(&server).cheapest(&key).await.unwrap();
    assert!(quote.is_some());
}

#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_ignored() {
    let server = serve(
        json(200, fixture!("serpapi-google-flights-no-results.json")),
        1,
    )
    .await;
    let mut config = config(&server, Duration::from_secs(10));
    config.base_url.push('/');
    let serpapi = SerpApi::new(farewatch::upstream::http::build_client(), config);
    assert_eq!(serpapi.cheapest(&lhr_jfk()).await, Ok(None));
}

// ----- successful searches ---------------------------------------------------

#[tokio::test]
async fn picks_the_cheapest_sin_aus_round_trip_with_google_insights() {
    let server = serve(
        json(
            200,
            fixture!("serpapi-google-flights-SIN-AUS-outbound.json"),
        ),
        1,
    )
    .await;

    let before = Timestamp::now();
    let quote = source(&server).cheapest(&sin_aus()).await.unwrap().unwrap();
    // best_flights: 920, 920, 1147, 1390; other_flights: 1054, 1128 and one
    // without a price. Outbound prices are already round-trip totals.
    assert_eq!(quote.price, money(920_00, "USD"));
    assert_eq!(quote.provider, "serpapi");
    assert!(!quote.cached);
    assert_eq!(quote.found_at, None);
    assert_eq!(quote.link.as_deref(), Some(SIN_AUS_GOOGLE_URL));
    assert!(quote.fetched_at >= before && quote.fetched_at <= Timestamp::now());

    let insights = quote.insights.expect("price_insights");
    assert_eq!(insights.lowest, Some(money(920_00, "USD")));
    assert_eq!(insights.level, Some(PriceLevel::Low));
    assert_eq!(
        insights.typical_range,
        Some((money(1100_00, "USD"), money(1200_00, "USD")))
    );
    assert_eq!(insights.history.len(), 62);
    assert_eq!(
        insights.history[0],
        (ts(1_746_374_400), money(956_00, "USD"))
    );
    assert_eq!(
        insights.history[61],
        (ts(1_751_644_800), money(920_00, "USD"))
    );
    assert!(insights.history.windows(2).all(|w| w[0].0 <= w[1].0));

    // best_flights #0: AC 20 SIN-YVR, AC 576 YVR-DEN, UA 1942 DEN-AUS, 1480
    // minutes in all (#1 ties at 920 and comes second).
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("Air Canada, United".to_owned()),
            stops: Some(2),
            duration_minutes: Some(1480),
        })
    );
}

/// The outbound fixture's options as `(price, legs, total_duration)`, read
/// straight from the file, to check the stop filter against.
fn sin_aus_options() -> Vec<(Option<i64>, usize, i64)> {
    let body: Value =
        serde_json::from_str(&fixture!("serpapi-google-flights-SIN-AUS-outbound.json")).unwrap();
    ["best_flights", "other_flights"]
        .iter()
        .flat_map(|list| body[list].as_array().unwrap().clone())
        .map(|option| {
            (
                option["price"].as_i64(),
                option["flights"].as_array().unwrap().len(),
                option["total_duration"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The round-trip request for `sin_aus()` with `stops` as sent (or none).
async fn serve_sin_aus_expecting_stops(stops: Option<&'static str>) -> MockServer {
    let mut query = vec![
        ("engine", "google_flights"),
        ("departure_id", "SIN"),
        ("arrival_id", "AUS"),
        ("outbound_date", "2025-09-09"),
        ("return_date", "2025-09-19"),
        ("type", "1"),
        ("adults", "1"),
        ("currency", "USD"),
        ("hl", "en"),
        ("api_key", API_KEY),
    ];
    if let Some(stops) = stops {
        query.push(("stops", stops));
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(query))
        .respond_with(json(
            200,
            fixture!("serpapi-google-flights-SIN-AUS-outbound.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_stop_limit_is_sent_as_stops_and_filters_the_options() {
    // The fixture's priced options: 920, 920, 1147 (2 stops each), 1390
    // (UA 2 SIN-SFO, UA 391 SFO-AUS: 1 stop), 1054, 1128 (2 stops each).
    let options = sin_aus_options();
    let one_stop: Vec<_> = options
        .iter()
        .filter(|(price, legs, _)| price.is_some() && *legs <= 2)
        .collect();
    assert_eq!(one_stop, [&(Some(1390), 2, 1266)]);

    // At most one stop: SerpApi's `stops=2`.
    let server = serve_sin_aus_expecting_stops(Some("2")).await;
    let mut key = sin_aus();
    key.max_stops = Some(1);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(1390_00, "USD"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("United".to_owned()),
            stops: Some(1),
            duration_minutes: Some(1266),
        })
    );
    // Insights are Google's for the search, whichever option is quoted.
    assert_eq!(quote.insights.unwrap().lowest, Some(money(920_00, "USD")));

    // At most two: `stops=3`, and the overall cheapest is within it.
    let server = serve_sin_aus_expecting_stops(Some("3")).await;
    key.max_stops = Some(2);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(920_00, "USD"));
    assert_eq!(quote.itinerary.unwrap().stops, Some(2));
}

#[tokio::test]
async fn nonstop_is_stops_1_and_no_direct_option_is_no_fare() {
    let options = sin_aus_options();
    assert!(options.iter().all(|(_, legs, _)| *legs > 1));

    let server = serve_sin_aus_expecting_stops(Some("1")).await;
    let mut key = sin_aus();
    key.max_stops = Some(0);
    assert_eq!(source(&server).cheapest(&key).await, Ok(None));
}

#[tokio::test]
async fn a_limit_serpapi_has_no_value_for_is_not_sent_but_still_applied() {
    // Three stops or fewer: no `stops` value says so; every option fits.
    let server = serve_sin_aus_expecting_stops(None).await;
    let mut key = sin_aus();
    key.max_stops = Some(3);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(920_00, "USD"));

    // An option with more stops than asked is skipped even if SerpApi sends it.
    let body = r#"{"best_flights":[
        {"price":300,"flights":[{"airline":"A"},{"airline":"B"},{"airline":"C"},{"airline":"D"},{"airline":"E"}],"total_duration":900},
        {"price":450,"flights":[{"airline":"Delta"}],"total_duration":480},
        {"price":200}]}"#;
    let server = serve(json(200, body), 1).await;
    let mut key = lhr_jfk();
    key.max_stops = Some(3);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // 200 has no flights to count, 300 has four stops: the direct 450 it is.
    assert_eq!(quote.price, money(450_00, "GBP"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("Delta".to_owned()),
            stops: Some(0),
            duration_minutes: Some(480),
        })
    );
}

#[tokio::test]
async fn unreadable_flights_lose_the_itinerary_not_the_price() {
    let body = r#"{"best_flights":[
        {"price":431,"flights":"n/a","total_duration":"long"}]}"#;
    let server = serve(json(200, body), 1).await;
    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(431_00, "GBP"));
    assert_eq!(quote.itinerary, None);
}

#[tokio::test]
async fn an_itinerary_without_a_price_is_skipped_never_zero() {
    // Keep only other_flights #6 (no price) and #0 (1054), in that order.
    let body = edited_outbound(|body| {
        body["best_flights"] = Value::Array(vec![]);
        let other = body["other_flights"].as_array().unwrap().clone();
        assert!(
            other[2].get("price").is_none(),
            "fixture entry #6 has no price"
        );
        body["other_flights"] = Value::Array(vec![other[2].clone(), other[0].clone()]);
    });
    let server = serve(json(200, body), 1).await;

    let quote = source(&server).cheapest(&sin_aus()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(1054_00, "USD"));
}

#[tokio::test]
async fn only_price_less_itineraries_is_none() {
    let body = edited_outbound(|body| {
        body["best_flights"] = Value::Null;
        let other = body["other_flights"].as_array().unwrap().clone();
        body["other_flights"] = Value::Array(vec![other[2].clone()]);
    });
    let server = serve(json(200, body), 1).await;

    assert_eq!(source(&server).cheapest(&sin_aus()).await, Ok(None));
}

#[tokio::test]
async fn zero_or_negative_prices_are_skipped() {
    let body = r#"{"best_flights":[{"price":0},{"price":-5},{"price":431}],"other_flights":[{"price":null}]}"#;
    let server = serve(json(200, body), 1).await;

    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(431_00, "GBP"));
    // No search_metadata, no price_insights, no flights: nothing invented.
    assert_eq!(quote.link, None);
    assert_eq!(quote.insights, None);
    assert_eq!(quote.itinerary, None);
}

#[tokio::test]
async fn the_return_leg_reply_prices_without_insights() {
    let server = serve(
        json(
            200,
            fixture!("serpapi-google-flights-SIN-AUS-return-leg.json"),
        ),
        1,
    )
    .await;

    let quote = source(&server).cheapest(&sin_aus()).await.unwrap().unwrap();
    // best 920 ×3, other 4065, 4065, 8145.
    assert_eq!(quote.price, money(920_00, "USD"));
    assert_eq!(quote.insights, None);
}

#[tokio::test]
async fn prices_are_in_the_currency_serpapi_echoes() {
    // Asked for GBP; the fixture's search_parameters say USD, which is what
    // its prices are in.
    let server = serve(
        json(
            200,
            fixture!("serpapi-google-flights-SIN-AUS-outbound.json"),
        ),
        1,
    )
    .await;
    let key = key("SIN", "AUS", "2025-09-09", Some("2025-09-19"), "GBP");
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(920_00, "USD"));
    assert_eq!(quote.insights.unwrap().lowest, Some(money(920_00, "USD")));
}

#[tokio::test]
async fn malformed_insights_are_dropped_field_by_field_not_the_quote() {
    let body = edited_outbound(|body| {
        body["price_insights"]["price_level"] = Value::from("unheard-of");
        body["price_insights"]["typical_price_range"] = Value::from("1100-1200");
        body["price_insights"]["price_history"][0] = Value::from("garbage");
        body["search_metadata"]["google_flights_url"] = Value::from(42);
    });
    let server = serve(json(200, body), 1).await;

    let quote = source(&server).cheapest(&sin_aus()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(920_00, "USD"));
    assert_eq!(quote.link, None);
    let insights = quote.insights.unwrap();
    assert_eq!(insights.lowest, Some(money(920_00, "USD")));
    assert_eq!(insights.level, None);
    assert_eq!(insights.typical_range, None);
    assert_eq!(insights.history.len(), 61);
}

#[tokio::test]
async fn no_results_is_none() {
    let server = serve(
        json(200, fixture!("serpapi-google-flights-no-results.json")),
        1,
    )
    .await;
    assert_eq!(source(&server).cheapest(&lhr_jfk()).await, Ok(None));
}

#[tokio::test]
async fn an_empty_reply_is_none() {
    let server = serve(json(200, "{}"), 1).await;
    assert_eq!(source(&server).cheapest(&lhr_jfk()).await, Ok(None));
}

// ----- errors ----------------------------------------------------------------------

#[tokio::test]
async fn a_400_is_rejected_with_serpapis_message() {
    assert_eq!(
        search_error(400, fixture!("serpapi-error-400.json")).await,
        UpstreamError::Rejected {
            status: 400,
            code: None,
            message: "Missing query `q` parameter.".into(),
        }
    );
}

#[tokio::test]
async fn a_401_is_an_auth_error_naming_the_variable() {
    let error = search_error(401, fixture!("serpapi-error-401.json")).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("Invalid API key."), "{message}");
    assert!(message.contains("SERPAPI_API_KEY"), "{message}");
}

#[tokio::test]
async fn a_403_is_an_auth_error() {
    let error = search_error(403, r#"{"error":"This account has been deleted."}"#).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("account has been deleted"), "{message}");
    assert!(message.contains("SERPAPI_API_KEY"), "{message}");
}

#[tokio::test]
async fn a_429_is_rate_limited_whichever_limit_was_hit() {
    // "Your account has run out of searches." and the hourly throughput
    // limit share the status; neither says when to come back.
    assert_eq!(
        search_error(429, fixture!("serpapi-error-429.json")).await,
        UpstreamError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_429_honours_retry_after_when_sent() {
    let template = json(429, fixture!("serpapi-error-429.json")).insert_header("retry-after", "7");
    assert_eq!(
        search_error_with(template).await,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn a_404_is_rejected() {
    assert_eq!(
        search_error(404, r#"{"error":"Not found."}"#).await,
        UpstreamError::Rejected {
            status: 404,
            code: None,
            message: "Not found.".into(),
        }
    );
}

#[tokio::test]
async fn a_500_is_upstream() {
    assert_eq!(
        search_error(500, r#"{"error":"Internal server error."}"#).await,
        UpstreamError::Upstream {
            status: 500,
            code: None,
            message: "Internal server error.".into(),
        }
    );
}

#[tokio::test]
async fn an_unreadable_503_keeps_the_status_and_a_short_clean_excerpt() {
    let html = format!(
        "<html>\n<head><title>503 Service Unavailable</title></head>\n<body>{}</body></html>",
        "padding ".repeat(100)
    );
    let error = search_error_with(ResponseTemplate::new(503).set_body_raw(html, "text/html")).await;
    let UpstreamError::Upstream {
        status,
        code,
        message,
    } = error
    else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!((status, code), (503, None));
    assert!(
        message.starts_with("unrecognised error body: <html> <head><title>503"),
        "{message}"
    );
    assert!(message.chars().count() <= "unrecognised error body: ".len() + 201);
    assert!(!message.contains('\n'));
}

// ----- unreadable successes --------------------------------------------------------

#[tokio::test]
async fn an_html_200_is_a_decode_error_saying_what_arrived() {
    let template = ResponseTemplate::new(200)
        .set_body_raw("<html><body>Service maintenance</body></html>", "text/html");
    let error = search_error_with(template).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("`text/html`"), "{message}");
    assert!(message.contains("Service maintenance"), "{message}");
}

#[tokio::test]
async fn truncated_json_is_a_decode_error() {
    let full = fixture!("serpapi-google-flights-SIN-AUS-outbound.json");
    let error = search_error(200, &full.as_bytes()[..full.len() / 2]).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("EOF while parsing"), "{message}");
}

#[tokio::test]
async fn a_price_that_is_not_a_number_is_a_decode_error() {
    let error = search_error(200, r#"{"best_flights":[{"price":"$920"}]}"#).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("is not a number"), "{message}");
}

#[tokio::test]
async fn an_unknown_echoed_currency_is_a_decode_error() {
    let error = search_error(
        200,
        r#"{"search_parameters":{"currency":"XYZ"},"best_flights":[{"price":10}]}"#,
    )
    .await;
    assert!(matches!(error, UpstreamError::Decode(_)), "{error:?}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_decode_error() {
    let huge = vec![b' '; 9 * 1024 * 1024];
    assert_eq!(
        search_error(200, huge).await,
        UpstreamError::Decode(format!(
            "reply larger than {} bytes",
            farewatch::upstream::http::MAX_BODY_BYTES
        ))
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
            json(
                200,
                fixture!("serpapi-google-flights-SIN-AUS-outbound.json"),
            )
            .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let serpapi = SerpApi::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = serpapi.cheapest(&sin_aus()).await;
    assert_eq!(result, Err(UpstreamError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_without_the_key() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let serpapi = SerpApi::new(
        farewatch::upstream::http::build_client(),
        SerpApiConfig {
            base_url,
            api_key: SecretString::from(API_KEY),
            timeout: Duration::from_secs(5),
        },
    );

    let error = serpapi.cheapest(&lhr_jfk()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(API_KEY), "{text}");
    assert!(!text.contains("api_key"), "{text}");
}

#[tokio::test]
async fn replies_echoing_the_key_are_redacted_in_errors() {
    let echo = format!("GET /search.json?engine=google_flights&api_key={API_KEY}");
    let rejected = search_error(400, format!(r#"{{"error":"bad request: {echo}"}}"#)).await;
    let auth = search_error(401, format!(r#"{{"error":"Invalid API key {API_KEY}"}}"#)).await;
    let html = search_error_with(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = search_error_with(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let garbled = search_error(200, format!("{{\"{echo}\": [")).await;

    for error in [rejected, auth, html, proxy, garbled] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(API_KEY), "{text}");
    }
}

// ----- configuration ---------------------------------------------------------------

#[test]
fn debug_output_never_shows_the_key() {
    let config = SerpApiConfig {
        base_url: "http://127.0.0.1:9".to_owned(),
        api_key: SecretString::from(API_KEY),
        timeout: Duration::from_secs(10),
    };
    let serpapi = SerpApi::new(farewatch::upstream::http::build_client(), config.clone());
    for debug in [
        format!("{serpapi:?}"),
        format!("{serpapi:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(API_KEY), "{debug}");
        assert!(debug.contains("127.0.0.1:9"), "{debug}");
    }
}

#[test]
fn defaults_and_limits() {
    let config = SerpApiConfig::new(SecretString::from(API_KEY));
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(DEFAULT_BASE_URL, "https://serpapi.com");
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);

    let serpapi = SerpApi::new(
        farewatch::upstream::http::build_client(),
        SerpApiConfig {
            timeout: Duration::from_secs(12),
            ..config
        },
    );
    assert_eq!(serpapi.name(), "serpapi");
    let limits = serpapi.default_limits();
    assert_eq!(limits.max_concurrency, 10);
    assert_eq!(limits.rate_per_sec, 5.0);
    assert_eq!(limits.timeout, Duration::from_secs(12));
}
