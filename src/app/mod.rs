//! The composition root: one validated [`Plan`] in, a ready [`App`] out.
//! Every command (`check`, `daemon`, `providers`, `flights`, and the
//! service commands after them) assembles farewatch here, so none of them
//! copies the wiring.

pub mod demo;
pub mod flights;
pub mod providers;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::cache::QuoteCache;
use crate::config::registry::{self, ChannelSetting, Context, STATUS_PROVIDERS};
use crate::config::{ConfigError, Env, Mode, Plan, SmsPlan, TWILIO_VARS};
use crate::domain::Recipient;
use crate::engine::{CycleReport, Engine, EngineParts, InvalidRow, Progress};
use crate::fare::demo::DemoSource;
use crate::fare::failover::Failover;
use crate::fare::{FarePool, FareSource};
use crate::notify::console::{ConsoleNotifier, ConsoleTarget};
use crate::notify::twilio::Twilio;
use crate::notify::{Delivery, Notifier, NotifyError};
use crate::sheet::{self, RowError, Sheet, SheetOptions};
use crate::status::failover::{StatusFailover, StatusPool, DEFAULT_STATUS_TTL};
use crate::status::watch::Watch;
use crate::status::StatusProvider;
use crate::store::{Store, StoreLocation};
use crate::upstream::breaker::BreakerConfig;
use crate::upstream::budget::{Budget, DayClock};
use crate::upstream::Limits;

/// What a command asks for besides the settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Live, dry run or demo.
    pub mode: Mode,
    /// Send and save nothing, whatever the mode (`--demo --dry-run`).
    pub dry_run: bool,
    /// Ask the first K fare sources at once and keep the cheapest.
    pub compare: Option<usize>,
    /// The routes sheet: a path or an http(s) URL.
    pub routes: String,
    /// Watched flights (flights.csv): a path or URL.
    pub flights: Option<String>,
    /// Where printed alerts go (demo and dry runs).
    pub console: ConsoleTarget,
}

/// Where the sheet comes from.
#[derive(Debug)]
enum SheetSource {
    /// A path or URL, and its name in messages (a URL without credentials).
    Location { location: String, shown: String },
    /// The demo's built-in example (no routes.csv in the working directory).
    BuiltIn,
}

/// farewatch, assembled: the engine, and what each cycle needs to re-read
/// the sheet and the watch list.
#[derive(Debug)]
pub struct App {
    /// The engine every cycle runs on.
    pub engine: Arc<Engine>,
    plan: Plan,
    env: Env,
    options: Options,
    client: reqwest::Client,
    store: Store,
    sheet: SheetSource,
    /// Flight-status providers, built on first use (only `--flights` needs them).
    status: OnceLock<StatusFailover>,
}

/// Today's date where the user is (sheet dates are local).
fn today() -> jiff::civil::Date {
    jiff::Zoned::now().date()
}

impl App {
    /// Checks the settings, opens the store and builds the engine.
    pub async fn assemble(env: Env, options: Options) -> Result<Self, ConfigError> {
        let plan = Plan::from_env(&env, options.mode, options.compare)?;
        let client = crate::upstream::http::build_client();
        let store = open_store(&plan).await?;
        let cx = Context {
            env: &env,
            client: &client,
            store: &store,
        };
        // One clock for the engine's decisions and the providers' daily budgets.
        let clock = DayClock::system();
        let pools = fare_pools(&plan, &cx, clock)?;
        let cache = match &plan.redis_url {
            _ if plan.quote_ttl.is_zero() => QuoteCache::off(),
            Some(url) => match QuoteCache::redis(url, plan.quote_ttl).await {
                Ok(cache) => cache,
                Err(error) => {
                    tracing::warn!("{error}; using an in-process quote cache instead");
                    QuoteCache::memory(plan.quote_ttl)
                }
            },
            None => QuoteCache::memory(plan.quote_ttl),
        };
        let notifier: Arc<dyn Notifier> = match &plan.sms {
            SmsPlan::Console => Arc::new(ConsoleNotifier::new(options.console)),
            SmsPlan::Twilio(config) => Arc::new(Twilio::new(client.clone(), config.clone())),
            SmsPlan::Unconfigured => Arc::new(NoSms),
        };
        let mut engine = Engine::new(EngineParts {
            fares: Arc::new(Failover::new(pools, plan.strategy)),
            cache,
            notifier,
            notify_limits: plan.sms_limits,
            store: store.clone(),
            dry_run: options.mode == Mode::DryRun || options.dry_run,
        })
        .with_clock(clock);
        if plan.mode.prints() {
            // Every alert, to a phone or a channel, is printed.
            engine = engine.with_one_channel();
        } else {
            for (var, entry) in &plan.channels {
                let setting = ChannelSetting {
                    var,
                    suffix: &var[entry.prefix.len()..],
                    value: env.get(var).unwrap_or_default(),
                };
                let notifier = (entry.build)(&cx, &setting)?;
                engine = engine.with_channel(var, notifier, entry.limits);
            }
        }
        let sheet = if options.mode == Mode::Demo
            && options.routes == "routes.csv"
            && !Path::new("routes.csv").exists()
        {
            SheetSource::BuiltIn
        } else {
            SheetSource::Location {
                location: options.routes.clone(),
                shown: sheet::display_name(&options.routes),
            }
        };
        let app = Self {
            engine: Arc::new(engine),
            plan,
            env,
            options,
            client,
            store,
            sheet,
            status: OnceLock::new(),
        };
        // Everything --flights needs is checked before anything is looked up or sent.
        if app.options.flights.is_some() {
            app.status()?;
        }
        Ok(app)
    }

    /// The sheet's name for messages.
    pub fn sheet_name(&self) -> &str {
        match &self.sheet {
            SheetSource::Location { shown, .. } => shown,
            SheetSource::BuiltIn => demo::NAME,
        }
    }

    /// The validated settings.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The shared HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Reads and parses the sheet (every cycle: edits apply without a
    /// restart); rows whose recipients cannot be reached become row errors.
    pub async fn load_sheet(&self) -> Result<Sheet, ConfigError> {
        let options = SheetOptions {
            default_currency: self.plan.default_currency,
            today: today(),
        };
        let mut sheet = match &self.sheet {
            SheetSource::Location { location, .. } => {
                sheet::load(location, &self.client, &options).await?
            }
            SheetSource::BuiltIn => {
                let csv = demo::csv(options.today);
                sheet::parse(demo::NAME, csv.as_bytes(), &options)?
            }
        };
        let source = self.sheet_name().to_owned();
        let mut errors = Vec::new();
        sheet.routes.retain(|route| {
            let unreachable = self.unreachable(&route.recipients);
            for message in &unreachable {
                errors.push(RowError {
                    source: source.clone(),
                    line: route.line,
                    column: "phone".into(),
                    message: message.clone(),
                });
            }
            unreachable.is_empty()
        });
        sheet.errors.extend(errors);
        sheet.errors.sort_by_key(|e| e.line);
        Ok(sheet)
    }

    /// Why each of `recipients` cannot be reached (empty: all can). A dry
    /// run checks channels as a real run would, though it prints instead.
    fn unreachable(&self, recipients: &[Recipient]) -> Vec<String> {
        recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Phone(_) if !self.plan.sms_usable() => Some(format!(
                    "`{r}` cannot be texted: SMS is not configured; set {TWILIO_VARS}"
                )),
                Recipient::Channel { .. }
                    if self.plan.mode != Mode::Demo
                        && !r
                            .channel_env_var()
                            .is_some_and(|var| self.plan.has_channel(&var)) =>
                {
                    Some(format!(
                        "`{r}` is not a configured channel; set {}",
                        r.channel_env_var().unwrap_or_default()
                    ))
                }
                _ => None,
            })
            .collect()
    }

    /// The watch list at `location`: the watches that can run, and the
    /// rejected rows and warnings.
    pub async fn load_watches(
        &self,
        location: &str,
    ) -> Result<(Vec<Watch>, Vec<RowError>, Vec<String>), ConfigError> {
        let bytes = sheet::read_source(location, &self.client).await?;
        let shown = sheet::display_name(location);
        let list = crate::status::watch::parse(&shown, &bytes, today())
            .map_err(|e| ConfigError::invalid("--flights", e.to_string()))?;
        let mut errors = list.errors;
        let mut watches = Vec::new();
        for watch in list.watches {
            let unreachable = self.unreachable(&watch.recipients);
            if unreachable.is_empty() {
                watches.push(watch);
            } else {
                errors.extend(unreachable.into_iter().map(|message| RowError {
                    source: shown.clone(),
                    line: watch.line,
                    column: "phone".into(),
                    message,
                }));
            }
        }
        Ok((watches, errors, list.warnings))
    }

    /// The flight-status providers (the mock in demo mode), built on first use.
    pub fn status(&self) -> Result<&StatusFailover, ConfigError> {
        if let Some(status) = self.status.get() {
            return Ok(status);
        }
        let cx = Context {
            env: &self.env,
            client: &self.client,
            store: &self.store,
        };
        let built = status_failover(&cx, self.plan.mode == Mode::Demo)?;
        Ok(self.status.get_or_init(|| built))
    }

    /// One `check`: (re-)read the sheet, run a cycle, and with `--flights`
    /// the watched flights too. The report is whole: totals include the
    /// flights, and every rejected row and warning is in it.
    pub async fn run_check(&self, progress: Arc<dyn Progress>) -> Result<CycleReport, ConfigError> {
        let sheet = self.load_sheet().await?;
        let mut report = self.engine.run_cycle(sheet.routes, progress).await?;
        report.warnings = sheet.warnings;
        self.finish(report, sheet.errors).await
    }

    /// Watched flights only (a daemon's minute loop); an empty report
    /// without `--flights`.
    pub async fn run_watch_cycle(&self) -> Result<CycleReport, ConfigError> {
        self.finish(CycleReport::default(), Vec::new()).await
    }

    /// Adds the watched flights (with `--flights`) and every rejected row.
    async fn finish(
        &self,
        mut report: CycleReport,
        mut errors: Vec<RowError>,
    ) -> Result<CycleReport, ConfigError> {
        if let Some(location) = &self.options.flights {
            self.add_watches(location, &mut report, &mut errors).await?;
        }
        report.invalid_rows = InvalidRow::group(errors);
        report.summary.invalid_rows = report.invalid_rows.len();
        report.finished_at = Some(self.engine.now());
        Ok(report)
    }

    async fn add_watches(
        &self,
        location: &str,
        report: &mut CycleReport,
        errors: &mut Vec<RowError>,
    ) -> Result<(), ConfigError> {
        let (watches, rejected, warnings) = self.load_watches(location).await?;
        errors.extend(rejected);
        report.warnings.extend(warnings);
        let flights = self.engine.run_watches(&watches, self.status()?).await?;
        let summary = &mut report.summary;
        summary.alerts_sent += flights.iter().map(|w| w.sent).sum::<usize>();
        summary.alerts_failed += flights.iter().map(|w| w.failed).sum::<usize>();
        summary.lookup_errors += flights
            .iter()
            .filter(|w| w.polled && w.status.is_none())
            .count();
        report.flights = flights;
        Ok(())
    }
}

/// Opens the store. A dry run writes nothing: when the SQLite file does not
/// exist yet, it runs on an in-memory store instead of creating one.
async fn open_store(plan: &Plan) -> Result<Store, ConfigError> {
    let location = match &plan.store {
        StoreLocation::Sqlite(path) if plan.mode == Mode::DryRun && !path.exists() => {
            StoreLocation::Memory
        }
        other => other.clone(),
    };
    Ok(Store::open(&location).await?)
}

/// The fare sources' pools, in the plan's order (the demo source in demo mode).
fn fare_pools(
    plan: &Plan,
    cx: &Context<'_>,
    clock: DayClock,
) -> Result<Vec<Arc<FarePool>>, ConfigError> {
    if plan.mode == Mode::Demo {
        let source = DemoSource::default();
        let limits = source.default_limits();
        return Ok(vec![Arc::new(FarePool::new(Arc::new(source), limits))]);
    }
    plan.sources
        .iter()
        .map(|selected| {
            let source: Arc<dyn FareSource> = (selected.entry.build)(cx)?;
            let prefix = registry::prefix(selected.entry.name);
            let limits = registry::limits(cx.env, &prefix, source.default_limits())?;
            let mut pool = FarePool::new(source, limits);
            if let Some(per_day) = selected.daily_budget {
                pool = pool.with_budget(Budget::new(per_day, clock));
            }
            Ok(Arc::new(pool))
        })
        .collect()
}

/// The flight-status providers in `STATUS_PROVIDERS` order (default: the
/// registry's), those without credentials left out; the mock for the demo.
pub fn status_failover(cx: &Context<'_>, demo: bool) -> Result<StatusFailover, ConfigError> {
    let breaker = BreakerConfig {
        failure_threshold: cx
            .env
            .parse("STATUS_BREAKER_THRESHOLD", "a whole number of failures")?
            .unwrap_or(5),
        open_for: cx
            .env
            .duration("STATUS_BREAKER_RESET", Duration::from_secs(10 * 60))?,
        ..BreakerConfig::default()
    };
    let pool = |provider: Arc<dyn StatusProvider>, prefix: &str| -> Result<_, ConfigError> {
        let defaults = Limits {
            max_concurrency: 4,
            rate_per_sec: 2.0,
            timeout: provider.timeout(),
        };
        let limits = registry::limits(cx.env, prefix, defaults)?;
        Ok(Arc::new(StatusPool::for_status(provider, limits, breaker)))
    };
    if demo {
        let mock = pool(Arc::new(demo::status(today())), "MOCK")?;
        return Ok(StatusFailover::new(vec![mock], DEFAULT_STATUS_TTL));
    }
    let order = cx
        .env
        .list("STATUS_PROVIDERS")
        .unwrap_or_else(|| STATUS_PROVIDERS.iter().map(|e| e.name.to_owned()).collect());
    let mut pools = Vec::new();
    for name in order {
        let Some(entry) = registry::status_provider(&name) else {
            let known: Vec<&str> = STATUS_PROVIDERS.iter().map(|e| e.name).collect();
            return Err(ConfigError::invalid(
                "STATUS_PROVIDERS",
                format!(
                    "`{name}` is not a status provider; expected some of {}",
                    known.join(", ")
                ),
            ));
        };
        if !registry::missing(cx.env, entry.credentials).is_empty() {
            continue;
        }
        let provider = (entry.build)(cx)?;
        pools.push(pool(provider, &registry::prefix(entry.name))?);
    }
    if pools.is_empty() {
        let each: Vec<String> = STATUS_PROVIDERS
            .iter()
            .map(|e| e.credentials.join(" and "))
            .collect();
        return Err(ConfigError::Missing(vec![format!(
            "a flight-status provider ({})",
            each.join(", or ")
        )]));
    }
    Ok(StatusFailover::new(pools, DEFAULT_STATUS_TTL))
}

/// Stands in for SMS when Twilio is not configured (a channels-only setup):
/// rows with phone numbers are rejected when the sheet is read, so this
/// only answers if that check is bypassed.
#[derive(Debug)]
struct NoSms;

#[async_trait]
impl Notifier for NoSms {
    fn name(&self) -> &'static str {
        "sms-unconfigured"
    }

    async fn send(&self, to: &Recipient, _body: &str) -> Result<Delivery, NotifyError> {
        Err(NotifyError::Configuration {
            code: 0,
            message: format!("cannot text {to}: SMS is not configured; set {TWILIO_VARS}"),
        })
    }
}
