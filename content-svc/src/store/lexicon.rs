//! The lexicon, its change trail and the mass-send ledger.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The lexicon's revision: the id of its last change (0 if never changed). Changes
/// take their ids under one lock held until they commit (see `record`), so ids
/// commit in order and a replica that has read revision n has seen every change up
/// to n.
pub async fn revision(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM lexicon_audit")
        .fetch_one(db)
        .await
}

/// Every entry: (word, category).
pub async fn entries(db: impl PgExecutor<'_>) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT word, category FROM lexicon_entries ORDER BY category, word")
        .fetch_all(db)
        .await
}

/// Inserts or recategorises an entry and records the change.
pub async fn put(
    tx: &mut Transaction<'_, Postgres>,
    word: &str,
    category: &str,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lexicon_entries (word, category, created_by) VALUES ($1, $2, $3)
         ON CONFLICT (word) DO UPDATE SET category = excluded.category",
    )
    .bind(word)
    .bind(category)
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    record(tx, "put", word, category, actor).await
}

/// Deletes an entry; returns whether it existed.
pub async fn delete(
    tx: &mut Transaction<'_, Postgres>,
    word: &str,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let category: Option<String> =
        sqlx::query_scalar("DELETE FROM lexicon_entries WHERE word = $1 RETURNING category")
            .bind(word)
            .fetch_optional(&mut **tx)
            .await?;
    match category {
        Some(category) => {
            record(tx, "delete", word, &category, actor).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Takes the lock every change holds until it commits (see `record`), so a change
/// that reads the lexicon first (for the other spellings of its word) reads it as
/// no other change can alter it before it commits.
pub async fn lock_changes(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-lexicon-changes'))")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn record(
    tx: &mut Transaction<'_, Postgres>,
    action: &str,
    word: &str,
    category: &str,
    actor: &str,
) -> Result<(), sqlx::Error> {
    // Without it, a change that took id n and committed after one that took n + 1
    // would never be seen by a replica that read revision n + 1 in between.
    lock_changes(tx).await?;
    sqlx::query(
        "INSERT INTO lexicon_audit (action, word, category, actor) VALUES ($1, $2, $3, $4)",
    )
    .bind(action)
    .bind(word)
    .bind(category)
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the lexicon has never been written (so the seed file may load).
pub async fn is_empty(db: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM lexicon_audit)")
        .fetch_one(db)
        .await
}

/// Serialises seeding between replicas starting together.
pub async fn lock_seed(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-lexicon-seed'))")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks an account's mass-send ledger for a check-then-reserve.
pub async fn lock_ledger(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-mass-ledger:' || $1))")
        .bind(account)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The account's mass sends since `since`: each reservation's, and the earlier
/// sends of its article that WeChat took before failing their jobs.
pub async fn sends_since(
    db: impl PgExecutor<'_>,
    account: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT sent_at FROM mass_send_ledger WHERE account = $1 AND sent_at >= $2
         UNION ALL
         SELECT earlier FROM mass_send_ledger, unnest(earlier_sends) AS earlier
          WHERE account = $1 AND earlier >= $2",
    )
    .bind(account)
    .bind(since)
    .fetch_all(db)
    .await
}

/// Whether the article's current send already holds a reservation (a retry of that
/// send). One of an earlier send generation is not: WeChat failed that job, and a
/// send again is a new one.
pub async fn is_reserved(
    tx: &mut Transaction<'_, Postgres>,
    article: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mass_send_ledger l JOIN articles a ON a.id = l.article_id
                         WHERE l.article_id = $1 AND l.send_generation = a.send_generation)",
    )
    .bind(article)
    .fetch_one(&mut **tx)
    .await
}

/// Reserves a mass send for the article's current send (before calling WeChat). A
/// reservation of an earlier generation moves to `earlier_sends`: WeChat counted it.
pub async fn reserve(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    article: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mass_send_ledger (article_id, account, send_generation)
         SELECT id, $2, send_generation FROM articles WHERE id = $1
         ON CONFLICT (article_id) DO UPDATE
            SET earlier_sends = mass_send_ledger.earlier_sends || mass_send_ledger.sent_at,
                sent_at = now(),
                send_generation = EXCLUDED.send_generation,
                answer_lost = false
          WHERE mass_send_ledger.send_generation <> EXCLUDED.send_generation",
    )
    .bind(article)
    .bind(account)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a reservation as perhaps used: an attempt's answer from WeChat was lost.
pub async fn answer_lost(db: &PgPool, article: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mass_send_ledger SET answer_lost = true WHERE article_id = $1")
        .bind(article)
        .execute(db)
        .await?;
    Ok(())
}

/// Gives the current send's reservation back when nothing was sent (WeChat refused
/// the send for good, or it was cancelled while waiting to retry), unless an
/// attempt's answer was lost: WeChat may have taken and counted that one. A
/// reservation of an earlier send generation is never given back (WeChat took that
/// send and failed its job); when the article has such earlier sends, the last
/// takes the row's place again, marked as of no generation, so it stays counted.
pub async fn release(db: impl PgExecutor<'_>, article: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH current AS (
             SELECT l.article_id, cardinality(l.earlier_sends) AS earlier
               FROM mass_send_ledger l JOIN articles a ON a.id = l.article_id
              WHERE l.article_id = $1 AND l.send_generation = a.send_generation
                AND NOT l.answer_lost
         ), gone AS (
             DELETE FROM mass_send_ledger
              WHERE article_id IN (SELECT article_id FROM current WHERE earlier = 0)
         )
         UPDATE mass_send_ledger
            SET sent_at = earlier_sends[cardinality(earlier_sends)],
                earlier_sends = earlier_sends[1:cardinality(earlier_sends) - 1],
                send_generation = -1
          WHERE article_id IN (SELECT article_id FROM current WHERE earlier > 0)",
    )
    .bind(article)
    .execute(db)
    .await?;
    Ok(())
}
