//! Uploaded images and what WeChat made of them.

use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// An uploaded image as stored (without its bytes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub id: Uuid,
    pub account: String,
    pub department: String,
    pub filename: String,
    pub content_type: String,
    pub sha256: String,
    pub uploaded_by: String,
    pub wechat_url: Option<String>,
    pub material_media_id: Option<String>,
}

const COLUMNS: &str = "id, account, department, filename, content_type, sha256, uploaded_by,
    wechat_url, material_media_id";

/// What a new image is.
pub struct NewImage<'a> {
    pub id: Uuid,
    pub account: &'a str,
    pub department: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub uploaded_by: &'a str,
}

/// Stores an uploaded image (its digest computed by PostgreSQL).
pub async fn insert(db: impl PgExecutor<'_>, new: &NewImage<'_>) -> Result<ImageRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO article_images (id, account, department, filename, content_type, bytes, sha256, uploaded_by)
         VALUES ($1, $2, $3, $4, $5, $6, encode(sha256($6), 'hex'), $7)
         RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.account)
    .bind(new.department)
    .bind(new.filename)
    .bind(new.content_type)
    .bind(new.bytes)
    .bind(new.uploaded_by)
    .fetch_one(db)
    .await
}

/// Reads images by id (those that exist).
pub async fn get_many(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM article_images WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// An image's bytes.
pub async fn bytes(db: &PgPool, id: Uuid) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar("SELECT bytes FROM article_images WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

/// Keeps the URL `media/uploadimg` gave the image, unless another send kept one
/// first; answers the URL kept (the first), so every draft refers to one copy.
pub async fn set_wechat_url(db: &PgPool, id: Uuid, url: &str) -> Result<String, sqlx::Error> {
    first_kept(db, "wechat_url", id, url).await
}

/// Keeps the media id `material/add_material` gave the image, unless another
/// send kept one first (compare-and-set); answers the media id kept. A caller
/// answered another's must delete its own material: each takes a place in the
/// account's quota.
pub async fn set_material(db: &PgPool, id: Uuid, media_id: &str) -> Result<String, sqlx::Error> {
    first_kept(db, "material_media_id", id, media_id).await
}

/// Sets `column` of image `id` to `value` if it is unset and answers what the
/// column holds after it. Two statements, not one: an UPDATE … WHERE column IS
/// NULL that waited on a concurrent one finds the column set and changes nothing,
/// while a SELECT in the same statement reads the row as it was when the
/// statement began (unset); a second statement reads what the other committed.
async fn first_kept(
    db: &PgPool,
    column: &'static str,
    id: Uuid,
    value: &str,
) -> Result<String, sqlx::Error> {
    let set: Option<String> = sqlx::query_scalar(&format!(
        "UPDATE article_images SET {column} = $2 WHERE id = $1 AND {column} IS NULL
         RETURNING {column}"
    ))
    .bind(id)
    .bind(value)
    .fetch_optional(db)
    .await?;
    if let Some(set) = set {
        return Ok(set);
    }
    sqlx::query_scalar(&format!(
        "SELECT {column} FROM article_images WHERE id = $1 AND {column} IS NOT NULL"
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// The accounts of the images that exist among `ids`, read in the transaction that
/// saves the article referring to them.
pub async fn accounts_of(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, account FROM article_images WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
}
