//! Durable pull consumers as typed jobs: a handler decides, the runner acks,
//! retries with backoff, or dead-letters with the reason.
//!
//! A handler must make its effect idempotent (record the `event_id` in the same
//! transaction as the effect): JetStream delivers at least once, and the runner
//! acks only after the handler returned.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message as _;

use crate::nats::{ConsumerSpec, DEADLETTER, Namespace, NatsError, provision_consumer};
use crate::shutdown::Drain;

/// One delivery of a stream message, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject without the namespace prefix, e.g. `wechat.inbound.city.msg.text`.
    pub subject: String,
    pub payload: Bytes,
    /// The `Nats-Msg-Id` header. Handlers make their effect idempotent on the
    /// payload's own `event_id`: a publisher may send one event under two message ids.
    pub event_id: Option<String>,
    /// 1 on the first delivery.
    pub delivered: i64,
    pub stream_sequence: u64,
}

/// Why a handler did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying (a database or network hiccup); dead-lettered after `max_deliver`.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (an undecodable payload); dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A typed job run for every message of one durable consumer.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one delivery. Returning `Ok` acks it.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// How long a failed consumer waits before it starts again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs `handler` over the durable consumer `spec` until the drain begins, starting
/// it again (after a short delay) whenever its message stream fails or ends, so a
/// NATS restart or a deleted consumer does not silently stop the service's work.
pub async fn supervise_consumer<H: EventHandler>(
    jetstream: jetstream::Context,
    namespace: Namespace,
    service: &'static str,
    spec: ConsumerSpec,
    handler: Arc<H>,
    drain: Drain,
) {
    loop {
        let result = run_consumer(
            jetstream.clone(),
            namespace.clone(),
            service,
            spec,
            handler.clone(),
            drain.clone(),
        )
        .await;
        if drain.is_stopping() {
            return;
        }
        metrics::counter!("consumer_restarts_total", "consumer" => spec.durable).increment(1);
        match result {
            Ok(()) => tracing::warn!(durable = spec.durable, "consumer ended; restarting"),
            Err(error) => {
                tracing::error!(durable = spec.durable, %error, "consumer failed; restarting")
            }
        }
        tokio::select! {
            () = drain.stopping().cancelled() => return,
            () = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

/// Runs `handler` over the durable consumer `spec` until the drain begins or the
/// message stream ends. In-flight handling finishes before the function returns.
pub async fn run_consumer<H: EventHandler>(
    jetstream: jetstream::Context,
    namespace: Namespace,
    service: &'static str,
    spec: ConsumerSpec,
    handler: Arc<H>,
    drain: Drain,
) -> Result<(), NatsError> {
    let consumer = provision_consumer(&jetstream, &namespace, &spec).await?;
    let consumer_error = |reason: String| NatsError::Consumer {
        stream: namespace.name(spec.stream.name),
        durable: namespace.name(spec.durable),
        reason,
    };
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| consumer_error(e.to_string()))?;
    tracing::info!(durable = spec.durable, "consumer started");
    loop {
        let next = tokio::select! {
            () = drain.stopping().cancelled() => break,
            next = messages.next() => next,
        };
        match next {
            None => break,
            Some(Err(error)) => {
                // Heartbeat misses and reconnects surface here; the stream recovers by itself.
                tracing::warn!(durable = spec.durable, %error, "consumer stream error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(Ok(message)) => {
                process(
                    &jetstream,
                    &namespace,
                    service,
                    &spec,
                    handler.as_ref(),
                    message,
                )
                .await;
            }
        }
    }
    tracing::info!(durable = spec.durable, "consumer stopped");
    Ok(())
}

async fn process<H: EventHandler>(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    service: &'static str,
    spec: &ConsumerSpec,
    handler: &H,
    message: jetstream::Message,
) {
    let (delivered, stream_sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(_) => (1, 0),
    };
    let delivery = Delivery {
        subject: namespace.strip(message.subject.as_str()).to_owned(),
        payload: message.payload.clone(),
        event_id: message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned()),
        delivered,
        stream_sequence,
    };
    let started = std::time::Instant::now();
    let result = handler.handle(&delivery).await;
    let outcome = match result {
        Ok(()) => {
            if let Err(error) = message.ack().await {
                tracing::warn!(%error, event_id = ?delivery.event_id, "ack failed; the message will be redelivered");
            }
            "ok"
        }
        Err(HandleError::Transient(reason)) if delivered < spec.max_deliver => {
            tracing::warn!(event_id = ?delivery.event_id, delivered, %reason, "handler failed, will retry");
            let backoff = Duration::from_millis(250 * 2u64.pow(delivered.clamp(0, 6) as u32));
            let _ = message.ack_with(AckKind::Nak(Some(backoff))).await;
            "retry"
        }
        Err(HandleError::Transient(reason) | HandleError::Permanent(reason)) => {
            match dead_letter(jetstream, namespace, service, spec, &delivery, &reason).await {
                Ok(()) => {
                    tracing::error!(event_id = ?delivery.event_id, delivered, %reason, "message dead-lettered");
                    let _ = message.ack_with(AckKind::Term).await;
                    "deadletter"
                }
                Err(error) => {
                    // Never drop a message: without a dead letter, let it come back.
                    tracing::error!(%error, event_id = ?delivery.event_id, "cannot dead-letter; will retry");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                        .await;
                    "retry"
                }
            }
        }
    };
    metrics::counter!("consumer_messages_total", "consumer" => spec.durable, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("consumer_handle_seconds", "consumer" => spec.durable)
        .record(started.elapsed().as_secs_f64());
}

/// The account of a stream subject: every stream's subjects are
/// `{stream prefix}.{account}.…` (`wechat.inbound.{account}.…`, `content.{account}.…`).
fn account_of<'a>(spec: &ConsumerSpec, subject: &'a str) -> &'a str {
    let prefix = spec.stream.subjects.trim_end_matches('>');
    subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
}

async fn dead_letter(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    service: &'static str,
    spec: &ConsumerSpec,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), String> {
    let letter = proto::events::v1::DeadLetter {
        header: Some(proto::events::v1::EventHeader {
            event_id: delivery.event_id.clone().unwrap_or_default(),
            account: account_of(spec, &delivery.subject).to_owned(),
            occurred_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        }),
        service: service.to_owned(),
        stream: spec.stream.name.to_owned(),
        subject: delivery.subject.clone(),
        stream_sequence: delivery.stream_sequence,
        deliveries: delivery.delivered.max(0) as u64,
        reason: reason.to_owned(),
        payload: delivery.payload.to_vec(),
    };
    let subject = namespace.subject(&format!(
        "{}.{service}.{}",
        DEADLETTER.subjects.trim_end_matches(".>"),
        spec.stream.name.to_ascii_lowercase()
    ));
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("{}:{}", spec.durable, delivery.stream_sequence).as_str(),
    );
    jetstream
        .publish_with_headers(subject, headers, letter.encode_to_vec().into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::{INTERACTION, WECHAT_INBOUND};

    fn spec(stream: crate::nats::StreamSpec) -> ConsumerSpec {
        ConsumerSpec {
            stream,
            durable: "t",
            filter_subject: stream.subjects,
            max_deliver: 1,
            ack_wait: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_account_is_the_token_after_the_stream_prefix() {
        assert_eq!(
            account_of(&spec(WECHAT_INBOUND), "wechat.inbound.chenzhou.msg.text"),
            "chenzhou"
        );
        assert_eq!(
            account_of(&spec(INTERACTION), "interaction.yizhang.ticket.opened"),
            "yizhang"
        );
        assert_eq!(account_of(&spec(INTERACTION), "elsewhere.x"), "");
    }
}
