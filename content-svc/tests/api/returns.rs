//! Returning an article for revision: a mistake noticed after the final approval
//! sends it back to its editor, cancels its schedule, and its next version needs
//! three reviews again.

use proto::content::v1 as pb;
use proto::events::v1 as ev;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{approve, article, create, next_event, spawn_stack};
use crate::helpers::{AUTHOR_KEY, EDITOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, by};

fn return_for(id: &str, reason: &str) -> pb::ReturnForRevisionRequest {
    pb::ReturnForRevisionRequest {
        id: id.into(),
        reason: reason.into(),
        version: 0,
    }
}

#[tokio::test]
async fn a_scheduled_article_returned_for_revision_is_unscheduled_and_needs_three_new_reviews() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 3_600,
                    nanos: 0,
                }),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled");

    // An editor may not send it back; a reason is needed.
    let refused = client
        .return_for_revision(by(return_for(&id, "日期有误"), EDITOR_KEY, "li"))
        .await
        .expect_err("an editor's key");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = client
        .return_for_revision(by(return_for(&id, " "), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("no reason");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    // 赵 notices the wrong date after the approval.
    let mut returned_events = stack.watch("returned").await;
    let returned = client
        .return_for_revision(by(
            return_for(&id, "停水日期应为周日"),
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("returned")
        .into_inner();
    assert_eq!(returned.state, pb::ArticleState::Draft as i32);
    assert_eq!(returned.scheduled_for, None);
    // Announced as a return, not a rejection: it had passed its three reviews.
    let event = next_event(&mut returned_events).await;
    assert_eq!(
        (
            event.transition,
            event.article_id.as_str(),
            event.reason.as_str(),
            event.actor.as_str(),
            event.stage,
        ),
        (
            ev::ArticleTransition::Returned as i32,
            id.as_str(),
            "停水日期应为周日",
            "media:zhao",
            ev::ReviewStage::Unspecified as i32,
        )
    );
    let rejections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE subject = 'content.demo.article.rejected'",
    )
    .fetch_one(&stack.app.db)
    .await
    .expect("outbox read");
    assert_eq!(rejections, 0, "a return is not announced as a rejection");
    let detail = client
        .get_article(by(
            pb::GetArticleRequest { id: id.clone() },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("read")
        .into_inner();
    let last = detail.audit.last().expect("a trail");
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.comment.as_str()
        ),
        ("return", "media:zhao", "停水日期应为周日")
    );
    assert_eq!(last.from_state, pb::ArticleState::Scheduled as i32);

    // 李 fixes it; the new version starts the three reviews again.
    client
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.clone(),
                content: create("停水通知", "<p>本周日停水。</p>", pb::Channel::Freepublish)
                    .content,
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("edited");
    client
        .submit_article(by(article(&id), AUTHOR_KEY, "li"))
        .await
        .expect("submitted again");
    let final_first = client
        .review_article(by(approve(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("the first review comes first");
    assert_eq!(
        final_first.code(),
        Code::PermissionDenied,
        "{final_first:?}"
    );
    let first = client
        .review_article(by(approve(&id), REVIEWER_KEY, "wang"))
        .await
        .expect("王 reviews the new version")
        .into_inner();
    assert_eq!(first.state, pb::ArticleState::FirstReviewed as i32);
    assert_eq!(first.version, 2);
    stack.app.stop().await;
}

#[tokio::test]
async fn an_article_with_wechat_or_in_a_message_is_not_returned() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let head = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let other = stack.approved("停电通知", pb::Channel::Freepublish).await;
    let message = client
        .compose_message(by(
            pb::ComposeMessageRequest {
                account: "demo".into(),
                message_id: String::new(),
                article_ids: vec![head.clone(), other.clone()],
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("composed")
        .into_inner();
    let refused = client
        .return_for_revision(by(return_for(&other, "数据有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("a message's article");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains(&message.id) && refused.message().contains("recompose"),
        "{}",
        refused.message()
    );
    client
        .dissolve_message(by(pb::MessageRef { id: message.id }, PUBLISHER_KEY, "chen"))
        .await
        .expect("dissolved");

    // Handed to WeChat: no longer returned.
    sqlx::query("UPDATE articles SET state = 'publishing' WHERE id = $1::uuid")
        .bind(&other)
        .execute(&stack.app.db)
        .await
        .expect("arranged");
    let refused = client
        .return_for_revision(by(return_for(&other, "数据有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("with WeChat");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("publishing"),
        "{}",
        refused.message()
    );
    stack.app.stop().await;
}
