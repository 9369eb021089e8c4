//! Saved alert state per route.

use super::*;

impl Sqlite {
    /// Every route's saved alert state (or those of `only`), keyed by route id.
    pub(super) async fn load_states(
        &self,
        only: Option<&[String]>,
    ) -> Result<HashMap<String, AlertState>, StoreError> {
        // A JSON array binds as one parameter, whatever its length; NULL: all.
        let only = only.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
        self.read("load alert states", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT route_id, last_alerted_minor, last_alerted_currency,
                        last_alerted_at, alerts_sent
                 FROM alert_state
                 WHERE ?1 IS NULL OR route_id IN (SELECT value FROM json_each(?1))",
            )?;
            let rows = stmt.query_map(rusqlite::params![only], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })?;
            let mut states = HashMap::new();
            for row in rows {
                let (route_id, minor, currency, at, sent) = row?;
                let at = at
                    .map(|s| ts_from_sql(&s, "alert_state", &route_id))
                    .transpose()?;
                let state = state_from_row(&route_id, minor, currency, at, sent)?;
                states.insert(route_id, state);
            }
            Ok(states)
        })
        .await
    }

    /// Saves a route's state on its own (used when a row re-arms).
    pub(super) async fn save_state(
        &self,
        route_id: &str,
        state: &AlertState,
    ) -> Result<(), StoreError> {
        let route_id = route_id.to_owned();
        let state = state.clone();
        self.call("save alert state", move |conn| {
            upsert_state(conn, &route_id, &state, Timestamp::now())
        })
        .await
    }
}
