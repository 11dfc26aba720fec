//! `WatchQueue` against a client that stops reading: a raw HTTP/2 connection whose
//! flow-control window is never reopened, as a stalled or hostile client leaves it.
//! Such watchers must neither hold database connections (the rest of the service
//! keeps answering) nor memory beyond a bounded buffer, and are ended with a clear
//! status; a key holds a bounded number of watches.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use proto::interaction::v1::{ListTicketsRequest, WatchQueueRequest};
use tonic::Code;

use crate::helpers::{ADMIN_KEY, SOCIAL_AGENT_KEY, spawn_app_with};
use crate::queue::{announce_opened, next, watch};

const STALLED: usize = 12;

/// Starts a `WatchQueue` on `client`; returns its response (headers) and body.
async fn raw_watch(
    client: &mut h2::client::SendRequest<Bytes>,
    key: &str,
) -> (http::response::Parts, h2::RecvStream) {
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/interaction.v1.InteractionService/WatchQueue")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .unwrap();
    client.clone().ready().await.expect("connection ready");
    let (response, mut send) = client.send_request(request, false).expect("stream opens");
    let message = WatchQueueRequest::default().encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    send.send_data(Bytes::from(frame), true)
        .expect("request sent");
    let (parts, body) = response.await.expect("response headers").into_parts();
    (parts, body)
}

/// The gRPC status a response ends with: in its headers (trailers-only), or in its
/// trailers after the body has been read (and its window reopened).
async fn final_status(parts: &http::response::Parts, mut body: h2::RecvStream) -> (String, String) {
    let pick = |headers: &http::HeaderMap| {
        headers.get("grpc-status").map(|code| {
            let message = headers
                .get("grpc-message")
                .map(|m| m.to_str().unwrap_or_default().replace("%20", " "))
                .unwrap_or_default();
            (code.to_str().unwrap().to_owned(), message)
        })
    };
    if let Some(status) = pick(&parts.headers) {
        return status;
    }
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body readable");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body
        .trailers()
        .await
        .expect("trailers readable")
        .expect("trailers");
    pick(&trailers).expect("grpc-status in the trailers")
}

#[tokio::test]
async fn watchers_that_stop_reading_hold_no_connection_and_are_ended_with_a_clear_status() {
    let app = spawn_app_with(&[
        ("DATABASE_MAX_CONNECTIONS", "4"),
        ("WATCH_BUFFER", "4"),
        ("WATCH_STREAMS_PER_KEY", "12"),
    ])
    .await;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", app.grpc_port))
        .await
        .unwrap();
    // A window of 256 bytes that is never reopened: about one event gets through.
    let (mut h2_client, connection) = h2::client::Builder::new()
        .initial_window_size(256)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("http/2 handshake");
    tokio::spawn(connection);
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let (parts, body) = raw_watch(&mut h2_client, ADMIN_KEY).await;
        assert_eq!(parts.status, 200);
        assert!(parts.headers.get("grpc-status").is_none(), "{parts:?}");
        stalled.push((parts, body));
    }

    // The key's limit: one watch more is refused, not queued.
    let (parts, body) = raw_watch(&mut h2_client, ADMIN_KEY).await;
    let (code, message) = tokio::time::timeout(Duration::from_secs(10), final_status(&parts, body))
        .await
        .expect("a watch over the key's limit is refused at once");
    assert_eq!(
        code,
        (Code::ResourceExhausted as i32).to_string(),
        "{message}"
    );
    assert!(message.contains("queue watches"), "{message}");

    // Citizens keep writing: a burst of new tickets, seen by a watcher that reads.
    let mut reader = watch(&app, SOCIAL_AGENT_KEY, "").await;
    let burst = 30;
    for _ in 0..burst {
        let id = app.insert_ticket("social-security", "open", 0).await;
        announce_opened(&app, id, "social-security").await;
    }
    for _ in 0..burst {
        next(&mut reader).await;
    }

    // The service still answers: no connection is held by a stalled watcher.
    let listed = app
        .client(Some(ADMIN_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("the service answers while watchers are stalled")
        .into_inner();
    assert_eq!(listed.tickets.len(), burst);

    // A stalled watcher that reads again finds its buffered events and then the
    // reason its watch was ended.
    let (parts, body) = stalled.pop().unwrap();
    let (code, message) = tokio::time::timeout(Duration::from_secs(10), final_status(&parts, body))
        .await
        .expect("a stalled watch is ended, not kept open");
    assert_eq!(
        code,
        (Code::ResourceExhausted as i32).to_string(),
        "{message}"
    );
    assert!(message.contains("unread"), "{message}");
}
