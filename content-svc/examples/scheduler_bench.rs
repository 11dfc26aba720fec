//! Scheduler benchmark: 100 articles due in the same second, three replicas of
//! content-svc (each with its scheduler) over one database, the mock WeChat API.
//! Reports how many were sent, how many twice, and the latest send after the due time
//! (issue 10's target: each exactly once, all within 5 s).
//!
//! WeChat allows 60 calls a minute per account and API, and content-svc checks that
//! before calling: 100 sends in one second on one account would be 40 refused until
//! the next minute. So the articles are spread over two accounts, 50 each, as a city
//! with several accounts sends them.
//!
//! ```sh
//! cargo run -p content-svc --release --example scheduler_bench
//! ```
//! Needs PostgreSQL and NATS as the tests do (`TEST_DATABASE_URL`, `NATS_URL`).
// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use content_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET, MockWechat, SimAccount, SimConfig};

const ARTICLES: i64 = 100;
const REPLICAS: usize = 3;
const COUNTY_APPID: &str = "wxcounty00000001";
const COUNTY_SECRET: &str = "county-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mock = MockWechat::start(SimConfig {
        accounts: vec![
            SimAccount::demo(),
            SimAccount::new(COUNTY_APPID, COUNTY_SECRET),
        ],
        ..SimConfig::default()
    })
    .await?;
    let test_db = TestDb::new("content_bench");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", "bench:admin:bench-admin-key"),
            ("WECHAT_API_BASE_URL", mock.base_url()),
            ("SCHEDULER_INTERVAL", "1s"),
            ("HALL_ADDR", "127.0.0.1:0"),
            ("WECHAT_ACCOUNTS", "demo,county"),
            ("WECHAT_DEMO_APPID", DEMO_APPID),
            ("WECHAT_DEMO_SECRET", DEMO_SECRET),
            ("WECHAT_COUNTY_APPID", COUNTY_APPID),
            ("WECHAT_COUNTY_SECRET", COUNTY_SECRET),
        ],
    );
    let mut stops = Vec::new();
    for _ in 0..REPLICAS {
        let app = Application::build(Config::from_env(&env)?).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    let db = sqlx::PgPool::connect(&test_db.url()).await?;
    let due = Utc::now() + chrono::Duration::seconds(3);
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id, scheduled_for)
         SELECT gen_random_uuid(), CASE WHEN n % 2 = 0 THEN 'demo' ELSE 'county' END, 'press', 'press:li', 'scheduled', '停水通知 ' || n, '<p>停水</p>', 'MEDIA_COVER', $2
           FROM generate_series(1, $1) AS n",
    )
    .bind(ARTICLES)
    .bind(due)
    .execute(&db)
    .await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let submits = mock.state().calls_to("/cgi-bin/freepublish/submit");
        if submits.len() as i64 >= ARTICLES || tokio::time::Instant::now() > deadline {
            let mut per_draft: HashMap<String, usize> = HashMap::new();
            for call in &submits {
                let media = call
                    .body
                    .as_ref()
                    .and_then(|b| b.get("media_id"))
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_owned();
                *per_draft.entry(media).or_default() += 1;
            }
            let twice = per_draft.values().filter(|n| **n > 1).count();
            let latest = submits.iter().map(|c| c.at).max().map(|at| at - due);
            let drafts = mock.state().calls_to("/cgi-bin/draft/add").len();
            println!(
                "{ARTICLES} articles due at once, {REPLICAS} replicas: {} sent ({drafts} drafts), {twice} sent twice, latest send {} ms after the due time",
                submits.len(),
                latest.map(|d| d.num_milliseconds()).unwrap_or(-1)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for stop in stops {
        let _ = stop.send(());
    }
    db.close().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}
