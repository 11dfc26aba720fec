//! Followers as departments read and tag them (the inbound consumer's upserts are in
//! `followers.rs`).

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use sqlx::PgPool;

use crate::domain::follower::FollowerTag;

/// A follower with its tags.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FollowerRow {
    pub account: AccountId,
    pub openid: OpenId,
    pub subscribed: bool,
    pub subscribed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub qr_scene: String,
    pub last_interaction_at: Option<DateTime<Utc>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
}

const FOLLOWER_SELECT: &str = "SELECT f.account, f.openid, f.subscribed, f.subscribed_at,
        f.unsubscribed_at, f.qr_scene, f.last_interaction_at, f.latitude, f.longitude,
        f.location_at,
        COALESCE(ARRAY(SELECT t.tag FROM follower_tags t
                        WHERE t.account = f.account AND t.openid = f.openid
                        ORDER BY t.tag), '{}') AS tags
   FROM followers f";

/// One follower.
#[tracing::instrument(skip(db, openid))]
pub async fn get(
    db: &PgPool,
    account: &AccountId,
    openid: &OpenId,
) -> Result<Option<FollowerRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{FOLLOWER_SELECT} WHERE f.account = $1 AND f.openid = $2"
    ))
    .bind(account)
    .bind(openid)
    .fetch_optional(db)
    .await
}

/// Which followers to list.
#[derive(Debug, Clone)]
pub struct FollowerQuery<'a> {
    pub account: &'a AccountId,
    /// Only followers carrying this tag.
    pub tag: Option<&'a FollowerTag>,
    pub limit: u32,
    /// The last openid of the previous page (followers are listed by openid).
    pub after: Option<&'a str>,
}

/// One page of an account's followers and, if there are more, the openid to continue after.
#[tracing::instrument(skip_all, fields(account = %query.account))]
pub async fn list(
    db: &PgPool,
    query: &FollowerQuery<'_>,
) -> Result<(Vec<FollowerRow>, Option<String>), sqlx::Error> {
    let limit = i64::from(query.limit);
    let mut rows: Vec<FollowerRow> = sqlx::query_as(&format!(
        "{FOLLOWER_SELECT}
          WHERE f.account = $1
            AND ($2::text IS NULL OR EXISTS (
                  SELECT 1 FROM follower_tags t
                   WHERE t.account = f.account AND t.openid = f.openid AND t.tag = $2))
            AND ($3::text IS NULL OR f.openid > $3)
          ORDER BY f.openid
          LIMIT $4"
    ))
    .bind(query.account)
    .bind(query.tag.map(FollowerTag::as_str))
    .bind(query.after)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| row.openid.to_string())
    } else {
        None
    };
    Ok((rows, next))
}

/// Adds and removes tags of one follower; `None` if the follower is unknown.
#[tracing::instrument(skip_all, fields(account = %account))]
pub async fn tag(
    db: &PgPool,
    account: &AccountId,
    openid: &OpenId,
    add: &[FollowerTag],
    remove: &[FollowerTag],
) -> Result<Tagged, sqlx::Error> {
    let mut tx = db.begin().await?;
    let known: Option<(String,)> = sqlx::query_as(
        "SELECT openid FROM followers WHERE account = $1 AND openid = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(openid)
    .fetch_optional(&mut *tx)
    .await?;
    if known.is_none() {
        return Ok(Tagged::NotFound);
    }
    let remove: Vec<&str> = remove.iter().map(FollowerTag::as_str).collect();
    sqlx::query("DELETE FROM follower_tags WHERE account = $1 AND openid = $2 AND tag = ANY($3)")
        .bind(account)
        .bind(openid)
        .bind(&remove)
        .execute(&mut *tx)
        .await?;
    let add: Vec<&str> = add.iter().map(FollowerTag::as_str).collect();
    sqlx::query(
        "INSERT INTO follower_tags (account, openid, tag)
         SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(openid)
    .bind(&add)
    .execute(&mut *tx)
    .await?;
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM follower_tags WHERE account = $1 AND openid = $2")
            .bind(account)
            .bind(openid)
            .fetch_one(&mut *tx)
            .await?;
    if count > MAX_TAGS_PER_FOLLOWER as i64 {
        tx.rollback().await?;
        return Ok(Tagged::TooMany);
    }
    tx.commit().await?;
    Ok(get(db, account, openid)
        .await?
        .map_or(Tagged::NotFound, Tagged::Done))
}

/// The most tags one follower may carry (WeChat allows 20 per user).
pub const MAX_TAGS_PER_FOLLOWER: usize = 20;

/// What tagging a follower came to.
#[derive(Debug)]
pub enum Tagged {
    /// The follower as now tagged.
    Done(FollowerRow),
    /// No such follower of the account.
    NotFound,
    /// The follower would carry more than [`MAX_TAGS_PER_FOLLOWER`] tags; nothing changed.
    TooMany,
}

/// When citizen `openid` last interacted with `account` (the start of the 48-hour
/// customer-service window); `None` if never.
pub async fn last_interaction(
    db: &PgPool,
    account: &AccountId,
    openid: &OpenId,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let at: Option<(Option<DateTime<Utc>>,)> = sqlx::query_as(
        "SELECT last_interaction_at FROM followers WHERE account = $1 AND openid = $2",
    )
    .bind(account)
    .bind(openid)
    .fetch_optional(db)
    .await?;
    Ok(at.and_then(|(at,)| at))
}
