//! `/interests`: the airports a user wants statistics for. Adding one asks
//! the airport collector ([`crate::collector`]) to fetch it now; the
//! collector fetches each airport once, however many users are interested.
//!
//! Codes are ICAO (`EGLL`) or IATA (`LHR`), stored as ICAO
//! ([`super::airports`]). The operator acts for anyone; a user for
//! themselves only: anyone else's e-mail answers 404, as for `/users`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::airports;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::idempotency::{self, Request};
use super::users::visible_user;
use super::{json_body, read_body, AppState};

/// An interest to add or remove.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterestInput {
    /// The user's e-mail address.
    pub email: String,
    /// ICAO (`EGLL`) or IATA (`LHR`) airport code; IATA codes are
    /// normalised to ICAO.
    pub airport_code: String,
}

/// An airport as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AirportView {
    /// ICAO code, as stored and as `/flights/...` answers.
    pub airport: String,
    /// Its IATA code, when farewatch's table knows it.
    pub iata: Option<String>,
}

impl AirportView {
    fn of(icao: String) -> Self {
        Self {
            iata: airports::iata_for_icao(&icao).map(str::to_owned),
            airport: icao,
        }
    }
}

/// What `POST /interests` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterestView {
    /// The user's e-mail address, lower-case.
    pub email: String,
    /// The airport, normalised.
    #[serde(flatten)]
    pub airport: AirportView,
    /// `false` when the user was already interested (status 200, not 201).
    pub created: bool,
    /// `started`: the collector was asked to fetch the airport now;
    /// `next_pass`: no collector runs in this process, the next pass of
    /// one that does will.
    pub collection: &'static str,
}

/// What `DELETE /interests` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedView {
    /// The user's e-mail address.
    pub email: String,
    /// The airport no longer followed (ICAO).
    pub deleted: String,
}

/// A user's airports.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterestList {
    /// The user's e-mail address.
    pub email: String,
    /// Their airports, by ICAO code.
    pub airports: Vec<AirportView>,
}

/// The body, checked: the airport normalised (422 naming `airport_code`).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), ApiError> {
    let input: InterestInput = json_body(headers, body)?;
    let airport = airports::normalise_field("airport_code", &input.airport_code)?;
    Ok((input.email, airport))
}

/// Follows an airport and asks the collector to fetch it now.
#[utoipa::path(
    post,
    path = "/interests",
    request_body = InterestInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: a retry with the same key gets the same answer")),
    responses(
        (status = 201, description = "Added; collection started", body = InterestView),
        (status = 200, description = "The user already follows it", body = InterestView),
        (status = 400, description = "Bad Idempotency-Key, or malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
        (status = 409, description = "The key's request is still running", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields (an unknown IATA code: send the ICAO code), or the key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "interests"
)]
pub async fn add_interest(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let request = Request::new(&method, "/interests", &headers, &body, false);
    idempotency::run(&state, &caller, request, || async {
        let (email, airport) = parse(&headers, &body)?;
        let user = visible_user(&state, &caller, &email).await?;
        let created = state
            .store
            .add_interest(user.id, &airport, jiff::Timestamp::now())
            .await?;
        // Asked even when the interest existed: the collector skips an
        // airport that is up to date, at no cost.
        let collection = match state.collector() {
            Some(trigger) => {
                trigger.fetch_now(&airport);
                "started"
            }
            None => "next_pass",
        };
        let view = InterestView {
            email: user.email,
            airport: AirportView::of(airport),
            created,
            collection,
        };
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, serde_json::to_value(view).unwrap_or_default()))
    })
    .await
}

/// Stops following an airport (its flights stay stored).
#[utoipa::path(
    delete,
    path = "/interests",
    request_body = InterestInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    responses(
        (status = 200, description = "OK", body = RemovedView),
        (status = 400, description = "Bad Idempotency-Key, or malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user or interest, or not yours", body = ErrorBody),
        (status = 409, description = "The key's request is still running", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields, or the key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "interests"
)]
pub async fn remove_interest(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let request = Request::new(&method, "/interests", &headers, &body, false);
    idempotency::run(&state, &caller, request, || async {
        let (email, airport) = parse(&headers, &body)?;
        let user = visible_user(&state, &caller, &email).await?;
        if !state.store.remove_interest(user.id, &airport).await? {
            return Err(ApiError::not_found("interest"));
        }
        let view = RemovedView {
            email: user.email,
            deleted: airport,
        };
        Ok((
            StatusCode::OK,
            serde_json::to_value(view).unwrap_or_default(),
        ))
    })
    .await
}

/// A user's airports, sorted by ICAO code.
#[utoipa::path(
    get,
    path = "/interests/{email}",
    params(("email" = String, Path, description = "The user's e-mail address")),
    responses(
        (status = 200, description = "OK", body = InterestList),
        (status = 400, description = "Undecodable path", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "interests"
)]
pub async fn list_interests(
    State(state): State<AppState>,
    caller: Caller,
    email: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<InterestList>, ApiError> {
    let Path(email) = email.map_err(super::bad_path)?;
    let user = visible_user(&state, &caller, &email).await?;
    let airports = state.store.interests_of(user.id).await?;
    Ok(axum::Json(InterestList {
        email: user.email,
        airports: airports.into_iter().map(AirportView::of).collect(),
    }))
}
