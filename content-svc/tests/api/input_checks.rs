//! content-svc's requests are checked at the door, before anything is done: free
//! text and times are INVALID_ARGUMENT naming the field, a key without the reach a
//! change needs is PERMISSION_DENIED, and nothing changes (no audit row, no event,
//! no WeChat call).

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, article, create, next_event, publish, spawn_stack};
use crate::helpers::{
    ADMIN_KEY, AUTHOR_KEY, COUNTY_ADMIN_KEY, COUNTY_REVIEWER_KEY, PUBLISHER_KEY, REVIEWER_KEY,
    WATER_EDITOR_KEY, authed, by, spawn_app,
};

/// 李 of the press office creates a draft on `demo`; its id.
async fn draft(stack: &Stack) -> String {
    stack
        .app
        .client
        .clone()
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id
}

/// The article's state and the number of its audit rows, as 李 reads them.
async fn state_and_audit(stack: &Stack, id: &str) -> (i32, usize) {
    let detail = stack
        .app
        .client
        .clone()
        .get_article(by(
            pb::GetArticleRequest { id: id.into() },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("readable")
        .into_inner();
    (detail.article.expect("article").state, detail.audit.len())
}

#[tokio::test]
async fn a_comment_of_a_megabyte_is_refused_by_name_and_the_article_stays_a_draft() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = draft(&stack).await;
    let before = state_and_audit(&stack, &id).await;

    // 1.2 MB of UTF-8: as an event it would exceed NATS's 1 MB max_payload.
    let huge = "很".repeat(400_000);
    let refused = stack
        .app
        .client
        .clone()
        .submit_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: huge,
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("comment "),
        "{}",
        refused.message()
    );
    assert_eq!(state_and_audit(&stack, &id).await, before);
    assert_eq!(before.0, pb::ArticleState::Draft as i32);
    // A comment of ordinary length goes through.
    stack
        .app
        .client
        .clone()
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
}

#[tokio::test]
async fn a_retraction_whose_reason_holds_a_nul_is_refused_before_wechat_deletes_the_article() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat");
    next_event(&mut published).await;

    let refused = client
        .retract_article(by(
            pb::ArticleRef {
                id: id.clone(),
                comment: "内容有误\u{0}撤回".into(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "comment must not hold control characters"
    );
    assert_eq!(
        stack
            .mock
            .state()
            .calls_to("/cgi-bin/freepublish/delete")
            .len(),
        0,
        "WeChat was not asked to delete the article"
    );
    let (state, _) = state_and_audit(&stack, &id).await;
    assert_eq!(state, pb::ArticleState::Published as i32);
}

#[tokio::test]
async fn a_title_holding_a_nul_is_an_invalid_argument_naming_the_title() {
    let stack = spawn_stack(AccountKind::Service).await;

    let refused = stack
        .app
        .client
        .clone()
        .create_article(by(
            create("停水\u{0}通知", "<p>正文</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.message(), "title must not hold control characters");
}

#[tokio::test]
async fn a_directory_service_whose_name_holds_a_control_character_is_refused_by_name() {
    let app = spawn_app().await;
    let service = pb::Service {
        account: "chenzhou".into(),
        category: "utilities".into(),
        name: "水费\u{0}缴纳".into(),
        url: "https://water.example.gov.cn/pay".into(),
        enabled: true,
        ..pb::Service::default()
    };

    let refused = app
        .client
        .clone()
        .create_service(by(service, WATER_EDITOR_KEY, "liu"))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.message(), "name must not hold control characters");
}

#[tokio::test]
async fn a_county_admin_may_not_change_the_lexicon_that_screens_the_citys_articles() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let entry = pb::LexiconEntry {
        word: "刷票".into(),
        category: "fraud".into(),
    };
    client
        .put_lexicon_entry(authed(entry.clone(), ADMIN_KEY))
        .await
        .expect("the city's admin adds it");

    let deleted = client
        .delete_lexicon_entry(authed(
            pb::DeleteLexiconEntryRequest {
                word: "刷票".into(),
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .expect_err("refused");
    let put = client
        .put_lexicon_entry(authed(
            pb::LexiconEntry {
                word: "刷票".into(),
                category: "allow".into(),
            },
            COUNTY_ADMIN_KEY,
        ))
        .await
        .expect_err("refused");

    for refused in [&deleted, &put] {
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(
            refused.message().contains("all accounts"),
            "{}",
            refused.message()
        );
    }
    let entries = client
        .list_lexicon(authed(
            pb::ListLexiconRequest {
                category: String::new(),
            },
            REVIEWER_KEY,
        ))
        .await
        .expect("listed")
        .into_inner()
        .entries;
    assert!(entries.contains(&entry), "{entries:?}");
}

#[tokio::test]
async fn a_page_token_from_before_1970_is_an_invalid_argument_not_an_internal_error() {
    let app = spawn_app().await;

    let refused = app
        .client
        .clone()
        .list_articles(by(
            pb::ListArticlesRequest {
                // Before 4713 BC, which PostgreSQL cannot hold.
                page_token: format!("-300000000000000000_{}", uuid::Uuid::nil()),
                ..Default::default()
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "page_token is not one this service issued"
    );
}

#[tokio::test]
async fn a_schedule_beyond_a_year_or_beyond_any_calendar_is_refused_naming_at() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let schedule = |seconds: i64| {
        by(
            pb::ScheduleArticleRequest {
                id: id.clone(),
                at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        )
    };
    let mut client = stack.app.client.clone();

    // 1 January 200000.
    let far = client
        .schedule_article(schedule(6_249_223_008_000))
        .await
        .expect_err("refused");
    let beyond = client
        .schedule_article(schedule(i64::MAX))
        .await
        .expect_err("refused");

    assert_eq!(far.code(), Code::InvalidArgument);
    assert!(far.message().contains("days ahead"), "{}", far.message());
    assert_eq!(beyond.code(), Code::InvalidArgument);
    assert_eq!(beyond.message(), "at is not a time this service can keep");
    let (state, _) = state_and_audit(&stack, &id).await;
    assert_eq!(state, pb::ArticleState::Approved as i32);
}

#[tokio::test]
async fn another_accounts_quota_is_an_account_not_found_not_an_article() {
    let stack = spawn_stack(AccountKind::Service).await;

    let refused = stack
        .app
        .client
        .clone()
        .get_quota_status(by(
            pb::GetQuotaStatusRequest {
                account: "demo".into(),
            },
            COUNTY_REVIEWER_KEY,
            "zhou",
        ))
        .await
        .expect_err("refused");

    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(refused.message(), "account demo not found");
}
