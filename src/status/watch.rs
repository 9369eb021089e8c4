//! The flight watch list: a CSV file (`flights.csv`) of flights to follow,
//! parsed into validated [`Watch`]es, with every bad row reported as
//! `NAME:LINE: column: what is wrong and what is expected`.
//!
//! # The format
//!
//! A UTF-8 CSV file (a byte-order mark is fine) whose first row is a header.
//! Header names are trimmed and case-insensitive; spaces and hyphens count as
//! underscores. Cells are trimmed; an empty optional cell means its default.
//!
//! | column | required | value | default |
//! |---|---|---|---|
//! | `flight` | yes | IATA designator: `MU2557`, `LH 400`, `U2 8123` (upper-cased, spaces and leading zeros of the number dropped) | |
//! | `date` | yes | the flight date (local departure date): `2026-11-24` | |
//! | `phone` (or `recipient`) | yes | E.164 numbers or channels (`slack:team`, `discord:ops`, `webhook:crm`), several joined by `\|` | |
//! | `notify_on` | no | any of `delay`, `cancel`, `divert`, `gate`, `depart`, `land`, joined by `,` or `\|` (`gate` covers terminal changes too) | all |
//! | `min_delay` | no | minutes (`30`) or a duration (`30m`, `1h`, `1h30m`), 1 minute to 24 hours | 15 |
//!
//! - A date before yesterday is an error (a flight dated yesterday may still
//!   be in the air, landing today).
//! - Blank rows and rows whose first cell starts with `#` are skipped.
//! - A bad row is left out and each bad cell reported; other rows still load.
//! - A row with the same flight, date and recipients as an earlier row
//!   ([`Watch::id`]) is a duplicate: ignored, with a warning (the first
//!   [`MAX_DUPLICATE_WARNINGS`](crate::sheet::MAX_DUPLICATE_WARNINGS) one
//!   by one, the rest in one summary naming their lines).
//! - Unknown columns are ignored, with one warning each.
//! - Fatal ([`WatchListError`]): not UTF-8 (or UTF-16), empty, no header, a
//!   missing or repeated column, more than [`MAX_WATCH_BYTES`].
//!
//! Pure: no IO and no clock (`today` is a parameter). Reading the file is the
//! caller's job.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;

use csv::StringRecord;
use jiff::civil::Date;
use jiff::{Span, SpanRelativeTo, ToSpan};

use crate::domain::Recipient;
use crate::sheet::text::{self, bare_cr_to_lf, clean_message, shown, DuplicateRows, TextError};
use crate::sheet::{is_skippable, LineLocator, RowError, MAX_RECIPIENTS_PER_ROW};

/// Default `min_delay`, in minutes: the same line as
/// [`DISRUPTION_DELAY_MINUTES`](super::DISRUPTION_DELAY_MINUTES).
pub const DEFAULT_MIN_DELAY_MINUTES: u32 = 15;

/// Largest `min_delay` accepted: a threshold past a day would never alert.
pub const MAX_MIN_DELAY_MINUTES: u32 = 24 * 60;

/// Largest watch list read. A real one is a few kilobytes.
pub const MAX_WATCH_BYTES: usize = 1024 * 1024;

/// Most watch rows a file may have.
pub const MAX_WATCH_ROWS: usize = 10_000;

/// The header suggested when one is missing.
const EXAMPLE_HEADER: &str = "flight,date,phone,notify_on,min_delay";

/// Which kinds of change a watch wants to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NotifyOn {
    /// Departure delay crossing `min_delay`, growing (or shrinking) by another `min_delay`.
    pub delay: bool,
    /// Cancellation.
    pub cancel: bool,
    /// Diversion.
    pub divert: bool,
    /// Departure gate or terminal change.
    pub gate: bool,
    /// Departure (take-off or pushback).
    pub depart: bool,
    /// Landing.
    pub land: bool,
}

impl Default for NotifyOn {
    fn default() -> Self {
        Self::ALL
    }
}

impl NotifyOn {
    /// Every kind of change.
    pub const ALL: Self = Self {
        delay: true,
        cancel: true,
        divert: true,
        gate: true,
        depart: true,
        land: true,
    };

    /// No change at all.
    pub const NONE: Self = Self {
        delay: false,
        cancel: false,
        divert: false,
        gate: false,
        depart: false,
        land: false,
    };

    /// The names accepted in `notify_on`, in display order.
    pub const NAMES: [&'static str; 6] = ["delay", "cancel", "divert", "gate", "depart", "land"];

    /// Parses `cancel,land` or `delay|gate`; empty means [`NotifyOn::ALL`].
    /// Names are case-insensitive; `all` and the forms `delayed`,
    /// `cancelled`/`canceled`, `diverted`, `terminal`, `departed`/`departure`,
    /// `landed`/`landing` are accepted too.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw
            .split([',', '|'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Ok(Self::ALL);
        }
        let mut out = Self::NONE;
        for part in parts {
            match part.to_ascii_lowercase().as_str() {
                "all" => out = Self::ALL,
                "delay" | "delays" | "delayed" => out.delay = true,
                "cancel" | "cancelled" | "canceled" | "cancellation" => out.cancel = true,
                "divert" | "diverted" | "diversion" => out.divert = true,
                "gate" | "gates" | "terminal" => out.gate = true,
                "depart" | "departed" | "departure" => out.depart = true,
                "land" | "landed" | "landing" => out.land = true,
                _ => {
                    return Err(format!(
                        "`{part}` is not a kind of change; expected any of {} joined by , or |",
                        Self::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(out)
    }

    fn flags(self) -> [bool; 6] {
        [
            self.delay,
            self.cancel,
            self.divert,
            self.gate,
            self.depart,
            self.land,
        ]
    }
}

impl fmt::Display for NotifyOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .into_iter()
            .zip(self.flags())
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// One watched flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// 1-based line in the file where the row starts.
    pub line: usize,
    /// Upper-case IATA designator, e.g. `MU2557` (the snapshot key's suffix).
    pub flight: String,
    /// The flight date (local departure date).
    pub date: Date,
    /// Whom to tell, without duplicates, in row order.
    pub recipients: Vec<Recipient>,
    /// Which changes to tell.
    pub notify_on: NotifyOn,
    /// How many minutes late counts as delayed, and how much more (or less)
    /// delay is worth another alert. At least 1.
    pub min_delay_minutes: u32,
    /// Whose state this is: `None` for a watch-list row, an API watch's id
    /// for that watch (two users' watches of one flight never share state).
    pub namespace: Option<std::num::NonZeroU64>,
}

impl Watch {
    /// A stable identity for the watch's alert state: which flight and whom
    /// it tells (`MU2557:2026-11-24:+4479...|slack:team`, recipients sorted).
    /// Editing `notify_on` or `min_delay` keeps the state; changing the
    /// flight, date or recipients starts afresh.
    pub fn id(&self) -> String {
        let mut recipients: Vec<String> =
            self.recipients.iter().map(Recipient::to_string).collect();
        recipients.sort_unstable();
        let namespace = self.namespace.map(|n| format!("w{n}/")).unwrap_or_default();
        format!(
            "{namespace}{}:{}:{}",
            self.flight,
            self.date,
            recipients.join("|")
        )
    }
}

/// A parsed watch list: the good rows, the bad ones, and warnings.
#[derive(Clone, Debug, Default)]
pub struct WatchList {
    /// Valid rows, in file order.
    pub watches: Vec<Watch>,
    /// Invalid rows, one entry per bad cell; none fatal.
    pub errors: Vec<RowError>,
    /// Non-fatal remarks, each prefixed `NAME:LINE:` (unknown columns once
    /// each, duplicate rows).
    pub warnings: Vec<String>,
}

/// The watch list cannot be used at all.
///
/// Messages name the file and say what to do; match on the variant, not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchListError {
    /// Larger than [`MAX_WATCH_BYTES`].
    #[error("flight watch list {file} is larger than {} KiB; a watch list is normally a few kilobytes, so check it is the right file", .limit / 1024)]
    TooLarge {
        /// The file's name.
        file: String,
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_WATCH_ROWS`] rows.
    #[error(
        "flight watch list {file} has more than {limit} rows; remove flights you no longer need"
    )]
    TooManyRows {
        /// The file's name.
        file: String,
        /// The limit.
        limit: usize,
    },
    /// UTF-16 text.
    #[error("flight watch list {file} is UTF-16 text; save it as \"CSV UTF-8 (comma delimited)\" instead")]
    Utf16 {
        /// The file's name.
        file: String,
    },
    /// Not UTF-8.
    #[error("flight watch list {file} is not UTF-8 text (line {line} has bytes that are not UTF-8); save it as \"CSV UTF-8 (comma delimited)\"")]
    NotUtf8 {
        /// The file's name.
        file: String,
        /// The first line with a bad byte.
        line: usize,
    },
    /// No rows at all.
    #[error("flight watch list {file} is empty; it needs a header row such as `{EXAMPLE_HEADER}` and then one row per flight")]
    Empty {
        /// The file's name.
        file: String,
    },
    /// The first row names none of the known columns.
    #[error("{file}:{line}: the first row is not a header (it names none of flight, date, phone, notify_on, min_delay); add a header row such as `{EXAMPLE_HEADER}`")]
    NoHeader {
        /// The file's name.
        file: String,
        /// The line read as the header.
        line: usize,
    },
    /// Required columns are missing.
    #[error("{file}:{line}: the header is missing required column(s) {}; every watch list needs flight, date and phone", .missing.join(", "))]
    MissingColumns {
        /// The file's name.
        file: String,
        /// The header's line.
        line: usize,
        /// The missing column names.
        missing: Vec<String>,
    },
    /// A column appears twice (`phone` and `recipient` count as one).
    #[error("{file}:{line}: the header has column `{column}` twice; keep one")]
    DuplicateColumn {
        /// The file's name.
        file: String,
        /// The header's line.
        line: usize,
        /// The repeated column.
        column: String,
    },
    /// The CSV reader failed (not expected once the text is valid UTF-8).
    #[error("cannot read flight watch list {file} as CSV: {error}")]
    Csv {
        /// The file's name.
        file: String,
        /// Why.
        #[source]
        error: csv::Error,
    },
}

/// The columns a watch list knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Flight,
    Date,
    Phone,
    NotifyOn,
    MinDelay,
}

impl Column {
    const ALL: [Column; 5] = [
        Column::Flight,
        Column::Date,
        Column::Phone,
        Column::NotifyOn,
        Column::MinDelay,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Flight => "flight",
            Self::Date => "date",
            Self::Phone => "phone",
            Self::NotifyOn => "notify_on",
            Self::MinDelay => "min_delay",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "flight" => Some(Self::Flight),
            "date" => Some(Self::Date),
            "phone" | "recipient" => Some(Self::Phone),
            "notify_on" => Some(Self::NotifyOn),
            "min_delay" => Some(Self::MinDelay),
            _ => None,
        }
    }

    fn is_required(self) -> bool {
        matches!(self, Self::Flight | Self::Date | Self::Phone)
    }
}

/// Where each column sits, and the name the file gave it (for messages).
#[derive(Debug)]
struct Header {
    positions: [Option<(usize, String)>; 5],
    width: usize,
    unknown: Vec<String>,
}

impl Header {
    fn resolve(source: &str, line: usize, record: &StringRecord) -> Result<Self, WatchListError> {
        let mut header = Header {
            positions: Default::default(),
            width: record.len(),
            unknown: Vec::new(),
        };
        for (index, raw) in record.iter().enumerate() {
            let name: String = raw
                .trim()
                .chars()
                .map(|c| match c {
                    ' ' | '-' => '_',
                    c => c.to_ascii_lowercase(),
                })
                .collect();
            if name.is_empty() {
                continue;
            }
            match Column::from_name(&name) {
                Some(column) => {
                    let slot = &mut header.positions[column as usize];
                    if slot.is_some() {
                        return Err(WatchListError::DuplicateColumn {
                            file: source.to_owned(),
                            line,
                            column: column.name().to_owned(),
                        });
                    }
                    *slot = Some((index, name));
                }
                None if !header.unknown.contains(&name) => header.unknown.push(name),
                None => {}
            }
        }
        if header.positions.iter().all(Option::is_none) {
            return Err(WatchListError::NoHeader {
                file: source.to_owned(),
                line,
            });
        }
        let missing: Vec<String> = Column::ALL
            .into_iter()
            .filter(|c| c.is_required() && header.positions[*c as usize].is_none())
            .map(|c| c.name().to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(WatchListError::MissingColumns {
                file: source.to_owned(),
                line,
                missing,
            });
        }
        Ok(header)
    }
}

/// Parses watch-list bytes. `source` names the file in messages; `today`
/// is the caller's date (dates before the day before it are errors).
pub fn parse(source: &str, bytes: &[u8], today: Date) -> Result<WatchList, WatchListError> {
    let text = decode(source, bytes)?;
    let text = bare_cr_to_lf(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut lines = LineLocator::new(text.as_bytes());
    let mut record = StringRecord::new();
    let read = |reader: &mut csv::Reader<&[u8]>, record: &mut StringRecord| {
        reader
            .read_record(record)
            .map_err(|error| WatchListError::Csv {
                file: source.to_owned(),
                error,
            })
    };

    let (header, header_line) = loop {
        if !read(&mut reader, &mut record)? {
            return Err(WatchListError::Empty {
                file: source.to_owned(),
            });
        }
        if is_skippable(&record) {
            continue;
        }
        let line = lines.line_of(&record);
        break (Header::resolve(source, line, &record)?, line);
    };

    let mut list = WatchList::default();
    for name in &header.unknown {
        list.warnings.push(format!(
            "{source}:{header_line}: column `{}` is not one farewatch knows; ignored (known columns: flight, date, phone, notify_on, min_delay)",
            shown(name)
        ));
    }

    let mut first_line_by_id: HashMap<String, usize> = HashMap::new();
    let mut duplicates = DuplicateRows::default();
    let mut rows = 0_usize;
    while read(&mut reader, &mut record)? {
        if is_skippable(&record) {
            continue;
        }
        rows += 1;
        if rows > MAX_WATCH_ROWS {
            return Err(WatchListError::TooManyRows {
                file: source.to_owned(),
                limit: MAX_WATCH_ROWS,
            });
        }
        let line = lines.line_of(&record);
        let mut row = Row {
            source,
            line,
            record: &record,
            header: &header,
            errors: Vec::new(),
        };
        let watch = row.parse(today);
        if !row.errors.is_empty() {
            list.errors.extend(row.errors);
            continue;
        }
        let Some(watch) = watch else { continue };
        match first_line_by_id.entry(watch.id()) {
            Entry::Occupied(first) => {
                if duplicates.note(line) {
                    list.warnings.push(format!(
                        "{source}:{line}: duplicate of line {} (same flight, date and recipients); ignored",
                        first.get()
                    ));
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(line);
                list.watches.push(watch);
            }
        }
    }
    list.warnings.extend(duplicates.summary(source));
    Ok(list)
}

/// Parses one watch given as (column name, cell text) pairs rather than a
/// CSV line: the API's flight watches, validated by the code that reads
/// flights.csv, so the rules and messages are the same.
///
/// Names are `flight`, `date`, `phone` (or `recipient`), `notify_on` and
/// `min_delay`; a column left out is an empty cell. `source` and `line`
/// name the row in messages. Returns the watch, or every problem found,
/// each [`RowError::column`] a column name (or an unknown name given).
pub fn parse_fields(
    source: &str,
    line: usize,
    fields: &[(&str, &str)],
    today: Date,
) -> Result<Watch, Vec<RowError>> {
    let mut header = Header {
        positions: Default::default(),
        width: Column::ALL.len(),
        unknown: Vec::new(),
    };
    for column in Column::ALL {
        header.positions[column as usize] = Some((column as usize, column.name().to_owned()));
    }
    let mut cells = vec![""; Column::ALL.len()];
    let mut errors = Vec::new();
    for (name, value) in fields {
        match Column::from_name(name) {
            Some(column) => cells[column as usize] = value,
            None => errors.push(RowError {
                source: source.to_owned(),
                line,
                column: text::escape_controls(&shown(name)),
                message: format!(
                    "is not a column farewatch knows; expected some of {}",
                    Column::ALL.map(Column::name).join(", ")
                ),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let record = StringRecord::from(cells);
    let mut row = Row {
        source,
        line,
        record: &record,
        header: &header,
        errors: Vec::new(),
    };
    let watch = row.parse(today);
    match watch {
        Some(watch) if row.errors.is_empty() => Ok(watch),
        _ => Err(row.errors),
    }
}

struct Row<'a> {
    source: &'a str,
    line: usize,
    record: &'a StringRecord,
    header: &'a Header,
    errors: Vec<RowError>,
}

impl<'a> Row<'a> {
    /// The trimmed cell and the column's name as the file spells it, or
    /// `None` when the column is absent or the cell empty.
    fn cell(&self, column: Column) -> Option<&'a str> {
        let (index, _) = self.header.positions[column as usize].as_ref()?;
        let value = self.record.get(*index)?.trim();
        (!value.is_empty()).then_some(value)
    }

    fn fail(&mut self, column: &str, message: String) {
        self.errors.push(RowError {
            source: self.source.to_owned(),
            line: self.line,
            column: column.to_owned(),
            message,
        });
    }

    fn column_name(&self, column: Column) -> String {
        self.header.positions[column as usize]
            .as_ref()
            .map_or_else(|| column.name().to_owned(), |(_, name)| name.clone())
    }

    /// Runs `parse` on a required cell, reporting an empty one or a failure.
    fn required<T>(
        &mut self,
        column: Column,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let name = self.column_name(column);
        let Some(raw) = self.cell(column) else {
            self.fail(&name, format!("is empty; expected {expected}"));
            return None;
        };
        match parse(raw) {
            Ok(value) => Some(value),
            Err(message) => {
                self.fail(&name, message);
                None
            }
        }
    }

    fn optional<T>(
        &mut self,
        column: Column,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let Some(raw) = self.cell(column) else {
            return Some(default);
        };
        match parse(raw) {
            Ok(value) => Some(value),
            Err(message) => {
                let name = self.column_name(column);
                self.fail(&name, message);
                None
            }
        }
    }

    fn parse(&mut self, today: Date) -> Option<Watch> {
        let flight = self.required(
            Column::Flight,
            "an IATA flight designator such as MU2557",
            parse_flight,
        );
        let date = self.required(Column::Date, "a date such as 2026-11-24", |raw| {
            parse_date(raw, today)
        });
        let recipients = self.required(
            Column::Phone,
            "an E.164 number such as +447911123456 or a channel such as slack:team",
            parse_recipients,
        );
        let notify_on = self.optional(Column::NotifyOn, NotifyOn::ALL, |raw| {
            NotifyOn::parse(raw).map_err(|m| clean_message(&m, raw))
        });
        let min_delay = self.optional(Column::MinDelay, DEFAULT_MIN_DELAY_MINUTES, parse_min_delay);
        self.check_extra_fields();
        Some(Watch {
            line: self.line,
            flight: flight?,
            date: date?,
            recipients: recipients?,
            notify_on: notify_on?,
            min_delay_minutes: min_delay?,
            namespace: None,
        })
    }

    /// Values past the header's last column belong to no column.
    fn check_extra_fields(&mut self) {
        let extra = self
            .record
            .iter()
            .skip(self.header.width)
            .any(|v| !v.trim().is_empty());
        if extra {
            self.fail(
                "row",
                format!(
                    "has values past the header's {} columns; expected at most one value per header column (quote a value that contains commas)",
                    self.header.width
                ),
            );
        }
    }
}

/// `MU2557`, `mu 2557`, `LH0400` (-> `LH400`), `U28123`, `9W123A`.
fn parse_flight(raw: &str) -> Result<String, String> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bad = || {
        format!(
            "`{}` is not a flight designator; expected an airline's two-character IATA code and a number of 1 to 4 digits, such as MU2557 or U28123",
            shown(raw)
        )
    };
    if !compact.is_ascii() || compact.len() < 3 {
        return Err(bad());
    }
    let (airline, rest) = compact.split_at(2);
    let suffix = rest
        .strip_suffix(|c: char| c.is_ascii_uppercase())
        .unwrap_or(rest);
    let valid_airline = airline.bytes().all(|b| b.is_ascii_alphanumeric())
        && !airline.bytes().all(|b| b.is_ascii_digit());
    if !valid_airline {
        return Err(bad());
    }
    if !suffix.bytes().all(|b| b.is_ascii_digit()) {
        // `DLH400`: a three-letter ICAO airline code.
        if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(format!(
                "`{}` looks like an ICAO designator; expected the IATA one, such as LH400 rather than DLH400",
                shown(raw)
            ));
        }
        return Err(bad());
    }
    let number = suffix.trim_start_matches('0');
    if number.is_empty() || number.len() > 4 {
        return Err(bad());
    }
    let letter = &rest[suffix.len()..];
    Ok(format!("{airline}{number}{letter}"))
}

fn parse_date(raw: &str, today: Date) -> Result<Date, String> {
    let date: Date = raw.parse().map_err(|_| {
        format!(
            "`{}` is not a date; expected a date such as 2026-11-24 (year-month-day)",
            shown(raw)
        )
    })?;
    let yesterday = today.checked_sub(1.day()).unwrap_or(today);
    if date < yesterday {
        return Err(format!(
            "{date} is in the past; expected {yesterday} or later (a flight from yesterday may still be in the air)"
        ));
    }
    Ok(date)
}

fn parse_recipients(raw: &str) -> Result<Vec<Recipient>, String> {
    let parts: Vec<&str> = raw
        .split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(
            "has no recipient; expected an E.164 number such as +447911123456 or a channel such as slack:team".to_owned(),
        );
    }
    if parts.len() > MAX_RECIPIENTS_PER_ROW {
        return Err(format!(
            "has {} recipients; a row may tell at most {MAX_RECIPIENTS_PER_ROW} (each alert costs one message per recipient)",
            parts.len()
        ));
    }
    let mut out: Vec<Recipient> = Vec::with_capacity(parts.len());
    for part in parts {
        let recipient = Recipient::parse(part).map_err(|m| clean_message(&m, part))?;
        if !out.contains(&recipient) {
            out.push(recipient);
        }
    }
    Ok(out)
}

/// `30` (minutes), `30m`, `1h`, `1h30m`, `PT45M`: whole minutes from 1 to
/// [`MAX_MIN_DELAY_MINUTES`].
fn parse_min_delay(raw: &str) -> Result<u32, String> {
    let expected = format!(
        "expected minutes (30) or a duration (30m, 1h) from 1 minute to {} hours",
        MAX_MIN_DELAY_MINUTES / 60
    );
    let seconds = if let Ok(minutes) = raw.parse::<i64>() {
        minutes.saturating_mul(60)
    } else {
        let span: Span = raw
            .parse()
            .map_err(|_| format!("`{}` is not a duration; {expected}", shown(raw)))?;
        span.to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| format!("`{}` is not a duration; {expected}", shown(raw)))?
            .as_secs()
    };
    if seconds % 60 != 0 {
        return Err(format!(
            "`{}` is not a whole number of minutes; {expected}",
            shown(raw)
        ));
    }
    u32::try_from(seconds / 60)
        .ok()
        .filter(|m| (1..=MAX_MIN_DELAY_MINUTES).contains(m))
        .ok_or_else(|| format!("`{}` is out of range; {expected}", shown(raw)))
}

/// Checks size and encoding ([`text::decode`]), and returns the text
/// without its BOM.
fn decode<'b>(source: &str, bytes: &'b [u8]) -> Result<&'b str, WatchListError> {
    text::decode(bytes, MAX_WATCH_BYTES).map_err(|problem| {
        let file = source.to_owned();
        match problem {
            TextError::TooLarge { limit } => WatchListError::TooLarge { file, limit },
            TextError::Utf16 => WatchListError::Utf16 { file },
            TextError::NotUtf8 { line } => WatchListError::NotUtf8 { file, line },
            TextError::Empty => WatchListError::Empty { file },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const TODAY: Date = date(2026, 11, 20);

    fn parse_str(text: &str) -> WatchList {
        parse("flights.csv", text.as_bytes(), TODAY).unwrap()
    }

    #[test]
    fn parses_a_full_row_with_defaults_and_aliases() {
        let list = parse_str(
            "Flight,DATE,Recipient,Notify On,min-delay\n\
             mu 2557,2026-11-24,+447911123456|slack:Team,\"cancel,land\",1h\n\
             LH0400,2026-11-19,discord:ops,,\n",
        );
        assert!(list.errors.is_empty(), "{:?}", list.errors);
        let [a, b] = &list.watches[..] else {
            panic!("{:?}", list.watches)
        };
        assert_eq!(a.flight, "MU2557");
        assert_eq!(a.line, 2);
        assert_eq!(a.recipients.len(), 2);
        assert_eq!(
            a.notify_on,
            NotifyOn {
                cancel: true,
                land: true,
                ..NotifyOn::NONE
            }
        );
        assert_eq!(a.min_delay_minutes, 60);
        assert_eq!(a.id(), "MU2557:2026-11-24:+447911123456|slack:team");
        assert_eq!(b.flight, "LH400");
        assert_eq!(b.notify_on, NotifyOn::ALL);
        assert_eq!(b.min_delay_minutes, DEFAULT_MIN_DELAY_MINUTES);
    }

    #[test]
    fn a_backtick_in_a_bad_recipient_keeps_the_quoting_balanced() {
        let list = parse_str("flight,date,phone\nMU2557,2026-11-24,slack`x\n");
        let [error] = &list.errors[..] else {
            panic!("{:?}", list.errors)
        };
        assert!(
            error.message.starts_with("`slack'x` is not"),
            "{}",
            error.message
        );
    }

    #[test]
    fn flight_designators() {
        assert_eq!(parse_flight("u2 8123").unwrap(), "U28123");
        assert_eq!(parse_flight("9W123a").unwrap(), "9W123A");
        assert!(parse_flight("DLH400").unwrap_err().contains("ICAO"));
        assert!(parse_flight("12345").is_err());
        assert!(parse_flight("LH").is_err());
        assert!(parse_flight("LH12345").is_err());
        assert!(parse_flight("LH0").is_err());
        assert!(parse_flight("LH4-00").is_err());
        assert!(parse_flight("ÄÖ123").is_err());
    }

    #[test]
    fn min_delay_forms() {
        assert_eq!(parse_min_delay("30"), Ok(30));
        assert_eq!(parse_min_delay("30m"), Ok(30));
        assert_eq!(parse_min_delay("1h30m"), Ok(90));
        assert_eq!(parse_min_delay("PT45M"), Ok(45));
        assert!(parse_min_delay("0").is_err());
        assert!(parse_min_delay("-5").is_err());
        assert!(parse_min_delay("90s").unwrap_err().contains("whole number"));
        assert!(parse_min_delay("2d").unwrap_err().contains("out of range"));
        assert!(parse_min_delay("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn notify_on_forms() {
        assert_eq!(NotifyOn::parse(""), Ok(NotifyOn::ALL));
        assert_eq!(NotifyOn::parse(" , "), Ok(NotifyOn::ALL));
        let parsed = NotifyOn::parse("Delay | Gate").unwrap();
        assert_eq!(parsed.to_string(), "delay,gate");
        assert!(NotifyOn::parse("delay,boarding")
            .unwrap_err()
            .contains("`boarding` is not a kind of change"));
        assert_eq!(NotifyOn::ALL.to_string(), NotifyOn::NAMES.join(","));
    }

    #[test]
    fn duplicate_warnings_are_capped_with_one_summary() {
        let mut text = String::from("flight,date,phone\n");
        for _ in 0..2_000 {
            text.push_str("MU2557,2026-11-24,+447911123456\n");
        }
        let list = parse_str(&text);
        assert_eq!(list.watches.len(), 1);
        let cap = crate::sheet::MAX_DUPLICATE_WARNINGS;
        assert_eq!(list.warnings.len(), cap + 1, "{:#?}", list.warnings);
        assert_eq!(
            list.warnings[0],
            "flights.csv:3: duplicate of line 2 (same flight, date and recipients); ignored"
        );
        assert_eq!(
            list.warnings[cap],
            format!(
                "flights.csv:{}: {} more duplicate rows ignored (lines {}-2001)",
                3 + cap,
                1_999 - cap,
                3 + cap
            )
        );
    }
}
