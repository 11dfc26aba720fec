//! A datacube pull that keeps failing (the AppSecret was reset in the console: the
//! cached token is refused, 40001, and a new one cannot be had, 40125) is counted and
//! recorded, and the months it did not reach stay provisional: the ranking does not
//! call a month final while a ranked account's figures for it are incomplete. WeChat
//! is wechat-sim; the clock is injected.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Days, FixedOffset, Months, NaiveDate, TimeZone, Utc};
use platform::testing::{TestDb, TestNats, metric_value, service_env};
use proto::stats::v1 as pb;
use stats_svc::{Application, Config};
use tonic::transport::Channel;
use wechat_sim::api_server::{DEMO_APPID, FaultRequest, MockWechat, SimConfig};

use crate::helpers::{VIEWER_KEY, authed};

const KEYS: &str = "statistics:viewer:statistics-viewer-key";

struct Replica {
    grpc: u16,
    http: u16,
    admin: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(env: platform::config::Env, now: chrono::DateTime<Utc>) -> Replica {
    let app = Application::build_with_clock(Config::from_env(&env).unwrap(), Arc::new(move || now))
        .await
        .expect("stats-svc starts");
    let (grpc, http, admin) = (app.grpc_port(), app.http_port(), app.admin_port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Replica {
        grpc,
        http,
        admin,
        stop,
        server,
    }
}

impl Replica {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }

    async fn get(&self, port: u16, path: &str) -> String {
        reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Polls `sql` (a count) until it reaches `want`.
async fn wait_for(db: &sqlx::PgPool, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(db).await.unwrap();
        if n >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql}: {n}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_month_whose_article_pull_fails_stays_provisional_and_the_failure_is_counted() {
    let sim = MockWechat::start(SimConfig::default()).await.unwrap();
    let db = TestDb::new("stats");
    let nats = TestNats::new();
    let office = FixedOffset::east_opt(8 * 3600).unwrap();
    // The month two months back: by the calendar long final (its last articles'
    // day-7 figures were due on the 7th of the month after).
    let today = Utc::now().with_timezone(&office).date_naive();
    let month = today.with_day(1).unwrap() - Months::new(2);
    let month_text = month.format("%Y-%m").to_string();

    // The 27th of that month, noon: the articles of the 11th..20th are pulled (day 7).
    let noon = |day: NaiveDate| {
        office
            .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
            .unwrap()
            .to_utc()
    };
    let pulling = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", KEYS),
            ("WECHAT_API_BASE_URL", sim.base_url()),
            ("DATACUBE_BACKFILL_DAYS", "10"),
        ],
    );
    let first = start(pulling, noon(month + Days::new(26))).await;
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    wait_for(
        &pool,
        &format!(
            "SELECT count(*) FROM datacube_progress WHERE api = 'getarticletotal' AND last_day = '{}'",
            month + Days::new(19)
        ),
        1,
    )
    .await;
    first.stop().await;

    // The AppSecret is reset in WeChat's console and the old one stays configured:
    // the cached token is refused and no new one is issued.
    sim.state()
        .inject(&FaultRequest {
            revoke_token: Some(DEMO_APPID.to_owned()),
            ..FaultRequest::default()
        })
        .unwrap();
    let rotated = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", KEYS),
            ("WECHAT_API_BASE_URL", sim.base_url()),
            ("DATACUBE_BACKFILL_DAYS", "10"),
            ("WECHAT_ACCOUNTS", "demo"),
            ("WECHAT_DEMO_APPID", DEMO_APPID),
            ("WECHAT_DEMO_SECRET", "the-secret-before-the-reset"),
        ],
    );
    let second = start(rotated, Utc::now()).await;
    wait_for(
        &pool,
        "SELECT count(*) FROM datacube_failures WHERE account = 'demo' AND api = 'getarticletotal'",
        1,
    )
    .await;

    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", second.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let ranking = pb::stats_service_client::StatsServiceClient::new(channel)
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: month_text.clone(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    let demo = ranking
        .accounts
        .iter()
        .find(|a| a.account == "demo")
        .expect("demo is ranked");
    assert_eq!(
        demo.articles, 20,
        "two articles a day, the 11th to the 20th"
    );
    assert!(demo.figures_incomplete, "{ranking:?}");
    assert!(
        ranking.provisional,
        "the month is not final while demo's figures stop on the 20th: {ranking:?}"
    );

    let page = second
        .get(second.http, &format!("/ranking?month={month_text}"))
        .await;
    assert!(page.contains("数据未定"), "{page}");
    assert!(page.contains("数据不全"), "{page}");
    let account = second.get(second.http, "/account/demo").await;
    assert!(account.contains("微信数据接口拉取失败"), "{account}");

    let metrics = second.get(second.admin, "/metrics").await;
    let failed = |reason: &str| {
        metric_value(
            &metrics,
            "stats_datacube_failures_total",
            &[("api", "getarticletotal"), ("reason", reason)],
        )
    };
    assert!(failed("40001") + failed("40125") >= 1.0, "{metrics}");
    let failing = metrics
        .lines()
        .find_map(|line| line.strip_prefix("stats_datacube_accounts_failing"))
        .and_then(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(failing, Some(1.0), "{metrics}");
    second.stop().await;
    pool.close().await;
    sim.stop().await.unwrap();
}
