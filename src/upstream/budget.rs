//! Daily budgets of paid searches per provider (`SERPAPI_DAILY_BUDGET=...`).
//!
//! Paid APIs bill per search, so a budget counts every request actually sent
//! (retries included) and refuses the request that would exceed it. Days are
//! UTC days. The count lives in memory while a process runs and is saved to
//! the state store after each cycle ([`Budget::spent_today`] and
//! [`Budget::seed`]), so separate cron runs share one day's budget.
//!
//! The day comes from a [`DayClock`] that advances with tokio's clock, so a
//! test crosses midnight with `tokio::time::advance`.

use std::sync::Mutex;

use jiff::civil::Date;
use jiff::Timestamp;

/// Wall-clock days that advance with tokio's clock (and so with a paused one).
#[derive(Debug, Clone, Copy)]
pub struct DayClock {
    origin: Timestamp,
    origin_instant: tokio::time::Instant,
}

impl DayClock {
    /// A clock reading the real time now.
    pub fn system() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// A clock that reads `start` now and moves with tokio's clock.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            origin: start,
            origin_instant: tokio::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now() - self.origin_instant;
        jiff::SignedDuration::try_from(elapsed)
            .ok()
            .and_then(|d| self.origin.checked_add(d).ok())
            .unwrap_or(self.origin)
    }

    /// Today's UTC date.
    pub fn today(&self) -> Date {
        self.now().to_zoned(jiff::tz::TimeZone::UTC).date()
    }
}

/// One provider's daily allowance of requests.
#[derive(Debug)]
pub struct Budget {
    per_day: u64,
    clock: DayClock,
    state: Mutex<(Date, u64)>,
}

impl Budget {
    /// A budget of `per_day` requests per UTC day.
    pub fn new(per_day: u64, clock: DayClock) -> Self {
        let today = clock.today();
        Self {
            per_day,
            clock,
            state: Mutex::new((today, 0)),
        }
    }

    /// Sets today's count from what earlier runs spent (if they spent it today).
    pub fn seed(&self, day: Date, spent: u64) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if day == self.clock.today() {
            *state = (day, spent.max(state.1));
        }
    }

    /// Takes one request from today's budget; `false` when it is spent.
    pub fn try_spend(&self) -> bool {
        let today = self.clock.today();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 != today {
            *state = (today, 0);
        }
        if state.1 >= self.per_day {
            return false;
        }
        state.1 += 1;
        true
    }

    /// The day and the requests spent on it so far.
    pub fn spent_today(&self) -> (Date, u64) {
        let today = self.clock.today();
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 == today {
            *state
        } else {
            (today, 0)
        }
    }

    /// The daily allowance.
    pub fn per_day(&self) -> u64 {
        self.per_day
    }

    /// Requests left today.
    pub fn remaining(&self) -> u64 {
        self.per_day.saturating_sub(self.spent_today().1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn clock_at(ts: &str) -> DayClock {
        DayClock::starting_at(ts.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_refuses_until_the_next_utc_day() {
        let budget = Budget::new(3, clock_at("2026-11-24T23:00:00Z"));
        assert!(budget.try_spend() && budget.try_spend() && budget.try_spend());
        assert!(
            !budget.try_spend(),
            "the fourth request of the day is refused"
        );
        assert_eq!(budget.remaining(), 0);
        tokio::time::advance(Duration::from_secs(59 * 60)).await;
        assert!(!budget.try_spend(), "23:59 is still the same day");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(budget.spent_today().0.to_string(), "2026-11-25");
        assert_eq!(budget.remaining(), 3);
        assert!(budget.try_spend());
        assert_eq!(budget.spent_today().1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn seeding_carries_an_earlier_runs_spending_but_not_yesterdays() {
        let budget = Budget::new(10, clock_at("2026-11-24T12:00:00Z"));
        budget.seed("2026-11-23".parse().unwrap(), 9);
        assert_eq!(
            budget.remaining(),
            10,
            "yesterday's count does not carry over"
        );
        budget.seed("2026-11-24".parse().unwrap(), 9);
        assert_eq!(budget.remaining(), 1);
        assert!(budget.try_spend());
        assert!(!budget.try_spend());
    }
}
