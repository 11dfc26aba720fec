//! Followers as callbacks change them: subscription state, the last interaction
//! (the 48-hour customer-service window starts there), the last reported location.
//! (Reads and tags for departments are in `followers_read.rs`.)
//!
//! Callbacks can arrive out of order (WeChat retries, consumer redeliveries), so
//! every write keeps the newest fact: a follow older than the last unfollow changes
//! nothing, and `last_interaction_at` only moves forward.

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use platform::outbox::{self, OutboxEvent};
use sqlx::{Postgres, Transaction};

/// Records the interactions of a batch of callbacks (a message, click, follow, scan or
/// location report each) in one statement: creates each follower if unknown and moves
/// `last_interaction_at` forward to their latest. Rows are written in key order, so two
/// replicas touching the same followers cannot deadlock on them.
pub async fn touch(
    tx: &mut Transaction<'_, Postgres>,
    interactions: &[(&AccountId, &OpenId, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if interactions.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = interactions.iter().map(|(a, _, _)| a.as_str()).collect();
    let openids: Vec<&str> = interactions.iter().map(|(_, o, _)| o.as_str()).collect();
    let ats: Vec<DateTime<Utc>> = interactions.iter().map(|(_, _, at)| *at).collect();
    sqlx::query(
        "INSERT INTO followers (account, openid, last_interaction_at)
         SELECT account, openid, max(at)
           FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS i(account, openid, at)
          GROUP BY account, openid
          ORDER BY account, openid
         ON CONFLICT (account, openid) DO UPDATE
            SET last_interaction_at = GREATEST(followers.last_interaction_at, EXCLUDED.last_interaction_at)",
    )
    .bind(accounts)
    .bind(openids)
    .bind(ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a follow at `at` through `scene` (empty: a plain follow). A re-follow
/// clears the unfollow. Returns false when a later unfollow or a later follow is
/// already recorded (a callback handled late), in which case nothing changed: an
/// older follow must not rewind the newer one's time and scene.
pub async fn subscribe(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    at: DateTime<Utc>,
    scene: &str,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "INSERT INTO followers (account, openid, subscribed, subscribed_at, qr_scene, last_interaction_at)
         VALUES ($1, $2, true, $3, $4, $3)
         ON CONFLICT (account, openid) DO UPDATE
            SET subscribed = true, subscribed_at = EXCLUDED.subscribed_at,
                unsubscribed_at = NULL, qr_scene = EXCLUDED.qr_scene,
                last_interaction_at = GREATEST(followers.last_interaction_at, EXCLUDED.last_interaction_at)
          WHERE (followers.unsubscribed_at IS NULL OR followers.unsubscribed_at <= EXCLUDED.subscribed_at)
            AND (followers.subscribed_at IS NULL OR followers.subscribed_at <= EXCLUDED.subscribed_at)",
    )
    .bind(account)
    .bind(openid)
    .bind(at)
    .bind(scene)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(applied == 1)
}

/// Records an unfollow at `at` and forgets the follower's reported location (WeChat
/// asks accounts to delete a user's data when they unfollow; the openid, the dates
/// and the tickets stay, as the record of the service given). Returns false when a
/// later follow is already recorded.
pub async fn unsubscribe(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "INSERT INTO followers (account, openid, subscribed, unsubscribed_at) VALUES ($1, $2, false, $3)
         ON CONFLICT (account, openid) DO UPDATE
            SET subscribed = false, unsubscribed_at = EXCLUDED.unsubscribed_at,
                latitude = NULL, longitude = NULL, location_precision = NULL,
                location_at = NULL
          WHERE followers.subscribed_at IS NULL OR followers.subscribed_at <= EXCLUDED.unsubscribed_at",
    )
    .bind(account)
    .bind(openid)
    .bind(at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(applied == 1)
}

/// A reported location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportedLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub precision: Option<f64>,
    pub at: DateTime<Utc>,
}

/// Keeps the newest reported location, unless it was reported before the follower's
/// unfollow (a late or redelivered report must not bring back what the unfollow
/// deleted).
pub async fn locate(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    location: ReportedLocation,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE followers
            SET latitude = $3, longitude = $4, location_precision = $5, location_at = $6
          WHERE account = $1 AND openid = $2 AND (location_at IS NULL OR location_at <= $6)
            AND (unsubscribed_at IS NULL OR unsubscribed_at < $6)",
    )
    .bind(account)
    .bind(openid)
    .bind(location.latitude)
    .bind(location.longitude)
    .bind(location.precision)
    .bind(location.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues a `FollowerChanged` (`subscribed` or `unsubscribed`) on
/// `interaction.{account}.follower.{kind}`; `cause` is the inbound event's id.
pub async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    kind: &str,
    qr_scene: &str,
    cause: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let event_id = format!("{cause}:follower.{kind}");
    let event = proto::events::v1::FollowerChanged {
        header: Some(proto::events::v1::EventHeader {
            event_id: event_id.clone(),
            account: account.to_string(),
            occurred_at: Some(super::outbox::timestamp(at)),
        }),
        kind: kind.to_owned(),
        openid: openid.to_string(),
        qr_scene: qr_scene.to_owned(),
    };
    let subject = format!("interaction.{account}.follower.{kind}");
    let payload = prost::Message::encode_to_vec(&event);
    let event = OutboxEvent {
        subject: &subject,
        event_id: &event_id,
        payload: &payload,
    };
    outbox::enqueue(tx, event).await.map(drop)
}
