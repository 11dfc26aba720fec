//! A ticket's conversation (`ticket_messages`): what the citizen wrote and what the
//! department answered.

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::TicketId;

/// Appends a citizen's message to a ticket's thread.
pub async fn insert_inbound(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
    openid: &OpenId,
    msg_type: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<uuid::Uuid, sqlx::Error> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, at, delivery)
         VALUES ($1, $2, 'inbound', $3, $4, $5, $6, 'received')",
    )
    .bind(id)
    .bind(ticket.0)
    .bind(openid)
    .bind(msg_type)
    .bind(body)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------
// Outbound messages. WeChat is never called inside a transaction: a message is
// first committed as `sending`, then handed to WeChat, then settled (sent or
// held) or discarded in a second transaction. A `sending` message left behind by
// a stopped sender is given up by `fail_stale`.

/// An outbound message being (or about to be) handed to WeChat.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub id: uuid::Uuid,
    pub ticket_id: uuid::Uuid,
    pub body: String,
}

/// Records an outbound message as `sending`, to be settled after the WeChat call;
/// `request_id` is the caller's id for it, if it gave one. Notes the citizen's last
/// interaction as it stands (`held_after`): if the message ends up held, a later one
/// of theirs may have been flushed before it was, and the retry then takes it
/// (`lease_due_retries`).
pub async fn insert_sending(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
    author: &str,
    text: &str,
    request_id: Option<&str>,
) -> Result<Outgoing, sqlx::Error> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ticket_messages
             (id, ticket_id, direction, author, msg_type, body, delivery, sending_since,
              request_id, held_after)
         SELECT $1, $2, 'outbound', $3, 'text', $4, 'sending', now(), $5,
                (SELECT f.last_interaction_at FROM tickets t
                   JOIN followers f ON f.account = t.account AND f.openid = t.openid
                  WHERE t.id = $2)",
    )
    .bind(id)
    .bind(ticket.0)
    .bind(author)
    .bind(text)
    .bind(request_id)
    .execute(&mut **tx)
    .await?;
    Ok(Outgoing {
        id,
        ticket_id: ticket.0,
        body: text.to_owned(),
    })
}

/// The answer a caller's request `request_id` recorded on `ticket`, if it is still
/// in the thread (one WeChat refused was removed): its text and its delivery.
pub async fn answer_of_request(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
    request_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT body, delivery FROM ticket_messages WHERE ticket_id = $1 AND request_id = $2",
    )
    .bind(ticket.0)
    .bind(request_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Whether a message to `ticket` is being sent now (answers to one ticket go out
/// one after the other, in the order they were recorded).
pub async fn is_sending(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ticket_messages
                         WHERE ticket_id = $1 AND delivery = 'sending')",
    )
    .bind(ticket.0)
    .fetch_one(&mut **tx)
    .await
}

/// Records how a `sending` message left: `sent` or `held` (`delivery` is the stored
/// name). Returns false if it was no longer `sending` (given up by `fail_stale`).
pub async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    message: uuid::Uuid,
    delivery: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE ticket_messages
            SET delivery = $2, sending_since = NULL,
                held_at = CASE WHEN $2 = 'held' THEN now() END
          WHERE id = $1 AND delivery = 'sending'",
    )
    .bind(message)
    .bind(delivery)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks ticket `ticket` as awaiting its citizen: an answer held for them goes out
/// with their next message only from a ticket so marked.
pub async fn await_citizen(
    tx: &mut Transaction<'_, Postgres>,
    ticket: TicketId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tickets SET awaiting_citizen = true WHERE id = $1")
        .bind(ticket.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes a `sending` message WeChat did not take: nothing of it stays recorded,
/// so the department can simply try again.
pub async fn discard(db: &PgPool, message: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ticket_messages WHERE id = $1 AND delivery = 'sending'")
        .bind(message)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes `sending` rating question `message`, which WeChat did not take, instead
/// of holding it: its ticket was reopened meanwhile, and the reopen withdrew what
/// was held of the question (`lifecycle::change`) but could not see it `sending`.
pub async fn withdraw(
    tx: &mut Transaction<'_, Postgres>,
    message: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ticket_messages WHERE id = $1 AND delivery = 'sending'")
        .bind(message)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes every message held for citizen `openid` of `account` (held → sending),
/// oldest first. A concurrent flush for the same citizen finds none left held, so
/// none is sent twice. Notes the citizen's last interaction as `held_after`, so one
/// the flush keeps held is retried after their next message, not every pass.
pub async fn claim_held(
    db: &PgPool,
    account: &AccountId,
    openid: &OpenId,
) -> Result<Vec<Outgoing>, sqlx::Error> {
    let mut claimed: Vec<(uuid::Uuid, uuid::Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE ticket_messages m SET delivery = 'sending', sending_since = now(),
                held_after = f.last_interaction_at
           FROM tickets t
           LEFT JOIN followers f ON f.account = t.account AND f.openid = t.openid
          WHERE t.id = m.ticket_id AND t.account = $1 AND t.openid = $2
            AND m.delivery = 'held'
         RETURNING m.id, m.ticket_id, m.body, m.at",
    )
    .bind(account)
    .bind(openid)
    .fetch_all(db)
    .await?;
    claimed.sort_by_key(|(id, _, _, at)| (*at, *id));
    Ok(claimed
        .into_iter()
        .map(|(id, ticket_id, body, _)| Outgoing {
            id,
            ticket_id,
            body,
        })
        .collect())
}

/// What becomes of the messages a flush kept held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// They wait for the citizen's next message (the window closed, or WeChat
    /// refused them for a reason retrying will not fix).
    UntilCitizenWrites,
    /// WeChat failed transiently (busy, rate limit, unreachable): the held-answer
    /// retry (`jobs::held_retry`) tries again after a backoff while the window is open.
    /// `backoff` is the first wait; it doubles with each failure.
    Retry { backoff: chrono::TimeDelta },
    /// WeChat refused them until a known time (the daily quota, 45009, resets at
    /// midnight Beijing time): the held-answer retry tries again from `at` while the
    /// window is open.
    RetryAt { at: DateTime<Utc> },
}

/// The longest wait between two retries of a held answer: the first waits the
/// configured backoff (`HELD_RETRY_BACKOFF`), each next one twice as long, since
/// WeChat's busy spells and per-minute quotas pass within minutes and the window
/// lasts 48 hours.
pub const RETRY_BACKOFF_MAX: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// How long a retry pass owns the citizens it picked: another replica's pass leaves
/// them alone meanwhile, and a pass that stopped half-way (the drain, a crash)
/// hands them back after it.
pub const RETRY_LEASE_MINUTES: i32 = 5;

/// Picks up to `limit` held messages whose citizen's window (`window`, from their
/// last interaction) is still open and that are due at `now`: a retry after a
/// transient failure (`retry_at` passed), or one waiting for the citizen who wrote
/// after it was held (`held_at`), whose flush was lost (the service stopped before
/// it ran, or it failed and the message was redelivered as a duplicate, which asks
/// for none). Pushes their retry time a lease ahead so other replicas skip them, and
/// returns their citizens, each once. The flush itself claims the messages
/// (`claim_held`), so a citizen picked twice is still sent each answer once, and a
/// flush that keeps one held moves its `held_after` on (not picked again until the
/// citizen writes again).
///
/// "Wrote after it was held" compares WeChat's clock with WeChat's: the citizen's
/// last interaction now against the one noted when the answer was taken for sending
/// (`held_after`), not against `held_at` (the database's now()): an answer held
/// behind another while the flush of a message sent just before was in flight was
/// held after that message's CreateTime, yet no flush saw it. Rows without
/// `held_after` (taken before migration 0019) keep `held_at`'s rule.
pub async fn lease_due_retries(
    db: &PgPool,
    now: DateTime<Utc>,
    window: chrono::TimeDelta,
    limit: i64,
) -> Result<Vec<(AccountId, OpenId)>, sqlx::Error> {
    let mut citizens: Vec<(AccountId, OpenId)> = sqlx::query_as(
        "WITH due AS (
             SELECT m.id FROM ticket_messages m
               JOIN tickets t ON t.id = m.ticket_id
               JOIN followers f ON f.account = t.account AND f.openid = t.openid
              WHERE m.delivery = 'held'
                AND (m.retry_at <= $1
                     OR (m.retry_at IS NULL
                         AND f.last_interaction_at
                             > COALESCE(m.held_after, m.held_at, m.at)))
                AND f.last_interaction_at > $1 - $2
              ORDER BY m.retry_at NULLS FIRST
              LIMIT $3
              FOR UPDATE OF m SKIP LOCKED)
         UPDATE ticket_messages m SET retry_at = $1 + make_interval(mins => $4)
           FROM due, tickets t
          WHERE m.id = due.id AND t.id = m.ticket_id
         RETURNING t.account, t.openid",
    )
    .bind(now)
    .bind(window)
    .bind(limit)
    .bind(RETRY_LEASE_MINUTES)
    .fetch_all(db)
    .await?;
    citizens.sort();
    citizens.dedup();
    Ok(citizens)
}

/// Settles a flush of held messages: `sent` are marked sent (with a history entry
/// per ticket), `kept` go back to held (to be retried or not, as `then` says) and
/// their tickets await the citizen again, and a ticket with nothing held any more
/// stops awaiting the citizen. A kept rating
/// question whose ticket was reopened while the flush had it is withdrawn instead:
/// the reopen could not see it `sending`, and held it would go out with the
/// citizen's next message about a ticket being worked on again.
pub async fn settle_flush(
    tx: &mut Transaction<'_, Postgres>,
    sent: &[uuid::Uuid],
    kept: &[uuid::Uuid],
    then: Kept,
) -> Result<(), sqlx::Error> {
    // The tickets are locked (in id order) before the state is read: a reopen
    // withdraws held questions under the same lock, so it comes wholly before this
    // or after it.
    sqlx::query(
        "WITH locked AS (
             SELECT id, state FROM tickets
              WHERE id IN (SELECT ticket_id FROM ticket_messages
                            WHERE id = ANY($1) AND author = $2)
              ORDER BY id FOR UPDATE)
         DELETE FROM ticket_messages m USING locked
          WHERE m.ticket_id = locked.id AND locked.state <> 'closed'
            AND m.id = ANY($1) AND m.author = $2 AND m.delivery = 'sending'",
    )
    .bind(kept)
    .bind(super::tickets::SYSTEM_ACTOR)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE ticket_messages SET delivery = 'sent', sending_since = NULL, retry_at = NULL
          WHERE id = ANY($1) AND delivery = 'sending'",
    )
    .bind(sent)
    .execute(&mut **tx)
    .await?;
    // Backoff after this flush: first, first·2, first·4, … up to the maximum.
    let (backoff, at) = match then {
        Kept::Retry { backoff } => (Some(backoff), None),
        Kept::RetryAt { at } => (None, Some(at)),
        Kept::UntilCitizenWrites => (None, None),
    };
    sqlx::query(
        "UPDATE ticket_messages
            SET delivery = 'held', sending_since = NULL, held_at = now(),
                retry_at = CASE WHEN $4::timestamptz IS NOT NULL THEN $4
                                WHEN $2 IS NOT NULL
                                THEN now() + LEAST($3, $2 * power(2, LEAST(retries, 16))) END,
                retries = CASE WHEN $2 IS NULL AND $4::timestamptz IS NULL THEN 0
                               ELSE retries + 1 END
          WHERE id = ANY($1) AND delivery = 'sending'",
    )
    .bind(kept)
    .bind(backoff)
    .bind(RETRY_BACKOFF_MAX)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    // Held again, they hold the ticket's next answers behind them: a reopen while
    // the flush had them `sending` saw nothing held and cleared the flag, and an
    // answer sent directly would then overtake them.
    sqlx::query(
        "UPDATE tickets t SET awaiting_citizen = true
          WHERE t.id IN (SELECT ticket_id FROM ticket_messages
                          WHERE id = ANY($1) AND delivery = 'held')
            AND NOT t.awaiting_citizen",
    )
    .bind(kept)
    .execute(&mut **tx)
    .await?;
    // A rating question held until now is asked now.
    sqlx::query(
        "UPDATE tickets t SET rating_requested_at = now()
          WHERE t.state = 'closed'
            AND t.id IN (SELECT ticket_id FROM ticket_messages
                          WHERE id = ANY($1) AND author = $2)",
    )
    .bind(sent)
    .bind(super::tickets::SYSTEM_ACTOR)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE tickets t SET awaiting_citizen = false
          WHERE t.id IN (SELECT ticket_id FROM ticket_messages WHERE id = ANY($1))
            AND NOT EXISTS (SELECT 1 FROM ticket_messages m
                             WHERE m.ticket_id = t.id AND m.delivery = 'held')",
    )
    .bind(sent)
    .execute(&mut **tx)
    .await?;
    // The history says when a held answer finally reached the citizen; the state
    // does not change.
    sqlx::query(
        "INSERT INTO ticket_transitions (ticket_id, from_state, to_state, actor, action, note)
         SELECT t.id, t.state, t.state, 'system', 'held_answer_sent',
                count(*)::text || ' held message(s) sent after the citizen wrote again'
           FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
          WHERE m.id = ANY($1)
          GROUP BY t.id, t.state",
    )
    .bind(sent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives up every message `sending` since before `before`: its sender stopped
/// between handing it to WeChat and recording the outcome, so whether the citizen
/// got it is unknown. It is marked `failed` (never sent again: a citizen must not
/// get an answer twice) and the ticket's history says so, for the department to
/// check or answer again. Returns how many messages were given up.
pub async fn fail_stale(
    tx: &mut Transaction<'_, Postgres>,
    before: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let failed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE ticket_messages SET delivery = 'failed', sending_since = NULL
          WHERE delivery = 'sending' AND sending_since < $1
         RETURNING id",
    )
    .bind(before)
    .fetch_all(&mut **tx)
    .await?;
    record_delivery_unknown(
        tx,
        &failed,
        "the service stopped while sending; not retried",
    )
    .await?;
    Ok(failed.len())
}

/// Gives up `sending` message `message` after WeChat's answer to it was lost (a
/// timeout, a proxy's 5xx): the citizen may have it, so it is marked `failed`, never
/// sent again, and the ticket's history says so. Returns false if it was no longer
/// `sending`.
pub async fn fail_unknown(
    tx: &mut Transaction<'_, Postgres>,
    message: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    let failed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE ticket_messages SET delivery = 'failed', sending_since = NULL
          WHERE id = $1 AND delivery = 'sending'
         RETURNING id",
    )
    .bind(message)
    .fetch_all(&mut **tx)
    .await?;
    // Reached from a lost answer, a drain cut off mid-call and WeChat's "system busy"
    // alike; the caller's error says which.
    record_delivery_unknown(
        tx,
        &failed,
        "WeChat did not confirm it (its answer lost, or \"system busy\" after it may have \
         sent); not sent again",
    )
    .await?;
    // A rating question that may have reached the citizen counts as asked.
    sqlx::query(
        "UPDATE tickets t SET rating_requested_at = COALESCE(t.rating_requested_at, now())
          WHERE t.state = 'closed'
            AND t.id IN (SELECT ticket_id FROM ticket_messages
                          WHERE id = ANY($1) AND author = $2)",
    )
    .bind(&failed)
    .bind(super::tickets::SYSTEM_ACTOR)
    .execute(&mut **tx)
    .await?;
    Ok(!failed.is_empty())
}

/// The history entry (and the `awaiting_citizen` flag) after `failed` messages were
/// given up with their delivery unknown.
async fn record_delivery_unknown(
    tx: &mut Transaction<'_, Postgres>,
    failed: &[uuid::Uuid],
    why: &str,
) -> Result<(), sqlx::Error> {
    if failed.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE tickets t SET awaiting_citizen = EXISTS (
                SELECT 1 FROM ticket_messages m WHERE m.ticket_id = t.id AND m.delivery = 'held')
          WHERE t.id IN (SELECT ticket_id FROM ticket_messages WHERE id = ANY($1))",
    )
    .bind(failed)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO ticket_transitions (ticket_id, from_state, to_state, actor, action, note)
         SELECT t.id, t.state, t.state, 'system', 'delivery_unknown',
                count(*)::text || ' message(s) may not have reached the citizen: ' || $2
           FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
          WHERE m.id = ANY($1)
          GROUP BY t.id, t.state",
    )
    .bind(failed)
    .bind(why)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
