//! `farewatch history`: the recent prices of a search (by its fields), of
//! a routes sheet row (`--row`) or of an API watch (`--watch`), with a
//! sparkline, the verdict on the latest price, and (`--chart`) a chart as
//! SVG or PNG.
//!
//! A row or a watch may expand to several searches; its series is the
//! cheapest price per observation time across them, its chart draws its
//! maximum price and marks the alerts sent for it: the library's
//! [`farewatch::app::history`], as the API serves a watch's history.

use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgGroup, Args};
use farewatch::app::history::{self, ChartExtras, History, SheetRow};
use farewatch::chart::ImageFormat;
use farewatch::domain::{Currency, Iata, LookupKey, Money};
use farewatch::route::Route;
use farewatch::store::{Store, WatchKind};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::{say, Exit};

/// Most sheet rows named when `--row` names a line without one.
const ROWS_LISTED: usize = 20;

/// The help's headings, one per kind of subject.
const SEARCH: &str = "A search by its fields";
const ROW: &str = "Or a routes sheet row";
const WATCH: &str = "Or an API watch";

/// `farewatch history`'s flags: exactly one of a search by its fields
/// (`--from`, `--to`, `--depart`, ...), a sheet row (`--row`) or an API
/// watch (`--watch`).
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("subject")
        .required(true)
        .args(["from", "row", "watch"]),
))]
pub struct HistoryArgs {
    /// Departure airport or city (IATA), e.g. LHR (with --to and --depart).
    #[arg(long, value_name = "IATA", requires_all = ["to", "depart"], help_heading = SEARCH)]
    pub from: Option<String>,
    /// Arrival airport or city (IATA), e.g. JFK.
    #[arg(long, value_name = "IATA", conflicts_with_all = ["row", "watch"], help_heading = SEARCH)]
    pub to: Option<String>,
    /// Outbound date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE", conflicts_with_all = ["row", "watch"], help_heading = SEARCH)]
    pub depart: Option<Date>,
    /// Return date, YYYY-MM-DD (omit for one-way).
    #[arg(
        long = "return",
        value_name = "DATE",
        conflicts_with_all = ["row", "watch"],
        help_heading = SEARCH
    )]
    pub return_date: Option<Date>,
    /// Adult passengers.
    #[arg(long, default_value_t = 1, conflicts_with_all = ["row", "watch"], help_heading = SEARCH)]
    pub adults: u8,
    /// Draw this maximum price as a line on the chart (e.g. 450). A row or
    /// a watch draws its own.
    #[arg(
        long,
        value_name = "PRICE",
        conflicts_with_all = ["row", "watch"],
        help_heading = SEARCH
    )]
    pub max_price: Option<String>,
    /// The row starting on line N of the routes sheet (the ROW column of
    /// `farewatch check`, the LINE of its messages).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = ROW
    )]
    pub row: Option<u64>,
    /// With --row: the routes sheet, a CSV path, an http(s) URL or - for
    /// standard input.
    #[arg(
        long,
        env = "FAREWATCH_ROUTES",
        default_value = "routes.csv",
        hide_env_values = true,
        help_heading = ROW
    )]
    pub routes: String,
    /// The API watch with this id (any user's: the operator runs this).
    #[arg(
        long,
        value_name = "ID",
        value_parser = clap::value_parser!(i64).range(1..),
        help_heading = WATCH
    )]
    pub watch: Option<i64>,
    /// The currency of a search; with --row, of rows that name none.
    #[arg(long, env = "FAREWATCH_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Show the last N days.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Also write the chart here: PATH.svg or PATH.png, by the extension.
    #[arg(long, value_name = "PATH")]
    pub chart: Option<PathBuf>,
    /// The state database: sqlite://PATH or postgres://USER@HOST/DB
    /// (default: the data directory's farewatch.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

fn usage(message: String) -> Exit {
    note!("error: {message}");
    Exit::Usage
}

/// What the history is asked of, checked before anything is opened.
enum Target {
    /// One search by its fields, with the maximum to draw.
    Search {
        key: LookupKey,
        max_price: Option<Money>,
    },
    /// The sheet row starting on `line`.
    Row { line: usize },
    /// The API watch `id`.
    Watch { id: i64 },
}

/// What is shown: the series and how to name and draw it.
struct Shown {
    /// The first line printed: what this is the history of.
    heading: String,
    /// How many searches the series covers (above one, each price names
    /// the search it was seen for).
    searches: usize,
    /// The currency of every price.
    currency: Currency,
    /// The chart's caption.
    title: String,
    /// A row's or a watch's maximum and alerts, in a line.
    summary: Option<String>,
    history: History,
    extras: ChartExtras,
}

/// Runs `farewatch history`.
pub async fn run(args: HistoryArgs) -> Result<Exit> {
    if let Some(path) = &args.chart {
        if ImageFormat::from_path(path).is_none() {
            return Ok(usage(format!(
                "--chart {}: the file name must end in .svg or .png (the chart's format)",
                path.display()
            )));
        }
    }
    let currency = match Currency::parse(&args.currency) {
        Ok(c) => c,
        Err(e) => return Ok(usage(format!("--currency: {e}"))),
    };
    let target = match target(&args, currency) {
        Ok(target) => target,
        Err(exit) => return Ok(exit),
    };
    let store = match Store::open_setting(args.database_url.as_deref()).await {
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
    let shown = match target {
        Target::Search { key, max_price } => {
            let history = history::load(&store, &key, since, now).await?;
            Shown {
                heading: format!("{key} ({})", key.history_key()),
                searches: 1,
                currency,
                title: key.to_string(),
                summary: None,
                history,
                extras: ChartExtras {
                    max_price,
                    alerts_at: Vec::new(),
                },
            }
        }
        Target::Row { line } => {
            let route = match sheet_row(&args.routes, line, currency).await {
                Ok(route) => route,
                Err(exit) => return Ok(exit),
            };
            let mut heading = format!(
                "{}:{line}: {}",
                farewatch::sheet::display_name(&args.routes),
                history::route_title(&route)
            );
            if let Some(label) = &route.label {
                heading.push_str(&format!(" ({label})"));
            }
            route_history(&store, route, heading, Timestamp::MIN, since, now).await?
        }
        Target::Watch { id } => {
            let (route, heading, created_at) = match watch(&store, id).await? {
                Ok(found) => found,
                Err(exit) => return Ok(exit),
            };
            route_history(&store, route, heading, created_at, since, now).await?
        }
    };
    print(&shown, args.days);
    if let Some(path) = &args.chart {
        history::write_chart(
            &shown.history,
            shown.currency,
            &shown.title,
            &shown.extras,
            path,
        )?;
        say(format_args!("chart written to {}", path.display()));
    }
    Ok(Exit::Ok)
}

/// The flags' target, or the usage error (clap has already made sure
/// exactly one of --from, --row and --watch is given).
fn target(args: &HistoryArgs, currency: Currency) -> Result<Target, Exit> {
    if let Some(line) = args.row {
        let line = usize::try_from(line).map_err(|_| usage(format!("--row {line}: too large")))?;
        return Ok(Target::Row { line });
    }
    if let Some(id) = args.watch {
        return Ok(Target::Watch { id });
    }
    let (Some(from), Some(to), Some(depart)) = (&args.from, &args.to, args.depart) else {
        return Err(usage(
            "give a search (--from, --to, --depart), --row or --watch".to_owned(),
        ));
    };
    let (origin, destination) = match (Iata::parse(from), Iata::parse(to)) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) => return Err(usage(format!("--from: {e}"))),
        (_, Err(e)) => return Err(usage(format!("--to: {e}"))),
    };
    let max_price = match args
        .max_price
        .as_deref()
        .map(|raw| Money::parse_exact(raw, currency))
    {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => return Err(usage(format!("--max-price: {e}"))),
    };
    let key = LookupKey {
        origin,
        destination,
        depart,
        return_date: args.return_date,
        adults: args.adults,
        currency,
        max_stops: None,
    };
    Ok(Target::Search { key, max_price })
}

/// The routes sheet's row on `line`, read as `check` reads it (rows with
/// past dates too); or the exit after saying why not.
async fn sheet_row(location: &str, line: usize, currency: Currency) -> Result<Route, Exit> {
    let client = farewatch::upstream::http::build_client();
    let options = history::sheet_options(currency);
    let sheet = match farewatch::sheet::load(location, &client, &options).await {
        Ok(sheet) => sheet,
        Err(error) => {
            note!("error: {error}");
            return Err(Exit::Config);
        }
    };
    let name = farewatch::sheet::display_name(location);
    match history::sheet_row(&sheet, line) {
        SheetRow::Route(route) => Ok(route.clone()),
        SheetRow::Invalid(errors) => {
            for error in errors {
                note!("{error}");
            }
            note!("error: {name}:{line} is not a valid row; fix it first, as above");
            Err(Exit::Config)
        }
        SheetRow::Missing => {
            // A duplicate row, for one, is ignored with a warning naming it.
            let prefix = format!("{name}:{line}:");
            for warning in sheet.warnings.iter().filter(|w| w.starts_with(&prefix)) {
                note!("warning: {warning}");
            }
            let mut rows: Vec<String> = sheet
                .routes
                .iter()
                .take(ROWS_LISTED)
                .map(|r| r.line.to_string())
                .collect();
            if sheet.routes.len() > ROWS_LISTED {
                rows.push("...".into());
            }
            let rows = if rows.is_empty() {
                "it has none".to_owned()
            } else {
                format!("rows start on lines {}", rows.join(", "))
            };
            Err(usage(format!(
                "--row {line}: no row of {name} starts on line {line} ({rows})"
            )))
        }
    }
}

/// The fare watch `id` as a route, with its heading and creation time; or
/// the exit after saying why not.
async fn watch(store: &Store, id: i64) -> Result<Result<(Route, String, Timestamp), Exit>> {
    let Some((watch, owner)) = store.watch_by_id(id).await? else {
        return Ok(Err(usage(format!(
            "--watch {id}: no watch {id} in the state database {}",
            store.location()
        ))));
    };
    if watch.kind != WatchKind::Fare {
        return Ok(Err(usage(format!(
            "--watch {id}: watch {id} is a flight watch, which has no prices"
        ))));
    }
    match history::watch_route(&watch) {
        Ok(route) => {
            let heading = format!(
                "watch {id} of {}: {}",
                owner.email,
                history::route_title(&route)
            );
            Ok(Ok((route, heading, watch.created_at)))
        }
        Err(errors) => {
            for error in errors {
                note!("{error}");
            }
            note!("error: watch {id}'s stored fields are no longer valid");
            Ok(Err(Exit::Config))
        }
    }
}

/// A row's or a watch's history, with its maximum and the alerts sent for
/// it at or after `alerts_after`.
async fn route_history(
    store: &Store,
    route: Route,
    heading: String,
    alerts_after: Timestamp,
    since: Timestamp,
    now: Timestamp,
) -> Result<Shown> {
    let history = history::load_route(store, &route, since, now).await?;
    let extras = history::route_extras(store, &route, alerts_after).await?;
    let max = route.rule.max_price;
    let sent = match extras.alerts_at.len() {
        0 => "no alerts sent".to_owned(),
        1 => "1 alert sent".to_owned(),
        n => format!("{n} alerts sent"),
    };
    Ok(Shown {
        heading,
        searches: route.lookups().len(),
        currency: route.currency(),
        title: history::route_title(&route),
        summary: Some(format!(
            "max {} {}, {sent}",
            max.amount_string(),
            max.currency.as_str()
        )),
        history,
        extras,
    })
}

/// Prints the heading, the prices, a sparkline and the verdict.
fn print(shown: &Shown, days: u32) {
    let Shown {
        history, currency, ..
    } = shown;
    say(format_args!("{}", shown.heading));
    if shown.searches > 1 {
        say(format_args!(
            "{} searches: the cheapest price at each observation",
            shown.searches
        ));
    }
    if let Some(summary) = &shown.summary {
        say(format_args!("{summary}"));
    }
    if history.points.is_empty() {
        say(format_args!("no prices in the last {days} days"));
    }
    for point in &history.points {
        let search = if shown.searches > 1 {
            format!("  {}", point.search_key)
        } else {
            String::new()
        };
        say(format_args!(
            "{}  {:>12} {}  {}{search}",
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
}
