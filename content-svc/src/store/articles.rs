//! Article queries: the article, its versions, review rounds, audit trail and
//! hit overrides, and the scheduler's claim.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::article::ArticleContent;
use crate::domain::review::{ArticleState, ReviewStage};

/// An article as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArticleRow {
    pub id: Uuid,
    pub account: String,
    pub department: String,
    pub author_id: String,
    pub state: String,
    pub version: i32,
    pub round: i32,
    pub title: String,
    pub author_name: String,
    pub digest: String,
    pub body: String,
    pub cover_media_id: String,
    pub source_url: String,
    pub column_name: String,
    pub open_comment: bool,
    pub only_fans_can_comment: bool,
    pub channel: String,
    pub mass_tag_id: Option<i64>,
    pub send_ignore_reprint: bool,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub media_id: Option<String>,
    pub publish_id: Option<String>,
    pub mass_msg_id: Option<String>,
    pub msg_data_id: Option<String>,
    pub url: Option<String>,
    pub failure: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Set once, at creation: the listing's key, as it never moves.
    pub created_at: DateTime<Utc>,
    pub correction_of: Option<Uuid>,
    pub cover_image_id: Option<Uuid>,
    /// The multi-article message it belongs to, and its place there (1: the headline).
    pub message_id: Option<Uuid>,
    pub message_position: Option<i16>,
    /// Which send of the article a mass send is (its `clientmsgid`, with the id):
    /// moved on only by WeChat's verdict that a job failed.
    pub send_generation: i32,
    /// Whether its last send may have reached followers unbeknown (migration 0018):
    /// a send again then needs the publisher's confirmation.
    pub send_outcome_unknown: bool,
    /// Its place in the message as it was last handed to WeChat (migration 0024;
    /// 1 for a lone article): WeChat's `idx` for it, whatever the message became.
    pub sent_position: Option<i16>,
    /// The version handed to WeChat with `sent_position` (migration 0028): a
    /// revision since is not what WeChat holds under the key. NULL: before 0028.
    pub sent_version: Option<i32>,
    /// Which send of the article is under way (migration 0035): bumped by a claim
    /// and by a publish, checked before the draft is kept and before the hand-over.
    pub send_token: i64,
}

impl ArticleRow {
    /// The stored state (an unknown name is read as a draft, which only allows editing).
    pub fn state(&self) -> ArticleState {
        ArticleState::parse(&self.state).unwrap_or(ArticleState::Draft)
    }

    /// Whether it rides in another article's message (not its headline).
    pub fn is_message_member(&self) -> bool {
        self.message_id.is_some() && self.message_position.is_some_and(|p| p > 1)
    }

    /// Whether it heads a multi-article message.
    pub fn is_message_headline(&self) -> bool {
        self.message_id.is_some() && self.message_position == Some(1)
    }

    /// The editable content.
    pub fn content(&self) -> ArticleContent {
        ArticleContent {
            title: self.title.clone(),
            author: self.author_name.clone(),
            digest: self.digest.clone(),
            body: self.body.clone(),
            cover_media_id: self.cover_media_id.clone(),
            cover_image_id: self.cover_image_id,
            source_url: self.source_url.clone(),
            column: self.column_name.clone(),
            open_comment: self.open_comment,
            only_fans_can_comment: self.only_fans_can_comment,
        }
    }
}

pub(crate) const COLUMNS: &str =
    "id, account, department, author_id, state, version, round, title, author_name,
    digest, body, cover_media_id, source_url, column_name, open_comment, only_fans_can_comment,
    channel, mass_tag_id, send_ignore_reprint, scheduled_for, attempts, media_id, publish_id,
    mass_msg_id, msg_data_id, url, failure, published_at, updated_at, created_at, correction_of,
    cover_image_id, message_id, message_position, send_generation, send_outcome_unknown,
    sent_position, sent_version, send_token";

/// What a new article is.
pub struct NewArticle<'a> {
    pub id: Uuid,
    pub account: &'a str,
    pub department: &'a str,
    pub author_id: &'a str,
    pub content: &'a ArticleContent,
    pub channel: &'a str,
    pub mass_tag_id: Option<i64>,
    pub send_ignore_reprint: bool,
}

/// Inserts a new draft (version 1) and its first version row.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewArticle<'_>,
) -> Result<(), sqlx::Error> {
    let c = new.content;
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, author_name, digest, body,
            cover_media_id, source_url, column_name, open_comment, only_fans_can_comment, channel,
            mass_tag_id, send_ignore_reprint, cover_image_id)
         VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(new.id)
    .bind(new.account)
    .bind(new.department)
    .bind(new.author_id)
    .bind(&c.title)
    .bind(&c.author)
    .bind(&c.digest)
    .bind(&c.body)
    .bind(&c.cover_media_id)
    .bind(&c.source_url)
    .bind(&c.column)
    .bind(c.open_comment)
    .bind(c.only_fans_can_comment)
    .bind(new.channel)
    .bind(new.mass_tag_id)
    .bind(new.send_ignore_reprint)
    .bind(c.cover_image_id)
    .execute(&mut **tx)
    .await?;
    insert_version(tx, new.id, 1, c, new.author_id).await
}

async fn insert_version(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    version: i32,
    c: &ArticleContent,
    by: &str,
) -> Result<(), sqlx::Error> {
    // The whole content, so a review's version says what was approved: the cover,
    // the 阅读原文 link and the comment flags go out with the text.
    sqlx::query(
        "INSERT INTO article_versions (article_id, version, title, author_name, digest, body, edited_by,
            cover_media_id, cover_image_id, source_url, column_name, open_comment, only_fans_can_comment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(version)
    .bind(&c.title)
    .bind(&c.author)
    .bind(&c.digest)
    .bind(&c.body)
    .bind(by)
    .bind(&c.cover_media_id)
    .bind(c.cover_image_id)
    .bind(&c.source_url)
    .bind(&c.column)
    .bind(c.open_comment)
    .bind(c.only_fans_can_comment)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces the content with a new version (the previous one stays in `article_versions`).
/// The WeChat draft kept for the send (`media_id`) is forgotten: it was made of an
/// earlier version, and a send reusing it would publish that version.
pub async fn update_content(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    version: i32,
    c: &ArticleContent,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET version = $2, title = $3, author_name = $4, digest = $5, body = $6,
            cover_media_id = $7, source_url = $8, column_name = $9, open_comment = $10,
            only_fans_can_comment = $11, cover_image_id = $12, media_id = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(version)
    .bind(&c.title)
    .bind(&c.author)
    .bind(&c.digest)
    .bind(&c.body)
    .bind(&c.cover_media_id)
    .bind(&c.source_url)
    .bind(&c.column)
    .bind(c.open_comment)
    .bind(c.only_fans_can_comment)
    .bind(c.cover_image_id)
    .execute(&mut **tx)
    .await?;
    insert_version(tx, id, version, c, by).await
}

/// Reads an article.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM articles WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The text of a published article, as search indexes it.
#[derive(Debug, sqlx::FromRow)]
pub struct PublishedText {
    pub id: Uuid,
    pub account: String,
    pub title: String,
    pub digest: String,
    pub body: String,
    pub url: Option<String>,
}

/// Up to `limit` published articles after `after`, in id order, with only the
/// columns search indexes (a page at a time: bodies are large).
pub async fn published_texts(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PublishedText>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account, title, digest, body, url FROM articles
          WHERE state = 'published' AND url IS NOT NULL AND NOT taken_down
            AND ($1::uuid IS NULL OR id > $1)
          ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Reads and locks an article for a transition.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM articles WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Locks articles `ids` in id order (ComposeMessage's, after its message row): the
/// one order every transaction that locks several articles takes them in (a verdict
/// on a job and a send: [`lock_job_articles`]; DissolveMessage, a return for
/// revision and RecordPublished: `messages::lock_articles`), so two such
/// transactions wait for each other instead of deadlocking.
pub async fn lock_in_order(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM articles WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    Ok(())
}

/// How many times [`lock_job_articles`] starts again when a compose or dissolve
/// moved its article between the lock on its message and the lock on it.
const JOB_LOCK_TRIES: usize = 3;

/// Why [`lock_job_articles`] (and what calls it) did not lock a job's articles.
#[derive(Debug, thiserror::Error)]
pub enum JobLockError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Another message each time: composes and dissolves of it kept committing
    /// between the two locks. Nothing was written; worth trying again.
    #[error(
        "article {article} moved to another message each of the {tries} times its \
         message and articles were locked; try again"
    )]
    KeptMoving { article: Uuid, tries: usize },
}

/// Locks, in id order, every article a verdict on the job of article `head` (or a
/// send of it that fails, retries or takes its message along) may write: `head`,
/// the articles of its message (moved with it) and those handed over under its send
/// key that have left the message since (noted in their trails); and before them
/// `head`'s message row, FOR KEY SHARE. That is the lock the foreign key check of a
/// second update of an article in one transaction takes on its message: taken then,
/// after the articles, it waited for a ComposeMessage or DissolveMessage holding the
/// message row and waiting for those articles. Taken one by one from `head` on, the
/// articles deadlocked with a ComposeMessage locking the same ones in id order
/// (PostgreSQL aborted one: the compose failed, the verdict's transaction rolled
/// back and its callback was redelivered, or a send's failure was not recorded).
///
/// `head`'s message is read when it is locked, before the articles are: a compose
/// committed in between (one that put `head` in a message, or took it out of one
/// while this waited for that message) leaves the articles in a message not held.
/// So, once `head` is locked, its message is checked to be the one held; if not,
/// this starts again from a savepoint whose rollback lets every lock taken since go
/// (the caller's earlier ones stay), up to [`JOB_LOCK_TRIES`] times, then
/// [`JobLockError::KeptMoving`].
pub async fn lock_job_articles(
    tx: &mut Transaction<'_, Postgres>,
    head: Uuid,
) -> Result<(), JobLockError> {
    for _ in 0..JOB_LOCK_TRIES {
        let mut attempt = sqlx::Acquire::begin(&mut **tx).await?;
        let message = super::messages::share_key_of(&mut attempt, head).await?;
        // `a`'s row as locked (the newest): `head`'s message there is steady.
        let locked: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT a.id, a.message_id FROM articles a, articles h
              WHERE h.id = $1
                AND (a.id = h.id OR a.message_id = h.message_id OR a.sent_key = h.sent_key)
              ORDER BY a.id
              FOR UPDATE OF a",
        )
        .bind(head)
        .fetch_all(&mut *attempt)
        .await?;
        let now_in = locked
            .iter()
            .find(|(id, _)| *id == head)
            .and_then(|(_, message)| *message);
        if now_in == message {
            attempt.commit().await?;
            return Ok(());
        }
        attempt.rollback().await?;
    }
    Err(JobLockError::KeptMoving {
        article: head,
        tries: JOB_LOCK_TRIES,
    })
}

/// Reads and locks the article a WeChat job of `account` belongs to (job ids are
/// WeChat's per account: another account's job with the same id is not this one),
/// and first, in id order, every other article a verdict on it may write
/// ([`lock_job_articles`]).
pub async fn lock_by_job(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    publish_id: Option<&str>,
    mass_msg_id: Option<&str>,
) -> Result<Option<ArticleRow>, JobLockError> {
    let head: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM articles
          WHERE (($1::text IS NOT NULL AND publish_id = $1) OR ($2::text IS NOT NULL AND mass_msg_id = $2))
            AND account = $3",
    )
    .bind(publish_id)
    .bind(mass_msg_id)
    .bind(account)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    lock_job_articles(tx, head).await?;
    // Still the job's under the lock: a send again may have forgotten it meanwhile.
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM articles
          WHERE id = $1
            AND (($2::text IS NOT NULL AND publish_id = $2) OR ($3::text IS NOT NULL AND mass_msg_id = $3))
          FOR UPDATE"
    ))
    .bind(head)
    .bind(publish_id)
    .bind(mass_msg_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(Into::into)
}

/// Which articles a listing covers.
pub struct ListFilter<'a> {
    /// None: every account.
    pub accounts: Option<Vec<String>>,
    pub account: Option<&'a str>,
    /// Only this department's articles (an editor's view).
    pub department: Option<&'a str>,
    pub state: Option<ArticleState>,
    pub limit: i64,
    /// Keyset paging: articles created before this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

/// Lists articles, most recently created first. The key is (created_at, id),
/// which no change moves: keyed on updated_at, an article reviewed while a program
/// paged through jumped ahead of its cursor and was missing from the whole walk.
pub async fn list(db: &PgPool, filter: &ListFilter<'_>) -> Result<Vec<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM articles
          WHERE ($1::text[] IS NULL OR account = ANY($1))
            AND ($2::text IS NULL OR account = $2)
            AND ($3::text IS NULL OR department = $3)
            AND ($4::text IS NULL OR state = $4)
            AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
          ORDER BY created_at DESC, id DESC
          LIMIT $7"
    ))
    .bind(filter.accounts.as_deref())
    .bind(filter.account)
    .bind(filter.department)
    .bind(filter.state.map(|s| s.as_str()))
    .bind(filter.before.map(|b| b.0))
    .bind(filter.before.map(|b| b.1))
    .bind(filter.limit)
    .fetch_all(db)
    .await
}

/// Sets the state (and opens a new review round on submission).
pub async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    state: ArticleState,
    new_round: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET state = $2, round = round + CASE WHEN $3 THEN 1 ELSE 0 END, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(new_round)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets (or clears) the scheduled time.
pub async fn set_schedule(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET scheduled_for = $2, attempts = 0, next_attempt_at = NULL, failure = NULL WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Gives a send its full retries again (an article published anew).
pub async fn reset_attempts(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET attempts = 0, next_attempt_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keeps the mass send job a publisher confirmed as not having reached followers
/// (the article's `mass_msg_id` before it is forgotten for the send again).
pub async fn set_confirmed_job(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    job: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET confirmed_job = $2 WHERE id = $1")
        .bind(id)
        .bind(job)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The mass send job a publisher last confirmed for article `id` ([`set_confirmed_job`]).
pub async fn confirmed_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT confirmed_job FROM articles WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
        .map(Option::flatten)
}

/// Forgets the WeChat job of an earlier send (the draft stays, for reuse). A mass
/// send's place stays while it is recorded under its `clientmsgid` (`sent_key`): a
/// send again under that key may meet 45065 for the line-up it was first sent with.
pub async fn forget_job(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET publish_id = NULL, mass_msg_id = NULL, msg_data_id = NULL,
            sent_position = CASE WHEN sent_key IS NULL THEN NULL ELSE sent_position END
          WHERE id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records the WeChat job an article was handed to. A send a publisher confirmed
/// ([`confirm_send`]) is settled here, when WeChat has taken it, and not before: the
/// flag cleared at the confirmation let a send then cancelled, returned or put back
/// on the schedule be taken out of its message and a member sent alone.
pub async fn set_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    media_id: Option<&str>,
    publish_id: Option<&str>,
    mass_msg_id: Option<&str>,
    msg_data_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET media_id = coalesce($2, media_id), publish_id = $3, mass_msg_id = $4,
            msg_data_id = coalesce($5, msg_data_id), failure = NULL, updated_at = now(),
            send_outcome_unknown = send_outcome_unknown AND NOT send_confirmed,
            send_confirmed = false
         WHERE id = $1",
    )
    .bind(id)
    .bind(media_id)
    .bind(publish_id)
    .bind(mass_msg_id)
    .bind(msg_data_id)
    .execute(db)
    .await?;
    Ok(())
}

/// [`set_job`] for send `token` of article `id` that WeChat took: recorded only
/// while the article is still `publishing` under that send (a send the stuck-send
/// sweep gave up overwrote the job of the publish again that followed it). Returns
/// whether it did.
pub async fn set_sent_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: i64,
    media_id: Option<&str>,
    publish_id: Option<&str>,
    mass_msg_id: Option<&str>,
    msg_data_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let set = sqlx::query(
        "UPDATE articles SET media_id = coalesce($2, media_id), publish_id = $3, mass_msg_id = $4,
            msg_data_id = coalesce($5, msg_data_id), failure = NULL, updated_at = now(),
            send_outcome_unknown = send_outcome_unknown AND NOT send_confirmed,
            send_confirmed = false
         WHERE id = $1 AND state = 'publishing' AND send_token = $6",
    )
    .bind(id)
    .bind(media_id)
    .bind(publish_id)
    .bind(mass_msg_id)
    .bind(msg_data_id)
    .bind(token)
    .execute(db)
    .await?;
    Ok(set.rows_affected() == 1)
}

/// How a message about to be handed to WeChat stands to the line-up its mass send's
/// `clientmsgid` was first handed over with (`sent_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineup {
    /// No earlier hand-over may have taken the key (or a free publication, which has
    /// none): the places of `sent` were recorded now.
    Fresh,
    /// The key was handed over before with these very articles at these places.
    Same,
    /// The key was handed over before with another line-up (an article returned
    /// since): its places are kept, as a 45065 names that send's job.
    Changed,
}

/// Records the places of `sent` (headline first) in the message about to be handed
/// to WeChat (WeChat's `idx` of each) under `key`, the mass send's `clientmsgid` —
/// unless that key was handed over before, when WeChat may hold it with the places
/// recorded then: those stay, and whether `sent` differs from them is returned.
pub async fn hand_over_lineup(
    db: &PgPool,
    sent: &[Uuid],
    key: Option<&str>,
) -> Result<Lineup, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The articles sent and those the key holds, in id order (see `lock_in_order`):
    // a verdict on a job under the same key locks them so.
    sqlx::query(
        "SELECT id FROM articles
          WHERE id = ANY($1) OR ($2::text IS NOT NULL AND sent_key = $2)
          ORDER BY id
          FOR UPDATE",
    )
    .bind(sent)
    .bind(key)
    .fetch_all(&mut *tx)
    .await?;
    // Whether each held article is still the version handed over: a revision sent
    // under the old key is not what WeChat took (NULL, recorded before 0028: by place
    // only, as before).
    let held: Vec<(Uuid, Option<i16>, bool)> = match key {
        Some(key) => {
            sqlx::query_as(
                "SELECT id, sent_position, coalesce(sent_version = version, true)
                   FROM articles WHERE sent_key = $1 FOR UPDATE",
            )
            .bind(key)
            .fetch_all(&mut *tx)
            .await?
        }
        None => Vec::new(),
    };
    let lineup = if held.is_empty() {
        record_lineup(&mut *tx, sent, key).await?;
        Lineup::Fresh
    } else if held.len() == sent.len()
        && held.iter().all(|(id, position, unrevised)| {
            *unrevised
                && sent
                    .iter()
                    .position(|s| s == id)
                    .is_some_and(|i| *position == Some(i as i16 + 1))
        })
    {
        Lineup::Same
    } else {
        Lineup::Changed
    };
    tx.commit().await?;
    Ok(lineup)
}

/// Records `sent`'s places under `key` as what WeChat took (a fresh hand-over, or
/// WeChat taking a changed line-up as a new send: no earlier one had the key); any
/// other article recorded under the key is not in that send.
pub async fn record_lineup(
    db: impl PgExecutor<'_>,
    sent: &[Uuid],
    key: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH others AS (
             UPDATE articles SET sent_key = NULL WHERE sent_key = $2 AND NOT (id = ANY($1))
         )
         UPDATE articles SET sent_position = array_position($1, id), sent_key = $2,
                sent_version = version
          WHERE id = ANY($1)",
    )
    .bind(sent)
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// The articles handed to WeChat under article `head`'s `clientmsgid` (`sent_key`)
/// other than `head` and `still_in` (the articles of its message now): members
/// returned since, which went out with it. None for a free publication (no key).
pub async fn sent_with_but_left(
    db: impl PgExecutor<'_>,
    head: Uuid,
    still_in: &[Uuid],
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM articles
          WHERE sent_key = (SELECT sent_key FROM articles WHERE id = $1)
            AND id <> $1 AND NOT (id = ANY($2))
          ORDER BY sent_position"
    ))
    .bind(head)
    .bind(still_in)
    .fetch_all(db)
    .await
}

/// Forgets that `key` was handed over: WeChat answered its first send without
/// taking it (a refusal, a busy answer, or no call made), so its next hand-over
/// records its own places.
pub async fn release_lineup(db: impl PgExecutor<'_>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET sent_key = NULL WHERE sent_key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Gives the article's next mass send a `clientmsgid` of its own: WeChat said the
/// job of the current one failed, so a send again is a new send, not a retry.
pub async fn next_send_generation(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET send_generation = send_generation + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks (or clears) the article's last send as one that may have reached
/// followers without this service knowing (its answer lost, or cut off mid-way).
pub async fn set_send_outcome_unknown(
    db: impl PgExecutor<'_>,
    id: Uuid,
    unknown: bool,
) -> Result<(), sqlx::Error> {
    // A new unknown outcome voids an earlier confirmation, and a settled one has
    // nothing left to confirm. The mark is no longer the stuck-send sweep's alone.
    sqlx::query(
        "UPDATE articles SET send_outcome_unknown = $2, send_confirmed = false,
                swept_token = NULL
          WHERE id = $1",
    )
    .bind(id)
    .bind(unknown)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks send `token` of article `id` (still `version` in `publishing`) as of
/// unknown outcome, as [`set_send_outcome_unknown`] does: a mass send whose answer
/// was lost. A send the article left since marks nothing over the next send's.
pub async fn mark_answer_lost(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
    token: i64,
) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE articles SET send_outcome_unknown = true, send_confirmed = false,
                swept_token = NULL
          WHERE id = $1 AND version = $2 AND state = 'publishing' AND send_token = $3",
    )
    .bind(id)
    .bind(version)
    .bind(token)
    .execute(db)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Marks the article's send as of unknown outcome for the stuck-send sweep
/// (as [`set_send_outcome_unknown`]), noting the send it gave up
/// (`swept_token`) when the mark is the sweep's alone: clear before, so the one
/// send may have gone out unbeknown. That send may clear it ([`clear_swept_mark`]).
pub async fn mark_swept(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET swept_token = CASE WHEN send_outcome_unknown THEN NULL
                                                 ELSE send_token END,
                send_outcome_unknown = true, send_confirmed = false
          WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Clears the stuck-send sweep's mark of send `token` of article `id`, which has
/// found it never handed anything to WeChat (the article had left that send when
/// it came to keep its draft or hand it over): only while no other send has begun
/// since and the mark is still that sweep's alone. Returns whether it did.
pub async fn clear_swept_mark(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token: i64,
) -> Result<bool, sqlx::Error> {
    let cleared = sqlx::query(
        "UPDATE articles SET send_outcome_unknown = false, send_confirmed = false,
                swept_token = NULL
          WHERE id = $1 AND send_token = $2 AND swept_token = $2 AND send_outcome_unknown",
    )
    .bind(id)
    .bind(token)
    .execute(db)
    .await?;
    Ok(cleared.rows_affected() == 1)
}

/// Begins a new send of article `id` (a publish): any send still under way of an
/// earlier one, given up by the stuck-send sweep, then neither keeps its draft nor
/// hands it over. Returns the new send's token.
pub async fn begin_send(db: impl PgExecutor<'_>, id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE articles SET send_token = send_token + 1 WHERE id = $1 RETURNING send_token",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Records a publisher's confirmation that article `id`'s send of unknown outcome
/// reached nobody. The flag stays until WeChat takes the send again ([`set_job`]).
pub async fn confirm_send(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET send_confirmed = true WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the outcome WeChat reported.
pub async fn set_outcome(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    url: Option<&str>,
    msg_data_id: Option<&str>,
    failure: Option<&str>,
    published_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles SET url = coalesce($2, url), msg_data_id = coalesce($3, msg_data_id),
            failure = $4, published_at = coalesce($5, published_at), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(url)
    .bind(msg_data_id)
    .bind(failure)
    .bind(published_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets the URL of a published article that has none (its verdict came without
/// one); returns whether it did. `updated_at` is left alone: nothing was decided.
pub async fn fill_url(db: impl PgExecutor<'_>, id: Uuid, url: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE articles SET url = $2
          WHERE id = $1 AND state = 'published' AND url IS NULL AND NOT taken_down",
    )
    .bind(id)
    .bind(url)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a publication WeChat took down after it went out (migration 0023).
pub async fn set_taken_down(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET taken_down = true WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Puts a due article back for a later attempt after a transient failure;
/// returns whether it was still in `publishing` (and so was put back).
pub async fn retry_later(
    db: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    failure: &str,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE articles SET state = 'scheduled', next_attempt_at = $2, failure = $3, updated_at = now()
         WHERE id = $1 AND state = 'publishing'",
    )
    .bind(id)
    .bind(at)
    .bind(failure)
    .execute(db)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// A due article the scheduler claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    /// This attempt's number.
    pub attempts: i32,
    pub version: i32,
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Set when the claim is a retry's.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The send this claim began ([`begin_send`]).
    pub send_token: i64,
}

/// Claims due scheduled articles: each row is taken by exactly one replica
/// (`FOR UPDATE SKIP LOCKED`) and leaves `scheduled` in the same statement.
pub async fn claim_due(
    tx: &mut Transaction<'_, Postgres>,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE articles a SET state = 'publishing', attempts = attempts + 1, updated_at = now(),
                send_token = a.send_token + 1
           FROM (SELECT id FROM articles
                  WHERE state = 'scheduled' AND scheduled_for <= now()
                    AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                  ORDER BY scheduled_for
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED) due
          WHERE a.id = due.id
         RETURNING a.id, a.attempts, a.version, a.scheduled_for, a.next_attempt_at, a.send_token",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Puts claimed articles not yet handed to WeChat back on the schedule (the drain
/// began between the claim and their send): `scheduled` again, still due, the
/// claim's attempt given back. Only those still in `publishing` (nothing else
/// moves an article this replica claimed and never sent); returns the ids and
/// versions of those put back.
pub async fn release_claimed(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE articles SET state = 'scheduled', attempts = greatest(attempts - 1, 0),
                updated_at = now()
          WHERE id = ANY($1) AND state = 'publishing'
         RETURNING id, version",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
}

/// An article whose WeChat job has had no verdict for a while, taken to ask WeChat.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unsettled {
    pub id: Uuid,
    pub account: String,
    pub publish_id: Option<String>,
    pub mass_msg_id: Option<String>,
    /// When the job id was recorded (`set_job` dates it): WeChat finished no
    /// sooner.
    pub handed_at: DateTime<Utc>,
    /// The lease's stamp (`job_checked_at` as this claim set it): giving the lease
    /// back clears only this stamp, not one another replica set since.
    pub checked_at: DateTime<Utc>,
    /// A `failed` article whose send's outcome is unknown and whose mass send job's
    /// verdict is awaited (`awaited_job`, migration 0030), not one in `publishing`.
    pub awaited: bool,
}

/// Takes up to `limit` articles in `publishing` whose WeChat job was recorded more
/// than `older_than` ago and that nobody asked WeChat about within `older_than`
/// (`job_checked_at`, migration 0022), and stamps them now: the stamp is the lease,
/// so another replica skips them (`FOR UPDATE SKIP LOCKED` while this statement
/// runs, the stamp after). A message's other articles carry no job id and follow
/// their headline. The stamp leaves `updated_at` alone: it dates the hand-over (for
/// an article failed since, the failure, which recorded the job).
/// Then, on the same terms and within `limit`, `failed` articles whose send's
/// outcome is unknown and whose mass send job's verdict is awaited (`awaited_job`,
/// migration 0030: a 45065 naming the job of a line-up changed since). Two
/// statements, not one with an OR: the `publishing` one stays a read of the few
/// articles in that state.
pub async fn claim_unsettled(
    tx: &mut Transaction<'_, Postgres>,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Unsettled>, sqlx::Error> {
    let mut taken = claim_where(
        tx,
        "state = 'publishing' AND (publish_id IS NOT NULL OR mass_msg_id IS NOT NULL)",
        older_than,
        limit,
    )
    .await?;
    let left = limit - taken.len() as i64;
    if left > 0 {
        taken.extend(
            claim_where(
                tx,
                "state = 'failed' AND send_outcome_unknown AND awaited_job = mass_msg_id",
                older_than,
                left,
            )
            .await?,
        );
    }
    Ok(taken)
}

/// [`claim_unsettled`] of the articles `condition` (a constant) selects.
async fn claim_where(
    tx: &mut Transaction<'_, Postgres>,
    condition: &'static str,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Unsettled>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE articles a SET job_checked_at = now()
           FROM (SELECT id FROM articles
                  WHERE {condition}
                    AND updated_at < now() - make_interval(secs => $1)
                    AND (job_checked_at IS NULL
                         OR job_checked_at < now() - make_interval(secs => $1))
                  ORDER BY coalesce(job_checked_at, updated_at)
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED) due
          WHERE a.id = due.id
         RETURNING a.id, a.account, a.publish_id, a.mass_msg_id, a.updated_at AS handed_at,
                   a.job_checked_at AS checked_at, a.state = 'failed' AS awaited"
    ))
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Awaits the verdict of mass send job `msg_id`, which article `id` (failed as a send
/// whose outcome is unknown) now holds: the reconciliation asks about it
/// ([`claim_unsettled`]). Not when it is the job a publisher confirmed sending again
/// after (`confirmed_job`): the article failed under it before, and whether its
/// verdict is still awaited stands as it was then.
pub async fn await_verdict(
    db: impl PgExecutor<'_>,
    id: Uuid,
    msg_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE articles
            SET awaited_job = CASE WHEN confirmed_job IS NOT DISTINCT FROM $2
                                   THEN awaited_job ELSE $2 END
          WHERE id = $1",
    )
    .bind(id)
    .bind(msg_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether article `id` is still failed as a send whose outcome is unknown, holding
/// mass send job `msg_id` whose verdict is awaited; locks it for this transaction,
/// and first, in id order, every other article the verdict it awaits may write
/// ([`lock_job_articles`]: the reconciliation applies that verdict next).
pub async fn lock_awaiting(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    msg_id: &str,
) -> Result<bool, JobLockError> {
    lock_job_articles(tx, id).await?;
    sqlx::query_scalar(
        "SELECT true FROM articles
          WHERE id = $1 AND state = 'failed' AND send_outcome_unknown
            AND mass_msg_id = $2 AND awaited_job = $2
          FOR UPDATE",
    )
    .bind(id)
    .bind(msg_id)
    .fetch_optional(&mut **tx)
    .await
    .map(|found: Option<bool>| found.is_some())
    .map_err(Into::into)
}

/// Stops awaiting the verdict of job `msg_id` for article `id` (a verdict came, or
/// the reconciliation gave up on it); returns whether it was awaited.
pub async fn stop_awaiting(
    db: impl PgExecutor<'_>,
    id: Uuid,
    msg_id: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE articles SET awaited_job = NULL WHERE id = $1 AND awaited_job = $2")
            .bind(id)
            .bind(msg_id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives back the reconciliation's leases of `jobs` (taken, not asked about): the
/// next look of any replica takes them again. Only a lease still bearing this
/// claim's stamp: one that expired and was taken by another replica since is that
/// replica's.
pub async fn release_unsettled(
    db: impl PgExecutor<'_>,
    jobs: &[Unsettled],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = jobs.iter().map(|job| job.id).collect();
    let stamps: Vec<DateTime<Utc>> = jobs.iter().map(|job| job.checked_at).collect();
    sqlx::query(
        "UPDATE articles a SET job_checked_at = NULL
           FROM unnest($1::uuid[], $2::timestamptz[]) AS taken(id, stamp)
          WHERE a.id = taken.id AND a.job_checked_at = taken.stamp",
    )
    .bind(&ids)
    .bind(&stamps)
    .execute(db)
    .await?;
    Ok(())
}

/// Everyone who wrote a version of the article (its author among them).
pub async fn writers(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT edited_by FROM article_versions WHERE article_id = $1")
        .bind(id)
        .fetch_all(db)
        .await
}

/// Who submitted the article for its current review round: the trail's last
/// `submit` row (each submission opens a round), none before the first. An earlier
/// round's submitter is left out: a round withdrawn or rejected is over, and an
/// unnamed submission then (`press`) would bar every one of the department's
/// reviewers from every later round.
pub async fn submitters(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT actor FROM article_audit WHERE article_id = $1 AND action = 'submit'
          ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// What makes a send's outcome unknown: in `publishing` for more than `$1` seconds
/// with no WeChat job recorded. `updated_at` dates the move to publishing: nothing
/// else writes it while no job id is set. A message's other articles are left to
/// their headline, which carries the job.
const STUCK: &str = "state = 'publishing' AND publish_id IS NULL AND mass_msg_id IS NULL
    AND NOT (message_id IS NOT NULL AND coalesce(message_position, 1) > 1)
    AND updated_at < now() - make_interval(secs => $1)";

/// Up to `limit` articles whose send's outcome is unknown ([`STUCK`]), in id order
/// after `after` (the last one a sweep saw: keyset paging, so one it cannot fail
/// is not found again), without locking them: each is locked, and checked again,
/// in a transaction of its own ([`lock_if_stuck`]).
pub async fn stuck(
    db: impl PgExecutor<'_>,
    older_than: std::time::Duration,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT id FROM articles WHERE {STUCK} AND ($3::uuid IS NULL OR id > $3)
          ORDER BY id LIMIT $2"
    ))
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .bind(after)
    .fetch_all(db)
    .await
}

/// Reads and locks article `id` if its send's outcome is still unknown
/// ([`STUCK`]): another replica's sweep, a verdict or a publisher may have settled
/// it since [`stuck`] found it.
pub async fn lock_if_stuck(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    older_than: std::time::Duration,
) -> Result<Option<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM articles WHERE {STUCK} AND id = $2 FOR UPDATE"
    ))
    .bind(older_than.as_secs_f64())
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// One audit row.
pub struct Audit<'a> {
    pub article_id: Uuid,
    pub action: &'a str,
    pub from: ArticleState,
    pub to: ArticleState,
    pub actor: &'a str,
    pub role: &'a str,
    pub version: i32,
    pub stage: Option<ReviewStage>,
    pub comment: &'a str,
}

/// Appends to the audit trail.
pub async fn audit(tx: &mut Transaction<'_, Postgres>, a: &Audit<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO article_audit (article_id, action, from_state, to_state, actor, role, version, stage, comment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.article_id)
    .bind(a.action)
    .bind(a.from.as_str())
    .bind(a.to.as_str())
    .bind(a.actor)
    .bind(a.role)
    .bind(a.version)
    .bind(a.stage.map(|s| s.as_str()))
    .bind(a.comment)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An audit row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor: String,
    pub role: String,
    pub version: i32,
    pub stage: Option<String>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// The audit trail of an article, oldest first.
pub async fn audit_trail(db: &PgPool, id: Uuid) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, from_state, to_state, actor, role, version, stage, comment, created_at
           FROM article_audit WHERE article_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// The passed stages of a review round: (stage, reviewer).
pub async fn round_reviews(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    round: i32,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stage, reviewer FROM article_reviews WHERE article_id = $1 AND round = $2",
    )
    .bind(id)
    .bind(round)
    .fetch_all(&mut **tx)
    .await
}

/// Records a passed stage.
pub async fn record_review(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    round: i32,
    stage: ReviewStage,
    reviewer: &str,
    version: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO article_reviews (article_id, round, stage, reviewer, version) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(round)
    .bind(stage.as_str())
    .bind(reviewer)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A version as stored. The fields besides the text are `None` where they were
/// not recorded (a version saved before migration 0019).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    pub title: String,
    pub author_name: String,
    pub digest: String,
    pub body: String,
    pub cover_media_id: Option<String>,
    pub cover_image_id: Option<Uuid>,
    pub source_url: Option<String>,
    pub column_name: Option<String>,
    pub open_comment: Option<bool>,
    pub only_fans_can_comment: Option<bool>,
}

impl VersionRow {
    /// Whether the cover, link, column and comment flags were recorded with it
    /// (written together since migration 0019; `cover_image_id` may be NULL then).
    pub fn settings_recorded(&self) -> bool {
        self.cover_media_id.is_some()
            && self.source_url.is_some()
            && self.column_name.is_some()
            && self.open_comment.is_some()
            && self.only_fans_can_comment.is_some()
    }

    /// The content of the version; fields not recorded are empty.
    pub fn content(&self) -> ArticleContent {
        ArticleContent {
            title: self.title.clone(),
            author: self.author_name.clone(),
            digest: self.digest.clone(),
            body: self.body.clone(),
            cover_media_id: self.cover_media_id.clone().unwrap_or_default(),
            cover_image_id: self.cover_image_id,
            source_url: self.source_url.clone().unwrap_or_default(),
            column: self.column_name.clone().unwrap_or_default(),
            open_comment: self.open_comment.unwrap_or_default(),
            only_fans_can_comment: self.only_fans_can_comment.unwrap_or_default(),
        }
    }
}

/// The version last reviewed (any round), if any.
pub async fn last_reviewed(db: &PgPool, id: Uuid) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.version, v.title, v.author_name, v.digest, v.body, v.cover_media_id,
                v.cover_image_id, v.source_url, v.column_name, v.open_comment,
                v.only_fans_can_comment
           FROM article_versions v
          WHERE v.article_id = $1
            AND v.version = (SELECT max(version) FROM article_reviews WHERE article_id = $1)",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What a list of versions shows of each: who saved it, when, its title.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionSummaryRow {
    pub version: i32,
    pub edited_by: String,
    pub created_at: DateTime<Utc>,
    pub title: String,
}

/// Up to `limit` versions below `before` (all when `None`), newest first: a range
/// of the primary key, whatever the number of versions.
pub async fn versions(
    db: &PgPool,
    id: Uuid,
    before: Option<i32>,
    limit: i64,
) -> Result<Vec<VersionSummaryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, edited_by, created_at, title
           FROM article_versions
          WHERE article_id = $1 AND ($2::integer IS NULL OR version < $2)
          ORDER BY version DESC
          LIMIT $3",
    )
    .bind(id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One version: who saved it and when, and its whole content.
pub async fn version(
    db: &PgPool,
    id: Uuid,
    version: i32,
) -> Result<Option<(VersionSummaryRow, VersionRow)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Stored {
        #[sqlx(flatten)]
        content: VersionRow,
        edited_by: String,
        created_at: DateTime<Utc>,
    }
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT version, title, author_name, digest, body, cover_media_id, cover_image_id,
                source_url, column_name, open_comment, only_fans_can_comment, edited_by,
                created_at
           FROM article_versions WHERE article_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(db)
    .await?;
    Ok(stored.map(|s| {
        let summary = VersionSummaryRow {
            version: s.content.version,
            edited_by: s.edited_by,
            created_at: s.created_at,
            title: s.content.title.clone(),
        };
        (summary, s.content)
    }))
}

/// The trail's review rows (submit, approve, reject, return, and withdraw, which
/// ends a round as a verdict does) of some versions, oldest first.
pub async fn review_steps(
    db: &PgPool,
    id: Uuid,
    versions: &[i32],
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, from_state, to_state, actor, role, version, stage, comment, created_at
           FROM article_audit
          WHERE article_id = $1 AND version = ANY($2)
            AND action IN ('submit', 'approve', 'reject', 'return', 'withdraw')
          ORDER BY id",
    )
    .bind(id)
    .bind(versions)
    .fetch_all(db)
    .await
}

/// An override as stored: (hit key, reviewer, reason).
pub type OverrideRow = (String, String, String);

/// The overrides of one version.
pub async fn overrides(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
) -> Result<Vec<OverrideRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT hit_key, reviewer, reason FROM hit_overrides WHERE article_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_all(db)
    .await
}

/// Records an override (the first reason given for a hit stands); returns whether
/// it was recorded (false: the hit was overridden already).
pub async fn add_override(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    version: i32,
    key: &str,
    reviewer: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO hit_overrides (article_id, version, hit_key, reviewer, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(version)
    .bind(key)
    .bind(reviewer)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Forgets the WeChat draft made of the article (its content is to change).
pub async fn forget_draft(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET media_id = NULL WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Keeps the WeChat draft made for a preview, so the send reuses it.
pub async fn set_media_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
    media_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET media_id = $2 WHERE id = $1")
        .bind(id)
        .bind(media_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Keeps the WeChat draft made for a send, only while the article is still the
/// `version` in `publishing` the draft was made from, under the same send (`token`,
/// [`begin_send`]); returns whether it was kept.
/// The draft is made outside any transaction: an article cancelled or returned
/// meanwhile (and perhaps edited) must not get a draft a later send would reuse; nor
/// may a send the stuck-send sweep gave up, which the publisher published again
/// since (version and state restored: only the token tells the two sends apart).
pub async fn keep_sent_draft(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
    token: i64,
    media_id: &str,
) -> Result<bool, sqlx::Error> {
    let kept = sqlx::query(
        "UPDATE articles SET media_id = $3
          WHERE id = $1 AND version = $2 AND state = 'publishing' AND send_token = $4",
    )
    .bind(id)
    .bind(version)
    .bind(media_id)
    .bind(token)
    .execute(db)
    .await?;
    Ok(kept.rows_affected() == 1)
}

/// Whether the article is still `version` in `publishing` under send `token`,
/// waiting for a writer that holds its row (a cancel or a return under way) to
/// finish first. Asked just before the hand-over to WeChat, outside any
/// transaction: a draft kept earlier is reused without a write that would notice
/// the article moved, or that another send of it began (a publish again after the
/// stuck-send sweep gave this one up).
pub async fn still_publishing(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
    token: i64,
) -> Result<bool, sqlx::Error> {
    // FOR UPDATE waits for a concurrent writer and reads the row it committed; the
    // lock ends with the statement.
    let row = sqlx::query(
        "SELECT 1 FROM articles
          WHERE id = $1 AND version = $2 AND state = 'publishing' AND send_token = $3
          FOR UPDATE",
    )
    .bind(id)
    .bind(version)
    .bind(token)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Whether the article is still `version` in `publishing` under send `token`, as
/// last committed (no lock: see `CallGate::reserve_send`, which asks it once it
/// holds the per-minute ledger's lock for the hand-over).
pub async fn under_send(
    db: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
    token: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM articles
          WHERE id = $1 AND version = $2 AND state = 'publishing' AND send_token = $3)",
    )
    .bind(id)
    .bind(version)
    .bind(token)
    .fetch_one(db)
    .await
}

/// Links a correction notice to the article it corrects.
pub async fn set_correction_of(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    original: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE articles SET correction_of = $2 WHERE id = $1")
        .bind(id)
        .bind(original)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many times an action is in an article's trail.
pub async fn count_actions(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    action: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM article_audit WHERE article_id = $1 AND action = $2")
        .bind(id)
        .bind(action)
        .fetch_one(&mut **tx)
        .await
}
