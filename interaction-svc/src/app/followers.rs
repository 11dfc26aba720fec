//! Reading and tagging an account's followers.

use platform::ids::{AccountId, OpenId};
use sqlx::PgPool;

use crate::domain::follower::FollowerTag;
use crate::store::followers_read::{self, FollowerQuery, FollowerRow, Tagged};
use crate::store::retention::{self, Erasure, ErasureRequest};

/// The follower use cases. Cheap to clone.
#[derive(Clone)]
pub struct Followers {
    db: PgPool,
}

impl Followers {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    pub async fn get(
        &self,
        account: &AccountId,
        openid: &OpenId,
    ) -> Result<Option<FollowerRow>, sqlx::Error> {
        followers_read::get(&self.db, account, openid).await
    }

    /// One page of followers and the token of the next.
    pub async fn list(
        &self,
        query: &FollowerQuery<'_>,
    ) -> Result<(Vec<FollowerRow>, Option<String>), sqlx::Error> {
        followers_read::list(&self.db, query).await
    }

    /// Adds and removes tags, within WeChat's 20 per follower.
    pub async fn tag(
        &self,
        account: &AccountId,
        openid: &OpenId,
        add: &[FollowerTag],
        remove: &[FollowerTag],
    ) -> Result<Tagged, sqlx::Error> {
        followers_read::tag(&self.db, account, openid, add, remove).await
    }

    /// Erases one citizen's data on their request (`store::retention::erase_citizen`),
    /// refused while a ticket of theirs is still being handled.
    pub async fn erase(&self, request: &ErasureRequest<'_>) -> Result<Erasure, sqlx::Error> {
        let erasure = retention::erase_citizen(&self.db, request).await?;
        if let Erasure::Done { audit_id, removed } = &erasure {
            // No openid in the log: the audit row names the citizen by a digest.
            tracing::info!(
                erasure = %audit_id,
                account = %request.account,
                requested_by = request.requested_by,
                key = request.key_id,
                tickets = removed.tickets,
                messages = removed.messages,
                transitions = removed.transitions,
                followers = removed.followers,
                follower_tags = removed.follower_tags,
                directory_answers = removed.directory_answers,
                decided_replies = removed.decided_replies,
                "citizen's data erased on request"
            );
            metrics::counter!("interaction_erasures_total").increment(1);
        }
        Ok(erasure)
    }
}
