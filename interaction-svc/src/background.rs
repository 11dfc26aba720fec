//! The inbound half's background work, wired by `startup`: the reply path, the
//! gateways' rules snapshots, the rules-cache refresh, the inbound consumer, the
//! outbox relay and the deadline sweeper. Each runs under the runtime's drain and
//! stops when it begins.

use std::sync::Arc;

use platform::outbox::OutboxSignal;
use platform::service::ServiceRuntime;

use crate::config::InteractionConfig;
use crate::delivery::Deliverer;
use crate::domain::{DeadlinePolicy, Intake};
use crate::events::directory::{self as directory_events, DirectoryHandler};
use crate::events::missed::{self, MissedReplyHandler};
use crate::events::{CONSUMER, HeldAnswers, InboundHandler};
use crate::jobs::directory_sync::{self, DirectorySync};
use crate::jobs::held_retry;
use crate::jobs::sweeper;
use crate::replies::directory::{self as directory_cache, DirectoryCache, DirectoryNotifier};
use crate::replies::{self, Responder, RulesCache};
use crate::store::rules::CHANGED_WILDCARD;

/// Subscriptions and shared state, prepared before the service reports ready.
pub struct Background {
    config: InteractionConfig,
    cache: Arc<RulesCache>,
    directory: Arc<DirectoryCache>,
    intake: Arc<Intake>,
    signal: OutboxSignal,
    requests: async_nats::Subscriber,
    snapshot_requests: async_nats::Subscriber,
    notices: async_nats::Subscriber,
    directory_notices: async_nats::Subscriber,
    /// The bootstrap from content-svc, when configured.
    directory_sync: Option<DirectorySync>,
}

impl Background {
    /// Subscribes to reply requests and rule-change notices (so nothing sent after
    /// `build` returns is missed), provisions the durable consumer, and loads the rules.
    pub async fn prepare(
        runtime: &ServiceRuntime,
        config: &InteractionConfig,
    ) -> anyhow::Result<Self> {
        let nats = &runtime.nats;
        let requests = nats
            .queue_subscribe(
                runtime.namespace.subject(replies::SUBJECT),
                replies::QUEUE_GROUP.to_owned(),
            )
            .await?;
        let snapshot_requests = nats
            .queue_subscribe(
                runtime.namespace.subject(reply_rules::SNAPSHOT_WILDCARD),
                replies::QUEUE_GROUP.to_owned(),
            )
            .await?;
        let notices = nats
            .subscribe(runtime.namespace.subject(CHANGED_WILDCARD))
            .await?;
        let directory_notices = nats
            .subscribe(runtime.namespace.subject(directory_cache::CHANGED_SUBJECT))
            .await?;
        // The server knows the subscriptions once the flush returns.
        nats.flush().await?;
        platform::nats::provision_consumer(&runtime.jetstream, &runtime.namespace, &CONSUMER)
            .await?;
        platform::nats::provision_consumer(
            &runtime.jetstream,
            &runtime.namespace,
            &directory_events::CONSUMER,
        )
        .await?;
        // The gateways write this stream; created here too, so the consumer can be
        // provisioned before any gateway ever started.
        platform::nats::provision_with(
            &runtime.jetstream,
            &runtime.namespace,
            &[platform::nats::WECHAT_MISSED_REPLIES],
            &runtime.config.nats.streams,
        )
        .await?;
        platform::nats::provision_consumer(
            &runtime.jetstream,
            &runtime.namespace,
            &missed::CONSUMER,
        )
        .await?;
        let cache = Arc::new(RulesCache::new(runtime.db.clone()));
        let accounts = cache.reload_all().await?;
        tracing::info!(accounts, "rules cache loaded");
        let directory = Arc::new(DirectoryCache::new(runtime.db.clone()));
        let services = directory.reload().await?;
        tracing::info!(services, "directory loaded");
        Ok(Self {
            config: config.clone(),
            cache,
            directory,
            intake: Arc::new(Intake {
                policy: config.policy.clone(),
                fallback_department: config.default_department.clone(),
                departments: config.departments.clone(),
            }),
            signal: OutboxSignal::new(),
            requests,
            snapshot_requests,
            notices,
            directory_notices,
            directory_sync: None,
        })
    }

    /// Runs `sync` once the loops start (`None`: no bootstrap).
    pub fn with_directory_sync(mut self, sync: Option<DirectorySync>) -> Self {
        self.directory_sync = sync;
        self
    }

    /// The deadlines new tickets get, which reopened tickets get again.
    pub fn deadline_policy(&self) -> &DeadlinePolicy {
        &self.intake.policy
    }

    /// Starts the retry of held answers a busy WeChat did not take, every
    /// `SWEEP_INTERVAL` like the deadline sweeper.
    pub fn spawn_held_retry(&self, runtime: &ServiceRuntime, deliverer: Deliverer) {
        // The tickets' use cases as the gRPC handlers have them: the owed rating
        // questions it asks go through a ticket's turn like a close's.
        let tickets = crate::app::Tickets::new(
            runtime.db.clone(),
            deliverer.clone(),
            self.signal.clone(),
            Arc::new(self.intake.policy.clone()),
            runtime.drain.clone(),
        );
        runtime.drain.spawn(held_retry::run(
            deliverer,
            tickets,
            self.config.sweep_interval,
            runtime.drain.clone(),
        ));
    }

    /// Starts sending the passive replies the gateways missed
    /// (`events.v1.ReplyMissed`) through the customer-service API.
    pub fn spawn_missed_replies(&self, runtime: &ServiceRuntime, deliverer: Deliverer) {
        runtime.spawn_consumer(Arc::new(MissedReplyHandler::new(deliverer)));
    }

    /// The relay's wake-up, for other writers of the outbox.
    pub fn outbox_signal(&self) -> OutboxSignal {
        self.signal.clone()
    }

    /// Starts every loop; `held` sends answers held for citizens who write again.
    pub fn spawn<H: HeldAnswers>(self, runtime: &ServiceRuntime, held: H) {
        let drain = &runtime.drain;
        let responder = Arc::new(Responder::new(
            self.cache.clone(),
            self.directory.clone(),
            runtime.db.clone(),
            self.intake.clone(),
        ));
        drain.spawn(replies::serve(
            responder,
            runtime.nats.clone(),
            self.requests,
            drain.clone(),
        ));
        drain.spawn(replies::snapshot::serve(
            runtime.db.clone(),
            runtime.nats.clone(),
            self.snapshot_requests,
            drain.clone(),
        ));
        drain.spawn(replies::cache::run_refresh(
            self.cache.clone(),
            self.notices,
            self.config.rules_reload_interval,
            drain.clone(),
        ));
        drain.spawn(directory_cache::run_refresh(
            self.directory.clone(),
            self.directory_notices,
            self.config.rules_reload_interval,
            drain.clone(),
        ));
        let notifier = DirectoryNotifier::new(runtime.nats.clone(), runtime.namespace.clone());
        runtime.spawn_consumer(Arc::new(DirectoryHandler::new(
            runtime.db.clone(),
            notifier.clone(),
        )));
        if let Some(sync) = self.directory_sync {
            drain.spawn(directory_sync::run(
                runtime.db.clone(),
                sync,
                notifier,
                drain.clone(),
            ));
        }
        let handler = InboundHandler::new(
            runtime.db.clone(),
            self.cache,
            self.directory,
            self.intake,
            self.signal.clone(),
            held,
            drain.clone(),
        );
        runtime.spawn_consumer(Arc::new(handler));
        runtime.spawn_outbox_relay(self.signal.clone(), self.config.outbox_poll_interval);
        drain.spawn(sweeper::run(
            runtime.db.clone(),
            self.config.sweep_interval,
            self.config.escalation_department.clone(),
            self.config.policy.calendar.offset(),
            self.config.retention,
            self.config.missed_reply_sending_timeout,
            self.signal,
            drain.clone(),
        ));
    }
}
