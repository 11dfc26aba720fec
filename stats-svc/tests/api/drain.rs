//! A SIGTERM ends stats-svc within `SHUTDOWN_GRACE` even while NATS or PostgreSQL
//! cannot be reached, so Kubernetes never has to kill it mid-drain.

use std::time::Duration;

use platform::testing::{
    ChaosProxy, ServiceProcess, TEST_GRACE, TestDb, TestNats,
    assert_sigterm_with_nats_cut_ends_within_the_grace, service_env,
};
use prost::Message as _;

use crate::helpers::text_message;

#[tokio::test]
async fn sigterm_with_nats_cut_ends_the_process_within_the_grace_and_says_what_it_left() {
    let (db, nats) = (TestDb::new("stats"), TestNats::new());
    let env = service_env(&db, &nats, []);
    assert_sigterm_with_nats_cut_ends_within_the_grace(env!("CARGO_BIN_EXE_stats-svc"), env).await;
}

#[tokio::test]
async fn sigterm_with_postgres_blackholed_and_an_event_in_hand_ends_the_process_within_the_grace() {
    let (db, nats) = (TestDb::new("stats"), TestNats::new());
    let postgres = ChaosProxy::start(&db.url()).await;
    let env = service_env(&db, &nats, [])
        .with("SHUTDOWN_GRACE", format!("{}s", TEST_GRACE.as_secs()))
        .with("DATABASE_URL", postgres.url());
    let mut service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_stats-svc"), &env);
    service.wait_ready(Duration::from_secs(60)).await;

    // Silence rather than refusal: the consumer's handler waits on the database
    // instead of failing fast, the hardest case for a drain.
    postgres.blackhole();
    let jetstream = async_nats::jetstream::new(nats.connect().await);
    let event = text_message("chenzhou", "chenzhou:o1:2001", 1_780_000_000);
    platform::testing::publish_inbound(
        &jetstream,
        &nats.namespace,
        "chenzhou.msg.text",
        "chenzhou:o1:2001",
        event.encode_to_vec(),
    )
    .await;
    service.wait_unready(Duration::from_secs(10)).await;
    service.assert_terminates_within_the_grace().await;
}
