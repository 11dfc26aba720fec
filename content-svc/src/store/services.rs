//! Directory services (the full row), categories and the directory's audit trail.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::service::ServiceDraft;

/// A service as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceRow {
    pub id: uuid::Uuid,
    pub account: String,
    pub category: String,
    pub name: String,
    pub department: String,
    pub description: String,
    pub how_to_apply: String,
    pub url: String,
    pub miniprogram_appid: String,
    pub miniprogram_path: String,
    pub hours: String,
    pub phone: String,
    pub keywords: Vec<String>,
    pub synonyms: Vec<String>,
    pub also_shown_on: Vec<String>,
    pub enabled: bool,
    pub position: i32,
    pub updated_at: DateTime<Utc>,
}

/// A category as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryRow {
    pub code: String,
    pub name: String,
    pub gbt39666_code: Option<String>,
}

const COLUMNS: &str = "id, account, category, name, department, description, how_to_apply, url,
    miniprogram_appid, miniprogram_path, hours, phone, keywords, synonyms, also_shown_on,
    enabled, position, updated_at";

/// Every category in display order.
pub async fn categories(db: &PgPool) -> Result<Vec<CategoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT code, name, gbt39666_code FROM directory_categories ORDER BY position, code",
    )
    .fetch_all(db)
    .await
}

/// Whether a category code exists.
pub async fn category_exists(
    tx: &mut Transaction<'_, Postgres>,
    code: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM directory_categories WHERE code = $1)")
        .bind(code)
        .fetch_one(&mut **tx)
        .await
}

/// One service, locked for the transaction's change.
pub async fn get_for_update(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM directory_entries WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// One service.
pub async fn get(db: &PgPool, id: uuid::Uuid) -> Result<Option<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM directory_entries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Up to `limit` services of every account after `after`, in id order.
pub async fn page(
    db: impl sqlx::PgExecutor<'_>,
    after: Option<uuid::Uuid>,
    limit: i64,
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM directory_entries
          WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

fn accounts(draft: &ServiceDraft) -> Vec<String> {
    draft
        .also_shown_on
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}

/// Inserts a service under `id`, or replaces the editable fields of the one with
/// that id (owner account and department stay); returns the row as saved.
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
    draft: &ServiceDraft,
) -> Result<ServiceRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO directory_entries (id, account, category, name, department, description,
             how_to_apply, url, miniprogram_appid, miniprogram_path, hours, phone, keywords,
             synonyms, also_shown_on, enabled, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id) DO UPDATE SET
             category = EXCLUDED.category, name = EXCLUDED.name,
             description = EXCLUDED.description, how_to_apply = EXCLUDED.how_to_apply,
             url = EXCLUDED.url, miniprogram_appid = EXCLUDED.miniprogram_appid,
             miniprogram_path = EXCLUDED.miniprogram_path, hours = EXCLUDED.hours,
             phone = EXCLUDED.phone, keywords = EXCLUDED.keywords,
             synonyms = EXCLUDED.synonyms, also_shown_on = EXCLUDED.also_shown_on,
             enabled = EXCLUDED.enabled, position = EXCLUDED.position, updated_at = now()
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(draft.account.as_str())
    .bind(draft.category.as_str())
    .bind(&draft.name)
    .bind(&draft.department)
    .bind(&draft.description)
    .bind(&draft.how_to_apply)
    .bind(&draft.url)
    .bind(&draft.miniprogram_appid)
    .bind(&draft.miniprogram_path)
    .bind(&draft.hours)
    .bind(&draft.phone)
    .bind(&draft.keywords)
    .bind(&draft.synonyms)
    .bind(accounts(draft))
    .bind(draft.enabled)
    .bind(draft.position)
    .fetch_one(&mut **tx)
    .await
}

/// Deletes a service.
pub async fn delete(tx: &mut Transaction<'_, Postgres>, id: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM directory_entries WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Appends to the directory's audit trail, with the row as it is now (call it
/// before a delete so the snapshot is the deleted service).
pub async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
    action: &str,
    actor: &str,
    department: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO directory_audit (service_id, action, actor, department, snapshot)
         SELECT $1, $2, $3, $4, to_jsonb(d) FROM directory_entries d WHERE d.id = $1",
    )
    .bind(id)
    .bind(action)
    .bind(actor)
    .bind(department)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many services the directory holds (the seed runs only on an empty one).
pub async fn count(db: impl sqlx::PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM directory_entries")
        .fetch_one(db)
        .await
}

/// Serialises the directory's seeding between replicas, for the transaction.
pub async fn lock_seed(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-directory-seed'))")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The name of category `code` (the hall's label), none for a code not in the table.
pub async fn category_name(
    db: impl sqlx::PgExecutor<'_>,
    code: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM directory_categories WHERE code = $1")
        .bind(code)
        .fetch_optional(db)
        .await
}

/// Every service name and department: words the segmenter must keep whole.
pub async fn dictionary_words(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name FROM directory_entries UNION SELECT department FROM directory_entries
         UNION SELECT name FROM directory_categories",
    )
    .fetch_all(db)
    .await
}
