//! Every callback on `WECHAT_INBOUND` grows its account's counters, once per
//! `event_id`; what cannot be decoded is dead-lettered without stopping the rest.

use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use proto::events::v1::{DeadLetter, Inbound};

use crate::helpers::{T0, TestApp, VIEWER_KEY, event, spawn_app, text_message};

/// The first message on the test's DEADLETTER stream, within 10 s.
async fn first_dead_letter(app: &TestApp) -> async_nats::jetstream::Message {
    let dead_letters = app
        .jetstream
        .get_stream(app.nats.namespace.name("DEADLETTER"))
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        dead_letters.messages().await.unwrap().next(),
    )
    .await
    .expect("a dead letter within 10s")
    .unwrap()
    .unwrap()
}

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

    let letter = first_dead_letter(&app).await;
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

/// A `FromUserName` holding a control character is no openid WeChat sends; only a
/// forged plaintext body carries one. It is refused as it is decoded, dead-lettered
/// once and never counted, and the callbacks after it still count.
#[tokio::test]
async fn a_callback_from_an_openid_with_a_control_character_is_dead_lettered_not_counted() {
    let app = spawn_app().await;
    let mut forged = text_message("chenzhou", "chenzhou:forged:1001", T0);
    forged.raw_xml = forged.raw_xml.replace("o_citizen", "o_\u{1}citizen");
    assert!(forged.raw_xml.contains('\u{1}'));

    app.publish(&forged).await;
    app.publish(&text_message("chenzhou", "chenzhou:o1:1002", T0))
        .await;

    let letter = first_dead_letter(&app).await;
    let letter = DeadLetter::decode(letter.payload.clone()).unwrap();
    assert_eq!(letter.deliveries, 1, "a permanent failure is not retried");
    assert!(
        letter
            .reason
            .contains("openid must not hold control characters"),
        "{}",
        letter.reason
    );
    let overview = app.wait_for_overview("chenzhou", |o| o.messages == 1).await;
    assert_eq!(overview.messages, 1, "the forged callback is not counted");
    app.stop().await;
}
