//! Processed inbound events: the guard that makes a redelivery change nothing.

use sqlx::{Postgres, Transaction};

/// Records `event_id` inside the transaction of its effect. Returns false if it was
/// already processed: the caller then rolls back (or commits nothing else).
pub async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted =
        sqlx::query("INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(inserted == 1)
}
