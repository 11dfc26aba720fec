//! The in-process token cache.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;

use super::{AccessToken, RefreshReason};
use crate::api::ApiError;

/// A token cache private to one process: one refresh at a time, tokens kept in memory.
///
/// Cloning shares the cache. Use it for command-line tools and tests; services with
/// replicas use [`super::SharedTokenCache`].
#[derive(Clone, Debug)]
pub struct LocalTokenCache {
    // The mutex is held across the fetch on purpose: it makes the refresh single-flight.
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    refresh_ahead: Duration,
}

#[derive(Debug)]
struct Slot {
    token: AccessToken,
    rejected: bool,
}

impl Default for LocalTokenCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(120))
    }
}

impl LocalTokenCache {
    /// Creates an empty cache that refreshes a token `refresh_ahead` before it expires.
    pub fn new(refresh_ahead: Duration) -> Self {
        Self {
            slots: Arc::default(),
            refresh_ahead,
        }
    }

    pub(crate) async fn get<F, Fut>(&self, appid: &str, fetch: F) -> Result<AccessToken, ApiError>
    where
        F: FnOnce(RefreshReason) -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        let mut slots = self.slots.lock().await;
        let reason = match slots.get(appid) {
            Some(slot) if !slot.rejected && slot.token.is_fresh(Utc::now(), self.refresh_ahead) => {
                return Ok(slot.token.clone());
            }
            Some(slot) if slot.rejected => RefreshReason::Rejected(Some(slot.token.clone())),
            _ => RefreshReason::Expiring,
        };
        let token = fetch(reason)
            .await
            .inspect_err(|error| super::record_refresh_failure(appid, error))?;
        slots.insert(
            appid.to_owned(),
            Slot {
                token: token.clone(),
                rejected: false,
            },
        );
        Ok(token)
    }

    pub(crate) async fn invalidate(&self, appid: &str, failed: &AccessToken) {
        if let Some(slot) = self.slots.lock().await.get_mut(appid)
            && slot.token == *failed
        {
            slot.rejected = true;
        }
    }
}
