//! The routes sheet: parsing, row errors with exact `file:LINE: column:`
//! prefixes, fatal sheet errors, and loading from files and URLs.

use farewatch::domain::{Currency, DateRange, Iata, Recipient};
use farewatch::route::MAX_LOOKUPS_PER_ROW;
use farewatch::rules::MinDrop;
use farewatch::sheet::{
    self, Sheet, SheetError, SheetOptions, MAX_DUPLICATE_WARNINGS, MAX_SHEET_BYTES, MAX_SHEET_ROWS,
};
use jiff::civil::date;
use jiff::SignedDuration;
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEADER: &str = "origin,destination,depart_date,max_price,phone\n";
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sheets");

fn options() -> SheetOptions {
    SheetOptions {
        default_currency: Currency::EUR,
        today: date(2026, 11, 24),
    }
}

fn parse(text: &str) -> Sheet {
    sheet::parse("routes.csv", text.as_bytes(), &options()).expect("the sheet is usable")
}

fn parse_err(bytes: &[u8]) -> SheetError {
    sheet::parse("routes.csv", bytes, &options()).expect_err("the sheet is unusable")
}

fn errors(sheet: &Sheet) -> Vec<String> {
    sheet.errors.iter().map(ToString::to_string).collect()
}

fn codes(codes: &[Iata]) -> Vec<&str> {
    codes.iter().map(Iata::as_str).collect()
}

fn range(raw: &str) -> DateRange {
    DateRange::parse(raw).unwrap()
}

#[test]
fn reads_every_column_in_any_order_and_case() {
    let sheet = parse(concat!(
        " Label ,PHONE,Cooldown,MIN_DROP,Active,Adults,Currency,Return_Date,Max Price,depart-date,DESTINATION,Origin\n",
        "Easter,+44 20 7946 0123|+14155552671,6h,5%,no,2,gbp,2027-04-05,420.50,2027-03-26,jfk,lhr\n",
        "  Cheap  ,  +442079460123  ,1d,25,YES,  ,  ,  ,99,2027-03-01,CDG,LHR\n",
    ));
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(sheet.warnings, Vec::<String>::new());
    assert_eq!(sheet.routes.len(), 2);

    let easter = &sheet.routes[0];
    assert_eq!(easter.line, 2);
    assert_eq!(easter.label.as_deref(), Some("Easter"));
    assert_eq!(codes(&easter.origins), ["LHR"]);
    assert_eq!(codes(&easter.destinations), ["JFK"]);
    assert_eq!(easter.depart, range("2027-03-26"));
    assert_eq!(easter.return_dates, Some(range("2027-04-05")));
    assert_eq!(easter.adults, 2);
    assert_eq!(easter.currency().as_str(), "GBP");
    assert_eq!(easter.rule.max_price.minor, 42050);
    assert_eq!(easter.rule.min_drop, MinDrop::BasisPoints(500));
    assert_eq!(easter.rule.cooldown, Some(SignedDuration::from_hours(6)));
    assert_eq!(
        easter.recipients,
        [
            Recipient::parse("+442079460123").unwrap(),
            Recipient::parse("+14155552671").unwrap()
        ]
    );
    assert!(!easter.active);

    let cheap = &sheet.routes[1];
    assert_eq!(cheap.line, 3);
    assert_eq!(cheap.label.as_deref(), Some("Cheap"));
    assert_eq!(cheap.rule.min_drop, MinDrop::Amount(2500));
    assert_eq!(cheap.rule.cooldown, Some(SignedDuration::from_hours(24)));
    assert_eq!(cheap.return_dates, None, "an empty return_date is one-way");
    assert_eq!(cheap.adults, 1, "an empty adults cell is the default");
    assert_eq!(cheap.currency(), Currency::EUR);
    assert!(cheap.active);
}

#[test]
fn expands_airports_and_date_ranges() {
    let sheet = parse(&format!(
        "{HEADER}LHR|LGW|lhr,JFK,2027-03-01..2027-03-03,400,+442079460123\n"
    ));
    assert_eq!(errors(&sheet), Vec::<String>::new());
    let route = &sheet.routes[0];
    assert_eq!(codes(&route.origins), ["LHR", "LGW"], "repeats are dropped");
    assert_eq!(route.depart, range("2027-03-01..2027-03-03"));
    assert_eq!(route.lookups().len(), 6);

    let round_trip = parse(
        "origin,destination,depart_date,return_date,max_price,phone\n\
         LHR,JFK|EWR,2027-03-01..2027-03-02,2027-03-02..2027-03-03,400,+442079460123\n",
    );
    assert_eq!(errors(&round_trip), Vec::<String>::new());
    // 2 pairs × {(1st,2nd), (1st,3rd), (2nd,2nd), (2nd,3rd)}
    assert_eq!(round_trip.routes[0].lookups().len(), 8);
}

#[test]
fn fills_defaults_when_optional_columns_are_absent() {
    let options = SheetOptions {
        default_currency: Currency::parse("USD").unwrap(),
        today: date(2026, 11, 24),
    };
    let sheet = sheet::parse(
        "routes.csv",
        format!("{HEADER}SFO,ORD,2027-03-01,300,+14155552671\n").as_bytes(),
        &options,
    )
    .unwrap();
    let route = &sheet.routes[0];
    assert_eq!(route.currency().as_str(), "USD");
    assert_eq!(route.rule.max_price.minor, 30000);
    assert_eq!(route.adults, 1);
    assert!(route.active);
    assert_eq!(route.rule.min_drop, MinDrop::Zero);
    assert_eq!(route.rule.cooldown, None);
    assert_eq!(route.label, None);
    assert_eq!(route.return_dates, None);
}

#[test]
fn a_zero_cooldown_means_none() {
    let sheet = parse(concat!(
        "origin,destination,depart_date,max_price,cooldown,phone\n",
        "LHR,JFK,2027-03-01,400,0,+442079460123\n",
        "LHR,BOS,2027-03-01,400,0h,+442079460123\n",
        "LHR,SFO,2027-03-01,400,6h,+442079460123\n",
    ));
    assert_eq!(errors(&sheet), Vec::<String>::new());
    let cooldowns: Vec<_> = sheet.routes.iter().map(|r| r.rule.cooldown).collect();
    assert_eq!(
        cooldowns,
        [None, None, Some(jiff::SignedDuration::from_hours(6))]
    );
}

#[test]
fn reports_each_bad_cell_with_file_line_and_column() {
    let sheet = parse(concat!(
        "origin,destination,depart_date,return_date,max_price,currency,adults,min_drop,cooldown,active,phone\n",
        "LH,JFK,2027-03-01,,400,,,,,,+442079460123\n",
        "LHR,JFK|J1K,2027-03-01,,400,,,,,,+442079460123\n",
        "LHR,JFK,01/03/2027,,400,,,,,,+442079460123\n",
        "LHR,JFK,2027-03-05,2027-03-01,400,,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,4.005,,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,0,,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,EURO,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,,10,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,,,-5%,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,,,,-6h,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,,,,,maybe,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,,,,,,07700900123\n",
        "LHR,JFK,2027-03-01,,400,,,,,,+1 555 0100\n",
        "LHR,,2027-03-01,,400,,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400,JPY,,,,,+442079460123\n",
        "LHR,JFK,2027-03-01,,400.5,JPY,,,,,+442079460123\n",
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: origin: `LH` is not an IATA code; expected three letters such as LHR",
            "routes.csv:3: destination: `J1K` is not an IATA code; expected three letters such as LHR",
            "routes.csv:4: depart_date: `01/03/2027` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
            "routes.csv:5: return_date: `2027-03-01` has no day on or after the departure (2027-03-05); expected a return date on or after it",
            "routes.csv:6: max_price: `4.005` has more decimals than EUR allows (2); expected the most you will pay, such as 349.99",
            "routes.csv:7: max_price: `0` is not above zero; expected the most you will pay, such as 349.99",
            "routes.csv:8: currency: `EURO` is not a currency; expected an ISO 4217 code such as EUR",
            "routes.csv:9: adults: `10` is not a number of adults; expected a whole number from 1 to 9",
            "routes.csv:10: min_drop: `-5%` must be between 0% and 100%; expected an amount such as 25 or a percentage such as 5%",
            "routes.csv:11: cooldown: `-6h` is negative; expected a duration such as 6h, 30m or 1d, or 0 for none",
            "routes.csv:12: active: `maybe` is not true or false; expected true or false (yes/no, y/n, 1/0)",
            "routes.csv:13: phone: `07700900123` is not an E.164 phone number; expected a leading + and country code, like +447911123456",
            "routes.csv:14: phone: `+1 555 0100` is not a valid number for its country; expected E.164 such as +447911123456",
            "routes.csv:15: destination: is empty; expected IATA codes such as LHR, several joined by | (LHR|LGW)",
            "routes.csv:17: max_price: `400.5` has more decimals than JPY allows (0); expected the most you will pay, such as 349.99",
        ]
    );
    assert_eq!(sheet.routes.len(), 1, "only the JPY row on line 16 is good");
    assert_eq!(sheet.routes[0].line, 16);
    assert_eq!(sheet.routes[0].rule.max_price.minor, 400);
}

#[test]
fn reports_every_bad_cell_of_a_row_in_column_order() {
    let sheet = parse(concat!(
        "phone,max_price,depart_date,destination,origin\n",
        "+44,abc,2027-13-01,JFK,L\n",
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: phone: `+44` is not a phone number; expected E.164 such as +447911123456",
            "routes.csv:2: max_price: `abc` is not an amount; expected a decimal number such as 349.99",
            "routes.csv:2: depart_date: `2027-13-01` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
            "routes.csv:2: origin: `L` is not an IATA code; expected three letters such as LHR",
        ]
    );
    assert!(sheet.routes.is_empty());
}

#[test]
fn counts_lines_past_blank_lines_comments_quoted_newlines_and_crlf() {
    let text = concat!(
        "# routes for the family\r\n",
        "\r\n",
        "origin,destination,depart_date,max_price,phone,label\r\n",
        "\r\n",
        "# winter\r\n",
        "LHR,JFK,2027-03-01,400,+442079460123,\"two\r\nlines\"\r\n",
        "   \r\n",
        ",,,,,\r\n",
        "\"# quoted comment\",with,\"a\nnewline\"\r\n",
        "XXXX,JFK,2027-03-01,400,+442079460123,after all that\r\n",
        "LHR,JFK,2027-03-02,400,+442079460123,\"three\n",
        "lines\n",
        "here\"\n",
        "LHR,JFK,2027-03-03,400,+442079460123,\n",
    );
    let sheet = parse(text);
    assert_eq!(
        errors(&sheet),
        ["routes.csv:12: origin: `XXXX` is not an IATA code; expected three letters such as LHR"]
    );
    let lines: Vec<usize> = sheet.routes.iter().map(|r| r.line).collect();
    assert_eq!(lines, [6, 13, 16]);
    assert_eq!(sheet.routes[0].label.as_deref(), Some("two  lines"));
}

#[test]
fn rejects_departures_in_the_past_and_clips_ranges_that_straddle_today() {
    let sheet = parse(&format!(
        "{HEADER}\
         LHR,JFK,2026-11-23,400,+442079460123\n\
         LHR,JFK,2026-10-01..2026-11-23,400,+442079460123\n\
         LHR,JFK,2026-11-24,400,+442079460123\n\
         LHR,JFK,2026-11-20..2026-11-30,400,+442079460123\n\
         LHR,JFK,2026-11-20..2026-11-30,-1,+442079460123\n"
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: depart_date: `2026-11-23` is in the past (today is 2026-11-24); expected today or a later date",
            "routes.csv:3: depart_date: `2026-10-01..2026-11-23` is entirely in the past (today is 2026-11-24); expected today or a later date",
            "routes.csv:6: max_price: `-1` is not above zero; expected the most you will pay, such as 349.99",
        ]
    );
    assert_eq!(sheet.routes.len(), 2);
    assert_eq!(sheet.routes[0].depart, range("2026-11-24"), "today is fine");
    // Kept as written, so the row's identity (and alert state) is stable
    // from day to day; the engine skips the past days.
    assert_eq!(sheet.routes[1].depart, range("2026-11-20..2026-11-30"));
    let today: jiff::civil::Date = "2026-11-24".parse().unwrap();
    let searched = sheet.routes[1].lookups_from(today);
    assert_eq!(searched.len(), 7);
    assert!(searched.iter().all(|k| k.depart >= today));
    assert_eq!(
        sheet.warnings,
        ["routes.csv:5: depart_date: `2026-11-20..2026-11-30` starts before today; searching from 2026-11-24"],
        "a rejected row (line 6) gets its errors, not the clipping remark"
    );
}

#[test]
fn rejects_rows_that_expand_past_the_cap_or_to_nothing() {
    assert_eq!(
        MAX_LOOKUPS_PER_ROW, 100,
        "the messages below assume the cap"
    );
    let sheet = parse(
        "origin,destination,depart_date,return_date,max_price,phone\n\
         LHR|LGW|STN,JFK|EWR,2027-03-01..2027-03-17,,400,+442079460123\n\
         LHR,JFK,2027-03-01..2027-03-10,2027-03-01..2027-03-20,400,+442079460123\n\
         LHR,JFK,2027-01-01..2027-04-10,,400,+442079460123\n\
         LHR,JFK,2027-01-01..2027-04-11,,400,+442079460123\n\
         LHR|LHR,lhr,2027-03-01,,400,+442079460123\n\
         LHR,JFK,2026-11-24..9999-12-31,2026-11-24..9999-12-31,400,+442079460123\n",
    );
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: row: expands to 102 searches (6 airport pairs × 17 dates), more than the 100 a row may have; narrow the airports or dates",
            "routes.csv:3: row: expands to 155 searches (1 airport pair × 155 departure/return date pairs), more than the 100 a row may have; narrow the airports or dates",
            "routes.csv:5: row: expands to 101 searches (1 airport pair × 101 dates), more than the 100 a row may have; narrow the airports or dates",
            "routes.csv:6: destination: every destination is also the origin (LHR-LHR); expected a destination different from the origin",
            "routes.csv:7: row: expands to 4240211254786 searches (1 airport pair × 4240211254786 departure/return date pairs), more than the 100 a row may have; narrow the airports or dates",
        ]
    );
    assert_eq!(sheet.routes.len(), 1);
    assert_eq!(sheet.routes[0].line, 4, "exactly the cap is allowed");
    assert_eq!(sheet.routes[0].lookups().len(), MAX_LOOKUPS_PER_ROW);
}

#[test]
fn warns_once_per_unknown_column_and_ignores_its_values() {
    let sheet = parse(
        "origin,Notes,destination,depart_date,max_price,phone,notes,Seat\n\
         LHR,aisle please,JFK,2027-03-01,400,+442079460123,x,12A\n\
         LHR,,JFK,2027-03-02,400,+442079460123,y,14C\n",
    );
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(sheet.routes.len(), 2);
    assert_eq!(
        sheet.warnings,
        [
            "routes.csv:1: column `notes` is not one farewatch knows; ignored (known columns: origin, destination, depart_date, max_price, phone, return_date, currency, adults, min_drop, cooldown, active, label)",
            "routes.csv:1: column `seat` is not one farewatch knows; ignored (known columns: origin, destination, depart_date, max_price, phone, return_date, currency, adults, min_drop, cooldown, active, label)",
        ]
    );
}

#[test]
fn a_header_without_a_required_column_is_fatal() {
    let error = parse_err(b"origin,destination,depart_date,label\nLHR,JFK,2027-03-01,x\n");
    match &error {
        SheetError::MissingColumns {
            sheet,
            line,
            missing,
        } => {
            assert_eq!(sheet, "routes.csv");
            assert_eq!(*line, 1);
            assert_eq!(missing, &["max_price", "phone"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "routes.csv:1: the header is missing required column(s) max_price, phone; every sheet needs origin, destination, depart_date, max_price and phone"
    );
}

#[test]
fn a_sheet_without_a_header_or_with_a_repeated_column_is_fatal() {
    let error = parse_err(b"# no header here\nLHR,JFK,2027-03-01,400,+442079460123\n");
    assert!(
        matches!(error, SheetError::NoHeader { line: 2, .. }),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .contains("add a header row such as `origin,destination,depart_date,max_price,phone`"));

    let error = parse_err(b"origin,destination,depart_date,max_price,phone,Phone\n");
    assert!(
        matches!(&error, SheetError::DuplicateColumn { column, line: 1, .. } if column == "phone"),
        "{error:?}"
    );
}

#[test]
fn strips_a_utf8_byte_order_mark() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(format!("{HEADER}LHR,JFK,2027-03-01,400,+442079460123\n").as_bytes());
    let sheet = sheet::parse("routes.csv", &bytes, &options()).unwrap();
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(
        sheet.warnings,
        Vec::<String>::new(),
        "`origin` was recognised"
    );
    assert_eq!(sheet.routes.len(), 1);
}

#[test]
fn utf16_is_fatal_with_a_hint_to_save_as_utf8() {
    let text = format!("{HEADER}LHR,JFK,2027-03-01,400,+442079460123\n");
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let le_without_mark: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for bytes in [le, be, le_without_mark] {
        let error = parse_err(&bytes);
        assert!(matches!(error, SheetError::Utf16 { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "routes sheet routes.csv is UTF-16 text; save it as \"CSV UTF-8 (comma delimited)\" instead"
        );
    }
}

#[test]
fn bytes_that_are_not_utf8_are_fatal_and_located() {
    let error = parse_err(
        b"origin,destination,depart_date,max_price,phone,label\n\
          LHR,JFK,2027-03-01,400,+442079460123,ok\n\
          LHR,JFK,2027-03-02,400,+442079460123,caf\xE9\n",
    );
    assert!(
        matches!(error, SheetError::NotUtf8 { line: 3, .. }),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .contains("save it as \"CSV UTF-8 (comma delimited)\""));
}

#[test]
fn empty_and_header_only_sheets() {
    for empty in [
        &b""[..],
        b"\n\n",
        b"   \r\n",
        b"\xEF\xBB\xBF",
        b"# only a comment\n",
    ] {
        let error = parse_err(empty);
        assert!(
            matches!(error, SheetError::Empty { .. }),
            "{empty:?}: {error:?}"
        );
    }
    let sheet = parse(HEADER);
    assert!(sheet.routes.is_empty());
    assert!(sheet.errors.is_empty());
    assert!(sheet.warnings.is_empty());
}

#[test]
fn ragged_rows_report_missing_values_and_unexpected_extra_ones() {
    let sheet = parse(&format!(
        "{HEADER}\
         LHR,JFK,2027-03-01\n\
         LHR,JFK,2027-03-01,400,+442079460123,surprise\n\
         LHR,JFK,2027-03-02,400,+442079460123,,  ,\n"
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: max_price: is missing (the row has 3 fields but the header has 5); expected the most you will pay, such as 349.99",
            "routes.csv:2: phone: is missing (the row has 3 fields but the header has 5); expected E.164 numbers such as +14155550123, several joined by |",
            "routes.csv:3: row: has 6 fields but the header has 5; remove the extra cells or add a header for them",
        ]
    );
    assert_eq!(sheet.routes.len(), 1, "empty trailing cells are fine");
    assert_eq!(sheet.routes[0].line, 4);
}

#[test]
fn formula_cells_are_rejected_with_the_value_shown() {
    let sheet = parse(concat!(
        "origin,destination,depart_date,max_price,phone,label\n",
        "\"=HYPERLINK(\"\"http://evil.example/a-very-long-path\"\",\"\"LHR\"\")\",JFK,2027-03-01,400,+442079460123,\n",
        "LHR,JFK,2027-03-01,+SUM(A1:A9),=1+2,\n",
        "LHR,@JFK,2027-03-01,400,+442079460123,\n",
        "LHR,JFK,#REF!,400,+442079460123,\n",
        "LHR,JFK,2027-03-01,400,447700900123,\n",
        "LHR,JFK,2027-03-01,400,+442079460123,=HYPERLINK(\"x\")\n",
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: origin: `=HYPERLINK(\"http://evil.example/a-very-l…` is not an IATA code; expected three letters such as LHR; it looks like a spreadsheet formula: put the plain value in the cell (or format the cell as plain text)",
            "routes.csv:3: max_price: `+SUM(A1:A9)` is not an amount; expected a decimal number such as 349.99; it looks like a spreadsheet formula: put the plain value in the cell (or format the cell as plain text)",
            "routes.csv:3: phone: `=1+2` is not an E.164 phone number; expected a leading + and country code, like +447911123456; it looks like a spreadsheet formula: put the plain value in the cell (or format the cell as plain text)",
            "routes.csv:4: destination: `@JFK` is not an IATA code; expected three letters such as LHR; it looks like a spreadsheet formula: put the plain value in the cell (or format the cell as plain text)",
            "routes.csv:5: depart_date: `#REF!` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD; it looks like a spreadsheet error value: fix the formula that produced it",
            "routes.csv:6: phone: `447700900123` is not an E.164 phone number; expected a leading + and country code, like +447911123456; a spreadsheet may have turned it into a number: format the column as plain text and type the number with its leading +",
        ]
    );
    // A formula-like label is text, not a search parameter: kept, but said.
    assert_eq!(sheet.routes.len(), 1);
    assert_eq!(sheet.routes[0].label.as_deref(), Some("=HYPERLINK(\"x\")"));
    assert_eq!(
        sheet.warnings,
        ["routes.csv:7: label: `=HYPERLINK(\"x\")` looks like a spreadsheet formula; kept as plain text"]
    );
}

#[test]
fn messages_never_carry_control_characters() {
    let sheet = parse(concat!(
        "origin,destination,depart_date,max_price,phone,label\n",
        "\"LH\x1b[31mR\",JFK,2027-03-01,400,+442079460123,\n",
        "LHR,\"JF\u{200b}K\",2027-03-01,400,+442079460123,\"bell\x07 and\ttab\"\n",
        "LHR,JFK,\"2027-03-01..2027-03-0\n9\",400,+442079460123,\n",
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:2: origin: `LH\\u{1b}[31mR` is not an IATA code; expected three letters such as LHR",
            "routes.csv:3: destination: `JF\\u{200b}K` is not an IATA code; expected three letters such as LHR",
            "routes.csv:4: depart_date: `2027-03-0\\n9` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
        ]
    );
    for message in sheet
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(sheet.warnings.clone())
    {
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
}

#[test]
fn duplicate_rows_are_ignored_with_a_warning() {
    let sheet = parse(&format!(
        "{HEADER}\
         LHR|LGW,JFK,2027-03-01,400,+442079460123\n\
         LHR,JFK,2027-03-01,400,+442079460123\n\
         lgw|LHR,JFK,2027-03-01,400.00,+44 20 7946 0123\n"
    ));
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(sheet.routes.len(), 2);
    assert_eq!(
        sheet.warnings,
        ["routes.csv:4: duplicate of line 2; ignored"]
    );
}

/// Issue 12: a row that repeats a search with another threshold used to be
/// dropped as a duplicate (`routes.csv:4: duplicate of line 2; ignored`),
/// so the edit was lost behind a warning. Route identity leaves the rule
/// out (the alert state survives a threshold edit), so the two cannot both
/// run: the later row is an error naming both lines, and the first runs.
#[test]
fn a_row_repeating_a_search_with_another_max_price_is_an_error_naming_both_lines() {
    let sheet = parse(&format!(
        "{HEADER}\
         LHR|LGW,JFK,2027-03-01,300,+442079460123\n\
         LHR,CDG,2027-03-01,300,+442079460123\n\
         lgw|LHR,JFK,2027-03-01,350,+44 20 7946 0123\n"
    ));
    assert_eq!(
        errors(&sheet),
        ["routes.csv:4: row: repeats the search on line 2 with a different max_price (350.00 here, 300.00 on line 2); only line 2 runs: delete one of the two rows, or make them the same"]
    );
    assert_eq!(sheet.warnings, Vec::<String>::new(), "not a duplicate");
    let kept: Vec<(usize, i64)> = sheet
        .routes
        .iter()
        .map(|r| (r.line, r.rule.max_price.minor))
        .collect();
    assert_eq!(kept, [(2, 300_00), (3, 300_00)], "the first row runs");
}

#[test]
fn every_setting_that_differs_is_named_and_identical_repeats_stay_warnings() {
    let sheet = parse(concat!(
        "origin,destination,depart_date,max_price,phone,currency,min_drop,cooldown,active,label\n",
        "LHR,JFK,2027-03-01,99.5,+442079460123,GBP,5%,6h,yes,Easter\n",
        // The same row written differently: a duplicate.
        "lhr,jfk,2027-03-01,99.50,+44 20 7946 0123,gbp,5.0%,360m,1,Easter\n",
        "LHR,JFK,2027-03-01,99.5,+442079460123,GBP,2.5,1d 2h,no,\n",
        "LHR,JFK,2027-03-01,99.5,+442079460123,GBP,,,,Easter\n",
        // Another currency is another search.
        "LHR,JFK,2027-03-01,99.5,+442079460123,EUR,,,,\n",
    ));
    assert_eq!(
        errors(&sheet),
        [
            "routes.csv:4: row: repeats the search on line 2 with a different min_drop (2.50 here, 5% on line 2), cooldown (26h here, 6h on line 2), active (false here, true on line 2) and label (none here, `Easter` on line 2); only line 2 runs: delete one of the two rows, or make them the same",
            "routes.csv:5: row: repeats the search on line 2 with a different min_drop (0 here, 5% on line 2) and cooldown (none here, 6h on line 2); only line 2 runs: delete one of the two rows, or make them the same",
        ]
    );
    assert_eq!(
        sheet.warnings,
        ["routes.csv:3: duplicate of line 2; ignored"]
    );
    let lines: Vec<usize> = sheet.routes.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 6]);
}

#[test]
fn a_repeat_is_compared_with_the_row_that_runs_not_with_a_rejected_one() {
    let sheet = parse(&format!(
        "{HEADER}\
         LHR,JFK,2027-03-01,300,+442079460123\n\
         LHR,JFK,2027-03-01,350,+442079460123\n\
         LHR,JFK,2027-03-01,350,+442079460123\n\
         LHR,JFK,2027-03-01,300,+442079460123\n"
    ));
    let lines: Vec<(usize, &str)> = sheet
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(lines, [(3, "row"), (4, "row")]);
    assert!(
        sheet.errors[1].message.contains("on line 2"),
        "{:?}",
        sheet.errors
    );
    assert_eq!(
        sheet.warnings,
        ["routes.csv:5: duplicate of line 2; ignored"]
    );
    assert_eq!(sheet.routes.len(), 1);
}

#[test]
fn thousands_of_duplicate_rows_give_ten_warnings_and_one_summary() {
    let mut text = String::from(HEADER);
    // Line 2 is kept; lines 3..=5002 repeat it, with a distinct row at 1000.
    for line in 2..=5002 {
        if line == 1000 {
            text.push_str("LHR,CDG,2027-03-01,400,+442079460123\n");
        } else {
            text.push_str("LHR,JFK,2027-03-01,400,+442079460123\n");
        }
    }
    let sheet = parse(&text);
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(sheet.routes.len(), 2);
    assert_eq!(sheet.warnings.len(), MAX_DUPLICATE_WARNINGS + 1);
    let first_ten: Vec<String> = (3..3 + MAX_DUPLICATE_WARNINGS)
        .map(|line| format!("routes.csv:{line}: duplicate of line 2; ignored"))
        .collect();
    assert_eq!(sheet.warnings[..MAX_DUPLICATE_WARNINGS], first_ten[..]);
    assert_eq!(
        sheet.warnings[MAX_DUPLICATE_WARNINGS],
        format!(
            "routes.csv:13: {} more duplicate rows ignored (lines 13-999, 1001-5002)",
            5002 - 2 - 1 - MAX_DUPLICATE_WARNINGS
        )
    );
}

#[test]
fn a_duplicate_adds_none_of_its_own_warnings() {
    // Both rows start before today: the kept row says so, once.
    let sheet = parse(&format!(
        "{HEADER}\
         LHR,JFK,2026-11-20..2026-11-30,400,+442079460123\n\
         LHR,JFK,2026-11-20..2026-11-30,400,+442079460123\n"
    ));
    assert_eq!(
        sheet.warnings,
        [
            "routes.csv:2: depart_date: `2026-11-20..2026-11-30` starts before today; searching from 2026-11-24",
            "routes.csv:3: duplicate of line 2; ignored",
        ]
    );
}

#[test]
fn a_sheet_over_the_size_limit_is_fatal() {
    let mut bytes = HEADER.as_bytes().to_vec();
    let row = b"LHR,JFK,2027-03-01,400,+442079460123\n";
    while bytes.len() <= MAX_SHEET_BYTES {
        bytes.extend_from_slice(row);
    }
    let error = parse_err(&bytes);
    assert!(
        matches!(error, SheetError::TooLarge { limit, .. } if limit == MAX_SHEET_BYTES),
        "{error:?}"
    );
    assert!(error.to_string().contains("10 MiB"));
}

#[test]
fn a_sheet_over_the_row_limit_is_fatal() {
    let mut text = HEADER.to_owned();
    for _ in 0..=MAX_SHEET_ROWS {
        text.push_str("LHR,JFK,2027-03-01,400,+442079460123\n");
    }
    assert!(text.len() < MAX_SHEET_BYTES);
    let error = parse_err(text.as_bytes());
    assert!(
        matches!(error, SheetError::TooManyRows { limit, .. } if limit == MAX_SHEET_ROWS),
        "{error:?}"
    );
}

#[test]
fn a_semicolon_separated_sheet_is_fatal_with_a_hint() {
    let error = parse_err(b"origin;destination;depart_date;max_price;phone\n");
    assert!(
        matches!(error, SheetError::WrongDelimiter { delimiter: ';', .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("separated by semicolons"));
}

#[test]
fn the_shipped_example_sheet_loads_cleanly() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.csv")).unwrap();
    let sheet = sheet::parse("routes.csv", &bytes, &options()).unwrap();
    assert_eq!(errors(&sheet), Vec::<String>::new());
    assert_eq!(sheet.warnings, Vec::<String>::new());
    assert_eq!(sheet.routes.len(), 8);
    let currencies: std::collections::BTreeSet<String> = sheet
        .routes
        .iter()
        .map(|r| r.currency().to_string())
        .collect();
    assert_eq!(currencies, ["EUR", "GBP", "USD"].map(String::from).into());
    assert!(sheet.routes.iter().any(|r| !r.active));
    assert!(sheet.routes.iter().any(|r| r.origins.len() > 1));
    assert!(sheet.routes.iter().any(|r| r.depart.len() > 1));
    assert!(sheet
        .routes
        .iter()
        .any(|r| r.return_dates.is_some_and(|d| d.len() > 1)));
    assert!(sheet
        .routes
        .iter()
        .any(|r| matches!(r.rule.min_drop, MinDrop::Amount(_))));
    assert!(sheet
        .routes
        .iter()
        .any(|r| matches!(r.rule.min_drop, MinDrop::BasisPoints(500))));
    assert!(sheet.routes.iter().any(|r| r.rule.cooldown.is_some()));
    assert!(sheet.routes.iter().all(|r| r.label.is_some()));
}

mod data_files {
    use super::*;

    fn load_file(name: &str) -> Result<Sheet, SheetError> {
        let bytes = std::fs::read(format!("{DATA}/{name}")).unwrap();
        sheet::parse(name, &bytes, &options())
    }

    #[test]
    fn mixed_errors() {
        let sheet = load_file("mixed-errors.csv").unwrap();
        assert_eq!(
            errors(&sheet),
            [
                "mixed-errors.csv:6: origin: `LHX1` is not an IATA code; expected three letters such as LHR",
                "mixed-errors.csv:9: depart_date: `2027-02-30` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
                "mixed-errors.csv:10: max_price: `4.005` has more decimals than EUR allows (2); expected the most you will pay, such as 349.99",
                "mixed-errors.csv:10: phone: `07700900123` is not an E.164 phone number; expected a leading + and country code, like +447911123456",
            ]
        );
        let lines: Vec<usize> = sheet.routes.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 7, 12]);
        assert_eq!(
            sheet.routes[1].label.as_deref(),
            Some("a label over two lines")
        );
        assert_eq!(sheet.warnings.len(), 1, "{:?}", sheet.warnings);
        assert!(sheet.warnings[0]
            .starts_with("mixed-errors.csv:2: column `notes` is not one farewatch knows"));
    }

    #[test]
    fn excel_export_with_bom_and_crlf() {
        let sheet = load_file("excel-bom-crlf.csv").unwrap();
        assert_eq!(
            errors(&sheet),
            ["excel-bom-crlf.csv:5: max_price: `abc` is not an amount; expected a decimal number such as 349.99"]
        );
        let lines: Vec<usize> = sheet.routes.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(sheet.routes[1].rule.max_price.minor, 40050);
        assert_eq!(sheet.routes[1].currency().as_str(), "GBP");
    }

    #[test]
    fn fatal_sheets() {
        let error = load_file("missing-phone.csv").unwrap_err();
        assert!(
            matches!(&error, SheetError::MissingColumns { missing, .. } if missing == &["phone"]),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .starts_with("missing-phone.csv:1: the header is missing required column(s) phone;"));

        let error = load_file("semicolons.csv").unwrap_err();
        assert!(
            matches!(
                error,
                SheetError::WrongDelimiter {
                    delimiter: ';',
                    line: 1,
                    ..
                }
            ),
            "{error:?}"
        );

        let error = load_file("windows-1252.csv").unwrap_err();
        assert!(
            matches!(error, SheetError::NotUtf8 { line: 2, .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "routes sheet windows-1252.csv is not UTF-8 text (line 2 has bytes that are not UTF-8); save it as \"CSV UTF-8 (comma delimited)\""
        );

        let error = load_file("utf16le.csv").unwrap_err();
        assert!(matches!(error, SheetError::Utf16 { .. }), "{error:?}");
    }
}

#[test]
fn a_row_with_an_unclosed_quote_gets_a_hint() {
    let sheet = parse(&format!(
        "{HEADER}LHR,\"JFK,2027-03-01,400,+442079460123\nLHR,JFK,2027-03-02,400,+442079460123\n"
    ));
    assert!(
        sheet.routes.is_empty(),
        "the rest of the file is inside the quote"
    );
    assert_eq!(sheet.errors.len(), 4, "{:?}", errors(&sheet));
    assert!(sheet.errors.iter().all(|e| e.line == 2));
    assert_eq!(
        sheet.warnings,
        ["routes.csv:2: a quoted cell in this row runs over several lines; if that is not meant, look for a missing closing quote (\")"]
    );
}

mod load {
    use super::*;

    fn client() -> reqwest::Client {
        farewatch::upstream::http::build_client()
    }

    const GOOD: &str = "origin,destination,depart_date,max_price,phone\nLHR,JFK,2027-03-01,400,+442079460123\nLHR,XX,2027-03-01,400,+442079460123\n";

    #[tokio::test]
    async fn from_a_file_named_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my routes.csv");
        std::fs::write(&file, GOOD).unwrap();
        let location = file.to_str().unwrap();
        let sheet = sheet::load(location, &client(), &options()).await.unwrap();
        assert_eq!(sheet.routes.len(), 1);
        assert_eq!(
            errors(&sheet),
            [format!("{location}:3: destination: `XX` is not an IATA code; expected three letters such as LHR")]
        );
    }

    #[tokio::test]
    async fn from_a_missing_file_is_fatal_and_suggests_routes_flag() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("nope.csv");
        let location = location.to_str().unwrap();
        let error = sheet::load(location, &client(), &options())
            .await
            .unwrap_err();
        assert!(matches!(error, SheetError::NotFound { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(location) && message.contains("--routes"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn from_a_directory_or_an_oversized_file_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let error = sheet::load(dir.path().to_str().unwrap(), &client(), &options())
            .await
            .unwrap_err();
        assert!(matches!(error, SheetError::Read { .. }), "{error:?}");

        let big = dir.path().join("big.csv");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_SHEET_BYTES as u64 + 1).unwrap();
        let error = sheet::load(big.to_str().unwrap(), &client(), &options())
            .await
            .unwrap_err();
        assert!(matches!(error, SheetError::TooLarge { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn from_a_url_following_redirects() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/pub"))
            .respond_with(
                ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/sheet.csv", server.uri())),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/sheet.csv"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(GOOD, "text/csv"))
            .expect(1)
            .mount(&server)
            .await;
        let url = format!("{}/pub", server.uri());
        let sheet = sheet::load(&url, &client(), &options()).await.unwrap();
        assert_eq!(sheet.routes.len(), 1);
        assert_eq!(sheet.errors.len(), 1);
        assert_eq!(
            sheet.errors[0].source, url,
            "messages name the URL as given"
        );
        assert_eq!(sheet.errors[0].line, 3);
    }

    #[tokio::test]
    async fn from_a_url_answering_404_is_fatal() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let url = format!("{}/sheet.csv", server.uri());
        let error = sheet::load(&url, &client(), &options()).await.unwrap_err();
        assert!(
            matches!(&error, SheetError::HttpStatus { status, .. } if status.as_u16() == 404),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&url) && message.contains("404"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn from_a_url_returning_a_web_page_is_fatal() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/html"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                "<!DOCTYPE html><html>Sign in</html>",
                "text/html; charset=utf-8",
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/plain"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw("\n  <html>Sign in</html>", "text/plain"),
            )
            .mount(&server)
            .await;
        for page in ["html", "plain"] {
            let url = format!("{}/{page}", server.uri());
            let error = sheet::load(&url, &client(), &options()).await.unwrap_err();
            assert!(
                matches!(error, SheetError::NotCsv { .. }),
                "{page}: {error:?}"
            );
            assert!(error.to_string().contains("Publish to web"), "{error}");
        }
    }

    #[tokio::test]
    async fn from_a_url_with_an_oversized_body_is_fatal() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(vec![b'a'; MAX_SHEET_BYTES + 1], "text/csv"),
            )
            .mount(&server)
            .await;
        let error = sheet::load(&server.uri(), &client(), &options())
            .await
            .unwrap_err();
        assert!(matches!(error, SheetError::TooLarge { .. }), "{error:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = sheet::parse("routes.csv", &bytes, &options());
    }

    #[test]
    fn parse_never_panics_on_sheet_like_text(
        body in "[ -~\u{a0}-\u{ff}\u{200b}\u{feff}\t\r\n,|\"#.:=+@%-]{0,400}",
        header in proptest::sample::subsequence(
            vec!["origin", "destination", "depart_date", "max_price", "phone", "return_date",
                 "currency", "adults", "min_drop", "cooldown", "active", "label", "extra"],
            0..13,
        ),
    ) {
        let text = format!("{}\n{body}", header.join(","));
        if let Ok(sheet) = sheet::parse("routes.csv", text.as_bytes(), &options()) {
            for error in &sheet.errors {
                prop_assert!(error.line >= 2, "{error}");
                prop_assert!(!error.to_string().chars().any(char::is_control), "{error}");
            }
        }
    }

    #[test]
    fn parse_never_panics_on_rows_of_plausible_cells(
        rows in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just("LHR".to_owned()), Just("LHR|LGW".to_owned()), Just("JFK".to_owned()),
                    Just("2027-03-01".to_owned()), Just("2026-11-20..2027-01-31".to_owned()),
                    Just("400".to_owned()), Just("0.001".to_owned()), Just("+442079460123".to_owned()),
                    Just("5%".to_owned()), Just("1d".to_owned()), Just("".to_owned()),
                    "[ -~]{0,12}",
                ],
                0..14,
            ),
            0..8,
        ),
    ) {
        let mut text = "origin,destination,depart_date,return_date,max_price,currency,adults,min_drop,cooldown,active,phone,label\n".to_owned();
        for row in rows {
            let quoted: Vec<String> = row.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect();
            text.push_str(&quoted.join(","));
            text.push('\n');
        }
        let sheet = sheet::parse("routes.csv", text.as_bytes(), &options()).unwrap();
        for route in &sheet.routes {
            prop_assert!(route.lookups().len() <= MAX_LOOKUPS_PER_ROW);
            prop_assert!(!route.lookups().is_empty());
            prop_assert!(route.depart.first >= options().today);
        }
    }
}
