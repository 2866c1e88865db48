//! Frequencies and periods in SDMX period syntax: `2020` (annual), `2020-S1`
//! (half-year), `2020-Q3` (quarter), `2020-M07` (month; `2020-07` is accepted on input
//! and written back as `2020-M07`).

use std::fmt;
use std::str::FromStr;

use super::Invalid;
use super::names::truncate;

/// Earliest year a period may name.
pub const MIN_YEAR: i32 = 1800;
/// Latest year a period may name.
pub const MAX_YEAR: i32 = 2200;

/// Observation frequency, from lowest (annual) to highest (monthly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    /// SDMX `A`.
    Annual,
    /// SDMX `S`.
    HalfYearly,
    /// SDMX `Q`.
    Quarterly,
    /// SDMX `M`.
    Monthly,
}

impl Frequency {
    /// The SDMX code, also the value stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Frequency::Annual => "A",
            Frequency::HalfYearly => "S",
            Frequency::Quarterly => "Q",
            Frequency::Monthly => "M",
        }
    }

    /// Parses an SDMX frequency code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "A" => Frequency::Annual,
            "S" => Frequency::HalfYearly,
            "Q" => Frequency::Quarterly,
            "M" => Frequency::Monthly,
            _ => return None,
        })
    }

    /// Number of periods of this frequency in a year.
    pub fn periods_per_year(self) -> u32 {
        match self {
            Frequency::Annual => 1,
            Frequency::HalfYearly => 2,
            Frequency::Quarterly => 4,
            Frequency::Monthly => 12,
        }
    }

    /// A word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Frequency::Annual => "annual",
            Frequency::HalfYearly => "half-yearly",
            Frequency::Quarterly => "quarterly",
            Frequency::Monthly => "monthly",
        }
    }
}

/// One period: a year and its index within the year at the period's frequency
/// (1-based; always 1 for annual periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    year: i32,
    frequency: Frequency,
    index: u32,
}

impl Period {
    /// Builds a period, checking the year range and the index.
    pub fn new(year: i32, frequency: Frequency, index: u32) -> Option<Self> {
        ((MIN_YEAR..=MAX_YEAR).contains(&year)
            && (1..=frequency.periods_per_year()).contains(&index))
        .then_some(Self {
            year,
            frequency,
            index,
        })
    }

    /// Parses SDMX period syntax.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new("REQUIRED", "a period is required"));
        }
        let bad = || {
            Invalid::new(
                "INVALID_PERIOD",
                format!(
                    "{:?} is not a period in SDMX syntax: use 2020, 2020-S1, 2020-Q3 or 2020-M07, \
                     with a year from {MIN_YEAR} to {MAX_YEAR}",
                    truncate(s)
                ),
            )
        };
        let (year_text, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        if year_text.len() != 4 || !year_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = year_text.parse().map_err(|_| bad())?;
        let (frequency, digits, width) = match rest {
            None => return Period::new(year, Frequency::Annual, 1).ok_or_else(bad),
            Some(r) => match r.as_bytes().first() {
                Some(b'S') => (Frequency::HalfYearly, &r[1..], 1),
                Some(b'Q') => (Frequency::Quarterly, &r[1..], 1),
                Some(b'M') => (Frequency::Monthly, &r[1..], 2),
                Some(b'0'..=b'9') => (Frequency::Monthly, r, 2),
                _ => return Err(bad()),
            },
        };
        if digits.len() != width || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let index: u32 = digits.parse().map_err(|_| bad())?;
        Period::new(year, frequency, index).ok_or_else(bad)
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The period's frequency.
    pub fn frequency(self) -> Frequency {
        self.frequency
    }

    /// 1-based index within the year (half, quarter or month number; 1 for a year).
    pub fn index(self) -> u32 {
        self.index
    }

    /// First month (1–12) the period covers.
    pub fn first_month(self) -> u32 {
        let months = 12 / self.frequency.periods_per_year();
        (self.index - 1) * months + 1
    }

    /// Last month (1–12) the period covers.
    pub fn last_month(self) -> u32 {
        self.first_month() + 12 / self.frequency.periods_per_year() - 1
    }

    /// Months since year 0 of the first month, for ordering periods of any frequency.
    pub fn start_key(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.first_month()) - 1
    }

    /// Months since year 0 of the last month.
    pub fn end_key(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.last_month()) - 1
    }

    /// Periods since year 0 at this period's frequency, for period arithmetic.
    pub fn ordinal(self) -> i64 {
        i64::from(self.year) * i64::from(self.frequency.periods_per_year()) + i64::from(self.index)
            - 1
    }

    /// The period `n` periods after this one (before it when negative), if in range.
    pub fn offset(self, n: i64) -> Option<Period> {
        let ppy = i64::from(self.frequency.periods_per_year());
        let o = self.ordinal() + n;
        let year = i32::try_from(o.div_euclid(ppy)).ok()?;
        Period::new(year, self.frequency, (o.rem_euclid(ppy) + 1) as u32)
    }

    /// The period of frequency `to` (not finer than this one's) that contains this one.
    pub fn containing(self, to: Frequency) -> Option<Period> {
        if to > self.frequency {
            return None;
        }
        let months = 12 / to.periods_per_year();
        Period::new(self.year, to, (self.first_month() - 1) / months + 1)
    }

    /// Years from the end of `earlier` to the end of this period (may be fractional).
    pub fn years_since(self, earlier: Period) -> f64 {
        (self.end_key() - earlier.end_key()) as f64 / 12.0
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frequency {
            Frequency::Annual => write!(f, "{}", self.year),
            Frequency::HalfYearly => write!(f, "{}-S{}", self.year, self.index),
            Frequency::Quarterly => write!(f, "{}-Q{}", self.year, self.index),
            Frequency::Monthly => write!(f, "{}-M{:02}", self.year, self.index),
        }
    }
}

impl FromStr for Period {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Period::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_sdmx_form() {
        let cases = [
            ("2020", Frequency::Annual, 1, "2020"),
            ("2020-S2", Frequency::HalfYearly, 2, "2020-S2"),
            ("2020-Q3", Frequency::Quarterly, 3, "2020-Q3"),
            ("2020-M07", Frequency::Monthly, 7, "2020-M07"),
            ("2020-07", Frequency::Monthly, 7, "2020-M07"),
            ("2020-M12", Frequency::Monthly, 12, "2020-M12"),
        ];
        for (text, freq, index, canonical) in cases {
            let p = Period::parse(text).unwrap();
            assert_eq!(
                (p.frequency(), p.index(), p.year()),
                (freq, index, 2020),
                "{text}"
            );
            assert_eq!(p.to_string(), canonical);
        }
    }

    #[test]
    fn rejects_malformed_periods() {
        for bad in [
            "20",
            "20201",
            "2020-",
            "2020-S3",
            "2020-S0",
            "2020-Q5",
            "2020-Q0",
            "2020-M13",
            "2020-M7",
            "2020-7",
            "2020-M00",
            "2020-W01",
            "2020Q1",
            "１２３４",
            "1799",
            "2201",
            "2020-q1",
            " 2020",
            "2020-Q1 ",
        ] {
            let e = Period::parse(bad).unwrap_err();
            assert_eq!(e.reason, "INVALID_PERIOD", "{bad}");
        }
        assert_eq!(Period::parse("").unwrap_err().reason, "REQUIRED");
    }

    #[test]
    fn arithmetic() {
        let m = Period::parse("2020-M01").unwrap();
        assert_eq!(m.offset(-1).unwrap().to_string(), "2019-M12");
        assert_eq!(m.offset(12).unwrap().to_string(), "2021-M01");
        let q = Period::parse("2020-Q4").unwrap();
        assert_eq!(q.offset(1).unwrap().to_string(), "2021-Q1");
        assert_eq!(
            Period::parse("2020-M08")
                .unwrap()
                .containing(Frequency::Quarterly)
                .unwrap()
                .to_string(),
            "2020-Q3"
        );
        assert_eq!(
            Period::parse("2020-M08")
                .unwrap()
                .containing(Frequency::HalfYearly)
                .unwrap()
                .to_string(),
            "2020-S2"
        );
        assert!(q.containing(Frequency::Monthly).is_none());
        let y2015 = Period::parse("2015").unwrap();
        assert_eq!(Period::parse("2020").unwrap().years_since(y2015), 5.0);
        assert_eq!(
            Period::parse("2016-Q2")
                .unwrap()
                .years_since(Period::parse("2015-Q4").unwrap()),
            0.5
        );
    }

    #[test]
    fn months_covered() {
        let q3 = Period::parse("2020-Q3").unwrap();
        assert_eq!((q3.first_month(), q3.last_month()), (7, 9));
        let s2 = Period::parse("2020-S2").unwrap();
        assert_eq!((s2.first_month(), s2.last_month()), (7, 12));
        let y = Period::parse("2020").unwrap();
        assert_eq!((y.first_month(), y.last_month()), (1, 12));
        assert!(Period::parse("2019").unwrap().end_key() < q3.start_key());
    }
}
