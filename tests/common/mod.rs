//! Shared helpers for the integration tests: fixtures and fake providers
//! built from the real wire formats in `tests/fixtures/`.
#![allow(dead_code, unreachable_pub)]

pub mod amadeus_fake;
pub mod api_server;
pub mod binary;
pub mod db;
pub mod redis_server;
pub mod tcp_proxy;
pub mod twilio_fake;

use std::path::PathBuf;

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const ACCOUNT_SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const AUTH_TOKEN: &str = "twilio-test-token-do-not-log";
pub const CLIENT_ID: &str = "amadeus-test-client";
pub const CLIENT_SECRET: &str = "amadeus-test-secret-do-not-log";

pub fn fixture(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A date `days` from today, as the sheet wants it.
pub fn days_from_today(days: i64) -> String {
    use jiff::ToSpan;
    jiff::Zoned::now()
        .date()
        .checked_add(days.days())
        .unwrap()
        .to_string()
}

pub fn amadeus_json(body: String, status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/vnd.amadeus+json")
}

/// An Amadeus fake: the token endpoint plus one offers fixture per origin.
pub async fn amadeus(offers_by_origin: &[(&str, &str)]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/security/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("fares/amadeus-token.json"), "application/json"),
        )
        .mount(&server)
        .await;
    for (origin, file) in offers_by_origin {
        Mock::given(method("GET"))
            .and(path("/v2/shopping/flight-offers"))
            .and(query_param("originLocationCode", *origin))
            .respond_with(amadeus_json(fixture(file), 200))
            .mount(&server)
            .await;
    }
    server
}

/// A Twilio fake that accepts every message with the documented 201.
pub async fn twilio_accepting() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        )))
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            fixture("notify/twilio-message-created.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

/// The form fields of a Twilio request.
pub fn form(request: &wiremock::Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The exact SMS a one-way route `ORIGIN`-JFK for one adult on `depart`
/// gets when it is priced at `price_minor` GBP under a maximum of
/// `max_minor` GBP: the alert and its Google Flights link, as the engine
/// renders them.
pub fn alert_to_jfk(origin: &str, depart: &str, price_minor: i64, max_minor: i64) -> String {
    use farewatch::domain::{Currency, Iata, LookupKey, Money};
    use farewatch::notify::sms::{self, AlertText};
    let gbp = Currency::parse("GBP").unwrap();
    let key = LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse("JFK").unwrap(),
        depart: depart.parse().unwrap(),
        return_date: None,
        adults: 1,
        currency: gbp,
        max_stops: None,
    };
    let text = AlertText {
        route: &format!("{origin}-JFK"),
        label: None,
        depart: key.depart,
        return_date: None,
        price: Money::from_minor(price_minor, gbp),
        max_price: Money::from_minor(max_minor, gbp),
    };
    sms::render_with_link(&text, &[&farewatch::links::google_flights_url(&key)])
}
