//! Command-line flags. Every flag that configures a provider can also come
//! from the environment (or `.env`), and a flag beats the environment.
//!
//! A flag whose variable can hold a secret (a key, a token, or a URL, which
//! may carry credentials) has `hide_env_values = true`, so `--help` never
//! prints the value it found in the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// farewatch: an SMS when a fare drops to your price.
#[derive(Debug, Parser)]
#[command(name = "farewatch", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
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
        /// Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9100).
        #[arg(long, env = "FAREWATCH_METRICS_ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show each fare source and channel: configured or not, limits, daily
    /// budget left, and the health saved by the last run.
    Providers(RunArgs),
    /// Create the state database or bring its schema up to date, and say
    /// which version it was at (every command also does this when it opens
    /// the database; this does only that).
    Migrate {
        /// The state database: sqlite://PATH or postgres://USER@HOST/DB
        /// (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Flight status: poll into Redis snapshots, or show one flight.
    Flights {
        #[command(subcommand)]
        command: crate::flights::FlightsCommand,
    },
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
    /// The routes sheet: a CSV path or an http(s) URL (a Google Sheet published as CSV).
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

    #[arg(long, env = "AMADEUS_CLIENT_ID", hide = true, hide_env_values = true)]
    pub amadeus_client_id: Option<String>,
    #[arg(
        long,
        env = "AMADEUS_CLIENT_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub amadeus_client_secret: Option<String>,
    #[arg(long, env = "AMADEUS_BASE_URL", hide = true, hide_env_values = true)]
    pub amadeus_base_url: Option<String>,
    #[arg(long, env = "AMADEUS_MAX_CONCURRENCY", hide = true)]
    pub amadeus_max_concurrency: Option<usize>,
    #[arg(long, env = "AMADEUS_RATE_LIMIT", hide = true)]
    pub amadeus_rate_limit: Option<f64>,
    #[arg(long, env = "AMADEUS_TIMEOUT", hide = true, default_value = "20s")]
    pub amadeus_timeout: String,

    #[arg(long, env = "TWILIO_ACCOUNT_SID", hide = true, hide_env_values = true)]
    pub twilio_account_sid: Option<String>,
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide = true, hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    #[arg(long, env = "TWILIO_FROM", hide = true)]
    pub twilio_from: Option<String>,
    #[arg(long, env = "TWILIO_MESSAGING_SERVICE_SID", hide = true)]
    pub twilio_messaging_service_sid: Option<String>,
    #[arg(long, env = "TWILIO_BASE_URL", hide = true, hide_env_values = true)]
    pub twilio_base_url: Option<String>,
    #[arg(long, env = "TWILIO_MAX_CONCURRENCY", hide = true)]
    pub twilio_max_concurrency: Option<usize>,
    #[arg(long, env = "TWILIO_RATE_LIMIT", hide = true)]
    pub twilio_rate_limit: Option<f64>,
    #[arg(long, env = "TWILIO_TIMEOUT", hide = true, default_value = "15s")]
    pub twilio_timeout: String,
    /// Wait before looking up a send with an unknown outcome (default 2s).
    #[arg(long, env = "TWILIO_SETTLE_DELAY", hide = true)]
    pub twilio_settle_delay: Option<String>,
    /// Longest one message is reconciled within a run (default 30s).
    #[arg(long, env = "TWILIO_SETTLE_BOUND", hide = true)]
    pub twilio_settle_bound: Option<String>,
}
