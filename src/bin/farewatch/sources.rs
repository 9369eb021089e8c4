//! Which fare sources run, in what order, with what limits and budgets.
//!
//! `FARE_SOURCES=serpapi,duffel,amadeus` sets the priority. Without it,
//! every source whose credentials are set runs, in [`DEFAULT_ORDER`]. Each
//! source `P` also reads `P_BASE_URL`, `P_MAX_CONCURRENCY`, `P_RATE_LIMIT`
//! (requests per second, 0 = unlimited), `P_TIMEOUT` and `P_DAILY_BUDGET`
//! (searches per UTC day, 0 = unlimited; unset, the source's default from
//! [`default_daily_budget`], unlimited for most).

use std::sync::Arc;
use std::time::Duration;

use farewatch::fare::amadeus::{self, Amadeus, AmadeusConfig};
use farewatch::fare::demo::DemoSource;
use farewatch::fare::duffel::{self, Duffel, DuffelConfig};
use farewatch::fare::serpapi::{self, SerpApi, SerpApiConfig};
use farewatch::fare::tequila::{self, Tequila, TequilaConfig};
use farewatch::fare::travelpayouts::{self, Travelpayouts, TravelpayoutsConfig};
use farewatch::fare::FarePool;
use farewatch::fare::FareSource;
use farewatch::store::{Store, TokenCache};
use farewatch::upstream::budget::{Budget, DayClock};
use farewatch::upstream::Limits;
use secrecy::SecretString;

use crate::cli::RunArgs;
use crate::setup::{parse_duration, SetupError};

/// The default priority: live Google prices first (SerpApi), then
/// booking-grade prices (Duffel), Amadeus (Enterprise credentials since
/// Self-Service shut) and Kiwi for users who still hold keys, and last
/// Travelpayouts, whose prices are cached searches of other users (cheap,
/// but up to days old).
pub const DEFAULT_ORDER: [&str; 5] = ["serpapi", "duffel", "amadeus", "tequila", "travelpayouts"];

/// A non-empty, trimmed environment variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn env_parse<T: std::str::FromStr>(
    name: &'static str,
    what: &str,
) -> Result<Option<T>, SetupError> {
    match env(name) {
        None => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| SetupError::Invalid {
            name,
            message: format!("`{raw}` is not {what}"),
        }),
    }
}

/// The daily budget a source has when `P_DAILY_BUDGET` is unset: Duffel's
/// [`duffel::DEFAULT_DAILY_BUDGET`] (its excess-search fees), none for the
/// others.
pub fn default_daily_budget(name: &str) -> Option<u64> {
    match name {
        "duffel" => Some(duffel::DEFAULT_DAILY_BUDGET),
        _ => None,
    }
}

/// A source's daily budget: `P_DAILY_BUDGET` (0 = unlimited), else its
/// [`default_daily_budget`].
pub fn daily_budget(name: &str) -> Result<Option<u64>, SetupError> {
    let var: &'static str =
        Box::leak(format!("{}_DAILY_BUDGET", name.to_ascii_uppercase()).into_boxed_str());
    let per_day: Option<u64> =
        env_parse(var, "a whole number of searches per day (0 = unlimited)")?;
    Ok(match per_day {
        Some(0) => None,
        Some(n) => Some(n),
        None => default_daily_budget(name),
    })
}

/// What a user should know about a source before relying on it, shown by
/// `farewatch providers` (the README's Fare sources table says the same).
pub fn note(name: &str) -> Option<String> {
    match name {
        "duffel" => Some(format!(
            "Duffel bills every search past a 1,500:1 search-to-book ratio, which a \
             search-only alert engine reaches quickly; hence a default budget of {} \
             searches a day (DUFFEL_DAILY_BUDGET, 0 = unlimited)",
            duffel::DEFAULT_DAILY_BUDGET
        )),
        "amadeus" => Some(
            "Amadeus Self-Service shut on 2026-07-17 and its keys stopped working; \
             kept for Amadeus Enterprise credentials (set AMADEUS_BASE_URL to the \
             host Amadeus gives you)"
                .to_owned(),
        ),
        _ => None,
    }
}

/// A source's credential variables, for messages.
pub fn credentials(name: &str) -> &'static [&'static str] {
    match name {
        "serpapi" => &["SERPAPI_API_KEY"],
        "duffel" => &["DUFFEL_ACCESS_TOKEN"],
        "amadeus" => &["AMADEUS_CLIENT_ID", "AMADEUS_CLIENT_SECRET"],
        "tequila" => &["TEQUILA_API_KEY"],
        "travelpayouts" => &["TRAVELPAYOUTS_TOKEN"],
        _ => &[],
    }
}

/// Per-source settings read from `P_*` variables (names are leaked to
/// `'static` once at start-up: there are five sources).
struct SourceEnv {
    prefix: &'static str,
}

impl SourceEnv {
    fn var(&self, suffix: &str) -> &'static str {
        Box::leak(format!("{}_{suffix}", self.prefix).into_boxed_str())
    }

    fn base_url(&self, default: &str) -> String {
        env(self.var("BASE_URL"))
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    fn timeout(&self, default: Duration) -> Result<Duration, SetupError> {
        match env(self.var("TIMEOUT")) {
            Some(raw) => parse_duration(self.var("TIMEOUT"), &raw),
            None => Ok(default),
        }
    }

    fn limits(&self, defaults: Limits) -> Result<Limits, SetupError> {
        let max_concurrency: Option<usize> =
            env_parse(self.var("MAX_CONCURRENCY"), "a whole number")?;
        if max_concurrency == Some(0) {
            return Err(SetupError::Invalid {
                name: self.var("MAX_CONCURRENCY"),
                message: "must be at least 1".into(),
            });
        }
        let rate: Option<f64> =
            env_parse(self.var("RATE_LIMIT"), "a number of requests per second")?;
        if rate.is_some_and(|r| r < 0.0 || !r.is_finite()) {
            return Err(SetupError::Invalid {
                name: self.var("RATE_LIMIT"),
                message: "must be 0 (unlimited) or more".into(),
            });
        }
        Ok(Limits {
            max_concurrency: max_concurrency.unwrap_or(defaults.max_concurrency),
            rate_per_sec: rate.unwrap_or(defaults.rate_per_sec),
            timeout: defaults.timeout,
        })
    }
}

fn secret(name: &str) -> SecretString {
    SecretString::from(env(name).unwrap_or_default())
}

/// The fare sources to run, in priority order, after checking their
/// credentials (missing variables are added to `missing`).
pub fn select(
    args: &RunArgs,
    missing: &mut Vec<&'static str>,
) -> Result<Vec<&'static str>, SetupError> {
    if args.demo {
        return Ok(vec!["demo"]);
    }
    let explicit = env("FARE_SOURCES");
    let wanted: Vec<String> = match &explicit {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => DEFAULT_ORDER.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut selected = Vec::new();
    for name in &wanted {
        let Some(&known) = DEFAULT_ORDER.iter().find(|k| **k == name.as_str()) else {
            return Err(SetupError::Invalid {
                name: "FARE_SOURCES",
                message: format!(
                    "`{name}` is not a fare source; expected some of {}",
                    DEFAULT_ORDER.join(", ")
                ),
            });
        };
        let vars = credentials(known);
        let set = vars
            .iter()
            .filter(|v| env(v).is_some() || cli_has(args, v))
            .count();
        if set == vars.len() {
            selected.push(known);
        } else if explicit.is_some() || set > 0 {
            // Listed explicitly, or half-configured: say what is missing.
            missing.extend(
                vars.iter()
                    .filter(|v| env(v).is_none() && !cli_has(args, v)),
            );
        }
    }
    if selected.is_empty() && missing.iter().all(|m| m.starts_with("TWILIO")) {
        missing.insert(
            0,
            "a fare source (SERPAPI_API_KEY, DUFFEL_ACCESS_TOKEN, AMADEUS_CLIENT_ID and AMADEUS_CLIENT_SECRET, TEQUILA_API_KEY or TRAVELPAYOUTS_TOKEN)",
        );
    }
    Ok(selected)
}

/// Builds the selected sources' pools.
pub fn build_pools(
    names: &[&str],
    args: &RunArgs,
    client: &reqwest::Client,
    store: &Store,
) -> Result<Vec<Arc<FarePool>>, SetupError> {
    names
        .iter()
        .map(|name| {
            if *name == "demo" {
                let source = DemoSource::default();
                let limits = source.default_limits();
                return Ok(Arc::new(FarePool::new(Arc::new(source), limits)));
            }
            build(name, args, client, store).map(Arc::new)
        })
        .collect()
}

/// Amadeus's settings may also come as flags.
pub fn cli_has(args: &RunArgs, var: &str) -> bool {
    let cfg = &args.config;
    let flag = match var {
        "AMADEUS_CLIENT_ID" => &cfg.amadeus_client_id,
        "AMADEUS_CLIENT_SECRET" => &cfg.amadeus_client_secret,
        _ => return false,
    };
    flag.as_deref().is_some_and(|v| !v.trim().is_empty())
}

fn build(
    name: &str,
    args: &RunArgs,
    client: &reqwest::Client,
    store: &Store,
) -> Result<FarePool, SetupError> {
    let client = client.clone();
    let (source, env): (Arc<dyn FareSource>, SourceEnv) = match name {
        "serpapi" => {
            let e = SourceEnv { prefix: "SERPAPI" };
            let config = SerpApiConfig {
                base_url: e.base_url(serpapi::DEFAULT_BASE_URL),
                api_key: secret("SERPAPI_API_KEY"),
                timeout: e.timeout(serpapi::DEFAULT_TIMEOUT)?,
            };
            (Arc::new(SerpApi::new(client, config)), e)
        }
        "duffel" => {
            let e = SourceEnv { prefix: "DUFFEL" };
            let config = DuffelConfig {
                base_url: e.base_url(duffel::DEFAULT_BASE_URL),
                access_token: secret("DUFFEL_ACCESS_TOKEN"),
                timeout: e.timeout(duffel::DEFAULT_TIMEOUT)?,
            };
            (Arc::new(Duffel::new(client, config)), e)
        }
        "tequila" => {
            let e = SourceEnv { prefix: "TEQUILA" };
            let config = TequilaConfig {
                base_url: e.base_url(tequila::DEFAULT_BASE_URL),
                api_key: secret("TEQUILA_API_KEY"),
                timeout: e.timeout(tequila::DEFAULT_TIMEOUT)?,
            };
            (Arc::new(Tequila::new(client, config)), e)
        }
        "travelpayouts" => {
            let e = SourceEnv {
                prefix: "TRAVELPAYOUTS",
            };
            let config = TravelpayoutsConfig {
                base_url: e.base_url(travelpayouts::DEFAULT_BASE_URL),
                token: secret("TRAVELPAYOUTS_TOKEN"),
                timeout: e.timeout(travelpayouts::DEFAULT_TIMEOUT)?,
            };
            (Arc::new(Travelpayouts::new(client, config)), e)
        }
        _ => {
            // Amadeus: flags or environment (clap reads both).
            let cfg = &args.config;
            let e = SourceEnv { prefix: "AMADEUS" };
            let config = AmadeusConfig {
                base_url: cfg
                    .amadeus_base_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(amadeus::DEFAULT_BASE_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                client_id: cfg
                    .amadeus_client_id
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                client_secret: SecretString::from(
                    cfg.amadeus_client_secret
                        .as_deref()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                ),
                timeout: parse_duration("AMADEUS_TIMEOUT", &cfg.amadeus_timeout)?,
            };
            let tokens: Arc<dyn TokenCache> = Arc::new(store.clone());
            (Arc::new(Amadeus::new(client, config, Some(tokens))), e)
        }
    };
    let limits = env.limits(source.default_limits())?;
    let budget = daily_budget(source.name())?;
    let mut pool = FarePool::new(source, limits);
    if let Some(per_day) = budget {
        pool = pool.with_budget(Budget::new(per_day, DayClock::system()));
    }
    Ok(pool)
}
