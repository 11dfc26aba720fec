//! What one inbound WeChat callback contributes to an account's counters.

use std::fmt;

use chrono::{DateTime, Utc};
use proto::events::v1 as pb;

/// Why an inbound event cannot be counted. Every variant is permanent: the same
/// bytes will fail the same way on every delivery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("payload is not an events.v1.Inbound: {0}")]
    Undecodable(String),
    #[error("inbound event has no header")]
    MissingHeader,
    #[error("inbound event has no event_id")]
    MissingEventId,
    #[error("account is required")]
    MissingAccount,
    #[error("unknown inbound kind {0}")]
    UnknownKind(i32),
}

/// An account on this install (the callback URL's path segment, e.g. `chenzhou`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts any non-blank id; the gateway decides which accounts exist.
    pub fn parse(raw: &str) -> Result<Self, InboundError> {
        if raw.trim().is_empty() {
            return Err(InboundError::MissingAccount);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A citizen's message or an event (subscribe, CLICK, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    Message,
    Event,
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
}

impl InboundFact {
    /// Decodes a `WECHAT_INBOUND` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        let inbound = <pb::Inbound as prost::Message>::decode(payload)
            .map_err(|e| InboundError::Undecodable(e.to_string()))?;
        Self::try_from(inbound)
    }

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

impl TryFrom<pb::Inbound> for InboundFact {
    type Error = InboundError;

    fn try_from(inbound: pb::Inbound) -> Result<Self, Self::Error> {
        let header = inbound.header.ok_or(InboundError::MissingHeader)?;
        if header.event_id.is_empty() {
            return Err(InboundError::MissingEventId);
        }
        let account = AccountId::parse(&header.account)?;
        let kind = match pb::InboundKind::try_from(inbound.kind) {
            Ok(pb::InboundKind::Message) => InboundKind::Message,
            Ok(pb::InboundKind::Event) => InboundKind::Event,
            Ok(pb::InboundKind::Unspecified) | Err(_) => {
                return Err(InboundError::UnknownKind(inbound.kind));
            }
        };
        // WeChat spells these two events in lowercase; other events (SCAN, CLICK, …)
        // change no subscription.
        let subscription = match (kind, inbound.event.as_str()) {
            (InboundKind::Event, "subscribe") => Some(SubscriptionChange::Subscribe),
            (InboundKind::Event, "unsubscribe") => Some(SubscriptionChange::Unsubscribe),
            _ => None,
        };
        let occurred_at = header
            .occurred_at
            .or(inbound.received_at)
            .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?));
        Ok(Self {
            event_id: header.event_id,
            account,
            kind,
            subscription,
            occurred_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn inbound(kind: pb::InboundKind, event: &str) -> pb::Inbound {
        pb::Inbound {
            header: Some(pb::EventHeader {
                event_id: "chenzhou:o1:42".to_owned(),
                account: "chenzhou".to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
            }),
            kind: kind as i32,
            msg_type: if kind == pb::InboundKind::Event {
                "event"
            } else {
                "text"
            }
            .to_owned(),
            event: event.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_message_counts_as_a_message() {
        let fact =
            InboundFact::decode(&inbound(pb::InboundKind::Message, "").encode_to_vec()).unwrap();
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

    #[test]
    fn subscribe_and_unsubscribe_events_count_as_events_and_changes() {
        let subscribe =
            InboundFact::try_from(inbound(pb::InboundKind::Event, "subscribe")).unwrap();
        assert_eq!(
            subscribe.increments(),
            Counts {
                events: 1,
                subscribes: 1,
                ..Counts::default()
            }
        );
        let unsubscribe =
            InboundFact::try_from(inbound(pb::InboundKind::Event, "unsubscribe")).unwrap();
        assert_eq!(
            unsubscribe.increments(),
            Counts {
                events: 1,
                unsubscribes: 1,
                ..Counts::default()
            }
        );
        let click = InboundFact::try_from(inbound(pb::InboundKind::Event, "CLICK")).unwrap();
        assert_eq!(
            click.increments(),
            Counts {
                events: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn received_at_stands_in_for_a_missing_occurred_at() {
        let mut event = inbound(pb::InboundKind::Message, "");
        if let Some(header) = event.header.as_mut() {
            header.occurred_at = None;
        }
        event.received_at = Some(prost_types::Timestamp {
            seconds: 1_700_000_100,
            nanos: 0,
        });
        let fact = InboundFact::try_from(event).unwrap();
        assert_eq!(fact.occurred_at, DateTime::from_timestamp(1_700_000_100, 0));
    }

    #[test]
    fn unusable_payloads_are_refused_with_the_reason() {
        assert!(matches!(
            InboundFact::decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(InboundError::Undecodable(_))
        ));
        // An empty payload decodes as a default Inbound: no header.
        assert_eq!(InboundFact::decode(&[]), Err(InboundError::MissingHeader));

        let mut no_id = inbound(pb::InboundKind::Message, "");
        if let Some(header) = no_id.header.as_mut() {
            header.event_id.clear();
        }
        assert_eq!(
            InboundFact::try_from(no_id),
            Err(InboundError::MissingEventId)
        );

        let mut no_account = inbound(pb::InboundKind::Message, "");
        if let Some(header) = no_account.header.as_mut() {
            header.account.clear();
        }
        assert_eq!(
            InboundFact::try_from(no_account),
            Err(InboundError::MissingAccount)
        );

        assert_eq!(
            InboundFact::try_from(inbound(pb::InboundKind::Unspecified, "")),
            Err(InboundError::UnknownKind(0))
        );
    }
}
