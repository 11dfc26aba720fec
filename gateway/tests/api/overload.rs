//! The in-flight bound (`MAX_IN_FLIGHT`): past it a callback is refused at once with
//! 503 `overloaded`, counted and not published, and the bound frees with the callback
//! that held it.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use proto::events::v1::PassiveReply;

use crate::helpers::{Options, spawn_app_with};
use crate::samples;

#[tokio::test]
async fn a_callback_past_the_in_flight_bound_is_refused_at_once_then_the_bound_frees() {
    let app = spawn_app_with(Options {
        extra: vec![("MAX_IN_FLIGHT", "1"), ("REPLY_BUDGET", "1s")],
        ..Options::default()
    })
    .await;
    let account = app.plain.id.clone();
    // interaction-svc is slow: a callback that asks it holds the only place for the
    // reply budget.
    let (_, mut asked) = app
        .responder(&account, Duration::from_secs(5), |_| {
            PassiveReply::default()
        })
        .await;
    let held = app
        .plain
        .plain_callback(&samples::text("oHolder", 1, "hello"));
    let labels = [("account", account.as_str()), ("outcome", "overloaded")];
    let before = app.metric("gateway_callbacks_total", &labels).await;
    let refused_id = format!("{account}:oLater:100");
    let others = async {
        // The holder is being answered: it has its place.
        asked.recv().await.expect("the holder asks for its reply");
        let callback = app
            .plain
            .plain_callback(&samples::text("oLater", 100, "hi"));
        let refused = app.post_text(&account, &callback).await;
        (
            refused,
            app.metric("gateway_callbacks_total", &labels).await,
        )
    };
    let ((status, _), ((refused_status, body), after)) =
        tokio::join!(app.post_text(&account, &held), others);
    assert_eq!(status, 200, "the holder is answered");
    assert_eq!((refused_status, body.as_str()), (503, "overloaded"));
    assert_eq!(after - before, 1.0, "the refusal is counted once");
    assert!(
        !app.stored()
            .await
            .iter()
            .any(|(_, id, _)| *id == refused_id),
        "a refused callback is not published"
    );

    // The holder is answered: its place is free and callbacks get in again.
    let callback = app
        .plain
        .plain_callback(&samples::text("oAfter", 1000, "hi"));
    let (status, _) = app.post_text(&account, &callback).await;
    assert_eq!(
        status, 200,
        "the bound frees with the callback that held it"
    );
}

/// A place is taken once the body is read: a signed callback whose body trickles in
/// (or never ends) waits on its own timer, not in one of the `MAX_IN_FLIGHT` places
/// real callbacks need.
#[tokio::test]
async fn a_body_still_arriving_holds_no_place_from_a_callback_that_came_whole() {
    let app = spawn_app_with(Options {
        extra: vec![("MAX_IN_FLIGHT", "1")],
        ..Options::default()
    })
    .await;
    let account = app.plain.id.clone();
    let address = app.base.trim_start_matches("http://").to_owned();
    let slow = app
        .plain
        .plain_callback(&samples::text("oSlow", 1, "hello"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&slow.query)
        .finish();
    let _slow =
        unfinished_request(&address, &format!("/wechat/{account}?{query}"), &slow.body).await;
    // Whenever the server reads the slow one, the whole one is never refused for it.
    for n in 0..20 {
        let callback = app
            .plain
            .plain_callback(&samples::text("oWhole", 10 + n, "hi"));
        let (status, body) = app.post_text(&account, &callback).await;
        assert_eq!((status, body.as_str()), (200, "success"), "callback {n}");
    }
}

/// A body may be read until `CALLBACK_DEADLINE`, but the replay check's budget (half
/// of `PUBLISH_DEADLINE`) counted from the request's arrival: a plaintext callback
/// whose body finished 2.5 s after its head met a ledger check already out of time,
/// was logged "signature ledger unavailable" and held to 503 `not_durable`.
#[tokio::test]
async fn a_body_finishing_past_half_the_publish_deadline_is_still_checked_and_accepted() {
    let app = spawn_app_with(Options::default()).await;
    let account = app.plain.id.clone();
    let address = app.base.trim_start_matches("http://").to_owned();
    let slow = app
        .plain
        .plain_callback(&samples::text("oSlowBody", 1, "hello"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&slow.query)
        .finish();
    let (most, last) = slow.body.split_at(slow.body.len() - 1);
    let failed_before = app.metric("gateway_replay_check_failed_total", &[]).await;
    let mut stream =
        unfinished_request(&address, &format!("/wechat/{account}?{query}"), most).await;
    // The slow body is the scenario: past half of PUBLISH_DEADLINE (4 s), within
    // CALLBACK_DEADLINE (5 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stream.write_all(last.as_bytes()).await.unwrap();
    assert_eq!(response_of(&mut stream).await, (200, "success".to_owned()));
    assert_eq!(
        app.metric("gateway_replay_check_failed_total", &[]).await,
        failed_before,
        "the ledger answered: no failed replay check"
    );
}

/// Sends a request head announcing one byte more body than `body`, then `body`: the
/// rest never comes.
async fn unfinished_request(address: &str, path_and_query: &str, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len() + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream
}

/// Reads one HTTP/1.1 response: its status and its body.
async fn response_of(stream: &mut TcpStream) -> (u16, String) {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, body[..length].to_owned());
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response: {text:?}");
        seen.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_body_that_never_comes_holds_no_place_past_the_deadline_and_an_unsigned_one_none() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("MAX_IN_FLIGHT", "1"),
            ("CALLBACK_DEADLINE", "1s"),
            ("PUBLISH_DEADLINE", "800ms"),
            ("REPLY_BUDGET", "500ms"),
        ],
        ..Options::default()
    })
    .await;
    let account = app.plain.id.clone();
    let address = app.base.trim_start_matches("http://").to_owned();

    // Not signed: refused on its query, without waiting for the body.
    let mut stranger = unfinished_request(
        &address,
        &format!(
            "/wechat/{account}?signature={}&timestamp={}&nonce=n1",
            "0".repeat(40),
            crate::helpers::now()
        ),
        "<xml>",
    )
    .await;
    assert_eq!(
        response_of(&mut stranger).await,
        (401, "bad_signature".to_owned())
    );

    // Signed, but its body never ends: given up at the callback deadline.
    let held = app
        .plain
        .plain_callback(&samples::text("oHolder", 1, "hello"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&held.query)
        .finish();
    let mut holder =
        unfinished_request(&address, &format!("/wechat/{account}?{query}"), &held.body).await;
    assert_eq!(
        response_of(&mut holder).await,
        (408, "body_timeout".to_owned())
    );

    // Its place is free again.
    let callback = app.plain.plain_callback(&samples::text("oAfter", 2, "hi"));
    assert_eq!(app.post_text(&account, &callback).await.0, 200);
    assert!(
        !app.stored()
            .await
            .iter()
            .any(|(_, id, _)| id.contains("oHolder")),
        "the unfinished callback is not published"
    );
}

/// `axum::serve` set no timer, so no header-read timeout: a connection sending its
/// request head a trickle at a time stayed open as long as the client liked.
#[tokio::test]
async fn a_connection_whose_request_head_never_completes_is_closed() {
    let app = spawn_app_with(Options {
        extra: vec![("HTTP_IDLE_TIMEOUT", "1s")],
        ..Options::default()
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(
        format!(
            "POST /wechat/{} HTTP/1.1\r\nHost: {address}\r\n",
            app.plain.id
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the connection is still open 5 s after a head that never completed"
    );
    // A callback that came whole is served as always.
    let callback = app.plain.plain_callback(&samples::text("oAfter", 3, "hi"));
    assert_eq!(app.post_text(&app.plain.id, &callback).await.0, 200);
}

/// The in-flight place is taken once the body is read, so the bodies being read are
/// bounded apart, in bytes (`MAX_IN_FLIGHT x MAX_BODY_BYTES`): connections trickling
/// large bodies under one captured signed query could otherwise buffer without bound.
#[tokio::test]
async fn bodies_being_read_past_the_byte_budget_are_refused_at_once_then_it_frees() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("MAX_IN_FLIGHT", "1"),
            ("MAX_BODY_BYTES", "4096"),
            ("CALLBACK_DEADLINE", "1s"),
            ("PUBLISH_DEADLINE", "800ms"),
            ("REPLY_BUDGET", "500ms"),
        ],
        ..Options::default()
    })
    .await;
    let account = app.plain.id.clone();
    let address = app.base.trim_start_matches("http://").to_owned();
    let held = app
        .plain
        .plain_callback(&samples::text("oHolder", 1, "hello"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&held.query)
        .finish();
    // Announces the whole budget (4 KiB) and sends a little of it.
    let mut holder = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /wechat/{account}?{query} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: text/xml\r\nContent-Length: 4096\r\n\r\n<xml>"
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    // Whenever the server has read the holder's head, a whole callback is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(900);
    let mut n = 0;
    loop {
        let callback = app
            .plain
            .plain_callback(&samples::text("oWhole", 10 + n, "hi"));
        let (status, body) = app.post_text(&account, &callback).await;
        if (status, body.as_str()) == (503, "overloaded") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused while 4 KiB of body were being read: {status} {body}"
        );
        n += 1;
    }
    // The holder is given up at the deadline, and its bytes are free again.
    assert_eq!(
        response_of(&mut holder).await,
        (408, "body_timeout".to_owned())
    );
    let callback = app.plain.plain_callback(&samples::text("oAfter", 2, "hi"));
    assert_eq!(app.post_text(&account, &callback).await.0, 200);
}

/// hyper-util's auto builder first reads the protocol version (HTTP/2 detection) with
/// no timer: a connection that sent nothing, or fewer bytes than the HTTP/2 preface,
/// stayed open for as long as the client liked.
#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = spawn_app_with(Options {
        extra: vec![("HTTP_IDLE_TIMEOUT", "1s")],
        ..Options::default()
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut few = TcpStream::connect(&address).await.unwrap();
    few.write_all(b"POST").await.unwrap();
    for (name, stream) in [("silent", &mut silent), ("4 bytes", &mut few)] {
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "{name}: the connection is still open 5 s later"
        );
    }
}

/// A callback waiting on a stalled JetStream does no work: it gives up its in-flight
/// place once its first publish attempt fails, so a stall does not fill
/// `MAX_IN_FLIGHT` and turn every callback past it into a 503 `overloaded`, which
/// WeChat does not redeliver. Each is held as `not_durable` instead, and retried.
#[tokio::test]
async fn callbacks_waiting_on_a_stalled_jetstream_leave_their_places_to_the_next() {
    let proxy = platform::testing::ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![
            ("MAX_IN_FLIGHT", "2"),
            ("CALLBACK_DEADLINE", "3s"),
            // One attempt lasts a quarter of it: 500 ms.
            ("PUBLISH_DEADLINE", "2s"),
            ("REPLY_BUDGET", "1s"),
        ],
        ..Options::default()
    })
    .await;
    let app = &app;
    let post = |n: u64| async move {
        // Safe mode: no replay check, the publish is what stalls.
        let callback = app
            .safe
            .encrypted_callback(&samples::text("oStalled", n, "停水了"));
        app.post_text(&app.safe.id, &callback).await
    };
    proxy.blackhole();
    let later = async {
        // Both places are taken by callbacks whose first attempt has failed.
        while app.metric("gateway_publish_retries_total", &[]).await < 2.0 {
            tokio::task::yield_now().await;
        }
        tokio::join!(post(3), post(4))
    };
    let (first, second, (third, fourth)) = tokio::join!(post(1), post(2), later);
    let not_durable = (503, "not_durable".to_owned());
    assert_eq!(
        [&first, &second],
        [&not_durable, &not_durable],
        "the first two"
    );
    assert_eq!(
        [&third, &fourth],
        [&not_durable, &not_durable],
        "callbacks that came while JetStream stalled are held for WeChat's retry, not refused"
    );
}

/// hyper reads a request head into a buffer of up to ~408 KiB by default, for as long
/// as `HTTP_IDLE_TIMEOUT` (75 s): many connections each trickling a long head held
/// that much apiece. A WeChat callback's head is a few hundred bytes.
#[tokio::test]
async fn a_connection_sending_a_head_far_longer_than_a_callbacks_is_closed() {
    let app = spawn_app_with(Options::default()).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut long = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /wechat/{}?nonce={} HTTP/1.1",
        app.plain.id,
        "a".repeat(20 * 1024)
    );
    // The server may close the connection before it has read everything.
    let _ = long.write_all(head.as_bytes()).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), long.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "a 20 KiB head line: the connection is still open 5 s later"
    );
    // A callback is served as always.
    let callback = app.plain.plain_callback(&samples::text("oAfter", 4, "hi"));
    assert_eq!(app.post_text(&app.plain.id, &callback).await.0, 200);
}

/// Past `MAX_CONNECTIONS` the listener stops accepting: a connection waits in the
/// kernel's queue, served once another closes, rather than each open connection
/// (with its task and its read buffer) being taken on without bound.
#[tokio::test]
async fn past_the_connection_cap_a_connection_waits_until_another_closes() {
    let app = spawn_app_with(Options {
        extra: vec![("MAX_CONNECTIONS", "2")],
        ..Options::default()
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let first_silent = TcpStream::connect(&address).await.unwrap();
    let _second_silent = TcpStream::connect(&address).await.unwrap();
    let callback = app.plain.plain_callback(&samples::text("oQueued", 5, "hi"));
    let post = app.post_text(&app.plain.id, &callback);
    tokio::pin!(post);
    // Not an assertion on time: served within this second means the cap let it in;
    // a slow machine can only make the check pass, never fail.
    tokio::select! {
        answered = &mut post => panic!("served while the cap was full: {answered:?}"),
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    drop(first_silent);
    let answered = tokio::time::timeout(Duration::from_secs(10), post).await;
    assert_eq!(
        answered.map(|(status, _)| status).ok(),
        Some(200),
        "served once a connection closed"
    );
}

/// `gateway_http_connections` counts a connection from its accept until its task
/// ends, however it ends: a connection whose task panicked (a bug in a handler, which
/// unwinds through the connection task) stayed counted for good, so the gauge drifted
/// up and a dashboard or alert on it read connections that were long gone. The
/// listener's own loop, on a router with a panicking route.
#[tokio::test]
async fn a_connection_whose_task_panics_is_no_longer_counted_open() {
    // The app installs the process's metrics recorder and serves /metrics.
    let app = spawn_app_with(Options::default()).await;
    let open = || app.metric("gateway_http_connections", &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    async fn bug() -> &'static str {
        panic!("a handler's bug (expected by this test)")
    }
    let router = axum::Router::new().route("/bug", axum::routing::get(bug));
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    tokio::spawn(gateway::http::serve(
        listener,
        router,
        stop,
        Duration::from_secs(75),
        Duration::from_secs(1),
        4,
    ));
    let before = open().await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /bug HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    // The panic drops the connection: no answer, the socket closes.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The gauge is given back as the task unwinds, maybe just after the socket
    // closes: waited for, bounded.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut now_open = open().await;
    while now_open != before && tokio::time::Instant::now() < until {
        tokio::task::yield_now().await;
        now_open = open().await;
    }
    assert_eq!(
        now_open, before,
        "the connection whose task panicked is still counted open"
    );
}
