//! `farewatch flights poll` and `farewatch flights get`, assembled: the
//! flight-status providers (with failover), the snapshots in Redis, and the
//! state store where each provider's health is left for `farewatch
//! providers`.
//!
//! Providers come from the environment: `AVIATIONSTACK_ACCESS_KEY`,
//! `FLIGHTAWARE_API_KEY`, `OPENSKY_CLIENT_ID` + `OPENSKY_CLIENT_SECRET`
//! (each also `P_BASE_URL`, `P_MAX_CONCURRENCY`, `P_RATE_LIMIT`); the order
//! is `STATUS_PROVIDERS` or the registry's. The demo uses the built-in mock
//! provider.

use std::time::Duration;

use jiff::civil::Date;

use super::status_failover;
use crate::config::registry::Context;
use crate::config::{parse_duration, parse_seconds, ConfigError, Env};
use crate::domain::Iata;
use crate::status::failover::StatusFailover;
use crate::status::poller::{poll_once, PollReport};
use crate::status::snapshots::{Snapshot, SnapshotError, SnapshotStore};
use crate::status::{FlightState, StatusQuery};
use crate::store::{ProviderRole, SavedHealth, Store};
use crate::upstream::failover::AllFailed;

/// Time between polls when neither `--interval` nor `POLL_INTERVAL_SECONDS` is given.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Time between polls: the flag (a duration such as `90s`) if given, else
/// `POLL_INTERVAL_SECONDS` (whole seconds), else [`DEFAULT_POLL_INTERVAL`].
pub fn poll_interval(env: &Env, flag: Option<&str>) -> Result<Duration, ConfigError> {
    match (flag, env.get("POLL_INTERVAL_SECONDS")) {
        (Some(flag), _) => parse_duration("--interval", flag),
        (None, Some(secs)) => parse_seconds("POLL_INTERVAL_SECONDS", secs),
        (None, None) => Ok(DEFAULT_POLL_INTERVAL),
    }
}

/// A flight status as `FLIGHT_STATUS` spells it (`delayed`, `Landed`).
pub fn flight_state(raw: &str) -> Result<FlightState, ConfigError> {
    let value = serde_json::Value::String(raw.trim().to_ascii_lowercase());
    serde_json::from_value(value).map_err(|_| {
        ConfigError::invalid(
            "FLIGHT_STATUS",
            format!(
                "`{raw}` is not a flight status; expected scheduled, active, delayed, \
                 landed, cancelled, diverted or incident"
            ),
        )
    })
}

/// The poller's filter: flights from `dep` to `arr` (IATA airports, either
/// may be left out), only those in `status` when given, at most `limit`.
pub fn status_filter(
    dep: Option<&str>,
    arr: Option<&str>,
    status: Option<&str>,
    limit: usize,
) -> Result<StatusQuery, ConfigError> {
    let airport = |name: &str, raw: Option<&str>| -> Result<Option<String>, ConfigError> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            Some(code) => Iata::parse(code)
                .map(|iata| Some(iata.to_string()))
                .map_err(|message| ConfigError::invalid(name, message)),
            None => Ok(None),
        }
    };
    if limit == 0 {
        return Err(ConfigError::invalid(
            "MAX_FLIGHTS",
            "must be at least 1 (flights per poll)",
        ));
    }
    Ok(StatusQuery::Filter {
        dep_iata: airport("DEP_IATA", dep)?,
        arr_iata: airport("ARR_IATA", arr)?,
        state: status.map(flight_state).transpose()?,
        limit,
    })
}

/// A flight's date (`YYYY-MM-DD`, local to its departure airport), as
/// `--date` gives it.
pub fn flight_date(raw: Option<&str>) -> Result<Option<Date>, ConfigError> {
    raw.map(|raw| {
        raw.trim().parse::<Date>().map_err(|_| {
            ConfigError::invalid(
                "--date",
                format!("`{raw}` is not a date; expected YYYY-MM-DD"),
            )
        })
    })
    .transpose()
}

/// Where flight snapshots live: Redis, with a key prefix and a lifetime.
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    redis_url: Option<String>,
    key_prefix: String,
    ttl: Duration,
}

impl SnapshotSettings {
    /// Checks the settings: `redis_url` (`REDIS_URL`; unset when `None` or
    /// blank), `key_prefix` (`FLIGHT_KEY_PREFIX`) and `ttl`
    /// (`FLIGHT_SNAPSHOT_TTL`, a duration such as `15m`).
    pub fn new(redis_url: Option<&str>, key_prefix: &str, ttl: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            redis_url: redis_url
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            key_prefix: key_prefix.to_owned(),
            ttl: parse_duration("FLIGHT_SNAPSHOT_TTL", ttl)?,
        })
    }

    /// How long a snapshot lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Connects, for a poller, which cannot work without Redis.
    pub async fn connect(&self) -> Result<SnapshotStore, ConfigError> {
        match self.connect_if_set().await {
            Ok(Some(store)) => Ok(store),
            Err(error) => Err(ConfigError::invalid("REDIS_URL", error.to_string())),
            Ok(None) => Err(ConfigError::invalid(
                "REDIS_URL",
                "not set: polling keeps each flight's snapshot in Redis; set it, \
                 e.g. REDIS_URL=redis://127.0.0.1:6379/",
            )),
        }
    }

    /// Connects when Redis is set (`Ok(None)` when it is not), for a lookup
    /// that can ask the providers instead.
    pub async fn connect_if_set(&self) -> Result<Option<SnapshotStore>, SnapshotError> {
        match &self.redis_url {
            Some(url) => Ok(Some(
                SnapshotStore::connect(url, &self.key_prefix, self.ttl).await?,
            )),
            None => Ok(None),
        }
    }
}

/// The state store, where provider health is left for `farewatch
/// providers`: `DATABASE_URL` or the default path, falling back to an
/// in-memory one (with a warning) when that cannot be opened; in memory for
/// the demo unless `DATABASE_URL` is set.
pub async fn state_store(env: &Env, demo: bool) -> Result<Store, ConfigError> {
    if !demo || env.has("DATABASE_URL") {
        match Store::open_setting(env.get("DATABASE_URL")).await {
            Ok(store) => return Ok(store),
            Err(error) => tracing::warn!(%error, "provider health will not be saved"),
        }
    }
    Ok(Store::memory()?)
}

/// Saves each status provider's health in `store` (best effort: a failure
/// is logged, polling does not need it).
pub async fn save_health(store: &Store, failover: &StatusFailover) {
    for pool in failover.pools() {
        let name = pool.name();
        let saved = SavedHealth {
            saved_at: jiff::Timestamp::now(),
            health: pool.health(),
        };
        if let Err(error) = store
            .save_provider_health(ProviderRole::Status, name, &saved)
            .await
        {
            tracing::warn!(provider = name, %error, "cannot save status provider health");
        }
    }
}

/// The status providers, in priority order (the mock in the demo), with the
/// state store they leave their health in.
async fn providers(env: &Env, demo: bool) -> Result<(StatusFailover, Store), ConfigError> {
    let store = state_store(env, demo).await?;
    let client = crate::upstream::http::build_client();
    let cx = Context {
        env,
        client: &client,
        store: &store,
    };
    Ok((status_failover(&cx, demo)?, store))
}

/// `farewatch flights poll`, assembled: the providers, Redis and the state store.
#[derive(Debug)]
pub struct Poller {
    failover: StatusFailover,
    snapshots: SnapshotStore,
    state: Store,
}

impl Poller {
    /// Opens the state store, builds the providers (the mock for the demo)
    /// and connects to Redis, which a poller needs.
    pub async fn assemble(
        env: &Env,
        demo: bool,
        snapshots: &SnapshotSettings,
    ) -> Result<Self, ConfigError> {
        let (failover, state) = providers(env, demo).await?;
        let snapshots = snapshots.connect().await?;
        Ok(Self {
            failover,
            snapshots,
            state,
        })
    }

    /// Polls once: looks `query` up, writes every flight's snapshots and
    /// saves the providers' health.
    pub async fn poll(&self, query: &StatusQuery) -> PollReport {
        let report = poll_once(&self.failover, &self.snapshots, query).await;
        save_health(&self.state, &self.failover).await;
        report
    }
}

/// Why `flights get` has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The providers cannot be built (nothing was asked).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Every provider failed.
    #[error("{query}: {source}")]
    Lookup {
        /// What was asked.
        query: StatusQuery,
        /// Each provider's failure.
        source: AllFailed,
    },
}

/// `farewatch flights get`: `flight`'s snapshot in Redis if there is one
/// (for `date`, when given); else the providers' answer, each of its
/// designators' snapshots stored (when Redis is set), and the snapshot of
/// the designator asked for shown. `Ok(None)`: no such flight.
pub async fn get(
    env: &Env,
    demo: bool,
    snapshots: Option<&SnapshotStore>,
    flight: &str,
    date: Option<Date>,
) -> Result<Option<Snapshot>, GetError> {
    if let Some(store) = snapshots {
        match store.get(flight).await {
            Ok(Some(stored)) if date.is_none() || stored.date == date => return Ok(Some(stored)),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the flight's snapshot"),
        }
    }
    let (failover, _state) = providers(env, demo).await?;
    let query = StatusQuery::Flight {
        ident: flight.to_owned(),
        date,
    };
    let flights = match failover.flights(&query).await {
        Ok(flights) => flights,
        Err(source) => return Err(GetError::Lookup { query, source }),
    };
    let all: Vec<Snapshot> = flights.iter().flat_map(Snapshot::all_of).collect();
    if let Some(store) = snapshots {
        for snapshot in &all {
            if let Err(error) = store.put(snapshot).await {
                tracing::warn!(%error, "cannot store the flight's snapshot");
            }
        }
    }
    Ok(pick(all, flight))
}

/// The snapshot of the designator asked for (a ticket's marketing number
/// shows its own snapshot, naming the operating flight), else the first.
fn pick(all: Vec<Snapshot>, asked: &str) -> Option<Snapshot> {
    let asked = asked.trim();
    let at = all
        .iter()
        .position(|s| s.flight.eq_ignore_ascii_case(asked))
        .unwrap_or(0);
    all.into_iter().nth(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Endpoint, FlightStatus};

    #[test]
    fn the_filter_checks_airports_statuses_and_the_limit() {
        let query = status_filter(Some(" fra "), Some(""), Some("Delayed"), 5).unwrap();
        assert_eq!(
            query,
            StatusQuery::Filter {
                dep_iata: Some("FRA".into()),
                arr_iata: None,
                state: Some(FlightState::Delayed),
                limit: 5,
            }
        );
        let status = status_filter(None, None, Some("late"), 5).unwrap_err();
        assert_eq!(
            status.to_string(),
            "FLIGHT_STATUS: `late` is not a flight status; expected scheduled, active, \
             delayed, landed, cancelled, diverted or incident"
        );
        let airport = status_filter(Some("EDDF"), None, None, 5).unwrap_err();
        assert_eq!(
            airport.to_string(),
            "DEP_IATA: `EDDF` is not an IATA code; expected three letters such as LHR"
        );
        let arr = status_filter(None, Some("1AB"), None, 5).unwrap_err();
        assert!(arr.to_string().starts_with("ARR_IATA: `1AB`"), "{arr}");
        let limit = status_filter(None, None, None, 0).unwrap_err();
        assert!(limit.to_string().starts_with("MAX_FLIGHTS:"), "{limit}");
    }

    #[test]
    fn the_interval_is_the_flag_then_the_seconds_variable_then_a_minute() {
        let env = Env::from_pairs([("POLL_INTERVAL_SECONDS", "90")]);
        assert_eq!(
            poll_interval(&env, Some("60s")).unwrap(),
            Duration::from_secs(60),
            "a flag given, even the default's value, wins"
        );
        assert_eq!(poll_interval(&env, None).unwrap(), Duration::from_secs(90));
        let none = Env::from_pairs([("X", "")]);
        assert_eq!(poll_interval(&none, None).unwrap(), DEFAULT_POLL_INTERVAL);
        let bad = Env::from_pairs([("POLL_INTERVAL_SECONDS", "abc")]);
        let error = poll_interval(&bad, None).unwrap_err().to_string();
        assert_eq!(
            error,
            "POLL_INTERVAL_SECONDS: `abc` is not a whole number of seconds"
        );
        let error = poll_interval(&none, Some("0")).unwrap_err().to_string();
        assert!(
            error.starts_with("--interval: `0` must be longer"),
            "{error}"
        );
    }

    #[test]
    fn dates_say_what_was_given() {
        assert_eq!(
            flight_date(Some("2026-11-24")).unwrap(),
            Some(jiff::civil::date(2026, 11, 24))
        );
        assert_eq!(flight_date(None).unwrap(), None);
        let error = flight_date(Some("24/11/2026")).unwrap_err().to_string();
        assert_eq!(
            error,
            "--date: `24/11/2026` is not a date; expected YYYY-MM-DD"
        );
    }

    #[tokio::test]
    async fn a_malformed_snapshot_ttl_names_the_variable_and_the_value() {
        let error = SnapshotSettings::new(None, "flight:", "abc").unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { .. }));
        assert_eq!(
            error.to_string(),
            "FLIGHT_SNAPSHOT_TTL: `abc` is not a duration; expected something like 30s, 15m or 6h"
        );
        let zero = SnapshotSettings::new(None, "flight:", "0").unwrap_err();
        assert!(
            zero.to_string().starts_with("FLIGHT_SNAPSHOT_TTL:"),
            "{zero}"
        );
        let settings = SnapshotSettings::new(Some("  "), "flight:", "20m").unwrap();
        assert_eq!(settings.ttl(), Duration::from_secs(20 * 60));
        assert!(
            settings.connect_if_set().await.unwrap().is_none(),
            "blank is unset"
        );
        let required = settings.connect().await.unwrap_err().to_string();
        assert!(required.starts_with("REDIS_URL: not set"), "{required}");
    }

    fn snapshot(flight: &str) -> Snapshot {
        let status = FlightStatus {
            flight_iata: Some(flight.into()),
            flight_icao: None,
            airline: None,
            flight_date: None,
            state: FlightState::Scheduled,
            departure: Endpoint::default(),
            arrival: Endpoint::default(),
            provider: "mock".into(),
            fetched_at: jiff::Timestamp::UNIX_EPOCH,
            operated_by: None,
            codeshares: Vec::new(),
        };
        Snapshot::of(&status).unwrap()
    }

    #[test]
    fn the_designator_asked_for_is_shown_else_the_first() {
        let all = || vec![snapshot("UA1"), snapshot("SQ7361"), snapshot("NZ9001")];
        assert_eq!(pick(all(), "sq7361 ").unwrap().flight, "SQ7361");
        assert_eq!(pick(all(), "UAL1").unwrap().flight, "UA1");
        assert!(pick(Vec::new(), "UA1").is_none());
    }

    #[tokio::test]
    async fn the_demo_answers_from_the_mock_provider_without_redis() {
        let env = Env::from_pairs([("X", "")]);
        let shown = get(&env, true, None, "lh902", None).await.unwrap().unwrap();
        assert_eq!(shown.flight, "LH902");
        assert_eq!(shown.status, FlightState::Delayed);
        assert_eq!(shown.provider, "mock");
    }

    #[tokio::test]
    async fn without_a_provider_get_is_a_config_error() {
        let env = Env::from_pairs([("DATABASE_URL", "sqlite::memory:")]);
        let error = get(&env, false, None, "LH902", None).await.unwrap_err();
        let GetError::Config(ConfigError::Missing(missing)) = &error else {
            panic!("{error:?}");
        };
        assert!(
            missing[0].contains("AVIATIONSTACK_ACCESS_KEY"),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn health_is_saved_per_status_provider() {
        let env = Env::from_pairs([("X", "")]);
        let (failover, store) = providers(&env, true).await.unwrap();
        failover
            .flights(&StatusQuery::Flight {
                ident: "LH400".into(),
                date: None,
            })
            .await
            .unwrap();
        save_health(&store, &failover).await;
        let name = failover.pools()[0].name();
        let saved = store
            .provider_health(ProviderRole::Status, name)
            .await
            .unwrap()
            .expect("saved");
        assert_eq!(saved.health.requests, 1);
        assert!(store
            .provider_health(ProviderRole::Fare, name)
            .await
            .unwrap()
            .is_none());
    }
}
