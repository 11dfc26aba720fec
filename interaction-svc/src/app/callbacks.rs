//! A citizen's callback applied: the follower it updates, the ticket a message opens
//! or joins, the rating a lone digit records. The inbound consumer (`events/`) calls
//! [`Callbacks::apply`] for each event of a batch inside the batch's transaction.
//!
//! Effectively exactly once: the event's id is claimed in the same transaction as
//! its effects (follower, ticket, thread, history, outbox), so a redelivery finds
//! it claimed and changes nothing.

use platform::ids::{AccountId, OpenId};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::db::claim_event;
use platform::inbound::InboundEvent;
use sqlx::{Postgres, Transaction};

use crate::domain::directory::{self, PendingAnswer};
use crate::domain::incoming::{CitizenMessage, Incoming};
use crate::domain::rules;
use crate::domain::{AutoAnswer, Facts, Intake, TicketEvent, TicketId};
use crate::replies::directory::DirectoryCache;
use crate::replies::{AccountRules, RulesCache};
use crate::store::followers::{self, ReportedLocation};
use crate::store::thread;
use crate::store::tickets::citizen::{self as tickets_inbound, NewTicket, Placed};
use crate::store::tickets::lifecycle::{self, ActionError, Cause};
use crate::store::{autoreplies, directory as directory_store};

/// The history's actor for what citizens do.
const CITIZEN: &str = "citizen";

/// The citizen and moment of one callback.
struct Citizen<'a> {
    account: &'a AccountId,
    openid: &'a OpenId,
    at: DateTime<Utc>,
    event_id: &'a str,
}

/// What a callback changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
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

/// Applies citizens' callbacks, deciding with the rules cache and the directory the
/// reply path shares (so both decide alike).
pub struct Callbacks {
    cache: Arc<RulesCache>,
    directory: Arc<DirectoryCache>,
    intake: Arc<Intake>,
}

impl Callbacks {
    /// Callbacks decided with `cache` and `directory`, and placed by `intake`.
    pub fn new(
        cache: Arc<RulesCache>,
        directory: Arc<DirectoryCache>,
        intake: Arc<Intake>,
    ) -> Self {
        Self {
            cache,
            directory,
            intake,
        }
    }

    /// Applies one event inside the batch's transaction. A duplicate changes nothing.
    pub async fn apply(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        inbound: &InboundEvent,
    ) -> Result<Applied, sqlx::Error> {
        let incoming = Incoming::of(&inbound.message);
        if !incoming.is_from_citizen() {
            return Ok(Applied::NotACitizen);
        }
        let citizen = Citizen {
            account: &inbound.account,
            openid: &inbound.openid,
            at: inbound.occurred_at,
            event_id: inbound.event_id.as_str(),
        };
        if !claim_event(tx, citizen.event_id).await? {
            return Ok(Applied::Duplicate);
        }
        let rules = self.cache.get(citizen.account.as_str()).await?;
        let directory = self.directory.get(citizen.account.as_str());
        let mut queued_events = update_follower(tx, &citizen, &incoming).await?;
        let mut facts = Facts {
            rating_requested: false,
            directory: Some(&directory),
            pending: None,
            at: citizen.at,
            event_id: citizen.event_id,
        };
        let answered = match &incoming {
            Incoming::Message(message) => {
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
                let pending =
                    directory_store::pending_answer(&mut **tx, citizen.account, citizen.openid)
                        .await?;
                facts.rating_requested = awaiting.is_some();
                facts.pending = pending.as_ref();
                let decision = rules::decide(&rules.replies, &incoming, &facts);
                match (decision.rating, awaiting) {
                    (Some(rating), Some(ticket)) => {
                        queued_events |= rate(tx, &citizen, ticket, rating).await?;
                    }
                    _ if decision.ticket => {
                        let first = pending.as_ref().filter(|_| decision.asked_again);
                        self.place(tx, &citizen, message, &rules, first).await?;
                        queued_events = true;
                    }
                    _ => {}
                }
                if let Some(AutoAnswer::Service {
                    service_id, name, ..
                }) = &decision.answered
                {
                    let answer = PendingAnswer {
                        event_id: citizen.event_id.to_owned(),
                        service_id: *service_id,
                        service_name: name.clone(),
                        msg_type: message.msg_type.clone(),
                        body: message.body.clone(),
                        answered_at: citizen.at,
                    };
                    directory_store::record_answer(tx, citizen.account, citizen.openid, &answer)
                        .await?;
                }
                decision.answered
            }
            Incoming::Subscribe { .. } | Incoming::Click { .. } => {
                rules::decide(&rules.replies, &incoming, &facts).answered
            }
            _ => None,
        };
        if let Some(answer) = &answered {
            autoreplies::announce(
                tx,
                citizen.account,
                citizen.openid,
                citizen.event_id,
                answer,
                citizen.at,
            )
            .await?;
            queued_events = true;
        }
        let held_answers = incoming.is_interaction()
            && tickets_inbound::has_held_answers(tx, citizen.account, citizen.openid).await?;
        Ok(Applied::Changed {
            queued_events,
            held_answers,
        })
    }

    /// Opens a ticket for the message, or adds it to the citizen's active ticket. A
    /// citizen asking again after a directory answer (`first`) brings their first
    /// question along: it routes the ticket, is its summary and leads its thread, and
    /// the history notes what the directory answered.
    async fn place(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        citizen: &Citizen<'_>,
        message: &CitizenMessage,
        rules: &AccountRules,
        first: Option<&PendingAnswer>,
    ) -> Result<(), sqlx::Error> {
        let words = directory::ticket_words(&message.text, first);
        let placement = self.intake.place(&rules.routing, &words, citizen.at);
        let summary = match first {
            Some(first) => CitizenMessage {
                body: first.body.clone(),
                ..message.clone()
            }
            .summary(),
            None => message.summary(),
        };
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
                let mut note = format!("routed to {} ({})", ticket.department, ticket.category);
                if let Some(first) = first {
                    note.push_str("; ");
                    note.push_str(&asked_again_note(first));
                }
                (ticket, TicketEvent::Opened, note)
            }
            // An answered ticket needs the department again; others stay as they are.
            Placed::Joined(ticket) => (
                ticket,
                TicketEvent::CitizenMessage,
                first.map(asked_again_note).unwrap_or_default(),
            ),
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
        if let Some(first) = first {
            thread::insert_inbound(
                tx,
                ticket.ticket_id(),
                citizen.openid,
                &first.msg_type,
                &first.body,
                first.answered_at,
            )
            .await?;
            directory_store::clear_answer(tx, citizen.account, citizen.openid).await?;
            metrics::counter!("interaction_directory_asked_again_total").increment(1);
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

/// The history's note on a ticket opened by asking again.
fn asked_again_note(first: &PendingAnswer) -> String {
    format!(
        "asked again after the directory answered “{}” with {} at {}",
        first.body,
        first.service_name,
        first.answered_at.to_rfc3339()
    )
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
