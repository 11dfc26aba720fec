use proto::interaction::v1::{GetTicketRequest, ListTicketsRequest, TicketState};
use tonic::Code;

use crate::helpers::{ADMIN_KEY, EDITOR_KEY, SOCIAL_AGENT_KEY, TRANSPORT_AGENT_KEY, spawn_app};

#[tokio::test]
async fn a_department_lists_only_its_own_queue_newest_first() {
    let app = spawn_app().await;
    let older = app.insert_ticket("social-security", "open", 30).await;
    let newer = app
        .insert_ticket("social-security", "acknowledged", 5)
        .await;
    app.insert_ticket("transport", "open", 1).await;

    let tickets = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let ids: Vec<String> = tickets.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, vec![newer.to_string(), older.to_string()]);
    assert!(tickets.iter().all(|t| t.department == "social-security"));
    assert_eq!(tickets[0].state, TicketState::Acknowledged as i32);
    assert_eq!(tickets[1].summary, "路灯不亮");
}

#[tokio::test]
async fn another_departments_queue_is_refused_and_its_tickets_are_invisible() {
    let app = spawn_app().await;
    let transport_ticket = app.insert_ticket("transport", "open", 1).await;
    let mut social = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let refused = social
        .list_tickets(ListTicketsRequest {
            department: "transport".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused
            .message()
            .contains("may not act for department transport"),
        "{}",
        refused.message()
    );

    let hidden = social
        .get_ticket(GetTicketRequest {
            id: transport_ticket.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let seen = app
        .client(Some(TRANSPORT_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest {
            id: transport_ticket.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.department, "transport");
}

#[tokio::test]
async fn an_admin_sees_every_department_and_can_filter_by_state() {
    let app = spawn_app().await;
    app.insert_ticket("social-security", "open", 3).await;
    app.insert_ticket("transport", "closed", 2).await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    let all = admin
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(all.len(), 2);
    let closed = admin
        .list_tickets(ListTicketsRequest {
            states: vec![TicketState::Closed as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].department, "transport");
}

#[tokio::test]
async fn pages_follow_the_token_until_the_queue_ends() {
    let app = spawn_app().await;
    for minutes in 1..=5 {
        app.insert_ticket("social-security", "open", minutes).await;
    }
    let mut client = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tickets(ListTicketsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.tickets.len() <= 2);
        seen.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no ticket appears twice across pages");
}

#[tokio::test]
async fn invalid_requests_are_rejected_with_precise_statuses() {
    let app = spawn_app().await;
    let mut client = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let cases = [
        (
            ListTicketsRequest {
                page_size: 500,
                ..Default::default()
            },
            "page_size must be at most 200",
        ),
        (
            ListTicketsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token is malformed",
        ),
        (
            ListTicketsRequest {
                states: vec![42],
                ..Default::default()
            },
            "unknown ticket state 42",
        ),
    ];
    for (request, message) in cases {
        let status = client.list_tickets(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), message);
    }
    let status = client
        .get_ticket(GetTicketRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn missing_unknown_or_underprivileged_keys_are_refused() {
    let app = spawn_app().await;
    let missing = app
        .client(None)
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let unknown = app
        .client(Some("not-a-real-key-123"))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let editor = app
        .client(Some(EDITOR_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(editor.code(), Code::PermissionDenied);
}
