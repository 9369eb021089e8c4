//! The process killed mid-send, then restarted: real `farewatch` processes
//! (SIGKILL, no chance to clean up) against stateful fakes, on an SQLite
//! file and on a PostgreSQL database.
//!
//! The outbox writes an intent before every send and Twilio has no
//! idempotency key, so a restart must reconcile through Twilio's message
//! list: a message Twilio accepted before the kill is recorded, never sent
//! again; one that never reached Twilio is sent exactly once.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::amadeus_fake::{AmadeusFake, Reply, OFFERS_CHEAPEST_MINOR};
use common::binary::{farewatch, run, write_sheet, Run};
use common::db::TestDb;
use common::twilio_fake::{Post, TwilioFake};
use common::*;

/// How long the fakes hold an answer back: far longer than any test runs.
const HANG: Duration = Duration::from_secs(300);

/// Upper bound on waiting for the first process to reach the fault. Never
/// reached when things work; it only turns a hang into a failure.
const REACH_FAULT_WITHIN: Duration = Duration::from_secs(60);

fn sheet(dir: &Path, rows: &[(&str, &str)]) {
    let rows: Vec<String> = rows
        .iter()
        .map(|(origin, phone)| format!("{origin},JFK,{},350,GBP,{phone},", days_from_today(30)))
        .collect();
    write_sheet(dir, &rows);
}

fn alert_body(origin: &str) -> String {
    alert_to_jfk(origin, &days_from_today(30), OFFERS_CHEAPEST_MINOR, 350_00)
}

/// The fake accepted exactly these (recipient, body) pairs, none twice.
#[track_caller]
fn assert_delivered_exactly_once(fake: &TwilioFake, due: &[(&str, &str)]) {
    let mut accepted = fake.accepted();
    accepted.sort();
    let mut due: Vec<(String, String)> = due
        .iter()
        .map(|(origin, phone)| ((*phone).to_owned(), alert_body(origin)))
        .collect();
    due.sort();
    let mut unique = accepted.clone();
    unique.dedup();
    assert_eq!(unique.len(), accepted.len(), "texted twice: {accepted:#?}");
    assert_eq!(
        accepted, due,
        "accepted messages differ from the alerts due"
    );
}

/// Starts `farewatch check`, waits (without sleeping) until `reached`
/// resolves, i.e. the process is blocked at the fault, then SIGKILLs it.
async fn kill_when<F: std::future::Future<Output = ()>>(
    dir: &Path,
    mut cmd: tokio::process::Command,
    reached: F,
) {
    let stderr_path = dir.join("killed-run.stderr");
    let mut child = cmd
        .args(["check", "--format", "json", "--no-progress", "-v"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn farewatch");
    let outcome = tokio::time::timeout(REACH_FAULT_WITHIN, async {
        tokio::select! {
            () = reached => None,
            status = child.wait() => Some(status),
        }
    })
    .await;
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    match outcome {
        Ok(None) => {}
        Ok(Some(status)) => panic!(
            "farewatch exited ({status:?}) before reaching the fault:\n{}",
            log()
        ),
        Err(_) => panic!(
            "farewatch did not reach the fault within {REACH_FAULT_WITHIN:?}:\n{}",
            log()
        ),
    }
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
}

/// `farewatch` in the test's directory, on the test's database.
fn farewatch_on(
    db: &TestDb,
    amadeus: &AmadeusFake,
    twilio: &TwilioFake,
) -> tokio::process::Command {
    let mut cmd = farewatch(db.dir(), &amadeus.uri(), &twilio.uri());
    cmd.env("DATABASE_URL", db.url());
    cmd
}

async fn check(db: &TestDb, amadeus: &AmadeusFake, twilio: &TwilioFake) -> Run {
    let mut cmd = farewatch_on(db, amadeus, twilio);
    cmd.args(["check", "--format", "json", "--no-progress"]);
    run(cmd).await
}

on_both_backends! {
    /// Killed while waiting for Twilio's answer to a message Twilio had already
    /// accepted. One send at a time, so the second route's alert is still queued
    /// (its intent may or may not be written) when the process dies.
    ///
    /// The restart finds the first message in Twilio's list and records it
    /// without sending; the second is sent exactly once.
    async fn killed_after_twilio_accepted_the_message_the_restart_reconciles_and_never_resends(db: TestDb) {
        let dir = db.dir();
        let amadeus = AmadeusFake::healthy().await;
        let twilio = TwilioFake::start(|n| {
            if n == 0 {
                Post::AcceptThenHang(HANG)
            } else {
                Post::Accept
            }
        })
        .await;
        let rows = [("QAA", "+447911123400"), ("QAB", "+447911123401")];
        sheet(dir, &rows);

        let mut cmd = farewatch_on(&db, &amadeus, &twilio);
        cmd.env("TWILIO_MAX_CONCURRENCY", "1");
        kill_when(dir, cmd, twilio.wait_for_posts(1)).await;
        assert_eq!(twilio.posts(), 1, "killed with the first send in flight");
        assert_eq!(twilio.accepted().len(), 1, "and Twilio had accepted it");

        let second = check(&db, &amadeus, &twilio).await;
        assert_eq!(second.code, 0, "stderr: {}", second.stderr);
        let json = second.json();
        let summary = &json["summary"];
        assert_eq!(
            summary["alerts_sent"], 1,
            "only the alert that never reached Twilio: {summary}"
        );
        assert_eq!(summary["alerts_failed"], 0);
        assert_eq!(summary["lookup_errors"], 0);
        for route in json["routes"].as_array().unwrap() {
            assert_eq!(route["status"], "below", "{route}");
            assert_eq!(route["alert"], "sent", "{route}");
        }
        assert!(twilio.lists() >= 1, "the unconfirmed send was looked up");
        assert_eq!(twilio.posts(), 2, "the accepted message was not sent again");
        assert_delivered_exactly_once(&twilio, &rows);

        // A third run has nothing left to do.
        let third = check(&db, &amadeus, &twilio).await;
        assert_eq!(third.code, 0, "stderr: {}", third.stderr);
        let json = third.json();
        assert_eq!(json["summary"]["alerts_sent"], 0);
        for route in json["routes"].as_array().unwrap() {
            assert_eq!(route["alert"], "suppressed", "{route}");
        }
        assert_eq!(twilio.posts(), 2);
        assert_delivered_exactly_once(&twilio, &rows);
    }
}

on_both_backends! {
    /// Killed while the fare lookup hangs, before anything reached Twilio: the
    /// restart sends the alert exactly once.
    async fn killed_before_the_send_reached_twilio_the_restart_sends_exactly_once(db: TestDb) {
        let dir = db.dir();
        let amadeus = AmadeusFake::start(|s| {
            if s.n == 0 {
                Reply::Hang(HANG)
            } else {
                Reply::Offers
            }
        })
        .await;
        let twilio = TwilioFake::accepting().await;
        let rows = [("QAA", "+447911123400")];
        sheet(dir, &rows);

        let cmd = farewatch_on(&db, &amadeus, &twilio);
        kill_when(dir, cmd, amadeus.wait_for_searches(1)).await;
        assert_eq!(twilio.posts(), 0, "nothing reached Twilio before the kill");

        let second = check(&db, &amadeus, &twilio).await;
        assert_eq!(second.code, 0, "stderr: {}", second.stderr);
        let json = second.json();
        assert_eq!(json["summary"]["alerts_sent"], 1);
        assert_eq!(json["summary"]["alerts_failed"], 0);
        assert_eq!(json["summary"]["lookup_errors"], 0);
        assert_eq!(json["routes"][0]["alert"], "sent");
        assert_eq!(twilio.posts(), 1);
        assert_eq!(
            amadeus.tokens(),
            1,
            "the token saved by the killed run was reused"
        );
        assert_delivered_exactly_once(&twilio, &rows);
        let searches = amadeus.log();
        assert_eq!(searches.len(), 2);
        assert_eq!(searches[1].reply, Reply::Offers);
    }
}

on_both_backends! {
    /// Two processes overlapping on one state file: A (a slow cron run) is
    /// waiting for Twilio's answer to its first message when B (the next tick)
    /// runs from start to end. B leaves A's alerts to A, live as it is, reports
    /// them `in_progress_elsewhere`, not failed, and exits 0. Then A is killed:
    /// the next run takes its alerts over at once, records the one Twilio had
    /// accepted and sends the rest. Nobody is texted twice.
    async fn an_overlapping_run_leaves_a_live_runs_alerts_to_it_and_exits_0(db: TestDb) {
        let dir = db.dir();
        let amadeus = AmadeusFake::healthy().await;
        let twilio = TwilioFake::start(|n| {
            if n == 0 {
                Post::AcceptThenHang(HANG)
            } else {
                Post::Accept
            }
        })
        .await;
        let rows = [
            ("QAA", "+447911123400"),
            ("QAB", "+447911123401"),
            ("QAC", "+447911123402"),
        ];
        sheet(dir, &rows);

        // A: one send at a time; its first is accepted and never answered.
        let mut a = farewatch_on(&db, &amadeus, &twilio);
        a.env("TWILIO_MAX_CONCURRENCY", "1")
            .args(["check", "--format", "json", "--no-progress"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut a = a.spawn().expect("spawn farewatch");
        tokio::time::timeout(REACH_FAULT_WITHIN, twilio.wait_for_posts(1))
            .await
            .expect("A reaches its first send");

        let b = check(&db, &amadeus, &twilio).await;
        assert_eq!(b.code, 0, "stderr: {}", b.stderr);
        let json = b.json();
        assert_eq!(json["summary"]["alerts_failed"], 0, "{json}");
        let mut elsewhere = 0;
        for route in json["routes"].as_array().unwrap() {
            match route["alert"].as_str() {
                Some("in_progress_elsewhere") => elsewhere += 1,
                Some("sent") => {}
                _ => panic!("{route}"),
            }
        }
        assert!(elsewhere >= 1, "A's held message is A's: {json}");
        assert_eq!(json["summary"]["alerts_elsewhere"], elsewhere);
        let sent_by_b = json["summary"]["alerts_sent"].as_u64().unwrap();
        assert_eq!(twilio.posts(), 1 + sent_by_b, "B sent none of A's alerts");
        let mut accepted = twilio.accepted();
        accepted.sort();
        accepted.dedup();
        assert_eq!(accepted.len() as u64, twilio.posts(), "nobody texted twice");

        // A dies mid-send; the next run takes over its claims and settles them.
        a.start_kill().expect("SIGKILL");
        let status = a.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
        let c = check(&db, &amadeus, &twilio).await;
        assert_eq!(c.code, 0, "stderr: {}", c.stderr);
        let json = c.json();
        assert_eq!(json["summary"]["alerts_failed"], 0, "{json}");
        assert_eq!(json["summary"]["alerts_elsewhere"], 0, "{json}");
        assert!(twilio.lists() >= 1, "A's unconfirmed send was looked up");
        assert_delivered_exactly_once(&twilio, &rows);
    }
}
