//! Figures entered by hand (`RecordArticleFigures`) as the monthly ranking meets
//! them: an editor adds the 在看 and likes WeChat's datacube lacks, and the ranking
//! uses them; reads and shares stay the datacube's, an article must be one the
//! service knows for the account (by the datacube's id where the datacube pulls the
//! account), its day and headline flag are not the editor's to change, another
//! account's articles are out of reach, and every accepted entry is kept with who
//! made it.

use proto::stats::v1 as pb;

use stats_svc::store::reach::PulledArticle;

use crate::helpers::{
    AGENT_KEY, COUNTY_EDITOR_KEY, EDITOR_KEY, NOVEMBER_OPEN, TestApp, VIEWER_KEY, authed,
    publish_article, publish_article_at, publish_article_by, publish_article_in, pull_articles,
    pulled, spawn_app_at, summarise_article, wait_for_article,
};

async fn enter(
    app: &TestApp,
    key: &str,
    request: pb::RecordArticleFiguresRequest,
) -> Result<(), tonic::Status> {
    app.client
        .clone()
        .record_article_figures(authed(request, key))
        .await
        .map(|_| ())
}

fn figures(account: &str, article: &str) -> pb::RecordArticleFiguresRequest {
    pb::RecordArticleFiguresRequest {
        account: account.to_owned(),
        article_id: article.to_owned(),
        ..Default::default()
    }
}

/// Guiyang's article g-1 entered by hand (3,000 reads, 20 shares, 15 在看, 30 likes),
/// then pulled by the datacube as `pulled_id` on `day` (3,100 reads, 22 shares).
async fn entered_then_pulled(app: &TestApp, db: &sqlx::PgPool, pulled_id: &str, day: &str) {
    enter(
        app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 3_000,
            shares: 20,
            zaikan: 15,
            likes: 30,
            ..figures("guiyang", "g-1")
        },
    )
    .await
    .expect("figures of an account the datacube does not pull yet");
    pull_articles(db, "guiyang", &[pulled(pulled_id, day, 3_100, 22)]).await;
}

/// The viewer's ranking of `month`, every account of the install.
async fn ranking(app: &TestApp, month: &str) -> Vec<pb::RankedAccount> {
    app.client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: month.to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
        .accounts
}

/// November's v14.2 list as the city's viewer sees it, of the accounts with an index
/// (the others are listed after them with none): (account, WCI).
async fn november(app: &TestApp) -> Vec<(String, f64)> {
    ranking(app, "2026-11")
        .await
        .into_iter()
        .filter(|a| a.articles > 0)
        .map(|a| (a.account, a.wci))
        .collect()
}

/// (reads, shares, zaikan, likes, published_on, headline) of a stored article.
async fn stored(
    db: &sqlx::PgPool,
    account: &str,
    article: &str,
) -> Option<(i64, i64, i64, i64, chrono::NaiveDate, bool)> {
    sqlx::query_as(
        "SELECT reads, shares, zaikan, likes, published_on, headline FROM article_figures
          WHERE account = $1 AND article_id = $2",
    )
    .bind(account)
    .bind(article)
    .fetch_optional(db)
    .await
    .unwrap()
}

async fn entries(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM article_figure_entries")
        .fetch_one(db)
        .await
        .unwrap()
}

fn assert_refused(result: Result<(), tonic::Status>, code: tonic::Code, says: &str) {
    let status = result.expect_err("the entry is refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(says), "{status:?}");
}

/// Two accounts with the same datacube article: the one whose editor entered 在看
/// and likes ranks above the other, its reads and shares are still the datacube's,
/// and the entry is on record with the editor's department and key.
#[tokio::test]
async fn zaikan_and_likes_entered_for_a_datacube_article_lift_its_account_in_the_ranking() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    for account in ["chenzhou", "yizhang"] {
        pull_articles(
            &db,
            account,
            &[pulled("2026111001_1", "2026-11-10", 20_000, 300)],
        )
        .await;
    }
    let before = november(&app).await;
    assert!((before[0].1 - before[1].1).abs() < 1e-9, "{before:?}");

    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 250,
            likes: 400,
            published_on: "2026-11-10".to_owned(),
            headline: Some(true),
            ..figures("chenzhou", "2026111001_1")
        },
    )
    .await
    .expect("an editor enters 在看 and likes of a datacube article");

    let after = november(&app).await;
    assert_eq!(after[0].0, "chenzhou", "{after:?}");
    assert!(after[0].1 > after[1].1, "{after:?}");
    let (reads, shares, zaikan, likes, _, headline) =
        stored(&db, "chenzhou", "2026111001_1").await.unwrap();
    assert_eq!(
        (reads, shares, zaikan, likes, headline),
        (20_000, 300, 250, 400, true),
        "the datacube's reads and shares stay"
    );
    let audit: (String, String, String, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT account, article_id, department, reads, shares, zaikan, likes
           FROM article_figure_entries",
    )
    .fetch_one(&db)
    .await
    .expect("the entry is on record");
    assert_eq!(
        audit,
        (
            "chenzhou".to_owned(),
            "2026111001_1".to_owned(),
            "press".to_owned(),
            0,
            0,
            250,
            400
        )
    );
    let key_id: String = sqlx::query_scalar("SELECT key_id FROM article_figure_entries")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        key_id.len(),
        8,
        "the key's fingerprint, not the key: {key_id}"
    );
    db.close().await;
    app.stop().await;
}

/// The datacube's reads and shares are never entered by hand: not over a pulled
/// article's, and not before the day-7 pull of an article the daily summary named.
#[tokio::test]
async fn reads_and_shares_of_a_datacube_account_are_refused() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026111001_1", "2026-11-10", 2_000, 30)],
    )
    .await;
    summarise_article(
        &db,
        "chenzhou",
        "2026-11-20".parse().unwrap(),
        "2026112001_1",
        900,
    )
    .await;
    let before = november(&app).await;

    for request in [
        pb::RecordArticleFiguresRequest {
            reads: 100_001,
            published_on: "2026-11-10".to_owned(),
            ..figures("chenzhou", "2026111001_1")
        },
        pb::RecordArticleFiguresRequest {
            shares: 9_000,
            zaikan: 10,
            ..figures("chenzhou", "2026111001_1")
        },
        pb::RecordArticleFiguresRequest {
            reads: 100_001,
            zaikan: 10,
            published_on: "2026-11-20".to_owned(),
            headline: Some(true),
            ..figures("chenzhou", "2026112001_1")
        },
    ] {
        let article = request.article_id.clone();
        assert_refused(
            enter(&app, EDITOR_KEY, request).await,
            tonic::Code::FailedPrecondition,
            &format!("reads and shares of article {article:?} come from WeChat's datacube"),
        );
    }
    let (reads, shares, zaikan, ..) = stored(&db, "chenzhou", "2026111001_1").await.unwrap();
    assert_eq!((reads, shares, zaikan), (2_000, 30, 0));
    assert_eq!(stored(&db, "chenzhou", "2026112001_1").await, None);
    assert_eq!(entries(&db).await, 0);
    assert_eq!(november(&app).await, before);
    db.close().await;
    app.stop().await;
}

/// An article nobody announced and the datacube never reported cannot be made up.
#[tokio::test]
async fn an_article_the_service_does_not_know_is_refused() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                title: "通知".to_owned(),
                published_on: "2026-11-10".to_owned(),
                headline: Some(true),
                reads: 100_001,
                zaikan: 5_000,
                likes: 5_000,
                shares: 5_000,
                ..figures("chenzhou", "made-up-1")
            },
        )
        .await,
        tonic::Code::NotFound,
        "article \"made-up-1\" is not known for this account",
    );
    assert_eq!(stored(&db, "chenzhou", "made-up-1").await, None);
    assert_eq!(entries(&db).await, 0);
    assert!(november(&app).await.is_empty());
    db.close().await;
    app.stop().await;
}

/// On an account the datacube pulls, content-svc's id of an article would count it a
/// second time beside the datacube's row of it.
#[tokio::test]
async fn contents_id_of_an_article_on_a_datacube_account_is_refused() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article(&app, "chenzhou", "art-7", "2026-11-10T02:00:00Z").await;
    wait_for_article(&db, "art-7").await;
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026111001_1", "2026-11-10", 2_000, 30)],
    )
    .await;
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                zaikan: 40,
                published_on: "2026-11-10".to_owned(),
                ..figures("chenzhou", "art-7")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "enter their figures under its id ({msg_data_id}_{index})",
    );
    let ranked: Vec<(String, f64)> = november(&app).await;
    let articles: u64 = ranking(&app, "2026-11").await[0].articles;
    assert_eq!((ranked.len(), articles), (1, 1), "the article counts once");
    db.close().await;
    app.stop().await;
}

/// WeChat's datacube reports mass sends (群发) only: an article content-svc sent by
/// freepublish on an account the datacube pulls never gets figures from it, so they
/// are entered under content-svc's id (reads and shares included) and the article
/// counts in the ranking beside the pulled ones; it stayed 待统计 for ever before.
#[tokio::test]
async fn a_freepublished_article_on_a_datacube_account_takes_its_figures_by_hand() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article_by(
        &app,
        "chenzhou",
        "art-free",
        "2026-11-12T02:00:00Z",
        "2247483650",
        proto::events::v1::PublishChannel::Freepublish,
    )
    .await;
    wait_for_article(&db, "art-free").await;
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026111001_1", "2026-11-10", 2_000, 30)],
    )
    .await;
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 1_500,
            shares: 20,
            zaikan: 40,
            ..figures("chenzhou", "art-free")
        },
    )
    .await
    .expect("a freepublished article's figures are entered under content-svc's id");
    let ranked = ranking(&app, "2026-11").await;
    assert_eq!(
        (ranked[0].articles, ranked[0].reads),
        (2, 3_500),
        "{ranked:?}"
    );
    db.close().await;
    app.stop().await;
}

/// The day decides the month an article counts in, the flag WCI's headline term: an
/// entry may repeat them, not change them.
#[tokio::test]
async fn an_articles_day_and_headline_flag_cannot_be_changed_by_hand() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026111001_2", "2026-11-10", 2_000, 30)],
    )
    .await;
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                published_on: "2026-11-10".to_owned(),
                headline: Some(true),
                zaikan: 40,
                ..figures("chenzhou", "2026111001_2")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "headline: article \"2026111001_2\" is not the first article of its message",
    );
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                published_on: "2026-12-01".to_owned(),
                zaikan: 40,
                ..figures("chenzhou", "2026111001_2")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "published_on: article \"2026111001_2\" was published on 2026-11-10, not 2026-12-01",
    );
    assert_refused(
        enter(&app, EDITOR_KEY, figures("chenzhou", "2026111001_2")).await,
        tonic::Code::InvalidArgument,
        "nothing to enter",
    );
    let (.., published_on, headline) = stored(&db, "chenzhou", "2026111001_2").await.unwrap();
    assert_eq!(
        (published_on.to_string(), headline),
        ("2026-11-10".to_owned(), false)
    );
    assert_eq!(entries(&db).await, 0);
    db.close().await;
    app.stop().await;
}

/// A county's editor enters its own account's figures and cannot reach the city's
/// (answered as if the account did not exist); roles other than editor, publisher or
/// admin enter nothing.
#[tokio::test]
async fn an_editor_enters_figures_of_its_own_accounts_only() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    for account in ["chenzhou", "yizhang"] {
        pull_articles(
            &db,
            account,
            &[pulled("2026111001_1", "2026-11-10", 2_000, 30)],
        )
        .await;
    }
    let zaikan = |account: &str| pb::RecordArticleFiguresRequest {
        zaikan: 40,
        ..figures(account, "2026111001_1")
    };
    assert_refused(
        enter(&app, COUNTY_EDITOR_KEY, zaikan("chenzhou")).await,
        tonic::Code::NotFound,
        "account not found",
    );
    for key in [VIEWER_KEY, AGENT_KEY] {
        assert_refused(
            enter(&app, key, zaikan("chenzhou")).await,
            tonic::Code::PermissionDenied,
            "needs one of the roles [editor, publisher]",
        );
    }
    assert_eq!(stored(&db, "chenzhou", "2026111001_1").await.unwrap().2, 0);
    enter(&app, COUNTY_EDITOR_KEY, zaikan("yizhang"))
        .await
        .expect("the county's editor enters its own account's figures");
    let by: Vec<(String, String)> =
        sqlx::query_as("SELECT account, department FROM article_figure_entries")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(by, [("yizhang".to_owned(), "yizhang-press".to_owned())]);
    db.close().await;
    app.stop().await;
}

/// An account the datacube does not pull: its articles, announced on CONTENT, take
/// every figure by hand, and a hand figure can be corrected by hand.
#[tokio::test]
async fn without_the_datacube_an_announced_articles_figures_are_entered_and_corrected() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article(&app, "guiyang", "g-1", "2026-11-10T02:00:00Z").await;
    wait_for_article(&db, "g-1").await;
    assert!(november(&app).await.is_empty(), "announced, no figures yet");
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 3_000,
            shares: 20,
            zaikan: 15,
            ..figures("guiyang", "g-1")
        },
    )
    .await
    .expect("figures of an account the datacube does not pull");
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 2_800,
            ..figures("guiyang", "g-1")
        },
    )
    .await
    .expect("a correction");
    let (reads, shares, zaikan, _, published_on, headline) =
        stored(&db, "guiyang", "g-1").await.unwrap();
    assert_eq!(
        (reads, shares, zaikan, published_on.to_string(), headline),
        (2_800, 20, 15, "2026-11-10".to_owned(), true)
    );
    assert_eq!(november(&app).await.len(), 1);
    assert_eq!(entries(&db).await, 2);
    db.close().await;
    app.stop().await;
}

/// An editor key cannot lift its account with shares nobody made: on an account the
/// datacube does not pull, shares above the article's reads (5,000,000 typed for 500)
/// are refused, entered with the reads or after them, and so are shares with no reads
/// at all; the figures, the ranking and the entry record stay as they were.
#[tokio::test]
async fn shares_entered_above_the_articles_reads_are_refused() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article(&app, "guiyang", "g-1", "2026-11-10T02:00:00Z").await;
    wait_for_article(&db, "g-1").await;
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                shares: 5_000,
                ..figures("guiyang", "g-1")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "has no reads yet",
    );
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 3_000,
            shares: 500,
            zaikan: 15,
            ..figures("guiyang", "g-1")
        },
    )
    .await
    .expect("shares within the reads");
    let before = november(&app).await;
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                reads: 3_000,
                shares: 5_000_000,
                ..figures("guiyang", "g-1")
            },
        )
        .await,
        tonic::Code::InvalidArgument,
        "shares 5000000 is above its reads",
    );
    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                shares: 5_000_000,
                ..figures("guiyang", "g-1")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "shares 5000000 is above its reads",
    );
    let (reads, shares, ..) = stored(&db, "guiyang", "g-1").await.unwrap();
    assert_eq!((reads, shares), (3_000, 500));
    assert_eq!(november(&app).await, before, "the ranking did not move");
    assert_eq!(entries(&db).await, 1);
    db.close().await;
    app.stop().await;
}

/// An editor key cannot lift its account with likes nobody gave: 在看 and likes above
/// the article's day-7 reads are refused, naming them, and leave the figures, the
/// ranking and the entry record as they were; entered before the day-7 pull (the
/// reads not known yet) they are taken, and capped at the reads when the pull lands.
#[tokio::test]
async fn likes_or_zaikan_above_the_articles_reads_are_refused_or_capped_by_the_pull() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    for account in ["chenzhou", "yizhang"] {
        pull_articles(
            &db,
            account,
            &[pulled("2026111001_1", "2026-11-10", 300, 5)],
        )
        .await;
    }
    let before = november(&app).await;

    assert_refused(
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                likes: 1_000_000,
                ..figures("chenzhou", "2026111001_1")
            },
        )
        .await,
        tonic::Code::FailedPrecondition,
        "likes 1000000 is above its reads",
    );
    assert_eq!(november(&app).await, before, "the ranking did not move");
    assert_eq!(entries(&db).await, 0);
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 300,
            likes: 120,
            ..figures("chenzhou", "2026111001_1")
        },
    )
    .await
    .expect("as many 在看 as reads at most");

    // Before the day-7 pull: the daily summary names the article, its reads are not
    // known yet.
    let day: chrono::NaiveDate = "2026-11-20".parse().unwrap();
    summarise_article(&db, "yizhang", day, "2026112001_1", 40).await;
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 50,
            likes: 900_000,
            ..figures("yizhang", "2026112001_1")
        },
    )
    .await
    .expect("taken while the reads are not known");
    pull_articles(
        &db,
        "yizhang",
        &[pulled("2026112001_1", "2026-11-20", 600, 9)],
    )
    .await;
    let (reads, _, zaikan, likes, _, _) = stored(&db, "yizhang", "2026112001_1").await.unwrap();
    assert_eq!(
        (reads, zaikan, likes),
        (600, 50, 600),
        "likes capped at the reads"
    );
    db.close().await;
    app.stop().await;
}

/// An account the datacube did not pull yet (added to the install, or its AppSecret
/// rotated so its pulls stopped): its editors enter an article's figures under
/// content-svc's id, as they must. When the pull starts (or resumes) it brings the
/// same article under its own id, `{msg_data_id}_1`; the month counts it once, with
/// the datacube's reads and the 在看 and likes the editors entered, in the list and in
/// the trend.
#[tokio::test]
async fn an_article_entered_by_hand_and_then_pulled_counts_once() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article_in(&app, "guiyang", "g-1", "2026-11-10T02:00:00Z", "2247483900").await;
    wait_for_article(&db, "g-1").await;
    entered_then_pulled(&app, &db, "2247483900_1", "2026-11-10").await;

    let list = ranking(&app, "2026-11").await;
    let guiyang = list.iter().find(|a| a.account == "guiyang").unwrap();
    assert_eq!((guiyang.articles, guiyang.reads), (1, 3_100), "{list:?}");
    let install = stats_svc::domain::install::Install::default();
    let context = stats_svc::app::ranking::ListContext {
        accounts: None,
        install: &install,
        version: stats_svc::domain::wci::V14_2,
        now: NOVEMBER_OPEN.parse().unwrap(),
        office: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        calendar: &work_calendar::WorkCalendar::default(),
    };
    let trend =
        stats_svc::app::ranking::monthly_rankings(&db, &context, "2026-11-01".parse().unwrap(), 1)
            .await
            .unwrap();
    let (_, november) = &trend[0];
    assert_eq!(
        november.iter().map(|r| r.articles).collect::<Vec<_>>(),
        [1],
        "{november:?}"
    );
    let (reads, shares, zaikan, likes, _, _) =
        stored(&db, "guiyang", "2247483900_1").await.unwrap();
    assert_eq!(
        (reads, shares, zaikan, likes),
        (3_100, 22, 15, 30),
        "the entered 在看 and likes move to the pulled row"
    );
    db.close().await;
    app.stop().await;
}

/// The same, with content-svc's record of the publication late: `RecordPublished`
/// without a publication time dates the CONTENT row by when it was recorded (here 3
/// November), ten days after the send the datacube dates its row by (24 October). The
/// article counts once, in October with the datacube's day, not in November too.
#[tokio::test]
async fn an_article_recorded_published_late_and_then_pulled_counts_once() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    publish_article_at(
        &app,
        "guiyang",
        "g-1",
        "冬季供暖通知",
        "2026-11-03T02:00:00Z",
        "2247483930",
        1,
    )
    .await;
    wait_for_article(&db, "g-1").await;
    entered_then_pulled(&app, &db, "2247483930_1", "2026-10-24").await;

    let mut counted = Vec::new();
    for month in ["2026-10", "2026-11"] {
        let list = ranking(&app, month).await;
        let articles = list
            .iter()
            .find(|a| a.account == "guiyang")
            .map_or(0, |a| a.articles);
        counted.push((month, articles));
    }
    assert_eq!(counted, [("2026-10", 1), ("2026-11", 0)]);
    db.close().await;
    app.stop().await;
}

/// A message of four sent by mass send on an account not yet pulled: its editors enter
/// each article's figures under content-svc's id, two of them titled alike. When the
/// pull begins it brings the first three under the datacube's ids, each taking the
/// 在看 and likes entered for the article at its place in the message; the fourth,
/// read twice, WeChat's datacube leaves out (fewer than 3 events), and its entry still
/// counts: an article gives way to its own pulled row, not to its message's.
#[tokio::test]
async fn each_article_of_a_message_entered_by_hand_gives_way_to_its_own_pulled_row_only() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    let message = [
        ("g-1", "冬季供暖通知", 3_000, 20, 15, 30),
        ("g-2", "办事指南", 800, 5, 6, 12),
        ("g-3", "办事指南", 300, 2, 2, 3),
        ("g-4", "天气提示", 2, 0, 1, 1),
    ];
    for (index, (article, title, ..)) in (1..).zip(message) {
        publish_article_at(
            &app,
            "guiyang",
            article,
            title,
            "2026-11-12T02:00:00Z",
            "2247483910",
            index,
        )
        .await;
        wait_for_article(&db, article).await;
    }
    for (article, _, reads, shares, zaikan, likes) in message {
        enter(
            &app,
            EDITOR_KEY,
            pb::RecordArticleFiguresRequest {
                reads,
                shares,
                zaikan,
                likes,
                ..figures("guiyang", article)
            },
        )
        .await
        .expect("figures of an account the datacube does not pull yet");
    }
    let titled = |msgid: &str, title: &str, reads, shares| PulledArticle {
        title: title.to_owned(),
        ..pulled(msgid, "2026-11-12", reads, shares)
    };
    pull_articles(
        &db,
        "guiyang",
        &[
            titled("2247483910_1", "冬季供暖通知", 3_100, 22),
            titled("2247483910_2", "办事指南", 820, 5),
            titled("2247483910_3", "办事指南", 310, 2),
        ],
    )
    .await;

    let list = ranking(&app, "2026-11").await;
    let guiyang = list.iter().find(|a| a.account == "guiyang").unwrap();
    assert_eq!(
        (guiyang.articles, guiyang.reads),
        (4, 3_100 + 820 + 310 + 2),
        "three pulled rows and the fourth article's entry: {list:?}"
    );
    let mut moved = Vec::new();
    for msgid in ["2247483910_1", "2247483910_2", "2247483910_3"] {
        let (_, _, zaikan, likes, _, _) = stored(&db, "guiyang", msgid).await.unwrap();
        moved.push((zaikan, likes));
    }
    assert_eq!(
        moved,
        [(15, 30), (6, 12), (2, 3)],
        "each pulled row takes its own article's 在看 and likes"
    );
    db.close().await;
    app.stop().await;
}

/// At the end of the office day on 7 December (17:30 office time) November's ranking
/// turns final (its `final_on`): 在看 entered for a November article after that would
/// change a list already reported final, so it is refused and changes nothing; a
/// December article still takes its figures.
#[tokio::test]
async fn figures_of_a_month_whose_ranking_is_final_are_refused() {
    let app = spawn_app_at("2026-12-07T09:30:00Z").await;
    let db = app.db().await;
    pull_articles(
        &db,
        "chenzhou",
        &[
            pulled("2026113001_1", "2026-11-30", 20_000, 300),
            pulled("2026120101_1", "2026-12-01", 8_000, 90),
        ],
    )
    .await;
    let before = november(&app).await;

    let late = enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 250,
            likes: 400,
            ..figures("chenzhou", "2026113001_1")
        },
    )
    .await;
    assert_refused(
        late,
        tonic::Code::FailedPrecondition,
        "published in 2026-11, whose ranking turned final at 17:30 on 2026-12-07",
    );
    assert_eq!(november(&app).await, before);
    let (.., zaikan, likes, _, _) = stored(&db, "chenzhou", "2026113001_1").await.unwrap();
    assert_eq!((zaikan, likes), (0, 0));
    assert_eq!(entries(&db).await, 0);

    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 50,
            ..figures("chenzhou", "2026120101_1")
        },
    )
    .await
    .expect("December's ranking is still provisional");
    assert_eq!(entries(&db).await, 1);
    db.close().await;
    app.stop().await;
}

/// 30 November's day-7 reads exist from 08:00 on 7 December: a desk entering an
/// account's figures by hand (the datacube does not pull it) has that office day to
/// do it, and November's list stays provisional meanwhile. Final at 08:00, the entry
/// had no office hour at all.
#[tokio::test]
async fn the_last_days_figures_can_be_entered_in_the_office_day_they_come() {
    let app = spawn_app_at("2026-12-07T01:00:00Z").await;
    let db = app.db().await;
    publish_article(&app, "guiyang", "g-30", "2026-11-30T12:00:00Z").await;
    wait_for_article(&db, "g-30").await;
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            reads: 2_400,
            zaikan: 30,
            likes: 55,
            ..figures("guiyang", "g-30")
        },
    )
    .await
    .expect("09:00 on 7 December: November still takes figures");
    let listed = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-11".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.provisional, "{listed:?}");
    assert_eq!(listed.final_on, "2026-12-07");
    let guiyang = listed
        .accounts
        .iter()
        .find(|a| a.account == "guiyang")
        .expect("guiyang is listed");
    assert_eq!((guiyang.articles, guiyang.reads), (1, 2_400));
    db.close().await;
    app.stop().await;
}

/// A week's list is final with its month, whose articles take figures by hand until
/// then: on Monday 23 November (18:00), past the 21st when the week of 8 November's
/// last articles had their day-7 figures, the week is still provisional, for 在看
/// entered for its Tuesday's article changes it.
#[tokio::test]
async fn a_weeks_list_is_not_final_while_its_articles_take_figures() {
    let app = spawn_app_at("2026-11-23T10:00:00Z").await;
    let db = app.db().await;
    pull_articles(
        &db,
        "chenzhou",
        &[
            pulled("2026111001_1", "2026-11-10", 6_000, 40),
            // Its Saturday's articles pulled too: nothing holds the week back but
            // the entries its articles still take.
            pulled("2026111401_1", "2026-11-14", 3_000, 10),
        ],
    )
    .await;
    let week = |app: &TestApp| {
        let mut client = app.client.clone();
        async move {
            client
                .get_monthly_ranking(authed(
                    pb::GetMonthlyRankingRequest {
                        week_of: "2026-11-10".to_owned(),
                        ..Default::default()
                    },
                    VIEWER_KEY,
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = week(&app).await;
    assert!(
        before.provisional,
        "the week is reported final while its articles take figures: {before:?}"
    );
    assert_eq!(before.final_on, "2026-12-07");
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 300,
            ..figures("chenzhou", "2026111001_1")
        },
    )
    .await
    .expect("November takes figures");
    let after = week(&app).await;
    assert!(after.accounts[0].wci > before.accounts[0].wci, "{after:?}");
    db.close().await;
    app.stop().await;
}

/// The ranking reads the service's clock, as the figure entry does: at 10:00 on
/// 3 December November still takes figures by hand, so its ranking is still
/// provisional, whatever the day on the machine running it.
#[tokio::test]
async fn a_month_that_takes_figures_is_ranked_provisional() {
    let app = spawn_app_at(NOVEMBER_OPEN).await;
    let db = app.db().await;
    pull_articles(
        &db,
        "chenzhou",
        &[pulled("2026113001_1", "2026-11-30", 20_000, 300)],
    )
    .await;
    enter(
        &app,
        EDITOR_KEY,
        pb::RecordArticleFiguresRequest {
            zaikan: 250,
            ..figures("chenzhou", "2026113001_1")
        },
    )
    .await
    .expect("November still takes figures");
    let listed = app
        .client
        .clone()
        .get_monthly_ranking(authed(
            pb::GetMonthlyRankingRequest {
                month: "2026-11".to_owned(),
                ..Default::default()
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.provisional,
        "November reported final while it takes figures: {listed:?}"
    );
    assert_eq!(listed.final_on, "2026-12-07");
    db.close().await;
    app.stop().await;
}
