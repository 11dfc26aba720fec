//! The search index: one row per directory service or published article, its
//! words pre-segmented (see migrations/0005_search.sql).

use sqlx::{PgPool, Postgres, Transaction};

/// A document to index; the `*_words` are space-separated segmented words.
#[derive(Debug, Clone)]
pub struct IndexDoc<'a> {
    pub kind: &'a str,
    pub ref_id: uuid::Uuid,
    pub accounts: Vec<String>,
    pub category: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
    pub url: &'a str,
    pub enabled: bool,
    pub title_words: String,
    pub keyword_words: String,
    pub body_words: String,
}

/// A hit as ranked by PostgreSQL.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HitRow {
    pub kind: String,
    pub ref_id: uuid::Uuid,
    pub category: String,
    pub title: String,
    pub summary: String,
    pub url: String,
    pub rank: f32,
}

/// Filters of a search.
#[derive(Debug, Clone)]
pub struct SearchFilter<'a> {
    pub account: &'a str,
    pub kind: Option<&'a str>,
    pub category: Option<&'a str>,
    pub limit: i64,
}

/// Adds or replaces a document.
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    doc: &IndexDoc<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO search_documents (kind, ref_id, accounts, category, title, summary, url, enabled, document)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                 setweight(to_tsvector('simple', $9), 'A')
              || setweight(to_tsvector('simple', $10), 'B')
              || setweight(to_tsvector('simple', $11), 'D'))
         ON CONFLICT (kind, ref_id) DO UPDATE SET
             accounts = EXCLUDED.accounts, category = EXCLUDED.category, title = EXCLUDED.title,
             summary = EXCLUDED.summary, url = EXCLUDED.url, enabled = EXCLUDED.enabled,
             document = EXCLUDED.document",
    )
    .bind(doc.kind)
    .bind(doc.ref_id)
    .bind(&doc.accounts)
    .bind(doc.category)
    .bind(doc.title)
    .bind(doc.summary)
    .bind(doc.url)
    .bind(doc.enabled)
    .bind(&doc.title_words)
    .bind(&doc.keyword_words)
    .bind(&doc.body_words)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a document.
pub async fn remove(
    tx: &mut Transaction<'_, Postgres>,
    kind: &str,
    ref_id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM search_documents WHERE kind = $1 AND ref_id = $2")
        .bind(kind)
        .bind(ref_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The enabled documents an account shows matching `tsquery`, best first: ts_rank
/// with weights D 0.1, C 0.2, B 0.4, A 1.0, so title and keyword hits outrank body
/// hits; ties by title.
pub async fn search(
    db: &PgPool,
    tsquery: &str,
    filter: &SearchFilter<'_>,
) -> Result<Vec<HitRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, ref_id, category, title, summary, url,
                ts_rank('{0.1, 0.2, 0.4, 1.0}', document, q) AS rank
           FROM search_documents, to_tsquery('simple', $1) AS q
          WHERE document @@ q
            AND enabled
            AND accounts @> ARRAY[$2::text]
            AND ($3::text IS NULL OR kind = $3)
            AND ($4::text IS NULL OR category = $4)
          ORDER BY rank DESC, title, ref_id
          LIMIT $5",
    )
    .bind(tsquery)
    .bind(filter.account)
    .bind(filter.kind)
    .bind(filter.category)
    .bind(filter.limit)
    .fetch_all(db)
    .await
}
