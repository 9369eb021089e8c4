//! Google Flights deep links for alerts.
//!
//! Google Flights takes a search as `?tfs=<base64 protobuf>`. The message
//! layout is the one the fast-flights library uses (and Google accepts):
//!
//! ```text
//! message Airport    { string airport = 2; }
//! message FlightData { string date = 2; Airport from_flight = 13; Airport to_flight = 14;
//!                      optional int32 max_stops = 5; }
//! message Info       { repeated FlightData data = 3; repeated Passenger passengers = 8 (packed);
//!                      Seat seat = 9; Trip trip = 19; }
//! ```
//!
//! A round trip carries two `FlightData` (outbound, return). The bytes are
//! written by hand in field order — the message is tiny and fixed, which
//! does not justify a protobuf dependency. [`tfs`] encodes them as
//! *standard* base64 (`+/=`), as fast-flights does; the link carries them
//! in the web-safe alphabet (`-_`) without padding, as Google's own
//! Flights links do, so nothing in it needs percent-encoding.
//!
//! The link must fit in one SMS segment with the alert
//! ([`crate::notify::sms::render_with_link`]), so it carries the search and
//! nothing else: no `hl` (the page follows the reader's language) and no
//! `curr` (prices show in the reader's currency, which may differ from the
//! alert's).

use crate::domain::LookupKey;

/// `Passenger::ADULT`.
const ADULT: u8 = 1;
/// `Seat::ECONOMY`.
const ECONOMY: u8 = 1;
/// `Trip::ROUND_TRIP`.
const ROUND_TRIP: u8 = 1;
/// `Trip::ONE_WAY`.
const ONE_WAY: u8 = 2;

/// The Google Flights search link for `key`: 90 characters for a one-way
/// search for one adult, 128 for a round trip.
pub fn google_flights_url(key: &LookupKey) -> String {
    format!(
        "https://www.google.com/travel/flights?tfs={}",
        web_safe(&tfs(key, None))
    )
}

/// The `tfs` value (standard base64) for `key`, optionally limiting stops.
pub fn tfs(key: &LookupKey, max_stops: Option<u32>) -> String {
    let mut info = Vec::with_capacity(64);
    let outbound = flight_data(
        &key.depart.to_string(),
        key.origin.as_str(),
        key.destination.as_str(),
        max_stops,
    );
    put_bytes(&mut info, 3, &outbound);
    if let Some(back) = key.return_date {
        let inbound = flight_data(
            &back.to_string(),
            key.destination.as_str(),
            key.origin.as_str(),
            max_stops,
        );
        put_bytes(&mut info, 3, &inbound);
    }
    // Passengers: one packed entry per adult.
    let passengers = vec![ADULT; usize::from(key.adults.clamp(1, 9))];
    put_bytes(&mut info, 8, &passengers);
    put_varint_field(&mut info, 9, u64::from(ECONOMY));
    let trip = if key.return_date.is_some() {
        ROUND_TRIP
    } else {
        ONE_WAY
    };
    put_varint_field(&mut info, 19, u64::from(trip));
    base64_standard(&info)
}

fn flight_data(date: &str, from: &str, to: &str, max_stops: Option<u32>) -> Vec<u8> {
    let mut data = Vec::with_capacity(32);
    put_bytes(&mut data, 2, date.as_bytes());
    if let Some(stops) = max_stops {
        put_varint_field(&mut data, 5, u64::from(stops));
    }
    put_bytes(&mut data, 13, &airport(from));
    put_bytes(&mut data, 14, &airport(to));
    data
}

fn airport(code: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    put_bytes(&mut out, 2, code.as_bytes());
    out
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint field (wire type 0).
fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, value);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in symbols.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 in the web-safe alphabet without padding: `+`, `/` and
/// `=` would each cost three characters percent-encoded in a query value.
fn web_safe(b64: &str) -> String {
    b64.trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Iata};

    fn key(ret: Option<&str>, adults: u8) -> LookupKey {
        LookupKey {
            origin: Iata::parse("LHR").unwrap(),
            destination: Iata::parse("JFK").unwrap(),
            depart: "2026-12-10".parse().unwrap(),
            return_date: ret.map(|r| r.parse().unwrap()),
            adults,
            currency: Currency::parse("GBP").unwrap(),
            max_stops: None,
        }
    }

    /// Decodes standard or web-safe base64 (test helper, to check the bytes too).
    fn unbase64(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            _ => 63,
        };
        let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::new();
        for chunk in clean.chunks(4) {
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                n |= u32::from(value(c)) << (18 - 6 * i);
            }
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    #[test]
    fn matches_the_known_one_way_link() {
        // The worked example: LHR->JFK 2026-12-10, one-way, economy, 1 adult.
        assert_eq!(
            tfs(&key(None, 1), None),
            "GhoSCjIwMjYtMTItMTBqBRIDTEhScgUSA0pGS0IBAUgBmAEC"
        );
        let hex: String = unbase64(&tfs(&key(None, 1), None))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "1a1a120a323032362d31322d31306a0512034c4852720512034a464b4201014801980102"
        );
    }

    #[test]
    fn matches_the_known_nonstop_link_with_padding() {
        assert_eq!(
            tfs(&key(None, 1), Some(0)),
            "GhwSCjIwMjYtMTItMTAoAGoFEgNMSFJyBRIDSkZLQgEBSAGYAQI="
        );
    }

    #[test]
    fn round_trips_carry_both_legs_and_every_passenger() {
        let bytes = unbase64(&tfs(&key(Some("2026-12-17"), 2), None));
        // Two FlightData entries: out LHR->JFK, back JFK->LHR.
        let out = b"\x12\x0a2026-12-10j\x05\x12\x03LHRr\x05\x12\x03JFK";
        let back = b"\x12\x0a2026-12-17j\x05\x12\x03JFKr\x05\x12\x03LHR";
        let mut expected = vec![0x1a, out.len() as u8];
        expected.extend_from_slice(out);
        expected.extend_from_slice(&[0x1a, back.len() as u8]);
        expected.extend_from_slice(back);
        // Two adults (packed), economy, round trip.
        expected.extend_from_slice(&[0x42, 0x02, 0x01, 0x01, 0x48, 0x01, 0x98, 0x01, 0x01]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn the_url_carries_only_the_search() {
        let url = google_flights_url(&key(None, 1));
        assert_eq!(
            url,
            "https://www.google.com/travel/flights?tfs=GhoSCjIwMjYtMTItMTBqBRIDTEhScgUSA0pGS0IBAUgBmAEC"
        );
        assert_eq!(url.len(), 90);
        assert_eq!(google_flights_url(&key(Some("2026-12-17"), 1)).len(), 128);
    }

    #[test]
    fn the_url_uses_web_safe_base64_without_padding() {
        assert_eq!(web_safe("ab+/c="), "ab-_c");
        assert_eq!(web_safe("ab+/c=="), "ab-_c");
        // Two adults make 37 bytes: standard base64 pads them with `==`,
        // which would cost six characters percent-encoded.
        let two = key(None, 2);
        let standard = tfs(&two, None);
        let url = google_flights_url(&two);
        let (_, in_url) = url.split_once("?tfs=").unwrap();
        assert!(standard.ends_with("=="), "{standard}");
        assert!(!in_url.contains(['+', '/', '=', '%', '&']), "{url}");
        assert_eq!(unbase64(in_url), unbase64(&standard));
        assert_eq!(url.len(), 92);
    }
}
