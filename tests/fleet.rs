//! Three `farewatch daemon --fleet` processes on one PostgreSQL and one
//! Redis, against the Amadeus and Twilio fakes: the routes are shared out,
//! each lookup is asked once and each alert sent once across the fleet.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::amadeus_fake::{AmadeusFake, Reply};
use common::binary::{farewatch, write_sheet};
use common::db::{Backend, TestDb};
use common::redis_server::RedisServer;
use common::twilio_fake::TwilioFake;
use common::*;

const ROUTES: usize = 30;

/// Routes in the big test: thousands of watches.
const WATCHES: usize = 2000;

/// The `i`th three-letter code from `QAA` on (never JFK).
fn code(i: usize) -> String {
    let letter = |n: usize| (b'A' + (n % 26) as u8) as char;
    format!("{}{}{}", letter(16 + i / 676), letter(i / 26), letter(i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_share_the_routes_and_alert_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    // A little latency, so the daemons' cycles overlap.
    let fake = AmadeusFake::start(|_| Reply::Hang(Duration::from_millis(5))).await;
    let twilio = TwilioFake::accepting().await;
    // Thousands of routes, each from its own origin and alerting (the
    // fare is GBP 312.46).
    let origins: Vec<String> = (0..WATCHES).map(code).collect();
    let rows: Vec<String> = origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            format!(
                "{origin},JFK,{},350,GBP,+44791112{i:04},",
                days_from_today(30)
            )
        })
        .collect();
    write_sheet(db.dir(), &rows);
    let daemon = || {
        let mut cmd = farewatch(db.dir(), &fake.uri(), &twilio.uri());
        cmd.env("DATABASE_URL", db.url())
            .env("REDIS_URL", redis.url())
            .env("FAREWATCH_FLEET_BATCH", "50")
            .env("AMADEUS_TIMEOUT", "10s")
            .args([
                "daemon",
                "--fleet",
                "--interval",
                "1h",
                "--format",
                "json",
                "--no-progress",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    let mut daemons = [daemon(), daemon(), daemon()];
    tokio::time::timeout(
        Duration::from_secs(60),
        twilio.wait_for_posts(WATCHES as u64),
    )
    .await
    .expect("every alert is sent");
    // Every route checked once, by someone, and none held.
    let store = db.open().await;
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let now = jiff::Timestamp::now();
            let due = store.due_summary(now).await.unwrap();
            // Each daemon counts its batch just after completing it.
            let counted: u64 = store
                .fleet_nodes(now)
                .await
                .unwrap()
                .iter()
                .map(|n| n.done)
                .sum();
            if due.routes == WATCHES as u64 && due.leased == 0 && counted >= WATCHES as u64 {
                return due;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the fleet finishes its cycle");
    assert_eq!(settled.due, 0, "nothing left due this interval");
    for daemon in &mut daemons {
        daemon.start_kill().unwrap();
        daemon.wait().await.unwrap();
    }
    assert_eq!(
        fake.searches(),
        WATCHES as u64,
        "each lookup asked once by the fleet"
    );
    let mut accepted = twilio.accepted();
    assert_eq!(accepted.len(), WATCHES, "one SMS per alert due");
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), WATCHES, "none twice");
    let nodes = store.fleet_nodes(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let done: u64 = nodes.iter().map(|n| n.done).sum();
    assert_eq!(done, WATCHES as u64, "each route done once: {nodes:?}");
    let working = nodes.iter().filter(|n| n.done > 0).count();
    assert!(working >= 2, "the work was shared: {nodes:?}");

    // `farewatch fleet` shows them.
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_farewatch"))
        .args(["fleet", "--database-url", db.url()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!("routes {WATCHES}: 0 due now, 0 held")),
        "{stdout}"
    );
    assert_eq!(
        // The summary, the header, then one line per node.
        stdout
            .lines()
            .skip(2)
            .filter(|l| l.contains(" daemon "))
            .count(),
        3,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_cycle_loses_nothing_and_its_routes_are_taken_over() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    // Every search hangs until the first daemon is dead.
    let fake = AmadeusFake::start(|_| Reply::Hang(Duration::from_secs(300))).await;
    let twilio = TwilioFake::accepting().await;
    let origins: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "Y{}{}",
                (b'A' + (i / 26) as u8) as char,
                (b'A' + (i % 26) as u8) as char
            )
        })
        .collect();
    let rows: Vec<String> = origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            format!(
                "{origin},JFK,{},350,GBP,+44791113{i:04},",
                days_from_today(30)
            )
        })
        .collect();
    write_sheet(db.dir(), &rows);
    let daemon = || {
        let mut cmd = farewatch(db.dir(), &fake.uri(), &twilio.uri());
        cmd.env("DATABASE_URL", db.url())
            .env("REDIS_URL", redis.url())
            .env("FAREWATCH_FLEET_BATCH", "4")
            .env("AMADEUS_TIMEOUT", "10s")
            .args([
                "daemon",
                "--fleet",
                "--interval",
                "1h",
                "--format",
                "json",
                "--no-progress",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    let mut first = daemon();
    // Its first batch of 4 is in flight (hung) when it is killed.
    tokio::time::timeout(Duration::from_secs(60), fake.wait_for_searches(4))
        .await
        .expect("the first batch is asked");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert_eq!(fake.searches(), 4);
    let store = db.open().await;
    let held = store.due_summary(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(held.leased, 4, "the dead daemon's batch is still leased");
    fake.set_plan(|_| Reply::Offers);

    // Two daemons take over: the dead one's routes at once (same machine),
    // not after its one-hour lease.
    let mut rest = [daemon(), daemon()];
    tokio::time::timeout(Duration::from_secs(60), twilio.wait_for_posts(12))
        .await
        .expect("every alert is sent");
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let now = jiff::Timestamp::now();
            let nodes = store.fleet_nodes(now).await.unwrap();
            let due = store.due_summary(now).await.unwrap();
            if due.leased == 0 && nodes.iter().map(|n| n.done).sum::<u64>() >= 12 {
                return nodes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the survivors finish the cycle");
    for daemon in &mut rest {
        daemon.start_kill().unwrap();
        daemon.wait().await.unwrap();
    }
    // The 4 hung searches were asked again (their answers never came), the
    // other 8 once: nothing lost, nothing else repeated.
    assert_eq!(fake.searches(), 12 + 4);
    let mut accepted = twilio.accepted();
    assert_eq!(accepted.len(), 12);
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), 12, "none twice");
    assert_eq!(settled.len(), 3, "{settled:?}");
    assert_eq!(
        settled.iter().map(|n| n.done).sum::<u64>(),
        12,
        "{settled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_cycle_loses_nothing_and_sends_nothing_twice() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut redis = RedisServer::start();
    let fake = AmadeusFake::start(|_| Reply::Hang(Duration::from_millis(100))).await;
    let twilio = TwilioFake::accepting().await;
    let origins: Vec<String> = (0..ROUTES)
        .map(|i| {
            format!(
                "Z{}{}",
                (b'A' + (i / 26) as u8) as char,
                (b'A' + (i % 26) as u8) as char
            )
        })
        .collect();
    let rows: Vec<String> = origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            format!(
                "{origin},JFK,{},350,GBP,+44791114{i:04},",
                days_from_today(30)
            )
        })
        .collect();
    write_sheet(db.dir(), &rows);
    let daemon = || {
        let mut cmd = farewatch(db.dir(), &fake.uri(), &twilio.uri());
        cmd.env("DATABASE_URL", db.url())
            .env("REDIS_URL", redis.url())
            .env("FAREWATCH_FLEET_BATCH", "4")
            .env("AMADEUS_TIMEOUT", "10s")
            .args([
                "daemon",
                "--fleet",
                "--interval",
                "1h",
                "--format",
                "json",
                "--no-progress",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    let mut daemons = [daemon(), daemon(), daemon()];
    // Redis goes away once the cycles are under way, and comes back.
    tokio::time::timeout(Duration::from_secs(60), fake.wait_for_searches(4))
        .await
        .expect("the cycles start");
    redis.kill();
    tokio::time::timeout(Duration::from_secs(60), twilio.wait_for_posts(12))
        .await
        .expect("the cycles go on without Redis");
    redis.restart();
    tokio::time::timeout(
        Duration::from_secs(60),
        twilio.wait_for_posts(ROUTES as u64),
    )
    .await
    .expect("every alert is sent");
    let store = db.open().await;
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let now = jiff::Timestamp::now();
            let nodes = store.fleet_nodes(now).await.unwrap();
            let due = store.due_summary(now).await.unwrap();
            if due.leased == 0 && nodes.iter().map(|n| n.done).sum::<u64>() >= ROUTES as u64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the fleet finishes its cycle");
    for daemon in &mut daemons {
        daemon.start_kill().unwrap();
        daemon.wait().await.unwrap();
    }
    // The routes were shared out in PostgreSQL, so even without Redis's
    // cache each lookup was asked once; the outbox sent each alert once.
    assert_eq!(fake.searches(), ROUTES as u64);
    let mut accepted = twilio.accepted();
    assert_eq!(accepted.len(), ROUTES);
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), ROUTES, "none twice");
}
