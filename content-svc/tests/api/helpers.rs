//! `spawn_app()`: content-svc in-process on port 0, with its own database and
//! NATS namespace, and a gRPC client pointed at it.

use content_svc::{Application, Config};
use platform::testing::{TestDb, TestNats, service_env};
use proto::content::v1 as pb;
use proto::content::v1::ListServicesRequest;
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::events::v1 as ev;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::articles::{Stack, next_event, publish};

pub const ADMIN_KEY: &str = "city-office-admin-key";
pub const VIEWER_KEY: &str = "transport-viewer-key";
pub const EDITOR_KEY: &str = "press-editor-key-01";
/// A county (`yizhang`) office's key: its own account only.
pub const COUNTY_KEY: &str = "county-viewer-key-01";
/// A county (`yizhang`) new-media office's reviewer: its own account only.
pub const COUNTY_REVIEWER_KEY: &str = "county-reviewer-key-1";
/// A county (`yizhang`) office's admin: its own account only.
pub const COUNTY_ADMIN_KEY: &str = "county-admin-key-0001";

/// The press office's editors (who may also review, so an author can try to).
pub const AUTHOR_KEY: &str = "press-author-key-01";
/// Another department's editor (the water bureau).
pub const WATER_EDITOR_KEY: &str = "water-editor-key-01";
/// The new-media office: first and second review.
pub const REVIEWER_KEY: &str = "media-reviewer-key-01";
/// The new-media office's publisher: final approval, schedule, publish.
pub const PUBLISHER_KEY: &str = "media-publisher-key-01";
/// The county's publisher, of a department named as the city's publisher's is.
pub const COUNTY_MEDIA_PUBLISHER_KEY: &str = "county-media-publisher-1";

const API_KEYS: &str = "city-office:admin:city-office-admin-key,\
                        transport:viewer:transport-viewer-key,\
                        press:editor:press-editor-key-01,\
                        press:editor+reviewer:press-author-key-01,\
                        media:reviewer:media-reviewer-key-01,\
                        water:editor:water-editor-key-01,\
                        media:publisher:media-publisher-key-01,\
                        yizhang-office@yizhang:viewer:county-viewer-key-01,\
                        yizhang-media@yizhang:reviewer+publisher:county-reviewer-key-1,\
                        yizhang-admin@yizhang:admin:county-admin-key-0001,\
                        media@yizhang:publisher:county-media-publisher-1";

/// A running content-svc. Dropping it stops the server and then removes the
/// test database and streams (the fixtures are the last fields).
pub struct TestApp {
    pub client: ContentServiceClient<Channel>,
    pub channel: Channel,
    /// A pool on the service's database, for arranging rows with SQL.
    pub db: PgPool,
    pub admin_port: u16,
    /// The service hall's HTTP port.
    pub hall_port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _nats: TestNats,
    _test_db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestNats::new(), &[]).await
}

/// content-svc on `test_nats` with extra settings (e.g. the mock WeChat's URL).
pub async fn spawn_app_with(test_nats: TestNats, extra: &[(&str, &str)]) -> TestApp {
    let (app, ()) = spawn_app_arranged(test_nats, extra, |_| async {}).await;
    app
}

/// content-svc on a database migrated and then arranged by `arrange` (rows an
/// earlier release left, a lock another replica holds) before the service builds;
/// returns what `arrange` returned too.
pub async fn spawn_app_arranged<T, F, Fut>(
    test_nats: TestNats,
    extra: &[(&str, &str)],
    arrange: F,
) -> (TestApp, T)
where
    F: FnOnce(PgPool) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let test_db = TestDb::new("content");
    let mut env = service_env(
        &test_db,
        &test_nats,
        [("API_KEYS", API_KEYS), ("HALL_ADDR", "127.0.0.1:0")],
    );
    for (key, value) in extra {
        env = env.with(key, *value);
    }
    let config = Config::from_env(&env).expect("test configuration is valid");
    content_svc::startup::migrate(&config)
        .await
        .expect("migrations apply to the test database");
    let arranging = PgPool::connect(&test_db.url())
        .await
        .expect("test database exists after the migrations");
    let arranged = arrange(arranging).await;
    let app = Application::build(config)
        .await
        .expect("content-svc builds against the test database and NATS");
    let grpc_port = app.grpc_port();
    let admin_port = app.admin_port();
    let hall_port = app.hall_port();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("gRPC port accepts connections");
    let db = PgPool::connect(&test_db.url())
        .await
        .expect("test database exists after build");
    let app = TestApp {
        client: ContentServiceClient::new(channel.clone()),
        channel,
        db,
        admin_port,
        hall_port,
        shutdown: Some(shutdown),
        server: Some(server),
        _nats: test_nats,
        _test_db: test_db,
    };
    (app, arranged)
}

impl TestApp {
    /// Stops the service and waits until it has drained.
    pub async fn stop(mut self) {
        self.db.close().await;
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task did not panic")
                .expect("server stopped cleanly");
        }
    }

    /// Adds a directory entry with SQL, as the later write API will.
    pub async fn insert_entry(&self, entry: Entry<'_>) {
        sqlx::query(
            "INSERT INTO directory_entries
                 (id, account, category, name, url, description, department, position)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(entry.account)
        .bind(entry.category)
        .bind(entry.name)
        .bind(format!("https://example.gov.cn/{}", entry.name))
        .bind(format!("{} online", entry.name))
        .bind(entry.department)
        .bind(entry.position)
        .execute(&self.db)
        .await
        .expect("entry inserted");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that failed before stop(): end the server so the fixtures can go.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A directory entry to arrange.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub account: &'a str,
    pub category: &'a str,
    pub name: &'a str,
    pub department: &'a str,
    pub position: i32,
}

/// A request by a named person (`x-actor`) with `key`.
pub fn by<T>(message: T, key: &str, person: &str) -> tonic::Request<T> {
    let mut request = authed(message, key);
    request
        .metadata_mut()
        .insert("x-actor", person.parse().expect("ascii name"));
    request
}

/// A request carrying `authorization: Bearer {key}`.
pub fn authed<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii key"),
    );
    request
}

/// A `ListServices` request; an empty category lists every category.
pub fn list(account: &str, category: &str) -> ListServicesRequest {
    ListServicesRequest {
        account: account.to_owned(),
        category: category.to_owned(),
    }
}

/// WeChat's mass send, as the mock records its calls.
pub const SENDALL: &str = "/cgi-bin/message/mass/sendall";
/// WeChat's free publication's submission, as the mock records its calls.
pub const SUBMIT: &str = "/cgi-bin/freepublish/submit";

/// An article as the publisher 陈 reads it.
pub async fn detail(stack: &Stack, id: &str) -> pb::ArticleDetail {
    detail_as(stack, id, PUBLISHER_KEY, "chen").await
}

/// Reads one column of article `id` as text.
pub async fn column(stack: &Stack, id: &str, name: &str) -> Option<String> {
    sqlx::query_scalar(&format!(
        "SELECT {name}::text FROM articles WHERE id = $1::uuid"
    ))
    .bind(id)
    .fetch_one(&stack.app.db)
    .await
    .expect("article read")
}

/// An article as `person` with `key` reads it.
pub async fn detail_as(stack: &Stack, id: &str, key: &str, person: &str) -> pb::ArticleDetail {
    stack
        .app
        .client
        .clone()
        .get_article(by(pb::GetArticleRequest { id: id.into() }, key, person))
        .await
        .expect("read")
        .into_inner()
}

/// Approves an article for each of `titles` on `channel` and has 陈 compose them,
/// in that order, into one message: the message's id and the articles'.
pub async fn approved_message<const N: usize>(
    stack: &Stack,
    titles: [&str; N],
    channel: pb::Channel,
) -> (String, [String; N]) {
    let mut ids = Vec::with_capacity(N);
    for title in titles {
        ids.push(stack.approved(title, channel).await);
    }
    let message = stack
        .app
        .client
        .clone()
        .compose_message(by(
            pb::ComposeMessageRequest {
                account: "demo".into(),
                message_id: String::new(),
                article_ids: ids.clone(),
            },
            PUBLISHER_KEY,
            "chen",
        ))
        .await
        .expect("composed")
        .into_inner();
    let ids = ids.try_into().expect("an article for each title");
    (message.id, ids)
}

/// A ReturnForRevision of `id` for `reason`, whatever its version.
pub fn return_for(id: &str, reason: &str) -> pb::ReturnForRevisionRequest {
    pb::ReturnForRevisionRequest {
        id: id.into(),
        reason: reason.into(),
        version: 0,
    }
}

/// PublishArticle's request for a send again on the publisher's word that the
/// followers did not get the last send, whose outcome is unknown.
pub fn confirmed(id: &str) -> pb::PublishArticleRequest {
    pb::PublishArticleRequest {
        confirm_possible_duplicate: true,
        ..publish(id)
    }
}

/// Fails `ids` as of unknown outcome the way the stuck-send sweep does: the replica
/// handing them to WeChat stopped after its claim an hour ago, no job recorded, so
/// WeChat may have published them. Returns the first `failed` event.
pub async fn failed_by_the_stuck_send_sweep(stack: &Stack, ids: &[&str]) -> ev::ArticleChanged {
    let mut failed = stack.watch("failed").await;
    sqlx::query(
        "UPDATE articles SET state = 'publishing', updated_at = now() - interval '1 hour'
          WHERE id = ANY($1::uuid[])",
    )
    .bind(ids)
    .execute(&stack.app.db)
    .await
    .expect("arranged");
    let event = next_event(&mut failed).await;
    assert!(
        event.reason.contains("outcome is unknown"),
        "{}",
        event.reason
    );
    event
}

/// 陈 publishes the free publication `id` while WeChat takes its submission but
/// loses the answer: it fails at once as possibly published (a submission has no
/// key a retry could go under). Returns its `failed` event.
pub async fn lost_free_publication(stack: &Stack, id: &str) -> ev::ArticleChanged {
    stack.wechat_loses_answer(SUBMIT);
    let mut failed = stack.watch("failed").await;
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(id), PUBLISHER_KEY, "chen"))
        .await
        .expect("answered");
    next_event(&mut failed).await
}

/// 陈 publishes the mass send `headline` while WeChat takes it but loses the answer:
/// the send waits to retry under the same clientmsgid, its outcome unknown. Returns
/// PublishArticle's answer.
pub async fn lost_mass_send(stack: &Stack, headline: &str) -> pb::Article {
    stack.wechat_loses_answer(SENDALL);
    stack
        .app
        .client
        .clone()
        .publish_article(by(publish(headline), PUBLISHER_KEY, "chen"))
        .await
        .expect("accepted; the send is retried")
        .into_inner()
}

/// WeChat's minute for a repeated clientmsgid passes (the mock ages the keys it
/// holds): a send again under the same key now meets 45065, naming the job WeChat
/// took, instead of 45066.
pub fn clientmsgid_minute_passes(stack: &Stack) {
    stack
        .mock
        .state()
        .inject(&wechat_sim::api_server::FaultRequest {
            age_client_msg_ids_secs: Some(60),
            ..Default::default()
        })
        .expect("sim aged");
}

/// Makes the waiting retry of `id` due now, for the scheduler to take.
pub async fn retry_due_now(stack: &Stack, id: &str) {
    sqlx::query("UPDATE articles SET next_attempt_at = now() WHERE id = $1::uuid")
        .bind(id)
        .execute(&stack.app.db)
        .await
        .expect("retry due");
}

/// WeChat's errcodes for the mass sends so far, in order.
pub fn sendall_errcodes(stack: &Stack) -> Vec<i64> {
    stack
        .mock
        .state()
        .calls_to(SENDALL)
        .iter()
        .map(|call| call.errcode)
        .collect()
}

/// Makes every answer of the mock WeChat take `ms` (0: answers at once again).
pub fn wechat_latency(stack: &Stack, ms: u64) {
    stack
        .mock
        .state()
        .inject(&wechat_sim::api_server::FaultRequest {
            latency_ms: Some(ms),
            ..Default::default()
        })
        .expect("fault injected");
}

/// 陈 previews article `id` to the director (follower `o-director`) in the
/// background, so the test can act while the preview is under way.
pub fn preview_for_the_director(
    client: &ContentServiceClient<Channel>,
    id: &str,
) -> JoinHandle<Result<tonic::Response<pb::PreviewArticleResponse>, tonic::Status>> {
    let mut previewing = client.clone();
    let previewed = id.to_owned();
    tokio::spawn(async move {
        previewing
            .preview_article(by(
                pb::PreviewArticleRequest {
                    id: previewed,
                    openids: vec!["o-director".into()],
                },
                PUBLISHER_KEY,
                "chen",
            ))
            .await
    })
}
