//! Flight-status alerts end to end on the pure core: the watch list parser
//! and the change detection fed a sequence of snapshots, persisted as a
//! caller would.

use farewatch::notify::sms::{gsm7_len, MAX_SINGLE_SEGMENT};
use farewatch::status::alerts::{changes, evaluate, render, Change, WatchState};
use farewatch::status::snapshots::{Snapshot, SnapshotEnd};
use farewatch::status::watch::{self, NotifyOn, Watch, WatchListError};
use farewatch::status::FlightState;
use jiff::civil::{date, Date};
use jiff::Timestamp;

const TODAY: Date = date(2026, 11, 20);
const FLIGHT_DATE: Date = date(2026, 11, 24);

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn end(iata: &str, scheduled: &str) -> SnapshotEnd {
    SnapshotEnd {
        iata: Some(iata.to_owned()),
        icao: None,
        scheduled: Some(ts(scheduled)),
        estimated: None,
        actual: None,
        delay_min: None,
        terminal: None,
        gate: None,
    }
}

fn on_time() -> Snapshot {
    Snapshot {
        flight: "MU2557".into(),
        flight_icao: Some("CES2557".into()),
        airline: Some("China Eastern Airlines".into()),
        date: Some(FLIGHT_DATE),
        status: FlightState::Scheduled,
        disrupted: false,
        dep: end("WUH", "2026-11-24T06:25:00Z"),
        arr: end("SZX", "2026-11-24T08:30:00Z"),
        provider: "mock".into(),
        fetched_at: ts("2026-11-24T04:00:00Z"),
        operated_by: None,
    }
}

fn delayed(minutes: i64, gate: &str) -> Snapshot {
    let mut s = on_time();
    s.status = FlightState::Delayed;
    s.disrupted = minutes >= 15;
    s.dep.delay_min = Some(minutes);
    s.dep.gate = Some(gate.to_owned());
    s
}

fn departed() -> Snapshot {
    let mut s = delayed(45, "14");
    s.status = FlightState::Active;
    s.dep.actual = Some(ts("2026-11-24T07:12:00Z"));
    s.arr.estimated = Some(ts("2026-11-24T09:15:00Z"));
    s
}

fn landed() -> Snapshot {
    let mut s = departed();
    s.status = FlightState::Landed;
    s.arr.actual = Some(ts("2026-11-24T09:02:00Z"));
    s
}

fn watch(notify_on: NotifyOn) -> Watch {
    Watch {
        line: 2,
        flight: "MU2557".into(),
        date: FLIGHT_DATE,
        recipients: vec![],
        notify_on,
        min_delay_minutes: 15,
        namespace: None,
    }
}

/// The sequence of the issue: on time, delayed 20, 25, 45, gate change,
/// departed, landed (gate 12 is known from the first delay on).
fn sequence() -> Vec<Snapshot> {
    vec![
        on_time(),
        delayed(20, "12"),
        delayed(25, "12"),
        delayed(45, "12"),
        delayed(45, "14"),
        departed(),
        landed(),
    ]
}

/// Feeds snapshots through [`changes`], persisting `current` as `previous`
/// at first sight and after each alert, as the snapshot-only contract says.
fn run_with_snapshots(watch: &Watch, snapshots: &[Snapshot]) -> Vec<Vec<Change>> {
    let mut previous: Option<Snapshot> = None;
    snapshots
        .iter()
        .map(|current| {
            let found = changes(watch, previous.as_ref(), current);
            if previous.is_none() || !found.is_empty() {
                previous = Some(current.clone());
            }
            found
        })
        .collect()
}

/// Feeds snapshots through [`evaluate`], persisting the state every time.
fn run_with_state(watch: &Watch, snapshots: &[Snapshot]) -> (Vec<Vec<Change>>, WatchState) {
    let mut state = WatchState::default();
    let steps = snapshots
        .iter()
        .map(|current| {
            let (found, next) = evaluate(watch, &state, current);
            state = next;
            found
        })
        .collect();
    (steps, state)
}

fn expected_sequence() -> Vec<Vec<Change>> {
    vec![
        vec![],
        vec![Change::Delayed { minutes: 20 }],
        vec![],
        vec![Change::DelayGrew { from: 20, to: 45 }],
        vec![Change::GateChanged {
            from: Some("12".into()),
            to: Some("14".into()),
        }],
        vec![Change::Departed {
            at: Some(ts("2026-11-24T07:12:00Z")),
        }],
        vec![Change::Landed {
            at: Some(ts("2026-11-24T09:02:00Z")),
        }],
    ]
}

#[test]
fn each_change_alerts_once_through_changes() {
    let steps = run_with_snapshots(&watch(NotifyOn::ALL), &sequence());
    assert_eq!(steps, expected_sequence());
}

#[test]
fn each_change_alerts_once_through_evaluate() {
    let (steps, state) = run_with_state(&watch(NotifyOn::ALL), &sequence());
    assert_eq!(steps, expected_sequence());
    assert_eq!(state.alerts_sent, 5);
    // Polling the landed flight again says nothing more.
    let (found, _) = evaluate(&watch(NotifyOn::ALL), &state, &landed());
    assert!(found.is_empty());
}

#[test]
fn repeated_polls_of_the_same_state_are_quiet() {
    let w = watch(NotifyOn::ALL);
    let mut doubled = Vec::new();
    for s in sequence() {
        doubled.push(s.clone());
        doubled.push(s);
    }
    let steps = run_with_snapshots(&w, &doubled);
    let alerts: usize = steps.iter().map(Vec::len).sum();
    assert_eq!(alerts, 5);
    assert!(steps.iter().skip(1).step_by(2).all(Vec::is_empty));
}

#[test]
fn creeping_delay_is_measured_from_the_last_alert() {
    let snapshots: Vec<Snapshot> = [10, 20, 25, 30, 34, 35, 40]
        .iter()
        .map(|m| delayed(*m, "12"))
        .collect();
    let steps = run_with_snapshots(&watch(NotifyOn::ALL), &snapshots);
    assert_eq!(
        steps,
        vec![
            vec![],
            vec![Change::Delayed { minutes: 20 }],
            vec![],
            vec![],
            vec![],
            vec![Change::DelayGrew { from: 20, to: 35 }],
            vec![],
        ]
    );
}

#[test]
fn notify_on_filters_changes() {
    let only = NotifyOn::parse("cancel,land").unwrap();
    let steps = run_with_snapshots(&watch(only), &sequence());
    let mut expected = vec![vec![]; 6];
    expected.push(vec![Change::Landed {
        at: Some(ts("2026-11-24T09:02:00Z")),
    }]);
    assert_eq!(steps, expected);

    // Filtered changes are absorbed: turning gates on later replays nothing.
    let (_, state) = run_with_state(&watch(NotifyOn::parse("land").unwrap()), &sequence()[..5]);
    let (found, _) = evaluate(&watch(NotifyOn::ALL), &state, &delayed(45, "14"));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn cancellation_alerts_once_and_silences_the_rest() {
    let mut cancelled = delayed(60, "20");
    cancelled.status = FlightState::Cancelled;
    let snapshots = vec![delayed(20, "12"), cancelled.clone(), cancelled.clone()];
    let (steps, state) = run_with_state(&watch(NotifyOn::ALL), &snapshots);
    assert_eq!(
        steps,
        vec![
            vec![Change::Delayed { minutes: 20 }],
            vec![Change::Cancelled],
            vec![],
        ]
    );
    // A provider flipping back and forth does not repeat it.
    let (found, state) = evaluate(&watch(NotifyOn::ALL), &state, &delayed(20, "12"));
    assert!(found.is_empty(), "{found:?}");
    let (found, _) = evaluate(&watch(NotifyOn::ALL), &state, &cancelled);
    assert!(found.is_empty(), "{found:?}");
    // The snapshot-only form agrees.
    let steps = run_with_snapshots(&watch(NotifyOn::ALL), &snapshots);
    assert_eq!(steps[1], vec![Change::Cancelled]);
    assert!(steps[2].is_empty());
}

#[test]
fn diversion_alerts_once_with_its_destination() {
    let mut diverted = departed();
    diverted.status = FlightState::Diverted;
    diverted.arr.iata = Some("CAN".into());
    let snapshots = vec![departed(), diverted.clone(), diverted];
    let (steps, _) = run_with_state(&watch(NotifyOn::ALL), &snapshots);
    assert_eq!(
        steps,
        vec![
            vec![],
            vec![Change::Diverted {
                to: Some("CAN".into())
            }],
            vec![],
        ]
    );
}

#[test]
fn first_sight_alerts_only_what_is_news() {
    let w = watch(NotifyOn::ALL);
    assert!(changes(&w, None, &on_time()).is_empty());
    assert!(changes(&w, None, &delayed(10, "12")).is_empty());
    assert!(changes(&w, None, &departed()).is_empty());
    assert!(changes(&w, None, &landed()).is_empty());
    assert_eq!(
        changes(&w, None, &delayed(15, "12")),
        vec![Change::Delayed { minutes: 15 }]
    );
    let mut cancelled = on_time();
    cancelled.status = FlightState::Cancelled;
    assert_eq!(changes(&w, None, &cancelled), vec![Change::Cancelled]);
    let mut diverted = departed();
    diverted.status = FlightState::Diverted;
    diverted.arr.iata = None;
    assert_eq!(
        changes(&w, None, &diverted),
        vec![Change::Diverted { to: None }]
    );
    // A flight first seen in the air still alerts its landing.
    assert_eq!(
        changes(&w, Some(&departed()), &landed()),
        vec![Change::Landed {
            at: Some(ts("2026-11-24T09:02:00Z"))
        }]
    );
}

#[test]
fn first_gate_assignment_is_not_news() {
    let (steps, _) = run_with_state(
        &watch(NotifyOn::ALL),
        &[on_time(), {
            let mut s = on_time();
            s.dep.gate = Some("12".into());
            s
        }],
    );
    assert_eq!(steps, vec![vec![], vec![]]);
}

#[test]
fn alerts_render_in_one_segment() {
    let w = watch(NotifyOn::ALL);
    let texts: Vec<String> = sequence()
        .iter()
        .zip(expected_sequence())
        .flat_map(|(s, found)| {
            found
                .iter()
                .map(|c| render(&w.flight, w.date, c, s))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "farewatch: MU2557 2026-11-24 WUH-SZX delayed 20 min, now departs 06:45 UTC, gate 12.",
            "farewatch: MU2557 2026-11-24 WUH-SZX delay now 45 min (was 20), departs 07:10 UTC, gate 12.",
            "farewatch: MU2557 2026-11-24 WUH-SZX gate changed 12 -> 14, departs 07:10 UTC.",
            "farewatch: MU2557 2026-11-24 WUH-SZX departed 07:12 UTC, lands 09:15 UTC.",
            "farewatch: MU2557 2026-11-24 WUH-SZX landed 09:02 UTC.",
        ]
    );
    for text in &texts {
        assert!(gsm7_len(text).is_some_and(|n| n <= MAX_SINGLE_SEGMENT));
    }
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/flights/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn watch_list_reports_bad_rows_with_file_line_and_column() {
    let list = watch::parse("flights.csv", &data("flights.csv"), TODAY).unwrap();
    let flights: Vec<(&str, usize)> = list
        .watches
        .iter()
        .map(|w| (w.flight.as_str(), w.line))
        .collect();
    assert_eq!(flights, vec![("MU2557", 4), ("LH400", 5), ("AF1", 9)]);
    let lh = &list.watches[1];
    assert_eq!(lh.min_delay_minutes, 30);
    assert_eq!(lh.notify_on, NotifyOn::parse("cancel|land").unwrap());
    assert_eq!(lh.recipients.len(), 2);

    let errors: Vec<String> = list.errors.iter().map(ToString::to_string).collect();
    let prefixes: Vec<String> = errors
        .iter()
        .map(|e| e.splitn(4, ": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        prefixes,
        vec![
            "flights.csv:6: flight",
            "flights.csv:7: date",
            "flights.csv:8: date",
            "flights.csv:8: phone",
            "flights.csv:8: notify_on",
            "flights.csv:8: min_delay",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].contains("`XX` is not a flight designator; expected"));
    assert!(errors[1].contains("2026-11-18 is in the past; expected 2026-11-19 or later"));
    assert!(errors[2].contains("`24/11/2026` is not a date; expected a date such as 2026-11-24"));
    assert!(errors[3].contains("`teams:x` is not a recipient"));
    assert!(errors[4].contains("`boarding` is not a kind of change"));
    assert!(errors[5].contains("`0` is out of range"));

    assert_eq!(
        list.warnings,
        vec![
            "flights.csv:2: column `seat` is not one farewatch knows; ignored (known columns: flight, date, phone, notify_on, min_delay)",
            "flights.csv:10: duplicate of line 4 (same flight, date and recipients); ignored",
        ]
    );
}

#[test]
fn watch_list_accepts_bom_crlf_and_a_recipient_header() {
    let list = watch::parse("bom.csv", &data("bom-crlf.csv"), TODAY).unwrap();
    assert!(list.errors.is_empty() && list.warnings.is_empty());
    assert_eq!(list.watches.len(), 1);
    assert_eq!(list.watches[0].line, 2);
}

#[test]
fn watch_list_fatal_errors_name_the_file() {
    let err = watch::parse("latin1.csv", &data("latin1.csv"), TODAY).unwrap_err();
    assert!(
        matches!(err, WatchListError::NotUtf8 { line: 3, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("flight watch list latin1.csv is not UTF-8"));

    let err = watch::parse("missing.csv", &data("missing-phone.csv"), TODAY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing.csv:1: the header is missing required column(s) phone; every watch list needs flight, date and phone"
    );

    let err = watch::parse("f.csv", b"MU2557,2026-11-24,+447911123456\n", TODAY).unwrap_err();
    assert!(
        matches!(err, WatchListError::NoHeader { line: 1, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("f.csv:1: the first row is not a header"));

    let err = watch::parse("f.csv", b"flight,date,phone,Recipient\n", TODAY).unwrap_err();
    assert!(
        matches!(err, WatchListError::DuplicateColumn { .. }),
        "{err:?}"
    );

    let err = watch::parse("f.csv", b"\xEF\xBB\xBF \n", TODAY).unwrap_err();
    assert!(matches!(err, WatchListError::Empty { .. }), "{err:?}");
}

#[test]
fn watch_list_rejects_values_past_the_header() {
    let list = watch::parse(
        "f.csv",
        b"flight,date,phone\nMU2557,2026-11-24,+447911123456,extra\n",
        TODAY,
    )
    .unwrap();
    assert!(list.watches.is_empty());
    assert!(list.errors[0]
        .to_string()
        .starts_with("f.csv:2: row: has values past"));
}
