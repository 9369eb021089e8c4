//! Flight-status alerts: a pure function from (watch, state, snapshot) to
//! the meaningful changes worth a message, and their one-segment SMS text.
//!
//! No IO and no clock, like [`crate::rules`]. The caller persists the
//! returned [`WatchState`] only when it has carried the changes out: once
//! every change's message is recorded as sent, the state is saved in a
//! separate write. A failed send leaves the changes pending, and they are
//! found again on the next poll; a crash between the last record and the
//! state write finds them again too, under the same outbox keys (the
//! change's number), so nobody is texted twice. An evaluation with no
//! changes should still have its state saved (it records the gate and
//! terminal seen, so a later change of them is recognised).
//!
//! # Semantics (one alert per change)
//! - **Delay** (of the departure, before it happens): the first time it
//!   reaches `min_delay` it alerts ([`Change::Delayed`]); after that only
//!   when it has grown by at least another `min_delay` over the last alerted
//!   delay ([`Change::DelayGrew`]), or shrunk by at least `min_delay` below it
//!   ([`Change::DelayReduced`]: a passenger told "60 minutes late" must hear
//!   that it is now 20). A reduction below `min_delay` re-arms the watch, so
//!   a later delay alerts as new. Small wobbles (16, 14, 17...) never alert.
//!   The delay is the provider's `delay_min`, else estimated minus scheduled
//!   departure; unknown means no change.
//! - **Cancellation** and **diversion**: once each, ever (a provider that
//!   flips back and forth does not repeat them). A cancellation silences
//!   every other change of that evaluation.
//! - **Gate / terminal** (departure side, before departure): whenever a
//!   known value changes to a different known value (compared trimmed,
//!   case-insensitively). The first assignment (none to `12`) is not news,
//!   and a value disappearing is not news either: the last known value is kept.
//! - **Departure**: once, when `dep.actual` appears or the status becomes
//!   `active`. **Landing**: once, when `arr.actual` appears or the status
//!   becomes `landed`. A landing seen without the departure first alerts
//!   only the landing; a departure seen together with a diversion or
//!   cancellation alerts only those.
//! - **First sight** (a fresh [`WatchState`]): only states that are news in
//!   themselves alert: cancelled, diverted, delayed by `min_delay` or more.
//!   An on-time, departed or landed flight seen for the first time is
//!   recorded silently (so its later landing still alerts).
//! - Changes the watch does not want ([`NotifyOn`]) are absorbed into the
//!   state as if told, so turning a kind on later does not replay old news.
//!
//! # Exactly once
//! The `i`-th change (0-based) of an evaluation is the watch's alert number
//! `state.alerts_sent + i + 1`; `{watch.id()}#{number}` is a stable outbox
//! key, the same for every retry of the evaluation.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::snapshots::Snapshot;
use super::watch::{NotifyOn, Watch};
use super::FlightState;
use crate::notify::sms::{
    gsm7_len, sanitize, septets, truncate_septets, MAX_SINGLE_SEGMENT, PREFIX,
};

/// A meaningful change of a watched flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The departure delay reached the watch's `min_delay` (from on time or unknown).
    Delayed {
        /// Minutes late now.
        minutes: i64,
    },
    /// The delay grew by at least `min_delay` since the last delay alert.
    DelayGrew {
        /// Minutes late at the last alert.
        from: i64,
        /// Minutes late now.
        to: i64,
    },
    /// The delay shrank by at least `min_delay` since the last delay alert
    /// (`to` below `min_delay` means back on time, more or less).
    DelayReduced {
        /// Minutes late at the last alert.
        from: i64,
        /// Minutes late now.
        to: i64,
    },
    /// The flight is cancelled.
    Cancelled,
    /// The flight is diverted.
    Diverted {
        /// The new destination, when the provider says (IATA).
        to: Option<String>,
    },
    /// The departure gate changed.
    GateChanged {
        /// The last known gate.
        from: Option<String>,
        /// The new gate.
        to: Option<String>,
    },
    /// The departure terminal changed.
    TerminalChanged {
        /// The last known terminal.
        from: Option<String>,
        /// The new terminal.
        to: Option<String>,
    },
    /// The flight departed.
    Departed {
        /// Actual departure time, when known.
        at: Option<Timestamp>,
    },
    /// The flight landed.
    Landed {
        /// Actual arrival time, when known.
        at: Option<Timestamp>,
    },
}

impl Change {
    /// Whether `notify_on` asks for this kind of change.
    pub fn is_wanted(&self, notify_on: &NotifyOn) -> bool {
        match self {
            Self::Delayed { .. } | Self::DelayGrew { .. } | Self::DelayReduced { .. } => {
                notify_on.delay
            }
            Self::Cancelled => notify_on.cancel,
            Self::Diverted { .. } => notify_on.divert,
            Self::GateChanged { .. } | Self::TerminalChanged { .. } => notify_on.gate,
            Self::Departed { .. } => notify_on.depart,
            Self::Landed { .. } => notify_on.land,
        }
    }
}

/// What the store remembers about a watch between polls.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchState {
    /// Whether any snapshot has been evaluated (false: the next one is first sight).
    pub seen: bool,
    /// The delay of the last delay alert while delayed; `None` means armed.
    pub alerted_delay: Option<i64>,
    /// Last known departure gate.
    pub gate: Option<String>,
    /// Last known departure terminal.
    pub terminal: Option<String>,
    /// Cancellation told (or seen at first sight).
    pub cancelled: bool,
    /// Diversion told.
    pub diverted: bool,
    /// Departure told or seen.
    pub departed: bool,
    /// Landing told or seen.
    pub landed: bool,
    /// How many alerts the watch has sent; numbers the next one.
    pub alerts_sent: u64,
}

impl WatchState {
    /// The state after having evaluated (and told) `snapshot`, as if it were
    /// the first one seen.
    pub fn after(watch: &Watch, snapshot: &Snapshot) -> Self {
        let (changes, mut state) = evaluate(watch, &Self::default(), snapshot);
        state.alerts_sent -= changes.len() as u64;
        state
    }
}

/// The departure delay in minutes: the provider's, else estimated minus scheduled.
pub fn departure_delay(snapshot: &Snapshot) -> Option<i64> {
    snapshot.dep.delay_min.or_else(|| {
        let (estimated, scheduled) = (snapshot.dep.estimated?, snapshot.dep.scheduled?);
        Some((estimated.as_second() - scheduled.as_second()).div_euclid(60))
    })
}

fn has_departed(s: &Snapshot) -> bool {
    s.dep.actual.is_some() || matches!(s.status, FlightState::Active | FlightState::Landed)
}

fn has_landed(s: &Snapshot) -> bool {
    s.arr.actual.is_some() || s.status == FlightState::Landed
}

/// Trimmed, non-empty, for comparison and storage.
fn known(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Evaluates one snapshot of a watched flight. Returns the changes to tell
/// (already filtered by `watch.notify_on`, in telling order) and the state to
/// persist once they are durably sent (see the module doc).
pub fn evaluate(
    watch: &Watch,
    state: &WatchState,
    current: &Snapshot,
) -> (Vec<Change>, WatchState) {
    let first_sight = !state.seen;
    let mut next = WatchState {
        seen: true,
        ..state.clone()
    };
    let mut found = Vec::new();
    let min = i64::from(watch.min_delay_minutes.max(1));

    let cancelled = current.status == FlightState::Cancelled;
    let diverted = current.status == FlightState::Diverted;
    let departed = has_departed(current) || diverted;
    let landed = has_landed(current);

    if cancelled && !state.cancelled {
        next.cancelled = true;
        found.push(Change::Cancelled);
    }
    if diverted && !state.diverted {
        next.diverted = true;
        found.push(Change::Diverted {
            to: known(current.arr.iata.as_ref()),
        });
    }

    // Before departure: delay, gate and terminal.
    if !cancelled && !departed && !landed {
        if let Some(delay) = departure_delay(current) {
            match state.alerted_delay {
                None if delay >= min => {
                    next.alerted_delay = Some(delay);
                    found.push(Change::Delayed { minutes: delay });
                }
                Some(from) if delay >= from.saturating_add(min) => {
                    next.alerted_delay = Some(delay);
                    found.push(Change::DelayGrew { from, to: delay });
                }
                Some(from) if delay <= from.saturating_sub(min) => {
                    next.alerted_delay = (delay >= min).then_some(delay);
                    found.push(Change::DelayReduced { from, to: delay });
                }
                _ => {}
            }
        }
        let gate = known(current.dep.gate.as_ref());
        if let (Some(from), Some(to)) = (&state.gate, &gate) {
            if !from.eq_ignore_ascii_case(to) {
                found.push(Change::GateChanged {
                    from: Some(from.clone()),
                    to: Some(to.clone()),
                });
            }
        }
        let terminal = known(current.dep.terminal.as_ref());
        if let (Some(from), Some(to)) = (&state.terminal, &terminal) {
            if !from.eq_ignore_ascii_case(to) {
                found.push(Change::TerminalChanged {
                    from: Some(from.clone()),
                    to: Some(to.clone()),
                });
            }
        }
        next.gate = gate.or(next.gate);
        next.terminal = terminal.or(next.terminal);
    }

    if departed && !state.departed {
        next.departed = true;
        if !landed && !cancelled && !diverted {
            found.push(Change::Departed {
                at: current.dep.actual,
            });
        }
    }
    if landed && !state.landed {
        next.landed = true;
        if !cancelled {
            found.push(Change::Landed {
                at: current.arr.actual,
            });
        }
    }

    if first_sight {
        // Only what is news in itself: not an on-time, departed or landed flight.
        found.retain(|c| {
            matches!(
                c,
                Change::Cancelled | Change::Diverted { .. } | Change::Delayed { .. }
            )
        });
    }
    found.retain(|c| c.is_wanted(&watch.notify_on));
    next.alerts_sent = state.alerts_sent + found.len() as u64;
    (found, next)
}

/// The changes between two snapshots, for a caller that keeps only snapshots.
///
/// Contract: `previous` is the first snapshot seen or the last one the
/// caller *alerted upon*. Persist `current` as the new previous when
/// `previous` was `None` (first sight, whatever this returns), and
/// otherwise only after the alerts it returned are durably sent; never when
/// it returns nothing. So a creeping delay (20, 25, 30, 35) is measured from
/// the last alerted delay rather than from the last poll, and a flight first
/// seen on time still alerts its landing when only `land` is wanted.
///
/// The price of keeping only a snapshot: a gate first assigned in a poll
/// that alerted nothing is not remembered, so its later change is missed,
/// and a cancellation or diversion that flips away and back alerts again.
/// Callers that can persist a [`WatchState`] should use [`evaluate`] instead.
pub fn changes(watch: &Watch, previous: Option<&Snapshot>, current: &Snapshot) -> Vec<Change> {
    let state = previous.map_or_else(WatchState::default, |p| WatchState::after(watch, p));
    evaluate(watch, &state, current).0
}

/// Most septets a provider-supplied gate, terminal or airport may take.
const MAX_FIELD: usize = 8;

/// Renders a change as one GSM-7 SMS segment (at most
/// [`MAX_SINGLE_SEGMENT`] septets):
///
/// ```text
/// farewatch: MU2557 2026-11-24 WUH-SZX delayed 45 min, now departs 07:10 UTC, gate 12.
/// ```
///
/// Times are UTC, marked `UTC`, with the date when it differs from the
/// flight date: a [`Snapshot`] carries instants but not the airports' time
/// zones, so local times would need an airport-zone table this module does
/// not have. Provider text (gates, terminals, airports) is reduced to GSM-7
/// exactly as a fare alert's label is (curly quotes and dashes become their
/// GSM-7 lookalikes) and cut to a few characters; optional details are
/// dropped before anything is cut.
pub fn render(flight: &str, date: Date, change: &Change, current: &Snapshot) -> String {
    let field = |v: Option<&String>| {
        v.map(|v| fit(&sanitize(v), MAX_FIELD))
            .filter(|v| !v.is_empty())
    };
    let time = |t: Timestamp| {
        let zoned = t.to_zoned(TimeZone::UTC);
        if zoned.date() == date {
            format!("{} UTC", zoned.strftime("%H:%M"))
        } else {
            format!("{} UTC", zoned.strftime("%Y-%m-%d %H:%M"))
        }
    };
    let departs = current
        .dep
        .estimated
        .or_else(|| {
            let delay = departure_delay(current)?;
            let secs = delay.checked_mul(60)?;
            current
                .dep
                .scheduled?
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .ok()
        })
        .or(current.dep.scheduled)
        .map(time);
    let arrives = current.arr.estimated.or(current.arr.scheduled).map(time);
    let gate = field(current.dep.gate.as_ref()).map(|g| format!("gate {g}"));
    let terminal = field(current.dep.terminal.as_ref()).map(|t| format!("terminal {t}"));

    let (core, extras): (String, Vec<Option<String>>) = match change {
        Change::Delayed { minutes } => (
            format!("delayed {minutes} min"),
            vec![departs.map(|d| format!("now departs {d}")), gate, terminal],
        ),
        Change::DelayGrew { from, to } => (
            format!("delay now {to} min (was {from})"),
            vec![departs.map(|d| format!("departs {d}")), gate, terminal],
        ),
        Change::DelayReduced { from, to } => (
            if *to <= 0 {
                format!("back on time (was {from} min late)")
            } else {
                format!("delay cut to {to} min (was {from})")
            },
            vec![departs.map(|d| format!("departs {d}")), gate, terminal],
        ),
        Change::Cancelled => ("cancelled".to_owned(), vec![]),
        Change::Diverted { to } => (
            match field(to.as_ref()) {
                Some(to) => format!("diverted to {to}"),
                None => "diverted".to_owned(),
            },
            vec![],
        ),
        Change::GateChanged { from, to } => (
            format!(
                "gate changed {} -> {}",
                field(from.as_ref()).unwrap_or_else(|| "?".into()),
                field(to.as_ref()).unwrap_or_else(|| "?".into())
            ),
            vec![departs.map(|d| format!("departs {d}")), terminal],
        ),
        Change::TerminalChanged { from, to } => (
            format!(
                "terminal changed {} -> {}",
                field(from.as_ref()).unwrap_or_else(|| "?".into()),
                field(to.as_ref()).unwrap_or_else(|| "?".into())
            ),
            vec![departs.map(|d| format!("departs {d}")), gate],
        ),
        Change::Departed { at } => (
            match at {
                Some(at) => format!("departed {}", time(*at)),
                None => "departed".to_owned(),
            },
            vec![arrives.map(|a| format!("lands {a}"))],
        ),
        Change::Landed { at } => (
            match at {
                Some(at) => format!("landed {}", time(*at)),
                None => "landed".to_owned(),
            },
            vec![field(current.arr.gate.as_ref()).map(|g| format!("arrival gate {g}"))],
        ),
    };

    let route = match (
        field(current.dep.iata.as_ref()),
        field(current.arr.iata.as_ref()),
    ) {
        (Some(from), Some(to)) => Some(format!("{from}-{to}")),
        _ => None,
    };
    // Everything but the flight is bounded (numbers, fields cut to
    // MAX_FIELD), so the flight gets what is left of a conservative budget.
    let date = date.to_string();
    let head_room =
        MAX_SINGLE_SEGMENT.saturating_sub(septets(PREFIX) + septets(&date) + septets(&core) + 3);
    let flight = fit(&sanitize(flight), head_room.min(16));
    let mut out = format!("{PREFIX}{flight} {date}");
    if let Some(route) = route {
        // Strictly less: room is kept for the final `.`.
        if septets(&out) + 1 + septets(&route) + 1 + septets(&core) < MAX_SINGLE_SEGMENT {
            out.push(' ');
            out.push_str(&route);
        }
    }
    out.push(' ');
    out.push_str(&core);
    for extra in extras.into_iter().flatten() {
        if septets(&out) + 2 + septets(&extra) < MAX_SINGLE_SEGMENT {
            out.push_str(", ");
            out.push_str(&extra);
        }
    }
    out.push('.');
    if septets(&out) > MAX_SINGLE_SEGMENT {
        // Not reachable with the budgets above; a last guard all the same.
        out = truncate_septets(&out, MAX_SINGLE_SEGMENT).to_owned();
    }
    debug_assert!(gsm7_len(&out).is_some_and(|n| n <= MAX_SINGLE_SEGMENT));
    out
}

/// `s` in at most `max` septets, cut with `..` when too long.
fn fit(s: &str, max: usize) -> String {
    if septets(s) <= max {
        return s.to_owned();
    }
    let head = truncate_septets(s, max.saturating_sub(2)).trim_end();
    format!("{head}..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::snapshots::SnapshotEnd;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn end(iata: &str) -> SnapshotEnd {
        SnapshotEnd {
            iata: Some(iata.to_owned()),
            icao: None,
            scheduled: None,
            estimated: None,
            actual: None,
            delay_min: None,
            terminal: None,
            gate: None,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut dep = end("WUH");
        dep.scheduled = Some(ts("2026-11-24T06:25:00Z"));
        let mut arr = end("SZX");
        arr.scheduled = Some(ts("2026-11-24T08:30:00Z"));
        Snapshot {
            flight: "MU2557".into(),
            flight_icao: None,
            airline: None,
            date: Some(date(2026, 11, 24)),
            status: FlightState::Scheduled,
            disrupted: false,
            dep,
            arr,
            provider: "mock".into(),
            fetched_at: ts("2026-11-24T05:00:00Z"),
            operated_by: None,
        }
    }

    fn watch() -> Watch {
        Watch {
            line: 2,
            flight: "MU2557".into(),
            date: date(2026, 11, 24),
            recipients: vec![],
            notify_on: NotifyOn::ALL,
            min_delay_minutes: 15,
            namespace: None,
        }
    }

    fn delayed(minutes: i64) -> Snapshot {
        let mut s = snapshot();
        s.status = FlightState::Delayed;
        s.dep.delay_min = Some(minutes);
        s
    }

    /// The alert for MU2557 delayed 45 minutes, departing 07:10 UTC.
    fn delayed_45_text(edit: impl FnOnce(&mut Snapshot)) -> String {
        let mut s = delayed(45);
        s.dep.estimated = Some(ts("2026-11-24T07:10:00Z"));
        edit(&mut s);
        render(
            "MU2557",
            date(2026, 11, 24),
            &Change::Delayed { minutes: 45 },
            &s,
        )
    }

    #[test]
    fn renders_the_example() {
        assert_eq!(
            delayed_45_text(|s| s.dep.gate = Some("12".into())),
            "farewatch: MU2557 2026-11-24 WUH-SZX delayed 45 min, now departs 07:10 UTC, gate 12."
        );
    }

    #[test]
    fn provider_text_gets_the_same_lookalikes_as_a_fare_alert() {
        let text = delayed_45_text(|s| {
            s.dep.gate = Some("B\u{2019}12".into());
            s.dep.terminal = Some("\u{201C}2\u{201D}".into());
            s.dep.iata = Some("WUH\u{200B}".into());
        });
        assert_eq!(
            text,
            "farewatch: MU2557 2026-11-24 WUH-SZX delayed 45 min, now departs 07:10 UTC, gate B'12, terminal \"2\"."
        );
        assert!(!text.contains('?'), "{text}");
    }

    #[test]
    fn departure_time_falls_back_to_scheduled_plus_delay_and_shows_other_days() {
        let mut s = delayed(120);
        s.dep.scheduled = Some(ts("2026-11-24T23:00:00Z"));
        let text = render(
            "MU2557",
            date(2026, 11, 24),
            &Change::Delayed { minutes: 120 },
            &s,
        );
        assert!(
            text.ends_with("delayed 120 min, now departs 2026-11-25 01:00 UTC."),
            "{text}"
        );
    }

    #[test]
    fn delay_from_estimated_when_provider_gives_none() {
        let mut s = snapshot();
        s.dep.estimated = Some(ts("2026-11-24T06:45:00Z"));
        assert_eq!(departure_delay(&s), Some(20));
        let (found, _) = evaluate(&watch(), &WatchState::default(), &s);
        assert_eq!(found, vec![Change::Delayed { minutes: 20 }]);
    }

    #[test]
    fn reduced_delay_and_rearming() {
        let w = watch();
        let mut state = WatchState::default();
        let mut step = |s: &Snapshot| {
            let (found, next) = evaluate(&w, &state, s);
            state = next;
            found
        };
        assert_eq!(step(&delayed(60)), vec![Change::Delayed { minutes: 60 }]);
        assert_eq!(step(&delayed(50)), vec![]);
        assert_eq!(
            step(&delayed(40)),
            vec![Change::DelayReduced { from: 60, to: 40 }]
        );
        assert_eq!(
            step(&delayed(0)),
            vec![Change::DelayReduced { from: 40, to: 0 }]
        );
        assert_eq!(step(&delayed(16)), vec![Change::Delayed { minutes: 16 }]);
        // Wobbling around the threshold stays quiet.
        assert_eq!(step(&delayed(14)), vec![]);
        assert_eq!(step(&delayed(17)), vec![]);
        assert_eq!(state.alerts_sent, 4);
    }

    #[test]
    fn gate_that_vanishes_is_remembered() {
        let w = watch();
        let mut s = snapshot();
        s.dep.gate = Some("12".into());
        let (_, state) = evaluate(&w, &WatchState::default(), &s);
        s.dep.gate = None;
        let (found, state) = evaluate(&w, &state, &s);
        assert!(found.is_empty());
        s.dep.gate = Some(" 12 ".into());
        let (found, state) = evaluate(&w, &state, &s);
        assert!(found.is_empty());
        s.dep.gate = Some("14".into());
        let (found, _) = evaluate(&w, &state, &s);
        assert_eq!(
            found,
            vec![Change::GateChanged {
                from: Some("12".into()),
                to: Some("14".into())
            }]
        );
    }

    #[test]
    fn landing_without_departure_alerts_only_landing() {
        let w = watch();
        let (_, state) = evaluate(&w, &WatchState::default(), &snapshot());
        let mut s = snapshot();
        s.status = FlightState::Landed;
        s.arr.actual = Some(ts("2026-11-24T08:20:00Z"));
        let (found, state) = evaluate(&w, &state, &s);
        assert_eq!(
            found,
            vec![Change::Landed {
                at: Some(ts("2026-11-24T08:20:00Z"))
            }]
        );
        assert!(state.departed && state.landed);
    }

    #[test]
    fn watch_state_after_does_not_count_alerts() {
        let state = WatchState::after(&watch(), &delayed(30));
        assert_eq!(state.alerted_delay, Some(30));
        assert_eq!(state.alerts_sent, 0);
    }

    fn any_change() -> impl Strategy<Value = Change> {
        let text = || proptest::option::of(any::<String>());
        prop_oneof![
            any::<i64>().prop_map(|minutes| Change::Delayed { minutes }),
            (any::<i64>(), any::<i64>()).prop_map(|(from, to)| Change::DelayGrew { from, to }),
            (any::<i64>(), any::<i64>()).prop_map(|(from, to)| Change::DelayReduced { from, to }),
            Just(Change::Cancelled),
            text().prop_map(|to| Change::Diverted { to }),
            (text(), text()).prop_map(|(from, to)| Change::GateChanged { from, to }),
            (text(), text()).prop_map(|(from, to)| Change::TerminalChanged { from, to }),
            proptest::option::of(-377_705_116_800_i64..253_402_207_200).prop_map(|s| {
                Change::Departed {
                    at: s.map(|s| Timestamp::from_second(s).unwrap()),
                }
            }),
            proptest::option::of(-377_705_116_800_i64..253_402_207_200).prop_map(|s| {
                Change::Landed {
                    at: s.map(|s| Timestamp::from_second(s).unwrap()),
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn render_is_always_one_gsm7_segment(
            flight in any::<String>(),
            change in any_change(),
            gate in proptest::option::of(any::<String>()),
            terminal in proptest::option::of(any::<String>()),
            dep_iata in proptest::option::of(any::<String>()),
            arr_iata in proptest::option::of(any::<String>()),
            arr_gate in proptest::option::of(any::<String>()),
            delay in proptest::option::of(any::<i64>()),
            day in -9999_i16..=9999,
        ) {
            let mut s = snapshot();
            s.dep.gate = gate;
            s.dep.terminal = terminal;
            s.dep.iata = dep_iata;
            s.arr.iata = arr_iata;
            s.arr.gate = arr_gate;
            s.dep.delay_min = delay;
            let date = date(day, 1, 1);
            let text = render(&flight, date, &change, &s);
            let len = gsm7_len(&text);
            prop_assert!(len.is_some_and(|n| n <= MAX_SINGLE_SEGMENT), "{text:?} {len:?}");
        }
    }
}
