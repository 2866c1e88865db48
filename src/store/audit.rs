//! The audit log: read here; written by triggers (resources) and by the observation
//! merge (one event per indicator per write, with counts).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::Result;

/// One audit event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    /// Sequence number.
    pub event_id: i64,
    /// Start of the transaction that made the change.
    pub time: DateTime<Utc>,
    /// Key id of the author, if any.
    pub actor: Option<String>,
    /// gRPC method (or `tradewatch` for internal changes).
    pub method: String,
    /// Resource name.
    pub resource: String,
    /// CREATE, UPDATE, DELETE or IMPORT.
    pub action: String,
    /// The call's request id.
    pub request_id: String,
    /// Before (changed fields only for UPDATE).
    pub before: Option<serde_json::Value>,
    /// After (changed fields only for UPDATE).
    pub after: Option<serde_json::Value>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Resource name or prefix (matching at a `/`).
    pub resource: Option<String>,
    /// Key id.
    pub actor: Option<String>,
    /// Inclusive lower bound.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub end: Option<DateTime<Utc>>,
}

/// The top-level numbers of the jsonb object `$col` as strings of their exact text.
macro_rules! numbers_as_text {
    ($col:literal) => {
        concat!(
            "(SELECT jsonb_object_agg(key, CASE jsonb_typeof(value) \
               WHEN 'number' THEN to_jsonb(value #>> '{}') ELSE value END) \
              FROM jsonb_each(",
            $col,
            "))"
        )
    };
}

/// Lists events newest first, before event `before` (exclusive) when given.
pub async fn list(
    pool: &PgPool,
    q: &Query,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    // A resource matches itself and everything below it: `programs/a` matches
    // `programs/a/targets/t` but not `programs/ab`.
    let below = q.resource.as_ref().map(|r| {
        let escaped = r
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{escaped}/%")
    });
    // Numbers come as their text (`30.50`, not the nearest double), so that decimals
    // stay exact on the way to the API (`api::audit_view`).
    Ok(sqlx::query_as(concat!(
        "SELECT event_id, time, actor, method, resource, action, request_id, ",
        numbers_as_text!("before"),
        " AS before, ",
        numbers_as_text!("after"),
        " AS after \
         FROM audit_events \
         WHERE ($1::text IS NULL OR resource = $1 OR resource LIKE $2) \
           AND ($3::text IS NULL OR actor = $3) \
           AND ($4::timestamptz IS NULL OR time >= $4) \
           AND ($5::timestamptz IS NULL OR time < $5) \
           AND ($6::bigint IS NULL OR event_id < $6) \
         ORDER BY event_id DESC LIMIT $7",
    ))
    .bind(q.resource.as_deref())
    .bind(below)
    .bind(q.actor.as_deref())
    .bind(q.start)
    .bind(q.end)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
