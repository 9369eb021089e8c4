//! A cycle's routes while their lookups land: which are still waiting and
//! what each has gathered, held compactly.
//!
//! A route's [`Gathering`] (its best quote and its errors, ~90 bytes) only
//! exists between its first lookup landing and its decision: a route with
//! one lookup, the usual row, never holds one while it waits. Before, every
//! route held a boxed gathering from the cycle's start, ~100 bytes a route
//! at the cycle's peak.

use std::collections::HashMap;
use std::sync::Arc;

use super::plan::Gathering;
use crate::domain::{LookupKey, Quote};
use crate::fare::failover::AllFailed;

/// Per route: the lookups it asked for; and the gatherings of the routes
/// with some (or all, not yet decided) lookups landed.
pub(super) struct Gatherings {
    /// Lookups per route, by index in the cycle (a sheet's row asks at most
    /// [`crate::route::MAX_LOOKUPS_PER_ROW`]).
    lookups: Vec<u32>,
    /// Routes with lookups landed, by index.
    started: HashMap<usize, Gathering>,
}

impl Gatherings {
    /// For `routes` routes, none asking anything yet.
    pub(super) fn new(routes: usize) -> Self {
        Self {
            lookups: vec![0; routes],
            started: HashMap::new(),
        }
    }

    /// Route `index` asks `lookups` distinct lookups.
    pub(super) fn asks(&mut self, index: usize, lookups: usize) {
        self.lookups[index] = u32::try_from(lookups).expect("fewer than 2^32 lookups a route");
    }

    /// Route `index` asks nothing (its dates have passed): complete at once.
    pub(super) fn asks_nothing(&self, index: usize) -> bool {
        self.lookups[index] == 0
    }

    /// Folds `result` for `key` into route `index`; true when that was its
    /// last lookup.
    pub(super) fn land(
        &mut self,
        index: usize,
        key: &LookupKey,
        result: &Result<Option<Arc<Quote>>, AllFailed>,
    ) -> bool {
        let asked = self.lookups[index] as usize;
        let gathering = self.started.entry(index).or_insert_with(|| Gathering {
            pending: asked,
            lookups: asked,
            best: None,
            errors: Vec::new(),
        });
        gathering.land(key, result);
        gathering.pending == 0
    }

    /// What route `index` gathered, for its decision (empty when it asked
    /// nothing).
    pub(super) fn take(&mut self, index: usize) -> Gathering {
        self.started.remove(&index).unwrap_or_else(|| Gathering {
            lookups: self.lookups[index] as usize,
            ..Gathering::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Iata, Money};

    fn key(origin: &str) -> LookupKey {
        LookupKey {
            origin: Iata::parse(origin).unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: "2030-05-01".parse().unwrap(),
            return_date: None,
            adults: 1,
            currency: Currency::parse("GBP").unwrap(),
            max_stops: None,
        }
    }

    fn quote(minor: i64) -> Result<Option<Arc<Quote>>, AllFailed> {
        Ok(Some(Arc::new(Quote {
            price: Money::from_minor(minor, Currency::parse("GBP").unwrap()),
            provider: "amadeus".into(),
            fetched_at: jiff::Timestamp::UNIX_EPOCH,
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        })))
    }

    #[test]
    fn a_route_holds_a_gathering_only_between_its_first_lookup_and_its_decision() {
        let mut gatherings = Gatherings::new(3);
        gatherings.asks(0, 2);
        gatherings.asks(1, 1);
        assert!(gatherings.asks_nothing(2));
        assert!(gatherings.started.is_empty(), "nothing held while waiting");

        assert!(!gatherings.land(0, &key("LHR"), &quote(500)));
        assert!(gatherings.land(1, &key("LHR"), &quote(500)));
        assert!(gatherings.land(0, &key("LGW"), &quote(400)));
        let first = gatherings.take(0);
        assert_eq!((first.lookups, first.pending), (2, 0));
        assert_eq!(first.best.unwrap().0.price.minor, 400, "the cheaper of two");
        assert_eq!(gatherings.take(1).lookups, 1);
        let nothing = gatherings.take(2);
        assert_eq!((nothing.lookups, nothing.best.is_none()), (0, true));
        assert!(gatherings.started.is_empty(), "nothing held once decided");
    }
}
