//! Directory-entry queries.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use super::services::ServiceRow;
use crate::domain::ServiceListing;

/// A directory entry as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DirectoryEntryRow {
    pub id: uuid::Uuid,
    pub account: String,
    pub category: String,
    pub name: String,
    pub url: String,
    pub description: String,
    pub department: String,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

/// Lists the enabled entries an account shows (its own and those shared with it)
/// in display order: by category, then position, then name.
#[tracing::instrument(skip_all, fields(account = %listing.account, category = ?listing.category))]
pub async fn list(
    db: &PgPool,
    listing: &ServiceListing,
) -> Result<Vec<DirectoryEntryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account, category, name, url, description, department, position, created_at
           FROM directory_entries
          WHERE (account = $1 OR $1 = ANY (also_shown_on))
            AND enabled
            AND ($2::text IS NULL OR category = $2)
          ORDER BY category, position, name, id",
    )
    .bind(listing.account.as_str())
    .bind(listing.category.as_ref().map(|c| c.as_str()))
    .fetch_all(db)
    .await
}

/// Serialises imports into one account, so two imports of the same file cannot
/// both create a service of the same name (the table has no unique name: an admin
/// may keep two on purpose).
pub async fn lock_account_for_import(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content.directory_import'), hashtext($1))")
        .bind(account)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The services an account owns under any of `names`, locked for the import's change.
pub async fn owned_by_names_for_update(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    names: &[String],
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account, category, name, department, description, how_to_apply, url,
                miniprogram_appid, miniprogram_path, hours, phone, keywords, synonyms,
                also_shown_on, enabled, position, updated_at
           FROM directory_entries
          WHERE account = $1 AND name = ANY ($2)
          ORDER BY id
            FOR UPDATE",
    )
    .bind(account)
    .bind(names)
    .fetch_all(&mut **tx)
    .await
}
