//! What citizens and the clock need to find: the citizen's active ticket (opening
//! one if there is none), the ticket waiting for their rating, and the tickets
//! whose deadline passed. The change itself then goes through
//! [`super::lifecycle::change`].

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::{PgExecutor, Postgres, Transaction};

use super::{SYSTEM_ACTOR, TICKET_COLUMNS, TicketRow};
use crate::domain::rules::RATING_ANSWER_WINDOW;
use crate::domain::{Deadline, Deadlines, TicketId};

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub account: &'a AccountId,
    pub openid: &'a OpenId,
    pub department: &'a str,
    pub category: &'a str,
    pub summary: &'a str,
    pub opened_at: DateTime<Utc>,
    pub deadlines: Deadlines,
    /// The callback that opens it.
    pub event_id: &'a str,
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
                                  opened_at, acknowledge_due_at, resolve_due_at, opened_event_id)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10)
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
        .bind(new.event_id)
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
    account: &AccountId,
    openid: &OpenId,
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

/// The citizen's ticket that is not closed, read without a lock (the reply path:
/// a message from this citizen joins it).
pub async fn active(
    db: impl PgExecutor<'_>,
    account: &AccountId,
    openid: &OpenId,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets
          WHERE account = $1 AND openid = $2 AND state <> 'closed'"
    ))
    .bind(account)
    .bind(openid)
    .fetch_optional(db)
    .await
}

/// The ticket waiting for the rating a digit the citizen sent at `at` would give: the
/// one last asked to be rated, if it is closed, has no rating yet (or got it from
/// `event_id` itself: the reply path may look after the consumer has recorded it),
/// and was asked after the citizen's newest ticket opened or was reopened (an older
/// ticket reopened is worked on again, and its agent's questions, "回复1或2", are
/// answered with digits too). A question held while the citizen was away goes out
/// after the message that brought them back, which may have opened a ticket of its
/// own. Those two times are the database's (the opening's history entry): a
/// message's CreateTime is WeChat's clock.
///
/// A question on its way to WeChat (`sending`, by [`SYSTEM_ACTOR`]) counts as asked
/// since it was committed so: `rating_requested_at` is only written once WeChat has
/// answered, and a citizen quick to reply has the question before that, so their
/// digit must not open a ticket "5". A question held, not yet sent, does not count.
///
/// A question expires: `at` must be within [`RATING_ANSWER_WINDOW`] of it, and no
/// unfollow may be recorded since (a re-follow clears `unsubscribed_at`, but its own
/// `subscribed_at` after the question shows the unfollow before it). These compare
/// the two clocks; a skew of seconds does not matter against hours and an unfollow.
pub async fn awaiting_rating(
    db: impl PgExecutor<'_>,
    account: &AccountId,
    openid: &OpenId,
    event_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<TicketId>, sqlx::Error> {
    let id: Option<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT id FROM (
             SELECT id, state, rating, rated_event_id, asked_at FROM (
                 SELECT t.id, t.state, t.rating, t.rated_event_id,
                        COALESCE(t.rating_requested_at,
                                 CASE WHEN t.state = 'closed' THEN (
                                     SELECT min(m.sending_since) FROM ticket_messages m
                                      WHERE m.ticket_id = t.id AND m.direction = 'outbound'
                                        AND m.author = $6 AND m.delivery = 'sending')
                                 END) AS asked_at
                   FROM tickets t
                  WHERE t.account = $1 AND t.openid = $2) citizen
              WHERE asked_at IS NOT NULL
              ORDER BY asked_at DESC, id DESC LIMIT 1) asked
          WHERE state = 'closed' AND (rating IS NULL OR rated_event_id = $3)
            AND asked_at >= COALESCE(
                (SELECT max(tr.at) FROM ticket_transitions tr
                   JOIN tickets o ON o.id = tr.ticket_id
                  WHERE o.account = $1 AND o.openid = $2
                    AND tr.action IN ('opened', 'reopened')),
                '-infinity')
            AND asked_at + $5 >= $4
            AND NOT EXISTS (
                SELECT 1 FROM followers f
                 WHERE f.account = $1 AND f.openid = $2
                   AND (f.unsubscribed_at > asked.asked_at
                        OR f.subscribed_at > asked.asked_at))",
    )
    .bind(account)
    .bind(openid)
    .bind(event_id)
    .bind(at)
    .bind(RATING_ANSWER_WINDOW)
    .bind(SYSTEM_ACTOR)
    .fetch_optional(db)
    .await?;
    Ok(id.map(|(id,)| TicketId(id)))
}

/// Whether citizen `openid` of `account` has something held for them (a ticket of
/// theirs awaits them): [`with_held_answers`] for one citizen, outside a batch.
pub async fn awaits_citizen(
    db: impl PgExecutor<'_>,
    account: &AccountId,
    openid: &OpenId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tickets
                         WHERE account = $1 AND openid = $2 AND awaiting_citizen)",
    )
    .bind(account)
    .bind(openid)
    .fetch_one(db)
    .await
}

/// Which of `citizens` have answers held for them (they were outside the 48-hour
/// window when the department replied), in one statement.
pub async fn with_held_answers(
    tx: &mut Transaction<'_, Postgres>,
    citizens: &[(&AccountId, &OpenId)],
) -> Result<HashSet<(AccountId, OpenId)>, sqlx::Error> {
    if citizens.is_empty() {
        return Ok(HashSet::new());
    }
    let accounts: Vec<&str> = citizens.iter().map(|(a, _)| a.as_str()).collect();
    let openids: Vec<&str> = citizens.iter().map(|(_, o)| o.as_str()).collect();
    let held: Vec<(AccountId, OpenId)> = sqlx::query_as(
        "SELECT DISTINCT t.account, t.openid
           FROM tickets t
           JOIN unnest($1::text[], $2::text[]) AS c(account, openid)
             ON t.account = c.account AND t.openid = c.openid
          WHERE t.awaiting_citizen",
    )
    .bind(accounts)
    .bind(openids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(held.into_iter().collect())
}

/// Locks up to `limit` tickets whose `deadline` passed before `now` unmarked, and
/// returns them as they are now. Each ticket is taken once: the rows are locked
/// with `SKIP LOCKED` (a replica sweeping at the same time takes other rows), and
/// then re-read with the condition, so a row another replica marked in the
/// meantime is not returned again.
pub async fn lock_overdue(
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
    // Two statements, not one with a locking sub-select: there the outer statement's
    // snapshot can predate a row the sub-select locked, and its re-check may drop a
    // row that stays locked, leaving it unmarked.
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
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ANY($2) AND {condition}
          ORDER BY {due}"
    ))
    .bind(now)
    .bind(&locked)
    .fetch_all(&mut **tx)
    .await
}

/// The history action of a warning that the citizen's window is closing.
pub const WINDOW_CLOSING: &str = "window_closing";

/// Notes, in the history of every ticket still waiting for its first answer of the
/// round (open, reopened, acknowledged; nothing held) whose citizen's window closes
/// within `warning` of `now`, that an answer after `closes` (written in office time,
/// `office`) is held until the citizen writes again; once per window (a note since
/// the last interaction counts). At most `limit` tickets per call, each locked
/// (`FOR UPDATE SKIP LOCKED`) so replicas sweeping together note it once. Returns the
/// tickets noted.
pub async fn note_closing_windows(
    tx: &mut Transaction<'_, Postgres>,
    now: DateTime<Utc>,
    window: chrono::TimeDelta,
    warning: chrono::TimeDelta,
    office: FixedOffset,
    limit: i64,
) -> Result<Vec<(TicketId, String, DateTime<Utc>)>, sqlx::Error> {
    const CLOSING: &str = "FROM tickets t
               JOIN followers f ON f.account = t.account AND f.openid = t.openid
              WHERE t.state IN ('open', 'reopened', 'acknowledged')
                AND NOT t.awaiting_citizen
                AND f.last_interaction_at + $2 > $1
                AND f.last_interaction_at + $2 - $3 <= $1
                AND NOT EXISTS (SELECT 1 FROM ticket_transitions h
                                 WHERE h.ticket_id = t.id AND h.action = $4
                                   AND h.at >= f.last_interaction_at)";
    // Two statements, as `lock_overdue` does: one statement's NOT EXISTS reads its
    // snapshot, so a row another replica noted and unlocked after that snapshot was
    // locked and noted again. The second statement's snapshot is taken after the
    // locks, so it sees any note committed before them.
    let locked: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
        "SELECT t.id {CLOSING} LIMIT $5 FOR UPDATE OF t SKIP LOCKED"
    ))
    .bind(now)
    .bind(window)
    .bind(warning)
    .bind(WINDOW_CLOSING)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    if locked.is_empty() {
        return Ok(Vec::new());
    }
    let noted: Vec<(uuid::Uuid, String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "WITH closing AS (
             SELECT t.id, t.state, t.department, f.last_interaction_at + $2 AS closes
               {CLOSING} AND t.id = ANY($5)),
         noted AS (
             INSERT INTO ticket_transitions
                    (ticket_id, from_state, to_state, actor, action, note, at)
             SELECT id, state, state, 'system', $4,
                    'the citizen''s 48-hour window closes at '
                        || to_char((closes AT TIME ZONE 'UTC') + $6, 'YYYY-MM-DD HH24:MI')
                        || ' (UTC' || $7 || '); an answer after it is held until they write again',
                    $1
               FROM closing
             RETURNING ticket_id)
         SELECT c.id, c.department, c.closes FROM closing c JOIN noted n ON n.ticket_id = c.id"
    ))
    .bind(now)
    .bind(window)
    .bind(warning)
    .bind(WINDOW_CLOSING)
    .bind(&locked)
    .bind(chrono::TimeDelta::seconds(i64::from(
        office.local_minus_utc(),
    )))
    .bind(office.to_string())
    .fetch_all(&mut **tx)
    .await?;
    Ok(noted
        .into_iter()
        .map(|(id, department, closes)| (TicketId(id), department, closes))
        .collect())
}
