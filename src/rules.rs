//! The alert rule: a pure function from (rule, state, price, now) to a decision.
//!
//! No IO and no clock of its own, so every case is a plain unit test. The
//! caller persists the returned state only when it carries the decision out:
//! an [`Decision::Alert`]'s state is saved in the same transaction that
//! records the sent message, so a failed send leaves the row armed.
//!
//! # Semantics (one alert per drop)
//! - The row is *armed* until it alerts. An armed row alerts when the price
//!   is at or below `max_price` (and no cooldown is running).
//! - After an alert the row stays quiet while the price stays at or below
//!   `max_price`, unless the price falls at least `min_drop` below the last
//!   alerted price (a *deeper drop*, strictly lower when `min_drop` is zero)
//!   and any cooldown since the last alert has passed.
//! - When the price rises above `max_price`, the row re-arms.
//! - No quote, or a quote in another currency, decides nothing and changes nothing.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::domain::Money;

/// What a row asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Alert when the cheapest price is at or below this.
    pub max_price: Money,
    /// How much lower than the last alert a price must be to alert again while still below.
    pub min_drop: MinDrop,
    /// Minimum time between two alerts for the row.
    pub cooldown: Option<SignedDuration>,
}

/// The smallest drop below the last alerted price that counts as a new drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MinDrop {
    /// Any lower price counts.
    #[default]
    Zero,
    /// At least this many minor units (in the row's currency).
    Amount(i64),
    /// At least this many basis points (1/100 of a percent) of the last alerted price.
    BasisPoints(u32),
}

impl MinDrop {
    /// Parses `25`, `25.50` (an amount in the row's currency) or `5%`, `2.5%`.
    pub fn parse(raw: &str, currency: crate::domain::Currency) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(pct) = raw.strip_suffix('%') {
            let value: Decimal = pct.trim().parse().map_err(|_| {
                format!("`{raw}` is not a percentage; expected something like 5% or 2.5%")
            })?;
            if value.is_sign_negative() || value > Decimal::from(100) {
                return Err(format!("`{raw}` must be between 0% and 100%"));
            }
            let bps = (value * Decimal::from(100)).round();
            let bps = u32::try_from(bps).map_err(|_| format!("`{raw}` is out of range"))?;
            return Ok(if bps == 0 {
                Self::Zero
            } else {
                Self::BasisPoints(bps)
            });
        }
        let money = Money::parse_exact(raw, currency)
            .map_err(|e| format!("{e}; expected an amount like 25 or a percentage like 5%"))?;
        match money.minor {
            m if m < 0 => Err(format!("`{raw}` must not be negative")),
            0 => Ok(Self::Zero),
            m => Ok(Self::Amount(m)),
        }
    }

    /// The drop required below `last`, in minor units.
    fn required_below(&self, last: &Money) -> i64 {
        match *self {
            Self::Zero => 0,
            Self::Amount(minor) => minor,
            // Round up so a 5% floor is never undercut by rounding.
            Self::BasisPoints(bps) => {
                let product = i128::from(last.minor) * i128::from(bps);
                i64::try_from((product + 9_999) / 10_000).unwrap_or(i64::MAX)
            }
        }
    }
}

/// What the store remembers about a row between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertState {
    /// Price of the last alert while the row has not re-armed; `None` means armed.
    pub last_alerted: Option<Money>,
    /// When the last alert was sent (kept across re-arming, for the cooldown).
    pub last_alerted_at: Option<Timestamp>,
    /// How many alerts the row has sent; the next alert's number identifies its drop.
    pub alerts_sent: u64,
}

impl AlertState {
    /// Whether the next price at or below the threshold would alert (cooldown aside).
    pub fn is_armed(&self) -> bool {
        self.last_alerted.is_none()
    }
}

/// Why a row at or below its price stays quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quiet {
    /// Already alerted for this drop and the price is not (enough) lower.
    AlreadyAlerted,
    /// A cooldown since the last alert is still running.
    Cooldown {
        /// When the cooldown ends.
        until: Timestamp,
    },
}

/// Why an alert fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// The first time at or below the threshold since arming.
    Reached,
    /// Lower again, by at least `min_drop`, after an earlier alert.
    DeeperDrop {
        /// The price of the previous alert.
        previous: Money,
    },
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send an alert; persist the new state together with the sent record.
    Alert {
        /// The price that triggered it.
        price: Money,
        /// First sight or deeper drop.
        kind: AlertKind,
    },
    /// At or below the threshold, but nothing to send.
    Quiet {
        /// The price seen.
        price: Money,
        /// Why it stays quiet.
        reason: Quiet,
    },
    /// Above the threshold. `rearmed` is true when this ends an alerted drop.
    Above {
        /// The price seen.
        price: Money,
        /// True when the row was alerted and now re-arms.
        rearmed: bool,
    },
    /// No price to decide on (no offers, or the lookup failed).
    NoQuote,
    /// The quote is in another currency than the rule; nothing is compared.
    CurrencyMismatch {
        /// The price seen.
        price: Money,
    },
}

/// Evaluates one row. Returns the decision and the state to persist if the
/// caller carries the decision out (unchanged for `Quiet`, `NoQuote`,
/// `CurrencyMismatch` and a non-re-arming `Above`).
pub fn evaluate(
    rule: &Rule,
    state: &AlertState,
    price: Option<Money>,
    now: Timestamp,
) -> (Decision, AlertState) {
    let Some(price) = price else {
        return (Decision::NoQuote, state.clone());
    };
    let Some(ordering) = price.checked_cmp(&rule.max_price) else {
        return (Decision::CurrencyMismatch { price }, state.clone());
    };

    if ordering.is_gt() {
        let rearmed = !state.is_armed();
        let next = AlertState {
            last_alerted: None,
            ..state.clone()
        };
        return (Decision::Above { price, rearmed }, next);
    }

    let kind = match state.last_alerted {
        None => AlertKind::Reached,
        Some(previous) => {
            // A previous alert in another currency (the sheet's currency was
            // changed) cannot be compared: treat the row as armed again.
            match previous.checked_cmp(&price) {
                None => AlertKind::Reached,
                Some(_) => {
                    let floor = previous
                        .minor
                        .saturating_sub(rule.min_drop.required_below(&previous));
                    let deeper = price.minor < previous.minor && price.minor <= floor;
                    if !deeper {
                        let quiet = Decision::Quiet {
                            price,
                            reason: Quiet::AlreadyAlerted,
                        };
                        return (quiet, state.clone());
                    }
                    AlertKind::DeeperDrop { previous }
                }
            }
        }
    };

    if let (Some(cooldown), Some(at)) = (rule.cooldown, state.last_alerted_at) {
        if let Ok(until) = at.checked_add(cooldown) {
            if now < until {
                let quiet = Decision::Quiet {
                    price,
                    reason: Quiet::Cooldown { until },
                };
                return (quiet, state.clone());
            }
        }
    }

    let next = AlertState {
        last_alerted: Some(price),
        last_alerted_at: Some(now),
        alerts_sent: state.alerts_sent + 1,
    };
    (Decision::Alert { price, kind }, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }

    fn rule(max: i64) -> Rule {
        Rule {
            max_price: eur(max),
            min_drop: MinDrop::Zero,
            cooldown: None,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    /// Feeds a price series through the rule, persisting state as a caller
    /// would, and returns how many alerts fired at each step.
    fn run(rule: &Rule, prices: &[Option<i64>]) -> Vec<bool> {
        let mut state = AlertState::default();
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (decision, next) = evaluate(rule, &state, p.map(eur), t(i as i64 * 3600));
                state = next;
                matches!(decision, Decision::Alert { .. })
            })
            .collect()
    }

    #[test]
    fn first_sight_at_or_below_alerts() {
        let (d, s) = evaluate(
            &rule(300_00),
            &AlertState::default(),
            Some(eur(300_00)),
            t(0),
        );
        assert_eq!(
            d,
            Decision::Alert {
                price: eur(300_00),
                kind: AlertKind::Reached
            }
        );
        assert_eq!(s.last_alerted, Some(eur(300_00)));
        assert_eq!(s.alerts_sent, 1);
    }

    #[test]
    fn staying_below_is_quiet() {
        let fired = run(
            &rule(300_00),
            &[Some(290_00), Some(290_00), Some(295_00), Some(300_00)],
        );
        assert_eq!(fired, [true, false, false, false]);
    }

    #[test]
    fn deeper_drop_without_min_drop_alerts_on_any_lower_price() {
        let fired = run(
            &rule(300_00),
            &[Some(290_00), Some(289_99), Some(289_99), Some(250_00)],
        );
        assert_eq!(fired, [true, true, false, true]);
    }

    #[test]
    fn deeper_drop_with_min_drop_amount_needs_the_full_drop() {
        let mut r = rule(300_00);
        r.min_drop = MinDrop::Amount(10_00);
        // 290 alerts; 281 is only 9 lower; 280 is exactly 10 lower: alerts.
        let fired = run(
            &r,
            &[Some(290_00), Some(281_00), Some(280_00), Some(279_00)],
        );
        assert_eq!(fired, [true, false, true, false]);
    }

    #[test]
    fn deeper_drop_with_percentage() {
        let mut r = rule(300_00);
        r.min_drop = MinDrop::parse("5%", Currency::EUR).unwrap();
        // 5% of 200.00 is 10.00: 190.01 is not enough, 190.00 is.
        let fired = run(&r, &[Some(200_00), Some(190_01), Some(190_00)]);
        assert_eq!(fired, [true, false, true]);
    }

    #[test]
    fn cooldown_delays_a_deeper_drop_until_it_passes() {
        let mut r = rule(300_00);
        r.cooldown = Some(SignedDuration::from_hours(6));
        let mut state = AlertState::default();
        let (d, next) = evaluate(&r, &state, Some(eur(290_00)), t(0));
        assert!(matches!(d, Decision::Alert { .. }));
        state = next;
        let (d, next) = evaluate(&r, &state, Some(eur(200_00)), t(3600));
        assert_eq!(
            d,
            Decision::Quiet {
                price: eur(200_00),
                reason: Quiet::Cooldown { until: t(6 * 3600) }
            }
        );
        assert_eq!(next, state, "a quiet decision changes nothing");
        let (d, _) = evaluate(&r, &state, Some(eur(200_00)), t(6 * 3600));
        assert!(matches!(
            d,
            Decision::Alert {
                kind: AlertKind::DeeperDrop { .. },
                ..
            }
        ));
    }

    #[test]
    fn cooldown_also_spans_a_rearm() {
        let mut r = rule(300_00);
        r.cooldown = Some(SignedDuration::from_hours(6));
        let mut state = AlertState::default();
        for (secs, price, expect_alert) in [
            (0, 290_00, true),
            (3600, 310_00, false),
            (7200, 290_00, false),
            (6 * 3600, 290_00, true),
        ] {
            let (d, next) = evaluate(&r, &state, Some(eur(price)), t(secs));
            assert_eq!(
                matches!(d, Decision::Alert { .. }),
                expect_alert,
                "at {secs}s"
            );
            state = next;
        }
    }

    #[test]
    fn rise_above_rearms_and_next_drop_alerts_again() {
        let fired = run(
            &rule(300_00),
            &[Some(290_00), Some(310_00), Some(295_00), Some(295_00)],
        );
        assert_eq!(fired, [true, false, true, false]);
        let state = AlertState {
            last_alerted: Some(eur(290_00)),
            ..AlertState::default()
        };
        let (d, next) = evaluate(&rule(300_00), &state, Some(eur(300_01)), t(0));
        assert_eq!(
            d,
            Decision::Above {
                price: eur(300_01),
                rearmed: true
            }
        );
        assert!(next.is_armed());
    }

    #[test]
    fn above_while_armed_is_not_a_rearm() {
        let (d, next) = evaluate(
            &rule(300_00),
            &AlertState::default(),
            Some(eur(400_00)),
            t(0),
        );
        assert_eq!(
            d,
            Decision::Above {
                price: eur(400_00),
                rearmed: false
            }
        );
        assert_eq!(next, AlertState::default());
    }

    #[test]
    fn missing_quote_changes_nothing() {
        let state = AlertState {
            last_alerted: Some(eur(290_00)),
            last_alerted_at: Some(t(0)),
            alerts_sent: 3,
        };
        let (d, next) = evaluate(&rule(300_00), &state, None, t(10));
        assert_eq!(d, Decision::NoQuote);
        assert_eq!(next, state);
        // And a missing quote between two below prices does not re-arm.
        let fired = run(&rule(300_00), &[Some(290_00), None, Some(290_00)]);
        assert_eq!(fired, [true, false, false]);
    }

    #[test]
    fn currency_mismatch_is_never_compared() {
        let usd = Currency::parse("USD").unwrap();
        let state = AlertState::default();
        let (d, next) = evaluate(&rule(300_00), &state, Some(Money::from_minor(1, usd)), t(0));
        assert_eq!(
            d,
            Decision::CurrencyMismatch {
                price: Money::from_minor(1, usd)
            }
        );
        assert_eq!(next, state);
    }

    #[test]
    fn min_drop_parsing() {
        assert_eq!(MinDrop::parse("0", Currency::EUR).unwrap(), MinDrop::Zero);
        assert_eq!(
            MinDrop::parse("25", Currency::EUR).unwrap(),
            MinDrop::Amount(2500)
        );
        assert_eq!(
            MinDrop::parse("2.5%", Currency::EUR).unwrap(),
            MinDrop::BasisPoints(250)
        );
        assert!(MinDrop::parse("-5", Currency::EUR).is_err());
        assert!(MinDrop::parse("150%", Currency::EUR).is_err());
        assert!(MinDrop::parse("lots", Currency::EUR).is_err());
    }
}
