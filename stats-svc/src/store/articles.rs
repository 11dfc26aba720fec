//! Articles and their figures (`article_figures`): published articles come from the
//! CONTENT stream, figures from the datacube or entered by hand.

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::AccountId;
use crate::domain::figures::{KnownArticle, MessagePlace, StoredArticle};
use crate::domain::rollup::Metric;

/// An accepted hand entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleEntry {
    pub account: AccountId,
    pub article_id: String,
    pub title: String,
    /// The day and flag of a row the entry creates (a stored row keeps its own).
    pub published_on: NaiveDate,
    pub headline: bool,
    /// 0 keeps what is stored.
    pub reads: i64,
    pub zaikan: i64,
    pub likes: i64,
    pub shares: i64,
    /// The department of the key that entered them.
    pub entered_by: String,
    /// The key's fingerprint (`Caller::key_id`).
    pub key_id: String,
}

/// What the service knows of `article_id` of `account`, for the rules of a hand entry;
/// the article's row (if any) is locked until `tx` ends, so a concurrent entry waits.
pub async fn known_article(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    article_id: &str,
) -> Result<KnownArticle, sqlx::Error> {
    // (published_on, headline, pulled, reads, zaikan, likes, shares, freepublished)
    type Row = (NaiveDate, bool, bool, i64, i64, i64, i64, bool);
    let stored: Option<Row> = sqlx::query_as(
        "SELECT published_on, headline, (pulled_at IS NOT NULL OR entered_by = 'datacube'),
                reads, zaikan, likes, shares, freepublished IS TRUE
           FROM article_figures WHERE account = $1 AND article_id = $2 FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(article_id)
    .fetch_optional(&mut **tx)
    .await?;
    let summary_day: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT min(day) FROM daily_counts WHERE account = $1 AND metric = $2 AND key = $3",
    )
    .bind(account.as_str())
    .bind(Metric::WxArticleReads.as_str())
    .bind(article_id)
    .fetch_one(&mut **tx)
    .await?;
    let datacube_reached: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT max(last_day) FROM datacube_progress
          WHERE account = $1 AND api IN ('getarticlesummary', 'getarticletotal')",
    )
    .bind(account.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(KnownArticle {
        stored: stored.map(
            |(published_on, headline, pulled, reads, zaikan, likes, shares, freepublished)| {
                StoredArticle {
                    published_on,
                    headline,
                    pulled,
                    reads,
                    zaikan,
                    likes,
                    shares,
                    freepublished,
                }
            },
        ),
        summary_day,
        datacube_reached,
    })
}

/// Stores an accepted hand entry and its audit row (`article_figure_entries`). A
/// figure of 0 and an empty title keep what is stored; a stored row keeps its day and
/// headline flag, and the datacube's reads and shares stay even under a pull that
/// landed after the entry was decided.
pub async fn record_entry(
    tx: &mut Transaction<'_, Postgres>,
    entry: &ArticleEntry,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, title, published_on, headline,
             reads, zaikan, likes, shares, entered_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (account, article_id) DO UPDATE SET
             title = COALESCE(NULLIF(EXCLUDED.title, ''), article_figures.title),
             reads = CASE WHEN EXCLUDED.reads = 0 OR article_figures.pulled_at IS NOT NULL
                               OR article_figures.entered_by = 'datacube'
                          THEN article_figures.reads ELSE EXCLUDED.reads END,
             shares = CASE WHEN EXCLUDED.shares = 0 OR article_figures.pulled_at IS NOT NULL
                                OR article_figures.entered_by = 'datacube'
                           THEN article_figures.shares ELSE EXCLUDED.shares END,
             zaikan = CASE WHEN EXCLUDED.zaikan = 0 THEN article_figures.zaikan ELSE EXCLUDED.zaikan END,
             likes = CASE WHEN EXCLUDED.likes = 0 THEN article_figures.likes ELSE EXCLUDED.likes END,
             -- A pulled row keeps its mark once an editor's department is written here.
             pulled_at = CASE WHEN article_figures.entered_by = 'datacube'
                              THEN COALESCE(article_figures.pulled_at, article_figures.updated_at)
                              ELSE article_figures.pulled_at END,
             entered_by = EXCLUDED.entered_by, updated_at = now()",
    )
    .bind(entry.account.as_str())
    .bind(&entry.article_id)
    .bind(&entry.title)
    .bind(entry.published_on)
    .bind(entry.headline)
    .bind(entry.reads)
    .bind(entry.zaikan)
    .bind(entry.likes)
    .bind(entry.shares)
    .bind(&entry.entered_by)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO article_figure_entries (account, article_id, department, key_id, title,
             reads, zaikan, likes, shares)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.account.as_str())
    .bind(&entry.article_id)
    .bind(&entry.entered_by)
    .bind(&entry.key_id)
    .bind(&entry.title)
    .bind(entry.reads)
    .bind(entry.zaikan)
    .bind(entry.likes)
    .bind(entry.shares)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An article content-svc announced as sent, as [`record_published`] stores it.
#[derive(Debug, Clone, Copy)]
pub struct PublishedArticle<'a> {
    pub account: &'a AccountId,
    pub article_id: &'a str,
    pub title: &'a str,
    /// The office day it went out.
    pub published_on: NaiveDate,
    pub headline: bool,
    /// WeChat's id of its message and its place in it, as far as the event says.
    pub place: &'a MessagePlace,
    /// Sent by freepublish, by mass send, or `None`: not said.
    pub freepublished: Option<bool>,
}

/// The place of a message's article as the column `message_index` holds it.
fn message_index(place: &MessagePlace) -> Option<i32> {
    place.index.and_then(|index| i32::try_from(index).ok())
}

/// Records that an article went out (figures, if any, are kept), with WeChat's id of
/// its message (`msg_data_id`) and its place in it (`message_index`) when the event
/// names them, and whether it was freepublished when the event says; what the event
/// does not say keeps what is stored.
pub async fn record_published(
    tx: &mut Transaction<'_, Postgres>,
    article: &PublishedArticle<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, title, published_on, headline,
             msg_data_id, message_index, freepublished)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (account, article_id) DO UPDATE SET
             title = EXCLUDED.title,
             published_on = LEAST(article_figures.published_on, EXCLUDED.published_on),
             headline = EXCLUDED.headline,
             msg_data_id = COALESCE(EXCLUDED.msg_data_id, article_figures.msg_data_id),
             message_index = COALESCE(EXCLUDED.message_index, article_figures.message_index),
             freepublished = COALESCE(EXCLUDED.freepublished, article_figures.freepublished)",
    )
    .bind(article.account.as_str())
    .bind(article.article_id)
    .bind(article.title)
    .bind(article.published_on)
    .bind(article.headline)
    .bind(article.place.msg_data_id.as_deref())
    .bind(message_index(article.place))
    .bind(article.freepublished)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that an article was retracted on `retracted_on` (an office day). The first
/// retraction's day stays; a retraction that arrives before its publication (the two
/// come through different consumers) leaves a row that [`record_published`] completes,
/// dated no later than the retraction. The retraction's `place` fills what the row
/// lacks: an article announced before its message or its place in it were kept gets
/// them, so the datacube's row of it (`{msg_data_id}_{index}`) is matched to it and
/// stops counting with it.
pub async fn record_retracted(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    article_id: &str,
    retracted_on: NaiveDate,
    place: &MessagePlace,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, published_on, retracted_on,
             msg_data_id, message_index)
         VALUES ($1, $2, $3, $3, $4, $5)
         ON CONFLICT (account, article_id) DO UPDATE SET
             retracted_on = LEAST(article_figures.retracted_on, EXCLUDED.retracted_on),
             msg_data_id = COALESCE(article_figures.msg_data_id, EXCLUDED.msg_data_id),
             message_index = COALESCE(article_figures.message_index, EXCLUDED.message_index)",
    )
    .bind(account.as_str())
    .bind(article_id)
    .bind(retracted_on)
    .bind(place.msg_data_id.as_deref())
    .bind(message_index(place))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One article's figures for the index.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArticleRow {
    pub account: String,
    pub published_on: NaiveDate,
    pub headline: bool,
    pub reads: i64,
    pub zaikan: i64,
    pub likes: i64,
    pub shares: i64,
}

/// The statement of [`published_between`] (`$1`..`$2` the days, `$3` the accounts,
/// `$4` whether announced articles without figures count);
/// public so a test can check its plan.
pub fn published_between_sql() -> String {
    format!(
        "SELECT f.account, f.published_on, f.headline, f.reads, f.zaikan, f.likes, f.shares
           FROM article_figures f
          WHERE f.published_on BETWEEN $1 AND $2
            AND (f.entered_by <> ''
                 OR ($4::boolean AND NOT {PULLED}
                     AND (f.msg_data_id IS NOT NULL OR f.freepublished IS TRUE)))
            AND ($3::text[] IS NULL OR f.account = ANY($3))
            AND {NOT_RETRACTED_BEFORE_DAY_7}
            AND NOT (f.msg_data_id IS NOT NULL AND NOT {PULLED}
                     AND ((f.message_index IS NOT NULL
                           AND EXISTS (
                               SELECT 1 FROM article_figures d
                                WHERE d.account = f.account
                                  AND d.article_id = f.msg_data_id || '_' || f.message_index
                                  AND {pulled}))
                          OR (f.message_index IS NULL
                              AND EXISTS (
                                  SELECT 1 FROM article_figures d
                                   WHERE d.account = f.account
                                     AND regexp_replace(d.article_id, '_[0-9]+$', '')
                                         = f.msg_data_id
                                     AND d.article_id ~ '_[0-9]+$'
                                     AND {pulled}))))
          ORDER BY f.account",
        pulled = "(d.pulled_at IS NOT NULL OR d.entered_by = 'datacube')",
    )
}

/// Which rows of `article_figures f` stand for an article not retracted before its
/// day-7 figures (within 7 days of its day): the row itself, and for the datacube's
/// row of an article (`{msg_data_id}_{index}`) the CONTENT row carrying the
/// retraction, matched by `{msg_data_id}_{message_index}`. A CONTENT row announced
/// before its place was kept (`message_index` NULL) is one article of its message
/// whose place is not known (content-svc deletes an article of a message by its place,
/// WeChat's `article_idx`, never the whole message): it is matched to the datacube's
/// row of its message as the move of figures entered by hand matches it
/// (`store::reach::store_chunk`), the headline to index 1, another article by its
/// title; matched to every row of its message, it took the articles still up out of
/// the WCI with it. One with neither a title nor the headline flag (a legacy
/// retraction-only row: its publication never announced) cannot be told apart so and
/// still speaks for every row of its message, as before: matched to none, the
/// retracted article's datacube row counted again. A retraction-only row is dated by
/// its retraction and is left out too.
const NOT_RETRACTED_BEFORE_DAY_7: &str =
    "NOT (f.retracted_on IS NOT NULL AND f.retracted_on < f.published_on + 7)
            AND NOT (f.article_id ~ '_[0-9]+$'
                     AND (EXISTS (
                              SELECT 1 FROM article_figures c
                               WHERE c.account = f.account
                                 AND c.msg_data_id = regexp_replace(f.article_id, '_[0-9]+$', '')
                                 AND c.message_index::text
                                     = substring(f.article_id FROM '_([0-9]+)$')
                                 AND c.retracted_on < f.published_on + 7)
                          OR EXISTS (
                              SELECT 1 FROM article_figures c
                               WHERE c.account = f.account
                                 AND c.msg_data_id = regexp_replace(f.article_id, '_[0-9]+$', '')
                                 AND c.message_index IS NULL
                                 AND ((c.headline AND f.headline)
                                      OR (c.title <> '' AND c.title = f.title)
                                      OR (NOT c.headline AND c.title = ''))
                                 AND c.retracted_on < f.published_on + 7)))";

/// Which rows of `article_figures f` carry the datacube's reads and shares (pulled;
/// rows pulled before `pulled_at` existed still say `entered_by = 'datacube'`).
const PULLED: &str = "(f.pulled_at IS NOT NULL OR f.entered_by = 'datacube')";

/// Articles with figures (pulled or entered) published from `from` to `to`
/// (inclusive), of the accounts in `accounts` (`None`: every account). A row only
/// announced on CONTENT has no figures yet, and the datacube knows the same article
/// under its own id, so counting it would count the article twice. For the same
/// reason a row entered by hand under CONTENT's id does not count once the datacube
/// pulled the same article, the row `{msg_data_id}_{message_index}`: figures are
/// entered so while the account's pulls are stopped (a rotated AppSecret) or before
/// its first pull, and the pull that resumes or backfills brings the same articles
/// under its ids. Another article of the message keeps its entry until its own row
/// comes (the datacube leaves out an article of fewer than 3 events).
/// An article retracted before its day-7 figures (within 7 days of its day) does not
/// count, nor does the datacube's row of it, matched to the CONTENT row that carries
/// the retraction by `{msg_data_id}_{message_index}` (for a CONTENT row announced
/// before its place was kept, the headline to index 1 and another article by its
/// title, and every row of its message for one with neither, a retraction-only row):
/// a deleted article kept lifting O, A, P.
/// A row
/// announced before its place was kept (`message_index` NULL) gives way to any
/// pulled row of its message, as before. The pulled row is looked up by id, whatever
/// its day: content-svc dates a publication recorded without its time by when it was
/// recorded, days after the send the datacube dates its row by, so a match within a
/// window of days counted the article in both periods. Each lookup is an index probe
/// of the few hand-entered CONTENT rows of the period (the primary key, or
/// `article_figures_message`, migration 0026), not a read of every article pulled.
///
/// With `unfigured` (the period is final: every figure that will come has come), an
/// article CONTENT announced that has none counts with zero figures: the datacube
/// leaves out an article of fewer than 3 events and never reports a freepublished
/// one, and leaving them out of n as well lifted the account's averages (or kept an
/// account of freepublished articles only 待统计 for good). Only one whose datacube
/// row could be told apart counts so (its WeChat message is known, or it was
/// freepublished): one announced without its message may be the datacube's row under
/// another id. One retracted counts as any article does: only one retracted before
/// its day-7 figures is left out; one up past them had its day 7.
pub async fn published_between(
    db: &PgPool,
    accounts: Option<&[String]>,
    from: NaiveDate,
    to: NaiveDate,
    unfigured: bool,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    sqlx::query_as(&published_between_sql())
        .bind(from)
        .bind(to)
        .bind(accounts)
        .bind(unfigured)
        .fetch_all(db)
        .await
}

/// The accounts with an article published from `from` to `to` (inclusive), with
/// figures or not, of the articles that count ([`published_between`]): one retracted
/// before its day-7 figures is out of the list, so an account whose only articles of
/// the period were is 无发文, not 待统计 for good.
pub async fn accounts_published_between(
    db: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT DISTINCT f.account FROM article_figures f
          WHERE f.published_on BETWEEN $1 AND $2 AND {NOT_RETRACTED_BEFORE_DAY_7}"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Whether the datacube's article `id` of `account` (SQL expressions: a row's
/// `{msg_data_id}_{index}`) is one CONTENT announced, whose CONTENT row then speaks for
/// it: it carries the same day and the retraction, which names content-svc's id only.
/// A CONTENT row that knows its place in the message (`message_index`) speaks for the
/// datacube's row of that place alone, so a retracted article's own row goes and its
/// siblings' stay unless their CONTENT rows say otherwise; one announced before the
/// place was kept (`message_index` NULL) speaks for every row of its message, as it
/// did before migration 0022. The CONTENT ids are read once (uncorrelated, hashed
/// `IN`s): correlated per row, one account of 2,200 rows took 540 ms, now 30 ms for 50
/// such accounts. `scope` narrows the CONTENT rows read (`c`): the one account a
/// statement asks about, or `TRUE` for every account. Not by day: the last update has
/// no lower bound, and a summary's first day in its 31-day window is not the day an
/// article read for weeks was sent.
fn announced_on_content(account: &str, id: &str, scope: &str) -> String {
    format!(
        "(({account}, {id}) IN (
              SELECT c.account, c.msg_data_id || '_' || c.message_index FROM article_figures c
               WHERE c.msg_data_id IS NOT NULL AND c.message_index IS NOT NULL AND {scope})
          OR ({account}, regexp_replace({id}, '_[0-9]+$', '')) IN (
              SELECT c.account, c.msg_data_id FROM article_figures c
               WHERE c.msg_data_id IS NOT NULL AND c.message_index IS NULL AND {scope}))"
    )
}

/// Which rows of `article_figures f` stand for an article still up at the end of `$1`:
/// not retracted by then, and not the datacube's row (`{msg_data_id}_{index}`) of an
/// article CONTENT announced ([`announced_on_content`]): a retraction names
/// content-svc's id only, so the datacube's row of a retracted article would keep it
/// the last update; CONTENT's row carries the same day and its retraction. `scope` as
/// [`announced_on_content`]'s.
fn still_up(scope: &str) -> String {
    format!(
        "f.published_on <= $1
         AND (f.retracted_on IS NULL OR f.retracted_on > $1)
         AND NOT (f.msg_data_id IS NULL AND f.article_id ~ '_[0-9]+$'
                  AND {announced})",
        announced = announced_on_content("f.account", "f.article_id", scope),
    )
}

/// Each article's first day in the datacube's daily article summary
/// (`getarticlesummary`, pulled the morning after: the day it was sent, as
/// `figures::KnownArticle::summary_day` reads it), on or before `$1`, as rows
/// `(account, day)`; `metric` names the parameter holding the summary's metric. An
/// account that publishes outside content-svc announces nothing on CONTENT, and its
/// articles reach `article_figures` only with the day-7 pull: without these its last
/// update lagged a week, and the update-gap alarm fired on a gap an article had closed
/// days before. Only days the day-7 pull has not reached count (those it reached have
/// their articles' rows, with the datacube's own day), read over the 31 days before
/// `$1` (an index range, not every summary ever pulled; a pull further behind is a
/// failing one, 数据不全), and the articles CONTENT announced are left out, as in
/// [`still_up`]: CONTENT's rows carry their day and their retractions. The ids are
/// matched on the few rows left (`OFFSET 0` keeps the planner from running the
/// pattern on every row first). `scope` as [`announced_on_content`]'s.
fn summarised(metric: &str, scope: &str) -> String {
    format!(
        "(SELECT u.account, u.day FROM (
             SELECT t.account, t.key, t.day FROM (
                 SELECT s.account, s.key, min(s.day) AS day FROM daily_counts s
                  WHERE s.metric = {metric} AND s.day <= $1 AND s.day > $1::date - 31
                  GROUP BY s.account, s.key) t
               LEFT JOIN datacube_progress p
                 ON p.account = t.account AND p.api = 'getarticletotal'
              WHERE p.last_day IS NULL OR t.day > p.last_day
             OFFSET 0) u
          WHERE NOT {announced})",
        announced = announced_on_content("u.account", "u.key", scope),
    )
}

/// The latest day `account` published on, on or before `day`, of the articles still
/// up at the end of `day`: a retracted article is gone from the account, and an
/// inspector sees nothing of it. An article the daily summary reported counts from the
/// day it was sent, before its day-7 pull (`summarised`).
pub async fn last_published_on(
    db: &PgPool,
    account: &AccountId,
    day: NaiveDate,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT GREATEST(
             (SELECT max(f.published_on) FROM article_figures f
               WHERE f.account = $2 AND {still_up}),
             (SELECT max(s.day) FROM {summary} s WHERE s.account = $2))",
        summary = summarised("$3", "c.account = $2"),
        still_up = still_up("c.account = $2"),
    ))
    .bind(day)
    .bind(account.as_str())
    .bind(Metric::WxArticleReads.as_str())
    .fetch_one(db)
    .await
}

/// The statement of [`known_accounts`] (`$1` since, `$2` the followers metric); public so
/// a test can check its plan.
pub const KNOWN_ACCOUNTS_SQL: &str = "SELECT account FROM account_inbound
     UNION SELECT account FROM article_figures
     UNION SELECT account FROM ticket_accounts
     UNION SELECT account FROM daily_counts WHERE day >= $1 AND metric = $2
     ORDER BY 1";

/// Every account this service has heard of: callbacks, tickets (`ticket_accounts`, not
/// a scan of every ticket), articles, or followers counted by the datacube since `since`
/// (an account that never publishes and whose followers never write is the 僵尸
/// account inspection looks for).
pub async fn known_accounts(db: &PgPool, since: NaiveDate) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(KNOWN_ACCOUNTS_SQL)
        .bind(since)
        .bind(Metric::WxFollowers.as_str())
        .fetch_all(db)
        .await
}

/// Of `accounts`, those that were not in the install by `day`: this service first
/// heard of them after it (no counter, callbacks, tickets, the datacube's figures and
/// its backfill included, and no article on or before it), and the install did not
/// name them by then (`install_accounts`, [`crate::store::install::record_named`]). An
/// account added to the install later did not exist here then, and is no 无发文 of
/// that period; one the install named stays in the periods from the day it was named,
/// when it is first heard of as before (a final list does not change). An account
/// neither heard of nor recorded is in none of them. Each account's first day is an
/// index lookup (`daily_counts`, `article_figures` and `install_accounts` all lead
/// with the account).
pub async fn first_seen_after(
    db: &PgPool,
    accounts: &[String],
    day: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT k.account FROM unnest($1::text[]) AS k(account)
          WHERE LEAST((SELECT min(d.day) FROM daily_counts d WHERE d.account = k.account),
                      (SELECT min(f.published_on) FROM article_figures f
                        WHERE f.account = k.account),
                      (SELECT i.named_on FROM install_accounts i
                        WHERE i.account = k.account)) > $2",
    )
    .bind(accounts)
    .bind(day)
    .fetch_all(db)
    .await
}

/// Of `accounts`, those this service last heard of before `day`: no counter
/// (callbacks, tickets, the datacube's figures) and no article on or after it, the
/// mirror of [`first_seen_after`]. An account taken out of the install goes silent;
/// so may one still in it (no datacube, followers who never write), which is why the
/// accounts `WECHAT_ACCOUNTS` names are exempt (`domain::install`). An account the
/// service never counted anything of is not among them.
pub async fn last_seen_before(
    db: &PgPool,
    accounts: &[String],
    day: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT k.account FROM unnest($1::text[]) AS k(account)
          WHERE GREATEST((SELECT max(d.day) FROM daily_counts d WHERE d.account = k.account),
                         (SELECT max(f.published_on) FROM article_figures f
                           WHERE f.account = k.account)) < $2",
    )
    .bind(accounts)
    .bind(day)
    .fetch_all(db)
    .await
}

/// Accounts whose followers the datacube counted since `since`.
pub async fn datacube_accounts(db: &PgPool, since: NaiveDate) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT account FROM daily_counts WHERE day >= $1 AND metric = $2")
        .bind(since)
        .bind(Metric::WxFollowers.as_str())
        .fetch_all(db)
        .await
}

/// Every account with articles, and the latest day it published on (on or before `day`,
/// of the articles not retracted by then, and the daily summary's, as
/// [`last_published_on`]).
pub async fn last_published_by_account(
    db: &PgPool,
    day: NaiveDate,
) -> Result<Vec<(String, Option<NaiveDate>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT x.account, max(x.day) FROM (
             SELECT f.account, max(f.published_on) FILTER (WHERE {still_up}) AS day
               FROM article_figures f GROUP BY f.account
             UNION ALL
             SELECT s.account, s.day FROM {summary} s) x
          GROUP BY x.account",
        summary = summarised("$2", "TRUE"),
        still_up = still_up("TRUE"),
    ))
    .bind(day)
    .bind(Metric::WxArticleReads.as_str())
    .fetch_all(db)
    .await
}

/// The accounts that sent callbacks.
pub async fn inbound_accounts(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT account FROM account_inbound")
        .fetch_all(db)
        .await
}
