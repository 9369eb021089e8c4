//! Fleet coordination: several daemons on one database share the routes
//! between them, so each route is looked up once per interval by one of
//! them. The [`Fleet`] trait is the backends' half; [`Store`] methods are
//! the typed API.
//!
//! Schema (version 7, `migrations/*/0007_fleet.sql`):
//! - `fleet_due`: per route (its state key, [`crate::route::Route::id`]),
//!   when it is next due, and the lease of the daemon holding it
//!   (`lease_token`, `lease_until`, `locked_by`); `cycles`, `done_by` and
//!   `done_at` say who looked it up last.
//! - `fleet_nodes`: each daemon's heartbeat (`seen_at`) and totals.
//!
//! # Claims
//! A daemon registers the routes its sheet and the API list (a route new
//! to the table is due at once) and claims a batch of those due and not
//! leased (or whose lease ran out) in one transaction: PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so two daemons never take or wait for the same
//! route; SQLite through its single writer. After looking the batch up it
//! completes it under its lease token: next due one interval later. A
//! daemon killed mid-cycle leaves its routes leased until the lease ends
//! (one interval); the next cycle of any daemon after that takes them.

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

/// The backends' half; each method is documented on the [`Store`] method
/// of the same name.
#[allow(missing_docs)]
#[async_trait]
pub trait Fleet: Send + Sync + 'static {
    async fn claim_due(
        &self,
        holder: &str,
        route_ids: &[String],
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError>;
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
    /// Registers `route_ids` (new ones are due at once) and claims up to
    /// `limit` of them that are due at `now` and not held by a live lease
    /// (a lease of one of `take_over`, holders known to be dead, does not
    /// count), for `holder`, until `now + lease`. Returns the claim's token
    /// and the routes claimed.
    pub async fn claim_due(
        &self,
        holder: &str,
        route_ids: &[String],
        take_over: &[String],
        limit: u32,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<(String, Vec<String>), StoreError> {
        self.backend
            .claim_due(holder, route_ids, take_over, limit, now, lease)
            .await
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
