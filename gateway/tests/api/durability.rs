//! While JetStream cannot take a callback, WeChat gets no answer inside its deadline
//! (so it redelivers), and the redelivery is accepted once NATS is back.

use std::time::{Duration, Instant};

use platform::testing::ChaosProxy;

use crate::helpers::{Options, spawn_app_with};
use crate::samples;

#[tokio::test]
async fn with_nats_down_there_is_no_answer_inside_the_deadline_and_the_retry_is_accepted_later() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let xml = samples::text("oOutage", 99, "停水了");

    proxy.cut();
    app.wait_ready(false, Duration::from_secs(5)).await;
    let started = Instant::now();
    // A safe-mode account: a plaintext one would be held at its replay check (the
    // ledger is on the same NATS), before the publish this test is about.
    let (status, _) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "answered after {:?}, inside WeChat's deadline",
        started.elapsed()
    );
    assert_eq!(status, 503);
    assert!(app.stored().await.is_empty(), "nothing acknowledged");
    let not_durable = app
        .metric(
            "gateway_callbacks_total",
            &[("account", &app.safe.id), ("outcome", "not_durable")],
        )
        .await;
    assert_eq!(not_durable, 1.0);
    assert!(app.metric("gateway_publish_retries_total", &[]).await >= 1.0);

    proxy.restore();
    app.wait_ready(true, Duration::from_secs(15)).await;
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1, "stored exactly once");
    assert_eq!(stored[0].1, format!("{}:oOutage:99", app.safe.id));
}

#[tokio::test]
async fn a_publish_stored_though_its_pub_ack_came_late_counts_as_accepted_not_as_a_retry() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![("CALLBACK_DEADLINE", "4s"), ("PUBLISH_DEADLINE", "3s")],
        ..Options::default()
    })
    .await;
    let xml = samples::text("oSlowAck", 7, "路灯坏了");

    // The link stalls: the first PUB is held, its PubAck does not come within the
    // attempt's timeout and the gateway publishes again. Both then reach JetStream,
    // which stores the first and calls the second a duplicate.
    proxy.blackhole();
    // Safe mode: a plaintext callback's replay check would stall on the link first.
    let callback = app.safe.encrypted_callback(&xml);
    let release = async {
        while app.metric("gateway_publish_retries_total", &[]).await < 1.0 {
            tokio::task::yield_now().await;
        }
        proxy.restore();
    };
    let ((status, body), ()) = tokio::join!(app.post_text(&app.safe.id, &callback), release);
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(app.stored().await.len(), 1, "stored once");
    let account = ("account", app.safe.id.as_str());
    let accepted = app
        .metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "accepted")],
        )
        .await;
    let duplicate = app
        .metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "duplicate")],
        )
        .await;
    assert_eq!(accepted, 1.0, "the gateway's own repeat");
    assert_eq!(duplicate, 0.0, "no retry from WeChat");
}
