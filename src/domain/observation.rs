//! Observations: one value of one indicator for one period.

use std::fmt;

use super::names::{IndicatorName, truncate};
use super::program::coded_enum;
use super::{Decimal, Invalid, Period, ResourceId};

coded_enum!(
    /// SDMX observation status (code list CL_OBS_STATUS), stored as its letter.
    ObsStatus {
        /// Normal value.
        Normal = "A",
        /// Time series break.
        Break = "B",
        /// Definition differs.
        DefinitionDiffers = "D",
        /// Estimated value.
        Estimated = "E",
        /// Forecast value.
        Forecast = "F",
        /// Experimental value.
        Experimental = "G",
        /// Missing value; holiday or weekend.
        MissingHoliday = "H",
        /// Imputed value.
        Imputed = "I",
        /// Missing value; data exist but were not collected.
        MissingNotCollected = "L",
        /// Missing value; data cannot exist.
        MissingCannotExist = "M",
        /// Not significant.
        NotSignificant = "N",
        /// Missing value.
        Missing = "O",
        /// Provisional value.
        Provisional = "P",
        /// Missing value; suppressed.
        MissingSuppressed = "Q",
        /// Strike and other special events.
        Strike = "S",
        /// Low reliability.
        LowReliability = "U",
        /// Unvalidated value.
        Unvalidated = "V",
    }
);

impl ObsStatus {
    /// True for the statuses that mean "no value" (the value must be empty).
    pub fn is_missing(self) -> bool {
        matches!(
            self,
            ObsStatus::MissingHoliday
                | ObsStatus::MissingNotCollected
                | ObsStatus::MissingCannotExist
                | ObsStatus::Missing
                | ObsStatus::MissingSuppressed
        )
    }
}

/// Longest comment.
pub const MAX_COMMENT: usize = 1000;
/// Longest source.
pub const MAX_SOURCE: usize = 200;

/// `indicators/{indicator}/observations/{period}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObservationName {
    /// The indicator.
    pub indicator: ResourceId,
    /// The period (canonical).
    pub period: Period,
}

impl ObservationName {
    /// The name pattern.
    pub const PATTERN: &'static str = "indicators/{indicator}/observations/{period}";

    /// Parses an observation name; the period may use `2020-07` for `2020-M07`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new(
                "REQUIRED",
                format!("a resource name `{}` is required", Self::PATTERN),
            ));
        }
        let bad = || {
            Invalid::new(
                "INVALID_NAME",
                format!(
                    "{:?} is not a resource name of the form `{}`",
                    truncate(s),
                    Self::PATTERN
                ),
            )
        };
        let (parent, period) = s.split_once("/observations/").ok_or_else(bad)?;
        let indicator = IndicatorName::parse(parent).map_err(|_| bad())?;
        let period = Period::parse(period).map_err(|e| {
            Invalid::new(
                e.reason,
                format!(
                    "{:?} is not a valid observation name: {}",
                    truncate(s),
                    e.message
                ),
            )
        })?;
        Ok(Self {
            indicator: indicator.0,
            period,
        })
    }
}

impl fmt::Display for ObservationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "indicators/{}/observations/{}",
            self.indicator, self.period
        )
    }
}

/// A validated observation to write (before the indicator's frequency is checked).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationInput {
    /// Which observation.
    pub name: ObservationName,
    /// The value; `None` only for a missing-value status.
    pub value: Option<Decimal>,
    /// The status.
    pub status: ObsStatus,
    /// Comment.
    pub comment: String,
    /// Source.
    pub source: String,
}

/// Checks value and status together: a missing-value status has no value, every other
/// status needs one.
pub fn check_value(value: &str, status: ObsStatus) -> Result<Option<Decimal>, Invalid> {
    if status.is_missing() {
        if value.is_empty() {
            Ok(None)
        } else {
            Err(Invalid::new(
                "VALUE_WITH_MISSING_STATUS",
                format!(
                    "status {} means the value is missing, but the value is {:?}",
                    status.code(),
                    truncate(value)
                ),
            ))
        }
    } else {
        Decimal::parse(value).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = ObservationName::parse("indicators/cq-total/observations/2020-07").unwrap();
        assert_eq!(n.to_string(), "indicators/cq-total/observations/2020-M07");
        assert_eq!(
            ObservationName::parse("indicators/x/observations/2020-Q5")
                .unwrap_err()
                .reason,
            "INVALID_PERIOD"
        );
        assert_eq!(
            ObservationName::parse("indicators/x/obs/2020")
                .unwrap_err()
                .reason,
            "INVALID_NAME"
        );
        assert_eq!(ObservationName::parse("").unwrap_err().reason, "REQUIRED");
    }

    #[test]
    fn values_and_missing_statuses() {
        assert_eq!(
            check_value("", ObsStatus::MissingCannotExist).unwrap(),
            None
        );
        assert!(check_value("1", ObsStatus::Missing).is_err());
        assert_eq!(
            check_value("", ObsStatus::Normal).unwrap_err().reason,
            "REQUIRED"
        );
        assert_eq!(
            check_value("21.50", ObsStatus::Provisional)
                .unwrap()
                .unwrap()
                .as_str(),
            "21.50"
        );
    }
}
