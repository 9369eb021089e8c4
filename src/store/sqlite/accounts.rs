//! The accounts tables (users, tokens, idempotency keys, API watches,
//! interests, airport flights) on this backend. Writes go through
//! [`Sqlite::call`] (the writer thread, each call in its own savepoint),
//! reads through [`Sqlite::read`].

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use super::{ts_from_sql, ts_to_sql, Sqlite};
use crate::store::{
    to_u64, unique_flights, Accounts, AirportFlight, ApiWatch, CreatedUser, Direction, Fail,
    KeyClaim, NewUser, StoreError, StoredKey, TokenHash, User, WatchKind,
};

#[async_trait]
impl Accounts for Sqlite {
    async fn create_user(
        &self,
        user: &NewUser,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<CreatedUser, StoreError> {
        let user = user.clone();
        let token = *token;
        self.call("create user", move |conn| {
            let email = user.email.to_lowercase();
            // Atomic: the user and its token commit together or not at all
            // (every call runs in its own savepoint, see `Sqlite::call`).
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO users (email, first_name, last_name, phone, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (email) DO NOTHING",
                )?
                .execute(params![
                    email,
                    user.first_name,
                    user.last_name,
                    user.phone,
                    ts_to_sql(now)
                ])?;
            if inserted == 0 {
                return Ok(CreatedUser::Exists);
            }
            let id = conn.last_insert_rowid();
            conn.prepare_cached(
                "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&token[..], id, ts_to_sql(now)])?;
            Ok(CreatedUser::Created(User {
                id,
                email,
                first_name: user.first_name,
                last_name: user.last_name,
                phone: user.phone,
                created_at: now,
            }))
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_lowercase();
        self.read("read user", move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, email, first_name, last_name, phone, created_at
                     FROM users WHERE email = ?1",
                )?
                .query_row(params![email], raw_user)
                .optional()?;
            row.map(RawUser::into_user).transpose()
        })
        .await
    }

    async fn user_by_token(&self, token: &TokenHash) -> Result<Option<User>, StoreError> {
        let token = *token;
        self.read("read user by token", move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT u.id, u.email, u.first_name, u.last_name, u.phone, u.created_at
                     FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1",
                )?
                .query_row(params![&token[..]], raw_user)
                .optional()?;
            row.map(RawUser::into_user).transpose()
        })
        .await
    }

    async fn list_users(&self, after_id: i64, limit: u32) -> Result<Vec<User>, StoreError> {
        self.read("list users", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, email, first_name, last_name, phone, created_at
                 FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after_id, i64::from(limit)], raw_user)?;
            rows.map(|row| row?.into_user()).collect()
        })
        .await
    }

    async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        let email = email.to_lowercase();
        self.call("delete user", move |conn| {
            let id: Option<i64> = conn
                .prepare_cached("SELECT id FROM users WHERE email = ?1")?
                .query_row(params![email], |row| row.get(0))
                .optional()?;
            let Some(id) = id else {
                return Ok(false);
            };
            // One savepoint: the keys, and through `ON DELETE CASCADE` the
            // tokens, watches and interests, go with the user or not at all.
            conn.prepare_cached("DELETE FROM idempotency_keys WHERE scope = ?1")?
                .execute(params![id.to_string()])?;
            conn.prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute(params![id])?;
            Ok(true)
        })
        .await
    }

    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8; 32],
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<KeyClaim, StoreError> {
        let (scope, key, fingerprint) = (scope.to_owned(), key.to_owned(), *fingerprint);
        // Read, decide and write in one call: the one writer runs calls one
        // at a time (and other processes wait for its lock), so of many
        // concurrent claims of a new key exactly one inserts it.
        self.call("claim idempotency key", move |conn| {
            let stored = conn
                .prepare_cached(
                    "SELECT fingerprint, locked_at, response_status, response_body
                     FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
                )?
                .query_row(params![scope, key], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?;
            let Some((stored_print, locked_at, response_status, response_body)) = stored else {
                conn.prepare_cached(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, locked_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                )?
                .execute(params![scope, key, &fingerprint[..], ts_to_sql(now)])?;
                return Ok(KeyClaim::Proceed);
            };
            let stored = StoredKey {
                fingerprint: stored_print,
                locked_at: locked_at
                    .map(|at| ts_from_sql(&at, "idempotency_keys", &key))
                    .transpose()?,
                response_status,
                response_body,
            };
            if let Some(claim) = stored.settle(&fingerprint, now, stale_after, &key)? {
                return Ok(claim);
            }
            // A stale lock: its request died. Take it over.
            conn.prepare_cached(
                "UPDATE idempotency_keys SET locked_at = ?3 WHERE scope = ?1 AND key = ?2",
            )?
            .execute(params![scope, key, ts_to_sql(now)])?;
            Ok(KeyClaim::Proceed)
        })
        .await
    }

    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        let (scope, key, body) = (scope.to_owned(), key.to_owned(), body.to_owned());
        self.call("complete idempotency key", move |conn| {
            // Only a locked key: a completed answer is never replaced. A key
            // that is gone (purged, or deleted with its user) stays gone.
            conn.prepare_cached(
                "UPDATE idempotency_keys
                 SET locked_at = NULL, response_status = ?3, response_body = ?4
                 WHERE scope = ?1 AND key = ?2 AND locked_at IS NOT NULL",
            )?
            .execute(params![scope, key, i64::from(status), body])?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.call("release idempotency key", move |conn| {
            conn.prepare_cached(
                "DELETE FROM idempotency_keys
                 WHERE scope = ?1 AND key = ?2 AND locked_at IS NOT NULL",
            )?
            .execute(params![scope, key])?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency_keys(&self, created_before: Timestamp) -> Result<u64, StoreError> {
        self.call("purge idempotency keys", move |conn| {
            let purged = conn
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute(params![ts_to_sql(created_before)])?;
            Ok(purged as u64)
        })
        .await
    }

    async fn create_watch(
        &self,
        user_id: i64,
        kind: WatchKind,
        spec: &str,
        now: Timestamp,
    ) -> Result<ApiWatch, StoreError> {
        let spec = spec.to_owned();
        self.call("create watch", move |conn| {
            conn.prepare_cached(
                "INSERT INTO api_watches (user_id, kind, spec, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![user_id, kind.as_str(), spec, ts_to_sql(now)])?;
            Ok(ApiWatch {
                id: conn.last_insert_rowid(),
                user_id,
                kind,
                spec,
                created_at: now,
            })
        })
        .await
    }

    async fn watches_of(&self, user_id: i64) -> Result<Vec<ApiWatch>, StoreError> {
        self.read("read watches", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, user_id, kind, spec, created_at
                 FROM api_watches WHERE user_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![user_id], |row| raw_watch(row, 0))?;
            rows.map(|row| row?.into_watch()).collect()
        })
        .await
    }

    async fn watch(&self, user_id: i64, id: i64) -> Result<Option<ApiWatch>, StoreError> {
        self.read("read watch", move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, user_id, kind, spec, created_at
                     FROM api_watches WHERE id = ?1 AND user_id = ?2",
                )?
                .query_row(params![id, user_id], |row| raw_watch(row, 0))
                .optional()?;
            row.map(RawWatch::into_watch).transpose()
        })
        .await
    }

    async fn delete_watch(&self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        self.call("delete watch", move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM api_watches WHERE id = ?1 AND user_id = ?2")?
                .execute(params![id, user_id])?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn all_watches(&self) -> Result<Vec<(ApiWatch, User)>, StoreError> {
        self.read("read all watches", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT w.id, w.user_id, w.kind, w.spec, w.created_at,
                        u.id, u.email, u.first_name, u.last_name, u.phone, u.created_at
                 FROM api_watches w JOIN users u ON u.id = w.user_id
                 ORDER BY w.id",
            )?;
            let rows = stmt.query_map([], |row| Ok((raw_watch(row, 0)?, raw_user_at(row, 5)?)))?;
            rows.map(|row| {
                let (watch, user) = row?;
                Ok((watch.into_watch()?, user.into_user()?))
            })
            .collect()
        })
        .await
    }

    async fn watch_by_id(&self, id: i64) -> Result<Option<(ApiWatch, User)>, StoreError> {
        self.read("read watch by id", move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT w.id, w.user_id, w.kind, w.spec, w.created_at,
                            u.id, u.email, u.first_name, u.last_name, u.phone, u.created_at
                     FROM api_watches w JOIN users u ON u.id = w.user_id
                     WHERE w.id = ?1",
                )?
                .query_row(params![id], |row| {
                    Ok((raw_watch(row, 0)?, raw_user_at(row, 5)?))
                })
                .optional()?;
            row.map(|(watch, user)| Ok((watch.into_watch()?, user.into_user()?)))
                .transpose()
        })
        .await
    }

    async fn add_interest(
        &self,
        user_id: i64,
        airport: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let airport = airport.to_owned();
        self.call("add interest", move |conn| {
            let added = conn
                .prepare_cached(
                    "INSERT INTO interests (user_id, airport, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, airport) DO NOTHING",
                )?
                .execute(params![user_id, airport, ts_to_sql(now)])?;
            Ok(added == 1)
        })
        .await
    }

    async fn remove_interest(&self, user_id: i64, airport: &str) -> Result<bool, StoreError> {
        let airport = airport.to_owned();
        self.call("remove interest", move |conn| {
            let removed = conn
                .prepare_cached("DELETE FROM interests WHERE user_id = ?1 AND airport = ?2")?
                .execute(params![user_id, airport])?;
            Ok(removed == 1)
        })
        .await
    }

    async fn interests_of(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        self.read("read interests", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT airport FROM interests WHERE user_id = ?1 ORDER BY airport",
            )?;
            let rows = stmt.query_map(params![user_id], |row| row.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn interest_airports(&self) -> Result<Vec<String>, StoreError> {
        self.read("read interest airports", |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT DISTINCT airport FROM interests ORDER BY airport")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn upsert_airport_flights(&self, flights: &[AirportFlight]) -> Result<u64, StoreError> {
        if flights.is_empty() {
            return Ok(0);
        }
        let flights: Vec<AirportFlight> = unique_flights(flights).into_iter().cloned().collect();
        self.call("store airport flights", move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO airport_flights
                     (icao24, first_seen, last_seen, departure_airport, arrival_airport, callsign,
                      departure_horizontal_distance, departure_vertical_distance,
                      arrival_horizontal_distance, arrival_vertical_distance,
                      departure_candidates, arrival_candidates)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (icao24, first_seen) DO UPDATE SET
                     last_seen                     = excluded.last_seen,
                     departure_airport             = excluded.departure_airport,
                     arrival_airport               = excluded.arrival_airport,
                     callsign                      = excluded.callsign,
                     departure_horizontal_distance = excluded.departure_horizontal_distance,
                     departure_vertical_distance   = excluded.departure_vertical_distance,
                     arrival_horizontal_distance   = excluded.arrival_horizontal_distance,
                     arrival_vertical_distance     = excluded.arrival_vertical_distance,
                     departure_candidates          = excluded.departure_candidates,
                     arrival_candidates            = excluded.arrival_candidates",
            )?;
            let mut written = 0u64;
            for f in &flights {
                written += stmt.execute(params![
                    f.icao24,
                    ts_to_sql(f.first_seen),
                    ts_to_sql(f.last_seen),
                    f.departure_airport,
                    f.arrival_airport,
                    f.callsign,
                    f.departure_horizontal_distance,
                    f.departure_vertical_distance,
                    f.arrival_horizontal_distance,
                    f.arrival_vertical_distance,
                    f.departure_candidates,
                    f.arrival_candidates,
                ])? as u64;
            }
            Ok(written)
        })
        .await
    }

    async fn airport_flights(
        &self,
        airport: &str,
        direction: Direction,
        from: Timestamp,
        to: Timestamp,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AirportFlight>, StoreError> {
        let airport = airport.to_owned();
        self.read("read airport flights", move |conn| {
            // Two fixed statements, not a spliced column name.
            let sql = match direction {
                Direction::Arrivals => {
                    "SELECT icao24, first_seen, last_seen, departure_airport, arrival_airport,
                            callsign, departure_horizontal_distance, departure_vertical_distance,
                            arrival_horizontal_distance, arrival_vertical_distance,
                            departure_candidates, arrival_candidates
                     FROM airport_flights
                     WHERE arrival_airport = ?1 AND first_seen >= ?2 AND first_seen < ?3
                     ORDER BY first_seen, icao24 LIMIT ?4 OFFSET ?5"
                }
                Direction::Departures => {
                    "SELECT icao24, first_seen, last_seen, departure_airport, arrival_airport,
                            callsign, departure_horizontal_distance, departure_vertical_distance,
                            arrival_horizontal_distance, arrival_vertical_distance,
                            departure_candidates, arrival_candidates
                     FROM airport_flights
                     WHERE departure_airport = ?1 AND first_seen >= ?2 AND first_seen < ?3
                     ORDER BY first_seen, icao24 LIMIT ?4 OFFSET ?5"
                }
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(
                params![
                    airport,
                    ts_to_sql(from),
                    ts_to_sql(to),
                    i64::from(limit),
                    i64::from(offset)
                ],
                raw_flight,
            )?;
            rows.map(|row| row?.into_flight()).collect()
        })
        .await
    }

    async fn airport_flight_span(
        &self,
        airport: &str,
    ) -> Result<Option<(Timestamp, Timestamp, u64)>, StoreError> {
        let airport = airport.to_owned();
        self.read("read airport flight span", move |conn| {
            let (first, last, count) = conn
                .prepare_cached(
                    "SELECT MIN(first_seen), MAX(first_seen), COUNT(*) FROM airport_flights
                     WHERE departure_airport = ?1 OR arrival_airport = ?1",
                )?
                .query_row(params![airport], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            Ok(Some((
                ts_from_sql(&first, "airport_flights", &airport)?,
                ts_from_sql(&last, "airport_flights", &airport)?,
                to_u64(count, || format!("airport_flights count for `{airport}`"))?,
            )))
        })
        .await
    }
}

/// A `users` row as read, before its timestamp is parsed.
struct RawUser {
    id: i64,
    email: String,
    first_name: String,
    last_name: String,
    phone: Option<String>,
    created_at: String,
}

impl RawUser {
    fn into_user(self) -> Result<User, Fail> {
        let created_at = ts_from_sql(&self.created_at, "users", &self.id.to_string())?;
        Ok(User {
            id: self.id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            phone: self.phone,
            created_at,
        })
    }
}

/// A user (`id, email, first_name, last_name, phone, created_at`) from the
/// start of `row`.
fn raw_user(row: &Row<'_>) -> rusqlite::Result<RawUser> {
    raw_user_at(row, 0)
}

/// The columns of [`raw_user`] from column `at` of `row` on.
fn raw_user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        id: row.get(at)?,
        email: row.get(at + 1)?,
        first_name: row.get(at + 2)?,
        last_name: row.get(at + 3)?,
        phone: row.get(at + 4)?,
        created_at: row.get(at + 5)?,
    })
}

/// An `api_watches` row as read (`id, user_id, kind, spec, created_at` from
/// column `at` on).
struct RawWatch {
    id: i64,
    user_id: i64,
    kind: String,
    spec: String,
    created_at: String,
}

fn raw_watch(row: &Row<'_>, at: usize) -> rusqlite::Result<RawWatch> {
    Ok(RawWatch {
        id: row.get(at)?,
        user_id: row.get(at + 1)?,
        kind: row.get(at + 2)?,
        spec: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
    })
}

impl RawWatch {
    fn into_watch(self) -> Result<ApiWatch, Fail> {
        let key = self.id.to_string();
        let kind = WatchKind::parse(&self.kind).ok_or_else(|| {
            Fail::Corrupt(format!("api_watches row `{key}` has kind `{}`", self.kind))
        })?;
        Ok(ApiWatch {
            id: self.id,
            user_id: self.user_id,
            kind,
            spec: self.spec,
            created_at: ts_from_sql(&self.created_at, "api_watches", &key)?,
        })
    }
}

/// An `airport_flights` row as read, before its timestamps are parsed.
struct RawFlight {
    flight: AirportFlight,
    first_seen: String,
    last_seen: String,
}

fn raw_flight(row: &Row<'_>) -> rusqlite::Result<RawFlight> {
    Ok(RawFlight {
        flight: AirportFlight {
            icao24: row.get(0)?,
            first_seen: Timestamp::UNIX_EPOCH,
            last_seen: Timestamp::UNIX_EPOCH,
            departure_airport: row.get(3)?,
            arrival_airport: row.get(4)?,
            callsign: row.get(5)?,
            departure_horizontal_distance: row.get(6)?,
            departure_vertical_distance: row.get(7)?,
            arrival_horizontal_distance: row.get(8)?,
            arrival_vertical_distance: row.get(9)?,
            departure_candidates: row.get(10)?,
            arrival_candidates: row.get(11)?,
        },
        first_seen: row.get(1)?,
        last_seen: row.get(2)?,
    })
}

impl RawFlight {
    fn into_flight(self) -> Result<AirportFlight, Fail> {
        let mut flight = self.flight;
        let key = format!("{} {}", flight.icao24, self.first_seen);
        flight.first_seen = ts_from_sql(&self.first_seen, "airport_flights", &key)?;
        flight.last_seen = ts_from_sql(&self.last_seen, "airport_flights", &key)?;
        Ok(flight)
    }
}
