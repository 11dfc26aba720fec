//! `spawn_app()`: a service in-process on port 0 with its own database and NATS namespace.

use interaction_svc::delivery::Deliverer;
use interaction_svc::{Application, Config};
use platform::nats::Namespace;
use platform::testing::{TestDb, TestNats, service_env};
use proto::interaction::v1::interaction_service_client::InteractionServiceClient;
use sqlx::PgPool;
use tonic::transport::Channel;

pub const ADMIN_KEY: &str = "admin-key-000001";
pub const SOCIAL_AGENT_KEY: &str = "social-agent-key-01";
pub const TRANSPORT_AGENT_KEY: &str = "transport-agent-key";
pub const EDITOR_KEY: &str = "editor-only-key-001";
pub const SOCIAL_VIEWER_KEY: &str = "social-viewer-key-01";
/// The county (`yizhang`) office's social-security desk: the city's department name,
/// but only the county's account.
pub const COUNTY_AGENT_KEY: &str = "county-agent-key-0001";
/// The county's admin: every department, the county's account only.
pub const COUNTY_ADMIN_KEY: &str = "county-admin-key-0001";
/// The county's account.
pub const COUNTY: &str = "yizhang";
/// A city-only department's agent: `transport-city` reaches the city's account only.
pub const CITY_TRANSPORT_KEY: &str = "city-transport-key-01";
/// The supervision office (督办, the default `INTERACTION_ESCALATION_DEPARTMENT`),
/// reaching the city's account only.
pub const SUPERVISION_KEY: &str = "supervision-key-0001";

pub struct TestApp {
    pub grpc_port: u16,
    pub admin_port: u16,
    pub db: PgPool,
    /// What the inbound consumer calls to send held answers.
    pub deliverer: Deliverer,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The service's drain, to tell whether stopping left its tasks running.
    drain: platform::shutdown::Drain,
    _test_db: TestDb,
    _test_nats: TestNats,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The account of `insert_ticket`'s tickets, as configured by [`spawn_app_with_wechat`].
pub const ACCOUNT: &str = "chenzhou";

/// A service whose WeChat API is `mock`, where account [`ACCOUNT`] is the mock's demo account.
pub async fn spawn_app_with_wechat(mock: &wechat_sim::api_server::MockWechat) -> TestApp {
    spawn_app_with(&wechat_env(mock)).await
}

/// [`spawn_app_with_wechat`] whose own sweeps (the held-answer retry among them) run
/// once at start, before a test holds anything, and then not for an hour: the
/// retries and flushes a test runs itself are the only ones that can send.
pub async fn spawn_app_retrying_held_only_at_start(
    mock: &wechat_sim::api_server::MockWechat,
) -> TestApp {
    let mut settings = wechat_env(mock).to_vec();
    settings.push(("SWEEP_INTERVAL", "1h"));
    spawn_app_with(&settings).await
}

/// The configuration that makes `mock` the WeChat API and [`ACCOUNT`] its demo account.
pub fn wechat_env(mock: &wechat_sim::api_server::MockWechat) -> [(&'static str, &str); 4] {
    [
        ("WECHAT_API_BASE_URL", mock.base_url()),
        ("WECHAT_ACCOUNTS", ACCOUNT),
        ("WECHAT_CHENZHOU_APPID", wechat_sim::api_server::DEMO_APPID),
        (
            "WECHAT_CHENZHOU_SECRET",
            wechat_sim::api_server::DEMO_SECRET,
        ),
    ]
}

/// A service with `extra` configuration on top of the test defaults.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let test_db = TestDb::new("interaction");
    let database_url = test_db.url();
    spawn_app_in(test_db, &database_url, extra).await
}

/// A service on `test_db` that reaches it through `database_url` (a `ChaosProxy`
/// in front of it, say); the test's own pool connects directly.
pub async fn spawn_app_in(test_db: TestDb, database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    platform::telemetry::init_test_tracing();
    let test_nats = TestNats::new();
    let keys = format!(
        "city-office:admin:{ADMIN_KEY},social-security:agent:{SOCIAL_AGENT_KEY},\
         transport:agent:{TRANSPORT_AGENT_KEY},publicity:editor:{EDITOR_KEY},\
         social-security:viewer:{SOCIAL_VIEWER_KEY},\
         social-security@{COUNTY}:agent+viewer:{COUNTY_AGENT_KEY},\
         yizhang-office@{COUNTY}:admin:{COUNTY_ADMIN_KEY},\
         transport-city@{ACCOUNT}:agent:{CITY_TRANSPORT_KEY},\
         supervision@{ACCOUNT}:agent+viewer:{SUPERVISION_KEY}"
    );
    let env = service_env(
        &test_db,
        &test_nats,
        [("API_KEYS", keys.as_str()), ("DATABASE_URL", database_url)]
            .into_iter()
            .chain(extra.iter().copied()),
    );
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("service builds");
    let grpc_port = app.grpc_port();
    let admin_port = app.admin_port();
    let deliverer = app.deliverer().clone();
    let drain = app.drain().clone();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = shutdown_rx.await;
    }));
    let db = PgPool::connect(&test_db.url())
        .await
        .expect("test database reachable");
    TestApp {
        grpc_port,
        admin_port,
        db,
        deliverer,
        shutdown: Some(shutdown_tx),
        server: Some(server),
        drain,
        _test_db: test_db,
        _test_nats: test_nats,
    }
}

impl TestApp {
    /// A client that sends `key` as its bearer token (`None`: no key at all).
    pub async fn client(
        &self,
        key: Option<&'static str>,
    ) -> InteractionServiceClient<
        tonic::service::interceptor::InterceptedService<
            Channel,
            impl tonic::service::Interceptor + use<>,
        >,
    > {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", self.grpc_port))
            .unwrap()
            .connect()
            .await
            .expect("grpc port reachable");
        InteractionServiceClient::with_interceptor(
            channel,
            move |mut request: tonic::Request<()>| {
                if let Some(key) = key {
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {key}").parse().unwrap());
                }
                Ok(request)
            },
        )
    }

    /// The test's NATS namespace (subjects and stream names).
    pub fn namespace(&self) -> &Namespace {
        &self._test_nats.namespace
    }

    /// The test's NATS fixture, for other components (the gateway) joining the namespace.
    pub fn test_nats(&self) -> &TestNats {
        &self._test_nats
    }

    /// A plain NATS connection for the test itself.
    pub async fn nats(&self) -> async_nats::Client {
        self._test_nats.connect().await
    }

    /// Stops the service and waits for its drain to finish.
    pub async fn stop(mut self) {
        self.stop_service().await;
    }

    /// Waits until the work a call left running detached (a close's rating question,
    /// a task of the drain) has finished, by stopping the service and waiting for its
    /// drain: what a test asserts afterwards is what that work did, not what it had
    /// not done yet. The database and NATS namespace stay. Fails the test if the
    /// drain's deadline (`SHUTDOWN_GRACE`) passed with work still running: the stop
    /// returns then all the same, and the test would assert on work unfinished.
    pub async fn wait_for_detached_work(&mut self) {
        self.stop_service().await;
        // The drain has waited up to its deadline already: whatever runs now was
        // left running by it (a deadline in the past only looks, never waits).
        let unfinished = self.drain.wait_until(tokio::time::Instant::now()).await;
        assert_eq!(
            unfinished, 0,
            "the drain's deadline passed with {unfinished} task(s) of detached work still running"
        );
    }

    /// Stops the service and waits for its drain, keeping its database and NATS
    /// namespace (for what the rest of the platform does without it).
    pub async fn stop_service(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("clean shutdown");
        }
    }

    /// Inserts a ticket directly, as the ticket flow will, for a fresh citizen (a
    /// citizen has at most one active ticket per account).
    pub async fn insert_ticket(
        &self,
        department: &str,
        state: &str,
        opened_minutes_ago: i64,
    ) -> uuid::Uuid {
        let openid = format!("o-citizen-{}", uuid::Uuid::new_v4().simple());
        self.insert_citizen_ticket(&openid, department, state, opened_minutes_ago)
            .await
    }

    /// Inserts a ticket of citizen `openid` of [`ACCOUNT`].
    pub async fn insert_citizen_ticket(
        &self,
        openid: &str,
        department: &str,
        state: &str,
        opened_minutes_ago: i64,
    ) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO tickets (id, account, department, openid, state, summary, opened_at,
                                  acknowledge_due_at, resolve_due_at)
             VALUES ($1, $5, $2, $6, $3, '路灯不亮',
                     now() - make_interval(mins => $4::int),
                     now() + interval '1 day', now() + interval '3 days')",
        )
        .bind(id)
        .bind(department)
        .bind(state)
        .bind(opened_minutes_ago as i32)
        .bind(ACCOUNT)
        .bind(openid)
        .execute(&self.db)
        .await
        .expect("insert ticket");
        id
    }
}

/// Followers and the outbox, for the answering and queue tests.
impl TestApp {
    /// Inserts a follower of [`ACCOUNT`] who last wrote `minutes_ago` (never if `None`).
    pub async fn insert_follower(&self, openid: &str, minutes_ago: Option<i64>) {
        sqlx::query(
            "INSERT INTO followers (account, openid, subscribed, subscribed_at, last_interaction_at)
             VALUES ($1, $2, true, now() - interval '30 days',
                     now() - make_interval(mins => $3::int))
             ON CONFLICT (account, openid)
             DO UPDATE SET last_interaction_at = EXCLUDED.last_interaction_at",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .bind(minutes_ago.map(|m| m as i32))
        .execute(&self.db)
        .await
        .expect("insert follower");
    }

    /// The events queued in the outbox, oldest first: subject and decoded payload.
    pub async fn outbox_ticket_events(&self) -> Vec<(String, proto::events::v1::TicketChanged)> {
        use prost::Message;
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT subject, payload FROM outbox WHERE subject LIKE 'interaction.%.ticket.%' ORDER BY id",
        )
        .fetch_all(&self.db)
        .await
        .expect("read outbox");
        rows.into_iter()
            .map(|(subject, payload)| {
                let event = proto::events::v1::TicketChanged::decode(payload.as_slice())
                    .expect("outbox payload is a TicketChanged");
                (subject, event)
            })
            .collect()
    }
}

/// A second instance of the service on the same database and NATS namespace (a
/// replica), for the tests of what several replicas must do once.
pub struct Replica {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a replica of this service with `extra` configuration.
    pub async fn spawn_replica(&self, extra: &[(&str, &str)]) -> Replica {
        let keys = format!("city-office:admin:{ADMIN_KEY}");
        let env = service_env(
            &self._test_db,
            &self._test_nats,
            [("API_KEYS", keys.as_str())]
                .into_iter()
                .chain(extra.iter().copied()),
        );
        let config = Config::from_env(&env).expect("test configuration is valid");
        let app = Application::build(config).await.expect("replica builds");
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = shutdown_rx.await;
        }));
        Replica {
            shutdown: Some(shutdown_tx),
            server: Some(server),
        }
    }
}

impl Replica {
    /// Stops the replica and waits for its drain.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("replica task").expect("clean shutdown");
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What the INTERACTION stream holds, as stats-svc and other consumers see it.
impl TestApp {
    /// The first `count` ticket events on the INTERACTION stream (published by the
    /// outbox relay), waiting up to 10 s for them: subject (without the namespace)
    /// and payload.
    pub async fn interaction_ticket_events(
        &self,
        count: usize,
    ) -> Vec<(String, proto::events::v1::TicketChanged)> {
        use async_nats::jetstream::consumer::pull;
        use futures::StreamExt;
        use prost::Message;
        let jetstream = async_nats::jetstream::new(self.nats().await);
        let stream = jetstream
            .get_stream(self.namespace().name("INTERACTION"))
            .await
            .expect("INTERACTION stream provisioned");
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: self.namespace().subject("interaction.*.ticket.>"),
                ..Default::default()
            })
            .await
            .expect("ephemeral consumer");
        let mut messages = consumer.messages().await.expect("consume");
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while events.len() < count {
            let message = tokio::time::timeout_at(deadline, messages.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {count} events arrived", events.len()))
                .expect("stream open")
                .expect("message");
            let event = proto::events::v1::TicketChanged::decode(message.payload.clone())
                .expect("a TicketChanged");
            let subject = self.namespace().strip(&message.subject).to_owned();
            message.ack().await.expect("ack");
            events.push((subject, event));
        }
        events
    }
}

/// The CreateReplyRule request for `rule` (its id dropped: the service assigns it),
/// without a request id.
pub fn new_reply_rule(
    rule: proto::interaction::v1::ReplyRule,
) -> proto::interaction::v1::CreateReplyRuleRequest {
    proto::interaction::v1::CreateReplyRuleRequest {
        account: rule.account,
        r#match: rule.r#match,
        patterns: rule.patterns,
        priority: rule.priority,
        text: rule.text,
        news: rule.news,
        resolves: rule.resolves,
        enabled: rule.enabled,
        request_id: String::new(),
    }
}

/// The CreateRoutingRule request for `rule` (its id dropped), without a request id.
pub fn new_routing_rule(
    rule: proto::interaction::v1::RoutingRule,
) -> proto::interaction::v1::CreateRoutingRuleRequest {
    proto::interaction::v1::CreateRoutingRuleRequest {
        account: rule.account,
        keywords: rule.keywords,
        category: rule.category,
        department: rule.department,
        priority: rule.priority,
        request_id: String::new(),
    }
}

impl TestApp {
    /// The deliveries of ticket `id`'s rating questions (the platform's own
    /// messages), oldest first.
    pub async fn rating_questions(&self, id: uuid::Uuid) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT delivery FROM ticket_messages
              WHERE ticket_id = $1 AND direction = 'outbound' AND author = 'system'
              ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// Waits until ticket `id`'s rating questions have left as `deliveries` say: a
    /// close answers once it is committed, and its question is asked after it.
    pub async fn wait_for_rating_questions(&self, id: uuid::Uuid, deliveries: &[&str]) {
        crate::citizen::eventually("the rating question is settled", || async {
            (self.rating_questions(id).await == deliveries).then_some(())
        })
        .await;
    }
}
