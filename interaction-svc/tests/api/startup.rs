use std::time::Duration;

use interaction_svc::Config;
use platform::Env;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::spawn_app;

#[tokio::test]
async fn service_reports_ready_on_admin_port_and_grpc_health() {
    let app = spawn_app().await;
    let ready = http_get(app.admin_port, "/readyz").await;
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);

    let channel =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", app.grpc_port))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    assert_eq!(http_get(app.admin_port, "/metrics").await.status(), 200);
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("drains in time");
}

#[test]
fn configuration_errors_name_the_variable() {
    let error = Config::from_env(&Env::from_pairs([("GRPC_ADDR", "localhost")])).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("GRPC_ADDR=\"localhost\" is invalid"),
        "{error}"
    );
    let error =
        Config::from_env(&Env::from_pairs([("API_KEYS", "ops:root:abcdefgh1234")])).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("API_KEYS is invalid: entry 1: unknown role"),
        "{error}"
    );
    assert!(!error.to_string().contains("abcdefgh1234"));
    let defaults = Config::from_env(&Env::default()).unwrap();
    assert_eq!(defaults.service.grpc_addr.port(), 50051);
    assert_eq!(defaults.service.common.admin_addr.port(), 9081);
    assert_eq!(defaults.service.db.database(), "interaction");
}

async fn http_get(port: u16, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("admin port answers")
}

#[tokio::test]
async fn reflection_lists_only_what_this_port_serves_in_both_protocol_versions() {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = spawn_app().await;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", app.grpc_port))
            .unwrap()
            .connect()
            .await
            .unwrap();

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"interaction.v1.InteractionService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("content.") || n.starts_with("stats.")),
        "{names:?}"
    );

    // grpcurl before 1.8.8 speaks only v1alpha.
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "interaction.v1.InteractionService".to_owned(),
            ),
        ),
    };
    let mut responses = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap().message_response;
    assert!(
        matches!(response, Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{response:?}"
    );
}

#[tokio::test]
async fn migrations_give_the_outbox_and_processed_events_the_platform_shape() {
    let app = spawn_app().await;
    platform::testing::assert_backbone_schema(&app.db).await;
    app.stop().await;
}
