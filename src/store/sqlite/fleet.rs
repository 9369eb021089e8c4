//! The fleet tables on this backend. Claims run on the single writer
//! thread (each call in its own savepoint), so they never interleave.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension};

use super::{ts_from_sql, ts_to_sql, Sqlite};
use crate::store::fleet::{sheet_digest, DueSummary, Fleet, LeaseRecord, NodeRecord, StoredSheet};
use crate::store::{to_i64, to_u64, StoreError};

#[async_trait]
impl Fleet for Sqlite {
    async fn register_due(&self, route_ids: &[String], now: Timestamp) -> Result<u64, StoreError> {
        // A JSON array binds as one parameter, whatever its length.
        let ids = serde_json::to_string(route_ids).unwrap_or_else(|_| "[]".into());
        self.call("register due routes", move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO fleet_due (route_id, next_due)
                     SELECT value, ?2 FROM json_each(?1) WHERE true
                     ON CONFLICT (route_id) DO NOTHING",
                )?
                .execute(params![ids, ts_to_sql(now)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn prune_due(&self, keep: &[String], now: Timestamp) -> Result<u64, StoreError> {
        let ids = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        self.call("forget routes gone from the sheet", move |conn| {
            let n = conn
                .prepare_cached(
                    "DELETE FROM fleet_due
                     WHERE (lease_until IS NULL OR lease_until < ?2)
                       AND route_id NOT IN (SELECT value FROM json_each(?1))",
                )?
                .execute(params![ids, ts_to_sql(now)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn claim_due(
        &self,
        holder: &str,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError> {
        let holder = holder.to_owned();
        let dead = serde_json::to_string(take_over).unwrap_or_else(|_| "[]".into());
        let token = crate::search::random_token();
        self.call("claim due routes", move |conn| {
            let until = ts_to_sql(now.checked_add(lease).unwrap_or(Timestamp::MAX));
            let now = ts_to_sql(now);
            let mut stmt = conn.prepare_cached(
                "UPDATE fleet_due
                 SET lease_token = ?2, lease_until = ?3, locked_by = ?4
                 WHERE route_id IN (
                     SELECT route_id FROM fleet_due
                     WHERE next_due <= ?1
                       AND (lease_until IS NULL OR lease_until < ?1
                            OR locked_by IN (SELECT value FROM json_each(?6)))
                     ORDER BY next_due, route_id
                     LIMIT ?5)
                 RETURNING route_id",
            )?;
            let claimed = stmt
                .query_map(params![now, token, until, holder, limit, dead], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((token, claimed))
        })
        .await
    }

    async fn extend_due(&self, token: &str, until: Timestamp) -> Result<u64, StoreError> {
        let token = token.to_owned();
        self.call("renew a claim", move |conn| {
            let n = conn
                .prepare_cached("UPDATE fleet_due SET lease_until = ?2 WHERE lease_token = ?1")?
                .execute(params![token, ts_to_sql(until)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        take_over: &[String],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let dead = serde_json::to_string(take_over).unwrap_or_else(|_| "[]".into());
        self.call("take a fleet lease", move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO fleet_leases (name, holder, until) VALUES (?1, ?2, ?4)
                     ON CONFLICT (name) DO UPDATE SET holder = ?2, until = ?4
                     WHERE fleet_leases.holder = ?2 OR fleet_leases.until < ?3
                        OR fleet_leases.holder IN (SELECT value FROM json_each(?5))",
                )?
                .execute(params![
                    name,
                    holder,
                    ts_to_sql(now),
                    ts_to_sql(until),
                    dead
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn fleet_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.read("read fleet leases", move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT name, holder, until FROM fleet_leases ORDER BY name")?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.map(|row| {
                let (name, holder, until) = row?;
                Ok(LeaseRecord {
                    until: ts_from_sql(&until, "fleet_leases", &name)?,
                    name,
                    holder,
                })
            })
            .collect()
        })
        .await
    }

    async fn save_sheet(
        &self,
        source: &str,
        body: &[u8],
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (source, body, holder) = (source.to_owned(), body.to_vec(), holder.to_owned());
        let digest = sheet_digest(&body);
        self.call("store the sheet", move |conn| {
            let old: Option<String> = conn
                .prepare_cached("SELECT digest FROM fleet_sheet WHERE id = 1")?
                .query_row([], |row| row.get(0))
                .optional()?;
            let now = ts_to_sql(now);
            if old.as_deref() == Some(digest.as_str()) {
                conn.prepare_cached(
                    "UPDATE fleet_sheet SET source = ?1, synced_at = ?2, synced_by = ?3 WHERE id = 1",
                )?
                .execute(params![source, now, holder])?;
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO fleet_sheet (id, source, body, digest, changed_at, synced_at, synced_by)
                 VALUES (1, ?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE
                 SET source = ?1, body = ?2, digest = ?3, changed_at = ?4, synced_at = ?4,
                     synced_by = ?5",
            )?
            .execute(params![source, body, digest, now, holder])?;
            Ok(true)
        })
        .await
    }

    async fn sheet_digest(&self) -> Result<Option<String>, StoreError> {
        self.read("read the stored sheet", move |conn| {
            Ok(conn
                .prepare_cached("SELECT digest FROM fleet_sheet WHERE id = 1")?
                .query_row([], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn stored_sheet(&self) -> Result<Option<StoredSheet>, StoreError> {
        self.read("read the stored sheet", move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT source, body, digest, changed_at, synced_at, synced_by
                     FROM fleet_sheet WHERE id = 1",
                )?
                .query_row([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .optional()?;
            row.map(|(source, body, digest, changed, synced, synced_by)| {
                Ok(StoredSheet {
                    changed_at: ts_from_sql(&changed, "fleet_sheet", "1")?,
                    synced_at: ts_from_sql(&synced, "fleet_sheet", "1")?,
                    source,
                    body,
                    digest,
                    synced_by,
                })
            })
            .transpose()
        })
        .await
    }

    async fn complete_due(
        &self,
        holder: &str,
        token: &str,
        route_ids: &[String],
        next_due: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (holder, token) = (holder.to_owned(), token.to_owned());
        let ids = serde_json::to_string(route_ids).unwrap_or_else(|_| "[]".into());
        self.call("complete due routes", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE fleet_due
                     SET next_due = ?3, lease_token = NULL, lease_until = NULL, locked_by = NULL,
                         cycles = cycles + 1, done_by = ?4, done_at = ?5
                     WHERE route_id IN (SELECT value FROM json_each(?1)) AND lease_token = ?2",
                )?
                .execute(params![
                    ids,
                    token,
                    ts_to_sql(next_due),
                    holder,
                    ts_to_sql(now)
                ])?;
            Ok(n as u64)
        })
        .await
    }

    async fn beat(
        &self,
        holder: &str,
        role: &str,
        claimed: u64,
        done: u64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (holder, role) = (holder.to_owned(), role.to_owned());
        self.call("record a heartbeat", move |conn| {
            let now = ts_to_sql(now);
            conn.prepare_cached(
                "INSERT INTO fleet_nodes (holder, role, started_at, seen_at, claimed, done)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                 ON CONFLICT (holder) DO UPDATE
                 SET seen_at = ?3, claimed = claimed + ?4, done = done + ?5",
            )?
            .execute(params![
                holder,
                role,
                now,
                to_i64(claimed, "claimed")?,
                to_i64(done, "done")?
            ])?;
            Ok(())
        })
        .await
    }

    async fn fleet_nodes(&self, now: Timestamp) -> Result<Vec<NodeRecord>, StoreError> {
        self.read("read fleet nodes", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT n.holder, n.role, n.started_at, n.seen_at, n.claimed, n.done,
                        (SELECT count(*) FROM fleet_due d
                         WHERE d.locked_by = n.holder AND d.lease_until >= ?1)
                 FROM fleet_nodes n ORDER BY n.seen_at DESC, n.holder",
            )?;
            let rows = stmt.query_map(params![ts_to_sql(now)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                ))
            })?;
            rows.map(|row| {
                let (holder, role, started, seen, claimed, done, holding) = row?;
                Ok(NodeRecord {
                    started_at: ts_from_sql(&started, "fleet_nodes", &holder)?,
                    seen_at: ts_from_sql(&seen, "fleet_nodes", &holder)?,
                    claimed: to_u64(claimed, || format!("fleet_nodes `{holder}` claimed"))?,
                    done: to_u64(done, || format!("fleet_nodes `{holder}` done"))?,
                    holding: to_u64(holding, || format!("fleet_nodes `{holder}` holding"))?,
                    holder,
                    role,
                })
            })
            .collect()
        })
        .await
    }

    async fn due_summary(&self, now: Timestamp) -> Result<DueSummary, StoreError> {
        self.read("read due routes", move |conn| {
            let now = ts_to_sql(now);
            let (routes, due, leased): (i64, i64, i64) = conn
                .prepare_cached(
                    "SELECT count(*),
                            count(*) FILTER (WHERE next_due <= ?1
                                             AND (lease_until IS NULL OR lease_until < ?1)),
                            count(*) FILTER (WHERE lease_until >= ?1)
                     FROM fleet_due",
                )?
                .query_row(params![now], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            Ok(DueSummary {
                routes: to_u64(routes, || "fleet_due count".into())?,
                due: to_u64(due, || "fleet_due due".into())?,
                leased: to_u64(leased, || "fleet_due leased".into())?,
            })
        })
        .await
    }
}
