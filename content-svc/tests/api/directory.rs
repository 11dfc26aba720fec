//! `ListServices`: an account's convenience-service directory, in display order,
//! and the request fields it refuses.

use proto::content::v1::ServiceEntry;
use tonic::Code;

use crate::helpers::{
    ADMIN_KEY, COUNTY_KEY, EDITOR_KEY, Entry, TestApp, VIEWER_KEY, authed, list, spawn_app,
};

fn names(services: &[ServiceEntry]) -> Vec<&str> {
    services.iter().map(|s| s.name.as_str()).collect()
}

async fn arrange_directory(app: &TestApp) {
    // Inserted out of order on purpose; positions tie in transport so the name decides.
    for entry in [
        Entry {
            account: "chenzhou",
            category: "transport",
            name: "Bus routes",
            department: "transport",
            position: 2,
        },
        Entry {
            account: "chenzhou",
            category: "social_security",
            name: "社保查询",
            department: "hrss",
            position: 1,
        },
        Entry {
            account: "chenzhou",
            category: "transport",
            name: "Airport shuttle",
            department: "transport",
            position: 2,
        },
        Entry {
            account: "chenzhou",
            category: "medical_insurance",
            name: "医保缴费",
            department: "healthcare",
            position: 1,
        },
        Entry {
            account: "chenzhou",
            category: "transport",
            name: "Parking",
            department: "transport",
            position: 1,
        },
        Entry {
            account: "guiyang",
            category: "transport",
            name: "Other city",
            department: "transport",
            position: 0,
        },
    ] {
        app.insert_entry(entry).await;
    }
}

#[tokio::test]
async fn list_services_returns_an_accounts_directory_ordered_by_category_position_and_name() {
    let app = spawn_app().await;
    arrange_directory(&app).await;

    let response = app
        .client
        .clone()
        .list_services(authed(list("chenzhou", ""), VIEWER_KEY))
        .await
        .expect("a viewer may list")
        .into_inner();

    assert_eq!(
        names(&response.services),
        [
            "医保缴费",
            "社保查询",
            "Parking",
            "Airport shuttle",
            "Bus routes"
        ]
    );
    let first = &response.services[0];
    assert_eq!(first.account, "chenzhou");
    assert_eq!(first.category, "medical_insurance");
    assert_eq!(first.department, "healthcare");
    assert_eq!(first.url, "https://example.gov.cn/医保缴费");
    assert_eq!(first.description, "医保缴费 online");
    assert!(uuid::Uuid::parse_str(&first.id).is_ok());
    app.stop().await;
}

#[tokio::test]
async fn list_services_filters_by_category() {
    let app = spawn_app().await;
    arrange_directory(&app).await;

    let response = app
        .client
        .clone()
        .list_services(authed(list("chenzhou", "transport"), EDITOR_KEY))
        .await
        .expect("an editor may list")
        .into_inner();

    assert_eq!(
        names(&response.services),
        ["Parking", "Airport shuttle", "Bus routes"]
    );
    assert!(response.services.iter().all(|s| s.category == "transport"));
    app.stop().await;
}

#[tokio::test]
async fn an_account_without_entries_lists_nothing() {
    let app = spawn_app().await;
    arrange_directory(&app).await;

    let response = app
        .client
        .clone()
        .list_services(authed(list("nowhere", ""), ADMIN_KEY))
        .await
        .expect("an admin may list")
        .into_inner();

    assert!(response.services.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_empty_account_is_an_invalid_argument_naming_the_field() {
    let app = spawn_app().await;

    let status = app
        .client
        .clone()
        .list_services(authed(list("", "transport"), VIEWER_KEY))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("account"), "{}", status.message());
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_category_is_an_invalid_argument_naming_the_field() {
    let app = spawn_app().await;

    let status = app
        .client
        .clone()
        .list_services(authed(list("chenzhou", "Social-Security"), VIEWER_KEY))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("category"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_county_key_cannot_list_the_citys_directory() {
    let app = spawn_app().await;
    arrange_directory(&app).await;

    let status = app
        .client
        .clone()
        .list_services(authed(list("chenzhou", ""), COUNTY_KEY))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let own = app
        .client
        .clone()
        .list_services(authed(list("yizhang", ""), COUNTY_KEY))
        .await
        .expect("the county's own directory")
        .into_inner();
    assert!(own.services.is_empty());
    app.stop().await;
}
