//! The one typed, validated view of `events.v1.Inbound` (a WeChat callback as the
//! gateway made it durable), used by every consumer of `WECHAT_INBOUND` and by the
//! passive-reply path. No service decodes `Inbound` by hand.

use chrono::{DateTime, Utc};
use prost::Message as _;
use proto::events::v1 as pb;
use wechat::message::{InboundMessage, MessageError};

use crate::consumer::StreamEvent;
use crate::ids::{AccountId, EventId, IdError, OpenId};

/// Why an `Inbound` payload cannot be used. Every variant is permanent: the same
/// bytes fail the same way on every delivery.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("payload is not an events.v1.Inbound: {0}")]
    Undecodable(#[from] prost::DecodeError),
    #[error("inbound event has no header")]
    MissingHeader,
    #[error("inbound {0}")]
    BadId(#[from] IdError),
    #[error("unknown inbound kind {0}")]
    UnknownKind(i32),
    #[error("unparsable callback XML: {0}")]
    Xml(#[from] MessageError),
}

/// A citizen's message or an event (subscribe, CLICK, job-finish, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    Message,
    Event,
}

/// One WeChat callback, decoded and validated.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// The gateway's idempotency key (from WeChat's own retry keys), not the
    /// `Nats-Msg-Id`: a publisher may send one event under two message ids.
    pub event_id: EventId,
    pub account: AccountId,
    /// `FromUserName`: the citizen, or a system sender for job-finish events.
    pub openid: OpenId,
    /// WeChat's `CreateTime` (with whatever sub-second part the header carries);
    /// the gateway's receive time when the header has none.
    pub occurred_at: DateTime<Utc>,
    /// When the gateway received the callback.
    pub received_at: Option<DateTime<Utc>>,
    pub kind: InboundKind,
    /// The parsed callback, every field of the original XML included.
    pub message: InboundMessage,
}

impl InboundEvent {
    /// Decodes and validates a `WECHAT_INBOUND` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        Self::try_from(pb::Inbound::decode(payload)?)
    }
}

fn timestamp(at: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
}

impl TryFrom<pb::Inbound> for InboundEvent {
    type Error = InboundError;

    fn try_from(inbound: pb::Inbound) -> Result<Self, Self::Error> {
        let header = inbound.header.ok_or(InboundError::MissingHeader)?;
        let event_id = EventId::parse(header.event_id)?;
        let account = AccountId::parse(header.account)?;
        let kind = match pb::InboundKind::try_from(inbound.kind) {
            Ok(pb::InboundKind::Message) => InboundKind::Message,
            Ok(pb::InboundKind::Event) => InboundKind::Event,
            Ok(pb::InboundKind::Unspecified) | Err(_) => {
                return Err(InboundError::UnknownKind(inbound.kind));
            }
        };
        let message = InboundMessage::parse(inbound.raw_xml.as_bytes())?;
        let openid = OpenId::parse(message.header.from_user_name.clone())?;
        let received_at = timestamp(inbound.received_at);
        let occurred_at = timestamp(header.occurred_at)
            .filter(|at| at.timestamp() > 0)
            .or(received_at)
            .unwrap_or_else(Utc::now);
        Ok(Self {
            event_id,
            account,
            openid,
            occurred_at,
            received_at,
            kind,
            message,
        })
    }
}

impl StreamEvent for InboundEvent {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        Self::decode(payload).map_err(|error| error.to_string())
    }

    fn event_id(&self) -> &str {
        self.event_id.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(xml: &str, event_id: &str, account: &str) -> pb::Inbound {
        pb::Inbound {
            header: Some(pb::EventHeader {
                event_id: event_id.to_owned(),
                account: account.to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 250_000_000,
                }),
            }),
            kind: pb::InboundKind::Message as i32,
            msg_type: "text".to_owned(),
            raw_xml: xml.to_owned(),
            ..Default::default()
        }
    }

    const TEXT: &str = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
        <CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>社保</Content>\
        <MsgId>42</MsgId></xml>";

    #[test]
    fn a_valid_inbound_keeps_its_ids_nanoseconds_and_message() {
        let payload = inbound(TEXT, "city:o1:42", "city").encode_to_vec();
        let event = InboundEvent::decode(&payload).unwrap();
        assert_eq!(event.event_id.as_str(), "city:o1:42");
        assert_eq!(event.account.as_str(), "city");
        assert_eq!(event.openid.as_str(), "o1");
        assert_eq!(event.occurred_at.timestamp_subsec_millis(), 250);
        assert_eq!(event.kind, InboundKind::Message);
        assert_eq!(event.message.header.msg_type, "text");
    }

    #[test]
    fn missing_ids_bad_kind_and_bad_xml_are_named() {
        let no_id = inbound(TEXT, "", "city").encode_to_vec();
        assert_eq!(
            InboundEvent::decode(&no_id).unwrap_err().to_string(),
            "inbound event_id is required"
        );
        let no_account = inbound(TEXT, "x", " ").encode_to_vec();
        assert!(
            InboundEvent::decode(&no_account)
                .unwrap_err()
                .to_string()
                .contains("account")
        );
        let mut unknown = inbound(TEXT, "x", "city");
        unknown.kind = 9;
        assert!(matches!(
            InboundEvent::try_from(unknown),
            Err(InboundError::UnknownKind(9))
        ));
        let bad_xml = inbound("<xml><MsgType>", "x", "city").encode_to_vec();
        assert!(matches!(
            InboundEvent::decode(&bad_xml),
            Err(InboundError::Xml(_))
        ));
        assert!(matches!(
            InboundEvent::decode(b"\xff\xff\xff"),
            Err(InboundError::Undecodable(_))
        ));
    }
}
