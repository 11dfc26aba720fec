//! The search index: one row per directory service or published article, its
//! words pre-segmented (see migrations/0005_search.sql), and a narrow copy of each
//! enabled one's title and keywords per account, kept in step by a trigger
//! (migrations/0009_search_headlines.sql).

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
        "INSERT INTO search_documents (kind, ref_id, accounts, category, title, summary, url, enabled, document, headline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                 setweight(to_tsvector('simple', $9), 'A')
              || setweight(to_tsvector('simple', $10), 'B')
              || setweight(to_tsvector('simple', $11), 'D'),
                 setweight(to_tsvector('simple', $9), 'A')
              || setweight(to_tsvector('simple', $10), 'B'))
         ON CONFLICT (kind, ref_id) DO UPDATE SET
             accounts = EXCLUDED.accounts, category = EXCLUDED.category, title = EXCLUDED.title,
             summary = EXCLUDED.summary, url = EXCLUDED.url, enabled = EXCLUDED.enabled,
             document = EXCLUDED.document, headline = EXCLUDED.headline",
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

/// Adds many new documents in one statement (a bulk load: the search benchmark, a
/// re-index); each `document` is built by the same expression as [`upsert`]'s.
pub async fn insert_many(
    tx: &mut Transaction<'_, Postgres>,
    docs: &[IndexDoc<'_>],
) -> Result<u64, sqlx::Error> {
    let column = |f: fn(&IndexDoc<'_>) -> String| docs.iter().map(f).collect::<Vec<String>>();
    let accounts: Vec<String> = docs.iter().map(|d| d.accounts.join(",")).collect();
    let done = sqlx::query(
        "INSERT INTO search_documents (kind, ref_id, accounts, category, title, summary, url, enabled, document, headline)
         SELECT kind, ref_id, string_to_array(accounts, ','), category, title, summary, url, enabled,
                setweight(to_tsvector('simple', title_words), 'A')
             || setweight(to_tsvector('simple', keyword_words), 'B')
             || setweight(to_tsvector('simple', body_words), 'D'),
                setweight(to_tsvector('simple', title_words), 'A')
             || setweight(to_tsvector('simple', keyword_words), 'B')
           FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::bool[], $9::text[], $10::text[], $11::text[])
                AS d(kind, ref_id, accounts, category, title, summary, url, enabled,
                     title_words, keyword_words, body_words)",
    )
    .bind(column(|d| d.kind.to_owned()))
    .bind(docs.iter().map(|d| d.ref_id).collect::<Vec<_>>())
    .bind(accounts)
    .bind(column(|d| d.category.to_owned()))
    .bind(column(|d| d.title.to_owned()))
    .bind(column(|d| d.summary.to_owned()))
    .bind(column(|d| d.url.to_owned()))
    .bind(docs.iter().map(|d| d.enabled).collect::<Vec<_>>())
    .bind(column(|d| d.title_words.clone()))
    .bind(column(|d| d.keyword_words.clone()))
    .bind(column(|d| d.body_words.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
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

/// [`search`]'s statement ($1 the tsquery a hit must match, $2 the tsquery it is
/// ranked by, $3 account, $4 kind, $5 category, $6 limit); public so the search
/// benchmark can EXPLAIN it.
///
/// Two tiers. Documents whose title or keywords match are all ranked and come
/// first, so a title or keyword hit outranks any body hit; they are found and ranked
/// in `search_headlines` (migration 0009), a narrow copy of the headline, and only
/// the best `limit` are fetched from `search_documents`. Only when they are fewer than
/// the limit are body matches added, ranked among at most 200 of them: a common word
/// matches most of an archive, and ranking each whole-document tsvector is what made
/// a query take seconds. Which body matches are looked at is then arbitrary — they
/// fill places that no title or keyword earned.
pub const SEARCH_SQL: &str = "WITH q AS MATERIALIZED
         (SELECT to_tsquery('simple', $1) AS m, to_tsquery('simple', $2) AS r),
        head AS (
         SELECT h.kind, h.ref_id, h.title,
                1::real + ts_rank('{0.1, 0.2, 0.4, 1.0}', h.headline, q.r) AS rank
           FROM search_headlines h, q
          WHERE h.headline @@ q.m
            AND h.account = $3
            AND ($4::text IS NULL OR h.kind = $4)
            AND ($5::text IS NULL OR h.category = $5)
          ORDER BY rank DESC, h.title, h.ref_id
          LIMIT $6),
        body AS (
         SELECT kind, ref_id, title, ts_rank('{0.1, 0.2, 0.4, 1.0}', document, q.r) AS rank
           FROM (SELECT d.kind, d.ref_id, d.title, d.document
                   FROM search_documents d, q
                  WHERE (SELECT count(*) FROM head) < $6
                    AND d.document @@ q.m
                    AND NOT d.headline @@ q.m
                    AND d.enabled
                    AND d.accounts @> ARRAY[$3::text]
                    AND ($4::text IS NULL OR d.kind = $4)
                    AND ($5::text IS NULL OR d.category = $5)
                  LIMIT 200) AS candidates, q),
        best AS (
         SELECT * FROM head
         UNION ALL
         SELECT * FROM body
         ORDER BY rank DESC, title, ref_id
         LIMIT $6)
 SELECT d.kind, d.ref_id, d.category, d.title, d.summary, d.url, best.rank
   FROM best JOIN search_documents d ON d.kind = best.kind AND d.ref_id = best.ref_id
  ORDER BY best.rank DESC, best.title, best.ref_id";

/// The enabled documents an account shows matching `matching`, best first by
/// `ranking`: title and keyword matches (ts_rank, weights B 0.4, A 1.0), then body
/// matches; ties by title.
pub async fn search(
    db: &PgPool,
    matching: &str,
    ranking: &str,
    filter: &SearchFilter<'_>,
) -> Result<Vec<HitRow>, sqlx::Error> {
    // Planned with each query's own values, never as a cached generic plan: with the
    // values, `$4 IS NULL OR kind = $4` becomes `kind = 'service'` and the body tier
    // reads only services (an index on the kind or category ANDed with the body's
    // GIN), where a generic plan rechecked every article holding the word (8,900
    // pages, 73 ms for 营业执照 among services against 7 ms; docs/benchmarks.md).
    sqlx::query_as(SEARCH_SQL)
        .persistent(false)
        .bind(matching)
        .bind(ranking)
        .bind(filter.account)
        .bind(filter.kind)
        .bind(filter.category)
        .bind(filter.limit)
        .fetch_all(db)
        .await
}
