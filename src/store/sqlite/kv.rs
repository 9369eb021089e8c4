//! Small values kept between runs: provider health, budgets, OAuth tokens.

use super::*;

impl Sqlite {
    /// A small value saved with [`Store::kv_put`] (provider health, budget
    /// counts), unless it has expired.
    pub(super) async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read("read a saved value", move |conn| {
            let row = read_kv(conn, &key)?;
            let Some((value, expires_at)) = row else {
                return Ok(None);
            };
            if let Some(expires_at) = expires_at {
                if ts_from_sql(&expires_at, "kv", &key)? <= Timestamp::now() {
                    return Ok(None);
                }
            }
            Ok(Some(value))
        })
        .await
    }

    /// Saves a small value under `key`, replacing any earlier one.
    pub(super) async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call("save a value", move |conn| {
            write_kv(conn, &key, &value, expires_at)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn try_load_token(
        &self,
        key: &str,
    ) -> Result<Option<(String, Timestamp)>, StoreError> {
        let key = key.to_owned();
        self.read("load cached token", move |conn| {
            let row = read_kv(conn, &key)?;
            let Some((value, Some(expires_at))) = row else {
                // A token without an expiry is not something we write; ignore it.
                return Ok(None);
            };
            let expires_at = ts_from_sql(&expires_at, "kv", &key)?;
            Ok((expires_at > Timestamp::now()).then_some((value, expires_at)))
        })
        .await
    }

    pub(super) async fn try_save_token(
        &self,
        key: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let token = token.to_owned();
        self.call("save cached token", move |conn| {
            // Atomic: every call runs in its own savepoint (see `Sqlite::call`).
            let tx: &Connection = conn;
            // Expired tokens are useless and still secrets: drop them.
            tx.prepare_cached("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1")?
                .execute(params![ts_to_sql(Timestamp::now())])?;
            write_kv(tx, &key, &token, Some(expires_at))?;
            Ok(())
        })
        .await
    }
}

/// `key`'s value and expiry (SQL text), expired or not.
fn read_kv(conn: &Connection, key: &str) -> Result<Option<(String, Option<String>)>, Fail> {
    let row = conn
        .prepare_cached("SELECT value, expires_at FROM kv WHERE key = ?1")?
        .query_row(params![key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(row)
}

/// Saves `value` under `key`, replacing any earlier one.
fn write_kv(
    conn: &Connection,
    key: &str,
    value: &str,
    expires_at: Option<Timestamp>,
) -> Result<(), Fail> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE
         SET value = excluded.value, expires_at = excluded.expires_at",
    )?
    .execute(params![key, value, expires_at.map(ts_to_sql)])?;
    Ok(())
}
