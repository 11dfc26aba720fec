//! Directory-entry queries.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

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
