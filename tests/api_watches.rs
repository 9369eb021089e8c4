//! `/users/{email}/watches` over real HTTP, on SQLite and on PostgreSQL:
//! fare and flight watches created, listed, read and deleted; isolation
//! between users; the sheet's validation and messages; the user's phone as
//! the default recipient; idempotent creation; and a whole `check` cycle
//! that alerts an API watch exactly as it alerts a sheet row.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::api_server::{Server, OPERATOR};
use common::days_from_today;
use common::db::TestDb;
use farewatch::app::{App, Options};
use farewatch::config::{Env, Mode};
use farewatch::domain::Currency;
use farewatch::engine::{AlertOutcome, NoProgress, RouteStatus};
use farewatch::notify::console::ConsoleTarget;
use farewatch::sheet::SheetOptions;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ANN: &str = "ann@example.org";
const ANN_PHONE: &str = "+447911123456";

fn fare(max_price: &str) -> Value {
    json!({
        "kind": "fare", "origin": "LHR", "destination": "JFK",
        "depart_date": days_from_today(30), "max_price": max_price, "currency": "GBP",
    })
}

fn watches(email: &str) -> String {
    format!("/users/{email}/watches")
}

fn watch(email: &str, id: &Value) -> String {
    format!("/users/{email}/watches/{id}")
}

/// Each problem as `field: message`, as the API answered it.
fn fields(error: &Value) -> BTreeMap<String, String> {
    error["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {error}"))
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_backends! {
    /// A fare and a flight watch: created (normalised as the sheet would
    /// write them), listed, read with their state, deleted.
    async fn watches_are_created_listed_read_and_deleted(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let body = json!({
            "kind": "fare", "origin": "lhr|LGW", "destination": "JFK",
            "depart_date": format!("{}..{}", days_from_today(30), days_from_today(32)),
            "return_date": null, "max_price": 450, "currency": "gbp", "adults": 1,
            "min_drop": "5%", "cooldown": "6h", "label": "New York", "phone": "+44 7911 123456|slack:team",
        });
        let (status, created, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["kind"], "fare");
        let stored = &created["fields"];
        assert_eq!(stored["origin"], "LHR|LGW");
        assert_eq!(stored["max_price"], "450");
        assert_eq!(stored["currency"], "GBP");
        assert_eq!(stored["min_drop"], "5%");
        assert_eq!(stored["cooldown"], "6h");
        assert_eq!(stored["phone"], "+447911123456|slack:team");
        assert!(stored.get("return_date").is_none(), "{stored}");

        let flight = json!({"kind": "flight", "flight": "lh 0400", "date": days_from_today(1), "notify_on": "cancel,land"});
        let (status, flight, _) = server.call(Method::POST, &watches(ANN), Some(&ann), Some("f-1"), Some(&flight)).await;
        assert_eq!(status, StatusCode::CREATED, "{flight}");
        assert_eq!(flight["fields"]["flight"], "LH400");
        assert_eq!(flight["fields"]["phone"], ANN_PHONE);
        assert_eq!(flight["fields"]["min_delay"], "15");

        let (status, list, _) = server.call(Method::GET, &watches(ANN), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&Value> = list["watches"].as_array().unwrap().iter().map(|w| &w["id"]).collect();
        assert_eq!(ids, [&created["id"], &flight["id"]]);

        let (status, detail, _) = server.call(Method::GET, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        assert_eq!(detail["fields"], created["fields"]);
        assert_eq!(detail["state"]["last_seen"], Value::Null, "no cycle has run");
        assert_eq!(detail["state"]["armed"], true);
        assert_eq!(detail["state"]["history"], json!([]));
        // The operator reads it too.
        let (status, _, _) = server.call(Method::GET, &watch(ANN, &flight["id"]), Some(OPERATOR), None, None).await;
        assert_eq!(status, StatusCode::OK);

        let (status, deleted, _) = server.call(Method::DELETE, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!((status, &deleted["deleted"]), (StatusCode::OK, &created["id"]));
        let (status, _, _) = server.call(Method::GET, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = server.call(Method::DELETE, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list, _) = server.call(Method::GET, &watches(ANN), Some(&ann), None, None).await;
        assert_eq!(list["watches"].as_array().unwrap().len(), 1);
        for bad in ["abc", "-1", "0"] {
            let (status, _, _) = server.call(Method::GET, &format!("{}/{bad}", watches(ANN)), Some(&ann), None, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        }
    }
}

on_both_backends! {
    /// Bob can neither list, read, create for nor delete Ann's watches, by
    /// her address or by his: 404, never 403.
    async fn users_cannot_reach_each_others_watches(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let bob = server.user("bob@example.org").await;
        let (status, anns, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&fare("450"))).await;
        assert_eq!(status, StatusCode::CREATED);
        let id = &anns["id"];
        for (method, path, body) in [
            (Method::GET, watches(ANN), None),
            (Method::POST, watches(ANN), Some(fare("100"))),
            (Method::GET, watch(ANN, id), None),
            (Method::DELETE, watch(ANN, id), None),
            (Method::GET, watch("bob@example.org", id), None),
            (Method::DELETE, watch("bob@example.org", id), None),
        ] {
            let (status, error, _) = server.call(method.clone(), &path, Some(&bob), None, body.as_ref()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {error}");
            assert_eq!(error["error"], "not_found");
        }
        let (status, _, _) = server.call(Method::GET, &watches(ANN), None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, still, _) = server.call(Method::GET, &watch(ANN, id), Some(&ann), None, None).await;
        assert_eq!((status, &still["id"]), (StatusCode::OK, id), "Ann's watch is untouched");
        let (_, bobs, _) = server.call(Method::GET, &watches("bob@example.org"), Some(&bob), None, None).await;
        assert_eq!(bobs["watches"], json!([]));
    }
}

on_both_backends! {
    /// Invalid fields are named by column with exactly the message the
    /// sheet (or the flight watch list) gives for the same cells.
    async fn invalid_fields_get_the_sheets_messages(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let body = json!({
            "kind": "fare", "origin": "LHRX", "destination": "JFK", "depart_date": "2020-01-01",
            "max_price": "12.345", "currency": "GBP", "cooldown": "soon", "phone": "07700900123",
        });
        let (status, error, _) = server.call(Method::POST, &watches(ANN), Some(&ann), Some("bad"), Some(&body)).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
        let got = fields(&error);
        let csv = "origin,destination,depart_date,max_price,currency,cooldown,phone\n\
                   LHRX,JFK,2020-01-01,12.345,GBP,soon,07700900123\n";
        let today = jiff::Zoned::now().date();
        let options = SheetOptions { default_currency: Currency::EUR, today };
        let sheet = farewatch::sheet::parse("routes.csv", csv.as_bytes(), &options).unwrap();
        let expected: BTreeMap<String, String> =
            sheet.errors.into_iter().map(|e| (e.column, e.message)).collect();
        assert_eq!(got, expected);
        assert_eq!(
            got.keys().map(String::as_str).collect::<Vec<_>>(),
            ["cooldown", "depart_date", "max_price", "origin", "phone"]
        );

        let flight = json!({"kind": "flight", "flight": "DLH400", "date": "tomorrow", "min_delay": "2d"});
        let (status, error, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&flight)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let list = format!("flight,date,phone,min_delay\nDLH400,tomorrow,{ANN_PHONE},2d\n");
        let parsed = farewatch::status::watch::parse("flights.csv", list.as_bytes(), today).unwrap();
        let expected: BTreeMap<String, String> =
            parsed.errors.into_iter().map(|e| (e.column, e.message)).collect();
        assert_eq!(fields(&error), expected);
        assert_eq!(expected.len(), 3, "{expected:?}");

        for (body, field) in [
            (json!({"origin": "LHR"}), "kind"),
            (json!({"kind": "boat"}), "kind"),
            (json!({"kind": "fare", "origin": "LHR", "destination": "JFK", "depart_date": days_from_today(3), "max_price": "9", "colour": "red"}), "colour"),
            (json!({"kind": "fare", "origin": ["LHR"], "destination": "JFK"}), "origin"),
        ] {
            let (status, error, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(fields(&error).contains_key(field), "{body}: {error}");
        }
        let (_, list, _) = server.call(Method::GET, &watches(ANN), Some(&ann), None, None).await;
        assert_eq!(list["watches"], json!([]), "nothing was stored");
    }
}

on_both_backends! {
    /// Without `phone` a watch texts the user's phone; a user without one
    /// must give it (422 on `phone`).
    async fn the_users_phone_is_the_default_recipient(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let (status, created, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&fare("300"))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["fields"]["phone"], ANN_PHONE);

        let cy = server.user_with_phone("cy@example.org", None).await;
        let (status, error, _) = server.call(Method::POST, &watches("cy@example.org"), Some(&cy), None, Some(&fare("300"))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let problems = fields(&error);
        assert_eq!(problems.keys().collect::<Vec<_>>(), ["phone"], "{error}");
        assert!(problems["phone"].starts_with("is empty; expected E.164 numbers"), "{error}");
        assert!(problems["phone"].contains("no phone number to default to"), "{error}");
        let mut with_phone = fare("300");
        with_phone["phone"] = json!("slack:team");
        let (status, created, _) = server.call(Method::POST, &watches("cy@example.org"), Some(&cy), None, Some(&with_phone)).await;
        assert_eq!((status, &created["fields"]["phone"]), (StatusCode::CREATED, &json!("slack:team")));
    }
}

on_both_backends! {
    /// A create with a key runs once and is replayed; the same search and
    /// recipients twice is 409.
    async fn creating_a_watch_is_idempotent(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let path = watches(ANN);
        let (first, created, headers) = server.call(Method::POST, &path, Some(&ann), Some("w-1"), Some(&fare("450"))).await;
        assert_eq!(first, StatusCode::CREATED);
        assert!(headers.get("idempotent-replayed").is_none());
        let (again, replayed, headers) = server.call(Method::POST, &path, Some(&ann), Some("w-1"), Some(&fare("450"))).await;
        assert_eq!((again, &replayed), (StatusCode::CREATED, &created));
        assert_eq!(headers["idempotent-replayed"], "true");
        let (status, error, _) = server.call(Method::POST, &path, Some(&ann), Some("w-1"), Some(&fare("500"))).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));
        // Without the key, the same search and recipients is refused:
        // two watches would share one alert state.
        let (status, error, _) = server.call(Method::POST, &path, Some(&ann), None, Some(&fare("500"))).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::CONFLICT, Some("watch_exists")), "{error}");
        // The same for a flight (its key has the namespace after `watch:`).
        let flight = json!({"kind": "flight", "flight": "LH400", "date": days_from_today(1)});
        let (status, _, _) = server.call(Method::POST, &path, Some(&ann), None, Some(&flight)).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, error, _) = server.call(Method::POST, &path, Some(&ann), None, Some(&flight)).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::CONFLICT, Some("watch_exists")), "{error}");
        let (_, list, _) = server.call(Method::GET, &path, Some(&ann), None, None).await;
        assert_eq!(list["watches"].as_array().unwrap().len(), 2);
        // Deleting with a key is replayed too.
        let one = watch(ANN, &created["id"]);
        let (status, _, _) = server.call(Method::DELETE, &one, Some(&ann), Some("d-1"), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, headers) = server.call(Method::DELETE, &one, Some(&ann), Some("d-1"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["idempotent-replayed"], "true");
    }
}

on_both_backends! {
    /// `check --demo` on the API's database: the API watch runs in the same
    /// cycle as a sheet row with the same search (one lookup for both),
    /// alerts exactly as the row does, and its state then shows the price
    /// seen and the one alert; a second cycle does not alert again.
    async fn a_check_alerts_an_api_watch_like_a_sheet_row(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let (status, created, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&fare("5000"))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().unwrap();
        let flight = json!({"kind": "flight", "flight": "LH2020", "date": days_from_today(0)});
        let (status, flight, _) = server.call(Method::POST, &watches(ANN), Some(&ann), None, Some(&flight)).await;
        assert_eq!(status, StatusCode::CREATED, "{flight}");

        let dir = tempfile::tempdir().unwrap();
        let sheet = dir.path().join("routes.csv");
        let row_phone = "+442079460123";
        std::fs::write(
            &sheet,
            format!("origin,destination,depart_date,max_price,currency,phone\nLHR,JFK,{},5000,GBP,{row_phone}\n", days_from_today(30)),
        )
        .unwrap();
        let app = demo_app(&db, &sheet, false).await;
        let report = app.run_check(Arc::new(NoProgress)).await.unwrap();
        assert!(report.invalid_rows.is_empty(), "{:?}", report.invalid_rows);
        assert_eq!(report.routes.len(), 2, "the sheet row, then the API watch");
        let (row, api) = (&report.routes[0], &report.routes[1]);
        assert_eq!(row.row, 2);
        assert_eq!(api.row as i64, id, "an API watch's line is its id");
        assert_eq!(report.summary.lookups, 1, "one lookup for both");
        for route in [row, api] {
            assert_eq!(route.status, RouteStatus::Below);
            assert_eq!(route.alert, AlertOutcome::Sent);
            assert_eq!(route.messages_sent, 1);
        }
        assert_eq!(row.price_minor(), api.price_minor());
        // The demo's mock status provider polls the API's flight watch (LH2020 is cancelled today).
        assert_eq!(report.flights.len(), 1, "{:?}", report.flights);
        assert!(report.flights[0].polled && report.flights[0].sent >= 1, "{:?}", report.flights);

        let sent = server.store.sent_log(10).await.unwrap();
        let body_to = |to: &str| {
            let fare = sent.iter().find(|s| s.recipient == to && !s.route_id.starts_with("watch:"));
            fare.map(|s| s.body.clone()).unwrap_or_else(|| panic!("no fare alert to {to}: {sent:?}"))
        };
        let (status, detail, _) = server.call(Method::GET, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        let state = &detail["state"];
        let minor = api.price_minor().unwrap();
        assert_eq!(state["last_seen"]["price_minor"], minor);
        assert_eq!(state["last_seen"]["currency"], "GBP");
        assert_eq!(state["last_seen"]["source"], "demo");
        assert_eq!(state["last_seen"]["status"], "below");
        assert!(state["last_seen"]["seen_at"].is_string(), "{state}");
        assert_eq!(state["armed"], false);
        assert_eq!(state["alerts_sent"], 1);
        let history = state["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{state}");
        assert_eq!(history[0]["recipient"], ANN_PHONE);
        assert_eq!(history[0]["message"], body_to(row_phone), "the same text as the sheet row's");
        assert_eq!(history[0]["message"], body_to(ANN_PHONE));

        let (_, flight_detail, _) = server.call(Method::GET, &watch(ANN, &flight["id"]), Some(&ann), None, None).await;
        assert_eq!(flight_detail["state"]["last_seen"]["flight_status"], "cancelled", "{flight_detail}");
        assert!(!flight_detail["state"]["history"].as_array().unwrap().is_empty(), "{flight_detail}");

        let again = app.run_check(Arc::new(NoProgress)).await.unwrap();
        assert_eq!(again.routes[1].alert, AlertOutcome::Suppressed);
        let (_, detail, _) = server.call(Method::GET, &watch(ANN, &created["id"]), Some(&ann), None, None).await;
        assert_eq!(detail["state"]["history"].as_array().unwrap().len(), 1, "one drop, one alert");
    }
}

/// An API watch whose dates have passed is reported like a stale sheet
/// row, as source `api:watch` with its id as the line; one that repeats a
/// sheet row runs beside it with its own state, sharing its lookup.
#[tokio::test]
async fn stale_and_repeated_api_watches_are_reported_like_sheet_rows() {
    let db = TestDb::new(common::db::Backend::Sqlite).await;
    let store = db.open().await;
    let user = match store
        .create_user(
            &farewatch::store::NewUser {
                email: ANN.into(),
                first_name: "Ann".into(),
                last_name: "Lee".into(),
                phone: Some(ANN_PHONE.into()),
            },
            &[7; 32],
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
    {
        farewatch::store::CreatedUser::Created(user) => user,
        other => panic!("{other:?}"),
    };
    let spec = |depart: &str| {
        json!({"origin": "LHR", "destination": "JFK", "depart_date": depart, "max_price": "5000", "currency": "GBP", "phone": ANN_PHONE}).to_string()
    };
    let kind = farewatch::store::WatchKind::Fare;
    let now = jiff::Timestamp::now();
    let stale = store
        .create_watch(user.id, kind, &spec("2020-01-01"), now)
        .await
        .unwrap();
    let repeat = store
        .create_watch(user.id, kind, &spec(&days_from_today(30)), now)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("routes.csv");
    std::fs::write(
        &sheet,
        format!("origin,destination,depart_date,max_price,currency,phone\nLHR,JFK,{},400,GBP,{ANN_PHONE}\n", days_from_today(30)),
    )
    .unwrap();
    let app = demo_app(&db, &sheet, true).await;
    let report = app.run_check(Arc::new(NoProgress)).await.unwrap();
    assert_eq!(
        report.routes.len(),
        2,
        "the row and the watch, each with its own state"
    );
    assert_eq!(report.summary.lookups, 1, "one lookup serves both");
    assert_eq!(report.invalid_rows.len(), 1, "{:?}", report.invalid_rows);
    let invalid = &report.invalid_rows[0];
    assert_eq!(
        (invalid.source.as_str(), invalid.line as i64),
        ("api:watch", stale.id)
    );
    assert_eq!(invalid.problems[0].column, "depart_date");
    assert!(
        invalid.problems[0].message.contains("is in the past"),
        "{invalid:?}"
    );
    assert!(
        report.warnings.iter().all(|w| !w.contains("repeats")),
        "{:?}",
        report.warnings
    );
    // A dry run saves nothing, not even the price seen.
    let key = farewatch::api::watches::last_seen_key(repeat.id);
    assert_eq!(store.kv_get(&key).await.unwrap(), None);
}

/// Every watch route is in the OpenAPI document.
#[tokio::test]
async fn the_watch_routes_are_documented() {
    let db = TestDb::new(common::db::Backend::Sqlite).await;
    let server = Server::new(&db).await;
    let (_, document, _) = server
        .call(Method::GET, "/openapi.json", None, None, None)
        .await;
    let paths = &document["paths"];
    for (path, methods) in [
        ("/users/{email}/watches", &["get", "post"][..]),
        ("/users/{email}/watches/{id}", &["get", "delete"][..]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path}");
        }
    }
}

/// `farewatch daemon --serve`: one process runs the cycles and the API on
/// one store. A watch stored beforehand alerts in the first cycle, the API
/// the daemon serves shows it, and SIGTERM stops both (exit 0).
#[tokio::test]
async fn the_daemon_serves_the_api_beside_its_cycles() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::new(common::db::Backend::Sqlite).await;
    let stored = ann_with_a_fare_watch(&db).await;

    let mut cmd = common::binary::offline(db.dir());
    cmd.args([
        "daemon",
        "--demo",
        "--serve",
        "--addr",
        "127.0.0.1:0",
        "--interval",
        "1h",
        "--format",
        "json",
    ])
    .env("DATABASE_URL", db.url())
    .env("FAREWATCH_API_TOKEN", OPERATOR)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let wait = std::time::Duration::from_secs(60);
    let base = loop {
        let line = tokio::time::timeout(wait, stderr.next_line())
            .await
            .expect("the API's address")
            .unwrap()
            .expect("a line before stderr closes");
        if let Some(rest) = line.strip_prefix("serving the API on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading stderr (the demo prints its alerts there), so it never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });

    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(wait, stdout.next_line())
        .await
        .expect("a first cycle report")
        .unwrap()
        .expect("a line");
    let report: Value = serde_json::from_str(&first).unwrap();
    let ours = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["row"] == stored.id && r["origin"] == "LHR")
        .unwrap_or_else(|| panic!("the API watch is in the cycle: {report}"));
    assert_eq!(ours["alert"], "sent", "{ours}");

    let client = farewatch::upstream::http::build_client();
    let detail: Value = client
        .get(format!("{base}/users/{ANN}/watches/{}", stored.id))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["state"]["last_seen"]["price_minor"], ours["price_minor"],
        "{detail}"
    );
    assert_eq!(
        detail["state"]["history"].as_array().map(Vec::len),
        Some(1),
        "{detail}"
    );

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(wait, child.wait())
        .await
        .expect("the daemon and its API stop after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        client.get(format!("{base}/ping")).send().await.is_err(),
        "the API stopped too"
    );
}

/// A demo app on the test database with `sheet` as its routes sheet.
async fn demo_app(db: &TestDb, sheet: &std::path::Path, dry_run: bool) -> App {
    App::assemble(
        Env::from_pairs([("DATABASE_URL", db.url())]),
        Options {
            mode: Mode::Demo,
            dry_run,
            compare: None,
            routes: sheet.display().to_string(),
            flights: None,
            console: ConsoleTarget::Stderr,
        },
    )
    .await
    .unwrap()
}

/// Ann, stored directly, with one fare watch (LHR-JFK in 30 days, max 5000 GBP).
async fn ann_with_a_fare_watch(db: &TestDb) -> farewatch::store::ApiWatch {
    let store = db.open().await;
    let user = match store
        .create_user(
            &farewatch::store::NewUser {
                email: ANN.into(),
                first_name: "Ann".into(),
                last_name: "Lee".into(),
                phone: Some(ANN_PHONE.into()),
            },
            &[9; 32],
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
    {
        farewatch::store::CreatedUser::Created(user) => user,
        other => panic!("{other:?}"),
    };
    let spec = json!({"origin": "LHR", "destination": "JFK", "depart_date": days_from_today(30),
                      "max_price": "5000", "currency": "GBP", "phone": ANN_PHONE});
    store
        .create_watch(
            user.id,
            farewatch::store::WatchKind::Fare,
            &spec.to_string(),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
}

/// An API-only deployment needs no sheet: `daemon --serve` without a
/// routes.csv runs the API's watches alone.
#[tokio::test]
async fn an_api_only_daemon_needs_no_sheet() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::new(common::db::Backend::Sqlite).await;
    let stored = ann_with_a_fare_watch(&db).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = common::binary::offline(db.dir());
    cmd.args([
        "daemon",
        "--dry-run",
        "--serve",
        "--addr",
        "127.0.0.1:0",
        "--interval",
        "1h",
        "--format",
        "json",
    ])
    .env("DATABASE_URL", db.url())
    .env("FAREWATCH_API_TOKEN", OPERATOR)
    .env("SERPAPI_API_KEY", "k")
    .env("SERPAPI_BASE_URL", format!("http://127.0.0.1:{closed}"))
    .env("SERPAPI_TIMEOUT", "1s")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    assert!(!db.dir().join("routes.csv").exists());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), stdout.next_line())
        .await
        .expect("a first cycle report")
        .unwrap()
        .expect("a line");
    let report: Value = serde_json::from_str(&first).unwrap();
    let routes = report["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "the watch alone: {report}");
    assert_eq!(routes[0]["row"], stored.id);
    assert!(report.get("invalid_rows").is_none(), "{report}");
    child.kill().await.unwrap();
}
