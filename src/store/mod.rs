//! Durable state: per-route alert state, the alert outbox (intents and sent
//! records with the provider's message id), recipients who opted out, and a
//! small key-value table (OAuth tokens, budgets, provider health).
//!
//! One typed API, [`Store`], over two backends behind the [`Backend`] trait:
//! - **SQLite**, embedded, the default: rusqlite (bundled) with one writer
//!   thread ([`sqlite`](self) below);
//! - **PostgreSQL**, for deployments that share one database: sqlx with
//!   runtime-checked queries and a bounded pool.
//!
//! Why two libraries: sqlx's SQLite driver measured 236–318 µs per
//! single-row transaction here against rusqlite's 14–16 µs, and the two
//! dialects need different SQL anyway (see the README, "Storage").
//!
//! # Location
//! `DATABASE_URL` picks the database ([`StoreLocation::parse`]):
//! `sqlite://PATH` or `sqlite:PATH` (a relative path is relative to the
//! working directory; `sqlite:///abs/path` is `/abs/path`),
//! `sqlite::memory:` for a private in-memory database, or
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]`
//! (`postgresql://` too). Without it the file is
//! `<data dir>/farewatch/farewatch.db` ([`StoreLocation::default_path`]).
//! A password in the URL never appears in a message or a log line.
//!
//! # SQLite settings
//! - `journal_mode = WAL`, so readers (`farewatch status`) never block a run;
//! - `synchronous = FULL`: every commit is on disk before it returns, because
//!   an SMS that was sent must never be forgotten after a power cut;
//! - `busy_timeout = 5 s`, so two processes (cron overlap) wait instead of failing;
//! - `foreign_keys = ON`;
//! - on unix the file is created with mode `0600` (it holds OAuth tokens),
//!   and directories farewatch creates get `0700`.
//!
//! # Schema (version 8)
//! The SQL lives in `migrations/{sqlite,postgres}/NNNN_*.sql`, one file per
//! version and the same number for the same change, compiled in and applied
//! at [`Store::open`] in one transaction. SQLite keeps the version in
//! `PRAGMA user_version`, PostgreSQL in the table `farewatch_schema` (and
//! migrates under an advisory lock). Existing users' files migrate in place
//! (`tests/store.rs` opens a committed version 2 file,
//! `tests/fixtures/store/farewatch-v2.db`).
//!
//! Timestamps are `TIMESTAMPTZ` in PostgreSQL (microseconds) and, in SQLite,
//! RFC 3339 text in UTC with exactly nine fractional digits
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
//! | `last_alerted_at` | timestamp NULL | when the last alert was sent (kept across re-arming) |
//! | `alerts_sent` | INTEGER | alerts sent for the route so far |
//! | `updated_at` | timestamp | when the row was last written |
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
//! | `created_at` | timestamp | when the intent was first written |
//! | `updated_at` | timestamp | when the status last changed (the sent time for `sent` rows) |
//! | `claimed_by` | TEXT NULL | (v3) the run that owns the row: wrote it, or took it over ([`RunId`]) |
//! | `claimed_at` | timestamp NULL | (v3) when it claimed it |
//!
//! PostgreSQL's outbox also has an identity column `id`, which orders rows
//! written in the same microsecond (SQLite uses its `rowid`).
//!
//! `suppressed` (v2): recipients who replied STOP, per route (`route_id`,
//! `recipient` PK, `reason`, `created_at`). An index on `outbox (route_id,
//! seq)` finds a route's unfinished alert.
//!
//! `kv`: small values that must survive between runs (`key` PK, `value`,
//! `expires_at` NULL: after it the row is ignored, and eventually deleted).
//!
//! Version 4 adds what `farewatch serve` keeps (columns in
//! `src/store/accounts.rs`; see [`Accounts`]): `users`, `api_tokens`,
//! `idempotency_keys`, `api_watches`, `interests` and `airport_flights`,
//! with their migrations listed in `migrations/README.md`. Hashes are `BLOB` in
//! SQLite and `BYTEA` in PostgreSQL; ids are `INTEGER PRIMARY KEY
//! AUTOINCREMENT` in SQLite and `BIGINT` identity columns in PostgreSQL, so
//! neither ever reuses the id of a deleted row. A user's tokens, watches and
//! interests go with it (`ON DELETE CASCADE`), and its idempotency keys in
//! the same transaction.
//!
//! Version 5 adds `price_history` (columns, what is recorded and the
//! retention in `src/store/price_history.rs`; see [`PriceHistory`]): one row
//! per quote a provider gave, keyed by the search
//! ([`crate::domain::LookupKey::history_key`]) and indexed on
//! (`search_key`, `observed_at`); [`Store::compact_price_history`] keeps
//! every row for 14 days, then one per search and UTC day (the minimum).
//!
//! Version 6 adds the search jobs: `search_jobs`, `search_chunks` (the
//! queue workers claim from, with leases) and `search_results` (see
//! [`jobs`]).
//!
//! Version 7 adds `fleet_due` and `fleet_nodes`: which daemon of a fleet
//! holds which route, and each daemon's heartbeat (see [`fleet`]).
//!
//! Version 8 adds `fleet_leases` (one daemon at a time for a fleet-wide
//! chore) and `fleet_sheet` (the sheet as the daemon holding the `sheet`
//! lease last read it, which the others check their routes from).
//!
//! # Group commit
//! Writes are committed in batches: every call waiting when the previous
//! batch finished shares one transaction and one flush to disk, at most
//! [`MAX_BATCH`] calls. On SQLite, while calls arrive concurrently, a batch
//! also waits up to [`MAX_LINGER`] (5 ms) for more to join it; a lone call is
//! committed at once. A burst of 500 intents costs a few commits, not 500. A caller is
//! answered only after its batch commits, so an intent is durable before its
//! message is sent, and the writes of one call (an outbox status and the
//! route's alert state) are atomic.
//! - SQLite: a writer thread owns the write connection; each call runs in
//!   its own savepoint, so a failed call rolls back alone. Reads go to a pool
//!   of [`SQLITE_READERS`] read-only connections, each on its own thread
//!   (WAL: readers never wait for the writer), outside any write batch. An
//!   in-memory database runs everything inline on its one connection.
//! - PostgreSQL: a writer task holds one connection of the pool and runs each
//!   batch in one transaction; if any call in it fails at the database (a
//!   deadlock with another process, say), the batch is rolled back and its
//!   calls are run again one transaction each. Reads use the rest of the
//!   pool (at most [`POSTGRES_POOL`] connections in all).
//!
//! No call takes a thread from tokio's blocking pool. All SQL uses bound
//! parameters. A cycle's reads (states, suppressions, unfinished alerts,
//! pending intents) are one query each, whatever the number of routes.
//!
//! # Overlapping runs
//! Two runs may share one database (a slow cron run and the next tick, or
//! two hosts on one PostgreSQL). Each outbox row is **claimed** by the run
//! that writes it ([`Store::open_intent`] with that run's [`RunId`]: host,
//! pid, process start time and a run number). A pending row whose claim is
//! *live* (its run is still alive: see [`RunId`] and [`CLAIM_LEASE`])
//! belongs to that run: another run gets [`IntentStatus::ClaimedElsewhere`],
//! never sends it, and does not reconcile it ([`Store::claim_pending`] skips
//! it). A pending row with no claim or a dead one (the run crashed) is taken
//! over with a compare-and-set on `claimed_by`, so exactly one run wins it.
//! A sent row claimed by another run is [`IntentStatus::SentElsewhere`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::domain::{Currency, Money};
use crate::rules::AlertState;

mod accounts;
mod claim;
pub mod fleet;
pub mod jobs;
mod postgres;
mod price_history;
mod provider_state;
mod sqlite;

pub use accounts::{
    Accounts, AirportFlight, ApiWatch, CreatedUser, Direction, KeyClaim, NewUser, TokenHash, User,
    WatchKind,
};
pub use claim::{known_dead, process_run, RunId, CLAIM_LEASE};
pub use postgres::POSTGRES_POOL;
pub use price_history::{PriceHistory, PricePoint, KEEP_ALL_FOR};
pub use provider_state::{ProviderRole, SavedHealth};
pub use sqlite::{BUSY_TIMEOUT, SQLITE_READERS};

/// Most writes committed together in one transaction (group commit).
pub const MAX_BATCH: usize = 256;

/// How long the first write of a batch waits for others to join it before
/// the batch is committed (unless [`MAX_BATCH`] join sooner). 5 ms rather
/// than 2: a 10,000-route check with 5,000 alerts commits 146 times instead
/// of 227, and each commit rewrites the index pages its writes touched, so
/// fewer commits write fewer pages (README, Storage); an alert waits a few
/// milliseconds more for its intent to be durable.
pub const MAX_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// The schema version this build writes; see the module docs.
pub const SCHEMA_VERSION: i64 = 9;

/// Appended to errors that a different location would fix.
const USE_ANOTHER: &str = "set DATABASE_URL=sqlite://PATH to use another location";

/// What a PostgreSQL URL may look like, for messages.
const POSTGRES_FORM: &str = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A private in-memory SQLite database (demo mode, tests).
    Memory,
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A `postgres://` URL. It may hold a password, so it is shown redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as given, password included: for connecting, never for showing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact::redact_url(&self.0))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

impl StoreLocation {
    /// Parses `DATABASE_URL`: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`
    /// or `postgres://...` (`postgresql://...`).
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
                // sqlx checks the rest when connecting; catch what is plainly
                // not a server address here, with a clearer message.
                let Some(after) = rest.strip_prefix("//") else {
                    return Err(unsupported(&format!("expected {POSTGRES_FORM}")));
                };
                if after.is_empty() || after.starts_with('/') || after.starts_with('?') {
                    return Err(unsupported(&format!(
                        "it names no server; expected {POSTGRES_FORM}"
                    )));
                }
                return Ok(Self::Postgres(PostgresUrl(raw.to_owned())));
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

    /// `DATABASE_URL`'s value if it is set and not blank, else the default
    /// file ([`StoreLocation::default_path`]).
    pub fn from_setting(url: Option<&str>) -> Result<Self, StoreError> {
        match url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) => Self::parse(url),
            None => Self::default_path(),
        }
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
            Self::Postgres(url) => url.fmt(f),
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
        "DATABASE_URL `{url}` is not supported: {reason}; use sqlite://PATH, sqlite:PATH, \
         sqlite::memory: or {POSTGRES_FORM}"
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
        source: DbError,
    },
    /// PostgreSQL did not answer, or refused the login.
    #[error(
        "cannot connect to the PostgreSQL state database {db}: {source}; check that the \
         server is running and that DATABASE_URL names it ({POSTGRES_FORM})"
    )]
    Connect {
        /// The URL, password redacted.
        db: String,
        /// The driver's error.
        #[source]
        source: DbError,
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
        /// The database's error.
        #[source]
        source: DbError,
    },
    /// A query failed.
    #[error("state database {db}: cannot {op}: {source}")]
    Query {
        /// The database path.
        db: String,
        /// What was being done.
        op: &'static str,
        /// The database's error.
        #[source]
        source: DbError,
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

/// The database library's own error, under a [`StoreError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// From SQLite (rusqlite).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// From PostgreSQL (sqlx).
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
}

/// How an intent ended: accepted by the provider, or refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentOutcome {
    /// Accepted, with the provider's message id.
    Sent {
        /// The provider's message id.
        message_id: String,
    },
    /// Refused for good.
    Failed {
        /// What the provider said.
        error: String,
    },
}

impl IntentOutcome {
    /// The operation, for messages.
    fn op(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "record sent alert",
            Self::Failed { .. } => "record failed alert",
        }
    }

    /// `status`, `message_id` and `error` as stored.
    fn columns(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Self::Sent { message_id } => ("sent", Some(message_id), None),
            Self::Failed { error } => ("failed", None, Some(error)),
        }
    }
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

/// Why a backend's work failed; turned into a [`StoreError`] with the
/// database and operation once the call is answered.
enum Fail {
    Sql(DbError),
    UnknownIntent(String),
    Corrupt(String),
    OutOfRange(String),
    Poisoned,
    Panicked,
    Commit(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(DbError::Sqlite(e))
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(DbError::Postgres(e))
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

/// `value` as a 64-bit SQL integer.
fn to_i64(value: u64, what: &str) -> Result<i64, Fail> {
    i64::try_from(value)
        .map_err(|_| Fail::OutOfRange(format!("{what} {value} is larger than {}", i64::MAX)))
}

/// A stored count or sequence number, which is never negative.
fn to_u64(value: i64, what: impl FnOnce() -> String) -> Result<u64, Fail> {
    u64::try_from(value).map_err(|_| Fail::Corrupt(format!("{} has {value}", what())))
}

/// The migrations a database at schema version `found` still needs, as
/// (version it reaches, SQL) pairs: none when it is current, an error when
/// a newer farewatch wrote it. `migrations[n]` takes version `n` to `n + 1`.
fn pending_migrations<'a>(
    migrations: &'a [&'a str],
    found: i64,
    db: &str,
) -> Result<impl Iterator<Item = (i64, &'a str)>, StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            db: db.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(found).unwrap_or(0);
    Ok(migrations
        .iter()
        .enumerate()
        .skip(done)
        .map(|(from, sql)| (i64::try_from(from).unwrap_or(i64::MAX) + 1, *sql)))
}

/// A route's alert state from its stored columns.
fn state_from_row(
    route_id: &str,
    minor: Option<i64>,
    currency: Option<String>,
    last_alerted_at: Option<Timestamp>,
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
    let alerts_sent = to_u64(sent, || format!("alert_state row `{route_id}` alerts_sent"))?;
    Ok(AlertState {
        last_alerted,
        last_alerted_at,
        alerts_sent,
    })
}

/// An idempotency key's row as a claim finds it (see
/// [`Store::claim_idempotency_key`]).
struct StoredKey {
    fingerprint: Vec<u8>,
    locked_at: Option<Timestamp>,
    response_status: Option<i64>,
    response_body: Option<String>,
}

impl StoredKey {
    /// How a claim of this existing key with `fingerprint` at `now` ends;
    /// `None` when its lock is stale (its request died) and the claim takes
    /// it over: the caller then re-locks it at `now` and proceeds.
    fn settle(
        self,
        fingerprint: &[u8; 32],
        now: Timestamp,
        stale_after: std::time::Duration,
        key: &str,
    ) -> Result<Option<KeyClaim>, Fail> {
        if self.fingerprint.as_slice() != fingerprint.as_slice() {
            return Ok(Some(KeyClaim::Mismatch));
        }
        let Some(locked_at) = self.locked_at else {
            let (Some(status), Some(body)) = (self.response_status, self.response_body) else {
                return Err(Fail::Corrupt(format!(
                    "idempotency key `{key}` is neither locked nor completed"
                )));
            };
            let status = u16::try_from(status).map_err(|_| {
                Fail::Corrupt(format!("idempotency key `{key}` has status {status}"))
            })?;
            return Ok(Some(KeyClaim::Replay { status, body }));
        };
        // A `stale_after` beyond what a timestamp can hold never expires.
        let stale = jiff::SignedDuration::try_from(stale_after)
            .is_ok_and(|stale_after| now.duration_since(locked_at) >= stale_after);
        Ok((!stale).then_some(KeyClaim::InProgress))
    }
}

/// `flights` with each (`icao24`, `first_seen`) once, the last given kept:
/// one upsert statement may not touch a row twice.
fn unique_flights(flights: &[AirportFlight]) -> Vec<&AirportFlight> {
    let mut seen = HashSet::with_capacity(flights.len());
    let mut out: Vec<&AirportFlight> = flights
        .iter()
        .rev()
        .filter(|f| seen.insert((f.icao24.as_str(), f.first_seen)))
        .collect();
    out.reverse();
    out
}

/// What a storage backend does: everything farewatch persists, in domain
/// terms. [`Store`] is the handle the rest of farewatch holds; each method
/// below is documented there.
#[async_trait]
pub trait Backend:
    Accounts + fleet::Fleet + jobs::Jobs + PriceHistory + Send + Sync + 'static
{
    /// See [`Store::load_states`].
    async fn load_states(
        &self,
        only: Option<&[String]>,
    ) -> Result<HashMap<String, AlertState>, StoreError>;
    /// See [`Store::save_state`].
    async fn save_state(&self, route_id: &str, state: &AlertState) -> Result<(), StoreError>;
    /// See [`Store::open_intent`].
    async fn open_intent(&self, intent: &Intent, run: &RunId) -> Result<IntentStatus, StoreError>;
    /// See [`Store::claim_pending`].
    async fn claim_pending(&self, run: &RunId) -> Result<Vec<Intent>, StoreError>;
    /// See [`Store::finish_intent`].
    async fn finish_intent(
        &self,
        key: &str,
        outcome: &IntentOutcome,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError>;
    /// See [`Store::unfinished_alerts`].
    async fn unfinished_alerts(&self) -> Result<HashMap<String, u64>, StoreError>;
    /// See [`Store::close_alert`].
    async fn close_alert(
        &self,
        route_id: &str,
        seq: u64,
        reason: &str,
        state: &AlertState,
        run: &RunId,
    ) -> Result<Option<usize>, StoreError>;
    /// See [`Store::suppress`].
    async fn suppress(
        &self,
        route_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// See [`Store::suppressed`].
    async fn suppressed(&self) -> Result<HashSet<(String, String)>, StoreError>;
    /// See [`Store::pending_intents`].
    async fn pending_intents(&self) -> Result<Vec<Intent>, StoreError>;
    /// See [`Store::sent_log`].
    async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError>;
    /// See [`Store::kv_get`].
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// See [`Store::kv_put`].
    async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// A saved token and its expiry, unless it has expired.
    async fn load_token(&self, key: &str) -> Result<Option<(String, Timestamp)>, StoreError>;
    /// Saves a token until `expires_at`, dropping expired ones.
    async fn save_token(
        &self,
        key: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// See [`Store::found_version`].
    fn found_version(&self) -> i64;
    /// See [`Store::commits`].
    fn commits(&self) -> u64;
}

/// The durable store: a cheap-to-clone handle on one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
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

impl Store {
    /// Opens the store at `location`: creates it if needed (a file, not a
    /// PostgreSQL database, which the operator creates) and applies the
    /// migrations this build knows.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let backend: Arc<dyn Backend> = match location {
            StoreLocation::Postgres(url) => Arc::new(postgres::Postgres::open(url).await?),
            StoreLocation::Sqlite(_) | StoreLocation::Memory => {
                Arc::new(sqlite::Sqlite::open(location)?)
            }
        };
        Ok(Self {
            backend,
            location: Arc::new(location.clone()),
        })
    }

    /// A private in-memory SQLite store (demo mode, tests): what
    /// `Store::open(&StoreLocation::Memory)` opens, without awaiting.
    pub fn memory() -> Result<Self, StoreError> {
        Ok(Self {
            backend: Arc::new(sqlite::Sqlite::open(&StoreLocation::Memory)?),
            location: Arc::new(StoreLocation::Memory),
        })
    }

    /// Opens the store `DATABASE_URL`'s value names, or the default file
    /// ([`StoreLocation::from_setting`]).
    pub async fn open_setting(url: Option<&str>) -> Result<Self, StoreError> {
        Self::open(&StoreLocation::from_setting(url)?).await
    }

    /// Where this store lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The schema version the database had before this process opened (and
    /// migrated) it: 0 for a new database, [`SCHEMA_VERSION`] when nothing
    /// had to change.
    pub fn found_version(&self) -> i64 {
        self.backend.found_version()
    }

    /// Transactions committed so far: with group commit, fewer than calls.
    pub fn commits(&self) -> u64 {
        self.backend.commits()
    }

    /// Every route's saved alert state, keyed by route id (one query).
    pub async fn load_states(&self) -> Result<HashMap<String, AlertState>, StoreError> {
        self.backend.load_states(None).await
    }

    /// The saved alert states of `route_ids` (those that have one), in one
    /// query: a cycle over a fleet's batch reads its batch, not the table.
    pub async fn load_states_of(
        &self,
        route_ids: &[String],
    ) -> Result<HashMap<String, AlertState>, StoreError> {
        self.backend.load_states(Some(route_ids)).await
    }

    /// Saves a route's state on its own (used when a row re-arms).
    pub async fn save_state(&self, route_id: &str, state: &AlertState) -> Result<(), StoreError> {
        self.backend.save_state(route_id, state).await
    }

    /// Writes the intent, claimed by `run`, unless its key exists; returns
    /// the key's status. A pending row with no claim or a dead one is taken
    /// over by `run` ([`IntentStatus::Pending`]); one whose claim is live is
    /// [`IntentStatus::ClaimedElsewhere`] (see the module docs).
    pub async fn open_intent(
        &self,
        intent: &Intent,
        run: &RunId,
    ) -> Result<IntentStatus, StoreError> {
        self.backend.open_intent(intent, run).await
    }

    /// Pending intents `run` may settle, oldest first: its own, and those
    /// with no claim or a dead one, which it takes over. Intents claimed by
    /// another live run are left to it (not returned): that run may be
    /// about to send them, so finding them missing from the provider's list
    /// proves nothing.
    pub async fn claim_pending(&self, run: &RunId) -> Result<Vec<Intent>, StoreError> {
        self.backend.claim_pending(run).await
    }

    /// Records how an intent ended; when `completes` is given, saves that
    /// route state in the same transaction. An unknown key is
    /// [`StoreError::UnknownIntent`], and nothing changes.
    pub async fn finish_intent(
        &self,
        key: &str,
        outcome: &IntentOutcome,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        self.backend.finish_intent(key, outcome, completes).await
    }

    /// Marks an intent sent; `completes` as in [`Store::finish_intent`].
    pub async fn record_sent(
        &self,
        key: &str,
        message_id: &str,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let outcome = IntentOutcome::Sent {
            message_id: message_id.to_owned(),
        };
        self.finish_intent(key, &outcome, completes).await
    }

    /// Marks an intent failed for good; `completes` as in [`Store::finish_intent`].
    pub async fn record_failed(
        &self,
        key: &str,
        error: &str,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let outcome = IntentOutcome::Failed {
            error: error.to_owned(),
        };
        self.finish_intent(key, &outcome, completes).await
    }

    /// Routes with an alert that was started but not completed: intents whose
    /// alert number is past the route's saved `alerts_sent` (any status). An
    /// alert completes when its state is saved; until then its intents keep
    /// their keys, so a retry reuses them and nobody is texted twice.
    pub async fn unfinished_alerts(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.backend.unfinished_alerts().await
    }

    /// Ends an unfinished alert whose drop is over (the price rose above the
    /// maximum before every recipient was reached): its still-pending intents
    /// are marked failed with `reason`, and `state` (which must number past
    /// `seq`, so the next drop gets fresh keys) is saved, in one transaction.
    /// Returns how many of the alert's messages had been sent, or `None`
    /// (and changes nothing) while another live run (not `run`) holds one of
    /// its intents pending: that run is sending it, so the alert is its to end.
    pub async fn close_alert(
        &self,
        route_id: &str,
        seq: u64,
        reason: &str,
        state: &AlertState,
        run: &RunId,
    ) -> Result<Option<usize>, StoreError> {
        self.backend
            .close_alert(route_id, seq, reason, state, run)
            .await
    }

    /// Stops texting `recipient` for `route_id` (they replied STOP). The
    /// route's id includes its recipients, so editing them in the sheet
    /// starts afresh.
    pub async fn suppress(
        &self,
        route_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.backend.suppress(route_id, recipient, reason).await
    }

    /// Every suppressed (route id, recipient) pair.
    pub async fn suppressed(&self) -> Result<HashSet<(String, String)>, StoreError> {
        self.backend.suppressed().await
    }

    /// Intents written but never recorded as sent or failed, oldest first,
    /// whoever claimed them: after a crash these may or may not have reached
    /// the provider.
    pub async fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.backend.pending_intents().await
    }

    /// The sent log, newest first.
    pub async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError> {
        self.backend.sent_log(limit).await
    }

    /// A small value saved with [`Store::kv_put`] (provider health, budget
    /// counts), unless it has expired.
    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.backend.kv_get(key).await
    }

    /// Saves a small value under `key`, replacing any earlier one.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.backend.kv_put(key, value, expires_at).await
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
        match self.backend.load_token(key).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(key, %error, "cannot read cached token; a new one will be fetched");
                None
            }
        }
    }

    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp) {
        if let Err(error) = self.backend.save_token(key, token, expires_at).await {
            tracing::warn!(key, %error, "cannot cache token; the next run will fetch a new one");
        }
    }
}
