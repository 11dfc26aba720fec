//! `deadletters list` and `replay` against real NATS and PostgreSQL: a consumer run by
//! platform's runner gives up on a citizen's message, interaction-svc applies the same
//! message; once the first consumer is fixed, the replay is applied by it once and
//! interaction-svc, which receives it too, does not apply it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use interaction_svc::{Application, Config};
use platform::consumer::{EventHandler, HandleError, Received, StreamEvent};
use platform::inbound::InboundEvent;
use platform::nats::{ConsumerSpec, DEFAULT_MAX_ACK_PENDING, PATIENT_DELIVERIES, WECHAT_INBOUND};
use platform::shutdown::Drain;
use platform::testing::{TestDb, TestNats, service_env};
use sqlx::PgPool;
use wechat::message::InboundMessage;
use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET, MockWechat, SimConfig};
use wechat_sim::traffic::CitizenAction;

use crate::helpers::{ACCOUNT, Run};

const GH_ID: &str = "gh_chenzhou0001";
const OPENID: &str = "o-deadletter-citizen";

/// A consumer of every inbound callback that records what it applies, once per event
/// id (processed_events, as the services' consumers); it refuses everything while
/// `refuse` is set, as a service missing an account's configuration would.
struct Probe {
    db: PgPool,
    refuse: AtomicBool,
}

const PROBE: ConsumerSpec = ConsumerSpec {
    stream: WECHAT_INBOUND,
    durable: "probe-inbound",
    filter_subject: "wechat.inbound.>",
    max_deliver: PATIENT_DELIVERIES,
    ack_wait: Duration::from_secs(30),
    max_ack_pending: DEFAULT_MAX_ACK_PENDING,
};

impl EventHandler for Probe {
    const CONSUMER: ConsumerSpec = PROBE;
    type Event = InboundEvent;

    async fn handle(&self, event: &Received<InboundEvent>) -> Result<(), HandleError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(HandleError::Permanent(
                "account chenzhou is not configured".to_owned(),
            ));
        }
        let mut tx = self.db.begin().await.map_err(HandleError::database)?;
        if platform::db::claim_event(&mut tx, event.event.event_id())
            .await
            .map_err(HandleError::database)?
        {
            sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
                .bind(event.event.event_id())
                .execute(&mut *tx)
                .await
                .map_err(HandleError::database)?;
        }
        tx.commit().await.map_err(HandleError::database)?;
        Ok(())
    }
}

/// interaction-svc and the probe on one NATS namespace, each with its own database.
struct Setup {
    nats: TestNats,
    interaction_db: PgPool,
    probe: Arc<Probe>,
    drain: Drain,
    _mock: MockWechat,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dbs: (TestDb, TestDb),
}

impl Setup {
    async fn start() -> Self {
        platform::telemetry::init_test_tracing();
        let mock = MockWechat::start(SimConfig::default())
            .await
            .expect("mock api starts");
        let nats = TestNats::new();
        let interaction = TestDb::new("govwx_dl");
        let env = service_env(
            &interaction,
            &nats,
            [
                ("API_KEYS", "city-office:admin:admin-key-000001"),
                ("WECHAT_API_BASE_URL", mock.base_url()),
                ("WECHAT_ACCOUNTS", ACCOUNT),
                ("WECHAT_CHENZHOU_APPID", DEMO_APPID),
                ("WECHAT_CHENZHOU_SECRET", DEMO_SECRET),
            ],
        );
        let config = Config::from_env(&env).expect("test configuration is valid");
        let app = Application::build(config).await.expect("service builds");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let interaction_db = PgPool::connect(&interaction.url()).await.unwrap();

        let probe_db = TestDb::new("govwx_dl_probe");
        let options: sqlx::postgres::PgConnectOptions = probe_db.url().parse().unwrap();
        platform::db::create_database_if_absent(&options)
            .await
            .unwrap();
        let db = PgPool::connect(&probe_db.url()).await.unwrap();
        sqlx::raw_sql(platform::outbox::SCHEMA)
            .execute(&db)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE applied (event_id text NOT NULL)")
            .execute(&db)
            .await
            .unwrap();
        let probe = Arc::new(Probe {
            db,
            refuse: AtomicBool::new(true),
        });
        let drain = Drain::new();
        tokio::spawn(platform::consumer::supervise_consumer(
            jetstream::new(nats.connect().await),
            nats.namespace.clone(),
            "probe-svc",
            probe.clone(),
            drain.clone(),
        ));
        Self {
            nats,
            interaction_db,
            probe,
            drain,
            _mock: mock,
            shutdown,
            server,
            _dbs: (interaction, probe_db),
        }
    }

    /// `govwx ARGS` on this namespace, as an operator without a NATS user (the shared
    /// test server has none; nats_check.py proves the `ops` user's grants).
    async fn govwx(&self, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_govwx"))
            .env_clear()
            .env("NATS_URL", self.nats.url())
            .env("NATS_PREFIX", &self.nats.prefix)
            .args(args)
            .output()
            .await
            .expect("govwx runs");
        Run {
            code: output.status.code().expect("govwx exited"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    async fn letters(&self) -> Vec<serde_json::Value> {
        let run = self.govwx(&["--json", "deadletters", "list"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).expect("a JSON array")
    }

    /// A citizen's text, published to WECHAT_INBOUND as the gateway does; returns its
    /// event id.
    async fn citizen_says(&self, text: &str) -> String {
        let now = chrono::Utc::now().timestamp() as u64;
        let msg_id = u64::from(uuid::Uuid::new_v4().as_fields().0) << 20;
        let action = CitizenAction::Text {
            content: text.to_owned(),
        };
        let xml = action.to_xml(GH_ID, OPENID, now, msg_id);
        let message = InboundMessage::parse(xml.as_bytes()).expect("the XML parses");
        let event = gateway::event::inbound_event(
            &platform::nats::Namespace::default(),
            ACCOUNT,
            &message,
            &xml,
            std::time::SystemTime::now(),
        );
        let suffix = event.subject.strip_prefix("wechat.inbound.").unwrap();
        let js = jetstream::new(self.nats.connect().await);
        platform::testing::publish_inbound(
            &js,
            &self.nats.namespace,
            suffix,
            &event.event_id,
            event.payload.to_vec(),
        )
        .await;
        event.event_id
    }

    /// Waits until `durable` has acked every message of WECHAT_INBOUND up to `sequence`.
    async fn settled(&self, durable: &str, sequence: u64) {
        let js = jetstream::new(self.nats.connect().await);
        let stream = self.nats.namespace.name(WECHAT_INBOUND.name);
        let durable = self.nats.namespace.name(durable);
        for _ in 0..400 {
            if let Ok(info) = js
                .get_stream(&stream)
                .await
                .unwrap()
                .consumer_info(&durable)
                .await
                && info.ack_floor.stream_sequence >= sequence
                && info.num_ack_pending == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{durable} did not ack WECHAT_INBOUND up to {sequence} within 20 s");
    }

    async fn applied_by_probe(&self, event_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM applied WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&self.probe.db)
            .await
            .unwrap()
    }

    /// The citizen's messages in interaction-svc's ticket threads.
    async fn citizen_messages(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
             WHERE t.openid = $1 AND m.direction = 'inbound'",
        )
        .bind(OPENID)
        .fetch_one(&self.interaction_db)
        .await
        .unwrap()
    }

    async fn stop(self) {
        self.drain.begin();
        let _ = self.shutdown.send(());
        self.server.await.unwrap().expect("clean shutdown");
    }
}

/// Polls `probe` every 50 ms until it holds, for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} within 20 s");
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_its_replay_is_applied_once_by_each_consumer() {
    let setup = Setup::start().await;
    let event_id = setup.citizen_says("路灯不亮，三天了").await;

    // The probe gives up on the message at once; interaction-svc applies it.
    let mut letters = Vec::new();
    for _ in 0..400 {
        letters = setup.letters().await;
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["service"], "probe-svc");
    assert_eq!(letter["stream"], "WECHAT_INBOUND");
    assert_eq!(letter["subject"], "wechat.inbound.chenzhou.msg.text");
    assert_eq!(letter["stream_sequence"], 1);
    assert_eq!(letter["deliveries"], 1);
    assert_eq!(letter["reason"], "account chenzhou is not configured");
    assert_eq!(letter["event_id"], event_id.as_str());
    let sequence = letter["sequence"].as_u64().expect("the letter's sequence");
    let table = setup.govwx(&["deadletters", "list"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.starts_with("SEQ "), "{}", table.stdout);
    assert!(table.stdout.contains("probe-svc"), "{}", table.stdout);
    let others = setup
        .govwx(&["--json", "deadletters", "list", "--service", "stats-svc"])
        .await;
    assert_eq!(others.stdout.trim(), "[]", "{others:?}");
    setup.settled("interaction-inbound", 1).await;
    assert_eq!(setup.citizen_messages().await, 1);

    // A sequence that is no letter replays nothing, the good one included.
    let wrong = setup
        .govwx(&["deadletters", "replay", &sequence.to_string(), "999"])
        .await;
    assert_eq!(wrong.code, 65, "{wrong:?}");
    assert!(
        wrong
            .stderr
            .contains("nothing replayed: 999: no such letter"),
        "{wrong:?}"
    );

    // The cause is fixed; the replay, seconds after the original (inside WECHAT_INBOUND's
    // duplicate window), is stored and applied.
    setup.probe.refuse.store(false, Ordering::SeqCst);
    let replay = setup
        .govwx(&["deadletters", "replay", &sequence.to_string()])
        .await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert!(
        replay.stdout.starts_with(&format!(
            "{sequence}: replayed to wechat.inbound.chenzhou.msg.text: "
        )),
        "{replay:?}"
    );
    eventually("the probe applied the replay", || async {
        setup.applied_by_probe(&event_id).await == 1
    })
    .await;

    // Run again with --delete: stored once (a repeat of the same letter's replay), and
    // the letter is gone.
    let again = setup
        .govwx(&[
            "--json",
            "deadletters",
            "replay",
            "--delete",
            &sequence.to_string(),
        ])
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again[0]["duplicate"], true, "{again}");
    assert_eq!(again[0]["deleted"], true, "{again}");
    assert_eq!(again[0]["stream_sequence"], 2, "{again}");
    assert!(setup.letters().await.is_empty());

    // Both consumers received the replay; each applied the event once in all.
    setup.settled(PROBE.durable, 2).await;
    setup.settled("interaction-inbound", 2).await;
    assert_eq!(setup.applied_by_probe(&event_id).await, 1);
    assert_eq!(setup.citizen_messages().await, 1);
    setup.stop().await;
}

/// nats-server with the accounts of deploy/k8s/infra/nats-values.yaml, rendered by
/// nats_check.py as the chart renders them; the harness connects without credentials
/// (its unrestricted `stack` user), govwx as `ops`.
struct ValuesServer {
    url: String,
    ops_password: String,
    _server: tokio::process::Child,
    _scratch: platform::testing::Scratch,
}

impl ValuesServer {
    async fn start() -> Self {
        let scratch = platform::testing::Scratch::new("govwx-ops");
        let port = platform::testing::free_port();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let venv = repo.join(".local/k8s-venv/bin/python");
        let python = if venv.exists() {
            venv
        } else {
            "python3".into()
        };
        let secrets = scratch.path("secrets");
        let rendered = std::process::Command::new(&python)
            .arg(repo.join("deploy/k8s/nats_check.py"))
            .args(["render", "--port", &port.to_string(), "--store"])
            .arg(scratch.path("js"))
            .arg("--secrets")
            .arg(&secrets)
            .output()
            .expect("python runs");
        assert!(
            rendered.status.success(),
            "nats_check.py render failed (it needs PyYAML: deploy/k8s/check.sh installs it): {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let config = scratch.path("nats.conf");
        std::fs::write(&config, &rendered.stdout).unwrap();
        let mut server = tokio::process::Command::new("nats-server");
        server
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut ops_password = None;
        for line in std::fs::read_to_string(&secrets).unwrap().lines() {
            match line.split(' ').collect::<Vec<_>>()[..] {
                ["server", name, value] => {
                    server.env(name, value);
                }
                ["user", "ops", password] => ops_password = Some(password.to_owned()),
                _ => {}
            }
        }
        let server = server.spawn().expect("nats-server is installed");
        platform::testing::wait_for_port(port, "nats-server").await;
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            ops_password: ops_password.expect("nats-values.yaml has an ops user"),
            _server: server,
            _scratch: scratch,
        }
    }

    /// `govwx ARGS` as `ops` with `password`.
    async fn govwx_as_ops(&self, password: &str, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_govwx"))
            .env_clear()
            .env("NATS_URL", &self.url)
            .env("GOVWX_NATS_USER", "ops")
            .env("GOVWX_NATS_PASSWORD", password)
            .args(args)
            .output()
            .await
            .expect("govwx runs");
        Run {
            code: output.status.code().expect("govwx exited"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

#[tokio::test]
async fn the_ops_user_of_the_nats_values_lists_replays_and_deletes_a_dead_letter() {
    use prost::Message as _;
    let server = ValuesServer::start().await;
    // As the services would: their streams, a callback, and stats-svc's letter for it.
    let harness = jetstream::new(async_nats::connect(&server.url).await.unwrap());
    let none = platform::nats::Namespace::default();
    platform::nats::provision_streams(&harness, &none, &platform::nats::ALL_STREAMS)
        .await
        .unwrap();
    let original = b"an inbound callback".to_vec();
    platform::testing::publish_inbound(&harness, &none, "demo.msg.text", "e-1", original.clone())
        .await;
    let letter = proto::events::v1::DeadLetter {
        header: Some(proto::events::v1::EventHeader {
            event_id: "e-1".into(),
            account: "demo".into(),
            occurred_at: None,
        }),
        service: "stats-svc".into(),
        stream: "WECHAT_INBOUND".into(),
        subject: "wechat.inbound.demo.msg.text".into(),
        stream_sequence: 1,
        deliveries: 20,
        reason: "transient: database: pool timed out".into(),
        payload: original.clone(),
    };
    platform::testing::publish_event(
        &harness,
        &none,
        "deadletter.stats-svc.wechat_inbound",
        "stats-inbound:1",
        letter.encode_to_vec(),
    )
    .await;

    let wrong = server
        .govwx_as_ops("not-the-password", &["deadletters", "list"])
        .await;
    assert_eq!(wrong.code, 78, "{wrong:?}");
    assert!(wrong.stderr.contains("refused the user ops"), "{wrong:?}");

    let list = server
        .govwx_as_ops(&server.ops_password, &["--json", "deadletters", "list"])
        .await;
    assert_eq!(list.code, 0, "{list:?}");
    let letters: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(letters[0]["service"], "stats-svc", "{letters}");
    assert_eq!(letters[0]["sequence"], 1, "{letters}");

    let replay = server
        .govwx_as_ops(
            &server.ops_password,
            &["deadletters", "replay", "--delete", "1"],
        )
        .await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert_eq!(
        replay.stdout.trim(),
        "1: replayed to wechat.inbound.demo.msg.text: WECHAT_INBOUND 2; letter deleted"
    );
    let replayed = harness
        .get_stream("WECHAT_INBOUND")
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    assert_eq!(replayed.subject.as_str(), "wechat.inbound.demo.msg.text");
    assert_eq!(replayed.payload.to_vec(), original);
    let empty = server
        .govwx_as_ops(&server.ops_password, &["deadletters", "list"])
        .await;
    assert_eq!(empty.stdout.trim(), "no dead letters", "{empty:?}");
}
