//! The accounts tables (users, tokens, idempotency keys, API watches,
//! interests, airport flights) on this backend. Writes are values
//! ([`AccountWrite`]) the writer task runs in its batches, like every other
//! write (a batch the database refuses is run again write by write); reads
//! use the pool.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::write::{Done, Write};
use super::{ts, ts_opt, Postgres};
use crate::store::{
    to_u64, unique_flights, Accounts, AirportFlight, ApiWatch, CreatedUser, Direction, Fail,
    KeyClaim, NewUser, StoreError, StoredKey, TokenHash, User, WatchKind,
};

/// Flights per upsert statement (each column is one array parameter).
const FLIGHTS_PER_STATEMENT: usize = 1000;

/// How often a claim retries when the key it collided with vanished before
/// it could read it (released by its request in between).
const CLAIM_ATTEMPTS: usize = 5;

/// A write to the accounts tables, with everything it needs.
pub(super) enum AccountWrite {
    CreateUser {
        user: NewUser,
        token: TokenHash,
        now: Timestamp,
    },
    DeleteUser {
        email: String,
    },
    ClaimKey {
        scope: String,
        key: String,
        fingerprint: [u8; 32],
        now: Timestamp,
        stale_after: Duration,
    },
    CompleteKey {
        scope: String,
        key: String,
        status: u16,
        body: String,
    },
    ReleaseKey {
        scope: String,
        key: String,
    },
    PurgeKeys {
        created_before: Timestamp,
    },
    CreateWatch {
        user_id: i64,
        kind: WatchKind,
        spec: String,
        now: Timestamp,
    },
    DeleteWatch {
        user_id: i64,
        id: i64,
    },
    AddInterest {
        user_id: i64,
        airport: String,
        now: Timestamp,
    },
    RemoveInterest {
        user_id: i64,
        airport: String,
    },
    UpsertFlights {
        /// Each (`icao24`, `first_seen`) once.
        flights: Vec<AirportFlight>,
    },
}

/// What an [`AccountWrite`] answers.
pub(super) enum AccountDone {
    Unit,
    Created(CreatedUser),
    Claim(KeyClaim),
    Flag(bool),
    Count(u64),
    Watch(ApiWatch),
}

impl AccountWrite {
    /// Runs the write inside the caller's transaction. A failure of its own
    /// (a corrupt row) is returned before anything is changed.
    pub(super) async fn apply(&self, conn: &mut PgConnection) -> Result<AccountDone, Fail> {
        match self {
            Self::CreateUser { user, token, now } => create_user(conn, user, token, *now)
                .await
                .map(AccountDone::Created),
            Self::DeleteUser { email } => {
                let id: Option<i64> =
                    sqlx::query_scalar("DELETE FROM users WHERE email = $1 RETURNING id")
                        .bind(email)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(id) = id else {
                    return Ok(AccountDone::Flag(false));
                };
                // Same transaction: the keys go with the user (its tokens,
                // watches and interests through `ON DELETE CASCADE`).
                sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                Ok(AccountDone::Flag(true))
            }
            Self::ClaimKey {
                scope,
                key,
                fingerprint,
                now,
                stale_after,
            } => claim_key(conn, scope, key, fingerprint, *now, *stale_after)
                .await
                .map(AccountDone::Claim),
            Self::CompleteKey {
                scope,
                key,
                status,
                body,
            } => {
                // Only a locked key: a completed answer is never replaced. A
                // key that is gone (purged, or deleted with its user) stays gone.
                sqlx::query(
                    "UPDATE idempotency_keys
                     SET locked_at = NULL, response_status = $3, response_body = $4
                     WHERE scope = $1 AND key = $2 AND locked_at IS NOT NULL",
                )
                .bind(scope)
                .bind(key)
                .bind(i32::from(*status))
                .bind(body)
                .execute(&mut *conn)
                .await?;
                Ok(AccountDone::Unit)
            }
            Self::ReleaseKey { scope, key } => {
                sqlx::query(
                    "DELETE FROM idempotency_keys
                     WHERE scope = $1 AND key = $2 AND locked_at IS NOT NULL",
                )
                .bind(scope)
                .bind(key)
                .execute(&mut *conn)
                .await?;
                Ok(AccountDone::Unit)
            }
            Self::PurgeKeys { created_before } => {
                let purged = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(created_before.to_sqlx())
                    .execute(&mut *conn)
                    .await?;
                Ok(AccountDone::Count(purged.rows_affected()))
            }
            Self::CreateWatch {
                user_id,
                kind,
                spec,
                now,
            } => {
                let row = sqlx::query(
                    "INSERT INTO api_watches (user_id, kind, spec, created_at)
                     VALUES ($1, $2, $3, $4)
                     RETURNING id, created_at",
                )
                .bind(user_id)
                .bind(kind.as_str())
                .bind(spec)
                .bind(now.to_sqlx())
                .fetch_one(&mut *conn)
                .await?;
                Ok(AccountDone::Watch(ApiWatch {
                    id: row.try_get("id")?,
                    user_id: *user_id,
                    kind: *kind,
                    spec: spec.clone(),
                    created_at: ts(&row, "created_at")?,
                }))
            }
            Self::DeleteWatch { user_id, id } => {
                let deleted = sqlx::query("DELETE FROM api_watches WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                Ok(AccountDone::Flag(deleted.rows_affected() == 1))
            }
            Self::AddInterest {
                user_id,
                airport,
                now,
            } => {
                let added = sqlx::query(
                    "INSERT INTO interests (user_id, airport, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, airport) DO NOTHING",
                )
                .bind(user_id)
                .bind(airport)
                .bind(now.to_sqlx())
                .execute(&mut *conn)
                .await?;
                Ok(AccountDone::Flag(added.rows_affected() == 1))
            }
            Self::RemoveInterest { user_id, airport } => {
                let removed =
                    sqlx::query("DELETE FROM interests WHERE user_id = $1 AND airport = $2")
                        .bind(user_id)
                        .bind(airport)
                        .execute(&mut *conn)
                        .await?;
                Ok(AccountDone::Flag(removed.rows_affected() == 1))
            }
            Self::UpsertFlights { flights } => {
                let mut written = 0;
                for chunk in flights.chunks(FLIGHTS_PER_STATEMENT) {
                    written += upsert_flights(conn, chunk).await?;
                }
                Ok(AccountDone::Count(written))
            }
        }
    }
}

/// [`crate::store::Store::create_user`]: the user, then its token; nothing
/// when the address is taken.
async fn create_user(
    conn: &mut PgConnection,
    user: &NewUser,
    token: &TokenHash,
    now: Timestamp,
) -> Result<CreatedUser, Fail> {
    let email = user.email.to_lowercase();
    // DO NOTHING waits for a concurrent insert of the same address to
    // commit or roll back, then inserts nothing or proceeds.
    let row = sqlx::query(
        "INSERT INTO users (email, first_name, last_name, phone, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (email) DO NOTHING
         RETURNING id, created_at",
    )
    .bind(&email)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(&user.phone)
    .bind(now.to_sqlx())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(CreatedUser::Exists);
    };
    let id: i64 = row.try_get("id")?;
    let created_at = ts(&row, "created_at")?;
    sqlx::query("INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
        .bind(&token[..])
        .bind(id)
        .bind(created_at.to_sqlx())
        .execute(&mut *conn)
        .await?;
    Ok(CreatedUser::Created(User {
        id,
        email,
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        phone: user.phone.clone(),
        created_at,
    }))
}

/// [`crate::store::Store::claim_idempotency_key`]: insert the key locked,
/// or lock the row that is there and settle the claim against it. A
/// concurrent insert of the same key makes the `INSERT` wait for its
/// transaction, and `FOR UPDATE` makes concurrent take-overs of a stale
/// lock queue, so exactly one claim proceeds.
async fn claim_key(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8; 32],
    now: Timestamp,
    stale_after: Duration,
) -> Result<KeyClaim, Fail> {
    for _ in 0..CLAIM_ATTEMPTS {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, locked_at, created_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(&fingerprint[..])
        .bind(now.to_sqlx())
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(KeyClaim::Proceed);
        }
        let row = sqlx::query(
            "SELECT fingerprint, locked_at, response_status, response_body
             FROM idempotency_keys WHERE scope = $1 AND key = $2
             FOR UPDATE",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        // Released between the two statements: try the insert again.
        let Some(row) = row else { continue };
        let stored = StoredKey {
            fingerprint: row.try_get("fingerprint")?,
            locked_at: ts_opt(&row, "locked_at")?,
            response_status: row
                .try_get::<Option<i32>, _>("response_status")?
                .map(i64::from),
            response_body: row.try_get("response_body")?,
        };
        if let Some(claim) = stored.settle(fingerprint, now, stale_after, key)? {
            return Ok(claim);
        }
        // A stale lock (its request died), held FOR UPDATE: take it over.
        sqlx::query("UPDATE idempotency_keys SET locked_at = $3 WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .bind(now.to_sqlx())
            .execute(&mut *conn)
            .await?;
        return Ok(KeyClaim::Proceed);
    }
    // Others keep claiming and releasing it: one of them is running.
    Ok(KeyClaim::InProgress)
}

/// One statement for `flights` (each key once): one array per column.
async fn upsert_flights(conn: &mut PgConnection, flights: &[AirportFlight]) -> Result<u64, Fail> {
    let column = |f: fn(&AirportFlight) -> Option<i64>| flights.iter().map(f).collect::<Vec<_>>();
    let done = sqlx::query(
        "INSERT INTO airport_flights
             (icao24, first_seen, last_seen, departure_airport, arrival_airport, callsign,
              departure_horizontal_distance, departure_vertical_distance,
              arrival_horizontal_distance, arrival_vertical_distance,
              departure_candidates, arrival_candidates)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                              $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                              $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
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
    )
    .bind(flights.iter().map(|f| f.icao24.clone()).collect::<Vec<_>>())
    .bind(
        flights
            .iter()
            .map(|f| f.first_seen.to_sqlx())
            .collect::<Vec<_>>(),
    )
    .bind(
        flights
            .iter()
            .map(|f| f.last_seen.to_sqlx())
            .collect::<Vec<_>>(),
    )
    .bind(
        flights
            .iter()
            .map(|f| f.departure_airport.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        flights
            .iter()
            .map(|f| f.arrival_airport.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        flights
            .iter()
            .map(|f| f.callsign.clone())
            .collect::<Vec<_>>(),
    )
    .bind(column(|f| f.departure_horizontal_distance))
    .bind(column(|f| f.departure_vertical_distance))
    .bind(column(|f| f.arrival_horizontal_distance))
    .bind(column(|f| f.arrival_vertical_distance))
    .bind(column(|f| f.departure_candidates))
    .bind(column(|f| f.arrival_candidates))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// A user from `row`: `id` and `created_at` under the given names, the
/// other columns under their own.
fn user_from_row(row: &PgRow, id: &str, created_at: &str) -> Result<User, Fail> {
    Ok(User {
        id: row.try_get(id)?,
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        phone: row.try_get("phone")?,
        created_at: ts(row, created_at)?,
    })
}

/// A watch from `row` (`id`, `user_id`, `kind`, `spec`, `created_at`).
fn watch_from_row(row: &PgRow) -> Result<ApiWatch, Fail> {
    let id: i64 = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let kind = WatchKind::parse(&kind)
        .ok_or_else(|| Fail::Corrupt(format!("api_watches row `{id}` has kind `{kind}`")))?;
    Ok(ApiWatch {
        id,
        user_id: row.try_get("user_id")?,
        kind,
        spec: row.try_get("spec")?,
        created_at: ts(row, "created_at")?,
    })
}

fn flight_from_row(row: &PgRow) -> Result<AirportFlight, Fail> {
    Ok(AirportFlight {
        icao24: row.try_get("icao24")?,
        first_seen: ts(row, "first_seen")?,
        last_seen: ts(row, "last_seen")?,
        departure_airport: row.try_get("departure_airport")?,
        arrival_airport: row.try_get("arrival_airport")?,
        callsign: row.try_get("callsign")?,
        departure_horizontal_distance: row.try_get("departure_horizontal_distance")?,
        departure_vertical_distance: row.try_get("departure_vertical_distance")?,
        arrival_horizontal_distance: row.try_get("arrival_horizontal_distance")?,
        arrival_vertical_distance: row.try_get("arrival_vertical_distance")?,
        departure_candidates: row.try_get("departure_candidates")?,
        arrival_candidates: row.try_get("arrival_candidates")?,
    })
}

impl Postgres {
    /// Queues an accounts write for the writer task; its answer once committed.
    async fn account_write(
        &self,
        op: &'static str,
        write: AccountWrite,
    ) -> Result<AccountDone, StoreError> {
        match self.write(op, Write::Accounts(write)).await? {
            Done::Accounts(done) => Ok(done),
            other => Err(other.unexpected(&self.db, op)),
        }
    }

    /// An accounts write answered with the wrong kind of value: a bug.
    fn wrong_answer(&self, op: &'static str) -> StoreError {
        Done::Unit.unexpected(&self.db, op)
    }

    /// An accounts write that answers yes or no.
    async fn flag_write(&self, op: &'static str, write: AccountWrite) -> Result<bool, StoreError> {
        match self.account_write(op, write).await? {
            AccountDone::Flag(flag) => Ok(flag),
            _ => Err(self.wrong_answer(op)),
        }
    }

    /// An accounts write that answers nothing.
    async fn unit_write(&self, op: &'static str, write: AccountWrite) -> Result<(), StoreError> {
        match self.account_write(op, write).await? {
            AccountDone::Unit => Ok(()),
            _ => Err(self.wrong_answer(op)),
        }
    }

    /// An accounts write that answers a count.
    async fn count_write(&self, op: &'static str, write: AccountWrite) -> Result<u64, StoreError> {
        match self.account_write(op, write).await? {
            AccountDone::Count(count) => Ok(count),
            _ => Err(self.wrong_answer(op)),
        }
    }
}

#[async_trait]
impl Accounts for Postgres {
    async fn create_user(
        &self,
        user: &NewUser,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<CreatedUser, StoreError> {
        let op = "create user";
        let write = AccountWrite::CreateUser {
            user: user.clone(),
            token: *token,
            now,
        };
        match self.account_write(op, write).await? {
            AccountDone::Created(created) => Ok(created),
            _ => Err(self.wrong_answer(op)),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_lowercase();
        self.read("read user", async {
            let row = sqlx::query(
                "SELECT id, email, first_name, last_name, phone, created_at
                 FROM users WHERE email = $1",
            )
            .bind(&email)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| user_from_row(&row, "id", "created_at"))
                .transpose()
        })
        .await
    }

    async fn user_by_token(&self, token: &TokenHash) -> Result<Option<User>, StoreError> {
        self.read("read user by token", async {
            let row = sqlx::query(
                "SELECT u.id, u.email, u.first_name, u.last_name, u.phone, u.created_at
                 FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1",
            )
            .bind(&token[..])
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| user_from_row(&row, "id", "created_at"))
                .transpose()
        })
        .await
    }

    async fn list_users(&self, after_id: i64, limit: u32) -> Result<Vec<User>, StoreError> {
        self.read("list users", async {
            let rows = sqlx::query(
                "SELECT id, email, first_name, last_name, phone, created_at
                 FROM users WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| user_from_row(row, "id", "created_at"))
                .collect()
        })
        .await
    }

    async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        let write = AccountWrite::DeleteUser {
            email: email.to_lowercase(),
        };
        self.flag_write("delete user", write).await
    }

    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8; 32],
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<KeyClaim, StoreError> {
        let op = "claim idempotency key";
        let write = AccountWrite::ClaimKey {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: *fingerprint,
            now,
            stale_after,
        };
        match self.account_write(op, write).await? {
            AccountDone::Claim(claim) => Ok(claim),
            _ => Err(self.wrong_answer(op)),
        }
    }

    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        let write = AccountWrite::CompleteKey {
            scope: scope.to_owned(),
            key: key.to_owned(),
            status,
            body: body.to_owned(),
        };
        self.unit_write("complete idempotency key", write).await
    }

    async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let write = AccountWrite::ReleaseKey {
            scope: scope.to_owned(),
            key: key.to_owned(),
        };
        self.unit_write("release idempotency key", write).await
    }

    async fn purge_idempotency_keys(&self, created_before: Timestamp) -> Result<u64, StoreError> {
        let write = AccountWrite::PurgeKeys { created_before };
        self.count_write("purge idempotency keys", write).await
    }

    async fn create_watch(
        &self,
        user_id: i64,
        kind: WatchKind,
        spec: &str,
        now: Timestamp,
    ) -> Result<ApiWatch, StoreError> {
        let op = "create watch";
        let write = AccountWrite::CreateWatch {
            user_id,
            kind,
            spec: spec.to_owned(),
            now,
        };
        match self.account_write(op, write).await? {
            AccountDone::Watch(watch) => Ok(watch),
            _ => Err(self.wrong_answer(op)),
        }
    }

    async fn watches_of(&self, user_id: i64) -> Result<Vec<ApiWatch>, StoreError> {
        self.read("read watches", async {
            let rows = sqlx::query(
                "SELECT id, user_id, kind, spec, created_at
                 FROM api_watches WHERE user_id = $1 ORDER BY id",
            )
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(watch_from_row).collect()
        })
        .await
    }

    async fn watch(&self, user_id: i64, id: i64) -> Result<Option<ApiWatch>, StoreError> {
        self.read("read watch", async {
            let row = sqlx::query(
                "SELECT id, user_id, kind, spec, created_at
                 FROM api_watches WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(watch_from_row).transpose()
        })
        .await
    }

    async fn delete_watch(&self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        self.flag_write("delete watch", AccountWrite::DeleteWatch { user_id, id })
            .await
    }

    async fn all_watches(&self) -> Result<Vec<(ApiWatch, User)>, StoreError> {
        self.read("read all watches", async {
            let rows = sqlx::query(
                "SELECT w.id, w.user_id, w.kind, w.spec, w.created_at,
                        u.id AS owner_id, u.email, u.first_name, u.last_name, u.phone,
                        u.created_at AS owner_created_at
                 FROM api_watches w JOIN users u ON u.id = w.user_id
                 ORDER BY w.id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        watch_from_row(row)?,
                        user_from_row(row, "owner_id", "owner_created_at")?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn watch_by_id(&self, id: i64) -> Result<Option<(ApiWatch, User)>, StoreError> {
        self.read("read watch by id", async {
            let row = sqlx::query(
                "SELECT w.id, w.user_id, w.kind, w.spec, w.created_at,
                        u.id AS owner_id, u.email, u.first_name, u.last_name, u.phone,
                        u.created_at AS owner_created_at
                 FROM api_watches w JOIN users u ON u.id = w.user_id
                 WHERE w.id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref()
                .map(|row| {
                    Ok((
                        watch_from_row(row)?,
                        user_from_row(row, "owner_id", "owner_created_at")?,
                    ))
                })
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
        let write = AccountWrite::AddInterest {
            user_id,
            airport: airport.to_owned(),
            now,
        };
        self.flag_write("add interest", write).await
    }

    async fn remove_interest(&self, user_id: i64, airport: &str) -> Result<bool, StoreError> {
        let write = AccountWrite::RemoveInterest {
            user_id,
            airport: airport.to_owned(),
        };
        self.flag_write("remove interest", write).await
    }

    async fn interests_of(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        self.read("read interests", async {
            // "C": byte order, as SQLite sorts.
            let airports: Vec<String> = sqlx::query_scalar(
                "SELECT airport FROM interests WHERE user_id = $1 ORDER BY airport COLLATE \"C\"",
            )
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(airports)
        })
        .await
    }

    async fn interest_airports(&self) -> Result<Vec<String>, StoreError> {
        self.read("read interest airports", async {
            let airports: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT airport COLLATE \"C\" AS airport FROM interests ORDER BY 1",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(airports)
        })
        .await
    }

    async fn upsert_airport_flights(&self, flights: &[AirportFlight]) -> Result<u64, StoreError> {
        if flights.is_empty() {
            return Ok(0);
        }
        let flights = unique_flights(flights).into_iter().cloned().collect();
        self.count_write(
            "store airport flights",
            AccountWrite::UpsertFlights { flights },
        )
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
        // Two fixed statements, not a spliced column name.
        let sql = match direction {
            Direction::Arrivals => {
                "SELECT * FROM airport_flights
                 WHERE arrival_airport = $1 AND first_seen >= $2 AND first_seen < $3
                 ORDER BY first_seen, icao24 COLLATE \"C\" LIMIT $4 OFFSET $5"
            }
            Direction::Departures => {
                "SELECT * FROM airport_flights
                 WHERE departure_airport = $1 AND first_seen >= $2 AND first_seen < $3
                 ORDER BY first_seen, icao24 COLLATE \"C\" LIMIT $4 OFFSET $5"
            }
        };
        self.read("read airport flights", async {
            let rows = sqlx::query(sql)
                .bind(airport)
                .bind(from.to_sqlx())
                .bind(to.to_sqlx())
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(flight_from_row).collect()
        })
        .await
    }

    async fn airport_flight_span(
        &self,
        airport: &str,
    ) -> Result<Option<(Timestamp, Timestamp, u64)>, StoreError> {
        self.read("read airport flight span", async {
            let row = sqlx::query(
                "SELECT MIN(first_seen) AS earliest, MAX(first_seen) AS latest,
                        COUNT(*) AS flights
                 FROM airport_flights
                 WHERE departure_airport = $1 OR arrival_airport = $1",
            )
            .bind(airport)
            .fetch_one(&self.pool)
            .await?;
            let (Some(earliest), Some(latest)) =
                (ts_opt(&row, "earliest")?, ts_opt(&row, "latest")?)
            else {
                return Ok(None);
            };
            let count = to_u64(row.try_get("flights")?, || {
                format!("airport_flights count for `{airport}`")
            })?;
            Ok(Some((earliest, latest, count)))
        })
        .await
    }
}
