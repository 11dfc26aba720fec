//! Reading and tagging an account's followers.

use platform::ids::{AccountId, OpenId};
use sqlx::PgPool;

use crate::domain::follower::FollowerTag;
use crate::store::followers_read::{self, FollowerQuery, FollowerRow, Tagged};

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
}
