//! Injected faults: busy answers, latency.

use std::time::Duration;

use serde_json::json;
use wechat::api::{ApiError, ErrCode};

use crate::helpers::*;

const TAGS: &str = "/cgi-bin/tags/get";

#[tokio::test]
async fn busy_answers_are_retried_until_wechat_recovers() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    inject(&mock, json!({"busy": 2, "busy_path": TAGS})).await;

    client.tags().await.unwrap();
    let calls = mock.state().calls_to(TAGS);
    let codes: Vec<i64> = calls.iter().map(|c| c.errcode).collect();
    assert_eq!(codes, [-1, -1, 0]);
}

#[tokio::test]
async fn persistent_busy_answers_surface_after_bounded_retries() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    inject(&mock, json!({"busy": 100, "busy_path": TAGS})).await;

    let err = client.tags().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::SYSTEM_BUSY));
    assert_eq!(calls_to(&mock, TAGS), 3, "three attempts, then the error");
}

#[tokio::test]
async fn a_token_fetch_that_meets_busy_is_retried_too() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    inject(
        &mock,
        json!({"busy": 1, "busy_path": "/cgi-bin/stable_token"}),
    )
    .await;

    client.tags().await.unwrap();
    assert_eq!(calls_to(&mock, "/cgi-bin/stable_token"), 2);
}

#[tokio::test]
async fn slow_answers_hit_the_per_call_timeout() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    client.access_token().await.unwrap();
    inject(&mock, json!({"latency_ms": 1000})).await;

    let err = client
        .with_timeout(Duration::from_millis(100))
        .tags()
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Timeout), "{err:?}");
}

#[tokio::test]
async fn a_lost_token_fetch_is_a_definite_failure_and_the_call_is_never_made() {
    let mock = spawn_mock().await;
    mock.state().add_followers(APPID, ["citizen-1"]).unwrap();
    interact(&mock, APPID, "citizen-1").await;
    let client = local_client(&mock, APPID, SECRET);
    // The token fetch reaches WeChat but its answer is lost (a proxy's 502).
    inject(
        &mock,
        json!({"lose_answers": 1, "lose_path": "/cgi-bin/stable_token"}),
    )
    .await;

    let error = client
        .send_custom_message(&wechat::api::custom::CustomMessage::text(
            "citizen-1",
            "您好",
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::TokenUnavailable(_)), "{error:?}");
    assert!(
        !error.outcome_unknown(),
        "nothing can have reached the citizen"
    );
    assert_eq!(calls_to(&mock, "/cgi-bin/message/custom/send"), 0);
}

const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

#[tokio::test]
async fn a_customer_service_message_wechat_sent_and_answered_busy_is_not_sent_again() {
    let mock = spawn_mock().await;
    mock.state().add_followers(APPID, ["citizen-1"]).unwrap();
    interact(&mock, APPID, "citizen-1").await;
    let client = local_client(&mock, APPID, SECRET);
    // WeChat delivers the message, then answers -1.
    inject(
        &mock,
        json!({"busy": 1, "busy_path": CUSTOM_SEND, "busy_after_effect": true}),
    )
    .await;

    let error = client
        .send_custom_message(&wechat::api::custom::CustomMessage::text(
            "citizen-1",
            "您好",
        ))
        .await
        .unwrap_err();

    assert!(
        error.outcome_unknown(),
        "the citizen may have it: {error:?}"
    );
    assert_eq!(error.code(), Some(ErrCode::SYSTEM_BUSY));
    assert_eq!(calls_to(&mock, CUSTOM_SEND), 1, "sent once, not again");
}

#[tokio::test]
async fn busy_answers_to_writes_not_safe_to_repeat_are_not_retried() {
    use wechat::api::mass::{MassContent, MassSend};
    use wechat::api::menu::{Button, ConditionalMenu, MatchRule};
    use wechat::api::template::TemplateMessage;
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    client.access_token().await.unwrap();
    let busy_once = |path: &'static str| {
        let mock = &mock;
        async move { inject(mock, json!({"busy": 1, "busy_path": path})).await }
    };
    let check = |path: &str, result: Result<(), ApiError>| {
        let error = result.expect_err(path);
        assert!(error.outcome_unknown(), "{path}: {error:?}");
        assert_eq!(error.code(), Some(ErrCode::SYSTEM_BUSY), "{path}");
        assert_eq!(calls_to(&mock, path), 1, "{path}: one attempt");
    };

    busy_once("/cgi-bin/freepublish/submit").await;
    let submitted = client.publish_submit("draft-1").await.map(drop);
    check("/cgi-bin/freepublish/submit", submitted);

    busy_once("/cgi-bin/menu/addconditional").await;
    let menu = ConditionalMenu {
        button: vec![Button::click("养老服务", "category:elderly_care")],
        matchrule: MatchRule::tag(100),
    };
    let added = client.menu_add_conditional(&menu).await.map(drop);
    check("/cgi-bin/menu/addconditional", added);

    busy_once("/cgi-bin/message/mass/sendall").await;
    let unkeyed = MassSend::to_all(MassContent::text("明天停水"));
    let sent = client.mass_send(&unkeyed).await.map(drop);
    check("/cgi-bin/message/mass/sendall", sent);

    busy_once("/cgi-bin/message/mass/preview").await;
    let preview = client
        .mass_preview("citizen-1", &MassContent::text("明天停水"))
        .await
        .map(drop);
    check("/cgi-bin/message/mass/preview", preview);

    busy_once("/cgi-bin/message/template/send").await;
    let notice = TemplateMessage::new("citizen-1", "tpl-1");
    let sent = client.send_template_message(&notice).await.map(drop);
    check("/cgi-bin/message/template/send", sent);

    busy_once("/cgi-bin/tags/create").await;
    let created = client.tag_create("志愿者").await.map(drop);
    check("/cgi-bin/tags/create", created);
}

#[tokio::test]
async fn busy_answers_to_writes_wechat_knows_a_repeat_of_are_retried() {
    use wechat::api::mass::{MassContent, MassSend, MassSendOutcome};
    use wechat::api::menu::{Button, Menu};
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    const SENDALL: &str = "/cgi-bin/message/mass/sendall";

    // Keyed by its clientmsgid: a repeat of a send WeChat took is refused (45065/45066).
    inject(&mock, json!({"busy": 1, "busy_path": SENDALL})).await;
    let keyed = MassSend::to_all(MassContent::text("明天停水")).client_msg_id("m-1");
    let sent = client.mass_send_keyed(&keyed).await.unwrap();
    assert!(matches!(sent, MassSendOutcome::Sent(_)), "{sent:?}");
    assert_eq!(calls_to(&mock, SENDALL), 2);

    // It replaces the whole menu: a repeat sets the same one.
    inject(
        &mock,
        json!({"busy": 1, "busy_path": "/cgi-bin/menu/create"}),
    )
    .await;
    let menu = Menu {
        button: vec![Button::click("社保", "category:social_security")],
    };
    client.menu_create(&menu).await.unwrap();
    assert_eq!(calls_to(&mock, "/cgi-bin/menu/create"), 2);
}

#[tokio::test]
async fn a_keyed_send_answered_busy_after_it_took_effect_is_an_unknown_outcome() {
    use wechat::api::mass::{MassContent, MassSend};
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    const SENDALL: &str = "/cgi-bin/message/mass/sendall";

    // WeChat sent it, then answered -1; the repeat of its clientmsgid within the
    // minute is refused 45066, which says nothing of the first.
    inject(
        &mock,
        json!({"busy": 1, "busy_path": SENDALL, "busy_after_effect": true}),
    )
    .await;
    let keyed = MassSend::to_all(MassContent::text("明天停水")).client_msg_id("m-1");
    let error = client.mass_send_keyed(&keyed).await.unwrap_err();
    assert!(
        error.outcome_unknown(),
        "the first attempt may have reached every follower: {error:?}"
    );
    assert_eq!(calls_to(&mock, SENDALL), 2);

    // -1, then the repeat's token rejected: refreshed and repeated at once, a repeat
    // of a first attempt WeChat took would draw a 45066 that looks confirmed (or,
    // here, a send whose first attempt is unknown). Unconfirmed, not repeated.
    inject(
        &mock,
        json!({"busy": 1, "busy_path": SENDALL, "reject_tokens": 1}),
    )
    .await;
    let keyed = MassSend::to_all(MassContent::text("后天停水")).client_msg_id("m-2");
    let error = client.mass_send_keyed(&keyed).await.unwrap_err();
    assert!(error.outcome_unknown(), "{error:?}");
    assert_eq!(calls_to(&mock, SENDALL), 4);
}
