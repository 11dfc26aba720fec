//! What the gateway's own binary logs at the default level: no citizen's openid.

use std::time::Duration;

use platform::testing::ChaosProxy;

use crate::helpers::{Options, spawn_process_with};
use crate::samples;

#[tokio::test]
async fn a_callback_not_made_durable_is_logged_without_the_citizens_openid() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let mut app = spawn_process_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let openid = "oCitizenOutage7";
    proxy.cut();
    app.gateway.wait_unready(Duration::from_secs(10)).await;

    let xml = samples::text(openid, 4242, "停水了");
    let (status, _) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
        .await;

    assert_eq!(status, 503);
    let output = app.stop().await;
    assert!(
        output.contains("publish not acknowledged before the deadline"),
        "the outage is logged:\n{output}"
    );
    assert!(!output.contains(openid), "the openid is logged:\n{output}");
}
