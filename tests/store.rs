//! The store: location parsing, opening, migrations, alert state, the
//! outbox and cached tokens. Tests of behaviour run on both backends
//! ([`on_both_backends!`]: an SQLite file and a PostgreSQL database of their
//! own); those about files, permissions and the SQLite fixture run on SQLite.

// Amounts are minor units written as `major_minor` (`289_00` is 289.00 EUR).

mod common;

use std::path::{Path, PathBuf};

use common::db::{Backend, TestDb};

use farewatch::domain::{Currency, Money};
use farewatch::rules::AlertState;
use farewatch::store::{
    Intent, IntentStatus, RunId, Store, StoreError, StoreLocation, TokenCache, SCHEMA_VERSION,
};
use jiff::{SignedDuration, Timestamp};
use tempfile::TempDir;

/// The run these tests write as (alive for the whole test binary).
static RUN: std::sync::LazyLock<RunId> = std::sync::LazyLock::new(RunId::new);

async fn file_store(dir: &TempDir) -> (Store, StoreLocation) {
    let location = StoreLocation::Sqlite(dir.path().join("state").join("farewatch.db"));
    (Store::open(&location).await.expect("open store"), location)
}

fn db_path(location: &StoreLocation) -> &Path {
    match location {
        StoreLocation::Sqlite(path) => path,
        other => panic!("not a file: {other:?}"),
    }
}

fn ts(secs: i64, nanos: i32) -> Timestamp {
    Timestamp::new(secs, nanos).unwrap()
}

/// `t` without its sub-microsecond part (what PostgreSQL keeps).
fn whole_micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap()
}

fn intent(key: &str, route_id: &str, seq: u64) -> Intent {
    Intent {
        key: key.to_owned(),
        route_id: route_id.to_owned(),
        seq,
        recipient: "+447700900123".to_owned(),
        channel: "twilio".to_owned(),
        body: format!("farewatch: {route_id} fell to EUR 289.00 (alert {seq})"),
        // Whole microseconds: PostgreSQL keeps no finer (SQLite keeps nanoseconds).
        created_at: ts(1_800_000_000, 250_000),
    }
}

fn alerted(minor: i64, currency: &str, at: Timestamp, sent: u64) -> AlertState {
    AlertState {
        last_alerted: Some(Money::from_minor(minor, Currency::parse(currency).unwrap())),
        last_alerted_at: Some(at),
        alerts_sent: sent,
    }
}

// ---------------------------------------------------------------- location

#[test]
fn parses_sqlite_urls() {
    assert_eq!(
        StoreLocation::parse("sqlite:///var/lib/farewatch/fw.db").unwrap(),
        StoreLocation::Sqlite(PathBuf::from("/var/lib/farewatch/fw.db"))
    );
    assert_eq!(
        StoreLocation::parse("sqlite:/tmp/fw.db").unwrap(),
        StoreLocation::Sqlite(PathBuf::from("/tmp/fw.db"))
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        StoreLocation::parse("sqlite://data/fw.db").unwrap(),
        StoreLocation::Sqlite(cwd.join("data/fw.db"))
    );
    assert_eq!(
        StoreLocation::parse("sqlite:fw.db").unwrap(),
        StoreLocation::Sqlite(cwd.join("fw.db"))
    );
    assert_eq!(
        StoreLocation::parse("sqlite::memory:").unwrap(),
        StoreLocation::Memory
    );
}

#[test]
fn parses_postgres_urls_and_never_shows_the_password() {
    for url in [
        "postgres://fw:s3cret-pw@db.internal:5432/farewatch",
        "postgresql://fw:s3cret-pw@db.internal/farewatch?sslmode=require",
    ] {
        let location = StoreLocation::parse(url).unwrap();
        let StoreLocation::Postgres(pg) = &location else {
            panic!("{url}: {location:?}");
        };
        assert_eq!(pg.expose(), url, "kept whole for connecting");
        for shown in [location.to_string(), format!("{location:?}")] {
            assert!(!shown.contains("s3cret-pw"), "password leaked: {shown}");
            assert!(shown.contains("db.internal"), "{shown}");
        }
    }
}

#[test]
fn rejects_other_urls_saying_what_is_supported() {
    let err = StoreLocation::parse("mysql://fw:s3cret-pw@db.internal:3306/farewatch").unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unknown scheme"), "{msg}");
    assert!(msg.contains("sqlite://PATH"), "{msg}");
    assert!(msg.contains("sqlite::memory:"), "{msg}");
    assert!(msg.contains("postgres://USER"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "password leaked: {msg}");
    assert!(!format!("{err:?}").contains("s3cret-pw"));

    for bad in [
        "/just/a/path.db",
        "sqlite://",
        "sqlite:fw.db?mode=rwc",
        "postgres:farewatch",
        "postgres://",
        "postgres:///farewatch",
    ] {
        let err = StoreLocation::parse(bad).unwrap_err();
        assert!(err.to_string().contains("sqlite://PATH"), "{bad}: {err}");
    }
}

/// A PostgreSQL server that does not answer is a clear error naming the
/// server (never the password) and what to check, not a hang.
#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let port = common::redis_server::free_port();
    let url = format!("postgres://fw:s3cret-pw@127.0.0.1:{port}/farewatch");
    let err = Store::open(&StoreLocation::parse(&url).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("DATABASE_URL"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "password leaked: {msg}");
}

#[test]
fn default_path_is_under_the_data_dir() {
    match StoreLocation::default_path() {
        Ok(StoreLocation::Sqlite(path)) => {
            assert!(
                path.ends_with("farewatch/farewatch.db"),
                "{}",
                path.display()
            );
            assert_eq!(
                path.parent().unwrap().parent().unwrap(),
                dirs::data_dir().unwrap()
            );
        }
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => {
            assert!(dirs::data_dir().is_none(), "data dir exists but: {e}");
            assert!(e.to_string().contains("DATABASE_URL"));
        }
    }
}

// ---------------------------------------------------------------- opening

#[tokio::test]
async fn creates_parent_dirs_and_a_private_file() {
    let dir = TempDir::new().unwrap();
    let (store, location) = file_store(&dir).await;
    store
        .save_token(
            "k",
            "secret",
            Timestamp::now() + SignedDuration::from_mins(5),
        )
        .await;
    let path = db_path(&location);
    assert!(path.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The WAL holds fresh writes (tokens included) until a checkpoint.
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} mode is {mode:o}", file.display());
        }
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "created directory mode is {dir_mode:o}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn tightens_an_existing_world_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("fw.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    Store::open(&StoreLocation::Sqlite(path.clone()))
        .await
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn sets_wal_and_schema_version_and_migrations_are_idempotent() {
    let dir = TempDir::new().unwrap();
    let (store, location) = file_store(&dir).await;
    drop(store);
    // A second open of the migrated file changes nothing and keeps data.
    let again = Store::open(&location).await.unwrap();
    drop(again);

    let raw = rusqlite::Connection::open(db_path(&location)).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|t| !t.starts_with("sqlite_autoindex"));
    assert_eq!(
        tables,
        [
            "airport_flights",
            "airport_flights_arrival",
            "airport_flights_departure",
            "alert_state",
            "api_tokens",
            "api_tokens_user",
            "api_watches",
            "api_watches_user",
            "fleet_due",
            "fleet_due_next",
            "fleet_leases",
            "fleet_nodes",
            "fleet_sheet",
            "idempotency_keys",
            "idempotency_keys_created",
            "interests",
            "kv",
            "outbox",
            "outbox_status",
            "price_history",
            "price_history_search",
            "search_chunks",
            "search_chunks_claim",
            "search_jobs",
            "search_jobs_owner",
            "search_results",
            "search_results_price",
            // AUTOINCREMENT's bookkeeping (users, api_watches).
            "sqlite_sequence",
            "suppressed",
            "users",
        ]
    );
}

on_both_backends! {
    async fn reopening_keeps_data(db: TestDb) {
        let store = db.open().await;
        assert_eq!(store.found_version(), 0, "a new database");
        let state = alerted(289_00, "EUR", ts(1_800_000_000, 0), 1);
        store.save_state("r1", &state).await.unwrap();
        drop(store);
        let store = db.open().await;
        assert_eq!(store.found_version(), SCHEMA_VERSION, "nothing to migrate");
        assert_eq!(store.load_states().await.unwrap()["r1"], state);
    }
}

on_both_backends! {
    async fn refuses_a_database_from_a_newer_farewatch(db: TestDb) {
        drop(db.open().await);
        raw_execute(&db, "PRAGMA user_version = 99", "UPDATE farewatch_schema SET version = 99").await;
        let err = Store::open(db.location()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&db.location().to_string()), "{err}");
    }
}

/// Runs one statement on the test database outside the store, as an
/// operator (or an older farewatch) would: `sqlite` or `postgres` by backend.
async fn raw_execute(db: &TestDb, sqlite: &str, postgres: &'static str) {
    match db.backend {
        Backend::Sqlite => {
            let raw = rusqlite::Connection::open(db_path(db.location())).unwrap();
            raw.execute_batch(sqlite).unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut raw = sqlx::PgConnection::connect(db.url()).await.unwrap();
            sqlx::raw_sql(postgres).execute(&mut raw).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_parent_that_is_a_file_fails_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"plain file").unwrap();
    let path = blocker.join("farewatch.db");
    let err = Store::open(&StoreLocation::Sqlite(path.clone()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a directory"), "{msg}");
    assert!(msg.contains("DATABASE_URL=sqlite://PATH"), "{msg}");
}

#[tokio::test]
async fn an_unopenable_file_fails_naming_the_path() {
    let dir = TempDir::new().unwrap();
    // A directory where the database file should be.
    let path = dir.path().join("fw.db");
    std::fs::create_dir(&path).unwrap();
    let err = Store::open(&StoreLocation::Sqlite(path.clone()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("state database {}", path.display())),
        "{msg}"
    );
    assert!(msg.contains("DATABASE_URL=sqlite://PATH"), "{msg}");
}

// ---------------------------------------------------------------- alert state

on_both_backends! {
    async fn state_round_trips_exactly(db: TestDb) {
        let store = db.open().await;
        assert!(store.load_states().await.unwrap().is_empty());

        let kwd = alerted(123_456, "KWD", ts(1_800_000_000, 123_456_000), 7);
        let jpy = alerted(-5, "JPY", ts(-1, 999_999_000), 1);
        // Re-armed: no price, but the last alert time is kept for the cooldown.
        let rearmed = AlertState {
            last_alerted: None,
            last_alerted_at: Some(ts(1_800_003_600, 1_000)),
            alerts_sent: u64::try_from(i64::MAX).unwrap(),
        };
        let fresh = AlertState::default();
        for (id, state) in [
            ("kwd", &kwd),
            ("jpy", &jpy),
            ("rearmed", &rearmed),
            ("fresh", &fresh),
        ] {
            store.save_state(id, state).await.unwrap();
        }
        let states = store.load_states().await.unwrap();
        assert_eq!(states.len(), 4);
        assert_eq!(states["kwd"], kwd);
        assert_eq!(
            states["kwd"].last_alerted.unwrap().currency.exponent(),
            3,
            "currency survives"
        );
        assert_eq!(states["jpy"], jpy);
        assert_eq!(states["rearmed"], rearmed);
        assert_eq!(states["fresh"], fresh);
        // A cycle's own routes only (a fleet batch): unknown ids have none.
        let ids = ["jpy", "rearmed", "never-alerted"].map(String::from);
        let some = store.load_states_of(&ids).await.unwrap();
        assert_eq!(some.len(), 2);
        assert_eq!((&some["jpy"], &some["rearmed"]), (&jpy, &rearmed));
        assert!(store.load_states_of(&[]).await.unwrap().is_empty());

        // Saving again overwrites.
        store.save_state("kwd", &fresh).await.unwrap();
        assert_eq!(store.load_states().await.unwrap()["kwd"], fresh);
    }
}

on_both_backends! {
    async fn a_count_beyond_sqlite_integers_is_an_error_not_a_wrap(db: TestDb) {
        let store = db.open().await;
        let state = AlertState {
            alerts_sent: u64::MAX,
            ..AlertState::default()
        };
        let err = store.save_state("r", &state).await.unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
        assert!(store.load_states().await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------- outbox

on_both_backends! {
    async fn intent_lifecycle_new_pending_sent(db: TestDb) {
        let store = db.open().await;
        let i = intent("r1:1:+447700900123", "r1", 1);
        assert_eq!(
            store.open_intent(&i, &RUN).await.unwrap(),
            IntentStatus::New
        );
        assert_eq!(
            store.open_intent(&i, &RUN).await.unwrap(),
            IntentStatus::Pending {
                body: i.body.clone(),
                created_at: i.created_at,
            }
        );
        store
            .record_sent(&i.key, "SM0123456789abcdef", None)
            .await
            .unwrap();
        assert_eq!(
            store.open_intent(&i, &RUN).await.unwrap(),
            IntentStatus::Sent {
                message_id: "SM0123456789abcdef".to_owned()
            }
        );
        // A second intent with the same key does not overwrite the first.
        let mut changed = i.clone();
        changed.body = "different text".to_owned();
        assert!(matches!(
            store.open_intent(&changed, &RUN).await.unwrap(),
            IntentStatus::Sent { .. }
        ));
        let log = store.sent_log(10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].body, i.body);
        // Without `completes`, no state is written.
        assert!(store.load_states().await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn record_sent_saves_state_in_the_same_transaction(db: TestDb) {
        let store = db.open().await;
        let i = intent("r1:1:+447700900123", "r1", 1);
        let before = whole_micros(Timestamp::now());
        store.open_intent(&i, &RUN).await.unwrap();
        let state = alerted(289_00, "EUR", ts(1_800_000_000, 42_000), 1);
        store
            .record_sent(&i.key, "SMabc", Some(("r1", &state)))
            .await
            .unwrap();
        drop(store);

        // From disk, through a fresh store...
        let store = db.open().await;
        assert_eq!(store.load_states().await.unwrap()["r1"], state);
        let log = store.sent_log(10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].key, i.key);
        assert_eq!(log[0].route_id, "r1");
        assert_eq!(log[0].recipient, i.recipient);
        assert_eq!(log[0].body, i.body);
        assert_eq!(log[0].message_id, "SMabc");
        assert!(log[0].sent_at >= before && log[0].sent_at <= Timestamp::now());
        drop(store);

        // ...and raw, to see what is actually in the database.
        let (outbox, state) = match db.backend {
            Backend::Sqlite => {
                let raw = rusqlite::Connection::open(db_path(db.location())).unwrap();
                let outbox: (String, String, Option<String>) = raw
                    .query_row(
                        "SELECT status, message_id, error FROM outbox WHERE key = ?1",
                        [&i.key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                let state: (i64, String, i64) = raw
                    .query_row(
                        "SELECT last_alerted_minor, last_alerted_currency, alerts_sent
                         FROM alert_state WHERE route_id = 'r1'",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                (outbox, state)
            }
            Backend::Postgres => {
                use sqlx::{Connection, Row};
                let mut raw = sqlx::PgConnection::connect(db.url()).await.unwrap();
                let row = sqlx::query("SELECT status, message_id, error FROM outbox WHERE key = $1")
                    .bind(&i.key)
                    .fetch_one(&mut raw)
                    .await
                    .unwrap();
                let outbox = (row.get(0), row.get(1), row.get(2));
                let row = sqlx::query(
                    "SELECT last_alerted_minor, last_alerted_currency, alerts_sent
                     FROM alert_state WHERE route_id = 'r1'",
                )
                .fetch_one(&mut raw)
                .await
                .unwrap();
                (outbox, (row.get(0), row.get(1), row.get(2)))
            }
        };
        assert_eq!(
            (outbox.0.as_str(), outbox.1.as_str(), outbox.2),
            ("sent", "SMabc", None)
        );
        assert_eq!((state.0, state.1.as_str(), state.2), (289_00, "EUR", 1));
    }
}

on_both_backends! {
    async fn recording_an_unknown_intent_fails_and_saves_no_state(db: TestDb) {
        let store = db.open().await;
        let state = alerted(289_00, "EUR", ts(1_800_000_000, 0), 1);
        let err = store
            .record_sent("never-opened", "SM1", Some(("r1", &state)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownIntent { .. }), "{err:?}");
        assert!(err.to_string().contains("never-opened"));
        let err = store
            .record_failed("never-opened", "nope", Some(("r1", &state)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownIntent { .. }), "{err:?}");
        assert!(
            store.load_states().await.unwrap().is_empty(),
            "the state must roll back with the outbox update"
        );
    }
}

on_both_backends! {
    async fn record_failed_marks_failed_and_can_complete_the_state(db: TestDb) {
        let store = db.open().await;
        let i = intent("r2:3:+447700900123", "r2", 3);
        store.open_intent(&i, &RUN).await.unwrap();
        let state = alerted(150_00, "EUR", ts(1_800_000_000, 0), 3);
        store
            .record_failed(
                &i.key,
                "21610: recipient unsubscribed",
                Some(("r2", &state)),
            )
            .await
            .unwrap();
        assert_eq!(
            store.open_intent(&i, &RUN).await.unwrap(),
            IntentStatus::Failed {
                error: "21610: recipient unsubscribed".to_owned()
            }
        );
        assert_eq!(store.load_states().await.unwrap()["r2"], state);
        assert!(store.sent_log(10).await.unwrap().is_empty());
        assert!(store.pending_intents().await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn pending_intents_lists_only_unfinished_ones_oldest_first(db: TestDb) {
        let store = db.open().await;
        let mut late = intent("late", "r1", 2);
        late.created_at = ts(1_800_000_500, 0);
        let mut early = intent("early", "r2", u64::try_from(i64::MAX).unwrap());
        early.created_at = ts(1_800_000_100, 7_000);
        let sent = intent("sent", "r3", 1);
        let failed = intent("failed", "r4", 1);
        for i in [&late, &early, &sent, &failed] {
            store.open_intent(i, &RUN).await.unwrap();
        }
        store.record_sent("sent", "SM1", None).await.unwrap();
        store
            .record_failed("failed", "bad number", None)
            .await
            .unwrap();
        assert_eq!(store.pending_intents().await.unwrap(), vec![early, late]);
    }
}

on_both_backends! {
    async fn sent_log_is_newest_first_and_limited(db: TestDb) {
        let store = db.open().await;
        // Opened in one order, sent in the reverse: the log follows sending.
        for key in ["a", "b", "c"] {
            store.open_intent(&intent(key, "r", 1), &RUN).await.unwrap();
        }
        for (key, sid) in [("c", "SMc"), ("b", "SMb"), ("a", "SMa")] {
            store.record_sent(key, sid, None).await.unwrap();
        }
        let log = store.sent_log(10).await.unwrap();
        let keys: Vec<&str> = log.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(log[0].sent_at >= log[1].sent_at && log[1].sent_at >= log[2].sent_at);
        assert_eq!(log[0].message_id, "SMa");
        let top: Vec<String> = store
            .sent_log(2)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(top, ["a", "b"]);
        assert!(store.sent_log(0).await.unwrap().is_empty());
    }
}

on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_open_intent_yields_exactly_one_new(db: TestDb) {
        let shared = db.open().await;
        let i = intent("r1:1:+447700900123", "r1", 1);
        let mut tasks = Vec::new();
        for n in 0..20 {
            // Half share one connection; half have their own, as a second
            // farewatch process would.
            let store = if n % 2 == 0 {
                shared.clone()
            } else {
                db.open().await
            };
            let i = i.clone();
            tasks.push(tokio::spawn(
                async move { store.open_intent(&i, &RUN).await },
            ));
        }
        let mut new = 0;
        let mut pending = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                IntentStatus::New => new += 1,
                IntentStatus::Pending { .. } => pending += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((new, pending), (1, 19));
        assert_eq!(shared.pending_intents().await.unwrap(), vec![i]);
    }
}

on_both_backends! {
    /// Group commit: intents arriving together share a transaction (and an
    /// fsync), each is durable when its call returns, and a call that fails
    /// rolls back alone, not its batch-mates.
    async fn intents_arriving_together_are_committed_together(db: TestDb) {
        let store = db.open().await;
        let before = store.commits();
        let n = 500;
        let calls = (0..n).map(|k| {
            let store = store.clone();
            async move {
                let i = intent(&format!("r{k}:1:+447700900123"), &format!("r{k}"), 1);
                store.open_intent(&i, &RUN).await
            }
        });
        let opened = futures::future::join_all(calls).await;
        assert!(opened.iter().all(|o| matches!(o, Ok(IntentStatus::New))));
        let commits = store.commits() - before;
        println!("{n} intents in {commits} commits");
        assert!(commits <= 50, "{commits} commits for {n} intents");

        // A failing call (an intent that does not exist) among good ones.
        let good = (0..20).map(|k| {
            let store = store.clone();
            async move {
                store
                    .record_sent(&format!("r{k}:1:+447700900123"), &format!("SM{k}"), None)
                    .await
            }
        });
        let (good, bad) = tokio::join!(
            futures::future::join_all(good),
            store.record_sent("no-such-intent", "SMX", None)
        );
        assert!(good.iter().all(Result::is_ok));
        assert!(
            matches!(bad, Err(StoreError::UnknownIntent { .. })),
            "{bad:?}"
        );

        // Durable: a second connection (another process) sees all of it.
        let other = db.open().await;
        let pending = other.pending_intents().await.unwrap();
        assert_eq!(pending.len(), n - 20);
        assert_eq!(other.sent_log(100).await.unwrap().len(), 20);
    }
}

// ---------------------------------------------------------------- tokens

on_both_backends! {
    async fn tokens_are_saved_loaded_and_expire(db: TestDb) {
        let store = db.open().await;
        let secret = "eyJhbGciOi-very-secret-access-token";
        let expires = whole_micros(Timestamp::now() + SignedDuration::from_mins(30));
        assert_eq!(store.load_token("amadeus:test").await, None);
        store.save_token("amadeus:test", secret, expires).await;
        assert_eq!(
            store.load_token("amadeus:test").await,
            Some((secret.to_owned(), expires))
        );

        // Survives a restart (cron runs reuse the token).
        drop(store);
        let store = db.open().await;
        assert_eq!(
            store.load_token("amadeus:test").await,
            Some((secret.to_owned(), expires))
        );

        // Overwritten by a newer token.
        let newer = whole_micros(Timestamp::now() + SignedDuration::from_mins(29));
        store
            .save_token("amadeus:test", "second-token", newer)
            .await;
        assert_eq!(
            store.load_token("amadeus:test").await,
            Some(("second-token".to_owned(), newer))
        );

        // An expired token is ignored.
        let past = Timestamp::now() - SignedDuration::from_secs(1);
        store.save_token("amadeus:old", "stale-token", past).await;
        assert_eq!(store.load_token("amadeus:old").await, None);

        // The value never shows in Debug.
        let debug = format!("{store:?}");
        assert!(
            !debug.contains(secret) && !debug.contains("second-token"),
            "{debug}"
        );
        assert!(debug.contains("Store { location: "), "{debug}");
    }
}

#[tokio::test]
async fn tokens_through_the_trait_object() {
    use std::sync::Arc;
    let store: Arc<dyn TokenCache> = Arc::new(Store::memory().unwrap());
    let expires = Timestamp::now() + SignedDuration::from_mins(5);
    store.save_token("k", "v", expires).await;
    assert_eq!(store.load_token("k").await, Some(("v".to_owned(), expires)));
}

#[test]
fn debug_shows_only_the_location() {
    let store = Store::memory().unwrap();
    assert_eq!(format!("{store:?}"), "Store { location: Memory, .. }");
}

// ---------------------------------------------------------------- existing users' files

/// What `make_store_fixture` writes and `a_v2_state_file_opens_and_migrates_in_place` expects.
mod fixture {
    use super::*;

    /// Alert 1 sent to its one recipient; the state saved with it.
    pub const SENT_ROUTE: &str = "LHR>JFK:2027-03-01:a1:GBP:+447700900101";
    /// Alert 3 reached the first recipient; the second is unconfirmed (pending).
    pub const PENDING_ROUTE: &str =
        "MAN>JFK:2027-03-01..2027-03-07:a1:EUR:+447700900102|+447700900103";
    /// Alert 1 refused for good (an invalid number); the state saved with it.
    pub const FAILED_ROUTE: &str = "BHX>MCO:2027-04-10:ret 2027-04-20:a2:GBP:+447700900104";
    /// The recipient replied STOP (Twilio 21610).
    pub const STOP_ROUTE: &str = "EDI>JFK:2027-05-01:a1:GBP:+447700900105";
    pub const STOP_RECIPIENT: &str = "+447700900105";
    /// `Amadeus::new`'s key: `amadeus:<client id>:<base url>`.
    pub const TOKEN_KEY: &str = "amadeus:fixture-client-id:https://test.api.amadeus.com";
    pub const TOKEN: &str = "fixture-access-token-AbC123xYz";
    pub const BUDGET_KEY: &str = "budget:amadeus";
    pub const BUDGET: &str = "2026-12-04 42";

    pub fn token_expiry() -> Timestamp {
        "2099-01-01T00:00:00Z".parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn gbp(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("GBP").unwrap())
    }

    pub fn states() -> std::collections::HashMap<String, AlertState> {
        std::collections::HashMap::from([
            (
                SENT_ROUTE.to_owned(),
                AlertState {
                    last_alerted: Some(gbp(289_00)),
                    last_alerted_at: Some(at("2026-11-30T07:30:00.123456789Z")),
                    alerts_sent: 1,
                },
            ),
            (
                // Re-armed after two alerts; its third is under way.
                PENDING_ROUTE.to_owned(),
                AlertState {
                    last_alerted: None,
                    last_alerted_at: Some(at("2026-11-20T06:00:00Z")),
                    alerts_sent: 2,
                },
            ),
            (
                FAILED_ROUTE.to_owned(),
                AlertState {
                    last_alerted: Some(gbp(512_40)),
                    last_alerted_at: Some(at("2026-12-01T08:15:00Z")),
                    alerts_sent: 1,
                },
            ),
            (
                STOP_ROUTE.to_owned(),
                AlertState {
                    last_alerted: Some(gbp(199_99)),
                    last_alerted_at: Some(at("2026-12-02T09:00:00Z")),
                    alerts_sent: 1,
                },
            ),
        ])
    }

    fn one(route_id: &str, seq: u64, recipient: &str, body: &str, created_at: &str) -> Intent {
        Intent {
            key: format!("{route_id}#{seq}#{recipient}"),
            route_id: route_id.to_owned(),
            seq,
            recipient: recipient.to_owned(),
            channel: "twilio".to_owned(),
            body: body.to_owned(),
            created_at: at(created_at),
        }
    }

    /// Sent: (intent, message id), oldest first.
    pub fn sent() -> Vec<(Intent, &'static str)> {
        vec![
            (
                one(
                    SENT_ROUTE,
                    1,
                    "+447700900101",
                    "farewatch: LHR-JFK 2027-03-01 fell to GBP 289.00 (max GBP 350.00)",
                    "2026-11-30T07:29:58.000000001Z",
                ),
                "SM00000000000000000000000000000001",
            ),
            (
                one(
                    PENDING_ROUTE,
                    3,
                    "+447700900102",
                    "farewatch: MAN-JFK 2027-03-04 fell to EUR 301.50 (max EUR 320.00)",
                    "2026-12-03T21:00:00.500000000Z",
                ),
                "SM00000000000000000000000000000002",
            ),
        ]
    }

    /// The unconfirmed send: its body and creation time must survive exactly.
    pub fn pending() -> Intent {
        one(
            PENDING_ROUTE,
            3,
            "+447700900103",
            "farewatch: MAN-JFK 2027-03-04 fell to EUR 301.50 (max EUR 320.00)",
            "2026-12-03T21:00:00.987654321Z",
        )
    }

    /// Refused for good: (intent, error).
    pub fn failed() -> Vec<(Intent, &'static str)> {
        vec![
            (
                one(
                    FAILED_ROUTE,
                    1,
                    "+447700900104",
                    "farewatch: BHX-MCO 2027-04-10 / 2027-04-20 fell to GBP 512.40 (max GBP 600.00)",
                    "2026-12-01T08:14:59Z",
                ),
                "twilio: +447700900104: Twilio refused the message (21211): Invalid 'To' Phone Number",
            ),
            (
                one(
                    STOP_ROUTE,
                    1,
                    STOP_RECIPIENT,
                    "farewatch: EDI-JFK 2027-05-01 fell to GBP 199.99 (max GBP 250.00)",
                    "2026-12-02T08:59:59Z",
                ),
                "twilio: +447700900105: Twilio refused the message (21610): Attempt to send to unsubscribed recipient",
            ),
        ]
    }
}

fn fixture_path(version: i64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store")
        .join(format!("farewatch-v{version}.db"))
}

/// Writes `tests/fixtures/store/farewatch-v<SCHEMA_VERSION>.db` through the
/// store's own API: the file an existing user has. Run it on purpose:
///
/// ```text
/// cargo test --test store -- --ignored make_store_fixture
/// ```
///
/// `farewatch-v2.db` was made by this generator at schema version 2 (the
/// commit that added it). A later build writes a file of its own version
/// next to it, never over an older one. The file is then vacuumed with
/// 1 KiB pages (the store uses SQLite's default 4 KiB) so it stays a few KB;
/// page size does not change what the schema or the migrations see.
#[tokio::test]
#[ignore = "writes a committed fixture; run on purpose"]
async fn make_store_fixture() {
    let path = fixture_path(SCHEMA_VERSION);
    assert!(!path.exists(), "{} exists; remove it first", path.display());
    let store = Store::open(&StoreLocation::Sqlite(path.clone()))
        .await
        .unwrap();
    let states = fixture::states();
    // The pending route's earlier state was saved before its third alert began.
    store
        .save_state(fixture::PENDING_ROUTE, &states[fixture::PENDING_ROUTE])
        .await
        .unwrap();
    for (intent, message_id) in fixture::sent() {
        assert_eq!(
            store.open_intent(&intent, &RUN).await.unwrap(),
            IntentStatus::New
        );
        // The pending route's alert is not complete: its state is not saved with it.
        let completes = (intent.route_id != fixture::PENDING_ROUTE)
            .then(|| (intent.route_id.as_str(), &states[&intent.route_id]));
        store
            .record_sent(&intent.key, message_id, completes)
            .await
            .unwrap();
    }
    let pending = fixture::pending();
    assert_eq!(
        store.open_intent(&pending, &RUN).await.unwrap(),
        IntentStatus::New
    );
    for (intent, error) in fixture::failed() {
        store.open_intent(&intent, &RUN).await.unwrap();
        if intent.route_id == fixture::STOP_ROUTE {
            store
                .suppress(&intent.route_id, &intent.recipient, error)
                .await
                .unwrap();
        }
        store
            .record_failed(
                &intent.key,
                error,
                Some((&intent.route_id, &states[&intent.route_id])),
            )
            .await
            .unwrap();
    }
    store
        .save_token(fixture::TOKEN_KEY, fixture::TOKEN, fixture::token_expiry())
        .await;
    store
        .kv_put(fixture::BUDGET_KEY, fixture::BUDGET, None)
        .await
        .unwrap();
    drop(store);

    // Smaller pages, then back to WAL as the store left it.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "journal_mode", "DELETE").unwrap();
    raw.pragma_update(None, "page_size", 1024).unwrap();
    raw.execute_batch("VACUUM").unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(raw);
    assert!(!path.with_extension("db-wal").exists());
}

/// An existing user's state file (schema version 2, made by
/// `make_store_fixture`) opens with this build and migrates in place, and
/// everything in it survives. The committed file is never touched: a copy is.
#[tokio::test]
async fn a_v2_state_file_opens_and_migrates_in_place() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("farewatch.db");
    std::fs::copy(fixture_path(2), &path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let before: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(before, 2, "the fixture is a version 2 file");
    drop(raw);

    let store = Store::open(&StoreLocation::Sqlite(path.clone()))
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let after: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(after, SCHEMA_VERSION, "migrated in place");
    assert_eq!(after, 9, "version 9: a route's alerts found by key range");
    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).unwrap() };
    // What version 9 counts on (close_alert finds an alert's rows by the
    // key's prefix): old rows' keys start with `{route_id}#{seq}#` too.
    let prefix = "route_id || '#' || seq || '#'";
    let off_format =
        format!("SELECT COUNT(*) FROM outbox WHERE substr(key, 1, length({prefix})) != {prefix}");
    assert_eq!(count(&off_format), 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'outbox_route_seq'"),
        0
    );
    // Rows from before claims have none: any run may take them over.
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NULL AND claimed_at IS NULL"),
        5
    );
    drop(raw);

    assert_eq!(store.load_states().await.unwrap(), fixture::states());
    // The accounts tables (version 4) are there, empty.
    assert!(store.list_users(0, 10).await.unwrap().is_empty());
    assert!(store.interest_airports().await.unwrap().is_empty());
    // The price history (version 5) is there, empty.
    assert!(store
        .price_history("LHR:JFK:2027-03-01:ow:1:EUR", Timestamp::MIN)
        .await
        .unwrap()
        .is_empty());
    // The search jobs (version 6) are there, empty.
    assert!(store.jobs(None, 10).await.unwrap().is_empty());

    // The unconfirmed send is still pending, with its exact body and time.
    let pending = fixture::pending();
    assert_eq!(
        store.pending_intents().await.unwrap(),
        vec![pending.clone()]
    );
    assert_eq!(
        store.unfinished_alerts().await.unwrap(),
        std::collections::HashMap::from([(fixture::PENDING_ROUTE.to_owned(), 3)])
    );

    // The sent log, newest first, with the provider's ids.
    let log = store.sent_log(10).await.unwrap();
    let expected: Vec<(String, String, String, String)> = fixture::sent()
        .into_iter()
        .rev()
        .map(|(i, id)| (i.key, i.recipient, i.body, id.to_owned()))
        .collect();
    let got: Vec<(String, String, String, String)> = log
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                r.recipient.clone(),
                r.body.clone(),
                r.message_id.clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let made: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    assert!(log.iter().all(|r| r.sent_at > made), "{log:?}");

    // The STOP and the cached OAuth token (and a saved budget).
    assert!(store.suppressed().await.unwrap().contains(&(
        fixture::STOP_ROUTE.to_owned(),
        fixture::STOP_RECIPIENT.to_owned()
    )));
    assert_eq!(
        store.load_token(fixture::TOKEN_KEY).await,
        Some((fixture::TOKEN.to_owned(), fixture::token_expiry()))
    );
    assert_eq!(
        store.kv_get(fixture::BUDGET_KEY).await.unwrap().as_deref(),
        Some(fixture::BUDGET)
    );

    // A run settles the unclaimed pending intent (taking it over), and
    // re-opening the intents gives what the engine acts on.
    assert_eq!(
        store.claim_pending(&RUN).await.unwrap(),
        vec![pending.clone()]
    );
    assert_eq!(
        store.open_intent(&pending, &RUN).await.unwrap(),
        IntentStatus::Pending {
            body: pending.body.clone(),
            created_at: pending.created_at,
        }
    );
    for (intent, message_id) in fixture::sent() {
        assert_eq!(
            store.open_intent(&intent, &RUN).await.unwrap(),
            IntentStatus::Sent {
                message_id: message_id.to_owned()
            }
        );
    }
    for (intent, error) in fixture::failed() {
        assert_eq!(
            store.open_intent(&intent, &RUN).await.unwrap(),
            IntentStatus::Failed {
                error: error.to_owned()
            }
        );
    }
}

// ---------------------------------------------------------------- claims (overlapping runs)

on_both_backends! {
    /// Two runs on one file: a pending intent belongs to the run that wrote it
    /// while that run lives; the other neither gets it back as its own nor
    /// reconciles it. Once the owner is gone it is taken over, by one run only.
    async fn a_pending_intent_is_the_writing_runs_until_that_run_is_gone(db: TestDb) {
        let a_store = db.open().await;
        let b_store = db.open().await;
        let (a, b) = (RunId::new(), RunId::new());
        let i = intent("r1#1#+447700900123", "r1", 1);

        assert_eq!(
            a_store.open_intent(&i, &a).await.unwrap(),
            IntentStatus::New
        );
        assert_eq!(
            b_store.open_intent(&i, &b).await.unwrap(),
            IntentStatus::ClaimedElsewhere { by: a.to_string() }
        );
        assert!(b_store.claim_pending(&b).await.unwrap().is_empty());
        assert_eq!(a_store.claim_pending(&a).await.unwrap(), vec![i.clone()]);
        assert!(matches!(
            a_store.open_intent(&i, &a).await.unwrap(),
            IntentStatus::Pending { .. }
        ));

        // A ends (a crash, for another process) with the intent still pending.
        let a_name = a.to_string();
        drop(a);
        let c = RunId::new();
        assert_eq!(b_store.claim_pending(&b).await.unwrap(), vec![i.clone()]);
        assert_eq!(
            a_store.open_intent(&i, &c).await.unwrap(),
            IntentStatus::ClaimedElsewhere { by: b.to_string() },
            "taken over by B alone"
        );

        // Sent by B: B's own, C's "sent elsewhere".
        b_store.record_sent(&i.key, "SM1", None).await.unwrap();
        assert_eq!(
            b_store.open_intent(&i, &b).await.unwrap(),
            IntentStatus::Sent {
                message_id: "SM1".to_owned()
            }
        );
        assert_eq!(
            a_store.open_intent(&i, &c).await.unwrap(),
            IntentStatus::SentElsewhere {
                message_id: "SM1".to_owned(),
                by: b.to_string()
            }
        );
        assert_ne!(a_name, b.to_string());
    }
}

on_both_backends! {
    /// A drop that ended does not close an alert another live run is sending;
    /// once that run is gone, it does.
    async fn an_alert_another_live_run_is_sending_is_not_closed_under_it(db: TestDb) {
        let store = db.open().await;
        let other = db.open().await;
        let (a, b) = (RunId::new(), RunId::new());
        let i = intent("r1#3#+447700900123", "r1", 3);
        assert_eq!(store.open_intent(&i, &a).await.unwrap(), IntentStatus::New);
        let closed = AlertState {
            last_alerted: None,
            last_alerted_at: None,
            alerts_sent: 3,
        };
        let reason = "the price rose above the maximum";
        assert_eq!(
            other
                .close_alert("r1", 3, reason, &closed, &b)
                .await
                .unwrap(),
            None
        );
        assert_eq!(other.pending_intents().await.unwrap(), vec![i.clone()]);
        assert!(
            other.load_states().await.unwrap().is_empty(),
            "no state saved"
        );

        drop(a);
        assert_eq!(
            other
                .close_alert("r1", 3, reason, &closed, &b)
                .await
                .unwrap(),
            Some(0)
        );
        assert!(other.pending_intents().await.unwrap().is_empty());
        assert_eq!(other.load_states().await.unwrap()["r1"], closed);
    }
}

// ---------------------------------------------------------------- one schema, two dialects

/// Both backends' migrations produce the same tables with the same columns
/// (PostgreSQL's outbox has one more, `id`, where SQLite has `rowid`; SQLite
/// has its own `sqlite_sequence`, where PostgreSQL has identity columns).
#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_and_columns() {
    use sqlx::{Connection, Row};
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let postgres = TestDb::new(Backend::Postgres).await;
    drop(sqlite.open().await);
    drop(postgres.open().await);

    let raw = rusqlite::Connection::open(db_path(sqlite.location())).unwrap();
    let mut in_sqlite: Vec<(String, String)> = raw
        .prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY 1, 2",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    in_sqlite.sort();

    let mut pg = sqlx::PgConnection::connect(postgres.url()).await.unwrap();
    let mut in_postgres: Vec<(String, String)> = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> 'farewatch_schema'
         ORDER BY 1, 2",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .filter(|(table, column): &(String, String)| !(table == "outbox" && column == "id"))
    .collect();
    in_postgres.sort();
    assert!(!in_sqlite.is_empty());
    assert_eq!(in_sqlite, in_postgres);

    let version: i64 = sqlx::query_scalar("SELECT version FROM farewatch_schema")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
