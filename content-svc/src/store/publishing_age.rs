//! How long the oldest article of each account has been in `publishing`: the
//! publishing-age job's one read (jobs/publishing_age.rs), on the partial index
//! `articles_publishing` (migration 0031).

use sqlx::PgExecutor;

/// Each account with an article in `publishing`, and the age in seconds (by the
/// database's clock) of its oldest: since its hand-over to WeChat. `updated_at` dates
/// the hand-over (`set_job`, or the move to `publishing` for a message's other
/// articles and for a send not yet handed over); nothing else writes it while an
/// article is `publishing`. Accounts with none are not listed.
pub async fn oldest_by_account(db: impl PgExecutor<'_>) -> Result<Vec<(String, f64)>, sqlx::Error> {
    // greatest(0, …): a row committed just after this statement's now() was taken.
    sqlx::query_as(
        "SELECT account, greatest(0, extract(epoch FROM now() - min(updated_at)))::float8
           FROM articles
          WHERE state = 'publishing'
          GROUP BY account",
    )
    .fetch_all(db)
    .await
}
