//! The runtime every gRPC service shares: it connects, provisions the streams the
//! service uses, migrates and binds in [`ServiceRuntime::start`], then serves gRPC (with health and
//! reflection) and the admin port until shutdown, and drains in order.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::admin::{self, Readiness};
use std::sync::Arc;

use crate::config::{CommonConfig, ConfigError, Env};
use crate::consumer::{EventHandler, supervise_consumer};
use crate::db::{self, DbConfig, DbError};
use crate::grpc::{ApiKeys, AuthInterceptor};
use crate::nats::{self, Namespace, NatsConfig, NatsError, StreamSpec};
use crate::outbox::{OutboxSignal, Relay};
use crate::shutdown::{Drain, DrainRunner};
use crate::telemetry;

/// A service's fixed identity and default ports (documented in the README).
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    pub name: &'static str,
    pub database: &'static str,
    pub grpc_port: u16,
    pub admin_port: u16,
}

/// The settings every gRPC service reads.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub common: CommonConfig,
    /// `GRPC_ADDR`: the gRPC listener.
    pub grpc_addr: SocketAddr,
    pub nats: NatsConfig,
    pub db: DbConfig,
    /// `API_KEYS` / `API_KEYS_FILE`.
    pub api_keys: ApiKeys,
    /// `GRPC_KEEPALIVE_INTERVAL`: how long a gRPC connection may stay silent before
    /// the server sends an HTTP/2 PING.
    pub grpc_keepalive_interval: Duration,
    /// `GRPC_KEEPALIVE_TIMEOUT`: how long the server waits for the PING's answer
    /// before it closes the connection, ending its calls and streams.
    pub grpc_keepalive_timeout: Duration,
}

/// A client that died without closing its connection (a desk PC switched off, a
/// NAT that forgot the flow) sends no FIN: without PINGs its streams, and the
/// per-key watch slots they hold, stay open until the kernel gives up, hours later.
/// A live client answers PINGs even while it reads nothing (flow control does not
/// hold them back), so a slow reader is not taken for a dead one.
pub const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// See [`GRPC_KEEPALIVE_INTERVAL`]: a dead client is found within 40 s.
pub const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceConfig {
    /// Reads every platform setting of a service.
    pub fn from_env(env: &Env, defaults: ServiceDefaults) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env, defaults.admin_port)?,
            grpc_addr: env.parse_or(
                "GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], defaults.grpc_port)),
            )?,
            nats: NatsConfig::from_env(env)?,
            db: DbConfig::from_env(env, defaults.database)?,
            api_keys: ApiKeys::from_env(env)?,
            grpc_keepalive_interval: env
                .period_or("GRPC_KEEPALIVE_INTERVAL", GRPC_KEEPALIVE_INTERVAL)?,
            grpc_keepalive_timeout: env
                .period_or("GRPC_KEEPALIVE_TIMEOUT", GRPC_KEEPALIVE_TIMEOUT)?,
        })
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds a TCP listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// A started service: connected, provisioned, migrated and bound, not yet serving.
pub struct ServiceRuntime {
    pub name: &'static str,
    pub config: ServiceConfig,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub namespace: Namespace,
    pub db: PgPool,
    pub drain: Drain,
    readiness: Readiness,
    /// One key ring per service: every interceptor, the dashboard's login and the open
    /// watches' re-checks share it, so the key file is re-read once and they never
    /// disagree about a key for an interval.
    auth: AuthInterceptor,
    grpc_listener: TcpListener,
    admin_listener: TcpListener,
}

impl ServiceRuntime {
    /// Connects to NATS and provisions `streams`, prepares the database, and binds
    /// both ports (port 0 picks a free one; see [`Self::grpc_port`]).
    ///
    /// `streams` are those the service reads or writes: its consumers' streams, the
    /// streams its outbox relay publishes to, and [`nats::DEADLETTER`] when it runs a
    /// consumer or a relay (either may dead-letter). A needed stream that cannot be
    /// provisioned fails the start naming it; the others are not touched, so one
    /// stalled stream (an R1 stream whose node is down, an update that times out) keeps
    /// only the services that use it from starting.
    pub async fn start(
        name: &'static str,
        config: ServiceConfig,
        migrator: &'static Migrator,
        streams: &[StreamSpec],
    ) -> Result<Self, StartupError> {
        // Installed first, so what a service records while it builds (a cache
        // loaded, a seed applied) is not lost before `serve` exposes it.
        telemetry::metrics_handle();
        let readiness = Readiness::new();
        let nats = nats::connect(&config.nats, name).await?;
        readiness.watch_nats(nats.clone());
        let jetstream = jetstream::new(nats.clone());
        let namespace = config.nats.namespace.clone();
        nats::provision_with(&jetstream, &namespace, streams, &config.nats.streams).await?;
        let db = db::connect_and_migrate(&config.db, migrator).await?;
        readiness.watch_db(db.clone());
        readiness.set_migrated();
        let grpc_listener = bind(config.grpc_addr).await?;
        let admin_listener = bind(config.common.admin_addr).await?;
        if config.api_keys.is_empty() {
            tracing::warn!(
                service = name,
                "API_KEYS is empty: every gRPC call will be refused"
            );
        }
        let auth = AuthInterceptor::new(config.api_keys.clone());
        Ok(Self {
            name,
            config,
            nats,
            jetstream,
            namespace,
            db,
            drain: Drain::new(),
            readiness,
            auth,
            grpc_listener,
            admin_listener,
        })
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// The bound admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// Runs `handler` over its durable consumer in the background, restarted after
    /// failures, until the drain begins; the drain waits for it.
    pub fn spawn_consumer<H: EventHandler>(&self, handler: Arc<H>) {
        self.drain.spawn(supervise_consumer(
            self.jetstream.clone(),
            self.namespace.clone(),
            self.name,
            handler,
            self.drain.clone(),
        ));
    }

    /// Runs the outbox relay of this service's database: woken through `signal`
    /// after each commit that queued events, polling every `poll` as a safety net.
    /// It outlives every other task of the drain, so its last pass publishes what
    /// the last requests and events committed.
    pub fn spawn_outbox_relay(&self, signal: OutboxSignal, poll: std::time::Duration) {
        let relay = Relay::new(
            self.name,
            self.db.clone(),
            self.jetstream.clone(),
            self.namespace.clone(),
        );
        let drain = self.drain.clone();
        self.drain
            .spawn_final(async move { relay.run(signal, poll, drain.work_done()).await });
    }

    /// The interceptor that authenticates this service's gRPC calls (a handle on the
    /// service's one key ring).
    pub fn auth(&self) -> AuthInterceptor {
        self.auth.clone()
    }

    /// Serves `routes` (the service's own gRPC services, named in `served` for
    /// reflection), health, reflection and the admin port until `shutdown` resolves,
    /// then drains.
    pub async fn serve(
        self,
        routes: tonic::service::Routes,
        served: &[&str],
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (reflection_v1, reflection_v1alpha) = crate::grpc::reflection_services(served);
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;

        let stop_grpc = CancellationToken::new();
        let grpc = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(self.config.grpc_keepalive_interval))
            .http2_keepalive_timeout(Some(self.config.grpc_keepalive_timeout))
            .layer(crate::grpc::GrpcTelemetryLayer::new())
            .add_routes(routes)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(
                crate::grpc::nodelay_incoming(self.grpc_listener),
                stop_grpc.clone().cancelled_owned(),
            );

        let stop_admin = CancellationToken::new();
        let admin_router = admin::router(telemetry::metrics_handle(), self.readiness.clone());
        let admin = axum::serve(self.admin_listener, admin_router)
            .with_graceful_shutdown(stop_admin.clone().cancelled_owned());
        let runner = DrainRunner::new(
            self.name,
            self.config.common.shutdown_grace,
            self.drain.clone(),
        )
        .readiness(self.readiness.clone())
        .on_draining(async move {
            health_reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
        })
        .nats(self.nats.clone())
        .server("grpc", stop_grpc, grpc)
        .admin(stop_admin, admin.into_future());
        tracing::info!(service = self.name, "service ready");
        runner.run_until(shutdown).await;
        Ok(())
    }
}
