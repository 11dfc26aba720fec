//! Wiring: configuration, the platform runtime, gRPC services and background work.

use std::future::Future;

use platform::service::{ServiceConfig, ServiceDefaults, ServiceRuntime};
use platform::{ConfigError, Env};
use proto::content::v1::content_service_server::ContentServiceServer;

use crate::grpc::ContentGrpc;

/// The service's name, database and default ports (see the README's ports table).
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "content-svc",
    database: "content",
    grpc_port: 50052,
    admin_port: 9082,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// content-svc's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
}

impl Config {
    /// Reads the configuration; every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, DEFAULTS)?,
        })
    }
}

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
            .serve(
                routes,
                &[proto::content::v1::content_service_server::SERVICE_NAME],
                shutdown,
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports_and_database() {
        let config = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.service.grpc_addr.port(), 50052);
        assert_eq!(config.service.common.admin_addr.port(), 9082);
        assert_eq!(config.service.db.database(), "content");
    }
}
