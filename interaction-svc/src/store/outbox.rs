//! What interaction-svc announces on the INTERACTION stream, queued through
//! `platform::outbox` in the transaction of the change.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// Queues an event for the relay (`platform::outbox`). `subject` is un-namespaced
/// (`interaction.{account}.ticket.opened`); `event_id` becomes the `Nats-Msg-Id`.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
    event_id: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    platform::outbox::enqueue(
        tx,
        platform::outbox::OutboxEvent {
            subject,
            event_id,
            payload,
        },
    )
    .await?;
    Ok(())
}

/// A protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
