//! A SIGTERM ends interaction-svc within `SHUTDOWN_GRACE` even while NATS cannot be
//! reached, so Kubernetes never has to kill it mid-drain.

use std::time::Duration;

use platform::testing::{ChaosProxy, ServiceProcess, TestDb, TestNats, service_env};

const GRACE: Duration = Duration::from_secs(2);
/// Process exit and a loaded 2-core test machine, on top of the grace.
const MARGIN: Duration = Duration::from_secs(3);
/// Connecting, provisioning and migrating a fresh database.
const STARTUP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn sigterm_with_nats_cut_ends_the_process_within_the_grace_and_says_what_it_left() {
    let (db, nats) = (TestDb::new("interaction"), TestNats::new());
    let proxy = ChaosProxy::start(nats.url()).await;
    let env = service_env(&db, &nats, [("SHUTDOWN_GRACE", "2s")]).with("NATS_URL", proxy.url());
    let mut service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_interaction-svc"), &env);
    service.wait_ready(STARTUP).await;

    proxy.cut();
    service.wait_unready(Duration::from_secs(10)).await;
    service.terminate();

    let exited = service.wait_exit(GRACE + MARGIN).await;
    let output = service.output();
    assert!(
        exited.is_some(),
        "still running {:?} after SIGTERM:\n{output}",
        GRACE + MARGIN
    );
    assert!(output.contains("draining"), "{output}");
    assert!(
        output.contains("nats flush"),
        "the unfinished flush is logged:\n{output}"
    );
}
