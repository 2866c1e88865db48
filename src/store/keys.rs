//! API keys: only the SHA-256 of each secret is stored.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::begin;
use crate::domain::access::{self, NewKey, Role};
use crate::error::{Error, Result};

/// A stored key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// What the key is for.
    pub display_name: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// Id of the key that created it, if any.
    pub creator: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    key_id: String,
    display_name: String,
    role: String,
    create_time: DateTime<Utc>,
    creator: Option<String>,
}

impl TryFrom<Row> for ApiKey {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let role = Role::parse(&r.role)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stored role {:?}", r.role)))?;
        Ok(ApiKey {
            id: r.key_id,
            display_name: r.display_name,
            role,
            create_time: r.create_time,
            creator: r.creator,
        })
    }
}

/// Creates a key and returns it with its secret (which is not stored).
pub async fn create(
    pool: &PgPool,
    display_name: &str,
    role: Role,
    creator: Option<&str>,
) -> Result<(ApiKey, String)> {
    let NewKey { id, secret } = access::generate();
    let mut tx = begin(pool).await?;
    let row: Row = sqlx::query_as(
        "INSERT INTO api_keys (key_id, secret_hash, display_name, role, creator) \
         VALUES ($1, $2, $3, $4, $5) \
         RETURNING key_id, display_name, role, create_time, creator",
    )
    .bind(&id)
    .bind(&access::hash(&secret)[..])
    .bind(display_name)
    .bind(role.as_str())
    .bind(creator)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((row.try_into()?, secret))
}

/// The key and role of a secret's hash, if the key exists and is not revoked.
pub async fn authenticate(pool: &PgPool, hash: &[u8; 32]) -> Result<Option<(String, Role)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT key_id, role FROM api_keys WHERE secret_hash = $1 AND revoke_time IS NULL",
    )
    .bind(&hash[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id, role)| Role::parse(&role).map(|r| (id, r))))
}

/// Lists live keys, newest first, after the key `after` (exclusive).
pub async fn list(pool: &PgPool, after: Option<&str>, limit: i64) -> Result<Vec<ApiKey>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT key_id, display_name, role, create_time, creator FROM api_keys k \
         WHERE revoke_time IS NULL AND ($1::text IS NULL OR (create_time, key_id) < \
               (SELECT create_time, key_id FROM api_keys WHERE key_id = $1)) \
         ORDER BY create_time DESC, key_id DESC LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes a key. NOT_FOUND when it does not exist or is already revoked.
pub async fn revoke(pool: &PgPool, key_id: &str) -> Result<()> {
    let mut tx = begin(pool).await?;
    let done = sqlx::query(
        "UPDATE api_keys SET revoke_time = now() WHERE key_id = $1 AND revoke_time IS NULL",
    )
    .bind(key_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("apiKeys/{key_id}")));
    }
    tx.commit().await?;
    Ok(())
}

/// True when at least one live admin key exists.
pub async fn any_admin(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE role = 'admin' AND revoke_time IS NULL)",
    )
    .fetch_one(pool)
    .await?)
}
