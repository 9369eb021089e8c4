//! The `farewatch` binary: flags, logging, exit codes and presentation.
//! Everything else lives in the library.

mod channels;
mod cli;
mod demo_sheet;
mod flights;
mod observe;
mod output;
mod progress;
mod providers;
mod setup;
mod sources;

use std::process::ExitCode as ProcessExit;
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command, Format, RunArgs};
use farewatch::engine::{CycleReport, Engine};
use setup::{Configured, SetupError};

/// mimalloc instead of glibc's malloc: a cycle allocates and frees many
/// short-lived response buffers across threads, where glibc spent ~15% of
/// the CPU of a benchmarked cycle (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the process exit status means (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Every lookup answered and every due alert was sent.
    Ok = 0,
    /// Something unexpected (a bug, an I/O failure writing output).
    Unexpected = 1,
    /// Partial: invalid rows, failed lookups or failed sends (all reported).
    Partial = 2,
    /// Configuration or sheet unusable: nothing was done.
    Config = 3,
}

fn main() -> ProcessExit {
    // A missing .env is normal; a broken one is reported once logging is up.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    init_tracing(&cli);
    if let Err(error) = &dotenv {
        if !error.not_found() {
            tracing::warn!("ignoring .env: {error}");
        }
    }
    // One thread: a cycle polls its lookups from a single task, so more
    // worker threads only added cross-thread wake-ups (about a quarter of a
    // benchmarked cycle's CPU; README, Performance). SQLite and file reads
    // still run on tokio's blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ProcessExit::from(Exit::Unexpected as u8);
        }
    };
    let exit = runtime.block_on(async {
        match run(cli).await {
            Ok(exit) => exit,
            Err(error) => {
                eprintln!("error: {error:#}");
                Exit::Unexpected
            }
        }
    });
    ProcessExit::from(exit as u8)
}

async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Check(args) => check(args).await,
        Command::Daemon {
            interval,
            metrics_addr,
            run,
        } => daemon(&interval, metrics_addr, run).await,
        Command::Providers(args) => providers::show(&args).await,
        Command::Flights { command } => flights::run(command).await,
        Command::Migrate { database_url } => Ok(migrate(database_url.as_deref()).await),
    }
}

/// `farewatch migrate`: opens (creating or migrating) the state database.
async fn migrate(database_url: Option<&str>) -> Exit {
    match farewatch::store::Store::open_setting(database_url).await {
        Ok(store) => {
            let now = farewatch::store::SCHEMA_VERSION;
            let location = store.location();
            match store.found_version() {
                0 => println!("{location}: created at schema version {now}"),
                found if found == now => println!("{location}: schema version {now}, up to date"),
                found => println!("{location}: migrated from schema version {found} to {now}"),
            }
            Exit::Ok
        }
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Config
        }
    }
}

async fn check(args: RunArgs) -> Result<Exit> {
    let configured = match setup::configure(&args).await {
        Ok(c) => c,
        Err(error) => return Ok(config_error(&error)),
    };
    // Everything --flights needs is checked before anything is looked up or sent.
    if args.flights.is_some() {
        if let Err(error) = configured.status() {
            return Ok(config_error(&error));
        }
    }
    let report = match cycle(&configured, &args, true).await {
        Ok(report) => report,
        Err(error) => return Ok(config_error(&error)),
    };
    output::print(&report, args.format, configured.sheet_name(), false)?;
    Ok(exit_for(&report))
}

async fn daemon(
    interval: &str,
    metrics_addr: Option<std::net::SocketAddr>,
    args: RunArgs,
) -> Result<Exit> {
    let interval = match setup::parse_duration("--interval", interval) {
        Ok(d) => d,
        Err(error) => return Ok(config_error(&error)),
    };
    let configured = match setup::configure(&args).await {
        Ok(c) => c,
        Err(error) => return Ok(config_error(&error)),
    };
    if args.flights.is_some() {
        if let Err(error) = configured.status() {
            return Ok(config_error(&error));
        }
    }
    if let Some(addr) = metrics_addr {
        match observe::serve(addr, shutdown_signal()).await {
            Ok(bound) => eprintln!("serving /healthz and /metrics on http://{bound}"),
            Err(error) => {
                eprintln!("error: {error:#}");
                return Ok(Exit::Config);
            }
        }
    }
    tracing::info!(every = ?interval, "daemon started");
    let configured = Arc::new(configured);
    let args = Arc::new(args);
    // Watched flights get their own loop: the poll schedule wants a look
    // every minute near departure, far more often than fares need.
    let watching = args.flights.is_some().then(|| {
        let (configured, args) = (configured.clone(), args.clone());
        tokio::spawn(async move {
            farewatch::daemon::run(
                WATCH_TICK,
                farewatch::daemon::DEFAULT_GRACE,
                || {
                    let (configured, args) = (configured.clone(), args.clone());
                    async move {
                        match watch_cycle(&configured, &args).await {
                            Ok(report) => {
                                let polled = report.flights.iter().any(|w| w.polled);
                                if polled {
                                    if let Err(error) =
                                        output::print(&report, args.format, "flights", true)
                                    {
                                        tracing::error!("cannot write the report: {error}");
                                    }
                                }
                            }
                            Err(error) => eprintln!("error: {error}; retrying next minute"),
                        }
                    }
                },
                shutdown_signal(),
            )
            .await
        })
    });
    let exit = farewatch::daemon::run(
        interval,
        farewatch::daemon::DEFAULT_GRACE,
        || {
            let configured = configured.clone();
            let args = args.clone();
            async move {
                match cycle(&configured, &args, false).await {
                    Ok(report) => {
                        if let Err(error) =
                            output::print(&report, args.format, configured.sheet_name(), true)
                        {
                            tracing::error!("cannot write the report: {error}");
                        }
                    }
                    // The sheet may be mid-edit: report and try again next cycle.
                    Err(error) => eprintln!("error: {error}; retrying next cycle"),
                }
            }
        },
        shutdown_signal(),
    )
    .await;
    if let Some(watching) = watching {
        let _ = watching.await;
    }
    tracing::info!(?exit, "daemon stopped");
    Ok(Exit::Ok)
}

/// How often the daemon looks at watched flights; each watch's own schedule
/// decides whether it is polled.
const WATCH_TICK: std::time::Duration = std::time::Duration::from_secs(60);

/// Watched flights only (the daemon's minute loop).
async fn watch_cycle(configured: &Configured, args: &RunArgs) -> Result<CycleReport, SetupError> {
    let mut report = CycleReport::default();
    if let Some(location) = &args.flights {
        let (watches, invalid) = configured.load_watches(location).await?;
        report.summary.invalid_rows = invalid;
        let status = configured.status()?;
        let flights = configured
            .engine
            .run_watches(&watches, status)
            .await
            .map_err(SetupError::Engine)?;
        report.summary.alerts_sent = flights.iter().map(|w| w.sent).sum();
        report.summary.alerts_failed = flights.iter().map(|w| w.failed).sum();
        report.flights = flights;
    }
    Ok(report)
}

/// One cycle: (re-)read the sheet, run the engine, attach sheet problems;
/// with `with_watches`, the watched flights too (cron mode).
async fn cycle(
    configured: &Configured,
    args: &RunArgs,
    with_watches: bool,
) -> Result<CycleReport, SetupError> {
    let sheet = configured.load_sheet().await?;
    for warning in &sheet.warnings {
        tracing::warn!("{warning}");
        eprintln!("warning: {warning}");
    }
    for error in &sheet.errors {
        eprintln!("{error}");
    }
    let progress = progress::bar(args.no_progress);
    let engine: &Arc<Engine> = &configured.engine;
    let mut report = engine
        .run_cycle(sheet.routes, progress.clone())
        .await
        .map_err(SetupError::Engine)?;
    progress.finish();
    report.summary.invalid_rows = sheet.errors.len();
    if let Some(location) = args.flights.as_ref().filter(|_| with_watches) {
        let (watches, invalid) = configured.load_watches(location).await?;
        report.summary.invalid_rows += invalid;
        let status = configured.status()?;
        let flights = engine
            .run_watches(&watches, status)
            .await
            .map_err(SetupError::Engine)?;
        report.summary.alerts_sent += flights.iter().map(|w| w.sent).sum::<usize>();
        report.summary.alerts_failed += flights.iter().map(|w| w.failed).sum::<usize>();
        report.summary.lookup_errors += flights
            .iter()
            .filter(|w| w.polled && w.status.is_none())
            .count();
        report.flights = flights;
    }
    Ok(report)
}

fn exit_for(report: &CycleReport) -> Exit {
    let s = &report.summary;
    if s.invalid_rows > 0 || s.lookup_errors > 0 || s.alerts_failed > 0 {
        Exit::Partial
    } else {
        Exit::Ok
    }
}

/// Configuration, sheet and state-store problems stop the run before any
/// lookup or send: exit 3, nothing done.
fn config_error(error: &SetupError) -> Exit {
    eprintln!("error: {error}");
    Exit::Config
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "farewatch=info,warn",
        (false, _) => "farewatch=debug,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

impl From<Format> for farewatch::notify::console::ConsoleTarget {
    fn from(format: Format) -> Self {
        match format {
            Format::Human => Self::Stdout,
            Format::Json => Self::Stderr,
        }
    }
}
