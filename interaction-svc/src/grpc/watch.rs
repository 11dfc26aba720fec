//! `WatchQueue`: a department's queue as a stream of changes.
//!
//! Every replica's outbox relay publishes `TicketChanged` to JetStream; a core NATS
//! subscription sees those publishes too, so a watcher needs no consumer of its own
//! and costs the stream nothing. The ticket is re-read from the database for each
//! event, so the watcher always gets its current state.
//!
//! A watcher that stops reading must cost the service nothing more than its buffer:
//! a task of its own reads NATS and the database (so no connection is ever held
//! while the client's HTTP/2 window is shut) and hands events to a bounded buffer;
//! when the buffer is full, the watch ends with `RESOURCE_EXHAUSTED` once the client
//! has read what was buffered, and its subscription is gone at once. A key holds at
//! most a few watches at a time.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use platform::Drain;
use platform::nats::Namespace;
use prost::Message;
use proto::events::v1::{TicketChangeKind, TicketChanged};
use proto::interaction::v1 as pb;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
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
}

/// Which queue a watch follows: one department's, or every one (admins).
#[derive(Debug, Clone)]
pub struct Watched {
    pub department: Option<String>,
    /// The accounts the caller's key reaches; `None`: every account.
    pub accounts: Option<Vec<String>>,
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

impl QueueWatch {
    /// Subscribes (and waits until the server has the subscription, so no event
    /// published after this returns is missed) and returns the stream of events.
    /// `key` is the caller's key fingerprint, for the per-key limit.
    pub async fn watch(&self, watched: Watched, key: &str) -> Result<QueueStream, GrpcError> {
        let slot = self.take_slot(key)?;
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
        tracing::info!(department = ?watched.department, key, "queue watch started");
        let (events_tx, events_rx) = mpsc::channel(self.limits.buffer.max(1));
        let (ended_tx, ended_rx) = oneshot::channel::<Status>();
        let db = self.db.clone();
        let escalation = self.escalation_department.clone();
        let buffer = self.limits.buffer;
        let stopped = self.drain.stopping().clone().cancelled_owned();
        let mut messages = Box::pin(subscriber.take_until(stopped));
        tokio::spawn(async move {
            loop {
                // A client that went away frees its subscription at once, not at
                // the next event.
                let message = tokio::select! {
                    _ = events_tx.closed() => return,
                    message = messages.next() => message,
                };
                let Some(message) = message else { return };
                let Some(event) = queue_event(&db, &watched, &escalation, &message.payload).await
                else {
                    continue;
                };
                let failed = event.is_err();
                match events_tx.try_send(event) {
                    Ok(()) if !failed => {}
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics::counter!("queue_watch_dropped_total", "reason" => "slow_reader")
                            .increment(1);
                        tracing::warn!(buffer, "slow queue watcher dropped");
                        let _ = ended_tx.send(Status::resource_exhausted(format!(
                            "queue watch ended: more than {buffer} events were left unread; \
                             read faster, then watch again and list the queue to catch up"
                        )));
                        return;
                    }
                }
            }
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
        Ok(Box::pin(stream))
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
/// now is; `None` when it does not concern the watch. The connection is returned to
/// the pool before this returns.
async fn queue_event(
    db: &PgPool,
    watched: &Watched,
    escalation: &str,
    payload: &[u8],
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
            ticket: Some(convert::ticket(row)),
        })),
        Ok(None) => None,
        // Ending the stream with an error lets the client re-watch (and
        // re-list) rather than silently miss an event.
        Err(error) => Some(Err(Status::from(GrpcError::Database(error)))),
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
