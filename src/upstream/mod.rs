//! The upstream layer: everything that decides how hard farewatch pushes a
//! provider, whatever the provider does (fare search, flight status, SMS).
//!
//! `fare` and `status` depend on this module and never on each other.
//!
//! # Layout
//! - [`pool`]: one [`pool::ProviderPool`] per provider: the guarded call
//!   (breaker, the fleet-wide limit when several processes share Redis
//!   ([`crate::fleet`]), adaptive concurrency, pacing, budget, timeout,
//!   retries).
//! - [`arc`]: the adaptive concurrency and pacing controller that finds each
//!   provider's operating point by itself.
//! - [`breaker`]: the circuit breaker, a named state machine.
//! - [`retry`]: which failures are retried, full-jitter backoff, capped
//!   `Retry-After`, the retry budget.
//! - [`budget`]: daily budgets of paid searches per provider.
//! - [`failover`]: several providers in priority order behind one lookup.
//! - [`http`]: the one pooled HTTP client and capped body reading.
//! - `oauth` (crate-private): the OAuth2 client-credentials token holder
//!   (Amadeus, OpenSky).
//! - `reply` (crate-private): what every provider does with an HTTP reply.
//! - `wire` (crate-private): lenient JSON building blocks shared by the
//!   providers' private wire types.
//! - `scan` (crate-private): walking a large reply's outline, crossing the
//!   parts nobody reads without parsing them.

pub mod arc;
pub mod breaker;
pub mod budget;
pub mod failover;
pub mod http;
pub(crate) mod oauth;
pub mod pool;
pub(crate) mod reply;
pub mod retry;
pub(crate) mod scan;
pub(crate) mod wire;

use std::time::Duration;

/// How hard a provider may be driven.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Requests started per second; `0.0` means unlimited.
    pub rate_per_sec: f64,
    /// Time allowed for one request, connect to last byte.
    pub timeout: Duration,
}

/// Why a provider did not answer a lookup.
///
/// The orchestrator wraps this with the provider and route, so the variants
/// only say what happened upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The request did not finish within the provider's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Could not connect or the connection broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// Credentials were rejected; check the provider's client id and secret.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The provider asks us to slow down (HTTP 429 throttle).
    #[error("rate limited by the provider{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The provider's quota for the period is used up; retrying will not help.
    #[error("quota exhausted: {0}")]
    QuotaExhausted(String),
    /// The provider rejected the request as invalid (bad airport, past date...).
    /// Status 0: farewatch did not send it, knowing it could not be answered.
    #[error("{}", rejected(*status, code.as_deref(), message))]
    Rejected {
        /// HTTP status; 0 when the request was never sent.
        status: u16,
        /// The provider's own error code, when it sent one.
        code: Option<String>,
        /// The provider's message.
        message: String,
    },
    /// The provider failed on its side (5xx).
    #[error("provider error (HTTP {status}{}): {message}", code.as_ref().map(|c| format!(", code {c}")).unwrap_or_default())]
    Upstream {
        /// HTTP status.
        status: u16,
        /// The provider's own error code, when it sent one.
        code: Option<String>,
        /// The provider's message.
        message: String,
    },
    /// The response could not be understood (malformed, truncated, wrong type, too large).
    #[error("unreadable response: {0}")]
    Decode(String),
    /// Not asked: the provider's circuit breaker is open after repeated
    /// failures. The lookup is retried next cycle.
    #[error("skipped: {0}")]
    CircuitOpen(String),
    /// Not asked: the provider's daily budget of paid searches is spent.
    #[error("skipped: {0}")]
    BudgetSpent(String),
    /// Not asked: the fleet-wide rate limit (shared with the other
    /// farewatch processes on the same Redis) left no turn in time.
    #[error("skipped: {0}")]
    FleetLimited(String),
}

/// `Rejected`'s message: a request never sent has no HTTP status to show.
fn rejected(status: u16, code: Option<&str>, message: &str) -> String {
    let code = code.map(|c| format!(", code {c}")).unwrap_or_default();
    if status == 0 {
        format!("request not sent{code}: {message}")
    } else {
        format!("request rejected (HTTP {status}{code}): {message}")
    }
}

impl UpstreamError {
    /// A short stable name for the kind of failure, for health counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Auth(_) => "auth",
            Self::RateLimited { .. } => "rate_limited",
            Self::QuotaExhausted(_) => "quota_exhausted",
            Self::Rejected { .. } => "rejected",
            Self::Upstream { .. } => "upstream",
            Self::Decode(_) => "decode",
            Self::CircuitOpen(_) => "circuit_open",
            Self::BudgetSpent(_) => "budget_spent",
            Self::FleetLimited(_) => "fleet_limited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_never_sent_shows_no_http_status() {
        let rejected = |status| UpstreamError::Rejected {
            status,
            code: Some("x1".into()),
            message: "bad airport".into(),
        };
        assert_eq!(
            rejected(400).to_string(),
            "request rejected (HTTP 400, code x1): bad airport"
        );
        assert_eq!(
            rejected(0).to_string(),
            "request not sent, code x1: bad airport"
        );
    }
}
