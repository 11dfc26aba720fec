//! Making a callback durable: a JetStream publish with `Nats-Msg-Id`, awaited until
//! the PubAck, retried with a short backoff until the publish deadline.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::HeaderValue;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use tokio::time::Instant;

use crate::batch::NatsBatcher;
use crate::event::InboundEvent;
use crate::log_limit::LogLimiter;

/// Longest wait for one PubAck before publishing again (JetStream drops the repeat);
/// at most a quarter of the deadline, so a short deadline still gets retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// The log limiter's cause for a callback JetStream never acked.
pub const UNACKNOWLEDGED: &str = "publish_not_acknowledged";
/// The log limiter's cause for an event larger than the server's `max_payload`.
const TOO_LARGE: &str = "publish_over_max_payload";

/// What JetStream said about a stored callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Stored now.
    New,
    /// Already stored inside the duplicate window, said to the first attempt: a
    /// retried callback.
    Duplicate,
    /// Already stored, said to a later attempt: all but always an earlier attempt of
    /// ours, stored though its PubAck came too late; but also WeChat's retry whose
    /// first attempt went unanswered while another replica had stored the callback.
    Repeated,
}

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// JetStream did not ack before the publish deadline: it may take the event
    /// later, so the callback path holds the callback for WeChat to send again.
    #[error("no PubAck after {attempts} attempts")]
    NotDurable { attempts: u32 },
    /// The event is larger than the NATS server's `max_payload`: the client refuses
    /// it before sending, and would refuse every attempt alike, so no retry (ours or
    /// WeChat's) can ever store it.
    #[error("event of {size} bytes is larger than the NATS server's max_payload")]
    TooLarge { size: usize },
    /// The event id cannot be a `Nats-Msg-Id` header (a line break or another
    /// control character): every attempt would be refused alike, so, as `TooLarge`,
    /// no retry can ever store it.
    #[error("the event id cannot be a Nats-Msg-Id header")]
    InvalidMessageId,
}

/// Publishes inbound events to `WECHAT_INBOUND`.
#[derive(Clone)]
pub struct Publisher {
    batcher: NatsBatcher,
    deadline: Duration,
    /// During a NATS outage every callback fails: a line per account and period.
    logs: Arc<LogLimiter>,
    metrics: Arc<PublishMetrics>,
}

/// The handles of the series every publish records: `histogram!`/`counter!` built
/// the key and looked it up in the recorder's registry at each publish (one or two
/// per callback). Each is made at its first use, as the per-account ones
/// (`http::AccountMetrics`): made at start-up, it would be exported where none was.
#[derive(Default)]
struct PublishMetrics {
    /// `gateway_publish_seconds`.
    seconds: OnceLock<metrics::Histogram>,
    /// `gateway_publish_retries_total`: every callback of a JetStream stall retries.
    retries: OnceLock<metrics::Counter>,
}

impl Publisher {
    /// A publisher that keeps trying for `deadline` per event.
    pub fn new(batcher: NatsBatcher, deadline: Duration) -> Self {
        Self {
            batcher,
            deadline,
            logs: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Publishes `event` and waits for its PubAck, retrying until the deadline.
    pub async fn publish(&self, event: &InboundEvent) -> Result<Durable, PublishError> {
        self.publish_until(event, Instant::now() + self.deadline)
            .await
    }

    /// [`Publisher::publish`], giving up at `until` (a missed-reply marker must not
    /// hold the answer past WeChat's deadline).
    pub async fn publish_until(
        &self,
        event: &InboundEvent,
        until: Instant,
    ) -> Result<Durable, PublishError> {
        self.publish_noting(event, until, || {}).await
    }

    /// [`Publisher::publish_until`], calling `failed` after each attempt that failed
    /// or went unanswered: the callback path gives up its in-flight place then, as
    /// it is waiting on JetStream, not working.
    pub async fn publish_noting(
        &self,
        event: &InboundEvent,
        until: Instant,
        mut failed: impl FnMut(),
    ) -> Result<Durable, PublishError> {
        let started = Instant::now();
        let deadline = until.saturating_duration_since(started);
        let subject = async_nats::Subject::from(event.subject.as_str());
        let mut backoff = FIRST_BACKOFF;
        let attempt_timeout = ATTEMPT_TIMEOUT.min(deadline / 4);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let attempt_until = until.min(Instant::now() + attempt_timeout);
            // Built fallibly: `message_id(&str)` asserts the id holds no `\r` or `\n`,
            // and a panic here lost the callback for good (WeChat's retries panicked
            // alike). `dedup_key` hashes such parts, so this is a guard, not a path.
            let Ok(id) = event.event_id.parse::<HeaderValue>() else {
                metrics::counter!("gateway_publish_refused_total", "reason" => "invalid_message_id")
                    .increment(1);
                tracing::error!(
                    account = event.account(),
                    event = %event.log_ref(),
                    "event id cannot be a Nats-Msg-Id header; not published"
                );
                break Err(PublishError::InvalidMessageId);
            };
            let message = PublishMessage::build()
                .payload(event.payload.clone())
                .header(NATS_MESSAGE_ID, id);
            let attempt = self.batcher.publish_typed(subject.clone(), message);
            let error = match tokio::time::timeout_at(attempt_until, attempt).await {
                Ok(Ok(ack)) if ack.duplicate && attempts == 1 => break Ok(Durable::Duplicate),
                Ok(Ok(ack)) if ack.duplicate => break Ok(Durable::Repeated),
                Ok(Ok(_)) => break Ok(Durable::New),
                // The client refuses it before sending, and would refuse every retry
                // alike until the deadline. `MAX_BODY_BYTES` is capped below the
                // default max_payload, so only a server set lower gets here (start-up
                // warns of it); the callback path answers it 413 at once.
                Ok(Err(error)) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    metrics::counter!("gateway_publish_refused_total", "reason" => "max_payload")
                        .increment(1);
                    let size = event.payload.len();
                    let now = std::time::Instant::now();
                    if let Some(suppressed) = self.logs.admit(event.account(), TOO_LARGE, now) {
                        tracing::error!(
                            account = event.account(),
                            event = %event.log_ref(),
                            bytes = size,
                            %error,
                            suppressed,
                            "event larger than the NATS server's max_payload; not published"
                        );
                    }
                    break Err(PublishError::TooLarge { size });
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => "timed out waiting for the PubAck".to_owned(),
            };
            failed();
            let retry_at = Instant::now() + backoff;
            if retry_at >= until {
                let now = std::time::Instant::now();
                if let Some(suppressed) = self.logs.admit(event.account(), UNACKNOWLEDGED, now) {
                    tracing::warn!(
                        account = event.account(),
                        event = %event.log_ref(),
                        attempts,
                        %error,
                        suppressed,
                        "publish not acknowledged before the deadline"
                    );
                }
                break Err(PublishError::NotDurable { attempts });
            }
            tracing::debug!(event = %event.log_ref(), attempts, %error, "publish failed; retrying");
            self.metrics
                .retries
                .get_or_init(|| metrics::counter!("gateway_publish_retries_total"))
                .increment(1);
            tokio::time::sleep_until(retry_at).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        self.metrics
            .seconds
            .get_or_init(|| metrics::histogram!("gateway_publish_seconds"))
            .record(started.elapsed().as_secs_f64());
        result
    }
}
