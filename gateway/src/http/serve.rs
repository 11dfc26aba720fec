//! The callback listener's server loop: axum's router on hyper-util's connection
//! builder (HTTP/1 only), because `axum::serve` sets no timer and so no header-read timeout: a
//! client could open connections and send their headers a byte at a time for as long
//! as it liked, each holding a socket and a task.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The most a connection's read buffer holds, so the longest request head: a WeChat
/// callback's is a few hundred bytes (a query of ~250 with both signatures, a few
/// headers), and proxies add a few more. hyper's default, ~408 KiB, let every
/// connection trickling a head hold that much until `HTTP_IDLE_TIMEOUT`; past this,
/// hyper answers 431 and closes. hyper panics below its minimum, 8 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const _: () = assert!(MAX_HEAD_BYTES >= 8 * 1024);

/// Serves `router` on `listener` until `stop`; then stops accepting, lets every open
/// connection finish its request in flight (`graceful_shutdown`) and returns once all
/// have closed, each given at most `shutdown_wait` (the drain's deadline bounds the
/// whole wait).
///
/// A connection whose next request head is not complete within `header_read_timeout`
/// of its opening or its last answer is closed (`HTTP_IDLE_TIMEOUT`). TCP_NODELAY is set on every connection: a passive reply of a few hundred
/// bytes must not wait for WeChat's delayed ACK (Nagle's algorithm), about 40 ms.
///
/// At most `max_connections` are open at once (`MAX_CONNECTIONS`); at the cap the loop
/// stops accepting until one closes, and new connections wait in the kernel's listen
/// queue rather than being accepted and closed: a connection closed on arrival is a
/// callback lost (WeChat does not say it retries one), and a flood would cost an
/// accept and a close each, while a queued one is served as soon as a place frees,
/// within its client's connect timeout.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    header_read_timeout: Duration,
    shutdown_wait: Duration,
    max_connections: usize,
) -> Result<(), Infallible> {
    // HTTP/1 only: the auto builder otherwise first reads the protocol version (HTTP/2
    // detection) with no timer, so a connection that sent nothing, or a few bytes of
    // a head, was held for good, and an HTTP/2 one had no header timeout at all.
    // WeChat and the proxies in front speak HTTP/1.1 to us.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connections = TaskTracker::new();
    let open = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // Made at the first connection (as before, not exported until then), then cloned
    // into each: `gauge!` looked the series up twice per connection.
    let mut counted: Option<metrics::Gauge> = None;
    loop {
        let slot = match open.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!("gateway_http_connections_capped_total").increment(1);
                tokio::select! {
                    slot = open.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        // Never closed.
                        Err(_) => break,
                    },
                    () = stop.cancelled() => break,
                }
            }
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of file descriptors or memory: pause rather than spin. An
                    // error of one connection (aborted, reset by its client) is no
                    // reason to stop accepting the others.
                    tracing::warn!(%error, "accept failed");
                    if is_resource_error(&error) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
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
        let gauge = counted
            .get_or_insert_with(|| metrics::gauge!("gateway_http_connections"))
            .clone();
        let open = OpenConnection::counted(slot, gauge);
        connections.spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    // The request in flight finishes within its callback deadline; a
                    // head still arriving must not hold the drain until hyper's
                    // header timer (HTTP_IDLE_TIMEOUT) fires.
                    let _ = tokio::time::timeout(shutdown_wait, connection).await;
                }
            }
            // Here, or while a panic unwinds the task: moved in so that it lives as
            // long as the connection.
            drop(open);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A connection counted in `gateway_http_connections` and holding its place under
/// `MAX_CONNECTIONS`, both given back when it is dropped: however its task ends. A
/// handler's panic unwinds through the connection's task, and a decrement written at
/// the task's end was skipped, so the gauge counted that connection open for good.
struct OpenConnection {
    _slot: OwnedSemaphorePermit,
    /// `gateway_http_connections`.
    gauge: metrics::Gauge,
}

impl OpenConnection {
    fn counted(slot: OwnedSemaphorePermit, gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self { _slot: slot, gauge }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// Whether an `accept` error says the process is short of a resource (descriptors,
/// memory), which a retry at once would only meet again.
fn is_resource_error(error: &std::io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOMEM: i32 = 12;
    const ENOBUFS: i32 = 105;
    matches!(
        error.raw_os_error(),
        Some(EMFILE | ENFILE | ENOMEM | ENOBUFS)
    ) || error.kind() == std::io::ErrorKind::OutOfMemory
}
