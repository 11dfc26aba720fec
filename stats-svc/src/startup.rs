//! Wiring only: the platform runtime, the consumers, the outbox relay, the
//! inspection job and the gRPC service. No rules live here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use platform::nats::{CONTENT, DEADLETTER, INTERACTION, StreamSpec, WECHAT_INBOUND};
use platform::outbox::OutboxSignal;
use platform::service::ServiceRuntime;
use proto::stats::v1::stats_service_server::{self, StatsServiceServer};

use wechat::api::Client;
use wechat::token::{SharedCacheConfig, SharedTokenCache, TokenSource};

use crate::config::{Config, DEFAULTS, StatsSettings};
use crate::domain::AccountId;
use crate::events::autoreplies::AutoReplyHandler;
use crate::events::content::ContentHandler;
use crate::events::inbound::{CONSUMER, InboundHandler};
use crate::events::retractions::RetractionHandler;
use crate::events::tickets::TicketHandler;
use crate::grpc::StatsGrpc;
use crate::http::DashboardState;
use crate::jobs::datacube::{AccountClients, DatacubeJob};
use crate::jobs::inspection::InspectionJob;
use crate::jobs::{Clock, system_clock};

/// Inspection alarms, written by this service's outbox relay
/// (`stats.{account}.alarm.{rule}`, `stats.v1.AlarmRaised`).
pub const STATS: StreamSpec = StreamSpec {
    name: "STATS",
    subjects: "stats.>",
    max_age: Duration::from_secs(30 * 24 * 3600),
    duplicate_window: Duration::from_secs(10 * 60),
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built service, bound and ready to serve.
pub struct Application {
    runtime: ServiceRuntime,
    settings: StatsSettings,
    clock: Clock,
    clients: AccountClients,
    http: Option<tokio::net::TcpListener>,
    http_port: u16,
}

impl Application {
    /// Connects, provisions (streams and the durable consumer), migrates and binds
    /// (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, system_clock()).await
    }

    /// [`Self::build`] with the inspection job reading `clock` (tests fix the day).
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // The streams it reads (callbacks, content and interaction events) and writes
        // (its alarms' outbox, dead letters). STATS with the install's stream settings
        // like the others, so it gets NATS_REPLICAS copies (in a 3-node cluster an alarm
        // survives a node).
        let streams = [WECHAT_INBOUND, CONTENT, INTERACTION, DEADLETTER, STATS];
        let runtime =
            ServiceRuntime::start(DEFAULTS.name, config.service, &MIGRATOR, &streams).await?;
        // Provisioning here makes a consumer NATS refuses a start-up error rather than
        // a log line from a background task; run_consumer finds it already there.
        for spec in [
            CONSUMER,
            crate::events::tickets::CONSUMER,
            crate::events::content::CONSUMER,
            crate::events::retractions::CONSUMER,
            crate::events::autoreplies::CONSUMER,
        ] {
            platform::nats::provision_consumer(&runtime.jetstream, &runtime.namespace, &spec)
                .await?;
        }
        // The day each account the install names was first named: the lists show a
        // named account from it (`store::install`), so its first sign of life does not
        // change a final list.
        let named: Vec<String> = config.stats.install.accounts().map(str::to_owned).collect();
        if !named.is_empty() {
            let today = clock().with_timezone(&config.stats.office).date_naive();
            crate::store::install::record_named(&runtime.db, &named, today).await?;
        }
        let clients = datacube_clients(&runtime, &config.stats).await?;
        let http = platform::service::bind(config.stats.http_addr).await?;
        let http_port = http.local_addr()?.port();
        Ok(Self {
            runtime,
            settings: config.stats,
            clock,
            clients,
            http: Some(http),
            http_port,
        })
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.runtime.grpc_port()
    }

    /// The bound dashboard port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The bound admin port.
    pub fn admin_port(&self) -> u16 {
        self.runtime.admin_port()
    }

    /// Consumes and serves until `shutdown` resolves, then drains: the consumer
    /// stops pulling, finishes the message in hand, and the drain waits for it.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        self.spawn_background();
        if let Some(listener) = self.http.take() {
            self.spawn_dashboard(listener);
        }
        let grpc = StatsGrpc::new(
            self.runtime.db.clone(),
            self.settings.clone(),
            self.clock.clone(),
        );
        let routes = tonic::service::Routes::new(StatsServiceServer::with_interceptor(
            grpc,
            self.runtime.auth(),
        ));
        self.runtime
            .serve(routes, &[stats_service_server::SERVICE_NAME], shutdown)
            .await
    }

    fn spawn_dashboard(&self, listener: tokio::net::TcpListener) {
        let state = DashboardState {
            db: self.runtime.db.clone(),
            settings: self.settings.clone(),
            auth: self.runtime.auth(),
            trust_loopback: self.settings.trust_loopback,
            clock: self.clock.clone(),
        };
        let app = crate::http::router(state)
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let stop = self.runtime.drain.stopping().clone();
        self.runtime.drain.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "dashboard server failed");
            }
        });
    }

    fn spawn_background(&self) {
        let db = &self.runtime.db;
        let office = self.settings.office;
        self.runtime
            .spawn_consumer(Arc::new(InboundHandler::new(db.clone(), office)));
        self.runtime
            .spawn_consumer(Arc::new(TicketHandler::new(db.clone(), office)));
        self.runtime
            .spawn_consumer(Arc::new(ContentHandler::new(db.clone(), office)));
        self.runtime
            .spawn_consumer(Arc::new(RetractionHandler::new(db.clone(), office)));
        self.runtime
            .spawn_consumer(Arc::new(AutoReplyHandler::new(db.clone(), office)));
        let signal = OutboxSignal::new();
        self.runtime
            .spawn_outbox_relay(signal.clone(), self.settings.outbox_poll);
        let inspection = InspectionJob {
            db: db.clone(),
            rules: self.settings.rules,
            install: self.settings.install.clone(),
            clock: self.clock.clone(),
            office,
            calendar: self.settings.calendar.clone(),
        };
        self.runtime.drain.spawn(inspection.run(
            self.settings.inspection_interval,
            signal,
            self.runtime.drain.clone(),
        ));
        if !self.clients.is_empty() {
            let job = DatacubeJob {
                db: db.clone(),
                clients: self.clients.clone(),
                clock: self.clock.clone(),
                office,
                calendar: self.settings.calendar.clone(),
                backfill_days: self.settings.datacube.backfill_days,
                holder: format!("{}-{}", DEFAULTS.name, uuid::Uuid::new_v4()),
            };
            self.runtime
                .drain
                .spawn(job.run(self.settings.datacube.interval, self.runtime.drain.clone()));
        }
    }
}

/// One API client per account the datacube job pulls, sharing the platform's token
/// cache (a NATS KV bucket) with the other services.
async fn datacube_clients(
    runtime: &ServiceRuntime,
    settings: &StatsSettings,
) -> anyhow::Result<AccountClients> {
    let cube = &settings.datacube;
    if cube.accounts.is_empty() {
        return Ok(Arc::default());
    }
    let bucket = runtime.namespace.name(wechat::token::DEFAULT_BUCKET);
    let cache = SharedTokenCache::open(&runtime.jetstream, SharedCacheConfig::new(bucket)).await?;
    let tokens = TokenSource::from(cache);
    let mut clients = Vec::with_capacity(cube.accounts.len());
    for account in &cube.accounts {
        let client = Client::builder(&account.appid, account.secret.clone(), tokens.clone())
            .base_url(&cube.base_url)
            .build()?;
        clients.push((AccountId::parse(account.id.as_str())?, client));
    }
    Ok(Arc::new(clients))
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
        assert_eq!(CONSUMER.max_deliver, platform::nats::PATIENT_DELIVERIES);
        assert_eq!(CONSUMER.ack_wait, std::time::Duration::from_secs(30));
    }
}
