//! A review's verdict is said, never assumed: a request that leaves it out (a
//! client that forgot the field) is refused, and the article stays where it was.
//! The one exception is unambiguous: approve=true in the deprecated bool, which a
//! govwx of the previous release sends and a forgotten field never is.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{article, create, spawn_stack};
use crate::helpers::{AUTHOR_KEY, REVIEWER_KEY, by};

#[tokio::test]
async fn a_review_without_a_verdict_is_refused_and_the_article_stays_submitted() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
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
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");

    // A comment and nothing else: "approve" or "reject" was never said.
    let refused = client
        .review_article(by(
            pb::ReviewArticleRequest {
                id: id.clone(),
                comment: "同意".into(),
                ..Default::default()
            },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect_err("no verdict given");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("verdict"),
        "{}",
        refused.message()
    );
    // The deprecated bool alone and false: a forgotten field looks the same, so it
    // is no verdict either.
    #[allow(deprecated)]
    let unsaid = pb::ReviewArticleRequest {
        id: id.clone(),
        approve: false,
        comment: "同意".into(),
        ..Default::default()
    };
    let refused = client
        .review_article(by(unsaid, REVIEWER_KEY, "wang"))
        .await
        .expect_err("approve=false alone is not a verdict");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let now = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "wang",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("article");
    assert_eq!(now.state, pb::ArticleState::Submitted as i32);
    stack.app.stop().await;
}

/// govwx is installed on reviewers' machines and a previous-release binary outlives
/// a rollout: its approval (the old `bool approve` set, no verdict) still approves.
#[tokio::test]
async fn a_previous_release_client_approving_with_the_old_field_moves_the_article_on() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
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
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted");

    #[allow(deprecated)]
    let old_client = pb::ReviewArticleRequest {
        id: id.clone(),
        approve: true,
        comment: "同意".into(),
        ..Default::default()
    };
    let reviewed = client
        .review_article(by(old_client, REVIEWER_KEY, "wang"))
        .await
        .expect("an old client's approval is an approval")
        .into_inner();
    assert_eq!(
        reviewed.state,
        pb::ArticleState::FirstReviewed as i32,
        "the first review passed"
    );

    // A verdict and the bool saying the opposite: which one was meant is unknown.
    #[allow(deprecated)]
    let contradicting = pb::ReviewArticleRequest {
        id: id.clone(),
        approve: true,
        verdict: pb::ReviewVerdict::Reject as i32,
        comment: "标题有误".into(),
        ..Default::default()
    };
    let refused = client
        .review_article(by(contradicting, REVIEWER_KEY, "zhao"))
        .await
        .expect_err("reject with approve=true is contradictory");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("approve"),
        "{}",
        refused.message()
    );
    let now = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("read")
        .into_inner()
        .article
        .expect("article");
    assert_eq!(now.state, pb::ArticleState::FirstReviewed as i32);
    stack.app.stop().await;
}
