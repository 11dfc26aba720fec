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

    /// Runs a checked query for one account, best first: documents holding all its
    /// words (or their synonyms), and only when they are fewer than the limit,
    /// documents holding any of them after those. 社保卡补办 as an OR of its words
    /// matched 20,000 titles of 100,000 articles; as an AND, the titles about it.
    pub async fn search(
        &self,
        query: &SearchQuery,
        filter: &SearchFilter<'_>,
    ) -> Result<Vec<Hit>, AppError> {
        let any = query.tsquery_any();
        let all = query.tsquery_all();
        let mut rows = store::search(&self.db, &all, &any, filter).await?;
        // Scores in bands that follow the order: all words 2 and up, any word below.
        for row in &mut rows {
            row.rank += 2.0;
        }
        let limit = usize::try_from(filter.limit).unwrap_or(0);
        if rows.len() < limit && all != any {
            let found = rows.len();
            for row in store::search(&self.db, &any, &any, filter).await? {
                if rows.len() == limit {
                    break;
                }
                let seen = rows[..found]
                    .iter()
                    .any(|r| r.ref_id == row.ref_id && r.kind == row.kind);
                if !seen {
                    rows.push(row);
                }
            }
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
