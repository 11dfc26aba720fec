//! A review's verdict is said, never assumed: a request that leaves it out (a
//! client that forgot the field) is refused, and the article stays where it was.

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
    // The deprecated bool alone, as a client of the previous release sends it:
    // this server ignores it, so approve=true without a verdict is refused too.
    #[allow(deprecated)]
    let old_client = pb::ReviewArticleRequest {
        id: id.clone(),
        approve: true,
        comment: "同意".into(),
        ..Default::default()
    };
    let refused = client
        .review_article(by(old_client, REVIEWER_KEY, "wang"))
        .await
        .expect_err("approve=true is not a verdict");
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
