//! What a leader's figures and alarms judge, and when: a ticket still inside its
//! deadlines is neither unanswered nor on the overdue share yet, a ticket closed
//! straight from open was acknowledged, 在看 and likes entered before the datacube's
//! day-7 pull do not cost the article its headline, and an account known only from
//! the datacube is inspected too.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;
use stats_svc::domain::AccountId;
use stats_svc::domain::inspection::InspectionRules;
use stats_svc::jobs::inspection::{Clock, check_once};
use stats_svc::store::reach::{PulledArticle, store_chunk};

use crate::helpers::{
    EDITOR_KEY, NOVEMBER_OPEN, TestApp, VIEWER_KEY, authed, spawn_app, spawn_app_at,
    summarise_article,
};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn ts(rfc3339: &str) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at(rfc3339).timestamp(),
        nanos: 0,
    })
}

fn clock(now: &str) -> Clock {
    let now = at(now);
    Arc::new(move || now)
}

fn office() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn ticket(
    event_id: &str,
    ticket: &str,
    department: &str,
    kind: ev::TicketChangeKind,
    occurred: &str,
    opened: &str,
    ack_due: &str,
    resolve_due: &str,
) -> ev::TicketChanged {
    ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: event_id.to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: ts(occurred),
        }),
        kind: kind as i32,
        ticket_id: ticket.to_owned(),
        department: department.to_owned(),
        opened_at: ts(opened),
        acknowledge_due_at: ts(ack_due),
        resolve_due_at: ts(resolve_due),
        ..Default::default()
    }
}

async fn publish_ticket(app: &TestApp, change: &ev::TicketChanged) {
    let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
    let id = change.header.as_ref().unwrap().event_id.clone();
    app.publish_on(&subject, &id, change.encode_to_vec()).await;
}

async fn wait_for_applied(db: &sqlx::PgPool, count: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(db)
            .await
            .unwrap();
        if applied >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {count} applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the inspection checks at 10:00 office time on 30 November and returns that
/// day's alarms (account, rule, subject, detail) that `keep` selects.
async fn alarms_at_ten(
    db: &sqlx::PgPool,
    keep: impl Fn(&(String, String, String, String)) -> bool,
) -> Vec<(String, String, String, String)> {
    check_once(
        db,
        // Below the default minimum of late tickets for the overdue share.
        &InspectionRules {
            overdue_min_late: 1,
            ..InspectionRules::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T02:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let alarms: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT account, rule, subject, detail FROM alarms
          WHERE day = '2026-11-30' ORDER BY 1, 2, 3",
    )
    .fetch_all(db)
    .await
    .unwrap();
    alarms.into_iter().filter(|a| keep(a)).collect()
}

/// A citizen's message opens a ticket at 09:00 on 30 November (office time); the
/// department has until 09:00 the next day to acknowledge it. An hour later the
/// inspection job must not declare the account's interaction channel broken
/// (未提供有效互动功能, a single-veto item): nothing is late yet.
#[tokio::test]
async fn a_ticket_inside_its_acknowledgement_deadline_does_not_break_the_interaction_channel() {
    let app = spawn_app().await;
    let db = app.db().await;
    publish_ticket(
        &app,
        &ticket(
            "p1-open",
            "p1",
            "water",
            ev::TicketChangeKind::Opened,
            "2026-11-30T01:00:00Z",
            "2026-11-30T01:00:00Z",
            "2026-12-01T01:00:00Z",
            "2026-12-17T01:00:00Z",
        ),
    )
    .await;
    wait_for_applied(&db, 1).await;

    let broken = alarms_at_ten(&db, |a| a.1 == "interaction_broken").await;
    assert!(
        broken.is_empty(),
        "a ticket opened an hour ago, due tomorrow, raised: {broken:?}"
    );
    db.close().await;
    app.stop().await;
}

/// Water missed the resolution deadline of 2 of the 4 tickets whose deadline has
/// passed in the window (50%, threshold 20%), but 8 tickets came in this morning and
/// are still inside their deadlines: they join the base and the share reads 2/12.
#[tokio::test]
async fn tickets_inside_their_deadlines_do_not_dilute_the_overdue_share() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    let db = app.db().await;
    let mut count = 0;
    // Four tickets opened 2 November, acknowledged in time; two closed in time, two
    // missed their resolution deadline (20 November).
    for n in 0..4 {
        let id = format!("old{n}");
        let t = |suffix: &str, kind, occurred: &str| {
            ticket(
                &format!("{id}-{suffix}"),
                &id,
                "water",
                kind,
                occurred,
                "2026-11-02T01:00:00Z",
                "2026-11-03T01:00:00Z",
                "2026-11-20T01:00:00Z",
            )
        };
        publish_ticket(&app, &t("open", K::Opened, "2026-11-02T01:00:00Z")).await;
        publish_ticket(&app, &t("ack", K::Acknowledged, "2026-11-02T02:00:00Z")).await;
        count += 2;
        if n < 2 {
            publish_ticket(&app, &t("close", K::Closed, "2026-11-10T02:00:00Z")).await;
        } else {
            let mut overdue = t("overdue", K::Overdue, "2026-11-20T01:00:00Z");
            overdue.deadline = ev::TicketDeadline::Resolve as i32;
            publish_ticket(&app, &overdue).await;
        }
        count += 1;
    }
    // Eight tickets opened this morning (08:00 office), due tomorrow and later.
    for n in 0..8 {
        publish_ticket(
            &app,
            &ticket(
                &format!("new{n}-open"),
                &format!("new{n}"),
                "water",
                K::Opened,
                "2026-11-30T00:00:00Z",
                "2026-11-30T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-17T00:00:00Z",
            ),
        )
        .await;
        count += 1;
    }
    wait_for_applied(&db, count).await;

    // The scorecard agrees water resolved only half its judged tickets in time.
    let card = app
        .client
        .clone()
        .get_department_scorecard(authed(
            pb::GetDepartmentScorecardRequest {
                account: "chenzhou".to_owned(),
                from: "2026-11-01".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    let water = &card.departments[0];
    assert_eq!(
        (water.resolve_judged, water.overdue),
        (4, 2),
        "the scorecard judges the four old tickets, two of them overdue"
    );

    let overdue = alarms_at_ten(&db, |a| a.1 == "overdue_share").await;
    assert_eq!(
        overdue.len(),
        1,
        "water is late on 2 of its 4 judged tickets (50% > 20%) yet no alarm: {overdue:?}"
    );
    db.close().await;
    app.stop().await;
}

async fn enter(app: &TestApp, account: &str, article: &str, zaikan: u64, likes: u64) {
    app.client
        .clone()
        .record_article_figures(authed(
            pb::RecordArticleFiguresRequest {
                account: account.to_owned(),
                article_id: article.to_owned(),
                published_on: "2026-11-10".to_owned(),
                headline: None,
                zaikan,
                likes,
                ..Default::default()
            },
            EDITOR_KEY,
        ))
        .await
        .expect("an editor enters figures");
}

fn pulled(msgid: &str) -> PulledArticle {
    PulledArticle {
        msgid: msgid.to_owned(),
        title: "冬季供暖通知".to_owned(),
        published_on: "2026-11-10".parse().unwrap(),
        headline: true,
        reads: 20_000,
        shares: 300,
    }
}

/// The same headline article, the same figures: for `before` the editor entered 在看
/// and likes after the datacube's day-7 pull, for `after` on day 7 itself (before
/// the pull, which only runs on day 8). The two accounts must score alike.
#[tokio::test]
async fn figures_entered_before_the_day_seven_pull_keep_the_datacube_headline() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    let pull = |account: &'static str| {
        let db = db.clone();
        async move {
            store_chunk(
                &db,
                &AccountId::parse(account).unwrap(),
                "getarticletotal",
                "2026-11-10".parse().unwrap(),
                &[],
                &[pulled("2026111001_1")],
                chrono::NaiveDate::default(),
            )
            .await
            .unwrap();
        }
    };
    // chenzhou: datacube first, then the editor.
    pull("chenzhou").await;
    enter(&app, "chenzhou", "2026111001_1", 250, 400).await;
    // yizhang: the editor first (day 7: the daily summary has named the article since
    // the morning after it was sent), then the datacube's day-7 pull (day 8).
    summarise_article(
        &db,
        "yizhang",
        "2026-11-10".parse().unwrap(),
        "2026111001_1",
        12_000,
    )
    .await;
    enter(&app, "yizhang", "2026111001_1", 250, 400).await;
    pull("yizhang").await;

    let rows: Vec<(String, bool, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT account, headline, title, reads, shares, zaikan, likes FROM article_figures
          ORDER BY account",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let ranking = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-11".to_owned(),
                version: "v13".to_owned(),
                week_of: String::new(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    let scores: Vec<(String, f64)> = ranking
        .accounts
        .iter()
        .map(|a| (a.account.clone(), a.wci))
        .collect();
    assert_eq!(rows[0].1, rows[1].1, "headline flag depends on entry order");
    assert!(
        (scores[0].1 - scores[1].1).abs() < 1e-9,
        "same article, same figures, different WCI: {scores:?}"
    );
    db.close().await;
    app.stop().await;
}

/// An account the datacube pulls every hour (configured in WECHAT_ACCOUNTS) that has
/// never published and whose followers never write: the zombie account the national
/// rule targets is checked like any other (it was never checked).
#[tokio::test]
async fn a_silent_account_known_from_the_datacube_is_inspected() {
    let app = spawn_app().await;
    let db = app.db().await;
    store_chunk(
        &db,
        &AccountId::parse("sleepy").unwrap(),
        "getusercumulate",
        "2026-11-29".parse().unwrap(),
        &[stats_svc::domain::rollup::Tally {
            account: AccountId::parse("sleepy").unwrap(),
            day: "2026-11-29".parse().unwrap(),
            metric: stats_svc::domain::rollup::Metric::WxFollowers,
            key: String::new(),
            value: 12_000,
        }],
        &[],
        chrono::NaiveDate::default(),
    )
    .await
    .unwrap();
    let sleepy = alarms_at_ten(&db, |a| a.0 == "sleepy").await;
    assert!(
        sleepy.iter().any(|a| a.1 == "no_update"),
        "an account with 12,000 followers that never published raised no no_update: {sleepy:?}"
    );
    db.close().await;
    app.stop().await;
}

/// A duplicate request (并单) closed by the department ten minutes after it came in,
/// with a note, straight from open (interaction-svc allows it; its sweeper never marks
/// a closed ticket overdue): once the acknowledgement deadline has passed, that
/// ticket's acknowledgement is judged on time (it was judged late).
#[tokio::test]
async fn a_ticket_closed_straight_from_open_was_acknowledged_when_closed() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    let db = app.db().await;
    let t = |suffix: &str, kind, occurred: &str| {
        ticket(
            &format!("dup-{suffix}"),
            "dup",
            "water",
            kind,
            occurred,
            "2026-11-30T01:00:00Z",
            "2026-11-30T02:00:00Z",
            "2026-11-30T04:00:00Z",
        )
    };
    publish_ticket(&app, &t("open", K::Opened, "2026-11-30T01:00:00Z")).await;
    publish_ticket(&app, &t("close", K::Closed, "2026-11-30T01:10:00Z")).await;
    wait_for_applied(&db, 2).await;
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
        .unwrap()
        .into_inner();
    let water = &card.departments[0];
    assert_eq!(water.acknowledge_judged, 1);
    assert_eq!(
        water.acknowledged_in_time, 1.0,
        "closed 10 minutes after opening, never escalated, yet judged late"
    );
    db.close().await;
    app.stop().await;
}

/// A citizen's ticket arrives on 20 November at 09:00 (office time), due for
/// acknowledgement at 09:00 the next day; the sweeper escalates it then, and the
/// department acknowledges it only on 26 November. Inspection readiness of 22
/// November is the same whether it is asked that morning or a week later: the late
/// acknowledgement does not mend the interaction channel of a day already over.
#[tokio::test]
async fn readiness_of_a_past_day_ignores_what_happened_after_it() {
    use ev::TicketChangeKind as K;
    use stats_svc::app::inspection::readiness;
    let app = spawn_app().await;
    let db = app.db().await;
    let t = |suffix: &str, kind, occurred: &str| {
        ticket(
            &format!("late-{suffix}"),
            "late",
            "water",
            kind,
            occurred,
            "2026-11-20T01:00:00Z",
            "2026-11-21T01:00:00Z",
            "2026-12-10T01:00:00Z",
        )
    };
    publish_ticket(&app, &t("open", K::Opened, "2026-11-20T01:00:00Z")).await;
    let mut overdue = t("overdue", K::Overdue, "2026-11-21T01:00:00Z");
    overdue.deadline = ev::TicketDeadline::Acknowledge as i32;
    publish_ticket(&app, &overdue).await;
    wait_for_applied(&db, 2).await;
    let account = AccountId::parse("chenzhou").unwrap();
    let rules = InspectionRules::default();
    let day: chrono::NaiveDate = "2026-11-22".parse().unwrap();
    let that_morning = readiness(
        &db,
        &rules,
        &account,
        day,
        at("2026-11-22T02:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
        &stats_svc::domain::departments::DepartmentView::All,
    )
    .await
    .unwrap();
    assert!(
        !that_morning.interaction_ok,
        "a ticket a day past its deadline, nothing answered: {that_morning:?}"
    );

    publish_ticket(&app, &t("ack", K::Acknowledged, "2026-11-26T02:00:00Z")).await;
    wait_for_applied(&db, 3).await;
    let a_week_later = readiness(
        &db,
        &rules,
        &account,
        day,
        at("2026-11-30T02:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
        &stats_svc::domain::departments::DepartmentView::All,
    )
    .await
    .unwrap();
    assert_eq!(
        a_week_later, that_morning,
        "22 November read a week later differs from 22 November read that morning"
    );
    db.close().await;
    app.stop().await;
}

/// The previous release (still running during a rollout, or again after a rollback)
/// folds a close straight from open without the acknowledgement migration 0011 gave
/// older rows once. Such a row, closed ten minutes after it came in, counts as
/// acknowledged in time in the scorecard and in inspection readiness.
#[tokio::test]
async fn a_close_written_by_the_previous_release_counts_as_the_acknowledgement() {
    use stats_svc::app::inspection::readiness;
    let app = spawn_app().await;
    let db = app.db().await;
    // The row as the previous release's `record_ticket` leaves it.
    sqlx::query(
        "INSERT INTO ticket_times (account, ticket_id, department, department_at, opened_at,
                                   closed_at, last_closed_at, closed_by, acknowledge_due_at,
                                   resolve_due_at, deadlines_at)
         VALUES ('chenzhou', 'old-dup', 'water', $1, $1, $2, $2, 'water', $3, $4, $1)",
    )
    .bind(at("2026-11-30T01:00:00Z"))
    .bind(at("2026-11-30T01:10:00Z"))
    .bind(at("2026-11-30T02:00:00Z"))
    .bind(at("2026-11-30T04:00:00Z"))
    .execute(&db)
    .await
    .unwrap();
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
        .unwrap()
        .into_inner();
    let water = &card.departments[0];
    assert_eq!(
        (water.acknowledge_judged, water.acknowledged_in_time),
        (1, 1.0),
        "closed 10 minutes after opening by the previous release, yet judged late"
    );
    let report = readiness(
        &db,
        &InspectionRules::default(),
        &AccountId::parse("chenzhou").unwrap(),
        "2026-11-30".parse().unwrap(),
        at("2026-11-30T06:00:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
        &stats_svc::domain::departments::DepartmentView::All,
    )
    .await
    .unwrap();
    assert_eq!(
        report.acknowledged_in_time, 1.0,
        "readiness judges the previous release's close late: {report:?}"
    );
    db.close().await;
    app.stop().await;
}
