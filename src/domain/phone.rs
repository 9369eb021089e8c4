use std::fmt;

/// A phone number in E.164 form (`+447911123456`), validated against
/// libphonenumber's metadata when the sheet is read.
///
/// Parsing is comparatively expensive (the metadata loads on first use), so
/// numbers are parsed once per sheet row and then carried as this type.
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
        let number = phonenumber::parse(None, trimmed).map_err(|_| {
            format!("`{trimmed}` is not a phone number; expected E.164 such as +447911123456")
        })?;
        if !phonenumber::is_valid(&number) {
            return Err(format!(
                "`{trimmed}` is not a valid number for its country; expected E.164 such as +447911123456"
            ));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
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
    }
}
