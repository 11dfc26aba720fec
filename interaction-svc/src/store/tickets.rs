//! Tickets: reading queues, tickets, threads and histories. What changes a ticket
//! goes through [`lifecycle::change`]; what only citizens and the clock do (open,
//! join, look for overdue tickets) is in [`citizen`].

pub mod announce;
pub mod citizen;
pub mod lifecycle;

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::PgPool;

pub use crate::domain::ticket::{Delivery, Scope};
use crate::domain::{ChangeKind, PageSize, PageToken, TicketId, TicketState};
pub use lifecycle::{ActionError, Cause};

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TicketRow {
    pub id: uuid::Uuid,
    pub account: AccountId,
    pub department: String,
    pub openid: OpenId,
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
    /// The callback that opened it (none for tickets opened before migration 0008).
    pub opened_event_id: Option<String>,
}

/// The columns of [`TicketRow`], for every query that reads one.
pub(crate) const TICKET_COLUMNS: &str =
    "id, account, department, openid, state, category, summary, opened_at,
     acknowledge_due_at, resolve_due_at, overdue, assignee, awaiting_citizen, rating, closed_at,
     opened_event_id";

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
    /// Only these accounts' tickets (the caller's key's); `None`: every account.
    pub accounts: Option<Vec<String>>,
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
            AND ($9::text[] IS NULL OR account = ANY($9))
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
        .bind(query.accounts.as_deref())
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

/// Whether ticket `id` was answered since it was opened or last reopened. Read from
/// the history, since the state moves on: the citizen's reply to an answer ("谢谢")
/// takes the ticket from answered back to acknowledged.
pub async fn answered_this_round(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM ticket_transitions
              WHERE ticket_id = $1 AND action = $2
                AND id > COALESCE((SELECT max(id) FROM ticket_transitions
                                    WHERE ticket_id = $1 AND action = $3), 0))",
    )
    .bind(id.0)
    .bind(ChangeKind::Replied.as_str())
    .bind(ChangeKind::Reopened.as_str())
    .fetch_one(&mut **tx)
    .await
}

/// Who closed ticket `id` last, and with which note (the history's newest close).
pub async fn last_close(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT actor, note FROM ticket_transitions
          WHERE ticket_id = $1 AND action = $2
          ORDER BY id DESC LIMIT 1",
    )
    .bind(id.0)
    .bind(ChangeKind::Closed.as_str())
    .fetch_optional(&mut **tx)
    .await
}

/// Records that the citizen was asked to rate the answer (`rating_requested_at`),
/// or, when the question is held, that the ticket awaits the citizen: it counts as
/// asked once the flush sends it (`thread::settle_flush`), so the citizen's digit
/// rates this ticket only after they had the question. The question itself is in
/// the thread already. A ticket reopened while the question was on its way records
/// nothing: its new round is rated after its next close.
#[tracing::instrument(skip_all, fields(ticket = %row.id))]
pub async fn record_rating_request(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    row: &TicketRow,
    delivery: Delivery,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tickets
            SET rating_requested_at = CASE WHEN $2 THEN rating_requested_at ELSE now() END,
                awaiting_citizen = awaiting_citizen OR $2
          WHERE id = $1 AND state = 'closed'",
    )
    .bind(row.id)
    .bind(delivery == Delivery::Held)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether a ticket of the citizen of ticket `t` other than `t` is newer than `t`'s
/// last close: being handled now (opened or reopened since: while `t` was active
/// no other could be), or opened or reopened after that close and closed again.
/// Its question is then no longer `t`'s to ask: asked now it would be the question
/// last asked, and the citizen's next digit (an answer to the newer ticket's agent,
/// "reply with the number") would rate `t` and never reach the newer ticket. A
/// reopened older ticket is as new as an opened one: its agent asks the citizen
/// things too.
///
/// "After" is the order the history entries were written in (their `bigserial`
/// id), not their times: `at` and `closed_at` are their transactions' start
/// (`now()`), and a consumer batch begun before a department's close waits for
/// that close's lock (the one-active-ticket index, the citizen's active ticket),
/// then opens the next ticket stamped before the close. Its entry's id is drawn
/// after the close's, which had committed. The times still count for a ticket
/// whose close has no history entry (written by hand), and `opened_at` for one
/// without an `opened` entry.
const NEWER_TICKET_OPENED: &str = "EXISTS (
    SELECT 1 FROM tickets o
     WHERE o.account = t.account AND o.openid = t.openid AND o.id <> t.id
       AND (o.state <> 'closed'
            OR o.opened_at > t.closed_at
            OR EXISTS (SELECT 1 FROM ticket_transitions tr
                        WHERE tr.ticket_id = o.id AND tr.action IN ('opened', 'reopened')
                          AND (tr.at > t.closed_at
                               OR tr.id > (SELECT max(c.id) FROM ticket_transitions c
                                            WHERE c.ticket_id = t.id
                                              AND c.action = 'closed')))))";

/// Whether closed ticket `id` has its rating question already: on its way to
/// WeChat or held (by [`SYSTEM_ACTOR`]), or asked since it was last closed
/// (`rating_requested_at`, which a reopen clears, or any question written since the
/// close: one given up by the sweeper as a stale send, delivery unknown, may have
/// reached the citizen without `rating_requested_at` being set); or is past asking,
/// a newer ticket of its citizen having opened since the close (the close's
/// question waits its turn behind answers still being sent, up to 20 s, and the
/// citizen may write about something new meanwhile). One statement, so a question
/// settled meanwhile is seen either still pending or asked, never neither.
pub async fn rating_question_pending_or_asked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT t.rating_requested_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM ticket_messages m
                            WHERE m.ticket_id = t.id AND m.author = $2
                              AND (m.delivery IN ('sending', 'held') OR m.at >= t.closed_at))
                OR {NEWER_TICKET_OPENED}
           FROM tickets t WHERE t.id = $1"
    ))
    .bind(id.0)
    .bind(SYSTEM_ACTOR)
    .fetch_one(&mut **tx)
    .await
}

/// Follower `f` of closed ticket `t` has followed without a break since the close:
/// no unfollow recorded (`unsubscribed_at`, which a re-follow clears) and no follow
/// after the close (an unfollow came in between). Not `subscribed`: a citizen known
/// from their messages only is `false` there and follows all the same.
const FOLLOWING_SINCE_CLOSE: &str =
    "f.unsubscribed_at IS NULL AND (f.subscribed_at IS NULL OR f.subscribed_at <= t.closed_at)";

/// Whether the citizen of closed ticket `id` has unfollowed (`unsubscribed_at`,
/// which a re-follow clears) or followed again since the close (an unfollow came
/// in between): the same rule as [`owed_rating_questions`], for the close's own
/// question. Not `subscribed`: a citizen known from their messages only is `false`
/// there and follows all the same. No follower row: nothing says they left.
pub async fn citizen_has_unfollowed(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM tickets t
                          JOIN followers f ON f.account = t.account AND f.openid = t.openid
                         WHERE t.id = $1 AND NOT ({FOLLOWING_SINCE_CLOSE}))"
    ))
    .bind(id.0)
    .fetch_one(&mut **tx)
    .await
}

/// Closed tickets still owed their rating question at `now`, oldest close first, at
/// most `limit`: closed more than `after` ago (the close's own question task has had
/// its time) and less than `window` ago, no question written since the close (none
/// pending, sent, held or given up) and none recorded as asked, not rated, their
/// citizen not erased and inside their customer-service window (`window` since their
/// last interaction), still following with no follow recorded since the close, and
/// no newer ticket of theirs opened since the close (the citizen who wrote about
/// something new is not asked about the old one: see `NEWER_TICKET_OPENED`). What a
/// close leaves when the task asking its question was dropped unfinished (a drain's
/// deadline) or could not record it.
///
/// A citizen who unfollowed (`unsubscribed_at`, which a re-follow clears) is not
/// asked: WeChat refuses the question, a refused question is held, and it would go
/// out after their re-follow, days later, their next digit rating a ticket they no
/// longer think of. Nor is one who followed again since the close (an unfollow came
/// between their message and now): a question asked before an unfollow expires
/// with it (`citizen::awaiting_rating`), and one owed from before is no fresher. Not
/// `subscribed`: a citizen known from their messages only (following since before
/// the platform, no follow event seen) is `false` there and follows all the same.
pub async fn owed_rating_questions(
    db: &PgPool,
    now: DateTime<Utc>,
    after: chrono::TimeDelta,
    window: chrono::TimeDelta,
    limit: i64,
) -> Result<Vec<TicketId>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
        "SELECT t.id FROM tickets t
           JOIN followers f ON f.account = t.account AND f.openid = t.openid
          WHERE t.state = 'closed' AND t.erased_at IS NULL
            AND t.closed_at < $1 AND t.closed_at > $2
            AND t.rating IS NULL AND t.rating_requested_at IS NULL
            AND t.openid <> $3
            AND f.last_interaction_at > $2
            AND {FOLLOWING_SINCE_CLOSE}
            AND NOT EXISTS (SELECT 1 FROM ticket_messages m
                             WHERE m.ticket_id = t.id AND m.author = $4
                               AND (m.delivery IN ('sending', 'held') OR m.at >= t.closed_at))
            AND NOT {NEWER_TICKET_OPENED}
          ORDER BY t.closed_at
          LIMIT $5"
    ))
    .bind(now - after)
    .bind(now - window)
    .bind(crate::domain::retention::ERASED_OPENID)
    .bind(SYSTEM_ACTOR)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().map(TicketId).collect())
}

/// Locks ticket `id` and tells whether it is closed: a rating question is held
/// only for a closed ticket, and a reopen withdraws a held one under the same lock,
/// so one settled under it is never left held on a reopened ticket.
pub async fn lock_closed(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: TicketId,
) -> Result<bool, sqlx::Error> {
    let closed: Option<bool> =
        sqlx::query_scalar("SELECT state = 'closed' FROM tickets WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(closed.unwrap_or(false))
}

pub use crate::domain::ticket::SYSTEM_ACTOR;

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

/// The most a `GetTicket` carries of a ticket's thread and of its history: a citizen
/// who keeps writing into one open ticket must not make the answer unbounded (gRPC's
/// message limit would refuse it whole). The newest are kept.
pub const MAX_THREAD: i64 = 500;
pub const MAX_HISTORY: i64 = 500;

/// The newest `limit` entries of something, oldest first, and how many older ones
/// were left out.
#[derive(Debug, Clone)]
pub struct Newest<T> {
    pub rows: Vec<T>,
    pub omitted: u64,
}

impl<T> Newest<T> {
    fn of(mut newest_first: Vec<(T, i64)>) -> Self {
        let total = newest_first.first().map_or(0, |(_, total)| *total);
        newest_first.reverse();
        let rows: Vec<T> = newest_first.into_iter().map(|(row, _)| row).collect();
        let omitted = u64::try_from(total)
            .unwrap_or(0)
            .saturating_sub(rows.len() as u64);
        Self { rows, omitted }
    }
}

#[derive(sqlx::FromRow)]
struct Counted<T> {
    #[sqlx(flatten)]
    row: T,
    total: i64,
}

/// A ticket's conversation: its newest `limit` messages, oldest first.
#[tracing::instrument(skip(db))]
pub async fn thread(
    db: &PgPool,
    id: TicketId,
    limit: i64,
) -> Result<Newest<MessageRow>, sqlx::Error> {
    let rows: Vec<Counted<MessageRow>> = sqlx::query_as(
        "SELECT id, direction, author, msg_type, body, at, delivery, count(*) OVER () AS total
           FROM ticket_messages WHERE ticket_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(id.0)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Newest::of(
        rows.into_iter().map(|c| (c.row, c.total)).collect(),
    ))
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

/// A ticket's history: its newest `limit` transitions, oldest first.
#[tracing::instrument(skip(db))]
pub async fn history(
    db: &PgPool,
    id: TicketId,
    limit: i64,
) -> Result<Newest<TransitionRow>, sqlx::Error> {
    let rows: Vec<Counted<TransitionRow>> = sqlx::query_as(
        "SELECT from_state, to_state, actor, action, note, at, count(*) OVER () AS total
           FROM ticket_transitions WHERE ticket_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id.0)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Newest::of(
        rows.into_iter().map(|c| (c.row, c.total)).collect(),
    ))
}
