//! The scripted mock status provider, on tokio's paused clock.

use std::time::Duration;

use farewatch::status::mock::{MockStatus, Scenario, DEFAULT_NAME, DEFAULT_TIMEOUT};
use farewatch::status::{FlightState, FlightStatus, StatusError, StatusProvider, StatusQuery};
use jiff::civil::{date, Date};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

const DAY: Date = date(2027, 3, 1);

fn flight(ident: &str, on: Option<Date>) -> StatusQuery {
    StatusQuery::Flight {
        ident: ident.to_owned(),
        date: on,
    }
}

/// The one flight `mock` answers for `ident` on [`DAY`].
async fn one(mock: &MockStatus, ident: &str) -> FlightStatus {
    let mut flights = mock.flights(&flight(ident, Some(DAY))).await.unwrap();
    assert_eq!(flights.len(), 1, "{flights:?}");
    flights.remove(0)
}

/// `mock`'s answer for LH400 on [`DAY`] scripted to `scenario`.
async fn scenario(scenario: Scenario) -> FlightStatus {
    let mock = MockStatus::new().with_flight("LH400", DAY, scenario);
    one(&mock, "LH400").await
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// The status without `fetched_at`, for comparing two answers.
fn stable(mut status: FlightStatus) -> FlightStatus {
    status.fetched_at = Timestamp::UNIX_EPOCH;
    status
}

// ----- scenarios ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn on_time_is_scheduled_with_a_zero_delay_and_a_gate() {
    let before = Timestamp::now();
    let f = scenario(Scenario::OnTime).await;
    assert_eq!(f.state, FlightState::Scheduled);
    assert!(!f.is_disrupted());
    assert_eq!(f.flight_iata.as_deref(), Some("LH400"));
    assert_eq!(f.flight_icao.as_deref(), Some("DLH400"));
    assert_eq!(f.airline.as_deref(), Some("Lufthansa"));
    assert_eq!(f.flight_date, Some(DAY));
    assert_eq!(f.provider, "mock");
    assert!(before <= f.fetched_at && f.fetched_at <= Timestamp::now());
    // Lufthansa flies from its hub.
    assert_eq!(f.departure.iata.as_deref(), Some("FRA"));
    assert_eq!(f.departure.icao.as_deref(), Some("EDDF"));
    assert!(f.arrival.iata.is_some() && f.arrival.icao.is_some());
    assert_ne!(f.arrival.iata, f.departure.iata);
    for end in [&f.departure, &f.arrival] {
        assert!(end.scheduled.is_some());
        assert_eq!(end.estimated, end.scheduled);
        assert_eq!(end.actual, None);
        assert_eq!(end.delay_minutes, Some(0));
        assert!(end.terminal.is_some());
    }
    assert!(f.departure.gate.is_some());
    // Arrival gates are assigned once the flight is on its way.
    assert_eq!(f.arrival.gate, None);
}

#[tokio::test(start_paused = true)]
async fn delayed_moves_the_estimates_and_is_a_disruption() {
    let on_time = scenario(Scenario::OnTime).await;
    let f = scenario(Scenario::Delayed { minutes: 20 }).await;
    assert_eq!(f.state, FlightState::Delayed);
    assert!(f.is_disrupted());
    assert_eq!(f.departure.delay_minutes, Some(20));
    assert_eq!(f.arrival.delay_minutes, Some(20));
    assert_eq!(f.departure.scheduled, on_time.departure.scheduled);
    let scheduled = f.departure.scheduled.unwrap();
    assert_eq!(f.departure.estimated, Some(scheduled + minutes(20)));
    assert_eq!(
        f.arrival.estimated,
        Some(f.arrival.scheduled.unwrap() + minutes(20))
    );
    assert_eq!(f.departure.actual, None);
    assert_eq!(f.departure.gate, on_time.departure.gate);
}

#[tokio::test(start_paused = true)]
async fn a_small_delay_stays_scheduled_and_is_not_a_disruption() {
    let f = scenario(Scenario::Delayed { minutes: 10 }).await;
    assert_eq!(f.state, FlightState::Scheduled);
    assert_eq!(f.departure.delay_minutes, Some(10));
    assert!(!f.is_disrupted());
    // The threshold itself counts.
    let f = scenario(Scenario::Delayed { minutes: 15 }).await;
    assert_eq!(f.state, FlightState::Delayed);
    assert!(f.is_disrupted());
}

#[tokio::test(start_paused = true)]
async fn cancelled_keeps_the_schedule_and_drops_the_estimates() {
    let f = scenario(Scenario::Cancelled).await;
    assert_eq!(f.state, FlightState::Cancelled);
    assert!(f.is_disrupted());
    for end in [&f.departure, &f.arrival] {
        assert!(end.scheduled.is_some());
        assert_eq!(
            (end.estimated, end.actual, end.delay_minutes),
            (None, None, None)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn diverted_lands_at_the_other_airport() {
    let on_time = scenario(Scenario::OnTime).await;
    let f = scenario(Scenario::Diverted {
        to_iata: "muc".into(),
    })
    .await;
    assert_eq!(f.state, FlightState::Diverted);
    assert!(f.is_disrupted());
    assert_eq!(f.departure.actual, on_time.departure.scheduled);
    assert_eq!(f.arrival.iata.as_deref(), Some("MUC"));
    assert_eq!(f.arrival.icao.as_deref(), Some("EDDM"));
    assert_eq!(f.arrival.scheduled, None);
    assert_eq!(f.arrival.actual, on_time.arrival.scheduled);
    // An airport the mock does not know keeps its IATA code only.
    let f = scenario(Scenario::Diverted {
        to_iata: "KEF".into(),
    })
    .await;
    assert_eq!(
        (f.arrival.iata.as_deref(), f.arrival.icao),
        (Some("KEF"), None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_gate_change_shows_the_new_gate_and_stays_on_time() {
    let f = scenario(Scenario::GateChange {
        from: "A26".into(),
        to: "B44".into(),
    })
    .await;
    assert_eq!(f.state, FlightState::Scheduled);
    assert!(!f.is_disrupted());
    assert_eq!(f.departure.gate.as_deref(), Some("B44"));
    assert_eq!(f.departure.delay_minutes, Some(0));
}

#[tokio::test(start_paused = true)]
async fn departed_is_active_with_the_departure_time() {
    let f = scenario(Scenario::Departed).await;
    assert_eq!(f.state, FlightState::Active);
    assert!(!f.is_disrupted());
    assert_eq!(f.departure.actual, f.departure.scheduled);
    assert_eq!(f.arrival.actual, None);
    assert_eq!(f.arrival.estimated, f.arrival.scheduled);
    assert!(f.arrival.gate.is_some());
}

#[tokio::test(start_paused = true)]
async fn landed_has_both_actual_times_and_an_arrival_gate() {
    let f = scenario(Scenario::Landed).await;
    assert_eq!(f.state, FlightState::Landed);
    assert!(!f.is_disrupted());
    assert_eq!(f.departure.actual, f.departure.scheduled);
    assert_eq!(f.arrival.actual, f.arrival.scheduled);
    assert!(f.arrival.actual.unwrap() > f.departure.actual.unwrap());
    assert!(f.arrival.gate.is_some() && f.arrival.terminal.is_some());
}

// ----- unscripted flights ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn unscripted_flights_are_deterministic_and_on_time() {
    let a = MockStatus::new();
    let b = MockStatus::new().with_flight("BA117", DAY, Scenario::Cancelled);
    for ident in ["LH400", "SQ26", "ZZ1234", "XAX9"] {
        let first = one(&a, ident).await;
        assert_eq!(first.state, FlightState::Scheduled, "{ident}");
        assert_eq!(first.departure.delay_minutes, Some(0), "{ident}");
        assert_eq!(
            stable(first.clone()),
            stable(one(&a, ident).await),
            "{ident}"
        );
        assert_eq!(stable(first), stable(one(&b, ident).await), "{ident}");
    }
}

#[tokio::test(start_paused = true)]
async fn iata_icao_case_spacing_and_leading_zeros_name_one_flight() {
    let mock = MockStatus::new();
    let lh400 = stable(one(&mock, "LH400").await);
    for ident in ["DLH400", "lh 400", "LH0400", " dlh0400 "] {
        assert_eq!(stable(one(&mock, ident).await), lh400, "{ident}");
    }
    assert_ne!(stable(one(&mock, "LH401").await), lh400);
    // And a script made under one spelling answers to the others.
    let mock = MockStatus::new().with_flight("DLH0400", DAY, Scenario::Cancelled);
    assert_eq!(one(&mock, "LH400").await.state, FlightState::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn unscripted_times_are_realistic() {
    let mock = MockStatus::new();
    // FRA keeps UTC+1 in the mock (standard time, no daylight saving).
    let frankfurt_midnight = Offset::constant(1)
        .to_timestamp(DAY.at(0, 0, 0, 0))
        .unwrap();
    for number in 1..40 {
        let f = one(&mock, &format!("LH{number}")).await;
        assert_eq!(f.departure.iata.as_deref(), Some("FRA"));
        let departs = f.departure.scheduled.unwrap();
        let local = departs.duration_since(frankfurt_midnight);
        assert!(
            local >= minutes(6 * 60) && local <= minutes(22 * 60 + 20),
            "LH{number} departs {local:?} after midnight"
        );
        assert_eq!(departs.as_second() % 300, 0, "on a five-minute mark");
        let block = f.arrival.scheduled.unwrap().duration_since(departs);
        assert!(
            block >= minutes(60) && block <= minutes(20 * 60),
            "LH{number} takes {block:?}"
        );
    }
    // The same flight the next day: same time of day, same terminal.
    let today = one(&mock, "LH400").await;
    let tomorrow = mock
        .flights(&flight("LH400", Some(DAY.tomorrow().unwrap())))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        tomorrow.departure.scheduled.unwrap(),
        today.departure.scheduled.unwrap() + SignedDuration::from_hours(24)
    );
    assert_eq!(tomorrow.departure.terminal, today.departure.terminal);
    assert_eq!(tomorrow.arrival.iata, today.arrival.iata);
}

#[tokio::test(start_paused = true)]
async fn a_flight_without_a_date_is_today_utc() {
    let mock = MockStatus::new();
    let today = Offset::UTC.to_datetime(Timestamp::now()).date();
    let f = mock.flights(&flight("LH400", None)).await.unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].flight_date, Some(today));
}

#[tokio::test(start_paused = true)]
async fn a_flight_without_a_date_answers_every_scripted_date_in_order() {
    let later = date(2027, 3, 5);
    let mock = MockStatus::new()
        .with_flight("LH400", later, Scenario::Cancelled)
        .with_flight("LH400", DAY, Scenario::Landed);
    let flights = mock.flights(&flight("LH400", None)).await.unwrap();
    let got: Vec<_> = flights.iter().map(|f| (f.flight_date, f.state)).collect();
    assert_eq!(
        got,
        vec![
            (Some(DAY), FlightState::Landed),
            (Some(later), FlightState::Cancelled)
        ]
    );
    // A date it has no script for is derived and on time.
    let other = date(2027, 3, 2);
    let f = mock.flights(&flight("LH400", Some(other))).await.unwrap();
    assert_eq!(
        (f.len(), f[0].state, f[0].flight_date),
        (1, FlightState::Scheduled, Some(other))
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_designator_is_rejected() {
    let error = MockStatus::new()
        .flights(&flight("  ", None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StatusError::Rejected { status: 400, .. }),
        "{error:?}"
    );
}

// ----- filters and airports ----------------------------------------------------------

fn three_flights() -> MockStatus {
    MockStatus::new()
        .with_flight("LH400", DAY, Scenario::Delayed { minutes: 30 })
        .with_flight("LH902", DAY, Scenario::OnTime)
        .with_flight("BA117", DAY, Scenario::Landed)
}

#[tokio::test(start_paused = true)]
async fn filters_return_the_matching_scripted_flights() {
    let mock = three_flights();
    let filter = |dep: Option<&str>, state: Option<FlightState>, limit| StatusQuery::Filter {
        dep_iata: dep.map(str::to_owned),
        arr_iata: None,
        state,
        limit,
    };
    let idents = |flights: Vec<FlightStatus>| {
        let mut idents: Vec<String> = flights.into_iter().filter_map(|f| f.flight_iata).collect();
        idents.sort();
        idents
    };
    let fra = mock.flights(&filter(Some("fra"), None, 10)).await.unwrap();
    assert_eq!(idents(fra), ["LH400", "LH902"]);
    let delayed = mock
        .flights(&filter(None, Some(FlightState::Delayed), 10))
        .await
        .unwrap();
    assert_eq!(idents(delayed), ["LH400"]);
    let all = mock.flights(&filter(None, None, 10)).await.unwrap();
    assert_eq!(idents(all), ["BA117", "LH400", "LH902"]);
    assert_eq!(mock.flights(&filter(None, None, 2)).await.unwrap().len(), 2);
    let lhr = one(&mock, "BA117").await.arrival.iata;
    let to_there = StatusQuery::Filter {
        dep_iata: Some("LHR".into()),
        arr_iata: lhr,
        state: Some(FlightState::Landed),
        limit: 5,
    };
    assert_eq!(idents(mock.flights(&to_there).await.unwrap()), ["BA117"]);
    // Unscripted flights are not listed.
    let none = StatusQuery::Filter {
        dep_iata: Some("SIN".into()),
        arr_iata: None,
        state: None,
        limit: 5,
    };
    assert_eq!(mock.flights(&none).await.unwrap(), vec![]);
}

#[tokio::test(start_paused = true)]
async fn airport_queries_return_scripted_flights_within_the_window() {
    let mock = three_flights();
    let lh400 = one(&mock, "LH400").await;
    // Delayed 30 minutes: the window is matched against the estimate.
    let leaves = lh400.departure.estimated.unwrap();
    let departures = |begin: Timestamp, end: Timestamp| StatusQuery::Departures {
        airport_icao: "eddf".into(),
        begin,
        end,
    };
    let found = mock
        .flights(&departures(leaves, leaves + minutes(1)))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].flight_iata.as_deref(), Some("LH400"));
    let before = mock
        .flights(&departures(leaves - minutes(60), leaves))
        .await
        .unwrap();
    assert!(before
        .iter()
        .all(|f| f.flight_iata.as_deref() != Some("LH400")));

    let ba117 = one(&mock, "BA117").await;
    let landed = ba117.arrival.actual.unwrap();
    let arrivals = StatusQuery::Arrivals {
        airport_icao: ba117.arrival.icao.clone().unwrap(),
        begin: landed - minutes(1),
        end: landed + minutes(1),
    };
    let found = mock.flights(&arrivals).await.unwrap();
    assert_eq!(
        found,
        vec![FlightStatus {
            fetched_at: found[0].fetched_at,
            operated_by: None,
            codeshares: Vec::new(),
            ..ba117
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn it_supports_every_query() {
    let mock = MockStatus::new();
    let now = Timestamp::now();
    for query in [
        flight("LH400", None),
        StatusQuery::Filter {
            dep_iata: None,
            arr_iata: None,
            state: None,
            limit: 1,
        },
        StatusQuery::Departures {
            airport_icao: "EDDF".into(),
            begin: now,
            end: now,
        },
        StatusQuery::Arrivals {
            airport_icao: "EDDF".into(),
            begin: now,
            end: now,
        },
    ] {
        assert!(mock.supports(&query));
        assert!(mock.flights(&query).await.is_ok());
    }
    assert_eq!(mock.name(), DEFAULT_NAME);
    assert_eq!(mock.timeout(), DEFAULT_TIMEOUT);
    let named = MockStatus::new()
        .named("backup")
        .with_timeout(Duration::from_secs(3));
    assert_eq!(
        (named.name(), named.timeout()),
        ("backup", Duration::from_secs(3))
    );
    assert_eq!(one(&named, "LH400").await.provider, "backup");
}

// ----- failures and latency ----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn fail_next_fails_that_many_calls_in_order_then_answers() {
    let mock = MockStatus::new()
        .fail_next(1, StatusError::Timeout(Duration::from_secs(10)))
        .fail_next(
            2,
            StatusError::RateLimited {
                retry_after: Some(Duration::from_secs(37)),
            },
        );
    let query = flight("LH400", Some(DAY));
    assert_eq!(
        mock.flights(&query).await,
        Err(StatusError::Timeout(Duration::from_secs(10)))
    );
    for _ in 0..2 {
        assert_eq!(
            mock.flights(&query).await,
            Err(StatusError::RateLimited {
                retry_after: Some(Duration::from_secs(37))
            })
        );
    }
    assert!(mock.flights(&query).await.is_ok());
    assert_eq!(mock.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn fail_with_fails_every_call_after_the_queued_ones() {
    let down = StatusError::Upstream {
        status: 503,
        code: None,
        message: "maintenance".into(),
    };
    let mock = MockStatus::new()
        .fail_with(down.clone())
        .fail_next(1, StatusError::Auth("bad key".into()));
    let query = flight("LH400", None);
    assert_eq!(
        mock.flights(&query).await,
        Err(StatusError::Auth("bad key".into()))
    );
    for _ in 0..3 {
        assert_eq!(mock.flights(&query).await, Err(down.clone()));
    }
    assert_eq!(mock.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn latency_is_a_tokio_sleep_before_every_answer() {
    let latency = Duration::from_millis(1500);
    let mock = MockStatus::new()
        .with_latency(latency)
        .fail_next(1, StatusError::Connect("refused".into()));
    let query = flight("LH400", Some(DAY));

    let started = tokio::time::Instant::now();
    assert!(mock.flights(&query).await.is_err());
    assert_eq!(started.elapsed(), latency);
    assert!(mock.flights(&query).await.is_ok());
    assert_eq!(started.elapsed(), latency * 2);

    // A caller's timeout shorter than the latency wins.
    let cut = tokio::time::timeout(Duration::from_secs(1), mock.flights(&query)).await;
    assert!(cut.is_err());
    assert_eq!(mock.calls(), 3);
}

// ----- low signal ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn low_signal_flights_answer_scheduled_with_nothing_else() {
    let mock = MockStatus::new()
        .with_flight("LH400", DAY, Scenario::Delayed { minutes: 60 })
        .low_signal("DLH400");
    let f = one(&mock, "lh400").await;
    assert_eq!(f.state, FlightState::Scheduled);
    assert!(!f.is_disrupted());
    assert_eq!(f.flight_iata.as_deref(), Some("LH400"));
    assert_eq!(f.flight_date, Some(DAY));
    assert_eq!(f.departure.iata.as_deref(), Some("FRA"));
    for end in [&f.departure, &f.arrival] {
        assert_eq!(
            (end.scheduled, end.estimated, end.actual, end.delay_minutes),
            (None, None, None, None)
        );
        assert_eq!((&end.terminal, &end.gate), (&None, &None));
    }
    // Other flights are unaffected.
    assert_eq!(one(&mock, "LH401").await.departure.delay_minutes, Some(0));
}

// ----- scenarios over time ------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_timed_script_drives_a_sequence_of_snapshots() {
    let mock = MockStatus::new().script(
        "LH400",
        DAY,
        vec![
            // Given out of order on purpose: steps are sorted by time.
            (mins(20), Scenario::Delayed { minutes: 45 }),
            (mins(0), Scenario::OnTime),
            (mins(10), Scenario::Delayed { minutes: 20 }),
            (
                mins(30),
                Scenario::GateChange {
                    from: "A26".into(),
                    to: "B44".into(),
                },
            ),
            (mins(90), Scenario::Departed),
            (mins(600), Scenario::Landed),
        ],
    );
    let scheduled = one(&mock, "LH400").await.departure.scheduled.unwrap();

    let mut seen = Vec::new();
    for wait in [0, 10, 10, 10, 60, 510] {
        tokio::time::advance(mins(wait)).await;
        let f = one(&mock, "LH400").await;
        seen.push((
            f.state,
            f.departure.delay_minutes,
            f.departure.gate.clone().unwrap(),
            f.is_disrupted(),
        ));
        match f.state {
            FlightState::Active => {
                assert_eq!(f.departure.actual, Some(scheduled + minutes(45)));
                assert_eq!(f.arrival.actual, None);
            }
            FlightState::Landed => {
                assert_eq!(
                    f.arrival.actual,
                    Some(f.arrival.scheduled.unwrap() + minutes(45))
                );
            }
            _ => assert_eq!(f.departure.actual, None),
        }
    }
    let gate = String::from;
    assert_eq!(
        seen,
        vec![
            (FlightState::Scheduled, Some(0), gate("A26"), false),
            (FlightState::Delayed, Some(20), gate("A26"), true),
            (FlightState::Delayed, Some(45), gate("A26"), true),
            (FlightState::Delayed, Some(45), gate("B44"), true),
            (FlightState::Active, Some(45), gate("B44"), true),
            (FlightState::Landed, Some(45), gate("B44"), true),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn steps_apply_from_their_time_and_before_the_first_the_flight_is_on_time() {
    let mock = MockStatus::new().script(
        "BA117",
        DAY,
        vec![(mins(5), Scenario::Cancelled), (mins(8), Scenario::OnTime)],
    );
    assert_eq!(one(&mock, "BA117").await.state, FlightState::Scheduled);
    tokio::time::advance(mins(5) - Duration::from_millis(1)).await;
    assert_eq!(one(&mock, "BA117").await.state, FlightState::Scheduled);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(one(&mock, "BA117").await.state, FlightState::Cancelled);
    tokio::time::advance(mins(3)).await;
    assert_eq!(one(&mock, "BA117").await.state, FlightState::Scheduled);
    // Re-scripting the same flight and date replaces the script.
    let mock = mock.with_flight("BA117", DAY, Scenario::Landed);
    assert_eq!(one(&mock, "BA117").await.state, FlightState::Landed);
}
