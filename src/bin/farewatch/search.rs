//! `farewatch search`, `farewatch jobs` and `farewatch worker`: flexible
//! searches as jobs, run in the foreground with a progress bar, resumable,
//! and the queue's worker. The work itself is the library's
//! ([`farewatch::search`]); this is flags and printing.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use farewatch::app::{App, Options};
use farewatch::config::Mode;
use farewatch::notify::console::ConsoleTarget;
use farewatch::search::run::{JobEnd, JobProgress, Worker};
use farewatch::search::{self, CreateError, CreateOptions, Estimate, SearchRequest, SearchSpec};
use farewatch::store::jobs::{JobRecord, JobResult, JobState, JobTransition, ResultOrder};
use farewatch::store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;

use crate::cli::ConfigArgs;
use crate::{config_error, quiet, say, shutdown_signal, Exit};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultFormat {
    /// A table for people.
    Human,
    /// One JSON object: the job and its results.
    Json,
    /// CSV with a header row.
    Csv,
}

/// `farewatch search`'s flags.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Origin airports or cities (IATA), comma-separated: LHR,LGW,STN.
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub from: Vec<String>,
    /// Destination airports or cities (IATA), comma-separated: JFK,EWR.
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub to: Vec<String>,
    /// Departure date or range: 2027-03-01 or 2027-03-01..2027-03-07.
    #[arg(long, required_unless_present = "resume")]
    pub depart: Option<String>,
    /// Return date or range (a round trip), e.g. 2027-03-10..2027-03-14.
    #[arg(long = "return", conflicts_with = "nights")]
    pub return_date: Option<String>,
    /// Nights away, a number or a range (a round trip): 7 or 5..9.
    #[arg(long)]
    pub nights: Option<String>,
    /// Adult passengers.
    #[arg(long)]
    pub adults: Option<u8>,
    /// At most this many stops each way.
    #[arg(long)]
    pub max_stops: Option<u8>,
    /// Only these fare sources, comma-separated (default: FARE_SOURCES).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Start even when the search needs more provider searches than the
    /// daily budgets have left (it stops, resumable, when they run out).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Continue an interrupted or failed job (no other search flags).
    #[arg(long, value_name = "JOB_ID", conflicts_with_all = ["from", "to", "depart", "return_date", "nights", "adults", "max_stops"])]
    pub resume: Option<String>,
    /// Once complete, watch the cheapest combination (an API watch of
    /// --user, alerting below the price found).
    #[arg(long, requires = "user")]
    pub watch: bool,
    /// The API user (e-mail) the job, and its watch, belong to.
    #[arg(long, value_name = "EMAIL")]
    pub user: Option<String>,
    /// How many of the cheapest combinations to print.
    #[arg(long, default_value_t = 10)]
    pub top: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ResultFormat::Human)]
    pub format: ResultFormat,
    /// Offline demo: the built-in fare source, no keys needed.
    #[arg(long)]
    pub demo: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `farewatch jobs`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The newest jobs: id, state, progress, created.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// State database (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// One job: its search, state, progress, last checkpoint and times.
    Show {
        /// The job's id.
        id: String,
        /// State database (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Cancel a job: nothing more is looked up; results so far stay.
    Cancel {
        /// The job's id.
        id: String,
        /// State database (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// A page of a job's results.
    Results {
        /// The job's id.
        id: String,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Results per page (at most 500).
        #[arg(long, default_value_t = 20)]
        per_page: u32,
        /// Order: price (cheapest first) or date.
        #[arg(long, value_enum, default_value_t = SortArg::Price)]
        sort: SortArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ResultFormat::Human)]
        format: ResultFormat,
        /// State database (default: the data directory's farewatch.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

/// `--sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Cheapest first.
    Price,
    /// By departure and return date.
    Date,
}

/// `farewatch worker`'s flags.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Offline demo: the built-in fare source, no keys needed.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn app_options(demo: bool) -> Options {
    Options {
        mode: if demo { Mode::Demo } else { Mode::Lookups },
        dry_run: false,
        compare: None,
        routes: String::new(),
        flights: None,
        console: ConsoleTarget::Stderr,
    }
}

/// The progress bar of a foreground job: done/total, rate and ETA.
struct JobBar(ProgressBar);

impl JobBar {
    fn new(disabled: bool, job: &JobRecord) -> Self {
        use std::io::IsTerminal;
        let bar = if disabled || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(job.total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {pos}/{len} combinations [{bar:30}] {per_sec} ETA {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        };
        bar.set_position(job.done);
        Self(bar)
    }
}

impl JobProgress for JobBar {
    fn progress(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

/// Runs `farewatch search`.
pub async fn run(args: SearchArgs) -> Result<Exit> {
    let mut env = args.config.env();
    if !args.sources.is_empty() {
        env.set("FARE_SOURCES", &args.sources.join(","));
    }
    let app = match App::assemble(env, app_options(args.demo)).await {
        Ok(app) => app,
        Err(error) => return Ok(config_error(&error)),
    };
    let store = app.store().clone();
    let job = match &args.resume {
        Some(id) => match resume(&store, id).await? {
            Ok(job) => job,
            Err(exit) => return Ok(exit),
        },
        None => match create(&app, &args).await? {
            Ok(job) => job,
            Err(exit) => return Ok(exit),
        },
    };
    if !quiet() {
        let estimate = stored_estimate(&job, &app);
        let pace = estimate
            .and_then(|e| e.least_duration())
            .map(|d| format!(", at least {} at the sources' rate", human_duration(d)))
            .unwrap_or_default();
        // The demo's default store is in memory: nothing to resume later.
        let resumable = if matches!(store.location(), farewatch::store::StoreLocation::Memory) {
            String::from("the demo keeps jobs in memory; set DATABASE_URL to keep them")
        } else {
            format!(
                "Ctrl-C stops it; `farewatch search --resume {}` continues",
                job.id
            )
        };
        note!(
            "job {}: {} combinations, {} to go{pace} ({resumable})",
            job.id,
            job.total,
            job.total - job.done,
        );
    }
    let bar = Arc::new(JobBar::new(args.no_progress || quiet(), &job));
    let worker = Worker::new(app.engine.clone(), store.clone());
    let end = worker
        .run_job(&job.id, bar.clone(), shutdown_signal())
        .await?;
    bar.0.finish_and_clear();
    let job = store.job(&job.id).await?.unwrap_or(job);
    let exit = match &end {
        JobEnd::Completed if job.failed > 0 => Exit::Partial,
        JobEnd::Completed => Exit::Ok,
        JobEnd::Cancelled | JobEnd::Failed(_) => Exit::Partial,
        JobEnd::Interrupted => Exit::Interrupted,
    };
    match &end {
        JobEnd::Completed => {
            if job.watch {
                match search::watch::make_watch(&store, &job).await {
                    Ok(Some(watch)) => note!(
                        "watching the cheapest combination: API watch {} (alerts below the price found)",
                        watch.id
                    ),
                    Ok(None) => {}
                    Err(error) => note!("warning: no standing watch: {error}"),
                }
            }
        }
        JobEnd::Cancelled => note!("job {} was cancelled", job.id),
        JobEnd::Failed(error) => note!(
            "job {} stopped: {error}\n  continue later with: farewatch search --resume {}",
            job.id,
            job.id
        ),
        JobEnd::Interrupted => note!(
            "job {} interrupted at {}/{}; continue with: farewatch search --resume {}",
            job.id,
            job.done,
            job.total,
            job.id
        ),
    }
    let results = store
        .job_results(&job.id, ResultOrder::Price, 0, args.top.clamp(1, 500))
        .await?;
    print_results(&job, &results, args.format)?;
    Ok(exit)
}

/// Checks the flags, estimates and stores a new job.
async fn create(app: &App, args: &SearchArgs) -> Result<Result<JobRecord, Exit>> {
    let spec = SearchSpec {
        from: args.from.clone(),
        to: args.to.clone(),
        depart: args.depart.clone().unwrap_or_default(),
        return_date: args.return_date.clone(),
        nights: args.nights.clone(),
        adults: args.adults,
        currency: Some(args.config.currency.clone()),
        max_stops: args.max_stops,
    };
    let request = match SearchRequest::parse(
        &spec,
        jiff::Zoned::now().date(),
        app.plan().default_currency,
    ) {
        Ok(request) => request,
        Err(problems) => {
            for p in problems {
                let flag = match p.field {
                    "search" => String::from("error"),
                    "return" => String::from("error: --return"),
                    field => format!("error: --{}", field.replace('_', "-")),
                };
                note!("{flag}: {}", p.message);
            }
            return Ok(Err(Exit::Usage));
        }
    };
    let owner_id = match &args.user {
        None => None,
        Some(email) => match app.store().user_by_email(email).await? {
            Some(user) => Some(user.id),
            None => {
                note!("error: --user: no API user `{email}` (create it with POST /users)");
                return Ok(Err(Exit::Usage));
            }
        },
    };
    let options = CreateOptions {
        owner_id,
        watch: args.watch,
        over_budget: args.yes,
        state: JobState::Running,
    };
    match search::create_job(app.store(), Some(&app.engine), &request, options).await {
        Ok(job) => Ok(Ok(job)),
        Err(CreateError::OverBudget(message)) => {
            note!("error: {message}");
            Ok(Err(Exit::Config))
        }
        Err(error) => {
            note!("error: {error}");
            Ok(Err(Exit::Config))
        }
    }
}

/// Makes an interrupted or failed job runnable again.
async fn resume(store: &Store, id: &str) -> Result<Result<JobRecord, Exit>> {
    match store
        .transition_job(id, &JobTransition::Resume, Timestamp::now())
        .await?
    {
        None => {
            note!("error: no search job `{id}` (farewatch jobs list shows them)");
            Ok(Err(Exit::Usage))
        }
        Some(JobState::Cancelled) => {
            note!("error: job {id} was cancelled; start a new search");
            Ok(Err(Exit::Config))
        }
        Some(_) => Ok(store.job(id).await?.ok_or(Exit::Unexpected)),
    }
}

fn stored_estimate(job: &JobRecord, app: &App) -> Option<Estimate> {
    let request = search::run::stored_request(job).ok()?;
    let mut estimate = Estimate::new(&request, &app.engine);
    estimate.combinations = job.total - job.done;
    Some(estimate)
}

fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{:.1} h", secs as f64 / 3600.0),
    }
}

/// Runs `farewatch jobs ...`.
pub async fn jobs(command: JobsCommand) -> Result<Exit> {
    let database_url = match &command {
        JobsCommand::List { database_url, .. }
        | JobsCommand::Show { database_url, .. }
        | JobsCommand::Cancel { database_url, .. }
        | JobsCommand::Results { database_url, .. } => database_url.clone(),
    };
    let store = match Store::open_setting(database_url.as_deref()).await {
        Ok(store) => store,
        Err(error) => return Ok(config_error(&error.into())),
    };
    match command {
        JobsCommand::List { limit, .. } => {
            let jobs = store.jobs(None, limit.clamp(1, 1000)).await?;
            if jobs.is_empty() {
                note!("no search jobs yet (farewatch search creates one)");
            }
            for job in jobs {
                say(format_args!(
                    "{:<15} {:<11} {:>5}/{:<5} {:>4}%  {}  {}",
                    job.id,
                    job.state,
                    job.done,
                    job.total,
                    percent(&job),
                    job.created_at.strftime("%Y-%m-%d %H:%M"),
                    summary(&job)
                ));
            }
            Ok(Exit::Ok)
        }
        JobsCommand::Show { id, .. } => match store.job(&id).await? {
            None => no_job(&id),
            Some(job) => {
                show(&job);
                Ok(Exit::Ok)
            }
        },
        JobsCommand::Cancel { id, .. } => {
            match store
                .transition_job(&id, &JobTransition::Cancel, Timestamp::now())
                .await?
            {
                None => no_job(&id),
                Some(JobState::Cancelled) => {
                    say(format_args!("job {id} cancelled"));
                    Ok(Exit::Ok)
                }
                Some(state) => {
                    note!("error: job {id} is {state}; only a job not yet over can be cancelled");
                    Ok(Exit::Config)
                }
            }
        }
        JobsCommand::Results {
            id,
            page,
            per_page,
            sort,
            format,
            ..
        } => {
            let Some(job) = store.job(&id).await? else {
                return no_job(&id);
            };
            let per_page = per_page.clamp(1, 500);
            let order = match sort {
                SortArg::Price => ResultOrder::Price,
                SortArg::Date => ResultOrder::Date,
            };
            let offset = page
                .max(1)
                .saturating_sub(1)
                .saturating_mul(u64::from(per_page));
            let results = store.job_results(&id, order, offset, per_page).await?;
            print_results(&job, &results, format)?;
            Ok(Exit::Ok)
        }
    }
}

fn no_job(id: &str) -> Result<Exit> {
    note!("error: no search job `{id}` (farewatch jobs list shows them)");
    Ok(Exit::Usage)
}

fn percent(job: &JobRecord) -> u64 {
    (job.done * 100).checked_div(job.total).unwrap_or(100)
}

/// The search in one line: `LHR,LGW → JFK  2027-03-01..2027-03-07  5..9 nights`.
fn summary(job: &JobRecord) -> String {
    let Ok(spec) = serde_json::from_str::<SearchSpec>(&job.spec) else {
        return String::from("(unreadable search)");
    };
    let mut line = format!(
        "{} → {}  {}",
        spec.from.join(","),
        spec.to.join(","),
        spec.depart
    );
    if let Some(back) = &spec.return_date {
        line.push_str(&format!(" back {back}"));
    }
    if let Some(nights) = &spec.nights {
        line.push_str(&format!("  {nights} nights"));
    }
    line
}

fn show(job: &JobRecord) {
    let time = |t: Option<Timestamp>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    };
    say(format_args!("job         {}", job.id));
    say(format_args!("search      {}", summary(job)));
    say(format_args!("state       {}", job.state));
    say(format_args!(
        "progress    {}/{} combinations ({}%): {} with a fare, {} without, {} failed",
        job.done,
        job.total,
        percent(job),
        job.found,
        job.done - job.found - job.failed,
        job.failed
    ));
    say(format_args!("created     {}", time(Some(job.created_at))));
    say(format_args!("started     {}", time(job.started_at)));
    say(format_args!("checkpoint  {}", time(job.checkpoint_at)));
    say(format_args!("finished    {}", time(job.finished_at)));
    if let Some(error) = &job.last_error {
        say(format_args!("last error  {error}"));
    }
    if job.watch {
        match job.watch_id {
            Some(id) => say(format_args!("watch       API watch {id}")),
            None => say(format_args!("watch       when complete")),
        }
    }
}

fn route(r: &JobResult) -> String {
    format!("{}→{}", r.origin, r.destination)
}

fn dates(r: &JobResult) -> String {
    match r.return_date {
        Some(back) => format!("{} – {}", r.depart, back),
        None => r.depart.to_string(),
    }
}

fn duration(r: &JobResult) -> String {
    r.duration_minutes
        .map_or_else(String::new, |m| format!("{}h{:02}", m / 60, m % 60))
}

fn print_results(job: &JobRecord, results: &[JobResult], format: ResultFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        ResultFormat::Json => {
            let value = serde_json::json!({
                "job": {
                    "id": job.id,
                    "state": job.state,
                    "total": job.total,
                    "done": job.done,
                    "found": job.found,
                    "failed": job.failed,
                },
                "results": results,
            });
            writeln!(out, "{value}")?;
        }
        ResultFormat::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record([
                "origin",
                "destination",
                "depart",
                "return",
                "price",
                "currency",
                "airline",
                "stops",
                "duration_minutes",
                "source",
                "verdict",
                "error",
            ])?;
            for r in results {
                csv.write_record([
                    r.origin.clone(),
                    r.destination.clone(),
                    r.depart.to_string(),
                    r.return_date.map(|d| d.to_string()).unwrap_or_default(),
                    r.price.map(|p| p.amount_string()).unwrap_or_default(),
                    r.price
                        .map(|p| p.currency.as_str().to_owned())
                        .unwrap_or_default(),
                    r.airline.clone().unwrap_or_default(),
                    r.stops.map(|s| s.to_string()).unwrap_or_default(),
                    r.duration_minutes
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    r.source.clone().unwrap_or_default(),
                    r.verdict.clone().unwrap_or_default(),
                    r.error.clone().unwrap_or_default(),
                ])?;
            }
            csv.flush()?;
        }
        ResultFormat::Human => {
            if results.is_empty() {
                writeln!(
                    out,
                    "no results yet ({}/{} combinations done)",
                    job.done, job.total
                )?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<8} {:<23} {:>10} {:<16} {:>5} {:>6} {:<8} VERDICT",
                "ROUTE", "DATES", "PRICE", "AIRLINE", "STOPS", "TIME", "SOURCE"
            )?;
            for r in results {
                let price = match (&r.price, &r.error) {
                    (Some(p), _) => format!("{} {}", p.amount_string(), p.currency),
                    (None, Some(_)) => "failed".into(),
                    (None, None) => "no fare".into(),
                };
                let mut airline = r.airline.clone().unwrap_or_default();
                if airline.chars().count() > 16 {
                    airline = airline.chars().take(15).collect::<String>() + "…";
                }
                writeln!(
                    out,
                    "{:<8} {:<23} {:>10} {:<16} {:>5} {:>6} {:<8} {}",
                    route(r),
                    dates(r),
                    price,
                    airline,
                    r.stops.map(|s| s.to_string()).unwrap_or_default(),
                    duration(r),
                    r.source.as_deref().unwrap_or(""),
                    r.verdict.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(())
}

/// Runs `farewatch worker`: works on every queued job until SIGTERM/SIGINT.
pub async fn worker(args: WorkerArgs) -> Result<Exit> {
    let app = match App::assemble(args.config.env(), app_options(args.demo)).await {
        Ok(app) => app,
        Err(error) => return Ok(config_error(&error)),
    };
    let worker = app.search_worker();
    note!(
        "worker {} waiting for search jobs on {} (claims last {} s without a heartbeat)",
        worker.holder(),
        app.store().location(),
        farewatch::store::jobs::LEASE.as_secs()
    );
    worker.work(shutdown_signal()).await?;
    Ok(Exit::Ok)
}
