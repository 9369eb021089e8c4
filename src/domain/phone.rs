use std::fmt;

/// A phone number in E.164 form (`+447911123456`), validated against
/// libphonenumber's metadata when the sheet is read.
///
/// Validation uses `rlibphonenumber`, a port of libphonenumber that checks a
/// number in ~2 µs after loading its metadata once (~8 ms); the `phonenumber`
/// crate used before took ~22 µs a number and ~50 ms to load, most of it
/// hashing regex patterns in its cache on every match (a fifth of a
/// 10,000-route check's CPU). Numbers are parsed once per sheet row and then
/// carried as this type.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct E164(String);

impl E164 {
    /// Parses a number that must carry its country code (`+44 7911 123456`
    /// is accepted and normalised to `+447911123456`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if !trimmed.starts_with('+') {
            return Err(format!(
                "`{trimmed}` is not an E.164 phone number; expected a leading + and country code, like +447911123456"
            ));
        }
        let util = &*rlibphonenumber::PHONE_NUMBER_UTIL;
        let number = util.parse(trimmed, None).map_err(|_| {
            format!("`{trimmed}` is not a phone number; expected E.164 such as +447911123456")
        })?;
        if !util.is_valid_number(&number) {
            return Err(format!(
                "`{trimmed}` is not a valid number for its country; expected E.164 such as +447911123456"
            ));
        }
        Ok(Self(
            util.format(&number, rlibphonenumber::PhoneNumberFormat::E164)
                .into_owned(),
        ))
    }

    /// The number as `+<country><subscriber>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a string already known to be E.164 (read back from our own store).
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            E164::parse("+44 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
        assert_eq!(
            E164::parse("+14155552671").unwrap().as_str(),
            "+14155552671"
        );
        assert!(E164::parse("07700900123").is_err(), "needs a country code");
        assert!(E164::parse("+1").is_err());
        assert!(E164::parse("+hello").is_err());
        // Parses, but no such number exists in the UK plan.
        assert!(E164::parse("+44 1").is_err());
        assert!(E164::parse("+44 0000 000000").is_err());
        // Other countries' formats.
        assert_eq!(
            E164::parse("+33 6 12 34 56 78").unwrap().as_str(),
            "+33612345678"
        );
        assert_eq!(
            E164::parse("+1 (415) 555-2671").unwrap().as_str(),
            "+14155552671"
        );
    }
}
