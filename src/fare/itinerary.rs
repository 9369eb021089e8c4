//! What the fare sources share to describe the flights behind a quote
//! ([`crate::domain::Itinerary`]) and to honour a lookup's stop limit
//! ([`crate::domain::LookupKey::max_stops`]). Reading each provider's JSON
//! stays in its own `wire` module; only these small rules are common.

use jiff::{Span, SpanTotal, Unit};

use crate::domain::Itinerary;

/// `itinerary`, unless the provider said nothing about the flights at all.
pub(crate) fn known(itinerary: Itinerary) -> Option<Itinerary> {
    (itinerary != Itinerary::default()).then_some(itinerary)
}

/// Whether an offer with `stops` stops on a leg is within `max` (no limit:
/// always).
pub(crate) fn within(stops: usize, max: Option<u8>) -> bool {
    max.is_none_or(|max| stops <= usize::from(max))
}

/// A count of stops as the quote carries it; `None` for a count no real
/// itinerary has (more than 255), rather than a wrong number.
pub(crate) fn stops(count: usize) -> Option<u8> {
    u8::try_from(count).ok()
}

/// The airlines of a leg, each once, in the order they fly, joined with
/// `", "`: `"Air Canada, United"`. Blank names are skipped; `None` when
/// nothing is left.
pub(crate) fn airlines<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        let name = name.trim();
        if !name.is_empty() && !seen.contains(&name) {
            seen.push(name);
        }
    }
    (!seen.is_empty()).then(|| seen.join(", "))
}

/// An ISO 8601 duration (`PT11H45M`, `PT8H`, Duffel's `PT02H26M`,
/// `P1DT2H`) in whole minutes, rounded to the nearest; days count as 24
/// hours. `None` for anything else, a negative duration, or one in months
/// or years (which no flight takes).
pub(crate) fn iso_duration_minutes(raw: &str) -> Option<u32> {
    let span: Span = raw.trim().parse().ok()?;
    if span.is_negative() {
        return None;
    }
    let minutes = span
        .total(SpanTotal::from(Unit::Minute).days_are_24_hours())
        .ok()?
        .round();
    // `as` saturates; the range check keeps an absurd value from passing.
    (0.0..=f64::from(u32::MAX))
        .contains(&minutes)
        .then_some(minutes as u32)
}

/// Whole seconds as whole minutes, rounded to the nearest.
pub(crate) fn seconds_to_minutes(seconds: u64) -> Option<u32> {
    u32::try_from(seconds.saturating_add(30) / 60).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_keeps_offers_with_at_most_that_many_stops() {
        assert!(within(3, None));
        assert!(within(0, Some(0)));
        assert!(!within(1, Some(0)));
        assert!(within(2, Some(2)));
        assert!(!within(300, Some(255)));
    }

    #[test]
    fn airlines_are_listed_once_in_order() {
        assert_eq!(
            airlines(["Air Canada", "United", " Air Canada", "United"]).as_deref(),
            Some("Air Canada, United")
        );
        assert_eq!(airlines(["BA"]).as_deref(), Some("BA"));
        assert_eq!(airlines(["", " "]), None);
        assert_eq!(airlines([]), None);
    }

    #[test]
    fn iso_durations_become_minutes() {
        assert_eq!(iso_duration_minutes("PT11H45M"), Some(705));
        assert_eq!(iso_duration_minutes("PT8H"), Some(480));
        assert_eq!(iso_duration_minutes("PT02H26M"), Some(146));
        assert_eq!(iso_duration_minutes("P1DT2H5M"), Some(26 * 60 + 5));
        assert_eq!(iso_duration_minutes("PT45M29S"), Some(45));
        assert_eq!(iso_duration_minutes("PT45M30S"), Some(46));
        assert_eq!(iso_duration_minutes("-PT1H"), None);
        assert_eq!(iso_duration_minutes("P1M"), None);
        assert_eq!(iso_duration_minutes("soon"), None);
        assert_eq!(iso_duration_minutes(""), None);
    }

    #[test]
    fn seconds_round_to_minutes() {
        assert_eq!(seconds_to_minutes(38_400), Some(640));
        assert_eq!(seconds_to_minutes(89), Some(1));
        assert_eq!(seconds_to_minutes(0), Some(0));
    }
}
