//! Validated domain types and pure logic. Everything past the API boundary works with
//! these types: a value of `ResourceId`, `Period`, `Decimal`, ... is valid by
//! construction, so the store and the reports never re-check it.
//!
//! Parsing collects *every* problem of a request as [`FieldViolation`]s (named by the
//! field's path in the request, e.g. `indicator.unit`) instead of stopping at the first,
//! so a caller fixes all of them in one round trip.

pub mod access;
pub mod codes;
pub mod decimal;
pub mod indicator;
pub mod names;
pub mod observation;
pub mod period;
pub mod program;
pub mod reporting;
pub mod text;
pub mod vintages;

pub use decimal::Decimal;
pub use names::ResourceId;
pub use period::{Frequency, Period};

/// One reason a request is invalid, named by the offending field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `program.jurisdiction`.
    pub field: String,
    /// Machine-readable reason in UPPER_SNAKE_CASE, e.g. `INVALID_REGION`.
    pub reason: &'static str,
    /// Sentence for a human, naming the bad value and what is expected.
    pub description: String,
}

impl FieldViolation {
    /// Builds a violation.
    pub fn new(
        field: impl Into<String>,
        reason: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            reason,
            description: description.into(),
        }
    }
}

/// A failed parse of one value: the reason and the sentence, without the field path
/// (the caller knows where the value came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Machine-readable reason, UPPER_SNAKE_CASE.
    pub reason: &'static str,
    /// Human-readable description.
    pub message: String,
}

impl Invalid {
    /// Builds a parse failure.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl From<codes::CodeError> for Invalid {
    fn from(e: codes::CodeError) -> Self {
        Invalid::new(e.reason, e.message)
    }
}

/// Collects violations while parsing a request, with a field-path prefix.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<FieldViolation>,
}

impl Violations {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `field` and returns the value if there is one.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.list
                    .push(FieldViolation::new(field, e.reason, e.message));
                None
            }
        }
    }

    /// Records a violation directly.
    pub fn push(
        &mut self,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.list.push(FieldViolation::new(field, reason, message));
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The violations recorded so far.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.list
    }

    /// `Ok(value)` when nothing was recorded, else every violation.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldViolation>> {
        if self.list.is_empty()
            && let Some(v) = value()
        {
            return Ok(v);
        }
        if self.list.is_empty() {
            // A parse step returned None without recording why: a programming error,
            // reported rather than panicking.
            return Err(vec![FieldViolation::new(
                "",
                "INVALID",
                "the request is invalid",
            )]);
        }
        Err(self.list)
    }
}
