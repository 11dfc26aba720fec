//! The monthly list against the install and the calendar: accounts the install names
//! though never heard of, articles without figures, retracted articles, rounding, and
//! months not over yet.

use stats_svc::app::ranking::ListContext;
use stats_svc::domain::install::Install;

use crate::helpers::{pull_articles, pulled, spawn_app};

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn office() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

/// WECHAT_ACCOUNTS names anren, which never published nor was written to: the overview
/// shows it as 从未发布 and the inspection alarms it, so the list shows it too, last,
/// as 无发文.
#[tokio::test]
async fn an_account_the_install_names_but_never_heard_of_is_listed_as_publishing_nothing() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-10", 5_000, 40)]).await;
    pull_articles(&db, "yizhang", &[pulled("y_1", "2026-11-12", 300, 2)]).await;
    let install = Install::named(["chenzhou", "yizhang", "anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let listed: Vec<(u32, &str, bool)> = november
        .list
        .iter()
        .map(|a| (a.rank, a.account.as_str(), a.published_nothing))
        .collect();
    assert_eq!(
        listed,
        [
            (1, "chenzhou", false),
            (2, "yizhang", false),
            (3, "anren", true)
        ]
    );
    db.close().await;
    app.stop().await;
}

/// October's list is final; the install names anren, never heard of, so October lists
/// it as 无发文. Anren's first sign of life (a counter dated 20 December) must not take
/// it out of October's final list: a final list never changes. Guiyang, named from
/// 7 December on, is in no list before that.
#[tokio::test]
async fn a_final_list_keeps_an_account_the_install_named_once_it_is_first_heard_of() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-10-10", 5_000, 40)]).await;
    let named = |accounts: &[&str]| accounts.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    // The start-up of the upgrade, which finds nothing recorded: chenzhou from its
    // first article, anren, never heard of, from the start.
    stats_svc::store::install::record_named(&db, &named(&["chenzhou", "anren"]), day("2026-11-02"))
        .await
        .unwrap();
    // Guiyang is added to WECHAT_ACCOUNTS on 7 December.
    stats_svc::store::install::record_named(
        &db,
        &named(&["chenzhou", "anren", "guiyang"]),
        day("2026-12-07"),
    )
    .await
    .unwrap();
    let install = Install::named(["chenzhou", "anren", "guiyang"]);
    let october = || {
        let db = db.clone();
        let install = install.clone();
        async move {
            let context = ListContext {
                accounts: None,
                install: &install,
                version: stats_svc::domain::wci::V14_2,
                now: at("2026-12-20T02:00:00Z"),
                office: office(),
                calendar: &work_calendar::WorkCalendar::default(),
            };
            let list = stats_svc::app::ranking::monthly_ranking(
                &db,
                &context,
                "2026-10-01".parse().unwrap(),
            )
            .await
            .unwrap();
            let accounts: Vec<(String, bool)> = list
                .list
                .into_iter()
                .map(|a| (a.account, a.published_nothing))
                .collect();
            (accounts, list.listed)
        }
    };
    let before = october().await;
    assert_eq!(
        before,
        (
            vec![("chenzhou".to_owned(), false), ("anren".to_owned(), true)],
            2
        )
    );
    // Anren's first callback, counted on 20 December.
    sqlx::query(
        "INSERT INTO daily_counts (account, day, metric, key, value)
         VALUES ('anren', '2026-12-20', 'messages', '', 1)",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        october().await,
        before,
        "October's final list changed when anren was first heard of"
    );
    db.close().await;
    app.stop().await;
}

/// Once November is final, an article CONTENT announced that has no figures (the
/// datacube leaves out one of fewer than 3 events, and never reports a freepublished
/// one) counts in n with zero figures: before, it was dropped from n, and an account
/// with only freepublished articles stayed 待统计 for good.
#[tokio::test]
async fn an_announced_article_without_figures_counts_in_n_once_the_month_is_final() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    // Announced in WeChat message m2, which the datacube never reported.
    crate::helpers::publish_article_in(&app, "anren", "art-2", "2026-11-20T02:00:00Z", "m2").await;
    crate::helpers::wait_for_article(&db, "art-2").await;
    crate::helpers::publish_article_by(
        &app,
        "yizhang",
        "free-1",
        "2026-11-21T02:00:00Z",
        "",
        proto::events::v1::PublishChannel::Freepublish,
    )
    .await;
    crate::helpers::wait_for_article(&db, "free-1").await;
    let install = Install::named(["anren", "yizhang"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let counted: Vec<(&str, u64, bool, bool)> = november
        .list
        .iter()
        .map(|a| {
            (
                a.account.as_str(),
                a.articles,
                a.has_index(),
                a.published_nothing,
            )
        })
        .collect();
    assert_eq!(
        counted,
        [("anren", 2, true, false), ("yizhang", 1, true, false)]
    );
    db.close().await;
    app.stop().await;
}

/// On 20 November, November is still running: an account that has not published yet
/// may still do so, so it is not flagged 无发文 (it is listed after those with an
/// index, with none); from 1 December on it is.
#[tokio::test]
async fn the_running_month_flags_no_account_as_publishing_nothing_until_it_ends() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-10", 5_000, 40)]).await;
    let install = Install::named(["chenzhou", "anren"]);
    let listed = |now: &str| {
        let db = db.clone();
        let install = install.clone();
        let now = at(now);
        async move {
            let context = ListContext {
                accounts: None,
                install: &install,
                version: stats_svc::domain::wci::V14_2,
                now,
                office: office(),
                calendar: &work_calendar::WorkCalendar::default(),
            };
            stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
                .await
                .unwrap()
                .list
                .into_iter()
                .map(|a| (a.account, a.published_nothing))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("2026-11-20T02:00:00Z").await,
        [("chenzhou".to_owned(), false), ("anren".to_owned(), false)]
    );
    assert_eq!(
        listed("2026-12-01T02:00:00Z").await,
        [("chenzhou".to_owned(), false), ("anren".to_owned(), true)]
    );
    db.close().await;
    app.stop().await;
}

/// A 90k-read article deleted on its second day no longer counts: the retraction
/// names content-svc's id, and the datacube's row of the same article
/// (`{msg_data_id}_{index}`) goes with it.
#[tokio::test]
async fn an_article_retracted_before_its_day_7_figures_does_not_count() {
    let app = spawn_app().await;
    let db = app.db().await;
    crate::helpers::publish_article_at(
        &app,
        "anren",
        "art-9",
        "冬季供暖通知",
        "2026-11-10T02:00:00Z",
        "m9",
        1,
    )
    .await;
    crate::helpers::wait_for_article(&db, "art-9").await;
    pull_articles(&db, "anren", &[pulled("m9_1", "2026-11-10", 90_000, 400)]).await;
    crate::helpers::retract_article_at(
        &app,
        "anren",
        "art-9",
        "2026-11-11T02:00:00Z",
        "r-9",
        "m9",
        1,
    )
    .await;
    crate::helpers::wait_for_retraction(&db, "anren", "art-9").await;
    let install = Install::named(["anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let counted: Vec<(&str, u64, u64)> = november
        .list
        .iter()
        .map(|a| (a.account.as_str(), a.articles, a.reads))
        .collect();
    assert_eq!(counted, [("anren", 0, 0)]);
    // Its only article of November gone before its figures, the final list says
    // 无发文, not 待统计 for good.
    assert!(
        november.list[0].published_nothing,
        "anren's only article was retracted on its day 2: {:?}",
        november.list[0]
    );
    db.close().await;
    app.stop().await;
}

/// An article CONTENT announced that never had figures (message m2, never in the
/// datacube) and was retracted on 29 November, its day 9: it was up past its day-7
/// figures, so once November is final it counts in n with zero figures, as it did
/// before the retraction; only an article retracted before day 7 leaves the list.
#[tokio::test]
async fn an_announced_article_without_figures_retracted_after_day_7_still_counts() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    crate::helpers::publish_article_at(
        &app,
        "anren",
        "art-2",
        "冬季供暖通知",
        "2026-11-20T02:00:00Z",
        "m2",
        1,
    )
    .await;
    crate::helpers::wait_for_article(&db, "art-2").await;
    crate::helpers::retract_article_at(
        &app,
        "anren",
        "art-2",
        "2026-11-29T02:00:00Z",
        "r-2",
        "m2",
        1,
    )
    .await;
    crate::helpers::wait_for_retraction(&db, "anren", "art-2").await;
    let install = Install::named(["anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let counted: Vec<(&str, u64, u64)> = november
        .list
        .iter()
        .map(|a| (a.account.as_str(), a.articles, a.reads))
        .collect();
    assert_eq!(
        counted,
        [("anren", 2, 5_000)],
        "art-2 was retracted on its day 9, after its day-7 figures"
    );
    db.close().await;
    app.stop().await;
}

/// A two-article message m5 announced before content-svc named an article's place
/// (its CONTENT rows keep no `message_index`): art-b, the second, is retracted on its
/// day 2. content-svc deletes one article of a message by its place (WeChat's
/// `article_idx`), never the whole message, so the datacube's row of the headline,
/// still up, counts; the retraction is matched to the datacube's row of art-b as the
/// hand-entry move matches such rows (the headline to index 1, another article by its
/// title).
#[tokio::test]
async fn a_retraction_without_its_place_leaves_the_other_articles_of_its_message() {
    let app = spawn_app().await;
    let db = app.db().await;
    crate::helpers::publish_article_in(&app, "anren", "art-a", "2026-11-10T02:00:00Z", "m5").await;
    crate::helpers::publish_article_at(
        &app,
        "anren",
        "art-b",
        "停水通知",
        "2026-11-10T02:00:00Z",
        "m5",
        0,
    )
    .await;
    crate::helpers::wait_for_article(&db, "art-a").await;
    crate::helpers::wait_for_article(&db, "art-b").await;
    let second = stats_svc::store::reach::PulledArticle {
        title: "停水通知".to_owned(),
        ..pulled("m5_2", "2026-11-10", 800, 4)
    };
    pull_articles(
        &db,
        "anren",
        &[pulled("m5_1", "2026-11-10", 3_000, 20), second],
    )
    .await;
    crate::helpers::retract_article(&app, "anren", "art-b", "2026-11-11T02:00:00Z", "r-b").await;
    crate::helpers::wait_for_retraction(&db, "anren", "art-b").await;
    let install = Install::named(["anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let counted: Vec<(&str, u64, u64)> = november
        .list
        .iter()
        .map(|a| (a.account.as_str(), a.articles, a.reads))
        .collect();
    assert_eq!(
        counted,
        [("anren", 1, 3_000)],
        "the headline of m5 is still up; only art-b was deleted"
    );
    db.close().await;
    app.stop().await;
}

/// A legacy retraction-only row: the retraction of art-x (message m1, its place not
/// said) arrived without a publication event, so its CONTENT row has neither a title
/// nor the headline flag, and cannot be matched to one article of m1 by either. It
/// falls back to every datacube row of its message, as before d0e04da: the datacube's
/// row m1_1, published 2 days before the retraction, stays out of November's n.
#[tokio::test]
async fn a_retraction_only_row_without_its_place_takes_its_message_out() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("m1_1", "2026-11-10", 3_000, 20)]).await;
    crate::helpers::retract_article_at(
        &app,
        "anren",
        "art-x",
        "2026-11-12T02:00:00Z",
        "r-x",
        "m1",
        0,
    )
    .await;
    crate::helpers::wait_for_retraction(&db, "anren", "art-x").await;
    let install = Install::named(["anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-11-01".parse().unwrap())
            .await
            .unwrap();
    let counted: Vec<(&str, u64, u64)> = november
        .list
        .iter()
        .map(|a| (a.account.as_str(), a.articles, a.reads))
        .collect();
    assert_eq!(
        counted,
        [("anren", 0, 0)],
        "m1_1 was retracted on its day 2; the retraction-only row names no title nor headline"
    );
    db.close().await;
    app.stop().await;
}

/// A month after the office's has no list: asked on 7 December 2026 for May 2027, the
/// list showed every account at place 1 as 无发文; it is refused, naming both months.
#[tokio::test]
async fn a_month_not_begun_is_refused_not_listed_as_publishing_nothing() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-10", 5_000, 40)]).await;
    let install = Install::named(["chenzhou", "anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-07T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let refused =
        stats_svc::app::ranking::monthly_ranking(&db, &context, "2027-05-01".parse().unwrap())
            .await
            .expect_err("May 2027 has not begun");
    assert_eq!(
        refused.to_string(),
        "month 2027-05 has not begun (the office's month is 2026-12)"
    );
    // The running month is listed.
    stats_svc::app::ranking::monthly_ranking(&db, &context, "2026-12-01".parse().unwrap())
        .await
        .expect("December is listed");
    db.close().await;
    app.stop().await;
}

/// A week after the office's has no list either: asked on 7 December 2026 (Monday)
/// for the week of 5 May 2027, gRPC's `week_of` listed every account at place 1 as
/// 待统计; it is refused, naming the week's Sunday and the office's day. The running
/// week is listed.
#[tokio::test]
async fn a_week_not_begun_is_refused_not_listed() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "chenzhou", &[pulled("c_1", "2026-11-10", 5_000, 40)]).await;
    let install = Install::named(["chenzhou", "anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-07T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let refused =
        stats_svc::app::ranking::weekly_ranking(&db, &context, "2027-05-05".parse().unwrap())
            .await
            .expect_err("the week of 5 May 2027 has not begun");
    assert_eq!(
        refused.to_string(),
        "the week from 2027-05-02 has not begun (the office's day is 2026-12-07)"
    );
    // Nor has next week: it begins on Sunday 13 December.
    stats_svc::app::ranking::weekly_ranking(&db, &context, "2026-12-13".parse().unwrap())
        .await
        .expect_err("the week from 13 December has not begun");
    // The running week (from Sunday 6 December) is listed.
    stats_svc::app::ranking::weekly_ranking(&db, &context, "2026-12-12".parse().unwrap())
        .await
        .expect("the running week is listed");
    db.close().await;
    app.stop().await;
}

/// The ranking page's six-month trend counts a final month as its list does: an
/// announced article without figures is in n in both, so November's WCI and place are
/// the same in the list and in the trend.
#[tokio::test]
async fn a_final_months_trend_point_is_its_list() {
    let app = spawn_app().await;
    let db = app.db().await;
    pull_articles(&db, "anren", &[pulled("a_1", "2026-11-10", 5_000, 40)]).await;
    crate::helpers::publish_article_in(&app, "anren", "art-2", "2026-11-20T02:00:00Z", "m2").await;
    crate::helpers::wait_for_article(&db, "art-2").await;
    let install = Install::named(["anren"]);
    let context = ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: at("2026-12-20T02:00:00Z"),
        office: office(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let november = "2026-11-01".parse().unwrap();
    let list = stats_svc::app::ranking::monthly_ranking(&db, &context, november)
        .await
        .unwrap();
    let trend = stats_svc::app::ranking::monthly_rankings(&db, &context, november, 6)
        .await
        .unwrap();
    let (month, point) = trend.last().expect("November's point");
    assert_eq!(*month, november);
    let of = |r: &stats_svc::app::ranking::Ranked| (r.account.clone(), r.articles, r.wci);
    assert_eq!(
        point.iter().map(of).collect::<Vec<_>>(),
        list.list
            .iter()
            .filter(|r| r.has_index())
            .map(of)
            .collect::<Vec<_>>()
    );
    assert_eq!(point[0].articles, 2, "the article without figures is in n");
    db.close().await;
    app.stop().await;
}
