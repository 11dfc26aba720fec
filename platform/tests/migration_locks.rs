//! A migration on a busy table during a rolling upgrade: the previous release keeps
//! serving, and a long transaction of it holds a lock the migration needs. The
//! migration gives up after DATABASE_MIGRATION_LOCK_TIMEOUT instead of queueing every
//! query on the table behind it, retries, and applies once the lock is free. Real
//! PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::config::Env;
use platform::db::{self, DbConfig, DbError, MIGRATOR_APPLICATION_NAME, connect_and_migrate};
use platform::testing::TestDb;
use sqlx::migrate::Migrate;
use sqlx::{Connection, PgConnection};

/// `ALTER TABLE widgets ADD COLUMN colour text`: ACCESS EXCLUSIVE on widgets.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/lock_migrations");

/// `-- no-transaction`: `CREATE INDEX CONCURRENTLY widgets_by_name ON widgets (name)`.
static CONCURRENT_INDEX: sqlx::migrate::Migrator =
    sqlx::migrate!("tests/concurrent_index_migrations");

/// `-- no-transaction`: `CREATE UNIQUE INDEX CONCURRENTLY widgets_name_unique ON
/// widgets (name)`.
static UNIQUE_INDEX: sqlx::migrate::Migrator = sqlx::migrate!("tests/unique_index_migrations");

/// Generous bounds for outcomes awaited; none of them measures speed.
const OUTCOME: Duration = Duration::from_secs(60);

/// A fresh database with the `widgets` table the migration alters, and a config
/// migrating it with `extra` settings.
async fn busy_database(label: &str, extra: &[(&str, &str)]) -> (TestDb, DbConfig) {
    let test_db = TestDb::new(label);
    let mut env = Env::from_pairs([("DATABASE_URL", test_db.url())]);
    for &(key, value) in extra {
        env = env.with(key, value);
    }
    let config = DbConfig::from_env(&env, "unused").unwrap();
    db::create_database_if_absent(&config.options)
        .await
        .unwrap();
    let mut conn = connect(&test_db).await;
    sqlx::query("CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO widgets VALUES (1, '社保')")
        .execute(&mut conn)
        .await
        .unwrap();
    (test_db, config)
}

async fn connect(test_db: &TestDb) -> PgConnection {
    PgConnection::connect(&test_db.url()).await.unwrap()
}

/// Opens the previous release's long transaction: it has read widgets, so it holds
/// ACCESS SHARE on the table until it ends.
async fn long_transaction(conn: &mut PgConnection) {
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT count(*) FROM widgets")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Backends waiting for ACCESS EXCLUSIVE on widgets: the migration in the table's
/// lock queue.
const WAITING_FOR_WIDGETS: &str = "SELECT count(*) FROM pg_locks
     WHERE relation = 'widgets'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// Migrating connections on this database.
const MIGRATORS: &str = "SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'govwx-migrator'";

/// Polls `count` every 20 ms until it is `expected`, for at most [`OUTCOME`].
async fn until(what: &str, observer: &mut PgConnection, count: &str, expected: i64) {
    let deadline = tokio::time::Instant::now() + OUTCOME;
    loop {
        let now: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut *observer)
            .await
            .unwrap();
        if now == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never saw: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Captures this thread's log lines (the test's runtime runs on it).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(lines.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    (lines, tracing::subscriber::set_default(subscriber))
}

async fn has_colour(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                         WHERE table_name = 'widgets' AND column_name = 'colour')",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_migration_behind_a_long_transaction_gives_up_waiting_retries_and_applies_once_it_ends() {
    let (test_db, config) = busy_database(
        "migration_lock",
        &[
            ("DATABASE_MIGRATION_LOCK_TIMEOUT", "300ms"),
            ("DATABASE_MIGRATION_DEADLINE", "10m"),
        ],
    )
    .await;
    let mut holder = connect(&test_db).await;
    long_transaction(&mut holder).await;
    let mut observer = connect(&test_db).await;

    let first = {
        let config = config.clone();
        tokio::spawn(async move { connect_and_migrate(&config, &MIGRATOR).await })
    };
    until(
        "the migration queued behind the transaction",
        &mut observer,
        WAITING_FOR_WIDGETS,
        1,
    )
    .await;

    // A replica starting meanwhile waits for the first one's advisory lock, longer
    // than the lock timeout, and is not failed by it.
    let second = {
        let config = config.clone();
        tokio::spawn(async move { connect_and_migrate(&config, &MIGRATOR).await })
    };
    until(
        "the second replica waiting for the first",
        &mut observer,
        MIGRATORS,
        2,
    )
    .await;

    // The service's plain read, queued behind the waiting migration, gets its turn
    // while the long transaction is still open: the migration stepped out of the queue.
    let mut reader = connect(&test_db).await;
    let read = tokio::time::timeout(
        OUTCOME,
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM widgets").fetch_one(&mut reader),
    )
    .await
    .expect("a read on the table stayed queued behind the waiting migration");
    assert_eq!(read.unwrap(), 1);

    // Gave up: nobody waits for the table, the migration is not applied, and its
    // connection holds no transaction open during the pause.
    until(
        "the migration out of the lock queue",
        &mut observer,
        WAITING_FOR_WIDGETS,
        0,
    )
    .await;
    assert!(!has_colour(&mut observer).await);
    let migrator_states: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(state, '') FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = $1",
    )
    .bind(MIGRATOR_APPLICATION_NAME)
    .fetch_all(&mut observer)
    .await
    .unwrap();
    assert!(
        !migrator_states.iter().any(|s| s.contains("in transaction")),
        "a migrator keeps a transaction open: {migrator_states:?}"
    );
    // And it tries again: queued once more, still behind the transaction.
    until(
        "the migration retried",
        &mut observer,
        WAITING_FOR_WIDGETS,
        1,
    )
    .await;
    assert!(!first.is_finished() && !second.is_finished());

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let pool = tokio::time::timeout(OUTCOME, first)
        .await
        .expect("the retry did not apply the migration once the lock was free")
        .unwrap()
        .unwrap();
    tokio::time::timeout(OUTCOME, second)
        .await
        .expect("the second replica did not start")
        .unwrap()
        .unwrap();
    assert!(has_colour(&mut observer).await);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    // The lock timeout is the migrator's own: the service's queries keep waiting for
    // their locks as before.
    let pool_timeout: String = sqlx::query_scalar("SHOW lock_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pool_timeout, "0");
    pool.close().await;
}

#[tokio::test]
async fn a_migration_still_locked_out_at_its_deadline_fails_naming_it_and_leaves_the_table_as_it_was()
 {
    let (test_db, config) = busy_database(
        "migration_deadline",
        &[
            ("DATABASE_MIGRATION_LOCK_TIMEOUT", "100ms"),
            ("DATABASE_MIGRATION_DEADLINE", "2s"),
        ],
    )
    .await;
    let mut holder = connect(&test_db).await;
    long_transaction(&mut holder).await;
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    let (lines, _guard) = capture_logs();

    let error = tokio::time::timeout(OUTCOME, connect_and_migrate(&config, &MIGRATOR))
        .await
        .expect("the migration waited past its deadline")
        .unwrap_err();
    match &error {
        DbError::MigrationLocked {
            version,
            description,
            attempts,
            lock_timeout,
            ..
        } => {
            assert_eq!(*version, 1);
            assert_eq!(description, "widget colour");
            assert!(*attempts >= 2, "{error}");
            assert_eq!(*lock_timeout, Duration::from_millis(100));
        }
        other => panic!("expected MigrationLocked, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("migration 1 (widget colour)")
            && message.contains("DATABASE_MIGRATION_LOCK_TIMEOUT (100ms)"),
        "{message}"
    );

    // Each attempt is logged with the migration, and with the transaction most likely
    // in its way.
    let logged = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    let retries: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("migration waited longer than the lock timeout"))
        .collect();
    assert_eq!(retries.len() as u32 + 1, attempts_of(&error), "{logged}");
    assert!(
        retries[0].contains("version=1")
            && retries[0].contains("attempt=1")
            && retries[0].contains(&format!("pid {holder_pid}")),
        "{logged}"
    );
    assert!(logged.contains("migration gave up"), "{logged}");

    let mut observer = connect(&test_db).await;
    assert!(!has_colour(&mut observer).await);
    // The transaction was never disturbed, and once it ends the next start applies it.
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let pool = tokio::time::timeout(OUTCOME, connect_and_migrate(&config, &MIGRATOR))
        .await
        .expect("the migration did not apply on the next start")
        .unwrap();
    assert!(has_colour(&mut observer).await);
    pool.close().await;
}

fn attempts_of(error: &DbError) -> u32 {
    match error {
        DbError::MigrationLocked { attempts, .. } => *attempts,
        _ => 0,
    }
}

#[tokio::test]
async fn the_migrator_takes_the_advisory_lock_that_earlier_releases_take_through_sqlx() {
    let (test_db, _config) = busy_database("migration_lock_key", &[]).await;
    // An earlier release's binary migrating: sqlx's own lock.
    let mut earlier = connect(&test_db).await;
    let earlier_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut earlier)
        .await
        .unwrap();
    earlier.lock().await.unwrap();
    let mut observer = connect(&test_db).await;
    let held: i64 = sqlx::query_scalar(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND pid = $1",
    )
    .bind(earlier_pid)
    .fetch_one(&mut observer)
    .await
    .unwrap();
    assert_eq!(held, db::migration_lock_key(&test_db.name));
    earlier.unlock().await.unwrap();
}

#[tokio::test]
async fn a_concurrent_index_build_waits_past_the_lock_timeout_without_blocking_writes() {
    let (test_db, config) = busy_database(
        "migration_concurrently",
        &[
            ("DATABASE_MIGRATION_LOCK_TIMEOUT", "100ms"),
            ("DATABASE_MIGRATION_DEADLINE", "10m"),
        ],
    )
    .await;
    // A long transaction that wrote to the table: the build waits for it to end.
    let mut holder = connect(&test_db).await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("UPDATE widgets SET name = name WHERE id = 1")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut observer = connect(&test_db).await;

    let migrating =
        tokio::spawn(async move { connect_and_migrate(&config, &CONCURRENT_INDEX).await });
    // The build waits for the long transaction, by PostgreSQL's clock longer than the
    // lock timeout: a timeout would have cancelled it, leaving an INVALID index.
    until(
        "the build waiting past the lock timeout",
        &mut observer,
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'govwx-migrator'
            AND wait_event_type = 'Lock' AND now() - query_start > interval '500ms'",
        1,
    )
    .await;
    let mut writer = connect(&test_db).await;
    tokio::time::timeout(
        OUTCOME,
        sqlx::query("INSERT INTO widgets VALUES (2, '医保')").execute(&mut writer),
    )
    .await
    .expect("a write waited for the index build")
    .unwrap();
    assert!(!migrating.is_finished());

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let pool = tokio::time::timeout(OUTCOME, migrating)
        .await
        .expect("the build did not finish once the transaction ended")
        .unwrap()
        .unwrap();
    let valid: bool = sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_by_name'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(valid);
    pool.close().await;
}

async fn index_valid(conn: &mut PgConnection, index: &str) -> Option<bool> {
    sqlx::query_scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)")
        .bind(index)
        .fetch_optional(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_concurrent_build_that_failed_is_built_again_once_its_cause_is_gone() {
    let (test_db, config) = busy_database("migration_invalid_index", &[]).await;
    let mut conn = connect(&test_db).await;
    sqlx::query("INSERT INTO widgets VALUES (2, '社保')")
        .execute(&mut conn)
        .await
        .unwrap();

    let error = db::migrate(&config, &UNIQUE_INDEX).await.unwrap_err();
    assert!(error.to_string().contains("widgets_name_unique"), "{error}");
    // What PostgreSQL leaves of a failed concurrent build.
    assert_eq!(
        index_valid(&mut conn, "widgets_name_unique").await,
        Some(false)
    );

    sqlx::query("DELETE FROM widgets WHERE id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let (lines, _guard) = capture_logs();
    db::migrate(&config, &UNIQUE_INDEX).await.unwrap();
    assert_eq!(
        index_valid(&mut conn, "widgets_name_unique").await,
        Some(true)
    );
    let logs = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("dropping the INVALID index") && logs.contains("widgets_name_unique"),
        "{logs}"
    );
    assert_eq!(conn.list_applied_migrations().await.unwrap().len(), 1);
    // Applied: a third run has nothing to do.
    db::migrate(&config, &UNIQUE_INDEX).await.unwrap();
}
