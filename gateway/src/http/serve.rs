//! The callback listener's server loop: axum's router on hyper-util's connection
//! builder, because `axum::serve` sets no timer and so no header-read timeout: a
//! client could open connections and send their headers a byte at a time for as long
//! as it liked, each holding a socket and a task.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves `router` on `listener` until `stop`; then stops accepting, lets every open
/// connection finish its request in flight (`graceful_shutdown`) and returns once all
/// have closed (the drain's deadline bounds the wait).
///
/// A connection whose next request head is not complete within `header_read_timeout`
/// of its opening or its last answer is closed (`HTTP_IDLE_TIMEOUT`). TCP_NODELAY is set on every connection: a passive reply of a few hundred
/// bytes must not wait for WeChat's delayed ACK (Nagle's algorithm), about 40 ms.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    header_read_timeout: Duration,
) -> Result<(), Infallible> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "TCP_NODELAY not set");
        }
        let builder = builder.clone();
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}
