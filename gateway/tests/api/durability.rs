//! While JetStream cannot take a callback, WeChat gets no answer inside its deadline
//! (so it redelivers), and the redelivery is accepted once NATS is back.

use std::time::{Duration, Instant};

use platform::testing::ChaosProxy;

use crate::helpers::{Options, spawn_app_with};
use crate::samples;

#[tokio::test]
async fn with_nats_down_there_is_no_answer_inside_the_deadline_and_the_retry_is_accepted_later() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let xml = samples::text("oOutage", 99, "停水了");

    proxy.cut();
    app.wait_ready(false, Duration::from_secs(5)).await;
    let started = Instant::now();
    // A safe-mode account: a plaintext one would be held at its replay check (the
    // ledger is on the same NATS), before the publish this test is about.
    let (status, _) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "answered after {:?}, inside WeChat's deadline",
        started.elapsed()
    );
    assert_eq!(status, 503);
    assert!(app.stored().await.is_empty(), "nothing acknowledged");
    let not_durable = app
        .metric(
            "gateway_callbacks_total",
            &[("account", &app.safe.id), ("outcome", "not_durable")],
        )
        .await;
    assert_eq!(not_durable, 1.0);
    assert!(app.metric("gateway_publish_retries_total", &[]).await >= 1.0);

    proxy.restore();
    app.wait_ready(true, Duration::from_secs(15)).await;
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1, "stored exactly once");
    assert_eq!(stored[0].1, format!("{}:oOutage:99", app.safe.id));
}

#[tokio::test]
async fn a_publish_stored_though_its_pub_ack_came_late_counts_as_accepted_not_as_a_retry() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![("CALLBACK_DEADLINE", "4s"), ("PUBLISH_DEADLINE", "3s")],
        ..Options::default()
    })
    .await;
    let xml = samples::text("oSlowAck", 7, "路灯坏了");

    // The link stalls: the first PUB is held, its PubAck does not come within the
    // attempt's timeout and the gateway publishes again. Both then reach JetStream,
    // which stores the first and calls the second a duplicate.
    proxy.blackhole();
    // Safe mode: a plaintext callback's replay check would stall on the link first.
    let callback = app.safe.encrypted_callback(&xml);
    let release = async {
        while app.metric("gateway_publish_retries_total", &[]).await < 1.0 {
            tokio::task::yield_now().await;
        }
        proxy.restore();
    };
    let ((status, body), ()) = tokio::join!(app.post_text(&app.safe.id, &callback), release);
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(app.stored().await.len(), 1, "stored once");
    let account = ("account", app.safe.id.as_str());
    let accepted = app
        .metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "accepted")],
        )
        .await;
    let duplicate = app
        .metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "duplicate")],
        )
        .await;
    assert_eq!(accepted, 1.0, "the gateway's own repeat");
    assert_eq!(duplicate, 0.0, "no retry from WeChat");
}

/// A nats-server of its own, with JetStream and a `max_payload` of `max_payload`
/// bytes (an operator's setting below the default 1 MiB). Stopped when dropped.
struct SmallPayloadNats {
    server: std::process::Child,
    dir: std::path::PathBuf,
    url: String,
}

impl SmallPayloadNats {
    async fn start(max_payload: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("gateway-payload-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = platform::testing::free_port();
        let conf = dir.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\nmax_payload: {max_payload}\njetstream {{ store_dir: {:?} }}\n",
                dir.join("js")
            ),
        )
        .unwrap();
        let server = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("nats-server.log")).unwrap())
            .spawn()
            .expect("nats-server starts");
        let url = format!("nats://127.0.0.1:{port}");
        let listening = tokio::time::timeout(Duration::from_secs(10), async {
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(&url)
                .await
                .unwrap()
                .flush()
                .await
        })
        .await;
        assert!(
            matches!(listening, Ok(Ok(()))),
            "nats-server listens within 10 s"
        );
        Self { server, dir, url }
    }
}

impl Drop for SmallPayloadNats {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A callback whose event is larger than the server's `max_payload` can never be
/// stored, however often WeChat sends it: answered 413 at once with its own reason,
/// not held to the deadline as if NATS might take it later.
#[tokio::test]
async fn a_callback_over_the_nats_max_payload_is_413_at_once_not_held() {
    let nats = SmallPayloadNats::start(64 * 1024).await;
    let app = spawn_app_with(Options {
        nats_url: Some(nats.url.clone()),
        extra: vec![("CALLBACK_DEADLINE", "3s"), ("PUBLISH_DEADLINE", "2s")],
        ..Options::default()
    })
    .await;
    // About 80 KiB of text: under MAX_BODY_BYTES (256 KiB), over the server's 64 KiB.
    let xml = samples::text("oLarge", 1, &"长".repeat(27 * 1024));
    let started = Instant::now();
    let (status, body) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    let took = started.elapsed();
    assert_eq!((status, body.as_str()), (413, "event_too_large"));
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?}: held to CALLBACK_DEADLINE"
    );
    let account = ("account", app.safe.id.as_str());
    assert_eq!(
        app.metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "event_too_large")]
        )
        .await,
        1.0
    );
    assert_eq!(
        app.metric(
            "gateway_callbacks_total",
            &[account, ("outcome", "not_durable")]
        )
        .await,
        0.0
    );
    assert!(
        app.metric(
            "gateway_publish_refused_total",
            &[("reason", "max_payload")]
        )
        .await
            >= 1.0
    );
}
