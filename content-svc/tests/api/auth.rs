//! Callers are authenticated by API key before any handler runs.

use tonic::Code;

use crate::helpers::{authed, list, spawn_app};

#[tokio::test]
async fn a_call_without_an_api_key_is_unauthenticated() {
    let app = spawn_app().await;

    let status = app
        .client
        .clone()
        .list_services(list("chenzhou", ""))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn a_call_with_an_unknown_api_key_is_unauthenticated() {
    let app = spawn_app().await;

    let status = app
        .client
        .clone()
        .list_services(authed(list("chenzhou", ""), "not-a-configured-key"))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "unknown api key");
    app.stop().await;
}
