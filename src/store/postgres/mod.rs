//! The shared backend: PostgreSQL through sqlx (runtime-checked queries, so
//! building needs no database), a bounded pool, and one writer task that
//! commits writes in batches (see the [`super`] docs).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::{
    pending_migrations, state_from_row, to_u64, Backend, DbError, Fail, Intent, IntentOutcome,
    IntentStatus, RunId, SentRecord, StoreError, MAX_BATCH, SCHEMA_VERSION,
};
use crate::rules::AlertState;

mod accounts;
mod fleet;
mod jobs;
mod price_history;
mod write;

use write::{Done, Write};

/// Connections a process opens to PostgreSQL at most: one for the writer
/// task, the rest for reads.
pub const POSTGRES_POOL: u32 = 8;

/// How long a call waits for a free connection, or for the server to answer
/// a new one, before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Migrations, in order: `MIGRATIONS[n]` takes `farewatch_schema.version`
/// from `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_suppressed.sql"),
    include_str!("../../../migrations/postgres/0003_claims.sql"),
    include_str!("../../../migrations/postgres/0004_accounts.sql"),
    include_str!("../../../migrations/postgres/0005_price_history.sql"),
    include_str!("../../../migrations/postgres/0006_search_jobs.sql"),
    include_str!("../../../migrations/postgres/0007_fleet.sql"),
    include_str!("../../../migrations/postgres/0008_fleet_sync.sql"),
    include_str!("../../../migrations/postgres/0009_outbox_key_range.sql"),
];

/// The advisory lock key migrations hold, so two processes starting on a new
/// database do not both create it ("farewatc" in ASCII).
const MIGRATION_LOCK: i64 = 0x6661_7265_7761_7463;

/// The PostgreSQL backend.
pub(super) struct Postgres {
    pool: PgPool,
    /// Feeds the writer task.
    writes: mpsc::UnboundedSender<Job>,
    found_version: i64,
    commits: Arc<AtomicU64>,
    /// The URL, password redacted, for messages.
    db: String,
}

/// One write waiting for the writer task.
struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Done, Fail>>,
}

impl Postgres {
    /// Connects, migrates and starts the writer task.
    pub(super) async fn open(url: &super::PostgresUrl) -> Result<Self, StoreError> {
        let db = url.to_string();
        let connect_err = |source| StoreError::Connect {
            db: db.clone(),
            source: DbError::Postgres(source),
        };
        let options: PgConnectOptions = url.expose().parse().map_err(connect_err)?;
        // One connection first: a server that is down or refuses the login
        // is reported at once, where the pool would retry until its timeout.
        let first = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            .map_err(connect_err)?;
        first.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_POOL)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        let found_version = migrate(&pool, &db).await?;
        let commits = Arc::new(AtomicU64::new(0));
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool.clone(), queue, commits.clone()));
        Ok(Self {
            pool,
            writes,
            found_version,
            commits,
            db,
        })
    }

    /// Queues `write` for the writer task and waits until its batch commits.
    async fn write(&self, op: &'static str, write: Write) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Task {
            db: self.db.clone(),
            op,
            detail: "the database writer stopped".into(),
        };
        self.writes
            .send(Job { write, reply })
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|fail| fail.into_error(self.db.clone(), op))
    }

    /// Runs a read on a pooled connection.
    async fn read<T>(
        &self,
        op: &'static str,
        query: impl std::future::Future<Output = Result<T, Fail>>,
    ) -> Result<T, StoreError> {
        query
            .await
            .map_err(|fail| fail.into_error(self.db.clone(), op))
    }
}

/// The writer task: a batch is the first write waiting plus every write that
/// queued behind it, up to [`MAX_BATCH`]. Ends when the backend is dropped.
async fn writer(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Job>, commits: Arc<AtomicU64>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&pool, batch, &commits).await;
    }
}

/// Runs `batch` in one transaction and answers each caller after the commit.
/// If the database refuses any of it (a deadlock with another process, a
/// dropped connection), nothing of it is kept and each write is run again in
/// its own transaction, so one bad write cannot fail the others.
async fn run_batch(pool: &PgPool, batch: Vec<Job>, commits: &AtomicU64) {
    if batch.len() > 1 {
        match together(pool, &batch).await {
            Ok(results) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
                return;
            }
            Err(error) => {
                tracing::debug!(%error, writes = batch.len(), "batch refused; running its writes one by one");
            }
        }
    }
    for job in batch {
        let result = alone(pool, &job.write).await;
        if result.is_ok() {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        let _ = job.reply.send(result);
    }
}

/// Every write of `batch` in one transaction; an error means none was kept.
/// A write refused for a reason of its own (an unknown intent key) changes
/// nothing and does not end the batch.
async fn together(pool: &PgPool, batch: &[Job]) -> Result<Vec<Result<Done, Fail>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match job.write.apply(&mut tx).await {
            Err(Fail::Sql(DbError::Postgres(error))) => return Err(error),
            other => results.push(other),
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// One write in its own transaction.
async fn alone(pool: &PgPool, write: &Write) -> Result<Done, Fail> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let done = write.apply(&mut tx).await?;
    tx.commit().await.map_err(|e| Fail::Commit(e.to_string()))?;
    Ok(done)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, under an
/// advisory lock. Returns the version the database had (0 for a new one).
async fn migrate(pool: &PgPool, db: &str) -> Result<i64, StoreError> {
    let open_err = |source| StoreError::Open {
        db: db.to_owned(),
        source: DbError::Postgres(source),
    };
    let mut tx = pool.begin().await.map_err(open_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(open_err)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS farewatch_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(open_err)?;
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM farewatch_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(open_err)?;
    let found = found.unwrap_or(0);
    let pending = pending_migrations(MIGRATIONS, found, db)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    for (version, sql) in pending {
        let migrate_err = |source| StoreError::Migrate {
            db: db.to_owned(),
            version,
            source: DbError::Postgres(source),
        };
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(migrate_err)?;
    }
    sqlx::query("DELETE FROM farewatch_schema")
        .execute(&mut *tx)
        .await
        .map_err(open_err)?;
    sqlx::query("INSERT INTO farewatch_schema (version) VALUES ($1)")
        .bind(SCHEMA_VERSION)
        .execute(&mut *tx)
        .await
        .map_err(open_err)?;
    tx.commit().await.map_err(|source| StoreError::Migrate {
        db: db.to_owned(),
        version: SCHEMA_VERSION,
        source: DbError::Postgres(source),
    })?;
    tracing::info!(
        db,
        from = found,
        to = SCHEMA_VERSION,
        "state database migrated"
    );
    Ok(found)
}

/// A `TIMESTAMPTZ` column as a [`Timestamp`].
fn ts(row: &PgRow, column: &str) -> Result<Timestamp, Fail> {
    Ok(row.try_get::<jiff_sqlx::Timestamp, _>(column)?.to_jiff())
}

/// A nullable `TIMESTAMPTZ` column.
fn ts_opt(row: &PgRow, column: &str) -> Result<Option<Timestamp>, Fail> {
    Ok(row
        .try_get::<Option<jiff_sqlx::Timestamp>, _>(column)?
        .map(|t| t.to_jiff()))
}

/// An intent from an outbox row (`key`, `route_id`, `seq`, `recipient`,
/// `channel`, `body`, `created_at`).
fn intent_from_row(row: &PgRow) -> Result<Intent, Fail> {
    let key: String = row.try_get("key")?;
    let seq = to_u64(row.try_get("seq")?, || format!("outbox row `{key}` seq"))?;
    Ok(Intent {
        route_id: row.try_get("route_id")?,
        seq,
        recipient: row.try_get("recipient")?,
        channel: row.try_get("channel")?,
        body: row.try_get("body")?,
        created_at: ts(row, "created_at")?,
        key,
    })
}

/// Every pending row with its claim, oldest first.
async fn read_pending(
    conn: &mut PgConnection,
) -> Result<Vec<(Intent, Option<String>, Option<Timestamp>)>, Fail> {
    let rows = sqlx::query(
        "SELECT key, route_id, seq, recipient, channel, body, created_at, claimed_by, claimed_at
         FROM outbox WHERE status = 'pending'
         ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                intent_from_row(row)?,
                row.try_get("claimed_by")?,
                ts_opt(row, "claimed_at")?,
            ))
        })
        .collect()
}

#[async_trait]
impl Backend for Postgres {
    async fn load_states(
        &self,
        only: Option<&[String]>,
    ) -> Result<HashMap<String, AlertState>, StoreError> {
        self.read("load alert states", async {
            let rows = sqlx::query(
                "SELECT route_id, last_alerted_minor, last_alerted_currency,
                        last_alerted_at, alerts_sent
                 FROM alert_state
                 WHERE $1::text[] IS NULL OR route_id = ANY($1)",
            )
            .bind(only)
            .fetch_all(&self.pool)
            .await?;
            let mut states = HashMap::with_capacity(rows.len());
            for row in &rows {
                let route_id: String = row.try_get("route_id")?;
                let state = state_from_row(
                    &route_id,
                    row.try_get("last_alerted_minor")?,
                    row.try_get("last_alerted_currency")?,
                    ts_opt(row, "last_alerted_at")?,
                    row.try_get("alerts_sent")?,
                )?;
                states.insert(route_id, state);
            }
            Ok(states)
        })
        .await
    }

    async fn save_state(&self, route_id: &str, state: &AlertState) -> Result<(), StoreError> {
        let write = Write::SaveState {
            route_id: route_id.to_owned(),
            state: state.clone(),
        };
        self.write("save alert state", write).await.map(drop)
    }

    async fn open_intent(&self, intent: &Intent, run: &RunId) -> Result<IntentStatus, StoreError> {
        let write = Write::OpenIntent {
            intent: intent.clone(),
            run: run.as_str().to_owned(),
        };
        match self.write("open alert intent", write).await? {
            Done::Status(status) => Ok(status),
            other => Err(other.unexpected(&self.db, "open alert intent")),
        }
    }

    async fn claim_pending(&self, run: &RunId) -> Result<Vec<Intent>, StoreError> {
        let write = Write::ClaimPending {
            run: run.as_str().to_owned(),
        };
        match self.write("claim pending intents", write).await? {
            Done::Intents(intents) => Ok(intents),
            other => Err(other.unexpected(&self.db, "claim pending intents")),
        }
    }

    async fn finish_intent(
        &self,
        key: &str,
        outcome: &IntentOutcome,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let write = Write::Finish {
            key: key.to_owned(),
            outcome: outcome.clone(),
            completes: completes.map(|(route, state)| (route.to_owned(), state.clone())),
        };
        self.write(outcome.op(), write).await.map(drop)
    }

    async fn unfinished_alerts(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.read("read unfinished alerts", async {
            let rows = sqlx::query(
                "SELECT o.route_id, MAX(o.seq) AS seq
                 FROM outbox o LEFT JOIN alert_state s ON s.route_id = o.route_id
                 WHERE o.seq > COALESCE(s.alerts_sent, 0)
                 GROUP BY o.route_id",
            )
            .fetch_all(&self.pool)
            .await?;
            let mut out = HashMap::with_capacity(rows.len());
            for row in &rows {
                let route_id: String = row.try_get("route_id")?;
                let seq = to_u64(row.try_get("seq")?, || {
                    format!("outbox route `{route_id}` seq")
                })?;
                out.insert(route_id, seq);
            }
            Ok(out)
        })
        .await
    }

    async fn close_alert(
        &self,
        route_id: &str,
        seq: u64,
        reason: &str,
        state: &AlertState,
        run: &RunId,
    ) -> Result<Option<usize>, StoreError> {
        let write = Write::CloseAlert {
            route_id: route_id.to_owned(),
            seq,
            reason: reason.to_owned(),
            state: state.clone(),
            run: run.as_str().to_owned(),
        };
        match self.write("close unfinished alert", write).await? {
            Done::Closed(sent) => Ok(sent),
            other => Err(other.unexpected(&self.db, "close unfinished alert")),
        }
    }

    async fn suppress(
        &self,
        route_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let write = Write::Suppress {
            route_id: route_id.to_owned(),
            recipient: recipient.to_owned(),
            reason: reason.to_owned(),
        };
        self.write("suppress recipient", write).await.map(drop)
    }

    async fn suppressed(&self) -> Result<HashSet<(String, String)>, StoreError> {
        self.read("read suppressed recipients", async {
            let rows = sqlx::query("SELECT route_id, recipient FROM suppressed")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get("route_id")?, row.try_get("recipient")?)))
                .collect()
        })
        .await
    }

    async fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.read("read pending intents", async {
            let mut conn = self.pool.acquire().await?;
            Ok(read_pending(&mut conn)
                .await?
                .into_iter()
                .map(|(intent, _, _)| intent)
                .collect())
        })
        .await
    }

    async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("read sent log", async {
            let rows = sqlx::query(
                "SELECT key, route_id, recipient, body, message_id, updated_at
                 FROM outbox WHERE status = 'sent'
                 ORDER BY updated_at DESC, id DESC
                 LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(SentRecord {
                        key: row.try_get("key")?,
                        route_id: row.try_get("route_id")?,
                        recipient: row.try_get("recipient")?,
                        body: row.try_get("body")?,
                        message_id: row
                            .try_get::<Option<String>, _>("message_id")?
                            .unwrap_or_default(),
                        sent_at: ts(row, "updated_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read("read a saved value", async {
            let value: Option<String> = sqlx::query_scalar(
                "SELECT value FROM kv
                 WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(key)
            .bind(Timestamp::now().to_sqlx())
            .fetch_optional(&self.pool)
            .await?;
            Ok(value)
        })
        .await
    }

    async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let write = Write::KvPut {
            key: key.to_owned(),
            value: value.to_owned(),
            expires_at,
            drop_expired: false,
        };
        self.write("save a value", write).await.map(drop)
    }

    async fn load_token(&self, key: &str) -> Result<Option<(String, Timestamp)>, StoreError> {
        self.read("load cached token", async {
            // A token without an expiry is not something we write; ignore it.
            let row = sqlx::query(
                "SELECT value, expires_at FROM kv
                 WHERE key = $1 AND expires_at IS NOT NULL AND expires_at > $2",
            )
            .bind(key)
            .bind(Timestamp::now().to_sqlx())
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| Ok((row.try_get("value")?, ts(&row, "expires_at")?)))
                .transpose()
        })
        .await
    }

    async fn save_token(
        &self,
        key: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let write = Write::KvPut {
            key: key.to_owned(),
            value: token.to_owned(),
            expires_at: Some(expires_at),
            drop_expired: true,
        };
        self.write("save cached token", write).await.map(drop)
    }

    fn found_version(&self) -> i64 {
        self.found_version
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}
