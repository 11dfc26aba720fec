//! Wiring: NATS, the stream and reply bucket, the copy of the reply rules, both
//! listeners, and the ordered drain.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use async_nats::jetstream;
use platform::admin::{self, Readiness};
use platform::nats::{self, WECHAT_INBOUND, WECHAT_MISSED_REPLIES};
use platform::service::bind;
use platform::shutdown::DrainRunner;
use platform::{Drain, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::batch::NatsBatcher;
use crate::config::Config;
use crate::edge::EdgeRules;
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
    edge: Option<Arc<EdgeRules>>,
}

impl Application {
    /// Connects to NATS, provisions `WECHAT_INBOUND` and the reply bucket, and binds
    /// the callback and admin ports (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Installed first, so the counters registered at 0 below and the rules
        // loaded while building are not recorded into nothing.
        telemetry::metrics_handle();
        if config.demo {
            tracing::warn!(
                account = crate::config::DEMO_ACCOUNT.id,
                "WECHAT_ACCOUNTS is unset: serving the built-in demo account only"
            );
        }
        if let Some(needed) = config.duplicate_window_shortfall() {
            // Platform's setting: a replay (or WeChat's retry) later than the window
            // but within TIMESTAMP_WINDOW is stored again; consumers' processed_events
            // stop its effects, not the second copy. Info, not a warning: the default
            // (2 min) is a deliberate trade-off (nats-server keeps every id of the
            // window in memory, minutes of a mass send's answers), and a warning at
            // every start would teach operators to ignore warnings.
            tracing::info!(
                window = ?config.nats.streams.inbound_duplicate_window,
                ?needed,
                "WECHAT_INBOUND_DUPLICATE_WINDOW is shorter than the accepted timestamp span"
            );
        }
        let readiness = Readiness::new();
        let client = nats::connect(&config.nats, NAME).await?;
        readiness.watch_nats(client.clone());
        let max_payload = client.server_info().max_payload;
        let envelope = crate::config::EVENT_ENVELOPE_BYTES;
        if max_payload < config.limits.max_body_bytes.saturating_add(envelope) {
            // MAX_BODY_BYTES is capped for the default max_payload (1 MiB); a server
            // set lower refuses the largest callbacks the body limit lets in, and
            // each is answered 413 `event_too_large` (never storable, so not held).
            tracing::warn!(
                max_payload,
                max_body_bytes = config.limits.max_body_bytes,
                "the NATS server's max_payload is below MAX_BODY_BYTES plus 64 KiB: \
                 callbacks whose event exceeds it are refused 413 event_too_large"
            );
        }
        let jetstream = jetstream::new(client.clone());
        let namespace = config.nats.namespace.clone();
        nats::provision_with(
            &jetstream,
            &namespace,
            &[WECHAT_INBOUND, WECHAT_MISSED_REPLIES],
            &config.nats.streams,
        )
        .await?;
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
        let reply_bucket = namespace.name(crate::reply::REPLY_BUCKET);
        nats::replicate_bucket(&jetstream, &reply_bucket, config.nats.streams.replicas).await?;
        let signatures = crate::replay::SignatureLedger::open(
            &jetstream,
            &namespace,
            config.limits.timestamp_window,
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let signature_bucket = namespace.name(crate::replay::SIGNATURE_BUCKET);
        nats::replicate_bucket(&jetstream, &signature_bucket, config.nats.streams.replicas).await?;
        let edge = if config.edge_rules {
            // Subscribed before the first load, so no change falls between the two.
            let notices = client
                .subscribe(namespace.subject(reply_rules::CHANGED_WILDCARD))
                .await?;
            client.flush().await?;
            let edge = Arc::new(EdgeRules::new(client.clone(), namespace.clone()));
            let accounts = config.accounts.iter().map(|a| a.id.to_string()).collect();
            drain.spawn(crate::edge::run(
                edge.clone(),
                accounts,
                notices,
                config.edge_rules_refresh,
                drain.clone(),
            ));
            Some(edge)
        } else {
            None
        };
        let state = AppState::new(
            config.accounts.clone(),
            config.limits,
            namespace.clone(),
            Publisher::new(batcher.clone(), config.limits.publish_deadline),
            Replier::new(
                batcher,
                namespace,
                cache,
                config.limits.no_responder_pause,
                edge.clone(),
            ),
            signatures,
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
            edge,
        })
    }

    /// The copy of the reply rules this gateway answers from (`None`: `EDGE_RULES=false`).
    pub fn edge_rules(&self) -> Option<Arc<EdgeRules>> {
        self.edge.clone()
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

    /// Serves until `shutdown` resolves, then drains with platform's runner: fail
    /// readiness, stop accepting and finish in-flight callbacks, finish reply-cache
    /// writes, flush NATS, stop the admin port; all within `SHUTDOWN_GRACE`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_admin = CancellationToken::new();
        let admin_router = admin::router(telemetry::metrics_handle(), self.readiness.clone());
        let admin = axum::serve(self.admin_listener, admin_router)
            .with_graceful_shutdown(stop_admin.clone().cancelled_owned());
        let stop_http = CancellationToken::new();
        let server = http::serve(
            self.http_listener,
            http::router(self.state),
            stop_http.clone(),
            self.config.limits.http_idle_timeout,
            // A callback begun before the stop is answered within its deadline.
            self.config.limits.callback_deadline,
            self.config.limits.max_connections,
        );
        let runner = DrainRunner::new(NAME, self.config.common.shutdown_grace, self.drain)
            .readiness(self.readiness)
            .nats(self.nats)
            .server("http", stop_http, server)
            .admin(stop_admin, admin.into_future());
        tracing::info!(
            service = NAME,
            accounts = self.config.accounts.len(),
            "gateway ready"
        );
        runner.run_until(shutdown).await;
        Ok(())
    }
}
