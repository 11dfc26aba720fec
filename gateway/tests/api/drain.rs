//! A SIGTERM ends the gateway within `SHUTDOWN_GRACE` even while NATS cannot be
//! reached, so Kubernetes never has to kill it mid-flush.

use std::time::Duration;

use platform::Env;
use platform::testing::{ChaosProxy, ServiceProcess, TestNats};

const GRACE: Duration = Duration::from_secs(2);
/// Process exit and a loaded 2-core test machine, on top of the grace.
const MARGIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn sigterm_with_nats_cut_ends_the_process_within_the_grace_and_says_what_it_left() {
    let nats = TestNats::new();
    let proxy = ChaosProxy::start(nats.url()).await;
    let env = Env::from_pairs([
        ("NATS_URL", proxy.url()),
        ("NATS_PREFIX", nats.prefix.as_str()),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("SHUTDOWN_GRACE", "2s"),
    ]);
    let mut gateway = ServiceProcess::spawn(env!("CARGO_BIN_EXE_gateway"), &env);
    gateway.wait_ready(Duration::from_secs(30)).await;

    proxy.cut();
    gateway.wait_unready(Duration::from_secs(10)).await;
    gateway.terminate();

    let exited = gateway.wait_exit(GRACE + MARGIN).await;
    let output = gateway.output();
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
