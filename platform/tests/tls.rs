//! TLS to NATS and PostgreSQL with rustls, against private servers this test starts
//! with certificates it generates (never the shared servers).

mod private_servers;

use std::time::Duration;

use futures::StreamExt;
use platform::config::Env;
use platform::db::{DbConfig, connect_and_migrate};
use platform::nats::{self, NatsConfig};
use private_servers::{Certs, NatsServer, Scratch, TlsPostgres};

static TEST_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

#[tokio::test]
async fn nats_over_tls_trusts_only_the_configured_ca() {
    let scratch = Scratch::new("nats-tls");
    let certs = Certs::generate(&scratch.0);
    let port = platform::testing::free_port();
    let _server = NatsServer::start(
        &scratch.0,
        "tls",
        port,
        &format!(
            "listen: 127.0.0.1:{port}\ntls {{ cert_file: {:?}, key_file: {:?} }}\n",
            certs.cert, certs.key
        ),
    )
    .await;
    let url = format!("tls://127.0.0.1:{port}");

    let env = Env::from_pairs([
        ("NATS_URL", url.as_str()),
        ("NATS_CA_FILE", certs.ca.to_str().unwrap()),
    ]);
    let client = nats::connect(&NatsConfig::from_env(&env).unwrap(), "tls-test")
        .await
        .expect("the server's certificate verifies against NATS_CA_FILE");
    let mut subscription = client.subscribe("tls.check").await.unwrap();
    client
        .publish("tls.check", "over tls".into())
        .await
        .unwrap();
    let message = subscription.next().await.expect("the message comes back");
    assert_eq!(&message.payload[..], b"over tls");

    // Without the CA the self-signed chain is refused: no silent downgrade.
    let untrusted = Env::from_pairs([("NATS_URL", url.as_str()), ("NATS_CONNECT_TIMEOUT", "1s")]);
    let refused = nats::connect(&NatsConfig::from_env(&untrusted).unwrap(), "tls-test").await;
    assert!(refused.is_err(), "an unknown CA must not be trusted");
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server_and_migrates() {
    let scratch = Scratch::new("pg-certs");
    let certs = Certs::generate(&scratch.0);
    let postgres = TlsPostgres::start(&certs).await;
    let server = format!("postgres://postgres@127.0.0.1:{}", postgres.port);

    let verified = Env::from_pairs([(
        "DATABASE_URL",
        format!(
            "{server}/tls_check?sslmode=verify-full&sslrootcert={}",
            certs.ca.display()
        ),
    )]);
    let config = DbConfig::from_env(&verified, "unused").unwrap();
    let pool = connect_and_migrate(&config, &TEST_MIGRATOR)
        .await
        .expect("verify-full against the test CA connects, creates and migrates");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "the session is encrypted");
    pool.close().await;

    // The server accepts TLS only (pg_hba: hostssl), so a plaintext client is refused...
    let plaintext = Env::from_pairs([(
        "DATABASE_URL",
        format!("{server}/tls_check?sslmode=disable"),
    )]);
    let config = DbConfig::from_env(&plaintext, "unused").unwrap();
    assert!(
        tokio::time::timeout(
            Duration::from_secs(10),
            connect_and_migrate(&config, &TEST_MIGRATOR)
        )
        .await
        .expect("refused promptly")
        .is_err()
    );
    // ...and verify-full without the CA does not trust the self-signed chain: refused at
    // once, not retried as "unreachable" for the whole connect timeout (120 s).
    let unverified = Env::from_pairs([(
        "DATABASE_URL",
        format!("{server}/tls_check?sslmode=verify-full"),
    )]);
    let config = DbConfig::from_env(&unverified, "unused").unwrap();
    assert!(
        tokio::time::timeout(
            Duration::from_secs(10),
            connect_and_migrate(&config, &TEST_MIGRATOR)
        )
        .await
        .expect("an untrusted certificate is refused promptly")
        .is_err()
    );
}
