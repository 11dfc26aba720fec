//! Acting on tickets and answering citizens through the (mock) customer-service API.

use chrono::{Duration, Utc};
use proto::events::v1::{TicketChangeKind, TicketState as EventTicketState};
use proto::interaction::v1::{
    DeliveryStatus, Direction, GetTicketRequest, ReplyToTicketRequest, Ticket, TicketActionRequest,
    TicketState,
};
use tonic::Code;
use wechat_sim::api_server::{DEMO_APPID, FaultRequest, MockWechat, SimConfig};

use crate::citizen::{Citizen, eventually, eventually_within};
use crate::helpers::{
    ACCOUNT, EDITOR_KEY, SOCIAL_AGENT_KEY, SOCIAL_VIEWER_KEY, TRANSPORT_AGENT_KEY, TestApp,
    spawn_app_retrying_held_only_at_start, spawn_app_with_wechat,
};

const CITIZEN: &str = "o-citizen";
const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";
const RATING_QUESTION: &str = "请对本次答复评分，回复数字1-5";
/// WeChat's per-minute limit: a refusal of a message it did not send, which the
/// service tries again. ("System busy", -1, it may answer after sending.)
const PER_MINUTE_LIMIT: i64 = 45011;

async fn mock() -> MockWechat {
    MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts")
}

/// The citizen wrote `minutes_ago`: the platform and the mock both know it.
async fn citizen_wrote(app: &TestApp, mock: &MockWechat, minutes_ago: i64) {
    app.insert_follower(CITIZEN, Some(minutes_ago)).await;
    mock.state()
        .record_interaction(
            DEMO_APPID,
            CITIZEN,
            Utc::now() - Duration::minutes(minutes_ago),
        )
        .unwrap();
}

fn action(id: uuid::Uuid) -> TicketActionRequest {
    TicketActionRequest {
        id: id.to_string(),
        note: String::new(),
    }
}

fn reply(id: uuid::Uuid, text: &str) -> ReplyToTicketRequest {
    ReplyToTicketRequest {
        request_id: String::new(),
        id: id.to_string(),
        text: text.into(),
        agent: String::new(),
    }
}

async fn get(app: &TestApp, id: uuid::Uuid) -> Ticket {
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner()
}

fn sent_texts(mock: &MockWechat) -> Vec<(String, String)> {
    mock.state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .filter(|call| call.errcode == 0)
        .map(|call| {
            let body = call.body.expect("custom/send has a body");
            (
                body["touser"].as_str().unwrap_or_default().to_owned(),
                body["text"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_ticket_is_acknowledged_answered_closed_and_reopened_with_history_and_events() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let acknowledged = agent
        .acknowledge_ticket(action(id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.state, TicketState::Acknowledged as i32);
    let answered = agent
        .reply_to_ticket(ReplyToTicketRequest {
            request_id: String::new(),
            agent: "王芳".into(),
            ..reply(id, "路灯已报修，预计明天修复。")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.delivery, DeliveryStatus::Sent as i32);
    assert_eq!(answered.ticket.unwrap().state, TicketState::Answered as i32);
    let closed = agent.close_ticket(action(id)).await.unwrap().into_inner();
    assert_eq!(closed.state, TicketState::Closed as i32);
    assert!(closed.closed_at.is_some());
    app.wait_for_rating_questions(id, &["sent"]).await;
    let reopened = agent.reopen_ticket(action(id)).await.unwrap().into_inner();
    assert_eq!(reopened.state, TicketState::Reopened as i32);

    let ticket = get(&app, id).await;
    let history: Vec<(&str, &str, i32, i32)> = ticket
        .history
        .iter()
        .map(|t| (t.action.as_str(), t.actor.as_str(), t.from, t.to))
        .collect();
    assert_eq!(
        history,
        [
            (
                "acknowledged",
                "social-security",
                TicketState::Open as i32,
                TicketState::Acknowledged as i32
            ),
            (
                "replied",
                "social-security/王芳",
                TicketState::Acknowledged as i32,
                TicketState::Answered as i32
            ),
            (
                "closed",
                "social-security",
                TicketState::Answered as i32,
                TicketState::Closed as i32
            ),
            (
                "reopened",
                "social-security",
                TicketState::Closed as i32,
                TicketState::Reopened as i32
            ),
        ]
    );
    // The thread holds the answer and the rating question, both sent.
    let thread: Vec<(i32, &str, i32)> = ticket
        .thread
        .iter()
        .map(|m| (m.direction, m.text.as_str(), m.delivery))
        .collect();
    assert_eq!(
        thread,
        [
            (
                Direction::Outbound as i32,
                "路灯已报修，预计明天修复。",
                DeliveryStatus::Sent as i32
            ),
            (
                Direction::Outbound as i32,
                RATING_QUESTION,
                DeliveryStatus::Sent as i32
            ),
        ]
    );

    let events = app.interaction_ticket_events(4).await;
    let announced: Vec<(&str, TicketChangeKind, EventTicketState)> = events
        .iter()
        .map(|(subject, e)| (subject.as_str(), e.kind(), e.state()))
        .collect();
    assert_eq!(
        announced,
        [
            (
                "interaction.chenzhou.ticket.acknowledged",
                TicketChangeKind::Acknowledged,
                EventTicketState::Acknowledged
            ),
            (
                "interaction.chenzhou.ticket.replied",
                TicketChangeKind::Replied,
                EventTicketState::Answered
            ),
            (
                "interaction.chenzhou.ticket.closed",
                TicketChangeKind::Closed,
                EventTicketState::Closed
            ),
            (
                "interaction.chenzhou.ticket.reopened",
                TicketChangeKind::Reopened,
                EventTicketState::Reopened
            ),
        ]
    );
    for (_, event) in &events {
        // Deadlines travel with every change, so no consumer recomputes them.
        assert!(event.acknowledge_due_at.is_some() && event.resolve_due_at.is_some());
    }
    for (_, event) in &events {
        assert_eq!(event.ticket_id, id.to_string());
        assert_eq!(event.department, "social-security");
        let header = event.header.as_ref().unwrap();
        assert_eq!(header.account, ACCOUNT);
        assert!(!header.event_id.is_empty());
    }
    assert_eq!(events[1].1.actor, "social-security/王芳");
}

#[tokio::test]
async fn get_ticket_returns_the_citizens_messages_in_the_thread() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, delivery)
         VALUES ($1, $2, 'inbound', 'o-citizen', 'text', '路灯不亮好几天了', 'received')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();

    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread.len(), 1);
    let message = &ticket.thread[0];
    assert_eq!(message.direction, Direction::Inbound as i32);
    assert_eq!(message.author, CITIZEN);
    assert_eq!(message.text, "路灯不亮好几天了");
    assert_eq!(message.delivery, DeliveryStatus::Received as i32);
    assert!(ticket.history.is_empty());
}

#[tokio::test]
async fn get_ticket_carries_the_newest_500_messages_and_counts_the_rest() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;
    // A citizen who kept writing into one open ticket.
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, delivery, at)
         SELECT gen_random_uuid(), $1, 'inbound', 'o-citizen', 'text', 'message ' || n, 'received',
                now() - interval '1 hour' + n * interval '1 second'
           FROM generate_series(1, 503) AS n",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();

    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread.len(), 500);
    assert_eq!(ticket.earlier_messages, 3);
    assert_eq!(ticket.thread[0].text, "message 4");
    assert_eq!(ticket.thread[499].text, "message 503");
    assert_eq!(ticket.earlier_transitions, 0);
}

#[tokio::test]
async fn a_reply_inside_the_window_reaches_the_citizen_through_the_customer_service_api() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 60).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 70)
        .await;

    let response = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(id, "您好，已转交相关科室处理。"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.delivery, DeliveryStatus::Sent as i32);
    assert!(!response.ticket.unwrap().awaiting_citizen);
    assert_eq!(
        sent_texts(&mock),
        [(CITIZEN.to_owned(), "您好，已转交相关科室处理。".to_owned())]
    );
}

#[tokio::test]
async fn a_reply_outside_the_window_is_held_and_sent_when_the_citizen_writes_again() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 49 * 60).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 50 * 60)
        .await;

    let response = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(id, "已修复，感谢反馈。"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.delivery, DeliveryStatus::Held as i32);
    let ticket = response.ticket.unwrap();
    assert!(ticket.awaiting_citizen);
    assert_eq!(ticket.state, TicketState::Answered as i32);
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());

    // The citizen writes again: the consumer records it, then flushes.
    citizen_wrote(&app, &mock, 0).await;
    let sent = app
        .deliverer
        .flush_held(&account(), &citizen())
        .await
        .unwrap();

    assert_eq!(sent, 1);
    assert_eq!(
        sent_texts(&mock),
        [(CITIZEN.to_owned(), "已修复，感谢反馈。".to_owned())]
    );
    let ticket = get(&app, id).await;
    assert!(!ticket.awaiting_citizen);
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Sent as i32);
    let delivered = ticket.history.last().expect("history");
    assert_eq!(
        (delivered.action.as_str(), delivered.actor.as_str()),
        ("held_answer_sent", "system")
    );
    assert_eq!(
        delivered.from, delivered.to,
        "delivery does not change the state"
    );
    // A second flush finds nothing left to send.
    assert_eq!(
        app.deliverer
            .flush_held(&account(), &citizen())
            .await
            .unwrap(),
        0
    );
    assert_eq!(sent_texts(&mock).len(), 1);
}

/// WeChat carries out the next `times` customer-service calls but their answers are
/// lost on the way back (HTTP 502).
fn lose_answers(mock: &MockWechat, times: u32) {
    mock.state()
        .inject(&FaultRequest {
            lose_answers: Some(times),
            lose_path: Some(CUSTOM_SEND.into()),
            ..FaultRequest::default()
        })
        .unwrap();
}

#[tokio::test]
async fn a_reply_whose_answer_from_wechat_is_lost_stays_failed_and_is_never_sent_again() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 10)
        .await;
    lose_answers(&mock, 1);
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let lost = agent
        .reply_to_ticket(reply(id, "第一条"))
        .await
        .unwrap_err();

    assert_eq!(lost.code(), Code::FailedPrecondition);
    assert!(
        lost.message().contains("may have reached the citizen")
            && lost.message().contains("answer was lost"),
        "{}",
        lost.message()
    );
    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread.len(), 1, "the answer stays in the thread");
    assert_eq!(ticket.thread[0].text, "第一条");
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Failed as i32);
    assert_eq!(ticket.state, TicketState::Acknowledged as i32);
    let noted = ticket.history.last().expect("history");
    assert_eq!(
        (noted.action.as_str(), noted.actor.as_str()),
        ("delivery_unknown", "system")
    );
    // The next answer does not wait behind it, and the lost one is not sent again.
    agent.reply_to_ticket(reply(id, "第二条")).await.unwrap();
    assert_eq!(
        sent_texts(&mock),
        [
            (CITIZEN.to_owned(), "第一条".to_owned()),
            (CITIZEN.to_owned(), "第二条".to_owned()),
        ]
    );
}

/// WeChat sent the answer and then said "system busy" (-1), as it may: the answer is
/// failed (delivery unknown) like a lost one, and not sent again.
#[tokio::test]
async fn a_reply_wechat_sent_and_answered_busy_is_failed_as_unknown_and_not_sent_again() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 10)
        .await;
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_after_effect: Some(true),
            ..FaultRequest::default()
        })
        .unwrap();
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let busy = agent.reply_to_ticket(reply(id, "第一条")).await;

    let calls = mock.state().calls_to(CUSTOM_SEND).len();
    assert_eq!(calls, 1, "sent once, not again: {busy:?}");
    let busy = busy.unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert!(
        busy.message().contains("may have reached the citizen"),
        "{}",
        busy.message()
    );
    // WeChat answered; its answer was not lost, and the agent is told what it said.
    assert!(
        busy.message().contains("\"system busy\" (-1)") && !busy.message().contains("lost"),
        "{}",
        busy.message()
    );
    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread.len(), 1, "the answer stays in the thread");
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Failed as i32);
    // The history does not say the answer was lost either: WeChat gave one.
    let noted = ticket.history.last().expect("history");
    assert_eq!(noted.action, "delivery_unknown");
    assert!(
        noted.note.contains("\"system busy\"") && !noted.note.contains("answer was lost"),
        "{}",
        noted.note
    );
}

/// The account's daily quota of customer-service messages is used up (45009): the
/// agent is told why and until when, not to try again now.
#[tokio::test]
async fn a_reply_over_the_daily_quota_fails_at_once_saying_when_the_quota_resets() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 10)
        .await;
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(45009),
            ..FaultRequest::default()
        })
        .unwrap();
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let refused = agent
        .reply_to_ticket(reply(id, "第一条"))
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("daily quota") && refused.message().contains("midnight"),
        "{}",
        refused.message()
    );
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1);
}

#[tokio::test]
async fn a_held_answer_whose_answer_from_wechat_is_lost_is_given_up_and_the_rest_stay_held() {
    let mock = mock().await;
    // No background retry may take the one lost answer before the flush below.
    let app = spawn_app_retrying_held_only_at_start(&mock).await;
    citizen_wrote(&app, &mock, 49 * 60).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 50 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    for text in ["第一条", "第二条"] {
        let held = agent.reply_to_ticket(reply(id, text)).await.unwrap();
        assert_eq!(held.into_inner().delivery, DeliveryStatus::Held as i32);
    }
    citizen_wrote(&app, &mock, 0).await;
    lose_answers(&mock, 1);

    let flushed = app.deliverer.flush_held(&account(), &citizen()).await;

    assert!(flushed.is_err(), "{flushed:?}");
    let ticket = get(&app, id).await;
    let deliveries: Vec<_> = ticket
        .thread
        .iter()
        .map(|m| (m.text.as_str(), m.delivery))
        .collect();
    assert_eq!(
        deliveries,
        [
            ("第一条", DeliveryStatus::Failed as i32),
            ("第二条", DeliveryStatus::Held as i32)
        ]
    );
    assert!(ticket.awaiting_citizen, "the second answer is still held");
    // The next flush sends only what is still held.
    let sent = app
        .deliverer
        .flush_held(&account(), &citizen())
        .await
        .unwrap();
    assert_eq!(sent, 1);
    assert_eq!(
        sent_texts(&mock),
        [
            (CITIZEN.to_owned(), "第一条".to_owned()),
            (CITIZEN.to_owned(), "第二条".to_owned()),
        ]
    );
    assert!(!get(&app, id).await.awaiting_citizen);
}

/// A flush of held answers that meets the daily quota (45009) keeps them due for a
/// retry once the quota resets (midnight Beijing time), not until the citizen
/// writes again: the window usually outlasts the reset.
#[tokio::test]
async fn held_answers_that_meet_the_daily_quota_are_retried_after_the_reset() {
    let mock = mock().await;
    // No background retry may run before the pass below.
    let app = spawn_app_retrying_held_only_at_start(&mock).await;
    citizen_wrote(&app, &mock, 49 * 60).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 50 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    for text in ["第一条", "第二条"] {
        let held = agent.reply_to_ticket(reply(id, text)).await.unwrap();
        assert_eq!(held.into_inner().delivery, DeliveryStatus::Held as i32);
    }
    citizen_wrote(&app, &mock, 0).await;
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(45009),
            ..FaultRequest::default()
        })
        .unwrap();

    // WeChat resets the quota at midnight, Beijing time (UTC+8).
    let reset_after = |at: chrono::DateTime<Utc>| {
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let midnight = (at.with_timezone(&beijing).date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_local_timezone(beijing)
            .unwrap();
        midnight.with_timezone(&Utc) + Duration::minutes(1)
    };
    let before = Utc::now();
    let flushed = app.deliverer.flush_held(&account(), &citizen()).await;
    let after = Utc::now();

    assert!(flushed.is_err(), "{flushed:?}");
    let retries: Vec<Option<chrono::DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT retry_at FROM ticket_messages WHERE ticket_id = $1 AND delivery = 'held'",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(retries.len(), 2);
    assert!(
        retries.iter().all(|retry| retry.is_some_and(|at| {
            at >= reset_after(before) - Duration::seconds(1)
                && at <= reset_after(after) + Duration::seconds(1)
        })),
        "held answers that met the daily quota wait for the reset after {before}, not for the \
         citizen to write again nor a backoff: {retries:?}"
    );
    let reset = retries[0].unwrap();
    let drain = platform::shutdown::Drain::new();
    // Nothing is tried before the reset.
    let early = app
        .deliverer
        .retry_held(reset - Duration::minutes(2), 100, &drain)
        .await
        .unwrap();
    assert_eq!(early.sent, 0);
    // A pass at the reset (at most a day away, inside the window) sends both.
    let report = app.deliverer.retry_held(reset, 100, &drain).await.unwrap();
    assert_eq!(report.sent, 2);
    assert_eq!(
        sent_texts(&mock),
        [
            (CITIZEN.to_owned(), "第一条".to_owned()),
            (CITIZEN.to_owned(), "第二条".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_rating_question_whose_answer_from_wechat_is_lost_counts_as_asked_and_is_not_held() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "answered", 30)
        .await;
    lose_answers(&mock, 1);

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .close_ticket(action(id))
        .await
        .unwrap();
    app.wait_for_rating_questions(id, &["failed"]).await;

    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread[0].text, RATING_QUESTION);
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Failed as i32);
    assert!(!ticket.awaiting_citizen);
    let (requested,): (Option<chrono::DateTime<Utc>>,) =
        sqlx::query_as("SELECT rating_requested_at FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(requested.is_some());
    // The citizen writes again: nothing is held, so nothing is sent twice.
    assert_eq!(
        app.deliverer
            .flush_held(&account(), &citizen())
            .await
            .unwrap(),
        0
    );
    assert_eq!(sent_texts(&mock).len(), 1);
}

#[tokio::test]
async fn an_answer_held_while_the_citizens_window_opens_is_sent_at_once() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    // The platform has the citizen's message of a minute ago; WeChat does not yet
    // (its window opens a moment later), so the first attempt is held.
    app.insert_follower(CITIZEN, Some(1)).await;
    mock.state().add_followers(DEMO_APPID, [CITIZEN]).unwrap();
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 10)
        .await;
    mock.state()
        .inject(&FaultRequest {
            latency_ms: Some(300),
            ..FaultRequest::default()
        })
        .unwrap();
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let replying = tokio::spawn(async move { agent.reply_to_ticket(reply(id, "已处理")).await });
    // Once WeChat has refused the first attempt (45015), the window opens; the
    // answer's second attempt, right after it is recorded held, finds it open.
    crate::citizen::eventually("the first attempt refused", || async {
        let calls = mock.state().calls_to(CUSTOM_SEND);
        (calls.first().map(|call| call.errcode) == Some(45015)).then_some(())
    })
    .await;
    mock.state()
        .record_interaction(DEMO_APPID, CITIZEN, Utc::now())
        .unwrap();

    let response = replying.await.unwrap().unwrap().into_inner();

    assert_eq!(response.delivery, DeliveryStatus::Held as i32);
    assert_eq!(
        sent_texts(&mock),
        [(CITIZEN.to_owned(), "已处理".to_owned())]
    );
    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Sent as i32);
    assert!(!ticket.awaiting_citizen);
}

#[tokio::test]
async fn closing_asks_the_citizen_for_a_rating() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "answered", 30)
        .await;

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .close_ticket(action(id))
        .await
        .unwrap();
    app.wait_for_rating_questions(id, &["sent"]).await;

    assert_eq!(
        sent_texts(&mock),
        [(CITIZEN.to_owned(), RATING_QUESTION.to_owned())]
    );
    let (requested,): (Option<chrono::DateTime<Utc>>,) =
        sqlx::query_as("SELECT rating_requested_at FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(requested.is_some());
}

#[tokio::test]
async fn the_rating_question_is_held_outside_the_window() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "answered", 30)
        .await;

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .close_ticket(action(id))
        .await
        .unwrap();
    app.wait_for_rating_questions(id, &["held"]).await;

    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());
    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread[0].text, RATING_QUESTION);
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Held as i32);
}

/// A close's question is not asked of a citizen who unfollowed before it: WeChat
/// refuses it, a refused question is held, and it would go out after their
/// re-follow days later, their next digit rating a ticket they no longer think of.
/// A citizen the platform knows from their messages only (following since before
/// it, never a follow event) is asked.
#[tokio::test]
async fn closing_asks_no_rating_of_a_citizen_who_unfollowed() {
    let mock = mock().await;
    let mut app = spawn_app_with_wechat(&mock).await;
    let ticket_of = |openid: &'static str, follower: &'static str| {
        let app = &app;
        let mock = &mock;
        async move {
            app.insert_follower(openid, Some(15)).await;
            mock.state()
                .record_interaction(DEMO_APPID, openid, Utc::now() - Duration::minutes(15))
                .unwrap();
            sqlx::query(follower)
                .bind(ACCOUNT)
                .bind(openid)
                .execute(&app.db)
                .await
                .unwrap();
            app.insert_citizen_ticket(openid, "social-security", "answered", 30)
                .await
        }
    };
    let unfollowed = ticket_of(
        "o-unfollowed",
        "UPDATE followers SET subscribed = false, unsubscribed_at = now() - interval '5 minutes'
          WHERE account = $1 AND openid = $2",
    )
    .await;
    mock.state().unfollow(DEMO_APPID, "o-unfollowed").unwrap();
    let messages_only = ticket_of(
        "o-messages-only",
        "UPDATE followers SET subscribed = false, subscribed_at = NULL, unsubscribed_at = NULL
          WHERE account = $1 AND openid = $2",
    )
    .await;

    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent
        .close_ticket(action(unfollowed))
        .await
        .expect("closed");
    agent
        .close_ticket(action(messages_only))
        .await
        .expect("closed");
    app.wait_for_detached_work().await;

    assert_eq!(
        app.rating_questions(unfollowed).await,
        Vec::<String>::new(),
        "unfollowed before the close: no question sent or held"
    );
    assert_eq!(
        app.rating_questions(messages_only).await,
        ["sent"],
        "a citizen known from their messages only is asked"
    );
    assert_eq!(
        sent_texts(&mock),
        [("o-messages-only".to_owned(), RATING_QUESTION.to_owned())]
    );
}

#[tokio::test]
async fn replying_to_a_closed_ticket_is_a_failed_precondition() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let closed = app
        .insert_citizen_ticket(CITIZEN, "social-security", "closed", 30)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let refused = agent
        .reply_to_ticket(reply(closed, "补充说明"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "cannot apply replied to a ticket that is closed"
    );
    let twice = agent.reopen_ticket(action(closed)).await.unwrap();
    assert_eq!(twice.into_inner().state, TicketState::Reopened as i32);
    assert_eq!(
        agent
            .reopen_ticket(action(closed))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());
}

#[tokio::test]
async fn acting_needs_an_agent_of_the_owning_department() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;

    let other = app
        .client(Some(TRANSPORT_AGENT_KEY))
        .await
        .acknowledge_ticket(action(id))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let viewer = app
        .client(Some(SOCIAL_VIEWER_KEY))
        .await
        .acknowledge_ticket(action(id))
        .await
        .unwrap_err();
    assert_eq!(viewer.code(), Code::PermissionDenied);
    let editor = app
        .client(Some(EDITOR_KEY))
        .await
        .reply_to_ticket(reply(id, "x"))
        .await
        .unwrap_err();
    assert_eq!(editor.code(), Code::PermissionDenied);
    assert_eq!(get(&app, id).await.state, TicketState::Open as i32);
}

#[tokio::test]
async fn bad_answers_are_invalid_arguments_naming_the_field() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;

    let empty = agent.reply_to_ticket(reply(id, "  ")).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().starts_with("text:"), "{}", empty.message());
    let long = agent
        .reply_to_ticket(reply(id, &"长".repeat(700)))
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("2048 bytes"), "{}", long.message());
    let bad_id = agent.reply_to_ticket(reply_to("nope")).await.unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
}

fn reply_to(id: &str) -> ReplyToTicketRequest {
    ReplyToTicketRequest {
        request_id: String::new(),
        id: id.into(),
        text: "好的".into(),
        agent: String::new(),
    }
}

#[tokio::test]
async fn a_full_window_is_a_failed_precondition_with_wechats_code_and_nothing_is_recorded() {
    let mock = MockWechat::start(SimConfig {
        cs_window_cap: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 10)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent.reply_to_ticket(reply(id, "第一条")).await.unwrap();

    let refused = agent
        .reply_to_ticket(reply(id, "第二条"))
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("45047"), "{}", refused.message());
    let ticket = get(&app, id).await;
    assert_eq!(ticket.thread.len(), 1);
    assert_eq!(ticket.history.len(), 1);
}

#[tokio::test]
async fn an_agent_moves_a_ticket_to_another_department_which_then_owns_it() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;

    let moved = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .assign_ticket(proto::interaction::v1::AssignTicketRequest {
            id: id.to_string(),
            department: "transport".into(),
            assignee: String::new(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.department, "transport");

    let mut transport = app.client(Some(TRANSPORT_AGENT_KEY)).await;
    let owned = transport
        .assign_ticket(proto::interaction::v1::AssignTicketRequest {
            id: id.to_string(),
            department: String::new(),
            assignee: "李强".into(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(owned.assignee, "李强");
    assert_eq!(owned.department, "transport");
    assert_eq!(
        app.client(Some(SOCIAL_AGENT_KEY))
            .await
            .acknowledge_ticket(action(id))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let events = app.outbox_ticket_events().await;
    assert_eq!(events[0].1.kind(), TicketChangeKind::Assigned);
    assert_eq!(events[0].1.previous_department, "social-security");
    assert_eq!(events[0].1.department, "transport");
    assert_eq!(events[1].1.previous_department, "");
}

fn account() -> platform::ids::AccountId {
    platform::ids::AccountId::parse(ACCOUNT).expect("a valid account")
}

fn citizen() -> platform::ids::OpenId {
    platform::ids::OpenId::parse(CITIZEN).expect("a valid openid")
}

#[tokio::test]
async fn a_ticket_reopened_after_its_rating_can_be_rated_again_when_closed_again() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = crate::citizen::Citizen::new();
    let openid = citizen.openid.clone();
    app.insert_follower(&openid, Some(1)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now() - Duration::minutes(1))
        .expect("window open");
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "answered", 30)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let tickets = || async {
        sqlx::query_as::<_, (uuid::Uuid, Option<i16>)>(
            "SELECT id, rating FROM tickets WHERE account = $1 AND openid = $2",
        )
        .bind(ACCOUNT)
        .bind(&openid)
        .fetch_all(&app.db)
        .await
        .expect("read")
    };

    agent.close_ticket(action(id)).await.expect("closed");
    app.wait_for_rating_questions(id, &["sent"]).await;
    app.publish(&citizen.says("2")).await;
    crate::citizen::eventually("rated 2", || async {
        (tickets().await == [(id, Some(2))]).then_some(())
    })
    .await;
    // Dissatisfied: the department works on it again and closes it again, which
    // asks for a rating again; the citizen's new rating is recorded.
    agent.reopen_ticket(action(id)).await.expect("reopened");
    agent
        .reply_to_ticket(ReplyToTicketRequest {
            request_id: String::new(),
            id: id.to_string(),
            text: "已重新处理，路灯已更换".into(),
            agent: String::new(),
        })
        .await
        .expect("answered");
    agent.close_ticket(action(id)).await.expect("closed again");
    app.wait_for_rating_questions(id, &["sent", "sent"]).await;
    let asked = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .iter()
        .filter(|call| {
            call.body
                .as_ref()
                .is_some_and(|b| b.to_string().contains(RATING_QUESTION))
        })
        .count();
    assert_eq!(asked, 2, "asked after each close");
    app.publish(&citizen.says("5")).await;
    crate::citizen::eventually("rated 5, no new ticket", || async {
        (tickets().await == [(id, Some(5))]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_new_answer_waits_behind_an_answer_still_held_for_the_citizen() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = crate::citizen::Citizen::new();
    let openid = citizen.openid.clone();
    // Last wrote three days ago: the first answer is held.
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "acknowledged", 4 * 24 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let reply = |text: &str| ReplyToTicketRequest {
        request_id: String::new(),
        id: id.to_string(),
        text: text.into(),
        agent: String::new(),
    };
    agent
        .reply_to_ticket(reply("A1 预计明天修复"))
        .await
        .expect("held");
    // The citizen writes; the flush meets WeChat's per-minute limit and A1 stays held.
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(PER_MINUTE_LIMIT),
            ..FaultRequest::default()
        })
        .expect("fault injected");
    let message = citizen.says("怎么样了");
    mock.state()
        .record_interaction(DEMO_APPID, &openid, message.create_time())
        .expect("window open");
    app.publish(&message).await;
    crate::citizen::eventually("the flush tried and A1 is held again", || async {
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages WHERE ticket_id = $1 AND delivery = 'held')",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("read");
        (!mock.state().calls_to(CUSTOM_SEND).is_empty() && held).then_some(())
    })
    .await;

    // WeChat takes messages again: the next answer goes out behind A1, not before.
    agent
        .reply_to_ticket(reply("A2 已修复"))
        .await
        .expect("answered");
    let delivered = || {
        mock.state()
            .calls_to(CUSTOM_SEND)
            .into_iter()
            .filter(|call| call.errcode == 0)
            .filter_map(|call| Some(call.body?["text"]["content"].as_str()?.to_owned()))
            .collect::<Vec<_>>()
    };
    crate::citizen::eventually("both delivered", || async {
        (delivered().len() == 2).then_some(())
    })
    .await;
    assert_eq!(delivered(), ["A1 预计明天修复", "A2 已修复"]);
}

#[tokio::test]
async fn a_held_answer_wechat_did_not_take_for_now_is_retried_while_the_window_is_open() {
    let mock = mock().await;
    // A sweeper that runs often and a first retry that waits 1 ms, so the test need
    // not wait minutes; the backoff's growth is the store's.
    let fast = [("SWEEP_INTERVAL", "100ms"), ("HELD_RETRY_BACKOFF", "1ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    let mut citizen = Citizen::new();
    let openid = citizen.openid.clone();
    // Last wrote three days ago: the answer is held.
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "acknowledged", 4 * 24 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent
        .reply_to_ticket(reply(id, "A1 预计明天修复"))
        .await
        .expect("held");
    // The citizen writes; the flush their message triggers meets WeChat's per-minute
    // limit, and nobody answers again.
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(PER_MINUTE_LIMIT),
            ..FaultRequest::default()
        })
        .expect("fault injected");
    let message = citizen.says("怎么样了");
    mock.state()
        .record_interaction(DEMO_APPID, &openid, message.create_time())
        .expect("window open");
    app.publish(&message).await;

    // WeChat takes messages again: the retry sends A1.
    let delivered = || {
        sent_texts(&mock)
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
    };
    eventually("A1 delivered by the retry", || async {
        (!delivered().is_empty()).then_some(())
    })
    .await;
    // The mock records the call before the service settles it (a second
    // transaction): wait for the settlement rather than read it at once.
    eventually("A1 settled sent, nothing left held", || async {
        let settled: (String, bool) = sqlx::query_as(
            "SELECT m.delivery, t.awaiting_citizen FROM ticket_messages m
               JOIN tickets t ON t.id = m.ticket_id
              WHERE m.ticket_id = $1 AND m.direction = 'outbound'",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("read");
        (settled == ("sent".to_owned(), false)).then_some(())
    })
    .await;
    // Exactly once: it is settled `sent`, which no flush or retry claims again.
    assert_eq!(delivered(), ["A1 预计明天修复"]);
    let refused = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .iter()
        .filter(|call| call.errcode != 0)
        .count();
    assert_eq!(refused, 1, "the first flush met the limit");
}

#[tokio::test]
async fn replicas_retrying_the_same_held_answer_send_it_once() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = Citizen::new();
    let openid = citizen.openid.clone();
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "acknowledged", 4 * 24 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent
        .reply_to_ticket(reply(id, "A1 预计明天修复"))
        .await
        .expect("held");
    mock.state()
        .inject(&FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(PER_MINUTE_LIMIT),
            ..FaultRequest::default()
        })
        .expect("fault injected");
    let message = citizen.says("怎么样了");
    mock.state()
        .record_interaction(DEMO_APPID, &openid, message.create_time())
        .expect("window open");
    app.publish(&message).await;
    eventually("the flush failed and scheduled a retry", || async {
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages
                             WHERE ticket_id = $1 AND delivery = 'held' AND retry_at IS NOT NULL)",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("read");
        due.then_some(())
    })
    .await;

    // Two replicas' passes after the (1-minute) backoff, at once.
    let later = Utc::now() + Duration::minutes(2);
    let drain = platform::shutdown::Drain::new();
    let (first, second) = tokio::join!(
        app.deliverer.retry_held(later, 100, &drain),
        app.deliverer.retry_held(later, 100, &drain),
    );
    assert_eq!(first.unwrap().sent + second.unwrap().sent, 1);
    let texts: Vec<String> = sent_texts(&mock).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["A1 预计明天修复"]);
}

#[tokio::test]
async fn a_rating_question_held_while_the_citizen_was_away_is_answered_when_they_have_it() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = crate::citizen::Citizen::new();
    let openid = citizen.openid.clone();
    // Last wrote three days ago: the question at the close is held.
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "answered", 4 * 24 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent.close_ticket(action(id)).await.expect("closed");
    app.wait_for_rating_questions(id, &["held"]).await;
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty(), "held");
    let tickets = || async {
        sqlx::query_as::<_, (uuid::Uuid, Option<i16>)>(
            "SELECT id, rating FROM tickets WHERE account = $1 AND openid = $2 ORDER BY opened_at",
        )
        .bind(ACCOUNT)
        .bind(&openid)
        .fetch_all(&app.db)
        .await
        .expect("read")
    };

    // The citizen comes back with a message (a new ticket), which sends the question.
    let hello = citizen.says("你好，在吗");
    mock.state()
        .record_interaction(DEMO_APPID, &openid, hello.create_time())
        .expect("window open");
    app.publish(&hello).await;
    crate::citizen::eventually("the held question sent", || async {
        (!mock.state().calls_to(CUSTOM_SEND).is_empty()).then_some(())
    })
    .await;
    // Their "5" answers the question they just received.
    app.publish(&citizen.says("5")).await;
    crate::citizen::eventually("the closed ticket rated", || async {
        let all = tickets().await;
        all.contains(&(id, Some(5))).then_some(all)
    })
    .await;
}

#[tokio::test]
async fn reopening_withdraws_a_rating_question_still_held() {
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = crate::citizen::Citizen::new();
    let openid = citizen.openid.clone();
    app.insert_follower(&openid, Some(3 * 24 * 60)).await;
    let id = app
        .insert_citizen_ticket(&openid, "social-security", "answered", 4 * 24 * 60)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent.close_ticket(action(id)).await.expect("closed");
    app.wait_for_rating_questions(id, &["held"]).await;
    assert_eq!(get(&app, id).await.thread[0].text, RATING_QUESTION);
    agent.reopen_ticket(action(id)).await.expect("reopened");
    let ticket = get(&app, id).await;
    assert!(
        ticket.thread.iter().all(|m| m.text != RATING_QUESTION),
        "withdrawn: {:?}",
        ticket.thread
    );
    assert!(!ticket.awaiting_citizen, "nothing held any more");
    // The citizen comes back: nothing asks them to rate a ticket being redone.
    let back = citizen.says("还没修好");
    mock.state()
        .record_interaction(DEMO_APPID, &openid, back.create_time())
        .expect("window open");
    app.publish(&back).await;
    crate::citizen::eventually("their message joined the ticket", || async {
        let thread = get(&app, id).await.thread;
        thread.iter().any(|m| m.text == "还没修好").then_some(())
    })
    .await;
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());
}

#[tokio::test]
async fn an_answered_ticket_closes_without_a_note_after_the_citizens_thanks_but_not_once_reopened()
{
    let mock = mock().await;
    let app = spawn_app_with_wechat(&mock).await;
    let mut citizen = Citizen::new();
    app.insert_follower(&citizen.openid, Some(5)).await;
    mock.state()
        .record_interaction(
            DEMO_APPID,
            &citizen.openid,
            Utc::now() - Duration::minutes(5),
        )
        .unwrap();
    let id = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "acknowledged", 30)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    agent
        .reply_to_ticket(reply(id, "路灯已修好。"))
        .await
        .expect("answered");
    // The citizen's thanks joins the ticket: answered → acknowledged.
    app.publish(&citizen.says("好的，谢谢")).await;
    eventually("the thanks joins the ticket", || async {
        (get(&app, id).await.state == TicketState::Acknowledged as i32).then_some(())
    })
    .await;

    let closed = agent
        .close_ticket(action(id))
        .await
        .expect("an answered ticket closes without a note")
        .into_inner();
    assert_eq!(closed.state, TicketState::Closed as i32);

    // A new round needs a new answer (or a note) before it closes.
    agent
        .reopen_ticket(TicketActionRequest {
            id: id.to_string(),
            note: "市民反映仍未修好".into(),
        })
        .await
        .expect("reopened");
    let refused = agent
        .close_ticket(action(id))
        .await
        .expect_err("not answered since it was reopened");
    assert_eq!(refused.code(), Code::FailedPrecondition);
}

/// A department whose close's answer was lost on the network retries it: the retry
/// is told the ticket is closed (OK), and nothing happens twice (one close in the
/// history and the events, one rating question). A close that differs from the one
/// that closed the ticket (another note) is still refused.
#[tokio::test]
async fn a_repeated_close_is_answered_as_the_first_and_changes_nothing() {
    let mock = mock().await;
    let mut app = spawn_app_with_wechat(&mock).await;
    citizen_wrote(&app, &mock, 5).await;
    let id = app
        .insert_citizen_ticket(CITIZEN, "social-security", "open", 10)
        .await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let close = TicketActionRequest {
        note: "已电话回访，市民表示满意".into(),
        ..action(id)
    };
    let first = agent
        .close_ticket(close.clone())
        .await
        .unwrap()
        .into_inner();
    app.wait_for_rating_questions(id, &["sent"]).await;

    let retried = agent
        .close_ticket(close.clone())
        .await
        .expect("a repeated close is answered as the first")
        .into_inner();
    assert_eq!(retried.state, TicketState::Closed as i32);
    assert_eq!(retried.closed_at, first.closed_at, "closed once");

    let refused = agent
        .close_ticket(TicketActionRequest {
            note: "重复投诉".into(),
            ..action(id)
        })
        .await
        .expect_err("a close with another note is not the same close");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let mut viewer = app.client(Some(SOCIAL_VIEWER_KEY)).await;
    let ticket = viewer
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner();
    let closes = ticket
        .history
        .iter()
        .filter(|t| t.action == "closed")
        .count();
    assert_eq!(closes, 1, "one close in the history");
    let closed_events = app
        .outbox_ticket_events()
        .await
        .into_iter()
        .filter(|(_, event)| event.kind() == TicketChangeKind::Closed)
        .count();
    assert_eq!(closed_events, 1, "one close announced");
    app.wait_for_detached_work().await;
    assert_eq!(app.rating_questions(id).await, ["sent"], "asked once");
    let asked = sent_texts(&mock)
        .into_iter()
        .filter(|(_, text)| text == RATING_QUESTION)
        .count();
    assert_eq!(asked, 1, "the citizen was asked once");
}

/// A close whose rating question task was dropped unfinished (a drain's deadline
/// cut it off) leaves a closed ticket with no question. The held-answer retry asks
/// it later, once, and only of a citizen inside their window and not erased; a
/// question written since the close (even one given up as delivery unknown) is
/// never asked again.
#[tokio::test]
async fn a_rating_question_a_drain_abandoned_is_asked_later_once_within_the_window() {
    let mock = mock().await;
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    // Closed 10 minutes ago, as the close left it: no question written, or (`given_up`)
    // one given up as delivery unknown, written before the ticket is owed (a pass
    // runs every 100 ms and would ask it in between).
    let closed = |openid: String, wrote_minutes_ago: i64, given_up: bool| {
        let app = &app;
        let mock = &mock;
        async move {
            app.insert_follower(&openid, Some(wrote_minutes_ago)).await;
            mock.state()
                .record_interaction(
                    DEMO_APPID,
                    &openid,
                    Utc::now() - Duration::minutes(wrote_minutes_ago),
                )
                .unwrap();
            let id = app
                .insert_citizen_ticket(&openid, "social-security", "closed", 60)
                .await;
            if given_up {
                sqlx::query(
                    "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type,
                                                  body, delivery)
                     VALUES ($1, $2, 'outbound', 'system', 'text', $3, 'failed')",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(id)
                .bind(RATING_QUESTION)
                .execute(&app.db)
                .await
                .unwrap();
            }
            sqlx::query(
                "UPDATE tickets SET closed_at = now() - interval '10 minutes' WHERE id = $1",
            )
            .bind(id)
            .execute(&app.db)
            .await
            .unwrap();
            id
        }
    };
    let away = closed("o-away".into(), 3 * 24 * 60, false).await;
    let erased = closed("(erased)".into(), 5, false).await;
    sqlx::query("UPDATE tickets SET erased_at = now() WHERE id = $1")
        .bind(erased)
        .execute(&app.db)
        .await
        .unwrap();
    let given_up = closed("o-given-up".into(), 5, true).await;
    let owed = closed(CITIZEN.into(), 5, false).await;

    app.wait_for_rating_questions(owed, &["sent"]).await;
    eventually("the question counts as asked", || async {
        let requested: Option<chrono::DateTime<Utc>> =
            sqlx::query_scalar("SELECT rating_requested_at FROM tickets WHERE id = $1")
                .bind(owed)
                .fetch_one(&app.db)
                .await
                .unwrap();
        requested
    })
    .await;
    // Another ticket owed its question after that one was asked: once it is asked
    // too, later passes have run over the first.
    let later = closed("o-later".into(), 5, false).await;
    app.wait_for_rating_questions(later, &["sent"]).await;

    assert_eq!(app.rating_questions(owed).await, ["sent"], "asked once");
    assert_eq!(
        app.rating_questions(away).await,
        Vec::<String>::new(),
        "outside the window"
    );
    assert_eq!(
        app.rating_questions(erased).await,
        Vec::<String>::new(),
        "erased"
    );
    assert_eq!(
        app.rating_questions(given_up).await,
        ["failed"],
        "not asked again"
    );
    let asked: Vec<String> = sent_texts(&mock)
        .into_iter()
        .filter(|(_, text)| text == RATING_QUESTION)
        .map(|(openid, _)| openid)
        .collect();
    assert_eq!(asked, [CITIZEN, "o-later"], "each asked once, nobody else");
}

/// A close's rating question a drain abandoned is no longer owed once the citizen
/// opened a newer ticket after that close: asked late, it would be the question
/// last asked, and the citizen's next digit (an answer to the new ticket's agent,
/// "which building? reply with the number") would rate the old ticket instead of
/// reaching the new one.
#[tokio::test]
async fn an_abandoned_rating_question_is_not_asked_once_a_newer_ticket_opened() {
    let mock = mock().await;
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    let closed_minutes_ago = |id: uuid::Uuid, minutes: i32| {
        let app = &app;
        async move {
            sqlx::query(
                "UPDATE tickets SET closed_at = now() - make_interval(mins => $2) WHERE id = $1",
            )
            .bind(id)
            .bind(minutes)
            .execute(&app.db)
            .await
            .unwrap();
        }
    };
    let mut citizen = Citizen::new();
    let openid = citizen.openid.clone();
    app.insert_follower(&openid, Some(5)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now() - Duration::minutes(5))
        .unwrap();
    // B closed 40 minutes ago, its question cut off; C opened 30 minutes ago.
    let old = app
        .insert_citizen_ticket(&openid, "social-security", "closed", 60)
        .await;
    closed_minutes_ago(old, 40).await;
    let newer = app
        .insert_citizen_ticket(&openid, "social-security", "acknowledged", 30)
        .await;
    // Another citizen's abandoned question, closed later than B: once it is asked,
    // a pass has looked at B.
    app.insert_follower("o-control", Some(5)).await;
    mock.state()
        .record_interaction(DEMO_APPID, "o-control", Utc::now() - Duration::minutes(5))
        .unwrap();
    let control = app
        .insert_citizen_ticket("o-control", "social-security", "closed", 60)
        .await;
    closed_minutes_ago(control, 10).await;

    app.wait_for_rating_questions(control, &["sent"]).await;
    assert_eq!(
        app.rating_questions(old).await,
        Vec::<String>::new(),
        "a newer ticket opened since the close: not owed"
    );

    // The citizen answers C's agent with a number: it reaches C.
    app.publish(&citizen.says("3")).await;
    eventually("the digit joins the newer ticket", || async {
        let joined: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages
                             WHERE ticket_id = $1 AND direction = 'inbound' AND body = '3')",
        )
        .bind(newer)
        .fetch_one(&app.db)
        .await
        .unwrap();
        joined.then_some(())
    })
    .await;
    let rating: Option<i16> = sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
        .bind(old)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rating, None, "the old ticket is not rated");
}

/// Nor once an older ticket of the citizen was reopened after that close: the
/// department working on it again asks the citizen ("回复1或2"), and a late
/// question about B would take the citizen's digit as B's rating, never reaching
/// the reopened ticket.
#[tokio::test]
async fn an_abandoned_rating_question_is_not_asked_once_an_older_ticket_was_reopened() {
    let mock = mock().await;
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    let closed_minutes_ago = |id: uuid::Uuid, minutes: i32| {
        let app = &app;
        async move {
            sqlx::query(
                "UPDATE tickets SET closed_at = now() - make_interval(mins => $2) WHERE id = $1",
            )
            .bind(id)
            .bind(minutes)
            .execute(&app.db)
            .await
            .unwrap();
        }
    };
    let mut citizen = Citizen::new();
    let openid = citizen.openid.clone();
    app.insert_follower(&openid, Some(5)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now() - Duration::minutes(5))
        .unwrap();
    // A closed 3 hours ago, its question asked then.
    let older = app
        .insert_citizen_ticket(&openid, "social-security", "closed", 5 * 60)
        .await;
    sqlx::query(
        "UPDATE tickets SET closed_at = now() - interval '3 hours',
                            rating_requested_at = now() - interval '3 hours'
          WHERE id = $1",
    )
    .bind(older)
    .execute(&app.db)
    .await
    .unwrap();
    // B closed (its time is written below, which makes it owed: a pass must not
    // ask it before the reopen).
    let owed = app
        .insert_citizen_ticket(&openid, "social-security", "closed", 60)
        .await;
    // The department reopens A: the citizen has no active ticket.
    let reopened = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reopen_ticket(action(older))
        .await
        .expect("A reopened")
        .into_inner();
    assert_eq!(reopened.state, TicketState::Reopened as i32);
    // B closed 40 minutes ago, after A, its question cut off by a drain.
    closed_minutes_ago(owed, 40).await;
    // Another citizen's abandoned question, closed later than B: once it is asked,
    // a pass has looked at B.
    app.insert_follower("o-control", Some(5)).await;
    mock.state()
        .record_interaction(DEMO_APPID, "o-control", Utc::now() - Duration::minutes(5))
        .unwrap();
    let control = app
        .insert_citizen_ticket("o-control", "social-security", "closed", 60)
        .await;
    closed_minutes_ago(control, 10).await;

    app.wait_for_rating_questions(control, &["sent"]).await;
    assert_eq!(
        app.rating_questions(owed).await,
        Vec::<String>::new(),
        "an older ticket was reopened since the close: not owed"
    );

    // The citizen answers A's agent with a number: it reaches A.
    app.publish(&citizen.says("2")).await;
    let (joined, rating) = eventually("the digit is applied", || async {
        let joined: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages
                             WHERE ticket_id = $1 AND direction = 'inbound' AND body = '2')",
        )
        .bind(older)
        .fetch_one(&app.db)
        .await
        .unwrap();
        let rating: Option<i16> = sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
            .bind(owed)
            .fetch_one(&app.db)
            .await
            .unwrap();
        (joined || rating.is_some()).then_some((joined, rating))
    })
    .await;
    assert_eq!(rating, None, "B is not rated");
    assert!(joined, "the digit joins the reopened ticket");
}

/// A close's question is not asked late of a citizen who unfollowed after the
/// close (WeChat refuses it; held, it would go out after a re-follow days later,
/// and the next digit would rate a ticket they no longer think of), nor of one who
/// unfollowed and followed again since; a citizen the platform knows from their
/// messages only (following since before it, never a follow event) is asked.
#[tokio::test]
async fn an_abandoned_rating_question_is_not_asked_of_a_citizen_who_unfollowed_since_the_close() {
    let mock = mock().await;
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    // Closed `closed_minutes_ago` (no question written), the citizen's follower row
    // as `follower` sets it; everyone wrote 15 minutes ago.
    let closed = |openid: &'static str, closed_minutes_ago: i32, follower: &'static str| {
        let app = &app;
        let mock = &mock;
        async move {
            app.insert_follower(openid, Some(15)).await;
            sqlx::query(follower)
                .bind(ACCOUNT)
                .bind(openid)
                .execute(&app.db)
                .await
                .unwrap();
            mock.state()
                .record_interaction(DEMO_APPID, openid, Utc::now() - Duration::minutes(15))
                .unwrap();
            let id = app
                .insert_citizen_ticket(openid, "social-security", "closed", 60)
                .await;
            sqlx::query(
                "UPDATE tickets SET closed_at = now() - make_interval(mins => $2) WHERE id = $1",
            )
            .bind(id)
            .bind(closed_minutes_ago)
            .execute(&app.db)
            .await
            .unwrap();
            id
        }
    };
    const AS_INSERTED: &str =
        "UPDATE followers SET subscribed = subscribed WHERE account = $1 AND openid = $2";
    let unfollowed = closed(
        "o-unfollowed",
        20,
        "UPDATE followers SET subscribed = false, unsubscribed_at = now() - interval '5 minutes'
          WHERE account = $1 AND openid = $2",
    )
    .await;
    let refollowed = closed(
        "o-refollowed",
        20,
        "UPDATE followers SET subscribed = true, subscribed_at = now() - interval '3 minutes',
                              unsubscribed_at = NULL,
                              last_interaction_at = now() - interval '3 minutes'
          WHERE account = $1 AND openid = $2",
    )
    .await;
    let messages_only = closed(
        "o-messages-only",
        15,
        "UPDATE followers SET subscribed = false, subscribed_at = NULL, unsubscribed_at = NULL
          WHERE account = $1 AND openid = $2",
    )
    .await;
    let control = closed("o-control", 10, AS_INSERTED).await;

    app.wait_for_rating_questions(control, &["sent"]).await;
    assert_eq!(
        app.rating_questions(messages_only).await,
        ["sent"],
        "a citizen known from their messages only is asked"
    );
    assert_eq!(
        app.rating_questions(unfollowed).await,
        Vec::<String>::new(),
        "unfollowed after the close: not asked"
    );
    assert_eq!(
        app.rating_questions(refollowed).await,
        Vec::<String>::new(),
        "unfollowed and followed again after the close: not asked"
    );
}

/// Many owed rating questions to a slow WeChat (after a rolling update, say) do
/// not hold up the held-answer retry: a held answer due meanwhile is retried by
/// the next pass, not after every owed question was asked one after another.
#[tokio::test]
async fn owed_rating_questions_to_a_slow_wechat_do_not_hold_up_held_answers() {
    const OWED: usize = 30;
    let mock = mock().await;
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let env: Vec<_> = crate::helpers::wechat_env(&mock)
        .into_iter()
        .chain(fast)
        .collect();
    let app = crate::helpers::spawn_app_with(&env).await;
    mock.state()
        .inject(&FaultRequest {
            latency_ms: Some(500),
            ..FaultRequest::default()
        })
        .unwrap();
    let in_window = |openid: String| {
        let app = &app;
        let mock = &mock;
        async move {
            app.insert_follower(&openid, Some(5)).await;
            mock.state()
                .record_interaction(DEMO_APPID, &openid, Utc::now() - Duration::minutes(5))
                .unwrap();
        }
    };
    let mut owed = Vec::new();
    for n in 0..OWED {
        let openid = format!("o-owed-{n}");
        in_window(openid.clone()).await;
        owed.push(
            app.insert_citizen_ticket(&openid, "social-security", "closed", 60)
                .await,
        );
    }
    // Owed all at once (closed 10 minutes ago), so one pass finds them all.
    sqlx::query("UPDATE tickets SET closed_at = now() - interval '10 minutes' WHERE id = ANY($1)")
        .bind(&owed)
        .execute(&app.db)
        .await
        .unwrap();
    let questions_asked = || {
        sent_texts(&mock)
            .into_iter()
            .filter(|(_, text)| text == RATING_QUESTION)
            .count()
    };
    eventually("the owed questions are being asked", || async {
        (questions_asked() > 0).then_some(())
    })
    .await;
    // An answer a busy WeChat did not take, due for its retry now.
    in_window(CITIZEN.into()).await;
    let ticket = app
        .insert_citizen_ticket(CITIZEN, "social-security", "acknowledged", 30)
        .await;
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, delivery,
                                      retry_at)
         VALUES ($1, $2, 'outbound', 'agent', 'text', 'A1 已处理', 'held', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(ticket)
    .execute(&app.db)
    .await
    .unwrap();

    let asked_when_retried = eventually_within(
        "the held answer retried",
        std::time::Duration::from_secs(60),
        || async {
            sent_texts(&mock)
                .iter()
                .any(|(openid, text)| openid == CITIZEN && text == "A1 已处理")
                .then(questions_asked)
        },
    )
    .await;
    assert!(
        asked_when_retried < 10,
        "the held answer waited for {asked_when_retried} of {OWED} owed questions"
    );
}
