//! The access-token cache shared by every replica through a NATS KV bucket.
//!
//! One key per appid holds one of three states (JSON):
//! - `valid`: the token and its expiry;
//! - `refreshing`: a lease taken by the replica that is fetching a new token;
//! - `invalid`: WeChat rejected the token that was here.
//!
//! Every transition is a compare-and-set on the key's revision, so of any number of
//! replicas that see a missing, expiring or rejected token exactly one wins the lease and
//! calls WeChat; the others watch the key until the new token lands. A lease a replica
//! has seen unchanged for the lease's length on its own clock (the winner crashed) is
//! taken over. Only the bucket's stream limits are
//! used (no per-message TTL), which NATS 2.9 supports.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{AccessToken, RefreshReason, TokenCacheError};
use crate::api::ApiError;

/// Settings of a [`SharedTokenCache`].
#[derive(Debug, Clone)]
pub struct SharedCacheConfig {
    /// The KV bucket; environments and tests each use their own.
    pub bucket: String,
    /// How long before expiry a token is refreshed. Keep it under the 5 minutes in which
    /// `stable_token` starts handing out the successor, or refreshes return the old token.
    pub refresh_ahead: Duration,
    /// How long a refresher may hold the lease before another replica takes over,
    /// counted on the other replica's monotonic clock from when it first saw the lease.
    pub lease: Duration,
    /// How long a caller waits for another replica's refresh before giving up.
    pub wait_timeout: Duration,
    /// Copies of the bucket a new bucket is created with: the install's
    /// `NATS_REPLICAS` (3 on the prod cluster), or a node's loss takes every
    /// replica's tokens with it. An existing bucket's are raised by the service
    /// (`platform::nats::replicate_bucket`, which knows the cluster's size).
    pub replicas: usize,
}

impl SharedCacheConfig {
    /// Returns the defaults (2 min ahead, 20 s lease, 25 s wait) for `bucket`. The
    /// holder renews its lease every third of it while fetching, so a slow refresh is
    /// not taken over (and paid for) twice; the wait outlasts the lease, so a waiter
    /// can take over a dead refresher's.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            refresh_ahead: Duration::from_secs(120),
            lease: Duration::from_secs(20),
            wait_timeout: Duration::from_secs(25),
            replicas: 1,
        }
    }

    /// The same, the bucket created with `replicas` copies.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }
}

/// The default bucket name for production use.
pub const DEFAULT_BUCKET: &str = "wechat_access_tokens";

/// An access-token cache shared by all replicas through one NATS KV bucket, keyed by appid.
///
/// Cloning is cheap and shares the process-local copy of the last token read, so a call
/// only touches NATS when the token is near expiry or was rejected.
#[derive(Clone)]
pub struct SharedTokenCache {
    // Boxed behind an Arc: the store handle is over a kilobyte and clones are frequent.
    kv: Arc<kv::Store>,
    config: Arc<SharedCacheConfig>,
    // The last valid token seen per appid, so the hot path does not read the bucket.
    memo: Arc<Mutex<HashMap<String, AccessToken>>>,
    // Per appid, the refresh lease (its revision) this process is waiting on and when
    // it first saw it, on this process's monotonic clock.
    leases_seen: Arc<Mutex<HashMap<String, (u64, tokio::time::Instant)>>>,
    // Per appid, the last token WeChat rejected for this process: a lease's `current`
    // equal to it is never handed out again (the refresher may not know yet).
    rejected: Arc<Mutex<HashMap<String, String>>>,
    holder: Arc<str>,
}

impl std::fmt::Debug for SharedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokenCache")
            .field("bucket", &self.config.bucket)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Slot {
    Valid {
        token: String,
        expires_at: DateTime<Utc>,
    },
    Refreshing {
        holder: String,
        lease_until: DateTime<Utc>,
        reason: Reason,
        /// The token being replaced ahead of its expiry: still good, so other
        /// replicas use it instead of waiting for the refresh.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<Current>,
        /// The token WeChat rejected, for a refresh for that reason (carried so a
        /// replica taking the lease over knows it too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<Current>,
    },
    Invalid {
        /// The token WeChat rejected: the refresh asks `stable_token` in normal mode
        /// first and forces a new token only if WeChat hands this one back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<Current>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Current {
    token: String,
    expires_at: DateTime<Utc>,
}

impl Current {
    fn of(token: &AccessToken) -> Self {
        Self {
            token: token.secret().to_owned(),
            expires_at: token.expires_at(),
        }
    }

    fn token(&self) -> AccessToken {
        AccessToken::new(self.token.clone(), self.expires_at)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reason {
    Expiring,
    Rejected,
}

impl Reason {
    fn refresh_reason(self, rejected: Option<&Current>) -> RefreshReason {
        match self {
            Self::Expiring => RefreshReason::Expiring,
            Self::Rejected => RefreshReason::Rejected(rejected.map(Current::token)),
        }
    }
}

/// What a read of the key found.
enum Seen {
    /// No key, or a delete marker at `revision` (0 when the key never existed).
    Empty {
        revision: u64,
    },
    Slot {
        slot: Slot,
        revision: u64,
    },
}

impl SharedTokenCache {
    /// Opens the cache on `config.bucket`, creating the bucket (history 1) if it is absent.
    pub async fn open(
        jetstream: &jetstream::Context,
        config: SharedCacheConfig,
    ) -> Result<Self, TokenCacheError> {
        let kv = match jetstream.get_key_value(&config.bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                create_bucket(jetstream, &config).await?;
                jetstream
                    .get_key_value(&config.bucket)
                    .await
                    .map_err(|e| TokenCacheError::kv("open bucket", e))?
            }
        };
        Ok(Self {
            kv: Arc::new(kv),
            config: Arc::new(config),
            memo: Arc::default(),
            leases_seen: Arc::default(),
            rejected: Arc::default(),
            holder: uuid_like().into(),
        })
    }

    /// Returns the bucket this cache uses.
    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// Returns a valid token for `appid`; `fetch` is called only if this replica wins the
    /// refresh lease.
    #[tracing::instrument(skip_all, fields(appid = %appid, bucket = %self.config.bucket))]
    pub(crate) async fn get<F, Fut>(&self, appid: &str, fetch: F) -> Result<AccessToken, ApiError>
    where
        F: FnOnce(RefreshReason) -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        check_key(appid)?;
        if let Some(token) = self.memoised(appid) {
            return Ok(token);
        }
        let deadline = tokio::time::Instant::now() + self.config.wait_timeout;
        loop {
            let now = Utc::now();
            let (lease_from, reason, rejected) = match self.read(appid).await? {
                Seen::Slot {
                    slot: Slot::Valid { token, expires_at },
                    revision,
                } => {
                    let token = AccessToken::new(token, expires_at);
                    if token.is_fresh(now, self.config.refresh_ahead) {
                        self.remember(appid, &token);
                        return Ok(token);
                    }
                    if token.is_unexpired(now) {
                        // Refresh ahead of expiry; if another replica already is, the
                        // current token is still good for this call.
                        let lease = self
                            .try_lease(appid, revision, Reason::Expiring, Some(&token), None)
                            .await?;
                        match lease {
                            Some(lease) => {
                                return self
                                    .refresh(
                                        appid,
                                        lease,
                                        Reason::Expiring,
                                        None,
                                        Some(token),
                                        fetch,
                                    )
                                    .await;
                            }
                            None => return Ok(token),
                        }
                    }
                    (revision, Reason::Expiring, None)
                }
                Seen::Slot {
                    slot: Slot::Invalid { rejected },
                    revision,
                } => (revision, Reason::Rejected, rejected),
                Seen::Empty { revision } => (revision, Reason::Expiring, None),
                Seen::Slot {
                    slot:
                        Slot::Refreshing {
                            lease_until,
                            reason,
                            holder,
                            current,
                            rejected,
                        },
                    revision,
                } => {
                    // A current token WeChat has just rejected here is not handed out
                    // again (the retry would fail the same way): wait for the refresher,
                    // and if it dies, take over for a rejected token.
                    let (current, reason, rejected) = match current {
                        Some(c) if self.was_rejected(appid, &c.token) => {
                            (None, Reason::Rejected, rejected.or(Some(c)))
                        }
                        other => (other, reason, rejected),
                    };
                    if let Some(current) = current.map(|c| c.token())
                        && current.is_unexpired(now)
                    {
                        // Being refreshed ahead of expiry: the current token still
                        // serves (not memoised: the new one will be read soon).
                        return Ok(current);
                    }
                    // The lease is judged on this replica's own clock, from when it
                    // first saw this revision of it: `lease_until` was written with the
                    // holder's clock, and a few seconds' skew between replicas would let
                    // one take over a refresh still under way (or wait on a dead one
                    // long past its lease). The holder wrote it before we saw it, so it
                    // has had at least the full lease when we take over.
                    let stale_at = self.lease_seen(appid, revision) + self.config.lease;
                    if tokio::time::Instant::now() < stale_at {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(TokenCacheError::WaitTimeout {
                                appid: appid.to_owned(),
                            }
                            .into());
                        }
                        self.wait_for_change(appid, revision, stale_at.min(deadline))
                            .await;
                        continue;
                    }
                    tracing::warn!(stale_holder = %holder, %lease_until, "taking over a stale token refresh lease");
                    (revision, reason, rejected)
                }
            };
            if let Some(lease) = self
                .try_lease(appid, lease_from, reason, None, rejected.as_ref())
                .await?
            {
                return self
                    .refresh(appid, lease, reason, rejected, None, fetch)
                    .await;
            }
            // Lost the race for the lease: read again and wait for the winner.
        }
    }

    /// Marks the token as rejected for every replica, but only if the bucket still holds
    /// exactly `failed`: a replica late with its 40001 must not wipe a fresh token.
    #[tracing::instrument(skip_all, fields(appid = %appid, bucket = %self.config.bucket))]
    pub(crate) async fn invalidate(
        &self,
        appid: &str,
        failed: &AccessToken,
    ) -> Result<(), ApiError> {
        check_key(appid)?;
        {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            if memo.get(appid) == Some(failed) {
                memo.remove(appid);
            }
        }
        {
            let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
            rejected.insert(appid.to_owned(), failed.secret().to_owned());
        }
        let (replacement, revision) = match self.read(appid).await? {
            Seen::Slot {
                slot: Slot::Valid { token, .. },
                revision,
            } if token == failed.secret() => (
                Slot::Invalid {
                    rejected: Some(Current::of(failed)),
                },
                revision,
            ),
            // Another replica is refreshing ahead of expiry and offers `failed`
            // meanwhile: withdraw it, so no replica retries with it, and say why, so a
            // replica taking the lease over refreshes for a rejected token.
            Seen::Slot {
                slot:
                    Slot::Refreshing {
                        holder,
                        lease_until,
                        current: Some(current),
                        ..
                    },
                revision,
            } if current.token == failed.secret() => (
                Slot::Refreshing {
                    holder,
                    lease_until,
                    reason: Reason::Rejected,
                    current: None,
                    rejected: Some(current),
                },
                revision,
            ),
            _ => return Ok(()),
        };
        match self.kv.update(appid, encode(&replacement), revision).await {
            Ok(_) => {
                tracing::info!("access token rejected by wechat; invalidated for all replicas")
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(TokenCacheError::kv("invalidate", e).into()),
        }
        Ok(())
    }

    fn was_rejected(&self, appid: &str, token: &str) -> bool {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        rejected.get(appid).is_some_and(|t| t == token)
    }

    fn memoised(&self, appid: &str) -> Option<AccessToken> {
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.get(appid)
            .filter(|t| t.is_fresh(Utc::now(), self.config.refresh_ahead))
            .cloned()
    }

    /// Returns when this process first saw the lease at `revision` of `appid`'s key.
    fn lease_seen(&self, appid: &str, revision: u64) -> tokio::time::Instant {
        let mut seen = self.leases_seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(appid) {
            Some(&(seen_revision, at)) if seen_revision == revision => at,
            _ => {
                let now = tokio::time::Instant::now();
                seen.insert(appid.to_owned(), (revision, now));
                now
            }
        }
    }

    fn remember(&self, appid: &str, token: &AccessToken) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert(appid.to_owned(), token.clone());
    }

    async fn read(&self, appid: &str) -> Result<Seen, TokenCacheError> {
        let entry = self
            .kv
            .entry(appid)
            .await
            .map_err(|e| TokenCacheError::kv("read", e))?;
        Ok(match entry {
            None => Seen::Empty { revision: 0 },
            Some(entry) if entry.operation != kv::Operation::Put => Seen::Empty {
                revision: entry.revision,
            },
            Some(entry) => match serde_json::from_slice(&entry.value) {
                Ok(slot) => Seen::Slot {
                    slot,
                    revision: entry.revision,
                },
                Err(error) => {
                    // An unreadable value is treated as a rejected token so it gets replaced.
                    tracing::warn!(%error, "unreadable token cache entry; replacing it");
                    Seen::Slot {
                        slot: Slot::Invalid { rejected: None },
                        revision: entry.revision,
                    }
                }
            },
        })
    }

    /// Tries to take the refresh lease by replacing revision `revision` (0: no key),
    /// leaving `current` (a token refreshed ahead of its expiry) for the others, and
    /// `rejected` for a replica that may take the lease over.
    /// Returns the lease's revision, or `None` if another replica got there first.
    async fn try_lease(
        &self,
        appid: &str,
        revision: u64,
        reason: Reason,
        current: Option<&AccessToken>,
        rejected: Option<&Current>,
    ) -> Result<Option<u64>, TokenCacheError> {
        let lease_until =
            Utc::now() + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let value = encode(&Slot::Refreshing {
            holder: self.holder.to_string(),
            lease_until,
            reason,
            current: current.map(Current::of),
            rejected: rejected.cloned(),
        });
        // `update` with expected revision 0 means "the key must not exist", and with a
        // delete marker's revision it replaces the marker: both are the same CAS.
        match self.kv.update(appid, value, revision).await {
            Ok(lease) => Ok(Some(lease)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(TokenCacheError::kv("take lease", e)),
        }
    }

    async fn refresh<F, Fut>(
        &self,
        appid: &str,
        lease: u64,
        reason: Reason,
        rejected: Option<Current>,
        current: Option<AccessToken>,
        fetch: F,
    ) -> Result<AccessToken, ApiError>
    where
        F: FnOnce(RefreshReason) -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        // A refresh dropped half-way (a cancelled gRPC call, shutdown) gives the lease
        // back, or every replica would wait its whole length before taking over.
        let mut guard = LeaseGuard {
            cache: self.clone(),
            appid: appid.to_owned(),
            lease,
            current: current.clone(),
            armed: true,
        };
        let result = self
            .refresh_under(appid, &mut guard.lease, reason, rejected, current, fetch)
            .await;
        guard.armed = false;
        result
    }

    /// Fetches a token under the lease at revision `*lease` (kept up to date as the
    /// lease is renewed) and stores it, or releases the lease if the fetch fails.
    async fn refresh_under<F, Fut>(
        &self,
        appid: &str,
        lease: &mut u64,
        reason: Reason,
        rejected: Option<Current>,
        current: Option<AccessToken>,
        fetch: F,
    ) -> Result<AccessToken, ApiError>
    where
        F: FnOnce(RefreshReason) -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        tracing::info!(?reason, "refreshing access token");
        let fetched = self
            .renewing(
                appid,
                lease,
                fetch(reason.refresh_reason(rejected.as_ref())),
            )
            .await;
        let lease = *lease;
        let token = match fetched {
            Ok(token) => token,
            Err(error) => {
                super::record_refresh_failure(appid, &error);
                // A token refreshed ahead of expiry goes back and serves on, unless
                // WeChat rejected it meanwhile (here, or for a replica that withdrew
                // it from the lease).
                let current = current.filter(|t| {
                    t.is_unexpired(Utc::now()) && !self.was_rejected(appid, t.secret())
                });
                // Release the lease at once so the next caller retries without waiting
                // it out.
                let restored = match self.release(appid, lease, current.as_ref()).await {
                    Ok(restored) => restored,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot release token refresh lease");
                        current.is_some()
                    }
                };
                return match current {
                    Some(token) if restored => {
                        tracing::warn!(%error, "token refresh failed; the current token serves until it expires");
                        Ok(token)
                    }
                    _ => Err(error),
                };
            }
        };
        let value = encode(&Slot::Valid {
            token: token.secret().to_owned(),
            expires_at: token.expires_at(),
        });
        let mut revision = lease;
        loop {
            match self.kv.update(appid, value.clone(), revision).await {
                Ok(_) => {
                    self.remember(appid, &token);
                    break;
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    match self.own_lease(appid).await? {
                        // An invalidation withdrew the lease's current token: still ours.
                        Some((newer, _)) if newer != revision => revision = newer,
                        _ => {
                            // Our lease went stale and someone took over: our token serves
                            // this call, but theirs (which may have superseded it) is what
                            // the next one reads.
                            tracing::warn!(
                                "token refresh lease was taken over before the token was stored"
                            );
                            break;
                        }
                    }
                }
                Err(e) => return Err(TokenCacheError::kv("store token", e).into()),
            }
        }
        Ok(token)
    }

    /// Runs `fetch`, renewing this process's lease every third of its length meanwhile:
    /// a refresh after a rejected token can take longer than one lease (busy answers,
    /// then a forced fetch), and a waiter taking it over would force a second new
    /// token, which kills the first. `*lease` follows the renewals.
    async fn renewing<T>(&self, appid: &str, lease: &mut u64, fetch: impl Future<Output = T>) -> T {
        tokio::pin!(fetch);
        let every = self.config.lease / 3;
        loop {
            tokio::select! {
                out = &mut fetch => return out,
                () = tokio::time::sleep(every) => match self.renew(appid).await {
                    Ok(Some(renewed)) => *lease = renewed,
                    // Taken over or gone: the fetch goes on; storing its token will see.
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot renew token refresh lease"),
                },
            }
        }
    }

    /// Pushes this process's lease on `appid` one lease length further (a new
    /// revision, which restarts every waiter's count). `None` if it is not ours.
    async fn renew(&self, appid: &str) -> Result<Option<u64>, TokenCacheError> {
        let Seen::Slot {
            slot:
                Slot::Refreshing {
                    holder,
                    reason,
                    current,
                    rejected,
                    ..
                },
            revision,
        } = self.read(appid).await?
        else {
            return Ok(None);
        };
        if *holder != *self.holder {
            return Ok(None);
        }
        let value = encode(&Slot::Refreshing {
            holder,
            lease_until: Utc::now()
                + chrono::Duration::from_std(self.config.lease).unwrap_or_default(),
            reason,
            current,
            rejected,
        });
        match self.kv.update(appid, value, revision).await {
            Ok(renewed) => Ok(Some(renewed)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(TokenCacheError::kv("renew lease", e)),
        }
    }

    /// This process's lease on `appid`'s key as it stands now: its revision and whether
    /// it still carries its current token; `None` if the key holds something else.
    async fn own_lease(&self, appid: &str) -> Result<Option<(u64, bool)>, TokenCacheError> {
        Ok(match self.read(appid).await? {
            Seen::Slot {
                slot: Slot::Refreshing {
                    holder, current, ..
                },
                revision,
            } if *holder == *self.holder => Some((revision, current.is_some())),
            _ => None,
        })
    }

    /// Gives up the lease taken at revision `lease`: puts `current` back as valid, or
    /// deletes the lease. An invalidation may have rewritten the lease since (without
    /// its current token, which then does not go back). Returns whether `current` went
    /// back.
    async fn release(
        &self,
        appid: &str,
        lease: u64,
        current: Option<&AccessToken>,
    ) -> Result<bool, String> {
        let (mut revision, mut current) = (lease, current);
        for _ in 0..2 {
            let written = match current {
                Some(token) => self
                    .kv
                    .update(
                        appid,
                        encode(&Slot::Valid {
                            token: token.secret().to_owned(),
                            expires_at: token.expires_at(),
                        }),
                        revision,
                    )
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .delete_expect_revision(appid, Some(revision))
                    .await
                    .map_err(|e| e.to_string()),
            };
            let error = match written {
                Ok(()) => return Ok(current.is_some()),
                Err(e) => e,
            };
            match self.own_lease(appid).await.map_err(|e| e.to_string())? {
                Some((newer, has_current)) if newer != revision => {
                    revision = newer;
                    if !has_current {
                        current = None;
                    }
                }
                // Taken over (or already gone): nothing of ours to release.
                None => return Ok(false),
                Some(_) => return Err(error),
            }
        }
        Err("the lease kept changing".to_owned())
    }

    /// Waits until the key moves past `revision` or `until` passes. Falls back to a
    /// short sleep if a watch cannot be set up.
    async fn wait_for_change(&self, appid: &str, revision: u64, until: tokio::time::Instant) {
        let mut watch = match self.kv.watch(appid).await {
            Ok(watch) => watch,
            Err(error) => {
                tracing::warn!(%error, "cannot watch token cache; polling");
                tokio::time::sleep_until(
                    until.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                )
                .await;
                return;
            }
        };
        // The watch only delivers new writes; re-read to catch one that landed before it.
        if let Ok(Some(entry)) = self.kv.entry(appid).await
            && entry.revision != revision
        {
            return;
        }
        let _ = tokio::time::timeout_at(until, watch.next()).await;
    }
}

/// Gives a refresh's lease back if the refresh is dropped before it settled it.
struct LeaseGuard {
    cache: SharedTokenCache,
    appid: String,
    lease: u64,
    current: Option<AccessToken>,
    armed: bool,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Without a runtime (shut down) the lease is left to go stale, as before.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (cache, appid, lease) = (
            self.cache.clone(),
            std::mem::take(&mut self.appid),
            self.lease,
        );
        let current = self.current.take();
        runtime.spawn(async move {
            let current = current
                .filter(|t| t.is_unexpired(Utc::now()) && !cache.was_rejected(&appid, t.secret()));
            match cache.release(&appid, lease, current.as_ref()).await {
                Ok(_) => tracing::info!(appid, "released the lease of a cancelled token refresh"),
                Err(error) => {
                    tracing::warn!(appid, %error, "cannot release the lease of a cancelled token refresh")
                }
            }
        });
    }
}

/// The stream of KV bucket `bucket`, as `create_key_value` would create it (history 1,
/// rollups, direct gets).
///
/// `create_key_value` in async-nats 0.51 first reads the account info, whose NATS 2.9
/// shape it cannot parse; creating this stream with `get_or_create_stream` needs no
/// account info, and creating an identical stream twice succeeds, so racing replicas
/// are fine. The gateway's reply bucket uses it too.
pub fn kv_bucket_stream(
    bucket: &str,
    description: &str,
    max_age: Duration,
) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

async fn create_bucket(
    jetstream: &jetstream::Context,
    config: &SharedCacheConfig,
) -> Result<(), TokenCacheError> {
    jetstream
        .get_or_create_stream(bucket_stream(config))
        .await
        .map_err(|e| TokenCacheError::kv("create bucket", e))?;
    Ok(())
}

/// The token bucket's stream, with the configured copies.
fn bucket_stream(config: &SharedCacheConfig) -> jetstream::stream::Config {
    // Keys of retired accounts age out; live keys are rewritten every ~2 h.
    jetstream::stream::Config {
        num_replicas: config.replicas.max(1),
        ..kv_bucket_stream(
            &config.bucket,
            "wechat access tokens, one key per appid",
            Duration::from_secs(24 * 3600),
        )
    }
}

fn encode(slot: &Slot) -> bytes::Bytes {
    serde_json::to_vec(slot)
        .expect("token slot serialises")
        .into()
}

fn check_key(appid: &str) -> Result<(), TokenCacheError> {
    let ok = !appid.is_empty()
        && appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TokenCacheError::InvalidKey(appid.to_owned()))
    }
}

/// A process-unique holder id for lease markers, for operators reading the bucket.
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_entry_without_the_rejected_token_still_reads() {
        // Written by a replica of an earlier version during a rolling upgrade.
        let old: Slot = serde_json::from_str(r#"{"state":"invalid"}"#).unwrap();
        assert!(matches!(old, Slot::Invalid { rejected: None }));
        let new = encode(&Slot::Invalid {
            rejected: Some(Current {
                token: "T".into(),
                expires_at: Utc::now(),
            }),
        });
        let read: Slot = serde_json::from_slice(&new).unwrap();
        assert!(matches!(read, Slot::Invalid { rejected: Some(c) } if c.token == "T"));
    }

    #[test]
    fn the_token_bucket_is_created_with_the_configured_replicas() {
        let config = SharedCacheConfig::new("wechat_access_tokens").with_replicas(3);
        let stream = bucket_stream(&config);
        assert_eq!(stream.num_replicas, 3);
        assert_eq!(stream.name, "KV_wechat_access_tokens");
        assert_eq!(
            bucket_stream(&SharedCacheConfig::new("b")).num_replicas,
            1,
            "a single server's default"
        );
    }
}
