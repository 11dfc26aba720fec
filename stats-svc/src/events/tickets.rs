//! The `stats-tickets` consumer: every `events.v1.TicketChanged` grows its account's
//! daily ticket counters (per department) and folds its time into the ticket's row,
//! in batches (one transaction per batch).

use std::time::Duration;

use chrono::FixedOffset;
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent, apply_once_then};
use platform::nats::{ConsumerSpec, DEFAULT_MAX_ACK_PENDING, INTERACTION, PATIENT_DELIVERIES};
use prost::Message as _;
use sqlx::PgPool;

use crate::domain::rollup::{Tally, TicketFact};
use crate::store::rollups;

/// The durable consumer over ticket changes (follower changes are counted from the
/// callbacks themselves, on WECHAT_INBOUND, so they are not read twice).
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: INTERACTION,
    durable: "stats-tickets",
    filter_subject: "interaction.*.ticket.>",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// A decoded, validated ticket change.
#[derive(Debug, Clone)]
pub struct TicketEvent(pub TicketFact);

impl StreamEvent for TicketEvent {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let event = proto::events::v1::TicketChanged::decode(payload).map_err(|e| e.to_string())?;
        TicketFact::try_from(&event)
            .map(TicketEvent)
            .map_err(|e| e.to_string())
    }

    fn event_id(&self) -> &str {
        &self.0.event_id
    }
}

/// Rolls up each ticket change once per `event_id`.
#[derive(Clone)]
pub struct TicketHandler {
    db: PgPool,
    office: FixedOffset,
}

impl TicketHandler {
    /// A handler writing to `db`, counting days in the `office` time zone.
    pub fn new(db: PgPool, office: FixedOffset) -> Self {
        Self { db, office }
    }
}

impl EventHandler for TicketHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    // Every column of a ticket's row is order-independent (earliest time, newest
    // department), so lanes need no key; a batch takes its rows in one order
    // (`rollups::record_tickets`), so two lanes cannot deadlock on them.
    const CONCURRENCY: usize = 2;
    const BATCH: usize = 256;
    type Event = TicketEvent;

    async fn handle(&self, event: &Received<TicketEvent>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn handle_batch(&self, events: &[Received<TicketEvent>]) -> Result<(), HandleError> {
        let office = self.office;
        apply_once_then(
            &self.db,
            events,
            async move |_, TicketEvent(fact)| Ok((fact.clone(), fact.tallies(office))),
            // The batch's rows in ticket order, then its counters in one upsert per
            // key, in key order.
            async |tx, applied: Vec<(TicketFact, Vec<Tally>)>| {
                let (facts, tallies): (Vec<_>, Vec<_>) = applied.into_iter().unzip();
                rollups::record_tickets(tx, facts).await?;
                rollups::add(tx, &tallies.concat()).await
            },
        )
        .await?;
        Ok(())
    }
}
