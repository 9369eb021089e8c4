//! Reading the routes sheet: a CSV file, an http(s) URL (a Google Sheet
//! published as CSV) or standard input into validated [`Route`]s, with
//! every bad row reported as `NAME:LINE: column: what is wrong and what is
//! expected`.
//!
//! # The sheet format
//!
//! A CSV file in UTF-8 whose first row is a header. Columns may come in any
//! order; header names are trimmed and case-insensitive, and spaces or
//! hyphens count as underscores (`Max Price` is `max_price`). One row is one
//! route; every cell is trimmed, and an empty optional cell means its default.
//!
//! | column | required | value | default |
//! |---|---|---|---|
//! | `origin` | yes | IATA codes, several joined by `\|`: `LHR\|LGW` | |
//! | `destination` | yes | IATA codes, as `origin` | |
//! | `depart_date` | yes | `2027-03-01`, or an inclusive range `2027-03-01..2027-03-07` | |
//! | `max_price` | yes | the most you will pay, above 0, in the row's currency, with no more decimals than the currency has: `349.99` | |
//! | `phone` | yes | E.164 numbers, several joined by `\|`: `+442079460123` (at most [`MAX_RECIPIENTS_PER_ROW`]) | |
//! | `return_date` | no | a date or range; a return range must have a day on or after the departure | one-way |
//! | `currency` | no | ISO 4217: `EUR`, `GBP`, `USD` | [`SheetOptions::default_currency`] |
//! | `adults` | no | 1 to 9 | 1 |
//! | `min_drop` | no | how much lower than the last alert a price must be to alert again: an amount `25` or a percentage `5%` | 0 |
//! | `cooldown` | no | least time between two alerts for the row: `6h`, `30m`, `1d`, `1w`, `2h 30m` (a day is 24 hours); `0` means none | none |
//! | `active` | no | `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0` | true |
//! | `label` | no | free text shown in alerts | none |
//!
//! - A row searches every origin × destination × departure day (× return
//!   day on or after it). A row that expands to more than
//!   [`MAX_LOOKUPS_PER_ROW`](crate::route::MAX_LOOKUPS_PER_ROW) searches, or
//!   to none (every destination is also an origin), is an error.
//! - Departure dates before today are errors. A range that starts before
//!   today but ends today or later is kept and searched from today, with a
//!   warning.
//! - Blank lines (and rows of empty cells) are skipped. A line whose first
//!   cell starts with `#` is a comment, before the header too.
//! - A bad row is left out and each of its bad cells reported; the other rows
//!   still load. Values quoted in messages are cut to 40 characters, with
//!   control and invisible characters escaped. Values past the header's last
//!   column are an error (empty trailing cells are fine).
//! - A row with the same search and recipients as an earlier row
//!   ([`Route::id`]) and the same settings is a duplicate: ignored, with a
//!   warning (the first [`MAX_DUPLICATE_WARNINGS`] one by one, the rest in
//!   one summary naming their lines). The identity leaves the rule out, so
//!   that editing a threshold keeps the row's alert state; a later row that
//!   repeats the search with a different `max_price`, `min_drop`,
//!   `cooldown`, `active` or `label` therefore cannot run beside the first:
//!   it is a row error naming both lines and each difference, and the
//!   earlier row runs.
//! - Columns farewatch does not know are ignored, with one warning each.
//! - Fatal ([`SheetError`]): a missing or repeated column, no header, a
//!   header separated by semicolons or tabs, an empty file, text that is not
//!   UTF-8 (a UTF-8 byte-order mark is fine; UTF-16 is not), more than
//!   [`MAX_SHEET_BYTES`] bytes or more than [`MAX_SHEET_ROWS`] rows.
//! - [`load`] takes a path, an `http(s)://` link, or `-` for standard
//!   input (named `<stdin>` in messages); for Google Sheets use the
//!   "Publish to web" CSV link. A link is named in messages without its
//!   credentials ([`display_name`]).

mod columns;
mod row;
pub(crate) mod text;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use csv::StringRecord;
use jiff::civil::Date;

use crate::domain::Currency;
use crate::route::Route;
use columns::{Column, Header, HeaderProblem};
use row::PhoneCache;
use text::{bare_cr_to_lf, escape_controls, shown, strip_bom, DuplicateRows, TextError};

/// Largest sheet farewatch reads. Real sheets are a few kilobytes; a file
/// this big is the wrong file, and reading it whole would only waste memory.
pub const MAX_SHEET_BYTES: usize = 10 * 1024 * 1024;

/// Most data rows a sheet may have; more is a fatal [`SheetError::TooManyRows`]
/// rather than a partial load, because silently dropping the tail of a sheet
/// would drop alerts nobody knows are missing.
pub const MAX_SHEET_ROWS: usize = 100_000;

/// Most phone numbers one row may text: each alert costs one SMS per
/// number, so a column of numbers pasted into one cell is stopped here.
pub const MAX_RECIPIENTS_PER_ROW: usize = 10;

/// Most duplicate rows (in the routes sheet or the flight watch list)
/// warned about one by one; the rest are counted in one summary warning
/// naming their lines, so a sheet pasted in twice, or a generated one with
/// thousands of repeats, does not bury the messages that matter.
pub const MAX_DUPLICATE_WARNINGS: usize = 10;

/// Time allowed to download a sheet from a URL, redirects included.
pub const SHEET_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The location that means standard input: `--routes -` reads the sheet
/// from a pipe (`generate-routes | farewatch check --routes -`).
pub const STDIN: &str = "-";

/// How standard input is named in messages: `<stdin>:7: origin: ...`.
pub const STDIN_NAME: &str = "<stdin>";

/// The header farewatch suggests when one is missing.
const EXAMPLE_HEADER: &str = "origin,destination,depart_date,max_price,phone";

/// What the parser needs besides the bytes.
#[derive(Clone, Debug)]
pub struct SheetOptions {
    /// Currency for rows without a `currency` column or value.
    pub default_currency: Currency,
    /// Today's date: departure dates before it are errors.
    pub today: Date,
}

/// One bad row (or cell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The sheet's name as shown to the user (`routes.csv`, or the URL
    /// without its credentials).
    pub source: String,
    /// 1-based line in the file where the row starts.
    pub line: usize,
    /// The column at fault (lower-case header name), or `row` for a problem
    /// with the row as a whole (too many fields, too many searches).
    pub column: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.source, self.line, self.column, self.message
        )
    }
}

/// A parsed sheet: the good rows, the bad ones, and warnings.
#[derive(Clone, Debug, Default)]
pub struct Sheet {
    /// Valid rows, in sheet order.
    pub routes: Vec<Route>,
    /// Invalid rows: each reported, none fatal.
    pub errors: Vec<RowError>,
    /// Non-fatal remarks, each prefixed `NAME:LINE:` (unknown columns once
    /// each, clipped date ranges, duplicate rows).
    pub warnings: Vec<String>,
}

/// The sheet cannot be used at all (exit code 3).
///
/// Messages name the sheet and say what to do; they may change over time,
/// so match on the variant, not the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// The sheet file does not exist.
    #[error("routes sheet `{}` does not exist; create it (see the example routes.csv) or pass --routes with a file path or a published CSV link", .path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The sheet file exists but cannot be read.
    #[error("cannot read routes sheet `{}`: {source}", .path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Standard input (`--routes -`) cannot be read.
    #[error("cannot read the routes sheet from standard input: {source}")]
    Stdin {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sheet URL could not be downloaded.
    #[error("cannot download routes sheet {url}: {source}; check the link and the network")]
    Fetch {
        /// The URL, credentials redacted.
        url: String,
        /// Why (without the URL, which may hold credentials).
        #[source]
        source: reqwest::Error,
    },
    /// The sheet URL answered with an error status.
    #[error("routes sheet {url} answered HTTP {status}; check that the link is the sheet's \"Publish to web\" CSV link and that it is still published")]
    HttpStatus {
        /// The URL, credentials redacted.
        url: String,
        /// The status received.
        status: reqwest::StatusCode,
    },
    /// The sheet URL returned a web page instead of CSV.
    #[error("routes sheet {url} returned a web page, not CSV; the link must be the \"Publish to web\" CSV link (in Google Sheets: File > Share > Publish to web, choose Comma-separated values)")]
    NotCsv {
        /// The URL, credentials redacted.
        url: String,
    },
    /// The sheet is larger than [`MAX_SHEET_BYTES`].
    #[error("routes sheet {sheet} is larger than the {} MiB limit; a routes sheet is normally a few kilobytes, so check it is the right file", .limit / (1024 * 1024))]
    TooLarge {
        /// The sheet's name.
        sheet: String,
        /// The limit, [`MAX_SHEET_BYTES`].
        limit: usize,
    },
    /// The sheet has more than [`MAX_SHEET_ROWS`] data rows.
    #[error("routes sheet {sheet} has more than {limit} rows; split it or remove rows you no longer need")]
    TooManyRows {
        /// The sheet's name.
        sheet: String,
        /// The limit, [`MAX_SHEET_ROWS`].
        limit: usize,
    },
    /// The sheet is UTF-16, as some spreadsheets save "Unicode text".
    #[error(
        "routes sheet {sheet} is UTF-16 text; save it as \"CSV UTF-8 (comma delimited)\" instead"
    )]
    Utf16 {
        /// The sheet's name.
        sheet: String,
    },
    /// The sheet is not valid UTF-8 (probably a legacy encoding such as Windows-1252).
    #[error("routes sheet {sheet} is not UTF-8 text (line {line} has bytes that are not UTF-8); save it as \"CSV UTF-8 (comma delimited)\"")]
    NotUtf8 {
        /// The sheet's name.
        sheet: String,
        /// The first line with a bad byte.
        line: usize,
    },
    /// The sheet has no rows at all.
    #[error("routes sheet {sheet} is empty; it needs a header row such as `{EXAMPLE_HEADER}` and then one row per route")]
    Empty {
        /// The sheet's name.
        sheet: String,
    },
    /// The first row names none of the known columns: it is data, not a header.
    #[error("{sheet}:{line}: the first row is not a header (it names none of farewatch's columns); add a header row such as `{EXAMPLE_HEADER}`")]
    NoHeader {
        /// The sheet's name.
        sheet: String,
        /// The line of the row read as the header.
        line: usize,
    },
    /// The header lacks required columns.
    #[error("{sheet}:{line}: the header is missing required column(s) {}; every sheet needs origin, destination, depart_date, max_price and phone", .missing.join(", "))]
    MissingColumns {
        /// The sheet's name.
        sheet: String,
        /// The header's line.
        line: usize,
        /// The missing column names.
        missing: Vec<String>,
    },
    /// The header is separated by semicolons or tabs, not commas.
    #[error("{sheet}:{line}: the header is separated by {} rather than commas; save the sheet as comma-separated CSV (\"CSV UTF-8 (comma delimited)\")", delimiter_name(*.delimiter))]
    WrongDelimiter {
        /// The sheet's name.
        sheet: String,
        /// The header's line.
        line: usize,
        /// The separator found.
        delimiter: char,
    },
    /// A column appears twice in the header, so which one counts is ambiguous.
    #[error("{sheet}:{line}: the header has column `{column}` twice; keep one")]
    DuplicateColumn {
        /// The sheet's name.
        sheet: String,
        /// The header's line.
        line: usize,
        /// The repeated column.
        column: String,
    },
    /// The CSV reader failed (not expected once the text is valid UTF-8).
    #[error("cannot read routes sheet {sheet} as CSV: {source}")]
    Csv {
        /// The sheet's name.
        sheet: String,
        /// Why.
        #[source]
        source: csv::Error,
    },
}

fn delimiter_name(delimiter: char) -> &'static str {
    match delimiter {
        ';' => "semicolons",
        '\t' => "tabs",
        _ => "another character",
    }
}

/// Parses sheet bytes. `source` names the sheet in messages.
///
/// Pure: no IO and no clock (today comes from `options`), so every case is a
/// plain test. Fails only when the sheet as a whole is unusable; bad rows
/// land in [`Sheet::errors`].
pub fn parse(source: &str, bytes: &[u8], options: &SheetOptions) -> Result<Sheet, SheetError> {
    let text = decode(source, bytes)?;
    let text = bare_cr_to_lf(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut lines = LineLocator::new(text.as_bytes());
    let mut record = StringRecord::new();

    let (header, header_line) = loop {
        if !read(&mut reader, &mut record, source)? {
            return Err(SheetError::Empty {
                sheet: source.to_owned(),
            });
        }
        if is_skippable(&record) {
            continue;
        }
        let line = lines.line_of(&record);
        match Header::resolve(record.iter()) {
            Ok(header) => break (header, line),
            Err(problem) => {
                if let Some(delimiter) = other_delimiter(&record) {
                    return Err(SheetError::WrongDelimiter {
                        sheet: source.to_owned(),
                        line,
                        delimiter,
                    });
                }
                return Err(header_error(source, line, problem));
            }
        }
    };

    let mut sheet = Sheet::default();
    // One slot per line, reserved at once: growing by doubling would hold
    // the old and the new buffer together at the last step (a 100,000-row
    // sheet: ~36 MB of routes for ~18).
    let lines_left = text.as_bytes().iter().filter(|&&b| b == b'\n').count() + 1;
    sheet.routes.reserve_exact(lines_left.min(MAX_SHEET_ROWS));
    for name in &header.unknown {
        sheet.warnings.push(escape_controls(&format!(
            "{source}:{header_line}: column `{}` is not one farewatch knows; ignored (known columns: {})",
            shown(name),
            Column::ALL.map(Column::name).join(", ")
        )));
    }

    let mut phones = PhoneCache::new();
    // Each kept route's index in `sheet.routes`, by a hash of its identity
    // (8 bytes a row rather than the identity's text, ~60); identities
    // whose hash another kept route already has are kept whole.
    let mut kept = KeptRoutes::default();
    let mut duplicates = DuplicateRows::default();
    let mut warned_nameless = false;
    let mut rows = 0_usize;
    while read(&mut reader, &mut record, source)? {
        if is_skippable(&record) {
            continue;
        }
        rows += 1;
        if rows > MAX_SHEET_ROWS {
            return Err(SheetError::TooManyRows {
                sheet: source.to_owned(),
                limit: MAX_SHEET_ROWS,
            });
        }
        let line = lines.line_of(&record);
        if !warned_nameless && has_nameless_value(&header, &record) {
            warned_nameless = true;
            sheet.warnings.push(format!(
                "{source}:{line}: a value sits in a column with no header; such values are ignored"
            ));
        }
        let outcome = row::parse_row(source, line, &record, &header, options, &mut phones);
        if !outcome.errors.is_empty() {
            // The row's own warnings (a clipped range) would only distract
            // from the errors that keep it out.
            if record.iter().any(|field| field.contains('\n')) {
                sheet.warnings.push(format!(
                    "{source}:{line}: a quoted cell in this row runs over several lines; if that is not meant, look for a missing closing quote (\")"
                ));
            }
            sheet.errors.extend(outcome.errors);
            continue;
        }
        let Some(route) = outcome.route else {
            continue;
        };
        let id = route.id();
        match kept.find(&id, &sheet.routes) {
            // A row that is left out adds no warnings of its own: a
            // duplicate would repeat the kept row's, and a conflict is an error.
            Some(index) => {
                let kept = &sheet.routes[index];
                let differences = row::differences(kept, &route);
                if differences.is_empty() {
                    if duplicates.note(line) {
                        sheet.warnings.push(format!(
                            "{source}:{line}: duplicate of line {}; ignored",
                            kept.line
                        ));
                    }
                } else {
                    sheet
                        .errors
                        .push(conflict(source, line, kept.line, &differences));
                }
            }
            None => {
                kept.insert(id, sheet.routes.len());
                sheet.warnings.extend(outcome.warnings);
                sheet.routes.push(route);
            }
        }
    }
    sheet.warnings.extend(duplicates.summary(source));
    Ok(sheet)
}

/// The routes kept so far, found by identity ([`Route::id`]) through a
/// hash of it; a route whose hash collides with another's is kept by its
/// whole identity instead.
#[derive(Default)]
struct KeptRoutes {
    by_hash: HashMap<u64, usize>,
    collided: HashMap<String, usize>,
}

impl KeptRoutes {
    fn hash(id: &str) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id)
    }

    /// The index of the kept route whose identity is `id`.
    fn find(&self, id: &str, routes: &[Route]) -> Option<usize> {
        match self.by_hash.get(&Self::hash(id)) {
            Some(&index) if routes[index].id() == id => Some(index),
            Some(_) => self.collided.get(id).copied(),
            None => None,
        }
    }

    fn insert(&mut self, id: String, index: usize) {
        match self.by_hash.entry(Self::hash(&id)) {
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
            Entry::Occupied(_) => {
                self.collided.insert(id, index);
            }
        }
    }
}

/// Parses one row given as (column name, cell text) pairs rather than a CSV
/// line: the API's fare watches, validated by the very code that reads the
/// sheet, so the rules and messages are the same.
///
/// Names are the sheet's columns, lower-case (`origin`, `max_price`, ...);
/// a column left out is an empty cell (the default, or "is empty" for a
/// required one). `source` and `line` name the row in messages. Returns
/// the route and its warnings (a clipped date range, a formula-like label),
/// or every problem found: each [`RowError::column`] is a column name, or
/// `row` for the row as a whole, or an unknown name given in `fields`.
pub fn parse_fields(
    source: &str,
    line: usize,
    fields: &[(&str, &str)],
    options: &SheetOptions,
) -> Result<(Route, Vec<String>), Vec<RowError>> {
    let unknown: Vec<RowError> = fields
        .iter()
        .filter(|(name, _)| !Column::ALL.iter().any(|c| c.name() == *name))
        .map(|(name, _)| RowError {
            source: source.to_owned(),
            line,
            column: escape_controls(&shown(name)),
            message: format!(
                "is not a column farewatch knows; expected some of {}",
                Column::ALL.map(Column::name).join(", ")
            ),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let header = Header::every_column();
    let record: StringRecord = Column::ALL
        .iter()
        .map(|column| {
            fields
                .iter()
                .find(|(name, _)| *name == column.name())
                .map_or("", |(_, value)| *value)
        })
        .collect();
    let mut phones = PhoneCache::new();
    let outcome = row::parse_row(source, line, &record, &header, options, &mut phones);
    match outcome.route {
        Some(route) if outcome.errors.is_empty() => Ok((route, outcome.warnings)),
        _ => Err(outcome.errors),
    }
}

/// The error for a row on `line` that repeats the search of the row kept
/// from `kept_line` but sets `differences` otherwise. Its identity
/// ([`Route::id`]) leaves the rule out, so the two would share one alert
/// state and cannot both run; the first one keeps running, and the error
/// says so, so an edit written as a new row is never lost without a word.
fn conflict(source: &str, line: usize, kept_line: usize, differences: &[String]) -> RowError {
    let listed = match differences {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    RowError {
        source: source.to_owned(),
        line,
        column: "row".to_owned(),
        message: escape_controls(&format!(
            "repeats the search on line {kept_line} with a different {listed}; only line {kept_line} runs: delete one of the two rows, or make them the same"
        )),
    }
}

/// Reads the sheet from a path, an http(s) URL or standard input
/// ([`STDIN`]), then parses it.
///
/// A URL is fetched with `client` (which follows redirects, as Google's
/// published links need) within [`SHEET_FETCH_TIMEOUT`]; the sheet is named
/// by its [`display_name`] in messages.
pub async fn load(
    location: &str,
    client: &reqwest::Client,
    options: &SheetOptions,
) -> Result<Sheet, SheetError> {
    let bytes = read_source(location, client).await?;
    parse(&display_name(location), &bytes, options)
}

/// How a sheet at `location` is named in messages: a path as given, a URL
/// without its credentials (user info and secret query parameters, see
/// [`redact_url`](crate::redact::redact_url)), standard input ([`STDIN`])
/// as [`STDIN_NAME`].
pub fn display_name(location: &str) -> String {
    if location == STDIN {
        STDIN_NAME.to_owned()
    } else if is_url(location) {
        crate::redact::redact_url(location)
    } else {
        location.to_owned()
    }
}

/// Reads a CSV from a path, an http(s) URL, or standard input for
/// [`STDIN`] (`-`), with the sheet's size cap and errors (also used for the
/// flight watch list).
///
/// Standard input is read to its end, once: a second read (a daemon's next
/// cycle, or a second list also given as `-`) finds it empty.
pub async fn read_source(location: &str, client: &reqwest::Client) -> Result<Vec<u8>, SheetError> {
    if location == STDIN {
        read_stdin().await
    } else if is_url(location) {
        fetch(location, client).await
    } else {
        read_file(location).await
    }
}

fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

async fn read_file(location: &str) -> Result<Vec<u8>, SheetError> {
    let path = PathBuf::from(location);
    // tokio's `fs` feature is not enabled; this is what `tokio::fs` does anyway.
    let read_path = path.clone();
    let read = tokio::task::spawn_blocking(move || read_file_blocking(&read_path))
        .await
        .map_err(|join_error| std::io::Error::other(join_error.to_string()));
    match read {
        Ok(Ok(Some(bytes))) => Ok(bytes),
        Ok(Ok(None)) => Err(SheetError::TooLarge {
            sheet: location.to_owned(),
            limit: MAX_SHEET_BYTES,
        }),
        Ok(Err(source)) | Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            Err(SheetError::NotFound { path })
        }
        Ok(Err(source)) | Err(source) => Err(SheetError::Read { path, source }),
    }
}

async fn read_stdin() -> Result<Vec<u8>, SheetError> {
    // A blocking read on the blocking pool, as `tokio::io::stdin` does (and
    // as `read_file` does for files): tokio's `io-std` feature is not enabled.
    let read = tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        // One byte past the cap tells a sheet at the cap from a bigger one.
        std::io::stdin()
            .lock()
            .take(MAX_SHEET_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    })
    .await
    .map_err(|join_error| std::io::Error::other(join_error.to_string()));
    match read {
        Ok(Ok(bytes)) if bytes.len() > MAX_SHEET_BYTES => Err(SheetError::TooLarge {
            sheet: STDIN_NAME.to_owned(),
            limit: MAX_SHEET_BYTES,
        }),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(source)) | Err(source) => Err(SheetError::Stdin { source }),
    }
}

/// The file's bytes, or `None` when its size is over [`MAX_SHEET_BYTES`]
/// (checked before reading, so a huge file is never loaded).
fn read_file_blocking(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > MAX_SHEET_BYTES as u64 {
        return Ok(None);
    }
    // Read one byte past the cap, in case the file grew since the check.
    let mut bytes = Vec::new();
    file.take(MAX_SHEET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_SHEET_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}

async fn fetch(url: &str, client: &reqwest::Client) -> Result<Vec<u8>, SheetError> {
    let shown = display_name(url);
    // reqwest's message quotes the URL it was given; the shown one is enough.
    let fetch_error = |source: reqwest::Error| SheetError::Fetch {
        url: shown.clone(),
        source: source.without_url(),
    };
    let response = client
        .get(url)
        .timeout(SHEET_FETCH_TIMEOUT)
        .send()
        .await
        .map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(SheetError::HttpStatus {
            url: shown.clone(),
            status,
        });
    }
    let not_csv = || SheetError::NotCsv { url: shown.clone() };
    let declared_html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("text/html"));
    if declared_html {
        return Err(not_csv());
    }
    let body = crate::upstream::http::read_body_capped(response, MAX_SHEET_BYTES)
        .await
        .map_err(|e| match e {
            crate::upstream::http::BodyError::TooLarge { limit } => SheetError::TooLarge {
                sheet: shown.clone(),
                limit,
            },
            crate::upstream::http::BodyError::Transport(source) => fetch_error(source),
        })?;
    // A sign-in or error page served as text/plain still starts with a tag.
    if strip_bom(&body).trim_ascii_start().starts_with(b"<") {
        return Err(not_csv());
    }
    Ok(body.to_vec())
}

/// Checks size and encoding ([`text::decode`]), and returns the text
/// without its BOM.
fn decode<'b>(source: &str, bytes: &'b [u8]) -> Result<&'b str, SheetError> {
    text::decode(bytes, MAX_SHEET_BYTES).map_err(|problem| {
        let sheet = source.to_owned();
        match problem {
            TextError::TooLarge { limit } => SheetError::TooLarge { sheet, limit },
            TextError::Utf16 => SheetError::Utf16 { sheet },
            TextError::NotUtf8 { line } => SheetError::NotUtf8 { sheet, line },
            TextError::Empty => SheetError::Empty { sheet },
        }
    })
}

fn read(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut StringRecord,
    source: &str,
) -> Result<bool, SheetError> {
    reader
        .read_record(record)
        .map_err(|source_error| SheetError::Csv {
            sheet: source.to_owned(),
            source: source_error,
        })
}

/// Blank rows (all cells empty, as spreadsheets export them) and comment rows
/// (first cell starting with `#`, which the CSV reader leaves in when the
/// `#` is quoted or indented).
pub(crate) fn is_skippable(record: &StringRecord) -> bool {
    record.iter().all(|field| field.trim().is_empty())
        || record
            .get(0)
            .is_some_and(|first| first.trim_start().starts_with('#'))
}

fn has_nameless_value(header: &Header, record: &StringRecord) -> bool {
    header
        .nameless
        .iter()
        .any(|&i| record.get(i).is_some_and(|v| !v.trim().is_empty()))
}

/// The separator a header uses if it is not a comma: European spreadsheets
/// save "CSV" with semicolons, and a copy-paste gives tabs.
fn other_delimiter(header: &StringRecord) -> Option<char> {
    [';', '\t'].into_iter().find(|&delimiter| {
        header.iter().any(|field| field.contains(delimiter))
            && Header::resolve(header.iter().flat_map(|field| field.split(delimiter))).is_ok()
    })
}

fn header_error(source: &str, line: usize, problem: HeaderProblem) -> SheetError {
    let sheet = source.to_owned();
    match problem {
        HeaderProblem::NoKnownColumns => SheetError::NoHeader { sheet, line },
        HeaderProblem::Missing(missing) => SheetError::MissingColumns {
            sheet,
            line,
            missing: missing.into_iter().map(str::to_owned).collect(),
        },
        HeaderProblem::Duplicate(column) => SheetError::DuplicateColumn {
            sheet,
            line,
            column: column.to_owned(),
        },
    }
}

/// Finds the line a record starts on.
///
/// The CSV reader's own position for a record is where it *began looking*:
/// before any blank or comment lines it skipped, and before the `\n` of a
/// CRLF ending. So this walks from there past what the reader skips, and
/// counts newlines up to the record's first byte (incrementally, so a whole
/// sheet costs one pass).
pub(crate) struct LineLocator<'t> {
    text: &'t [u8],
    offset: usize,
    line: usize,
}

impl<'t> LineLocator<'t> {
    pub(crate) fn new(text: &'t [u8]) -> Self {
        Self {
            text,
            offset: 0,
            line: 1,
        }
    }

    pub(crate) fn line_of(&mut self, record: &StringRecord) -> usize {
        let from = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.offset)
            .max(self.offset);
        let mut at = from;
        loop {
            match self.text.get(at) {
                Some(b'\r' | b'\n') => at += 1,
                // The reader skips comment lines only at the start of a record.
                Some(b'#') => {
                    at = self.text[at..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(self.text.len(), |nl| at + nl + 1);
                }
                _ => break,
            }
        }
        let at = at.min(self.text.len());
        self.line += self.text[self.offset..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.offset = at;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_routes_tell_apart_identities_whose_hashes_collide() {
        let csv = "origin,destination,depart_date,max_price,currency,phone\n\
                   LHR,JFK,2030-05-01,300,GBP,+447911123456\n\
                   LGW,JFK,2030-05-01,300,GBP,+447911123456\n";
        let options = SheetOptions {
            default_currency: Currency::parse("GBP").unwrap(),
            today: jiff::civil::date(2030, 1, 1),
        };
        let sheet = parse("routes.csv", csv.as_bytes(), &options).unwrap();
        assert_eq!(sheet.routes.len(), 2, "{:?}", sheet.errors);
        let (first, second) = (sheet.routes[0].id(), sheet.routes[1].id());
        let mut kept = KeptRoutes::default();
        kept.insert(first.clone(), 0);
        // The second's hash taken by the first, as if they collided.
        kept.by_hash.insert(KeptRoutes::hash(&second), 0);
        assert_eq!(kept.find(&second, &sheet.routes), None, "not the first");
        kept.insert(second.clone(), 1);
        assert_eq!(kept.find(&second, &sheet.routes), Some(1));
        assert_eq!(kept.find(&first, &sheet.routes), Some(0));
    }
}
