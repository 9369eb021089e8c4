//! `GET /users/{email}/watches/{id}/history` and `.../history.svg`: a fare
//! watch's price history, its verdict and its chart.
//!
//! A watch may expand to several searches (origins, destinations, dates);
//! its history is **the cheapest price per observation time across its
//! lookups** ([`crate::app::history::load_many`]), in the watch's currency.
//! The verdict is on the latest of those prices, against the typical range
//! of the last 60 days ([`crate::verdict`]). The chart draws the prices,
//! the watch's maximum price as a line, the typical range shaded, and each
//! alert sent for the watch (from the sent log) marked on the price seen
//! then. Same access as the other watch routes: the operator or the watch's
//! owner; anyone else gets 404.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::users::visible_user;
use super::watches::watch_id;
use super::{bad_query, AppState};
use crate::app::history::{self, History};
use crate::domain::Money;
use crate::route::Route;
use crate::store::{ApiWatch, PricePoint, WatchKind};

/// Days of history shown when the query names none.
pub const DEFAULT_DAYS: i64 = 60;

/// Most days of history one request may ask for.
pub const MAX_DAYS: i64 = 366;

/// The history routes' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Show the last N days, 1 to 366 (default 60).
    pub days: Option<String>,
}

/// One observed price.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// When the provider was asked.
    #[schema(value_type = String, format = DateTime)]
    pub observed_at: Timestamp,
    /// The price, e.g. `"412.50"`.
    pub price: String,
    /// The price in minor units.
    pub price_minor: i64,
    /// The provider that answered.
    pub source: String,
    /// The search it was observed for (`LHR:JFK:2027-03-01:ow:1:EUR`).
    pub search_key: String,
}

/// A price range.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceRange {
    /// The low end, e.g. `"380.00"`.
    pub low: String,
    /// The high end.
    pub high: String,
    /// The low end in minor units.
    pub low_minor: i64,
    /// The high end in minor units.
    pub high_minor: i64,
}

/// A fare watch's price history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// The watch's id.
    pub watch_id: i64,
    /// The currency of every price.
    pub currency: String,
    /// How the points are built: `cheapest_per_observation` (the cheapest
    /// price across the watch's lookups at each observation time).
    pub series: &'static str,
    /// The searches the watch expands to.
    pub lookups: Vec<String>,
    /// The watch's maximum price.
    pub max_price: String,
    /// The observations of the last `days` days, oldest first.
    pub points: Vec<HistoryPoint>,
    /// The newest observation; null when there is none.
    pub latest: Option<HistoryPoint>,
    /// `low`, `typical`, `high` or `unknown` (too little history).
    pub verdict: String,
    /// The typical range (25th to 75th percentile of the daily minimums
    /// of the last 60 days); null with fewer than 8 days of history.
    pub typical_range: Option<PriceRange>,
}

fn point_view(point: &PricePoint) -> HistoryPoint {
    HistoryPoint {
        observed_at: point.observed_at,
        price: point.price.amount_string(),
        price_minor: point.price.minor,
        source: point.source.clone(),
        search_key: point.search_key.clone(),
    }
}

/// The days the query asks for, or a 422 naming `days`.
fn days(query: &HistoryQuery) -> Result<i64, ApiError> {
    match query.days.as_deref() {
        None => Ok(DEFAULT_DAYS),
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "days",
                    format!("must be a whole number from 1 to {MAX_DAYS}"),
                )
            }),
    }
}

/// The fare watch `id` of `email` (404 unless the caller may see it; 404
/// for a flight watch, which has no prices), as a route.
async fn fare_watch(
    state: &AppState,
    caller: &Caller,
    email: &str,
    id: &str,
) -> Result<(ApiWatch, Route), ApiError> {
    let user = visible_user(state, caller, email).await?;
    let id = watch_id(id)?;
    let watch = state
        .store
        .watch(user.id, id)
        .await?
        .filter(|w| w.kind == WatchKind::Fare)
        .ok_or_else(|| ApiError::not_found("fare watch"))?;
    let route = history::watch_route(&watch).map_err(|_| {
        ApiError::conflict(
            "unreadable_watch",
            format!("watch {id}'s stored fields are no longer valid"),
        )
    })?;
    Ok((watch, route))
}

/// The watch's history over the query's days.
async fn load(state: &AppState, route: &Route, query: &HistoryQuery) -> Result<History, ApiError> {
    let now = Timestamp::now();
    let since = now
        .checked_sub(SignedDuration::from_hours(24 * days(query)?))
        .unwrap_or(Timestamp::MIN);
    Ok(history::load_route(&state.store, route, since, now).await?)
}

/// A fare watch's price history: the cheapest price per observation time
/// across its lookups, with the verdict on the latest and the typical range.
#[utoipa::path(
    get,
    path = "/users/{email}/watches/{id}/history",
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("id" = i64, Path, description = "The watch's id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The prices, the verdict and the typical range", body = HistoryView),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user or fare watch, or not yours", body = ErrorBody),
        (status = 409, description = "The watch's stored fields are no longer valid", body = ErrorBody),
        (status = 422, description = "`days` is not 1 to 366", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn watch_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((email, id)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<axum::Json<HistoryView>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let (watch, route) = fare_watch(&state, &caller, &email, &id).await?;
    let history = load(&state, &route, &query).await?;
    Ok(axum::Json(HistoryView {
        watch_id: watch.id,
        currency: route.currency().as_str().to_owned(),
        series: "cheapest_per_observation",
        lookups: route.lookups().iter().map(|k| k.history_key()).collect(),
        max_price: route.rule.max_price.amount_string(),
        points: history.points.iter().map(point_view).collect(),
        latest: history.latest.as_ref().map(point_view),
        verdict: history.verdict.as_str().to_owned(),
        typical_range: history
            .typical_range
            .map(|(low, high): (Money, Money)| PriceRange {
                low: low.amount_string(),
                high: high.amount_string(),
                low_minor: low.minor,
                high_minor: high.minor,
            }),
    }))
}

/// A fare watch's price chart (SVG): the prices, its maximum price as a
/// line, the typical range shaded and its alerts marked.
#[utoipa::path(
    get,
    path = "/users/{email}/watches/{id}/history.svg",
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("id" = i64, Path, description = "The watch's id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The chart, an SVG image", content_type = "image/svg+xml", body = String),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user or fare watch, or not yours", body = ErrorBody),
        (status = 409, description = "The watch's stored fields are no longer valid", body = ErrorBody),
        (status = 422, description = "`days` is not 1 to 366", body = ErrorBody),
        (status = 500, description = "The chart could not be drawn", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "watches"
)]
pub async fn watch_history_svg(
    State(state): State<AppState>,
    caller: Caller,
    Path((email, id)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let (watch, route) = fare_watch(&state, &caller, &email, &id).await?;
    let history = load(&state, &route, &query).await?;
    let extras = history::route_extras(&state.store, &route, watch.created_at).await?;
    let title = history::route_title(&route);
    let svg = history::svg(&history, route.currency(), &title, &extras).map_err(|error| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "chart_failed",
            error.to_string(),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
