//! Store rows → wire messages, at the service edge.

use proto::events::v1 as ev;
use proto::interaction::v1 as pb;

use crate::app::tickets::TicketView;
use crate::domain::{Delivery, TicketState};
use crate::store::followers_read::FollowerRow;
use crate::store::tickets::{MessageRow, TicketRow, TransitionRow};

pub use crate::store::tickets::announce::timestamp;

fn state(stored: &str) -> i32 {
    stored
        .parse::<TicketState>()
        .map(pb::TicketState::from)
        .unwrap_or(pb::TicketState::Unspecified) as i32
}

/// A ticket without its thread and history (lists, events).
pub fn ticket(row: TicketRow) -> pb::Ticket {
    pb::Ticket {
        id: row.id.to_string(),
        state: state(&row.state),
        account: row.account.into(),
        department: row.department,
        openid: row.openid.into(),
        category: row.category,
        summary: row.summary,
        opened_at: Some(timestamp(row.opened_at)),
        acknowledge_due_at: Some(timestamp(row.acknowledge_due_at)),
        resolve_due_at: Some(timestamp(row.resolve_due_at)),
        overdue: row.overdue,
        assignee: row.assignee,
        awaiting_citizen: row.awaiting_citizen,
        rating: row.rating.map_or(0, |r| u32::try_from(r).unwrap_or(0)),
        closed_at: row.closed_at.map(timestamp),
        thread: Vec::new(),
        history: Vec::new(),
        earlier_messages: 0,
        earlier_transitions: 0,
    }
}

/// A ticket with its thread and history (`GetTicket`).
pub fn ticket_view(view: TicketView) -> pb::Ticket {
    let mut ticket = ticket(view.ticket);
    ticket.thread = view.thread.into_iter().map(message).collect();
    ticket.history = view.history.into_iter().map(transition).collect();
    ticket.earlier_messages = u32::try_from(view.earlier_messages).unwrap_or(u32::MAX);
    ticket.earlier_transitions = u32::try_from(view.earlier_transitions).unwrap_or(u32::MAX);
    ticket
}

pub fn message(row: MessageRow) -> pb::TicketMessage {
    let direction = match row.direction.as_str() {
        "inbound" => pb::Direction::Inbound,
        "outbound" => pb::Direction::Outbound,
        _ => pb::Direction::Unspecified,
    };
    let delivery = match row.delivery.as_str() {
        "received" => pb::DeliveryStatus::Received,
        "sent" => pb::DeliveryStatus::Sent,
        "held" => pb::DeliveryStatus::Held,
        "failed" => pb::DeliveryStatus::Failed,
        // What an answer that timed out waiting for its turn tells its caller to look
        // for in the thread.
        "sending" => pb::DeliveryStatus::Sending,
        _ => pb::DeliveryStatus::Unspecified,
    };
    pb::TicketMessage {
        id: row.id.to_string(),
        direction: direction as i32,
        author: row.author,
        msg_type: row.msg_type,
        text: row.body,
        at: Some(timestamp(row.at)),
        delivery: delivery as i32,
    }
}

pub fn transition(row: TransitionRow) -> pb::TicketTransition {
    pb::TicketTransition {
        from: row.from_state.as_deref().map_or(0, state),
        to: state(&row.to_state),
        actor: row.actor,
        action: row.action,
        note: row.note,
        at: Some(timestamp(row.at)),
    }
}

pub fn delivery(delivery: Delivery) -> pb::DeliveryStatus {
    match delivery {
        Delivery::Sent => pb::DeliveryStatus::Sent,
        Delivery::Held => pb::DeliveryStatus::Held,
    }
}

pub fn follower(row: FollowerRow) -> pb::Follower {
    pb::Follower {
        account: row.account.into(),
        openid: row.openid.into(),
        subscribed: row.subscribed,
        subscribed_at: row.subscribed_at.map(timestamp),
        unsubscribed_at: row.unsubscribed_at.map(timestamp),
        qr_scene: row.qr_scene,
        last_interaction_at: row.last_interaction_at.map(timestamp),
        latitude: row.latitude.unwrap_or_default(),
        longitude: row.longitude.unwrap_or_default(),
        location_at: row.location_at.map(timestamp),
        tags: row.tags,
    }
}

/// The queue-event kind of a `TicketChanged.kind`; `None` for kinds a queue ignores.
pub fn queue_kind(kind: ev::TicketChangeKind) -> Option<pb::QueueEventKind> {
    use ev::TicketChangeKind as C;
    use pb::QueueEventKind as K;
    Some(match kind {
        C::Opened => K::Opened,
        C::Assigned => K::Assigned,
        C::Overdue => K::Overdue,
        C::CitizenMessage => K::CitizenMessage,
        C::Replied => K::Replied,
        C::Closed => K::Closed,
        C::Reopened => K::Reopened,
        C::Rated => K::Rated,
        C::Acknowledged => K::Acknowledged,
        C::Unspecified => return None,
    })
}
