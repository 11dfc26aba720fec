//! The 48-hour customer-service window.

use chrono::{Duration as ChronoDuration, Utc};
use wechat::api::ErrCode;
use wechat::api::custom::CustomMessage;

use crate::helpers::*;

#[tokio::test]
async fn customer_service_messages_need_an_open_window_and_stop_after_twenty() {
    let mock = spawn_mock().await;
    mock.state().add_followers(APPID, ["citizen-1"]).unwrap();
    let client = local_client(&mock, APPID, SECRET);
    let message = CustomMessage::text("citizen-1", "您好");

    let err = client.send_custom_message(&message).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::RESPONSE_OUT_OF_TIME));
    assert_eq!(
        calls_to(&mock, "/cgi-bin/message/custom/send"),
        1,
        "45015 is not retried"
    );

    interact(&mock, APPID, "citizen-1").await;
    for _ in 0..20 {
        client.send_custom_message(&message).await.unwrap();
    }
    let err = client.send_custom_message(&message).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::OUT_OF_RESPONSE_COUNT));
    assert_eq!(
        calls_to(&mock, "/cgi-bin/message/custom/send"),
        22,
        "45047 is not retried"
    );

    // A new message from the citizen opens a new window with a fresh budget.
    interact(&mock, APPID, "citizen-1").await;
    client.send_custom_message(&message).await.unwrap();
}

#[tokio::test]
async fn the_window_closes_48_hours_after_the_last_interaction() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    let long_ago = Utc::now() - ChronoDuration::hours(49);
    mock.state()
        .record_interaction(APPID, "citizen-1", long_ago)
        .unwrap();

    let err = client
        .send_custom_message(&CustomMessage::text("citizen-1", "迟到的回复"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::RESPONSE_OUT_OF_TIME));

    mock.state()
        .record_interaction(APPID, "citizen-1", Utc::now() - ChronoDuration::hours(47))
        .unwrap();
    client
        .send_custom_message(&CustomMessage::text("citizen-1", "及时的回复"))
        .await
        .unwrap();
}

#[tokio::test]
async fn unfollowed_citizens_cannot_be_messaged() {
    let mock = spawn_mock().await;
    let client = local_client(&mock, APPID, SECRET);
    interact(&mock, APPID, "citizen-1").await;
    mock.state().unfollow(APPID, "citizen-1").unwrap();

    let err = client
        .send_custom_message(&CustomMessage::text("citizen-1", "您好"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::RESPONSE_OUT_OF_TIME));
}
