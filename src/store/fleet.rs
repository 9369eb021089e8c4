//! Fleet coordination: several daemons on one database share the routes
//! between them, so each route is looked up once per interval by one of
//! them. The [`Fleet`] trait is the backends' half; [`Store`] methods are
//! the typed API.
//!
//! Schema (versions 7 and 8, `migrations/*/000{7,8}_*.sql`):
//! - `fleet_due`: per route (its state key, [`crate::route::Route::id`]),
//!   when it is next due, and the lease of the daemon holding it
//!   (`lease_token`, `lease_until`, `locked_by`); `cycles`, `done_by` and
//!   `done_at` say who looked it up last.
//! - `fleet_nodes`: each daemon's heartbeat (`seen_at`) and totals.
//! - `fleet_leases`: named leases (`sheet`: who reads the sheet for the
//!   fleet), each held by one daemon until a time it renews.
//! - `fleet_sheet`: the sheet as last read by the holder of the `sheet`
//!   lease (its bytes, their SHA-256, when they last changed).
//!
//! # Claims
//! Daemons register the routes their sheet and the API list (a route new
//! to the table is due at once; the `sheet` lease holder also removes the
//! routes gone from them) and claim a batch of those due and not leased (or
//! whose lease ran out) in one transaction: PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so two daemons never take or wait for the same
//! route; SQLite through its single writer. While it looks the batch up a
//! daemon renews its lease ([`Store::extend_due`]); then it completes the
//! batch under its lease token: next due one interval later. A daemon
//! killed mid-cycle leaves its routes leased until the lease ends; the
//! next claim of any daemon after that takes them.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::{Store, StoreError};

/// A daemon's row in `fleet_nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its holder name (`HOST/PID/RANDOM`).
    pub holder: String,
    /// `daemon` (or another role).
    pub role: String,
    /// When it first beat.
    pub started_at: Timestamp,
    /// Its last heartbeat.
    pub seen_at: Timestamp,
    /// Routes it claimed, in all.
    pub claimed: u64,
    /// Routes it completed, in all.
    pub done: u64,
    /// Routes it holds now (leased, lease not over).
    pub holding: u64,
}

/// What `fleet_due` holds, in numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DueSummary {
    /// Routes known.
    pub routes: u64,
    /// Of those, due now and not held.
    pub due: u64,
    /// Of those, held under a live lease.
    pub leased: u64,
}

/// A named lease in `fleet_leases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// What it is for (`sheet`).
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Until when, unless renewed.
    pub until: Timestamp,
}

/// The sheet as the fleet last read it (`fleet_sheet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSheet {
    /// Where it was read from, as shown in messages (credentials redacted).
    pub source: String,
    /// Its bytes, as read.
    pub body: Vec<u8>,
    /// Their SHA-256, in hex.
    pub digest: String,
    /// When the bytes last changed.
    pub changed_at: Timestamp,
    /// When they were last read from the source.
    pub synced_at: Timestamp,
    /// By whom.
    pub synced_by: String,
}

/// The SHA-256 of `body`, in hex: how [`StoredSheet::digest`] is made.
pub fn sheet_digest(body: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The backends' half; each method is documented on the [`Store`] method
/// of the same name.
#[allow(missing_docs)]
#[async_trait]
pub trait Fleet: Send + Sync + 'static {
    async fn register_due(&self, route_ids: &[String], now: Timestamp) -> Result<u64, StoreError>;
    async fn prune_due(&self, keep: &[String], now: Timestamp) -> Result<u64, StoreError>;
    async fn claim_due(
        &self,
        holder: &str,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError>;
    async fn extend_due(&self, token: &str, until: Timestamp) -> Result<u64, StoreError>;
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        take_over: &[String],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn fleet_leases(&self) -> Result<Vec<LeaseRecord>, StoreError>;
    async fn save_sheet(
        &self,
        source: &str,
        body: &[u8],
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn sheet_digest(&self) -> Result<Option<String>, StoreError>;
    async fn stored_sheet(&self) -> Result<Option<StoredSheet>, StoreError>;
    async fn complete_due(
        &self,
        holder: &str,
        token: &str,
        route_ids: &[String],
        next_due: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    async fn beat(
        &self,
        holder: &str,
        role: &str,
        claimed: u64,
        done: u64,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn fleet_nodes(&self, now: Timestamp) -> Result<Vec<NodeRecord>, StoreError>;
    async fn due_summary(&self, now: Timestamp) -> Result<DueSummary, StoreError>;
}

impl Store {
    /// Registers `route_ids`: those new to the table are due at `now`.
    /// Returns how many were new.
    pub async fn register_due(
        &self,
        route_ids: &[String],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.backend.register_due(route_ids, now).await
    }

    /// Forgets the routes not in `keep` (gone from the sheet and the API),
    /// except those held by a live lease at `now`. Returns how many went.
    pub async fn prune_due(&self, keep: &[String], now: Timestamp) -> Result<u64, StoreError> {
        self.backend.prune_due(keep, now).await
    }

    /// Claims up to `limit` registered routes that are due at `now` and not
    /// held by a live lease (a lease of one of `take_over`, holders known
    /// to be dead, does not count), for `holder`, until `now + lease`,
    /// earliest due first. Returns the claim's token and the routes claimed.
    pub async fn claim_due(
        &self,
        holder: &str,
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError> {
        self.backend
            .claim_due(holder, take_over, limit, now, lease)
            .await
    }

    /// Renews the lease on the routes claimed under `token` until `until`.
    /// Returns how many it still held (0: the claim was taken over).
    pub async fn extend_due(&self, token: &str, until: Timestamp) -> Result<u64, StoreError> {
        self.backend.extend_due(token, until).await
    }

    /// Takes or renews the lease `name` for `holder` until `until`: granted
    /// when nobody holds it, `holder` does, its holder's time ran out by
    /// `now`, or its holder is one of `take_over` (known to be dead).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        take_over: &[String],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.backend
            .take_lease(name, holder, take_over, now, until)
            .await
    }

    /// Every named lease, by name.
    pub async fn fleet_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.backend.fleet_leases().await
    }

    /// Records the sheet `holder` read from `source` at `now`. Returns
    /// whether its bytes changed (or it is the first).
    pub async fn save_sheet(
        &self,
        source: &str,
        body: &[u8],
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.backend.save_sheet(source, body, holder, now).await
    }

    /// The stored sheet's digest, without its bytes (`None`: none yet).
    pub async fn sheet_digest(&self) -> Result<Option<String>, StoreError> {
        self.backend.sheet_digest().await
    }

    /// The stored sheet (`None`: none yet).
    pub async fn stored_sheet(&self) -> Result<Option<StoredSheet>, StoreError> {
        self.backend.stored_sheet().await
    }

    /// Completes routes claimed under `token`: each next due at `next_due`,
    /// its lease released, `holder` recorded as the one that did it.
    /// Routes whose lease is no longer `token`'s are left alone; returns how
    /// many were completed.
    pub async fn complete_due(
        &self,
        holder: &str,
        token: &str,
        route_ids: &[String],
        next_due: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.backend
            .complete_due(holder, token, route_ids, next_due, now)
            .await
    }

    /// `holder`'s heartbeat, adding `claimed` and `done` to its totals.
    pub async fn beat(
        &self,
        holder: &str,
        role: &str,
        claimed: u64,
        done: u64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.backend.beat(holder, role, claimed, done, now).await
    }

    /// Every node that ever beat, most recently seen first, with the routes
    /// each holds at `now`.
    pub async fn fleet_nodes(&self, now: Timestamp) -> Result<Vec<NodeRecord>, StoreError> {
        self.backend.fleet_nodes(now).await
    }

    /// How many routes are known, due and held at `now`.
    pub async fn due_summary(&self, now: Timestamp) -> Result<DueSummary, StoreError> {
        self.backend.due_summary(now).await
    }
}
