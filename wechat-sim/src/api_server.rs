//! The mock WeChat API server.
//!
//! It serves every endpoint the `wechat` crate's client calls, with WeChat's rules:
//! tokens that expire and are superseded (the old one keeps working for a grace period,
//! then 40001), the AppSecret check, the 48-hour customer-service window and its
//! 20-message cap, mass-send quotas, menu validation, drafts and publish jobs that
//! complete. Every API call is recorded for `GET /sim/calls`, and faults can be injected
//! through `POST /sim/faults`.
//!
//! In-process use (tests of other crates):
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use wechat_sim::api_server::{MockWechat, SimConfig};
//!
//! let mock = MockWechat::start(SimConfig::default()).await?;
//! let base_url = mock.base_url(); // e.g. "http://127.0.0.1:41234"
//! mock.state().record_interaction("wxdemo0000000001", "openid-1", chrono::Utc::now()).ok();
//! # let _ = base_url; Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod http;
pub mod job_callbacks;
mod media;
mod ops;
mod ops_publish;
mod state;

pub use http::router;
pub use job_callbacks::MassJobEnd;
pub use state::{
    AccountKind, DEMO_APPID, DEMO_SECRET, FaultRequest, RecordedCall, SimAccount, SimConfig,
    SimError, SimState, WxErr,
};

/// Serves the mock on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: SimState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A mock WeChat running in this process on a loopback port; it stops when dropped.
#[derive(Debug)]
pub struct MockWechat {
    addr: SocketAddr,
    base_url: String,
    state: SimState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl MockWechat {
    /// Starts a mock with `config` on `127.0.0.1:0`.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_with_state(SimState::new(config)).await
    }

    /// Starts a mock over an existing state on `127.0.0.1:0`, so a traffic generator
    /// holding the same [`SimState`] opens customer-service windows in it.
    pub async fn start_with_state(state: SimState) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        tracing::info!(%addr, "mock wechat api listening");
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            task,
        })
    }

    /// Returns the base URL to give the API client (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the simulated WeChat's state.
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

impl Drop for MockWechat {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
