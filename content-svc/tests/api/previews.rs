//! Previews (`PreviewArticle`) to several followers: one that stops part-way says
//! who got it and who did not, previews of one article to different people run side
//! by side, and the draft a preview makes is kept or deleted, never left behind.

use proto::content::v1 as pb;
use tonic::Code;
use wechat_sim::api_server::{AccountKind, DEMO_APPID};

use crate::articles::{Stack, spawn_stack};
use crate::helpers::{PUBLISHER_KEY, REVIEWER_KEY, by, return_for};
use crate::lock_order::{pid, until_waiting};

const PREVIEW: &str = "/cgi-bin/message/mass/preview";

fn preview(id: &str, openids: &[&str]) -> tonic::Request<pb::PreviewArticleRequest> {
    preview_by(id, openids, "chen")
}

/// A publisher's preview of `id` to `openids`.
fn preview_by(
    id: &str,
    openids: &[&str],
    person: &str,
) -> tonic::Request<pb::PreviewArticleRequest> {
    by(
        pb::PreviewArticleRequest {
            id: id.to_owned(),
            openids: openids.iter().map(|o| (*o).to_owned()).collect(),
        },
        PUBLISHER_KEY,
        person,
    )
}

/// The openids WeChat took a preview for (answered `errcode` 0), in order.
fn previewed_to(stack: &Stack) -> Vec<String> {
    stack
        .mock
        .state()
        .calls_to(PREVIEW)
        .iter()
        .filter(|call| call.errcode == 0)
        .filter_map(|call| call.body.as_ref()?["touser"].as_str().map(str::to_owned))
        .collect()
}

/// The second of three openids is no follower (WeChat: 40003): the first has the
/// preview on their phone, so the answer names who got it and who did not, and
/// the rest previewed alone reaches only them.
#[tokio::test]
async fn a_preview_refused_for_the_second_of_three_says_who_got_it_and_who_did_not() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy"])
        .expect("followers");

    let refused = client
        .preview_article(preview(&id, &["o-director", "o-typo", "o-deputy"]))
        .await
        .expect_err("o-typo is no follower");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("sent to the first 1 of 3 openids (o-director)")
            && message.contains("not to the other 2 (o-typo, o-deputy)")
            && message.contains("40003"),
        "{message}"
    );
    assert!(!message.contains("try again"), "{message}");
    assert_eq!(previewed_to(&stack), ["o-director"]);

    // The draft is kept, and the rest previewed alone: nobody gets it twice.
    client
        .preview_article(preview(&id, &["o-deputy"]))
        .await
        .expect("previewed to the rest");
    assert_eq!(previewed_to(&stack), ["o-director", "o-deputy"]);
    assert_eq!(
        stack.mock.state().calls_to("/cgi-bin/draft/add").len(),
        1,
        "the draft of the first preview is reused"
    );
    stack.app.stop().await;
}

/// The per-minute limit reached at the second of three: not "try again later"
/// with the same list (RESOURCE_EXHAUSTED), which would preview the first twice.
#[tokio::test]
async fn a_preview_stopped_by_the_per_minute_limit_part_way_names_who_is_still_to_get_it() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy", "o-clerk"])
        .expect("followers");
    // 59 previews this minute already: one more is allowed.
    sqlx::query(
        "INSERT INTO api_call_ledger (account, api, called_at)
         SELECT 'demo', 'message/mass/preview', now() FROM generate_series(1, 59)",
    )
    .execute(&stack.app.db)
    .await
    .expect("ledger filled");

    let refused = client
        .preview_article(preview(&id, &["o-director", "o-deputy", "o-clerk"]))
        .await
        .expect_err("the 61st call of the minute is not made");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("sent to the first 1 of 3 openids (o-director)")
            && message.contains("not to the other 2 (o-deputy, o-clerk)")
            && message.contains("60 message/mass/preview calls a minute"),
        "{message}"
    );
    assert_eq!(previewed_to(&stack), ["o-director"]);
    stack.app.stop().await;
}

/// Holds the per-minute ledger's lock of `api` on the demo account (a slow WeChat
/// or ledger: every call of it waits), returning the holder and its backend pid.
async fn hold_ledger(
    stack: &Stack,
    api: &str,
) -> (sqlx::Transaction<'static, sqlx::Postgres>, i32) {
    let mut held = stack.app.db.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('content-api-calls:demo:' || $1))")
        .bind(api)
        .execute(&mut *held)
        .await
        .expect("ledger lock held");
    let holder = pid(&mut held).await;
    (held, holder)
}

type Answer =
    tokio::task::JoinHandle<Result<tonic::Response<pb::PreviewArticleResponse>, tonic::Status>>;

/// Publisher `person`'s preview of `id` to `openids`, in a task.
fn preview_in_background(stack: &Stack, person: &str, id: &str, openids: &[&str]) -> Answer {
    let mut client = stack.app.client.clone();
    let request = preview_by(id, openids, person);
    tokio::spawn(async move { client.preview_article(request).await })
}

/// 陈 previews an article to the director, and while WeChat is slow, to the deputy:
/// another preview (other people), not a repeat of the first to refuse as ABORTED.
#[tokio::test]
async fn previews_of_one_article_to_different_people_at_once_both_go_out() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy"])
        .expect("followers");
    let db = &stack.app.db;
    let (held, holder) = hold_ledger(&stack, "draft/add").await;
    let first = preview_in_background(&stack, "chen", &id, &["o-director"]);
    until_waiting(db, holder, 1).await;

    let mut second = preview_in_background(&stack, "chen", &id, &["o-deputy"]);
    tokio::select! {
        answer = &mut second => panic!("the preview to the deputy did not wait its turn: {answer:?}"),
        () = until_waiting(db, holder, 2) => {}
    }
    held.commit().await.expect("WeChat answers");
    first
        .await
        .expect("joined")
        .expect("previewed to the director");
    second
        .await
        .expect("joined")
        .expect("previewed to the deputy");
    let mut reached = previewed_to(&stack);
    reached.sort();
    assert_eq!(reached, ["o-deputy", "o-director"]);
    stack.app.stop().await;
}

/// The media id of the draft the article keeps for its send, if any.
async fn kept_draft(stack: &Stack, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT media_id FROM articles WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read")
}

/// An article returned for revision while its preview's draft was being made: the
/// returned version is not previewed (the answer says so), and the draft made for
/// it, which no article keeps, is deleted from WeChat's draft box.
#[tokio::test]
async fn a_preview_overtaken_by_a_return_sends_nothing_and_leaves_no_draft_in_wechat() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director"])
        .expect("follower");
    let db = &stack.app.db;
    let (held, holder) = hold_ledger(&stack, "draft/add").await;
    let previewing = preview_in_background(&stack, "chen", &id, &["o-director"]);
    until_waiting(db, holder, 1).await;
    client
        .return_for_revision(by(
            return_for(&id, "停水日期应为周日"),
            REVIEWER_KEY,
            "zhao",
        ))
        .await
        .expect("returned while the preview waits for WeChat");
    held.commit().await.expect("WeChat answers");

    let refused = previewing
        .await
        .expect("joined")
        .expect_err("the returned version is not previewed");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("nothing was sent"),
        "{refused:?}"
    );
    assert!(
        previewed_to(&stack).is_empty(),
        "{:?}",
        previewed_to(&stack)
    );
    assert_eq!(
        stack.mock.state().calls_to("/cgi-bin/draft/add").len(),
        1,
        "the preview made its draft"
    );
    assert_eq!(
        stack.mock.state().drafts(DEMO_APPID),
        Vec::<String>::new(),
        "the preview's draft is not left in WeChat's draft box"
    );
    assert_eq!(kept_draft(&stack, &id).await, None);
    stack.app.stop().await;
}

/// Two publishers preview one article at once, each making a draft: the article
/// keeps one for its send, and the other is deleted from WeChat's draft box (it
/// was overwritten and left there).
#[tokio::test]
async fn of_two_previews_at_once_one_draft_is_kept_and_the_other_deleted() {
    let stack = spawn_stack(AccountKind::Service).await;
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy"])
        .expect("followers");
    let db = &stack.app.db;
    let (held, holder) = hold_ledger(&stack, "draft/add").await;
    let chen = preview_in_background(&stack, "chen", &id, &["o-director"]);
    let zhang = preview_in_background(&stack, "zhang", &id, &["o-deputy"]);
    until_waiting(db, holder, 2).await;
    held.commit().await.expect("WeChat answers");
    chen.await.expect("joined").expect("chen's preview");
    zhang.await.expect("joined").expect("zhang's preview");

    assert_eq!(stack.mock.state().calls_to("/cgi-bin/draft/add").len(), 2);
    let kept = kept_draft(&stack, &id).await.expect("a draft is kept");
    // Each preview points at the kept draft: the loser of the two deleted its own
    // draft before previewing, not after (a preview of a deleted draft is broken).
    let previewed: Vec<String> = stack
        .mock
        .state()
        .calls_to(PREVIEW)
        .iter()
        .filter(|call| call.errcode == 0)
        .filter_map(|call| {
            call.body.as_ref()?["mpnews"]["media_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        previewed,
        vec![kept.clone(), kept.clone()],
        "both previews show the draft the article keeps"
    );
    assert_eq!(
        stack.mock.state().drafts(DEMO_APPID),
        vec![kept],
        "only the kept draft is in WeChat's draft box"
    );
    stack.app.stop().await;
}

/// An openid given twice would be sent the preview twice (the openids are previewed
/// one after the other as given): the request is refused, naming it, and nobody is
/// sent anything.
#[tokio::test]
async fn a_preview_naming_a_follower_twice_is_refused_naming_them_and_sends_nothing() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy"])
        .expect("followers");

    let refused = client
        .preview_article(preview(&id, &["o-director", "o-deputy", "o-director"]))
        .await
        .expect_err("o-director is named twice");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("o-director") && !refused.message().contains("o-deputy"),
        "{}",
        refused.message()
    );
    assert_eq!(
        previewed_to(&stack),
        Vec::<String>::new(),
        "nobody got a preview"
    );
    stack.app.stop().await;
}

/// Makes the database refuse to record a preview of article `id` (its audit row),
/// as a connection lost or a full disk would after WeChat's calls.
async fn refuse_preview_audits(stack: &Stack, id: &str) {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION refuse_preview_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected: the preview audit cannot be written'; END $$;
         CREATE TRIGGER refuse_preview_audit BEFORE INSERT ON article_audit FOR EACH ROW
         WHEN (NEW.action = 'preview' AND NEW.article_id = '{id}'::uuid)
         EXECUTE FUNCTION refuse_preview_audit();"
    ))
    .execute(&stack.app.db)
    .await
    .expect("fault injected");
}

/// The previews went out before the database failed to record them: the caller
/// is told who got one (all: OK; some: FAILED_PRECONDITION naming them), not
/// INTERNAL, after which a retry of the same list would send everyone a second.
#[tokio::test]
async fn a_preview_whose_bookkeeping_fails_after_wechat_still_says_who_got_it() {
    let stack = spawn_stack(AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .mock
        .state()
        .add_followers(DEMO_APPID, ["o-director", "o-deputy"])
        .expect("followers");
    refuse_preview_audits(&stack, &id).await;

    let sent = client
        .preview_article(preview(&id, &["o-director"]))
        .await
        .expect("the preview reached the director")
        .into_inner()
        .sent;
    assert_eq!(sent, 1);
    assert_eq!(previewed_to(&stack), ["o-director"]);

    let refused = client
        .preview_article(preview(&id, &["o-deputy", "o-typo"]))
        .await
        .expect_err("o-typo is no follower");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("sent to the first 1 of 2 openids (o-deputy)"),
        "{}",
        refused.message()
    );
    assert_eq!(previewed_to(&stack), ["o-director", "o-deputy"]);
    stack.app.stop().await;
}
