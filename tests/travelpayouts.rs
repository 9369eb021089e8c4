//! The Travelpayouts (Aviasales Data API v3) fare source against a wiremock
//! fake serving the recorded fixtures in `tests/fixtures/fares/`.

use std::time::Duration;

use farewatch::domain::{Currency, Iata, Itinerary, LookupKey, Money};
use farewatch::fare::travelpayouts::{
    Travelpayouts, TravelpayoutsConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, LINK_BASE,
};
use farewatch::fare::FareSource;
use farewatch::upstream::UpstreamError;
use jiff::Timestamp;
use secrecy::SecretString;
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

const TOKEN: &str = "tp-token-never-print-me-0123456789";
const PRICES_PATH: &str = "/aviasales/v3/prices_for_dates";
/// The cheapest item's `link` in the LON-NYC fixture.
const LON_NYC_LINK: &str = "/search/LON1012NYC1?t=FI17656851001765723500000640LGWJFK_2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a_298&search_date=23112026&expected_price_currency=usd&expected_price=298";
/// The cheapest item's `link` in the MOW-LED fixture (the captured one).
const MOW_LED_LINK: &str = "/search/SVO0205LED1?t=5N17462052001746210000000080SVOLED_7f3126f1dc4eb641b4a766ced1dd3fb8_4213&search_date=01052025&expected_price_uuid=e181fda3-37bc-4d4b-bf98-b2a4c819bb00&origin_airports=0&expected_price_source=share&expected_price_currency=rub&expected_price=4213";

fn json(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json; charset=utf-8")
}

fn config(server: &MockServer, timeout: Duration) -> TravelpayoutsConfig {
    TravelpayoutsConfig {
        base_url: server.uri(),
        token: SecretString::from(TOKEN),
        timeout,
    }
}

fn source(server: &MockServer) -> Travelpayouts {
    Travelpayouts::new(
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

/// The one-way lookup the LON-NYC fixture answers.
fn lon_nyc() -> LookupKey {
    key("LON", "NYC", "2026-12-10", None, "USD")
}

/// The one-way lookup the MOW-LED fixture answers.
fn mow_led() -> LookupKey {
    key("MOW", "LED", "2025-05-02", None, "RUB")
}

fn money(minor: i64, currency: &str) -> Money {
    Money::from_minor(minor, Currency::parse(currency).unwrap())
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

/// A fake answering every request with `template`, expected `times` times.
async fn serve(template: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .respond_with(template)
        .expect(times)
        .mount(&server)
        .await;
    server
}

async fn lookup(
    body: impl Into<Vec<u8>>,
    key: &LookupKey,
) -> Result<Option<farewatch::domain::Quote>, UpstreamError> {
    let server = serve(json(200, body), 1).await;
    source(&server).cheapest(key).await
}

async fn lookup_error_with(template: ResponseTemplate) -> UpstreamError {
    let server = serve(template, 1).await;
    source(&server).cheapest(&lon_nyc()).await.unwrap_err()
}

async fn lookup_error(status: u16, body: impl Into<Vec<u8>>) -> UpstreamError {
    lookup_error_with(json(status, body)).await
}

/// A reply in `currency` with one item per `(price, departure_at, return_at)`.
fn reply(currency: &str, items: &[(i64, &str, Option<&str>)]) -> String {
    let items: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, (price, departs, returns))| {
            let returns = returns
                .map(|r| format!(r#","return_at":"{r}""#))
                .unwrap_or_default();
            format!(
                r#"{{"origin":"LON","destination":"NYC","price":{price},"departure_at":"{departs}"{returns},"link":"/search/item{i}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"success":true,"data":[{}],"currency":"{currency}"}}"#,
        items.join(",")
    )
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_one_way_request_with_the_token_in_a_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .and(query_is(vec![
            ("origin", "LON"),
            ("destination", "NYC"),
            ("departure_at", "2026-12-10"),
            ("one_way", "true"),
            ("currency", "usd"),
            ("sorting", "price"),
            ("limit", "100"),
        ]))
        .and(header("x-access-token", TOKEN))
        .and(|r: &Request| {
            r.headers.get("accept").map(|v| v.as_bytes()) == Some(&b"application/json"[..])
        })
        .respond_with(json(
            200,
            fixture!("travelpayouts-prices-for-dates-LON-NYC.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let quote = source(&server).cheapest(&lon_nyc()).await.unwrap();
    assert!(quote.is_some());
}

#[tokio::test]
async fn sends_the_exact_round_trip_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .and(query_is(vec![
            ("origin", "LON"),
            ("destination", "NYC"),
            ("departure_at", "2026-12-10"),
            ("return_at", "2026-12-17"),
            ("one_way", "false"),
            ("currency", "gbp"),
            ("sorting", "price"),
            ("limit", "100"),
        ]))
        .and(header("x-access-token", TOKEN))
        .respond_with(json(
            200,
            fixture!("travelpayouts-prices-for-dates-empty.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let key = key("LON", "NYC", "2026-12-10", Some("2026-12-17"), "GBP");
    assert_eq!(source(&server).cheapest(&key).await, Ok(None));
}

// ----- successful lookups ----------------------------------------------------

#[tokio::test]
async fn picks_the_cheapest_lon_nyc_price_as_a_cached_quote_with_its_link() {
    let before = Timestamp::now();
    let quote = lookup(
        fixture!("travelpayouts-prices-for-dates-LON-NYC.json"),
        &lon_nyc(),
    )
    .await
    .unwrap()
    .unwrap();
    // Items cost 298 (FI via KEF), 441 (VS) and 468 (UA) usd.
    assert_eq!(quote.price, money(298_00, "USD"));
    assert_eq!(quote.provider, "travelpayouts");
    assert!(quote.cached);
    // prices_for_dates items carry no found/search time.
    assert_eq!(quote.found_at, None);
    assert_eq!(
        quote.link.as_deref(),
        Some(format!("https://www.aviasales.com{LON_NYC_LINK}").as_str())
    );
    assert_eq!(quote.insights, None);
    assert!(quote.fetched_at >= before && quote.fetched_at <= Timestamp::now());
    // The 298 item: airline FI, 1 transfer, `duration_to` 640.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("FI".to_owned()),
            stops: Some(1),
            duration_minutes: Some(640),
        })
    );
}

#[tokio::test]
async fn direct_only_is_sent_as_direct_and_skips_prices_with_transfers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .and(query_is(vec![
            ("origin", "LON"),
            ("destination", "NYC"),
            ("departure_at", "2026-12-10"),
            ("one_way", "true"),
            ("direct", "true"),
            ("currency", "usd"),
            ("sorting", "price"),
            ("limit", "100"),
        ]))
        .respond_with(json(
            200,
            fixture!("travelpayouts-prices-for-dates-LON-NYC.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let mut key = lon_nyc();
    key.max_stops = Some(0);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // The fake still sends the 298 FI price with a transfer; the cheapest
    // direct one is VS 3 at 441, 475 minutes.
    assert_eq!(quote.price, money(441_00, "USD"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("VS".to_owned()),
            stops: Some(0),
            duration_minutes: Some(475),
        })
    );
}

#[tokio::test]
async fn a_looser_limit_sends_no_direct_and_filters_the_reply() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .and(query_is(vec![
            ("origin", "LON"),
            ("destination", "NYC"),
            ("departure_at", "2026-12-10"),
            ("one_way", "true"),
            ("currency", "usd"),
            ("sorting", "price"),
            ("limit", "100"),
        ]))
        .respond_with(json(
            200,
            fixture!("travelpayouts-prices-for-dates-LON-NYC.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut key = lon_nyc();
    key.max_stops = Some(1);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(298_00, "USD"));

    // Prices whose transfers are not given cannot be shown to meet a limit.
    let body = reply("usd", &[(150, "2026-12-10T09:00:00+00:00", None)]);
    assert_eq!(lookup(body, &key).await, Ok(None));
}

#[tokio::test]
async fn a_round_trip_limit_counts_the_return_transfers_too() {
    let mut body: serde_json::Value =
        serde_json::from_str(&fixture!("travelpayouts-prices-for-dates-LON-NYC.json")).unwrap();
    // The two direct prices as round trips: VS back with a transfer, UA direct.
    let items = body["data"].as_array_mut().unwrap();
    items.remove(0);
    for (item, back) in items.iter_mut().zip([1, 0]) {
        item["return_at"] = serde_json::json!("2026-12-17T18:00:00-05:00");
        item["return_transfers"] = serde_json::json!(back);
    }
    let mut key = key("LON", "NYC", "2026-12-10", Some("2026-12-17"), "USD");
    key.max_stops = Some(0);
    let quote = lookup(body.to_string(), &key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(468_00, "USD"));
    assert_eq!(quote.itinerary.unwrap().airline.as_deref(), Some("UA"));
}

#[tokio::test]
async fn picks_the_cheapest_mow_led_price_in_roubles() {
    let quote = lookup(
        fixture!("travelpayouts-prices-for-dates-MOW-LED.json"),
        &mow_led(),
    )
    .await
    .unwrap()
    .unwrap();
    // 4213 (the captured 5N 275), 4480 and 5120 rub.
    assert_eq!(quote.price, money(4213_00, "RUB"));
    assert!(quote.cached);
    // The captured item: airline 5N, no transfers, `duration_to` 80.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("5N".to_owned()),
            stops: Some(0),
            duration_minutes: Some(80),
        })
    );
    assert_eq!(
        quote.link.as_deref(),
        Some(format!("{LINK_BASE}{MOW_LED_LINK}").as_str())
    );
}

#[tokio::test]
async fn prices_on_other_dates_are_ignored() {
    let other_day = key("MOW", "LED", "2025-05-03", None, "RUB");
    assert_eq!(
        lookup(
            fixture!("travelpayouts-prices-for-dates-MOW-LED.json"),
            &other_day
        )
        .await,
        Ok(None)
    );

    let body = reply(
        "usd",
        &[
            (150, "2026-12-11T09:00:00+00:00", None),
            (310, "2026-12-10T21:00:00+00:00", None),
            (290, "2026-12-10T07:00:00+00:00", None),
        ],
    );
    let quote = lookup(body, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(290_00, "USD"));
    assert_eq!(
        quote.link.as_deref(),
        Some("https://www.aviasales.com/search/item2")
    );
}

#[tokio::test]
async fn departure_dates_are_read_in_the_airports_own_offset() {
    // 00:30 on 2 May in Moscow is 21:30 on 1 May in UTC: it departs on the 2nd.
    let body = reply("rub", &[(3900, "2025-05-02T00:30:00+03:00", None)]);
    let quote = lookup(body.clone(), &mow_led()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(3900_00, "RUB"));
    let day_before = key("MOW", "LED", "2025-05-01", None, "RUB");
    assert_eq!(lookup(body, &day_before).await, Ok(None));
}

#[tokio::test]
async fn a_round_trip_needs_both_dates_to_match() {
    let body = reply(
        "usd",
        &[
            (199, "2026-12-10T08:00:00+00:00", None),
            (
                350,
                "2026-12-10T08:00:00+00:00",
                Some("2026-12-18T10:00:00-05:00"),
            ),
            (
                610,
                "2026-12-10T08:00:00+00:00",
                Some("2026-12-17T22:00:00-05:00"),
            ),
            (
                590,
                "2026-12-10T08:00:00+00:00",
                Some("2026-12-17T09:00:00-05:00"),
            ),
        ],
    );
    let round_trip = key("LON", "NYC", "2026-12-10", Some("2026-12-17"), "USD");
    let quote = lookup(body.clone(), &round_trip).await.unwrap().unwrap();
    assert_eq!(quote.price, money(590_00, "USD"));

    // And a one-way lookup ignores the round-trip prices.
    let quote = lookup(body, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(199_00, "USD"));
}

#[tokio::test]
async fn an_empty_return_at_means_one_way() {
    let body = r#"{"success":true,"currency":"usd","data":[
        {"price":250,"departure_at":"2026-12-10T08:00:00+00:00","return_at":"","link":"/x"}]}"#;
    let quote = lookup(body, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(250_00, "USD"));
}

#[tokio::test]
async fn prices_for_one_adult_are_multiplied_for_the_party() {
    let mut party = lon_nyc();
    party.adults = 3;
    let quote = lookup(
        fixture!("travelpayouts-prices-for-dates-LON-NYC.json"),
        &party,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(quote.price, money(3 * 298_00, "USD"));
}

#[tokio::test]
async fn zero_prices_are_skipped() {
    let body = reply(
        "usd",
        &[
            (0, "2026-12-10T08:00:00+00:00", None),
            (420, "2026-12-10T09:00:00+00:00", None),
        ],
    );
    let quote = lookup(body, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(420_00, "USD"));
}

#[tokio::test]
async fn a_found_at_is_used_when_present() {
    let body = r#"{"success":true,"currency":"usd","data":[
        {"price":250,"departure_at":"2026-12-10T08:00:00+00:00","found_at":"2026-11-22T18:04:05+03:00"}]}"#;
    let quote = lookup(body, &lon_nyc()).await.unwrap().unwrap();
    assert_eq!(
        quote.found_at,
        Some("2026-11-22T15:04:05Z".parse::<Timestamp>().unwrap())
    );
    assert_eq!(quote.link, None);
}

#[tokio::test]
async fn the_empty_fixture_is_none() {
    assert_eq!(
        lookup(
            fixture!("travelpayouts-prices-for-dates-empty.json"),
            &lon_nyc()
        )
        .await,
        Ok(None)
    );
}

// ----- errors ----------------------------------------------------------------------

#[tokio::test]
async fn a_401_is_an_auth_error_naming_the_variable() {
    let error = lookup_error(401, fixture!("travelpayouts-error-401.json")).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("Unauthorized"), "{message}");
    assert!(message.contains("TRAVELPAYOUTS_TOKEN"), "{message}");
}

#[tokio::test]
async fn success_false_with_http_200_is_an_auth_error() {
    let error = lookup_error(200, fixture!("travelpayouts-error-401.json")).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("Unauthorized"), "{message}");
    assert!(message.contains("TRAVELPAYOUTS_TOKEN"), "{message}");
}

#[tokio::test]
async fn a_429_is_rate_limited() {
    assert_eq!(
        lookup_error(
            429,
            r#"{"success":false,"data":{},"error":"Too many requests"}"#
        )
        .await,
        UpstreamError::RateLimited { retry_after: None }
    );
    let template = ResponseTemplate::new(429)
        .set_body_raw("", "text/plain")
        .insert_header("retry-after", "55");
    assert_eq!(
        lookup_error_with(template).await,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(55))
        }
    );
}

#[tokio::test]
async fn a_400_is_rejected() {
    assert_eq!(
        lookup_error(
            400,
            r#"{"success":false,"data":{},"error":"incorrect departure_at"}"#
        )
        .await,
        UpstreamError::Rejected {
            status: 400,
            code: None,
            message: "incorrect departure_at".into(),
        }
    );
}

#[tokio::test]
async fn a_500_is_upstream() {
    assert_eq!(
        lookup_error(
            500,
            r#"{"success":false,"data":{},"error":"internal error"}"#
        )
        .await,
        UpstreamError::Upstream {
            status: 500,
            code: None,
            message: "internal error".into(),
        }
    );
    let error = lookup_error_with(
        ResponseTemplate::new(502).set_body_raw("<html>\n<h1>Bad Gateway</h1>", "text/html"),
    )
    .await;
    assert_eq!(
        error,
        UpstreamError::Upstream {
            status: 502,
            code: None,
            message: "unrecognised error body: <html> <h1>Bad Gateway</h1>".into(),
        }
    );
}

// ----- unreadable successes --------------------------------------------------------

#[tokio::test]
async fn a_malformed_body_is_a_decode_error() {
    let full = fixture!("travelpayouts-prices-for-dates-LON-NYC.json");
    let error = lookup_error(200, &full.as_bytes()[..full.len() / 2]).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("EOF while parsing"), "{message}");

    let error = lookup_error(
        200,
        r#"{"success":true,"data":[{"price":"cheap","departure_at":"2026-12-10T08:00:00+00:00"}]}"#,
    )
    .await;
    assert!(matches!(error, UpstreamError::Decode(_)), "{error:?}");

    let error = lookup_error(
        200,
        r#"{"success":true,"data":[{"price":100,"departure_at":"next Tuesday"}]}"#,
    )
    .await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("departure_at"), "{message}");
}

#[tokio::test]
async fn an_html_200_is_a_decode_error_saying_what_arrived() {
    let template = ResponseTemplate::new(200)
        .set_body_raw("<html><body>Service maintenance</body></html>", "text/html");
    let error = lookup_error_with(template).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("`text/html`"), "{message}");
    assert!(message.contains("Service maintenance"), "{message}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_decode_error() {
    let huge = vec![b' '; 9 * 1024 * 1024];
    assert_eq!(
        lookup_error(200, huge).await,
        UpstreamError::Decode(format!(
            "reply larger than {} bytes",
            farewatch::upstream::http::MAX_BODY_BYTES
        ))
    );
}

// ----- transport -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_reply_times_out_after_the_configured_timeout() {
    // Not from wiremock's pool: with the clock paused the client may give up
    // before the server has even read the request, and a pooled server would
    // record that stray request in whichever test uses it next.
    let server = MockServer::builder().start().await;
    Mock::given(method("GET"))
        .and(path(PRICES_PATH))
        .respond_with(
            json(200, fixture!("travelpayouts-prices-for-dates-LON-NYC.json"))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let travelpayouts = Travelpayouts::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = travelpayouts.cheapest(&lon_nyc()).await;
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
    let travelpayouts = Travelpayouts::new(
        farewatch::upstream::http::build_client(),
        TravelpayoutsConfig {
            base_url,
            token: SecretString::from(TOKEN),
            timeout: Duration::from_secs(5),
        },
    );

    let error = travelpayouts.cheapest(&lon_nyc()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
}

#[tokio::test]
async fn a_token_no_header_can_hold_is_an_auth_error_without_a_request() {
    let server = serve(json(200, "{}"), 0).await;
    let travelpayouts = Travelpayouts::new(
        farewatch::upstream::http::build_client(),
        TravelpayoutsConfig {
            token: SecretString::from("line\nbreak"),
            ..config(&server, Duration::from_secs(5))
        },
    );
    let error = travelpayouts.cheapest(&lon_nyc()).await.unwrap_err();
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("TRAVELPAYOUTS_TOKEN"), "{message}");
    assert!(!message.contains("line\nbreak"), "{message}");
}

#[tokio::test]
async fn replies_echoing_the_token_are_redacted_in_errors() {
    let echo = format!("X-Access-Token: {TOKEN}");
    let auth = lookup_error(
        401,
        format!(r#"{{"success":false,"data":{{}},"error":"bad token {TOKEN}"}}"#),
    )
    .await;
    let refused = lookup_error(
        200,
        format!(r#"{{"success":false,"data":{{}},"error":"bad token {TOKEN}"}}"#),
    )
    .await;
    let html = lookup_error_with(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = lookup_error_with(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;

    for error in [auth, refused, html, proxy] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}

// ----- configuration ---------------------------------------------------------------

#[test]
fn debug_output_never_shows_the_token() {
    let config = TravelpayoutsConfig {
        base_url: "http://127.0.0.1:9".to_owned(),
        token: SecretString::from(TOKEN),
        timeout: Duration::from_secs(10),
    };
    let travelpayouts =
        Travelpayouts::new(farewatch::upstream::http::build_client(), config.clone());
    for debug in [
        format!("{travelpayouts:?}"),
        format!("{travelpayouts:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("127.0.0.1:9"), "{debug}");
    }
}

#[test]
fn defaults_and_limits() {
    let config = TravelpayoutsConfig::new(SecretString::from(TOKEN));
    assert_eq!(config.base_url, DEFAULT_BASE_URL);
    assert_eq!(DEFAULT_BASE_URL, "https://api.travelpayouts.com");
    assert_eq!(config.timeout, DEFAULT_TIMEOUT);

    let travelpayouts = Travelpayouts::new(
        farewatch::upstream::http::build_client(),
        TravelpayoutsConfig {
            timeout: Duration::from_secs(12),
            ..config
        },
    );
    assert_eq!(travelpayouts.name(), "travelpayouts");
    let limits = travelpayouts.default_limits();
    assert_eq!(limits.max_concurrency, 10);
    assert_eq!(limits.rate_per_sec, 8.0);
    assert_eq!(limits.timeout, Duration::from_secs(12));
}
