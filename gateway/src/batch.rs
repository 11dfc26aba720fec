//! Everything the callback path sends to NATS goes through one task that hands it to
//! the client in batches: the inbound JetStream publishes, the reply cache's writes
//! and the passive-reply requests.
//!
//! Sent straight from each request, a message wakes the client's connection task,
//! which tokio runs next (its LIFO slot) and which then writes the one or two messages
//! queued so far; nats-server then pays a read per write. Yielding once before
//! draining lets the other ready requests queue theirs, so the connection task finds
//! a batch and writes it at once (docs/benchmarks.md: nats-server's reads per callback
//! fell about 4x at 64 connections; with a reply responder, batching the reply
//! requests and cache writes halved the CPU both the gateway and NATS spend per callback).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use async_nats::client::{Request, RequestError};
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck};
use async_nats::{Message, Subject};
use tokio::sync::{mpsc, oneshot};

/// Messages waiting for the batching task, at most. Bounded: while NATS cannot take
/// them the queue fills and callbacks wait (inside their deadline) instead of piling
/// up messages nobody awaits.
const QUEUE_CAPACITY: usize = 4096;
/// Messages handed to the client per wake-up, at most.
const BATCH: usize = 256;

/// A request already handed to the client, still waiting for its answer.
pub type PendingRequest = Pin<Box<dyn Future<Output = Result<Message, RequestError>> + Send>>;

/// The batching task stopped (the process is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the NATS batching task stopped")]
pub struct BatcherStopped;

enum Job {
    Publish {
        subject: Subject,
        message: PublishMessage,
        sent: oneshot::Sender<Result<PublishAckFuture, PublishError>>,
    },
    Request {
        subject: Subject,
        request: Request,
        sent: oneshot::Sender<PendingRequest>,
    },
}

impl Job {
    /// Whether whoever queued it has stopped waiting (its callback gave up).
    fn abandoned(&self) -> bool {
        match self {
            Self::Publish { sent, .. } => sent.is_closed(),
            Self::Request { sent, .. } => sent.is_closed(),
        }
    }
}

/// A handle on the batching task.
#[derive(Clone)]
pub struct NatsBatcher {
    jobs: mpsc::Sender<Job>,
}

impl NatsBatcher {
    /// Spawns the batching task for `jetstream` (and its client).
    pub fn new(jetstream: jetstream::Context) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(send_in_batches(jetstream, queue));
        Self { jobs }
    }

    /// Publishes once to JetStream and waits for the PubAck (no retry and no timeout
    /// here: callers add them).
    pub async fn publish(
        &self,
        subject: Subject,
        message: PublishMessage,
    ) -> Result<PublishAck, String> {
        self.publish_typed(subject, message)
            .await
            .map_err(|e| e.to_string())
    }

    /// [`NatsBatcher::publish`] with the client's error, for a caller that tells its
    /// kinds apart (a stopped batcher is `BrokenPipe`).
    pub async fn publish_typed(
        &self,
        subject: Subject,
        message: PublishMessage,
    ) -> Result<PublishAck, PublishError> {
        let stopped = || PublishError::with_source(PublishErrorKind::BrokenPipe, BatcherStopped);
        let (sent, handed) = oneshot::channel();
        self.queue(Job::Publish {
            subject,
            message,
            sent,
        })
        .await
        .map_err(|_| stopped())?;
        let ack = handed.await.map_err(|_| stopped())?;
        ack?.await
    }

    /// Sends a core NATS request; the answer (or the request's own timeout, or "no
    /// responders") comes from the returned future.
    pub async fn request(
        &self,
        subject: Subject,
        request: Request,
    ) -> Result<PendingRequest, BatcherStopped> {
        let (sent, handed) = oneshot::channel();
        self.queue(Job::Request {
            subject,
            request,
            sent,
        })
        .await?;
        handed.await.map_err(|_| BatcherStopped)
    }

    async fn queue(&self, job: Job) -> Result<(), BatcherStopped> {
        self.jobs.send(job).await.map_err(|_| BatcherStopped)
    }
}

async fn send_in_batches(jetstream: jetstream::Context, mut queue: mpsc::Receiver<Job>) {
    let client = jetstream.client();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if queue.recv_many(&mut batch, BATCH).await == 0 {
            return; // every handle is gone
        }
        tokio::task::yield_now().await;
        while batch.len() < BATCH
            && let Ok(job) = queue.try_recv()
        {
            batch.push(job);
        }
        for job in batch.drain(..) {
            // A callback that gave up (its attempt timed out) retries with a new job.
            if job.abandoned() {
                continue;
            }
            match job {
                Job::Publish {
                    subject,
                    message,
                    sent,
                } => {
                    let _ = sent.send(jetstream.send_publish(subject, message).await);
                }
                Job::Request {
                    subject,
                    request,
                    sent,
                } => {
                    let _ = sent.send(hand_over(&client, subject, request).await);
                }
            }
        }
    }
}

/// Starts `send_request` and polls it once: that queues the request in the client
/// (the first step of the call) without waiting for the answer, which the caller then
/// awaits. The caller polls it again at once, so its waker replaces ours before any
/// answer could be missed.
async fn hand_over(
    client: &async_nats::Client,
    subject: Subject,
    request: Request,
) -> PendingRequest {
    let client = client.clone();
    let mut pending: PendingRequest =
        Box::pin(async move { client.send_request(subject, request).await });
    match futures::poll!(pending.as_mut()) {
        Poll::Ready(done) => Box::pin(std::future::ready(done)),
        Poll::Pending => pending,
    }
}
