//! Returning an article for revision: a mistake noticed after the final approval
//! sends it back to its editor, cancels its schedule, and its next version needs
//! three reviews again.

use proto::content::v1 as pb;
use proto::events::v1 as ev;
use tonic::Code;
use wechat_sim::api_server::AccountKind;

use crate::articles::{approve, article, create, next_event, publish, spawn_stack};
use crate::helpers::{
    AUTHOR_KEY, EDITOR_KEY, PUBLISHER_KEY, REVIEWER_KEY, SENDALL, SUBMIT, approved_message, by,
    confirmed, detail, failed_by_the_stuck_send_sweep, lost_mass_send, preview_for_the_director,
    return_for, wechat_latency,
};

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
                version: None,
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
async fn an_article_with_wechat_is_not_returned() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let other = stack.approved("停电通知", pb::Channel::Freepublish).await;
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

async fn message_of(
    stack: &crate::articles::Stack,
    id: &str,
) -> Result<Vec<(String, u32, i32)>, tonic::Status> {
    let message = stack
        .app
        .client
        .clone()
        .get_message(by(pb::MessageRef { id: id.into() }, PUBLISHER_KEY, "chen"))
        .await?
        .into_inner();
    Ok(message
        .articles
        .iter()
        .map(|a| (a.id.clone(), a.message_position, a.state))
        .collect())
}

#[tokio::test]
async fn an_article_returned_from_a_scheduled_message_leaves_it_and_the_rest_waits_for_the_publisher()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let (message, [water, power, roads]) = approved_message(
        &stack,
        ["停水通知", "停电通知", "道路施工公告"],
        pb::Channel::Freepublish,
    )
    .await;
    client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: water.clone(),
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
        .expect("the message scheduled");

    // 赵 finds a mistake in the second article: it goes back to its editor, out of
    // the message; the others close up, and the message's schedule is cancelled, as
    // it would send what the publisher did not compose.
    let mut returned = stack.watch("returned").await;
    let mut scheduled = stack.watch("scheduled").await;
    let draft = client
        .return_for_revision(by(return_for(&power, "停电范围有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("returned out of its message")
        .into_inner();
    assert_eq!(draft.state, pb::ArticleState::Draft as i32);
    assert_eq!((draft.message_id.as_str(), draft.message_position), ("", 0));
    assert_eq!(next_event(&mut returned).await.article_id, power);
    // The relay may publish the scheduling's own `scheduled` event after the watch
    // began: the cancellation is the one without a time.
    let cancelled = loop {
        let event = next_event(&mut scheduled).await;
        if event.scheduled_for.is_none() {
            break event;
        }
        assert_eq!(event.article_id, water, "only the headline is scheduled");
    };
    assert_eq!(cancelled.article_id, water);
    let approved = pb::ArticleState::Approved as i32;
    assert_eq!(
        message_of(&stack, &message)
            .await
            .expect("the message stays"),
        vec![(water.clone(), 1, approved), (roads.clone(), 2, approved)]
    );
    let headline = detail(&stack, &water).await;
    assert_eq!(headline.article.expect("article").scheduled_for, None);
    let trail = detail(&stack, &roads).await.audit;
    let last = trail.last().expect("a trail");
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("compose", "media:zhao")
    );
    assert!(
        last.comment.contains("article 2 of 2") && last.comment.contains(&power),
        "{}",
        last.comment
    );

    // The headline returned too: the next one leads the message.
    client
        .return_for_revision(by(return_for(&water, "时间有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("the headline returned");
    assert_eq!(
        message_of(&stack, &message)
            .await
            .expect("the message stays"),
        vec![(roads.clone(), 1, approved)]
    );
    // The last one out: no message is left.
    client
        .return_for_revision(by(return_for(&roads, "路段有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("the last returned");
    let gone = message_of(&stack, &message).await.expect_err("no message");
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    stack.app.stop().await;
}

#[tokio::test]
async fn an_article_of_a_message_with_wechat_is_not_returned() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let (message, [water, power]) =
        approved_message(&stack, ["停水通知", "停电通知"], pb::Channel::Freepublish).await;
    // The headline handed to WeChat, the others not moved yet (they follow it in a
    // transaction of their own): the message is going out as composed.
    sqlx::query("UPDATE articles SET state = 'publishing' WHERE id = $1::uuid")
        .bind(&water)
        .execute(&stack.app.db)
        .await
        .expect("arranged");
    let refused = client
        .return_for_revision(by(return_for(&power, "数据有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect_err("its message is with WeChat");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains(&message) && refused.message().contains("publishing"),
        "{}",
        refused.message()
    );
    assert_eq!(
        message_of(&stack, &message).await.expect("unchanged").len(),
        2
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_headline_returned_after_a_send_of_unknown_outcome_leaves_the_next_one_needing_confirmation()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let (_, [water, power]) =
        approved_message(&stack, ["停水通知", "停电通知"], pb::Channel::Freepublish).await;
    // The replica submitting the message stopped after its claim an hour ago: no job
    // recorded, so WeChat may have published both. The scheduler fails it as of
    // unknown outcome.
    failed_by_the_stuck_send_sweep(&stack, &[&water, &power]).await;

    // 赵 returns the headline to fix it; the other article leads the message now.
    client
        .return_for_revision(by(return_for(&water, "标题有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("the failed headline returned");
    // Sent again without a word, it could reach every follower a second time.
    let refused = client
        .publish_article(by(publish(&power), PUBLISHER_KEY, "chen"))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("the last send may have reached followers"),
        "{}",
        refused.message()
    );
    assert!(stack.mock.state().calls_to(SUBMIT).is_empty());
    stack.app.stop().await;
}

#[tokio::test]
async fn a_member_returned_from_a_message_whose_send_outcome_is_unknown_needs_confirmation_to_go_out_alone()
 {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let (_, [water, power]) =
        approved_message(&stack, ["停水通知", "停电通知"], pb::Channel::Freepublish).await;
    // The send cut off mid-way: the stuck-send sweep fails the message, its outcome
    // unknown (WeChat may have the whole message).
    failed_by_the_stuck_send_sweep(&stack, &[&water, &power]).await;

    // 赵 returns the member; (a shortcut for its three reviews) it is approved again.
    client
        .return_for_revision(by(return_for(&power, "标题有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("the failed member returned");
    sqlx::query("UPDATE articles SET state = 'approved' WHERE id = $1::uuid")
        .bind(&power)
        .execute(&stack.app.db)
        .await
        .expect("re-approved");
    let sent = client
        .publish_article(by(publish(&power), PUBLISHER_KEY, "chen"))
        .await;
    assert!(
        sent.as_ref()
            .is_err_and(|e| e.code() == Code::FailedPrecondition),
        "the returned member, which may have gone out in the message, was sent again \
         without confirm_possible_duplicate: {sent:?}; submit calls {}",
        stack.mock.state().calls_to(SUBMIT).len()
    );
    stack.app.stop().await;
}

// Review round 2, finding 1: a headline whose mass send lost its answer waits to
// retry with the flag, which is read on the headline only. Cancelled, its message
// could be dissolved or recomposed and a member sent alone unconfirmed (followers
// who got the lost send got it twice). The message cannot change until the send is
// settled; the publisher's way out is a confirmed send again of the same message.
#[tokio::test]
async fn review2_a_message_whose_send_may_have_gone_out_is_not_taken_apart_until_settled() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let water = stack.approved("停水通知", pb::Channel::MassSend).await;
    let power = stack.approved("停电通知", pb::Channel::MassSend).await;
    let roads = stack.approved("道路施工", pb::Channel::MassSend).await;
    let compose = |message: &str, ids: Vec<String>| {
        by(
            pb::ComposeMessageRequest {
                account: "demo".into(),
                message_id: message.into(),
                article_ids: ids,
            },
            PUBLISHER_KEY,
            "chen",
        )
    };
    let message = client
        .compose_message(compose("", vec![water.clone(), power.clone()]))
        .await
        .expect("composed")
        .into_inner()
        .id;
    // WeChat takes the message [water, power], but its answer is lost.
    let waiting = lost_mass_send(&stack, &water).await;
    assert_eq!(waiting.state, pb::ArticleState::Scheduled as i32);
    assert!(waiting.send_outcome_unknown);
    // 陈 cancels the retry (allowed: the message stays as it went out) …
    client
        .cancel_schedule(by(article(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("cancelled");
    // … but can neither take it apart nor change it, nor put the headline elsewhere.
    let dissolved = client
        .dissolve_message(by(
            pb::MessageRef {
                id: message.clone(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await;
    let refused = dissolved.expect_err("dissolved a message whose send may have gone out");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("confirm_possible_duplicate")
            && refused.message().contains(&water),
        "names the article and how to settle it: {}",
        refused.message()
    );
    for ids in [
        vec![power.clone()],
        vec![water.clone(), power.clone(), roads.clone()],
    ] {
        let recomposed = client.compose_message(compose(&message, ids)).await;
        assert!(
            recomposed
                .as_ref()
                .is_err_and(|e| e.code() == Code::FailedPrecondition),
            "recomposed: {recomposed:?}"
        );
    }
    let members_before = stack.mock.state().calls_to(SENDALL).len();
    let alone = client
        .publish_article(by(publish(&power), PUBLISHER_KEY, "chen"))
        .await;
    assert!(
        alone
            .as_ref()
            .is_err_and(|e| e.code() == Code::FailedPrecondition),
        "the member went out alone: {alone:?}"
    );
    assert_eq!(stack.mock.state().calls_to(SENDALL).len(), members_before);
    // The way out: the same message sent again, confirmed; then it is settled.
    let sent = client
        .publish_article(by(confirmed(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("sent again, confirmed")
        .into_inner();
    // WeChat's minute for a repeated clientmsgid is not over (45066): the send is
    // back on the schedule and not taken, so nothing is settled yet (round 3,
    // finding 1: the confirmation alone used to clear the flag here, and a cancel
    // then let the message be dissolved).
    let waiting = detail(&stack, &water).await.article.expect("article");
    assert_eq!(
        waiting.state,
        pb::ArticleState::Scheduled as i32,
        "{waiting:?}"
    );
    assert!(waiting.send_outcome_unknown, "{waiting:?}");
    assert!(sent.send_outcome_unknown, "{sent:?}");
    client
        .cancel_schedule(by(article(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("cancelled");
    let dissolved = client
        .dissolve_message(by(
            pb::MessageRef {
                id: message.clone(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await;
    assert!(
        dissolved
            .as_ref()
            .is_err_and(|e| e.code() == Code::FailedPrecondition),
        "dissolved after a confirmed send WeChat never took: {dissolved:?}"
    );
    stack.app.stop().await;
}

// Review round 3, finding 1: confirming a send again at Schedule time cleared the
// flag there, so cancelling that schedule left the headline approved and unflagged:
// the message could be dissolved and a member sent alone, unconfirmed, to followers
// who may have had the lost send. The flag now stays until WeChat takes the
// confirmed send.
#[tokio::test]
async fn review3_a_confirmed_send_again_cancelled_before_it_goes_leaves_the_message_unsettled() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let (message, [water, power]) =
        approved_message(&stack, ["停水通知", "停电通知"], pb::Channel::MassSend).await;
    let waiting = lost_mass_send(&stack, &water).await;
    assert!(waiting.send_outcome_unknown);
    client
        .cancel_schedule(by(article(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("cancelled");
    // 陈 confirms the send again, but for an hour from now …
    let scheduled = client
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: water.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 3600,
                    nanos: 0,
                }),
                confirm_possible_duplicate: true,
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled, confirmed")
        .into_inner();
    assert_eq!(scheduled.state, pb::ArticleState::Scheduled as i32);
    // … and cancels it before it goes: nothing settled the lost send.
    let cancelled = client
        .cancel_schedule(by(article(&water), PUBLISHER_KEY, "chen"))
        .await
        .expect("cancelled")
        .into_inner();
    assert!(cancelled.send_outcome_unknown, "{cancelled:?}");
    let dissolved = client
        .dissolve_message(by(
            pb::MessageRef {
                id: message.clone(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await;
    let refused = dissolved.expect_err("dissolved a message whose send may have gone out");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // Round 3, finding 4's wording: RecordPublished refuses an approved article, so
    // the refusal does not offer it as the way out here.
    assert!(
        refused
            .message()
            .contains("publish with confirm_possible_duplicate; once failed, RecordPublished"),
        "{}",
        refused.message()
    );
    let sends = stack.mock.state().calls_to(SENDALL).len();
    let alone = client
        .publish_article(by(publish(&power), PUBLISHER_KEY, "chen"))
        .await;
    assert!(
        alone
            .as_ref()
            .is_err_and(|e| e.code() == Code::FailedPrecondition),
        "the member went out alone: {alone:?}"
    );
    assert_eq!(stack.mock.state().calls_to(SENDALL).len(), sends);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_preview_overtaken_by_a_return_keeps_no_draft_and_the_revision_goes_out() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");

    // WeChat is slow: the director's preview has its draft and is still sending it
    // to the director when 赵 returns the article.
    wechat_latency(&stack, 1500);
    let preview = preview_for_the_director(&client, &id);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while stack.mock.state().calls_to("/cgi-bin/draft/add").is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the preview's draft is made");
    client
        .return_for_revision(by(return_for(&id, "停水时间有误"), REVIEWER_KEY, "zhao"))
        .await
        .expect("returned while the preview goes out");
    preview.await.expect("joined").expect("previewed");
    wechat_latency(&stack, 0);

    // 李 fixes the title; the new version passes three reviews and goes out.
    client
        .update_article(by(
            pb::UpdateArticleRequest {
                id: id.clone(),
                content: create(
                    "停水通知（更正）",
                    "<p>本周日上午九点至十二点停水。</p>",
                    pb::Channel::Freepublish,
                )
                .content,
                version: None,
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
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("published");
    assert_eq!(next_event(&mut published).await.article_id, id);
    let titles: Vec<String> = stack
        .mock
        .state()
        .calls_to("/cgi-bin/draft/add")
        .iter()
        .map(|call| {
            call.body.as_ref().expect("body")["articles"][0]["title"]
                .as_str()
                .expect("title")
                .to_owned()
        })
        .collect();
    assert_eq!(
        titles.last().map(String::as_str),
        Some("停水通知（更正）"),
        "the revision is what WeChat publishes, not the returned version's draft: {titles:?}"
    );
    stack.app.stop().await;
}

/// The WeChat draft an approved article keeps for its send (a preview's) is of the
/// version approved: a return forgets it, and deletes it from the account's draft
/// box too (after the return's transaction), so a returned article leaves none.
#[tokio::test]
async fn a_returned_articles_kept_draft_is_deleted_from_wechat() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");
    preview_for_the_director(&client, &id)
        .await
        .expect("joined")
        .expect("previewed");
    let kept: Option<String> =
        sqlx::query_scalar("SELECT media_id FROM articles WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&stack.app.db)
            .await
            .expect("read");
    let kept = kept.expect("the preview's draft is kept for the send");

    client
        .return_for_revision(by(
            return_for(&id, "停水日期应为周日"),
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("returned");

    let deleted: Vec<String> = stack
        .mock
        .state()
        .calls_to("/cgi-bin/draft/delete")
        .iter()
        .filter_map(|call| call.body.as_ref()?["media_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        deleted,
        vec![kept],
        "the returned article's draft is deleted"
    );
    stack.app.stop().await;
}

/// The WeChat drafts deleted so far (`draft/delete`'s media ids).
fn deleted_drafts(stack: &crate::articles::Stack) -> Vec<String> {
    stack
        .mock
        .state()
        .calls_to("/cgi-bin/draft/delete")
        .iter()
        .filter_map(|call| call.body.as_ref()?["media_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_returned_article_whose_send_may_have_gone_out_keeps_its_wechat_draft() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    // A free publication WeChat took but whose answer was lost: it may be live,
    // made of that draft.
    let published = stack.approved("停水通知", pb::Channel::Freepublish).await;
    crate::helpers::lost_free_publication(&stack, &published).await;
    // A mass send WeChat took but whose answer was lost: its job awaits a verdict.
    let sent = stack.approved("停电通知", pb::Channel::MassSend).await;
    let waiting = lost_mass_send(&stack, &sent).await;
    assert!(waiting.send_outcome_unknown);
    for id in [&published, &sent] {
        let kept: Option<String> =
            sqlx::query_scalar("SELECT media_id FROM articles WHERE id = $1::uuid")
                .bind(id)
                .fetch_one(&stack.app.db)
                .await
                .expect("read");
        assert!(kept.is_some(), "{id} keeps the draft its send was made of");
        client
            .return_for_revision(by(return_for(id, "日期有误"), REVIEWER_KEY, "zhao"))
            .await
            .expect("returned");
        let trail = detail(&stack, id).await.audit;
        let returned = trail.last().expect("a trail");
        let kept = kept.unwrap();
        assert_eq!(
            returned.comment,
            format!(
                "日期有误 (WeChat draft {kept} kept: its send's outcome is unknown; delete it once settled)"
            ),
            "the trail names the draft the article no longer holds"
        );
    }
    assert_eq!(
        deleted_drafts(&stack),
        Vec::<String>::new(),
        "a draft a send of unknown outcome was made of is deleted"
    );
    stack.app.stop().await;
}
