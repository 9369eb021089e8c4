//! End-to-end tests of the `farewatch` binary: a sheet in, SMS requests out,
//! exit code and JSON report checked, against fakes built from the real
//! provider fixtures.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::*;
use serde_json::Value;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A `farewatch` command with a clean environment, run in `dir`.
fn farewatch(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("farewatch").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .current_dir(dir);
    cmd
}

fn configured(dir: &Path, amadeus: &MockServer, twilio: &MockServer) -> Command {
    let mut cmd = farewatch(dir);
    cmd.env("AMADEUS_CLIENT_ID", CLIENT_ID)
        .env("AMADEUS_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMADEUS_BASE_URL", amadeus.uri())
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_FROM", "+15005550006")
        .env("TWILIO_BASE_URL", twilio.uri())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("state.db").display()),
        );
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

async fn run(mut cmd: Command) -> Run {
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_sheet(dir: &Path, rows: &[String]) {
    let mut csv = String::from("origin,destination,depart_date,max_price,currency,phone,label\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    std::fs::write(dir.join("routes.csv"), csv).unwrap();
}

#[tokio::test]
async fn demo_runs_offline_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = farewatch(dir.path());
    cmd.args(["check", "--demo", "--format", "json"]);
    let run = run(cmd).await;
    let json = run.json();
    let summary = &json["summary"];
    assert!(
        summary["routes"].as_u64().unwrap() >= 5,
        "built-in sheet used: {summary}"
    );
    assert!(summary["lookups"].as_u64().unwrap() > 0);
    assert_eq!(summary["lookup_errors"], 0);
    assert_eq!(summary["invalid_rows"], 0);
    let sent = summary["alerts_sent"].as_u64().unwrap();
    assert!(sent > 0, "the demo sheet is built to alert: {summary}");
    // The console notifier prints each SMS on stderr when stdout carries JSON.
    assert_eq!(
        run.stderr.matches("SMS to +").count() as u64,
        sent,
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
}

#[tokio::test]
async fn demo_prefers_a_routes_csv_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},10000,EUR,+447911123456,mine",
            days_from_today(20)
        )],
    );
    let mut cmd = farewatch(dir.path());
    cmd.args(["check", "--demo", "--format", "json"]);
    let run = run(cmd).await;
    let json = run.json();
    assert_eq!(json["summary"]["routes"], 1);
    assert_eq!(json["routes"][0]["label"], "mine");
    assert_eq!(json["routes"][0]["alert"], "sent");
    assert_eq!(run.code, 0);
}

#[tokio::test]
async fn a_drop_is_texted_once_and_a_second_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[
        ("LHR", "fares/amadeus-flight-offers-LHR-JFK.json"),
        ("SYD", "fares/amadeus-flight-offers-SYD-BKK-spec.json"),
    ])
    .await;
    let twilio = twilio_accepting().await;
    let depart = days_from_today(30);
    write_sheet(
        dir.path(),
        &[
            format!("LHR,JFK,{depart},350,GBP,+447911123456,NYC"),
            format!("SYD,BKK,{depart},300,EUR,+61412345678,BKK"),
        ],
    );

    let mut first = configured(dir.path(), &amadeus, &twilio);
    first.args(["check", "--format", "json"]);
    let first = run(first).await;
    assert_eq!(first.code, 0, "stderr: {}", first.stderr);
    let json = first.json();
    assert_eq!(json["summary"]["routes"], 2);
    assert_eq!(json["summary"]["lookups"], 2);
    assert_eq!(json["summary"]["below"], 1);
    assert_eq!(json["summary"]["alerts_sent"], 1);
    assert_eq!(json["summary"]["alerts_failed"], 0);
    let nyc = &json["routes"][0];
    assert_eq!(nyc["row"], 2);
    assert_eq!(nyc["status"], "below");
    assert_eq!(nyc["alert"], "sent");
    assert_eq!(nyc["price"], 312.46);
    assert_eq!(nyc["currency"], "GBP");
    assert_eq!(nyc["cheapest"]["provider"], "amadeus");
    assert_eq!(nyc["cheapest"]["cached"], false, "Amadeus quotes are live");
    assert!(nyc["cheapest"]["fetched_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .is_ok());
    let bkk = &json["routes"][1];
    assert_eq!(bkk["status"], "above");
    assert_eq!(bkk["price"], 355.34);
    assert_eq!(bkk["alert"], "none");

    let requests = twilio.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let fields = form(&requests[0]);
    assert_eq!(field(&fields, "To"), Some("+447911123456"));
    assert_eq!(field(&fields, "From"), Some("+15005550006"));
    let body = field(&fields, "Body").unwrap();
    assert!(
        body.contains("LHR-JFK")
            && body.contains("312.46")
            && body.contains("350.00")
            && body.contains(&depart),
        "{body}"
    );
    assert!(body.chars().count() <= 160, "one segment: {body}");

    let mut second = configured(dir.path(), &amadeus, &twilio);
    second.args(["check", "--format", "json"]);
    let second = run(second).await;
    assert_eq!(second.code, 0, "stderr: {}", second.stderr);
    let json = second.json();
    assert_eq!(json["summary"]["alerts_sent"], 0);
    assert_eq!(json["routes"][0]["alert"], "suppressed");
    assert_eq!(
        twilio.received_requests().await.unwrap().len(),
        1,
        "no second SMS"
    );
}

#[tokio::test]
async fn identical_lookups_from_different_rows_share_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    let depart = days_from_today(30);
    write_sheet(
        dir.path(),
        &[
            format!("LHR,JFK,{depart},300,GBP,+447911123456,a"),
            format!("LHR,JFK,{depart},300,GBP,+61412345678,b"),
        ],
    );
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--format", "json"]);
    let run = run(cmd).await;
    let json = run.json();
    assert_eq!(json["summary"]["lookups"], 1);
    let searches = amadeus
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v2/shopping/flight-offers")
        .count();
    assert_eq!(searches, 1);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
}

#[tokio::test]
async fn dry_run_evaluates_but_sends_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    for _ in 0..2 {
        let mut cmd = configured(dir.path(), &amadeus, &twilio);
        cmd.args(["check", "--dry-run", "--format", "json"]);
        let run = run(cmd).await;
        let json = run.json();
        assert_eq!(
            json["routes"][0]["alert"], "dry_run",
            "state was not advanced by the previous dry run"
        );
        assert_eq!(json["summary"]["alerts_sent"], 0);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    }
    assert!(twilio.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_rows_are_reported_with_file_and_line_and_the_rest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[
            format!("LHR,JFK,{},350,GBP,+447911123456,good", days_from_today(30)),
            "LHR,JFK,not-a-date,350,GBP,+447911123456,bad date".to_string(),
            format!(
                "LHR,JFK,{},-5,GBP,+447911123456,bad price",
                days_from_today(30)
            ),
        ],
    );
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--format", "json"]);
    let run = run(cmd).await;
    assert_eq!(
        run.code, 2,
        "invalid rows make a partial run; stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("routes.csv:3: depart_date:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("routes.csv:4: max_price:"),
        "{}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(json["summary"]["invalid_rows"], 2);
    assert_eq!(json["summary"]["alerts_sent"], 1);
}

#[tokio::test]
async fn a_failing_provider_is_reported_with_provider_and_route() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    Mock::given(method("GET"))
        .and(path("/v2/shopping/flight-offers"))
        .and(query_param("originLocationCode", "CDG"))
        .respond_with(amadeus_json(fixture("fares/amadeus-error-500.json"), 500))
        .mount(&amadeus)
        .await;
    let twilio = twilio_accepting().await;
    let depart = days_from_today(30);
    write_sheet(
        dir.path(),
        &[
            format!("LHR,JFK,{depart},350,GBP,+447911123456,ok"),
            format!("CDG,JFK,{depart},350,EUR,+447911123456,broken"),
        ],
    );
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--format", "json"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["summary"]["lookup_errors"], 1);
    assert_eq!(
        json["routes"][0]["alert"], "sent",
        "the healthy route is not held back"
    );
    let broken = &json["routes"][1];
    assert_eq!(broken["status"], "error");
    let error = broken["errors"][0].as_str().unwrap();
    assert!(
        error.contains("amadeus") && error.contains("CDG-JFK") && error.contains("500"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_credentials_name_the_variables_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    let mut cmd = farewatch(dir.path());
    cmd.env("AMADEUS_CLIENT_ID", CLIENT_ID).args(["check"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3);
    for name in [
        "AMADEUS_CLIENT_SECRET",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM",
    ] {
        assert!(
            run.stderr.contains(name),
            "{name} missing from: {}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("AMADEUS_CLIENT_ID,"),
        "a set variable is not reported: {}",
        run.stderr
    );
}

#[tokio::test]
async fn an_unreadable_sheet_exits_3_and_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[]).await;
    let twilio = twilio_accepting().await;
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--routes", "nowhere.csv"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("nowhere.csv"), "{}", run.stderr);
    assert!(amadeus.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn secrets_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    // Twilio rejects the credentials: the error path must not echo them.
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("notify/twilio-error-20003.json"),
            "application/json",
        ))
        .mount(&twilio)
        .await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["-vv", "check", "--format", "json"]);
    let run = run(cmd).await;
    assert_eq!(
        run.code, 2,
        "a failed send is a partial run: {}",
        run.stderr
    );
    for secret in [AUTH_TOKEN, CLIENT_SECRET, "CpjU0sEenniHCgPDrndzOSWFk5mN"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[tokio::test]
async fn the_oauth_token_is_reused_across_cron_runs() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},100,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    for _ in 0..2 {
        let mut cmd = configured(dir.path(), &amadeus, &twilio);
        cmd.args(["check", "--format", "json"]);
        let run = run(cmd).await;
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    }
    let requests = amadeus.received_requests().await.unwrap();
    let tokens = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/security/oauth2/token")
        .count();
    let searches = requests
        .iter()
        .filter(|r| r.url.path() == "/v2/shopping/flight-offers")
        .count();
    assert_eq!(
        (tokens, searches),
        (1, 2),
        "the second run reads the token from the state store"
    );
}

#[tokio::test]
async fn a_sheet_published_at_a_url_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    let sheet_server = MockServer::start().await;
    let csv = format!(
        "origin,destination,depart_date,max_price,currency,phone\nLHR,JFK,{},350,GBP,+447911123456\n",
        days_from_today(30)
    );
    Mock::given(method("GET"))
        .and(path("/spreadsheets/d/e/abc/pub"))
        .and(query_param("output", "csv"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(csv, "text/csv"))
        .expect(1)
        .mount(&sheet_server)
        .await;
    let url = format!("{}/spreadsheets/d/e/abc/pub?output=csv", sheet_server.uri());
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--format", "json", "--routes", &url]);
    let run = run(cmd).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.json()["summary"]["alerts_sent"], 1);
}

#[tokio::test]
async fn the_daemon_runs_cycles_and_exits_0_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("farewatch"))
        .args(["daemon", "--demo", "--interval", "1h", "--format", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // One compact JSON report per cycle: the first arrives at once.
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("a first cycle report")
        .unwrap()
        .expect("a line");
    let report: Value = serde_json::from_str(&first).unwrap();
    assert!(report["summary"]["routes"].as_u64().unwrap() > 0);
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("the daemon stops after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        lines.next_line().await.unwrap(),
        None,
        "no second cycle was started"
    );
}

#[tokio::test]
async fn an_unusable_state_database_stops_the_run_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    // A regular file where the database's directory should be.
    std::fs::write(dir.path().join("not-a-dir"), b"").unwrap();
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.env(
        "DATABASE_URL",
        format!(
            "sqlite://{}/state.db",
            dir.path().join("not-a-dir").display()
        ),
    )
    .args(["check"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("not-a-dir") && run.stderr.contains("DATABASE_URL"),
        "{}",
        run.stderr
    );
    assert!(twilio.received_requests().await.unwrap().is_empty());
    assert!(amadeus.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_daemon_serves_healthz_and_prometheus_metrics() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("farewatch"))
        .args([
            "daemon",
            "--demo",
            "--interval",
            "1h",
            "--format",
            "json",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), stderr.next_line())
            .await
            .expect("the daemon announces its metrics address")
            .unwrap()
            .expect("stderr open");
        if let Some(url) = line.strip_prefix("serving /healthz and /metrics on ") {
            break url.to_owned();
        }
    };
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(std::time::Duration::from_secs(60), stdout.next_line())
        .await
        .expect("a first cycle")
        .unwrap();
    let client = farewatch::upstream::http::build_client();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "farewatch_cycle_duration_seconds",
        "farewatch_lookups_total{provider=\"demo\",outcome=\"ok\"}",
        "farewatch_provider_latency_seconds",
        "farewatch_breaker_state{provider=\"demo\"} 0",
        "farewatch_cache_misses_total",
        "farewatch_alerts_sent_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn watched_flights_are_alerted_alongside_fares() {
    let dir = tempfile::tempdir().unwrap();
    let today = jiff::Zoned::now().date();
    std::fs::write(
        dir.path().join("flights.csv"),
        format!("flight,date,phone,notify_on\nLH902,{today},+447911123456,delay\nLH2020,{today},+447911123456,cancel\nLH400,{today},+447911123456,\n"),
    )
    .unwrap();
    let mut cmd = farewatch(dir.path());
    cmd.args([
        "check",
        "--demo",
        "--flights",
        "flights.csv",
        "--format",
        "json",
    ]);
    let run = run(cmd).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    let flights = json["flights"].as_array().unwrap();
    assert_eq!(flights.len(), 3);
    let alerts = |i: usize| flights[i]["alerts"].as_array().unwrap().clone();
    assert!(
        alerts(0)[0].as_str().unwrap().contains("LH902")
            && alerts(0)[0].as_str().unwrap().contains("delayed")
    );
    assert!(alerts(1)[0].as_str().unwrap().contains("cancelled"));
    assert!(alerts(2).is_empty(), "an on-time flight is not news");
    assert_eq!(flights[1]["status"], "cancelled");
}

#[tokio::test]
async fn flights_without_a_status_provider_stop_the_run_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    std::fs::write(
        dir.path().join("flights.csv"),
        format!(
            "flight,date,phone\nLH400,{},+447911123456\n",
            days_from_today(1)
        ),
    )
    .unwrap();
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--flights", "flights.csv"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("AVIATIONSTACK_ACCESS_KEY"),
        "{}",
        run.stderr
    );
    assert!(
        twilio.received_requests().await.unwrap().is_empty(),
        "no fare alert went out"
    );
}

#[tokio::test]
async fn a_zero_quote_ttl_turns_the_cache_off_and_never_contacts_redis() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    write_sheet(
        dir.path(),
        &[format!(
            "LHR,JFK,{},350,GBP,+447911123456,x",
            days_from_today(30)
        )],
    );
    for ttl in ["0", "0s"] {
        let mut cmd = configured(dir.path(), &amadeus, &twilio);
        // Nothing listens on port 1: any attempt to use Redis would warn.
        // The fleet-wide limits are Redis's other user (tests/fleet_limits.rs):
        // off, so that only the cache could touch it.
        cmd.env("FAREWATCH_QUOTE_TTL", ttl)
            .env("REDIS_URL", "redis://127.0.0.1:1/")
            .env("FAREWATCH_FLEET_LIMITS", "off")
            .args(["check", "--dry-run", "--format", "json"]);
        let run = run(cmd).await;
        assert_eq!(run.code, 0, "FAREWATCH_QUOTE_TTL={ttl}: {}", run.stderr);
        assert!(!run.stderr.contains("Redis"), "{}", run.stderr);
        assert_eq!(run.json()["summary"]["cache_hits"], 0);
    }
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.env("FAREWATCH_QUOTE_TTL", "soon").args(["check"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("FAREWATCH_QUOTE_TTL: `soon` is not a duration"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_malformed_redis_url_never_shows_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "redis//:hunter2-redis-secret@127.0.0.1:6379",
        "redis://:hunter2-redis-secret@127.0.0.1:port/0",
        "redis://user:hunter2-redis-secret@exa mple/",
    ] {
        let mut cmd = farewatch(dir.path());
        cmd.env("REDIS_URL", url)
            .args(["check", "--demo", "--format", "json"]);
        let run = run(cmd).await;
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert_eq!(
            run.stderr.matches("is not a usable Redis URL").count(),
            1,
            "reported once: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("hunter2-redis-secret") && !run.stdout.contains("hunter2"),
            "{url} leaked: {}",
            run.stderr
        );
    }
}

/// Credentials a routes URL may carry: basic auth and query-string tokens.
const URL_SECRETS: [&str; 3] = ["pw-in-userinfo", "tok-in-query", "key-in-query"];

fn routes_url(base: &str) -> String {
    let (scheme, host) = base.split_once("://").unwrap();
    format!(
        "{scheme}://sheets:{}@{host}/r.csv?gid=0&token={}&key={}",
        URL_SECRETS[0], URL_SECRETS[1], URL_SECRETS[2]
    )
}

fn assert_no_url_secret(run: &Run) {
    for secret in URL_SECRETS {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[tokio::test]
async fn an_unreachable_routes_url_never_shows_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[]).await;
    let twilio = twilio_accepting().await;
    // Nothing listens on port 1.
    let url = routes_url("http://127.0.0.1:1");
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["-vv", "check", "--routes", &url]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot download routes sheet http://sheets:***@127.0.0.1:1/r.csv?gid=0&token=***&key=***"),
        "{}",
        run.stderr
    );
    assert_no_url_secret(&run);
}

#[tokio::test]
async fn a_routes_url_is_named_without_credentials_in_row_errors_and_status_errors() {
    let dir = tempfile::tempdir().unwrap();
    let amadeus = amadeus(&[("LHR", "fares/amadeus-flight-offers-LHR-JFK.json")]).await;
    let twilio = twilio_accepting().await;
    let sheet_server = MockServer::start().await;
    let csv = format!(
        "origin,destination,depart_date,max_price,currency,phone\nLHR,JFK,{},350,GBP,+447911123456\nLH,JFK,{},350,GBP,+447911123456\n",
        days_from_today(30),
        days_from_today(30)
    );
    Mock::given(method("GET"))
        .and(path("/r.csv"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(csv, "text/csv"))
        .mount(&sheet_server)
        .await;
    let url = routes_url(&sheet_server.uri());
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["-vv", "check", "--routes", &url]);
    let partial = run(cmd).await;
    assert_eq!(partial.code, 2, "one bad row: {}", partial.stderr);
    assert!(
        partial
            .stderr
            .contains("r.csv?gid=0&token=***&key=***:3: origin"),
        "{}",
        partial.stderr
    );
    assert_no_url_secret(&partial);

    let missing = routes_url(&format!("{}/gone", sheet_server.uri()));
    let mut cmd = configured(dir.path(), &amadeus, &twilio);
    cmd.args(["check", "--routes", &missing]);
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("answered HTTP 404"), "{}", run.stderr);
    assert_no_url_secret(&run);
}

#[tokio::test]
async fn help_never_shows_secret_environment_values() {
    let dir = tempfile::tempdir().unwrap();
    let url = routes_url("https://sheets.example");
    for args in [
        &["check", "--help"][..],
        &["daemon", "--help"],
        &["providers", "--help"],
    ] {
        let mut cmd = farewatch(dir.path());
        cmd.env("FAREWATCH_ROUTES", &url)
            .env("FAREWATCH_FLIGHTS", &url)
            .env("REDIS_URL", &url)
            .env("DATABASE_URL", &url)
            .args(args);
        let run = run(cmd).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("FAREWATCH_ROUTES"), "{}", run.stdout);
        assert_no_url_secret(&run);
    }
}

/// `farewatch migrate` creates the state database, migrates an older one in
/// place (the committed version 2 file) and says which version it found;
/// a database from a newer farewatch is refused with exit 3.
#[tokio::test]
async fn migrate_creates_upgrades_and_refuses_newer_databases() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = |db: &std::path::Path| {
        let mut cmd =
            common::binary::farewatch(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9");
        cmd.env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .arg("migrate");
        common::binary::run(cmd)
    };
    let now = farewatch::store::SCHEMA_VERSION;

    let fresh = dir.path().join("fresh.db");
    let created = migrate(&fresh).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created
            .stdout
            .contains(&format!("created at schema version {now}")),
        "{}",
        created.stdout
    );

    let old = dir.path().join("old.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/store/farewatch-v2.db"
        ),
        &old,
    )
    .unwrap();
    let upgraded = migrate(&old).await;
    assert_eq!(upgraded.code, 0, "{}", upgraded.stderr);
    assert!(
        upgraded
            .stdout
            .contains(&format!("migrated from schema version 2 to {now}")),
        "{}",
        upgraded.stdout
    );
    let again = migrate(&old).await;
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    let newer = dir.path().join("newer.db");
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", now + 1).unwrap();
    drop(conn);
    let refused = migrate(&newer).await;
    assert_eq!(refused.code, 3, "{}", refused.stdout);
    assert!(refused.stderr.contains("newer"), "{}", refused.stderr);
}

/// `farewatch migrate` on PostgreSQL: creates the schema, then finds it up
/// to date.
#[tokio::test]
async fn migrate_on_postgres_creates_then_finds_up_to_date() {
    let db = common::db::TestDb::new(common::db::Backend::Postgres).await;
    let url = db.url().to_owned();
    let migrate = || {
        let mut cmd =
            common::binary::farewatch(db.dir(), "http://127.0.0.1:9", "http://127.0.0.1:9");
        cmd.env("DATABASE_URL", &url).arg("migrate");
        common::binary::run(cmd)
    };
    let now = farewatch::store::SCHEMA_VERSION;
    let created = migrate().await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created
            .stdout
            .contains(&format!("created at schema version {now}")),
        "{}",
        created.stdout
    );
    let again = migrate().await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

/// A PostgreSQL server that does not answer: a clear message naming it
/// (never the password), and exit 3, as for any unusable state database.
#[tokio::test]
async fn an_unreachable_postgres_fails_check_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::redis_server::free_port();
    let mut cmd = common::binary::farewatch(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9");
    cmd.env(
        "DATABASE_URL",
        format!("postgres://fw:s3cret-pw@127.0.0.1:{port}/farewatch"),
    )
    .arg("migrate");
    let run = common::binary::run(cmd).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
    assert!(!run.stdout.contains("s3cret-pw"), "{}", run.stdout);
}

/// The process runs without transparent huge pages (mimalloc's memory would
/// get them, and each is zeroed whole at its first touch: README,
/// Performance). Read from the kernel while `check` waits for its sheet on
/// standard input.
#[cfg(target_os = "linux")]
#[test]
fn the_process_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_farewatch"))
        .args(["check", "--demo", "--routes", "-"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let thp = || {
        std::fs::read_to_string(&status)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_owned()))
    };
    // The flag is set first thing in main; give the process that long.
    let mut seen = thp();
    for _ in 0..500 {
        if seen.as_deref() == Some("0") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        seen = thp();
    }
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(seen.as_deref(), Some("0"), "THP_enabled in {status}");
}
