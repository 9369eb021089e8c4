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
    /// Whether the provider serves cached prices rather than a live search.
    pub cached: bool,
    /// A booking or search link, where the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}
