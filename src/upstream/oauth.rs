//! One OAuth2 client-credentials token per provider (Amadeus, OpenSky):
//! fetched on first need, shared by every lookup, replaced a margin before
//! it expires, refreshed by exactly one caller at a time, and optionally
//! kept in a [`TokenCache`] across runs.
//!
//! The state sits behind a `tokio::sync::Mutex` held across the token
//! request itself, so callers that find no usable token queue behind the
//! one fetching it and then reuse its result. Every installed token gets a
//! new *generation*; a caller whose token was rejected (HTTP 401) names the
//! generation it used, and only refreshes if that is still the current one.
//! Twenty lookups that all see a 401 for generation 3 therefore cause one
//! token request, not twenty.
//!
//! Expiry is kept on tokio's monotonic clock (immune to wall-clock changes,
//! and pausable in tests); only the copy in the cache carries a wall-clock
//! expiry, since it must mean something to the next run.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::{HeaderValue, ACCEPT};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::reply::{ensure_json, one_line, Reply, MESSAGE_CHARS};
use super::UpstreamError;
use crate::store::TokenCache;

/// Where and as whom to ask for a token.
///
/// `Debug` shows the secret as `[REDACTED]`.
#[derive(Clone, Debug)]
pub(crate) struct ClientCredentials {
    /// The token endpoint.
    pub(crate) token_url: String,
    /// The API client id.
    pub(crate) client_id: String,
    /// The API client secret.
    pub(crate) client_secret: SecretString,
    /// Time allowed for the token request.
    pub(crate) timeout: Duration,
}

/// What differs between providers' token endpoints.
#[derive(Clone, Copy)]
pub(crate) struct TokenPolicy {
    /// The provider as messages name it (`"Amadeus"`).
    pub(crate) provider: &'static str,
    /// Added to every message about rejected credentials.
    pub(crate) credentials_hint: &'static str,
    /// A token is replaced this long before it expires, so a request signed
    /// just before expiry does not arrive just after it.
    pub(crate) expiry_margin: Duration,
    /// Lifetime assumed when the reply has no `expires_in`; `None` makes a
    /// missing `expires_in` a decode error.
    pub(crate) default_lifetime: Option<Duration>,
    /// The error for a token reply that is not a 2xx, from the reply and
    /// the secrets to redact from it (error bodies differ per provider).
    pub(crate) token_error: fn(&Reply, &[&str]) -> UpstreamError,
}

/// Where a token is kept between runs, and under which key.
pub(crate) struct Persistence {
    /// The cache (the store, in production).
    pub(crate) cache: Arc<dyn TokenCache>,
    /// The token's key in it.
    pub(crate) key: String,
}

/// A token ready to put on a request.
#[derive(Clone)]
pub(crate) struct Bearer {
    /// `Bearer <token>`, marked sensitive so `http`'s `Debug` prints `Sensitive`.
    header: HeaderValue,
    /// Which installed token this is; see the module docs.
    generation: u64,
}

impl Bearer {
    /// The `Authorization` header value.
    pub(crate) fn header(&self) -> HeaderValue {
        self.header.clone()
    }

    /// The raw token, to redact it from anything quoted from a reply.
    pub(crate) fn token(&self) -> &str {
        self.header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default()
    }
}

/// The outcome of one authorized call.
pub(crate) enum Attempt<T> {
    /// The provider answered.
    Answer(T),
    /// The provider refused the token (401); what it said, for logs.
    TokenRejected(String),
}

struct Current {
    bearer: Bearer,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Generation of the most recently installed token (0: none yet).
    generation: u64,
    /// Why the latest token request failed, until one succeeds.
    last_failure: Option<UpstreamError>,
}

/// A token as the token endpoint handed it over.
struct Fetched {
    access_token: String,
    expires_at: Instant,
    /// The same instant on the wall clock, for the cache.
    expires_at_wall: Timestamp,
}

/// The client-credentials reply; `token_type`, `scope`... are skipped.
#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// One provider's token holder.
///
/// `Debug` never shows the secret or the token.
pub(crate) struct TokenHolder {
    client: reqwest::Client,
    credentials: ClientCredentials,
    policy: TokenPolicy,
    persistence: Option<Persistence>,
    state: Mutex<State>,
    /// Completed token requests, bumped under the lock. Read *before*
    /// queueing for the lock, it tells a caller whether a request finished
    /// while it waited: if that request failed, the caller shares its error
    /// instead of sending another doomed request (bad credentials would
    /// otherwise cost one token request per queued lookup).
    attempts: AtomicU64,
}

impl TokenHolder {
    /// A holder asking `credentials.token_url` through the shared `client`.
    pub(crate) fn new(
        client: reqwest::Client,
        credentials: ClientCredentials,
        policy: TokenPolicy,
        persistence: Option<Persistence>,
    ) -> Self {
        Self {
            client,
            credentials,
            policy,
            persistence,
            state: Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
        }
    }

    /// Whether a token is held in memory (for `Debug`, which must not wait).
    pub(crate) fn has_token(&self) -> Option<bool> {
        self.state.try_lock().ok().map(|s| s.current.is_some())
    }

    /// Runs `call` with a token; when the provider rejects it, refreshes the
    /// token once (however many callers saw the rejection) and replays once.
    pub(crate) async fn authorized<T, F, Fut>(&self, mut call: F) -> Result<T, UpstreamError>
    where
        F: FnMut(Bearer) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, UpstreamError>>,
    {
        let bearer = self.bearer(None).await?;
        let generation = bearer.generation;
        let reason = match call(bearer).await? {
            Attempt::Answer(answer) => return Ok(answer),
            Attempt::TokenRejected(reason) => reason,
        };
        tracing::debug!(%reason, provider = self.policy.provider, "the access token was rejected; refreshing it and replaying once");
        let bearer = self.bearer(Some(generation)).await?;
        match call(bearer).await? {
            Attempt::Answer(answer) => Ok(answer),
            // Twice in a row means the credentials, not the token, are the
            // problem; looping would only burn quota.
            Attempt::TokenRejected(reason) => Err(UpstreamError::Auth(format!(
                "{} rejected a freshly issued access token ({reason}); {}",
                self.policy.provider, self.policy.credentials_hint
            ))),
        }
    }

    /// A usable token: the one in memory, else the persisted one, else a
    /// new one from the token endpoint.
    ///
    /// `rejected` is the generation the provider just refused: that token
    /// is replaced (once, however many callers saw the refusal), and the
    /// persisted copy is skipped because it most likely holds the same token.
    pub(crate) async fn bearer(&self, rejected: Option<u64>) -> Result<Bearer, UpstreamError> {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;

        if let Some(current) = &state.current {
            let is_rejected = rejected == Some(current.bearer.generation);
            if !is_rejected && self.is_fresh(current.expires_at) {
                return Ok(current.bearer.clone());
            }
        }

        if self.attempts.load(Ordering::Acquire) != attempts_seen {
            if let Some(failure) = &state.last_failure {
                return Err(failure.clone());
            }
        }

        if rejected.is_none() {
            if let Some(bearer) = self.load_persisted(&mut state).await {
                return Ok(bearer);
            }
        }

        let outcome = self
            .fetch()
            .await
            .and_then(|token| Ok((bearer_header(&token.access_token)?, token)));
        self.attempts.fetch_add(1, Ordering::Release);
        match outcome {
            Ok((header, token)) => {
                state.last_failure = None;
                let bearer = state.install(header, token.expires_at);
                if let Some(persistence) = &self.persistence {
                    persistence
                        .cache
                        .save_token(&persistence.key, &token.access_token, token.expires_at_wall)
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

    /// Whether a token expiring at `expires_at` may still be sent now.
    fn is_fresh(&self, expires_at: Instant) -> bool {
        expires_at
            .checked_duration_since(Instant::now())
            .is_some_and(|left| left > self.policy.expiry_margin)
    }

    async fn load_persisted(&self, state: &mut State) -> Option<Bearer> {
        let persistence = self.persistence.as_ref()?;
        let (token, expires_at_wall) = persistence.cache.load_token(&persistence.key).await?;
        let provider = self.policy.provider;
        let left = Duration::try_from(expires_at_wall.duration_since(Timestamp::now())).ok();
        let Some(expires_at) = left.and_then(|left| Instant::now().checked_add(left)) else {
            tracing::debug!(%expires_at_wall, provider, "the saved access token has expired");
            return None;
        };
        if !self.is_fresh(expires_at) {
            tracing::debug!(%expires_at_wall, provider, "the saved access token is too close to expiry; not using it");
            return None;
        }
        match bearer_header(&token) {
            Ok(header) => {
                tracing::debug!(%expires_at_wall, provider, "using the saved access token");
                Some(state.install(header, expires_at))
            }
            Err(_) => {
                tracing::warn!(
                    provider,
                    "the saved access token is not a valid header value; ignoring it"
                );
                None
            }
        }
    }

    /// `POST` the client credentials to the token endpoint.
    async fn fetch(&self) -> Result<Fetched, UpstreamError> {
        // Taken before sending, so the recorded expiry is never later than the provider's.
        let requested_at = (Instant::now(), Timestamp::now());
        let credentials = &self.credentials;
        let secrets = [credentials.client_secret.expose_secret()];
        let request = self
            .client
            .post(&credentials.token_url)
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", credentials.client_id.as_str()),
                ("client_secret", credentials.client_secret.expose_secret()),
            ])
            .timeout(credentials.timeout);
        let reply = Reply::send(request, credentials.timeout, &secrets).await?;
        if !reply.status.is_success() {
            return Err((self.policy.token_error)(&reply, &secrets));
        }
        ensure_json(reply.content_type(), &reply.body, "token reply", &secrets)?;
        // Not `Reply::json`, whose errors quote the body: it may hold a new
        // access token, which `secrets` cannot know yet.
        let parsed: TokenReply = serde_json::from_slice(&reply.body).map_err(|e| {
            UpstreamError::Decode(format!(
                "token reply: {}",
                one_line(&e.to_string(), &secrets, MESSAGE_CHARS)
            ))
        })?;
        if parsed.access_token.is_empty() {
            return Err(UpstreamError::Decode(
                "token reply has an empty access_token".into(),
            ));
        }
        let lifetime = match (parsed.expires_in, self.policy.default_lifetime) {
            // An absurd lifetime is capped rather than overflowing the clock.
            (Some(secs), _) => Duration::from_secs(secs.min(u64::from(u32::MAX))),
            (None, Some(assumed)) => assumed,
            (None, None) => {
                return Err(UpstreamError::Decode(
                    "token reply has no expires_in".into(),
                ))
            }
        };
        tracing::debug!(
            expires_in = lifetime.as_secs(),
            provider = self.policy.provider,
            "fetched an access token"
        );
        let wall_lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::MAX);
        Ok(Fetched {
            access_token: parsed.access_token,
            expires_at: requested_at.0 + lifetime,
            expires_at_wall: requested_at
                .1
                .checked_add(wall_lifetime)
                .unwrap_or(Timestamp::MAX),
        })
    }
}

impl State {
    fn install(&mut self, header: HeaderValue, expires_at: Instant) -> Bearer {
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

fn bearer_header(token: &str) -> Result<HeaderValue, UpstreamError> {
    let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        UpstreamError::Decode("the access token contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

impl fmt::Debug for TokenHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the secret and the token must never reach a log.
        f.debug_struct("TokenHolder")
            .field("provider", &self.policy.provider)
            .field("token_url", &self.credentials.token_url)
            .field("client_id", &self.credentials.client_id)
            .field("has_token", &self.has_token())
            .field("persisted", &self.persistence.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;
    use futures::future::join_all;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::*;

    const SECRET: &str = "client-secret-never-print-me";
    const TOKEN_PATH: &str = "/oauth2/token";

    /// Keeps a paused clock still while real sockets are in use: tokio does
    /// not auto-advance while a blocking task runs, and otherwise would jump
    /// to the request timeout whenever the runtime waits on the fake server.
    /// Time moves only by `tokio::time::advance`; dropping the sender ends it.
    fn hold_clock() -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        });
        tx
    }

    /// Issues `token-1`, `token-2`, ... each valid for `expires_in` seconds.
    struct Issuer {
        issued: AtomicUsize,
        expires_in: u64,
    }

    impl Respond for Issuer {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("token-{n}"),
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            }))
        }
    }

    async fn token_server(expires_in: u64) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains("client_id=test-client"))
            .respond_with(Issuer {
                issued: AtomicUsize::new(0),
                expires_in,
            })
            .mount(&server)
            .await;
        server
    }

    fn test_error(reply: &Reply, _secrets: &[&str]) -> UpstreamError {
        UpstreamError::Auth(format!("token request refused (HTTP {})", reply.status))
    }

    const POLICY: TokenPolicy = TokenPolicy {
        provider: "Test",
        credentials_hint: "check TEST_CLIENT_ID",
        expiry_margin: Duration::from_secs(30),
        default_lifetime: None,
        token_error: test_error,
    };

    fn holder(server: &MockServer, persistence: Option<Persistence>) -> TokenHolder {
        TokenHolder::new(
            crate::upstream::http::build_client(),
            ClientCredentials {
                token_url: format!("{}{TOKEN_PATH}", server.uri()),
                client_id: "test-client".into(),
                client_secret: SecretString::from(SECRET),
                timeout: Duration::from_secs(10),
            },
            POLICY,
            persistence,
        )
    }

    async fn token_requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap_or_default().len()
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_the_margin_before_expiry_then_replaced() {
        let _clock = hold_clock();
        let server = token_server(100).await;
        let tokens = holder(&server, None);

        assert_eq!(tokens.bearer(None).await.unwrap().token(), "token-1");
        // 100 s lifetime, 30 s margin: usable while more than 30 s are left.
        tokio::time::advance(Duration::from_secs(69)).await;
        assert_eq!(tokens.bearer(None).await.unwrap().token(), "token-1");
        assert_eq!(token_requests(&server).await, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(tokens.bearer(None).await.unwrap().token(), "token-2");
        assert_eq!(token_requests(&server).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_token_request() {
        let _clock = hold_clock();
        let server = token_server(1800).await;
        let tokens = holder(&server, None);

        let bearers = join_all((0..20).map(|_| tokens.bearer(None))).await;
        assert!(bearers
            .iter()
            .all(|b| b.as_ref().unwrap().token() == "token-1"));
        assert_eq!(token_requests(&server).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_rejecting_the_same_token_cause_one_refresh() {
        let _clock = hold_clock();
        let server = token_server(1800).await;
        let tokens = holder(&server, None);
        let first = tokens.bearer(None).await.unwrap();

        let rejected = Some(first.generation);
        let bearers = join_all((0..20).map(|_| tokens.bearer(rejected))).await;
        assert!(bearers
            .iter()
            .all(|b| b.as_ref().unwrap().token() == "token-2"));
        assert_eq!(token_requests(&server).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_token_is_refreshed_once_and_the_call_replayed() {
        let _clock = hold_clock();
        let server = token_server(1800).await;
        let tokens = holder(&server, None);
        let seen = StdMutex::new(Vec::new());

        let answer = tokens
            .authorized(|bearer| {
                seen.lock().unwrap().push(bearer.token().to_owned());
                async move {
                    Ok(match bearer.token() {
                        "token-1" => Attempt::TokenRejected("expired".into()),
                        _ => Attempt::Answer(42),
                    })
                }
            })
            .await;
        assert_eq!(answer, Ok(42));
        assert_eq!(*seen.lock().unwrap(), ["token-1", "token-2"]);

        // A fresh token rejected too: the credentials are wrong; no loop.
        let error = tokens
            .authorized(|_| async { Ok(Attempt::<()>::TokenRejected("nope".into())) })
            .await
            .unwrap_err();
        assert_eq!(
            error,
            UpstreamError::Auth(
                "Test rejected a freshly issued access token (nope); check TEST_CLIENT_ID".into()
            )
        );
        assert_eq!(token_requests(&server).await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_request_is_shared_by_the_callers_queued_behind_it() {
        let _clock = hold_clock();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(ResponseTemplate::new(401).set_body_string(SECRET))
            .expect(1)
            .mount(&server)
            .await;
        let tokens = holder(&server, None);

        let results = join_all((0..5).map(|_| tokens.bearer(None))).await;
        for result in results {
            assert_eq!(
                result.err(),
                Some(UpstreamError::Auth(
                    "token request refused (HTTP 401 Unauthorized)".into()
                ))
            );
        }
    }

    #[derive(Default)]
    struct MemoryCache {
        saved: StdMutex<Option<(String, String, Timestamp)>>,
    }

    #[async_trait]
    impl TokenCache for MemoryCache {
        async fn load_token(&self, key: &str) -> Option<(String, Timestamp)> {
            let saved = self.saved.lock().unwrap();
            let (k, token, expires_at) = saved.as_ref()?;
            (k == key).then(|| (token.clone(), *expires_at))
        }

        async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp) {
            *self.saved.lock().unwrap() = Some((key.into(), token.into(), expires_at));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_persisted_token_is_used_first_and_replaced_when_rejected() {
        let _clock = hold_clock();
        let server = token_server(1800).await;
        let cache = Arc::new(MemoryCache::default());
        let in_20_min = Timestamp::now() + SignedDuration::from_mins(20);
        cache.save_token("k", "saved-token", in_20_min).await;
        let tokens = holder(
            &server,
            Some(Persistence {
                cache: cache.clone(),
                key: "k".into(),
            }),
        );

        let saved = tokens.bearer(None).await.unwrap();
        assert_eq!(saved.token(), "saved-token");
        assert_eq!(token_requests(&server).await, 0);

        let before = Timestamp::now();
        let fresh = tokens.bearer(Some(saved.generation)).await.unwrap();
        assert_eq!(fresh.token(), "token-1");
        let (key, token, expires_at) = cache.saved.lock().unwrap().clone().unwrap();
        assert_eq!((key.as_str(), token.as_str()), ("k", "token-1"));
        // The wall-clock expiry the next run will read: 1800 s from the request.
        let lifetime = SignedDuration::from_secs(1800);
        assert!(expires_at >= before + lifetime && expires_at <= Timestamp::now() + lifetime);
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_a_token() {
        let tokens = TokenHolder::new(
            reqwest::Client::new(),
            ClientCredentials {
                token_url: "https://auth.example/token".into(),
                client_id: "test-client".into(),
                client_secret: SecretString::from(SECRET),
                timeout: Duration::from_secs(1),
            },
            POLICY,
            None,
        );
        let debug = format!("{tokens:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("test-client"), "{debug}");
    }
}
