//! The `interaction-missed-replies` consumer: a passive reply the gateway asked for
//! and did not get in time (`events.v1.ReplyMissed`, stream `WECHAT_MISSED_REPLIES`)
//! is sent through the customer-service API, as the callback's decision produced it
//! when the inbound consumer applied it (`Deliverer::send_missed_reply`). A marker
//! whose callback is not applied yet waits for it (`HandleError::NotYet`: delivered
//! again after a quarter of its age), so the reply follows the inbound consumer
//! closely however far it lags (a 30 s lag: within 8 s), for about 13 minutes.
//!
//! A send WeChat did not take (busy, over a quota, unreachable) is counted in the
//! reply's row (`send_failures`), and the handler decides from that count, the same
//! on every replica, whether the reply is tried again or given up ([`after_failure`]):
//! the runner counts a marker's failures only in the process that saw it wait, and on
//! another one (the other replica, after a restart) dead-lettered a marker older than
//! its patience after one failure.

use std::time::Duration;

use chrono::Utc;
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

/// The sends a missed reply gets against a WeChat that does not take it, counted in
/// its row by every replica: as many as the deliveries the runner gives a failing
/// message (`PATIENT_DELIVERIES`), which it gives a marker that waited only in the
/// process that saw it wait.
pub const MAX_SENDS: u32 = PATIENT_DELIVERIES as u32;

/// What a send WeChat did not take asks of the runner ([`after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// `Transient`: the runner delivers the marker again after its backoff.
    Retry,
    /// `NotYet`: the runner would dead-letter a `Transient` (the marker is old, it
    /// waited), and delivers a wait again (after a quarter of its age, at most 15 s).
    Wait,
    /// [`MAX_SENDS`] sends failed: dead-lettered (`Permanent`).
    GiveUp,
    /// Sends are left, but the marker is past the patience and the waits: a
    /// `Transient` still, with that reason. The runner that saw the marker wait counts
    /// its failures and retries it (up to `max_deliver` of them); any other runner
    /// dead-letters it (the reply kept: replaying the dead letter sends it). A
    /// `Permanent` would dead-letter it on the one runner that would have retried.
    PastPatience,
}

/// The longest backoff the runner gives a failure (platform's `retry_backoff`: 0.5 s
/// doubling, at most a minute).
const RUNNER_LONGEST_BACKOFF: Duration = Duration::from_secs(60);

/// How much older the marker may be when the runner settles it than when the
/// handler decided.
const SETTLE_MARGIN: Duration = Duration::from_secs(5);

/// Whether a reply of which `failures` sends failed is tried again, and how, for the
/// `delivered`-th delivery of a marker the stream stored `age` ago. Decided from the
/// shared count alone; the runner's rules (platform's `retries` and `waits`, which it
/// applies to a marker it did not see wait) only choose how to ask for the next
/// delivery: a `Transient` while the runner retries it whatever it counted, else a
/// `NotYet`, which it delivers again for `waits()` deliveries or within the patience.
pub fn after_failure(failures: u32, delivered: i64, age: Option<Duration>) -> AfterFailure {
    if failures >= MAX_SENDS {
        return AfterFailure::GiveUp;
    }
    let patience = CONSUMER.patience();
    let retried = delivered < CONSUMER.max_deliver
        || age.is_some_and(|age| age + RUNNER_LONGEST_BACKOFF + SETTLE_MARGIN <= patience);
    if retried {
        return AfterFailure::Retry;
    }
    let waited =
        delivered <= CONSUMER.waits() || age.is_some_and(|age| age + SETTLE_MARGIN < patience);
    if waited {
        AfterFailure::Wait
    } else {
        AfterFailure::PastPatience
    }
}

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
            Ok(MissedReply::Unavailable { failures, error }) => {
                return Err(unavailable(received, failures, &error));
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
            MissedReply::Unavailable { .. } => "unavailable",
        };
        metrics::counter!("interaction_missed_replies_total", "outcome" => label).increment(1);
        tracing::info!(outcome = label, reason = %missed.reason, "missed passive reply handled");
        Ok(())
    }
}

/// What the handler returns for a send WeChat did not take, the `failures`-th of the
/// reply ([`after_failure`]); a reply given up is counted (`outcome="unavailable"`)
/// and left `decided`, so replaying its dead letter sends it.
fn unavailable(received: &Received<ReplyMissed>, failures: u32, error: &str) -> HandleError {
    let age = received
        .stored_at
        .map(|stored_at| (Utc::now() - stored_at).to_std().unwrap_or_default());
    let sends = format!("WeChat unavailable, {failures} of {MAX_SENDS} sends failed");
    let given_up = match after_failure(failures, received.delivered, age) {
        AfterFailure::Retry => return HandleError::Transient(format!("{sends}: {error}")),
        AfterFailure::Wait => {
            return HandleError::NotYet(format!(
                "{sends}, tried again as a wait (the marker is too old for a retry): {error}"
            ));
        }
        AfterFailure::PastPatience => {
            return HandleError::Transient(format!(
                "{sends}, the marker past the consumer's patience ({} old, delivered {} \
                 times; retried only where it waited, the reply kept: replaying a dead \
                 letter sends it): {error}",
                age.map_or("of unknown age".to_owned(), |age| format!(
                    "{}s",
                    age.as_secs()
                )),
                received.delivered
            ));
        }
        AfterFailure::GiveUp => format!("{sends}, given up: {error}"),
    };
    metrics::counter!("interaction_missed_replies_total", "outcome" => "unavailable").increment(1);
    tracing::warn!(failures, delivered = received.delivered, reason = %received.event.reason, %error, "missed reply given up: WeChat did not take it; replaying the dead letter sends it");
    HandleError::Permanent(format!(
        "{given_up} (the reply is kept: replaying this dead letter sends it)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_reply_is_given_up_after_its_sends_whatever_the_marker() {
        assert_eq!(after_failure(20, 1, Some(SECOND)), AfterFailure::GiveUp);
        assert_eq!(after_failure(20, 40, None), AfterFailure::GiveUp);
        assert_eq!(after_failure(19, 1, Some(SECOND)), AfterFailure::Retry);
    }

    #[test]
    fn a_marker_too_old_for_the_runners_retry_asks_again_as_a_wait() {
        let patience = CONSUMER.patience();
        // Delivered 25 times: the runner retries a failure only if the retry (up to a
        // minute on) comes within the patience.
        assert_eq!(
            after_failure(1, 25, Some(600 * SECOND)),
            AfterFailure::Retry
        );
        assert_eq!(after_failure(1, 25, Some(730 * SECOND)), AfterFailure::Wait);
        // Past the patience: waits for its first `waits()` deliveries.
        let old = Some(patience + 60 * SECOND);
        assert_eq!(after_failure(1, CONSUMER.waits(), old), AfterFailure::Wait);
        assert_eq!(
            after_failure(1, CONSUMER.waits() + 1, old),
            AfterFailure::PastPatience
        );
        // Within the patience, with the runner's settling to come.
        let late = Some(patience - 10 * SECOND);
        assert_eq!(after_failure(1, 100, late), AfterFailure::Wait);
        assert_eq!(
            after_failure(1, 100, Some(patience - SECOND)),
            AfterFailure::PastPatience
        );
        // Without the stored time: by the deliveries alone.
        assert_eq!(after_failure(1, 19, None), AfterFailure::Retry);
        assert_eq!(after_failure(1, 20, None), AfterFailure::Wait);
        assert_eq!(
            after_failure(1, CONSUMER.waits() + 1, None),
            AfterFailure::PastPatience
        );
    }
}
