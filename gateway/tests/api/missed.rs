//! A passive reply asked for and not got in time (no responder, the budget spent)
//! leaves a `ReplyMissed` marker on `WECHAT_MISSED_REPLIES` before the `success`,
//! for interaction-svc to send the reply through the customer-service API; a reply
//! that came, or a deliberate "no reply", leaves none.

use std::time::Duration;

use prost::Message as _;
use proto::events::v1::{PassiveReply, ReplyMissed};

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};
use crate::samples;

/// Every marker in the namespace's stream: (subject, Nats-Msg-Id, marker).
async fn markers(app: &TestApp) -> Vec<(String, String, ReplyMissed)> {
    let name = app
        .nats
        .namespace
        .name(platform::nats::WECHAT_MISSED_REPLIES.name);
    let mut stream = app.jetstream().get_stream(&name).await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    for sequence in 1..=count {
        let raw = stream.get_raw_message(sequence).await.unwrap();
        let msg_id = raw
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((
            raw.subject.to_string(),
            msg_id,
            ReplyMissed::decode(raw.payload).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn without_a_responder_the_success_comes_after_a_marker_naming_the_callback() {
    let app = spawn_app().await;
    let xml = samples::text("oCitizen", 601, "公积金怎么提取");
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));

    let stored = app.stored().await;
    assert_eq!(stored.len(), 1);
    let event_id = &stored[0].1;
    let markers = markers(&app).await;
    assert_eq!(markers.len(), 1, "stored before the answer");
    let (subject, msg_id, marker) = &markers[0];
    assert_eq!(
        subject,
        &app.nats
            .namespace
            .subject(&format!("wechat.missed.{}", app.safe.id))
    );
    assert_eq!(msg_id, &format!("{event_id}:reply_missed"));
    assert_eq!(&marker.header.as_ref().unwrap().event_id, event_id);
    assert_eq!(marker.reason, "no_responder");
}

#[tokio::test]
async fn a_reply_slower_than_the_budget_is_marked_missed_and_one_in_time_or_none_is_not() {
    let app = spawn_app_with(Options {
        extra: vec![("REPLY_BUDGET", "200ms")],
        ..Options::default()
    })
    .await;
    let (_, _requests) = app
        .responder(&app.plain.id, Duration::ZERO, |_| PassiveReply::default())
        .await;
    let (status, body) = app
        .post_text(
            &app.plain.id,
            &app.plain
                .plain_callback(&samples::text("oCitizen", 602, "hello")),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert!(markers(&app).await.is_empty(), "a deliberate no-reply");

    let (_, _requests) = app
        .responder(&app.safe.id, Duration::from_secs(3), |_| {
            PassiveReply::default()
        })
        .await;
    let (status, body) = app
        .post_text(
            &app.safe.id,
            &app.safe
                .encrypted_callback(&samples::text("oCitizen", 603, "hello")),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let markers = markers(&app).await;
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].2.reason, "timeout");
}

#[tokio::test]
async fn a_job_finish_event_without_a_responder_leaves_no_marker() {
    let app = spawn_app().await;
    let sample = samples::all()
        .into_iter()
        .find(|s| s.name == "PUBLISHJOBFINISH")
        .unwrap();
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&sample.xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(app.stored().await.len(), 1);
    assert!(markers(&app).await.is_empty());
}

#[tokio::test]
async fn an_unfollow_a_location_report_or_a_link_menu_is_not_asked_about_nor_marked_missed() {
    let app = spawn_app().await;
    let silent: Vec<_> = samples::all()
        .into_iter()
        .filter(|s| matches!(s.name, "unsubscribe" | "LOCATION" | "VIEW"))
        .collect();
    assert_eq!(silent.len(), 3);

    // interaction-svc down: nothing it could have said is missed (a retry neither).
    for sample in silent.iter().chain(&silent[..1]) {
        let (status, body) = app
            .post_text(&app.safe.id, &app.safe.encrypted_callback(&sample.xml))
            .await;
        assert_eq!((status, body.as_str()), (200, "success"), "{}", sample.name);
    }
    assert_eq!(app.stored().await.len(), 3);
    assert!(markers(&app).await.is_empty());

    // interaction-svc up with something to say to anything: never asked about them.
    let (seen, _requests) = app
        .responder(&app.plain.id, Duration::ZERO, |_| PassiveReply {
            body: Some(proto::events::v1::passive_reply::Body::Text(
                proto::events::v1::TextReply {
                    content: "收到".into(),
                },
            )),
        })
        .await;
    for sample in &silent {
        let (status, body) = app
            .post_text(&app.plain.id, &app.plain.plain_callback(&sample.xml))
            .await;
        assert_eq!((status, body.as_str()), (200, "success"), "{}", sample.name);
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (status, body) = app
        .post_text(
            &app.plain.id,
            &app.plain
                .plain_callback(&samples::text("oCitizen", 604, "你好")),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("收到"),
        "a message is still asked about: {body}"
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}
