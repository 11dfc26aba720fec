//! PostgreSQL: one database per service, created if absent, migrated at start-up.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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
        source: sqlx::migrate::MigrateError,
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
    // sqlx takes an advisory lock, so replicas starting together migrate once.
    tolerant(migrator)
        .await
        .map_err(|source| DbError::Migrate {
            database: database.clone(),
            source,
        })?
        .run(&pool)
        .await
        .map_err(|source| DbError::Migrate { database, source })?;
    Ok(pool)
}

/// Errors that say PostgreSQL is not there yet (refused, timed out, starting up, shutting
/// down), as opposed to a wrong password or database name, which waiting does not mend.
fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => matches!(
            e.code().as_deref(),
            // cannot_connect_now, admin_shutdown, crash_shutdown
            Some("57P03" | "57P01" | "57P02")
        ),
        _ => false,
    }
}

/// `migrator` that accepts applied versions it does not know. During a rollout or a
/// rollback the database may already hold the next release's migration (expand/contract:
/// each migration stays compatible with the previous release), and the older binary must
/// still start; sqlx refuses by default (`VersionMissing`). A known migration whose
/// checksum changed is still refused.
async fn tolerant(migrator: &Migrator) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let mut tolerant = Migrator::new(Resolved(migrator.iter().cloned().collect())).await?;
    tolerant.set_ignore_missing(true);
    Ok(tolerant)
}

/// Migrations already resolved (by `sqlx::migrate!()`), as a source for [`Migrator::new`].
#[derive(Debug)]
struct Resolved(Vec<sqlx::migrate::Migration>);

impl sqlx::migrate::MigrationSource<'static> for Resolved {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async move { Ok(self.0) })
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
