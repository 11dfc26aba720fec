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

use crate::helpers::spawn_app_with;

/// One replica's use cases over the shared database, with its own API client.
fn replica(db: &sqlx::PgPool, mock: &MockWechat) -> Articles {
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
        Publisher::new(HashMap::from([(
            "demo".to_owned(),
            (client, AccountKind::Service),
        )])),
        content_svc::domain::search::Segmenter::default(),
    )
}

#[tokio::test]
async fn articles_due_in_the_same_second_are_each_sent_once_by_racing_replicas() {
    // The service's own scheduler first ticks an interval after start, so with an
    // hour it stays out of the race: only the three replicas below claim, however
    // long their sends take. (Its first tick used to come at start, racing this
    // test's insert: a claim by it, with no working WeChat, failed the test once.)
    let app = spawn_app_with(TestNats::new(), &[("SCHEDULER_INTERVAL", "1h")]).await;
    let mock = MockWechat::start(SimConfig::default())
        .await
        .expect("mock starts");
    // Thirty approved articles, all due now (arranged with SQL: the review path has
    // its own tests).
    let due: i64 = 30;
    sqlx::query(
        "INSERT INTO articles (id, account, department, author_id, state, title, body, cover_media_id, scheduled_for)
         SELECT gen_random_uuid(), 'demo', 'press', 'press:li', 'scheduled', '停水通知 ' || n, '<p>停水</p>', 'MEDIA_COVER', now()
           FROM generate_series(1, $1) AS n",
    )
    .bind(due)
    .execute(&app.db)
    .await
    .expect("arranged");

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
