//! SerpApi's Google Flights JSON: only the fields farewatch reads, private to this provider.
//!
//! A reply carries far more than an alert needs (layovers, emissions,
//! airports); everything but the prices, each itinerary's legs (for their
//! airlines and number) and total duration, `price_insights`, the Google
//! Flights link and the echoed currency is skipped unread.
//!
//! Reading is strict where a wrong value would mislead (an itinerary's
//! `price` that is present but not a number fails the reply) and lenient
//! where it would only cost context: a malformed `price_insights` field, link,
//! history point, leg or duration is dropped, never a reason to lose the quote.

use serde::de::Deserializer;
use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
pub(super) use crate::upstream::wire::Lenient;
use crate::upstream::wire::{Amount, Text};

// ----- success path -------------------------------------------------------

/// `GET /search.json?engine=google_flights` reply.
#[derive(Deserialize)]
pub(super) struct SearchReply {
    /// Present (with HTTP 200) when Google Flights found nothing.
    #[serde(default)]
    pub(super) error: Option<Lenient<String>>,
    #[serde(default)]
    pub(super) search_metadata: Option<Lenient<Metadata>>,
    #[serde(default)]
    pub(super) search_parameters: Option<Lenient<Parameters>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) best_flights: Vec<Itinerary>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) other_flights: Vec<Itinerary>,
    #[serde(default)]
    pub(super) price_insights: Option<Lenient<Insights>>,
}

/// `search_metadata`; only the link to the same search on Google Flights is read.
#[derive(Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub(super) google_flights_url: Option<Lenient<String>>,
}

/// `search_parameters`, SerpApi's echo of the request. Its numbers may come
/// back as strings (`"type": "1"`), so only the currency is read.
#[derive(Deserialize)]
pub(super) struct Parameters {
    #[serde(default)]
    pub(super) currency: Option<Lenient<String>>,
}

/// One entry of `best_flights` or `other_flights`: the outbound flights
/// (for a round trip, the return comes from a `departure_token` follow-up).
#[derive(Deserialize)]
pub(super) struct Itinerary {
    /// The whole trip's price (round-trip total for `type=1`); sometimes
    /// absent, which means "no price", never zero.
    #[serde(default)]
    pub(super) price: Option<Amount>,
    /// The legs flown, in order; one leg is a direct flight. Malformed, the
    /// itinerary's flights are unknown, not its price.
    #[serde(default)]
    pub(super) flights: Option<Lenient<Vec<Lenient<Leg>>>>,
    /// Minutes from the first departure to the last arrival, layovers included.
    #[serde(default)]
    pub(super) total_duration: Option<Lenient<u32>>,
}

impl Itinerary {
    /// The legs, or `None` when the list is missing, empty or has a leg that
    /// cannot be read (an unknown number of stops, not a direct flight).
    pub(super) fn legs(&self) -> Option<Vec<&Leg>> {
        let legs = self.flights.as_ref()?.as_valid()?;
        let legs: Option<Vec<&Leg>> = legs.iter().map(Lenient::as_valid).collect();
        legs.filter(|legs| !legs.is_empty())
    }

    /// `total_duration`, if it is a number of minutes.
    pub(super) fn total_minutes(&self) -> Option<u32> {
        self.total_duration.as_ref()?.as_valid().copied()
    }
}

/// One flight of an itinerary; only its airline is read.
#[derive(Deserialize)]
pub(super) struct Leg {
    /// The marketing airline's name (`"Air Canada"`).
    #[serde(default)]
    pub(super) airline: Option<Lenient<Text>>,
}

impl Leg {
    /// The airline's name, if there is one.
    pub(super) fn airline(&self) -> Option<&str> {
        let Text(name) = self.airline.as_ref()?.as_valid()?;
        Some(name)
    }
}

/// `price_insights`: Google's verdict on the price. Every field is optional
/// and dropped if malformed.
#[derive(Deserialize)]
pub(super) struct Insights {
    #[serde(default)]
    pub(super) lowest_price: Option<Lenient<Amount>>,
    /// `"low"`, `"typical"` or `"high"`.
    #[serde(default)]
    pub(super) price_level: Option<Lenient<String>>,
    /// `[low, high]`.
    #[serde(default)]
    pub(super) typical_price_range: Option<Lenient<(Amount, Amount)>>,
    /// `[[unix_seconds, price], ...]`, oldest first.
    #[serde(default)]
    pub(super) price_history: Option<Lenient<Vec<HistoryPoint>>>,
}

/// One `[unix_seconds, price]` point of `price_history`; a malformed point
/// is dropped on its own.
pub(super) type HistoryPoint = Lenient<(i64, Amount)>;

/// `null` or a missing key as an empty list.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

// ----- error path ---------------------------------------------------------

/// SerpApi's one error shape: `{"error": "human-readable message"}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<Lenient<String>>,
}

/// One line for a person from an error reply: SerpApi's message, or a
/// short, sanitised excerpt of a body that could not be read. `secrets`
/// are replaced wherever the body quotes them.
pub(super) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    match serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|parsed| parsed.error)
        .and_then(Lenient::valid)
    {
        Some(message) if !message.trim().is_empty() => one_line(&message, secrets, MESSAGE_CHARS),
        _ => unrecognised_error_body(body, secrets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_insights_fields_are_dropped_one_by_one() {
        let insights: Insights = serde_json::from_str(
            r#"{"lowest_price":"n/a","price_level":"low","typical_price_range":[1],
                "price_history":[[1746374400,956],["x",1],[1746460800,950]]}"#,
        )
        .unwrap();
        assert!(insights.lowest_price.unwrap().valid().is_none());
        assert_eq!(insights.price_level.unwrap().valid().unwrap(), "low");
        assert!(insights.typical_price_range.unwrap().valid().is_none());
        let history = insights.price_history.unwrap().valid().unwrap();
        let points: Vec<_> = history.into_iter().filter_map(Lenient::valid).collect();
        assert_eq!(points.len(), 2);
    }

    #[test]
    fn error_messages_are_read_or_excerpted_and_redacted() {
        assert_eq!(
            error_message(br#"{"error":"Invalid API key for KEY123."}"#, &["KEY123"]),
            "Invalid API key for [REDACTED]."
        );
        assert_eq!(
            error_message(b"<html>\n<p>KEY123</p>", &["KEY123"]),
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
        assert_eq!(
            error_message(b"", &[]),
            "unrecognised error body: (empty body)"
        );
    }
}
