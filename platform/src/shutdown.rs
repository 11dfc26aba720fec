//! Shutdown: the signal, and the drain that follows it.
//!
//! The drain runs in the order Kubernetes needs, all under one deadline:
//! 1. fail readiness, so the Service stops routing new work here;
//! 2. stop pulling from consumers and stop accepting requests;
//! 3. finish in-flight work (requests, messages being handled);
//! 4. flush NATS, so every publish has left the process;
//! 5. stop the admin server.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::Readiness;

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C (a developer's terminal).
///
/// Both are registered when this is called, not when the future is first polled: a
/// service answers its probes from tasks of its own before its main task gets to poll
/// this, and a SIGTERM that arrived in between would meet the default action and end
/// the process at once, with no drain. Call it before the servers start (in `main`,
/// inside the runtime).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            tokio::select! {
                () = received(terminate, "sigterm") => tracing::info!("received sigterm, shutting down"),
                () = received(interrupt, "ctrl-c") => tracing::info!("received ctrl-c, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("received ctrl-c, shutting down"),
            Err(error) => {
                tracing::error!(%error, "cannot listen for ctrl-c");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Waits for `signal`; forever when it could not be registered (said once).
#[cfg(unix)]
async fn received(signal: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match signal {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for {name}");
            std::future::pending::<()>().await;
        }
    }
}

/// The ticks of a periodic job ([`Drain::every`]): `while ticks.next().await { … }`.
#[derive(Debug)]
pub struct Ticks {
    interval: tokio::time::Interval,
    stop: CancellationToken,
}

impl Ticks {
    fn new(mut interval: tokio::time::Interval, drain: &Drain) -> Self {
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            interval,
            stop: drain.stop.clone(),
        }
    }

    /// Waits for the next tick: true when it comes, false once the drain has begun.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => false,
            _ = self.interval.tick() => true,
        }
    }
}

/// What background work watches to know it must stop, and how the drain knows it
/// has finished. Cheap to clone; every consumer loop and relay holds one.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Work that must outlive `tasks`: the outbox relay publishes what the
    /// consumers and requests committed before they finished.
    finals: TaskTracker,
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

    /// Spawns work that runs on after the drain begins, until every task of
    /// [`Self::spawn`] has finished ([`Self::work_done`]); the drain waits for it last.
    pub fn spawn_final<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.finals.spawn(future)
    }

    /// Resolves once the drain has begun waiting and every task of [`Self::spawn`]
    /// has finished, so nothing more will be written by them.
    pub async fn work_done(&self) {
        self.tasks.wait().await;
    }

    /// The ticks of a job run every `period` until the drain begins: the first at
    /// once, a late one delayed rather than bunched with the next.
    pub fn every(&self, period: Duration) -> Ticks {
        Ticks::new(tokio::time::interval(period), self)
    }

    /// [`Self::every`], the first tick a `period` from now: a job that should not
    /// run the moment its service starts.
    pub fn every_after(&self, period: Duration) -> Ticks {
        Ticks::new(
            tokio::time::interval_at(Instant::now() + period, period),
            self,
        )
    }

    /// Starts the drain: stop taking new work.
    pub fn begin(&self) {
        self.stop.cancel();
    }

    /// Waits until every spawned task has finished, or `grace` has passed.
    /// Returns false if the deadline cut the drain short.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.wait_until(Instant::now() + grace).await == 0
    }

    /// Waits until every spawned task has finished, or `deadline`; returns how many
    /// were still running then (0 when the drain finished).
    pub async fn wait_until(&self, deadline: Instant) -> usize {
        self.tasks.close();
        let everything = async {
            self.tasks.wait().await;
            self.finals.close();
            self.finals.wait().await;
        };
        if tokio::time::timeout_at(deadline, everything).await.is_ok() {
            0
        } else {
            self.tasks.len() + self.finals.len()
        }
    }
}

/// A server the drain stops: told to stop accepting in step 2, awaited in step 3
/// (the admin server in step 5).
struct Server {
    name: &'static str,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs a service's servers until shutdown, then its ordered drain under one
/// deadline, `SHUTDOWN_GRACE` from the moment shutdown is asked for:
/// 1. fail readiness (and run the [`on_draining`](Self::on_draining) steps);
/// 2. begin the [`Drain`] (consumers stop pulling, loops stop) and tell every
///    server to stop accepting;
/// 3. wait for the servers' in-flight requests and the drain's tasks;
/// 4. flush NATS;
/// 5. stop the admin server.
///
/// Whatever NATS or PostgreSQL do, [`run_until`](Self::run_until) returns by the
/// deadline: a step still waiting then is abandoned (servers are aborted, tasks are
/// left to the runtime's shutdown) and logged. Steps 1 to 3 end a tenth of the grace
/// (at most a second) early, so the flush keeps its time when in-flight work hangs.
pub struct DrainRunner {
    service: &'static str,
    grace: Duration,
    drain: Drain,
    readiness: Option<Readiness>,
    on_draining: Vec<BoxFuture<'static, ()>>,
    nats: Option<async_nats::Client>,
    servers: Vec<Server>,
    admin: Option<Server>,
    /// Cancelled when a server stops on its own, which drains the service too.
    ended: CancellationToken,
}

/// What a drain finished before its deadline, and what it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Servers whose in-flight requests were still running at the deadline.
    pub unfinished_servers: Vec<&'static str>,
    /// Tasks of the [`Drain`] still running at the deadline.
    pub unfinished_tasks: usize,
    /// Whether NATS confirmed the flush (true when there is no NATS client).
    pub nats_flushed: bool,
    /// From the start of the drain to its end.
    pub elapsed: Duration,
}

impl DrainReport {
    /// Whether everything finished in time.
    pub fn is_complete(&self) -> bool {
        self.unfinished_servers.is_empty() && self.unfinished_tasks == 0 && self.nats_flushed
    }
}

impl DrainRunner {
    /// A runner for `service` whose drain waits at most `grace` for the tasks of
    /// `drain` and everything else.
    pub fn new(service: &'static str, grace: Duration, drain: Drain) -> Self {
        Self {
            service,
            grace,
            drain,
            readiness: None,
            on_draining: Vec::new(),
            nats: None,
            servers: Vec::new(),
            admin: None,
            ended: CancellationToken::new(),
        }
    }

    /// Fails this readiness first.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Runs `step` right after readiness fails (e.g. the gRPC health service's
    /// NOT_SERVING), within the deadline.
    pub fn on_draining(mut self, step: impl Future<Output = ()> + Send + 'static) -> Self {
        self.on_draining.push(Box::pin(step));
        self
    }

    /// Flushes this NATS connection after in-flight work, so every publish has left.
    pub fn nats(mut self, client: async_nats::Client) -> Self {
        self.nats = Some(client);
        self
    }

    /// Spawns a server that stops accepting when `stop` is cancelled and resolves
    /// once its in-flight requests are done (axum's `with_graceful_shutdown`,
    /// tonic's `serve_with_incoming_shutdown`).
    pub fn server<E: Display>(
        mut self,
        name: &'static str,
        stop: CancellationToken,
        server: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Self {
        let server = self.spawn_server(name, stop, server);
        self.servers.push(server);
        self
    }

    /// Spawns the admin server (as [`server`](Self::server)), stopped last so probes
    /// and metrics answer throughout the drain.
    pub fn admin<E: Display>(
        mut self,
        stop: CancellationToken,
        server: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Self {
        self.admin = Some(self.spawn_server("admin", stop, server));
        self
    }

    fn spawn_server<E: Display>(
        &self,
        name: &'static str,
        stop: CancellationToken,
        server: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Server {
        let service = self.service;
        let ended = self.ended.clone();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(service, server = name, %error, "server failed");
            }
            if !stopped.is_cancelled() {
                ended.cancel();
            }
        });
        Server { name, stop, task }
    }

    /// Serves until `shutdown` resolves (or a server stops on its own), then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> DrainReport {
        tokio::select! {
            () = shutdown => {}
            () = self.ended.cancelled() => {
                tracing::error!(service = self.service, "a server stopped on its own; draining");
            }
        }
        self.drain_now().await
    }

    /// Drains now, in order, under one deadline.
    pub async fn drain_now(self) -> DrainReport {
        let service = self.service;
        let started = Instant::now();
        let deadline = started + self.grace;
        // In-flight work that cannot finish must not take the flush's time too: what
        // finished work published is still worth sending.
        let flush_reserve = (self.grace / 10).min(Duration::from_secs(1));
        let work_deadline = deadline - flush_reserve;
        tracing::info!(service, grace = ?self.grace, "draining");

        if let Some(readiness) = &self.readiness {
            readiness.set_draining();
        }
        for step in self.on_draining {
            if tokio::time::timeout_at(work_deadline, step).await.is_err() {
                tracing::warn!(service, "failing readiness timed out");
            }
        }

        self.drain.begin();
        for server in &self.servers {
            server.stop.cancel();
        }

        let mut unfinished_servers = Vec::new();
        for mut server in self.servers {
            if tokio::time::timeout_at(work_deadline, &mut server.task)
                .await
                .is_err()
            {
                server.task.abort();
                unfinished_servers.push(server.name);
            }
        }
        let unfinished_tasks = self.drain.wait_until(work_deadline).await;

        let nats_flushed = match &self.nats {
            None => true,
            Some(client) => match tokio::time::timeout_at(deadline, client.flush()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(service, %error, "nats flush failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(service, "nats flush timed out");
                    false
                }
            },
        };

        if let Some(mut admin) = self.admin {
            admin.stop.cancel();
            if tokio::time::timeout_at(deadline, &mut admin.task)
                .await
                .is_err()
            {
                admin.task.abort();
            }
        }

        let report = DrainReport {
            unfinished_servers,
            unfinished_tasks,
            nats_flushed,
            elapsed: started.elapsed(),
        };
        if report.unfinished_tasks > 0 || !report.unfinished_servers.is_empty() {
            tracing::warn!(
                service,
                unfinished_tasks = report.unfinished_tasks,
                unfinished_servers = ?report.unfinished_servers,
                "drain deadline passed with tasks unfinished"
            );
        }
        tracing::info!(service, elapsed = ?report.elapsed, complete = report.is_complete(), "stopped");
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_job_ticks_at_once_and_not_again_once_the_drain_begins() {
        let drain = Drain::new();
        let mut ticks = drain.every(HOUR);
        assert!(ticks.next().await, "the first tick comes at once");
        drain.begin();
        let after = tokio::time::timeout(Duration::from_secs(5), ticks.next()).await;
        assert_eq!(after, Ok(false), "no waiting out the hour");
    }

    #[tokio::test]
    async fn a_job_started_after_a_period_does_not_tick_at_once() {
        let drain = Drain::new();
        let mut ticks = drain.every_after(HOUR);
        let first = tokio::time::timeout(Duration::from_millis(50), ticks.next()).await;
        assert!(first.is_err(), "no tick before the period");
        drain.begin();
        assert!(!ticks.next().await);
    }

    /// Before the fix the handler was installed on the first poll, and this SIGTERM
    /// ended the test process instead (nextest runs each test in its own).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_sigterm_before_the_first_poll_is_caught_not_fatal() {
        let shutdown = shutdown_signal();
        let status = std::process::Command::new("kill")
            .args(["-s", "TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), shutdown)
            .await
            .expect("the signal sent before the first poll resolves the future");
    }

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
    async fn the_drain_ends_at_its_deadline_whatever_is_still_running() {
        let drain = Drain::new();
        drain.spawn(std::future::pending::<()>());
        let grace = Duration::from_secs(2);
        let report = DrainRunner::new("test", grace, drain)
            .on_draining(std::future::pending())
            .server("stuck", CancellationToken::new(), async {
                std::future::pending::<Result<(), String>>().await
            })
            .admin(CancellationToken::new(), async {
                std::future::pending::<Result<(), String>>().await
            })
            .drain_now()
            .await;
        assert_eq!(report.elapsed, grace);
        assert_eq!(report.unfinished_servers, ["stuck"]);
        assert_eq!(report.unfinished_tasks, 1);
        assert!(!report.is_complete());
    }

    #[tokio::test]
    async fn readiness_fails_before_work_is_told_to_stop_and_servers_stop_after_it() {
        let drain = Drain::new();
        let readiness = Readiness::new();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let (watcher, watched) = (drain.clone(), readiness.clone());
        drain.spawn(async move {
            watcher.stopping().cancelled().await;
            let _ = seen_tx.send(watched.problems().await);
        });
        let stop = CancellationToken::new();
        let server_stop = stop.clone();
        let server_drain = drain.clone();
        let report = DrainRunner::new("test", Duration::from_secs(5), drain)
            .readiness(readiness)
            .server("http", stop, async move {
                server_stop.cancelled().await;
                assert!(server_drain.is_stopping(), "work was told to stop first");
                Ok::<(), String>(())
            })
            .drain_now()
            .await;
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(seen_rx.await.unwrap(), ["draining"]);
    }

    #[tokio::test]
    async fn a_server_that_stops_on_its_own_drains_the_service() {
        let drain = Drain::new();
        let watcher = drain.clone();
        let report = DrainRunner::new("test", Duration::from_secs(5), drain)
            .server("broken", CancellationToken::new(), async {
                Err::<(), _>("address in use")
            })
            .run_until(std::future::pending())
            .await;
        assert!(watcher.is_stopping());
        assert!(report.is_complete(), "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_at_the_grace_deadline() {
        let drain = Drain::new();
        drain.spawn(std::future::pending::<()>());
        drain.begin();
        assert!(!drain.wait(Duration::from_secs(1)).await);
    }
}
