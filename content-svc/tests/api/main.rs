//! content-svc's API against real PostgreSQL and NATS: one binary, a fresh
//! database and namespace per test.

mod helpers;

use helpers::{ADMIN_KEY, EDITOR_KEY, Entry, VIEWER_KEY, authed, spawn_app};
use proto::content::v1::{ListServicesRequest, ServiceEntry};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn list(account: &str, category: &str) -> ListServicesRequest {
    ListServicesRequest {
        account: account.to_owned(),
        category: category.to_owned(),
    }
}

fn names(services: &[ServiceEntry]) -> Vec<&str> {
    services.iter().map(|s| s.name.as_str()).collect()
}

async fn arrange_directory(app: &helpers::TestApp) {
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

#[tokio::test]
async fn the_service_is_ready_and_serving_after_build() {
    let app = spawn_app().await;

    let readyz = reqwest::get(format!("http://127.0.0.1:{}/readyz", app.admin_port))
        .await
        .expect("admin port answers");
    assert_eq!(readyz.status(), 200);

    let health = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health service answers")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    app.stop().await;
}
