//! `farewatch daemon --metrics-addr`: the exposition the README documents,
//! from the first scrape on (issue 12).
//!
//! The daemon runs `--demo` (no keys, no network) in a temporary directory,
//! serves on a loopback port 0 and says where on stderr. To scrape while the
//! first cycle is still running, its routes sheet is a URL on a loopback
//! server of the test's that holds the answer until told to send it. Waits
//! are bounded reads of the child's output, never sleeps.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, watch};

/// Every documented family: name, `# TYPE`, and whether it is per provider
/// (such series appear with a provider's first lookup).
const FAMILIES: &[(&str, &str, bool)] = &[
    ("farewatch_cycle_duration_seconds", "histogram", false),
    ("farewatch_lookups_total", "counter", true),
    ("farewatch_provider_latency_seconds", "histogram", true),
    ("farewatch_breaker_state", "gauge", true),
    ("farewatch_cache_hits_total", "counter", false),
    ("farewatch_cache_misses_total", "counter", false),
    ("farewatch_alerts_sent_total", "counter", false),
    ("farewatch_alerts_failed_total", "counter", false),
    ("farewatch_alerts_elsewhere_total", "counter", false),
    ("farewatch_last_cycle_timestamp_seconds", "gauge", false),
    ("farewatch_fleet_routes_claimed_total", "counter", false),
    ("farewatch_fleet_routes_done_total", "counter", false),
    ("farewatch_fleet_nodes", "gauge", false),
    ("farewatch_fleet_sheet_reader", "gauge", false),
];

/// The README's buckets (upper bounds, as rendered).
const CYCLE_BUCKETS: &[&str] = &[
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300", "600", "+Inf",
];
const LATENCY_BUCKETS: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf",
];

/// The bound on every wait for the child.
const PATIENCE: Duration = Duration::from_secs(60);

const ANNOUNCED: &str = "serving /healthz and /metrics on ";

/// `farewatch daemon --demo` in `dir` (its HOME and data directory), with a
/// clean environment, one cycle an hour and a JSON report per cycle.
fn daemon(dir: &Path) -> Command {
    let mut cmd = Command::from(common::binary::offline(dir));
    cmd.args([
        "daemon",
        "--demo",
        "--interval",
        "1h",
        "--format",
        "json",
        "--no-progress",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

/// A running daemon that has announced its metrics address.
struct Running {
    child: Child,
    /// `http://IP:PORT`.
    base: String,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Everything it wrote on stderr so far, for failure messages.
    stderr: Arc<Mutex<String>>,
}

impl Running {
    async fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn farewatch");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = tokio::time::timeout(PATIENCE, lines.next_line())
                .await
                .expect("the daemon announces its metrics address")
                .expect("read stderr");
            let Some(line) = line else {
                panic!(
                    "the daemon stopped before serving metrics:\n{}",
                    stderr.lock().unwrap()
                );
            };
            stderr.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(url) = line.strip_prefix(ANNOUNCED) {
                break url.to_owned();
            }
        };
        // Keep reading stderr (printed alerts go there with --format json),
        // so the daemon never blocks on a full pipe.
        let kept = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            base,
            stdout,
            stderr,
        }
    }

    async fn get(&self, path: &str) -> (reqwest::StatusCode, String, String) {
        let response = farewatch::upstream::http::build_client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.stderr.lock().unwrap()));
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().await.unwrap())
    }

    async fn scrape(&self) -> Exposition {
        let (status, content_type, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Exposition::parse(body)
    }

    /// The report of the next cycle (one JSON object per line on stdout).
    async fn next_report(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("a cycle ends")
            .expect("read stdout")
            .unwrap_or_else(|| panic!("the daemon stopped:\n{}", self.stderr.lock().unwrap()));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("kill the daemon");
    }
}

/// A scrape: the text, and each family's `# HELP` and `# TYPE`.
struct Exposition {
    text: String,
    help: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: String) -> Self {
        let (mut help, mut types) = (BTreeMap::new(), BTreeMap::new());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, says) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(
                    help.insert(name.to_owned(), says.to_owned()).is_none(),
                    "two # HELP for {name}:\n{text}"
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "two # TYPE for {name}:\n{text}"
                );
            }
        }
        Self { text, help, types }
    }

    /// What `promtool check metrics` would lint: every family has both a
    /// non-empty `# HELP` and a `# TYPE`, and each is one the README lists.
    fn assert_described(&self) {
        let helped: Vec<_> = self.help.keys().collect();
        let typed: Vec<_> = self.types.keys().collect();
        assert_eq!(helped, typed, "# HELP and # TYPE differ:\n{}", self.text);
        for (name, says) in &self.help {
            assert!(!says.trim().is_empty(), "empty # HELP for {name}");
            assert!(
                FAMILIES.iter().any(|(documented, ..)| documented == name),
                "{name} is not documented:\n{}",
                self.text
            );
        }
        assert!(
            !self.text.contains("quantile="),
            "a summary:\n{}",
            self.text
        );
    }

    /// Asserts that `name` is there, described, with its documented type.
    fn assert_family(&self, name: &str) {
        let (_, kind, _) = FAMILIES.iter().find(|(n, ..)| *n == name).unwrap();
        assert!(
            self.help.contains_key(name),
            "no # HELP {name}:\n{}",
            self.text
        );
        assert_eq!(
            self.types.get(name).map(String::as_str),
            Some(*kind),
            "# TYPE {name}:\n{}",
            self.text
        );
    }

    /// The value of the sample `series` (name and labels as rendered).
    fn value(&self, series: &str) -> f64 {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series}:\n{}", self.text))
            .parse()
            .unwrap()
    }

    /// The `le` bounds of the histogram series `name{labels...}`, in order.
    fn buckets(&self, name: &str, labels: &str) -> Vec<&str> {
        let prefix = format!("{name}_bucket{{{labels}le=\"");
        self.text
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix)?.split_once('"'))
            .map(|(le, _)| le)
            .collect()
    }
}

/// A loopback server answering every request with `csv`, but only once
/// released; it reports each request as it arrives.
struct HeldSheet {
    url: String,
    asked: mpsc::UnboundedReceiver<()>,
    release: watch::Sender<bool>,
}

impl HeldSheet {
    async fn start(csv: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/routes.csv", listener.local_addr().unwrap());
        let (asked_tx, asked) = mpsc::unbounded_channel();
        let (release, released) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (asked, mut released, csv) = (asked_tx.clone(), released.clone(), csv.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = asked.send(());
                    if released.wait_for(|go| *go).await.is_err() {
                        return;
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{csv}",
                        csv.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            url,
            asked,
            release,
        }
    }
}

#[tokio::test]
async fn every_family_is_described_before_the_first_cycle_ends_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut sheet = HeldSheet::start(farewatch::app::demo::csv(jiff::Zoned::now().date())).await;
    let mut cmd = daemon(dir.path());
    cmd.args(["--routes", &sheet.url, "--metrics-addr", "127.0.0.1:0"]);
    let mut daemon = Running::start(cmd).await;

    // The first cycle has started (it asked for the sheet) and cannot end
    // before the sheet is sent.
    tokio::time::timeout(PATIENCE, sheet.asked.recv())
        .await
        .expect("the first cycle reads the sheet")
        .unwrap();
    let before = daemon.scrape().await;
    before.assert_described();
    for (name, kind, per_provider) in FAMILIES {
        if *per_provider {
            continue;
        }
        before.assert_family(name);
        let zero = match *kind {
            "histogram" => format!("{name}_count"),
            _ => (*name).to_owned(),
        };
        assert_eq!(before.value(&zero), 0.0, "{zero}:\n{}", before.text);
    }
    assert_eq!(
        before.buckets("farewatch_cycle_duration_seconds", ""),
        CYCLE_BUCKETS,
        "{}",
        before.text
    );
    assert_eq!(
        before.value("farewatch_cycle_duration_seconds_bucket{le=\"+Inf\"}"),
        0.0
    );
    assert_eq!(before.value("farewatch_cycle_duration_seconds_sum"), 0.0);

    sheet.release.send(true).unwrap();
    let report = daemon.next_report().await;
    assert!(report["summary"]["lookups"].as_u64() > Some(0), "{report}");
    let after = daemon.scrape().await;
    after.assert_described();
    for (name, ..) in FAMILIES {
        after.assert_family(name);
    }
    assert_eq!(after.value("farewatch_cycle_duration_seconds_count"), 1.0);
    assert_eq!(
        after.value("farewatch_cycle_duration_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    assert_eq!(
        after.buckets("farewatch_provider_latency_seconds", "provider=\"demo\","),
        LATENCY_BUCKETS,
        "{}",
        after.text
    );
    assert!(
        after.value("farewatch_provider_latency_seconds_count{provider=\"demo\"}") > 0.0,
        "{}",
        after.text
    );
    assert!(
        after.value("farewatch_lookups_total{provider=\"demo\",outcome=\"ok\"}") > 0.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.value("farewatch_breaker_state{provider=\"demo\"}"),
        0.0
    );
    assert!(after.value("farewatch_last_cycle_timestamp_seconds") > 0.0);
    let section = readme_section();
    for (name, says) in &after.help {
        assert!(
            section.contains(&format!("| {says} |")),
            "the README's # HELP for {name} is not `{says}`"
        );
    }
    daemon.stop().await;
}

/// The README's section on metrics.
fn readme_section() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    readme
        .split("\n## ")
        .find(|s| s.starts_with("Health and metrics"))
        .expect("a README section on metrics")
        .to_owned()
}

#[test]
fn the_readme_documents_every_family_and_the_buckets() {
    let section = readme_section();
    for (name, kind, _) in FAMILIES {
        let row = section
            .lines()
            .find(|line| line.starts_with('|') && line.contains(&format!("`{name}")))
            .unwrap_or_else(|| panic!("{name} is not in the README's metrics table"));
        assert!(row.contains(&format!("| {kind} |")), "{row}");
    }
    for bounds in [CYCLE_BUCKETS, LATENCY_BUCKETS] {
        let listed = bounds[..bounds.len() - 1].join(", ");
        assert!(
            section.contains(&listed),
            "buckets {listed} not in:\n{section}"
        );
    }
}

#[tokio::test]
async fn a_host_name_is_accepted_as_the_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = daemon(dir.path());
    cmd.args(["--metrics-addr", "localhost:0"]);
    let daemon = Running::start(cmd).await;
    let addr: std::net::SocketAddr = daemon
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    let (status, _, body) = daemon.get("/healthz").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ok\n"));
    let metrics = daemon.scrape().await;
    metrics.assert_described();
    metrics.assert_family("farewatch_cycle_duration_seconds");
    daemon.stop().await;
}

/// Runs `cmd` to its end (bounded), returning its status and stderr.
async fn finish(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let output = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("farewatch stops")
        .expect("spawn farewatch");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_address_without_a_port_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_flag = daemon(dir.path());
    by_flag.args(["--metrics-addr", "localhost"]);
    let mut by_env = daemon(dir.path());
    by_env.env("FAREWATCH_METRICS_ADDR", "localhost");
    for cmd in [by_flag, by_env] {
        let (status, stderr) = finish(cmd).await;
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains("--metrics-addr"), "{stderr}");
        assert!(stderr.contains("HOST:PORT"), "{stderr}");
        assert!(!stderr.contains(ANNOUNCED), "{stderr}");
    }
}

#[tokio::test]
async fn an_address_in_use_is_a_configuration_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = daemon(dir.path());
    cmd.args(["--metrics-addr", &addr]);
    let (status, stderr) = finish(cmd).await;
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("--metrics-addr {addr}: cannot listen")),
        "{stderr}"
    );
    drop(taken);
}
