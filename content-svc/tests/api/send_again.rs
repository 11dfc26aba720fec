//! Sending again an article whose last send's outcome is unknown: WeChat may have
//! pushed it (a mass send's clientmsgid guards a retry for 24 hours only, a free
//! publication has none), so PublishArticle and ScheduleArticle refuse until the
//! publisher confirms the followers did not get it, and the confirmation is in the
//! article's trail.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{publish, spawn_stack};
use crate::helpers::{
    PUBLISHER_KEY, SENDALL, SUBMIT, by, confirmed, detail, failed_by_the_stuck_send_sweep,
    lost_free_publication,
};

fn assert_possible_duplicate(refused: &tonic::Status) {
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("the last send may have reached followers")
            && refused.message().contains("WeChat's console")
            && refused.message().contains("confirm_possible_duplicate"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_mass_send_failed_as_of_unknown_outcome_goes_out_again_only_on_the_publishers_confirmation()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    // The replica sending it stopped after its claim an hour ago: no job recorded.
    // The service's scheduler fails it as of unknown outcome.
    let event = failed_by_the_stuck_send_sweep(&stack, &[&id]).await;
    assert_eq!(event.article_id, id);

    // Published again (or scheduled) without a word: refused, nothing sent.
    let refused = client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("refused");
    assert_possible_duplicate(&refused);
    let at = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 600,
        nanos: 0,
    };
    let refused = client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.clone(),
                at: Some(at),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("refused");
    assert_possible_duplicate(&refused);
    assert!(stack.mock.state().calls_to(SENDALL).is_empty());
    let article = detail(&stack, &id).await.article.expect("article");
    assert_eq!(article.state, pb::ArticleState::Failed as i32);
    assert_eq!(stack.quota().await.used, 0, "nothing reserved");

    // 陈 checked the account's sent messages: the followers did not get it.
    let sent = client
        .publish_article(by(confirmed(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent again")
        .into_inner();
    assert_ne!(sent.state, pb::ArticleState::Failed as i32);
    assert_eq!(stack.mock.state().calls_to(SENDALL).len(), 1);
    let trail = detail(&stack, &id).await.audit;
    let confirmation = trail
        .iter()
        .find(|e| e.action == "confirm_possible_duplicate")
        .expect("the confirmation is in the trail");
    assert_eq!(confirmation.actor, "media:chen");
    assert!(
        confirmation.comment.contains("did not reach followers")
            && confirmation.comment.contains("outcome is unknown"),
        "{}",
        confirmation.comment
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_free_publication_whose_submission_answer_was_lost_is_submitted_again_only_when_confirmed()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // WeChat takes the submission, but its answer is lost: failed, may be published.
    assert_eq!(lost_free_publication(&stack, &id).await.article_id, id);

    let refused = client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("refused");
    assert_possible_duplicate(&refused);
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);

    client
        .publish_article(by(confirmed(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("submitted again");
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 2);
    // Confirmed once: the send that followed is known, and a later failure of it
    // is WeChat's verdict, not another unknown.
    let unknown: bool =
        sqlx::query_scalar("SELECT send_outcome_unknown FROM articles WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&stack.app.db)
            .await
            .expect("read");
    assert!(!unknown);
    stack.app.stop().await;
}
