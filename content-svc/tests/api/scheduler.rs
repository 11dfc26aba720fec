//! The scheduler's claim: replicas racing over the same due articles send each
//! exactly once (real PostgreSQL, the real API client, the mock WeChat).

use std::collections::{HashMap, HashSet};

use content_svc::app::articles::Articles;
use content_svc::app::lexicon::Lexicon;
use content_svc::app::publishing::Publisher;
use content_svc::domain::quota::AccountKind;
use platform::outbox::OutboxSignal;
use platform::testing::TestNats;
use wechat::api::Client;
use wechat::token::LocalTokenCache;
use wechat_sim::api_server::{DEMO_APPID, DEMO_SECRET, MockWechat, SimConfig};

use crate::helpers::{TestApp, spawn_app_with};

/// One replica's use cases over the shared database, with its own API client.
pub(crate) fn replica(db: &sqlx::PgPool, mock: &MockWechat) -> Articles {
    replica_of(db, mock, AccountKind::Service)
}

/// A replica whose account `demo` is of `kind` (its mass-send quota).
pub(crate) fn replica_of(db: &sqlx::PgPool, mock: &MockWechat, kind: AccountKind) -> Articles {
    let client = Client::builder(
        DEMO_APPID,
        DEMO_SECRET.into(),
        LocalTokenCache::default().into(),
    )
    .base_url(mock.base_url())
    .build()
    .expect("client");
    Articles::new(
        db.clone(),
        Lexicon::new(db.clone()),
        OutboxSignal::new(),
        Publisher::new(HashMap::from([("demo".to_owned(), (client, kind))])),
        content_svc::domain::search::Segmenter::default(),
    )
}

/// A service whose own scheduler stays out of the test's way (its first tick comes
/// an hour after start), and a mock WeChat for the test's replicas to send to.
async fn app_with_idle_scheduler() -> (TestApp, MockWechat) {
    let app = spawn_app_with(TestNats::new(), &[("SCHEDULER_INTERVAL", "1h")]).await;
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock starts");
    (app, mock)
}

/// Arranges `n` approved articles, all due now (with SQL: the review path has its
/// own tests); returns their ids.
async fn due_now(db: &sqlx::PgPool, n: i64) -> Vec<uuid::Uuid> {
    sqlx::query_scalar(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id, scheduled_for)
         SELECT gen_random_uuid(), 'demo', 'press', 'press:li', 'scheduled', '停水通知 ' || n, '<p>停水</p>', 'MEDIA_COVER', now()
           FROM generate_series(1, $1) AS n
         RETURNING id",
    )
    .bind(n)
    .fetch_all(db)
    .await
    .expect("arranged")
}

/// Arranges one article in `publishing` with no WeChat job, its draft kept as
/// `media_id` if given; returns its id.
async fn one_in_publishing(db: &sqlx::PgPool, media_id: Option<&str>) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id, media_id)
         VALUES ($1, 'demo', 'press', 'press:li', 'publishing', '停水通知', '<p>停水</p>', 'MEDIA_COVER', $2)",
    )
    .bind(id)
    .bind(media_id)
    .execute(db)
    .await
    .expect("arranged");
    id
}

/// Starts a replica's send of `id` while the returned transaction holds the
/// article's row, and returns once the send waits on it: the test changes the row
/// in that transaction, then commits to let the send go on.
async fn send_waiting_on_held_row(
    db: &sqlx::PgPool,
    mock: &MockWechat,
    id: uuid::Uuid,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    tokio::task::JoinHandle<Result<(), content_svc::app::AppError>>,
) {
    use crate::lock_order::{pid, until_waiting};
    let mut held = db.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM articles WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *held)
        .await
        .expect("row held");
    let holder = pid(&mut held).await;
    let sender = replica(db, mock);
    let send = tokio::spawn(async move { sender.send(id).await });
    until_waiting(db, holder, 1).await;
    (held, send)
}

#[tokio::test]
async fn articles_due_in_the_same_second_are_each_sent_once_by_racing_replicas() {
    // The service's own scheduler first ticks an interval after start, so with an
    // hour it stays out of the race: only the three replicas below claim, however
    // long their sends take. (Its first tick used to come at start, racing this
    // test's insert: a claim by it, with no working WeChat, failed the test once.)
    let (app, mock) = app_with_idle_scheduler().await;
    // Thirty approved articles, all due now.
    let due: i64 = 30;
    due_now(&app.db, due).await;

    let (a, b, c) = (
        replica(&app.db, &mock),
        replica(&app.db, &mock),
        replica(&app.db, &mock),
    );
    let (ra, rb, rc) = tokio::join!(a.send_due(10), b.send_due(10), c.send_due(10));
    let mut claimed = ra.unwrap() + rb.unwrap() + rc.unwrap();
    // Whatever the first round left is claimed by the next ticks.
    while claimed < due as usize {
        let (ra, rb) = tokio::join!(a.send_due(10), b.send_due(10));
        let more = ra.unwrap() + rb.unwrap();
        assert!(more > 0, "due articles left unclaimed");
        claimed += more;
    }

    let submits = mock.state().calls_to("/cgi-bin/freepublish/submit");
    assert_eq!(
        submits.len(),
        due as usize,
        "each due article is sent exactly once"
    );
    let drafts: HashSet<String> = submits
        .iter()
        .filter_map(|c| {
            c.body
                .as_ref()?
                .get("media_id")?
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(drafts.len(), due as usize);
    let publishing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM articles WHERE state = 'publishing' AND publish_id IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(publishing, due);
    app.stop().await;
}

/// Arranges `n` articles in `publishing` since `since` (an SQL expression), with no
/// WeChat job unless `publish_id` is given; returns their ids.
pub(crate) async fn in_publishing(
    db: &sqlx::PgPool,
    n: i64,
    since: &str,
    publish_id: Option<&str>,
) -> Vec<uuid::Uuid> {
    sqlx::query_scalar(&format!(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id,
                               publish_id, updated_at)
         SELECT gen_random_uuid(), 'demo', 'press', 'press:li', 'publishing', '停水通知 ' || n,
                '<p>停水</p>', 'MEDIA_COVER', $2 || n, {since}
           FROM generate_series(1, $1) AS n
         RETURNING id"
    ))
    .bind(n)
    .bind(publish_id)
    .fetch_all(db)
    .await
    .expect("arranged")
}

#[tokio::test]
async fn racing_replicas_fail_each_send_of_unknown_outcome_once_and_send_nothing_again() {
    let (app, mock) = app_with_idle_scheduler().await;
    let stuck = in_publishing(&app.db, 30, "now() - interval '1 hour'", None).await;
    // Handed to WeChat (its job id recorded): WeChat's verdict will come.
    let handed = in_publishing(&app.db, 1, "now() - interval '1 hour'", Some("P-")).await;
    // Moved a moment ago: its send may still be under way.
    let fresh = in_publishing(&app.db, 1, "now()", None).await;

    let after = std::time::Duration::from_secs(15 * 60);
    let (a, b, c) = (
        replica(&app.db, &mock),
        replica(&app.db, &mock),
        replica(&app.db, &mock),
    );
    let (ra, rb, rc) = tokio::join!(
        a.fail_unknown_sends(after, 10),
        b.fail_unknown_sends(after, 10),
        c.fail_unknown_sends(after, 10)
    );
    let mut failed = ra.unwrap() + rb.unwrap() + rc.unwrap();
    while failed < stuck.len() {
        let more = a.fail_unknown_sends(after, 10).await.unwrap();
        assert!(more > 0, "sends of unknown outcome left in publishing");
        failed += more;
    }
    assert_eq!(a.fail_unknown_sends(after, 10).await.unwrap(), 0);
    assert_eq!(failed, stuck.len());

    for id in &stuck {
        let (state, failure): (String, String) =
            sqlx::query_as("SELECT state, failure FROM articles WHERE id = $1")
                .bind(id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(state, "failed");
        assert!(
            failure.contains("outcome is unknown") && failure.contains("WeChat console"),
            "{failure}"
        );
        let trail: Vec<(String, String)> = sqlx::query_as(
            "SELECT action, actor FROM article_audit WHERE article_id = $1 AND to_state = 'failed'",
        )
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap();
        assert_eq!(trail, [("fail".to_owned(), "scheduler".to_owned())]);
        let events: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE subject = 'content.demo.article.failed' AND event_id LIKE '%:' || $1",
        )
        .bind(id.to_string())
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(events, 1, "one failed event per article");
    }
    for id in handed.iter().chain(&fresh) {
        let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(state, "publishing");
    }
    assert!(
        mock.state().calls().is_empty(),
        "nothing is sent again automatically"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_scheduler_fails_an_article_left_publishing_longer_than_publishing_stuck_after() {
    let test_nats = TestNats::new();
    let nats = async_nats::connect(test_nats.url()).await.expect("nats");
    let mut failed = nats
        .subscribe(format!("{}.content.demo.article.failed", test_nats.prefix))
        .await
        .expect("subscribe");
    nats.flush().await.expect("flush");
    let app = spawn_app_with(
        test_nats,
        &[
            ("SCHEDULER_INTERVAL", "100ms"),
            ("PUBLISHING_STUCK_AFTER", "2s"),
        ],
    )
    .await;
    // The caller of a publish-now went away after the move to publishing.
    let id = in_publishing(&app.db, 1, "now()", None).await[0];

    let event = crate::articles::next_event(&mut failed).await;
    assert_eq!(event.article_id, id.to_string());
    assert!(
        event.reason.contains("outcome is unknown")
            && event.reason.contains("within 2s")
            && event.reason.contains("before publishing it again"),
        "{}",
        event.reason
    );
    let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(state, "failed");
    // Flagged in the sweep's own transaction, after the row was read: counted all
    // the same (what the alert GovwxSendOutcomeUnknown reads).
    crate::reconcile::counted_on(
        app.admin_port,
        "content_send_outcome_unknown_total{account=\"demo\",channel=\"",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_send_again_after_a_failed_job_cut_off_mid_send_is_failed_by_the_stuck_sweep() {
    use proto::content::v1 as pb;

    use crate::articles::{next_event, publish, spawn_stack};
    use crate::helpers::{PUBLISHER_KEY, by, wechat_latency};

    let stack = spawn_stack(wechat_sim::api_server::AccountKind::Service).await;
    let mut client = stack.app.client.clone();
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    // WeChat takes the first send and its job fails (publish_status 3).
    stack.callbacks.fail_next_publish(3);
    let mut failed = stack.watch("failed").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat");
    assert_eq!(next_event(&mut failed).await.article_id, id);

    // Published again on a replica that dies mid-send (its send's future dropped
    // while WeChat is slow to answer), before the new job's id is recorded. (A
    // caller that hangs up no longer cuts a send: the service finishes it,
    // `hung_up.rs`.)
    wechat_latency(&stack, 3000);
    let chen = content_svc::app::articles::Who {
        actor: content_svc::domain::review::Actor {
            id: "media:chen".into(),
            roles: vec![platform::Role::Publisher],
        },
        department: "media".into(),
        accounts: platform::grpc::AccountScope::All,
    };
    let dying = replica(&stack.app.db, &stack.mock);
    let article: uuid::Uuid = id.parse().expect("uuid");
    let publish_again = tokio::spawn(async move {
        dying
            .act(
                &chen,
                article,
                content_svc::domain::review::Action::Publish,
                "",
                &[],
                Default::default(),
                None,
            )
            .await
    });
    // The send is under way once the article is `publishing` again (its job ids
    // forgotten); WeChat then takes 3 s to answer.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (state, job): (String, Option<String>) =
            sqlx::query_as("SELECT state::text, publish_id FROM articles WHERE id = $1::uuid")
                .bind(&id)
                .fetch_one(&stack.app.db)
                .await
                .expect("read");
        if state == "publishing" && job.is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never sent again");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    publish_again.abort();
    assert!(
        publish_again
            .await
            .expect_err("the replica died")
            .is_cancelled()
    );
    wechat_latency(&stack, 0);
    let state = || async {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT state, publish_id FROM articles WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&stack.app.db)
        .await
        .expect("read")
    };
    assert_eq!(state().await, ("publishing".to_owned(), None));
    sqlx::query(
        "UPDATE articles SET updated_at = now() - interval '10 seconds' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&stack.app.db)
    .await
    .expect("ten seconds pass");

    let swept = replica(&stack.app.db, &stack.mock)
        .fail_unknown_sends(std::time::Duration::from_secs(2), 10)
        .await
        .expect("swept");
    assert_eq!(swept, 1, "the send cut off is failed as of unknown outcome");
    assert_eq!(state().await.0, "failed");
    stack.app.stop().await;
}

#[tokio::test]
async fn a_drain_begun_mid_batch_puts_the_claims_not_yet_sent_back_on_the_schedule() {
    let (app, mock) = app_with_idle_scheduler().await;
    // Five due articles.
    let due: usize = 5;
    let ids = due_now(&app.db, due as i64).await;
    let articles = replica(&app.db, &mock);
    let submits = || mock.state().calls_to("/cgi-bin/freepublish/submit").len();

    // SIGTERM arrives while the first article is with WeChat: the drain is seen
    // once its submission was made.
    let claimed = articles
        .send_due_unless(10, || submits() > 0)
        .await
        .expect("tick");
    assert_eq!(claimed, due, "the whole batch was claimed before the drain");
    assert_eq!(submits(), 1, "nothing is sent once the drain began");
    let rows: Vec<(uuid::Uuid, String, i32, bool)> = sqlx::query_as(
        "SELECT id, state::text, attempts, publish_id IS NOT NULL FROM articles
          WHERE id = ANY($1) ORDER BY publish_id IS NOT NULL DESC",
    )
    .bind(&ids)
    .fetch_all(&app.db)
    .await
    .unwrap();
    // The send begun is finished: handed over, its job recorded for its verdict.
    assert_eq!(
        (rows[0].1.as_str(), rows[0].3),
        ("publishing", true),
        "{rows:?}"
    );
    for (id, state, attempts, job) in &rows[1..] {
        assert_eq!(state, "scheduled", "{id}: back on the schedule; {rows:?}");
        assert_eq!(*attempts, 0, "{id}: the claim's attempt given back");
        assert!(!job, "{id}: never handed to WeChat");
        let trail: Vec<(String, String)> = sqlx::query_as(
            "SELECT action, comment FROM article_audit WHERE article_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap();
        let actions: Vec<&str> = trail.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, ["claim", "release"], "{id}");
        assert!(trail[1].1.contains("stopping"), "{}", trail[1].1);
    }
    // Nothing for the stuck sweep to fail as outcome unknown, however late it looks.
    assert_eq!(
        articles
            .fail_unknown_sends(std::time::Duration::ZERO, 100)
            .await
            .expect("sweep"),
        0,
        "no claimed article is left publishing without a job"
    );

    // A drain begun before the tick claims nothing.
    assert_eq!(
        articles.send_due_unless(10, || true).await.expect("tick"),
        0
    );
    // Another replica, or the next start, sends the rest: each once.
    assert_eq!(
        replica(&app.db, &mock)
            .send_due(10)
            .await
            .expect("next start"),
        due - 1
    );
    assert_eq!(submits(), due, "each article sent exactly once");
    let handed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM articles
          WHERE id = ANY($1) AND state = 'publishing' AND publish_id IS NOT NULL",
    )
    .bind(&ids)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(handed, due as i64);
    app.stop().await;
}

#[tokio::test]
async fn a_send_of_unknown_outcome_that_cannot_be_failed_holds_back_none_of_the_others() {
    let (app, mock) = app_with_idle_scheduler().await;
    let stuck = in_publishing(&app.db, 25, "now() - interval '1 hour'", None).await;
    // The oldest, and first by id: found first however the sweep orders them.
    let unfailable = *stuck.iter().min().expect("arranged");
    sqlx::query("UPDATE articles SET updated_at = now() - interval '2 hours' WHERE id = $1")
        .bind(unfailable)
        .execute(&app.db)
        .await
        .expect("arranged");
    // Its every write fails, as a row the sweep can never fail would.
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN RAISE EXCEPTION 'this article cannot be written'; END $$;
         CREATE TRIGGER refuse_write BEFORE UPDATE ON articles FOR EACH ROW
           WHEN (OLD.id = '{unfailable}') EXECUTE FUNCTION refuse_write();"
    ))
    .execute(&app.db)
    .await
    .expect("arranged");

    let swept = replica(&app.db, &mock)
        .fail_unknown_sends(std::time::Duration::from_secs(15 * 60), 10)
        .await;

    let error = swept.expect_err("the article that cannot be failed is reported");
    assert!(error.to_string().contains("cannot be written"), "{error}");
    let left: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM articles WHERE state = 'publishing' ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        left,
        [unfailable],
        "every other send of unknown outcome is failed in the same sweep"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_draft_made_for_an_article_that_left_publishing_meanwhile_is_neither_kept_nor_sent() {
    let (app, mock) = app_with_idle_scheduler().await;
    let id = one_in_publishing(&app.db, None).await;
    // The test holds the article's row, so the send (its draft made outside any
    // transaction) stops when it comes to write the draft's media id.
    let (mut held, send) = send_waiting_on_held_row(&app.db, &mock, id).await;
    // Meanwhile it leaves publishing and is edited (a return for revision).
    sqlx::query("UPDATE articles SET state = 'draft', version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *held)
        .await
        .expect("returned");
    held.commit().await.expect("commit");
    send.await.expect("joined").expect("the send ends");

    let (state, media_id): (String, Option<String>) =
        sqlx::query_as("SELECT state, media_id FROM articles WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("read");
    // A draft kept here would be reused by its next send: the old version published.
    assert_eq!((state.as_str(), media_id.as_deref()), ("draft", None));
    assert!(
        mock.state()
            .calls_to("/cgi-bin/freepublish/submit")
            .is_empty(),
        "an article no longer publishing was sent"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_article_that_left_publishing_while_its_kept_draft_was_sent_is_not_handed_to_wechat() {
    let (app, mock) = app_with_idle_scheduler().await;
    // Its draft is already kept (a preview made it, or an earlier attempt): the send
    // reuses it, writing no media id that could notice the article moved.
    let id = one_in_publishing(&app.db, Some("DRAFT_KEPT")).await;
    // The test holds the article's row, so the send stops before it hands the draft
    // over.
    let (mut held, send) = send_waiting_on_held_row(&app.db, &mock, id).await;
    // Meanwhile it is cancelled (unedited: its version stays).
    sqlx::query("UPDATE articles SET state = 'approved' WHERE id = $1")
        .bind(id)
        .execute(&mut *held)
        .await
        .expect("cancelled");
    held.commit().await.expect("commit");
    send.await.expect("joined").expect("the send ends");

    assert!(
        mock.state()
            .calls_to("/cgi-bin/freepublish/submit")
            .is_empty(),
        "an article no longer publishing was sent"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM articles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("read");
    assert_eq!(state, "approved");
    app.stop().await;
}
