//! Answers held for a citizen outside the 48-hour window are not left stuck when the
//! flush their next message asks for is lost (the service stopped before it ran, it
//! failed, or the message came again as a duplicate, which asks for none): the
//! held-answer retry also takes an answer whose citizen wrote after it was held.

use chrono::Utc;
use proto::interaction::v1::ReplyToTicketRequest;
use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};

use crate::helpers::{SOCIAL_AGENT_KEY, TestApp, spawn_app_retrying_held_only_at_start};

const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

/// A service retrying held answers only at start, on a fresh mock WeChat, and an
/// open ticket of a citizen who last wrote three days ago, so that answers to it
/// are held: the mock, the service, the citizen's openid and the ticket's id.
async fn ticket_of_a_citizen_who_last_wrote_three_days_ago()
-> (MockWechat, TestApp, String, uuid::Uuid) {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_retrying_held_only_at_start(&mock).await;
    let openid = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..27]);
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "acknowledged", 4 * 24 * 60)
        .await;
    (mock, app, openid, id)
}

#[tokio::test]
async fn an_answer_held_until_the_citizen_writes_is_sent_once_by_the_retry_when_their_flush_was_lost()
 {
    let (mock, app, openid, id) = ticket_of_a_citizen_who_last_wrote_three_days_ago().await;
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(ReplyToTicketRequest {
            request_id: String::new(),
            id: id.to_string(),
            text: "路灯明天修复".into(),
            agent: String::new(),
        })
        .await
        .expect("held");
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty(), "held");

    // The citizen writes again, but the flush their message asked for never ran.
    app.insert_follower(&openid, Some(0)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .expect("window open");

    let drain = platform::shutdown::Drain::new();
    let report = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!(report.sent, 1, "{report:?}");
    let sent = mock.state().calls_to(CUSTOM_SEND);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body.as_ref().unwrap()["text"]["content"],
        "路灯明天修复"
    );
    // Sent once: the next passes (or another replica) find nothing held.
    let again = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!(again.sent, 0);
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1);
}

#[tokio::test]
async fn an_answer_wechat_refused_on_a_flush_waits_for_the_citizen_instead_of_every_pass() {
    let (mock, app, openid, id) = ticket_of_a_citizen_who_last_wrote_three_days_ago().await;
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(ReplyToTicketRequest {
            request_id: String::new(),
            id: id.to_string(),
            text: "路灯明天修复".into(),
            agent: String::new(),
        })
        .await
        .expect("held");
    // The citizen wrote, but WeChat (the mock, which saw no message of theirs) does
    // not take the answer: it is held again.
    app.insert_follower(&openid, Some(0)).await;
    let drain = platform::shutdown::Drain::new();
    let first = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!((first.citizens, first.sent), (1, 0));
    let tried = mock.state().calls_to(CUSTOM_SEND).len();
    assert_eq!(tried, 1);
    // Held again after the citizen's last message: the next pass leaves it alone.
    let second = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!(second.citizens, 0);
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), tried);
}

#[tokio::test]
async fn an_answer_held_after_the_citizens_message_by_the_database_clock_is_still_retried() {
    let (mock, app, openid, id) = ticket_of_a_citizen_who_last_wrote_three_days_ago().await;
    // Taken for sending while the citizen's last message was three days old: held.
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(ReplyToTicketRequest {
            request_id: String::new(),
            id: id.to_string(),
            text: "请携带身份证到社保大厅办理".into(),
            agent: String::new(),
        })
        .await
        .expect("held");
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty(), "held");

    // The citizen wrote a minute ago (WeChat's CreateTime), and the answer was
    // settled held only now (the database's clock), behind the flush that message
    // asked for, which therefore did not see it.
    app.insert_follower(&openid, Some(1)).await;
    sqlx::query(
        "UPDATE ticket_messages SET held_at = now() WHERE ticket_id = $1 AND delivery = 'held'",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .expect("window open");

    let drain = platform::shutdown::Drain::new();
    let report = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!(report.sent, 1, "{report:?}");
    let again = app
        .deliverer
        .retry_held(Utc::now(), 100, &drain)
        .await
        .expect("retry pass");
    assert_eq!(again.sent, 0);
    let sent = mock.state().calls_to(CUSTOM_SEND);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body.as_ref().unwrap()["text"]["content"],
        "请携带身份证到社保大厅办理"
    );
}

#[tokio::test]
async fn an_answer_kept_held_by_a_flush_a_reopen_overlapped_still_holds_the_next_answer_behind_it()
{
    use interaction_svc::store::thread::{self, Kept};
    use proto::interaction::v1::{DeliveryStatus, TicketActionRequest};

    let (mock, app, openid, id) = ticket_of_a_citizen_who_last_wrote_three_days_ago().await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let answer = |text: &str| ReplyToTicketRequest {
        request_id: String::new(),
        id: id.to_string(),
        text: text.into(),
        agent: String::new(),
    };
    let action = || TicketActionRequest {
        id: id.to_string(),
        note: String::new(),
    };
    let first = agent
        .reply_to_ticket(answer("请携带身份证到社保大厅办理"))
        .await
        .expect("held")
        .into_inner();
    assert_eq!(first.delivery, DeliveryStatus::Held as i32);
    agent.close_ticket(action()).await.expect("closed");
    app.wait_for_rating_questions(id, &["held"]).await;

    // The citizen writes again; the flush their message asks for claims what is held
    // for them, and while it waits for WeChat the department reopens the ticket.
    app.insert_follower(&openid, Some(0)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .expect("window open");
    let account = platform::ids::AccountId::parse(crate::helpers::ACCOUNT).unwrap();
    let citizen = platform::ids::OpenId::parse(&openid).unwrap();
    let claimed = thread::claim_held(&app.db, &account, &citizen)
        .await
        .expect("claimed");
    assert!(!claimed.is_empty());
    agent.reopen_ticket(action()).await.expect("reopened");
    // WeChat was busy: the flush keeps them all, for the retry.
    let kept: Vec<uuid::Uuid> = claimed.iter().map(|m| m.id).collect();
    let mut tx = app.db.begin().await.unwrap();
    thread::settle_flush(
        &mut tx,
        &[],
        &kept,
        Kept::Retry {
            backoff: chrono::TimeDelta::minutes(1),
        },
    )
    .await
    .expect("settled");
    tx.commit().await.unwrap();

    // The next answer waits behind the first, still held, instead of overtaking it.
    let second = agent
        .reply_to_ticket(answer("办理时间为工作日上午九点至下午五点"))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(
        second.delivery,
        DeliveryStatus::Held as i32,
        "sent before the answer held ahead of it"
    );
    // Its window open, the citizen then gets both (the flush a held answer asks
    // for), in the order they were written.
    let texts: Vec<String> = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .iter()
        .filter_map(|call| Some(call.body.as_ref()?["text"]["content"].as_str()?.to_owned()))
        .collect();
    assert_eq!(
        texts,
        [
            "请携带身份证到社保大厅办理",
            "办理时间为工作日上午九点至下午五点"
        ]
    );
}
