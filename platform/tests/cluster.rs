//! `NATS_REPLICAS=3` on a real 3-node JetStream cluster that this test starts on
//! loopback (three `nats-server` processes with routes): an ack means a quorum of the
//! R3 stream holds the callback, the platform keeps working with one node lost, and
//! without a quorum nothing is acknowledged (so the gateway would not answer WeChat,
//! which then retries).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use platform::config::Env;
use platform::nats::{self, ConsumerSpec, NatsConfig, WECHAT_INBOUND};
use platform::testing::NatsCluster;

/// Publishes one inbound callback as the gateway does (with `Nats-Msg-Id`) and waits
/// for the stream's ack; retried while the client reconnects or a new leader is elected.
async fn publish(js: &jetstream::Context, msg_id: &str, attempts: usize) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..attempts {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        let sent = js
            .publish_with_headers(
                "wechat.inbound.city.msg.text",
                headers,
                msg_id.to_owned().into(),
            )
            .await;
        match sent {
            Ok(ack) => match ack.await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        // Until the client reconnects and the stream has a leader again.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

/// Fetches and acks `count` messages. Each pull expires, and is asked again, so a pull
/// the consumer's old leader never answered (it was just killed) cannot hang the test.
async fn fetch(consumer: &PullConsumer, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..60 {
        let pull = consumer
            .batch()
            .max_messages(count - seen.len())
            .expires(Duration::from_secs(1))
            .messages();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            let mut messages = pull.await.map_err(|e| e.to_string())?;
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| e.to_string())?;
                seen.push(String::from_utf8(message.payload.to_vec()).unwrap());
                message.ack().await.map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        })
        .await;
        if seen.len() >= count {
            return seen;
        }
        if let Ok(Err(error)) = read {
            tracing::debug!(%error, "pull failed; asking again");
        }
    }
    panic!("only {seen:?} of {count} messages after 60 pulls");
}

/// Provisions every stream as a service's start-up does, retried while leaders are elected.
async fn provision(js: &jetstream::Context, config: &NatsConfig) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..100 {
        match nats::provision_with(js, &config.namespace, &nats::ALL_STREAMS, &config.streams).await
        {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

#[tokio::test]
async fn an_r3_stream_keeps_acking_and_delivering_with_a_node_lost_and_never_acks_without_quorum() {
    let mut cluster = NatsCluster::start().await;
    let env = Env::from_pairs([("NATS_URL", cluster.url.as_str()), ("NATS_REPLICAS", "3")]);
    let config = NatsConfig::from_env(&env).unwrap();
    let client = nats::connect(&config, "cluster-test").await.unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));

    // Start-up provisioning, retried while the cluster elects its leaders (Kubernetes
    // restarts a service whose start-up fails, to the same effect).
    provision(&js, &config)
        .await
        .expect("every stream is created with three replicas");
    let mut inbound = js.get_stream(WECHAT_INBOUND.name).await.unwrap();
    let info = inbound.info().await.unwrap().clone();
    assert_eq!(info.config.num_replicas, 3);
    let replicas = info
        .cluster
        .as_ref()
        .expect("a clustered stream")
        .replicas
        .len();
    assert_eq!(replicas, 2, "a leader and two peers");
    // The durable consumer a service reads the stream with, created while all nodes run.
    let spec = ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable: "cluster-check",
        filter_subject: "wechat.inbound.>",
        max_deliver: 3,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
    };
    let consumer: PullConsumer = nats::provision_consumer(&js, &config.namespace, &spec)
        .await
        .unwrap();
    publish(&js, "callback-1", 10)
        .await
        .expect("acked by the R3 stream");

    // Lose the stream's leader: a new one is elected and callbacks are still acked.
    let leader = info.cluster.and_then(|c| c.leader).expect("a leader");
    let index = NatsCluster::index_of(&leader);
    cluster.servers[index].kill();
    publish(&js, "callback-2", 100)
        .await
        .expect("acked by the two remaining replicas");
    provision(&js, &config)
        .await
        .expect("a service restarting meanwhile still starts");
    let seen = fetch(&consumer, 2).await;
    assert_eq!(seen, ["callback-1", "callback-2"]);

    // Lose a second node: no quorum, so no ack (the gateway answers nothing and WeChat retries).
    let other = (0..3).find(|i| *i != index).unwrap();
    cluster.servers[other].kill();
    assert!(
        publish(&js, "callback-3", 2).await.is_err(),
        "one replica of three never acknowledges alone"
    );
}
