//! `farewatch flights poll` and `farewatch flights get`: flight status from
//! the configured providers (with failover), snapshots in Redis. The
//! library assembles both (`farewatch::app::flights`); this is their flags
//! and output. `--demo` uses the built-in mock provider.

use std::io::Write;

use clap::{Args, Subcommand};
use farewatch::app::flights::{self, GetError, Poller, SnapshotSettings};
use farewatch::config::{ConfigError, Env};
use farewatch::status::poller::PollReport;
use farewatch::status::snapshots::{Snapshot, DEFAULT_PREFIX};
use farewatch::status::StatusQuery;

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

impl Common {
    fn snapshots(&self) -> Result<SnapshotSettings, ConfigError> {
        SnapshotSettings::new(
            self.redis_url.as_deref(),
            &self.key_prefix,
            &self.snapshot_ttl,
        )
    }
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
    /// Time between polls, e.g. 90s [default: 60s, or POLL_INTERVAL_SECONDS in seconds].
    #[arg(long)]
    pub interval: Option<String>,
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

/// Runs a `flights` subcommand.
pub async fn run(command: FlightsCommand) -> anyhow::Result<Exit> {
    match command {
        FlightsCommand::Poll(args) => poll(args).await,
        FlightsCommand::Get(args) => get(args).await,
    }
}

fn config_error(error: &ConfigError) -> Exit {
    note!("error: {error}");
    Exit::Config
}

async fn poll(args: PollArgs) -> anyhow::Result<Exit> {
    let env = Env::from_process();
    let setup = async {
        let interval = flights::poll_interval(&env, args.interval.as_deref())?;
        let (dep, arr, status) = (&args.dep, &args.arr, &args.status);
        let query = flights::status_filter(
            dep.as_deref(),
            arr.as_deref(),
            status.as_deref(),
            args.limit,
        )?;
        let snapshots = args.common.snapshots()?;
        let poller = Poller::assemble(&env, args.common.demo, &snapshots).await?;
        Ok::<_, ConfigError>((interval, query, poller))
    };
    let (interval, query, poller) = match setup.await {
        Ok(setup) => setup,
        Err(e) => return Ok(config_error(&e)),
    };
    let format = args.common.format;
    if args.once {
        let report = poller.poll(&query).await;
        print_poll(format, &query, &report)?;
        return Ok(if report.errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Partial
        });
    }
    farewatch::daemon::run(
        interval,
        farewatch::daemon::DEFAULT_GRACE,
        || async {
            let report = poller.poll(&query).await;
            if let Err(error) = print_poll(format, &query, &report) {
                tracing::error!("cannot write the report: {error}");
            }
        },
        crate::shutdown_signal(),
    )
    .await;
    Ok(Exit::Ok)
}

fn print_poll(format: Format, query: &StatusQuery, report: &PollReport) -> std::io::Result<()> {
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
}

async fn get(args: GetArgs) -> anyhow::Result<Exit> {
    let setup = || {
        Ok::<_, ConfigError>((
            flights::flight_date(args.date.as_deref())?,
            args.common.snapshots()?,
        ))
    };
    let (date, settings) = match setup() {
        Ok(setup) => setup,
        Err(e) => return Ok(config_error(&e)),
    };
    let snapshots = settings.connect_if_set().await.unwrap_or_else(|error| {
        note!("warning: {error}; asking the providers directly");
        None
    });
    let env = Env::from_process();
    let found = flights::get(
        &env,
        args.common.demo,
        snapshots.as_ref(),
        &args.flight,
        date,
    );
    let snapshot = match found.await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => {
            note!("no flight {} found", args.flight);
            return Ok(Exit::Partial);
        }
        Err(GetError::Config(e)) => return Ok(config_error(&e)),
        Err(e) => {
            note!("error: {e}");
            return Ok(Exit::Partial);
        }
    };
    let mut out = std::io::stdout().lock();
    match args.common.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&snapshot)?)?,
        Format::Human => human(&mut out, &snapshot)?,
    }
    Ok(Exit::Ok)
}

fn human(out: &mut impl Write, snapshot: &Snapshot) -> std::io::Result<()> {
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
    for (label, end) in [("departs", &snapshot.dep), ("arrives", &snapshot.arr)] {
        writeln!(
            out,
            "  {label}  {} (estimated {}, actual {}) terminal {} gate {}",
            time(end.scheduled),
            time(end.estimated),
            time(end.actual),
            end.terminal.as_deref().unwrap_or("-"),
            end.gate.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(
        out,
        "  from {} at {}",
        snapshot.provider,
        snapshot.fetched_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    )
}
