//! One cycle: routes -> unique lookups -> cache -> provider fan-out ->
//! per-route decision -> alerts through the outbox -> report.
//!
//! # Flow
//! 1. Every active route expands to its [`LookupKey`]s. Identical keys from
//!    different rows are merged, so each is fetched once (single flight).
//! 2. The cache answers what it can in one round trip.
//! 3. The misses fan out over the provider's [`ProviderPool`], which bounds
//!    concurrency and pacing.
//! 4. A route is decided the moment its own last lookup lands, and its
//!    alert is delivered concurrently with the remaining lookups: nothing
//!    waits for the slowest route.
//! 5. Alerts go through the outbox in [`Store`]: an intent is written before
//!    sending, marked sent with the provider's message id after, and the
//!    rule's new state is saved in the same transaction as the last record.
//! 6. Every quote a provider answered in the cycle is appended to the price
//!    history in one write at the end ([`Store::record_prices`]); quotes
//!    from the cache are not new observations and are not recorded, and a
//!    dry run records nothing.
//!
//! A route whose lookups partly failed still alerts on a price at or below
//! its maximum (that price is real), but never re-arms on partial data: a
//! failed lookup could have been the cheap one.

mod gather;
mod outbox;
mod plan;
mod report;
mod watches;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;

use crate::cache::QuoteCache;
use crate::domain::{LookupKey, Quote, Recipient};
use crate::fare::failover::{AllFailed, Failover};
use crate::notify::Notifier;
use crate::route::Route;
use crate::rules::AlertState;
use crate::store::{PricePoint, ProviderRole, RunId, SavedHealth, Store, StoreError};
use crate::telemetry;
use crate::upstream::arc::{Controller, ControllerConfig};
use crate::upstream::budget::DayClock;

pub use crate::notify::{NotifyLimits, DEFAULT_SETTLE_BOUND, DEFAULT_SETTLE_DELAY};
use gather::Gatherings;
pub use plan::{plan_route, Gathering, Outgoing, RoutePlan, StateChange};
use report::inactive_report;
pub use report::{
    AlertOutcome, Cheapest, CycleReport, InvalidRow, RouteRef, RouteReport, RouteStatus,
    RowProblem, Summary,
};
pub use watches::WatchReport;

/// Cycles of at most this many routes read only their own routes' alert
/// states ([`Store::load_states_of`]); larger ones read them all.
const OWN_STATES_UP_TO: usize = 4096;

/// The cache namespace for quotes: one namespace for every fare source, so a
/// lookup answered by any source within the TTL is never searched (and
/// billed) again, whichever source is first in line.
pub const QUOTE_CACHE_NAMESPACE: &str = "fares";

/// Everything a cycle needs, built once and shared by every cycle of a daemon.
pub struct Engine {
    fares: Arc<Failover>,
    cache: QuoteCache,
    /// SMS recipients' channel.
    sms: Channel,
    /// Named channels (`slack:team`, ...) by their sheet name.
    named: HashMap<String, Channel>,
    store: Store,
    /// This engine's run: the owner of the outbox rows it writes, so a run
    /// overlapping it on the same database leaves them alone (see
    /// [`crate::store`], Overlapping runs).
    run: RunId,
    dry_run: bool,
    /// Demo mode: every recipient, named channels included, goes to the SMS slot (the console).
    one_channel: bool,
    /// The one clock every decision reads (alert rules, inactive rows,
    /// watched flights' poll schedule): wall-clock time that moves with
    /// tokio's clock, so a test can advance a paused one by hours.
    clock: DayClock,
}

/// One notification channel with its own adaptive controller and timeout.
struct Channel {
    notifier: Arc<dyn Notifier>,
    controller: Controller,
    timeout: Duration,
    /// How an unknown outcome is settled within the cycle.
    settle: outbox::Settle,
}

impl Channel {
    fn new(notifier: Arc<dyn Notifier>, limits: NotifyLimits) -> Self {
        Self {
            notifier,
            controller: Controller::new(ControllerConfig::new(
                limits.max_concurrency,
                limits.rate_per_sec,
                limits.timeout,
            )),
            timeout: limits.timeout,
            settle: outbox::Settle {
                delay: limits.settle_delay,
                bound: limits.settle_bound,
            },
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("fares", &self.fares)
            .field("cache", &self.cache.kind())
            .field("sms", &self.sms.notifier.name())
            .field("channels", &self.named.keys().collect::<Vec<_>>())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::new`] is built from.
#[derive(Debug)]
pub struct EngineParts {
    /// The fare providers, in priority order, each with its limits.
    pub fares: Arc<Failover>,
    /// The quote cache.
    pub cache: QuoteCache,
    /// The SMS channel (Twilio, or the console in demo mode).
    pub notifier: Arc<dyn Notifier>,
    /// How hard the SMS channel may be driven.
    pub notify_limits: NotifyLimits,
    /// Durable state and outbox.
    pub store: Store,
    /// Evaluate everything but send and save nothing.
    pub dry_run: bool,
}

impl std::fmt::Debug for dyn Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({})", self.name())
    }
}

/// A cycle could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The state store could not be read, so no alert could be sent safely.
    #[error("{0}; nothing was looked up or sent")]
    Store(#[from] StoreError),
}

/// Receives progress events while a cycle runs (the binary draws a bar).
pub trait Progress: Send + Sync {
    /// The number of lookups the cycle will resolve (cache hits included).
    fn planned(&self, _lookups: usize) {}
    /// One lookup resolved (from the cache or the provider).
    fn lookup_done(&self) {}
    /// One route decided, its alert (if any) delivered.
    fn route_done(&self, _report: &RouteReport) {}
    /// The check is over (its report is about to be shown).
    fn finished(&self) {}
}

/// What [`Engine::lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Looked {
    /// The cheapest quote; `None` when the providers have no fare.
    pub quote: Option<Quote>,
    /// Whether a provider was asked now (not the quote cache).
    pub fresh: bool,
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Exports a cycle's totals (no-ops unless the daemon serves /metrics).
fn record_metrics(summary: &Summary, elapsed: Duration) {
    metrics::histogram!(telemetry::CYCLE_DURATION).record(elapsed.as_secs_f64());
    metrics::counter!(telemetry::CACHE_HITS).increment(summary.cache_hits as u64);
    metrics::counter!(telemetry::ALERTS_SENT).increment(summary.alerts_sent as u64);
    metrics::counter!(telemetry::ALERTS_FAILED).increment(summary.alerts_failed as u64);
    metrics::counter!(telemetry::ALERTS_ELSEWHERE).increment(summary.alerts_elsewhere as u64);
    metrics::gauge!(telemetry::LAST_CYCLE_TIMESTAMP).set(Timestamp::now().as_second() as f64);
}

/// What every route of a cycle reads from the store, loaded once at the start.
struct CycleContext {
    /// Saved alert state per route id.
    states: HashMap<String, AlertState>,
    /// (route id, recipient) pairs that replied STOP.
    suppressed: HashSet<(String, String)>,
    /// Routes with an alert started but not completed, and its number.
    unfinished: HashMap<String, u64>,
    /// Pending intents that reconciliation showed were never delivered:
    /// safe to send again this cycle.
    resendable: HashSet<String>,
}

/// Most routes being decided and delivered at once within a cycle (see
/// `run_cycle`); well above any channel's concurrency, so sends never wait
/// for it.
const FINISH_WINDOW: usize = 256;

impl Engine {
    /// Assembles an engine.
    pub fn new(parts: EngineParts) -> Self {
        Self {
            fares: parts.fares,
            cache: parts.cache,
            sms: Channel::new(parts.notifier, parts.notify_limits),
            named: HashMap::new(),
            store: parts.store,
            run: RunId::new(),
            dry_run: parts.dry_run,
            one_channel: false,
            clock: DayClock::system(),
        }
    }

    /// Sends to every recipient, named channels included, through the SMS
    /// notifier: for the demo, whose console notifier prints them all.
    pub fn with_one_channel(mut self) -> Self {
        self.one_channel = true;
        self
    }

    /// Adds a named channel, keyed by the environment variable that
    /// configures it (`SLACK_WEBHOOK_TEAM` serves `slack:team` in the sheet;
    /// see [`Recipient::channel_env_var`]).
    pub fn with_channel(
        mut self,
        env_var: &str,
        notifier: Arc<dyn Notifier>,
        limits: NotifyLimits,
    ) -> Self {
        self.named
            .insert(env_var.to_owned(), Channel::new(notifier, limits));
        self
    }

    /// Reads time from `clock` (the default is the system's); budgets built
    /// with the same clock agree with the engine on what day it is.
    pub fn with_clock(mut self, clock: DayClock) -> Self {
        self.clock = clock;
        self
    }

    /// The time on the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether alerts to `recipient` have a channel.
    pub fn can_reach(&self, recipient: &Recipient) -> bool {
        self.channel_for(recipient).is_some()
    }

    fn channel_for(&self, recipient: &Recipient) -> Option<&Channel> {
        match recipient {
            _ if self.one_channel => Some(&self.sms),
            Recipient::Phone(_) => Some(&self.sms),
            Recipient::Channel { .. } => self.named.get(&recipient.channel_env_var()?),
        }
    }

    /// The durable store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This engine's run, as it claims outbox rows.
    pub fn run_id(&self) -> &RunId {
        &self.run
    }

    /// Settles the fare alerts this run may settle that an earlier send
    /// left pending (its outcome unknown: cut short by a crash, or by a
    /// lost database after the channel accepted it), without a cycle: those
    /// the channel delivered are recorded sent; the others stay pending for
    /// their route's next cycle, which sends them again. A fleet daemon runs
    /// this every tick, so such an alert is settled within a tick rather
    /// than at its route's next interval. Returns how many were looked at.
    pub async fn settle_pending(&self) -> Result<usize, EngineError> {
        if self.dry_run {
            return Ok(0);
        }
        let left = self
            .reconcile_pending(|i| !i.route_id.starts_with(watches::SUBJECT_PREFIX))
            .await?;
        Ok(left.len())
    }

    /// Runs one cycle over `routes`.
    pub async fn run_cycle(
        self: &Arc<Self>,
        routes: Vec<Route>,
        progress: Arc<dyn Progress>,
    ) -> Result<CycleReport, EngineError> {
        let started = tokio::time::Instant::now();
        self.load_provider_state().await;
        let requests_before = self.fares.requests();
        // Everything a decision depends on is read before any lookup: if the
        // store cannot be read, nothing is sent.
        let context = Arc::new(CycleContext {
            // A small cycle (a fleet's batch) reads its own routes' states;
            // a large one the whole table, which costs no more than a list of
            // its ids.
            states: if routes.len() <= OWN_STATES_UP_TO {
                let ids: Vec<String> = routes.iter().filter(|r| r.active).map(Route::id).collect();
                self.store.load_states_of(&ids).await?
            } else {
                self.store.load_states().await?
            },
            suppressed: self.store.suppressed().await?,
            unfinished: self.store.unfinished_alerts().await?,
            resendable: if self.dry_run {
                HashSet::new()
            } else {
                // Fare alerts only; watched flights settle their own.
                self.reconcile_pending(|i| !i.route_id.starts_with(watches::SUBJECT_PREFIX))
                    .await?
            },
        });
        let provider = QUOTE_CACHE_NAMESPACE;
        // Sheet dates are the user's local dates.
        let today = self
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::system())
            .date();

        // Shared whole: each report refers to its route in this vector
        // rather than to a copy of it.
        let routes = Arc::new(routes);
        let route_ref = |index: usize| RouteRef::new(routes.clone(), index);
        let mut reports: Vec<Option<RouteReport>> = vec![None; routes.len()];
        let mut gathering = Gatherings::new(routes.len());
        let mut waiting: HashMap<LookupKey, Vec<usize>> = HashMap::new();
        // A route with no lookup left (its dates are all past) is complete at once.
        let mut asks_nothing = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            if !route.active {
                reports[index] = Some(inactive_report(&route_ref(index)));
                continue;
            }
            let mut keys = route.lookups_from(today);
            keys.sort_unstable_by_key(|k| (k.origin, k.destination, k.depart, k.return_date));
            keys.dedup();
            for key in &keys {
                waiting.entry(*key).or_default().push(index);
            }
            gathering.asks(index, keys.len());
            if gathering.asks_nothing(index) {
                asks_nothing.push(index);
            }
        }

        let unique: Vec<LookupKey> = waiting.keys().copied().collect();
        progress.planned(unique.len());
        let cached = self.cache.get_many(provider, &unique).await;

        // Routes whose lookups are all in, waiting for a place among those
        // being decided and delivered: at most FINISH_WINDOW at once, since
        // each holds a future of a few kilobytes while its messages wait
        // for the channel, and 5,000 alerting routes at once held ~20 MB.
        let mut ready: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        let mut finishing = FuturesUnordered::new();
        let mut cache_hits = 0;
        let mut lookup_errors = 0;
        let mut misses = Vec::new();
        ready.extend(asks_nothing);
        for (key, hit) in unique.into_iter().zip(cached) {
            match hit {
                Some(answer) => {
                    cache_hits += 1;
                    progress.lookup_done();
                    for index in self.land(&mut waiting, &mut gathering, key, Ok(answer)) {
                        ready.push_back(index);
                    }
                }
                None => misses.push(key),
            }
        }

        // The provider's answers of this cycle, recorded in one write at its
        // end (see `record_history`). A cache hit above is not one: it is a
        // copy of an observation recorded when it was fetched.
        let mut observed: Vec<PricePoint> = Vec::new();
        metrics::counter!(telemetry::CACHE_MISSES).increment(misses.len() as u64);
        let concurrency = self.fares.max_concurrency();
        let mut fetches = futures::stream::iter(misses)
            .map(|key| {
                let engine = self.clone();
                async move {
                    let looked = engine.fetch(&key).await;
                    (key, looked.map(|l| (l.quote, l.fresh)))
                }
            })
            .buffer_unordered(concurrency);

        loop {
            while finishing.len() < FINISH_WINDOW {
                let Some(index) = ready.pop_front() else {
                    break;
                };
                finishing.push(self.clone().finish(
                    route_ref(index),
                    index,
                    gathering.take(index),
                    context.clone(),
                ));
            }
            tokio::select! {
                Some((key, result)) = fetches.next() => {
                    progress.lookup_done();
                    // Another process's answer (a shared flight) is not a
                    // new observation: that process recorded it.
                    if let Ok((Some(quote), true)) = &result {
                        observed.push(PricePoint::from_quote(&key, quote));
                    }
                    let result = result.map(|(quote, _)| quote);
                    if let Err(error) = &result {
                        lookup_errors += 1;
                        // One line per lookup is noise in an outage; the report
                        // groups failures by provider and cause.
                        tracing::debug!(route = %key, %error, "lookup failed");
                    }
                    for index in self.land(&mut waiting, &mut gathering, key, result) {
                        ready.push_back(index);
                    }
                }
                Some((index, report)) = finishing.next() => {
                    progress.route_done(&report);
                    reports[index] = Some(report);
                }
                else => break,
            }
        }

        // `filter_map`, not `flatten`: it collects in place, reusing the slots'
        // allocation, where `flatten` built a second vector beside it (a third
        // of the cycle's peak memory at 10,000 routes).
        #[allow(clippy::filter_map_identity)]
        let routes: Vec<RouteReport> = reports.into_iter().filter_map(|r| r).collect();
        let summary = Summary {
            routes: routes.len(),
            lookups: self.fares.requests() - requests_before,
            cache_hits,
            below: routes
                .iter()
                .filter(|r| r.status == RouteStatus::Below)
                .count(),
            alerts_sent: routes.iter().map(|r| r.messages_sent as usize).sum(),
            alerts_failed: routes.iter().map(|r| r.messages_failed as usize).sum(),
            alerts_elsewhere: routes.iter().map(|r| r.messages_elsewhere as usize).sum(),
            lookup_errors,
            invalid_rows: 0,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            providers: self.fares.health(),
        };
        self.save_provider_state().await;
        self.record_history(&observed).await;
        record_metrics(&summary, started.elapsed());
        Ok(CycleReport {
            summary,
            routes,
            ..CycleReport::default()
        })
    }

    /// Appends a cycle's fresh quotes to the price history in one batch
    /// (see [`crate::store::PriceHistory`]); nothing in a dry run. Losing
    /// them is not worth failing a cycle for.
    async fn record_history(&self, observed: &[PricePoint]) {
        if self.dry_run || observed.is_empty() {
            return;
        }
        if let Err(error) = self.store.record_prices(observed).await {
            tracing::warn!(%error, points = observed.len(), "cannot record the price history");
        }
    }

    /// The fare providers, in priority order (their budgets, limits and health).
    pub fn fares(&self) -> &Failover {
        &self.fares
    }

    /// One lookup on its own, outside a cycle (a search job's
    /// combination): the quote cache first, else the providers through
    /// their limits and failover, the answer cached. Nothing is sent or
    /// recorded; [`Looked::fresh`] says whether a provider was asked (the
    /// caller records fresh quotes in the price history).
    pub async fn lookup(&self, key: &LookupKey) -> Result<Looked, AllFailed> {
        let provider = QUOTE_CACHE_NAMESPACE;
        if let Some(Some(answer)) = self
            .cache
            .get_many(provider, std::slice::from_ref(key))
            .await
            .pop()
        {
            metrics::counter!(telemetry::CACHE_HITS).increment(1);
            return Ok(Looked {
                quote: answer,
                fresh: false,
            });
        }
        metrics::counter!(telemetry::CACHE_MISSES).increment(1);
        self.fetch(key).await
    }

    /// A lookup the cache missed: asked of the providers once across every
    /// process sharing the cache ([`QuoteCache::flight`]), the answer cached.
    async fn fetch(&self, key: &LookupKey) -> Result<Looked, AllFailed> {
        let flight = match self.cache.flight(QUOTE_CACHE_NAMESPACE, key).await {
            crate::cache::Flight::Landed(answer) => {
                return Ok(Looked {
                    quote: *answer,
                    fresh: false,
                })
            }
            lead => lead,
        };
        let result = self.fares.cheapest(key).await;
        // Only answers are cached; an error might be retried.
        if let Ok(answer) = &result {
            self.cache.put(QUOTE_CACHE_NAMESPACE, key, answer).await;
        }
        flight.land().await;
        result.map(|quote| Looked { quote, fresh: true })
    }

    /// Seeds each provider's daily budget with what earlier runs spent
    /// today, and a fresh process's controllers with the operating point
    /// the last run learned (so a cron run does not rediscover a rate limit
    /// by tripping over it).
    pub(crate) async fn load_provider_state(&self) {
        for pool in self.fares.pools() {
            if let Ok(Some(saved)) = self
                .store
                .provider_health(ProviderRole::Fare, pool.name())
                .await
            {
                if let Some(point) = saved.health.operating_point {
                    if pool.controller().resume_from(point) {
                        tracing::debug!(
                            provider = pool.name(),
                            ?point,
                            "starting from the last run's operating point"
                        );
                    }
                }
            }
            let Some(budget) = pool.budget() else {
                continue;
            };
            match self.store.spent_budget(pool.name()).await {
                Ok(Some((day, spent))) => budget.seed(day, spent),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(provider = pool.name(), %error, "cannot read the budget spent today; counting from zero")
                }
            }
        }
    }

    /// Saves budgets and each provider's health for the next run and for
    /// `farewatch providers`. Losing this is not worth failing a cycle for.
    pub(crate) async fn save_provider_state(&self) {
        for pool in self.fares.pools() {
            if let Some(budget) = pool.budget() {
                let (day, spent) = budget.spent_today();
                if let Err(error) = self.store.save_spent_budget(pool.name(), day, spent).await {
                    tracing::warn!(provider = pool.name(), %error, "cannot save the budget spent today");
                }
            }
            let saved = SavedHealth {
                saved_at: Timestamp::now(),
                health: pool.health(),
            };
            if let Err(error) = self
                .store
                .save_provider_health(ProviderRole::Fare, pool.name(), &saved)
                .await
            {
                tracing::warn!(provider = pool.name(), %error, "cannot save provider health");
            }
        }
    }

    /// Folds one lookup result into every route waiting on it; returns the
    /// routes that are now complete.
    fn land(
        &self,
        waiting: &mut HashMap<LookupKey, Vec<usize>>,
        gathering: &mut Gatherings,
        key: LookupKey,
        result: Result<Option<Quote>, AllFailed>,
    ) -> Vec<usize> {
        let result = result.map(|answer| answer.map(Arc::new));
        let mut complete = Vec::new();
        for index in waiting.remove(&key).unwrap_or_default() {
            if gathering.land(index, &key, &result) {
                complete.push(index);
            }
        }
        complete
    }

    /// Decides a complete route and delivers its alert.
    async fn finish(
        self: Arc<Self>,
        route: RouteRef,
        index: usize,
        gathered: Gathering,
        context: Arc<CycleContext>,
    ) -> (usize, RouteReport) {
        let report = self.decide_and_deliver(&route, &context, gathered).await;
        (index, report)
    }

    async fn decide_and_deliver(
        &self,
        route: &RouteRef,
        context: &CycleContext,
        gathered: Gathering,
    ) -> RouteReport {
        let route_id = route.id();
        let state = context.states.get(&route_id).cloned().unwrap_or_default();
        let unfinished = context.unfinished.get(&route_id).copied();
        let plan = plan_route(route, gathered, &state, unfinished, self.clock.now());
        let mut report = plan.report;
        if self.dry_run {
            if let Some(outgoing) = &plan.outgoing {
                report.alert = AlertOutcome::DryRun;
                self.show_dry_run(route, &outgoing.body).await;
            }
            return report;
        }
        match plan.outgoing {
            Some(outgoing) => {
                self.deliver(
                    route,
                    &route_id,
                    &outgoing.completes,
                    &outgoing.body,
                    context,
                    &mut report,
                )
                .await;
            }
            None => {
                self.change_state(route, &route_id, plan.next_state, &mut report)
                    .await;
            }
        }
        report
    }
}
