//! Making a callback durable: a JetStream publish with `Nats-Msg-Id`, awaited until
//! the PubAck, retried with a short backoff until the publish deadline.

use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::{self, message::PublishMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::event::InboundEvent;

/// Longest wait for one PubAck before publishing again (JetStream drops the repeat);
/// at most a quarter of the deadline, so a short deadline still gets retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// What JetStream said about a stored callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Stored now.
    New,
    /// Already stored inside the duplicate window: a retried callback.
    Duplicate,
}

/// JetStream did not ack before the publish deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no PubAck after {attempts} attempts")]
pub struct NotDurable {
    pub attempts: u32,
}

/// Publishes waiting for the batching task, at most.
const QUEUE_CAPACITY: usize = 4096;

/// One publish handed to the batching task; the PubAck future goes back to the caller.
type Job = (
    async_nats::Subject,
    PublishMessage,
    oneshot::Sender<Result<PublishAckFuture, PublishError>>,
);

/// Publishes inbound events to `WECHAT_INBOUND`.
#[derive(Clone)]
pub struct Publisher {
    sends: mpsc::Sender<Job>,
    deadline: Duration,
}

impl Publisher {
    /// A publisher that keeps trying for `deadline` per event. Spawns the task that
    /// hands publishes to the NATS client in batches (see [`send_in_batches`]).
    pub fn new(jetstream: jetstream::Context, deadline: Duration) -> Self {
        // Bounded: while NATS cannot take publishes the queue fills and callbacks wait
        // (inside their deadline) instead of piling up messages nobody awaits.
        let (sends, jobs) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(send_in_batches(jetstream, jobs));
        Self { sends, deadline }
    }

    /// Publishes `event` and waits for its PubAck, retrying until the deadline.
    pub async fn publish(&self, event: &InboundEvent) -> Result<Durable, NotDurable> {
        let started = Instant::now();
        let until = started + self.deadline;
        let subject = async_nats::Subject::from(event.subject.as_str());
        let mut backoff = FIRST_BACKOFF;
        let attempt_timeout = ATTEMPT_TIMEOUT.min(self.deadline / 4);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let attempt_until = until.min(Instant::now() + attempt_timeout);
            let message = PublishMessage::build()
                .payload(event.payload.clone())
                .message_id(&event.event_id);
            let attempt = async {
                let (sent, ack) = oneshot::channel();
                self.sends
                    .send((subject.clone(), message, sent))
                    .await
                    .map_err(|_| "publisher stopped".to_owned())?;
                let ack = ack.await.map_err(|_| "publisher stopped".to_owned())?;
                ack.map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            let error = match tokio::time::timeout_at(attempt_until, attempt).await {
                Ok(Ok(ack)) if ack.duplicate => break Ok(Durable::Duplicate),
                Ok(Ok(_)) => break Ok(Durable::New),
                Ok(Err(error)) => error,
                Err(_) => "timed out waiting for the PubAck".to_owned(),
            };
            let retry_at = Instant::now() + backoff;
            if retry_at >= until {
                tracing::warn!(event_id = %event.event_id, attempts, %error, "publish not acknowledged before the deadline");
                break Err(NotDurable { attempts });
            }
            tracing::debug!(event_id = %event.event_id, attempts, %error, "publish failed; retrying");
            metrics::counter!("gateway_publish_retries_total").increment(1);
            tokio::time::sleep_until(retry_at).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        metrics::histogram!("gateway_publish_seconds").record(started.elapsed().as_secs_f64());
        result
    }
}

/// Hands publishes to the NATS client many at a time. Sent straight from each request,
/// a publish wakes the client's connection task, which tokio runs next (its LIFO slot)
/// and which then writes the one or two messages queued so far; nats-server then pays a
/// read per write. Yielding once before draining lets the other ready requests queue
/// theirs, so the connection task finds a batch and writes it at once (nats-server's
/// reads per callback fell about 4x at 64 connections, docs/benchmarks.md).
async fn send_in_batches(jetstream: jetstream::Context, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(256);
    loop {
        if jobs.recv_many(&mut batch, 256).await == 0 {
            return; // every Publisher is gone
        }
        tokio::task::yield_now().await;
        while let Ok(job) = jobs.try_recv() {
            batch.push(job);
        }
        for (subject, message, sent) in batch.drain(..) {
            // A callback that gave up (its attempt timed out) retries with a new job.
            if sent.is_closed() {
                continue;
            }
            let _ = sent.send(jetstream.send_publish(subject, message).await);
        }
    }
}
