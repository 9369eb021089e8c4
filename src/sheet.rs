//! STUB — to be implemented (helper: sheet). The public API below is the contract.
//!
//! Reading the routes sheet: a CSV file or an http(s) URL (a Google Sheet
//! published as CSV) into validated [`Route`]s, with every bad row reported
//! as `NAME:LINE: column: what is wrong and what is expected`.

use std::fmt;

use jiff::civil::Date;

use crate::domain::Currency;
use crate::route::Route;

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
    /// The sheet's name as shown to the user (`routes.csv`, or the URL).
    pub source: String,
    /// 1-based line in the file.
    pub line: usize,
    /// The column at fault (lower-case header name).
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
    /// Non-fatal remarks (unknown columns, once each).
    pub warnings: Vec<String>,
}

/// The sheet cannot be used at all (exit code 3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// Placeholder.
    #[error("sheet error: {0}")]
    Other(String),
}

/// Parses sheet bytes. `source` names the sheet in messages.
pub fn parse(source: &str, bytes: &[u8], options: &SheetOptions) -> Result<Sheet, SheetError> {
    let _ = (source, bytes, options);
    todo!()
}

/// Reads the sheet from a path or an http(s) URL, then parses it.
pub async fn load(
    location: &str,
    client: &reqwest::Client,
    options: &SheetOptions,
) -> Result<Sheet, SheetError> {
    let _ = (location, client, options);
    todo!()
}
