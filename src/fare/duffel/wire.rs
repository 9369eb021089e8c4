//! Duffel's JSON: the offer request farewatch sends and the fields it reads
//! back, private to this provider.
//!
//! Replies are borrowed from the body where they can be; everything but an
//! offer's price, currency and `partial` flag is skipped unread.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::LookupKey;
use crate::upstream::reply::{one_line, unrecognised_error_body, MESSAGE_CHARS};

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
    /// The search for `key`: economy, `key.adults` adults, and a return slice
    /// (destination back to origin) when `key` has a return date.
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
