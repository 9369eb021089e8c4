//! The composition root: one validated [`Plan`] in, a ready [`App`] out.
//! Every command (`check`, `daemon`, `providers`, `flights`, and the
//! service commands after them) assembles farewatch here, so none of them
//! copies the wiring.

pub mod daemon;
pub mod demo;
pub mod fleet;
pub mod flights;
pub mod history;
pub mod providers;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::api;
use crate::cache::QuoteCache;
use crate::config::registry::{self, ChannelSetting, Context, STATUS_PROVIDERS};
use crate::config::{ConfigError, Env, FleetPlan, Mode, Plan, SmsPlan, TWILIO_VARS};
use crate::domain::{Money, Recipient};
use crate::engine::{CycleReport, Engine, EngineParts, InvalidRow, Progress};
use crate::fare::demo::DemoSource;
use crate::fare::failover::Failover;
use crate::fare::{FarePool, FareSource};
use crate::fleet::{FleetLimiter, FleetRedis};
use crate::notify::console::{ConsoleNotifier, ConsoleTarget};
use crate::notify::twilio::Twilio;
use crate::notify::{Delivery, Notifier, NotifyError};
use crate::route::Route;
use crate::sheet::{self, RowError, Sheet, SheetOptions};
use crate::status::failover::{StatusFailover, StatusPool, DEFAULT_STATUS_TTL};
use crate::status::watch::Watch;
use crate::status::StatusProvider;
use crate::store::{Store, StoreLocation, WatchKind};
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
    /// The routes sheet: a path, an http(s) URL or `-`; empty for none
    /// (the API's watches alone).
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
    /// No sheet: the API's watches alone (`daemon --serve` without a routes.csv).
    Nothing,
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
        let sheet = if options.routes.is_empty() {
            SheetSource::Nothing
        } else if options.mode == Mode::Demo
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

    /// A search-job worker on this app's fare sources and store; jobs it
    /// completes that ask for a standing watch get one.
    pub fn search_worker(&self) -> crate::search::run::Worker {
        crate::search::run::Worker::new(self.engine.clone(), self.store.clone()).on_complete(
            Arc::new(crate::search::watch::MakeWatch::new(self.store.clone())),
        )
    }

    /// The sheet's name for messages.
    pub fn sheet_name(&self) -> &str {
        match &self.sheet {
            SheetSource::Location { shown, .. } => shown,
            SheetSource::BuiltIn => demo::NAME,
            SheetSource::Nothing => "api",
        }
    }

    /// Whether the command was given a watch list (`--flights`).
    pub fn watches_flights(&self) -> bool {
        self.options.flights.is_some()
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
        let sheet = match &self.sheet {
            SheetSource::Location { location, .. } => {
                sheet::load(location, &self.client, &self.sheet_options()).await?
            }
            SheetSource::BuiltIn => {
                let csv = demo::csv(today());
                sheet::parse(demo::NAME, csv.as_bytes(), &self.sheet_options())?
            }
            SheetSource::Nothing => Sheet::default(),
        };
        Ok(self.reachable(sheet))
    }

    /// The sheet from its bytes as read from `source` (the fleet's copy).
    fn sheet_from(&self, source: &str, body: &[u8]) -> Result<Sheet, ConfigError> {
        let sheet = sheet::parse(source, body, &self.sheet_options())?;
        Ok(self.reachable(sheet))
    }

    fn sheet_options(&self) -> SheetOptions {
        SheetOptions {
            default_currency: self.plan.default_currency,
            today: today(),
        }
    }

    /// `sheet` without the rows none of whose recipients can be reached
    /// (each an error at its line).
    fn reachable(&self, mut sheet: Sheet) -> Sheet {
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
        sheet
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

    /// One `check`: (re-)read the sheet and the API's watches, run one
    /// cycle over both, and with `--flights` (or API flight watches) the
    /// watched flights too. The report is whole: totals include the
    /// flights, and every rejected row and warning is in it.
    ///
    /// API fare watches join the sheet's routes after its last row: one
    /// lookup plan, one single flight, one outbox. Each is a route whose
    /// line is the watch id; rejected ones are reported with source
    /// [`api::watches::SOURCE`] (`api:watch:7: depart_date: ...`). Each
    /// watch keeps its own alert state, even when it repeats a sheet row's
    /// search and recipients; their lookups are shared.
    /// After the cycle the price seen for each API watch is saved under
    /// [`api::watches::last_seen_key`] (not in a dry run).
    pub async fn run_check(&self, progress: Arc<dyn Progress>) -> Result<CycleReport, ConfigError> {
        let input = self.check_input().await?;
        self.check_on(input, progress).await
    }

    /// What a fare check runs on: the sheet's rows and the API's fare
    /// watches, read now.
    async fn check_input(&self) -> Result<CheckInput, ConfigError> {
        let sheet = self.load_sheet().await?;
        self.check_input_with(sheet).await
    }

    /// [`check_input`](Self::check_input) on a sheet already read.
    async fn check_input_with(&self, mut sheet: Sheet) -> Result<CheckInput, ConfigError> {
        let api = self.load_api_watches(true).await?;
        sheet.errors.extend(api.errors);
        sheet.warnings.extend(api.warnings);
        let priced = Self::join_api_routes(&mut sheet, api.fares);
        Ok(CheckInput {
            sheet,
            priced,
            api_flights: api.flights,
        })
    }

    /// One fare check over `input`: the cycle, the API watches' last
    /// prices, the flights and the report.
    async fn check_on(
        &self,
        input: CheckInput,
        progress: Arc<dyn Progress>,
    ) -> Result<CycleReport, ConfigError> {
        let CheckInput {
            sheet,
            priced,
            api_flights,
        } = input;
        let report = self.engine.run_cycle(sheet.routes, progress.clone()).await;
        progress.finished();
        let mut report = report?;
        self.remember_prices(&report, &priced).await;
        report.warnings = sheet.warnings;
        self.finish(report, sheet.errors, api_flights).await
    }

    /// Watched flights only (a daemon's minute loop): `--flights` and the
    /// API's flight watches; an empty report without either.
    pub async fn run_watch_cycle(&self) -> Result<CycleReport, ConfigError> {
        let api = self.load_api_watches(false).await?;
        let report = CycleReport {
            warnings: api.warnings,
            ..CycleReport::default()
        };
        self.finish(report, api.errors, api.flights).await
    }

    /// The API's flight watches, and with `fares` its fare watches, parsed
    /// as the sheet and the watch list parse their rows (today's date, the
    /// sheet's default currency); unreachable recipients are rejected as
    /// the sheet's are.
    async fn load_api_watches(&self, fares: bool) -> Result<ApiWatches, ConfigError> {
        let mut out = ApiWatches::default();
        let stored = self.store.all_watches().await?;
        let options = SheetOptions {
            default_currency: self.plan.default_currency,
            today: today(),
        };
        for (watch, _owner) in stored {
            let parsed = match watch.kind {
                WatchKind::Fare if !fares => continue,
                WatchKind::Fare => api::watches::fare_route(&watch, &options)
                    .map(|(route, warnings)| (Some(route), None, warnings)),
                WatchKind::Flight => api::watches::flight_watch(&watch, options.today)
                    .map(|flight| (None, Some(flight), Vec::new())),
            };
            let (route, flight, warnings) = match parsed {
                Ok(parsed) => parsed,
                Err(errors) => {
                    out.errors.extend(errors);
                    continue;
                }
            };
            let (recipients, line) = match (&route, &flight) {
                (Some(route), _) => (&route.recipients, route.line),
                (_, Some(flight)) => (&flight.recipients, flight.line),
                (None, None) => continue,
            };
            let unreachable = self.unreachable(recipients);
            if !unreachable.is_empty() {
                out.errors
                    .extend(unreachable.into_iter().map(|message| RowError {
                        source: api::watches::SOURCE.to_owned(),
                        line,
                        column: "phone".into(),
                        message,
                    }));
                continue;
            }
            out.warnings.extend(warnings);
            out.fares.extend(route);
            out.flights.extend(flight);
        }
        Ok(out)
    }

    /// Appends the API's fare routes to the sheet's; returns, for every API
    /// watch, the index of its route and the watch id. Each watch has its
    /// own alert state ([`Route::namespace`](crate::route::Route::namespace)),
    /// so a watch never merges with a sheet row or another user's watch; its
    /// lookups are still shared with theirs (one single-flight per search).
    fn join_api_routes(sheet: &mut Sheet, fares: Vec<Route>) -> Vec<(usize, i64)> {
        fares
            .into_iter()
            .map(|route| {
                let id = i64::try_from(route.line).unwrap_or(0);
                sheet.routes.push(route);
                (sheet.routes.len() - 1, id)
            })
            .collect()
    }

    /// Saves, for each API watch, the price the cycle found for the route
    /// that ran for it (nothing in a dry run, which saves nothing).
    async fn remember_prices(&self, report: &CycleReport, priced: &[(usize, i64)]) {
        if self.dry_run() {
            return;
        }
        let mut seen_all = Vec::with_capacity(priced.len());
        for &(index, id) in priced {
            let Some(route) = report.routes.get(index) else {
                continue;
            };
            let (Some(minor), Some(cheapest)) = (route.price_minor(), &route.cheapest) else {
                continue;
            };
            let currency = route.currency();
            let seen = api::watches::LastSeen {
                seen_at: cheapest.fetched_at(),
                source: Some(cheapest.provider().to_owned()),
                price: Some(Money::from_minor(minor, currency).amount_string()),
                price_minor: Some(minor),
                currency: Some(currency.as_str().to_owned()),
                cached: Some(cheapest.cached()),
                status: serde_json::to_value(route.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned)),
                origin: Some(cheapest.origin.as_str().to_owned()),
                destination: Some(cheapest.destination.as_str().to_owned()),
                depart_date: Some(cheapest.depart_date.to_string()),
                return_date: cheapest.return_date.map(|d| d.to_string()),
                flight_status: None,
            };
            seen_all.push((id, seen));
        }
        self.save_last_seen(seen_all).await;
    }

    /// Saves what each API watch saw. The writes are issued together, so the
    /// store commits them in a few batches rather than one after another.
    async fn save_last_seen(&self, seen: Vec<(i64, api::watches::LastSeen)>) {
        let writes = seen.into_iter().map(|(id, seen)| async move {
            let Ok(json) = serde_json::to_string(&seen) else {
                return;
            };
            if let Err(error) = self
                .store
                .kv_put(&api::watches::last_seen_key(id), &json, None)
                .await
            {
                tracing::warn!(watch = id, %error, "cannot save the last price seen for an API watch");
            }
        });
        futures::future::join_all(writes).await;
    }

    /// Whether this run saves nothing.
    fn dry_run(&self) -> bool {
        self.options.mode == Mode::DryRun || self.options.dry_run
    }

    /// Adds the watched flights (`--flights` and the API's) and every rejected row.
    async fn finish(
        &self,
        mut report: CycleReport,
        mut errors: Vec<RowError>,
        api_flights: Vec<Watch>,
    ) -> Result<CycleReport, ConfigError> {
        if self.options.flights.is_some() || !api_flights.is_empty() {
            self.add_watches(api_flights, &mut report, &mut errors)
                .await?;
        }
        report.invalid_rows = InvalidRow::group(errors);
        report.summary.invalid_rows = report.invalid_rows.len();
        report.finished_at = Some(self.engine.now());
        Ok(report)
    }

    /// Polls the watch list's flights and the API's (after them, each once
    /// per flight, date and recipients). API flight watches need a
    /// flight-status provider: without one they are left out, with a warning.
    async fn add_watches(
        &self,
        api_flights: Vec<Watch>,
        report: &mut CycleReport,
        errors: &mut Vec<RowError>,
    ) -> Result<(), ConfigError> {
        let mut watches = Vec::new();
        if let Some(location) = &self.options.flights {
            let (listed, rejected, warnings) = self.load_watches(location).await?;
            watches = listed;
            errors.extend(rejected);
            report.warnings.extend(warnings);
        }
        let listed = watches.len();
        let status = match self.status() {
            Ok(status) => status,
            Err(error) if self.options.flights.is_none() => {
                report.warnings.push(format!(
                    "{}: {} flight watch(es) not polled: {error}",
                    api::watches::SOURCE,
                    api_flights.len()
                ));
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let mut ids: HashSet<String> = watches.iter().map(Watch::id).collect();
        for watch in api_flights {
            if ids.insert(watch.id()) {
                watches.push(watch);
            } else {
                report.warnings.push(format!(
                    "{}:{}: repeats the flight, date and recipients of another watch; runs once, as that one",
                    api::watches::SOURCE,
                    watch.line
                ));
            }
        }
        let flights = self.engine.run_watches(&watches, status).await?;
        if !self.dry_run() {
            let now = self.engine.now();
            let mut seen_all = Vec::new();
            for (watch, polled) in watches.iter().zip(&flights).skip(listed) {
                let Some(state) = polled.status.filter(|_| polled.polled) else {
                    continue;
                };
                let seen = api::watches::LastSeen {
                    seen_at: now,
                    flight_status: serde_json::to_value(state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned)),
                    ..api::watches::LastSeen::default()
                };
                seen_all.push((i64::try_from(watch.line).unwrap_or(0), seen));
            }
            self.save_last_seen(seen_all).await;
        }
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

/// The API's watches for one cycle.
/// What one fare check runs on (see [`App::check_input`]).
#[derive(Debug)]
struct CheckInput {
    sheet: Sheet,
    /// (index in `sheet.routes`, API watch id) of each API fare watch.
    priced: Vec<(usize, i64)>,
    api_flights: Vec<Watch>,
}

#[derive(Debug, Default)]
struct ApiWatches {
    /// Fare watches as routes (line = watch id).
    fares: Vec<Route>,
    /// Flight watches (line = watch id).
    flights: Vec<Watch>,
    /// Watches that cannot run, each problem as the sheet reports it.
    errors: Vec<RowError>,
    /// Their parsers' remarks.
    warnings: Vec<String>,
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

/// The fare sources' pools, in the plan's order (the demo source in demo
/// mode). With fleet-wide limits (`REDIS_URL`), each pool also takes its
/// turns from a [`FleetLimiter`] on one shared Redis connection.
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
    let fleet = plan
        .fleet
        .zip(plan.redis_url.as_deref())
        .map(|(settings, url)| (settings, FleetRedis::open(url)));
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
            if let Some((settings, redis)) = &fleet {
                let burst = registry::fleet_burst(cx.env, &prefix)?;
                let limiter = fleet_limiter(
                    redis,
                    settings,
                    selected.entry.name,
                    limits.rate_per_sec,
                    burst,
                    selected.daily_budget,
                );
                pool = pool.with_fleet_limiter(limiter.with_clock(clock));
            }
            Ok(Arc::new(pool))
        })
        .collect()
}

/// A provider's fleet-wide limiter: its configured rate (`P_RATE_LIMIT`) and
/// daily budget held across every process on the same Redis, and the count
/// of those processes, which divides its concurrency ceiling. A source with
/// neither a rate nor a budget has one too, for that count.
fn fleet_limiter(
    redis: &FleetRedis,
    settings: &FleetPlan,
    provider: &str,
    rate_per_sec: f64,
    burst: u32,
    daily_budget: Option<u64>,
) -> FleetLimiter {
    let mut limiter = FleetLimiter::new(redis.clone(), provider, rate_per_sec, burst);
    if let Some(per_day) = daily_budget {
        limiter = limiter.with_daily_quota(per_day);
    }
    if let Some(size) = settings.fleet_size {
        limiter = limiter.with_fleet_size(size);
    }
    limiter
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
