//! The gateway's copy of the reply rules (`gateway::edge`): what it answers alone, and
//! what it keeps when a snapshot cannot be used. interaction-svc's side, and the copy
//! following a rule change end to end, are tested in interaction-svc (`e2e.rs`).

use std::time::Duration;

use futures::StreamExt;
use gateway::edge::{EdgeRules, SnapshotError};
use platform::testing::TestNats;
use prost::Message as _;
use proto::events::v1::{PassiveReply, passive_reply::Body};
use proto::interaction::v1::{MatchKind, ReplyRule, ReplyRuleSnapshot};
use wechat::message::InboundMessage;

fn snapshot(account: &str, rules: &[(MatchKind, &str, &str)]) -> ReplyRuleSnapshot {
    ReplyRuleSnapshot {
        account: account.to_owned(),
        rules: rules
            .iter()
            .enumerate()
            .map(|(n, (kind, pattern, text))| ReplyRule {
                id: format!("00000000-0000-4000-8000-{n:012}"),
                account: account.to_owned(),
                r#match: *kind as i32,
                patterns: vec![(*pattern).to_owned()],
                text: (*text).to_owned(),
                resolves: true,
                enabled: true,
                ..Default::default()
            })
            .collect(),
    }
}

fn message(from: &str, content: &str) -> InboundMessage {
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_city]]></ToUserName>\
         <FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>1700000000</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>1</MsgId></xml>"
    );
    InboundMessage::parse(xml.as_bytes()).expect("valid XML")
}

fn text_of(encoded: &[u8]) -> String {
    match PassiveReply::decode(encoded).expect("a PassiveReply").body {
        Some(Body::Text(text)) => text.content,
        other => panic!("not a text reply: {other:?}"),
    }
}

/// Answers snapshot requests for `city` with `answers`, one per request, in order; the
/// returned task ends once the server has dropped the subscription.
async fn serve_snapshots(nats: &TestNats, answers: Vec<Vec<u8>>) -> tokio::task::JoinHandle<()> {
    let client = nats.connect().await;
    let mut requests = client
        .subscribe(
            nats.namespace
                .subject(&reply_rules::snapshot_subject("city")),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        for answer in answers {
            let request = requests.next().await.expect("a request");
            let reply_to = request.reply.expect("a request");
            client.publish(reply_to, answer.into()).await.unwrap();
        }
        // Dropping the client alone leaves the server routing requests here for a moment.
        requests.unsubscribe().await.unwrap();
        client.flush().await.unwrap();
    })
}

#[tokio::test]
async fn a_keyword_is_answered_from_the_copy_but_a_lone_digit_and_system_senders_are_not() {
    let nats = TestNats::new();
    let rules = snapshot(
        "city",
        &[
            (MatchKind::Exact, "5", "menu five"),
            (MatchKind::Contains, "营业时间", "工作日 9:00-17:00"),
        ],
    );
    serve_snapshots(&nats, vec![rules.encode_to_vec()]).await;
    let edge = EdgeRules::new(nats.connect().await, nats.namespace.clone());
    assert!(
        edge.answer("city", &message("oCitizen", "营业时间"))
            .is_none(),
        "nothing loaded yet"
    );

    assert_eq!(edge.load("city").await.unwrap(), 2);
    let answered = edge
        .answer("city", &message("oCitizen", "请问营业时间？"))
        .unwrap();
    assert_eq!(text_of(&answered), "工作日 9:00-17:00");
    assert!(
        edge.answer("city", &message("oCitizen", "5")).is_none(),
        "a lone digit may rate a ticket: asked of interaction-svc"
    );
    assert!(
        edge.answer("city", &message("mphelper", "营业时间"))
            .is_none(),
        "WeChat's own notices are not a citizen's"
    );
    assert!(edge.answer("city", &message("oCitizen", "你好")).is_none());
    assert!(
        edge.answer("county", &message("oCitizen", "营业时间"))
            .is_none()
    );
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_used_keeps_the_last_copy() {
    let nats = TestNats::new();
    let good = snapshot("city", &[(MatchKind::Contains, "社保", "old answer")]);
    let mut unknown_kind = snapshot("city", &[(MatchKind::Contains, "社保", "new answer")]);
    unknown_kind.rules[0].r#match = 42;
    let other_account = snapshot("county", &[(MatchKind::Contains, "社保", "county")]);
    let server = serve_snapshots(
        &nats,
        vec![
            good.encode_to_vec(),
            unknown_kind.encode_to_vec(),
            other_account.encode_to_vec(),
            b"\xff\xff not protobuf".to_vec(),
        ],
    )
    .await;
    let edge = EdgeRules::new(nats.connect().await, nats.namespace.clone());
    edge.load("city").await.unwrap();

    let refused = [
        edge.load("city").await.unwrap_err(),
        edge.load("city").await.unwrap_err(),
        edge.load("city").await.unwrap_err(),
    ];
    assert!(
        matches!(refused[0], SnapshotError::Rule(_)),
        "{:?}",
        refused[0]
    );
    assert!(
        matches!(&refused[1], SnapshotError::OtherAccount(a) if a == "county"),
        "{:?}",
        refused[1]
    );
    assert!(
        matches!(refused[2], SnapshotError::Decode(_)),
        "{:?}",
        refused[2]
    );
    assert_eq!(edge.rules_of("city"), Some(1));
    let answered = edge.answer("city", &message("oCitizen", "社保卡")).unwrap();
    assert_eq!(text_of(&answered), "old answer");

    // Nobody answers any more: the copy stays too.
    server.await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(5), edge.load("city"))
        .await
        .expect("no responders is answered at once")
        .unwrap_err();
    assert!(matches!(error, SnapshotError::NoResponders), "{error:?}");
    assert_eq!(edge.rules_of("city"), Some(1));
}

/// The periodic refresh walks the accounts one after another, each waiting up to the
/// snapshot timeout: a change notice arriving meanwhile waited behind the whole round
/// (40 accounts x 2 s), the old rules answering all the while. A notice is handled
/// during a round: here, before the round moves past an account that does not answer.
#[tokio::test]
async fn a_change_notice_is_handled_while_a_refresh_round_waits_on_an_account() {
    let nats = TestNats::new();
    let client = nats.connect().await;
    let mut requests = client
        .subscribe(nats.namespace.subject(&reply_rules::snapshot_subject("*")))
        .await
        .unwrap();
    let notices = client
        .subscribe(nats.namespace.subject(reply_rules::CHANGED_WILDCARD))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let edge = std::sync::Arc::new(EdgeRules::new(client.clone(), nats.namespace.clone()));
    let drain = platform::Drain::new();
    let accounts = ["stuck", "second", "changed"].map(str::to_owned).to_vec();
    // The first tick comes at once: a round starting at `stuck`.
    let running = tokio::spawn(gateway::edge::run(
        edge.clone(),
        accounts,
        notices,
        Duration::from_secs(3600),
        drain.clone(),
    ));
    let account_of = |request: &async_nats::Message| {
        request
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned()
    };
    let stuck = requests.next().await.expect("the round's first request");
    assert_eq!(account_of(&stuck), "stuck");
    // `stuck` is never answered; its account's rules change meanwhile.
    client
        .publish(
            nats.namespace
                .subject(&reply_rules::changed_subject("changed")),
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let next = requests.next().await.expect("another request");
    assert_eq!(
        account_of(&next),
        "changed",
        "the notice is handled before the round moves on"
    );
    drain.stopping().cancel();
    running.await.unwrap();
}

/// A round and a notice load one account at once: when the earlier request's answer
/// comes last it is not kept, and its load reports the rules held (the later answer's),
/// which is what `gateway_edge_rules` is set to.
#[tokio::test]
async fn an_older_answer_arriving_last_reports_the_newer_rules_it_did_not_replace() {
    let nats = TestNats::new();
    let client = nats.connect().await;
    let mut requests = client
        .subscribe(
            nats.namespace
                .subject(&reply_rules::snapshot_subject("city")),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let edge = std::sync::Arc::new(EdgeRules::new(client.clone(), nats.namespace.clone()));
    let older = tokio::spawn({
        let edge = edge.clone();
        async move { edge.load("city").await }
    });
    let held_back = requests.next().await.expect("the older request");
    let newer = tokio::spawn({
        let edge = edge.clone();
        async move { edge.load("city").await }
    });
    let answered = requests.next().await.expect("the newer request");
    let two = snapshot(
        "city",
        &[
            (MatchKind::Contains, "营业时间", "工作日 9:00-17:00"),
            (MatchKind::Contains, "地址", "市民中心"),
        ],
    );
    client
        .publish(answered.reply.unwrap(), two.encode_to_vec().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(newer.await.unwrap().unwrap(), 2);
    let one = snapshot("city", &[(MatchKind::Contains, "营业时间", "旧的答复")]);
    client
        .publish(held_back.reply.unwrap(), one.encode_to_vec().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        older.await.unwrap().unwrap(),
        2,
        "the older answer, not kept, reports the rules held"
    );
    assert_eq!(edge.rules_of("city"), Some(2));
}
