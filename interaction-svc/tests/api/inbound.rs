//! The inbound consumer: followers, tickets opened and joined with routing and
//! deadlines, exactly-once application, dead letters, ratings.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use interaction_svc::domain::{DeadlinePolicy, MatchKind, ReplyContent, ReplyRule, RoutingRule};
use interaction_svc::store::rules::{self, RulesNotifier};
use prost::Message as _;
use proto::events::v1::{DeadLetter, FollowerChanged, TicketChangeKind, TicketChanged};
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Citizen, GH_ID, eventually, inbound, text_of};
use crate::helpers::{ACCOUNT, TestApp, spawn_app, spawn_app_with_wechat};

#[derive(Debug, sqlx::FromRow)]
struct Follower {
    subscribed: bool,
    subscribed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    qr_scene: String,
    last_interaction_at: Option<DateTime<Utc>>,
    latitude: Option<f64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Ticket {
    id: uuid::Uuid,
    department: String,
    category: String,
    state: String,
    summary: String,
    opened_at: DateTime<Utc>,
    acknowledge_due_at: DateTime<Utc>,
    resolve_due_at: DateTime<Utc>,
    rating: Option<i16>,
}

impl TestApp {
    async fn follower(&self, openid: &str) -> Option<Follower> {
        sqlx::query_as(
            "SELECT subscribed, subscribed_at, unsubscribed_at, qr_scene, last_interaction_at, latitude
               FROM followers WHERE account = $1 AND openid = $2",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .fetch_optional(&self.db)
        .await
        .expect("read follower")
    }

    async fn tickets_of(&self, openid: &str) -> Vec<Ticket> {
        sqlx::query_as(
            "SELECT id, department, category, state, summary, opened_at, acknowledge_due_at,
                    resolve_due_at, rating
               FROM tickets WHERE account = $1 AND openid = $2 ORDER BY opened_at, id",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .fetch_all(&self.db)
        .await
        .expect("read tickets")
    }

    async fn thread_of(&self, ticket: uuid::Uuid) -> Vec<String> {
        sqlx::query_scalar("SELECT body FROM ticket_messages WHERE ticket_id = $1 ORDER BY at, id")
            .bind(ticket)
            .fetch_all(&self.db)
            .await
            .expect("read thread")
    }

    async fn history_of(
        &self,
        ticket: uuid::Uuid,
    ) -> Vec<(Option<String>, String, String, String)> {
        sqlx::query_as(
            "SELECT from_state, to_state, actor, action FROM ticket_transitions
              WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket)
        .fetch_all(&self.db)
        .await
        .expect("read history")
    }

    /// Waits until the citizen has `count` thread messages in their tickets.
    async fn wait_for_thread_messages(&self, openid: &str, count: i64) {
        eventually(&format!("{count} thread messages of {openid}"), || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
                  WHERE t.openid = $1",
            )
            .bind(openid)
            .fetch_one(&self.db)
            .await
            .expect("count");
            (n >= count).then_some(())
        })
        .await;
    }

    pub async fn rules_notifier(&self) -> RulesNotifier {
        RulesNotifier::new(self.nats().await, self.namespace().clone())
    }
}

fn routing_rule(keywords: &[&str], department: &str, category: &str) -> RoutingRule {
    RoutingRule {
        id: uuid::Uuid::nil(),
        account: ACCOUNT.into(),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        category: category.into(),
        department: department.into(),
        priority: 10,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn subscribe_unsubscribe_and_resubscribe_update_the_follower_and_announce_it() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();

    let follow = citizen.does(CitizenAction::SubscribeWithScene {
        scene: "metro-line-3".into(),
    });
    app.publish(&follow).await;
    let follower = eventually("the follow is recorded", || async {
        app.follower(&citizen.openid).await.filter(|f| f.subscribed)
    })
    .await;
    assert_eq!(follower.qr_scene, "metro-line-3");
    assert_eq!(follower.subscribed_at, Some(follow.create_time()));
    assert_eq!(follower.last_interaction_at, Some(follow.create_time()));

    app.publish(&citizen.does(CitizenAction::Unsubscribe)).await;
    eventually("the unfollow is recorded", || async {
        app.follower(&citizen.openid)
            .await
            .filter(|f| !f.subscribed)
    })
    .await;

    let refollow = citizen.does(CitizenAction::Subscribe);
    app.publish(&refollow).await;
    let follower = eventually("the re-follow is recorded", || async {
        app.follower(&citizen.openid).await.filter(|f| f.subscribed)
    })
    .await;
    assert_eq!(
        follower.unsubscribed_at, None,
        "a re-follow clears the unfollow"
    );
    assert_eq!(follower.subscribed_at, Some(refollow.create_time()));
    assert_eq!(follower.qr_scene, "", "a plain follow has no scene");

    let events = app
        .interaction_events(&format!("interaction.{ACCOUNT}.follower.>"), 3)
        .await;
    let announced: Vec<(String, String, String)> = events
        .iter()
        .map(|m| {
            let event = FollowerChanged::decode(m.payload.clone()).expect("FollowerChanged");
            assert_eq!(event.openid, citizen.openid);
            (
                app.namespace().strip(m.subject.as_str()).to_owned(),
                event.kind,
                event.qr_scene,
            )
        })
        .collect();
    let subject = |kind: &str| format!("interaction.{ACCOUNT}.follower.{kind}");
    assert_eq!(
        announced,
        vec![
            (
                subject("subscribed"),
                "subscribed".into(),
                "metro-line-3".into()
            ),
            (
                subject("unsubscribed"),
                "unsubscribed".into(),
                String::new()
            ),
            (subject("subscribed"), "subscribed".into(), String::new()),
        ]
    );
}

#[tokio::test]
async fn an_older_follow_handled_late_does_not_rewind_the_newer_one() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let older = citizen.does(CitizenAction::SubscribeWithScene {
        scene: "metro-line-3".into(),
    });
    let newer = citizen.does(CitizenAction::Subscribe);
    app.publish(&newer).await;
    eventually("the newer follow is recorded", || async {
        app.follower(&citizen.openid).await.filter(|f| f.subscribed)
    })
    .await;

    app.publish(&older).await;
    eventually("the older follow is handled", || async {
        let handled: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM processed_events WHERE event_id = $1)",
        )
        .bind(older.event_id())
        .fetch_one(&app.db)
        .await
        .expect("read");
        handled.then_some(())
    })
    .await;

    let follower = app.follower(&citizen.openid).await.expect("follower");
    assert!(follower.subscribed);
    assert_eq!(follower.subscribed_at, Some(newer.create_time()));
    assert_eq!(follower.qr_scene, "", "the newer follow had no scene");
}

#[tokio::test]
async fn an_unfollow_deletes_the_followers_location() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    app.publish(&citizen.does(CitizenAction::Subscribe)).await;
    app.publish(&citizen.does(CitizenAction::LocationEvent {
        latitude: 25.77,
        longitude: 113.01,
        precision: 30.0,
    }))
    .await;
    eventually("the location is recorded", || async {
        app.follower(&citizen.openid)
            .await
            .filter(|f| f.latitude.is_some())
    })
    .await;

    app.publish(&citizen.does(CitizenAction::Unsubscribe)).await;
    eventually("the unfollow is recorded", || async {
        app.follower(&citizen.openid)
            .await
            .filter(|f| !f.subscribed)
    })
    .await;

    let location: (Option<f64>, Option<f64>, Option<f64>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT latitude, longitude, location_precision, location_at
               FROM followers WHERE account = $1 AND openid = $2",
    )
    .bind(ACCOUNT)
    .bind(&citizen.openid)
    .fetch_one(&app.db)
    .await
    .expect("read follower");
    assert_eq!(location, (None, None, None, None));
}

#[tokio::test]
async fn a_menu_click_opens_the_window_and_a_later_location_report_is_recorded_without_it() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let click = citizen.does(CitizenAction::Click {
        key: "HOTLINE".into(),
    });
    app.publish(&click).await;
    eventually("the click is recorded", || async {
        app.follower(&citizen.openid)
            .await
            .filter(|f| f.last_interaction_at == Some(click.create_time()))
    })
    .await;
    app.publish(&citizen.does(CitizenAction::LocationEvent {
        latitude: 25.77,
        longitude: 113.01,
        precision: 30.0,
    }))
    .await;
    let follower = eventually("the location is recorded", || async {
        app.follower(&citizen.openid)
            .await
            .filter(|f| f.latitude.is_some())
    })
    .await;

    assert_eq!(follower.latitude, Some(25.77));
    assert_eq!(
        follower.last_interaction_at,
        Some(click.create_time()),
        "an automatic location report does not open WeChat's window"
    );
    assert!(app.tickets_of(&citizen.openid).await.is_empty());
}

#[tokio::test]
async fn a_text_message_opens_a_ticket_routed_by_keyword_and_a_second_message_joins_it() {
    let app = spawn_app().await;
    let notifier = app.rules_notifier().await;
    rules::create_routing_rule(
        &app.db,
        &notifier,
        routing_rule(&["社保"], "social-security", "help"),
        None,
    )
    .await
    .expect("routing rule saved");
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let first = citizen.says("我的社保卡丢了，怎么补办？");
    // The replica has the rule once the reply path names the department.
    eventually("the routing rule is in effect", || async {
        let reply = app.passive_reply(&nats, &first).await;
        text_of(&reply)
            .is_some_and(|t| t.contains("social-security"))
            .then_some(())
    })
    .await;

    app.publish(&first).await;
    let second = citizen.says("补充：卡号尾号1234");
    app.publish(&second).await;
    app.wait_for_thread_messages(&citizen.openid, 2).await;

    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1, "the second message joins the open ticket");
    let ticket = &tickets[0];
    assert_eq!(ticket.department, "social-security");
    assert_eq!(ticket.category, "help");
    assert_eq!(ticket.state, "open");
    assert_eq!(ticket.summary, "我的社保卡丢了，怎么补办？");
    assert_eq!(ticket.opened_at, first.create_time());
    let due = DeadlinePolicy::default().deadlines(first.create_time(), "help");
    assert_eq!(ticket.acknowledge_due_at, due.acknowledge_due_at);
    assert_eq!(ticket.resolve_due_at, due.resolve_due_at);
    assert_eq!(
        app.thread_of(ticket.id).await,
        vec![
            "我的社保卡丢了，怎么补办？".to_owned(),
            "补充：卡号尾号1234".to_owned()
        ]
    );
    assert_eq!(
        app.history_of(ticket.id).await,
        vec![(None, "open".into(), "citizen".into(), "opened".into())],
        "a follow-up on an open ticket changes no state"
    );

    let events = app
        .interaction_events(&format!("interaction.{ACCOUNT}.ticket.>"), 2)
        .await;
    let kinds: Vec<(TicketChangeKind, String)> = events
        .iter()
        .map(|m| {
            let event = TicketChanged::decode(m.payload.clone()).expect("TicketChanged");
            (event.kind(), event.department)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (TicketChangeKind::Opened, "social-security".into()),
            (TicketChangeKind::CitizenMessage, "social-security".into())
        ]
    );
}

/// PostgreSQL text cannot hold U+0000: a NUL byte in the CDATA of a citizen's message
/// once failed every insert of its batch until the event was dead-lettered.
#[tokio::test]
async fn a_message_with_a_nul_character_opens_a_ticket_without_it() {
    let app = spawn_app().await;
    let citizen = Citizen::new();
    // Written by hand: the simulator's XML writer leaves characters XML forbids out,
    // while WeChat's callbacks have carried them through.
    let xml = format!(
        "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
         <FromUserName><![CDATA[{}]]></FromUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[停水\u{0}]]></Content>\
         <MsgId>{}</MsgId></xml>",
        citizen.openid,
        Utc::now().timestamp(),
        uuid::Uuid::new_v4().as_u128() as u64 >> 1,
    );
    app.publish(&inbound(&xml)).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;

    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].summary, "停水");
    assert_eq!(app.thread_of(tickets[0].id).await, vec!["停水".to_owned()]);
}

#[tokio::test]
async fn a_message_without_a_matching_route_goes_to_the_default_department() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    app.publish(&citizen.does(CitizenAction::Voice {
        media_id: "media-1".into(),
        format: "amr".into(),
        recognition: "小区门口的路灯坏了".into(),
    }))
    .await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;
    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].department, "citizen-services");
    assert_eq!(tickets[0].category, "consultation");
    assert_eq!(
        app.thread_of(tickets[0].id).await,
        vec!["[语音] 小区门口的路灯坏了".to_owned()]
    );
}

#[tokio::test]
async fn a_follow_up_on_an_answered_ticket_needs_the_department_again() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let ticket = app
        .insert_citizen_ticket(&citizen.openid, "transport", "answered", 60)
        .await;
    app.publish(&citizen.says("还是没有解决")).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;
    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].id, ticket);
    assert_eq!(tickets[0].state, "acknowledged");
    assert_eq!(
        app.history_of(ticket).await,
        vec![(
            Some("answered".into()),
            "acknowledged".into(),
            "citizen".into(),
            "citizen_message".into()
        )]
    );
}

#[tokio::test]
async fn a_message_a_rule_fully_answers_opens_no_ticket() {
    let app = spawn_app().await;
    let notifier = app.rules_notifier().await;
    rules::create_reply_rule(
        &app.db,
        &notifier,
        ReplyRule {
            id: uuid::Uuid::nil(),
            account: ACCOUNT.into(),
            kind: MatchKind::Exact,
            patterns: vec!["办事指南".into()],
            priority: 0,
            reply: ReplyContent::Text("请点击菜单“办事服务”。".into()),
            resolves: true,
            enabled: true,
            created_at: Utc::now(),
        },
        None,
    )
    .await
    .expect("rule saved");
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let answered = citizen.says("办事指南");
    eventually("the rule is in effect", || async {
        let reply = app.passive_reply(&nats, &answered).await;
        (text_of(&reply) == Some("请点击菜单“办事服务”。")).then_some(())
    })
    .await;
    app.publish(&answered).await;
    // A later unanswered message shows the first was processed without a ticket.
    app.publish(&citizen.says("另外想问一下公积金")).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;
    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        app.thread_of(tickets[0].id).await,
        vec!["另外想问一下公积金".to_owned()]
    );
}

#[tokio::test]
async fn the_same_inbound_event_delivered_twice_changes_nothing() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let message = citizen.says("噪音扰民");
    // Different Nats-Msg-Ids so JetStream stores both: only the event id can dedupe.
    app.publish_raw(
        &message.suffix,
        "delivery-1",
        prost::Message::encode_to_vec(&message.inbound),
    )
    .await;
    app.publish_raw(
        &message.suffix,
        "delivery-2",
        prost::Message::encode_to_vec(&message.inbound),
    )
    .await;
    // A later message of the same citizen is handled after both copies.
    let later = citizen.says("在吗");
    app.publish(&later).await;
    app.wait_for_thread_messages(&citizen.openid, 2).await;

    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        app.thread_of(tickets[0].id).await,
        vec!["噪音扰民".to_owned(), "在吗".to_owned()]
    );
    let opened: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject LIKE '%.ticket.opened'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(opened, 1);
}

#[tokio::test]
async fn an_undecodable_payload_is_dead_lettered_and_the_consumer_moves_on() {
    let app = spawn_app().await;
    app.publish_raw(
        &format!("{ACCOUNT}.msg.text"),
        "garbage-1",
        b"\xff\xfenot protobuf".to_vec(),
    )
    .await;
    let mut citizen = Citizen::new();
    app.publish(&citizen.says("后面的消息照常处理")).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;

    let jetstream = async_nats::jetstream::new(app.nats().await);
    let stream = jetstream
        .get_stream(app.namespace().name("DEADLETTER"))
        .await
        .expect("DEADLETTER stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .expect("consumer");
    let letter = eventually("the dead letter", || async {
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(std::time::Duration::from_millis(300))
            .messages()
            .await
            .ok()?;
        batch.next().await?.ok()
    })
    .await;
    assert!(
        letter
            .subject
            .as_str()
            .ends_with("deadletter.interaction-svc.wechat_inbound")
    );
    let letter = DeadLetter::decode(letter.payload.clone()).expect("DeadLetter");
    assert_eq!(letter.service, "interaction-svc");
    assert!(
        letter
            .reason
            .starts_with("undecodable: payload is not an events.v1.Inbound"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.payload, b"\xff\xfenot protobuf");
}

#[tokio::test]
async fn a_digit_after_closing_records_the_rating_and_opens_no_ticket() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let ticket = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "closed", 120)
        .await;
    sqlx::query("UPDATE tickets SET closed_at = now(), rating_requested_at = now() WHERE id = $1")
        .bind(ticket)
        .execute(&app.db)
        .await
        .unwrap();

    let nats = app.nats().await;
    let rating = citizen.says("５");
    let thanks = app.passive_reply(&nats, &rating).await;
    assert!(
        text_of(&thanks).is_some_and(|t| t.contains("感谢您的评价")),
        "{thanks:?}"
    );
    app.publish(&rating).await;
    let rated = eventually("the rating is recorded", || async {
        app.tickets_of(&citizen.openid)
            .await
            .into_iter()
            .find(|t| t.rating.is_some())
    })
    .await;
    assert_eq!(rated.id, ticket);
    assert_eq!(rated.rating, Some(5));
    // Asked again after the consumer recorded it (a gateway retry), it is still thanks.
    let again = app.passive_reply(&nats, &rating).await;
    assert_eq!(text_of(&again), text_of(&thanks));

    let events = app
        .interaction_events(&format!("interaction.{ACCOUNT}.ticket.rated"), 1)
        .await;
    let event = TicketChanged::decode(events[0].payload.clone()).expect("TicketChanged");
    assert_eq!((event.kind(), event.rating), (TicketChangeKind::Rated, 5));
    assert_eq!(event.department, "social-security");
    assert_eq!(
        app.history_of(ticket).await,
        vec![(
            Some("closed".into()),
            "closed".into(),
            "citizen".into(),
            "rated".into()
        )]
    );

    // A second digit is an ordinary message now: it opens a ticket.
    app.publish(&citizen.says("5")).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;
    assert_eq!(app.tickets_of(&citizen.openid).await.len(), 2);
}

/// The consumer's lane of a citizen's callbacks (as `platform::consumer` picks it,
/// by openid over its four lanes).
fn lane_of(openid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    openid.hash(&mut hasher);
    hasher.finish() % 4
}

#[tokio::test]
async fn a_returning_citizens_held_answers_do_not_hold_up_the_other_citizens_of_their_lane() {
    use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};
    // Every WeChat call takes 2 s: the token, then the held answer, 4 s in all.
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock api starts");
    let faults = reqwest::Client::new()
        .post(format!("{}/sim/faults", mock.base_url()))
        .header("content-type", "application/json")
        .body(r#"{"latency_ms":2000}"#)
        .send()
        .await
        .expect("fault injected");
    assert!(faults.status().is_success());
    let app = spawn_app_with_wechat(&mock).await;
    let mut away = Citizen::new();
    app.insert_follower(&away.openid, Some(3 * 24 * 60)).await;
    let ticket = app
        .insert_citizen_ticket(&away.openid, "social-security", "answered", 5000)
        .await;
    sqlx::query("UPDATE tickets SET awaiting_citizen = true WHERE id = $1")
        .bind(ticket)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, delivery, at)
         VALUES ($1, $2, 'outbound', 'social-security', 'text', '路灯已修好。', 'held',
                 now() - interval '2 days')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(ticket)
    .execute(&app.db)
    .await
    .unwrap();
    let mut other = std::iter::repeat_with(Citizen::new)
        .find(|candidate| lane_of(&candidate.openid) == lane_of(&away.openid))
        .unwrap();

    let back = away.says("在吗？");
    mock.state()
        .record_interaction(DEMO_APPID, &away.openid, back.create_time())
        .unwrap();
    app.publish(&back).await;
    eventually("the held answer is being sent", || async {
        let sending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages WHERE ticket_id = $1 AND delivery = 'sending')",
        )
        .bind(ticket)
        .fetch_one(&app.db)
        .await
        .unwrap();
        sending.then_some(())
    })
    .await;

    let started = std::time::Instant::now();
    app.publish(&other.says("小区门口的路灯不亮了")).await;
    eventually("the other citizen's ticket opens", || async {
        (app.tickets_of(&other.openid).await.len() == 1).then_some(())
    })
    .await;
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(1500),
        "the other citizen waited {waited:?} behind a held-answer flush"
    );
    eventually("the held answer is sent", || async {
        let delivery: String = sqlx::query_scalar(
            "SELECT delivery FROM ticket_messages WHERE ticket_id = $1 AND direction = 'outbound'",
        )
        .bind(ticket)
        .fetch_one(&app.db)
        .await
        .unwrap();
        (delivery == "sent").then_some(())
    })
    .await;
    assert_eq!(
        mock.state().calls_to("/cgi-bin/message/custom/send").len(),
        1
    );
}

#[tokio::test]
async fn a_full_width_message_is_routed_like_the_reply_rules_read_it() {
    let app = spawn_app().await;
    let notifier = app.rules_notifier().await;
    rules::create_routing_rule(
        &app.db,
        &notifier,
        routing_rule(&["ETC"], "transport", "help"),
        None,
    )
    .await
    .expect("routing rule saved");
    let nats = app.nats().await;
    let half_width = Citizen::new().says("etc怎么办理");
    eventually("the routing rule is in effect", || async {
        let reply = app.passive_reply(&nats, &half_width).await;
        text_of(&reply)
            .is_some_and(|t| t.contains("transport"))
            .then_some(())
    })
    .await;

    // What a Chinese input method types in its full-width mode.
    let mut citizen = Citizen::new();
    let question = citizen.says("ＥＴＣ怎么办理");
    let reply = app.passive_reply(&nats, &question).await;
    assert!(
        text_of(&reply).is_some_and(|t| t.contains("transport")),
        "{reply:?}"
    );
    app.publish(&question).await;
    app.wait_for_thread_messages(&citizen.openid, 1).await;
    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(
        (tickets[0].department.as_str(), tickets[0].category.as_str()),
        ("transport", "help")
    );
}

#[tokio::test]
async fn a_follow_up_a_rule_fully_answers_still_joins_the_citizens_active_ticket() {
    let app = spawn_app().await;
    let notifier = app.rules_notifier().await;
    rules::create_reply_rule(
        &app.db,
        &notifier,
        ReplyRule {
            id: uuid::Uuid::nil(),
            account: ACCOUNT.into(),
            kind: MatchKind::Contains,
            patterns: vec!["社保".into()],
            priority: 0,
            reply: ReplyContent::Text("社保业务请点击菜单“办事服务”。".into()),
            resolves: true,
            enabled: true,
            created_at: Utc::now(),
        },
        None,
    )
    .await
    .expect("rule saved");
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let ticket = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "answered", 60)
        .await;
    let follow_up = citizen.says("你们答复的社保卡补办办法不对，窗口说不能这样办");
    // The citizen still gets the rule's answer.
    eventually("the rule is in effect", || async {
        let reply = app.passive_reply(&nats, &follow_up).await;
        (text_of(&reply) == Some("社保业务请点击菜单“办事服务”。")).then_some(())
    })
    .await;

    app.publish(&follow_up).await;
    // The rule's answer is announced in the transaction that applies the message.
    eventually("the follow-up is applied", || async {
        let announced: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE subject LIKE 'interaction.%.autoreply.%')",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        announced.then_some(())
    })
    .await;
    assert_eq!(
        app.thread_of(ticket).await,
        ["你们答复的社保卡补办办法不对，窗口说不能这样办"]
    );
    let tickets = app.tickets_of(&citizen.openid).await;
    assert_eq!(tickets.len(), 1, "no second ticket");
    assert_eq!(
        tickets[0].state, "acknowledged",
        "the department is needed again"
    );
}
