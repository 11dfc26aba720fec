//! A passive reply the gateway asked for and did not get in time (`REPLY_BUDGET`
//! spent, no responder) is not lost: the gateway leaves a `ReplyMissed` marker on
//! JetStream before its `success`, and interaction-svc sends the reply decided when
//! the callback was applied through the customer-service API, once. Through the real
//! gateway, with the mock as WeChat.

use chrono::Utc;
use interaction_svc::delivery::MissedReply;
use wechat_sim::api_server::{DEMO_APPID, MockWechat, RecordedCall, SimConfig};
use wechat_sim::traffic::{
    CallbackAccount, CallbackClient, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode,
    ReplyCheck, RetryPolicy,
};

use crate::citizen::{GH_ID, eventually_within};
use crate::helpers::{ACCOUNT, TestApp, spawn_app_with, wechat_env};

const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

/// interaction-svc with the mock as WeChat, the directory seeded, and a gateway with
/// a short reply budget (see [`says_and_gets_success`] for how it is missed).
async fn platform() -> (
    MockWechat,
    TestApp,
    CallbackSigner,
    CallbackClient,
    tokio::sync::oneshot::Sender<()>,
) {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    app.seed_directory().await;
    let account = CallbackAccount {
        id: ACCOUNT.to_owned(),
        appid: DEMO_APPID.to_owned(),
        original_id: GH_ID.to_owned(),
        token: "chenzhou-token".to_owned(),
        aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".to_owned(),
        mode: Mode::Safe,
    };
    let (url, stop) =
        crate::e2e::spawn_gateway_with(&app, &account, &[("REPLY_BUDGET", "200ms")]).await;
    let signer = CallbackSigner::new(account).expect("valid account");
    let client = CallbackClient::new(&url, RetryPolicy::default()).unwrap();
    (mock, app, signer, client, stop)
}

/// A new citizen, whose window the mock has open (their message opens it).
fn citizen(mock: &MockWechat) -> Follower {
    let openid = format!("o{}", &uuid::Uuid::new_v4().simple().to_string()[..27]);
    mock.state()
        .record_interaction(DEMO_APPID, &openid, Utc::now())
        .unwrap();
    Follower::new(openid)
}

/// The citizen writes `words` through the gateway, which answers `success`: the reply
/// path cannot answer in time, as its read of the citizen's last directory answer
/// waits behind a lock the test holds until the answer is in (a budget alone is a
/// race: the reply path may answer within any budget).
async fn says_and_gets_success(
    app: &TestApp,
    signer: &CallbackSigner,
    wechat: &CallbackClient,
    citizen: &mut Follower,
    words: &str,
) {
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE directory_answers IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let callback = signer
        .sign(
            citizen,
            &CitizenAction::Text {
                content: words.to_owned(),
            },
        )
        .unwrap();
    let delivery = wechat.deliver(&callback).await;
    lock.rollback().await.unwrap();
    assert!(!delivery.retried(), "answered within WeChat's 5 s");
    let (status, body) = delivery.answer().expect("the gateway answers");
    let check = ReplyCheck::new(signer);
    match check.check(&callback, status, body) {
        Ok(CheckedReply::NoReply) => {}
        other => panic!("the reply budget is spent: expected success, got {other:?}"),
    }
}

/// How long a test waits for a missed reply to be sent: the marker waits for its
/// callback to be applied (delivered again soon after it), and the inbound consumer
/// itself can lag tens of seconds behind a machine the clean-clone CI shares with other
/// builds. What the test checks is that the reply comes once, not how soon.
const MISSED_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(75);

/// The customer-service messages the mock took for `openid` (their JSON bodies).
fn sent_to(mock: &MockWechat, openid: &str) -> Vec<RecordedCall> {
    mock.state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .filter(|call| call.errcode == 0)
        .filter(|call| {
            call.body
                .as_ref()
                .is_some_and(|body| body["touser"] == openid)
        })
        .collect()
}

/// The customer-service messages sent to `openid`, once there are any and the
/// service has recorded its decided replies `sent`: waits up to [`MISSED_REPLY_WAIT`],
/// then fails saying where the reply stopped (its decided reply's row, the events
/// applied, every call the mock took for the citizen, and both consumers' state),
/// which a bare timeout does not (CI failed once on it).
///
/// The mock records a call before answering it, and the service marks the reply
/// `sent` only after WeChat's answer: a test that stopped at the mock's record could
/// still find the reply `sending` (a redelivered marker then hears `BeingSent`).
async fn wait_for_sent(app: &TestApp, mock: &MockWechat, openid: &str) -> Vec<RecordedCall> {
    let deadline = tokio::time::Instant::now() + MISSED_REPLY_WAIT;
    loop {
        let sent = sent_to(mock, openid);
        if !sent.is_empty() && all_recorded_sent(app, openid).await {
            return sent;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "no customer-service message within {MISSED_REPLY_WAIT:?}; {}",
                where_it_stopped(app, mock, openid).await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether every decided reply of `openid` is recorded `sent` (and there is one).
async fn all_recorded_sent(app: &TestApp, openid: &str) -> bool {
    let all_sent: Option<bool> = sqlx::query_scalar(
        "SELECT bool_and(delivery = 'sent') FROM decided_replies WHERE openid = $1",
    )
    .bind(openid)
    .fetch_one(&app.db)
    .await
    .expect("the decided replies read");
    all_sent == Some(true)
}

/// What a missed reply left behind, for a failure message. Diagnostic only: whatever
/// it cannot read (the database or NATS being what broke) is said in its place, never
/// a panic that would hide the failure it explains.
async fn where_it_stopped(app: &TestApp, mock: &MockWechat, openid: &str) -> String {
    let decided = described(
        sqlx::query_as::<_, (String, String, i32)>(
            "SELECT event_id, delivery, send_failures FROM decided_replies WHERE openid = $1",
        )
        .bind(openid)
        .fetch_all(&app.db)
        .await,
    );
    // The test's own database: every event applied is this test's.
    let applied = described(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events")
            .fetch_one(&app.db)
            .await,
    );
    let tickets = described(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tickets WHERE openid = $1")
            .bind(openid)
            .fetch_one(&app.db)
            .await,
    );
    let calls: Vec<(String, i64)> = mock
        .state()
        .calls_to(CUSTOM_SEND)
        .into_iter()
        .filter(|call| {
            call.body
                .as_ref()
                .is_some_and(|body| body["touser"] == openid)
        })
        .map(|call| (call.path, call.errcode))
        .collect();
    let consumers = match async_nats::connect(app.test_nats().url()).await {
        Ok(nats) => consumer_states(app, async_nats::jetstream::new(nats)).await,
        Err(error) => format!("consumers unreadable: NATS: {error}"),
    };
    format!(
        "decided replies (event, delivery, send failures): {decided}; events applied: \
         {applied}; tickets: {tickets}; custom sends (path, errcode): {calls:?}; {consumers}"
    )
}

/// A diagnostic read's value, or what kept it from being read.
fn described<T: std::fmt::Debug>(read: Result<T, sqlx::Error>) -> String {
    match read {
        Ok(value) => format!("{value:?}"),
        Err(error) => format!("unreadable ({error})"),
    }
}

/// Both consumers' pending, ack pending, redelivered and last delivered sequence.
async fn consumer_states(app: &TestApp, jetstream: async_nats::jetstream::Context) -> String {
    let mut consumers = Vec::new();
    for (stream, durable) in [
        (
            platform::nats::WECHAT_MISSED_REPLIES.name,
            interaction_svc::events::missed::CONSUMER.durable,
        ),
        (
            platform::nats::WECHAT_INBOUND.name,
            interaction_svc::events::inbound::CONSUMER.durable,
        ),
    ] {
        let state = match jetstream.get_stream(app.namespace().name(stream)).await {
            Ok(stream) => match stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                    &app.namespace().name(durable),
                )
                .await
            {
                Ok(mut consumer) => match consumer.info().await {
                    Ok(info) => format!(
                        "pending {}, ack pending {}, redelivered {}, last delivered seq {}",
                        info.num_pending,
                        info.num_ack_pending,
                        info.num_redelivered,
                        info.delivered.stream_sequence
                    ),
                    Err(error) => error.to_string(),
                },
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        consumers.push(format!("{durable}: {state}"));
    }
    consumers.join("; ")
}

/// The diagnostic of a reply that never came says what it could not read (here the
/// database, closed) instead of panicking in place of the failure it explains.
#[tokio::test]
async fn where_a_missed_reply_stopped_is_said_even_when_the_database_cannot_be_read() {
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    // The test's own pool; the service has its own.
    app.db.close().await;
    let said = where_it_stopped(&app, &mock, "o-nobody").await;
    assert!(
        said.contains("decided replies (event, delivery, send failures): unreadable ("),
        "{said}"
    );
    assert!(
        said.contains("interaction-missed-replies: pending 0"),
        "{said}"
    );
}

/// The callback's event id, as the decided reply is kept under it.
async fn event_id_of(app: &TestApp, openid: &str) -> String {
    sqlx::query_scalar("SELECT event_id FROM decided_replies WHERE openid = $1")
        .bind(openid)
        .fetch_one(&app.db)
        .await
        .expect("one decided reply")
}

#[tokio::test]
async fn a_directory_card_the_gateway_did_not_get_in_time_is_sent_once_as_a_customer_service_message()
 {
    let (mock, app, signer, wechat, _stop) = platform().await;
    let mut citizen = citizen(&mock);
    let openid = citizen.openid.clone();

    says_and_gets_success(&app, &signer, &wechat, &mut citizen, "公积金怎么提取").await;

    let sent = wait_for_sent(&app, &mock, &openid).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = sent[0].body.as_ref().unwrap();
    assert_eq!(body["msgtype"], "news");
    let card = &body["news"]["articles"][0];
    assert_eq!(card["title"], "公积金提取");
    assert_eq!(card["url"], "https://gjj.lincheng.example.gov.cn/tq");

    // A redelivered marker (or another replica's) sends nothing again.
    let event_id = event_id_of(&app, &openid).await;
    assert_eq!(
        app.deliverer.send_missed_reply(&event_id).await.unwrap(),
        MissedReply::AlreadyHandled
    );
    assert_eq!(sent_to(&mock, &openid).len(), 1);
}

#[tokio::test]
async fn an_acknowledgement_the_gateway_did_not_get_in_time_reaches_the_citizen_with_its_ticket() {
    let (mock, app, signer, wechat, _stop) = platform().await;
    let mut citizen = citizen(&mock);
    let openid = citizen.openid.clone();

    says_and_gets_success(
        &app,
        &signer,
        &wechat,
        &mut citizen,
        "我家楼下的路灯坏了三天了",
    )
    .await;

    let sent = wait_for_sent(&app, &mock, &openid).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = sent[0].body.as_ref().unwrap();
    assert_eq!(body["msgtype"], "text");
    let text = body["text"]["content"].as_str().unwrap();
    assert!(text.contains("已收到"), "{text}");
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
        .bind(&openid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tickets, 1);
}

/// A decided reply of `openid` as a replica left it: `delivery`, taken for sending
/// `taken_ago` before now (`sending_since`), if it was.
async fn insert_decided_reply(
    app: &TestApp,
    event_id: &str,
    delivery: &str,
    taken_ago: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO decided_replies (event_id, account, openid, reply, delivery, sending_since)
         VALUES ($1, $2, 'o-stale', convert_to('已收到', 'UTF8'), $3,
                 now() - $4::interval)",
    )
    .bind(event_id)
    .bind(ACCOUNT)
    .bind(delivery)
    .bind(taken_ago)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn delivery_of(app: &TestApp, event_id: &str) -> String {
    sqlx::query_scalar("SELECT delivery FROM decided_replies WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_missed_reply_left_sending_past_the_timeout_is_given_up_unsent_and_a_fresh_one_is_left_alone()
 {
    // A replica that stopped between committing `sending` and recording WeChat's
    // answer: the citizen may have the reply, so it is failed, not sent again.
    let app = spawn_app_with(&[
        ("SWEEP_INTERVAL", "50ms"),
        ("MISSED_REPLY_SENDING_TIMEOUT", "2m"),
    ])
    .await;
    insert_decided_reply(&app, "e-stale", "sending", Some("3 minutes")).await;
    insert_decided_reply(&app, "e-fresh", "sending", Some("1 minute")).await;
    insert_decided_reply(&app, "e-waiting", "decided", None).await;

    eventually_within("the stale reply given up", MISSED_REPLY_WAIT, || async {
        (delivery_of(&app, "e-stale").await == "failed").then_some(())
    })
    .await;
    // The same statement passed over the others: within the timeout, or not taken.
    assert_eq!(delivery_of(&app, "e-fresh").await, "sending");
    assert_eq!(delivery_of(&app, "e-waiting").await, "decided");
    // A redelivered marker finds it handled and sends nothing.
    assert_eq!(
        app.deliverer.send_missed_reply("e-stale").await.unwrap(),
        MissedReply::AlreadyHandled
    );
}

/// A marker delivered again while an earlier delivery is sending its reply waits
/// instead of being acked: WeChat may not take the reply (busy), which hands it back
/// for a delivery to send, and an acked marker has none left.
#[tokio::test]
async fn a_marker_whose_reply_is_being_sent_waits_for_that_send() {
    use interaction_svc::events::missed::{MissedReplyHandler, ReplyMissed};
    use platform::consumer::{EventHandler, HandleError, Received};

    let app = crate::helpers::spawn_app().await;
    insert_decided_reply(&app, "e-sending", "sending", Some("1 second")).await;
    assert_eq!(
        app.deliverer.send_missed_reply("e-sending").await.unwrap(),
        MissedReply::BeingSent
    );
    let handler = MissedReplyHandler::new(app.deliverer.clone());
    let marker = Received {
        event: ReplyMissed {
            event_id: "e-sending".to_owned(),
            reason: "reply budget spent".to_owned(),
        },
        subject: format!("wechat.missed.{ACCOUNT}.reply"),
        delivered: 2,
        stream_sequence: 1,
        stored_at: Some(Utc::now()),
    };
    match handler.handle(&marker).await {
        Err(HandleError::NotYet(reason)) => {
            assert_eq!(reason, "the reply is being sent by another delivery")
        }
        other => panic!("expected NotYet, got {other:?}"),
    }
    assert_eq!(
        delivery_of(&app, "e-sending").await,
        "sending",
        "left alone"
    );
    // Once that send has ended, the marker is done with.
    sqlx::query("UPDATE decided_replies SET delivery = 'sent' WHERE event_id = 'e-sending'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(handler.handle(&marker).await.is_ok());
}

#[tokio::test]
async fn a_marker_whose_callback_is_not_applied_yet_waits_for_it_rather_than_failing() {
    use interaction_svc::events::missed::{MissedReplyHandler, ReplyMissed};
    use platform::consumer::{EventHandler, HandleError, Received};

    let app = crate::helpers::spawn_app().await;
    let handler = MissedReplyHandler::new(app.deliverer.clone());
    let marker = Received {
        event: ReplyMissed {
            event_id: format!("{ACCOUNT}:o-lagging:{}", uuid::Uuid::new_v4().simple()),
            reason: "reply budget spent".to_owned(),
        },
        subject: format!("wechat.missed.{ACCOUNT}.reply"),
        delivered: 1,
        stream_sequence: 1,
        stored_at: Some(Utc::now()),
    };
    // A failure would use up the deliveries meant for a database outage and back off
    // (a 30 s lag of the inbound consumer: sent 31.5 s after the marker, or 63.5 s);
    // a wait is delivered again after a quarter of its age (sent within 38 s).
    match handler.handle(&marker).await {
        Err(HandleError::NotYet(reason)) => assert_eq!(reason, "the callback is not applied yet"),
        other => panic!("expected NotYet, got {other:?}"),
    }
}

/// A marker whose callback is applied while the marker is being claimed sends the
/// reply, never taking it for one already handled: the claim and its checks read one
/// snapshot. Made deterministic by holding the callback's transaction open while the
/// claim waits on a lock of `processed_events`, and letting the claim go only after
/// the callback has committed (as two statements, the claim had looked at
/// `decided_replies` before and the check after the commit: `AlreadyHandled`).
#[tokio::test]
async fn a_callback_applied_while_its_marker_is_claimed_is_still_sent() {
    use prost::Message as _;
    use proto::events::v1::{PassiveReply, TextReply, passive_reply::Body};

    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    let openid = citizen(&mock).openid;
    let event_id = format!("{ACCOUNT}:{openid}:1001");
    let reply = PassiveReply {
        body: Some(Body::Text(TextReply {
            content: "您的诉求已收到".to_owned(),
        })),
    }
    .encode_to_vec();

    // The inbound consumer's transaction, not committed yet.
    let mut callback = app.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO decided_replies (event_id, account, openid, reply) VALUES ($1, $2, $3, $4)",
    )
    .bind(&event_id)
    .bind(ACCOUNT)
    .bind(&openid)
    .bind(&reply)
    .execute(&mut *callback)
    .await
    .unwrap();
    let mut hold = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let holder: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *hold)
        .await
        .unwrap();

    let deliverer = app.deliverer.clone();
    let claiming = {
        let event_id = event_id.clone();
        tokio::spawn(async move { deliverer.send_missed_reply(&event_id).await })
    };
    eventually_within(
        "the claim waits for processed_events",
        std::time::Duration::from_secs(10),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE $1 = ANY (pg_blocking_pids(pid)) AND query LIKE '%decided_replies%'",
            )
            .bind(holder)
            .fetch_one(&app.db)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        },
    )
    .await;
    callback.commit().await.unwrap();
    hold.rollback().await.unwrap();

    // Its snapshot is taken once the lock is granted: the callback is in it.
    assert_eq!(claiming.await.unwrap().unwrap(), MissedReply::Sent);
    assert_eq!(sent_to(&mock, &openid).len(), 1);
}

/// A citizen's callback applied with a text reply decided for it (its row in
/// `decided_replies`, its id in `processed_events`), as the inbound consumer leaves
/// it: `(event id, openid)`.
async fn applied_callback_with_reply(app: &TestApp, mock: &MockWechat) -> (String, String) {
    use prost::Message as _;
    use proto::events::v1::{PassiveReply, TextReply, passive_reply::Body};

    let openid = citizen(mock).openid;
    let event_id = format!("{ACCOUNT}:{openid}:1001");
    let reply = PassiveReply {
        body: Some(Body::Text(TextReply {
            content: "您的诉求已收到".to_owned(),
        })),
    }
    .encode_to_vec();
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO decided_replies (event_id, account, openid, reply) VALUES ($1, $2, $3, $4)",
    )
    .bind(&event_id)
    .bind(ACCOUNT)
    .bind(&openid)
    .bind(&reply)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO processed_events (event_id) VALUES ($1)")
        .bind(&event_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (event_id, openid)
}

/// The `delivered`-th delivery of `event_id`'s marker, stored by the stream `age` ago.
fn marker_delivery(
    event_id: &str,
    delivered: i64,
    age: std::time::Duration,
) -> platform::consumer::Received<interaction_svc::events::missed::ReplyMissed> {
    platform::consumer::Received {
        event: interaction_svc::events::missed::ReplyMissed {
            event_id: event_id.to_owned(),
            reason: "reply budget spent".to_owned(),
        },
        subject: format!("wechat.missed.{ACCOUNT}.reply"),
        delivered,
        stream_sequence: 1,
        stored_at: Some(Utc::now() - age),
    }
}

/// WeChat refuses the next `sends` customer-service messages for now, unsent: its
/// per-minute limit (45011), which the service tries again. ("System busy", -1, it
/// may answer after sending: a reply met by it is given up.)
fn refused_for_now(mock: &MockWechat, sends: u32) {
    mock.state()
        .inject(&wechat_sim::api_server::FaultRequest {
            busy: Some(sends),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(45011),
            ..Default::default()
        })
        .expect("fault injected");
}

/// A marker that waited long for its callback, on another replica or before a restart
/// (this runner has no count of it), and then meets a WeChat that does not take it
/// for now is delivered again
/// rather than dead-lettered: past the consumer's patience the runner dead-letters a
/// `Transient` after one failure, whatever failed before, so the handler keeps the
/// reply's failed sends in its row and, while sends are left, asks for the marker
/// again as a wait (which the runner grants for `waits()` deliveries whatever the age).
#[tokio::test]
async fn a_missed_reply_whose_marker_waited_past_the_patience_is_tried_again_when_wechat_refuses_it_for_now()
 {
    use interaction_svc::events::missed::{CONSUMER, MissedReplyHandler};
    use platform::consumer::{EventHandler, HandleError};

    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    let (event_id, openid) = applied_callback_with_reply(&app, &mock).await;
    refused_for_now(&mock, 1);
    // Waited 14 minutes (the inbound consumer stalled), delivered 40 times: past the
    // patience and the failures a Transient gets, within the waits.
    let age = CONSUMER.patience() + std::time::Duration::from_secs(60);
    let delivered = 40;
    assert!(delivered >= CONSUMER.max_deliver && delivered <= CONSUMER.waits());

    let handler = MissedReplyHandler::new(app.deliverer.clone());
    match handler
        .handle(&marker_delivery(&event_id, delivered, age))
        .await
    {
        Err(HandleError::NotYet(reason)) => assert!(
            reason.contains("1 of 20 sends failed"),
            "a reason saying how many sends failed: {reason}"
        ),
        other => panic!(
            "expected a wait, which the runner delivers again (a Transient this old is \
             dead-lettered at once), got {other:?}"
        ),
    }
    assert!(sent_to(&mock, &openid).is_empty());

    // Past the waits too (it waited the whole patience): still a Transient, which the
    // runner that saw it wait retries (it counts its failures) and any other
    // dead-letters; a Permanent would dead-letter it on the one that would retry.
    refused_for_now(&mock, 1);
    match handler
        .handle(&marker_delivery(&event_id, CONSUMER.waits() + 1, age))
        .await
    {
        Err(HandleError::Transient(reason)) => assert!(
            reason.contains("2 of 20 sends failed") && reason.contains("patience"),
            "a reason saying how many sends failed and why: {reason}"
        ),
        other => panic!("expected a Transient past the patience and the waits, got {other:?}"),
    }

    // WeChat takes messages again: the next delivery sends the reply, once.
    handler
        .handle(&marker_delivery(&event_id, delivered + 1, age))
        .await
        .expect("sent");
    assert_eq!(sent_to(&mock, &openid).len(), 1);
    assert_eq!(delivery_of(&app, &event_id).await, "sent");
}

/// How many sends a missed reply gets against a WeChat that does not take it is
/// counted in its row,
/// shared by every replica: the 20th failure gives it up (dead-lettered with the
/// reason) whichever replica met the others, and the reply is left to be sent by a
/// replay of the dead letter.
#[tokio::test]
async fn a_missed_reply_is_given_up_after_twenty_refused_sends_whichever_replicas_tried_them() {
    use interaction_svc::events::missed::MissedReplyHandler;
    use platform::consumer::{EventHandler, HandleError};

    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    let (event_id, openid) = applied_callback_with_reply(&app, &mock).await;
    refused_for_now(&mock, 20);
    // Two replicas' handlers; neither holds anything of the marker in memory.
    let replicas = [
        MissedReplyHandler::new(app.deliverer.clone()),
        MissedReplyHandler::new(app.deliverer.clone()),
    ];
    let young = std::time::Duration::from_secs(1);
    for delivered in 1..20 {
        let handler = &replicas[delivered as usize % 2];
        match handler
            .handle(&marker_delivery(&event_id, delivered, young))
            .await
        {
            Err(HandleError::Transient(_)) => {}
            other => panic!("send {delivered}: expected a retry, got {other:?}"),
        }
    }
    match replicas[0]
        .handle(&marker_delivery(&event_id, 20, young))
        .await
    {
        Err(HandleError::Permanent(reason)) => assert!(
            reason.contains("20 of 20 sends failed"),
            "a reason saying how many sends failed: {reason}"
        ),
        other => panic!("the 20th failed send gives up: got {other:?}"),
    }
    assert!(sent_to(&mock, &openid).is_empty());
    assert_eq!(
        delivery_of(&app, &event_id).await,
        "decided",
        "left for a replay"
    );

    // The dead letter replayed once WeChat is back: a new message, sent once.
    replicas[1]
        .handle(&marker_delivery(&event_id, 1, young))
        .await
        .expect("sent");
    assert_eq!(sent_to(&mock, &openid).len(), 1);
    assert_eq!(delivery_of(&app, &event_id).await, "sent");
}

/// A missed reply's send met by `fault` (on the customer-service API, once).
async fn missed_reply_meeting(
    fault: wechat_sim::api_server::FaultRequest,
) -> (
    MockWechat,
    TestApp,
    String,
    Result<(), platform::consumer::HandleError>,
) {
    use interaction_svc::events::missed::MissedReplyHandler;
    use platform::consumer::EventHandler;

    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let app = spawn_app_with(&wechat_env(&mock)).await;
    let (event_id, _) = applied_callback_with_reply(&app, &mock).await;
    mock.state().inject(&fault).expect("fault injected");
    let handler = MissedReplyHandler::new(app.deliverer.clone());
    let young = std::time::Duration::from_secs(1);
    let handled = handler.handle(&marker_delivery(&event_id, 1, young)).await;
    (mock, app, event_id, handled)
}

/// WeChat sent the reply and then said "system busy" (-1), as it may: the reply is
/// given up (the citizen may have it), not handed back for another send.
#[tokio::test]
async fn a_missed_reply_wechat_sent_and_answered_busy_is_given_up_not_sent_again() {
    let (mock, app, event_id, handled) =
        missed_reply_meeting(wechat_sim::api_server::FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_after_effect: Some(true),
            ..Default::default()
        })
        .await;

    let calls = mock.state().calls_to(CUSTOM_SEND).len();
    assert_eq!(calls, 1, "sent once, not again: {handled:?}");
    handled.expect("acked: given up");
    assert_eq!(delivery_of(&app, &event_id).await, "failed");
}

/// The daily quota of customer-service messages is used up (45009): the reply is
/// given up at once, not tried again until the marker's sends run out.
#[tokio::test]
async fn a_missed_reply_over_the_daily_quota_is_given_up_at_once() {
    let (mock, app, event_id, handled) =
        missed_reply_meeting(wechat_sim::api_server::FaultRequest {
            busy: Some(1),
            busy_path: Some(CUSTOM_SEND.into()),
            busy_errcode: Some(45009),
            ..Default::default()
        })
        .await;

    handled.expect("acked: given up, not retried");
    assert_eq!(mock.state().calls_to(CUSTOM_SEND).len(), 1);
    assert_eq!(delivery_of(&app, &event_id).await, "failed");
}
