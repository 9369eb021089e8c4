//! STUB — to be implemented (helper: store). The public API below is the contract.
//!
//! Durable state: per-route alert state, the alert outbox (intents and sent
//! records with the provider's message id), and a small key-value table for
//! cached OAuth tokens. Embedded SQLite by default.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::rules::AlertState;

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A private in-memory SQLite database (demo mode, tests).
    Memory,
}

impl StoreLocation {
    /// Parses `DATABASE_URL`: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let _ = url;
        todo!()
    }

    /// `<data dir>/farewatch/farewatch.db` (e.g. `~/.local/share/farewatch/farewatch.db`).
    pub fn default_path() -> Result<Self, StoreError> {
        todo!()
    }
}

/// A store failure. Messages say which database and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Placeholder.
    #[error("store error: {0}")]
    Other(String),
}

/// One alert to one recipient, persisted before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Unique: route id, alert number (drop) and recipient.
    pub key: String,
    /// The route's [`crate::route::Route::id`].
    pub route_id: String,
    /// The alert number (`AlertState::alerts_sent` after this alert).
    pub seq: u64,
    /// The recipient (E.164 or a channel name).
    pub recipient: String,
    /// Channel name (`"twilio"`, `"console"`).
    pub channel: String,
    /// The exact text sent.
    pub body: String,
    /// When the intent was first written.
    pub created_at: Timestamp,
}

/// Where an intent stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentStatus {
    /// Just written by this call.
    New,
    /// Written earlier and not yet known to be sent.
    Pending,
    /// Accepted by the provider.
    Sent {
        /// The provider's message id.
        message_id: String,
    },
    /// Refused for good.
    Failed {
        /// What the provider said.
        error: String,
    },
}

/// A row of the sent log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRecord {
    /// The intent key.
    pub key: String,
    /// The route id.
    pub route_id: String,
    /// The recipient.
    pub recipient: String,
    /// The body sent.
    pub body: String,
    /// The provider's message id.
    pub message_id: String,
    /// When it was recorded as sent.
    pub sent_at: Timestamp,
}

/// The durable store.
#[derive(Clone, Debug)]
pub struct Store {}

impl Store {
    /// Opens (creating if needed, with migrations) the store at `location`.
    pub fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let _ = location;
        todo!()
    }

    /// Every route's saved alert state, keyed by route id.
    pub async fn load_states(&self) -> Result<HashMap<String, AlertState>, StoreError> {
        todo!()
    }

    /// Saves a route's state on its own (used when a row re-arms).
    pub async fn save_state(&self, route_id: &str, state: &AlertState) -> Result<(), StoreError> {
        let _ = (route_id, state);
        todo!()
    }

    /// Writes the intent unless its key exists; returns the key's status.
    pub async fn open_intent(&self, intent: &Intent) -> Result<IntentStatus, StoreError> {
        let _ = intent;
        todo!()
    }

    /// Marks an intent sent; when `completes` is given, saves that route
    /// state in the same transaction.
    pub async fn record_sent(
        &self,
        key: &str,
        message_id: &str,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let _ = (key, message_id, completes);
        todo!()
    }

    /// Marks an intent failed for good; `completes` as in [`Store::record_sent`].
    pub async fn record_failed(
        &self,
        key: &str,
        error: &str,
        completes: Option<(&str, &AlertState)>,
    ) -> Result<(), StoreError> {
        let _ = (key, error, completes);
        todo!()
    }

    /// The sent log, newest first.
    pub async fn sent_log(&self, limit: usize) -> Result<Vec<SentRecord>, StoreError> {
        let _ = limit;
        todo!()
    }
}

/// Somewhere to keep an OAuth token between runs (cron runs reuse it).
#[async_trait]
pub trait TokenCache: Send + Sync + 'static {
    /// The token saved under `key`, if it has not expired.
    async fn load_token(&self, key: &str) -> Option<(String, Timestamp)>;
    /// Saves a token until `expires_at`. Failures are logged, not returned.
    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp);
}

#[async_trait]
impl TokenCache for Store {
    async fn load_token(&self, key: &str) -> Option<(String, Timestamp)> {
        let _ = key;
        todo!()
    }
    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp) {
        let _ = (key, token, expires_at);
        todo!()
    }
}
