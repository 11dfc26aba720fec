//! Chinese search over directory services (indexed in the transaction of each
//! directory change) and published articles.

use sqlx::{PgPool, Postgres, Transaction};

use super::AppError;
use crate::domain::article::strip_html;
use crate::domain::search::{SearchQuery, Segmenter};
use crate::store::articles::ArticleRow;
use crate::store::search::{self as store, HitRow, IndexDoc, SearchFilter};
use crate::store::services::ServiceRow;

/// How many hits a search returns at most, and by default.
pub const LIMIT_MAX: i64 = 50;
pub const LIMIT_DEFAULT: i64 = 10;
/// Snippet width in characters.
const SNIPPET: usize = 60;

/// A hit with its highlighted snippet.
#[derive(Debug, Clone)]
pub struct Hit {
    pub row: HitRow,
    pub snippet: String,
}

/// Search use cases.
#[derive(Clone)]
pub struct Search {
    db: PgPool,
    segmenter: Segmenter,
}

impl Search {
    /// Searches `db`'s index, segmenting queries with `segmenter`.
    pub fn new(db: PgPool, segmenter: Segmenter) -> Self {
        Self { db, segmenter }
    }

    /// Runs a checked query for one account, best first, in stages: documents
    /// holding all its words (or their synonyms); then, only when they are fewer than
    /// the limit, those holding the sub-words of a word jieba kept whole (停电 and 通知
    /// for 停电通知, which no document may hold as one word); then those holding any of
    /// the words. Each stage ranks by tier (title, keywords, body; see
    /// [`store::search_sql`]) and reads no more than the limit; scores follow the
    /// order: all words 7-9, sub-words 4-6, any word 1-3.
    pub async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter<'_>,
    ) -> Result<Vec<Hit>, AppError> {
        let stages = [
            Some((query.tsquery_all(), 6.0)),
            query.tsquery_split().map(|split| (split, 3.0)),
            Some((query.tsquery_any(), 0.0)),
        ];
        let limit = usize::try_from(filter.limit).unwrap_or(0);
        let mut rows: Vec<HitRow> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        for (matching, band) in stages.into_iter().flatten() {
            // The same query as a stage already run finds nothing new.
            if rows.len() >= limit || done.contains(&matching) {
                continue;
            }
            // A stage's first `limit` rows hold at most `found` rows already taken (its
            // matches include the earlier ones), so at least `limit - found` new ones
            // when it has them.
            let found = rows.len();
            for mut row in store::search(&self.db, &matching, filter).await? {
                if rows.len() == limit {
                    break;
                }
                let seen = rows[..found]
                    .iter()
                    .any(|r| r.ref_id == row.ref_id && r.kind == row.kind);
                if !seen {
                    row.rank += band;
                    rows.push(row);
                }
            }
            done.push(matching);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let snippet = query.snippet(&row.summary, SNIPPET);
                Hit { row, snippet }
            })
            .collect())
    }

    /// The segmenter queries go through (the door parses them with it).
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }
}

/// Indexes a directory service as it is after a change (in that change's transaction).
pub async fn index_service(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ServiceRow,
) -> Result<(), sqlx::Error> {
    let keywords = row
        .keywords
        .iter()
        .chain(&row.synonyms)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let body = format!("{} {}", row.description, row.how_to_apply);
    let url = if row.url.is_empty() {
        format!(
            "miniprogram:{}:{}",
            row.miniprogram_appid, row.miniprogram_path
        )
    } else {
        row.url.clone()
    };
    store::upsert(
        tx,
        &IndexDoc {
            kind: "service",
            ref_id: row.id,
            accounts: std::iter::once(row.account.clone())
                .chain(row.also_shown_on.iter().cloned())
                .collect(),
            category: &row.category,
            title: &row.name,
            summary: &row.description,
            url: &url,
            enabled: row.enabled,
            title_words: segmenter.indexable(&row.name),
            keyword_words: segmenter.indexable(&keywords),
            body_words: segmenter.indexable(&body),
        },
    )
    .await
}

/// Drops a deleted service from the index.
pub async fn unindex_service(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    store::remove(tx, "service", id).await
}

/// Indexes a published article (in the transaction that records the publication):
/// title weighted as a title, digest as keywords, body text as body.
pub async fn index_article(
    tx: &mut Transaction<'_, Postgres>,
    segmenter: &Segmenter,
    row: &ArticleRow,
    url: &str,
) -> Result<(), sqlx::Error> {
    let text = strip_html(&row.body);
    let summary = if row.digest.is_empty() {
        text.as_str()
    } else {
        row.digest.as_str()
    };
    store::upsert(
        tx,
        &IndexDoc {
            kind: "article",
            ref_id: row.id,
            accounts: vec![row.account.clone()],
            category: "",
            title: &row.title,
            summary,
            url,
            enabled: true,
            title_words: segmenter.indexable(&row.title),
            keyword_words: segmenter.indexable(&row.digest),
            body_words: segmenter.indexable(&text),
        },
    )
    .await
}

/// Drops a retracted article from the index.
pub async fn unindex_article(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    store::remove(tx, "article", id).await
}
