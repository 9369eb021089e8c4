//! Travelpayouts' (Aviasales Data API v3) JSON: only the fields farewatch
//! reads, private to this provider.
//!
//! Every reply, success or failure, comes in one envelope:
//! `{"success": bool, "data": [...] | {}, "currency": "usd", "error": "..."}`.
//! `data` is a list of cached prices on success and an empty object on
//! failure, so it is read by hand rather than as a plain `Vec`.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
use crate::upstream::wire::{Amount, Lenient, Text};

// ----- success path -------------------------------------------------------

/// `GET /aviasales/v3/prices_for_dates` reply.
#[derive(Deserialize)]
pub(super) struct Envelope {
    /// `false` when the request was refused; missing counts as `true`
    /// (judged by `data` and the HTTP status instead).
    #[serde(default)]
    pub(super) success: Option<bool>,
    #[serde(default)]
    pub(super) data: Items,
    /// The prices' currency, lower case (`"usd"`).
    #[serde(default)]
    pub(super) currency: Option<String>,
    /// A short description when `success` is `false`.
    #[serde(default)]
    pub(super) error: Option<ErrorText>,
}

/// `data`: the price list, or nothing (`{}`, `null` or missing) on failure.
#[derive(Default)]
pub(super) struct Items(pub(super) Vec<Item>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of prices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Items::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::default())
            }
        }
        deserializer.deserialize_any(ItemsVisitor)
    }
}

/// One cached price; routes, airports and flight numbers are skipped. The
/// flight details are read leniently: malformed, they are unknown, never a
/// reason to lose the price.
#[derive(Deserialize)]
pub(super) struct Item {
    /// For all of the trip, one passenger, in the envelope's currency.
    pub(super) price: Amount,
    /// ISO 8601 with the departure airport's real local offset
    /// (`2025-05-02T17:00:00+03:00`).
    pub(super) departure_at: String,
    /// Like `departure_at`; missing or `""` on one-way prices.
    #[serde(default)]
    pub(super) return_at: Option<String>,
    /// Relative to `https://www.aviasales.com` (`/search/SVO0205LED1?t=...`).
    #[serde(default)]
    pub(super) link: Option<String>,
    /// When the price was found. Not in the documented v3 `prices_for_dates`
    /// item (other Data API endpoints have it); read if it ever appears.
    #[serde(default)]
    pub(super) found_at: Option<String>,
    /// The airline's IATA code (`"5N"`).
    #[serde(default)]
    pub(super) airline: Option<Lenient<Text>>,
    /// Stops on the outbound.
    #[serde(default)]
    pub(super) transfers: Option<Lenient<u32>>,
    /// Stops on the return (0 on one-way prices).
    #[serde(default)]
    pub(super) return_transfers: Option<Lenient<u32>>,
    /// Minutes of the outbound.
    #[serde(default)]
    pub(super) duration_to: Option<Lenient<u32>>,
    /// Minutes of the whole trip: the outbound's on a one-way price.
    #[serde(default)]
    pub(super) duration: Option<Lenient<u32>>,
}

impl Item {
    /// The airline's code, if there is one.
    pub(super) fn airline(&self) -> Option<&str> {
        let Text(code) = self.airline.as_ref()?.as_valid()?;
        Some(code)
    }

    /// `transfers`, if it is a count.
    pub(super) fn transfers(&self) -> Option<u32> {
        self.transfers.as_ref()?.as_valid().copied()
    }

    /// `return_transfers`, if it is a count.
    pub(super) fn return_transfers(&self) -> Option<u32> {
        self.return_transfers.as_ref()?.as_valid().copied()
    }

    /// The outbound's minutes: `duration_to`, else, on a one-way price,
    /// `duration`.
    pub(super) fn outbound_minutes(&self, one_way: bool) -> Option<u32> {
        let minutes = |field: &Option<Lenient<u32>>| field.as_ref()?.as_valid().copied();
        minutes(&self.duration_to).or_else(|| one_way.then(|| minutes(&self.duration)).flatten())
    }
}

/// `error`: a string in the documented envelope; anything else is kept as
/// "no description" rather than failing the reply.
pub(super) struct ErrorText(pub(super) Option<String>);

impl<'de> Deserialize<'de> for ErrorText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ErrorVisitor;
        impl<'de> Visitor<'de> for ErrorVisitor {
            type Value = ErrorText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error description")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ErrorText(Some(v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ErrorText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ErrorText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ErrorText(None))
            }
        }
        deserializer.deserialize_any(ErrorVisitor)
    }
}

// ----- error path ---------------------------------------------------------

/// The error envelope, plus `message`, which API gateways tend to use.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorText>,
    #[serde(default)]
    message: Option<ErrorText>,
}

/// One line for a person from an error reply: its `error` (or `message`),
/// or a short, sanitised excerpt of a body that could not be read.
/// `secrets` are replaced wherever the body quotes them.
pub(super) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    let described = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|parsed| {
            let error = parsed.error.and_then(|e| e.0);
            error.or_else(|| parsed.message.and_then(|m| m.0))
        })
        .filter(|message| !message.trim().is_empty());
    match described {
        Some(message) => one_line(&message, secrets, MESSAGE_CHARS),
        None => unrecognised_error_body(body, secrets),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn data_may_be_a_list_an_empty_object_or_missing() {
        let ok: Envelope = serde_json::from_str(
            r#"{"success":true,"data":[{"price":4213,"departure_at":"2025-05-02T17:00:00+03:00"}],"currency":"rub"}"#,
        )
        .unwrap();
        assert_eq!(ok.data.0.len(), 1);
        assert_eq!(ok.data.0[0].price.0, Decimal::from(4213));
        assert!(ok.data.0[0].return_at.is_none());
        let refused: Envelope =
            serde_json::from_str(r#"{"success":false,"data":{},"error":"Unauthorized"}"#).unwrap();
        assert_eq!(refused.success, Some(false));
        assert!(refused.data.0.is_empty());
        assert_eq!(refused.error.unwrap().0.as_deref(), Some("Unauthorized"));
        let bare: Envelope = serde_json::from_str(r#"{"data":null,"error":{"x":1}}"#).unwrap();
        assert!(bare.data.0.is_empty());
        assert!(bare.error.unwrap().0.is_none());
    }

    #[test]
    fn a_malformed_price_fails_the_reply() {
        let bad = serde_json::from_str::<Envelope>(
            r#"{"data":[{"price":"cheap","departure_at":"2025-05-02T17:00:00+03:00"}]}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn error_messages_are_read_or_excerpted_and_redacted() {
        assert_eq!(
            error_message(
                br#"{"success":false,"data":{},"error":"bad TOK"}"#,
                &["TOK"]
            ),
            "bad [REDACTED]"
        );
        assert_eq!(
            error_message(br#"{"message":"API rate limit exceeded"}"#, &[]),
            "API rate limit exceeded"
        );
        assert_eq!(
            error_message(b"<html>\n<p>TOK</p>", &["TOK"]),
            "unrecognised error body: <html> <p>[REDACTED]</p>"
        );
    }
}
