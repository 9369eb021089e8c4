//! Is a price low, typical or high for its search? Pure: no I/O, no clock.
//!
//! # Method
//! 1. **The provider's own insights**, when it gives them
//!    ([`from_insights`]; SerpApi passes on Google's `price_level` and
//!    `typical_price_range`): a typical range in the price's currency
//!    decides (below it Low, above it High, within it, ends included,
//!    Typical), because it compares *this* price; otherwise the provider's
//!    level is taken as it is.
//! 2. **Otherwise the search's own history** ([`from_history`]): the
//!    observations of the last [`WINDOW`] (60 days, up to `now`) in the
//!    price's currency are reduced to one per UTC day, the day's minimum
//!    (the store keeps one a day after 14 days anyway, so every day weighs
//!    the same however often it was checked). With fewer than
//!    [`MIN_DAYS`] (8) such days the verdict is [`Verdict::Unknown`].
//!    Otherwise the typical range is the 25th to the 75th percentile of
//!    the daily minimums by nearest rank (the value at rank
//!    `ceil(p / 100 * n)` of the `n` minimums sorted ascending), and the
//!    price is Low below it, High above it and Typical within it (ends
//!    included, so a flat history calls its own price typical).
//!
//! [`verdict`] applies both in that order.

use jiff::{SignedDuration, Timestamp};

use crate::domain::{Money, PriceInsights, PriceLevel};
use crate::store::PricePoint;

/// How far back [`from_history`] looks.
pub const WINDOW: SignedDuration = SignedDuration::from_hours(60 * 24);

/// The fewest days with an observation [`from_history`] gives a verdict on.
pub const MIN_DAYS: usize = 8;

/// Whether a price is low, typical or high for its search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Below the typical range.
    Low,
    /// Within the typical range.
    Typical,
    /// Above the typical range.
    High,
    /// Not enough to tell (no insights, too little history).
    Unknown,
}

impl Verdict {
    /// `low`, `typical`, `high` or `unknown`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Typical => "typical",
            Self::High => "high",
            Self::Unknown => "unknown",
        }
    }

    /// Where `price` falls against the inclusive range `low..=high`.
    fn against(price: i64, low: i64, high: i64) -> Self {
        if price < low {
            Self::Low
        } else if price > high {
            Self::High
        } else {
            Self::Typical
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<PriceLevel> for Verdict {
    fn from(level: PriceLevel) -> Self {
        match level {
            PriceLevel::Low => Self::Low,
            PriceLevel::Typical => Self::Typical,
            PriceLevel::High => Self::High,
        }
    }
}

/// The verdict the provider's insights give `price` (see the module docs);
/// `None` when they give none (no range in its currency and no level).
pub fn from_insights(price: Money, insights: &PriceInsights) -> Option<Verdict> {
    if let Some((low, high)) = insights.typical_range {
        if low.currency == price.currency && high.currency == price.currency {
            return Some(Verdict::against(price.minor, low.minor, high.minor));
        }
    }
    insights.level.map(Verdict::from)
}

/// The typical range of a search's history at `now`: the 25th and 75th
/// percentiles of its daily minimums in `currency` over the last
/// [`WINDOW`]; `None` below [`MIN_DAYS`] days (see the module docs).
pub fn typical_range(
    history: &[PricePoint],
    currency: crate::domain::Currency,
    now: Timestamp,
) -> Option<(Money, Money)> {
    let from = now.checked_sub(WINDOW).unwrap_or(Timestamp::MIN);
    let mut daily: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for point in history {
        if point.price.currency != currency || point.observed_at < from || point.observed_at > now {
            continue;
        }
        let day = point.observed_at.as_second().div_euclid(86_400);
        daily
            .entry(day)
            .and_modify(|min| *min = (*min).min(point.price.minor))
            .or_insert(point.price.minor);
    }
    if daily.len() < MIN_DAYS {
        return None;
    }
    let mut minimums: Vec<i64> = daily.into_values().collect();
    minimums.sort_unstable();
    let low = nearest_rank(&minimums, 25);
    let high = nearest_rank(&minimums, 75);
    Some((
        Money::from_minor(low, currency),
        Money::from_minor(high, currency),
    ))
}

/// The verdict a search's own history gives `price` at `now` (see the
/// module docs): [`Verdict::Unknown`] below [`MIN_DAYS`] days of history.
pub fn from_history(price: Money, history: &[PricePoint], now: Timestamp) -> Verdict {
    match typical_range(history, price.currency, now) {
        Some((low, high)) => Verdict::against(price.minor, low.minor, high.minor),
        None => Verdict::Unknown,
    }
}

/// The verdict on `price`: the provider's insights when they give one,
/// else the search's history.
pub fn verdict(
    price: Money,
    insights: Option<&PriceInsights>,
    history: &[PricePoint],
    now: Timestamp,
) -> Verdict {
    insights
        .and_then(|insights| from_insights(price, insights))
        .unwrap_or_else(|| from_history(price, history, now))
}

/// The `percent`th percentile of `sorted` (ascending, not empty) by
/// nearest rank: the value at rank `ceil(percent / 100 * n)`, 1-based.
fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    const DAY: i64 = 86_400;

    fn now() -> Timestamp {
        // Midday, so "n days ago" falls on n distinct UTC days.
        Timestamp::from_second(1_800_000_000 - 1_800_000_000 % DAY + DAY / 2).unwrap()
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }

    fn point(days_ago: i64, minor: i64) -> PricePoint {
        PricePoint {
            search_key: "LHR:JFK:2027-03-01:ow:1:EUR".into(),
            observed_at: Timestamp::from_second(now().as_second() - days_ago * DAY).unwrap(),
            price: eur(minor),
            source: "demo".into(),
        }
    }

    /// One point a day for `days` days ending today, `price(day)` with day 0
    /// the oldest.
    fn daily(days: i64, price: impl Fn(i64) -> i64) -> Vec<PricePoint> {
        (0..days).map(|d| point(days - 1 - d, price(d))).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 25), 3, "ceil(2.5) = rank 3");
        assert_eq!(nearest_rank(&v, 75), 8, "ceil(7.5) = rank 8");
        assert_eq!(nearest_rank(&[7], 25), 7);
        let v: Vec<i64> = (1..=8).collect();
        assert_eq!(nearest_rank(&v, 25), 2);
        assert_eq!(nearest_rank(&v, 75), 6);
    }

    #[test]
    fn flat_history_calls_its_own_price_typical() {
        let history = daily(30, |_| 200_00);
        assert_eq!(from_history(eur(200_00), &history, now()), Verdict::Typical);
        assert_eq!(from_history(eur(199_99), &history, now()), Verdict::Low);
        assert_eq!(from_history(eur(200_01), &history, now()), Verdict::High);
    }

    #[test]
    fn rising_history_splits_into_quartiles() {
        // 100.00, 101.00, ... 139.00 over 40 days: p25 = rank 10 = 109.00,
        // p75 = rank 30 = 129.00.
        let history = daily(40, |d| 100_00 + d * 100);
        assert_eq!(
            typical_range(&history, Currency::EUR, now()),
            Some((eur(109_00), eur(129_00)))
        );
        assert_eq!(from_history(eur(100_00), &history, now()), Verdict::Low);
        assert_eq!(from_history(eur(108_99), &history, now()), Verdict::Low);
        assert_eq!(from_history(eur(109_00), &history, now()), Verdict::Typical);
        assert_eq!(from_history(eur(129_00), &history, now()), Verdict::Typical);
        assert_eq!(
            from_history(eur(139_00), &history, now()),
            Verdict::High,
            "today's price, the highest yet"
        );
    }

    #[test]
    fn a_single_outlier_does_not_move_the_range() {
        let mut history = daily(20, |_| 200_00);
        history.push(point(5, 50_00)); // a mistake fare, once
        history.push(point(6, 900_00)); // and a spike, the same day as a 200
        assert_eq!(
            typical_range(&history, Currency::EUR, now()),
            Some((eur(200_00), eur(200_00)))
        );
        assert_eq!(from_history(eur(200_00), &history, now()), Verdict::Typical);
        assert_eq!(from_history(eur(150_00), &history, now()), Verdict::Low);
    }

    #[test]
    fn too_few_points_is_unknown() {
        assert_eq!(from_history(eur(1), &[], now()), Verdict::Unknown);
        let history = daily(MIN_DAYS as i64 - 1, |d| 100_00 + d);
        assert_eq!(from_history(eur(1), &history, now()), Verdict::Unknown);
        let history = daily(MIN_DAYS as i64, |d| 100_00 + d);
        assert_eq!(from_history(eur(1), &history, now()), Verdict::Low);
    }

    #[test]
    fn many_points_on_few_days_are_still_too_few() {
        // 50 checks, all in the last 3 days.
        let history: Vec<PricePoint> = (0..50).map(|i| point(i % 3, 100_00 + i)).collect();
        assert_eq!(from_history(eur(1), &history, now()), Verdict::Unknown);
    }

    #[test]
    fn only_the_window_and_the_currency_count() {
        // 10 old days (beyond 60) and 5 recent: not enough.
        let mut history: Vec<PricePoint> = (61..71).map(|d| point(d, 100_00)).collect();
        history.extend((0..5).map(|d| point(d, 100_00)));
        // Other currencies never count.
        history.extend((5..20).map(|d| PricePoint {
            price: Money::from_minor(100_00, Currency::parse("GBP").unwrap()),
            ..point(d, 0)
        }));
        assert_eq!(from_history(eur(1), &history, now()), Verdict::Unknown);
        // Points after `now` are not history yet.
        let future: Vec<PricePoint> = (1..20).map(|d| point(-d, 100_00)).collect();
        assert_eq!(from_history(eur(1), &future, now()), Verdict::Unknown);
    }

    #[test]
    fn insights_range_then_level() {
        let insights = PriceInsights {
            lowest: None,
            level: Some(PriceLevel::High),
            typical_range: Some((eur(300_00), eur(450_00))),
            history: Vec::new(),
        };
        assert_eq!(from_insights(eur(250_00), &insights), Some(Verdict::Low));
        assert_eq!(
            from_insights(eur(300_00), &insights),
            Some(Verdict::Typical)
        );
        assert_eq!(from_insights(eur(451_00), &insights), Some(Verdict::High));
        // A range in another currency cannot be compared: the level decides.
        let gbp = Money::from_minor(250_00, Currency::parse("GBP").unwrap());
        assert_eq!(from_insights(gbp, &insights), Some(Verdict::High));
        let none = PriceInsights {
            lowest: None,
            level: None,
            typical_range: None,
            history: Vec::new(),
        };
        assert_eq!(from_insights(eur(1), &none), None);
        // Then the history.
        let history = daily(30, |_| 200_00);
        assert_eq!(
            verdict(eur(100_00), Some(&none), &history, now()),
            Verdict::Low
        );
        assert_eq!(
            verdict(eur(100_00), Some(&insights), &history, now()),
            Verdict::Low
        );
        assert_eq!(verdict(eur(100_00), None, &[], now()), Verdict::Unknown);
    }

    #[test]
    fn serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&Verdict::Unknown).unwrap(),
            "\"unknown\""
        );
        assert_eq!(Verdict::Typical.to_string(), "typical");
    }
}
