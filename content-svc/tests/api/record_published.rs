//! Settling a send whose outcome is unknown as published: WeChat's answer to a free
//! publication's submission was lost, so the article is failed as "may be
//! published" (send_outcome_unknown, shown to the editor); the publisher finds it in
//! the account's published list and records it with its URL (RecordPublished),
//! audited and announced like any publication. Only a publisher, only such an
//! article.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, next_event, publish, spawn_stack};
use crate::helpers::{
    AUTHOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, SUBMIT, by, detail_as, lost_free_publication,
};

const URL: &str = "https://mp.weixin.qq.com/s/Zq3-found-in-the-published-list";

fn record(id: &str, url: &str) -> pb::RecordPublishedRequest {
    pb::RecordPublishedRequest {
        id: id.into(),
        url: url.into(),
        comment: "在公众号后台已发表列表中找到".into(),
        msg_data_id: "ARTICLE_FOUND".into(),
        published_at: None,
    }
}

/// The article as its editor 李 reads it.
async fn detail(stack: &Stack, id: &str) -> pb::ArticleDetail {
    detail_as(stack, id, AUTHOR_KEY, "li").await
}

#[tokio::test]
async fn a_free_publication_whose_submission_answer_was_lost_is_recorded_published_by_its_publisher()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let event = lost_free_publication(&stack, &id).await;
    assert!(event.reason.contains("RecordPublished"), "{}", event.reason);

    // The editor sees that it may be out, not only that it failed.
    let article = detail(&stack, &id).await.article.expect("article");
    assert_eq!(article.state, pb::ArticleState::Failed as i32);
    assert!(article.send_outcome_unknown);

    // A reviewer may not settle it; an address that is not WeChat's is refused.
    let refused = client
        .record_published(by(record(&id, URL), REVIEWER_KEY, "wang"))
        .await
        .expect_err("a reviewer is refused");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = client
        .record_published(by(
            record(&id, "https://evil.example/s/x"),
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("not WeChat's address");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("url: "),
        "{}",
        refused.message()
    );

    // 陈 found it in the account's published list.
    let mut published = stack.watch("published").await;
    let recorded = client
        .record_published(by(record(&id, URL), PUBLISHER_KEY, "chen"))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(recorded.state, pb::ArticleState::Published as i32);
    assert_eq!(recorded.url, URL);
    assert_eq!(recorded.msg_data_id, "ARTICLE_FOUND");
    assert!(!recorded.send_outcome_unknown);
    let event = next_event(&mut published).await;
    assert_eq!(event.article_id, id);
    assert_eq!(event.url, URL);
    assert_eq!(event.actor, "media:chen");
    assert!(event.headline);
    let trail = detail(&stack, &id).await.audit;
    let entry = trail
        .iter()
        .find(|e| e.action == "record_published")
        .expect("the settling is in the trail");
    assert_eq!(entry.actor, "media:chen");
    assert_eq!(entry.from_state, pb::ArticleState::Failed as i32);
    assert_eq!(entry.to_state, pb::ArticleState::Published as i32);
    assert!(
        entry.comment.contains(URL) && entry.comment.contains("已发表列表"),
        "{}",
        entry.comment
    );
    // Nothing was sent again.
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);

    // Settled: a second record is refused.
    let refused = client
        .record_published(by(record(&id, URL), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("already published");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    stack.app.stop().await;
}

#[tokio::test]
async fn an_article_wechat_refused_is_not_recorded_as_published() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // WeChat's review refuses it: its verdict is known, nobody got it.
    stack.callbacks.fail_next_publish(4);
    let mut failed = stack.watch("failed").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat");
    next_event(&mut failed).await;

    let refused = client
        .record_published(by(record(&id, URL), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("its outcome is known");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("known outcome"),
        "{}",
        refused.message()
    );
    let article = detail(&stack, &id).await.article.expect("article");
    assert_eq!(article.state, pb::ArticleState::Failed as i32);
    assert!(!article.send_outcome_unknown);
    stack.app.stop().await;
}
