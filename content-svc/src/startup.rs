//! Wiring only: the platform runtime, the gRPC service, the job-finish consumers,
//! the outbox relay, the scheduler and the publish reconciliation. No rules live here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use platform::nats::{CONTENT, DEADLETTER, WECHAT_INBOUND};
use platform::outbox::OutboxSignal;
use platform::service::ServiceRuntime;
use proto::content::v1::content_service_server::{self, ContentServiceServer};
use proto::content::v1::menu_service_server::{self, MenuServiceServer};
use wechat::api::Client;
use wechat::token::{SharedCacheConfig, SharedTokenCache, TokenSource};

use crate::app::articles::Articles;
use crate::app::directory::Directory;
use crate::app::lexicon::Lexicon;
use crate::app::menus::Menus;
use crate::app::publishing::Publisher;
use crate::app::search::{LiveIndex, Search};
use crate::config::{Config, ContentConfig, DEFAULTS};
use crate::domain::screening::STARTER_LEXICON;
use crate::domain::search::Segmenter;
use crate::events::job_finish::{MassSendFinished, PublishFinished};
use crate::grpc::ContentGrpc;
use crate::grpc::menus::MenuGrpc;
use crate::http::HallState;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built service, bound and ready to serve.
pub struct Application {
    runtime: ServiceRuntime,
    articles: Articles,
    directory: Directory,
    search: Search,
    search_follower: Option<crate::jobs::search_index::Follower>,
    content: ContentConfig,
    signal: OutboxSignal,
    menus: Menus,
    hall: Option<tokio::net::TcpListener>,
    hall_port: u16,
}

impl Application {
    /// Connects, provisions, migrates, seeds the lexicon and binds (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The streams it reads (the job-finish callbacks) and writes (its outbox, dead
        // letters); not INTERACTION, which it never uses.
        let streams = [WECHAT_INBOUND, CONTENT, DEADLETTER];
        let runtime =
            ServiceRuntime::start(DEFAULTS.name, config.service, &MIGRATOR, &streams).await?;
        let content = config.content;
        let hall_config = config.hall;
        let lexicon = Lexicon::new(runtime.db.clone());
        let seed = match &content.lexicon_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("CONTENT_LEXICON_FILE {}: {e}", path.display()))?,
            None => STARTER_LEXICON.to_owned(),
        };
        let seeded = lexicon.seed(&seed).await?;
        if seeded > 0 {
            tracing::info!(entries = seeded, "lexicon seeded");
        }
        let bucket = runtime.namespace.name(wechat::token::DEFAULT_BUCKET);
        // NATS_REPLICAS copies, like the streams: created so, and an existing bucket's
        // (created with one by an earlier release) raised.
        let replicas = runtime.config.nats.streams.replicas;
        let cache = SharedTokenCache::open(
            &runtime.jetstream,
            SharedCacheConfig::new(bucket.clone()).with_replicas(replicas),
        )
        .await?;
        platform::nats::replicate_bucket(&runtime.jetstream, &bucket, replicas).await?;
        let tokens = TokenSource::from(cache);
        let mut clients = HashMap::new();
        let mut menu_clients = HashMap::new();
        for account in &content.accounts {
            let client = Client::builder(&account.appid, account.secret.clone(), tokens.clone())
                .base_url(&content.wechat_base_url)
                .build()?;
            menu_clients.insert(account.id.clone(), client.clone());
            clients.insert(account.id.clone(), (client, account.kind));
        }
        let signal = OutboxSignal::new();
        let seed =
            match &content.directory_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("CONTENT_DIRECTORY_FILE {}: {e}", path.display())
                })?),
                None => None,
            };
        // The segmenter's user dictionary: the install's service, department and
        // category names (from the database and the seed about to be loaded).
        let mut words = crate::store::services::dictionary_words(&runtime.db).await?;
        if let Some(text) = &seed {
            for draft in crate::domain::service::parse_seed(text)? {
                words.push(draft.name);
                words.push(draft.department);
            }
        }
        let segmenter = Segmenter::new(words.iter().map(String::as_str));
        let articles = Articles::new(
            runtime.db.clone(),
            lexicon.clone(),
            signal.clone(),
            Publisher::new(clients),
            segmenter.clone(),
        );
        let mut directory = Directory::new(
            runtime.db.clone(),
            signal.clone(),
            segmenter.clone(),
            lexicon.clone(),
        );
        if !content.demo {
            directory = directory.serving(content.accounts.iter().map(|a| a.id.clone()));
        }
        let live_index = content
            .search_in_memory
            .then(|| LiveIndex::new(runtime.db.clone()));
        let search = Search::new(runtime.db.clone(), segmenter, live_index.clone());
        if let Some(text) = &seed {
            let seeded = directory.seed(text).await?;
            if seeded > 0 {
                tracing::info!(services = seeded, "directory seeded");
            }
        }
        // After the seed, so the first load holds it (the width-fold refold runs in
        // the background: its changes reach the index as announced).
        let search_follower = match live_index {
            Some(live) => Some(crate::jobs::search_index::start(runtime.db.clone(), live).await?),
            None => None,
        };
        let menus = Menus::new(
            runtime.db.clone(),
            menu_clients,
            &hall_config.public_url,
            lexicon.clone(),
        );
        let hall = platform::service::bind(hall_config.addr).await?;
        let hall_port = hall.local_addr()?.port();
        Ok(Self {
            runtime,
            articles,
            directory,
            search,
            search_follower,
            content,
            signal,
            menus,
            hall: Some(hall),
            hall_port,
        })
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.runtime.grpc_port()
    }

    /// The bound admin port.
    pub fn admin_port(&self) -> u16 {
        self.runtime.admin_port()
    }

    /// The bound service-hall port.
    pub fn hall_port(&self) -> u16 {
        self.hall_port
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let db = self.runtime.db.clone();
        self.runtime
            .spawn_outbox_relay(self.signal.clone(), self.content.outbox_poll_interval);
        self.runtime.spawn_consumer(Arc::new(PublishFinished {
            articles: self.articles.clone(),
            db: db.clone(),
        }));
        self.runtime.spawn_consumer(Arc::new(MassSendFinished {
            articles: self.articles.clone(),
            db: db.clone(),
        }));
        if let Some(follower) = self.search_follower.take() {
            self.runtime
                .drain
                .spawn(follower.run(self.runtime.drain.clone()));
        }
        // In the background: a large install's refold takes minutes (jobs/refold.rs).
        self.runtime.drain.spawn(crate::jobs::refold::run(
            db.clone(),
            self.search.segmenter().clone(),
            self.runtime.drain.clone(),
        ));
        self.runtime.drain.spawn(crate::jobs::scheduler::run(
            self.articles.clone(),
            self.content.scheduler_interval,
            self.content.publishing_stuck_after,
            self.runtime.drain.clone(),
        ));
        self.runtime.drain.spawn(crate::jobs::reconcile::run(
            self.articles.clone(),
            self.content.publish_reconcile_after,
            self.runtime.drain.clone(),
        ));
        self.runtime.drain.spawn(crate::jobs::publishing_age::run(
            self.articles.clone(),
            crate::jobs::publishing_age::tick_for(self.content.publish_reconcile_after),
            self.runtime.drain.clone(),
        ));
        let grpc = ContentGrpc::new(
            db,
            self.articles.clone(),
            self.directory.clone(),
            self.search.clone(),
            self.runtime.drain.clone(),
        );
        if let Some(listener) = self.hall.take() {
            self.spawn_hall(listener);
        }
        let routes = tonic::service::Routes::new(ContentServiceServer::with_interceptor(
            grpc,
            self.runtime.auth(),
        ))
        .add_service(MenuServiceServer::with_interceptor(
            MenuGrpc::new(self.menus.clone()),
            self.runtime.auth(),
        ));
        self.runtime
            .serve(
                routes,
                &[
                    content_service_server::SERVICE_NAME,
                    menu_service_server::SERVICE_NAME,
                ],
                shutdown,
            )
            .await
    }

    /// Serves the service hall until the drain begins.
    fn spawn_hall(&self, listener: tokio::net::TcpListener) {
        let state = HallState {
            db: self.runtime.db.clone(),
            search: self.search.clone(),
            accounts: self.content.accounts.iter().map(|a| a.id.clone()).collect(),
        };
        let app = crate::http::router(state);
        let stop = self.runtime.drain.stopping().clone();
        self.runtime.drain.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "service hall server failed");
            }
        });
    }
}

/// Applies the migrations and exits (the Kubernetes migration Job).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = platform::db::connect_and_migrate(&config.service.db, &MIGRATOR).await?;
    pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}
