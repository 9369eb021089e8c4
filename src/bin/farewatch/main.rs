//! The `farewatch` binary: flags, logging, exit codes and presentation.
//! Everything else lives in the library.

/// Writes a line to stderr, ignoring failure: a closed stderr (`2>&-`, or
/// a reader that went away) must not become a panic.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod fleet;
mod flights;
mod history;
mod init;
mod observe;
mod output;
mod progress;
mod providers;
mod search;

use std::process::ExitCode as ProcessExit;
use std::sync::Arc;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use cli::{Cli, ColorChoice, Command, RunArgs};
use farewatch::app::App;
use farewatch::config::{parse_duration, ConfigError};
use farewatch::engine::CycleReport;

/// mimalloc instead of glibc's malloc: a cycle allocates and frees many
/// short-lived response buffers across threads, where glibc spent ~15% of
/// the CPU of a benchmarked cycle (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process (Linux): mimalloc's memory
/// gets them, and a huge page is backed and zeroed whole at its first
/// touch, so a check of 10,000 routes peaked at 60 MiB instead of 49 MiB
/// for no CPU saved (README, Performance).
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // a flag of this process; no memory of ours is read or written.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

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
    /// The command line itself is wrong (an unknown flag, a missing
    /// argument): sysexits' EX_USAGE, distinct from "partial".
    Usage = 64,
    /// Stopped by Ctrl-C (SIGINT) before the work was done, resumable:
    /// 128 + SIGINT, as shells report it.
    Interrupted = 130,
}

fn main() -> ProcessExit {
    without_huge_pages();
    // Before the flags: clap reads each flag's variable from the environment.
    match farewatch::config::read_dotenv(std::path::Path::new(".env")) {
        Ok(pairs) => {
            for (key, value) in pairs {
                // The environment beats .env.
                if std::env::var_os(&key).is_none() {
                    std::env::set_var(key, value);
                }
            }
        }
        Err(error) => {
            note!("error: {error}");
            return ProcessExit::from(Exit::Config as u8);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            let _ = error.print();
            let exit = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
                _ => Exit::Usage,
            };
            return ProcessExit::from(exit as u8);
        }
    };
    init_tracing(&cli);
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    // One thread: a cycle polls its lookups from a single task, so more
    // worker threads only added cross-thread wake-ups (about a quarter of a
    // benchmarked cycle's CPU; README, Performance). SQLite and file reads
    // still run on tokio's blocking pool.
    // The API serves many callers at once: tokio's multi-threaded runtime.
    let mut builder = if matches!(
        cli.command,
        Command::Serve { .. } | Command::Daemon { serve: true, .. }
    ) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            note!("error: cannot start the async runtime: {error}");
            return ProcessExit::from(Exit::Unexpected as u8);
        }
    };
    let exit = runtime.block_on(async {
        match run(cli).await {
            Ok(exit) => exit,
            // A reader that went away (`farewatch check | head`) is not a failure.
            Err(error) if is_broken_pipe(&error) => Exit::Ok,
            Err(error) => {
                note!("error: {error:#}");
                Exit::Unexpected
            }
        }
    });
    ProcessExit::from(exit as u8)
}

/// `-q`: errors only (no table, no warnings, no progress bar).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `-q` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Check(args) => check(args).await,
        Command::Daemon {
            interval,
            metrics_addr,
            serve,
            addr,
            fleet,
            fleet_batch,
            fleet_lease,
            run,
        } => {
            let api = serve.then(|| addr.unwrap_or_else(default_api_addr));
            let fleet = fleet.then_some((fleet_batch, fleet_lease));
            daemon(&interval, metrics_addr, api, fleet, run).await
        }
        Command::Fleet {
            database_url,
            redis_url,
        } => fleet::run(database_url.as_deref(), redis_url.as_deref()).await,
        Command::Providers(args) => providers::show(&args).await,
        Command::Flights { command } => flights::run(command).await,
        Command::History(args) => history::run(args).await,
        Command::Search(args) => search::run(*args).await,
        Command::Jobs { command } => search::jobs(command).await,
        Command::Worker(args) => search::worker(args).await,
        Command::Migrate { database_url } => Ok(migrate(database_url.as_deref()).await),
        Command::Init { force } => Ok(init::run(force)),
        Command::Serve { addr, database_url } => Ok(serve(addr, database_url.as_deref()).await),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "farewatch", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(Exit::Ok)
        }
    }
}

/// `farewatch serve`: the HTTP API until SIGTERM/SIGINT.
async fn serve(addr: std::net::SocketAddr, database_url: Option<&str>) -> Exit {
    let store = match farewatch::store::Store::open_setting(database_url).await {
        Ok(store) => store,
        Err(error) => return config_error(&error.into()),
    };
    if matches!(
        store.location(),
        farewatch::store::StoreLocation::Postgres(_)
    ) {
        note!("search jobs are queued in PostgreSQL for `farewatch worker` processes");
    } else {
        // No shared database: the API's search jobs run in this process.
        let mut env = farewatch::config::Env::from_process();
        env.set_opt("DATABASE_URL", database_url);
        let options = farewatch::app::Options {
            mode: farewatch::config::Mode::Lookups,
            dry_run: false,
            compare: None,
            routes: String::new(),
            flights: None,
            console: farewatch::notify::console::ConsoleTarget::Stderr,
        };
        match App::assemble(env, options).await {
            Ok(app) => spawn_worker(app.search_worker()),
            Err(error) => note!(
                "warning: search jobs will wait for a `farewatch worker` (no worker here: {error})"
            ),
        }
    }
    match start_api(addr, store).await {
        Ok(server) => stopped(server.await),
        Err(exit) => exit,
    }
}

/// Works on queued search jobs in this process until shutdown.
fn spawn_worker(worker: farewatch::search::run::Worker) {
    tokio::spawn(async move {
        if let Err(error) = worker.work(shutdown_signal()).await {
            note!("error: the search-job worker stopped: {error}");
        }
    });
}

/// Starts the API (and the collector) on `store`, and says where.
async fn start_api(
    addr: std::net::SocketAddr,
    store: farewatch::store::Store,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, Exit> {
    let env = farewatch::config::Env::from_process();
    match farewatch::api::start(addr, &env, store, shutdown_signal).await {
        Ok((bound, server)) => {
            note!("serving the API on http://{bound} (GET /openapi.json describes it)");
            Ok(server)
        }
        Err(error) => {
            note!("error: {error}");
            Err(Exit::Config)
        }
    }
}

/// How the API server ended.
fn stopped(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Exit {
    match result {
        Ok(Ok(())) => Exit::Ok,
        Ok(Err(error)) => {
            note!("error: the API server stopped: {error}");
            Exit::Unexpected
        }
        Err(error) => {
            note!("error: the API server crashed: {error}");
            Exit::Unexpected
        }
    }
}

/// The API's default address (`farewatch::api::DEFAULT_ADDR`).
fn default_api_addr() -> std::net::SocketAddr {
    farewatch::api::DEFAULT_ADDR
        .parse()
        .unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
}

/// `farewatch migrate`: opens (creating or migrating) the state database.
async fn migrate(database_url: Option<&str>) -> Exit {
    match farewatch::store::Store::open_setting(database_url).await {
        Ok(store) => {
            let now = farewatch::store::SCHEMA_VERSION;
            let location = store.location();
            match store.found_version() {
                0 => say(format_args!("{location}: created at schema version {now}")),
                found if found == now => {
                    say(format_args!("{location}: schema version {now}, up to date"))
                }
                found => say(format_args!(
                    "{location}: migrated from schema version {found} to {now}"
                )),
            }
            Exit::Ok
        }
        Err(error) => {
            note!("error: {error}");
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

/// `farewatch daemon`: cycles on an interval until SIGTERM/SIGINT; with
/// `--serve` (`api`: where) the HTTP API too, in this process, on the same
/// store, stopping with the cycles.
async fn daemon(
    interval: &str,
    metrics_addr: Option<std::net::SocketAddr>,
    api: Option<std::net::SocketAddr>,
    fleet: Option<(u32, String)>,
    args: RunArgs,
) -> Result<Exit> {
    let interval = match parse_duration("--interval", interval) {
        Ok(d) => d,
        Err(error) => return Ok(config_error(&error)),
    };
    let mut options = args.options();
    // An API-only deployment needs no sheet: without --routes and without a
    // routes.csv here, `daemon --serve` runs the API's watches alone.
    if api.is_some()
        && !args.demo
        && options.routes == "routes.csv"
        && !std::path::Path::new("routes.csv").exists()
    {
        note!("no routes.csv here: running the API's watches only");
        options.routes.clear();
    }
    let app = match App::assemble(args.env(), options).await {
        Ok(app) => Arc::new(app),
        Err(error) => return Ok(config_error(&error)),
    };
    let serving = match api {
        Some(addr) => match start_api(addr, app.store().clone()).await {
            Ok(server) => {
                // Without a shared database the API's search jobs run here.
                if !matches!(
                    app.store().location(),
                    farewatch::store::StoreLocation::Postgres(_)
                ) {
                    spawn_worker(app.search_worker());
                }
                Some(server)
            }
            Err(exit) => return Ok(exit),
        },
        // Without the API the airport collector still runs (when OpenSky
        // is configured), on its interval.
        None => {
            let env = farewatch::config::Env::from_process();
            if let Err(error) = farewatch::collector::start(app.store(), &env, shutdown_signal()) {
                return Ok(config_error(&error));
            }
            None
        }
    };
    if let Some(addr) = metrics_addr {
        match observe::serve(addr, shutdown_signal()).await {
            Ok(bound) => note!("serving /healthz and /metrics on http://{bound}"),
            Err(error) => {
                note!("error: {error:#}");
                return Ok(Exit::Config);
            }
        }
    }
    let output = Arc::new(Printer {
        format: args.format,
        no_progress: args.no_progress || quiet(),
    });
    let fleet = match fleet {
        Some((batch, lease)) => match parse_duration("--fleet-lease", &lease) {
            Ok(lease) => {
                Some(farewatch::app::fleet::FleetOptions::new(interval, batch).with_lease(lease))
            }
            Err(error) => return Ok(config_error(&error)),
        },
        None => None,
    };
    if let Some(fleet) = &fleet {
        note!(
            "fleet daemon {}: checking the due routes it claims, {} at a time",
            fleet.holder(),
            fleet.batch
        );
    }
    if let Err(error) =
        farewatch::app::daemon::run_in(app, interval, fleet, output, shutdown_signal).await
    {
        return Ok(config_error(&error));
    }
    match serving {
        Some(server) => Ok(stopped(server.await)),
        None => Ok(Exit::Ok),
    }
}

/// Prints a daemon's reports as they come: one table or JSON line per cycle.
struct Printer {
    format: cli::Format,
    no_progress: bool,
}

impl farewatch::app::daemon::DaemonOutput for Printer {
    fn progress(&self) -> Arc<dyn farewatch::engine::Progress> {
        progress::bar(self.no_progress)
    }

    fn fares(&self, app: &App, report: Result<CycleReport, ConfigError>) {
        match report {
            Ok(report) => {
                output::problems(&report);
                if let Err(error) = output::print(&report, self.format, app.sheet_name(), true) {
                    tracing::error!("cannot write the report: {error}");
                }
            }
            Err(error) => note!("error: {error}; retrying next cycle"),
        }
    }

    fn flights(&self, report: Result<CycleReport, ConfigError>) {
        match report {
            Ok(report) => {
                output::problems(&report);
                if report.flights.iter().any(|w| w.polled) {
                    if let Err(error) = output::print(&report, self.format, "flights", true) {
                        tracing::error!("cannot write the report: {error}");
                    }
                }
            }
            Err(error) => note!("error: {error}; retrying next minute"),
        }
    }
}

/// One check with a progress bar.
async fn cycle(app: &App, args: &RunArgs) -> Result<CycleReport, ConfigError> {
    let report = app
        .run_check(progress::bar(args.no_progress || quiet()))
        .await;
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
    note!("error: {error}");
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
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let ansi = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "farewatch=info,warn",
        (false, _) => "farewatch=debug,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// A line on stdout, ignoring a reader that went away.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// stderr for the log, where a failed write (a closed pipe) is dropped
/// rather than reported: there is nowhere left to report it.
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
