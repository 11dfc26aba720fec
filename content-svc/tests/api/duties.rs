//! Separation of duties (domain.md §3, §5): an editor edits their department's
//! articles, nobody who wrote a version reviews it or overrides its hits.

use proto::content::v1 as pb;
use tonic::Code;

use crate::articles::{approve, article, create};
use crate::helpers::{
    AUTHOR_KEY, EDITOR_KEY, REVIEWER_KEY, WATER_EDITOR_KEY, authed, by, spawn_app,
};

fn rewrite(id: &str, body: &str) -> pb::UpdateArticleRequest {
    pb::UpdateArticleRequest {
        id: id.into(),
        content: create("停水通知", body, pb::Channel::Freepublish).content,
        version: None,
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

/// A request with `key` naming a person when `person` is not empty, else none
/// (the key's department acts).
fn as_<T>(message: T, key: &str, person: &str) -> tonic::Request<T> {
    if person.is_empty() {
        authed(message, key)
    } else {
        by(message, key, person)
    }
}

fn assert_may_be_same_person(refused: &tonic::Status, actor: &str, other: &str) {
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with(&format!("{actor} may be {other}, who ")),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_department_writing_without_naming_a_person_may_not_have_one_of_its_people_review_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    // Written by the press office's key without x-actor, reviewed by press:li; and
    // written by press:li, reviewed by the key without x-actor.
    for (writer, reviewer) in [("", "li"), ("li", "")] {
        let id = client
            .create_article(as_(
                create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
                AUTHOR_KEY,
                writer,
            ))
            .await
            .expect("created")
            .into_inner()
            .id;
        client
            .submit_article(as_(article(&id), AUTHOR_KEY, writer))
            .await
            .expect("submitted");
        let refused = client
            .review_article(as_(approve(&id), AUTHOR_KEY, reviewer))
            .await
            .unwrap_err();
        let name = |person: &str| match person {
            "" => "press".to_owned(),
            person => format!("press:{person}"),
        };
        assert_may_be_same_person(&refused, &name(reviewer), &name(writer));
        // Another department's reviewer, named or not, may.
        let reviewed = client
            .review_article(as_(approve(&id), REVIEWER_KEY, reviewer))
            .await
            .expect("another department reviews it")
            .into_inner();
        assert_eq!(reviewed.state, pb::ArticleState::FirstReviewed as i32);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_review_without_a_named_person_and_one_by_a_person_of_that_department_are_not_two() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    for (first, second) in [("", "wang"), ("wang", "")] {
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
            .submit_article(by(article(&id), EDITOR_KEY, "wu"))
            .await
            .expect("submitted");
        client
            .review_article(as_(approve(&id), REVIEWER_KEY, first))
            .await
            .expect("the first review");
        let refused = client
            .review_article(as_(approve(&id), REVIEWER_KEY, second))
            .await
            .unwrap_err();
        let name = |person: &str| match person {
            "" => "media".to_owned(),
            person => format!("media:{person}"),
        };
        assert_may_be_same_person(&refused, &name(second), &name(first));
        assert!(
            refused.message().contains("who did the first review"),
            "{}",
            refused.message()
        );
        // A reviewer of another department who wrote none of it does the second.
        let reviewed = client
            .review_article(by(approve(&id), AUTHOR_KEY, "li"))
            .await
            .expect("a different person")
            .into_inner();
        assert_eq!(reviewed.state, pb::ArticleState::SecondReviewed as i32);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_department_without_a_named_person_may_not_override_the_hits_of_its_peoples_text() {
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
    let overrides = pb::OverrideHitsRequest {
        id: created.id.clone(),
        overrides: created
            .hits
            .iter()
            .map(|h| pb::HitOverride {
                key: h.key.clone(),
                reason: "反面引用".into(),
            })
            .collect(),
        ..Default::default()
    };
    let refused = client
        .override_hits(authed(overrides.clone(), AUTHOR_KEY))
        .await
        .unwrap_err();
    assert_may_be_same_person(&refused, "press", "press:li");
    let overridden = client
        .override_hits(authed(overrides, REVIEWER_KEY))
        .await
        .expect("another department's reviewer overrides them")
        .into_inner();
    assert!(overridden.hits.iter().all(|h| h.overridden));
    app.stop().await;
}

#[tokio::test]
async fn a_colleague_who_submitted_the_draft_may_not_review_it() {
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
    // 李 wrote none of it, but sent it to review: the first stage is not theirs.
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("a colleague of the department submits it");
    let refused = client
        .review_article(by(approve(&id), AUTHOR_KEY, "li"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("submitted"),
        "{}",
        refused.message()
    );
    let reviewed = client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("a reviewer who neither wrote nor submitted it")
        .into_inner();
    assert_eq!(reviewed.state, pb::ArticleState::FirstReviewed as i32);
    app.stop().await;
}

#[tokio::test]
async fn an_unnamed_submission_of_an_earlier_round_does_not_bar_the_departments_reviewers() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let id = client
        .create_article(by(
            create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner()
        .id;
    // Submitted under the department's name alone (any of press may be behind it),
    // then withdrawn: that round is over.
    client
        .submit_article(authed(article(&id), AUTHOR_KEY))
        .await
        .expect("submitted unnamed");
    client
        .withdraw_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("withdrawn by its author");
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted again, named");
    let reviewed = client
        .review_article(by(approve(&id), AUTHOR_KEY, "wang"))
        .await
        .expect("press:wang neither wrote nor submitted this round")
        .into_inner();
    assert_eq!(reviewed.state, pb::ArticleState::FirstReviewed as i32);
    app.stop().await;
}
