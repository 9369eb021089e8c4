//! A full cycle of 1,000 routes against a local HTTP fake that serves the
//! ~11 KB Amadeus LHR-JFK offers body after a fixed upstream latency.
//!
//! The fake runs in a child process (this same binary, re-run with
//! `FAREWATCH_BENCH_FAKE=1`), so the CPU figure is farewatch's alone.
//! `cargo bench --bench cycle` reports two figures:
//! - `wall`: the cycle's wall time; with routes <= the concurrency limit it
//!   should be close to one upstream latency ([`UPSTREAM_LATENCY`]).
//! - `cpu`: this process's CPU time (all threads, from schedstat) for the
//!   cycle; divide by the number of lookups for CPU per lookup.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, Money, Recipient, E164};
use farewatch::engine::{Engine, EngineParts, NoProgress, NotifyLimits};
use farewatch::failover::Failover;
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::Limits;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::pool::ProviderPool;
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::{Store, StoreLocation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The same allocator as the `farewatch` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The simulated upstream latency of every fake response.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);

/// Starts the fake in a child process; returns its base URL. The child
/// exits when its stdin closes (when this process ends).
fn start_fake() -> (String, std::process::Child) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("FAREWATCH_BENCH_FAKE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (line.trim().to_owned(), child)
}

/// Serves keep-alive HTTP/1.1 on 127.0.0.1 until stdin closes; prints its base URL first.
fn serve_fake() {
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
    println!("http://{addr}");
    std::thread::spawn(|| {
        // Exit with the parent: its end of our stdin closes when it exits.
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        std::process::exit(0);
    });
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

/// CPU time of this process so far: the sum over its threads of the
/// nanosecond run time in `/proc/self/task/*/schedstat` (`/proc/self/stat`
/// counts in 10 ms ticks, too coarse for a 50-route cycle).
fn process_cpu() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Runs a cycle as a task on the runtime's workers, as the binary does.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (base_url, _fake) = start_fake();
    let client = farewatch::http::build_client();
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
        let pool = Arc::new(ProviderPool::new(
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
                    let start = process_cpu();
                    let report = run(&runtime, e, r);
                    total += process_cpu().saturating_sub(start);
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
    if std::env::var_os("FAREWATCH_BENCH_FAKE").is_some() {
        serve_fake();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
