//! The marker a callback whose passive reply was asked for but did not come back in
//! time leaves on JetStream, so interaction-svc sends that reply through the
//! customer-service API instead (`events.v1.ReplyMissed`, README "Replies that miss
//! the budget"). Pure: no I/O.

use platform::nats::Namespace;
use proto::events::v1::{EventHeader, ReplyMissed};
use reply_rules::Incoming;
use wechat::message::InboundMessage;

use crate::event::InboundEvent;
use crate::reply::ReplyOutcome;

/// The marker's `Nats-Msg-Id` suffix: a retried callback that misses again is
/// stored once inside the duplicate window (interaction-svc sends once regardless).
pub const MESSAGE_ID_SUFFIX: &str = ":reply_missed";

/// Whether `message`, which got `outcome` from the reply path, leaves a marker: the
/// reply was wanted and may exist, but did not come back. A deliberate `no_reply`,
/// an `invalid` reply (WeChat would refuse it as a message too) and edge answers
/// (never asked, never missed) leave none; nor does a system sender's callback (a
/// job-finish event): interaction-svc records nothing for it, and would wait for it
/// until the marker was dead-lettered.
pub fn leaves_marker(message: &InboundMessage, outcome: ReplyOutcome) -> bool {
    is_missed(outcome) && Incoming::of(message).is_from_citizen()
}

fn is_missed(outcome: ReplyOutcome) -> bool {
    matches!(
        outcome,
        ReplyOutcome::Timeout | ReplyOutcome::NoResponder | ReplyOutcome::Error
    )
}

/// The marker for callback `inbound` (its `event_id` and CreateTime `created`), on
/// `wechat.missed.{account}`.
pub fn marker(
    namespace: &Namespace,
    account: &str,
    inbound: &InboundEvent,
    created: u64,
    outcome: ReplyOutcome,
) -> InboundEvent {
    let missed = ReplyMissed {
        header: Some(EventHeader {
            event_id: inbound.event_id.clone(),
            account: account.to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: i64::try_from(created).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        }),
        reason: outcome.as_str().to_owned(),
    };
    InboundEvent {
        subject: namespace.subject(&format!("wechat.missed.{account}")),
        event_id: format!("{}{MESSAGE_ID_SUFFIX}", inbound.event_id),
        payload: prost::Message::encode_to_vec(&missed).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn a_missed_reply_leaves_a_marker_naming_the_callback() {
        let inbound = InboundEvent {
            subject: "t1.wechat.inbound.city.msg.text".into(),
            event_id: "city:oUser1:42".into(),
            payload: bytes::Bytes::new(),
        };
        let ns = Namespace::new("t1").unwrap();
        let marker = marker(&ns, "city", &inbound, 1_700_000_000, ReplyOutcome::Timeout);
        assert_eq!(marker.subject, "t1.wechat.missed.city");
        assert_eq!(marker.event_id, "city:oUser1:42:reply_missed");
        assert_eq!(marker.account(), "city");
        let missed = ReplyMissed::decode(marker.payload).unwrap();
        let header = missed.header.unwrap();
        assert_eq!(header.event_id, "city:oUser1:42");
        assert_eq!(header.occurred_at.unwrap().seconds, 1_700_000_000);
        assert_eq!(missed.reason, "timeout");
    }

    #[test]
    fn a_system_senders_callback_leaves_no_marker() {
        let event = |from: &str, inner: &str| {
            let xml = format!(
                "<xml><ToUserName>gh_city</ToUserName><FromUserName>{from}</FromUserName>\
                 <CreateTime>1700000000</CreateTime>{inner}</xml>"
            );
            InboundMessage::parse(xml.as_bytes()).unwrap()
        };
        let text = event(
            "oUser1",
            "<MsgType>text</MsgType><Content>hi</Content><MsgId>42</MsgId>",
        );
        let job = event(
            "mphelper",
            "<MsgType>event</MsgType><Event>PUBLISHJOBFINISH</Event>\
             <PublishEventInfo><publish_id>1</publish_id><publish_status>0</publish_status>\
             </PublishEventInfo>",
        );
        assert!(leaves_marker(&text, ReplyOutcome::NoResponder));
        assert!(!leaves_marker(&text, ReplyOutcome::NoReply));
        assert!(!leaves_marker(&job, ReplyOutcome::NoResponder));
    }

    #[test]
    fn only_a_reply_that_did_not_come_back_is_missed() {
        assert!(is_missed(ReplyOutcome::Timeout));
        assert!(is_missed(ReplyOutcome::NoResponder));
        assert!(is_missed(ReplyOutcome::Error));
        assert!(!is_missed(ReplyOutcome::NoReply));
        assert!(!is_missed(ReplyOutcome::Invalid));
        assert!(!is_missed(ReplyOutcome::Answered));
        assert!(!is_missed(ReplyOutcome::Cached));
    }
}
