//! `farewatch daemon --fleet`: several daemons on one database share the
//! routes instead of each checking all of them (see [`crate::store::fleet`]).
//!
//! Each cycle, a daemon reads the sheet and the API's watches as usual,
//! then claims batches of [`FleetOptions::batch`] routes that are due and
//! held by no other daemon, checks each batch (lookups, decisions, outbox)
//! and completes it: the routes are next due one interval later. It stops
//! when nothing due is left, so daemons whose cycles overlap split the work
//! between them, and a route is looked up once per interval by the fleet.
//! Lookups two daemons share go through the quote cache and its single
//! flight (with Redis); an alert is sent once whatever happens (the outbox).
//!
//! A claim lasts one interval ([`FleetOptions::lease`]): a daemon killed
//! mid-cycle holds its batch until then, and the first cycle of any daemon
//! after that takes it. So a route is late by at most one interval plus a
//! cycle when a daemon dies. A daemon of the same machine whose process is
//! gone is known dead at once: the next cycle of any daemon there (or a
//! daemon started to replace it) takes its routes without waiting.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{App, CheckInput};
use crate::config::ConfigError;
use crate::engine::{CycleReport, Progress};

/// Routes claimed at once unless `FAREWATCH_FLEET_BATCH` says otherwise.
pub const DEFAULT_BATCH: u32 = 500;

/// How a daemon takes part in a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// This daemon's run: its name (`HOST/PID/START/RUN`) holds the claims.
    run: Arc<crate::store::RunId>,
    /// The daemon's interval: a checked route is next due this much later.
    pub interval: Duration,
    /// How long a claim lasts without completion (the interval).
    pub lease: Duration,
    /// Routes per claim.
    pub batch: u32,
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
            lease: interval,
            batch: batch.max(1),
        }
    }
}

impl App {
    /// One fleet cycle: claims, checks and completes batches of due routes
    /// until none is left; each batch's report goes to `report` as it ends.
    /// The sheet's problems are reported with the first batch (or alone,
    /// when nothing is due). Returns the routes this daemon checked.
    pub async fn run_fleet_check(
        &self,
        fleet: &FleetOptions,
        progress: impl Fn() -> Arc<dyn Progress>,
        report: impl Fn(Result<CycleReport, ConfigError>),
    ) -> u64 {
        let input = match self.check_input().await {
            Ok(input) => input,
            Err(error) => {
                report(Err(error));
                return 0;
            }
        };
        let ids: Vec<String> = input
            .sheet
            .routes
            .iter()
            .filter(|r| r.active)
            .map(|r| r.id())
            .collect();
        let store = self.store();
        let lease = SignedDuration::try_from(fleet.lease).unwrap_or(SignedDuration::MAX);
        let next_in = SignedDuration::try_from(fleet.interval).unwrap_or(SignedDuration::MAX);
        let mut first = Some(input);
        let mut all_routes = None;
        let mut checked = 0u64;
        // Seen before claiming, so a daemon that dies holding routes is
        // known (below) to the others.
        if let Err(error) = store
            .beat(fleet.holder(), "daemon", 0, 0, Timestamp::now())
            .await
        {
            tracing::warn!(%error, "cannot record this daemon's heartbeat");
        }
        // Daemons of this host whose process is gone: their claims are
        // taken at once rather than when their lease ends.
        let dead: Vec<String> = match store.fleet_nodes(Timestamp::now()).await {
            Ok(nodes) => {
                let holders: Vec<String> = nodes
                    .into_iter()
                    .filter(|n| n.holding > 0)
                    .map(|n| n.holder)
                    .collect();
                crate::store::known_dead(&holders)
            }
            Err(_) => Vec::new(),
        };
        loop {
            let now = Timestamp::now();
            let (token, claimed) = match store
                .claim_due(fleet.holder(), &ids, &dead, fleet.batch, now, lease)
                .await
            {
                Ok(claim) => claim,
                Err(error) => {
                    report(Err(error.into()));
                    break;
                }
            };
            if claimed.is_empty() && first.is_none() {
                break;
            }
            let base = match first.take() {
                Some(input) => {
                    all_routes = Some(input.sheet.routes.clone());
                    input
                }
                None => CheckInput {
                    sheet: crate::sheet::Sheet {
                        routes: all_routes.clone().unwrap_or_default(),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                    },
                    priced: self.priced_of(all_routes.as_deref().unwrap_or_default()),
                    api_flights: Vec::new(),
                },
            };
            let batch = only(base, &claimed);
            let result = self.check_on(batch, progress()).await;
            if !claimed.is_empty() {
                let done = Timestamp::now();
                let next = done.checked_add(next_in).unwrap_or(Timestamp::MAX);
                match store
                    .complete_due(fleet.holder(), &token, &claimed, next, done)
                    .await
                {
                    Ok(n) => checked += n,
                    Err(error) => tracing::warn!(%error, "cannot complete claimed routes"),
                }
                if let Err(error) = store
                    .beat(
                        fleet.holder(),
                        "daemon",
                        claimed.len() as u64,
                        claimed.len() as u64,
                        done,
                    )
                    .await
                {
                    tracing::warn!(%error, "cannot record this daemon's heartbeat");
                }
            }
            report(result);
            if claimed.is_empty() {
                break;
            }
        }
        if let Err(error) = store
            .beat(fleet.holder(), "daemon", 0, 0, Timestamp::now())
            .await
        {
            tracing::warn!(%error, "cannot record this daemon's heartbeat");
        }
        checked
    }

    /// (index, API watch id) of the API fare watches among `routes` (a
    /// watch's route is namespaced by its id).
    fn priced_of(&self, routes: &[crate::route::Route]) -> Vec<(usize, i64)> {
        routes
            .iter()
            .enumerate()
            .filter_map(|(index, r)| {
                let id = i64::try_from(r.namespace?.get()).ok()?;
                Some((index, id))
            })
            .collect()
    }
}

/// `input` reduced to the routes in `claimed` (API watch indexes kept in step).
fn only(mut input: CheckInput, claimed: &[String]) -> CheckInput {
    let keep: std::collections::HashSet<&str> = claimed.iter().map(String::as_str).collect();
    let mut index_map = vec![None; input.sheet.routes.len()];
    let mut kept = Vec::with_capacity(claimed.len());
    for (index, route) in std::mem::take(&mut input.sheet.routes)
        .into_iter()
        .enumerate()
    {
        if route.active && keep.contains(route.id().as_str()) {
            index_map[index] = Some(kept.len());
            kept.push(route);
        }
    }
    input.sheet.routes = kept;
    input.priced = input
        .priced
        .iter()
        .filter_map(|&(index, id)| index_map.get(index).copied().flatten().map(|i| (i, id)))
        .collect();
    input
}
