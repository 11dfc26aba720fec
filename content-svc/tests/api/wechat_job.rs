//! GetArticle's `wechat_job`: what an operator or a publisher needs of an article's
//! WeChat job (its id, when it was recorded, the place and version each article was
//! sent at) without reading the database.

use std::time::Duration;

use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{create, next_event, publish, spawn_stack, spawn_stack_with};
use crate::helpers::{
    AUTHOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, approved_message, by, detail, lost_free_publication,
    return_for,
};

#[tokio::test]
async fn a_mass_sent_messages_articles_show_its_job_and_the_place_each_was_sent_at() {
    // No job-finish callback: the message stays with WeChat, its job awaited.
    let stack = spawn_stack_with(AccountKind::Service, false, &[]).await;
    let (_, ids) = approved_message(
        &stack,
        ["停水通知", "停电通知", "停气通知"],
        pb::Channel::MassSend,
    )
    .await;
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(&ids[0]), PUBLISHER_KEY, "chen"))
        .await
        .expect("published");

    let headline = handed_over(&stack, &ids[0]).await;
    let job = headline.wechat_job.clone().expect("the headline's job");
    assert!(!job.mass_msg_id.is_empty(), "{job:?}");
    assert_eq!(job.publish_id, "", "a mass send has no freepublish job");
    let handed_at = job.handed_at.expect("dated while the job is awaited");
    for (place, id) in ids.iter().enumerate() {
        let read = detail(&stack, id).await;
        let a = read.article.expect("the article");
        assert_eq!(a.state, pb::ArticleState::Publishing as i32);
        let got = read.wechat_job.expect("each article shows the job");
        assert_eq!(
            got,
            pb::WechatJob {
                mass_msg_id: job.mass_msg_id.clone(),
                publish_id: String::new(),
                sent_position: place as u32 + 1,
                sent_version: a.version,
                handed_at: Some(handed_at),
            },
            "article {}",
            place + 1
        );
    }
}

#[tokio::test]
async fn a_published_free_publication_keeps_its_job_undated_and_a_draft_shows_none() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let draft = client
        .create_article(by(
            create("停水通知", "<p>停水。</p>", pb::Channel::Freepublish),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(detail(&stack, &draft.id).await.wechat_job, None);

    let id = stack.approved("停电通知", pb::Channel::Freepublish).await;
    assert_eq!(
        detail(&stack, &id).await.wechat_job,
        None,
        "approved, never handed over"
    );
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("published");
    next_event(&mut published).await;

    let read = detail(&stack, &id).await;
    let a = read.article.expect("the article");
    assert_eq!(a.state, pb::ArticleState::Published as i32);
    let job = read.wechat_job.expect("the job it went out with");
    assert!(!job.publish_id.is_empty(), "{job:?}");
    assert_eq!(job.mass_msg_id, "");
    assert_eq!((job.sent_position, job.sent_version), (1, a.version));
    assert_eq!(
        job.handed_at, None,
        "updated_at dates the verdict now, not the hand-over"
    );
}

#[tokio::test]
async fn after_a_member_is_returned_each_article_still_shows_the_place_it_was_sent_at() {
    let stack = spawn_stack(AccountKind::Service).await;
    let (_, [water, power, gas]) = approved_message(
        &stack,
        ["停水通知", "停电通知", "停气通知"],
        pb::Channel::Freepublish,
    )
    .await;
    // WeChat takes the submission, its answer lost: no job id, outcome unknown.
    lost_free_publication(&stack, &water).await;
    // The second is returned for revision: the third moves up to place 2.
    stack
        .app
        .client
        .clone()
        .return_for_revision(by(return_for(&power, "标题有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("the failed member returned");

    // WeChat's idx 2 is the returned article's, whatever the message is now.
    for (id, place, in_message) in [(&water, 1, 1), (&power, 2, 0), (&gas, 3, 2)] {
        let read = detail(&stack, id).await;
        let a = read.article.expect("the article");
        assert_eq!(a.message_position, in_message, "{id}");
        let job = read.wechat_job.expect("the place it was sent at");
        assert_eq!(
            (job.sent_position, job.publish_id.as_str(), job.handed_at),
            (place, "", None),
            "{id}: no job id was recorded"
        );
        assert_eq!(job.sent_version, 1, "{id}");
    }
}

/// The article once its job id is recorded (the send is handed over in the
/// background of PublishArticle's answer).
async fn handed_over(stack: &crate::articles::Stack, id: &str) -> pb::ArticleDetail {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let read = detail(stack, id).await;
            if read
                .wechat_job
                .as_ref()
                .is_some_and(|j| !j.mass_msg_id.is_empty())
            {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the job id is recorded")
}
