//! The directory bootstrap's cost: content-svc in-process (a fresh database and NATS
//! namespace) holding `SERVICES` services on one account, imported in one
//! `ImportServices`; then `app::directory::bootstrap` into an empty interaction
//! database (cold: every service read with `GetService` and inserted), and again over
//! the complete replica (warm: the periodic reconciliation, listings only).
//!
//! ```sh
//! cargo run --release -p interaction-svc --example directory_bootstrap_bench -- 2000
//! ```
//! Figures go to docs/benchmarks.md; nothing here is asserted.
// The report is the program's output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use interaction_svc::app::directory::bootstrap;
use interaction_svc::config::DirectorySyncConfig;
use interaction_svc::content::ContentDirectory;
use platform::testing::{TestDb, TestNats, service_env};
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;

const ACCOUNT: &str = "bench";
const ADMIN_KEY: &str = "bench-admin-key-0001";
const READER_KEY: &str = "bench-reader-key-0001";

fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    request
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let services: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2000);

    let content_db = TestDb::new("content");
    let content_nats = TestNats::new();
    let keys = format!("city-office:admin:{ADMIN_KEY},interaction-svc:viewer:{READER_KEY}");
    let env = service_env(
        &content_db,
        &content_nats,
        [("API_KEYS", keys.as_str()), ("HALL_ADDR", "127.0.0.1:0")],
    );
    let content = content_svc::Application::build(content_svc::Config::from_env(&env)?).await?;
    let port = content.grpc_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(content.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut client = ContentServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let categories: Vec<String> = client
        .list_categories(authed(pb::ListCategoriesRequest {}))
        .await?
        .into_inner()
        .categories
        .into_iter()
        .map(|c| c.code)
        .collect();
    let seed: String = (0..services)
        .map(|i| {
            let category = &categories[i % categories.len()];
            format!(
                "{ACCOUNT}\t{category}\t便民服务{i}\tdept\t第{i}项便民服务的在线办理说明。\t\t\
                 https://example.gov.cn/s/{i}\t\t\t\t服务{i}|办理{i}\t事项{i}\t\tyes\n"
            )
        })
        .collect();
    let started = Instant::now();
    client
        .import_services(authed(pb::ImportServicesRequest {
            content: seed,
            dry_run: false,
        }))
        .await?;
    println!(
        "import of {services} services into content-svc: {:?}",
        started.elapsed()
    );

    let interaction_db = TestDb::new("interaction");
    let interaction_nats = TestNats::new();
    let config =
        interaction_svc::Config::from_env(&service_env(&interaction_db, &interaction_nats, []))?;
    interaction_svc::migrate(&config).await?;
    let db = sqlx::PgPool::connect(&interaction_db.url()).await?;
    let directory = ContentDirectory::new(&DirectorySyncConfig {
        content_url: format!("http://127.0.0.1:{port}"),
        api_key: READER_KEY.to_owned().into(),
        interval: Duration::from_secs(3600),
    })?;
    let accounts = [ACCOUNT.to_owned()];
    for pass in ["cold (empty replica)", "warm (complete replica)"] {
        let started = Instant::now();
        let report = bootstrap(&db, &directory, &accounts).await?;
        println!(
            "{pass}: {:?} (listed {}, inserted {}, updated {}, retired {})",
            started.elapsed(),
            report.listed,
            report.inserted,
            report.updated,
            report.retired
        );
    }
    db.close().await;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
