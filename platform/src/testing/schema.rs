//! Checks that a service's migrations give the outbox and processed-events tables
//! exactly the shape `platform::outbox::SCHEMA` gives them.

use sqlx::{Connection, Executor, PgPool};

use super::{TestDb, test_database_server};

type Column = (String, String, String, String, Option<String>);

async fn shape(pool: &PgPool) -> (Vec<Column>, Vec<(String, String)>) {
    let columns: Vec<Column> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text,
                column_default::text
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name IN ('outbox', 'processed_events')
          ORDER BY table_name, column_name",
    )
    .fetch_all(pool)
    .await
    .expect("read the columns");
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef::text FROM pg_indexes
          WHERE schemaname = 'public' AND tablename IN ('outbox', 'processed_events')
          ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .expect("read the indexes");
    (columns, indexes)
}

/// Panics unless `migrated` (a service's migrated database) has the outbox and
/// processed-events tables of `platform::outbox::SCHEMA`, column for column and
/// index for index.
pub async fn assert_backbone_schema(migrated: &PgPool) {
    let reference = TestDb::new("schema");
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", test_database_server()))
        .await
        .expect("reach postgres");
    admin
        .execute(format!("CREATE DATABASE \"{}\"", reference.name).as_str())
        .await
        .expect("create the reference database");
    let _ = admin.close().await;
    let pool = PgPool::connect(&reference.url())
        .await
        .expect("reach the reference database");
    pool.execute(crate::outbox::SCHEMA)
        .await
        .expect("platform::outbox::SCHEMA applies");
    let expected = shape(&pool).await;
    pool.close().await;
    assert_eq!(
        shape(migrated).await,
        expected,
        "the service's outbox/processed_events differ from platform::outbox::SCHEMA"
    );
}
