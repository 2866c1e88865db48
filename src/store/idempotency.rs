//! Idempotent retries (AIP-155). A call with a `request_id` claims it in the
//! transaction that applies it ([`super::begin`]); the response is stored right after
//! (or, for observation writes, in the same transaction). A retry finds the claim and
//! gets the stored response; a claim with another fingerprint is a different request
//! reusing the id. Claims are kept for at least 24 hours: [`purge`] removes those
//! older than 48.

use sqlx::PgPool;

use crate::error::Result;

/// How long a request id is remembered at least, in hours (documented in the protos).
pub const RETENTION_HOURS: i64 = 24;

/// A stored claim.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The method that claimed it.
    pub method: String,
    /// Fingerprint of the request that claimed it.
    pub fingerprint: Vec<u8>,
    /// Its encoded response, once stored.
    pub response: Option<Vec<u8>>,
}

/// The claim of `request_id`, if any.
pub async fn find(pool: &PgPool, request_id: uuid::Uuid) -> Result<Option<Stored>> {
    let row: Option<(String, Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT method, fingerprint, response FROM idempotency_keys WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(method, fingerprint, response)| Stored {
        method,
        fingerprint,
        response,
    }))
}

/// Stores the response of a claimed request.
pub async fn save_response(
    db: impl sqlx::PgExecutor<'_>,
    request_id: uuid::Uuid,
    response: &[u8],
) -> Result<()> {
    sqlx::query("UPDATE idempotency_keys SET response = $2 WHERE request_id = $1")
        .bind(request_id)
        .bind(response)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes claims older than twice the retention; returns how many.
pub async fn purge(pool: &PgPool) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE create_time < now() - make_interval(hours => $1)",
    )
    .bind((2 * RETENTION_HOURS) as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
