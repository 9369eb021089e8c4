//! Who is calling: the operator (`FAREWATCH_API_TOKEN`, full access) or a
//! user (the token `POST /users` returned once; only its SHA-256 is
//! stored). Every request but `/ping` and `/openapi.json` names its caller,
//! and each caller has its own request rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::error::ApiError;
use super::AppState;
use crate::store::{TokenHash, User};

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator: every user's data.
    Operator,
    /// A user: their own data only.
    User(User),
}

impl Caller {
    /// The scope idempotency keys are stored under.
    pub fn scope(&self) -> String {
        match self {
            Self::Operator => "operator".to_owned(),
            Self::User(user) => user.id.to_string(),
        }
    }

    /// Whether the caller may act on the user with `email` (lower-case).
    pub fn may_act_for(&self, email: &str) -> bool {
        match self {
            Self::Operator => true,
            Self::User(user) => user.email == email,
        }
    }
}

/// SHA-256 of a token, as stored and compared.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// A new user token: `fw_` and 64 hex digits (32 random bytes).
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| ApiError::internal(&"no randomness for a token"))?;
    let mut token = String::with_capacity(67);
    token.push_str("fw_");
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    Ok(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let hash = hash_token(token);
        state.limiter.check(&hash)?;
        if let Some(operator) = &state.operator {
            if bool::from(operator.ct_eq(&hash)) {
                return Ok(Self::Operator);
            }
        }
        match state.store.user_by_token(&hash).await? {
            Some(user) => Ok(Self::User(user)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// A token bucket per caller (by token hash): `per_second` requests a
/// second, bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<TokenHash, (f64, Instant)>>,
}

/// Most distinct tokens the limiter remembers before it forgets idle ones.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// A limiter; `per_second` of 0 turns it off.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `caller`'s bucket, or says when to retry.
    pub fn check(&self, caller: &TokenHash) -> Result<(), ApiError> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            // Forget full buckets: they are the same as new ones.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(*caller).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - *tokens) / self.per_second);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; at most {} a second", self.per_second),
        );
        error.retry_after = Some(wait.as_secs().max(1));
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("fw_") && a.len() == 67, "{a}");
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[tokio::test(start_paused = true)]
    async fn each_caller_has_its_own_bucket() {
        let limiter = RateLimiter::new(1.0, 2);
        let (a, b) = (hash_token("a"), hash_token("b"));
        assert!(limiter.check(&a).is_ok() && limiter.check(&a).is_ok());
        let refused = limiter.check(&a).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        assert!(limiter.check(&b).is_ok(), "another caller is not slowed");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check(&a).is_ok(), "a second later, one more");
    }
}
