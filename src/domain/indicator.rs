//! Indicators: definitions of time series.

use std::collections::BTreeMap;

use super::Frequency;
use super::program::{Direction, coded_enum};

coded_enum!(
    /// Balance-of-payments flow.
    Flow {
        /// Exports (credit).
        Export = "export",
        /// Imports (debit).
        Import = "import",
        /// Exports plus imports.
        Total = "total",
        /// Exports minus imports.
        Balance = "balance",
        /// Not a flow.
        None = "none",
    }
);

coded_enum!(
    /// How shorter periods combine into longer ones.
    Aggregation {
        /// Sum of the parts (flows).
        Sum = "sum",
        /// Mean of the parts (rates).
        Average = "average",
        /// Last part (stocks).
        EndOfPeriod = "end_of_period",
    }
);

/// Most free dimensions on one indicator.
pub const MAX_DIMENSIONS: usize = 16;
/// Keys that name first-class indicator fields and so cannot be free dimensions.
pub const RESERVED_DIMENSION_KEYS: [&str; 3] = ["flow", "region", "service_category"];
/// Lowest unit multiplier (power of ten).
pub const MIN_UNIT_MULTIPLIER: i32 = -9;
/// Highest unit multiplier (power of ten).
pub const MAX_UNIT_MULTIPLIER: i32 = 15;

/// The mutable content of an indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSpec {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// ISO 4217 currency or plain unit.
    pub unit: String,
    /// Power of ten the values are expressed in.
    pub unit_multiplier: i32,
    /// Observation frequency (immutable once created).
    pub frequency: Frequency,
    /// Trade flow.
    pub flow: Flow,
    /// EBOPS 2010 code, if any.
    pub service_category: Option<String>,
    /// ISO 3166-2 / 3166-1 alpha-2 region.
    pub region: String,
    /// Free dimensions, key to code.
    pub dimensions: BTreeMap<String, String>,
    /// Combine rule over time.
    pub aggregation: Aggregation,
    /// Source publishes year-to-date cumulative values.
    pub year_to_date: bool,
    /// Desired direction.
    pub direction: Direction,
    /// Publishing agency.
    pub source_agency: String,
}

/// Checks a free dimension key: lower snake case, 1 to 63 characters, not reserved.
pub fn check_dimension_key(key: &str) -> Result<(), super::Invalid> {
    let ok = !key.is_empty()
        && key.len() <= 63
        && key.as_bytes()[0].is_ascii_lowercase()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(super::Invalid::new(
            "INVALID_DIMENSION_KEY",
            format!(
                "{:?} is not a dimension key: use 1 to 63 lower-case letters, digits and '_', \
                 starting with a letter",
                super::names::truncate(key)
            ),
        ));
    }
    if RESERVED_DIMENSION_KEYS.contains(&key) {
        return Err(super::Invalid::new(
            "RESERVED_DIMENSION_KEY",
            format!("{key:?} is a field of the indicator, not a free dimension"),
        ));
    }
    Ok(())
}

/// Checks a free dimension code: 1 to 64 characters of ASCII letters, digits, `_`, `-`, `.`.
pub fn check_dimension_value(value: &str) -> Result<(), super::Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(super::Invalid::new(
            "INVALID_DIMENSION_VALUE",
            format!(
                "{:?} is not a dimension code: use 1 to 64 letters, digits, '_', '-' or '.'",
                super::names::truncate(value)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_keys_and_values() {
        assert!(check_dimension_key("outsourcing").is_ok());
        assert!(check_dimension_key("partner_2").is_ok());
        assert_eq!(
            check_dimension_key("Flow").unwrap_err().reason,
            "INVALID_DIMENSION_KEY"
        );
        assert_eq!(
            check_dimension_key("region").unwrap_err().reason,
            "RESERVED_DIMENSION_KEY"
        );
        assert!(check_dimension_value("ITO").is_ok());
        assert!(check_dimension_value("a b").is_err());
        assert!(check_dimension_value("").is_err());
    }
}
