//! The platform layer against real NATS and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use platform::config::Env;
use platform::db::{DbConfig, connect_and_migrate};
use platform::nats::{self, ConsumerSpec, NatsConfig, WECHAT_INBOUND};
use platform::service::{ServiceConfig, ServiceDefaults, ServiceRuntime};
use platform::testing::{TestDb, TestNats, service_env};

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

/// A JetStream context for `test_nats` with every stream provisioned.
async fn with_streams(test_nats: &TestNats) -> jetstream::Context {
    let js = jetstream_for(test_nats).await;
    nats::provision_streams(&js, &test_nats.namespace, &nats::ALL_STREAMS)
        .await
        .unwrap();
    js
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let test_nats = TestNats::new();
    let js = with_streams(&test_nats).await;
    let ns = &test_nats.namespace;
    let spec = ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable: "probe",
        filter_subject: "wechat.inbound.>",
        max_deliver: 3,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
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

/// Every durable had the server's default max_ack_pending (1000): a consumer whose
/// waiting messages (`HandleError::NotYet`, NAKed with a delay) reached it was delivered
/// nothing new.
#[tokio::test]
async fn a_new_durable_bounds_its_unacked_messages_as_its_spec_says() {
    let test_nats = TestNats::new();
    let js = with_streams(&test_nats).await;
    let ns = &test_nats.namespace;
    let spec = ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable: "bounded",
        filter_subject: "wechat.inbound.>",
        max_deliver: 3,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: nats::WAITING_MAX_ACK_PENDING,
    };
    nats::provision_consumer(&js, ns, &spec).await.unwrap();
    let mut on_server: jetstream::consumer::PullConsumer = js
        .get_stream(ns.name(WECHAT_INBOUND.name))
        .await
        .unwrap()
        .get_consumer(&ns.name(spec.durable))
        .await
        .unwrap();
    let config = &on_server.info().await.unwrap().config;
    assert_eq!(config.max_ack_pending, nats::WAITING_MAX_ACK_PENDING);
}

/// An install made before a release gave its durables their own max_ack_pending keeps
/// its durables (and their position), so provisioning must change the bound in place.
#[tokio::test]
async fn an_existing_durable_takes_the_specs_max_ack_pending_and_keeps_its_place() {
    let test_nats = TestNats::new();
    let js = with_streams(&test_nats).await;
    let ns = &test_nats.namespace;
    let spec = ConsumerSpec {
        stream: WECHAT_INBOUND,
        durable: "older",
        filter_subject: "wechat.inbound.>",
        max_deliver: 3,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: nats::DEFAULT_MAX_ACK_PENDING,
    };
    let stream = js.get_stream(ns.name(WECHAT_INBOUND.name)).await.unwrap();
    // As an earlier release left it: everything the spec asks but max_ack_pending,
    // which the server filled in with its default.
    let mut older = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(ns.name(spec.durable)),
            filter_subject: ns.subject(spec.filter_subject),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_deliver: -1,
            ack_wait: spec.ack_wait,
            ..Default::default()
        })
        .await
        .unwrap();
    // Its place: three events, the first two handled.
    for n in 0..3 {
        js.publish(
            ns.subject(&format!("wechat.inbound.place.{n}")),
            "event".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let mut handled = older.fetch().max_messages(2).messages().await.unwrap();
    while let Some(message) = handled.next().await {
        message.unwrap().double_ack().await.unwrap();
    }
    let before = older.info().await.unwrap().clone();
    assert_eq!(before.config.max_ack_pending, 1000, "the server's default");
    assert_eq!(
        (before.ack_floor.stream_sequence, before.num_pending),
        (2, 1)
    );

    nats::provision_consumer(&js, ns, &spec).await.unwrap();
    let mut on_server: jetstream::consumer::PullConsumer =
        stream.get_consumer(&ns.name(spec.durable)).await.unwrap();
    let after = on_server.info().await.unwrap().clone();
    assert_eq!(after.config.max_ack_pending, spec.max_ack_pending);
    assert_eq!(after.created, before.created, "the durable was recreated");
    assert_eq!(
        (after.ack_floor.stream_sequence, after.num_pending),
        (2, 1),
        "the durable lost its place"
    );

    // A later release lowering it is applied too.
    let lower = ConsumerSpec {
        max_ack_pending: 2_000,
        ..spec
    };
    nats::provision_consumer(&js, ns, &lower).await.unwrap();
    let config = &on_server.info().await.unwrap().config;
    assert_eq!(config.max_ack_pending, 2_000);
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
async fn replicas_creating_one_database_at_once_all_succeed() {
    let test_db = TestDb::new("platform_race");
    let env = Env::from_pairs([("DATABASE_URL", test_db.url())]);
    let config = DbConfig::from_env(&env, "unused").unwrap();
    // Twelve at once, as pods and the migration Job of a first install: the losers
    // meet "already exists" in one wording or the other.
    let created = futures::future::join_all(
        (0..12).map(|_| platform::db::create_database_if_absent(&config.options)),
    )
    .await;
    for result in created {
        result.unwrap();
    }
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
async fn startup_waits_for_a_postgres_that_comes_up_after_it() {
    let test_db = TestDb::new("late_postgres");
    // A port nothing listens on yet: PostgreSQL "restarting" when the pod starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let real: std::net::SocketAddr = {
        let server = platform::testing::test_database_server();
        let host_port = server.rsplit('@').next().unwrap().trim_end_matches('/');
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/{}", test_db.name);
    let env = Env::from_pairs([("DATABASE_URL", url.as_str())]);
    let config = DbConfig::from_env(&env, "unused").unwrap();
    let mut starting =
        tokio::spawn(async move { connect_and_migrate(&config, &TEST_MIGRATOR).await });
    // Refused connections meanwhile (each fails in well under a millisecond): start-up
    // must still be trying half a second later.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut starting).await;
    assert!(early.is_err(), "start-up gave up at once: {early:?}");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(real).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let pool = tokio::time::timeout(Duration::from_secs(60), starting)
        .await
        .expect("start-up did not finish once postgres was there")
        .unwrap()
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    pool.close().await;
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
    // It reads and writes no stream.
    let runtime = ServiceRuntime::start("platform-test", config, &TEST_MIGRATOR, &[])
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
