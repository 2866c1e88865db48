//! gRPC services, one file each: decode the request into domain types, call the store,
//! encode the response. No SQL here, no wire types below here.

pub mod admin_service;
mod audit_view;
pub mod convert;
pub(crate) mod idempotency;
pub mod indicator_service;
pub mod mask;
pub mod observation_service;
pub mod paging;
pub mod program_service;
pub mod reporting_service;

use sqlx::PgPool;
use tonic::Status;

use crate::domain::Violations;
use crate::error::Error;
use paging::PageTokens;

/// What every service needs: the pool and the page-token key.
#[derive(Clone, Debug)]
pub struct Context {
    /// The database.
    pub pool: PgPool,
    /// Signs and checks page tokens.
    pub page_tokens: PageTokens,
    /// Wakes WatchObservations streams on new commits.
    pub feed: crate::feed::ChangeFeed,
    /// Prometheus metrics.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Imports in progress at once (with the batch writers, half the pool): those waiting
    /// for a turn wait here, without holding a connection, so reads always find one.
    pub writers: std::sync::Arc<tokio::sync::Semaphore>,
    /// Writes batches, grouping those that arrive together.
    pub batches: crate::store::observations::BatchWriter,
}

/// An `as_of` further than this ahead of the clock is refused: what will be known then
/// cannot be answered now, and waiting for it would hold the call.
pub const MAX_AS_OF_AHEAD: std::time::Duration = std::time::Duration::from_secs(60);

impl Context {
    /// Waits for a turn to write observations (see [`Context::writers`]).
    pub(crate) async fn writer_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        self.writers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::from(Error::Unavailable))
    }

    /// Makes a read as of `as_of` stable (the same answer however often it is asked):
    /// waits until the instant is at or before the stable horizon (see
    /// [`crate::feed::ChangeFeed::settle`]). An instant more than
    /// [`MAX_AS_OF_AHEAD`] ahead of the database clock is INVALID_ARGUMENT.
    pub(crate) async fn settle_as_of(
        &self,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), Status> {
        let Some(t) = as_of else { return Ok(()) };
        let ahead = chrono::Duration::from_std(MAX_AS_OF_AHEAD).unwrap_or_default();
        // The local clock first: only an instant that looks far ahead costs a query.
        if t > chrono::Utc::now() + ahead && t > self.feed.database_now().await? + ahead {
            return Err(Error::invalid(
                "as_of",
                "AS_OF_IN_FUTURE",
                format!(
                    "as_of {} is in the future; what will be known then cannot be answered yet",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            )
            .into());
        }
        self.feed.settle(t).await.map_err(Status::from)
    }

    /// Opens a report's snapshot as of `as_of` (now when `None`), made stable first.
    pub(crate) async fn snapshot(
        &self,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::store::reports::Snapshot, Status> {
        self.settle_as_of(as_of).await?;
        Ok(crate::store::reports::Snapshot::open(&self.pool, as_of).await?)
    }
}

/// Who is calling: set by the server's call layer on every request it lets through.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Key id, when the call carries a valid key.
    pub key_id: Option<String>,
}

impl Caller {
    /// The caller of `request` (anonymous when the layer did not set one).
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_default()
    }
}

/// Returns the parsed value, or INVALID_ARGUMENT with every violation collected.
pub(crate) fn finish<T>(v: Violations, value: impl FnOnce() -> Option<T>) -> Result<T, Status> {
    v.finish(value)
        .map_err(|e| Status::from(Error::InvalidArgument(e)))
}

/// Records that a required message field is missing.
pub(crate) fn required_message<'a, T>(
    v: &mut Violations,
    field: &str,
    m: &'a Option<T>,
) -> Option<&'a T> {
    if m.is_none() {
        v.push(field, "REQUIRED", format!("{field} is required"));
    }
    m.as_ref()
}

/// The etag a request carries, if any.
pub(crate) fn etag(e: &str) -> Option<&str> {
    (!e.is_empty()).then_some(e)
}
