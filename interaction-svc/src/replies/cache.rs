//! Every replica's in-memory copy of the reply and routing rules, per account, so the
//! reply path answers without a database round trip. Reloaded on the change notice
//! (`store::rules::RulesNotifier`) and periodically as a safety net.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::domain::{RoutingTable, RuleSet};
use crate::store::rules;

/// One account's rules, ready to decide with.
#[derive(Debug, Default)]
pub struct AccountRules {
    pub replies: RuleSet,
    pub routing: RoutingTable,
}

struct Entry {
    /// The load that produced it; a slower, older load never replaces a newer one.
    generation: u64,
    rules: Arc<AccountRules>,
}

/// The cache. Share it as `Arc<RulesCache>`.
pub struct RulesCache {
    db: PgPool,
    accounts: RwLock<HashMap<String, Entry>>,
    generations: AtomicU64,
}

impl std::fmt::Debug for RulesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesCache").finish_non_exhaustive()
    }
}

impl RulesCache {
    /// An empty cache reading from `db`.
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            accounts: RwLock::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }
    }

    /// The rules of `account`: from memory, or loaded once on first use.
    pub async fn get(&self, account: &str) -> Result<Arc<AccountRules>, sqlx::Error> {
        if let Some(entry) = self.read().get(account) {
            return Ok(entry.rules.clone());
        }
        self.reload(account).await
    }

    /// Loads `account`'s rules from the database and keeps them.
    #[tracing::instrument(skip(self))]
    pub async fn reload(&self, account: &str) -> Result<Arc<AccountRules>, sqlx::Error> {
        // Taken before reading: a load that starts later reads a later snapshot, so
        // the highest generation always holds the newest rules.
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let replies = rules::list_reply_rules(&self.db, account).await?;
        let routing = rules::list_routing_rules(&self.db, account).await?;
        let loaded = Arc::new(AccountRules {
            replies: RuleSet::new(replies),
            routing: RoutingTable::new(routing),
        });
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(newer) = accounts
            .get(account)
            .filter(|entry| entry.generation > generation)
        {
            return Ok(newer.rules.clone());
        }
        accounts.insert(
            account.to_owned(),
            Entry {
                generation,
                rules: loaded.clone(),
            },
        );
        tracing::debug!(account, rules = loaded.replies.len(), "rules loaded");
        Ok(loaded)
    }

    /// Reloads every account that has rules or is cached.
    pub async fn reload_all(&self) -> Result<usize, sqlx::Error> {
        let mut accounts: Vec<String> = sqlx::query_scalar(
            "SELECT account FROM reply_rules UNION SELECT account FROM routing_rules",
        )
        .fetch_all(&self.db)
        .await?;
        accounts.extend(self.read().keys().cloned());
        accounts.sort();
        accounts.dedup();
        for account in &accounts {
            self.reload(account).await?;
        }
        Ok(accounts.len())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a map half-written (inserts are
        // single calls), so a poisoned lock is still good to read.
        self.accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reloads an account's rules when its change notice arrives on `notices` (a
/// subscription to `store::rules::CHANGED_WILDCARD`), and every account every
/// `interval`, until the drain begins.
pub async fn run_refresh(
    cache: Arc<RulesCache>,
    mut notices: async_nats::Subscriber,
    interval: Duration,
    drain: Drain,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = drain.stopping().cancelled() => break,
            notice = notices.next() => {
                let Some(notice) = notice else { break };
                let Some(account) = notice.subject.as_str().rsplit('.').next() else { continue };
                metrics::counter!("interaction_rules_reloads_total", "cause" => "notice").increment(1);
                if let Err(error) = cache.reload(account).await {
                    tracing::warn!(account, %error, "cannot reload rules; the periodic reload retries");
                }
            }
            _ = ticks.tick() => {
                metrics::counter!("interaction_rules_reloads_total", "cause" => "periodic").increment(1);
                if let Err(error) = cache.reload_all().await {
                    tracing::warn!(%error, "periodic rules reload failed");
                }
            }
        }
    }
    let _ = notices.unsubscribe().await;
    tracing::info!("rules refresh stopped");
}
