//! The `interaction-directory` consumer: content-svc's directory changes
//! (`events.v1.DirectoryServiceChanged` on `content.{account}.directory.{change}`)
//! replicated into `directory_services`; after each commit every replica is told to
//! rebuild its matcher.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent, apply_once};
use platform::nats::{CONTENT, ConsumerSpec, DEFAULT_MAX_ACK_PENDING, PATIENT_DELIVERIES};
use prost::Message as _;
use proto::events::v1 as ev;
use sqlx::PgPool;

use crate::replies::directory::DirectoryNotifier;
use crate::store::directory::{self as store, ServiceVersion};

/// The durable consumer over directory changes.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: CONTENT,
    durable: "interaction-directory",
    filter_subject: "content.*.directory.>",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

/// One directory change, validated.
#[derive(Debug, Clone)]
pub struct DirectoryChange(pub ServiceVersion);

fn time(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

impl StreamEvent for DirectoryChange {
    fn decode(payload: &[u8]) -> Result<Self, String> {
        let event = ev::DirectoryServiceChanged::decode(payload).map_err(|e| e.to_string())?;
        let header = event.header.as_ref().ok_or("header is required")?;
        if header.event_id.is_empty() {
            return Err("header.event_id is required".to_owned());
        }
        if header.account.is_empty() {
            return Err("header.account is required".to_owned());
        }
        let changed_at =
            time(header.occurred_at.as_ref()).ok_or("header.occurred_at is required")?;
        let id = uuid::Uuid::parse_str(&event.service_id)
            .map_err(|e| format!("service_id {:?}: {e}", event.service_id))?;
        let deleted = match event.change.as_str() {
            "created" | "updated" => false,
            "deleted" => true,
            other => {
                return Err(format!(
                    "change {other:?} is not created, updated or deleted"
                ));
            }
        };
        let mut accounts = event.accounts;
        if !deleted && accounts.is_empty() {
            accounts.push(header.account.clone());
        }
        Ok(Self(ServiceVersion {
            id,
            owner_account: header.account.clone(),
            accounts: if deleted { Vec::new() } else { accounts },
            category: event.category,
            name: event.name,
            department: event.department,
            description: event.description,
            url: event.url,
            keywords: event.keywords,
            synonyms: event.synonyms,
            enabled: event.enabled && !deleted,
            deleted,
            changed_at,
            event_id: header.event_id.clone(),
        }))
    }

    fn event_id(&self) -> &str {
        &self.0.event_id
    }
}

/// Replicates directory changes.
pub struct DirectoryHandler {
    db: PgPool,
    notifier: DirectoryNotifier,
}

impl DirectoryHandler {
    /// A handler writing to `db` and announcing each applied batch with `notifier`.
    pub fn new(db: PgPool, notifier: DirectoryNotifier) -> Self {
        Self { db, notifier }
    }
}

impl EventHandler for DirectoryHandler {
    const CONSUMER: ConsumerSpec = CONSUMER;
    const BATCH: usize = 64;
    type Event = DirectoryChange;

    async fn handle(&self, event: &Received<DirectoryChange>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<DirectoryChange>]) -> Result<(), HandleError> {
        // The changes that moved the replica: an older version than the one kept (a
        // late or replayed event) writes nothing, and no matcher need be rebuilt.
        // Shared, not borrowed: `apply_once`'s closure must own what it captures (see
        // its doc).
        let written = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&written);
        apply_once(
            &self.db,
            events,
            async move |tx, DirectoryChange(version)| {
                if store::apply(tx, version).await? {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            },
        )
        .await?;
        let written = written.load(Ordering::Relaxed);
        metrics::counter!("interaction_directory_changes_total").increment(written as u64);
        if written > 0 {
            self.notifier.changed().await;
        }
        Ok(())
    }
}
