//! Command-line flags. Every flag that configures a provider can also come
//! from the environment (or `.env`), and a flag beats the environment.
//!
//! A flag whose variable can hold a secret (a key, a token, or a URL, which
//! may carry credentials) has `hide_env_values = true`, so `--help` never
//! prints the value it found in the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use farewatch::app::Options;
use farewatch::config::{Env, Mode};

/// farewatch: an SMS when a fare drops to your price.
#[derive(Debug, Parser)]
#[command(name = "farewatch", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors: no table (JSON output still prints), no warnings, no log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour in log output: auto (when stderr is a terminal and NO_COLOR
    /// is unset), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one cycle and exit (for cron).
    Check(RunArgs),
    /// Run cycles on an interval until SIGTERM/SIGINT.
    Daemon {
        /// Time between cycle starts, e.g. 15m, 1h.
        #[arg(long, env = "FAREWATCH_INTERVAL", default_value = "15m")]
        interval: String,
        /// Serve /healthz and Prometheus /metrics on HOST:PORT (e.g.
        /// 127.0.0.1:9100 or localhost:9100; port 0 picks a free port).
        #[arg(
            long,
            env = "FAREWATCH_METRICS_ADDR",
            value_name = "HOST:PORT",
            value_parser = crate::observe::parse_addr
        )]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Also serve the HTTP API (as `farewatch serve` does) in this
        /// process, on the daemon's state database, until shutdown.
        #[arg(long)]
        serve: bool,
        /// One daemon of several on the same state database: each cycle
        /// checks only the due routes it claims, so the fleet checks each
        /// route once per interval.
        #[arg(long, env = "FAREWATCH_FLEET")]
        fleet: bool,
        /// With --fleet: routes claimed at a time.
        #[arg(long, env = "FAREWATCH_FLEET_BATCH", default_value_t = farewatch::app::fleet::DEFAULT_BATCH)]
        fleet_batch: u32,
        /// With --fleet: how long a claim lasts unrenewed (renewed every
        /// third of it while the daemon works; at most the interval). A
        /// dead daemon's routes are taken within this plus a tick.
        #[arg(
            long,
            env = "FAREWATCH_FLEET_LEASE",
            value_name = "DURATION",
            default_value = "60s"
        )]
        fleet_lease: String,
        /// With --serve: listen here (HOST:PORT; default 127.0.0.1:8080).
        /// Beyond loopback, FAREWATCH_API_TOKEN must be set.
        #[arg(long, env = "FAREWATCH_API_ADDR", value_name = "HOST:PORT")]
        addr: Option<std::net::SocketAddr>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show each fare source and channel: configured or not, limits, daily
    /// budget left, and the health saved by the last run.
    Providers(RunArgs),
    /// Serve the HTTP API (users, watches, idempotent writes) on the state
    /// database; GET /openapi.json describes it.
    Serve {
        /// Listen here (HOST:PORT). Beyond loopback, FAREWATCH_API_TOKEN must be set.
        #[arg(long, env = "FAREWATCH_API_ADDR", default_value = farewatch::api::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
        /// The state database: sqlite://PATH or postgres://USER@HOST/DB
        /// (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Create the state database or bring its schema up to date, and say
    /// which version it was at (every command also does this when it opens
    /// the database; this does only that).
    Migrate {
        /// The state database: sqlite://PATH or postgres://USER@HOST/DB
        /// (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Write a commented starter routes.csv and .env in the current directory.
    Init {
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
    /// Flight status: poll into Redis snapshots, or show one flight.
    Flights {
        #[command(subcommand)]
        command: crate::flights::FlightsCommand,
    },
    /// Recent prices (date, price, source), a sparkline, the verdict on the
    /// latest price, and with --chart a chart (.svg or .png): of a search
    /// by its fields (--from, --to, --depart), of a routes sheet row
    /// (--row N: its searches' cheapest price per observation, its maximum,
    /// its alerts), or of an API watch (--watch ID, likewise).
    History(crate::history::HistoryArgs),
    /// Search every origin × destination × date combination (a job with a
    /// progress bar; Ctrl-C leaves a checkpoint, --resume continues) and
    /// print the cheapest, each with a low/typical/high verdict.
    Search(Box<crate::search::SearchArgs>),
    /// Search jobs: list, show, cancel, results.
    Jobs {
        #[command(subcommand)]
        command: crate::search::JobsCommand,
    },
    /// The fleet: each daemon (its last heartbeat, routes claimed and done,
    /// routes it holds now), the routes due, the leases (who reads the
    /// sheet) and, with REDIS_URL, each provider's shared limit.
    Fleet {
        /// The state database: sqlite://PATH or postgres://USER@HOST/DB
        /// (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The fleet's Redis, for the shared limits.
        #[arg(long, env = "REDIS_URL", hide_env_values = true)]
        redis_url: Option<String>,
    },
    /// Work on queued search jobs (the API's) until SIGTERM/SIGINT; any
    /// number of workers may share one PostgreSQL database.
    Worker(crate::search::WorkerArgs),
}

/// When log output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stderr is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Human,
    /// One JSON object on stdout (one per line in daemon mode).
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The routes sheet: a CSV path, an http(s) URL (a Google Sheet
    /// published as CSV), or - for standard input.
    #[arg(
        long,
        env = "FAREWATCH_ROUTES",
        default_value = "routes.csv",
        hide_env_values = true
    )]
    pub routes: String,
    /// Watched flights (flights.csv): a path or URL; alerts on delays, gate
    /// changes, cancellations, departure and landing.
    #[arg(long, env = "FAREWATCH_FLIGHTS", hide_env_values = true)]
    pub flights: Option<String>,
    /// Offline demo: built-in fare source, SMS printed instead of sent, no keys needed.
    #[arg(long)]
    pub demo: bool,
    /// Look up and evaluate everything, but send nothing and save no state.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Ask the first K available fare sources at once and keep the cheapest
    /// (default: the first source that answers).
    #[arg(long, value_name = "K", env = "FAREWATCH_COMPARE")]
    pub compare: Option<usize>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Currency for rows that do not name one.
    #[arg(long, env = "FAREWATCH_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// How long a quote stays cached, e.g. 5m; 0 turns the quote cache off.
    #[arg(long, env = "FAREWATCH_QUOTE_TTL", default_value = "5m")]
    pub quote_ttl: String,
    /// Redis for the quote cache (without it the cache is in-process).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// State database: sqlite://PATH or postgres://USER@HOST/DB (default: an
    /// SQLite file in the user's data directory).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl ConfigArgs {
    /// The environment with the flags laid over it (a flag beats the
    /// environment; clap already read each flag's variable when no flag was given).
    pub fn env(&self) -> Env {
        let mut env = Env::from_process();
        env.set("FAREWATCH_CURRENCY", &self.currency);
        env.set("FAREWATCH_QUOTE_TTL", &self.quote_ttl);
        env.set_opt("REDIS_URL", self.redis_url.as_deref());
        env.set_opt("DATABASE_URL", self.database_url.as_deref());
        env
    }
}

impl RunArgs {
    /// The environment with the flags laid over it.
    pub fn env(&self) -> Env {
        self.config.env()
    }

    /// What the command asks of the composition root.
    pub fn options(&self) -> Options {
        Options {
            mode: if self.demo {
                Mode::Demo
            } else if self.dry_run {
                Mode::DryRun
            } else {
                Mode::Live
            },
            dry_run: self.dry_run,
            compare: self.compare,
            routes: self.routes.clone(),
            flights: self.flights.clone(),
            console: match self.format {
                Format::Human => farewatch::notify::console::ConsoleTarget::Stdout,
                Format::Json => farewatch::notify::console::ConsoleTarget::Stderr,
            },
        }
    }
}
