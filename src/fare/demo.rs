//! An offline, deterministic fare source for `--demo` and for benchmarks.
//!
//! Prices are a pure function of the lookup (a hash of the route picks a
//! base fare, the date nudges it up or down), so two runs on the same day
//! see the same prices and a demo needs no keys and no network. So are the
//! flights behind them: an airline, 0 to 2 stops and a duration, with a
//! stop limit met by a dearer itinerary with fewer stops. A fixed
//! simulated latency makes the concurrency of a cycle visible.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;

use super::{FareSource, Limits, UpstreamError};
use crate::domain::{Itinerary, LookupKey, Money, Quote};

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
    ///
    /// Without a stop limit this is the cheapest demo itinerary's price.
    /// A limit below that itinerary's stops gets the best one within it,
    /// dearer by [`FEWER_STOPS_SURCHARGE_PCT`] per stop avoided, as direct
    /// flights usually are.
    pub fn price_for(key: &LookupKey) -> Money {
        let cheapest = Self::cheapest_price(key);
        let avoided = i64::from(cheapest_stops(key) - stops_within(key));
        let percent = 100 + FEWER_STOPS_SURCHARGE_PCT * avoided;
        Money::from_minor(cheapest.minor * percent / 100, cheapest.currency)
    }

    /// The flights behind [`DemoSource::price_for`] (pure): a plausible
    /// airline, 0 to 2 stops (never more than `key.max_stops`), and a
    /// duration that grows with the stops.
    pub fn itinerary_for(key: &LookupKey) -> Itinerary {
        let route = (key.origin.as_str(), key.destination.as_str());
        let stops = stops_within(key);
        let airline = AIRLINES[(stable_hash(&(route, stops)) % AIRLINES.len() as u64) as usize];
        // A direct flight of 1 to 11 hours, in 5-minute steps, for the route.
        let direct = 60 + (stable_hash(&(route, "duration")) % 121) as u32 * 5;
        // Each stop: a connection of 50 to 170 minutes and a 40-minute detour.
        let per_stop = 90 + (stable_hash(&(route, "layover")) % 25) as u32 * 5;
        Itinerary {
            airline: Some(airline.to_owned()),
            stops: Some(stops),
            duration_minutes: Some(direct + u32::from(stops) * per_stop),
        }
    }

    /// The cheapest itinerary's price, whatever its stops.
    fn cheapest_price(key: &LookupKey) -> Money {
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

/// How much dearer, in percent, each stop fewer than the cheapest demo
/// itinerary's makes a fare.
pub const FEWER_STOPS_SURCHARGE_PCT: i64 = 12;

/// The airlines demo itineraries fly.
const AIRLINES: [&str; 8] = [
    "British Airways",
    "Lufthansa",
    "Air France",
    "KLM",
    "United",
    "Delta",
    "Iberia",
    "Turkish Airlines",
];

/// Stops on the cheapest demo itinerary for `key`'s route and dates: 0 to 2.
fn cheapest_stops(key: &LookupKey) -> u8 {
    let hash = stable_hash(&(
        key.origin.as_str(),
        key.destination.as_str(),
        key.depart.to_string(),
        key.return_date.map(|d| d.to_string()),
        "stops",
    ));
    (hash % 3) as u8
}

/// Stops on the itinerary the demo quotes for `key`: the cheapest's, or
/// the limit when that is lower.
fn stops_within(key: &LookupKey) -> u8 {
    let cheapest = cheapest_stops(key);
    key.max_stops.map_or(cheapest, |max| max.min(cheapest))
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
            itinerary: Some(Self::itinerary_for(key)),
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
            max_stops: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn itineraries_are_deterministic_plausible_and_respect_the_stop_limit() {
        let source = DemoSource::new(Duration::ZERO);
        let mut seen_stops = std::collections::HashSet::new();
        for day in 1..=28 {
            let any = key(&format!("2027-02-{day:02}"));
            let quote = source.cheapest(&any).await.unwrap().unwrap();
            let itinerary = quote.itinerary.clone().unwrap();
            assert_eq!(
                Some(&itinerary),
                source
                    .cheapest(&any)
                    .await
                    .unwrap()
                    .unwrap()
                    .itinerary
                    .as_ref()
            );
            let stops = itinerary.stops.unwrap();
            seen_stops.insert(stops);
            assert!(stops <= 2);
            assert!(AIRLINES.contains(&itinerary.airline.as_deref().unwrap()));
            let minutes = itinerary.duration_minutes.unwrap();
            assert!((60..=16 * 60).contains(&minutes), "{minutes}");
            for max in 0..=3 {
                let limited = LookupKey {
                    max_stops: Some(max),
                    ..any
                };
                let answer = source.cheapest(&limited).await.unwrap().unwrap();
                let got = answer.itinerary.unwrap();
                assert_eq!(got.stops, Some(stops.min(max)));
                assert_eq!(answer.price, DemoSource::price_for(&limited));
                if max >= stops {
                    // The limit does not bind: the very same offer.
                    assert_eq!(answer.price, quote.price);
                    assert_eq!(got, itinerary);
                } else {
                    let avoided = i64::from(stops - max);
                    assert_eq!(
                        answer.price.minor,
                        quote.price.minor * (100 + FEWER_STOPS_SURCHARGE_PCT * avoided) / 100
                    );
                    assert!(got.duration_minutes < itinerary.duration_minutes);
                }
            }
        }
        assert_eq!(
            seen_stops.len(),
            3,
            "dates should vary the stops: {seen_stops:?}"
        );
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
