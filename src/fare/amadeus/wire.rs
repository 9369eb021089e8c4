//! Amadeus's JSON: only the fields farewatch reads, private to this provider.
//!
//! The success path borrows from the body and never builds a
//! `serde_json::Value`: an ~11 KB reply with a handful of offers should cost
//! tens of microseconds. Besides `price`, only what describes the flights is
//! read (each itinerary's duration, its segments' airline codes and stops,
//! and the airline names in `dictionaries`), leniently: a malformed part is
//! unknown, never a reason to lose the price. Everything else is skipped:
//! a reply is walked by its outline ([`OffersReply::walk`], with
//! [`crate::upstream::scan`]), which crosses unread parts without parsing
//! them, and read whole by serde (the derives below) only when the walk
//! cannot follow it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
use crate::upstream::scan::{json, list, member, not_null, once, Cursor, Malformed};
use crate::upstream::wire::{read_raw, read_text};
// An error `code` comes as a number (`38190`) or a string (`"38191"`),
// depending on the error.
use crate::upstream::wire::Text as Code;

/// Longest error `code` kept from a body. Amadeus's codes are at most five
/// digits; anything longer is not one, and is cut so it cannot flood a message.
const CODE_CHARS: usize = 20;

// ----- success path -------------------------------------------------------

/// Flight Offers Search reply (`GETAirOffersReply`); `meta` and `warnings`
/// are skipped, and of `dictionaries` only the airline names are read.
#[derive(Deserialize)]
pub(super) struct OffersReply<'a> {
    #[serde(borrow)]
    pub(super) data: Vec<Offer<'a>>,
    /// Names for the codes in `data`; missing on an empty reply. Kept as
    /// text: only the cheapest offer's airlines are looked up.
    #[serde(default, borrow, deserialize_with = "raw_text")]
    dictionaries: Option<&'a str>,
}

impl<'a> OffersReply<'a> {
    /// The reply read by walking its outline ([`crate::upstream::scan`]): each offer's
    /// `price` is parsed, its `itineraries` and the `dictionaries` are kept
    /// as text, and everything else is crossed without being read. The
    /// same reply as serde's for the same JSON; what the walk cannot follow
    /// is [`Malformed`], for the caller to read with serde instead.
    pub(super) fn walk(body: &'a [u8]) -> Result<Self, Malformed> {
        Self::scan(std::str::from_utf8(body).map_err(|_| Malformed)?)
    }

    /// [`OffersReply::walk`] on text.
    fn scan(body: &'a str) -> Result<Self, Malformed> {
        let (mut data, mut dictionaries) = (None, None);
        let mut cursor = Cursor::new(body);
        cursor.object(|key, cursor| match key {
            "data" => {
                let mut offers = Vec::new();
                cursor.array(|cursor| {
                    offers.push(Offer::scan(cursor)?);
                    Ok(())
                })?;
                once(&mut data, offers)
            }
            "dictionaries" => once(&mut dictionaries, not_null(cursor.value()?)),
            _ => cursor.value().map(drop),
        })?;
        cursor.end()?;
        Ok(OffersReply {
            data: data.ok_or(Malformed)?,
            dictionaries: dictionaries.flatten(),
        })
    }

    /// The airline names of `dictionaries.carriers` (`"BRITISH AIRWAYS"`,
    /// capitals as Amadeus writes them), by code; empty when there are
    /// none or they cannot be read. A name that is not a string is skipped.
    pub(super) fn carrier_names(&self) -> HashMap<String, String> {
        let Some(dictionaries) = self.dictionaries else {
            return HashMap::new();
        };
        // Walked to `carriers` (the locations and aircraft are crossed),
        // or read whole by serde when the walk cannot follow it.
        let carriers = member(dictionaries, "carriers").unwrap_or_else(|Malformed| {
            read_text::<DictionariesText<'_>>(Some(dictionaries))
                .and_then(|d| d.carriers)
                .map(RawValue::get)
        });
        let Some(carriers) = read_text::<HashMap<String, &RawValue>>(carriers) else {
            return HashMap::new();
        };
        carriers
            .into_iter()
            .filter_map(|(code, name)| {
                let name = read_raw::<String>(Some(name))?;
                let name = name.trim();
                (!name.is_empty()).then(|| (code, name.to_owned()))
            })
            .collect()
    }
}

/// `dictionaries`: code-to-name tables for the offers; only the airlines
/// are read, when needed.
#[derive(Deserialize)]
struct DictionariesText<'a> {
    /// Airline IATA code to name.
    #[serde(default, borrow)]
    carriers: Option<&'a RawValue>,
}

/// One flight offer: its price, and the flights, which only describe it.
#[derive(Deserialize)]
pub(super) struct Offer<'a> {
    #[serde(borrow)]
    pub(super) price: Price<'a>,
    /// One itinerary per journey, outbound first, kept as text: most of a
    /// reply's bytes, read only for the offers that need them (the
    /// cheapest, or each when stops are limited). Skipping is a scan;
    /// reading them all leniently buffered every offer's flights (~8 % of a
    /// 10,000-route check's CPU).
    #[serde(default, borrow, deserialize_with = "raw_text")]
    itineraries: Option<&'a str>,
}

impl<'a> Offer<'a> {
    /// One element of `data`, walked as [`OffersReply::walk`] does.
    fn scan(cursor: &mut Cursor<'a>) -> Result<Self, Malformed> {
        let (mut price, mut itineraries) = (None, None);
        cursor.object(|key, cursor| match key {
            "price" => once(&mut price, Price::scan(cursor)?),
            "itineraries" => once(&mut itineraries, not_null(cursor.value()?)),
            _ => cursor.value().map(drop),
        })?;
        Ok(Offer {
            price: price.ok_or(Malformed)?,
            itineraries: itineraries.flatten(),
        })
    }

    /// The itineraries, or `None` when the list is missing, empty or has an
    /// itinerary that cannot be read: malformed, the flights are unknown,
    /// not the price.
    pub(super) fn itineraries(&self) -> Option<Vec<Itinerary>> {
        let text = self.itineraries?;
        // Walked (each segment's airports, times and aircraft crossed), or
        // read whole by serde when the walk cannot follow the text.
        let itineraries = list(text, walk_itinerary).unwrap_or_else(|Malformed| {
            let itineraries = read_text::<Vec<ItineraryText<'_>>>(Some(text))?;
            Some(itineraries.into_iter().map(Itinerary::from).collect())
        })?;
        (!itineraries.is_empty()).then_some(itineraries)
    }
}

/// One journey of an offer as it comes: each field kept as text, so a
/// malformed one is lost alone (read by scanning, never buffered).
#[derive(Deserialize)]
struct ItineraryText<'a> {
    #[serde(default, borrow)]
    duration: Option<&'a RawValue>,
    #[serde(default, borrow)]
    segments: Option<&'a RawValue>,
}

/// One journey of an offer.
pub(super) struct Itinerary {
    /// ISO 8601, first departure to last arrival (`"PT11H45M"`, `"PT8H"`).
    duration: Option<String>,
    /// `None` when the list is missing, empty or has a segment that cannot
    /// be read (an unknown number of stops).
    segments: Option<Vec<Segment>>,
}

impl From<ItineraryText<'_>> for Itinerary {
    fn from(text: ItineraryText<'_>) -> Self {
        Itinerary {
            duration: read_raw(text.duration),
            segments: read_raw::<Vec<Segment>>(text.segments)
                .filter(|segments| !segments.is_empty()),
        }
    }
}

/// One itinerary walked: `Ok(None)` when it is not an object (serde
/// drops the whole list then too).
fn walk_itinerary(cursor: &mut Cursor<'_>) -> Result<Option<Itinerary>, Malformed> {
    if cursor.peek() != Some(b'{') {
        cursor.value()?;
        return Ok(None);
    }
    let (mut duration, mut segments) = (None, None);
    cursor.object(|key, cursor| match key {
        "duration" => once(&mut duration, not_null(cursor.value()?)),
        "segments" => once(&mut segments, not_null(cursor.value()?)),
        _ => cursor.value().map(drop),
    })?;
    let segments = segments.flatten().and_then(|text| {
        list(text, walk_segment).unwrap_or_else(|Malformed| read_text::<Vec<Segment>>(Some(text)))
    });
    Ok(Some(Itinerary {
        duration: read_text(duration.flatten()),
        segments: segments.filter(|segments| !segments.is_empty()),
    }))
}

/// One segment walked: `Ok(None)` when it cannot be read as serde reads
/// [`Segment`] (the list's flights are then unknown).
fn walk_segment(cursor: &mut Cursor<'_>) -> Result<Option<Segment>, Malformed> {
    if cursor.peek() != Some(b'{') {
        cursor.value()?;
        return Ok(None);
    }
    let (mut carrier_code, mut number_of_stops) = (None, None);
    let mut readable = true;
    cursor.object(|key, cursor| match key {
        "carrierCode" => {
            let code = json::<Option<String>>(cursor.value()?);
            readable &= code.is_ok();
            once(&mut carrier_code, code.ok().flatten())
        }
        "numberOfStops" => {
            let stops = json::<Option<u8>>(cursor.value()?);
            readable &= stops.is_ok();
            once(&mut number_of_stops, stops.ok().flatten())
        }
        _ => cursor.value().map(drop),
    })?;
    Ok(readable.then(|| Segment {
        carrier_code: carrier_code.flatten(),
        number_of_stops: number_of_stops.flatten(),
    }))
}

impl Itinerary {
    /// The segments, or `None` when the list is missing, empty or has a
    /// segment that cannot be read (an unknown number of stops).
    pub(super) fn segments(&self) -> Option<&[Segment]> {
        self.segments.as_deref()
    }

    /// `duration`, if there is one.
    pub(super) fn duration(&self) -> Option<&str> {
        self.duration.as_deref()
    }

    /// Stops on this journey: a change of plane between segments, and any
    /// stop a segment makes on the way (`numberOfStops`). `None` when the
    /// segments cannot be read.
    pub(super) fn stops(&self) -> Option<usize> {
        let segments = self.segments()?;
        let technical: usize = segments
            .iter()
            .map(|segment| usize::from(segment.number_of_stops.unwrap_or(0)))
            .sum();
        Some(segments.len() - 1 + technical)
    }
}

/// One flight of an itinerary.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Segment {
    /// The marketing airline's IATA code (`"BA"`).
    #[serde(default)]
    pub(super) carrier_code: Option<String>,
    /// Stops the flight makes without a change of plane (usually 0).
    #[serde(default)]
    pub(super) number_of_stops: Option<u8>,
}

/// An optional part as its JSON text, borrowed from the body.
fn raw_text<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'a str>, D::Error> {
    Ok(Option::<&'a RawValue>::deserialize(deserializer)?.map(RawValue::get))
}

/// `price`: decimal strings in `currency`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Price<'a> {
    #[serde(borrow)]
    pub(super) currency: Text<'a>,
    /// What the user pays, fees included; the spec's preferred alert price.
    #[serde(default, borrow)]
    pub(super) grand_total: Option<Text<'a>>,
    /// All travellers, taxes included; the fallback when `grandTotal` is absent.
    #[serde(default, borrow)]
    pub(super) total: Option<Text<'a>>,
}

impl<'a> Price<'a> {
    /// `price` walked as [`OffersReply::walk`] does: its three texts read
    /// as serde reads them, its fees and other parts crossed.
    fn scan(cursor: &mut Cursor<'a>) -> Result<Self, Malformed> {
        let (mut currency, mut grand_total, mut total) = (None, None, None);
        cursor.object(|key, cursor| match key {
            "currency" => once(&mut currency, json(cursor.value()?)?),
            "grandTotal" => once(&mut grand_total, json(cursor.value()?)?),
            "total" => once(&mut total, json(cursor.value()?)?),
            _ => cursor.value().map(drop),
        })?;
        Ok(Price {
            currency: currency.ok_or(Malformed)?,
            grand_total: grand_total.flatten(),
            total: total.flatten(),
        })
    }
}

/// A JSON string borrowed from the body when it has no escapes (prices,
/// and currency codes never do) and owned otherwise.
///
/// `Cow` with `#[serde(borrow)]` only borrows when it is the field's own
/// type, not inside an `Option`, hence this newtype.
pub(super) struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

// ----- error path ---------------------------------------------------------

/// Both Amadeus error shapes in one struct: resource APIs send
/// `{errors:[{status, code, title, detail, source}]}`, the token endpoint a
/// flat `{error, error_description, code, title}`. Owned strings: this is
/// the cold path.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<Issue>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    code: Option<Code>,
}

/// One entry of `errors[]`. `status` is not read: the HTTP status is authoritative.
#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    code: Option<Code>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    source: Option<IssueSource>,
}

/// Which part of the request an issue is about.
#[derive(Deserialize)]
struct IssueSource {
    #[serde(default)]
    parameter: Option<String>,
    #[serde(default)]
    pointer: Option<String>,
}

/// What an error reply said, reduced to what [`UpstreamError`](crate::upstream::UpstreamError) carries.
#[derive(Debug)]
pub(super) struct ErrorSummary {
    /// Amadeus's own code (`"38192"`), when the body had one.
    pub(super) code: Option<String>,
    /// One line for a person: title, detail and the offending parameter,
    /// or an excerpt of a body that could not be read.
    pub(super) message: String,
}

/// Reads either error shape; anything else becomes a short, sanitised
/// excerpt. `secrets` are replaced wherever the body quotes them.
pub(super) fn summarize_error(body: &[u8], secrets: &[&str]) -> ErrorSummary {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return unreadable(body, secrets);
    };
    if let Some(first) = parsed.errors.first() {
        let code = first.code.as_ref().map(|c| sanitize_code(c, secrets));
        let message = parsed
            .errors
            .iter()
            .map(describe_issue)
            .collect::<Vec<_>>()
            .join("; ");
        return ErrorSummary {
            code,
            message: one_line(&message, secrets, MESSAGE_CHARS),
        };
    }
    if parsed.error.is_some() || parsed.error_description.is_some() {
        let message = match (parsed.error, parsed.error_description) {
            (Some(error), Some(description)) => format!("{error}: {description}"),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => unreachable!("checked above"),
        };
        return ErrorSummary {
            code: parsed.code.map(|c| sanitize_code(&c, secrets)),
            message: one_line(&message, secrets, MESSAGE_CHARS),
        };
    }
    unreadable(body, secrets)
}

/// A code as it may be shown: it ends up in [`UpstreamError`](crate::upstream::UpstreamError) messages too.
fn sanitize_code(code: &Code, secrets: &[&str]) -> String {
    one_line(code.0.trim(), secrets, CODE_CHARS)
}

fn describe_issue(issue: &Issue) -> String {
    let mut text = match (&issue.title, &issue.detail) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(only), None) | (None, Some(only)) => only.clone(),
        (None, None) => match &issue.code {
            Some(code) => format!("error code {}", code.0.trim()),
            None => "unspecified error".to_owned(),
        },
    };
    if let Some(source) = &issue.source {
        if let Some(parameter) = &source.parameter {
            text.push_str(&format!(" (parameter `{parameter}`)"));
        } else if let Some(pointer) = &source.pointer {
            text.push_str(&format!(" (at `{pointer}`)"));
        }
    }
    text
}

fn unreadable(body: &[u8], secrets: &[&str]) -> ErrorSummary {
    ErrorSummary {
        code: None,
        message: unrecognised_error_body(body, secrets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_replies_are_walked_not_read_whole() {
        for (name, offers) in [
            ("amadeus-flight-offers-LHR-JFK.json", 4),
            ("amadeus-flight-offers-GIG-MAD-roundtrip-sdk.json", 2),
            ("amadeus-flight-offers-SYD-BKK-spec.json", 2),
            ("amadeus-flight-offers-empty.json", 0),
        ] {
            let path = format!("{}/tests/fixtures/fares/{name}", env!("CARGO_MANIFEST_DIR"));
            let body = std::fs::read_to_string(path).unwrap();
            let walked = OffersReply::scan(&body).unwrap();
            let read: OffersReply<'_> = serde_json::from_str(&body).unwrap();
            assert_eq!(walked.data.len(), offers, "{name}");
            assert_eq!(walked.dictionaries, read.dictionaries, "{name}");
            for (walked, read) in walked.data.iter().zip(&read.data) {
                assert_eq!(walked.itineraries, read.itineraries, "{name}");
                assert_eq!(walked.price.currency.as_str(), read.price.currency.as_str());
                let total =
                    |price: &Price<'_>| price.grand_total.as_ref().map(|t| t.as_str().to_owned());
                assert_eq!(total(&walked.price), total(&read.price), "{name}");
            }
        }
    }

    #[test]
    fn codes_may_be_numbers_or_strings() {
        let numeric = summarize_error(
            br#"{"errors":[{"code":38192,"status":401,"title":"Access token expired"}]}"#,
            &[],
        );
        assert_eq!(numeric.code.as_deref(), Some("38192"));
        let text = summarize_error(
            br#"{"errors":[{"code":"38191","status":"401","title":"Invalid HTTP header"}]}"#,
            &[],
        );
        assert_eq!(text.code.as_deref(), Some("38191"));
        assert_eq!(text.message, "Invalid HTTP header");
    }

    #[test]
    fn secrets_echoed_in_error_bodies_are_redacted() {
        // Excerpts cut inside a secret: `reply`'s tests.
        let summary = summarize_error(
            br#"{"errors":[{"code":1,"title":"echo","detail":"Bearer TOPSECRET"}]}"#,
            &["TOPSECRET"],
        );
        assert_eq!(summary.message, "echo: Bearer [REDACTED]");
    }
}
