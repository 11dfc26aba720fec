//! The outbox: events written in the same transaction as the change they announce,
//! published to the INTERACTION stream by the relay.

use chrono::{DateTime, Utc};
use prost::Message as _;
use proto::events::v1 as ev;
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

/// A protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A ticket as announced on `interaction.{account}.ticket.{kind}`, whichever row type
/// the change was made through.
#[derive(Debug, Clone, Copy)]
pub struct TicketChange<'a> {
    pub ticket_id: uuid::Uuid,
    pub account: &'a str,
    pub department: &'a str,
    pub openid: &'a str,
    pub state: &'a str,
    pub category: &'a str,
    pub assignee: &'a str,
    pub rating: Option<i16>,
    pub opened_at: DateTime<Utc>,
    pub acknowledge_due_at: DateTime<Utc>,
    pub resolve_due_at: DateTime<Utc>,
    /// opened, acknowledged, assigned, replied, closed, reopened, overdue, rated, citizen_message.
    pub kind: &'a str,
    /// "citizen", "system" or the department (and agent) that acted.
    pub actor: &'a str,
    /// For `assigned`: the department it left; empty otherwise.
    pub previous_department: &'a str,
    pub event_id: &'a str,
    pub occurred_at: DateTime<Utc>,
}

/// Queues a `TicketChanged` event for the relay, in the transaction of the change.
pub async fn announce_ticket(
    tx: &mut Transaction<'_, Postgres>,
    change: &TicketChange<'_>,
) -> Result<(), sqlx::Error> {
    let event = ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: change.event_id.to_owned(),
            account: change.account.to_owned(),
            occurred_at: Some(timestamp(change.occurred_at)),
        }),
        kind: change.kind.to_owned(),
        ticket_id: change.ticket_id.to_string(),
        department: change.department.to_owned(),
        openid: change.openid.to_owned(),
        state: change.state.to_owned(),
        category: change.category.to_owned(),
        opened_at: Some(timestamp(change.opened_at)),
        acknowledge_due_at: Some(timestamp(change.acknowledge_due_at)),
        resolve_due_at: Some(timestamp(change.resolve_due_at)),
        rating: change
            .rating
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0),
        actor: change.actor.to_owned(),
        previous_department: change.previous_department.to_owned(),
        assignee: change.assignee.to_owned(),
    };
    let subject = format!("interaction.{}.ticket.{}", change.account, change.kind);
    enqueue(tx, &subject, change.event_id, &event.encode_to_vec()).await
}
