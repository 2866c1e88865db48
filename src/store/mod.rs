//! PostgreSQL access, one module per aggregate. SQL lives here and nowhere else; every
//! dynamic value is a bound parameter.

pub mod audit;
pub mod call;
pub mod idempotency;
pub mod indicators;
pub mod initiatives;
pub mod keys;
pub mod net;
pub mod observations;
pub mod programs;
pub mod reports;
pub mod secrets;
pub mod targets;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::ResourceId;
use crate::error::{Error, Result};

/// Migrations compiled into the binary from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or a new one) before failing
    /// with UNAVAILABLE.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            // While the database is down, a call waits this long for a connection that
            // cannot be made before it fails with UNAVAILABLE (retryable): well under a
            // second, also on a loaded machine. Waiting longer for a busy pool would
            // only hide an overload.
            acquire_timeout: Duration::from_millis(500),
        }
    }
}

/// `application_name` of the service's database sessions (the change feed's listening
/// connection is renamed while its process has streams, see [`crate::feed::WATCHING`]).
pub const APPLICATION_NAME: &str = "tradewatch";

/// Opens a pool. Connections are made lazily, so the service starts (and reports
/// NOT_SERVING on health) even when the database is down at that moment. Connections
/// over TCP get `TCP_NODELAY` (see [`net`]).
pub fn connect_lazy(options: PgConnectOptions, config: &PoolConfig) -> PgPool {
    let tcp = (options.get_socket().is_none() && !options.get_host().starts_with('/'))
        .then(|| (options.get_host().to_owned(), options.get_port()));
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .after_connect(move |_conn, _meta| {
            let tcp = tcp.clone();
            Box::pin(async move {
                if let Some((host, port)) = tcp {
                    let host = host.trim_matches(['[', ']']);
                    let peers: Vec<std::net::SocketAddr> =
                        match tokio::net::lookup_host((host, port)).await {
                            Ok(addrs) => addrs.collect(),
                            Err(e) => {
                                tracing::warn!(error = %e, host, "cannot resolve the database host to set TCP_NODELAY");
                                Vec::new()
                            }
                        };
                    if !peers.is_empty() && net::set_nodelay_towards(&peers) == 0 {
                        tracing::debug!(host, port, "no TCP socket to the database found for TCP_NODELAY");
                    }
                }
                Ok(())
            })
        })
        // No ping before every acquire: it costs a round trip per call (a fifth of the
        // throughput of a primary-key read). After a database restart, a stale pooled
        // connection fails its next call once with UNAVAILABLE (retryable) and is
        // discarded; idle connections are recycled after a minute anyway.
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(60))
        .connect_lazy_with(options.application_name(APPLICATION_NAME))
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => Error::from(e),
        other => Error::internal(other),
    })
}

/// Starts a transaction.
///
/// sqlx 0.9.0 can leave a pooled connection inside an open transaction when the
/// future of `begin()` is dropped (a client cancels) between sending `BEGIN` and
/// reading its reply. Every transaction therefore starts in a task of its own that the
/// caller's cancellation cannot interrupt: a dropped call leaves a finished `BEGIN`
/// whose `Transaction` guard is then dropped, and rolls back, normally.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    let call = call::current();
    tokio::spawn(async move {
        let mut tx = pool.begin().await?;
        if let Some(call) = call {
            // The caller, for the audit triggers, and the request id's claim, in one
            // round trip. A claim taken by a concurrent transaction with the same
            // request id waits for it and then fails with a unique violation, which
            // the caller turns into a replay of the stored response.
            let (claim_id, claim_method, fingerprint) = match &call.claim {
                Some(c) => (
                    Some(c.request_id),
                    Some(c.method.clone()),
                    Some(c.fingerprint.clone()),
                ),
                None => (None, None, None),
            };
            sqlx::query(
                "WITH claim AS (\
                   INSERT INTO idempotency_keys (request_id, method, fingerprint) \
                   SELECT $4, $6, $5 WHERE $4::uuid IS NOT NULL) \
                 SELECT set_config('tradewatch.actor', $1, true), \
                        set_config('tradewatch.method', $2, true), \
                        set_config('tradewatch.request_id', $3, true), \
                        CASE WHEN $7::bigint IS NOT NULL \
                             THEN set_config('statement_timeout', $7::text, true) END",
            )
            .bind(call.actor.as_deref().unwrap_or(""))
            .bind(&call.method)
            .bind(&call.request_id)
            .bind(claim_id)
            .bind(fingerprint)
            .bind(claim_method)
            // Milliseconds left, at least 1 (0 would mean no timeout).
            .bind(call.database_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if claim_id.is_some() && is_unique_violation(&e) {
                    Error::RequestReplayed
                } else {
                    Error::from(e)
                }
            })?;
        }
        Ok::<_, Error>(tx)
    })
    .await
    .map_err(Error::internal)?
}

/// Starts a read-only REPEATABLE READ transaction in one round trip (`BEGIN` with its
/// characteristics), shielded from cancellation like [`begin`].
pub async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    tokio::spawn(async move {
        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::from)
}

/// Converts an id read from the database (valid by the column's domain type).
pub(crate) fn id(s: String) -> ResourceId {
    ResourceId::from_db(s)
}

/// True when `e` is a unique violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// Compares a caller's etag with the current one (an empty etag means "don't check").
pub(crate) fn check_etag(name: &str, given: Option<&str>, current: &str) -> Result<()> {
    match given {
        Some(g) if !g.is_empty() && g != current => Err(Error::EtagMismatch {
            name: name.to_owned(),
            current: current.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Builds the FAILED_PRECONDITION returned by a delete that has dependants.
pub(crate) fn has_dependants(name: &str, what: &str, dependants: Vec<String>) -> Error {
    let shown: Vec<(String, String)> = dependants
        .iter()
        .take(20)
        .map(|d| (d.clone(), format!("refers to or belongs to {name}")))
        .collect();
    let mut listed = dependants
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if dependants.len() > 5 {
        listed.push_str(", ...");
    }
    Error::FailedPrecondition {
        reason: "HAS_DEPENDANTS",
        message: format!(
            "{name} still has {what} ({} found: {listed}); delete them first or set force",
            dependants.len(),
        ),
        subjects: shown,
    }
}
