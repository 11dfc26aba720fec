//! Inspection and ranking as the new-media office meets them: an article published
//! (a CONTENT event) starts the update-gap clock, the alarm fires on the tenth day
//! and not the ninth (the job's clock injected), reaches the STATS stream and the
//! alarm list; figures entered by hand rank the accounts by WCI.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use prost::Message as _;
use proto::stats::v1 as pb;
use stats_svc::domain::inspection::InspectionRules;
use stats_svc::jobs::inspection::{Clock, check_once};

use crate::helpers::{
    COUNTY_KEY, EDITOR_KEY, NOVEMBER_OPEN, TestApp, VIEWER_KEY, WATER_DESK_KEY, authed,
    publish_article, publish_article_at, publish_article_in, pull_articles, pulled,
    retract_article, retract_article_at, spawn_app, spawn_app_at, summarise_article,
    wait_for_article, wait_for_retraction,
};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn clock(now: &str) -> Clock {
    let now = at(now);
    Arc::new(move || now)
}

fn office() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[tokio::test]
async fn the_update_gap_alarm_fires_on_day_ten_not_day_nine_and_reaches_the_stats_stream() {
    let app = spawn_app().await;
    let db = app.db().await;
    let stats = app
        .jetstream
        .get_stream(app.nats.namespace.name("STATS"))
        .await
        .expect("stats-svc provisioned STATS");
    let mut alarms = stats
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: app.nats.namespace.subject("stats.chenzhou.alarm.no_update"),
            ..Default::default()
        })
        .await
        .unwrap()
        .messages()
        .await
        .unwrap();
    // Published at 20:00 on 20 November in the office.
    publish_article(&app, "chenzhou", "a-1", "2026-11-20T12:00:00Z").await;
    wait_for_article(&db, "a-1").await;
    let rules = InspectionRules::default();

    // 29 November is day 9: nothing yet.
    let day_nine = clock("2026-11-29T02:00:00Z");
    check_once(
        &db,
        &rules,
        &stats_svc::domain::install::Install::unnamed(),
        &day_nine,
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let raised: i64 = sqlx::query_scalar("SELECT count(*) FROM alarms WHERE day = '2026-11-29'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(raised, 0, "no alarm on day 9");

    // 30 November is day 10: the alarm, once however often the job runs that day.
    let day_ten = clock("2026-11-30T02:00:00Z");
    assert_eq!(
        check_once(
            &db,
            &rules,
            &stats_svc::domain::install::Install::unnamed(),
            &day_ten,
            office(),
            &work_calendar::WorkCalendar::default()
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        check_once(
            &db,
            &rules,
            &stats_svc::domain::install::Install::unnamed(),
            &day_ten,
            office(),
            &work_calendar::WorkCalendar::default()
        )
        .await
        .unwrap(),
        0
    );

    // The job's own hourly run (on the real date) may announce an alarm of its own.
    let raised = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = alarms.next().await.unwrap().unwrap();
            let raised = pb::AlarmRaised::decode(message.payload.clone()).unwrap();
            if raised.day == "2026-11-30" {
                return raised;
            }
        }
    })
    .await
    .expect("the alarm reaches STATS");
    assert_eq!(raised.rule, "no_update");
    assert!(raised.detail.contains("10 天"), "{}", raised.detail);

    let listed = app
        .client
        .clone()
        .list_alarms(authed(
            pb::ListAlarmsRequest {
                account: "chenzhou".to_owned(),
                from: "2026-11-01".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.alarms.len(), 1);
    assert_eq!(listed.alarms[0].rule, "no_update");

    let report = app
        .client
        .clone()
        .get_readiness_report(authed(
            pb::GetReadinessReportRequest {
                account: "chenzhou".to_owned(),
                date: "2026-11-29".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.last_published_on, "2026-11-20");
    assert_eq!(report.days_since_update, 9);
    assert!(report.update_ok && report.interaction_ok);
    // Day 10 raises the alarm, a warning: the national veto (no update within the
    // 2 weeks before the check) fails from day 14.
    for (date, days, ok) in [("2026-11-30", 10, true), ("2026-12-04", 14, false)] {
        let report = readiness(&app, date).await;
        assert_eq!(report.days_since_update, days);
        assert_eq!(report.update_ok, ok, "update_ok on {date}, day {days}");
    }
    db.close().await;
    app.stop().await;
}

async fn readiness(app: &TestApp, date: &str) -> pb::ReadinessReport {
    app.client
        .clone()
        .get_readiness_report(authed(
            pb::GetReadinessReportRequest {
                account: "chenzhou".to_owned(),
                date: date.to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_retracted_article_is_no_update_and_the_gap_alarm_fires_ten_days_after_the_last_one_left()
{
    let app = spawn_app().await;
    let db = app.db().await;
    let rules = InspectionRules::default();
    // The only article in two weeks goes out at 20:00 on 25 November (office time) and
    // is deleted on WeChat at 10:00 the next morning; the retraction is redelivered.
    publish_article(&app, "chenzhou", "a-1", "2026-11-25T12:00:00Z").await;
    wait_for_article(&db, "a-1").await;
    retract_article(&app, "chenzhou", "a-1", "2026-11-26T02:00:00Z", "m-1").await;
    retract_article(&app, "chenzhou", "a-1", "2026-11-26T02:00:00Z", "m-1-again").await;
    wait_for_retraction(&db, "chenzhou", "a-1").await;

    // 25 November, read as at its end, still had it.
    let before = readiness(&app, "2026-11-25").await;
    assert_eq!(before.last_published_on, "2026-11-25");
    assert!(before.update_ok);

    // On 5 December (day 10 after it) the inspector sees nothing: the alarm fires.
    let day_ten = clock("2026-12-05T02:00:00Z");
    assert_eq!(
        check_once(
            &db,
            &rules,
            &stats_svc::domain::install::Install::unnamed(),
            &day_ten,
            office(),
            &work_calendar::WorkCalendar::default()
        )
        .await
        .unwrap(),
        1
    );
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM alarms WHERE account = 'chenzhou' AND rule = 'no_update'
            AND day = '2026-12-05'",
    )
    .fetch_one(&db)
    .await
    .expect("a no_update alarm on 5 December");
    assert!(!detail.contains("2026-11-25"), "{detail}");
    let report = readiness(&app, "2026-12-05").await;
    assert_eq!(
        report.last_published_on, "",
        "no article left on the account"
    );
    assert!(!report.update_ok);
    assert!(report.alarms.iter().any(|a| a.rule == "no_update"));
    // The dashboard's overview reads the same.
    let lines = stats_svc::store::articles::last_published_by_account(
        &db,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(lines, vec![("chenzhou".to_owned(), None)]);

    // An article published afterwards counts.
    publish_article(&app, "chenzhou", "a-2", "2026-12-06T02:00:00Z").await;
    wait_for_article(&db, "a-2").await;
    let after = readiness(&app, "2026-12-06").await;
    assert_eq!(after.last_published_on, "2026-12-06");
    assert!(after.update_ok);
    assert_eq!(
        check_once(
            &db,
            &rules,
            &stats_svc::domain::install::Install::unnamed(),
            &clock("2026-12-06T03:00:00Z"),
            office(),
            &work_calendar::WorkCalendar::default()
        )
        .await
        .unwrap(),
        0
    );
    db.close().await;
    app.stop().await;
}

async fn enter(app: &TestApp, account: &str, article: &str, reads: u64, zaikan: u64) {
    app.client
        .clone()
        .record_article_figures(authed(
            pb::RecordArticleFiguresRequest {
                account: account.to_owned(),
                article_id: article.to_owned(),
                title: "通知".to_owned(),
                published_on: "2026-11-10".to_owned(),
                headline: Some(true),
                reads,
                zaikan,
                likes: 0,
                shares: 0,
            },
            EDITOR_KEY,
        ))
        .await
        .expect("an editor enters figures");
}

/// Accounts the datacube does not pull: their articles, announced on CONTENT, take
/// every figure by hand.
#[tokio::test]
async fn entered_figures_rank_the_accounts_by_wci_within_the_callers_reach() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    for (account, article) in [("chenzhou", "c-1"), ("chenzhou", "c-2"), ("yizhang", "y-1")] {
        publish_article(&app, account, article, "2026-11-10T02:00:00Z").await;
        wait_for_article(&db, article).await;
    }
    db.close().await;
    enter(&app, "chenzhou", "c-1", 20_000, 300).await;
    enter(&app, "chenzhou", "c-2", 5_000, 40).await;
    enter(&app, "yizhang", "y-1", 3_000, 10).await;
    let ranking = |key: &'static str, version: &'static str| {
        let mut client = app.client.clone();
        async move {
            client
                .get_monthly_ranking(authed(
                    pb::GetMonthlyRankingRequest {
                        month: "2026-11".to_owned(),
                        version: version.to_owned(),
                        week_of: String::new(),
                    },
                    key,
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };

    let city = ranking(VIEWER_KEY, "v13").await.unwrap();
    let order: Vec<(u32, &str, u64)> = city
        .accounts
        .iter()
        .map(|a| (a.rank, a.account.as_str(), a.articles))
        .collect();
    assert_eq!(order, [(1, "chenzhou", 2), (2, "yizhang", 1)]);
    assert!(city.accounts[0].wci > city.accounts[1].wci);

    // The week of Tuesday 10 November runs from Sunday the 8th: all three articles.
    let week = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                week_of: "2026-11-10".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(week.week_from, "2026-11-08");
    assert_eq!(week.accounts[0].account, "chenzhou");
    assert_eq!(week.accounts.len(), 2);

    let county = ranking(COUNTY_KEY, "").await.unwrap();
    assert_eq!(county.version, "v14.2");
    assert_eq!(county.accounts.len(), 1);
    assert_eq!(county.accounts[0].account, "yizhang");

    let status = ranking(VIEWER_KEY, "v99").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("version:"), "{status:?}");
    // Viewers read figures; they do not enter them.
    let status = app
        .client
        .clone()
        .record_article_figures(authed(
            pb::RecordArticleFiguresRequest {
                account: "chenzhou".to_owned(),
                article_id: "c-3".to_owned(),
                published_on: "2026-11-11".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    app.stop().await;
}

/// The datacube reports an article under its own id (`{msg_data_id}_{index}`), a row a
/// retraction (naming content-svc's id) does not mark: once the day-7 pull brought it,
/// a retracted article was the account's last update again and the gap alarm stayed
/// silent. An article of the same message still up keeps the day.
#[tokio::test]
async fn a_retracted_article_stays_gone_once_the_datacube_reports_it() {
    let app = spawn_app().await;
    let db = app.db().await;
    let rules = InspectionRules::default();
    publish_article(&app, "chenzhou", "a-0", "2026-11-10T02:00:00Z").await;
    publish_article_in(
        &app,
        "chenzhou",
        "a-1",
        "2026-11-25T12:00:00Z",
        "2026112501",
    )
    .await;
    wait_for_article(&db, "a-0").await;
    wait_for_article(&db, "a-1").await;
    retract_article(&app, "chenzhou", "a-1", "2026-11-26T02:00:00Z", "m-1").await;
    wait_for_retraction(&db, "chenzhou", "a-1").await;
    // The day-7 pull on 3 December brings the same article under the datacube's id.
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026112501_1", "2026-11-25", 900, 4)],
    )
    .await;

    let report = readiness(&app, "2026-12-03").await;
    assert_eq!(report.last_published_on, "2026-11-10", "a-1 is gone");
    assert!(!report.update_ok);
    assert_eq!(
        check_once(
            &db,
            &rules,
            &stats_svc::domain::install::Install::unnamed(),
            &clock("2026-12-03T02:00:00Z"),
            office(),
            &work_calendar::WorkCalendar::default()
        )
        .await
        .unwrap(),
        1,
        "23 days since the last article still up"
    );
    let lines = stats_svc::store::articles::last_published_by_account(
        &db,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        lines,
        vec![(
            "chenzhou".to_owned(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 10)
        )]
    );

    // A message of two: its second article, still up, keeps the day.
    publish_article_in(
        &app,
        "chenzhou",
        "b-1",
        "2026-12-04T02:00:00Z",
        "2026120401",
    )
    .await;
    publish_article_in(
        &app,
        "chenzhou",
        "b-2",
        "2026-12-04T02:00:00Z",
        "2026120401",
    )
    .await;
    wait_for_article(&db, "b-2").await;
    retract_article(&app, "chenzhou", "b-1", "2026-12-04T03:00:00Z", "m-2").await;
    wait_for_retraction(&db, "chenzhou", "b-1").await;
    pull_articles(
        &db,
        "chenzhou",
        &[
            pulled("2026120401_1", "2026-12-04", 900, 4),
            pulled("2026120401_2", "2026-12-04", 300, 1),
        ],
    )
    .await;
    assert_eq!(
        readiness(&app, "2026-12-12").await.last_published_on,
        "2026-12-04"
    );
    db.close().await;
    app.stop().await;
}

/// content-svc's retraction names the article's place in its message, which is the
/// datacube's id of it (`{msg_data_id}_{index}`): an article announced before stats-svc
/// kept its message (nothing tied it to the datacube's rows) stops counting by its
/// daily summary and its day-7 row once retracted, and only that article: its sibling
/// still up keeps the day until it is retracted too. A message announced with its
/// places keeps its day while one of its articles is still up.
#[tokio::test]
async fn a_retraction_naming_its_place_takes_out_that_articles_datacube_rows_not_its_siblings() {
    let app = spawn_app().await;
    let db = app.db().await;
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    publish_article(&app, "chenzhou", "a-0", "2026-11-10T02:00:00Z").await;
    // Sent at 20:00 on 25 November as message 2026112501 of two, announced without it.
    publish_article(&app, "chenzhou", "a-1", "2026-11-25T12:00:00Z").await;
    publish_article(&app, "chenzhou", "a-2", "2026-11-25T12:00:00Z").await;
    wait_for_article(&db, "a-0").await;
    wait_for_article(&db, "a-1").await;
    wait_for_article(&db, "a-2").await;
    summarise_article(&db, "chenzhou", day("2026-11-25"), "2026112501_1", 600).await;
    summarise_article(&db, "chenzhou", day("2026-11-25"), "2026112501_2", 200).await;

    // The second article is deleted the next morning; the retraction is redelivered.
    for msg_id in ["m-2", "m-2-again"] {
        retract_article_at(
            &app,
            "chenzhou",
            "a-2",
            "2026-11-26T02:00:00Z",
            msg_id,
            "2026112501",
            2,
        )
        .await;
    }
    wait_for_retraction(&db, "chenzhou", "a-2").await;
    assert_eq!(
        readiness(&app, "2026-11-28").await.last_published_on,
        "2026-11-25",
        "the headline of the 25th is still up"
    );
    retract_article_at(
        &app,
        "chenzhou",
        "a-1",
        "2026-11-27T02:00:00Z",
        "m-1",
        "2026112501",
        1,
    )
    .await;
    wait_for_retraction(&db, "chenzhou", "a-1").await;
    assert_eq!(
        readiness(&app, "2026-11-28").await.last_published_on,
        "2026-11-10",
        "both articles of the 25th are gone, their daily summaries with them"
    );
    // The day-7 pull brings both under the datacube's ids.
    pull_articles(
        &db,
        "chenzhou",
        &[
            pulled("2026112501_1", "2026-11-25", 900, 4),
            pulled("2026112501_2", "2026-11-25", 300, 1),
        ],
    )
    .await;
    assert_eq!(
        readiness(&app, "2026-12-03").await.last_published_on,
        "2026-11-10"
    );
    let lines = stats_svc::store::articles::last_published_by_account(&db, day("2026-12-03"))
        .await
        .unwrap();
    assert_eq!(
        lines,
        vec![("chenzhou".to_owned(), Some(day("2026-11-10")))]
    );

    // A message announced with its places: its headline still up keeps its day.
    for (article, index) in [("b-1", 1), ("b-2", 2)] {
        publish_article_at(
            &app,
            "chenzhou",
            article,
            "冬季供暖通知",
            "2026-12-04T02:00:00Z",
            "2026120401",
            index,
        )
        .await;
        wait_for_article(&db, article).await;
    }
    retract_article_at(
        &app,
        "chenzhou",
        "b-2",
        "2026-12-04T03:00:00Z",
        "m-3",
        "2026120401",
        2,
    )
    .await;
    wait_for_retraction(&db, "chenzhou", "b-2").await;
    pull_articles(
        &db,
        "chenzhou",
        &[
            pulled("2026120401_1", "2026-12-04", 900, 4),
            pulled("2026120401_2", "2026-12-04", 300, 1),
        ],
    )
    .await;
    assert_eq!(
        readiness(&app, "2026-12-12").await.last_published_on,
        "2026-12-04"
    );
    db.close().await;
    app.stop().await;
}

/// An account that publishes outside content-svc announces nothing on CONTENT: its
/// article of 18 November reaches the datacube's daily summary the morning after, and
/// its day-7 figures only on the 25th. On the 20th, ten days after its article of the
/// 10th, its last update is the 18th and no update-gap alarm fires. A summary of a
/// message CONTENT announced does not bring back an article retracted since.
#[tokio::test]
async fn an_article_published_outside_content_svc_counts_from_its_daily_summary() {
    let app = spawn_app().await;
    let db = app.db().await;
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    pull_articles(
        &db,
        "anren",
        &[pulled("2247480010_1", "2026-11-10", 900, 3)],
    )
    .await;
    summarise_article(&db, "anren", day("2026-11-18"), "2247480018_1", 300).await;

    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2247470008_1", "2026-11-08", 500, 1)],
    )
    .await;
    publish_article_in(
        &app,
        "chenzhou",
        "c-1",
        "2026-11-18T02:00:00Z",
        "2247470018",
    )
    .await;
    wait_for_article(&db, "c-1").await;
    retract_article(&app, "chenzhou", "c-1", "2026-11-19T02:00:00Z", "r-1").await;
    wait_for_retraction(&db, "chenzhou", "c-1").await;
    summarise_article(&db, "chenzhou", day("2026-11-18"), "2247470018_1", 40).await;

    let rules = InspectionRules::default();
    check_once(
        &db,
        &rules,
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-20T02:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    // Up to the checked day: the service's own inspection checks the real date.
    let alarmed: Vec<(String, String)> =
        sqlx::query_as("SELECT account, rule FROM alarms WHERE day <= '2026-11-20' ORDER BY 1, 2")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        alarmed,
        [("chenzhou".to_owned(), "no_update".to_owned())],
        "anren published on the 18th; chenzhou's article of the 18th was retracted"
    );
    let readiness = app
        .client
        .clone()
        .get_readiness_report(authed(
            pb::GetReadinessReportRequest {
                account: "anren".to_owned(),
                date: "2026-11-20".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(readiness.last_published_on, "2026-11-18");
    db.close().await;
    app.stop().await;
}

/// A change of ticket `ticket` (opened 09:00 on 30 November, office time; its
/// acknowledgement due at 10:00, its resolution on 10 December) at `at`, owned by
/// `department` after it.
fn ticket_change(
    event_id: &str,
    ticket: &str,
    department: &str,
    kind: proto::events::v1::TicketChangeKind,
    at: &str,
) -> proto::events::v1::TicketChanged {
    use proto::events::v1 as ev;
    let ts = |rfc3339: &str| {
        Some(prost_types::Timestamp {
            seconds: self::at(rfc3339).timestamp(),
            nanos: 0,
        })
    };
    ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: event_id.to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: ts(at),
        }),
        kind: kind as i32,
        ticket_id: ticket.to_owned(),
        department: department.to_owned(),
        opened_at: ts("2026-11-30T01:00:00Z"),
        acknowledge_due_at: ts("2026-11-30T02:00:00Z"),
        resolve_due_at: ts("2026-12-10T01:00:00Z"),
        ..Default::default()
    }
}

/// The overdue share counts a ticket for every department that did or missed a step
/// of it, as the scorecard judges them, not for its owner now: a dispatch desk that
/// acknowledged ten tickets in time and passed each on to water, and missed the
/// acknowledgement of an eleventh it still holds, is late on 1 of 11 (its scorecard:
/// 10 of 11 in time), not 1 of 1. Nor does one miss of one ticket judged make a share:
/// a department needs `overdue_min_late` (3) late tickets before it alarms.
#[tokio::test]
async fn the_overdue_share_counts_the_tickets_a_department_handled_not_those_it_holds_now() {
    use ev::TicketChangeKind as K;
    use proto::events::v1 as ev;
    let app = spawn_app().await;
    let db = app.db().await;
    let mut changes = Vec::new();
    for n in 0..10 {
        let id = format!("d{n}");
        changes.push(ticket_change(
            &format!("{id}-open"),
            &id,
            "dispatch",
            K::Opened,
            "2026-11-30T01:00:00Z",
        ));
        changes.push(ticket_change(
            &format!("{id}-ack"),
            &id,
            "dispatch",
            K::Acknowledged,
            "2026-11-30T01:10:00Z",
        ));
        changes.push(ev::TicketChanged {
            previous_department: "dispatch".to_owned(),
            ..ticket_change(
                &format!("{id}-move"),
                &id,
                "water",
                K::Assigned,
                "2026-11-30T01:20:00Z",
            )
        });
    }
    let missed = |event_id: &str, ticket: &str, department: &str| ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..ticket_change(
            event_id,
            ticket,
            department,
            K::Overdue,
            "2026-11-30T02:00:00Z",
        )
    };
    changes.push(ticket_change(
        "d10-open",
        "d10",
        "dispatch",
        K::Opened,
        "2026-11-30T01:00:00Z",
    ));
    changes.push(missed("d10-overdue", "d10", "dispatch"));
    // Roads: one ticket judged, missed. Parks: five judged, three missed (60%).
    changes.push(ticket_change(
        "r0-open",
        "r0",
        "roads",
        K::Opened,
        "2026-11-30T01:00:00Z",
    ));
    changes.push(missed("r0-overdue", "r0", "roads"));
    for n in 0..5 {
        let id = format!("p{n}");
        changes.push(ticket_change(
            &format!("{id}-open"),
            &id,
            "parks",
            K::Opened,
            "2026-11-30T01:00:00Z",
        ));
        if n < 3 {
            changes.push(missed(&format!("{id}-overdue"), &id, "parks"));
        } else {
            changes.push(ticket_change(
                &format!("{id}-ack"),
                &id,
                "parks",
                K::Acknowledged,
                "2026-11-30T01:30:00Z",
            ));
        }
    }
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&db)
            .await
            .unwrap();
        if applied >= changes.len() as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {} events applied",
            changes.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The scorecard: dispatch acknowledged 10 of its 11 judged tickets in time.
    let card = app
        .client
        .clone()
        .get_department_scorecard(authed(
            pb::GetDepartmentScorecardRequest {
                account: "chenzhou".to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .expect("scorecard answers")
        .into_inner();
    let dispatch = card
        .departments
        .iter()
        .find(|d| d.department == "dispatch")
        .expect("dispatch on the scorecard");
    assert_eq!(dispatch.acknowledge_judged, 11);

    // 14:00 office time, first under the default rules, then alarming from one late
    // ticket: only then could dispatch's share alarm, were it counted on the one
    // ticket it holds now (1 of 1) rather than the eleven it handled (1 of 11).
    let overdue_alarms = |min_late: i64| {
        let db = db.clone();
        async move {
            check_once(
                &db,
                &InspectionRules {
                    overdue_min_late: min_late,
                    ..InspectionRules::default()
                },
                &stats_svc::domain::install::Install::unnamed(),
                &clock("2026-11-30T06:00:00Z"),
                office(),
                &work_calendar::WorkCalendar::default(),
            )
            .await
            .expect("inspection runs");
            sqlx::query_as::<_, (String, String)>(
                "SELECT subject, detail FROM alarms
                  WHERE rule = 'overdue_share' AND day = '2026-11-30' ORDER BY subject",
            )
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        overdue_alarms(3).await,
        [("parks".to_owned(), "parks 近 30 天超期 3/5 件".to_owned())],
        "roads' one late ticket is below the default minimum of three"
    );
    assert_eq!(
        overdue_alarms(1).await,
        [
            ("parks".to_owned(), "parks 近 30 天超期 3/5 件".to_owned()),
            ("roads".to_owned(), "roads 近 30 天超期 1/1 件".to_owned()),
        ],
        "dispatch is late on 1 of the 11 tickets it handled (9%, under the 20% share)"
    );
    db.close().await;
    app.stop().await;
}

/// A desk's key reads no other department's overdue figures through the alarms: the
/// parks share (3 of 5 late) and a parks ticket escalated twice are raised, and the
/// water desk's `ListAlarms` and `GetReadinessReport` hold neither; a key reading
/// every department (the statistics office) sees both.
#[tokio::test]
async fn a_desk_key_reads_no_other_departments_overdue_alarms() {
    use ev::TicketChangeKind as K;
    use proto::events::v1 as ev;
    let app = spawn_app().await;
    let db = app.db().await;
    let missed =
        |event_id: &str, ticket: &str, deadline: ev::TicketDeadline, at: &str| ev::TicketChanged {
            deadline: deadline as i32,
            overdue: true,
            ..ticket_change(event_id, ticket, "parks", K::Overdue, at)
        };
    let mut changes = Vec::new();
    for n in 0..5 {
        let id = format!("p{n}");
        changes.push(ticket_change(
            &format!("{id}-open"),
            &id,
            "parks",
            K::Opened,
            "2026-11-30T01:00:00Z",
        ));
        if n < 3 {
            changes.push(missed(
                &format!("{id}-overdue"),
                &id,
                ev::TicketDeadline::Acknowledge,
                "2026-11-30T02:00:00Z",
            ));
        } else {
            changes.push(ticket_change(
                &format!("{id}-ack"),
                &id,
                "parks",
                K::Acknowledged,
                "2026-11-30T01:30:00Z",
            ));
        }
    }
    // p0 is escalated a second time (its resolution) and still open.
    changes.push(missed(
        "p0-overdue-resolve",
        "p0",
        ev::TicketDeadline::Resolve,
        "2026-11-30T05:00:00Z",
    ));
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&db)
            .await
            .unwrap();
        if applied >= changes.len() as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {} events applied",
            changes.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T06:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .expect("inspection runs");

    let about_parks = |rule: &str, subject: &str| {
        (rule == "overdue_share" && subject == "parks")
            || (rule == "escalated_twice" && subject == "p0")
    };
    let alarms = |key: &'static str| {
        let mut client = app.client.clone();
        async move {
            let list = client
                .list_alarms(authed(
                    pb::ListAlarmsRequest {
                        account: "chenzhou".to_owned(),
                        from: "2026-11-30".to_owned(),
                        to: "2026-11-30".to_owned(),
                    },
                    key,
                ))
                .await
                .expect("alarms answer")
                .into_inner()
                .alarms;
            let report = client
                .get_readiness_report(authed(
                    pb::GetReadinessReportRequest {
                        account: "chenzhou".to_owned(),
                        date: "2026-11-30".to_owned(),
                    },
                    key,
                ))
                .await
                .expect("readiness answers")
                .into_inner()
                .alarms;
            let pick = |alarms: Vec<pb::Alarm>| {
                let mut seen: Vec<(String, String)> = alarms
                    .into_iter()
                    .filter(|a| about_parks(&a.rule, &a.subject))
                    .map(|a| (a.rule, a.subject))
                    .collect();
                seen.sort();
                seen
            };
            (pick(list), pick(report))
        }
    };
    let both = vec![
        ("escalated_twice".to_owned(), "p0".to_owned()),
        ("overdue_share".to_owned(), "parks".to_owned()),
    ];
    assert_eq!(
        alarms(VIEWER_KEY).await,
        (both.clone(), both),
        "the statistics office reads every department's alarms"
    );
    assert_eq!(
        alarms(WATER_DESK_KEY).await,
        (Vec::new(), Vec::new()),
        "the water desk reads none of parks' alarms"
    );
    db.close().await;
    app.stop().await;
}

/// A desk's key reads its own department's figures in `GetReadinessReport`: the
/// recent tickets and the acknowledgement compliance were the whole account's, so
/// less its own scorecard line, every other department's. Water opened 2 (1
/// acknowledged in time, 1 not at all), parks 4 (3 acknowledged late, 1 not at all).
#[tokio::test]
async fn a_desk_key_reads_its_own_departments_figures_in_the_readiness_report() {
    use ev::TicketChangeKind as K;
    use proto::events::v1 as ev;
    let app = spawn_app().await;
    let db = app.db().await;
    let mut changes = Vec::new();
    for (department, count, acknowledged, at) in [
        ("water", 2, 1, "2026-11-30T01:30:00Z"),
        ("parks", 4, 3, "2026-11-30T03:00:00Z"),
    ] {
        for n in 0..count {
            let id = format!("{department}{n}");
            changes.push(ticket_change(
                &format!("{id}-open"),
                &id,
                department,
                K::Opened,
                "2026-11-30T01:00:00Z",
            ));
            if n < acknowledged {
                changes.push(ticket_change(
                    &format!("{id}-ack"),
                    &id,
                    department,
                    K::Acknowledged,
                    at,
                ));
            }
        }
    }
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&db)
            .await
            .unwrap();
        if applied >= changes.len() as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {} events applied",
            changes.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = |key: &'static str| {
        let mut client = app.client.clone();
        async move {
            let r = client
                .get_readiness_report(authed(
                    pb::GetReadinessReportRequest {
                        account: "chenzhou".to_owned(),
                        date: "2026-11-30".to_owned(),
                    },
                    key,
                ))
                .await
                .expect("readiness answers")
                .into_inner();
            (
                r.recent_tickets,
                r.recent_answered,
                r.acknowledge_judged,
                r.acknowledged_on_time,
            )
        }
    };
    assert_eq!(
        report(WATER_DESK_KEY).await,
        (2, 1, 2, 1),
        "the water desk reads every department's tickets and compliance"
    );
    assert_eq!(
        report(VIEWER_KEY).await,
        (6, 4, 6, 1),
        "the statistics office reads the whole account"
    );
    db.close().await;
    app.stop().await;
}
