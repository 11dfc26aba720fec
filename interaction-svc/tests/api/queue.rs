//! `WatchQueue`: departments see their queue change as it happens.

use std::time::Duration;

use prost::Message;
use proto::events::v1::{
    EventHeader, TicketChangeKind, TicketChanged, TicketState as EventTicketState,
};
use proto::interaction::v1::{AssignTicketRequest, QueueEvent, QueueEventKind, WatchQueueRequest};
use tonic::{Code, Streaming};

use crate::helpers::{ADMIN_KEY, SOCIAL_AGENT_KEY, TRANSPORT_AGENT_KEY, TestApp, spawn_app};

pub(crate) async fn watch(
    app: &TestApp,
    key: &'static str,
    department: &str,
) -> Streaming<QueueEvent> {
    app.client(Some(key))
        .await
        .watch_queue(WatchQueueRequest {
            department: department.into(),
        })
        .await
        .expect("watch starts")
        .into_inner()
}

/// Announces a new ticket the way the inbound consumer does: a `TicketChanged` in the
/// outbox, which the relay publishes to the INTERACTION stream.
pub(crate) async fn announce_opened(app: &TestApp, id: uuid::Uuid, department: &str) {
    let event_id = format!("test:opened:{id}");
    let event = TicketChanged {
        header: Some(EventHeader {
            event_id: event_id.clone(),
            account: "chenzhou".into(),
            occurred_at: None,
        }),
        kind: TicketChangeKind::Opened as i32,
        ticket_id: id.to_string(),
        department: department.into(),
        state: EventTicketState::Open as i32,
        ..Default::default()
    };
    sqlx::query("INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)")
        .bind(event_id)
        .bind("interaction.chenzhou.ticket.opened")
        .bind(event.encode_to_vec())
        .execute(&app.db)
        .await
        .unwrap();
}

pub(crate) async fn next(stream: &mut Streaming<QueueEvent>) -> QueueEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s")
        .expect("stream healthy")
        .expect("stream open")
}

async fn nothing_within(stream: &mut Streaming<QueueEvent>, wait: Duration) {
    if let Ok(event) = tokio::time::timeout(wait, stream.message()).await {
        panic!("expected no event, got {event:?}");
    }
}

#[tokio::test]
async fn a_department_sees_new_and_reassigned_tickets_and_not_other_departments() {
    let app = spawn_app().await;
    let mut social = watch(&app, SOCIAL_AGENT_KEY, "").await;
    let mut transport = watch(&app, TRANSPORT_AGENT_KEY, "").await;

    let id = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, id, "social-security").await;

    let opened = next(&mut social).await;
    assert_eq!(opened.kind, QueueEventKind::Opened as i32);
    let ticket = opened.ticket.unwrap();
    assert_eq!(ticket.id, id.to_string());
    assert_eq!(ticket.summary, "路灯不亮");
    nothing_within(&mut transport, Duration::from_millis(300)).await;

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .assign_ticket(AssignTicketRequest {
            id: id.to_string(),
            department: "transport".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let assigned = next(&mut transport).await;
    assert_eq!(assigned.kind, QueueEventKind::Assigned as i32);
    assert_eq!(assigned.ticket.unwrap().department, "transport");
    // The old queue hears of it too, so its view can drop the ticket.
    let moved_away = next(&mut social).await;
    assert_eq!(moved_away.kind, QueueEventKind::Assigned as i32);
}

#[tokio::test]
async fn an_admin_watches_every_department() {
    let app = spawn_app().await;
    let mut all = watch(&app, ADMIN_KEY, "").await;
    let id = app.insert_ticket("transport", "open", 0).await;

    announce_opened(&app, id, "transport").await;

    let event = next(&mut all).await;
    assert_eq!(event.ticket.unwrap().department, "transport");
}

#[tokio::test]
async fn a_department_cannot_watch_another_departments_queue() {
    let app = spawn_app().await;
    let refused = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .watch_queue(WatchQueueRequest {
            department: "transport".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_open_watch_ends_when_the_service_shuts_down() {
    let app = spawn_app().await;
    let mut social = watch(&app, SOCIAL_AGENT_KEY, "").await;

    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the drain is not held up by the open stream");

    let end = tokio::time::timeout(Duration::from_secs(5), social.message())
        .await
        .expect("the stream ends");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}
