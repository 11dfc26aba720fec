//! The `stats-content-retractions` consumer: every retracted article
//! (`events.v1.ArticleChanged`, transition `retracted`: deleted on WeChat) is marked with
//! its office day and its place in its WeChat message, so it stops counting as the
//! account's last update, and so does the datacube's row of it (`{msg_data_id}_{index}`),
//! not its siblings'.
//!
//! A durable of its own rather than a wider filter on `stats-content`: provisioning
//! keeps an existing durable's filter (`platform::nats::provision_consumer` updates only
//! its delivery settings), so an install upgraded in place would never receive the
//! retractions; a new durable is created on start-up and reads the stream from its start.

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
use crate::store::articles;

/// The durable consumer over retracted articles.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: CONTENT,
    durable: "stats-content-retractions",
    filter_subject: "content.*.article.retracted",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// A retracted article, validated.
#[derive(Debug, Clone)]
pub struct Retracted {
    pub event_id: String,
    pub account: AccountId,
    pub article_id: String,
    /// WeChat's message id and the article's place in it, as far as the event says:
    /// an article announced before stats-svc kept them gets them here.
    pub place: MessagePlace,
    pub retracted_at: DateTime<Utc>,
}

impl StreamEvent for Retracted {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let event = ev::ArticleChanged::decode(payload).map_err(|e| e.to_string())?;
        let header = event.header.as_ref().ok_or("header is required")?;
        if header.event_id.is_empty() {
            return Err("header.event_id is required".to_owned());
        }
        if event.article_id.is_empty() {
            return Err("article_id is required".to_owned());
        }
        let retracted_at = header
            .occurred_at
            .as_ref()
            .and_then(|at| {
                DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
            })
            .ok_or("header.occurred_at is required")?;
        Ok(Self {
            event_id: header.event_id.clone(),
            account: AccountId::parse(header.account.as_str())
                .map_err(|e| format!("account: {e}"))?,
            article_id: event.article_id,
            place: MessagePlace::from_event(event.msg_data_id, event.message_index),
            retracted_at,
        })
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// Marks each retracted article once per `event_id`.
#[derive(Clone)]
pub struct RetractionHandler {
    db: PgPool,
    office: FixedOffset,
}

impl RetractionHandler {
    /// A handler writing to `db`, dating retractions in the `office` time zone.
    pub fn new(db: PgPool, office: FixedOffset) -> Self {
        Self { db, office }
    }
}

impl EventHandler for RetractionHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    const BATCH: usize = 64;
    type Event = Retracted;

    async fn handle(&self, event: &Received<Retracted>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<Retracted>]) -> Result<(), HandleError> {
        let office = self.office;
        apply_once(&self.db, events, async move |tx, retracted| {
            articles::record_retracted(
                tx,
                &retracted.account,
                &retracted.article_id,
                office_day(retracted.retracted_at, office),
                &retracted.place,
            )
            .await
        })
        .await?;
        Ok(())
    }
}
