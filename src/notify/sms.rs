//! STUB — to be implemented (helper: twilio). The public API below is the contract.
//!
//! The alert text: always one GSM-7 segment (160 characters).

use jiff::civil::Date;

use crate::domain::Money;

/// Longest body that fits one GSM-7 SMS segment.
pub const MAX_SINGLE_SEGMENT: usize = 160;

/// What an alert says.
#[derive(Clone, Debug)]
pub struct AlertText<'a> {
    /// `LHR|LGW-JFK` style route name.
    pub route: &'a str,
    /// The row label, if any (dropped first when space is short).
    pub label: Option<&'a str>,
    /// Departure date of the cheapest fare.
    pub depart: Date,
    /// Return date of the cheapest fare, for round trips.
    pub return_date: Option<Date>,
    /// The price found.
    pub price: Money,
    /// The user's maximum.
    pub max_price: Money,
}

/// Renders the alert in at most [`MAX_SINGLE_SEGMENT`] GSM-7 septets.
pub fn render(text: &AlertText<'_>) -> String {
    let _ = text;
    todo!()
}

/// Septets `s` takes in GSM-7, or `None` if it needs UCS-2.
pub fn gsm7_len(s: &str) -> Option<usize> {
    let _ = s;
    todo!()
}
