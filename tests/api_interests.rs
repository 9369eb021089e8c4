//! Airport interests and statistics over real HTTP, on SQLite and on
//! PostgreSQL: IATA codes normalised to ICAO (unknown ones refused with a
//! hint), A/B isolation, statistics over flights seeded through the store,
//! the explicit "collecting" state for an airport with no data, and
//! pagination. The collector itself is tested in `tests/collector.rs`.

mod common;

use common::api_server::{Server, OPERATOR};
use farewatch::store::{AirportFlight, Store};
use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn interest(email: &str, code: &str) -> Value {
    json!({"email": email, "airport_code": code})
}

fn airports(list: &Value) -> Vec<&str> {
    list["airports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["airport"].as_str().unwrap())
        .collect()
}

on_both_backends! {
    /// IATA codes become ICAO codes; adding twice is a 200, not a second row;
    /// unknown IATA codes and city codes are refused naming the field.
    async fn interests_are_added_listed_and_removed_with_iata_normalised(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user("ann@example.org").await;

        let (status, body, _) = server
            .call(Method::POST, "/interests", Some(&ann), None, Some(&interest("Ann@Example.org", "lhr")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["email"], "ann@example.org");
        assert_eq!(body["airport"], "EGLL");
        assert_eq!(body["iata"], "LHR");
        assert_eq!(body["created"], true);
        assert_eq!(body["collection"], "next_pass", "no collector in this server");

        let (status, body, _) = server
            .call(Method::POST, "/interests", Some(&ann), None, Some(&interest("ann@example.org", "EGLL")))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["created"], false);

        // With an Idempotency-Key: replayed, not run again.
        let frankfurt = interest("ann@example.org", "FRA");
        let (status, first, _) = server
            .call(Method::POST, "/interests", Some(&ann), Some("add-fra"), Some(&frankfurt))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, again, headers) = server
            .call(Method::POST, "/interests", Some(&ann), Some("add-fra"), Some(&frankfurt))
            .await;
        assert_eq!((status, &again), (StatusCode::CREATED, &first));
        assert_eq!(headers["idempotent-replayed"], "true");

        // The operator acts for anyone; an ICAO code is taken as given.
        let (status, body, _) = server
            .call(Method::POST, "/interests", Some(OPERATOR), None, Some(&interest("ann@example.org", "ypph")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!((&body["airport"], &body["iata"]), (&json!("YPPH"), &Value::Null));

        for (code, hint) in [("XQX", "ICAO"), ("LON", "EGLL"), ("E1", "ICAO"), ("EGLLX", "ICAO")] {
            let (status, body, _) = server
                .call(Method::POST, "/interests", Some(&ann), None, Some(&interest("ann@example.org", code)))
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {body}");
            assert_eq!(body["error"], "validation_failed");
            assert_eq!(body["fields"][0]["field"], "airport_code");
            let message = body["fields"][0]["message"].as_str().unwrap();
            assert!(message.contains(hint), "{code}: {message}");
        }
        let (status, body, _) = server
            .call(Method::POST, "/interests", Some(&ann), None, Some(&json!({"email": "ann@example.org"})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["field"], "airport_code");

        let (status, list, _) = server
            .call(Method::GET, "/interests/ann@example.org", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(airports(&list), ["EDDF", "EGLL", "YPPH"]);
        assert_eq!(list["airports"][0]["iata"], "FRA");

        let (status, body, _) = server
            .call(Method::DELETE, "/interests", Some(&ann), None, Some(&interest("ann@example.org", "LHR")))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["deleted"], "EGLL");
        let (status, body, _) = server
            .call(Method::DELETE, "/interests", Some(&ann), None, Some(&interest("ann@example.org", "EGLL")))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (_, list, _) = server
            .call(Method::GET, "/interests/ann@example.org", Some(OPERATOR), None, None)
            .await;
        assert_eq!(airports(&list), ["EDDF", "YPPH"]);
    }
}

on_both_backends! {
    /// Bob can neither see nor change Ann's interests: 404, as for a user
    /// that does not exist; without a token, 401.
    async fn users_cannot_see_or_change_each_others_interests(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user("ann@example.org").await;
        let bob = server.user("bob@example.org").await;
        let (status, _, _) = server
            .call(Method::POST, "/interests", Some(&ann), None, Some(&interest("ann@example.org", "EDDF")))
            .await;
        assert_eq!(status, StatusCode::CREATED);

        let (status, _, _) = server
            .call(Method::GET, "/interests/ann@example.org", Some(&bob), None, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for method in [Method::POST, Method::DELETE] {
            let (status, body, _) = server
                .call(method.clone(), "/interests", Some(&bob), None, Some(&interest("ann@example.org", "EDDF")))
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
            assert_eq!(body["error"], "not_found");
        }
        let (status, _, _) = server
            .call(Method::GET, "/interests/nobody@example.org", Some(OPERATOR), None, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = server
            .call(Method::GET, "/interests/ann@example.org", None, None, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (_, list, _) = server
            .call(Method::GET, "/interests/ann@example.org", Some(&ann), None, None)
            .await;
        assert_eq!(airports(&list), ["EDDF"], "Ann's interest is untouched");
        let (_, list, _) = server
            .call(Method::GET, "/interests/bob@example.org", Some(&bob), None, None)
            .await;
        assert_eq!(airports(&list), Vec::<&str>::new());
    }
}

fn flight(icao24: &str, first_seen: &str, from: &str, to: &str) -> AirportFlight {
    let first: Timestamp = first_seen.parse().unwrap();
    AirportFlight {
        icao24: icao24.to_owned(),
        first_seen: first,
        last_seen: first + jiff::SignedDuration::from_hours(2),
        departure_airport: Some(from.to_owned()),
        arrival_airport: Some(to.to_owned()),
        callsign: Some(format!("TST{}", &icao24[..3])),
        departure_horizontal_distance: Some(1500),
        departure_vertical_distance: Some(40),
        arrival_horizontal_distance: Some(2500),
        arrival_vertical_distance: Some(30),
        departure_candidates: Some(1),
        arrival_candidates: Some(2),
    }
}

/// Three days at EDDF (1 to 3 March 2026): 6 arrivals and 4 departures,
/// one of them a round trip (EDDF to EDDF), so 9 distinct flights.
async fn seed_frankfurt(store: &Store) {
    let flights = [
        flight("a00001", "2026-03-01T06:00:00Z", "LEMD", "EDDF"),
        flight("d00001", "2026-03-01T08:00:00Z", "EDDF", "EGLL"),
        flight("a00002", "2026-03-01T12:00:00Z", "EIDW", "EDDF"),
        flight("a00003", "2026-03-02T05:00:00Z", "ZSPD", "EDDF"),
        flight("d00002", "2026-03-02T09:00:00Z", "EDDF", "LEMD"),
        flight("r00001", "2026-03-02T10:00:00Z", "EDDF", "EDDF"),
        flight("a00004", "2026-03-02T17:00:00Z", "EGLL", "EDDF"),
        flight("a00005", "2026-03-03T07:00:00Z", "LEMD", "EDDF"),
        flight("d00003", "2026-03-03T20:00:00Z", "EDDF", "LPCS"),
        // Elsewhere: never counted for EDDF.
        flight("e00001", "2026-03-02T11:00:00Z", "EGLL", "LEMD"),
    ];
    store.upsert_airport_flights(&flights).await.unwrap();
}

fn icao24s(page: &Value) -> Vec<&str> {
    page["flights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["icao24"].as_str().unwrap())
        .collect()
}

on_both_backends! {
    /// Average per day over the stored window (and its last N days), the
    /// most recent flight, and arrivals and departures by window.
    async fn statistics_are_computed_over_the_stored_window(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user("ann@example.org").await;
        seed_frankfurt(&server.store).await;

        let (status, avg, _) = server
            .call(Method::GET, "/flights/average/EDDF", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{avg}");
        assert_eq!(avg["state"], "ready");
        assert_eq!(avg["airport"], "EDDF");
        assert_eq!(avg["window"]["from"], "2026-03-01T00:00:00Z");
        assert_eq!(avg["window"]["to"], "2026-03-04T00:00:00Z");
        assert_eq!(avg["window"]["days"], 3.0);
        assert_eq!(avg["counts"], json!({"arrivals": 6, "departures": 4, "total": 9}));
        assert_eq!(avg["average_per_day"], json!({"arrivals": 2.0, "departures": 1.33, "total": 3.0}));

        // The last day only, asked by IATA code, as the operator.
        let (status, avg, _) = server
            .call(Method::GET, "/flights/average/fra?days=1", Some(OPERATOR), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{avg}");
        assert_eq!(avg["window"]["from"], "2026-03-03T00:00:00Z");
        assert_eq!(avg["requested_days"], 1);
        assert_eq!(avg["counts"], json!({"arrivals": 1, "departures": 1, "total": 2}));
        for bad in ["0", "32", "two"] {
            let (status, body, _) = server
                .call(Method::GET, &format!("/flights/average/EDDF?days={bad}"), Some(&ann), None, None)
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
            assert_eq!(body["fields"][0]["field"], "days");
        }

        let (status, last, _) = server
            .call(Method::GET, "/flights/last/EDDF", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{last}");
        assert_eq!(last["type"], "departures");
        assert_eq!(last["flight"]["icao24"], "d00003");
        assert_eq!(last["flight"]["arrival_airport"], "LPCS");
        assert_eq!(last["flight"]["first_seen"], "2026-03-03T20:00:00Z");
        assert_eq!(last["flight"]["departure_horizontal_distance"], 1500);

        let (status, page, _) = server
            .call(Method::GET, "/flights/EDDF?type=departures&from=2026-03-02&to=2026-03-02", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(icao24s(&page), ["d00002", "r00001"]);
        assert_eq!(page["window"]["to"], "2026-03-03T00:00:00Z", "a date as `to` is its whole day");
        let (_, page, _) = server
            .call(Method::GET, "/flights/EDDF?type=arrivals&from=2026-03-02T12:00:00%2B01:00", Some(&ann), None, None)
            .await;
        assert_eq!(icao24s(&page), ["a00004", "a00005"]);

        for (query, field) in [
            ("", "type"),
            ("?type=both", "type"),
            ("?type=arrivals&from=2026-03-03&to=2026-03-01", "to"),
            ("?type=arrivals&from=soon", "from"),
            ("?type=arrivals&limit=0", "limit"),
            ("?type=arrivals&limit=501", "limit"),
            ("?type=arrivals&offset=-1", "offset"),
        ] {
            let (status, body, _) = server
                .call(Method::GET, &format!("/flights/EDDF{query}"), Some(&ann), None, None)
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert_eq!(body["fields"][0]["field"], field, "{query}");
        }
        let (status, _, _) = server.call(Method::GET, "/flights/last/EDDF", None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

on_both_backends! {
    /// Pages of `limit` flights, `next_offset` until the last page; together
    /// they are the whole list, in order.
    async fn flights_are_paginated(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user("ann@example.org").await;
        seed_frankfurt(&server.store).await;
        let (status, all, _) = server
            .call(Method::GET, "/flights/EDDF?type=arrivals", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{all}");
        assert_eq!(icao24s(&all), ["a00001", "a00002", "a00003", "r00001", "a00004", "a00005"]);
        assert_eq!(all["limit"], 100);
        assert!(all.get("next_offset").is_none());

        let mut seen = Vec::new();
        let mut offset = 0;
        let mut pages = 0;
        loop {
            let (status, page, _) = server
                .call(Method::GET, &format!("/flights/EDDF?type=arrivals&limit=4&offset={offset}"), Some(&ann), None, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            pages += 1;
            seen.extend(icao24s(&page).into_iter().map(str::to_owned));
            match page["next_offset"].as_u64() {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(seen, icao24s(&all));
        let (_, past_the_end, _) = server
            .call(Method::GET, "/flights/EDDF?type=arrivals&offset=50", Some(&ann), None, None)
            .await;
        assert_eq!(icao24s(&past_the_end), Vec::<&str>::new());
    }
}

on_both_backends! {
    /// An airport someone follows but not collected yet answers 202
    /// "collecting" on every statistics route, never zeros (nor the partial
    /// flights seen from another airport); one nobody follows with nothing
    /// stored, 404 `not_collected`.
    async fn an_airport_without_data_is_collecting_not_zero(db: TestDb) {
        let server = Server::new(&db).await;
        let ann = server.user("ann@example.org").await;
        let (status, _, _) = server
            .call(Method::POST, "/interests", Some(&ann), None, Some(&interest("ann@example.org", "LHR")))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // A flight seen while fetching another airport is not EGLL's data yet.
        server
            .store
            .upsert_airport_flights(&[flight("x00001", "2026-03-01T08:00:00Z", "EDDF", "EGLL")])
            .await
            .unwrap();
        for path in ["/flights/average/LHR", "/flights/last/EGLL", "/flights/EGLL?type=arrivals"] {
            let (status, body, _) = server.call(Method::GET, path, Some(&ann), None, None).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{path}: {body}");
            assert_eq!(body["state"], "collecting", "{path}");
            assert_eq!(body["airport"], "EGLL", "{path}");
            assert!(body.get("counts").is_none() && body.get("flights").is_none());
        }
        let (status, body, _) = server
            .call(Method::GET, "/flights/average/KJFK", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "not_collected");
        let (status, body, _) = server
            .call(Method::GET, "/flights/last/XQX", Some(&ann), None, None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "airport");
        for path in ["/flights/last/%FF", "/interests/%FF"] {
            let (status, body, _) = server.call(Method::GET, path, Some(&ann), None, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body["error"].as_str().unwrap().starts_with("malformed_"), "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_lists_the_interest_and_flight_routes() {
    let store = Store::memory().unwrap();
    let state = farewatch::api::AppState::new(store, &farewatch::api::ApiConfig::default());
    let (_, spec) = farewatch::api::router(state);
    let document = serde_json::to_value(&spec).unwrap();
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/interests", &["post", "delete"][..]),
        ("/interests/{email}", &["get"]),
        ("/flights/{airport}", &["get"]),
        ("/flights/average/{airport}", &["get"]),
        ("/flights/last/{airport}", &["get"]),
    ] {
        for method in methods {
            assert!(paths[path].get(*method).is_some(), "{method} {path}");
        }
    }
    let average = &paths["/flights/average/{airport}"]["get"]["responses"];
    assert!(
        average.get("202").is_some(),
        "the collecting state is documented"
    );
    let key = paths["/interests"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["required"], false, "{key}");
    let params = paths["/flights/{airport}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {params:?}"))
    };
    assert_eq!(param("airport")["in"], "path");
    for (name, required) in [
        ("type", true),
        ("from", false),
        ("to", false),
        ("limit", false),
        ("offset", false),
    ] {
        assert_eq!(param(name)["in"], "query", "{name}");
        assert_eq!(param(name)["required"], required, "{name}");
    }
    let days = &paths["/flights/average/{airport}"]["get"]["parameters"][1];
    assert_eq!(
        (&days["name"], &days["in"]),
        (&json!("days"), &json!("query"))
    );
}
