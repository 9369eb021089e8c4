//! One row of the routes sheet, parsed: what to search and whom to tell.

use std::fmt::Write as _;

use crate::domain::{Currency, DateRange, Iata, LookupKey, Recipient};
use crate::rules::Rule;

/// Most lookups one sheet row may expand to (airports × dates). A row above
/// this is reported as an error rather than silently truncated: a typo such
/// as a year-long range would otherwise spend a provider's quota.
pub const MAX_LOOKUPS_PER_ROW: usize = 100;

/// A validated sheet row.
#[derive(Clone, Debug)]
pub struct Route {
    /// The 1-based line of the row in its sheet (for reports).
    pub line: usize,
    /// Free text from the `label` column.
    pub label: Option<Box<str>>,
    /// Origin airports or cities (several joined by `|` in the sheet).
    pub origins: Vec<Iata>,
    /// Destination airports or cities.
    pub destinations: Vec<Iata>,
    /// Outbound date or range.
    pub depart: DateRange,
    /// Return date or range; `None` for one-way.
    pub return_dates: Option<DateRange>,
    /// Adult passengers.
    pub adults: u8,
    /// The alert rule (its `max_price` carries the row's currency).
    pub rule: Rule,
    /// Whom to tell: phone numbers and named channels.
    pub recipients: Vec<Recipient>,
    /// `false` rows are read and validated but never looked up.
    pub active: bool,
    /// Whose alert state this is: `None` for a sheet row, an API watch's id
    /// for that watch (so two users' watches of the same search and
    /// recipients never share, or see, each other's state).
    pub namespace: Option<std::num::NonZeroU64>,
}

impl Route {
    /// The currency prices are requested and compared in.
    pub fn currency(&self) -> Currency {
        self.rule.max_price.currency
    }

    /// Every concrete search the row expands to: origins × destinations ×
    /// departure days × return days (return not before departure).
    pub fn lookups(&self) -> Vec<LookupKey> {
        let mut out = Vec::new();
        for &origin in &self.origins {
            for &destination in &self.destinations {
                if origin == destination {
                    continue;
                }
                for depart in self.depart.days() {
                    let base = LookupKey {
                        origin,
                        destination,
                        depart,
                        return_date: None,
                        adults: self.adults,
                        currency: self.currency(),
                        max_stops: None,
                    };
                    match &self.return_dates {
                        None => out.push(base),
                        Some(range) => {
                            out.extend(range.days().filter(|r| *r >= depart).map(|r| LookupKey {
                                return_date: Some(r),
                                ..base
                            }))
                        }
                    }
                }
            }
        }
        out
    }

    /// The lookups whose departure is `today` or later: a range that
    /// started in the past keeps its identity but no longer searches old days.
    pub fn lookups_from(&self, today: jiff::civil::Date) -> Vec<LookupKey> {
        let mut keys = self.lookups();
        keys.retain(|k| k.depart >= today);
        keys
    }

    /// A stable identity for the row's alert state: what it searches and whom
    /// it tells. Editing the threshold keeps the state; changing the search
    /// or the recipients starts afresh.
    pub fn id(&self) -> String {
        // Built in one buffer: this runs once per route per cycle, and most
        // rows have one origin, one destination and one recipient.
        fn push_sorted<T: AsRef<str>>(id: &mut String, items: &[T]) {
            if let [only] = items {
                id.push_str(only.as_ref());
                return;
            }
            let mut sorted: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
            sorted.sort_unstable();
            id.push_str(&sorted.join("|"));
        }
        let mut id = String::with_capacity(64);
        if let Some(namespace) = self.namespace {
            let _ = write!(id, "w{namespace}/");
        }
        push_sorted(&mut id, &self.origins);
        id.push('>');
        push_sorted(&mut id, &self.destinations);
        let _ = write!(id, ":{}", self.depart);
        if let Some(r) = &self.return_dates {
            let _ = write!(id, ":ret {r}");
        }
        let _ = write!(id, ":a{}:{}:", self.adults, self.currency());
        let recipients: Vec<String> = self.recipients.iter().map(Recipient::to_string).collect();
        push_sorted(&mut id, &recipients);
        id
    }

    /// `LHR|LGW-JFK`: a short human name for the row's route.
    pub fn route_name(&self) -> String {
        let join = |codes: &[Iata]| codes.iter().map(Iata::as_str).collect::<Vec<_>>().join("|");
        format!("{}-{}", join(&self.origins), join(&self.destinations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;
    use crate::rules::MinDrop;

    fn route(origins: &[&str], dests: &[&str], depart: &str, ret: Option<&str>) -> Route {
        Route {
            line: 2,
            label: None,
            origins: origins.iter().map(|c| Iata::parse(c).unwrap()).collect(),
            destinations: dests.iter().map(|c| Iata::parse(c).unwrap()).collect(),
            depart: DateRange::parse(depart).unwrap(),
            return_dates: ret.map(|r| DateRange::parse(r).unwrap()),
            adults: 1,
            rule: Rule {
                max_price: Money::from_minor(100_00, Currency::EUR),
                min_drop: MinDrop::Zero,
                cooldown: None,
            },
            recipients: vec![Recipient::Phone(crate::domain::E164::from_trusted(
                "+447911123456".into(),
            ))],
            active: true,
            namespace: None,
        }
    }

    #[test]
    fn expands_to_the_product_of_airports_and_dates() {
        let r = route(&["LHR", "LGW"], &["JFK"], "2027-03-01..2027-03-03", None);
        assert_eq!(r.lookups().len(), 6);
        let rt = route(
            &["LHR"],
            &["JFK"],
            "2027-03-01..2027-03-02",
            Some("2027-03-02..2027-03-03"),
        );
        // (1st, 2nd), (1st, 3rd), (2nd, 2nd), (2nd, 3rd)
        assert_eq!(rt.lookups().len(), 4);
    }

    #[test]
    fn id_ignores_order_and_threshold() {
        let a = route(&["LHR", "LGW"], &["JFK"], "2027-03-01", None);
        let mut b = route(&["LGW", "LHR"], &["JFK"], "2027-03-01", None);
        b.rule.max_price = Money::from_minor(1, Currency::EUR);
        assert_eq!(a.id(), b.id());
        let c = route(&["LHR"], &["JFK"], "2027-03-01", None);
        assert_ne!(a.id(), c.id());
    }

    /// Saved alert state is keyed by these strings: they must never change.
    #[test]
    fn ids_are_stable_across_releases() {
        let one_way = route(&["LHR", "LGW"], &["JFK"], "2027-03-01", None);
        assert_eq!(one_way.id(), "LGW|LHR>JFK:2027-03-01:a1:EUR:+447911123456");
        let mut round_trip = route(
            &["STN"],
            &["JFK", "EWR"],
            "2027-03-01..2027-03-03",
            Some("2027-03-10"),
        );
        round_trip.adults = 2;
        round_trip.recipients.insert(
            0,
            Recipient::Channel {
                kind: crate::domain::ChannelKind::Slack,
                name: "team".into(),
            },
        );
        assert_eq!(
            round_trip.id(),
            "STN>EWR|JFK:2027-03-01..2027-03-03:ret 2027-03-10:a2:EUR:+447911123456|slack:team"
        );
    }
}
