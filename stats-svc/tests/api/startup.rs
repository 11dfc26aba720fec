//! The service's lifecycle: it stops pulling and drains well within the grace period.

use std::time::{Duration, Instant};

use crate::helpers::{T0, spawn_app, text_message};

#[tokio::test]
async fn shutdown_stops_the_consumer_and_drains_well_within_the_grace_period() {
    let mut app = spawn_app().await;
    app.publish(&text_message("chenzhou", "chenzhou:o1:1001", T0))
        .await;
    app.wait_for_overview("chenzhou", |o| o.messages == 1).await;

    let started = Instant::now();
    let server = app.begin_shutdown();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("run_until_stopped returns after the shutdown fires");

    result
        .expect("server task did not panic")
        .expect("clean stop");
    // The test drain deadline is 5 s: returning well before it means the consumer
    // loop saw the drain and ended, rather than being cut off.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "drain took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn migrations_give_the_outbox_and_processed_events_the_platform_shape() {
    let app = spawn_app().await;
    let db = app.db().await;
    platform::testing::assert_backbone_schema(&db).await;
    db.close().await;
    app.stop().await;
}
