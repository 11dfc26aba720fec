//! A built service is ready: the admin port's `/readyz` and gRPC health agree.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::spawn_app;

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

#[tokio::test]
async fn migrations_give_the_outbox_and_processed_events_the_platform_shape() {
    let app = spawn_app().await;
    platform::testing::assert_backbone_schema(&app.db).await;
    app.stop().await;
}
