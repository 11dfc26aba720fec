//! The transactional outbox: a service writes the events announcing a change in the
//! transaction of the change ([`enqueue`]), and the [`Relay`] publishes them to
//! JetStream with `Nats-Msg-Id` = the event id, then marks them published. No lost
//! event, and no event for a rolled-back change.
//!
//! The table's shape is [`SCHEMA`]; each service's migrations include it verbatim.
//!
//! Several replicas relay at once without losing or repeating an event: each locks
//! its batch with `FOR UPDATE SKIP LOCKED`, and a batch published again after a
//! crash (before it was marked) is dropped by JetStream's duplicate window.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;

use crate::failure_log::FailureLog;
use crate::nats::{Namespace, publish_dead_letter};

/// The outbox and processed-events tables, as each service's migration creates them.
pub const SCHEMA: &str = include_str!("../sql/outbox.sql");

/// Events relayed per transaction.
const BATCH: i64 = 500;

/// Published rows are kept this long (tests and operators read them), then purged.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the purge of old published rows and event claims runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Claims (`processed_events`) deleted per statement, and statements per purge: up to
/// 200,000 an hour, far above what an install claims (a city: ~200,000 a day).
const CLAIM_PURGE_BATCH: i64 = 10_000;
const CLAIM_PURGE_BATCHES: usize = 20;

/// How long an event's claim is kept: a redelivery can only come from a message still
/// in its stream, so the longest stream's max age, plus two weeks for a dead letter an
/// operator republishes. Each claim holds a citizen's openid (inbound event ids do):
/// it is kept no longer than it protects anything.
pub fn claim_retention() -> Duration {
    let longest = crate::nats::ALL_STREAMS
        .iter()
        .map(|stream| stream.max_age)
        .max()
        .unwrap_or_default();
    longest + Duration::from_secs(14 * 24 * 3600)
}

/// One event to announce.
#[derive(Debug, Clone, Copy)]
pub struct OutboxEvent<'a> {
    /// Without the namespace prefix, e.g. `interaction.city.ticket.opened`.
    pub subject: &'a str,
    /// Derived from the cause, so replaying the cause cannot announce twice.
    pub event_id: &'a str,
    /// The encoded protobuf payload.
    pub payload: &'a [u8],
}

/// Queues `event` in the caller's transaction. Returns false when an event with the
/// same id is already queued (the change was announced before).
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    event: OutboxEvent<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.event_id)
    .bind(event.subject)
    .bind(event.payload)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Wakes the relay after a commit that queued events. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// A signal nobody listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the relay there is something to publish. Call it after the commit; a
    /// wake-up is never lost (it is kept until the relay next waits).
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Why a relay pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("publish to {subject}: {reason}")]
    Publish { subject: String, reason: String },
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    event_id: String,
    subject: String,
    payload: Vec<u8>,
}

/// Publishes a service's outbox.
#[derive(Debug, Clone)]
pub struct Relay {
    service: &'static str,
    db: PgPool,
    jetstream: jetstream::Context,
    namespace: Namespace,
}

impl Relay {
    /// A relay for `service` (the metrics label) over its database's outbox.
    pub fn new(
        service: &'static str,
        db: PgPool,
        jetstream: jetstream::Context,
        namespace: Namespace,
    ) -> Self {
        Self {
            service,
            db,
            jetstream,
            namespace,
        }
    }

    /// Publishes one batch and returns how many events it published. Rows whose
    /// publish was not acknowledged stay unpublished for the next pass.
    #[tracing::instrument(skip_all, fields(service = self.service))]
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.db.begin().await?;
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT id, event_id, subject, payload FROM outbox
              WHERE published_at IS NULL
              ORDER BY id LIMIT $1
              FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        // Send the whole batch, then await the acks: one round trip, not one per event.
        let mut acks = Vec::with_capacity(pending.len());
        let mut oversized = Vec::new();
        let mut failure = None;
        for event in &pending {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
            let subject = self.namespace.subject(&event.subject);
            match self
                .jetstream
                .publish_with_headers(subject.clone(), headers, event.payload.clone().into())
                .await
            {
                Ok(ack) => acks.push((event.id, subject, ack)),
                // Never publishable: stopping the pass here would hold every later
                // event of the service behind it for good.
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    oversized.push(event);
                }
                Err(error) => {
                    failure = Some(RelayError::Publish {
                        subject,
                        reason: error.to_string(),
                    });
                    break;
                }
            }
        }
        // Awaited together: each ack's timeout starts when it is first polled, so
        // awaiting them one by one after a silent link loss held this batch's row
        // locks for a timeout per row (40 s for 8 rows, most of an hour for 500).
        let answers = futures::future::join_all(
            acks.into_iter()
                .map(|(id, subject, ack)| async move { (id, subject, ack.await) }),
        )
        .await;
        let mut published = Vec::with_capacity(answers.len());
        for (id, subject, answer) in answers {
            match answer {
                Ok(_) => published.push(id),
                Err(error) => {
                    failure.get_or_insert(RelayError::Publish {
                        subject,
                        reason: error.to_string(),
                    });
                }
            }
        }
        let mut settled = published.clone();
        for event in oversized {
            match self.dead_letter_oversized(event).await {
                Ok(()) => settled.push(event.id),
                Err(reason) => {
                    failure.get_or_insert(RelayError::Publish {
                        subject: self.namespace.subject(&event.subject),
                        reason,
                    });
                }
            }
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&settled)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("outbox_published_total", "service" => self.service)
            .increment(published.len() as u64);
        match failure {
            Some(error) => {
                metrics::counter!("outbox_publish_failures_total", "service" => self.service)
                    .increment(1);
                Err(error)
            }
            None => Ok(published.len()),
        }
    }

    /// Replaces an event larger than the server's `max_payload` by a dead letter that
    /// names it (without its payload, which cannot travel either); its row is then
    /// settled like a published one.
    async fn dead_letter_oversized(&self, event: &Pending) -> Result<(), String> {
        let reason = format!(
            "event of {} bytes is larger than the NATS server accepts (max_payload); \
             it was never published",
            event.payload.len()
        );
        tracing::error!(
            service = self.service,
            subject = %event.subject,
            row = event.id,
            bytes = event.payload.len(),
            "outbox event too large to publish; dead-lettered"
        );
        let letter = proto::events::v1::DeadLetter {
            header: Some(proto::events::v1::EventHeader {
                event_id: event.event_id.clone(),
                account: event
                    .subject
                    .split('.')
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned(),
                occurred_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            }),
            service: self.service.to_owned(),
            stream: "outbox".to_owned(),
            subject: event.subject.clone(),
            stream_sequence: 0,
            deliveries: 1,
            reason,
            payload: Vec::new(),
        };
        publish_dead_letter(
            &self.jetstream,
            &self.namespace,
            "outbox",
            &format!("outbox:{}", event.event_id),
            &letter,
            crate::nats::DEAD_LETTER_TIMEOUT,
        )
        .await?;
        metrics::counter!("outbox_dead_lettered_total", "service" => self.service).increment(1);
        Ok(())
    }

    /// Publishes until the outbox is empty; returns how many events it published.
    pub async fn publish_pending(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let published = self.publish_batch().await?;
            total += published;
            if published < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// The number of events not yet published, also set as `outbox_pending`.
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.db)
                .await?;
        metrics::gauge!("outbox_pending", "service" => self.service).set(pending as f64);
        Ok(pending)
    }

    /// Deletes published outbox rows past [`RETENTION`] and event claims past
    /// [`claim_retention`]; returns how many of each.
    pub async fn purge_old(&self) -> Result<(u64, u64), sqlx::Error> {
        let published = sqlx::query(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
        )
        .bind(RETENTION.as_secs_f64())
        .execute(&self.db)
        .await?
        .rows_affected();
        // In bounded batches: the first purge of an install that kept every claim for
        // years must not hold one transaction over millions of rows. processed_at has
        // no index; rows are stored in claim order, so the old ones come first.
        let mut claims = 0;
        for _ in 0..CLAIM_PURGE_BATCHES {
            let deleted = sqlx::query(
                "DELETE FROM processed_events WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM processed_events
                      WHERE processed_at < now() - make_interval(secs => $1)
                      LIMIT $2))",
            )
            .bind(claim_retention().as_secs_f64())
            .bind(CLAIM_PURGE_BATCH)
            .execute(&self.db)
            .await?
            .rows_affected();
            claims += deleted;
            if deleted < CLAIM_PURGE_BATCH as u64 {
                break;
            }
        }
        Ok((published, claims))
    }

    async fn pass(&self, log: &mut FailureLog) {
        match self.publish_pending().await {
            Ok(_) => log.success(Instant::now()),
            Err(error) => log.failure("outbox publish", &error, Instant::now()),
        }
    }

    /// Relays on every `signal` and every `poll` until `writers_done` resolves (the
    /// drain has begun and everything that writes the outbox has finished), then
    /// makes one last pass, so the drain publishes what the last work committed.
    pub async fn run(
        self,
        signal: OutboxSignal,
        poll: Duration,
        writers_done: impl Future<Output = ()> + Send,
    ) {
        tracing::info!(service = self.service, "outbox relay started");
        // At 0 from the start, so the alerts' increase() sees the first failure.
        for counter in [
            "outbox_published_total",
            "outbox_publish_failures_total",
            "outbox_dead_lettered_total",
        ] {
            metrics::counter!(counter, "service" => self.service).increment(0);
        }
        let mut writers_done = std::pin::pin!(writers_done);
        // While PostgreSQL is down every pass fails, once a second and more: a line
        // each would bury the log of every service (see FailureLog).
        let mut publish_log = FailureLog::new(self.service).warnings();
        let mut count_log = FailureLog::new(self.service).warnings();
        let mut purge_log = FailureLog::new(self.service).warnings();
        let mut last_purge = Instant::now();
        // The gauge is refreshed once per `poll`, not on every wake-up: a busy service
        // wakes the relay after each commit, and counting is a query of its own.
        let mut last_count: Option<Instant> = None;
        loop {
            self.pass(&mut publish_log).await;
            if last_count.is_none_or(|at| at.elapsed() >= poll) {
                last_count = Some(Instant::now());
                match self.pending().await {
                    Ok(_) => count_log.success(Instant::now()),
                    Err(error) => count_log.failure("outbox count", &error, Instant::now()),
                }
            }
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = Instant::now();
                match self.purge_old().await {
                    Ok((published, claims)) => {
                        purge_log.success(Instant::now());
                        tracing::debug!(
                            published,
                            claims,
                            "old outbox rows and event claims purged"
                        );
                    }
                    Err(error) => purge_log.failure("outbox purge", &error, Instant::now()),
                }
            }
            tokio::select! {
                () = &mut writers_done => break,
                () = signal.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        self.pass(&mut publish_log).await;
        match self.pending().await {
            Ok(0) => tracing::info!(service = self.service, "outbox relay stopped"),
            Ok(left) => tracing::warn!(
                service = self.service,
                left,
                "outbox relay stopped with events unpublished; the next replica publishes them"
            ),
            Err(error) => tracing::warn!(service = self.service, %error, "outbox relay stopped"),
        }
    }
}
