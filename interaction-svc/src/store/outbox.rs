//! The outbox: events written in the same transaction as the change they announce,
//! published to the INTERACTION stream by the relay.

use sqlx::{Postgres, Transaction};

/// Queues an event for the relay. `subject` is un-namespaced
/// (`interaction.{account}.ticket.opened`); `event_id` becomes the `Nats-Msg-Id`,
/// so a relay that publishes twice after a crash is deduplicated by JetStream.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
    event_id: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(subject)
    .bind(payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
