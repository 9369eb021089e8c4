//! `farewatch history` on real state databases, through the binary: a sheet
//! row (`--row`) and an API watch (`--watch`) each show the cheapest price
//! per observation across their searches, their maximum and their alerts;
//! `--chart` writes SVG or PNG by the extension; conflicting or unknown
//! choices are usage errors (exit 64).

mod common;

use common::api_server::Server;
use common::binary::{offline, Run};
use common::days_from_today;
use farewatch::domain::{Currency, Money};
use farewatch::route::Route;
use farewatch::store::{Intent, PricePoint, RunId, Store, StoreLocation};
use jiff::{SignedDuration, Timestamp};
use quick_xml::events::Event;
use quick_xml::Reader;
use reqwest::{Method, StatusCode};
use serde_json::json;

// The colours src/chart.rs draws with.
const MAXIMUM: &str = "#FF7F0E";
const ALERT: &str = "#D62728";

fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

/// `LHR:JFK:{depart}:ow:1:GBP`: a one-way search's history key.
fn search_key(depart: &str) -> String {
    format!("LHR:JFK:{depart}:ow:1:GBP")
}

/// Ten daily prices for each of `departs` at the same times (a cycle
/// records a row's lookups together), ending an hour ago: the first date
/// at 400 to 445 GBP, each later one 10 GBP dearer, except that on day 7
/// the second date is the cheapest at 321.00. Returns the times.
async fn seed(store: &Store, departs: &[&str]) -> Vec<Timestamp> {
    let now = Timestamp::now();
    let times: Vec<Timestamp> = (0..10)
        .map(|day| now - SignedDuration::from_hours(24 * (10 - day) + 1))
        .collect();
    let mut points = Vec::new();
    for (day, &at) in times.iter().enumerate() {
        for (i, depart) in departs.iter().enumerate() {
            let mut minor = 40_000 + day as i64 * 500 + i as i64 * 1_000;
            if day == 7 && i == 1 {
                minor = 32_100;
            }
            points.push(PricePoint {
                search_key: search_key(depart),
                observed_at: at,
                price: Money::from_minor(minor, gbp()),
                source: format!("demo{i}"),
            });
        }
    }
    store.record_prices(&points).await.unwrap();
    times
}

/// Records one alert for `route`, sent now, as the engine's outbox does.
async fn record_alert(store: &Store, route: &Route) {
    let key = format!("{}:1:+447911123456", route.id());
    let intent = Intent {
        key: key.clone(),
        route_id: route.id(),
        seq: 1,
        recipient: "+447911123456".into(),
        channel: "twilio".into(),
        body: "LHR-JFK 321.00 GBP".into(),
        created_at: Timestamp::now(),
    };
    store.open_intent(&intent, &RunId::new()).await.unwrap();
    store.record_sent(&key, "SM123", None).await.unwrap();
}

/// The sheet: a one-date row on line 3, a comment on line 4, and on
/// line 5 a two-date row with a maximum of 350 GBP.
fn sheet(first: &str, last: &str) -> String {
    format!(
        "origin,destination,depart_date,max_price,currency,phone,label\n\
         LHR,CDG,{first},80,GBP,+447911123456,\n\
         LHR,JFK,{first},500,GBP,+447911123456,one date\n\
         # the row below searches two dates\n\
         LHR,JFK,{first}..{last},350,GBP,+447911123456,two dates\n"
    )
}

/// The route on `line` of `csv`, as the binary reads it.
fn route_on(csv: &str, line: usize) -> Route {
    let options = farewatch::app::history::sheet_options(gbp());
    let sheet = farewatch::sheet::parse("routes.csv", csv.as_bytes(), &options).unwrap();
    sheet
        .routes
        .into_iter()
        .find(|r| r.line == line)
        .expect("a row on that line")
}

fn history(dir: &std::path::Path, database_url: &str, args: &[&str]) -> Run {
    offline(dir)
        .env("DATABASE_URL", database_url)
        .arg("history")
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// Each element's name and attributes, in document order (panics unless
/// the SVG is XML).
fn elements(svg: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut reader = Reader::from_str(svg);
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("the SVG parses as XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                            String::from_utf8_lossy(&a.value).into_owned(),
                        )
                    })
                    .collect();
                out.push((
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs,
                ));
            }
            _ => {}
        }
    }
    out
}

fn has(elements: &[(String, Vec<(String, String)>)], name: &str, attr: &str, value: &str) -> bool {
    elements
        .iter()
        .any(|(n, attrs)| n == name && attrs.iter().any(|(k, v)| k == attr && v == value))
}

/// `--row 5`: the row's two dates reduced to the cheapest per observation,
/// its maximum and its alert; the SVG draws the maximum line and the alert.
#[tokio::test]
async fn a_rows_history_is_the_cheapest_of_its_searches() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let url = format!("sqlite://{}", db.display());
    let (first, second) = (days_from_today(30), days_from_today(31));
    let csv = sheet(&first, &second);
    std::fs::write(dir.path().join("routes.csv"), &csv).unwrap();
    {
        let store = Store::open(&StoreLocation::Sqlite(db.clone()))
            .await
            .unwrap();
        seed(&store, &[&first, &second]).await;
        record_alert(&store, &route_on(&csv, 5)).await;
        // An alert for another row is not this row's.
        record_alert(&store, &route_on(&csv, 3)).await;
    }

    let run = history(
        dir.path(),
        &url,
        &[
            "--routes",
            "routes.csv",
            "--row",
            "5",
            "--days",
            "30",
            "--chart",
            "row.svg",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!(
            "routes.csv:5: LHR → JFK, {first}..{second} (two dates)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("2 searches: the cheapest price at each observation"),
        "{out}"
    );
    assert!(out.contains("max 350.00 GBP, 1 alert sent"), "{out}");
    let prices: Vec<&str> = out.lines().filter(|l| l.contains(" GBP  demo")).collect();
    assert_eq!(prices.len(), 10, "one point per observation time: {out}");
    // The first date is the cheaper every day but day 7, when the second is.
    assert!(
        prices[7].contains("321.00 GBP  demo1  ") && prices[7].ends_with(&search_key(&second)),
        "{out}"
    );
    assert!(
        prices[0].contains("400.00 GBP  demo0  ") && prices[0].ends_with(&search_key(&first)),
        "{out}"
    );
    assert_eq!(
        prices.iter().filter(|l| l.contains("demo1")).count(),
        1,
        "the dearer second date only where it is the cheaper: {out}"
    );
    assert!(out.contains("latest 445.00 GBP"), "{out}");

    let svg = std::fs::read_to_string(dir.path().join("row.svg")).unwrap();
    let elements = elements(&svg);
    assert!(
        has(&elements, "polyline", "stroke", MAXIMUM),
        "the max line"
    );
    assert!(svg.contains("max 350.00 GBP"), "the max line's legend");
    assert_eq!(
        elements
            .iter()
            .filter(
                |(n, attrs)| n == "circle" && attrs.iter().any(|(k, v)| k == "fill" && v == ALERT)
            )
            .count(),
        1,
        "the row's one alert"
    );
    assert!(
        svg.contains(&format!("LHR → JFK, {first}..{second}")),
        "the title"
    );

    // The one-date row on line 3 has the first date's prices only.
    let run = history(dir.path(), &url, &["--row", "3", "--chart", "row3.png"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("max 500.00 GBP, 1 alert sent"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("321.00"), "{}", run.stdout);
    assert!(!run.stdout.contains("searches"), "{}", run.stdout);
    let png = std::fs::read(dir.path().join("row3.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

/// A line without a row, and an invalid row, say so.
#[tokio::test]
async fn a_line_without_a_valid_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let csv = format!(
        "{}LHR,XXXX,2030-01-01,100,GBP,+447911123456,bad\n",
        sheet(&days_from_today(30), &days_from_today(31))
    );
    std::fs::write(dir.path().join("routes.csv"), csv).unwrap();

    let run = history(dir.path(), &url, &["--row", "4"]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no row of routes.csv starts on line 4 (rows start on lines 2, 3, 5)"),
        "{}",
        run.stderr
    );
    let run = history(dir.path(), &url, &["--row", "6"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("routes.csv:6: destination:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("routes.csv:6 is not a valid row"),
        "{}",
        run.stderr
    );
}

on_both_backends! {
    /// `--watch ID`: any user's fare watch, its searches' cheapest prices,
    /// its maximum and its alert; a flight watch or an unknown id is refused.
    async fn a_watchs_history_by_its_id(db: TestDb) {
        let server = Server::new(&db).await;
        let token = server.user("ann@example.org").await;
        let (first, second) = (days_from_today(40), days_from_today(41));
        let body = json!({
            "kind": "fare", "origin": "LHR", "destination": "JFK",
            "depart_date": format!("{first}..{second}"), "max_price": "375.50", "currency": "GBP",
        });
        let (status, created, _) = server
            .call(Method::POST, "/users/ann@example.org/watches", Some(&token), None, Some(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().unwrap();
        seed(&server.store, &[&first, &second]).await;
        let (watch, _) = server.store.watch_by_id(id).await.unwrap().unwrap();
        let route = farewatch::app::history::watch_route(&watch).unwrap();
        record_alert(&server.store, &route).await;
        let flight = json!({"kind": "flight", "flight": "BA117", "date": first});
        let (status, flight, _) = server
            .call(Method::POST, "/users/ann@example.org/watches", Some(&token), None, Some(&flight))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{flight}");

        let dir = db.dir();
        let id_arg = id.to_string();
        let run = history(dir, db.url(), &["--watch", &id_arg, "--chart", "watch.svg"]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.starts_with(&format!("watch {id} of ann@example.org: LHR → JFK, {first}..{second}\n")),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("max 375.50 GBP, 1 alert sent"), "{}", run.stdout);
        assert_eq!(run.stdout.lines().filter(|l| l.contains(" GBP  demo")).count(), 10, "{}", run.stdout);
        assert!(run.stdout.contains("321.00 GBP  demo1"), "{}", run.stdout);
        let svg = std::fs::read_to_string(dir.join("watch.svg")).unwrap();
        let elements = elements(&svg);
        assert!(has(&elements, "polyline", "stroke", MAXIMUM), "the max line");
        assert!(has(&elements, "circle", "fill", ALERT), "the alert");

        let flight_id = flight["id"].to_string();
        let run = history(dir, db.url(), &["--watch", &flight_id]);
        assert_eq!(run.code, 64, "{}", run.stderr);
        assert!(run.stderr.contains("is a flight watch"), "{}", run.stderr);
        let run = history(dir, db.url(), &["--watch", "999999"]);
        assert_eq!(run.code, 64, "{}", run.stderr);
        assert!(run.stderr.contains("no watch 999999"), "{}", run.stderr);
    }
}

/// A search by its fields writes a PNG of its chart.
#[tokio::test]
async fn a_search_writes_a_png_chart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let depart = days_from_today(30);
    {
        let store = Store::open(&StoreLocation::Sqlite(db.clone()))
            .await
            .unwrap();
        seed(&store, &[&depart]).await;
    }
    let url = format!("sqlite://{}", db.display());
    let args = [
        "--from",
        "LHR",
        "--to",
        "JFK",
        "--depart",
        &depart,
        "--currency",
        "GBP",
        "--max-price",
        "420",
        "--chart",
        "out.png",
    ];
    let run = history(dir.path(), &url, &args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("chart written to out.png"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("alert"),
        "a search has no alerts: {}",
        run.stdout
    );
    let bytes = std::fs::read(dir.path().join("out.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut rgb = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut rgb).unwrap();
    assert_eq!(
        (frame.width, frame.height),
        (farewatch::chart::WIDTH, farewatch::chart::HEIGHT)
    );
    // The maximum line (#FF7F0E) is drawn.
    let orange = rgb[..frame.buffer_size()]
        .chunks_exact(3)
        .filter(|px| *px == [0xFF, 0x7F, 0x0E])
        .count();
    assert!(orange > 500, "{orange}");
}

/// Exactly one of a search, --row and --watch; a chart named .svg or
/// .png: anything else is a usage error (64), before any file is touched.
#[test]
fn conflicting_or_missing_choices_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let search = ["--from", "LHR", "--to", "JFK", "--depart", "2030-01-01"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "--from"),
        (vec!["--row", "3", "--watch", "1"], "cannot be used with"),
        (
            [&search[..], &["--row", "3"]].concat(),
            "cannot be used with",
        ),
        (
            [&search[..], &["--watch", "1"]].concat(),
            "cannot be used with",
        ),
        (vec!["--watch", "1", "--to", "JFK"], "cannot be used with"),
        (
            vec!["--row", "3", "--max-price", "300"],
            "cannot be used with",
        ),
        (vec!["--from", "LHR"], "--depart"),
        (vec!["--row", "0"], "--row"),
        (vec!["--watch", "0"], "--watch <ID>"),
        (
            [&search[..], &["--chart", "out.jpg"]].concat(),
            ".svg or .png",
        ),
        (vec!["--row", "3", "--chart", "chart"], ".svg or .png"),
    ];
    for (args, expected) in cases {
        let run = history(dir.path(), &url, &args);
        assert_eq!(run.code, 64, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert!(
        !dir.path().join("state.db").exists(),
        "usage errors open nothing"
    );
}
