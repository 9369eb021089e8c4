//! `--routes -`: the `farewatch` binary reads the routes sheet from standard
//! input, names it `<stdin>` in its messages, and applies the sheet's rules
//! (row errors, repeated searches) to it as to a file. Demo mode: offline,
//! no credentials, nothing but loopback.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use common::binary::{offline, Run};
use common::days_from_today;

/// `farewatch check --demo --routes - --format json` in `dir` (its working
/// directory and home), with a clean environment and `csv` on stdin.
fn check_with_stdin(dir: &Path, csv: &str) -> Run {
    let mut child = offline(dir)
        .args(["check", "--demo", "--routes", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the farewatch binary starts");
    let mut stdin = child.stdin.take().unwrap();
    let csv = csv.to_owned();
    // Written from a thread, closed when done: the child reads to the end.
    let writer = std::thread::spawn(move || stdin.write_all(csv.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    Run::from(output)
}

#[test]
fn routes_dash_reads_the_sheet_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let depart = days_from_today(20);
    let csv = format!(
        "origin,destination,depart_date,max_price,phone,label\n\
         LHR,JFK,{depart},10000,+447911123456,piped one\n\
         CDG,BKK,{depart},10000,+447911123456,piped two\n"
    );
    let run = check_with_stdin(dir.path(), &csv);
    let json = run.json();
    assert_eq!(json["summary"]["routes"], 2, "stderr: {}", run.stderr);
    assert_eq!(json["summary"]["invalid_rows"], 0);
    assert_eq!(json["routes"][0]["label"], "piped one");
    assert_eq!(json["routes"][1]["label"], "piped two");
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        !dir.path().join("routes.csv").exists(),
        "nothing read from or written to a routes.csv"
    );
}

#[test]
fn a_bad_row_on_stdin_is_reported_as_stdin_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let depart = days_from_today(20);
    let csv = format!(
        "origin,destination,depart_date,max_price,phone\n\
         LHR,JFK,{depart},10000,+447911123456\n\
         # a comment line still counts\n\
         LH1,JFK,{depart},10000,+447911123456\n\
         LHR,JFK,{depart},9000,+447911123456\n"
    );
    let run = check_with_stdin(dir.path(), &csv);
    let json = run.json();
    assert_eq!(json["summary"]["routes"], 1, "stderr: {}", run.stderr);
    assert_eq!(json["summary"]["invalid_rows"], 2);
    assert_eq!(run.code, 2, "partial: stderr: {}", run.stderr);
    let problems: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("<stdin>:"))
        .collect();
    assert_eq!(problems.len(), 2, "stderr: {}", run.stderr);
    assert!(
        problems[0].starts_with("<stdin>:4: origin: `LH1` is not an IATA code"),
        "stderr: {}",
        run.stderr
    );
    assert_eq!(
        problems[1],
        "<stdin>:5: row: repeats the search on line 2 with a different max_price (9000.00 here, 10000.00 on line 2); only line 2 runs: delete one of the two rows, or make them the same",
    );
}

#[test]
fn an_empty_stdin_is_a_fatal_sheet_error_naming_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let run = check_with_stdin(dir.path(), "");
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("routes sheet <stdin> is empty"),
        "stderr: {}",
        run.stderr
    );
}
