//! Dashboard benchmark: a year of rollups (hourly counters and keyword and directory
//! hits included), tickets and articles for 50 accounts
//! written straight into a fresh database, then each page requested `N` times
//! (default 200) one after the other; reports p50 / p99 / max server time as the
//! client sees it on loopback.
//!
//! ```sh
//! cargo run -p stats-svc --example page_bench --release -- 200
//! ```
// The report is the program's output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use platform::testing::{TestDb, TestNats, service_env};
use stats_svc::{Application, Config};

/// A year of data for 50 accounts, in a few set-based statements.
const FILL: &str = "
INSERT INTO daily_counts (account, day, metric, key, value)
SELECT 'acct' || lpad(a::text, 2, '0'), current_date - d, m.metric, m.key, 1 + (a * 7 + d * 13) % 60
  FROM generate_series(0, 49) a, generate_series(0, 364) d,
       (VALUES ('followers_new', ''), ('followers_new', 'hall'), ('followers_new', 'metro'),
               ('followers_lost', ''), ('messages', 'text'), ('messages', 'image'),
               ('events', ''), ('menu_clicks', 'MENU_GUIDE'), ('menu_clicks', 'MENU_QUERY'),
               ('tickets_opened', '住建局'), ('tickets_opened', '水务局'), ('tickets_opened', '交通局'),
               ('tickets_closed', '住建局'), ('tickets_closed', '水务局'), ('tickets_closed', '交通局'),
               ('tickets_acknowledged', '住建局'), ('tickets_overdue', '交通局'),
               ('wx_followers', ''), ('auto_replies', 'rule'), ('auto_replies', 'directory_service'),
               ('wx_article_reads', '1_1'), ('wx_article_reads', '1_2')) AS m(metric, key);
-- Keyword and directory hits (10 keywords, 5 services, 3 categories a day) and the
-- hourly counters (messages, automatic answers, ticket intake by office hour).
INSERT INTO daily_counts (account, day, metric, key, value)
SELECT 'acct' || lpad(a::text, 2, '0'), current_date - d, m.metric, m.prefix || k, 1 + (a + d + k) % 20
  FROM generate_series(0, 49) a, generate_series(0, 364) d,
       (VALUES ('keyword_hits', '关键词', 10), ('directory_service_hits', 'svc-', 5),
               ('directory_category_hits', '分类', 3)) AS m(metric, prefix, keys),
       LATERAL generate_series(1, m.keys) k;
INSERT INTO daily_counts (account, day, metric, key, value)
SELECT 'acct' || lpad(a::text, 2, '0'), current_date - d, m.metric, lpad(h::text, 2, '0'), 1 + (a + d + h) % 9
  FROM generate_series(0, 49) a, generate_series(0, 364) d, generate_series(0, 23) h,
       (VALUES ('messages_by_hour'), ('auto_replies_by_hour'), ('ticket_intake_by_hour')) AS m(metric);
INSERT INTO ticket_times (account, ticket_id, department, department_at, opened_at, acknowledged_at,
                          closed_at, acknowledge_due_at, resolve_due_at, overdue_count, rating)
SELECT 'acct' || lpad(a::text, 2, '0'), a || '-' || d || '-' || t,
       (ARRAY['住建局', '水务局', '交通局', '人社局', '城管局'])[1 + t % 5],
       now() - make_interval(days => d), now() - make_interval(days => d),
       now() - make_interval(days => d) + make_interval(mins => 5 + (a + t * 17) % 120),
       now() - make_interval(days => d) + make_interval(hours => 2 + t),
       now() - make_interval(days => d) + interval '1 hour',
       now() - make_interval(days => d) + interval '72 hours',
       CASE WHEN (a + t) % 7 = 0 THEN 1 ELSE 0 END, 3 + t % 3
  FROM generate_series(0, 49) a, generate_series(0, 364) d, generate_series(0, 9) t;
INSERT INTO article_figures (account, article_id, title, published_on, headline, reads, zaikan, likes, shares, entered_by)
SELECT 'acct' || lpad(a::text, 2, '0'), a || '-' || d || '-' || n, '通知', current_date - d, n = 0,
       500 + (a * 131 + d * 17 + n) % 20000, 5 + d % 50, 10 + d % 90, 3 + d % 40, 'datacube'
  FROM generate_series(0, 49) a, generate_series(0, 364) d, generate_series(0, 1) n;
ANALYZE;
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200);
    let db = TestDb::new("stats-page-bench");
    let nats = TestNats::new();
    let env = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", "bench:viewer:bench-viewer-key"),
            ("DATACUBE_INTERVAL", "0s"),
        ],
    );
    let app = Application::build(Config::from_env(&env)?).await?;
    let base = format!("http://127.0.0.1:{}", app.http_port());
    let filling = Instant::now();
    let pool = sqlx::PgPool::connect(&db.url()).await?;
    sqlx::raw_sql(FILL).execute(&pool).await?;
    pool.close().await;
    println!(
        "filled a year for 50 accounts in {:.1}s",
        filling.elapsed().as_secs_f64()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for page in [
        "/",
        "/account/acct07?days=365",
        "/account/acct07?days=90",
        "/ranking",
    ] {
        let url = format!("{base}{page}");
        // One warm-up request (connection, plans).
        client.get(&url).send().await?.error_for_status()?;
        let mut times: Vec<Duration> = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let body = client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            times.push(started.elapsed());
            std::hint::black_box(body);
        }
        times.sort();
        let at =
            |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        println!(
            "{page:<28} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({requests} requests)",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
