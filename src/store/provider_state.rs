//! What each provider leaves for the next run: the searches it spent today
//! (daily budgets are shared by separate cron runs) and its health after
//! the last cycle (for `farewatch providers` and a warm start).
//!
//! Both live in the store's saved values under `budget:NAME` (`"YYYY-MM-DD
//! N"`) and `health:NAME` / `health:status:NAME` (JSON); these formats are
//! private to this module.

use jiff::civil::Date;
use jiff::Timestamp;

use super::{Store, StoreError};
use crate::upstream::pool::PoolHealth;

/// Which kind of provider a health record belongs to (a fare source and a
/// flight-status provider may share a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderRole {
    /// A fare source (`serpapi`, `duffel`, ...).
    Fare,
    /// A flight-status provider (`aviationstack`, `opensky`, ...).
    Status,
}

/// A provider's health as saved after a cycle or poll.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedHealth {
    /// When it was saved.
    pub saved_at: Timestamp,
    /// Counters and breaker state at that time (for the process that ran).
    pub health: PoolHealth,
}

fn budget_key(provider: &str) -> String {
    format!("budget:{provider}")
}

fn health_key(role: ProviderRole, provider: &str) -> String {
    match role {
        ProviderRole::Fare => format!("health:{provider}"),
        ProviderRole::Status => format!("health:status:{provider}"),
    }
}

impl Store {
    /// The UTC day and the searches `provider` spent on it, as last saved;
    /// `None` when nothing (or nothing readable) was saved.
    pub async fn spent_budget(&self, provider: &str) -> Result<Option<(Date, u64)>, StoreError> {
        let Some(saved) = self.kv_get(&budget_key(provider)).await? else {
            return Ok(None);
        };
        Ok(saved
            .split_once(' ')
            .and_then(|(day, spent)| Some((day.parse().ok()?, spent.parse().ok()?))))
    }

    /// Saves the searches `provider` spent on `day`.
    pub async fn save_spent_budget(
        &self,
        provider: &str,
        day: Date,
        spent: u64,
    ) -> Result<(), StoreError> {
        self.kv_put(&budget_key(provider), &format!("{day} {spent}"), None)
            .await
    }

    /// The searches `provider` has spent on `today` (0 when the last saved
    /// day is an earlier one).
    pub async fn spent_on(&self, provider: &str, today: Date) -> Result<u64, StoreError> {
        Ok(match self.spent_budget(provider).await? {
            Some((day, spent)) if day == today => spent,
            _ => 0,
        })
    }

    /// `provider`'s health as last saved; `None` when nothing (or nothing
    /// readable) was saved.
    pub async fn provider_health(
        &self,
        role: ProviderRole,
        provider: &str,
    ) -> Result<Option<SavedHealth>, StoreError> {
        let saved = self.kv_get(&health_key(role, provider)).await?;
        Ok(saved.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Saves `provider`'s health.
    pub async fn save_provider_health(
        &self,
        role: ProviderRole,
        provider: &str,
        saved: &SavedHealth,
    ) -> Result<(), StoreError> {
        // A plain struct with string-keyed maps: serialising cannot fail.
        let json = serde_json::to_string(saved).unwrap_or_default();
        self.kv_put(&health_key(role, provider), &json, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budgets_round_trip_and_count_from_zero_on_a_new_day() {
        let store = Store::memory().unwrap();
        let day: Date = "2026-12-04".parse().unwrap();
        assert_eq!(store.spent_budget("duffel").await.unwrap(), None);
        store.save_spent_budget("duffel", day, 42).await.unwrap();
        assert_eq!(store.spent_budget("duffel").await.unwrap(), Some((day, 42)));
        assert_eq!(store.spent_on("duffel", day).await.unwrap(), 42);
        let tomorrow = day.tomorrow().unwrap();
        assert_eq!(store.spent_on("duffel", tomorrow).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_malformed_saved_budget_reads_as_none() {
        let store = Store::memory().unwrap();
        store
            .kv_put("budget:duffel", "yesterday lots", None)
            .await
            .unwrap();
        assert_eq!(store.spent_budget("duffel").await.unwrap(), None);
    }
}
