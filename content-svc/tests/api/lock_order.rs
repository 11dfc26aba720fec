//! Article row locks are taken in one order (by id) by ComposeMessage, by a
//! verdict on a WeChat job and by a send that fails (or retries, or takes its
//! message along), so a publisher composing a message from articles one of those
//! is writing waits for it instead of deadlocking with it (PostgreSQL's
//! `deadlock detected` aborted one: the compose answered an internal error).
//!
//! The two transactions are made to overlap deterministically: the test holds
//! `article_audit` in SHARE mode, which stops both at their first trail row (each
//! writes one after locking its first articles), and lets them go once both wait.

use std::time::Duration;

use chrono::Utc;
use content_svc::app::articles::{Articles, Job, Outcome};
use content_svc::app::lexicon::Lexicon;
use content_svc::app::publishing::Publisher;
use platform::outbox::OutboxSignal;
use proto::content::v1 as pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{PUBLISHER_KEY, TestApp, by, spawn_app};

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

/// How many of the database's sessions wait for a lock.
async fn lock_waiters(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(db)
    .await
    .expect("pg_stat_activity read")
}

async fn until_waiting(db: &PgPool, waiters: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lock_waiters(db).await < waiters {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiters} sessions never waited for a lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Composes [other, headline] while WeChat's verdict on `headline`'s job is applied,
/// `first` reaching the held trail first; both must succeed.
async fn compose_during_verdict(app: &TestApp, headline: Uuid, other: Uuid, first: First) {
    returned_after_a_send(&app.db, headline, other).await;
    let mut trail = app.db.begin().await.expect("begin");
    sqlx::query("LOCK TABLE article_audit IN SHARE MODE")
        .execute(&mut *trail)
        .await
        .expect("trail held");

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
    let mut client = app.client.clone();
    let compose = async move {
        client
            .compose_message(by(
                pb::ComposeMessageRequest {
                    account: "demo".into(),
                    message_id: String::new(),
                    article_ids: vec![other.to_string(), headline.to_string()],
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    };
    let (verdict, compose) = match first {
        First::Verdict => {
            let verdict = tokio::spawn(verdict);
            until_waiting(&app.db, 1).await;
            let compose = tokio::spawn(compose);
            until_waiting(&app.db, 2).await;
            (verdict, compose)
        }
        First::Compose => {
            let compose = tokio::spawn(compose);
            until_waiting(&app.db, 1).await;
            let verdict = tokio::spawn(verdict);
            until_waiting(&app.db, 2).await;
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

/// A mass-send headline `headline` in `publishing`, holding message `message` with
/// `member` (approved) second: a send whose quota is refused (the replica has no
/// WeChat credentials) fails the headline and applies that failure to its message.
async fn message_being_sent(db: &PgPool, message: Uuid, headline: Uuid, member: Uuid) {
    sqlx::query("INSERT INTO messages (id, account, created_by) VALUES ($1, 'demo', 'media:chen')")
        .bind(message)
        .execute(db)
        .await
        .expect("message arranged");
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body,
                               cover_media_id, channel, message_id, message_position)
         SELECT id, 'demo', 'press', 'press:li', state, title, '<p>通知</p>',
                'MEDIA_COVER', 'mass_send', $3, position
           FROM (VALUES ($1::uuid, 'publishing', '停水通知', 1::smallint),
                        ($2::uuid, 'approved', '道路施工公告', 2::smallint))
                AS a (id, state, title, position)",
    )
    .bind(headline)
    .bind(member)
    .bind(message)
    .execute(db)
    .await
    .expect("articles arranged");
}

#[tokio::test]
async fn a_message_composed_while_a_failed_send_is_applied_to_its_articles_waits_for_the_failure() {
    let app = spawn_app().await;
    // The member's id sorts first: the failure, which starts from the headline,
    // must still lock the member before it.
    let message = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ff);
    let member = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let headline = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    message_being_sent(&app.db, message, headline, member).await;
    let mut trail = app.db.begin().await.expect("begin");
    sqlx::query("LOCK TABLE article_audit IN SHARE MODE")
        .execute(&mut *trail)
        .await
        .expect("trail held");

    let db = app.db.clone();
    let send = tokio::spawn(async move { verdicts(&db).send(headline).await });
    until_waiting(&app.db, 1).await;
    let mut client = app.client.clone();
    let compose = tokio::spawn(async move {
        client
            .compose_message(by(
                pb::ComposeMessageRequest {
                    account: "demo".into(),
                    message_id: String::new(),
                    article_ids: vec![member.to_string(), headline.to_string()],
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    });
    until_waiting(&app.db, 2).await;
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
    sqlx::query("INSERT INTO messages (id, account, created_by) VALUES ($1, 'demo', 'media:chen')")
        .bind(message)
        .execute(&app.db)
        .await
        .expect("message arranged");
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body,
                               cover_media_id, channel, message_id, message_position)
         SELECT id, 'demo', 'press', 'press:li', state, title, '<p>通知</p>',
                'MEDIA_COVER', 'freepublish', $4, position
           FROM (VALUES ($1::uuid, 'publishing', '停水通知', 1::smallint),
                        ($2::uuid, 'approved', '道路施工公告', 2::smallint),
                        ($3::uuid, 'approved', '停电通知', 3::smallint))
                AS a (id, state, title, position)",
    )
    .bind(headline)
    .bind(second)
    .bind(third)
    .bind(message)
    .execute(&app.db)
    .await
    .expect("articles arranged");
    let mut trail = app.db.begin().await.expect("begin");
    sqlx::query("LOCK TABLE article_audit IN SHARE MODE")
        .execute(&mut *trail)
        .await
        .expect("trail held");

    // No WeChat credentials: after taking its members along the send fails, which
    // is not what this is about; only that neither side is aborted.
    let db = app.db.clone();
    let send = tokio::spawn(async move { verdicts(&db).send(headline).await });
    until_waiting(&app.db, 1).await;
    let mut client = app.client.clone();
    let compose = tokio::spawn(async move {
        client
            .compose_message(by(
                pb::ComposeMessageRequest {
                    account: "demo".into(),
                    message_id: String::new(),
                    article_ids: vec![third.to_string(), second.to_string()],
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    });
    until_waiting(&app.db, 2).await;
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
