//! Every replica's in-memory directory matcher, per account, built from the replicated
//! `directory_services` table. The replica whose consumer applied a change tells every
//! replica on the core NATS notice `{ns}.interaction-svc.directory.changed`; each then
//! rebuilds, and every `RULES_RELOAD_INTERVAL` as a safety net (a lost notice).
//!
//! A rebuild reads the whole table and builds every account's automaton: a few
//! milliseconds for the thousands of services of a city install, far less than the
//! rate of directory edits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use platform::nats::Namespace;
use platform::shutdown::Drain;
use sqlx::PgPool;

use crate::domain::directory::Directory;
use crate::store::directory as store;

/// The notice (before namespacing) that the directory changed. Outside `interaction.>`
/// so the INTERACTION stream does not store it.
pub const CHANGED_SUBJECT: &str = "interaction-svc.directory.changed";

struct Snapshot {
    generation: u64,
    accounts: Arc<HashMap<String, Arc<Directory>>>,
}

/// The matchers. Share it as `Arc<DirectoryCache>`.
pub struct DirectoryCache {
    db: PgPool,
    snapshot: RwLock<Snapshot>,
    generations: AtomicU64,
    empty: Arc<Directory>,
}

impl std::fmt::Debug for DirectoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCache").finish_non_exhaustive()
    }
}

impl DirectoryCache {
    /// An empty cache reading from `db` (call [`Self::reload`] before serving).
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            snapshot: RwLock::new(Snapshot {
                generation: 0,
                accounts: Arc::default(),
            }),
            generations: AtomicU64::new(0),
            empty: Arc::new(Directory::default()),
        }
    }

    /// The directory `account` shows (empty if none): memory only.
    pub fn get(&self, account: &str) -> Arc<Directory> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .accounts
            .get(account)
            .cloned()
            .unwrap_or_else(|| self.empty.clone())
    }

    /// Rebuilds every account's matcher from the table. Returns the services shown.
    #[tracing::instrument(skip(self))]
    pub async fn reload(&self) -> Result<usize, sqlx::Error> {
        // Taken before reading, as in the rules cache: the highest generation holds
        // the newest snapshot, whatever order concurrent rebuilds finish in.
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let shown = store::list_shown(&self.db).await?;
        let total = shown.values().map(Vec::len).sum();
        let accounts: HashMap<String, Arc<Directory>> = shown
            .into_iter()
            .map(|(account, services)| (account, Arc::new(Directory::new(services))))
            .collect();
        let mut snapshot = self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if snapshot.generation < generation {
            *snapshot = Snapshot {
                generation,
                accounts: Arc::new(accounts),
            };
        }
        tracing::debug!(services = total, "directory loaded");
        Ok(total)
    }
}

/// Tells every replica the directory changed.
#[derive(Debug, Clone)]
pub struct DirectoryNotifier {
    nats: async_nats::Client,
    namespace: Namespace,
}

impl DirectoryNotifier {
    /// A notifier publishing on `nats` inside `namespace`.
    pub fn new(nats: async_nats::Client, namespace: Namespace) -> Self {
        Self { nats, namespace }
    }

    /// Best effort: a lost notice is repaired by the periodic rebuild.
    pub async fn changed(&self) {
        let subject = self.namespace.subject(CHANGED_SUBJECT);
        let sent = async {
            self.nats.publish(subject, Vec::new().into()).await?;
            self.nats.flush().await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        };
        if let Err(error) = sent.await {
            tracing::warn!(%error, "cannot announce a directory change; the periodic rebuild repairs it");
        }
    }
}

/// Rebuilds the matchers on each notice (a subscription to [`CHANGED_SUBJECT`]) and
/// every `interval`, until the drain begins.
pub async fn run_refresh(
    cache: Arc<DirectoryCache>,
    mut notices: async_nats::Subscriber,
    interval: Duration,
    drain: Drain,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        let cause = tokio::select! {
            () = drain.stopping().cancelled() => break,
            notice = notices.next() => {
                if notice.is_none() { break }
                "notice"
            }
            _ = ticks.tick() => "periodic",
        };
        metrics::counter!("interaction_directory_reloads_total", "cause" => cause).increment(1);
        if let Err(error) = cache.reload().await {
            tracing::warn!(%error, cause, "cannot rebuild the directory; the next notice or tick retries");
        }
    }
    let _ = notices.unsubscribe().await;
    tracing::info!("directory refresh stopped");
}
