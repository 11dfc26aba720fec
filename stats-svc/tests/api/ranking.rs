//! The monthly list as a leader reads it: an account that published nothing in the
//! month is not left out but ranked after every account with articles, shown as
//! 无发文 with no index, in gRPC and on the ranking page.

use proto::stats::v1 as pb;
use stats_svc::app::ranking::ListContext;

use crate::helpers::{
    COUNTY_KEY, TestApp, VIEWER_KEY, authed, pull_articles, pulled, spawn_app, text_message,
};

async fn november(app: &TestApp, key: &str) -> Vec<pb::RankedAccount> {
    app.client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-11".to_owned(),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .accounts
}

#[tokio::test]
async fn an_account_that_published_nothing_is_ranked_last_as_publishing_nothing() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-12", 300, 2)]).await;
    // yizhang only hears from citizens: it published nothing in November.
    let november_15 = chrono::DateTime::parse_from_rfc3339("2026-11-15T02:00:00Z")
        .unwrap()
        .timestamp();
    app.publish(&text_message("yizhang", "y-1", november_15))
        .await;
    app.wait_for_overview("yizhang", |o| o.messages == 1).await;

    let list = november(&app, VIEWER_KEY).await;
    let places: Vec<(u32, &str, bool)> = list
        .iter()
        .map(|a| (a.rank, a.account.as_str(), a.published_nothing))
        .collect();
    assert_eq!(
        places,
        [
            (1, "anren", false),
            (2, "chenzhou", false),
            (3, "yizhang", true)
        ]
    );
    let yizhang = &list[2];
    assert_eq!((yizhang.wci, yizhang.articles, yizhang.reads), (0.0, 0, 0));

    // The county's key sees its own account only, at its place among all: it
    // published nothing, so it is last, not first of a list of one.
    let county = november(&app, COUNTY_KEY).await;
    let places: Vec<(u32, &str, bool)> = county
        .iter()
        .map(|a| (a.rank, a.account.as_str(), a.published_nothing))
        .collect();
    assert_eq!(places, [(3, "yizhang", true)], "{county:?}");

    let page = reqwest::get(format!(
        "http://127.0.0.1:{}/ranking?month=2026-11",
        app.http_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let row = page
        .split("<tr>")
        .find(|row| row.contains("/account/yizhang"))
        .expect("yizhang has a row in 全部排名");
    assert!(
        row.starts_with("<td>3</td>") && row.contains("<td>—</td>") && row.contains("无发文"),
        "{row}"
    );
    db.close().await;
    app.stop().await;
}

/// An account added to the install in December was not in November's list: without a
/// creation date, the first day the service saw it stands in for one, and it appears
/// from the month it was first seen in.
#[tokio::test]
async fn an_account_first_seen_after_the_month_is_not_listed_as_publishing_nothing() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    // yizhang's first callback comes on 2 December.
    let december = chrono::DateTime::parse_from_rfc3339("2026-12-02T02:00:00Z")
        .unwrap()
        .timestamp();
    app.publish(&text_message("yizhang", "y-1", december)).await;
    app.wait_for_overview("yizhang", |o| o.messages == 1).await;

    let accounts: Vec<String> = november(&app, VIEWER_KEY)
        .await
        .into_iter()
        .map(|a| a.account)
        .collect();
    assert_eq!(accounts, ["anren"]);
    let list = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-12".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
        .accounts;
    // Listed in December; 无发文 only once December is over (the service reads the
    // real clock here, so the flag is not asserted).
    assert!(list.iter().any(|a| a.account == "yizhang"), "{list:?}");
    db.close().await;
    app.stop().await;
}

/// At 17:45 on 7 December the calendar calls November final (the end of that office
/// day), but the pull of 30 November's articles (due from 08:00) has not landed, a
/// backlog: the list stays provisional until it has, though no pull is failing.
#[tokio::test]
async fn a_month_stays_provisional_until_its_last_days_articles_are_pulled() {
    let app = spawn_app().await;
    let db = app.db().await;
    // Pulled since October.
    pull_articles(&db, "anren", &[pulled("a_0", "2026-10-25", 1_000, 4)]).await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-29", 5_000, 40)]).await;
    let november = |now: &str| {
        let db = db.clone();
        let now = chrono::DateTime::parse_from_rfc3339(now).unwrap().to_utc();
        async move {
            let install = stats_svc::domain::install::Install::unnamed();
            let context = ListContext {
                accounts: None,
                install: &install,
                version: stats_svc::domain::wci::V14_2,
                now,
                office: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
                calendar: &work_calendar::WorkCalendar::default(),
            };
            stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
                .await
                .unwrap()
        }
    };
    let ranking = november("2026-12-07T09:45:00Z").await;
    assert!(
        ranking.provisional && ranking.awaiting_figures,
        "30 November's articles are not pulled yet: {ranking:?}"
    );
    assert_eq!(ranking.awaiting_pull, ["anren"], "{ranking:?}");
    // Until 17:30 on the 7th the calendar alone holds the month back.
    let early = november("2026-12-07T09:15:00Z").await;
    assert!(
        early.awaiting_figures && early.awaiting_pull.is_empty(),
        "{early:?}"
    );
    assert!(!ranking.list[0].figures_incomplete, "{ranking:?}");

    pull_articles(&db, "anren", &[pulled("a_2", "2026-11-30", 700, 4)]).await;
    let ranking = november("2026-12-07T09:45:00Z").await;
    assert!(!ranking.provisional, "{ranking:?}");
    db.close().await;
    app.stop().await;
}

/// An account taken out of the install in October (its callbacks and pulls stop) is
/// not listed 无发文 in December, nor checked by the inspection job, which would raise
/// the update-gap alarm for it every day; an account still heard from is both.
#[tokio::test]
async fn an_account_last_heard_of_before_the_month_is_neither_listed_nor_alarmed() {
    let app = spawn_app().await;
    let db = app.db().await;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    // yizhang: an article and a callback in October, then nothing.
    pull_articles(&db, "yizhang", &[pulled("y_1", "2026-10-12", 900, 3)]).await;
    app.publish(&text_message(
        "yizhang",
        "y-1",
        at("2026-10-20T02:00:00Z").timestamp(),
    ))
    .await;
    app.wait_for_overview("yizhang", |o| o.messages == 1).await;
    // chenzhou: its last article in November, a citizen writes in December.
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-20", 300, 2)]).await;
    app.publish(&text_message(
        "chenzhou",
        "c-1",
        at("2026-12-10T02:00:00Z").timestamp(),
    ))
    .await;
    app.wait_for_overview("chenzhou", |o| o.messages == 1).await;

    let list = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-12".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
        .accounts;
    // Only who is listed: 无发文 waits for December's end, and the service reads the
    // real clock here.
    let listed: Vec<&str> = list.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(listed, ["chenzhou"]);

    let raised = stats_svc::app::inspection::run_checks_in(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        "2026-12-20".parse().unwrap(),
        at("2026-12-20T02:00:00Z").to_utc(),
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert!(raised > 0);
    let alarmed: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT account, rule FROM alarms ORDER BY 1, 2")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        alarmed,
        [("chenzhou".to_owned(), "no_update".to_owned())],
        "yizhang is out of the install"
    );
    db.close().await;
    app.stop().await;
}

/// Where `WECHAT_ACCOUNTS` names the accounts, a named account that publishes nothing
/// and no follower writes to (yizhang, last heard of in October, no datacube) is the
/// deadest account: 60 days on it is still listed 无发文, alarmed and on `/`; an account
/// no longer named (anren, seen only in October) is neither listed, alarmed nor shown.
#[tokio::test]
async fn a_named_account_silent_for_sixty_days_is_listed_and_alarmed_an_unnamed_one_is_not() {
    let app = spawn_app().await;
    let db = app.db().await;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let install = stats_svc::domain::install::Install::named(["chenzhou", "yizhang"]);
    // yizhang: a callback in October, then nothing (no article ever, no datacube).
    app.publish(&text_message(
        "yizhang",
        "y-1",
        at("2026-10-20T02:00:00Z").timestamp(),
    ))
    .await;
    app.wait_for_overview("yizhang", |o| o.messages == 1).await;
    // anren: out of WECHAT_ACCOUNTS, its articles of October only.
    pull_articles(&db, "anren", &[pulled("a_1", "2026-10-12", 900, 3)]).await;
    // chenzhou: heard from in December.
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-12-15", 300, 2)]).await;

    let now = at("2026-12-20T02:00:00Z");
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now,
        office,
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let december =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-12-01".parse().unwrap())
            .await
            .unwrap();
    let listed: Vec<(&str, bool)> = december
        .list
        .iter()
        .map(|a| (a.account.as_str(), a.published_nothing))
        .collect();
    // December is still running on the 20th: yizhang is listed, not yet 无发文.
    assert_eq!(listed, [("chenzhou", false), ("yizhang", false)]);

    let raised = stats_svc::app::inspection::run_checks_in(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &install,
        "2026-12-20".parse().unwrap(),
        now,
        office,
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert!(raised > 0);
    let alarmed: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT account, rule FROM alarms ORDER BY 1, 2")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        alarmed,
        [("yizhang".to_owned(), "no_update".to_owned())],
        "chenzhou published this month; anren is out of the install"
    );

    let (lines, _) = stats_svc::app::dashboard::overview(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &install,
        None,
        now,
        office,
        &work_calendar::WorkCalendar::default(),
        &stats_svc::domain::departments::DepartmentView::All,
    )
    .await
    .unwrap();
    let shown: Vec<&str> = lines.iter().map(|l| l.account.as_str()).collect();
    assert_eq!(shown, ["chenzhou", "yizhang"]);
    db.close().await;
    app.stop().await;
}

/// An account added to the install in mid-November, further back than the backfill
/// reaches (its first article pull brought 16 November): its November figures miss
/// the first half of the month for good, and it is marked 数据不全 in gRPC and on the
/// page; an account pulled from before the month is not.
#[tokio::test]
async fn an_account_whose_article_pull_began_mid_month_is_marked_incomplete() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_0", "2026-10-25", 1_000, 4)]).await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    pull_articles(&db, "guiyang", &[pulled("g_1", "2026-11-16", 4_000, 30)]).await;

    let list = november(&app, VIEWER_KEY).await;
    let marked: Vec<(&str, bool)> = list
        .iter()
        .map(|a| (a.account.as_str(), a.figures_incomplete))
        .collect();
    assert_eq!(marked, [("anren", false), ("guiyang", true)]);
    let page = reqwest::get(format!(
        "http://127.0.0.1:{}/ranking?month=2026-11",
        app.http_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        page.contains("guiyang 自 11-16 起才接入微信数据接口"),
        "{page}"
    );
    db.close().await;
    app.stop().await;
}

/// A county's key reads its own account's place among every account of the install
/// (second of three), in gRPC, on the ranking page's list and in its trend, and no
/// other account's figures: a list drawn up over its reach alone put it first.
#[tokio::test]
async fn a_county_key_sees_its_own_place_among_every_account_and_no_other_figures() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    pull_articles(&db, "yizhang", &[pulled("y_1", "2026-11-11", 1_200, 9)]).await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-12", 300, 2)]).await;

    let all: Vec<(u32, String)> = november(&app, VIEWER_KEY)
        .await
        .into_iter()
        .map(|a| (a.rank, a.account))
        .collect();
    assert_eq!(
        all,
        [
            (1, "anren".to_owned()),
            (2, "yizhang".to_owned()),
            (3, "chenzhou".to_owned())
        ]
    );
    let county: Vec<(u32, String)> = november(&app, COUNTY_KEY)
        .await
        .into_iter()
        .map(|a| (a.rank, a.account))
        .collect();
    assert_eq!(
        county,
        [(2, "yizhang".to_owned())],
        "its place among all three, not first of a list of one"
    );

    // The dashboard's list and trend, for a session of the county's key.
    let install = stats_svc::domain::install::Install::unnamed();
    let scope = ["yizhang".to_owned()];
    let context = ListContext {
        accounts: Some(&scope),
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: chrono::Utc::now(),
        office: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let (ranking, trend) =
        stats_svc::app::dashboard::ranking_page(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let places: Vec<(u32, &str)> = ranking
        .list
        .iter()
        .map(|r| (r.rank, r.account.as_str()))
        .collect();
    assert_eq!(places, [(2, "yizhang")]);
    assert_eq!(ranking.listed, 3, "the page says 2nd of how many");
    let (_, november_trend) = trend.last().expect("November in the trend");
    let places: Vec<(u32, &str)> = november_trend
        .iter()
        .map(|r| (r.rank, r.account.as_str()))
        .collect();
    assert_eq!(places, [(2, "yizhang")], "the trend's November");
    db.close().await;
    app.stop().await;
}
