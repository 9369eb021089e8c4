//! Raw flags and environment resolved once into a ready engine (or a
//! configuration error naming exactly what to fix).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use farewatch::cache::QuoteCache;
use farewatch::domain::Currency;
use farewatch::domain::Recipient;
use farewatch::engine::{
    Engine, EngineError, EngineParts, NotifyLimits, DEFAULT_SETTLE_BOUND, DEFAULT_SETTLE_DELAY,
};
use farewatch::fare::failover::{Failover, Strategy};
use farewatch::notify::console::ConsoleNotifier;
use farewatch::notify::twilio::{self, Sender, Twilio, TwilioConfig};
use farewatch::notify::Notifier;
use farewatch::sheet::{self, RowError, Sheet, SheetError, SheetOptions};
use farewatch::store::{Store, StoreError, StoreLocation};
use secrecy::SecretString;

use crate::cli::RunArgs;
use crate::{channels, demo_sheet, sources};

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
    /// A path or URL, and its name in messages (a URL without credentials).
    Location { location: String, shown: String },
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
    /// Whether phone numbers can be texted (Twilio configured, or printing instead).
    sms_usable: bool,
    /// Flight-status providers, built on first use (only `--flights` needs them).
    status: std::sync::OnceLock<farewatch::status::failover::StatusFailover>,
    demo: bool,
}

impl Configured {
    /// The sheet's name for messages.
    pub fn sheet_name(&self) -> &str {
        match &self.sheet {
            SheetSource::Location { shown, .. } => shown,
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
            SheetSource::Location { location, .. } => {
                sheet::load(location, &self.client, &options).await?
            }
            SheetSource::BuiltIn => {
                let csv = demo_sheet::csv(options.today);
                sheet::parse(demo_sheet::NAME, csv.as_bytes(), &options)?
            }
        };
        Ok(self.check_recipients(sheet))
    }

    /// The watch list: watches, and how many rows were rejected (reported on stderr).
    pub async fn load_watches(
        &self,
        location: &str,
    ) -> Result<(Vec<farewatch::status::watch::Watch>, usize), SetupError> {
        let bytes = sheet::read_source(location, &self.client).await?;
        let today = jiff::Zoned::now().date();
        let location = &sheet::display_name(location);
        let list = farewatch::status::watch::parse(location, &bytes, today).map_err(|e| {
            SetupError::Invalid {
                name: "--flights",
                message: e.to_string(),
            }
        })?;
        for warning in &list.warnings {
            eprintln!("warning: {warning}");
        }
        for error in &list.errors {
            eprintln!("{error}");
        }
        let mut invalid = list.errors.len();
        let mut watches = Vec::new();
        for watch in list.watches {
            let unreachable: Vec<String> = watch
                .recipients
                .iter()
                .filter(|r| match r {
                    Recipient::Phone(_) => !self.sms_usable,
                    Recipient::Channel { .. } => !self.engine.can_reach(r),
                })
                .map(ToString::to_string)
                .collect();
            if unreachable.is_empty() {
                watches.push(watch);
            } else {
                eprintln!(
                    "{location}:{}: phone: `{}` cannot be reached; configure its channel",
                    watch.line,
                    unreachable.join("|")
                );
                invalid += 1;
            }
        }
        Ok((watches, invalid))
    }

    /// The flight-status providers (the mock in demo mode).
    pub fn status(&self) -> Result<&farewatch::status::failover::StatusFailover, SetupError> {
        if let Some(status) = self.status.get() {
            return Ok(status);
        }
        let built = crate::flights::providers(self.demo, &self.client)?;
        Ok(self.status.get_or_init(|| built))
    }

    /// Rows whose recipients cannot be reached become row errors, so the
    /// user learns which variable to set instead of an alert failing later.
    fn check_recipients(&self, mut sheet: Sheet) -> Sheet {
        let name = self.sheet_name().to_owned();
        let mut errors = Vec::new();
        sheet.routes.retain(|route| {
            let unreachable: Vec<String> = route
                .recipients
                .iter()
                .filter_map(|r| match r {
                    Recipient::Phone(_) if !self.sms_usable => Some(format!(
                        "`{r}` cannot be texted: SMS is not configured; set {}",
                        channels::TWILIO_VARS
                    )),
                    Recipient::Channel { .. } if !self.engine.can_reach(r) => Some(format!(
                        "`{r}` is not a configured channel; set {}",
                        r.channel_env_var().unwrap_or_default()
                    )),
                    _ => None,
                })
                .collect();
            for message in &unreachable {
                errors.push(RowError {
                    source: name.clone(),
                    line: route.line,
                    column: "phone".into(),
                    message: message.clone(),
                });
            }
            unreachable.is_empty()
        });
        sheet.errors.extend(errors);
        sheet.errors.sort_by_key(|e| e.line);
        sheet
    }
}

/// Parses a duration such as `15m`, `6h`, `90s`, for settings where zero
/// means nothing (intervals, timeouts): zero is an error.
pub fn parse_duration(name: &'static str, raw: &str) -> Result<Duration, SetupError> {
    let duration = parse_duration_or_zero(name, raw)?;
    if duration.is_zero() {
        return Err(SetupError::Invalid {
            name,
            message: format!("`{raw}` must be longer than zero, such as 30s, 15m or 6h"),
        });
    }
    Ok(duration)
}

/// Parses a duration that may be zero (`0`, `0s`), for settings where zero
/// has a meaning, such as a TTL of zero for "do not cache".
pub fn parse_duration_or_zero(name: &'static str, raw: &str) -> Result<Duration, SetupError> {
    let invalid = || SetupError::Invalid {
        name,
        message: format!("`{raw}` is not a duration; expected something like 30s, 15m or 6h"),
    };
    let raw_trimmed = raw.trim();
    // A bare 0 needs no unit: zero of anything is zero.
    if !raw_trimmed.is_empty() && raw_trimmed.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    let signed: jiff::SignedDuration = raw_trimmed.parse().map_err(|_| invalid())?;
    Duration::try_from(signed).map_err(|_| invalid())
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
    // Zero turns the quote cache off.
    let quote_ttl = parse_duration_or_zero("FAREWATCH_QUOTE_TTL", &cfg.quote_ttl)?;
    let client = farewatch::upstream::http::build_client();

    // SMS is needed unless the demo or a dry run prints instead, or the user
    // only sends to named channels.
    let sms_configured = non_empty(&cfg.twilio_account_sid).is_some()
        || non_empty(&cfg.twilio_auth_token).is_some()
        || non_empty(&cfg.twilio_from).is_some()
        || non_empty(&cfg.twilio_messaging_service_sid).is_some();
    let channels_configured = std::env::vars().any(|(k, v)| {
        (k.starts_with("SLACK_WEBHOOK_")
            || k.starts_with("DISCORD_WEBHOOK_")
            || k.starts_with("WEBHOOK_URL_"))
            && !v.trim().is_empty()
    });
    let prints_instead = args.demo || args.dry_run;
    let mut missing = Vec::new();
    if !prints_instead && (sms_configured || !channels_configured) {
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

    let store_location = match non_empty(&cfg.database_url) {
        Some(url) => StoreLocation::parse(url)?,
        // The demo keeps its state in memory so every demo run shows alerts.
        None if args.demo => StoreLocation::Memory,
        None => StoreLocation::default_path()?,
    };
    // Credentials are checked before anything is opened or created.
    let selected = sources::select(args, &mut missing)?;
    if !missing.is_empty() {
        return Err(SetupError::Missing(missing));
    }
    let store = Store::open(&store_location).await?;
    let pools = sources::build_pools(&selected, args, &client, &store)?;

    let cache = match non_empty(&cfg.redis_url) {
        _ if quote_ttl.is_zero() => QuoteCache::off(),
        Some(url) => match QuoteCache::redis(url, quote_ttl).await {
            Ok(cache) => cache,
            Err(error) => {
                eprintln!("warning: {error}; using an in-process quote cache instead");
                QuoteCache::memory(quote_ttl)
            }
        },
        None => QuoteCache::memory(quote_ttl),
    };

    let strategy = match args.compare {
        Some(k) if k >= 2 => Strategy::Compare(k),
        _ => Strategy::FirstAnswer,
    };
    let fares = Arc::new(Failover::new(pools, strategy));

    let twilio_timeout = parse_duration("TWILIO_TIMEOUT", &cfg.twilio_timeout)?;
    let notifier: Arc<dyn Notifier> = if prints_instead {
        Arc::new(ConsoleNotifier::new(args.format.into()))
    } else if sms_configured || !channels_configured {
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
    } else {
        Arc::new(channels::NoSms)
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
        settle_delay: match non_empty(&cfg.twilio_settle_delay) {
            Some(raw) => parse_duration("TWILIO_SETTLE_DELAY", raw)?,
            None => DEFAULT_SETTLE_DELAY,
        },
        settle_bound: match non_empty(&cfg.twilio_settle_bound) {
            Some(raw) => parse_duration("TWILIO_SETTLE_BOUND", raw)?,
            None => DEFAULT_SETTLE_BOUND,
        },
    };

    let engine = Engine::new(EngineParts {
        fares,
        cache,
        notifier,
        notify_limits,
        store,
        dry_run: args.dry_run,
    });
    let engine = if prints_instead {
        engine.with_one_channel()
    } else {
        channels::register(engine, &client)?.0
    };

    let sheet = if args.demo && args.routes == "routes.csv" && !Path::new("routes.csv").exists() {
        SheetSource::BuiltIn
    } else {
        SheetSource::Location {
            location: args.routes.clone(),
            shown: sheet::display_name(&args.routes),
        }
    };

    Ok(Configured {
        engine: Arc::new(engine),
        client,
        sheet,
        default_currency,
        sms_usable: prints_instead || sms_configured || !channels_configured,
        status: std::sync::OnceLock::new(),
        demo: args.demo,
    })
}
