//! Raw flags and environment resolved once into a ready engine (or a
//! configuration error naming exactly what to fix).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use farewatch::cache::QuoteCache;
use farewatch::domain::Currency;
use farewatch::engine::{Engine, EngineError, EngineParts, NotifyLimits};
use farewatch::failover::Failover;
use farewatch::fare::amadeus::{self, Amadeus, AmadeusConfig};
use farewatch::fare::demo::DemoSource;
use farewatch::fare::{FareSource, Limits};
use farewatch::notify::console::ConsoleNotifier;
use farewatch::notify::twilio::{self, Sender, Twilio, TwilioConfig};
use farewatch::notify::Notifier;
use farewatch::pool::ProviderPool;
use farewatch::sheet::{self, Sheet, SheetError, SheetOptions};
use farewatch::store::{Store, StoreError, StoreLocation, TokenCache};
use secrecy::SecretString;

use crate::cli::RunArgs;
use crate::demo_sheet;

/// Why farewatch cannot start (exit code 3), or a cycle could not run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("missing configuration: set {} (in the environment or .env; see .env.example), or run with --demo", .0.join(", "))]
    Missing(Vec<&'static str>),
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error(transparent)]
    Engine(EngineError),
}

/// Where the sheet comes from.
#[derive(Debug)]
enum SheetSource {
    /// A path or URL.
    Location(String),
    /// The demo's built-in example (no routes.csv in the working directory).
    BuiltIn,
}

/// A configured engine plus what each cycle needs to re-read the sheet.
#[derive(Debug)]
pub struct Configured {
    pub engine: Arc<Engine>,
    client: reqwest::Client,
    sheet: SheetSource,
    default_currency: Currency,
}

impl Configured {
    /// The sheet's name for messages.
    pub fn sheet_name(&self) -> &str {
        match &self.sheet {
            SheetSource::Location(l) => l,
            SheetSource::BuiltIn => demo_sheet::NAME,
        }
    }

    /// Reads and parses the sheet (every cycle: edits apply without a restart).
    pub async fn load_sheet(&self) -> Result<Sheet, SetupError> {
        let options = SheetOptions {
            default_currency: self.default_currency,
            today: jiff::Zoned::now().date(),
        };
        let sheet = match &self.sheet {
            SheetSource::Location(location) => {
                sheet::load(location, &self.client, &options).await?
            }
            SheetSource::BuiltIn => {
                let csv = demo_sheet::csv(options.today);
                sheet::parse(demo_sheet::NAME, csv.as_bytes(), &options)?
            }
        };
        Ok(sheet)
    }
}

/// Parses a duration such as `15m`, `6h`, `90s`.
pub fn parse_duration(name: &'static str, raw: &str) -> Result<Duration, SetupError> {
    let invalid = || SetupError::Invalid {
        name,
        message: format!("`{raw}` is not a duration; expected something like 30s, 15m or 6h"),
    };
    let signed: jiff::SignedDuration = raw.trim().parse().map_err(|_| invalid())?;
    let duration = Duration::try_from(signed).map_err(|_| invalid())?;
    if duration.is_zero() {
        return Err(invalid());
    }
    Ok(duration)
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Builds the engine from flags and environment.
pub async fn configure(args: &RunArgs) -> Result<Configured, SetupError> {
    let cfg = &args.config;
    let default_currency =
        Currency::parse(&cfg.currency).map_err(|message| SetupError::Invalid {
            name: "FAREWATCH_CURRENCY",
            message,
        })?;
    let quote_ttl = parse_duration("FAREWATCH_QUOTE_TTL", &cfg.quote_ttl)?;
    let client = farewatch::http::build_client();

    // Credentials first: a missing key is reported before anything is opened.
    let mut missing = Vec::new();
    if !args.demo {
        if non_empty(&cfg.amadeus_client_id).is_none() {
            missing.push("AMADEUS_CLIENT_ID");
        }
        if non_empty(&cfg.amadeus_client_secret).is_none() {
            missing.push("AMADEUS_CLIENT_SECRET");
        }
        if !args.dry_run {
            if non_empty(&cfg.twilio_account_sid).is_none() {
                missing.push("TWILIO_ACCOUNT_SID");
            }
            if non_empty(&cfg.twilio_auth_token).is_none() {
                missing.push("TWILIO_AUTH_TOKEN");
            }
            if non_empty(&cfg.twilio_from).is_none()
                && non_empty(&cfg.twilio_messaging_service_sid).is_none()
            {
                missing.push("TWILIO_FROM (or TWILIO_MESSAGING_SERVICE_SID)");
            }
        }
    }
    if !missing.is_empty() {
        return Err(SetupError::Missing(missing));
    }

    let store_location = match non_empty(&cfg.database_url) {
        Some(url) => StoreLocation::parse(url)?,
        // The demo keeps its state in memory so every demo run shows alerts.
        None if args.demo => StoreLocation::Memory,
        None => StoreLocation::default_path()?,
    };
    let store = Store::open(&store_location)?;

    let cache = match non_empty(&cfg.redis_url) {
        Some(url) => match QuoteCache::redis(url, quote_ttl).await {
            Ok(cache) => cache,
            Err(error) => {
                tracing::warn!("{error}; using an in-process quote cache instead");
                eprintln!("warning: {error}; using an in-process quote cache instead");
                QuoteCache::memory(quote_ttl)
            }
        },
        None => QuoteCache::memory(quote_ttl),
    };

    let (source, limits): (Arc<dyn FareSource>, Limits) = if args.demo {
        let source = DemoSource::default();
        let limits = source.default_limits();
        (Arc::new(source), limits)
    } else {
        let timeout = parse_duration("AMADEUS_TIMEOUT", &cfg.amadeus_timeout)?;
        let config = AmadeusConfig {
            base_url: non_empty(&cfg.amadeus_base_url)
                .unwrap_or(amadeus::DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_owned(),
            client_id: non_empty(&cfg.amadeus_client_id)
                .unwrap_or_default()
                .to_owned(),
            client_secret: SecretString::from(
                non_empty(&cfg.amadeus_client_secret)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            timeout,
        };
        let tokens: Arc<dyn TokenCache> = Arc::new(store.clone());
        let source = Amadeus::new(client.clone(), config, Some(tokens));
        let defaults = source.default_limits();
        let limits = Limits {
            max_concurrency: cfg
                .amadeus_max_concurrency
                .unwrap_or(defaults.max_concurrency),
            rate_per_sec: cfg.amadeus_rate_limit.unwrap_or(defaults.rate_per_sec),
            timeout: defaults.timeout,
        };
        (Arc::new(source), limits)
    };
    if limits.max_concurrency == 0 {
        return Err(SetupError::Invalid {
            name: "AMADEUS_MAX_CONCURRENCY",
            message: "must be at least 1".into(),
        });
    }

    let twilio_timeout = parse_duration("TWILIO_TIMEOUT", &cfg.twilio_timeout)?;
    let notifier: Arc<dyn Notifier> = if args.demo || args.dry_run {
        Arc::new(ConsoleNotifier::new(args.format.into()))
    } else {
        let sender = match non_empty(&cfg.twilio_messaging_service_sid) {
            Some(sid) => Sender::MessagingService(sid.to_owned()),
            None => Sender::From(non_empty(&cfg.twilio_from).unwrap_or_default().to_owned()),
        };
        Arc::new(Twilio::new(
            client.clone(),
            TwilioConfig {
                base_url: non_empty(&cfg.twilio_base_url)
                    .unwrap_or(twilio::DEFAULT_BASE_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                account_sid: non_empty(&cfg.twilio_account_sid)
                    .unwrap_or_default()
                    .to_owned(),
                auth_token: SecretString::from(
                    non_empty(&cfg.twilio_auth_token)
                        .unwrap_or_default()
                        .to_owned(),
                ),
                sender,
                timeout: twilio_timeout,
            },
        ))
    };
    let notify_limits = NotifyLimits {
        max_concurrency: cfg
            .twilio_max_concurrency
            .unwrap_or(twilio::DEFAULT_MAX_CONCURRENCY),
        rate_per_sec: cfg
            .twilio_rate_limit
            .unwrap_or(twilio::DEFAULT_RATE_PER_SEC),
        // The notifier's own timeout fires first; this bounds everything around it.
        timeout: twilio_timeout + Duration::from_secs(5),
    };

    let engine = Engine::new(EngineParts {
        fares: Arc::new(Failover::single(Arc::new(ProviderPool::new(
            source, limits,
        )))),
        cache,
        notifier,
        notify_limits,
        store,
        dry_run: args.dry_run,
    });

    let sheet = if args.demo && args.routes == "routes.csv" && !Path::new("routes.csv").exists() {
        SheetSource::BuiltIn
    } else {
        SheetSource::Location(args.routes.clone())
    };

    Ok(Configured {
        engine: Arc::new(engine),
        client,
        sheet,
        default_currency,
    })
}
