//! `farewatch serve` over real HTTP, on SQLite and on PostgreSQL: auth and
//! isolation between users, the users routes, idempotent writes (replays,
//! conflicts, 50 parallel requests with one key, a crashed request's key),
//! the error statuses and the OpenAPI document.

mod common;

use std::sync::Arc;

use common::api_server::{Server, OPERATOR};
use common::db::TestDb;
use farewatch::api::{self, ApiConfig};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

fn user_body(email: &str) -> Value {
    json!({"email": email, "first_name": "Bo", "last_name": "Ng"})
}

on_both_backends! {
    /// Without a valid token nothing answers but /ping and /openapi.json;
    /// a user sees only their own account (404 for anyone else's).
    async fn tokens_are_required_and_users_see_only_themselves(db: TestDb) {
        let server = Server::new(&db).await;
        let (status, body, _) = server.call(Method::GET, "/ping", None, None, None).await;
        assert_eq!((status, body), (StatusCode::OK, Value::String("pong\n".into())));
        let (status, body, headers) = server.call(Method::GET, "/users", None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, _) = server.call(Method::GET, "/users", Some("fw_wrong"), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let ann = server.user("ann@example.org").await;
        let bob = server.user("bob@example.org").await;
        let (status, me, _) = server.call(Method::GET, "/users/ann@example.org", Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["email"], "ann@example.org");
        assert!(me.get("token").is_none(), "a token is shown once, at creation");
        for (method, key) in [(Method::GET, None), (Method::DELETE, Some("k1"))] {
            let (status, body, _) = server.call(method, "/users/bob@example.org", Some(&ann), key, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        }
        // Bob is untouched, and the operator-only list is not Ann's.
        let (status, _, _) = server.call(Method::GET, "/users/bob@example.org", Some(&bob), None, None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = server.call(Method::GET, "/users", Some(&ann), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both_backends! {
    /// E-mail addresses are compared case-insensitively; the list pages by
    /// cursor; deleting a user removes their token with them.
    async fn users_are_created_listed_and_deleted(db: TestDb) {
        let server = Server::new(&db).await;
        for n in 0..5 {
            server.user(&format!("user{n}@example.org")).await;
        }
        let (status, body, _) = server
            .call(Method::POST, "/users", Some(OPERATOR), Some("dup"), Some(&user_body("USER0@Example.org")))
            .await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("user_exists")));

        let mut seen = Vec::new();
        let mut path = "/users?limit=2".to_owned();
        loop {
            let (status, page, _) = server.call(Method::GET, &path, Some(OPERATOR), None, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let users = page["users"].as_array().unwrap();
            assert!(users.len() <= 2);
            seen.extend(users.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
            match page["next"].as_str() {
                Some(next) => path = format!("/users?limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, (0..5).map(|n| format!("user{n}@example.org")).collect::<Vec<_>>());

        let token = server.user("gone@example.org").await;
        let (status, body, _) = server
            .call(Method::DELETE, "/users/gone@example.org", Some(&token), Some("bye"), None)
            .await;
        assert_eq!((status, body["deleted"].as_str()), (StatusCode::OK, Some("gone@example.org")));
        let (status, _, _) = server.call(Method::GET, "/users/gone@example.org", Some(&token), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the token went with the user");
        let (status, _, _) = server.call(Method::GET, "/users/gone@example.org", Some(OPERATOR), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both_backends! {
    /// The idempotency scenarios: required key, replay, reuse for another
    /// request, an existing user under a new key (409, stored for the key).
    async fn writes_are_idempotent(db: TestDb) {
        let server = Server::new(&db).await;
        let body = user_body("kim@example.org");
        let (status, error, _) = server.call(Method::POST, "/users", Some(OPERATOR), None, Some(&body)).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("idempotency_key_required")));

        let (first, created, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-1"), Some(&body)).await;
        assert_eq!(first, StatusCode::CREATED);
        assert!(headers.get("idempotent-replayed").is_none());
        let (again, replayed, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-1"), Some(&body)).await;
        assert_eq!((again, &replayed), (StatusCode::CREATED, &created), "the same answer, token included");
        assert_eq!(headers["idempotent-replayed"], "true");

        let other = user_body("lee@example.org");
        let (status, error, _) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-1"), Some(&other)).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));

        let (status, _, _) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-2"), Some(&body)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, error, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-2"), Some(&body)).await;
        assert_eq!((status, error["error"].as_str()), (StatusCode::CONFLICT, Some("user_exists")));
        assert_eq!(headers["idempotent-replayed"], "true", "the 409 is stored for its key");

        // A validation failure is not stored: the corrected retry runs.
        let bad = json!({"email": "nope", "first_name": "A", "last_name": "B"});
        let (status, _, _) = server.call(Method::POST, "/users", Some(OPERATOR), Some("k-3"), Some(&bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _, _) = server
            .call(Method::POST, "/users", Some(OPERATOR), Some("k-3"), Some(&user_body("nope@example.org")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "the key was released: the corrected request runs");
    }
}

on_both_backends! {
    /// 50 requests at once with one key create one user; every answer is
    /// that creation or "still in progress".
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_parallel_requests_with_one_key_run_once(db: TestDb) {
        let server = Arc::new(Server::new(&db).await);
        let body = user_body("once@example.org");
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (server, body) = (server.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                server.call(Method::POST, "/users", Some(OPERATOR), Some("same-key"), Some(&body)).await
            }));
        }
        let mut created = Vec::new();
        for task in tasks {
            let (status, json, _) = task.await.unwrap();
            match status {
                StatusCode::CREATED => created.push(json),
                StatusCode::CONFLICT => assert_eq!(json["error"], "idempotency_key_in_progress"),
                other => panic!("unexpected {other}: {json}"),
            }
        }
        assert!(!created.is_empty());
        assert!(created.windows(2).all(|w| w[0] == w[1]), "every 201 is the one creation");
        let users = server.store.list_users(0, 100).await.unwrap();
        assert_eq!(users.len(), 1, "{users:?}");
    }
}

on_both_backends! {
    /// A request that died after claiming its key (a crash) leaves the key
    /// locked: a retry gets 409 until the lock is stale, then runs.
    async fn a_crashed_requests_key_is_taken_over_once_stale(db: TestDb) {
        let server = Server::new(&db).await;
        let body = user_body("crash@example.org");
        let bytes = serde_json::to_vec(&body).unwrap();
        let print = api::idempotency::fingerprint(&Method::POST, "/users", &bytes);
        let claimed_at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5);
        server
            .store
            .claim_idempotency_key("operator", "crashed", &print, claimed_at, api::idempotency::STALE_AFTER)
            .await
            .unwrap();
        let (status, _, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("crashed"), Some(&body)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers["retry-after"], "1");
        // The same claim long ago: stale, so the retry takes it over.
        let stale = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120);
        server
            .store
            .claim_idempotency_key("operator", "crashed-long-ago", &print, stale, api::idempotency::STALE_AFTER)
            .await
            .unwrap();
        let (status, json, _) = server
            .call(Method::POST, "/users", Some(OPERATOR), Some("crashed-long-ago"), Some(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
}

on_both_backends! {
    /// Bad requests get the right status and a JSON error naming the problem.
    async fn bad_requests_get_json_errors_with_the_right_status(db: TestDb) {
        let server = Server::new(&db).await;
        let url = format!("{}/users", server.base);
        let send = |body: reqwest::Body, content_type: &'static str, key: &'static str| {
            server
                .client
                .post(&url)
                .bearer_auth(OPERATOR)
                .header("Idempotency-Key", key)
                .header("Content-Type", content_type)
                .body(body)
        };
        let huge = vec![b' '; api::BODY_LIMIT + 1];
        let response = send(huge.into(), "application/json", "a").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "body_too_large");
        let response = send("email=x".into(), "text/plain", "b").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let response = send("{not json".into(), "application/json", "c").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "malformed_json");
        let response = send(r#"{"first_name":"A","last_name":"B"}"#.into(), "application/json", "d").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["fields"][0]["field"], "email", "{json}");
        let (status, json, _) = server.call(Method::GET, "/no/such/route", Some(OPERATOR), None, None).await;
        assert_eq!((status, json["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
}

on_both_backends! {
    /// Each token has its own rate: past its burst it gets 429 with Retry-After.
    async fn each_token_is_rate_limited(db: TestDb) {
        let config = ApiConfig {
            operator_token: Some(SecretString::from(OPERATOR.to_owned())),
            rate_per_sec: 1.0,
            burst: 3,
        };
        let server = Server::start(&db, config).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(server.call(Method::GET, "/users", Some(OPERATOR), None, None).await);
        }
        let limited = statuses.iter().filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS).count();
        assert!(limited >= 1, "{:?}", statuses.iter().map(|s| s.0).collect::<Vec<_>>());
        let (_, body, headers) = statuses.iter().find(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert!(headers.contains_key("retry-after"));
    }
}

on_both_backends! {
    /// Keys are kept 24 hours: a day later the same key starts a new request.
    async fn keys_expire_after_a_day(db: TestDb) {
        let server = Server::new(&db).await;
        let body = user_body("day@example.org");
        let (status, _, _) = server.call(Method::POST, "/users", Some(OPERATOR), Some("daily"), Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED);
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(23);
        assert_eq!(api::purge_expired_keys(&server.store, soon).await.unwrap(), 0);
        let (_, _, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("daily"), Some(&body)).await;
        assert_eq!(headers["idempotent-replayed"], "true");
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(25);
        assert_eq!(api::purge_expired_keys(&server.store, later).await.unwrap(), 1);
        let (status, json, headers) = server.call(Method::POST, "/users", Some(OPERATOR), Some("daily"), Some(&body)).await;
        assert_eq!((status, json["error"].as_str()), (StatusCode::CONFLICT, Some("user_exists")), "run again");
        assert!(headers.get("idempotent-replayed").is_none());
    }
}

/// Every mounted route is in the OpenAPI document, and without a token each
/// answers 401: never 404 or 405 (a route missing from the router).
#[tokio::test]
async fn every_route_is_documented_and_authenticated() {
    let db = TestDb::new(common::db::Backend::Sqlite).await;
    let server = Server::new(&db).await;
    let (status, document, _) = server
        .call(Method::GET, "/openapi.json", None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    assert!(
        paths.contains_key("/users") && paths.contains_key("/users/{email}"),
        "{paths:?}"
    );
    let list = &paths["/users"]["get"]["parameters"];
    for param in list.as_array().unwrap() {
        assert_eq!(param["in"], "query", "{param}");
        assert_eq!(param["required"], false, "{param}");
    }
    let mut checked = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            // OpenAPI requires a description on every response.
            for (status, response) in item[method]["responses"].as_object().unwrap() {
                let described = response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty());
                assert!(described, "{method} {path} {status} has no description");
            }
            let concrete = path
                .replace("{email}", "someone@example.org")
                .replace("{id}", "1")
                .replace("{airport}", "EGLL");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, _, _) = server
                .call(method.clone(), &concrete, None, None, None)
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} operations");
}

#[test]
fn the_api_will_not_listen_beyond_loopback_without_an_operator_token() {
    let open = ApiConfig::default();
    assert!(api::check_exposure("127.0.0.1:8080".parse().unwrap(), &open).is_ok());
    let error = api::check_exposure("0.0.0.0:8080".parse().unwrap(), &open).unwrap_err();
    assert!(error.to_string().contains("FAREWATCH_API_TOKEN"), "{error}");
    let closed = ApiConfig {
        operator_token: Some(SecretString::from("t".to_owned())),
        ..ApiConfig::default()
    };
    assert!(api::check_exposure("0.0.0.0:8080".parse().unwrap(), &closed).is_ok());
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_an_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::binary::offline(dir.path())
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("FAREWATCH_API_TOKEN"), "{stderr}");
}
