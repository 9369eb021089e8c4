//! The fleet: several farewatch processes (daemons, `serve`, `worker`)
//! sharing one Redis, keeping each provider's limits together rather than
//! each on its own.
//!
//! # Fleet-wide rate limits
//! A [`FleetLimiter`] per provider holds the provider's configured rate
//! (`P_RATE_LIMIT`) and daily budget (`P_DAILY_BUDGET`) for the whole fleet:
//! three daemons never send three times the allowed requests. Each request
//! takes a turn from `limits.lua`, one atomic script:
//!
//! - **GCRA.** Each provider has a theoretical arrival time (TAT). A request
//!   at `now` moves it to `max(TAT, now) + interval` (`interval = 1 / rate`)
//!   and is allowed when that is at most `burst × interval` ahead of `now`;
//!   otherwise it is refused with the time until it would be. `now` is Redis's
//!   own clock (`TIME`, integer microseconds), so every process shares one
//!   clock whatever its own says, and the script returns integers only.
//! - **Daily quota** in the same script: a request is counted (`INCR`) only
//!   when both the quota and the rate allow it.
//! - **Keys**, all with the provider as hash tag and all passed in `KEYS`:
//!
//!   ```text
//!   fw:rl:{amadeus}                    TAT in µs; expires once it has passed
//!   fw:quota:{amadeus}:2026-12-04      requests spent that UTC day (Redis's); 2-day expiry
//!   fw:nodes:{amadeus}                 processes that called lately (sorted set)
//!   ```
//!
//! - **Turns reserved ahead.** One call may ask for several turns: the
//!   script grants those due within the caller's horizon (its deadline) and
//!   says when the first is due; the others follow one interval apart. The
//!   caller sleeps until its turn (tokio's clock) instead of being refused
//!   and polling, and a process with lookups queued reserves turns for them
//!   in the same round trip (up to 50 ms of the rate, at most 64), so a
//!   daemon paced at 1,000 requests a second makes a few dozen round trips
//!   a second, not thousands. Turns reserved and never used (the process
//!   stops, its lookups give up) are lost: the fleet under-uses its limit
//!   by them, never exceeds it.
//!
//! # Degraded, not down
//! When Redis does not answer, the limiter falls back to a local GCRA at
//! this process's share: `rate / fleet size` (and the day's remaining quota
//! divided the same way), logs one warning, counts
//! `farewatch_fleet_fallbacks_total`, and probes Redis in the background
//! every few seconds; when Redis answers again, it goes back to the shared
//! limit. The fleet size is the larger of `FAREWATCH_FLEET_SIZE` (default
//! [`DEFAULT_FLEET_SIZE`]) and the number of processes Redis saw calling
//! in the last [`NODE_HORIZON`], so a fleet that had Redis when it started
//! divides the limit correctly without being told its size.
//!
//! The adaptive concurrency controller adapts per process
//! ([`crate::upstream::arc`]), within its share of the provider's ceiling:
//! the configured `P_MAX_CONCURRENCY` divided by the processes the script
//! counted ([`crate::upstream::arc::Controller::set_fleet_share`]). Every
//! source on a fleet's Redis has a limiter, paced or not, for that count.

pub mod limiter;

pub use limiter::{
    limit_states, Attempt, FleetLimiter, FleetRedis, LimitState, Refused, DEFAULT_BURST,
    DEFAULT_FLEET_SIZE, DEFAULT_PROBE_EVERY, NODE_HORIZON, REDIS_TIMEOUT,
};
