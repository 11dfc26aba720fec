//! A mass send WeChat ends in failure, as the mock WeChat plays it
//! (`end_next_mass_send_with`): told by its `MASSSENDJOBFINISH` (`send fail`, a review's
//! `err(n)`), the article fails with WeChat's reason and may be sent again (unless the
//! `send fail` counts followers reached: then its outcome is unknown); told only by
//! the reconciliation's `message/mass/get` (`SEND_FAIL`, which counts nobody), it fails
//! as a send whose outcome is unknown, the flag kept for a publisher to confirm.

use std::time::Duration;

use proto::content::v1 as pb;
use wechat_sim::api_server::MassJobEnd;
use wechat_sim::api_server::{AccountKind, DEMO_APPID, FaultRequest};

use crate::articles::{Stack, next_event, publish, spawn_stack_with};
use crate::helpers::{PUBLISHER_KEY, by, column, detail};

const SENDALL: &str = "/cgi-bin/message/mass/sendall";
const MASS_GET: &str = "/cgi-bin/message/mass/get";

/// The stack with seven followers on the demo account; `callbacks`: WeChat's
/// job-finish callbacks come (otherwise each is lost, and WeChat is asked after a
/// second).
async fn stack_with_followers(callbacks: bool) -> Stack {
    let extra: &[(&str, &str)] = if callbacks {
        &[]
    } else {
        &[("PUBLISH_RECONCILE_AFTER", "1s")]
    };
    let stack = spawn_stack_with(AccountKind::Service, callbacks, extra).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, (1..=7).map(|n| format!("citizen-{n}")))
        .expect("followers seeded");
    stack
}

/// The errcode WeChat answered each mass send with, and the `clientmsgid` each was
/// sent under.
fn sends(stack: &Stack) -> Vec<(i64, String)> {
    stack
        .mock
        .state()
        .calls_to(SENDALL)
        .iter()
        .map(|call| {
            let key = call.body.as_ref().expect("body")["clientmsgid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (call.errcode, key)
        })
        .collect()
}

/// Publishes `id` now, unconfirmed.
async fn publish_now(stack: &Stack, id: &str) -> Result<(), tonic::Status> {
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(id), PUBLISHER_KEY, "chen"))
        .await
        .map(drop)
}

/// A mass send WeChat ends as `end` says (its MASSSENDJOBFINISH through the gateway):
/// the article fails with `reason`, nobody got it, and a send again needs no
/// confirmation: it goes out under a new `clientmsgid` and is published.
async fn a_mass_send_wechat_fails_can_be_sent_again_unconfirmed(end: MassJobEnd, reason: &str) {
    let stack = stack_with_followers(true).await;
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    stack.mock.state().end_next_mass_send_with(end);
    let mut failed = stack.watch("failed").await;
    publish_now(&stack, &id).await.expect("handed to wechat");

    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    assert_eq!(event.reason, reason);
    let article = detail(&stack, &id).await;
    let row = article.article.expect("article");
    assert_eq!(row.state, pb::ArticleState::Failed as i32);
    assert_eq!(row.failure, reason);
    assert!(row.url.is_empty(), "not published: {}", row.url);
    assert!(!row.send_outcome_unknown, "WeChat counted nobody reached");
    let last = article.audit.last().expect("audit");
    assert_eq!(last.to_state, pb::ArticleState::Failed as i32);
    assert_eq!(last.comment, reason);

    // Sent again by the publisher, unconfirmed: WeChat takes it under a new key (under
    // the failed send's it would answer 45066, then 45065 naming the failed job).
    let mut published = stack.watch("published").await;
    publish_now(&stack, &id)
        .await
        .expect("sent again without confirming a possible duplicate");
    assert_eq!(next_event(&mut published).await.article_id, id);
    let sends = sends(&stack);
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!((sends[0].0, sends[1].0), (0, 0), "{sends:?}");
    assert_ne!(sends[0].1, sends[1].1, "a new clientmsgid");
    let row = detail(&stack, &id).await.article.expect("article");
    assert_eq!(row.state, pb::ArticleState::Published as i32);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_mass_send_wechat_ends_with_send_fail_fails_with_wechats_reason_and_can_be_sent_again() {
    a_mass_send_wechat_fails_can_be_sent_again_unconfirmed(
        MassJobEnd::send_fail(),
        "mass send status \"send fail\" (sent 0, errors 7)",
    )
    .await;
}

#[tokio::test]
async fn a_mass_send_wechats_review_refuses_fails_with_its_code_and_can_be_sent_again() {
    a_mass_send_wechat_fails_can_be_sent_again_unconfirmed(
        MassJobEnd::refused(20013),
        "mass send status \"err(20013)\" (sent 0, errors 0)",
    )
    .await;
}

/// Waits until article `id` is in `state`.
async fn reaches(stack: &Stack, id: &str, state: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while column(stack, id, "state").await.as_deref() != Some(state) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("article reaches {state}"));
}

/// What a publisher is told of a mass send failed by `message/mass/get`'s SEND_FAIL.
fn assert_failed_by_mass_get_as_of_unknown_outcome(row: &pb::Article) {
    assert_eq!(row.state, pb::ArticleState::Failed as i32);
    assert!(row.url.is_empty(), "not published: {}", row.url);
    assert!(
        row.failure.starts_with(
            "mass send status SEND_FAIL (message/mass/get: its MASSSENDJOBFINISH never \
             came, and mass/get does not count the followers it reached)"
        ),
        "{}",
        row.failure
    );
    assert!(
        row.failure.contains("confirming a possible duplicate"),
        "says how to settle it: {}",
        row.failure
    );
    assert!(
        row.send_outcome_unknown,
        "mass/get counts nobody: some followers may have it"
    );
}

// e210a3c: `message/mass/get`'s SEND_FAIL counts nobody reached, so unlike a
// MASSSENDJOBFINISH's `send fail` it does not clear the possible-duplicate flag: the
// key moves on, but a send again needs the publisher's confirmation.
#[tokio::test]
async fn a_lost_mass_send_whose_job_mass_get_says_send_fail_keeps_the_possible_duplicate_flag() {
    let stack = stack_with_followers(false).await;
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    stack
        .mock
        .state()
        .end_next_mass_send_with(MassJobEnd::send_fail());
    // WeChat takes the send, but its answer is lost: the send's outcome is unknown.
    stack.wechat_loses_answer(SENDALL);
    publish_now(&stack, &id)
        .await
        .expect("accepted; the send is retried");
    let generation = column(&stack, &id, "send_generation").await;
    assert_eq!(
        column(&stack, &id, "send_outcome_unknown").await.as_deref(),
        Some("true"),
        "WeChat may have it"
    );
    // The retry, after WeChat's minute, meets 45065 naming the job taken: the article
    // waits in publishing for that job's verdict, whose callback is lost.
    stack
        .mock
        .state()
        .inject(&FaultRequest {
            age_client_msg_ids_secs: Some(60),
            ..Default::default()
        })
        .expect("sim aged");
    let mut failed = stack.watch("failed").await;
    sqlx::query("UPDATE articles SET next_attempt_at = now() WHERE id = $1::uuid")
        .bind(&id)
        .execute(&stack.app.db)
        .await
        .expect("retry due");

    // The reconciliation asks WeChat: SEND_FAIL.
    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    let errcodes: Vec<i64> = sends(&stack).iter().map(|(errcode, _)| *errcode).collect();
    assert_eq!(errcodes, [0, 45065]);
    assert!(!stack.mock.state().calls_to(MASS_GET).is_empty());
    let row = detail(&stack, &id).await.article.expect("article");
    assert_failed_by_mass_get_as_of_unknown_outcome(&row);
    assert_eq!(event.reason, row.failure);
    assert_ne!(
        column(&stack, &id, "send_generation").await,
        generation,
        "WeChat failed the job: its clientmsgid is spent"
    );

    // Unconfirmed, it is not sent again; confirmed, it goes out under the new key.
    let again = publish_now(&stack, &id).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.code() == tonic::Code::FailedPrecondition),
        "sent again unconfirmed: {again:?}"
    );
    assert_eq!(sends(&stack).len(), 2, "nothing sent");
    stack
        .app
        .client
        .clone()
        .publish_article(by(
            pb::PublishArticleRequest {
                confirm_possible_duplicate: true,
                ..publish(&id)
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("sent again, confirmed");
    let sends = sends(&stack);
    assert_eq!(sends.len(), 3, "{sends:?}");
    assert_eq!(sends[2].0, 0, "taken by WeChat, not 45065: {sends:?}");
    assert_ne!(sends[2].1, sends[0].1, "a new clientmsgid");
    stack.app.stop().await;
}

// e210a3c, the same answer for a send whose outcome was known until then (only its
// callback lost): SEND_FAIL says nothing of who got it, so the article is failed
// flagged, not as a send that reached nobody.
#[tokio::test]
async fn a_mass_send_whose_callback_was_lost_and_mass_get_says_send_fail_fails_flagged() {
    let stack = stack_with_followers(false).await;
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    stack
        .mock
        .state()
        .end_next_mass_send_with(MassJobEnd::send_fail_reaching(3));
    publish_now(&stack, &id).await.expect("handed to wechat");
    assert_eq!(
        column(&stack, &id, "send_outcome_unknown").await.as_deref(),
        Some("false"),
        "WeChat took it"
    );
    reaches(&stack, &id, "failed").await;
    let row = detail(&stack, &id).await.article.expect("article");
    assert_failed_by_mass_get_as_of_unknown_outcome(&row);
    let again = publish_now(&stack, &id).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.code() == tonic::Code::FailedPrecondition),
        "sent again unconfirmed: {again:?}"
    );
    stack.app.stop().await;
}

// e28cb3d, through the mock's callback: a `send fail` counting followers it reached
// is of unknown outcome, its key kept, so a send again cannot push it twice unconfirmed.
#[tokio::test]
async fn a_send_fail_counting_followers_reached_fails_flagged_and_keeps_its_key() {
    let stack = stack_with_followers(true).await;
    let id = stack.approved("停水通知", pb::Channel::MassSend).await;
    stack
        .mock
        .state()
        .end_next_mass_send_with(MassJobEnd::send_fail_reaching(3));
    let mut failed = stack.watch("failed").await;
    publish_now(&stack, &id).await.expect("handed to wechat");
    let generation = column(&stack, &id, "send_generation").await;

    let event = next_event(&mut failed).await;
    assert_eq!(event.article_id, id);
    let row = detail(&stack, &id).await.article.expect("article");
    assert_eq!(row.state, pb::ArticleState::Failed as i32);
    assert!(
        row.failure.starts_with(
            "mass send status \"send fail\" (sent 3, errors 4): WeChat says the send failed \
             but counts followers it reached"
        ),
        "{}",
        row.failure
    );
    assert!(row.send_outcome_unknown, "three followers have it");
    assert_eq!(column(&stack, &id, "send_generation").await, generation);
    let again = publish_now(&stack, &id).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.code() == tonic::Code::FailedPrecondition),
        "sent again unconfirmed: {again:?}"
    );
    assert_eq!(sends(&stack).len(), 1, "nothing sent again");
    stack.app.stop().await;
}
