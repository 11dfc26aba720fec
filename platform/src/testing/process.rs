//! [`ServiceProcess`]: a service's real binary as a child process, for what only a
//! process can show (signals, the exit itself, output after the runtime stops).

use std::net::TcpListener;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::config::Env;

/// A running service binary, killed if still running when dropped. Its output
/// (stdout and stderr, one entry a line) is kept for assertions and shown when a
/// test fails through [`ServiceProcess::output`].
pub struct ServiceProcess {
    child: Child,
    admin: String,
    output: Arc<Mutex<Vec<String>>>,
    /// The tasks copying stdout and stderr into `output`; they end at end of file.
    readers: Vec<JoinHandle<()>>,
}

impl ServiceProcess {
    /// Starts `binary` (from `env!("CARGO_BIN_EXE_<name>")`) with `env` as its whole
    /// configuration (nothing is inherited but `PATH`), its admin port on a free
    /// loopback port and plain-text logs.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn(binary: &str, env: &Env) -> Self {
        let admin_addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "pretty")
            .env("NO_COLOR", "1");
        for (key, value) in env.with_prefix("") {
            command.env(key, value);
        }
        command
            .env("ADMIN_ADDR", &admin_addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect(
                BufReader::new(stdout),
                output.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect(
                BufReader::new(stderr),
                output.clone(),
            )));
        }
        Self {
            child,
            admin: format!("http://{admin_addr}"),
            output,
            readers,
        }
    }

    /// The admin port's base URL (`/readyz`, `/metrics`).
    pub fn admin_url(&self) -> &str {
        &self.admin
    }

    /// The process id.
    ///
    /// # Panics
    /// After the process has been reaped.
    pub fn id(&self) -> u32 {
        self.child
            .id()
            .expect("the service process is still running")
    }

    /// Waits until `/readyz` answers 200.
    ///
    /// # Panics
    /// When it does not within `within`, or the process exits first; the panic
    /// message carries the process's output.
    pub async fn wait_ready(&mut self, within: Duration) {
        self.wait_readiness(true, within).await;
    }

    /// Waits until `/readyz` fails, e.g. once the service has noticed that NATS or
    /// PostgreSQL is gone. Panics as [`wait_ready`](Self::wait_ready) does.
    pub async fn wait_unready(&mut self, within: Duration) {
        self.wait_readiness(false, within).await;
    }

    async fn wait_readiness(&mut self, ready: bool, within: Duration) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.admin);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.read_to_end().await;
                panic!(
                    "the service exited with {status} while awaiting ready={ready}:\n{}",
                    self.output()
                );
            }
            let probe = client
                .get(&url)
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            // A probe that gets no answer at all proves nothing either way.
            if let Ok(response) = probe
                && response.status().is_success() == ready
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the service did not turn ready={ready} within {within:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    ///
    /// # Panics
    /// When `kill` cannot be run or fails (the process is gone).
    pub fn terminate(&self) {
        // `kill(1)` keeps `unsafe` (libc) and an extra dependency out of the fixture.
        let status = std::process::Command::new("kill")
            .args(["-s", "TERM", &self.id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM {} failed", self.id());
    }

    /// Waits for the process to exit; `None` if it is still running after `within`.
    /// Once it has exited, its last lines are in [`output`](Self::output).
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for the service process"))?;
        self.read_to_end().await;
        Some(status)
    }

    // The exit can be seen before the reader tasks have copied the last lines out of
    // the pipes (a drain's final log lines, under load); they end at end of file.
    async fn read_to_end(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
    }

    /// Everything the process has written so far, one line each.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .join("\n")
    }
}

async fn collect<R>(mut reader: BufReader<R>, output: Arc<Mutex<Vec<String>>>)
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut line = String::new();
    while reader.read_line(&mut line).await.is_ok_and(|read| read > 0) {
        output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line.trim_end().to_owned());
        line.clear();
    }
}

/// A loopback port free at the time of asking, for a child process's listener
/// whose port the test must know. Another process could take it before the child
/// binds it, which on a test machine is rare enough.
///
/// # Panics
/// When loopback cannot be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a loopback port")
}
