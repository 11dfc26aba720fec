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
use platform::consumer::{Delivery, EventHandler, HandleError};
use platform::nats::{ConsumerSpec, WECHAT_INBOUND};
use prost::Message as _;
use proto::events::v1::Inbound;
use sqlx::{PgPool, Postgres, Transaction};
use wechat::message::InboundMessage;

use crate::domain::incoming::{self, CitizenMessage, Incoming};
use crate::domain::rules;
use crate::domain::{Intake, TicketAction, TicketId, TicketState};
use crate::relay::OutboxSignal;
use crate::replies::{AccountRules, RulesCache};
use crate::store::followers::{self, ReportedLocation};
use crate::store::tickets::record_transition;
use crate::store::tickets_inbound::{self, Announcement, NewTicket, Placed};
use crate::store::{processed, thread};

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
#[derive(Debug, Default)]
struct Applied {
    duplicate: bool,
    queued_events: bool,
    held_answers: bool,
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

    async fn apply(
        &self,
        citizen: &Citizen<'_>,
        incoming: &Incoming,
        rules: &AccountRules,
    ) -> Result<Applied, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        if !processed::claim(&mut tx, citizen.event_id).await? {
            tx.rollback().await?;
            return Ok(Applied {
                duplicate: true,
                ..Applied::default()
            });
        }
        let mut applied = Applied {
            queued_events: update_follower(&mut tx, citizen, incoming).await?,
            ..Applied::default()
        };
        if let Incoming::Message(message) = incoming {
            let awaiting = match rules::may_be_rating(incoming) {
                Some(_) => {
                    tickets_inbound::awaiting_rating(
                        &mut *tx,
                        citizen.account,
                        citizen.openid,
                        citizen.event_id,
                    )
                    .await?
                }
                None => None,
            };
            let decision = rules::decide(&rules.replies, incoming, awaiting.is_some());
            match (decision.rating, awaiting) {
                (Some(rating), Some(ticket)) => {
                    applied.queued_events |= rate(&mut tx, citizen, ticket, rating).await?;
                }
                _ if decision.ticket => {
                    self.place(&mut tx, citizen, message, rules).await?;
                    applied.queued_events = true;
                }
                _ => {}
            }
        }
        applied.held_answers = incoming.is_interaction()
            && tickets_inbound::has_held_answers(&mut tx, citizen.account, citizen.openid).await?;
        tx.commit().await?;
        Ok(applied)
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
        let (ticket, kind) = match tickets_inbound::open_or_join(tx, &new).await? {
            Placed::Opened(ticket) => {
                let note = format!("routed to {} ({})", ticket.department, ticket.category);
                record_transition(
                    tx,
                    ticket.ticket_id(),
                    None,
                    TicketState::Open,
                    CITIZEN,
                    "opened",
                    &note,
                )
                .await?;
                metrics::counter!("interaction_tickets_opened_total", "department" => ticket.department.clone())
                    .increment(1);
                tracing::info!(ticket = %ticket.id, department = %ticket.department, category = %ticket.category, "ticket opened");
                (ticket, "opened")
            }
            Placed::Joined(ticket) => {
                let from = ticket.state()?;
                // An answered ticket needs the department again; others stay as they are.
                let to = from.apply(TicketAction::CitizenMessage).unwrap_or(from);
                let ticket = if to == from {
                    ticket
                } else {
                    let changed = tickets_inbound::set_state(tx, ticket.ticket_id(), to).await?;
                    record_transition(
                        tx,
                        ticket.ticket_id(),
                        Some(from),
                        to,
                        CITIZEN,
                        TicketAction::CitizenMessage.as_str(),
                        "",
                    )
                    .await?;
                    changed
                };
                metrics::counter!("interaction_tickets_joined_total").increment(1);
                tracing::info!(ticket = %ticket.id, state = %ticket.state, "message joined the active ticket");
                (ticket, TicketAction::CitizenMessage.as_str())
            }
        };
        thread::insert_inbound(
            tx,
            ticket.ticket_id(),
            citizen.openid,
            &message.msg_type,
            &message.body,
            citizen.at,
        )
        .await?;
        let event_id = format!("{}:ticket.{kind}", citizen.event_id);
        tickets_inbound::announce(
            tx,
            &ticket,
            Announcement {
                kind,
                actor: CITIZEN,
                event_id: &event_id,
                occurred_at: citizen.at,
            },
        )
        .await
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
    let Some(rated) = tickets_inbound::record_rating(tx, ticket, rating, citizen.event_id).await?
    else {
        return Ok(false);
    };
    let state = rated.state()?;
    record_transition(
        tx,
        ticket,
        Some(state),
        state,
        CITIZEN,
        "rated",
        &format!("rating {rating}"),
    )
    .await?;
    let event_id = format!("{}:ticket.rated", citizen.event_id);
    tickets_inbound::announce(
        tx,
        &rated,
        Announcement {
            kind: "rated",
            actor: CITIZEN,
            event_id: &event_id,
            occurred_at: citizen.at,
        },
    )
    .await?;
    metrics::counter!("interaction_ratings_total", "rating" => rating.to_string()).increment(1);
    tracing::info!(ticket = %ticket, rating, "ticket rated");
    Ok(true)
}

fn permanent(reason: impl std::fmt::Display) -> HandleError {
    HandleError::Permanent(reason.to_string())
}

fn transient(error: sqlx::Error) -> HandleError {
    HandleError::Transient(format!("database: {error}"))
}

impl<H: HeldAnswers> EventHandler for InboundHandler<H> {
    #[tracing::instrument(skip_all, fields(subject = %delivery.subject, event_id))]
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandleError> {
        // Bytes that do not decode never will: dead-letter at once.
        let inbound = Inbound::decode(delivery.payload.as_ref())
            .map_err(|e| permanent(format!("undecodable Inbound: {e}")))?;
        let header = inbound.header.clone().unwrap_or_default();
        // The payload's event_id: the gateway derived it from WeChat's own retry keys.
        let event_id = Some(header.event_id.clone())
            .filter(|id| !id.is_empty())
            .or_else(|| delivery.event_id.clone())
            .ok_or_else(|| permanent("Inbound without event_id"))?;
        tracing::Span::current().record("event_id", event_id.as_str());
        if header.account.is_empty() {
            return Err(permanent("Inbound without account"));
        }
        let message = InboundMessage::parse(inbound.raw_xml.as_bytes())
            .map_err(|e| permanent(format!("unparsable callback XML: {e}")))?;
        let incoming = Incoming::of(&message);
        if !incoming.is_from_citizen() || message.header.from_user_name.is_empty() {
            metrics::counter!("interaction_inbound_total", "outcome" => "not_a_citizen")
                .increment(1);
            return Ok(());
        }
        let received = header
            .occurred_at
            .and_then(|t| DateTime::from_timestamp(t.seconds, 0))
            .unwrap_or_else(Utc::now);
        let citizen = Citizen {
            account: &header.account,
            openid: &message.header.from_user_name,
            at: incoming::create_time(&message, received),
            event_id: &event_id,
        };
        let rules = self.cache.get(citizen.account).await.map_err(transient)?;
        let applied = self
            .apply(&citizen, &incoming, &rules)
            .await
            .map_err(transient)?;
        if applied.duplicate {
            metrics::counter!("interaction_inbound_total", "outcome" => "duplicate").increment(1);
            tracing::debug!("inbound event already applied");
            return Ok(());
        }
        metrics::counter!("interaction_inbound_total", "outcome" => "applied").increment(1);
        if applied.queued_events {
            self.signal.notify();
        }
        if applied.held_answers {
            // After the commit: the citizen's message is what reopened the window. A
            // failure leaves the answers held for the next message; never retry the
            // callback for it (its effects are committed).
            match self.held.flush(citizen.account, citizen.openid).await {
                Ok(sent) => tracing::info!(sent, "held answers sent"),
                Err(error) => tracing::warn!(%error, "cannot send held answers; they stay held"),
            }
        }
        Ok(())
    }
}
