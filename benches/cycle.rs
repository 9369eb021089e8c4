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

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, Money, Recipient, E164};
use farewatch::engine::{Engine, EngineParts, NoProgress, NotifyLimits};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::failover::Failover;
use farewatch::fare::FarePool;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::{Store, StoreLocation};
use farewatch::upstream::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The same allocator as the `farewatch` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The simulated upstream latency of every fake response.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);

/// Name of the fake server's thread, whose CPU time is not farewatch's.
const FAKE_THREAD: &str = "bench-fake";

/// Starts the in-process fake on its own thread and single-threaded
/// runtime; returns its base URL.
fn start_fake() -> String {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(FAKE_THREAD.into())
        .spawn(move || serve_fake(url_tx))
        .unwrap();
    url_rx.recv().unwrap()
}

/// Serves keep-alive HTTP/1.1 on 127.0.0.1 for the life of the process;
/// sends its base URL first.
fn serve_fake(url_tx: std::sync::mpsc::Sender<String>) {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer and `pthread_self` this live thread.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    assert_eq!(rc, 0, "pthread_getcpuclockid failed");
    FAKE_CPU_CLOCK.set(clock).unwrap();
    let offers = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fares/amadeus-flight-offers-LHR-JFK.json"
    ))
    .unwrap();
    let token = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fares/amadeus-token.json"
    ))
    .unwrap();
    let respond = |body: &[u8], ct: &str| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        Arc::new(r)
    };
    let offers = respond(&offers, "application/vnd.amadeus+json");
    let token = respond(&token, "application/json");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    url_tx.send(format!("http://{addr}")).unwrap();
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let (offers, token) = (offers.clone(), token.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    let mut chunk = [0u8; 4096];
                    loop {
                        // Read one request: headers, then any Content-Length body.
                        let head_end = loop {
                            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break pos + 4;
                            }
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                        let body_len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < head_end + body_len {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let is_token = head.starts_with("post");
                        buf.drain(..head_end + body_len);
                        tokio::time::sleep(UPSTREAM_LATENCY).await;
                        let response = if is_token { &token } else { &offers };
                        if socket.write_all(response).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
}

fn routes(n: usize) -> Vec<Route> {
    let airports: Vec<Iata> = [
        "LHR", "LGW", "STN", "LTN", "LCY", "JFK", "EWR", "LGA", "BOS", "ORD",
    ]
    .iter()
    .map(|c| Iata::parse(c).unwrap())
    .collect();
    let first: jiff::civil::Date = "2027-01-01".parse().unwrap();
    (0..n)
        .map(|i| {
            let origin = airports[i % 5];
            let destination = airports[5 + (i / 5) % 5];
            let day = first
                .checked_add(jiff::Span::new().days((i / 25) as i64))
                .unwrap();
            Route {
                line: i + 2,
                label: None,
                origins: vec![origin],
                destinations: vec![destination],
                depart: DateRange::single(day),
                return_dates: None,
                adults: 1,
                // Below every fare: a cycle of pure lookups and decisions, no alerts.
                rule: Rule {
                    max_price: Money::from_minor(100, Currency::parse("GBP").unwrap()),
                    min_drop: MinDrop::Zero,
                    cooldown: None,
                },
                recipients: vec![Recipient::Phone(E164::from_trusted("+447911123456".into()))],
                active: true,
            }
        })
        .collect()
}

/// The fake thread's CPU clock, set once it starts.
static FAKE_CPU_CLOCK: std::sync::OnceLock<libc::clockid_t> = std::sync::OnceLock::new();

fn read_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock ids come from
    // the C library and stay valid while their thread (here: for ever) lives.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// farewatch's CPU time so far: the process's CPU clock (every thread,
/// nanoseconds) less the fake thread's. Two clock reads, so measuring a
/// 50-route cycle barely disturbs it.
fn farewatch_cpu() -> Duration {
    let fake = *FAKE_CPU_CLOCK.get().expect("the fake is running");
    read_clock(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(read_clock(fake))
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
    let base_url = start_fake();
    let client = farewatch::upstream::http::build_client();
    let amadeus = Arc::new(Amadeus::new(
        client,
        AmadeusConfig {
            base_url,
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
        let store = Store::open(&StoreLocation::Memory).unwrap();
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
        run(&runtime, engine(), routes(n));

        group.bench_function(format!("wall/{n}_routes"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (e, r) = (engine(), routes(n));
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
                    let (e, r) = (engine(), routes(n));
                    let start = farewatch_cpu();
                    let report = run(&runtime, e, r);
                    total += farewatch_cpu().saturating_sub(start);
                    assert_eq!(report.summary.lookup_errors, 0);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_cycle);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
