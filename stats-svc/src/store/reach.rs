//! The datacube job's state: progress per account and API, the figures it pulls
//! (official counters in `daily_counts`, replaced rather than added; article day-7
//! figures in `article_figures`), and the lease that lets one replica run it.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::AccountId;
use crate::domain::rollup::Tally;

/// Takes or renews the lease of `job` for `holder` until `until`; false when another
/// holder's lease is still running.
pub async fn take_lease(
    db: &PgPool,
    job: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "INSERT INTO job_leases (job, holder, expires_at) VALUES ($1, $2, $4)
         ON CONFLICT (job) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
          WHERE job_leases.holder = EXCLUDED.holder OR job_leases.expires_at < $3",
    )
    .bind(job)
    .bind(holder)
    .bind(now)
    .bind(until)
    .execute(db)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Gives the lease back, so the next run need not wait for it to expire.
pub async fn release_lease(db: &PgPool, job: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2")
        .bind(job)
        .bind(holder)
        .execute(db)
        .await?;
    Ok(())
}

/// The last day pulled of `api` for `account`.
pub async fn progress(
    db: &PgPool,
    account: &AccountId,
    api: &str,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_day FROM datacube_progress WHERE account = $1 AND api = $2")
        .bind(account.as_str())
        .bind(api)
        .fetch_optional(db)
        .await
}

/// Stores one pulled chunk: its counters replace what an earlier pull stored for the
/// same day, and the progress moves to `last_day`, in one transaction. An article
/// that would take the place of figures entered by hand under CONTENT's id
/// ([`gives_way`]) while its day or theirs is before `open_from` (a month whose list
/// is final) is left out: the ranking would count the pulled row instead of the
/// entry, with the 在看 and likes moved onto it, and change a list already reported
/// final. The ids left out are returned (the entry keeps counting).
pub async fn store_chunk(
    db: &PgPool,
    account: &AccountId,
    api: &str,
    last_day: NaiveDate,
    values: &[Tally],
    articles: &[PulledArticle],
    open_from: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut left_out = Vec::new();
    for t in values {
        sqlx::query(
            "INSERT INTO daily_counts (account, day, metric, key, value) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account, day, metric, key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(t.account.as_str())
        .bind(t.day)
        .bind(t.metric.as_str())
        .bind(&t.key)
        .bind(t.value)
        .execute(&mut *tx)
        .await?;
    }
    for a in articles {
        // The entered row's day too: content-svc may date it days after the datacube.
        let final_entry: Option<NaiveDate> = sqlx::query_scalar(&format!(
            "SELECT h.published_on FROM article_figures h
              WHERE {gives_way} AND (h.published_on < $3 OR $4 < $3)
              LIMIT 1",
            gives_way = gives_way("h"),
        ))
        .bind(account.as_str())
        .bind(&a.msgid)
        .bind(open_from)
        .bind(a.published_on)
        .fetch_optional(&mut *tx)
        .await?;
        if final_entry.is_some() {
            left_out.push(a.msgid.clone());
            continue;
        }
        // Likes and 在看 are not in the API: figures entered by hand are kept, and
        // `pulled_at` marks the reads and shares as the datacube's (a hand entry never
        // replaces them, domain::figures). The datacube knows the article's day and
        // place in its message (`_1`: the headline) for certain, so they replace what
        // an entry of 在看 and likes before the day-7 pull took from the daily
        // summary; an entered title stays. 在看 and likes entered before the reads were
        // known are capped at them: each needs a reader (domain::figures), and the
        // entry as given stays in `article_figure_entries`.
        sqlx::query(
            "INSERT INTO article_figures (account, article_id, title, published_on, headline,
                 reads, shares, entered_by, pulled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'datacube', now())
             ON CONFLICT (account, article_id) DO UPDATE SET
                 reads = EXCLUDED.reads, shares = EXCLUDED.shares,
                 zaikan = LEAST(article_figures.zaikan, EXCLUDED.reads),
                 likes = LEAST(article_figures.likes, EXCLUDED.reads),
                 title = COALESCE(NULLIF(article_figures.title, ''), EXCLUDED.title),
                 published_on = EXCLUDED.published_on, headline = EXCLUDED.headline,
                 pulled_at = now(), updated_at = now()",
        )
        .bind(account.as_str())
        .bind(&a.msgid)
        .bind(&a.title)
        .bind(a.published_on)
        .bind(a.headline)
        .bind(a.reads)
        .bind(a.shares)
        .execute(&mut *tx)
        .await?;
        // 在看 and likes entered under CONTENT's id while the account was not pulled
        // (its pulls stopped, or before its first) move to the datacube's row, which
        // the ranking counts from now on instead (`store::articles::published_between`):
        // the article at the same place of the message (`message_index`); for a row
        // announced before its place was kept, the headline is index 1 and another
        // article of the message is known by its title. Capped at the pulled reads like
        // any entry; a row entered on its own keeps its.
        sqlx::query(
            "UPDATE article_figures d
                SET zaikan = LEAST(h.zaikan, d.reads), likes = LEAST(h.likes, d.reads),
                    updated_at = now()
               FROM article_figures h
              WHERE d.account = $1 AND d.article_id = $2 AND d.zaikan = 0 AND d.likes = 0
                AND h.account = d.account AND h.msg_data_id = regexp_replace($2, '_[0-9]+$', '')
                AND h.pulled_at IS NULL AND h.entered_by NOT IN ('', 'datacube')
                AND (h.zaikan > 0 OR h.likes > 0)
                AND (h.msg_data_id || '_' || h.message_index = $2
                     OR (h.message_index IS NULL AND (($3 AND h.headline) OR h.title = d.title)))",
        )
        .bind(account.as_str())
        .bind(&a.msgid)
        .bind(a.headline)
        .execute(&mut *tx)
        .await?;
    }
    // The first chunk's last day stays as `first_day` (a row from before migration
    // 0020 keeps none: its first day is not known).
    sqlx::query(
        "INSERT INTO datacube_progress (account, api, last_day, first_day) VALUES ($1, $2, $3, $3)
         ON CONFLICT (account, api) DO UPDATE SET last_day = GREATEST(datacube_progress.last_day, EXCLUDED.last_day)",
    )
    .bind(account.as_str())
    .bind(api)
    .bind(last_day)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(left_out)
}

/// Which rows `{h}` of `article_figures` are figures entered by hand under CONTENT's id
/// that give way in the ranking to the pulled row `$2` of account `$1`
/// (`store::articles::published_between`): the article at the same place of the
/// message, or any of its message for a row announced before its place was kept.
fn gives_way(h: &str) -> String {
    format!(
        "{h}.account = $1 AND {h}.msg_data_id = regexp_replace($2, '_[0-9]+$', '')
         AND $2 ~ '_[0-9]+$' AND {h}.pulled_at IS NULL
         AND {h}.entered_by NOT IN ('', 'datacube')
         AND ({h}.message_index IS NULL OR {h}.msg_data_id || '_' || {h}.message_index = $2)"
    )
}

/// How far one API's pull got for one account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Progress {
    pub account: String,
    pub api: String,
    /// The last day of its first chunk (migration 0020; `None` for a pull begun
    /// before it).
    pub first_day: Option<NaiveDate>,
    pub last_day: NaiveDate,
}

/// The progress of every API of the accounts in `accounts` (`None`: every account).
pub async fn progress_of(
    db: &PgPool,
    accounts: Option<&[String]>,
) -> Result<Vec<Progress>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account, api, first_day, last_day FROM datacube_progress
          WHERE $1::text[] IS NULL OR account = ANY($1)
          ORDER BY account, api",
    )
    .bind(accounts)
    .fetch_all(db)
    .await
}

/// An article's reach on its seventh day, from `getarticletotal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledArticle {
    /// `{msg_data_id}_{index}`.
    pub msgid: String,
    pub title: String,
    pub published_on: NaiveDate,
    /// Index 1 of its message.
    pub headline: bool,
    pub reads: i64,
    pub shares: i64,
}

/// Records that pulling `api` for `account` failed at `at` with `error`; the first
/// failure's time stays until the API succeeds again.
pub async fn record_failure(
    db: &PgPool,
    account: &AccountId,
    api: &str,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO datacube_failures (account, api, error, first_failed_at, last_failed_at, failures)
         VALUES ($1, $2, $3, $4, $4, 1)
         ON CONFLICT (account, api) DO UPDATE SET error = EXCLUDED.error,
             last_failed_at = EXCLUDED.last_failed_at,
             failures = datacube_failures.failures + 1",
    )
    .bind(account.as_str())
    .bind(api)
    .bind(error)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Clears the failure of `api` for `account`: a pull of it succeeded, or nothing of it
/// was due.
pub async fn clear_failure(db: &PgPool, account: &AccountId, api: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM datacube_failures WHERE account = $1 AND api = $2")
        .bind(account.as_str())
        .bind(api)
        .execute(db)
        .await?;
    Ok(())
}

/// Forgets the failures of accounts the job no longer pulls (taken out of
/// `WECHAT_ACCOUNTS`), so they do not stay failing for ever.
pub async fn forget_failures_except(db: &PgPool, accounts: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM datacube_failures WHERE NOT (account = ANY($1))")
        .bind(accounts)
        .execute(db)
        .await?;
    Ok(())
}

/// How many accounts have a failing datacube pull.
pub async fn failing_accounts(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(DISTINCT account) FROM datacube_failures")
        .fetch_one(db)
        .await
}

/// An account's failing datacube pull.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PullFailure {
    pub account: String,
    pub api: String,
    pub error: String,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub failures: i64,
    /// The last day of `api` pulled, if any.
    pub last_day: Option<NaiveDate>,
}

/// The failing pulls of the accounts in `accounts` (`None`: every account), with how
/// far each API got.
pub async fn failures(
    db: &PgPool,
    accounts: Option<&[String]>,
) -> Result<Vec<PullFailure>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.account, f.api, f.error, f.first_failed_at, f.last_failed_at, f.failures,
                p.last_day
           FROM datacube_failures f
           LEFT JOIN datacube_progress p ON p.account = f.account AND p.api = f.api
          WHERE $1::text[] IS NULL OR f.account = ANY($1)
          ORDER BY f.account, f.api",
    )
    .bind(accounts)
    .fetch_all(db)
    .await
}
