//! Shutdown: the signal, and the drain that follows it.
//!
//! The drain runs in the order Kubernetes needs, all under one deadline:
//! 1. fail readiness, so the Service stops routing new work here;
//! 2. stop pulling from consumers and stop accepting requests;
//! 3. finish in-flight work (requests, messages being handled);
//! 4. flush NATS, so every publish has left the process;
//! 5. stop the admin server.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C (a developer's terminal).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received ctrl-c, shutting down"),
        () = terminate => tracing::info!("received sigterm, shutting down"),
    }
}

/// What background work watches to know it must stop, and how the drain knows it
/// has finished. Cheap to clone; every consumer loop and relay holds one.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Drain {
    /// A fresh drain with nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the service must stop taking new work.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stop
    }

    /// Whether the drain has started.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Spawns background work that the drain waits for.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(future)
    }

    /// Starts the drain: stop taking new work.
    pub fn begin(&self) {
        self.stop.cancel();
    }

    /// Waits until every spawned task has finished, or `grace` has passed.
    /// Returns false if the deadline cut the drain short.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_once_tasks_see_the_stop_and_finish() {
        let drain = Drain::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let watcher = drain.clone();
        drain.spawn(async move {
            watcher.stopping().cancelled().await;
            let _ = done_tx.send(());
        });
        drain.begin();
        assert!(drain.wait(Duration::from_secs(5)).await);
        assert!(done_rx.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_at_the_grace_deadline() {
        let drain = Drain::new();
        drain.spawn(std::future::pending::<()>());
        drain.begin();
        assert!(!drain.wait(Duration::from_secs(1)).await);
    }
}
