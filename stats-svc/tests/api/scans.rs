//! Statements that run hourly on every replica or on every dashboard load read an
//! index or a small table, never every ticket: with years of tickets a full scan of
//! `ticket_times` took seconds. Checked on the plans PostgreSQL picks for a seeded
//! table, not on timings.

use chrono::{DateTime, Days, NaiveDate, Utc};
use stats_svc::domain::rollup::Metric;
use stats_svc::store::{alarms, articles, rollups};

use crate::helpers::spawn_app;

/// The plan of `sql` run with `binds` (as the store runs it), one line per node.
async fn plan(
    db: &sqlx::PgPool,
    sql: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> String {
    let explain = format!("EXPLAIN {sql}");
    let query = bind(sqlx::query(&explain));
    use sqlx::Row as _;
    query
        .fetch_all(db)
        .await
        .expect("EXPLAIN runs")
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// 300,000 tickets of three accounts over three years (about what a city's accounts
/// gather), a few hundred of them escalated twice and open.
#[tokio::test]
async fn inspection_and_overview_statements_do_not_scan_every_ticket() {
    let app = spawn_app().await;
    let db = app.db().await;
    sqlx::query(
        "INSERT INTO ticket_times (account, ticket_id, department, opened_at, acknowledged_at,
                                   closed_at, last_closed_at, acknowledge_due_at, overdue_count)
         SELECT (ARRAY['chenzhou','yizhang','guiyang'])[1 + n % 3], 't' || n, 'water',
                at, at + interval '2 hours',
                CASE WHEN n % 1000 = 0 THEN NULL ELSE at + interval '3 days' END,
                CASE WHEN n % 1000 = 0 THEN NULL ELSE at + interval '3 days' END,
                at + interval '1 day', CASE WHEN n % 1000 = 0 THEN 2 ELSE 0 END
           FROM generate_series(1, 300000) AS n,
                LATERAL (SELECT timestamptz '2024-01-01' + n * interval '5 minutes' AS at) t",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("ANALYZE ticket_times")
        .execute(&db)
        .await
        .unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let now: DateTime<Utc> = at("2026-11-30T02:00:00Z");
    let since: NaiveDate = "2026-11-23".parse().unwrap();

    let known = plan(&db, articles::KNOWN_ACCOUNTS_SQL, |q| {
        q.bind(since).bind(Metric::WxFollowers.as_str())
    })
    .await;
    let escalated = plan(&db, alarms::ESCALATED_TWICE_SQL, |q| q.bind("chenzhou")).await;
    let summaries = plan(&db, rollups::TICKET_SUMMARIES_SQL, |q| {
        q.bind(now - Days::new(7))
            .bind(now - Days::new(30))
            .bind(now + Days::new(1))
            .bind(now)
    })
    .await;
    let mut full_scans = Vec::new();
    if known.contains("ticket_times") {
        full_scans.push(format!("the account list reads every ticket:\n{known}"));
    }
    for (statement, plan) in [
        ("escalated_twice", &escalated),
        ("ticket_summaries", &summaries),
    ] {
        if plan.contains("Seq Scan on ticket_times") {
            full_scans.push(format!("{statement} scans every ticket:\n{plan}"));
        }
    }
    assert!(full_scans.is_empty(), "{}", full_scans.join("\n\n"));
    db.close().await;
    app.stop().await;
}

/// The ranking's articles of a month and the alarms of a week read the days asked
/// about (and the pulled row a hand-entered CONTENT row gives way to is looked up by
/// its id, through the primary key or, for a row without its place in the message,
/// `article_figures_message`), not every article or alarm ever stored: with years of
/// them, each ranking page and each readiness read them all.
#[tokio::test]
async fn ranking_and_alarm_statements_read_the_days_asked_about() {
    let app = spawn_app().await;
    let db = app.db().await;
    // Three years of articles of 50 accounts, six a day each: a pulled datacube row and
    // a CONTENT row (announced with its message and place, one in ten before the place
    // was kept) of every article.
    sqlx::query(
        "INSERT INTO article_figures (account, article_id, title, published_on, headline,
                                      reads, entered_by, pulled_at, msg_data_id, message_index)
         SELECT 'a' || (n % 50), kind || n, '', date '2024-01-01' + (n / 150), true, 100,
                CASE kind WHEN 'd' THEN 'datacube' ELSE 'press' END,
                CASE kind WHEN 'd' THEN now() END,
                CASE kind WHEN 'c' THEN 'm' || n END,
                CASE WHEN kind = 'c' AND n % 10 <> 0 THEN 1 END
           FROM generate_series(1, 150000) AS n, unnest(ARRAY['c', 'd']) AS kind",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE article_figures SET article_id = 'm' || substr(article_id, 2) || '_1'
          WHERE entered_by = 'datacube'",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO alarms (account, rule, subject, day, detail)
         SELECT 'a' || (n % 50), 'overdue_share', 'd' || (n % 7), date '2024-01-01' + (n / 200), ''
           FROM generate_series(1, 200000) AS n
         ON CONFLICT DO NOTHING",
    )
    .execute(&db)
    .await
    .unwrap();
    for table in ["article_figures", "alarms"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&db)
            .await
            .unwrap();
    }
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let month = plan(&db, &articles::published_between_sql(), |q| {
        q.bind(day("2026-11-01"))
            .bind(day("2026-11-30"))
            .bind(None::<Vec<String>>)
            .bind(true)
    })
    .await;
    let week = plan(&db, alarms::LIST_SQL, |q| {
        q.bind(day("2026-11-24"))
            .bind(day("2026-11-30"))
            .bind(None::<Vec<String>>)
    })
    .await;
    let mut full_scans = Vec::new();
    if month.contains("Seq Scan on article_figures") {
        full_scans.push(format!("the month's articles read every article:\n{month}"));
    }
    for index in ["article_figures_pkey", "article_figures_message"] {
        if !month.contains(index) {
            full_scans.push(format!(
                "the month's articles look up no pulled row through {index}:\n{month}"
            ));
        }
    }
    if week.contains("Seq Scan on alarms") {
        full_scans.push(format!("the week's alarms read every alarm:\n{week}"));
    }
    assert!(full_scans.is_empty(), "{}", full_scans.join("\n\n"));
    db.close().await;
    app.stop().await;
}
