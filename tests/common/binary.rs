//! The real `farewatch` binary as a child process (`tokio::process`), with a
//! clean environment pointed at the fakes, and its finished run.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use super::{ACCOUNT_SID, AUTH_TOKEN, CLIENT_ID, CLIENT_SECRET};

/// `farewatch` with a clean environment (only `PATH`), run in `dir`, with a
/// state database in `dir`, Amadeus and Twilio at the given base URLs, and
/// no client-side pacing (the fakes need none).
pub fn farewatch(dir: &Path, amadeus: &str, twilio: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("farewatch"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("AMADEUS_CLIENT_ID", CLIENT_ID)
        .env("AMADEUS_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMADEUS_BASE_URL", amadeus)
        .env("AMADEUS_RATE_LIMIT", "0")
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_FROM", "+15005550006")
        .env("TWILIO_BASE_URL", twilio)
        .env("TWILIO_RATE_LIMIT", "0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("state.db").display()),
        )
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// `farewatch` with a clean environment (only `PATH`), run in `dir` (also
/// its HOME and data directory), stdin closed: for offline runs (`--demo`,
/// closed ports). `tokio::process::Command::from` makes it async.
pub fn offline(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_farewatch"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to completion, capturing its output.
pub async fn run(mut cmd: tokio::process::Command) -> Run {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("spawn farewatch");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `routes.csv` in `dir` (header `origin,destination,depart_date,max_price,currency,phone,label`).
pub fn write_sheet(dir: &Path, rows: &[String]) {
    let mut csv = String::from("origin,destination,depart_date,max_price,currency,phone,label\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    std::fs::write(dir.join("routes.csv"), csv).unwrap();
}
