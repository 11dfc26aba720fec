//! Removing citizens' data: by age (the sweeper, `jobs::sweeper::retain`) and on a
//! citizen's request (`app::erasure`). The rule is `domain::retention`'s.
//!
//! A ticket is anonymised, not deleted: its skeleton (account, department, category,
//! state, the deadlines and overdue marks, when it was acknowledged, answered and
//! closed, the rating, the assignee, and in its thread and history who did what and
//! when) is what the department's queue and the statistics count. What goes is every
//! piece of text and every identifier of the citizen: the openid (replaced by
//! [`ERASED_OPENID`]), the summary, the callbacks' event ids (they hold the openid),
//! the body of every message both ways (answers address the citizen: "王女士您好，您
//! 反映的…"), the author of the citizen's messages (their openid) and every note of
//! the history (agents quote citizens; the first note may quote the directory
//! question). Answers still held for the citizen are deleted: nobody can receive them.

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

use crate::domain::TicketId;
pub use crate::domain::retention::ERASED_OPENID;

/// How many rows a removal changed, table by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub tickets: u64,
    pub messages: u64,
    pub transitions: u64,
    pub followers: u64,
    pub follower_tags: u64,
    pub directory_answers: u64,
    /// The passive replies decided for the citizen's callbacks (texts addressed to
    /// them, kept a day for a missed reply).
    pub decided_replies: u64,
}

/// Anonymises up to `limit` tickets closed before `closed_before` whose citizen data
/// is still there, in one transaction. Each is locked (`FOR UPDATE SKIP LOCKED`) so
/// replicas sweeping together take different tickets, and re-checked after the lock,
/// so a ticket reopened meanwhile is left alone.
#[tracing::instrument(skip(db))]
pub async fn anonymise_closed_tickets(
    db: &PgPool,
    closed_before: DateTime<Utc>,
    limit: i64,
) -> Result<Removed, sqlx::Error> {
    let mut tx = db.begin().await?;
    let locked: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM tickets
          WHERE state = 'closed' AND erased_at IS NULL AND closed_at < $1
          ORDER BY closed_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(closed_before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if locked.is_empty() {
        return Ok(Removed::default());
    }
    // Two statements, as `tickets::citizen::lock_overdue`: the lock, then the check.
    let still: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM tickets
          WHERE id = ANY($1) AND state = 'closed' AND erased_at IS NULL AND closed_at < $2",
    )
    .bind(&locked)
    .bind(closed_before)
    .fetch_all(&mut *tx)
    .await?;
    let removed = erase_tickets(&mut tx, &still).await?;
    tx.commit().await?;
    Ok(removed)
}

/// Removes the citizen data of tickets `ids`, locked by the caller's transaction.
async fn erase_tickets(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[uuid::Uuid],
) -> Result<Removed, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Removed::default());
    }
    let held =
        sqlx::query("DELETE FROM ticket_messages WHERE ticket_id = ANY($1) AND delivery = 'held'")
            .bind(ids)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    let messages = sqlx::query(
        "UPDATE ticket_messages
            SET body = '', author = CASE WHEN direction = 'inbound' THEN $2 ELSE author END
          WHERE ticket_id = ANY($1)",
    )
    .bind(ids)
    .bind(ERASED_OPENID)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let transitions = sqlx::query(
        "UPDATE ticket_transitions SET note = '' WHERE ticket_id = ANY($1) AND note <> ''",
    )
    .bind(ids)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let tickets = sqlx::query(
        "UPDATE tickets
            SET openid = $2, summary = '', opened_event_id = NULL, rated_event_id = NULL,
                awaiting_citizen = false, erased_at = now()
          WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(ERASED_OPENID)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Removed {
        tickets,
        messages: messages + held,
        transitions,
        ..Removed::default()
    })
}

/// Deletes up to `limit` followers who unfollowed before `unfollowed_before` (their
/// tags follow by cascade), except a citizen whose ticket is still being handled:
/// the department may still answer it. Locked with `SKIP LOCKED`, so replicas take
/// different rows and a follow being recorded waits or wins. Returns how many
/// followers were deleted.
#[tracing::instrument(skip(db))]
pub async fn prune_unfollowed(
    db: &PgPool,
    unfollowed_before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let locked: Vec<(String, String)> = sqlx::query_as(
        "SELECT account, openid FROM followers f
          WHERE NOT subscribed AND unsubscribed_at < $1
            AND NOT EXISTS (SELECT 1 FROM tickets t
                             WHERE t.account = f.account AND t.openid = f.openid
                               AND t.state <> 'closed')
          ORDER BY unsubscribed_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(unfollowed_before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if locked.is_empty() {
        return Ok(0);
    }
    let (accounts, openids): (Vec<String>, Vec<String>) = locked.into_iter().unzip();
    let deleted = sqlx::query(
        "DELETE FROM followers f
          USING unnest($1::text[], $2::text[]) AS l(account, openid)
          WHERE f.account = l.account AND f.openid = l.openid
            AND NOT f.subscribed AND f.unsubscribed_at < $3",
    )
    .bind(&accounts)
    .bind(&openids)
    .bind(unfollowed_before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

/// Deletes up to `limit` create request ids recorded before `before` (idempotent,
/// so every replica may run it). Returns how many were deleted.
#[tracing::instrument(skip(db))]
pub async fn prune_rule_requests(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM rule_requests
          WHERE (account, request_id) IN (SELECT account, request_id FROM rule_requests
                                           WHERE created_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Who asked for an erasure and why, for its audit row.
#[derive(Debug, Clone, Copy)]
pub struct ErasureRequest<'a> {
    pub account: &'a AccountId,
    pub openid: &'a OpenId,
    /// The caller's department.
    pub requested_by: &'a str,
    /// The caller's API key fingerprint.
    pub key_id: &'a str,
    /// The citizen's request as the caller records it (a case number, say).
    pub reason: &'a str,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// Done and audited: the rows changed.
    Done {
        audit_id: uuid::Uuid,
        removed: Removed,
    },
    /// Nothing changed: these tickets of the citizen are still being handled.
    OpenTickets(Vec<TicketId>),
}

/// Erases one citizen's data on `account` in one transaction: their follower row and
/// tags, their directory answer, the replies decided for their callbacks (texts
/// addressed to them), and the citizen data of every ticket of theirs, as
/// the retention does by age; then records the audit row. Refused, changing nothing,
/// while a ticket of theirs is not closed (the department closes it first, with a
/// note: erasing it would drop a request still owed an answer).
#[tracing::instrument(skip_all, fields(account = %request.account))]
pub async fn erase_citizen(
    db: &PgPool,
    request: &ErasureRequest<'_>,
) -> Result<Erasure, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The follower first, as the inbound consumer locks it (`followers::touch`)
    // before the citizen's tickets: the other order could deadlock with a rating.
    sqlx::query("SELECT 1 FROM followers WHERE account = $1 AND openid = $2 FOR UPDATE")
        .bind(request.account)
        .bind(request.openid)
        .fetch_optional(&mut *tx)
        .await?;
    // Every ticket of the citizen, locked: a close or reopen waits for the erasure.
    let tickets: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT id, state FROM tickets WHERE account = $1 AND openid = $2
          ORDER BY opened_at, id FOR UPDATE",
    )
    .bind(request.account)
    .bind(request.openid)
    .fetch_all(&mut *tx)
    .await?;
    let open: Vec<TicketId> = tickets
        .iter()
        .filter(|(_, state)| state != "closed")
        .map(|(id, _)| TicketId(*id))
        .collect();
    if !open.is_empty() {
        return Ok(Erasure::OpenTickets(open));
    }
    let ids: Vec<uuid::Uuid> = tickets.into_iter().map(|(id, _)| id).collect();
    let mut removed = erase_tickets(&mut tx, &ids).await?;
    removed.follower_tags =
        sqlx::query("DELETE FROM follower_tags WHERE account = $1 AND openid = $2")
            .bind(request.account)
            .bind(request.openid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    removed.followers = sqlx::query("DELETE FROM followers WHERE account = $1 AND openid = $2")
        .bind(request.account)
        .bind(request.openid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    removed.directory_answers =
        sqlx::query("DELETE FROM directory_answers WHERE account = $1 AND openid = $2")
            .bind(request.account)
            .bind(request.openid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    // A reply still `sending` goes too: its delivery then settles no row, and the
    // citizen asked for their data to go, not for one more message.
    removed.decided_replies =
        sqlx::query("DELETE FROM decided_replies WHERE account = $1 AND openid = $2")
            .bind(request.account)
            .bind(request.openid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let audit_id = uuid::Uuid::now_v7();
    let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO citizen_erasures
                (id, account, citizen_sha256, requested_by, key_id, reason, followers,
                 follower_tags, directory_answers, tickets, messages, transitions,
                 decided_replies)
         VALUES ($1, $2, encode(sha256(convert_to($2 || ':' || $3, 'UTF8')), 'hex'), $4, $5, $6,
                 $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(audit_id)
    .bind(request.account)
    .bind(request.openid)
    .bind(request.requested_by)
    .bind(request.key_id)
    .bind(request.reason)
    .bind(count(removed.followers))
    .bind(count(removed.follower_tags))
    .bind(count(removed.directory_answers))
    .bind(count(removed.tickets))
    .bind(count(removed.messages))
    .bind(count(removed.transitions))
    .bind(count(removed.decided_replies))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Erasure::Done { audit_id, removed })
}
