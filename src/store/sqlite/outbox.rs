//! The outbox: intents written before sending, sent and failed records,
//! unfinished alerts, suppressed recipients and the sent log.

use super::*;

impl Sqlite {
    /// Writes the intent, claimed by `run`, unless its key exists; returns
    /// the key's status. A pending row with no claim or a dead one is taken
    /// over by `run` ([`IntentStatus::Pending`]); one whose claim is live is
    /// [`IntentStatus::ClaimedElsewhere`] (see the module docs).
    pub(super) async fn open_intent(
        &self,
        intent: &Intent,
        run: &RunId,
    ) -> Result<IntentStatus, StoreError> {
        let intent = intent.clone();
        let me = run.as_str().to_owned();
        self.call("open alert intent", move |conn| {
            let seq = to_i64(intent.seq, "intent seq")?;
            let now = Timestamp::now();
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO outbox
                     (key, route_id, seq, recipient, channel, body, status, created_at, updated_at,
                      claimed_by, claimed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?8)
                 ON CONFLICT (key) DO NOTHING",
                )?
                .execute(params![
                    intent.key,
                    intent.route_id,
                    seq,
                    intent.recipient,
                    intent.channel,
                    intent.body,
                    ts_to_sql(intent.created_at),
                    ts_to_sql(now),
                    me,
                ])?;
            if inserted == 1 {
                return Ok(IntentStatus::New);
            }
            let row = conn
                .prepare_cached(
                    "SELECT status, message_id, error, body, created_at, claimed_by, claimed_at
                     FROM outbox WHERE key = ?1",
                )?
                .query_row(params![intent.key], |row| {
                    Ok(Row {
                        status: row.get(0)?,
                        message_id: row.get(1)?,
                        error: row.get(2)?,
                        body: row.get(3)?,
                        created_at: row.get(4)?,
                        claimed_by: row.get(5)?,
                        claimed_at: row.get(6)?,
                    })
                })?;
            let by_other = row.claimed_by.as_deref().filter(|by| *by != me);
            match row.status.as_str() {
                "pending" => match by_other {
                    None => Ok(pending(&row, &intent.key)?),
                    Some(by) if is_live_claim(by, row.claimed_at.as_deref(), &intent.key, now)? => {
                        Ok(IntentStatus::ClaimedElsewhere { by: by.to_owned() })
                    }
                    Some(_) => {
                        match take_over(conn, &intent.key, row.claimed_by.as_deref(), &me, now)? {
                            None => Ok(pending(&row, &intent.key)?),
                            Some(by) => Ok(IntentStatus::ClaimedElsewhere { by }),
                        }
                    }
                },
                "sent" => {
                    let message_id = row.message_id.unwrap_or_default();
                    Ok(match by_other {
                        Some(by) => IntentStatus::SentElsewhere {
                            message_id,
                            by: by.to_owned(),
                        },
                        None => IntentStatus::Sent { message_id },
                    })
                }
                "failed" => Ok(IntentStatus::Failed {
                    error: row.error.unwrap_or_default(),
                }),
                other => Err(Fail::Corrupt(format!(
                    "outbox row `{}` has status `{other}`",
                    intent.key
                ))),
            }
        })
        .await
    }

    /// Pending intents `run` may settle, oldest first: its own, and those
    /// with no claim or a dead one, which it takes over. Intents claimed by
    /// another live run are left to it (not returned): that run may be
    /// about to send them, so finding them missing from the provider's list
    /// proves nothing.
    pub(super) async fn claim_pending(&self, run: &RunId) -> Result<Vec<Intent>, StoreError> {
        let me = run.as_str().to_owned();
        self.call("claim pending intents", move |conn| {
            let now = Timestamp::now();
            let rows = read_pending(conn)?;
            let mut mine = Vec::new();
            for (intent, claimed_by, claimed_at) in rows {
                match claimed_by.as_deref() {
                    Some(by) if by == me => mine.push(intent),
                    Some(by) if is_live_claim(by, claimed_at.as_deref(), &intent.key, now)? => {
                        tracing::info!(key = %intent.key, run = by, "pending alert claimed by another live run: left to it");
                    }
                    old => {
                        if take_over(conn, &intent.key, old, &me, now)?.is_none() {
                            mine.push(intent);
                        }
                    }
                }
            }
            Ok(mine)
        })
        .await
    }

    pub(super) async fn finish_intent(
        &self,
        key: &str,
        outcome: &IntentOutcome,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let outcome = outcome.clone();
        let completes = completes.map(|(route, state)| (route.to_owned(), state.clone()));
        self.call(outcome.op(), move |conn| {
            let now = Timestamp::now();
            // Atomic: every call runs in its own savepoint (see `Sqlite::call`).
            let tx: &Connection = conn;
            let (status, message_id, error) = outcome.columns();
            let updated = tx
                .prepare_cached(
                    "UPDATE outbox
                 SET status = ?1, message_id = ?2, error = ?3, updated_at = ?4
                 WHERE key = ?5",
                )?
                .execute(params![status, message_id, error, ts_to_sql(now), key])?;
            if updated == 0 {
                // Dropping `tx` rolls back; the state is not saved either.
                return Err(Fail::UnknownIntent(key));
            }
            if let Some((route_id, state)) = &completes {
                upsert_state(tx, route_id, state, now)?;
            }
            Ok(())
        })
        .await
    }

    /// Routes with an alert that was started but not completed: intents whose
    /// alert number is past the route's saved `alerts_sent` (any status). An
    /// alert completes when its state is saved; until then its intents keep
    /// their keys, so a retry reuses them and nobody is texted twice.
    pub(super) async fn unfinished_alerts(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.read("read unfinished alerts", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT o.route_id, MAX(o.seq)
                 FROM outbox o LEFT JOIN alert_state s ON s.route_id = o.route_id
                 WHERE o.seq > COALESCE(s.alerts_sent, 0)
                 GROUP BY o.route_id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (route_id, seq) = row?;
                let seq = u64::try_from(seq).map_err(|_| {
                    Fail::Corrupt(format!("outbox route `{route_id}` has seq {seq}"))
                })?;
                out.insert(route_id, seq);
            }
            Ok(out)
        })
        .await
    }

    /// Ends an unfinished alert whose drop is over (the price rose above the
    /// maximum before every recipient was reached): its still-pending intents
    /// are marked failed with `reason`, and `state` (which must number past
    /// `seq`, so the next drop gets fresh keys) is saved, in one transaction.
    /// Returns how many of the alert's messages had been sent, or `None`
    /// (and changes nothing) while another live run (not `run`) holds one of
    /// its intents pending: that run is sending it, so the alert is its to end.
    pub(super) async fn close_alert(
        &self,
        route_id: &str,
        seq: u64,
        reason: &str,
        state: &AlertState,
        run: &RunId,
    ) -> Result<Option<usize>, StoreError> {
        let (route_id, reason, state) = (route_id.to_owned(), reason.to_owned(), state.clone());
        let me = run.as_str().to_owned();
        // The alert's rows: every key is `{route_id}#{seq}#{recipient}`,
        // so they are the keys from `{route_id}#{seq}#` up to, not
        // including, the same with `$` (the byte after `#`) in place of
        // the last `#` (migrations/sqlite/0009). `route_id` and `seq` are
        // still compared: a route id with a `#` of its own cannot match.
        // `+status` keeps the planner off `outbox_status`, which for `sent`
        // would walk every message ever sent.
        let from = format!("{route_id}#{seq}#");
        let until = format!("{route_id}#{seq}$");
        self.call("close unfinished alert", move |conn| {
            let seq = to_i64(seq, "intent seq")?;
            let now = Timestamp::now();
            // Atomic: every call runs in its own savepoint (see `Sqlite::call`).
            let tx: &Connection = conn;
            let claims = tx
                .prepare_cached(
                    "SELECT key, claimed_by, claimed_at FROM outbox
                     WHERE key >= ?4 AND key < ?5 AND route_id = ?1 AND seq = ?2
                       AND +status = 'pending' AND claimed_by IS NOT NULL AND claimed_by != ?3",
                )?
                .query_map(params![route_id, seq, me, from, until], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (key, by, at) in &claims {
                if is_live_claim(by, at.as_deref(), key, now)? {
                    return Ok(None);
                }
            }
            tx.prepare_cached(
                "UPDATE outbox SET status = 'failed', error = ?1, updated_at = ?2
                 WHERE key >= ?5 AND key < ?6 AND route_id = ?3 AND seq = ?4
                   AND +status = 'pending'",
            )?
            .execute(params![reason, ts_to_sql(now), route_id, seq, from, until])?;
            let sent: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM outbox
                     WHERE key >= ?3 AND key < ?4 AND route_id = ?1 AND seq = ?2
                       AND +status = 'sent'",
                )?
                .query_row(params![route_id, seq, from, until], |row| row.get(0))?;
            upsert_state(tx, &route_id, &state, now)?;
            Ok(Some(usize::try_from(sent).unwrap_or(0)))
        })
        .await
    }

    /// Stops texting `recipient` for `route_id` (they replied STOP). The
    /// route's id includes its recipients, so editing them in the sheet
    /// starts afresh.
    pub(super) async fn suppress(
        &self,
        route_id: &str,
        recipient: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (route_id, recipient, reason) =
            (route_id.to_owned(), recipient.to_owned(), reason.to_owned());
        self.call("suppress recipient", move |conn| {
            conn.prepare_cached("INSERT INTO suppressed (route_id, recipient, reason, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (route_id, recipient) DO NOTHING")?
.execute(params![route_id, recipient, reason, ts_to_sql(Timestamp::now())],)?;
            Ok(())
        })
        .await
    }

    /// Every suppressed (route id, recipient) pair.
    pub(super) async fn suppressed(
        &self,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        self.read("read suppressed recipients", |conn| {
            let mut stmt = conn.prepare_cached("SELECT route_id, recipient FROM suppressed")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut out = std::collections::HashSet::new();
            for row in rows {
                out.insert(row?);
            }
            Ok(out)
        })
        .await
    }

    /// Intents written but never recorded as sent or failed, oldest first,
    /// whoever claimed them: after a crash these may or may not have reached
    /// the provider.
    pub(super) async fn pending_intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.read("read pending intents", |conn| {
            Ok(read_pending(conn)?
                .into_iter()
                .map(|(intent, _, _)| intent)
                .collect())
        })
        .await
    }

    /// The sent log, newest first.
    pub(super) async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("read sent log", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, route_id, recipient, body, message_id, updated_at
                 FROM outbox WHERE status = 'sent'
                 ORDER BY updated_at DESC, rowid DESC
                 LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })?;
            let mut log = Vec::new();
            for row in rows {
                let (key, route_id, recipient, body, message_id, sent_at) = row?;
                let sent_at = ts_from_sql(&sent_at, "outbox", &key)?;
                log.push(SentRecord {
                    key,
                    route_id,
                    recipient,
                    body,
                    message_id: message_id.unwrap_or_default(),
                    sent_at,
                });
            }
            Ok(log)
        })
        .await
    }
}

/// An outbox row as [`Store::open_intent`] reads it back.
struct Row {
    status: String,
    message_id: Option<String>,
    error: Option<String>,
    body: String,
    created_at: String,
    claimed_by: Option<String>,
    claimed_at: Option<String>,
}

fn pending(row: &Row, key: &str) -> Result<IntentStatus, Fail> {
    Ok(IntentStatus::Pending {
        body: row.body.clone(),
        created_at: ts_from_sql(&row.created_at, "outbox", key)?,
    })
}

fn is_live_claim(
    by: &str,
    claimed_at: Option<&str>,
    key: &str,
    now: Timestamp,
) -> Result<bool, Fail> {
    let claimed_at = claimed_at
        .map(|at| ts_from_sql(at, "outbox", key))
        .transpose()?;
    Ok(crate::store::claim::is_live(by, claimed_at, now))
}

/// Moves a pending row's claim from `old` (none, or a dead run) to `me`, if
/// nobody changed it meanwhile. `None` when `me` has it now; otherwise the
/// run that took it first.
fn take_over(
    conn: &Connection,
    key: &str,
    old: Option<&str>,
    me: &str,
    now: Timestamp,
) -> Result<Option<String>, Fail> {
    let moved = conn
        .prepare_cached(
            "UPDATE outbox SET claimed_by = ?1, claimed_at = ?2
             WHERE key = ?3 AND status = 'pending' AND claimed_by IS ?4",
        )?
        .execute(params![me, ts_to_sql(now), key, old])?;
    if moved == 1 {
        if let Some(old) = old {
            tracing::info!(
                key,
                from = old,
                "took over a pending alert from a run that is gone"
            );
        }
        return Ok(None);
    }
    let now_by: Option<String> = conn
        .prepare_cached("SELECT claimed_by FROM outbox WHERE key = ?1")?
        .query_row(params![key], |row| row.get(0))?;
    Ok(Some(now_by.unwrap_or_default()))
}

/// Every pending row with its claim, oldest first.
#[allow(clippy::type_complexity)]
fn read_pending(conn: &Connection) -> Result<Vec<(Intent, Option<String>, Option<String>)>, Fail> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, route_id, seq, recipient, channel, body, created_at, claimed_by, claimed_at
         FROM outbox WHERE status = 'pending'
         ORDER BY created_at, rowid",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, String>(6)?,
            row.get::<_, Option<String>>(7)?,
            row.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, route_id, seq, recipient, channel, body, created_at, claimed_by, claimed_at) =
            row?;
        let seq = u64::try_from(seq)
            .map_err(|_| Fail::Corrupt(format!("outbox row `{key}` has seq {seq}")))?;
        let created_at = ts_from_sql(&created_at, "outbox", &key)?;
        out.push((
            Intent {
                key,
                route_id,
                seq,
                recipient,
                channel,
                body,
                created_at,
            },
            claimed_by,
            claimed_at,
        ));
    }
    Ok(out)
}
