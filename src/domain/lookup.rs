use std::fmt;

use jiff::civil::Date;

use super::{Currency, Iata};

/// An inclusive range of calendar dates, `2027-03-01..2027-03-07`; a single
/// date is a range of one day.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub struct DateRange {
    /// First day, inclusive.
    pub first: Date,
    /// Last day, inclusive (equal to `first` for a single date).
    pub last: Date,
}

impl DateRange {
    /// A range of one day.
    pub fn single(date: Date) -> Self {
        Self {
            first: date,
            last: date,
        }
    }

    /// Parses `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let parse_one = |s: &str| -> Result<Date, String> {
            s.trim().parse::<Date>().map_err(|_| {
                format!(
                    "`{}` is not a date; expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
                    s.trim()
                )
            })
        };
        match raw.split_once("..") {
            Some((a, b)) => {
                let (first, last) = (parse_one(a)?, parse_one(b)?);
                if last < first {
                    return Err(format!("range `{raw}` ends before it starts"));
                }
                Ok(Self { first, last })
            }
            None => parse_one(raw).map(Self::single),
        }
    }

    /// Number of days in the range.
    pub fn len(&self) -> usize {
        let days = (self.last - self.first).get_days();
        usize::try_from(days).unwrap_or(0) + 1
    }

    /// Always false: a range holds at least one day.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every day in the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        self.first
            .series(jiff::Span::new().days(1))
            .take_while(move |d| *d <= self.last)
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// One concrete fare search: a single origin, destination and date (pair).
///
/// This is the unit the orchestrator fetches, caches and de-duplicates:
/// two sheet rows that expand to the same key share one upstream request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub struct LookupKey {
    /// Departure airport or city.
    pub origin: Iata,
    /// Arrival airport or city.
    pub destination: Iata,
    /// Outbound date.
    pub depart: Date,
    /// Return date for a round trip; `None` for one-way.
    pub return_date: Option<Date>,
    /// Number of adult passengers.
    pub adults: u8,
    /// Currency the price is requested in.
    pub currency: Currency,
    /// At most this many stops on each leg; `None` for any.
    pub max_stops: Option<u8>,
}

impl LookupKey {
    /// The search's identity in the price history: every field, in a
    /// stable text form, `LHR:JFK:2027-03-01:ow:1:EUR` (one-way) or
    /// `LHR:JFK:2027-03-01:2027-03-08:2:GBP` (round trip), with `:s{n}`
    /// appended for a stop limit (`LHR:JFK:2027-03-01:ow:1:EUR:s0` for
    /// direct flights only). Without a limit the key is what it was before
    /// limits existed, so stored histories keep their identity. Two lookups
    /// with the same key share one history, whichever route or watch asked.
    pub fn history_key(&self) -> String {
        let ret = match self.return_date {
            Some(date) => date.to_string(),
            None => "ow".to_owned(),
        };
        let mut key = format!(
            "{}:{}:{}:{ret}:{}:{}",
            self.origin, self.destination, self.depart, self.adults, self.currency
        );
        if let Some(stops) = self.max_stops {
            key.push_str(&format!(":s{stops}"));
        }
        key
    }
}

impl fmt::Display for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{} {}", self.origin, self.destination, self.depart)?;
        if let Some(ret) = self.return_date {
            write!(f, " return {ret}")?;
        }
        if let Some(stops) = self.max_stops {
            write!(f, " max {stops} stops")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_key_names_every_field() {
        let mut key = LookupKey {
            origin: Iata::parse("LHR").unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: "2027-03-01".parse().unwrap(),
            return_date: None,
            adults: 1,
            currency: Currency::EUR,
            max_stops: None,
        };
        assert_eq!(key.history_key(), "LHR:JFK:2027-03-01:ow:1:EUR");
        key.return_date = Some("2027-03-08".parse().unwrap());
        key.adults = 2;
        assert_eq!(key.history_key(), "LHR:JFK:2027-03-01:2027-03-08:2:EUR");
        key.max_stops = Some(0);
        assert_eq!(key.history_key(), "LHR:JFK:2027-03-01:2027-03-08:2:EUR:s0");
        key.max_stops = Some(2);
        key.return_date = None;
        assert_eq!(key.history_key(), "LHR:JFK:2027-03-01:ow:2:EUR:s2");
    }

    #[test]
    fn display_names_a_stop_limit() {
        let mut key = LookupKey {
            origin: Iata::parse("LHR").unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: "2027-03-01".parse().unwrap(),
            return_date: Some("2027-03-08".parse().unwrap()),
            adults: 1,
            currency: Currency::EUR,
            max_stops: None,
        };
        assert_eq!(key.to_string(), "LHR-JFK 2027-03-01 return 2027-03-08");
        key.max_stops = Some(1);
        assert_eq!(
            key.to_string(),
            "LHR-JFK 2027-03-01 return 2027-03-08 max 1 stops"
        );
    }

    #[test]
    fn parses_single_dates_and_ranges() {
        let single = DateRange::parse("2027-03-01").unwrap();
        assert_eq!(single.len(), 1);
        let range = DateRange::parse("2027-02-27..2027-03-02").unwrap();
        assert_eq!(range.len(), 4);
        let days: Vec<String> = range.days().map(|d| d.to_string()).collect();
        assert_eq!(
            days,
            ["2027-02-27", "2027-02-28", "2027-03-01", "2027-03-02"]
        );
        assert!(DateRange::parse("2027-03-02..2027-03-01").is_err());
        assert!(DateRange::parse("2027-13-01").is_err());
        assert!(DateRange::parse("tomorrow").is_err());
    }
}
