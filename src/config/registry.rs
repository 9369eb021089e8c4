//! Every provider farewatch can use, one table per role: its name, the
//! variables that configure it, its defaults and its constructor. Selection,
//! credential checks, `farewatch providers` and error messages all read
//! these tables, so adding a source or a channel is its own module plus one
//! entry here.
//!
//! Every provider `P` also reads `P_BASE_URL`, `P_MAX_CONCURRENCY`,
//! `P_RATE_LIMIT` (requests per second, 0 = unlimited) and `P_TIMEOUT`; fare
//! sources read `P_DAILY_BUDGET` (searches per UTC day, 0 = unlimited) and,
//! with fleet-wide limits in Redis, `P_FLEET_BURST` (requests at once across
//! the fleet, default 1).

use std::sync::Arc;
use std::time::Duration;

use super::{ConfigError, Env};
use crate::fare::amadeus::{self, Amadeus, AmadeusConfig};
use crate::fare::duffel::{self, Duffel, DuffelConfig};
use crate::fare::serpapi::{self, SerpApi, SerpApiConfig};
use crate::fare::tequila::{self, Tequila, TequilaConfig};
use crate::fare::travelpayouts::{self, Travelpayouts, TravelpayoutsConfig};
use crate::fare::FareSource;
use crate::notify::discord::{self, Discord, DiscordConfig};
use crate::notify::slack::{self, Slack, SlackConfig};
use crate::notify::webhook::{self, Webhook, WebhookConfig};
use crate::notify::Notifier;
use crate::notify::NotifyLimits;
use crate::status::aviationstack::{self, Aviationstack, AviationstackConfig};
use crate::status::flightaware::{self, FlightAware, FlightAwareConfig};
use crate::status::opensky::{self, OpenSky, OpenSkyConfig};
use crate::status::StatusProvider;
use crate::store::{Store, TokenCache};
use crate::upstream::Limits;

/// What a constructor gets: the settings, the shared HTTP client, the store
/// (for OAuth tokens).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The settings.
    pub env: &'a Env,
    /// The one pooled HTTP client.
    pub client: &'a reqwest::Client,
    /// The state store.
    pub store: &'a Store,
}

/// A fare source.
#[derive(Debug)]
pub struct FareSourceEntry {
    /// Its name in `FARE_SOURCES`, reports and cache keys.
    pub name: &'static str,
    /// The variables that must all be set for it to run.
    pub credentials: &'static [&'static str],
    /// Searches per UTC day when `P_DAILY_BUDGET` is unset (`None`: unlimited).
    pub default_daily_budget: Option<u64>,
    /// What a user should know before relying on it (costs, shutdowns).
    pub note: Option<&'static str>,
    /// Builds it.
    pub build: fn(&Context<'_>) -> Result<Arc<dyn FareSource>, ConfigError>,
}

/// The fare sources, in the default priority order: live Google prices
/// first (SerpApi), then booking-grade prices (Duffel), Amadeus (Enterprise
/// credentials since Self-Service shut) and Kiwi for users who still hold
/// keys, and last Travelpayouts, whose prices are cached searches of other
/// users (cheap, but up to days old).
pub const FARE_SOURCES: &[FareSourceEntry] = &[
    FareSourceEntry {
        name: "serpapi",
        credentials: &["SERPAPI_API_KEY"],
        default_daily_budget: None,
        note: None,
        build: |cx| {
            let config = SerpApiConfig {
                base_url: cx
                    .env
                    .base_url("SERPAPI_BASE_URL", serpapi::DEFAULT_BASE_URL),
                api_key: cx.env.secret("SERPAPI_API_KEY"),
                timeout: cx
                    .env
                    .duration("SERPAPI_TIMEOUT", serpapi::DEFAULT_TIMEOUT)?,
            };
            Ok(Arc::new(SerpApi::new(cx.client.clone(), config)))
        },
    },
    FareSourceEntry {
        name: "duffel",
        credentials: &["DUFFEL_ACCESS_TOKEN"],
        default_daily_budget: Some(duffel::DEFAULT_DAILY_BUDGET),
        note: Some(
            "Duffel bills every search past a 1,500:1 search-to-book ratio, which a \
             search-only alert engine reaches quickly; hence a default daily budget \
             (DUFFEL_DAILY_BUDGET, 0 = unlimited)",
        ),
        build: |cx| {
            let config = DuffelConfig {
                base_url: cx.env.base_url("DUFFEL_BASE_URL", duffel::DEFAULT_BASE_URL),
                access_token: cx.env.secret("DUFFEL_ACCESS_TOKEN"),
                timeout: cx.env.duration("DUFFEL_TIMEOUT", duffel::DEFAULT_TIMEOUT)?,
            };
            Ok(Arc::new(Duffel::new(cx.client.clone(), config)))
        },
    },
    FareSourceEntry {
        name: "amadeus",
        credentials: &["AMADEUS_CLIENT_ID", "AMADEUS_CLIENT_SECRET"],
        default_daily_budget: None,
        note: Some(
            "Amadeus Self-Service shut on 2026-07-17 and its keys stopped working; \
             kept for Amadeus Enterprise credentials (set AMADEUS_BASE_URL to the \
             host Amadeus gives you)",
        ),
        build: |cx| {
            let config = AmadeusConfig {
                base_url: cx
                    .env
                    .base_url("AMADEUS_BASE_URL", amadeus::DEFAULT_BASE_URL),
                client_id: cx
                    .env
                    .get("AMADEUS_CLIENT_ID")
                    .unwrap_or_default()
                    .to_owned(),
                client_secret: cx.env.secret("AMADEUS_CLIENT_SECRET"),
                timeout: cx.env.duration("AMADEUS_TIMEOUT", AMADEUS_TIMEOUT)?,
            };
            // OAuth tokens outlive a cron run: kept in the state store.
            let tokens: Arc<dyn TokenCache> = Arc::new(cx.store.clone());
            Ok(Arc::new(Amadeus::new(
                cx.client.clone(),
                config,
                Some(tokens),
            )))
        },
    },
    FareSourceEntry {
        name: "tequila",
        credentials: &["TEQUILA_API_KEY"],
        default_daily_budget: None,
        note: None,
        build: |cx| {
            let config = TequilaConfig {
                base_url: cx
                    .env
                    .base_url("TEQUILA_BASE_URL", tequila::DEFAULT_BASE_URL),
                api_key: cx.env.secret("TEQUILA_API_KEY"),
                timeout: cx
                    .env
                    .duration("TEQUILA_TIMEOUT", tequila::DEFAULT_TIMEOUT)?,
            };
            Ok(Arc::new(Tequila::new(cx.client.clone(), config)))
        },
    },
    FareSourceEntry {
        name: "travelpayouts",
        credentials: &["TRAVELPAYOUTS_TOKEN"],
        default_daily_budget: None,
        note: None,
        build: |cx| {
            let config = TravelpayoutsConfig {
                base_url: cx
                    .env
                    .base_url("TRAVELPAYOUTS_BASE_URL", travelpayouts::DEFAULT_BASE_URL),
                token: cx.env.secret("TRAVELPAYOUTS_TOKEN"),
                timeout: cx
                    .env
                    .duration("TRAVELPAYOUTS_TIMEOUT", travelpayouts::DEFAULT_TIMEOUT)?,
            };
            Ok(Arc::new(Travelpayouts::new(cx.client.clone(), config)))
        },
    },
];

/// Amadeus's per-request timeout when `AMADEUS_TIMEOUT` is unset.
const AMADEUS_TIMEOUT: Duration = Duration::from_secs(20);

/// The fare source called `name`.
pub fn fare_source(name: &str) -> Option<&'static FareSourceEntry> {
    FARE_SOURCES.iter().find(|e| e.name == name)
}

/// The names of every fare source, for messages.
pub fn fare_source_names() -> String {
    FARE_SOURCES
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A flight-status provider.
#[derive(Debug)]
pub struct StatusEntry {
    /// Its name in `STATUS_PROVIDERS` and reports.
    pub name: &'static str,
    /// The variables that must all be set for it to run.
    pub credentials: &'static [&'static str],
    /// Builds it.
    pub build: fn(&Context<'_>) -> Result<Arc<dyn StatusProvider>, ConfigError>,
}

/// The flight-status providers, in the default priority order: Aviationstack
/// has the widest filters, FlightAware the best data per flight, OpenSky
/// only airport windows.
pub const STATUS_PROVIDERS: &[StatusEntry] = &[
    StatusEntry {
        name: "aviationstack",
        credentials: &["AVIATIONSTACK_ACCESS_KEY"],
        build: |cx| {
            let mut config = AviationstackConfig::new(cx.env.secret("AVIATIONSTACK_ACCESS_KEY"));
            config.base_url = cx
                .env
                .base_url("AVIATIONSTACK_BASE_URL", aviationstack::DEFAULT_BASE_URL);
            config.timeout = cx.env.duration("AVIATIONSTACK_TIMEOUT", config.timeout)?;
            Ok(Arc::new(Aviationstack::new(cx.client.clone(), config)))
        },
    },
    StatusEntry {
        name: "flightaware",
        credentials: &["FLIGHTAWARE_API_KEY"],
        build: |cx| {
            let mut config = FlightAwareConfig::new(cx.env.secret("FLIGHTAWARE_API_KEY"));
            config.base_url = cx
                .env
                .base_url("FLIGHTAWARE_BASE_URL", flightaware::DEFAULT_BASE_URL);
            config.timeout = cx.env.duration("FLIGHTAWARE_TIMEOUT", config.timeout)?;
            Ok(Arc::new(FlightAware::new(cx.client.clone(), config)))
        },
    },
    StatusEntry {
        name: "opensky",
        credentials: &["OPENSKY_CLIENT_ID", "OPENSKY_CLIENT_SECRET"],
        build: |cx| {
            let mut config = OpenSkyConfig::new(
                cx.env.get("OPENSKY_CLIENT_ID").unwrap_or_default(),
                cx.env.secret("OPENSKY_CLIENT_SECRET"),
            );
            config.base_url = cx
                .env
                .base_url("OPENSKY_BASE_URL", opensky::DEFAULT_BASE_URL);
            config.auth_url = cx
                .env
                .base_url("OPENSKY_AUTH_URL", opensky::DEFAULT_AUTH_URL);
            config.timeout = cx.env.duration("OPENSKY_TIMEOUT", config.timeout)?;
            Ok(Arc::new(OpenSky::new(cx.client.clone(), config)))
        },
    },
];

/// The status provider called `name`.
pub fn status_provider(name: &str) -> Option<&'static StatusEntry> {
    STATUS_PROVIDERS.iter().find(|e| e.name == name)
}

/// What a named channel's constructor gets besides the [`Context`].
#[derive(Debug, Clone, Copy)]
pub struct ChannelSetting<'a> {
    /// The variable that configures it (`SLACK_WEBHOOK_TEAM`).
    pub var: &'a str,
    /// The part after the prefix (`TEAM`).
    pub suffix: &'a str,
    /// Its value (a webhook URL: a secret).
    pub value: &'a str,
}

/// A named channel's constructor.
pub type BuildChannel =
    fn(&Context<'_>, &ChannelSetting<'_>) -> Result<Arc<dyn Notifier>, ConfigError>;

/// A kind of named channel: `slack:NAME` in the sheet sends to the Slack
/// webhook in `SLACK_WEBHOOK_NAME`.
#[derive(Debug)]
pub struct ChannelEntry {
    /// The kind, as written in the sheet (`slack`).
    pub kind: &'static str,
    /// The prefix of the variables that configure one (`SLACK_WEBHOOK_`).
    pub prefix: &'static str,
    /// How hard one such channel may be driven.
    pub limits: NotifyLimits,
    /// Builds one.
    pub build: BuildChannel,
}

/// The named channels.
pub const CHANNELS: &[ChannelEntry] = &[
    ChannelEntry {
        kind: "slack",
        prefix: "SLACK_WEBHOOK_",
        limits: slack::DEFAULT_LIMITS,
        build: |cx, setting| {
            Ok(Arc::new(Slack::new(
                cx.client.clone(),
                SlackConfig {
                    webhook_url: setting.value.to_owned().into(),
                    timeout: slack::DEFAULT_TIMEOUT,
                },
            )))
        },
    },
    ChannelEntry {
        kind: "discord",
        prefix: "DISCORD_WEBHOOK_",
        limits: discord::DEFAULT_LIMITS,
        build: |cx, setting| {
            Ok(Arc::new(Discord::new(
                cx.client.clone(),
                DiscordConfig {
                    webhook_url: setting.value.to_owned().into(),
                    username: Some("farewatch".into()),
                    timeout: discord::DEFAULT_TIMEOUT,
                },
            )))
        },
    },
    ChannelEntry {
        kind: "webhook",
        prefix: "WEBHOOK_URL_",
        limits: webhook::DEFAULT_LIMITS,
        build: |cx, setting| {
            // Plan::from_env has checked that the secret is set.
            let secret_var = format!("WEBHOOK_SECRET_{}", setting.suffix);
            Ok(Arc::new(Webhook::new(
                cx.client.clone(),
                WebhookConfig {
                    url: setting.value.to_owned(),
                    secret: cx.env.secret(&secret_var),
                    timeout: webhook::DEFAULT_TIMEOUT,
                },
            )))
        },
    },
];

/// Reads `PREFIX_MAX_CONCURRENCY` and `PREFIX_RATE_LIMIT` over `defaults`.
pub fn limits(env: &Env, prefix: &str, defaults: Limits) -> Result<Limits, ConfigError> {
    let concurrency_var = format!("{prefix}_MAX_CONCURRENCY");
    let max_concurrency: Option<usize> = env.parse(&concurrency_var, "a whole number")?;
    if max_concurrency == Some(0) {
        return Err(ConfigError::invalid(concurrency_var, "must be at least 1"));
    }
    let rate_var = format!("{prefix}_RATE_LIMIT");
    let rate: Option<f64> = env.parse(&rate_var, "a number of requests per second")?;
    if rate.is_some_and(|r| r < 0.0 || !r.is_finite()) {
        return Err(ConfigError::invalid(
            rate_var,
            "must be 0 (unlimited) or more",
        ));
    }
    Ok(Limits {
        max_concurrency: max_concurrency.unwrap_or(defaults.max_concurrency),
        rate_per_sec: rate.unwrap_or(defaults.rate_per_sec),
        timeout: defaults.timeout,
    })
}

/// A provider's burst under the fleet-wide rate limit: `P_FLEET_BURST`
/// requests at once across the fleet, default
/// [`crate::fleet::DEFAULT_BURST`] (strict pacing, as each process's
/// controller paces on its own).
pub fn fleet_burst(env: &Env, prefix: &str) -> Result<u32, ConfigError> {
    let var = format!("{prefix}_FLEET_BURST");
    let burst: Option<u32> = env.parse(&var, "a whole number of requests")?;
    if burst == Some(0) {
        return Err(ConfigError::invalid(var, "must be at least 1"));
    }
    Ok(burst.unwrap_or(crate::fleet::DEFAULT_BURST))
}

/// A fare source's daily budget: `P_DAILY_BUDGET` (0 = unlimited), else its default.
pub fn daily_budget(env: &Env, entry: &FareSourceEntry) -> Result<Option<u64>, ConfigError> {
    let var = format!("{}_DAILY_BUDGET", entry.name.to_ascii_uppercase());
    let per_day: Option<u64> =
        env.parse(&var, "a whole number of searches per day (0 = unlimited)")?;
    Ok(match per_day {
        Some(0) => None,
        Some(n) => Some(n),
        None => entry.default_daily_budget,
    })
}

/// The variable prefix of a provider's settings (`serpapi` -> `SERPAPI`).
pub fn prefix(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// Which of `credentials` are not set.
pub fn missing(env: &Env, credentials: &[&'static str]) -> Vec<&'static str> {
    credentials
        .iter()
        .copied()
        .filter(|v| !env.has(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_credentials_and_a_unique_name() {
        let mut names: Vec<&str> = FARE_SOURCES.iter().map(|e| e.name).collect();
        names.extend(STATUS_PROVIDERS.iter().map(|e| e.name));
        names.extend(CHANNELS.iter().map(|e| e.kind));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate names: {names:?}");
        assert!(FARE_SOURCES.iter().all(|e| !e.credentials.is_empty()));
        assert!(STATUS_PROVIDERS.iter().all(|e| !e.credentials.is_empty()));
    }

    #[test]
    fn limits_and_budgets_are_read_and_checked() {
        let defaults = Limits {
            max_concurrency: 8,
            rate_per_sec: 5.0,
            timeout: Duration::from_secs(3),
        };
        let env = Env::from_pairs([("DUFFEL_RATE_LIMIT", "2.5"), ("DUFFEL_DAILY_BUDGET", "0")]);
        let read = limits(&env, "DUFFEL", defaults).unwrap();
        assert_eq!((read.max_concurrency, read.rate_per_sec), (8, 2.5));
        let duffel = fare_source("duffel").unwrap();
        assert_eq!(daily_budget(&env, duffel).unwrap(), None, "0 is unlimited");
        assert_eq!(
            daily_budget(&Env::default(), duffel).unwrap(),
            Some(duffel::DEFAULT_DAILY_BUDGET)
        );
        let env = Env::from_pairs([("DUFFEL_MAX_CONCURRENCY", "0")]);
        let error = limits(&env, "DUFFEL", defaults).unwrap_err().to_string();
        assert_eq!(error, "DUFFEL_MAX_CONCURRENCY: must be at least 1");
        let env = Env::from_pairs([("DUFFEL_RATE_LIMIT", "fast")]);
        let error = limits(&env, "DUFFEL", defaults).unwrap_err().to_string();
        assert_eq!(
            error,
            "DUFFEL_RATE_LIMIT: `fast` is not a number of requests per second"
        );
    }
}
