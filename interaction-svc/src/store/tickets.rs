//! Ticket queries.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{PageSize, PageToken, TicketId, TicketState};

/// A ticket as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
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
const TICKET_COLUMNS: &str = "id, account, department, openid, state, category, summary, opened_at,
     acknowledge_due_at, resolve_due_at, overdue, assignee, awaiting_citizen, rating, closed_at";

/// Which tickets to list.
#[derive(Debug, Clone)]
pub struct TicketQuery {
    /// `None`: every department (admins only; the caller's check is the handler's job).
    pub department: Option<String>,
    /// Empty: every state.
    pub states: Vec<TicketState>,
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
          ORDER BY opened_at DESC, id DESC
          LIMIT $5"
    );
    let rows: Vec<TicketRow> = sqlx::query_as(&sql)
        .bind(query.department.as_deref())
        .bind(&states)
        .bind(query.after.map(|t| t.opened_at))
        .bind(query.after.map(|t| t.id.0))
        .bind(limit + 1)
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
