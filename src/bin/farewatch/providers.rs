//! `farewatch providers`: what is configured, and how it fared last time.
//!
//! Health is per process, and cron runs are separate processes, so this
//! reads what the last cycle saved in the state store: its counters and
//! breaker state, and today's spent budget.

use std::io::Write;

use farewatch::engine::{health_key, SavedHealth};
use farewatch::store::Store;

use crate::cli::{Format, RunArgs};
use crate::sources::{cli_has, credentials, daily_budget, env, note, DEFAULT_ORDER};
use crate::Exit;

#[derive(Debug, serde::Serialize)]
struct SourceView {
    name: &'static str,
    configured: bool,
    /// Variables still to set, when not configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<&'static str>,
    /// Position in the failover order (1 = asked first), when it runs.
    priority: Option<usize>,
    /// Searches per UTC day (`P_DAILY_BUDGET`, or the source's default);
    /// `null` is unlimited.
    daily_budget: Option<u64>,
    spent_today: Option<u64>,
    remaining_today: Option<u64>,
    last_run: Option<SavedHealth>,
    /// What to know before relying on the source (costs, shutdowns).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct ChannelView {
    name: String,
    configured_by: String,
}

#[derive(Debug, serde::Serialize)]
struct View {
    fare_sources: Vec<SourceView>,
    channels: Vec<ChannelView>,
    status_providers: Vec<StatusView>,
}

#[derive(Debug, serde::Serialize)]
struct StatusView {
    name: &'static str,
    configured: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<&'static str>,
    last_run: Option<SavedHealth>,
}

/// Prints the providers and exits 0 (3 when the state store cannot be opened).
pub async fn show(args: &RunArgs) -> anyhow::Result<Exit> {
    let store = match Store::open_setting(args.config.database_url.as_deref()).await {
        Ok(store) => Some(store),
        Err(error) => {
            eprintln!("warning: {error}; showing configuration only");
            None
        }
    };
    let order: Vec<String> = match env("FARE_SOURCES") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect(),
        None => DEFAULT_ORDER.iter().map(|s| (*s).to_owned()).collect(),
    };
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let missing_vars = |name: &str| -> Vec<&'static str> {
        credentials(name)
            .iter()
            .copied()
            .filter(|v| env(v).is_none() && !cli_has(args, v))
            .collect()
    };
    // The sources that run, in the order they are asked.
    let running: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|n| DEFAULT_ORDER.contains(n) && missing_vars(n).is_empty())
        .collect();
    let mut fare_sources = Vec::new();
    for name in DEFAULT_ORDER {
        let missing = missing_vars(name);
        let configured = missing.is_empty();
        let position = running.iter().position(|n| *n == name).map(|p| p + 1);
        let daily_budget = daily_budget(name).unwrap_or_else(|error| {
            eprintln!("warning: {error}; `farewatch check` will refuse it");
            None
        });
        let (mut spent_today, mut last_run) = (None, None);
        if let Some(store) = &store {
            if let Ok(Some(saved)) = store.kv_get(&format!("budget:{name}")).await {
                if let Some((day, spent)) = saved.split_once(' ') {
                    spent_today = Some(if day == today {
                        spent.parse().unwrap_or(0)
                    } else {
                        0
                    });
                }
            }
            if let Ok(Some(json)) = store.kv_get(&health_key(name)).await {
                last_run = serde_json::from_str(&json).ok();
            }
        }
        let remaining_today = daily_budget.map(|b: u64| b.saturating_sub(spent_today.unwrap_or(0)));
        fare_sources.push(SourceView {
            name,
            configured,
            missing: if configured { Vec::new() } else { missing },
            priority: position,
            daily_budget,
            spent_today: daily_budget.map(|_| spent_today.unwrap_or(0)),
            remaining_today,
            last_run,
            note: note(name),
        });
    }
    let mut channels = Vec::new();
    let sms = ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]
        .iter()
        .all(|v| env(v).is_some())
        && (env("TWILIO_FROM").is_some() || env("TWILIO_MESSAGING_SERVICE_SID").is_some());
    if sms {
        channels.push(ChannelView {
            name: "sms (phone numbers)".into(),
            configured_by: "TWILIO_*".into(),
        });
    }
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    vars.sort();
    for (var, _) in vars {
        let (kind, suffix) = if let Some(s) = var.strip_prefix("SLACK_WEBHOOK_") {
            ("slack", s)
        } else if let Some(s) = var.strip_prefix("DISCORD_WEBHOOK_") {
            ("discord", s)
        } else if let Some(s) = var.strip_prefix("WEBHOOK_URL_") {
            ("webhook", s)
        } else {
            continue;
        };
        channels.push(ChannelView {
            name: format!("{kind}:{}", suffix.to_ascii_lowercase()),
            configured_by: var.clone(),
        });
    }
    let mut status_providers = Vec::new();
    for (name, vars) in [
        ("aviationstack", &["AVIATIONSTACK_ACCESS_KEY"][..]),
        ("flightaware", &["FLIGHTAWARE_API_KEY"][..]),
        (
            "opensky",
            &["OPENSKY_CLIENT_ID", "OPENSKY_CLIENT_SECRET"][..],
        ),
    ] {
        let missing: Vec<&'static str> =
            vars.iter().copied().filter(|v| env(v).is_none()).collect();
        let mut last_run = None;
        if let Some(store) = &store {
            if let Ok(Some(json)) = store.kv_get(&crate::flights::status_health_key(name)).await {
                last_run = serde_json::from_str(&json).ok();
            }
        }
        status_providers.push(StatusView {
            name,
            configured: missing.is_empty(),
            missing,
            last_run,
        });
    }
    let view = View {
        fare_sources,
        channels,
        status_providers,
    };

    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?,
        Format::Human => human(&mut out, &view)?,
    }
    Ok(Exit::Ok)
}

fn human(out: &mut impl Write, view: &View) -> std::io::Result<()> {
    writeln!(out, "Fare sources (asked in priority order):")?;
    for s in &view.fare_sources {
        let order = s
            .priority
            .map_or_else(|| " -".to_owned(), |p| format!("{p:>2}"));
        if !s.configured {
            writeln!(
                out,
                "  {order}  {:<14} not configured: set {}",
                s.name,
                s.missing.join(" and ")
            )?;
            if let Some(note) = &s.note {
                writeln!(out, "        note: {note}")?;
            }
            continue;
        }
        let mut line = format!("  {order}  {:<14} configured", s.name);
        if let (Some(budget), Some(left)) = (s.daily_budget, s.remaining_today) {
            line.push_str(&format!(", budget {left} of {budget} searches left today"));
        }
        writeln!(out, "{line}")?;
        if let Some(note) = &s.note {
            writeln!(out, "        note: {note}")?;
        }
        match &s.last_run {
            Some(saved) => {
                let h = &saved.health;
                let latency = h
                    .latency
                    .map(|l| format!(", p50 {:.0} ms, p99 {:.0} ms", l.p50_ms, l.p99_ms))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "        last run {}: circuit {}, {} requests, {} errors{}{}",
                    saved.saved_at.strftime("%Y-%m-%d %H:%M UTC"),
                    h.breaker,
                    h.requests,
                    h.errors,
                    if h.errors_by_kind.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            h.errors_by_kind
                                .iter()
                                .map(|(k, v)| format!("{k} {v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    latency
                )?;
            }
            None => writeln!(out, "        no run recorded yet")?,
        }
    }
    writeln!(out, "\nChannels:")?;
    if view.channels.is_empty() {
        writeln!(out, "  none configured (set TWILIO_* for SMS, or SLACK_WEBHOOK_<NAME>, DISCORD_WEBHOOK_<NAME>, WEBHOOK_URL_<NAME>)")?;
    }
    for c in &view.channels {
        writeln!(out, "  {:<22} from {}", c.name, c.configured_by)?;
    }
    writeln!(out, "\nFlight-status providers:")?;
    for p in &view.status_providers {
        if !p.configured {
            writeln!(
                out,
                "  {:<14} not configured: set {}",
                p.name,
                p.missing.join(" and ")
            )?;
            continue;
        }
        match &p.last_run {
            Some(saved) => writeln!(
                out,
                "  {:<14} configured; last poll {}: circuit {}, {} requests, {} errors",
                p.name,
                saved.saved_at.strftime("%Y-%m-%d %H:%M UTC"),
                saved.health.breaker,
                saved.health.requests,
                saved.health.errors
            )?,
            None => writeln!(out, "  {:<14} configured; no poll recorded yet", p.name)?,
        }
    }
    Ok(())
}
