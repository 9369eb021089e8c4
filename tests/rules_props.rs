//! Property tests of the alert rule, `farewatch::rules::evaluate`.
//!
//! Each case is a random rule (threshold, minimum drop, cooldown) and a
//! random series of cycles: a price, no quote, or a quote in another
//! currency, at monotone times. A simulated caller persists the returned
//! state after every decision, as the engine does when a send succeeds, and
//! the properties below are checked on the whole trace. They restate the
//! semantics in `src/rules.rs` and README.md ("When an alert is sent")
//! independently of the code: the minimum drop in basis points, for one, is
//! checked by cross-multiplying rather than by the rule's rounding.

use farewatch::domain::{Currency, Money};
use farewatch::rules::{evaluate, AlertKind, AlertState, Decision, MinDrop, Quiet, Rule};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

/// Cases per property: each case is a whole price series of up to
/// [`MAX_STEPS`] cycles, and the rule is cheap, so this stays well under a
/// second per property in a debug build.
const CASES: u32 = 1024;

/// Longest series of cycles in one case.
const MAX_STEPS: usize = 64;

/// The first cycle's time.
const START: i64 = 1_800_000_000;

/// [`CASES`], unless `PROPTEST_CASES` asks for another number (a longer local run).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::EUR)
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("USD").unwrap())
}

/// What one cycle's lookup returned.
#[derive(Clone, Copy, Debug)]
enum Seen {
    /// No offers, or the lookup failed.
    Missing,
    /// The cheapest price, in the rule's currency (EUR).
    Price(i64),
    /// A price in another currency (USD), never compared.
    Foreign(i64),
}

impl Seen {
    fn money(self) -> Option<Money> {
        match self {
            Seen::Missing => None,
            Seen::Price(minor) => Some(eur(minor)),
            Seen::Foreign(minor) => Some(usd(minor)),
        }
    }

    /// The price when it can be compared with the rule's threshold.
    fn comparable(self) -> Option<i64> {
        match self {
            Seen::Price(minor) => Some(minor),
            Seen::Missing | Seen::Foreign(_) => None,
        }
    }
}

/// One cycle: how long after the previous one, and what was seen.
#[derive(Clone, Copy, Debug)]
struct Step {
    after_secs: i64,
    seen: Seen,
    /// Whether sending this cycle's alert (if any) fails.
    send_fails: bool,
    /// How long after a failed send the caller retries the same quote.
    retry_after_secs: i64,
}

fn rule() -> impl Strategy<Value = Rule> {
    let min_drop = prop_oneof![
        Just(MinDrop::Zero),
        (1..=50_000_i64).prop_map(MinDrop::Amount),
        (1..=10_000_u32).prop_map(MinDrop::BasisPoints),
    ];
    // Round cooldowns, so that cycles an hour apart land on their last
    // second and their first second after, and arbitrary ones.
    let cooldown_secs = prop_oneof![
        prop::sample::select(vec![3_600_i64, 2 * 3_600, 6 * 3_600, 86_400]),
        1..=3 * 86_400_i64,
    ];
    let cooldown = prop::option::of(cooldown_secs.prop_map(SignedDuration::from_secs));
    (1..=200_000_i64, min_drop, cooldown).prop_map(|(max, min_drop, cooldown)| Rule {
        max_price: eur(max),
        min_drop,
        cooldown,
    })
}

/// A gap between cycles: none, an hour give or take a second (to hit the
/// edges of round cooldowns), anything up to an hour, or up to days.
fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0_i64),
        prop::sample::select(vec![3_599_i64, 3_600, 3_601]),
        1..=3_600_i64,
        3_600..=3 * 86_400_i64,
    ]
}

fn steps(max: i64) -> impl Strategy<Value = Vec<Step>> {
    // Mostly at or below the threshold, where the interesting decisions are;
    // often right at it; sometimes above, to re-arm.
    let price = prop_oneof![
        6 => 1..=max,
        1 => (max - 3).max(1)..=max + 3,
        2 => max + 1..=2 * max + 1,
    ];
    let seen = prop_oneof![
        8 => price.prop_map(Seen::Price),
        1 => Just(Seen::Missing),
        1 => (1..=2 * max).prop_map(Seen::Foreign),
    ];
    let step = (gap(), seen, prop::bool::weighted(0.2), gap()).prop_map(
        |(after_secs, seen, send_fails, retry_after_secs)| Step {
            after_secs,
            seen,
            send_fails,
            retry_after_secs,
        },
    );
    prop::collection::vec(step, 1..=MAX_STEPS)
}

/// A rule and a series of cycles for it.
fn scenario() -> impl Strategy<Value = (Rule, Vec<Step>)> {
    rule().prop_flat_map(|rule| {
        let max = rule.max_price.minor;
        (Just(rule), steps(max))
    })
}

/// One evaluated cycle.
#[derive(Clone, Debug)]
struct Cycle {
    now: Timestamp,
    seen: Seen,
    before: AlertState,
    decision: Decision,
    after: AlertState,
}

/// Runs the series through the rule with a caller that persists the
/// returned state after every decision (every send succeeds).
fn simulate(rule: &Rule, steps: &[Step]) -> Vec<Cycle> {
    let mut state = AlertState::default();
    let mut now = Timestamp::from_second(START).unwrap();
    steps
        .iter()
        .map(|step| {
            now += SignedDuration::from_secs(step.after_secs);
            let (decision, after) = evaluate(rule, &state, step.seen.money(), now);
            let cycle = Cycle {
                now,
                seen: step.seen,
                before: state.clone(),
                decision,
                after: after.clone(),
            };
            state = after;
            cycle
        })
        .collect()
}

fn is_alert(decision: &Decision) -> bool {
    matches!(decision, Decision::Alert { .. })
}

/// Whether `price` is a new drop below `previous` for `min_drop`: strictly
/// lower, and lower by at least the amount, or by at least `bps`/10 000 of
/// `previous` (cross-multiplied, so no rounding is involved).
fn drop_is_enough(min_drop: MinDrop, previous: i64, price: i64) -> bool {
    let drop = i128::from(previous) - i128::from(price);
    drop > 0
        && match min_drop {
            MinDrop::Zero => true,
            MinDrop::Amount(amount) => drop >= i128::from(amount),
            MinDrop::BasisPoints(bps) => drop * 10_000 >= i128::from(previous) * i128::from(bps),
        }
}

/// When the cooldown after the state's last alert ends, if one is running.
fn cooldown_until(rule: &Rule, state: &AlertState) -> Option<Timestamp> {
    let at = state.last_alerted_at?;
    Some(at + rule.cooldown?)
}

fn cooling_down(rule: &Rule, state: &AlertState, now: Timestamp) -> bool {
    cooldown_until(rule, state).is_some_and(|until| now < until)
}

proptest! {
    #![proptest_config(config())]

    /// 1. Never two alerts for one drop: between two consecutive alerts the
    /// price rose above `max_price` (a re-arm), or the second alert is a
    /// deep enough drop below the first; and the cooldown had passed.
    #[test]
    fn never_two_alerts_for_one_drop((rule, steps) in scenario()) {
        let max = rule.max_price.minor;
        let mut last: Option<(i64, Timestamp)> = None;
        let mut rose_above = false;
        for (i, cycle) in simulate(&rule, &steps).iter().enumerate() {
            if cycle.seen.comparable().is_some_and(|p| p > max) {
                rose_above = true;
            }
            let Decision::Alert { price, .. } = cycle.decision else { continue };
            if let Some((previous, at)) = last {
                if let Some(cooldown) = rule.cooldown {
                    prop_assert!(
                        cycle.now >= at + cooldown,
                        "cycle {i}: alert at {} only {} after the previous one at {at}, \
                         inside the {cooldown:?} cooldown", cycle.now, cycle.now - at
                    );
                }
                prop_assert!(
                    rose_above || drop_is_enough(rule.min_drop, previous, price.minor),
                    "cycle {i}: second alert for one drop: {} after an alert at {previous} \
                     with min_drop {:?} and no rise above {max}", price.minor, rule.min_drop
                );
            }
            last = Some((price.minor, cycle.now));
            rose_above = false;
        }
    }

    /// 2. The row re-arms only on a price above `max_price`, and disarms
    /// only by alerting.
    #[test]
    fn rearms_only_after_a_rise_above_the_threshold((rule, steps) in scenario()) {
        let max = rule.max_price.minor;
        for (i, cycle) in simulate(&rule, &steps).iter().enumerate() {
            let (was, is) = (cycle.before.is_armed(), cycle.after.is_armed());
            if !was && is {
                prop_assert!(
                    cycle.seen.comparable().is_some_and(|p| p > max),
                    "cycle {i}: re-armed on {:?} (max {max}): {:?}", cycle.seen, cycle.decision
                );
                prop_assert_eq!(
                    &cycle.decision,
                    &Decision::Above { price: eur(cycle.seen.comparable().unwrap()), rearmed: true },
                    "cycle {}: a re-arm is reported as one", i
                );
            }
            if was && !is {
                prop_assert!(
                    is_alert(&cycle.decision),
                    "cycle {i}: disarmed without alerting: {:?}", cycle.decision
                );
            }
        }
    }

    /// 3. No quote, or a quote in another currency, decides nothing and
    /// changes nothing; neither does a quiet decision.
    #[test]
    fn state_unchanged_without_a_comparable_quote((rule, steps) in scenario()) {
        for (i, cycle) in simulate(&rule, &steps).iter().enumerate() {
            match cycle.seen {
                Seen::Missing => prop_assert_eq!(
                    &cycle.decision, &Decision::NoQuote, "cycle {}", i
                ),
                Seen::Foreign(minor) => prop_assert_eq!(
                    &cycle.decision, &Decision::CurrencyMismatch { price: usd(minor) }, "cycle {}", i
                ),
                Seen::Price(_) => {}
            }
            if matches!(
                cycle.decision,
                Decision::NoQuote | Decision::CurrencyMismatch { .. } | Decision::Quiet { .. }
            ) {
                prop_assert_eq!(
                    &cycle.after, &cycle.before,
                    "cycle {}: {:?} changed the state", i, cycle.decision
                );
            }
        }
    }

    /// 4. Every alert is at or below `max_price`; a price above it never
    /// alerts (and keeps the alert history).
    #[test]
    fn alerts_only_at_or_below_the_threshold((rule, steps) in scenario()) {
        let max = rule.max_price.minor;
        for (i, cycle) in simulate(&rule, &steps).iter().enumerate() {
            if let Decision::Alert { price, .. } = cycle.decision {
                prop_assert_eq!(Some(price.minor), cycle.seen.comparable(), "cycle {}: alerted price", i);
                prop_assert!(price.minor <= max, "cycle {i}: alert at {} above max {max}", price.minor);
            }
            if let Some(p) = cycle.seen.comparable().filter(|&p| p > max) {
                prop_assert!(
                    matches!(cycle.decision, Decision::Above { price, .. } if price == eur(p)),
                    "cycle {i}: {p} above max {max} decided {:?}", cycle.decision
                );
                prop_assert_eq!(cycle.after.alerts_sent, cycle.before.alerts_sent);
                prop_assert_eq!(cycle.after.last_alerted_at, cycle.before.last_alerted_at);
            }
        }
    }

    /// 5. `alerts_sent` goes up by exactly one per alert, and never otherwise.
    #[test]
    fn alerts_sent_counts_alerts((rule, steps) in scenario()) {
        let cycles = simulate(&rule, &steps);
        for (i, cycle) in cycles.iter().enumerate() {
            let expected = cycle.before.alerts_sent + u64::from(is_alert(&cycle.decision));
            prop_assert_eq!(
                cycle.after.alerts_sent, expected,
                "cycle {}: {:?} took alerts_sent from {}", i, cycle.decision, cycle.before.alerts_sent
            );
            if let Decision::Alert { price, .. } = cycle.decision {
                prop_assert_eq!(cycle.after.last_alerted, Some(price), "cycle {}", i);
                prop_assert_eq!(cycle.after.last_alerted_at, Some(cycle.now), "cycle {}", i);
            }
        }
        let alerts = cycles.iter().filter(|c| is_alert(&c.decision)).count() as u64;
        let total = cycles.last().map_or(0, |c| c.after.alerts_sent);
        prop_assert_eq!(total, alerts, "final alerts_sent");
    }

    /// 6. Never missed: an armed row with no cooldown running alerts on any
    /// price at or below `max_price`; an alerted row does so on a deep
    /// enough drop. And a row that stays quiet says why truthfully.
    #[test]
    fn never_misses_a_drop((rule, steps) in scenario()) {
        let max = rule.max_price.minor;
        for (i, cycle) in simulate(&rule, &steps).iter().enumerate() {
            let Some(price) = cycle.seen.comparable().filter(|&p| p <= max) else { continue };
            let cooling = cooling_down(&rule, &cycle.before, cycle.now);
            match cycle.before.last_alerted {
                None if !cooling => prop_assert_eq!(
                    &cycle.decision,
                    &Decision::Alert { price: eur(price), kind: AlertKind::Reached },
                    "cycle {}: armed, no cooldown, {} <= {}", i, price, max
                ),
                Some(previous) if !cooling && drop_is_enough(rule.min_drop, previous.minor, price) => {
                    prop_assert_eq!(
                        &cycle.decision,
                        &Decision::Alert { price: eur(price), kind: AlertKind::DeeperDrop { previous } },
                        "cycle {}: {} is a deep enough drop below {:?} ({:?})",
                        i, price, previous, rule.min_drop
                    );
                }
                _ => {
                    // Quiet, for a reason that holds.
                    match cycle.decision {
                        Decision::Quiet { reason: Quiet::Cooldown { until }, .. } => {
                            prop_assert!(cooling, "cycle {i}: cooldown reported but none running");
                            prop_assert_eq!(Some(until), cooldown_until(&rule, &cycle.before));
                        }
                        Decision::Quiet { reason: Quiet::AlreadyAlerted, .. } => {
                            let previous = cycle.before.last_alerted;
                            prop_assert!(
                                previous.is_some_and(|p| !drop_is_enough(rule.min_drop, p.minor, price)),
                                "cycle {i}: 'already alerted' for {price} after {previous:?}"
                            );
                        }
                        ref other => prop_assert!(false, "cycle {i}: {price} <= {max} decided {other:?}"),
                    }
                }
            }
        }
    }

    /// 7. A caller whose send fails does not persist the state, and sees
    /// the same alert on the next identical cycle: the drop is not lost.
    #[test]
    fn a_failed_send_is_retried_not_lost((rule, steps) in scenario()) {
        let mut state = AlertState::default();
        let mut now = Timestamp::from_second(START).unwrap();
        let mut delivered = 0_u64;
        for (i, step) in steps.iter().enumerate() {
            now += SignedDuration::from_secs(step.after_secs);
            let (decision, next) = evaluate(&rule, &state, step.seen.money(), now);
            if !(is_alert(&decision) && step.send_fails) {
                delivered += u64::from(is_alert(&decision));
                state = next;
                continue;
            }
            // The send failed: nothing is persisted, and the caller tries
            // again on the next cycle, which sees the same quote.
            now += SignedDuration::from_secs(step.retry_after_secs);
            let (again, retried) = evaluate(&rule, &state, step.seen.money(), now);
            prop_assert_eq!(
                &again, &decision,
                "cycle {}: the alert was lost after a failed send (retried {}s later)",
                i, step.retry_after_secs
            );
            prop_assert_eq!(retried.alerts_sent, state.alerts_sent + 1);
            prop_assert_eq!(retried.last_alerted_at, Some(now));
            delivered += 1;
            state = retried;
        }
        prop_assert_eq!(state.alerts_sent, delivered, "alerts_sent counts delivered alerts only");
    }

    /// The rule never panics on extreme values: any non-negative amounts
    /// up to `i64::MAX`, any minimum drop, any cooldown (negative too), any
    /// saved state, any time. Negative amounts are left out: see
    /// `negative_last_alert_with_a_large_min_drop_does_not_overflow`.
    #[test]
    fn never_panics_on_extreme_values(
        max in any::<i64>(),
        min_drop in prop_oneof![
            Just(MinDrop::Zero),
            (0..=i64::MAX).prop_map(MinDrop::Amount),
            any::<u32>().prop_map(MinDrop::BasisPoints),
        ],
        cooldown in prop::option::of(any::<i64>().prop_map(SignedDuration::from_secs)),
        last_alerted in prop::option::of(0..=i64::MAX),
        last_alerted_at in prop::option::of(
            Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        ),
        alerts_sent in 0..u64::MAX,
        price in prop::option::of(any::<i64>()),
        now in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
    ) {
        let rule = Rule { max_price: eur(max), min_drop, cooldown };
        let state = AlertState {
            last_alerted: last_alerted.map(eur),
            last_alerted_at: last_alerted_at.map(|s| Timestamp::from_second(s).unwrap()),
            alerts_sent,
        };
        let now = Timestamp::from_second(now).unwrap();
        let (decision, after) = evaluate(&rule, &state, price.map(eur), now);
        prop_assert_eq!(
            after.alerts_sent,
            alerts_sent + u64::from(is_alert(&decision)),
            "{:?}", decision
        );
    }
}

/// The worked example in README.md ("When an alert is sent"), cycle by cycle.
#[test]
fn readme_worked_example() {
    let rule = Rule {
        max_price: eur(300_00),
        min_drop: MinDrop::Amount(10_00),
        cooldown: None,
    };
    let cycles = [
        (Some(320_00), false),
        (Some(295_00), true),
        (Some(290_00), false),
        (None, false),
        (Some(285_00), true),
        (Some(310_00), false),
        (Some(299_00), true),
    ];
    let mut state = AlertState::default();
    for (i, (price, alerts)) in cycles.into_iter().enumerate() {
        let now = Timestamp::from_second(START + i as i64 * 3_600).unwrap();
        let (decision, next) = evaluate(&rule, &state, price.map(eur), now);
        assert_eq!(
            is_alert(&decision),
            alerts,
            "README cycle {}: {decision:?}",
            i + 1
        );
        state = next;
    }
    assert_eq!(state.alerts_sent, 3);
}

/// Found by `never_panics_on_extreme_values` when it allowed negative
/// amounts: `evaluate` computes the deeper-drop floor as
/// `previous.minor - min_drop.required_below(&previous)`, which overflows
/// when the last alerted price is hugely negative and the minimum drop large
/// (a panic in debug builds, a wrapped floor, so a spurious alert, in
/// release). Reaching it takes a provider quoting a negative price below
/// about -10^16 minor units, which no real provider does; `evaluate` now
/// subtracts with saturation.
#[test]
fn negative_last_alert_with_a_large_min_drop_does_not_overflow() {
    let rule = Rule {
        max_price: eur(300_00),
        min_drop: MinDrop::Amount(631_597_817_691_124_806),
        cooldown: None,
    };
    let state = AlertState {
        last_alerted: Some(eur(-8_591_774_219_163_651_003)),
        last_alerted_at: None,
        alerts_sent: 1,
    };
    let now = Timestamp::from_second(START).unwrap();
    let (decision, _) = evaluate(&rule, &state, Some(eur(0)), now);
    // 0 is not below the last alert at all: quiet, whatever the floor.
    assert_eq!(
        decision,
        Decision::Quiet {
            price: eur(0),
            reason: Quiet::AlreadyAlerted
        }
    );
}
