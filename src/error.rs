//! The one error type of the service, and its single mapping to a gRPC status
//! (AIP-193: every error carries a `google.rpc.ErrorInfo`; bad input also a
//! `google.rpc.BadRequest` naming each field, failed preconditions a
//! `google.rpc.PreconditionFailure`). Database errors are logged here with their
//! detail and never sent to the caller.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::FieldViolation;

/// `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "tradewatch.dev";

/// Everything that can go wrong in a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; each violation names a field.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named resource does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A resource with that name exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The caller's etag is stale.
    #[error(
        "the etag of {name} does not match: it was changed since it was read (current etag {current:?})"
    )]
    EtagMismatch {
        /// The resource.
        name: String,
        /// The current etag, so that the caller can re-read and retry.
        current: String,
    },
    /// The operation is refused in the current state (children or references exist).
    #[error("{message}")]
    FailedPrecondition {
        /// Machine-readable reason.
        reason: &'static str,
        /// Sentence for a human.
        message: String,
        /// Subjects that block the operation (resource names), with why.
        subjects: Vec<(String, String)>,
    },
    /// A conflicting concurrent transaction won; retrying is safe.
    #[error("the operation conflicted with a concurrent change; retry it")]
    Conflict,
    /// The database cannot be reached; retrying later is safe.
    #[error("the database is unavailable")]
    Unavailable,
    /// The operation took longer than the database allows.
    #[error("the operation took too long")]
    DeadlineExceeded,
    /// Another transaction has claimed this call's `request_id` (a retry racing the
    /// original); the caller replays the stored response instead.
    #[error("a request with this request_id is being applied; retry it")]
    RequestReplayed,
    /// The call carries no valid API key.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's key does not have the role the method needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// A bug or an unexpected database error. The detail is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Budget, in bytes, for the error details of one status. Details travel base64-encoded
/// (a third more) in the `grpc-status-details-bin` trailer, beside `grpc-message`, and
/// grpc-core clients (Python, C++, Ruby, PHP, C#) refuse trailers over 8 KiB together
/// (`RESOURCE_EXHAUSTED: received metadata size exceeds soft limit`): 4 KiB of details
/// is about 5.5 KiB on the wire, which leaves room for the message (at most
/// [`MESSAGE_BUDGET`]) and the other trailers. Violations beyond the budget are left out,
/// and the message says how many there were.
pub const DETAILS_BUDGET: usize = 4 * 1024;

/// Most bytes of a status message (`grpc-message`, percent-encoded on the wire: at most
/// three times as long, for text outside ASCII).
pub const MESSAGE_BUDGET: usize = 400;

/// Violations shown in the status message itself (all of them are in the details).
const IN_MESSAGE: usize = 3;

fn describe(v: &[FieldViolation]) -> String {
    let mut text = v
        .iter()
        .take(IN_MESSAGE)
        .map(|f| {
            if f.field.is_empty() {
                f.description.clone()
            } else {
                format!("{}: {}", f.field, f.description)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if v.len() > IN_MESSAGE {
        text.push_str(&format!(
            "; and {} more (see the google.rpc.BadRequest details)",
            v.len() - IN_MESSAGE
        ));
    }
    text
}

impl Error {
    /// One invalid field.
    pub fn invalid(
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, reason, message)])
    }

    /// An unexpected failure, logged when mapped to a status.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Error::Internal(e.into())
    }
}

impl From<Vec<FieldViolation>> for Error {
    fn from(v: Vec<FieldViolation>) -> Self {
        Error::InvalidArgument(v)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        classify_sqlx(e)
    }
}

/// Sorts a database error into the variant a caller can act on. Constraint violations
/// that the service's own validation should have caught are still mapped to client
/// errors by constraint name (the database is the second line of defence).
fn classify_sqlx(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            tracing::warn!(error = %e, "database unreachable");
            Error::Unavailable
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = db.constraint().unwrap_or("").to_owned();
            match code.as_str() {
                // unique_violation
                "23505" => Error::AlreadyExists(format!("a resource ({constraint})")),
                // check_violation, not_null_violation, string_data_right_truncation,
                // numeric_value_out_of_range, invalid_text_representation
                "23514" | "23502" | "22001" | "22003" | "22P02" => {
                    tracing::warn!(error = %e, constraint, "database refused a value the service accepted");
                    Error::invalid(
                        constraint_field(&constraint),
                        "CONSTRAINT_VIOLATION",
                        format!("the value breaks the rule {constraint}"),
                    )
                }
                // foreign_key_violation
                "23503" => Error::FailedPrecondition {
                    reason: "REFERENCED",
                    message: format!(
                        "the change would break a reference between resources ({constraint})"
                    ),
                    subjects: vec![],
                },
                // serialization_failure, deadlock_detected, and TW004: an import reached
                // an indicator that another call wrote to after the import began (it
                // rolled back; sent again, it supersedes that write)
                "40001" | "40P01" | "TW004" => Error::Conflict,
                // query_canceled (statement_timeout), lock_not_available (lock_timeout),
                // and TW002: a write reached its deadline before it could commit (it
                // rolled back; migrations/0004_concurrent_writes.sql)
                "57014" | "55P03" | "TW002" => Error::DeadlineExceeded,
                // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections,
                // connection exceptions (08xxx)
                c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300") => {
                    tracing::warn!(error = %e, "database unavailable");
                    Error::Unavailable
                }
                _ => Error::internal(e),
            }
        }
        _ => Error::internal(e),
    }
}

/// Maps a constraint name to the field it guards, for the BadRequest detail.
fn constraint_field(constraint: &str) -> String {
    constraint
        .strip_prefix("programs_")
        .or_else(|| constraint.strip_prefix("indicators_"))
        .or_else(|| constraint.strip_prefix("initiatives_"))
        .or_else(|| constraint.strip_prefix("targets_"))
        .map(|rest| rest.trim_end_matches("_check").to_owned())
        .unwrap_or_default()
}

/// `text` cut to at most `max` bytes (at a character boundary), with an ellipsis when cut.
pub fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Most bytes of one field violation's description in the details.
const DESCRIPTION_BUDGET: usize = 300;

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let message = bounded(e.to_string(), MESSAGE_BUDGET);
        let (code, reason) = match &e {
            Error::InvalidArgument(v) => (
                Code::InvalidArgument,
                v.first().map(|f| f.reason).unwrap_or("INVALID_ARGUMENT"),
            ),
            Error::NotFound(_) => (Code::NotFound, "NOT_FOUND"),
            Error::AlreadyExists(_) => (Code::AlreadyExists, "ALREADY_EXISTS"),
            Error::EtagMismatch { .. } => (Code::Aborted, "ETAG_MISMATCH"),
            Error::FailedPrecondition { reason, .. } => (Code::FailedPrecondition, *reason),
            Error::Conflict => (Code::Aborted, "CONCURRENT_CHANGE"),
            Error::Unavailable => (Code::Unavailable, "DATABASE_UNAVAILABLE"),
            Error::RequestReplayed => (Code::Aborted, "REQUEST_IN_PROGRESS"),
            Error::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
            Error::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
            Error::DeadlineExceeded => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
            Error::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                (Code::Internal, "INTERNAL")
            }
        };
        let mut details = ErrorDetails::new();
        let mut metadata = std::collections::HashMap::new();
        match &e {
            Error::NotFound(name) | Error::AlreadyExists(name) => {
                metadata.insert("resource".to_owned(), name.clone());
            }
            Error::EtagMismatch { name, current } => {
                metadata.insert("resource".to_owned(), name.clone());
                metadata.insert("current_etag".to_owned(), current.clone());
            }
            _ => {}
        }
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        match e {
            Error::InvalidArgument(violations) => {
                let mut used = 0;
                let fv: Vec<tonic_types::FieldViolation> = violations
                    .into_iter()
                    .map(|v| FieldViolation {
                        description: bounded(v.description, DESCRIPTION_BUDGET),
                        ..v
                    })
                    .take_while(|v| {
                        used += v.field.len() + v.description.len() + v.reason.len() + 16;
                        used <= DETAILS_BUDGET
                    })
                    .map(|v| {
                        let mut f = tonic_types::FieldViolation::new(v.field, v.description);
                        f.reason = v.reason.to_owned();
                        f
                    })
                    .collect();
                details.set_bad_request(fv);
            }
            Error::FailedPrecondition {
                reason, subjects, ..
            } if !subjects.is_empty() => {
                let pv: Vec<tonic_types::PreconditionViolation> = subjects
                    .into_iter()
                    .map(|(subject, why)| {
                        tonic_types::PreconditionViolation::new(reason, subject, why)
                    })
                    .collect();
                details.set_precondition_failure(pv);
            }
            Error::Unavailable | Error::Conflict | Error::RequestReplayed => {
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
            }
            _ => {}
        }
        Status::with_error_details(code, message, details)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
