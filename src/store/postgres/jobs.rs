//! The search jobs tables on this backend. Each write is its own short
//! transaction on the pool (not the writer task's batches: a claim must
//! not wait behind a batch, and a commit must stand or fall alone with its
//! fence). Claims use `FOR UPDATE SKIP LOCKED`, so workers in other
//! processes never take or wait for each other's rows.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Acquire, Row};

use super::{ts, ts_opt, Postgres};
use crate::domain::{Currency, Money};
use crate::store::jobs::{
    ChunkCommit, ClaimedChunk, JobRecord, JobResult, JobState, JobTransition, Jobs, NewJob,
    ResultOrder, LEASE,
};
use crate::store::{to_i64, to_u64, Fail, StoreError};

// Macros, not constants: sqlx takes only static SQL, and `concat!` only literals.
macro_rules! job_columns {
    () => {
        "id, owner_id, spec, watch, watch_id, state, total, done, found, failed, last_error, \
         created_at, started_at, checkpoint_at, finished_at, updated_at"
    };
}

macro_rules! result_columns {
    () => {
        "combo, origin, destination, depart, return_date, price_minor, currency, airline, stops, \
         duration_minutes, source, verdict, link, error, fetched_at"
    };
}

fn count(row: &PgRow, column: &str, id: &str) -> Result<u64, Fail> {
    to_u64(row.try_get(column)?, || {
        format!("search_jobs `{id}` {column}")
    })
}

fn job_from_row(row: &PgRow) -> Result<JobRecord, Fail> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        owner_id: row.try_get("owner_id")?,
        spec: row.try_get("spec")?,
        watch: row.try_get("watch")?,
        watch_id: row.try_get("watch_id")?,
        state: JobState::parse(&state)
            .ok_or_else(|| Fail::Corrupt(format!("search_jobs `{id}`: state `{state}`")))?,
        total: count(row, "total", &id)?,
        done: count(row, "done", &id)?,
        found: count(row, "found", &id)?,
        failed: count(row, "failed", &id)?,
        last_error: row.try_get("last_error")?,
        created_at: ts(row, "created_at")?,
        started_at: ts_opt(row, "started_at")?,
        checkpoint_at: ts_opt(row, "checkpoint_at")?,
        finished_at: ts_opt(row, "finished_at")?,
        updated_at: ts(row, "updated_at")?,
        id,
    })
}

fn date(raw: &str, what: &str) -> Result<jiff::civil::Date, Fail> {
    raw.parse()
        .map_err(|_| Fail::Corrupt(format!("search_results {what}: `{raw}` is not a date")))
}

fn result_from_row(row: &PgRow) -> Result<JobResult, Fail> {
    let combo = to_u64(row.try_get("combo")?, || "search_results combo".into())?;
    let what = format!("combination {combo}");
    let minor: Option<i64> = row.try_get("price_minor")?;
    let currency: Option<String> = row.try_get("currency")?;
    let price = match (minor, currency) {
        (Some(minor), Some(currency)) => Some(Money::from_minor(
            minor,
            Currency::parse(&currency).map_err(|e| Fail::Corrupt(format!("{what}: {e}")))?,
        )),
        _ => None,
    };
    let small = |column: &str| -> Result<Option<i32>, Fail> { Ok(row.try_get(column)?) };
    Ok(JobResult {
        combo,
        origin: row.try_get("origin")?,
        destination: row.try_get("destination")?,
        depart: date(&row.try_get::<String, _>("depart")?, &what)?,
        return_date: row
            .try_get::<Option<String>, _>("return_date")?
            .map(|raw| date(&raw, &what))
            .transpose()?,
        price,
        airline: row.try_get("airline")?,
        stops: small("stops")?.and_then(|s| u8::try_from(s).ok()),
        duration_minutes: small("duration_minutes")?.and_then(|d| u32::try_from(d).ok()),
        source: row.try_get("source")?,
        verdict: row.try_get("verdict")?,
        link: row.try_get("link")?,
        error: row.try_get("error")?,
        fetched_at: ts(row, "fetched_at")?,
    })
}

/// Sets chunks of `holder` in job `id` back to available (a stopped run).
async fn release(conn: &mut PgConnection, id: &str, holder: &str) -> Result<(), Fail> {
    sqlx::query(
        "UPDATE search_chunks
         SET state = 'available', lease_token = NULL, lease_until = NULL, locked_by = NULL
         WHERE job_id = $1 AND state = 'running' AND locked_by = $2",
    )
    .bind(id)
    .bind(holder)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Postgres {
    /// Runs `work` in a transaction of its own; committed if it succeeds.
    async fn job_tx<T, F>(&self, op: &'static str, work: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut PgConnection) -> Result<T, Fail>,
    {
        let run = async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await.map_err(|e| Fail::Commit(e.to_string()))?;
            Ok(value)
        };
        run.await
            .map_err(|fail: Fail| fail.into_error(self.db.clone(), op))
    }
}

#[async_trait]
impl Jobs for Postgres {
    async fn create_job(&self, job: &NewJob, now: Timestamp) -> Result<(), StoreError> {
        let total = to_i64(job.total, "total")
            .map_err(|f| f.into_error(self.db.clone(), "create search job"))?;
        self.job_tx("create search job", async |conn: &mut PgConnection| {
            sqlx::query(
                "INSERT INTO search_jobs
                         (id, owner_id, spec, watch, state, total, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&job.id)
            .bind(job.owner_id)
            .bind(&job.spec)
            .bind(job.watch)
            .bind(job.state.as_str())
            .bind(total)
            .bind(now.to_sqlx())
            .execute(&mut *conn)
            .await?;
            let mut numbers = Vec::with_capacity(job.chunks.len());
            let mut firsts = Vec::with_capacity(job.chunks.len());
            let mut ends = Vec::with_capacity(job.chunks.len());
            for (n, (first, end)) in job.chunks.iter().enumerate() {
                numbers.push(i32::try_from(n).map_err(|_| {
                    Fail::OutOfRange(format!("{} chunks in one job", job.chunks.len()))
                })?);
                firsts.push(to_i64(*first, "chunk start")?);
                ends.push(to_i64(*end, "chunk end")?);
            }
            sqlx::query(
                "INSERT INTO search_chunks (job_id, chunk, first, end_index, state)
                     SELECT $1, * , 'available'
                     FROM unnest($2::int[], $3::bigint[], $4::bigint[])",
            )
            .bind(&job.id)
            .bind(numbers)
            .bind(firsts)
            .bind(ends)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
        .await
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.read("read search job", async {
            let sql = concat!("SELECT ", job_columns!(), " FROM search_jobs WHERE id = $1");
            sqlx::query(sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(job_from_row)
                .transpose()
        })
        .await
    }

    async fn jobs(&self, owner_id: Option<i64>, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        self.read("list search jobs", async {
            let sql = concat!(
                "SELECT ",
                job_columns!(),
                " FROM search_jobs
                 WHERE $1::bigint IS NULL OR owner_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            );
            sqlx::query(sql)
                .bind(owner_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(job_from_row)
                .collect()
        })
        .await
    }

    async fn claim_chunks(
        &self,
        holder: &str,
        only_job: Option<&str>,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ClaimedChunk>, StoreError> {
        let until = now.checked_add(LEASE).unwrap_or(Timestamp::MAX);
        let tokens: Vec<String> = (0..limit).map(|_| crate::search::random_token()).collect();
        self.job_tx("claim search chunks", async |conn: &mut PgConnection| {
            {
                // River's claim: pick with SKIP LOCKED, then update what was
                // picked; each claimed row gets its own token.
                let rows = sqlx::query(
                    "WITH locked AS (
                         SELECT c.job_id, c.chunk, j.created_at
                         FROM search_chunks c JOIN search_jobs j ON j.id = c.job_id
                         WHERE j.state IN ('pending', 'running')
                           AND ($1::text IS NULL OR c.job_id = $1)
                           AND (c.state = 'available'
                                OR (c.state = 'running'
                                    AND (c.lease_until < $2 OR c.locked_by = ANY($3))))
                         ORDER BY j.created_at, c.job_id, c.chunk
                         LIMIT $4
                         FOR UPDATE OF c SKIP LOCKED
                     ),
                     picked AS (
                         SELECT job_id, chunk,
                                row_number() OVER (ORDER BY created_at, job_id, chunk) AS n
                         FROM locked
                     )
                     UPDATE search_chunks c
                     SET state = 'running', lease_token = ($5::text[])[picked.n],
                         lease_until = $6, locked_by = $7, attempts = c.attempts + 1
                     FROM picked
                     WHERE c.job_id = picked.job_id AND c.chunk = picked.chunk
                     RETURNING c.job_id, c.chunk, c.first, c.end_index, c.lease_token",
                )
                .bind(only_job)
                .bind(now.to_sqlx())
                .bind(take_over)
                .bind(i64::from(limit))
                .bind(&tokens)
                .bind(until.to_sqlx())
                .bind(holder)
                .fetch_all(&mut *conn)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let job_id: String = row.try_get("job_id")?;
                    let chunk: i32 = row.try_get("chunk")?;
                    out.push(ClaimedChunk {
                        first: to_u64(row.try_get("first")?, || {
                            format!("search_chunks `{job_id}` first")
                        })?,
                        end: to_u64(row.try_get("end_index")?, || {
                            format!("search_chunks `{job_id}` end")
                        })?,
                        chunk: u32::try_from(chunk).map_err(|_| {
                            Fail::Corrupt(format!("search_chunks `{job_id}` chunk {chunk}"))
                        })?,
                        lease_token: row.try_get("lease_token")?,
                        job_id,
                    });
                }
                out.sort_by(|a, b| (&a.job_id, a.chunk).cmp(&(&b.job_id, b.chunk)));
                let mut started: Vec<&str> = out.iter().map(|c| c.job_id.as_str()).collect();
                started.dedup();
                // After the chunks: every writer locks chunks before their job.
                sqlx::query(
                    "UPDATE search_jobs
                     SET state = 'running', started_at = coalesce(started_at, $2), updated_at = $2
                     WHERE id = ANY($1) AND state IN ('pending', 'running')",
                )
                .bind(&started)
                .bind(now.to_sqlx())
                .execute(&mut *conn)
                .await?;
                Ok(out)
            }
        })
        .await
    }

    async fn extend_leases(&self, holder: &str, now: Timestamp) -> Result<u64, StoreError> {
        let until = now.checked_add(LEASE).unwrap_or(Timestamp::MAX);
        self.job_tx("extend search leases", async |conn: &mut PgConnection| {
            let done = sqlx::query(
                "UPDATE search_chunks SET lease_until = $2
                     WHERE locked_by = $1 AND state = 'running'",
            )
            .bind(holder)
            .bind(until.to_sqlx())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn lease_holders(&self) -> Result<Vec<String>, StoreError> {
        self.read("read search lease holders", async {
            let rows = sqlx::query(
                "SELECT DISTINCT locked_by FROM search_chunks
                 WHERE state = 'running' AND locked_by IS NOT NULL",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| Ok(row.try_get::<String, _>(0)?))
                .collect()
        })
        .await
    }

    async fn release_chunks(&self, holder: &str) -> Result<u64, StoreError> {
        self.job_tx("release search chunks", async |conn: &mut PgConnection| {
            let done = sqlx::query(
                "UPDATE search_chunks
                 SET state = 'available', lease_token = NULL, lease_until = NULL, locked_by = NULL
                 WHERE state = 'running' AND locked_by = $1",
            )
            .bind(holder)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn commit_chunk(
        &self,
        chunk: &ClaimedChunk,
        results: &[JobResult],
        now: Timestamp,
    ) -> Result<ChunkCommit, StoreError> {
        self.job_tx("commit search results", async |conn: &mut PgConnection| {
            {
                // The fence first: nothing is written unless the claim is
                // still ours. It also locks the chunk row until commit.
                let fenced = sqlx::query(
                    "UPDATE search_chunks
                     SET state = 'done', lease_token = NULL, lease_until = NULL
                     WHERE job_id = $1 AND chunk = $2 AND lease_token = $3 AND state = 'running'",
                )
                .bind(&chunk.job_id)
                .bind(chunk.chunk as i32)
                .bind(&chunk.lease_token)
                .execute(&mut *conn)
                .await?;
                if fenced.rows_affected() == 0 {
                    return Ok(ChunkCommit::Lost);
                }
                let sql = concat!(
                    "INSERT INTO search_results (job_id, ",
                    result_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                     ON CONFLICT (job_id, combo) DO NOTHING"
                );
                let (mut done, mut found, mut failed) = (0i64, 0i64, 0i64);
                for r in results {
                    let inserted = sqlx::query(sql)
                        .bind(&chunk.job_id)
                        .bind(to_i64(r.combo, "combination")?)
                        .bind(&r.origin)
                        .bind(&r.destination)
                        .bind(r.depart.to_string())
                        .bind(r.return_date.map(|d| d.to_string()))
                        .bind(r.price.map(|p| p.minor))
                        .bind(r.price.map(|p| p.currency.as_str().to_owned()))
                        .bind(&r.airline)
                        .bind(r.stops.map(i32::from))
                        .bind(r.duration_minutes.and_then(|d| i32::try_from(d).ok()))
                        .bind(&r.source)
                        .bind(&r.verdict)
                        .bind(&r.link)
                        .bind(&r.error)
                        .bind(r.fetched_at.to_sqlx())
                        .execute(&mut *conn)
                        .await?
                        .rows_affected() as i64;
                    done += inserted;
                    if r.price.is_some() {
                        found += inserted;
                    }
                    if r.error.is_some() {
                        failed += inserted;
                    }
                }
                let last_error = results.iter().rev().find_map(|r| r.error.clone());
                // Locks the job row: commits of one job's chunks run one
                // after the other from here, so the count below sees every
                // chunk committed before this one.
                let row = sqlx::query(
                    "UPDATE search_jobs
                     SET done = done + $2, found = found + $3, failed = failed + $4,
                         last_error = coalesce($5, last_error), checkpoint_at = $6, updated_at = $6
                     WHERE id = $1
                     RETURNING done",
                )
                .bind(&chunk.job_id)
                .bind(done)
                .bind(found)
                .bind(failed)
                .bind(last_error)
                .bind(now.to_sqlx())
                .fetch_one(&mut *conn)
                .await?;
                let done = to_u64(row.try_get("done")?, || {
                    format!("search_jobs `{}` done", chunk.job_id)
                })?;
                let left: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM search_chunks WHERE job_id = $1 AND state != 'done'",
                )
                .bind(&chunk.job_id)
                .fetch_one(&mut *conn)
                .await?;
                let completed = left == 0
                    && sqlx::query(
                        "UPDATE search_jobs SET state = 'completed', finished_at = $2
                         WHERE id = $1 AND state = 'running'",
                    )
                    .bind(&chunk.job_id)
                    .bind(now.to_sqlx())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                        == 1;
                Ok(ChunkCommit::Committed { done, completed })
            }
        })
        .await
    }

    async fn transition_job(
        &self,
        id: &str,
        change: &JobTransition,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError> {
        self.job_tx("change search job", async |conn: &mut PgConnection| {
            {
                // Chunks before the job row, as every other writer does.
                match change {
                    JobTransition::Cancel => {
                        sqlx::query(
                            "UPDATE search_chunks
                             SET state = 'cancelled', lease_token = NULL, lease_until = NULL
                             WHERE job_id = $1 AND state != 'done'
                               AND EXISTS (SELECT 1 FROM search_jobs
                                           WHERE id = $1 AND state = ANY($2))",
                        )
                        .bind(id)
                        .bind(states(change))
                        .execute(&mut *conn)
                        .await?;
                    }
                    JobTransition::Interrupt { holder } | JobTransition::Fail { holder, .. } => {
                        release(conn, id, holder).await?;
                    }
                    JobTransition::Resume => {}
                }
                let current: Option<String> =
                    sqlx::query_scalar("SELECT state FROM search_jobs WHERE id = $1 FOR UPDATE")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(current) = current else {
                    return Ok(None);
                };
                let current = JobState::parse(&current).ok_or_else(|| {
                    Fail::Corrupt(format!("search_jobs `{id}`: state `{current}`"))
                })?;
                if !change.from_states().contains(&current) {
                    return Ok(Some(current));
                }
                let (error, finished) = match change {
                    JobTransition::Cancel => (None, Some(now)),
                    JobTransition::Fail { error, .. } => (Some(error.as_str()), Some(now)),
                    JobTransition::Interrupt { .. } | JobTransition::Resume => (None, None),
                };
                let to = change.to_state();
                sqlx::query(
                    "UPDATE search_jobs
                     SET state = $2, last_error = coalesce($3, last_error), finished_at = $4,
                         updated_at = $5
                     WHERE id = $1",
                )
                .bind(id)
                .bind(to.as_str())
                .bind(error)
                .bind(finished.map(|t| t.to_sqlx()))
                .bind(now.to_sqlx())
                .execute(&mut *conn)
                .await?;
                Ok(Some(to))
            }
        })
        .await
    }

    async fn job_results(
        &self,
        id: &str,
        order: ResultOrder,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<JobResult>, StoreError> {
        self.read("read search results", async {
            let sql = match order {
                ResultOrder::Price => concat!(
                    "SELECT ",
                    result_columns!(),
                    " FROM search_results WHERE job_id = $1
                     ORDER BY price_minor NULLS LAST, combo LIMIT $2 OFFSET $3"
                ),
                ResultOrder::Date => concat!(
                    "SELECT ",
                    result_columns!(),
                    " FROM search_results WHERE job_id = $1
                     ORDER BY depart, return_date NULLS FIRST, price_minor NULLS LAST, combo
                     LIMIT $2 OFFSET $3"
                ),
            };
            sqlx::query(sql)
                .bind(id)
                .bind(i64::from(limit))
                .bind(to_i64(offset, "offset")?)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(result_from_row)
                .collect()
        })
        .await
    }

    async fn set_job_watch(&self, id: &str, watch_id: i64) -> Result<bool, StoreError> {
        self.job_tx(
            "record a search job's watch",
            async |conn: &mut PgConnection| {
                let done = sqlx::query(
                    "UPDATE search_jobs SET watch_id = $2 WHERE id = $1 AND watch_id IS NULL",
                )
                .bind(id)
                .bind(watch_id)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() == 1)
            },
        )
        .await
    }
}

/// The states `change` applies from, as text for `= ANY($n)`.
fn states(change: &JobTransition) -> Vec<&'static str> {
    change.from_states().iter().map(|s| s.as_str()).collect()
}
