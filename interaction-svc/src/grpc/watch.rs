//! `WatchQueue`: a department's queue as a stream of changes.
//!
//! Every replica's outbox relay publishes `TicketChanged` to JetStream; a core NATS
//! subscription sees those publishes too, so a watcher needs no consumer of its own
//! and costs the stream nothing. The ticket is re-read from the database for each
//! event, so the watcher always gets its current state.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use platform::Drain;
use platform::nats::Namespace;
use prost::Message;
use proto::events::v1::{TicketChangeKind, TicketChanged};
use proto::interaction::v1 as pb;
use sqlx::PgPool;
use tonic::Status;

use super::GrpcError;
use super::convert;
use crate::domain::TicketId;
use crate::store::tickets;

/// The stream a `WatchQueue` call returns.
pub type QueueStream = Pin<Box<dyn Stream<Item = Result<pb::QueueEvent, Status>> + Send>>;

/// What a queue watch needs: NATS, the database, and the drain that ends every
/// watch when the service stops (so an open stream never holds up a shutdown).
#[derive(Clone)]
pub struct QueueWatch {
    pub nats: async_nats::Client,
    pub namespace: Namespace,
    pub db: PgPool,
    pub drain: Drain,
    /// The supervision office (督办), which also sees `overdue` events of every department.
    pub escalation_department: String,
}

/// Which queue a watch follows: one department's, or every one (admins).
#[derive(Debug, Clone)]
pub struct Watched {
    pub department: Option<String>,
    /// The accounts the caller's key reaches; `None`: every account.
    pub accounts: Option<Vec<String>>,
}

impl QueueWatch {
    /// Subscribes (and waits until the server has the subscription, so no event
    /// published after this returns is missed) and returns the stream of events.
    pub async fn watch(&self, watched: Watched) -> Result<QueueStream, GrpcError> {
        let subject = self.namespace.subject("interaction.*.ticket.>");
        let subscriber = self
            .nats
            .subscribe(subject)
            .await
            .map_err(|e| GrpcError::Watch(e.to_string()))?;
        self.nats
            .flush()
            .await
            .map_err(|e| GrpcError::Watch(e.to_string()))?;
        tracing::info!(department = ?watched.department, "queue watch started");
        let db = self.db.clone();
        let escalation = self.escalation_department.clone();
        let stopped = self.drain.stopping().clone().cancelled_owned();
        let events = subscriber.take_until(stopped).filter_map(move |message| {
            let db = db.clone();
            let watched = watched.clone();
            let escalation = escalation.clone();
            async move {
                let event = match TicketChanged::decode(message.payload) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!(%error, "undecodable TicketChanged skipped");
                        return None;
                    }
                };
                if !concerns(&event, &watched, &escalation) {
                    return None;
                }
                let kind = convert::queue_kind(event.kind())?;
                let id = TicketId::parse(&event.ticket_id).ok()?;
                match tickets::get(&db, id).await {
                    Ok(Some(row)) => Some(Ok(pb::QueueEvent {
                        kind: kind as i32,
                        ticket: Some(convert::ticket(row)),
                    })),
                    Ok(None) => None,
                    // Ending the stream with an error lets the client re-watch (and
                    // re-list) rather than silently miss an event.
                    Err(error) => Some(Err(Status::from(GrpcError::Database(error)))),
                }
            }
        });
        Ok(Box::pin(events))
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
}
