//! `spawn_app()`: stats-svc in-process on port 0, with its own database and NATS
//! namespace, a gRPC client pointed at it, and JetStream to publish into it.

use std::time::Duration;

use async_nats::jetstream;
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1 as ev;
use proto::events::v1::{EventHeader, Inbound, InboundKind};
use proto::stats::v1::stats_service_client::StatsServiceClient;
use proto::stats::v1::{AccountOverview, GetAccountOverviewRequest};
use stats_svc::domain::AccountId;
use stats_svc::domain::rollup::{Metric, Tally};
use stats_svc::store::reach::{PulledArticle, store_chunk};
use stats_svc::{Application, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A WeChat CreateTime (2023-11-14T22:13:20Z) that test callbacks count from.
pub const T0: i64 = 1_700_000_000;

pub const ADMIN_KEY: &str = "city-office-admin-key";
pub const VIEWER_KEY: &str = "statistics-viewer-key";
pub const EDITOR_KEY: &str = "press-editor-key-01";
/// A county (`yizhang`) office's key: its own account only.
pub const COUNTY_KEY: &str = "county-viewer-key-01";
/// The county's (`yizhang`) press office: an editor of its own account only.
pub const COUNTY_EDITOR_KEY: &str = "county-editor-key-01";
/// The ticket desk: an agent, no editor.
pub const AGENT_KEY: &str = "ticket-desk-agent-key-01";
/// The water department's desk: works its queue and reads its own figures.
pub const WATER_DESK_KEY: &str = "water-desk-key-01";

const API_KEYS: &str = "city-office:admin:city-office-admin-key,\
                        statistics:viewer:statistics-viewer-key,\
                        press:editor:press-editor-key-01,\
                        yizhang-office@yizhang:viewer:county-viewer-key-01,\
                        yizhang-press@yizhang:editor:county-editor-key-01,\
                        ticket-desk:agent:ticket-desk-agent-key-01,\
                        water:agent+viewer:water-desk-key-01";

/// A running stats-svc. Dropping it stops the server before the test database
/// and streams are removed (the fixtures are the last fields).
pub struct TestApp {
    pub client: StatsServiceClient<Channel>,
    /// The dashboard's port (open on loopback, at the system clock).
    pub http_port: u16,
    pub jetstream: jetstream::Context,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pub nats: TestNats,
    _test_db: TestDb,
}

/// 10:00 office time on 3 December 2026: November's ranking is still provisional (it
/// turns final at 17:30 on the 7th), so its articles take figures by hand.
pub const NOVEMBER_OPEN: &str = "2026-12-03T02:00:00Z";

pub async fn spawn_app() -> TestApp {
    spawn_app_with_clock(stats_svc::jobs::system_clock()).await
}

/// [`spawn_app`] with the service reading the time `now` (its jobs, its dashboard and
/// the figure entries' month check).
pub async fn spawn_app_at(now: &str) -> TestApp {
    let now: chrono::DateTime<chrono::Utc> = now.parse().expect("an RFC 3339 time");
    spawn_app_with_clock(std::sync::Arc::new(move || now)).await
}

async fn spawn_app_with_clock(clock: stats_svc::jobs::Clock) -> TestApp {
    let test_db = TestDb::new("stats");
    let test_nats = TestNats::new();
    // The statistics office reads every department's figures, as the leaders do.
    let env = service_env(
        &test_db,
        &test_nats,
        [
            ("API_KEYS", API_KEYS),
            ("STATS_ALL_DEPARTMENTS", "statistics"),
        ],
    );
    let config = Config::from_env(&env).expect("test configuration is valid");
    let app = Application::build_with_clock(config, clock)
        .await
        .expect("stats-svc builds against the test database and NATS");
    let grpc_port = app.grpc_port();
    let http_port = app.http_port();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("gRPC port accepts connections");
    let jetstream = jetstream::new(test_nats.connect().await);
    TestApp {
        client: StatsServiceClient::new(channel),
        http_port,
        jetstream,
        shutdown: Some(shutdown),
        server: Some(server),
        nats: test_nats,
        _test_db: test_db,
    }
}

impl TestApp {
    /// A pool on the service's database.
    pub async fn db(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self._test_db.url())
            .await
            .expect("test database reachable")
    }

    /// Fires the shutdown and returns the server task, to await its drain.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server
            .take()
            .expect("the server runs until stopped once")
    }

    /// Stops the service and waits until it has drained.
    pub async fn stop(mut self) {
        self.begin_shutdown()
            .await
            .expect("server task did not panic")
            .expect("server stopped cleanly");
    }

    /// Publishes `payload` to `wechat.inbound.{suffix}` in the test namespace with
    /// `msg_id` as `Nats-Msg-Id`, and waits for JetStream's ack.
    pub async fn publish_raw(&self, suffix: &str, msg_id: &str, payload: Vec<u8>) {
        platform::testing::publish_inbound(
            &self.jetstream,
            &self.nats.namespace,
            suffix,
            msg_id,
            payload,
        )
        .await;
    }

    /// Publishes `payload` on `subject` (in the test namespace) with `msg_id` as
    /// `Nats-Msg-Id`, as the services' outbox relays do, and waits for JetStream's ack.
    pub async fn publish_on(&self, subject: &str, msg_id: &str, payload: Vec<u8>) {
        platform::testing::publish_event(
            &self.jetstream,
            &self.nats.namespace,
            subject,
            msg_id,
            payload,
        )
        .await;
    }

    /// Publishes an inbound event as the gateway does (Nats-Msg-Id = event_id).
    pub async fn publish(&self, inbound: &Inbound) {
        let header = inbound.header.as_ref().expect("test events have a header");
        let suffix = subject_suffix(inbound);
        self.publish_raw(&suffix, &header.event_id, inbound.encode_to_vec())
            .await;
    }

    /// The overview of `account` as `key` sees it.
    pub async fn overview(
        &self,
        account: &str,
        key: &str,
    ) -> Result<AccountOverview, tonic::Status> {
        self.client
            .clone()
            .get_account_overview(authed(
                GetAccountOverviewRequest {
                    account: account.to_owned(),
                },
                key,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Polls the overview of `account` every 50 ms until `done` holds, for at most 10 s.
    pub async fn wait_for_overview(
        &self,
        account: &str,
        done: impl Fn(&AccountOverview) -> bool,
    ) -> AccountOverview {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let overview = self
                .overview(account, VIEWER_KEY)
                .await
                .expect("overview answers");
            if done(&overview) {
                return overview;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "overview of {account} not reached within 10s; last: {overview:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

/// The official account's WeChat id in test callbacks.
const GH_ID: &str = "gh_0123456789ab";
/// The citizen who sends every test callback.
const OPENID: &str = "o_citizen";

/// A citizen's text message to `account`.
pub fn text_message(account: &str, event_id: &str, create_time: i64) -> Inbound {
    inbound(
        account,
        event_id,
        create_time,
        InboundKind::Message,
        "text",
        "",
    )
}

/// An event (`subscribe`, `unsubscribe`, `CLICK`, …) to `account`.
pub fn event(account: &str, event_id: &str, create_time: i64, event: &str) -> Inbound {
    inbound(
        account,
        event_id,
        create_time,
        InboundKind::Event,
        "event",
        event,
    )
}

fn inbound(
    account: &str,
    event_id: &str,
    create_time: i64,
    kind: InboundKind,
    msg_type: &str,
    event: &str,
) -> Inbound {
    // The callback as WeChat sent it: consumers read the typed message from here.
    let body = match kind {
        InboundKind::Event => {
            format!("<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey>")
        }
        _ => format!("<Content><![CDATA[hello]]></Content><MsgId>{create_time}</MsgId>"),
    };
    let raw_xml = format!(
        "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
         <FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{create_time}</CreateTime>\
         <MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    );
    Inbound {
        header: Some(EventHeader {
            event_id: event_id.to_owned(),
            account: account.to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: create_time,
                nanos: 0,
            }),
        }),
        kind: kind as i32,
        msg_type: msg_type.to_owned(),
        event: event.to_owned(),
        to_user_name: GH_ID.to_owned(),
        from_user_name: OPENID.to_owned(),
        raw_xml,
        ..Default::default()
    }
}

/// `{account}.msg.{type}` or `{account}.event.{event}`, as the gateway publishes.
fn subject_suffix(inbound: &Inbound) -> String {
    let account = inbound
        .header
        .as_ref()
        .map(|h| h.account.as_str())
        .unwrap_or("none");
    if inbound.kind == InboundKind::Event as i32 {
        format!("{account}.event.{}", inbound.event)
    } else {
        format!("{account}.msg.{}", inbound.msg_type)
    }
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

/// Announces `article` of `account` as content-svc does when it goes out at
/// `published` (RFC 3339): a headline, `content.{account}.article.published`.
pub async fn publish_article(app: &TestApp, account: &str, article: &str, published: &str) {
    publish_article_in(app, account, article, published, "").await;
}

/// Announces `article` as [`publish_article`] does, sent in WeChat's message
/// `msg_data_id` (the datacube's id of it is `{msg_data_id}_{index}`).
pub async fn publish_article_in(
    app: &TestApp,
    account: &str,
    article: &str,
    published: &str,
    msg_data_id: &str,
) {
    publish_article_by(
        app,
        account,
        article,
        published,
        msg_data_id,
        ev::PublishChannel::Unspecified,
    )
    .await;
}

/// Announces `article` as [`publish_article_in`] does, sent through `channel`.
pub async fn publish_article_by(
    app: &TestApp,
    account: &str,
    article: &str,
    published: &str,
    msg_data_id: &str,
    channel: ev::PublishChannel,
) {
    let event = ev::ArticleChanged {
        msg_data_id: msg_data_id.to_owned(),
        channel: channel as i32,
        ..published_event(account, article, published)
    };
    send_published(app, account, article, event).await;
}

/// Announces `article`, titled `title`, as content-svc does since it names an
/// article's place: sent at `index` (1-based, 1 the headline) of WeChat's message
/// `msg_data_id`, which the datacube reports as `{msg_data_id}_{index}`.
pub async fn publish_article_at(
    app: &TestApp,
    account: &str,
    article: &str,
    title: &str,
    published: &str,
    msg_data_id: &str,
    index: u32,
) {
    let event = ev::ArticleChanged {
        title: title.to_owned(),
        headline: index == 1,
        msg_data_id: msg_data_id.to_owned(),
        message_index: index,
        channel: ev::PublishChannel::MassSend as i32,
        ..published_event(account, article, published)
    };
    send_published(app, account, article, event).await;
}

/// content-svc's `published` event of a headline `article` sent at `published` (RFC
/// 3339), without a message.
fn published_event(account: &str, article: &str, published: &str) -> ev::ArticleChanged {
    let published = chrono::DateTime::parse_from_rfc3339(published)
        .expect("an RFC 3339 time")
        .to_utc();
    let at = prost_types::Timestamp {
        seconds: published.timestamp(),
        nanos: 0,
    };
    ev::ArticleChanged {
        header: Some(ev::EventHeader {
            event_id: format!("content:{account}:{article}:published"),
            account: account.to_owned(),
            occurred_at: Some(at),
        }),
        transition: ev::ArticleTransition::Published as i32,
        article_id: article.to_owned(),
        title: "冬季供暖通知".to_owned(),
        headline: true,
        published_at: Some(at),
        ..Default::default()
    }
}

/// Publishes `event` on `content.{account}.article.published`, its message id the
/// event id.
async fn send_published(app: &TestApp, account: &str, article: &str, event: ev::ArticleChanged) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("content:{account}:{article}:published").as_str(),
    );
    app.jetstream
        .publish_with_headers(
            app.nats
                .namespace
                .subject(&format!("content.{account}.article.published")),
            headers,
            event.encode_to_vec().into(),
        )
        .await
        .expect("publish sent")
        .await
        .expect("JetStream acked the publish");
}

/// Announces that `article` of `account` was retracted (deleted on WeChat) at
/// `retracted` (RFC 3339), as content-svc did before it named the article's place:
/// `content.{account}.article.retracted`, under `msg_id` (a redelivery of the same
/// event comes under another one).
pub async fn retract_article(
    app: &TestApp,
    account: &str,
    article: &str,
    retracted: &str,
    msg_id: &str,
) {
    let event = retracted_event(account, article, retracted);
    send_retracted(app, account, msg_id, event).await;
}

/// Announces the retraction as [`retract_article`] does, naming the article's place as
/// content-svc does now: `index` (1-based) of WeChat's message `msg_data_id`.
pub async fn retract_article_at(
    app: &TestApp,
    account: &str,
    article: &str,
    retracted: &str,
    msg_id: &str,
    msg_data_id: &str,
    index: u32,
) {
    let event = ev::ArticleChanged {
        msg_data_id: msg_data_id.to_owned(),
        message_index: index,
        ..retracted_event(account, article, retracted)
    };
    send_retracted(app, account, msg_id, event).await;
}

/// content-svc's `retracted` event of `article` at `retracted` (RFC 3339).
fn retracted_event(account: &str, article: &str, retracted: &str) -> ev::ArticleChanged {
    let retracted = chrono::DateTime::parse_from_rfc3339(retracted)
        .expect("an RFC 3339 time")
        .to_utc();
    ev::ArticleChanged {
        header: Some(ev::EventHeader {
            event_id: format!("content:{account}:{article}:retracted"),
            account: account.to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: retracted.timestamp(),
                nanos: 0,
            }),
        }),
        transition: ev::ArticleTransition::Retracted as i32,
        article_id: article.to_owned(),
        title: "冬季供暖通知".to_owned(),
        reason: "数据有误".to_owned(),
        ..Default::default()
    }
}

async fn send_retracted(app: &TestApp, account: &str, msg_id: &str, event: ev::ArticleChanged) {
    app.publish_on(
        &format!("content.{account}.article.retracted"),
        msg_id,
        event.encode_to_vec(),
    )
    .await;
}

/// Waits until stats-svc has processed the retraction of `article` of `account` (its
/// event id claimed), whatever it did with it.
pub async fn wait_for_retraction(db: &sqlx::PgPool, account: &str, article: &str) {
    let event_id = format!("content:{account}:{article}:retracted");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: Option<String> =
            sqlx::query_scalar("SELECT event_id FROM processed_events WHERE event_id = $1")
                .bind(&event_id)
                .fetch_optional(db)
                .await
                .unwrap();
        if found.is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retraction of {article} was not processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the `stats-content` consumer stored `article`.
pub async fn wait_for_article(db: &sqlx::PgPool, article: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: Option<String> =
            sqlx::query_scalar("SELECT article_id FROM article_figures WHERE article_id = $1")
                .bind(article)
                .fetch_optional(db)
                .await
                .unwrap();
        if found.is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{article} not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The datacube's day-7 pull (`getarticletotal`) of `articles` for `account`, as the
/// job stores it.
pub async fn pull_articles(db: &sqlx::PgPool, account: &str, articles: &[PulledArticle]) {
    let last = articles
        .iter()
        .map(|a| a.published_on)
        .max()
        .expect("articles to pull");
    store_chunk(
        db,
        &AccountId::parse(account).unwrap(),
        "getarticletotal",
        last,
        &[],
        articles,
        // 1970: every month open, nothing left out (the tests' entries are their own).
        chrono::NaiveDate::default(),
    )
    .await
    .expect("the pull is stored");
}

/// The datacube's daily article summary (`getarticlesummary`) of `day`: `msgid` read
/// `reads` times, as the job stores it the morning after.
pub async fn summarise_article(
    db: &sqlx::PgPool,
    account: &str,
    day: chrono::NaiveDate,
    msgid: &str,
    reads: i64,
) {
    let account = AccountId::parse(account).unwrap();
    let tally = Tally {
        account: account.clone(),
        day,
        metric: Metric::WxArticleReads,
        key: msgid.to_owned(),
        value: reads,
    };
    store_chunk(
        db,
        &account,
        "getarticlesummary",
        day,
        &[tally],
        &[],
        chrono::NaiveDate::default(),
    )
    .await
    .expect("the summary is stored");
}

/// An article as the datacube's day-7 pull reports it (headline: index 1).
pub fn pulled(msgid: &str, published_on: &str, reads: i64, shares: i64) -> PulledArticle {
    PulledArticle {
        msgid: msgid.to_owned(),
        title: "冬季供暖通知".to_owned(),
        published_on: published_on.parse().unwrap(),
        headline: msgid.ends_with("_1"),
        reads,
        shares,
    }
}
