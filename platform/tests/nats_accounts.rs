//! A NATS user whose permissions let it read its own answers only (`_INBOX_{user}.>`,
//! as deploy/k8s/infra/nats-values.yaml grants each service), against a private server.

mod private_servers;

use std::time::Duration;

use futures::StreamExt;
use platform::config::Env;
use platform::nats::{self, Namespace, NatsConfig, WECHAT_INBOUND};
use private_servers::{NatsServer, Scratch};

#[tokio::test]
async fn a_user_gets_its_answers_on_its_own_inbox() {
    let scratch = Scratch::new("nats-accounts");
    let port = platform::testing::free_port();
    let store = scratch.path("js");
    let _server = NatsServer::start(
        &scratch.0,
        "accounts",
        port,
        &format!(
            r#"listen: 127.0.0.1:{port}
jetstream {{ store_dir: {store:?} }}
accounts {{
  APP {{
    jetstream: enabled
    users: [
      {{ user: svc, password: "s3cret", permissions: {{
          publish: {{ allow: ["$JS.API.>", "wechat.inbound.>", "echo"] }},
          subscribe: {{ allow: ["_INBOX_svc.>"] }} }} }},
      {{ user: echo, password: "echo", permissions: {{
          subscribe: {{ allow: ["echo"] }}, allow_responses: true }} }}
    ]
  }}
}}
"#
        ),
    )
    .await;
    let url = format!("nats://127.0.0.1:{port}");
    let config = |user: &str, password: &str| {
        NatsConfig::from_env(&Env::from_pairs([
            ("NATS_URL", url.as_str()),
            ("NATS_USER", user),
            ("NATS_PASSWORD", password),
        ]))
        .unwrap()
    };
    let client = nats::connect(&config("svc", "s3cret"), "accounts-test")
        .await
        .expect("the user logs in");

    // JetStream's answers (stream info, PubAcks) come to the user's inbox.
    let jetstream = async_nats::jetstream::new(client.clone());
    let namespace = Namespace::new("").unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        nats::provision_streams(&jetstream, &namespace, &[WECHAT_INBOUND]),
    )
    .await
    .expect("the stream API answers within 5 s")
    .expect("the stream is provisioned");
    let ack = tokio::time::timeout(Duration::from_secs(5), async {
        jetstream
            .publish("wechat.inbound.city.msg.text", "hello".into())
            .await
            .unwrap()
            .await
    })
    .await
    .expect("the PubAck arrives within 5 s")
    .expect("the callback is stored");
    assert_eq!(ack.sequence, 1);

    // A core request's answer too.
    let echo = nats::connect(&config("echo", "echo"), "echo")
        .await
        .unwrap();
    let mut requests = echo.subscribe("echo").await.unwrap();
    echo.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                echo.publish(reply, request.payload).await.unwrap();
            }
        }
    });
    // The responder's subscription reaches the server on its own connection: until
    // it has, a request finds no responder.
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.request("echo", "ping".into()).await {
                Err(error) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                answered => return answered,
            }
        }
    })
    .await
    .expect("the answer arrives within 5 s")
    .expect("the responder answers");
    assert_eq!(&answer.payload[..], b"ping");
}
