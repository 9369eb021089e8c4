//! The OAuth2 access token: one per process, shared by every lookup,
//! refreshed by exactly one caller at a time.
//!
//! The state sits behind a `tokio::sync::Mutex` that is held across the
//! token request itself, so callers that find no usable token queue behind
//! the one fetching it and then reuse its result. Every installed token gets
//! a new *generation*; a caller whose token was rejected (HTTP 401) names the
//! generation it used, and only refreshes if that is still the current one.
//! Twenty lookups that all see 401 for generation 3 therefore cause one
//! token request, not twenty.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderValue;
use tokio::sync::Mutex;

use crate::store::TokenCache;
use crate::upstream::UpstreamError;

/// A token is replaced this long before Amadeus says it expires, so a
/// request signed just before expiry does not arrive just after it. Ten
/// seconds is what the official Python and Java SDKs use.
pub(super) const TOKEN_EXPIRY_BUFFER: SignedDuration = SignedDuration::from_secs(10);

/// A token as the token endpoint handed it over.
pub(super) struct FetchedToken {
    /// The raw access token.
    pub(super) access_token: String,
    /// When Amadeus will stop accepting it.
    pub(super) expires_at: Timestamp,
}

/// A token ready to put on a request.
#[derive(Clone)]
pub(super) struct Bearer {
    /// `Bearer <token>`, marked sensitive so `http`'s `Debug` prints `Sensitive`.
    pub(super) header: HeaderValue,
    /// Which installed token this is; see the module docs.
    pub(super) generation: u64,
}

struct Current {
    bearer: Bearer,
    expires_at: Timestamp,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Generation of the most recently installed token (0: none yet).
    generation: u64,
    /// Why the latest token request failed, until one succeeds.
    last_failure: Option<UpstreamError>,
}

/// Owns the token, its in-memory copy and its copy in the [`TokenCache`].
pub(super) struct Tokens {
    state: Mutex<State>,
    /// Completed token requests, bumped under the lock. Read *before*
    /// queueing for the lock, it tells a caller whether a request finished
    /// while it waited: if that request failed, the caller shares its error
    /// instead of sending another doomed request (bad credentials would
    /// otherwise cost one token request per queued lookup).
    attempts: AtomicU64,
    cache: Option<Arc<dyn TokenCache>>,
    cache_key: String,
}

impl Tokens {
    /// `cache_key` names the token in `cache`, across runs.
    pub(super) fn new(cache: Option<Arc<dyn TokenCache>>, cache_key: String) -> Self {
        Self {
            state: Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
            cache,
            cache_key,
        }
    }

    /// Whether a token for this source is held in memory (for `Debug`, which must not wait).
    pub(super) fn has_token(&self) -> Option<bool> {
        self.state.try_lock().ok().map(|s| s.current.is_some())
    }

    /// A usable token: the one in memory, else the cached one, else a new
    /// one from `fetch`.
    ///
    /// `rejected` is the generation Amadeus just refused with a 401: that
    /// token is replaced (once, however many callers saw the 401), and the
    /// cross-run cache is skipped because it most likely holds the same token.
    pub(super) async fn bearer<F, Fut>(
        &self,
        rejected: Option<u64>,
        fetch: F,
    ) -> Result<Bearer, UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<FetchedToken, UpstreamError>>,
    {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        let now = Timestamp::now();

        if let Some(current) = &state.current {
            let is_rejected = rejected == Some(current.bearer.generation);
            if !is_rejected && is_fresh(current.expires_at, now) {
                return Ok(current.bearer.clone());
            }
        }

        if self.attempts.load(Ordering::Acquire) != attempts_seen {
            if let Some(failure) = &state.last_failure {
                return Err(failure.clone());
            }
        }

        if rejected.is_none() {
            if let Some(bearer) = self.load_cached(&mut state, now).await {
                return Ok(bearer);
            }
        }

        let outcome = fetch()
            .await
            .and_then(|token| Ok((bearer_header(&token.access_token)?, token)));
        self.attempts.fetch_add(1, Ordering::Release);
        match outcome {
            Ok((header, token)) => {
                state.last_failure = None;
                let bearer = state.install(header, token.expires_at);
                if let Some(cache) = &self.cache {
                    cache
                        .save_token(&self.cache_key, &token.access_token, token.expires_at)
                        .await;
                }
                Ok(bearer)
            }
            Err(error) => {
                state.last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn load_cached(&self, state: &mut State, now: Timestamp) -> Option<Bearer> {
        let cache = self.cache.as_ref()?;
        let (token, expires_at) = cache.load_token(&self.cache_key).await?;
        if !is_fresh(expires_at, now) {
            tracing::debug!(%expires_at, "cached Amadeus token is too close to expiry; not using it");
            return None;
        }
        match bearer_header(&token) {
            Ok(header) => {
                tracing::debug!(%expires_at, "using the cached Amadeus access token");
                Some(state.install(header, expires_at))
            }
            Err(_) => {
                tracing::warn!(
                    "cached Amadeus access token is not a valid header value; ignoring it"
                );
                None
            }
        }
    }
}

impl State {
    fn install(&mut self, header: HeaderValue, expires_at: Timestamp) -> Bearer {
        self.generation += 1;
        let bearer = Bearer {
            header,
            generation: self.generation,
        };
        self.current = Some(Current {
            bearer: bearer.clone(),
            expires_at,
        });
        bearer
    }
}

/// Whether a token expiring at `expires_at` may still be sent at `now`.
fn is_fresh(expires_at: Timestamp, now: Timestamp) -> bool {
    expires_at.duration_since(now) > TOKEN_EXPIRY_BUFFER
}

fn bearer_header(token: &str) -> Result<HeaderValue, UpstreamError> {
    let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        UpstreamError::Decode("the access token contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}
