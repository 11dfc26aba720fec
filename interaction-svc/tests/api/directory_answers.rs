//! What a directory answer does besides the card: a follow-up the directory can
//! answer still reaches the citizen's ticket being handled, and a category button
//! with no services still answers.

use async_nats::jetstream;
use chrono::Utc;
use prost::Message as _;
use proto::events::v1::{DirectoryServiceChanged, EventHeader, PassiveReply, passive_reply};
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Citizen, eventually, text_of};
use crate::helpers::{ACCOUNT, TestApp, spawn_app};

/// Publishes one housing-fund service on CONTENT as content-svc's relay does, and
/// waits until the reply path answers from it.
async fn publish_fund_withdrawal(app: &TestApp) {
    let event = DirectoryServiceChanged {
        header: Some(EventHeader {
            event_id: uuid::Uuid::now_v7().to_string(),
            account: ACCOUNT.into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: Utc::now().timestamp(),
                nanos: 0,
            }),
        }),
        change: "created".into(),
        service_id: uuid::Uuid::now_v7().to_string(),
        category: "housing_fund".into(),
        name: "公积金提取".into(),
        department: "housing-fund".into(),
        description: "购房、租房、退休等情形提取住房公积金".into(),
        url: "https://gjj.lincheng.example.gov.cn/tq".into(),
        keywords: vec!["提取公积金".into()],
        accounts: vec![ACCOUNT.into()],
        enabled: true,
        actor: "seed".into(),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    let header = event.header.as_ref().unwrap();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        header.event_id.as_str(),
    );
    let subject = app
        .namespace()
        .subject(&format!("content.{ACCOUNT}.directory.created"));
    jetstream::new(app.nats().await)
        .publish_with_headers(subject, headers, event.encode_to_vec().into())
        .await
        .expect("publish sent")
        .await
        .expect("JetStream acked");
    let nats = app.nats().await;
    let mut probe = Citizen::new();
    let nats = &nats;
    eventually("the directory answers", || {
        let question = probe.says("公积金怎么提取");
        async move { card_title(&app.passive_reply(nats, &question).await) }
    })
    .await;
}

/// The first news article's title of a passive reply, if it is news.
fn card_title(reply: &PassiveReply) -> Option<String> {
    match &reply.body {
        Some(passive_reply::Body::News(news)) => news.articles.first().map(|a| a.title.clone()),
        _ => None,
    }
}

async fn thread_of(app: &TestApp, ticket: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT body FROM ticket_messages WHERE ticket_id = $1 ORDER BY at, id")
        .bind(ticket)
        .fetch_all(&app.db)
        .await
        .expect("read thread")
}

async fn tickets_of(app: &TestApp, openid: &str) -> Vec<(uuid::Uuid, String)> {
    sqlx::query_as("SELECT id, state FROM tickets WHERE account = $1 AND openid = $2")
        .bind(ACCOUNT)
        .bind(openid)
        .fetch_all(&app.db)
        .await
        .expect("read tickets")
}

#[tokio::test]
async fn a_follow_up_the_directory_answers_still_joins_the_citizens_active_ticket() {
    let app = spawn_app().await;
    publish_fund_withdrawal(&app).await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    // The department has answered the citizen's question about withdrawing.
    let ticket = app
        .insert_citizen_ticket(&citizen.openid, "housing-fund", "answered", 60)
        .await;

    let follow_up = citizen.says("公积金提取需要购房合同吗");
    // The citizen still gets the service's card at once.
    let reply = app.passive_reply(&nats, &follow_up).await;
    assert_eq!(
        card_title(&reply).as_deref(),
        Some("公积金提取"),
        "{reply:?}"
    );
    app.publish(&follow_up).await;
    let joined = eventually("the follow-up joins the ticket", || async {
        let thread = thread_of(&app, ticket).await;
        (!thread.is_empty()).then_some(thread)
    })
    .await;
    assert_eq!(joined, ["公积金提取需要购房合同吗"]);
    assert_eq!(
        tickets_of(&app, &citizen.openid).await,
        [(ticket, "acknowledged".to_owned())],
        "no second ticket; the department is needed again"
    );

    // Saying the card did not help adds only that: the question is there already.
    app.publish(&citizen.says("没用")).await;
    let thread = eventually("the second follow-up joins", || async {
        let thread = thread_of(&app, ticket).await;
        (thread.len() >= 2).then_some(thread)
    })
    .await;
    assert_eq!(thread, ["公积金提取需要购房合同吗", "没用"]);
}

#[tokio::test]
async fn a_click_on_a_category_without_services_still_answers() {
    let app = spawn_app().await;
    publish_fund_withdrawal(&app).await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();

    let click = citizen.does(CitizenAction::Click {
        key: "category:weather".into(),
    });
    let reply = app.passive_reply(&nats, &click).await;

    let text = text_of(&reply).unwrap_or_else(|| panic!("a text answer: {reply:?}"));
    assert!(
        text.contains("办事大厅") && text.contains("12345"),
        "{text}"
    );
    // It opens nothing.
    app.publish(&click).await;
    app.publish(&citizen.says("公积金怎么提取")).await;
    eventually("the later question is applied", || async {
        let announced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE subject LIKE 'interaction.%.autoreply.%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        // The card for the question, applied after the click (the probe only asked
        // the reply path, which records nothing).
        (announced >= 1).then_some(())
    })
    .await;
    assert!(tickets_of(&app, &citizen.openid).await.is_empty());
}
