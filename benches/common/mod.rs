//! What the benches share: an in-process Amadeus fake speaking HTTP/1.1
//! keep-alive on 127.0.0.1, and the routes a cycle looks up.
//!
//! Each [`Fake`] runs on its own thread and single-threaded runtime, so a
//! bench can leave its CPU time out ([`Fake::cpu_time`]) and the fake never
//! competes with farewatch's runtime for a turn. It serves the token
//! endpoint (every `POST`) with `fares/amadeus-token.json` and every search
//! (every other request) per its [`Behaviour`], each answer after the same
//! fixed latency. Bodies are the verbatim fixtures in `tests/fixtures/fares/`.

// Each bench uses a different part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use farewatch::domain::{Currency, DateRange, Iata, Money, Recipient, E164};
use farewatch::route::Route;
use farewatch::rules::{MinDrop, Rule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the fake answers to a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// `200` with the ~11 KB Amadeus LHR-JFK offers body.
    Healthy,
    /// A token bucket the client is not told about: `rate` tokens a second,
    /// at most `burst` saved up (full at the start). A search arriving when
    /// the bucket is empty is answered `429` with Amadeus's throttle body
    /// (code 38194, `amadeus-error-429.json`), after the same latency.
    TokenBucket {
        /// Tokens added per second.
        rate: f64,
        /// The bucket's size.
        burst: f64,
    },
    /// `500` with Amadeus's internal-error body (code 38189,
    /// `amadeus-error-500.json`) to every search.
    ServerError,
}

/// What the fake has seen, counted as requests arrive.
#[derive(Debug, Default)]
pub struct FakeStats {
    searches: AtomicU64,
    tokens: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// A running fake; stopped (its thread joined) when dropped.
pub struct Fake {
    url: String,
    stats: Arc<FakeStats>,
    cpu_clock: libc::clockid_t,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Name of the fake servers' threads, whose CPU time is not farewatch's.
pub const FAKE_THREAD: &str = "bench-fake";

impl Fake {
    /// Starts a fake answering searches per `behaviour`, every answer
    /// (tokens included) after `latency`.
    pub fn start(behaviour: Behaviour, latency: Duration) -> Self {
        let stats = Arc::new(FakeStats::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(FAKE_THREAD.into())
                .spawn(move || serve(behaviour, latency, stats, ready_tx, stopped))
                .unwrap()
        };
        let (url, cpu_clock) = ready_rx.recv().unwrap();
        Self {
            url,
            stats,
            cpu_clock,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Searches received (answered or not yet).
    pub fn searches(&self) -> u64 {
        self.stats.searches.load(Ordering::Relaxed)
    }

    /// Token requests received.
    pub fn tokens(&self) -> u64 {
        self.stats.tokens.load(Ordering::Relaxed)
    }

    /// Searches refused with `429`.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// Searches answered `500`.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// The CPU time the fake's thread has used so far.
    pub fn cpu_time(&self) -> Duration {
        read_clock(self.cpu_clock)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads a CPU clock (`CLOCK_PROCESS_CPUTIME_ID`, or a thread's).
pub fn read_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock ids come from
    // the C library, and a fake's stays valid while its `Fake` (which joins
    // the thread on drop) is alive.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The fake's own CPU clock.
fn this_thread_cpu_clock() -> libc::clockid_t {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer and `pthread_self` this live thread.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    assert_eq!(rc, 0, "pthread_getcpuclockid failed");
    clock
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/fares/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A whole response, built once.
fn response(status: &str, content_type: &str, body: &[u8]) -> Arc<Vec<u8>> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    Arc::new(r)
}

/// A token bucket on the real clock.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The prebuilt answers and the state every connection shares.
struct Answers {
    offers: Arc<Vec<u8>>,
    token: Arc<Vec<u8>>,
    too_many: Arc<Vec<u8>>,
    internal: Arc<Vec<u8>>,
    behaviour: Behaviour,
    bucket: Option<Mutex<Bucket>>,
    stats: Arc<FakeStats>,
}

impl Answers {
    /// What to answer to a search arriving now; counts it.
    fn search(&self) -> &Arc<Vec<u8>> {
        self.stats.searches.fetch_add(1, Ordering::Relaxed);
        match self.behaviour {
            Behaviour::Healthy => &self.offers,
            Behaviour::TokenBucket { .. } => {
                let bucket = self.bucket.as_ref().expect("a bucket");
                if bucket.lock().unwrap().take() {
                    &self.offers
                } else {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    &self.too_many
                }
            }
            Behaviour::ServerError => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                &self.internal
            }
        }
    }
}

/// Serves keep-alive HTTP/1.1 on 127.0.0.1 until `stopped` fires; sends
/// its base URL and CPU clock first.
fn serve(
    behaviour: Behaviour,
    latency: Duration,
    stats: Arc<FakeStats>,
    ready: std::sync::mpsc::Sender<(String, libc::clockid_t)>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let amadeus_json = "application/vnd.amadeus+json";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answers = Arc::new(Answers {
        offers: response(
            "200 OK",
            amadeus_json,
            &fixture("amadeus-flight-offers-LHR-JFK.json"),
        ),
        token: response("200 OK", "application/json", &fixture("amadeus-token.json")),
        too_many: response(
            "429 Too Many Requests",
            amadeus_json,
            &fixture("amadeus-error-429.json"),
        ),
        internal: response(
            "500 Internal Server Error",
            amadeus_json,
            &fixture("amadeus-error-500.json"),
        ),
        behaviour,
        bucket: match behaviour {
            Behaviour::TokenBucket { rate, burst } => Some(Mutex::new(Bucket {
                rate,
                burst,
                // Full when the fake starts.
                tokens: burst,
                at: Instant::now(),
            })),
            _ => None,
        },
        stats,
    });
    ready
        .send((format!("http://{addr}"), this_thread_cpu_clock()))
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut stopped = stopped;
        loop {
            let socket = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => continue,
                },
            };
            tokio::spawn(connection(socket, answers.clone(), latency));
        }
    });
    // Dropping the runtime drops every connection still open.
}

/// One keep-alive connection: requests answered in order, each after `latency`.
async fn connection(mut socket: tokio::net::TcpStream, answers: Arc<Answers>, latency: Duration) {
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
        // Judged on arrival, as a provider's gateway does; answered later.
        let response = if is_token {
            answers.stats.tokens.fetch_add(1, Ordering::Relaxed);
            answers.token.clone()
        } else {
            answers.search().clone()
        };
        tokio::time::sleep(latency).await;
        if socket.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// `n` routes with distinct lookups (5 origins × 5 destinations × `n / 25`
/// days from 2027-01-01), each to its own phone. A route is due (its
/// maximum above the fake's £312.46, so it alerts) when `due(i)`; the
/// others' maximum (£1) is below every fare.
pub fn routes(n: usize, due: impl Fn(usize) -> bool) -> Vec<Route> {
    let airports: Vec<Iata> = [
        "LHR", "LGW", "STN", "LTN", "LCY", "JFK", "EWR", "LGA", "BOS", "ORD",
    ]
    .iter()
    .map(|c| Iata::parse(c).unwrap())
    .collect();
    let first: jiff::civil::Date = "2027-01-01".parse().unwrap();
    let gbp = Currency::parse("GBP").unwrap();
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
                rule: Rule {
                    max_price: Money::from_minor(if due(i) { 1000_00 } else { 100 }, gbp),
                    min_drop: MinDrop::Zero,
                    cooldown: None,
                },
                recipients: vec![Recipient::Phone(E164::from_trusted(format!(
                    "+4479111{i:05}"
                )))],
                active: true,
                namespace: None,
            }
        })
        .collect()
}
