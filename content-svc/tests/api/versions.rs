//! An article's versions for its reviewers: each with who saved it, when and what
//! its review came to, a bounded page at a time, and any one read whole.

use proto::content::v1 as pb;
use tonic::Code;

use crate::articles::{approve, article, create};
use crate::helpers::{
    AUTHOR_KEY, COUNTY_REVIEWER_KEY, EDITOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, TestApp, VIEWER_KEY,
    WATER_EDITOR_KEY, by, spawn_app,
};

fn list(id: &str, page_size: u32, page_token: &str) -> pb::ListArticleVersionsRequest {
    pb::ListArticleVersionsRequest {
        id: id.into(),
        page_size,
        page_token: page_token.into(),
    }
}

fn get(id: &str, version: u32) -> pb::GetArticleVersionRequest {
    pb::GetArticleVersionRequest {
        id: id.into(),
        version,
    }
}

/// 李 (press) writes an article: it is version 1.
async fn written(app: &TestApp, body: &str) -> String {
    app.client
        .clone()
        .create_article(by(
            create("停水通知", body, pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id
}

/// 李 saves a new version of the draft.
async fn edit(app: &TestApp, id: &str, body: &str) {
    app.client
        .clone()
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.into(),
                content: create("停水通知", body, pb::Channel::Freepublish).content,
                version: None,
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("edited");
}

async fn page(
    app: &TestApp,
    request: pb::ListArticleVersionsRequest,
) -> pb::ListArticleVersionsResponse {
    app.client
        .clone()
        .list_article_versions(by(request, REVIEWER_KEY, "zhao"))
        .await
        .expect("listed")
        .into_inner()
}

#[tokio::test]
async fn a_reviewer_sees_every_version_with_its_review_and_reads_an_earlier_one_whole() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // Version 1, rejected at the first review.
    let id = written(&app, "<p>本周六停水。</p>").await;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    client
        .review_article(by(
            pb::ReviewArticleRequest {
                id: id.clone(),
                verdict: pb::ReviewVerdict::Reject as i32,
                comment: "停水时段未写明".into(),
                ..Default::default()
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("rejected");
    // Version 2 passes the three reviews, then is returned for revision.
    edit(&app, &id, "<p>本周六九点至十二点停水。</p>").await;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted again");
    for (key, person) in [
        (REVIEWER_KEY, "wang"),
        (REVIEWER_KEY, "zhao"),
        (PUBLISHER_KEY, "chen"),
    ] {
        client
            .review_article(by(approve(&id), key, person))
            .await
            .expect("approved");
    }
    client
        .return_for_revision(by(
            pb::ReturnForRevisionRequest {
                id: id.clone(),
                reason: "日期应为周日".into(),
                version: 2,
            },
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("returned");
    // Version 3, a draft again.
    edit(&app, &id, "<p>本周日九点至十二点停水。</p>").await;

    let listed = page(&app, list(&id, 0, "")).await;
    assert_eq!(listed.next_page_token, "", "every version on one page");
    let summary: Vec<_> = listed
        .versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.edited_by.as_str(),
                v.outcome,
                v.current,
                v.reviews
                    .iter()
                    .map(|r| (r.action.as_str(), r.actor.as_str(), r.stage.as_str()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                3,
                "press:li",
                pb::VersionOutcome::NotReviewed as i32,
                true,
                vec![]
            ),
            (
                2,
                "press:li",
                pb::VersionOutcome::Returned as i32,
                false,
                vec![
                    ("submit", "press:li", ""),
                    ("approve", "media:wang", "first"),
                    ("approve", "media:zhao", "second"),
                    ("approve", "media:chen", "final"),
                    ("return", "media:zhao", ""),
                ]
            ),
            (
                1,
                "press:li",
                pb::VersionOutcome::Rejected as i32,
                false,
                vec![
                    ("submit", "press:li", ""),
                    ("reject", "media:wang", "first"),
                ]
            ),
        ]
    );
    assert_eq!(listed.versions[2].reviews[1].comment, "停水时段未写明");
    assert!(
        listed
            .versions
            .iter()
            .all(|v| v.title == "停水通知" && v.created_at.is_some())
    );

    // The rejected first version, whole: what 王 read.
    let first = client
        .get_article_version(by(get(&id, 1), REVIEWER_KEY, "zhao"))
        .await
        .expect("read")
        .into_inner();
    let content = first.content.expect("content");
    assert_eq!(content.body, "<p>本周六停水。</p>");
    assert_eq!(content.cover_media_id, "MEDIA_COVER_1");
    assert!(first.settings_recorded);
    let summary = first.summary.expect("summary");
    assert_eq!(
        (summary.version, summary.outcome, summary.current),
        (1, pb::VersionOutcome::Rejected as i32, false)
    );
    // Not the current version, whatever GetArticle shows.
    let current = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(
        current
            .article
            .expect("article")
            .content
            .expect("content")
            .body,
        "<p>本周日九点至十二点停水。</p>"
    );
    app.stop().await;
}

#[tokio::test]
async fn versions_are_read_by_whoever_may_read_the_article() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = written(&app, "<p>本周六停水。</p>").await;
    edit(&app, &id, "<p>本周日停水。</p>").await;

    // The press office's editors, and the reviewers and publishers of the account.
    for (key, person) in [
        (AUTHOR_KEY, "li"),
        (EDITOR_KEY, "zhou"),
        (REVIEWER_KEY, "wang"),
        (PUBLISHER_KEY, "chen"),
    ] {
        let listed = client
            .list_article_versions(by(list(&id, 0, ""), key, person))
            .await
            .unwrap_or_else(|e| panic!("{person}: {e:?}"))
            .into_inner();
        assert_eq!(listed.versions.len(), 2, "{person}");
        client
            .get_article_version(by(get(&id, 1), key, person))
            .await
            .unwrap_or_else(|e| panic!("{person}: {e:?}"));
    }
    // Another department's editor and another account's reviewer: as if it did not exist.
    for (key, person) in [(WATER_EDITOR_KEY, "sun"), (COUNTY_REVIEWER_KEY, "he")] {
        let refused = client
            .list_article_versions(by(list(&id, 0, ""), key, person))
            .await
            .expect_err("not theirs");
        assert_eq!(refused.code(), Code::NotFound, "{person}: {refused:?}");
        let refused = client
            .get_article_version(by(get(&id, 1), key, person))
            .await
            .expect_err("not theirs");
        assert_eq!(refused.code(), Code::NotFound, "{person}: {refused:?}");
    }
    // A role outside the workflow.
    let refused = client
        .list_article_versions(by(list(&id, 0, ""), VIEWER_KEY, "ma"))
        .await
        .expect_err("a viewer");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = client
        .get_article_version(by(get(&id, 1), VIEWER_KEY, "ma"))
        .await
        .expect_err("a viewer");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    app.stop().await;
}

#[tokio::test]
async fn versions_come_a_bounded_page_at_a_time_and_a_bad_request_is_refused() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = written(&app, "<p>第1稿</p>").await;
    for n in 2..=55 {
        edit(&app, &id, &format!("<p>第{n}稿</p>")).await;
    }

    // 20 by default, at most 50; a walk lists each version once, newest first.
    let first = page(&app, list(&id, 0, "")).await;
    assert_eq!(first.versions.len(), 20);
    assert_eq!(first.versions[0].version, 55);
    let mut walked = Vec::new();
    let mut token = String::new();
    loop {
        let next = page(&app, list(&id, 50, &token)).await;
        assert!(next.versions.len() <= 50);
        walked.extend(next.versions.iter().map(|v| v.version));
        if next.next_page_token.is_empty() {
            break;
        }
        token = next.next_page_token;
    }
    assert_eq!(walked, (1..=55).rev().collect::<Vec<u32>>());
    // A page ending exactly at version 1 says nothing is left.
    let all_but_five = page(&app, list(&id, 50, "")).await;
    let last = page(&app, list(&id, 5, &all_but_five.next_page_token)).await;
    assert_eq!(last.versions.len(), 5);
    assert_eq!(last.next_page_token, "");

    for (request, field) in [
        (list(&id, 51, ""), "page_size"),
        (list(&id, 0, "garbage"), "page_token"),
        (list(&id, 0, "v0"), "page_token"),
        (list(&id, 0, "v-3"), "page_token"),
        (
            list(
                &id,
                0,
                "c1700000000000000_0190a4e2-0000-7000-8000-000000000000",
            ),
            "page_token",
        ),
        (list("not-a-uuid", 0, ""), "id"),
    ] {
        let refused = client
            .list_article_versions(by(request, REVIEWER_KEY, "zhao"))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(field), "{}", refused.message());
    }
    let refused = client
        .get_article_version(by(get(&id, 0), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("version 0");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("version"),
        "{}",
        refused.message()
    );
    let refused = client
        .get_article_version(by(get(&id, 56), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("not yet written");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    assert!(
        refused.message().contains("version 56"),
        "{}",
        refused.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_version_withdrawn_mid_review_is_no_longer_in_review() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = written(&app, "<p>本周六停水。</p>").await;
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");
    client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("first review passed");
    client
        .withdraw_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("withdrawn");
    edit(&app, &id, "<p>本周六九点至十二点停水。</p>").await;

    let listed = page(&app, list(&id, 0, "")).await;
    let first = listed
        .versions
        .iter()
        .find(|v| v.version == 1)
        .expect("version 1");
    let actions: Vec<_> = first.reviews.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["submit", "approve", "withdraw"]);
    assert_eq!(
        first.outcome,
        pb::VersionOutcome::NotReviewed as i32,
        "its round ended with the withdrawal"
    );
    app.stop().await;
}
