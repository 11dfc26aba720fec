//! stats-svc against real PostgreSQL and NATS: one binary, a fresh database and
//! namespace per test. Events go in through JetStream, counts come out through gRPC.

mod helpers;

use std::time::{Duration, Instant};

use futures::StreamExt;
use helpers::{ADMIN_KEY, EDITOR_KEY, VIEWER_KEY, event, spawn_app, text_message};
use prost::Message as _;
use proto::events::v1::{DeadLetter, Inbound};
use tonic::Code;

const T0: i64 = 1_700_000_000;

#[tokio::test]
async fn inbound_messages_and_events_are_counted_per_account() {
    let app = spawn_app().await;

    app.publish(&text_message("chenzhou", "chenzhou:o1:1001", T0))
        .await;
    app.publish(&text_message("chenzhou", "chenzhou:o2:1002", T0 + 30))
        .await;
    app.publish(&event(
        "chenzhou",
        "chenzhou:o3:1700000010:subscribe",
        T0 + 10,
        "subscribe",
    ))
    .await;
    app.publish(&event(
        "chenzhou",
        "chenzhou:o4:1700000020:unsubscribe",
        T0 + 20,
        "unsubscribe",
    ))
    .await;
    app.publish(&event(
        "chenzhou",
        "chenzhou:o5:1700000015:CLICK:menu",
        T0 + 15,
        "CLICK",
    ))
    .await;
    app.publish(&text_message("guiyang", "guiyang:o1:2001", T0))
        .await;

    let overview = app
        .wait_for_overview("chenzhou", |o| o.messages + o.events == 5)
        .await;
    assert_eq!(overview.account, "chenzhou");
    assert_eq!(
        (
            overview.messages,
            overview.events,
            overview.subscribes,
            overview.unsubscribes
        ),
        (2, 3, 1, 1)
    );
    // The latest callback, not the last one handled.
    assert_eq!(overview.last_inbound_at.map(|t| t.seconds), Some(T0 + 30));

    let other = app.wait_for_overview("guiyang", |o| o.messages == 1).await;
    assert_eq!((other.events, other.subscribes), (0, 0));
    app.stop().await;
}

#[tokio::test]
async fn an_account_with_no_inbound_has_zero_counts_and_no_last_time() {
    let app = spawn_app().await;

    let overview = app.overview("quiet-county", VIEWER_KEY).await.unwrap();

    assert_eq!(overview.account, "quiet-county");
    assert_eq!(
        (
            overview.messages,
            overview.events,
            overview.subscribes,
            overview.unsubscribes
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(overview.last_inbound_at, None);
    app.stop().await;
}

#[tokio::test]
async fn the_same_event_id_is_counted_once_even_past_jetstream_dedup() {
    let app = spawn_app().await;
    let message = text_message("chenzhou", "chenzhou:o1:1001", T0);

    // Two Nats-Msg-Ids, so JetStream stores both and only the service's guard can tell.
    app.publish_raw("chenzhou.msg.text", "publish-1", message.encode_to_vec())
        .await;
    app.publish_raw("chenzhou.msg.text", "publish-2", message.encode_to_vec())
        .await;
    // One consumer handles in stream order: once this one is counted, both copies were seen.
    app.publish(&event(
        "chenzhou",
        "chenzhou:o9:1700000100:subscribe",
        T0 + 100,
        "subscribe",
    ))
    .await;

    let overview = app
        .wait_for_overview("chenzhou", |o| o.subscribes == 1)
        .await;
    assert_eq!(overview.messages, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_undecodable_payload_is_dead_lettered_and_later_events_still_count() {
    let app = spawn_app().await;
    let garbage = vec![0xff, 0xff, 0xff, 0xff];
    assert!(Inbound::decode(garbage.as_slice()).is_err());

    app.publish_raw("chenzhou.msg.text", "garbage-1", garbage.clone())
        .await;
    app.publish(&text_message("chenzhou", "chenzhou:o1:1001", T0))
        .await;

    let overview = app.wait_for_overview("chenzhou", |o| o.messages == 1).await;
    assert_eq!(overview.events, 0);

    let dead_letters = app
        .jetstream
        .get_stream(app.nats.namespace.name("DEADLETTER"))
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let letter = tokio::time::timeout(
        Duration::from_secs(10),
        dead_letters.messages().await.unwrap().next(),
    )
    .await
    .expect("a dead letter within 10s")
    .unwrap()
    .unwrap();
    assert_eq!(
        letter.subject.as_str(),
        app.nats
            .namespace
            .subject("deadletter.stats-svc.wechat_inbound")
    );
    let letter = DeadLetter::decode(letter.payload.clone()).unwrap();
    assert_eq!(letter.service, "stats-svc");
    assert_eq!(letter.subject, "wechat.inbound.chenzhou.msg.text");
    assert_eq!(letter.deliveries, 1, "a permanent failure is not retried");
    assert!(
        letter.reason.contains("not an events.v1.Inbound"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.payload, garbage);
    app.stop().await;
}

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
