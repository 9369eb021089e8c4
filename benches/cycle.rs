//! A full cycle of 1,000 routes against a local HTTP fake that serves the
//! ~11 KB Amadeus LHR-JFK offers body after a fixed upstream latency.
//!
//! The fake runs in this process on its own thread and single-threaded
//! runtime; the CPU figure leaves that thread out, so it is farewatch's alone.
//! `cargo bench --bench cycle` reports two figures:
//! - `wall`: the cycle's wall time; with routes <= the concurrency limit it
//!   should be close to one upstream latency ([`UPSTREAM_LATENCY`]).
//! - `cpu`: farewatch's CPU time for the cycle (the process's CPU clock less
//!   the fake thread's); divide by the number of lookups for CPU per lookup.
//!
//! The runtime is the binary's single-threaded one; `BENCH_RUNTIME=multi_thread`
//! measures tokio's multi-threaded runtime instead, for comparison.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_clock, routes, Behaviour, Fake};
use criterion::{criterion_group, Criterion};
use farewatch::cache::QuoteCache;
use farewatch::engine::{Engine, EngineParts, NoProgress, NotifyLimits};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::failover::Failover;
use farewatch::fare::FarePool;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::route::Route;
use farewatch::store::Store;
use farewatch::upstream::Limits;

/// The same allocator as the `farewatch` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The simulated upstream latency of every fake response.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);

/// farewatch's CPU time so far: the process's CPU clock (every thread,
/// nanoseconds) less the fake thread's. Two clock reads, so measuring a
/// 50-route cycle barely disturbs it.
fn farewatch_cpu(fake: &Fake) -> Duration {
    read_clock(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(fake.cpu_time())
}

/// The binary's single-threaded runtime, or with `BENCH_RUNTIME=multi_thread`
/// tokio's default multi-threaded one, for comparison.
fn runtime() -> tokio::runtime::Runtime {
    let mut builder = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("multi_thread") => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build().unwrap()
}

/// Runs a cycle as a spawned task, as the binary does.
fn run(
    runtime: &tokio::runtime::Runtime,
    engine: Arc<Engine>,
    routes: Vec<Route>,
) -> farewatch::engine::CycleReport {
    runtime
        .block_on(
            runtime.spawn(async move { engine.run_cycle(routes, Arc::new(NoProgress)).await }),
        )
        .unwrap()
        .unwrap()
}

fn bench_cycle(c: &mut Criterion) {
    let runtime = runtime();
    let fake = Fake::start(Behaviour::Healthy, UPSTREAM_LATENCY);
    let client = farewatch::upstream::http::build_client();
    let amadeus = Arc::new(Amadeus::new(
        client,
        AmadeusConfig {
            base_url: fake.url(),
            client_id: "bench".into(),
            client_secret: "bench".to_owned().into(),
            timeout: Duration::from_secs(30),
        },
        None,
    ));
    let mut group = c.benchmark_group("cycle");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    // 50 routes under the default concurrency limit (the target:
    // wall time within 10% of one upstream latency), and 1,000 routes with
    // the limit raised to match.
    for n in [50, 1000] {
        let pool = Arc::new(FarePool::new(
            amadeus.clone(),
            Limits {
                max_concurrency: n,
                rate_per_sec: 0.0,
                timeout: Duration::from_secs(30),
            },
        ));
        let store = Store::memory().unwrap();
        let engine = || {
            Arc::new(Engine::new(EngineParts {
                fares: Arc::new(Failover::single(pool.clone())),
                // A fresh cache every cycle, so every lookup goes upstream.
                cache: QuoteCache::memory(Duration::from_secs(300)),
                notifier: Arc::new(ConsoleNotifier::new(ConsoleTarget::Stderr)),
                notify_limits: NotifyLimits {
                    max_concurrency: 10,
                    rate_per_sec: 0.0,
                    timeout: Duration::from_secs(10),
                    settle_delay: farewatch::engine::DEFAULT_SETTLE_DELAY,
                    settle_bound: farewatch::engine::DEFAULT_SETTLE_BOUND,
                },
                store: store.clone(),
                dry_run: false,
            }))
        };
        // Warm the connection pool (and the token) once.
        run(&runtime, engine(), routes(n, no_alerts));

        group.bench_function(format!("wall/{n}_routes"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (e, r) = (engine(), routes(n, no_alerts));
                    let start = Instant::now();
                    let report = run(&runtime, e, r);
                    total += start.elapsed();
                    assert_eq!(report.summary.lookups as usize, n);
                }
                total
            })
        });
        group.bench_function(format!("cpu/{n}_routes"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (e, r) = (engine(), routes(n, no_alerts));
                    let start = farewatch_cpu(&fake);
                    let report = run(&runtime, e, r);
                    total += farewatch_cpu(&fake).saturating_sub(start);
                    assert_eq!(report.summary.lookup_errors, 0);
                }
                total
            })
        });
    }
    group.finish();
}

/// Every route's maximum is below every fare: a cycle of pure lookups and
/// decisions, no alerts.
fn no_alerts(_: usize) -> bool {
    false
}

criterion_group!(benches, bench_cycle);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
