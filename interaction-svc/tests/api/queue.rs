//! `WatchQueue`: departments see their queue change as it happens.

use std::time::Duration;

use platform::testing::ChaosProxy;
use prost::Message;
use proto::events::v1::{
    EventHeader, TicketChangeKind, TicketChanged, TicketState as EventTicketState,
};
use proto::interaction::v1::interaction_service_client::InteractionServiceClient;
use proto::interaction::v1::{
    AssignTicketRequest, ListTicketsRequest, QueueEvent, QueueEventKind, WatchQueueRequest,
};
use tonic::{Code, Status, Streaming};

use crate::helpers::{
    ADMIN_KEY, SOCIAL_AGENT_KEY, TRANSPORT_AGENT_KEY, TestApp, spawn_app, spawn_app_with,
};

pub(crate) async fn watch(
    app: &TestApp,
    key: &'static str,
    department: &str,
) -> Streaming<QueueEvent> {
    app.client(Some(key))
        .await
        .watch_queue(WatchQueueRequest {
            department: department.into(),
            ..Default::default()
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
            ..Default::default()
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

    // Not a clean end: changes made while the service is away would go unseen, so
    // the desk program is told to watch again (another replica) and re-list.
    let ended = ends_with(&mut social).await;
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"), "{ended:?}");
    assert!(ended.message().contains("watch again"), "{ended:?}");
}

/// The status `stream` ends with, after any events still buffered, within 10 s.
async fn ends_with(stream: &mut Streaming<QueueEvent>) -> Status {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => panic!("the watch is still open after 10 s"),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("the watch ended with OK, as if nothing was missed"),
            Ok(Err(status)) => return status,
        }
    }
}

#[tokio::test]
async fn a_watch_ends_unavailable_when_the_service_loses_nats_and_a_new_watch_catches_up() {
    let nats = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(&[("NATS_URL", nats.url())]).await;
    let mut social = watch(&app, SOCIAL_AGENT_KEY, "").await;

    // The service's NATS connection drops: whatever is published until it is back
    // never reaches the subscription, so the watch must not look healthy.
    nats.cut();
    let ended = ends_with(&mut social).await;
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("watch again"), "{ended:?}");
    assert!(ended.message().contains("ListTickets"), "{ended:?}");

    // A ticket opened in the gap is found by listing, and a new watch goes on.
    let missed = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, missed, "social-security").await;
    nats.restore();
    let mut again = watch_when_connected(&app, SOCIAL_AGENT_KEY).await;
    let listed = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tickets.iter().any(|t| t.id == missed.to_string()));
    let id = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, id, "social-security").await;
    // The relay may publish the one from the gap first.
    loop {
        let event = next(&mut again).await;
        if event.ticket.unwrap().id == id.to_string() {
            break;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_watch_ends_unavailable_after_a_nats_blip_the_client_recovered_from() {
    let nats = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(&[("NATS_URL", nats.url())]).await;
    let mut social = watch(&app, SOCIAL_AGENT_KEY, "").await;
    let connections = nats.accepted_connections();

    // Cut and back at once: async-nats reconnects and re-subscribes silently, and
    // the connection may never be seen down, but what was published meanwhile is lost.
    nats.cut();
    nats.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while nats.accepted_connections() == connections {
        assert!(tokio::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended = ends_with(&mut social).await;
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    app.stop().await;
}

/// A watch started once the service's NATS link is back (refused UNAVAILABLE
/// before that).
async fn watch_when_connected(app: &TestApp, key: &'static str) -> Streaming<QueueEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let started = app
            .client(Some(key))
            .await
            .watch_queue(WatchQueueRequest::default())
            .await;
        match started {
            Ok(stream) => return stream.into_inner(),
            Err(status) if status.code() == Code::Unavailable => {
                assert!(tokio::time::Instant::now() < deadline, "{status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
}

#[tokio::test]
async fn an_admins_watch_of_an_unknown_department_is_refused() {
    let app = spawn_app().await;
    let refused = app
        .client(Some(ADMIN_KEY))
        .await
        .watch_queue(WatchQueueRequest {
            department: "social-securty".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("social-securty"), "{refused:?}");
    // A department the install has is watched as before.
    watch(&app, ADMIN_KEY, "social-security").await;
}

#[tokio::test]
async fn a_key_removed_or_narrowed_in_the_key_file_ends_its_open_watches() {
    let file = std::env::temp_dir().join(format!("interaction-keys-{}", uuid::Uuid::new_v4()));
    let admin = format!("city-office:admin:{ADMIN_KEY}");
    let social = format!("social-security:agent:{SOCIAL_AGENT_KEY}");
    let transport = format!("transport:agent:{TRANSPORT_AGENT_KEY}");
    std::fs::write(&file, [&*admin, &*social, &*transport].join("\n")).unwrap();
    let app = spawn_app_with(&[
        ("API_KEYS", ""),
        ("API_KEYS_FILE", file.to_str().unwrap()),
        ("API_KEYS_RELOAD_INTERVAL", "50ms"),
    ])
    .await;
    let mut removed = watch(&app, SOCIAL_AGENT_KEY, "").await;
    let mut narrowed = watch(&app, TRANSPORT_AGENT_KEY, "").await;
    let mut kept = watch(&app, ADMIN_KEY, "").await;

    // The social desk's key is revoked, and transport's now reaches the county only.
    let county_transport = format!("transport@yizhang:agent:{TRANSPORT_AGENT_KEY}");
    std::fs::write(&file, [&*admin, &*county_transport].join("\n")).unwrap();

    let ended = ends_with(&mut removed).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("removed"), "{ended:?}");
    let ended = ends_with(&mut narrowed).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("changed"), "{ended:?}");

    // A key the reload left as it was keeps its watch.
    let id = app.insert_ticket("social-security", "open", 0).await;
    announce_opened(&app, id, "social-security").await;
    assert_eq!(next(&mut kept).await.ticket.unwrap().id, id.to_string());
    let _ = std::fs::remove_file(&file);
    app.stop().await;
}

#[tokio::test]
async fn a_watch_whose_client_vanished_frees_its_keys_slot() {
    let app = spawn_app_with(&[
        ("WATCH_STREAMS_PER_KEY", "1"),
        ("GRPC_KEEPALIVE_INTERVAL", "200ms"),
        ("GRPC_KEEPALIVE_TIMEOUT", "300ms"),
    ])
    .await;
    // The desk's PC goes away without closing its connection: nothing more crosses
    // the link, not even a reset.
    let link = ChaosProxy::start(&format!("127.0.0.1:{}", app.grpc_port)).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", link.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(WatchQueueRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {SOCIAL_AGENT_KEY}").parse().unwrap(),
    );
    let _vanished = InteractionServiceClient::new(channel)
        .watch_queue(request)
        .await
        .expect("watch starts")
        .into_inner();
    let held = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .watch_queue(WatchQueueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(held.code(), Code::ResourceExhausted, "{held:?}");
    link.blackhole();

    // The server's PING goes unanswered, it closes the connection, and the key's
    // one watch is the desk's to take again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = app
            .client(Some(SOCIAL_AGENT_KEY))
            .await
            .watch_queue(WatchQueueRequest::default())
            .await;
        match again {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the vanished client still holds the key's watch"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    app.stop().await;
}
