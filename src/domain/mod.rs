//! Domain types, parsed once at the edge (sheet rows, provider JSON) and
//! trusted everywhere after that.
//!
//! Nothing in here does IO. Each type has a `parse` constructor that says
//! what was wrong and what was expected, so the sheet reader can turn the
//! message straight into a `routes.csv:LINE: column: ...` report.

mod iata;
mod lookup;
mod money;
mod phone;
mod quote;
mod recipient;

pub use iata::Iata;
pub use lookup::{DateRange, LookupKey};
pub use money::{Currency, Money, MoneyError};
pub use phone::E164;
pub use quote::{Itinerary, PriceInsights, PriceLevel, Quote};
pub use recipient::{ChannelKind, Recipient};
