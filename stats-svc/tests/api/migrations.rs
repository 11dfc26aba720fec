//! Rollbacks: this release starts and serves on a database that already holds the
//! next release's migration (expand/contract, docs/operations.md).

use platform::testing::{TestDb, TestNats, assert_starts_one_migration_ahead, service_env};

#[tokio::test]
async fn the_service_starts_and_serves_on_a_database_one_migration_ahead() {
    let (db, nats) = (TestDb::new("stats"), TestNats::new());
    let env = service_env(&db, &nats, []);
    assert_starts_one_migration_ahead(env!("CARGO_BIN_EXE_stats-svc"), env, &db).await;
}

/// Likes entered above an article's reads before the bound existed stop lifting its
/// account once migration 0019 runs: capped at the reads where those are known, left
/// where they are not (the day-7 pull caps them).
#[tokio::test]
async fn likes_entered_above_the_reads_before_the_bound_are_capped_by_the_upgrade() {
    use sqlx::migrate::MigrateDatabase as _;

    let db = TestDb::new("stats");
    sqlx::Postgres::create_database(&db.url()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations");
    let all = migrator.migrations.clone();
    migrator.migrations = all
        .iter()
        .filter(|m| m.version < 19)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, title, published_on, headline,
             reads, zaikan, likes, shares, entered_by, pulled_at)
         VALUES ('chenzhou', '2026111001_1', '', '2026-11-10', true, 300, 500, 1000000, 5,
                 'press', now()),
                ('guiyang', 'g-1', '', '2026-11-10', true, 3000, 15, 40, 20, 'press', NULL),
                ('yizhang', '2026112001_1', '', '2026-11-20', true, 0, 50, 900000, 0,
                 'press', NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    migrator.migrations = all;
    migrator.run(&pool).await.unwrap();
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT account, zaikan, likes FROM article_figures ORDER BY account")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("chenzhou".to_owned(), 300, 300),
            ("guiyang".to_owned(), 15, 40),
            ("yizhang".to_owned(), 50, 900_000)
        ]
    );
    pool.close().await;
}

/// Shares entered above an article's reads before the bound existed stop lifting its
/// account once migration 0023 runs: capped at the reads where those were entered by
/// hand; a pulled row's shares are the datacube's and stay.
#[tokio::test]
async fn shares_entered_above_the_reads_before_the_bound_are_capped_by_the_upgrade() {
    use sqlx::migrate::MigrateDatabase as _;

    let db = TestDb::new("stats");
    sqlx::Postgres::create_database(&db.url()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations");
    let all = migrator.migrations.clone();
    migrator.migrations = all
        .iter()
        .filter(|m| m.version < 23)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, title, published_on, headline,
             reads, zaikan, likes, shares, entered_by, pulled_at)
         VALUES ('chenzhou', '2026111001_1', '', '2026-11-10', true, 300, 0, 0, 450,
                 'datacube', now()),
                ('guiyang', 'g-1', '', '2026-11-10', true, 3000, 15, 40, 5000000, 'press',
                 NULL),
                ('yizhang', 'y-1', '', '2026-11-20', true, 3000, 0, 0, 500, 'press', NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    migrator.migrations = all;
    migrator.run(&pool).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT account, shares FROM article_figures ORDER BY account")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("chenzhou".to_owned(), 450),
            ("guiyang".to_owned(), 3_000),
            ("yizhang".to_owned(), 500)
        ]
    );
    pool.close().await;
}
