//! A ticket change as announced on `interaction.{account}.ticket.{kind}`
//! (`events.v1.TicketChanged`), queued through the outbox in the change's transaction.

use chrono::{DateTime, Utc};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::{Postgres, Transaction};

use super::TicketRow;
use crate::domain::{ChangeKind, Deadline};
pub use crate::store::outbox::timestamp;
use platform::outbox::{self, OutboxEvent};

/// How a change of a ticket is announced, besides the ticket itself.
#[derive(Debug, Clone, Copy)]
pub struct Announcement<'a> {
    pub kind: ChangeKind,
    /// "citizen", "system" or the department (and agent) that acted.
    pub actor: &'a str,
    /// For `assigned`: the department it left; empty otherwise.
    pub previous_department: &'a str,
    /// For `overdue`: which deadline passed.
    pub deadline: Option<Deadline>,
    /// The outbox event id (the `Nats-Msg-Id`): derived from the cause where there
    /// is one, so a replayed cause cannot announce twice.
    pub event_id: &'a str,
    pub occurred_at: DateTime<Utc>,
}

/// Queues a `TicketChanged` for `ticket` as it is after the change.
pub async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    ticket: &TicketRow,
    announcement: Announcement<'_>,
) -> Result<(), sqlx::Error> {
    let event = ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: announcement.event_id.to_owned(),
            account: ticket.account.to_string(),
            occurred_at: Some(timestamp(announcement.occurred_at)),
        }),
        kind: ev::TicketChangeKind::from(announcement.kind) as i32,
        ticket_id: ticket.id.to_string(),
        department: ticket.department.clone(),
        openid: ticket.openid.to_string(),
        state: ev::TicketState::from(ticket.state()?) as i32,
        category: ticket.category.clone(),
        opened_at: Some(timestamp(ticket.opened_at)),
        acknowledge_due_at: Some(timestamp(ticket.acknowledge_due_at)),
        resolve_due_at: Some(timestamp(ticket.resolve_due_at)),
        rating: ticket
            .rating
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0),
        actor: announcement.actor.to_owned(),
        previous_department: announcement.previous_department.to_owned(),
        assignee: ticket.assignee.clone(),
        overdue: ticket.overdue,
        deadline: announcement
            .deadline
            .map_or(ev::TicketDeadline::Unspecified, ev::TicketDeadline::from)
            as i32,
    };
    let subject = format!(
        "interaction.{}.ticket.{}",
        ticket.account,
        announcement.kind.as_str()
    );
    let payload = event.encode_to_vec();
    let event = OutboxEvent {
        subject: &subject,
        event_id: announcement.event_id,
        payload: &payload,
    };
    outbox::enqueue(tx, event).await.map(drop)
}
