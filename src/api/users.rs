//! `/users`: accounts. The operator creates and lists them; a user (or the
//! operator) reads or deletes one. Only what alerts need is kept: name,
//! e-mail, phone.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{self, Caller};
use super::error::{ApiError, ErrorBody, FieldError};
use super::idempotency::{self, Request};
use super::{json_body, read_body, AppState};
use crate::domain::E164;
use crate::store::{CreatedUser, NewUser, User};

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// E-mail address (compared case-insensitively; stored lower-case).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Phone number in E.164 (`+447911123456`), the default recipient of
    /// the user's watches.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// E-mail address, lower-case.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// When the account was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            phone: user.phone,
            created_at: user.created_at,
        }
    }
}

/// A created user and their bearer token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedView {
    /// The user.
    pub user: UserView,
    /// Their bearer token: keep it; it is stored hashed and never shown again.
    pub token: String,
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users, oldest first.
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Users per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// The deleted user's e-mail address.
    pub deleted: String,
}

/// Checks and normalises a user to create; every problem at once.
fn validate(input: UserInput) -> Result<NewUser, ApiError> {
    let mut fields = Vec::new();
    let email = input.email.trim().to_ascii_lowercase();
    if let Err(message) = check_email(&email) {
        fields.push(FieldError {
            field: "email".into(),
            message,
        });
    }
    for (field, value) in [
        ("first_name", &input.first_name),
        ("last_name", &input.last_name),
    ] {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control) {
            fields.push(FieldError {
                field: field.into(),
                message: "must be 1 to 100 printable characters".into(),
            });
        }
    }
    let phone = match input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(raw) => match E164::parse(raw) {
            Ok(phone) => Some(phone.as_str().to_owned()),
            Err(message) => {
                fields.push(FieldError {
                    field: "phone".into(),
                    message,
                });
                None
            }
        },
    };
    if !fields.is_empty() {
        return Err(ApiError::invalid(fields));
    }
    Ok(NewUser {
        email,
        first_name: input.first_name.trim().to_owned(),
        last_name: input.last_name.trim().to_owned(),
        phone,
    })
}

/// A plausible address: one `@`, a local part, a domain with a dot, no
/// spaces, at most 254 characters. (Deliverability is the mail server's call.)
fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{email}` is not an e-mail address"))
    }
}

/// Creates a user (operator only) and returns their token once.
#[utoipa::path(
    post,
    path = "/users",
    request_body = UserInput,
    params(("Idempotency-Key" = String, Header, description = "Required: 1 to 255 characters; a retry with the same key gets the same answer")),
    responses(
        (status = 201, description = "Created; the token is shown this once", body = CreatedView),
        (status = 400, description = "No or bad Idempotency-Key, or malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not the operator", body = ErrorBody),
        (status = 409, description = "A user with this e-mail exists, or the key's request is still running", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields, or the key was used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "users"
)]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(error) => return axum::response::IntoResponse::into_response(error),
    };
    let request = Request::new(&method, "/users", &headers, &body, true);
    idempotency::run(&state, &caller, request, || async {
        if !matches!(caller, Caller::Operator) {
            return Err(ApiError::not_found("route for this token"));
        }
        let user = validate(json_body(&headers, &body)?)?;
        let token = auth::new_token()?;
        let now = jiff::Timestamp::now();
        match state
            .store
            .create_user(&user, &auth::hash_token(&token), now)
            .await?
        {
            CreatedUser::Created(user) => {
                let view = CreatedView {
                    user: user.into(),
                    token,
                };
                Ok((
                    StatusCode::CREATED,
                    serde_json::to_value(view).unwrap_or_default(),
                ))
            }
            CreatedUser::Exists => Err(ApiError::conflict(
                "user_exists",
                format!("a user with e-mail {} exists", user.email),
            )),
        }
    })
    .await
}

/// Lists users (operator only), oldest first.
#[utoipa::path(
    get,
    path = "/users",
    params(PageQuery),
    responses(
        (status = 200, description = "OK", body = UserPage),
        (status = 400, description = "A query value that is not a number", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not the operator", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "users"
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    page: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let Query(page) = page.map_err(super::bad_query)?;
    if !matches!(caller, Caller::Operator) {
        return Err(ApiError::not_found("route for this token"));
    }
    let limit = page.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1 to 100"));
    }
    let after = match page.after.as_deref() {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_field("after", "not a cursor from `next`"))?,
    };
    let mut users = state.store.list_users(after, limit + 1).await?;
    let next = (users.len() > limit as usize).then(|| {
        users.truncate(limit as usize);
        users.last().map(|u| u.id.to_string()).unwrap_or_default()
    });
    Ok(axum::Json(UserPage {
        users: users.into_iter().map(UserView::from).collect(),
        next,
    }))
}

/// The user with `email`: the operator, or that user; 404 for anyone else.
pub(super) async fn visible_user(
    state: &AppState,
    caller: &Caller,
    email: &str,
) -> Result<User, ApiError> {
    let email = email.trim().to_ascii_lowercase();
    if !caller.may_act_for(&email) {
        return Err(ApiError::not_found("user"));
    }
    state
        .store
        .user_by_email(&email)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// One user.
#[utoipa::path(
    get,
    path = "/users/{email}",
    params(("email" = String, Path, description = "The user's e-mail address")),
    responses(
        (status = 200, description = "OK", body = UserView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "users"
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(
        visible_user(&state, &caller, &email).await?.into(),
    ))
}

/// Deletes a user with their tokens, watches, interests and keys, in one transaction.
#[utoipa::path(
    delete,
    path = "/users/{email}",
    params(
        ("email" = String, Path, description = "The user's e-mail address"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    responses(
        (status = 200, description = "OK", body = Deleted),
        (status = 400, description = "No or bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such user, or not yours", body = ErrorBody),
        (status = 409, description = "The key's request is still running", body = ErrorBody),
        (status = 422, description = "The key was used for another request", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "users"
)]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> Response {
    let path = format!("/users/{email}");
    let request = Request::new(&method, &path, &headers, &[], true);
    idempotency::run(&state, &caller, request, || async {
        let user = visible_user(&state, &caller, &email).await?;
        if !state.store.delete_user(&user.email).await? {
            return Err(ApiError::not_found("user"));
        }
        let body = serde_json::to_value(Deleted {
            deleted: user.email,
        })
        .unwrap_or_default();
        Ok((StatusCode::OK, body))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_are_checked_loosely_and_lower_cased() {
        for good in ["a@b.co", "first.last+tag@example.org"] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a@b.co.", "a b@c.co", "a@b@c.co",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        let user = validate(UserInput {
            email: " Ann@Example.ORG ".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            phone: None,
        })
        .unwrap();
        assert_eq!(user.email, "ann@example.org");
    }

    #[test]
    fn every_invalid_field_is_named_at_once() {
        let error = validate(UserInput {
            email: "nope".into(),
            first_name: " ".into(),
            last_name: "Lee".into(),
            phone: Some("12345".into()),
        })
        .unwrap_err();
        let fields: Vec<&str> = error.body.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["email", "first_name", "phone"]);
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
