//! `farewatch flights poll|get` through the binary, against a real Redis.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::fixture;
use serde_json::Value;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn farewatch(dir: &Path, prefix: &str) -> Command {
    let mut cmd = Command::cargo_bin("farewatch").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("REDIS_URL", redis_url())
        .env("FLIGHT_KEY_PREFIX", prefix)
        .current_dir(dir);
    cmd
}

async fn run(mut cmd: Command) -> (i32, String, String) {
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn redis_get(key: &str) -> (Option<String>, i64) {
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
async fn a_demo_poll_writes_snapshots_and_a_second_poll_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("fw-test-{}-demo:flight:", std::process::id());
    for (created, unchanged) in [(4, 0), (0, 4)] {
        let mut cmd = farewatch(dir.path(), &prefix);
        cmd.args([
            "flights", "poll", "--demo", "--once", "--dep", "FRA", "--format", "json",
        ]);
        let (code, stdout, stderr) = run(cmd).await;
        assert_eq!(code, 0, "{stderr}");
        let report: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(report["flights"], 4);
        assert_eq!(report["created"], created);
        assert_eq!(report["refreshed"], unchanged);
    }
    let (value, ttl) = redis_get(&format!("{prefix}LH902")).await;
    let snapshot: Value = serde_json::from_str(&value.expect("a snapshot")).unwrap();
    assert_eq!(snapshot["status"], "delayed");
    assert_eq!(snapshot["dep"]["delay_min"], 45);
    assert!((890..=900).contains(&ttl), "default TTL 15 minutes: {ttl}");

    let mut get = farewatch(dir.path(), &prefix);
    get.args(["flights", "get", "LH902", "--format", "json"]);
    let (code, stdout, stderr) = run(get).await;
    assert_eq!(
        code, 0,
        "read from the snapshot, no provider needed: {stderr}"
    );
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["flight"], "LH902");
    assert_eq!(shown["disrupted"], true);
}

#[tokio::test]
async fn a_poll_against_aviationstack_stores_each_flight_under_its_iata_code() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("fw-test-{}-as:flight:", std::process::id());
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/flights"))
        .and(query_param("dep_iata", "WUH"))
        .and(query_param("access_key", "as-key-do-not-log"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("status/aviationstack-flights-WUH-SZX.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut cmd = farewatch(dir.path(), &prefix);
    cmd.env("AVIATIONSTACK_ACCESS_KEY", "as-key-do-not-log")
        .env("AVIATIONSTACK_BASE_URL", server.uri())
        .args([
            "-v", "flights", "poll", "--once", "--dep", "wuh", "--format", "json",
        ]);
    let (code, stdout, stderr) = run(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    // Five entries, one of them the codeshare twin of another: four
    // flights, five keys (the twin keeps its own, naming the operator).
    assert_eq!(report["flights"], 4);
    assert_eq!(report["created"], 5);
    let (value, _) = redis_get(&format!("{prefix}CA3907")).await;
    let twin: Value = serde_json::from_str(&value.expect("CA3907 stored")).unwrap();
    assert_eq!(twin["operated_by"], "ZH9572");
    let (value, _) = redis_get(&format!("{prefix}HU7087")).await;
    let cancelled: Value = serde_json::from_str(&value.expect("HU7087 stored")).unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(!stdout.contains("as-key-do-not-log") && !stderr.contains("as-key-do-not-log"));

    // The poll left the provider's health for `farewatch providers`.
    let mut providers = farewatch(dir.path(), &prefix);
    providers
        .env("AVIATIONSTACK_ACCESS_KEY", "as-key-do-not-log")
        .args(["providers", "--format", "json"]);
    let (code, stdout, stderr) = run(providers).await;
    assert_eq!(code, 0, "{stderr}");
    let view: Value = serde_json::from_str(&stdout).unwrap();
    let aviationstack = &view["status_providers"][0];
    assert_eq!(aviationstack["name"], "aviationstack");
    assert_eq!(aviationstack["configured"], true);
    assert_eq!(aviationstack["last_run"]["health"]["requests"], 1);
    assert_eq!(aviationstack["last_run"]["health"]["breaker"], "closed");
    assert_eq!(view["status_providers"][1]["configured"], false);
}

#[tokio::test]
async fn polling_without_a_provider_names_what_to_set_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = farewatch(dir.path(), "unused:");
    cmd.args(["flights", "poll", "--once"]);
    let (code, _, stderr) = run(cmd).await;
    assert_eq!(code, 3);
    assert!(
        stderr.contains("AVIATIONSTACK_ACCESS_KEY") && stderr.contains("OPENSKY_CLIENT_ID"),
        "{stderr}"
    );
}

/// A traveller asks for the number on their ticket, often the marketing one:
/// `flights get` shows that designator's own snapshot, naming the flight
/// that operates it, and stores one snapshot per designator.
#[tokio::test]
async fn get_with_a_marketing_number_shows_its_own_snapshot_naming_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("fw-test-{}-cs:flight:", std::process::id());
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/aeroapi/flights/SQ7361"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("status/flightaware-flights-UAL1.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let mut get = farewatch(dir.path(), &prefix);
    get.env("STATUS_PROVIDERS", "flightaware")
        .env("FLIGHTAWARE_API_KEY", "fa-key-do-not-log")
        .env("FLIGHTAWARE_BASE_URL", format!("{}/aeroapi", server.uri()))
        .args(["flights", "get", "SQ7361", "--format", "json"]);
    let (code, stdout, stderr) = run(get).await;
    assert_eq!(code, 0, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["flight"], "SQ7361");
    assert_eq!(shown["operated_by"], "UA1");
    let (operating, _) = redis_get(&format!("{prefix}UA1")).await;
    let operating: Value = serde_json::from_str(&operating.expect("UA1 stored too")).unwrap();
    assert_eq!(operating["operated_by"], Value::Null);
    assert!(!stderr.contains("fa-key-do-not-log"));
}

/// A malformed snapshot lifetime is refused, naming the variable and what
/// was given, before anything is asked or written (it used to fall back to
/// 15 minutes silently).
#[tokio::test]
async fn a_malformed_snapshot_ttl_is_a_config_error_naming_what_was_given() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["flights", "poll", "--demo", "--once"][..],
        &["flights", "get", "LH902", "--demo"][..],
    ] {
        let mut cmd = farewatch(dir.path(), "unused:");
        cmd.env("FLIGHT_SNAPSHOT_TTL", "15x").args(args);
        let (code, stdout, stderr) = run(cmd).await;
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(
            stderr.contains("FLIGHT_SNAPSHOT_TTL: `15x` is not a duration"),
            "{args:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
}
