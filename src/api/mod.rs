//! `farewatch serve`: the HTTP API for many users, on the same store as the
//! cycles.
//!
//! - [`auth`]: bearer tokens (the operator's, and one per user, stored
//!   hashed) and a request rate per caller;
//! - [`idempotency`]: `Idempotency-Key` on state-changing requests;
//! - [`users`]: the accounts routes;
//! - [`watches`]: each user's fare and flight watches, validated by the
//!   sheet's own parsers and run by the cycles with the sheet's rows;
//! - [`history`]: a fare watch's price history, verdict and chart;
//! - [`interests`], [`flights`] and [`airports`]: airports users follow,
//!   and the statistics the [`crate::collector`] gathers from OpenSky;
//! - [`jobs`]: search jobs (enqueue, status, results, cancel);
//! - [`error`]: JSON errors `{"error", "message", "fields"}`.
//!
//! Every route is registered through utoipa's `routes!`, so
//! `GET /openapi.json` lists them all with their bodies and errors. Bodies
//! are capped at [`BODY_LIMIT`], requests at [`REQUEST_TIMEOUT`]; the
//! `Authorization` header is marked sensitive and never logged.

pub mod airports;
pub mod auth;
pub mod error;
pub mod flights;
pub mod history;
pub mod idempotency;
pub mod interests;
pub mod jobs;
pub mod users;
pub mod watches;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::{Store, TokenHash};
use auth::RateLimiter;
use error::ApiError;

/// Largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Longest a request may take (503 after it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// How the API is set up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The operator's token (`FAREWATCH_API_TOKEN`): full access.
    pub operator_token: Option<SecretString>,
    /// Requests a second per caller (0: unlimited).
    pub rate_per_sec: f64,
    /// Requests a caller may send at once before the rate applies.
    pub burst: u32,
}

impl ApiConfig {
    /// `FAREWATCH_API_TOKEN`, `FAREWATCH_API_RATE_LIMIT` (requests a second
    /// per caller, 0 = unlimited) and `FAREWATCH_API_BURST`.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        let defaults = Self::default();
        let rate_per_sec: f64 = env
            .parse(
                "FAREWATCH_API_RATE_LIMIT",
                "a number of requests per second",
            )?
            .unwrap_or(defaults.rate_per_sec);
        if rate_per_sec < 0.0 || !rate_per_sec.is_finite() {
            return Err(crate::config::ConfigError::invalid(
                "FAREWATCH_API_RATE_LIMIT",
                "must be 0 (unlimited) or more",
            ));
        }
        Ok(Self {
            operator_token: env
                .get("FAREWATCH_API_TOKEN")
                .map(|t| SecretString::from(t.to_owned())),
            rate_per_sec,
            burst: env
                .parse("FAREWATCH_API_BURST", "a whole number of requests")?
                .unwrap_or(defaults.burst),
        })
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            operator_token: None,
            rate_per_sec: 20.0,
            burst: 40,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// SHA-256 of the operator's token.
    operator: Option<TokenHash>,
    limiter: Arc<RateLimiter>,
    /// Where `POST /interests` asks for an airport to be collected now.
    collector: Option<crate::collector::Trigger>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("operator", &self.operator.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The API's state over `store`.
    pub fn new(store: Store, config: &ApiConfig) -> Self {
        Self {
            store,
            operator: config
                .operator_token
                .as_ref()
                .map(|t| auth::hash_token(t.expose_secret())),
            limiter: Arc::new(RateLimiter::new(config.rate_per_sec, config.burst)),
            collector: None,
        }
    }

    /// The same state, with the airport collector's trigger (see
    /// [`crate::collector::spawn_collector`]); without one, new interests
    /// wait for the collector's next pass.
    pub fn with_collector(mut self, trigger: crate::collector::Trigger) -> Self {
        self.collector = Some(trigger);
        self
    }

    /// The airport collector's trigger, when one is set.
    pub fn collector(&self) -> Option<&crate::collector::Trigger> {
        self.collector.as_ref()
    }
}

/// Why the API will not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Listening beyond this machine needs an operator token.
    #[error(
        "refusing to serve on {0} without FAREWATCH_API_TOKEN: anyone who can reach it \
         could create users; set the operator token, or listen on 127.0.0.1"
    )]
    NoTokenOffLoopback(SocketAddr),
    /// The address cannot be listened on.
    #[error("--addr {addr}: cannot listen there: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A setting is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Checks the settings, listens on `addr` and starts serving `store` (with
/// the airport collector beside it when OpenSky is configured) until
/// `shutdown()` resolves. Returns the bound address and the server's task.
pub async fn start<S, F>(
    addr: SocketAddr,
    env: &crate::config::Env,
    store: Store,
    shutdown: S,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), ServeError>
where
    S: Fn() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let config = ApiConfig::from_env(env)?;
    check_exposure(addr, &config)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let mut state = AppState::new(store.clone(), &config);
    if let Some(trigger) = crate::collector::start(&store, env, shutdown())? {
        state = state.with_collector(trigger);
    }
    Ok((bound, tokio::spawn(serve(listener, state, shutdown()))))
}

/// Refuses a non-loopback address without an operator token.
pub fn check_exposure(addr: SocketAddr, config: &ApiConfig) -> Result<(), ServeError> {
    if !addr.ip().is_loopback() && config.operator_token.is_none() {
        return Err(ServeError::NoTokenOffLoopback(addr));
    }
    Ok(())
}

/// The API's routes and their OpenAPI document.
pub fn router(state: AppState) -> (Router, OpenApi) {
    let (api, mut spec) = OpenApiRouter::new()
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user, users::delete_user))
        .routes(routes!(interests::add_interest, interests::remove_interest))
        .routes(routes!(interests::list_interests))
        .routes(routes!(flights::list_flights))
        .routes(routes!(flights::average_flights))
        .routes(routes!(flights::last_flight))
        .routes(routes!(watches::create_watch, watches::list_watches))
        .routes(routes!(watches::get_watch, watches::delete_watch))
        .routes(routes!(history::watch_history))
        .routes(routes!(history::watch_history_svg))
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::job_results))
        .routes(routes!(jobs::cancel_job))
        .with_state(state)
        .split_for_parts();
    spec.info.title = "farewatch".into();
    spec.info.version = env!("CARGO_PKG_VERSION").into();
    spec.info.description = Some("Fare and flight alerts for many users.".into());
    let components = spec.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let document = Arc::new(spec.to_json().unwrap_or_default());
    let app = api
        .route("/ping", axum::routing::get(|| async { "pong\n" }))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        (*document).clone(),
                    )
                }
            }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(bounded))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]));
    (app, spec)
}

/// Serves the API on `listener` until `shutdown`, then lets requests in
/// flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(reap_keys(state.store.clone()));
    let (app, _) = router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    reaper.abort();
    served
}

/// How often expired idempotency keys are purged.
const REAP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Purges idempotency keys older than [`idempotency::KEY_LIFETIME`] now and
/// then every [`REAP_EVERY`]; a failure is logged and retried next time.
async fn reap_keys(store: Store) {
    let mut every = tokio::time::interval(REAP_EVERY);
    loop {
        every.tick().await;
        if let Err(error) = purge_expired_keys(&store, jiff::Timestamp::now()).await {
            tracing::warn!(%error, "cannot purge expired idempotency keys");
        }
    }
}

/// Deletes the keys that expired by `now`; returns how many.
pub async fn purge_expired_keys(
    store: &Store,
    now: jiff::Timestamp,
) -> Result<u64, crate::store::StoreError> {
    let lifetime = jiff::SignedDuration::try_from(idempotency::KEY_LIFETIME)
        .unwrap_or(jiff::SignedDuration::from_hours(24));
    store
        .purge_idempotency_keys(now.checked_sub(lifetime).unwrap_or(now))
        .await
}

/// Bounds every request by [`REQUEST_TIMEOUT`] (a JSON 503 after it).
async fn bounded(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; try again",
        )
        .into_response(),
    }
}

/// A path axum could not decode (bad percent-encoding): a JSON 400.
pub(crate) fn bad_path(rejection: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::bad_request("malformed_path", rejection.body_text())
}

/// A query string axum could not decode (a number that is not one): a JSON 400.
pub(crate) fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request("malformed_query", rejection.body_text())
}

/// The body, or 413 past [`BODY_LIMIT`] (400 if it could not be read).
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is over {} KiB", BODY_LIMIT / 1024),
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

/// Parses a JSON body: 415 when it is not `application/json`, 400 when it is
/// not JSON, 422 when a field is missing, unknown or of the wrong type.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => {
                let message = error.to_string();
                // serde names the field in backticks: "missing field `email`".
                let field = message.split('`').nth(1).unwrap_or("body").to_owned();
                let text = message
                    .split(" at line")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                ApiError::invalid_field(&field, text)
            }
            _ => ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {error}"),
            ),
        }
    })
}
