//! The `interaction-inbound` consumer: every WeChat callback updates its follower,
//! and a citizen's message that no rule fully answers opens a ticket (or joins
//! their active one), or records the rating of their last closed ticket.
//!
//! Effectively exactly once: the event's id is claimed in the same transaction as
//! its effects (follower, ticket, thread, history, outbox), so a redelivery finds
//! it claimed and changes nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::consumer::{EventHandler, HandleError, Received};
use platform::db::claim_event;
use platform::inbound::InboundEvent;
use platform::nats::{ConsumerSpec, WECHAT_INBOUND};
use platform::outbox::OutboxSignal;
use sqlx::{PgPool, Postgres, Transaction};
use tracing::Instrument as _;

use crate::domain::incoming::{CitizenMessage, Incoming};
use crate::domain::rules;
use crate::domain::{Intake, TicketEvent, TicketId};
use crate::replies::{AccountRules, RulesCache};
use crate::store::followers::{self, ReportedLocation};
use crate::store::thread;
use crate::store::tickets::citizen::{self as tickets_inbound, NewTicket, Placed};
use crate::store::tickets::lifecycle::{self, ActionError, Cause};

/// The durable consumer over every inbound callback.
pub const CONSUMER: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "interaction-inbound",
    filter_subject: "wechat.inbound.>",
    max_deliver: 5,
    ack_wait: Duration::from_secs(30),
};

/// The history's actor for what citizens do.
const CITIZEN: &str = "citizen";

/// Sends the answers held for a citizen who was outside the 48-hour window
/// (implemented by `delivery::Deliverer::flush_held`).
pub trait HeldAnswers: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;
    /// Sends what is held for `openid` on `account`; returns how many were sent.
    fn flush(
        &self,
        account: &str,
        openid: &str,
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send;
}

/// For installs (and tests) without WeChat API access: nothing is ever sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeldAnswers;

impl HeldAnswers for NoHeldAnswers {
    type Error = std::convert::Infallible;
    async fn flush(&self, _account: &str, _openid: &str) -> Result<usize, Self::Error> {
        Ok(0)
    }
}

/// Applies inbound callbacks.
pub struct InboundHandler<H> {
    db: PgPool,
    cache: Arc<RulesCache>,
    intake: Arc<Intake>,
    signal: OutboxSignal,
    held: H,
}

/// The citizen and moment of one callback.
struct Citizen<'a> {
    account: &'a str,
    openid: &'a str,
    at: DateTime<Utc>,
    event_id: &'a str,
}

/// What a callback changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// A system sender (job-finish events and the like): nothing for this service.
    NotACitizen,
    /// Applied before: nothing changed.
    Duplicate,
    Changed {
        /// Events were queued in the outbox: wake the relay.
        queued_events: bool,
        /// The citizen has answers held for them, to send now their window is open.
        held_answers: bool,
    },
}

impl<H: HeldAnswers> InboundHandler<H> {
    /// A handler deciding with the shared rules cache (the reply path's too, so both
    /// decide alike), waking the relay through `signal` after each commit.
    pub fn new(
        db: PgPool,
        cache: Arc<RulesCache>,
        intake: Arc<Intake>,
        signal: OutboxSignal,
        held: H,
    ) -> Self {
        Self {
            db,
            cache,
            intake,
            signal,
            held,
        }
    }

    /// Applies one event inside the batch's transaction. A duplicate changes nothing.
    async fn apply(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        inbound: &InboundEvent,
    ) -> Result<Applied, sqlx::Error> {
        let incoming = Incoming::of(&inbound.message);
        if !incoming.is_from_citizen() {
            return Ok(Applied::NotACitizen);
        }
        let citizen = Citizen {
            account: inbound.account.as_str(),
            openid: inbound.openid.as_str(),
            at: inbound.occurred_at,
            event_id: inbound.event_id.as_str(),
        };
        if !claim_event(tx, citizen.event_id).await? {
            return Ok(Applied::Duplicate);
        }
        let rules = self.cache.get(citizen.account).await?;
        let mut queued_events = update_follower(tx, &citizen, &incoming).await?;
        if let Incoming::Message(message) = &incoming {
            let awaiting = match rules::may_be_rating(&incoming) {
                Some(_) => {
                    tickets_inbound::awaiting_rating(
                        &mut **tx,
                        citizen.account,
                        citizen.openid,
                        citizen.event_id,
                    )
                    .await?
                }
                None => None,
            };
            let decision = rules::decide(&rules.replies, &incoming, awaiting.is_some());
            match (decision.rating, awaiting) {
                (Some(rating), Some(ticket)) => {
                    queued_events |= rate(tx, &citizen, ticket, rating).await?;
                }
                _ if decision.ticket => {
                    self.place(tx, &citizen, message, &rules).await?;
                    queued_events = true;
                }
                _ => {}
            }
        }
        let held_answers = incoming.is_interaction()
            && tickets_inbound::has_held_answers(tx, citizen.account, citizen.openid).await?;
        Ok(Applied::Changed {
            queued_events,
            held_answers,
        })
    }

    /// Applies `events` in one transaction: one commit for the lot.
    async fn apply_all(
        &self,
        events: &[Received<InboundEvent>],
    ) -> Result<Vec<Applied>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let mut applied = Vec::with_capacity(events.len());
        for received in events {
            let event = &received.event;
            let span = tracing::debug_span!("inbound", event_id = %event.event_id, subject = %received.subject);
            applied.push(self.apply(&mut tx, event).instrument(span).await?);
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// After the commit: wake the relay and send the answers held for citizens whose
    /// message reopened their 48-hour window. A failed send leaves the answers held
    /// for the next message; the events are never retried for it (their effects are
    /// committed).
    async fn after_commit(&self, events: &[Received<InboundEvent>], applied: &[Applied]) {
        let mut queued = false;
        for applied in applied {
            let outcome = match applied {
                Applied::NotACitizen => "not_a_citizen",
                Applied::Duplicate => "duplicate",
                Applied::Changed { queued_events, .. } => {
                    queued |= queued_events;
                    "applied"
                }
            };
            metrics::counter!("interaction_inbound_total", "outcome" => outcome).increment(1);
        }
        if queued {
            self.signal.notify();
        }
        for (received, applied) in events.iter().zip(applied) {
            if let Applied::Changed {
                held_answers: true, ..
            } = applied
            {
                let event = &received.event;
                match self
                    .held
                    .flush(event.account.as_str(), event.openid.as_str())
                    .await
                {
                    Ok(sent) => {
                        tracing::info!(event_id = %event.event_id, sent, "held answers sent")
                    }
                    Err(error) => {
                        tracing::warn!(event_id = %event.event_id, %error, "cannot send held answers; they stay held")
                    }
                }
            }
        }
    }

    /// Opens a ticket for the message, or adds it to the citizen's active ticket.
    async fn place(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        citizen: &Citizen<'_>,
        message: &CitizenMessage,
        rules: &AccountRules,
    ) -> Result<(), sqlx::Error> {
        let placement = self.intake.place(&rules.routing, &message.text, citizen.at);
        let summary = message.summary();
        let new = NewTicket {
            account: citizen.account,
            openid: citizen.openid,
            department: &placement.route.department,
            category: &placement.route.category,
            summary: &summary,
            opened_at: citizen.at,
            deadlines: placement.deadlines,
        };
        let (ticket, event, note) = match tickets_inbound::open_or_join(tx, &new).await? {
            Placed::Opened(ticket) => {
                metrics::counter!("interaction_tickets_opened_total", "department" => ticket.department.clone())
                    .increment(1);
                tracing::info!(ticket = %ticket.id, department = %ticket.department, category = %ticket.category, "ticket opened");
                let note = format!("routed to {} ({})", ticket.department, ticket.category);
                (ticket, TicketEvent::Opened, note)
            }
            // An answered ticket needs the department again; others stay as they are.
            Placed::Joined(ticket) => (ticket, TicketEvent::CitizenMessage, String::new()),
        };
        let event_id = format!("{}:ticket.{}", citizen.event_id, event.kind().as_str());
        let cause = Cause {
            actor: CITIZEN,
            note: &note,
            event_id: Some(&event_id),
            at: citizen.at,
        };
        let ticket = lifecycle::change(tx, &ticket, event, cause)
            .await
            .map_err(ActionError::into_database)?;
        if event == TicketEvent::CitizenMessage {
            metrics::counter!("interaction_tickets_joined_total").increment(1);
            tracing::info!(ticket = %ticket.id, state = %ticket.state, "message joined the active ticket");
        }
        thread::insert_inbound(
            tx,
            ticket.ticket_id(),
            citizen.openid,
            &message.msg_type,
            &message.body,
            citizen.at,
        )
        .await?;
        Ok(())
    }
}

/// Records the follow, unfollow, location or interaction. Returns whether an event
/// was queued.
async fn update_follower(
    tx: &mut Transaction<'_, Postgres>,
    citizen: &Citizen<'_>,
    incoming: &Incoming,
) -> Result<bool, sqlx::Error> {
    let (account, openid, at) = (citizen.account, citizen.openid, citizen.at);
    match incoming {
        Incoming::Subscribe { scene } => {
            let scene = scene.as_deref().unwrap_or("");
            let applied = followers::subscribe(tx, account, openid, at, scene).await?;
            if applied {
                followers::announce(
                    tx,
                    account,
                    openid,
                    "subscribed",
                    scene,
                    citizen.event_id,
                    at,
                )
                .await?;
                metrics::counter!("interaction_followers_total", "change" => "subscribed")
                    .increment(1);
            }
            Ok(applied)
        }
        Incoming::Unsubscribe => {
            let applied = followers::unsubscribe(tx, account, openid, at).await?;
            if applied {
                followers::announce(
                    tx,
                    account,
                    openid,
                    "unsubscribed",
                    "",
                    citizen.event_id,
                    at,
                )
                .await?;
                metrics::counter!("interaction_followers_total", "change" => "unsubscribed")
                    .increment(1);
            }
            Ok(applied)
        }
        other => {
            followers::touch(tx, account, openid, at).await?;
            let location = match other {
                Incoming::Location {
                    latitude,
                    longitude,
                    precision,
                } => Some((*latitude, *longitude, *precision)),
                Incoming::Message(CitizenMessage {
                    location: Some((latitude, longitude)),
                    ..
                }) => Some((*latitude, *longitude, None)),
                _ => None,
            };
            if let Some((latitude, longitude, precision)) = location {
                let reported = ReportedLocation {
                    latitude,
                    longitude,
                    precision,
                    at,
                };
                followers::locate(tx, account, openid, reported).await?;
            }
            Ok(false)
        }
    }
}

/// Records `rating` on the ticket waiting for it. Returns whether an event was queued
/// (false if the ticket was rated meanwhile).
async fn rate(
    tx: &mut Transaction<'_, Postgres>,
    citizen: &Citizen<'_>,
    ticket: TicketId,
    rating: u8,
) -> Result<bool, sqlx::Error> {
    let before = lifecycle::lock(tx, ticket, None)
        .await
        .map_err(ActionError::into_database)?;
    if before.rating.is_some() {
        return Ok(false);
    }
    let event = TicketEvent::Rated {
        rating,
        message_event_id: citizen.event_id,
    };
    let event_id = format!("{}:ticket.rated", citizen.event_id);
    let note = format!("rating {rating}");
    let cause = Cause {
        actor: CITIZEN,
        note: &note,
        event_id: Some(&event_id),
        at: citizen.at,
    };
    match lifecycle::change(tx, &before, event, cause).await {
        Ok(_) => {}
        // Reopened since the rating question: the digit is no rating any more.
        Err(ActionError::Transition(_)) => return Ok(false),
        Err(error) => return Err(error.into_database()),
    }
    metrics::counter!("interaction_ratings_total", "rating" => rating.to_string()).increment(1);
    tracing::info!(ticket = %ticket, rating, "ticket rated");
    Ok(true)
}

impl<H: HeldAnswers> EventHandler for InboundHandler<H> {
    const CONSUMER: ConsumerSpec = CONSUMER;
    /// Eight lanes keep PostgreSQL busy on two cores without piling up lock waits.
    const CONCURRENCY: usize = 8;
    const BATCH: usize = 64;
    type Event = InboundEvent;

    /// A citizen's callbacks are applied in the order WeChat sent them.
    fn order_key(event: &InboundEvent) -> Option<&str> {
        Some(event.openid.as_str())
    }

    async fn handle(&self, event: &Received<InboundEvent>) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, events: &[Received<InboundEvent>]) -> Result<(), HandleError> {
        let applied = self
            .apply_all(events)
            .await
            .map_err(HandleError::database)?;
        self.after_commit(events, &applied).await;
        Ok(())
    }
}
