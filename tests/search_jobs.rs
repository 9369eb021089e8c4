//! Search jobs end to end: real `farewatch search` / `farewatch worker`
//! processes against the Amadeus fake (its recorded offers), on SQLite and
//! PostgreSQL. A process killed with SIGKILL mid-job, then resumed, repeats
//! and loses no combination; Ctrl-C interrupts and resume continues; two
//! workers share a job on PostgreSQL and one of them dies; the API enqueues
//! jobs that a worker process completes.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::amadeus_fake::{AmadeusFake, Reply};
use common::api_server::{Server, OPERATOR};
use common::binary::{farewatch, Run};
use common::db::{Backend, TestDb};
use common::*;
use farewatch::domain::Currency;
use farewatch::search::{self, CreateOptions, SearchRequest, SearchSpec};
use farewatch::store::jobs::{JobRecord, JobState, ResultOrder};
use farewatch::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// How long a hung answer is held back: far longer than any test runs.
const HANG: Duration = Duration::from_secs(300);

/// Upper bound on waiting for a process to reach a point. Never reached
/// when things work; it only turns a hang into a failure.
const WITHIN: Duration = Duration::from_secs(60);

/// `farewatch` pointed at the fake, with a database in `dir` (or `db`).
fn cmd(dir: &Path, fake: &AmadeusFake, database_url: &str) -> tokio::process::Command {
    let mut cmd = farewatch(dir, &fake.uri(), "http://127.0.0.1:9");
    cmd.env("DATABASE_URL", database_url)
        .env("FAREWATCH_CURRENCY", "GBP");
    cmd
}

/// Runs `cmd` to completion, capturing its output.
async fn go(cmd: &mut tokio::process::Command) -> Run {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("spawn farewatch");
    Run::from(output)
}

fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

/// `--depart` for 4 days starting a month from now.
fn departures() -> String {
    format!("{}..{}", days_from_today(30), days_from_today(33))
}

/// A fake where LHR's searches answer and LGW's hang: a search from
/// LHR,LGW to JFK over 4 days and 2 stays has its first chunk (LHR's 8
/// combinations) done and its second (LGW's) in flight for good.
async fn lgw_hangs() -> AmadeusFake {
    AmadeusFake::start(|s| {
        if s.origin == "LGW" {
            Reply::Hang(HANG)
        } else {
            Reply::Offers
        }
    })
    .await
}

/// Polls the store (another process writes it) until `done(job)` holds.
async fn wait_for_job(store: &Store, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
    tokio::time::timeout(WITHIN, async {
        loop {
            if let Some(job) = store.jobs(None, 1).await.unwrap().into_iter().next() {
                if done(&job) {
                    return job;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job never got there")
}

/// Every result of `id`, each combination once.
async fn all_results(store: &Store, id: &str) -> Vec<farewatch::store::jobs::JobResult> {
    let results = store
        .job_results(id, ResultOrder::Price, 0, 1000)
        .await
        .unwrap();
    let mut combos: Vec<u64> = results.iter().map(|r| r.combo).collect();
    combos.sort_unstable();
    combos.dedup();
    assert_eq!(combos.len(), results.len(), "a combination stored twice");
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_mid_way_resumes_without_repeating_or_losing_a_combination() {
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = lgw_hangs().await;
    let args = [
        "search",
        "--from",
        "LHR,LGW",
        "--to",
        "JFK",
        "--nights",
        "5..6",
        "--no-progress",
    ];
    let mut child = cmd(db.dir(), &fake, db.url())
        .args(args)
        .args(["--depart", &departures()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = db.open().await;
    let before = wait_for_job(&store, |job| job.done == 8).await;
    assert_eq!((before.total, before.state), (16, JobState::Running));
    child.start_kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().await.unwrap();
    let searches_at_kill = fake.searches();
    assert_eq!(store.job(&before.id).await.unwrap().unwrap().done, 8);

    fake.set_plan(|_| Reply::Offers);
    let resumed = go(cmd(db.dir(), &fake, db.url()).args([
        "search",
        "--resume",
        &before.id,
        "--format",
        "json",
        "--no-progress",
    ]))
    .await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    // Only LGW's 8 combinations were asked again: none of the finished ones.
    assert_eq!(fake.searches() - searches_at_kill, 8);
    let job = store.job(&before.id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.done, job.found),
        (JobState::Completed, 16, 16)
    );
    let results = all_results(&store, &before.id).await;
    assert_eq!(results.len(), 16);
    assert!(results
        .iter()
        .all(|r| r.price.map(|p| (p.minor, p.currency)) == Some((OFFERS_MINOR, gbp()))));
    let printed = resumed.json();
    assert_eq!(printed["job"]["state"], "completed");
    assert_eq!(
        printed["results"].as_array().unwrap().len(),
        10,
        "--top's default"
    );
    assert_eq!(printed["results"][0]["source"], "amadeus");
}

/// The cheapest offer in the Amadeus fixture, in pence.
const OFFERS_MINOR: i64 = common::amadeus_fake::OFFERS_CHEAPEST_MINOR;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_interrupts_resume_continues_and_cancel_stops() {
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = lgw_hangs().await;
    let child = cmd(db.dir(), &fake, db.url())
        .args([
            "search", "--from", "LHR,LGW", "--to", "JFK", "--nights", "5..6",
        ])
        .args(["--depart", &departures(), "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let store = db.open().await;
    let job = wait_for_job(&store, |job| job.done == 8).await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(WITHIN, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("farewatch search --resume {}", job.id)),
        "{stderr}"
    );
    // The table shows what was found before the interrupt.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("LHR→JFK").count(), 8, "{stdout}");
    let interrupted = store.job(&job.id).await.unwrap().unwrap();
    assert_eq!(
        (interrupted.state, interrupted.done),
        (JobState::Interrupted, 8)
    );

    let shown = go(cmd(db.dir(), &fake, db.url()).args(["jobs", "show", &job.id])).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("state       interrupted"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("8/16 combinations (50%)"),
        "{}",
        shown.stdout
    );

    let cancelled = go(cmd(db.dir(), &fake, db.url()).args(["jobs", "cancel", &job.id])).await;
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    let again = go(cmd(db.dir(), &fake, db.url()).args(["search", "--resume", &job.id])).await;
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert!(again.stderr.contains("was cancelled"), "{}", again.stderr);
    let searches = fake.searches();
    assert_eq!(
        store.job(&job.id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        fake.searches(),
        searches,
        "a cancelled job looks nothing up"
    );

    let page = go(cmd(db.dir(), &fake, db.url()).args([
        "jobs",
        "results",
        &job.id,
        "--per-page",
        "3",
        "--page",
        "3",
        "--format",
        "csv",
    ]))
    .await;
    assert_eq!(page.code, 0, "{}", page.stderr);
    // Rows 7 and 8 of the 8 results, after the header.
    assert_eq!(page.stdout.lines().count(), 3, "{}", page.stdout);
    assert!(page
        .stdout
        .starts_with("origin,destination,depart,return,price"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_over_the_daily_budget_is_refused_up_front() {
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = AmadeusFake::healthy().await;
    let refused = go(cmd(db.dir(), &fake, db.url())
        .env("AMADEUS_DAILY_BUDGET", "100")
        .args(["search", "--from", "LHR,LGW,STN,LTN", "--to", "JFK,EWR,BOS"])
        .args([
            "--depart",
            &format!("{}..{}", days_from_today(30), days_from_today(59)),
        ])
        .args(["--nights", "5..7"]))
    .await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("this search has 1080 combinations")
            && refused.stderr.contains("have 100 searches left today")
            && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    assert_eq!(fake.searches(), 0);

    let capped = go(cmd(db.dir(), &fake, db.url())
        .args([
            "search",
            "--from",
            "LHR,LGW,STN,LTN,LCY",
            "--to",
            "JFK,EWR,BOS,IAD,ORD",
        ])
        .args([
            "--depart",
            &format!("{}..{}", days_from_today(30), days_from_today(60)),
        ])
        .args(["--nights", "3..12"]))
    .await;
    assert_eq!(capped.code, 64, "{}", capped.stderr);
    assert!(
        capped.stderr.contains(
            "7750 combinations (5 origins × 5 destinations × 310 date pairs); at most 5000"
        ),
        "{}",
        capped.stderr
    );
    let bad = go(cmd(db.dir(), &fake, db.url()).args([
        "search",
        "--from",
        "LHR,Heathrow",
        "--to",
        "JFK",
        "--depart",
        "2020-01-01",
    ]))
    .await;
    assert_eq!(bad.code, 64);
    assert!(bad.stderr.contains("error: --from:"), "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("error: --depart: 2020-01-01 is in the past"),
        "{}",
        bad.stderr
    );
    assert!(db.open().await.jobs(None, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_job_on_postgres_and_one_dies() {
    let db = TestDb::new(Backend::Postgres).await;
    // One combination of LGW's chunk and one of LTN's hang, so the workers
    // hold those chunks in flight when one of them is killed; the rest
    // answer at once. The survivor's hung search ends (a timeout and a
    // retry, or the answer after 3 s) and its chunk is committed.
    let first_day = days_from_today(30);
    let fake = AmadeusFake::start(move |s| match s.origin.as_str() {
        "LGW" | "LTN" if s.depart == first_day => Reply::Hang(Duration::from_secs(3)),
        _ => Reply::Offers,
    })
    .await;
    let store = db.open().await;
    let spec = SearchSpec {
        from: ["LHR", "LGW", "STN", "LTN"].map(String::from).to_vec(),
        to: vec!["JFK".into()],
        depart: departures(),
        nights: Some("5..6".into()),
        currency: Some("GBP".into()),
        ..SearchSpec::default()
    };
    let request = SearchRequest::parse(&spec, jiff::Zoned::now().date(), gbp()).unwrap();
    let options = CreateOptions {
        owner_id: None,
        watch: false,
        over_budget: true,
        state: JobState::Pending,
    };
    let job = search::create_job(&store, None, &request, options)
        .await
        .unwrap();
    assert_eq!(job.total, 32);
    let worker = || {
        cmd(db.dir(), &fake, db.url())
            .arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = worker();
    let mut second = worker();
    // The fast chunks are in; the slow ones are held by the workers.
    let halfway = wait_for_job(&store, |job| job.done >= 16).await;
    assert!(halfway.done < 32, "the slow chunks are in flight");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    fake.set_plan(|_| Reply::Offers);
    // The survivor takes over the dead worker's chunks (its process is gone,
    // so without waiting for the lease) and finishes the job.
    let finished = wait_for_job(&store, |job| job.state == JobState::Completed).await;
    assert_eq!(
        (finished.done, finished.found),
        (32, 32),
        "progress is exact: {finished:?}"
    );
    let results = all_results(&store, &job.id).await;
    assert_eq!(results.len(), 32);
    // Every combination was asked at least once; only the dead worker's
    // chunks in flight were asked twice.
    let searches = fake.searches();
    assert!((32..=32 + 16).contains(&searches), "{searches} searches");
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_enqueues_a_worker_completes_and_a_watch_is_made() {
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = AmadeusFake::healthy().await;
    let server = Server::new(&db).await;
    let ann = server.user("ann@example.com").await;
    let bob = server.user("bob@example.com").await;

    let (status, body, _) = server
        .call(
            Method::POST,
            "/jobs",
            Some(&ann),
            None,
            Some(&json!({"from": ["LHR"], "to": ["JFK"], "depart": "2020-01-01", "nights": "99", "adults": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["depart", "nights", "adults"], "{body}");

    let search = json!({
        "from": ["LHR", "LGW"], "to": ["JFK"], "depart": departures(),
        "return": format!("{}..{}", days_from_today(36), days_from_today(37)),
        "currency": "GBP", "watch": true,
    });
    let (status, created, _) = server
        .call(
            Method::POST,
            "/jobs",
            Some(&ann),
            Some("job-1"),
            Some(&search),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["total"], 16);
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, replayed, headers) = server
        .call(
            Method::POST,
            "/jobs",
            Some(&ann),
            Some("job-1"),
            Some(&search),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replayed["id"], id.as_str(), "the same key, the same job");
    assert!(headers.contains_key("idempotent-replayed"));
    // Bob cannot see it; the operator can.
    let path = format!("/jobs/{id}");
    assert_eq!(
        server
            .call(Method::GET, &path, Some(&bob), None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .call(Method::GET, &path, Some(OPERATOR), None, None)
            .await
            .0,
        StatusCode::OK
    );

    let mut worker = cmd(db.dir(), &fake, db.url())
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = wait_for_job(&server.store, |job| job.state == JobState::Completed).await;
    assert_eq!(done.id, id);
    // The watch is made right after completion, by the worker.
    let job = tokio::time::timeout(WITHIN, async {
        loop {
            let (_, job, _) = server
                .call(Method::GET, &path, Some(&ann), None, None)
                .await;
            if job.get("watch_id").is_some() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    worker.start_kill().unwrap();
    assert_eq!(
        (job["processed"].as_u64(), job["progress"].as_f64()),
        (Some(16), Some(1.0))
    );
    assert!(job["last_checkpoint"].is_string() && job["finished_at"].is_string());
    let watch_id = job["watch_id"].as_i64().unwrap();
    let (status, watch, _) = server
        .call(
            Method::GET,
            &format!("/users/ann@example.com/watches/{watch_id}"),
            Some(&ann),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{watch}");
    let max = format!("{:.2}", (OFFERS_MINOR - 1) as f64 / 100.0);
    assert_eq!(watch["fields"]["max_price"], max.as_str(), "{watch}");

    let (status, page, _) = server
        .call(
            Method::GET,
            &format!("/jobs/{id}/results?page=2&per_page=5&sort=date"),
            Some(&ann),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let results = page["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["price"], "312.46");
    assert_eq!(results[0]["source"], "amadeus");
    assert!(results[0]["verdict"].is_string());
    let (status, _, _) = server
        .call(
            Method::GET,
            &format!("/jobs/{id}/results?per_page=501"),
            Some(&ann),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, listed, _) = server
        .call(Method::GET, "/jobs", Some(&bob), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        0,
        "only bob's own"
    );

    // Cancel: a completed job is over (409); a pending one is cancelled.
    let cancel = format!("/jobs/{id}/cancel");
    assert_eq!(
        server
            .call(Method::POST, &cancel, Some(&ann), None, None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (_, other, _) = server
        .call(
            Method::POST,
            "/jobs",
            Some(&bob),
            None,
            Some(&json!({"from": ["LHR"], "to": ["JFK"], "depart": departures()})),
        )
        .await;
    let other_cancel = format!("/jobs/{}/cancel", other["id"].as_str().unwrap());
    assert_eq!(
        server
            .call(Method::POST, &other_cancel, Some(&ann), None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, cancelled, _) = server
        .call(Method::POST, &other_cancel, Some(&bob), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_runs_the_apis_jobs_itself_and_the_cli_makes_a_watch() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = AmadeusFake::healthy().await;
    let mut child = cmd(db.dir(), &fake, db.url())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("FAREWATCH_API_TOKEN", OPERATOR)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = tokio::time::timeout(WITHIN, async {
        loop {
            let line = stderr
                .next_line()
                .await
                .unwrap()
                .expect("the API's address");
            if let Some(rest) = line.strip_prefix("serving the API on ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let client = farewatch::upstream::http::build_client();
    let created: serde_json::Value = client
        .post(format!("{base}/jobs"))
        .bearer_auth(OPERATOR)
        .json(&json!({"from": ["LHR"], "to": ["JFK", "EWR"], "depart": departures(), "currency": "GBP"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["total"], 8, "{created}");
    // No `farewatch worker` runs: serve's own worker completes it.
    let store = db.open().await;
    let job = wait_for_job(&store, |job| job.state == JobState::Completed).await;
    assert_eq!((job.done, job.found), (8, 8));
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // The CLI's --watch: a standing watch of --user on the cheapest.
    let server = Server::new(&db).await;
    server.user("cy@example.com").await;
    let watched = go(cmd(db.dir(), &fake, db.url()).args([
        "search",
        "--from",
        "LHR",
        "--to",
        "JFK",
        "--depart",
        &departures(),
        "--watch",
        "--user",
        "cy@example.com",
        "--no-progress",
    ]))
    .await;
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    assert!(
        watched
            .stderr
            .contains("watching the cheapest combination: API watch"),
        "{}",
        watched.stderr
    );
    let cy = store
        .user_by_email("cy@example.com")
        .await
        .unwrap()
        .unwrap();
    let watches = store.watches_of(cy.id).await.unwrap();
    assert_eq!(watches.len(), 1);
    assert!(
        watches[0].spec.contains("\"max_price\":\"312.45\""),
        "{}",
        watches[0].spec
    );
    let without = go(cmd(db.dir(), &fake, db.url()).args([
        "search",
        "--from",
        "LHR",
        "--to",
        "JFK",
        "--depart",
        &departures(),
        "--watch",
    ]))
    .await;
    assert_eq!(without.code, 64, "--watch needs --user: {}", without.stderr);
}
