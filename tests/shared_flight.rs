//! Two `farewatch check` processes at once on one Redis and one state
//! database (two daemons of a fleet whose cycles overlap): each lookup is
//! asked of the provider once across both (the quote cache's shared single
//! flight), and each alert is sent once (the outbox).

mod common;

use std::time::Duration;

use common::amadeus_fake::{AmadeusFake, Reply};
use common::binary::{farewatch, run, write_sheet};
use common::redis_server::RedisServer;
use common::twilio_fake::TwilioFake;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_ask_each_lookup_once_and_alert_once() {
    let redis = RedisServer::start();
    // Slow enough that both processes miss the cache and meet in flight.
    let fake = AmadeusFake::start(|_| Reply::Hang(Duration::from_millis(300))).await;
    let twilio = TwilioFake::accepting().await;
    let dir = tempfile::tempdir().unwrap();
    let origins = ["LHR", "LGW", "STN", "LTN", "LCY", "MAN"];
    let rows: Vec<String> = origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            format!(
                "{origin},JFK,{},350,GBP,+4479111234{i:02},",
                days_from_today(30)
            )
        })
        .collect();
    write_sheet(dir.path(), &rows);
    let check = || {
        let mut cmd = farewatch(dir.path(), &fake.uri(), &twilio.uri());
        cmd.env("REDIS_URL", redis.url())
            .env("AMADEUS_TIMEOUT", "10s")
            .args(["check", "--format", "json", "--no-progress"]);
        run(cmd)
    };
    let (first, second) = tokio::join!(check(), check());
    for run in [&first, &second] {
        assert!(run.code == 0, "exit {}: {}", run.code, run.stderr);
    }
    assert_eq!(
        fake.searches(),
        origins.len() as u64,
        "each lookup asked once across both processes"
    );
    let mut accepted = twilio.accepted();
    assert_eq!(accepted.len(), origins.len(), "one SMS per alert due");
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), origins.len(), "none twice");
    // Between them, both processes report every alert, each once as sent.
    let sent: u64 = [&first, &second]
        .iter()
        .map(|run| run.json()["summary"]["alerts_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, origins.len() as u64);
}
