//! The `events.v1.Inbound` envelope a verified callback becomes, and its subject.
//! Pure: no I/O. (The bounded `type` label of the metrics is the `wechat` crate's
//! `InboundType::label`.)

use std::time::SystemTime;

use platform::nats::Namespace;
use proto::events::v1::{EventHeader, Inbound, InboundKind};
use wechat::message::{Event, InboundMessage, Payload};

/// A callback ready to publish.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// `wechat.inbound.{account}.msg.{type}` or `….event.{event}`, namespaced.
    pub subject: String,
    /// The `event_id`, also the `Nats-Msg-Id`.
    pub event_id: String,
    /// The encoded `Inbound`.
    pub payload: bytes::Bytes,
}

impl InboundEvent {
    /// The account the event came to: the event_id's first part.
    pub fn account(&self) -> &str {
        account_of(&self.event_id)
    }

    /// How logs name the event: never by its event_id, which carries the citizen's
    /// openid (`FromUserName`), but as `{account}:{digest}`, where the digest is the
    /// first 8 bytes of the event_id's SHA-256 in hex (the start of its reply-bucket
    /// key). Computed only when a line is written.
    pub fn log_ref(&self) -> LogRef<'_> {
        LogRef(&self.event_id)
    }
}

/// An event named without its openid: see [`InboundEvent::log_ref`].
pub struct LogRef<'a>(&'a str);

impl std::fmt::Display for LogRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::{Digest, Sha256};
        let account = account_of(self.0);
        let digest = Sha256::digest(self.0.as_bytes());
        write!(f, "{account}:{}", hex::encode(&digest[..8]))
    }
}

/// The account part of an event_id (`{account}:…`): account ids have no `:` (config
/// checks `a-z 0-9 - _`).
fn account_of(event_id: &str) -> &str {
    event_id.split(':').next().unwrap_or_default()
}

/// Builds the event for `message`, whose decrypted XML is `plaintext`.
pub fn inbound_event(
    namespace: &Namespace,
    account: &str,
    message: &InboundMessage,
    plaintext: &str,
    received_at: SystemTime,
) -> InboundEvent {
    let event_id = message.dedup_key(account, plaintext.as_bytes());
    let (kind, token) = message.kind();
    let subject = namespace.subject(&format!("wechat.inbound.{account}.{kind}.{token}"));
    let (inbound_kind, event) = match &message.payload {
        Payload::Event { event, .. } => (InboundKind::Event, event.clone()),
        _ => (InboundKind::Message, String::new()),
    };
    let inbound = Inbound {
        header: Some(EventHeader {
            event_id: event_id.clone(),
            account: account.to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: i64::try_from(message.header.create_time).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        }),
        kind: inbound_kind as i32,
        msg_type: message.header.msg_type.clone(),
        event,
        to_user_name: message.header.to_user_name.clone(),
        from_user_name: message.header.from_user_name.clone(),
        msg_id: msg_id(message).unwrap_or_default(),
        raw_xml: plaintext.to_owned(),
        received_at: Some(prost_types::Timestamp::from(received_at)),
    };
    InboundEvent {
        subject,
        event_id,
        payload: prost::Message::encode_to_vec(&inbound).into(),
    }
}

/// `MsgId` of a message, or `MsgID` of a mass/template job-finish event.
fn msg_id(message: &InboundMessage) -> Option<String> {
    if let Some(id) = message.msg_id() {
        return Some(id.to_string());
    }
    match &message.payload {
        Payload::Event {
            kind: Event::MassSendJobFinish(e),
            ..
        } => Some(e.msg_id.to_string()),
        Payload::Event {
            kind: Event::TemplateSendJobFinish(e),
            ..
        } => Some(e.msg_id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn a_text_message_becomes_an_inbound_on_its_subject() {
        let xml = "<xml><ToUserName><![CDATA[gh_city]]></ToUserName>\
            <FromUserName><![CDATA[oUser1]]></FromUserName><CreateTime>1700000000</CreateTime>\
            <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>\
            <MsgId>1234567890123456789</MsgId></xml>";
        let message = InboundMessage::parse(xml.as_bytes()).unwrap();
        let ns = Namespace::new("t1").unwrap();
        let event = inbound_event(&ns, "city", &message, xml, SystemTime::UNIX_EPOCH);
        assert_eq!(event.subject, "t1.wechat.inbound.city.msg.text");
        assert_eq!(event.event_id, "city:oUser1:1234567890123456789");
        let inbound = Inbound::decode(event.payload).unwrap();
        assert_eq!(inbound.kind(), InboundKind::Message);
        assert_eq!(inbound.msg_id, "1234567890123456789");
        assert_eq!(inbound.raw_xml, xml);
        let header = inbound.header.unwrap();
        assert_eq!(header.occurred_at.unwrap().seconds, 1_700_000_000);
    }

    #[test]
    fn logs_name_an_event_by_its_account_and_a_digest_without_the_openid() {
        let xml = "<xml><ToUserName>gh_city</ToUserName><FromUserName>oUser1</FromUserName>\
            <CreateTime>1700000000</CreateTime><MsgType>text</MsgType>\
            <Content>hi</Content><MsgId>42</MsgId></xml>";
        let message = InboundMessage::parse(xml.as_bytes()).unwrap();
        let event = inbound_event(
            &Namespace::default(),
            "city",
            &message,
            xml,
            SystemTime::now(),
        );
        let logged = event.log_ref().to_string();
        assert!(!logged.contains("oUser1"), "{logged}");
        assert!(logged.starts_with("city:"), "{logged}");
        assert_eq!(logged.len(), "city:".len() + 16);
        assert_eq!(event.account(), "city");
        assert_eq!(logged, event.log_ref().to_string(), "stable");
    }

    #[test]
    fn a_template_job_finish_carries_its_msg_id() {
        let xml = "<xml><ToUserName>gh_city</ToUserName><FromUserName>oSys</FromUserName>\
            <CreateTime>1700000000</CreateTime><MsgType>event</MsgType>\
            <Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>\
            <Status>success</Status></xml>";
        let message = InboundMessage::parse(xml.as_bytes()).unwrap();
        let event = inbound_event(
            &Namespace::default(),
            "city",
            &message,
            xml,
            SystemTime::now(),
        );
        assert_eq!(
            event.subject,
            "wechat.inbound.city.event.templatesendjobfinish"
        );
        let inbound = Inbound::decode(event.payload).unwrap();
        assert_eq!(inbound.msg_id, "200163836");
        assert_eq!(inbound.event, "TEMPLATESENDJOBFINISH");
    }
}
