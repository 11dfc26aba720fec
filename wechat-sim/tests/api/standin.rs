//! A stand-in gateway on port 0 that records what it receives and can stall.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::routing::post;
use bytes::Bytes;

/// What the stand-in received: (query, body) per request, in order.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<(String, Bytes)>>>);

impl Received {
    pub fn all(&self) -> Vec<(String, Bytes)> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct StandIn {
    received: Received,
    /// Requests that stall before answering (the first `n`).
    stall_first: usize,
    stall_for: Duration,
}

async fn callback(
    State(s): State<StandIn>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> &'static str {
    let n = {
        let mut all = s.received.0.lock().unwrap();
        all.push((query.unwrap_or_default(), body));
        all.len()
    };
    if n <= s.stall_first {
        tokio::time::sleep(s.stall_for).await;
    }
    "success"
}

/// Starts a stand-in answering `success` on `POST /wechat/{account}`; the first
/// `stall_first` requests are held for `stall_for` first. Returns its base URL.
pub async fn spawn_standin(stall_first: usize, stall_for: Duration) -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/wechat/{account}", post(callback))
        .with_state(StandIn {
            received: received.clone(),
            stall_first,
            stall_for,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}
