//! Durable state: per-route alert state, the alert outbox (intents and sent
//! records with the provider's message id), and a small key-value table for
//! cached OAuth tokens. Embedded SQLite (rusqlite, bundled).
//!
//! # Location
//! `DATABASE_URL` picks the database ([`StoreLocation::parse`]):
//! `sqlite://PATH` or `sqlite:PATH` (a relative path is relative to the
//! working directory; `sqlite:///abs/path` is `/abs/path`), or
//! `sqlite::memory:` for a private in-memory database. Without it the file is
//! `<data dir>/farewatch/farewatch.db` ([`StoreLocation::default_path`]).
//!
//! # Connection settings
//! - `journal_mode = WAL`, so readers (`farewatch status`) never block a run;
//! - `synchronous = FULL`: every commit is on disk before it returns, because
//!   an SMS that was sent must never be forgotten after a power cut;
//! - `busy_timeout = 5 s`, so two processes (cron overlap) wait instead of failing;
//! - `foreign_keys = ON`;
//! - on unix the file is created with mode `0600` (it holds OAuth tokens),
//!   and directories farewatch creates get `0700`.
//!
//! # Schema (version 3, tracked in `PRAGMA user_version`)
//! Timestamps are RFC 3339 text in UTC with exactly nine fractional digits
//! (`2027-03-01T07:30:00.000000000Z`): readable in the `sqlite3` shell,
//! exact to the nanosecond, and ordered correctly by plain text comparison.
//!
//! `alert_state`: one row per route that has ever been saved.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `route_id` | TEXT PK | the route's id |
//! | `last_alerted_minor` | INTEGER NULL | price of the last alert in minor units; NULL = armed |
//! | `last_alerted_currency` | TEXT NULL | its ISO 4217 code; NULL exactly when the price is NULL |
//! | `last_alerted_at` | TEXT NULL | when the last alert was sent (kept across re-arming) |
//! | `alerts_sent` | INTEGER | alerts sent for the route so far |
//! | `updated_at` | TEXT | when the row was last written |
//!
//! `outbox`: one row per alert to one recipient, written *before* it is sent.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `key` | TEXT PK | route id, alert number and recipient ([`Intent::key`]) |
//! | `route_id`, `seq`, `recipient`, `channel`, `body` | | as in [`Intent`] |
//! | `status` | TEXT | `pending`, `sent` or `failed` (indexed) |
//! | `message_id` | TEXT NULL | the provider's id once sent |
//! | `error` | TEXT NULL | what the provider said when it failed for good |
//! | `created_at` | TEXT | when the intent was first written |
//! | `updated_at` | TEXT | when the status last changed (the sent time for `sent` rows) |
//! | `claimed_by` | TEXT NULL | (v3) the run that owns the row: wrote it, or took it over ([`RunId`]) |
//! | `claimed_at` | TEXT NULL | (v3) when it claimed it |
//!
//! `suppressed` (v2): recipients who replied STOP, per route (`route_id`,
//! `recipient` PK, `reason`, `created_at`). An index on `outbox (route_id,
//! seq)` finds a route's unfinished alert.
//!
//! `kv`: small values that must survive between runs (OAuth tokens).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `key` | TEXT PK | e.g. `amadeus:token:...` |
//! | `value` | TEXT | the value |
//! | `expires_at` | TEXT NULL | after this the row is ignored (and eventually deleted) |
//!
//! # Migrations
//! `MIGRATIONS[n]` takes a file from version `n` to `n + 1`, all in one
//! transaction at [`Store::open`]; existing users' files migrate in place
//! (`tests/store.rs` opens a committed version 2 file,
//! `tests/fixtures/store/farewatch-v2.db`). Version 3 only adds nullable
//! columns: rows written before it have no claim, which counts as dead.
//!
//! # Concurrency and group commit
//! A [`Store`] is one connection; clones share it. For a file, a writer
//! thread owns the connection and commits every call waiting for it in one
//! transaction, one fsync per batch (at most [`MAX_BATCH`] calls; no timer:
//! a batch is what queued while the previous one committed). Each call runs
//! in its own savepoint, so writes that must agree (an outbox status and the
//! route's alert state) are atomic, and a failed call rolls back alone. A
//! caller is answered only after the commit: an intent is durable before its
//! message is sent. An in-memory database runs calls inline. No call ever
//! takes a thread from tokio's blocking pool. All SQL uses bound parameters.
//!
//! # Overlapping runs
//! Two runs may share one file (a slow cron run and the next tick; two
//! `Store::open`s of one path are two connections, as two processes have).
//! Each outbox row is **claimed** by the run that writes it
//! ([`Store::open_intent`] with that run's [`RunId`]: host, pid, process
//! start time and a run number). A pending row whose claim is *live* (its
//! run is still alive: see [`RunId`] and [`CLAIM_LEASE`]) belongs to
//! that run: another run gets [`IntentStatus::ClaimedElsewhere`], never sends
//! it, and does not reconcile it ([`Store::claim_pending`] skips it). A
//! pending row with no claim or a dead one (the run crashed) is taken over
//! with a compare-and-set on `claimed_by`, so exactly one run wins it. A
//! sent row claimed by another run is [`IntentStatus::SentElsewhere`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::domain::{Currency, Money};
use crate::rules::AlertState;

mod claim;
mod kv;
mod outbox;

pub use claim::{RunId, CLAIM_LEASE};
mod state;

/// Statements kept prepared; more than the store has, so none is evicted.
const STATEMENT_CACHE: usize = 64;

/// How long a statement waits for another process's write lock before
/// failing with "database is locked". Long enough to ride out an overlapping
/// cron run's commit, short enough that a stuck lock is reported.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this build writes; see the module docs.
pub const SCHEMA_VERSION: i64 = 3;

/// Migrations, in order: `MIGRATIONS[n]` takes `user_version` from `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE alert_state (
        route_id              TEXT PRIMARY KEY NOT NULL,
        last_alerted_minor    INTEGER,
        last_alerted_currency TEXT,
        last_alerted_at       TEXT,
        alerts_sent           INTEGER NOT NULL DEFAULT 0 CHECK (alerts_sent >= 0),
        updated_at            TEXT NOT NULL,
        CHECK ((last_alerted_minor IS NULL) = (last_alerted_currency IS NULL))
    );
    CREATE TABLE outbox (
        key        TEXT PRIMARY KEY NOT NULL,
        route_id   TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        recipient  TEXT NOT NULL,
        channel    TEXT NOT NULL,
        body       TEXT NOT NULL,
        status     TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'failed')),
        message_id TEXT,
        error      TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX outbox_status ON outbox (status);
    CREATE TABLE kv (
        key        TEXT PRIMARY KEY NOT NULL,
        value      TEXT NOT NULL,
        expires_at TEXT
    );",
    // v2: recipients who replied STOP, and finding a route's unfinished alert.
    "CREATE TABLE suppressed (
        route_id   TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        reason     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (route_id, recipient)
    );
    CREATE INDEX outbox_route_seq ON outbox (route_id, seq);",
    // v3: which run owns a row, so overlapping runs neither resend nor fail
    // each other's alerts. Existing rows have no claim (dead: taken over).
    "ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_at TEXT;",
];

/// Appended to errors that a different location would fix.
const USE_ANOTHER: &str = "set DATABASE_URL=sqlite://PATH to use another location";

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A private in-memory SQLite database (demo mode, tests).
    Memory,
}

impl StoreLocation {
    /// Parses `DATABASE_URL`: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`.
    ///
    /// `sqlite:///abs/path` is the absolute path `/abs/path`; a relative path
    /// is resolved against the current directory. The path is taken
    /// literally (no percent-decoding, no `?option=` query).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let raw = url.trim();
        let unsupported = |reason: &str| StoreError::UnsupportedUrl {
            url: crate::redact::redact_url(raw),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err(unsupported("it has no scheme"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {}
            "postgres" | "postgresql" => {
                return Err(unsupported("PostgreSQL is not supported yet"));
            }
            _ => return Err(unsupported("unknown scheme")),
        }
        if rest == ":memory:" || rest == "//:memory:" {
            return Ok(Self::Memory);
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(unsupported("it names no file"));
        }
        if path.contains('?') {
            return Err(unsupported(
                "query options (`?...`) are not supported; farewatch sets its own",
            ));
        }
        let path = PathBuf::from(path);
        // Resolve now so messages name the real file even if the directory changes later.
        let path = std::path::absolute(&path).unwrap_or(path);
        Ok(Self::Sqlite(path))
    }

    /// `<data dir>/farewatch/farewatch.db` (e.g. `~/.local/share/farewatch/farewatch.db`).
    pub fn default_path() -> Result<Self, StoreError> {
        let dir = dirs::data_dir().ok_or(StoreError::NoDataDir)?;
        Ok(Self::Sqlite(dir.join("farewatch").join("farewatch.db")))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Memory => f.write_str("sqlite::memory:"),
        }
    }
}

/// A store failure. Messages say which database and what to do.
///
/// The messages may change; match on the variant, not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `DATABASE_URL` is not one farewatch can use (any password is redacted).
    #[error(
        "DATABASE_URL `{url}` is not supported: {reason}; use sqlite://PATH, sqlite:PATH \
         or sqlite::memory:"
    )]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No per-user data directory to put the default database in.
    #[error(
        "cannot find a data directory for the state database (is HOME set?); \
         set DATABASE_URL=sqlite://PATH to choose a location"
    )]
    NoDataDir,
    /// A filesystem step before SQLite could open the file.
    #[error("cannot {action} for state database {db}: {source}; {USE_ANOTHER}")]
    Io {
        /// The database path.
        db: String,
        /// What was being done, e.g. `create directory /x`.
        action: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// SQLite could not open or configure the file.
    #[error("cannot open state database {db}: {source}; {USE_ANOTHER}")]
    Open {
        /// The database path.
        db: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer farewatch.
    #[error(
        "state database {db} has schema version {found}, newer than this farewatch \
         understands ({supported}); upgrade farewatch, or {USE_ANOTHER}"
    )]
    NewerSchema {
        /// The database path.
        db: String,
        /// `PRAGMA user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A schema migration failed (and was rolled back).
    #[error(
        "cannot upgrade state database {db} to schema version {version}: {source}; {USE_ANOTHER}"
    )]
    Migrate {
        /// The database path.
        db: String,
        /// The version being migrated to.
        version: i64,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("state database {db}: cannot {op}: {source}")]
    Query {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// `record_sent` / `record_failed` for a key that was never opened.
    #[error(
        "state database {db}: cannot {op}: no alert intent with key `{key}` \
         (open_intent must come first); nothing was changed"
    )]
    UnknownIntent {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// The intent key.
        key: String,
    },
    /// A stored row cannot be read back (edited by hand, or damaged).
    #[error("state database {db}: cannot {op}: unreadable row: {detail}")]
    Corrupt {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// Which row and value.
        detail: String,
    },
    /// A value does not fit SQLite's 64-bit integers.
    #[error("state database {db}: cannot {op}: {detail}")]
    OutOfRange {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// Which value.
        detail: String,
    },
    /// An earlier call panicked while holding the connection.
    #[error(
        "state database {db}: an earlier database call crashed while holding the \
         connection, so it is no longer trusted; restart farewatch"
    )]
    Poisoned {
        /// The database path.
        db: String,
    },
    /// The call crashed, or the database thread is gone.
    #[error("state database {db}: cannot {op}: {detail}")]
    Task {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// What happened.
        detail: String,
    },
    /// The call's work was done but its batch could not be committed, so
    /// none of it happened.
    #[error("state database {db}: cannot {op}: the transaction could not be committed: {detail}")]
    Commit {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// SQLite's message.
        detail: String,
    },
}

/// One alert to one recipient, persisted before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Unique: route id, alert number (drop) and recipient.
    pub key: String,
    /// The route's [`crate::route::Route::id`].
    pub route_id: String,
    /// The alert number (`AlertState::alerts_sent` after this alert).
    pub seq: u64,
    /// The recipient (E.164 or a channel name).
    pub recipient: String,
    /// Channel name (`"twilio"`, `"console"`).
    pub channel: String,
    /// The exact text sent.
    pub body: String,
    /// When the intent was first written.
    pub created_at: Timestamp,
}

/// Where an intent stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentStatus {
    /// Just written by this call.
    New,
    /// Written earlier and not yet known to be sent, and now this run's
    /// (its own, or taken over from a run that is gone). The outbox row *is*
    /// the message: a resend uses this stored body, not a new one.
    Pending {
        /// The body stored with the intent.
        body: String,
        /// When the intent was first written: every attempt to send it was
        /// made since, so reconciliation looks no further back.
        created_at: Timestamp,
    },
    /// Pending and claimed by another run that is still alive: that run is
    /// sending it. Not to be sent, reconciled or counted failed here.
    ClaimedElsewhere {
        /// The other run ([`RunId`]).
        by: String,
    },
    /// Accepted by the provider (sent by this run, or before claims existed).
    Sent {
        /// The provider's message id.
        message_id: String,
    },
    /// Accepted by the provider, sent by another run.
    SentElsewhere {
        /// The provider's message id.
        message_id: String,
        /// The run that sent it ([`RunId`]).
        by: String,
    },
    /// Refused for good.
    Failed {
        /// What the provider said.
        error: String,
    },
}

/// A row of the sent log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRecord {
    /// The intent key.
    pub key: String,
    /// The route id.
    pub route_id: String,
    /// The recipient.
    pub recipient: String,
    /// The body sent.
    pub body: String,
    /// The provider's message id.
    pub message_id: String,
    /// When it was recorded as sent.
    pub sent_at: Timestamp,
}

/// The durable store. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Store {
    /// The schema version the database had when it was opened.
    found_version: i64,
    /// Where calls run: see [`Store::call`].
    db: Arc<Executor>,
    /// Where it is, for messages.
    location: Arc<StoreLocation>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Why a closure run on the connection failed; turned into a [`StoreError`]
/// with the database and operation by [`Store::call`].
enum Fail {
    Sql(rusqlite::Error),
    UnknownIntent(String),
    Corrupt(String),
    OutOfRange(String),
    Poisoned,
    Panicked,
    Commit(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl Fail {
    fn into_error(self, db: String, op: &'static str) -> StoreError {
        match self {
            Self::Sql(source) => StoreError::Query { db, op, source },
            Self::UnknownIntent(key) => StoreError::UnknownIntent { db, op, key },
            Self::Corrupt(detail) => StoreError::Corrupt { db, op, detail },
            Self::OutOfRange(detail) => StoreError::OutOfRange { db, op, detail },
            Self::Poisoned => StoreError::Poisoned { db },
            Self::Panicked => StoreError::Task {
                db,
                op,
                detail: "it crashed (a bug in farewatch)".into(),
            },
            Self::Commit(detail) => StoreError::Commit { db, op, detail },
        }
    }
}

impl Store {
    /// Opens (creating if needed, with migrations) the store at `location`.
    pub fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let db = location.to_string();
        let mut conn = match location {
            StoreLocation::Memory => {
                Connection::open_in_memory().map_err(|source| StoreError::Open {
                    db: db.clone(),
                    source,
                })?
            }
            StoreLocation::Sqlite(path) => open_file(path, &db)?,
        };
        let open_err = |source| StoreError::Open {
            db: db.clone(),
            source,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Every statement is prepared once per process (`prepare_cached`):
        // a cycle runs the same few dozen again and again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if matches!(location, StoreLocation::Sqlite(_)) {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(open_err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    db = %db,
                    journal_mode = %mode,
                    "state database is not in WAL mode (unsupported filesystem?); \
                     readers may briefly block writers"
                );
            }
            // FULL, not the NORMAL that WAL usually allows: with NORMAL a power
            // cut can lose the last commits, i.e. forget that an SMS was sent
            // and send it again. Alert traffic is tiny, the fsync is cheap.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(open_err)?;
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        let found_version = migrate(&mut conn, &db)?;
        Ok(Self {
            found_version,
            db: Arc::new(Executor::new(conn, location)?),
            location: Arc::new(location.clone()),
        })
    }

    /// Where this store lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The schema version the database had before this process opened (and
    /// migrated) it: 0 for a new database, [`SCHEMA_VERSION`] when nothing
    /// had to change.
    pub fn found_version(&self) -> i64 {
        self.found_version
    }

    /// Transactions committed so far: with group commit, fewer than calls.
    pub fn commits(&self) -> u64 {
        self.db.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on the connection, atomically (in its own savepoint), and
    /// returns once its effect is committed.
    ///
    /// A file database has one writer thread owning the connection: calls
    /// queue on a channel, and the thread takes every call waiting (up to
    /// [`MAX_BATCH`]) into one `BEGIN IMMEDIATE` transaction: one commit and
    /// one fsync for the batch (group commit). There is no timer: a batch is
    /// whatever arrived while the previous one was committing, so a lone call
    /// is committed at once and a burst of 5,000 intents costs about 20
    /// fsyncs, not 5,000. A caller is answered only after the commit, so an
    /// intent is durable before its message is sent. A failed call rolls back
    /// to its savepoint without touching the others in its batch.
    ///
    /// An in-memory database runs calls inline on the calling task (it has
    /// no fsync to share), which also keeps tests on tokio's paused clock
    /// deterministic.
    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |db: &mut Db| {
            let outcome = db.run_in_savepoint(f);
            Box::new(move |committed: Result<(), String>| {
                let result = match (outcome, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(detail)) => Err(Fail::Commit(detail)),
                    (Err(fail), _) => Err(fail),
                };
                // The caller may have gone (a cancelled cycle): nothing to tell.
                let _ = reply.send(result);
            })
        });
        self.db.submit(job);
        match answer.await {
            Ok(result) => result.map_err(|fail| fail.into_error(self.location.to_string(), op)),
            Err(_) => Err(StoreError::Task {
                db: self.location.to_string(),
                op,
                detail: "the database thread stopped".into(),
            }),
        }
    }
}

/// Most calls committed together in one transaction.
pub const MAX_BATCH: usize = 256;

/// One call's work, run inside the batch's transaction; what it returns
/// delivers the call's result once the batch's commit has succeeded or failed.
type Job = Box<dyn FnOnce(&mut Db) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The connection and whether a call ever crashed on it.
struct Db {
    conn: Connection,
    poisoned: bool,
    /// Transactions committed (batches), shared with [`Store::commits`].
    commits: Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    /// Runs `f` inside a savepoint: kept when it succeeds, rolled back when it
    /// fails or panics (a panic also poisons the connection for later calls).
    fn run_in_savepoint<T, F>(&mut self, f: F) -> Result<T, Fail>
    where
        F: FnOnce(&mut Connection) -> Result<T, Fail>,
    {
        if self.poisoned {
            return Err(Fail::Poisoned);
        }
        self.conn.execute_batch("SAVEPOINT call")?;
        let conn = &mut self.conn;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| {
                self.poisoned = true;
                Err(Fail::Panicked)
            });
        let end = if result.is_ok() {
            "RELEASE call"
        } else {
            "ROLLBACK TO call; RELEASE call"
        };
        self.conn.execute_batch(end)?;
        result
    }

    /// Runs `jobs` in one transaction, commits once, then answers each.
    fn run_batch(&mut self, jobs: Vec<Job>) {
        if let Err(error) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            // No shared transaction (another process holds the lock past the
            // busy timeout, say): each call runs on its own, and reports its
            // own outcome.
            tracing::debug!(%error, "cannot begin a batch; running its calls one by one");
            for job in jobs {
                job(self)(Ok(()));
            }
            return;
        }
        let deliveries: Vec<Deliver> = jobs.into_iter().map(|job| job(self)).collect();
        let committed = self.conn.execute_batch("COMMIT").map_err(|error| {
            let _ = self.conn.execute_batch("ROLLBACK");
            error.to_string()
        });
        if committed.is_ok() {
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for deliver in deliveries {
            deliver(committed.clone());
        }
    }
}

/// Where a store's calls run, and how many transactions it committed.
struct Executor {
    run: Runner,
    commits: Arc<std::sync::atomic::AtomicU64>,
}

enum Runner {
    /// In-memory: inline, on the calling task.
    Inline(Mutex<Db>),
    /// A file: the writer thread, fed through a channel.
    Thread(std::sync::mpsc::Sender<Job>),
}

impl Executor {
    fn new(conn: Connection, location: &StoreLocation) -> Result<Self, StoreError> {
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let db = Db {
            conn,
            poisoned: false,
            commits: commits.clone(),
        };
        if matches!(location, StoreLocation::Memory) {
            return Ok(Self {
                run: Runner::Inline(Mutex::new(db)),
                commits,
            });
        }
        let (sender, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("farewatch-store".into())
            .spawn(move || writer(db, queue))
            .map_err(|source| StoreError::Io {
                db: location.to_string(),
                action: "start the database thread".into(),
                source,
            })?;
        Ok(Self {
            run: Runner::Thread(sender),
            commits,
        })
    }

    fn submit(&self, job: Job) {
        match &self.run {
            Runner::Inline(db) => {
                let mut db = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                db.run_batch(vec![job]);
            }
            // Only fails once the thread is gone; the caller then hears so.
            Runner::Thread(sender) => drop(sender.send(job)),
        }
    }
}

/// The writer thread: a batch is the first call waiting plus every call that
/// queued behind it, up to [`MAX_BATCH`]. Ends when the last store clone is
/// dropped.
fn writer(mut db: Db, queue: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        db.run_batch(batch);
    }
}

/// Somewhere to keep an OAuth token between runs (cron runs reuse it).
#[async_trait]
pub trait TokenCache: Send + Sync + 'static {
    /// The token saved under `key`, if it has not expired.
    async fn load_token(&self, key: &str) -> Option<(String, Timestamp)>;
    /// Saves a token until `expires_at`. Failures are logged, not returned.
    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp);
}

#[async_trait]
impl TokenCache for Store {
    async fn load_token(&self, key: &str) -> Option<(String, Timestamp)> {
        match self.try_load_token(key).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(key, %error, "cannot read cached token; a new one will be fetched");
                None
            }
        }
    }

    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp) {
        if let Err(error) = self.try_save_token(key, token, expires_at).await {
            tracing::warn!(key, %error, "cannot cache token; the next run will fetch a new one");
        }
    }
}

/// Creates the parent directory and (on unix) a private file, then opens it.
fn open_file(path: &Path, db: &str) -> Result<Connection, StoreError> {
    let io_err = |action: String| {
        move |source| StoreError::Io {
            db: db.to_owned(),
            action,
            source,
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.exists() && !parent.is_dir() {
            return Err(io_err(format!("use {}", parent.display()))(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it exists and is not a directory",
            )));
        }
        create_dirs(parent).map_err(io_err(format!("create directory {}", parent.display())))?;
    }
    #[cfg(unix)]
    create_private(path).map_err(io_err("create the file".to_owned()))?;

    // No SQLITE_OPEN_URI: the path is a path, even if it starts with `file:`.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        db: db.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    restrict_existing(path);
    Ok(conn)
}

#[cfg(unix)]
fn create_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dirs(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Creates the database file with mode 0600 before SQLite does (SQLite
/// would use the umask, typically 0644). SQLite gives the `-wal` and `-shm`
/// files the same mode as the database.
#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tightens a file made elsewhere (by hand, or an older tool) to 0600.
#[cfg(unix)]
fn restrict_existing(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o077 != 0 {
        if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(
                db = %path.display(),
                %error,
                "state database is readable by other users and its mode cannot be changed; \
                 it holds cached OAuth tokens"
            );
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
/// Returns the version the file had (0 for a new file).
fn migrate(conn: &mut Connection, db: &str) -> Result<i64, StoreError> {
    let open_err = |source| StoreError::Open {
        db: db.to_owned(),
        source,
    };
    // IMMEDIATE so two processes opening a new file at once do not both migrate.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            db: db.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    for (from, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i64::try_from(from).unwrap_or(i64::MAX) + 1;
        let migrate_err = |source| StoreError::Migrate {
            db: db.to_owned(),
            version,
            source,
        };
        tx.execute_batch(sql).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|source| StoreError::Migrate {
        db: db.to_owned(),
        version: SCHEMA_VERSION,
        source,
    })?;
    tracing::info!(
        db,
        from = found,
        to = SCHEMA_VERSION,
        "state database migrated"
    );
    Ok(found)
}

fn upsert_state(
    conn: &Connection,
    route_id: &str,
    state: &AlertState,
    now: Timestamp,
) -> Result<(), Fail> {
    let alerts_sent = to_i64(state.alerts_sent, "alerts_sent")?;
    conn.prepare_cached(
        "INSERT INTO alert_state
             (route_id, last_alerted_minor, last_alerted_currency, last_alerted_at,
              alerts_sent, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (route_id) DO UPDATE SET
             last_alerted_minor    = excluded.last_alerted_minor,
             last_alerted_currency = excluded.last_alerted_currency,
             last_alerted_at       = excluded.last_alerted_at,
             alerts_sent           = excluded.alerts_sent,
             updated_at            = excluded.updated_at",
    )?
    .execute(params![
        route_id,
        state.last_alerted.map(|m| m.minor),
        state.last_alerted.map(|m| m.currency.as_str().to_owned()),
        state.last_alerted_at.map(ts_to_sql),
        alerts_sent,
        ts_to_sql(now),
    ])?;
    Ok(())
}

fn state_from_row(
    route_id: &str,
    minor: Option<i64>,
    currency: Option<String>,
    at: Option<String>,
    sent: i64,
) -> Result<AlertState, Fail> {
    let last_alerted = match (minor, currency) {
        (Some(minor), Some(code)) => {
            let currency = Currency::parse(&code).map_err(|e| {
                Fail::Corrupt(format!("alert_state row `{route_id}`: currency: {e}"))
            })?;
            Some(Money::from_minor(minor, currency))
        }
        (None, None) => None,
        _ => {
            return Err(Fail::Corrupt(format!(
                "alert_state row `{route_id}` has a price without a currency or the reverse"
            )))
        }
    };
    let last_alerted_at = at
        .map(|s| ts_from_sql(&s, "alert_state", route_id))
        .transpose()?;
    let alerts_sent = u64::try_from(sent).map_err(|_| {
        Fail::Corrupt(format!(
            "alert_state row `{route_id}` has alerts_sent {sent}"
        ))
    })?;
    Ok(AlertState {
        last_alerted,
        last_alerted_at,
        alerts_sent,
    })
}

/// Fixed-width RFC 3339 (nine fractional digits) so text order is time order.
fn ts_to_sql(ts: Timestamp) -> String {
    format!("{ts:.9}")
}

fn ts_from_sql(raw: &str, table: &str, key: &str) -> Result<Timestamp, Fail> {
    raw.parse()
        .map_err(|e| Fail::Corrupt(format!("{table} row `{key}`: timestamp `{raw}`: {e}")))
}

fn to_i64(value: u64, what: &str) -> Result<i64, Fail> {
    i64::try_from(value)
        .map_err(|_| Fail::OutOfRange(format!("{what} {value} is larger than {}", i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_exact() {
        let ts: Timestamp = "2027-03-01T07:30:00Z".parse().unwrap();
        assert_eq!(ts_to_sql(ts), "2027-03-01T07:30:00.000000000Z");
        let fine = Timestamp::new(1_800_000_000, 123_456_789).unwrap();
        let text = ts_to_sql(fine);
        assert_eq!(text.len(), ts_to_sql(ts).len());
        assert_eq!(ts_from_sql(&text, "t", "k").ok(), Some(fine));
        // Text order is time order, even where one has no fraction.
        let later = Timestamp::new(1_800_000_000, 500_000_000).unwrap();
        let whole = Timestamp::new(1_800_000_001, 0).unwrap();
        assert!(ts_to_sql(later) < ts_to_sql(whole));
    }

    #[tokio::test]
    async fn a_panic_while_holding_the_connection_is_an_error_not_a_panic() {
        let store = Store::open(&StoreLocation::Memory).unwrap();
        let err = store
            .call::<(), _>("crash on purpose", |_| panic!("boom"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Task { .. }), "{err:?}");
        // The mutex is now poisoned: later calls report it instead of panicking.
        let err = store.load_states().await.unwrap_err();
        assert!(matches!(err, StoreError::Poisoned { .. }), "{err:?}");
        assert!(err.to_string().contains("restart farewatch"));
    }

    #[test]
    fn unsupported_url_redacts_password() {
        let err = StoreLocation::parse("postgres://app:hunter2@db.example/fw").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("db.example"), "{msg}");
    }
}
