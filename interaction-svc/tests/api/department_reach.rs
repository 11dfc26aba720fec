//! Which departments a queue request may name: one the install has, at a position
//! the database can hold.

use proto::interaction::v1::ListTicketsRequest;
use tonic::Code;

use crate::helpers::{ADMIN_KEY, spawn_app};

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
