//! Free text and times in content-svc's requests are checked at the door, before
//! anything is done: a refusal is INVALID_ARGUMENT naming the field, and nothing
//! changes (no audit row, no event, no WeChat call).

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, article, create, spawn_stack};
use crate::helpers::{AUTHOR_KEY, by};

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
