//! Settings in, one validated plan out: the environment (and `.env`, and
//! flags, which the binary lays over it) read in one place.
//!
//! [`Env`] is a snapshot of the variables; [`registry`] lists every fare
//! source, flight-status provider and channel with its variables, defaults
//! and constructor; [`Plan::from_env`] picks and checks what runs. Nothing
//! here opens a connection: [`crate::app::App::assemble`] does that.

mod dotenv;
mod env;
mod plan;
pub mod registry;

use std::time::Duration;

pub use dotenv::read as read_dotenv;
pub use env::Env;
pub use plan::{
    twilio_missing, FareSourcePlan, FleetPlan, Mode, Plan, SmsPlan, SourceOverview, TWILIO_VARS,
};

use crate::engine::EngineError;
use crate::sheet::SheetError;
use crate::store::StoreError;

/// Why farewatch cannot start, or a cycle could not run (the binary's exit
/// code 3: nothing was done).
///
/// Messages name the variable or file to fix; match on the variant, not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Required variables are not set.
    #[error("missing configuration: set {} (in the environment or .env; see .env.example), or run with --demo", .0.join(", "))]
    Missing(Vec<String>),
    /// A setting is set to something unusable.
    #[error("{name}: {message}")]
    Invalid {
        /// The variable or flag.
        name: String,
        /// What is wrong, quoting what was given, and what is expected.
        message: String,
    },
    /// The state store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sheet (or watch list) cannot be read at all.
    #[error(transparent)]
    Sheet(#[from] SheetError),
    /// The engine could not run a cycle.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `name`.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// Parses a duration such as `15m`, `6h`, `90s`, for settings where zero
/// means nothing (intervals, timeouts): zero is an error.
pub fn parse_duration(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    let duration = parse_duration_or_zero(name, raw)?;
    if duration.is_zero() {
        return Err(ConfigError::invalid(
            name,
            format!(
                "`{}` must be longer than zero, such as 30s, 15m or 6h",
                raw.trim()
            ),
        ));
    }
    Ok(duration)
}

/// Parses a duration that may be zero (`0`, `0s`), for settings where zero
/// means "off", such as a quote TTL of zero for "do not cache".
pub fn parse_duration_or_zero(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    let trimmed = raw.trim();
    let invalid = || {
        ConfigError::invalid(
            name,
            format!("`{trimmed}` is not a duration; expected something like 30s, 15m or 6h"),
        )
    };
    // A bare 0 needs no unit: zero of anything is zero.
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    let signed: jiff::SignedDuration = trimmed.parse().map_err(|_| invalid())?;
    Duration::try_from(signed).map_err(|_| invalid())
}

/// Parses a whole number of seconds (`POLL_INTERVAL_SECONDS=60`); zero is an error.
pub fn parse_seconds(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    match raw.trim().parse::<u64>() {
        Ok(0) => Err(ConfigError::invalid(
            name,
            "must be at least 1 (seconds)".to_owned(),
        )),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => Err(ConfigError::invalid(
            name,
            format!("`{}` is not a whole number of seconds", raw.trim()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_say_what_was_given() {
        assert_eq!(
            parse_duration("X", "15m").unwrap(),
            Duration::from_secs(900)
        );
        assert_eq!(parse_duration_or_zero("X", "0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration_or_zero("X", "0s").unwrap(), Duration::ZERO);
        let zero = parse_duration("FAREWATCH_INTERVAL", "0").unwrap_err();
        assert!(zero.to_string().contains("longer than zero"), "{zero}");
        let bad = parse_duration("X", "abc").unwrap_err().to_string();
        assert_eq!(
            bad,
            "X: `abc` is not a duration; expected something like 30s, 15m or 6h"
        );
        let secs = parse_seconds("POLL_INTERVAL_SECONDS", "abc").unwrap_err();
        assert_eq!(
            secs.to_string(),
            "POLL_INTERVAL_SECONDS: `abc` is not a whole number of seconds"
        );
        assert_eq!(parse_seconds("P", "90").unwrap(), Duration::from_secs(90));
    }
}
