//! Programmes, their initiatives and their targets, as validated values.

use chrono::NaiveDate;

use super::names::ResourceId;
use super::{Decimal, Period};

/// Declares an enum stored as a short text code in PostgreSQL (with a CHECK constraint
/// listing the same codes in the migration).
macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The code stored in the database.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Parses a stored code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// Lifecycle state of an initiative.
    InitiativeState {
        /// Announced, not started.
        Planned = "planned",
        /// Under way.
        Active = "active",
        /// Finished.
        Completed = "completed",
        /// Paused.
        Suspended = "suspended",
        /// Abandoned.
        Cancelled = "cancelled",
    }
);

coded_enum!(
    /// Kind of target.
    TargetKind {
        /// Reach a level by a period.
        Level = "level",
        /// Grow at an average annual rate over a span.
        GrowthRate = "growth_rate",
    }
);

coded_enum!(
    /// Desired direction of a series or target.
    Direction {
        /// Higher is better.
        HigherIsBetter = "higher",
        /// Lower is better.
        LowerIsBetter = "lower",
    }
);

/// Deepest initiative tree accepted (a root is at depth 1).
pub const MAX_INITIATIVE_DEPTH: usize = 16;

/// The mutable content of a programme.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSpec {
    /// Title of the policy document.
    pub title: String,
    /// Issuing body.
    pub issuing_body: String,
    /// Adoption date.
    pub adoption_date: Option<NaiveDate>,
    /// ISO 3166-2 or 3166-1 alpha-2 code.
    pub jurisdiction: String,
    /// First year covered.
    pub start_year: i32,
    /// Last year covered.
    pub end_year: i32,
    /// Summary.
    pub summary: String,
    /// Link to the source text.
    pub source_uri: String,
}

/// The mutable content of an initiative.
#[derive(Debug, Clone, PartialEq)]
pub struct InitiativeSpec {
    /// Id of the enclosing initiative in the same programme.
    pub parent_initiative: Option<ResourceId>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Lead agency.
    pub lead_agency: String,
    /// Lifecycle state.
    pub state: InitiativeState,
    /// Start date.
    pub start_date: Option<NaiveDate>,
    /// End date.
    pub end_date: Option<NaiveDate>,
    /// Tags, in the caller's order, without duplicates.
    pub tags: Vec<String>,
    /// Ids of the indicators that measure the initiative, without duplicates.
    pub indicators: Vec<ResourceId>,
    /// Position among siblings.
    pub position: i32,
}

/// The mutable content of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Id of the indicator that measures the target.
    pub indicator: ResourceId,
    /// Id of the initiative (same programme) the target belongs to.
    pub initiative: Option<ResourceId>,
    /// Level or growth rate.
    pub kind: TargetKind,
    /// Target value (level in 10^unit_multiplier units, or percent per year).
    pub target_value: Decimal,
    /// Power of ten of the level values.
    pub unit_multiplier: i32,
    /// Period the target refers to.
    pub target_period: Period,
    /// Baseline value, same units as the target value of a level target.
    pub baseline_value: Option<Decimal>,
    /// Baseline period.
    pub baseline_period: Option<Period>,
    /// Desired direction.
    pub direction: Direction,
}

/// Output-only bookkeeping of every stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Creation time (database clock).
    pub create_time: chrono::DateTime<chrono::Utc>,
    /// Last change (database clock).
    pub update_time: chrono::DateTime<chrono::Utc>,
    /// Incremented on every change; the etag is derived from it.
    pub version: i64,
}

impl Meta {
    /// The etag (AIP-154) of this version. Derived from the creation time as well as
    /// the version number, so that an etag of a deleted resource never matches a
    /// re-created one with the same name.
    pub fn etag(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.create_time.timestamp_micros().to_be_bytes());
        h.update(self.version.to_be_bytes());
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}
