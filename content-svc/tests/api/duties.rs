//! Separation of duties (domain.md §3, §5): an editor edits their department's
//! articles, nobody who wrote a version reviews it or overrides its hits.

use proto::content::v1 as pb;
use tonic::Code;

use crate::articles::{approve, article, create};
use crate::helpers::{AUTHOR_KEY, EDITOR_KEY, REVIEWER_KEY, WATER_EDITOR_KEY, by, spawn_app};

fn rewrite(id: &str, body: &str) -> pb::UpdateArticleRequest {
    pb::UpdateArticleRequest {
        id: id.into(),
        content: create("停水通知", body, pb::Channel::Freepublish).content,
    }
}

#[tokio::test]
async fn an_editor_whose_key_also_reviews_cannot_edit_another_departments_draft() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            WATER_EDITOR_KEY,
            "zhou",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    // press:li's key reviews too, so it sees the water bureau's draft; it may not
    // rewrite it.
    let refused = client
        .update_article(by(rewrite(&id, "<p>李写的正文。</p>"), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("water"), "{}", refused.message());
    let edited = client
        .update_article(by(
            rewrite(&id, "<p>周改的正文。</p>"),
            WATER_EDITOR_KEY,
            "zhou",
        ))
        .await
        .expect("its own department edits it")
        .into_inner();
    assert_eq!(edited.version, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_colleague_who_rewrote_the_draft_may_not_review_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            EDITOR_KEY,
            "wu",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    client
        .update_article(by(rewrite(&id, "<p>李改写的正文。</p>"), AUTHOR_KEY, "li"))
        .await
        .expect("a colleague of the department edits it");
    client
        .submit_article(by(article(&id), EDITOR_KEY, "wu"))
        .await
        .expect("submitted");
    let refused = client
        .review_article(by(approve(&id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("edited"),
        "{}",
        refused.message()
    );
    let reviewed = client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("a reviewer who wrote none of it")
        .into_inner();
    assert_eq!(reviewed.state, pb::ArticleState::FirstReviewed as i32);
    app.stop().await;
}

#[tokio::test]
async fn the_author_may_not_override_the_hits_of_their_own_text() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let created = client
        .create_article(by(
            create(
                "通知",
                "<p>推荐使用vpn翻墙软件。</p>",
                pb::Channel::Freepublish,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    assert!(!created.hits.is_empty(), "the text has hits");
    let overrides = |reason: &str| pb::OverrideHitsRequest {
        id: created.id.clone(),
        overrides: created
            .hits
            .iter()
            .map(|h| pb::HitOverride {
                key: h.key.clone(),
                reason: reason.into(),
            })
            .collect(),
        ..Default::default()
    };
    let refused = client
        .override_hits(by(overrides("自己放行"), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let refused = client
        .submit_article(by(article(&created.id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "the hits stay open"
    );
    let overridden = client
        .override_hits(by(overrides("反面引用，提醒市民"), REVIEWER_KEY, "wang"))
        .await
        .expect("a reviewer overrides them")
        .into_inner();
    assert!(overridden.hits.iter().all(|h| h.overridden));
    app.stop().await;
}

#[tokio::test]
async fn an_editor_whose_key_also_reviews_cannot_submit_another_departments_draft() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            WATER_EDITOR_KEY,
            "zhou",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    // press:li's key reviews too, so it sees the water bureau's draft; sending it to
    // review is the water bureau's decision.
    let refused = client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("water"), "{}", refused.message());
    let submitted = client
        .submit_article(by(article(&id), WATER_EDITOR_KEY, "zhou"))
        .await
        .expect("its own department submits it")
        .into_inner();
    assert_eq!(submitted.state, pb::ArticleState::Submitted as i32);
    app.stop().await;
}
