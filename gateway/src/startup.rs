//! Wiring: NATS, the stream and reply bucket, both listeners, and the ordered drain.

use std::future::Future;

use async_nats::jetstream;
use platform::admin::{self, Readiness};
use platform::nats::{self, WECHAT_INBOUND};
use platform::service::bind;
use platform::{Drain, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::batch::NatsBatcher;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::publish::Publisher;
use crate::reply::{Replier, ReplyCache};

/// The NATS client name and the `service` log field.
pub const NAME: &str = "gateway";

/// A built gateway: connected, provisioned and bound, not yet serving.
pub struct Application {
    config: Config,
    nats: async_nats::Client,
    state: AppState,
    readiness: Readiness,
    drain: Drain,
    http_listener: TcpListener,
    admin_listener: TcpListener,
}

impl Application {
    /// Connects to NATS, provisions `WECHAT_INBOUND` and the reply bucket, and binds
    /// the callback and admin ports (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.demo {
            tracing::warn!(
                account = crate::config::DEMO_ACCOUNT.id,
                "WECHAT_ACCOUNTS is unset: serving the built-in demo account only"
            );
        }
        let readiness = Readiness::new();
        let client = nats::connect(&config.nats, NAME).await?;
        readiness.watch_nats(client.clone());
        let jetstream = jetstream::new(client.clone());
        let namespace = config.nats.namespace.clone();
        nats::provision_streams(&jetstream, &namespace, &[WECHAT_INBOUND]).await?;
        let drain = Drain::new();
        let batcher = NatsBatcher::new(jetstream.clone());
        let cache = ReplyCache::open(
            &jetstream,
            &namespace,
            config.reply_cache_capacity,
            batcher.clone(),
            drain.clone(),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let state = AppState::new(
            config.accounts.clone(),
            config.limits,
            namespace.clone(),
            Publisher::new(batcher.clone(), config.limits.publish_deadline),
            Replier::new(batcher, namespace, cache, config.limits.no_responder_pause),
        );
        let http_listener = bind(config.http_addr).await?;
        let admin_listener = bind(config.common.admin_addr).await?;
        Ok(Self {
            config,
            nats: client,
            state,
            readiness,
            drain,
            http_listener,
            admin_listener,
        })
    }

    /// The bound callback port.
    pub fn port(&self) -> u16 {
        self.http_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// The bound admin port (`/metrics`, `/healthz`, `/readyz`).
    pub fn admin_port(&self) -> u16 {
        self.admin_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains: fail readiness, stop accepting
    /// and finish in-flight callbacks, finish reply-cache writes, flush NATS, stop the
    /// admin port; all within `SHUTDOWN_GRACE`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_admin = CancellationToken::new();
        let admin_router = admin::router(telemetry::metrics_handle(), self.readiness.clone());
        let admin = axum::serve(self.admin_listener, admin_router)
            .with_graceful_shutdown(stop_admin.clone().cancelled_owned());
        let admin_task = tokio::spawn(async move { admin.await });

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let readiness = self.readiness.clone();
        let drain = self.drain.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!(service = NAME, "draining");
            readiness.set_draining();
            drain.begin();
            let _ = stopping_tx.send(());
        };
        let server = axum::serve(self.http_listener, http::router(self.state))
            .with_graceful_shutdown(signal);
        tracing::info!(
            service = NAME,
            accounts = self.config.accounts.len(),
            "gateway ready"
        );
        let serve_task = tokio::spawn(async move { server.await });

        // The grace period starts when shutdown is asked for, not when serving starts.
        let served = async {
            match serve_task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "http server failed"),
                Err(error) => tracing::error!(%error, "http server task failed"),
            }
        };
        tokio::pin!(served);
        let grace = self.config.common.shutdown_grace;
        tokio::select! {
            () = &mut served => {}
            _ = stopping_rx => {
                let drained = tokio::time::timeout(grace, async {
                    (&mut served).await;
                    self.drain.wait(grace).await
                })
                .await;
                if !matches!(drained, Ok(true)) {
                    tracing::warn!(service = NAME, "drain deadline passed; exiting with work unfinished");
                }
            }
        }
        if let Err(error) = self.nats.flush().await {
            tracing::warn!(%error, "nats flush failed");
        }
        stop_admin.cancel();
        let _ = admin_task.await;
        tracing::info!(service = NAME, "stopped");
        Ok(())
    }
}
