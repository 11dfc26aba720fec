//! The outbox relay: publishes queued events to the INTERACTION stream and marks them
//! published. Woken right after a commit that queued something, and polling as a
//! safety net (for writers that do not wake it, and after NATS outages).
//!
//! Several replicas relay at once without losing or repeating an event: each locks
//! its batch with `FOR UPDATE SKIP LOCKED`, and the `Nats-Msg-Id` is the event id,
//! so a batch published again after a crash (before it was marked) is dropped by
//! JetStream's duplicate window.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use platform::nats::Namespace;
use platform::shutdown::Drain;
use sqlx::PgPool;
use tokio::sync::Notify;

/// Events relayed per transaction.
const BATCH: i64 = 200;

/// Wakes the relay after a commit that queued events. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// A signal nobody listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the relay there is something to publish (a wake-up is never lost: it is
    /// kept until the relay next waits).
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Why a relay pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("publish to {subject}: {reason}")]
    Publish { subject: String, reason: String },
}

/// Publishes the outbox.
#[derive(Debug, Clone)]
pub struct Relay {
    db: PgPool,
    jetstream: jetstream::Context,
    namespace: Namespace,
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    event_id: String,
    subject: String,
    payload: Vec<u8>,
}

impl Relay {
    /// A relay from the database to JetStream inside `namespace`.
    pub fn new(db: PgPool, jetstream: jetstream::Context, namespace: Namespace) -> Self {
        Self {
            db,
            jetstream,
            namespace,
        }
    }

    /// Publishes one batch and returns how many events it published. Rows whose
    /// publish was not acknowledged stay unpublished for the next pass.
    #[tracing::instrument(skip_all)]
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.db.begin().await?;
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT id, event_id, subject, payload FROM outbox
              WHERE published_at IS NULL
              ORDER BY id LIMIT $1
              FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        // Send the whole batch, then await the acks: one round trip, not one per event.
        let mut acks = Vec::with_capacity(pending.len());
        let mut failure = None;
        for event in &pending {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
            let subject = self.namespace.subject(&event.subject);
            match self
                .jetstream
                .publish_with_headers(subject.clone(), headers, event.payload.clone().into())
                .await
            {
                Ok(ack) => acks.push((event.id, subject, ack)),
                Err(error) => {
                    failure = Some(RelayError::Publish {
                        subject,
                        reason: error.to_string(),
                    });
                    break;
                }
            }
        }
        let mut published = Vec::with_capacity(acks.len());
        for (id, subject, ack) in acks {
            match ack.await {
                Ok(_) => published.push(id),
                Err(error) => {
                    failure.get_or_insert(RelayError::Publish {
                        subject,
                        reason: error.to_string(),
                    });
                }
            }
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("interaction_outbox_published_total").increment(published.len() as u64);
        match failure {
            Some(error) => Err(error),
            None => Ok(published.len()),
        }
    }

    /// Publishes until the outbox is empty.
    pub async fn publish_pending(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let published = self.publish_batch().await?;
            total += published;
            if published < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Relays on every signal and every `poll`, until the drain begins; then one last
    /// pass publishes what the finished in-flight work queued.
    pub async fn run(self, signal: OutboxSignal, poll: Duration, drain: Drain) {
        tracing::info!("outbox relay started");
        loop {
            if let Err(error) = self.publish_pending().await {
                metrics::counter!("interaction_outbox_errors_total").increment(1);
                tracing::warn!(%error, "outbox relay pass failed; retrying later");
            }
            tokio::select! {
                () = drain.stopping().cancelled() => break,
                () = signal.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        // The consumer stops with the drain too; give its last commit a moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(error) = self.publish_pending().await {
            tracing::warn!(%error, "final outbox pass failed; the next replica publishes the rest");
        }
        tracing::info!("outbox relay stopped");
    }
}
