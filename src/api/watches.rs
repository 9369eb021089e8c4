//! `/users/{email}/watches`: a user's fare and flight watches, the API's
//! rows of the routes sheet and of the flight watch list.
//!
//! - A **fare watch** has the fields of a routes.csv row (`origin`,
//!   `destination`, `depart_date`, `max_price`, `phone`, `return_date`,
//!   `currency`, `adults`, `min_drop`, `cooldown`, `active`, `label`) and is
//!   validated by the sheet's own row parser ([`sheet::parse_fields`]), so
//!   the rules and the messages are the sheet's; each problem comes back as
//!   `{"field": COLUMN, "message": ...}` (`row` for the row as a whole).
//! - A **flight watch** has the fields of a flights.csv row (`flight`,
//!   `date`, `phone`, `notify_on`, `min_delay`), validated by
//!   [`status::watch::parse_fields`](crate::status::watch::parse_fields).
//! - `phone` defaults to the user's phone number; without either, 422 on
//!   `phone`. `currency` defaults to `FAREWATCH_CURRENCY` (EUR), as in the
//!   sheet, and is stored explicitly.
//! - What is stored (the watch's `spec`) is the parsed row written back as
//!   the sheet would write it (`LHR|LGW`, `450`, `5%`, `6h`, E.164 numbers),
//!   so a watch means the same thing on every cycle.
//!
//! The cycles (`check`, `daemon`) run every stored watch beside the sheet's
//! rows ([`crate::app::App::run_check`]); in reports and messages a watch is
//! source [`SOURCE`] with the watch id as its line (`api:watch:7: ...`).
//! Its state is the store's, under the same key a sheet row with the same
//! search and recipients has ([`Route::id`], or `watch:` + [`Watch::id`]):
//! `GET .../watches/{id}` reads it back, with the last price the cycles saw
//! (saved under [`last_seen_key`]) and the alerts sent since the watch was
//! created.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, FieldError};
use super::idempotency::{self, Request};
use super::users::visible_user;
use super::{json_body, read_body, AppState};
use crate::domain::{Currency, Iata, Money, Recipient};
use crate::route::Route;
use crate::rules::MinDrop;
use crate::sheet::{self, RowError, SheetOptions};
use crate::status::watch::{self as flights, Watch};
use crate::store::{ApiWatch, User, WatchKind};

/// How API watches are named in reports and messages: `api:watch:7: ...`
/// (the watch id stands where a sheet row's line would).
pub const SOURCE: &str = "api:watch";

/// Most watches one user may have: each fare watch costs lookups every cycle.
pub const MAX_WATCHES_PER_USER: usize = 100;

/// How many of the newest sent messages (all routes) `GET .../watches/{id}`
/// looks through for a watch's history.
pub const HISTORY_SCAN: usize = 1000;

/// Most alerts a watch's history shows (newest first).
pub const HISTORY_SHOWN: usize = 50;

/// The key (in the store's small-value table) under which the cycles save
/// the last price (or flight status) they saw for API watch `id`, as a
/// [`LastSeen`] in JSON.
pub fn last_seen_key(id: i64) -> String {
    format!("api-watch:{id}:last")
}

/// A fare watch to create (documentation of the body: every routes.csv
/// column; numbers may also be sent as strings, as the sheet has them).
#[derive(Debug, Deserialize, ToSchema)]
pub struct FareWatchInput {
    /// IATA codes, several joined by `|`: `LHR|LGW`.
    pub origin: String,
    /// IATA codes, as `origin`.
    pub destination: String,
    /// `2027-03-01`, or an inclusive range `2027-03-01..2027-03-05`.
    pub depart_date: String,
    /// The most you will pay, in `currency`: `450` or `349.99`.
    pub max_price: String,
    /// E.164 numbers or channels (`slack:team`) joined by `|`; default: the user's phone.
    pub phone: Option<String>,
    /// A date or range; absent or null for one-way.
    pub return_date: Option<String>,
    /// ISO 4217; default `FAREWATCH_CURRENCY` (EUR).
    pub currency: Option<String>,
    /// 1 to 9 (default 1).
    pub adults: Option<u8>,
    /// How much lower than the last alert a price must be to alert again: `25` or `5%`.
    pub min_drop: Option<String>,
    /// Least time between two alerts: `6h`, `30m`, `1d`; `0` for none.
    pub cooldown: Option<String>,
    /// `false` keeps the watch without looking it up (default true).
    pub active: Option<bool>,
    /// Free text shown in alerts.
    pub label: Option<String>,
}

/// A flight watch to create (every flights.csv column).
#[derive(Debug, Deserialize, ToSchema)]
pub struct FlightWatchInput {
    /// IATA flight designator: `LH400`.
    pub flight: String,
    /// The flight date (local departure date): `2026-12-24`.
    pub date: String,
    /// E.164 numbers or channels joined by `|`; default: the user's phone.
    pub phone: Option<String>,
    /// Any of `delay`, `cancel`, `divert`, `gate`, `depart`, `land` joined by `,` (default all).
    pub notify_on: Option<String>,
    /// Minutes (`30`) or a duration (`1h`) of delay worth an alert (default 15).
    pub min_delay: Option<String>,
}

/// A watch to create: `kind` says which.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WatchInput {
    /// A fare watch.
    Fare(FareWatchInput),
    /// A flight watch.
    Flight(FlightWatchInput),
}

/// A watch as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchView {
    /// The watch's id.
    pub id: i64,
    /// `fare` or `flight`.
    pub kind: String,
    /// Its fields, normalised, as the sheet would write them (column -> text).
    pub fields: BTreeMap<String, String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The last price (or flight status) the cycles saw for a watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LastSeen {
    /// When it was seen (the provider's answer time for a fare).
    #[schema(value_type = String, format = DateTime)]
    pub seen_at: Timestamp,
    /// The fare source that quoted the price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The cheapest price found, as a decimal (`123.45`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The same price in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<i64>,
    /// Its currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Whether it came from the quote cache rather than a live search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// Where the watch stood: `below`, `above` (of its maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The origin of the cheapest search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Its destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Its departure date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depart_date: Option<String>,
    /// Its return date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_date: Option<String>,
    /// A flight watch's last status (`scheduled`, `delayed`, `landed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight_status: Option<String>,
}

/// One alert sent for a watch.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRecord {
    /// When the channel accepted it.
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: Timestamp,
    /// To whom.
    pub recipient: String,
    /// The text sent.
    pub message: String,
}

/// Where a watch stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchState {
    /// The last price (fare) or status (flight) the cycles saw; absent
    /// until a cycle has.
    pub last_seen: Option<LastSeen>,
    /// Fare watches: whether the next price at or below the maximum alerts
    /// (false after an alert, until the price rises above it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub armed: Option<bool>,
    /// Fare watches: the price of the last alert, while not re-armed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_alerted_price: Option<String>,
    /// When the last alert was sent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_alerted_at: Option<Timestamp>,
    /// How many alerts the watch's state has counted.
    pub alerts_sent: u64,
    /// The alerts sent since the watch was created, newest first.
    pub history: Vec<AlertRecord>,
}

/// A watch with its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchDetail {
    /// The watch.
    #[serde(flatten)]
    pub watch: WatchView,
    /// Its state.
    pub state: WatchState,
}

/// A user's watches.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchList {
    /// Oldest first.
    pub watches: Vec<WatchView>,
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedWatch {
    /// The deleted watch's id.
    pub deleted: i64,
}

impl From<&ApiWatch> for WatchView {
    fn from(watch: &ApiWatch) -> Self {
        Self {
            id: watch.id,
            kind: watch.kind.as_str().to_owned(),
            fields: spec_fields(&watch.spec)
                .map(|fields| fields.into_iter().collect())
                .unwrap_or_default(),
            created_at: watch.created_at,
        }
    }
}

/// Today where the server is (sheet dates are local dates).
fn today() -> Date {
    jiff::Zoned::now().date()
}

/// The currency of rows that name none: `FAREWATCH_CURRENCY`, as for the
/// sheet (EUR when unset or not a currency).
pub(crate) fn default_currency() -> Currency {
    std::env::var("FAREWATCH_CURRENCY")
        .ok()
        .and_then(|raw| Currency::parse(&raw).ok())
        .unwrap_or(Currency::EUR)
}

/// A stored spec's fields, or a problem naming the watch.
pub fn spec_fields(spec: &str) -> Result<Vec<(String, String)>, String> {
    let map: BTreeMap<String, String> = serde_json::from_str(spec)
        .map_err(|e| format!("the stored watch is not a JSON object of text fields: {e}"))?;
    Ok(map.into_iter().collect())
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The watch's id as its line in reports (ids are positive).
fn line_of(watch: &ApiWatch) -> usize {
    usize::try_from(watch.id).unwrap_or(0)
}

fn corrupt(watch: &ApiWatch, message: String) -> Vec<RowError> {
    vec![RowError {
        source: SOURCE.to_owned(),
        line: line_of(watch),
        column: "row".to_owned(),
        message,
    }]
}

/// A stored fare watch as a route (line = the watch id), parsed by the
/// sheet's row parser with `options` (today, for past dates), and the
/// parser's warnings; or every problem, as the sheet reports them.
pub fn fare_route(
    watch: &ApiWatch,
    options: &SheetOptions,
) -> Result<(Route, Vec<String>), Vec<RowError>> {
    let fields = spec_fields(&watch.spec).map_err(|m| corrupt(watch, m))?;
    let (mut route, warnings) =
        sheet::parse_fields(SOURCE, line_of(watch), &pairs(&fields), options)?;
    // The watch's own alert state, whoever else watches the same search.
    route.namespace = u64::try_from(watch.id)
        .ok()
        .and_then(std::num::NonZeroU64::new);
    Ok((route, warnings))
}

/// A stored flight watch (line = the watch id), parsed by the watch list's
/// row parser; or every problem.
pub fn flight_watch(watch: &ApiWatch, today: Date) -> Result<Watch, Vec<RowError>> {
    let fields = spec_fields(&watch.spec).map_err(|m| corrupt(watch, m))?;
    let mut parsed = flights::parse_fields(SOURCE, line_of(watch), &pairs(&fields), today)?;
    // The watch's own state, whoever else watches the same flight.
    parsed.namespace = u64::try_from(watch.id)
        .ok()
        .and_then(std::num::NonZeroU64::new);
    Ok(parsed)
}

/// The key the store keeps a watch's alert state and sent messages under:
/// the route's [`Route::id`], or `watch:` and the flight's [`Watch::id`].
/// Read without regard to today's date, so a watch whose dates have passed
/// still shows its history.
pub(crate) fn state_key(watch: &ApiWatch) -> Option<String> {
    match watch.kind {
        WatchKind::Fare => {
            let options = SheetOptions {
                default_currency: Currency::EUR,
                today: Date::MIN,
            };
            fare_route(watch, &options)
                .ok()
                .map(|(route, _)| route.id())
        }
        WatchKind::Flight => flight_watch(watch, Date::MIN)
            .ok()
            .map(|w| format!("watch:{}", w.id())),
    }
}

/// What a watch searches and whom it tells, without its namespace: two
/// watches of one user with the same search key are the same watch.
fn search_key(watch: &ApiWatch) -> Option<String> {
    let key = state_key(watch)?;
    let namespace = format!("w{}/", watch.id);
    // A fare key starts with it; a flight key has it after `watch:`.
    Some(key.replacen(&namespace, "", 1))
}

/// A route's fields as the sheet would write them: what is stored.
fn fare_spec(route: &Route) -> BTreeMap<String, String> {
    let codes = |codes: &[Iata]| codes.iter().map(Iata::as_str).collect::<Vec<_>>().join("|");
    let currency = route.currency();
    let mut spec = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        spec.insert(name.to_owned(), value);
    };
    put("origin", codes(&route.origins));
    put("destination", codes(&route.destinations));
    put("depart_date", route.depart.to_string());
    if let Some(ret) = &route.return_dates {
        put("return_date", ret.to_string());
    }
    let amount = |money: Money| money.to_decimal().normalize().to_string();
    put("max_price", amount(route.rule.max_price));
    put("currency", currency.as_str().to_owned());
    put("adults", route.adults.to_string());
    match route.rule.min_drop {
        MinDrop::Zero => {}
        MinDrop::Amount(minor) => put("min_drop", amount(Money::from_minor(minor, currency))),
        MinDrop::BasisPoints(bps) => put(
            "min_drop",
            format!("{}%", rust_decimal::Decimal::new(bps.into(), 2).normalize()),
        ),
    }
    if let Some(cooldown) = route.rule.cooldown {
        put("cooldown", format!("{cooldown:#}"));
    }
    put("active", route.active.to_string());
    if let Some(label) = &route.label {
        put("label", label.to_string());
    }
    put("phone", recipients(&route.recipients));
    spec
}

/// A flight watch's fields as flights.csv would write them.
fn flight_spec(watch: &Watch) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("flight".to_owned(), watch.flight.clone()),
        ("date".to_owned(), watch.date.to_string()),
        ("phone".to_owned(), recipients(&watch.recipients)),
        ("notify_on".to_owned(), watch.notify_on.to_string()),
        ("min_delay".to_owned(), watch.min_delay_minutes.to_string()),
    ])
}

fn recipients(recipients: &[Recipient]) -> String {
    recipients
        .iter()
        .map(Recipient::to_string)
        .collect::<Vec<_>>()
        .join("|")
}

/// A body's `kind` and its other fields as cell text: strings as they are,
/// numbers and booleans written out, `null` as an empty cell.
fn cells(
    input: serde_json::Map<String, Value>,
) -> Result<(WatchKind, Vec<(String, String)>), ApiError> {
    let mut problems = Vec::new();
    let kind = match input.get("kind") {
        None | Some(Value::Null) => {
            problems.push(FieldError {
                field: "kind".into(),
                message: "is missing; expected fare or flight".into(),
            });
            None
        }
        Some(Value::String(raw)) => match WatchKind::parse(raw.trim()) {
            Some(kind) => Some(kind),
            None => {
                problems.push(FieldError {
                    field: "kind".into(),
                    message: format!(
                        "`{}` is not a kind of watch; expected fare or flight",
                        sheet::text::shown(raw)
                    ),
                });
                None
            }
        },
        Some(_) => {
            problems.push(FieldError {
                field: "kind".into(),
                message: "expected the text fare or flight".into(),
            });
            None
        }
    };
    let mut fields = Vec::new();
    for (name, value) in input {
        if name == "kind" {
            continue;
        }
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                problems.push(FieldError {
                    field: name,
                    message: "expected text, a number or true/false".into(),
                });
                continue;
            }
        };
        fields.push((name, text));
    }
    match kind {
        Some(kind) if problems.is_empty() => Ok((kind, fields)),
        _ => Err(ApiError::invalid(problems)),
    }
}

/// The sheet parser's problems as field errors; `no_phone` adds why `phone`
/// could not default to the user's.
fn field_errors(errors: Vec<RowError>, no_phone: bool) -> ApiError {
    ApiError::invalid(
        errors
            .into_iter()
            .map(|e| {
                let mut message = e.message;
                if no_phone && e.column == "phone" {
                    message.push_str("; the user has no phone number to default to");
                }
                FieldError {
                    field: e.column,
                    message,
                }
            })
            .collect(),
    )
}

/// Validates a new watch for `user`: its kind, its normalised spec and its
/// state key (to refuse a second watch of the same search and recipients).
fn validate(
    input: serde_json::Map<String, Value>,
    user: &User,
) -> Result<(WatchKind, BTreeMap<String, String>, String), ApiError> {
    let (kind, mut fields) = cells(input)?;
    let has = |fields: &[(String, String)], names: &[&str]| {
        fields
            .iter()
            .any(|(n, v)| names.contains(&n.as_str()) && !v.trim().is_empty())
    };
    let phone_names: &[&str] = match kind {
        WatchKind::Fare => &["phone"],
        WatchKind::Flight => &["phone", "recipient"],
    };
    let mut no_phone = false;
    if !has(&fields, phone_names) {
        fields.retain(|(n, _)| !phone_names.contains(&n.as_str()));
        match &user.phone {
            Some(phone) => fields.push(("phone".into(), phone.clone())),
            None => no_phone = true,
        }
    }
    let today = today();
    match kind {
        WatchKind::Fare => {
            if !has(&fields, &["currency"]) {
                fields.retain(|(n, _)| n != "currency");
                fields.push(("currency".into(), default_currency().as_str().to_owned()));
            }
            let options = SheetOptions {
                default_currency: default_currency(),
                today,
            };
            let (route, _warnings) = sheet::parse_fields(SOURCE, 0, &pairs(&fields), &options)
                .map_err(|errors| field_errors(errors, no_phone))?;
            Ok((kind, fare_spec(&route), route.id()))
        }
        WatchKind::Flight => {
            let watch = flights::parse_fields(SOURCE, 0, &pairs(&fields), today)
                .map_err(|errors| field_errors(errors, no_phone))?;
            Ok((kind, flight_spec(&watch), format!("watch:{}", watch.id())))
        }
    }
}

/// A watch id from the path: 404 when it is not one.
pub(crate) fn watch_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("watch"))
}

fn json(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or_default()
}

/// Creates a watch for the user.
#[utoipa::path(
    post,
    path = "/users/{email}/watches",
    request_body = WatchInput,
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: a retry with the same key gets the same answer"),
    ),
    responses(
        (status = 201, description = "Created", body = WatchView),
        (status = 400, description = "Bad Idempotency-Key, or malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
        (status = 409, description = "A watch of this search and recipients exists, the user has the most watches allowed, or the key's request is still running", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields (the sheet's messages, by column), or the key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn create_watch(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    Path(email): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let path = format!("/users/{email}/watches");
    let request = Request::new(&method, &path, &headers, &body, false);
    idempotency::run(&state, &caller, request, || async {
        let user = visible_user(&state, &caller, &email).await?;
        let input: serde_json::Map<String, Value> = json_body(&headers, &body)?;
        let watch = add_watch(&state.store, &user, input).await?;
        Ok((StatusCode::CREATED, json(WatchView::from(&watch))))
    })
    .await
}

/// Validates `input` as a watch of `user` and stores it: the rules of
/// `POST /users/{email}/watches` (one watch per search and recipients, at
/// most [`MAX_WATCHES_PER_USER`]), also used by search jobs' `watch`.
pub(crate) async fn add_watch(
    store: &crate::store::Store,
    user: &User,
    input: serde_json::Map<String, Value>,
) -> Result<ApiWatch, ApiError> {
    {
        let (kind, spec, key) = validate(input, user)?;
        let existing = store.watches_of(user.id).await?;
        if let Some(same) = existing
            .iter()
            .find(|w| w.kind == kind && search_key(w).as_deref() == Some(key.as_str()))
        {
            return Err(ApiError::conflict(
                "watch_exists",
                format!(
                    "watch {} has the same search and recipients; delete it first, or change this one",
                    same.id
                ),
            ));
        }
        if existing.len() >= MAX_WATCHES_PER_USER {
            return Err(ApiError::conflict(
                "too_many_watches",
                format!(
                    "a user may have at most {MAX_WATCHES_PER_USER} watches; delete some first"
                ),
            ));
        }
        let spec = serde_json::to_string(&spec).unwrap_or_default();
        Ok(store
            .create_watch(user.id, kind, &spec, Timestamp::now())
            .await?)
    }
}

/// The user's watches, oldest first.
#[utoipa::path(
    get,
    path = "/users/{email}/watches",
    params(("email" = String, Path, description = "The user's e-mail address")),
    responses(
        (status = 200, description = "OK", body = WatchList),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn list_watches(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<axum::Json<WatchList>, ApiError> {
    let user = visible_user(&state, &caller, &email).await?;
    let watches = state.store.watches_of(user.id).await?;
    Ok(axum::Json(WatchList {
        watches: watches.iter().map(WatchView::from).collect(),
    }))
}

/// One watch with its state: the last price (or flight status) seen, when
/// and from which source, and the alerts sent.
#[utoipa::path(
    get,
    path = "/users/{email}/watches/{id}",
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("id" = i64, Path, description = "The watch's id"),
    ),
    responses(
        (status = 200, description = "OK", body = WatchDetail),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user or watch, or not yours", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn get_watch(
    State(state): State<AppState>,
    caller: Caller,
    Path((email, id)): Path<(String, String)>,
) -> Result<axum::Json<WatchDetail>, ApiError> {
    let user = visible_user(&state, &caller, &email).await?;
    let id = watch_id(&id)?;
    let watch = state
        .store
        .watch(user.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("watch"))?;
    let state = watch_state(&state, &watch).await?;
    Ok(axum::Json(WatchDetail {
        watch: WatchView::from(&watch),
        state,
    }))
}

/// Reads a watch's state from what the cycles saved.
async fn watch_state(state: &AppState, watch: &ApiWatch) -> Result<WatchState, ApiError> {
    let store = &state.store;
    let last_seen = store
        .kv_get(&last_seen_key(watch.id))
        .await?
        .and_then(|json| serde_json::from_str::<LastSeen>(&json).ok());
    let mut view = WatchState {
        last_seen,
        armed: None,
        last_alerted_price: None,
        last_alerted_at: None,
        alerts_sent: 0,
        history: Vec::new(),
    };
    let Some(key) = state_key(watch) else {
        return Ok(view);
    };
    match watch.kind {
        WatchKind::Fare => {
            let saved = store
                .load_states_of(std::slice::from_ref(&key))
                .await?
                .remove(&key)
                .unwrap_or_default();
            view.armed = Some(saved.is_armed());
            view.last_alerted_price = saved.last_alerted.map(|m| m.amount_string());
            view.last_alerted_at = saved.last_alerted_at;
            view.alerts_sent = saved.alerts_sent;
        }
        WatchKind::Flight => {
            let saved = store
                .kv_get(&key)
                .await?
                .and_then(|json| {
                    serde_json::from_str::<crate::status::alerts::WatchState>(&json).ok()
                })
                .unwrap_or_default();
            view.alerts_sent = saved.alerts_sent;
        }
    }
    view.history = store
        .sent_log(HISTORY_SCAN)
        .await?
        .into_iter()
        .filter(|sent| sent.route_id == key && sent.sent_at >= watch.created_at)
        .take(HISTORY_SHOWN)
        .map(|sent| AlertRecord {
            sent_at: sent.sent_at,
            recipient: sent.recipient,
            message: sent.body,
        })
        .collect();
    if view.last_alerted_at.is_none() {
        view.last_alerted_at = view.history.first().map(|a| a.sent_at);
    }
    Ok(view)
}

/// Deletes one of the user's watches (its saved state stays with the
/// search it belongs to, as a deleted sheet row's does).
#[utoipa::path(
    delete,
    path = "/users/{email}/watches/{id}",
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("id" = i64, Path, description = "The watch's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: a retry with the same key gets the same answer"),
    ),
    responses(
        (status = 200, description = "OK", body = DeletedWatch),
        (status = 400, description = "Bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user or watch, or not yours", body = ErrorBody),
        (status = 409, description = "The key's request is still running", body = ErrorBody),
        (status = 422, description = "The key was used for another request", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn delete_watch(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    Path((email, id)): Path<(String, String)>,
) -> Response {
    let path = format!("/users/{email}/watches/{id}");
    let request = Request::new(&method, &path, &headers, &[], false);
    idempotency::run(&state, &caller, request, || async {
        let user = visible_user(&state, &caller, &email).await?;
        let id = watch_id(&id)?;
        if !state.store.delete_watch(user.id, id).await? {
            return Err(ApiError::not_found("watch"));
        }
        Ok((StatusCode::OK, json(DeletedWatch { deleted: id })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(phone: Option<&str>) -> User {
        User {
            id: 1,
            email: "ann@example.org".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            phone: phone.map(str::to_owned),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn body(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_fare_watch_is_stored_as_the_sheet_would_write_it() {
        let (kind, spec, key) = validate(
            body(serde_json::json!({
                "kind": "fare", "origin": "lhr| LGW", "destination": "JFK",
                "depart_date": "2099-03-01..2099-03-03", "return_date": null,
                "max_price": 450, "currency": "gbp", "adults": 2, "min_drop": "5%",
                "cooldown": "PT6H", "label": "NY",
            })),
            &user(Some("+447911123456")),
        )
        .unwrap();
        assert_eq!(kind, WatchKind::Fare);
        let text = |k: &str| spec.get(k).map(String::as_str);
        assert_eq!(text("origin"), Some("LHR|LGW"));
        assert_eq!(text("max_price"), Some("450"));
        assert_eq!(text("currency"), Some("GBP"));
        assert_eq!(text("adults"), Some("2"));
        assert_eq!(text("min_drop"), Some("5%"));
        assert_eq!(text("cooldown"), Some("6h"));
        assert_eq!(text("phone"), Some("+447911123456"), "the user's phone");
        assert_eq!(text("return_date"), None);
        // Stored and parsed again, it is the same route.
        let watch = ApiWatch {
            id: 7,
            user_id: 1,
            kind,
            spec: serde_json::to_string(&spec).unwrap(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        // Its state is its own: the sheet row's id, in the watch's namespace.
        assert_eq!(state_key(&watch), Some(format!("w7/{key}")));
    }

    #[test]
    fn problems_are_named_by_column_with_the_sheets_messages() {
        let error = validate(
            body(serde_json::json!({
                "kind": "fare", "origin": "LHRX", "destination": "JFK",
                "depart_date": "2099-03-01", "max_price": "-3",
            })),
            &user(None),
        )
        .unwrap_err();
        let fields: Vec<&str> = error.body.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["origin", "max_price", "phone"]);
        assert!(error.body.fields[2]
            .message
            .ends_with("the user has no phone number to default to"));
        let error = validate(body(serde_json::json!({"kind": "boat"})), &user(None)).unwrap_err();
        assert_eq!(error.body.fields[0].field, "kind");
    }

    #[test]
    fn a_flight_watch_is_normalised() {
        let (kind, spec, key) = validate(
            body(serde_json::json!({
                "kind": "flight", "flight": "lh 0400", "date": "2099-12-24",
                "notify_on": "cancel|land", "min_delay": "1h",
            })),
            &user(Some("+447911123456")),
        )
        .unwrap();
        assert_eq!(kind, WatchKind::Flight);
        assert_eq!(spec["flight"], "LH400");
        assert_eq!(spec["notify_on"], "cancel,land");
        assert_eq!(spec["min_delay"], "60");
        assert_eq!(key, "watch:LH400:2099-12-24:+447911123456");
    }
}
