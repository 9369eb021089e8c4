//! The command line as a ripgrep or lychee user expects it: exit codes,
//! quiet and colour, `.env` handling, one line per outage cause, a table
//! that fits 80 columns, dry runs that write nothing, and the helper
//! subcommands (init, completions, man).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::days_from_today;
use serde_json::Value;

/// `farewatch` with a clean environment, run in `dir` (also its HOME).
fn farewatch(dir: &Path) -> Command {
    common::binary::offline(dir)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

#[test]
fn a_usage_error_has_its_own_exit_code_not_partial() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path())
        .args(["check", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 64, "{}", text(&output.stderr));
    let output = farewatch(dir.path()).arg("--help").output().unwrap();
    assert_eq!(code(&output), 0);
}

#[test]
fn one_row_with_several_bad_cells_is_one_invalid_row_listed_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    write(
        dir.path(),
        "routes.csv",
        &format!(
            "origin,destination,depart_date,max_price,currency,phone\n\
             LHR,JFK,{day},450,GBP,+442079460123\n\
             L1,JFK,someday,-5,GBP,+442079460123\n"
        ),
    );
    let output = farewatch(dir.path())
        .args(["check", "--demo", "--format", "json", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 2, "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"]["invalid_rows"], 1);
    let rows = json["invalid_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["line"], 3);
    let columns: Vec<&str> = rows[0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["column"].as_str().unwrap())
        .collect();
    assert!(columns.len() >= 3, "every bad cell is listed: {columns:?}");
    // Each problem printed once on stderr, as FILE:LINE: column: message.
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.matches("routes.csv:3: origin:").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn an_outage_is_one_line_per_provider_and_cause_not_one_per_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    let mut sheet = String::from("origin,destination,depart_date,max_price,currency,phone\n");
    for code in ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH"] {
        sheet.push_str(&format!("{code},JFK,{day},450,GBP,+442079460123\n"));
    }
    write(dir.path(), "routes.csv", &sheet);
    let output = farewatch(dir.path())
        .args(["check", "--dry-run", "--no-progress"])
        .env("FARE_SOURCES", "serpapi")
        .env("SERPAPI_API_KEY", "test-key")
        .env(
            "SERPAPI_BASE_URL",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .env("SERPAPI_TIMEOUT", "2s")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stdout}{stderr}");
    let problems: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Problems:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(problems.len(), 1, "one cause, one line: {stdout}");
    assert!(
        problems[0].contains("serpapi") && problems[0].ends_with("(8 times)"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("lookup failed"),
        "no WARN line per lookup: {stderr}"
    );
}

#[test]
fn a_dry_run_checks_channels_as_a_real_run_does_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    write(
        dir.path(),
        "routes.csv",
        &format!(
            "origin,destination,depart_date,max_price,currency,phone\n\
             LHR,JFK,{day},10000,GBP,+442079460123\n\
             CDG,JFK,{day},10000,EUR,slack:team\n"
        ),
    );
    // The demo source stands in for a live one: a dry run is a real run
    // that prints, so it needs a real source; use a closed port and look at
    // what the dry run checks before any lookup.
    let output = farewatch(dir.path())
        .args(["check", "--dry-run", "--no-progress", "--format", "json"])
        .env("SERPAPI_API_KEY", "test-key")
        .env(
            "SERPAPI_BASE_URL",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .env("SERPAPI_TIMEOUT", "1s")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "routes.csv:3: phone: `slack:team` is not a configured channel; set SLACK_WEBHOOK_TEAM"
        ),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"]["invalid_rows"], 1);
    // Nothing written: no state database, no data directory.
    assert!(
        !dir.path().join("data").exists(),
        "a dry run created the data directory"
    );
    assert!(
        !dir.path().join(".local").exists(),
        "a dry run created ~/.local"
    );
}

#[test]
fn a_demo_dry_run_prints_the_exact_message_it_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path())
        .args(["check", "--demo", "--dry-run", "--no-progress"])
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(code(&output), 0, "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("SMS to +442079460123: farewatch: "),
        "{stdout}"
    );
    assert!(stdout.contains("alert due (dry)"), "{stdout}");
}

#[test]
fn the_table_fits_80_columns_and_money_uses_each_currency_s_minor_units() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    write(
        dir.path(),
        "routes.csv",
        &format!(
            "origin,destination,depart_date,return_date,max_price,currency,phone\n\
             NRT,HND,{day},,20000,JPY,+442079460123\n\
             BAH,DXB,{day},,999999999.999,BHD,+442079460123\n\
             LHR|LGW|STN,JFK|EWR,{day}..{},{}..{},450,GBP,+442079460123\n",
            days_from_today(36),
            days_from_today(40),
            days_from_today(46),
        ),
    );
    let output = farewatch(dir.path())
        .args(["check", "--demo", "--no-progress"])
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("SMS to")) {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        stdout.contains("999999999.999"),
        "BHD has three decimals: {stdout}"
    );
    assert!(
        !stdout.contains("JPY 183.00") && !stdout.contains("20000.00"),
        "JPY has none: {stdout}"
    );
    assert!(!stdout.contains('~'), "nothing is silently cut: {stdout}");
}

#[test]
fn env_comes_from_the_working_directory_only_and_a_bad_line_is_named() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("project");
    std::fs::create_dir(&dir).unwrap();
    // A parent's .env is another project's: not read.
    write(
        parent.path(),
        ".env",
        "FAREWATCH_CURRENCY=XXX-NOT-A-CURRENCY\n",
    );
    let output = farewatch(&dir)
        .args(["check", "--demo", "--no-progress", "-q"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output.stderr));

    write(
        &dir,
        ".env",
        "FAREWATCH_CURRENCY=GBP\nTWILIO_AUTH_TOKEN hunter2\n",
    );
    let output = farewatch(&dir).args(["check", "--demo"]).output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 3, "{stderr}");
    assert!(stderr.contains(".env:2: not a KEY=VALUE line"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the line may hold a secret: {stderr}"
    );
}

#[test]
fn quiet_prints_errors_only() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    write(
        dir.path(),
        "routes.csv",
        &format!(
            "origin,destination,depart_date,max_price,currency,phone,color\n\
             LHR,JFK,{day},1,GBP,+442079460123,blue\n\
             LHR,XX,{day},1,GBP,+442079460123,red\n"
        ),
    );
    let output = farewatch(dir.path())
        .args(["check", "--demo", "-q"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(stdout.is_empty(), "no table with -q: {stdout}");
    assert!(!stderr.contains("warning"), "no warnings with -q: {stderr}");
    assert!(
        stderr.contains("routes.csv:3: destination:"),
        "errors still print: {stderr}"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = farewatch(dir.path());
        cmd.args(["-vv", "check", "--demo", "--no-progress"])
            .args(args);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        text(&cmd.output().unwrap().stderr)
    };
    assert!(
        !run(&[], false).contains('\u{1b}'),
        "stderr is a pipe: no ANSI codes"
    );
    assert!(!run(&["--color", "auto"], true).contains('\u{1b}'));
    assert!(run(&["--color", "always"], false).contains('\u{1b}'));
}

#[test]
fn a_closed_stderr_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = farewatch(dir.path())
        .args([
            "-v",
            "check",
            "--demo",
            "--no-progress",
            "--routes",
            "missing.csv",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before farewatch writes its error.
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "exit {status:?}: 101 is a panic");
}

#[test]
fn init_writes_a_starter_sheet_and_env_and_never_overwrites_them() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path()).arg("init").output().unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output.stderr));
    let sheet = std::fs::read_to_string(dir.path().join("routes.csv")).unwrap();
    assert!(
        sheet.starts_with('#') && sheet.contains("origin"),
        "{sheet}"
    );
    let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    assert!(env.contains("TWILIO_ACCOUNT_SID"), "{env}");
    // The starter files are valid: the demo runs on them.
    let output = farewatch(dir.path())
        .args(["check", "--demo", "--no-progress", "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["summary"]["invalid_rows"],
        0,
        "{}",
        text(&output.stderr)
    );

    write(dir.path(), "routes.csv", "mine\n");
    let output = farewatch(dir.path()).arg("init").output().unwrap();
    assert_eq!(code(&output), 3);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("routes.csv")).unwrap(),
        "mine\n"
    );
}

#[test]
fn completions_and_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0);
    assert!(text(&output.stdout).contains("_farewatch()"));
    let output = farewatch(dir.path()).arg("man").output().unwrap();
    assert_eq!(code(&output), 0);
    let man = text(&output.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH farewatch"),
        "{}",
        &man[..200.min(man.len())]
    );
}

#[test]
fn durations_and_missing_redis_say_what_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path())
        .args(["flights", "poll", "--demo", "--once"])
        .env("POLL_INTERVAL_SECONDS", "abc")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 3, "{stderr}");
    assert!(
        stderr.contains("`abc` is not a whole number of seconds"),
        "{stderr}"
    );
    let output = farewatch(dir.path())
        .args(["flights", "poll", "--demo", "--once"])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
    assert!(
        !stderr.contains("or run with --demo"),
        "it is running with --demo: {stderr}"
    );
}

#[test]
fn a_daemon_refuses_a_sheet_on_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let output = farewatch(dir.path())
        .args(["daemon", "--demo", "--routes", "-"])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 3, "{stderr}");
    assert!(stderr.contains("standard input"), "{stderr}");
}
