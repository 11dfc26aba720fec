//! A slow WeChat API holds up only the answer being sent: no database transaction or
//! connection is held while WeChat is called, so the rest of the service keeps
//! working on a small pool.

use chrono::{Duration, Utc};
use interaction_svc::jobs::sweeper::give_up_stale_sends;
use proto::interaction::v1::{
    DeliveryStatus, GetTicketRequest, ListTicketsRequest, ReplyToTicketRequest, TicketActionRequest,
};
use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};

use crate::citizen::{Citizen, eventually};
use crate::helpers::{ADMIN_KEY, SOCIAL_AGENT_KEY, TestApp, spawn_app_with, wechat_env};

const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

/// A mock WeChat API that answers every call after `latency_ms`.
async fn slow_mock(latency_ms: u64) -> MockWechat {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    set_latency(&mock, latency_ms).await;
    mock
}

/// Makes `mock` answer every call after `latency_ms` from now on.
async fn set_latency(mock: &MockWechat, latency_ms: u64) {
    let faults = reqwest::Client::new()
        .post(format!("{}/sim/faults", mock.base_url()))
        .header("content-type", "application/json")
        .body(format!(r#"{{"latency_ms":{latency_ms}}}"#))
        .send()
        .await
        .expect("fault injected");
    assert!(faults.status().is_success());
}

/// A service on `mock` whose pool has two connections only.
async fn small_pool_app(mock: &MockWechat) -> TestApp {
    let mut env = wechat_env(mock).to_vec();
    env.push(("DATABASE_MAX_CONNECTIONS", "2"));
    spawn_app_with(&env).await
}

/// A social-security ticket of a citizen inside the 48-hour window.
async fn ticket_in_window(app: &TestApp, mock: &MockWechat) -> uuid::Uuid {
    let openid = format!("o-citizen-{}", uuid::Uuid::new_v4().simple());
    app.insert_follower(&openid, Some(5)).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now() - Duration::minutes(5))
        .unwrap();
    app.insert_citizen_ticket(&openid, "social-security", "acknowledged", 10)
        .await
}

fn reply(id: uuid::Uuid, text: &str) -> ReplyToTicketRequest {
    ReplyToTicketRequest {
        request_id: String::new(),
        id: id.to_string(),
        text: text.into(),
        agent: String::new(),
    }
}

/// `request` with a client deadline of one second: the agent's client (or a proxy)
/// that gives up while WeChat still has the message.
fn impatient<T>(request: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(std::time::Duration::from_secs(1));
    request
}

/// The deliveries of `ticket`'s outbound messages, oldest first.
async fn outbound_deliveries(app: &TestApp, ticket: uuid::Uuid) -> Vec<String> {
    deliveries_of(app, ticket, "direction = 'outbound'").await
}

/// The deliveries of `ticket`'s messages matching `which` (a fixed SQL condition),
/// oldest first.
async fn deliveries_of(app: &TestApp, ticket: uuid::Uuid, which: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT delivery FROM ticket_messages WHERE ticket_id = $1 AND {which}
          ORDER BY at, id"
    ))
    .bind(ticket)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// Waits until every outbound message of `ticket` is `sent` and there are `count`.
async fn wait_until_all_sent(app: &TestApp, ticket: uuid::Uuid, count: usize) {
    eventually("every answer is sent and settled", || async {
        let deliveries = outbound_deliveries(app, ticket).await;
        (deliveries.len() == count && deliveries.iter().all(|d| d == "sent")).then_some(())
    })
    .await;
}

impl TestApp {
    /// Waits until an answer to `ticket` is on its way to WeChat.
    async fn wait_until_sending(&self, ticket: uuid::Uuid) {
        eventually("an answer is being sent", || async {
            let sending: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM ticket_messages
                                 WHERE ticket_id = $1 AND delivery = 'sending')",
            )
            .bind(ticket)
            .fetch_one(&self.db)
            .await
            .unwrap();
            sending.then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn while_answers_wait_for_a_slow_wechat_citizens_open_tickets_and_queues_answer() {
    let mock = slow_mock(3000).await;
    let app = small_pool_app(&mock).await;
    // Two answers in flight at once: as many as the pool has connections.
    let first = ticket_in_window(&app, &mock).await;
    let second = ticket_in_window(&app, &mock).await;
    let mut answers = Vec::new();
    for id in [first, second] {
        let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
        answers.push(tokio::spawn(async move {
            agent
                .reply_to_ticket(reply(id, "已转交相关科室处理。"))
                .await
        }));
    }
    app.wait_until_sending(first).await;
    app.wait_until_sending(second).await;

    // A citizen writes meanwhile: the consumer opens their ticket, and the queue
    // lists it, before either answer comes back from WeChat.
    let mut citizen = Citizen::new();
    app.publish(&citizen.says("小区门口的路灯不亮了")).await;
    eventually("the citizen's ticket is listed", || async {
        let listed = app
            .client(Some(ADMIN_KEY))
            .await
            .list_tickets(ListTicketsRequest {
                openid: citizen.openid.clone(),
                ..Default::default()
            })
            .await
            .expect("ListTickets answers")
            .into_inner();
        (listed.tickets.len() == 1).then_some(())
    })
    .await;
    let queue = app
        .client(Some(ADMIN_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("ListTickets answers")
        .into_inner();
    assert_eq!(queue.tickets.len(), 3);
    assert!(
        answers.iter().all(|answer| !answer.is_finished()),
        "the answers were still waiting for WeChat"
    );

    for answer in answers {
        let answered = answer
            .await
            .unwrap()
            .expect("the answer is sent")
            .into_inner();
        assert_eq!(answered.delivery, DeliveryStatus::Sent as i32);
    }
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 2);
}

#[tokio::test]
async fn two_answers_to_one_ticket_reach_the_citizen_in_the_order_they_were_given() {
    let mock = slow_mock(1000).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let first =
        tokio::spawn(async move { agent.reply_to_ticket(reply(id, "第一条：已收到。")).await });
    app.wait_until_sending(id).await;
    let second = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(id, "第二条：已修复。"))
        .await
        .expect("the second answer is sent");
    assert!(
        first.is_finished(),
        "the second answer waited for the first"
    );
    first.await.unwrap().expect("the first answer is sent");
    assert_eq!(second.into_inner().delivery, DeliveryStatus::Sent as i32);

    let sent: Vec<String> = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .map(|call| {
            call.body.unwrap()["text"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sent, ["第一条：已收到。", "第二条：已修复。"]);
    let ticket = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner();
    let thread: Vec<(&str, i32)> = ticket
        .thread
        .iter()
        .map(|m| (m.text.as_str(), m.delivery))
        .collect();
    assert_eq!(
        thread,
        [
            ("第一条：已收到。", DeliveryStatus::Sent as i32),
            ("第二条：已修复。", DeliveryStatus::Sent as i32)
        ]
    );
}

#[tokio::test]
async fn an_answer_left_sending_by_a_stopped_service_is_marked_failed_and_not_sent_again() {
    let mock = slow_mock(0).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    // What a replica leaves behind when it stops between calling WeChat and
    // recording the outcome.
    sqlx::query(
        "INSERT INTO ticket_messages
             (id, ticket_id, direction, author, msg_type, body, delivery, sending_since)
         VALUES ($1, $2, 'outbound', 'social-security', 'text', '已处理', 'sending',
                 now() - interval '10 minutes')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();

    // The service's own sweeper runs the same pass at start-up and every
    // SWEEP_INTERVAL, so it may be the one that gives the message up (it was, once,
    // in a loaded full-suite run: this call then found nothing). Either way it is
    // given up exactly once.
    let by_this_call = give_up_stale_sends(&app.db, Utc::now()).await.unwrap();
    assert!(by_this_call <= 1, "{by_this_call}");
    eventually("the message is given up", || async {
        (outbound_deliveries(&app, id).await == ["failed"]).then_some(())
    })
    .await;
    assert_eq!(give_up_stale_sends(&app.db, Utc::now()).await.unwrap(), 0);
    let noted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ticket_transitions
          WHERE ticket_id = $1 AND action = 'delivery_unknown'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(noted, 1, "given up once");

    let ticket = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.thread[0].delivery, DeliveryStatus::Failed as i32);
    let noted = ticket.history.last().expect("history");
    assert_eq!(
        (noted.action.as_str(), noted.actor.as_str()),
        ("delivery_unknown", "system")
    );
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());
}

#[tokio::test]
async fn an_answer_whose_caller_gave_up_is_still_sent_and_the_next_answer_is_not_locked_out() {
    // The token and the send take 1.5 s each: the caller's 1 s deadline passes
    // while WeChat has the answer.
    let mock = slow_mock(1500).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;

    let gave_up = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(impatient(reply(id, "已转交相关科室处理。")))
        .await
        .expect_err("the caller's deadline passes first");
    assert!(
        matches!(
            gave_up.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{gave_up:?}"
    );

    wait_until_all_sent(&app, id, 1).await;
    let next = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(id, "您好，已处理完毕。"))
        .await
        .expect("the next answer is not locked out")
        .into_inner();
    assert_eq!(next.delivery, DeliveryStatus::Sent as i32);
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 2);
    let history: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM ticket_transitions WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(history, ["replied", "replied"]);
}

/// The agent's client gave up on an answer that is still sent; its retry with the
/// same request id reports how that answer left instead of giving the citizen a
/// second copy (it did: the retry waited its turn behind the first and went out too).
#[tokio::test]
async fn a_retry_with_the_same_request_id_reports_the_answer_instead_of_sending_it_twice() {
    let mock = slow_mock(1500).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    let answer = ReplyToTicketRequest {
        request_id: "9b1c2f0e-retry-of-one-answer".into(),
        ..reply(id, "已转交相关科室处理。")
    };

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(impatient(answer.clone()))
        .await
        .expect_err("the caller's deadline passes first");
    let retried = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(answer.clone())
        .await
        .expect("the retry reports the first call's answer")
        .into_inner();
    assert_eq!(retried.delivery, DeliveryStatus::Sent as i32);
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1, "sent once");
    assert_eq!(outbound_deliveries(&app, id).await, ["sent"]);

    let reused = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(ReplyToTicketRequest {
            text: "另一条答复".into(),
            ..answer
        })
        .await
        .expect_err("one request id is one answer");
    assert_eq!(reused.code(), tonic::Code::InvalidArgument, "{reused:?}");
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1);
}

#[tokio::test]
async fn held_answers_flushed_by_an_answer_whose_caller_gave_up_are_still_sent() {
    let mock = slow_mock(1500).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    // An earlier answer is still held (the flush after the citizen's message met a
    // busy WeChat): the new one is held behind it and both are flushed at once.
    sqlx::query("UPDATE tickets SET state = 'answered', awaiting_citizen = true WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, delivery, at)
         VALUES ($1, $2, 'outbound', 'social-security', 'text', '第一条答复', 'held',
                 now() - interval '1 hour')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(impatient(reply(id, "第二条答复")))
        .await
        .expect_err("the caller's deadline passes during the flush");

    wait_until_all_sent(&app, id, 2).await;
    let sent: Vec<String> = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .map(|call| {
            call.body.unwrap()["text"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sent, ["第一条答复", "第二条答复"]);
}

/// A close answers once it is committed: the rating question (which may wait 20 s
/// behind an answer being sent, then for WeChat) is the drain's task, not the
/// caller's wait, so a department's client with a deadline shorter than WeChat's
/// answer sees its close succeed, and the citizen is still asked.
#[tokio::test]
async fn a_close_answers_before_a_slow_wechat_takes_its_rating_question() {
    let mock = slow_mock(3000).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    sqlx::query("UPDATE tickets SET state = 'answered' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();

    let closed = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .close_ticket(impatient(TicketActionRequest {
            id: id.to_string(),
            note: String::new(),
        }))
        .await
        .expect("the close answers once committed, before WeChat has the question")
        .into_inner();
    assert_eq!(
        closed.state,
        proto::interaction::v1::TicketState::Closed as i32
    );

    wait_until_all_sent(&app, id, 1).await;
    let requested = rating_requested_at(&app, id).await;
    assert!(requested.is_some(), "the question counts as asked");
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1);
}

/// An answer WeChat did not take (the citizen is out of its window) is held; the
/// ticket closed while it was on its way stays closed and the answer is recorded all
/// the same, so the ticket must say it awaits the citizen, or their next message
/// would not bring the answer with it.
#[tokio::test]
async fn an_answer_held_after_a_concurrent_close_leaves_the_ticket_awaiting_the_citizen() {
    let mock = slow_mock(3000).await;
    let app = spawn_app_with(&wechat_env(&mock)).await;
    let (_, id) = ticket_of_a_citizen_wechat_has_not_heard_from(&app, &mock, 5, 10).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let answer =
        tokio::spawn(async move { agent.reply_to_ticket(reply(id, "已转交维修。")).await });
    app.wait_until_sending(id).await;
    let close = close_in_background(&app, id).await;
    wait_until_closed(&app, id, None).await;

    let answered = answer
        .await
        .unwrap()
        .expect("the answer is recorded")
        .into_inner();
    assert_eq!(answered.delivery, DeliveryStatus::Held as i32);
    assert!(
        answered.ticket.expect("the ticket").awaiting_citizen,
        "the held answer waits for the citizen"
    );
    close.await.unwrap().expect("the close succeeded");
    let awaiting: bool = sqlx::query_scalar("SELECT awaiting_citizen FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(awaiting, "the ticket awaits the citizen");
}

/// An answer that waited 20 s behind one still being sent: UNAVAILABLE (which retry
/// policies retry on their own) only where a retry cannot send the citizen a second
/// copy, i.e. with a request id, and the message says what was recorded.
#[tokio::test]
async fn an_answer_that_waited_too_long_is_retryable_only_with_its_request_id() {
    let mock = slow_mock(0).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    // A call with request id "first" whose caller gave up: its answer is on its
    // way to WeChat (as `sending` as a WeChat that has not answered leaves it).
    let in_flight = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body,
                                      delivery, sending_since, request_id)
         VALUES ($1, $2, 'outbound', 'social-security', 'text', '已转交相关科室处理。',
                 'sending', now(), 'first')",
    )
    .bind(in_flight)
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    let answer = |request_id: &str| ReplyToTicketRequest {
        request_id: request_id.into(),
        ..reply(id, "已转交相关科室处理。")
    };
    let (blind, other, same) = tokio::join!(
        async {
            app.client(Some(SOCIAL_AGENT_KEY))
                .await
                .reply_to_ticket(answer(""))
                .await
        },
        async {
            app.client(Some(SOCIAL_AGENT_KEY))
                .await
                .reply_to_ticket(answer("second"))
                .await
        },
        async {
            app.client(Some(SOCIAL_AGENT_KEY))
                .await
                .reply_to_ticket(answer("first"))
                .await
        },
    );

    let blind = blind.expect_err("the turn never came");
    assert_eq!(blind.code(), tonic::Code::FailedPrecondition, "{blind:?}");
    assert!(blind.message().contains("not recorded"), "{blind:?}");
    assert!(
        blind.message().contains("check the thread (SENDING)"),
        "{blind:?}"
    );
    let other = other.expect_err("the turn never came");
    assert_eq!(other.code(), tonic::Code::Unavailable, "{other:?}");
    assert!(other.message().contains("not recorded"), "{other:?}");
    assert!(
        other.message().contains("same request_id is safe"),
        "{other:?}"
    );
    let same = same.expect_err("its answer is still being sent");
    assert_eq!(same.code(), tonic::Code::Unavailable, "{same:?}");
    assert!(!same.message().contains("not recorded"), "{same:?}");
    assert!(same.message().contains("is recorded"), "{same:?}");
    assert!(same.message().contains("never sends it twice"), "{same:?}");
    assert!(mock.state().calls_to(CUSTOM_SEND).is_empty());

    // WeChat answers: the retries the messages promised are safe.
    sqlx::query("UPDATE ticket_messages SET delivery = 'sent', sending_since = NULL WHERE id = $1")
        .bind(in_flight)
        .execute(&app.db)
        .await
        .unwrap();
    for request_id in ["first", "second"] {
        let retried = app
            .client(Some(SOCIAL_AGENT_KEY))
            .await
            .reply_to_ticket(answer(request_id))
            .await
            .expect("the retry is answered")
            .into_inner();
        assert_eq!(retried.delivery, DeliveryStatus::Sent as i32);
    }
    assert_eq!(
        mock.state().calls_to(CUSTOM_SEND).len(),
        1,
        "\"second\" sent once"
    );
    assert_eq!(outbound_deliveries(&app, id).await, ["sent", "sent"]);
}

/// An answer WeChat has not answered yet shows in the thread as SENDING (it showed
/// UNSPECIFIED), which is what a caller told "another answer is still being sent"
/// looks for.
#[tokio::test]
async fn an_answer_on_its_way_to_wechat_shows_as_sending_in_the_thread() {
    let mock = slow_mock(1500).await;
    let app = small_pool_app(&mock).await;
    let id = ticket_in_window(&app, &mock).await;
    let mut agent = app.client(Some(SOCIAL_AGENT_KEY)).await;
    let answer = tokio::spawn(async move {
        agent
            .reply_to_ticket(reply(id, "已转交相关科室处理。"))
            .await
    });
    app.wait_until_sending(id).await;

    let thread = |ticket: proto::interaction::v1::Ticket| -> Vec<(String, i32)> {
        ticket
            .thread
            .into_iter()
            .map(|m| (m.text, m.delivery))
            .collect()
    };
    let during = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.is_finished(), "WeChat has not answered yet");
    assert_eq!(
        thread(during),
        [(
            "已转交相关科室处理。".to_owned(),
            DeliveryStatus::Sending as i32
        )]
    );

    answer.await.unwrap().expect("the answer is sent");
    let after = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .get_ticket(GetTicketRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        thread(after),
        [(
            "已转交相关科室处理。".to_owned(),
            DeliveryStatus::Sent as i32
        )]
    );
}

/// An answer still on its way to WeChat holds the rating question back behind it;
/// a ticket reopened meanwhile is no longer closed, and its citizen is not asked to
/// rate an answer the department is still working on.
#[tokio::test]
async fn the_rating_question_is_not_sent_for_a_ticket_reopened_while_it_waited_its_turn() {
    let mock = slow_mock(0).await;
    let (mut app, id, on_its_way) = ticket_in_window_behind_an_answer_on_its_way(&mock).await;

    let close = close_in_background(&app, id).await;
    wait_until_closed(&app, id, None).await;
    // Reopened while the question waits its turn.
    reopen(&app, id).await;
    settle_as_sent(&app, on_its_way).await;
    close.await.unwrap().expect("the close itself succeeded");
    // The question runs detached from the close: wait for it to finish.
    app.wait_for_detached_work().await;

    assert_eq!(
        mock.state().calls_to(CUSTOM_SEND).len(),
        0,
        "no rating question for a reopened ticket"
    );
    let (state, requested): (String, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("SELECT state, rating_requested_at FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), requested), ("reopened", None));
    assert_eq!(outbound_deliveries(&app, id).await, ["sent"]);
}

/// A citizen erased (EraseCitizen) after the close, while the rating question
/// waited its turn behind an answer on its way, is not asked: no question is
/// recorded for the erased ticket, nor sent to the openid the close saw.
#[tokio::test]
async fn the_rating_question_is_not_asked_of_a_citizen_erased_while_it_waited_its_turn() {
    let mock = slow_mock(0).await;
    let (mut app, id, on_its_way) = ticket_in_window_behind_an_answer_on_its_way(&mock).await;
    let openid: String = sqlx::query_scalar("SELECT openid FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();

    let close = close_in_background(&app, id).await;
    wait_until_closed(&app, id, None).await;
    close.await.unwrap().expect("the close itself succeeded");
    app.client(Some(ADMIN_KEY))
        .await
        .erase_citizen(proto::interaction::v1::EraseCitizenRequest {
            account: crate::helpers::ACCOUNT.into(),
            openid,
            reason: "依申请删除 2026-0042".into(),
        })
        .await
        .expect("erased");
    settle_as_sent(&app, on_its_way).await;
    app.wait_for_detached_work().await;

    assert_eq!(
        mock.state().calls_to(CUSTOM_SEND).len(),
        0,
        "no rating question for an erased citizen"
    );
    assert_eq!(app.rating_questions(id).await, Vec::<String>::new());
}

/// Closes ticket `id` (unanswered, so with a note) in a task of its own.
async fn close_in_background(
    app: &TestApp,
    id: uuid::Uuid,
) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let mut closer = app.client(Some(SOCIAL_AGENT_KEY)).await;
    tokio::spawn(async move {
        closer
            .close_ticket(TicketActionRequest {
                id: id.to_string(),
                note: "已转交维修".into(),
            })
            .await
            .map(drop)
    })
}

/// Waits until ticket `id` is closed with a `closed_at` other than `before`.
async fn wait_until_closed(
    app: &TestApp,
    id: uuid::Uuid,
    before: Option<chrono::DateTime<Utc>>,
) -> chrono::DateTime<Utc> {
    eventually("the close is committed", || async {
        let (state, closed_at): (String, Option<chrono::DateTime<Utc>>) =
            sqlx::query_as("SELECT state, closed_at FROM tickets WHERE id = $1")
                .bind(id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        closed_at.filter(|at| state == "closed" && Some(*at) != before)
    })
    .await
}

async fn reopen(app: &TestApp, id: uuid::Uuid) {
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reopen_ticket(TicketActionRequest {
            id: id.to_string(),
            note: "还需上门".into(),
        })
        .await
        .expect("reopened");
}

/// The rating questions WeChat took (sent to the citizen).
fn rating_questions_received(mock: &MockWechat) -> usize {
    mock.state()
        .calls_to(CUSTOM_SEND)
        .iter()
        .filter(|call| {
            call.errcode == 0
                && call.body.as_ref().unwrap()["text"]["content"]
                    == interaction_svc::delivery::RATING_QUESTION
        })
        .count()
}

/// A two-connection service on `mock` and a ticket in its citizen's window with an
/// answer WeChat has not answered yet, which the test settles by hand
/// ([`settle_as_sent`]): a slow WeChat held for exactly as long as the test needs.
/// Returns the service, the ticket's id and the answer's id.
async fn ticket_in_window_behind_an_answer_on_its_way(
    mock: &MockWechat,
) -> (TestApp, uuid::Uuid, uuid::Uuid) {
    let app = small_pool_app(mock).await;
    let id = ticket_in_window(&app, mock).await;
    let on_its_way = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ticket_messages
             (id, ticket_id, direction, author, msg_type, body, delivery, sending_since)
         VALUES ($1, $2, 'outbound', 'agent:social', 'text', '已转交维修。', 'sending', now())",
    )
    .bind(on_its_way)
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    (app, id, on_its_way)
}

/// Waits until `id`'s rating question is with WeChat (`waiting_for` says on what
/// errand), then reopens the ticket before WeChat answers.
async fn reopen_while_wechat_has_the_question(app: &TestApp, id: uuid::Uuid, waiting_for: &str) {
    eventually(waiting_for, || async {
        (app.rating_questions(id).await == ["sending"]).then_some(())
    })
    .await;
    reopen(app, id).await;
    assert_eq!(
        app.rating_questions(id).await,
        ["sending"],
        "reopened while WeChat still had the question"
    );
}

/// Settles the answer `on_its_way` as WeChat having taken it.
async fn settle_as_sent(app: &TestApp, on_its_way: uuid::Uuid) {
    sqlx::query("UPDATE ticket_messages SET delivery = 'sent', sending_since = NULL WHERE id = $1")
        .bind(on_its_way)
        .execute(&app.db)
        .await
        .unwrap();
}

/// A follower who last wrote `last_wrote_minutes_ago` by the service's records, of
/// whom WeChat (the mock) saw no message, and their open ticket, opened
/// `opened_minutes_ago`: their openid and the ticket's id.
async fn ticket_of_a_citizen_wechat_has_not_heard_from(
    app: &TestApp,
    mock: &MockWechat,
    last_wrote_minutes_ago: i64,
    opened_minutes_ago: i64,
) -> (String, uuid::Uuid) {
    let openid = format!("o-citizen-{}", uuid::Uuid::new_v4().simple());
    app.insert_follower(&openid, Some(last_wrote_minutes_ago))
        .await;
    mock.state()
        .add_followers(DEMO_APPID, [openid.as_str()])
        .unwrap();
    let id = app
        .insert_citizen_ticket(
            &openid,
            "social-security",
            "acknowledged",
            opened_minutes_ago,
        )
        .await;
    (openid, id)
}

/// When ticket `id`'s rating question was asked, if it was.
async fn rating_requested_at(app: &TestApp, id: uuid::Uuid) -> Option<chrono::DateTime<Utc>> {
    sqlx::query_scalar("SELECT rating_requested_at FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The citizen got one rating question for ticket `id`, and it counts for the close
/// they see now (waiting for it: a close answers before its question is asked).
/// Then waits for both closes' questions (tasks of the drain) to finish: one still
/// waiting its turn when the first was sent would otherwise go unseen.
async fn assert_asked_once_for_the_close_now(app: &mut TestApp, mock: &MockWechat, id: uuid::Uuid) {
    app.wait_for_rating_questions(id, &["sent"]).await;
    eventually("the question counts as asked", || async {
        rating_requested_at(app, id).await
    })
    .await;
    app.wait_for_detached_work().await;
    let app = &*app;
    assert_eq!(
        rating_questions_received(mock),
        1,
        "one rating question for the ticket as it is closed now"
    );
    assert_eq!(app.rating_questions(id).await, ["sent"]);
    let requested = rating_requested_at(app, id).await;
    assert!(requested.is_some(), "the question counts as asked");
}

/// WeChat answers "out of window" (45015) to a rating question sent as the ticket
/// is reopened. Held, it would go out with the citizen's next message and ask them
/// to rate a ticket the department is working on again: it is withdrawn instead.
#[tokio::test]
async fn a_rating_question_wechat_did_not_take_as_the_ticket_was_reopened_is_withdrawn_not_held() {
    // Slow enough for the reopen to land while WeChat has the question.
    let mock = slow_mock(3000).await;
    let app = spawn_app_with(&wechat_env(&mock)).await;
    // Inside the window by the service's records; WeChat saw nothing of theirs.
    let (openid, id) = ticket_of_a_citizen_wechat_has_not_heard_from(&app, &mock, 5, 10).await;

    let close = close_in_background(&app, id).await;
    reopen_while_wechat_has_the_question(&app, id, "the rating question is with WeChat").await;
    close.await.unwrap().expect("the close itself succeeded");
    app.wait_for_rating_questions(id, &[]).await;
    assert_eq!(rating_questions_received(&mock), 0);

    // The citizen writes again: their window opens and what is held for them goes out.
    set_latency(&mock, 0).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .unwrap();
    app.insert_follower(&openid, Some(0)).await;
    app.deliverer
        .flush_held(
            &platform::ids::AccountId::parse(crate::helpers::ACCOUNT).unwrap(),
            &platform::ids::OpenId::parse(openid.as_str()).unwrap(),
        )
        .await
        .expect("flushed");

    assert_eq!(
        rating_questions_received(&mock),
        0,
        "no rating question for a reopened ticket"
    );
    assert_eq!(app.rating_questions(id).await, Vec::<String>::new());
}

/// Closed, reopened and closed again while an answer was still on its way to WeChat:
/// both closes' questions wait their turn behind it, and the citizen, who can rate
/// the ticket once, is asked once.
#[tokio::test]
async fn a_ticket_closed_reopened_and_closed_again_while_its_question_waited_is_asked_once() {
    let mock = slow_mock(0).await;
    let (mut app, id, on_its_way) = ticket_in_window_behind_an_answer_on_its_way(&mock).await;

    let first = close_in_background(&app, id).await;
    let first_closed = wait_until_closed(&app, id, None).await;
    reopen(&app, id).await;
    let second = close_in_background(&app, id).await;
    wait_until_closed(&app, id, Some(first_closed)).await;
    settle_as_sent(&app, on_its_way).await;
    first.await.unwrap().expect("the first close succeeded");
    second.await.unwrap().expect("the second close succeeded");

    assert_asked_once_for_the_close_now(&mut app, &mock, id).await;
}

/// The first close's question is with a slow WeChat when the ticket is reopened and
/// closed again, and the second close's question waits its turn behind it. The
/// citizen, who can rate the ticket once, gets the one question, and it counts for
/// the close they now see.
#[tokio::test]
async fn a_ticket_closed_again_while_the_first_closes_question_was_with_wechat_is_asked_once() {
    let mock = slow_mock(3000).await;
    let mut app = spawn_app_with(&wechat_env(&mock)).await;
    let id = ticket_in_window(&app, &mock).await;

    let first = close_in_background(&app, id).await;
    let first_closed = wait_until_closed(&app, id, None).await;
    eventually("the first close's question is with WeChat", || async {
        (app.rating_questions(id).await == ["sending"]).then_some(())
    })
    .await;
    reopen(&app, id).await;
    let second = close_in_background(&app, id).await;
    wait_until_closed(&app, id, Some(first_closed)).await;
    assert_eq!(
        app.rating_questions(id).await,
        ["sending"],
        "closed again while WeChat still had the first question"
    );
    first.await.unwrap().expect("the first close succeeded");
    second.await.unwrap().expect("the second close succeeded");

    assert_asked_once_for_the_close_now(&mut app, &mock, id).await;
}

/// A rating question held while the citizen was away, which their message sent for
/// and WeChat did not take as the ticket was reopened, is withdrawn rather than held
/// again for their next message.
#[tokio::test]
async fn a_held_rating_question_wechat_did_not_take_on_a_flush_as_the_ticket_was_reopened_is_withdrawn()
 {
    let mock = slow_mock(0).await;
    let app = spawn_app_with(&wechat_env(&mock)).await;
    // Last wrote three days ago: the question is held.
    let (openid, id) =
        ticket_of_a_citizen_wechat_has_not_heard_from(&app, &mock, 3 * 24 * 60, 4 * 24 * 60).await;
    let account = platform::ids::AccountId::parse(crate::helpers::ACCOUNT).unwrap();
    let citizen = platform::ids::OpenId::parse(openid.as_str()).unwrap();
    close_in_background(&app, id)
        .await
        .await
        .unwrap()
        .expect("closed");
    app.wait_for_rating_questions(id, &["held"]).await;

    // The citizen wrote, by the service's records; WeChat saw nothing of theirs and
    // answers the flush "out of window", slowly enough to reopen meanwhile.
    set_latency(&mock, 3000).await;
    app.insert_follower(&openid, Some(0)).await;
    let deliverer = app.deliverer.clone();
    let (flush_account, flush_citizen) = (account.clone(), citizen.clone());
    let flush =
        tokio::spawn(async move { deliverer.flush_held(&flush_account, &flush_citizen).await });
    reopen_while_wechat_has_the_question(&app, id, "the flush has the question").await;
    flush.await.unwrap().expect("WeChat answered the flush");
    assert_eq!(app.rating_questions(id).await, Vec::<String>::new());

    // Their next message finds nothing held for them.
    set_latency(&mock, 0).await;
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .unwrap();
    app.deliverer
        .flush_held(&account, &citizen)
        .await
        .expect("flushed");
    assert_eq!(rating_questions_received(&mock), 0);
}

/// `wait_for_detached_work` is what rating-question tests lean on: when the drain's
/// deadline cuts a question off (WeChat still holding it), it must fail the test,
/// not return as if the question had run.
#[tokio::test]
#[should_panic(expected = "detached work still running")]
async fn waiting_for_detached_work_fails_when_the_drain_leaves_work_running() {
    let mock = slow_mock(0).await;
    mock.state()
        .inject(&wechat_sim::api_server::FaultRequest {
            hold_path: Some(CUSTOM_SEND.into()),
            ..Default::default()
        })
        .unwrap();
    let mut env = wechat_env(&mock).to_vec();
    env.push(("SHUTDOWN_GRACE", "1s"));
    let mut app = spawn_app_with(&env).await;
    let id = ticket_in_window(&app, &mock).await;
    close_in_background(&app, id)
        .await
        .await
        .unwrap()
        .expect("closed");
    tokio::time::timeout(std::time::Duration::from_secs(30), mock.state().held())
        .await
        .expect("the rating question reached WeChat");

    app.wait_for_detached_work().await;
}

/// A rating question with a slow WeChat (3 s a call) when the drain begins: the
/// drain waits for it, and it reaches the citizen once. (With no access token cached
/// the question takes two calls, 6 s, past the tests' `SHUTDOWN_GRACE` of 5 s: the
/// drain cuts it off, which `wait_for_detached_work` now reports instead of
/// returning as if it had not arrived; with the default grace it fits.)
#[tokio::test]
async fn a_rating_question_with_a_slow_wechat_when_the_drain_begins_arrives() {
    let mock = slow_mock(0).await;
    let mut app = spawn_app_with(&wechat_env(&mock)).await;
    let id = ticket_in_window(&app, &mock).await;
    // The answer fetches the account's access token; the question needs none.
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(id, "已转交维修。"))
        .await
        .expect("answered");
    set_latency(&mock, 3000).await;

    close_in_background(&app, id)
        .await
        .await
        .unwrap()
        .expect("closed");
    eventually("the question is with WeChat", || async {
        (app.rating_questions(id).await == ["sending"]).then_some(())
    })
    .await;
    app.wait_for_detached_work().await;

    assert_eq!(app.rating_questions(id).await, ["sent"]);
    assert_eq!(rating_questions_received(&mock), 1);
}
