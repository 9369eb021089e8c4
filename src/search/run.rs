//! The worker: claims chunks, looks their combinations up, commits results.
//!
//! One loop serves both uses: [`Worker::run_job`] (the foreground of
//! `farewatch search`: one job, until it is complete, cancelled, failed or
//! interrupted) and [`Worker::work`] (`farewatch worker` and `serve`'s
//! in-process worker: every job, until shutdown).
//!
//! It keeps enough chunks in flight for the fare sources to reach their
//! concurrency ceiling ([`crate::fare::failover::Failover::max_concurrency`]),
//! so a job's pace is the providers' limit, not the worker's. Each chunk's
//! combinations are looked up through [`Engine::lookup`] (the quote cache,
//! then the providers with their pacing, retries and budgets); the chunk's
//! results, each with its verdict, are committed in one fenced transaction
//! ([`Store::commit_chunk`]); fresh quotes go to the price history.
//! Leases are extended every [`HEARTBEAT`].
//!
//! A lookup that fails is a result with an error (counted as `failed`),
//! except when every source refused for its daily budget or quota: then
//! nothing of the chunk is committed and the job stops as `failed`, to be
//! resumed when the budget is back.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;

use super::{Combination, SearchRequest, SearchSpec, CHUNK_SIZE};
use crate::domain::Currency;
use crate::engine::Engine;
use crate::fare::failover::AllFailed;
use crate::store::jobs::{
    ChunkCommit, ClaimedChunk, JobRecord, JobResult, JobState, JobTransition, HEARTBEAT,
};
use crate::store::{known_dead, PricePoint, RunId, Store, StoreError};
use crate::upstream::UpstreamError;
use crate::verdict;

/// How long an idle worker waits before asking the queue again.
pub const POLL: Duration = Duration::from_secs(1);

/// Receives a job's progress (the CLI draws a bar).
pub trait JobProgress: Send + Sync {
    /// The job's progress after a commit: combinations done, of `total`.
    fn progress(&self, _done: u64, _total: u64) {}
}

/// A [`JobProgress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoJobProgress;
impl JobProgress for NoJobProgress {}

/// How [`Worker::run_job`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Every combination is done.
    Completed,
    /// Cancelled (here or elsewhere).
    Cancelled,
    /// Stopped by an error it cannot get past (the message says which).
    Failed(String),
    /// Shutdown (Ctrl-C) came first: the job is interrupted, resumable.
    Interrupted,
}

/// A worker failed (the store could not be read or written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such job.
    #[error("no search job `{0}`")]
    NoSuchJob(String),
    /// The job's stored spec cannot be read back.
    #[error("search job `{id}` has an unreadable spec: {detail}")]
    BadSpec {
        /// The job.
        id: String,
        /// What is wrong.
        detail: String,
    },
}

/// What looking a chunk up came to.
enum ChunkOutcome {
    /// Results to commit, and the fresh quotes for the price history.
    Looked(Vec<JobResult>, Vec<PricePoint>),
    /// Every source is out of budget or quota: stop the job.
    OutOfBudget(String),
}

/// Claims and works on chunks of search jobs.
#[derive(Debug, Clone)]
pub struct Worker {
    engine: Arc<Engine>,
    store: Store,
    /// The worker's run: its name holds the claims, and dropping the last
    /// clone tells this process's other workers it is gone.
    run: Arc<RunId>,
    /// Called when a job with `watch` completes (see [`super::watch`]).
    on_complete: Option<Arc<dyn OnComplete>>,
}

/// Something to do when a job completes (make its standing watch).
#[async_trait::async_trait]
pub trait OnComplete: Send + Sync + std::fmt::Debug {
    /// `job` has just completed.
    async fn completed(&self, job: &JobRecord);
}

impl Worker {
    /// A worker on `engine`'s fare sources and `store`'s queue.
    pub fn new(engine: Arc<Engine>, store: Store) -> Self {
        let run = Arc::new(RunId::new());
        Self {
            engine,
            store,
            run,
            on_complete: None,
        }
    }

    /// Also runs `hook` for every job this worker completes.
    pub fn on_complete(mut self, hook: Arc<dyn OnComplete>) -> Self {
        self.on_complete = Some(hook);
        self
    }

    /// This worker's name in the queue (`HOST/PID/START/RUN`, a [`RunId`]).
    pub fn holder(&self) -> &str {
        self.run.as_str()
    }

    /// Works on job `id` until it is over, or `shutdown` fires (then the
    /// job is interrupted: its claims are given back and it waits for a
    /// resume). Other workers may share it.
    pub async fn run_job(
        &self,
        id: &str,
        progress: Arc<dyn JobProgress>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<JobEnd, WorkError> {
        let end = self.drive(Some(id), progress, shutdown).await?;
        if end == JobEnd::Interrupted {
            let change = JobTransition::Interrupt {
                holder: self.run.as_str().to_owned(),
            };
            self.store
                .transition_job(id, &change, Timestamp::now())
                .await?;
        }
        Ok(end)
    }

    /// Works on every job in the queue until `shutdown` fires; then gives
    /// back the chunks it holds, so other workers take them at once.
    pub async fn work(&self, shutdown: impl Future<Output = ()>) -> Result<(), WorkError> {
        let result = self
            .drive(None, Arc::new(NoJobProgress), shutdown)
            .await
            .map(drop);
        let released = self.store.release_chunks(self.run.as_str()).await;
        result?;
        released?;
        Ok(())
    }

    /// The loop behind [`Worker::run_job`] and [`Worker::work`].
    async fn drive(
        &self,
        only: Option<&str>,
        progress: Arc<dyn JobProgress>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<JobEnd, WorkError> {
        tokio::pin!(shutdown);
        self.engine.load_provider_state().await;
        // Enough chunks in flight for every source to reach its ceiling.
        let slots = (self.engine.fares().max_concurrency().div_ceil(CHUNK_SIZE) + 1).max(2);
        let mut requests: HashMap<String, Arc<SearchRequest>> = HashMap::new();
        let mut in_flight: FuturesUnordered<BoxFuture<'static, (ClaimedChunk, ChunkOutcome)>> =
            FuturesUnordered::new();
        let mut heartbeat = tokio::time::interval(HEARTBEAT.unsigned_abs());
        heartbeat.tick().await;
        let mut idle = false;
        loop {
            if in_flight.len() < slots {
                let dead = known_dead(&self.store.lease_holders().await?);
                let wanted = u32::try_from(slots - in_flight.len()).unwrap_or(u32::MAX);
                let claimed = self
                    .store
                    .claim_chunks(self.run.as_str(), only, &dead, wanted, Timestamp::now())
                    .await?;
                idle = claimed.is_empty();
                for chunk in claimed {
                    let request = match requests.get(&chunk.job_id) {
                        Some(request) => request.clone(),
                        None => {
                            let request = Arc::new(self.request_of(&chunk.job_id).await?);
                            requests.insert(chunk.job_id.clone(), request.clone());
                            request
                        }
                    };
                    in_flight.push(Box::pin(look_up(
                        self.engine.clone(),
                        self.store.clone(),
                        request,
                        chunk,
                    )));
                }
            }
            if in_flight.is_empty() {
                if let Some(id) = only {
                    let job = self
                        .store
                        .job(id)
                        .await?
                        .ok_or_else(|| WorkError::NoSuchJob(id.to_owned()))?;
                    match job.state {
                        JobState::Completed => return Ok(JobEnd::Completed),
                        JobState::Cancelled => return Ok(JobEnd::Cancelled),
                        JobState::Failed => {
                            return Ok(JobEnd::Failed(job.last_error.unwrap_or_default()))
                        }
                        JobState::Interrupted => return Ok(JobEnd::Interrupted),
                        // Its remaining chunks are held by other workers (or
                        // by a lease that has yet to run out): wait.
                        JobState::Pending | JobState::Running => {}
                    }
                }
            }
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    self.engine.save_provider_state().await;
                    return Ok(JobEnd::Interrupted);
                }
                _ = heartbeat.tick() => {
                    self.store.extend_leases(self.run.as_str(), Timestamp::now()).await?;
                }
                Some((chunk, outcome)) = in_flight.next() => {
                    if let Some(end) = self.settle(only, chunk, outcome, &progress).await? {
                        return Ok(end);
                    }
                }
                () = tokio::time::sleep(POLL), if in_flight.is_empty() || idle => {}
            }
        }
    }

    /// Commits a looked-up chunk (or stops its job); `Some` when the run
    /// of `only` is over.
    async fn settle(
        &self,
        only: Option<&str>,
        chunk: ClaimedChunk,
        outcome: ChunkOutcome,
        progress: &Arc<dyn JobProgress>,
    ) -> Result<Option<JobEnd>, WorkError> {
        let (results, points) = match outcome {
            ChunkOutcome::Looked(results, points) => (results, points),
            ChunkOutcome::OutOfBudget(error) => {
                let change = JobTransition::Fail {
                    holder: self.run.as_str().to_owned(),
                    error: error.clone(),
                };
                self.store
                    .transition_job(&chunk.job_id, &change, Timestamp::now())
                    .await?;
                self.engine.save_provider_state().await;
                tracing::warn!(job = %chunk.job_id, %error, "search job stopped");
                return Ok((only == Some(chunk.job_id.as_str())).then_some(JobEnd::Failed(error)));
            }
        };
        // The history first: a commit that is then lost still saw real prices.
        if let Err(error) = self.store.record_prices(&points).await {
            tracing::warn!(%error, "cannot record the price history of a search chunk");
        }
        match self
            .store
            .commit_chunk(&chunk, &results, Timestamp::now())
            .await?
        {
            ChunkCommit::Lost => {
                tracing::debug!(job = %chunk.job_id, chunk = chunk.chunk, "chunk taken over or job stopped; results dropped");
            }
            ChunkCommit::Committed { done, completed } => {
                if only == Some(chunk.job_id.as_str()) {
                    let total = self
                        .store
                        .job(&chunk.job_id)
                        .await?
                        .map_or(done, |job| job.total);
                    progress.progress(done, total);
                }
                if completed {
                    self.engine.save_provider_state().await;
                    if let (Some(hook), Some(job)) =
                        (&self.on_complete, self.store.job(&chunk.job_id).await?)
                    {
                        hook.completed(&job).await;
                    }
                }
            }
        }
        Ok(None)
    }

    /// The checked request job `id` was stored with.
    async fn request_of(&self, id: &str) -> Result<SearchRequest, WorkError> {
        let job = self
            .store
            .job(id)
            .await?
            .ok_or_else(|| WorkError::NoSuchJob(id.to_owned()))?;
        stored_request(&job).map_err(|detail| WorkError::BadSpec {
            id: id.to_owned(),
            detail,
        })
    }
}

/// The request a stored job was created with. The spec was checked when the
/// job was created; its dates are not checked against today again (a job
/// resumed tomorrow keeps its combinations).
pub fn stored_request(job: &JobRecord) -> Result<SearchRequest, String> {
    let spec: SearchSpec = serde_json::from_str(&job.spec).map_err(|e| e.to_string())?;
    SearchRequest::parse(&spec, jiff::civil::Date::MIN, Currency::EUR).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Whether every source refused for a daily budget or quota: no point
/// going on today.
fn out_of_budget(error: &AllFailed) -> bool {
    !error.attempts.is_empty()
        && error.attempts.iter().all(|(_, e)| {
            matches!(
                e,
                UpstreamError::BudgetSpent(_) | UpstreamError::QuotaExhausted(_)
            )
        })
}

/// Looks up every combination of `chunk` at once (the sources' limits
/// pace them) and turns the answers into results.
async fn look_up(
    engine: Arc<Engine>,
    store: Store,
    request: Arc<SearchRequest>,
    chunk: ClaimedChunk,
) -> (ClaimedChunk, ChunkOutcome) {
    let combos: Vec<Combination> = request.combinations(chunk.first..chunk.end).collect();
    let looked: Vec<_> = futures::stream::iter(combos)
        .map(|combo| {
            let engine = engine.clone();
            async move { (combo, engine.lookup(&combo.key).await) }
        })
        .buffer_unordered(CHUNK_SIZE)
        .collect()
        .await;
    if let Some((_, Err(error))) = looked
        .iter()
        .find(|(_, r)| matches!(r, Err(e) if out_of_budget(e)))
    {
        return (chunk, ChunkOutcome::OutOfBudget(error.to_string()));
    }
    let now = Timestamp::now();
    let since = now.checked_sub(verdict::WINDOW).unwrap_or(Timestamp::MIN);
    let mut results = Vec::with_capacity(looked.len());
    let mut points = Vec::new();
    for (combo, answer) in looked {
        let key = combo.key;
        let mut result = JobResult {
            combo: combo.index,
            origin: key.origin.as_str().to_owned(),
            destination: key.destination.as_str().to_owned(),
            depart: key.depart,
            return_date: key.return_date,
            price: None,
            airline: None,
            stops: None,
            duration_minutes: None,
            source: None,
            verdict: None,
            link: None,
            error: None,
            fetched_at: now,
        };
        match answer {
            Err(error) => result.error = Some(error.to_string()),
            Ok(looked) => {
                if let Some(quote) = looked.quote {
                    if looked.fresh {
                        points.push(PricePoint::from_quote(&key, &quote));
                    }
                    let history = store
                        .price_history(&key.history_key(), since)
                        .await
                        .unwrap_or_default();
                    let verdict =
                        verdict::verdict(quote.price, quote.insights.as_ref(), &history, now);
                    result.verdict = Some(verdict.as_str().to_owned());
                    if let Some(itinerary) = &quote.itinerary {
                        result.airline = itinerary.airline.clone();
                        result.stops = itinerary.stops;
                        result.duration_minutes = itinerary.duration_minutes;
                    }
                    result.price = Some(quote.price);
                    result.source = Some(quote.provider.clone());
                    result.link = quote.link.clone();
                    result.fetched_at = quote.fetched_at;
                }
            }
        }
        results.push(result);
    }
    results.sort_by_key(|r| r.combo);
    (chunk, ChunkOutcome::Looked(results, points))
}
