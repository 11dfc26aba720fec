//! The accounts the install named, and since when (`install_accounts`, migration 0028).

use chrono::NaiveDate;
use sqlx::PgPool;

/// Records that the install names `accounts` on `today` (an office day), keeping the
/// day an account was first recorded. The first start-up that finds nothing recorded
/// (the upgrade to migration 0028, a new install) records what the lists showed until
/// then instead: an account heard of from its first counter or article, one never
/// heard of from the start (`-infinity`: listed in every period, as before). Replicas
/// starting together record the same days; the first row stays.
pub async fn record_named(
    db: &PgPool,
    accounts: &[String],
    today: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO install_accounts (account, named_on)
         SELECT k.account,
                CASE WHEN EXISTS (SELECT 1 FROM install_accounts) THEN $2::date
                     ELSE COALESCE(
                         LEAST((SELECT min(d.day) FROM daily_counts d
                                 WHERE d.account = k.account),
                               (SELECT min(f.published_on) FROM article_figures f
                                 WHERE f.account = k.account)),
                         '-infinity'::date)
                END
           FROM unnest($1::text[]) AS k(account)
         ON CONFLICT (account) DO NOTHING",
    )
    .bind(accounts)
    .bind(today)
    .execute(db)
    .await?;
    Ok(())
}
