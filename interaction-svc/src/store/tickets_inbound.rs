//! Ticket changes that come from citizens and from the clock: opening a ticket or
//! joining the citizen's active one, recording a rating, marking a deadline overdue.
//! (What departments do to tickets lives in `tickets.rs`.) Every change records its
//! transition and queues a `TicketChanged` in the caller's transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{Deadlines, TicketId, TicketState};
use crate::store::outbox;
use crate::store::tickets::{TICKET_COLUMNS, TicketRow};

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub account: &'a str,
    pub openid: &'a str,
    pub department: &'a str,
    pub category: &'a str,
    pub summary: &'a str,
    pub opened_at: DateTime<Utc>,
    pub deadlines: Deadlines,
}

/// Where a citizen's message landed.
#[derive(Debug, Clone, PartialEq)]
pub enum Placed {
    /// A new ticket.
    Opened(TicketRow),
    /// The citizen's active ticket, as it was before the message.
    Joined(TicketRow),
}

/// Finds and locks the citizen's active ticket, or opens `new`. Two messages of one
/// citizen handled at once (two consumer replicas) cannot open two tickets: the
/// partial unique index refuses the second insert, which then joins the first.
pub async fn open_or_join(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewTicket<'_>,
) -> Result<Placed, sqlx::Error> {
    // The loop runs twice at most in practice: a lost insert race, then the join.
    for _ in 0..3 {
        if let Some(active) = lock_active(tx, new.account, new.openid).await? {
            return Ok(Placed::Joined(active));
        }
        let opened: Option<TicketRow> = sqlx::query_as(&format!(
            "INSERT INTO tickets (id, account, department, openid, state, category, summary,
                                  opened_at, acknowledge_due_at, resolve_due_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9)
             ON CONFLICT (account, openid) WHERE state <> 'closed' DO NOTHING
             RETURNING {TICKET_COLUMNS}"
        ))
        .bind(TicketId::generate().0)
        .bind(new.account)
        .bind(new.department)
        .bind(new.openid)
        .bind(new.category)
        .bind(new.summary)
        .bind(new.opened_at)
        .bind(new.deadlines.acknowledge_due_at)
        .bind(new.deadlines.resolve_due_at)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(ticket) = opened {
            return Ok(Placed::Opened(ticket));
        }
        // The conflicting ticket committed while we waited; the next statement sees it.
    }
    Err(sqlx::Error::RowNotFound)
}

/// The citizen's ticket that is not closed, locked for the transaction.
pub async fn lock_active(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    openid: &str,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets
          WHERE account = $1 AND openid = $2 AND state <> 'closed'
          FOR UPDATE"
    ))
    .bind(account)
    .bind(openid)
    .fetch_optional(&mut **tx)
    .await
}

/// Sets a ticket's state and returns it.
pub async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    id: TicketId,
    state: TicketState,
) -> Result<TicketRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tickets SET state = $2 WHERE id = $1 RETURNING {TICKET_COLUMNS}"
    ))
    .bind(id.0)
    .bind(state.as_str())
    .fetch_one(&mut **tx)
    .await
}

/// The ticket waiting for this citizen's rating: their most recent ticket, if it is
/// closed, was asked to be rated, and has no rating yet, or got it from `event_id`
/// itself (the reply path may look after the consumer has recorded it).
pub async fn awaiting_rating(
    db: impl PgExecutor<'_>,
    account: &str,
    openid: &str,
    event_id: &str,
) -> Result<Option<TicketId>, sqlx::Error> {
    let id: Option<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT id FROM (
             SELECT id, state, rating_requested_at, rating, rated_event_id FROM tickets
              WHERE account = $1 AND openid = $2
              ORDER BY opened_at DESC, id DESC LIMIT 1) latest
          WHERE state = 'closed' AND rating_requested_at IS NOT NULL
            AND (rating IS NULL OR rated_event_id = $3)",
    )
    .bind(account)
    .bind(openid)
    .bind(event_id)
    .fetch_optional(db)
    .await?;
    Ok(id.map(|(id,)| TicketId(id)))
}

/// Records `rating` from the message `event_id`; `None` if the ticket was rated
/// meanwhile (or is no longer closed).
pub async fn record_rating(
    tx: &mut Transaction<'_, Postgres>,
    id: TicketId,
    rating: u8,
    event_id: &str,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tickets SET rating = $2, rated_event_id = $3
          WHERE id = $1 AND state = 'closed' AND rating IS NULL
         RETURNING {TICKET_COLUMNS}"
    ))
    .bind(id.0)
    .bind(i16::from(rating))
    .bind(event_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Whether the citizen has answers held for them (they were outside the 48-hour
/// window when the department replied).
pub async fn has_held_answers(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    openid: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tickets
                         WHERE account = $1 AND openid = $2 AND awaiting_citizen)",
    )
    .bind(account)
    .bind(openid)
    .fetch_one(&mut **tx)
    .await
}

/// The two deadlines of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// A first human response (while open or reopened).
    Acknowledge,
    /// Resolution (while not closed).
    Resolve,
}

impl Deadline {
    /// The name used in notes, event ids and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

/// Marks up to `limit` tickets whose `deadline` passed before `now` as overdue and
/// returns them. Each ticket is marked once: the rows are first locked with
/// `SKIP LOCKED` (a replica sweeping at the same time takes other rows), and the
/// update re-checks `*_overdue_at IS NULL` on the locked, current rows, so a row
/// another replica marked in the meantime is not returned again.
pub async fn mark_overdue(
    tx: &mut Transaction<'_, Postgres>,
    deadline: Deadline,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TicketRow>, sqlx::Error> {
    let (marker, due, states) = match deadline {
        Deadline::Acknowledge => (
            "acknowledge_overdue_at",
            "acknowledge_due_at",
            "state IN ('open', 'reopened')",
        ),
        Deadline::Resolve => ("resolve_overdue_at", "resolve_due_at", "state <> 'closed'"),
    };
    let condition = format!("{states} AND {marker} IS NULL AND {due} < $1");
    // Two statements, not `UPDATE … WHERE id IN (SELECT … SKIP LOCKED)`: there the
    // update's own snapshot can predate a row the sub-select locked, and the re-check
    // of such a row may drop it although it stays locked, leaving it unmarked.
    let locked: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
        "SELECT id FROM tickets WHERE {condition}
          ORDER BY {due} LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    if locked.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(&format!(
        "UPDATE tickets SET {marker} = $1, overdue = true
          WHERE id = ANY($2) AND {condition}
         RETURNING {TICKET_COLUMNS}"
    ))
    .bind(now)
    .bind(&locked)
    .fetch_all(&mut **tx)
    .await
}

/// How a change is announced.
#[derive(Debug, Clone, Copy)]
pub struct Announcement<'a> {
    /// The `TicketChanged.kind` and the last subject token: opened, citizen_message, …
    pub kind: &'a str,
    /// "citizen" or "system".
    pub actor: &'a str,
    /// The outbox event id; derived from the cause, so a replay cannot announce twice.
    pub event_id: &'a str,
    pub occurred_at: DateTime<Utc>,
}

/// Announces a change of `ticket` through the outbox.
pub async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    ticket: &TicketRow,
    announcement: Announcement<'_>,
) -> Result<(), sqlx::Error> {
    outbox::announce_ticket(
        tx,
        &outbox::TicketChange {
            ticket_id: ticket.id,
            account: &ticket.account,
            department: &ticket.department,
            openid: &ticket.openid,
            state: &ticket.state,
            category: &ticket.category,
            assignee: &ticket.assignee,
            rating: ticket.rating,
            opened_at: ticket.opened_at,
            acknowledge_due_at: ticket.acknowledge_due_at,
            resolve_due_at: ticket.resolve_due_at,
            kind: announcement.kind,
            actor: announcement.actor,
            previous_department: "",
            event_id: announcement.event_id,
            occurred_at: announcement.occurred_at,
        },
    )
    .await
}
