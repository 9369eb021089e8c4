//! farewatch: an async fare-alert engine.
//!
//! A routes sheet goes in (origin, destination, dates, the most you will pay,
//! a phone number); an SMS comes out when a fare drops to your price, once
//! per drop. The library knows nothing about terminals or exit codes: the
//! `farewatch` binary owns presentation, and calls [`engine::Engine::run_cycle`] and
//! [`daemon::run`].
//!
//! # Layout
//! - [`domain`]: newtypes parsed at the edge: [`domain::Iata`],
//!   [`domain::E164`], [`domain::Money`] (integer minor units with a
//!   currency), [`domain::LookupKey`], [`domain::Quote`].
//! - [`sheet`]: the routes sheet (CSV file or URL) into [`route::Route`]s,
//!   with `file:line: column: problem` reports.
//! - [`rules`]: the pure alert rule (threshold, minimum drop, cooldown, re-arm).
//! - [`fare`]: the [`fare::FareSource`] trait, one module per provider
//!   (SerpApi, Duffel, Amadeus, Kiwi Tequila, Travelpayouts, and the offline
//!   demo source), wire types private to each.
//! - [`failover`]: several providers in priority order behind one lookup.
//! - [`pool`]: one [`pool::ProviderPool`] per provider owns its concurrency
//!   limit, pacing and timeout.
//! - [`retry`]: which failures are retried ([`retry::Retryable`]), full-jitter
//!   backoff, capped `Retry-After`, and the [`retry::retry`] loop.
//! - [`breaker`]: the per-provider circuit breaker, a named state machine
//!   (closed, open, half-open).
//! - [`budget`]: daily budgets of paid searches per provider.
//! - [`cache`]: the quote cache (Redis, or in-process).
//! - [`notify`]: the [`notify::Notifier`] trait (Twilio SMS, Slack,
//!   Discord, a signed JSON webhook, the console) and the SMS text.
//! - [`status`]: flight status providers behind [`status::StatusProvider`].
//! - [`store`]: durable alert state and the outbox (SQLite).
//! - [`engine`]: one cycle: sheet -> lookups -> decisions -> alerts -> report.
//! - [`daemon`]: cycles on an interval until an injected shutdown future fires.
//! - [`links`]: Google Flights deep links (`tfs`) for alerts.
//! - [`http`]: the one pooled HTTP client and capped body reading.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod breaker;
pub mod budget;
pub mod cache;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod failover;
pub mod fare;
// Raw-bytes entry points to every parser, for `fuzz/` and
// `tests/parsers_props.rs`; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod links;
pub mod notify;
pub mod pool;
pub mod retry;
pub mod route;
pub mod rules;
pub mod sheet;
pub mod status;
pub mod store;
