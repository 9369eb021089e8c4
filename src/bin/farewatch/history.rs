//! `farewatch history`: a search's recent prices, a sparkline, the verdict
//! on the latest price, and (`--chart`) an SVG chart.

use anyhow::Result;
use clap::Args;
use farewatch::app::history::{self, ChartExtras};
use farewatch::domain::{Currency, Iata, LookupKey, Money};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::{say, Exit};

/// `farewatch history`'s flags: one search by its fields. (A sheet row or
/// an API watch by its id are not supported yet; the API serves a watch's
/// history at GET /users/{email}/watches/{id}/history.)
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Departure airport or city (IATA), e.g. LHR.
    #[arg(long)]
    pub from: String,
    /// Arrival airport or city (IATA), e.g. JFK.
    #[arg(long)]
    pub to: String,
    /// Outbound date, YYYY-MM-DD.
    #[arg(long)]
    pub depart: Date,
    /// Return date, YYYY-MM-DD (omit for one-way).
    #[arg(long = "return")]
    pub return_date: Option<Date>,
    /// Adult passengers.
    #[arg(long, default_value_t = 1)]
    pub adults: u8,
    /// The currency the search was priced in.
    #[arg(long, env = "FAREWATCH_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Show the last N days.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Also write the chart (SVG) here.
    #[arg(long, value_name = "PATH")]
    pub chart: Option<std::path::PathBuf>,
    /// Draw this maximum price as a line on the chart (e.g. 450).
    #[arg(long, value_name = "PRICE")]
    pub max_price: Option<String>,
    /// The state database: sqlite://PATH or postgres://USER@HOST/DB
    /// (default: the data directory's farewatch.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

fn usage(message: String) -> Exit {
    note!("error: {message}");
    Exit::Usage
}

/// Runs `farewatch history`.
pub async fn run(args: HistoryArgs) -> Result<Exit> {
    let (origin, destination) = match (Iata::parse(&args.from), Iata::parse(&args.to)) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) => return Ok(usage(format!("--from: {e}"))),
        (_, Err(e)) => return Ok(usage(format!("--to: {e}"))),
    };
    let currency = match Currency::parse(&args.currency) {
        Ok(c) => c,
        Err(e) => return Ok(usage(format!("--currency: {e}"))),
    };
    let max_price = match args
        .max_price
        .as_deref()
        .map(|raw| Money::parse_exact(raw, currency))
    {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => return Ok(usage(format!("--max-price: {e}"))),
    };
    let key = LookupKey {
        origin,
        destination,
        depart: args.depart,
        return_date: args.return_date,
        adults: args.adults,
        currency,
    };
    let store = match farewatch::store::Store::open_setting(args.database_url.as_deref()).await {
        Ok(store) => store,
        Err(error) => {
            note!("error: {error}");
            return Ok(Exit::Config);
        }
    };
    let now = Timestamp::now();
    let since = now
        .checked_sub(SignedDuration::from_hours(24 * i64::from(args.days)))
        .unwrap_or(Timestamp::MIN);
    let history = history::load(&store, &key, since, now).await?;
    say(format_args!("{key} ({})", key.history_key()));
    if history.points.is_empty() {
        say(format_args!("no prices in the last {} days", args.days));
    }
    for point in &history.points {
        say(format_args!(
            "{}  {:>12} {}  {}",
            point.observed_at.strftime("%Y-%m-%d %H:%M"),
            point.price.amount_string(),
            point.price.currency.as_str(),
            point.source
        ));
    }
    if !history.points.is_empty() {
        say(format_args!(
            "{}",
            farewatch::chart::sparkline(&history.prices())
        ));
    }
    match (&history.latest, history.typical_range) {
        (Some(latest), Some((low, high))) => say(format_args!(
            "latest {} {}: {} (typical {}–{})",
            latest.price.amount_string(),
            currency.as_str(),
            history.verdict,
            low.amount_string(),
            high.amount_string()
        )),
        (Some(latest), None) => say(format_args!(
            "latest {} {}: {} (too little history for a typical range)",
            latest.price.amount_string(),
            currency.as_str(),
            history.verdict
        )),
        (None, _) => say(format_args!("verdict: {}", history.verdict)),
    }
    if let Some(path) = &args.chart {
        let title = key.to_string();
        let extras = ChartExtras {
            max_price,
            alerts_at: Vec::new(),
        };
        let svg = history::svg(&history, currency, &title, &extras)?;
        std::fs::write(path, svg)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        say(format_args!("chart written to {}", path.display()));
    }
    Ok(Exit::Ok)
}
