//! `events.v1.AutoReplied`: what answered a citizen without a person, queued in the
//! transaction that applied the callback (stats-svc counts keyword and directory hits).

use chrono::{DateTime, Utc};
use platform::ids::{AccountId, OpenId};
use platform::outbox::{self, OutboxEvent};
use proto::events::v1 as ev;
use sqlx::{Postgres, Transaction};

use crate::domain::AutoAnswer;

/// Queues the announcement that `answer` answered the callback `inbound_event_id`,
/// which was a citizen's message or an event (`answered`: a greeting or a menu
/// click's reply answers no question of the citizen, and the inspection must not
/// count it as one).
/// The event id is the callback's plus `:autoreply`, so a callback is announced once
/// (a redelivered callback is claimed before this runs, and the outbox's and
/// JetStream's duplicate checks catch the rest).
pub async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    account: &AccountId,
    openid: &OpenId,
    inbound_event_id: &str,
    answered: ev::AnsweredInbound,
    answer: &AutoAnswer,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let event_id = format!("{inbound_event_id}:autoreply");
    let (source, kind) = match answer {
        AutoAnswer::Rule { .. } => (ev::AutoReplySource::Rule, "rule"),
        AutoAnswer::Service { .. } => (ev::AutoReplySource::DirectoryService, "directory_service"),
        AutoAnswer::Category { .. } => {
            (ev::AutoReplySource::DirectoryCategory, "directory_category")
        }
    };
    let mut event = ev::AutoReplied {
        header: Some(ev::EventHeader {
            event_id: event_id.clone(),
            account: account.to_string(),
            occurred_at: Some(super::outbox::timestamp(at)),
        }),
        openid: openid.to_string(),
        source: source as i32,
        inbound_event_id: inbound_event_id.to_owned(),
        answered: answered as i32,
        ..Default::default()
    };
    match answer {
        AutoAnswer::Rule { rule_id, matched } => {
            event.rule_id = rule_id.to_string();
            event.matched = matched.clone();
        }
        AutoAnswer::Service {
            service_id,
            category,
            matched,
            ..
        } => {
            event.service_id = service_id.to_string();
            event.category = category.clone();
            event.matched = matched.clone();
        }
        AutoAnswer::Category { category, key } => {
            event.category = category.clone();
            event.matched = key.clone();
        }
    }
    let subject = format!("interaction.{account}.autoreply.{kind}");
    let payload = prost::Message::encode_to_vec(&event);
    outbox::enqueue(
        tx,
        OutboxEvent {
            subject: &subject,
            event_id: &event_id,
            payload: &payload,
        },
    )
    .await
    .map(drop)
}
