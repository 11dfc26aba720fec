//! Wiring only: the platform runtime, the consumers, the gRPC service and (later)
//! background jobs. No rules live here.

use std::future::Future;
use std::sync::Arc;

use platform::service::ServiceRuntime;
use proto::stats::v1::stats_service_server::{self, StatsServiceServer};

use crate::config::{Config, DEFAULTS};
use crate::events::inbound::{CONSUMER, InboundHandler};
use crate::grpc::StatsGrpc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built service, bound and ready to serve.
pub struct Application {
    runtime: ServiceRuntime,
}

impl Application {
    /// Connects, provisions (streams and the durable consumer), migrates and binds
    /// (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let runtime = ServiceRuntime::start(DEFAULTS.name, config.service, &MIGRATOR).await?;
        // Provisioning here makes a consumer NATS refuses a start-up error rather than
        // a log line from a background task; run_consumer finds it already there.
        platform::nats::provision_consumer(&runtime.jetstream, &runtime.namespace, &CONSUMER)
            .await?;
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

    /// Consumes and serves until `shutdown` resolves, then drains: the consumer
    /// stops pulling, finishes the message in hand, and the drain waits for it.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        self.spawn_inbound_consumer();
        let grpc = StatsGrpc::new(self.runtime.db.clone());
        let routes = tonic::service::Routes::new(StatsServiceServer::with_interceptor(
            grpc,
            self.runtime.auth(),
        ));
        self.runtime
            .serve(routes, &[stats_service_server::SERVICE_NAME], shutdown)
            .await
    }

    fn spawn_inbound_consumer(&self) {
        let handler = Arc::new(InboundHandler::new(self.runtime.db.clone()));
        self.runtime.spawn_consumer(handler);
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
    fn the_consumer_is_the_documented_durable() {
        assert_eq!(CONSUMER.durable, "stats-inbound");
        assert_eq!(CONSUMER.stream.name, "WECHAT_INBOUND");
        assert_eq!(CONSUMER.filter_subject, "wechat.inbound.>");
        assert_eq!(CONSUMER.max_deliver, 5);
        assert_eq!(CONSUMER.ack_wait, std::time::Duration::from_secs(30));
    }
}
