//! The one way a ticket changes: lock it, let the domain decide the state after the
//! [`TicketEvent`], write the event's columns, record the history and queue the
//! `TicketChanged`, all in the caller's transaction. The caller commits and then
//! wakes the outbox relay. Department actions, citizens' messages and ratings, the
//! sweeper and the deliverer all come through [`change`].

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::announce::{Announcement, announce};
use super::{TICKET_COLUMNS, TicketRow, record_transition};
use crate::domain::ticket::in_scope;
use crate::domain::{Deadline, Scope, TicketEvent, TicketId, TicketState, TransitionError};

/// Why a change of a ticket was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Absent, or owned by a department the caller may not see.
    #[error("ticket {0} not found")]
    NotFound(TicketId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The ticket's citizen data was removed (by age or on the citizen's request):
    /// reopening it would open a request nobody can answer, the citizen unknown.
    #[error(
        "ticket {0}'s citizen data was erased (retention or the citizen's request); it cannot be reopened"
    )]
    Erased(TicketId),
    /// Reopening would give the citizen a second active ticket on the account.
    #[error("the citizen already has an active ticket on this account")]
    CitizenHasActiveTicket,
    /// The assignment names the department and agent the ticket already has.
    #[error("ticket {0} already has this department and assignee; nothing to change")]
    NoChange(TicketId),
    /// Closing a ticket not answered since it was opened or last reopened needs a
    /// note saying why.
    #[error(
        "ticket {0} has no answer since it was opened or reopened; closing it needs a note saying why"
    )]
    ReasonRequired(TicketId),
    /// Another answer to the ticket (or this request's own) is still being sent
    /// after the wait; answers go out in order.
    #[error("an answer to ticket {0} is still being sent ({1:?})")]
    AnswerInFlight(TicketId, InFlight),
    /// A request id already used for another text on this ticket.
    #[error("request_id was already used for another answer to ticket {0}")]
    RequestReused(TicketId),
    /// A retry of an answer whose earlier attempt's outcome is unknown (WeChat's
    /// answer was lost): it may have reached the citizen and is never sent again.
    #[error("this answer's earlier attempt may have reached the citizen (ticket {0})")]
    EarlierOutcomeUnknown(TicketId),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What an answer that timed out waiting for its turn left behind, which decides
/// whether the caller may retry it blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Not recorded, and without a request id a retry cannot be told from a new
    /// answer: the one in flight may be this text from a call whose caller gave up.
    Unidentified,
    /// Not recorded; a retry with the same request id finds the answer if an
    /// earlier call recorded it, so it is safe.
    NotRecorded,
    /// This request id's answer is the one being sent; a retry with the id reports
    /// how it left.
    Recorded,
}

impl ActionError {
    /// The error for a caller that works in `sqlx::Error` (the inbound consumer,
    /// whose events the state machine allows on the tickets it finds): a database
    /// failure as it is, any refusal as a decoding failure of the ticket.
    pub fn into_database(self) -> sqlx::Error {
        match self {
            Self::Database(error) => error,
            refused => sqlx::Error::Decode(Box::new(refused)),
        }
    }
}

/// Who caused a change, why, and under which event id it is announced.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// "citizen", "system", or the department plus the agent if one was named
    /// (`social-security/张三`).
    pub actor: &'a str,
    pub note: &'a str,
    /// The outbox event id; `None` makes a fresh one (a department's action is its
    /// own cause, while a citizen's message or a sweep derives it from theirs).
    pub event_id: Option<&'a str>,
    pub at: DateTime<Utc>,
}

impl<'a> Cause<'a> {
    /// A cause acting now, announced under a fresh event id.
    pub fn now(actor: &'a str, note: &'a str) -> Self {
        Self {
            actor,
            note,
            event_id: None,
            at: Utc::now(),
        }
    }
}

/// Locks ticket `id` in `tx`, refusing one outside `scope` as not found (so ids
/// cannot be probed across departments).
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: TicketId,
    scope: Scope<'_>,
) -> Result<TicketRow, ActionError> {
    let row: Option<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?;
    row.filter(|row| in_scope(scope, &row.department))
        .ok_or(ActionError::NotFound(id))
}

/// Applies `event` to `before` (locked in `tx`, or just inserted for `Opened`):
/// the state and columns, the history, the announcement. Returns the ticket as it
/// now is.
pub async fn change(
    tx: &mut Transaction<'_, Postgres>,
    before: &TicketRow,
    event: TicketEvent<'_>,
    cause: Cause<'_>,
) -> Result<TicketRow, ActionError> {
    let from = match event {
        TicketEvent::Opened => None,
        _ => Some(before.state()?),
    };
    let to = event.apply(from)?;
    if let TicketEvent::Reopened(_) = event {
        // The rating question of the close being undone, if it is still held, is
        // withdrawn with it (never sent: the thread does not keep it).
        sqlx::query(
            "DELETE FROM ticket_messages
              WHERE ticket_id = $1 AND author = $2 AND delivery = 'held'",
        )
        .bind(before.id)
        .bind(super::SYSTEM_ACTOR)
        .execute(&mut **tx)
        .await?;
    }
    let after = write(tx, before, event, to, &cause).await?;
    let kind = event.kind();
    let previous_department = if after.department == before.department {
        ""
    } else {
        before.department.as_str()
    };
    let described;
    let note = match event {
        TicketEvent::Assigned { .. } => {
            described = describe_assignment(before, &after, cause.note);
            described.as_str()
        }
        _ => cause.note,
    };
    if event.is_history(from, to) {
        record_transition(
            tx,
            before.ticket_id(),
            from,
            to,
            cause.actor,
            kind.as_str(),
            note,
        )
        .await?;
    }
    let fresh;
    let event_id = match cause.event_id {
        Some(id) => id,
        None => {
            fresh = format!(
                "ticket:{}:{}:{}",
                before.id,
                kind.as_str(),
                uuid::Uuid::now_v7()
            );
            fresh.as_str()
        }
    };
    let deadline = match event {
        TicketEvent::Overdue(deadline) => Some(deadline),
        _ => None,
    };
    announce(
        tx,
        &after,
        Announcement {
            kind,
            actor: cause.actor,
            previous_department,
            deadline,
            event_id,
            occurred_at: cause.at,
        },
    )
    .await?;
    Ok(after)
}

/// The history note of an assignment: what moved from what to what, then the
/// agent's note (`department social-security → transport; assignee — → 李强; 属地`).
fn describe_assignment(before: &TicketRow, after: &TicketRow, note: &str) -> String {
    let shown = |name: &str| {
        if name.is_empty() {
            "—".to_owned()
        } else {
            name.to_owned()
        }
    };
    let mut parts = Vec::new();
    if before.department != after.department {
        parts.push(format!(
            "department {} → {}",
            before.department, after.department
        ));
    }
    if before.assignee != after.assignee {
        parts.push(format!(
            "assignee {} → {}",
            shown(&before.assignee),
            shown(&after.assignee)
        ));
    }
    if !note.is_empty() {
        parts.push(note.to_owned());
    }
    parts.join("; ")
}

/// Writes what `event` changes on the row, with `to` as the new state.
async fn write(
    tx: &mut Transaction<'_, Postgres>,
    before: &TicketRow,
    event: TicketEvent<'_>,
    to: TicketState,
    cause: &Cause<'_>,
) -> Result<TicketRow, ActionError> {
    let set = match event {
        // The row was inserted as it is.
        TicketEvent::Opened => return Ok(before.clone()),
        TicketEvent::CitizenMessage if before.state()? == to => return Ok(before.clone()),
        TicketEvent::CitizenMessage => "state = $2",
        TicketEvent::Acknowledged => {
            "state = $2, acknowledged_at = COALESCE(acknowledged_at, now())"
        }
        TicketEvent::Assigned { .. } => {
            "department = COALESCE($3, department), assignee = $4, state = $2"
        }
        TicketEvent::Replied => {
            "state = $2,
             acknowledged_at = COALESCE(acknowledged_at, now()),
             first_answered_at = COALESCE(first_answered_at, now()),
             awaiting_citizen = EXISTS (
                 SELECT 1 FROM ticket_messages WHERE ticket_id = $1 AND delivery = 'held')"
        }
        TicketEvent::Closed => "state = $2, closed_at = now()",
        // A pending rating question is withdrawn, so the citizen's next digit is not
        // mistaken for a rating, and a rating given is cleared, so the next close's
        // question can be answered (the first stays in the history). A new round
        // starts: new deadlines, and the sweeper judges them afresh (the first
        // round's escalations stay in the history).
        TicketEvent::Reopened(_) => {
            "state = $2, closed_at = NULL, rating_requested_at = NULL,
             rating = NULL, rated_event_id = NULL,
             awaiting_citizen = EXISTS (
                 SELECT 1 FROM ticket_messages WHERE ticket_id = $1 AND delivery = 'held'),
             acknowledge_due_at = $7, resolve_due_at = $8,
             acknowledge_overdue_at = NULL, resolve_overdue_at = NULL, overdue = false"
        }
        TicketEvent::Overdue(Deadline::Acknowledge) => {
            "state = $2, acknowledge_overdue_at = $5, overdue = true"
        }
        TicketEvent::Overdue(Deadline::Resolve) => {
            "state = $2, resolve_overdue_at = $5, overdue = true"
        }
        // The message's event id tells the reply path it was this very message.
        TicketEvent::Rated { .. } => "state = $2, rating = $3::smallint, rated_event_id = $6",
    };
    let (department, assignee) = match event {
        TicketEvent::Assigned {
            department,
            assignee,
        } => (department, assignee),
        _ => (None, ""),
    };
    let (third, message): (Option<String>, Option<&str>) = match event {
        TicketEvent::Rated {
            rating,
            message_event_id,
        } => (Some(rating.to_string()), Some(message_event_id)),
        _ => (department.map(str::to_owned), None),
    };
    let deadlines = match event {
        TicketEvent::Reopened(deadlines) => Some(deadlines),
        _ => None,
    };
    sqlx::query_as(&format!(
        "UPDATE tickets SET {set} WHERE id = $1 RETURNING {TICKET_COLUMNS}"
    ))
    .bind(before.id)
    .bind(to.as_str())
    .bind(third)
    .bind(assignee)
    .bind(cause.at)
    .bind(message)
    .bind(deadlines.map(|d| d.acknowledge_due_at))
    .bind(deadlines.map(|d| d.resolve_due_at))
    .fetch_one(&mut **tx)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("tickets_one_active_per_citizen") => {
            ActionError::CitizenHasActiveTicket
        }
        _ => ActionError::Database(error),
    })
}
