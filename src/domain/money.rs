use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// An ISO 4217 currency code such as `EUR`, with its minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Currencies whose minor unit is not 1/100. Everything else uses two
/// decimals, which is right for the vast majority of ISO 4217 codes.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Active ISO 4217 currency codes (sorted, for a binary search). A typo such
/// as `EUE` is caught when the sheet is read rather than by the provider.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

impl Currency {
    /// The euro, farewatch's default when neither the sheet nor `FAREWATCH_CURRENCY` says.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses `eur` or `EUR`: three ASCII letters, normalised to upper case.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(format!(
                "`{trimmed}` is not a currency; expected an ISO 4217 code such as EUR"
            ));
        }
        let code = Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]);
        if ISO_4217.binary_search(&code.as_str()).is_err() {
            return Err(format!(
                "`{trimmed}` is not an ISO 4217 currency code; expected one such as EUR, GBP or USD"
            ));
        }
        Ok(code)
    }

    /// The code as a `&str`, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// How many decimal digits the minor unit has (2 for EUR, 0 for JPY).
    pub fn exponent(&self) -> u32 {
        let code = self.as_str();
        if ZERO_DECIMAL.contains(&code) {
            0
        } else if THREE_DECIMAL.contains(&code) {
            3
        } else {
            2
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Why an amount could not be turned into [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number at all.
    #[error("`{0}` is not an amount; expected a decimal number such as 349.99")]
    NotANumber(String),
    /// More decimals than the currency has minor units (e.g. `1.234` EUR).
    #[error("`{amount}` has more decimals than {currency} allows ({exponent})")]
    TooPrecise {
        /// The amount as given.
        amount: String,
        /// Its currency.
        currency: Currency,
        /// Decimals the currency allows.
        exponent: u32,
    },
    /// Does not fit in 64-bit minor units.
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// An amount of money in integer minor units (cents) with its currency.
///
/// Integer minor units make comparisons exact; amounts in different
/// currencies are never compared ([`Money::checked_cmp`] returns `None`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// The amount in the currency's minor unit (cents for EUR).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount from minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses an exact decimal such as `"355.34"` (sheet input: more decimals
    /// than the currency has is an error, never silently rounded).
    pub fn parse_exact(raw: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = raw.trim();
        let decimal =
            Decimal::from_str(trimmed).map_err(|_| MoneyError::NotANumber(trimmed.to_owned()))?;
        let exponent = currency.exponent();
        if decimal.normalize().scale() > exponent {
            return Err(MoneyError::TooPrecise {
                amount: trimmed.to_owned(),
                currency,
                exponent,
            });
        }
        Self::from_decimal(decimal, currency)
            .ok_or_else(|| MoneyError::Overflow(trimmed.to_owned()))
    }

    /// Parses a provider's price string, rounding half away from zero to the
    /// currency's minor unit (providers sometimes send more precision).
    pub fn parse_rounded(raw: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = raw.trim();
        let decimal =
            Decimal::from_str(trimmed).map_err(|_| MoneyError::NotANumber(trimmed.to_owned()))?;
        Self::from_decimal(decimal, currency)
            .ok_or_else(|| MoneyError::Overflow(trimmed.to_owned()))
    }

    /// Converts a decimal amount, rounding to the minor unit; `None` on overflow.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Option<Self> {
        let exponent = currency.exponent();
        let scaled = amount
            .round_dp_with_strategy(
                exponent,
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            )
            .checked_mul(Decimal::from(10_i64.pow(exponent)))?;
        let minor = i64::try_from(scaled.trunc()).ok()?;
        Some(Self { minor, currency })
    }

    /// The amount as a decimal, e.g. `355.34`.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// The amount as the `f64` nearest to it (the JSON report's number):
    /// the same value as parsing [`to_decimal`](Self::to_decimal)'s text,
    /// without the text. Below 2^53 minor units both operands of the
    /// division are exact and IEEE division rounds once, to the nearest.
    pub fn to_f64(&self) -> f64 {
        const EXACT: u64 = 1 << 53;
        let exponent = self.currency.exponent();
        if self.minor.unsigned_abs() < EXACT && exponent <= 22 {
            self.minor as f64 / 10_f64.powi(exponent as i32)
        } else {
            self.to_decimal().to_string().parse().unwrap_or(f64::NAN)
        }
    }

    /// Compares two amounts of the same currency; `None` across currencies.
    pub fn checked_cmp(&self, other: &Money) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.minor.cmp(&other.minor))
    }

    /// The amount without its currency code, e.g. `355.34`.
    pub fn amount_string(&self) -> String {
        self.to_decimal().to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_decimal())
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn to_f64_is_the_parsed_decimal(
            minor in proptest::prop_oneof![
                -100_000_000_i64..100_000_000,
                -(1_i64 << 53)..(1_i64 << 53),
                proptest::prelude::any::<i64>(),
            ],
            code in 0usize..3,
        ) {
            let currency = Currency::parse(["JPY", "GBP", "KWD"][code]).unwrap();
            let money = Money::from_minor(minor, currency);
            let parsed: f64 = money.to_decimal().to_string().parse().unwrap();
            proptest::prop_assert_eq!(money.to_f64().to_bits(), parsed.to_bits());
        }
    }

    use super::*;

    fn eur() -> Currency {
        Currency::parse("eur").unwrap()
    }

    #[test]
    fn parses_exact_amounts_into_minor_units() {
        assert_eq!(Money::parse_exact("355.34", eur()).unwrap().minor, 35534);
        assert_eq!(Money::parse_exact("355", eur()).unwrap().minor, 35500);
        assert_eq!(Money::parse_exact("355.30", eur()).unwrap().minor, 35530);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse_exact("12000", jpy).unwrap().minor, 12000);
        assert!(matches!(
            Money::parse_exact("1.234", eur()),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse_exact("abc", eur()),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse_exact("99999999999999999999999", eur()),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn rounds_provider_prices_half_away_from_zero() {
        assert_eq!(Money::parse_rounded("10.005", eur()).unwrap().minor, 1001);
        assert_eq!(Money::parse_rounded("10.004", eur()).unwrap().minor, 1000);
    }

    #[test]
    fn only_iso_4217_codes_are_currencies() {
        assert_eq!(Currency::parse(" gbp ").unwrap().as_str(), "GBP");
        assert!(Currency::parse("ABC").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
    }

    #[test]
    fn never_compares_across_currencies() {
        let a = Money::from_minor(100, eur());
        let b = Money::from_minor(100, Currency::parse("USD").unwrap());
        assert_eq!(a.checked_cmp(&b), None);
        assert_eq!(a.checked_cmp(&a), Some(Ordering::Equal));
    }

    #[test]
    fn displays_with_currency() {
        assert_eq!(Money::from_minor(35534, eur()).to_string(), "EUR 355.34");
        assert_eq!(Money::from_minor(35500, eur()).amount_string(), "355.00");
    }
}
