//! `deploy/` (issue 15, Deployment): `scripts/validate_deploy.sh` passes
//! with whatever tools this machine has (it skips the missing ones: docker
//! compose, systemd-analyze, hadolint), it fails on a real problem, and the
//! health checks compose runs in the container (`deploy/healthcheck.sh`)
//! pass against a real daemon's /healthz and serve's /ping.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `bash scripts/validate_deploy.sh [deploy_dir]`, checking command lines
/// against this build's binary.
fn validate(deploy_dir: Option<&Path>) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(root().join("scripts/validate_deploy.sh"))
        .env("FAREWATCH_BIN", env!("CARGO_BIN_EXE_farewatch"))
        .current_dir(root());
    if let Some(dir) = deploy_dir {
        command.arg(dir);
    }
    command
        .output()
        .expect("bash runs scripts/validate_deploy.sh")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A copy of deploy/ with `old` replaced by `new` in `file`.
fn broken_copy(file: &str, old: &str, new: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&root().join("deploy"), &dir.path().join("deploy"));
    let path = dir.path().join("deploy").join(file);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.contains(old), "{file} no longer contains {old:?}");
    std::fs::write(&path, content.replacen(old, new, 1)).unwrap();
    dir
}

fn python_has_yaml() -> bool {
    Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_deploy_folder_validates_with_the_tools_this_machine_has() {
    let output = validate(None);
    let report = text(&output);
    eprintln!("{report}");
    assert!(
        output.status.success(),
        "scripts/validate_deploy.sh failed:\n{report}"
    );
    assert!(report.contains("0 failed"), "{report}");
    // It says what it did with each tool, checked or skipped.
    for tool in ["python3", "systemd-analyze", "compose", "hadolint"] {
        assert!(
            report
                .lines()
                .any(|l| (l.starts_with("ok ") || l.starts_with("skip ")) && l.contains(tool)),
            "no line says what became of {tool}:\n{report}"
        );
    }
}

#[test]
fn a_unit_without_hardening_fails_validation() {
    let dir = broken_copy(
        "systemd/farewatch-serve.service",
        "NoNewPrivileges=yes\n",
        "",
    );
    let output = validate(Some(&dir.path().join("deploy")));
    let report = text(&output);
    assert!(
        !output.status.success(),
        "a unit without NoNewPrivileges passed:\n{report}"
    );
    assert!(report.contains("NoNewPrivileges"), "{report}");
}

#[test]
fn a_misspelt_unit_directive_fails_validation() {
    let dir = broken_copy(
        "systemd/farewatch-daemon.service",
        "ProtectHome=yes",
        "ProtectHomes=yes",
    );
    let output = validate(Some(&dir.path().join("deploy")));
    let report = text(&output);
    assert!(
        !output.status.success(),
        "a misspelt directive passed:\n{report}"
    );
    assert!(report.contains("ProtectHome"), "{report}");
}

#[test]
fn an_inline_secret_or_a_health_check_on_the_wrong_port_fails_validation() {
    if !python_has_yaml() {
        eprintln!("skipped: python3 with PyYAML is not installed, so compose.yaml is only checked by docker compose");
        return;
    }
    let dir = broken_copy(
        "compose.yaml",
        "    REDIS_URL: redis://redis:6379\n",
        "    REDIS_URL: redis://redis:6379\n    TWILIO_AUTH_TOKEN: 0123456789abcdef\n",
    );
    let output = validate(Some(&dir.path().join("deploy")));
    let report = text(&output);
    assert!(
        !output.status.success(),
        "an inline secret passed:\n{report}"
    );
    assert!(
        report.contains("TWILIO_AUTH_TOKEN: a secret is written inline"),
        "{report}"
    );

    let dir = broken_copy(
        "compose.yaml",
        r#"      test: ["CMD", "farewatch-healthcheck", "127.0.0.1:8080", "/ping", "pong"]"#,
        r#"      test: ["CMD", "farewatch-healthcheck", "127.0.0.1:9100", "/ping", "pong"]"#,
    );
    let output = validate(Some(&dir.path().join("deploy")));
    let report = text(&output);
    assert!(
        !output.status.success(),
        "a health check on the wrong port passed:\n{report}"
    );
    assert!(
        report.contains("the health check probes 127.0.0.1:9100 but --addr is 0.0.0.0:8080"),
        "{report}"
    );
}

#[test]
fn a_misspelt_flag_in_a_unit_fails_against_the_binary() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: no python3, command lines are not checked");
        return;
    }
    let dir = broken_copy(
        "systemd/farewatch-daemon@.service",
        "daemon --fleet --metrics-addr 127.0.0.1:%i",
        "daemon --fleet --metric-addr 127.0.0.1:%i",
    );
    let output = validate(Some(&dir.path().join("deploy")));
    let report = text(&output);
    assert!(
        !output.status.success(),
        "a misspelt flag passed:\n{report}"
    );
    assert!(
        report.contains("unexpected argument '--metric-addr'"),
        "{report}"
    );
}

/// A farewatch process whose stderr is read on a thread, line by line.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn start(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_farewatch"));
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for name in [
            "DATABASE_URL",
            "REDIS_URL",
            "FAREWATCH_METRICS_ADDR",
            "FAREWATCH_API_ADDR",
            "FAREWATCH_API_TOKEN",
            "FAREWATCH_ROUTES",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("farewatch starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the receiver is gone, so the child
                // never blocks on a full pipe.
                let _ = tx.send(line);
            }
        });
        Process { child, lines }
    }

    /// The HOST:PORT after `prefix` in the first stderr line that has it.
    fn address_after(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split(prefix).nth(1) {
                        return rest.split_whitespace().next().unwrap().to_string();
                    }
                    seen.push(line);
                }
                Err(_) => break,
            }
        }
        panic!(
            "no `{prefix}` on stderr within 60 s; saw:\n{}",
            seen.join("\n")
        );
    }

    /// SIGTERM, then the exit status (bounded).
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("farewatch did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn healthcheck(addr: &str, path: &str, expect: &str) -> Output {
    Command::new("bash")
        .arg(root().join("deploy/healthcheck.sh"))
        .args([addr, path, expect])
        .output()
        .expect("bash runs deploy/healthcheck.sh")
}

#[test]
fn the_compose_health_checks_pass_against_a_real_daemon_and_serve() {
    let dir = tempfile::tempdir().unwrap();

    let daemon = Process::start(
        &[
            "daemon",
            "--demo",
            "--interval",
            "1h",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        dir.path(),
        &[],
    );
    let metrics = daemon.address_after("serving /healthz and /metrics on http://");
    let db = dir.path().join("serve.db");
    let serve = Process::start(
        &["serve", "--addr", "127.0.0.1:0"],
        dir.path(),
        &[("DATABASE_URL", format!("sqlite://{}", db.display()))],
    );
    let api = serve.address_after("serving the API on http://");

    // Exactly the probes of deploy/compose.yaml, on the addresses bound here.
    let out = healthcheck(&metrics, "/healthz", "ok");
    assert!(out.status.success(), "daemon /healthz: {}", text(&out));
    let out = healthcheck(&api, "/ping", "pong");
    assert!(out.status.success(), "serve /ping: {}", text(&out));

    // And they fail when they should: a wrong path, a wrong body, nobody there.
    let out = healthcheck(&metrics, "/ping", "pong");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("404"), "{}", text(&out));
    let out = healthcheck(&api, "/ping", "ok");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    assert!(serve.stop().success(), "serve exits 0 on SIGTERM");
    assert!(daemon.stop().success(), "the daemon exits 0 on SIGTERM");
    let out = healthcheck(&api, "/ping", "pong");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stopped serve is unhealthy: {}",
        text(&out)
    );
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
}
