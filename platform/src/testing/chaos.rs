//! [`ChaosProxy`]: a TCP proxy on loopback that tests put between a service and
//! NATS or PostgreSQL, to make the server vanish, stall or drop a connection
//! half-way through a message, without touching the shared servers themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Open,
    /// Closes new connections as soon as they are accepted: the server is down.
    Cut,
    /// Accepts and holds every connection but forwards nothing: a partition, where
    /// the peer sees no error, only silence.
    Blackhole,
}

/// A TCP proxy on `127.0.0.1:0` in front of one server (NATS, PostgreSQL, anything
/// over TCP). Point the code under test at [`ChaosProxy::url`], then [`cut`],
/// [`blackhole`] or [`cut_after`] the link and [`restore`] it. Dropping the proxy
/// closes the listener and every connection.
///
/// [`cut`]: ChaosProxy::cut
/// [`blackhole`]: ChaosProxy::blackhole
/// [`cut_after`]: ChaosProxy::cut_after
/// [`restore`]: ChaosProxy::restore
pub struct ChaosProxy {
    addr: SocketAddr,
    url: String,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: String,
    mode: watch::Sender<Mode>,
    /// Cancelled by a cut; replaced by a fresh token for the connections that follow.
    generation: std::sync::Mutex<CancellationToken>,
    /// Bytes still allowed towards the server before a cut; `u64::MAX` means no limit.
    budget: AtomicU64,
    open: AtomicUsize,
    accepted: AtomicUsize,
    closed: CancellationToken,
}

impl ChaosProxy {
    /// Starts a proxy in front of `upstream`, given as a URL (`nats://host:port`,
    /// `postgres://user@host:port/db`) or as `host:port`.
    ///
    /// # Panics
    /// When loopback cannot be bound or `upstream` names no host and port.
    pub async fn start(upstream: &str) -> Self {
        let (prefix, authority, suffix) = split_url(upstream);
        assert!(
            !authority.is_empty(),
            "ChaosProxy needs host:port in {upstream:?}"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the chaos proxy");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            upstream: authority.to_owned(),
            mode: watch::channel(Mode::Open).0,
            generation: std::sync::Mutex::new(CancellationToken::new()),
            budget: AtomicU64::new(u64::MAX),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            closed: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        Self {
            addr,
            url: format!("{prefix}{addr}{suffix}"),
            shared,
        }
    }

    /// `upstream` with the proxy's address in place of the server's: credentials,
    /// scheme and database name are kept.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The proxy's loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every open connection and closes new ones on arrival, as a crashed
    /// server would, until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.shared.cut();
    }

    /// Stops forwarding in both directions without closing anything, and holds new
    /// connections unanswered: the peer sees a partition (only timeouts tell it),
    /// until [`restore`](Self::restore) lets the held bytes through.
    pub fn blackhole(&self) {
        self.shared.mode.send_replace(Mode::Blackhole);
    }

    /// Lets the next `bytes` bytes through towards the server, then cuts as
    /// [`cut`](Self::cut) does: with a budget smaller than a message, the server
    /// receives half of it (a query or a PUB cut mid-flight).
    pub fn cut_after(&self, bytes: u64) {
        self.shared.budget.store(bytes, Ordering::SeqCst);
        if bytes == 0 {
            self.shared.cut();
        }
    }

    /// Forwards again, for held connections and new ones. Connections closed by a
    /// cut stay closed; clients reconnect.
    pub fn restore(&self) {
        self.shared.budget.store(u64::MAX, Ordering::SeqCst);
        self.shared.mode.send_replace(Mode::Open);
    }

    /// Connections being forwarded (or held) right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start, including those closed on arrival:
    /// grows when a client reconnects.
    pub fn accepted_connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.closed.cancel();
        self.shared.cut();
    }
}

impl Shared {
    fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        generation.cancel();
        *generation = CancellationToken::new();
    }

    fn current_generation(&self) -> CancellationToken {
        self.generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes up to `wanted` bytes from the budget; true in the second place when
    /// the budget is now spent and the link must be cut after writing them.
    fn take_budget(&self, wanted: usize) -> (usize, bool) {
        let wanted = wanted as u64;
        let mut spent = false;
        let previous = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                if left == u64::MAX {
                    return None;
                }
                spent = left <= wanted;
                Some(left.saturating_sub(wanted))
            });
        match previous {
            Err(_) => (wanted as usize, false),
            Ok(left) => (left.min(wanted) as usize, spent),
        }
    }

    /// Waits while the link is blackholed; false if it was cut meanwhile.
    async fn wait_open(&self) -> bool {
        let mut mode = self.mode.subscribe();
        match mode.wait_for(|mode| *mode != Mode::Blackhole).await {
            Ok(mode) => *mode == Mode::Open,
            Err(_) => false,
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.closed.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((inbound, _)) = accepted else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if *shared.mode.borrow() == Mode::Cut {
            drop(inbound);
            continue;
        }
        let generation = shared.current_generation();
        tokio::spawn(proxy_connection(inbound, shared.clone(), generation));
    }
}

async fn proxy_connection(inbound: TcpStream, shared: Arc<Shared>, generation: CancellationToken) {
    shared.open.fetch_add(1, Ordering::SeqCst);
    let link = async {
        // A blackholed proxy holds a new connection before reaching the server, as
        // a SYN lost in a partition would leave it.
        if !shared.wait_open().await {
            return;
        }
        let Ok(outbound) = TcpStream::connect(&shared.upstream).await else {
            return;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (client_read, client_write) = inbound.into_split();
        let (server_read, server_write) = outbound.into_split();
        tokio::join!(
            pump(client_read, server_write, &shared, true),
            pump(server_read, client_write, &shared, false),
        );
    };
    // Dropping the halves closes both sockets, which is what a cut means.
    tokio::select! {
        () = link => {}
        () = generation.cancelled() => {}
    }
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

/// Copies one direction until end of stream, an error, or a spent budget.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: &Shared, to_server: bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(read) => read,
        };
        if !shared.wait_open().await {
            return;
        }
        let (allowed, spent) = if to_server {
            shared.take_budget(read)
        } else {
            (read, false)
        };
        if to.write_all(&buffer[..allowed]).await.is_err() {
            return;
        }
        if spent {
            let _ = to.flush().await;
            shared.cut();
            return;
        }
    }
}

/// Splits `scheme://user@host:port/rest` into (`scheme://user@`, `host:port`,
/// `/rest`); a bare `host:port` has empty ends.
fn split_url(url: &str) -> (&str, &str, &str) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let authority_start = url[after_scheme..]
        .find(['/', '?'])
        .map_or(url.len(), |at| after_scheme + at);
    let host_start = url[after_scheme..authority_start]
        .rfind('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    (
        &url[..host_start],
        &url[host_start..authority_start],
        &url[authority_start..],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_everything_but_the_address() {
        assert_eq!(
            split_url("postgres://postgres@127.0.0.1:5432/db?sslmode=disable"),
            (
                "postgres://postgres@",
                "127.0.0.1:5432",
                "/db?sslmode=disable"
            )
        );
        assert_eq!(
            split_url("nats://127.0.0.1:4222"),
            ("nats://", "127.0.0.1:4222", "")
        );
        assert_eq!(split_url("localhost:4222"), ("", "localhost:4222", ""));
        assert_eq!(
            split_url("postgres://u:p@ss@h:1/d"),
            ("postgres://u:p@ss@", "h:1", "/d")
        );
    }

    #[test]
    fn the_budget_lets_through_exactly_what_is_left() {
        let shared = Shared {
            upstream: String::new(),
            mode: watch::channel(Mode::Open).0,
            generation: std::sync::Mutex::new(CancellationToken::new()),
            budget: AtomicU64::new(u64::MAX),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            closed: CancellationToken::new(),
        };
        assert_eq!(shared.take_budget(100), (100, false));
        shared.budget.store(10, Ordering::SeqCst);
        assert_eq!(shared.take_budget(4), (4, false));
        assert_eq!(shared.take_budget(100), (6, true));
    }
}
