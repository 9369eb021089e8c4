//! The search jobs tables on this backend. Writes go through
//! [`Sqlite::call`] (the writer thread, each call in its own savepoint, so a
//! claim or a commit is atomic and claims never interleave), reads through
//! [`Sqlite::read`].

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{ts_from_sql, ts_to_sql, Sqlite};
use crate::domain::{Currency, Money};
use crate::store::jobs::{
    ChunkCommit, ClaimedChunk, JobRecord, JobResult, JobState, JobTransition, Jobs, NewJob,
    ResultOrder, LEASE,
};
use crate::store::{to_i64, to_u64, Fail, StoreError};

const JOB_COLUMNS: &str = "id, owner_id, spec, watch, watch_id, state, total, done, found, \
     failed, last_error, created_at, started_at, checkpoint_at, finished_at, updated_at";

const RESULT_COLUMNS: &str = "combo, origin, destination, depart, return_date, price_minor, \
     currency, airline, stops, duration_minutes, source, verdict, link, error, fetched_at";

fn opt_ts(row: &Row<'_>, index: usize, id: &str) -> Result<Option<Timestamp>, Fail> {
    row.get::<_, Option<String>>(index)?
        .map(|raw| ts_from_sql(&raw, "search_jobs", id))
        .transpose()
}

fn job_from_row(row: &Row<'_>) -> Result<JobRecord, Fail> {
    let id: String = row.get(0)?;
    let count = |index: usize, what: &str| {
        to_u64(row.get::<_, i64>(index)?, || {
            format!("search_jobs `{id}` {what}")
        })
    };
    let state: String = row.get(5)?;
    Ok(JobRecord {
        owner_id: row.get(1)?,
        spec: row.get(2)?,
        watch: row.get(3)?,
        watch_id: row.get(4)?,
        state: JobState::parse(&state)
            .ok_or_else(|| Fail::Corrupt(format!("search_jobs `{id}`: state `{state}`")))?,
        total: count(6, "total")?,
        done: count(7, "done")?,
        found: count(8, "found")?,
        failed: count(9, "failed")?,
        last_error: row.get(10)?,
        created_at: ts_from_sql(&row.get::<_, String>(11)?, "search_jobs", &id)?,
        started_at: opt_ts(row, 12, &id)?,
        checkpoint_at: opt_ts(row, 13, &id)?,
        finished_at: opt_ts(row, 14, &id)?,
        updated_at: ts_from_sql(&row.get::<_, String>(15)?, "search_jobs", &id)?,
        id,
    })
}

fn date(raw: &str, what: &str) -> Result<jiff::civil::Date, Fail> {
    raw.parse()
        .map_err(|_| Fail::Corrupt(format!("search_results {what}: `{raw}` is not a date")))
}

fn result_from_row(row: &Row<'_>) -> Result<JobResult, Fail> {
    let combo = to_u64(row.get(0)?, || "search_results combo".into())?;
    let what = format!("combination {combo}");
    let price = match (
        row.get::<_, Option<i64>>(5)?,
        row.get::<_, Option<String>>(6)?,
    ) {
        (Some(minor), Some(currency)) => Some(Money::from_minor(
            minor,
            Currency::parse(&currency).map_err(|e| Fail::Corrupt(format!("{what}: {e}")))?,
        )),
        _ => None,
    };
    Ok(JobResult {
        combo,
        origin: row.get(1)?,
        destination: row.get(2)?,
        depart: date(&row.get::<_, String>(3)?, &what)?,
        return_date: row
            .get::<_, Option<String>>(4)?
            .map(|raw| date(&raw, &what))
            .transpose()?,
        price,
        airline: row.get(7)?,
        stops: row.get(8)?,
        duration_minutes: row.get(9)?,
        source: row.get(10)?,
        verdict: row.get(11)?,
        link: row.get(12)?,
        error: row.get(13)?,
        fetched_at: ts_from_sql(&row.get::<_, String>(14)?, "search_results", &what)?,
    })
}

/// Sets chunks of `holder` in job `id` back to available (a stopped run).
fn release(conn: &Connection, id: &str, holder: &str) -> Result<(), Fail> {
    conn.prepare_cached(
        "UPDATE search_chunks
         SET state = 'available', lease_token = NULL, lease_until = NULL, locked_by = NULL
         WHERE job_id = ?1 AND state = 'running' AND locked_by = ?2",
    )?
    .execute(params![id, holder])?;
    Ok(())
}

#[async_trait]
impl Jobs for Sqlite {
    async fn create_job(&self, job: &NewJob, now: Timestamp) -> Result<(), StoreError> {
        let job = job.clone();
        self.call("create search job", move |conn| {
            let now = ts_to_sql(now);
            conn.prepare_cached(
                "INSERT INTO search_jobs (id, owner_id, spec, watch, state, total, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![
                job.id,
                job.owner_id,
                job.spec,
                job.watch,
                job.state.as_str(),
                to_i64(job.total, "total")?,
                now
            ])?;
            let mut chunk = conn.prepare_cached(
                "INSERT INTO search_chunks (job_id, chunk, first, end_index, state)
                 VALUES (?1, ?2, ?3, ?4, 'available')",
            )?;
            for (n, (first, end)) in job.chunks.iter().enumerate() {
                chunk.execute(params![
                    job.id,
                    n as i64,
                    to_i64(*first, "chunk start")?,
                    to_i64(*end, "chunk end")?
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read("read search job", move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM search_jobs WHERE id = ?1");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![id])?;
            match rows.next()? {
                Some(row) => job_from_row(row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn jobs(&self, owner_id: Option<i64>, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        self.read("list search jobs", move |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM search_jobs
                 WHERE ?1 IS NULL OR owner_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![owner_id, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(job_from_row(row)?);
            }
            Ok(out)
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
        let holder = holder.to_owned();
        let only_job = only_job.map(str::to_owned);
        // A JSON array binds as one parameter, whatever its length.
        let take_over = serde_json::to_string(take_over).unwrap_or_else(|_| "[]".into());
        self.call("claim search chunks", move |conn| {
            let until = ts_to_sql(now.checked_add(LEASE).unwrap_or(Timestamp::MAX));
            let now = ts_to_sql(now);
            let mut stmt = conn.prepare_cached(
                "SELECT c.job_id, c.chunk, c.first, c.end_index
                 FROM search_chunks c JOIN search_jobs j ON j.id = c.job_id
                 WHERE j.state IN ('pending', 'running')
                   AND (?1 IS NULL OR c.job_id = ?1)
                   AND (c.state = 'available'
                        OR (c.state = 'running'
                            AND (c.lease_until < ?2
                                 OR c.locked_by IN (SELECT value FROM json_each(?3)))))
                 ORDER BY j.created_at, c.job_id, c.chunk
                 LIMIT ?4",
            )?;
            let found = stmt
                .query_map(params![only_job, now, take_over, limit], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut claim = conn.prepare_cached(
                "UPDATE search_chunks
                 SET state = 'running', lease_token = ?3, lease_until = ?4, locked_by = ?5,
                     attempts = attempts + 1
                 WHERE job_id = ?1 AND chunk = ?2",
            )?;
            let mut start = conn.prepare_cached(
                "UPDATE search_jobs
                 SET state = 'running', started_at = coalesce(started_at, ?2), updated_at = ?2
                 WHERE id = ?1 AND state IN ('pending', 'running')",
            )?;
            let mut out = Vec::with_capacity(found.len());
            for (job_id, chunk, first, end) in found {
                let token = crate::search::random_token();
                claim.execute(params![job_id, chunk, token, until, holder])?;
                start.execute(params![job_id, now])?;
                out.push(ClaimedChunk {
                    first: to_u64(first, || format!("search_chunks `{job_id}` first"))?,
                    end: to_u64(end, || format!("search_chunks `{job_id}` end"))?,
                    job_id,
                    chunk,
                    lease_token: token,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn extend_leases(&self, holder: &str, now: Timestamp) -> Result<u64, StoreError> {
        let holder = holder.to_owned();
        self.call("extend search leases", move |conn| {
            let until = ts_to_sql(now.checked_add(LEASE).unwrap_or(Timestamp::MAX));
            let n = conn
                .prepare_cached(
                    "UPDATE search_chunks SET lease_until = ?2
                     WHERE locked_by = ?1 AND state = 'running'",
                )?
                .execute(params![holder, until])?;
            Ok(n as u64)
        })
        .await
    }

    async fn lease_holders(&self) -> Result<Vec<String>, StoreError> {
        self.read("read search lease holders", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT locked_by FROM search_chunks
                 WHERE state = 'running' AND locked_by IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn release_chunks(&self, holder: &str) -> Result<u64, StoreError> {
        let holder = holder.to_owned();
        self.call("release search chunks", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE search_chunks
                     SET state = 'available', lease_token = NULL, lease_until = NULL,
                         locked_by = NULL
                     WHERE state = 'running' AND locked_by = ?1",
                )?
                .execute(params![holder])?;
            Ok(n as u64)
        })
        .await
    }

    async fn commit_chunk(
        &self,
        chunk: &ClaimedChunk,
        results: &[JobResult],
        now: Timestamp,
    ) -> Result<ChunkCommit, StoreError> {
        let chunk = chunk.clone();
        let results = results.to_vec();
        self.call("commit search results", move |conn| {
            let now = ts_to_sql(now);
            // The fence first: nothing is written unless the claim is still ours.
            let fenced = conn
                .prepare_cached(
                    "UPDATE search_chunks
                     SET state = 'done', lease_token = NULL, lease_until = NULL
                     WHERE job_id = ?1 AND chunk = ?2 AND lease_token = ?3 AND state = 'running'",
                )?
                .execute(params![chunk.job_id, chunk.chunk, chunk.lease_token])?;
            if fenced == 0 {
                return Ok(ChunkCommit::Lost);
            }
            let sql = format!(
                "INSERT INTO search_results (job_id, {RESULT_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (job_id, combo) DO NOTHING"
            );
            let mut insert = conn.prepare_cached(&sql)?;
            let (mut done, mut found, mut failed) = (0i64, 0i64, 0i64);
            for r in &results {
                let inserted = insert.execute(params![
                    chunk.job_id,
                    to_i64(r.combo, "combination")?,
                    r.origin,
                    r.destination,
                    r.depart.to_string(),
                    r.return_date.map(|d| d.to_string()),
                    r.price.map(|p| p.minor),
                    r.price.map(|p| p.currency.as_str().to_owned()),
                    r.airline,
                    r.stops,
                    r.duration_minutes,
                    r.source,
                    r.verdict,
                    r.link,
                    r.error,
                    ts_to_sql(r.fetched_at),
                ])? as i64;
                done += inserted;
                if r.price.is_some() {
                    found += inserted;
                }
                if r.error.is_some() {
                    failed += inserted;
                }
            }
            let last_error = results.iter().rev().find_map(|r| r.error.clone());
            conn.prepare_cached(
                "UPDATE search_jobs
                 SET done = done + ?2, found = found + ?3, failed = failed + ?4,
                     last_error = coalesce(?5, last_error), checkpoint_at = ?6, updated_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![chunk.job_id, done, found, failed, last_error, now])?;
            let left: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM search_chunks WHERE job_id = ?1 AND state != 'done'",
                )?
                .query_row(params![chunk.job_id], |row| row.get(0))?;
            let completed = left == 0
                && conn
                    .prepare_cached(
                        "UPDATE search_jobs SET state = 'completed', finished_at = ?2
                         WHERE id = ?1 AND state = 'running'",
                    )?
                    .execute(params![chunk.job_id, now])?
                    == 1;
            let done: i64 = conn
                .prepare_cached("SELECT done FROM search_jobs WHERE id = ?1")?
                .query_row(params![chunk.job_id], |row| row.get(0))?;
            Ok(ChunkCommit::Committed {
                done: to_u64(done, || format!("search_jobs `{}` done", chunk.job_id))?,
                completed,
            })
        })
        .await
    }

    async fn transition_job(
        &self,
        id: &str,
        change: &JobTransition,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError> {
        let id = id.to_owned();
        let change = change.clone();
        self.call("change search job", move |conn| {
            let current: Option<String> = conn
                .prepare_cached("SELECT state FROM search_jobs WHERE id = ?1")?
                .query_row(params![id], |row| row.get(0))
                .optional()?;
            let Some(current) = current else {
                return Ok(None);
            };
            let current = JobState::parse(&current)
                .ok_or_else(|| Fail::Corrupt(format!("search_jobs `{id}`: state `{current}`")))?;
            if !change.from_states().contains(&current) {
                return Ok(Some(current));
            }
            let to = change.to_state();
            let now = ts_to_sql(now);
            let (error, finished) = match &change {
                JobTransition::Cancel => (None, Some(now.clone())),
                JobTransition::Interrupt { holder } => {
                    release(conn, &id, holder)?;
                    (None, None)
                }
                JobTransition::Fail { holder, error } => {
                    release(conn, &id, holder)?;
                    (Some(error.clone()), Some(now.clone()))
                }
                JobTransition::Resume => (None, None),
            };
            if change == JobTransition::Cancel {
                conn.prepare_cached(
                    "UPDATE search_chunks
                     SET state = 'cancelled', lease_token = NULL, lease_until = NULL
                     WHERE job_id = ?1 AND state != 'done'",
                )?
                .execute(params![id])?;
            }
            conn.prepare_cached(
                "UPDATE search_jobs
                 SET state = ?2, last_error = coalesce(?3, last_error), finished_at = ?4,
                     updated_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![id, to.as_str(), error, finished, now])?;
            Ok(Some(to))
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
        let id = id.to_owned();
        self.read("read search results", move |conn| {
            let order = match order {
                ResultOrder::Price => "price_minor IS NULL, price_minor, combo",
                ResultOrder::Date => "depart, return_date, price_minor IS NULL, price_minor, combo",
            };
            let sql = format!(
                "SELECT {RESULT_COLUMNS} FROM search_results WHERE job_id = ?1
                 ORDER BY {order} LIMIT ?2 OFFSET ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![id, limit, to_i64(offset, "offset")?])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(result_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_job_watch(&self, id: &str, watch_id: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call("record a search job's watch", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE search_jobs SET watch_id = ?2 WHERE id = ?1 AND watch_id IS NULL",
                )?
                .execute(params![id, watch_id])?;
            Ok(n == 1)
        })
        .await
    }
}
