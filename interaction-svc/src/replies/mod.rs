//! The reply path: answers the gateway's `{ns}.wechat.reply.{account}` requests with
//! the passive reply WeChat shows the citizen at once. Every replica joins the queue
//! group `interaction-svc`, so each request is answered once.
//!
//! The gateway gives us about 1.5 s, so the common path reads only the in-memory
//! rules cache; the database is read only for a lone digit (is it a rating?) and for
//! a message no rule answers (the citizen's last directory answer, and their ticket
//! still being handled, which the message will join).

pub mod cache;
pub mod directory;
pub mod snapshot;

use std::sync::Arc;

use futures::StreamExt;
use platform::inbound::{InboundError, InboundEvent};
use platform::shutdown::Drain;
use prost::Message as _;
use proto::events::v1::PassiveReply;
use sqlx::PgPool;

use crate::domain::incoming::Incoming;
use crate::domain::rules::{self, Facts, Reply, ReplyContent};
use crate::domain::{Deadlines, Intake, directory as directory_domain, rating};
use crate::store::directory as directory_store;
use crate::store::tickets::TicketRow;
use crate::store::tickets::citizen as tickets_inbound;
pub use cache::{AccountRules, RulesCache};
use directory::DirectoryCache;

/// The request subject, before namespacing; the last token is the account.
pub const SUBJECT: &str = "wechat.reply.*";
/// The queue group replicas share.
pub const QUEUE_GROUP: &str = "interaction-svc";

/// Why a request got no reply (the gateway then answers `success`).
#[derive(Debug, thiserror::Error)]
pub enum ReplyPathError {
    #[error(transparent)]
    Inbound(#[from] InboundError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Decides passive replies.
#[derive(Debug)]
pub struct Responder {
    cache: Arc<RulesCache>,
    directory: Arc<DirectoryCache>,
    db: PgPool,
    intake: Arc<Intake>,
}

impl Responder {
    /// A responder over the shared rules cache and directory.
    pub fn new(
        cache: Arc<RulesCache>,
        directory: Arc<DirectoryCache>,
        db: PgPool,
        intake: Arc<Intake>,
    ) -> Self {
        Self {
            cache,
            directory,
            db,
            intake,
        }
    }

    /// The passive reply to an encoded `Inbound`, and a label for metrics.
    #[tracing::instrument(skip_all, fields(event_id))]
    pub async fn answer(
        &self,
        payload: &[u8],
    ) -> Result<(PassiveReply, &'static str), ReplyPathError> {
        let inbound = InboundEvent::decode(payload)?;
        tracing::Span::current().record("event_id", inbound.event_id.as_str());
        let incoming = Incoming::of(&inbound.message);
        // Today's gateways do not ask about these; an older one during a rollout does.
        if !incoming.may_get_passive_reply() {
            return Ok((PassiveReply::default(), "none"));
        }
        let rules = self.cache.get(inbound.account.as_str()).await?;
        let rating_requested = match rules::may_be_rating(&incoming) {
            Some(_) => tickets_inbound::awaiting_rating(
                &self.db,
                &inbound.account,
                &inbound.openid,
                inbound.event_id.as_str(),
                inbound.occurred_at,
            )
            .await?
            .is_some(),
            None => false,
        };
        let directory = self.directory.get(inbound.account.as_str());
        // The citizen's last directory answer matters only to a message no rule
        // answers (is it asked again?): one primary-key read, skipped for the rest.
        let pending = match &incoming {
            Incoming::Message(_) if rules.replies.answer(&incoming).is_none() => {
                directory_store::pending_answer(
                    &self.db,
                    &inbound.account,
                    &inbound.openid,
                    inbound.event_id.as_str(),
                )
                .await?
            }
            _ => None,
        };
        let facts = Facts {
            rating_requested,
            directory: Some(&directory),
            pending: pending.as_ref(),
            at: inbound.occurred_at,
            event_id: inbound.event_id.as_str(),
        };
        let decision = rules::decide(&rules.replies, &incoming, &facts);
        let acknowledgement = match decision.reply {
            Reply::Acknowledgement => {
                // The consumer adds a message to the citizen's ticket still being
                // handled, if there is one: tell them that ticket's department and
                // deadline, not the ones a new ticket would get. A ticket this very
                // callback opened (the consumer got there first) is a new one.
                let active =
                    tickets_inbound::active(&self.db, &inbound.account, &inbound.openid).await?;
                Some(match active {
                    Some(ticket) => {
                        let opened =
                            ticket.opened_event_id.as_deref() == Some(inbound.event_id.as_str());
                        acknowledgement_of(&self.intake, &ticket, opened, inbound.occurred_at)?
                    }
                    None => {
                        let text = incoming.message().map_or("", |m| m.text.as_str());
                        let first = pending.as_ref().filter(|_| decision.asked_again);
                        let words = directory_domain::ticket_words(text, first);
                        let placement =
                            self.intake
                                .place(&rules.routing, &words, inbound.occurred_at);
                        self.intake.acknowledgement(&placement)
                    }
                })
            }
            _ => None,
        };
        Ok(encode(decision.reply, acknowledgement))
    }
}

/// The passive reply for `reply`, and a label for metrics; `acknowledgement` is the
/// text of an acknowledgement (it depends on the citizen's ticket: the reply path
/// and the consumer each find it). Shared by the reply path and the consumer, which
/// records it for a reply the gateway may miss (`store::decided_replies`).
pub fn encode(reply: Reply, acknowledgement: Option<String>) -> (PassiveReply, &'static str) {
    match reply {
        Reply::Nothing => (PassiveReply::default(), "none"),
        Reply::Rule(content) => (content.to_passive_reply(), rule_label(&content)),
        Reply::Directory(content) => (content.to_passive_reply(), directory_label(&content)),
        Reply::RatingThanks => (text_reply(rating::THANKS.to_owned()), "rating_thanks"),
        Reply::Unreadable(words) => (text_reply(words.to_owned()), "unreadable"),
        Reply::Acknowledgement => match acknowledgement {
            Some(text) => (text_reply(text), "acknowledgement"),
            None => (PassiveReply::default(), "none"),
        },
    }
}

/// The acknowledgement of a message that opened `ticket` (`opened`) or joined it
/// (the ticket as it was before the message), received at `at`.
pub fn acknowledgement_of(
    intake: &Intake,
    ticket: &TicketRow,
    opened: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<String, sqlx::Error> {
    let deadlines = Deadlines {
        acknowledge_due_at: ticket.acknowledge_due_at,
        resolve_due_at: ticket.resolve_due_at,
    };
    Ok(if opened {
        intake.opened_acknowledgement(&ticket.department, &deadlines, at)
    } else {
        intake.joined_acknowledgement(&ticket.department, ticket.state()?, &deadlines, at)
    })
}

fn text_reply(content: String) -> PassiveReply {
    ReplyContent::Text(content).to_passive_reply()
}

fn rule_label(content: &ReplyContent) -> &'static str {
    match content {
        ReplyContent::Text(_) => "rule_text",
        ReplyContent::News(_) => "rule_news",
    }
}

fn directory_label(content: &ReplyContent) -> &'static str {
    match content {
        ReplyContent::Text(_) => "directory_text",
        ReplyContent::News(_) => "directory_news",
    }
}

/// Answers every request on `requests` (a queue subscription to [`SUBJECT`]) until
/// the drain begins; each request is answered in its own task, which the drain awaits.
pub async fn serve(
    responder: Arc<Responder>,
    nats: async_nats::Client,
    mut requests: async_nats::Subscriber,
    drain: Drain,
) {
    tracing::info!("reply path started");
    loop {
        let request = tokio::select! {
            () = drain.stopping().cancelled() => break,
            request = requests.next() => request,
        };
        let Some(request) = request else { break };
        let Some(reply_to) = request.reply.clone() else {
            continue;
        };
        let responder = responder.clone();
        let nats = nats.clone();
        drain.spawn(async move {
            let reply = match responder.answer(&request.payload).await {
                Ok((reply, kind)) => {
                    metrics::counter!("interaction_replies_total", "kind" => kind).increment(1);
                    reply
                }
                Err(error) => {
                    metrics::counter!("interaction_replies_total", "kind" => "error").increment(1);
                    tracing::warn!(%error, subject = %request.subject, "no passive reply");
                    PassiveReply::default()
                }
            };
            if let Err(error) = nats.publish(reply_to, reply.encode_to_vec().into()).await {
                tracing::warn!(%error, "cannot send the passive reply");
            }
        });
    }
    let _ = requests.unsubscribe().await;
    tracing::info!("reply path stopped");
}
