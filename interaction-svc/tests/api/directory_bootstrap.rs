//! The directory bootstrap from content-svc (what the CONTENT stream's 30 days no
//! longer hold): a real content-svc in-process on its **own** NATS namespace, so its
//! directory events never reach interaction-svc; only its gRPC `ListServices` /
//! `GetService` do.

use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use interaction_svc::app::directory::bootstrap;
use interaction_svc::config::DirectorySyncConfig;
use interaction_svc::content::ContentDirectory;
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::content::v1 as pb;
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::events::v1::{DirectoryServiceChanged, EventHeader, PassiveReply, passive_reply};
use tonic::transport::Channel;

use crate::citizen::{Citizen, eventually};
use crate::helpers::{ACCOUNT, TestApp, spawn_app_with};

const CONTENT_ADMIN_KEY: &str = "content-admin-key-01";
/// interaction-svc's key in content-svc's `API_KEYS`: a viewer of every account.
const READER_KEY: &str = "interaction-reader-key-01";

/// content-svc in-process on port 0 with its own database and NATS namespace.
struct ContentSvc {
    grpc_port: u16,
    client: ContentServiceClient<Channel>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _db: TestDb,
    _nats: TestNats,
}

async fn spawn_content() -> ContentSvc {
    spawn_content_on("127.0.0.1:0").await
}

/// content-svc serving gRPC on `grpc_addr`.
async fn spawn_content_on(grpc_addr: &str) -> ContentSvc {
    let db = TestDb::new("content");
    let nats = TestNats::new();
    let keys = format!("city-office:admin:{CONTENT_ADMIN_KEY},interaction-svc:viewer:{READER_KEY}");
    let env = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", keys.as_str()),
            ("HALL_ADDR", "127.0.0.1:0"),
            ("GRPC_ADDR", grpc_addr),
        ],
    );
    let config = content_svc::Config::from_env(&env).expect("content-svc test configuration");
    let app = content_svc::Application::build(config)
        .await
        .expect("content-svc builds");
    let grpc_port = app.grpc_port();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .expect("content-svc's gRPC port accepts connections");
    ContentSvc {
        grpc_port,
        client: ContentServiceClient::new(channel),
        shutdown: Some(shutdown),
        server: Some(server),
        _db: db,
        _nats: nats,
    }
}

fn as_admin<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {CONTENT_ADMIN_KEY}").parse().unwrap(),
    );
    request
}

fn fund_withdrawal() -> pb::Service {
    pb::Service {
        account: ACCOUNT.into(),
        category: "housing_fund".into(),
        name: "公积金提取".into(),
        department: "housing-fund".into(),
        description: "购房、租房、退休等情形提取住房公积金。".into(),
        url: "https://gjj.example.gov.cn/tq".into(),
        keywords: vec!["提取公积金".into(), "取公积金".into()],
        synonyms: vec!["住房公积金提取".into()],
        enabled: true,
        ..pb::Service::default()
    }
}

fn water_bill() -> pb::Service {
    pb::Service {
        account: ACCOUNT.into(),
        category: "utilities".into(),
        name: "水费缴纳".into(),
        department: "water".into(),
        description: "自来水费在线缴纳".into(),
        url: "https://water.example.gov.cn/pay".into(),
        keywords: vec!["水费".into(), "交水费".into()],
        enabled: true,
        ..pb::Service::default()
    }
}

impl ContentSvc {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    async fn create(&self, service: pb::Service) -> pb::Service {
        self.client
            .clone()
            .create_service(as_admin(service))
            .await
            .expect("content-svc creates the service")
            .into_inner()
    }

    /// What interaction-svc reads content-svc with.
    fn directory(&self) -> ContentDirectory {
        let config = DirectorySyncConfig {
            content_url: self.url(),
            api_key: READER_KEY.to_owned().into(),
            interval: Duration::from_secs(3600),
        };
        ContentDirectory::new(&config).expect("a valid client")
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("content-svc task").expect("clean stop");
        }
    }
}

/// interaction-svc answering for [`ACCOUNT`], plus `extra` settings.
async fn spawn_interaction(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("WECHAT_ACCOUNTS", ACCOUNT),
        ("WECHAT_CHENZHOU_APPID", "wx00000000000000aa"),
        ("WECHAT_CHENZHOU_SECRET", "not-used-here"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn card_of(reply: &PassiveReply) -> Option<(String, String)> {
    match &reply.body {
        Some(passive_reply::Body::News(news)) => news
            .articles
            .first()
            .map(|a| (a.title.clone(), a.url.clone())),
        _ => None,
    }
}

impl TestApp {
    /// The card the reply path gives a new citizen's `question`, if any.
    async fn card_for(&self, question: &str) -> Option<(String, String)> {
        let nats = self.nats().await;
        let reply = self
            .passive_reply(&nats, &Citizen::new().says(question))
            .await;
        card_of(&reply)
    }

    /// Waits until the reply path answers `question` with `card`.
    async fn await_card(&self, question: &str, card: (&str, &str)) {
        let want = (card.0.to_owned(), card.1.to_owned());
        eventually(&format!("{question} answered with {card:?}"), || async {
            (self.card_for(question).await.as_ref() == Some(&want)).then_some(())
        })
        .await;
    }

    /// The replica's row of `id`: url, enabled, deleted.
    async fn replica(&self, id: &str) -> Option<(String, bool, bool)> {
        sqlx::query_as("SELECT url, enabled, deleted FROM directory_services WHERE id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_optional(&self.db)
            .await
            .unwrap()
    }

    /// Publishes on this service's CONTENT stream the change content-svc would
    /// announce for `service` at `at`.
    async fn publish_change(&self, service: &pb::Service, at: chrono::DateTime<Utc>) {
        let event = DirectoryServiceChanged {
            header: Some(EventHeader {
                event_id: uuid::Uuid::now_v7().to_string(),
                account: service.account.clone(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: at.timestamp_subsec_nanos() as i32,
                }),
            }),
            change: "updated".into(),
            service_id: service.id.clone(),
            category: service.category.clone(),
            name: service.name.clone(),
            department: service.department.clone(),
            description: service.description.clone(),
            url: service.url.clone(),
            keywords: service.keywords.clone(),
            synonyms: service.synonyms.clone(),
            accounts: vec![service.account.clone()],
            enabled: service.enabled,
            actor: "test".into(),
        };
        let event_id = event.header.as_ref().unwrap().event_id.clone();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id.as_str());
        let subject = self
            .namespace()
            .subject(&format!("content.{}.directory.updated", service.account));
        jetstream::new(self.nats().await)
            .publish_with_headers(subject, headers, event.encode_to_vec().into())
            .await
            .expect("publish sent")
            .await
            .expect("JetStream acked");
    }

    /// The `/metrics` text of the admin port.
    async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.admin_port))
            .await
            .expect("admin port answers")
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_service_created_before_the_install_is_bootstrapped_and_answers_a_citizen() {
    let content = spawn_content().await;
    let created = content.create(fund_withdrawal()).await;
    let url = content.url();

    // interaction-svc on another NATS namespace: content-svc's event never reaches it.
    let app = spawn_interaction(&[
        ("CONTENT_GRPC_URL", url.as_str()),
        ("CONTENT_API_KEY", READER_KEY),
    ])
    .await;

    app.await_card(
        "公积金怎么提取",
        ("公积金提取", "https://gjj.example.gov.cn/tq"),
    )
    .await;
    assert_eq!(
        app.replica(&created.id).await,
        Some(("https://gjj.example.gov.cn/tq".to_owned(), true, false))
    );
    eventually("the pass is counted", || async {
        (sync_passes(&app.metrics().await, "ok")? > 0.0).then_some(())
    })
    .await;
    app.stop().await;
    content.stop().await;
}

#[tokio::test]
async fn a_replica_entry_newer_than_the_listing_is_not_overwritten() {
    let content = spawn_content().await;
    let fund = content.create(fund_withdrawal()).await;
    let water = content.create(water_bill()).await;
    let app = spawn_interaction(&[]).await;

    // A later change, applied here from CONTENT, moved the service to another page.
    let newer = pb::Service {
        url: "https://gjj.example.gov.cn/tq/v2".into(),
        ..fund.clone()
    };
    app.publish_change(&newer, Utc::now()).await;
    app.await_card(
        "公积金怎么提取",
        ("公积金提取", "https://gjj.example.gov.cn/tq/v2"),
    )
    .await;

    let report = bootstrap(&app.db, &content.directory(), &[ACCOUNT.to_owned()])
        .await
        .expect("the pass succeeds");
    assert_eq!(report.listed, 2);
    assert_eq!(
        report.inserted, 1,
        "only the unknown water bill: {report:?}"
    );
    assert_eq!(report.updated + report.retired, 0, "{report:?}");
    assert_eq!(
        app.replica(&fund.id).await,
        Some(("https://gjj.example.gov.cn/tq/v2".to_owned(), true, false))
    );
    assert_eq!(
        app.replica(&water.id).await,
        Some(("https://water.example.gov.cn/pay".to_owned(), true, false))
    );

    // Another pass changes nothing.
    let again = bootstrap(&app.db, &content.directory(), &[ACCOUNT.to_owned()])
        .await
        .unwrap();
    assert!(!again.changed(), "{again:?}");
    app.stop().await;
    content.stop().await;
}

#[tokio::test]
async fn services_deleted_or_disabled_while_their_events_were_missed_stop_answering() {
    let content = spawn_content().await;
    let fund = content.create(fund_withdrawal()).await;
    let water = content.create(water_bill()).await;
    let app = spawn_interaction(&[]).await;
    let directory = content.directory();
    let accounts = [ACCOUNT.to_owned()];
    let first = bootstrap(&app.db, &directory, &accounts).await.unwrap();
    assert_eq!(first.inserted, 2, "{first:?}");

    // content-svc deletes one and disables the other; interaction-svc sees neither event.
    content
        .client
        .clone()
        .delete_service(as_admin(pb::ServiceRef {
            id: fund.id.clone(),
        }))
        .await
        .expect("deleted");
    content
        .client
        .clone()
        .update_service(as_admin(pb::Service {
            enabled: false,
            ..water.clone()
        }))
        .await
        .expect("disabled");

    let report = bootstrap(&app.db, &directory, &accounts).await.unwrap();
    assert_eq!((report.retired, report.updated), (1, 1), "{report:?}");
    assert_eq!(
        app.replica(&fund.id).await,
        Some(("https://gjj.example.gov.cn/tq".to_owned(), false, true))
    );
    assert_eq!(
        app.replica(&water.id).await,
        Some(("https://water.example.gov.cn/pay".to_owned(), false, false))
    );
    app.stop().await;
    content.stop().await;
}

#[tokio::test]
async fn the_bootstrap_retries_until_content_svc_answers_and_the_service_starts_meanwhile() {
    // A port nothing listens on yet: content-svc is down at interaction-svc's start.
    // Held bound (not listening, so connecting is refused) until content-svc takes it:
    // a port dropped here could be handed to a parallel test meanwhile.
    let (reserved, addr) = refusing_port();
    let url = format!("http://{addr}");
    let app = spawn_interaction(&[
        ("CONTENT_GRPC_URL", url.as_str()),
        ("CONTENT_API_KEY", READER_KEY),
        // Retries back off at most to the interval: 2 s apart at worst here, however
        // long content-svc takes to start on a loaded machine.
        ("DIRECTORY_SYNC_INTERVAL", "2s"),
    ])
    .await;
    // Ready although the bootstrap cannot reach content-svc.
    let readyz = format!("http://127.0.0.1:{}/readyz", app.admin_port);
    eventually("ready without content-svc", || async {
        let ready = reqwest::get(&readyz).await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    eventually("a failed pass is counted", || async {
        (sync_passes(&app.metrics().await, "failed")? > 0.0).then_some(())
    })
    .await;
    // The outcome not met yet is exported too, at 0: a series first exported at 1
    // shows no increase, and GovwxDirectorySyncFailing would hold for an hour after
    // the first success.
    let metrics = app.metrics().await;
    assert_eq!(sync_passes(&metrics, "ok"), Some(0.0), "{metrics}");
    assert_eq!(app.card_for("公积金怎么提取").await, None);

    // content-svc comes up; a retry (1 s, then 2 s apart) finds its service.
    let content = spawn_content_on(&addr).await;
    drop(reserved);
    content.create(fund_withdrawal()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while app.card_for("公积金怎么提取").await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retry bootstrapped the service within 40 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
    content.stop().await;
}

/// A loopback port bound with `SO_REUSEADDR` but not listening: a connection is
/// refused, no ephemeral port can be it, and a listener with `SO_REUSEADDR` (tokio's)
/// may still bind it.
/// The value of `interaction_directory_sync_total{outcome}` in a scrape, if exported.
fn sync_passes(metrics: &str, outcome: &str) -> Option<f64> {
    let series = format!("interaction_directory_sync_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
}

fn refusing_port() -> (socket2::Socket, String) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let addr = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .unwrap()
        .to_string();
    (socket, addr)
}

#[tokio::test]
async fn a_service_changed_while_its_event_was_missed_is_corrected_by_the_bootstrap() {
    let content = spawn_content().await;
    let fund = content.create(fund_withdrawal()).await;
    let app = spawn_interaction(&[]).await;
    let directory = content.directory();
    let accounts = [ACCOUNT.to_owned()];
    let first = bootstrap(&app.db, &directory, &accounts).await.unwrap();
    assert_eq!(first.inserted, 1, "{first:?}");

    // content-svc moves the still-listed service to another page and renames it;
    // interaction-svc misses the event (dead-lettered, or a restored database).
    content
        .client
        .clone()
        .update_service(as_admin(pb::Service {
            name: "住房公积金提取".into(),
            url: "https://gjj.example.gov.cn/tq/new".into(),
            ..fund.clone()
        }))
        .await
        .expect("updated");

    let report = bootstrap(&app.db, &directory, &accounts).await.unwrap();
    assert_eq!(
        (report.updated, report.inserted, report.retired),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        app.replica(&fund.id).await,
        Some(("https://gjj.example.gov.cn/tq/new".to_owned(), true, false))
    );
    let again = bootstrap(&app.db, &directory, &accounts).await.unwrap();
    assert!(!again.changed(), "{again:?}");
    app.stop().await;
    content.stop().await;
}
