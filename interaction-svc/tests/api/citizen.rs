//! A simulated citizen: WeChat-shaped callbacks (the XML from `wechat-sim`) turned
//! into `events.v1.Inbound` exactly as the gateway does, published to the test's
//! WECHAT_INBOUND subjects or sent as reply-path requests.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use platform::nats::Namespace;
use prost::Message as _;
use proto::events::v1::{Inbound, PassiveReply, passive_reply};
use wechat::message::InboundMessage;
use wechat_sim::traffic::CitizenAction;

use crate::helpers::{ACCOUNT, TestApp};

/// The account's original id.
pub const GH_ID: &str = "gh_chenzhou0001";

/// A citizen with a fresh openid and their own CreateTime clock.
pub struct Citizen {
    pub openid: String,
    create_time: u64,
    msg_id: u64,
}

/// A callback ready to send: its `Inbound` and the subject suffix after `wechat.inbound.`.
pub struct Callback {
    pub inbound: Inbound,
    pub suffix: String,
}

impl Callback {
    /// The event id the gateway derived.
    pub fn event_id(&self) -> &str {
        &self.inbound.header.as_ref().expect("header").event_id
    }

    /// When WeChat says it happened.
    pub fn create_time(&self) -> chrono::DateTime<chrono::Utc> {
        let seconds = self
            .inbound
            .header
            .as_ref()
            .expect("header")
            .occurred_at
            .expect("time")
            .seconds;
        chrono::DateTime::from_timestamp(seconds, 0).expect("valid time")
    }
}

impl Citizen {
    /// A new citizen acting now.
    pub fn new() -> Self {
        Self::at(chrono::Utc::now())
    }

    /// A new citizen whose first callback is at `at`.
    pub fn at(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            openid: format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..27]),
            create_time: at.timestamp() as u64,
            msg_id: rand_msg_id(),
        }
    }

    /// The callback for `action`, one second after the previous one.
    pub fn does(&mut self, action: CitizenAction) -> Callback {
        self.create_time += 1;
        self.msg_id += 1;
        let xml = action.to_xml(GH_ID, &self.openid, self.create_time, self.msg_id);
        inbound(&xml)
    }

    /// The callback of a text message.
    pub fn says(&mut self, content: &str) -> Callback {
        self.does(CitizenAction::Text {
            content: content.to_owned(),
        })
    }
}

fn rand_msg_id() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_fields().0) << 20
}

/// The `Inbound` the gateway would publish for the plaintext `xml`, built by the
/// gateway's own `inbound_event`.
pub fn inbound(xml: &str) -> Callback {
    let message = InboundMessage::parse(xml.as_bytes()).expect("test XML parses");
    let event = gateway::event::inbound_event(
        &Namespace::default(),
        ACCOUNT,
        &message,
        xml,
        std::time::SystemTime::now(),
    );
    Callback {
        suffix: event
            .subject
            .strip_prefix("wechat.inbound.")
            .expect("an inbound subject")
            .to_owned(),
        inbound: Inbound::decode(event.payload).expect("the gateway's Inbound decodes"),
    }
}

impl TestApp {
    /// Publishes a callback as the gateway does (`Nats-Msg-Id` = event id).
    pub async fn publish(&self, callback: &Callback) {
        self.publish_raw(
            &callback.suffix,
            callback.event_id(),
            callback.inbound.encode_to_vec(),
        )
        .await;
    }

    /// Publishes `payload` on `wechat.inbound.{suffix}` with `msg_id` as `Nats-Msg-Id`
    /// and waits for JetStream's ack.
    pub async fn publish_raw(&self, suffix: &str, msg_id: &str, payload: Vec<u8>) {
        let jetstream = jetstream::new(self.nats().await);
        platform::testing::publish_inbound(&jetstream, self.namespace(), suffix, msg_id, payload)
            .await;
    }

    /// Asks the reply path for the passive reply to `callback`, as the gateway does.
    pub async fn passive_reply(
        &self,
        nats: &async_nats::Client,
        callback: &Callback,
    ) -> PassiveReply {
        let subject = self.namespace().subject(&format!("wechat.reply.{ACCOUNT}"));
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            nats.request(subject, callback.inbound.encode_to_vec().into()),
        )
        .await
        .expect("the reply path answers in time")
        .expect("the reply path answers");
        PassiveReply::decode(answer.payload).expect("a PassiveReply")
    }

    /// Every message on the INTERACTION stream under `filter` (un-namespaced, e.g.
    /// `interaction.chenzhou.follower.>`), once at least `at_least` arrived (≤10 s).
    pub async fn interaction_events(
        &self,
        filter: &str,
        at_least: usize,
    ) -> Vec<async_nats::Message> {
        let jetstream = jetstream::new(self.nats().await);
        let stream = jetstream
            .get_stream(self.namespace().name("INTERACTION"))
            .await
            .expect("INTERACTION stream");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let consumer = stream
                .create_consumer(jetstream::consumer::pull::Config {
                    filter_subject: self.namespace().subject(filter),
                    ..Default::default()
                })
                .await
                .expect("ephemeral consumer");
            let mut batch = consumer
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_millis(300))
                .messages()
                .await
                .expect("fetch");
            let mut found = Vec::new();
            while let Some(Ok(message)) = batch.next().await {
                found.push(async_nats::Message::from(message));
            }
            if found.len() >= at_least {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{at_least} events on {filter} not published within 10s (saw {})",
                found.len()
            );
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most 10 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(10), check).await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of a passive reply, if it is one.
pub fn text_of(reply: &PassiveReply) -> Option<&str> {
    match &reply.body {
        Some(passive_reply::Body::Text(text)) => Some(text.content.as_str()),
        _ => None,
    }
}
