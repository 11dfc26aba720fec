//! What the readiness figures say on the pages, read as a leader reads them: no data
//! is not 100% (and ranks after a department with a real rate), a weekend's tickets
//! still inside their deadline count as opened on a Monday morning, and a greeting
//! or a canned menu reply is no answer to a citizen. Events go in through JetStream,
//! the pages come out over HTTP at the service's injected clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::testing::{TestDb, TestNats, service_env};
use prost::Message as _;
use proto::events::v1 as ev;
use stats_svc::{Application, Config};

const KEYS: &str = "city-office:admin:city-office-admin-key,\
                    statistics:viewer:statistics-viewer-key,\
                    water:agent+viewer:water-desk-key-01,\
                    roads:agent+viewer:roads-desk-key-01";

/// 09:00 on Monday 30 November 2026, office time.
const MONDAY_NINE: &str = "2026-11-30T01:00:00Z";

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn ts(rfc3339: &str) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at(rfc3339).timestamp(),
        nanos: 0,
    })
}

struct Running {
    http: String,
    jetstream: async_nats::jetstream::Context,
    nats: TestNats,
    db: TestDb,
    published: i64,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The service with its clock (the pages' "today" and "now") at `now`, its
/// dashboard open on loopback.
async fn start_at(now: &str) -> Running {
    start_trusting(now, "true").await
}

/// [`start_at`] with `DASHBOARD_TRUST_LOOPBACK` set to `trust_loopback` ("false": every
/// page needs a key's session, as off loopback).
async fn start_trusting(now: &str, trust_loopback: &str) -> Running {
    start_with(now, trust_loopback, []).await
}

/// [`start_trusting`] with `extra` settings.
async fn start_with<const N: usize>(
    now: &str,
    trust_loopback: &str,
    extra: [(&str, &str); N],
) -> Running {
    let db = TestDb::new("stats");
    let nats = TestNats::new();
    let env = service_env(
        &db,
        &nats,
        [
            ("API_KEYS", KEYS),
            ("DASHBOARD_TRUST_LOOPBACK", trust_loopback),
            ("DATACUBE_INTERVAL", "0s"),
        ]
        .into_iter()
        .chain(extra),
    );
    let now = at(now);
    let app = Application::build_with_clock(Config::from_env(&env).unwrap(), Arc::new(move || now))
        .await
        .unwrap();
    let http = format!("http://127.0.0.1:{}", app.http_port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let jetstream = async_nats::jetstream::new(nats.connect().await);
    Running {
        http,
        jetstream,
        nats,
        db,
        published: 0,
        stop,
        server,
    }
}

impl Running {
    async fn publish(&mut self, subject: &str, id: &str, payload: Vec<u8>) {
        platform::testing::publish_event(
            &self.jetstream,
            &self.nats.namespace,
            subject,
            id,
            payload,
        )
        .await;
        self.published += 1;
    }

    async fn ticket(&mut self, account: &str, change: ev::TicketChanged) {
        let subject = format!("interaction.{account}.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        self.publish(&subject, &id, change.encode_to_vec()).await;
    }

    /// Waits until every event published so far is applied.
    async fn settle(&self) {
        let db = sqlx::PgPool::connect(&self.db.url()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
                .fetch_one(&db)
                .await
                .unwrap();
            if applied >= self.published {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {applied} of {} applied",
                self.published
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn page(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Logs in with `key` and returns the session's cookie.
    async fn login(&self, key: &str) -> String {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/login", self.http))
            .form(&[("key", key)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{key} logs in");
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// `path` as the session of `cookie` reads it.
    async fn page_as(&self, cookie: &str, path: &str) -> String {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.http))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

/// A ticket change of `account`, the ticket opened at `opened` with its
/// acknowledgement due at `ack_due`.
fn change(
    account: &str,
    id: &str,
    ticket: &str,
    department: &str,
    kind: ev::TicketChangeKind,
    occurred: &str,
    (opened, ack_due): (&str, &str),
) -> ev::TicketChanged {
    ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: id.to_owned(),
            account: account.to_owned(),
            occurred_at: ts(occurred),
        }),
        kind: kind as i32,
        ticket_id: ticket.to_owned(),
        department: department.to_owned(),
        opened_at: ts(opened),
        acknowledge_due_at: ts(ack_due),
        resolve_due_at: ts("2026-12-10T10:00:00Z"),
        ..Default::default()
    }
}

/// The cells of the table row whose first cell is `first`.
fn row(html: &str, first: &str) -> Vec<String> {
    let start = html
        .find(&format!("<tr><td>{first}</td>"))
        .unwrap_or_else(|| panic!("no row {first} in {html}"));
    let row = &html[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    row.split("<td>")
        .skip(1)
        .map(|cell| cell.trim_end_matches("</td>").to_owned())
        .collect()
}

/// The readiness line of an account page.
fn readiness_line(html: &str) -> &str {
    let start = html.find("最近发布").expect("readiness line");
    let line = &html[start..];
    &line[..line.find("</p>").unwrap()]
}

/// Saturday 28 November, 10:00 office time; the acknowledgement is due at 18:00 on
/// Monday 30 November.
const SATURDAY_TEN: &str = "2026-11-28T02:00:00Z";
const MONDAY_SIX_PM: &str = "2026-11-30T10:00:00Z";

#[tokio::test]
async fn a_weekends_tickets_due_monday_evening_count_as_opened_on_monday_morning() {
    use ev::TicketChangeKind as K;
    let mut app = start_at(MONDAY_NINE).await;
    for n in 0..30 {
        let t = format!("w{n}");
        let deadlines = (SATURDAY_TEN, MONDAY_SIX_PM);
        app.ticket(
            "chenzhou",
            change(
                "chenzhou",
                &format!("{t}-open"),
                &t,
                "water",
                K::Opened,
                SATURDAY_TEN,
                deadlines,
            ),
        )
        .await;
        if n < 3 {
            // Three acknowledged on Sunday.
            app.ticket(
                "chenzhou",
                change(
                    "chenzhou",
                    &format!("{t}-ack"),
                    &t,
                    "water",
                    K::Acknowledged,
                    "2026-11-29T02:00:00Z",
                    deadlines,
                ),
            )
            .await;
        }
    }
    app.settle().await;
    let html = app.page("/account/chenzhou").await;
    let line = readiness_line(&html);
    assert!(
        line.contains("近 7 天留言 30 件，已回应 3 件，超过受理时限未回应 0 件"),
        "{line}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_department_with_nothing_judged_shows_no_rate_and_ranks_after_29_of_30() {
    use ev::TicketChangeKind as K;
    let mut app = start_at(MONDAY_NINE).await;
    // Water: 30 tickets of Saturday due at noon, 29 acknowledged at 11:00.
    let saturday_noon = "2026-11-28T04:00:00Z";
    for n in 0..30 {
        let t = format!("w{n}");
        let deadlines = (SATURDAY_TEN, saturday_noon);
        app.ticket(
            "chenzhou",
            change(
                "chenzhou",
                &format!("{t}-open"),
                &t,
                "water",
                K::Opened,
                SATURDAY_TEN,
                deadlines,
            ),
        )
        .await;
        if n < 29 {
            app.ticket(
                "chenzhou",
                change(
                    "chenzhou",
                    &format!("{t}-ack"),
                    &t,
                    "water",
                    K::Acknowledged,
                    "2026-11-28T03:00:00Z",
                    deadlines,
                ),
            )
            .await;
        }
    }
    // Parks, and the county's only department: one ticket each, opened at 08:30 on
    // Monday and due that evening; nothing of theirs is judged yet.
    let monday_half_eight = "2026-11-30T00:30:00Z";
    for (account, department) in [("chenzhou", "parks"), ("yizhang", "county-office")] {
        app.ticket(
            account,
            change(
                account,
                &format!("{account}-p1-open"),
                "p1",
                department,
                K::Opened,
                monday_half_eight,
                (monday_half_eight, MONDAY_SIX_PM),
            ),
        )
        .await;
    }
    app.settle().await;

    let html = app.page("/account/chenzhou").await;
    let (water, parks) = (row(&html, "water"), row(&html, "parks"));
    // 部门 受理 答复 办结 超期 响应中位数 P90 按时响应 满意度
    assert_eq!(water[7], "96%（29/30）", "{water:?}");
    assert_eq!(parks[7], "—", "no data is not 100%: {parks:?}");
    assert!(
        html.find("<tr><td>water</td>") < html.find("<tr><td>parks</td>"),
        "the department with a rate ranks above the one with none"
    );

    let overview = app.page("/").await;
    assert_eq!(
        row(&overview, "<a href=\"/account/chenzhou\">chenzhou</a>")[5],
        "96%（29/30）"
    );
    assert_eq!(
        row(&overview, "<a href=\"/account/yizhang\">yizhang</a>")[5],
        "—"
    );
    app.stop().await;
}

/// Six tickets of Friday went past their acknowledgement deadline unanswered; on
/// Sunday two citizens followed and got the greeting, and one clicked a menu key
/// with a canned reply. Nothing answered a citizen: the channel is broken
/// (未提供有效互动功能, a single veto), and the hour chart shows no answers.
#[tokio::test]
async fn greetings_and_menu_replies_do_not_hide_unanswered_tickets() {
    use ev::TicketChangeKind as K;
    let mut app = start_at(MONDAY_NINE).await;
    let (friday_ten, friday_six_pm) = ("2026-11-27T02:00:00Z", "2026-11-27T10:00:00Z");
    for n in 0..6 {
        let t = format!("f{n}");
        app.ticket(
            "chenzhou",
            change(
                "chenzhou",
                &format!("{t}-open"),
                &t,
                "water",
                K::Opened,
                friday_ten,
                (friday_ten, friday_six_pm),
            ),
        )
        .await;
    }
    for (id, matched) in [("g1", ""), ("g2", ""), ("c1", "MENU_HOURS")] {
        let answer = ev::AutoReplied {
            header: Some(ev::EventHeader {
                event_id: format!("{id}:autoreply"),
                account: "chenzhou".to_owned(),
                occurred_at: ts("2026-11-29T02:00:00Z"),
            }),
            openid: format!("o_{id}"),
            source: ev::AutoReplySource::Rule as i32,
            rule_id: "r-welcome".to_owned(),
            matched: matched.to_owned(),
            inbound_event_id: id.to_owned(),
            answered: ev::AnsweredInbound::Event as i32,
            ..Default::default()
        };
        app.publish(
            "interaction.chenzhou.autoreply.rule",
            &format!("{id}:autoreply"),
            answer.encode_to_vec(),
        )
        .await;
    }
    app.settle().await;

    let db = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let now = at(MONDAY_NINE);
    stats_svc::jobs::inspection::check_once(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &(Arc::new(move || now) as stats_svc::jobs::Clock),
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let broken: Vec<(String, String)> = sqlx::query_as(
        "SELECT subject, detail FROM alarms
          WHERE account = 'chenzhou' AND rule = 'interaction_broken' AND day = '2026-11-30'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        broken.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        [""],
        "{broken:?}"
    );

    let html = app.page("/account/chenzhou").await;
    let line = readiness_line(&html);
    assert!(
        line.contains("互动 <span class=\"bad\">失效</span>"),
        "{line}"
    );
    assert!(line.contains("自动回复 0 次"), "{line}");
    assert!(
        html.contains(&format!("\"autoHours\":{:?}", [0; 24]).replace(' ', "")),
        "no greeting on the hour chart"
    );
    // The rule's own hits still count the click.
    assert!(
        html.contains("<tr><td>MENU_HOURS</td><td>1</td></tr>"),
        "keyword hits"
    );
    app.stop().await;
}

/// The sum of the account page's chart series `name` (its embedded JSON).
fn series_total(html: &str, name: &str) -> i64 {
    let key = format!("\"{name}\":[");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} series"))
        + key.len();
    let values = &html[start..];
    values[..values.find(']').unwrap()]
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<i64>().unwrap())
        .sum()
}

/// Water's desk key reads water's figures only (gRPC's `GetDailySeries` gives it
/// water's 3 tickets opened). The account page's ticket chart summed every
/// department's 10, and the overview's 按时响应率 was the whole account's (2 of 10 in
/// time): less water's own line (2 of 3) on the same page, parks' 7 tickets and their
/// lateness could be worked out. Both now read water's own.
#[tokio::test]
async fn a_desk_key_reads_its_own_departments_tickets_on_the_chart_and_overview() {
    use ev::TicketChangeKind as K;
    let mut app = start_trusting(MONDAY_NINE, "false").await;
    let saturday_noon = "2026-11-28T04:00:00Z";
    let deadlines = (SATURDAY_TEN, saturday_noon);
    // Water: 3 tickets, 2 acknowledged at 11:00 (in time) and closed; parks: 7, each
    // acknowledged at 13:00 (late) and closed.
    for (department, count, acknowledged, at) in [
        ("water", 3, 2, "2026-11-28T03:00:00Z"),
        ("parks", 7, 7, "2026-11-28T05:00:00Z"),
    ] {
        for n in 0..count {
            let t = format!("{department}{n}");
            let mut kinds = vec![(K::Opened, SATURDAY_TEN)];
            if n < acknowledged {
                kinds.extend([(K::Acknowledged, at), (K::Closed, at)]);
            }
            for (kind, occurred) in kinds {
                let id = format!("{t}-{kind:?}");
                let event = change("chenzhou", &id, &t, department, kind, occurred, deadlines);
                app.ticket("chenzhou", event).await;
            }
        }
    }
    app.settle().await;

    let water = app.login("water-desk-key-01").await;
    let html = app.page_as(&water, "/account/chenzhou?days=30").await;
    assert_eq!(
        (series_total(&html, "opened"), series_total(&html, "closed")),
        (3, 2),
        "water's desk reads every department's tickets on the chart"
    );
    assert_eq!(row(&html, "water")[7], "66%（2/3）");
    assert!(!html.contains("<tr><td>parks</td>"), "parks' line is cut");

    let overview = app.page_as(&water, "/").await;
    assert_eq!(
        row(&overview, "<a href=\"/account/chenzhou\">chenzhou</a>")[5],
        "66%（2/3）",
        "water's desk reads the whole account's rate on the overview"
    );
    assert!(overview.contains("本部门按时响应率"), "{overview}");

    // The admin's key reads the whole account, as before.
    let admin = app.login("city-office-admin-key").await;
    let html = app.page_as(&admin, "/account/chenzhou?days=30").await;
    assert_eq!(
        (series_total(&html, "opened"), series_total(&html, "closed")),
        (10, 9)
    );
    let overview = app.page_as(&admin, "/").await;
    assert_eq!(
        row(&overview, "<a href=\"/account/chenzhou\">chenzhou</a>")[5],
        "20%（2/10）"
    );
    assert!(!overview.contains("本部门按时响应率"), "{overview}");
    app.stop().await;
}

/// Water's desk key reads water's tickets on the readiness line too: "近 7 天留言 …"
/// counted every department's, so less water's own scorecard line parks' tickets and
/// their lateness could be worked out. Water opened 3 (2 answered, 1 past its
/// deadline unanswered), parks 4 (none answered, all past it).
#[tokio::test]
async fn a_desk_key_reads_its_own_departments_tickets_on_the_readiness_line() {
    use ev::TicketChangeKind as K;
    let mut app = start_trusting(MONDAY_NINE, "false").await;
    let deadlines = (SATURDAY_TEN, "2026-11-28T04:00:00Z");
    for (department, count, acknowledged) in [("water", 3, 2), ("parks", 4, 0)] {
        for n in 0..count {
            let t = format!("{department}{n}");
            let mut kinds = vec![(K::Opened, SATURDAY_TEN)];
            if n < acknowledged {
                kinds.push((K::Acknowledged, "2026-11-28T03:00:00Z"));
            }
            for (kind, occurred) in kinds {
                let id = format!("{t}-{kind:?}");
                let event = change("chenzhou", &id, &t, department, kind, occurred, deadlines);
                app.ticket("chenzhou", event).await;
            }
        }
    }
    app.settle().await;

    let water = app.login("water-desk-key-01").await;
    let html = app.page_as(&water, "/account/chenzhou?days=30").await;
    assert!(
        readiness_line(&html).contains("近 7 天留言 3 件，已回应 2 件，超过受理时限未回应 1 件"),
        "water's desk reads every department's tickets on the readiness line: {}",
        readiness_line(&html)
    );
    let admin = app.login("city-office-admin-key").await;
    let html = app.page_as(&admin, "/account/chenzhou?days=30").await;
    assert!(
        readiness_line(&html).contains("近 7 天留言 7 件，已回应 2 件，超过受理时限未回应 5 件"),
        "{}",
        readiness_line(&html)
    );
    app.stop().await;
}

/// September's list turns final 7 days after its last day, on the first working day:
/// 7 October is a National Day holiday here (`INTERACTION_HOLIDAYS` 1–8 October),
/// with no office hour for a desk to enter the last articles' figures, so on 8 October
/// the list is still provisional and says it is final from 17:30 on Friday 9 October.
/// Weekends alone were skipped, and the list turned final on the holiday.
#[tokio::test]
async fn a_list_turns_final_on_the_first_working_day_after_a_holiday() {
    let app = start_with(
        "2026-10-08T04:00:00Z",
        "true",
        [("INTERACTION_HOLIDAYS", "2026-10-01..2026-10-08")],
    )
    .await;
    let html = app.page("/ranking?month=2026-09").await;
    assert!(
        html.contains("2026-10-09 17:30 后本月数据方告齐全"),
        "September is provisional on the holiday of 8 October, final on the 9th: {html}"
    );
    app.stop().await;
}

/// Water opened 3 tickets and parks 4, none answered and no automatic reply: the
/// account's interaction_broken alarm ("近 7 天收到 7 件留言，无一答复") carried the
/// account's count to every view, so water's desk, reading its own 3 on the readiness
/// line, learnt parks' 4. A cut view reads the alarm without the account's count.
#[tokio::test]
async fn a_desk_key_reads_the_interaction_alarm_without_the_accounts_ticket_count() {
    use ev::TicketChangeKind as K;
    let mut app = start_trusting(MONDAY_NINE, "false").await;
    let deadlines = (SATURDAY_TEN, "2026-11-28T04:00:00Z");
    for (department, count) in [("water", 3), ("parks", 4)] {
        for n in 0..count {
            let t = format!("{department}{n}");
            let id = format!("{t}-opened");
            let event = change(
                "chenzhou",
                &id,
                &t,
                department,
                K::Opened,
                SATURDAY_TEN,
                deadlines,
            );
            app.ticket("chenzhou", event).await;
        }
    }
    app.settle().await;
    // The inspection job's run of Monday 09:00 stores the alarm the pages list.
    let db = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let now = at(MONDAY_NINE);
    let clock: stats_svc::jobs::inspection::Clock = Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    db.close().await;

    let admin = app.login("city-office-admin-key").await;
    let html = app.page_as(&admin, "/account/chenzhou?days=30").await;
    assert!(
        html.contains("近 7 天收到 7 件留言，无一答复"),
        "the account's view reads the account's count: {html}"
    );
    let water = app.login("water-desk-key-01").await;
    let html = app.page_as(&water, "/account/chenzhou?days=30").await;
    assert!(
        readiness_line(&html).contains("近 7 天留言 3 件"),
        "{}",
        readiness_line(&html)
    );
    assert!(
        !html.contains("收到 7 件"),
        "water's desk reads the account's 7 tickets beside its own 3 in the alarm"
    );
    assert!(
        html.contains("无一答复"),
        "the alarm itself is the account's and stays"
    );
    app.stop().await;
}

/// Water passes a ticket to roads at 17:29 on Wednesday 30 September, a minute before
/// its acknowledgement is due, on the eve of National Day (1–7 October off,
/// `INTERACTION_HOLIDAYS`); roads acknowledges at 09:10 on Thursday 8 October, ten
/// minutes into the first working day after the move: in time by the calendar, as
/// gRPC's scorecard judges it. The account page's compliance table and a roads desk's
/// overview counted the grace in weekdays alone (over by 10:59 on 1 October) and
/// called roads late.
#[tokio::test]
async fn a_ticket_moved_on_the_eve_of_a_holiday_is_in_time_on_the_pages_as_in_grpc() {
    use ev::TicketChangeKind as K;
    let mut app = start_with(
        "2026-10-08T04:00:00Z",
        "false",
        [("INTERACTION_HOLIDAYS", "2026-10-01..2026-10-07")],
    )
    .await;
    let opened = "2026-09-30T01:00:00Z";
    let due = "2026-09-30T09:30:00Z";
    let at = |kind: K, department: &str, occurred: &str| {
        change(
            "chenzhou",
            &format!("h1-{kind:?}"),
            "h1",
            department,
            kind,
            occurred,
            (opened, due),
        )
    };
    let moved = ev::TicketChanged {
        previous_department: "water".to_owned(),
        ..at(K::Assigned, "roads", "2026-09-30T09:29:00Z")
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..at(K::Overdue, "roads", due)
    };
    for event in [
        at(K::Opened, "water", opened),
        moved,
        overdue,
        at(K::Acknowledged, "roads", "2026-10-08T01:10:00Z"),
    ] {
        app.ticket("chenzhou", event).await;
    }
    app.settle().await;

    let admin = app.login("city-office-admin-key").await;
    let html = app.page_as(&admin, "/account/chenzhou?days=30").await;
    assert_eq!(
        (
            row(&html, "water")[7].as_str(),
            row(&html, "roads")[7].as_str()
        ),
        ("0%（0/1）", "100%（1/1）"),
        "roads acknowledged inside the grace the calendar gives it"
    );
    let roads = app.login("roads-desk-key-01").await;
    let overview = app.page_as(&roads, "/").await;
    assert_eq!(
        row(&overview, "<a href=\"/account/chenzhou\">chenzhou</a>")[5],
        "100%（1/1）",
        "the roads desk's own rate on the overview"
    );
    app.stop().await;
}

/// The same ticket, in the inspection job the service starts: water passed it on to
/// roads at 17:29 on 30 September, the eve of National Day, and roads acknowledged at
/// 09:10 on 8 October, inside the grace the calendar gives it (to 10:59). The
/// overdue-share alarm charges the missed deadline to water, as the scorecard does:
/// counted in weekdays, the grace ended on 1 October and roads was alarmed.
#[tokio::test]
async fn a_ticket_moved_on_the_eve_of_a_holiday_raises_no_overdue_alarm_for_the_receiver() {
    use ev::TicketChangeKind as K;
    let mut app = start_with(
        // Before roads' grace ends: a check reading the ticket before its
        // acknowledgement is folded finds roads inside it too.
        "2026-10-08T02:30:00Z",
        "false",
        [
            ("INTERACTION_HOLIDAYS", "2026-10-01..2026-10-07"),
            ("INSPECTION_INTERVAL", "1s"),
            ("ALARM_OVERDUE_MIN_LATE", "1"),
        ],
    )
    .await;
    let opened = "2026-09-30T01:00:00Z";
    let due = "2026-09-30T09:30:00Z";
    let at = |kind: K, department: &str, occurred: &str| {
        change(
            "chenzhou",
            &format!("h1-{kind:?}"),
            "h1",
            department,
            kind,
            occurred,
            (opened, due),
        )
    };
    let moved = ev::TicketChanged {
        previous_department: "water".to_owned(),
        ..at(K::Assigned, "roads", "2026-09-30T09:29:00Z")
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..at(K::Overdue, "roads", due)
    };
    for event in [
        at(K::Opened, "water", opened),
        moved,
        overdue,
        at(K::Acknowledged, "roads", "2026-10-08T01:10:00Z"),
    ] {
        app.ticket("chenzhou", event).await;
    }
    app.settle().await;

    let db = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alarmed = loop {
        let subjects: Vec<String> = sqlx::query_scalar(
            "SELECT subject FROM alarms WHERE account = 'chenzhou'
                AND rule = 'overdue_share' AND day = '2026-10-08' ORDER BY subject",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        if !subjects.is_empty() {
            break subjects;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no overdue-share alarm raised"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        alarmed,
        ["water"],
        "roads acknowledged inside the grace the calendar gives it"
    );
    app.stop().await;
}
