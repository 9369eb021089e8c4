//! What runs: the fare sources in order, the SMS sender, the named
//! channels, the store, the cache. Checked whole before anything is opened.

use std::time::Duration;

use super::registry::{self, ChannelEntry, FareSourceEntry, FARE_SOURCES};
use super::{ConfigError, Env};
use crate::domain::Currency;
use crate::engine::{NotifyLimits, DEFAULT_SETTLE_BOUND, DEFAULT_SETTLE_DELAY};
use crate::fare::failover::Strategy;
use crate::notify::twilio::{self, Sender, TwilioConfig};
use crate::store::StoreLocation;
use crate::upstream::Limits;

/// How alerts leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real sources and real channels.
    Live,
    /// Real sources; every alert printed instead of sent; nothing saved.
    DryRun,
    /// The built-in demo source; alerts printed; state in memory.
    Demo,
    /// Real sources, nothing sent (search jobs: `search`, `worker`, and
    /// `serve`'s in-process worker): no channel is needed.
    Lookups,
}

impl Mode {
    /// Whether alerts are printed instead of sent.
    pub fn prints(self) -> bool {
        !matches!(self, Self::Live)
    }
}

/// A fare source that will run.
#[derive(Debug, Clone, Copy)]
pub struct FareSourcePlan {
    /// Which source.
    pub entry: &'static FareSourceEntry,
    /// Searches per UTC day (`None`: unlimited).
    pub daily_budget: Option<u64>,
}

/// Who texts phone numbers.
#[derive(Debug)]
pub enum SmsPlan {
    /// Twilio, configured.
    Twilio(TwilioConfig),
    /// The console (demo and dry runs).
    Console,
    /// Nobody: a channels-only setup; rows with phone numbers are rejected.
    Unconfigured,
}

/// One validated configuration. `Debug` shows no secret.
#[derive(Debug)]
pub struct Plan {
    /// Live, dry run or demo.
    pub mode: Mode,
    /// The fare sources, in the order they are asked (the demo source in
    /// demo mode: an empty list).
    pub sources: Vec<FareSourcePlan>,
    /// First answer, or compare the first K.
    pub strategy: Strategy,
    /// Who texts phone numbers.
    pub sms: SmsPlan,
    /// How hard SMS may be driven.
    pub sms_limits: NotifyLimits,
    /// Named channels: the variable that configures each (`SLACK_WEBHOOK_TEAM`) and its kind.
    pub channels: Vec<(String, &'static ChannelEntry)>,
    /// The state database.
    pub store: StoreLocation,
    /// How long a quote is cached (zero: not at all).
    pub quote_ttl: Duration,
    /// Redis for the quote cache (a secret: may carry a password).
    pub redis_url: Option<String>,
    /// Provider limits held fleet-wide in that Redis (`REDIS_URL` set and
    /// `FAREWATCH_FLEET_LIMITS` not `off`); `None`: each process on its own.
    pub fleet: Option<FleetPlan>,
    /// Currency for rows that name none.
    pub default_currency: Currency,
}

/// Fleet-wide provider limits ([`crate::fleet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetPlan {
    /// `FAREWATCH_FLEET_SIZE`: the processes sharing the limits, for each
    /// one's share while Redis is down (`None`: as many as Redis last
    /// counted, at least [`crate::fleet::DEFAULT_FLEET_SIZE`]).
    pub fleet_size: Option<u32>,
}

/// The variables SMS needs.
pub const TWILIO_VARS: &str =
    "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM (or TWILIO_MESSAGING_SERVICE_SID)";

/// Placeholder defaults for checking a source's limit settings before the
/// source (which knows its real defaults) is built.
const ANY_LIMITS: Limits = Limits {
    max_concurrency: 1,
    rate_per_sec: 0.0,
    timeout: Duration::from_secs(1),
};

/// Twilio's per-request timeout when `TWILIO_TIMEOUT` is unset.
const TWILIO_TIMEOUT: Duration = Duration::from_secs(15);

impl Plan {
    /// Reads and checks everything; every missing variable is named at once.
    /// `compare`: ask the first K sources at once and keep the cheapest.
    pub fn from_env(env: &Env, mode: Mode, compare: Option<usize>) -> Result<Self, ConfigError> {
        let default_currency = Currency::parse(env.get("FAREWATCH_CURRENCY").unwrap_or("EUR"))
            .map_err(|message| ConfigError::invalid("FAREWATCH_CURRENCY", message))?;
        let quote_ttl = env.duration_or_zero("FAREWATCH_QUOTE_TTL", Duration::from_secs(300))?;

        let channels = named_channels(env);
        let sms_configured = [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_FROM",
            "TWILIO_MESSAGING_SERVICE_SID",
        ]
        .iter()
        .any(|v| env.has(v));
        // SMS is needed unless alerts are printed, or the user only sends
        // to named channels.
        let wants_sms = sms_configured || channels.is_empty();
        let mut missing: Vec<String> = Vec::new();
        if !mode.prints() && wants_sms {
            missing.extend(twilio_missing(env));
        }

        let store = match env.get("DATABASE_URL") {
            Some(url) => StoreLocation::parse(url)?,
            // The demo keeps its state in memory so every demo run shows alerts.
            None if mode == Mode::Demo => StoreLocation::Memory,
            None => StoreLocation::default_path()?,
        };
        let sources = if mode == Mode::Demo {
            Vec::new()
        } else {
            select_sources(env, &mut missing)?
        };
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }

        let twilio_timeout = env.duration("TWILIO_TIMEOUT", TWILIO_TIMEOUT)?;
        let sms = if mode.prints() {
            SmsPlan::Console
        } else if wants_sms {
            SmsPlan::Twilio(TwilioConfig {
                base_url: env.base_url("TWILIO_BASE_URL", twilio::DEFAULT_BASE_URL),
                account_sid: env.get("TWILIO_ACCOUNT_SID").unwrap_or_default().to_owned(),
                auth_token: env.secret("TWILIO_AUTH_TOKEN"),
                sender: match env.get("TWILIO_MESSAGING_SERVICE_SID") {
                    Some(sid) => Sender::MessagingService(sid.to_owned()),
                    None => Sender::From(env.get("TWILIO_FROM").unwrap_or_default().to_owned()),
                },
                timeout: twilio_timeout,
            })
        } else {
            SmsPlan::Unconfigured
        };
        let twilio = registry::limits(
            env,
            "TWILIO",
            Limits {
                max_concurrency: twilio::DEFAULT_MAX_CONCURRENCY,
                rate_per_sec: twilio::DEFAULT_RATE_PER_SEC,
                timeout: twilio_timeout,
            },
        )?;
        let sms_limits = NotifyLimits {
            max_concurrency: twilio.max_concurrency,
            rate_per_sec: twilio.rate_per_sec,
            // The notifier's own timeout fires first; this bounds everything around it.
            timeout: twilio_timeout + Duration::from_secs(5),
            settle_delay: env.duration("TWILIO_SETTLE_DELAY", DEFAULT_SETTLE_DELAY)?,
            settle_bound: env.duration("TWILIO_SETTLE_BOUND", DEFAULT_SETTLE_BOUND)?,
        };
        // Webhooks are signed: a URL without its secret is an error now, not
        // at the first alert.
        for (var, entry) in &channels {
            if entry.kind == "webhook" {
                let suffix = &var[entry.prefix.len()..];
                let secret_var = format!("WEBHOOK_SECRET_{suffix}");
                if !env.has(&secret_var) {
                    return Err(ConfigError::invalid(
                        var.clone(),
                        format!("set, but {secret_var} is not: every webhook is signed; set a shared secret"),
                    ));
                }
            }
        }
        let strategy = match compare {
            Some(k) if k >= 2 => Strategy::Compare(k),
            _ => Strategy::FirstAnswer,
        };
        Ok(Self {
            mode,
            sources,
            strategy,
            sms,
            sms_limits,
            channels,
            store,
            quote_ttl,
            redis_url: env.get("REDIS_URL").map(str::to_owned),
            fleet: fleet_plan(env, mode)?,
            default_currency,
        })
    }

    /// Whether phone numbers can be texted (or printed).
    pub fn sms_usable(&self) -> bool {
        !matches!(self.sms, SmsPlan::Unconfigured)
    }

    /// Whether a named channel is configured by `var` (`SLACK_WEBHOOK_TEAM`).
    pub fn has_channel(&self, var: &str) -> bool {
        self.channels.iter().any(|(v, _)| v == var)
    }
}

/// Fleet-wide limits: on whenever `REDIS_URL` is set (not in the demo),
/// unless `FAREWATCH_FLEET_LIMITS=off`.
fn fleet_plan(env: &Env, mode: Mode) -> Result<Option<FleetPlan>, ConfigError> {
    let enabled = match env.get("FAREWATCH_FLEET_LIMITS") {
        None => true,
        Some(value) if value.eq_ignore_ascii_case("on") => true,
        Some(value) if value.eq_ignore_ascii_case("off") => false,
        Some(value) => {
            return Err(ConfigError::invalid(
                "FAREWATCH_FLEET_LIMITS",
                format!("`{value}` is neither `on` nor `off`"),
            ))
        }
    };
    let fleet_size: Option<u32> =
        env.parse("FAREWATCH_FLEET_SIZE", "a whole number of processes")?;
    if fleet_size == Some(0) {
        return Err(ConfigError::invalid(
            "FAREWATCH_FLEET_SIZE",
            "must be at least 1",
        ));
    }
    Ok((enabled && mode != Mode::Demo && env.has("REDIS_URL")).then_some(FleetPlan { fleet_size }))
}

/// The Twilio variables still to set for SMS (empty: SMS is configured).
pub fn twilio_missing(env: &Env) -> Vec<String> {
    let mut missing: Vec<String> =
        registry::missing(env, &["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
            .into_iter()
            .map(str::to_owned)
            .collect();
    if !env.has("TWILIO_FROM") && !env.has("TWILIO_MESSAGING_SERVICE_SID") {
        missing.push("TWILIO_FROM (or TWILIO_MESSAGING_SERVICE_SID)".into());
    }
    missing
}

/// Every configured named channel, sorted by variable.
fn named_channels(env: &Env) -> Vec<(String, &'static ChannelEntry)> {
    let mut channels: Vec<(String, &'static ChannelEntry)> = registry::CHANNELS
        .iter()
        .flat_map(|entry| {
            env.with_prefix(entry.prefix)
                .filter(|(var, _)| var.len() > entry.prefix.len())
                .map(move |(var, _)| (var.to_owned(), entry))
        })
        .collect();
    channels.sort_by(|a, b| a.0.cmp(&b.0));
    channels
}

/// The fare sources asked, in order: `FARE_SOURCES`, or every source whose
/// credentials are set in the default order. Missing credentials of a
/// listed (or half-configured) source are added to `missing`.
fn select_sources(
    env: &Env,
    missing: &mut Vec<String>,
) -> Result<Vec<FareSourcePlan>, ConfigError> {
    let explicit = env.list("FARE_SOURCES");
    let wanted: Vec<&'static FareSourceEntry> = match &explicit {
        Some(names) => names
            .iter()
            .map(|name| {
                registry::fare_source(name).ok_or_else(|| {
                    ConfigError::invalid(
                        "FARE_SOURCES",
                        format!(
                            "`{name}` is not a fare source; expected some of {}",
                            registry::fare_source_names()
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        None => FARE_SOURCES.iter().collect(),
    };
    let mut selected = Vec::new();
    for entry in wanted {
        let absent = registry::missing(env, entry.credentials);
        if absent.is_empty() {
            // Malformed limits are reported now, before anything runs.
            registry::limits(env, &registry::prefix(entry.name), ANY_LIMITS)?;
            registry::fleet_burst(env, &registry::prefix(entry.name))?;
            selected.push(FareSourcePlan {
                entry,
                daily_budget: registry::daily_budget(env, entry)?,
            });
        } else if explicit.is_some() || absent.len() < entry.credentials.len() {
            // Listed explicitly, or half-configured: say what is missing.
            missing.extend(absent.into_iter().map(str::to_owned));
        }
    }
    if selected.is_empty() && missing.iter().all(|m| m.starts_with("TWILIO")) {
        let each: Vec<String> = FARE_SOURCES
            .iter()
            .map(|e| e.credentials.join(" and "))
            .collect();
        missing.insert(0, format!("a fare source ({})", each.join(", ")));
    }
    Ok(selected)
}

/// A fare source as `farewatch providers` shows it.
#[derive(Debug)]
pub struct SourceOverview {
    /// Which source.
    pub entry: &'static FareSourceEntry,
    /// Credentials still to set (empty: configured).
    pub missing: Vec<&'static str>,
    /// Its place in the order sources are asked (1 = first), when it runs.
    pub priority: Option<usize>,
    /// Its daily budget, or why its setting is unusable.
    pub daily_budget: Result<Option<u64>, ConfigError>,
}

impl SourceOverview {
    /// Every fare source, configured or not, in registry order.
    pub fn all(env: &Env) -> Vec<Self> {
        let order: Vec<String> = env
            .list("FARE_SOURCES")
            .unwrap_or_else(|| FARE_SOURCES.iter().map(|e| e.name.to_owned()).collect());
        // The sources that run, in the order they are asked.
        let running: Vec<&str> = order
            .iter()
            .map(String::as_str)
            .filter(|n| {
                registry::fare_source(n)
                    .is_some_and(|e| registry::missing(env, e.credentials).is_empty())
            })
            .collect();
        FARE_SOURCES
            .iter()
            .map(|entry| Self {
                entry,
                missing: registry::missing(env, entry.credentials),
                priority: running.iter().position(|n| *n == entry.name).map(|p| p + 1),
                daily_budget: registry::daily_budget(env, entry),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut all = vec![("DATABASE_URL", "sqlite::memory:")];
        all.extend_from_slice(pairs);
        Env::from_pairs(all)
    }

    const TWILIO: [(&str, &str); 3] = [
        ("TWILIO_ACCOUNT_SID", "ACx"),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("TWILIO_FROM", "+15005550006"),
    ];

    #[test]
    fn an_unknown_source_is_an_error_not_a_fallback() {
        let mut pairs = TWILIO.to_vec();
        pairs.push(("FARE_SOURCES", "serpapi,skyscanner"));
        pairs.push(("SERPAPI_API_KEY", "k"));
        let error = Plan::from_env(&env(&pairs), Mode::Live, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "FARE_SOURCES: `skyscanner` is not a fare source; expected some of \
             serpapi, duffel, amadeus, tequila, travelpayouts"
        );
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let error = Plan::from_env(&env(&[("FARE_SOURCES", "amadeus")]), Mode::Live, None)
            .unwrap_err()
            .to_string();
        for var in [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_FROM",
            "AMADEUS_CLIENT_ID",
            "AMADEUS_CLIENT_SECRET",
        ] {
            assert!(error.contains(var), "{var} missing from: {error}");
        }
    }

    #[test]
    fn sources_run_in_the_listed_order_with_their_budgets() {
        let mut pairs = TWILIO.to_vec();
        pairs.extend([
            ("FARE_SOURCES", "duffel, serpapi"),
            ("SERPAPI_API_KEY", "k"),
            ("DUFFEL_ACCESS_TOKEN", "t"),
            ("TEQUILA_API_KEY", "unused: not listed"),
        ]);
        let plan = Plan::from_env(&env(&pairs), Mode::Live, Some(2)).unwrap();
        let names: Vec<&str> = plan.sources.iter().map(|s| s.entry.name).collect();
        assert_eq!(names, ["duffel", "serpapi"]);
        assert_eq!(
            plan.sources[0].daily_budget,
            Some(crate::fare::duffel::DEFAULT_DAILY_BUDGET)
        );
        assert_eq!(plan.strategy, Strategy::Compare(2));
        assert!(matches!(plan.sms, SmsPlan::Twilio(_)));
        let overview = SourceOverview::all(&env(&pairs));
        let priority: Vec<(&str, Option<usize>)> = overview
            .iter()
            .map(|o| (o.entry.name, o.priority))
            .collect();
        assert_eq!(
            priority,
            [
                ("serpapi", Some(2)),
                ("duffel", Some(1)),
                ("amadeus", None),
                ("tequila", None),
                ("travelpayouts", None)
            ]
        );
    }

    #[test]
    fn a_channels_only_setup_needs_no_twilio_and_a_webhook_needs_its_secret() {
        let pairs = [
            ("SERPAPI_API_KEY", "k"),
            ("SLACK_WEBHOOK_TEAM", "https://hooks.example/x"),
        ];
        let plan = Plan::from_env(&env(&pairs), Mode::Live, None).unwrap();
        assert!(!plan.sms_usable());
        assert!(plan.has_channel("SLACK_WEBHOOK_TEAM"));
        let pairs = [
            ("SERPAPI_API_KEY", "k"),
            ("WEBHOOK_URL_OPS", "https://ops.example/hook"),
        ];
        let error = Plan::from_env(&env(&pairs), Mode::Live, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("WEBHOOK_SECRET_OPS"), "{error}");
    }

    #[test]
    fn fleet_limits_follow_redis_unless_turned_off() {
        let source = ("SERPAPI_API_KEY", "k");
        let redis = ("REDIS_URL", "redis://127.0.0.1:6379/");
        let fleet = |pairs: &[(&str, &str)], mode| {
            Plan::from_env(&env(pairs), mode, None).map(|plan| plan.fleet)
        };
        assert_eq!(fleet(&[source], Mode::DryRun).unwrap(), None, "no Redis");
        assert_eq!(
            fleet(&[source, redis], Mode::DryRun).unwrap(),
            Some(FleetPlan { fleet_size: None })
        );
        assert_eq!(
            fleet(
                &[source, redis, ("FAREWATCH_FLEET_SIZE", "3")],
                Mode::DryRun
            )
            .unwrap(),
            Some(FleetPlan {
                fleet_size: Some(3)
            })
        );
        assert_eq!(
            fleet(
                &[source, redis, ("FAREWATCH_FLEET_LIMITS", "OFF")],
                Mode::DryRun
            )
            .unwrap(),
            None
        );
        assert_eq!(
            fleet(&[redis], Mode::Demo).unwrap(),
            None,
            "the demo has no providers"
        );
        for (var, value, says) in [
            (
                "FAREWATCH_FLEET_LIMITS",
                "maybe",
                "`maybe` is neither `on` nor `off`",
            ),
            ("FAREWATCH_FLEET_SIZE", "0", "must be at least 1"),
            (
                "FAREWATCH_FLEET_SIZE",
                "three",
                "`three` is not a whole number",
            ),
            ("SERPAPI_FLEET_BURST", "0", "must be at least 1"),
        ] {
            let error = fleet(&[source, redis, (var, value)], Mode::DryRun)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(var) && error.contains(says), "{error}");
        }
    }

    #[test]
    fn a_dry_run_prints_instead_of_texting_but_still_needs_a_source() {
        let error = Plan::from_env(&env(&[]), Mode::DryRun, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("a fare source"), "{error}");
        let plan = Plan::from_env(&env(&[("SERPAPI_API_KEY", "k")]), Mode::DryRun, None).unwrap();
        assert!(matches!(plan.sms, SmsPlan::Console));
        let plan = Plan::from_env(&Env::default(), Mode::Demo, None).unwrap();
        assert!(plan.sources.is_empty() && plan.store == StoreLocation::Memory);
    }
}
