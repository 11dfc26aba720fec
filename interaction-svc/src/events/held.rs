//! Held answers, sent in the background once a citizen's message reopened their
//! window: the customer-service deliverer, and the flusher the consumer hands
//! citizens to.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use platform::ids::{AccountId, OpenId};
use platform::shutdown::Drain;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::inbound::HeldAnswers;
use crate::delivery::{Deliverer, DeliveryError};

impl HeldAnswers for Deliverer {
    type Error = DeliveryError;
    async fn flush(&self, account: &AccountId, openid: &OpenId) -> Result<usize, Self::Error> {
        self.flush_held(account, openid).await
    }
}

/// How many citizens' held answers are sent at once. A flush is a WeChat call per
/// answer; more at once would only queue at WeChat's rate limits.
pub const FLUSH_CONCURRENCY: usize = 16;

/// A citizen whose held answers are wanted.
type Citizen = (AccountId, OpenId);

/// Sends held answers outside the consumer's lanes, so a returning citizen's WeChat
/// calls never hold up the other citizens of their lane (their batch is acked first).
/// One flush per citizen at a time: a request while theirs runs is merged into one
/// more pass after it (which sends what was held meanwhile), so their answers go
/// out in order. The tasks are the drain's: a stopping service finishes them.
pub struct HeldFlusher<H> {
    held: Arc<H>,
    drain: Drain,
    permits: Arc<Semaphore>,
    /// Citizens being flushed, and whether another pass was asked for meanwhile.
    running: Arc<Mutex<HashMap<Citizen, bool>>>,
}

impl<H: HeldAnswers> HeldFlusher<H> {
    pub fn new(held: H, drain: Drain) -> Self {
        Self {
            held: Arc::new(held),
            drain,
            permits: Arc::new(Semaphore::new(FLUSH_CONCURRENCY)),
            running: Arc::default(),
        }
    }

    /// Sends what is held for `openid` of `account` soon; returns at once.
    pub fn request(&self, account: &AccountId, openid: &OpenId) {
        let citizen = (account.clone(), openid.clone());
        match lock(&self.running).entry(citizen.clone()) {
            Entry::Occupied(mut again) => {
                *again.get_mut() = true;
                return;
            }
            Entry::Vacant(first) => {
                first.insert(false);
            }
        }
        let held = self.held.clone();
        let permits = self.permits.clone();
        let running = self.running.clone();
        let span = tracing::info_span!("held_flush", account = %account);
        self.drain.spawn(
            async move {
                loop {
                    flush_once(&*held, &permits, &citizen).await;
                    let mut running = lock(&running);
                    match running.get_mut(&citizen) {
                        Some(again) if *again => *again = false,
                        _ => {
                            running.remove(&citizen);
                            return;
                        }
                    }
                }
            }
            .instrument(span),
        );
    }
}

async fn flush_once<H: HeldAnswers>(held: &H, permits: &Semaphore, (account, openid): &Citizen) {
    // Never closed, so acquiring only waits.
    let _permit = permits.acquire().await;
    match held.flush(account, openid).await {
        Ok(sent) => tracing::info!(sent, "held answers sent"),
        // They stay held: a transient failure is retried after a backoff by
        // `jobs::held_retry` while the window is open, anything else goes out with
        // the citizen's next message.
        Err(error) => tracing::warn!(%error, "cannot send held answers; they stay held"),
    }
}

/// The map of running flushes; a panic elsewhere cannot leave it half-changed (every
/// change is one statement), so a poisoned lock is used as it is.
fn lock(
    running: &Mutex<HashMap<Citizen, bool>>,
) -> std::sync::MutexGuard<'_, HashMap<Citizen, bool>> {
    running
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
