//! The drain tests every service runs: its real binary, SIGTERM, and an exit within
//! `SHUTDOWN_GRACE` whatever NATS does.

use std::time::Duration;

use super::{ChaosProxy, ServiceProcess};
use crate::config::Env;

/// The `SHUTDOWN_GRACE` drain tests give a service.
pub const TEST_GRACE: Duration = Duration::from_secs(2);

/// Process exit on a loaded 2-core test machine, on top of the grace.
const MARGIN: Duration = Duration::from_secs(3);

/// Connecting, provisioning and migrating a fresh database.
const STARTUP: Duration = Duration::from_secs(60);

impl ServiceProcess {
    /// Sends SIGTERM and returns the output once the process exited; panics (with
    /// the output) unless it exits within [`TEST_GRACE`] and a margin.
    pub async fn assert_terminates_within_the_grace(&mut self) -> String {
        self.terminate();
        let exited = self.wait_exit(TEST_GRACE + MARGIN).await;
        let output = self.output();
        let Some(status) = exited else {
            panic!(
                "still running {:?} after SIGTERM:\n{output}",
                TEST_GRACE + MARGIN
            );
        };
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(
                status.signal(),
                None,
                "the signal's default action ended the process: no handler was installed yet, so nothing drained:\n{output}"
            );
        }
        output
    }
}

/// Runs `binary` with `env` (its NATS through a [`ChaosProxy`] and a grace of
/// [`TEST_GRACE`] set here), cuts NATS once it is ready, waits until it reports
/// unready (so the client noticed), sends SIGTERM, and asserts it exits within the
/// grace and logs both the drain and the NATS flush it could not finish.
pub async fn assert_sigterm_with_nats_cut_ends_within_the_grace(binary: &str, env: Env) {
    let nats_url = env
        .get("NATS_URL")
        .unwrap_or("nats://127.0.0.1:4222")
        .to_owned();
    let proxy = ChaosProxy::start(&nats_url).await;
    let env = env
        .with("NATS_URL", proxy.url())
        .with("SHUTDOWN_GRACE", format!("{}s", TEST_GRACE.as_secs()));
    let mut service = ServiceProcess::spawn(binary, &env);
    service.wait_ready(STARTUP).await;

    proxy.cut();
    service.wait_unready(Duration::from_secs(10)).await;
    let output = service.assert_terminates_within_the_grace().await;
    assert!(output.contains("draining"), "{output}");
    assert!(
        output.contains("nats flush"),
        "the unfinished flush is logged:\n{output}"
    );
}
