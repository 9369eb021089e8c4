use std::fmt;

/// A three-letter IATA airport or city code such as `LHR` or `LON`.
///
/// Stored as three upper-case ASCII bytes so it is `Copy` and hashes fast;
/// lower-case input is accepted and normalised.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iata([u8; 3]);

impl Iata {
    /// Parses `lhr` or `LHR`; anything but exactly three ASCII letters is an error.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(format!(
                "`{trimmed}` is not an IATA code; expected three letters such as LHR"
            ));
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The code as a `&str`, e.g. `"LHR"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl AsRef<str> for Iata {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Iata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Iata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iata({})", self.as_str())
    }
}

impl serde::Serialize for Iata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Iata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Iata::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(Iata::parse(" lhr ").unwrap().as_str(), "LHR");
        assert!(Iata::parse("LH").is_err());
        assert!(Iata::parse("LHRX").is_err());
        assert!(Iata::parse("L1R").is_err());
        assert!(Iata::parse("ÄBC").is_err());
    }
}
