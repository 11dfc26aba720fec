//! End to end: simulated citizens post signed, encrypted callbacks to the real gateway
//! (in-process), which publishes them to JetStream and asks for passive replies;
//! interaction-svc turns them into tickets, departments work them over gRPC, and
//! answers reach the mock WeChat API. Real NATS (one namespace) and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use gateway::edge::EdgeRules;
use interaction_svc::domain::default_reply;
use proto::interaction::v1::{
    DeliveryStatus, Direction, GetTicketRequest, ListTicketsRequest, MatchKind, QueueEvent,
    QueueEventKind, ReplyRule, ReplyToTicketRequest, RoutingRule, Ticket, TicketActionRequest,
    TicketState, WatchQueueRequest,
};
use tokio::sync::oneshot;
use tonic::Streaming;
use wechat::reply::ReplyBody;
use wechat_sim::api_server::{DEMO_APPID, MockWechat, SimConfig};
use wechat_sim::traffic::{
    CallbackAccount, CallbackClient, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode,
    ReplyCheck, RetryPolicy, SignedCallback,
};

use crate::citizen::{GH_ID, eventually};
use crate::helpers::{
    ACCOUNT, ADMIN_KEY, Replica, SOCIAL_AGENT_KEY, TestApp, new_reply_rule, new_routing_rule,
    spawn_app_with, wechat_env,
};

const QUESTION: &str = "社保卡丢了怎么补办";
const DEPARTMENT: &str = "social-security";
const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";
const RATING_QUESTION: &str = "请对本次答复评分，回复数字1-5";
const RATING_THANKS: &str = "感谢您的评价！您的意见将帮助我们改进服务。";

/// The platform as a citizen and a department meet it: the mock WeChat API,
/// interaction-svc and the gateway, sharing one NATS namespace, with account
/// [`ACCOUNT`] known to all three under the mock's demo appid.
struct Platform {
    mock: MockWechat,
    app: TestApp,
    signer: CallbackSigner,
    check: ReplyCheck,
    wechat: CallbackClient,
    /// The gateway's copy of the reply rules.
    edge: Arc<EdgeRules>,
    _gateway: oneshot::Sender<()>,
}

impl Platform {
    /// Starts everything; `extra` configures interaction-svc. An admin routes
    /// "社保" messages to social-security as consultations.
    async fn start(extra: &[(&str, &str)]) -> Self {
        let mock = MockWechat::start(SimConfig::default())
            .await
            .expect("mock api starts");
        let mut env: Vec<(&str, &str)> = wechat_env(&mock).to_vec();
        env.extend_from_slice(extra);
        let app = spawn_app_with(&env).await;

        let account = CallbackAccount {
            id: ACCOUNT.to_owned(),
            appid: DEMO_APPID.to_owned(),
            original_id: GH_ID.to_owned(),
            token: "chenzhou-token".to_owned(),
            aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".to_owned(),
            mode: Mode::Safe,
        };
        let (gateway_url, stop, edge) = start_gateway(&app, &account, &[]).await;
        let edge = edge.expect("edge rules are on by default");
        let signer = CallbackSigner::new(account).expect("valid account");
        let check = ReplyCheck::new(&signer);
        let wechat = CallbackClient::new(&gateway_url, RetryPolicy::default()).unwrap();

        app.client(Some(ADMIN_KEY))
            .await
            .create_routing_rule(new_routing_rule(RoutingRule {
                account: ACCOUNT.into(),
                keywords: vec!["社保".into()],
                category: "consultation".into(),
                department: DEPARTMENT.into(),
                priority: 10,
                ..Default::default()
            }))
            .await
            .expect("routing rule created");
        Self {
            mock,
            app,
            signer,
            check,
            wechat,
            edge,
            _gateway: stop,
        }
    }

    /// A citizen who has never written.
    fn citizen() -> Follower {
        Follower::new(format!(
            "o{}",
            &uuid::Uuid::new_v4().simple().to_string()[..27]
        ))
    }

    /// WeChat's side of a citizen acting: their 48-hour window opens (as the demo
    /// records it) and the callback is delivered; returns the passive reply's text.
    async fn citizen_does(&self, citizen: &mut Follower, action: CitizenAction) -> Option<String> {
        self.mock
            .state()
            .record_interaction(DEMO_APPID, &citizen.openid, Utc::now())
            .unwrap();
        let callback = self.signer.sign(citizen, &action).unwrap();
        self.post(&callback).await
    }

    /// Delivers `callback` once and checks the answer as WeChat does (status,
    /// `MsgSignature`, decryption, swapped addresses); returns the reply's text.
    async fn post(&self, callback: &SignedCallback) -> Option<String> {
        let delivery = self.wechat.deliver(callback).await;
        assert!(!delivery.retried(), "answered within WeChat's 5 s");
        let (status, body) = delivery.answer().expect("the gateway answers");
        match self.check.check(callback, status, body) {
            Ok(CheckedReply::NoReply) => None,
            Ok(CheckedReply::Reply { reply, encrypted }) => {
                assert!(encrypted, "safe mode answers encrypted");
                match reply.body {
                    ReplyBody::Text { content } => Some(content),
                    other => panic!("expected a text reply, got {other:?}"),
                }
            }
            Err(e) => panic!("WeChat would refuse the answer: {e}"),
        }
    }

    /// Subscribes through the gateway and waits until interaction-svc knows the
    /// follower (so later SQL on the follower row is not overtaken).
    async fn subscribe(&self, citizen: &mut Follower, window: bool) {
        let reply = if window {
            self.citizen_does(citizen, CitizenAction::Subscribe).await
        } else {
            let callback = self
                .signer
                .sign(citizen, &CitizenAction::Subscribe)
                .unwrap();
            self.post(&callback).await
        };
        assert_eq!(reply, None, "no welcome rule is configured");
        let openid = citizen.openid.clone();
        eventually("the follower is recorded", || async {
            let subscribed: Option<bool> = sqlx::query_scalar(
                "SELECT subscribed FROM followers WHERE account = $1 AND openid = $2",
            )
            .bind(ACCOUNT)
            .bind(&openid)
            .fetch_optional(&self.app.db)
            .await
            .unwrap();
            (subscribed == Some(true)).then_some(())
        })
        .await;
    }

    /// The citizen's tickets as their department lists them.
    async fn tickets_of(&self, openid: &str) -> Vec<Ticket> {
        self.app
            .client(Some(SOCIAL_AGENT_KEY))
            .await
            .list_tickets(ListTicketsRequest {
                openid: openid.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tickets
    }

    /// The citizen's only ticket, once it is open (≤10 s).
    async fn ticket_opened_for(&self, openid: &str) -> Ticket {
        eventually("the citizen's ticket opens", || async {
            let mut tickets = self.tickets_of(openid).await;
            assert!(tickets.len() <= 1, "one ticket per citizen: {tickets:?}");
            tickets.pop()
        })
        .await
    }

    async fn get(&self, id: &str) -> Ticket {
        self.app
            .client(Some(SOCIAL_AGENT_KEY))
            .await
            .get_ticket(GetTicketRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    /// A department agent's watch on its own queue.
    async fn watch(&self, key: &'static str) -> Streaming<QueueEvent> {
        self.app
            .client(Some(key))
            .await
            .watch_queue(WatchQueueRequest::default())
            .await
            .expect("watch starts")
            .into_inner()
    }

    /// The customer-service messages WeChat accepted for `openid`, in order.
    fn sent_to(&self, openid: &str) -> Vec<String> {
        self.mock
            .state()
            .calls_to(CUSTOM_SEND)
            .into_iter()
            .filter(|call| call.errcode == 0)
            .filter_map(|call| call.body)
            .filter(|body| body["touser"] == openid)
            .map(|body| body["text"]["content"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// A second interaction-svc on the same database and namespace.
    async fn replica(&self, extra: &[(&str, &str)]) -> Replica {
        let mut env: Vec<(&str, &str)> = wechat_env(&self.mock).to_vec();
        env.extend_from_slice(extra);
        self.app.spawn_replica(&env).await
    }
}

/// The gateway in-process on port 0, in the service's NATS namespace, with `account`
/// as its only account; returns its base URL and what stops it.
pub(crate) async fn spawn_gateway(
    app: &TestApp,
    account: &CallbackAccount,
) -> (String, oneshot::Sender<()>) {
    let (url, stop, _) = start_gateway(app, account, &[]).await;
    (url, stop)
}

/// [`spawn_gateway`] with more settings (`extra`: variable, value).
pub(crate) async fn spawn_gateway_with(
    app: &TestApp,
    account: &CallbackAccount,
    extra: &[(&str, &str)],
) -> (String, oneshot::Sender<()>) {
    let (url, stop, _) = start_gateway(app, account, extra).await;
    (url, stop)
}

/// [`spawn_gateway`], also returning the gateway's copy of the reply rules.
async fn start_gateway(
    app: &TestApp,
    account: &CallbackAccount,
    extra: &[(&str, &str)],
) -> (String, oneshot::Sender<()>, Option<Arc<EdgeRules>>) {
    let nats = app.test_nats();
    let var = |suffix: &str| format!("WECHAT_{}_{suffix}", gateway::config::env_id(&account.id));
    let env = platform::Env::from_pairs([
        ("NATS_URL", nats.url().to_owned()),
        ("NATS_PREFIX", nats.prefix.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("WECHAT_ACCOUNTS", account.id.clone()),
    ])
    .with(&var("APPID"), account.appid.clone())
    .with(&var("ORIGINAL_ID"), account.original_id.clone())
    .with(&var("TOKEN"), account.token.clone())
    .with(&var("AES_KEY"), account.aes_key.clone())
    .with(&var("MODE"), account.mode.as_str());
    let env = extra
        .iter()
        .fold(env, |env, (name, value)| env.with(name, *value));
    let config = gateway::Config::from_env(&env).expect("gateway configuration is valid");
    let gateway = gateway::Application::build(config)
        .await
        .expect("gateway builds");
    let url = format!("http://127.0.0.1:{}", gateway.port());
    let edge = gateway.edge_rules();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gateway.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (url, stop, edge)
}

#[tokio::test]
async fn keyword_answers_come_from_the_gateways_copy_of_the_rules_even_while_interaction_svc_is_down()
 {
    let mut platform = Platform::start(&[]).await;
    let mut admin = platform.app.client(Some(ADMIN_KEY)).await;
    let hours = |text: &str| ReplyRule {
        account: ACCOUNT.into(),
        r#match: MatchKind::Contains as i32,
        patterns: vec!["营业时间".into()],
        text: text.into(),
        resolves: true,
        enabled: true,
        ..Default::default()
    };
    let created = admin
        .create_reply_rule(new_reply_rule(hours("工作日 9:00-17:00")))
        .await
        .expect("rule created")
        .into_inner();
    admin
        .create_reply_rule(new_reply_rule(ReplyRule {
            r#match: MatchKind::Exact as i32,
            patterns: vec!["5".into()],
            text: "menu five".into(),
            ..hours("")
        }))
        .await
        .expect("rule created");
    // The change notices reach the gateway, which asks interaction-svc for the rules.
    tokio::time::timeout(
        Duration::from_secs(10),
        platform.edge.wait_until(ACCOUNT, |rules| rules == Some(2)),
    )
    .await
    .expect("the gateway holds both rules");
    let mut citizen = Platform::citizen();
    assert_eq!(
        platform
            .citizen_does(&mut citizen, text("请问营业时间？"))
            .await
            .as_deref(),
        Some("工作日 9:00-17:00")
    );

    admin
        .update_reply_rule(ReplyRule {
            id: created.id.clone(),
            ..hours("工作日 8:30-17:30")
        })
        .await
        .expect("rule updated");
    eventually("the gateway answers with the changed rule", || async {
        let said = platform
            .citizen_does(&mut Platform::citizen(), text("营业时间"))
            .await;
        (said.as_deref() == Some("工作日 8:30-17:30")).then_some(())
    })
    .await;

    // Without interaction-svc, nobody answers the reply path: what the rules answer
    // whatever the citizen's state still gets its answer; the rest gets `success`.
    platform.app.stop_service().await;
    assert_eq!(
        platform
            .citizen_does(&mut citizen, text("营业时间几点"))
            .await
            .as_deref(),
        Some("工作日 8:30-17:30")
    );
    assert_eq!(
        platform.citizen_does(&mut citizen, text("5")).await,
        None,
        "a lone digit may rate a ticket: only interaction-svc can answer it"
    );
    assert_eq!(
        platform.citizen_does(&mut citizen, text(QUESTION)).await,
        None
    );
}

fn text(content: &str) -> CitizenAction {
    CitizenAction::Text {
        content: content.to_owned(),
    }
}

fn reply(ticket: &Ticket, text: &str) -> ReplyToTicketRequest {
    ReplyToTicketRequest {
        request_id: String::new(),
        id: ticket.id.clone(),
        text: text.into(),
        agent: "王芳".into(),
    }
}

fn utc(timestamp: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = timestamp.expect("timestamp set");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid time")
}

/// The next event of `kind` on the watch, skipping others (≤10 s).
async fn next_of(queue: &mut Streaming<QueueEvent>, kind: QueueEventKind) -> Ticket {
    let wait = async {
        loop {
            let event = queue
                .message()
                .await
                .expect("watch healthy")
                .expect("watch open");
            if event.kind == kind as i32 {
                return event.ticket.expect("events carry the ticket");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} on the watch within 10 s"))
}

#[tokio::test]
async fn a_citizens_message_becomes_a_routed_ticket_that_the_department_answers_and_the_citizen_rates()
 {
    let platform = Platform::start(&[]).await;
    let mut queue = platform.watch(SOCIAL_AGENT_KEY).await;
    let mut citizen = Platform::citizen();
    platform.subscribe(&mut citizen, true).await;

    // The citizen asks; WeChat does not hear back in time and sends the same callback
    // twice more. Every attempt gets the same immediate acknowledgement.
    platform
        .mock
        .state()
        .record_interaction(DEMO_APPID, &citizen.openid, Utc::now())
        .unwrap();
    let question = platform.signer.sign(&mut citizen, &text(QUESTION)).unwrap();
    let acknowledgement = platform.post(&question).await.expect("a passive reply");
    for _ in 0..2 {
        assert_eq!(
            platform.post(&question).await.as_deref(),
            Some(acknowledgement.as_str())
        );
    }

    let opened = next_of(&mut queue, QueueEventKind::Opened).await;
    assert_eq!(opened.department, DEPARTMENT);
    assert_eq!(opened.openid, citizen.openid);
    assert_eq!(opened.category, "consultation");
    assert_eq!(opened.summary, QUESTION);
    let china = FixedOffset::east_opt(8 * 3600).unwrap();
    let due = utc(opened.acknowledge_due_at);
    assert_eq!(
        acknowledgement,
        default_reply::acknowledgement(DEPARTMENT, due, china)
            + &default_reply::write_again_hint(
                utc(opened.resolve_due_at),
                utc(opened.opened_at),
                china
            ),
        "the citizen is told who has it and by when (and, on a Friday, to write again)"
    );
    let listed = platform.tickets_of(&citizen.openid).await;
    assert_eq!(listed.len(), 1, "three deliveries, one ticket");
    assert_eq!(listed[0].id, opened.id);
    let thread = platform.get(&opened.id).await.thread;
    assert_eq!(thread.len(), 1, "three deliveries, one message");
    assert_eq!(
        (thread[0].direction, thread[0].text.as_str()),
        (Direction::Inbound as i32, QUESTION)
    );

    // The department answers over gRPC: WeChat's customer-service API delivers it.
    let mut agent = platform.app.client(Some(SOCIAL_AGENT_KEY)).await;
    let answer = "您好，请携带身份证到市民之家社保窗口补办，当场可取。";
    let answered = agent
        .reply_to_ticket(reply(&opened, answer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.delivery, DeliveryStatus::Sent as i32);
    assert_eq!(answered.ticket.unwrap().state, TicketState::Answered as i32);
    assert_eq!(platform.sent_to(&citizen.openid), [answer]);

    // Closing asks for a rating; the citizen's "5" is recorded, and opens nothing new.
    agent
        .close_ticket(TicketActionRequest {
            id: opened.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap();
    let ticket = uuid::Uuid::parse_str(&opened.id).unwrap();
    platform
        .app
        .wait_for_rating_questions(ticket, &["sent"])
        .await;
    assert_eq!(platform.sent_to(&citizen.openid), [answer, RATING_QUESTION]);
    let thanks = platform.citizen_does(&mut citizen, text("5")).await;
    assert_eq!(thanks.as_deref(), Some(RATING_THANKS));
    let rated = eventually("the rating is recorded", || async {
        let ticket = platform.get(&opened.id).await;
        (ticket.rating != 0).then_some(ticket)
    })
    .await;
    assert_eq!(rated.rating, 5);
    assert_eq!(rated.state, TicketState::Closed as i32);
    assert_eq!(platform.tickets_of(&citizen.openid).await.len(), 1);
}

#[tokio::test]
async fn an_answer_outside_the_window_is_held_and_sent_when_the_citizen_writes_again() {
    let platform = Platform::start(&[]).await;
    // WeChat saw this citizen act long ago: the mock holds no open window for them.
    let mut citizen = Platform::citizen();
    platform.subscribe(&mut citizen, false).await;
    let question = platform.signer.sign(&mut citizen, &text(QUESTION)).unwrap();
    platform.post(&question).await.expect("a passive reply");
    let ticket = platform.ticket_opened_for(&citizen.openid).await;
    sqlx::query(
        "UPDATE followers SET last_interaction_at = now() - interval '49 hours'
          WHERE account = $1 AND openid = $2",
    )
    .bind(ACCOUNT)
    .bind(&citizen.openid)
    .execute(&platform.app.db)
    .await
    .unwrap();

    let answer = "补办需本人携带身份证，材料齐全当场办结。";
    let response = platform
        .app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reply_to_ticket(reply(&ticket, answer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.delivery, DeliveryStatus::Held as i32);
    assert!(response.ticket.unwrap().awaiting_citizen);
    assert!(platform.mock.state().calls_to(CUSTOM_SEND).is_empty());

    // The citizen writes again: their window opens and the held answer goes out.
    platform
        .citizen_does(&mut citizen, text("请问办好了吗？"))
        .await;
    eventually("the held answer reaches WeChat", || async {
        (!platform.sent_to(&citizen.openid).is_empty()).then_some(())
    })
    .await;
    assert_eq!(platform.sent_to(&citizen.openid), [answer]);
    let ticket = eventually("the ticket no longer waits", || async {
        let ticket = platform.get(&ticket.id).await;
        (!ticket.awaiting_citizen).then_some(ticket)
    })
    .await;
    let answer_in_thread = ticket
        .thread
        .iter()
        .find(|m| m.text == answer)
        .expect("the answer is in the thread");
    assert_eq!(answer_in_thread.delivery, DeliveryStatus::Sent as i32);
}

#[tokio::test]
async fn an_overdue_ticket_is_escalated_once_with_two_replicas_and_its_department_sees_it() {
    let fast = [("SWEEP_INTERVAL", "100ms")];
    let platform = Platform::start(&fast).await;
    let replica = platform.replica(&fast).await;
    let mut queue = platform.watch(SOCIAL_AGENT_KEY).await;
    let mut citizen = Platform::citizen();
    platform.subscribe(&mut citizen, true).await;
    platform.citizen_does(&mut citizen, text(QUESTION)).await;
    let opened = next_of(&mut queue, QueueEventKind::Opened).await;

    sqlx::query(
        "UPDATE tickets SET acknowledge_due_at = now() - interval '1 minute' WHERE id = $1::uuid",
    )
    .bind(&opened.id)
    .execute(&platform.app.db)
    .await
    .unwrap();

    let overdue = next_of(&mut queue, QueueEventKind::Overdue).await;
    assert_eq!(overdue.id, opened.id);
    assert!(overdue.overdue);
    assert_eq!(overdue.department, DEPARTMENT, "the owner keeps the ticket");
    // Both replicas kept sweeping until now; stop one and count.
    replica.stop().await;
    let escalations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ticket_transitions WHERE ticket_id = $1::uuid AND action = 'overdue'",
    )
    .bind(&opened.id)
    .fetch_one(&platform.app.db)
    .await
    .unwrap();
    assert_eq!(escalations, 1);
    let published = platform
        .app
        .interaction_events(&format!("interaction.{ACCOUNT}.ticket.overdue"), 1)
        .await;
    assert_eq!(published.len(), 1, "one ticket.overdue event");
}
