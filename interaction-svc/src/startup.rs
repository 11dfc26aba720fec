//! Wiring: configuration, the platform runtime, gRPC services and background work.

use std::future::Future;

use platform::nats::{CONTENT, DEADLETTER, INTERACTION, WECHAT_INBOUND};
use platform::service::{ServiceDefaults, ServiceRuntime};
use proto::interaction::v1::interaction_service_server::InteractionServiceServer;

use crate::app;
use crate::background::Background;
pub use crate::config::Config;
use crate::content::ContentDirectory;
use crate::delivery::Deliverer;
use crate::grpc::{InteractionGrpc, QueueWatch};
use crate::jobs::directory_sync::DirectorySync;
use crate::store::rules::RulesNotifier;

/// The service's name, database and default ports (see the README's ports table).
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "interaction-svc",
    database: "interaction",
    grpc_port: 50051,
    admin_port: 9081,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built service, bound and ready to serve.
pub struct Application {
    runtime: ServiceRuntime,
    deliverer: Deliverer,
    escalation_department: String,
    watch_limits: crate::grpc::WatchLimits,
    departments: crate::domain::Departments,
    rule_accounts: Option<std::collections::BTreeSet<String>>,
    /// The inbound half: reply path, consumer, relay, sweeper.
    background: Background,
}

impl Application {
    /// Connects, provisions, migrates and binds (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The streams it reads (callbacks, content-svc's directory changes, its own
        // events for the queue watch) and writes (its outbox, dead letters); the missed
        // replies' stream is provisioned with its consumer.
        let streams = [WECHAT_INBOUND, CONTENT, INTERACTION, DEADLETTER];
        let runtime =
            ServiceRuntime::start(DEFAULTS.name, config.service, &MIGRATOR, &streams).await?;
        let deliverer = Deliverer::connect(
            runtime.db.clone(),
            &runtime.jetstream,
            &runtime.namespace,
            &config.wechat,
        )
        .await?
        .with_retry_backoff(config.interaction.held_retry_backoff);
        // The shared access-token bucket gets NATS_REPLICAS copies, like the streams.
        let token_bucket = runtime.namespace.name(wechat::token::DEFAULT_BUCKET);
        let replicas = runtime.config.nats.streams.replicas;
        platform::nats::replicate_bucket(&runtime.jetstream, &token_bucket, replicas).await?;
        let escalation_department = config.interaction.escalation_department.clone();
        let watch_limits = config.interaction.watch;
        let departments = config.interaction.departments.clone();
        let rule_accounts = config.interaction.accounts.clone();
        let directory_sync = match &config.directory_sync {
            Some(sync) => Some(DirectorySync {
                content: ContentDirectory::new(sync)?,
                accounts: config
                    .wechat
                    .accounts
                    .iter()
                    .map(|a| a.id.clone())
                    .collect(),
                interval: sync.interval,
            }),
            None => {
                tracing::info!(
                    "directory bootstrap from content-svc is off (CONTENT_GRPC_URL unset): \
                     services last changed before the CONTENT stream's 30 days stay unknown"
                );
                None
            }
        };
        let background = Background::prepare(&runtime, &config.interaction)
            .await?
            .with_directory_sync(directory_sync);
        warn_of_rules_without_resolve_limit(&runtime.db, &config.interaction.policy).await;
        Ok(Self {
            runtime,
            deliverer,
            escalation_department,
            watch_limits,
            departments,
            rule_accounts,
            background,
        })
    }

    /// What sends answers to citizens (the inbound consumer calls its `flush_held`).
    pub fn deliverer(&self) -> &Deliverer {
        &self.deliverer
    }

    /// The service's drain: its tasks (a close's rating question, answers being
    /// sent) are what a test waits for, and what a drain cut short leaves running.
    pub fn drain(&self) -> &platform::shutdown::Drain {
        &self.runtime.drain
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
        let watch = QueueWatch {
            nats: self.runtime.nats.clone(),
            jetstream: self.runtime.jetstream.clone(),
            namespace: self.runtime.namespace.clone(),
            db: self.runtime.db.clone(),
            drain: self.runtime.drain.clone(),
            escalation_department: self.escalation_department.clone(),
            limits: self.watch_limits,
            open: Default::default(),
        };
        let rules = RulesNotifier::new(self.runtime.nats.clone(), self.runtime.namespace.clone());
        let db = self.runtime.db.clone();
        let grpc = InteractionGrpc::new(
            app::Tickets::new(
                db.clone(),
                self.deliverer.clone(),
                self.background.outbox_signal(),
                std::sync::Arc::new(self.background.deadline_policy().clone()),
                self.runtime.drain.clone(),
            ),
            app::Rules::new(db.clone(), rules),
            app::Followers::new(db),
            watch,
            self.departments.clone(),
            self.rule_accounts.clone(),
            self.runtime.auth(),
        );
        self.background
            .spawn_held_retry(&self.runtime, self.deliverer.clone());
        self.background
            .spawn_missed_replies(&self.runtime, self.deliverer.clone());
        self.background.spawn(&self.runtime, self.deliverer.clone());
        let routes = tonic::service::Routes::new(InteractionServiceServer::with_interceptor(
            grpc,
            self.runtime.auth(),
        ));
        self.runtime
            .serve(
                routes,
                &[proto::interaction::v1::interaction_service_server::SERVICE_NAME],
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

/// Logs and counts the routing rules whose category has no resolve limit (saved
/// before `CreateRoutingRule` checked it, or left by a change of
/// `INTERACTION_RESOLVE_LIMITS`): their tickets get the default limit. They keep
/// routing as before; an admin recreates them with a known category.
async fn warn_of_rules_without_resolve_limit(
    db: &sqlx::PgPool,
    policy: &crate::domain::DeadlinePolicy,
) {
    let rules = match crate::store::rules::routing_categories(db).await {
        Ok(rules) => rules,
        Err(error) => {
            tracing::warn!(%error, "routing rules' categories not checked");
            return;
        }
    };
    let mut unknown = 0_u32;
    for (id, account, category) in rules {
        if let Err(reason) = policy.check_category(&category) {
            unknown += 1;
            tracing::warn!(
                rule = %id, %account, %category, %reason,
                "routing rule's category has no resolve limit: its tickets get the default limit"
            );
        }
    }
    metrics::gauge!("interaction_routing_rules_without_resolve_limit").set(f64::from(unknown));
}
