//! End to end: the real gateway in-process, real NATS in a private namespace; every
//! citizen action gets an answer WeChat accepts, and every one is durable.

use std::time::Duration;

use bytes::Bytes;

use gateway::{Application, Config};
use platform::Env;
use platform::testing::TestNats;
use tokio::sync::oneshot;
use wechat_sim::traffic::nats::{ResponderConfig, reply_subject, run_responder, stream_count};
use wechat_sim::traffic::{
    CallbackAccount, CallbackClient, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode,
    ReplyCheck, RetryPolicy,
};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

struct Gateway {
    base: String,
    nats: TestNats,
    edge: Option<std::sync::Arc<gateway::edge::EdgeRules>>,
    _stop: oneshot::Sender<()>,
}

fn account(id: &str, mode: Mode) -> CallbackAccount {
    CallbackAccount {
        id: id.to_owned(),
        appid: "wxe2e0000000000001".to_owned(),
        original_id: "gh_e2e000000001".to_owned(),
        // One Token each: a safe account's shared with another kind is refused.
        token: format!("e2e-token-{id}"),
        aes_key: KEY.to_owned(),
        mode,
    }
}

async fn spawn_gateway(accounts: &[&CallbackAccount]) -> Gateway {
    spawn_gateway_on(TestNats::new(), accounts).await
}

async fn spawn_gateway_on(nats: TestNats, accounts: &[&CallbackAccount]) -> Gateway {
    let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    let mut env = Env::from_pairs([
        ("NATS_URL", nats.url().to_owned()),
        ("NATS_PREFIX", nats.prefix.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("REPLY_BUDGET", "1s".to_owned()),
        ("WECHAT_ACCOUNTS", ids.join(",")),
    ]);
    for a in accounts {
        let var = |s: &str| format!("WECHAT_{}_{s}", gateway::config::env_id(&a.id));
        env = env
            .with(&var("APPID"), a.appid.clone())
            .with(&var("ORIGINAL_ID"), a.original_id.clone())
            .with(&var("TOKEN"), a.token.clone())
            .with(&var("AES_KEY"), a.aes_key.clone())
            .with(&var("MODE"), a.mode.as_str());
    }
    let app = Application::build(Config::from_env(&env).expect("valid config"))
        .await
        .expect("gateway builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let edge = app.edge_rules();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    Gateway {
        base,
        nats,
        edge,
        _stop: tx,
    }
}

/// Returns once a request on `subject` (an empty payload) is answered: the responder's
/// subscriptions have reached the server.
async fn wait_until_answered(nats: &TestNats, subject: String) {
    let probe = nats.connect().await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while probe.request(subject.clone(), Bytes::new()).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the responder listens");
}

/// Whether the gateway asks the responder about `action`: not about an unfollow, a
/// reported location or a link menu, which interaction-svc never answers (gateway
/// README, `not_asked`).
fn asked(action: &CitizenAction) -> bool {
    !matches!(
        action,
        CitizenAction::Unsubscribe
            | CitizenAction::LocationEvent { .. }
            | CitizenAction::View { .. }
    )
}

fn asked_of_every_kind() -> u64 {
    CitizenAction::every_kind()
        .iter()
        .filter(|a| asked(a))
        .count() as u64
}

/// Plays every kind of action; with `expect_replies`, each one the responder is asked
/// about must get its reply, and the rest `success`.
async fn play_every_action(gw: &Gateway, account: &CallbackAccount, expect_replies: bool) -> u64 {
    let signer = CallbackSigner::new(account.clone()).unwrap();
    let check = ReplyCheck::new(&signer);
    let client = CallbackClient::new(&gw.base, RetryPolicy::default()).unwrap();
    let mut follower = Follower::numbered(&account.id, 1);
    let mut sent = 0;
    for action in CitizenAction::every_kind() {
        let cb = signer.sign(&mut follower, &action).unwrap();
        let delivery = client.deliver(&cb).await;
        let (status, body) = delivery.answer().expect("the gateway answers");
        let checked = check
            .check(&cb, status, body)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", action.label(), account.mode));
        assert_eq!(
            matches!(checked, CheckedReply::Reply { .. }),
            expect_replies && asked(&action),
            "{} ({}): {checked:?}",
            action.label(),
            account.mode
        );
        assert!(!delivery.retried());
        sent += 1;
    }
    sent
}

#[tokio::test]
async fn every_citizen_action_is_acknowledged_and_durable_without_a_responder() {
    let plain = account("e2e-plain", Mode::Plaintext);
    let safe = account("e2e-safe", Mode::Safe);
    let gw = spawn_gateway(&[&plain, &safe]).await;

    let mut sent = play_every_action(&gw, &plain, false).await;
    sent += play_every_action(&gw, &safe, false).await;

    let count = stream_count(
        gw.nats.connect().await,
        &gw.nats.namespace.name("WECHAT_INBOUND"),
    )
    .await
    .unwrap();
    assert_eq!(count.messages, sent);
}

#[tokio::test]
async fn every_citizen_action_gets_a_valid_passive_reply_from_the_responder() {
    let plain = account("e2e-plain", Mode::Plaintext);
    let compat = account("e2e-compat", Mode::Compatible);
    let safe = account("e2e-safe", Mode::Safe);
    let gw = spawn_gateway(&[&plain, &compat, &safe]).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let namespace = gw.nats.namespace.clone();
    let client = gw.nats.connect().await;
    let responder = tokio::spawn(async move {
        run_responder(
            client,
            &namespace,
            &["*".to_owned()],
            ResponderConfig::default(),
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    // The first request the responder answers (one not decoding as an `Inbound`, so
    // answered with no reply) shows its subscriptions reached the server.
    wait_until_answered(&gw.nats, reply_subject(&gw.nats.namespace, &plain.id)).await;

    for account in [&plain, &compat, &safe] {
        play_every_action(&gw, account, true).await;
    }

    let _ = stop.send(());
    let answered = responder.await.unwrap().unwrap();
    assert_eq!(answered, 1 + 3 * asked_of_every_kind());
}

#[tokio::test]
async fn a_responder_with_nothing_to_say_gets_success_and_no_missed_reply_marker() {
    let safe = account("e2e-safe", Mode::Safe);
    let gw = spawn_gateway(&[&safe]).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let namespace = gw.nats.namespace.clone();
    let client = gw.nats.connect().await;
    let responder = tokio::spawn(async move {
        let config = ResponderConfig {
            no_reply: true,
            ..ResponderConfig::default()
        };
        run_responder(client, &namespace, &["*".to_owned()], config, async {
            let _ = stopped.await;
        })
        .await
    });
    wait_until_answered(&gw.nats, reply_subject(&gw.nats.namespace, &safe.id)).await;

    let sent = play_every_action(&gw, &safe, false).await;

    let _ = stop.send(());
    let answered = responder.await.unwrap().unwrap();
    assert_eq!(
        answered,
        1 + asked_of_every_kind(),
        "every callback that may get a reply asked the responder"
    );
    let client = gw.nats.connect().await;
    let name = |stream: &str| gw.nats.namespace.name(stream);
    let inbound = stream_count(client.clone(), &name("WECHAT_INBOUND")).await;
    assert_eq!(inbound.unwrap().messages, sent);
    let missed = stream_count(client, &name("WECHAT_MISSED_REPLIES")).await;
    assert_eq!(
        missed.unwrap().messages,
        0,
        "a deliberate no-reply is not a missed reply"
    );
}

#[tokio::test]
async fn with_its_keyword_rule_the_responder_is_never_asked_for_the_loads_text() {
    let safe = account("e2e-safe", Mode::Safe);
    let (stop, stopped) = oneshot::channel::<()>();
    let nats = TestNats::new();
    let namespace = nats.namespace.clone();
    let client = nats.connect().await;
    let responder = tokio::spawn(async move {
        let config = ResponderConfig {
            rules: true,
            ..ResponderConfig::default()
        };
        run_responder(client, &namespace, &["*".to_owned()], config, async {
            let _ = stopped.await;
        })
        .await
    });
    // The responder listens before the gateway asks for the rules at start-up: it
    // answers a request for them (which it does not count).
    let snapshots = nats
        .namespace
        .subject(&reply_rules::snapshot_subject("e2e-safe"));
    wait_until_answered(&nats, snapshots).await;
    let gw = spawn_gateway_on(nats, &[&safe]).await;
    let edge = gw.edge.clone().expect("edge rules are on by default");
    tokio::time::timeout(
        Duration::from_secs(10),
        edge.wait_until("e2e-safe", |rules| rules == Some(1)),
    )
    .await
    .expect("the gateway holds the rule");

    let signer = CallbackSigner::new(safe.clone()).unwrap();
    let check = ReplyCheck::new(&signer);
    let client = CallbackClient::new(&gw.base, RetryPolicy::default()).unwrap();
    let mut follower = Follower::numbered(&safe.id, 1);
    let load_text = CitizenAction::Text {
        content: wechat_sim::traffic::load::LOAD_TEXT.to_owned(),
    };
    for _ in 0..5 {
        let cb = signer.sign(&mut follower, &load_text).unwrap();
        let delivery = client.deliver(&cb).await;
        let (status, body) = delivery.answer().expect("answered");
        let checked = check.check(&cb, status, body).unwrap();
        assert!(matches!(checked, CheckedReply::Reply { .. }), "{checked:?}");
    }
    let _ = stop.send(());
    let answered = responder.await.unwrap().unwrap();
    assert_eq!(
        answered, 0,
        "every reply came from the gateway's copy of the rule"
    );
}
