//! Which departments a queue request may name: one the install has, at a position
//! the database can hold.

use proto::interaction::v1::{
    AssignTicketRequest, GetTicketRequest, ListTicketsRequest, RoutingRule,
};
use tonic::Code;

use crate::helpers::{
    ADMIN_KEY, COUNTY, COUNTY_ADMIN_KEY, COUNTY_AGENT_KEY, new_routing_rule, spawn_app,
};

#[tokio::test]
async fn a_page_token_from_before_4713_bc_is_an_invalid_argument() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let listed = admin
        .list_tickets(ListTicketsRequest {
            page_token: format!("-300000000000000000_{}", uuid::Uuid::nil()),
            ..Default::default()
        })
        .await;

    let status = listed.expect_err("an impossible position is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn an_admin_listing_an_unknown_department_is_told_so_not_given_an_empty_queue() {
    let app = spawn_app().await;
    app.insert_ticket("transport", "open", 5).await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;

    let listed = admin
        .list_tickets(ListTicketsRequest {
            department: "trasnport".into(),
            ..Default::default()
        })
        .await;

    let status = listed.expect_err("a department the install lacks is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("trasnport"), "{status:?}");
}

#[tokio::test]
async fn a_county_ticket_cannot_be_sent_to_a_department_that_only_reaches_the_city() {
    let app = spawn_app().await;
    let id = app.insert_ticket("social-security", "open", 5).await;
    sqlx::query("UPDATE tickets SET account = $2 WHERE id = $1")
        .bind(id)
        .bind(COUNTY)
        .execute(&app.db)
        .await
        .unwrap();
    let mut county = app.client(Some(COUNTY_AGENT_KEY)).await;

    let moved = county
        .assign_ticket(AssignTicketRequest {
            id: id.to_string(),
            department: "transport-city".into(),
            ..Default::default()
        })
        .await;

    let status = moved.expect_err("nobody at transport-city could see the ticket");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("transport-city"), "{status:?}");
    let still = county
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .expect("the ticket stays in the county's queue")
        .into_inner();
    assert_eq!(still.department, "social-security");
    // A department whose keys reach every account still takes it.
    county
        .assign_ticket(AssignTicketRequest {
            id: id.to_string(),
            department: "transport".into(),
            ..Default::default()
        })
        .await
        .expect("transport reaches the county");
}

#[tokio::test]
async fn a_county_routing_rule_cannot_route_to_a_city_only_department() {
    let app = spawn_app().await;
    let mut county_admin = app.client(Some(COUNTY_ADMIN_KEY)).await;

    let created = county_admin
        .create_routing_rule(new_routing_rule(RoutingRule {
            account: COUNTY.into(),
            department: "transport-city".into(),
            keywords: vec!["公交".into()],
            category: "交通".into(),
            ..Default::default()
        }))
        .await;

    let status = created.expect_err("the rule would strand every matching ticket");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("transport-city"), "{status:?}");
}
