//! A use case holds at most one pooled connection at a time: one that waits for a
//! second while holding its first (a transaction, a row lock) deadlocks against
//! itself once the pool is busy, each waiting out the pool's acquire timeout.

use platform::testing::TestNats;
use proto::content::v1 as pb;
use wechat_sim::api_server::AccountKind;

use crate::articles::{next_event, publish, spawn_stack_with};
use crate::helpers::{PUBLISHER_KEY, WATER_EDITOR_KEY, by, spawn_app_with};

#[tokio::test]
async fn an_article_is_reviewed_previewed_and_published_on_a_pool_of_one_connection() {
    let stack = spawn_stack_with(
        AccountKind::Service,
        true,
        &[("DATABASE_MAX_CONNECTIONS", "1")],
    )
    .await;
    let mut client = stack.app.client.clone();
    stack
        .mock
        .state()
        .add_followers(wechat_sim::api_server::DEMO_APPID, ["o-director"])
        .expect("follower");

    // Submitted and approved three times: each screens the article under its lock.
    let id = stack.approved("停水通知", pb::Channel::Freepublish).await;
    client
        .preview_article(by(
            pb::PreviewArticleRequest {
                id: id.clone(),
                openids: vec!["o-director".into()],
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("previewed on one connection");
    let mut published = stack.watch("published").await;
    client
        .publish_article(by(publish(&id), PUBLISHER_KEY, "chen"))
        .await
        .expect("published on one connection");
    assert_eq!(next_event(&mut published).await.article_id, id);
    stack.app.stop().await;
}

#[tokio::test]
async fn a_directory_service_is_created_and_updated_on_a_pool_of_one_connection() {
    let app = spawn_app_with(TestNats::new(), &[("DATABASE_MAX_CONNECTIONS", "1")]).await;
    let mut client = app.client.clone();
    let service = pb::Service {
        account: "chenzhou".into(),
        category: "utilities".into(),
        name: "水费缴纳".into(),
        description: "自来水费在线缴纳".into(),
        how_to_apply: "输入户号查询账单并缴费".into(),
        url: "https://water.example.gov.cn/pay".into(),
        hours: "全天".into(),
        enabled: true,
        ..pb::Service::default()
    };
    // Each screens the texts citizens read, under the transaction that writes them.
    let created = client
        .create_service(by(service, WATER_EDITOR_KEY, "liu"))
        .await
        .expect("created on one connection")
        .into_inner();
    let updated = client
        .update_service(by(
            pb::Service {
                hours: "工作日 9:00-17:00".into(),
                ..created
            },
            WATER_EDITOR_KEY,
            "liu",
        ))
        .await
        .expect("updated on one connection")
        .into_inner();
    assert_eq!(updated.hours, "工作日 9:00-17:00");
    app.stop().await;
}
