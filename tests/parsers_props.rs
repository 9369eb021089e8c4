//! The parsers behind `farewatch::fuzzing` (the routes sheet, Amadeus and
//! Twilio replies, and the alert SMS text) return a typed result and never
//! panic, whatever the bytes: the stable, in-CI twin of the cargo-fuzz
//! targets in `fuzz/` (which need nightly).
//!
//! Each parser is fed three kinds of input through the `farewatch::fuzzing`
//! entry points: arbitrary bytes; the recorded fixtures with random byte
//! mutations (flips, inserts, deletions, duplicated ranges, truncation);
//! and well-formed documents built from pools of good, bad and hostile
//! values, which get past the JSON or CSV syntax into the code behind it.
//! Outputs are checked against what each parser promises (the `check_*`
//! functions), and where a result can be predicted, against that.

use farewatch::domain::{Currency, Money};
use farewatch::fuzzing::{self, SmsInput, SECRETS};
use farewatch::notify::NotifyError;
use farewatch::upstream::UpstreamError;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

/// Cases for the cheap parsers (JSON replies, the SMS text).
const CASES: u32 = 1024;

/// Cases for the sheet, whose rows go through libphonenumber.
const SHEET_CASES: u32 = 512;

/// `cases`, unless `PROPTEST_CASES` asks for another number (a longer local run).
fn cases(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

macro_rules! fixtures {
    ($dir:literal: $($name:literal),+ $(,)?) => {
        &[$(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/", $dir, "/", $name)) as &[u8]),+]
    };
}

const SHEETS: &[&[u8]] = fixtures!("data/sheets":
    "excel-bom-crlf.csv", "missing-phone.csv", "mixed-errors.csv",
    "semicolons.csv", "utf16le.csv", "windows-1252.csv",
);

/// A sheet using every column, good rows and bad, for the mutators.
const FULL_SHEET: &[u8] = b"origin,destination,depart_date,return_date,max_price,currency,adults,min_drop,cooldown,active,label,phone
LHR|LGW,JFK,2027-03-01..2027-03-03,2027-03-08,349.99,GBP,2,5%,6h,yes,Summer \xe2\x86\x92 NYC,+442079460123|+14155552671
lhr,cdg,2027-03-01,,99,,,25,1d,no,,+44 20 7946 0123
LHR1|#REF!,x,2026-11-20..2026-11-30,,1.005,EUR,0,-5,-1h,maybe,=SUM(A1),447700900123
";

const OFFERS: &[&[u8]] = fixtures!("fixtures/fares":
    "amadeus-flight-offers-SYD-BKK-spec.json", "amadeus-flight-offers-LHR-JFK.json",
    "amadeus-flight-offers-GIG-MAD-roundtrip-sdk.json", "amadeus-flight-offers-empty.json",
);

const AMADEUS_ERRORS: &[&[u8]] = fixtures!("fixtures/fares":
    "amadeus-error-400.json", "amadeus-error-400-invalid-format-origin.json",
    "amadeus-error-400-past-date.json", "amadeus-error-401-expired-token.json",
    "amadeus-error-401-invalid-header.json", "amadeus-error-401-invalid-token.json",
    "amadeus-error-429.json", "amadeus-error-429-quota.json", "amadeus-error-500.json",
    "amadeus-token-error-invalid-client.json", "amadeus-token-error-unsupported-grant.json",
);

const TWILIO_CREATED: &[&[u8]] = fixtures!("fixtures/notify":
    "twilio-message-created.json", "twilio-message-created-2-segments.json",
    "twilio-message-created-messaging-service.json", "twilio-message-created-scheduled.json",
);

const TWILIO_ERRORS: &[&[u8]] = fixtures!("fixtures/notify":
    "twilio-error-20001-with-details.json", "twilio-error-20003.json", "twilio-error-20429.json",
    "twilio-error-21211.json", "twilio-error-21211-legacy.json", "twilio-error-21608.json",
    "twilio-error-21610.json", "twilio-error-21610-legacy.json", "twilio-error-21611.json",
    "twilio-error-21614.json",
);

/// A message-list page holding the message [`fuzzing::twilio_list`] looks for.
const TWILIO_PAGE: &[u8] = br#"{"messages":[{"sid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","body":"Hello! \ud83d\udc4d","to":"+14155552345","direction":"outbound-api","date_created":"Thu, 24 Aug 2023 05:01:45 +0000"}],"next_page_uri":"/2010-04-01/Accounts/AC/Messages.json?Page=1"}"#;

/// HTTP statuses the Twilio classifier is asked about.
const TWILIO_STATUSES: [u16; 9] = [400, 401, 403, 404, 409, 429, 500, 502, 503];

// ----- mutations ------------------------------------------------------------

/// Bytes that matter to CSV and JSON.
const SPECIAL: &[u8] = b"\0\t\n\r \"#%+,-.0159:;E[\\]e{|}\x7f\xc3\xef\xff";

/// One edit to a document.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Special(Index, Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1..=255_u8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(at, b)| Mutation::Special(at, b)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        2 => (any::<Index>(), 1..64_usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<Index>(), 1..64_usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for mutation in mutations {
        // Positions are taken over `len + 1` so the end is reachable too.
        let at = |index: &Index, bytes: &Vec<u8>| index.index(bytes.len() + 1);
        match mutation {
            Mutation::Flip(i, bit) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= bit;
            }
            Mutation::Special(i, b) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] = SPECIAL[b.index(SPECIAL.len())];
            }
            Mutation::Insert(i, new) => {
                let i = at(i, &bytes);
                bytes.splice(i..i, new.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(i, &bytes);
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Duplicate(i, n) => {
                let i = at(i, &bytes);
                let end = (i + n).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate(i) => {
                let i = at(i, &bytes);
                bytes.truncate(i);
            }
            Mutation::Flip(..) | Mutation::Special(..) => {}
        }
    }
    bytes
}

/// One of `seeds`, mutated one to eight times.
fn mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 1..=8),
    )
        .prop_map(|(seed, mutations)| apply(seed, &mutations))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

// ----- value pools ------------------------------------------------------------

/// Text that has tripped parsers before, or should not get into messages.
fn hostile() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        prop::sample::select(vec![
            String::new(),
            " ".to_owned(),
            "\u{1b}[2J\u{1b}[31mred".to_owned(),
            "line\nbreak\r\n\ttab".to_owned(),
            "\u{202e}reversed\u{200b}".to_owned(),
            "\u{fffd}\u{feff}".to_owned(),
            "😀".repeat(300),
            "x".repeat(5_000),
            SECRETS[0].to_owned(),
            format!("Bearer {}", SECRETS[1]),
            "`".to_owned(),
        ]),
        any::<String>(),
    ]
}

/// A JSON value of an unexpected type, for fields that expect a string.
fn wrong_type() -> impl Strategy<Value = Value> + Clone {
    prop::sample::select(vec![
        Value::Null,
        json!(true),
        json!(12),
        json!(-1),
        json!(1.5e300),
        json!([]),
        json!({}),
        json!(u64::MAX),
    ])
}

fn string_or_wrong(pool: Vec<&'static str>) -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        12 => prop::sample::select(pool).prop_map(|s| json!(s)),
        1 => hostile().prop_map(Value::String),
        1 => wrong_type(),
    ]
}

// ----- the routes sheet --------------------------------------------------------

const COLUMNS: [&str; 12] = [
    "origin",
    "destination",
    "depart_date",
    "return_date",
    "max_price",
    "currency",
    "adults",
    "min_drop",
    "cooldown",
    "active",
    "label",
    "phone",
];

/// Cells for each column of [`COLUMNS`]: mostly valid values (so that
/// whole rows get through), then invalid and edge ones, blanks and junk.
fn cell(column: usize) -> BoxedStrategy<String> {
    let (valid, invalid): (Vec<&'static str>, Vec<&'static str>) = match column {
        0 | 1 => (
            vec![
                "LHR",
                "lhr",
                "JFK",
                "CDG",
                "LHR|LGW",
                "JFK|EWR",
                "LHR|LHR",
                " cdg | JFK ",
            ],
            vec![
                "|",
                "LH",
                "L1R",
                "#REF!",
                "LHRX",
                "LHR|LGW|STN|LTN|SEN|LCY|BHX|MAN|EDI|GLA|BRS",
            ],
        ),
        2 | 3 => (
            vec![
                "2027-03-01",
                "2027-03-08",
                "2026-11-24",
                "2026-11-20..2026-11-30",
                "2027-03-01..2027-03-03",
                "2027-03-05..2027-03-10",
            ],
            vec![
                "2026-11-23",
                "2027-03-03..2027-03-01",
                "0001-01-01..9999-12-31",
                "9999-12-31",
                "-009999-01-01",
                "2027-02-30",
                "2027-03-01..",
                "..",
                "tomorrow",
            ],
        ),
        4 => (
            vec!["349.99", "1", "0.01", "92233720368547758.07", "1e3"],
            vec![
                "0",
                "-5",
                "1.005",
                "92233720368547758.08",
                "99999999999999999999999999999",
            ],
        ),
        5 => (
            vec!["EUR", "gbp", "JPY", "KWD", " usd "],
            vec!["EURO", "ABC", "E"],
        ),
        6 => (vec!["1", "9", "2"], vec!["0", "10", "-1", "256", "two"]),
        7 => (
            vec!["5%", "2.5%", "0%", "100%", "25", "0", "0.001", "1e2%"],
            vec![
                "100.01%",
                "-1%",
                "-5",
                "99999999999999999999%",
                "%",
                "0.0001",
            ],
        ),
        8 => (
            vec!["6h", "30m", "1d", "1w", "2h 30m", "PT6H", "999999h"],
            vec!["0h", "-6h", "1mo", "1y", "6", "P1000000D"],
        ),
        9 => (
            vec!["true", "yes", "Y", "1", "false", "no", "0"],
            vec!["maybe"],
        ),
        10 => (
            vec!["Summer trip", "Ski \u{2192} Z\u{fc}rich", "+cmd", "-(1)"],
            vec!["=SUM(A1)", "@x", "a\u{7}b"],
        ),
        _ => (
            vec![
                "+442079460123",
                "+44 20 7946 0123",
                "+14155552671",
                "+14155552671|+442079460123",
            ],
            vec![
                "447700900123",
                "4.4770090012E+11",
                "07700900123",
                "+1",
                "+",
                "+hello",
                "+999999999999999999999",
                "+1|+2|+3|+4|+5|+6|+7|+8|+9|+10|+11",
            ],
        ),
    };
    prop_oneof![
        12 => prop::sample::select(valid).prop_map(str::to_owned),
        2 => prop::sample::select(invalid).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => hostile(),
    ]
    .boxed()
}

/// A header: usually the five required columns, and any optional ones, in
/// any order; sometimes a required one missing, an unknown one added, or
/// one repeated.
fn header() -> impl Strategy<Value = Vec<usize>> {
    const REQUIRED: [usize; 5] = [0, 1, 2, 4, 11];
    const OPTIONAL: [usize; 7] = [3, 5, 6, 7, 8, 9, 10];
    let required = prop_oneof![
        9 => Just(REQUIRED.to_vec()),
        1 => prop::sample::subsequence(REQUIRED.to_vec(), 0..=5),
    ];
    let extra = prop_oneof![
        9 => Just(Vec::new()),
        1 => prop::sample::select(vec![UNKNOWN, 0, 11]).prop_map(|c| vec![c]),
    ];
    (
        required,
        prop::sample::subsequence(OPTIONAL.to_vec(), 0..=7),
        extra,
    )
        .prop_map(|(mut columns, optional, extra)| {
            columns.extend(optional);
            columns.extend(extra);
            columns
        })
        .prop_shuffle()
}

/// Index of a column farewatch does not know, `notes`, in [`header`].
const UNKNOWN: usize = COLUMNS.len();

/// Quotes a cell the way a spreadsheet would, when it needs quoting.
fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A sheet with some of the columns, in any order, and rows of pool values.
fn generated_sheet() -> impl Strategy<Value = Vec<u8>> {
    (header(), prop::sample::select(vec!["\n", "\r\n", "\r"])).prop_flat_map(|(columns, eol)| {
        let row = columns.iter().map(|&c| cell(c)).collect::<Vec<_>>();
        let rows = prop::collection::vec(row, 0..6);
        (Just(columns), Just(eol), rows).prop_map(|(columns, eol, rows)| {
            let mut text = columns
                .iter()
                .map(|&c| COLUMNS.get(c).copied().unwrap_or("notes"))
                .collect::<Vec<_>>()
                .join(",");
            for row in rows {
                text.push_str(eol);
                text.push_str(
                    &row.iter()
                        .map(|c| csv_cell(c))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            text.into_bytes()
        })
    })
}

fn assert_sheet(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(sheet) = fuzzing::sheet(bytes) {
        if let Err(broken) = fuzzing::check_sheet(bytes, &sheet) {
            return Err(TestCaseError::fail(format!(
                "{broken}\nsheet: {:?}",
                String::from_utf8_lossy(bytes)
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(SHEET_CASES))]

    #[test]
    fn sheet_any_bytes(bytes in bytes()) {
        assert_sheet(&bytes)?;
    }

    #[test]
    fn sheet_mutated_fixtures(bytes in prop_oneof![mutated(SHEETS), mutated(&[FULL_SHEET])]) {
        assert_sheet(&bytes)?;
    }

    #[test]
    fn sheet_generated_rows(bytes in generated_sheet()) {
        assert_sheet(&bytes)?;
    }
}

#[test]
fn sheet_fixtures_hold_their_promises() {
    for bytes in SHEETS.iter().copied().chain([FULL_SHEET]) {
        assert_sheet(bytes).unwrap();
    }
    let full = fuzzing::sheet(FULL_SHEET).unwrap();
    assert_eq!(full.routes.len(), 2, "{:?}", full.errors);
    let columns: Vec<&str> = full.errors.iter().map(|e| e.column.as_str()).collect();
    assert_eq!(
        columns,
        [
            "origin",
            "destination",
            "max_price",
            "adults",
            "min_drop",
            "cooldown",
            "active",
            "phone"
        ],
        "every bad cell of line 4 is reported: {:#?}",
        full.errors
    );
}

/// Found by `sheet_generated_rows`: a sheet whose rows end in a bare CR (as
/// Excel for Mac's "CSV (Macintosh)" saves them) but with a line break
/// inside a quoted cell (Excel's in-cell break is a LF). The CSV reader
/// ends records at the CRs, but lines were counted at LFs only, so every
/// message pointed at the wrong line and two routes shared one.
#[test]
fn counts_lines_of_a_cr_sheet_with_a_multi_line_cell() {
    let text = concat!(
        "origin,destination,depart_date,max_price,phone,label\r",
        "# a comment\r",
        "LHR,JFK,2027-03-01,400,+442079460123,\"two\nlines\"\r",
        "LHR1,JFK,2027-03-01,400,+442079460123,bad\r",
        "LHR,CDG,2027-03-01,400,+442079460123,\"three\r\nmore\rlines\"\r",
        "LHR,AMS,2027-03-01,400,+442079460123,last",
    );
    let sheet = fuzzing::sheet(text.as_bytes()).unwrap();
    let lines: Vec<usize> = sheet.routes.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 6, 9], "{:#?}", sheet.routes);
    let errors: Vec<(usize, &str)> = sheet
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(errors, [(5, "origin")]);
    fuzzing::check_sheet(text.as_bytes(), &sheet).unwrap();
}

// ----- Amadeus ----------------------------------------------------------------

fn assert_offers(bytes: &[u8]) -> Result<(), TestCaseError> {
    let got = fuzzing::amadeus_offers(bytes);
    if let Err(broken) = fuzzing::check_amadeus_offers(&got) {
        prop_assert!(false, "{}", broken);
    }
    // The reader walks a reply's outline and reads only prices and flights;
    // it must answer as serde reading all of it does, except where serde
    // refuses a malformed part that is never read (the walk is lenient
    // there, and answers).
    let by_serde = fuzzing::amadeus_offers_by_serde(bytes);
    if by_serde.is_ok() || got.is_err() {
        prop_assert_eq!(
            format!("{got:?}"),
            format!("{by_serde:?}"),
            "body {}",
            String::from_utf8_lossy(bytes)
        );
    }
    Ok(())
}

/// Any JSON value, nested, with strings full of quotes, backslashes and
/// brackets: the parts of a reply the reader crosses without reading.
fn any_json() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        prop::sample::select(vec![
            "", "\"", "\\", "{", "}]", "[\"]", "\\\"", "é😀", "\u{0}"
        ])
        .prop_map(str::to_owned),
        "[\\\\\"{}\\[\\] a-z]{0,24}",
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A generated reply with unread parts around the prices (random members
/// in each offer and at the top), itineraries from the fixtures or junk,
/// written compact or pretty.
fn reply_with_unread_parts() -> impl Strategy<Value = Vec<u8>> {
    let offer = (
        price_object(),
        prop::collection::vec(("[a-zA-Z]{1,12}", any_json()), 0..4),
        prop::option::of(prop_oneof![
            Just(json!([{"duration": "PT8H", "segments": [{"carrierCode": "BA", "numberOfStops": 0}]}])),
            any_json(),
        ]),
    )
        .prop_map(|(price, extra, itineraries)| {
            let mut offer: serde_json::Map<String, Value> = extra.into_iter().collect();
            offer.insert("price".to_owned(), price);
            if let Some(itineraries) = itineraries {
                offer.insert("itineraries".to_owned(), itineraries);
            }
            Value::Object(offer)
        });
    (
        prop::collection::vec(offer, 0..5),
        any_json(),
        prop::option::of(any_json()),
        any::<bool>(),
    )
        .prop_map(|(data, meta, dictionaries, pretty)| {
            let mut reply = json!({ "meta": meta, "data": data });
            if let Some(dictionaries) = dictionaries {
                reply["dictionaries"] = dictionaries;
            }
            if pretty {
                serde_json::to_vec_pretty(&reply).unwrap()
            } else {
                serde_json::to_vec(&reply).unwrap()
            }
        })
}

/// A price object: currency, and `grandTotal` and/or `total`, each sometimes
/// missing, sometimes junk.
fn price_object() -> impl Strategy<Value = Value> {
    let amount = prop_oneof![
        8 => prop::sample::select(vec![
            "312.46", "415.32", "312.47", "0.00", "-5", "10.005", " 99 ", "92233720368547758.07",
        ])
        .prop_map(|a| json!(a)),
        1 => string_or_wrong(vec!["1e3", "12,50", "99999999999999999999999999999", "NaN", ""]),
    ];
    let currency = prop_oneof![
        8 => Just(json!("EUR")),
        2 => string_or_wrong(vec!["EUR", "GBP", "usd", "JPY", "KWD", "EURO", ""]),
    ];
    (
        currency,
        prop::option::weighted(0.8, amount.clone()),
        prop::option::weighted(0.5, amount),
    )
        .prop_map(|(currency, grand_total, total)| {
            let mut price = json!({ "currency": currency });
            if let Some(g) = grand_total {
                price["grandTotal"] = g;
            }
            if let Some(t) = total {
                price["total"] = t;
            }
            price
        })
}

fn offers_reply() -> impl Strategy<Value = Value> {
    prop::collection::vec(price_object(), 0..6).prop_map(|prices| {
        let data: Vec<Value> = prices
            .into_iter()
            .map(|price| json!({ "type": "flight-offer", "price": price }))
            .collect();
        json!({ "meta": { "count": data.len() }, "data": data })
    })
}

/// What the reader should make of a generated reply, computed with the
/// public money types: the cheapest `grandTotal` (else `total`), or `None`
/// when some offer is unreadable or the currencies differ.
fn expected_cheapest(reply: &Value) -> Option<Option<Money>> {
    let mut cheapest: Option<Money> = None;
    for offer in reply["data"].as_array()? {
        let price = &offer["price"];
        let currency = Currency::parse(price["currency"].as_str()?).ok()?;
        // Both amounts must be strings when present; `null` counts as absent.
        let present = |key: &str| price.get(key).filter(|v| !v.is_null());
        if ["grandTotal", "total"]
            .iter()
            .any(|k| present(k).is_some_and(|v| !v.is_string()))
        {
            return None;
        }
        let amount = match present("grandTotal") {
            Some(g) => g.as_str()?,
            None => price.get("total")?.as_str()?,
        };
        let money = Money::parse_rounded(amount, currency).ok()?;
        cheapest = Some(match cheapest {
            None => money,
            Some(best) if best.currency != money.currency => return None,
            Some(best) if money.minor < best.minor => money,
            Some(best) => best,
        });
    }
    Some(cheapest)
}

fn assert_amadeus_error(bytes: &[u8]) -> Result<(), TestCaseError> {
    let error = fuzzing::amadeus_error(bytes);
    if let Err(broken) = fuzzing::check_amadeus_error(&error) {
        prop_assert!(false, "{}", broken);
    }
    Ok(())
}

fn amadeus_error_body() -> impl Strategy<Value = Value> {
    let code = prop_oneof![
        prop::sample::select(vec![38190_u64, 38191, 38192, 38194, 38195, 477, 0])
            .prop_map(|c| json!(c)),
        prop::sample::select(vec!["38191", " 38192 ", "", "x"]).prop_map(|c| json!(c)),
        hostile().prop_map(Value::String),
        wrong_type(),
    ];
    let text = || {
        prop::option::of(string_or_wrong(vec![
            "Invalid HTTP header",
            "INVALID FORMAT",
        ]))
    };
    let issue = (
        prop::option::of(code.clone()),
        text(),
        text(),
        prop::option::of((text(), text())),
    )
        .prop_map(|(code, title, detail, source)| {
            let mut issue = json!({ "status": 400 });
            for (key, value) in [("code", code), ("title", title), ("detail", detail)] {
                if let Some(value) = value {
                    issue[key] = value;
                }
            }
            if let Some((parameter, pointer)) = source {
                issue["source"] = json!({ "parameter": parameter, "pointer": pointer });
            }
            issue
        });
    prop_oneof![
        prop::collection::vec(issue, 0..4).prop_map(|errors| json!({ "errors": errors })),
        (text(), text(), prop::option::of(code)).prop_map(|(error, description, code)| {
            json!({ "error": error, "error_description": description, "code": code })
        }),
    ]
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn amadeus_offers_any_bytes(bytes in bytes()) {
        assert_offers(&bytes)?;
    }

    #[test]
    fn amadeus_offers_mutated_fixtures(bytes in mutated(OFFERS)) {
        assert_offers(&bytes)?;
    }

    #[test]
    fn amadeus_offers_generated_replies(reply in offers_reply()) {
        let bytes = serde_json::to_vec(&reply).unwrap();
        assert_offers(&bytes)?;
        let got = fuzzing::amadeus_offers(&bytes);
        match expected_cheapest(&reply) {
            Some(cheapest) => prop_assert_eq!(
                got.clone().map(|q| q.map(|q| q.price)), Ok(cheapest), "reply {}", reply
            ),
            None => prop_assert!(got.is_err(), "reply {} read as {:?}", reply, got),
        }
    }

    #[test]
    fn amadeus_offers_with_unread_parts(bytes in reply_with_unread_parts()) {
        // Valid JSON: the walk follows it whenever serde can read every
        // price, and agrees with serde exactly (`assert_offers`).
        let by_serde = fuzzing::amadeus_offers_by_serde(&bytes);
        if by_serde.is_ok() {
            prop_assert!(fuzzing::amadeus_offers_walked(&bytes), "not walked: {}", String::from_utf8_lossy(&bytes));
        }
        assert_offers(&bytes)?;
    }

    #[test]
    fn amadeus_offers_any_content_type(bytes in mutated(OFFERS), content_type in prop::option::of(hostile())) {
        let got = fuzzing::amadeus_offers_as(&bytes, content_type.as_deref());
        if let Err(broken) = fuzzing::check_amadeus_offers(&got) {
            prop_assert!(false, "{}", broken);
        }
    }

    #[test]
    fn amadeus_error_any_bytes(bytes in bytes()) {
        assert_amadeus_error(&bytes)?;
    }

    #[test]
    fn amadeus_error_mutated_fixtures(bytes in mutated(AMADEUS_ERRORS)) {
        assert_amadeus_error(&bytes)?;
    }

    #[test]
    fn amadeus_error_generated_bodies(body in amadeus_error_body()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_amadeus_error(&bytes)?;
        let error = fuzzing::amadeus_error(&bytes);
        // A numeric code is kept as its decimal text.
        let first_code = body["errors"].get(0).map_or(&body["code"], |e| &e["code"]);
        if let (Some(n), Some(code)) = (first_code.as_u64(), &error.code) {
            prop_assert_eq!(code, &n.to_string(), "body {}", body);
        }
    }
}

#[test]
fn amadeus_fixtures_read_as_recorded() {
    let prices: Vec<String> = OFFERS
        .iter()
        .map(|bytes| match fuzzing::amadeus_offers(bytes).unwrap() {
            Some(quote) => quote.price.to_string(),
            None => "none".to_owned(),
        })
        .collect();
    assert_eq!(prices, ["EUR 355.34", "GBP 312.46", "USD 3842.10", "none"]);
    for bytes in OFFERS {
        // Walked or read whole, the same quote (airline, stops, duration too).
        assert_eq!(
            format!("{:?}", fuzzing::amadeus_offers(bytes)),
            format!("{:?}", fuzzing::amadeus_offers_by_serde(bytes))
        );
    }
    for bytes in AMADEUS_ERRORS {
        let error = fuzzing::amadeus_error(bytes);
        fuzzing::check_amadeus_error(&error).unwrap();
        assert!(error.code.is_some(), "{error:?}");
    }
}

/// Found by `amadeus_offers_generated_replies`: an offer whose currency or
/// amount could not be read was quoted raw in the error, terminal escapes
/// and all (and at any length).
#[test]
fn amadeus_offer_errors_quote_offers_printably() {
    for price in [
        json!({ "currency": "\u{1b}[2J", "grandTotal": "1.00" }),
        json!({ "currency": "EUR", "grandTotal": "\u{1b}[31m12\n" }),
        json!({ "currency": "EUR", "grandTotal": "9".repeat(10_000) }),
        json!({ "currency": SECRETS[0], "grandTotal": "1.00" }),
    ] {
        let body = serde_json::to_vec(&json!({ "data": [{ "price": price }] })).unwrap();
        let got = fuzzing::amadeus_offers(&body);
        let Err(UpstreamError::Decode(message)) = &got else {
            panic!("{price} read as {got:?}");
        };
        assert!(message.starts_with("flight offer #1: "), "{message}");
        assert!(message.chars().count() < 600, "{message}");
        fuzzing::check_amadeus_offers(&got).unwrap();
    }
}

/// Found by `amadeus_error_generated_bodies` and
/// `amadeus_offers_any_content_type`: the error `code` and a non-JSON
/// `Content-Type` were quoted raw, unlike every other part of a reply.
#[test]
fn amadeus_error_codes_and_content_types_are_sanitised() {
    let code = |code: Value| {
        let body = serde_json::to_vec(&json!({ "errors": [{ "code": code }] })).unwrap();
        let error = fuzzing::amadeus_error(&body);
        fuzzing::check_amadeus_error(&error).unwrap();
        error.code.unwrap()
    };
    assert_eq!(code(json!(38192)), "38192");
    assert_eq!(code(json!(" 38191 ")), "38191");
    assert_eq!(code(json!("\u{1b}[2J4\n77")), "[2J4 77");
    assert_eq!(code(json!(SECRETS[0])), "[REDACTED]");
    assert_eq!(
        code(json!("7".repeat(5_000))),
        format!("{}…", "7".repeat(20))
    );

    let got = fuzzing::amadeus_offers_as(b"<html>", Some(SECRETS[1]));
    assert_eq!(
        got,
        Err(UpstreamError::Decode(
            "flight offers: expected JSON, got `[REDACTED]`: <html>".to_owned()
        ))
    );
}

/// Found by the `amadeus_error` fuzz target: a secret split by bytes that
/// are not UTF-8 (or by an invisible character) was not recognised, and the
/// cleaning that followed dropped the split, quoting the secret whole.
#[test]
fn amadeus_secrets_split_by_invisible_characters_are_still_redacted() {
    let (head, tail) = SECRETS[0].split_at(10);
    let bodies = [
        [head.as_bytes(), b"\xff\xff", tail.as_bytes()].concat(),
        format!(r#"{{"errors":[{{"title":"{head}\u200b{tail}"}}]}}"#).into_bytes(),
        format!(r#"{{"error":"x","error_description":"{head}\ufeff{tail}"}}"#).into_bytes(),
    ];
    for body in bodies {
        let error = fuzzing::amadeus_error(&body);
        assert!(error.message.contains("[REDACTED]"), "{error:?}");
        fuzzing::check_amadeus_error(&error).unwrap();
    }
    let offers = [
        b"<html>".as_slice(),
        head.as_bytes(),
        b"\xef\xbb\xbf",
        tail.as_bytes(),
    ]
    .concat();
    let got = fuzzing::amadeus_offers_as(&offers, Some("text/html"));
    fuzzing::check_amadeus_offers(&got).unwrap();
}

/// Found by the `amadeus_offers` fuzz target: when the reply was valid
/// JSON of the wrong shape, the JSON parser's own message quoted the
/// offending string, secrets and all, ahead of the redacted excerpt.
#[test]
fn amadeus_offers_of_the_wrong_shape_do_not_quote_secrets() {
    for body in [
        format!(r#""Bearer {}""#, SECRETS[1]),
        format!(r#"{{"data":[{{"price":"{}"}}]}}"#, SECRETS[0]),
        format!(
            r#"{{"data":[{{"price":{{"currency":"EUR","total":"{}"}}}}]}}"#,
            "9".repeat(5_000)
        ),
    ] {
        let got = fuzzing::amadeus_offers(body.as_bytes());
        assert!(
            matches!(&got, Err(UpstreamError::Decode(m)) if m.chars().count() < 1_000),
            "{got:?}"
        );
        fuzzing::check_amadeus_offers(&got).unwrap();
    }
}

// ----- Twilio -------------------------------------------------------------------

fn assert_twilio(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(error) = fuzzing::twilio_created(bytes) {
        prop_assert!(
            matches!(error, NotifyError::Ambiguous(_)),
            "an unreadable 201 must stay ambiguous: {:?}",
            error
        );
    }
    if let Err(error) = fuzzing::twilio_list(bytes) {
        prop_assert!(matches!(error, NotifyError::Ambiguous(_)), "{:?}", error);
    }
    for status in TWILIO_STATUSES {
        let error = fuzzing::twilio_error(status, bytes);
        let error =
            error.ok_or_else(|| TestCaseError::fail(format!("HTTP {status} unclassified")))?;
        if let Err(broken) = fuzzing::check_twilio_error(status, &error) {
            prop_assert!(false, "{}", broken);
        }
    }
    Ok(())
}

fn twilio_error_body() -> impl Strategy<Value = (Value, Value)> {
    let code = prop_oneof![
        prop::sample::select(vec![
            20003_u64,
            20429,
            21211,
            21212,
            21408,
            21604,
            21606,
            21608,
            21610,
            21611,
            21612,
            21614,
            0,
            99999,
            u64::from(u32::MAX) + 1,
        ])
        .prop_map(|c| json!(c)),
        prop::sample::select(vec!["21610", " 20003 ", "", "x", "-1"]).prop_map(|c| json!(c)),
        wrong_type(),
    ];
    (
        prop::option::of(code),
        hostile(),
        hostile(),
        prop::option::of(hostile()),
        prop::option::of(wrong_type()),
    )
        .prop_map(|(code, message, other_message, more_info, details)| {
            let body = |message: &str| {
                json!({
                    "code": code, "message": message, "title": message, "detail": message,
                    "more_info": more_info, "details": details, "status": 400,
                })
            };
            (body(&message), body(&other_message))
        })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn twilio_any_bytes(bytes in bytes()) {
        assert_twilio(&bytes)?;
    }

    #[test]
    fn twilio_mutated_fixtures(
        bytes in prop_oneof![mutated(TWILIO_CREATED), mutated(TWILIO_ERRORS), mutated(&[TWILIO_PAGE])],
    ) {
        assert_twilio(&bytes)?;
    }

    /// Classified by status and code, never by the message text.
    #[test]
    fn twilio_errors_ignore_the_message_text(
        (body, same_but_reworded) in twilio_error_body(),
        status in prop::sample::select(TWILIO_STATUSES.to_vec()),
    ) {
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_twilio(&bytes)?;
        let one = fuzzing::twilio_error(status, &bytes).unwrap();
        let other = fuzzing::twilio_error(status, &serde_json::to_vec(&same_but_reworded).unwrap()).unwrap();
        let code = |e: &NotifyError| match e {
            NotifyError::Permanent { code, .. }
            | NotifyError::Unsubscribed { code, .. }
            | NotifyError::Configuration { code, .. }
            | NotifyError::RateLimited { code, .. } => Some(*code),
            NotifyError::Other { code, .. } => *code,
            _ => None,
        };
        prop_assert_eq!(std::mem::discriminant(&one), std::mem::discriminant(&other), "{:?} vs {:?}", one, other);
        prop_assert_eq!(code(&one), code(&other));
    }

    #[test]
    fn twilio_created_segments(
        sid in hostile(),
        segments in prop::option::of(prop_oneof![
            (0..=20_u64).prop_map(|n| json!(n.to_string())),
            (0..=20_u64).prop_map(|n| json!(n)),
            wrong_type(),
            hostile().prop_map(Value::String),
        ]),
        status in prop::option::of(string_or_wrong(vec!["queued", "accepted", "scheduled", "sent", "new-status"])),
    ) {
        let reply = json!({ "sid": sid, "num_segments": segments, "status": status });
        let got = fuzzing::twilio_created(&serde_json::to_vec(&reply).unwrap());
        let valid_status = status.as_ref().is_none_or(|s| s.is_string() || s.is_null());
        let valid_segments = segments.as_ref().is_none_or(|s| {
            s.is_null() || s.is_string() || s.as_u64().is_some()
        });
        if !(valid_status && valid_segments) {
            prop_assert!(got.is_err(), "{} read as {:?}", reply, got);
            return Ok(());
        }
        let delivery = got.map_err(|e| TestCaseError::fail(format!("{reply}: {e:?}")))?;
        prop_assert_eq!(&delivery.id, &sid);
        let expected = segments.as_ref().and_then(|s| match s {
            Value::String(s) => s.trim().parse::<u32>().ok(),
            other => other.as_u64().and_then(|n| u32::try_from(n).ok()),
        });
        prop_assert_eq!(delivery.segments, expected.filter(|&n| n > 0), "{}", reply);
    }
}

#[test]
fn twilio_fixtures_read_as_recorded() {
    for bytes in TWILIO_CREATED {
        let delivery = fuzzing::twilio_created(bytes).unwrap();
        assert!(delivery.id.starts_with("SM"), "{delivery:?}");
    }
    for bytes in TWILIO_ERRORS {
        assert_twilio(bytes).unwrap();
    }
    assert_eq!(
        fuzzing::twilio_list(TWILIO_PAGE).unwrap(),
        (Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()), None)
    );
}

// ----- the SMS text -----------------------------------------------------------

fn route() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[A-Z]{3}", 1..=12)
            .prop_flat_map(|origins| (Just(origins), prop::collection::vec("[A-Z]{3}", 1..=12)))
            .prop_map(|(o, d)| format!("{}-{}", o.join("|"), d.join("|"))),
        hostile(),
    ]
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn sms_is_always_one_segment_with_the_facts(
        route in route(),
        label in prop::option::of(hostile()),
        depart in any::<i32>(),
        back in prop::option::of(any::<i32>()),
        price in any::<i64>(),
        max_price in any::<i64>(),
        currency in any::<u8>(),
    ) {
        let input = SmsInput {
            route: &route,
            label: label.as_deref(),
            depart,
            back,
            price,
            max_price,
            currency,
        };
        if let Err(broken) = fuzzing::sms_render(&input) {
            prop_assert!(false, "{}", broken);
        }
    }
}
