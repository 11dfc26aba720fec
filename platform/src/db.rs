//! PostgreSQL: one database per service, created if absent, migrated at start-up.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};

use crate::config::{ConfigError, Env};

/// Errors from reaching or preparing the service's database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach postgres for database {database}: {source}")]
    Connect {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create database {database}: {source}")]
    Create {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed on {database}: {source}")]
    Migrate {
        database: String,
        #[source]
        source: MigrateError,
    },
    /// Every attempt at a migration waited longer than the lock timeout for a lock that
    /// other transactions held, until the migration deadline: nothing of it was applied,
    /// and the release already serving was never held up for longer than one timeout.
    #[error(
        "migration {version} ({description}) on {database} gave up after {attempts} attempts \
         over {waited}: each waited more than DATABASE_MIGRATION_LOCK_TIMEOUT ({lock_timeout}) \
         for a lock other transactions held (pg_stat_activity shows the oldest ones); \
         nothing of it was applied: {source}",
        waited = shown(*waited),
        lock_timeout = shown(*lock_timeout)
    )]
    MigrationLocked {
        database: String,
        version: i64,
        description: String,
        attempts: u32,
        waited: Duration,
        lock_timeout: Duration,
        #[source]
        source: sqlx::Error,
    },
}

/// How to reach the service's database.
#[derive(Clone)]
pub struct DbConfig {
    /// `DATABASE_URL` (or `DATABASE_URL_FILE`): the server, and optionally the database.
    /// Without a database in its path, the service's own name is used, so one server
    /// URL serves all services while each keeps its own database.
    pub options: PgConnectOptions,
    /// `DATABASE_MAX_CONNECTIONS`, default 10.
    pub max_connections: u32,
    /// `DATABASE_CONNECT_TIMEOUT`: how long start-up keeps trying to reach PostgreSQL
    /// (a failover, or the database starting with the pods), default 2m.
    pub connect_timeout: Duration,
    /// `DATABASE_MIGRATION_LOCK_TIMEOUT`: how long a migration statement may wait for a
    /// lock (PostgreSQL's `lock_timeout`, on the migrating connection only) before its
    /// attempt gives up, default 5s. While it waits, every query on that table queues
    /// behind it, so this bounds how long a migration can stall the serving release.
    pub migration_lock_timeout: Duration,
    /// `DATABASE_MIGRATION_DEADLINE`: how long migrating keeps retrying an attempt that
    /// gave up on a lock before failing with [`DbError::MigrationLocked`], default 2m
    /// (within the pods' 5-minute startup probe; the migration Job sets its own).
    pub migration_deadline: Duration,
}

impl std::fmt::Debug for DbConfig {
    // The connect options hold the password: show only where they point.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.database())
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("migration_lock_timeout", &self.migration_lock_timeout)
            .field("migration_deadline", &self.migration_deadline)
            .finish()
    }
}

impl DbConfig {
    /// Reads the database settings; `default_database` is the service's database name.
    pub fn from_env(env: &Env, default_database: &str) -> Result<Self, ConfigError> {
        let url = env
            .secret("DATABASE_URL")?
            .unwrap_or_else(|| SecretString::from("postgres://postgres@127.0.0.1:5432".to_owned()));
        if !(url.expose_secret().starts_with("postgres://")
            || url.expose_secret().starts_with("postgresql://"))
        {
            return Err(ConfigError::InvalidSecret {
                var: "DATABASE_URL".to_owned(),
                reason: "expected a postgres:// or postgresql:// URL".to_owned(),
            });
        }
        let mut options = PgConnectOptions::from_str(url.expose_secret()).map_err(|e| {
            ConfigError::InvalidSecret {
                var: "DATABASE_URL".to_owned(),
                reason: e.to_string(),
            }
        })?;
        let has_database = url
            .expose_secret()
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(_, path)| path.split('?').next().unwrap_or_default())
            .is_some_and(|name| !name.is_empty());
        if !has_database {
            options = options.database(default_database);
        }
        Ok(Self {
            options: options.log_statements(tracing::log::LevelFilter::Debug),
            max_connections: env.parse_or("DATABASE_MAX_CONNECTIONS", 10)?,
            connect_timeout: env
                .duration_or("DATABASE_CONNECT_TIMEOUT", Duration::from_secs(120))?,
            // Zero would switch PostgreSQL's lock_timeout off: the stall this prevents.
            migration_lock_timeout: env
                .period_or("DATABASE_MIGRATION_LOCK_TIMEOUT", Duration::from_secs(5))?,
            migration_deadline: env
                .duration_or("DATABASE_MIGRATION_DEADLINE", Duration::from_secs(120))?,
        })
    }

    /// The database this config points at.
    pub fn database(&self) -> String {
        self.options.get_database().unwrap_or("postgres").to_owned()
    }
}

/// Creates the database if absent, connects a pool and applies `migrator`.
pub async fn connect_and_migrate(
    config: &DbConfig,
    migrator: &Migrator,
) -> Result<PgPool, DbError> {
    let database = config.database();
    // A pod starting during a failover, or with the database, waits for it instead of
    // exiting into a crash loop whose back-off outlasts the outage.
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let pool = loop {
        let attempt = async {
            create_database_if_absent(&config.options).await?;
            PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(config.options.clone())
                .await
                .map_err(|source| DbError::Connect {
                    database: database.clone(),
                    source,
                })
        };
        match attempt.await {
            Ok(pool) => break pool,
            Err(DbError::Connect { source, .. })
                if is_unreachable(&source) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(%database, error = %source, "postgres unreachable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    };
    migrate(config, migrator).await?;
    Ok(pool)
}

/// Errors that say PostgreSQL is not there yet (refused, timed out, starting up, shutting
/// down), as opposed to a wrong password or database name, which waiting does not mend.
/// Nor does it mend a server certificate that does not verify: rustls reports that as an
/// I/O error of kind `InvalidData`, which must not be waited out for `connect_timeout`.
fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => matches!(
            e.code().as_deref(),
            // cannot_connect_now, admin_shutdown, crash_shutdown
            Some("57P03" | "57P01" | "57P02")
        ),
        _ => false,
    }
}

/// The `application_name` of the connection that migrates, as `pg_stat_activity`
/// shows it.
pub const MIGRATOR_APPLICATION_NAME: &str = "govwx-migrator";

/// First pause after an attempt gave up on a lock; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Applies `migrator`'s pending migrations on a connection of its own, whose
/// `lock_timeout` is [`DbConfig::migration_lock_timeout`]: a migration that needs a lock
/// (ALTER TABLE, CREATE INDEX) on a table a long transaction uses gives up after that
/// timeout instead of queueing every other query on the table behind it for as long as
/// that transaction lasts. The attempt is retried with back-off until
/// [`DbConfig::migration_deadline`]. The pool's connections never get this setting.
///
/// Applied versions this binary does not know are accepted: during a rollout or a
/// rollback the database may already hold the next release's migration
/// (expand/contract: each migration stays compatible with the previous release), and
/// the older binary must still start. A known migration whose checksum changed is
/// refused.
pub async fn migrate(config: &DbConfig, migrator: &Migrator) -> Result<(), DbError> {
    let database = config.database();
    let failed = |source: MigrateError| DbError::Migrate {
        database: database.clone(),
        source,
    };
    let mut conn = config
        .options
        .clone()
        .application_name(MIGRATOR_APPLICATION_NAME)
        .connect()
        .await
        .map_err(|source| DbError::Connect {
            database: database.clone(),
            source,
        })?;
    let key = take_migration_lock(&mut conn, &database)
        .await
        .map_err(|e| failed(e.into()))?;
    let outcome = migrate_locked(&mut conn, config, migrator, &database).await;
    // Closing the session releases the advisory lock too, should the unlock fail.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    outcome
}

/// How often a migrator polls for the advisory lock another one holds.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// Takes the advisory lock that makes migrators of one database take turns (replicas
/// starting together, the migration Job), and returns its key. It is sqlx's lock, so
/// the binaries of earlier releases, which take it through sqlx, take turns with this
/// one. A waiter polls instead of waiting in `pg_advisory_lock`: a statement waiting
/// holds a snapshot, which a CREATE INDEX CONCURRENTLY of the migrator it waits for
/// would wait for in turn (a deadlock, stats-svc migration 0012). Waiting holds up
/// only other migrators, and the one migrating is bounded by its own deadline.
async fn take_migration_lock(conn: &mut PgConnection, database: &str) -> Result<i64, sqlx::Error> {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *conn)
        .await?;
    let key = migration_lock_key(&name);
    let mut waited = false;
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        if taken {
            return Ok(key);
        }
        if !waited {
            tracing::info!(%database, "another process is migrating this database; waiting for it");
            waited = true;
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// The advisory lock key sqlx's migrator takes for `database` (sqlx-postgres'
/// `generate_lock_id`: a constant times the CRC-32 of the name), as `pg_locks` shows it
/// (`classid` the high 32 bits, `objid` the low).
pub fn migration_lock_key(database: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database.as_bytes()))
}

/// CRC-32 (ISO HDLC, the zlib one).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Applies the pending migrations under the advisory lock, retrying an attempt that gave
/// up on a lock.
async fn migrate_locked(
    conn: &mut PgConnection,
    config: &DbConfig,
    migrator: &Migrator,
    database: &str,
) -> Result<(), DbError> {
    let failed = |source: MigrateError| DbError::Migrate {
        database: database.to_owned(),
        source,
    };
    conn.ensure_migrations_table().await.map_err(failed)?;
    let started = tokio::time::Instant::now();
    let deadline = started + config.migration_deadline;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (migration, error) = match apply_pending(conn, config, migrator, database).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        // A `-- no-transaction` migration is not rolled back whole: it is not retried.
        let retryable = !migration.is_some_and(|m| m.no_tx);
        let source = match lock_conflict(error) {
            Ok(source) if retryable => source,
            Ok(source) => {
                let version = migration.map(|m| m.version).unwrap_or_default();
                return Err(failed(MigrateError::ExecuteMigration(source, version)));
            }
            Err(error) => return Err(failed(error)),
        };
        let (version, description) = migration
            .map(|m| (m.version, m.description.to_string()))
            .unwrap_or_default();
        // The failed transaction's ROLLBACK is only queued by sqlx; until it is sent,
        // the aborted transaction keeps every lock it had taken (another table's, say)
        // through the pause below. The round trip sends it now.
        conn.ping().await.map_err(|e| failed(e.into()))?;
        let oldest = oldest_transaction(conn).await;
        let now = tokio::time::Instant::now();
        if now >= deadline {
            tracing::error!(
                %database, version, %description, attempts,
                waited = %shown(now - started),
                oldest_transaction = %oldest,
                "migration gave up: could not take its locks before DATABASE_MIGRATION_DEADLINE"
            );
            return Err(DbError::MigrationLocked {
                database: database.to_owned(),
                version,
                description,
                attempts,
                waited: now - started,
                lock_timeout: config.migration_lock_timeout,
                source,
            });
        }
        // The last attempt comes at the deadline itself.
        let pause = backoff.min(deadline - now);
        tracing::warn!(
            %database, version, %description, attempt = attempts,
            lock_timeout = %shown(config.migration_lock_timeout),
            retry_in = %shown(pause),
            oldest_transaction = %oldest,
            error = %source,
            "migration waited longer than the lock timeout for a lock others hold; \
             nothing of it was applied, retrying"
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: every pending migration in order. On failure, the migration being
/// applied (none while reading the applied versions) and the error.
async fn apply_pending<'m>(
    conn: &mut PgConnection,
    config: &DbConfig,
    migrator: &'m Migrator,
    database: &str,
) -> Result<(), (Option<&'m Migration>, MigrateError)> {
    set_lock_timeout(conn, config.migration_lock_timeout)
        .await
        .map_err(|e| (None, e.into()))?;
    if let Some(version) = conn.dirty_version().await.map_err(|e| (None, e))? {
        return Err((None, MigrateError::Dirty(version)));
    }
    let applied: HashMap<i64, _> = conn
        .list_applied_migrations()
        .await
        .map_err(|e| (None, e))?
        .into_iter()
        .map(|m| (m.version, m.checksum))
        .collect();
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != migration.checksum => {
                return Err((None, MigrateError::VersionMismatch(migration.version)));
            }
            Some(_) => {}
            None => {
                // A `-- no-transaction` migration exists for CREATE INDEX CONCURRENTLY
                // (one statement): its waits block no reads or writes, and a build that
                // a timeout cancels leaves an INVALID index behind, to be dropped and
                // built again by the next run, so it waits as long as it must.
                if migration.no_tx {
                    set_lock_timeout(conn, Duration::ZERO)
                        .await
                        .map_err(|e| (Some(migration), e.into()))?;
                    drop_invalid_indexes(conn, migration, database)
                        .await
                        .map_err(|e| (Some(migration), e.into()))?;
                }
                let elapsed = conn
                    .apply(migration)
                    .await
                    .map_err(|e| (Some(migration), e))?;
                if migration.no_tx {
                    set_lock_timeout(conn, config.migration_lock_timeout)
                        .await
                        .map_err(|e| (Some(migration), e.into()))?;
                }
                tracing::info!(
                    %database,
                    version = migration.version,
                    description = %migration.description,
                    elapsed = ?elapsed,
                    "applied migration"
                );
            }
        }
    }
    Ok(())
}

/// Drops what an earlier attempt of `migration` left: an INVALID index it creates
/// (a `CREATE INDEX CONCURRENTLY` that failed on duplicate rows, was cancelled, or
/// whose pod was killed), which would make every new attempt fail with "already
/// exists" (or, under `IF NOT EXISTS`, succeed and leave the index unused). Only
/// under the migration lock: the build that left it has ended, since its session
/// held that lock, and no other migrator builds it meanwhile.
async fn drop_invalid_indexes(
    conn: &mut PgConnection,
    migration: &Migration,
    database: &str,
) -> Result<(), sqlx::Error> {
    for name in concurrent_index_names(&migration.sql) {
        // PostgreSQL reads the name as the migration wrote it (quoted, qualified,
        // on the search path), and regclass prints it back quoted where it must be.
        let invalid: Option<String> = sqlx::query_scalar(
            "SELECT indexrelid::regclass::text FROM pg_index
              WHERE indexrelid = to_regclass($1) AND NOT indisvalid",
        )
        .bind(&name)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(index) = invalid else { continue };
        tracing::warn!(
            %database,
            version = migration.version,
            description = %migration.description,
            %index,
            "dropping the INVALID index an earlier attempt of this migration left, \
             then building it again"
        );
        sqlx::query(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The index names of `sql`'s `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS]
/// name` statements, as written (an unnamed index has none to look for).
fn concurrent_index_names(sql: &str) -> Vec<String> {
    let tokens = sql_tokens(sql);
    let is = |i: usize, keyword: &str| {
        tokens
            .get(i)
            .is_some_and(|token| token.eq_ignore_ascii_case(keyword))
    };
    let mut names = Vec::new();
    for start in 0..tokens.len() {
        if !is(start, "CREATE") {
            continue;
        }
        let mut i = start + 1;
        if is(i, "UNIQUE") {
            i += 1;
        }
        if !(is(i, "INDEX") && is(i + 1, "CONCURRENTLY")) {
            continue;
        }
        i += 2;
        if is(i, "IF") && is(i + 1, "NOT") && is(i + 2, "EXISTS") {
            i += 3;
        }
        match tokens.get(i) {
            Some(name) if !is(i, "ON") && name != "(" => names.push(name.clone()),
            _ => {}
        }
    }
    names
}

/// `sql` as words (a qualified or quoted name is one: `public."Widgets by name"`) and
/// single punctuation characters, without comments or string literals.
fn sql_tokens(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' && chars.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if chars[i] == '\'' {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else if c == '"' || c.is_alphanumeric() || c == '_' {
            let start = i;
            loop {
                if chars.get(i) == Some(&'"') {
                    i += 1;
                    while i < chars.len() {
                        if chars[i] == '"' && chars.get(i + 1) == Some(&'"') {
                            i += 2;
                        } else if chars[i] == '"' {
                            break;
                        } else {
                            i += 1;
                        }
                    }
                    i += 1;
                } else {
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    {
                        i += 1;
                    }
                }
                if chars.get(i) == Some(&'.') {
                    i += 1;
                } else {
                    break;
                }
            }
            tokens.push(chars[start..i.min(chars.len())].iter().collect());
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// A duration for a log line or an error, to the millisecond.
fn shown(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(duration.as_millis() as u64))
}

/// Sets the session's `lock_timeout`; zero waits without limit.
async fn set_lock_timeout(conn: &mut PgConnection, timeout: Duration) -> Result<(), sqlx::Error> {
    // Whole milliseconds, rounded up: a timeout under 1 ms would round to 0, "no limit".
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    sqlx::query(&format!("SET lock_timeout = {millis}"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The database error of an attempt that gave up on a lock: `lock_timeout` expired
/// (55P03), or PostgreSQL chose it as a deadlock's victim (40P01). Both roll the
/// migration's transaction back whole, so trying again later is safe. Any other
/// error is given back.
fn lock_conflict(error: MigrateError) -> Result<sqlx::Error, MigrateError> {
    let is_conflict = |source: &sqlx::Error| {
        matches!(source, sqlx::Error::Database(e)
            if matches!(e.code().as_deref(), Some("55P03" | "40P01")))
    };
    match error {
        MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _)
            if is_conflict(&source) =>
        {
            Ok(source)
        }
        error => Err(error),
    }
}

/// The oldest open transaction on the database besides the migrator, for the log of an
/// attempt that gave up: most often the one holding the lock.
async fn oldest_transaction(conn: &mut PgConnection) -> String {
    let row: Result<Option<(i32, String, String, f64)>, _> = sqlx::query_as(
        "SELECT pid, coalesce(application_name, ''), coalesce(state, ''),
                extract(epoch FROM now() - xact_start)::float8
           FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND xact_start IS NOT NULL
          ORDER BY xact_start LIMIT 1",
    )
    .fetch_optional(conn)
    .await;
    match row {
        Ok(Some((pid, application, state, age))) => format!(
            "pid {pid} ({application:?}, {state}) open for {}",
            shown(Duration::from_secs(age.max(0.0) as u64))
        ),
        Ok(None) => "none".to_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// Creates the database named in `options` unless it exists. Replicas (and the
/// migration Job) racing here is harmless: the loser's "already exists" is ignored,
/// whichever way PostgreSQL words it (42P04, or 23505 from `pg_database`'s unique
/// index when both inserts meet).
pub async fn create_database_if_absent(options: &PgConnectOptions) -> Result<(), DbError> {
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(|source| DbError::Connect {
            database: database.clone(),
            source,
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut admin)
            .await
            .map_err(|source| DbError::Connect {
                database: database.clone(),
                source,
            })?;
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
        match sqlx::query(&statement).execute(&mut admin).await {
            Ok(_) => tracing::info!(%database, "created database"),
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(source) => return Err(DbError::Create { database, source }),
        }
    }
    let _ = admin.close().await;
    Ok(())
}

/// Records that the event `event_id` was applied, in the transaction of its effect
/// (table `processed_events`, see [`crate::outbox::SCHEMA`]). Returns false when it
/// was applied before: the caller then changes nothing else, so a redelivery has no
/// second effect.
pub async fn claim_event(
    tx: &mut Transaction<'_, Postgres>,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted =
        sqlx::query("INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(inserted == 1)
}

/// [`claim_event`] for a batch in one round trip: returns, for each id in order,
/// whether it is new. An id given twice is new only the first time.
pub async fn claim_events(
    tx: &mut Transaction<'_, Postgres>,
    event_ids: &[&str],
) -> Result<Vec<bool>, sqlx::Error> {
    let claimed: Vec<String> = sqlx::query_scalar(
        "INSERT INTO processed_events (event_id) SELECT DISTINCT unnest($1::text[])
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(event_ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
    Ok(event_ids.iter().map(|id| claimed.remove(*id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_lock_key_is_a_crc32_of_the_name() {
        // The CRC-32 check value; tests/migration_locks.rs compares the key with the
        // lock sqlx's own migrator takes.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_names_of_concurrent_index_builds_are_read_as_written() {
        let sql = "-- no-transaction
            -- CREATE INDEX CONCURRENTLY commented_out ON t (a);
            /* CREATE INDEX CONCURRENTLY in_a_block ON t (a); */
            CREATE UNIQUE INDEX CONCURRENTLY tickets_by_number ON tickets (number);
            create index concurrently if not exists Lower_Case on t (a);
            CREATE INDEX CONCURRENTLY public.\"Widgets by name\" ON widgets (name);
            CREATE INDEX CONCURRENTLY ON unnamed (a);
            CREATE INDEX not_concurrent ON t (a) WHERE b <> 'CREATE INDEX CONCURRENTLY x';";
        assert_eq!(
            concurrent_index_names(sql),
            [
                "tickets_by_number",
                "Lower_Case",
                "public.\"Widgets by name\""
            ]
        );
    }

    #[test]
    fn the_migration_lock_timeout_defaults_to_5s_and_is_never_off() {
        let config = DbConfig::from_env(&Env::from_pairs([("X", "")]), "x").unwrap();
        assert_eq!(config.migration_lock_timeout, Duration::from_secs(5));
        assert_eq!(config.migration_deadline, Duration::from_secs(120));
        let env = Env::from_pairs([("DATABASE_MIGRATION_LOCK_TIMEOUT", "0")]);
        let error = DbConfig::from_env(&env, "x").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("DATABASE_MIGRATION_LOCK_TIMEOUT"),
            "{error}"
        );
    }

    #[test]
    fn server_url_gets_the_service_database() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:p@db.example:5432")]);
        assert_eq!(
            DbConfig::from_env(&env, "interaction").unwrap().database(),
            "interaction"
        );
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:p@db.example:5432/")]);
        assert_eq!(
            DbConfig::from_env(&env, "interaction").unwrap().database(),
            "interaction"
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@h:5432/db")]);
        let printed = format!("{:?}", DbConfig::from_env(&env, "x").unwrap());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("\"db\""), "{printed}");
    }

    #[test]
    fn full_url_keeps_its_database() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u@h:5432/custom?sslmode=disable")]);
        assert_eq!(
            DbConfig::from_env(&env, "interaction").unwrap().database(),
            "custom"
        );
    }

    #[test]
    fn invalid_url_names_the_variable_without_printing_it() {
        let env = Env::from_pairs([("DATABASE_URL", "mysql://secret-password@x")]);
        let error = DbConfig::from_env(&env, "x").unwrap_err();
        assert!(matches!(&error, ConfigError::InvalidSecret { var, .. } if var == "DATABASE_URL"));
        assert!(!error.to_string().contains("secret-password"));
    }
}
