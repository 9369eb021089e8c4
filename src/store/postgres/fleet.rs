//! The fleet tables on this backend: each write its own short transaction
//! on the pool; claims with `FOR UPDATE SKIP LOCKED`.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use jiff_sqlx::ToSqlx;
use sqlx::Row;

use super::{ts, Postgres};
use crate::store::fleet::{sheet_digest, DueSummary, Fleet, LeaseRecord, NodeRecord, StoredSheet};
use crate::store::{to_i64, to_u64, Fail, StoreError};

#[async_trait]
impl Fleet for Postgres {
    async fn register_due(&self, route_ids: &[String], now: Timestamp) -> Result<u64, StoreError> {
        self.read("register due routes", async {
            let done = sqlx::query(
                "INSERT INTO fleet_due (route_id, next_due)
                 SELECT unnest($1::text[]), $2
                 ON CONFLICT (route_id) DO NOTHING",
            )
            .bind(route_ids)
            .bind(now.to_sqlx())
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn prune_due(&self, keep: &[String], now: Timestamp) -> Result<u64, StoreError> {
        self.read("forget routes gone from the sheet", async {
            // An anti-join, not `<> ALL($1)`: linear in the routes, not quadratic.
            let done = sqlx::query(
                "DELETE FROM fleet_due d
                 WHERE (d.lease_until IS NULL OR d.lease_until < $2)
                   AND NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS k(id) WHERE k.id = d.route_id)",
            )
            .bind(keep)
            .bind(now.to_sqlx())
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
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
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let token = crate::search::random_token();
        let claimed = self
            .read("claim due routes", async {
                let rows = sqlx::query(
                    // `= ANY(ARRAY(...))`, not a join with the picked rows:
                    // the update then finds them by primary key instead of
                    // hashing the whole table.
                    "UPDATE fleet_due
                     SET lease_token = $3, lease_until = $4, locked_by = $5
                     WHERE route_id = ANY(ARRAY(
                         SELECT route_id FROM fleet_due
                         WHERE next_due <= $1
                           AND (lease_until IS NULL OR lease_until < $1 OR locked_by = ANY($6))
                         ORDER BY next_due, route_id
                         LIMIT $2
                         FOR UPDATE SKIP LOCKED
                     ))
                     RETURNING route_id",
                )
                .bind(now.to_sqlx())
                .bind(i64::from(limit))
                .bind(&token)
                .bind(until.to_sqlx())
                .bind(holder)
                .bind(take_over)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| Ok(row.try_get::<String, _>(0)?))
                    .collect::<Result<Vec<_>, Fail>>()
            })
            .await?;
        Ok((token, claimed))
    }

    async fn extend_due(&self, token: &str, until: Timestamp) -> Result<u64, StoreError> {
        self.read("renew a claim", async {
            let done = sqlx::query("UPDATE fleet_due SET lease_until = $2 WHERE lease_token = $1")
                .bind(token)
                .bind(until.to_sqlx())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
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
        self.read("take a fleet lease", async {
            let row = sqlx::query(
                "INSERT INTO fleet_leases (name, holder, until) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = $2, until = $4
                 WHERE fleet_leases.holder = $2 OR fleet_leases.until < $3
                    OR fleet_leases.holder = ANY($5)
                 RETURNING holder",
            )
            .bind(name)
            .bind(holder)
            .bind(now.to_sqlx())
            .bind(until.to_sqlx())
            .bind(take_over)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn fleet_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.read("read fleet leases", async {
            let rows = sqlx::query("SELECT name, holder, until FROM fleet_leases ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(LeaseRecord {
                        name: row.try_get("name")?,
                        holder: row.try_get("holder")?,
                        until: ts(row, "until")?,
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
        let digest = sheet_digest(body);
        self.read("store the sheet", async {
            // `changed` is whether the bytes differ from those stored (the
            // old row as the statement found it).
            let row = sqlx::query(
                "WITH old AS (SELECT digest FROM fleet_sheet WHERE id = 1)
                 INSERT INTO fleet_sheet (id, source, body, digest, changed_at, synced_at, synced_by)
                 VALUES (1, $1, $2, $3, $4, $4, $5)
                 ON CONFLICT (id) DO UPDATE
                 SET source = $1, synced_at = $4, synced_by = $5,
                     body = CASE WHEN fleet_sheet.digest = $3 THEN fleet_sheet.body ELSE $2 END,
                     changed_at = CASE WHEN fleet_sheet.digest = $3
                                       THEN fleet_sheet.changed_at ELSE $4 END,
                     digest = $3
                 RETURNING (SELECT digest FROM old) IS DISTINCT FROM $3 AS changed",
            )
            .bind(source)
            .bind(body)
            .bind(&digest)
            .bind(now.to_sqlx())
            .bind(holder)
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get::<bool, _>("changed")?)
        })
        .await
    }

    async fn sheet_digest(&self) -> Result<Option<String>, StoreError> {
        self.read("read the stored sheet", async {
            let row = sqlx::query("SELECT digest FROM fleet_sheet WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|row| row.try_get::<String, _>(0)).transpose()?)
        })
        .await
    }

    async fn stored_sheet(&self) -> Result<Option<StoredSheet>, StoreError> {
        self.read("read the stored sheet", async {
            let row = sqlx::query(
                "SELECT source, body, digest, changed_at, synced_at, synced_by
                 FROM fleet_sheet WHERE id = 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| {
                Ok(StoredSheet {
                    source: row.try_get("source")?,
                    body: row.try_get("body")?,
                    digest: row.try_get("digest")?,
                    changed_at: ts(&row, "changed_at")?,
                    synced_at: ts(&row, "synced_at")?,
                    synced_by: row.try_get("synced_by")?,
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
        self.read("complete due routes", async {
            let done = sqlx::query(
                "UPDATE fleet_due
                 SET next_due = $3, lease_token = NULL, lease_until = NULL, locked_by = NULL,
                     cycles = cycles + 1, done_by = $4, done_at = $5
                 WHERE route_id = ANY($1) AND lease_token = $2",
            )
            .bind(route_ids)
            .bind(token)
            .bind(next_due.to_sqlx())
            .bind(holder)
            .bind(now.to_sqlx())
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
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
        self.read("record a heartbeat", async {
            sqlx::query(
                "INSERT INTO fleet_nodes (holder, role, started_at, seen_at, claimed, done)
                 VALUES ($1, $2, $3, $3, $4, $5)
                 ON CONFLICT (holder) DO UPDATE
                 SET seen_at = $3, claimed = fleet_nodes.claimed + $4,
                     done = fleet_nodes.done + $5",
            )
            .bind(holder)
            .bind(role)
            .bind(now.to_sqlx())
            .bind(to_i64(claimed, "claimed")?)
            .bind(to_i64(done, "done")?)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    async fn fleet_nodes(&self, now: Timestamp) -> Result<Vec<NodeRecord>, StoreError> {
        self.read("read fleet nodes", async {
            let rows = sqlx::query(
                "SELECT n.holder, n.role, n.started_at, n.seen_at, n.claimed, n.done,
                        (SELECT count(*) FROM fleet_due d
                         WHERE d.locked_by = n.holder AND d.lease_until >= $1) AS holding
                 FROM fleet_nodes n ORDER BY n.seen_at DESC, n.holder",
            )
            .bind(now.to_sqlx())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let holder: String = row.try_get("holder")?;
                    let count = |column: &str| -> Result<u64, Fail> {
                        to_u64(row.try_get(column)?, || {
                            format!("fleet_nodes `{holder}` {column}")
                        })
                    };
                    Ok(NodeRecord {
                        role: row.try_get("role")?,
                        started_at: ts(row, "started_at")?,
                        seen_at: ts(row, "seen_at")?,
                        claimed: count("claimed")?,
                        done: count("done")?,
                        holding: count("holding")?,
                        holder: holder.clone(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn due_summary(&self, now: Timestamp) -> Result<DueSummary, StoreError> {
        self.read("read due routes", async {
            let row = sqlx::query(
                "SELECT count(*) AS routes,
                        count(*) FILTER (WHERE next_due <= $1
                                         AND (lease_until IS NULL OR lease_until < $1)) AS due,
                        count(*) FILTER (WHERE lease_until >= $1) AS leased
                 FROM fleet_due",
            )
            .bind(now.to_sqlx())
            .fetch_one(&self.pool)
            .await?;
            let count = |column: &str| -> Result<u64, Fail> {
                to_u64(row.try_get(column)?, || format!("fleet_due {column}"))
            };
            Ok(DueSummary {
                routes: count("routes")?,
                due: count("due")?,
                leased: count("leased")?,
            })
        })
        .await
    }
}
