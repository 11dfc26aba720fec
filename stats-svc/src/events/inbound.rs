//! The `stats-inbound` consumer: every WeChat callback grows its account's counters.

use std::time::Duration;

use platform::consumer::{Delivery, EventHandler, HandleError};
use platform::nats::{ConsumerSpec, WECHAT_INBOUND};
use sqlx::PgPool;

use crate::domain::InboundFact;
use crate::store::account_inbound::{self, Recorded};

/// The durable consumer over every inbound callback.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "stats-inbound",
    filter_subject: "wechat.inbound.>",
    max_deliver: 5,
    ack_wait: Duration::from_secs(30),
};

/// Counts each `events.v1.Inbound` once per `event_id`.
#[derive(Clone)]
pub struct InboundHandler {
    db: PgPool,
}

impl InboundHandler {
    /// A handler writing to `db`.
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

impl EventHandler for InboundHandler {
    #[tracing::instrument(skip_all, fields(subject = %delivery.subject, event_id))]
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandleError> {
        // Bytes that do not decode never will: dead-letter at once.
        let fact = InboundFact::decode(&delivery.payload)
            .map_err(|error| HandleError::Permanent(error.to_string()))?;
        // The payload's event_id, not the header's: it is the id the gateway derived
        // from WeChat's own retry keys, whatever Nats-Msg-Id a publisher used.
        tracing::Span::current().record("event_id", fact.event_id.as_str());
        match account_inbound::record(&self.db, &fact).await {
            Ok(Recorded::Applied) => Ok(()),
            Ok(Recorded::Duplicate) => {
                tracing::debug!("inbound event already counted");
                metrics::counter!("stats_inbound_duplicates_total").increment(1);
                Ok(())
            }
            Err(error) => Err(HandleError::Transient(format!("database: {error}"))),
        }
    }
}
