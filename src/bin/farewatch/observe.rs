//! The daemon's `/healthz` and Prometheus `/metrics` (with `--metrics-addr`).
//!
//! Metric names (all prefixed `farewatch_`):
//! - `cycle_duration_seconds` (histogram): wall time of each cycle;
//! - `lookups_total{provider, outcome}` (counter): lookups per provider,
//!   `outcome` = `ok` or the failure kind (`timeout`, `rate_limited`, ...);
//! - `provider_latency_seconds{provider}` (histogram): per request;
//! - `breaker_state{provider}` (gauge): 0 closed, 1 half-open, 2 open;
//! - `cache_hits_total`, `cache_misses_total` (counters): quote cache;
//! - `alerts_sent_total`, `alerts_failed_total` (counters): messages;
//! - `alerts_elsewhere_total` (counter): messages another run on the same
//!   database sent or was sending (overlapping runs), not failures;
//! - `last_cycle_timestamp_seconds` (gauge): when the last cycle ended.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the exporter's histograms are compacted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder and serves `/healthz` and `/metrics` on
/// `addr` until `shutdown`. Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let handle: PrometheusHandle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { handle.render() }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("metrics server stopped: {error}");
        }
    });
    Ok(bound)
}
