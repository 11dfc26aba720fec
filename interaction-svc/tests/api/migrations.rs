//! Rollbacks: this release starts and serves on a database that already holds the
//! next release's migration (expand/contract, docs/operations.md).

use platform::testing::{TestDb, TestNats, assert_starts_one_migration_ahead, service_env};

#[tokio::test]
async fn the_service_starts_and_serves_on_a_database_one_migration_ahead() {
    let (db, nats) = (TestDb::new("interaction"), TestNats::new());
    let env = service_env(&db, &nats, []);
    assert_starts_one_migration_ahead(env!("CARGO_BIN_EXE_interaction-svc"), env, &db).await;
}
