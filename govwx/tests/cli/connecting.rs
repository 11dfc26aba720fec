//! How `govwx` connects: a server that accepts and never answers, and a key about to
//! cross the network in clear. No service is needed, only the binary.

use std::process::Stdio;

use tokio::net::TcpListener;

/// `govwx ARGS` with a key and nothing else from the caller's environment.
async fn govwx(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_govwx"))
        .env_clear()
        .env("GOVWX_API_KEY", "dev-admin-key-0001")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("govwx runs")
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_fails_the_call_with_deadline_exceeded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepts every connection and holds it open, reading and writing nothing.
    let stalls = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let output = govwx(&[
        "--interaction-addr",
        &addr,
        "--timeout",
        "1",
        "tickets",
        "list",
    ])
    .await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "govwx: DEADLINE_EXCEEDED from interaction-svc at http://{addr}: no answer within \
             1s (--timeout)"
        )
    );

    stalls.abort();
}

/// A publish cut by `--timeout` may go on at the server, which is still sending
/// to WeChat: govwx says so and where to look before publishing again.
#[tokio::test]
async fn a_publish_without_an_answer_says_it_may_still_be_under_way() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stalls = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let output = govwx(&[
        "--content-addr",
        &addr,
        "--timeout",
        "1",
        "articles",
        "publish",
        "42",
    ])
    .await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "govwx: DEADLINE_EXCEEDED from content-svc at http://{addr}: no answer within 1s \
             (--timeout)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("may still be sending") && stderr.contains("`govwx articles show 42`"),
        "{stderr}"
    );

    stalls.abort();
}

#[tokio::test]
async fn plaintext_to_another_machine_warns_that_the_key_goes_in_clear() {
    // Nothing listens there: the call fails at once (exit 69) after the warning,
    // which comes before any connection. 0.0.0.0 reaches this machine on Linux but is
    // no loopback address, so it stands for a remote server without a network.
    let port = platform::testing::free_port().to_string();
    let remote = format!("0.0.0.0:{port}");
    let output = govwx(&["--interaction-addr", &remote, "tickets", "list"]).await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    let mut lines = stderr.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "govwx: warning: http://{remote} is not on this machine and the connection is \
                 not TLS: the API key goes in clear (use --tls or --ca-file; --plaintext if \
                 this is intended)"
            )
            .as_str()
        ),
        "{stderr}"
    );
    assert!(
        lines.next().unwrap().starts_with("govwx: cannot reach"),
        "{stderr}"
    );

    // Said to be intended: no warning.
    let output = govwx(&[
        "--interaction-addr",
        &remote,
        "--plaintext",
        "tickets",
        "list",
    ])
    .await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("warning"), "{stderr}");

    // This machine: no warning either.
    let local = format!("127.0.0.1:{port}");
    let output = govwx(&["--interaction-addr", &local, "tickets", "list"]).await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(output.status.code(), Some(69), "{stderr}");
}

/// Answers every call with its headers at once and then a body that never comes,
/// as a proxy that stalls after passing the headers on.
#[derive(Clone)]
struct HeadersThenStall;

impl tonic::server::NamedService for HeadersThenStall {
    const NAME: &'static str = proto::interaction::v1::interaction_service_server::SERVICE_NAME;
}

impl tower::Service<http::Request<tonic::body::Body>> for HeadersThenStall {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::new(StalledBody))
            .expect("a response");
        std::future::ready(Ok(response))
    }
}

struct StalledBody;

impl http_body::Body for StalledBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_server_that_sends_the_headers_and_stalls_the_body_fails_the_call_at_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HeadersThenStall)
            .serve_with_incoming(incoming),
    );

    // Bounded only so that a hang fails the test instead of stalling the run.
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        govwx(&[
            "--interaction-addr",
            &addr,
            "--timeout",
            "1",
            "tickets",
            "list",
        ]),
    )
    .await
    .expect("govwx ends at its --timeout, not hangs on the stalled body");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "govwx: DEADLINE_EXCEEDED from interaction-svc at http://{addr}: no answer within \
             1s (--timeout)"
        )
    );

    server.abort();
}
