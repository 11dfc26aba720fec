//! How long each account's oldest article has been in `publishing`, as
//! `content_publishing_oldest_age_seconds{account}` on the admin port: what alert
//! GovwxArticleStuckPublishing watches, for an article WeChat cannot be asked about
//! (or keeps calling still publishing), which no job gives up.

use std::time::Duration;

use platform::testing::TestNats;
use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{publish, spawn_stack_with};
use crate::helpers::{PUBLISHER_KEY, by, spawn_app_arranged};
use crate::reconcile::metrics_on;

const GAUGE: &str = "content_publishing_oldest_age_seconds";
const FREEPUBLISH_GET: &str = "/cgi-bin/freepublish/get";

/// The gauge's value for `account` in the `/metrics` text, if it has one.
fn age_of(metrics: &str, account: &str) -> Option<f64> {
    let labels = format!("account=\"{account}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{GAUGE}{{")) && l.contains(&labels))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Waits until the gauge of `account` on admin port `port` satisfies `wanted`, and
/// returns its value then; panics with the last value seen after 30 s.
async fn age_when(port: u16, account: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    let mut last = None;
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            last = age_of(&metrics_on(port).await, account);
            if let Some(age) = last.filter(|age| wanted(*age)) {
                return age;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{GAUGE} of {account}: last seen {last:?}"))
}

#[tokio::test]
async fn an_article_wechat_cannot_be_asked_about_shows_its_age_until_it_settles_then_zero() {
    // Asked about a second after the hand-over, and every quarter second read.
    let stack = spawn_stack_with(
        AccountKind::Service,
        false,
        &[("PUBLISH_RECONCILE_AFTER", "1s")],
    )
    .await;
    // Its job-finish callback is lost and every freepublish/get fails: it stays
    // `publishing`, as with the account's credentials gone.
    stack.wechat_busy(FREEPUBLISH_GET, 1_000_000);
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("handed to wechat");
    // Handed over two hours ago.
    let handed = sqlx::query(
        "UPDATE articles SET updated_at = now() - interval '2 hours'
          WHERE id = $1::uuid AND state = 'publishing' AND publish_id IS NOT NULL",
    )
    .bind(&id)
    .execute(&stack.app.db)
    .await
    .expect("hand-over dated");
    assert_eq!(handed.rows_affected(), 1, "the article waits for its job");

    let port = stack.app.admin_port;
    let age = age_when(port, "demo", |age| age >= 7000.0).await;
    assert!((7199.0..7230.0).contains(&age), "two hours: {age}");

    // WeChat answers again: "publishing" the first time, then published.
    stack.mock.state().clear_faults();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let state: String =
                sqlx::query_scalar("SELECT state FROM articles WHERE id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&stack.app.db)
                    .await
                    .expect("article read");
            if state == "published" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("settled from freepublish/get");
    // Shown as 0, not left at the age it had when it settled.
    assert_eq!(age_when(port, "demo", |age| age < 7000.0).await, 0.0);
}

#[tokio::test]
async fn the_oldest_article_in_publishing_counts_on_any_account_and_other_states_do_not() {
    let (app, ()) = spawn_app_arranged(
        TestNats::new(),
        // Nobody answers there: nothing here may reach WeChat.
        &[("WECHAT_API_BASE_URL", "http://127.0.0.1:9")],
        |db| async move {
            // `retired` is not in WECHAT_ACCOUNTS (its credentials were taken out):
            // its articles can never be asked about.
            for (account, state, hours) in [
                ("retired", "publishing", 3),
                ("retired", "publishing", 1),
                ("demo", "published", 5),
                ("demo", "failed", 4),
            ] {
                sqlx::query(
                    "INSERT INTO articles (id, account, department, author_id, state, title,
                                           body, publish_id, updated_at)
                     VALUES (gen_random_uuid(), $1, 'press', 'press:li', $2, '停水通知',
                             '<p>停水</p>', gen_random_uuid()::text,
                             now() - make_interval(hours => $3))",
                )
                .bind(account)
                .bind(state)
                .bind(hours)
                .execute(&db)
                .await
                .expect("arranged");
            }
        },
    )
    .await;

    let age = age_when(app.admin_port, "retired", |_| true).await;
    assert!((10_799.0..10_830.0).contains(&age), "three hours: {age}");
    assert_eq!(age_of(&metrics_on(app.admin_port).await, "demo"), None);
}
