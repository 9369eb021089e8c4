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
//!
//! A route whose lookups partly failed still alerts on a price at or below
//! its maximum (that price is real), but never re-arms on partial data: a
//! failed lookup could have been the cheap one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::cache::QuoteCache;
use crate::domain::{LookupKey, Money, Quote};
use crate::fare::FareError;
use crate::notify::sms::{self, AlertText};
use crate::notify::{Notifier, NotifyError};
use crate::pool::{Pacer, ProviderPool};
use crate::route::Route;
use crate::rules::{self, AlertState, Decision};
use crate::store::{Intent, IntentStatus, Store, StoreError};

/// How hard the notifier may be driven.
#[derive(Debug, Clone, Copy)]
pub struct NotifyLimits {
    /// Sends in flight at once.
    pub max_concurrency: usize,
    /// Sends started per second; `0` is unlimited.
    pub rate_per_sec: f64,
    /// Hard bound on one send, after which its outcome is unknown.
    pub timeout: Duration,
}

/// Everything a cycle needs, built once and shared by every cycle of a daemon.
pub struct Engine {
    fares: Arc<ProviderPool>,
    cache: QuoteCache,
    notifier: Arc<dyn Notifier>,
    notify_permits: Semaphore,
    notify_pacer: Pacer,
    notify_timeout: Duration,
    store: Store,
    dry_run: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("fares", &self.fares)
            .field("cache", &self.cache.kind())
            .field("notifier", &self.notifier.name())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::new`] is built from.
#[derive(Debug)]
pub struct EngineParts {
    /// The fare provider with its limits.
    pub fares: Arc<ProviderPool>,
    /// The quote cache.
    pub cache: QuoteCache,
    /// The alert channel.
    pub notifier: Arc<dyn Notifier>,
    /// How hard the channel may be driven.
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
    #[error(transparent)]
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
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Where a route stands after the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    /// The cheapest fare is at or below the maximum.
    Below,
    /// The cheapest fare is above the maximum.
    Above,
    /// Every lookup answered, none had offers.
    NoOffers,
    /// Lookups failed (or answered in another currency): nothing decided.
    Error,
    /// The row has `active=false`.
    Inactive,
}

/// What happened to a route's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    /// Every recipient's message was accepted (now or in an earlier run).
    Sent,
    /// At or below, but already alerted for this drop or cooling down.
    Suppressed,
    /// At least one recipient's message was not accepted; retried next cycle.
    Failed,
    /// An alert was due but `--dry-run` sent nothing.
    DryRun,
    /// No alert due.
    None,
}

/// The lookup that produced a route's price.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cheapest {
    /// Origin airport of the cheapest fare.
    pub origin: String,
    /// Destination airport of the cheapest fare.
    pub destination: String,
    /// Its departure date.
    pub depart_date: String,
    /// Its return date, for round trips.
    pub return_date: Option<String>,
    /// The provider that quoted it.
    pub provider: String,
    /// A booking or search link, where the provider gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One route's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteReport {
    /// The row's line in the sheet.
    pub row: usize,
    /// The row's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Origins as in the sheet (`LHR|LGW`).
    pub origin: String,
    /// Destinations as in the sheet.
    pub destination: String,
    /// Departure date or range.
    pub depart_date: String,
    /// Return date or range.
    pub return_date: Option<String>,
    /// Cheapest price found, as a decimal number in `currency`.
    pub price: Option<f64>,
    /// The same price in minor units (exact).
    pub price_minor: Option<i64>,
    /// The row's currency.
    pub currency: String,
    /// The row's maximum.
    pub max_price: f64,
    /// Where the route stands.
    pub status: RouteStatus,
    /// What happened to its alert.
    pub alert: AlertOutcome,
    /// The cheapest lookup, when there was a price.
    pub cheapest: Option<Cheapest>,
    /// Lookups the row expands to.
    pub lookups: usize,
    /// Problems: failed lookups (provider, route and cause) and failed sends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Messages accepted for this route in this cycle.
    #[serde(skip)]
    pub messages_sent: usize,
    /// Messages not accepted for this route in this cycle.
    #[serde(skip)]
    pub messages_failed: usize,
}

/// Totals for a cycle.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Valid rows in the sheet (inactive ones included).
    pub routes: usize,
    /// Requests actually sent to fare providers.
    pub lookups: u64,
    /// Lookups answered by the cache.
    pub cache_hits: usize,
    /// Routes at or below their maximum.
    pub below: usize,
    /// Messages accepted by the channel.
    pub alerts_sent: usize,
    /// Messages the channel did not accept.
    pub alerts_failed: usize,
    /// Unique lookups that failed.
    pub lookup_errors: usize,
    /// Rows the sheet reader rejected (filled in by the caller).
    pub invalid_rows: usize,
    /// Wall time of the cycle.
    pub elapsed_ms: u64,
    /// Each fare provider's counters (since the process started) and circuit breaker state.
    pub providers: Vec<crate::pool::PoolHealth>,
}

/// A finished cycle.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CycleReport {
    /// Totals.
    pub summary: Summary,
    /// One entry per valid row, in sheet order.
    pub routes: Vec<RouteReport>,
}

/// What a route has gathered while its lookups land.
struct Gathering {
    pending: usize,
    lookups: usize,
    best: Option<(Quote, LookupKey)>,
    errors: Vec<String>,
}

impl Engine {
    /// Assembles an engine.
    pub fn new(parts: EngineParts) -> Self {
        let limits = parts.notify_limits;
        Self {
            fares: parts.fares,
            cache: parts.cache,
            notifier: parts.notifier,
            notify_permits: Semaphore::new(limits.max_concurrency.max(1)),
            notify_pacer: Pacer::new(limits.rate_per_sec),
            notify_timeout: limits.timeout,
            store: parts.store,
            dry_run: parts.dry_run,
        }
    }

    /// The durable store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs one cycle over `routes`.
    pub async fn run_cycle(
        self: &Arc<Self>,
        routes: Vec<Route>,
        progress: Arc<dyn Progress>,
    ) -> Result<CycleReport, EngineError> {
        let started = tokio::time::Instant::now();
        let requests_before = self.fares.stats().requests();
        let states = self.store.load_states().await?;
        let provider = self.fares.name();

        let mut reports: Vec<Option<RouteReport>> = vec![None; routes.len()];
        let mut gathering: Vec<Option<Gathering>> = Vec::with_capacity(routes.len());
        let today = jiff::Zoned::now().date();
        let mut waiting: HashMap<LookupKey, Vec<usize>> = HashMap::new();
        for (index, route) in routes.iter().enumerate() {
            if !route.active {
                reports[index] = Some(inactive_report(route));
                gathering.push(None);
                continue;
            }
            let mut keys = route.lookups_from(today);
            keys.sort_unstable_by_key(|k| (k.origin, k.destination, k.depart, k.return_date));
            keys.dedup();
            for key in &keys {
                waiting.entry(*key).or_default().push(index);
            }
            gathering.push(Some(Gathering {
                pending: keys.len(),
                lookups: keys.len(),
                best: None,
                errors: Vec::new(),
            }));
        }
        let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();

        let unique: Vec<LookupKey> = waiting.keys().copied().collect();
        progress.planned(unique.len());
        let cached = self.cache.get_many(provider, &unique).await;

        let mut finishing = FuturesUnordered::new();
        let mut cache_hits = 0;
        let mut lookup_errors = 0;
        let mut misses = Vec::new();
        for (key, hit) in unique.into_iter().zip(cached) {
            match hit {
                Some(answer) => {
                    cache_hits += 1;
                    progress.lookup_done();
                    for index in self.land(&mut waiting, &mut gathering, key, Ok(answer)) {
                        finishing.push(self.clone().finish(
                            routes[index].clone(),
                            index,
                            gathering[index].take(),
                            &states,
                        ));
                    }
                }
                None => misses.push(key),
            }
        }

        let concurrency = self.fares.limits().max_concurrency.max(1);
        let mut fetches = futures::stream::iter(misses)
            .map(|key| {
                let engine = self.clone();
                async move {
                    let result = engine.fares.cheapest(&key).await;
                    // Only answers are cached; an error might be retried.
                    if let Ok(answer) = &result {
                        engine.cache.put(engine.fares.name(), &key, answer).await;
                    }
                    (key, result)
                }
            })
            .buffer_unordered(concurrency);

        loop {
            tokio::select! {
                Some((key, result)) = fetches.next() => {
                    progress.lookup_done();
                    if let Err(error) = &result {
                        lookup_errors += 1;
                        tracing::warn!(provider, route = %key, %error, "lookup failed");
                    }
                    for index in self.land(&mut waiting, &mut gathering, key, result) {
                        finishing.push(self.clone().finish(routes[index].clone(), index, gathering[index].take(), &states));
                    }
                }
                Some((index, report)) = finishing.next() => {
                    progress.route_done(&report);
                    reports[index] = Some(report);
                }
                else => break,
            }
        }

        let routes: Vec<RouteReport> = reports.into_iter().flatten().collect();
        let summary = Summary {
            routes: routes.len(),
            lookups: self.fares.stats().requests() - requests_before,
            cache_hits,
            below: routes
                .iter()
                .filter(|r| r.status == RouteStatus::Below)
                .count(),
            alerts_sent: routes.iter().map(|r| r.messages_sent).sum(),
            alerts_failed: routes.iter().map(|r| r.messages_failed).sum(),
            lookup_errors,
            invalid_rows: 0,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            providers: vec![self.fares.health()],
        };
        Ok(CycleReport { summary, routes })
    }

    /// Folds one lookup result into every route waiting on it; returns the
    /// routes that are now complete.
    fn land(
        &self,
        waiting: &mut HashMap<LookupKey, Vec<usize>>,
        gathering: &mut [Option<Gathering>],
        key: LookupKey,
        result: Result<Option<Quote>, FareError>,
    ) -> Vec<usize> {
        let mut complete = Vec::new();
        for index in waiting.remove(&key).unwrap_or_default() {
            let Some(g) = gathering[index].as_mut() else {
                continue;
            };
            g.pending -= 1;
            match &result {
                Ok(Some(quote)) => {
                    let cheaper = match &g.best {
                        None => true,
                        Some((best, _)) => quote
                            .price
                            .checked_cmp(&best.price)
                            .is_some_and(|o| o.is_lt()),
                    };
                    if cheaper {
                        g.best = Some((quote.clone(), key));
                    }
                }
                Ok(None) => {}
                Err(error) => g
                    .errors
                    .push(format!("{}: {key}: {error}", self.fares.name())),
            }
            if g.pending == 0 {
                complete.push(index);
            }
        }
        complete
    }

    /// Decides a complete route and delivers its alert.
    fn finish(
        self: Arc<Self>,
        route: Arc<Route>,
        index: usize,
        gathered: Option<Gathering>,
        states: &HashMap<String, AlertState>,
    ) -> impl std::future::Future<Output = (usize, RouteReport)> + Send + 'static {
        let route_id = route.id();
        let state = states.get(&route_id).cloned().unwrap_or_default();
        async move {
            let gathered = gathered.unwrap_or(Gathering {
                pending: 0,
                lookups: 0,
                best: None,
                errors: Vec::new(),
            });
            let report = self
                .decide_and_deliver(&route, route_id, state, gathered)
                .await;
            (index, report)
        }
    }

    async fn decide_and_deliver(
        &self,
        route: &Route,
        route_id: String,
        state: AlertState,
        gathered: Gathering,
    ) -> RouteReport {
        let mut report = base_report(route, gathered.lookups);
        report.errors = gathered.errors;
        let Some((quote, key)) = gathered.best else {
            report.status = if report.errors.is_empty() {
                RouteStatus::NoOffers
            } else {
                RouteStatus::Error
            };
            return report;
        };
        report.price = quote.price.to_decimal().to_string().parse().ok();
        report.price_minor = Some(quote.price.minor);
        report.cheapest = Some(Cheapest {
            origin: key.origin.to_string(),
            destination: key.destination.to_string(),
            depart_date: key.depart.to_string(),
            return_date: key.return_date.map(|d| d.to_string()),
            provider: quote.provider.clone(),
            link: quote.link.clone(),
        });

        let (decision, next) =
            rules::evaluate(&route.rule, &state, Some(quote.price), Timestamp::now());
        match decision {
            Decision::CurrencyMismatch { price } => {
                report.status = RouteStatus::Error;
                report.errors.push(format!(
                    "{} answered in {}, the row is in {}: prices are never compared across currencies",
                    quote.provider, price.currency, route.currency()
                ));
            }
            Decision::Above { rearmed, .. } => {
                if !report.errors.is_empty() {
                    // A failed lookup might have been below: do not re-arm on partial data.
                    report.status = RouteStatus::Error;
                } else {
                    report.status = RouteStatus::Above;
                    if rearmed && !self.dry_run {
                        if let Err(error) = self.store.save_state(&route_id, &next).await {
                            tracing::warn!(row = route.line, %error, "could not save the re-armed state; it re-arms next cycle");
                        }
                    }
                }
            }
            Decision::Quiet { .. } => {
                report.status = RouteStatus::Below;
                report.alert = AlertOutcome::Suppressed;
            }
            Decision::NoQuote => report.status = RouteStatus::NoOffers,
            Decision::Alert { price, .. } => {
                report.status = RouteStatus::Below;
                if self.dry_run {
                    report.alert = AlertOutcome::DryRun;
                } else {
                    let body = sms::render(&AlertText {
                        route: &format!("{}-{}", key.origin, key.destination),
                        label: route.label.as_deref(),
                        depart: key.depart,
                        return_date: key.return_date,
                        price,
                        max_price: route.rule.max_price,
                    });
                    self.deliver(route, &route_id, &next, &body, &mut report)
                        .await;
                }
            }
        }
        report
    }

    /// Sends one alert to every recipient through the outbox.
    async fn deliver(
        &self,
        route: &Route,
        route_id: &str,
        next: &AlertState,
        body: &str,
        report: &mut RouteReport,
    ) {
        let seq = next.alerts_sent;
        let channel = self.notifier.name();
        let mut all_terminal = true;
        let total = route.recipients.len();
        for (i, recipient) in route.recipients.iter().enumerate() {
            let is_last = i + 1 == total;
            let key = format!("{route_id}#{seq}#{recipient}");
            let intent = Intent {
                key: key.clone(),
                route_id: route_id.to_owned(),
                seq,
                recipient: recipient.to_string(),
                channel: channel.to_owned(),
                body: body.to_owned(),
                created_at: Timestamp::now(),
            };
            let completes = |terminal: bool| (is_last && terminal).then_some((route_id, next));
            let status = match self.store.open_intent(&intent).await {
                Ok(status) => status,
                Err(error) => {
                    // No durable intent, no SMS.
                    report.errors.push(format!(
                        "{recipient}: not sent, the outbox is unavailable: {error}"
                    ));
                    report.messages_failed += 1;
                    all_terminal = false;
                    continue;
                }
            };
            match status {
                IntentStatus::Sent { .. } => {
                    // Accepted in an earlier run that stopped before saving the state.
                    if let Some((id, state)) = completes(all_terminal) {
                        self.save_state_logged(route, id, state).await;
                    }
                    continue;
                }
                IntentStatus::Failed { .. } => {
                    if let Some((id, state)) = completes(all_terminal) {
                        self.save_state_logged(route, id, state).await;
                    }
                    continue;
                }
                IntentStatus::New | IntentStatus::Pending => {}
            }
            match self.send(recipient, body).await {
                Ok(delivery) => {
                    report.messages_sent += 1;
                    tracing::info!(row = route.line, %recipient, id = %delivery.id, "alert sent");
                    if let Err(error) = self
                        .store
                        .record_sent(&key, &delivery.id, completes(all_terminal))
                        .await
                    {
                        // The message went out but is not recorded: say so loudly.
                        report.errors.push(format!(
                            "{recipient}: sent as {} but not recorded: {error}",
                            delivery.id
                        ));
                        all_terminal = false;
                    }
                }
                Err(error @ NotifyError::Permanent { .. }) => {
                    report.messages_failed += 1;
                    report
                        .errors
                        .push(format!("{channel}: {recipient}: {error}"));
                    if let Err(store_error) = self
                        .store
                        .record_failed(&key, &error.to_string(), completes(all_terminal))
                        .await
                    {
                        report
                            .errors
                            .push(format!("{recipient}: failure not recorded: {store_error}"));
                        all_terminal = false;
                    }
                }
                Err(error) => {
                    report.messages_failed += 1;
                    report
                        .errors
                        .push(format!("{channel}: {recipient}: {error}"));
                    all_terminal = false;
                }
            }
        }
        report.alert = if report.messages_failed == 0 && all_terminal {
            AlertOutcome::Sent
        } else {
            AlertOutcome::Failed
        };
    }

    async fn save_state_logged(&self, route: &Route, route_id: &str, state: &AlertState) {
        if let Err(error) = self.store.save_state(route_id, state).await {
            tracing::warn!(row = route.line, %error, "could not save the alert state");
        }
    }

    async fn send(
        &self,
        to: &crate::domain::E164,
        body: &str,
    ) -> Result<crate::notify::Delivery, NotifyError> {
        let _permit = self.notify_permits.acquire().await.ok();
        self.notify_pacer.wait().await;
        match tokio::time::timeout(self.notify_timeout, self.notifier.send(to, body)).await {
            Ok(result) => result,
            Err(_) => Err(NotifyError::Ambiguous(format!(
                "no answer within {:?}",
                self.notify_timeout
            ))),
        }
    }
}

fn money_number(m: &Money) -> f64 {
    m.to_decimal().to_string().parse().unwrap_or(f64::NAN)
}

fn base_report(route: &Route, lookups: usize) -> RouteReport {
    let join = |codes: &[crate::domain::Iata]| {
        codes
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("|")
    };
    RouteReport {
        row: route.line,
        label: route.label.clone(),
        origin: join(&route.origins),
        destination: join(&route.destinations),
        depart_date: route.depart.to_string(),
        return_date: route.return_dates.map(|r| r.to_string()),
        price: None,
        price_minor: None,
        currency: route.currency().to_string(),
        max_price: money_number(&route.rule.max_price),
        status: RouteStatus::Error,
        alert: AlertOutcome::None,
        cheapest: None,
        lookups,
        errors: Vec::new(),
        messages_sent: 0,
        messages_failed: 0,
    }
}

fn inactive_report(route: &Route) -> RouteReport {
    RouteReport {
        status: RouteStatus::Inactive,
        ..base_report(route, 0)
    }
}
