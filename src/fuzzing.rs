//! Entry points for fuzzing and property tests: raw bytes into the routes
//! sheet reader, the Amadeus offer and error replies, and the Twilio
//! created, error and message-list replies, plus the alert SMS text. Not
//! part of the API (hidden from the docs, and free to change with the
//! parsers).
//!
//! Not covered here, so not fuzzed: the flight watch list and the other
//! providers' replies (Tequila, SerpApi, Travelpayouts, Duffel,
//! Aviationstack, OpenSky, FlightAware, Slack, Discord, webhooks), which
//! are tested against their fixtures in their own test files.
//!
//! Every function here must return, never panic, whatever the bytes: a
//! panic is a bug in the parser behind it. Two harnesses drive them:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer, nightly): one target per parser;
//! - `tests/parsers_props.rs` (proptest, stable, run in CI): arbitrary
//!   bytes, mutated fixtures and generated documents through the same
//!   functions.
//!
//! Where a parser promises more than "returns", the `check_*` functions say
//! what is broken in its output (`Err(what)`), so both harnesses assert the
//! same documented contract: an alert SMS is one GSM-7 segment; sheet rows
//! are valid and their messages printable; Amadeus error text is short,
//! printable and never quotes a secret; Twilio errors are classified by
//! status and code.

use jiff::civil::Date;
use jiff::{Span, Timestamp};

use crate::domain::{Currency, Money, Quote, E164};
use crate::notify::sms::{self, AlertText, MAX_SINGLE_SEGMENT};
use crate::notify::{Delivery, NotifyError};
use crate::route::MAX_LOOKUPS_PER_ROW;
use crate::sheet::{self, Sheet, SheetError, SheetOptions, MAX_RECIPIENTS_PER_ROW};
use crate::upstream::UpstreamError;

/// Credentials the provider parsers are told to redact, as a client secret
/// and an access token would be. Fuzz inputs that quote them must never get
/// them back in a message.
pub const SECRETS: [&str; 2] = ["fuzz-client-secret-0000", "fuzz-access-token-1111"];

/// The day the sheet is read on: fixed, so a run is reproducible.
pub const TODAY: Date = jiff::civil::date(2026, 11, 24);

/// Options for [`sheet`]: EUR by default, today is [`TODAY`].
pub fn sheet_options() -> SheetOptions {
    SheetOptions {
        default_currency: Currency::EUR,
        today: TODAY,
    }
}

/// The routes sheet parser, [`sheet::parse`], on raw bytes.
pub fn sheet(bytes: &[u8]) -> Result<Sheet, SheetError> {
    sheet::parse("routes.csv", bytes, &sheet_options())
}

/// What [`sheet::parse`] promises about a sheet it returns for `bytes`:
/// every route is valid (a positive `max_price`, 1 to
/// [`MAX_RECIPIENTS_PER_ROW`] recipients, 1 to [`MAX_LOOKUPS_PER_ROW`]
/// searches, a departure not entirely before [`TODAY`]...), routes are
/// unique and in sheet order, and every message names a real line and is
/// printable (no control characters).
pub fn check_sheet(bytes: &[u8], sheet: &Sheet) -> Result<(), String> {
    // A bare-CR file is read as if each CR were a newline.
    let max_line = 1 + bytes.iter().filter(|b| matches!(b, b'\n' | b'\r')).count();
    let mut previous_line = 0;
    let mut ids = std::collections::HashSet::new();
    for route in &sheet.routes {
        let line = route.line;
        let fail = |what: &str| Err(format!("route on line {line}: {what}: {route:?}"));
        if line <= previous_line || line > max_line {
            return fail(&format!(
                "line out of order or past the end (previous {previous_line}, last {max_line})"
            ));
        }
        previous_line = line;
        if !ids.insert(route.id()) {
            return fail("duplicate route kept");
        }
        if route.rule.max_price.minor <= 0 {
            return fail("max_price not above zero");
        }
        if route.origins.is_empty() || route.destinations.is_empty() {
            return fail("no origin or no destination");
        }
        if route.recipients.is_empty() || route.recipients.len() > MAX_RECIPIENTS_PER_ROW {
            return fail("recipient count out of range");
        }
        if !(1..=9).contains(&route.adults) {
            return fail("adults out of range");
        }
        if route.rule.cooldown.is_some_and(|c| !c.is_positive()) {
            return fail("cooldown not positive");
        }
        if route.depart.last < TODAY {
            return fail("departure entirely in the past");
        }
        if route
            .return_dates
            .is_some_and(|back| back.last < route.depart.first)
        {
            return fail("no return day on or after the departure");
        }
        if route
            .label
            .as_deref()
            .is_some_and(|l| l.is_empty() || l.chars().any(char::is_control))
        {
            return fail("label empty or not printable");
        }
        let lookups = route.lookups().len();
        if lookups == 0 || lookups > MAX_LOOKUPS_PER_ROW {
            return fail(&format!("expands to {lookups} lookups"));
        }
    }
    for error in &sheet.errors {
        if error.line == 0 || error.line > max_line {
            return Err(format!("error on a line that does not exist: {error:?}"));
        }
        if error.column.is_empty() {
            return Err(format!("error names no column: {error:?}"));
        }
        if error.to_string().chars().any(char::is_control) {
            return Err(format!("error message not printable: {error:?}"));
        }
    }
    if let Some(warning) = sheet
        .warnings
        .iter()
        .find(|w| w.chars().any(char::is_control))
    {
        return Err(format!("warning not printable: {warning:?}"));
    }
    Ok(())
}

/// The Amadeus flight-offers reader on a `200` body labelled
/// `application/vnd.amadeus+json`: the cheapest offer, none, or why the
/// body cannot be read.
pub fn amadeus_offers(bytes: &[u8]) -> Result<Option<Quote>, UpstreamError> {
    amadeus_offers_as(bytes, Some("application/vnd.amadeus+json"))
}

/// [`amadeus_offers`] with any `Content-Type` (or none).
pub fn amadeus_offers_as(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Option<Quote>, UpstreamError> {
    crate::fare::amadeus::read_offers(bytes, content_type, &SECRETS)
}

/// The offers reader with the body read whole by serde (never walked by
/// `upstream::scan`): [`amadeus_offers`] must agree with it on every body
/// serde reads, and on every body the walk refuses.
pub fn amadeus_offers_by_serde(bytes: &[u8]) -> Result<Option<Quote>, UpstreamError> {
    crate::fare::amadeus::read_offers_by_serde(
        bytes,
        Some("application/vnd.amadeus+json"),
        &SECRETS,
    )
}

/// Whether [`amadeus_offers`] walks `bytes` rather than hand them to serde
/// whole: it must, for every valid reply with a `data` list of offers that
/// each have a `price` serde can read and no key written with escapes.
pub fn amadeus_offers_walked(bytes: &[u8]) -> bool {
    crate::fare::amadeus::walks(bytes)
}

/// What the offers reader promises: an answer comes from `"amadeus"`,
/// and a body it cannot read is a [`UpstreamError::Decode`] (never a panic, never
/// another kind of error) whose message is printable and quotes no secret.
pub fn check_amadeus_offers(result: &Result<Option<Quote>, UpstreamError>) -> Result<(), String> {
    match result {
        Ok(None) => Ok(()),
        Ok(Some(quote)) if quote.provider == "amadeus" && !quote.cached => Ok(()),
        Ok(Some(quote)) => Err(format!("unexpected quote {quote:?}")),
        Err(UpstreamError::Decode(message)) => printable_line("offers error", message),
        Err(other) => Err(format!("a 200 reply read as {other:?}")),
    }
}

/// `Err` when `message` has a control character or quotes a [`SECRETS`] entry.
fn printable_line(what: &str, message: &str) -> Result<(), String> {
    if message.chars().any(char::is_control) {
        return Err(format!("{what} not printable: {message:?}"));
    }
    if let Some(secret) = SECRETS.iter().find(|s| message.contains(*s)) {
        return Err(format!("{what} quotes the secret {secret:?}: {message:?}"));
    }
    Ok(())
}

/// What an Amadeus error body says, as every failed search or token
/// request reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmadeusError {
    /// Amadeus's own code (`"38192"`), when the body had one.
    pub code: Option<String>,
    /// One line for a person.
    pub message: String,
}

/// The Amadeus error-body reader on raw bytes.
pub fn amadeus_error(bytes: &[u8]) -> AmadeusError {
    let (code, message) = crate::fare::amadeus::read_error(bytes, &SECRETS);
    AmadeusError { code, message }
}

/// Longest [`AmadeusError::message`]: a readable body gives at most 500
/// characters and an ellipsis; an unreadable one a prefix and an excerpt
/// of 200 and an ellipsis.
const MAX_AMADEUS_MESSAGE_CHARS: usize = 501;

/// Longest [`AmadeusError::code`]: Amadeus's are at most five digits, and
/// longer text is cut to 20 characters and an ellipsis.
const MAX_AMADEUS_CODE_CHARS: usize = 21;

/// What the Amadeus reader promises about an error summary: a message and a
/// code that are short, printable, and never quote a secret.
pub fn check_amadeus_error(error: &AmadeusError) -> Result<(), String> {
    let message = &error.message;
    if message.chars().count() > MAX_AMADEUS_MESSAGE_CHARS {
        return Err(format!(
            "message of {} characters: {message:?}",
            message.chars().count()
        ));
    }
    printable_line("message", message)?;
    if let Some(code) = &error.code {
        if code.chars().count() > MAX_AMADEUS_CODE_CHARS {
            return Err(format!(
                "code of {} characters: {code:?}",
                code.chars().count()
            ));
        }
        printable_line("code", code)?;
    }
    Ok(())
}

/// The Twilio reader of a `201` message-create reply.
pub fn twilio_created(bytes: &[u8]) -> Result<Delivery, NotifyError> {
    crate::notify::twilio::read_created(bytes)
}

/// The Twilio error classifier on a non-2xx `status` and its body; `None`
/// when `status` is a success or not an HTTP status (100 to 999).
pub fn twilio_error(status: u16, bytes: &[u8]) -> Option<NotifyError> {
    crate::notify::twilio::classify_reply(status, bytes)
}

/// What the Twilio classifier promises (the module's retry table): a 429
/// is `RateLimited`, a 5xx is `RateLimited` (code 20429) or `Ambiguous`,
/// and a 4xx is never `Ambiguous` or `Unreachable`.
pub fn check_twilio_error(status: u16, error: &NotifyError) -> Result<(), String> {
    let ok = match status {
        429 => matches!(error, NotifyError::RateLimited { .. }),
        500..=599 => matches!(
            error,
            NotifyError::RateLimited { .. } | NotifyError::Ambiguous(_)
        ),
        _ => !matches!(
            error,
            NotifyError::Ambiguous(_) | NotifyError::Unreachable(_)
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("HTTP {status} classified as {error:?}"))
    }
}

/// The recipient [`twilio_list`] looks for.
pub const LIST_TO: &str = "+14155552345";

/// The body [`twilio_list`] looks for.
pub const LIST_BODY: &str = "Hello! 👍";

/// One page of Twilio's message list as `find_sent` reads it, looking for
/// [`LIST_BODY`] sent to [`LIST_TO`] since 2023-08-24T00:00:00Z: the SID
/// found, else the next page's URI, or why the page cannot be read.
pub fn twilio_list(bytes: &[u8]) -> Result<(Option<String>, Option<String>), NotifyError> {
    let to = E164::from_trusted(LIST_TO.to_owned());
    let since = Timestamp::from_second(1_692_835_200).unwrap_or(Timestamp::UNIX_EPOCH);
    crate::notify::twilio::search_page(bytes, &to, LIST_BODY, since)
}

/// One alert text to render, from loosely typed parts a fuzzer can make.
#[derive(Clone, Debug)]
pub struct SmsInput<'a> {
    /// The route name, `LHR|LGW-JFK` style (any text is accepted).
    pub route: &'a str,
    /// The row's label.
    pub label: Option<&'a str>,
    /// Departure, as days from -9999-01-01 (wrapped into jiff's date range).
    pub depart: i32,
    /// Return, as `depart`.
    pub back: Option<i32>,
    /// The price, in minor units.
    pub price: i64,
    /// The maximum, in minor units.
    pub max_price: i64,
    /// Picks the currency from [`SMS_CURRENCIES`] (modulo its length).
    pub currency: u8,
}

/// Currencies [`sms_render`] picks from: 2, 0 and 3 decimals.
pub const SMS_CURRENCIES: [&str; 4] = ["EUR", "JPY", "KWD", "GBP"];

/// Days from -9999-01-01 to 9999-12-31.
const DATE_RANGE_DAYS: i32 = 7_304_484;

fn date_from(days: i32) -> Date {
    Span::new()
        .try_days(days.rem_euclid(DATE_RANGE_DAYS + 1))
        .ok()
        .and_then(|span| Date::MIN.checked_add(span).ok())
        .unwrap_or(Date::MAX)
}

/// Renders the alert with [`sms::render`] and checks what it promises: one
/// GSM-7 segment (at most [`MAX_SINGLE_SEGMENT`] septets) that shows the
/// dates, the price and the maximum unshortened. `Err` says what is broken.
pub fn sms_render(input: &SmsInput<'_>) -> Result<String, String> {
    let code = SMS_CURRENCIES[usize::from(input.currency) % SMS_CURRENCIES.len()];
    let currency = Currency::parse(code).unwrap_or(Currency::EUR);
    let price = Money::from_minor(input.price, currency);
    let max_price = Money::from_minor(input.max_price, currency);
    let depart = date_from(input.depart);
    let return_date = input.back.map(date_from);
    let text = sms::render(&AlertText {
        route: input.route,
        label: input.label,
        depart,
        return_date,
        price,
        max_price,
    });
    match sms::gsm7_len(&text) {
        None => return Err(format!("not GSM-7: {text:?}")),
        Some(n) if n > MAX_SINGLE_SEGMENT => return Err(format!("{n} septets: {text:?}")),
        Some(_) => {}
    }
    let dates = match return_date {
        Some(back) => format!(" {depart} return {back} "),
        None => format!(" {depart} "),
    };
    for part in [
        dates,
        format!(" now {price} "),
        format!(" (your max {max_price})."),
    ] {
        if !text.contains(&part) {
            return Err(format!("{part:?} missing from {text:?}"));
        }
    }
    Ok(text)
}
