//! The `farewatch` binary: flags, logging, exit codes and presentation.
//! Everything else lives in the library.

mod cli;
mod flights;
mod observe;
mod output;
mod progress;
mod providers;

use std::process::ExitCode as ProcessExit;
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command, RunArgs};
use farewatch::app::App;
use farewatch::config::{parse_duration, ConfigError};
use farewatch::engine::CycleReport;

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
    let app = match App::assemble(args.env(), args.options()).await {
        Ok(app) => app,
        Err(error) => return Ok(config_error(&error)),
    };
    let report = match cycle(&app, &args).await {
        Ok(report) => report,
        Err(error) => return Ok(config_error(&error)),
    };
    output::print(&report, args.format, app.sheet_name(), false)?;
    Ok(exit_for(&report))
}

async fn daemon(
    interval: &str,
    metrics_addr: Option<std::net::SocketAddr>,
    args: RunArgs,
) -> Result<Exit> {
    let interval = match parse_duration("--interval", interval) {
        Ok(d) => d,
        Err(error) => return Ok(config_error(&error)),
    };
    let app = match App::assemble(args.env(), args.options()).await {
        Ok(app) => Arc::new(app),
        Err(error) => return Ok(config_error(&error)),
    };
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
    let args = Arc::new(args);
    // Watched flights get their own loop: the poll schedule wants a look
    // every minute near departure, far more often than fares need.
    let watching = args.flights.is_some().then(|| {
        let (app, args) = (app.clone(), args.clone());
        tokio::spawn(async move {
            farewatch::daemon::run(
                WATCH_TICK,
                farewatch::daemon::DEFAULT_GRACE,
                || {
                    let (app, args) = (app.clone(), args.clone());
                    async move {
                        let report = app.run_watch_cycle().await;
                        if let Ok(report) = &report {
                            output::problems(report);
                        }
                        match report {
                            Ok(report) if report.flights.iter().any(|w| w.polled) => {
                                if let Err(error) =
                                    output::print(&report, args.format, "flights", true)
                                {
                                    tracing::error!("cannot write the report: {error}");
                                }
                            }
                            Ok(_) => {}
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
            let (app, args) = (app.clone(), args.clone());
            async move {
                match cycle(&app, &args).await {
                    Ok(report) => {
                        if let Err(error) =
                            output::print(&report, args.format, app.sheet_name(), true)
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

/// One check with a progress bar.
async fn cycle(app: &App, args: &RunArgs) -> Result<CycleReport, ConfigError> {
    let progress = progress::bar(args.no_progress);
    let report = app.run_check(progress.clone()).await;
    progress.finish();
    if let Ok(report) = &report {
        output::problems(report);
    }
    report
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
fn config_error(error: &ConfigError) -> Exit {
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
