//! The NATS batcher: requests and publishes handed to the client in batches still
//! behave like the client's own calls.

use async_nats::RequestErrorKind;
use async_nats::client::Request;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures::StreamExt as _;
use gateway::batch::NatsBatcher;
use platform::testing::TestNats;

async fn batcher(nats: &TestNats) -> (async_nats::Client, NatsBatcher) {
    let client = nats.connect().await;
    let batcher = NatsBatcher::new(jetstream::new(client.clone()));
    (client, batcher)
}

#[tokio::test]
async fn many_concurrent_requests_each_get_their_own_answer() {
    let nats = TestNats::new();
    let (client, batcher) = batcher(&nats).await;
    let subject = nats.namespace.subject("echo");
    let mut requests = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let responder_client = client.clone();
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let mut answer = b"re:".to_vec();
            answer.extend_from_slice(&message.payload);
            let _ = responder_client
                .publish(message.reply.unwrap(), answer.into())
                .await;
        }
    });

    let asks = (0..200).map(|i| {
        let batcher = batcher.clone();
        let subject = subject.clone();
        async move {
            let request = Request::new()
                .payload(format!("{i}").into())
                .timeout(Some(std::time::Duration::from_secs(5)));
            let pending = batcher.request(subject.into(), request).await.unwrap();
            let answer = pending.await.unwrap();
            (i, String::from_utf8(answer.payload.to_vec()).unwrap())
        }
    });
    for (i, answer) in futures::future::join_all(asks).await {
        assert_eq!(answer, format!("re:{i}"));
    }
}

#[tokio::test]
async fn no_responders_and_errors_found_at_once_come_back_as_errors() {
    let nats = TestNats::new();
    let (_client, batcher) = batcher(&nats).await;
    let nobody = nats.namespace.subject("nobody.listens");
    let pending = batcher
        .request(nobody.clone().into(), Request::new().payload("x".into()))
        .await
        .unwrap();
    let error = pending.await.unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::NoResponders);

    // Too large for the server: the client refuses it on the first poll, so the
    // batcher hands back a finished future (awaiting it must not panic).
    let huge = vec![0u8; 2 * 1024 * 1024];
    let pending = batcher
        .request(nobody.into(), Request::new().payload(huge.into()))
        .await
        .unwrap();
    let error = pending.await.unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::MaxPayloadExceeded);
}

#[tokio::test]
async fn publishes_are_acknowledged_and_stored_once_per_message_id() {
    let nats = TestNats::new();
    let (client, batcher) = batcher(&nats).await;
    let js = jetstream::new(client);
    let name = nats.namespace.name("BATCH");
    let subject = nats.namespace.subject("batch.test");
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await
    .unwrap();

    let sends = (0..100).map(|i| {
        let batcher = batcher.clone();
        let subject = subject.clone();
        async move {
            // Every message twice: the second is a duplicate for JetStream.
            let message = || {
                PublishMessage::build()
                    .payload(format!("{i}").into())
                    .message_id(format!("m-{i}"))
            };
            let first = batcher
                .publish(subject.clone().into(), message())
                .await
                .unwrap();
            let second = batcher.publish(subject.into(), message()).await.unwrap();
            (first.duplicate, second.duplicate)
        }
    });
    for acks in futures::future::join_all(sends).await {
        assert_eq!(acks, (false, true));
    }
    let mut stream = js.get_stream(&name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 100);
}

/// The publisher's guard: an event id a `Nats-Msg-Id` header cannot carry is refused
/// (counted, logged), not a panic that kills the callback's handler; as no retry can
/// store it, it says so (`InvalidMessageId`), not "not durable": the callback path
/// answers it at once.
#[tokio::test]
async fn an_event_id_with_a_line_break_is_refused_without_a_panic() {
    use gateway::event::InboundEvent;
    use gateway::publish::{PublishError, Publisher};
    let nats = TestNats::new();
    let (_client, batcher) = batcher(&nats).await;
    let publisher = Publisher::new(batcher, std::time::Duration::from_secs(1));
    let event = InboundEvent {
        subject: nats.namespace.subject("wechat.inbound.acct.event.click"),
        event_id: "acct:oUser:1700000000:CLICK:a\nb".into(),
        payload: bytes::Bytes::from_static(b"x"),
    };
    let published = tokio::spawn(async move { publisher.publish(&event).await })
        .await
        .expect("no panic");
    assert_eq!(published, Err(PublishError::InvalidMessageId));
}

/// An event larger than NATS's `max_payload` can never be published: the client
/// refuses it before sending, and each retry until the deadline was refused alike.
/// It says so (`TooLarge`), not "not durable": the callback path answers it at once.
#[tokio::test]
async fn an_event_over_the_max_payload_is_refused_at_the_first_attempt() {
    use gateway::event::InboundEvent;
    use gateway::publish::{PublishError, Publisher};
    let nats = TestNats::new();
    let (client, batcher) = batcher(&nats).await;
    let publisher = Publisher::new(batcher, std::time::Duration::from_secs(1));
    let too_large = client.server_info().max_payload + 1;
    let event = InboundEvent {
        subject: nats.namespace.subject("wechat.inbound.acct.msg.text"),
        event_id: "acct:oUser:1234567890".into(),
        payload: bytes::Bytes::from(vec![b'x'; too_large]),
    };
    assert_eq!(
        publisher.publish(&event).await,
        Err(PublishError::TooLarge { size: too_large })
    );
}
