//! Menus, their versions and their publications (migration 0007).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

use crate::domain::menu::Button;

/// A menu (default or conditional) as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MenuRow {
    pub account: String,
    pub tag_id: i64,
    pub latest_version: i32,
    pub state: String,
    pub published_version: Option<i32>,
    pub publishing_id: Option<i64>,
    pub publishing_since: Option<DateTime<Utc>>,
    pub wechat_menuid: Option<String>,
    pub last_error: String,
    pub updated_at: DateTime<Utc>,
}

/// One saved version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub account: String,
    pub tag_id: i64,
    pub version: i32,
    pub buttons: Json<Vec<Button>>,
    pub saved_by: String,
    pub saved_at: DateTime<Utc>,
    pub note: String,
}

const MENU: &str = "account, tag_id, latest_version, state, published_version, publishing_id,
    publishing_since, wechat_menuid, last_error, updated_at";
const VERSION: &str = "account, tag_id, version, buttons, saved_by, saved_at, note";

/// One menu.
pub async fn get(
    db: impl PgExecutor<'_>,
    account: &str,
    tag_id: i64,
) -> Result<Option<MenuRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MENU} FROM menus WHERE account = $1 AND tag_id = $2"
    ))
    .bind(account)
    .bind(tag_id)
    .fetch_optional(db)
    .await
}

/// The account's menus, the default one first.
pub async fn list(db: &PgPool, account: &str) -> Result<Vec<MenuRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MENU} FROM menus WHERE account = $1 ORDER BY tag_id"
    ))
    .bind(account)
    .fetch_all(db)
    .await
}

/// The menu, created empty when absent, locked for the transaction's change.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    tag_id: i64,
) -> Result<MenuRow, sqlx::Error> {
    sqlx::query("INSERT INTO menus (account, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(account)
        .bind(tag_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query_as(&format!(
        "SELECT {MENU} FROM menus WHERE account = $1 AND tag_id = $2 FOR UPDATE"
    ))
    .bind(account)
    .bind(tag_id)
    .fetch_one(&mut **tx)
    .await
}

/// Adds the next version (the menu is locked) and makes it the latest.
pub async fn insert_version(
    tx: &mut Transaction<'_, Postgres>,
    menu: &MenuRow,
    buttons: &[Button],
    saved_by: &str,
    note: &str,
) -> Result<VersionRow, sqlx::Error> {
    let version = menu.latest_version + 1;
    let row: VersionRow = sqlx::query_as(&format!(
        "INSERT INTO menu_versions (account, tag_id, version, buttons, saved_by, note)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {VERSION}"
    ))
    .bind(&menu.account)
    .bind(menu.tag_id)
    .bind(version)
    .bind(Json(buttons))
    .bind(saved_by)
    .bind(note)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE menus SET latest_version = $3, updated_at = now()
          WHERE account = $1 AND tag_id = $2",
    )
    .bind(&menu.account)
    .bind(menu.tag_id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(row)
}

/// One version.
pub async fn version(
    db: &PgPool,
    account: &str,
    tag_id: i64,
    version: i32,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VERSION} FROM menu_versions WHERE account = $1 AND tag_id = $2 AND version = $3"
    ))
    .bind(account)
    .bind(tag_id)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// Every version of a menu, newest first.
pub async fn versions(
    db: &PgPool,
    account: &str,
    tag_id: i64,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VERSION} FROM menu_versions WHERE account = $1 AND tag_id = $2
          ORDER BY version DESC"
    ))
    .bind(account)
    .bind(tag_id)
    .fetch_all(db)
    .await
}

/// Records a publication (or an unpublication, `version` None) as under way and
/// marks the locked menu `publishing`; returns the publication's id.
pub async fn begin_publication(
    tx: &mut Transaction<'_, Postgres>,
    menu: &MenuRow,
    version: Option<i32>,
    actor: &str,
    sent: Option<&serde_json::Value>,
) -> Result<i64, sqlx::Error> {
    let action = if version.is_some() {
        "publish"
    } else {
        "unpublish"
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO menu_publications (account, tag_id, version, action, actor, state, sent)
         VALUES ($1, $2, $3, $4, $5, 'publishing', $6)
         RETURNING id",
    )
    .bind(&menu.account)
    .bind(menu.tag_id)
    .bind(version)
    .bind(action)
    .bind(actor)
    .bind(sent)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE menus SET state = 'publishing', publishing_id = $3, publishing_since = now(),
                          updated_at = now()
          WHERE account = $1 AND tag_id = $2",
    )
    .bind(&menu.account)
    .bind(menu.tag_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// How a publication ended.
#[derive(Debug, Clone)]
pub enum Settled {
    /// WeChat shows `version` (None: the conditional menu is off WeChat), with
    /// the conditional menu's new id.
    Done {
        version: Option<i32>,
        wechat_menuid: Option<String>,
    },
    Failed(String),
}

/// Settles publication `id`. The menu row changes only while this publication is
/// still its current one (a later one may have taken over a stale claim).
pub async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    tag_id: i64,
    id: i64,
    outcome: &Settled,
) -> Result<(), sqlx::Error> {
    let (state, error, menuid) = match outcome {
        Settled::Done { wechat_menuid, .. } => ("published", "", wechat_menuid.as_deref()),
        Settled::Failed(error) => ("failed", error.as_str(), None),
    };
    sqlx::query(
        "UPDATE menu_publications SET state = $2, error = $3, wechat_menuid = $4,
                                      finished_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .bind(menuid)
    .execute(&mut **tx)
    .await?;
    let query = match outcome {
        Settled::Done {
            version: Some(version),
            wechat_menuid,
        } => sqlx::query(
            "UPDATE menus SET state = 'published', published_version = $4, wechat_menuid = $5,
                              last_error = '', publishing_id = NULL, publishing_since = NULL,
                              updated_at = now()
              WHERE account = $1 AND tag_id = $2 AND publishing_id = $3",
        )
        .bind(account)
        .bind(tag_id)
        .bind(id)
        .bind(*version)
        .bind(wechat_menuid.clone()),
        Settled::Done { version: None, .. } => sqlx::query(
            "UPDATE menus SET state = 'draft', published_version = NULL, wechat_menuid = NULL,
                              last_error = '', publishing_id = NULL, publishing_since = NULL,
                              updated_at = now()
              WHERE account = $1 AND tag_id = $2 AND publishing_id = $3",
        )
        .bind(account)
        .bind(tag_id)
        .bind(id),
        Settled::Failed(error) => sqlx::query(
            "UPDATE menus SET state = 'failed', last_error = $4, publishing_id = NULL,
                              publishing_since = NULL, updated_at = now()
              WHERE account = $1 AND tag_id = $2 AND publishing_id = $3",
        )
        .bind(account)
        .bind(tag_id)
        .bind(id)
        .bind(error.clone()),
    };
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The conditional menus of a tag that may still be on WeChat although no
/// publication shows them (migration 0034): replaced ones a delete failed for.
pub async fn stale_menuids(
    db: &PgPool,
    account: &str,
    tag_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let ids: Option<Vec<String>> =
        sqlx::query_scalar("SELECT stale_menuids FROM menus WHERE account = $1 AND tag_id = $2")
            .bind(account)
            .bind(tag_id)
            .fetch_optional(db)
            .await?;
    Ok(ids.unwrap_or_default())
}

/// Adds `kept` to a tag's stale conditional menus and takes `gone` off them.
/// Whatever publication is current: the ids are WeChat's, not a claim's.
pub async fn track_stale(
    db: &PgPool,
    account: &str,
    tag_id: i64,
    kept: &[String],
    gone: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE menus
            SET stale_menuids = ARRAY(
                  SELECT DISTINCT id FROM unnest(stale_menuids || $3::text[]) AS id
                   WHERE id <> ALL ($4::text[]) ORDER BY id)
          WHERE account = $1 AND tag_id = $2",
    )
    .bind(account)
    .bind(tag_id)
    .bind(kept)
    .bind(gone)
    .execute(db)
    .await?;
    Ok(())
}

/// Which of `codes` are directory categories.
pub async fn known_categories(db: &PgPool, codes: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT code FROM directory_categories WHERE code = ANY ($1)")
        .bind(codes)
        .fetch_all(db)
        .await
}
