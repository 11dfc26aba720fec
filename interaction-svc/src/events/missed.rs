//! The `interaction-missed-replies` consumer: a passive reply the gateway asked for
//! and did not get in time (`events.v1.ReplyMissed`, stream `WECHAT_MISSED_REPLIES`)
//! is sent through the customer-service API, as the callback's decision produced it
//! when the inbound consumer applied it (`Deliverer::send_missed_reply`). A marker
//! whose callback is not applied yet waits for it (`HandleError::NotYet`: delivered
//! again after a quarter of its age), so the reply follows the inbound consumer
//! closely however far it lags (a 30 s lag: within 8 s), for about 13 minutes.

use std::time::Duration;

use platform::consumer::{EventHandler, HandleError, Received, StreamEvent};
use platform::nats::{
    ConsumerSpec, PATIENT_DELIVERIES, WAITING_MAX_ACK_PENDING, WECHAT_MISSED_REPLIES,
};
use prost::Message as _;

use crate::delivery::{Deliverer, DeliveryError, MissedReply};

/// The durable consumer over every marker.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_MISSED_REPLIES,
    durable: "interaction-missed-replies",
    filter_subject: WECHAT_MISSED_REPLIES.subjects,
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: WAITING_MAX_ACK_PENDING,
};

/// A decoded marker: the callback whose reply was missed.
#[derive(Debug, Clone)]
pub struct ReplyMissed {
    /// The callback's event id (also the decided reply's key).
    pub event_id: String,
    /// Why the gateway got no reply, for the log.
    pub reason: String,
}

impl StreamEvent for ReplyMissed {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let missed =
            proto::events::v1::ReplyMissed::decode(payload).map_err(|error| error.to_string())?;
        let event_id = missed
            .header
            .map(|header| header.event_id)
            .filter(|id| !id.is_empty())
            .ok_or("no event_id")?;
        Ok(Self {
            event_id,
            reason: missed.reason,
        })
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// Sends missed replies.
pub struct MissedReplyHandler {
    deliverer: Deliverer,
}

impl MissedReplyHandler {
    pub fn new(deliverer: Deliverer) -> Self {
        Self { deliverer }
    }
}

impl EventHandler for MissedReplyHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    /// A marker is a WeChat call: a few at once, none waiting behind one that waits
    /// for its callback to be applied.
    const CONCURRENCY: usize = 4;
    type Event = ReplyMissed;

    async fn handle(&self, received: &Received<ReplyMissed>) -> Result<(), HandleError> {
        let missed = &received.event;
        let outcome = match self.deliverer.send_missed_reply(&missed.event_id).await {
            Ok(MissedReply::NotApplied) => {
                return Err(HandleError::NotYet(
                    "the callback is not applied yet".to_owned(),
                ));
            }
            // Acked now, a reply the other delivery hands back (WeChat busy) would
            // never be sent.
            Ok(MissedReply::BeingSent) => {
                return Err(HandleError::NotYet(
                    "the reply is being sent by another delivery".to_owned(),
                ));
            }
            Ok(outcome) => outcome,
            Err(DeliveryError::Unavailable(error)) => {
                return Err(HandleError::Transient(format!(
                    "WeChat unavailable: {error}"
                )));
            }
            Err(DeliveryError::Database(error)) => return Err(HandleError::database(error)),
            Err(error) => {
                tracing::warn!(%error, reason = %missed.reason, "missed reply not sent");
                MissedReply::GivenUp
            }
        };
        let label = match outcome {
            MissedReply::Sent => "sent",
            MissedReply::AlreadyHandled => "already_handled",
            MissedReply::NoReply => "no_reply",
            MissedReply::NotApplied => "not_applied",
            MissedReply::BeingSent => "being_sent",
            MissedReply::GivenUp => "given_up",
        };
        metrics::counter!("interaction_missed_replies_total", "outcome" => label).increment(1);
        tracing::info!(outcome = label, reason = %missed.reason, "missed passive reply handled");
        Ok(())
    }
}
