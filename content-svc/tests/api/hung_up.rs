//! A caller that hangs up while its call is sending to WeChat (govwx's `--timeout`, a
//! proxy's idle timeout, Ctrl-C): tonic drops a cancelled call's future, so a send
//! cut there left the article `publishing` until the stuck-send sweep failed it as of
//! unknown outcome. The calls that send run on their own task and finish.

use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{next_event, publish, spawn_stack_with};
use crate::helpers::{
    COUNTY_MEDIA_PUBLISHER_KEY, PUBLISHER_KEY, SUBMIT, by, preview_for_the_director,
};
use crate::lock_order::{pid, until_waiting};

#[tokio::test]
async fn a_publish_whose_caller_hangs_up_still_goes_out() {
    let stack = spawn_stack_with(AccountKind::Service, true, &[("SCHEDULER_INTERVAL", "1h")]).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let db = &stack.app.db;
    let mut published = stack.watch("published").await;

    // WeChat slow to take the draft: the send waits at the per-minute ledger's lock
    // for `draft/add`, which it takes just before the call.
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:draft/add'))")
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
    let holder = pid(&mut held).await;
    let mut client = stack.app.client.clone();
    let request = by(publish(&id), PUBLISHER_KEY, "chen");
    let call = tokio::spawn(async move { client.publish_article(request).await });
    until_waiting(db, holder, 1).await;

    // The publisher gives up waiting: the call's stream is reset.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    held.commit().await.expect("WeChat answers");

    let event = next_event(&mut published).await;
    assert_eq!(
        event.article_id, id,
        "the send the caller hung up on went out"
    );
    assert_eq!(stack.mock.state().calls_to(SUBMIT).len(), 1);
}

/// A script repeating `PreviewArticle` with a short timeout while WeChat (or the
/// per-minute ledger) is slow: each call its caller hung up on is finished on a task
/// of its own, holding a pool connection, and each finished preview reaches real
/// followers. A second identical call while one is still under way is refused at
/// once instead of piling up another.
#[tokio::test]
async fn a_preview_repeated_while_the_first_is_still_being_sent_is_refused() {
    let stack = spawn_stack_with(AccountKind::Service, true, &[("SCHEDULER_INTERVAL", "1h")]).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let db = &stack.app.db;
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:draft/add'))")
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
    let holder = pid(&mut held).await;
    let first = preview_for_the_director(&stack.app.client, &id);
    until_waiting(db, holder, 1).await;
    // The script's timeout: the caller hangs up, the preview goes on.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    let mut again = preview_for_the_director(&stack.app.client, &id);
    let refused = tokio::select! {
        answer = &mut again => answer.expect("joined").expect_err("refused while the first is under way"),
        () = until_waiting(db, holder, 2) => panic!("the second preview queued behind the first"),
    };
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");
    assert!(
        refused.message().contains("still being sent"),
        "{refused:?}"
    );
    held.commit().await.expect("WeChat answers");
    stack.app.stop().await;
}

/// Keys of one department name on different accounts (`media` on every account and
/// `media@yizhang`) are different callers: the county's key asking for the city's
/// article while the city's preview of it is under way gets NOT_FOUND, as for any
/// article it cannot see. An ABORTED would tell it the article exists and what is
/// being done to it.
#[tokio::test]
async fn another_accounts_key_of_the_same_department_learns_nothing_of_a_call_under_way() {
    let stack = spawn_stack_with(AccountKind::Service, true, &[("SCHEDULER_INTERVAL", "1h")]).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    let db = &stack.app.db;
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:draft/add'))")
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
    let holder = pid(&mut held).await;
    let first = preview_for_the_director(&stack.app.client, &id);
    until_waiting(db, holder, 1).await;

    let mut county = stack.app.client.clone();
    let refused = county
        .preview_article(by(
            pb::PreviewArticleRequest {
                id: id.clone(),
                openids: vec!["o-director".into()],
            },
            COUNTY_MEDIA_PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect_err("the county's key does not see the city's article");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    held.commit().await.expect("WeChat answers");
    // Its outcome is not this test's (the stack knows no follower o-director).
    let _ = first.await.expect("joined");
    stack.app.stop().await;
}
