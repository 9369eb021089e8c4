//! The embedded backend: SQLite through rusqlite, one writer thread with
//! group commit (see the [`super`] docs for the settings and the schema).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{
    pending_migrations, state_from_row, to_i64, Backend, DbError, Fail, Intent, IntentOutcome,
    IntentStatus, RunId, SentRecord, StoreError, StoreLocation, MAX_BATCH, MAX_LINGER,
    SCHEMA_VERSION,
};
use crate::rules::AlertState;

mod accounts;
mod fleet;
mod jobs;
mod kv;
mod outbox;
mod price_history;
mod state;

/// Statements kept prepared; more than the store has (~90), so none is evicted.
const STATEMENT_CACHE: usize = 128;

/// How long a statement waits for another process's write lock before
/// failing with "database is locked". Long enough to ride out an overlapping
/// cron run's commit, short enough that a stuck lock is reported.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migrations, in order: `MIGRATIONS[n]` takes `user_version` from `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../../migrations/sqlite/0002_suppressed.sql"),
    include_str!("../../../migrations/sqlite/0003_claims.sql"),
    include_str!("../../../migrations/sqlite/0004_accounts.sql"),
    include_str!("../../../migrations/sqlite/0005_price_history.sql"),
    include_str!("../../../migrations/sqlite/0006_search_jobs.sql"),
    include_str!("../../../migrations/sqlite/0007_fleet.sql"),
    include_str!("../../../migrations/sqlite/0008_fleet_sync.sql"),
    include_str!("../../../migrations/sqlite/0009_outbox_key_range.sql"),
];

/// The SQLite backend. One connection, owned by a writer thread (a file)
/// or used inline (in memory).
pub(super) struct Sqlite {
    /// The schema version the database had when it was opened.
    found_version: i64,
    /// Where calls run: see [`Sqlite::call`].
    db: Executor,
    /// Where it is, for messages.
    location: String,
}

impl Sqlite {
    /// Opens (creating if needed, with migrations) the database at `location`,
    /// which is [`StoreLocation::Sqlite`] or [`StoreLocation::Memory`].
    pub(super) fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let db = location.to_string();
        let open_err = |source| StoreError::Open {
            db: db.clone(),
            source: DbError::Sqlite(source),
        };
        let mut conn = match location {
            StoreLocation::Sqlite(path) => open_file(path, &db)?,
            _ => Connection::open_in_memory().map_err(open_err)?,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Every statement is prepared once per process (`prepare_cached`):
        // a cycle runs the same few dozen again and again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if matches!(location, StoreLocation::Sqlite(_)) {
            // Switching a new file to WAL needs it alone, and SQLite answers
            // "locked" at once rather than through the busy timeout when
            // another process is creating the same file: wait for it here.
            let mode: String = while_busy(|| {
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            })
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
            db: Executor::new(conn, location)?,
            location: db,
        })
    }

    /// Runs `f` on the connection, atomically (in its own savepoint), and
    /// returns once its effect is committed.
    ///
    /// A file database has one writer thread owning the connection: calls
    /// queue on a channel, and the thread takes every call waiting, and
    /// while calls arrive concurrently every call arriving within
    /// [`MAX_LINGER`] (up to [`MAX_BATCH`] in all), into one `BEGIN IMMEDIATE`
    /// transaction: one commit and one fsync for the batch (group commit).
    /// A lone call is committed at once. A caller is answered only after the commit, so an
    /// intent is durable before its message is sent. A failed call rolls back
    /// to its savepoint without touching the others in its batch.
    ///
    /// An in-memory database runs calls inline on the calling task (it has
    /// no fsync to share), which also keeps tests on tokio's paused clock
    /// deterministic.
    pub(super) async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
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
            Ok(result) => result.map_err(|fail| fail.into_error(self.location.clone(), op)),
            Err(_) => Err(StoreError::Task {
                db: self.location.clone(),
                op,
                detail: "the database thread stopped".into(),
            }),
        }
    }

    /// Runs the read `f` on a reader connection (a file) or inline (in
    /// memory), outside any write batch: reads neither wait for a commit nor
    /// take the write lock. Each statement sees the last commit, so what a
    /// caller wrote (answered only after its commit) is always there.
    pub(super) async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        let Some(readers) = &self.db.readers else {
            return self.call(op, move |conn| f(conn)).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or(Err(Fail::Panicked));
            let _ = reply.send(result);
        });
        let stopped = || StoreError::Task {
            db: self.location.clone(),
            op,
            detail: "the database reader threads stopped".into(),
        };
        readers.send(job).map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|fail| fail.into_error(self.location.clone(), op))
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn load_states(
        &self,
        only: Option<&[String]>,
    ) -> Result<HashMap<String, AlertState>, StoreError> {
        Sqlite::load_states(self, only).await
    }
    async fn save_state(&self, route_id: &str, state: &AlertState) -> Result<(), StoreError> {
        Sqlite::save_state(self, route_id, state).await
    }
    async fn open_intent(&self, intent: &Intent, run: &RunId) -> Result<IntentStatus, StoreError> {
        Sqlite::open_intent(self, intent, run).await
    }
    async fn claim_pending(&self, run: &RunId) -> Result<Vec<Intent>, StoreError> {
        Sqlite::claim_pending(self, run).await
    }
    async fn finish_intent(
        &self,
        key: &str,
        outcome: &IntentOutcome,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        Sqlite::finish_intent(self, key, outcome, completes).await
    }
    async fn unfinished_alerts(&self) -> Result<HashMap<String, u64>, StoreError> {
        Sqlite::unfinished_alerts(self).await
    }
    async fn close_alert(
        &self,
        route_id: &str,
        seq: u64,
        reason: &str,
        state: &AlertState,
        run: &RunId,
    ) -> Result<Option<usize>, StoreError> {
        Sqlite::close_alert(self, route_id, seq, reason, state, run).await
    }
    async fn suppress(
        &self,
        route_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        Sqlite::suppress(self, route_id, recipient, reason).await
    }
    async fn suppressed(&self) -> Result<HashSet<(String, String)>, StoreError> {
        Sqlite::suppressed(self).await
    }
    async fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        Sqlite::pending_intents(self).await
    }
    async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError> {
        Sqlite::sent_log(self, limit).await
    }
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Sqlite::kv_get(self, key).await
    }
    async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        Sqlite::kv_put(self, key, value, expires_at).await
    }
    async fn load_token(&self, key: &str) -> Result<Option<(String, Timestamp)>, StoreError> {
        self.try_load_token(key).await
    }
    async fn save_token(
        &self,
        key: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.try_save_token(key, token, expires_at).await
    }
    fn found_version(&self) -> i64 {
        self.found_version
    }
    fn commits(&self) -> u64 {
        self.db.commits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One call's work, run inside the batch's transaction; what it returns
/// delivers the call's result once the batch's commit has succeeded or failed.
type Job = Box<dyn FnOnce(&mut Db) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The connection and whether a call ever crashed on it.
struct Db {
    conn: Connection,
    poisoned: bool,
    /// Transactions committed (batches), shared with `Store::commits`.
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
        run_cached(&self.conn, "SAVEPOINT call")?;
        let conn = &mut self.conn;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| {
                self.poisoned = true;
                Err(Fail::Panicked)
            });
        if result.is_err() {
            run_cached(&self.conn, "ROLLBACK TO call")?;
        }
        run_cached(&self.conn, "RELEASE call")?;
        result
    }

    /// Runs `jobs` in one transaction, commits once, then answers each.
    fn run_batch(&mut self, jobs: Vec<Job>) {
        if let Err(error) = run_cached(&self.conn, "BEGIN IMMEDIATE") {
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
        let committed = run_cached(&self.conn, "COMMIT").map_err(|error| {
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

/// Runs one statement without rows (a savepoint, `BEGIN`, `COMMIT`) from the
/// statement cache: `execute_batch` would parse it again for every call.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// A read: runs on a reader connection, outside any write transaction.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Reader connections (and threads) a file database gets beside its writer.
pub const SQLITE_READERS: usize = 2;

/// Where a store's calls run, and how many transactions it committed.
struct Executor {
    run: Runner,
    /// A file's readers, fed through one channel; `None` in memory, where
    /// reads run on the one connection like writes.
    readers: Option<std::sync::mpsc::Sender<ReadJob>>,
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
        let StoreLocation::Sqlite(path) = location else {
            return Ok(Self {
                run: Runner::Inline(Mutex::new(db)),
                readers: None,
                commits,
            });
        };
        let spawn_err = |source| StoreError::Io {
            db: location.to_string(),
            action: "start the database threads".into(),
            source,
        };
        let (sender, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("farewatch-store".into())
            .spawn(move || writer(db, queue))
            .map_err(spawn_err)?;
        let (reads, read_queue) = std::sync::mpsc::channel::<ReadJob>();
        let read_queue = Arc::new(Mutex::new(read_queue));
        for n in 0..SQLITE_READERS {
            let conn = open_reader(path, &location.to_string())?;
            let queue = read_queue.clone();
            std::thread::Builder::new()
                .name(format!("farewatch-read-{n}"))
                .spawn(move || reader(&conn, &queue))
                .map_err(spawn_err)?;
        }
        Ok(Self {
            run: Runner::Thread(sender),
            readers: Some(reads),
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

/// A reader thread: takes reads off the shared queue until the store is dropped.
fn reader(conn: &Connection, queue: &Mutex<std::sync::mpsc::Receiver<ReadJob>>) {
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        match next {
            Ok(job) => job(conn),
            Err(_) => return,
        }
    }
}

/// A read-only connection to an existing database file (WAL: it never
/// blocks the writer, nor waits for it).
fn open_reader(path: &Path, db: &str) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        db: db.to_owned(),
        source: DbError::Sqlite(source),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The writer thread: a batch is the first call waiting plus every call that
/// queued behind it or arrives within [`MAX_LINGER`] of it, up to
/// [`MAX_BATCH`]. Ends when the last store clone is dropped.
fn writer(mut db: Db, queue: std::sync::mpsc::Receiver<Job>) {
    // Lingering pays only while callers write concurrently: a caller that
    // waits for each write before the next (a loop of saves) would wait
    // out every linger for nothing. So a batch lingers only when the one
    // before it had company.
    //
    // The linger is slept out rather than spent waiting on the queue: a
    // writer blocked on the queue is woken (a futex call on each side and a
    // context switch) by every call that joins the batch, a sleeping one by
    // none. Calls that arrive meanwhile are taken when it wakes.
    let mut concurrent = false;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        if concurrent {
            std::thread::sleep(MAX_LINGER);
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        concurrent = batch.len() > 1;
        db.run_batch(batch);
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
        source: DbError::Sqlite(source),
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

/// Runs `step` again while SQLite says the database is busy or locked, for
/// up to [`BUSY_TIMEOUT`] (the statements of opening a file that SQLite's
/// own busy handler does not cover).
fn while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
/// Returns the version the file had (0 for a new file).
fn migrate(conn: &mut Connection, db: &str) -> Result<i64, StoreError> {
    let open_err = |source| StoreError::Open {
        db: db.to_owned(),
        source: DbError::Sqlite(source),
    };
    // IMMEDIATE so two processes opening a new file at once do not both migrate.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_err)?;
    let pending = pending_migrations(MIGRATIONS, found, db)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    for (version, sql) in pending {
        let migrate_err = |source| StoreError::Migrate {
            db: db.to_owned(),
            version,
            source: DbError::Sqlite(source),
        };
        tx.execute_batch(sql).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|source| StoreError::Migrate {
        db: db.to_owned(),
        version: SCHEMA_VERSION,
        source: DbError::Sqlite(source),
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

/// Fixed-width RFC 3339 (nine fractional digits) so text order is time order.
fn ts_to_sql(ts: Timestamp) -> String {
    format!("{ts:.9}")
}

fn ts_from_sql(raw: &str, table: &str, key: &str) -> Result<Timestamp, Fail> {
    raw.parse()
        .map_err(|e| Fail::Corrupt(format!("{table} row `{key}`: timestamp `{raw}`: {e}")))
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
        let store = Sqlite::open(&StoreLocation::Memory).unwrap();
        let err = store
            .call::<(), _>("crash on purpose", |_| panic!("boom"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Task { .. }), "{err:?}");
        // The mutex is now poisoned: later calls report it instead of panicking.
        let err = store.load_states(None).await.unwrap_err();
        assert!(matches!(err, StoreError::Poisoned { .. }), "{err:?}");
        assert!(err.to_string().contains("restart farewatch"));
    }

    #[test]
    fn an_unsupported_url_is_shown_without_its_password() {
        let err = StoreLocation::parse("mysql://app:hunter2@db.example/fw").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("db.example"), "{msg}");
        let pg = StoreLocation::parse("postgres://app:hunter2@db.example/fw").unwrap();
        for shown in [pg.to_string(), format!("{pg:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("db.example/fw"), "{shown}");
        }
    }
}
