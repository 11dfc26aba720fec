//! What one inbound WeChat callback contributes to an account's counters.

use chrono::{DateTime, Utc};
pub use platform::ids::AccountId;
use platform::ids::IdError;
use platform::inbound::{InboundEvent, InboundKind};
use reply_rules::incoming::Incoming;
use wechat::message::{Event, Payload};

/// Why an account named in a request cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("account is required")]
    MissingAccount,
    #[error("account: {0}")]
    InvalidAccount(IdError),
}

impl From<IdError> for InboundError {
    fn from(error: IdError) -> Self {
        match error {
            IdError::Empty(_) => Self::MissingAccount,
            other => Self::InvalidAccount(other),
        }
    }
}

/// A follow or unfollow, from the `Event` of an event callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    Subscribe,
    Unsubscribe,
}

/// One inbound callback, reduced to what the counters need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFact {
    pub event_id: String,
    pub account: AccountId,
    pub kind: InboundKind,
    pub subscription: Option<SubscriptionChange>,
    /// WeChat's CreateTime, or when the gateway received it if that is missing.
    pub occurred_at: Option<DateTime<Utc>>,
    /// What the daily rollups count for this callback (see [`crate::domain::rollup`]).
    pub detail: InboundDetail,
}

/// The parts of a callback the daily rollups count by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDetail {
    /// A citizen's message, by `MsgType`; `taken_in` when interaction-svc answers it
    /// with a rule, the directory, a ticket or a rating ([`taken_in`]).
    Message { msg_type: String, taken_in: bool },
    /// A follow, with the QR scene it came through (empty for a plain follow).
    Follow { scene: String },
    /// An unfollow.
    Unfollow,
    /// A follower scanned a parametric QR code.
    Scan { scene: String },
    /// A click on a `click` menu button, by key.
    MenuClick { key: String },
    /// A click on a `view` menu button, by URL.
    MenuView { url: String },
    /// Any other event (location, job-finish, …): counted only as an event.
    Other,
}

impl InboundFact {
    /// How much this callback adds to each of its account's counters.
    pub fn increments(&self) -> Counts {
        let one = |yes: bool| u64::from(yes);
        Counts {
            messages: one(self.kind == InboundKind::Message),
            events: one(self.kind == InboundKind::Event),
            subscribes: one(self.subscription == Some(SubscriptionChange::Subscribe)),
            unsubscribes: one(self.subscription == Some(SubscriptionChange::Unsubscribe)),
        }
    }
}

/// Counter values (or increments) of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: u64,
    pub events: u64,
    pub subscribes: u64,
    pub unsubscribes: u64,
}

/// Whether interaction-svc takes the message in: answers it with a rule, the
/// directory, a ticket or a rating. It meets a voice note WeChat did not transcribe, a
/// video or a short video with "请改用文字" alone (`Reply::Unreadable`: no rule, no
/// ticket, no `AutoReplied`), and answers nothing to a message of a type it does not
/// know or to WeChat's own senders (`mphelper`): none of these is a reply path failing.
/// Decided by reply-rules' classification, the one interaction-svc decides from.
pub fn taken_in(message: &wechat::message::InboundMessage) -> bool {
    matches!(Incoming::of(message), Incoming::Message(m) if m.unreadable().is_none())
}

impl From<&InboundEvent> for InboundFact {
    fn from(inbound: &InboundEvent) -> Self {
        let detail = match &inbound.message.payload {
            Payload::Event { kind, .. } => match kind {
                Event::Subscribe { scene, .. } => InboundDetail::Follow {
                    scene: scene.clone().unwrap_or_default(),
                },
                Event::Unsubscribe => InboundDetail::Unfollow,
                Event::Scan { scene, .. } => InboundDetail::Scan {
                    scene: scene.clone(),
                },
                Event::Click { key } => InboundDetail::MenuClick { key: key.clone() },
                Event::View { url, .. } => InboundDetail::MenuView { url: url.clone() },
                _ => InboundDetail::Other,
            },
            _ if inbound.kind == InboundKind::Message => InboundDetail::Message {
                msg_type: inbound.message.header.msg_type.clone(),
                taken_in: taken_in(&inbound.message),
            },
            _ => InboundDetail::Other,
        };
        let subscription = match &inbound.message.payload {
            Payload::Event {
                kind: Event::Subscribe { .. },
                ..
            } => Some(SubscriptionChange::Subscribe),
            Payload::Event {
                kind: Event::Unsubscribe,
                ..
            } => Some(SubscriptionChange::Unsubscribe),
            _ => None,
        };
        Self {
            event_id: inbound.event_id.as_str().to_owned(),
            account: inbound.account.clone(),
            kind: inbound.kind,
            subscription,
            occurred_at: Some(inbound.occurred_at),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use proto::events::v1 as pb;

    fn inbound(xml_body: &str, kind: pb::InboundKind) -> InboundEvent {
        let xml = format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
             <CreateTime>1700000000</CreateTime>{xml_body}</xml>"
        );
        let payload = pb::Inbound {
            header: Some(pb::EventHeader {
                event_id: "chenzhou:o1:42".to_owned(),
                account: "chenzhou".to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
            }),
            kind: kind as i32,
            raw_xml: xml,
            ..Default::default()
        }
        .encode_to_vec();
        InboundEvent::decode(&payload).unwrap()
    }

    fn event(name: &str) -> InboundEvent {
        inbound(
            &format!("<MsgType>event</MsgType><Event>{name}</Event><EventKey>k</EventKey>"),
            pb::InboundKind::Event,
        )
    }

    #[test]
    fn a_message_counts_as_a_message() {
        let fact = InboundFact::from(&inbound(
            "<MsgType>text</MsgType><Content>hi</Content><MsgId>42</MsgId>",
            pb::InboundKind::Message,
        ));
        assert_eq!(fact.event_id, "chenzhou:o1:42");
        assert_eq!(fact.account.as_str(), "chenzhou");
        assert_eq!(
            fact.increments(),
            Counts {
                messages: 1,
                ..Counts::default()
            }
        );
        assert_eq!(fact.occurred_at, DateTime::from_timestamp(1_700_000_000, 0));
    }

    fn message(xml_body: &str) -> InboundDetail {
        InboundFact::from(&inbound(xml_body, pb::InboundKind::Message)).detail
    }

    #[test]
    fn only_messages_interaction_svc_answers_are_taken_in() {
        let taken = |xml_body: &str| match message(xml_body) {
            InboundDetail::Message { taken_in, .. } => taken_in,
            other => panic!("{other:?}"),
        };
        assert!(taken(
            "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>"
        ));
        assert!(taken(
            "<MsgType>image</MsgType><PicUrl>http://p</PicUrl><MediaId>m</MediaId><MsgId>1</MsgId>"
        ));
        assert!(taken(
            "<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
             <Recognition>社保怎么交</Recognition><MsgId>1</MsgId>"
        ));
        assert!(!taken(
            "<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format><MsgId>1</MsgId>"
        ));
        assert!(!taken(
            "<MsgType>video</MsgType><MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>1</MsgId>"
        ));
        assert!(!taken(
            "<MsgType>shortvideo</MsgType><MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>\
             <MsgId>1</MsgId>"
        ));
    }

    #[test]
    fn subscribe_and_unsubscribe_events_count_as_events_and_changes() {
        let subscribe = InboundFact::from(&event("subscribe"));
        assert_eq!(
            subscribe.increments(),
            Counts {
                events: 1,
                subscribes: 1,
                ..Counts::default()
            }
        );
        let unsubscribe = InboundFact::from(&event("unsubscribe"));
        assert_eq!(
            unsubscribe.increments(),
            Counts {
                events: 1,
                unsubscribes: 1,
                ..Counts::default()
            }
        );
        let click = InboundFact::from(&event("CLICK"));
        assert_eq!(
            click.increments(),
            Counts {
                events: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn a_blank_or_oversized_account_in_a_request_is_refused() {
        assert_eq!(
            InboundError::from(AccountId::parse("").unwrap_err()),
            InboundError::MissingAccount
        );
        assert!(matches!(
            InboundError::from(AccountId::parse("a".repeat(65)).unwrap_err()),
            InboundError::InvalidAccount(_)
        ));
    }
}
