//! `Stack::start()`: interaction-svc with its own database and NATS namespace, the
//! mock WeChat API, and a way to run the real `govwx` binary against them;
//! `Stack::with_content()` adds content-svc (its own database, the same NATS).

use std::process::Stdio;

use interaction_svc::{Application, Config};
use platform::nats::Namespace;
use platform::testing::{TestDb, TestNats, service_env};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use wechat::message::InboundMessage;
use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET, MockWechat, SimConfig};
use wechat_sim::traffic::CitizenAction;

pub const ADMIN_KEY: &str = "admin-key-000001";
pub const SOCIAL_AGENT_KEY: &str = "social-agent-key-01";
pub const TRANSPORT_AGENT_KEY: &str = "transport-agent-key";
/// The local run's admin key (deploy/dev/run.sh), as the root README uses it.
pub const DEV_ADMIN_KEY: &str = "dev-admin-key-0001";
/// content-svc: the press office's editor and the new-media office's reviewer.
pub const EDITOR_KEY: &str = "press-editor-key-01";
pub const REVIEWER_KEY: &str = "media-reviewer-key-01";
/// The account the mock's demo app id belongs to.
pub const ACCOUNT: &str = "chenzhou";
/// The account's original id, the `ToUserName` of its callbacks.
const GH_ID: &str = "gh_chenzhou0001";

pub struct Stack {
    pub mock: MockWechat,
    pub db: PgPool,
    grpc_port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    content: Option<Content>,
    _test_db: TestDb,
    _test_nats: TestNats,
}

/// content-svc beside interaction-svc.
struct Content {
    grpc_port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _test_db: TestDb,
}

/// What a finished `govwx` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Stack {
    pub async fn start() -> Stack {
        platform::telemetry::init_test_tracing();
        let mock = MockWechat::start(SimConfig::default())
            .await
            .expect("mock api starts");
        let test_db = TestDb::new("govwx");
        let test_nats = TestNats::new();
        let keys = keys();
        let env = service_env(
            &test_db,
            &test_nats,
            [
                ("API_KEYS", keys.as_str()),
                ("WECHAT_API_BASE_URL", mock.base_url()),
                ("WECHAT_ACCOUNTS", ACCOUNT),
                ("WECHAT_CHENZHOU_APPID", DEMO_APPID),
                ("WECHAT_CHENZHOU_SECRET", DEMO_SECRET),
            ],
        );
        let config = Config::from_env(&env).expect("test configuration is valid");
        let app = Application::build(config).await.expect("service builds");
        let grpc_port = app.grpc_port();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = shutdown_rx.await;
        }));
        let db = PgPool::connect(&test_db.url())
            .await
            .expect("test database reachable");
        Stack {
            mock,
            db,
            grpc_port,
            shutdown: Some(shutdown_tx),
            server: Some(server),
            content: None,
            _test_db: test_db,
            _test_nats: test_nats,
        }
    }

    /// The stack with content-svc too (its own database, the same NATS namespace
    /// and mock API), as `deploy/dev/run.sh` runs them side by side.
    pub async fn with_content() -> Stack {
        let mut stack = Stack::start().await;
        let test_db = TestDb::new("govwx_content");
        let keys = keys();
        let env = service_env(
            &test_db,
            &stack._test_nats,
            [
                ("API_KEYS", keys.as_str()),
                ("WECHAT_API_BASE_URL", stack.mock.base_url()),
                // The example directory's accounts too: an install that names its
                // accounts imports services of those only.
                ("WECHAT_ACCOUNTS", "chenzhou,lincheng,lincheng_gov"),
                ("WECHAT_CHENZHOU_APPID", DEMO_APPID),
                ("WECHAT_CHENZHOU_SECRET", DEMO_SECRET),
                ("WECHAT_LINCHENG_APPID", "wx1c0000000000000a"),
                ("WECHAT_LINCHENG_SECRET", "lincheng-secret"),
                ("WECHAT_LINCHENG_GOV_APPID", "wx1c0000000000000b"),
                ("WECHAT_LINCHENG_GOV_SECRET", "lincheng-gov-secret"),
                // Its service hall on a free port, so suites run side by side.
                ("HALL_ADDR", "127.0.0.1:0"),
            ],
        );
        let config = content_svc::Config::from_env(&env).expect("content-svc configuration");
        let app = content_svc::Application::build(config)
            .await
            .expect("content-svc builds");
        let grpc_port = app.grpc_port();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = shutdown_rx.await;
        }));
        stack.content = Some(Content {
            grpc_port,
            shutdown: Some(shutdown_tx),
            server: Some(server),
            _test_db: test_db,
        });
        stack
    }

    /// `govwx` pointed at this stack's interaction-svc, with `key` in
    /// `GOVWX_API_KEY`; nothing from the caller's environment leaks in.
    pub fn govwx(&self, key: &str) -> tokio::process::Command {
        let mut command = self.command();
        command.env("GOVWX_API_KEY", key).env(
            "GOVWX_INTERACTION_ADDR",
            format!("127.0.0.1:{}", self.grpc_port),
        );
        if let Some(content) = &self.content {
            command.env(
                "GOVWX_CONTENT_ADDR",
                format!("127.0.0.1:{}", content.grpc_port),
            );
        }
        command
    }

    /// `govwx` with an empty environment: no key, no address.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_govwx"));
        command.env_clear().stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    /// interaction-svc's plaintext gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// Runs `govwx ARGS` with `key` and waits for it.
    pub async fn run(&self, key: &str, args: &[&str]) -> Run {
        let output = self
            .govwx(key)
            .args(args)
            .output()
            .await
            .expect("govwx runs");
        Run {
            code: output.status.code().expect("govwx exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    /// Runs `govwx ARGS` with `key`, expecting success.
    pub async fn ok(&self, key: &str, args: &[&str]) -> String {
        let run = self.run(key, args).await;
        assert_eq!(run.code, 0, "govwx {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// `govwx --json ARGS` with `key`, parsed.
    pub async fn json(&self, key: &str, args: &[&str]) -> serde_json::Value {
        let args: Vec<&str> = std::iter::once("--json")
            .chain(args.iter().copied())
            .collect();
        let stdout = self.ok(key, &args).await;
        serde_json::from_str(&stdout).expect("--json prints one JSON document")
    }

    /// Starts `govwx tickets watch --json` with `key`, reaching the service at
    /// `port`, and returns once it watches.
    pub async fn watch(&self, key: &str, port: u16) -> Watch {
        let mut child = self
            .govwx(key)
            .env("GOVWX_INTERACTION_ADDR", format!("127.0.0.1:{port}"))
            .args(["--json", "tickets", "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("govwx watch starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = stderr
            .next_line()
            .await
            .expect("stderr readable")
            .expect("watch says it is watching");
        assert!(line.starts_with("govwx: watching"), "{line}");
        Watch {
            _child: child,
            stdout,
            stderr,
        }
    }

    /// Inserts an open ticket of citizen `openid` for `department`, as the ticket
    /// flow opens them.
    pub async fn insert_ticket(&self, openid: &str, department: &str, summary: &str) -> String {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO tickets (id, account, department, openid, state, summary, opened_at,
                                  acknowledge_due_at, resolve_due_at)
             VALUES ($1, $2, $3, $4, 'open', $5, now() - interval '5 minutes',
                     now() + interval '1 day', now() + interval '3 days')",
        )
        .bind(id)
        .bind(ACCOUNT)
        .bind(department)
        .bind(openid)
        .bind(summary)
        .execute(&self.db)
        .await
        .expect("insert ticket");
        id.to_string()
    }

    /// A follower who wrote a minute ago, as the platform and the mock both know it
    /// (inside the 48-hour window, so answers are sent at once).
    pub async fn citizen_wrote(&self, openid: &str) {
        sqlx::query(
            "INSERT INTO followers (account, openid, subscribed, subscribed_at, last_interaction_at)
             VALUES ($1, $2, true, now() - interval '30 days', now() - interval '1 minute')",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .execute(&self.db)
        .await
        .expect("insert follower");
        self.mock
            .state()
            .record_interaction(
                DEMO_APPID,
                openid,
                chrono::Utc::now() - chrono::Duration::minutes(1),
            )
            .unwrap();
    }

    /// Citizen `openid` sends `text`: the callback the gateway would publish to
    /// WECHAT_INBOUND (its own `inbound_event` builds it), acked by JetStream.
    pub async fn citizen_says(&self, openid: &str, text: &str) {
        let now = chrono::Utc::now().timestamp() as u64;
        let msg_id = u64::from(uuid::Uuid::new_v4().as_fields().0) << 20;
        let action = CitizenAction::Text {
            content: text.to_owned(),
        };
        let xml = action.to_xml(GH_ID, openid, now, msg_id);
        let message = InboundMessage::parse(xml.as_bytes()).expect("the XML parses");
        let event = gateway::event::inbound_event(
            &Namespace::default(),
            ACCOUNT,
            &message,
            &xml,
            std::time::SystemTime::now(),
        );
        let suffix = event
            .subject
            .strip_prefix("wechat.inbound.")
            .expect("an inbound subject");
        let jetstream = async_nats::jetstream::new(self._test_nats.connect().await);
        platform::testing::publish_inbound(
            &jetstream,
            &self._test_nats.namespace,
            suffix,
            &event.event_id,
            event.payload.to_vec(),
        )
        .await;
    }

    /// Stops the services and waits for their drain.
    pub async fn stop(mut self) {
        if let Some(mut content) = self.content.take() {
            if let Some(shutdown) = content.shutdown.take() {
                let _ = shutdown.send(());
            }
            if let Some(server) = content.server.take() {
                server
                    .await
                    .expect("content-svc task")
                    .expect("clean shutdown");
            }
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("clean shutdown");
        }
    }
}

/// Every key of the test stack: interaction-svc's departments, content-svc's
/// editor and reviewer, and the local run's admin key.
fn keys() -> String {
    format!(
        "city-office:admin:{ADMIN_KEY},social-security:agent:{SOCIAL_AGENT_KEY},\
         transport:agent:{TRANSPORT_AGENT_KEY},city-office:admin:{DEV_ADMIN_KEY},\
         press:editor:{EDITOR_KEY},media:reviewer:{REVIEWER_KEY}"
    )
}

/// A running `govwx tickets watch --json`; killed when dropped.
pub struct Watch {
    _child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Watch {
    /// The first line it writes to stderr that contains `text`.
    pub async fn says(&mut self, text: &str) -> String {
        loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.stderr.next_line())
                    .await
                    .unwrap_or_else(|_| panic!("watch never said {text:?}"))
                    .expect("stderr readable")
                    .expect("watch still running");
            if line.contains(text) {
                return line;
            }
        }
    }

    /// The first event it prints of `kind` whose ticket has `field` = `value`,
    /// parsed (each line is one JSON document); earlier events are passed over.
    pub async fn until(&mut self, kind: &str, field: &str, value: &str) -> serde_json::Value {
        let mut passed = self.until_all(kind, field, value).await;
        passed.pop().expect("the event found")
    }

    /// The events it prints up to and including the first of `kind` whose ticket
    /// has `field` = `value`.
    pub async fn until_all(
        &mut self,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Vec<serde_json::Value> {
        let mut passed = Vec::new();
        loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.stdout.next_line())
                    .await
                    .unwrap_or_else(|_| panic!("watch printed no {kind} event for {value}"))
                    .expect("stdout readable")
                    .expect("watch still running");
            let event: serde_json::Value =
                serde_json::from_str(&line).expect("each watch line is a JSON document");
            let found = event["kind"] == kind && event["ticket"][field] == value;
            passed.push(event);
            if found {
                return passed;
            }
        }
    }
}
