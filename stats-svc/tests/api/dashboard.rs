//! The dashboard as a leader opens it: pages rendered from a real run's data (events
//! through JetStream and the consumers, articles' reads from the datacube and their
//! 在看 and likes entered over gRPC), loaded in headless Chromium with a CJK font,
//! screenshots kept under `target/tmp/stats-dashboard/`; and, off loopback, a
//! viewer's key once, then a session cookie.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Datelike, Days, Utc};
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;
use stats_svc::domain::reach::month_provisional;
use stats_svc::store::reach::PulledArticle;
use stats_svc::{Application, Config};
use tonic::transport::Channel;

use crate::helpers::{EDITOR_KEY, authed, pull_articles, pulled};

const KEYS: &str = "city-office:admin:city-office-admin-key,\
                    statistics:viewer:statistics-viewer-key,\
                    press:editor:press-editor-key-01,\
                    yizhang-office@yizhang:viewer:county-viewer-key-01";

struct Running {
    http: String,
    grpc: pb::stats_service_client::StatsServiceClient<Channel>,
    jetstream: async_nats::jetstream::Context,
    nats: TestNats,
    db: TestDb,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(trust_loopback: &str) -> Running {
    start_with(&[
        ("API_KEYS", KEYS),
        ("DASHBOARD_TRUST_LOOPBACK", trust_loopback),
    ])
    .await
}

async fn start_with(settings: &[(&str, &str)]) -> Running {
    start_with_clock(settings, stats_svc::jobs::system_clock()).await
}

/// [`start_with`] with the service reading `clock` (the dashboard's "today" too).
async fn start_with_clock(settings: &[(&str, &str)], clock: stats_svc::jobs::Clock) -> Running {
    let db = TestDb::new("stats");
    let nats = TestNats::new();
    let env = service_env(
        &db,
        &nats,
        settings
            .iter()
            .copied()
            .chain([("DATACUBE_INTERVAL", "0s")]),
    );
    let app = Application::build_with_clock(Config::from_env(&env).unwrap(), clock)
        .await
        .unwrap();
    let (http, grpc) = (app.http_port(), app.grpc_port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(nats.connect().await);
    Running {
        http: format!("http://127.0.0.1:{http}"),
        grpc: pb::stats_service_client::StatsServiceClient::new(channel),
        jetstream,
        nats,
        db,
        stop,
        server,
    }
}

impl Running {
    async fn publish(&self, subject: &str, id: &str, payload: Vec<u8>) {
        platform::testing::publish_event(
            &self.jetstream,
            &self.nats.namespace,
            subject,
            id,
            payload,
        )
        .await;
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

fn header(id: &str, account: &str, at: i64) -> Option<ev::EventHeader> {
    Some(ev::EventHeader {
        event_id: id.to_owned(),
        account: account.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
    })
}

fn callback(id: &str, at: i64, body: &str, kind: ev::InboundKind) -> ev::Inbound {
    ev::Inbound {
        header: header(id, "chenzhou", at),
        kind: kind as i32,
        msg_type: if kind == ev::InboundKind::Event {
            "event"
        } else {
            "text"
        }
        .to_owned(),
        raw_xml: format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o_{id}</FromUserName>\
             <CreateTime>{at}</CreateTime>{body}</xml>"
        ),
        ..Default::default()
    }
}

/// A fortnight of callbacks and tickets for `chenzhou` and a month of articles for
/// three accounts, through the real consumers and RPCs; returns when all are applied.
async fn feed(app: &Running) {
    let now = Utc::now().timestamp();
    let day = 86_400;
    let mut events = 0;
    for d in 0..14i64 {
        let at = now - d * day - 3600;
        for n in 0..(3 + d % 4) {
            let id = format!("f-{d}-{n}");
            let follow = callback(
                &id,
                at + n,
                "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_hall</EventKey>",
                ev::InboundKind::Event,
            );
            app.publish(
                "wechat.inbound.chenzhou.event.subscribe",
                &id,
                follow.encode_to_vec(),
            )
            .await;
            events += 1;
        }
        let id = format!("u-{d}");
        let unfollow = callback(
            &id,
            at,
            "<MsgType>event</MsgType><Event>unsubscribe</Event><EventKey></EventKey>",
            ev::InboundKind::Event,
        );
        app.publish(
            "wechat.inbound.chenzhou.event.unsubscribe",
            &id,
            unfollow.encode_to_vec(),
        )
        .await;
        let id = format!("m-{d}");
        let message = callback(
            &id,
            at,
            "<MsgType>text</MsgType><Content>路灯坏了</Content><MsgId>1</MsgId>",
            ev::InboundKind::Message,
        );
        app.publish(
            "wechat.inbound.chenzhou.msg.text",
            &id,
            message.encode_to_vec(),
        )
        .await;
        events += 2;
        // A reply rule answered the message, and the directory a menu click.
        for (n, source, subject) in [
            (0, ev::AutoReplySource::Rule, "rule"),
            (
                1,
                ev::AutoReplySource::DirectoryService,
                "directory_service",
            ),
        ] {
            let id = format!("ar-{d}-{n}");
            let answer = ev::AutoReplied {
                header: header(&id, "chenzhou", at + n),
                source: source as i32,
                rule_id: "r-housing".to_owned(),
                matched: "公积金".to_owned(),
                service_id: "社保卡申领".to_owned(),
                category: "社会保障".to_owned(),
                ..Default::default()
            };
            app.publish(
                &format!("interaction.chenzhou.autoreply.{subject}"),
                &id,
                answer.encode_to_vec(),
            )
            .await;
            events += 1;
        }
        for (t, department) in ["住建局", "水务局", "交通局"].iter().enumerate() {
            let ticket = format!("t-{d}-{t}");
            let opened = at - 7200;
            let mut changes = vec![(ev::TicketChangeKind::Opened, opened)];
            // 住建局 answers in 30 minutes, 水务局 in 3 hours (late), 交通局 alternately.
            let ack = match t {
                0 => Some(opened + 1800),
                1 => Some(opened + 3 * 3600),
                _ => (d % 2 == 0).then_some(opened + 600),
            };
            if let Some(ack) = ack {
                changes.push((ev::TicketChangeKind::Acknowledged, ack));
                changes.push((ev::TicketChangeKind::Closed, ack + 600));
            }
            for (kind, at) in changes {
                let id = format!("{ticket}-{kind:?}");
                let change = ev::TicketChanged {
                    header: header(&id, "chenzhou", at.min(now)),
                    kind: kind as i32,
                    ticket_id: ticket.clone(),
                    department: (*department).to_owned(),
                    opened_at: Some(prost_types::Timestamp {
                        seconds: opened,
                        nanos: 0,
                    }),
                    acknowledge_due_at: Some(prost_types::Timestamp {
                        seconds: opened + 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                };
                app.publish(
                    &format!("interaction.chenzhou.ticket.{kind:?}").to_lowercase(),
                    &id,
                    change.encode_to_vec(),
                )
                .await;
                events += 1;
            }
        }
    }
    // Each article's reads and shares as the datacube's day-7 pull stores them, its
    // 在看 and likes entered by the press office.
    let today = Utc::now().date_naive();
    let figures = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    for (account, reads) in [
        ("chenzhou", 9_000u64),
        ("yizhang", 4_000),
        ("guiyang", 2_500),
    ] {
        let articles: Vec<PulledArticle> = (0..40u64)
            .map(|n| PulledArticle {
                msgid: format!("{account}-{n}"),
                title: "通知".to_owned(),
                published_on: today - Days::new(n),
                headline: n % 2 == 0,
                reads: (reads + n * 37) as i64,
                shares: (reads / 30) as i64,
            })
            .collect();
        pull_articles(&figures, account, &articles).await;
        // A month whose ranking is final takes no figures by hand.
        let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        for n in (0..40u64).filter(|n| {
            let day = today - Days::new(*n);
            month_provisional(
                day.with_day(1).unwrap(),
                Utc::now(),
                office,
                &work_calendar::WorkCalendar::default(),
            )
        }) {
            app.grpc
                .clone()
                .record_article_figures(authed(
                    pb::RecordArticleFiguresRequest {
                        account: account.to_owned(),
                        article_id: format!("{account}-{n}"),
                        zaikan: reads / 100,
                        likes: reads / 50,
                        ..Default::default()
                    },
                    EDITOR_KEY,
                ))
                .await
                .unwrap();
        }
    }
    figures.close().await;
    let pool = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&pool)
            .await
            .unwrap();
        if applied == events {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{applied}/{events} applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats-dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium (Debian's `chromium`) with `args` and returns its stdout.
async fn chromium(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
                "--window-size=1280,1700",
            ])
            .args(&args)
            .output()
            .expect("chromium runs (apt-get install chromium fonts-noto-cjk)");
        assert!(output.status.success(), "chromium failed: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_page_renders_its_charts_in_chromium_with_a_real_runs_data() {
    let app = start("true").await;
    feed(&app).await;
    let dir = artefacts();
    for (name, path) in [
        ("overview", "/"),
        ("account", "/account/chenzhou?days=30"),
        ("ranking", "/ranking"),
    ] {
        let shot = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        chromium(vec![
            format!("--screenshot={}", shot.display()),
            format!("{}{path}", app.http),
        ])
        .await;
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "{name}: screenshot of {size} bytes");
    }
    // A phone-sized window (headless Chromium lays out at least 500 px): one column.
    let phone = dir.join("account-phone.png");
    let _ = std::fs::remove_file(&phone);
    chromium(vec![
        "--window-size=500,2400".to_owned(),
        format!("--screenshot={}", phone.display()),
        format!("{}/account/chenzhou?days=30", app.http),
    ])
    .await;
    assert!(std::fs::metadata(&phone).map(|m| m.len()).unwrap_or(0) > 20_000);
    // The charts were drawn: ECharts put a canvas into each container.
    let dom = chromium(vec![
        "--dump-dom".to_owned(),
        format!("{}/account/chenzhou?days=30", app.http),
    ])
    .await;
    for chart in [
        "followers",
        "traffic",
        "hours",
        "replies",
        "reads",
        "compliance",
    ] {
        let start = dom
            .find(&format!("id=\"{chart}\""))
            .unwrap_or_else(|| panic!("{chart} container"));
        let next = dom[start..]
            .find("</div></div>")
            .unwrap_or(dom.len() - start);
        assert!(
            dom[start..start + next].contains("<canvas"),
            "{chart} was not drawn"
        );
    }
    assert!(
        dom.contains("住建局") && dom.contains("水务局"),
        "departments listed"
    );
    assert!(
        dom.contains("公积金") && dom.contains("社保卡申领") && dom.contains("社会保障"),
        "keyword and directory hits listed"
    );
    let ranking = reqwest::get(format!("{}/ranking", app.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = ranking.find(">chenzhou<").expect("chenzhou ranked");
    let second = ranking.find(">yizhang<").expect("yizhang ranked");
    assert!(first < second, "more reads rank higher");
    app.stop().await;
}

#[tokio::test]
async fn off_loopback_a_viewers_key_opens_a_session_scoped_to_its_accounts() {
    let app = start("false").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = client.get(format!("{}/", app.http)).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], "/login");

    let refused = client
        .post(format!("{}/login", app.http))
        .form(&[("key", "press-editor-key-01")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "an editor's key is not a viewer's");

    let login = |key: &'static str| {
        let client = client.clone();
        let url = format!("{}/login", app.http);
        async move {
            let response = client.post(url).form(&[("key", key)]).send().await.unwrap();
            assert_eq!(response.status(), 303);
            let cookie = response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
            cookie.split(';').next().unwrap().to_owned()
        }
    };
    // Behind an ingress that terminated TLS, the cookie is for HTTPS only.
    let behind_tls = client
        .post(format!("{}/login", app.http))
        .header("x-forwarded-proto", "https")
        .form(&[("key", "statistics-viewer-key")])
        .send()
        .await
        .unwrap();
    let cookie = behind_tls.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let city = login("statistics-viewer-key").await;
    let page = client
        .get(format!("{}/account/chenzhou", app.http))
        .header("cookie", &city)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("粉丝增长"));

    let county = login("county-viewer-key-01").await;
    let other = client
        .get(format!("{}/account/chenzhou", app.http))
        .header("cookie", &county)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "a county sees only its own account");
    let own = client
        .get(format!("{}/account/yizhang", app.http))
        .header("cookie", &county)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_key_removed_from_the_key_file_ends_its_sessions_and_logs_in_no_more() {
    let dir = std::env::temp_dir().join(format!("stats-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    let entries: Vec<&str> = KEYS.split(',').map(str::trim).collect();
    std::fs::write(&file, entries.join("\n")).unwrap();
    let app = start_with(&[
        ("API_KEYS_FILE", file.to_str().unwrap()),
        ("API_KEYS_RELOAD_INTERVAL", "50ms"),
        ("DASHBOARD_TRUST_LOOPBACK", "false"),
    ])
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = || {
        client
            .post(format!("{}/login", app.http))
            .form(&[("key", "county-viewer-key-01")])
            .send()
    };
    let response = login().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = || {
        client
            .get(format!("{}/account/yizhang", app.http))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(page().await.unwrap().status(), 200);

    // The county's key is revoked: the file is rewritten without it.
    let kept: Vec<&str> = KEYS
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.ends_with("county-viewer-key-01"))
        .collect();
    std::fs::write(&file, kept.join("\n")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = page().await.unwrap();
        if response.status() == 303 {
            assert_eq!(response.headers()["location"], "/login");
            break;
        }
        assert_eq!(response.status(), 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revoked key's session still opens pages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        login().await.unwrap().status(),
        401,
        "nor can it log in again"
    );
    std::fs::remove_dir_all(&dir).ok();
    app.stop().await;
}

/// Fetches `path` from the dashboard (on loopback: no login) as text.
async fn page(app: &Running, path: &str) -> String {
    reqwest::get(format!("{}{path}", app.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// On 3 December the month's day-7 figures have not begun to come in (the datacube
/// pulls them on day 8), so the ranking page opens on November, which is still
/// marked provisional: its last articles' figures arrive on 7 December after 08:00,
/// and it turns final at the end of that office day.
#[tokio::test]
async fn the_ranking_page_opens_on_the_last_month_and_marks_it_provisional_while_it_fills() {
    let clock_at = |rfc3339: &str| -> stats_svc::jobs::Clock {
        let now = chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .to_utc();
        std::sync::Arc::new(move || now)
    };
    let app = start_with_clock(&[("API_KEYS", KEYS)], clock_at("2026-12-03T02:00:00Z")).await;
    let figures = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    pull_articles(
        &figures,
        "chenzhou",
        &[pulled("2026111001_1", "2026-11-10", 9_000, 0)],
    )
    .await;
    figures.close().await;
    let default = page(&app, "/ranking").await;
    assert!(
        default.contains("value=\"2026-11\"") && default.contains(">chenzhou<"),
        "on 3 December the ranking page does not open on November's list"
    );
    assert!(
        default.contains("数据未定"),
        "November, still filling on 3 December, is not marked provisional"
    );
    let october = page(&app, "/ranking?month=2026-10").await;
    assert!(
        !october.contains("数据未定"),
        "October, final since 9 November (the 7th a Saturday), is marked provisional"
    );
    app.stop().await;

    // 17:30 on 7 December: the office day its last day's figures came in is over.
    let app = start_with_clock(&[("API_KEYS", KEYS)], clock_at("2026-12-07T09:30:00Z")).await;
    assert!(
        !page(&app, "/ranking?month=2026-11")
            .await
            .contains("数据未定"),
        "November is marked provisional after the office day its last day's figures came in"
    );
    app.stop().await;
}

/// An account page over 90 days on 1 March runs from December to March: its charts'
/// dates carry the year, so 31 December 2025 and 1 January 2026 are told apart from
/// the same days a year on (a 366-day page would show each `MM-DD` twice).
#[tokio::test]
async fn an_account_page_across_new_year_labels_its_days_with_the_year() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T02:00:00Z")
        .unwrap()
        .to_utc();
    let app = start_with_clock(&[("API_KEYS", KEYS)], std::sync::Arc::new(move || now)).await;
    let account = page(&app, "/account/chenzhou?days=90").await;
    assert!(
        account.contains("\"2025-12-31\"") && account.contains("\"2026-01-01\""),
        "the charts' dates across new year carry no year"
    );
    app.stop().await;
}
