//! The admin port: `/metrics` (Prometheus), `/healthz` (alive) and `/readyz`
//! (NATS connected, database reachable, migrations applied, not draining).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

/// How long `/readyz` waits for the database. The manifests' readiness probes wait
/// longer (`deploy/k8s/validate.py` reads this line), or a slow ping would fail every
/// replica's probe at once instead of answering "database unreachable".
pub const READYZ_DB_PING: Duration = Duration::from_secs(2);

/// What `/readyz` checks. Each dependency is optional: the gateway has no database.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

#[derive(Default)]
struct ReadinessInner {
    nats: std::sync::OnceLock<async_nats::Client>,
    db: std::sync::OnceLock<PgPool>,
    migrated: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Readiness with nothing to check yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also checks this NATS connection.
    pub fn watch_nats(&self, client: async_nats::Client) {
        let _ = self.inner.nats.set(client);
    }

    /// Also checks this database, and that its migrations were applied.
    pub fn watch_db(&self, pool: PgPool) {
        let _ = self.inner.db.set(pool);
    }

    /// Records that the migrations have been applied.
    pub fn set_migrated(&self) {
        self.inner.migrated.store(true, Ordering::SeqCst);
    }

    /// Fails readiness from now on: the first step of a drain.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// The reasons the service is not ready; empty when ready.
    pub async fn problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.inner.draining.load(Ordering::SeqCst) {
            problems.push("draining");
        }
        if let Some(nats) = self.inner.nats.get()
            && nats.connection_state() != async_nats::connection::State::Connected
        {
            problems.push("nats disconnected");
        }
        if let Some(db) = self.inner.db.get() {
            if !self.inner.migrated.load(Ordering::SeqCst) {
                problems.push("migrations not applied");
            }
            let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(db);
            match tokio::time::timeout(READYZ_DB_PING, ping).await {
                Ok(Ok(_)) => {}
                _ => problems.push("database unreachable"),
            }
        }
        problems
    }
}

/// The admin router.
pub fn router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok" }))
                .route("/readyz", get(ready))
                .with_state(readiness),
        )
}

async fn render_metrics(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let problems = readiness.problems().await;
    if problems.is_empty() {
        (StatusCode::OK, "ready".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", problems.join(", ")),
        )
    }
}
