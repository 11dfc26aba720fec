//! Failure injection: the `ChaosProxy` fixture itself against real PostgreSQL and
//! NATS, and the drain runner ending on time while NATS is gone.

use std::time::{Duration, Instant};

use platform::db::{DbConfig, connect_and_migrate};
use platform::service::{ServiceConfig, ServiceDefaults, ServiceRuntime};
use platform::shutdown::{Drain, DrainRunner};
use platform::testing::{ChaosProxy, TestDb, TestNats, service_env, test_database_server};
use sqlx::{Connection, PgConnection};

static TEST_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

/// Patience for things that happen "at once" on a loaded test machine.
const SOON: Duration = Duration::from_secs(10);

async fn select_one(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT 1").fetch_one(conn).await
}

/// A migrated test database, and a pool straight to it for checking what committed.
async fn widgets_db() -> (TestDb, sqlx::PgPool) {
    let test_db = TestDb::new("chaos");
    let env = platform::Env::from_pairs([("DATABASE_URL", test_db.url())]);
    let config = DbConfig::from_env(&env, "unused").unwrap();
    let pool = connect_and_migrate(&config, &TEST_MIGRATOR).await.unwrap();
    (test_db, pool)
}

async fn widget_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM widgets")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_postgres_connection_through_the_proxy_fails_after_cut_and_a_new_one_works_after_restore()
{
    let proxy = ChaosProxy::start(&format!("{}/postgres", test_database_server())).await;
    let mut conn = PgConnection::connect(proxy.url()).await.unwrap();
    assert_eq!(select_one(&mut conn).await.unwrap(), 1);

    proxy.cut();
    assert!(select_one(&mut conn).await.is_err(), "the cut connection");
    assert!(
        PgConnection::connect(proxy.url()).await.is_err(),
        "a new connection while cut"
    );

    proxy.restore();
    let mut again = PgConnection::connect(proxy.url()).await.unwrap();
    assert_eq!(select_one(&mut again).await.unwrap(), 1);
}

#[tokio::test]
async fn a_transaction_cut_before_its_commit_leaves_nothing_behind() {
    let (test_db, direct) = widgets_db().await;
    let proxy = ChaosProxy::start(&test_db.url()).await;
    let mut conn = PgConnection::connect(proxy.url()).await.unwrap();

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO widgets (id, name) VALUES (1, 'cut')")
        .execute(&mut *tx)
        .await
        .unwrap();
    proxy.cut();
    assert!(tx.commit().await.is_err());

    assert_eq!(widget_count(&direct).await, 0);
}

#[tokio::test]
async fn cut_after_delivers_half_a_query_and_the_server_runs_none_of_it() {
    let (test_db, direct) = widgets_db().await;
    let proxy = ChaosProxy::start(&test_db.url()).await;
    let mut conn = PgConnection::connect(proxy.url()).await.unwrap();

    // The INSERT's message is longer than 20 bytes: the server gets a truncated one.
    proxy.cut_after(20);
    let insert = sqlx::query("INSERT INTO widgets (id, name) VALUES (2, 'half')")
        .execute(&mut conn)
        .await;
    assert!(insert.is_err());
    assert!(
        PgConnection::connect(proxy.url()).await.is_err(),
        "the link stays cut"
    );

    assert_eq!(widget_count(&direct).await, 0);
    proxy.restore();
    let mut again = PgConnection::connect(proxy.url()).await.unwrap();
    assert_eq!(select_one(&mut again).await.unwrap(), 1);
}

#[tokio::test]
async fn a_blackholed_link_stalls_without_an_error_and_catches_up_after_restore() {
    let proxy = ChaosProxy::start(&format!("{}/postgres", test_database_server())).await;
    let mut conn = PgConnection::connect(proxy.url()).await.unwrap();

    proxy.blackhole();
    let stalled = tokio::time::timeout(Duration::from_millis(500), select_one(&mut conn)).await;
    assert!(stalled.is_err(), "no answer and no error while blackholed");
    assert_eq!(proxy.open_connections(), 1, "nothing was closed");

    proxy.restore();
    let mut again = PgConnection::connect(proxy.url()).await.unwrap();
    assert_eq!(select_one(&mut again).await.unwrap(), 1);
}

#[tokio::test]
async fn a_nats_client_through_the_proxy_loses_its_link_on_cut_and_reconnects_after_restore() {
    let proxy = ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(proxy.url())
        .await
        .unwrap();
    let connected = async_nats::connection::State::Connected;
    wait_for(|| client.connection_state() == connected).await;
    let first = proxy.accepted_connections();

    proxy.cut();
    wait_for(|| client.connection_state() != connected).await;

    proxy.restore();
    wait_for(|| client.connection_state() == connected).await;
    assert!(
        proxy.accepted_connections() > first,
        "the client reconnected"
    );
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "back".into()).await.unwrap();
    let message = tokio::time::timeout(SOON, futures::StreamExt::next(&mut echo))
        .await
        .expect("the server echoes our message after the restore")
        .unwrap();
    assert_eq!(message.payload.as_ref(), b"back");
}

const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "platform-test",
    database: "platform_test",
    grpc_port: 0,
    admin_port: 0,
};

/// A runtime whose NATS link goes through `proxy`, with a 1-second grace.
async fn runtime_behind(
    proxy: &ChaosProxy,
    test_db: &TestDb,
    test_nats: &TestNats,
) -> ServiceRuntime {
    let env =
        service_env(test_db, test_nats, [("SHUTDOWN_GRACE", "1s")]).with("NATS_URL", proxy.url());
    let config = ServiceConfig::from_env(&env, DEFAULTS).unwrap();
    // The stream its in-flight task publishes to.
    let streams = [platform::nats::WECHAT_INBOUND];
    ServiceRuntime::start("platform-test", config, &TEST_MIGRATOR, &streams)
        .await
        .unwrap()
}

/// Serves `runtime` with a task that publishes to JetStream and ignores the stop,
/// breaks the link with `fault`, shuts down, and returns how long the drain took.
async fn drain_duration(
    runtime: ServiceRuntime,
    proxy: &ChaosProxy,
    fault: fn(&ChaosProxy),
) -> Duration {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let jetstream = runtime.jetstream.clone();
    let subject = runtime.namespace.subject("wechat.inbound.demo.msg.text");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    runtime.drain.spawn(async move {
        let _ = started_tx.send(());
        // Waits for an ack that cannot come while the link is broken.
        loop {
            if let Ok(ack) = jetstream.publish(subject.clone(), "x".into()).await {
                let _ = ack.await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let server = tokio::spawn(
        runtime.serve(tonic::service::Routes::default(), &[], async {
            let _ = stop_rx.await;
        }),
    );
    started_rx.await.unwrap();
    fault(proxy);
    let asked = Instant::now();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(SOON, server)
        .await
        .expect("the drain ended")
        .unwrap()
        .unwrap();
    asked.elapsed()
}

#[tokio::test]
async fn the_drain_ends_within_its_grace_while_nats_is_cut() {
    let (test_db, test_nats) = (TestDb::new("platform"), TestNats::new());
    let proxy = ChaosProxy::start(test_nats.url()).await;
    let runtime = runtime_behind(&proxy, &test_db, &test_nats).await;
    let took = drain_duration(runtime, &proxy, ChaosProxy::cut).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn the_drain_ends_within_its_grace_while_nats_is_blackholed() {
    let (test_db, test_nats) = (TestDb::new("platform"), TestNats::new());
    let proxy = ChaosProxy::start(test_nats.url()).await;
    let runtime = runtime_behind(&proxy, &test_db, &test_nats).await;
    let took = drain_duration(runtime, &proxy, ChaosProxy::blackhole).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn work_that_hangs_past_the_deadline_leaves_the_nats_flush_its_time() {
    let test_nats = TestNats::new();
    let drain = Drain::new();
    drain.spawn(std::future::pending::<()>());
    let report = DrainRunner::new("platform-test", Duration::from_secs(1), drain)
        .nats(test_nats.connect().await)
        .drain_now()
        .await;
    assert_eq!(report.unfinished_tasks, 1);
    assert!(report.nats_flushed, "{report:?}");
    assert!(report.elapsed <= Duration::from_millis(1100), "{report:?}");
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {SOON:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
