//! Fare-source failover, daily budgets and named channels, end to end
//! through the binary against fakes built from the real fixtures.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::*;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn farewatch(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("farewatch").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("state.db").display()),
        )
        .current_dir(dir);
    cmd
}

async fn run(mut cmd: Command) -> (i32, Value, String) {
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// A SerpApi fake answering every search with the captured SIN->AUS reply (USD 920).
async fn serpapi_ok() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("fares/serpapi-google-flights-SIN-AUS-outbound.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

fn write_sheet(dir: &Path, rows: &[String]) {
    let mut csv = String::from("origin,destination,depart_date,max_price,currency,phone\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    std::fs::write(dir.join("routes.csv"), csv).unwrap();
}

fn with_amadeus_and_twilio(cmd: &mut Command, amadeus: &MockServer, twilio: &MockServer) {
    cmd.env("AMADEUS_CLIENT_ID", CLIENT_ID)
        .env("AMADEUS_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMADEUS_BASE_URL", amadeus.uri())
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_FROM", "+15005550006")
        .env("TWILIO_BASE_URL", twilio.uri());
}

#[tokio::test]
async fn a_failing_primary_source_falls_through_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let serpapi = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("fares/serpapi-error-401.json"), "application/json"),
        )
        .expect(1)
        .mount(&serpapi)
        .await;
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456",
            days_from_today(30)
        )],
    );
    let mut cmd = farewatch(dir.path());
    with_amadeus_and_twilio(&mut cmd, &amadeus, &twilio);
    cmd.env("FARE_SOURCES", "serpapi,amadeus")
        .env("SERPAPI_API_KEY", "serp-secret-do-not-log")
        .env("SERPAPI_BASE_URL", serpapi.uri())
        .args(["check", "--format", "json"]);
    let (code, json, stderr) = run(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    let route = &json["routes"][0];
    assert_eq!(route["cheapest"]["provider"], "amadeus");
    assert_eq!(route["alert"], "sent");
    let providers = json["summary"]["providers"].as_array().unwrap();
    assert_eq!(providers[0]["name"], "serpapi");
    assert_eq!(providers[0]["errors_by_kind"]["auth"], 1);
    assert_eq!(providers[1]["name"], "amadeus");
    assert!(!stderr.contains("serp-secret-do-not-log"));
}

#[tokio::test]
async fn a_spent_daily_budget_skips_the_source_across_runs_and_providers_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let serpapi = serpapi_ok().await;
    let amadeus = amadeus(&[("SIN", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    // Two different lookups; SerpApi may answer one per day.
    write_sheet(
        dir.path(),
        &[
            format!("SIN,AUS,{},5000,USD,+447911123456", days_from_today(30)),
            format!("SIN,AUS,{},5000,USD,+447911123456", days_from_today(31)),
        ],
    );
    let configure = |cmd: &mut Command| {
        with_amadeus_and_twilio(cmd, &amadeus, &twilio);
        cmd.env("FARE_SOURCES", "serpapi,amadeus")
            .env("SERPAPI_API_KEY", "k")
            .env("SERPAPI_BASE_URL", serpapi.uri())
            .env("SERPAPI_DAILY_BUDGET", "1")
            .env("SERPAPI_MAX_CONCURRENCY", "1");
    };
    let mut first = farewatch(dir.path());
    configure(&mut first);
    first.args(["check", "--format", "json"]);
    let (_, json, stderr) = run(first).await;
    let providers: Vec<&str> = json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cheapest"]["provider"].as_str().unwrap())
        .collect();
    let mut sorted = providers.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["amadeus", "serpapi"],
        "one search on SerpApi, the other fell through: {stderr}"
    );
    assert_eq!(json["summary"]["providers"][0]["budget"]["remaining"], 0);

    // A second run the same day: SerpApi is not asked at all.
    let mut second = farewatch(dir.path());
    configure(&mut second);
    second.args(["check", "--format", "json"]);
    let (_, json, _) = run(second).await;
    assert!(json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["cheapest"]["provider"] == "amadeus"));
    let searches = serpapi.received_requests().await.unwrap().len();
    assert_eq!(searches, 1, "the budget held across runs");

    let mut providers = farewatch(dir.path());
    configure(&mut providers);
    providers.args(["providers", "--format", "json"]);
    let (code, json, _) = run(providers).await;
    assert_eq!(code, 0);
    let serp = json["fare_sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "serpapi")
        .unwrap()
        .clone();
    assert_eq!(serp["priority"], 1);
    assert_eq!(serp["daily_budget"], 1);
    assert_eq!(serp["remaining_today"], 0);
    assert!(serp["last_run"]["health"]["requests"].as_u64().is_some());
}

#[tokio::test]
async fn a_slack_channel_receives_alerts_without_any_sms_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T000/B000/XXXX"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("notify/slack-webhook-ok.txt"), "text/html"),
        )
        .expect(1)
        .mount(&slack)
        .await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,slack:team",
            days_from_today(30)
        )],
    );
    let mut cmd = farewatch(dir.path());
    cmd.env("AMADEUS_CLIENT_ID", CLIENT_ID)
        .env("AMADEUS_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMADEUS_BASE_URL", amadeus.uri())
        .env(
            "SLACK_WEBHOOK_TEAM",
            format!("{}/services/T000/B000/XXXX", slack.uri()),
        )
        .args(["check", "--format", "json"]);
    let (code, json, stderr) = run(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["routes"][0]["alert"], "sent");
    let request = &slack.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("LHR-JFK") && text.contains("312.46"),
        "{text}"
    );
}

#[tokio::test]
async fn a_recipient_on_an_unconfigured_channel_is_a_row_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[
            format!("LHR,JFK,{},350,GBP,+447911123456", days_from_today(30)),
            format!("LHR,JFK,{},350,GBP,discord:ops", days_from_today(31)),
        ],
    );
    let mut cmd = farewatch(dir.path());
    with_amadeus_and_twilio(&mut cmd, &amadeus, &twilio);
    cmd.args(["check", "--format", "json"]);
    let (code, json, stderr) = run(cmd).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("routes.csv:3: phone:") && stderr.contains("DISCORD_WEBHOOK_OPS"),
        "{stderr}"
    );
    assert_eq!(json["summary"]["invalid_rows"], 1);
    assert_eq!(json["summary"]["alerts_sent"], 1, "the other row still ran");
}

/// The `fare_sources` entry named `name` in `farewatch providers --format json`.
fn source<'j>(json: &'j Value, name: &str) -> &'j Value {
    json["fare_sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

#[tokio::test]
async fn duffel_has_a_default_daily_budget_that_0_lifts_and_providers_explains_it() {
    let dir = tempfile::tempdir().unwrap();
    let providers = |budget: Option<&str>, format: &str| {
        let mut cmd = farewatch(dir.path());
        cmd.env("DUFFEL_ACCESS_TOKEN", "duffel_test_x")
            .args(["providers", "--format", format]);
        if let Some(budget) = budget {
            cmd.env("DUFFEL_DAILY_BUDGET", budget);
        }
        cmd
    };

    let (code, json, stderr) = run(providers(None, "json")).await;
    assert_eq!(code, 0, "{stderr}");
    let duffel = source(&json, "duffel");
    assert_eq!(duffel["daily_budget"], 1000);
    assert_eq!(duffel["remaining_today"], 1000);
    assert!(
        source(&json, "serpapi")["daily_budget"].is_null(),
        "other sources keep no default budget"
    );

    let (_, json, _) = run(providers(Some("250"), "json")).await;
    assert_eq!(source(&json, "duffel")["daily_budget"], 250);
    let (_, json, _) = run(providers(Some("0"), "json")).await;
    assert!(
        source(&json, "duffel")["daily_budget"].is_null(),
        "0 is unlimited"
    );

    let output = providers(None, "human").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let duffel_line = text.lines().find(|l| l.contains("duffel")).unwrap();
    assert!(
        duffel_line.contains("budget 1000 of 1000 searches left today"),
        "{text}"
    );
    assert!(
        text.contains("1,500"),
        "the excess-search fee is explained: {text}"
    );
    assert!(text.contains("DUFFEL_DAILY_BUDGET"), "{text}");
    assert!(
        text.contains("Amadeus Self-Service shut on 2026-07-17") && text.contains("Enterprise"),
        "{text}"
    );
}

#[tokio::test]
async fn a_check_run_applies_duffels_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let duffel = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/air/offer_requests"))
        // Rejected credentials: an answer that is not retried.
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            r#"{"errors":[{"type":"authentication_error","code":"unauthorized","title":"Unauthorized","message":"Invalid token"}]}"#,
            "application/json",
        ))
        .mount(&duffel)
        .await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456",
            days_from_today(30)
        )],
    );
    let mut cmd = farewatch(dir.path());
    cmd.env("DUFFEL_ACCESS_TOKEN", "duffel_test_x")
        .env("DUFFEL_BASE_URL", duffel.uri())
        .args(["check", "--dry-run", "--format", "json"]);
    let (_, json, stderr) = run(cmd).await;
    let providers = json["summary"]["providers"]
        .as_array()
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(providers[0]["name"], "duffel");
    assert_eq!(providers[0]["budget"]["per_day"], 1000, "{json}");
}
