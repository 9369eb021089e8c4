//! The writes the writer task runs, as values: a batch the database refused
//! is run again, write by write, from the same values.

use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::accounts::{AccountDone, AccountWrite};
use super::price_history::HistoryWrite;
use super::{read_pending, ts};
use crate::rules::AlertState;
use crate::store::claim::is_live;
use crate::store::{to_i64, Fail, Intent, IntentOutcome, IntentStatus, StoreError};

/// A write, with everything it needs.
pub(super) enum Write {
    SaveState {
        route_id: String,
        state: AlertState,
    },
    OpenIntent {
        intent: Intent,
        run: String,
    },
    ClaimPending {
        run: String,
    },
    Finish {
        key: String,
        outcome: IntentOutcome,
        completes: Option<(String, AlertState)>,
    },
    CloseAlert {
        route_id: String,
        seq: u64,
        reason: String,
        state: AlertState,
        run: String,
    },
    Suppress {
        route_id: String,
        recipient: String,
        reason: String,
    },
    KvPut {
        key: String,
        value: String,
        expires_at: Option<Timestamp>,
        /// Also delete expired rows (tokens: useless, and still secrets).
        drop_expired: bool,
    },
    /// A write to the accounts tables (`farewatch serve`).
    Accounts(AccountWrite),
    /// A write to the price history.
    History(HistoryWrite),
}

/// What a write answers.
pub(super) enum Done {
    Unit,
    Status(IntentStatus),
    Intents(Vec<Intent>),
    Closed(Option<usize>),
    Accounts(AccountDone),
    /// Rows inserted or deleted.
    Count(u64),
}

impl Done {
    /// A write answered with the wrong kind of value: a bug, reported as one.
    pub(super) fn unexpected(self, db: &str, op: &'static str) -> StoreError {
        StoreError::Task {
            db: db.to_owned(),
            op,
            detail: "the database writer gave an answer of the wrong kind (a bug in farewatch)"
                .into(),
        }
    }
}

impl Write {
    /// Runs the write inside the caller's transaction. A failure of its own
    /// (an unknown key, a value out of range) is returned before anything
    /// is changed.
    pub(super) async fn apply(&self, conn: &mut PgConnection) -> Result<Done, Fail> {
        let now = Timestamp::now();
        match self {
            Self::SaveState { route_id, state } => {
                upsert_state(conn, route_id, state, now).await?;
                Ok(Done::Unit)
            }
            Self::OpenIntent { intent, run } => {
                open_intent(conn, intent, run, now).await.map(Done::Status)
            }
            Self::ClaimPending { run } => claim_pending(conn, run, now).await.map(Done::Intents),
            Self::Finish {
                key,
                outcome,
                completes,
            } => {
                if let Some((_, state)) = completes {
                    to_i64(state.alerts_sent, "alerts_sent")?;
                }
                let (status, message_id, error) = outcome.columns();
                let updated = sqlx::query(
                    "UPDATE outbox
                     SET status = $1, message_id = $2, error = $3, updated_at = $4
                     WHERE key = $5",
                )
                .bind(status)
                .bind(message_id)
                .bind(error)
                .bind(now.to_sqlx())
                .bind(key)
                .execute(&mut *conn)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(Fail::UnknownIntent(key.clone()));
                }
                if let Some((route_id, state)) = completes {
                    upsert_state(conn, route_id, state, now).await?;
                }
                Ok(Done::Unit)
            }
            Self::CloseAlert {
                route_id,
                seq,
                reason,
                state,
                run,
            } => close_alert(conn, route_id, *seq, reason, state, run, now)
                .await
                .map(Done::Closed),
            Self::Suppress {
                route_id,
                recipient,
                reason,
            } => {
                sqlx::query(
                    "INSERT INTO suppressed (route_id, recipient, reason, created_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (route_id, recipient) DO NOTHING",
                )
                .bind(route_id)
                .bind(recipient)
                .bind(reason)
                .bind(now.to_sqlx())
                .execute(&mut *conn)
                .await?;
                Ok(Done::Unit)
            }
            Self::KvPut {
                key,
                value,
                expires_at,
                drop_expired,
            } => {
                if *drop_expired {
                    sqlx::query("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= $1")
                        .bind(now.to_sqlx())
                        .execute(&mut *conn)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO kv (key, value, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE
                     SET value = excluded.value, expires_at = excluded.expires_at",
                )
                .bind(key)
                .bind(value)
                .bind(expires_at.map(ToSqlx::to_sqlx))
                .execute(&mut *conn)
                .await?;
                Ok(Done::Unit)
            }
            Self::Accounts(write) => write.apply(conn).await.map(Done::Accounts),
            Self::History(write) => write.apply(conn).await.map(Done::Count),
        }
    }
}

async fn upsert_state(
    conn: &mut PgConnection,
    route_id: &str,
    state: &AlertState,
    now: Timestamp,
) -> Result<(), Fail> {
    let alerts_sent = to_i64(state.alerts_sent, "alerts_sent")?;
    sqlx::query(
        "INSERT INTO alert_state
             (route_id, last_alerted_minor, last_alerted_currency, last_alerted_at,
              alerts_sent, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (route_id) DO UPDATE SET
             last_alerted_minor    = excluded.last_alerted_minor,
             last_alerted_currency = excluded.last_alerted_currency,
             last_alerted_at       = excluded.last_alerted_at,
             alerts_sent           = excluded.alerts_sent,
             updated_at            = excluded.updated_at",
    )
    .bind(route_id)
    .bind(state.last_alerted.map(|m| m.minor))
    .bind(state.last_alerted.map(|m| m.currency.as_str().to_owned()))
    .bind(state.last_alerted_at.map(ToSqlx::to_sqlx))
    .bind(alerts_sent)
    .bind(now.to_sqlx())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`crate::store::Store::open_intent`]: insert, or read back the row and
/// settle who owns it.
async fn open_intent(
    conn: &mut PgConnection,
    intent: &Intent,
    me: &str,
    now: Timestamp,
) -> Result<IntentStatus, Fail> {
    let seq = to_i64(intent.seq, "intent seq")?;
    let inserted = sqlx::query(
        "INSERT INTO outbox
             (key, route_id, seq, recipient, channel, body, status, created_at, updated_at,
              claimed_by, claimed_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $8)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&intent.key)
    .bind(&intent.route_id)
    .bind(seq)
    .bind(&intent.recipient)
    .bind(&intent.channel)
    .bind(&intent.body)
    .bind(intent.created_at.to_sqlx())
    .bind(now.to_sqlx())
    .bind(me)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(IntentStatus::New);
    }
    // FOR UPDATE: a concurrent take-over of this row waits for this one.
    let row = sqlx::query(
        "SELECT status, message_id, error, body, created_at, claimed_by, claimed_at
         FROM outbox WHERE key = $1 FOR UPDATE",
    )
    .bind(&intent.key)
    .fetch_one(&mut *conn)
    .await?;
    let status: String = row.try_get("status")?;
    let claimed_by: Option<String> = row.try_get("claimed_by")?;
    let claimed_at = super::ts_opt(&row, "claimed_at")?;
    let by_other = claimed_by.as_deref().filter(|by| *by != me);
    let pending = || -> Result<IntentStatus, Fail> {
        Ok(IntentStatus::Pending {
            body: row.try_get("body")?,
            created_at: ts(&row, "created_at")?,
        })
    };
    match status.as_str() {
        "pending" => match by_other {
            None => pending(),
            Some(by) if is_live(by, claimed_at, now) => {
                Ok(IntentStatus::ClaimedElsewhere { by: by.to_owned() })
            }
            Some(_) => match take_over(conn, &intent.key, claimed_by.as_deref(), me, now).await? {
                None => pending(),
                Some(by) => Ok(IntentStatus::ClaimedElsewhere { by }),
            },
        },
        "sent" => {
            let message_id = row
                .try_get::<Option<String>, _>("message_id")?
                .unwrap_or_default();
            Ok(match by_other {
                Some(by) => IntentStatus::SentElsewhere {
                    message_id,
                    by: by.to_owned(),
                },
                None => IntentStatus::Sent { message_id },
            })
        }
        "failed" => Ok(IntentStatus::Failed {
            error: row
                .try_get::<Option<String>, _>("error")?
                .unwrap_or_default(),
        }),
        other => Err(Fail::Corrupt(format!(
            "outbox row `{}` has status `{other}`",
            intent.key
        ))),
    }
}

/// [`crate::store::Store::claim_pending`].
async fn claim_pending(
    conn: &mut PgConnection,
    me: &str,
    now: Timestamp,
) -> Result<Vec<Intent>, Fail> {
    let mut mine = Vec::new();
    for (intent, claimed_by, claimed_at) in read_pending(conn).await? {
        match claimed_by.as_deref() {
            Some(by) if by == me => mine.push(intent),
            Some(by) if is_live(by, claimed_at, now) => {
                tracing::info!(key = %intent.key, run = by, "pending alert claimed by another live run: left to it");
            }
            old => {
                if take_over(conn, &intent.key, old, me, now).await?.is_none() {
                    mine.push(intent);
                }
            }
        }
    }
    Ok(mine)
}

/// [`crate::store::Store::close_alert`].
async fn close_alert(
    conn: &mut PgConnection,
    route_id: &str,
    seq: u64,
    reason: &str,
    state: &AlertState,
    me: &str,
    now: Timestamp,
) -> Result<Option<usize>, Fail> {
    let seq = to_i64(seq, "intent seq")?;
    to_i64(state.alerts_sent, "alerts_sent")?;
    // Lock the alert's pending rows, so no other run takes one over between
    // this check and the update below.
    let claims = sqlx::query(
        "SELECT claimed_by, claimed_at FROM outbox
         WHERE route_id = $1 AND seq = $2 AND status = 'pending'
         FOR UPDATE",
    )
    .bind(route_id)
    .bind(seq)
    .fetch_all(&mut *conn)
    .await?;
    for row in &claims {
        let by: Option<String> = row.try_get("claimed_by")?;
        if let Some(by) = by.filter(|by| by != me) {
            if is_live(&by, super::ts_opt(row, "claimed_at")?, now) {
                return Ok(None);
            }
        }
    }
    sqlx::query(
        "UPDATE outbox SET status = 'failed', error = $1, updated_at = $2
         WHERE route_id = $3 AND seq = $4 AND status = 'pending'",
    )
    .bind(reason)
    .bind(now.to_sqlx())
    .bind(route_id)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    let sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE route_id = $1 AND seq = $2 AND status = 'sent'",
    )
    .bind(route_id)
    .bind(seq)
    .fetch_one(&mut *conn)
    .await?;
    upsert_state(conn, route_id, state, now).await?;
    Ok(Some(usize::try_from(sent).unwrap_or(0)))
}

/// Moves a pending row's claim from `old` (none, or a dead run) to `me`, if
/// nobody changed it meanwhile. `None` when `me` has it now; otherwise the
/// run that took it first.
async fn take_over(
    conn: &mut PgConnection,
    key: &str,
    old: Option<&str>,
    me: &str,
    now: Timestamp,
) -> Result<Option<String>, Fail> {
    let moved = sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_at = $2
         WHERE key = $3 AND status = 'pending' AND claimed_by IS NOT DISTINCT FROM $4",
    )
    .bind(me)
    .bind(now.to_sqlx())
    .bind(key)
    .bind(old)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 1 {
        if let Some(old) = old {
            tracing::info!(
                key,
                from = old,
                "took over a pending alert from a run that is gone"
            );
        }
        return Ok(None);
    }
    let now_by: Option<String> = sqlx::query_scalar("SELECT claimed_by FROM outbox WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Some(now_by.unwrap_or_default()))
}
