//! WeChat's retry behaviour and the load generator, against a local stand-in.

use std::sync::Arc;
use std::time::Duration;

use wechat_sim::traffic::cpu::WatchedProcess;
use wechat_sim::traffic::load::{self, LoadConfig};
use wechat_sim::traffic::{
    AttemptOutcome, CallbackAccount, CallbackClient, CallbackSigner, CitizenAction, Follower, Mode,
    RetryPolicy,
};

use crate::standin::spawn_standin;

#[tokio::test]
async fn a_callback_not_answered_in_time_is_retried_identically() {
    let (base, received) = spawn_standin(1, Duration::from_secs(2)).await;
    let signer = CallbackSigner::new(CallbackAccount::demo()).unwrap();
    let mut follower = Follower::new("oSlowGateway0000000000000001");
    let cb = signer
        .sign(
            &mut follower,
            &CitizenAction::Text {
                content: "户籍迁移怎么办理？".into(),
            },
        )
        .unwrap();
    let policy = RetryPolicy {
        timeout: Duration::from_millis(300),
        max_attempts: 3,
    };
    let client = CallbackClient::new(&base, policy).unwrap();

    let delivery = client.deliver(&cb).await;

    assert_eq!(delivery.attempts.len(), 2, "{delivery:?}");
    assert_eq!(delivery.attempts[0].outcome, AttemptOutcome::TimedOut);
    assert!(delivery.retried());
    assert_eq!(
        delivery.answer().map(|(s, b)| (s, b.clone())),
        Some((200, "success".into()))
    );
    let received = received.all();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0], received[1],
        "a retry repeats query and body exactly"
    );
    assert_eq!(format!("/wechat/demo?{}", received[0].0), cb.path_and_query);
    assert_eq!(received[0].1, cb.body);
}

#[tokio::test]
async fn a_gateway_that_never_answers_gets_three_attempts() {
    let (base, received) = spawn_standin(usize::MAX, Duration::from_secs(5)).await;
    let signer = CallbackSigner::new(CallbackAccount::demo()).unwrap();
    let mut follower = Follower::new("oDeadGateway0000000000000001");
    let cb = signer
        .sign(&mut follower, &CitizenAction::Subscribe)
        .unwrap();
    let client = CallbackClient::new(
        &base,
        RetryPolicy {
            timeout: Duration::from_millis(150),
            max_attempts: 3,
        },
    )
    .unwrap();

    let delivery = client.deliver(&cb).await;

    assert_eq!(delivery.attempts.len(), 3);
    assert!(delivery.answer().is_none());
    assert_eq!(received.all().len(), 3);
}

#[tokio::test]
async fn load_mode_reports_sane_stats() {
    let (base, received) = spawn_standin(0, Duration::ZERO).await;
    let signer = Arc::new(CallbackSigner::new(CallbackAccount::demo()).unwrap());
    let config = LoadConfig {
        gateway: base,
        concurrency: 4,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        prebuild: 400,
        cpu_watch: vec![WatchedProcess {
            name: "standin".into(),
            pid: std::process::id(),
        }],
        ..LoadConfig::default()
    };

    let report = load::run(signer, config).await.unwrap();

    assert!(report.ok > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(
        report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms,
        "{report:?}"
    );
    assert!(report.sent_total >= report.sent);
    assert_eq!(report.ok_total as usize, received.all().len());
    // Warm-up callbacks are sent but not measured.
    assert!(report.sent_total > report.sent);
    // The generator's own CPU, then each watched process's, per measured callback.
    let watched: Vec<&str> = report.cpu.iter().map(|p| p.process.as_str()).collect();
    assert_eq!(watched, ["load-generator", "standin"], "{report:?}");
    for process in &report.cpu {
        assert!(
            process.cpu_secs >= 0.0 && process.cores <= 64.0,
            "{process:?}"
        );
        let per_callback = process.cpu_secs * 1e6 / report.ok as f64;
        assert!(
            (process.us_per_op - per_callback).abs() < 1e-6,
            "{process:?}"
        );
    }
}

#[tokio::test]
async fn load_mode_at_a_fixed_rate_sends_about_that_many() {
    let (base, _) = spawn_standin(0, Duration::ZERO).await;
    let signer = Arc::new(CallbackSigner::new(CallbackAccount::demo()).unwrap());
    let config = LoadConfig {
        gateway: base,
        concurrency: 2,
        duration: Duration::from_secs(1),
        rate: Some(200.0),
        prebuild: 400,
        ..LoadConfig::default()
    };

    let report = load::run(signer, config).await.unwrap();

    assert!((150..=250).contains(&report.sent), "{report:?}");
}

#[tokio::test]
async fn a_location_load_sends_reported_locations_each_followers_once_a_second() {
    let (base, received) = spawn_standin(0, Duration::ZERO).await;
    let account = CallbackAccount::demo().with_mode(Mode::Plaintext);
    let signer = Arc::new(CallbackSigner::new(account).unwrap());
    let config = LoadConfig {
        gateway: base,
        concurrency: 2,
        duration: Duration::from_millis(300),
        prebuild: 200,
        callback: load::LoadCallback::Location,
        ..LoadConfig::default()
    };

    let report = load::run(signer, config).await.unwrap();

    assert!(report.ok > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.replies, 0, "{report:?}");
    let bodies: Vec<String> = received
        .all()
        .into_iter()
        .map(|(_, body)| String::from_utf8(body.to_vec()).unwrap())
        .collect();
    assert!(!bodies.is_empty());
    let mut keys = std::collections::HashSet::new();
    for body in &bodies {
        assert!(
            body.contains("<Event><![CDATA[LOCATION]]></Event>"),
            "{body}"
        );
        assert!(!body.contains("<MsgId>"), "{body}");
        let field = |name: &str| {
            let start = body.find(&format!("<{name}>")).unwrap() + name.len() + 2;
            let end = body.find(&format!("</{name}>")).unwrap();
            body[start..end].to_owned()
        };
        // The gateway's key for an event: a follower never sends two in one second.
        assert!(
            keys.insert((field("FromUserName"), field("CreateTime"))),
            "{body}"
        );
    }
}
