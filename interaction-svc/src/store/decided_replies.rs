//! The passive reply decided for each citizen's callback (`decided_replies`), kept
//! for a reply the gateway did not get in time (`events::missed`): sent once through
//! the customer-service API, `decided` → `sending` → `sent` | `failed`; a send WeChat
//! did not take goes back to `decided` and is counted (`send_failures`).

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::{PgPool, Postgres, Transaction};

/// One callback's decided reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub event_id: String,
    pub account: AccountId,
    pub openid: OpenId,
    /// The encoded `events.v1.PassiveReply`.
    pub reply: Vec<u8>,
}

/// Records a batch's decided replies in its transaction, one statement for all.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    decided: &[Decided],
) -> Result<(), sqlx::Error> {
    if decided.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = decided.iter().map(|d| d.event_id.as_str()).collect();
    let accounts: Vec<&str> = decided.iter().map(|d| d.account.as_str()).collect();
    let openids: Vec<&str> = decided.iter().map(|d| d.openid.as_str()).collect();
    let replies: Vec<&[u8]> = decided.iter().map(|d| d.reply.as_slice()).collect();
    sqlx::query(
        "INSERT INTO decided_replies (event_id, account, openid, reply)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&accounts)
    .bind(&openids)
    .bind(&replies)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a missed reply's callback left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Its reply, now `sending`: this caller alone sends it.
    Reply(Decided),
    /// Sent or failed: nothing to do.
    Handled,
    /// Being sent by another delivery of the marker (or a replica that stopped while
    /// sending it): ask again later, as WeChat may not take it and it be handed back.
    BeingSent,
    /// The callback was applied and decided no reply.
    NoReply,
    /// The callback is not applied yet: ask again later.
    NotApplied,
}

/// Takes callback `event_id`'s decided reply for sending (`decided` → `sending`,
/// committed before WeChat is called), or says why there is none to send.
pub async fn claim(db: &PgPool, event_id: &str) -> Result<Claimed, sqlx::Error> {
    // One statement, so the claim and the checks see one snapshot: as two, a callback
    // applied between them left a `decided` reply the claim had not seen and the
    // check then found, taken for one already handled, and never sent.
    #[derive(sqlx::FromRow)]
    struct Looked {
        account: Option<AccountId>,
        openid: Option<OpenId>,
        reply: Option<Vec<u8>>,
        delivery: Option<String>,
        applied: bool,
    }
    let looked: Looked = sqlx::query_as(
        "WITH claimed AS (
             UPDATE decided_replies SET delivery = 'sending', sending_since = now()
              WHERE event_id = $1 AND delivery = 'decided'
             RETURNING account, openid, reply)
         SELECT claimed.account, claimed.openid, claimed.reply,
                (SELECT delivery FROM decided_replies WHERE event_id = $1) AS delivery,
                EXISTS (SELECT 1 FROM processed_events WHERE event_id = $1) AS applied
           FROM (SELECT 1) AS one LEFT JOIN claimed ON true",
    )
    .bind(event_id)
    .fetch_one(db)
    .await?;
    if let (Some(account), Some(openid), Some(reply)) =
        (looked.account, looked.openid, looked.reply)
    {
        return Ok(Claimed::Reply(Decided {
            event_id: event_id.to_owned(),
            account,
            openid,
            reply,
        }));
    }
    // `delivery` as the statement's snapshot saw it: `decided` there means another
    // claim took it meanwhile (this one waited for it and found it `sending`).
    Ok(match (looked.delivery.as_deref(), looked.applied) {
        (Some("sending" | "decided"), _) => Claimed::BeingSent,
        (Some(_), _) => Claimed::Handled,
        (None, true) => Claimed::NoReply,
        (None, false) => Claimed::NotApplied,
    })
}

/// Records how a `sending` reply left: `sent` or `failed` (never sent again).
pub async fn settle(db: &PgPool, event_id: &str, delivery: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE decided_replies SET delivery = $2, sending_since = NULL
          WHERE event_id = $1 AND delivery = 'sending'",
    )
    .bind(event_id)
    .bind(delivery)
    .execute(db)
    .await?;
    Ok(())
}

/// Hands a `sending` reply WeChat did not take (busy, unreachable) back, for the
/// marker's redelivery to send, and counts the failed send in its row: every
/// replica's consumer decides from that count whether to try again. Returns the
/// reply's failed sends so far, or `None` if it was no longer `sending` (the sweeper
/// gave it up, or it was deleted).
pub async fn release(db: &PgPool, event_id: &str) -> Result<Option<u32>, sqlx::Error> {
    let failures: Option<i32> = sqlx::query_scalar(
        "UPDATE decided_replies
            SET delivery = 'decided', sending_since = NULL, send_failures = send_failures + 1
          WHERE event_id = $1 AND delivery = 'sending'
         RETURNING send_failures",
    )
    .bind(event_id)
    .fetch_optional(db)
    .await?;
    Ok(failures.map(|failures| u32::try_from(failures).unwrap_or(0)))
}

/// Gives up the replies left `sending` since before `before`: the replica sending
/// them stopped between committing `sending` and recording WeChat's answer, so the
/// citizen may have them. Marked `failed`, never sent again (a reply twice is worse
/// than one lost). Returns how many.
pub async fn fail_stale(db: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE decided_replies SET delivery = 'failed', sending_since = NULL
          WHERE delivery = 'sending' AND sending_since < $1",
    )
    .bind(before)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` replies decided before `before`, in one statement of its own
/// (the sweeper repeats it while batches come back full, `jobs::sweeper::PRUNE_BATCH`).
/// Returns how many.
pub async fn prune(db: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM decided_replies WHERE event_id IN (
             SELECT event_id FROM decided_replies WHERE decided_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
