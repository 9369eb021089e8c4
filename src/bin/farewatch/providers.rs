//! `farewatch providers`: what is configured, and how it fared last time.
//!
//! Health is per process, and cron runs are separate processes, so this
//! reads what the last cycle saved in the state store: its counters and
//! breaker state, and today's spent budget.

use std::io::Write;

use farewatch::config::registry::{self, CHANNELS, STATUS_PROVIDERS};
use farewatch::config::{SourceOverview, TWILIO_VARS};
use farewatch::store::{ProviderRole, SavedHealth, Store};

use crate::cli::{Format, RunArgs};
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
    note: Option<&'static str>,
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

/// Prints the providers and exits 0 (the state store is optional: without
/// it, configuration only).
pub async fn show(args: &RunArgs) -> anyhow::Result<Exit> {
    let env = args.env();
    let store = match Store::open_setting(env.get("DATABASE_URL")).await {
        Ok(store) => Some(store),
        Err(error) => {
            note!("warning: {error}; showing configuration only");
            None
        }
    };
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let mut fare_sources = Vec::new();
    for source in SourceOverview::all(&env) {
        let name = source.entry.name;
        let daily_budget = source.daily_budget.unwrap_or_else(|error| {
            note!("warning: {error}; `farewatch check` will refuse it");
            None
        });
        let (mut spent_today, mut last_run) = (0, None);
        if let Some(store) = &store {
            spent_today = store.spent_on(name, today).await.unwrap_or(0);
            last_run = store
                .provider_health(ProviderRole::Fare, name)
                .await
                .ok()
                .flatten();
        }
        let configured = source.missing.is_empty();
        fare_sources.push(SourceView {
            name,
            configured,
            missing: source.missing,
            priority: source.priority,
            daily_budget,
            spent_today: daily_budget.map(|_| spent_today),
            remaining_today: daily_budget.map(|b| b.saturating_sub(spent_today)),
            last_run,
            note: source.entry.note,
        });
    }
    let mut channels = Vec::new();
    let sms = registry::missing(&env, &["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]).is_empty()
        && (env.has("TWILIO_FROM") || env.has("TWILIO_MESSAGING_SERVICE_SID"));
    if sms {
        channels.push(ChannelView {
            name: "sms (phone numbers)".into(),
            configured_by: "TWILIO_*".into(),
        });
    }
    for entry in CHANNELS {
        for (var, _) in env.with_prefix(entry.prefix) {
            let suffix = &var[entry.prefix.len()..];
            if suffix.is_empty() {
                continue;
            }
            channels.push(ChannelView {
                name: format!("{}:{}", entry.kind, suffix.to_ascii_lowercase()),
                configured_by: var.to_owned(),
            });
        }
    }
    let mut status_providers = Vec::new();
    for entry in STATUS_PROVIDERS {
        let missing = registry::missing(&env, entry.credentials);
        let mut last_run = None;
        if let Some(store) = &store {
            last_run = store
                .provider_health(ProviderRole::Status, entry.name)
                .await
                .ok()
                .flatten();
        }
        status_providers.push(StatusView {
            name: entry.name,
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
        let named: Vec<String> = CHANNELS
            .iter()
            .map(|c| format!("{}<NAME>", c.prefix))
            .collect();
        writeln!(
            out,
            "  none configured (set {TWILIO_VARS} for SMS, or {})",
            named.join(", ")
        )?;
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
