//! What the gateway's own binary logs at the default level: no citizen's openid,
//! and no line per request for what anyone on the internet can send, nor for each
//! callback of a NATS outage.

use std::time::{Duration, Instant};

use gateway::log_limit::LOG_PERIOD;

use platform::testing::ChaosProxy;

use crate::helpers::{Options, spawn_process_with};
use crate::samples;

#[tokio::test]
async fn a_callback_not_made_durable_is_logged_without_the_citizens_openid() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let mut app = spawn_process_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let openid = "oCitizenOutage7";
    proxy.cut();
    app.gateway.wait_unready(Duration::from_secs(10)).await;

    let xml = samples::text(openid, 4242, "停水了");
    // Safe mode reaches the publish; a plaintext callback stops at its replay check.
    let (status, _) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;

    assert_eq!(status, 503);
    let output = app.stop().await;
    assert!(
        output.contains("publish not acknowledged before the deadline"),
        "the outage is logged:\n{output}"
    );
    assert!(!output.contains(openid), "the openid is logged:\n{output}");
}

#[tokio::test]
async fn callbacks_during_a_nats_outage_write_one_warning_per_period_not_one_each() {
    const CALLBACKS: u64 = 30;
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let mut app = spawn_process_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    proxy.cut();
    app.gateway.wait_unready(Duration::from_secs(10)).await;

    let started = Instant::now();
    let callbacks: Vec<_> = (0..CALLBACKS)
        .map(|i| {
            let xml = samples::text(&format!("oOutage{i}"), 5000 + i, "停水了");
            // Plaintext callbacks meet the replay ledger, safe-mode ones the publish.
            let account = if i % 2 == 0 { &app.plain } else { &app.safe };
            let callback = if i % 2 == 0 {
                account.plain_callback(&xml)
            } else {
                account.encrypted_callback(&xml)
            };
            (account.id.clone(), callback)
        })
        .collect();
    let answers = futures::future::join_all(
        callbacks
            .iter()
            .map(|(account, callback)| app.post_text(account, callback)),
    )
    .await;
    let periods = started.elapsed().as_secs() / LOG_PERIOD.as_secs() + 1;

    assert!(
        answers.iter().all(|(status, _)| *status == 503),
        "{answers:?}"
    );
    let output = app.stop().await;
    let warnings = |message: &str| {
        output
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(message))
            .count() as u64
    };
    for message in [
        "publish not acknowledged before the deadline",
        "signature ledger unavailable",
    ] {
        let lines = warnings(message);
        assert!(lines >= 1, "the outage is logged:\n{output}");
        assert!(
            lines <= periods,
            "{lines} lines '{message}' for {CALLBACKS} callbacks:\n{output}"
        );
    }
}

#[tokio::test]
async fn a_flood_of_rejections_writes_a_bounded_number_of_warnings() {
    const FLOOD: usize = 50;
    let mut app = spawn_process_with(Options::default()).await;
    let xml = samples::text("oFlood", 1, "hi");

    let started = Instant::now();
    for _ in 0..FLOOD {
        let callback = app.plain.plain_callback(&xml);
        let (status, _) = app.post_text("no-such-account", &callback).await;
        assert_eq!(status, 404);
        let mut forged = app.plain.plain_callback(&xml);
        forged.set("signature", &"0".repeat(40));
        let (status, _) = app.post_text(&app.plain.id, &forged).await;
        assert_eq!(status, 401);
    }
    // One line per period the flood lasted, however slowly the machine sent it.
    let periods = started.elapsed().as_secs() / LOG_PERIOD.as_secs() + 1;

    let output = app.stop().await;
    let warnings = |reason: &str| {
        output
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("callback rejected") && l.contains(reason))
            .count() as u64
    };
    assert_eq!(warnings("unknown_account"), 0, "{output}");
    let bad_signature = warnings("bad_signature");
    assert!(
        bad_signature >= 1,
        "a misconfiguration still warns:\n{output}"
    );
    assert!(
        bad_signature <= periods,
        "{bad_signature} warnings:\n{output}"
    );
}

/// During an EncodingAESKey rotation every callback WeChat still sends under the old
/// key opened with the previous one, and each wrote an INFO line: a line per callback
/// for as long as the rotation lasts.
#[tokio::test]
async fn callbacks_opened_with_the_previous_key_write_one_line_per_period_not_one_each() {
    const CALLBACKS: u64 = 20;
    let mut app = spawn_process_with(Options::default()).await;
    let previous =
        wechat::crypto::MessageCrypto::new(crate::helpers::PREVIOUS_AES_KEY, &app.safe.appid)
            .unwrap();
    let started = Instant::now();
    for i in 0..CALLBACKS {
        let xml = samples::text(&format!("oRotate{i}"), 6000 + i, "old key");
        let callback = app.safe.encrypted_callback_with(&xml, &previous);
        let (status, _) = app.post_text(&app.safe.id, &callback).await;
        assert_eq!(status, 200, "callback {i}");
    }
    let periods = started.elapsed().as_secs() / LOG_PERIOD.as_secs() + 1;

    let output = app.stop().await;
    let lines = output
        .lines()
        .filter(|l| l.contains("decrypted with the previous EncodingAESKey"))
        .count() as u64;
    assert!(lines >= 1, "the rotation is logged:\n{output}");
    assert!(
        lines <= periods,
        "{lines} lines for {CALLBACKS} callbacks:\n{output}"
    );
}

/// A responder with a bug answers every callback with a reply the gateway cannot
/// send, and each wrote a WARN line: one per callback for as long as the bug lasts.
#[tokio::test]
async fn a_responder_answering_unsendable_replies_writes_one_warning_per_period_not_one_each() {
    use prost::Message as _;
    use proto::events::v1::{NewsArticle, NewsReply, PassiveReply, passive_reply};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CALLBACKS: u64 = 20;
    let mut app = spawn_process_with(Options::default()).await;
    let article = |n: u32| NewsArticle {
        title: format!("article {n}"),
        description: "d".into(),
        pic_url: "https://example.org/p.jpg".into(),
        url: "https://example.org/".into(),
    };
    // Two news articles for a user's message: refused by WeChat's limits.
    let refused = PassiveReply {
        body: Some(passive_reply::Body::News(NewsReply {
            articles: vec![article(1), article(2)],
        })),
    }
    .encode_to_vec();
    let asked = AtomicUsize::new(0);
    // Every other answer does not decode as a `PassiveReply`.
    app.raw_responder(&app.plain.id, move || {
        if asked.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            vec![0xff; 8]
        } else {
            refused.clone()
        }
    })
    .await;

    let started = Instant::now();
    for i in 0..CALLBACKS {
        let xml = samples::text(&format!("oBuggy{i}"), 7000 + i, "hi");
        let (status, body) = app
            .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
            .await;
        assert_eq!((status, body.as_str()), (200, "success"), "callback {i}");
    }
    let periods = started.elapsed().as_secs() / LOG_PERIOD.as_secs() + 1;

    let output = app.stop().await;
    for message in ["passive reply does not decode", "passive reply refused"] {
        let lines = output
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(message))
            .count() as u64;
        assert!(lines >= 1, "'{message}' is logged:\n{output}");
        assert!(
            lines <= periods,
            "{lines} lines '{message}' for {CALLBACKS} callbacks:\n{output}"
        );
    }
}
