//! A daemon's loops over an [`App`]: a fare check every interval (the
//! sheet re-read each time, with the API's watches), and with a watch list a
//! look at watched flights every minute (each watch's own schedule decides
//! whether it is polled). Both stop on the injected shutdown, giving a
//! running cycle [`DEFAULT_GRACE`] to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::fleet::FleetOptions;
use super::App;
use crate::config::ConfigError;
use crate::daemon::{DaemonExit, DEFAULT_GRACE};
use crate::engine::{CycleReport, NoProgress, Progress};
use crate::sheet::STDIN;

/// How often the daemon looks at watched flights.
pub const WATCH_TICK: Duration = Duration::from_secs(60);

/// How often a daemon compacts its price history.
pub const COMPACT_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Compacts the price history now and then every [`COMPACT_EVERY`]
/// (see [`crate::store::Store::compact_price_history`]).
async fn compact_daily(store: crate::store::Store) {
    let mut every = tokio::time::interval(COMPACT_EVERY);
    loop {
        every.tick().await;
        match store.compact_price_history(jiff::Timestamp::now()).await {
            Ok(removed) => tracing::debug!(removed, "price history compacted"),
            Err(error) => tracing::warn!(%error, "cannot compact the price history"),
        }
    }
}

/// Where a daemon's reports go (the binary prints them; a fleet worker
/// might log them).
pub trait DaemonOutput: Send + Sync + 'static {
    /// Progress for the fare check about to start.
    fn progress(&self) -> Arc<dyn Progress> {
        Arc::new(NoProgress)
    }
    /// A fare check ended: its report, or why it could not run (the sheet
    /// may be mid-edit: the next cycle tries again).
    fn fares(&self, app: &App, report: Result<CycleReport, ConfigError>);
    /// A look at watched flights ended.
    fn flights(&self, report: Result<CycleReport, ConfigError>);
}

/// Runs the loops until `shutdown()` resolves. Refuses a sheet on standard
/// input: it can be read once, and a daemon re-reads its sheets every cycle.
pub async fn run<S, F>(
    app: Arc<App>,
    interval: Duration,
    output: Arc<dyn DaemonOutput>,
    shutdown: S,
) -> Result<DaemonExit, ConfigError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    run_in(app, interval, None, output, shutdown).await
}

/// [`run`], as one daemon of a fleet when `fleet` is given: each cycle
/// checks only the due routes it claims ([`App::run_fleet_check`]).
pub async fn run_in<S, F>(
    app: Arc<App>,
    interval: Duration,
    fleet: Option<FleetOptions>,
    output: Arc<dyn DaemonOutput>,
    shutdown: S,
) -> Result<DaemonExit, ConfigError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let on_stdin = app.options.routes == STDIN || app.options.flights.as_deref() == Some(STDIN);
    if on_stdin {
        return Err(ConfigError::invalid(
            "--routes",
            "`-` (standard input) can be read once, and a daemon re-reads its sheets every \
             cycle; give a file or a URL",
        ));
    }
    tracing::info!(every = ?interval, "daemon started");
    // Price history is downsampled once a day (and at start).
    let compacting = {
        let store = app.store().clone();
        let stop = shutdown();
        tokio::spawn(async move {
            tokio::select! {
                () = compact_daily(store) => {}
                () = stop => {}
            }
        })
    };
    let watching = app.watches_flights().then(|| {
        let (app, output) = (app.clone(), output.clone());
        tokio::spawn(crate::daemon::run(
            WATCH_TICK,
            DEFAULT_GRACE,
            move || {
                let (app, output) = (app.clone(), output.clone());
                async move { output.flights(app.run_watch_cycle().await) }
            },
            shutdown(),
        ))
    });
    // A fleet daemon looks for due work every tick (routes are still
    // checked once per interval): a dead daemon's routes are taken soon.
    let period = fleet.as_ref().map_or(interval, FleetOptions::tick);
    let exit = crate::daemon::run(
        period,
        DEFAULT_GRACE,
        || {
            let (app, output, fleet) = (app.clone(), output.clone(), fleet.clone());
            async move {
                match &fleet {
                    None => {
                        let report = app.run_check(output.progress()).await;
                        output.fares(&app, report);
                    }
                    Some(fleet) => {
                        let checked = app
                            .run_fleet_check(
                                fleet,
                                || output.progress(),
                                |report| output.fares(&app, report),
                            )
                            .await;
                        tracing::info!(checked, holder = %fleet.holder(), "fleet cycle done");
                    }
                }
            }
        },
        shutdown(),
    )
    .await;
    if let Some(watching) = watching {
        let _ = watching.await;
    }
    compacting.abort();
    tracing::info!(?exit, "daemon stopped");
    Ok(exit)
}
