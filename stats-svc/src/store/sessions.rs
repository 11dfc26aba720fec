//! Dashboard sessions (`dashboard_sessions`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub department: String,
    /// `None`: every account (as the key reached when the session opened).
    pub accounts: Option<Vec<String>>,
    /// The SHA-256 digest of the key that opened it, checked against the keys in use
    /// at every request.
    pub key_digest: Vec<u8>,
}

/// Stores a new session (and drops expired ones).
pub async fn create(
    db: &PgPool,
    id: &str,
    session: &Session,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < now()")
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO dashboard_sessions (id, department, accounts, key_digest, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(&session.department)
    .bind(&session.accounts)
    .bind(&session.key_digest)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The live session `id`, if any.
pub async fn find(db: &PgPool, id: &str) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "SELECT department, accounts, key_digest FROM dashboard_sessions
          WHERE id = $1 AND expires_at > now()",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}
