//! Create calls retried with their `request_id` (a call whose caller gave up, its
//! deadline or a proxy's timeout, may have created its article, service or image):
//! the retry is answered with what the first call created, and nothing is created
//! twice; the same id for another request is refused, saying why.

use proto::content::v1 as pb;
use tonic::Code;

use crate::articles::create;
use crate::helpers::{AUTHOR_KEY, EDITOR_KEY, TestApp, WATER_EDITOR_KEY, authed, by, spawn_app};

fn with_id(mut request: pb::CreateArticleRequest, id: &str) -> pb::CreateArticleRequest {
    request.request_id = id.to_owned();
    request
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("counted")
}

#[tokio::test]
async fn an_article_created_three_times_with_one_request_id_at_once_is_one_article() {
    let app = spawn_app().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = with_id(
        create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
        &request_id,
    );
    let call = |key| {
        let mut client = app.client.clone();
        let request = by(request.clone(), key, "li");
        async move { client.create_article(request).await }
    };

    // The first call and its retries overlap (the caller gave up on the first),
    // one retry through another key of the same department.
    let (a, b, c) = tokio::join!(call(AUTHOR_KEY), call(AUTHOR_KEY), call(EDITOR_KEY));
    let ids: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| r.expect("each call is answered").into_inner().id)
        .collect();
    // And once more after the first committed.
    let again = call(AUTHOR_KEY).await.expect("answered").into_inner();

    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], ids[2]);
    assert_eq!(again.id, ids[0]);
    assert_eq!(again.content.expect("content").title, "停水通知");
    assert_eq!(count(&app, "SELECT count(*) FROM articles").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM article_versions").await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_request_id_used_again_for_another_request_is_refused_saying_what_used_it() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let request_id = uuid::Uuid::new_v4().to_string();
    let notice = || create("停水通知", "<p>本周六停水。</p>", pb::Channel::Freepublish);
    client
        .create_article(by(with_id(notice(), &request_id), AUTHOR_KEY, "li"))
        .await
        .expect("created");

    // The same id with another title.
    let other_title = client
        .create_article(by(
            with_id(
                create("停电通知", "<p>本周六停水。</p>", pb::Channel::Freepublish),
                &request_id,
            ),
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect_err("refused");
    assert_eq!(other_title.code(), Code::InvalidArgument);
    assert_eq!(
        other_title.message(),
        format!(
            "request_id {request_id} was already used by an earlier CreateArticle call with \
             other fields on this account; a new call needs a new request_id"
        )
    );
    // The same request from another department.
    let other_department = client
        .create_article(by(with_id(notice(), &request_id), WATER_EDITOR_KEY, "liu"))
        .await
        .expect_err("refused");
    assert_eq!(other_department.code(), Code::InvalidArgument);
    assert!(
        other_department
            .message()
            .contains("already used by another department's call"),
        "{}",
        other_department.message()
    );
    // The same id for an upload.
    let upload = client
        .upload_image(by(
            pb::UploadImageRequest {
                account: "demo".into(),
                data: b"\x89PNG\r\n\x1a\n-chart-".to_vec(),
                request_id: request_id.clone(),
            },
            AUTHOR_KEY,
            "li",
        ))
        .await
        .expect_err("refused");
    assert_eq!(upload.code(), Code::InvalidArgument);
    assert!(
        upload
            .message()
            .contains("already used by an earlier CreateArticle call on this account"),
        "{}",
        upload.message()
    );
    // An id no caller would make.
    let long = client
        .create_article(by(with_id(notice(), &"x".repeat(65)), AUTHOR_KEY, "li"))
        .await
        .expect_err("refused");
    assert_eq!(long.code(), Code::InvalidArgument);
    assert_eq!(long.message(), "request_id must be at most 64 characters");

    assert_eq!(count(&app, "SELECT count(*) FROM articles").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM article_images").await, 0);
    app.stop().await;
}

fn water_bill(request_id: &str) -> pb::Service {
    pb::Service {
        account: "chenzhou".into(),
        category: "utilities".into(),
        name: "水费缴纳".into(),
        description: "自来水费在线缴纳".into(),
        url: "https://water.example.gov.cn/pay".into(),
        enabled: true,
        request_id: request_id.into(),
        ..pb::Service::default()
    }
}

#[tokio::test]
async fn a_service_created_twice_with_one_request_id_is_one_service_audited_and_announced_once() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let request_id = uuid::Uuid::new_v4().to_string();

    let first = client
        .create_service(by(water_bill(&request_id), WATER_EDITOR_KEY, "liu"))
        .await
        .expect("created")
        .into_inner();
    let retry = client
        .create_service(by(water_bill(&request_id), WATER_EDITOR_KEY, "liu"))
        .await
        .expect("the retry is answered")
        .into_inner();

    assert_eq!(retry.id, first.id);
    assert_eq!(retry.name, "水费缴纳");
    assert!(retry.request_id.is_empty(), "never answered");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM directory_entries WHERE name = '水费缴纳'"
        )
        .await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM directory_audit").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE subject = 'content.chenzhou.directory.created'"
        )
        .await,
        1
    );
    // Without an id, a second call is a second service (as before).
    client
        .create_service(by(water_bill(""), WATER_EDITOR_KEY, "liu"))
        .await
        .expect("created");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM directory_entries WHERE name = '水费缴纳'"
        )
        .await,
        2
    );

    // Deleted since: the retry cannot answer it, and says so.
    client
        .delete_service(authed(
            pb::ServiceRef {
                id: first.id.clone(),
            },
            WATER_EDITOR_KEY,
        ))
        .await
        .expect("deleted");
    let gone = client
        .create_service(by(water_bill(&request_id), WATER_EDITOR_KEY, "liu"))
        .await
        .expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        gone.message(),
        format!(
            "the service {} that request_id {request_id} created has been deleted since",
            first.id
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn an_image_uploaded_twice_with_one_request_id_is_stored_once() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let upload = |request_id: &str| {
        by(
            pb::UploadImageRequest {
                account: "demo".into(),
                data: b"\x89PNG\r\n\x1a\n-chart-of-the-pipes-".to_vec(),
                request_id: request_id.into(),
            },
            AUTHOR_KEY,
            "li",
        )
    };
    let request_id = uuid::Uuid::new_v4().to_string();

    let first = client
        .upload_image(upload(&request_id))
        .await
        .expect("stored")
        .into_inner();
    let retry = client
        .upload_image(upload(&request_id))
        .await
        .expect("the retry is answered")
        .into_inner();

    assert_eq!(retry.id, first.id);
    assert_eq!(retry.src, format!("image:{}", first.id));
    assert_eq!(count(&app, "SELECT count(*) FROM article_images").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn request_ids_past_their_thirty_days_are_forgotten_by_the_scheduler_and_newer_ones_kept() {
    let (app, ()) = crate::helpers::spawn_app_arranged(
        platform::testing::TestNats::new(),
        &[("SCHEDULER_INTERVAL", "100ms")],
        |db| async move {
            for (request_id, age) in [("old", "31 days"), ("recent", "29 days")] {
                sqlx::query(
                    "INSERT INTO create_requests
                         (account, request_id, kind, department, body_sha256, result_id, created_at)
                     VALUES ('demo', $1, 'article', 'press', sha256(''::bytea), $2, now() - $3::interval)",
                )
                .bind(request_id)
                .bind(uuid::Uuid::now_v7())
                .bind(age)
                .execute(&db)
                .await
                .expect("arranged");
            }
        },
    )
    .await;
    // The scheduler's first tick prunes; wait for it (bounded).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let left: Vec<String> =
            sqlx::query_scalar("SELECT request_id FROM create_requests ORDER BY request_id")
                .fetch_all(&app.db)
                .await
                .expect("read");
        if left == ["recent"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pruned: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;
}
