//! Lenient JSON reading that several providers' `wire` modules share. The
//! wire types themselves stay private to each provider; only these
//! building blocks are common.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A value that is kept when it has the expected shape and dropped
/// otherwise, instead of failing the whole reply.
///
/// Untagged, so serde buffers the value to try it: use it for fields and
/// list entries, not for a whole large reply.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Lenient<T> {
    Valid(T),
    Invalid(IgnoredAny),
}

impl<T> Lenient<T> {
    /// The value, if it had the expected shape.
    pub(crate) fn valid(self) -> Option<T> {
        match self {
            Lenient::Valid(value) => Some(value),
            Lenient::Invalid(_) => None,
        }
    }

    /// A reference to the value, if it had the expected shape.
    pub(crate) fn as_valid(&self) -> Option<&T> {
        match self {
            Lenient::Valid(value) => Some(value),
            Lenient::Invalid(_) => None,
        }
    }
}

/// A lenient part kept as JSON text (`Option<&RawValue>`), read only when
/// needed: `None` when it is missing or does not have `T`'s shape. Unlike
/// [`Lenient`], nothing is buffered: serde scans the text straight into `T`.
pub(crate) fn read_raw<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    read_text(raw.map(RawValue::get))
}

/// [`read_raw`] on a part's JSON text (as [`super::scan`] hands it back).
pub(crate) fn read_text<'a, T: Deserialize<'a>>(text: Option<&'a str>) -> Option<T> {
    serde_json::from_str(text?).ok()
}

/// A short text field: a JSON string, or an integer written as one (a gate
/// `12`, or an error code `38190` that the same provider sends as
/// `"38191"` elsewhere).
pub(crate) struct Text(pub(crate) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: a missing key
/// stays `None`, a `null` becomes `Some(None)`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The text without its padding, or `None` when nothing is left (an empty
/// string means "unknown" in every provider's JSON).
pub(crate) fn non_blank(text: Option<String>) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_owned())
    }
}

/// A lenient text field, trimmed, or `None` when missing, malformed or blank.
pub(crate) fn text(field: Option<Lenient<Text>>) -> Option<String> {
    non_blank(field?.valid().map(|Text(value)| value))
}

/// A price sent as a JSON number or, to be lenient, a numeric string, kept
/// as a decimal so a fraction is never lost to `f64` arithmetic later.
///
/// serde_json hands a fraction over as the nearest `f64`; its shortest
/// round-trip text gives back the digits as written for any price of up to
/// 15 significant digits, and [`crate::domain::Money::from_decimal`] then
/// rounds to the currency's minor unit, which also absorbs the last-bit
/// error serde_json's fast float parser may make. Integers never pass
/// through `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Amount(pub(crate) Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("price {v} is not a finite number")));
                }
                Decimal::from_str(&v.to_string())
                    .map(Amount)
                    .map_err(|_| E::custom(format!("price {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Decimal::from_str(v.trim())
                    .map(Amount)
                    .map_err(|_| E::custom(format!("price `{v}` is not a number")))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> Decimal {
        serde_json::from_str::<Amount>(json).unwrap().0
    }

    #[test]
    fn prices_keep_the_digits_as_written() {
        assert_eq!(amount("54").to_string(), "54");
        assert_eq!(amount("-3"), Decimal::from(-3));
        assert_eq!(amount("271.35").to_string(), "271.35");
        assert_eq!(amount("612.50").to_string(), "612.5");
        assert_eq!(amount("557705").to_string(), "557705");
        assert_eq!(amount(r#""402.18""#).to_string(), "402.18");
        assert_eq!(amount("\" 612.50 \""), Decimal::new(61250, 2));
        assert_eq!(amount("1e3").to_string(), "1000");
        assert!(serde_json::from_str::<Amount>("true").is_err());
        assert!(serde_json::from_str::<Amount>(r#""cheap""#).is_err());
        assert!(serde_json::from_str::<Amount>(r#""$920""#).is_err());
    }

    #[test]
    fn every_cent_amount_survives_the_trip_through_f64() {
        // Every amount from 0.00 to 2,000.00, a stride up to 1,000,000.00,
        // then huge ones: what arrives is what was written, to the cent.
        let gbp = crate::domain::Currency::parse("GBP").unwrap();
        let stride = (2_000_00..1_000_000_00_i64).step_by(997);
        let huge = (0..1_000).map(|i| 9_999_999_999_00_i64 - i * 7_777_777);
        for minor in (0..=2_000_00_i64).chain(stride).chain(huge) {
            let json = format!("{}.{:02}", minor / 100, minor % 100);
            let money = crate::domain::Money::from_decimal(amount(&json), gbp).unwrap();
            assert_eq!(money.minor, minor, "{json}");
        }
    }

    #[derive(Deserialize)]
    struct Record {
        #[serde(default)]
        gate: Option<Lenient<Text>>,
        #[serde(default, deserialize_with = "present")]
        data: Option<Option<Vec<u8>>>,
    }

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_is_a_string_or_an_integer_and_anything_else_is_dropped_alone() {
        assert_eq!(
            text(record(r#"{"gate":" B12 "}"#).gate).as_deref(),
            Some("B12")
        );
        assert_eq!(text(record(r#"{"gate":12}"#).gate).as_deref(), Some("12"));
        assert_eq!(text(record(r#"{"gate":-3}"#).gate).as_deref(), Some("-3"));
        assert_eq!(text(record(r#"{"gate":["1"]}"#).gate), None);
        assert_eq!(text(record(r#"{"gate":1.5}"#).gate), None);
        assert_eq!(text(record(r#"{"gate":""}"#).gate), None);
        assert_eq!(text(record(r#"{"gate":null}"#).gate), None);
        assert_eq!(text(record("{}").gate), None);
    }

    #[test]
    fn missing_and_null_differ() {
        assert!(record("{}").data.is_none());
        assert!(matches!(record(r#"{"data":null}"#).data, Some(None)));
        assert_eq!(record(r#"{"data":[1]}"#).data, Some(Some(vec![1])));
    }

    #[test]
    fn padding_is_trimmed_and_blank_is_none() {
        assert_eq!(
            non_blank(Some("TAP583  ".into())).as_deref(),
            Some("TAP583")
        );
        assert_eq!(non_blank(Some("EDDF".into())).as_deref(), Some("EDDF"));
        assert_eq!(non_blank(Some("        ".into())), None);
        assert_eq!(non_blank(None), None);
    }
}
