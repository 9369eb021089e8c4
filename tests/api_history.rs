//! `GET /users/{email}/watches/{id}/history` and `.../history.svg` over
//! real HTTP, on SQLite and on PostgreSQL: the seeded prices and a verdict
//! as JSON, the chart as a parseable SVG, and another user's watch as 404;
//! and `farewatch history ... --chart out.svg` on a seeded SQLite file.

mod common;

use common::api_server::Server;
use common::days_from_today;
use farewatch::domain::{Currency, Iata, LookupKey, Money};
use farewatch::store::{PricePoint, Store};
use jiff::{SignedDuration, Timestamp};
use quick_xml::events::Event;
use quick_xml::Reader;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";

fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

fn key(depart: &str) -> LookupKey {
    LookupKey {
        origin: Iata::parse("LHR").unwrap(),
        destination: Iata::parse("JFK").unwrap(),
        depart: depart.parse().unwrap(),
        return_date: None,
        adults: 1,
        currency: gbp(),
        max_stops: None,
    }
}

/// Ten daily prices (400 to 445 GBP) ending an hour ago, then today's 300.
async fn seed(store: &Store, key: &LookupKey) -> usize {
    let now = Timestamp::now();
    let mut points: Vec<PricePoint> = (0..10)
        .map(|day| PricePoint {
            search_key: key.history_key(),
            observed_at: now - SignedDuration::from_hours(24 * (10 - day) + 1),
            price: Money::from_minor(40_000 + day * 500, gbp()),
            source: "demo".into(),
        })
        .collect();
    points.push(PricePoint {
        search_key: key.history_key(),
        observed_at: now - SignedDuration::from_mins(5),
        price: Money::from_minor(30_000, gbp()),
        source: "serpapi".into(),
    });
    store.record_prices(&points).await.unwrap();
    points.len()
}

/// The element names of an SVG document (panics if it is not XML).
fn elements(svg: &str) -> Vec<String> {
    let mut reader = Reader::from_str(svg);
    let mut names = Vec::new();
    loop {
        match reader.read_event().expect("the SVG parses as XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                names.push(String::from_utf8_lossy(e.name().as_ref()).into_owned())
            }
            _ => {}
        }
    }
    names
}

on_both_backends! {
    /// The watch's prices and verdict as JSON, its chart as SVG; Bob sees neither.
    async fn a_watchs_history_is_served_as_json_and_svg(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user(ANN).await;
        let bob = server.user(BOB).await;
        let depart = days_from_today(30);
        let body = json!({
            "kind": "fare", "origin": "LHR", "destination": "JFK",
            "depart_date": depart, "max_price": "350", "currency": "GBP",
        });
        let (status, created, _) = server.call(Method::POST, &format!("/users/{ANN}/watches"), Some(&ann), None, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let seeded = seed(&server.store, &key(&depart)).await;
        let path = format!("/users/{ANN}/watches/{}/history", created["id"]);

        let (status, history, _) = server.call(Method::GET, &path, Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK, "{history}");
        assert_eq!(history["points"].as_array().unwrap().len(), seeded);
        assert_eq!(history["series"], "cheapest_per_observation");
        assert_eq!(history["latest"]["price"], "300.00");
        assert_eq!(history["latest"]["source"], "serpapi");
        assert_eq!(history["verdict"], "low");
        assert_eq!(history["currency"], "GBP");
        assert!(history["typical_range"]["low_minor"].as_i64().unwrap() >= 40_000, "{history}");

        let (status, operator, _) = server.call(Method::GET, &path, Some(common::api_server::OPERATOR), None, None).await;
        assert_eq!((status, &operator["verdict"]), (StatusCode::OK, &json!("low")));

        let (status, svg, headers) = server.call(Method::GET, &format!("{path}.svg"), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK, "{svg}");
        assert_eq!(headers["content-type"], "image/svg+xml");
        let Value::String(svg) = svg else { panic!("not text: {svg}") };
        let names = elements(&svg);
        assert!(names.iter().any(|n| n == "svg"), "{names:?}");
        assert!(names.iter().any(|n| n == "polyline" || n == "path"), "{names:?}");

        let (status, _, _) = server.call(Method::GET, &path, Some(&bob), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = server.call(Method::GET, &format!("{path}.svg"), Some(&bob), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let bobs_path = format!("/users/{BOB}/watches/{}/history", created["id"]);
        let (status, _, _) = server.call(Method::GET, &bobs_path, Some(&bob), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, bad, _) = server.call(Method::GET, &format!("{path}?days=0"), Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

/// `farewatch history ... --chart out.svg` prints the prices, a sparkline
/// and the verdict, and writes a parseable SVG.
#[tokio::test]
async fn the_cli_prints_a_sparkline_and_writes_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let depart = days_from_today(30);
    {
        let store = Store::open(&farewatch::store::StoreLocation::Sqlite(db.clone()))
            .await
            .unwrap();
        seed(&store, &key(&depart)).await;
    }
    let out = common::binary::offline(dir.path())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .args([
            "history", "--from", "LHR", "--to", "JFK", "--depart", &depart,
        ])
        .args([
            "--currency",
            "GBP",
            "--days",
            "30",
            "--max-price",
            "350",
            "--chart",
            "out.svg",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("300.00 GBP  serpapi"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.chars().count() == 11
            && l.chars()
                .all(|c| farewatch::chart::SPARK_LEVELS.contains(&c))),
        "{stdout}"
    );
    assert!(stdout.contains(": low (typical"), "{stdout}");
    let svg = std::fs::read_to_string(dir.path().join("out.svg")).unwrap();
    let names = elements(&svg);
    assert!(
        names.iter().any(|n| n == "polyline" || n == "path"),
        "{names:?}"
    );
}
