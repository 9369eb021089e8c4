//! A full cycle of 1,000 routes against an in-process HTTP fake that serves
//! the ~11 KB Amadeus LHR-JFK offers body after a fixed upstream latency.
//!
//! `cargo bench --bench cycle` reports two figures per size:
//! - `wall`: the cycle's wall time; with routes <= the concurrency limit it
//!   should be close to one upstream latency ([`UPSTREAM_LATENCY`]).
//! - `cpu`: the process's CPU time (user + system, from /proc/self/stat) for
//!   the cycle; divide by the number of lookups for CPU per lookup. It
//!   includes the fake server's own (small) share, so it overstates ours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use farewatch::cache::QuoteCache;
use farewatch::domain::{Currency, DateRange, Iata, Money, E164};
use farewatch::engine::{Engine, EngineParts, NoProgress, NotifyLimits};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig};
use farewatch::fare::Limits;
use farewatch::notify::console::{ConsoleNotifier, ConsoleTarget};
use farewatch::pool::ProviderPool;
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use farewatch::store::{Store, StoreLocation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The simulated upstream latency of every fake response.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);

/// Starts a keep-alive HTTP/1.1 fake on its own runtime thread; returns its base URL.
fn start_fake() -> String {
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
    std::thread::spawn(move || {
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
    });
    format!("http://{addr}")
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
                recipients: vec![E164::from_trusted("+447911123456".into())],
                active: true,
            }
        })
        .collect()
}

/// User + system CPU time of this process.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // Linux reports in USER_HZ, 100 on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

fn bench_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base_url = start_fake();
    let client = farewatch::http::build_client();
    let amadeus = Amadeus::new(
        client,
        AmadeusConfig {
            base_url,
            client_id: "bench".into(),
            client_secret: "bench".to_owned().into(),
            timeout: Duration::from_secs(30),
        },
        None,
    );
    let n = 1000;
    let pool = Arc::new(ProviderPool::new(
        Arc::new(amadeus),
        Limits {
            max_concurrency: n,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(30),
        },
    ));
    let store = Store::open(&StoreLocation::Memory).unwrap();
    let engine = || {
        Arc::new(Engine::new(EngineParts {
            fares: pool.clone(),
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
    // Warm the connection pool and the token once.
    runtime
        .block_on(engine().run_cycle(routes(n), Arc::new(NoProgress)))
        .unwrap();

    let mut group = c.benchmark_group("cycle");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function(format!("wall/{n}_routes"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (e, r) = (engine(), routes(n));
                let start = Instant::now();
                let report = runtime
                    .block_on(e.run_cycle(r, Arc::new(NoProgress)))
                    .unwrap();
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
                let report = runtime
                    .block_on(e.run_cycle(r, Arc::new(NoProgress)))
                    .unwrap();
                total += process_cpu().saturating_sub(start);
                assert_eq!(report.summary.lookup_errors, 0);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_cycle);
criterion_main!(benches);
