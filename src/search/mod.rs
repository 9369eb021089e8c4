//! Search jobs: every airport × every date of a flexible search, looked up
//! under the providers' limits, with progress, checkpoints and resume.
//!
//! - [`request`]: the search as written ([`SearchSpec`]) and checked
//!   ([`SearchRequest`]): caps, field errors, and the expansion into
//!   [`Combination`]s, each named by a stable index and produced lazily.
//! - [`create_job`]: checks a spec against the caps and the providers'
//!   budgets ([`Estimate`]) and stores the job, cut into chunks.
//! - [`run`]: the worker: claims chunks from the store's queue
//!   ([`crate::store::jobs`]), looks their combinations up (quote cache
//!   first, then the providers through the upstream layer), and commits
//!   each chunk's results and progress in one fenced transaction.
//!
//! # Where jobs run
//! `farewatch search` creates a job and works on it in the foreground. With
//! SQLite, `farewatch serve` runs a worker in-process for the API's jobs;
//! with PostgreSQL, `serve` only enqueues and `farewatch worker` processes
//! (any number, on any machine) share the work. A combination is looked up
//! at least once and stored exactly once; a worker that dies loses at most
//! the chunks it held, which others take over after [`LEASE`] (at once when
//! the dead worker ran on the same machine).
//!
//! [`LEASE`]: crate::store::jobs::LEASE

pub mod request;
pub mod run;
pub mod watch;

use jiff::Timestamp;

use crate::engine::Engine;
use crate::store::jobs::{JobRecord, JobState, NewJob};
use crate::store::{Store, StoreError};
pub use request::{Back, Combination, SearchRequest, SearchSpec, SpecProblem, MAX_COMBINATIONS};

/// Combinations per chunk: the unit a worker claims and commits. Small, so
/// a crash repeats little (and what it repeats comes from the quote cache).
pub const CHUNK_SIZE: usize = 8;

/// 16 random bytes in hex: lease tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // The system's CSPRNG does not fail on supported platforms; a zero
    // token would still be unique per claim through the (job, chunk) key.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new job id: `job_` and 10 characters of lower-case base 32 (50 bits).
pub fn new_job_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    let id: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("job_{id}")
}

/// The request's combinations cut into chunks of [`CHUNK_SIZE`] valid
/// combinations each, as index ranges `[first, end)`.
pub fn chunks(request: &SearchRequest) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut current: Option<(u64, u64, usize)> = None;
    for combo in request.combinations(0..request.space()) {
        match &mut current {
            Some((_, end, n)) if *n < CHUNK_SIZE => {
                *end = combo.index + 1;
                *n += 1;
            }
            _ => {
                if let Some((first, end, _)) = current.take() {
                    out.push((first, end));
                }
                current = Some((combo.index, combo.index + 1, 1));
            }
        }
    }
    if let Some((first, end, _)) = current {
        out.push((first, end));
    }
    out
}

/// What a job will cost, before it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Combinations: one lookup each, less what the quote cache answers.
    pub combinations: u64,
    /// Paid searches left today across the fare sources, when every source
    /// has a daily budget (`None`: at least one is unlimited).
    pub budget_left: Option<u64>,
    /// The sources' steady request rate, per second, when every source
    /// has a known one (`None`: unpaced).
    pub rate_per_sec: Option<f64>,
}

impl Estimate {
    /// The estimate for `request` on `engine`'s fare sources.
    pub fn new(request: &SearchRequest, engine: &Engine) -> Self {
        let pools = engine.fares().pools();
        let budget_left = pools
            .iter()
            .map(|p| p.budget().map(|b| b.remaining()))
            .sum::<Option<u64>>();
        let rate_per_sec = pools
            .iter()
            .map(|p| Some(p.limits().rate_per_sec).filter(|r| r.is_finite() && *r > 0.0))
            .sum::<Option<f64>>();
        Self {
            combinations: request.total(),
            budget_left,
            rate_per_sec,
        }
    }

    /// Why the job should not start without a `--yes`: it needs more
    /// searches than the budgets have left today.
    pub fn refusal(&self) -> Option<String> {
        let left = self.budget_left?;
        (self.combinations > left).then(|| {
            format!(
                "this search has {} combinations (one provider search each, less what the \
                 quote cache answers) but the fare sources' daily budgets have {left} searches \
                 left today; narrow it, raise the budgets, or pass --yes to start anyway (it \
                 stops, resumable, when the budget runs out)",
                self.combinations
            )
        })
    }

    /// The shortest time the job can take at the sources' rate, if known.
    pub fn least_duration(&self) -> Option<std::time::Duration> {
        let rate = self.rate_per_sec?;
        Some(std::time::Duration::from_secs_f64(
            self.combinations as f64 / rate,
        ))
    }
}

/// A job that could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The spec has problems (each named by its field).
    #[error("{}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<SpecProblem>),
    /// More combinations than the budgets allow today (and no `--yes`).
    #[error("{0}")]
    OverBudget(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a job is created.
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    /// Its owner (an API user's id), if any.
    pub owner_id: Option<i64>,
    /// Make a standing watch of its cheapest combination once complete.
    pub watch: bool,
    /// Start even if it needs more searches than the budgets have left.
    pub over_budget: bool,
    /// `Running` (the caller works on it at once) or `Pending` (workers).
    pub state: JobState,
}

/// Checks `request` against the budgets of `engine`'s fare sources (when
/// there is an engine: `serve` without fare sources only enqueues) and
/// stores it as a job, its chunks included; the stored job.
pub async fn create_job(
    store: &Store,
    engine: Option<&Engine>,
    request: &SearchRequest,
    options: CreateOptions,
) -> Result<JobRecord, CreateError> {
    if let (false, Some(engine)) = (options.over_budget, engine) {
        if let Some(refusal) = Estimate::new(request, engine).refusal() {
            return Err(CreateError::OverBudget(refusal));
        }
    }
    let id = new_job_id();
    let spec = serde_json::to_string(&request.to_spec()).unwrap_or_default();
    let job = NewJob {
        id: id.clone(),
        owner_id: options.owner_id,
        spec,
        watch: options.watch,
        state: options.state,
        total: request.total(),
        chunks: chunks(request),
    };
    store.create_job(&job, Timestamp::now()).await?;
    store.job(&id).await?.ok_or_else(|| {
        CreateError::Store(StoreError::Task {
            db: store.location().to_string(),
            op: "create search job",
            detail: "the job was not there after it was created".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn chunks_cover_every_combination_once_in_order() {
        let spec = SearchSpec {
            from: vec!["LHR".into(), "JFK".into()],
            to: vec!["JFK".into(), "EWR".into()],
            depart: "2027-03-01..2027-03-05".into(),
            nights: Some("2..4".into()),
            ..SearchSpec::default()
        };
        let request =
            SearchRequest::parse(&spec, "2027-01-01".parse().unwrap(), Currency::EUR).unwrap();
        let chunks = chunks(&request);
        let mut seen = Vec::new();
        for (first, end) in &chunks {
            let inside: Vec<u64> = request
                .combinations(*first..*end)
                .map(|c| c.index)
                .collect();
            assert!(!inside.is_empty() && inside.len() <= CHUNK_SIZE);
            seen.extend(inside);
        }
        let all: Vec<u64> = request
            .combinations(0..request.space())
            .map(|c| c.index)
            .collect();
        assert_eq!(seen, all);
        assert_eq!(all.len() as u64, request.total());
        assert_eq!(request.total(), 3 * 5 * 3);
    }

    #[test]
    fn job_ids_and_tokens_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| new_job_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids
            .iter()
            .all(|id| id.len() == 14 && id.starts_with("job_")));
        assert_ne!(random_token(), random_token());
    }
}
