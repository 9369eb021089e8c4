//! `farewatch flights poll` and `farewatch flights get`: flight status from
//! the configured providers (with failover), snapshots in Redis.
//!
//! Providers come from the environment: `AVIATIONSTACK_ACCESS_KEY`,
//! `FLIGHTAWARE_API_KEY`, `OPENSKY_CLIENT_ID` + `OPENSKY_CLIENT_SECRET`
//! (each also `P_BASE_URL`, `P_MAX_CONCURRENCY`, `P_RATE_LIMIT`); the order
//! is `STATUS_PROVIDERS` or aviationstack, flightaware, opensky. `--demo`
//! uses the built-in mock provider.

use std::io::Write;

use clap::{Args, Subcommand};
use farewatch::app::status_failover;
use farewatch::config::registry::Context;
use farewatch::config::{parse_duration, parse_seconds, ConfigError, Env};
use farewatch::status::failover::StatusFailover;
use farewatch::status::poller::poll_once;
use farewatch::status::snapshots::{Snapshot, SnapshotStore, DEFAULT_PREFIX, DEFAULT_SNAPSHOT_TTL};
use farewatch::status::{FlightState, StatusQuery};
use farewatch::store::{ProviderRole, SavedHealth, Store};

use crate::cli::Format;
use crate::Exit;

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

fn state(raw: &str) -> Result<FlightState, ConfigError> {
    serde_json::from_value(serde_json::Value::String(raw.trim().to_ascii_lowercase())).map_err(|_| ConfigError::invalid(
        "FLIGHT_STATUS",
        format!("`{raw}` is not a flight status; expected scheduled, active, delayed, landed, cancelled, diverted or incident"),
    ))
}

/// The configured status providers, in priority order (the mock with `--demo`).
async fn providers(
    env: &Env,
    demo: bool,
    client: &reqwest::Client,
    store: &Store,
) -> Result<StatusFailover, ConfigError> {
    let cx = Context { env, client, store };
    status_failover(&cx, demo)
}

async fn snapshots(common: &Common, required: bool) -> Result<Option<SnapshotStore>, ConfigError> {
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
            Err(error) if required => Err(ConfigError::invalid("REDIS_URL", error.to_string())),
            Err(error) => {
                note!("warning: {error}; asking the providers directly");
                Ok(None)
            }
        },
        None if required => Err(ConfigError::invalid(
            "REDIS_URL",
            "not set: polling keeps each flight's snapshot in Redis; set it, \
             e.g. REDIS_URL=redis://127.0.0.1:6379/",
        )),
        None => Ok(None),
    }
}

/// The state store, if one can be opened (`DATABASE_URL` or the default
/// path; in memory for the demo): where provider health is left for
/// `farewatch providers`.
async fn state_store(env: &Env, demo: bool) -> Result<Store, ConfigError> {
    if !demo || env.has("DATABASE_URL") {
        match Store::open_setting(env.get("DATABASE_URL")).await {
            Ok(store) => return Ok(store),
            Err(error) => tracing::warn!(%error, "provider health will not be saved"),
        }
    }
    Ok(Store::memory()?)
}

/// Runs a `flights` subcommand.
pub async fn run(command: FlightsCommand) -> anyhow::Result<Exit> {
    let client = farewatch::upstream::http::build_client();
    match command {
        FlightsCommand::Poll(args) => poll(args, &client).await,
        FlightsCommand::Get(args) => get(args, &client).await,
    }
}

fn config_error(error: &ConfigError) -> Exit {
    note!("error: {error}");
    Exit::Config
}

async fn poll(args: PollArgs, client: &reqwest::Client) -> anyhow::Result<Exit> {
    let env = Env::from_process();
    let interval = match env.get("POLL_INTERVAL_SECONDS") {
        Some(secs) if args.interval == "60s" => parse_seconds("POLL_INTERVAL_SECONDS", secs),
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
    let state = match state_store(&env, args.common.demo).await {
        Ok(state) => state,
        Err(e) => return Ok(config_error(&e)),
    };
    let failover = match providers(&env, args.common.demo, client, &state).await {
        Ok(f) => f,
        Err(e) => return Ok(config_error(&e)),
    };
    let store = match snapshots(&args.common, true).await {
        Ok(Some(store)) => store,
        Ok(None) => unreachable!("snapshots(required) is Some or an error"),
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
    let save_health = |failover: &StatusFailover| {
        let state = state.clone();
        let healths: Vec<_> = failover
            .pools()
            .iter()
            .map(|p| (p.name(), p.health()))
            .collect();
        async move {
            for (name, health) in healths {
                let saved = SavedHealth {
                    saved_at: jiff::Timestamp::now(),
                    health,
                };
                if let Err(error) = state
                    .save_provider_health(ProviderRole::Status, name, &saved)
                    .await
                {
                    tracing::warn!(provider = name, %error, "cannot save status provider health");
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
            return Ok(config_error(&ConfigError::invalid(
                "--date",
                format!(
                    "`{}` is not a date; expected YYYY-MM-DD",
                    args.date.as_deref().unwrap_or_default()
                ),
            )))
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
        let env = Env::from_process();
        let state = match state_store(&env, args.common.demo).await {
            Ok(state) => state,
            Err(e) => return Ok(config_error(&e)),
        };
        let failover = match providers(&env, args.common.demo, client, &state).await {
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
                note!("error: {query}: {error}");
                return Ok(Exit::Partial);
            }
        }
    }
    let Some(snapshot) = snapshot else {
        note!("no flight {} found", args.flight);
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
