//! `farewatch providers`: what is configured, and how it fared last time
//! (the overview is built by `farewatch::app::providers`).

use std::io::Write;

use farewatch::app::providers::{self, Overview};
use farewatch::store::Store;
use farewatch::upstream::budget::DayClock;

use crate::cli::{Format, RunArgs};
use crate::Exit;

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
    let overview = providers::overview(&env, store.as_ref(), DayClock::system().today()).await;
    for warning in &overview.warnings {
        note!("warning: {warning}");
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&overview)?)?,
        Format::Human => human(&mut out, &overview)?,
    }
    Ok(Exit::Ok)
}

fn human(out: &mut impl Write, view: &Overview) -> std::io::Result<()> {
    const TIME: &str = "%Y-%m-%d %H:%M UTC";
    writeln!(out, "Fare sources (asked in priority order):")?;
    for s in &view.fare_sources {
        let order = s
            .priority
            .map_or_else(|| " -".to_owned(), |p| format!("{p:>2}"));
        if s.configured {
            let mut line = format!("  {order}  {:<14} configured", s.name);
            if let (Some(budget), Some(left)) = (s.daily_budget, s.remaining_today) {
                line.push_str(&format!(", budget {left} of {budget} searches left today"));
            }
            writeln!(out, "{line}")?;
        } else {
            let missing = s.missing.join(" and ");
            writeln!(
                out,
                "  {order}  {:<14} not configured: set {missing}",
                s.name
            )?;
        }
        if let Some(note) = &s.note {
            writeln!(out, "        note: {note}")?;
        }
        if !s.configured {
            continue;
        }
        let Some(saved) = &s.last_run else {
            writeln!(out, "        no run recorded yet")?;
            continue;
        };
        let h = &saved.health;
        let kinds: Vec<String> = h
            .errors_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let kinds = if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        };
        let latency = h
            .latency
            .map(|l| format!(", p50 {:.0} ms, p99 {:.0} ms", l.p50_ms, l.p99_ms))
            .unwrap_or_default();
        writeln!(
            out,
            "        last run {}: circuit {}, {} requests, {} errors{kinds}{latency}",
            saved.saved_at.strftime(TIME),
            h.breaker,
            h.requests,
            h.errors,
        )?;
    }
    writeln!(out, "\nChannels:")?;
    if view.channels.is_empty() {
        let set = providers::channel_variables();
        writeln!(out, "  none configured (set {set})")?;
    }
    for c in &view.channels {
        writeln!(out, "  {:<22} from {}", c.name, c.configured_by)?;
    }
    writeln!(out, "\nFlight-status providers:")?;
    for p in &view.status_providers {
        match &p.last_run {
            _ if !p.configured => writeln!(
                out,
                "  {:<14} not configured: set {}",
                p.name,
                p.missing.join(" and ")
            )?,
            Some(saved) => writeln!(
                out,
                "  {:<14} configured; last poll {}: circuit {}, {} requests, {} errors",
                p.name,
                saved.saved_at.strftime(TIME),
                saved.health.breaker,
                saved.health.requests,
                saved.health.errors
            )?,
            None => writeln!(out, "  {:<14} configured; no poll recorded yet", p.name)?,
        }
    }
    Ok(())
}
