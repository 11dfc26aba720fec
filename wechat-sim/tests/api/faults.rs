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
