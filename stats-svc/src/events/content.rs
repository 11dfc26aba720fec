//! The `stats-content` consumer: every published article (`events.v1.ArticleChanged`,
//! transition `published`) is recorded with its office day, headline flag and place in
//! its WeChat message, so the update-gap alarm and the monthly list know it.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent, apply_once};
use platform::ids::AccountId;
use platform::nats::{CONTENT, ConsumerSpec, DEFAULT_MAX_ACK_PENDING, PATIENT_DELIVERIES};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::PgPool;

use crate::domain::figures::MessagePlace;
use crate::domain::rollup::office_day;
use crate::store::articles::{self, PublishedArticle};

/// The durable consumer over published articles.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: CONTENT,
    durable: "stats-content",
    filter_subject: "content.*.article.published",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// A published article, validated.
#[derive(Debug, Clone)]
pub struct Published {
    pub event_id: String,
    pub account: AccountId,
    pub article_id: String,
    pub title: String,
    pub headline: bool,
    /// WeChat's message id and the article's place in it, under which the datacube
    /// reports the article (`{msg_data_id}_{index}`), as far as the event says.
    pub place: MessagePlace,
    /// How content-svc sent it: `Some(true)` freepublish, `Some(false)` mass send,
    /// `None` not said. The datacube reports mass sends only.
    pub freepublished: Option<bool>,
    pub published_at: DateTime<Utc>,
}

fn time(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
}

impl StreamEvent for Published {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let event = ev::ArticleChanged::decode(payload).map_err(|e| e.to_string())?;
        let header = event.header.as_ref().ok_or("header is required")?;
        if header.event_id.is_empty() {
            return Err("header.event_id is required".to_owned());
        }
        if event.article_id.is_empty() {
            return Err("article_id is required".to_owned());
        }
        let freepublished = match event.channel() {
            ev::PublishChannel::Freepublish => Some(true),
            ev::PublishChannel::MassSend => Some(false),
            ev::PublishChannel::Unspecified => None,
        };
        let published_at = time(event.published_at.as_ref())
            .or_else(|| time(header.occurred_at.as_ref()))
            .ok_or("published_at is required")?;
        Ok(Self {
            event_id: header.event_id.clone(),
            account: AccountId::parse(header.account.as_str())
                .map_err(|e| format!("account: {e}"))?,
            article_id: event.article_id,
            title: event.title,
            headline: event.headline,
            place: MessagePlace::from_event(event.msg_data_id, event.message_index),
            freepublished,
            published_at,
        })
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// Records each published article once per `event_id`.
#[derive(Clone)]
pub struct ContentHandler {
    db: PgPool,
    office: FixedOffset,
}

impl ContentHandler {
    /// A handler writing to `db`, dating articles in the `office` time zone.
    pub fn new(db: PgPool, office: FixedOffset) -> Self {
        Self { db, office }
    }
}

impl EventHandler for ContentHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    const BATCH: usize = 64;
    type Event = Published;

    async fn handle(&self, event: &Received<Published>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<Published>]) -> Result<(), HandleError> {
        let office = self.office;
        apply_once(&self.db, events, async move |tx, article| {
            articles::record_published(
                tx,
                &PublishedArticle {
                    account: &article.account,
                    article_id: &article.article_id,
                    title: &article.title,
                    published_on: office_day(article.published_at, office),
                    headline: article.headline,
                    place: &article.place,
                    freepublished: article.freepublished,
                },
            )
            .await
        })
        .await?;
        Ok(())
    }
}
