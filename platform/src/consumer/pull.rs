//! Pull requests the runner owns, so that a drain can stop them and hand back what
//! they already brought. async-nats' own pull stream cannot: dropping it leaves its
//! requests waiting on the server and the messages it had received unacknowledged,
//! each held until `ack_wait` (30 s) before another replica may have it — every
//! rolling update delayed up to a few hundred events that long.
//!
//! A stop unsubscribes the inbox and waits for the server to confirm: nats-server
//! serves a waiting pull request only while its reply subject has interest, so nothing
//! more comes, and what had come is NAKed for another replica to take at once.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull::BatchConfig};
use async_nats::{StatusCode, Subject, Subscriber};
use futures::StreamExt;
use tokio::time::Instant;

type PullConsumer = jetstream::consumer::Consumer<jetstream::consumer::pull::Config>;

/// Messages one pull request asks for.
const REQUEST_BATCH: usize = 200;
/// A request is sent only when the messages due from earlier ones and those the runner
/// holds not given to a lane number at most this many.
pub(super) const ASK_AT: usize = REQUEST_BATCH / 2;
/// The most messages asked for and not yet handed to a lane (`consumer.rs` bounds what
/// the runner holds with it).
pub(super) const MOST_ASKED: usize = ASK_AT + REQUEST_BATCH;
/// How long the server keeps a request waiting for messages.
const REQUEST_EXPIRES: Duration = Duration::from_secs(30);
/// While a request waits, the server says it is alive this often.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence after which the server is taken to have lost our requests (a restart, a
/// leader change) and they are asked for again.
const SILENCE: Duration = Duration::from_secs(12);
/// How long a stop waits for the server to confirm the inbox is closed.
const STOP_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    #[error("cannot subscribe to the pull inbox: {0}")]
    Subscribe(String),
    #[error("cannot send a pull request: {0}")]
    Request(String),
    #[error("the server ended the pull: {0}")]
    Ended(String),
}

/// What [`Puller::next`] brought.
pub(super) enum Pulled {
    Message(Box<jetstream::Message>),
    /// The client's connection is closed for good.
    Closed,
    /// Nothing is due, and the runner holds too much to ask for more: what it holds
    /// waits for full lanes while others have room (it hands some back).
    Nothing,
}

pub(super) struct Puller {
    consumer: PullConsumer,
    context: jetstream::Context,
    inbox: Subject,
    subscriber: Subscriber,
    /// Messages asked for that the server has neither sent nor given up on.
    asked: usize,
}

impl Puller {
    pub(super) async fn start(
        consumer: PullConsumer,
        context: jetstream::Context,
    ) -> Result<Self, PullError> {
        let client = context.client();
        let inbox = Subject::from(client.new_inbox());
        let subscriber = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| PullError::Subscribe(e.to_string()))?;
        Ok(Self {
            consumer,
            context,
            inbox,
            subscriber,
            asked: 0,
        })
    }

    /// The next message. `held`: the messages the runner holds not given to a lane,
    /// `None` while no lane has room. Asks for more while they and those due come to at
    /// most [`ASK_AT`]; otherwise takes only what was asked for already: the runner
    /// reads on while lanes are full, so that a message's time in the runner counts
    /// from its delivery (see `keep_alive`), without asking for more. Once nothing is
    /// due, waits for ever while no lane has room, else returns [`Pulled::Nothing`].
    pub(super) async fn next(&mut self, held: Option<usize>) -> Result<Pulled, PullError> {
        let may_ask = |asked: usize| held.is_some_and(|held| held + asked <= ASK_AT);
        loop {
            if may_ask(self.asked) {
                self.ask().await?;
            }
            if self.asked == 0 {
                return match held {
                    Some(_) => Ok(Pulled::Nothing),
                    None => std::future::pending().await,
                };
            }
            let message =
                match tokio::time::timeout_at(Instant::now() + SILENCE, self.subscriber.next())
                    .await
                {
                    Ok(Some(message)) => message,
                    Ok(None) => return Ok(Pulled::Closed),
                    Err(_) => {
                        tracing::warn!(
                            asked = self.asked,
                            "no message or heartbeat from the server; asking again"
                        );
                        self.asked = 0;
                        continue;
                    }
                };
            match message.status {
                None | Some(StatusCode::OK) => {
                    self.asked = self.asked.saturating_sub(1);
                    return Ok(Pulled::Message(Box::new(jetstream::Message {
                        message,
                        context: self.context.clone(),
                    })));
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // Nobody answers for the consumer (it is gone, or a cluster is electing its
                // leader): asking again at once would spin; the supervisor provisions it
                // again after its restart delay.
                Some(StatusCode::NO_RESPONDERS) => {
                    return Err(PullError::Ended(
                        "no responders for the consumer".to_owned(),
                    ));
                }
                Some(status) => {
                    let description = message.description.clone().unwrap_or_default();
                    if description == "Consumer Deleted"
                        || description.starts_with("Exceeded MaxRequest")
                    {
                        return Err(PullError::Ended(description));
                    }
                    // A request that expired or was cut short (408, 409 on a leader
                    // change) says how many of its messages it will not bring.
                    let unserved = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Pending-Messages"))
                        .and_then(|v| v.as_str().parse().ok());
                    match unserved {
                        Some(unserved) => self.asked = self.asked.saturating_sub(unserved),
                        None if matches!(
                            status,
                            StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED
                        ) =>
                        {
                            tracing::debug!(%status, %description, "pull request ended");
                            self.asked = 0;
                        }
                        None => {
                            return Err(PullError::Ended(format!("{status}: {description}")));
                        }
                    }
                }
            }
        }
    }

    /// Messages asked for that the server has neither sent nor given up on.
    pub(super) fn asked(&self) -> usize {
        self.asked
    }

    async fn ask(&mut self) -> Result<(), PullError> {
        let request = BatchConfig {
            batch: REQUEST_BATCH,
            expires: Some(REQUEST_EXPIRES),
            idle_heartbeat: IDLE_HEARTBEAT,
            ..Default::default()
        };
        self.consumer
            .request_batch(request, self.inbox.clone())
            .await
            .map_err(|e| PullError::Request(e.to_string()))?;
        self.asked += REQUEST_BATCH;
        Ok(())
    }

    /// Stops pulling and hands back, NAKed for immediate redelivery elsewhere, every
    /// message that had arrived; returns how many. `unhandled` are messages pulled
    /// earlier that the caller will not handle either. Everything is NAKed only once the
    /// server has closed the inbox: a message NAKed before could be delivered to it
    /// again, to a request still waiting there, and be lost to everyone until
    /// `ack_wait` once this stops reading.
    pub(super) async fn stop(mut self, unhandled: Vec<jetstream::Message>) -> usize {
        let mut returned = unhandled;
        match self.subscriber.drain().await {
            Err(error) => tracing::warn!(%error, "cannot close the pull inbox"),
            Ok(()) => {
                // The subscription ends once the server has confirmed the unsubscribe:
                // every message it sent before that is in by then.
                let deadline = Instant::now() + STOP_WAIT;
                while let Ok(Some(message)) =
                    tokio::time::timeout_at(deadline, self.subscriber.next()).await
                {
                    if matches!(message.status, None | Some(StatusCode::OK)) {
                        returned.push(jetstream::Message {
                            message,
                            context: self.context.clone(),
                        });
                    }
                }
            }
        }
        let mut handed_back = 0;
        for message in &returned {
            handed_back += usize::from(hand_back(message).await);
        }
        handed_back
    }
}

/// NAKs a message for another replica to take at once; whether the server was told.
pub(super) async fn hand_back(message: &jetstream::Message) -> bool {
    match message.ack_with(AckKind::Nak(None)).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "cannot hand a message back; it returns after ack_wait");
            false
        }
    }
}
