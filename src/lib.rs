//! farewatch: an async fare-alert engine.
//!
//! A routes sheet goes in (origin, destination, dates, the most you will pay,
//! a phone number); an SMS comes out when a fare drops to your price, once
//! per drop. The library knows nothing about terminals or exit codes: the
//! `farewatch` binary owns presentation, and calls [`app::App::run_check`] and
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
//! - [`upstream`]: how hard each provider is pushed, in one layer: the
//!   [`upstream::pool::ProviderPool`] (breaker, adaptive concurrency and
//!   pacing, retries, budget, timeouts), [`upstream::failover`] between
//!   providers, the shared HTTP client and reply plumbing.
//! - [`fleet`]: several processes on one Redis: each provider's rate limit
//!   and daily budget held fleet-wide ([`fleet::FleetLimiter`], a GCRA Lua
//!   script), with a local share of the limit while Redis is down.
//! - [`cache`]: the quote cache (Redis, or in-process).
//! - [`chart`]: price charts from plain points: an SVG or PNG image (price
//!   line, maximum, alerts, typical range; text in an embedded font) and a
//!   terminal sparkline.
//! - [`notify`]: the [`notify::Notifier`] trait (Twilio SMS, Slack,
//!   Discord, a signed JSON webhook, the console) and the SMS text.
//! - [`status`]: flight status providers behind [`status::StatusProvider`].
//! - [`store`]: durable alert state, the outbox, tokens, saved values and the
//!   price history, behind one [`store::Backend`] trait: SQLite (embedded,
//!   the default) or PostgreSQL.
//! - [`engine`]: one cycle: sheet -> lookups -> decisions -> alerts -> report;
//!   [`engine::plan_route`] is the pure decision for one route, the engine
//!   carries plans out.
//! - [`config`]: the environment (`.env`, flags laid over it) into one
//!   checked [`config::Plan`]; [`config::registry`] lists every fare source,
//!   status provider and channel with its variables, defaults and constructor.
//! - [`api`]: `farewatch serve`, the HTTP API (users, idempotent writes,
//!   OpenAPI document).
//! - [`collector`]: the airport collector: OpenSky arrivals and departures
//!   for every airport an API user is interested in, stored once per flight.
//! - [`app`]: the composition root: [`app::App::assemble`] builds the engine
//!   from a plan for every command, and [`app::App::run_check`] returns a
//!   whole report; [`app::providers`] and [`app::flights`] assemble the
//!   `providers` and `flights` commands; [`app::fleet`] is one tick of a
//!   fleet daemon (the sheet read once for the fleet under a lease, due
//!   routes claimed in batches, claims renewed while checked).
//! - [`daemon`]: cycles on an interval until an injected shutdown future fires.
//! - [`search`]: search jobs: a flexible search (airports × dates)
//!   expanded into combinations, stored as a job in chunks, worked on by
//!   [`search::run::Worker`]s that claim chunks with leases and commit
//!   results with progress in one fenced transaction.
//! - [`verdict`]: is a price low, typical or high? From the provider's
//!   insights, else from the search's price history (documented quantiles).
//! - [`links`]: Google Flights deep links (`tfs`) for alerts.
//! - [`redact`]: credentials out of URLs before they are shown.
//! - [`telemetry`]: every metric's name, type and help, the Prometheus
//!   recorder and the `/healthz` + `/metrics` routes.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod api;
pub mod app;
pub mod cache;
pub mod chart;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod fare;
pub mod fleet;
// Raw-bytes entry points to the parsers of untrusted input, for `fuzz/` and
// `tests/parsers_props.rs`; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
pub mod links;
pub mod notify;
pub mod redact;
pub mod route;
pub mod rules;
pub mod search;
pub mod sheet;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod verdict;
