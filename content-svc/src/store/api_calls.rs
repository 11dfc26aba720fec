//! The ledger of WeChat API calls per account and API, for the per-minute limit.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// Serialises check-then-record for one account's API across replicas.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    api: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:' || $1 || ':' || $2))")
        .bind(account)
        .bind(api)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The calls made since `since` (older rows are deleted first: only the window matters).
pub async fn calls_since(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    api: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query("DELETE FROM api_call_ledger WHERE account = $1 AND api = $2 AND called_at <= $3")
        .bind(account)
        .bind(api)
        .bind(since)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar(
        "SELECT called_at FROM api_call_ledger WHERE account = $1 AND api = $2 AND called_at > $3",
    )
    .bind(account)
    .bind(api)
    .bind(since)
    .fetch_all(&mut **tx)
    .await
}

/// Records a call about to be made.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    api: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO api_call_ledger (account, api, called_at) VALUES ($1, $2, $3)")
        .bind(account)
        .bind(api)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Each API's calls for `account` since `since`, for the quota status.
pub async fn usage(
    db: &sqlx::PgPool,
    account: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(String, Vec<DateTime<Utc>>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT api, array_agg(called_at ORDER BY called_at) FROM api_call_ledger
          WHERE account = $1 AND called_at > $2 GROUP BY api ORDER BY api",
    )
    .bind(account)
    .bind(since)
    .fetch_all(db)
    .await
}
