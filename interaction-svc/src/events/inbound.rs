//! The `interaction-inbound` consumer: the runner decodes each WeChat callback and
//! hands a citizen's callbacks, in order, to one of its lanes; each batch is applied
//! in one transaction by `app::callbacks`, then the relay is woken and citizens whose
//! window reopened are handed to the [`HeldFlusher`], which sends their held answers
//! after the batch is acked.

use platform::ids::{AccountId, OpenId};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use platform::consumer::{EventHandler, HandleError, Received};
use platform::inbound::InboundEvent;
use platform::nats::{ConsumerSpec, DEFAULT_MAX_ACK_PENDING, PATIENT_DELIVERIES, WECHAT_INBOUND};
use platform::outbox::OutboxSignal;
use platform::shutdown::Drain;
use sqlx::PgPool;
use tracing::Instrument as _;

use super::held::HeldFlusher;
use crate::app::callbacks::{Applied, Callbacks};
use crate::domain::Intake;
use crate::replies::RulesCache;
use crate::replies::directory::DirectoryCache;

/// The durable consumer over every inbound callback.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "interaction-inbound",
    filter_subject: "wechat.inbound.>",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// Sends the answers held for a citizen who was outside the 48-hour window
/// (implemented by `delivery::Deliverer::flush_held`).
pub trait HeldAnswers: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;
    /// Sends what is held for `openid` on `account`; returns how many were sent.
    fn flush(
        &self,
        account: &AccountId,
        openid: &OpenId,
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send;
}

/// For installs (and tests) without WeChat API access: nothing is ever sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeldAnswers;

impl HeldAnswers for NoHeldAnswers {
    type Error = std::convert::Infallible;
    async fn flush(&self, _account: &AccountId, _openid: &OpenId) -> Result<usize, Self::Error> {
        Ok(0)
    }
}

/// Applies inbound callbacks.
pub struct InboundHandler<H> {
    db: PgPool,
    callbacks: Callbacks,
    signal: OutboxSignal,
    held: HeldFlusher<H>,
}

impl<H: HeldAnswers> InboundHandler<H> {
    /// A handler deciding with the shared rules cache (the reply path's too, so both
    /// decide alike), waking the relay through `signal` after each commit; held
    /// answers are sent by `held` in tasks of `drain`.
    pub fn new(
        db: PgPool,
        cache: Arc<RulesCache>,
        directory: Arc<DirectoryCache>,
        intake: Arc<Intake>,
        signal: OutboxSignal,
        held: H,
        drain: Drain,
    ) -> Self {
        Self {
            db,
            callbacks: Callbacks::new(cache, directory, intake),
            signal,
            held: HeldFlusher::new(held, drain),
        }
    }

    /// Applies `events` in one transaction: one commit for the lot.
    async fn apply_all(
        &self,
        events: &[Received<InboundEvent>],
    ) -> Result<Vec<Applied>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let inbound: Vec<&InboundEvent> = events.iter().map(|received| &received.event).collect();
        let span = tracing::debug_span!("inbound", events = inbound.len());
        let applied = self
            .callbacks
            .apply(&mut tx, &inbound)
            .instrument(span)
            .await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// After the commit: wake the relay and hand the citizens whose message reopened
    /// their 48-hour window to the flusher. Their WeChat calls are not awaited here:
    /// the lane would wait for them before the batch is acked, and so would every
    /// other citizen of the lane. A failed send leaves the answers held for the next
    /// message; the events are never retried for it (their effects are committed).
    fn after_commit(&self, events: &[Received<InboundEvent>], applied: &[Applied]) {
        let mut queued = false;
        for applied in applied {
            let outcome = match applied {
                Applied::NotACitizen => "not_a_citizen",
                Applied::Duplicate => "duplicate",
                Applied::Changed { queued_events, .. } => {
                    queued |= queued_events;
                    "applied"
                }
            };
            metrics::counter!("interaction_inbound_total", "outcome" => outcome).increment(1);
        }
        if queued {
            self.signal.notify();
        }
        for (received, applied) in events.iter().zip(applied) {
            if let Applied::Changed {
                held_answers: true, ..
            } = applied
            {
                self.held
                    .request(&received.event.account, &received.event.openid);
            }
        }
    }
}

impl<H: HeldAnswers> EventHandler for InboundHandler<H> {
    const CONSUMER: ConsumerSpec = CONSUMER;
    /// Four lanes: on two cores, eight applied a full stream 25-35% slower (more
    /// connections contending, smaller batches), two left a core idle
    /// (docs/reliability.md, "Soak").
    const CONCURRENCY: usize = 4;
    const BATCH: usize = 64;
    type Event = InboundEvent;

    /// A citizen's callbacks are applied in the order WeChat sent them.
    fn order_key(event: &InboundEvent) -> Option<&str> {
        Some(event.openid.as_str())
    }

    async fn handle(&self, event: &Received<InboundEvent>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<InboundEvent>]) -> Result<(), HandleError> {
        let applied = self
            .apply_all(events)
            .await
            .map_err(HandleError::database)?;
        self.after_commit(events, &applied);
        Ok(())
    }
}
