//! `farewatch daemon --fleet`: several daemons on one database share the
//! routes instead of each checking all of them (see [`crate::store::fleet`]).
//!
//! # A tick
//! A fleet daemon wakes every [`FleetOptions::tick`] (its interval, or the
//! lease when that is shorter) and:
//! 1. beats (`fleet_nodes`), so the others know it is alive;
//! 2. reads the sheet: the daemon holding the `sheet` lease reads it from
//!    its source and stores it (`fleet_sheet`); the others check from that
//!    copy, read again only when it changes. So a Google Sheet is fetched
//!    by one daemon, and an edit reaches every daemon within a tick. The
//!    lease passes to another daemon when its holder stops renewing it
//!    (dies), after [`FleetOptions::sheet_lease`]. A source that fails to
//!    read leaves the last copy in force (a warning, nothing lost);
//! 3. registers the routes of the sheet and the API's watches (new ones are
//!    due at once; the lease holder also forgets those removed);
//! 4. claims batches of [`FleetOptions::batch`] due routes held by no one,
//!    checks each batch (lookups, decisions, outbox) while renewing its
//!    claim every third of [`FleetOptions::lease`], and completes it: the
//!    routes are next due one interval later, except those whose alert is
//!    not settled (the database or the channel failed it) or whose batch
//!    could not run, due again at the next tick. It stops when nothing due is
//!    left, so daemons split the work between them, and a route is looked
//!    up once per interval by the fleet. Lookups two daemons share go
//!    through the quote cache and its single flight (with Redis); an alert
//!    is sent once whatever happens (the outbox).
//!
//! # When a daemon dies
//! Its claims are renewed no more: they lapse within one lease (at most
//! [`DEFAULT_LEASE`]), and the next tick of any daemon takes them, so a
//! route is late by at most a lease plus a tick. A daemon of the same
//! machine whose process is gone is known dead at once (its heartbeat
//! names its PID and start time): the next tick there takes its routes
//! without waiting. A daemon that joins takes work from its first tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{App, CheckInput, SheetSource};
use crate::config::ConfigError;
use crate::engine::{CycleReport, Progress};
use crate::route::Route;
use crate::sheet::Sheet;
use crate::store::fleet::sheet_digest;
use crate::telemetry;

/// Routes claimed at once unless `FAREWATCH_FLEET_BATCH` says otherwise.
pub const DEFAULT_BATCH: u32 = 500;

/// The longest a claim lasts unrenewed: a dead daemon's routes are taken
/// by the others within this (plus a tick). Shorter intervals lease for
/// one interval.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The lease on reading the sheet for the fleet: this many ticks.
const SHEET_LEASE_TICKS: u32 = 3;

/// A daemon seen within this is counted live (`farewatch fleet`, `/metrics`).
pub const LIVE_WITHIN: Duration = Duration::from_secs(15 * 60);

/// The name of the lease on reading the sheet.
pub const SHEET_LEASE: &str = "sheet";

/// How a daemon takes part in a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// This daemon's run: its name (`HOST/PID/START/RUN`) holds the claims.
    run: Arc<crate::store::RunId>,
    /// The daemon's interval: a checked route is next due this much later.
    pub interval: Duration,
    /// How long a claim lasts unrenewed: the interval, at most [`DEFAULT_LEASE`].
    pub lease: Duration,
    /// Routes per claim.
    pub batch: u32,
    /// What this daemon last registered and the sheet copy it last read.
    known: Arc<Mutex<Known>>,
}

#[derive(Debug, Default)]
struct Known {
    /// The digest of the route ids last registered, and whether this
    /// daemon held the `sheet` lease then (and forgot the routes gone).
    registered: Option<(String, bool)>,
    /// The fleet's sheet copy last read: (digest, source, bytes).
    sheet: Option<(String, String, Arc<[u8]>)>,
    /// The digest of the input whose problems were last reported.
    reported: Option<String>,
    /// Routes done whose heartbeat was not recorded (the database failed
    /// it): added to the next.
    unrecorded: u64,
}

impl FleetOptions {
    /// This daemon's name in the fleet tables.
    pub fn holder(&self) -> &str {
        self.run.as_str()
    }

    /// A daemon checking every `interval`, claiming `batch` routes at a time.
    pub fn new(interval: Duration, batch: u32) -> Self {
        let run = Arc::new(crate::store::RunId::new());
        Self {
            run,
            interval,
            lease: interval.min(DEFAULT_LEASE),
            batch: batch.max(1),
            known: Arc::default(),
        }
    }

    /// Claims lasting `lease` unrenewed (at most the interval, at least a
    /// second) instead of [`DEFAULT_LEASE`].
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.min(self.interval).max(Duration::from_secs(1));
        self
    }

    /// How often the daemon looks for due work: the lease, so a dead
    /// daemon's routes are taken within a lease and a tick.
    pub fn tick(&self) -> Duration {
        self.lease
    }

    /// How long the `sheet` lease lasts unrenewed.
    pub fn sheet_lease(&self) -> Duration {
        self.tick() * SHEET_LEASE_TICKS
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Splits a batch's claimed route ids into those checked and settled, and
/// those to check again at the next tick: each route whose alert is
/// unsettled, or the whole batch when its check failed.
fn split_unsettled(
    claimed: Vec<String>,
    result: &Result<CycleReport, ConfigError>,
) -> (Vec<String>, Vec<String>) {
    let Ok(report) = result else {
        return (Vec::new(), claimed);
    };
    let unsettled: std::collections::HashSet<String> = report
        .routes
        .iter()
        .filter(|r| r.unsettled)
        .map(|r| r.route.id())
        .collect();
    if unsettled.is_empty() {
        return (claimed, Vec::new());
    }
    claimed.into_iter().partition(|id| !unsettled.contains(id))
}

/// A fleet tick's input: the routes, and whether this daemon read the sheet
/// for the fleet.
struct TickInput {
    /// The sheet's problems and the API's flights (routes taken out).
    input: CheckInput,
    /// The routes, by id.
    routes: TickRoutes,
    /// A digest of the route ids (and the problems reported with them).
    digest: String,
    /// Holds the `sheet` lease.
    syncing: bool,
}

impl App {
    /// One fleet tick (see the [module docs](self)): claims, checks and
    /// completes batches of due routes until none is left; each batch's
    /// report goes to `report` as it ends. The sheet's problems are
    /// reported with the first batch, or alone when they changed and
    /// nothing is due. Returns the routes this daemon checked.
    pub async fn run_fleet_check(
        &self,
        fleet: &FleetOptions,
        progress: impl Fn() -> Arc<dyn Progress>,
        report: impl Fn(Result<CycleReport, ConfigError>),
    ) -> u64 {
        let store = self.store();
        // Seen before claiming, so a daemon that dies holding routes is
        // known (below) to the others.
        self.beat(fleet, 0).await;
        let dead = self.dead_daemons().await;
        let TickInput {
            input,
            mut routes,
            digest,
            syncing,
        } = match self.tick_input(fleet, &dead).await {
            Ok(input) => input,
            Err(error) => {
                report(Err(error));
                return 0;
            }
        };
        if let Err(error) = self.register(fleet, &routes.ids(), &digest, syncing).await {
            report(Err(error.into()));
            return 0;
        }
        let lease = SignedDuration::try_from(fleet.lease).unwrap_or(SignedDuration::MAX);
        let mut first = Some(input);
        let mut reloaded = false;
        let mut checked = 0u64;
        loop {
            let (token, claimed) = match store
                .claim_due(fleet.holder(), &dead, fleet.batch, Timestamp::now(), lease)
                .await
            {
                Ok(claim) => claim,
                Err(error) => {
                    report(Err(error.into()));
                    break;
                }
            };
            let claimed_count = claimed.len() as u64;
            metrics::counter!(telemetry::FLEET_CLAIMED).increment(claimed_count);
            if claimed.is_empty() {
                // The sheet's problems, when nothing else reports them.
                if let Some(input) = first.take() {
                    let changed = fleet.known().reported.as_deref() != Some(digest.as_str());
                    if changed {
                        fleet.known().reported = Some(digest.clone());
                        report(self.check_on(input, progress()).await);
                    }
                }
                break;
            }
            // Routes this daemon does not know yet: the sheet or the API
            // changed since it read them. Read them again, once a tick.
            if !reloaded && claimed.iter().any(|id| !routes.by_id.contains_key(id)) {
                reloaded = true;
                if let Ok(fresh) = self.tick_input(fleet, &dead).await {
                    routes = fresh.routes;
                }
            }
            // Routes still unknown are gone from the sheet: completed
            // unchecked below, and forgotten by the next sync.
            let (batch_routes, priced) = routes.batch(&claimed);
            let batch = match first.take() {
                Some(mut input) => {
                    fleet.known().reported = Some(digest.clone());
                    input.sheet.routes = batch_routes;
                    input.priced = priced;
                    input
                }
                None => CheckInput {
                    sheet: Sheet {
                        routes: batch_routes,
                        errors: Vec::new(),
                        warnings: Vec::new(),
                    },
                    priced,
                    api_flights: Vec::new(),
                },
            };
            let result = self
                .renewing(fleet, &token, self.check_on(batch, progress()))
                .await;
            let done = Timestamp::now();
            // A route whose alert is not settled (the database or the
            // channel failed it), or a batch that could not run, is due
            // again at the next tick: an interval later would miss the drop.
            let (finished, unsettled) = split_unsettled(claimed, &result);
            for (ids, next) in [
                (finished, later(done, fleet.interval)),
                (unsettled, later(done, fleet.tick())),
            ] {
                if ids.is_empty() {
                    continue;
                }
                match store
                    .complete_due(fleet.holder(), &token, &ids, next, done)
                    .await
                {
                    Ok(n) => {
                        checked += n;
                        metrics::counter!(telemetry::FLEET_DONE).increment(n);
                    }
                    Err(error) => tracing::warn!(%error, "cannot complete claimed routes"),
                }
            }
            self.beat(fleet, claimed_count).await;
            report(result);
        }
        self.beat(fleet, 0).await;
        // Alerts whose send this run could not settle (the database went
        // away after the channel took them) are settled now, not when
        // their routes are next due.
        if let Err(error) = self.engine.settle_pending().await {
            tracing::warn!(%error, "cannot settle pending alerts");
        }
        self.record_fleet().await;
        checked
    }

    /// The fleet's state as this daemon sees it, for `/metrics`.
    async fn record_fleet(&self) {
        let now = Timestamp::now();
        if let Ok(due) = self.store().due_summary(now).await {
            for (state, n) in [
                ("known", due.routes),
                ("due", due.due),
                ("held", due.leased),
            ] {
                metrics::gauge!(telemetry::FLEET_ROUTES, "state" => state).set(n as f64);
            }
        }
        if let Ok(nodes) = self.store().fleet_nodes(now).await {
            let live = nodes
                .iter()
                .filter(|n| (now - n.seen_at).get_seconds() <= LIVE_WITHIN.as_secs() as i64)
                .count();
            metrics::gauge!(telemetry::FLEET_NODES).set(live as f64);
        }
    }

    /// Runs `work` while renewing the claim `token` every third of the
    /// lease, so a long batch is not taken from a live daemon.
    async fn renewing<T>(
        &self,
        fleet: &FleetOptions,
        token: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = fleet.lease / 3;
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = renew.tick() => {
                    let until = later(Timestamp::now(), fleet.lease);
                    match self.store().extend_due(token, until).await {
                        Ok(0) => tracing::warn!(
                            "this daemon's claim was taken over (its lease ran out): \
                             the alerts are still sent once (the outbox)"
                        ),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "cannot renew this daemon's claim"),
                    }
                    self.beat(fleet, 0).await;
                }
            }
        }
    }

    /// This daemon's heartbeat, with `routes` claimed and done since the
    /// last; a failure is logged, and the next beat tries again with them.
    async fn beat(&self, fleet: &FleetOptions, routes: u64) {
        let routes = routes + std::mem::take(&mut fleet.known().unrecorded);
        let beat = self
            .store()
            .beat(fleet.holder(), "daemon", routes, routes, Timestamp::now())
            .await;
        if let Err(error) = beat {
            // Counted by the next beat instead: the fleet's totals stay whole.
            fleet.known().unrecorded += routes;
            tracing::warn!(%error, "cannot record this daemon's heartbeat");
        }
    }

    /// The fleet's daemons of this machine whose process is gone.
    async fn dead_daemons(&self) -> Vec<String> {
        let holders: Vec<String> = match self.store().fleet_nodes(Timestamp::now()).await {
            Ok(nodes) => nodes.into_iter().map(|n| n.holder).collect(),
            Err(_) => return Vec::new(),
        };
        crate::store::known_dead(&holders)
    }

    /// The tick's routes: the sheet (read for the fleet by the `sheet`
    /// lease holder, from the fleet's copy by the others) and the API's.
    async fn tick_input(
        &self,
        fleet: &FleetOptions,
        dead: &[String],
    ) -> Result<TickInput, ConfigError> {
        let (sheet, syncing) = self.fleet_sheet(fleet, dead).await?;
        let mut input = self.check_input_with(sheet).await?;
        let routes = TickRoutes::take(&mut input);
        let mut ids = routes.ids();
        ids.sort_unstable();
        let problems = format!("{:?}{:?}", input.sheet.errors, input.sheet.warnings);
        let digest = sheet_digest(format!("{ids:?}{problems}").as_bytes());
        Ok(TickInput {
            input,
            routes,
            digest,
            syncing,
        })
    }

    /// The sheet for this tick, and whether this daemon read it for the fleet.
    async fn fleet_sheet(
        &self,
        fleet: &FleetOptions,
        dead: &[String],
    ) -> Result<(Sheet, bool), ConfigError> {
        let SheetSource::Location { location, shown } = &self.sheet else {
            return Ok((self.load_sheet().await?, false));
        };
        let store = self.store();
        let now = Timestamp::now();
        let until = later(now, fleet.sheet_lease());
        let syncing = store
            .take_lease(SHEET_LEASE, fleet.holder(), dead, now, until)
            .await?;
        metrics::gauge!(telemetry::FLEET_SHEET_READER).set(if syncing { 1.0 } else { 0.0 });
        if syncing {
            match crate::sheet::read_source(location, &self.client).await {
                Ok(body) => {
                    if store.save_sheet(shown, &body, fleet.holder(), now).await? {
                        tracing::info!(sheet = %shown, "read the sheet for the fleet: it changed");
                    }
                    let sheet = self.sheet_from(shown, &body)?;
                    fleet.known().sheet = Some((sheet_digest(&body), shown.clone(), body.into()));
                    return Ok((sheet, true));
                }
                Err(error) => {
                    let error = ConfigError::from(error);
                    match self.stored_copy(fleet).await? {
                        Some(sheet) => {
                            tracing::warn!(
                                %error,
                                "cannot read the sheet: the fleet checks its last copy meanwhile"
                            );
                            return Ok((sheet, true));
                        }
                        None => return Err(error),
                    }
                }
            }
        }
        match self.stored_copy(fleet).await? {
            Some(sheet) => Ok((sheet, false)),
            // No daemon has stored it yet: read it here.
            None => Ok((self.load_sheet().await?, false)),
        }
    }

    /// The fleet's copy of the sheet (read from the store when it changed).
    async fn stored_copy(&self, fleet: &FleetOptions) -> Result<Option<Sheet>, ConfigError> {
        let Some(digest) = self.store().sheet_digest().await? else {
            return Ok(None);
        };
        let cached = fleet.known().sheet.clone();
        let (source, body) = match cached {
            Some((known, source, body)) if known == digest => (source, body),
            _ => {
                let Some(stored) = self.store().stored_sheet().await? else {
                    return Ok(None);
                };
                let body: Arc<[u8]> = stored.body.into();
                fleet.known().sheet = Some((stored.digest, stored.source.clone(), body.clone()));
                (stored.source, body)
            }
        };
        Ok(Some(self.sheet_from(&source, &body)?))
    }

    /// Registers the tick's routes when they changed since this daemon last
    /// did; the `sheet` lease holder also forgets those gone.
    async fn register(
        &self,
        fleet: &FleetOptions,
        ids: &[String],
        digest: &str,
        syncing: bool,
    ) -> Result<(), crate::store::StoreError> {
        let this = (digest.to_owned(), syncing);
        if fleet.known().registered.as_ref() == Some(&this) {
            return Ok(());
        }
        let now = Timestamp::now();
        let added = self.store().register_due(ids, now).await?;
        let removed = if syncing {
            self.store().prune_due(ids, now).await?
        } else {
            0
        };
        tracing::debug!(
            routes = ids.len(),
            added,
            removed,
            "registered the fleet's routes"
        );
        fleet.known().registered = Some(this);
        Ok(())
    }
}

/// `by` after `from`, saturating.
fn later(from: Timestamp, by: Duration) -> Timestamp {
    let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
    from.checked_add(by).unwrap_or(Timestamp::MAX)
}

/// A tick's routes, each batch cut out of them by id.
struct TickRoutes {
    routes: Vec<Route>,
    /// Index in `routes` of each active route, by id.
    by_id: HashMap<String, usize>,
    /// API watch id of each API fare watch, by index in `routes`.
    priced: HashMap<usize, i64>,
}

impl TickRoutes {
    /// Takes the routes out of `input` (its problems and flights stay).
    fn take(input: &mut CheckInput) -> Self {
        let routes = std::mem::take(&mut input.sheet.routes);
        let priced = std::mem::take(&mut input.priced).into_iter().collect();
        let by_id = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active)
            .map(|(index, r)| (r.id(), index))
            .collect();
        Self {
            routes,
            by_id,
            priced,
        }
    }

    fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }

    /// The routes of `claimed` this daemon knows, and (index among them,
    /// API watch id) of the API fare watches.
    fn batch(&self, claimed: &[String]) -> (Vec<Route>, Vec<(usize, i64)>) {
        let mut routes = Vec::with_capacity(claimed.len());
        let mut priced = Vec::new();
        for index in claimed.iter().filter_map(|id| self.by_id.get(id)) {
            if let Some(&watch) = self.priced.get(index) {
                priced.push((routes.len(), watch));
            }
            routes.push(self.routes[*index].clone());
        }
        (routes, priced)
    }
}
