//! Report formatters: a table for people, one JSON object for machines.

use std::io::Write;

use farewatch::engine::{AlertOutcome, CycleReport, RouteStatus};
use farewatch::upstream::breaker::BreakerPhase;

use crate::cli::Format;

/// Prints the sheet's warnings and rejected rows on stderr, each once,
/// `FILE:LINE: column: problem`.
pub fn problems(report: &CycleReport) {
    let mut err = std::io::stderr().lock();
    for warning in &report.warnings {
        let _ = writeln!(err, "warning: {warning}");
    }
    for row in &report.invalid_rows {
        for problem in &row.problems {
            let _ = writeln!(
                err,
                "{}:{}: {}: {}",
                row.source, row.line, problem.column, problem.message
            );
        }
    }
}

/// Prints the report on stdout. `compact` puts JSON on one line (daemon mode).
pub fn print(
    report: &CycleReport,
    format: Format,
    sheet: &str,
    compact: bool,
) -> std::io::Result<()> {
    // Buffered, and JSON written as it is serialised: a 100,000-route
    // report is tens of megabytes, which need not all be in memory at once.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    match format {
        Format::Json => {
            if compact {
                serde_json::to_writer(&mut out, report)
            } else {
                serde_json::to_writer_pretty(&mut out, report)
            }
            .map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        Format::Human => human(&mut out, report, sheet)?,
    }
    out.flush()
}

fn human(out: &mut impl Write, report: &CycleReport, sheet: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<5} {:<18} {:<23} {:>14} {:>14}  {:<9} ALERT",
        "ROW", "ROUTE", "DATES", "PRICE", "MAX", "STATUS"
    )?;
    for r in &report.routes {
        let route = format!("{}-{}", r.origin(), r.destination());
        let dates = match r.return_date() {
            Some(ret) => format!("{} / {}", r.depart_date(), ret),
            None => r.depart_date(),
        };
        let currency = r.currency();
        let price = r
            .price
            .map_or_else(|| "-".to_owned(), |p| format!("{currency} {p:.2}"));
        let max = format!("{currency} {:.2}", r.max_price);
        let status = match r.status {
            RouteStatus::Below => "below",
            RouteStatus::Above => "above",
            RouteStatus::NoOffers => "no offers",
            RouteStatus::Error => "error",
            RouteStatus::Inactive => "inactive",
        };
        let alert = match r.alert {
            AlertOutcome::Sent => "sent",
            AlertOutcome::Suppressed => "suppressed",
            AlertOutcome::Failed => "FAILED",
            AlertOutcome::SentElsewhere => "sent elsewhere",
            AlertOutcome::InProgressElsewhere => "in progress elsewhere",
            AlertOutcome::DryRun => "due (dry run)",
            AlertOutcome::None => "-",
        };
        writeln!(
            out,
            "{:<5} {:<18} {:<23} {:>14} {:>14}  {:<9} {}",
            r.row,
            truncate(&route, 18),
            truncate(&dates, 23),
            price,
            max,
            status,
            alert
        )?;
        for error in &r.errors {
            writeln!(out, "      ! {error}")?;
        }
    }
    if !report.flights.is_empty() {
        writeln!(
            out,
            "\n{:<5} {:<8} {:<11} {:<10} ALERTS",
            "ROW", "FLIGHT", "DATE", "STATUS"
        )?;
        for w in &report.flights {
            let status = match (w.polled, w.status) {
                (false, _) => "not due".to_owned(),
                (true, Some(s)) => format!("{s:?}").to_ascii_lowercase(),
                (true, None) => "unknown".to_owned(),
            };
            writeln!(
                out,
                "{:<5} {:<8} {:<11} {:<10} {}",
                w.row,
                w.flight,
                w.date,
                status,
                w.alerts.len()
            )?;
            for alert in &w.alerts {
                writeln!(out, "      > {alert}")?;
            }
            for error in &w.errors {
                writeln!(out, "      ! {error}")?;
            }
        }
    }
    let s = &report.summary;
    writeln!(
        out,
        "\n{sheet}: {} routes, {} lookups sent ({} from cache), {} below max, {} alerts sent, {} failed, {} lookup errors, {} invalid rows, {:.2} s",
        s.routes,
        s.lookups,
        s.cache_hits,
        s.below,
        s.alerts_sent,
        s.alerts_failed,
        s.lookup_errors,
        s.invalid_rows,
        s.elapsed_ms as f64 / 1000.0
    )?;
    if s.alerts_elsewhere > 0 {
        writeln!(
            out,
            "{} alerts sent or being sent by another farewatch run on the same database (not failures)",
            s.alerts_elsewhere
        )?;
    }
    for p in &s.providers {
        if p.breaker != BreakerPhase::Closed || p.retries > 0 || p.throttled > 0 {
            writeln!(
                out,
                "{}: circuit {}, {} retries, {} throttled (429), {} lookups skipped",
                p.name, p.breaker, p.retries, p.throttled, p.skipped
            )?;
        }
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}~")
    }
}
