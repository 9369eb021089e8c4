//! An offline, deterministic fare source for `--demo` and for benchmarks.
//!
//! Prices are a pure function of the lookup (a hash of the route picks a
//! base fare, the date nudges it up or down), so two runs on the same day
//! see the same prices and a demo needs no keys and no network. A fixed
//! simulated latency makes the concurrency of a cycle visible.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;

use super::{FareSource, Limits, UpstreamError};
use crate::domain::{LookupKey, Money, Quote};

/// Simulated upstream latency of one demo lookup: long enough that a
/// sequential cycle would be visibly slow, short enough for a quick demo.
pub const DEMO_LATENCY: Duration = Duration::from_millis(150);

/// The demo source.
#[derive(Debug, Clone)]
pub struct DemoSource {
    latency: Duration,
}

impl Default for DemoSource {
    fn default() -> Self {
        Self::new(DEMO_LATENCY)
    }
}

impl DemoSource {
    /// A demo source answering after `latency`.
    pub fn new(latency: Duration) -> Self {
        Self { latency }
    }

    /// The price the demo source quotes for `key` (pure; used by tests to pick thresholds).
    pub fn price_for(key: &LookupKey) -> Money {
        let route_hash = stable_hash(&(key.origin.as_str(), key.destination.as_str()));
        let date_hash = stable_hash(&(
            key.depart.to_string(),
            key.return_date.map(|d| d.to_string()),
        ));
        // A base fare of 80..600 in the major unit, moved by -15%..+15% per date.
        let base = 80 + (route_hash % 521) as i64;
        let swing = (date_hash % 31) as i64 - 15;
        let mut major_cents = base * (100 + swing);
        if key.return_date.is_some() {
            major_cents = major_cents * 18 / 10;
        }
        major_cents *= i64::from(key.adults.max(1));
        // major_cents is in hundredths of the major unit; rescale to the currency's exponent.
        let minor = match key.currency.exponent() {
            0 => major_cents / 100,
            3 => major_cents * 10,
            _ => major_cents,
        };
        Money::from_minor(minor, key.currency)
    }
}

/// FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`'s seed guarantees.
fn stable_hash<T: Hash>(value: &T) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    value.hash(&mut h);
    h.finish()
}

#[async_trait]
impl FareSource for DemoSource {
    fn name(&self) -> &'static str {
        "demo"
    }

    fn default_limits(&self) -> Limits {
        Limits {
            max_concurrency: 64,
            rate_per_sec: 0.0,
            timeout: Duration::from_secs(10),
        }
    }

    async fn cheapest(&self, key: &LookupKey) -> Result<Option<Quote>, UpstreamError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(Some(Quote {
            price: Self::price_for(key),
            provider: "demo".to_owned(),
            fetched_at: jiff::Timestamp::now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Iata};

    fn key(day: &str) -> LookupKey {
        LookupKey {
            origin: Iata::parse("LHR").unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: day.parse().unwrap(),
            return_date: None,
            adults: 1,
            currency: Currency::EUR,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn prices_are_deterministic_and_vary_by_date() {
        let source = DemoSource::default();
        let a = source.cheapest(&key("2027-03-01")).await.unwrap().unwrap();
        let b = source.cheapest(&key("2027-03-01")).await.unwrap().unwrap();
        assert_eq!(a.price, b.price);
        let prices: std::collections::HashSet<i64> = (1..=9)
            .map(|d| DemoSource::price_for(&key(&format!("2027-03-0{d}"))).minor)
            .collect();
        assert!(prices.len() > 3, "dates should move the price: {prices:?}");
        assert!(prices.iter().all(|p| (80 * 85..=600 * 115).contains(p)));
    }
}
