//! The search index: one row per directory service or published article, its
//! words pre-segmented (see migrations/0005_search.sql), and a narrow copy of each
//! enabled one's title and keywords per account, kept in step by a trigger
//! (migrations/0009_search_headlines.sql).

use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, Transaction};

pub use crate::domain::search::SearchFilter;
use crate::domain::search::fold;
use crate::domain::search_index::{DocKind, IndexedDoc};

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

/// Adds or replaces a document.
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    doc: &IndexDoc<'_>,
) -> Result<(), sqlx::Error> {
    lock_index_writes(tx).await?;
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
    lock_index_writes(tx).await?;
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
    lock_index_writes(tx).await?;
    sqlx::query("DELETE FROM search_documents WHERE kind = $1 AND ref_id = $2")
        .bind(kind)
        .bind(ref_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// [`search`]'s statement for `filter`'s kinds ($1 the tsquery a hit must match, $2
/// account, $3 category, $4 limit); public so the search benchmark can EXPLAIN it.
///
/// Three tiers, in order: the title matches; the title and keywords together match
/// (`search_headlines`, migration 0009); the whole document matches (body text).
/// Within a tier services come before articles (the directory answers "how do I
/// …"), then the newest first (ids are UUIDv7, so by creation). Each tier and kind
/// is an index read in that order: the btree `(account, kind, ref_id)` with the
/// tsvector as a filter when the words are common (通知: the first ten of 33,000
/// matches are among the newest thirty rows), the GIN index and a sort of the few
/// matches when they are rare; PostgreSQL picks by the words' statistics, so the
/// tsquery is written into each part rather than read from a CTE it cannot see
/// into. The `LIMIT` over the `UNION ALL` stops as soon as the limit is reached: a
/// later part is not read at all when earlier ones fill the places. A kind the
/// filter leaves out has no part at all (a part ruled out only by its condition was
/// still planned, once as a parallel scan whose workers took 20 ms to start).
pub fn search_sql(filter: &SearchFilter<'_>) -> String {
    let kinds: Vec<&str> = filter.kinds().iter().map(|k| k.as_str()).collect();
    let tiers = [
        (
            "3",
            "search_headlines h",
            "h.title_vector @@ to_tsquery('simple', $1)",
            "h.account = $2",
        ),
        (
            "2",
            "search_headlines h",
            "h.headline @@ to_tsquery('simple', $1) AND NOT h.title_vector @@ to_tsquery('simple', $1)",
            "h.account = $2",
        ),
        (
            "1",
            "search_documents h",
            "h.document @@ to_tsquery('simple', $1) AND NOT h.headline @@ to_tsquery('simple', $1)",
            "h.enabled AND h.accounts @> ARRAY[$2::text]",
        ),
    ];
    let mut parts = Vec::new();
    for (rank, table, matches, shown) in tiers {
        for kind in &kinds {
            parts.push(format!(
                "(SELECT h.kind, h.ref_id, {rank}::real AS rank FROM {table}
                   WHERE {matches} AND {shown} AND h.kind = '{kind}'
                     AND ($3::text IS NULL OR h.category = $3)
                   ORDER BY h.ref_id DESC LIMIT $4)"
            ));
        }
    }
    if parts.is_empty() {
        // Nothing can match (articles of one category); the statement still answers.
        parts.push(
            "(SELECT ''::text AS kind, NULL::uuid AS ref_id, 0::real AS rank WHERE false)"
                .to_owned(),
        );
    }
    format!(
        "WITH hits AS ({} LIMIT $4)
         SELECT d.kind, d.ref_id, d.category, d.title, d.summary, d.url, hits.rank
           FROM hits JOIN search_documents d ON d.kind = hits.kind AND d.ref_id = hits.ref_id
          ORDER BY hits.rank DESC, hits.kind DESC, hits.ref_id DESC",
        parts.join(" UNION ALL ")
    )
}

/// The enabled documents an account shows matching `matching`, best first: title
/// matches (rank 3), then title-and-keyword matches (2), then body matches (1);
/// within each, services first, then the newest.
pub async fn search(
    db: &PgPool,
    matching: &str,
    filter: &SearchFilter<'_>,
) -> Result<Vec<HitRow>, sqlx::Error> {
    // Planned with each query's own values, never as a cached generic plan: whether a
    // part reads the btree in order or the GIN index depends on how common the words
    // are (docs/benchmarks.md, "Search").
    sqlx::query_as(&search_sql(filter))
        .persistent(false)
        .bind(matching)
        .bind(filter.account)
        .bind(filter.category)
        .bind(filter.limit)
        .fetch_all(db)
        .await
}

/// At most this many hits for a one-character query: a character as common as 办
/// is in most titles, and such a query is a citizen's first keystroke, not a list.
pub const SINGLE_CHARACTER_LIMIT: i64 = 20;

/// The newest headlines of each kind (per account) a one-character query looks
/// through: no index word is one character, so the look reads rows, and a first
/// keystroke need not reach further back than this. Services are a few thousand.
pub const SINGLE_CHARACTER_SCAN: i64 = 20_000;

/// The score of [`single_character`]'s hits: above every stage's (1-9), as they
/// come before the stages' hits.
pub const SINGLE_CHARACTER_RANK: f32 = 10.0;

/// The enabled documents an account shows whose title, or whose category's label,
/// holds `character` (a one-character query, folded): services first, then newest,
/// at most the filter's limit, among the newest [`SINGLE_CHARACTER_SCAN`] of each
/// kind. Titles are matched in their folded words (the headline's title words, as
/// indexed: 車輛年檢 holds 车), labels folded here the same way.
pub async fn single_character(
    db: &PgPool,
    character: &str,
    filter: &SearchFilter<'_>,
) -> Result<Vec<HitRow>, sqlx::Error> {
    let categories: Vec<(String, String)> =
        sqlx::query_as("SELECT code, name FROM directory_categories")
            .fetch_all(db)
            .await?;
    let labelled: Vec<String> = categories
        .into_iter()
        .filter(|(_, name)| fold(name).to_lowercase().contains(character))
        .map(|(code, _)| code)
        .collect();
    // One part per kind, services first, each read newest first through the btree
    // (account, kind, ref_id) and stopped at the limit or the scan's bound. The
    // title's lexemes are joined by spaces: a character (a letter or digit) matches
    // inside a word, never across two, nor in the tsvector's positions or weights.
    let parts: Vec<String> = filter
        .kinds()
        .iter()
        .map(|kind| {
            format!(
                "(SELECT h.kind, h.ref_id FROM (
                    SELECT kind, ref_id, category, title_vector FROM search_headlines
                     WHERE account = $2 AND kind = '{}' AND ($3::text IS NULL OR category = $3)
                     ORDER BY ref_id DESC LIMIT $6) h
                   WHERE h.category = ANY($5)
                      OR strpos(array_to_string(tsvector_to_array(h.title_vector), ' '), $1) > 0
                   ORDER BY h.ref_id DESC LIMIT $4)",
                kind.as_str()
            )
        })
        .collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH hits AS ({} LIMIT $4)
         SELECT d.kind, d.ref_id, d.category, d.title, d.summary, d.url, $7::real AS rank
           FROM hits JOIN search_documents d ON d.kind = hits.kind AND d.ref_id = hits.ref_id
          ORDER BY d.kind DESC, d.ref_id DESC",
        parts.join(" UNION ALL ")
    );
    sqlx::query_as(&sql)
        .persistent(false)
        .bind(character)
        .bind(filter.account)
        .bind(filter.category)
        .bind(filter.limit)
        .bind(labelled)
        .bind(SINGLE_CHARACTER_SCAN)
        .bind(SINGLE_CHARACTER_RANK)
        .fetch_all(db)
        .await
}

/// A document as the in-memory index takes it; its words read back from the
/// `tsvector`s, so they are PostgreSQL's lexemes, the ones its statement matches.
#[derive(sqlx::FromRow)]
struct IndexedRow {
    kind: String,
    ref_id: uuid::Uuid,
    accounts: Vec<String>,
    category: String,
    title: String,
    summary: String,
    url: String,
    enabled: bool,
    title_words: Vec<String>,
    keyword_words: Vec<String>,
    words: Vec<String>,
}

impl IndexedRow {
    fn into_doc(self) -> Option<IndexedDoc> {
        Some(IndexedDoc {
            kind: DocKind::parse(&self.kind)?,
            ref_id: self.ref_id,
            accounts: self.accounts,
            category: self.category,
            title: self.title,
            summary: self.summary,
            url: self.url,
            enabled: self.enabled,
            title_words: self.title_words,
            keyword_words: self.keyword_words,
            words: self.words,
        })
    }
}

const INDEXED_COLUMNS: &str = "kind, ref_id, accounts, category, title, summary, url, enabled,
    tsvector_to_array(ts_filter(document, '{a}')) AS title_words,
    tsvector_to_array(ts_filter(document, '{b}')) AS keyword_words,
    tsvector_to_array(document) AS words";

/// Every document, read in one snapshot, handed to `each` as it streams in; returns
/// the number of the latest change in that snapshot (see [`change_number`]).
pub async fn load_all(db: &PgPool, mut each: impl FnMut(IndexedDoc)) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let as_of = change_number(&mut *tx).await?;
    let sql = format!("SELECT {INDEXED_COLUMNS} FROM search_documents");
    let mut rows = sqlx::query_as::<_, IndexedRow>(&sql).fetch(&mut *tx);
    while let Some(row) = rows.try_next().await? {
        if let Some(doc) = row.into_doc() {
            each(doc);
        }
    }
    drop(rows);
    tx.commit().await?;
    Ok(as_of)
}

/// The documents of these kinds and ids as they are now (a key absent from the
/// answer has been deleted).
pub async fn load_some(
    db: &PgPool,
    keys: &[(DocKind, uuid::Uuid)],
) -> Result<Vec<IndexedDoc>, sqlx::Error> {
    let sql = format!(
        "SELECT {INDEXED_COLUMNS} FROM search_documents
          WHERE (kind, ref_id) IN (SELECT * FROM UNNEST($1::text[], $2::uuid[]))"
    );
    let rows: Vec<IndexedRow> = sqlx::query_as(&sql)
        .bind(
            keys.iter()
                .map(|(kind, _)| kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(keys.iter().map(|(_, id)| *id).collect::<Vec<_>>())
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().filter_map(IndexedRow::into_doc).collect())
}

/// The channel on which every change of `search_documents` is announced (migration
/// 0012): `kind ref_id number`, numbered as [`change_number`] counts.
pub const CHANGES_CHANNEL: &str = "search_documents_changed";

/// The number of the latest change of `search_documents` committed (as `db` sees
/// it: in a transaction, as of its snapshot).
pub async fn change_number<'e>(db: impl sqlx::PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT number FROM search_version")
        .fetch_one(db)
        .await
}

/// The refold reasons this release knows how to do: each is a change of what a
/// document's entry holds, after which documents indexed before lack words a query
/// asks for (0015: full-width folded to half-width; 0036: traditional folded to
/// simplified, and services' category labels and departments). A reason a later
/// release adds is left to that release's replicas, which know its fold: doing it
/// with this release's code would skip its documents and still advance its cursor.
pub const REFOLD_REASONS: &[&str] = &["width_fold", "traditional_fold", "service_labels"];

/// Where a pending re-index (migrations 0015, 0016, 0036) has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefoldCursor {
    /// Services after this id (none: from the first).
    Services(Option<uuid::Uuid>),
    /// Published articles after this id (none: from the first).
    Articles(Option<uuid::Uuid>),
}

/// Locks one pending re-index of a reason this release knows ([`REFOLD_REASONS`])
/// for this transaction and says which and where it has got to; none when none is
/// pending. Another replica's transaction waits for this one's commit and then
/// continues from the cursor this one saved.
pub async fn lock_refold(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Option<(String, RefoldCursor)>, sqlx::Error> {
    let row: Option<(String, String, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT reason, phase, after_id FROM search_refolds WHERE reason = ANY($1)
         ORDER BY reason DESC LIMIT 1 FOR UPDATE",
    )
    .bind(REFOLD_REASONS)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(reason, phase, after)| {
        let cursor = match phase.as_str() {
            "article" => RefoldCursor::Articles(after),
            _ => RefoldCursor::Services(after),
        };
        (reason, cursor)
    }))
}

/// Holds, until the transaction ends, the `search_version` row lock that every
/// write of the index takes (migration 0012's trigger), waiting for the writers
/// under way: what the transaction reads next includes what they committed, and no
/// other write of the index commits before it ends. [`upsert`], [`insert_many`] and
/// [`remove`] take it before touching their document, so every writer locks it
/// before a document row: with the trigger alone a writer locked its document first
/// and then this row, while the refold (which takes this row before reading its
/// page) waited on that document — a deadlock, one side aborted.
pub async fn lock_index_writes(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT number FROM search_version FOR UPDATE")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Saves how far the `reason` re-index got (in the transaction of that page).
pub async fn save_refold(
    tx: &mut Transaction<'_, Postgres>,
    reason: &str,
    cursor: &RefoldCursor,
) -> Result<(), sqlx::Error> {
    let (phase, after) = match cursor {
        RefoldCursor::Services(after) => ("service", after),
        RefoldCursor::Articles(after) => ("article", after),
    };
    sqlx::query("UPDATE search_refolds SET phase = $1, after_id = $2 WHERE reason = $3")
        .bind(phase)
        .bind(after)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks the `reason` re-index done (in the transaction of its last page).
pub async fn finish_refold(
    tx: &mut Transaction<'_, Postgres>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM search_refolds WHERE reason = $1")
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
