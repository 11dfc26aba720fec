//! Wiring only: the platform runtime, the gRPC service and (later) consumers,
//! the outbox relay and background jobs. No rules live here.

use std::future::Future;

use platform::service::ServiceRuntime;
use proto::content::v1::content_service_server::{self, ContentServiceServer};

use crate::config::{Config, DEFAULTS};
use crate::grpc::ContentGrpc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built service, bound and ready to serve.
pub struct Application {
    runtime: ServiceRuntime,
}

impl Application {
    /// Connects, provisions, migrates and binds (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let runtime = ServiceRuntime::start(DEFAULTS.name, config.service, &MIGRATOR).await?;
        Ok(Self { runtime })
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.runtime.grpc_port()
    }

    /// The bound admin port.
    pub fn admin_port(&self) -> u16 {
        self.runtime.admin_port()
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let grpc = ContentGrpc::new(self.runtime.db.clone());
        let routes = tonic::service::Routes::new(ContentServiceServer::with_interceptor(
            grpc,
            self.runtime.auth(),
        ));
        self.runtime
            .serve(routes, &[content_service_server::SERVICE_NAME], shutdown)
            .await
    }
}

/// Applies the migrations and exits (the Kubernetes migration Job).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = platform::db::connect_and_migrate(&config.service.db, &MIGRATOR).await?;
    pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}
