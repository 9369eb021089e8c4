//! `farewatch providers`: every fare source, channel and flight-status
//! provider, whether it is configured, and how it fared last time.
//!
//! Health is per process, and cron runs are separate processes, so the
//! overview reads what the last cycle saved in the state store: its
//! counters and breaker state, and today's spent budget.

use jiff::civil::Date;

use crate::config::registry::{self, CHANNELS, STATUS_PROVIDERS};
use crate::config::{Env, SourceOverview, TWILIO_VARS};
use crate::store::{ProviderRole, SavedHealth, Store};

/// What `farewatch providers` shows; its JSON is this struct, serialised.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// Every fare source, in registry order.
    pub fare_sources: Vec<FareSourceView>,
    /// The configured channels: SMS, then each named channel.
    pub channels: Vec<ChannelView>,
    /// Every flight-status provider, in registry order.
    pub status_providers: Vec<StatusProviderView>,
    /// Settings `farewatch check` would refuse (an unusable daily budget),
    /// each a whole sentence; not part of the JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A fare source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FareSourceView {
    /// Its name in `FARE_SOURCES`.
    pub name: &'static str,
    /// Whether every credential is set.
    pub configured: bool,
    /// Variables still to set, when not configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<&'static str>,
    /// Position in the failover order (1 = asked first), when it runs.
    pub priority: Option<usize>,
    /// Searches per UTC day (`P_DAILY_BUDGET`, or the source's default);
    /// `None` is unlimited (or an unusable setting, see the warnings).
    pub daily_budget: Option<u64>,
    /// Searches spent today, when it has a budget.
    pub spent_today: Option<u64>,
    /// Searches left today, when it has a budget.
    pub remaining_today: Option<u64>,
    /// Its health after the last cycle, when one was saved.
    pub last_run: Option<SavedHealth>,
    /// What to know before relying on the source (costs, shutdowns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// A configured channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelView {
    /// `sms (phone numbers)`, or `kind:name` as rows address it (`slack:team`).
    pub name: String,
    /// The variable (or variables) that configure it.
    pub configured_by: String,
}

/// A flight-status provider.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusProviderView {
    /// Its name in `STATUS_PROVIDERS`.
    pub name: &'static str,
    /// Whether every credential is set.
    pub configured: bool,
    /// Variables still to set, when not configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<&'static str>,
    /// Its health after the last poll, when one was saved.
    pub last_run: Option<SavedHealth>,
}

/// What to set for a first channel: SMS, or any named channel.
pub fn channel_variables() -> String {
    let named: Vec<String> = CHANNELS
        .iter()
        .map(|c| format!("{}<NAME>", c.prefix))
        .collect();
    format!("{TWILIO_VARS} for SMS, or {}", named.join(", "))
}

/// The overview from the settings and, when one could be opened, the state
/// store (without it: configuration only). `today` is the UTC day budgets
/// count on. Reading the store is best effort: a record that cannot be read
/// shows as none.
pub async fn overview(env: &Env, store: Option<&Store>, today: Date) -> Overview {
    let mut warnings = Vec::new();
    let mut fare_sources = Vec::new();
    for source in SourceOverview::all(env) {
        let name = source.entry.name;
        let daily_budget = source.daily_budget.unwrap_or_else(|error| {
            warnings.push(format!("{error}; `farewatch check` will refuse it"));
            None
        });
        let (mut spent_today, mut last_run) = (0, None);
        if let Some(store) = store {
            spent_today = store.spent_on(name, today).await.unwrap_or(0);
            last_run = saved_health(store, ProviderRole::Fare, name).await;
        }
        fare_sources.push(FareSourceView {
            name,
            configured: source.missing.is_empty(),
            missing: source.missing,
            priority: source.priority,
            daily_budget,
            spent_today: daily_budget.map(|_| spent_today),
            remaining_today: daily_budget.map(|b| b.saturating_sub(spent_today)),
            last_run,
            note: source.entry.note,
        });
    }
    let mut status_providers = Vec::new();
    for entry in STATUS_PROVIDERS {
        let missing = registry::missing(env, entry.credentials);
        let last_run = match store {
            Some(store) => saved_health(store, ProviderRole::Status, entry.name).await,
            None => None,
        };
        status_providers.push(StatusProviderView {
            name: entry.name,
            configured: missing.is_empty(),
            missing,
            last_run,
        });
    }
    Overview {
        fare_sources,
        channels: channels(env),
        status_providers,
        warnings,
    }
}

async fn saved_health(store: &Store, role: ProviderRole, name: &str) -> Option<SavedHealth> {
    store.provider_health(role, name).await.ok().flatten()
}

/// SMS when Twilio is configured, then every named channel's variable.
fn channels(env: &Env) -> Vec<ChannelView> {
    let mut channels = Vec::new();
    let sms = crate::config::twilio_missing(env).is_empty();
    if sms {
        channels.push(ChannelView {
            name: "sms (phone numbers)".into(),
            configured_by: "TWILIO_*".into(),
        });
    }
    for entry in CHANNELS {
        for (var, _) in env.with_prefix(entry.prefix) {
            let suffix = &var[entry.prefix.len()..];
            if suffix.is_empty() {
                continue;
            }
            channels.push(ChannelView {
                name: format!("{}:{}", entry.kind, suffix.to_ascii_lowercase()),
                configured_by: var.to_owned(),
            });
        }
    }
    channels
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jiff::civil::date;
    use jiff::Timestamp;

    use super::*;
    use crate::status::failover::StatusPool;
    use crate::status::mock::MockStatus;
    use crate::upstream::breaker::BreakerConfig;
    use crate::upstream::Limits;

    const TODAY: Date = date(2026, 3, 14);

    fn source<'a>(overview: &'a Overview, name: &str) -> &'a FareSourceView {
        overview
            .fare_sources
            .iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    #[tokio::test]
    async fn priorities_follow_fare_sources_among_the_configured_ones() {
        let env = Env::from_pairs([
            ("FARE_SOURCES", "duffel,serpapi,tequila"),
            ("SERPAPI_API_KEY", "k"),
            ("DUFFEL_ACCESS_TOKEN", "t"),
        ]);
        let overview = overview(&env, None, TODAY).await;
        assert_eq!(source(&overview, "duffel").priority, Some(1));
        assert_eq!(source(&overview, "serpapi").priority, Some(2));
        let tequila = source(&overview, "tequila");
        assert_eq!(tequila.priority, None, "not configured, so never asked");
        assert!(!tequila.configured);
        assert_eq!(tequila.missing, ["TEQUILA_API_KEY"]);
        assert_eq!(source(&overview, "amadeus").priority, None, "not listed");
    }

    #[tokio::test]
    async fn budgets_count_todays_spending_from_the_store() {
        let store = Store::memory().unwrap();
        store.save_spent_budget("duffel", TODAY, 300).await.unwrap();
        // Yesterday's spending is not today's.
        let yesterday = TODAY.yesterday().unwrap();
        store
            .save_spent_budget("serpapi", yesterday, 9)
            .await
            .unwrap();
        let env = Env::from_pairs([
            ("DUFFEL_ACCESS_TOKEN", "t"),
            ("SERPAPI_API_KEY", "k"),
            ("SERPAPI_DAILY_BUDGET", "5"),
        ]);
        let overview = overview(&env, Some(&store), TODAY).await;
        let duffel = source(&overview, "duffel");
        assert_eq!(duffel.daily_budget, Some(1000), "Duffel's default");
        assert_eq!(duffel.spent_today, Some(300));
        assert_eq!(duffel.remaining_today, Some(700));
        let serpapi = source(&overview, "serpapi");
        assert_eq!(serpapi.daily_budget, Some(5));
        assert_eq!(serpapi.spent_today, Some(0));
        assert_eq!(serpapi.remaining_today, Some(5));
        let tequila = source(&overview, "tequila");
        assert_eq!(tequila.daily_budget, None, "unlimited");
        assert_eq!((tequila.spent_today, tequila.remaining_today), (None, None));
        assert!(overview.warnings.is_empty(), "{:?}", overview.warnings);
    }

    #[tokio::test]
    async fn an_overspent_budget_has_none_left_and_a_bad_one_is_a_warning() {
        let store = Store::memory().unwrap();
        store.save_spent_budget("duffel", TODAY, 12).await.unwrap();
        let env = Env::from_pairs([
            ("DUFFEL_ACCESS_TOKEN", "t"),
            ("DUFFEL_DAILY_BUDGET", "10"),
            ("SERPAPI_DAILY_BUDGET", "lots"),
        ]);
        let overview = overview(&env, Some(&store), TODAY).await;
        assert_eq!(source(&overview, "duffel").remaining_today, Some(0));
        assert_eq!(source(&overview, "serpapi").daily_budget, None);
        assert_eq!(overview.warnings.len(), 1, "{:?}", overview.warnings);
        let warning = &overview.warnings[0];
        assert!(
            warning.contains("SERPAPI_DAILY_BUDGET") && warning.contains("lots"),
            "{warning}"
        );
        let json = serde_json::to_value(&overview).unwrap();
        assert!(json.get("warnings").is_none(), "the JSON keeps its shape");
    }

    #[tokio::test]
    async fn last_runs_come_from_the_store_by_role() {
        let store = Store::memory().unwrap();
        let limits = Limits {
            max_concurrency: 1,
            rate_per_sec: 0.0,
            timeout: std::time::Duration::from_secs(1),
        };
        let pool = StatusPool::for_status(
            Arc::new(MockStatus::new()),
            limits,
            BreakerConfig::default(),
        );
        let saved = SavedHealth {
            saved_at: Timestamp::UNIX_EPOCH,
            health: pool.health(),
        };
        store
            .save_provider_health(ProviderRole::Status, "opensky", &saved)
            .await
            .unwrap();
        let env = Env::from_pairs([("OPENSKY_CLIENT_ID", "i"), ("OPENSKY_CLIENT_SECRET", "s")]);
        let overview = overview(&env, Some(&store), TODAY).await;
        let opensky = overview
            .status_providers
            .iter()
            .find(|p| p.name == "opensky")
            .unwrap();
        assert!(opensky.configured);
        assert!(opensky.last_run.is_some());
        let aviationstack = &overview.status_providers[0];
        assert!(!aviationstack.configured && aviationstack.last_run.is_none());
        assert!(
            overview.fare_sources.iter().all(|s| s.last_run.is_none()),
            "a status provider's health is not a fare source's"
        );
    }

    #[tokio::test]
    async fn channels_list_sms_then_each_named_channel() {
        let env = Env::from_pairs([
            ("TWILIO_ACCOUNT_SID", "AC"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_MESSAGING_SERVICE_SID", "MG"),
            ("SLACK_WEBHOOK_TEAM", "https://hooks.slack.com/services/x"),
            ("SLACK_WEBHOOK_", "ignored: no name"),
        ]);
        let overview = overview(&env, None, TODAY).await;
        let names: Vec<&str> = overview.channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["sms (phone numbers)", "slack:team"]);
        assert_eq!(overview.channels[1].configured_by, "SLACK_WEBHOOK_TEAM");
        let sid_only = Env::from_pairs([("TWILIO_ACCOUNT_SID", "AC")]);
        let none = super::overview(&sid_only, None, TODAY).await;
        assert!(
            none.channels.is_empty(),
            "Twilio needs its token and a sender"
        );
        assert!(channel_variables().contains("SLACK_WEBHOOK_<NAME>"));
    }
}
