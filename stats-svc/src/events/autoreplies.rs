//! The `stats-autoreplies` consumer: every `events.v1.AutoReplied` (interaction-svc
//! answered a citizen with a reply rule or the directory) grows its account's keyword
//! and directory hits, in batches (one transaction per batch, each event claimed once).

use std::time::Duration;

use chrono::FixedOffset;
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent, apply_once_then};
use platform::nats::{ConsumerSpec, DEFAULT_MAX_ACK_PENDING, INTERACTION, PATIENT_DELIVERIES};
use prost::Message as _;
use sqlx::PgPool;

use crate::domain::autoreply::AutoReplyFact;
use crate::store::rollups;

/// The durable consumer over automatic answers.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: INTERACTION,
    durable: "stats-autoreplies",
    filter_subject: "interaction.*.autoreply.*",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// A decoded, validated automatic answer.
#[derive(Debug, Clone)]
pub struct AutoReplyEvent(pub AutoReplyFact);

impl StreamEvent for AutoReplyEvent {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let event = proto::events::v1::AutoReplied::decode(payload).map_err(|e| e.to_string())?;
        AutoReplyFact::try_from(&event)
            .map(AutoReplyEvent)
            .map_err(|e| e.to_string())
    }

    fn event_id(&self) -> &str {
        &self.0.event_id
    }
}

/// Rolls up each automatic answer once per `event_id`.
#[derive(Clone)]
pub struct AutoReplyHandler {
    db: PgPool,
    office: FixedOffset,
}

impl AutoReplyHandler {
    /// A handler writing to `db`, counting days in the `office` time zone.
    pub fn new(db: PgPool, office: FixedOffset) -> Self {
        Self { db, office }
    }
}

impl EventHandler for AutoReplyHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    // Counters commute, and every batch upserts in key order (rollups::add), so lanes
    // need no key and cannot deadlock each other.
    const CONCURRENCY: usize = 2;
    const BATCH: usize = 256;
    type Event = AutoReplyEvent;

    async fn handle(&self, event: &Received<AutoReplyEvent>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn handle_batch(&self, events: &[Received<AutoReplyEvent>]) -> Result<(), HandleError> {
        let office = self.office;
        apply_once_then(
            &self.db,
            events,
            async move |_, AutoReplyEvent(fact)| Ok(fact.tallies(office)),
            async |tx, tallies| rollups::add(tx, &tallies.concat()).await,
        )
        .await?;
        Ok(())
    }
}
