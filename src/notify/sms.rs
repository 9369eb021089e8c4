//! The alert text: always one GSM-7 segment (160 characters).
//!
//! SMS is billed per segment, and a single character outside GSM-7 (an arrow,
//! an emoji, a curly quote) switches the whole message to UCS-2, where one
//! segment holds only 70 characters. So [`render`] builds every alert from
//! GSM-7 characters only and fits it into [`MAX_SINGLE_SEGMENT`] septets:
//!
//! ```text
//! farewatch: LHR-JFK 2027-03-01 return 2027-03-08 now GBP 312.46 (your max GBP 350.00). Summer
//! ```
//!
//! The dates, the price and the maximum are never shortened. When space is
//! short the user's label goes first (shortened with `...`, then dropped),
//! then a long multi-airport route is abbreviated (`LHR/LGW+13-JFK+14`).

use jiff::civil::Date;

use crate::domain::Money;

/// Longest body that fits one GSM-7 SMS segment.
pub const MAX_SINGLE_SEGMENT: usize = 160;

/// Every alert (fare or flight) starts with this, so the recipient knows
/// who is texting.
pub(crate) const PREFIX: &str = "farewatch: ";

/// Marks a shortened label or route.
const ELLIPSIS: &str = "...";

/// Fewest label septets worth sending before the [`ELLIPSIS`]; a shorter
/// stub says nothing, so the label is dropped instead.
const MIN_LABEL_SEPTETS: usize = 3;

/// What an alert says.
#[derive(Clone, Debug)]
pub struct AlertText<'a> {
    /// `LHR|LGW-JFK` style route name.
    pub route: &'a str,
    /// The row label, if any (dropped first when space is short).
    pub label: Option<&'a str>,
    /// Departure date of the cheapest fare.
    pub depart: Date,
    /// Return date of the cheapest fare, for round trips.
    pub return_date: Option<Date>,
    /// The price found.
    pub price: Money,
    /// The user's maximum.
    pub max_price: Money,
}

/// Renders the alert in at most [`MAX_SINGLE_SEGMENT`] GSM-7 septets.
///
/// The route's `|` separators become `/` (a GSM-7 extension character costs
/// two septets and reads worse); label and route are sanitised to GSM-7.
pub fn render(text: &AlertText<'_>) -> String {
    let dates = match text.return_date {
        Some(back) => format!("{} return {back}", text.depart),
        None => text.depart.to_string(),
    };
    // Dates and amounts are digits, ASCII letters, `-` and `.`: all GSM-7,
    // with the prefix at most 114 septets (19-digit amounts, year -9999), so
    // the route always keeps some room.
    let tail = format!(" {dates} now {} (your max {}).", text.price, text.max_price);
    let route_room =
        MAX_SINGLE_SEGMENT.saturating_sub(septets(PREFIX).saturating_add(septets(&tail)));
    let route = shorten_route(&sanitize(&text.route.replace('|', "/")), route_room);

    let mut out = format!("{PREFIX}{route}{tail}");
    if let Some(label) = text.label.map(sanitize).filter(|l| !l.is_empty()) {
        let room = MAX_SINGLE_SEGMENT.saturating_sub(septets(&out) + 1);
        if let Some(label) = fit_label(&label, room) {
            out.push(' ');
            out.push_str(&label);
        }
    }
    debug_assert!(gsm7_len(&out).is_some_and(|n| n <= MAX_SINGLE_SEGMENT));
    out
}

/// Renders the alert with a link when one still fits the single segment.
///
/// `links` are tried in order (the Google Flights link first, then the
/// provider's own). A link is only ever added whole: a cut link is worse
/// than none. The label is given up before a link is, since the link is
/// what lets the user act on the alert.
pub fn render_with_link(text: &AlertText<'_>, links: &[&str]) -> String {
    let without_label = AlertText {
        label: None,
        ..text.clone()
    };
    for link in links {
        if gsm7_len(link).is_none() {
            continue;
        }
        for candidate in [text, &without_label] {
            let body = format!("{} {link}", render(candidate));
            if gsm7_len(&body).is_some_and(|n| n <= MAX_SINGLE_SEGMENT) {
                return body;
            }
        }
    }
    render(text)
}

/// Septets `s` takes in GSM-7, or `None` if it needs UCS-2.
pub fn gsm7_len(s: &str) -> Option<usize> {
    s.chars().map(char_septets).sum()
}

/// Septets one character takes in GSM 03.38: 1 for the basic set, 2 for the
/// extension set (escape + character), `None` outside both.
pub(crate) fn char_septets(c: char) -> Option<usize> {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        ' ' | '\n' | '\r' | '!' | '"' | '#' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ','
        | '-' | '.' | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '$' | '_' => Some(1),
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Septets of a string known to be GSM-7 (the output of [`sanitize`]);
/// `usize::MAX` for anything else, so it never fits.
pub(crate) fn septets(s: &str) -> usize {
    gsm7_len(s).unwrap_or(usize::MAX)
}

/// Free text into GSM-7 on one line: whitespace (newlines, tabs, form feed)
/// becomes single spaces, control and invisible characters go, common
/// typographic lookalikes become their GSM-7 twins, anything else becomes
/// `?` (one `?` per run). Fare alerts and flight alerts
/// ([`crate::status::alerts`]) both reduce user and provider text with it.
pub(crate) fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut replaced = false;
    for c in raw.chars() {
        let piece: &str = match c {
            c if c.is_whitespace() => " ",
            // Zero-width characters, BOM, variation selectors (emoji styling)
            // and control characters vanish without ending a `?` run.
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}' => continue,
            c if c.is_control() => continue,
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' | '\u{B4}' => "'",
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' | '\u{AB}' | '\u{BB}' => "\"",
            '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
            '\u{2026}' => "...",
            '\u{2192}' => "->",
            '\u{2190}' => "<-",
            c if char_septets(c).is_some() => {
                out.push(c);
                replaced = false;
                continue;
            }
            _ => {
                if !replaced {
                    out.push('?');
                    replaced = true;
                }
                continue;
            }
        };
        out.push_str(piece);
        replaced = false;
    }
    // Collapse the spaces left by whitespace runs and dropped characters.
    out.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The longest prefix of GSM-7 `s` that takes at most `max` septets.
pub(crate) fn truncate_septets(s: &str, max: usize) -> &str {
    let mut used: usize = 0;
    for (i, c) in s.char_indices() {
        used = used.saturating_add(char_septets(c).unwrap_or(usize::MAX));
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The label in at most `room` septets: whole, shortened with `...`, or not at all.
fn fit_label(label: &str, room: usize) -> Option<String> {
    if septets(label) <= room {
        return Some(label.to_owned());
    }
    let keep = room.checked_sub(ELLIPSIS.len())?;
    if keep < MIN_LABEL_SEPTETS {
        return None;
    }
    let head = truncate_septets(label, keep).trim_end();
    (septets(head) >= MIN_LABEL_SEPTETS).then(|| format!("{head}{ELLIPSIS}"))
}

/// The route in at most `room` septets.
///
/// A multi-airport route keeps as many airports as fit on each side and
/// counts the rest (`LHR/LGW+13-JFK+14`); anything else is cut with `...`.
fn shorten_route(route: &str, room: usize) -> String {
    if septets(route) <= room {
        return route.to_owned();
    }
    if let Some((origins, destinations)) = route.split_once('-') {
        if !destinations.contains('-') {
            let origins: Vec<&str> = origins.split('/').collect();
            let destinations: Vec<&str> = destinations.split('/').collect();
            let (mut keep_o, mut keep_d) = (origins.len(), destinations.len());
            loop {
                let candidate = format!(
                    "{}-{}",
                    compact(&origins, keep_o),
                    compact(&destinations, keep_d)
                );
                if septets(&candidate) <= room {
                    return candidate;
                }
                // Drop an airport from the side that still shows more.
                if keep_o > 1 && keep_o >= keep_d {
                    keep_o -= 1;
                } else if keep_d > 1 {
                    keep_d -= 1;
                } else {
                    break;
                }
            }
        }
    }
    match room.checked_sub(ELLIPSIS.len()) {
        Some(keep) => format!("{}{ELLIPSIS}", truncate_septets(route, keep)),
        None => truncate_septets(route, room).to_owned(),
    }
}

/// The first `keep` airports of `side`, then how many more (`LHR/LGW+13`).
fn compact(side: &[&str], keep: usize) -> String {
    let shown = side[..keep].join("/");
    match side.len() - keep {
        0 => shown,
        rest => format!("{shown}+{rest}"),
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;
    use crate::domain::{Currency, Iata, LookupKey, Money};
    use crate::links::google_flights_url;

    fn text<'a>(label: Option<&'a str>) -> AlertText<'a> {
        AlertText {
            route: "LHR-JFK",
            label,
            depart: "2027-03-01".parse().unwrap(),
            return_date: None,
            price: Money::from_minor(312_46, Currency::parse("GBP").unwrap()),
            max_price: Money::from_minor(350_00, Currency::parse("GBP").unwrap()),
        }
    }

    #[test]
    fn a_short_link_is_appended_whole() {
        let body = render_with_link(&text(Some("NYC")), &["https://g.co/x"]);
        assert!(body.ends_with(" https://g.co/x"), "{body}");
        assert!(body.contains("NYC"));
        assert!(gsm7_len(&body).unwrap() <= MAX_SINGLE_SEGMENT);
    }

    /// The alert as the engine builds it for a one-way lookup: the route as
    /// `ORIGIN-DESTINATION`, the Google Flights link first, then the provider's.
    fn engine_alert(
        origin: &str,
        destination: &str,
        price: i64,
        max: i64,
        label: Option<&str>,
    ) -> (String, String) {
        let gbp = Currency::parse("GBP").unwrap();
        let key = LookupKey {
            origin: Iata::parse(origin).unwrap(),
            destination: Iata::parse(destination).unwrap(),
            depart: "2027-03-01".parse().unwrap(),
            return_date: None,
            adults: 1,
            currency: gbp,
            max_stops: None,
        };
        let google = google_flights_url(&key);
        let route = format!("{}-{}", key.origin, key.destination);
        let text = AlertText {
            route: &route,
            label,
            depart: key.depart,
            return_date: key.return_date,
            price: Money::from_minor(price, gbp),
            max_price: Money::from_minor(max, gbp),
        };
        let body = render_with_link(
            &text,
            &[google.as_str(), "https://provider.example/offer/1"],
        );
        (body, google)
    }

    #[test]
    fn a_typical_one_way_alert_carries_the_google_flights_link_in_one_segment() {
        let (body, google) = engine_alert("LHR", "JFK", 312_46, 350_00, None);
        assert_eq!(
            body,
            "farewatch: LHR-JFK 2027-03-01 now GBP 312.46 (your max GBP 350.00). \
             https://www.google.com/travel/flights?tfs=GhoSCjIwMjctMDMtMDFqBRIDTEhScgUSA0pGS0IBAUgBmAEC"
        );
        assert_eq!(gsm7_len(&body), Some(158));
        assert!(body.ends_with(&format!(" {google}")));

        // Any airports, four-digit prices, and a label (given up for the link).
        for (origin, destination) in [("LHR", "JFK"), ("SIN", "AUS"), ("CDG", "NRT")] {
            for (price, max) in [(99_00, 100_00), (312_46, 350_00), (1234_56, 1500_00)] {
                for label in [None, Some("Summer in NYC")] {
                    let (body, google) = engine_alert(origin, destination, price, max, label);
                    assert!(body.ends_with(&format!(" {google}")), "{body}");
                    let len = gsm7_len(&body).unwrap();
                    assert!(len <= MAX_SINGLE_SEGMENT, "{len}: {body}");
                }
            }
        }
    }

    #[test]
    fn the_label_gives_way_to_the_link_and_a_long_link_to_the_next() {
        let label = "A rather long label about the trip";
        let google = format!(
            "https://www.google.com/travel/flights?tfs={}",
            "A".repeat(48)
        );
        let body = render_with_link(&text(Some(label)), &[google.as_str()]);
        assert!(body.ends_with(&google) && !body.contains(label), "{body}");
        let too_long = "https://example.com/".to_owned() + &"x".repeat(150);
        let body = render_with_link(&text(Some(label)), &[too_long.as_str(), "https://b.co/1"]);
        assert!(body.ends_with(" https://b.co/1"), "{body}");
        let body = render_with_link(&text(Some(label)), &[too_long.as_str()]);
        assert_eq!(
            body,
            render(&text(Some(label))),
            "no link fits: the plain alert"
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::Currency;

    fn gbp(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("GBP").unwrap())
    }

    fn date(y: i16, m: i8, d: i8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    fn alert<'a>(route: &'a str, label: Option<&'a str>, back: Option<Date>) -> AlertText<'a> {
        AlertText {
            route,
            label,
            depart: date(2027, 3, 1),
            return_date: back,
            price: gbp(31246),
            max_price: gbp(35000),
        }
    }

    fn assert_one_segment(text: &str) {
        let len = gsm7_len(text).unwrap_or_else(|| panic!("not GSM-7: {text:?}"));
        assert!(len <= MAX_SINGLE_SEGMENT, "{len} septets: {text:?}");
    }

    #[test]
    fn renders_a_one_way_alert() {
        assert_eq!(
            render(&alert("LHR-JFK", None, None)),
            "farewatch: LHR-JFK 2027-03-01 now GBP 312.46 (your max GBP 350.00)."
        );
    }

    #[test]
    fn renders_a_round_trip_alert_with_its_label() {
        let text = render(&alert(
            "LHR|LGW-JFK",
            Some("Summer in NYC"),
            Some(date(2027, 3, 8)),
        ));
        assert_eq!(
            text,
            "farewatch: LHR/LGW-JFK 2027-03-01 return 2027-03-08 now GBP 312.46 (your max GBP 350.00). Summer in NYC"
        );
        assert_one_segment(&text);
    }

    #[test]
    fn counts_extension_characters_as_two_septets() {
        assert_eq!(gsm7_len("abc"), Some(3));
        assert_eq!(gsm7_len("€"), Some(2));
        assert_eq!(gsm7_len("{}[]"), Some(8));
        assert_eq!(gsm7_len("a^b~c|d\\"), Some(4 + 4 * 2));
        assert_eq!(
            gsm7_len("\u{0C}"),
            Some(2),
            "form feed is in the extension set"
        );
        assert_eq!(gsm7_len("@£$¥èéÇØΔ_ΦΩß¤¡¿§ÄÖÑÜäöñüà"), Some(26));
        assert_eq!(gsm7_len("line\r\nbreak"), Some(11));
        assert_eq!(gsm7_len(""), Some(0));
    }

    #[test]
    fn rejects_characters_outside_gsm7() {
        for s in ["→", "👍", "`", "ç", "á", "\t", "日本", "\u{2019}"] {
            assert_eq!(gsm7_len(s), None, "{s:?}");
        }
    }

    #[test]
    fn sanitises_a_non_gsm_label() {
        let text = render(&alert(
            "LHR-JFK",
            Some("Ski 🎿⛷️ trip → Zürich\n\t“fast”\u{0}"),
            None,
        ));
        assert_eq!(
            text,
            "farewatch: LHR-JFK 2027-03-01 now GBP 312.46 (your max GBP 350.00). Ski ? trip -> Zürich \"fast\""
        );
        assert_one_segment(&text);
    }

    #[test]
    fn shortens_a_long_label_with_an_ellipsis() {
        let label = "a very long label ".repeat(20);
        let text = render(&alert("LHR-JFK", Some(&label), Some(date(2027, 3, 8))));
        assert_eq!(gsm7_len(&text), Some(MAX_SINGLE_SEGMENT), "{text:?}");
        assert!(text.ends_with("..."), "{text:?}");
        assert!(text.contains("). a very long label"), "{text:?}");
    }

    #[test]
    fn drops_a_label_that_cannot_show_enough() {
        assert_eq!(fit_label("Summer trip", 5), None);
        assert_eq!(fit_label("Summer trip", 6).as_deref(), Some("Sum..."));
        assert_eq!(fit_label("Summer trip", 11).as_deref(), Some("Summer trip"));
        // Never ends a shortened label on a space, nor splits a two-septet character.
        assert_eq!(fit_label("ab cd", 4), None);
        assert_eq!(fit_label("abc€€€€", 8).as_deref(), Some("abc€..."));
    }

    #[test]
    fn abbreviates_a_thirty_airport_route() {
        let origins: Vec<String> = (0..15).map(|i| format!("O{i:02}")).collect();
        let destinations: Vec<String> = (0..15).map(|i| format!("D{i:02}")).collect();
        let route = format!("{}-{}", origins.join("|"), destinations.join("|"));
        let label = "x".repeat(100);
        let text = render(&alert(&route, Some(&label), Some(date(2027, 3, 8))));
        assert_one_segment(&text);
        assert!(
            text.starts_with("farewatch: O00/O01/"),
            "keeps the first airports: {text:?}"
        );
        assert!(text.contains("-D00/"), "{text:?}");
        assert!(
            text.contains("now GBP 312.46 (your max GBP 350.00)."),
            "{text:?}"
        );
        assert!(
            !text.contains("xxx"),
            "the label goes before the route: {text:?}"
        );
        let shown = text.matches('/').count() + 2;
        assert!(shown >= 10, "only {shown} airports shown: {text:?}");
    }

    #[test]
    fn extreme_amounts_and_dates_still_leave_room_for_the_route() {
        let text = render(&AlertText {
            route: "LHR|LGW|STN|LTN|SEN|LCY-JFK|EWR|LGA|BOS|PHL|IAD",
            label: Some("label"),
            depart: date(-9999, 1, 1),
            return_date: Some(date(9999, 12, 28)),
            price: gbp(i64::MIN),
            max_price: gbp(i64::MAX),
        });
        assert_one_segment(&text);
        assert!(text.starts_with("farewatch: LHR"), "{text:?}");
        assert!(text.contains("now GBP -92233720368547758.08 "), "{text:?}");
        assert!(
            text.contains("(your max GBP 92233720368547758.07)."),
            "{text:?}"
        );

        let codes: Vec<String> = (0..30).map(|i| format!("A{i:02}")).collect();
        let route = format!("{}-{}", codes[..15].join("|"), codes[15..].join("|"));
        let text = render(&AlertText {
            route: &route,
            label: None,
            depart: date(-9999, 1, 1),
            return_date: Some(date(9999, 12, 28)),
            price: gbp(i64::MIN),
            max_price: gbp(i64::MAX),
        });
        assert_one_segment(&text);
        assert!(
            text.starts_with("farewatch: A00/A01/A02/A03/A04+10-A15/A16/A17/A18/A19/A20+9 "),
            "{text:?}"
        );
    }

    #[test]
    fn compacts_the_longer_side_first() {
        assert_eq!(shorten_route("AAA/BBB/CCC-DDD", 15), "AAA/BBB/CCC-DDD");
        assert_eq!(shorten_route("AAA/BBB/CCC-DDD", 14), "AAA/BBB+1-DDD");
        assert_eq!(shorten_route("AAA/BBB/CCC-DDD", 9), "AAA+2-DDD");
        assert_eq!(shorten_route("AAA/BBB/CCC-DDD", 8), "AAA/B...");
        assert_eq!(shorten_route("nonsense route", 8), "nonse...");
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec!["GBP", "EUR", "JPY", "KWD", "USD"])
            .prop_map(|c| Currency::parse(c).unwrap())
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (-9999i16..=9999, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
    }

    fn route() -> impl Strategy<Value = String> {
        let side = prop::collection::vec("[A-Z]{3}", 1..20).prop_map(|codes| codes.join("|"));
        prop_oneof![
            (side.clone(), side).prop_map(|(o, d)| format!("{o}-{d}")),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn always_one_gsm7_segment_with_the_price(
            route in route(),
            label in prop::option::of(any::<String>()),
            depart in any_date(),
            back in prop::option::of(any_date()),
            price in any::<i64>(),
            max in any::<i64>(),
            cur in currency(),
        ) {
            let price = Money::from_minor(price, cur);
            let max_price = Money::from_minor(max, cur);
            let text = render(&AlertText {
                route: &route,
                label: label.as_deref(),
                depart,
                return_date: back,
                price,
                max_price,
            });
            let len = gsm7_len(&text);
            prop_assert!(len.is_some(), "not GSM-7: {:?}", text);
            prop_assert!(len.unwrap() <= MAX_SINGLE_SEGMENT, "{:?} septets: {:?}", len, text);
            let price_text = format!("now {price} ");
            let max_text = format!("(your max {max_price}).");
            prop_assert!(text.contains(&price_text), "{:?}", text);
            prop_assert!(text.contains(&max_text), "{:?}", text);
        }
    }
}
