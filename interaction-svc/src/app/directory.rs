//! The bootstrap of the directory's replica (`directory_services`) from content-svc's
//! gRPC API; content-svc's change events are applied by `events::directory`, each
//! once, an older version never over a newer one (`store::directory::apply`).

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::content::{ContentDirectory, ContentError};
use crate::store::directory::{self as store, ServiceVersion};

/// Services read from content-svc at once during a pass.
const FETCH_CONCURRENCY: usize = 8;

/// What one bootstrap pass did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Distinct services content-svc lists on the accounts read.
    pub listed: usize,
    /// Listed services unknown here, inserted.
    pub inserted: usize,
    /// Services known here whose content-svc version is newer (changed, disabled
    /// or unshared in content-svc while the event was missed), brought up to it.
    pub updated: usize,
    /// Services shown here that content-svc no longer has, now deleted here.
    pub retired: usize,
    /// Accounts that could not be listed, and why; the others were synced.
    pub failed: Vec<(String, ContentError)>,
}

impl SyncReport {
    /// Whether the replica changed (the matchers must be rebuilt).
    pub fn changed(&self) -> bool {
        self.inserted + self.updated + self.retired > 0
    }
}

/// Why a bootstrap pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("interaction database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Brings the replica up to content-svc's directory for `accounts`, for what the
/// CONTENT stream no longer holds (it keeps 30 days): a fresh install, a new
/// account, a database restored from an old backup.
///
/// - Every service content-svc lists (one category at a time) that is unknown here
///   is read in full and inserted **only if still absent**: a version a replicated
///   event wrote meanwhile is never overwritten. It is stamped with content-svc's
///   `updated_at`, so an older event still in the stream does not replace it either.
/// - Every listed service known here, and every one shown here on an account read
///   but not listed there, is read in full too: content-svc's version (renamed,
///   moved to another page, disabled, no longer shared while its event was missed:
///   dead-lettered, or a restored database) is applied when its `updated_at` is
///   newer than the copy's `changed_at`, and one content-svc no longer has is
///   deleted here (ids are never reused, so that is final).
///
/// Several replicas may run it at once: every write is idempotent.
pub async fn bootstrap(
    db: &PgPool,
    content: &ContentDirectory,
    accounts: &[String],
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let categories = content.categories().await?;
    let mut listed: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    'accounts: for account in accounts {
        let mut ids = HashSet::new();
        for category in &categories {
            match content.listed(account, category).await {
                Ok(found) => ids.extend(found),
                Err(ContentError::Unavailable(reason)) => {
                    return Err(ContentError::Unavailable(reason).into());
                }
                Err(error) => {
                    report.failed.push((account.clone(), error));
                    continue 'accounts;
                }
            }
        }
        listed.insert(account.as_str(), ids);
    }
    let all: HashSet<Uuid> = listed.values().flatten().copied().collect();
    report.listed = all.len();

    let known = store::known_ids(db).await?;
    let missing: Vec<Uuid> = all.difference(&known).copied().collect();
    let fetched = fetch(content, &missing).await?;
    let mut tx = db.begin().await?;
    for version in fetched.iter().flatten() {
        if store::insert_if_absent(&mut tx, version).await? {
            report.inserted += 1;
        }
    }
    tx.commit().await?;

    // Listed ones may have changed as well as unlisted ones: ListServices carries no
    // update time, so each is read and its time compared with the copy's.
    let inserted: HashSet<Uuid> = missing.iter().copied().collect();
    let mut stale: Vec<Uuid> = all.difference(&inserted).copied().collect();
    stale.extend(
        store::shown_ids(db)
            .await?
            .into_iter()
            .filter(|(id, shown)| {
                !all.contains(id)
                    && shown.iter().any(|account| {
                        listed
                            .get(account.as_str())
                            .is_some_and(|ids| !ids.contains(id))
                    })
            })
            .map(|(id, _)| id),
    );
    let copies = store::changed_at(db, &stale).await?;
    let current = fetch(content, &stale).await?;
    let now = Utc::now();
    let mut tx = db.begin().await?;
    for (id, version) in stale.iter().zip(current) {
        match version {
            Some(version) => {
                // Only a strictly newer version: an equal time is the copy's own
                // version (the event ids would otherwise break the tie at random).
                let newer = copies
                    .get(id)
                    .is_none_or(|copied| version.changed_at > *copied);
                if newer && store::apply(&mut tx, &version).await? {
                    report.updated += 1;
                }
            }
            None => {
                if store::retire(&mut tx, *id, now, &format!("bootstrap:{id}")).await? {
                    report.retired += 1;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Each service of `ids` in full (in order), `None` for one content-svc lacks; a
/// few at a time.
async fn fetch(
    content: &ContentDirectory,
    ids: &[Uuid],
) -> Result<Vec<Option<ServiceVersion>>, ContentError> {
    let mut fetched = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(FETCH_CONCURRENCY) {
        let calls: Vec<_> = chunk.iter().map(|id| content.service(*id)).collect();
        fetched.extend(futures::future::try_join_all(calls).await?);
    }
    Ok(fetched)
}
