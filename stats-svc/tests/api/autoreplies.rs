//! Keyword and directory hits (`events.v1.AutoReplied`, published by interaction-svc
//! on `interaction.{account}.autoreply.{source}`) rolled up exactly once each on the
//! office day, and the reply-path check: citizens writing while nothing answers them
//! (no automatic answer, no ticket taking the message in) raises `interaction_broken`
//! with the subject `reply_path`, at the job's injected clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;
use stats_svc::domain::inspection::InspectionRules;
use stats_svc::jobs::inspection::{Clock, check_once};

use crate::helpers::{TestApp, VIEWER_KEY, authed, spawn_app, text_message};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn ts(at: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    })
}

fn office() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

struct Answer<'a> {
    id: &'a str,
    at: &'a str,
    source: ev::AutoReplySource,
    rule_id: &'a str,
    matched: &'a str,
    service_id: &'a str,
    category: &'a str,
}

async fn publish_answer(app: &TestApp, account: &str, msg_id: &str, a: &Answer<'_>) {
    let event = ev::AutoReplied {
        header: Some(ev::EventHeader {
            event_id: a.id.to_owned(),
            account: account.to_owned(),
            occurred_at: ts(at(a.at)),
        }),
        openid: "o_citizen".to_owned(),
        source: a.source as i32,
        rule_id: a.rule_id.to_owned(),
        matched: a.matched.to_owned(),
        service_id: a.service_id.to_owned(),
        category: a.category.to_owned(),
        inbound_event_id: format!("{account}:o_citizen:{}", a.id),
        answered: ev::AnsweredInbound::Message as i32,
    };
    let source = match a.source {
        ev::AutoReplySource::Rule => "rule",
        ev::AutoReplySource::DirectoryService => "directory_service",
        _ => "directory_category",
    };
    app.publish_on(
        &format!("interaction.{account}.autoreply.{source}"),
        msg_id,
        event.encode_to_vec(),
    )
    .await;
}

async fn series(app: &TestApp, metric: &str, from: &str, to: &str) -> Vec<(String, String, i64)> {
    let series = app
        .client
        .clone()
        .get_daily_series(authed(
            pb::GetDailySeriesRequest {
                account: "chenzhou".to_owned(),
                metric: metric.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .expect("series answers")
        .into_inner();
    series
        .points
        .into_iter()
        .map(|p| (p.day, p.key, p.value))
        .collect()
}

/// Waits until `sql` (a count) reaches `expected`.
async fn wait_for_count(db: &sqlx::PgPool, sql: &str, expected: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(db).await.unwrap();
        if count == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql}: {count}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keyword_and_directory_hits_count_once_each_on_the_office_day() {
    let app = spawn_app().await;
    let db = app.db().await;
    use ev::AutoReplySource as S;
    let answers = [
        // 23:59:59 on 30 November in the office.
        Answer {
            id: "ar-1",
            at: "2026-11-30T15:59:59Z",
            source: S::Rule,
            rule_id: "r-housing",
            matched: "公积金",
            service_id: "",
            category: "",
        },
        // 00:00:00 on 1 December: the next office day.
        Answer {
            id: "ar-2",
            at: "2026-11-30T16:00:00Z",
            source: S::Rule,
            rule_id: "r-housing",
            matched: "公积金",
            service_id: "",
            category: "",
        },
        Answer {
            id: "ar-3",
            at: "2026-12-01T02:00:00Z",
            source: S::DirectoryService,
            rule_id: "",
            matched: "社保卡",
            service_id: "svc-ssc",
            category: "social",
        },
        Answer {
            id: "ar-4",
            at: "2026-12-01T03:00:00Z",
            source: S::DirectoryCategory,
            rule_id: "",
            matched: "cat_social",
            service_id: "",
            category: "social",
        },
    ];
    for a in &answers {
        publish_answer(&app, "chenzhou", a.id, a).await;
    }
    // A redelivery under another message id (JetStream's dedup does not catch it) and
    // a plain duplicate: neither counts again.
    publish_answer(&app, "chenzhou", "ar-2-again", &answers[1]).await;
    publish_answer(&app, "chenzhou", "ar-3", &answers[2]).await;
    wait_for_count(
        &db,
        "SELECT count(*) FROM processed_events WHERE event_id LIKE 'ar-%'",
        4,
    )
    .await;
    // The redelivery comes after the four: wait until the consumer has acked everything.
    let mut consumer = app
        .jetstream
        .get_stream(app.nats.namespace.name("INTERACTION"))
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
            &app.nats.namespace.name("stats-autoreplies"),
        )
        .await
        .expect("stats-svc provisioned its consumer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (from, to) = ("2026-11-30", "2026-12-01");
    let day = |d: &str, k: &str, v: i64| (d.to_owned(), k.to_owned(), v);
    assert_eq!(
        series(&app, "keyword_hits", from, to).await,
        [day(from, "公积金", 1), day(to, "公积金", 1)]
    );
    assert_eq!(
        series(&app, "rule_hits", from, to).await,
        [day(from, "r-housing", 1), day(to, "r-housing", 1)]
    );
    assert_eq!(
        series(&app, "directory_service_hits", from, to).await,
        [day(to, "svc-ssc", 1)]
    );
    assert_eq!(
        series(&app, "directory_category_hits", from, to).await,
        [day(to, "social", 2)]
    );
    assert_eq!(
        series(&app, "auto_replies", from, to).await,
        [
            day(from, "rule", 1),
            day(to, "directory_category", 1),
            day(to, "directory_service", 1),
            day(to, "rule", 1),
        ]
    );
    assert_eq!(
        series(&app, "auto_replies_by_hour", from, to).await,
        [
            day(from, "23", 1),
            day(to, "00", 1),
            day(to, "10", 1),
            day(to, "11", 1),
        ]
    );
    db.close().await;
    app.stop().await;
}

/// Six citizen messages to `account` from 08:00 on 30 November (office time).
async fn six_messages(app: &TestApp, account: &str) {
    let start = at("2026-11-30T00:00:00Z").timestamp();
    for n in 0..6 {
        let id = format!("{account}:o_citizen:{n}");
        app.publish(&text_message(account, &id, start + n * 300))
            .await;
    }
}

async fn reply_path_alarms(db: &sqlx::PgPool, account: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT rule, detail FROM alarms WHERE account = $1 AND subject = 'reply_path'")
        .bind(account)
        .fetch_all(db)
        .await
        .unwrap()
}

fn clock(now: &str) -> Clock {
    let now = at(now);
    Arc::new(move || now)
}

#[tokio::test]
async fn messages_nothing_answered_for_hours_raise_the_reply_path_alarm() {
    let app = spawn_app().await;
    let db = app.db().await;
    six_messages(&app, "chenzhou").await;
    wait_for_count(
        &db,
        "SELECT COALESCE(sum(value), 0)::bigint FROM daily_counts
          WHERE account = 'chenzhou' AND metric = 'messages_by_hour'",
        6,
    )
    .await;
    let rules = InspectionRules::default();

    // 09:05: the window (06:00-08:00 and the settling hour) holds none of them yet.
    check_once(
        &db,
        &rules,
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T01:05:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert!(reply_path_alarms(&db, "chenzhou").await.is_empty());

    // 10:30: 07:00-10:00 holds six messages and not one answer.
    check_once(
        &db,
        &rules,
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T02:30:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let alarms = reply_path_alarms(&db, "chenzhou").await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].0, "interaction_broken");
    assert!(alarms[0].1.contains("6 条留言"), "{}", alarms[0].1);
    db.close().await;
    app.stop().await;
}

#[tokio::test]
async fn messages_a_ticket_or_a_rule_took_in_raise_no_reply_path_alarm() {
    let app = spawn_app().await;
    let db = app.db().await;
    six_messages(&app, "chenzhou").await;
    six_messages(&app, "yizhang").await;
    // chenzhou: one message joined a citizen's ticket at 08:10.
    let joined = ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: "chenzhou:t-1:citizen_message:1".to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: ts(at("2026-11-30T00:10:00Z")),
        }),
        kind: ev::TicketChangeKind::CitizenMessage as i32,
        ticket_id: "t-1".to_owned(),
        department: "住建局".to_owned(),
        ..Default::default()
    };
    app.publish_on(
        "interaction.chenzhou.ticket.citizen_message",
        "chenzhou:t-1:citizen_message:1",
        joined.encode_to_vec(),
    )
    .await;
    // yizhang: a reply rule answered one at 09:40.
    publish_answer(
        &app,
        "yizhang",
        "yz-ar-1",
        &Answer {
            id: "yz-ar-1",
            at: "2026-11-30T01:40:00Z",
            source: ev::AutoReplySource::Rule,
            rule_id: "r-hello",
            matched: "你好",
            service_id: "",
            category: "",
        },
    )
    .await;
    wait_for_count(
        &db,
        "SELECT COALESCE(sum(value), 0)::bigint FROM daily_counts
          WHERE metric IN ('messages_by_hour', 'ticket_intake_by_hour', 'auto_replies_by_hour')",
        14,
    )
    .await;

    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T02:30:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert!(reply_path_alarms(&db, "chenzhou").await.is_empty());
    assert!(reply_path_alarms(&db, "yizhang").await.is_empty());
    db.close().await;
    app.stop().await;
}

/// Messages interaction-svc answers with neither a rule nor a ticket, by design, to
/// `account` from 08:00 on 30 November (office time): untranscribed voice notes and a
/// short video (each told "请改用文字", `Reply::Unreadable`) and a message from WeChat's
/// own `mphelper` (no citizen).
async fn six_unanswerable_messages(app: &TestApp, account: &str) {
    let start = at("2026-11-30T00:00:00Z").timestamp();
    for n in 0..6 {
        let id = format!("{account}:o_citizen:{n}");
        let created = start + n * 300;
        let mut message = text_message(account, &id, created);
        let (msg_type, body) = match n {
            0..4 => (
                "voice",
                format!("<MediaId><![CDATA[m{n}]]></MediaId><Format><![CDATA[amr]]></Format>"),
            ),
            4 => (
                "shortvideo",
                format!(
                    "<MediaId><![CDATA[m{n}]]></MediaId><ThumbMediaId><![CDATA[t{n}]]></ThumbMediaId>"
                ),
            ),
            _ => ("text", "<Content><![CDATA[hello]]></Content>".to_owned()),
        };
        let from = if n == 5 { "mphelper" } else { "o_citizen" };
        message.msg_type = msg_type.to_owned();
        message.from_user_name = from.to_owned();
        message.raw_xml = format!(
            "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\
             <FromUserName><![CDATA[{from}]]></FromUserName>\
             <CreateTime>{created}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>\
             {body}<MsgId>{created}</MsgId></xml>"
        );
        app.publish(&message).await;
    }
}

/// Six unrecognised voice notes, a short video and mphelper's message in the night:
/// every citizen was told to write instead, and nothing was broken, so no reply-path
/// alarm (they still count as messages for the charts).
#[tokio::test]
async fn messages_interaction_svc_does_not_take_in_raise_no_reply_path_alarm() {
    let app = spawn_app().await;
    let db = app.db().await;
    six_unanswerable_messages(&app, "chenzhou").await;
    wait_for_count(
        &db,
        "SELECT COALESCE(sum(value), 0)::bigint FROM daily_counts
          WHERE account = 'chenzhou' AND metric = 'messages_by_hour'",
        6,
    )
    .await;
    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T02:30:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert_eq!(reply_path_alarms(&db, "chenzhou").await, []);
    db.close().await;
    app.stop().await;
}

/// Five citizens answer "5" to the rating question between 19:00 and 22:00:
/// interaction-svc thanks each (`Reply::RatingThanks`) and rates their ticket (a
/// `RATED` change, no `AutoReplied`, no intake), so every one was answered and the
/// reply path is not failing.
#[tokio::test]
async fn ratings_answered_to_the_rating_question_raise_no_reply_path_alarm() {
    let app = spawn_app().await;
    let db = app.db().await;
    // 19:00 on 30 November, office time.
    let start = at("2026-11-30T11:00:00Z").timestamp();
    for n in 0..5 {
        let id = format!("chenzhou:o_citizen{n}:{n}");
        let created = start + n * 1800;
        let from = format!("o_citizen{n}");
        let mut message = text_message("chenzhou", &id, created);
        message.from_user_name = from.clone();
        message.raw_xml = format!(
            "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\
             <FromUserName><![CDATA[{from}]]></FromUserName>\
             <CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[5]]></Content><MsgId>{created}</MsgId></xml>"
        );
        app.publish(&message).await;
        // interaction-svc's change for it: at the message's time, id `{message}:ticket.rated`.
        let rated_id = format!("{id}:ticket.rated");
        let rated = ev::TicketChanged {
            header: Some(ev::EventHeader {
                event_id: rated_id.clone(),
                account: "chenzhou".to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: created,
                    nanos: 0,
                }),
            }),
            kind: ev::TicketChangeKind::Rated as i32,
            ticket_id: format!("t-{n}"),
            department: "住建局".to_owned(),
            rating: 5,
            ..Default::default()
        };
        app.publish_on(
            "interaction.chenzhou.ticket.rated",
            &rated_id,
            rated.encode_to_vec(),
        )
        .await;
    }
    wait_for_count(
        &db,
        "SELECT COALESCE(sum(value), 0)::bigint FROM daily_counts
          WHERE account = 'chenzhou' AND metric IN ('messages_by_hour', 'tickets_rated')",
        10,
    )
    .await;
    // 22:30: the window is 19:00-22:00.
    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock("2026-11-30T14:30:00Z"),
        office(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    assert_eq!(reply_path_alarms(&db, "chenzhou").await, []);
    db.close().await;
    app.stop().await;
}
