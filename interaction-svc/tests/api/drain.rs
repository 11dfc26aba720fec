//! A SIGTERM ends interaction-svc within `SHUTDOWN_GRACE` even while NATS cannot be
//! reached, so Kubernetes never has to kill it mid-drain.

use platform::testing::{
    TestDb, TestNats, assert_sigterm_with_nats_cut_ends_within_the_grace, service_env,
};

#[tokio::test]
async fn sigterm_with_nats_cut_ends_the_process_within_the_grace_and_says_what_it_left() {
    let (db, nats) = (TestDb::new("interaction"), TestNats::new());
    let env = service_env(&db, &nats, []);
    assert_sigterm_with_nats_cut_ends_within_the_grace(env!("CARGO_BIN_EXE_interaction-svc"), env)
        .await;
}
