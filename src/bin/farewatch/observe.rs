//! The daemon's `/healthz` and Prometheus `/metrics` (with `--metrics-addr`).
//!
//! Every metric the library records is listed once, in [`FAMILIES`] (name,
//! type, unit, `# HELP` text, labels, histogram buckets); the README's
//! metrics table says the same. All names are prefixed `farewatch_`:
//! - `cycle_duration_seconds` (histogram, buckets 0.05 s to 600 s): wall
//!   time of each cycle;
//! - `lookups_total{provider, outcome}` (counter): lookups per provider,
//!   `outcome` = `ok` or the failure kind (`timeout`, `rate_limited`, ...);
//! - `provider_latency_seconds{provider}` (histogram, buckets 5 ms to 30 s):
//!   per request;
//! - `breaker_state{provider}` (gauge): 0 closed, 1 half-open, 2 open;
//! - `cache_hits_total`, `cache_misses_total` (counters): quote cache;
//! - `alerts_sent_total`, `alerts_failed_total` (counters): messages;
//! - `alerts_elsewhere_total` (counter): messages another run on the same
//!   database sent or was sending (overlapping runs), not failures;
//! - `last_cycle_timestamp_seconds` (gauge): when the last cycle ended, 0
//!   until the first one has.
//!
//! When the recorder is installed every family is described (`# HELP`) and
//! every family without labels is registered at zero, so the first scrape,
//! before any cycle has ended, already has them (counters at 0, histograms
//! empty, the timestamp at 0). The per-provider families get their series
//! from the provider's first lookup: the recorder is installed after the
//! fare sources are built, so this module does not know them.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, ToSocketAddrs};

/// How often the exporter's histograms are compacted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The flag the address comes from, for messages.
const FLAG: &str = "--metrics-addr";

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
enum Kind {
    Counter,
    Gauge {
        /// The value before anything is recorded.
        initial: f64,
    },
    Histogram {
        buckets: &'static [f64],
    },
}

/// One metric family.
#[derive(Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    /// `None` for a unitless value.
    unit: Option<Unit>,
    help: &'static str,
    /// A family with labels has no series until its first value.
    labels: &'static [&'static str],
}

/// Every metric the library records (the names in `metrics::` calls).
const FAMILIES: &[Family] = &[
    Family {
        name: "farewatch_cycle_duration_seconds",
        kind: Kind::Histogram {
            buckets: CYCLE_BUCKETS,
        },
        unit: Some(Unit::Seconds),
        help: "Wall time of each fare cycle, in seconds.",
        labels: &[],
    },
    Family {
        name: "farewatch_lookups_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Fare lookups per provider; outcome is ok or the failure kind (timeout, rate_limited, upstream, circuit_open, budget_spent, ...).",
        labels: &["provider", "outcome"],
    },
    Family {
        name: "farewatch_provider_latency_seconds",
        kind: Kind::Histogram {
            buckets: LATENCY_BUCKETS,
        },
        unit: Some(Unit::Seconds),
        help: "Time each request to a fare provider took, in seconds.",
        labels: &["provider"],
    },
    Family {
        name: "farewatch_breaker_state",
        kind: Kind::Gauge { initial: 0.0 },
        unit: None,
        help: "Circuit breaker of each fare provider: 0 closed, 1 half-open, 2 open.",
        labels: &["provider"],
    },
    Family {
        name: "farewatch_cache_hits_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Lookups answered by the quote cache.",
        labels: &[],
    },
    Family {
        name: "farewatch_cache_misses_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Lookups the quote cache could not answer (sent to a provider).",
        labels: &[],
    },
    Family {
        name: "farewatch_alerts_sent_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages accepted by the SMS provider or channel.",
        labels: &[],
    },
    Family {
        name: "farewatch_alerts_failed_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages not accepted by the SMS provider or channel.",
        labels: &[],
    },
    Family {
        name: "farewatch_alerts_elsewhere_total",
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        help: "Alert messages another run on the same database sent or was sending (overlapping runs; not failures).",
        labels: &[],
    },
    Family {
        name: "farewatch_last_cycle_timestamp_seconds",
        kind: Kind::Gauge { initial: 0.0 },
        unit: Some(Unit::Seconds),
        help: "Unix time the last fare cycle ended, in seconds (0 until the first has).",
        labels: &[],
    },
];

/// The recorder: the two duration families as histograms (the exporter's
/// default would be summaries).
fn builder() -> Result<PrometheusBuilder, BuildError> {
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
fn describe_and_register() {
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

/// Parses `--metrics-addr`: `IP:PORT` as it is, or `HOST:PORT` (e.g.
/// `localhost:9100`) resolved to the address [`serve`] listens on, the
/// first IPv4 one if there is one (as Go's `net.Listen` does, so
/// `localhost` means 127.0.0.1 even where IPv6 is off). The flags are read
/// before the runtime starts, so this blocks on the system resolver.
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let expected = "expected HOST:PORT, e.g. 127.0.0.1:9100 or localhost:9100";
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(format!("no port; {expected}"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("`{port}` is not a port (0 to 65535); {expected}"));
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(format!("no host; {expected}"));
    }
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?;
    listen_order(resolved)
        .into_iter()
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// The addresses to try listening on, IPv4 first, otherwise in the
/// resolver's order.
fn listen_order(addrs: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = addrs.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
}

/// Resolves `addr` (tokio's `lookup_host`) and listens on the first of its
/// addresses that can be bound; errors name the flag.
async fn listen(addr: &(impl ToSocketAddrs + Display)) -> anyhow::Result<TcpListener> {
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{FLAG} {addr}: cannot resolve it: {e}"))?;
    let mut failure = None;
    for candidate in listen_order(resolved) {
        match TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(error) => failure = Some((candidate, error)),
        }
    }
    Err(match failure {
        Some((candidate, error)) if candidate.to_string() == addr.to_string() => {
            anyhow::anyhow!("{FLAG} {addr}: cannot listen there: {error}")
        }
        Some((candidate, error)) => {
            anyhow::anyhow!("{FLAG} {addr}: cannot listen on {candidate}: {error}")
        }
        None => anyhow::anyhow!("{FLAG} {addr}: resolves to no address"),
    })
}

/// Listens on `addr` (an address, or `HOST:PORT` resolved here), installs
/// the Prometheus recorder with every family described and the unlabelled
/// ones at zero, and serves `/healthz` and `/metrics` until `shutdown`.
/// Returns the bound address (useful with port 0).
pub async fn serve(
    addr: impl ToSocketAddrs + Display,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = listen(&addr).await?;
    let bound = listener.local_addr()?;
    let handle: PrometheusHandle = builder()
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    describe_and_register();
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
                async move { ([(CONTENT_TYPE, EXPOSITION)], handle.render()) }
            }),
        );
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

    #[test]
    fn addresses_and_host_names_are_accepted() {
        assert_eq!(
            parse_addr("127.0.0.1:9100"),
            Ok("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:9100"), Ok("[::1]:9100".parse().unwrap()));
        let local = parse_addr("localhost:9100").unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 9100);
    }

    #[test]
    fn malformed_addresses_say_what_is_expected() {
        for (value, says) in [
            ("localhost", "no port"),
            ("localhost:http", "`http` is not a port"),
            ("localhost:65536", "`65536` is not a port"),
            (":9100", "no host"),
        ] {
            let error = parse_addr(value).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
            assert!(error.contains("HOST:PORT"), "{value}: {error}");
        }
    }

    #[test]
    fn ipv4_addresses_are_tried_first() {
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(listen_order([v6, v4].into_iter()), vec![v4, v6]);
    }
}
