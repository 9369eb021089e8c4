//! Several providers behind one lookup, in priority order.
//!
//! A failover (fare: `crate::fare::failover::Failover`; status:
//! `crate::status::failover::StatusFailover`) walks its
//! [`crate::upstream::pool::ProviderPool`]s in order. Each pool already
//! owns its retries, circuit breaker and daily budget, so the walk is simple:
//! - an answer ends it, and "no offers" **is** an answer;
//! - a failure (after the pool's own retries), a 429 that outlasted them, an
//!   open circuit or a spent budget falls through to the next provider;
//! - when every provider failed, the error names each one and its cause.
//!
//! With [`Strategy::Compare`], the first `k` providers are asked at once and
//! the cheapest answer wins, for users who want the best price rather than
//! the first one. Providers whose circuit is open or budget spent are
//! passed over there too, so the next healthy one takes their place.
//!
//! The same walk serves any kind of provider; fare lookups are the first user.

use std::fmt;

use crate::upstream::UpstreamError;

/// How providers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The first provider (in priority order) that answers.
    #[default]
    FirstAnswer,
    /// Ask the first `k` available providers at once; keep the cheapest.
    Compare(usize),
}

/// Every provider failed for one lookup: each one's cause, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllFailed {
    /// (provider, what went wrong).
    pub attempts: Vec<(&'static str, UpstreamError)>,
}

impl fmt::Display for AllFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts.is_empty() {
            return f.write_str("no provider is configured for this request");
        }
        for (i, (provider, error)) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{provider}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllFailed {}
