//! `farewatch flights poll` and `farewatch flights get`: flight status from
//! the configured providers (with failover), snapshots in Redis.
//!
//! Providers come from the environment: `AVIATIONSTACK_ACCESS_KEY`,
//! `FLIGHTAWARE_API_KEY`, `OPENSKY_CLIENT_ID` + `OPENSKY_CLIENT_SECRET`
//! (each also `P_BASE_URL`, `P_MAX_CONCURRENCY`, `P_RATE_LIMIT`); the order
//! is `STATUS_PROVIDERS` or aviationstack, flightaware, opensky. `--demo`
//! uses the built-in mock provider.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use farewatch::engine::SavedHealth;
use farewatch::status::aviationstack::{self, Aviationstack, AviationstackConfig};
use farewatch::status::failover::{StatusFailover, StatusPool, DEFAULT_STATUS_TTL};
use farewatch::status::flightaware::{self, FlightAware, FlightAwareConfig};
use farewatch::status::mock::{MockStatus, Scenario};
use farewatch::status::opensky::{self, OpenSky, OpenSkyConfig};
use farewatch::status::poller::poll_once;
use farewatch::status::snapshots::{Snapshot, SnapshotStore, DEFAULT_PREFIX, DEFAULT_SNAPSHOT_TTL};
use farewatch::status::{FlightState, StatusProvider, StatusQuery};
use farewatch::store::Store;
use farewatch::upstream::breaker::BreakerConfig;
use farewatch::upstream::Limits;
use secrecy::SecretString;

use crate::cli::Format;
use crate::setup::{parse_duration, SetupError};
use crate::sources::env;
use crate::Exit;

/// The default priority: Aviationstack has the widest filters, FlightAware
/// the best data per flight, OpenSky only airport windows.
const DEFAULT_STATUS_ORDER: [&str; 3] = ["aviationstack", "flightaware", "opensky"];

#[derive(Debug, Subcommand)]
pub enum FlightsCommand {
    /// Poll flights and keep their latest status in Redis under flight:<iata>.
    Poll(PollArgs),
    /// Show one flight's status: the Redis snapshot if fresh, else the providers.
    Get(GetArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Use the built-in mock provider (no keys, no network).
    #[arg(long)]
    pub demo: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Redis for snapshots.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Key prefix for snapshots.
    #[arg(long, env = "FLIGHT_KEY_PREFIX", default_value = DEFAULT_PREFIX)]
    pub key_prefix: String,
    /// How long a snapshot lives, e.g. 15m.
    #[arg(long, env = "FLIGHT_SNAPSHOT_TTL", default_value = "15m")]
    pub snapshot_ttl: String,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Departure airport (IATA).
    #[arg(long, env = "DEP_IATA")]
    pub dep: Option<String>,
    /// Arrival airport (IATA).
    #[arg(long, env = "ARR_IATA")]
    pub arr: Option<String>,
    /// Only flights in this state (scheduled, active, delayed, landed, cancelled, diverted, incident).
    #[arg(long, env = "FLIGHT_STATUS")]
    pub status: Option<String>,
    /// At most this many flights per poll.
    #[arg(long, env = "MAX_FLIGHTS", default_value_t = 10)]
    pub limit: usize,
    /// Time between polls, e.g. 60s (POLL_INTERVAL_SECONDS also accepted, in seconds).
    #[arg(long, default_value = "60s")]
    pub interval: String,
    /// Poll once and exit (for cron).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The flight, e.g. MU2557.
    pub flight: String,
    /// Its date (YYYY-MM-DD), local to the departure airport.
    #[arg(long)]
    pub date: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

fn state(raw: &str) -> Result<FlightState, SetupError> {
    serde_json::from_value(serde_json::Value::String(raw.trim().to_ascii_lowercase())).map_err(|_| SetupError::Invalid {
        name: "FLIGHT_STATUS",
        message: format!("`{raw}` is not a flight status; expected scheduled, active, delayed, landed, cancelled, diverted or incident"),
    })
}

fn limits(prefix: &str, timeout: Duration) -> Limits {
    let parse = |suffix: &str| env(&format!("{prefix}_{suffix}"));
    Limits {
        max_concurrency: parse("MAX_CONCURRENCY")
            .and_then(|v| v.parse().ok())
            .unwrap_or(4),
        rate_per_sec: parse("RATE_LIMIT")
            .and_then(|v| v.parse().ok())
            .unwrap_or(2.0),
        timeout,
    }
}

/// The configured status providers, in priority order.
pub fn providers(demo: bool, client: &reqwest::Client) -> Result<StatusFailover, SetupError> {
    let breaker = BreakerConfig {
        failure_threshold: env("STATUS_BREAKER_THRESHOLD")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        open_for: env("STATUS_BREAKER_RESET")
            .map(|v| parse_duration("STATUS_BREAKER_RESET", &v))
            .transpose()?
            .unwrap_or(Duration::from_secs(10 * 60)),
        ..BreakerConfig::default()
    };
    let mut pools: Vec<Arc<StatusPool>> = Vec::new();
    if demo {
        // Today's flights out of Frankfurt and London, one of each kind of news.
        let today = jiff::Zoned::now().date();
        let mock: Arc<dyn StatusProvider> = Arc::new(
            MockStatus::new()
                .with_flight("LH400", today, Scenario::OnTime)
                .with_flight("LH902", today, Scenario::Delayed { minutes: 45 })
                .with_flight(
                    "LH1234",
                    today,
                    Scenario::GateChange {
                        from: "A12".into(),
                        to: "B44".into(),
                    },
                )
                .with_flight("LH2020", today, Scenario::Cancelled)
                .with_flight("BA117", today, Scenario::Departed)
                .with_flight("BA283", today, Scenario::Landed),
        );
        pools.push(Arc::new(StatusPool::for_status(
            mock,
            limits("MOCK", Duration::from_secs(10)),
            breaker,
        )));
        return Ok(StatusFailover::new(pools, DEFAULT_STATUS_TTL));
    }
    let order: Vec<String> = match env("STATUS_PROVIDERS") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => DEFAULT_STATUS_ORDER
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    };
    for name in order {
        let base = |var: &str, default: &str| {
            env(var)
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        let provider: Arc<dyn StatusProvider> = match name.as_str() {
            "aviationstack" => {
                let Some(key) = env("AVIATIONSTACK_ACCESS_KEY") else {
                    continue;
                };
                let mut config = AviationstackConfig::new(SecretString::from(key));
                config.base_url = base("AVIATIONSTACK_BASE_URL", aviationstack::DEFAULT_BASE_URL);
                Arc::new(Aviationstack::new(client.clone(), config))
            }
            "flightaware" => {
                let Some(key) = env("FLIGHTAWARE_API_KEY") else {
                    continue;
                };
                let mut config = FlightAwareConfig::new(SecretString::from(key));
                config.base_url = base("FLIGHTAWARE_BASE_URL", flightaware::DEFAULT_BASE_URL);
                Arc::new(FlightAware::new(client.clone(), config))
            }
            "opensky" => {
                let (Some(id), Some(secret)) =
                    (env("OPENSKY_CLIENT_ID"), env("OPENSKY_CLIENT_SECRET"))
                else {
                    continue;
                };
                let mut config = OpenSkyConfig::new(id, SecretString::from(secret));
                config.base_url = base("OPENSKY_BASE_URL", opensky::DEFAULT_BASE_URL);
                config.auth_url = base("OPENSKY_AUTH_URL", opensky::DEFAULT_AUTH_URL);
                Arc::new(OpenSky::new(client.clone(), config))
            }
            other => {
                return Err(SetupError::Invalid {
                    name: "STATUS_PROVIDERS",
                    message: format!(
                        "`{other}` is not a status provider; expected some of {}",
                        DEFAULT_STATUS_ORDER.join(", ")
                    ),
                })
            }
        };
        let prefix = name.to_ascii_uppercase();
        let timeout = provider.timeout();
        pools.push(Arc::new(StatusPool::for_status(
            provider,
            limits(&prefix, timeout),
            breaker,
        )));
    }
    if pools.is_empty() {
        return Err(SetupError::Missing(vec![
            "a flight-status provider (AVIATIONSTACK_ACCESS_KEY, FLIGHTAWARE_API_KEY, or OPENSKY_CLIENT_ID and OPENSKY_CLIENT_SECRET)",
        ]));
    }
    Ok(StatusFailover::new(pools, DEFAULT_STATUS_TTL))
}

async fn snapshots(common: &Common, required: bool) -> Result<Option<SnapshotStore>, SetupError> {
    let ttl =
        parse_duration("FLIGHT_SNAPSHOT_TTL", &common.snapshot_ttl).unwrap_or(DEFAULT_SNAPSHOT_TTL);
    match common
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(url) => match SnapshotStore::connect(url, &common.key_prefix, ttl).await {
            Ok(store) => Ok(Some(store)),
            Err(error) if required => Err(SetupError::Invalid {
                name: "REDIS_URL",
                message: error.to_string(),
            }),
            Err(error) => {
                eprintln!("warning: {error}; asking the providers directly");
                Ok(None)
            }
        },
        None if required => Err(SetupError::Missing(vec![
            "REDIS_URL (where flight snapshots are kept)",
        ])),
        None => Ok(None),
    }
}

/// Where a status provider's last health snapshot is kept in the state store.
pub fn status_health_key(provider: &str) -> String {
    format!("health:status:{provider}")
}

/// The state store, if one can be opened (`DATABASE_URL` or the default path).
async fn state_store() -> Option<Store> {
    match Store::open_setting(env("DATABASE_URL").as_deref()).await {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::warn!(%error, "provider health will not be saved");
            None
        }
    }
}

/// Runs a `flights` subcommand.
pub async fn run(command: FlightsCommand) -> anyhow::Result<Exit> {
    let client = farewatch::upstream::http::build_client();
    match command {
        FlightsCommand::Poll(args) => poll(args, &client).await,
        FlightsCommand::Get(args) => get(args, &client).await,
    }
}

fn config_error(error: &SetupError) -> Exit {
    eprintln!("error: {error}");
    Exit::Config
}

async fn poll(args: PollArgs, client: &reqwest::Client) -> anyhow::Result<Exit> {
    let interval = match env("POLL_INTERVAL_SECONDS") {
        Some(secs) if args.interval == "60s" => {
            parse_duration("POLL_INTERVAL_SECONDS", &format!("{secs}s"))
        }
        _ => parse_duration("--interval", &args.interval),
    };
    let interval = match interval {
        Ok(i) => i,
        Err(e) => return Ok(config_error(&e)),
    };
    let filter_state = match args.status.as_deref().map(state).transpose() {
        Ok(s) => s,
        Err(e) => return Ok(config_error(&e)),
    };
    let failover = match providers(args.common.demo, client) {
        Ok(f) => f,
        Err(e) => return Ok(config_error(&e)),
    };
    let store = match snapshots(&args.common, true).await {
        Ok(Some(store)) => store,
        Ok(None) => return Ok(config_error(&SetupError::Missing(vec!["REDIS_URL"]))),
        Err(e) => return Ok(config_error(&e)),
    };
    let query = StatusQuery::Filter {
        dep_iata: args.dep.map(|s| s.trim().to_ascii_uppercase()),
        arr_iata: args.arr.map(|s| s.trim().to_ascii_uppercase()),
        state: filter_state,
        limit: args.limit,
    };
    // Where the poller leaves each provider's health for `farewatch
    // providers` (best effort: polling does not need it).
    let state = state_store().await;
    let save_health = |failover: &StatusFailover| {
        let state = state.clone();
        let healths: Vec<_> = failover
            .pools()
            .iter()
            .map(|p| (p.name(), p.health()))
            .collect();
        async move {
            let Some(state) = state else { return };
            for (name, health) in healths {
                let saved = SavedHealth {
                    saved_at: jiff::Timestamp::now(),
                    health,
                };
                if let Ok(json) = serde_json::to_string(&saved) {
                    if let Err(error) = state.kv_put(&status_health_key(name), &json, None).await {
                        tracing::warn!(provider = name, %error, "cannot save status provider health");
                    }
                }
            }
        }
    };
    let mut failed = false;
    let once = args.once;
    let format = args.common.format;
    let report_poll = |report: &farewatch::status::poller::PollReport| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default()),
            Format::Human => {
                for error in &report.errors {
                    writeln!(out, "  ! {error}")?;
                }
                writeln!(
                    out,
                    "{query}: {} flights; {} created, {} updated, {} unchanged, {} without an IATA designator",
                    report.flights, report.created, report.updated, report.refreshed, report.without_iata
                )
            }
        }
    };
    if once {
        let report = poll_once(&failover, &store, &query).await;
        save_health(&failover).await;
        report_poll(&report)?;
        failed = !report.errors.is_empty();
    } else {
        farewatch::daemon::run(
            interval,
            farewatch::daemon::DEFAULT_GRACE,
            || async {
                let report = poll_once(&failover, &store, &query).await;
                save_health(&failover).await;
                if let Err(error) = report_poll(&report) {
                    tracing::error!("cannot write the report: {error}");
                }
            },
            crate::shutdown_signal(),
        )
        .await;
    }
    Ok(if failed { Exit::Partial } else { Exit::Ok })
}

async fn get(args: GetArgs, client: &reqwest::Client) -> anyhow::Result<Exit> {
    let date = match args
        .date
        .as_deref()
        .map(|d| d.parse::<jiff::civil::Date>())
        .transpose()
    {
        Ok(d) => d,
        Err(_) => {
            return Ok(config_error(&SetupError::Invalid {
                name: "--date",
                message: "expected YYYY-MM-DD".into(),
            }))
        }
    };
    let store = match snapshots(&args.common, false).await {
        Ok(s) => s,
        Err(e) => return Ok(config_error(&e)),
    };
    let mut snapshot: Option<Snapshot> = None;
    if let Some(store) = &store {
        snapshot = store
            .get(&args.flight)
            .await
            .ok()
            .flatten()
            .filter(|s| date.is_none() || s.date == date);
    }
    if snapshot.is_none() {
        let failover = match providers(args.common.demo, client) {
            Ok(f) => f,
            Err(e) => return Ok(config_error(&e)),
        };
        let query = StatusQuery::Flight {
            ident: args.flight.clone(),
            date,
        };
        match failover.flights(&query).await {
            Ok(flights) => {
                // Every designator of a codeshare gets its snapshot; the one
                // shown is the number asked for (a ticket's marketing number
                // shows its own snapshot, naming the operating flight).
                let all: Vec<Snapshot> = flights.iter().flat_map(Snapshot::all_of).collect();
                if let Some(store) = &store {
                    for s in &all {
                        let _ = store.put(s).await;
                    }
                }
                let asked = args.flight.to_ascii_uppercase();
                snapshot = all
                    .iter()
                    .find(|s| s.flight.eq_ignore_ascii_case(&asked))
                    .or(all.first())
                    .cloned();
            }
            Err(error) => {
                eprintln!("error: {query}: {error}");
                return Ok(Exit::Partial);
            }
        }
    }
    let Some(snapshot) = snapshot else {
        eprintln!("no flight {} found", args.flight);
        return Ok(Exit::Partial);
    };
    let mut out = std::io::stdout().lock();
    match args.common.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&snapshot)?)?,
        Format::Human => {
            let time = |t: Option<jiff::Timestamp>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                )
            };
            writeln!(
                out,
                "{} {} {}-{}: {:?}{}",
                snapshot.flight,
                snapshot.date.map(|d| d.to_string()).unwrap_or_default(),
                snapshot.dep.iata.as_deref().unwrap_or("?"),
                snapshot.arr.iata.as_deref().unwrap_or("?"),
                snapshot.status,
                if snapshot.disrupted {
                    " (disrupted)"
                } else {
                    ""
                }
            )?;
            writeln!(
                out,
                "  departs  {} (estimated {}, actual {}) terminal {} gate {}",
                time(snapshot.dep.scheduled),
                time(snapshot.dep.estimated),
                time(snapshot.dep.actual),
                snapshot.dep.terminal.as_deref().unwrap_or("-"),
                snapshot.dep.gate.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "  arrives  {} (estimated {}, actual {}) terminal {} gate {}",
                time(snapshot.arr.scheduled),
                time(snapshot.arr.estimated),
                time(snapshot.arr.actual),
                snapshot.arr.terminal.as_deref().unwrap_or("-"),
                snapshot.arr.gate.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "  from {} at {}",
                snapshot.provider,
                snapshot.fetched_at.strftime("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
    }
    Ok(Exit::Ok)
}
