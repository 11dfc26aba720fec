//! Article row locks are taken in one order (the message row first, then the
//! articles by id) by ComposeMessage, DissolveMessage, a verdict on a WeChat job,
//! a send that fails (or retries, or takes its message along), the stuck-send sweep
//! and a schedule, cancel or publish of a message's headline, so two of these wait
//! for each other instead of deadlocking (PostgreSQL's `deadlock detected` aborted
//! one: the compose answered an internal error).
//!
//! The two transactions are made to overlap deterministically: the test holds a
//! lock that stops the first (`article_audit` in SHARE mode, which stops each at its
//! first trail row, written after it locked its first articles; or a member's row,
//! which stops a compose or dissolve holding its message), waits until the second
//! waits too, and lets them go.

use std::time::Duration;

use chrono::Utc;
use content_svc::app::articles::{Articles, Job, Outcome};
use content_svc::app::lexicon::Lexicon;
use content_svc::app::publishing::Publisher;
use platform::outbox::OutboxSignal;
use platform::testing::TestNats;
use proto::content::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{COUNTY_REVIEWER_KEY, PUBLISHER_KEY, TestApp, by, spawn_app, spawn_app_with};

const JOB: &str = "1000000001";

/// Which transaction reaches the held trail first.
#[derive(Clone, Copy)]
enum First {
    Verdict,
    Compose,
}

/// Approved mass-send articles `headline` and `other` that went out together under
/// one clientmsgid (`headline` holding the job), were both returned for revision
/// and approved again, and are in no message now: WeChat's late verdict on that job
/// finds `headline` by the job and notes on `other` that it went out with it.
async fn returned_after_a_send(db: &PgPool, headline: Uuid, other: Uuid) {
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body,
                               cover_media_id, channel, mass_msg_id, sent_key, sent_position)
         SELECT id, 'demo', 'press', 'press:li', 'approved', title, '<p>通知</p>',
                'MEDIA_COVER', 'mass_send', job, 'demo:key:0', position
           FROM (VALUES ($1::uuid, '停水通知', $3::text, 1::smallint),
                        ($2::uuid, '道路施工公告', NULL, 2::smallint)) AS a (id, title, job, position)",
    )
    .bind(headline)
    .bind(other)
    .bind(JOB)
    .execute(db)
    .await
    .expect("arranged");
}

/// A replica's use cases, enough to apply a verdict (no WeChat call is made).
fn verdicts(db: &PgPool) -> Articles {
    Articles::new(
        db.clone(),
        Lexicon::new(db.clone()),
        OutboxSignal::new(),
        Publisher::default(),
        content_svc::domain::search::Segmenter::default(),
    )
}

/// The backend pid of the session holding the test's lock, for [`until_waiting`].
pub(crate) async fn pid(holder: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(holder)
        .await
        .expect("pid read")
}

/// How many sessions wait for a lock session `holder` holds, or for one held by a
/// session waiting for it (a transaction stopped by the test's lock holds up the
/// next one at the rows it took): none of the service's own background work, which
/// waits for neither, is counted.
async fn lock_waiters(db: &PgPool, holder: i32) -> i64 {
    sqlx::query_scalar(
        "WITH RECURSIVE held (pid) AS (
             SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))
             UNION
             SELECT a.pid FROM pg_stat_activity a, held
              WHERE held.pid = ANY (pg_blocking_pids(a.pid))
         )
         SELECT count(*) FROM held",
    )
    .bind(holder)
    .fetch_one(db)
    .await
    .expect("pg_stat_activity read")
}

/// Holds `article_audit` (SHARE mode) in a transaction of the test's own, which stops
/// each transaction at its first trail row. Returns it and its session's pid.
async fn hold_trail(db: &PgPool) -> (sqlx::Transaction<'static, sqlx::Postgres>, i32) {
    let mut trail = db.begin().await.expect("begin");
    sqlx::query("LOCK TABLE article_audit IN SHARE MODE")
        .execute(&mut *trail)
        .await
        .expect("trail held");
    let holder = pid(&mut trail).await;
    (trail, holder)
}

pub(crate) async fn until_waiting(db: &PgPool, holder: i32, waiters: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lock_waiters(db, holder).await < waiters {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiters} sessions never waited for the held lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Answer<T> = tokio::task::JoinHandle<Result<tonic::Response<T>, tonic::Status>>;

/// Composes `ids` (into message `into`, or a new one) as a publisher, in a task.
fn compose(app: &TestApp, into: Option<Uuid>, ids: [Uuid; 2]) -> Answer<pb::ArticleMessage> {
    let mut client = app.client.clone();
    tokio::spawn(async move {
        client
            .compose_message(by(
                pb::ComposeMessageRequest {
                    account: "demo".into(),
                    message_id: into.map(|id| id.to_string()).unwrap_or_default(),
                    article_ids: ids.iter().map(Uuid::to_string).collect(),
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    })
}

/// Dissolves message `message` as a publisher, in a task.
fn dissolve(app: &TestApp, message: Uuid) -> Answer<pb::DissolveMessageResponse> {
    let mut client = app.client.clone();
    tokio::spawn(async move {
        client
            .dissolve_message(by(
                pb::MessageRef {
                    id: message.to_string(),
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    })
}

/// Message `message` of `channel` articles `articles` (id, state), in that order,
/// arranged with SQL.
async fn message_of(db: &PgPool, message: Uuid, channel: &str, articles: &[(Uuid, &str)]) {
    sqlx::query("INSERT INTO messages (id, account, created_by) VALUES ($1, 'demo', 'media:chen')")
        .bind(message)
        .execute(db)
        .await
        .expect("message arranged");
    for (position, (id, state)) in (1i16..).zip(articles) {
        sqlx::query(
            "INSERT INTO articles (id, account, department, author_id, state, title, body,
                                   cover_media_id, channel, message_id, message_position)
             VALUES ($1, 'demo', 'press', 'press:li', $2, '通知', '<p>通知</p>',
                     'MEDIA_COVER', $3, $4, $5)",
        )
        .bind(id)
        .bind(state)
        .bind(channel)
        .bind(message)
        .bind(position)
        .execute(db)
        .await
        .expect("article arranged");
    }
}

/// Composes [other, headline] while WeChat's verdict on `headline`'s job is applied,
/// `first` reaching the held trail first; both must succeed.
async fn compose_during_verdict(app: &TestApp, headline: Uuid, other: Uuid, first: First) {
    returned_after_a_send(&app.db, headline, other).await;
    let (trail, holder) = hold_trail(&app.db).await;

    let db = app.db.clone();
    let verdict = async move {
        let articles = verdicts(&db);
        let mut tx = db.begin().await?;
        let outcome = Outcome::Published {
            urls: vec![
                (1, "https://mp.weixin.qq.com/s/one".into()),
                (2, "https://mp.weixin.qq.com/s/two".into()),
            ],
            msg_data_id: Some("2247483700".into()),
            sent: 10,
            total: 10,
            at: Utc::now(),
            taken_down: None,
        };
        let applied = articles
            .apply_job_result(&mut tx, "demo", Job::Mass(JOB), outcome, "late-callback")
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        tx.commit().await?;
        anyhow::Ok(applied)
    };
    let (verdict, compose) = match first {
        First::Verdict => {
            let verdict = tokio::spawn(verdict);
            until_waiting(&app.db, holder, 1).await;
            let compose = compose(app, None, [other, headline]);
            until_waiting(&app.db, holder, 2).await;
            (verdict, compose)
        }
        First::Compose => {
            let compose = compose(app, None, [other, headline]);
            until_waiting(&app.db, holder, 1).await;
            let verdict = tokio::spawn(verdict);
            until_waiting(&app.db, holder, 2).await;
            (verdict, compose)
        }
    };
    trail.commit().await.expect("trail released");

    let verdict = verdict.await.expect("verdict task");
    let compose = compose.await.expect("compose task");
    assert!(
        matches!(verdict, Ok(Some(false))),
        "the verdict is applied (noted, nothing moved): {verdict:?}"
    );
    let message = compose.expect("the message is composed").into_inner();
    let ids: Vec<String> = message.articles.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids, [other.to_string(), headline.to_string()]);
    // The verdict noted on the other article that it went out with the headline.
    let noted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM article_audit WHERE article_id = $1 AND action = 'wechat_verdict'",
    )
    .bind(other)
    .fetch_one(&app.db)
    .await
    .expect("trail read");
    assert_eq!(noted, 1);
}

#[tokio::test]
async fn a_message_composed_while_a_verdict_holds_its_headline_waits_for_the_verdict() {
    let app = spawn_app().await;
    // The other article's id sorts first: the verdict, which finds the headline by
    // its job, must still lock the other article before it.
    let other = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    compose_during_verdict(&app, headline, other, First::Verdict).await;
}

#[tokio::test]
async fn a_verdict_on_a_headline_being_composed_waits_for_the_compose() {
    let app = spawn_app().await;
    // The headline's id sorts first: the compose, given the other article first,
    // must still lock the headline before it.
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let other = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    compose_during_verdict(&app, headline, other, First::Compose).await;
}

#[tokio::test]
async fn a_message_composed_while_a_failed_send_is_applied_to_its_articles_waits_for_the_failure() {
    let app = spawn_app().await;
    // The member's id sorts first: the failure, which starts from the headline,
    // must still lock the member before it.
    let message = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ff);
    let member = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    message_of(
        &app.db,
        message,
        "mass_send",
        &[(headline, "publishing"), (member, "approved")],
    )
    .await;
    let (trail, holder) = hold_trail(&app.db).await;

    let db = app.db.clone();
    let send = tokio::spawn(async move { verdicts(&db).send(headline).await });
    until_waiting(&app.db, holder, 1).await;
    let compose = compose(&app, None, [member, headline]);
    until_waiting(&app.db, holder, 2).await;
    trail.commit().await.expect("trail released");

    let send = send.await.expect("send task");
    let compose = compose.await.expect("compose task");
    assert!(send.is_ok(), "the failure is applied: {send:?}");
    let refused = compose.expect_err("articles of another message");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "refused, not aborted: {refused:?}"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
        .bind(headline)
        .fetch_one(&app.db)
        .await
        .expect("headline read");
    assert_eq!(state, "failed");
}

#[tokio::test]
async fn a_message_composed_while_a_send_takes_its_articles_along_waits_for_the_send() {
    let app = spawn_app().await;
    // The third article's id sorts before the second's: the send, which moves the
    // members in position order, must still lock the third first.
    let message = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ff);
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003);
    let second = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    let third = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    message_of(
        &app.db,
        message,
        "freepublish",
        &[
            (headline, "publishing"),
            (second, "approved"),
            (third, "approved"),
        ],
    )
    .await;
    let (trail, holder) = hold_trail(&app.db).await;

    // No WeChat credentials: after taking its members along the send fails, which
    // is not what this is about; only that neither side is aborted.
    let db = app.db.clone();
    let send = tokio::spawn(async move { verdicts(&db).send(headline).await });
    until_waiting(&app.db, holder, 1).await;
    let compose = compose(&app, None, [third, second]);
    until_waiting(&app.db, holder, 2).await;
    trail.commit().await.expect("trail released");

    let send = send.await.expect("send task");
    let compose = compose.await.expect("compose task");
    assert!(send.is_ok(), "the send ran to its end: {send:?}");
    let refused = compose.expect_err("articles of another message");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "refused, not aborted: {refused:?}"
    );
    let followed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM article_audit
          WHERE article_id = ANY($1) AND action = 'publish' AND to_state = 'publishing'",
    )
    .bind([second, third])
    .fetch_one(&app.db)
    .await
    .expect("trail read");
    assert_eq!(followed, 2, "both members went along with the headline");
}

/// Holds article `id`'s row (FOR UPDATE) in a transaction of the test's own: a
/// ComposeMessage or DissolveMessage of its message then holds the message row and
/// waits. Returns the transaction and its session's pid.
async fn hold_row(db: &PgPool, id: Uuid) -> (sqlx::Transaction<'static, sqlx::Postgres>, i32) {
    let mut holder = db.begin().await.expect("begin");
    sqlx::query("SELECT id FROM articles WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *holder)
        .await
        .expect("row held");
    let pid = pid(&mut holder).await;
    (holder, pid)
}

async fn state_of(db: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .expect("article read")
}

// The member's id sorts before the headline's in the tests below: a compose or
// dissolve of the message holds the message row and the member and then waits for
// the headline, which the other transaction must not hold while it waits for the
// message row (the key check of its second write of the headline takes it).
const MESSAGE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ff);
const MEMBER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const HEADLINE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);

#[tokio::test]
async fn a_stuck_headline_swept_while_its_message_is_dissolved_waits_for_the_dissolve() {
    // The service's own sweep leaves it alone: only the test's sweep below fails it.
    let app = spawn_app_with(TestNats::new(), &[("PUBLISHING_STUCK_AFTER", "1000h")]).await;
    // Cut off mid-send an hour ago: in publishing, no job recorded.
    message_of(
        &app.db,
        MESSAGE,
        "freepublish",
        &[(HEADLINE, "publishing"), (MEMBER, "approved")],
    )
    .await;
    sqlx::query("UPDATE articles SET updated_at = now() - interval '1 hour' WHERE id = $1")
        .bind(HEADLINE)
        .execute(&app.db)
        .await
        .expect("arranged");
    let (holder, holder_pid) = hold_row(&app.db, MEMBER).await;

    let dissolve = dissolve(&app, MESSAGE);
    until_waiting(&app.db, holder_pid, 1).await;
    let db = app.db.clone();
    let sweep = tokio::spawn(async move {
        verdicts(&db)
            .fail_unknown_sends(Duration::from_secs(60), 10)
            .await
    });
    until_waiting(&app.db, holder_pid, 2).await;
    holder.commit().await.expect("row released");

    let sweep = sweep.await.expect("sweep task");
    let dissolve = dissolve.await.expect("dissolve task");
    assert!(
        matches!(sweep, Ok(1)),
        "the stuck headline is failed: {sweep:?}"
    );
    let refused = dissolve.expect_err("a message whose headline is publishing");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "refused, not aborted: {refused:?}"
    );
    assert_eq!(state_of(&app.db, HEADLINE).await, "failed");
}

#[tokio::test]
async fn a_headline_scheduled_while_its_message_is_dissolved_waits_for_the_dissolve() {
    let app = spawn_app().await;
    message_of(
        &app.db,
        MESSAGE,
        "freepublish",
        &[(HEADLINE, "approved"), (MEMBER, "approved")],
    )
    .await;
    let (holder, holder_pid) = hold_row(&app.db, MEMBER).await;

    let dissolve = dissolve(&app, MESSAGE);
    until_waiting(&app.db, holder_pid, 1).await;
    let mut client = app.client.clone();
    let schedule = tokio::spawn(async move {
        client
            .schedule_article(by(
                pb::ScheduleArticleRequest {
                    id: HEADLINE.to_string(),
                    at: Some(prost_types::Timestamp {
                        seconds: (Utc::now() + chrono::Duration::hours(1)).timestamp(),
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    });
    until_waiting(&app.db, holder_pid, 2).await;
    holder.commit().await.expect("row released");

    let schedule = schedule.await.expect("schedule task");
    let dissolve = dissolve.await.expect("dissolve task");
    let dissolved = dissolve.expect("the message is dissolved, not aborted");
    assert_eq!(dissolved.into_inner().articles, 2);
    // Scheduled after the dissolve, as an article on its own.
    schedule.expect("scheduled, not aborted");
    assert_eq!(state_of(&app.db, HEADLINE).await, "scheduled");
}

#[tokio::test]
async fn a_headline_schedule_cancelled_while_its_message_is_recomposed_waits_for_the_compose() {
    let app = spawn_app().await;
    message_of(
        &app.db,
        MESSAGE,
        "freepublish",
        &[(HEADLINE, "scheduled"), (MEMBER, "approved")],
    )
    .await;
    sqlx::query("UPDATE articles SET scheduled_for = now() + interval '1 hour' WHERE id = $1")
        .bind(HEADLINE)
        .execute(&app.db)
        .await
        .expect("arranged");
    let (holder, holder_pid) = hold_row(&app.db, MEMBER).await;

    let compose = compose(&app, Some(MESSAGE), [MEMBER, HEADLINE]);
    until_waiting(&app.db, holder_pid, 1).await;
    let mut client = app.client.clone();
    let cancel = tokio::spawn(async move {
        client
            .cancel_schedule(by(
                pb::ArticleRef {
                    id: HEADLINE.to_string(),
                    comment: String::new(),
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    });
    until_waiting(&app.db, holder_pid, 2).await;
    holder.commit().await.expect("row released");

    let cancel = cancel.await.expect("cancel task");
    let compose = compose.await.expect("compose task");
    let refused = compose.expect_err("a message whose headline is scheduled");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "refused, not aborted: {refused:?}"
    );
    cancel.expect("cancelled, not aborted");
    assert_eq!(state_of(&app.db, HEADLINE).await, "approved");
}

#[tokio::test]
async fn a_verdict_locking_a_headline_a_compose_moves_meanwhile_holds_its_new_message() {
    let app = spawn_app().await;
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let other = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    // In no message: the verdict finds no message to hold before the articles.
    returned_after_a_send(&app.db, headline, other).await;
    let (trail, holder) = hold_trail(&app.db).await;

    // The compose holds its new message and both articles, stopped at its trail.
    let compose = compose(&app, None, [other, headline]);
    until_waiting(&app.db, holder, 1).await;
    // The verdict's locks, taken as a verdict on the headline's job takes them, and
    // held until the test has looked.
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let (look_tx, look) = tokio::sync::oneshot::channel::<()>();
    let db = app.db.clone();
    let verdict = tokio::spawn(async move {
        let mut tx = db.begin().await?;
        content_svc::store::articles::lock_job_articles(&mut tx, headline).await?;
        let _ = locked_tx.send(());
        let _ = look.await;
        tx.rollback().await?;
        anyhow::Ok(())
    });
    until_waiting(&app.db, holder, 2).await;
    trail.commit().await.expect("trail released");
    let message: Uuid = compose
        .await
        .expect("compose task")
        .expect("the message is composed")
        .into_inner()
        .id
        .parse()
        .expect("message id");
    locked.await.expect("the verdict's articles are locked");

    // The headline's message now is the composed one: a dissolve or recompose of it
    // (FOR UPDATE) must wait for the verdict, or the verdict's second write of the
    // headline waits for it while it waits for the headline.
    let mut probe = app.db.begin().await.expect("begin");
    let taken = sqlx::query("SELECT id FROM messages WHERE id = $1 FOR UPDATE NOWAIT")
        .bind(message)
        .execute(&mut *probe)
        .await;
    probe.rollback().await.expect("probe rolled back");
    let _ = look_tx.send(());
    verdict
        .await
        .expect("verdict task")
        .expect("verdict's locks");
    let held = taken.expect_err("the verdict holds the headline's new message");
    assert_eq!(
        held.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{held:?}"
    );
}

/// Composes `ids` on `account` with `key` while the test holds `held`'s row, and
/// returns the answer, failing if the compose waits for that row instead.
async fn compose_naming_held(
    app: &TestApp,
    key: &'static str,
    account: &str,
    ids: [Uuid; 2],
    held: Uuid,
) -> tonic::Status {
    let (holder, holder_pid) = hold_row(&app.db, held).await;
    let mut client = app.client.clone();
    let request = pb::ComposeMessageRequest {
        account: account.into(),
        message_id: String::new(),
        article_ids: ids.iter().map(Uuid::to_string).collect(),
    };
    let compose =
        tokio::spawn(async move { client.compose_message(by(request, key, "chen")).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !compose.is_finished() {
        assert_eq!(
            lock_waiters(&app.db, holder_pid).await,
            0,
            "the compose waits for the held article before it is refused"
        );
        assert!(tokio::time::Instant::now() < deadline, "no answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.rollback().await.expect("row released");
    compose
        .await
        .expect("compose task")
        .expect_err("another account's article")
}

/// Approved freepublish article `id` on `account`, arranged with SQL.
async fn approved_on(db: &PgPool, id: Uuid, account: &str) {
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body,
                              cover_media_id, channel)
         VALUES ($1, $2, 'press', 'press:li', 'approved', '通知', '<p>通知</p>',
                 'MEDIA_COVER', 'freepublish')",
    )
    .bind(id)
    .bind(account)
    .execute(db)
    .await
    .expect("arranged");
}

#[tokio::test]
async fn a_compose_naming_another_accounts_article_is_refused_without_waiting_for_it() {
    let app = spawn_app().await;
    let ours = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let theirs = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    approved_on(&app.db, ours, "demo").await;
    approved_on(&app.db, theirs, "yizhang").await;

    // The city's publisher sees both accounts: the article is named, and refused.
    let refused = compose_naming_held(&app, PUBLISHER_KEY, "demo", [ours, theirs], theirs).await;
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("yizhang"), "{refused:?}");
}

#[tokio::test]
async fn a_compose_naming_an_article_the_caller_may_not_see_is_not_found_without_waiting_for_it() {
    let app = spawn_app().await;
    let theirs = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let ours = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    approved_on(&app.db, theirs, "demo").await;
    approved_on(&app.db, ours, "yizhang").await;

    // The county's publisher (and reviewer) reaches only its own account.
    let refused =
        compose_naming_held(&app, COUNTY_REVIEWER_KEY, "yizhang", [ours, theirs], theirs).await;
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
}
