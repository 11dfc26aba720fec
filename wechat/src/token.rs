//! Access-token sources: the NATS-KV cache shared by every replica, and a simple
//! in-process cache for single-process tools.
//!
//! WeChat keeps one live access token per appid: fetching a new one invalidates the
//! previous one after a short grace. Replicas that each refresh on their own knock each
//! other out (`wechat-protocol.md` §6 item 7), so services use [`SharedTokenCache`],
//! where exactly one replica refreshes under a compare-and-set and the others wait.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::ApiError;

mod local;
mod shared;

pub use local::LocalTokenCache;
pub use shared::{DEFAULT_BUCKET, SharedCacheConfig, SharedTokenCache, kv_bucket_stream};

/// An access token with its expiry. Its `Debug` output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    value: String,
    expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// Creates a token that expires at `expires_at`.
    pub fn new(value: impl Into<String>, expires_at: DateTime<Utc>) -> Self {
        Self {
            value: value.into(),
            expires_at,
        }
    }

    /// Returns the token text, to be sent as the `access_token` query parameter.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// Returns when WeChat will stop accepting the token.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Returns whether the token is still usable at `now` with `ahead` to spare.
    pub(crate) fn is_fresh(&self, now: DateTime<Utc>, ahead: Duration) -> bool {
        self.expires_at - now > chrono::Duration::from_std(ahead).unwrap_or_default()
    }

    /// Returns whether the token has not yet expired at `now`.
    pub(crate) fn is_unexpired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a source asks for a new token; it decides whether `stable_token` is called with
/// `force_refresh`, which WeChat limits (20 a day, 30 s apart) and which kills the
/// previous token at once, for every install holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshReason {
    /// No token is cached, or the cached one is close to its expiry.
    Expiring,
    /// WeChat rejected the cached token (40001, 40014, 42001): the token, when the
    /// source still knows it, so a fetch can tell whether WeChat's current token is
    /// another one (often: something else forced a refresh) or that same one.
    Rejected(Option<AccessToken>),
}

/// Where a [`crate::api::Client`] gets its access tokens.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// The cache shared by every replica through a NATS KV bucket; what services use.
    Shared(SharedTokenCache),
    /// A cache private to this process; fine for a single tool, wrong for replicas.
    Local(LocalTokenCache),
}

impl TokenSource {
    /// Returns a valid token for `appid`, calling `fetch` only when this process is the
    /// one that must refresh it.
    pub(crate) async fn get<F, Fut>(&self, appid: &str, fetch: F) -> Result<AccessToken, ApiError>
    where
        F: FnOnce(RefreshReason) -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        match self {
            Self::Shared(cache) => cache.get(appid, fetch).await,
            Self::Local(cache) => cache.get(appid, fetch).await,
        }
    }

    /// Marks `failed` as rejected by WeChat, unless the source already holds another token.
    pub(crate) async fn invalidate(
        &self,
        appid: &str,
        failed: &AccessToken,
    ) -> Result<(), ApiError> {
        match self {
            Self::Shared(cache) => cache.invalidate(appid, failed).await,
            Self::Local(cache) => {
                cache.invalidate(appid, failed).await;
                Ok(())
            }
        }
    }
}

impl From<SharedTokenCache> for TokenSource {
    fn from(cache: SharedTokenCache) -> Self {
        Self::Shared(cache)
    }
}

impl From<LocalTokenCache> for TokenSource {
    fn from(cache: LocalTokenCache) -> Self {
        Self::Local(cache)
    }
}

/// Failures of the shared token cache itself (not of WeChat).
#[derive(Debug, thiserror::Error)]
pub enum TokenCacheError {
    /// A NATS KV operation failed.
    #[error("token cache {op} failed")]
    Kv {
        /// The operation, for the log.
        op: &'static str,
        /// The NATS error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another replica held the refresh lease and no token appeared in time.
    #[error("timed out waiting for another replica to refresh the access token of {appid}")]
    WaitTimeout {
        /// The account whose token was awaited.
        appid: String,
    },
    /// The appid cannot be used as a KV key.
    #[error("appid {0:?} cannot be used as a token cache key")]
    InvalidKey(String),
}

impl TokenCacheError {
    pub(crate) fn kv(
        op: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Kv {
            op,
            source: Box::new(source),
        }
    }
}

/// Counts a failed access-token refresh (`wechat_token_refresh_failures_total`), what
/// operators alert on: every API call of the account fails until a refresh succeeds.
pub(crate) fn record_refresh_failure(appid: &str, error: &ApiError) {
    metrics::counter!("wechat_token_refresh_failures_total", "appid" => appid.to_owned())
        .increment(1);
    tracing::warn!(appid, %error, "access token refresh failed");
}
