//! The store's accounts API (what `farewatch serve` keeps): users and their
//! tokens, idempotency keys, API watches, airport interests and airport
//! flights. Every test runs on both backends ([`on_both_backends!`]: an
//! SQLite file and a PostgreSQL database of their own). Time is passed in,
//! never slept through.

mod common;

use std::time::Duration;

use common::db::{Backend, TestDb};

use farewatch::store::{
    AirportFlight, ApiWatch, CreatedUser, Direction, KeyClaim, NewUser, Store, StoreLocation,
    TokenHash, User, WatchKind,
};
use jiff::{SignedDuration, Timestamp};

/// A fixed instant in whole microseconds (PostgreSQL keeps no finer).
fn t0() -> Timestamp {
    Timestamp::new(1_800_000_000, 250_000).unwrap()
}

fn at(offset_secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(offset_secs)
}

const STALE: Duration = Duration::from_secs(30);

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        phone: Some("+447700900123".to_owned()),
    }
}

fn token(n: u8) -> TokenHash {
    [n; 32]
}

fn print(n: u8) -> [u8; 32] {
    [n; 32]
}

async fn create(store: &Store, email: &str, token_n: u8) -> User {
    match store
        .create_user(&new_user(email), &token(token_n), t0())
        .await
        .unwrap()
    {
        CreatedUser::Created(user) => user,
        CreatedUser::Exists => panic!("{email} exists"),
    }
}

/// Rows in `table`, counted outside the store.
async fn count(db: &TestDb, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match db.backend {
        Backend::Sqlite => {
            let StoreLocation::Sqlite(path) = db.location() else {
                panic!("not a file");
            };
            let raw = rusqlite::Connection::open(path).unwrap();
            raw.query_row(&sql, [], |r| r.get(0)).unwrap()
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut raw = sqlx::PgConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut raw)
                .await
                .unwrap()
        }
    }
}

// ---------------------------------------------------------------- users

on_both_backends! {
    async fn a_user_is_created_once_per_address_and_found_by_email_and_token(db: TestDb) {
        let store = db.open().await;
        let ada = create(&store, "ada@example.com", 1).await;
        assert_eq!(ada.email, "ada@example.com");
        assert_eq!(ada.phone.as_deref(), Some("+447700900123"));
        assert_eq!(ada.created_at, t0());

        assert_eq!(store.user_by_email("ada@example.com").await.unwrap(), Some(ada.clone()));
        // Addresses compare lower-case.
        assert_eq!(store.user_by_email("ADA@Example.com").await.unwrap(), Some(ada.clone()));
        assert_eq!(store.user_by_token(&token(1)).await.unwrap(), Some(ada.clone()));

        // The same address again, in another case and with another token:
        // nothing is written, not even the token.
        let again = store
            .create_user(&new_user("Ada@Example.COM"), &token(2), at(5))
            .await
            .unwrap();
        assert_eq!(again, CreatedUser::Exists);
        assert_eq!(store.user_by_token(&token(2)).await.unwrap(), None);
        assert_eq!(count(&db, "users").await, 1);
        assert_eq!(count(&db, "api_tokens").await, 1);

        assert_eq!(store.user_by_email("bob@example.com").await.unwrap(), None);
        assert_eq!(store.user_by_token(&token(9)).await.unwrap(), None);

        // A user without a phone; another store (process) sees both.
        let mut no_phone = new_user("bob@example.com");
        no_phone.phone = None;
        let CreatedUser::Created(bob) =
            store.create_user(&no_phone, &token(3), t0()).await.unwrap()
        else {
            panic!("bob exists");
        };
        assert_eq!(bob.phone, None);
        assert!(bob.id > ada.id);
        let other = db.open().await;
        assert_eq!(other.user_by_token(&token(3)).await.unwrap(), Some(bob));
    }
}

on_both_backends! {
    async fn users_are_listed_by_id_a_page_at_a_time(db: TestDb) {
        let store = db.open().await;
        let mut made = Vec::new();
        for n in 0..5u8 {
            made.push(create(&store, &format!("user{n}@example.com"), n).await);
        }
        let first = store.list_users(0, 2).await.unwrap();
        assert_eq!(first, made[..2]);
        let second = store.list_users(first[1].id, 2).await.unwrap();
        assert_eq!(second, made[2..4]);
        let third = store.list_users(second[1].id, 2).await.unwrap();
        assert_eq!(third, made[4..]);
        assert!(store.list_users(third[0].id, 2).await.unwrap().is_empty());
        assert_eq!(store.list_users(0, 100).await.unwrap(), made);
        assert!(store.list_users(0, 0).await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn deleting_a_user_removes_their_tokens_watches_interests_and_keys(db: TestDb) {
        let store = db.open().await;
        let ada = create(&store, "ada@example.com", 1).await;
        let bob = create(&store, "bob@example.com", 2).await;
        let ada_watch = store.create_watch(ada.id, WatchKind::Fare, "{}", t0()).await.unwrap();
        let bob_watch = store.create_watch(bob.id, WatchKind::Fare, "{}", t0()).await.unwrap();
        for (user, airport) in [(&ada, "EGLL"), (&ada, "LFPG"), (&bob, "EGLL")] {
            assert!(store.add_interest(user.id, airport, t0()).await.unwrap());
        }
        let (ada_scope, bob_scope) = (ada.id.to_string(), bob.id.to_string());
        for scope in [ada_scope.as_str(), bob_scope.as_str(), "operator"] {
            let claim = store
                .claim_idempotency_key(scope, "k1", &print(1), t0(), STALE)
                .await
                .unwrap();
            assert_eq!(claim, KeyClaim::Proceed);
        }
        store
            .complete_idempotency_key(&ada_scope, "k1", 201, "{\"id\":1}")
            .await
            .unwrap();

        assert!(store.delete_user("ADA@example.com").await.unwrap());
        assert!(!store.delete_user("ada@example.com").await.unwrap());

        assert_eq!(store.user_by_email("ada@example.com").await.unwrap(), None);
        assert_eq!(store.user_by_token(&token(1)).await.unwrap(), None);
        assert!(store.watches_of(ada.id).await.unwrap().is_empty());
        assert_eq!(store.watch(ada.id, ada_watch.id).await.unwrap(), None);
        assert!(store.interests_of(ada.id).await.unwrap().is_empty());
        assert_eq!(store.interest_airports().await.unwrap(), ["EGLL"]);
        assert_eq!(store.all_watches().await.unwrap(), [(bob_watch, bob.clone())]);
        // Rows, not just joins: one of each left, Bob's.
        assert_eq!(count(&db, "users").await, 1);
        assert_eq!(count(&db, "api_tokens").await, 1);
        assert_eq!(count(&db, "api_watches").await, 1);
        assert_eq!(count(&db, "interests").await, 1);
        // Ada's key is gone (a claim is new again); Bob's and the operator's stay.
        assert_eq!(count(&db, "idempotency_keys").await, 2);
        let later = at(1);
        for (scope, expected) in [
            (ada_scope.as_str(), KeyClaim::Proceed),
            (bob_scope.as_str(), KeyClaim::InProgress),
            ("operator", KeyClaim::InProgress),
        ] {
            let claim = store
                .claim_idempotency_key(scope, "k1", &print(1), later, STALE)
                .await
                .unwrap();
            assert_eq!(claim, expected, "scope {scope}");
        }
        assert_eq!(store.user_by_token(&token(2)).await.unwrap(), Some(bob));
    }
}

on_both_backends! {
    /// Ids name watches (and their alert state) and key scopes: a deleted
    /// row's id is never handed out again, even the highest.
    async fn ids_are_never_reused_after_a_delete(db: TestDb) {
        let store = db.open().await;
        let ada = create(&store, "ada@example.com", 1).await;
        let watch = store.create_watch(ada.id, WatchKind::Fare, "{}", t0()).await.unwrap();
        assert!(store.delete_watch(ada.id, watch.id).await.unwrap());
        let next = store.create_watch(ada.id, WatchKind::Fare, "{}", t0()).await.unwrap();
        assert!(next.id > watch.id, "{} after {}", next.id, watch.id);

        assert!(store.delete_user("ada@example.com").await.unwrap());
        drop(store);
        let store = db.open().await;
        let again = create(&store, "ada@example.com", 1).await;
        assert!(again.id > ada.id, "{} after {}", again.id, ada.id);
    }
}

// ---------------------------------------------------------------- idempotency keys

on_both_backends! {
    async fn an_idempotency_key_proceeds_once_then_replays(db: TestDb) {
        let store = db.open().await;
        let claim = |key: &'static str, n: u8, now: Timestamp| {
            let store = store.clone();
            async move {
                store
                    .claim_idempotency_key("operator", key, &print(n), now, STALE)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim("k", 1, t0()).await, KeyClaim::Proceed);
        assert_eq!(claim("k", 1, at(1)).await, KeyClaim::InProgress);
        assert_eq!(claim("k", 2, at(1)).await, KeyClaim::Mismatch);

        store
            .complete_idempotency_key("operator", "k", 201, "{\"id\":7}")
            .await
            .unwrap();
        let replay = KeyClaim::Replay {
            status: 201,
            body: "{\"id\":7}".to_owned(),
        };
        assert_eq!(claim("k", 1, at(2)).await, replay);
        // Long after any lock would be stale, still a replay, never a re-run.
        assert_eq!(claim("k", 1, at(3600)).await, replay);
        assert_eq!(claim("k", 2, at(2)).await, KeyClaim::Mismatch);
        // A completed answer is neither replaced nor released.
        store
            .complete_idempotency_key("operator", "k", 500, "{}")
            .await
            .unwrap();
        store.release_idempotency_key("operator", "k").await.unwrap();
        assert_eq!(claim("k", 1, at(4)).await, replay);

        // Released (the request failed before changing anything): runs again.
        assert_eq!(claim("k2", 1, t0()).await, KeyClaim::Proceed);
        store.release_idempotency_key("operator", "k2").await.unwrap();
        assert_eq!(claim("k2", 1, at(1)).await, KeyClaim::Proceed);
        // A release may even change the request (a corrected retry).
        store.release_idempotency_key("operator", "k2").await.unwrap();
        assert_eq!(claim("k2", 2, at(2)).await, KeyClaim::Proceed);

        // Keys are per scope.
        let other_scope = store
            .claim_idempotency_key("42", "k", &print(2), t0(), STALE)
            .await
            .unwrap();
        assert_eq!(other_scope, KeyClaim::Proceed);

        // Completing or releasing a key that is not there changes nothing.
        store.complete_idempotency_key("operator", "nope", 200, "{}").await.unwrap();
        store.release_idempotency_key("operator", "nope").await.unwrap();
        assert_eq!(count(&db, "idempotency_keys").await, 3);
    }
}

on_both_backends! {
    /// A request that died between claim and answer does not wedge its key:
    /// once the lock is `stale_after` old a retry takes it over.
    async fn a_stale_lock_is_taken_over(db: TestDb) {
        let store = db.open().await;
        let claim = |n: u8, now: Timestamp| {
            let store = store.clone();
            async move {
                store
                    .claim_idempotency_key("operator", "k", &print(n), now, STALE)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim(1, t0()).await, KeyClaim::Proceed);
        assert_eq!(claim(1, at(29)).await, KeyClaim::InProgress);
        // Another request is refused even when the lock is stale.
        assert_eq!(claim(2, at(100)).await, KeyClaim::Mismatch);
        assert_eq!(claim(1, at(30)).await, KeyClaim::Proceed, "taken over");
        // Re-locked at the take-over: in progress again.
        assert_eq!(claim(1, at(31)).await, KeyClaim::InProgress);
        assert_eq!(claim(1, at(59)).await, KeyClaim::InProgress);
        store
            .complete_idempotency_key("operator", "k", 200, "done")
            .await
            .unwrap();
        assert_eq!(
            claim(1, at(60)).await,
            KeyClaim::Replay {
                status: 200,
                body: "done".to_owned()
            }
        );
    }
}

on_both_backends! {
    async fn keys_created_before_a_time_are_purged(db: TestDb) {
        let store = db.open().await;
        for (key, created) in [("old", t0()), ("edge", at(3600)), ("new", at(7200))] {
            let claim = store
                .claim_idempotency_key("operator", key, &print(1), created, STALE)
                .await
                .unwrap();
            assert_eq!(claim, KeyClaim::Proceed);
        }
        store
            .complete_idempotency_key("operator", "old", 201, "{}")
            .await
            .unwrap();
        assert_eq!(store.purge_idempotency_keys(at(3600)).await.unwrap(), 1);
        assert_eq!(store.purge_idempotency_keys(at(3600)).await.unwrap(), 0);
        // The purged key starts a new request; the others are still locked.
        let now = at(7201);
        for (key, expected) in [
            ("old", KeyClaim::Proceed),
            ("edge", KeyClaim::Proceed), // stale by now: taken over
            ("new", KeyClaim::InProgress),
        ] {
            let claim = store
                .claim_idempotency_key("operator", key, &print(1), now, STALE)
                .await
                .unwrap();
            assert_eq!(claim, expected, "{key}");
        }
        // A take-over keeps the key's creation time: it still expires.
        assert_eq!(store.purge_idempotency_keys(at(7200)).await.unwrap(), 1);
        assert_eq!(store.purge_idempotency_keys(at(7202)).await.unwrap(), 2);
        assert_eq!(count(&db, "idempotency_keys").await, 0);
    }
}

/// Runs 50 claims of one key at `now` at once (they wait for each other
/// before claiming), one in five on a store of its own (another process);
/// returns how many proceeded and how many were told it is in progress.
async fn fifty_claims(db: &TestDb, shared: &Store, now: Timestamp) -> (usize, usize) {
    let mut stores = Vec::new();
    for n in 0..50 {
        stores.push(if n % 5 == 0 {
            db.open().await
        } else {
            shared.clone()
        });
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .claim_idempotency_key("operator", "parallel", &print(1), now, STALE)
                    .await
            })
        })
        .collect();
    let (mut proceed, mut in_progress) = (0, 0);
    for task in tasks {
        match task.await.unwrap().unwrap() {
            KeyClaim::Proceed => proceed += 1,
            KeyClaim::InProgress => in_progress += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    (proceed, in_progress)
}

on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_claims_of_one_key_proceed_exactly_once(db: TestDb) {
        let store = db.open().await;
        assert_eq!(fifty_claims(&db, &store, t0()).await, (1, 49));
        // And of a stale lock: exactly one takes it over.
        assert_eq!(fifty_claims(&db, &store, at(60)).await, (1, 49));
        assert_eq!(count(&db, "idempotency_keys").await, 1);
    }
}

// ---------------------------------------------------------------- watches

on_both_backends! {
    async fn watches_belong_to_their_user(db: TestDb) {
        let store = db.open().await;
        let ada = create(&store, "ada@example.com", 1).await;
        let bob = create(&store, "bob@example.com", 2).await;
        let fare_spec = r#"{"origin":"LHR","destination":"JFK","max_price":"450"}"#;
        let flight_spec = r#"{"flight":"BA117","date":"2027-03-01"}"#;
        let a1 = store.create_watch(ada.id, WatchKind::Fare, fare_spec, t0()).await.unwrap();
        let a2 = store.create_watch(ada.id, WatchKind::Flight, flight_spec, at(1)).await.unwrap();
        let b1 = store.create_watch(bob.id, WatchKind::Fare, "{}", at(2)).await.unwrap();
        assert_eq!(
            a1,
            ApiWatch {
                id: a1.id,
                user_id: ada.id,
                kind: WatchKind::Fare,
                spec: fare_spec.to_owned(),
                created_at: t0(),
            }
        );
        assert!(a1.id < a2.id && a2.id < b1.id);

        assert_eq!(store.watches_of(ada.id).await.unwrap(), [a1.clone(), a2.clone()]);
        assert_eq!(store.watches_of(bob.id).await.unwrap(), std::slice::from_ref(&b1));
        assert_eq!(store.watch(ada.id, a2.id).await.unwrap(), Some(a2.clone()));

        // Bob can neither see nor delete Ada's watch.
        assert_eq!(store.watch(bob.id, a1.id).await.unwrap(), None);
        assert!(!store.delete_watch(bob.id, a1.id).await.unwrap());
        assert_eq!(store.watch(ada.id, a1.id).await.unwrap(), Some(a1.clone()));
        assert_eq!(store.watch(ada.id, 999_999).await.unwrap(), None);

        assert_eq!(
            store.all_watches().await.unwrap(),
            [
                (a1.clone(), ada.clone()),
                (a2.clone(), ada.clone()),
                (b1.clone(), bob.clone())
            ]
        );
        assert!(store.delete_watch(ada.id, a1.id).await.unwrap());
        assert!(!store.delete_watch(ada.id, a1.id).await.unwrap());
        assert_eq!(store.watches_of(ada.id).await.unwrap(), [a2]);

        // A watch for a user that does not exist is refused.
        assert!(store.create_watch(999_999, WatchKind::Fare, "{}", t0()).await.is_err());
    }
}

// ---------------------------------------------------------------- interests

on_both_backends! {
    async fn interests_are_kept_once_and_listed_sorted(db: TestDb) {
        let store = db.open().await;
        let ada = create(&store, "ada@example.com", 1).await;
        let bob = create(&store, "bob@example.com", 2).await;
        assert!(store.add_interest(ada.id, "LFPG", t0()).await.unwrap());
        assert!(!store.add_interest(ada.id, "LFPG", at(1)).await.unwrap());
        assert!(store.add_interest(ada.id, "EGLL", t0()).await.unwrap());
        assert!(store.add_interest(bob.id, "LFPG", t0()).await.unwrap());
        assert!(store.add_interest(bob.id, "KJFK", t0()).await.unwrap());

        assert_eq!(store.interests_of(ada.id).await.unwrap(), ["EGLL", "LFPG"]);
        assert_eq!(store.interests_of(bob.id).await.unwrap(), ["KJFK", "LFPG"]);
        assert_eq!(store.interest_airports().await.unwrap(), ["EGLL", "KJFK", "LFPG"]);

        assert!(store.remove_interest(ada.id, "LFPG").await.unwrap());
        assert!(!store.remove_interest(ada.id, "LFPG").await.unwrap());
        assert!(!store.remove_interest(ada.id, "KJFK").await.unwrap());
        assert_eq!(store.interest_airports().await.unwrap(), ["EGLL", "KJFK", "LFPG"]);
        assert!(store.remove_interest(bob.id, "LFPG").await.unwrap());
        assert_eq!(store.interest_airports().await.unwrap(), ["EGLL", "KJFK"]);
        assert!(store.interests_of(999_999).await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------- airport flights

fn flight(icao24: &str, first_seen: i64, from: Option<&str>, to: Option<&str>) -> AirportFlight {
    AirportFlight {
        icao24: icao24.to_owned(),
        first_seen: Timestamp::from_second(first_seen).unwrap(),
        last_seen: Timestamp::from_second(first_seen + 3600).unwrap(),
        departure_airport: from.map(str::to_owned),
        arrival_airport: to.map(str::to_owned),
        callsign: Some(format!("CS{icao24}")),
        departure_horizontal_distance: Some(1200),
        departure_vertical_distance: Some(40),
        arrival_horizontal_distance: None,
        arrival_vertical_distance: Some(-8),
        departure_candidates: Some(0),
        arrival_candidates: Some(3),
    }
}

const DAY: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

on_both_backends! {
    async fn airport_flights_are_stored_once_and_read_by_window_and_direction(db: TestDb) {
        let store = db.open().await;
        let arrivals = vec![
            flight("4ca1f2", DAY + 600, Some("LFPG"), Some("EGLL")),
            flight("3c6444", DAY + 60, Some("KJFK"), Some("EGLL")),
            // Same instant as the next: ordered by icao24.
            flight("a1b2c3", DAY + 3600, None, Some("EGLL")),
            flight("0a1b2c", DAY + 3600, Some("EDDF"), Some("EGLL")),
            flight("400fff", DAY + 86_400, Some("LFPG"), Some("EGLL")),
        ];
        let departures = vec![
            flight("406b3e", DAY + 120, Some("EGLL"), Some("LFPG")),
            flight("406b3f", DAY + 7200, Some("EGLL"), None),
        ];
        let elsewhere = vec![flight("abcdef", DAY + 300, Some("LFPG"), Some("KJFK"))];
        let all: Vec<_> = [arrivals.clone(), departures.clone(), elsewhere].concat();
        assert_eq!(store.upsert_airport_flights(&all).await.unwrap(), 8);
        assert_eq!(store.upsert_airport_flights(&[]).await.unwrap(), 0);

        // Again, with one changed: updated in place, never duplicated.
        let mut changed = all.clone();
        changed[0].last_seen = Timestamp::from_second(DAY + 9000).unwrap();
        changed[0].callsign = Some("BAW123".to_owned());
        changed[0].arrival_horizontal_distance = Some(512);
        assert_eq!(store.upsert_airport_flights(&changed).await.unwrap(), 8);
        // A flight twice in one call is written once (the last one given).
        let twice = [changed[1].clone(), changed[1].clone()];
        assert_eq!(store.upsert_airport_flights(&twice).await.unwrap(), 1);
        assert_eq!(count(&db, "airport_flights").await, 8);

        let window = |from: i64, to: i64| {
            (
                Timestamp::from_second(from).unwrap(),
                Timestamp::from_second(to).unwrap(),
            )
        };
        let (from, to) = window(DAY, DAY + 86_400);
        let got = store
            .airport_flights("EGLL", Direction::Arrivals, from, to, 0, 100)
            .await
            .unwrap();
        // `to` is excluded: the flight at exactly DAY + 1 day is not in it.
        let expected = vec![
            changed[1].clone(),
            changed[0].clone(),
            changed[3].clone(),
            changed[2].clone(),
        ];
        assert_eq!(got, expected);
        assert_eq!(got[1].callsign.as_deref(), Some("BAW123"));
        assert_eq!(got[1].arrival_horizontal_distance, Some(512));

        // Pages.
        let page = |offset, limit| {
            let store = store.clone();
            async move {
                store
                    .airport_flights("EGLL", Direction::Arrivals, from, to, offset, limit)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(page(0, 2).await, expected[..2]);
        assert_eq!(page(2, 2).await, expected[2..]);
        assert!(page(4, 2).await.is_empty());

        // `from` is included.
        let (from_first, to_all) = window(DAY + 600, DAY + 2 * 86_400);
        let later = store
            .airport_flights("EGLL", Direction::Arrivals, from_first, to_all, 0, 100)
            .await
            .unwrap();
        assert_eq!(later.len(), 4);
        assert_eq!(later[0].icao24, "4ca1f2");

        let deps = store
            .airport_flights("EGLL", Direction::Departures, from, to, 0, 100)
            .await
            .unwrap();
        assert_eq!(deps, departures);
        let kjfk = |direction| {
            let store = store.clone();
            async move {
                store
                    .airport_flights("KJFK", direction, from, to, 0, 100)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(kjfk(Direction::Departures).await, [changed[1].clone()]);
        assert_eq!(kjfk(Direction::Arrivals).await, [changed[7].clone()]);
        assert!(store
            .airport_flights("ZZZZ", Direction::Arrivals, from, to, 0, 100)
            .await
            .unwrap()
            .is_empty());

        // The span covers both directions.
        let span = store.airport_flight_span("EGLL").await.unwrap();
        assert_eq!(
            span,
            Some((
                Timestamp::from_second(DAY + 60).unwrap(),
                Timestamp::from_second(DAY + 86_400).unwrap(),
                7
            ))
        );
        assert_eq!(
            store.airport_flight_span("KJFK").await.unwrap(),
            Some((
                Timestamp::from_second(DAY + 60).unwrap(),
                Timestamp::from_second(DAY + 300).unwrap(),
                2
            ))
        );
        assert_eq!(store.airport_flight_span("ZZZZ").await.unwrap(), None);
    }
}
