//! `spawn_app()`: a service in-process on port 0 with its own database and NATS namespace.

use interaction_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use proto::interaction::v1::interaction_service_client::InteractionServiceClient;
use sqlx::PgPool;
use tonic::transport::Channel;

pub const ADMIN_KEY: &str = "admin-key-000001";
pub const SOCIAL_AGENT_KEY: &str = "social-agent-key-01";
pub const TRANSPORT_AGENT_KEY: &str = "transport-agent-key";
pub const EDITOR_KEY: &str = "editor-only-key-001";

pub struct TestApp {
    pub grpc_port: u16,
    pub admin_port: u16,
    pub db: PgPool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _test_db: TestDb,
    _test_nats: TestNats,
}

pub async fn spawn_app() -> TestApp {
    platform::telemetry::init_test_tracing();
    let test_db = TestDb::new("interaction");
    let test_nats = TestNats::new();
    let keys = format!(
        "city-office:admin:{ADMIN_KEY},social-security:agent:{SOCIAL_AGENT_KEY},\
         transport:agent:{TRANSPORT_AGENT_KEY},publicity:editor:{EDITOR_KEY}"
    );
    let env = service_env(&test_db, &test_nats, [("API_KEYS", keys.as_str())]);
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build(config).await.expect("service builds");
    let grpc_port = app.grpc_port();
    let admin_port = app.admin_port();
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
        shutdown: Some(shutdown_tx),
        server: Some(server),
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

    /// Stops the service and waits for its drain to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("clean shutdown");
        }
    }

    /// Inserts a ticket directly, as the ticket flow will.
    pub async fn insert_ticket(
        &self,
        department: &str,
        state: &str,
        opened_minutes_ago: i64,
    ) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO tickets (id, account, department, openid, state, summary, opened_at,
                                  acknowledge_due_at, resolve_due_at)
             VALUES ($1, 'chenzhou', $2, 'o-citizen', $3, '路灯不亮',
                     now() - make_interval(mins => $4::int),
                     now() + interval '1 day', now() + interval '3 days')",
        )
        .bind(id)
        .bind(department)
        .bind(state)
        .bind(opened_minutes_ago as i32)
        .execute(&self.db)
        .await
        .expect("insert ticket");
        id
    }
}
