//! The passive-reply path: answered, timed out, missing, invalid, and repeated for retries.

use std::sync::atomic::Ordering;

use prost::Message as _;
use std::time::Duration;

use proto::events::v1::{NewsArticle, NewsReply, PassiveReply, TextReply, passive_reply};
use wechat::reply::{Reply, ReplyBody};

use wechat::crypto::MessageCrypto;

use crate::helpers::{Options, PREVIOUS_AES_KEY, spawn_app, spawn_app_with};
use crate::samples;

fn text_reply(content: &str) -> PassiveReply {
    PassiveReply {
        body: Some(passive_reply::Body::Text(TextReply {
            content: content.to_owned(),
        })),
    }
}

#[tokio::test]
async fn a_responder_s_text_becomes_the_encrypted_reply_in_safe_mode() {
    let app = spawn_app().await;
    let (_, mut requests) = app
        .responder(&app.safe.id, Duration::ZERO, |inbound| {
            text_reply(&format!("已收到: {}", inbound.msg_id))
        })
        .await;
    let xml = samples::text("oCitizen", 501, "路灯坏了");
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!(status, 200);
    let reply = Reply::open_encrypted(body.as_bytes(), &app.safe.crypto, &app.safe.token)
        .expect("an encrypted, correctly signed reply");
    assert_eq!(reply.to_user_name, "oCitizen");
    assert_eq!(reply.from_user_name, crate::helpers::ORIGINAL_ID);
    assert_eq!(
        reply.body,
        ReplyBody::Text {
            content: "已收到: 501".into()
        }
    );
    let asked = requests.recv().await.unwrap();
    assert_eq!(
        asked.header.unwrap().event_id,
        format!("{}:oCitizen:501", app.safe.id)
    );
}

/// During a key rotation (new key current, old key previous, the console not yet
/// saved) WeChat encrypts with the old key and reads the reply with it too.
#[tokio::test]
async fn a_reply_to_a_callback_encrypted_with_the_previous_key_is_sealed_with_that_key() {
    let app = spawn_app().await;
    for account in [&app.safe, &app.compat] {
        app.responder(&account.id, Duration::ZERO, |_| text_reply("已收到"))
            .await;
        let previous = MessageCrypto::new(PREVIOUS_AES_KEY, &account.appid).unwrap();
        let xml = samples::text("oRotate", 511, "old key");
        let (status, body) = app
            .post_text(
                &account.id,
                &account.encrypted_callback_with(&xml, &previous),
            )
            .await;
        assert_eq!(status, 200, "{}", account.id);
        let reply = Reply::open_encrypted(body.as_bytes(), &previous, &account.token);
        assert!(
            matches!(&reply, Ok(r) if r.body == ReplyBody::Text { content: "已收到".into() }),
            "{}: WeChat, still on the previous key, cannot read the reply: {reply:?}",
            account.id
        );

        // A callback under the new key is answered under the new key.
        let xml = samples::text("oRotate", 512, "new key");
        let (_, body) = app
            .post_text(&account.id, &account.encrypted_callback(&xml))
            .await;
        Reply::open_encrypted(body.as_bytes(), &account.crypto, &account.token)
            .expect("sealed with the current key");
    }
}

#[tokio::test]
async fn a_plaintext_account_gets_plain_reply_xml() {
    let app = spawn_app().await;
    app.responder(&app.plain.id, Duration::ZERO, |_| text_reply("hi"))
        .await;
    let xml = samples::text("oCitizen", 502, "hello");
    let (status, body) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
        .await;
    assert_eq!(status, 200);
    let reply = Reply::parse(body.as_bytes()).unwrap();
    assert_eq!(
        reply.body,
        ReplyBody::Text {
            content: "hi".into()
        }
    );
}

#[tokio::test]
async fn without_a_responder_the_answer_is_success() {
    let app = spawn_app().await;
    let xml = samples::text("oCitizen", 503, "hello");
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let counted = app
        .metric(
            "gateway_replies_total",
            &[("account", &app.safe.id), ("outcome", "no_responder")],
        )
        .await;
    assert_eq!(counted, 1.0);
}

#[tokio::test]
async fn after_no_responders_the_gateway_stops_asking_for_the_pause() {
    let app = spawn_app_with(Options {
        // Long enough that the second callback surely falls inside it.
        extra: vec![("NO_RESPONDER_PAUSE", "60s")],
        ..Options::default()
    })
    .await;
    let first = samples::text("oCitizen", 510, "hello");
    let (status, body) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&first))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));

    let (asked, _requests) = app
        .responder(&app.plain.id, Duration::ZERO, |_| text_reply("hi"))
        .await;
    let second = samples::text("oCitizen", 511, "hello again");
    let (status, body) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&second))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Still durable: both callbacks are on the stream.
    assert_eq!(app.stored().await.len(), 2);

    // Another account is not paused.
    let (_, _) = app
        .responder(&app.safe.id, Duration::ZERO, |_| text_reply("hi"))
        .await;
    let third = samples::text("oCitizen", 512, "hello");
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&third))
        .await;
    assert_eq!(status, 200);
    assert_ne!(body, "success");
}

#[tokio::test]
async fn a_responder_slower_than_the_budget_gives_success_on_time() {
    let app = spawn_app_with(Options {
        extra: vec![("REPLY_BUDGET", "200ms")],
        ..Options::default()
    })
    .await;
    app.responder(&app.plain.id, Duration::from_secs(3), |_| {
        text_reply("too late")
    })
    .await;
    let xml = samples::text("oCitizen", 504, "hello");
    let started = std::time::Instant::now();
    let (status, body) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let counted = app
        .metric(
            "gateway_replies_total",
            &[("account", &app.plain.id), ("outcome", "timeout")],
        )
        .await;
    assert_eq!(counted, 1.0);
}

#[tokio::test]
async fn a_retried_callback_gets_the_same_reply_and_the_responder_is_asked_once() {
    let app = spawn_app().await;
    let (asked, _) = app
        .responder(&app.safe.id, Duration::ZERO, |_| {
            text_reply(&uuid::Uuid::new_v4().to_string())
        })
        .await;
    let xml = samples::text("oCitizen", 505, "hello");
    let mut replies = Vec::new();
    for _ in 0..3 {
        let (status, body) = app
            .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
            .await;
        assert_eq!(status, 200);
        replies.push(
            Reply::open_encrypted(body.as_bytes(), &app.safe.crypto, &app.safe.token)
                .unwrap()
                .body,
        );
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[0], replies[2]);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(app.stored().await.len(), 1);
}

#[tokio::test]
async fn a_late_reply_is_shared_and_another_replica_answers_its_retry_with_it() {
    let first = spawn_app_with(Options {
        // The responder's 300 ms make every answer "late": WeChat may be retrying.
        extra: vec![("REPLY_SHARE_AFTER", "100ms")],
        ..Options::default()
    })
    .await;
    // A second gateway on the same namespace, as another replica would be.
    let second = crate::helpers::spawn_replica(&first).await;
    let (asked, _) = first
        .responder(&first.plain.id, Duration::from_millis(300), |_| {
            text_reply(&uuid::Uuid::new_v4().to_string())
        })
        .await;
    let xml = samples::text("oCitizen", 506, "hello");
    let (_, body_one) = first
        .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
        .await;
    // The replica's cache write is asynchronous; the retry comes seconds later in life.
    let key_written = first.wait_for_reply_cache_entries(1).await;
    assert!(key_written);
    let (_, body_two) = second
        .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
        .await;
    let one = Reply::parse(body_one.as_bytes()).unwrap().body;
    let two = Reply::parse(body_two.as_bytes()).unwrap().body;
    assert_eq!(one, two);
    // The replica asked too (it could not know it was a retry before the PubAck),
    // but answered with the first reply.
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let shared = first
        .metric("gateway_replies_shared_total", &[("why", "late")])
        .await;
    assert_eq!(shared, 1.0);
}

/// WeChat retries ~5 s after the first delivery; the replica answering the retry reads
/// the bucket once its duplicate PubAck comes, and the first replica's write may still
/// be on its way. It read once, missed, and answered what it got itself.
#[tokio::test]
async fn a_retry_on_another_replica_waits_for_the_first_reply_to_be_shared() {
    use futures::StreamExt as _;
    let first = spawn_app_with(Options {
        extra: vec![("REPLY_SHARE_AFTER", "0s")],
        ..Options::default()
    })
    .await;
    let second = crate::helpers::spawn_replica(&first).await;
    let subject = first
        .nats
        .namespace
        .subject(&format!("wechat.reply.{}", first.plain.id));
    let mut requests = first.client.subscribe(subject).await.unwrap();
    crate::helpers::round_trip(&first.client).await;
    let (asked_once, on_first_request) = tokio::sync::oneshot::channel();
    let client = first.client.clone();
    // interaction-svc, slow on the first delivery's request: it answers the retry's
    // (with nothing) first, and the first one 100 ms later.
    tokio::spawn(async move {
        let held = requests.next().await.unwrap();
        let _ = asked_once.send(());
        let retry = requests.next().await.unwrap();
        client
            .publish(retry.reply.unwrap(), bytes::Bytes::new())
            .await
            .unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = text_reply("the first reply").encode_to_vec();
        client
            .publish(held.reply.unwrap(), answer.into())
            .await
            .unwrap();
        client.flush().await.unwrap();
    });
    let xml = samples::text("oCitizen", 517, "hello");
    let retry = async {
        on_first_request.await.unwrap();
        // The first delivery is stored: the retry's PubAck says duplicate.
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while first.stored().await.is_empty() {
            assert!(tokio::time::Instant::now() < until, "never stored");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        second
            .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
            .await
    };
    let delivery = first.plain.plain_callback(&xml);
    let ((_, body_one), (status, body_two)) =
        tokio::join!(first.post_text(&first.plain.id, &delivery), retry);
    assert_eq!(status, 200);
    let one = Reply::parse(body_one.as_bytes()).unwrap().body;
    assert_eq!(
        Reply::parse(body_two.as_bytes()).map(|r| r.body).ok(),
        Some(one),
        "the retry's answer: {body_two}"
    );
}

/// A callback that cannot be made durable is held past WeChat's deadline so WeChat
/// retries it; its reply was shared only as the handler returned, past that deadline,
/// racing the retry. Here the inbound stream is gone while the reply bucket is not.
#[tokio::test]
async fn a_reply_whose_callback_cannot_be_stored_is_shared_before_the_answer_is_held() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("PUBLISH_DEADLINE", "500ms"),
            ("CALLBACK_DEADLINE", "3s"),
            ("REPLY_SHARE_AFTER", "2s"),
        ],
        ..Options::default()
    })
    .await;
    app.responder(&app.plain.id, Duration::ZERO, |_| text_reply("kept"))
        .await;
    let stream = app.nats.namespace.name("WECHAT_INBOUND");
    app.jetstream().delete_stream(&stream).await.unwrap();
    let xml = samples::text("oCitizen", 518, "hello");
    let callback = app.plain.plain_callback(&xml);
    let post = app.post_text(&app.plain.id, &callback);
    tokio::pin!(post);
    let shared_first = tokio::select! {
        answer = &mut post => panic!("answered {answer:?} before the reply was shared"),
        written = app.wait_for_reply_cache_entries(1) => written,
    };
    assert!(shared_first, "the reply was never shared");
    let (status, _) = post.await;
    assert_eq!(status, 503);
    let undelivered = app
        .metric("gateway_replies_shared_total", &[("why", "undelivered")])
        .await;
    assert_eq!(undelivered, 1.0);
}

#[tokio::test]
async fn a_reply_answered_in_time_is_not_shared_and_a_retry_elsewhere_is_asked_again() {
    let first = spawn_app().await;
    let second = crate::helpers::spawn_replica(&first).await;
    let (asked, _) = first
        .responder(&first.plain.id, Duration::ZERO, |_| {
            text_reply(&uuid::Uuid::new_v4().to_string())
        })
        .await;
    let xml = samples::text("oCitizen", 513, "hello");
    let (_, body_one) = first
        .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
        .await;
    // WeChat got the answer within milliseconds: it will not retry, so no JetStream
    // write was paid for. Were it to retry anyway, the retry on this replica gets the
    // same reply from memory ...
    let (_, body_again) = first
        .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
        .await;
    // ... and on another replica interaction-svc is asked again for the same event_id.
    let (_, body_elsewhere) = second
        .post_text(&first.plain.id, &first.plain.plain_callback(&xml))
        .await;
    let body = |b: &str| Reply::parse(b.as_bytes()).unwrap().body;
    assert_eq!(body(&body_one), body(&body_again));
    assert_ne!(body(&body_one), body(&body_elsewhere));
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let shared = first.metric("gateway_replies_shared_total", &[]).await;
    assert_eq!(shared, 0.0);
    assert_eq!(first.stored().await.len(), 1);
}

#[tokio::test]
async fn a_reply_never_answered_with_is_shared_and_one_answered_in_time_stays_in_process() {
    use gateway::reply::{ReplyCache, ReplyKey, UnsentReply};
    let nats = platform::testing::TestNats::new();
    let jetstream = async_nats::jetstream::new(nats.connect().await);
    let batcher = gateway::batch::NatsBatcher::new(jetstream.clone());
    let cache = ReplyCache::open(
        &jetstream,
        &nats.namespace,
        100,
        batcher,
        platform::Drain::new(),
    )
    .await
    .unwrap();
    let reply = |s: &str| bytes::Bytes::from(text_reply(s).encode_to_vec());
    // Bucket writes are asynchronous: wait (bounded) for one to land.
    let shared = async |key: &ReplyKey| {
        for _ in 0..250 {
            let until = tokio::time::Instant::now() + Duration::from_secs(1);
            if let Some(found) = cache.shared("acct", key, until).await {
                return Some(found);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    };

    // Dropped unanswered: the handler was cancelled (WeChat left) or the callback
    // was not made durable. WeChat retries, perhaps on another replica.
    let dropped = ReplyKey::of("acct:oCitizen:1");
    drop(UnsentReply::new(&cache, "acct", dropped, reply("one")));
    assert_eq!(shared(&dropped).await, Some(reply("one")));

    // Answered in time: in process only. Answered late: shared too.
    let in_time = ReplyKey::of("acct:oCitizen:2");
    UnsentReply::new(&cache, "acct", in_time, reply("two")).answered(false);
    let late = ReplyKey::of("acct:oCitizen:3");
    UnsentReply::new(&cache, "acct", late, reply("three")).answered(true);
    assert_eq!(shared(&late).await, Some(reply("three")));
    assert_eq!(cache.local(&in_time), Some(reply("two")));
    // Writes leave in order (one runtime thread, one batcher): had the in-time reply
    // been shared, it would be in the bucket before the late one.
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    assert_eq!(cache.shared("acct", &in_time, until).await, None);
}

#[tokio::test]
async fn news_with_two_articles_for_a_text_message_is_refused_and_answered_success() {
    let app = spawn_app().await;
    let article = |n: u32| NewsArticle {
        title: format!("article {n}"),
        description: "d".into(),
        pic_url: "https://example.org/p.jpg".into(),
        url: "https://example.org/".into(),
    };
    app.responder(&app.plain.id, Duration::ZERO, move |_| PassiveReply {
        body: Some(passive_reply::Body::News(NewsReply {
            articles: vec![article(1), article(2)],
        })),
    })
    .await;
    let xml = samples::text("oCitizen", 507, "hello");
    let (status, body) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let counted = app
        .metric(
            "gateway_replies_total",
            &[("account", &app.plain.id), ("outcome", "invalid")],
        )
        .await;
    assert_eq!(counted, 1.0);
}

#[tokio::test]
async fn a_callback_in_flight_during_shutdown_gets_its_full_answer() {
    let mut app = spawn_app().await;
    let (_, mut requests) = app
        .responder(&app.plain.id, Duration::from_millis(300), |_| {
            text_reply("answered while draining")
        })
        .await;
    let xml = samples::text("oCitizen", 508, "hello");
    let callback = app.plain.plain_callback(&xml);
    let request = app
        .http
        .post(app.url(&app.plain.id))
        .query(&callback.query)
        .body(callback.body.clone())
        .send();
    let in_flight = tokio::spawn(async move {
        let response = request.await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    // Shut down once the callback is provably in flight (the responder has it).
    requests.recv().await.unwrap();
    app.trigger_shutdown();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    let reply = Reply::parse(body.as_bytes()).unwrap();
    assert_eq!(
        reply.body,
        ReplyBody::Text {
            content: "answered while draining".into()
        }
    );
    app.stop().await.expect("run_until_stopped returns cleanly");
    assert_eq!(app.stored().await.len(), 1);
}

#[tokio::test]
async fn a_reply_from_the_gateways_copy_of_the_rules_is_counted_as_edge_not_answered() {
    use futures::StreamExt as _;
    use proto::interaction::v1::{MatchKind, ReplyRule, ReplyRuleSnapshot};

    let app = spawn_app().await;
    let account = app.plain.id.clone();
    let snapshot = ReplyRuleSnapshot {
        account: account.clone(),
        rules: vec![ReplyRule {
            id: "00000000-0000-4000-8000-000000000001".to_owned(),
            account: account.clone(),
            r#match: MatchKind::Contains as i32,
            patterns: vec!["营业时间".to_owned()],
            text: "工作日 9:00-17:00".to_owned(),
            resolves: true,
            enabled: true,
            ..Default::default()
        }],
    };
    let ns = &app.nats.namespace;
    let mut requests = app
        .client
        .subscribe(ns.subject(&reply_rules::snapshot_subject(&account)))
        .await
        .unwrap();
    app.client.flush().await.unwrap();
    let client = app.client.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let reply_to = request.reply.expect("a request");
            let _ = client
                .publish(reply_to, snapshot.encode_to_vec().into())
                .await;
            let _ = client.flush().await;
        }
    });
    app.client
        .publish(
            ns.subject(&reply_rules::changed_subject(&account)),
            "".into(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while app
            .metric("gateway_edge_rules", &[("account", account.as_str())])
            .await
            != 1.0
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the gateway loads the rule after the notice");

    let xml = samples::text("oCitizen", 511, "请问营业时间？");
    let (status, body) = app
        .post_text(&account, &app.plain.plain_callback(&xml))
        .await;
    assert_eq!(status, 200);
    let reply = Reply::parse(body.as_bytes()).unwrap();
    assert_eq!(
        reply.body,
        ReplyBody::Text {
            content: "工作日 9:00-17:00".into()
        }
    );
    for (outcome, expected) in [("edge", 1.0), ("answered", 0.0)] {
        let labels = [("account", account.as_str()), ("outcome", outcome)];
        let counted = app.metric("gateway_replies_total", &labels).await;
        assert_eq!(counted, expected, "{outcome}");
    }
}

/// The reply budget bounds the whole wait, the queue to the NATS client included: the
/// request's own timeout started only once the batcher had handed it over, and a
/// batcher held up by publishes whose PubAcks do not come (NATS slow, every in-flight
/// ack permit taken) held the reply, and the answer, well past the budget.
#[tokio::test]
async fn the_reply_budget_bounds_the_wait_for_a_request_queued_behind_slow_publishes() {
    use futures::StreamExt as _;
    use gateway::reply::{Fetched, Replier, ReplyCache, ReplyKey, ReplyOutcome};
    let nats = platform::testing::TestNats::new();
    let client = nats.connect().await;
    // One PubAck in flight at most (as the default 5,000 are when NATS is slow): a
    // publish waits for the permit inside the batcher, which runs one job at a time.
    let jetstream = async_nats::jetstream::ContextBuilder::new()
        .max_ack_inflight(1)
        .backpressure_on_inflight(true)
        .ack_timeout(Duration::from_secs(10))
        .build(client.clone());
    let batcher = gateway::batch::NatsBatcher::new(jetstream.clone());
    let cache = ReplyCache::open(
        &jetstream,
        &nats.namespace,
        100,
        batcher.clone(),
        platform::Drain::new(),
    )
    .await
    .unwrap();
    // A "stream" that takes publishes and never acknowledges them.
    let silent = nats.namespace.subject("silent");
    let mut swallowed = client.subscribe(silent.clone()).await.unwrap();
    crate::helpers::round_trip(&client).await;
    tokio::spawn(async move { while swallowed.next().await.is_some() {} });
    // Queued, not awaited: the first holds the only permit (its PubAck is never read),
    // the second waits for it inside the batcher, and what comes after waits behind.
    let publish = || {
        let message = async_nats::jetstream::message::PublishMessage::build().payload("x".into());
        Box::pin(batcher.publish(silent.clone().into(), message))
    };
    let (mut first, mut second) = (publish(), publish());
    assert!(futures::poll!(&mut first).is_pending());
    assert!(futures::poll!(&mut second).is_pending());
    // interaction-svc answers at once, if it is ever asked.
    let replies = nats.namespace.subject("wechat.reply.acct");
    let mut requests = client.subscribe(replies).await.unwrap();
    crate::helpers::round_trip(&client).await;
    let responder = client.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let answer = text_reply("late").encode_to_vec();
            let _ = responder
                .publish(request.reply.unwrap(), answer.into())
                .await;
        }
    });

    let replier = Replier::new(
        batcher.clone(),
        nats.namespace.clone(),
        cache,
        Duration::ZERO,
        None,
    );
    let xml = samples::text("oCitizen", 519, "hello");
    let message = wechat::message::InboundMessage::parse(xml.as_bytes()).unwrap();
    let started = tokio::time::Instant::now();
    let budget = Duration::from_millis(300);
    let key = ReplyKey::of("acct:oCitizen:519");
    let fetch = replier.fetch(
        "acct",
        &key,
        &message,
        bytes::Bytes::new(),
        started + budget,
    );
    let fetched = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .unwrap_or_else(|_| panic!("no answer after 5 s for a reply budgeted {budget:?}"));
    let waited = started.elapsed();
    assert!(
        waited < budget + Duration::from_millis(500),
        "waited {waited:?} for a reply budgeted {budget:?}: {fetched:?}"
    );
    assert!(
        matches!(fetched, Fetched::Nothing(ReplyOutcome::Timeout)),
        "{fetched:?}"
    );
}

/// A retry's replica asked interaction-svc afresh and, its publish still pending at
/// `REPLY_SHARE_AFTER`, shares its own reply before its duplicate PubAck tells it it
/// is a retry: the first reply shared, perhaps the one WeChat holds, must stay.
#[tokio::test]
async fn the_first_reply_shared_for_a_callback_stays_when_another_replica_shares_later() {
    use gateway::reply::{ReplyCache, ReplyKey, ShareReason};
    let nats = platform::testing::TestNats::new();
    let jetstream = async_nats::jetstream::new(nats.connect().await);
    let open = async || {
        let batcher = gateway::batch::NatsBatcher::new(jetstream.clone());
        ReplyCache::open(
            &jetstream,
            &nats.namespace,
            100,
            batcher,
            platform::Drain::new(),
        )
        .await
        .unwrap()
    };
    let (replica_a, replica_b) = (open().await, open().await);
    let reply = |s: &str| bytes::Bytes::from(text_reply(s).encode_to_vec());
    let key = ReplyKey::of("acct:oCitizen:1");
    let until = || tokio::time::Instant::now() + Duration::from_secs(5);

    replica_a.share("acct", key, reply("first"), ShareReason::Late);
    assert_eq!(
        replica_a.shared("acct", &key, until()).await,
        Some(reply("first"))
    );
    replica_b.share("acct", key, reply("second"), ShareReason::Late);
    // B's writes leave in order: once a later one landed, its share of `key` did too.
    let marker = ReplyKey::of("acct:oCitizen:2");
    replica_b.share("acct", marker, reply("marker"), ShareReason::Late);
    assert_eq!(
        replica_b.shared("acct", &marker, until()).await,
        Some(reply("marker"))
    );
    assert_eq!(
        replica_b.shared("acct", &key, until()).await,
        Some(reply("first")),
        "a later share replaced the first reply"
    );
}

/// WeChat's retry reaches another replica while JetStream still stalls there: its
/// first publish attempt goes unanswered and its second is told `duplicate` (the first
/// replica stored the callback). That duplicate was taken for the replica's own
/// earlier attempt and the bucket never read, so the retry answered a reply asked
/// afresh, not the one the first replica shared and WeChat may hold.
#[tokio::test]
async fn a_retry_whose_duplicate_comes_on_a_later_attempt_still_gets_the_shared_reply() {
    let proxy = platform::testing::ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let retried = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        // Every reply is shared: the first delivery's answer was late.
        extra: vec![("REPLY_SHARE_AFTER", "0s")],
        ..Options::default()
    })
    .await;
    // The replica that took the first delivery reaches NATS directly.
    let first = crate::helpers::spawn_replica(&retried).await;
    let account = &retried.safe;
    let (asked, _) = retried
        .responder(&account.id, Duration::ZERO, |_| {
            text_reply(&uuid::Uuid::new_v4().to_string())
        })
        .await;
    let xml = samples::text("oCitizen", 519, "hello");
    let (status, body_one) = first
        .post_text(&account.id, &account.encrypted_callback(&xml))
        .await;
    assert_eq!(status, 200);
    assert!(
        retried.wait_for_reply_cache_entries(1).await,
        "never shared"
    );

    proxy.blackhole();
    let release = async {
        while retried.metric("gateway_publish_retries_total", &[]).await < 1.0 {
            tokio::task::yield_now().await;
        }
        proxy.restore();
    };
    let retry = account.encrypted_callback(&xml);
    let ((status, body_two), ()) = tokio::join!(retried.post_text(&account.id, &retry), release);
    assert_eq!(status, 200);
    let reply = |body: &str| {
        Reply::open_encrypted(body.as_bytes(), &account.crypto, &account.token)
            .unwrap()
            .body
    };
    assert_eq!(asked.load(Ordering::SeqCst), 2, "both replicas asked");
    assert_eq!(
        reply(&body_two),
        reply(&body_one),
        "the retry answers the first replica's shared reply"
    );
    assert_eq!(retried.stored().await.len(), 1, "stored once");
}
