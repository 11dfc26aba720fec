//! The service hall (办事大厅): a public, server-rendered mobile page per account on
//! content-svc's own HTTP port (`HALL_ADDR`), the target of a menu's "办事大厅"
//! button. No JavaScript, no login, nothing loaded from elsewhere: one HTML page
//! with its CSS inline. Each request calls `app` (the hall's listing, search).

mod page;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sqlx::PgPool;

use crate::app;
use crate::app::search::Search;
use crate::domain::search::{QueryError, SearchQuery};
use crate::store::search::SearchFilter;

/// How many search results the page shows.
const RESULTS: i64 = 20;

/// What the pages need.
#[derive(Clone)]
pub struct HallState {
    pub db: PgPool,
    pub search: Search,
    /// The accounts this install serves: their hall exists even while empty.
    pub accounts: Vec<String>,
}

/// The hall's routes.
pub fn router(state: HallState) -> Router {
    Router::new()
        .route("/hall/{account}", get(hall))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct HallQuery {
    #[serde(default)]
    q: String,
}

async fn hall(
    State(state): State<HallState>,
    Path(account): Path<String>,
    Query(query): Query<HallQuery>,
) -> Response {
    let categories = match app::hall::categories(&state.db, &account).await {
        Ok(categories) => categories,
        Err(error) => {
            tracing::error!(%error, %account, "service hall listing failed");
            return page_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                page::message("暂时无法访问", "系统繁忙，请稍后再试。"),
            );
        }
    };
    if categories.is_empty() && !state.accounts.contains(&account) {
        return page_response(
            StatusCode::NOT_FOUND,
            page::message("未找到", "没有这个办事大厅，请检查链接。"),
        );
    }
    let raw = query.q.trim();
    let results = if raw.is_empty() {
        None
    } else {
        Some(search(&state.search, &account, raw).await)
    };
    page_response(
        StatusCode::OK,
        page::hall(&account, &categories, raw, results.as_ref()),
    )
}

/// The page's answer to a search: hits, or a sentence saying why there are none.
pub(crate) type SearchOutcome = Result<Vec<app::search::Hit>, String>;

async fn search(search: &Search, account: &str, raw: &str) -> SearchOutcome {
    let query = SearchQuery::parse(search.segmenter(), raw).map_err(|e| match e {
        QueryError::Empty => "请输入要查找的内容，例如：社保卡补办".to_owned(),
        QueryError::NoWords => "请输入文字或数字，例如：公积金提取".to_owned(),
        QueryError::TooLong { max, .. } => format!("搜索内容太长，请不超过 {max} 个字"),
    })?;
    let failed = |error| {
        tracing::error!(%error, %account, "service hall search failed");
        "搜索暂时不可用，请稍后再试。".to_owned()
    };
    // By stage first (all words, sub-words, any word): twenty services holding one
    // word of the query (办理) must not hide the article holding them all
    // (居住证办理须知). Within a stage services first, then articles: the hall is
    // where citizens go to do something, and one search ranks a title hit of any
    // article (养老金 in twenty notices) over a service holding the word only in its
    // keywords, which it then buried. So each kind is searched for a whole page.
    let mut hits = Vec::new();
    for kind in ["service", "article"] {
        let filter = SearchFilter {
            account,
            kind: Some(kind),
            category: None,
            limit: RESULTS,
        };
        hits.extend(search.search(&query, &filter).await.map_err(failed)?);
    }
    // Stable: within a stage the services stay before the articles, each kind in
    // its search's order.
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.stage()));
    hits.truncate(usize::try_from(RESULTS).unwrap_or(0));
    Ok(hits)
}

fn page_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    // The page needs only its inline style: no script, no other origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Only a page is cached: a 404 or the transient 500 ("系统繁忙") kept by a proxy
    // for a minute would outlive its cause.
    let cache = if status == StatusCode::OK {
        "public, max-age=60"
    } else {
        "no-store"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
