//! One data row of the sheet into a [`Route`], or the reasons it is not one.
//!
//! Every cell is checked even after an earlier one failed, so a user fixing
//! the sheet sees all of a row's problems at once.

use std::collections::HashMap;

use csv::StringRecord;
use jiff::civil::Date;
use jiff::{SignedDuration, Span, SpanRelativeTo};

use super::columns::{Column, Header};
use super::text::{clean_message, escape_controls, is_unprintable, shown};
use super::{RowError, SheetOptions, MAX_RECIPIENTS_PER_ROW};
use crate::domain::{Currency, DateRange, Iata, Money, Recipient};
use crate::route::{Route, MAX_LOOKUPS_PER_ROW};
use crate::rules::{MinDrop, Rule};

/// Column name used for problems with the row as a whole.
const ROW_COLUMN: &str = "row";

/// Parsed phone numbers by cell text, so a sheet repeating one number on
/// every row parses it once. Bounded: a sheet of distinct numbers (one per
/// subscriber) would otherwise hold one entry per row (~110 bytes) while it
/// is read, and gain nothing from it.
pub(super) type PhoneCache = HashMap<String, Result<Recipient, String>>;

/// Most numbers [`PhoneCache`] keeps; it starts afresh when full.
const PHONE_CACHE_ENTRIES: usize = 1024;

/// What one data row turned into.
#[derive(Debug)]
pub(super) struct RowOutcome {
    /// The route, when every cell was good.
    pub(super) route: Option<Route>,
    /// Every problem found, in column order (row-level problems last).
    pub(super) errors: Vec<RowError>,
    /// Remarks that do not stop the row (a clipped date range, a formula-like label).
    pub(super) warnings: Vec<String>,
}

/// A cell as the row has it.
#[derive(Clone, Copy)]
enum Cell<'r> {
    /// The header lacks the column, or the row ends before it.
    Absent,
    /// Present but blank after trimming.
    Empty,
    /// Trimmed text.
    Value(&'r str),
}

/// Parses one data record that starts on `line`.
pub(super) fn parse_row(
    source: &str,
    line: usize,
    record: &StringRecord,
    header: &Header,
    options: &SheetOptions,
    phones: &mut PhoneCache,
) -> RowOutcome {
    let mut row = RowParser {
        source,
        line,
        record,
        header,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let route = row.parse(options, phones);
    // Report cells left to right as the user sees them; row-level last.
    row.errors.sort_by_key(|(order, _)| *order);
    let errors: Vec<RowError> = row.errors.into_iter().map(|(_, e)| e).collect();
    RowOutcome {
        route: route.filter(|_| errors.is_empty()),
        errors,
        warnings: row.warnings,
    }
}

struct RowParser<'a, 'r> {
    source: &'a str,
    line: usize,
    record: &'r StringRecord,
    header: &'a Header,
    /// Errors keyed by the field index they belong to, for ordering.
    errors: Vec<(usize, RowError)>,
    warnings: Vec<String>,
}

impl<'r> RowParser<'_, 'r> {
    fn parse(&mut self, options: &SheetOptions, phones: &mut PhoneCache) -> Option<Route> {
        let currency = match self.cell(Column::Currency) {
            Cell::Value(raw) => self.check(Column::Currency, raw, Currency::parse(raw)),
            Cell::Absent | Cell::Empty => Some(options.default_currency),
        };
        let origins = self.airports(Column::Origin);
        let destinations = self.airports(Column::Destination);
        let depart = self.depart(options.today);
        let return_dates = self.return_dates(depart);
        // Without a currency the number of decimals allowed is unknown, so the
        // amounts are checked once the currency is fixed.
        let max_price = currency.and_then(|c| self.max_price(c));
        let min_drop = currency.and_then(|c| self.min_drop(c));
        let recipients = self.recipients(phones);
        let adults = self.adults();
        let cooldown = self.cooldown();
        let active = self.active();
        let label = self.label();
        self.check_extra_fields();

        let route = Route {
            line: self.line,
            label: label.map(String::into_boxed_str),
            origins: origins?,
            destinations: destinations?,
            depart: depart?,
            return_dates: return_dates?,
            adults: adults?,
            rule: Rule {
                max_price: max_price?,
                min_drop: min_drop?,
                cooldown: cooldown?,
            },
            recipients: recipients?,
            active: active?,
            namespace: None,
        };
        if !self.errors.is_empty() {
            return None;
        }
        self.check_expansion(&route);
        Some(route)
    }

    fn cell(&self, column: Column) -> Cell<'r> {
        let Some(index) = self.header.position(column) else {
            return Cell::Absent;
        };
        match self.record.get(index).map(str::trim) {
            None => Cell::Absent,
            Some("") => Cell::Empty,
            Some(value) => Cell::Value(value),
        }
    }

    /// The value of a required column, or an error saying it is absent.
    fn required(&mut self, column: Column) -> Option<&'r str> {
        match self.cell(column) {
            Cell::Value(value) => Some(value),
            Cell::Empty => {
                self.fail(column, format!("is empty; expected {}", column.expected()));
                None
            }
            Cell::Absent => {
                let message = format!(
                    "is missing (the row has {} fields but the header has {}); expected {}",
                    self.record.len(),
                    self.header.width,
                    column.expected()
                );
                self.fail(column, message);
                None
            }
        }
    }

    fn fail(&mut self, column: Column, message: String) {
        let order = self.header.position(column).unwrap_or(usize::MAX);
        self.push_error(order, column.name(), message);
    }

    fn push_error(&mut self, order: usize, column: &str, message: String) {
        self.errors.push((
            order,
            RowError {
                source: self.source.to_owned(),
                line: self.line,
                column: column.to_owned(),
                message: escape_controls(&message),
            },
        ));
    }

    /// Turns a parse result into a value, or records its error with the
    /// offending text made safe to print and a hint when it looks like
    /// spreadsheet debris.
    fn check<T>(&mut self, column: Column, value: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                let mut message = clean_message(&message, value);
                if !message.contains("expected") {
                    message.push_str("; expected ");
                    message.push_str(column.expected());
                }
                if let Some(hint) = spreadsheet_hint(column, value) {
                    message.push_str("; ");
                    message.push_str(hint);
                }
                self.fail(column, message);
                None
            }
        }
    }

    /// Splits a `|`-joined cell, skipping empty parts and repeats.
    fn parts(&mut self, column: Column) -> Option<Vec<&'r str>> {
        let raw = self.required(column)?;
        let mut parts: Vec<&str> = Vec::new();
        for part in raw.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        if parts.is_empty() {
            self.fail(
                column,
                format!(
                    "`{}` has no values between the | separators; expected {}",
                    shown(raw),
                    column.expected()
                ),
            );
            return None;
        }
        Some(parts)
    }

    fn airports(&mut self, column: Column) -> Option<Vec<Iata>> {
        let parts = self.parts(column)?;
        let mut codes: Vec<Iata> = Vec::with_capacity(parts.len());
        for part in parts {
            let code = self.check(column, part, Iata::parse(part))?;
            // `lhr|LHR` are the same airport once normalised.
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        Some(codes)
    }

    fn depart(&mut self, today: Date) -> Option<DateRange> {
        let column = Column::DepartDate;
        let raw = self.required(column)?;
        let range = self.check(column, raw, DateRange::parse(raw))?;
        if range.last < today {
            let what = if range.first == range.last {
                "is in the past"
            } else {
                "is entirely in the past"
            };
            self.fail(
                column,
                format!("`{range}` {what} (today is {today}); expected today or a later date"),
            );
            return None;
        }
        if range.first < today {
            // The range is kept as written: it is part of the row's identity
            // (its alert state), which must not change from one day to the
            // next. The engine skips the past days when it expands the row.
            self.warn(
                column.name(),
                &format!("`{range}` starts before today; searching from {today}"),
            );
        }
        Some(range)
    }

    /// `Some(None)` for a one-way row; `None` when the cell is bad (or the
    /// departure is, so the two cannot be compared).
    fn return_dates(&mut self, depart: Option<DateRange>) -> Option<Option<DateRange>> {
        let column = Column::ReturnDate;
        let raw = match self.cell(column) {
            Cell::Absent | Cell::Empty => return Some(None),
            Cell::Value(raw) => raw,
        };
        let range = self.check(column, raw, DateRange::parse(raw))?;
        let depart = depart?;
        if range.last < depart.first {
            self.fail(
                column,
                format!(
                    "`{range}` has no day on or after the departure ({}); expected a return date on or after it",
                    depart.first
                ),
            );
            return None;
        }
        Some(Some(range))
    }

    fn max_price(&mut self, currency: Currency) -> Option<Money> {
        let column = Column::MaxPrice;
        let raw = self.required(column)?;
        let price = self.check(
            column,
            raw,
            Money::parse_exact(raw, currency).map_err(|e| e.to_string()),
        )?;
        if price.minor <= 0 {
            self.fail(
                column,
                format!(
                    "`{}` is not above zero; expected {}",
                    shown(raw),
                    column.expected()
                ),
            );
            return None;
        }
        Some(price)
    }

    fn min_drop(&mut self, currency: Currency) -> Option<MinDrop> {
        let column = Column::MinDrop;
        match self.cell(column) {
            Cell::Absent | Cell::Empty => Some(MinDrop::Zero),
            Cell::Value(raw) => self.check(column, raw, MinDrop::parse(raw, currency)),
        }
    }

    fn recipients(&mut self, phones: &mut PhoneCache) -> Option<Vec<Recipient>> {
        let column = Column::Phone;
        let parts = self.parts(column)?;
        if parts.len() > MAX_RECIPIENTS_PER_ROW {
            self.fail(
                column,
                format!(
                    "has {} numbers; a row may text at most {MAX_RECIPIENTS_PER_ROW} (each alert costs one SMS per number)",
                    parts.len()
                ),
            );
            return None;
        }
        let mut numbers: Vec<Recipient> = Vec::with_capacity(parts.len());
        for part in parts {
            let parsed = match phones.get(part) {
                Some(parsed) => parsed.clone(),
                None => {
                    let parsed = Recipient::parse(part);
                    if phones.len() >= PHONE_CACHE_ENTRIES {
                        phones.clear();
                    }
                    phones.insert(part.to_owned(), parsed.clone());
                    parsed
                }
            };
            let number = self.check(column, part, parsed)?;
            // `+44 20 7946 0123` and `+442079460123` are one recipient.
            if !numbers.contains(&number) {
                numbers.push(number);
            }
        }
        Some(numbers)
    }

    fn adults(&mut self) -> Option<u8> {
        let column = Column::Adults;
        let raw = match self.cell(column) {
            Cell::Absent | Cell::Empty => return Some(1),
            Cell::Value(raw) => raw,
        };
        let parsed = raw
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=9).contains(n))
            .ok_or_else(|| {
                format!(
                    "`{raw}` is not a number of adults; expected {}",
                    column.expected()
                )
            });
        self.check(column, raw, parsed)
    }

    fn cooldown(&mut self) -> Option<Option<SignedDuration>> {
        let column = Column::Cooldown;
        match self.cell(column) {
            Cell::Absent | Cell::Empty => Some(None),
            Cell::Value(raw) => self.check(column, raw, parse_cooldown(raw)),
        }
    }

    fn active(&mut self) -> Option<bool> {
        let column = Column::Active;
        let raw = match self.cell(column) {
            Cell::Absent | Cell::Empty => return Some(true),
            Cell::Value(raw) => raw,
        };
        let parsed = match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(true),
            "false" | "no" | "n" | "0" => Ok(false),
            _ => Err(format!(
                "`{raw}` is not true or false; expected {}",
                column.expected()
            )),
        };
        self.check(column, raw, parsed)
    }

    fn label(&mut self) -> Option<String> {
        let raw = match self.cell(Column::Label) {
            Cell::Absent | Cell::Empty => return None,
            Cell::Value(raw) => raw,
        };
        if looks_like_formula(raw) {
            self.warn(
                Column::Label.name(),
                &format!(
                    "`{}` looks like a spreadsheet formula; kept as plain text",
                    shown(raw)
                ),
            );
        }
        // Labels end up in SMS text and terminals: no line breaks or escapes.
        let label: String = raw
            .chars()
            .map(|c| if is_unprintable(c) { ' ' } else { c })
            .collect();
        let label = label.trim();
        (!label.is_empty()).then(|| label.to_owned())
    }

    /// Fields past the header's last column are an error only when they hold
    /// something: spreadsheets often export trailing empty cells.
    fn check_extra_fields(&mut self) {
        let width = self.header.width;
        let extra_used = self
            .record
            .iter()
            .skip(width)
            .any(|field| !field.trim().is_empty());
        if extra_used {
            let message = format!(
                "has {} fields but the header has {width}; remove the extra cells or add a header for them",
                self.record.len()
            );
            self.push_error(usize::MAX, ROW_COLUMN, message);
        }
    }

    fn check_expansion(&mut self, route: &Route) {
        let pairs = route
            .origins
            .iter()
            .flat_map(|o| route.destinations.iter().map(move |d| (o, d)))
            .filter(|(o, d)| o != d)
            .count();
        if pairs == 0 {
            let message = format!(
                "every destination is also the origin ({}); expected a destination different from the origin",
                route.route_name()
            );
            self.fail(Column::Destination, message);
            return;
        }
        let dates = count_date_combinations(&route.depart, route.return_dates.as_ref());
        let total = (pairs as u128).saturating_mul(dates);
        if total > MAX_LOOKUPS_PER_ROW as u128 {
            let what = if route.return_dates.is_some() {
                "departure/return date pair"
            } else {
                "date"
            };
            let message = format!(
                "expands to {total} searches ({} × {}), more than the {MAX_LOOKUPS_PER_ROW} a row may have; narrow the airports or dates",
                counted(pairs as u128, "airport pair"),
                counted(dates, what),
            );
            self.push_error(usize::MAX, ROW_COLUMN, message);
        }
    }

    fn warn(&mut self, column: &str, message: &str) {
        self.warnings.push(escape_controls(&format!(
            "{}:{}: {column}: {message}",
            self.source, self.line
        )));
    }
}

/// What a later row that repeats `kept`'s search (the same [`Route::id`])
/// sets differently: each as `column (LATER here, KEPT on line N)`, in
/// column order. Empty when the two rows are the same row written twice.
///
/// The identity leaves out the rule on purpose (editing a threshold keeps
/// the alert state), so two such rows cannot both run: they would share one
/// alert state. The reader keeps the first and reports the later one.
pub(super) fn differences(kept: &Route, later: &Route) -> Vec<String> {
    let currency = kept.currency();
    let min_drop = |drop: MinDrop| match drop {
        MinDrop::Zero => "0".to_owned(),
        MinDrop::Amount(minor) => Money::from_minor(minor, currency).amount_string(),
        MinDrop::BasisPoints(bps) => {
            format!("{}%", rust_decimal::Decimal::new(bps.into(), 2).normalize())
        }
    };
    let cooldown = |cooldown: Option<SignedDuration>| match cooldown {
        None => "none".to_owned(),
        // The friendly form the sheet takes (`6h`, `2h 30m`); hours are the
        // largest unit, so `1d` shows as `24h`.
        Some(duration) => format!("{duration:#}"),
    };
    let label = |label: Option<&str>| match label {
        None => "none".to_owned(),
        Some(text) => format!("`{}`", shown(text)),
    };
    let kept_line = kept.line;
    let mut out = Vec::new();
    let mut compare = |column: Column, kept: String, later: String| {
        if kept != later {
            out.push(format!(
                "{} ({later} here, {kept} on line {kept_line})",
                column.name()
            ));
        }
    };
    compare(
        Column::MaxPrice,
        kept.rule.max_price.amount_string(),
        later.rule.max_price.amount_string(),
    );
    compare(
        Column::MinDrop,
        min_drop(kept.rule.min_drop),
        min_drop(later.rule.min_drop),
    );
    compare(
        Column::Cooldown,
        cooldown(kept.rule.cooldown),
        cooldown(later.rule.cooldown),
    );
    compare(
        Column::Active,
        kept.active.to_string(),
        later.active.to_string(),
    );
    compare(
        Column::Label,
        label(kept.label.as_deref()),
        label(later.label.as_deref()),
    );
    out
}

/// `1 date`, `17 dates`.
fn counted(n: u128, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Parses `6h`, `30m`, `1d`, `1w`, `2h 30m` or ISO 8601 `PT6H` into a
/// cooldown; days count as 24 hours (a cooldown is elapsed time, not
/// calendar days). Zero (`0`, `0h`) means no cooldown, as an empty cell does.
fn parse_cooldown(raw: &str) -> Result<Option<SignedDuration>, String> {
    // A bare 0 needs no unit: zero of anything is zero.
    if raw.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    let span: Span = raw.parse().map_err(|_| {
        format!(
            "`{raw}` is not a duration; expected a duration such as 6h, 30m or 1d, or 0 for none"
        )
    })?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            format!("`{raw}` uses months or years; expected hours, minutes, days or weeks, such as 6h or 2d")
        })?;
    if duration.is_negative() {
        return Err(format!(
            "`{raw}` is negative; expected a duration such as 6h, 30m or 1d, or 0 for none"
        ));
    }
    Ok(Some(duration).filter(|d| !d.is_zero()))
}

/// How many (departure, return) day combinations a row searches: every
/// departure day alone for one-way, or every pair with the return on or after
/// the departure, as [`Route::lookups`] does. Computed arithmetically so a
/// year-spanning range is counted without being walked.
pub(super) fn count_date_combinations(
    depart: &DateRange,
    return_dates: Option<&DateRange>,
) -> u128 {
    let Some(ret) = return_dates else {
        return depart.len() as u128;
    };
    // Day numbers relative to the first departure day.
    let day = |d: Date| i128::from((d - depart.first).get_days());
    let (a, b) = (0_i128, day(depart.last));
    let (c, e) = (day(ret.first), day(ret.last));
    // Departures up to the first return day can return on any return day.
    let early = (b.min(c) - a + 1).max(0) * (e - c + 1);
    // Later departures can return on the days from themselves to the last.
    let (lo, hi) = (a.max(c + 1), b.min(e));
    let late = if lo <= hi {
        ((e - lo + 1) + (e - hi + 1)) * (hi - lo + 1) / 2
    } else {
        0
    };
    u128::try_from(early + late).unwrap_or(0)
}

/// Whether a cell looks like a formula a spreadsheet would evaluate
/// (`=SUM(..)`, `@cmd`, `+HYPERLINK(..)`, `-cmd|..`); plain signed numbers
/// such as `-5` or `+44..` do not count.
fn looks_like_formula(value: &str) -> bool {
    let mut chars = value.chars();
    match chars.next() {
        Some('=' | '@') => true,
        Some('+' | '-') => chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '(' || c == '='),
        _ => false,
    }
}

/// A hint for values that are spreadsheet artefacts rather than typos.
fn spreadsheet_hint(column: Column, value: &str) -> Option<&'static str> {
    if looks_like_formula(value) {
        return Some(
            "it looks like a spreadsheet formula: put the plain value in the cell (or format the cell as plain text)",
        );
    }
    // #REF!, #N/A, #VALUE!, #ERROR!, #NAME?, #DIV/0! ...
    if value.starts_with('#')
        && value.len() <= 8
        && value[1..].starts_with(|c: char| c.is_ascii_uppercase())
    {
        return Some("it looks like a spreadsheet error value: fix the formula that produced it");
    }
    // A phone typed into a number-formatted cell loses its + (and may turn
    // into 4.4770090012E+11).
    if column == Column::Phone
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | 'E' | 'e' | '+'))
        && !value.starts_with(['+', '0'])
        && value.chars().filter(char::is_ascii_digit).count() >= 7
    {
        return Some(
            "a spreadsheet may have turned it into a number: format the column as plain text and type the number with its leading +",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(raw: &str) -> DateRange {
        DateRange::parse(raw).unwrap()
    }

    #[test]
    fn counts_date_combinations_like_route_lookups() {
        let cases = [
            ("2027-03-01", None, 1),
            ("2027-03-01..2027-03-10", None, 10),
            ("2027-03-01", Some("2027-03-05"), 1),
            ("2027-03-05", Some("2027-03-01..2027-03-05"), 1),
            ("2027-03-01..2027-03-02", Some("2027-03-02..2027-03-03"), 4),
            ("2027-03-01..2027-03-10", Some("2027-03-01..2027-03-10"), 55),
            ("2027-03-05..2027-03-10", Some("2027-03-01..2027-03-07"), 6),
            ("2027-03-01..2027-03-03", Some("2027-03-10..2027-03-11"), 6),
        ];
        for (depart, ret, expected) in cases {
            let depart = range(depart);
            let ret = ret.map(range);
            let brute = depart
                .days()
                .map(|d| match &ret {
                    None => 1,
                    Some(r) => r.days().filter(|x| *x >= d).count(),
                })
                .sum::<usize>();
            assert_eq!(brute as u128, expected, "{depart} {ret:?}");
            assert_eq!(
                count_date_combinations(&depart, ret.as_ref()),
                expected,
                "{depart} {ret:?}"
            );
        }
        // A range across the whole calendar is counted without walking it.
        let all = range("0001-01-01..9999-12-31");
        assert!(count_date_combinations(&all, Some(&all)) > 1_000_000_000_000);
    }

    #[test]
    fn parses_cooldowns_in_friendly_units() {
        let some = |raw: &str| parse_cooldown(raw).unwrap().unwrap();
        assert_eq!(some("6h"), SignedDuration::from_hours(6));
        assert_eq!(some("30m"), SignedDuration::from_mins(30));
        assert_eq!(some("1d"), SignedDuration::from_hours(24));
        assert_eq!(some("1w"), SignedDuration::from_hours(168));
        assert_eq!(some("2h 30m"), SignedDuration::from_mins(150));
        assert_eq!(some("PT6H"), SignedDuration::from_hours(6));
        assert!(parse_cooldown("-6h").unwrap_err().contains("negative"));
        assert!(parse_cooldown("1mo")
            .unwrap_err()
            .contains("months or years"));
        assert!(parse_cooldown("6").unwrap_err().contains("not a duration"));
        assert!(parse_cooldown("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn a_zero_cooldown_is_no_cooldown() {
        for raw in ["0", "00", "0h", "0s", "0d", "PT0S"] {
            assert_eq!(parse_cooldown(raw), Ok(None), "{raw}");
        }
    }

    #[test]
    fn recognises_spreadsheet_debris() {
        assert!(looks_like_formula("=1+2"));
        assert!(looks_like_formula("+SUM(A1:A2)"));
        assert!(looks_like_formula("-cmd|' /C calc'!A0"));
        assert!(looks_like_formula("@SUM(1)"));
        assert!(!looks_like_formula("-5"));
        assert!(!looks_like_formula("+442079460123"));
        assert!(spreadsheet_hint(Column::Origin, "#REF!").is_some());
        assert!(spreadsheet_hint(Column::Phone, "447700900123").is_some());
        assert!(spreadsheet_hint(Column::Phone, "4.4770090012E+11").is_some());
        assert!(spreadsheet_hint(Column::Adults, "1234567").is_none());
        assert!(
            spreadsheet_hint(Column::Phone, "07700900123").is_none(),
            "a domestic number, not a mangled one"
        );
        assert!(spreadsheet_hint(Column::Origin, "LHR").is_none());
        assert!(spreadsheet_hint(Column::DepartDate, "2027-03-01").is_none());
    }
}
