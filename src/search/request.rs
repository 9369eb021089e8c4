//! What a search asks for: [`SearchSpec`] is the request as a user writes it
//! (the CLI's flags, the API's JSON body, and what the store keeps), and
//! [`SearchRequest`] is the same, checked: airports, dates and limits within
//! [the caps](self#caps), every problem named by its field.
//!
//! # Caps
//! - at most [`MAX_AIRPORTS`] origins and as many destinations;
//! - departure and return ranges of at most [`MAX_RANGE_DAYS`] days, and
//!   stays (`nights`) of at most [`MAX_NIGHTS`] nights;
//! - at most [`MAX_COMBINATIONS`] combinations in all: a job is work
//!   someone pays for, one provider request each (less what the quote cache
//!   answers).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::domain::{Currency, DateRange, Iata, LookupKey};

/// Most origins (and, separately, destinations) in one search.
pub const MAX_AIRPORTS: usize = 10;
/// Longest departure or return date range, in days.
pub const MAX_RANGE_DAYS: usize = 62;
/// Longest stay `nights` may ask for.
pub const MAX_NIGHTS: u16 = 60;
/// Most combinations one job may have.
pub const MAX_COMBINATIONS: u64 = 5_000;
/// Most adult passengers.
pub const MAX_ADULTS: u8 = 9;
/// Most stops `max_stops` may allow.
pub const MAX_STOPS: u8 = 3;

/// A search as written: lists and ranges as text, checked by
/// [`SearchRequest::parse`]. The store keeps a job's spec in this form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// Origin airports or cities (IATA), e.g. `["LHR", "LGW"]`.
    pub from: Vec<String>,
    /// Destination airports or cities (IATA).
    pub to: Vec<String>,
    /// Departure date or inclusive range: `2027-03-01` or `2027-03-01..2027-03-07`.
    pub depart: String,
    /// Return date or range (a round trip); exclusive with `nights`.
    #[serde(default, rename = "return", skip_serializing_if = "Option::is_none")]
    pub return_date: Option<String>,
    /// Nights away, a number or an inclusive range `5..9` (a round trip
    /// returning that many days after each departure); exclusive with `return`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nights: Option<String>,
    /// Adult passengers (1 to 9; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adults: Option<u8>,
    /// ISO 4217 currency (default `FAREWATCH_CURRENCY`, else EUR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// At most this many stops each way (0 to 3); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stops: Option<u8>,
}

/// A problem with one field of a [`SearchSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// The field (`from`, `depart`, `nights`, ... or `search` for the whole).
    pub field: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl SpecProblem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// How a search comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// One-way.
    OneWay,
    /// Return on each day of a range.
    On(DateRange),
    /// Return this many nights after departure, each of an inclusive range.
    Nights {
        /// Fewest nights.
        min: u16,
        /// Most nights.
        max: u16,
    },
}

/// A checked search: the airports (without repeats, in the order given),
/// the dates, and what every lookup shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// Origins, in the order given.
    pub from: Vec<Iata>,
    /// Destinations, in the order given.
    pub to: Vec<Iata>,
    /// Departure days.
    pub depart: DateRange,
    /// How it comes back.
    pub back: Back,
    /// Adult passengers.
    pub adults: u8,
    /// The currency every lookup asks for.
    pub currency: Currency,
    /// At most this many stops, if limited.
    pub max_stops: Option<u8>,
}

/// One combination of a search: what one lookup asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Combination {
    /// Its index in the search's expansion (stable: results are keyed by it).
    pub index: u64,
    /// The lookup.
    pub key: LookupKey,
}

fn airports(field: &'static str, raw: &[String], problems: &mut Vec<SpecProblem>) -> Vec<Iata> {
    let mut out: Vec<Iata> = Vec::new();
    // `LHR,LGW` inside one element is accepted too (a CLI flag or a habit).
    for code in raw.iter().flat_map(|s| s.split([',', '|'])) {
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        match Iata::parse(code) {
            Ok(iata) if !out.contains(&iata) => out.push(iata),
            Ok(_) => {}
            Err(e) => problems.push(SpecProblem::new(field, e)),
        }
    }
    if out.is_empty() && !problems.iter().any(|p| p.field == field) {
        problems.push(SpecProblem::new(field, "at least one airport is required"));
    } else if out.len() > MAX_AIRPORTS {
        problems.push(SpecProblem::new(
            field,
            format!("{} airports; at most {MAX_AIRPORTS} per search", out.len()),
        ));
    }
    out
}

fn range(field: &'static str, raw: &str, problems: &mut Vec<SpecProblem>) -> Option<DateRange> {
    match DateRange::parse(raw) {
        Ok(range) if range.len() > MAX_RANGE_DAYS => {
            problems.push(SpecProblem::new(
                field,
                format!(
                    "`{raw}` spans {} days; at most {MAX_RANGE_DAYS}",
                    range.len()
                ),
            ));
            None
        }
        Ok(range) => Some(range),
        Err(e) => {
            problems.push(SpecProblem::new(field, e));
            None
        }
    }
}

fn nights(raw: &str, problems: &mut Vec<SpecProblem>) -> Option<(u16, u16)> {
    let number = |s: &str| s.trim().parse::<u16>().ok();
    let parsed = match raw.split_once("..") {
        Some((a, b)) => number(a).zip(number(b)),
        None => number(raw).map(|n| (n, n)),
    };
    match parsed {
        None => problems.push(SpecProblem::new(
            "nights",
            format!("`{raw}` is not a number of nights; expected e.g. 7 or 5..9"),
        )),
        Some((min, max)) if max < min => problems.push(SpecProblem::new(
            "nights",
            format!("range `{raw}` ends before it starts"),
        )),
        Some((_, max)) if max > MAX_NIGHTS => problems.push(SpecProblem::new(
            "nights",
            format!("at most {MAX_NIGHTS} nights"),
        )),
        Some(ok) => return Some(ok),
    }
    None
}

impl SearchRequest {
    /// Checks `spec`: every problem at once, each named by its field.
    /// `today` is the first day a departure may be; `default_currency`
    /// applies when the spec names none.
    pub fn parse(
        spec: &SearchSpec,
        today: Date,
        default_currency: Currency,
    ) -> Result<Self, Vec<SpecProblem>> {
        let mut problems = Vec::new();
        let from = airports("from", &spec.from, &mut problems);
        let to = airports("to", &spec.to, &mut problems);
        let depart = range("depart", &spec.depart, &mut problems);
        if let Some(depart) = depart {
            if depart.first < today {
                problems.push(SpecProblem::new(
                    "depart",
                    format!("{} is in the past (today is {today})", depart.first),
                ));
            }
        }
        let back = match (&spec.return_date, &spec.nights) {
            (Some(_), Some(_)) => {
                problems.push(SpecProblem::new(
                    "nights",
                    "give `return` dates or `nights`, not both",
                ));
                None
            }
            (Some(raw), None) => {
                let back = range("return", raw, &mut problems);
                if let (Some(back), Some(depart)) = (back, depart) {
                    if back.last < depart.first {
                        problems.push(SpecProblem::new(
                            "return",
                            format!(
                                "every return date is before the first departure ({})",
                                depart.first
                            ),
                        ));
                    }
                }
                back.map(Back::On)
            }
            (None, Some(raw)) => {
                nights(raw, &mut problems).map(|(min, max)| Back::Nights { min, max })
            }
            (None, None) => Some(Back::OneWay),
        };
        let adults = spec.adults.unwrap_or(1);
        if !(1..=MAX_ADULTS).contains(&adults) {
            problems.push(SpecProblem::new(
                "adults",
                format!("{adults} adults; 1 to {MAX_ADULTS}"),
            ));
        }
        let currency = match spec.currency.as_deref() {
            None => Some(default_currency),
            Some(raw) => match Currency::parse(raw) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(SpecProblem::new("currency", e));
                    None
                }
            },
        };
        if let Some(stops) = spec.max_stops {
            if stops > MAX_STOPS {
                problems.push(SpecProblem::new(
                    "max_stops",
                    format!("{stops} stops; 0 to {MAX_STOPS}"),
                ));
            }
        }
        let (Some(depart), Some(back), Some(currency), true) =
            (depart, back, currency, problems.is_empty())
        else {
            return Err(problems);
        };
        let request = Self {
            from,
            to,
            depart,
            back,
            adults,
            currency,
            max_stops: spec.max_stops,
        };
        let total = request.total();
        if total == 0 {
            return Err(vec![SpecProblem::new(
                "search",
                "no combination: every origin is also the destination, or every return is \
                 before its departure",
            )]);
        }
        if total > MAX_COMBINATIONS {
            return Err(vec![SpecProblem::new(
                "search",
                format!(
                    "{total} combinations ({} origins × {} destinations × {} date pairs); \
                     at most {MAX_COMBINATIONS} per search: narrow the airports or the dates",
                    request.from.len(),
                    request.to.len(),
                    request.date_pairs().count()
                ),
            )]);
        }
        Ok(request)
    }

    /// The spec this request is written back as (canonical: airports
    /// upper-case without repeats, every default explicit), which the store
    /// keeps and [`SearchRequest::parse`] reads back to the same request.
    pub fn to_spec(&self) -> SearchSpec {
        let range = |r: DateRange| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}..{}", r.first, r.last)
            }
        };
        let (return_date, nights) = match self.back {
            Back::OneWay => (None, None),
            Back::On(r) => (Some(range(r)), None),
            Back::Nights { min, max } if min == max => (None, Some(min.to_string())),
            Back::Nights { min, max } => (None, Some(format!("{min}..{max}"))),
        };
        SearchSpec {
            from: self.from.iter().map(|i| i.as_str().to_owned()).collect(),
            to: self.to.iter().map(|i| i.as_str().to_owned()).collect(),
            depart: range(self.depart),
            return_date,
            nights,
            adults: Some(self.adults),
            currency: Some(self.currency.as_str().to_owned()),
            max_stops: self.max_stops,
        }
    }

    /// How many return options each departure day has (1 for one-way).
    fn back_options(&self) -> u64 {
        match self.back {
            Back::OneWay => 1,
            Back::On(r) => r.len() as u64,
            Back::Nights { min, max } => u64::from(max - min) + 1,
        }
    }

    /// The size of the index space: airports × departure days × return
    /// options, invalid pairs included (they are skipped, not renumbered,
    /// so an index names the same combination forever).
    pub fn space(&self) -> u64 {
        self.from.len() as u64
            * self.to.len() as u64
            * self.depart.len() as u64
            * self.back_options()
    }

    /// The dates of index `slot` of the date part, if it is a valid pair.
    fn dates(&self, slot: u64) -> Option<(Date, Option<Date>)> {
        let per_day = self.back_options();
        let day = self
            .depart
            .first
            .checked_add(jiff::Span::new().days(i64::try_from(slot / per_day).ok()?))
            .ok()?;
        let option = slot % per_day;
        let back = match self.back {
            Back::OneWay => None,
            Back::On(r) => {
                let ret = r
                    .first
                    .checked_add(jiff::Span::new().days(i64::try_from(option).ok()?))
                    .ok()?;
                if ret < day {
                    return None;
                }
                Some(ret)
            }
            Back::Nights { min, .. } => Some(
                day.checked_add(jiff::Span::new().days(i64::from(min) + option as i64))
                    .ok()?,
            ),
        };
        Some((day, back))
    }

    /// Every valid (departure, return) pair, in index order.
    fn date_pairs(&self) -> impl Iterator<Item = (Date, Option<Date>)> + '_ {
        let slots = self.depart.len() as u64 * self.back_options();
        (0..slots).filter_map(|slot| self.dates(slot))
    }

    /// How many combinations the search has (invalid pairs excluded).
    pub fn total(&self) -> u64 {
        let airports = self
            .from
            .iter()
            .flat_map(|o| self.to.iter().map(move |d| (o, d)))
            .filter(|(o, d)| o != d)
            .count() as u64;
        airports * self.date_pairs().count() as u64
    }

    /// Combination `index`, or `None` when that index is an invalid pair
    /// (an origin that is the destination, a return before its departure)
    /// or beyond [`SearchRequest::space`].
    pub fn combination(&self, index: u64) -> Option<Combination> {
        let slots = self.depart.len() as u64 * self.back_options();
        let (airports, slot) = (index / slots, index % slots);
        let origin = *self
            .from
            .get(usize::try_from(airports / self.to.len() as u64).ok()?)?;
        let destination = self.to[usize::try_from(airports % self.to.len() as u64).ok()?];
        if origin == destination {
            return None;
        }
        let (depart, return_date) = self.dates(slot)?;
        Some(Combination {
            index,
            key: LookupKey {
                origin,
                destination,
                depart,
                return_date,
                adults: self.adults,
                currency: self.currency,
                max_stops: self.max_stops,
            },
        })
    }

    /// The valid combinations with indexes in `range`, produced lazily.
    pub fn combinations(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = Combination> + '_ {
        range.filter_map(|index| self.combination(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        "2027-01-10".parse().unwrap()
    }

    fn spec(from: &[&str], to: &[&str], depart: &str) -> SearchSpec {
        SearchSpec {
            from: from.iter().map(|s| s.to_string()).collect(),
            to: to.iter().map(|s| s.to_string()).collect(),
            depart: depart.into(),
            ..SearchSpec::default()
        }
    }

    fn parse(spec: &SearchSpec) -> Result<SearchRequest, Vec<SpecProblem>> {
        SearchRequest::parse(spec, today(), Currency::EUR)
    }

    #[test]
    fn the_issue_example_expands_to_every_airport_date_and_stay() {
        // London airports to New York airports, any day of the first week of
        // March, back 5 to 9 nights later.
        let mut s = spec(
            &["LHR", "LGW", "STN"],
            &["JFK", "EWR"],
            "2027-03-01..2027-03-07",
        );
        s.nights = Some("5..9".into());
        let request = parse(&s).unwrap();
        assert_eq!(request.total(), 3 * 2 * 7 * 5);
        let all: Vec<Combination> = request.combinations(0..request.space()).collect();
        assert_eq!(all.len() as u64, request.total());
        // Each combination once, and each stay within 5..9 nights.
        let mut keys: Vec<_> = all.iter().map(|c| c.key).collect();
        keys.sort_by_key(|k| (k.origin, k.destination, k.depart, k.return_date));
        keys.dedup();
        assert_eq!(keys.len(), all.len());
        for c in &all {
            let nights = (c.key.return_date.unwrap() - c.key.depart).get_days();
            assert!((5..=9).contains(&nights), "{c:?}");
        }
        assert_eq!(all[0].key.origin.as_str(), "LHR");
        assert_eq!(all[0].key.return_date, Some("2027-03-06".parse().unwrap()));
    }

    #[test]
    fn invalid_pairs_are_skipped_but_keep_their_index() {
        let mut s = spec(&["LHR", "JFK"], &["JFK"], "2027-03-01..2027-03-03");
        s.return_date = Some("2027-03-02..2027-03-03".into());
        let request = parse(&s).unwrap();
        // LHR-JFK only; pairs (1,2)(1,3)(2,2)(2,3)(3,3): the return on the
        // 2nd is before a departure on the 3rd.
        assert_eq!(request.total(), 5);
        let all: Vec<Combination> = request.combinations(0..request.space()).collect();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|c| c.key.origin.as_str() == "LHR"));
        // JFK-JFK occupies the second half of the index space.
        assert!(request.combination(request.space() - 1).is_none());
        assert_eq!(request.combination(request.space()), None);
    }

    #[test]
    fn too_many_combinations_is_refused_with_the_numbers() {
        let mut s = spec(
            &["LHR", "LGW", "STN", "LTN", "LCY"],
            &["JFK", "EWR", "LGA", "BOS", "IAD"],
            "2027-03-01..2027-04-30",
        );
        s.nights = Some("3..14".into());
        let problems = parse(&s).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "search");
        assert!(
            problems[0]
                .message
                .starts_with("18300 combinations (5 origins × 5 destinations × 732 date pairs)"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let mut s = spec(&["LHR", "london"], &[], "2027-01-05");
        s.return_date = Some("2027-01-09".into());
        s.nights = Some("3".into());
        s.adults = Some(12);
        s.currency = Some("euro".into());
        s.max_stops = Some(7);
        let problems = parse(&s).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "from",
                "to",
                "depart",
                "nights",
                "adults",
                "currency",
                "max_stops"
            ]
        );
        assert!(
            problems[2].message.contains("in the past"),
            "{:?}",
            problems[2]
        );
    }

    #[test]
    fn ranges_and_lists_have_caps() {
        let many: Vec<String> = (0..11)
            .map(|i| format!("X{}Y", (b'A' + i) as char))
            .collect();
        let s = SearchSpec {
            from: many,
            to: vec!["JFK".into()],
            depart: "2027-03-01..2027-06-30".into(),
            nights: Some("5..90".into()),
            ..SearchSpec::default()
        };
        let problems = parse(&s).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["from", "depart", "nights"], "{problems:?}");
        assert!(problems[0].message.contains("11 airports"));
        assert!(problems[1].message.contains("122 days"));
    }

    #[test]
    fn the_spec_round_trips_in_canonical_form() {
        let mut s = spec(&["lhr,LGW", "LHR"], &["JFK"], "2027-03-01..2027-03-02");
        s.nights = Some("7".into());
        let request = parse(&s).unwrap();
        let canonical = request.to_spec();
        assert_eq!(canonical.from, ["LHR", "LGW"]);
        assert_eq!(canonical.nights.as_deref(), Some("7"));
        assert_eq!(canonical.currency.as_deref(), Some("EUR"));
        assert_eq!(parse(&canonical).unwrap(), request);
        let json = serde_json::to_string(&canonical).unwrap();
        let back: SearchSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, canonical);
    }
}
