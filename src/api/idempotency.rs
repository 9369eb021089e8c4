//! `Idempotency-Key`: a state-changing request sent twice with the same key
//! runs once, and the second gets the first's answer.
//!
//! The key (1 to 255 visible ASCII characters) is stored per caller with a
//! fingerprint of the request (SHA-256 of method, path and body) and,
//! once the request has run, its status and body. A key is **claimed** in a
//! short transaction of its own (of many concurrent claims one wins), then
//! the request runs, then its answer is stored:
//! - a completed key is replayed (same status and body, and the header
//!   `Idempotent-Replayed: true`), without running anything;
//! - a key whose request is still running answers 409 with `Retry-After: 1`;
//! - a key used for a different request answers 422;
//! - validation failures (400, 422) and server errors (5xx) are not stored:
//!   the key is released and a corrected retry runs;
//! - a request that died between claim and answer (a crash) leaves its key
//!   locked; after [`STALE_AFTER`] a retry takes the key over and runs.
//!
//! Keys are kept [`KEY_LIFETIME`] (24 hours) and then purged; a key reused
//! after that starts a new request.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::store::KeyClaim;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The header on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// How long a key is kept.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A key locked longer than this belongs to a request that died: three
/// request timeouts, so a live request never loses its key.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// A state-changing request's answer: its status and JSON body.
pub type Answer = Result<(StatusCode, serde_json::Value), ApiError>;

/// The request's key, if any; `required` turns a missing one into a 400.
fn key(headers: &HeaderMap, required: bool) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return if required {
            Err(ApiError::bad_request(
                "idempotency_key_required",
                "this request needs an Idempotency-Key header (1 to 255 characters, e.g. a UUID)",
            ))
        } else {
            Ok(None)
        };
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// SHA-256 of the method, path and body: what a key is bound to.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update([0]);
    hash.update(path.as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().into()
}

/// Whether an answer is final for its key: successes and definite refusals
/// (404, 409) are replayed; validation failures and server errors are not.
fn is_stored(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::BAD_REQUEST
        || status == StatusCode::UNPROCESSABLE_ENTITY
        || status == StatusCode::TOO_MANY_REQUESTS)
}

/// The request that [`run`] guards.
#[derive(Debug)]
pub struct Request<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its path.
    pub path: &'a str,
    /// Its headers (for the key).
    pub headers: &'a HeaderMap,
    /// Its raw body.
    pub body: &'a [u8],
    /// Whether the key is required.
    pub required: bool,
}

impl<'a> Request<'a> {
    /// A request to guard.
    pub fn new(
        method: &'a Method,
        path: &'a str,
        headers: &'a HeaderMap,
        body: &'a [u8],
        required: bool,
    ) -> Self {
        Self {
            method,
            path,
            headers,
            body,
            required,
        }
    }
}

/// Runs `work` at most once per key (see the module docs).
pub async fn run<W, F>(state: &AppState, caller: &Caller, request: Request<'_>, work: W) -> Response
where
    W: FnOnce() -> F,
    F: Future<Output = Answer>,
{
    let key = match key(request.headers, request.required) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    let Some(key) = key else {
        return respond(work().await);
    };
    let scope = caller.scope();
    let print = fingerprint(request.method, request.path, request.body);
    let now = jiff::Timestamp::now();
    let claim = match state
        .store
        .claim_idempotency_key(&scope, &key, &print, now, STALE_AFTER)
        .await
    {
        Ok(claim) => claim,
        Err(error) => return ApiError::from(error).into_response(),
    };
    match claim {
        KeyClaim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        KeyClaim::InProgress => {
            let mut error = ApiError::conflict(
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            );
            error.retry_after = Some(1);
            error.into_response()
        }
        KeyClaim::Mismatch => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
        )
        .into_response(),
        KeyClaim::Proceed => {
            let answer = work().await;
            let (status, body) = match &answer {
                Ok((status, body)) => (*status, body.to_string()),
                Err(error) => (
                    error.status,
                    serde_json::to_string(&error.body).unwrap_or_default(),
                ),
            };
            let stored = if is_stored(status) {
                state
                    .store
                    .complete_idempotency_key(&scope, &key, status.as_u16(), &body)
                    .await
            } else {
                state.store.release_idempotency_key(&scope, &key).await
            };
            if let Err(error) = stored {
                // The work is done; the key stays locked until it is stale.
                tracing::warn!(%error, "cannot store the answer for an idempotency key");
            }
            respond(answer)
        }
    }
}

fn respond(answer: Answer) -> Response {
    match answer {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_fingerprints_cover_method_path_and_body() {
        let mut headers = HeaderMap::new();
        assert!(key(&headers, false).unwrap().is_none());
        assert_eq!(
            key(&headers, true).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        headers.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(key(&headers, true).unwrap().as_deref(), Some("abc-123"));
        headers.insert(HEADER, HeaderValue::from_str(&"k".repeat(256)).unwrap());
        assert!(key(&headers, true).is_err());
        let a = fingerprint(&Method::POST, "/users", b"{}");
        assert_ne!(a, fingerprint(&Method::POST, "/users", b"{ }"));
        assert_ne!(a, fingerprint(&Method::DELETE, "/users", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/users/x", b"{}"));
    }
}
