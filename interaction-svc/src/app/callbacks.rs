//! A citizen's callback applied: the follower it updates, the ticket a message opens
//! or joins, the rating a lone digit records. The inbound consumer (`events/`) calls
//! [`Callbacks::apply`] for each event of a batch inside the batch's transaction.
//!
//! Effectively exactly once: the event's id is claimed in the same transaction as
//! its effects (follower, ticket, thread, history, outbox), so a redelivery finds
//! it claimed and changes nothing.

use platform::ids::{AccountId, OpenId};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::db::claim_events;
use platform::inbound::InboundEvent;
use sqlx::{Postgres, Transaction};

use crate::domain::directory::{self, PendingAnswer};
use crate::domain::incoming::{CitizenMessage, Incoming};
use crate::domain::rules::{self, Reply};
use crate::domain::{AutoAnswer, Facts, Intake, TicketEvent, TicketId};
use crate::replies::directory::DirectoryCache;
use crate::replies::{self, AccountRules, RulesCache};
use crate::store::decided_replies::{self, Decided};
use crate::store::followers::{self, ReportedLocation};
use crate::store::thread;
use crate::store::tickets::TicketRow;
use crate::store::tickets::citizen::{self as tickets_inbound, NewTicket, Placed};
use crate::store::tickets::lifecycle::{self, ActionError, Cause};
use crate::store::{autoreplies, directory as directory_store};
use prost::Message as _;
use proto::events::v1::PassiveReply;

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

    /// Applies a batch of events, in order, inside the batch's transaction; returns
    /// what each changed. What every event needs is done for the whole batch in one
    /// statement each — claiming the event ids, moving the followers' last
    /// interaction forward, reading the citizens' pending directory answers, finding
    /// the answers held for them — so a citizen's message costs only the statements of
    /// its own effect. A duplicate changes nothing.
    pub async fn apply(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[&InboundEvent],
    ) -> Result<Vec<Applied>, sqlx::Error> {
        let incoming: Vec<Incoming> = events
            .iter()
            .map(|event| Incoming::of(&event.message))
            .collect();
        let mut applied = vec![Applied::NotACitizen; events.len()];
        let from_citizens: Vec<usize> = (0..events.len())
            .filter(|&i| incoming[i].is_from_citizen())
            .collect();
        if from_citizens.is_empty() {
            return Ok(applied);
        }
        let ids: Vec<&str> = from_citizens
            .iter()
            .map(|&i| events[i].event_id.as_str())
            .collect();
        let claimed = claim_events(tx, &ids).await?;
        let mut fresh = Vec::with_capacity(from_citizens.len());
        for (&i, new) in from_citizens.iter().zip(claimed) {
            if new {
                fresh.push(i);
            } else {
                applied[i] = Applied::Duplicate;
            }
        }
        // A follow records its own time (`followers::subscribe`); what does not open
        // the customer-service window does not move it.
        let touched: Vec<_> = fresh
            .iter()
            .filter(|&&i| {
                incoming[i].is_interaction() && !matches!(incoming[i], Incoming::Subscribe { .. })
            })
            .map(|&i| (&events[i].account, &events[i].openid, events[i].occurred_at))
            .collect();
        followers::touch(tx, &touched).await?;
        let askers: Vec<_> = fresh
            .iter()
            .filter(|&&i| matches!(incoming[i], Incoming::Message(_)))
            .map(|&i| (&events[i].account, &events[i].openid))
            .collect();
        let mut pending = directory_store::pending_answers(tx, &askers).await?;
        let mut decided = Vec::new();
        for &i in &fresh {
            let event = events[i];
            let citizen = Citizen {
                account: &event.account,
                openid: &event.openid,
                at: event.occurred_at,
                event_id: event.event_id.as_str(),
            };
            let (queued_events, reply) = self
                .apply_fresh(tx, &citizen, &incoming[i], &mut pending)
                .await?;
            if let Some(reply) = reply {
                decided.push(Decided {
                    event_id: event.event_id.as_str().to_owned(),
                    account: event.account.clone(),
                    openid: event.openid.clone(),
                    reply,
                });
            }
            applied[i] = Applied::Changed {
                queued_events,
                held_answers: false,
            };
        }
        decided_replies::record(tx, &decided).await?;
        mark_held_answers(tx, events, &incoming, &fresh, &mut applied).await?;
        Ok(applied)
    }

    /// Applies one claimed event; `pending` holds the batch's citizens' last directory
    /// answers, kept current as this event records or clears one. Returns whether
    /// events were queued in the outbox, and the encoded passive reply decided for it
    /// (if any), kept for the gateway missing it (`events::missed`).
    async fn apply_fresh(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        citizen: &Citizen<'_>,
        incoming: &Incoming,
        pending: &mut PendingAnswers,
    ) -> Result<(bool, Option<Vec<u8>>), sqlx::Error> {
        let rules = self.cache.get(citizen.account.as_str()).await?;
        let directory = self.directory.get(citizen.account.as_str());
        let mut queued_events = update_follower(tx, citizen, incoming).await?;
        let mut facts = Facts {
            rating_requested: false,
            directory: Some(&directory),
            pending: None,
            at: citizen.at,
            event_id: citizen.event_id,
        };
        let (answered, reply) = match incoming {
            Incoming::Message(message) => {
                let key = (citizen.account.clone(), citizen.openid.clone());
                let awaiting = match rules::may_be_rating(incoming) {
                    Some(_) => {
                        tickets_inbound::awaiting_rating(
                            &mut **tx,
                            citizen.account,
                            citizen.openid,
                            citizen.event_id,
                            citizen.at,
                        )
                        .await?
                    }
                    None => None,
                };
                let before = pending.get(&key).cloned();
                facts.rating_requested = awaiting.is_some();
                facts.pending = before.as_ref();
                let decision = rules::decide(&rules.replies, incoming, &facts);
                let mut joined = false;
                let mut placed = None;
                match (decision.rating, awaiting) {
                    (Some(rating), Some(ticket)) => {
                        match rate(tx, citizen, ticket, rating).await? {
                            Rating::Recorded => queued_events = true,
                            Rating::AlreadyRated => {}
                            // Reopened between finding it asked and locking it: the digit
                            // rates nothing, and it is the citizen's word to the ticket
                            // being worked on again (locked, so it cannot close first).
                            Rating::Reopened => {
                                if tickets_inbound::lock_active(tx, citizen.account, citizen.openid)
                                    .await?
                                    .is_some()
                                {
                                    placed =
                                        Some(self.place(tx, citizen, message, &rules, None).await?);
                                    queued_events = true;
                                    joined = true;
                                }
                            }
                        }
                    }
                    _ if decision.ticket => {
                        let first = before.as_ref().filter(|_| decision.asked_again);
                        placed = Some(self.place(tx, citizen, message, &rules, first).await?);
                        if first.is_some() {
                            pending.remove(&key);
                        }
                        queued_events = true;
                    }
                    // Locked, so the ticket cannot close before the message joins it.
                    _ if decision.joins_active
                        && tickets_inbound::lock_active(tx, citizen.account, citizen.openid)
                            .await?
                            .is_some() =>
                    {
                        placed = Some(self.place(tx, citizen, message, &rules, None).await?);
                        queued_events = true;
                        joined = true;
                    }
                    _ => {}
                }
                // A question that joined the ticket is before the department already:
                // asking again must not bring it along a second time.
                if let Some(AutoAnswer::Service {
                    service_id, name, ..
                }) = &decision.answered
                    && !joined
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
                    pending.insert(key, answer);
                }
                // The acknowledgement the reply path gives: of the ticket the message
                // opened, or of the one it joined as it was before.
                let acknowledgement = match (&decision.reply, &placed) {
                    (Reply::Acknowledgement, Some((ticket, opened))) => Some(
                        replies::acknowledgement_of(&self.intake, ticket, *opened, citizen.at)?,
                    ),
                    _ => None,
                };
                let reply = replies::encode(decision.reply, acknowledgement).0;
                (decision.answered, reply)
            }
            Incoming::Subscribe { .. } | Incoming::Scan { .. } | Incoming::Click { .. } => {
                let decision = rules::decide(&rules.replies, incoming, &facts);
                (decision.answered, replies::encode(decision.reply, None).0)
            }
            _ => (None, PassiveReply::default()),
        };
        if let Some(answer) = &answered {
            autoreplies::announce(
                tx,
                citizen.account,
                citizen.openid,
                citizen.event_id,
                // A greeting or a menu click's reply answers no question of the citizen,
                // nor does a scan-code button's (`scancode_waitmsg` comes as a message
                // carrying the button's key, but the citizen pressed a button as for a
                // click: the inspection counts answers to what citizens wrote).
                match incoming {
                    Incoming::Message(message) if message.menu_key.is_none() => {
                        proto::events::v1::AnsweredInbound::Message
                    }
                    _ => proto::events::v1::AnsweredInbound::Event,
                },
                answer,
                citizen.at,
            )
            .await?;
            queued_events = true;
        }
        let reply = reply.body.is_some().then(|| reply.encode_to_vec());
        Ok((queued_events, reply))
    }

    /// Opens a ticket for the message, or adds it to the citizen's active ticket. A
    /// citizen asking again after a directory answer (`first`) brings their first
    /// question along: it routes the ticket, is its summary and leads its thread, and
    /// the history notes what the directory answered. Returns the ticket opened
    /// (`true`) or joined, as it was before the message.
    async fn place(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        citizen: &Citizen<'_>,
        message: &CitizenMessage,
        rules: &AccountRules,
        first: Option<&PendingAnswer>,
    ) -> Result<(TicketRow, bool), sqlx::Error> {
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
            event_id: citizen.event_id,
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
        let placed = (ticket.clone(), event == TicketEvent::Opened);
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
            directory_store::consume_answer(tx, citizen.account, citizen.openid, citizen.event_id)
                .await?;
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
        Ok(placed)
    }
}

/// The batch's citizens' last directory answers.
type PendingAnswers = HashMap<(AccountId, OpenId), PendingAnswer>;

/// Marks, for each citizen of the batch with answers held for them, their last
/// interaction in the batch, so the answers are sent once after the commit.
async fn mark_held_answers(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&InboundEvent],
    incoming: &[Incoming],
    fresh: &[usize],
    applied: &mut [Applied],
) -> Result<(), sqlx::Error> {
    let interacted: Vec<usize> = fresh
        .iter()
        .copied()
        .filter(|&i| incoming[i].is_interaction())
        .collect();
    let citizens: Vec<_> = interacted
        .iter()
        .map(|&i| (&events[i].account, &events[i].openid))
        .collect();
    let mut held = tickets_inbound::with_held_answers(tx, &citizens).await?;
    for &i in interacted.iter().rev() {
        let key = (events[i].account.clone(), events[i].openid.clone());
        if held.remove(&key)
            && let Applied::Changed { held_answers, .. } = &mut applied[i]
        {
            *held_answers = true;
        }
    }
    Ok(())
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

/// Records the follow, unfollow or location (the batch has already recorded the
/// interaction itself: `followers::touch`). Returns whether an event was queued.
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

/// What became of a digit rating the ticket waiting for it.
enum Rating {
    /// Recorded, and `ticket.rated` queued.
    Recorded,
    /// The ticket was rated meanwhile: nothing changes.
    AlreadyRated,
    /// The ticket was reopened since the rating question: the digit is no rating.
    Reopened,
}

/// Records `rating` on the ticket waiting for it.
async fn rate(
    tx: &mut Transaction<'_, Postgres>,
    citizen: &Citizen<'_>,
    ticket: TicketId,
    rating: u8,
) -> Result<Rating, sqlx::Error> {
    let before = lifecycle::lock(tx, ticket, None)
        .await
        .map_err(ActionError::into_database)?;
    if before.rating.is_some() {
        return Ok(Rating::AlreadyRated);
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
        Err(ActionError::Transition(_)) => return Ok(Rating::Reopened),
        Err(error) => return Err(error.into_database()),
    }
    metrics::counter!("interaction_ratings_total", "rating" => rating.to_string()).increment(1);
    tracing::info!(ticket = %ticket, rating, "ticket rated");
    Ok(Rating::Recorded)
}
