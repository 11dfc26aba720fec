//! A send the stuck-send sweep gave up, still under way when it wakes: each send of
//! an article carries its own token (bumped by the scheduler's claim and by
//! PublishArticle), so one the publisher has published again since neither keeps
//! its draft nor hands it to WeChat, and one that finds it never handed anything
//! over clears the sweep's "outcome unknown" mark and deletes the draft it made.
//!
//! The stalled send is a replica's scheduled send held up by the test: it holds the
//! account's per-minute ledger lock for `draft/add`, which the send takes just
//! before WeChat's `draft/add` (as a WeChat slow to answer would hold it there).

use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{Stack, publish, spawn_stack_with};
use crate::helpers::{PUBLISHER_KEY, SUBMIT, approved_message, by, confirmed, detail};
use crate::lock_order::{pid, until_waiting};
use crate::scheduler::replica;

const DRAFT_ADD: &str = "/cgi-bin/draft/add";
const DRAFT_DELETE: &str = "/cgi-bin/draft/delete";

/// The stack with its own scheduler idle (first tick an hour after start): the
/// test's replica claims, and the test runs the sweep.
async fn stack_with_idle_scheduler() -> Stack {
    spawn_stack_with(AccountKind::Service, true, &[("SCHEDULER_INTERVAL", "1h")]).await
}

/// 陈 schedules the approved free publication `id` for now.
async fn scheduled_now(stack: &Stack, id: &str) {
    let now = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp(),
        nanos: 0,
    };
    stack
        .app
        .client
        .clone()
        .schedule_article(by(
            pb::ScheduleArticleRequest {
                id: id.into(),
                at: Some(now),
                ..Default::default()
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("scheduled");
}

/// A replica claims `id` and begins its send, which stalls before WeChat's
/// `draft/add` while the returned transaction is open; then, an hour later as far
/// as the article's row says, the stuck-send sweep fails it as of unknown outcome.
async fn send_stalled_then_swept(
    stack: &Stack,
    id: &str,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    i32,
    tokio::task::JoinHandle<Result<usize, content_svc::app::AppError>>,
) {
    send_stalled_at_then_swept(stack, id, "draft/add").await
}

/// As [`send_stalled_then_swept`], the send held at the ledger lock of `api`
/// (`freepublish/submit`: after it kept its draft and found itself still under way,
/// just before WeChat's submit).
async fn send_stalled_at_then_swept(
    stack: &Stack,
    id: &str,
    api: &str,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    i32,
    tokio::task::JoinHandle<Result<usize, content_svc::app::AppError>>,
) {
    let db = &stack.app.db;
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:' || $1))")
        .bind(api)
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
    let holder = pid(&mut held).await;
    let stalled = replica(db, &stack.mock);
    let send = tokio::spawn(async move { stalled.send_due(10).await });
    until_waiting(db, holder, 1).await;

    sqlx::query("UPDATE articles SET updated_at = now() - interval '1 hour' WHERE id = $1::uuid")
        .bind(id)
        .execute(db)
        .await
        .expect("an hour passes");
    let swept = replica(db, &stack.mock)
        .fail_unknown_sends(std::time::Duration::from_secs(15 * 60), 10)
        .await
        .expect("swept");
    assert_eq!(swept, 1, "the stalled send is given up");
    let (state, unknown) = state_and_mark(stack, id).await;
    assert_eq!((state.as_str(), unknown), ("failed", true));
    (held, holder, send)
}

async fn state_and_mark(stack: &Stack, id: &str) -> (String, bool) {
    sqlx::query_as("SELECT state, send_outcome_unknown FROM articles WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read")
}

#[tokio::test]
async fn a_send_given_up_by_the_stuck_sweep_does_not_submit_after_the_publisher_publishes_again() {
    let stack = stack_with_idle_scheduler().await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    scheduled_now(&stack, &id).await;
    let (held, holder, stalled) = send_stalled_then_swept(&stack, &id).await;

    // 陈 checked the account's published list, found nothing, and publishes again;
    // that send too waits for the ledger behind the stalled one.
    let mut client = stack.app.client.clone();
    let again = confirmed(&id);
    let published = tokio::spawn(async move {
        client
            .publish_article(by(again, PUBLISHER_KEY, "chen"))
            .await
    });
    until_waiting(&stack.app.db, holder, 2).await;
    // WeChat answers again: the stalled send wakes after the publish again.
    held.commit().await.expect("let go");
    stalled
        .await
        .expect("joined")
        .expect("the stalled send ends");
    published.await.expect("joined").expect("published again");

    let calls = stack.mock.state();
    assert_eq!(
        calls.calls_to(SUBMIT).len(),
        1,
        "the article is submitted once, by the publish again"
    );
    assert_eq!(
        calls.calls_to(DRAFT_ADD).len(),
        2,
        "each send made its draft"
    );
    // The stalled send's draft, which no article keeps, is not left in the draft box.
    let deleted = calls.calls_to(DRAFT_DELETE);
    assert_eq!(deleted.len(), 1, "the given-up send's draft is deleted");
    let kept: Option<String> =
        sqlx::query_scalar("SELECT media_id FROM articles WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&stack.app.db)
            .await
            .expect("read");
    let deleted_id = deleted[0].body.as_ref().expect("body")["media_id"].clone();
    assert_ne!(
        deleted_id.as_str(),
        kept.as_deref(),
        "the draft the publish again sent is kept"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_send_given_up_by_the_stuck_sweep_that_never_reached_wechat_clears_its_mark_and_deletes_its_draft()
 {
    let stack = stack_with_idle_scheduler().await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    scheduled_now(&stack, &id).await;
    let (held, _, stalled) = send_stalled_then_swept(&stack, &id).await;

    // WeChat answers again: the send makes its draft, finds the article failed.
    held.commit().await.expect("let go");
    stalled
        .await
        .expect("joined")
        .expect("the stalled send ends");

    let calls = stack.mock.state();
    assert!(calls.calls_to(SUBMIT).is_empty(), "nothing was submitted");
    assert_eq!(
        calls.calls_to(DRAFT_DELETE).len(),
        1,
        "the draft no article keeps is deleted"
    );
    let (state, unknown) = state_and_mark(&stack, &id).await;
    assert_eq!(
        (state.as_str(), unknown),
        ("failed", false),
        "the send never reached WeChat: its outcome is known"
    );
    let trail = detail(&stack, &id).await.audit;
    assert!(
        trail.iter().any(|row| row.action == "send_not_made"),
        "the trail says why: {trail:?}"
    );
    // So 陈 publishes it again without confirming a possible duplicate.
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("published again without a confirmation");
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_send_given_up_by_the_stuck_sweep_while_waiting_to_submit_does_not_submit_after_a_publish_again()
 {
    let stack = stack_with_idle_scheduler().await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    scheduled_now(&stack, &id).await;
    // The stalled send has made and kept its draft and found itself still under way:
    // it waits for the per-minute slot of freepublish/submit.
    let (held, holder, stalled) =
        send_stalled_at_then_swept(&stack, &id, "freepublish/submit").await;
    assert_eq!(stack.mock.state().calls_to(DRAFT_ADD).len(), 1);

    // 陈 publishes again; that send waits for the same slot behind the stalled one.
    let mut client = stack.app.client.clone();
    let again = confirmed(&id);
    let published = tokio::spawn(async move {
        client
            .publish_article(by(again, PUBLISHER_KEY, "chen"))
            .await
    });
    until_waiting(&stack.app.db, holder, 2).await;
    held.commit().await.expect("let go");
    stalled
        .await
        .expect("joined")
        .expect("the stalled send ends");
    published.await.expect("joined").expect("published again");

    let calls = stack.mock.state();
    assert_eq!(
        calls.calls_to(SUBMIT).len(),
        1,
        "the article is submitted once, by the publish again"
    );
    stack.app.stop().await;
}

#[tokio::test]
async fn a_scheduled_message_given_up_while_waiting_for_the_mass_send_ledger_moves_no_member_and_can_be_published_again()
 {
    let stack = stack_with_idle_scheduler().await;
    let (_, [head, member]) =
        approved_message(&stack, ["停水通知", "恢复供水时间"], pb::Channel::MassSend).await;
    scheduled_now(&stack, &head).await;

    // The replica's send stalls at the account's mass-send ledger (its quota check),
    // and the stuck-send sweep gives the headline up meanwhile.
    let db = &stack.app.db;
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-mass-ledger:demo'))")
        .execute(&mut *held)
        .await
        .expect("mass-send ledger held");
    let holder = pid(&mut held).await;
    let stalled = replica(db, &stack.mock);
    let send = tokio::spawn(async move { stalled.send_due(10).await });
    until_waiting(db, holder, 1).await;
    sqlx::query("UPDATE articles SET updated_at = now() - interval '1 hour' WHERE id = $1::uuid")
        .bind(&head)
        .execute(db)
        .await
        .expect("an hour passes");
    let swept = replica(db, &stack.mock)
        .fail_unknown_sends(std::time::Duration::from_secs(15 * 60), 10)
        .await
        .expect("swept");
    assert_eq!(swept, 1, "the stalled send is given up");
    assert_eq!(state_and_mark(&stack, &head).await.0, "failed");

    // The ledger is free again: the stalled send wakes for an article that left it.
    held.commit().await.expect("let go");
    send.await.expect("joined").expect("the stalled send ends");

    let (member_state, _) = state_and_mark(&stack, &member).await;
    assert_ne!(
        member_state, "publishing",
        "the member does not follow a headline the send no longer holds"
    );
    // 陈 publishes the message again.
    stack
        .app
        .client
        .clone()
        .publish_article(by(confirmed(&head), PUBLISHER_KEY, "chen"))
        .await
        .expect("the headline is published again");
    stack.app.stop().await;
}

/// A stale send's failure, landing after its article left it, is not recorded over
/// the next send: `fail_send` checks the send's token under the article's lock. The
/// stalled send hands the article to WeChat (its ledger check passes), WeChat's
/// answer is lost, and while it records that, the sweep and a publish again have
/// landed: the test's transaction bumps the token (`begin_send`'s write, the
/// article `publishing` again) and commits once the stalled send waits for the row.
#[tokio::test]
async fn a_stale_sends_lost_submit_answer_does_not_fail_the_next_send() {
    let stack = stack_with_idle_scheduler().await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    scheduled_now(&stack, &id).await;
    let db = &stack.app.db;
    let mut held = db.begin().await.expect("begin");
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:freepublish/submit'))",
    )
    .execute(&mut *held)
    .await
    .expect("ledger lock held");
    let holder = pid(&mut held).await;
    let stalled = replica(db, &stack.mock);
    let send = tokio::spawn(async move { stalled.send_due(10).await });
    until_waiting(db, holder, 1).await;
    stack.wechat_loses_answer(SUBMIT);

    // The next send begins meanwhile, not yet committed when the stalled send's
    // ledger check reads the row.
    let mut next = db.begin().await.expect("begin");
    sqlx::query("UPDATE articles SET send_token = send_token + 1 WHERE id = $1::uuid")
        .bind(&id)
        .execute(&mut *next)
        .await
        .expect("next send begun");
    let next_pid = pid(&mut next).await;
    held.commit().await.expect("let go");
    until_waiting(db, next_pid, 1).await;
    next.commit().await.expect("next send committed");
    send.await.expect("joined").expect("the stalled send ends");

    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
    let (state, unknown) = state_and_mark(&stack, &id).await;
    assert_eq!(
        (state.as_str(), unknown),
        ("publishing", false),
        "the next send's article is neither failed nor marked by the stale send"
    );
    stack.app.stop().await;
}

/// An article read without its `send_token` column (a query missing it, a schema
/// without migration 0035) is an error, not a token 0 every send would share.
#[tokio::test]
async fn an_article_read_without_its_send_token_is_an_error() {
    let stack = stack_with_idle_scheduler().await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let read = sqlx::query_as::<_, content_svc::store::articles::ArticleRow>(
        "SELECT id, account, department, author_id, state, version, round, title, author_name,
                digest, body, cover_media_id, source_url, column_name, open_comment,
                only_fans_can_comment, channel, mass_tag_id, send_ignore_reprint, scheduled_for,
                attempts, media_id, publish_id, mass_msg_id, msg_data_id, url, failure,
                published_at, updated_at, created_at, correction_of, cover_image_id, message_id,
                message_position, send_generation, send_outcome_unknown, sent_position,
                sent_version
           FROM articles WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&stack.app.db)
    .await;
    match read {
        Err(sqlx::Error::ColumnNotFound(column)) => assert_eq!(column, "send_token"),
        other => panic!("read without send_token: {other:?}"),
    }
    stack.app.stop().await;
}
