//! Exact decimal values as they travel on the wire (strings) and rest in PostgreSQL
//! (`numeric`). No binary floating point ever touches a figure.
//!
//! Accepted input: an optional sign, digits with an optional fraction, and an optional
//! exponent (`30`, `-2.5`, `21.50`, `3e10`, `1.5E-3`). Refused: empty strings, spaces,
//! thousands separators, `NaN`, infinities, hexadecimal, more than
//! [`MAX_INPUT_LEN`] characters, more than [`MAX_INTEGER_DIGITS`] digits before the
//! point or [`MAX_SCALE`] after it once the exponent is applied, and exponents beyond
//! ±[`MAX_EXPONENT`]. The value is kept in plain notation with the scale it was given
//! (`21.50` stays `21.50`: the number of published decimals is information).

use std::fmt;

use super::Invalid;
use super::names::truncate;

/// Longest accepted input text.
pub const MAX_INPUT_LEN: usize = 100;
/// Most digits before the decimal point.
pub const MAX_INTEGER_DIGITS: usize = 30;
/// Most digits after the decimal point.
pub const MAX_SCALE: usize = 18;
/// Largest accepted exponent magnitude.
pub const MAX_EXPONENT: i64 = 48;

/// An exact decimal in canonical plain notation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Parses a decimal string.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new("REQUIRED", "a decimal value is required"));
        }
        let bad = |why: &str| {
            Invalid::new(
                "INVALID_DECIMAL",
                format!("{:?} is not an exact decimal: {why}", truncate(s)),
            )
        };
        if s.len() > MAX_INPUT_LEN {
            return Err(bad(&format!("longer than {MAX_INPUT_LEN} characters")));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let start_int = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &s[start_int..i];
        let mut frac_digits = "";
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &s[start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(bad("expected digits such as 30, -2.5 or 3e10"));
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let start = i;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
            let digits_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[digits_start..i];
            if digits.is_empty() || digits.len() > 4 {
                return Err(bad("malformed exponent"));
            }
            exponent = s[start..i].parse().map_err(|_| bad("malformed exponent"))?;
            if exponent.abs() > MAX_EXPONENT {
                return Err(bad(&format!("exponent beyond ±{MAX_EXPONENT}")));
            }
        }
        if i != bytes.len() {
            return Err(bad(
                "unexpected characters (no spaces, separators, NaN or infinity)",
            ));
        }

        // All digits, and the scale once the exponent is applied.
        let mut digits: String = format!("{int_digits}{frac_digits}");
        let mut scale = frac_digits.len() as i64 - exponent;
        if scale < 0 {
            digits.extend(std::iter::repeat_n('0', (-scale) as usize));
            scale = 0;
        }
        let scale = scale as usize;
        if digits.len() < scale {
            let pad = scale - digits.len();
            digits.insert_str(0, &"0".repeat(pad));
        }
        let (int_part, frac_part) = digits.split_at(digits.len() - scale);
        let int_part = int_part.trim_start_matches('0');
        if int_part.len() > MAX_INTEGER_DIGITS {
            return Err(bad(&format!(
                "more than {MAX_INTEGER_DIGITS} digits before the decimal point"
            )));
        }
        if frac_part.len() > MAX_SCALE {
            return Err(bad(&format!(
                "more than {MAX_SCALE} digits after the decimal point"
            )));
        }
        let is_zero = int_part.is_empty() && frac_part.bytes().all(|b| b == b'0');
        let mut out = String::with_capacity(int_part.len() + frac_part.len() + 2);
        if negative && !is_zero {
            out.push('-');
        }
        out.push_str(if int_part.is_empty() { "0" } else { int_part });
        if !frac_part.is_empty() {
            out.push('.');
            out.push_str(frac_part);
        }
        Ok(Self(out))
    }

    /// Wraps a value read back from PostgreSQL (`numeric::text`), which is already
    /// canonical plain notation.
    pub fn from_db(text: String) -> Self {
        Self(text)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for a value below zero.
    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-')
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Decimal::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn canonical_plain_notation() {
        assert_eq!(canon("30"), "30");
        assert_eq!(canon("+30"), "30");
        assert_eq!(canon("21.50"), "21.50");
        assert_eq!(canon("-2.5"), "-2.5");
        assert_eq!(canon("007"), "7");
        assert_eq!(canon(".5"), "0.5");
        assert_eq!(canon("5."), "5");
        assert_eq!(canon("3e10"), "30000000000");
        assert_eq!(canon("1.5E-3"), "0.0015");
        assert_eq!(canon("2.15e2"), "215");
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("-0.00"), "0.00");
        assert_eq!(canon("0.000000000000000001"), "0.000000000000000001");
        assert_eq!(canon(&"9".repeat(30)), "9".repeat(30));
    }

    #[test]
    fn refuses_non_numbers_and_out_of_range() {
        for bad in [
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "1,000",
            "1 000",
            " 1",
            "1 ",
            "0x10",
            "1e",
            "1e+",
            "e5",
            ".",
            "-",
            "+",
            "1.2.3",
            "1e99999",
            "1e49",
            "١٢",
            "1_000",
        ] {
            assert_eq!(
                Decimal::parse(bad).unwrap_err().reason,
                "INVALID_DECIMAL",
                "{bad}"
            );
        }
        assert_eq!(Decimal::parse("").unwrap_err().reason, "REQUIRED");
        assert!(Decimal::parse(&"9".repeat(31)).is_err());
        assert!(Decimal::parse("1e30").is_err()); // 31 integer digits
        assert!(Decimal::parse("1e-19").is_err()); // scale 19
        assert!(Decimal::parse(&"1".repeat(5000)).is_err());
    }
}
