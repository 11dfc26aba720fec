//! A ticket's conversation (`ticket_messages`): what the citizen wrote and what the
//! department answered.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::domain::TicketId;

/// Appends a citizen's message to a ticket's thread.
pub async fn insert_inbound(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
    openid: &str,
    msg_type: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<uuid::Uuid, sqlx::Error> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, at, delivery)
         VALUES ($1, $2, 'inbound', $3, $4, $5, $6, 'received')",
    )
    .bind(id)
    .bind(ticket.0)
    .bind(openid)
    .bind(msg_type)
    .bind(body)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
