//! Multi-article messages: the message row and its articles' places.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::articles::ArticleRow;

/// A message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub account: String,
    pub created_by: String,
}

/// Reads and locks a message.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, account, created_by FROM messages WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Locks the message article `article` is in (none: nothing is locked) FOR KEY
/// SHARE, before the article itself: the lock the foreign key check of a second
/// update of the article in one transaction takes on its message. Taken then, with
/// the article held, it waited for a ComposeMessage or DissolveMessage holding the
/// message row FOR UPDATE and waiting for the article (PostgreSQL aborted one).
/// Returns the message locked: the caller checks it is still the article's once the
/// article is locked (a compose may have moved it in between).
pub async fn share_key_of(
    tx: &mut Transaction<'_, Postgres>,
    article: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.id FROM messages m, articles a
          WHERE a.id = $1 AND m.id = a.message_id
          FOR KEY SHARE OF m",
    )
    .bind(article)
    .fetch_optional(&mut **tx)
    .await
}

/// Reads a message.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, account, created_by FROM messages WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Creates a message.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    account: &str,
    created_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO messages (id, account, created_by) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(account)
        .bind(created_by)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes a message once no article refers to it.
pub async fn delete(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The articles of a message in order, headline first.
pub async fn articles(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM articles WHERE message_id = $1 ORDER BY message_position",
        super::articles::COLUMNS
    ))
    .bind(id)
    .fetch_all(db)
    .await
}

/// Takes every article out of a message (before it is recomposed or dissolved);
/// a draft WeChat holds for the old composition is forgotten. Returns the drafts
/// forgotten, by article: the caller deletes them from WeChat's draft box once its
/// transaction is committed (nothing else knows of them).
pub async fn clear(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    // The old values, read in the update's own snapshot: the caller holds the rows.
    sqlx::query_as(
        "UPDATE articles a
            SET message_id = NULL, message_position = NULL, media_id = NULL, updated_at = now()
           FROM (SELECT id, media_id FROM articles WHERE message_id = $1) old
          WHERE a.id = old.id
      RETURNING a.id, old.media_id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await
    .map(forgotten)
}

/// Puts an article at `position` of a message (its old draft forgotten: returned,
/// for the caller to delete from WeChat's draft box once committed).
pub async fn place(
    tx: &mut Transaction<'_, Postgres>,
    article: Uuid,
    message: Uuid,
    position: i16,
) -> Result<Option<String>, sqlx::Error> {
    let old: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "UPDATE articles a
            SET message_id = $2, message_position = $3, media_id = NULL, updated_at = now()
           FROM (SELECT id, media_id FROM articles WHERE id = $1) old
          WHERE a.id = old.id
      RETURNING a.id, old.media_id",
    )
    .bind(article)
    .bind(message)
    .bind(position)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("UPDATE messages SET updated_at = now() WHERE id = $1")
        .bind(message)
        .execute(&mut **tx)
        .await?;
    Ok(forgotten(old).into_iter().next().map(|(_, draft)| draft))
}

/// The drafts among `rows` (article, its media id before the update).
fn forgotten(rows: Vec<(Uuid, Option<String>)>) -> Vec<(Uuid, String)> {
    rows.into_iter()
        .filter_map(|(article, draft)| Some((article, draft?)))
        .collect()
}

/// Locks a message's articles, and those handed over with its headline that have
/// left it since (only a verdict that the send went out notes it in their trails; a
/// RecordPublished's recorded outcome notes nothing on them), in id order: the
/// articles and the order a verdict on the headline's job locks
/// (`articles::lock_job_articles`) and ComposeMessage takes its articles in, so two
/// such transactions wait for each other instead of deadlocking. The caller locks
/// the message row first (`lock`).
pub async fn lock_articles(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT id FROM articles
          WHERE message_id = $1
             OR sent_key = (SELECT sent_key FROM articles WHERE message_id = $1 AND message_position = 1)
          ORDER BY id
          FOR UPDATE",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(())
}

/// Takes one article out of its message (its draft of the message forgotten: the
/// return that takes it out deletes it from WeChat, having read it before).
pub async fn take_out(
    tx: &mut Transaction<'_, Postgres>,
    article: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET message_id = NULL, message_position = NULL, media_id = NULL, updated_at = now()
          WHERE id = $1",
    )
    .bind(article)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
