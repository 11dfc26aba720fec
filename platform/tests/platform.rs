//! The platform layer against real NATS and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use platform::config::Env;
use platform::consumer::{Delivery, EventHandler, HandleError, run_consumer};
use platform::db::{DbConfig, connect_and_migrate};
use platform::nats::{self, ConsumerSpec, NatsConfig, WECHAT_INBOUND};
use platform::service::{ServiceConfig, ServiceDefaults, ServiceRuntime};
use platform::shutdown::Drain;
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;

static TEST_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "platform-test",
    database: "platform_test",
    grpc_port: 0,
    admin_port: 0,
};

async fn jetstream_for(test_nats: &TestNats) -> jetstream::Context {
    jetstream::new(test_nats.connect().await)
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let test_nats = TestNats::new();
    let js = jetstream_for(&test_nats).await;
    let ns = &test_nats.namespace;
    nats::provision_streams(&js, ns, &nats::ALL_STREAMS)
        .await
        .unwrap();
    let spec = ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable: "probe",
        filter_subject: "wechat.inbound.>",
        max_deliver: 3,
        ack_wait: Duration::from_secs(30),
    };
    let first_consumer = nats::provision_consumer(&js, ns, &spec)
        .await
        .unwrap()
        .cached_info()
        .clone();
    let mut before = Vec::new();
    for spec in nats::ALL_STREAMS {
        let mut stream = js.get_stream(ns.name(spec.name)).await.unwrap();
        let info = stream.info().await.unwrap().clone();
        assert_eq!(info.config.subjects, vec![ns.subject(spec.subjects)]);
        before.push((info.created, info.config));
    }

    nats::provision_streams(&js, ns, &nats::ALL_STREAMS)
        .await
        .unwrap();
    let second_consumer = nats::provision_consumer(&js, ns, &spec)
        .await
        .unwrap()
        .cached_info()
        .clone();
    for (spec, (created, config)) in nats::ALL_STREAMS.iter().zip(before) {
        let mut stream = js.get_stream(ns.name(spec.name)).await.unwrap();
        let info = stream.info().await.unwrap().clone();
        assert_eq!(info.created, created, "stream {} was recreated", spec.name);
        assert_eq!(info.config, config, "stream {} changed", spec.name);
    }
    assert_eq!(first_consumer.created, second_consumer.created);
    assert_eq!(
        first_consumer.config.filter_subject,
        second_consumer.config.filter_subject
    );
}

#[tokio::test]
async fn changed_stream_settings_are_updated_in_place() {
    let test_nats = TestNats::new();
    let js = jetstream_for(&test_nats).await;
    let ns = &test_nats.namespace;
    let narrow = nats::StreamSpec {
        duplicate_window: Duration::from_secs(30),
        ..WECHAT_INBOUND
    };
    nats::provision_streams(&js, ns, &[narrow]).await.unwrap();
    nats::provision_streams(&js, ns, &[WECHAT_INBOUND])
        .await
        .unwrap();
    let mut stream = js.get_stream(ns.name("WECHAT_INBOUND")).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().config.duplicate_window,
        WECHAT_INBOUND.duplicate_window
    );
}

#[tokio::test]
async fn migrations_apply_on_a_fresh_database_that_is_created_if_absent() {
    let test_db = TestDb::new("platform");
    let env = Env::from_pairs([("DATABASE_URL", test_db.url())]);
    let config = DbConfig::from_env(&env, "unused").unwrap();
    let pool = connect_and_migrate(&config, &TEST_MIGRATOR).await.unwrap();
    sqlx::query("INSERT INTO widgets (id, name) VALUES (1, '社保')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // Again, as a second replica would: nothing is re-applied, nothing is lost.
    let pool = connect_and_migrate(&config, &TEST_MIGRATOR).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM widgets WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "社保");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
}

#[tokio::test]
async fn unreachable_nats_is_a_clear_startup_error() {
    let env = Env::from_pairs([
        ("NATS_URL", "nats://127.0.0.1:1"),
        ("NATS_CONNECT_TIMEOUT", "300ms"),
    ]);
    let config = NatsConfig::from_env(&env).unwrap();
    let error = nats::connect(&config, "test").await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot connect to nats at nats://127.0.0.1:1"),
        "{error}"
    );
}

#[tokio::test]
async fn service_turns_ready_then_fails_readiness_and_drains_in_flight_work_on_shutdown() {
    let test_db = TestDb::new("platform");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [("API_KEYS", "ops:admin:ops-key-123456")],
    );
    let config = ServiceConfig::from_env(&env, DEFAULTS).unwrap();
    let runtime = ServiceRuntime::start("platform-test", config, &TEST_MIGRATOR)
        .await
        .unwrap();
    let admin = format!("http://127.0.0.1:{}", runtime.admin_port());
    let drain = runtime.drain.clone();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        runtime.serve(tonic::service::Routes::default(), &[], async {
            let _ = stop_rx.await;
        }),
    );
    let http = |url: String| async move {
        let response = reqwest::get(url).await.expect("admin port answers");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    };
    assert_eq!(
        http(format!("{admin}/readyz")).await,
        (200, "ready".to_owned())
    );
    assert_eq!(http(format!("{admin}/healthz")).await.0, 200);

    // In-flight work: it sees the stop, reports, and finishes only when told to.
    let (saw_stop_tx, saw_stop_rx) = tokio::sync::oneshot::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let finished_flag = finished.clone();
    let watcher = drain.clone();
    drain.spawn(async move {
        watcher.stopping().cancelled().await;
        let _ = saw_stop_tx.send(());
        let _ = finish_rx.await;
        finished_flag.store(true, Ordering::SeqCst);
    });

    stop_tx.send(()).unwrap();
    saw_stop_rx.await.unwrap();
    let (status, body) = http(format!("{admin}/readyz")).await;
    assert_eq!(status, 503);
    assert!(body.contains("draining"), "{body}");
    assert!(
        !server.is_finished(),
        "the drain must wait for in-flight work"
    );

    finish_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(finished.load(Ordering::SeqCst));
}

/// Fails the first `failures` deliveries of each message, then succeeds.
struct Flaky {
    failures: i64,
    permanent: bool,
    handled: AtomicUsize,
}

impl EventHandler for Flaky {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandleError> {
        if delivery.delivered <= self.failures {
            return Err(if self.permanent {
                HandleError::Permanent("cannot decode".to_owned())
            } else {
                HandleError::Transient("database hiccup".to_owned())
            });
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn publish_inbound(js: &jetstream::Context, test_nats: &TestNats, event_id: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id);
    js.publish_with_headers(
        test_nats.namespace.subject("wechat.inbound.city.msg.text"),
        headers,
        "payload".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

fn spec(durable: &'static str, max_deliver: i64) -> ConsumerSpec {
    ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable,
        filter_subject: "wechat.inbound.>",
        max_deliver,
        ack_wait: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_handler_succeeds() {
    let test_nats = TestNats::new();
    let js = jetstream_for(&test_nats).await;
    nats::provision_streams(&js, &test_nats.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    publish_inbound(&js, &test_nats, "city:o1:1").await;
    let handler = Arc::new(Flaky {
        failures: 1,
        permanent: false,
        handled: AtomicUsize::new(0),
    });
    let drain = Drain::new();
    let runner = tokio::spawn(run_consumer(
        js.clone(),
        test_nats.namespace.clone(),
        "test",
        spec("flaky", 5),
        handler.clone(),
        drain.clone(),
    ));
    let consumer_name = test_nats.namespace.name("flaky");
    wait_until(|| async {
        let stream = js
            .get_stream(test_nats.namespace.name("WECHAT_INBOUND"))
            .await
            .unwrap();
        let Ok(mut consumer) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&consumer_name)
            .await
        else {
            return false;
        };
        let info = consumer.info().await.unwrap();
        info.num_ack_pending == 0 && info.num_pending == 0 && info.delivered.stream_sequence == 1
    })
    .await;
    drain.begin();
    runner.await.unwrap().unwrap();
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn permanent_failures_go_to_the_dead_letter_stream_with_the_reason() {
    let test_nats = TestNats::new();
    let js = jetstream_for(&test_nats).await;
    nats::provision_streams(&js, &test_nats.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    publish_inbound(&js, &test_nats, "city:o1:2").await;
    let handler = Arc::new(Flaky {
        failures: 99,
        permanent: true,
        handled: AtomicUsize::new(0),
    });
    let drain = Drain::new();
    let runner = tokio::spawn(run_consumer(
        js.clone(),
        test_nats.namespace.clone(),
        "test",
        spec("doomed", 5),
        handler,
        drain.clone(),
    ));
    let dead_letters = js
        .get_stream(test_nats.namespace.name("DEADLETTER"))
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let letter = dead_letters
        .messages()
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        letter.subject.as_str(),
        test_nats
            .namespace
            .subject("deadletter.test.wechat_inbound")
    );
    let letter = proto::events::v1::DeadLetter::decode(letter.payload.clone()).unwrap();
    assert_eq!(letter.reason, "cannot decode");
    let header = letter.header.unwrap();
    assert_eq!(header.event_id, "city:o1:2");
    assert_eq!(header.account, "city");
    assert_eq!(letter.payload, b"payload");
    drain.begin();
    runner.await.unwrap().unwrap();
}

async fn wait_until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10s");
}
