//! Duffel's JSON: the offer request farewatch sends and the fields it reads
//! back, private to this provider.
//!
//! Replies are borrowed from the body where they can be; everything but an
//! offer's price, currency, `partial` flag, owner and its slices' durations
//! and segment airlines is skipped unread. Those flight details are read
//! leniently: malformed, they are unknown, never a reason to lose the price.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::LookupKey;
use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};
use crate::upstream::wire::{Lenient, Text};

/// Longest error `code` (or `type`) kept from a body. Duffel's are short
/// snake_case words (`airline_unknown`); this only stops an odd body
/// flooding a message.
const CODE_CHARS: usize = 100;

// ----- request ------------------------------------------------------------

/// `POST /air/offer_requests` body: `{"data": {...}}`.
#[derive(Serialize)]
pub(super) struct OfferRequestBody<'a> {
    data: OfferRequest<'a>,
}

#[derive(Serialize)]
struct OfferRequest<'a> {
    /// One slice for a one-way trip, two for a return.
    slices: Vec<Slice<'a>>,
    /// One `{"type":"adult"}` per adult.
    passengers: Vec<Passenger>,
    cabin_class: &'static str,
    /// At most this many connections on each slice (0: direct flights
    /// only). Left out without a stop limit, which leaves Duffel's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<u8>,
}

#[derive(Serialize)]
struct Slice<'a> {
    origin: &'a str,
    destination: &'a str,
    /// `YYYY-MM-DD`.
    departure_date: String,
}

#[derive(Serialize)]
struct Passenger {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> OfferRequestBody<'a> {
    /// The search for `key`: economy, `key.adults` adults, a return slice
    /// (destination back to origin) when `key` has a return date, and
    /// `max_connections` when it limits the stops.
    pub(super) fn for_key(key: &'a LookupKey) -> Self {
        let mut slices = vec![Slice {
            origin: key.origin.as_str(),
            destination: key.destination.as_str(),
            departure_date: key.depart.to_string(),
        }];
        if let Some(return_date) = key.return_date {
            slices.push(Slice {
                origin: key.destination.as_str(),
                destination: key.origin.as_str(),
                departure_date: return_date.to_string(),
            });
        }
        let passengers = (0..key.adults)
            .map(|_| Passenger { kind: "adult" })
            .collect();
        Self {
            data: OfferRequest {
                slices,
                passengers,
                // What Amadeus and Tequila search by default, so quotes from
                // different sources answer the same question.
                cabin_class: "economy",
                max_connections: key.max_stops,
            },
        }
    }
}

// ----- replies --------------------------------------------------------------

/// `POST /air/offer_requests` reply; only the id is needed to list offers.
#[derive(Deserialize)]
pub(super) struct CreatedReply<'a> {
    #[serde(borrow)]
    pub(super) data: CreatedOfferRequest<'a>,
}

#[derive(Deserialize)]
pub(super) struct CreatedOfferRequest<'a> {
    /// `orq_…`.
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
}

/// `GET /air/offers` reply: one page of offers (`meta` is skipped).
#[derive(Deserialize)]
pub(super) struct OffersPage<'a> {
    #[serde(borrow)]
    pub(super) data: Vec<Offer<'a>>,
}

/// One offer: a price for every passenger and slice, taxes included.
#[derive(Deserialize)]
pub(super) struct Offer<'a> {
    /// A decimal string such as `"45.00"`.
    #[serde(borrow)]
    pub(super) total_amount: Cow<'a, str>,
    /// ISO 4217; the organisation's billing currency unless it sells as an
    /// IATA agent, in which case the airline's.
    #[serde(borrow)]
    pub(super) total_currency: Cow<'a, str>,
    /// A partial offer prices only some slices and cannot be booked alone.
    #[serde(default)]
    pub(super) partial: bool,
    /// The journeys, outbound first (then the return). Malformed, the
    /// offer's flights are unknown, not its price.
    #[serde(default)]
    pub(super) slices: Option<Lenient<Vec<Lenient<OfferSlice>>>>,
    /// The airline selling the offer.
    #[serde(default)]
    pub(super) owner: Option<Lenient<Carrier>>,
}

impl Offer<'_> {
    /// The slices, or `None` when the list is missing, empty or has a slice
    /// that cannot be read.
    pub(super) fn slices(&self) -> Option<Vec<&OfferSlice>> {
        let slices = self.slices.as_ref()?.as_valid()?;
        let slices: Option<Vec<&OfferSlice>> = slices.iter().map(Lenient::as_valid).collect();
        slices.filter(|slices| !slices.is_empty())
    }

    /// The owner's name, else its IATA code.
    pub(super) fn owner(&self) -> Option<&str> {
        self.owner.as_ref()?.as_valid()?.label()
    }
}

/// One journey of an offer: its flights and how long it takes.
#[derive(Deserialize)]
pub(super) struct OfferSlice {
    /// ISO 8601, first departure to last arrival (`"PT02H26M"`).
    #[serde(default)]
    pub(super) duration: Option<Lenient<String>>,
    #[serde(default)]
    pub(super) segments: Option<Lenient<Vec<Lenient<Segment>>>>,
}

impl OfferSlice {
    /// The segments, or `None` when the list is missing, empty or has a
    /// segment that cannot be read (an unknown number of connections).
    pub(super) fn segments(&self) -> Option<Vec<&Segment>> {
        let segments = self.segments.as_ref()?.as_valid()?;
        let segments: Option<Vec<&Segment>> = segments.iter().map(Lenient::as_valid).collect();
        segments.filter(|segments| !segments.is_empty())
    }

    /// `duration`, if there is one.
    pub(super) fn duration(&self) -> Option<&str> {
        self.duration.as_ref()?.as_valid().map(String::as_str)
    }
}

/// One flight of a slice; only its airlines are read.
#[derive(Deserialize)]
pub(super) struct Segment {
    /// The airline that sells the flight under its own number.
    #[serde(default)]
    pub(super) marketing_carrier: Option<Lenient<Carrier>>,
    /// The airline that flies it.
    #[serde(default)]
    pub(super) operating_carrier: Option<Lenient<Carrier>>,
}

impl Segment {
    /// The marketing airline, else the operating one: its name, else its code.
    pub(super) fn airline(&self) -> Option<&str> {
        [&self.marketing_carrier, &self.operating_carrier]
            .into_iter()
            .find_map(|carrier| carrier.as_ref()?.as_valid()?.label())
    }
}

/// An airline: `{"iata_code": "BA", "name": "British Airways", ...}`.
#[derive(Deserialize)]
pub(super) struct Carrier {
    #[serde(default)]
    pub(super) name: Option<Lenient<Text>>,
    #[serde(default)]
    pub(super) iata_code: Option<Lenient<Text>>,
}

impl Carrier {
    /// The name, else the IATA code; `None` when both are missing or blank.
    fn label(&self) -> Option<&str> {
        [&self.name, &self.iata_code].into_iter().find_map(|field| {
            let Text(text) = field.as_ref()?.as_valid()?;
            Some(text.trim()).filter(|text| !text.is_empty())
        })
    }
}

// ----- errors ---------------------------------------------------------------

/// What an error reply said, reduced to what [`UpstreamError`](crate::upstream::UpstreamError) carries.
#[derive(Debug)]
pub(super) struct ErrorSummary {
    /// Duffel's `code` (`"airline_unknown"`), else its `type`.
    pub(super) code: Option<String>,
    /// One line for a person, or an excerpt of a body that could not be read.
    pub(super) message: String,
}

/// Reads `{meta:{status, request_id}, errors:[{type, title, message, code,
/// source, documentation_url}]}` leniently (this is the cold path, so it
/// walks a `Value`: a `source` is an airline name in one error and an object
/// in another). Anything else becomes a short, sanitised excerpt.
/// `secrets` are replaced wherever the body quotes them.
pub(super) fn summarize_error(body: &[u8], secrets: &[&str]) -> ErrorSummary {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let issues = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .filter(|issues| !issues.is_empty());
    let Some(issues) = issues else {
        return ErrorSummary {
            code: None,
            message: unrecognised_error_body(body, secrets),
        };
    };
    let first = &issues[0];
    let code = text(first.get("code")).or_else(|| text(first.get("type")));
    let mut message = issues
        .iter()
        .map(describe_issue)
        .collect::<Vec<_>>()
        .join("; ");
    let request_id = parsed
        .as_ref()
        .and_then(|v| v.get("meta"))
        .and_then(|meta| text(meta.get("request_id")));
    if let Some(request_id) = request_id {
        // What Duffel's support asks for.
        message.push_str(&format!(" [request_id {request_id}]"));
    }
    ErrorSummary {
        code: code.map(|c| one_line(&c, secrets, CODE_CHARS)),
        message: one_line(&message, secrets, MESSAGE_CHARS),
    }
}

fn describe_issue(issue: &Value) -> String {
    let title = text(issue.get("title"));
    let detail = text(issue.get("message"));
    let mut out = match (title, detail) {
        (Some(title), Some(detail)) if title == detail => title,
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => match text(issue.get("code")).or_else(|| text(issue.get("type"))) {
            Some(code) => format!("error {code}"),
            None => "unspecified error".to_owned(),
        },
    };
    match issue.get("source") {
        // The airline behind an `airline_error`.
        Some(Value::String(name)) if !name.is_empty() => {
            out.push_str(&format!(" (source {name})"));
        }
        // The offending request field of a `validation_error`.
        Some(source @ Value::Object(_)) => {
            if let Some(field) = text(source.get("field")) {
                out.push_str(&format!(" (field `{field}`)"));
            } else if let Some(pointer) = text(source.get("pointer")) {
                out.push_str(&format!(" (at `{pointer}`)"));
            }
        }
        _ => {}
    }
    out
}

/// A string or number as text; anything else (and `""`) is `None`.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Iata};

    fn key(ret: Option<&str>, adults: u8) -> LookupKey {
        LookupKey {
            origin: Iata::parse("LHR").unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: "2027-03-01".parse().unwrap(),
            return_date: ret.map(|r| r.parse().unwrap()),
            adults,
            currency: Currency::parse("GBP").unwrap(),
            max_stops: None,
        }
    }

    #[test]
    fn the_request_body_has_a_return_slice_and_one_passenger_per_adult() {
        let key = key(Some("2027-03-08"), 2);
        let body = serde_json::to_value(OfferRequestBody::for_key(&key)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"data": {
                "slices": [
                    {"origin": "LHR", "destination": "JFK", "departure_date": "2027-03-01"},
                    {"origin": "JFK", "destination": "LHR", "departure_date": "2027-03-08"}
                ],
                "passengers": [{"type": "adult"}, {"type": "adult"}],
                "cabin_class": "economy"
            }})
        );
    }

    #[test]
    fn a_stop_limit_is_sent_as_max_connections_and_no_limit_leaves_it_out() {
        let mut key = key(None, 1);
        let body = serde_json::to_value(OfferRequestBody::for_key(&key)).unwrap();
        assert!(body["data"].get("max_connections").is_none());
        key.max_stops = Some(1);
        let body = serde_json::to_value(OfferRequestBody::for_key(&key)).unwrap();
        assert_eq!(body["data"]["max_connections"], 1);
    }

    #[test]
    fn error_summaries_name_the_source_field_and_request_id() {
        let airline = summarize_error(
            br#"{"meta":{"status":500,"request_id":"FmX"},"errors":[{"type":"airline_error",
                "title":"Unexpected Airline Error","source":"iberia",
                "message":"The airline responded with an unexpected error.","code":"airline_unknown"}]}"#,
            &[],
        );
        assert_eq!(airline.code.as_deref(), Some("airline_unknown"));
        assert_eq!(
            airline.message,
            "Unexpected Airline Error: The airline responded with an unexpected error. (source iberia) [request_id FmX]"
        );
        let validation = summarize_error(
            br#"{"errors":[{"type":"validation_error","title":"Invalid","message":"Invalid",
                "source":{"field":"origin","pointer":"/slices/0/origin"}}]}"#,
            &[],
        );
        assert_eq!(validation.code.as_deref(), Some("validation_error"));
        assert_eq!(validation.message, "Invalid (field `origin`)");
    }

    #[test]
    fn unreadable_error_bodies_become_clean_redacted_excerpts() {
        let summary = summarize_error(
            b"<html>\n token=duffel_test_SECRET </html>",
            &["duffel_test_SECRET"],
        );
        assert_eq!(summary.code, None);
        assert_eq!(
            summary.message,
            "unrecognised error body: <html> token=[REDACTED] </html>"
        );
        assert_eq!(
            summarize_error(b"", &[]).message,
            "unrecognised error body: (empty body)"
        );
        assert_eq!(
            summarize_error(br#"{"errors":[]}"#, &[]).message,
            r#"unrecognised error body: {"errors":[]}"#
        );
    }
}
