//! `/jobs`: search jobs through the API (see [`crate::search`]).
//!
//! - `POST /jobs` checks the search (the CLI's rules and caps; each problem
//!   is `{"field", "message"}`) and enqueues it; `201` with the job. A
//!   user's job is theirs; the operator may name a user with `email`, or
//!   own none (then `watch` is refused: a watch needs someone to alert).
//!   An `Idempotency-Key` makes a retry return the same job.
//! - `GET /jobs` (the caller's, newest first), `GET /jobs/{id}` (status,
//!   total and processed combinations, progress, last checkpoint, times),
//!   `GET /jobs/{id}/results?page=&per_page=&sort=price|date`, and
//!   `POST /jobs/{id}/cancel`. Another user's job is 404.
//!
//! Jobs are worked on by `serve`'s in-process worker (SQLite) or by
//! `farewatch worker` processes (PostgreSQL); the API only enqueues.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, FieldError};
use super::idempotency::{self, Request};
use super::users::visible_user;
use super::{bad_path, bad_query, json_body, read_body, AppState};
use crate::search::{self, CreateError, CreateOptions, SearchRequest, SearchSpec};
use crate::store::jobs::{JobRecord, JobResult, JobState, JobTransition, ResultOrder};

/// Most results one page may hold.
pub const MAX_PER_PAGE: u32 = 500;

/// Most jobs `GET /jobs` lists.
pub const LIST_LIMIT: u32 = 100;

/// A search to run: the fields of `farewatch search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    /// Origin airports or cities (IATA), e.g. `["LHR", "LGW"]`.
    pub from: Vec<String>,
    /// Destination airports or cities (IATA).
    pub to: Vec<String>,
    /// Departure date or inclusive range: `2027-03-01..2027-03-07`.
    pub depart: String,
    /// Return date or range (a round trip); exclusive with `nights`.
    #[serde(default, rename = "return")]
    pub return_date: Option<String>,
    /// Nights away, `7` or `5..9` (a round trip); exclusive with `return`.
    #[serde(default)]
    pub nights: Option<String>,
    /// Adult passengers (default 1).
    #[serde(default)]
    pub adults: Option<u8>,
    /// ISO 4217 currency (default `FAREWATCH_CURRENCY`, else EUR).
    #[serde(default)]
    pub currency: Option<String>,
    /// At most this many stops each way.
    #[serde(default)]
    pub max_stops: Option<u8>,
    /// Once complete, watch the cheapest combination (alerts below its price).
    #[serde(default)]
    pub watch: bool,
    /// The operator only: the user the job belongs to.
    #[serde(default)]
    pub email: Option<String>,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// `pending`, `running`, `interrupted`, `completed`, `failed` or `cancelled`.
    pub status: JobState,
    /// The search, as stored (every default explicit).
    pub search: SearchSpec,
    /// Combinations in all.
    pub total: u64,
    /// Combinations looked up so far.
    pub processed: u64,
    /// Of those, with a fare.
    pub found: u64,
    /// Of those, whose lookup failed.
    pub failed: u64,
    /// `processed / total`, 0 to 1.
    pub progress: f64,
    /// Whether a standing watch is made once complete.
    pub watch: bool,
    /// The standing watch made from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_id: Option<i64>,
    /// The last error (a failed lookup, or why the job stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When a worker first took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When results were last committed (the last checkpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<String>,
    /// When it completed, failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When it last changed.
    pub updated_at: String,
}

impl JobView {
    fn of(job: &JobRecord) -> Self {
        let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
        Self {
            id: job.id.clone(),
            status: job.state,
            search: serde_json::from_str(&job.spec).unwrap_or_default(),
            total: job.total,
            processed: job.done,
            found: job.found,
            failed: job.failed,
            progress: if job.total == 0 {
                1.0
            } else {
                job.done as f64 / job.total as f64
            },
            watch: job.watch,
            watch_id: job.watch_id,
            last_error: job.last_error.clone(),
            created_at: job.created_at.to_string(),
            started_at: time(job.started_at),
            last_checkpoint: time(job.checkpoint_at),
            finished_at: time(job.finished_at),
            updated_at: job.updated_at.to_string(),
        }
    }
}

/// The caller's jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first (at most 100).
    pub jobs: Vec<JobView>,
}

/// One combination's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    /// Origin (IATA).
    pub origin: String,
    /// Destination (IATA).
    pub destination: String,
    /// Departure date.
    pub depart: String,
    /// Return date, for a round trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_date: Option<String>,
    /// The cheapest fare (decimal), absent when none was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Its currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The airline(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub airline: Option<String>,
    /// Stops on the outbound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops: Option<u8>,
    /// Outbound travel time, minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<u32>,
    /// The provider that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `low`, `typical`, `high` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// A booking or search link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Why the lookup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was looked up (RFC 3339).
    pub fetched_at: String,
}

impl From<JobResult> for ResultView {
    fn from(r: JobResult) -> Self {
        Self {
            origin: r.origin,
            destination: r.destination,
            depart: r.depart.to_string(),
            return_date: r.return_date.map(|d| d.to_string()),
            price: r.price.map(|p| p.amount_string()),
            currency: r.price.map(|p| p.currency.as_str().to_owned()),
            airline: r.airline,
            stops: r.stops,
            duration_minutes: r.duration_minutes,
            source: r.source,
            verdict: r.verdict,
            link: r.link,
            error: r.error,
            fetched_at: r.fetched_at.to_string(),
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultPage {
    /// The job, as `GET /jobs/{id}` shows it.
    pub job: JobView,
    /// This page, from 1.
    pub page: u64,
    /// Results per page.
    pub per_page: u32,
    /// The order.
    pub sort: ResultOrder,
    /// The results.
    pub results: Vec<ResultView>,
}

/// `GET /jobs/{id}/results`' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Page number, from 1 (default 1).
    pub page: Option<u64>,
    /// Results per page, 1 to 500 (default 50).
    pub per_page: Option<u32>,
    /// `price` (cheapest first, the default) or `date`.
    pub sort: Option<ResultOrder>,
}

/// The job `id` if the caller may see it (their own, or any for the operator).
async fn visible_job(state: &AppState, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    let job = state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    match caller {
        Caller::Operator => Ok(job),
        Caller::User(user) if job.owner_id == Some(user.id) => Ok(job),
        Caller::User(_) => Err(ApiError::not_found("job")),
    }
}

/// Creates a search job.
#[utoipa::path(
    post,
    path = "/jobs",
    request_body = JobInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: a retry with the same key gets the same job")),
    responses(
        (status = 201, description = "Enqueued", body = JobView),
        (status = 400, description = "Bad Idempotency-Key, or malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user (`email`), or not yours", body = ErrorBody),
        (status = 409, description = "The key's request is still running", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields (airports, dates, caps), or the key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "jobs"
)]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let request = Request::new(&method, "/jobs", &headers, &body, false);
    idempotency::run(&state, &caller, request, || async {
        let input: JobInput = json_body(&headers, &body)?;
        let owner = match (&caller, &input.email) {
            (Caller::User(user), None) => Some(user.clone()),
            (_, Some(email)) => Some(visible_user(&state, &caller, email).await?),
            (Caller::Operator, None) => None,
        };
        if input.watch && owner.is_none() {
            return Err(ApiError::invalid_field(
                "watch",
                "a standing watch needs a user to alert: give `email`",
            ));
        }
        let spec = SearchSpec {
            from: input.from,
            to: input.to,
            depart: input.depart,
            return_date: input.return_date,
            nights: input.nights,
            adults: input.adults,
            currency: input.currency,
            max_stops: input.max_stops,
        };
        let request = SearchRequest::parse(
            &spec,
            Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date(),
            super::watches::default_currency(),
        )
        .map_err(|problems| {
            ApiError::invalid(
                problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.field.to_owned(),
                        message: p.message,
                    })
                    .collect(),
            )
        })?;
        let options = CreateOptions {
            owner_id: owner.map(|u| u.id),
            watch: input.watch,
            over_budget: true,
            state: JobState::Pending,
        };
        let job = match search::create_job(&state.store, None, &request, options).await {
            Ok(job) => job,
            Err(CreateError::Store(error)) => return Err(error.into()),
            Err(error) => return Err(ApiError::invalid_field("search", error.to_string())),
        };
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(JobView::of(&job)).unwrap_or_default(),
        ))
    })
    .await
}

/// The caller's jobs, newest first (the operator: everyone's).
#[utoipa::path(
    get,
    path = "/jobs",
    responses(
        (status = 200, description = "OK", body = JobList),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "jobs"
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<JobList>, ApiError> {
    let owner = match &caller {
        Caller::Operator => None,
        Caller::User(user) => Some(user.id),
    };
    let jobs = state.store.jobs(owner, LIST_LIMIT).await?;
    Ok(axum::Json(JobList {
        jobs: jobs.iter().map(JobView::of).collect(),
    }))
}

/// A job: status, progress, last checkpoint, times.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "OK", body = JobView),
        (status = 400, description = "Undecodable path", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such job, or not yours", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "jobs"
)]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<JobView>, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let job = visible_job(&state, &caller, &id).await?;
    Ok(axum::Json(JobView::of(&job)))
}

/// A page of a job's results (partial while it runs).
#[utoipa::path(
    get,
    path = "/jobs/{id}/results",
    params(("id" = String, Path, description = "The job's id"), ResultsQuery),
    responses(
        (status = 200, description = "OK", body = ResultPage),
        (status = 400, description = "Undecodable path or query string", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such job, or not yours", body = ErrorBody),
        (status = 422, description = "Bad page or per_page", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "jobs"
)]
pub async fn job_results(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<axum::Json<ResultPage>, ApiError> {
    let (Path(id), Query(query)) = (id.map_err(bad_path)?, query.map_err(bad_query)?);
    let page = query.page.unwrap_or(1);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::invalid_field("page", "must be 1 to 1000000"));
    }
    let per_page = query.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::invalid_field(
            "per_page",
            format!("must be 1 to {MAX_PER_PAGE}"),
        ));
    }
    let sort = query.sort.unwrap_or_default();
    let job = visible_job(&state, &caller, &id).await?;
    let results = state
        .store
        .job_results(&id, sort, (page - 1) * u64::from(per_page), per_page)
        .await?;
    Ok(axum::Json(ResultPage {
        job: JobView::of(&job),
        page,
        per_page,
        sort,
        results: results.into_iter().map(ResultView::from).collect(),
    }))
}

/// Cancels a job: nothing more is looked up; results so far stay.
#[utoipa::path(
    post,
    path = "/jobs/{id}/cancel",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: a retry with the same key gets the same answer"),
    ),
    responses(
        (status = 200, description = "Cancelled (or it already was)", body = JobView),
        (status = 400, description = "Undecodable path, or bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such job, or not yours", body = ErrorBody),
        (status = 409, description = "The job is already completed, or the key's request is still running", body = ErrorBody),
        (status = 422, description = "The key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "jobs"
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(id) = match id.map_err(bad_path) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let path = format!("/jobs/{id}/cancel");
    let request = Request::new(&method, &path, &headers, &[], false);
    idempotency::run(&state, &caller, request, || async {
        visible_job(&state, &caller, &id).await?;
        let now = Timestamp::now();
        match state
            .store
            .transition_job(&id, &JobTransition::Cancel, now)
            .await?
        {
            None => return Err(ApiError::not_found("job")),
            Some(JobState::Cancelled) => {}
            Some(other) => {
                return Err(ApiError::conflict(
                    "job_over",
                    format!("the job is {other}; only a job not yet over can be cancelled"),
                ))
            }
        }
        let job = visible_job(&state, &caller, &id).await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(JobView::of(&job)).unwrap_or_default(),
        ))
    })
    .await
}
