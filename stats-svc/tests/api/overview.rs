//! `GetAccountOverview`: who may read it and the request fields it refuses.

use tonic::Code;

use crate::helpers::{ADMIN_KEY, COUNTY_KEY, EDITOR_KEY, VIEWER_KEY, spawn_app};

#[tokio::test]
async fn viewers_and_admins_may_read_an_overview() {
    let app = spawn_app().await;

    for key in [VIEWER_KEY, ADMIN_KEY] {
        let overview = app.overview("chenzhou", key).await;
        assert!(overview.is_ok(), "{key}: {overview:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_editor_without_the_viewer_role_is_permission_denied() {
    let app = spawn_app().await;

    let status = app.overview("chenzhou", EDITOR_KEY).await.unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("viewer"), "{}", status.message());
    app.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_api_keys_are_unauthenticated() {
    let app = spawn_app().await;

    let missing = app
        .client
        .clone()
        .get_account_overview(proto::stats::v1::GetAccountOverviewRequest {
            account: "chenzhou".to_owned(),
        })
        .await
        .unwrap_err();
    let unknown = app
        .overview("chenzhou", "not-a-configured-key")
        .await
        .unwrap_err();

    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(unknown.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn an_empty_account_is_an_invalid_argument_naming_the_field() {
    let app = spawn_app().await;

    let status = app.overview("", VIEWER_KEY).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("account"), "{}", status.message());
    app.stop().await;
}

#[tokio::test]
async fn a_county_key_cannot_read_the_citys_overview() {
    let app = spawn_app().await;

    let status = app.overview("chenzhou", COUNTY_KEY).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(app.overview("yizhang", COUNTY_KEY).await.is_ok());
    app.stop().await;
}
