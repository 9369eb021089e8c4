//! Lenient JSON reading that several providers' `wire` modules share. The
//! wire types themselves stay private to each provider; only these
//! building blocks are common.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
