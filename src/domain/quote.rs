use jiff::Timestamp;

use super::Money;

/// The cheapest price one provider gave for one [`super::LookupKey`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quote {
    /// The total price for all passengers, taxes and fees included.
    pub price: Money,
    /// Which provider answered (`"amadeus"`, `"demo"`, ...).
    pub provider: String,
    /// When the provider was asked.
    pub fetched_at: Timestamp,
    /// Whether the provider serves cached prices rather than a live search
    /// (Travelpayouts serves prices other users found in the last days).
    pub cached: bool,
    /// For a cached price: when the provider found it, so its age can be shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_at: Option<Timestamp>,
    /// A booking or search link, where the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Google's view of the price, where the provider passes it on (SerpApi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights: Option<PriceInsights>,
    /// The flights behind the price, where the provider says which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itinerary: Option<Itinerary>,
}

/// The flights behind a quote, where the provider says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Itinerary {
    /// The operating/marketing airline(s) of the outbound, e.g. "British Airways" or "BA" (names where the provider gives names, else IATA codes; several joined with ", ").
    pub airline: Option<String>,
    /// Stops on the outbound (0 = direct).
    pub stops: Option<u8>,
    /// Outbound travel time, in minutes (first departure to last arrival).
    pub duration_minutes: Option<u32>,
}

/// Whether a price is low, typical or high for the route (Google Flights' verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceLevel {
    /// Below the typical range.
    Low,
    /// Within the typical range.
    Typical,
    /// Above the typical range.
    High,
}

/// Price context a provider gives with its answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriceInsights {
    /// The lowest price currently available for the search.
    pub lowest: Option<Money>,
    /// Low, typical or high.
    pub level: Option<PriceLevel>,
    /// The usual price range for the route, low to high.
    pub typical_range: Option<(Money, Money)>,
    /// Past lowest prices, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(Timestamp, Money)>,
}
