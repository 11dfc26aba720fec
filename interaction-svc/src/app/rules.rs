//! Reply and routing rules: every change is saved and then announced to every
//! replica (`RulesNotifier`), whose rules caches reload the account.

use sqlx::PgPool;

use crate::domain::{ReplyRule, RoutingRule};
use crate::store::rules::{self, CreateRequest, RulesNotifier, RulesStoreError};

/// The rule use cases. Cheap to clone.
#[derive(Clone)]
pub struct Rules {
    db: PgPool,
    notifier: RulesNotifier,
}

impl Rules {
    pub fn new(db: PgPool, notifier: RulesNotifier) -> Self {
        Self { db, notifier }
    }

    pub async fn list_reply_rules(&self, account: &str) -> Result<Vec<ReplyRule>, sqlx::Error> {
        rules::list_reply_rules(&self.db, account).await
    }

    /// Creates `rule`; with `request`, once per request id and account (a retry gets
    /// the rule the first call created).
    pub async fn create_reply_rule(
        &self,
        rule: ReplyRule,
        request: Option<CreateRequest<'_>>,
    ) -> Result<ReplyRule, RulesStoreError> {
        rules::create_reply_rule(&self.db, &self.notifier, rule, request).await
    }

    /// `None` if there is no such rule among `accounts`' (`None`: every account's).
    pub async fn update_reply_rule(
        &self,
        rule: ReplyRule,
        accounts: Option<&[String]>,
    ) -> Result<Option<ReplyRule>, RulesStoreError> {
        rules::update_reply_rule(&self.db, &self.notifier, rule, accounts).await
    }

    /// Whether there was such a rule among `accounts`' (`None`: every account's).
    pub async fn delete_reply_rule(
        &self,
        id: uuid::Uuid,
        accounts: Option<&[String]>,
    ) -> Result<bool, sqlx::Error> {
        rules::delete_reply_rule(&self.db, &self.notifier, id, accounts).await
    }

    pub async fn list_routing_rules(&self, account: &str) -> Result<Vec<RoutingRule>, sqlx::Error> {
        rules::list_routing_rules(&self.db, account).await
    }

    /// Creates `rule`; with `request`, once per request id and account (a retry gets
    /// the rule the first call created).
    pub async fn create_routing_rule(
        &self,
        rule: RoutingRule,
        request: Option<CreateRequest<'_>>,
    ) -> Result<RoutingRule, RulesStoreError> {
        rules::create_routing_rule(&self.db, &self.notifier, rule, request).await
    }

    /// Whether there was such a rule among `accounts`' (`None`: every account's).
    pub async fn delete_routing_rule(
        &self,
        id: uuid::Uuid,
        accounts: Option<&[String]>,
    ) -> Result<bool, sqlx::Error> {
        rules::delete_routing_rule(&self.db, &self.notifier, id, accounts).await
    }
}
