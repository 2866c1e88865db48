//! Secrets shared by every replica through the database.

use rand::RngCore;
use sqlx::PgPool;

use crate::error::{Error, Result};

/// Returns the secret called `name`, creating it (32 random bytes) on first use. Every
/// replica reads the same row, so what one signs another can verify.
pub async fn get_or_create(pool: &PgPool, name: &str) -> Result<Vec<u8>> {
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query(
        "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&fresh)
    .execute(pool)
    .await?;
    let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    if secret.len() < 32 {
        return Err(Error::internal(anyhow::anyhow!(
            "secret {name} is too short"
        )));
    }
    Ok(secret)
}
