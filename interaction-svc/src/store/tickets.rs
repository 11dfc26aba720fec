//! Ticket queries.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::{PageSize, PageToken, TicketAction, TicketId, TicketState, TransitionError};
use crate::store::{outbox, thread};

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TicketRow {
    pub id: uuid::Uuid,
    pub account: String,
    pub department: String,
    pub openid: String,
    pub state: String,
    pub category: String,
    pub summary: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledge_due_at: DateTime<Utc>,
    pub resolve_due_at: DateTime<Utc>,
    pub overdue: bool,
    pub assignee: String,
    pub awaiting_citizen: bool,
    pub rating: Option<i16>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The columns of [`TicketRow`], for every query that reads one.
pub(crate) const TICKET_COLUMNS: &str =
    "id, account, department, openid, state, category, summary, opened_at,
     acknowledge_due_at, resolve_due_at, overdue, assignee, awaiting_citizen, rating, closed_at";

impl TicketRow {
    /// The ticket's id.
    pub fn ticket_id(&self) -> TicketId {
        TicketId(self.id)
    }

    /// The stored state. The CHECK constraint keeps the column to the five names;
    /// anything else is a corrupt row, reported like any other decoding failure.
    pub fn state(&self) -> Result<TicketState, sqlx::Error> {
        self.state
            .parse()
            .map_err(|reason: String| sqlx::Error::Decode(reason.into()))
    }
}

/// Which tickets to list.
#[derive(Debug, Clone)]
pub struct TicketQuery {
    /// `None`: every department (admins only; the caller's check is the handler's job).
    pub department: Option<String>,
    /// Empty: every state.
    pub states: Vec<TicketState>,
    /// Only tickets whose deadline passed.
    pub overdue_only: bool,
    /// Only this account's tickets.
    pub account: Option<String>,
    /// Only this citizen's tickets.
    pub openid: Option<String>,
    pub page_size: PageSize,
    pub after: Option<PageToken>,
}

/// Lists one page of tickets, newest first, and the token of the next page.
#[tracing::instrument(skip_all, fields(department = ?query.department))]
pub async fn list(
    db: &PgPool,
    query: &TicketQuery,
) -> Result<(Vec<TicketRow>, Option<PageToken>), sqlx::Error> {
    let states: Vec<String> = query.states.iter().map(|s| s.as_str().to_owned()).collect();
    let limit = i64::from(query.page_size.get());
    let sql = format!(
        "SELECT {TICKET_COLUMNS}
           FROM tickets
          WHERE ($1::text IS NULL OR department = $1)
            AND (cardinality($2::text[]) = 0 OR state = ANY($2))
            AND ($3::timestamptz IS NULL OR (opened_at, id) < ($3, $4))
            AND (NOT $6 OR overdue)
            AND ($7::text IS NULL OR account = $7)
            AND ($8::text IS NULL OR openid = $8)
          ORDER BY opened_at DESC, id DESC
          LIMIT $5"
    );
    let rows: Vec<TicketRow> = sqlx::query_as(&sql)
        .bind(query.department.as_deref())
        .bind(&states)
        .bind(query.after.map(|t| t.opened_at))
        .bind(query.after.map(|t| t.id.0))
        .bind(limit + 1)
        .bind(query.overdue_only)
        .bind(query.account.as_deref())
        .bind(query.openid.as_deref())
        .fetch_all(db)
        .await?;
    let mut rows = rows;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| PageToken {
            opened_at: last.opened_at,
            id: TicketId(last.id),
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// One ticket.
#[tracing::instrument(skip(db))]
pub async fn get(db: &PgPool, id: TicketId) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(db)
    .await
}

/// Records a state change in the ticket's history.
#[allow(clippy::too_many_arguments)]
pub async fn record_transition(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ticket: TicketId,
    from: Option<TicketState>,
    to: TicketState,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ticket_transitions (ticket_id, from_state, to_state, actor, action, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ticket.0)
    .bind(from.map(TicketState::as_str))
    .bind(to.as_str())
    .bind(actor)
    .bind(action)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Acting on tickets: every change locks the row, checks the state machine,
// records the transition and announces a `TicketChanged` through the outbox,
// all in one transaction.

/// Why an action on a ticket was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Absent, or owned by a department the caller may not see.
    #[error("ticket {0} not found")]
    NotFound(TicketId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Reopening would give the citizen a second active ticket on the account.
    #[error("the citizen already has an active ticket on this account")]
    CitizenHasActiveTicket,
    /// Another answer to the ticket is still being sent; answers go out in order.
    #[error("another answer to ticket {0} is still being sent; try again")]
    AnswerInFlight(TicketId),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Which tickets a caller may act on: `None` for admins (every department).
pub type Scope<'a> = Option<&'a str>;

/// Who acted and why, as recorded in the history and the event.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    /// The department, plus the agent if one was named (`social-security/张三`).
    pub actor: &'a str,
    pub note: &'a str,
}

/// Locks ticket `id` in `tx` for `action`, refusing tickets outside `scope` (as not
/// found, so ids cannot be probed across departments) and actions its state does not
/// allow. Returns the ticket and the state the action leads to.
pub async fn lock_for(
    tx: &mut Transaction<'_, Postgres>,
    id: TicketId,
    scope: Scope<'_>,
    action: TicketAction,
) -> Result<(TicketRow, TicketState), ActionError> {
    let row: Option<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?;
    let row = row
        .filter(|row| scope.is_none_or(|department| row.department == department))
        .ok_or(ActionError::NotFound(id))?;
    let from = row.state()?;
    let to = from.apply(action)?;
    Ok((row, to))
}

/// Acknowledges a ticket: a person in the department has seen it.
#[tracing::instrument(skip_all, fields(ticket = %id))]
pub async fn acknowledge(
    db: &PgPool,
    id: TicketId,
    scope: Scope<'_>,
    act: Act<'_>,
) -> Result<TicketRow, ActionError> {
    let mut tx = db.begin().await?;
    let (row, to) = lock_for(&mut tx, id, scope, TicketAction::Acknowledge).await?;
    sqlx::query(
        "UPDATE tickets SET state = $2, acknowledged_at = COALESCE(acknowledged_at, now())
          WHERE id = $1",
    )
    .bind(id.0)
    .bind(to.as_str())
    .execute(&mut *tx)
    .await?;
    let row = finish(&mut tx, &row, to, TicketAction::Acknowledge, act, "").await?;
    tx.commit().await?;
    Ok(row)
}

/// Where an assignment moves a ticket.
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'a> {
    /// The new department; `None` keeps the ticket where it is.
    pub department: Option<&'a str>,
    /// The agent who owns it inside the department; empty clears.
    pub assignee: &'a str,
}

/// Moves a ticket to another department and/or names its agent.
#[tracing::instrument(skip_all, fields(ticket = %id))]
pub async fn assign(
    db: &PgPool,
    id: TicketId,
    scope: Scope<'_>,
    assignment: Assignment<'_>,
    act: Act<'_>,
) -> Result<TicketRow, ActionError> {
    let mut tx = db.begin().await?;
    let (row, to) = lock_for(&mut tx, id, scope, TicketAction::Assign).await?;
    let department = assignment.department.unwrap_or(&row.department);
    sqlx::query("UPDATE tickets SET department = $2, assignee = $3 WHERE id = $1")
        .bind(id.0)
        .bind(department)
        .bind(assignment.assignee)
        .execute(&mut *tx)
        .await?;
    let previous = if department == row.department {
        ""
    } else {
        row.department.as_str()
    };
    let note = if act.note.is_empty() && !previous.is_empty() {
        format!("{previous} → {department}")
    } else {
        act.note.to_owned()
    };
    let act = Act { note: &note, ..act };
    let row = finish(&mut tx, &row, to, TicketAction::Assign, act, previous).await?;
    tx.commit().await?;
    Ok(row)
}

/// Closes a ticket (the rating question is the deliverer's job, after the commit).
#[tracing::instrument(skip_all, fields(ticket = %id))]
pub async fn close(
    db: &PgPool,
    id: TicketId,
    scope: Scope<'_>,
    act: Act<'_>,
) -> Result<TicketRow, ActionError> {
    let mut tx = db.begin().await?;
    let (row, to) = lock_for(&mut tx, id, scope, TicketAction::Close).await?;
    sqlx::query("UPDATE tickets SET state = $2, closed_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(to.as_str())
        .execute(&mut *tx)
        .await?;
    let row = finish(&mut tx, &row, to, TicketAction::Close, act, "").await?;
    tx.commit().await?;
    Ok(row)
}

/// Reopens a closed ticket. A pending rating question is withdrawn, so the
/// citizen's next digit is not mistaken for a rating.
#[tracing::instrument(skip_all, fields(ticket = %id))]
pub async fn reopen(
    db: &PgPool,
    id: TicketId,
    scope: Scope<'_>,
    act: Act<'_>,
) -> Result<TicketRow, ActionError> {
    let mut tx = db.begin().await?;
    let (row, to) = lock_for(&mut tx, id, scope, TicketAction::Reopen).await?;
    sqlx::query(
        "UPDATE tickets SET state = $2, closed_at = NULL, rating_requested_at = NULL
          WHERE id = $1",
    )
    .bind(id.0)
    .bind(to.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("tickets_one_active_per_citizen") => {
            ActionError::CitizenHasActiveTicket
        }
        _ => ActionError::Database(error),
    })?;
    let row = finish(&mut tx, &row, to, TicketAction::Reopen, act, "").await?;
    tx.commit().await?;
    Ok(row)
}

/// How an outbound message left (or did not yet leave) the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by WeChat's customer-service API.
    Sent,
    /// Waiting for the citizen to open a new 48-hour window.
    Held,
}

impl Delivery {
    /// The name stored in `ticket_messages.delivery`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Held => "held",
        }
    }
}

/// Records the outcome of answer `outgoing` to ticket `id` (committed as `sending`
/// before WeChat was called): the message's delivery, the state, the first-answer
/// time and whether an answer waits for the citizen. A ticket closed while the
/// answer was on its way stays closed; the answer is recorded all the same.
pub async fn record_reply(
    tx: &mut Transaction<'_, Postgres>,
    id: TicketId,
    outgoing: &thread::Outgoing,
    delivery: Delivery,
    act: Act<'_>,
) -> Result<TicketRow, ActionError> {
    let row: TicketRow = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ActionError::NotFound(id))?;
    let from = row.state()?;
    let to = from.apply(TicketAction::Reply).unwrap_or(from);
    thread::settle(tx, outgoing.id, delivery.as_str()).await?;
    sqlx::query(
        "UPDATE tickets
            SET state = $2,
                acknowledged_at = COALESCE(acknowledged_at, now()),
                first_answered_at = COALESCE(first_answered_at, now()),
                awaiting_citizen = EXISTS (
                    SELECT 1 FROM ticket_messages
                     WHERE ticket_id = $1 AND delivery = 'held')
          WHERE id = $1",
    )
    .bind(row.id)
    .bind(to.as_str())
    .execute(&mut **tx)
    .await?;
    let note = if delivery == Delivery::Held {
        "held until the citizen writes again"
    } else {
        act.note
    };
    let act = Act { note, ..act };
    finish(tx, &row, to, TicketAction::Reply, act, "").await
}

/// Records that the citizen was asked to rate the answer (`rating_requested_at`);
/// the question itself is in the thread already.
#[tracing::instrument(skip_all, fields(ticket = %row.id))]
pub async fn record_rating_request(
    tx: &mut Transaction<'_, Postgres>,
    row: &TicketRow,
    delivery: Delivery,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tickets
            SET rating_requested_at = now(),
                awaiting_citizen = awaiting_citizen OR $2
          WHERE id = $1",
    )
    .bind(row.id)
    .bind(delivery == Delivery::Held)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The author of messages the platform sends by itself (the rating question).
pub const SYSTEM_ACTOR: &str = "system";

/// Records the change in the history, announces it, and returns the ticket as it
/// now is.
async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    before: &TicketRow,
    to: TicketState,
    action: TicketAction,
    act: Act<'_>,
    previous_department: &str,
) -> Result<TicketRow, ActionError> {
    let id = before.ticket_id();
    let from = before.state()?;
    record_transition(tx, id, Some(from), to, act.actor, action.as_str(), act.note).await?;
    let after: TicketRow = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_one(&mut **tx)
    .await?;
    announce(tx, &after, action.as_str(), act.actor, previous_department).await?;
    Ok(after)
}

/// Announces a change of `row` made by `actor`.
pub async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    row: &TicketRow,
    kind: &str,
    actor: &str,
    previous_department: &str,
) -> Result<(), sqlx::Error> {
    let event_id = format!("ticket:{}:{kind}:{}", row.id, uuid::Uuid::now_v7());
    outbox::announce_ticket(
        tx,
        &outbox::TicketChange {
            ticket_id: row.id,
            account: &row.account,
            department: &row.department,
            openid: &row.openid,
            state: &row.state,
            category: &row.category,
            assignee: &row.assignee,
            rating: row.rating,
            opened_at: row.opened_at,
            acknowledge_due_at: row.acknowledge_due_at,
            resolve_due_at: row.resolve_due_at,
            kind,
            actor,
            previous_department,
            event_id: &event_id,
            occurred_at: Utc::now(),
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Reading a ticket's thread and history.

/// One message of a ticket's conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: uuid::Uuid,
    pub direction: String,
    pub author: String,
    pub msg_type: String,
    pub body: String,
    pub at: DateTime<Utc>,
    pub delivery: String,
}

/// A ticket's conversation, oldest first.
#[tracing::instrument(skip(db))]
pub async fn thread(db: &PgPool, id: TicketId) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, direction, author, msg_type, body, at, delivery
           FROM ticket_messages WHERE ticket_id = $1 ORDER BY at, id",
    )
    .bind(id.0)
    .fetch_all(db)
    .await
}

/// One entry of a ticket's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TransitionRow {
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub action: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// A ticket's history, oldest first.
#[tracing::instrument(skip(db))]
pub async fn history(db: &PgPool, id: TicketId) -> Result<Vec<TransitionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT from_state, to_state, actor, action, note, at
           FROM ticket_transitions WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(db)
    .await
}
