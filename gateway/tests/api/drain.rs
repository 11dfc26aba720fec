//! A SIGTERM ends the gateway within `SHUTDOWN_GRACE` even while NATS cannot be
//! reached, so Kubernetes never has to kill it mid-flush.

use std::time::Duration;

use platform::Env;
use platform::testing::{
    ChaosProxy, ServiceProcess, TestNats, assert_sigterm_with_nats_cut_ends_within_the_grace,
    free_port,
};
use wechat::signature;

#[tokio::test]
async fn sigterm_with_nats_cut_ends_the_process_within_the_grace_and_says_what_it_left() {
    let nats = TestNats::new();
    let env = Env::from_pairs([
        ("NATS_URL", nats.url()),
        ("NATS_PREFIX", nats.prefix.as_str()),
        ("HTTP_ADDR", "127.0.0.1:0"),
    ]);
    assert_sigterm_with_nats_cut_ends_within_the_grace(env!("CARGO_BIN_EXE_gateway"), env).await;
}

#[tokio::test]
async fn a_callback_in_flight_when_nats_is_cut_gets_no_answer_and_the_process_still_ends_in_time() {
    let nats = TestNats::new();
    let proxy = ChaosProxy::start(nats.url()).await;
    let http_addr = format!("127.0.0.1:{}", free_port());
    let env = Env::from_pairs([
        ("NATS_URL", proxy.url()),
        ("NATS_PREFIX", nats.prefix.as_str()),
        ("HTTP_ADDR", http_addr.as_str()),
        ("SHUTDOWN_GRACE", "2s"),
        ("WECHAT_ACCOUNTS", "drain"),
        ("WECHAT_DRAIN_APPID", "wxdrain000000001"),
        ("WECHAT_DRAIN_ORIGINAL_ID", "gh_drain0000001"),
        ("WECHAT_DRAIN_TOKEN", "drain-token"),
        ("WECHAT_DRAIN_MODE", "plaintext"),
    ]);
    let mut gateway = ServiceProcess::spawn(env!("CARGO_BIN_EXE_gateway"), &env);
    gateway.wait_ready(Duration::from_secs(30)).await;
    proxy.cut();
    gateway.wait_unready(Duration::from_secs(10)).await;

    // PUBLISH_DEADLINE (4 s by default) outlasts the grace: the callback is still
    // retrying its publish when the drain's deadline comes.
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let query = [
        (
            "signature",
            signature::signature("drain-token", &timestamp, "n1"),
        ),
        ("timestamp", timestamp),
        ("nonce", "n1".to_owned()),
    ];
    let body = "<xml><ToUserName><![CDATA[gh_drain0000001]]></ToUserName>\
        <FromUserName><![CDATA[oDrain]]></FromUserName><CreateTime>1700000100</CreateTime>\
        <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>\
        <MsgId>1</MsgId></xml>";
    let callback = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{http_addr}/wechat/drain"))
            .query(&query)
            .body(body)
            .send(),
    );
    wait_for_publish_retry(&gateway).await;
    let output = gateway.assert_terminates_within_the_grace().await;
    assert!(
        callback.await.unwrap().is_err(),
        "an unfinished callback gets no answer, so WeChat redelivers it"
    );
    assert!(
        output.contains("drain deadline passed"),
        "the abandoned callback is logged:\n{output}"
    );
}

async fn wait_for_publish_retry(gateway: &ServiceProcess) {
    let url = format!("{}/metrics", gateway.admin_url());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
        // Unlabelled counters, rendered only once incremented. A plaintext callback
        // meets the replay ledger (on the cut NATS too) before its publish, and is
        // held past it all the same.
        if page.lines().any(|line| {
            line.starts_with("gateway_publish_retries_total ")
                || line.starts_with("gateway_replay_check_failed_total ")
        }) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the callback never reached its publish:\n{}",
            gateway.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection still sending its request head when the drain starts is given at
/// most `CALLBACK_DEADLINE`, not hyper's header timer (`HTTP_IDLE_TIMEOUT`, 75 s),
/// which held the drain to `SHUTDOWN_GRACE`.
#[tokio::test]
async fn a_half_sent_request_head_does_not_hold_the_drain() {
    use tokio::io::AsyncWriteExt as _;
    let mut app = crate::helpers::spawn_app_with(crate::helpers::Options {
        extra: vec![
            ("SHUTDOWN_GRACE", "20s"),
            ("CALLBACK_DEADLINE", "1s"),
            ("PUBLISH_DEADLINE", "800ms"),
            ("REPLY_BUDGET", "500ms"),
        ],
        ..Default::default()
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(format!("POST /wechat/{} HTTP/1.1\r\nHost: a\r\n", app.plain.id).as_bytes())
        .await
        .unwrap();
    // The connection is served (a whole request on another is answered, so the
    // listener has accepted the earlier one too).
    let callback = app
        .plain
        .plain_callback(&crate::samples::text("oBefore", 1, "hi"));
    assert_eq!(app.post_text(&app.plain.id, &callback).await.0, 200);
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the drain still waits on a half-sent head 10 s later")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the drain took {:?}",
        started.elapsed()
    );
}
