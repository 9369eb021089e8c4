//! Report formatters: a table for people, one JSON object for machines.

use std::io::Write;

use farewatch::domain::Money;
use farewatch::engine::{AlertOutcome, CycleReport, RouteReport, RouteStatus};
use farewatch::upstream::breaker::BreakerPhase;
use jiff::civil::Date;

use crate::cli::Format;

/// Prints the sheet's warnings and rejected rows on stderr, each once,
/// `FILE:LINE: column: problem`.
pub fn problems(report: &CycleReport) {
    let mut err = std::io::stderr().lock();
    if !crate::quiet() {
        for warning in &report.warnings {
            let _ = writeln!(err, "warning: {warning}");
        }
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
        // `-q`: the table is not an error.
        Format::Human if crate::quiet() => {}
        Format::Human => {
            if compact {
                // A daemon prints a table per cycle: say when each one ran.
                if let Some(at) = report.finished_at {
                    writeln!(out, "--- {} ---", at.strftime("%Y-%m-%d %H:%M:%S UTC"))?;
                }
            }
            human(&mut out, report, sheet)?;
        }
    }
    out.flush()
}

/// The table for people: at most 80 columns for ordinary rows (a price
/// with more than ten digits widens its column rather than being cut).
fn human(out: &mut impl Write, report: &CycleReport, sheet: &str) -> std::io::Result<()> {
    if !report.routes.is_empty() {
        writeln!(
            out,
            "{:<4} {:<9} {:<16} {:>14} {:>11}  RESULT",
            "ROW", "ROUTE", "DATES", "PRICE", "MAX"
        )?;
    }
    for r in &report.routes {
        let currency = r.currency();
        let price = r.price_minor().map_or_else(
            || "-".to_owned(),
            |minor| Money::from_minor(minor, currency).to_string(),
        );
        // The row's currency is the price's: the maximum shows the number only.
        let max = r.route.rule.max_price.to_decimal().to_string();
        writeln!(
            out,
            "{:<4} {:<9} {:<16} {:>14} {:>11}  {}",
            r.row,
            route_cell(r),
            dates_cell(r),
            price,
            max,
            result_cell(r)
        )?;
    }
    if !report.flights.is_empty() {
        writeln!(
            out,
            "\n{:<4} {:<8} {:<11} {:<10} ALERTS",
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
                "{:<4} {:<8} {:<11} {:<10} {}",
                w.row,
                w.flight,
                w.date,
                status,
                w.alerts.len()
            )?;
            for alert in &w.alerts {
                writeln!(out, "     > {alert}")?;
            }
            for error in &w.errors {
                writeln!(out, "     ! {error}")?;
            }
        }
    }
    // One line per provider and cause, however many lookups it hit (the
    // JSON keeps every route's errors).
    let problems = report.problems();
    if !problems.is_empty() {
        writeln!(out, "\nProblems:")?;
        for (cause, count) in problems.iter().take(MAX_PROBLEM_LINES) {
            let times = if *count == 1 {
                String::new()
            } else {
                format!(" ({count} times)")
            };
            writeln!(out, "  {cause}{times}")?;
        }
        if problems.len() > MAX_PROBLEM_LINES {
            writeln!(
                out,
                "  ... and {} more (see --format json)",
                problems.len() - MAX_PROBLEM_LINES
            )?;
        }
    }
    let s = &report.summary;
    writeln!(
        out,
        "\n{sheet}: {} routes, {} lookups ({} cached), {} below max, {:.1} s",
        s.routes,
        s.lookups,
        s.cache_hits,
        s.below,
        s.elapsed_ms as f64 / 1000.0
    )?;
    writeln!(
        out,
        "alerts: {} sent, {} failed; {} lookup errors, {} invalid rows",
        s.alerts_sent, s.alerts_failed, s.lookup_errors, s.invalid_rows
    )?;
    if s.alerts_elsewhere > 0 {
        writeln!(
            out,
            "{} alerts sent or being sent by another run on this database",
            s.alerts_elsewhere
        )?;
    }
    for p in &s.providers {
        if p.breaker != BreakerPhase::Closed || p.retries > 0 || p.throttled > 0 {
            writeln!(
                out,
                "{}: circuit {}, {} retries, {} throttled, {} skipped",
                p.name, p.breaker, p.retries, p.throttled, p.skipped
            )?;
        }
    }
    Ok(())
}

/// Most grouped problems listed under the table.
const MAX_PROBLEM_LINES: usize = 10;

/// The airports of the cheapest fare, or the row's first ones with how many
/// more it searches (`LHR+1-JFK`).
fn route_cell(r: &RouteReport) -> String {
    if let Some(c) = &r.cheapest {
        return format!("{}-{}", c.origin, c.destination);
    }
    let places = |codes: &[farewatch::domain::Iata]| match codes {
        [] => "?".to_owned(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first}+{}", rest.len()),
    };
    format!(
        "{}-{}",
        places(&r.route.origins),
        places(&r.route.destinations)
    )
}

/// The dates of the cheapest fare (`2027-01-03/01-10` for a round trip), or
/// the row's dates, a range as its first day and how many more (`+6d`).
fn dates_cell(r: &RouteReport) -> String {
    let short = |d: Date| d.strftime("%m-%d").to_string();
    if let Some(c) = &r.cheapest {
        return match c.return_date {
            Some(ret) => format!("{}/{}", c.depart_date, short(ret)),
            None => c.depart_date.to_string(),
        };
    }
    let range = |first: Date, last: Date, full: bool| {
        let start = if full {
            first.to_string()
        } else {
            short(first)
        };
        let extra = first.until(last).map(|span| span.get_days()).unwrap_or(0);
        if extra > 0 {
            format!("{start}+{extra}d")
        } else {
            start
        }
    };
    let depart = &r.route.depart;
    let mut cell = range(depart.first, depart.last, true);
    if let Some(ret) = &r.route.return_dates {
        cell.push('/');
        cell.push_str(&range(ret.first, ret.last, false));
    }
    cell
}

/// What happened, in a word or two.
fn result_cell(r: &RouteReport) -> &'static str {
    match (r.status, r.alert) {
        (_, AlertOutcome::Sent) => "alert sent",
        (_, AlertOutcome::Suppressed) => "below, no alert",
        (_, AlertOutcome::Failed) => "ALERT FAILED",
        (_, AlertOutcome::SentElsewhere) => "sent by other run",
        (_, AlertOutcome::InProgressElsewhere) => "other run sending",
        (_, AlertOutcome::DryRun) => "alert due (dry)",
        (RouteStatus::Below, AlertOutcome::None) => "below",
        (RouteStatus::Above, AlertOutcome::None) => "above",
        (RouteStatus::NoOffers, AlertOutcome::None) => "no offers",
        (RouteStatus::Error, AlertOutcome::None) => "error",
        (RouteStatus::Inactive, AlertOutcome::None) => "inactive",
    }
}
