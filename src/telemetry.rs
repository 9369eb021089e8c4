//! The metrics farewatch records, in one place: every family's name, type,
//! unit, `# HELP` text, labels and histogram buckets ([`FAMILIES`]); the
//! library's `metrics::` calls use the names below, and the README's
//! metrics table says the same. [`install`] sets up the Prometheus recorder
//! with every family described and the unlabelled ones at zero, so the
//! first scrape, before any cycle has ended, already has them (counters at
//! 0, histograms empty, the timestamp at 0). The per-provider families get
//! their series from each provider's first lookup.
//!
//! [`router`] serves `/healthz` and `/metrics` for any command that listens
//! (the daemon's `--metrics-addr` now, the HTTP API later).

use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// `farewatch_cycle_duration_seconds`.
pub const CYCLE_DURATION: &str = "farewatch_cycle_duration_seconds";
/// `farewatch_lookups_total`.
pub const LOOKUPS: &str = "farewatch_lookups_total";
/// `farewatch_provider_latency_seconds`.
pub const PROVIDER_LATENCY: &str = "farewatch_provider_latency_seconds";
/// `farewatch_breaker_state`.
pub const BREAKER_STATE: &str = "farewatch_breaker_state";
/// `farewatch_cache_hits_total`.
pub const CACHE_HITS: &str = "farewatch_cache_hits_total";
/// `farewatch_cache_misses_total`.
pub const CACHE_MISSES: &str = "farewatch_cache_misses_total";
/// `farewatch_alerts_sent_total`.
pub const ALERTS_SENT: &str = "farewatch_alerts_sent_total";
/// `farewatch_alerts_failed_total`.
pub const ALERTS_FAILED: &str = "farewatch_alerts_failed_total";
/// `farewatch_alerts_elsewhere_total`.
pub const ALERTS_ELSEWHERE: &str = "farewatch_alerts_elsewhere_total";
/// `farewatch_last_cycle_timestamp_seconds`.
pub const LAST_CYCLE_TIMESTAMP: &str = "farewatch_last_cycle_timestamp_seconds";
/// `farewatch_fleet_fallbacks_total`.
pub const FLEET_FALLBACKS: &str = "farewatch_fleet_fallbacks_total";
/// `farewatch_fleet_degraded`.
pub const FLEET_DEGRADED: &str = "farewatch_fleet_degraded";
/// `farewatch_fleet_turns_total`.
pub const FLEET_TURNS: &str = "farewatch_fleet_turns_total";
/// `farewatch_fleet_limiter_nodes`.
pub const FLEET_LIMITER_NODES: &str = "farewatch_fleet_limiter_nodes";
/// `farewatch_fleet_routes_claimed_total`.
pub const FLEET_CLAIMED: &str = "farewatch_fleet_routes_claimed_total";
/// `farewatch_fleet_routes_done_total`.
pub const FLEET_DONE: &str = "farewatch_fleet_routes_done_total";
/// `farewatch_fleet_routes`.
pub const FLEET_ROUTES: &str = "farewatch_fleet_routes";
/// `farewatch_fleet_nodes`.
pub const FLEET_NODES: &str = "farewatch_fleet_nodes";
/// `farewatch_fleet_sheet_reader`.
pub const FLEET_SHEET_READER: &str = "farewatch_fleet_sheet_reader";

/// How often the exporter's histograms are compacted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Prometheus' text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the cycle duration buckets: a cached cycle
/// takes well under a second, thousands of routes several minutes.
const CYCLE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Upper bounds (seconds) of the provider latency buckets: from a cached
/// proxy's few milliseconds to the slowest configured timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How a family is exported.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A counter.
    Counter,
    /// A gauge.
    Gauge {
        /// The value before anything is recorded.
        initial: f64,
    },
    /// A histogram.
    Histogram {
        /// Bucket upper bounds, in the family's unit.
        buckets: &'static [f64],
    },
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    /// The metric's name.
    pub name: &'static str,
    /// How it is exported.
    pub kind: Kind,
    /// `None` for a unitless value.
    pub unit: Option<Unit>,
    /// The `# HELP` text.
    pub help: &'static str,
    /// A family with labels has no series until its first value.
    pub labels: &'static [&'static str],
}

/// Every metric the library records (the names in `metrics::` calls).
pub const FAMILIES: &[Family] = &[
    Family {
        name: CYCLE_DURATION,
        kind: Kind::Histogram {
            buckets: CYCLE_BUCKETS,
        },
        unit: Some(Unit::Seconds),
        help: "Wall time of each fare cycle, in seconds.",
        labels: &[],
    },
    Family {
        name: LOOKUPS,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Fare lookups per provider; outcome is ok or the failure kind (timeout, rate_limited, upstream, circuit_open, budget_spent, ...).",
        labels: &["provider", "outcome"],
    },
    Family {
        name: PROVIDER_LATENCY,
        kind: Kind::Histogram {
            buckets: LATENCY_BUCKETS,
        },
        unit: Some(Unit::Seconds),
        help: "Time each request to a fare provider took, in seconds.",
        labels: &["provider"],
    },
    Family {
        name: BREAKER_STATE,
        kind: Kind::Gauge { initial: 0.0 },
        unit: None,
        help: "Circuit breaker of each fare provider: 0 closed, 1 half-open, 2 open.",
        labels: &["provider"],
    },
    Family {
        name: CACHE_HITS,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Lookups answered by the quote cache.",
        labels: &[],
    },
    Family {
        name: CACHE_MISSES,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Lookups the quote cache could not answer (sent to a provider).",
        labels: &[],
    },
    Family {
        name: ALERTS_SENT,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages accepted by the SMS provider or channel.",
        labels: &[],
    },
    Family {
        name: ALERTS_FAILED,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages not accepted by the SMS provider or channel.",
        labels: &[],
    },
    Family {
        name: ALERTS_ELSEWHERE,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages another run on the same database sent or was sending (overlapping runs; not failures).",
        labels: &[],
    },
    Family {
        name: LAST_CYCLE_TIMESTAMP,
        kind: Kind::Gauge { initial: 0.0 },
        unit: Some(Unit::Seconds),
        help: "Unix time the last fare cycle ended, in seconds (0 until the first has).",
        labels: &[],
    },
    Family {
        name: FLEET_FALLBACKS,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Times a provider's fleet-wide limiter lost Redis and fell back to this process's share of the limit.",
        labels: &["provider"],
    },
    Family {
        name: FLEET_DEGRADED,
        kind: Kind::Gauge { initial: 0.0 },
        unit: None,
        help: "Fleet-wide limiter of each provider: 1 while Redis does not answer and this process's share is in force, 0 on the shared limit.",
        labels: &["provider"],
    },
    Family {
        name: FLEET_TURNS,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Turns this process took from a provider's fleet-wide limiter; outcome is granted or refused.",
        labels: &["provider", "outcome"],
    },
    Family {
        name: FLEET_LIMITER_NODES,
        kind: Kind::Gauge { initial: 0.0 },
        unit: Some(Unit::Count),
        help: "Processes a provider's fleet-wide limiter saw in the last hour, as of Redis's last answer.",
        labels: &["provider"],
    },
    Family {
        name: FLEET_CLAIMED,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Routes this fleet daemon claimed.",
        labels: &[],
    },
    Family {
        name: FLEET_DONE,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Routes this fleet daemon checked and completed under its claim.",
        labels: &[],
    },
    Family {
        name: FLEET_ROUTES,
        kind: Kind::Gauge { initial: 0.0 },
        unit: Some(Unit::Count),
        help: "The fleet's routes at this daemon's last tick; state is known, due (now, held by none) or held (under a live claim).",
        labels: &["state"],
    },
    Family {
        name: FLEET_NODES,
        kind: Kind::Gauge { initial: 0.0 },
        unit: Some(Unit::Count),
        help: "Fleet daemons with a heartbeat in the last 15 minutes, at this daemon's last tick.",
        labels: &[],
    },
    Family {
        name: FLEET_SHEET_READER,
        kind: Kind::Gauge { initial: 0.0 },
        unit: None,
        help: "1 while this fleet daemon holds the sheet lease (reads the sheet for the fleet), else 0.",
        labels: &[],
    },
];

/// The recorder: the two duration families as histograms (the exporter's
/// default would be summaries).
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    FAMILIES
        .iter()
        .try_fold(PrometheusBuilder::new(), |builder, family| {
            match family.kind {
                Kind::Histogram { buckets } => {
                    builder.set_buckets_for_metric(Matcher::Full(family.name.to_owned()), buckets)
                }
                Kind::Counter | Kind::Gauge { .. } => Ok(builder),
            }
        })
}

/// Describes every family (`# HELP`) and registers those without labels at
/// their initial value, on the current recorder.
pub fn describe_and_register() {
    for family in FAMILIES {
        let (name, unit, help) = (family.name, family.unit, family.help);
        metrics::with_recorder(|recorder| match family.kind {
            Kind::Counter => recorder.describe_counter(name.into(), unit, help.into()),
            Kind::Gauge { .. } => recorder.describe_gauge(name.into(), unit, help.into()),
            Kind::Histogram { .. } => recorder.describe_histogram(name.into(), unit, help.into()),
        });
        if !family.labels.is_empty() {
            continue;
        }
        match family.kind {
            Kind::Counter => metrics::counter!(name).increment(0),
            Kind::Gauge { initial } => metrics::gauge!(name).set(initial),
            // Registering is enough: an empty histogram, every bucket at 0.
            Kind::Histogram { .. } => drop(metrics::histogram!(name)),
        }
    }
}

/// Installs the Prometheus recorder for this process, describes every
/// family and registers the unlabelled ones, and keeps the histograms
/// compacted (a task on the current runtime).
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = builder()?.install_recorder()?;
    describe_and_register();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// `/healthz` (`ok`) and `/metrics` (the exposition of `handle`).
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { ([(CONTENT_TYPE, EXPOSITION)], handle.render()) }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a scrape shows right after installing, before anything is recorded.
    fn first_scrape() -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe_and_register);
        handle.render()
    }

    #[test]
    fn every_family_is_described_and_the_unlabelled_ones_start_at_zero() {
        let scrape = first_scrape();
        for family in FAMILIES {
            let name = family.name;
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge { .. } => "gauge",
                Kind::Histogram { .. } => "histogram",
            };
            if !family.labels.is_empty() {
                // Its series come with the first lookup.
                continue;
            }
            assert!(
                scrape.contains(&format!("# HELP {name} {}\n", family.help)),
                "{name}:\n{scrape}"
            );
            assert!(
                scrape.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}:\n{scrape}"
            );
            let zero = match family.kind {
                Kind::Histogram { .. } => format!("{name}_count 0\n"),
                _ => format!("{name} 0\n"),
            };
            assert!(scrape.contains(&zero), "{zero}:\n{scrape}");
        }
    }

    #[test]
    fn durations_are_histograms_with_the_documented_buckets() {
        let scrape = first_scrape();
        assert!(scrape.contains("farewatch_cycle_duration_seconds_bucket{le=\"0.05\"} 0\n"));
        assert!(scrape.contains("farewatch_cycle_duration_seconds_bucket{le=\"600\"} 0\n"));
        assert!(scrape.contains("farewatch_cycle_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(!scrape.contains("quantile"), "{scrape}");
        // The provider latency buckets, on a series recorded as the pool does.
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("farewatch_provider_latency_seconds", "provider" => "demo")
                .record(0.02);
        });
        let scrape = handle.render();
        for (le, count) in [("0.005", 0), ("0.01", 0), ("0.025", 1), ("30", 1)] {
            let line = format!(
                "farewatch_provider_latency_seconds_bucket{{provider=\"demo\",le=\"{le}\"}} {count}\n"
            );
            assert!(scrape.contains(&line), "{line}:\n{scrape}");
        }
    }
}
