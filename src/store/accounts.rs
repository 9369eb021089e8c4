//! What `farewatch serve` keeps: API users and their bearer tokens (stored
//! hashed), idempotency keys, API watches, airport interests and the
//! airport flights the collector gathers. The [`Accounts`] trait is the
//! backends' half; [`Store`] methods are the typed API.
//!
//! Schema (version 4, `migrations/*/0004_accounts.sql`):
//! - `users`: `id` (identity), `email` (unique, stored lower-case),
//!   `first_name`, `last_name`, `phone` (E.164, NULL), `created_at`.
//! - `api_tokens`: `token_hash` (SHA-256 of the token, 32 bytes, PK),
//!   `user_id` (FK, cascade), `created_at`.
//! - `idempotency_keys`: (`scope`, `key`) PK — the scope is the caller (a
//!   user id or `operator`) — `fingerprint` (SHA-256 of method, path and
//!   body), `locked_at` (NULL once completed), `response_status`,
//!   `response_body`, `created_at`.
//! - `api_watches`: `id` (identity), `user_id` (FK, cascade), `kind`
//!   (`fare` or `flight`), `spec` (the row's fields as JSON text),
//!   `created_at`.
//! - `interests`: (`user_id` FK cascade, `airport` ICAO) PK, `created_at`.
//! - `airport_flights`: (`icao24`, `first_seen`) PK, `last_seen`,
//!   `departure_airport`, `arrival_airport` (ICAO, NULL), `callsign`,
//!   the four distance fields and the two candidate counts (NULL).
//!
//! Deleting a user removes their tokens, watches, interests and
//! idempotency keys in the same transaction.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use super::{Store, StoreError};

/// The SHA-256 of a bearer token: what is stored and looked up.
pub type TokenHash = [u8; 32];

/// An API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The database id.
    pub id: i64,
    /// Lower-case e-mail address (unique).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E.164 phone number, if given (the default recipient of their watches).
    pub phone: Option<String>,
    /// When the user was created.
    pub created_at: Timestamp,
}

/// A user to create (already validated; `email` lower-case).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lower-case e-mail address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E.164 phone number.
    pub phone: Option<String>,
}

/// What [`Store::create_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedUser {
    /// Created, with its token.
    Created(User),
    /// A user with that e-mail address exists; nothing was written.
    Exists,
}

/// What [`Store::claim_idempotency_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// A new key (or a stale lock taken over): run the request, then
    /// [`Store::complete_idempotency_key`] or [`Store::release_idempotency_key`].
    Proceed,
    /// The key completed: replay this response without running anything.
    Replay {
        /// The stored HTTP status.
        status: u16,
        /// The stored body.
        body: String,
    },
    /// Another request with the key is running (locked less than
    /// `stale_after` ago).
    InProgress,
    /// The key was used for a different request (another fingerprint).
    Mismatch,
}

/// The kind of an API watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// A fare watch: the fields of a routes.csv row.
    Fare,
    /// A flight watch: the fields of a flights.csv row.
    Flight,
}

impl WatchKind {
    /// `fare` or `flight`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fare => "fare",
            Self::Flight => "flight",
        }
    }

    /// Parses what [`WatchKind::as_str`] wrote.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "fare" => Some(Self::Fare),
            "flight" => Some(Self::Flight),
            _ => None,
        }
    }
}

/// An API watch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiWatch {
    /// The database id.
    pub id: i64,
    /// Its owner.
    pub user_id: i64,
    /// Fare or flight.
    pub kind: WatchKind,
    /// The row's fields as a JSON object (column name -> cell text).
    pub spec: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// Arrivals or departures at an airport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Flights whose estimated arrival airport is the airport.
    Arrivals,
    /// Flights whose estimated departure airport is the airport.
    Departures,
}

/// One flight seen by OpenSky, stored once per (`icao24`, `first_seen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirportFlight {
    /// The transponder's 24-bit address, lower-case hex.
    pub icao24: String,
    /// First seen (seconds precision).
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Estimated departure airport (ICAO).
    pub departure_airport: Option<String>,
    /// Estimated arrival airport (ICAO).
    pub arrival_airport: Option<String>,
    /// Callsign, trimmed.
    pub callsign: Option<String>,
    /// Horizontal distance of the last position to the departure airport (m).
    pub departure_horizontal_distance: Option<i64>,
    /// Vertical distance of the last position to the departure airport (m).
    pub departure_vertical_distance: Option<i64>,
    /// Horizontal distance of the last position to the arrival airport (m).
    pub arrival_horizontal_distance: Option<i64>,
    /// Vertical distance of the last position to the arrival airport (m).
    pub arrival_vertical_distance: Option<i64>,
    /// Number of other possible departure airports.
    pub departure_candidates: Option<i64>,
    /// Number of other possible arrival airports.
    pub arrival_candidates: Option<i64>,
}

/// The backends' half of the accounts API; each method is documented on
/// the [`Store`] method of the same name.
#[allow(missing_docs)]
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    async fn create_user(
        &self,
        user: &NewUser,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<CreatedUser, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_token(&self, token: &TokenHash) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, after_id: i64, limit: u32) -> Result<Vec<User>, StoreError>;
    async fn delete_user(&self, email: &str) -> Result<bool, StoreError>;

    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8; 32],
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<KeyClaim, StoreError>;
    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError>;
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError>;
    async fn purge_idempotency_keys(&self, created_before: Timestamp) -> Result<u64, StoreError>;

    async fn create_watch(
        &self,
        user_id: i64,
        kind: WatchKind,
        spec: &str,
        now: Timestamp,
    ) -> Result<ApiWatch, StoreError>;
    async fn watches_of(&self, user_id: i64) -> Result<Vec<ApiWatch>, StoreError>;
    async fn watch(&self, user_id: i64, id: i64) -> Result<Option<ApiWatch>, StoreError>;
    async fn delete_watch(&self, user_id: i64, id: i64) -> Result<bool, StoreError>;
    async fn all_watches(&self) -> Result<Vec<(ApiWatch, User)>, StoreError>;
    async fn watch_by_id(&self, id: i64) -> Result<Option<(ApiWatch, User)>, StoreError>;

    async fn add_interest(
        &self,
        user_id: i64,
        airport: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn remove_interest(&self, user_id: i64, airport: &str) -> Result<bool, StoreError>;
    async fn interests_of(&self, user_id: i64) -> Result<Vec<String>, StoreError>;
    async fn interest_airports(&self) -> Result<Vec<String>, StoreError>;

    async fn upsert_airport_flights(&self, flights: &[AirportFlight]) -> Result<u64, StoreError>;
    async fn airport_flights(
        &self,
        airport: &str,
        direction: Direction,
        from: Timestamp,
        to: Timestamp,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AirportFlight>, StoreError>;
    async fn airport_flight_span(
        &self,
        airport: &str,
    ) -> Result<Option<(Timestamp, Timestamp, u64)>, StoreError>;
}

impl Store {
    /// Creates `user` with its first bearer token (hashed), in one
    /// transaction; [`CreatedUser::Exists`] when the e-mail address is
    /// taken (compared lower-case), and then nothing is written.
    pub async fn create_user(
        &self,
        user: &NewUser,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<CreatedUser, StoreError> {
        self.backend.create_user(user, token, now).await
    }

    /// The user with this (lower-case) e-mail address.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.backend.user_by_email(email).await
    }

    /// The user a bearer token (its hash) belongs to.
    pub async fn user_by_token(&self, token: &TokenHash) -> Result<Option<User>, StoreError> {
        self.backend.user_by_token(token).await
    }

    /// Up to `limit` users with an id above `after_id`, by id (keyset pagination).
    pub async fn list_users(&self, after_id: i64, limit: u32) -> Result<Vec<User>, StoreError> {
        self.backend.list_users(after_id, limit).await
    }

    /// Deletes the user and, in the same transaction, their tokens,
    /// watches, interests and idempotency keys; `false` when there was none.
    pub async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        self.backend.delete_user(email).await
    }

    /// Claims an idempotency key for a request in one short transaction:
    /// a new key is inserted locked at `now` ([`KeyClaim::Proceed`]); a
    /// completed one with the same fingerprint is replayed; one locked less
    /// than `stale_after` ago is [`KeyClaim::InProgress`]; a lock older than
    /// that (its request died) is taken over ([`KeyClaim::Proceed`]); any
    /// other fingerprint is [`KeyClaim::Mismatch`]. Of many concurrent
    /// claims of one new key exactly one proceeds.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8; 32],
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<KeyClaim, StoreError> {
        self.backend
            .claim_idempotency_key(scope, key, fingerprint, now, stale_after)
            .await
    }

    /// Stores the response of a claimed key and unlocks it: later claims replay it.
    /// A key that is not locked (already completed, or gone: purged, or
    /// deleted with its user) is left as it is.
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        self.backend
            .complete_idempotency_key(scope, key, status, body)
            .await
    }

    /// Forgets a claimed key (the request failed before it changed
    /// anything): a retry runs again. A completed key is kept.
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        self.backend.release_idempotency_key(scope, key).await
    }

    /// Deletes keys created before `created_before`; returns how many.
    pub async fn purge_idempotency_keys(
        &self,
        created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        self.backend.purge_idempotency_keys(created_before).await
    }

    /// Stores a validated watch for `user_id`.
    pub async fn create_watch(
        &self,
        user_id: i64,
        kind: WatchKind,
        spec: &str,
        now: Timestamp,
    ) -> Result<ApiWatch, StoreError> {
        self.backend.create_watch(user_id, kind, spec, now).await
    }

    /// A user's watches, by id.
    pub async fn watches_of(&self, user_id: i64) -> Result<Vec<ApiWatch>, StoreError> {
        self.backend.watches_of(user_id).await
    }

    /// One of a user's watches (`None` when it is not theirs or does not exist).
    pub async fn watch(&self, user_id: i64, id: i64) -> Result<Option<ApiWatch>, StoreError> {
        self.backend.watch(user_id, id).await
    }

    /// Deletes one of a user's watches; `false` when it is not theirs or does not exist.
    pub async fn delete_watch(&self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        self.backend.delete_watch(user_id, id).await
    }

    /// Every API watch with its owner, by watch id (for the cycles).
    pub async fn all_watches(&self) -> Result<Vec<(ApiWatch, User)>, StoreError> {
        self.backend.all_watches().await
    }

    /// Any user's watch by its id, with its owner; `None` when there is no
    /// such watch. For the operator (`farewatch history --watch ID`): the
    /// API looks watches up with [`Store::watch`], scoped to their user.
    pub async fn watch_by_id(&self, id: i64) -> Result<Option<(ApiWatch, User)>, StoreError> {
        self.backend.watch_by_id(id).await
    }

    /// Records that `user_id` is interested in `airport` (ICAO); `false`
    /// when they already were.
    pub async fn add_interest(
        &self,
        user_id: i64,
        airport: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.backend.add_interest(user_id, airport, now).await
    }

    /// Removes an interest; `false` when there was none.
    pub async fn remove_interest(&self, user_id: i64, airport: &str) -> Result<bool, StoreError> {
        self.backend.remove_interest(user_id, airport).await
    }

    /// A user's airports, sorted.
    pub async fn interests_of(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        self.backend.interests_of(user_id).await
    }

    /// Every airport anyone is interested in, once each, sorted.
    pub async fn interest_airports(&self) -> Result<Vec<String>, StoreError> {
        self.backend.interest_airports().await
    }

    /// Stores flights, each once: a flight already stored (same `icao24`
    /// and `first_seen`) is updated, never duplicated. Returns how many
    /// rows were written.
    pub async fn upsert_airport_flights(
        &self,
        flights: &[AirportFlight],
    ) -> Result<u64, StoreError> {
        self.backend.upsert_airport_flights(flights).await
    }

    /// Flights arriving at or departing from `airport` with `first_seen`
    /// in `[from, to)`, by `first_seen` then `icao24`, paginated.
    pub async fn airport_flights(
        &self,
        airport: &str,
        direction: Direction,
        from: Timestamp,
        to: Timestamp,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AirportFlight>, StoreError> {
        self.backend
            .airport_flights(airport, direction, from, to, offset, limit)
            .await
    }

    /// The earliest and latest `first_seen` of flights touching `airport`
    /// (either direction) and how many there are; `None` when none is stored.
    pub async fn airport_flight_span(
        &self,
        airport: &str,
    ) -> Result<Option<(Timestamp, Timestamp, u64)>, StoreError> {
        self.backend.airport_flight_span(airport).await
    }
}
