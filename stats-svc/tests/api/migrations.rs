//! Rollbacks: this release starts and serves on a database that already holds the
//! next release's migration (expand/contract, docs/operations.md).

use platform::testing::{TestDb, TestNats, service_env};
use proto::stats::v1::GetAccountOverviewRequest;
use proto::stats::v1::stats_service_client::StatsServiceClient;
use stats_svc::{Application, Config};
use tonic::transport::Channel;

use crate::helpers::{ADMIN_KEY, authed};

/// What the next release's migrator leaves behind: an expand-only change (a new
/// nullable column and table) and its row in `_sqlx_migrations`, whose version this
/// binary does not know.
const NEXT_RELEASE_MIGRATION: &str = "
    ALTER TABLE processed_events ADD COLUMN next_release_note text;
    CREATE TABLE next_release_feature (id bigint PRIMARY KEY);
    INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
    VALUES (99990101000000, 'next release feature', true, '\\x00'::bytea, 1);";

#[tokio::test]
async fn the_service_starts_and_serves_on_a_database_one_migration_ahead() {
    let test_db = TestDb::new("stats");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [("API_KEYS", "city-office:admin:city-office-admin-key")],
    );
    let this_release = || async {
        Application::build(Config::from_env(&env).expect("test configuration is valid")).await
    };
    // This release migrates the fresh database, then the next release adds its migration.
    run_until_stopped(this_release().await.expect("first start migrates")).await;
    let db = sqlx::PgPool::connect(&test_db.url()).await.unwrap();
    sqlx::raw_sql(NEXT_RELEASE_MIGRATION)
        .execute(&db)
        .await
        .expect("the next release's migration applies");
    db.close().await;

    let app = this_release()
        .await
        .expect("a database one migration ahead does not stop this release");
    let (admin_port, grpc_port) = (app.admin_port(), app.grpc_port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let readyz = reqwest::get(format!("http://127.0.0.1:{admin_port}/readyz"))
        .await
        .expect("admin port answers");
    assert_eq!(readyz.status(), 200);
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .expect("gRPC port accepts connections");
    StatsServiceClient::new(channel)
        .get_account_overview(authed(
            GetAccountOverviewRequest {
                account: "chenzhou".to_owned(),
            },
            ADMIN_KEY,
        ))
        .await
        .expect("the overview is served");
    let _ = stop.send(());
    server.await.unwrap().expect("server stopped cleanly");
}

async fn run_until_stopped(app: Application) {
    app.run_until_stopped(async {})
        .await
        .expect("server stopped cleanly");
}
