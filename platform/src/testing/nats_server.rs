//! NATS servers a test starts for itself on loopback, never the shared one: a single
//! `nats-server` with a configuration of the test's (TLS, say) or a 3-node JetStream
//! cluster. Each process is killed and its files removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("govwx-{label}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until `port` on loopback accepts TCP connections (the server is listening).
/// # Panics
/// When nothing listens within 10 s.
pub async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

/// A `nats-server` process, killed on drop.
pub struct NatsServer {
    pub port: u16,
    child: Child,
}

impl NatsServer {
    /// Starts `nats-server -c config` where `config` is written to `dir`.
    pub async fn start(dir: &Path, name: &str, port: u16, config: &str) -> Self {
        let file = dir.join(format!("{name}.conf"));
        std::fs::write(&file, config).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (deploy/dev/up.sh installs it)");
        wait_for_port(port, "nats-server").await;
        Self { port, child }
    }

    /// Stops the server at once (SIGKILL), as a lost node would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three clustered `nats-server`s named `n1`..`n3` on loopback, JetStream on.
pub struct NatsCluster {
    /// The servers, in name order; [`NatsServer::kill`] one to lose a node.
    pub servers: Vec<NatsServer>,
    /// Every node's client URL, comma-separated (`NATS_URL`).
    pub url: String,
    _scratch: Scratch,
}

impl NatsCluster {
    /// Starts the three nodes with routes to each other.
    pub async fn start() -> Self {
        let scratch = Scratch::new("nats-cluster");
        let client_ports = [free_port(), free_port(), free_port()];
        let route_ports = [free_port(), free_port(), free_port()];
        let routes = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut servers = Vec::new();
        for (i, (client, route)) in client_ports.iter().zip(route_ports).enumerate() {
            let name = format!("n{}", i + 1);
            let store = scratch.path(&name);
            let config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                 jetstream {{ store_dir: {store:?} }}\n\
                 cluster {{ name: govwx-test, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n"
            );
            servers.push(NatsServer::start(&scratch.0, &name, *client, &config).await);
        }
        let url = client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            servers,
            url,
            _scratch: scratch,
        }
    }

    /// The index in [`Self::servers`] of a node named `n1`..`n3` (a stream's leader).
    ///
    /// # Panics
    /// On any other name.
    pub fn index_of(name: &str) -> usize {
        name.trim_start_matches('n')
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .unwrap_or_else(|| panic!("not a test cluster node: {name}"))
    }
}
