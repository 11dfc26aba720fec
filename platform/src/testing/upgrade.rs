//! The rollback test every service runs: this release starts and serves on a
//! database that already holds the next release's migration (expand/contract,
//! docs/operations.md).

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{ServiceProcess, TestDb, free_port};
use crate::config::Env;

/// What the next release's migrator leaves behind: an expand-only change (a new
/// nullable column and table) and its row in `_sqlx_migrations`, whose version no
/// binary of this release knows.
pub const NEXT_RELEASE_MIGRATION: &str = "
    ALTER TABLE processed_events ADD COLUMN next_release_note text;
    CREATE TABLE next_release_feature (id bigint PRIMARY KEY);
    INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
    VALUES (99990101000000, 'next release feature', true, '\\x00'::bytea, 1);";

/// Connecting, provisioning and migrating a fresh database.
const STARTUP: Duration = Duration::from_secs(60);

/// Starts `binary` (configured by `env`, on `db`) so it migrates the fresh database,
/// stops it, applies [`NEXT_RELEASE_MIGRATION`], starts it again, and asserts it
/// becomes ready and its gRPC port answers health checks as serving.
pub async fn assert_starts_one_migration_ahead(binary: &str, env: Env, db: &TestDb) {
    let grpc_addr = format!("127.0.0.1:{}", free_port());
    let env = env.with("GRPC_ADDR", grpc_addr.as_str());

    let mut first = ServiceProcess::spawn(binary, &env);
    first.wait_ready(STARTUP).await;
    first.terminate();
    assert!(
        first.wait_exit(STARTUP).await.is_some(),
        "the first run did not stop:\n{}",
        first.output()
    );

    let pool = sqlx::PgPool::connect(&db.url())
        .await
        .expect("reach the test database");
    sqlx::raw_sql(NEXT_RELEASE_MIGRATION)
        .execute(&pool)
        .await
        .expect("the next release's migration applies");
    pool.close().await;

    let mut second = ServiceProcess::spawn(binary, &env);
    second.wait_ready(STARTUP).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .expect("a valid address")
        .connect()
        .await
        .expect("the gRPC port accepts connections");
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("the health service answers")
        .into_inner();
    assert_eq!(
        health.status(),
        ServingStatus::Serving,
        "{}",
        second.output()
    );
}
