//! Test fixtures for the services' integration tests: a fresh database and a private NATS
//! namespace per test, removed when the fixture is dropped, so tests run in parallel.
//!
//! The servers come from `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`)
//! and `NATS_URL` (default `nats://127.0.0.1:4222`). [`ChaosProxy`] stands between a
//! service and either server to break the link; [`ServiceProcess`] runs a service's
//! real binary.
//!
//! Compiled only with the `testing` feature, which crates enable in their
//! `[dev-dependencies]`, so no release binary carries these fixtures.

mod chaos;
mod drain;
mod metrics;
mod nats_server;
mod process;
mod schema;
mod upgrade;

pub use chaos::ChaosProxy;
pub use drain::{TEST_GRACE, assert_sigterm_with_nats_cut_ends_within_the_grace};
pub use metrics::metric_value;
pub use nats_server::{NatsCluster, NatsServer, Scratch, wait_for_port};
pub use process::{ServiceProcess, free_port};
pub use schema::assert_backbone_schema;
pub use upgrade::{NEXT_RELEASE_MIGRATION, assert_starts_one_migration_ahead};

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::Env;
use crate::nats::Namespace;

/// The PostgreSQL server tests use.
pub fn test_database_server() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The NATS server tests use.
pub fn test_nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A uniquely named database, dropped with the fixture.
pub struct TestDb {
    pub name: String,
    server: String,
}

impl TestDb {
    /// Names a fresh database `test_{label}_{uuid}`; services create and migrate it.
    pub fn new(label: &str) -> Self {
        Self {
            name: format!("test_{label}_{}", uuid::Uuid::new_v4().simple()),
            server: test_database_server(),
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server.trim_end_matches('/'), self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the I/O.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                let Ok(options) = PgConnectOptions::from_str(&server) else {
                    return;
                };
                if let Ok(mut conn) = options.database("postgres").connect().await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A private namespace on the shared NATS server; its streams are deleted with the fixture.
pub struct TestNats {
    pub namespace: Namespace,
    pub prefix: String,
    url: String,
}

impl TestNats {
    /// A fresh namespace `t{uuid}`.
    pub fn new() -> Self {
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Self {
            namespace: Namespace::new(&prefix).expect("generated prefix is valid"),
            prefix,
            url: test_nats_url(),
        }
    }

    /// The NATS server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain connection for the test itself.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::connect(self.url.as_str())
            .await
            .expect("NATS must be running for tests (see deploy/dev/up.sh)")
    }

    /// The messages in this namespace's DEADLETTER stream (0 before it exists).
    pub async fn dead_letters(&self, js: &async_nats::jetstream::Context) -> u64 {
        match js.get_stream(self.namespace.name("DEADLETTER")).await {
            Ok(mut stream) => stream.info().await.expect("stream info").state.messages,
            Err(_) => 0,
        }
    }
}

impl Default for TestNats {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let url = self.url.clone();
        let stream_prefix = self.namespace.name("");
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                use futures::StreamExt;
                let Ok(client) = async_nats::connect(url.as_str()).await else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                let names: Vec<String> = jetstream
                    .stream_names()
                    .filter_map(|name| async move { name.ok() })
                    .collect()
                    .await;
                // Streams of the namespace, and the KV buckets named inside it
                // (a bucket's stream is `KV_{bucket}`).
                let kv_prefix = format!("KV_{stream_prefix}");
                let ours = |n: &String| n.starts_with(&stream_prefix) || n.starts_with(&kv_prefix);
                for name in names.into_iter().filter(ours) {
                    let _ = jetstream.delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

/// Publishes `payload` to `wechat.inbound.{suffix}` in `namespace` with `msg_id` as
/// `Nats-Msg-Id`, as the gateway does, and waits for JetStream's ack. Panics when
/// JetStream drops it as a duplicate: a test that publishes means a new event.
pub async fn publish_inbound(
    jetstream: &async_nats::jetstream::Context,
    namespace: &Namespace,
    suffix: &str,
    msg_id: &str,
    payload: Vec<u8>,
) {
    let ack = publish_event(
        jetstream,
        namespace,
        &format!("wechat.inbound.{suffix}"),
        msg_id,
        payload,
    )
    .await;
    assert!(!ack.duplicate, "JetStream dropped {msg_id} as a duplicate");
}

/// Publishes `payload` on `subject` in `namespace` with `msg_id` as `Nats-Msg-Id`, as
/// an outbox relay does, and returns JetStream's ack.
pub async fn publish_event(
    jetstream: &async_nats::jetstream::Context,
    namespace: &Namespace,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> async_nats::jetstream::publish::PublishAck {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    jetstream
        .publish_with_headers(namespace.subject(subject), headers, payload.into())
        .await
        .expect("publish sent")
        .await
        .expect("JetStream acked the publish")
}

/// Configuration for a service under test: its own database, the test namespace,
/// port 0 everywhere, a short drain, and `extra` pairs on top.
pub fn service_env<'a>(
    db: &TestDb,
    nats: &TestNats,
    extra: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Env {
    let mut env = Env::from_pairs([
        ("DATABASE_URL", db.url()),
        ("NATS_URL", nats.url().to_owned()),
        ("NATS_PREFIX", nats.prefix.clone()),
        ("GRPC_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("SHUTDOWN_GRACE", "5s".to_owned()),
    ]);
    for (key, value) in extra {
        env = env.with(key, value);
    }
    env
}
