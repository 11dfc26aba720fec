//! Durable pull consumers as typed jobs. The runner decodes each delivery into the
//! handler's `Event` (an undecodable payload is dead-lettered here, with the reason,
//! on a task of its own, never by a handler), hands events to a bounded set of lanes, acks after the
//! handler returned, retries with backoff, delays a message waiting for another
//! event, or dead-letters.
//!
//! Lanes give concurrency without losing order where order matters: events with the
//! same [`EventHandler::order_key`] (a citizen, an article) always go to the same
//! lane and are handled one after the other in stream order. That order holds within
//! one process while handlers succeed: an event that failed transiently comes back
//! after its backoff, behind later events of its key, and with several replicas two
//! events of one key can be handled at once on two of them. Handlers therefore keep
//! their effects right whatever the order (the earliest time wins, a later state does
//! not rewind), and lanes make the usual case cheap, not correct. A full lane holds up
//! only its own keys (`consumer/hand_out.rs`); an event without a key goes to the lane
//! with the most room. A lane hands the events
//! queued in it to [`EventHandler::handle_batch`] together (up to
//! [`EventHandler::BATCH`]), so a handler can apply many events in one transaction.
//!
//! A handler makes its effect idempotent with [`crate::db::claim_event`] in the
//! transaction of the effect: JetStream delivers at least once, and the runner acks
//! only after the handler returned. [`apply_once`] is that whole body for a batch whose
//! effects are all in the service's database.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::nats::{ConsumerSpec, Namespace, NatsError, provision_consumer, publish_dead_letter};
use crate::shutdown::Drain;

mod hand_out;
mod keep_alive;
mod pull;
use hand_out::{HandOut, LaneStopped};
use keep_alive::{Token, Unsettled};
use pull::{Pulled, Puller};

/// A payload type a consumer's runner decodes for its handler.
pub trait StreamEvent: Sized + Send + Sync + 'static {
    /// Decodes and validates one payload; the error is the dead letter's reason.
    fn decode(payload: &[u8]) -> Result<Self, String>;
    /// The event's own idempotency key (not the `Nats-Msg-Id`: a publisher may send
    /// one event under two message ids).
    fn event_id(&self) -> &str;
}

/// One delivery of a stream message, decoded.
#[derive(Debug, Clone)]
pub struct Received<E> {
    pub event: E,
    /// The subject without the namespace prefix, e.g. `wechat.inbound.city.msg.text`.
    pub subject: String,
    /// 1 on the first delivery.
    pub delivered: i64,
    pub stream_sequence: u64,
    /// When JetStream stored the message.
    pub stored_at: Option<DateTime<Utc>>,
}

/// Why a handler did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying (a database or network hiccup); dead-lettered after `max_deliver`
    /// deliveries (about 13 minutes with [`crate::nats::PATIENT_DELIVERIES`]); for a
    /// message that waited first ([`Self::NotYet`]), after `max_deliver` failures of its
    /// own, counted by the runner that saw it wait; on another runner (another replica,
    /// after a restart), while a retry still comes within [`ConsumerSpec::patience`]
    /// after the stream stored it (see `retries`).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed; dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Waits for another event to be handled first (a callback not applied yet, a job
    /// not recorded yet): delivered again after a quarter of the time since the stream
    /// stored it (at least 0.5 s, at most [`MAX_WAIT_DELAY`]), so it follows the other
    /// event closely however long that takes, without using up the deliveries meant
    /// for failures; dead-lettered once it is as old as a failing message would be
    /// ([`ConsumerSpec::patience`]) and was delivered [`ConsumerSpec::waits`] times, so
    /// a message that sat in the stream while its consumer was down still waits that
    /// long once the consumer is back. A batch handler returning it has its batch
    /// handled again one event at a time, as on any error.
    #[error("not yet: {0}")]
    NotYet(String),
}

impl HandleError {
    /// A database error: always worth retrying.
    pub fn database(error: sqlx::Error) -> Self {
        Self::Transient(format!("database: {error}"))
    }
}

/// What [`apply_once`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events claimed and applied now.
    pub new: usize,
    /// Events claimed before (a redelivery, or an event id the batch holds twice):
    /// skipped.
    pub redelivered: usize,
}

/// A batch handler's body when its effects are all in the service's database: in one
/// transaction, claims the events' ids ([`crate::db::claim_events`]), applies each
/// newly claimed event with `apply`, in order, and commits. An event claimed before
/// is skipped, so a redelivery has no second effect; any error rolls the claims back
/// with the effects, so the retry applies them. Every database error is
/// [`HandleError::database`].
///
/// The closures take what they use by value (`async move`, with a copy or a clone made
/// before): Rust 1.95 cannot prove a handler's future `Send`, as `handle_batch` must
/// be, when an async closure it passes on borrows from the handler
/// (rust-lang/rust#149407: "the type `{async closure…}` does not fulfill the required
/// lifetime").
pub async fn apply_once<E: StreamEvent>(
    db: &PgPool,
    events: &[Received<E>],
    apply: impl AsyncFnMut(&mut Transaction<'_, Postgres>, &E) -> Result<(), sqlx::Error>,
) -> Result<Applied, HandleError> {
    apply_once_then(db, events, apply, async |_, _| Ok(())).await
}

/// [`apply_once`] for a handler that folds its batch: what `apply` returns for each
/// new event goes, in order, to `finish`, which runs in the same transaction before
/// the commit (counters summed into one upsert per key, in key order, so concurrent
/// batches cannot deadlock).
pub async fn apply_once_then<E: StreamEvent, T>(
    db: &PgPool,
    events: &[Received<E>],
    mut apply: impl AsyncFnMut(&mut Transaction<'_, Postgres>, &E) -> Result<T, sqlx::Error>,
    finish: impl AsyncFnOnce(&mut Transaction<'_, Postgres>, Vec<T>) -> Result<(), sqlx::Error>,
) -> Result<Applied, HandleError> {
    let ids: Vec<&str> = events.iter().map(|e| e.event.event_id()).collect();
    let mut tx = db.begin().await.map_err(HandleError::database)?;
    let claimed = crate::db::claim_events(&mut tx, &ids)
        .await
        .map_err(HandleError::database)?;
    let mut applied = Vec::with_capacity(events.len());
    for (received, _) in events.iter().zip(&claimed).filter(|(_, new)| **new) {
        let output = apply(&mut tx, &received.event)
            .await
            .map_err(HandleError::database)?;
        applied.push(output);
    }
    let outcome = Applied {
        new: applied.len(),
        redelivered: events.len() - applied.len(),
    };
    finish(&mut tx, applied)
        .await
        .map_err(HandleError::database)?;
    tx.commit().await.map_err(HandleError::database)?;
    Ok(outcome)
}

/// A typed job run for the messages of one durable consumer.
pub trait EventHandler: Send + Sync + 'static {
    /// The durable consumer this handler runs over.
    const CONSUMER: ConsumerSpec;
    /// Lanes handling events at once. Events of one [`Self::order_key`] share a lane.
    const CONCURRENCY: usize = 1;
    /// The most events one [`Self::handle_batch`] call gets.
    const BATCH: usize = 1;
    /// How long a dead letter may take to be stored before the runner gives up on it and
    /// the message comes back later. The default suits every service; a test holding a
    /// stalled dead-letter store open for as long as it needs raises it.
    const DEAD_LETTER_TIMEOUT: Duration = crate::nats::DEAD_LETTER_TIMEOUT;
    /// The longest one [`Self::handle`] or [`Self::handle_batch`] call may run: past it
    /// the call is dropped (its transaction rolls back) and its events fail as
    /// [`HandleError::Transient`], so a handler stuck on a lock, a dead connection or a
    /// future that never ends frees its lane and its message is retried, then
    /// dead-lettered, like any failure, instead of stalling the lane for good. A batch
    /// past it fails whole, not handled again one by one (each would get the limit
    /// anew). Below the 10 minutes a message is kept in progress, so the message is
    /// settled here before the server gives it to another replica. A handler is dropped at an await, as a
    /// crash would stop it: what it does must already survive that.
    const HANDLE_TIMEOUT: Duration = DEFAULT_HANDLE_TIMEOUT;
    /// What the runner decodes each payload into.
    type Event: StreamEvent;

    /// Events with the same key are handled in stream order, one at a time; `None`
    /// lets an event go to any lane.
    fn order_key(event: &Self::Event) -> Option<&str> {
        let _ = event;
        None
    }

    /// Handles one event. Returning `Ok` acks it.
    fn handle(
        &self,
        event: &Received<Self::Event>,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Handles several events of one lane, in stream order; `Ok` acks them all. On an
    /// error the runner handles each of them again on its own, so a batch must be
    /// all-or-nothing (one transaction) or idempotent per event. The default handles
    /// them one by one.
    fn handle_batch(
        &self,
        events: &[Received<Self::Event>],
    ) -> impl Future<Output = Result<(), HandleError>> + Send {
        async move {
            for event in events {
                self.handle(event).await?;
            }
            Ok(())
        }
    }
}

/// [`EventHandler::HANDLE_TIMEOUT`] unless a handler sets its own.
pub const DEFAULT_HANDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `outcome` label of `consumer_messages_total`.
const OUTCOMES: [&str; 5] = ["ok", "retry", "waiting", "deadletter", "handed_back"];

/// How long a failed consumer waits before it starts again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Deliveries waiting in one lane; with the lanes, this bounds what the runner holds.
const LANE_QUEUE: usize = 256;

/// The most messages one runner of `H` holds delivered and not yet settled: its lanes'
/// queues and batches, and what it asked the server for beyond them (`consumer/pull.rs`).
/// One consumer's [`ConsumerSpec::max_ack_pending`] must leave room for
/// [`SIZED_REPLICAS`] of these, or the server throttles a healthy consumer; a service
/// test guards its handlers' `CONCURRENCY` and `BATCH` with [`room_for_sized_replicas`].
pub const fn most_unacked<H: EventHandler>() -> i64 {
    most_unacked_by(H::CONCURRENCY, H::BATCH)
}

/// [`most_unacked`] for `lanes` lanes handling batches of up to `batch` (each at least
/// one, as the runner takes them).
pub const fn most_unacked_by(lanes: usize, batch: usize) -> i64 {
    let lanes = if lanes == 0 { 1 } else { lanes };
    let batch = if batch == 0 { 1 } else { batch };
    (lanes * (LANE_QUEUE + batch) + pull::MOST_ASKED) as i64
}

/// Replicas of one service the max-ack-pending bounds are sized for: the 4
/// docs/operations.md scales to, and a rolling update's surge pod.
pub const SIZED_REPLICAS: i64 = 5;

/// Whether [`SIZED_REPLICAS`] runners of `H` fit within its consumer's
/// `max_ack_pending` (within half of it for a consumer that waits,
/// [`crate::nats::WAITING_MAX_ACK_PENDING`]: the other half is for the messages
/// waiting on `NotYet`); else why not, naming the handler and the figures. Platform
/// cannot see a service's handlers, so each service's tests call this for every
/// handler it runs: at the bound the server delivers nothing new, and a healthy
/// consumer scaled out would stall.
pub fn room_for_sized_replicas<H: EventHandler>() -> Result<(), String> {
    let bound = H::CONSUMER.max_ack_pending;
    let one = most_unacked::<H>();
    let held = SIZED_REPLICAS * one;
    let (room, of) = if bound == crate::nats::WAITING_MAX_ACK_PENDING {
        (bound / 2, "half of its max_ack_pending")
    } else {
        (bound, "its max_ack_pending")
    };
    if held <= room {
        return Ok(());
    }
    Err(format!(
        "{} (durable {}, CONCURRENCY {}, BATCH {}): {SIZED_REPLICAS} replicas hold up to \
         {held} unacked ({one} each), above {of} ({room})",
        std::any::type_name::<H>(),
        H::CONSUMER.durable,
        H::CONCURRENCY,
        H::BATCH,
    ))
}

/// Runs `handler` over its durable consumer until the drain begins, starting it
/// again (after a short delay) whenever its message stream fails or ends, so a NATS
/// restart or a deleted consumer does not silently stop the service's work.
pub async fn supervise_consumer<H: EventHandler>(
    jetstream: jetstream::Context,
    namespace: Namespace,
    service: &'static str,
    handler: Arc<H>,
    drain: Drain,
) {
    let durable = H::CONSUMER.durable;
    loop {
        let result = run_consumer(
            jetstream.clone(),
            namespace.clone(),
            service,
            handler.clone(),
            drain.clone(),
        )
        .await;
        if drain.is_stopping() {
            return;
        }
        metrics::counter!("consumer_restarts_total", "consumer" => durable).increment(1);
        match result {
            Ok(()) => tracing::warn!(durable, "consumer ended; restarting"),
            Err(error) => tracing::error!(durable, %error, "consumer failed; restarting"),
        }
        tokio::select! {
            () = drain.stopping().cancelled() => return,
            () = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

/// What every lane of one consumer shares.
struct Runner<H> {
    jetstream: jetstream::Context,
    namespace: Namespace,
    service: &'static str,
    handler: Arc<H>,
    counted: CountedHere,
    unsettled: Unsettled,
    /// Signalled when a lane takes jobs from its queue.
    lane_room: tokio::sync::Notify,
    /// Cancelled once the runner has stopped pulling and the server closed its inbox.
    inbox_closed: tokio_util::sync::CancellationToken,
}

/// The messages whose failures this runner counts itself, by stream sequence: those it
/// saw wait ([`HandleError::NotYet`]) and those it handed back from a full lane
/// (`Runner::unblock`). Their delivery count is inflated by deliveries that were no
/// failure, so a failure after one gets a failing message's retries and backoffs,
/// which that count cannot give: after a wait, `max_deliver` failures of its own; after
/// a hand-back, the deliveries it had before it was first handed back count as failures
/// too, and the hand-backs do not, nor do they count among the deliveries a wait is
/// allowed (`waits`). Only this runner's: a message that waited or was
/// handed back on another replica or before a restart is not counted here (`retries`
/// then goes by its age; nothing in a message tells a wait elsewhere from slow
/// failures). The deliveries before a hand-back may have been waits elsewhere too, so
/// a message counted only for its hand-backs is also retried while its retry comes
/// within the patience of its age (`retries`): counting here never makes a failure
/// dead-lettered sooner than it would be uncounted. Another replica may finish a
/// message: entries untouched for twice the patience are dropped once there are many,
/// and past [`COUNTED_MOST`] a wait takes the place of the least recently touched
/// hand-back and a new hand-back is not recorded (such a message is judged by its age),
/// so a hanging handler that makes the runner hand back message after message cannot
/// grow it without bound, nor crowd out the waits. What a drain hands back is not
/// recorded: this runner is ending, and the replica that takes it cannot tell those
/// deliveries from failures (platform/README.md, "What a hand-back costs").
#[derive(Default)]
struct CountedHere(std::sync::Mutex<CountedEntries>);

#[derive(Default)]
struct CountedEntries {
    by_sequence: HashMap<u64, Counted>,
    /// The size at which the stale entries are dropped next: twice what the last
    /// drop left, at least [`COUNTED_PRUNE_AT`] and at most [`COUNTED_MOST`] (the
    /// table never grows past that, so a larger size would never be reached), so a
    /// burst of fresh entries is not scanned again at every new one.
    prune_at: usize,
    /// When the stale entries were last dropped: at [`COUNTED_MOST`] they are looked
    /// for at most once a second, not at every refused entry.
    pruned: Option<Instant>,
}

struct Counted {
    failures: i64,
    /// Recorded by a hand-back and never seen waiting here: its earlier deliveries may
    /// have been waits elsewhere, so it keeps the age rule of an uncounted message.
    handed_back_only: bool,
    /// The times this runner handed it back: deliveries that were neither a failure nor
    /// a wait, left out of the deliveries a wait is judged by (`waits`).
    hand_backs: i64,
    touched: Instant,
}

/// A message's failures as this runner counts them ([`CountedHere::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failures {
    count: i64,
    /// Retried while its retry comes within the patience of its age as well (a
    /// message counted only for its hand-backs).
    by_age_too: bool,
}

/// Why an entry is touched.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Waiting,
    /// Handed back; its failures so far if the entry is new.
    HandedBack {
        failures: i64,
    },
}

/// Entries [`CountedHere`] holds before it first drops the stale ones.
const COUNTED_PRUNE_AT: usize = 4096;

/// The most entries [`CountedHere`] holds (a few MB): above what the largest bound
/// keeps unacked at once ([`crate::nats::WAITING_MAX_ACK_PENDING`]), so only messages
/// settled elsewhere and not yet stale could fill it.
const COUNTED_MOST: usize = 65_536;

impl CountedHere {
    fn entries(&self) -> std::sync::MutexGuard<'_, CountedEntries> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that message `sequence` waits (sequence 0: a message without its
    /// JetStream metadata, not recorded); its failures count from here.
    fn record_wait(&self, sequence: u64, stale_after: Duration) {
        if sequence == 0 {
            return;
        }
        self.entries().touch(sequence, stale_after, Seen::Waiting);
    }

    /// Records that message `sequence`, at its `delivered`-th delivery, is handed back
    /// without being handled: the deliveries before its first hand-back here count as
    /// failures, the hand-backs do not.
    fn record_hand_back(&self, sequence: u64, delivered: i64, stale_after: Duration) {
        if sequence == 0 {
            return;
        }
        let failures = delivered.saturating_sub(1).max(0);
        self.entries()
            .touch(sequence, stale_after, Seen::HandedBack { failures });
    }

    /// Counts a failure of message `sequence`: its failures as this runner counts them,
    /// or `None` if it does not count them (a message that only failed, or waited
    /// elsewhere).
    fn failed(&self, sequence: u64) -> Option<Failures> {
        self.entries()
            .by_sequence
            .get_mut(&sequence)
            .map(|counted| {
                counted.failures += 1;
                counted.touched = Instant::now();
                Failures {
                    count: counted.failures,
                    by_age_too: counted.handed_back_only,
                }
            })
    }

    /// The times this runner handed message `sequence` back (0 if it never did, or did
    /// not record it).
    fn hand_backs(&self, sequence: u64) -> i64 {
        self.entries()
            .by_sequence
            .get(&sequence)
            .map_or(0, |counted| counted.hand_backs)
    }

    fn settled(&self, sequence: u64) {
        self.entries().by_sequence.remove(&sequence);
    }
}

impl CountedEntries {
    /// Touches `sequence`'s entry, made if new (and if there is room). A wait on an
    /// entry made by hand-backs restarts its count: its failures are counted from its
    /// first wait here, as for any message that waited here (whose failures before that
    /// wait are not counted either); its hand-backs stay counted.
    fn touch(&mut self, sequence: u64, stale_after: Duration, seen: Seen) {
        let now = Instant::now();
        if let Some(counted) = self.by_sequence.get_mut(&sequence) {
            counted.touched = now;
            match seen {
                Seen::Waiting if counted.handed_back_only => {
                    counted.handed_back_only = false;
                    counted.failures = 0;
                }
                Seen::Waiting => {}
                Seen::HandedBack { .. } => counted.hand_backs += 1,
            }
            return;
        }
        let full = self.by_sequence.len() >= COUNTED_MOST;
        let recently = self
            .pruned
            .is_some_and(|pruned| now.duration_since(pruned) < Duration::from_secs(1));
        let prune_at = self.prune_at.clamp(COUNTED_PRUNE_AT, COUNTED_MOST);
        if self.by_sequence.len() >= prune_at && !(full && recently) {
            self.by_sequence
                .retain(|_, counted| now.duration_since(counted.touched) < stale_after);
            self.prune_at = (self.by_sequence.len() * 2).clamp(COUNTED_PRUNE_AT, COUNTED_MOST);
            self.pruned = Some(now);
        }
        if self.by_sequence.len() >= COUNTED_MOST {
            // A wait counted here is what keeps a waiting message's failures from
            // being judged by its inflated delivery count; a hand-back entry only
            // spares a message the age rule. Scanning for the oldest happens only at
            // the cap.
            let Seen::Waiting = seen else { return };
            let oldest = self
                .by_sequence
                .iter()
                .filter(|(_, counted)| counted.handed_back_only)
                .min_by_key(|(_, counted)| counted.touched)
                .map(|(&sequence, _)| sequence);
            let Some(oldest) = oldest else { return };
            self.by_sequence.remove(&oldest);
        }
        let (failures, handed_back_only, hand_backs) = match seen {
            Seen::Waiting => (0, false, 0),
            Seen::HandedBack { failures } => (failures, true, 1),
        };
        self.by_sequence.insert(
            sequence,
            Counted {
                failures,
                handed_back_only,
                hand_backs,
                touched: now,
            },
        );
    }
}

/// A decoded delivery and the message to settle it with.
struct Job<E> {
    received: Received<E>,
    message: jetstream::Message,
    token: Token,
}

/// Runs `handler` over its durable consumer until the drain begins or the NATS
/// connection closes for good. On a drain, the batches the lanes are handling are
/// finished before it returns, and every other message it holds (pulled but not given
/// to a lane, or queued in a lane) goes back to the server at once, for another
/// replica (see `pull`); when the connection ends, the lanes work through their queues.
pub async fn run_consumer<H: EventHandler>(
    jetstream: jetstream::Context,
    namespace: Namespace,
    service: &'static str,
    handler: Arc<H>,
    drain: Drain,
) -> Result<(), NatsError> {
    let spec = H::CONSUMER;
    // Exported at 0 from the start: Prometheus' increase() cannot see a counter's first
    // step, so a series born at its first dead letter would never fire the alert.
    for outcome in OUTCOMES {
        metrics::counter!("consumer_messages_total", "consumer" => spec.durable, "outcome" => outcome)
            .increment(0);
    }
    metrics::counter!("consumer_handler_panics_total", "consumer" => spec.durable).increment(0);
    metrics::counter!("consumer_handler_timeouts_total", "consumer" => spec.durable).increment(0);
    let consumer = provision_consumer(&jetstream, &namespace, &spec).await?;
    let mut puller = Puller::start(consumer, jetstream.clone())
        .await
        .map_err(|e| NatsError::Consumer {
            stream: namespace.name(spec.stream.name),
            durable: namespace.name(spec.durable),
            reason: e.to_string(),
        })?;
    let runner = Arc::new(Runner {
        jetstream,
        namespace,
        service,
        handler,
        counted: CountedHere::default(),
        unsettled: Unsettled::new(spec.durable, spec.ack_wait),
        lane_room: tokio::sync::Notify::new(),
        inbox_closed: tokio_util::sync::CancellationToken::new(),
    });
    // Aborted when this returns, or if it is dropped, as the lanes are.
    let keeper = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
        let runner = runner.clone();
        let client = runner.jetstream.client();
        async move { runner.unsettled.keep_alive(client).await }
    }));
    let lanes = H::CONCURRENCY.max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = JoinSet::new();
    for _ in 0..lanes {
        let (sender, receiver) = mpsc::channel(LANE_QUEUE);
        senders.push(sender);
        workers.spawn(runner.clone().lane(receiver, drain.stopping().clone()));
    }
    tracing::info!(durable = spec.durable, lanes, "consumer started");
    let mut ended = None;
    // A draining lane closes its queue: not a failure then.
    let lane_stopped = |lane: usize| {
        if !drain.is_stopping() {
            tracing::error!(durable = spec.durable, lane, "consumer lane stopped");
        }
    };
    // Messages pulled and not given to a lane yet wait in `hand_out` while their lane is
    // full, and what was already asked for is read on meanwhile: a message's time in
    // the runner then counts from its delivery, which the progress notices
    // (`keep_alive`) rely on. More is asked for while a lane has room.
    let mut hand_out = HandOut::new(senders);
    // Undecodable messages being dead-lettered: they count as held, so a dead-letter
    // store that does not answer cannot make the runner pull without bound.
    let mut dead_letters = JoinSet::new();
    loop {
        if let Err(LaneStopped(lane)) = runner.unblock(&mut hand_out, &puller).await {
            lane_stopped(lane);
            break;
        }
        let held = hand_out.held() + dead_letters.len();
        // Nothing is due and too much is held to ask: only a lane taking messages or a
        // dead letter ending changes that.
        let stalled = puller.asked() == 0 && held > pull::ASK_AT;
        let ask = hand_out.room().then_some(held);
        let next = tokio::select! {
            biased;
            () = drain.stopping().cancelled() => break,
            // Also while nothing is held and no lane has room: asking waits for a lane to
            // take a message, and nothing else would wake the runner.
            () = runner.lane_room.notified(), if hand_out.held() > 0 || !hand_out.room() => {
                if let Err(LaneStopped(lane)) = hand_out.hand_out() {
                    lane_stopped(lane);
                    break;
                }
                continue;
            }
            Some(joined) = dead_letters.join_next(), if !dead_letters.is_empty() => {
                if let Err(error) = joined {
                    tracing::error!(durable = spec.durable, %error, "dead-lettering panicked");
                }
                continue;
            }
            next = puller.next(ask), if !stalled => next,
        };
        let message = match next {
            Ok(Pulled::Message(message)) => *message,
            Ok(Pulled::Nothing) => continue,
            Ok(Pulled::Closed) => break,
            Err(error) => {
                ended = Some(error);
                break;
            }
        };
        let job = match runner.decode(message).await {
            Ok(job) => job,
            Err(undecodable) => {
                dead_letters.spawn(runner.clone().dead_letter_undecodable(undecodable));
                continue;
            }
        };
        let lane = H::order_key(&job.received.event).map(|key| lane_of(key, lanes));
        if let Err(LaneStopped(lane)) = hand_out.offer(lane, job) {
            lane_stopped(lane);
            break;
        }
    }
    let mut unhandled = Vec::new();
    for job in hand_out.close() {
        runner.unsettled.release(job.token).await;
        unhandled.push(job.message);
    }
    let handed_back = puller.stop(unhandled).await;
    runner.inbox_closed.cancel();
    if handed_back > 0 {
        tracing::info!(
            durable = spec.durable,
            handed_back,
            "pulled messages handed back for another replica"
        );
        runner.count("handed_back", handed_back as u64);
    }
    while dead_letters.join_next().await.is_some() {}
    while let Some(joined) = workers.join_next().await {
        if let Err(error) = joined {
            tracing::error!(durable = spec.durable, %error, "consumer lane panicked");
        }
    }
    keeper.abort();
    let _ = keeper.await;
    tracing::info!(durable = spec.durable, "consumer stopped");
    match ended {
        Some(error) => Err(NatsError::Consumer {
            stream: runner.namespace.name(spec.stream.name),
            durable: runner.namespace.name(spec.durable),
            reason: error.to_string(),
        }),
        None => Ok(()),
    }
}

/// The lane events of `key` take among `lanes` (a test picks keys of other lanes).
pub fn lane_of(key: &str, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

impl<H: EventHandler> Runner<H> {
    /// Decodes a message for its handler, holding it until it is settled.
    async fn decode(&self, message: jetstream::Message) -> Result<Job<H::Event>, Undecodable> {
        let (delivered, stream_sequence, stored_at) = delivery(&message);
        match H::Event::decode(&message.payload) {
            Ok(event) => Ok(Job {
                received: Received {
                    event,
                    subject: self.namespace.strip(message.subject.as_str()).to_owned(),
                    delivered,
                    stream_sequence,
                    stored_at,
                },
                token: self.unsettled.hold(&message).await,
                message,
            }),
            Err(reason) => Err(Undecodable { message, reason }),
        }
    }

    /// Dead-letters a message that does not decode. Run on its own task, never by the
    /// hand-out: a dead-letter store that does not answer would hold up every lane for
    /// as long as the publish waits.
    async fn dead_letter_undecodable(self: Arc<Self>, undecodable: Undecodable) {
        let Undecodable { message, reason } = undecodable;
        let (delivered, stream_sequence, _) = delivery(&message);
        let subject = self.namespace.strip(message.subject.as_str()).to_owned();
        let letter = Letter {
            subject: &subject,
            event_id: message_id(&message).unwrap_or_default(),
            delivered,
            stream_sequence,
        };
        let outcome = self
            .give_up(&message, &letter, &format!("undecodable: {reason}"))
            .await;
        self.count(outcome, 1);
    }

    /// Hands back the newest held messages when lanes have room but nothing held can go
    /// to them and nothing more is due: the held messages all wait for full lanes (a
    /// handler that hangs on one key), and holding more would stop the runner asking
    /// for the messages of the other lanes. What remains held is at most
    /// [`pull::ASK_AT`], so a request can be sent. The messages handed back come again
    /// after a retry's backoff, here or on another replica, as a retried message does:
    /// behind later events of their key; a hand-back does not count as a failed
    /// delivery here ([`CountedHere`]).
    async fn unblock(
        &self,
        hand_out: &mut HandOut<Job<H::Event>>,
        puller: &Puller,
    ) -> Result<(), LaneStopped> {
        let starved = |h: &HandOut<_>| puller.asked() == 0 && h.held() > pull::ASK_AT && h.room();
        if !starved(hand_out) {
            return Ok(());
        }
        // Lanes may have taken messages since the last hand-out.
        hand_out.hand_out()?;
        if !starved(hand_out) {
            return Ok(());
        }
        let newest = hand_out.take_newest(pull::ASK_AT);
        let count = newest.len();
        for job in newest {
            self.unsettled.release(job.token).await;
            // The next delivery is no failure's retry: it must not count as one when a
            // failure comes (a handler that hangs for longer than the patience would
            // otherwise have these dead-lettered at their first failure).
            self.counted.record_hand_back(
                job.received.stream_sequence,
                job.received.delivered,
                H::CONSUMER.patience() * 2,
            );
            let delay = retry_backoff(job.received.delivered);
            if let Err(error) = job.message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(%error, "cannot hand a message back; it returns after ack_wait");
            }
        }
        tracing::info!(
            durable = H::CONSUMER.durable,
            count,
            "lanes full: messages for them handed back so that the other lanes get theirs"
        );
        self.count("handed_back", count as u64);
        Ok(())
    }

    /// One lane: handles its jobs in order, the queued ones together. Once `stopping`
    /// (the drain) fires, it finishes only the batch in hand and hands back what is
    /// queued, for another replica to take at once: working through a queue of 256
    /// slow events would outlast the drain's grace, and what it left would reach
    /// another replica only after `ack_wait`.
    async fn lane(
        self: Arc<Self>,
        mut jobs: mpsc::Receiver<Job<H::Event>>,
        stopping: tokio_util::sync::CancellationToken,
    ) {
        let batch = H::BATCH.max(1);
        loop {
            let first = tokio::select! {
                biased;
                () = stopping.cancelled() => break,
                first = jobs.recv() => match first {
                    Some(first) => first,
                    None => return,
                },
            };
            let mut taken = vec![first];
            while taken.len() < batch {
                match jobs.try_recv() {
                    Ok(job) => taken.push(job),
                    Err(_) => break,
                }
            }
            // The hand-out may give this lane what it holds for it now.
            self.lane_room.notify_one();
            self.run_batch(taken).await;
        }
        jobs.close();
        // Handed back only once the pull inbox is closed (see `Puller::stop`).
        self.inbox_closed.cancelled().await;
        let mut handed_back = 0;
        while let Ok(job) = jobs.try_recv() {
            self.unsettled.release(job.token).await;
            handed_back += u64::from(pull::hand_back(&job.message).await);
        }
        if handed_back > 0 {
            tracing::info!(
                durable = H::CONSUMER.durable,
                handed_back,
                "queued messages handed back for another replica"
            );
            self.count("handed_back", handed_back);
        }
    }

    async fn run_batch(&self, jobs: Vec<Job<H::Event>>) {
        let durable = H::CONSUMER.durable;
        let started = Instant::now();
        let (received, messages): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|j| (j.received, (j.message, j.token)))
            .unzip();
        metrics::histogram!("consumer_batch_size", "consumer" => durable)
            .record(received.len() as f64);
        let limit = H::HANDLE_TIMEOUT;
        let results: Vec<Result<(), HandleError>> = if received.len() == 1 {
            let handled = self.handler.handle(&received[0]);
            vec![
                unpanicked(durable, limit, &received, handled)
                    .await
                    .unwrap_or_else(|timed_out| timed_out.failure()),
            ]
        } else {
            let handled = self.handler.handle_batch(&received);
            match unpanicked(durable, limit, &received, handled).await {
                Ok(Ok(())) => received.iter().map(|_| Ok(())).collect(),
                // Handled one by one, each would get the limit again: a handler stuck
                // on a lock would hold the lane for a batch's size times the limit,
                // past the 10 minutes its messages are kept from other replicas.
                Err(timed_out) => received.iter().map(|_| timed_out.failure()).collect(),
                Ok(Err(error)) => {
                    tracing::debug!(durable, %error, size = received.len(), "batch failed; handling its events one by one");
                    let mut results = Vec::with_capacity(received.len());
                    for event in &received {
                        let alone = std::slice::from_ref(event);
                        let handled = self.handler.handle(event);
                        results.push(
                            unpanicked(durable, limit, alone, handled)
                                .await
                                .unwrap_or_else(|timed_out| timed_out.failure()),
                        );
                    }
                    results
                }
            }
        };
        metrics::histogram!("consumer_handle_seconds", "consumer" => durable)
            .record(started.elapsed().as_secs_f64());
        for ((event, (message, token)), result) in received.iter().zip(&messages).zip(results) {
            self.unsettled.release(*token).await;
            let outcome = self.settle(event, message, result).await;
            self.count(outcome, 1);
        }
    }

    /// Acks, retries, delays (waiting) or dead-letters one handled message; returns the
    /// outcome label.
    /// Logs name the message by subject and stream sequence, never by event id: an
    /// inbound event's id holds the citizen's openid.
    async fn settle(
        &self,
        event: &Received<H::Event>,
        message: &jetstream::Message,
        result: Result<(), HandleError>,
    ) -> &'static str {
        let spec = H::CONSUMER;
        let event_id = event.event.event_id();
        let sequence = event.stream_sequence;
        let failures = match result {
            Err(HandleError::Transient(_)) => self.counted.failed(sequence),
            _ => None,
        };
        match result {
            Ok(()) => {
                self.counted.settled(sequence);
                if let Err(error) = message.ack().await {
                    tracing::warn!(%error, subject = %event.subject, stream_sequence = event.stream_sequence, "ack failed; the message will be redelivered");
                }
                if let Some(stored_at) = event.stored_at {
                    let lag = (Utc::now() - stored_at).to_std().unwrap_or_default();
                    metrics::histogram!("consumer_lag_seconds", "consumer" => spec.durable)
                        .record(lag.as_secs_f64());
                }
                "ok"
            }
            Err(HandleError::Transient(reason)) if retries(&spec, event, failures, Utc::now()) => {
                tracing::warn!(subject = %event.subject, stream_sequence = event.stream_sequence, delivered = event.delivered, %reason, "handler failed, will retry");
                let backoff = retry_backoff(failures.map_or(event.delivered, |f| f.count));
                let _ = message.ack_with(AckKind::Nak(Some(backoff))).await;
                "retry"
            }
            Err(HandleError::NotYet(reason))
                if waits(&spec, event, self.counted.hand_backs(sequence), Utc::now()) =>
            {
                tracing::debug!(subject = %event.subject, stream_sequence = event.stream_sequence, delivered = event.delivered, %reason, "waiting for another event");
                self.counted.record_wait(sequence, spec.patience() * 2);
                let delay = wait_delay(age(event, Utc::now()), event.delivered);
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                "waiting"
            }
            Err(error) => {
                let reason = match error {
                    HandleError::Transient(reason) | HandleError::Permanent(reason) => reason,
                    HandleError::NotYet(reason) => {
                        let waited = age(event, Utc::now())
                            .map(|age| Duration::from_secs(age.as_secs()))
                            .map_or("an unknown time".to_owned(), |age| {
                                humantime::format_duration(age).to_string()
                            });
                        format!(
                            "still waiting after {waited}, delivered {} times: {reason}",
                            event.delivered
                        )
                    }
                };
                let letter = Letter {
                    subject: &event.subject,
                    event_id: event_id.to_owned(),
                    delivered: event.delivered,
                    stream_sequence: event.stream_sequence,
                };
                let outcome = self.give_up(message, &letter, &reason).await;
                // A message whose dead letter could not be written comes back: it keeps
                // its count.
                if outcome == "deadletter" {
                    self.counted.settled(sequence);
                }
                outcome
            }
        }
    }

    fn count(&self, outcome: &'static str, n: u64) {
        metrics::counter!("consumer_messages_total", "consumer" => H::CONSUMER.durable, "outcome" => outcome)
            .increment(n);
    }

    /// Dead-letters a message with `reason` and terminates it; if the dead letter
    /// cannot be written, the message comes back later instead of being dropped
    /// (JetStream's own `max_deliver` is unlimited: see `provision_consumer`).
    async fn give_up(
        &self,
        message: &jetstream::Message,
        letter: &Letter<'_>,
        reason: &str,
    ) -> &'static str {
        match self.dead_letter(message, letter, reason).await {
            Ok(()) => {
                tracing::error!(subject = letter.subject, stream_sequence = letter.stream_sequence, delivered = letter.delivered, %reason, "message dead-lettered");
                let _ = message.ack_with(AckKind::Term).await;
                "deadletter"
            }
            Err(error) => {
                tracing::error!(%error, subject = letter.subject, stream_sequence = letter.stream_sequence, "cannot dead-letter; will retry");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await;
                "retry"
            }
        }
    }

    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        letter: &Letter<'_>,
        reason: &str,
    ) -> Result<(), String> {
        let spec = H::CONSUMER;
        let service = self.service;
        let dead = proto::events::v1::DeadLetter {
            header: Some(proto::events::v1::EventHeader {
                event_id: letter.event_id.clone(),
                account: account_of(&spec, letter.subject).to_owned(),
                occurred_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            }),
            service: service.to_owned(),
            stream: spec.stream.name.to_owned(),
            subject: letter.subject.to_owned(),
            stream_sequence: letter.stream_sequence,
            deliveries: letter.delivered.max(0) as u64,
            reason: reason.to_owned(),
            payload: message.payload.to_vec(),
        };
        publish_dead_letter(
            &self.jetstream,
            &self.namespace,
            &spec.stream.name.to_ascii_lowercase(),
            &format!("{}:{}", spec.durable, letter.stream_sequence),
            &dead,
            H::DEAD_LETTER_TIMEOUT,
        )
        .await
    }
}

/// A handler's result, with a panic in it taken as a transient failure (and a call past
/// `limit` dropped: [`TimedOut`]): the lane goes
/// on, and the event is retried and dead-lettered (with the panic's message) as any
/// failing event is. A panic that ended the lane instead dropped its queue and the
/// batch in hand, which the keep-alive then kept from every replica for
/// `keep_alive::MAX_KEPT` (10 minutes), and the event came back to panic again for ever.
/// Unwind safety is asserted: the handler is the object a restarted runner would use as
/// well, so going on with it shares no state the restart did not. Logged with the
/// durable and the `events` handled (by subject and stream sequence, never event id),
/// counted in `consumer_handler_panics_total`; the message is cut to
/// [`PANIC_MESSAGE_MOST`] bytes, as it goes into the log and a dead letter's reason.
async fn unpanicked<E>(
    durable: &'static str,
    limit: Duration,
    events: &[Received<E>],
    handled: impl Future<Output = Result<(), HandleError>>,
) -> Result<Result<(), HandleError>, TimedOut> {
    use futures::FutureExt as _;
    let Ok(outcome) =
        tokio::time::timeout(limit, std::panic::AssertUnwindSafe(handled).catch_unwind()).await
    else {
        metrics::counter!("consumer_handler_timeouts_total", "consumer" => durable).increment(1);
        tracing::error!(
            durable,
            size = events.len(),
            first_subject = events.first().map(|e| e.subject.as_str()),
            first_stream_sequence = events.first().map(|e| e.stream_sequence),
            limit = ?limit,
            "handler ran past its time limit and was dropped; its events are retried"
        );
        return Err(TimedOut { limit });
    };
    Ok(outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        let message = cut(message, PANIC_MESSAGE_MOST);
        metrics::counter!("consumer_handler_panics_total", "consumer" => durable).increment(1);
        match events {
            [event] => tracing::error!(
                durable,
                subject = %event.subject,
                stream_sequence = event.stream_sequence,
                delivered = event.delivered,
                %message,
                "handler panicked; its event is retried"
            ),
            _ => tracing::error!(
                durable,
                size = events.len(),
                first_stream_sequence = events.first().map(|e| e.stream_sequence),
                last_stream_sequence = events.last().map(|e| e.stream_sequence),
                %message,
                "batch handler panicked; its events are handled one by one"
            ),
        }
        Err(HandleError::Transient(format!(
            "handler panicked: {message}"
        )))
    }))
}

/// A handler call dropped past its time limit, and the failure its events take: all
/// of a batch's alike, not handled again one by one (each would get the limit anew).
struct TimedOut {
    limit: Duration,
}

impl TimedOut {
    fn failure(&self) -> Result<(), HandleError> {
        Err(HandleError::Transient(format!(
            "handler exceeded its time limit ({}s)",
            self.limit.as_secs_f64()
        )))
    }
}

/// The most of a panic's message kept: a panic may carry a whole payload or debug dump,
/// and its message goes into every retry's log line and the dead letter's reason.
const PANIC_MESSAGE_MOST: usize = 4096;

/// `text` cut to at most `most` bytes (at a character's boundary), saying how long it was.
fn cut(text: String, most: usize) -> String {
    if text.len() <= most {
        return text;
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut from {} bytes)", &text[..end], text.len())
}

/// A delivery whose payload does not decode, and why.
struct Undecodable {
    message: jetstream::Message,
    reason: String,
}

/// A delivery's count, stream sequence and stored time; `(1, 0, None)` without its
/// JetStream metadata.
fn delivery(message: &jetstream::Message) -> (i64, u64, Option<DateTime<Utc>>) {
    match message.info() {
        Ok(info) => (
            info.delivered,
            info.stream_sequence,
            DateTime::from_timestamp_nanos(
                i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(0),
            )
            .into(),
        ),
        Err(_) => (1, 0, None),
    }
}

/// What a dead letter says of the message it replaces.
struct Letter<'a> {
    subject: &'a str,
    event_id: String,
    delivered: i64,
    stream_sequence: u64,
}

fn message_id(message: &jetstream::Message) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|v| v.as_str().to_owned())
}

/// The account of a stream subject: every stream's subjects are
/// `{stream prefix}.{account}.…` (`wechat.inbound.{account}.…`, `content.{account}.…`).
fn account_of<'a>(spec: &ConsumerSpec, subject: &'a str) -> &'a str {
    let prefix = spec.stream.subjects.trim_end_matches('>');
    subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
}

/// How long a message waits after its `delivered`-th delivery failed transiently:
/// 0.5 s doubling, at most a minute.
fn retry_backoff(delivered: i64) -> Duration {
    Duration::from_millis(250 * 2u64.pow(delivered.clamp(0, 8) as u32)).min(MAX_RETRY_BACKOFF)
}

const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

/// When a message waiting for another event (`age`: since the stream stored it) is
/// delivered again: after a quarter of its age, so it follows the other event at most
/// a quarter later than the other event's own delay, and a long wait (a stopped
/// consumer) costs a few deliveries per doubling of its age up to a minute, then one
/// every 15 s (about 69 over the patience), rather than one every second;
/// [`MAX_WAIT_DELAY`] without a stored time. Its age is taken as at least
/// [`MIN_WAIT_DELAY`] per delivery before this one (`delivered`): with the server's
/// clock ahead of this one a message looks no age at all, and would otherwise be
/// delivered every half second for as long as the skew lasts.
fn wait_delay(age: Option<Duration>, delivered: i64) -> Duration {
    age.map_or(MAX_WAIT_DELAY, |age| {
        let earlier = delivered.saturating_sub(1).clamp(0, 10_000) as u32;
        let age = age.max(MIN_WAIT_DELAY * earlier);
        (age / 4).clamp(MIN_WAIT_DELAY, MAX_WAIT_DELAY)
    })
}

const MIN_WAIT_DELAY: Duration = Duration::from_millis(500);

/// The longest a waiting message's next delivery lags behind the event it waits for.
pub const MAX_WAIT_DELAY: Duration = Duration::from_secs(15);

impl ConsumerSpec {
    /// How long the runner keeps delivering a message that fails transiently: the
    /// backoffs of its `max_deliver` deliveries (13 min 3.5 s with
    /// [`crate::nats::PATIENT_DELIVERIES`]). A waiting message ([`HandleError::NotYet`])
    /// gets the same time, counted from when the stream stored it.
    pub fn patience(&self) -> Duration {
        (1..self.max_deliver).map(retry_backoff).sum()
    }

    /// The deliveries a waiting message gets whatever its age: the patience at the
    /// longest wait between them (53 with [`crate::nats::PATIENT_DELIVERIES`]), so a
    /// message older than the patience when first delivered (its consumer was down)
    /// still waits about that long.
    pub fn waits(&self) -> i64 {
        let longest = MAX_WAIT_DELAY.as_millis();
        i64::try_from(self.patience().as_millis().div_ceil(longest)).unwrap_or(i64::MAX)
    }
}

/// How long ago the stream stored the message; zero if "later" than `now` (the
/// server's clock is ahead), `None` without a stored time.
fn age(event: &Received<impl StreamEvent>, now: DateTime<Utc>) -> Option<Duration> {
    event
        .stored_at
        .map(|stored_at| (now - stored_at).to_std().unwrap_or_default())
}

/// Whether a transient failure is delivered again. A message the runner counts
/// (`failures`, see [`CountedHere`]: it waited or was handed back here) gets
/// `max_deliver` failures. Any other: before `max_deliver` deliveries, and after them
/// (it may have waited elsewhere) while the retry still comes within the patience
/// after the stream stored it; the retry's own backoff is counted, so a clock skew
/// smaller than it cannot give a message that only failed one delivery more. A message
/// counted only for its hand-backs gets either (its deliveries before the first
/// hand-back, counted as failures, may have been waits elsewhere or before a restart):
/// counting it never dead-letters it sooner than not counting it would.
fn retries(
    spec: &ConsumerSpec,
    event: &Received<impl StreamEvent>,
    failures: Option<Failures>,
    now: DateTime<Utc>,
) -> bool {
    let within_patience = |delivered: i64| {
        age(event, now).is_some_and(|age| age + retry_backoff(delivered) <= spec.patience())
    };
    match failures {
        Some(Failures { count, by_age_too }) => {
            count < spec.max_deliver || (by_age_too && within_patience(count))
        }
        None => event.delivered < spec.max_deliver || within_patience(event.delivered),
    }
}

/// Whether a waiting message is delivered again: while younger than the patience, and
/// for its first [`ConsumerSpec::waits`] deliveries whatever its age, leaving out the
/// `handed_back` ones this runner handed back from a full lane ([`CountedHere`]): a
/// handler hanging on its key for longer than the patience would otherwise have what it
/// handed back dead-lettered at its first wait. Deliveries handed back elsewhere (by
/// another replica, or by a drain) cannot be told from waits and count.
fn waits(
    spec: &ConsumerSpec,
    event: &Received<impl StreamEvent>,
    handed_back: i64,
    now: DateTime<Utc>,
) -> bool {
    event.delivered.saturating_sub(handed_back.max(0)) <= spec.waits()
        || age(event, now).is_some_and(|age| age < spec.patience())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::{
        DEFAULT_MAX_ACK_PENDING, INTERACTION, PATIENT_DELIVERIES, WAITING_MAX_ACK_PENDING,
        WECHAT_INBOUND,
    };

    #[test]
    fn patient_deliveries_outlast_a_database_failover() {
        let spec = ConsumerSpec {
            max_deliver: PATIENT_DELIVERIES,
            ..spec(WECHAT_INBOUND)
        };
        let waited = spec.patience();
        assert!(
            waited >= Duration::from_secs(10 * 60),
            "a transient failure dead-letters after {waited:?}"
        );
        assert_eq!(retry_backoff(1), Duration::from_millis(500));
        assert_eq!(retry_backoff(PATIENT_DELIVERIES), MAX_RETRY_BACKOFF);
    }

    #[test]
    fn a_waiting_message_is_delivered_again_after_a_quarter_of_its_age() {
        let delay = |seconds: u64| wait_delay(Some(Duration::from_secs(seconds)), 1).as_millis();
        assert_eq!(delay(0), 500);
        assert_eq!(delay(8), 2_000);
        assert_eq!(delay(30), 7_500);
        assert_eq!(delay(60), 15_000);
        assert_eq!(delay(14 * 60), 15_000);
        assert_eq!(wait_delay(None, 1), MAX_WAIT_DELAY);
    }

    #[test]
    fn a_message_that_looks_no_age_is_delivered_less_often_the_more_it_was() {
        // The server's clock ahead of the service's: the stored time is "now" or later.
        let delay = |delivered: i64| wait_delay(Some(Duration::ZERO), delivered).as_millis();
        assert_eq!(delay(1), 500);
        assert_eq!(delay(5), 500, "2 s of deliveries at least");
        assert_eq!(delay(17), 2_000, "8 s at least");
        assert_eq!(delay(200), 15_000);
        assert_eq!(delay(i64::MAX), 15_000);
        // An age the clocks agree on is not shortened by a count.
        assert_eq!(
            wait_delay(Some(Duration::from_secs(40)), 2).as_millis(),
            10_000
        );
    }

    #[test]
    fn the_runner_counts_the_failures_of_a_message_it_saw_wait_and_of_no_other() {
        let counted = CountedHere::default();
        let stale = Duration::from_secs(60);
        assert_eq!(counted.failed_count(7), None, "only failed so far");
        counted.record_wait(7, stale);
        assert_eq!(counted.failed_count(7), Some(1));
        assert_eq!(counted.failed_count(7), Some(2));
        counted.settled(7);
        assert_eq!(counted.failed_count(7), None);
        // No metadata: never counted.
        counted.record_wait(0, stale);
        assert_eq!(counted.failed_count(0), None);
    }

    #[test]
    fn hand_backs_are_not_counted_as_failures_and_the_deliveries_before_them_are() {
        let counted = CountedHere::default();
        let stale = Duration::from_secs(60);
        // Failed twice, then handed back at its third delivery and five times more.
        counted.record_hand_back(9, 3, stale);
        for delivered in 4..=8 {
            counted.record_hand_back(9, delivered, stale);
        }
        assert_eq!(counted.failed_count(9), Some(3), "its 9th delivery fails");
        counted.record_hand_back(0, 30, stale);
        assert_eq!(counted.failed_count(0), None);
        // Seen waiting here after a hand-back: counted from its wait, as any wait, and
        // its hand-backs still known.
        counted.record_hand_back(10, 25, stale);
        counted.record_hand_back(10, 26, stale);
        counted.record_wait(10, stale);
        assert_eq!(counted.hand_backs(10), 2);
        assert_eq!(counted.hand_backs(9), 6);
        assert_eq!(counted.hand_backs(11), 0);
        assert_eq!(
            counted.failed(10),
            Some(Failures {
                count: 1,
                by_age_too: false
            })
        );
    }

    #[test]
    fn stale_entries_are_dropped_once_there_are_many_and_not_at_every_new_one() {
        let counted = CountedHere::default();
        for sequence in 1..=COUNTED_PRUNE_AT as u64 {
            counted.record_wait(sequence, Duration::ZERO);
        }
        assert_eq!(counted.entries().by_sequence.len(), COUNTED_PRUNE_AT);
        // The next new one drops every stale entry.
        counted.record_wait(1_000_000, Duration::ZERO);
        assert_eq!(counted.entries().by_sequence.len(), 1);
        // Fresh ones are kept, and not scanned again before twice what was left.
        let fresh = Duration::from_secs(3600);
        for sequence in 2_000_000..2_000_000 + 2 * COUNTED_PRUNE_AT as u64 {
            counted.record_wait(sequence, fresh);
        }
        assert_eq!(
            counted.entries().by_sequence.len(),
            2 * COUNTED_PRUNE_AT + 1
        );
    }

    #[test]
    fn no_more_than_the_most_entries_are_kept_however_fresh() {
        let counted = CountedHere::default();
        let fresh = Duration::from_secs(3600);
        for sequence in 1..=COUNTED_MOST as u64 + 100 {
            counted.record_hand_back(sequence, 1, fresh);
        }
        assert_eq!(counted.entries().by_sequence.len(), COUNTED_MOST);
        // One refused is judged by its age, as a message counted elsewhere is.
        assert_eq!(counted.failed_count(COUNTED_MOST as u64 + 1), None);
        // Settled ones make room again.
        counted.settled(1);
        counted.record_hand_back(COUNTED_MOST as u64 + 1, 1, fresh);
        assert_eq!(counted.failed_count(COUNTED_MOST as u64 + 1), Some(1));
    }

    #[test]
    fn a_long_panic_message_is_cut_at_a_character_boundary() {
        assert_eq!(cut("short".to_owned(), 4096), "short");
        let cut_text = cut("办".repeat(2000), 4096);
        assert!(cut_text.starts_with(&"办".repeat(1365)), "{cut_text}");
        assert!(cut_text.ends_with("… (cut from 6000 bytes)"), "{cut_text}");
    }

    #[test]
    fn a_table_that_pruned_with_many_fresh_entries_left_prunes_again_when_full() {
        let counted = CountedHere::default();
        let patient = Duration::from_secs(3600);
        for sequence in 1..=COUNTED_MOST as u64 {
            counted.record_wait(sequence, patient);
        }
        let back_date = || {
            counted.entries().pruned = Some(Instant::now() - Duration::from_secs(2));
        };
        // Full: the next one drops the stale entries, and finds none.
        back_date();
        counted.record_wait(COUNTED_MOST as u64 + 1, patient);
        assert_eq!(counted.entries().by_sequence.len(), COUNTED_MOST);
        // A second later, full still: it looks again (here every entry is stale for it).
        back_date();
        let new = COUNTED_MOST as u64 + 2;
        counted.record_wait(new, Duration::ZERO);
        assert_eq!(
            counted.failed_count(new),
            Some(1),
            "a wait recorded at the cap"
        );
    }

    #[test]
    fn a_wait_is_recorded_at_the_cap_in_place_of_a_hand_back() {
        let counted = CountedHere::default();
        let fresh = Duration::from_secs(3600);
        for sequence in 1..=COUNTED_MOST as u64 {
            counted.record_hand_back(sequence, 1, fresh);
        }
        // Sequence 1 is the least recently touched.
        counted.entries().by_sequence.get_mut(&1).unwrap().touched -= Duration::from_secs(1);
        let waiting = COUNTED_MOST as u64 + 1;
        counted.record_wait(waiting, fresh);
        assert_eq!(counted.entries().by_sequence.len(), COUNTED_MOST);
        assert_eq!(
            counted.failed_count(waiting),
            Some(1),
            "the wait is counted"
        );
        // The least recently touched hand-back made room.
        assert_eq!(counted.failed_count(1), None);
        assert!(counted.failed_count(2).is_some());
    }

    #[test]
    fn a_message_handed_back_after_waiting_elsewhere_is_retried_by_its_age_too() {
        let patient = ConsumerSpec {
            max_deliver: PATIENT_DELIVERIES,
            ..spec(WECHAT_INBOUND)
        };
        let counted = CountedHere::default();
        // Waited ~2 minutes before a restart (24 deliveries), handed back at its 25th.
        counted.record_hand_back(1, 25, Duration::from_secs(3600));
        let failures = counted.failed(1);
        let now = Utc::now();
        let stored = Some(now - chrono::TimeDelta::seconds(120));
        assert!(
            retries(&patient, &delivery(26, stored), failures, now),
            "its first failure, 2 minutes old, is retried"
        );
        // Still dead-lettered once the retry would come after the patience.
        let old = Some(now - chrono::TimeDelta::seconds(783));
        assert!(!retries(&patient, &delivery(26, old), failures, now));
    }

    impl CountedHere {
        fn failed_count(&self, sequence: u64) -> Option<i64> {
            self.failed(sequence).map(|failures| failures.count)
        }
    }

    fn waited_here(count: i64) -> Option<Failures> {
        Some(Failures {
            count,
            by_age_too: false,
        })
    }

    fn delivery(delivered: i64, stored_at: Option<DateTime<Utc>>) -> Received<Marker> {
        Received {
            event: Marker,
            subject: "wechat.inbound.city.msg.text".to_owned(),
            delivered,
            stream_sequence: 1,
            stored_at,
        }
    }

    struct Marker;

    impl StreamEvent for Marker {
        fn decode(_: &[u8]) -> Result<Self, String> {
            Ok(Self)
        }
        fn event_id(&self) -> &str {
            "m"
        }
    }

    #[test]
    fn a_failure_is_retried_past_max_deliver_only_while_the_retry_comes_within_the_patience() {
        let spec = ConsumerSpec {
            max_deliver: PATIENT_DELIVERIES,
            ..spec(WECHAT_INBOUND)
        };
        let now = Utc::now();
        let aged = |millis: i64| Some(now - chrono::TimeDelta::milliseconds(millis));
        // A message that waited here: its own failures count, not its deliveries.
        assert!(retries(
            &spec,
            &delivery(80, aged(3_600_000)),
            waited_here(19),
            now
        ));
        assert!(!retries(
            &spec,
            &delivery(80, aged(10_000)),
            waited_here(20),
            now
        ));
        // Any other: retried before `max_deliver` deliveries whatever its age.
        assert!(retries(&spec, &delivery(19, aged(3_600_000)), None, now));
        // Seen waiting on another replica: the retry (60 s on) still comes within the
        // 783.5 s.
        assert!(retries(&spec, &delivery(40, aged(723_500)), None, now));
        assert!(!retries(&spec, &delivery(40, aged(723_501)), None, now));
        assert!(!retries(&spec, &delivery(20, None), None, now));
        // A message that only failed, at its last delivery: its age is the backoffs'
        // sum (783.5 s) and more; a server clock less than a minute ahead of ours makes
        // it look younger, and still gets it no extra delivery.
        assert!(!retries(&spec, &delivery(20, aged(783_600)), None, now));
        assert!(!retries(&spec, &delivery(20, aged(724_000)), None, now));
    }

    #[test]
    fn a_waiting_message_waits_for_the_patience_or_its_waits_whichever_is_longer() {
        let patient = ConsumerSpec {
            max_deliver: PATIENT_DELIVERIES,
            ..spec(WECHAT_INBOUND)
        };
        assert_eq!(patient.patience(), Duration::from_millis(783_500));
        assert_eq!(patient.waits(), 53);
        let now = Utc::now();
        let aged = |seconds: i64| Some(now - chrono::TimeDelta::seconds(seconds));
        assert!(waits(&patient, &delivery(200, aged(783)), 0, now));
        assert!(!waits(&patient, &delivery(200, aged(784)), 0, now));
        // Stored 20 minutes ago, while the consumer was down: it still waits.
        assert!(waits(&patient, &delivery(1, aged(1_200)), 0, now));
        assert!(waits(&patient, &delivery(53, aged(1_980)), 0, now));
        assert!(!waits(&patient, &delivery(54, aged(1_995)), 0, now));
        assert!(waits(&patient, &delivery(53, None), 0, now));
        assert!(!waits(&patient, &delivery(54, None), 0, now));
        // A server clock ahead of ours makes a message look stored in the future.
        assert!(waits(&patient, &delivery(300, aged(-3)), 0, now));
        // Deliveries this runner handed back are no waits.
        assert!(waits(&patient, &delivery(60, aged(1_995)), 7, now));
        assert!(!waits(&patient, &delivery(61, aged(1_995)), 7, now));
    }

    fn spec(stream: crate::nats::StreamSpec) -> ConsumerSpec {
        ConsumerSpec {
            stream,
            durable: "t",
            filter_subject: stream.subjects,
            max_deliver: 1,
            ack_wait: Duration::from_secs(1),
            max_ack_pending: DEFAULT_MAX_ACK_PENDING,
        }
    }

    /// The services' runners as (lanes, batch), which platform cannot see (each
    /// service's own test checks its handlers with [`most_unacked`]):
    /// interaction-inbound 4 × 64; stats-svc's inbound, autoreplies and tickets 2 × 256;
    /// interaction-directory, stats-svc's content and retractions 1 × 64; and, waiting,
    /// interaction-missed-replies 4 × 1 and content-svc's job-finish consumers 1 × 1.
    const SERVICE_RUNNERS: [(usize, usize); 5] = [(4, 64), (2, 256), (1, 64), (4, 1), (1, 1)];

    #[test]
    fn the_max_ack_pending_defaults_leave_room_for_five_replicas_of_the_largest_runner() {
        let largest = SERVICE_RUNNERS
            .iter()
            .map(|&(lanes, batch)| most_unacked_by(lanes, batch))
            .max()
            .unwrap();
        let held = SIZED_REPLICAS * largest;
        assert!(
            held <= DEFAULT_MAX_ACK_PENDING,
            "{SIZED_REPLICAS} replicas of the largest runner hold {held} unacked, above \
             DEFAULT_MAX_ACK_PENDING ({DEFAULT_MAX_ACK_PENDING}): the server would stop \
             delivering to a healthy consumer"
        );
        // A consumer that waits keeps at least half of its bound for waiting messages.
        assert!(
            held <= WAITING_MAX_ACK_PENDING / 2,
            "{SIZED_REPLICAS} replicas of the largest runner hold {held} unacked, over half \
             of WAITING_MAX_ACK_PENDING ({WAITING_MAX_ACK_PENDING})"
        );
        // The figures nats.rs and the README give: a change here changes them.
        assert_eq!(largest, 1_580, "interaction-inbound's runner");
        assert_eq!(
            most_unacked_by(4, 1),
            1_328,
            "interaction-missed-replies' runner"
        );
    }

    #[test]
    fn a_runner_holds_at_least_one_lane_and_batches_of_one() {
        struct Defaults;
        impl EventHandler for Defaults {
            const CONSUMER: ConsumerSpec = ConsumerSpec {
                stream: WECHAT_INBOUND,
                durable: "t",
                filter_subject: WECHAT_INBOUND.subjects,
                max_deliver: 1,
                ack_wait: Duration::from_secs(1),
                max_ack_pending: DEFAULT_MAX_ACK_PENDING,
            };
            type Event = Marker;
            async fn handle(&self, _: &Received<Marker>) -> Result<(), HandleError> {
                Ok(())
            }
        }
        assert_eq!(most_unacked::<Defaults>(), 257 + 300);
        assert_eq!(most_unacked_by(0, 0), most_unacked_by(1, 1));
    }

    #[test]
    fn the_account_is_the_token_after_the_stream_prefix() {
        assert_eq!(
            account_of(&spec(WECHAT_INBOUND), "wechat.inbound.chenzhou.msg.text"),
            "chenzhou"
        );
        assert_eq!(
            account_of(&spec(INTERACTION), "interaction.yizhang.ticket.opened"),
            "yizhang"
        );
        assert_eq!(account_of(&spec(INTERACTION), "elsewhere.x"), "");
    }

    #[test]
    fn one_key_always_takes_the_same_lane_and_keys_spread() {
        let lanes = 8;
        assert_eq!(lane_of("city:o1", lanes), lane_of("city:o1", lanes));
        let used: std::collections::HashSet<usize> = (0..200)
            .map(|i| lane_of(&format!("city:o{i}"), lanes))
            .collect();
        assert_eq!(used.len(), lanes);
        assert!(used.iter().all(|lane| *lane < lanes));
    }
}
