//! Reach from WeChat's datacube (played by wechat-sim, which refuses a range longer
//! than the API allows or one that does not end before today): two replicas start
//! together, one pulls, each range is asked for once in allowed chunks, and the
//! figures are there to read.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Months, TimeZone, Utc};
use platform::testing::{TestDb, TestNats, service_env};
use proto::stats::v1 as pb;
use stats_svc::domain::reach::latest_available;
use stats_svc::{Application, Config};
use tonic::transport::Channel;
use wechat_sim::api_server::{MockWechat, SimConfig};

use crate::helpers::{EDITOR_KEY, VIEWER_KEY, authed};

#[tokio::test]
async fn two_replicas_pull_each_range_once_in_chunks_the_api_allows() {
    let sim = MockWechat::start(SimConfig::default()).await.unwrap();
    let test_db = TestDb::new("stats");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [
            (
                "API_KEYS",
                "statistics:viewer:statistics-viewer-key,press:editor:press-editor-key-01",
            ),
            ("WECHAT_API_BASE_URL", sim.base_url()),
            ("DATACUBE_BACKFILL_DAYS", "10"),
        ],
    );
    // A fixed time, not the system's: the newest article pulled is of `latest` - 6, so
    // with `latest` the 6th (from the 7th to the 8th of every month, a day back) it
    // was the last month's, final by then, and the editor's figures below were
    // refused. At 12:00 office time on 20 November, November is open. wechat-sim
    // takes any range that ends before its today.
    let now: DateTime<Utc> = "2026-11-20T04:00:00Z".parse().expect("an RFC 3339 time");
    let clock: stats_svc::jobs::Clock = Arc::new(move || now);
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let latest = latest_available(now, office);

    let mut replicas = Vec::new();
    for _ in 0..2 {
        let app = Application::build_with_clock(Config::from_env(&env).unwrap(), clock.clone())
            .await
            .expect("a replica starts");
        let grpc_port = app.grpc_port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        replicas.push((grpc_port, stop, server));
    }

    let db = sqlx::PgPool::connect(&test_db.url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM datacube_progress
              WHERE (api = 'getarticletotal' AND last_day = $1) OR last_day = $2",
        )
        .bind(latest - chrono::Days::new(6))
        .bind(latest)
        .fetch_one(&db)
        .await
        .unwrap();
        if done == 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pull not done: {done}/5"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", replicas[0].0))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let followers = pb::stats_service_client::StatsServiceClient::new(channel)
        .get_daily_series(authed(
            pb::GetDailySeriesRequest {
                account: "demo".to_owned(),
                metric: "wx_followers".to_owned(),
                from: (latest - chrono::Days::new(9)).to_string(),
                to: latest.to_string(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        followers.points.len(),
        10,
        "a follower total for each of 10 days"
    );
    let articles: i64 =
        sqlx::query_scalar("SELECT count(*) FROM article_figures WHERE entered_by = 'datacube'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(articles, 20, "two articles a day over 10 days, at day 7");

    // An editor enters the 在看 and likes the datacube lacks: its reads and shares stay.
    let (article_id, published_on, reads, shares): (String, chrono::NaiveDate, i64, i64) =
        sqlx::query_as(
            "SELECT article_id, published_on, reads, shares FROM article_figures
              WHERE entered_by = 'datacube' ORDER BY published_on DESC, article_id LIMIT 1",
        )
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(reads > 0);
    let editor = Channel::from_shared(format!("http://127.0.0.1:{}", replicas[0].0))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::stats_service_client::StatsServiceClient::new(editor)
        .record_article_figures(authed(
            pb::RecordArticleFiguresRequest {
                account: "demo".to_owned(),
                article_id: article_id.clone(),
                published_on: published_on.to_string(),
                headline: Some(true),
                zaikan: 400,
                likes: 90,
                ..Default::default()
            },
            EDITOR_KEY,
        ))
        .await
        .expect("the editor enters figures");
    let after: (i64, i64, i64, i64, String) = sqlx::query_as(
        "SELECT reads, shares, zaikan, likes, title FROM article_figures WHERE article_id = $1",
    )
    .bind(&article_id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (after.0, after.1, after.2, after.3),
        (reads, shares, 400, 90)
    );
    assert!(!after.4.is_empty(), "the pulled title stays");
    // Likes counted again later, entered alone: the 在看 and the headline flag stay.
    pb::stats_service_client::StatsServiceClient::new(
        Channel::from_shared(format!("http://127.0.0.1:{}", replicas[0].0))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .record_article_figures(authed(
        pb::RecordArticleFiguresRequest {
            account: "demo".to_owned(),
            article_id: article_id.clone(),
            published_on: published_on.to_string(),
            likes: 120,
            ..Default::default()
        },
        EDITOR_KEY,
    ))
    .await
    .expect("the editor enters the likes alone");
    let again: (bool, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT headline, reads, shares, zaikan, likes FROM article_figures WHERE article_id = $1",
    )
    .bind(&article_id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(again, (true, reads, shares, 400, 120));
    db.close().await;

    // The day's article reads (getarticlesummary) by article, summed on the account
    // page: wechat-sim answers two articles a day.
    let reads = pb::stats_service_client::StatsServiceClient::new(
        Channel::from_shared(format!("http://127.0.0.1:{}", replicas[0].0))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .get_daily_series(authed(
        pb::GetDailySeriesRequest {
            account: "demo".to_owned(),
            metric: "wx_article_reads".to_owned(),
            from: latest.to_string(),
            to: latest.to_string(),
        },
        VIEWER_KEY,
    ))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(reads.points.len(), 2, "{reads:?}");
    assert!(
        reads
            .points
            .iter()
            .all(|p| p.value > 0 && p.key.ends_with(['1', '2']))
    );

    for (_, stop, server) in replicas {
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
    // 10 days: users in 7-day chunks, reads in 3-day chunks, article totals and
    // summaries one day each; each asked for once although two replicas ran the job.
    let calls = |api: &str| sim.state().calls_to(&format!("/datacube/{api}")).len();
    assert_eq!(calls("getusersummary"), 2);
    assert_eq!(calls("getusercumulate"), 2);
    assert_eq!(calls("getuserread"), 4);
    assert_eq!(calls("getarticletotal"), 10);
    // getarticlesummary takes one day a call: ten calls, each a single day, none refused.
    let summaries = sim.state().calls_to("/datacube/getarticlesummary");
    assert_eq!(summaries.len(), 10);
    for call in &summaries {
        let body = call.body.as_ref().expect("a JSON range");
        assert_eq!(body["begin_date"], body["end_date"], "{body}");
        assert_eq!(call.errcode, 0);
    }
    sim.stop().await.unwrap();
}

#[tokio::test]
async fn wechat_sim_answers_an_article_summary_of_one_day_and_refuses_two() {
    use wechat::api::{Client, ErrCode};
    use wechat::token::{LocalTokenCache, TokenSource};
    use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET};

    let sim = MockWechat::start(SimConfig::default()).await.unwrap();
    let client = Client::builder(
        DEMO_APPID,
        secrecy::SecretString::from(DEMO_SECRET),
        TokenSource::from(LocalTokenCache::default()),
    )
    .base_url(sim.base_url())
    .build()
    .unwrap();
    let day = Utc::now().date_naive() - chrono::Days::new(3);
    let one = client.article_summary(day, day).await.unwrap();
    assert_eq!(one.len(), 2, "{one:?}");
    assert!(one.iter().all(|a| a.ref_date == day));
    let two = client
        .article_summary(day, day + chrono::Days::new(1))
        .await
        .unwrap_err();
    assert_eq!(two.code(), Some(ErrCode::DATE_RANGE_ERROR), "{two}");
    sim.stop().await.unwrap();
}

/// A pull that brings an article whose figures were entered by hand under CONTENT's id
/// (its account not pulled then) gives way to nothing in a month whose ranking is
/// final: the pulled row would replace the entry in the ranking, 在看 and likes moved
/// onto it, changing a list already reported final. It is left out, logged and
/// counted; in a month still open the pull takes the entry's place as before.
#[tokio::test]
async fn a_pull_does_not_replace_figures_entered_in_a_final_month() {
    let sim = MockWechat::start(SimConfig::default()).await.unwrap();
    let test_db = TestDb::new("stats");
    let test_nats = TestNats::new();
    let env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", "statistics:viewer:statistics-viewer-key"),
            ("WECHAT_API_BASE_URL", sim.base_url()),
            ("DATACUBE_BACKFILL_DAYS", "10"),
        ],
    );
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    // Two months back (wechat-sim serves days before its own today only): the month's
    // list turned final on the 7th of the next, and the clock is on its 10th, noon.
    let today = Utc::now().with_timezone(&office).date_naive();
    let month = today.with_day(1).unwrap() - Months::new(2);
    let last = month + Months::new(1) - Days::new(1);
    let now = office
        .from_local_datetime(&(last + Days::new(10)).and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .to_utc();
    // The pull's articles run from last - 6 to last + 3 (day 7, 10 days of backfill).
    stats_svc::migrate(&Config::from_env(&env).unwrap())
        .await
        .expect("migrated");
    let db = sqlx::PgPool::connect(&test_db.url()).await.unwrap();
    let message = |day: chrono::NaiveDate| format!("{}01", day.format("%Y%m%d"));
    let next = last + Days::new(2);
    for (id, day) in [("art-final", last), ("art-open", next)] {
        // Entered by a desk while the account was not pulled (as record_entry keeps it).
        sqlx::query(
            "INSERT INTO article_figures (account, article_id, title, published_on, headline,
                 reads, zaikan, likes, shares, entered_by, msg_data_id, message_index)
             VALUES ('demo', $1, '模拟文章 1', $2, TRUE, 900, 40, 60, 0, 'press', $3, 1)",
        )
        .bind(id)
        .bind(day)
        .bind(message(day))
        .execute(&db)
        .await
        .unwrap();
    }
    let app = Application::build_with_clock(Config::from_env(&env).unwrap(), Arc::new(move || now))
        .await
        .expect("stats-svc starts");
    let admin = app.admin_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reached: Option<chrono::NaiveDate> = sqlx::query_scalar(
            "SELECT last_day FROM datacube_progress WHERE account = 'demo' AND api = 'getarticletotal'",
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        if reached == Some(last + Days::new(3)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "article pull not done: {reached:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let row = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT reads, zaikan, likes FROM article_figures WHERE account = 'demo' AND article_id = $1",
            )
            .bind(id)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    };
    let final_id = format!("{}_1", message(last));
    assert_eq!(
        row(final_id.clone()).await,
        None,
        "{final_id} is dated in a final month and would replace its entry"
    );
    assert!(
        row(format!("{}_2", message(last))).await.is_some(),
        "its sibling, entered nowhere, is pulled"
    );
    let list: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT zaikan, likes FROM article_figures WHERE account = 'demo' AND article_id = 'art-final'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        list,
        [(40, 60)],
        "the entry stays as the final month had it"
    );
    let (reads, zaikan, likes) = row(format!("{}_1", message(next)))
        .await
        .expect("an open month's article is pulled");
    assert_eq!(
        (zaikan, likes),
        (40_i64.min(reads), 60_i64.min(reads)),
        "its entry's 在看 and likes move onto it"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The recorder is the process's: other tests in it may count too.
    assert!(
        platform::testing::metric_value(
            &metrics,
            "stats_datacube_articles_refused_total",
            &[("reason", "month_final")]
        ) >= 1.0,
        "{metrics}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    db.close().await;
    sim.stop().await.unwrap();
}
