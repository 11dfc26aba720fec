//! `WatchQueue`: a department's queue as a stream of changes.
//!
//! Every replica's outbox relay publishes `TicketChanged` to the INTERACTION stream.
//! A watch reads that stream through a consumer of its own (ephemeral, unnamed, in
//! memory, unacknowledged, filtered to ticket changes), so each event carries the
//! stream sequence of its change as its position, and a watcher that was away
//! resumes with `after`: the consumer simply starts after that position. Replay and
//! the live changes are one ordered read of one stream, so nothing is missed or
//! doubled where the one turns into the other; a gap in that read (a consumer
//! sequence skipped, a missed heartbeat) ends the watch, and the client resumes. The
//! ticket is re-read from the database for each event, so the watcher always gets its
//! current state.
//!
//! The consumer pushes to an inbox of the service's own (`_INBOX_interaction-svc.…`,
//! which no other NATS user may read), not pulled: pulling needs a grant to pull from
//! any consumer on INTERACTION (the server names an unnamed one, so the grant cannot
//! name it), stats-svc's durables included. Flow control keeps what the server sends
//! ahead of the watch bounded: its requests are answered only once the watch has read
//! every change before them (see [`Deliveries`]).
//!
//! A resume is bounded: a position older than the stream keeps, or more than
//! `WATCH_RESUME_LIMIT` ticket changes behind, is OUT_OF_RANGE and the client
//! re-lists; so is a position ahead of the stream (another install's, or a stream
//! recreated since).
//!
//! A queue that hears little would keep an old position while other queues' changes
//! pile up behind it, until its resume is more than `WATCH_RESUME_LIMIT` behind. A
//! watch that asks for `progress` is therefore told, in a PROGRESS event without a
//! ticket, how far it has read past other queues' changes ([`Passed`]): at most every
//! [`PROGRESS_EVERY`], or at once after a tenth of the limit (at most
//! [`PROGRESS_AFTER`]). It is opt-in: a client that predates PROGRESS would take an
//! event without a ticket for a ticket change.
//!
//! A watch still ends with `UNAVAILABLE` when the service's NATS link drops or was
//! re-made, and when the service drains: the client resumes on whichever replica
//! answers. It also ends, `UNAUTHENTICATED`, when its key is removed or its rights
//! change in the key file, as every other call would be refused.
//!
//! A watcher that stops reading must cost the service nothing more than its buffer:
//! a task of its own reads NATS and the database (so no connection is ever held
//! while the client's HTTP/2 window is shut) and hands events to a bounded buffer;
//! when the buffer is full, the watch ends with `RESOURCE_EXHAUSTED` once the client
//! has read what was buffered, and its consumer is dropped at once. While it
//! replays, the task waits for the client instead (a replay comes faster than any
//! client reads), for `REPLAY_PATIENCE` per event. A key holds at most a few
//! watches at a time.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, push};
use async_nats::{HeaderMap, StatusCode, Subscriber};
use futures::{Stream, StreamExt};
use platform::Caller;
use platform::Drain;
use platform::grpc::{AuthInterceptor, CallerKey};
use platform::nats::Namespace;
use prost::Message;
use proto::events::v1::{TicketChangeKind, TicketChanged};
use proto::interaction::v1 as pb;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::GrpcError;
use super::convert;
use super::tickets::agent_of;
use crate::domain::TicketId;
use crate::store::tickets;

/// The stream a `WatchQueue` call returns.
pub type QueueStream = Pin<Box<dyn Stream<Item = Result<pb::QueueEvent, Status>> + Send>>;

/// How often a watch looks at its NATS link. async-nats reports no event to a
/// subscriber (and the service's connection has no callback), so the state is read:
/// a drop is seen within this time, and a drop the client recovered from in between
/// by the connection count it left.
const LINK_CHECK: Duration = Duration::from_millis(100);

/// How long a replaying watch waits for its client to take one more event before
/// ending it as a slow reader: a replay is handed over as fast as the client reads,
/// but a client that stopped reading must not hold its consumer for ever.
const REPLAY_PATIENCE: Duration = Duration::from_secs(30);

/// How often the server tells an idle watch it is still there (NATS idle heartbeat);
/// [`MISSED_HEARTBEATS`] of silence ends the watch. A pushed consumer says nothing
/// when it is gone (deleted, the server restarted): only the silence tells.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Silence after which the consumer is taken for lost: two heartbeats.
const MISSED_HEARTBEATS: Duration = Duration::from_secs(10);

/// How long the server keeps a watch's consumer once nobody reads its inbox.
const INACTIVE: Duration = Duration::from_secs(30);

/// How long a watch that passed over other queues' changes waits before telling
/// its client the position it reached (more such changes meanwhile are told at once).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The most changes of other queues passed over before the watch tells its client
/// the position at once (fewer when a tenth of `WATCH_RESUME_LIMIT` is less): a
/// client that stored it stays far inside the limit however busy the install.
const PROGRESS_AFTER: u64 = 1000;

/// What a queue watch needs: NATS, the database, and the drain that ends every
/// watch when the service stops (so an open stream never holds up a shutdown).
#[derive(Clone)]
pub struct QueueWatch {
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub namespace: Namespace,
    pub db: PgPool,
    pub drain: Drain,
    /// The supervision office (督办), which also sees `overdue` events of every department.
    pub escalation_department: String,
    /// The buffer per watch and the watches per key.
    pub limits: WatchLimits,
    /// Open watches per key fingerprint.
    pub open: Arc<Mutex<HashMap<String, usize>>>,
}

/// How much a watcher may hold (`WATCH_BUFFER`, `WATCH_STREAMS_PER_KEY`).
#[derive(Debug, Clone, Copy)]
pub struct WatchLimits {
    /// Events buffered for a watcher that is not reading; one more ends its watch.
    pub buffer: usize,
    /// Watches one API key may hold open at once.
    pub per_key: usize,
    /// The most ticket changes (every department's) a resume may replay.
    pub resume: u64,
}

/// The response header naming the position a watch starts after.
pub const POSITION_HEADER: &str = "x-queue-position";

/// A started watch: its events, and the position it starts after (the
/// `x-queue-position` header), which a client that sees no event resumes from.
pub struct Watching {
    pub events: QueueStream,
    pub start: u64,
}

/// Why a watch cannot resume from the position it was given; the client re-lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error(
        "position {after} is ahead of every ticket change ({last}): not this install's, or from before the stream was recreated"
    )]
    Ahead { after: u64, last: u64 },
    #[error(
        "the ticket changes after position {after} are no longer kept (the oldest kept is {first})"
    )]
    Expired { after: u64, first: u64 },
    #[error(
        "position {after} is {behind} ticket changes behind, more than a watch replays ({limit})"
    )]
    TooFarBehind { after: u64, behind: u64, limit: u64 },
}

/// Whether the stream, holding sequences `first..=last` (`first == last + 1` when
/// empty), still has every change after `after`.
fn resumable(after: u64, first: u64, last: u64) -> Result<(), ResumeError> {
    if after > last {
        return Err(ResumeError::Ahead { after, last });
    }
    // The change right after `after` must still be kept (or not yet written).
    if after.saturating_add(1) < first {
        return Err(ResumeError::Expired { after, first });
    }
    Ok(())
}

/// Which queue a watch follows: one department's, or every one (admins).
#[derive(Debug, Clone)]
pub struct Watched {
    pub department: Option<String>,
    /// The accounts the caller's key reaches; `None`: every account.
    pub accounts: Option<Vec<String>>,
}

/// Who holds a watch: the caller as the call began, and what looks its key up
/// again after each reload of the key file.
#[derive(Clone)]
pub struct Holder {
    pub caller: Caller,
    pub key: CallerKey,
    pub keys: AuthInterceptor,
}

impl Holder {
    /// Refuses when the key is gone or no longer gives the rights the watch began
    /// with (department, roles, accounts): any change ends it, and a new watch gets
    /// whatever the key gives now.
    fn still_valid(&self) -> Result<(), Status> {
        match self.keys.caller_with_digest(&self.key.0) {
            None => Err(Status::unauthenticated(
                "queue watch ended: the api key was removed",
            )),
            Some(now) if now != self.caller => Err(Status::unauthenticated(
                "queue watch ended: the api key's department, roles or accounts changed; \
                 watch again",
            )),
            Some(_) => Ok(()),
        }
    }
}

/// One open watch of a key; dropping it (the stream ends or the client goes) frees
/// the key's slot.
struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The NATS link as a watch began: a change means events may have been missed.
struct Link {
    nats: async_nats::Client,
    connects: u64,
}

impl Link {
    fn new(nats: &async_nats::Client) -> Self {
        Self {
            nats: nats.clone(),
            connects: nats.statistics().connects.load(Ordering::SeqCst),
        }
    }

    /// Whether the connection is down, or was re-made, since the watch began.
    fn broken(&self) -> bool {
        self.nats.connection_state() != async_nats::connection::State::Connected
            || self.nats.statistics().connects.load(Ordering::SeqCst) != self.connects
    }
}

/// Why a watch ends with an error the client must act on.
#[derive(Debug, Clone, Copy)]
enum Gap {
    /// The NATS link dropped (or was re-made): changes may have been missed.
    LinkLost,
    /// The service is draining.
    Draining,
}

impl Gap {
    fn status(self) -> Status {
        let (reason, why) = match self {
            Gap::LinkLost => (
                "nats_link_lost",
                "the service lost its link to the event bus",
            ),
            Gap::Draining => ("draining", "the service is shutting down"),
        };
        metrics::counter!("queue_watch_dropped_total", "reason" => reason).increment(1);
        tracing::warn!(reason, "queue watch ended");
        Status::unavailable(format!(
            "queue watch ended: {why}; watch again with after = the last position to resume \
             (if refused, watch and list the queue: ListTickets)"
        ))
    }
}

/// Why a watch's consumer can no longer be read without a gap.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("nothing from the consumer, not even a heartbeat, for {0:?}")]
    Silent(Duration),
    #[error("the consumer skipped changes: expected delivery {expected}, the server is at {got}")]
    Skipped { expected: u64, got: u64 },
    #[error("the consumer's inbox was closed")]
    Closed,
    #[error("a change without its stream sequence: {0}")]
    NoSequence(String),
    #[error("the consumer sent status {0}")]
    Status(StatusCode),
}

/// A pushed consumer's inbox, read in order: the changes, with the flow control and
/// heartbeats NATS sends beside them answered and checked here.
///
/// NATS 2.9 stops pushing once the bytes it sent beyond its last answered flow-control
/// request pass a window, and asks again: the request is answered when this read
/// reaches it (so a watch waiting for a slow client holds the server back instead of
/// piling changes up here); a request lost on the way is named again in every idle
/// heartbeat's `Nats-Consumer-Stalled` while the server waits, and answered from
/// there. async-nats' push stream answers the request but not the heartbeat's.
struct Deliveries {
    nats: async_nats::Client,
    jetstream: jetstream::Context,
    inbox: Subscriber,
    /// The consumer sequence of the last change read.
    delivered: u64,
    /// When the silence since the last thing read becomes a lost consumer.
    silence: Pin<Box<tokio::time::Sleep>>,
}

impl Deliveries {
    fn new(nats: async_nats::Client, jetstream: jetstream::Context, inbox: Subscriber) -> Self {
        Self {
            nats,
            jetstream,
            inbox,
            delivered: 0,
            silence: Box::pin(tokio::time::sleep(MISSED_HEARTBEATS)),
        }
    }

    /// The next change: its stream sequence (its position) and payload. Cancel-safe
    /// (the watch's `select!` drops it on every other wake-up): nothing is awaited but
    /// the inbox and the silence timer, and answers are sent without waiting.
    async fn next(&mut self) -> Result<(u64, prost::bytes::Bytes), Lost> {
        loop {
            // Biased: what arrived while the watch waited for its client is read
            // before the silence counts.
            let message = tokio::select! {
                biased;
                message = self.inbox.next() => message.ok_or(Lost::Closed)?,
                _ = &mut self.silence => return Err(Lost::Silent(MISSED_HEARTBEATS)),
            };
            self.silence
                .as_mut()
                .reset(tokio::time::Instant::now() + MISSED_HEARTBEATS);
            match message.status {
                None => {}
                // Both a flow-control request (it has a reply subject) and an idle
                // heartbeat come as 100.
                Some(StatusCode::IDLE_HEARTBEAT) => {
                    if let Some(reply) = message.reply {
                        self.answer(reply.to_string());
                    } else if let Some(headers) = &message.headers {
                        self.heartbeat(headers)?;
                    }
                    continue;
                }
                Some(status) => return Err(Lost::Status(status)),
            }
            let message = jetstream::Message {
                message,
                context: self.jetstream.clone(),
            };
            let (consumer, stream) = match message.info() {
                Ok(info) => (info.consumer_sequence, info.stream_sequence),
                Err(error) => return Err(Lost::NoSequence(error.to_string())),
            };
            if consumer != self.delivered + 1 {
                return Err(Lost::Skipped {
                    expected: self.delivered + 1,
                    got: consumer,
                });
            }
            self.delivered = consumer;
            return Ok((stream, message.message.payload));
        }
    }

    /// An idle heartbeat: see [`heartbeat_check`].
    fn heartbeat(&mut self, headers: &HeaderMap) -> Result<(), Lost> {
        if let Some(stalled) = heartbeat_check(headers, self.delivered)? {
            self.answer(stalled);
        }
        Ok(())
    }

    /// Answers a flow-control request. A failed answer leaves the server waiting: the
    /// next heartbeat names the request again.
    fn answer(&self, subject: String) {
        let nats = self.nats.clone();
        tokio::spawn(async move {
            if let Err(error) = nats.publish(subject, Default::default()).await {
                tracing::warn!(%error, "queue watch's flow-control answer not sent");
            }
        });
    }
}

/// What an idle heartbeat says to a watch that has read up to consumer sequence
/// `delivered`: a gap when the server's last delivery is another (one dropped here,
/// the inbox full, shows only so when nothing follows it), else the flow-control
/// request the server still waits for, if any, to answer.
fn heartbeat_check(headers: &HeaderMap, delivered: u64) -> Result<Option<String>, Lost> {
    let last = headers
        .get(async_nats::header::NATS_LAST_CONSUMER)
        .and_then(|v| v.as_str().parse::<u64>().ok());
    if let Some(last) = last
        && last != delivered
    {
        return Err(Lost::Skipped {
            expected: delivered + 1,
            got: last,
        });
    }
    Ok(headers
        .get("Nats-Consumer-Stalled")
        .map(|v| v.as_str().to_owned()))
}

/// Other queues' changes a watch has read past since it last told its client a
/// position (by an event of its own or a progress event).
struct Passed {
    /// Whether the client asked for progress events.
    wanted: bool,
    /// How many passed changes are told at once.
    every: u64,
    /// The position of the last change passed over and not yet told.
    last: Option<u64>,
    count: u64,
    /// When the first untold one has waited [`PROGRESS_EVERY`].
    due: Pin<Box<tokio::time::Sleep>>,
}

impl Passed {
    fn new(wanted: bool, resume_limit: u64) -> Self {
        Self {
            wanted,
            every: (resume_limit / 10).clamp(1, PROGRESS_AFTER),
            last: None,
            count: 0,
            due: Box::pin(tokio::time::sleep(PROGRESS_EVERY)),
        }
    }

    /// Whether a position waits to be told (the timer then means something).
    fn waiting(&self) -> bool {
        self.last.is_some()
    }

    /// The change at `position` did not concern the watch; true when it is time to
    /// tell the client at once.
    fn pass(&mut self, position: u64) -> bool {
        if !self.wanted {
            return false;
        }
        if self.last.is_none() {
            self.due
                .as_mut()
                .reset(tokio::time::Instant::now() + PROGRESS_EVERY);
        }
        self.last = Some(position);
        self.count += 1;
        self.count >= self.every
    }

    /// The client was told a position at or after every passed change.
    fn told(&mut self) {
        self.last = None;
        self.count = 0;
    }

    /// Hands the progress event to the client if its buffer has room: a progress the
    /// client cannot take now waits for the next one, and never ends the watch. False
    /// when the client is gone.
    fn tell(&mut self, events: &mpsc::Sender<Result<pb::QueueEvent, Status>>) -> bool {
        let Some(position) = self.last else {
            return true;
        };
        let event = pb::QueueEvent {
            kind: pb::QueueEventKind::Progress as i32,
            ticket: None,
            position,
        };
        match events.try_send(Ok(event)) {
            Ok(()) => self.told(),
            Err(mpsc::error::TrySendError::Full(_)) => self
                .due
                .as_mut()
                .reset(tokio::time::Instant::now() + PROGRESS_EVERY),
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
        true
    }
}

impl QueueWatch {
    /// Starts an ordered consumer on the INTERACTION stream's ticket changes after
    /// `after` (resuming), or after the stream's last change (a new watch: every
    /// change stored once this returns is delivered), and returns the stream of
    /// events, with progress events when `progress` asks for them. The holder's key
    /// fingerprint counts against the per-key limit.
    pub async fn watch(
        &self,
        watched: Watched,
        holder: Holder,
        after: Option<u64>,
        progress: bool,
    ) -> Result<Watching, Status> {
        let key = holder.caller.key_id.clone();
        let slot = self.take_slot(&key)?;
        // Taken before the consumer: a reload between the call's start and this is
        // caught by the check below, one after it by the task.
        let mut reloads = holder.keys.reloads();
        holder.still_valid()?;
        let link = Link::new(&self.nats);
        let watch_failed = |e: &dyn std::fmt::Display| GrpcError::Watch(e.to_string());
        let stream = self
            .jetstream
            .get_stream(self.namespace.name(platform::nats::INTERACTION.name))
            .await
            .map_err(|e| watch_failed(&e))?;
        let state = stream.cached_info().state.clone();
        // What a resume replays ends at the last change stored now; later ones are live.
        let replay_until = state.last_sequence;
        let start = match after {
            Some(after) => {
                resumable(after, state.first_sequence, state.last_sequence)
                    .map_err(GrpcError::from)?;
                after
            }
            None => state.last_sequence,
        };
        // Not the library's ordered consumer: it recreates itself (a named create,
        // retried for ever) after a gap, which the NATS permissions refuse, and
        // the watch would hang silently. This one is unnamed, and a gap (a consumer
        // sequence skipped, a missed heartbeat, a deleted consumer) ends the watch:
        // the client resumes after its last position. The inbox is read before the
        // consumer exists, so the server finds its reader at once.
        let inbox = self.nats.new_inbox();
        let subscriber = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| watch_failed(&e))?;
        let consumer = stream
            .create_consumer(push::Config {
                deliver_subject: inbox,
                filter_subject: self.namespace.subject("interaction.*.ticket.>"),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start + 1,
                },
                ack_policy: AckPolicy::None,
                max_deliver: 1,
                flow_control: true,
                idle_heartbeat: HEARTBEAT,
                // The server removes it this long after its inbox is no longer read.
                inactive_threshold: INACTIVE,
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| watch_failed(&e))?;
        if after.is_some() {
            // Bounds the work of one call: every ticket change since (every
            // department's: each is read to find the watcher's own).
            let behind = consumer.cached_info().num_pending;
            if behind > self.limits.resume {
                metrics::counter!("queue_watch_refused_total", "reason" => "resume_too_far")
                    .increment(1);
                return Err(GrpcError::from(ResumeError::TooFarBehind {
                    after: start,
                    behind,
                    limit: self.limits.resume,
                })
                .into());
            }
        }
        let mut deliveries = Deliveries::new(self.nats.clone(), self.jetstream.clone(), subscriber);
        if link.broken() {
            return Err(GrpcError::Watch("the nats link dropped while subscribing".into()).into());
        }
        tracing::info!(department = ?watched.department, key, after, start, "queue watch started");
        let (events_tx, events_rx) = mpsc::channel(self.limits.buffer.max(1));
        let (ended_tx, ended_rx) = oneshot::channel::<Status>();
        let db = self.db.clone();
        let escalation = self.escalation_department.clone();
        let buffer = self.limits.buffer;
        let stopping = self.drain.stopping().clone();
        let mut passed = Passed::new(progress, self.limits.resume);
        tokio::spawn(async move {
            let mut check = tokio::time::interval(LINK_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let ended = loop {
                // Biased: a gap or a revoked key ends the watch before any further
                // event is passed on.
                let delivery = tokio::select! {
                    biased;
                    // A client that went away frees its consumer at once, not at the
                    // next event.
                    _ = events_tx.closed() => return,
                    _ = stopping.cancelled() => break Gap::Draining.status(),
                    _ = check.tick() => {
                        if link.broken() {
                            break Gap::LinkLost.status();
                        }
                        continue;
                    }
                    Ok(()) = reloads.changed() => {
                        if let Err(status) = holder.still_valid() {
                            metrics::counter!("queue_watch_dropped_total", "reason" => "key_changed")
                                .increment(1);
                            tracing::warn!(key = holder.caller.key_id, "queue watch of a removed or changed key ended");
                            break status;
                        }
                        continue;
                    }
                    _ = &mut passed.due, if passed.waiting() => {
                        if !passed.tell(&events_tx) {
                            return;
                        }
                        continue;
                    }
                    delivery = deliveries.next() => delivery,
                };
                let (position, payload) = match delivery {
                    Ok(change) => change,
                    Err(lost) => {
                        tracing::warn!(%lost, "queue watch's consumer lost");
                        break Gap::LinkLost.status();
                    }
                };
                let Some(event) = queue_event(
                    &db,
                    &watched,
                    &holder.caller,
                    &escalation,
                    &payload,
                    position,
                )
                .await
                else {
                    if passed.pass(position) && !passed.tell(&events_tx) {
                        return;
                    }
                    continue;
                };
                // The event's own position is past every change passed before it.
                passed.told();
                let failed = event.is_err();
                let slow_reader = || {
                    metrics::counter!("queue_watch_dropped_total", "reason" => "slow_reader")
                        .increment(1);
                    tracing::warn!(buffer, "slow queue watcher dropped");
                    Status::resource_exhausted(format!(
                        "queue watch ended: more than {buffer} events were left unread; \
                         read faster, then watch again with after = the last position"
                    ))
                };
                if position <= replay_until {
                    // Replaying: wait for the client, within reason.
                    let sent = tokio::select! {
                        biased;
                        _ = stopping.cancelled() => break Gap::Draining.status(),
                        sent = tokio::time::timeout(REPLAY_PATIENCE, events_tx.send(event)) => sent,
                    };
                    match sent {
                        Ok(Ok(())) if !failed => continue,
                        Ok(_) => return,
                        Err(_) => break slow_reader(),
                    }
                }
                match events_tx.try_send(event) {
                    Ok(()) if !failed => {}
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(_)) => break slow_reader(),
                }
            };
            // The client reads what was buffered first, then this.
            let _ = ended_tx.send(ended);
        });
        let events = futures::stream::unfold(events_rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        });
        let end = futures::stream::once(async move { ended_rx.await.ok().map(Err) })
            .filter_map(futures::future::ready);
        let stream = events.chain(end).map(move |item| {
            let _slot = &slot;
            item
        });
        Ok(Watching {
            events: Box::pin(stream),
            start,
        })
    }

    /// Counts a watch against `key`'s limit.
    fn take_slot(&self, key: &str) -> Result<Slot, GrpcError> {
        take_slot(&self.open, self.limits.per_key, key)
    }
}

/// Counts a watch against `key`'s limit of `per_key` open watches.
fn take_slot(
    open: &Arc<Mutex<HashMap<String, usize>>>,
    per_key: usize,
    key: &str,
) -> Result<Slot, GrpcError> {
    let mut counts = open.lock().unwrap_or_else(|e| e.into_inner());
    let count = counts.entry(key.to_owned()).or_default();
    if *count >= per_key {
        metrics::counter!("queue_watch_refused_total", "reason" => "per_key_limit").increment(1);
        return Err(GrpcError::TooManyWatches(per_key));
    }
    *count += 1;
    Ok(Slot {
        open: open.clone(),
        key: key.to_owned(),
    })
}

/// The queue event a `TicketChanged` payload is for `watched`, with the ticket as it
/// now is if `caller` may read it (as `GetTicket` would answer); `None` when it does
/// not concern the watch. The connection is returned to the pool before this returns.
async fn queue_event(
    db: &PgPool,
    watched: &Watched,
    caller: &Caller,
    escalation: &str,
    payload: &[u8],
    position: u64,
) -> Option<Result<pb::QueueEvent, Status>> {
    let event = match TicketChanged::decode(payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "undecodable TicketChanged skipped");
            return None;
        }
    };
    if !concerns(&event, watched, escalation) {
        return None;
    }
    let kind = convert::queue_kind(event.kind())?;
    let id = TicketId::parse(&event.ticket_id).ok()?;
    match tickets::get(db, id).await {
        Ok(Some(row)) => Some(Ok(pb::QueueEvent {
            kind: kind as i32,
            ticket: Some(readable(row, caller, escalation)),
            position,
        })),
        Ok(None) => None,
        // Ending the stream with an error lets the client re-watch (and
        // re-list) rather than silently miss an event.
        Err(error) => Some(Err(Status::from(GrpcError::Database(error)))),
    }
}

/// `row` as the caller may see it. The event named a department the caller's queue
/// follows, but the row is re-read as it is now: a ticket moved away since (or one
/// whose overdue the supervision office heard of, reopened since) is another
/// department's, and its queue learns only where it went, not what the new owner did
/// with it (its assignee, state, rating, the citizen).
fn readable(row: tickets::TicketRow, caller: &Caller, escalation: &str) -> pb::Ticket {
    if agent_of(caller, "", escalation).reads(row.account.as_str(), &row.department, row.overdue) {
        return convert::ticket(row);
    }
    pb::Ticket {
        id: row.id.to_string(),
        account: row.account.into(),
        department: row.department,
        ..Default::default()
    }
}

/// Whether the watched queue should hear of `event`: its department's tickets, a
/// ticket moved away from it (so its view can drop it), and, for the escalation
/// department, every overdue ticket.
fn concerns(event: &TicketChanged, watched: &Watched, escalation: &str) -> bool {
    let account = event.header.as_ref().map_or("", |h| h.account.as_str());
    if let Some(accounts) = &watched.accounts
        && !accounts.iter().any(|a| a == account)
    {
        return false;
    }
    let Some(department) = watched.department.as_deref() else {
        return true;
    };
    let kind = event.kind();
    event.department == department
        || (kind == TicketChangeKind::Assigned && event.previous_department == department)
        || (kind == TicketChangeKind::Overdue && department == escalation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: TicketChangeKind, department: &str, previous: &str) -> TicketChanged {
        TicketChanged {
            kind: kind as i32,
            department: department.into(),
            previous_department: previous.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_department_hears_of_its_own_moved_away_and_escalated_tickets() {
        let social = Watched {
            department: Some("social-security".into()),
            accounts: None,
        };
        let supervision = Watched {
            department: Some("supervision".into()),
            accounts: None,
        };
        let all = Watched {
            department: None,
            accounts: None,
        };
        assert!(concerns(
            &event(TicketChangeKind::Opened, "social-security", ""),
            &social,
            "supervision"
        ));
        assert!(!concerns(
            &event(TicketChangeKind::Opened, "transport", ""),
            &social,
            "supervision"
        ));
        assert!(concerns(
            &event(TicketChangeKind::Assigned, "transport", "social-security"),
            &social,
            "supervision"
        ));
        assert!(concerns(
            &event(TicketChangeKind::Overdue, "transport", ""),
            &supervision,
            "supervision"
        ));
        assert!(!concerns(
            &event(TicketChangeKind::Opened, "transport", ""),
            &supervision,
            "supervision"
        ));
        assert!(concerns(
            &event(TicketChangeKind::Opened, "transport", ""),
            &all,
            "supervision"
        ));
    }

    #[test]
    fn a_key_holds_at_most_its_watches_and_an_ended_watch_frees_its_slot() {
        let open = Arc::new(Mutex::new(HashMap::new()));
        let first = take_slot(&open, 2, "key-a").unwrap();
        let _second = take_slot(&open, 2, "key-a").unwrap();
        assert!(matches!(
            take_slot(&open, 2, "key-a"),
            Err(GrpcError::TooManyWatches(2))
        ));
        // Another key is not held back by the first one's watches.
        let other = take_slot(&open, 2, "key-b").unwrap();
        drop(first);
        let _third = take_slot(&open, 2, "key-a").expect("an ended watch frees its slot");
        drop(other);
        assert!(
            !open.lock().unwrap().contains_key("key-b"),
            "a key without watches holds no entry"
        );
    }

    #[test]
    fn a_resume_needs_every_change_after_its_position_still_kept() {
        // The stream keeps 5..=9.
        assert_eq!(resumable(9, 5, 9), Ok(()), "nothing missed yet");
        assert_eq!(
            resumable(4, 5, 9),
            Ok(()),
            "the next change is the oldest kept"
        );
        assert_eq!(
            resumable(3, 5, 9),
            Err(ResumeError::Expired { after: 3, first: 5 })
        );
        assert_eq!(
            resumable(10, 5, 9),
            Err(ResumeError::Ahead { after: 10, last: 9 })
        );
        // Everything expired: the empty stream's first is its last + 1.
        assert_eq!(resumable(9, 10, 9), Ok(()));
        assert_eq!(
            resumable(0, 1, 0),
            Ok(()),
            "a new stream, a watch from its start"
        );
        assert!(resumable(8, 10, 9).is_err());
    }

    #[test]
    fn a_county_watch_never_hears_of_the_citys_tickets() {
        let county = Watched {
            department: None,
            accounts: Some(vec!["yizhang".into()]),
        };
        let mut city = event(TicketChangeKind::Opened, "transport", "");
        city.header = Some(proto::events::v1::EventHeader {
            account: "chenzhou".into(),
            ..Default::default()
        });
        assert!(!concerns(&city, &county, "supervision"));
        city.header.as_mut().unwrap().account = "yizhang".into();
        assert!(concerns(&city, &county, "supervision"));
    }
    #[test]
    fn a_heartbeat_after_a_dropped_delivery_is_a_gap_and_a_stall_is_answered() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Last-Consumer", "7");
        headers.insert("Nats-Last-Stream", "40");
        assert!(matches!(heartbeat_check(&headers, 7), Ok(None)));
        assert!(matches!(
            heartbeat_check(&headers, 6),
            Err(Lost::Skipped {
                expected: 7,
                got: 7
            })
        ));
        headers.insert("Nats-Consumer-Stalled", "$JS.FC.INTERACTION.abc.x1y2");
        assert_eq!(
            heartbeat_check(&headers, 7).unwrap().as_deref(),
            Some("$JS.FC.INTERACTION.abc.x1y2")
        );
    }
}
