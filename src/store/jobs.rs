//! Search jobs: the job, its chunks (the queue) and its results. The
//! [`Jobs`] trait is the backends' half; [`Store`] methods are the typed API.
//!
//! Schema (version 6, `migrations/*/0006_search_jobs.sql`):
//! - `search_jobs`: the job's spec (a [`crate::search::SearchSpec`] in
//!   JSON), owner (an API user, or none from the CLI), [`JobState`],
//!   `total` combinations and the progress (`done` = `found` + no fare +
//!   `failed`), timestamps, the last error, and the standing watch made from
//!   it (`watch`, `watch_id`).
//! - `search_chunks`: the job's combination indexes cut into ranges, each
//!   `available`, `running` (claimed: `lease_token`, `lease_until`,
//!   `locked_by`), `done` or `cancelled`.
//! - `search_results`: one row per combination looked up, keyed by
//!   (`job_id`, `combo`), indexed on (`job_id`, `price_minor`) for paging
//!   by price.
//!
//! # The queue
//! A worker claims chunks with [`Store::claim_chunks`]: on PostgreSQL,
//! `FOR UPDATE SKIP LOCKED`, so workers never wait for or take each other's
//! rows; on SQLite, the single writer serialises claims. Each claim gets a
//! fresh lease token and lasts [`LEASE`]; the worker extends its leases
//! every [`HEARTBEAT`] ([`Store::extend_leases`]). A chunk whose lease ran
//! out (its worker died or hung) is claimed again by the next worker that
//! asks, with a new token. [`Store::commit_chunk`] writes the chunk's
//! results, marks it done and adds to the job's progress in one
//! transaction, **after** checking that the chunk is still `running` under
//! the caller's token: a worker whose lease was taken over commits nothing
//! ([`ChunkCommit::Lost`]), so a combination is stored once and progress is
//! exact, whatever the interleaving.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use super::{Store, StoreError};
use crate::domain::Money;

/// How long a claim lasts without a heartbeat: a worker that dies has its
/// chunks taken over by others this long after its last heartbeat.
pub const LEASE: SignedDuration = SignedDuration::from_secs(30);

/// How often a worker extends its leases (a third of [`LEASE`], so two
/// missed heartbeats still leave it the chunk).
pub const HEARTBEAT: SignedDuration = SignedDuration::from_secs(10);

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created; no worker has claimed any of it yet.
    Pending,
    /// Being worked on (or waiting for a worker to take over a lapsed claim).
    Running,
    /// Stopped by its foreground run (Ctrl-C); `search --resume` continues it.
    Interrupted,
    /// Every combination looked up.
    Completed,
    /// Stopped by an error it cannot get past (a provider's daily budget
    /// spent, say); `last_error` says which; resumable.
    Failed,
    /// Cancelled: nothing more is looked up; results so far are kept.
    Cancelled,
}

impl JobState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses what [`JobState::as_str`] wrote.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "interrupted" => Self::Interrupted,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether workers may take (more of) it.
    pub fn is_claimable(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    /// Whether it is over for good (completed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (see [`crate::search::new_job_id`]).
    pub id: String,
    /// The API user it belongs to; `None` from the CLI.
    pub owner_id: Option<i64>,
    /// The canonical spec, JSON.
    pub spec: String,
    /// Make a standing watch of its cheapest combination once complete.
    pub watch: bool,
    /// [`JobState::Pending`] (for workers) or [`JobState::Running`] (run
    /// at once by the process creating it).
    pub state: JobState,
    /// Its combinations.
    pub total: u64,
    /// Its chunks: combination index ranges `[first, end)`, in order.
    pub chunks: Vec<(u64, u64)>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// Its owner (an API user's id), if any.
    pub owner_id: Option<i64>,
    /// The canonical spec, JSON.
    pub spec: String,
    /// Whether a standing watch is made from it.
    pub watch: bool,
    /// The standing watch made from it, once made.
    pub watch_id: Option<i64>,
    /// Where it is.
    pub state: JobState,
    /// Combinations in all.
    pub total: u64,
    /// Combinations looked up (found + no fare + failed).
    pub done: u64,
    /// Of those, with a fare.
    pub found: u64,
    /// Of those, whose lookup failed.
    pub failed: u64,
    /// The last error that stopped it, or the last lookup error.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When a worker first claimed some of it.
    pub started_at: Option<Timestamp>,
    /// When results were last committed (the last checkpoint).
    pub checkpoint_at: Option<Timestamp>,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A chunk a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedChunk {
    /// The job.
    pub job_id: String,
    /// The chunk's number within the job.
    pub chunk: u32,
    /// First combination index.
    pub first: u64,
    /// One past the last combination index.
    pub end: u64,
    /// The claim's token: commits must show it.
    pub lease_token: String,
}

/// One combination looked up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobResult {
    /// Its index in the job's expansion.
    pub combo: u64,
    /// Origin (IATA).
    pub origin: String,
    /// Destination (IATA).
    pub destination: String,
    /// Departure date.
    pub depart: Date,
    /// Return date, for a round trip.
    pub return_date: Option<Date>,
    /// The cheapest fare; `None` when no fare was found or the lookup failed.
    pub price: Option<Money>,
    /// The airline(s), where the provider says.
    pub airline: Option<String>,
    /// Stops on the outbound, where the provider says.
    pub stops: Option<u8>,
    /// Outbound travel time in minutes, where the provider says.
    pub duration_minutes: Option<u32>,
    /// The provider that answered.
    pub source: Option<String>,
    /// `low`, `typical`, `high` or `unknown` (see [`crate::verdict`]).
    pub verdict: Option<String>,
    /// A booking or search link, where the provider gives one.
    pub link: Option<String>,
    /// Why the lookup failed, if it did.
    pub error: Option<String>,
    /// When it was looked up.
    pub fetched_at: Timestamp,
}

/// What [`Store::commit_chunk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCommit {
    /// Committed; the job's progress after it.
    Committed {
        /// Combinations looked up so far.
        done: u64,
        /// Whether this commit completed the job.
        completed: bool,
    },
    /// The claim was no longer the caller's (its lease lapsed and another
    /// worker took the chunk, or the job was cancelled or interrupted):
    /// nothing was written.
    Lost,
}

/// How [`Store::job_results`] orders a page.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResultOrder {
    /// Cheapest first (combinations without a fare last), then by index.
    #[default]
    Price,
    /// By departure, then return date, then price.
    Date,
}

/// A state change of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTransition {
    /// Stop it for good; chunks not done are cancelled.
    Cancel,
    /// Stopped by its foreground run: the chunks `holder` claimed are
    /// released, and the job waits for `search --resume`.
    Interrupt {
        /// The run's holder name.
        holder: String,
    },
    /// `search --resume`: an interrupted or failed job runs again.
    Resume,
    /// Stopped by an error it cannot get past; the chunks `holder` claimed
    /// are released, so a resume takes them up.
    Fail {
        /// The run's holder name.
        holder: String,
        /// Why.
        error: String,
    },
}

impl JobTransition {
    /// The states the job may be in for the change to apply.
    pub fn from_states(&self) -> &'static [JobState] {
        use JobState::*;
        match self {
            Self::Cancel => &[Pending, Running, Interrupted, Failed],
            Self::Interrupt { .. } | Self::Fail { .. } => &[Pending, Running],
            Self::Resume => &[Interrupted, Failed, Pending, Running],
        }
    }

    /// The state it moves the job to.
    pub fn to_state(&self) -> JobState {
        match self {
            Self::Cancel => JobState::Cancelled,
            Self::Interrupt { .. } => JobState::Interrupted,
            Self::Resume => JobState::Running,
            Self::Fail { .. } => JobState::Failed,
        }
    }
}

/// The backends' half of the jobs tables; each method is documented on the
/// [`Store`] method of the same name.
#[allow(missing_docs)]
#[async_trait]
pub trait Jobs: Send + Sync + 'static {
    async fn create_job(&self, job: &NewJob, now: Timestamp) -> Result<(), StoreError>;
    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    async fn jobs(&self, owner_id: Option<i64>, limit: u32) -> Result<Vec<JobRecord>, StoreError>;
    async fn claim_chunks(
        &self,
        holder: &str,
        only_job: Option<&str>,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ClaimedChunk>, StoreError>;
    async fn extend_leases(&self, holder: &str, now: Timestamp) -> Result<u64, StoreError>;
    async fn lease_holders(&self) -> Result<Vec<String>, StoreError>;
    async fn release_chunks(&self, holder: &str) -> Result<u64, StoreError>;
    async fn commit_chunk(
        &self,
        chunk: &ClaimedChunk,
        results: &[JobResult],
        now: Timestamp,
    ) -> Result<ChunkCommit, StoreError>;
    async fn transition_job(
        &self,
        id: &str,
        change: &JobTransition,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError>;
    async fn job_results(
        &self,
        id: &str,
        order: ResultOrder,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<JobResult>, StoreError>;
    async fn set_job_watch(&self, id: &str, watch_id: i64) -> Result<bool, StoreError>;
}

impl Store {
    /// Creates a job and its chunks in one transaction.
    pub async fn create_job(&self, job: &NewJob, now: Timestamp) -> Result<(), StoreError> {
        self.backend.create_job(job, now).await
    }

    /// The job `id`, if it exists.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.backend.job(id).await
    }

    /// The newest `limit` jobs, newest first: `owner_id`'s, or every job
    /// when `None`.
    pub async fn jobs(
        &self,
        owner_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.backend.jobs(owner_id, limit).await
    }

    /// Claims up to `limit` chunks for `holder`, oldest job first: chunks
    /// `available`, or `running` under a lease that ran out at `now` or
    /// held by one of `take_over` (holders known to be dead), of jobs that
    /// are pending or running (only `only_job`'s when given). Each claim
    /// gets a new token and a lease until `now + LEASE`; the job becomes
    /// `running`.
    pub async fn claim_chunks(
        &self,
        holder: &str,
        only_job: Option<&str>,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ClaimedChunk>, StoreError> {
        self.backend
            .claim_chunks(holder, only_job, take_over, limit, now)
            .await
    }

    /// Extends every lease `holder` has to `now + LEASE`; how many.
    pub async fn extend_leases(&self, holder: &str, now: Timestamp) -> Result<u64, StoreError> {
        self.backend.extend_leases(holder, now).await
    }

    /// The holders of running chunks (to find dead ones to take over).
    pub async fn lease_holders(&self) -> Result<Vec<String>, StoreError> {
        self.backend.lease_holders().await
    }

    /// Gives back every chunk `holder` has (a worker shutting down), so
    /// others claim them at once rather than after the lease; how many.
    pub async fn release_chunks(&self, holder: &str) -> Result<u64, StoreError> {
        self.backend.release_chunks(holder).await
    }

    /// Commits `chunk`'s `results`: stored (once per combination), the
    /// chunk done and the job's progress counted, in one transaction, only
    /// if the chunk is still the caller's (see the module docs). The job
    /// completes with its last chunk.
    pub async fn commit_chunk(
        &self,
        chunk: &ClaimedChunk,
        results: &[JobResult],
        now: Timestamp,
    ) -> Result<ChunkCommit, StoreError> {
        self.backend.commit_chunk(chunk, results, now).await
    }

    /// Applies `change` if the job is in one of its
    /// [`JobTransition::from_states`]; the state it is in afterwards
    /// (unchanged if it could not apply), `None` if there is no such job.
    pub async fn transition_job(
        &self,
        id: &str,
        change: &JobTransition,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError> {
        self.backend.transition_job(id, change, now).await
    }

    /// A page of the job's results in `order`: `limit` rows from `offset`.
    pub async fn job_results(
        &self,
        id: &str,
        order: ResultOrder,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<JobResult>, StoreError> {
        self.backend.job_results(id, order, offset, limit).await
    }

    /// Records the standing watch made from job `id`, unless one already
    /// was; whether this call recorded it.
    pub async fn set_job_watch(&self, id: &str, watch_id: i64) -> Result<bool, StoreError> {
        self.backend.set_job_watch(id, watch_id).await
    }
}
