//! The fleet tables on this backend: each write its own short transaction
//! on the pool; claims with `FOR UPDATE SKIP LOCKED`.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use jiff_sqlx::ToSqlx;
use sqlx::{Acquire, Row};

use super::{ts, Postgres};
use crate::store::fleet::{DueSummary, Fleet, NodeRecord};
use crate::store::{to_i64, to_u64, Fail, StoreError};

#[async_trait]
impl Fleet for Postgres {
    async fn claim_due(
        &self,
        holder: &str,
        route_ids: &[String],
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError> {
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let token = crate::search::random_token();
        let run = async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO fleet_due (route_id, next_due)
                 SELECT unnest($1::text[]), $2
                 ON CONFLICT (route_id) DO NOTHING",
            )
            .bind(route_ids)
            .bind(now.to_sqlx())
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(
                "WITH picked AS (
                     SELECT route_id FROM fleet_due
                     WHERE route_id = ANY($1) AND next_due <= $2
                       AND (lease_until IS NULL OR lease_until < $2 OR locked_by = ANY($7))
                     ORDER BY next_due, route_id
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE fleet_due d
                 SET lease_token = $4, lease_until = $5, locked_by = $6
                 FROM picked WHERE d.route_id = picked.route_id
                 RETURNING d.route_id",
            )
            .bind(route_ids)
            .bind(now.to_sqlx())
            .bind(i64::from(limit))
            .bind(&token)
            .bind(until.to_sqlx())
            .bind(holder)
            .bind(take_over)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await.map_err(|e| Fail::Commit(e.to_string()))?;
            rows.iter()
                .map(|row| Ok(row.try_get::<String, _>(0)?))
                .collect::<Result<Vec<_>, Fail>>()
        };
        let claimed = run
            .await
            .map_err(|fail: Fail| fail.into_error(self.db.clone(), "claim due routes"))?;
        Ok((token, claimed))
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
