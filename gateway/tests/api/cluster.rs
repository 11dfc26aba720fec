//! The gateway on a 3-node JetStream cluster with `NATS_REPLICAS=3`: WeChat gets its
//! `success` only once the R3 stream holds the callback, still does once a node is
//! lost (WeChat's retry of a callback refused during the failover lands), and gets no
//! success without a quorum (so it retries).

use std::time::Duration;

use async_nats::jetstream;
use platform::config::Env;
use platform::nats::{self, NatsConfig, WECHAT_INBOUND};
use platform::testing::{NatsCluster, TestNats};

use crate::helpers::{Options, spawn_app_with};

/// Provisions the streams as the gateway's start-up would, retried while the new
/// cluster elects its leaders (Kubernetes restarts a pod whose start-up fails).
async fn provision_when_elected(config: &NatsConfig) -> jetstream::Context {
    let client = nats::connect(config, "cluster-test").await.unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    let mut last = String::new();
    for _ in 0..100 {
        match nats::provision_with(&js, &config.namespace, &[WECHAT_INBOUND], &config.streams).await
        {
            Ok(()) => return js,
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the cluster never took the streams: {last}");
}

#[tokio::test]
async fn callbacks_are_answered_once_an_r3_stream_holds_them_and_not_without_a_quorum() {
    let mut cluster = NatsCluster::start().await;
    // The gateway's namespace: a fresh prefix, on the cluster instead of the shared NATS.
    let prefix = TestNats::new().prefix.clone();
    let env = Env::from_pairs([
        ("NATS_URL", cluster.url.as_str()),
        ("NATS_PREFIX", prefix.as_str()),
        ("NATS_REPLICAS", "3"),
    ]);
    let config = NatsConfig::from_env(&env).unwrap();
    let js = provision_when_elected(&config).await;
    let app = spawn_app_with(Options {
        nats_url: Some(cluster.url.clone()),
        extra: vec![("NATS_PREFIX", prefix.as_str()), ("NATS_REPLICAS", "3")],
        ..Options::default()
    })
    .await;
    // Safe mode: the test is about the inbound stream, and a plaintext callback also
    // needs the replay ledger's R3 bucket, which elects its own leader (a callback it
    // cannot check is held, not accepted).
    let callback = |n: u32| {
        app.safe.encrypted_callback(&format!(
            "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
             <FromUserName><![CDATA[oCluster]]></FromUserName><CreateTime>1700000000</CreateTime>\
             <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[路灯坏了]]></Content>\
             <MsgId>{n}</MsgId></xml>"
        ))
    };
    let stream = config.namespace.name(WECHAT_INBOUND.name);
    let stored = || async {
        let mut handle = js.get_stream(&stream).await.unwrap();
        handle.info().await.unwrap().state.messages
    };

    let (status, body) = app.post_text(&app.safe.id, &callback(1)).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(stored().await, 1, "answered once the R3 stream holds it");

    // Lose the stream's leader: a new one is elected within the publish deadline.
    let mut handle = js.get_stream(&stream).await.unwrap();
    let leader = handle
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("a leader");
    let lost = NatsCluster::index_of(&leader);
    cluster.servers[lost].kill();
    // While the client reconnects and the stream elects a leader, a callback may be
    // refused; WeChat then sends the same one again, which the new leader takes.
    let second = callback(2);
    let mut answers = Vec::new();
    for _ in 0..8 {
        let answer = app.post_text(&app.safe.id, &second).await;
        let done = answer.0 == 200;
        answers.push(answer);
        if done {
            break;
        }
    }
    assert_eq!(
        answers
            .last()
            .map(|(status, body)| (*status, body.as_str())),
        Some((200, "success")),
        "{answers:?}"
    );
    assert_eq!(
        stored().await,
        2,
        "each callback stored once, retries included"
    );

    // Lose a second node: no quorum, no ack, so WeChat gets no success and retries.
    let other = (0..3).find(|i| *i != lost).unwrap();
    cluster.servers[other].kill();
    let (status, _) = app.post_text(&app.safe.id, &callback(3)).await;
    assert_ne!(
        status, 200,
        "a callback no quorum holds is not answered success"
    );
}
