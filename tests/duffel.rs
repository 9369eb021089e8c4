//! The Duffel fare source against a wiremock fake serving the recorded
//! fixtures in `tests/fixtures/fares/`.
//!
//! A lookup is two requests: `POST /air/offer_requests` (answered with the
//! SDK fixture, whose id is [`OFFER_REQUEST_ID`]) and `GET /air/offers` for
//! that id (answered with a page built from the fixture's offers).

use std::time::Duration;

use farewatch::domain::{Currency, Iata, Itinerary, LookupKey, Money};
use farewatch::fare::duffel::{Duffel, DuffelConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT};
use farewatch::fare::FareSource;
use farewatch::upstream::UpstreamError;
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
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

const TOKEN: &str = "duffel_live_s3cr3t-never-print-me";
/// `data.id` in `duffel-offer-request-LHR-JFK-sdk.json`.
const OFFER_REQUEST_ID: &str = "orq_00009hjdomFOCJyxHG7k7k";
const OFFER_REQUESTS_PATH: &str = "/air/offer_requests";
const OFFERS_PATH: &str = "/air/offers";

fn json_reply(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/json")
}

fn sdk_fixture() -> String {
    fixture!("duffel-offer-request-LHR-JFK-sdk.json")
}

/// The SDK fixture's one offer (BA, `total_amount` "45.00" GBP).
fn sdk_offer() -> Value {
    let reply: Value = serde_json::from_str(&sdk_fixture()).unwrap();
    reply["data"]["offers"][0].clone()
}

/// The SDK offer with another price.
fn offer(amount: &str, currency: &str, partial: bool) -> Value {
    let mut offer = sdk_offer();
    offer["total_amount"] = json!(amount);
    offer["total_currency"] = json!(currency);
    offer["partial"] = json!(partial);
    offer
}

/// A `GET /air/offers` reply holding `offers`.
fn offers_page(offers: Vec<Value>) -> ResponseTemplate {
    let page = json!({"meta": {"limit": 20, "after": null, "before": null}, "data": offers});
    json_reply(200, page.to_string())
}

fn config(server: &MockServer, timeout: Duration) -> DuffelConfig {
    DuffelConfig {
        base_url: server.uri(),
        access_token: SecretString::from(TOKEN),
        timeout,
    }
}

fn source(server: &MockServer) -> Duffel {
    Duffel::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(30)),
    )
}

fn key(ret: Option<&str>, adults: u8, currency: &str) -> LookupKey {
    LookupKey {
        origin: Iata::parse("LHR").unwrap(),
        destination: Iata::parse("JFK").unwrap(),
        depart: "2027-03-01".parse().unwrap(),
        return_date: ret.map(|r| r.parse().unwrap()),
        adults,
        currency: Currency::parse(currency).unwrap(),
        max_stops: None,
    }
}

fn lhr_jfk() -> LookupKey {
    key(None, 1, "GBP")
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

/// `POST /air/offer_requests` answering `template`.
async fn mount_create(server: &MockServer, template: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        .respond_with(template)
        .expect(times)
        .named("create offer request")
        .mount(server)
        .await;
}

/// `GET /air/offers` for the fixture's offer request, answering `template`.
async fn mount_offers(server: &MockServer, template: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path(OFFERS_PATH))
        .and(wiremock::matchers::query_param(
            "offer_request_id",
            OFFER_REQUEST_ID,
        ))
        .respond_with(template)
        .expect(times)
        .named("list offers")
        .mount(server)
        .await;
}

/// A lookup whose offer request succeeds and whose offers page is `page`.
async fn lookup_with_offers(
    page: ResponseTemplate,
    key: &LookupKey,
) -> Result<Option<farewatch::domain::Quote>, UpstreamError> {
    let server = MockServer::start().await;
    mount_create(&server, json_reply(201, sdk_fixture()), 1).await;
    mount_offers(&server, page, 1).await;
    source(&server).cheapest(key).await
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_requests_for_a_one_way_search() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        // 30 s for the lookup: Duffel may wait 25 s for airlines.
        .and(query_is(vec![
            ("return_offers", "false"),
            ("supplier_timeout", "25000"),
        ]))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("duffel-version", "v2"))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"data": {
            "slices": [{"origin": "LHR", "destination": "JFK", "departure_date": "2027-03-01"}],
            "passengers": [{"type": "adult"}],
            "cabin_class": "economy"
        }})))
        .respond_with(json_reply(201, sdk_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OFFERS_PATH))
        .and(query_is(vec![
            ("offer_request_id", OFFER_REQUEST_ID),
            ("sort", "total_amount"),
            ("limit", "20"),
        ]))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("duffel-version", "v2"))
        .and(header("accept", "application/json"))
        .respond_with(offers_page(vec![sdk_offer()]))
        .expect(1)
        .mount(&server)
        .await;

    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap();
    assert_eq!(quote.unwrap().price, money(45_00, "GBP"));
}

#[tokio::test]
async fn a_round_trip_for_two_adults_sends_two_slices_and_two_passengers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        .and(body_json(json!({"data": {
            "slices": [
                {"origin": "LHR", "destination": "JFK", "departure_date": "2027-03-01"},
                {"origin": "JFK", "destination": "LHR", "departure_date": "2027-03-15"}
            ],
            "passengers": [{"type": "adult"}, {"type": "adult"}],
            "cabin_class": "economy"
        }})))
        // 200 rather than 201: which one Duffel sends is unconfirmed, so both count.
        .respond_with(json_reply(200, sdk_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    mount_offers(&server, offers_page(vec![offer("612.40", "GBP", false)]), 1).await;

    let quote = source(&server)
        .cheapest(&key(Some("2027-03-15"), 2, "GBP"))
        .await
        .unwrap();
    assert_eq!(quote.unwrap().price, money(612_40, "GBP"));
}

#[tokio::test]
async fn supplier_timeout_follows_the_configured_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        .and(query_is(vec![
            ("return_offers", "false"),
            ("supplier_timeout", "20000"),
        ]))
        .respond_with(json_reply(201, sdk_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    mount_offers(&server, offers_page(vec![sdk_offer()]), 1).await;

    let duffel = Duffel::new(
        farewatch::upstream::http::build_client(),
        config(&server, DEFAULT_TIMEOUT),
    );
    duffel.cheapest(&lhr_jfk()).await.unwrap();
}

// ----- successful searches ---------------------------------------------------

#[tokio::test]
async fn prices_the_sdk_fixture_at_gbp_45_exactly() {
    let before = Timestamp::now();
    let quote = lookup_with_offers(offers_page(vec![sdk_offer()]), &lhr_jfk())
        .await
        .unwrap()
        .unwrap();
    // total_amount "45.00", although base 30.20 + tax 40.80 is not 45.00:
    // the total is what is charged, and it is never recomputed.
    assert_eq!(quote.price, money(45_00, "GBP"));
    assert_eq!(quote.provider, "duffel");
    assert!(!quote.cached);
    assert_eq!(quote.found_at, None);
    assert_eq!(quote.link, None);
    assert_eq!(quote.insights, None);
    assert!(quote.fetched_at >= before && quote.fetched_at <= Timestamp::now());
    // One slice of one segment, BA1234 LHR-JFK marketed by British Airways,
    // the slice's `duration` "PT02H26M".
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("British Airways".to_owned()),
            stops: Some(0),
            duration_minutes: Some(2 * 60 + 26),
        })
    );
}

/// The SDK offer at `amount`, flown with one connection: its one segment
/// split in two at Dublin, the second marketed by Aer Lingus, the slice
/// taking `duration`.
fn connecting_offer(amount: &str, duration: &str) -> Value {
    let mut offer = offer(amount, "GBP", false);
    let slice = &mut offer["slices"][0];
    let first = slice["segments"][0].clone();
    let mut second = first.clone();
    second["id"] = json!("seg_second");
    second["marketing_carrier"] = json!({"iata_code": "EI", "name": "Aer Lingus", "id": "aln_ei"});
    slice["segments"] = json!([first, second]);
    slice["duration"] = json!(duration);
    offer
}

#[tokio::test]
async fn a_stop_limit_is_sent_as_max_connections_and_filters_the_offers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        .and(body_json(json!({"data": {
            "slices": [{"origin": "LHR", "destination": "JFK", "departure_date": "2027-03-01"}],
            "passengers": [{"type": "adult"}],
            "cabin_class": "economy",
            "max_connections": 0
        }})))
        .respond_with(json_reply(201, sdk_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    // Cheaper, but with a connection Duffel should not have sent.
    mount_offers(
        &server,
        offers_page(vec![connecting_offer("30.00", "PT5H10M"), sdk_offer()]),
        1,
    )
    .await;

    let mut key = lhr_jfk();
    key.max_stops = Some(0);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(45_00, "GBP"));
    assert_eq!(quote.itinerary.unwrap().stops, Some(0));
}

#[tokio::test]
async fn without_a_limit_the_cheapest_offer_is_quoted_with_its_connection() {
    let page = offers_page(vec![sdk_offer(), connecting_offer("30.00", "PT5H10M")]);
    let quote = lookup_with_offers(page, &lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(30_00, "GBP"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("British Airways, Aer Lingus".to_owned()),
            stops: Some(1),
            duration_minutes: Some(5 * 60 + 10),
        })
    );

    // A limit it meets changes nothing.
    let page = offers_page(vec![sdk_offer(), connecting_offer("30.00", "PT5H10M")]);
    let mut key = lhr_jfk();
    key.max_stops = Some(1);
    let quote = lookup_with_offers(page, &key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(30_00, "GBP"));
}

#[tokio::test]
async fn every_slice_must_be_within_the_limit() {
    // A return trip whose return slice connects: not a direct trip.
    let mut round = offer("80.00", "GBP", false);
    let back = connecting_offer("80.00", "PT6H")["slices"][0].clone();
    round["slices"] = json!([round["slices"][0].clone(), back]);
    let mut key = key(Some("2027-03-15"), 1, "GBP");
    key.max_stops = Some(0);
    let page = offers_page(vec![round.clone()]);
    assert_eq!(lookup_with_offers(page, &key).await, Ok(None));

    // One connection allowed: it is quoted, with the direct outbound's details.
    key.max_stops = Some(1);
    let quote = lookup_with_offers(offers_page(vec![round]), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(80_00, "GBP"));
    assert_eq!(quote.itinerary.unwrap().stops, Some(0));
}

#[tokio::test]
async fn offers_without_readable_segments_lose_their_itinerary_and_fail_a_limit() {
    let mut bare = offer("45.00", "GBP", false);
    bare["slices"] = json!("n/a");
    bare.as_object_mut().unwrap().remove("owner");
    let quote = lookup_with_offers(offers_page(vec![bare.clone()]), &lhr_jfk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(45_00, "GBP"));
    assert_eq!(quote.itinerary, None);

    // Its connections cannot be counted, so it cannot be shown to meet a limit.
    let mut key = lhr_jfk();
    key.max_stops = Some(2);
    assert_eq!(
        lookup_with_offers(offers_page(vec![bare]), &key).await,
        Ok(None)
    );
}

#[tokio::test]
async fn takes_the_cheapest_complete_offer_whatever_the_page_order() {
    let page = offers_page(vec![
        offer("120.00", "GBP", false),
        // A partial offer prices one slice only: never a fare.
        offer("20.00", "GBP", true),
        offer("89.90", "GBP", false),
        offer("89.905", "GBP", false),
    ]);
    let quote = lookup_with_offers(page, &lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(89_90, "GBP"));
}

#[tokio::test]
async fn quotes_the_offer_currency_when_another_was_asked_for() {
    // Duffel prices in the account's billing currency whatever the lookup asks.
    let quote = lookup_with_offers(offers_page(vec![sdk_offer()]), &key(None, 1, "EUR"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quote.price, money(45_00, "GBP"));
}

#[tokio::test]
async fn no_offers_is_none() {
    assert_eq!(
        lookup_with_offers(offers_page(vec![]), &lhr_jfk()).await,
        Ok(None)
    );
}

#[tokio::test]
async fn only_partial_offers_is_none() {
    let page = offers_page(vec![offer("20.00", "GBP", true)]);
    assert_eq!(lookup_with_offers(page, &lhr_jfk()).await, Ok(None));
}

// ----- errors ------------------------------------------------------------------

/// The offer request answering `template`; the offers list is never asked.
async fn create_error_with(template: ResponseTemplate) -> UpstreamError {
    let server = MockServer::start().await;
    mount_create(&server, template, 1).await;
    mount_offers(&server, offers_page(vec![sdk_offer()]), 0).await;
    source(&server).cheapest(&lhr_jfk()).await.unwrap_err()
}

/// The offer request succeeding, then the offers list answering `template`.
async fn list_error_with(template: ResponseTemplate) -> UpstreamError {
    lookup_with_offers(template, &lhr_jfk()).await.unwrap_err()
}

#[tokio::test]
async fn a_429_with_ratelimit_reset_is_rate_limited_until_the_reset() {
    let reset = Timestamp::now().as_second() + 30;
    let template = json_reply(429, fixture!("duffel-error-429.json"))
        .insert_header("ratelimit-limit", "60")
        .insert_header("ratelimit-remaining", "0")
        .insert_header("ratelimit-reset", reset.to_string().as_str());
    let error = create_error_with(template).await;
    let UpstreamError::RateLimited {
        retry_after: Some(wait),
    } = error
    else {
        panic!("expected RateLimited with a wait, got {error:?}");
    };
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_429_on_the_offers_list_honours_retry_after() {
    let template =
        json_reply(429, fixture!("duffel-error-429.json")).insert_header("retry-after", "7");
    assert_eq!(
        list_error_with(template).await,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn a_429_without_headers_or_body_is_rate_limited() {
    assert_eq!(
        create_error_with(ResponseTemplate::new(429)).await,
        UpstreamError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_500_airline_error_is_upstream_with_its_code() {
    assert_eq!(
        create_error_with(json_reply(500, fixture!("duffel-error-500-airline.json"))).await,
        UpstreamError::Upstream {
            status: 500,
            code: Some("airline_unknown".into()),
            message: "Unexpected Airline Error: The airline responded with an unexpected error. \
                      (source iberia) [request_id FmXeZifDA60QOlgAAODB]"
                .into(),
        }
    );
}

#[tokio::test]
async fn a_401_is_an_auth_error_naming_the_variable() {
    let body = r#"{"meta":{"status":401,"request_id":"FsKp0nx1"},"errors":[{
        "type":"authentication_error","title":"Unauthorized request",
        "message":"The provided access token is not valid",
        "documentation_url":"https://duffel.com/docs/api/overview/errors","code":"unauthorized"}]}"#;
    let error = create_error_with(json_reply(401, body)).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert_eq!(
        message,
        "Duffel refused the access token (HTTP 401, code unauthorized: Unauthorized request: \
         The provided access token is not valid [request_id FsKp0nx1]); check DUFFEL_ACCESS_TOKEN"
    );
}

#[tokio::test]
async fn a_403_is_an_auth_error_too() {
    let error = create_error_with(json_reply(403, "")).await;
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(message.contains("DUFFEL_ACCESS_TOKEN"), "{message}");
}

#[tokio::test]
async fn a_422_validation_error_is_rejected_with_code_field_and_message() {
    let body = r#"{"meta":{"status":422,"request_id":"FsV4l1d"},"errors":[{
        "type":"validation_error","title":"Invalid departure date",
        "message":"The departure date must be in the future",
        "source":{"field":"departure_date","pointer":"/slices/0/departure_date"},
        "documentation_url":"https://duffel.com/docs/api/overview/errors","code":"invalid_date"}]}"#;
    assert_eq!(
        create_error_with(json_reply(422, body)).await,
        UpstreamError::Rejected {
            status: 422,
            code: Some("invalid_date".into()),
            message: "Invalid departure date: The departure date must be in the future \
                      (field `departure_date`) [request_id FsV4l1d]"
                .into(),
        }
    );
}

#[tokio::test]
async fn a_400_is_rejected() {
    let body = r#"{"errors":[{"type":"invalid_request_error","title":"Malformed JSON",
        "message":"Malformed JSON","code":"malformed_json"}]}"#;
    assert_eq!(
        create_error_with(json_reply(400, body)).await,
        UpstreamError::Rejected {
            status: 400,
            code: Some("malformed_json".into()),
            message: "Malformed JSON".into(),
        }
    );
}

#[tokio::test]
async fn a_404_on_the_offers_list_is_rejected() {
    let body = r#"{"errors":[{"type":"invalid_request_error","title":"Not found",
        "message":"The resource you are trying to access does not exist.","code":"not_found"}]}"#;
    let error = list_error_with(json_reply(404, body)).await;
    assert!(
        matches!(&error, UpstreamError::Rejected { status: 404, code: Some(c), .. } if c == "not_found"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreadable_error_body_keeps_the_status_and_a_short_clean_excerpt() {
    let html = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>",
        "padding ".repeat(100)
    );
    let error = create_error_with(ResponseTemplate::new(502).set_body_raw(html, "text/html")).await;
    let UpstreamError::Upstream {
        status: 502,
        code: None,
        message,
    } = &error
    else {
        panic!("expected Upstream 502, got {error:?}");
    };
    assert!(
        message.starts_with("unrecognised error body: <html> <head><title>502 Bad Gateway"),
        "{message}"
    );
    assert!(message.chars().count() <= "unrecognised error body: ".len() + 201);
    assert!(!message.contains('\n'));
}

// ----- unreadable successes ----------------------------------------------------------

#[tokio::test]
async fn a_truncated_offer_request_reply_is_a_decode_error() {
    let full = sdk_fixture();
    let error = create_error_with(json_reply(201, &full.as_bytes()[..full.len() / 2])).await;
    let UpstreamError::Decode(message) = &error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.starts_with("offer request reply: "), "{message}");
    assert!(message.contains("EOF while parsing"), "{message}");
}

#[tokio::test]
async fn an_offer_request_reply_without_an_id_is_a_decode_error() {
    let error = create_error_with(json_reply(201, r#"{"data":{"offers":[]}}"#)).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.contains("missing field `id`")),
        "{error:?}"
    );
    let error = create_error_with(json_reply(201, r#"{"data":{"id":" "}}"#)).await;
    assert_eq!(
        error,
        UpstreamError::Decode("offer request reply has an empty id".into())
    );
}

#[tokio::test]
async fn a_malformed_offers_page_is_a_decode_error() {
    // An offer without `total_amount`.
    let mut broken = sdk_offer();
    broken.as_object_mut().unwrap().remove("total_amount");
    let error = list_error_with(offers_page(vec![broken])).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.starts_with("offers: missing field `total_amount`")),
        "{error:?}"
    );
    // A price that is not a number.
    let error = list_error_with(offers_page(vec![offer("free", "GBP", false)])).await;
    assert!(
        matches!(&error, UpstreamError::Decode(m) if m.starts_with("offer #1: `free` is not an amount")),
        "{error:?}"
    );
    // Not JSON at all.
    let error = list_error_with(
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
    Mock::given(method("POST"))
        .and(path(OFFER_REQUESTS_PATH))
        .respond_with(json_reply(201, sdk_fixture()).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let duffel = Duffel::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
    );

    let started = tokio::time::Instant::now();
    let result = duffel.cheapest(&lhr_jfk()).await;
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
    let duffel = Duffel::new(
        farewatch::upstream::http::build_client(),
        DuffelConfig {
            base_url,
            access_token: SecretString::from(TOKEN),
            timeout: Duration::from_secs(5),
        },
    );

    let error = duffel.cheapest(&lhr_jfk()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
}

// ----- secrets and configuration -------------------------------------------------------

#[tokio::test]
async fn replies_echoing_the_token_are_redacted_in_errors() {
    let echo = format!("Authorization: Bearer {TOKEN}");
    let rejected = create_error_with(json_reply(
        422,
        format!(r#"{{"errors":[{{"code":"invalid","title":"Bad","message":"{echo}"}}]}}"#),
    ))
    .await;
    let unauthorized = create_error_with(json_reply(
        401,
        format!(r#"{{"errors":[{{"code":"unauthorized","message":"{echo}"}}]}}"#),
    ))
    .await;
    let html = list_error_with(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = create_error_with(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;

    for error in [rejected, unauthorized, html, proxy] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_an_auth_error_without_a_request() {
    let server = MockServer::start().await;
    mount_create(&server, json_reply(201, sdk_fixture()), 0).await;
    let duffel = Duffel::new(
        farewatch::upstream::http::build_client(),
        DuffelConfig {
            access_token: SecretString::from("duffel_live_abc\ndef"),
            ..config(&server, Duration::from_secs(5))
        },
    );

    let error = duffel.cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("DUFFEL_ACCESS_TOKEN"), "{message}");
    assert!(!message.contains("abc"), "{message}");
}

#[test]
fn debug_output_never_shows_the_token() {
    let config = DuffelConfig {
        base_url: DEFAULT_BASE_URL.to_owned(),
        access_token: SecretString::from(TOKEN),
        timeout: DEFAULT_TIMEOUT,
    };
    let duffel = Duffel::new(farewatch::upstream::http::build_client(), config.clone());
    for debug in [
        format!("{duffel:?}"),
        format!("{duffel:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }
    assert!(format!("{duffel:?}").contains("test_mode: false"));
    let test = Duffel::new(
        farewatch::upstream::http::build_client(),
        DuffelConfig {
            access_token: SecretString::from("duffel_test_abc"),
            ..config
        },
    );
    assert!(format!("{test:?}").contains("test_mode: true"));
}

#[test]
fn default_limits_pace_one_lookup_a_second_five_in_flight() {
    let duffel = Duffel::new(
        farewatch::upstream::http::build_client(),
        DuffelConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            access_token: SecretString::from(TOKEN),
            timeout: Duration::from_secs(40),
        },
    );
    let limits = duffel.default_limits();
    assert_eq!(limits.max_concurrency, 5);
    assert_eq!(limits.rate_per_sec, 1.0);
    assert_eq!(limits.timeout, Duration::from_secs(40));
    assert_eq!(duffel.name(), "duffel");
    assert_eq!(DEFAULT_BASE_URL, "https://api.duffel.com");
}
