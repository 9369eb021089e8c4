//! The price history table on this backend. Writes go through
//! [`Sqlite::call`] (the writer thread, each call in its own savepoint),
//! reads through [`Sqlite::read`].

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::params;

use super::{ts_from_sql, ts_to_sql, Sqlite};
use crate::domain::{Currency, Money};
use crate::store::{Fail, PriceHistory, PricePoint, StoreError};

#[async_trait]
impl PriceHistory for Sqlite {
    async fn record_prices(&self, points: &[PricePoint]) -> Result<u64, StoreError> {
        let points = points.to_vec();
        self.call("record prices", move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO price_history
                     (search_key, observed_at, price_minor, currency, source)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut written = 0u64;
            for p in &points {
                written += stmt.execute(params![
                    p.search_key,
                    ts_to_sql(p.observed_at),
                    p.price.minor,
                    p.price.currency.as_str(),
                    p.source,
                ])? as u64;
            }
            Ok(written)
        })
        .await
    }

    async fn price_history(
        &self,
        search_key: &str,
        since: Timestamp,
    ) -> Result<Vec<PricePoint>, StoreError> {
        let search_key = search_key.to_owned();
        self.read("read price history", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT observed_at, price_minor, currency, source FROM price_history
                 WHERE search_key = ?1 AND observed_at >= ?2
                 ORDER BY observed_at, id",
            )?;
            let rows = stmt.query_map(params![search_key, ts_to_sql(since)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (observed_at, minor, currency, source) = row?;
                let currency = Currency::parse(&currency)
                    .map_err(|e| Fail::Corrupt(format!("price_history row `{search_key}`: {e}")))?;
                Ok(PricePoint {
                    search_key: search_key.clone(),
                    observed_at: ts_from_sql(&observed_at, "price_history", &search_key)?,
                    price: Money::from_minor(minor, currency),
                    source,
                })
            })
            .collect()
        })
        .await
    }

    async fn compact_price_history(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.call("compact price history", move |conn| {
            // The text timestamps are UTC, so their first ten characters
            // are the UTC day. Of each (search, currency, day) older than
            // `before`, only the cheapest row (the earliest of equals) stays.
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM price_history
                     WHERE observed_at < ?1
                       AND id NOT IN (
                           SELECT id FROM (
                               SELECT id, ROW_NUMBER() OVER (
                                   PARTITION BY search_key, currency, substr(observed_at, 1, 10)
                                   ORDER BY price_minor, observed_at, id
                               ) AS rank
                               FROM price_history WHERE observed_at < ?1
                           ) WHERE rank = 1
                       )",
                )?
                .execute(params![ts_to_sql(before)])?;
            Ok(deleted as u64)
        })
        .await
    }
}
