//! The price history table on this backend. Writes are values
//! ([`HistoryWrite`]) the writer task runs in its batches, like every other
//! write; reads use the pool.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::write::{Done, Write};
use super::{ts, Postgres};
use crate::domain::{Currency, Money};
use crate::store::{Fail, PriceHistory, PricePoint, StoreError};

/// Points per insert statement (each column is one array parameter).
const POINTS_PER_STATEMENT: usize = 1000;

/// A write to the price history, with everything it needs.
pub(super) enum HistoryWrite {
    Record { points: Vec<PricePoint> },
    Compact { before: Timestamp },
}

impl HistoryWrite {
    /// Runs the write inside the caller's transaction; how many rows it
    /// inserted or deleted.
    pub(super) async fn apply(&self, conn: &mut PgConnection) -> Result<u64, Fail> {
        match self {
            Self::Record { points } => {
                let mut written = 0;
                for chunk in points.chunks(POINTS_PER_STATEMENT) {
                    written += insert_points(conn, chunk).await?;
                }
                Ok(written)
            }
            Self::Compact { before } => {
                // Of each (search, currency, UTC day) older than `before`,
                // only the cheapest row (the earliest of equals) stays.
                let deleted = sqlx::query(
                    "DELETE FROM price_history
                     WHERE observed_at < $1
                       AND id NOT IN (
                           SELECT id FROM (
                               SELECT id, ROW_NUMBER() OVER (
                                   PARTITION BY search_key, currency,
                                                (observed_at AT TIME ZONE 'UTC')::date
                                   ORDER BY price_minor, observed_at, id
                               ) AS rank
                               FROM price_history WHERE observed_at < $1
                           ) AS ranked WHERE rank = 1
                       )",
                )
                .bind(before.to_sqlx())
                .execute(&mut *conn)
                .await?;
                Ok(deleted.rows_affected())
            }
        }
    }
}

/// One statement for `points`: one array per column.
async fn insert_points(conn: &mut PgConnection, points: &[PricePoint]) -> Result<u64, Fail> {
    let done = sqlx::query(
        "INSERT INTO price_history (search_key, observed_at, price_minor, currency, source)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[])",
    )
    .bind(
        points
            .iter()
            .map(|p| p.search_key.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        points
            .iter()
            .map(|p| p.observed_at.to_sqlx())
            .collect::<Vec<_>>(),
    )
    .bind(points.iter().map(|p| p.price.minor).collect::<Vec<_>>())
    .bind(
        points
            .iter()
            .map(|p| p.price.currency.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(points.iter().map(|p| p.source.clone()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

impl Postgres {
    /// Queues a history write for the writer task; its count once committed.
    async fn history_write(
        &self,
        op: &'static str,
        write: HistoryWrite,
    ) -> Result<u64, StoreError> {
        match self.write(op, Write::History(write)).await? {
            Done::Count(count) => Ok(count),
            other => Err(other.unexpected(&self.db, op)),
        }
    }
}

#[async_trait]
impl PriceHistory for Postgres {
    async fn record_prices(&self, points: &[PricePoint]) -> Result<u64, StoreError> {
        let write = HistoryWrite::Record {
            points: points.to_vec(),
        };
        self.history_write("record prices", write).await
    }

    async fn price_history(
        &self,
        search_key: &str,
        since: Timestamp,
    ) -> Result<Vec<PricePoint>, StoreError> {
        self.read("read price history", async {
            let rows = sqlx::query(
                "SELECT observed_at, price_minor, currency, source FROM price_history
                 WHERE search_key = $1 AND observed_at >= $2
                 ORDER BY observed_at, id",
            )
            .bind(search_key)
            .bind(since.to_sqlx())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let currency: String = row.try_get("currency")?;
                    let currency = Currency::parse(&currency).map_err(|e| {
                        Fail::Corrupt(format!("price_history row `{search_key}`: {e}"))
                    })?;
                    Ok(PricePoint {
                        search_key: search_key.to_owned(),
                        observed_at: ts(row, "observed_at")?,
                        price: Money::from_minor(row.try_get("price_minor")?, currency),
                        source: row.try_get("source")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn compact_price_history(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.history_write("compact price history", HistoryWrite::Compact { before })
            .await
    }
}
