//! The daily rollups as a leader reads them: a known day of callbacks and ticket
//! changes goes in through JetStream (with duplicates, a redelivery under another
//! message id, out-of-order ticket events and two callbacks either side of the
//! office's midnight), and the series and the department scorecard come out exact.

use std::time::Duration;

use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;

use crate::helpers::{COUNTY_KEY, TestApp, VIEWER_KEY, WATER_DESK_KEY, authed, spawn_app};

/// 2026-11-30 09:00 in the office (+08:00).
const NINE_AM: i64 = 1_796_000_400;
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

fn raw_inbound(event_id: &str, at: i64, kind: ev::InboundKind, body: &str) -> ev::Inbound {
    let msg_type = if kind == ev::InboundKind::Event {
        "event"
    } else {
        "text"
    };
    ev::Inbound {
        header: Some(ev::EventHeader {
            event_id: event_id.to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
        }),
        kind: kind as i32,
        msg_type: msg_type.to_owned(),
        raw_xml: format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o_{event_id}</FromUserName>\
             <CreateTime>{at}</CreateTime>{body}</xml>"
        ),
        ..Default::default()
    }
}

fn message(event_id: &str, at: i64, msg_type: &str) -> ev::Inbound {
    let mut inbound = raw_inbound(
        event_id,
        at,
        ev::InboundKind::Message,
        &format!("<MsgType>{msg_type}</MsgType><Content>hi</Content><MsgId>{at}</MsgId>"),
    );
    inbound.msg_type = msg_type.to_owned();
    inbound
}

fn wechat_event(event_id: &str, at: i64, event: &str, key: &str) -> ev::Inbound {
    raw_inbound(
        event_id,
        at,
        ev::InboundKind::Event,
        &format!("<MsgType>event</MsgType><Event>{event}</Event><EventKey>{key}</EventKey>"),
    )
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A change of ticket `ticket` (opened at 09:00, acknowledgement due 10:00,
/// resolution due 12:00) at `at`.
fn ticket(
    event_id: &str,
    ticket: &str,
    department: &str,
    kind: ev::TicketChangeKind,
    at: i64,
) -> ev::TicketChanged {
    ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: event_id.to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: ts(at),
        }),
        kind: kind as i32,
        ticket_id: ticket.to_owned(),
        department: department.to_owned(),
        opened_at: ts(NINE_AM),
        acknowledge_due_at: ts(NINE_AM + HOUR),
        resolve_due_at: ts(NINE_AM + 3 * HOUR),
        ..Default::default()
    }
}

async fn publish_inbound(app: &TestApp, inbound: &ev::Inbound, msg_id: &str) {
    let subject = format!("wechat.inbound.chenzhou.{}", inbound.msg_type);
    app.publish_on(&subject, msg_id, inbound.encode_to_vec())
        .await;
}

async fn publish_ticket(app: &TestApp, change: &ev::TicketChanged, msg_id: &str) {
    let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
    app.publish_on(&subject, msg_id, change.encode_to_vec())
        .await;
}

/// chenzhou's department scorecard for 2026-11-30, as a viewer reads it.
async fn scorecard_of_the_day(app: &TestApp) -> pb::DepartmentScorecard {
    app.client
        .clone()
        .get_department_scorecard(authed(
            pb::GetDepartmentScorecardRequest {
                account: "chenzhou".to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .expect("scorecard answers")
        .into_inner()
}

/// Waits until `count` distinct events were applied (each claims its id once).
async fn wait_for_applied(app: &TestApp, count: i64) {
    let db = app.db().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&db)
            .await
            .unwrap();
        if applied == count {
            break;
        }
        assert!(
            applied < count,
            "{applied} events applied, {count} expected"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {count} events applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await;
}

async fn series(app: &TestApp, metric: &str) -> Vec<(String, String, i64)> {
    app.client
        .clone()
        .get_daily_series(authed(
            pb::GetDailySeriesRequest {
                account: "chenzhou".to_owned(),
                metric: metric.to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-12-01".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .expect("series answers")
        .into_inner()
        .points
        .into_iter()
        .map(|p| (p.day, p.key, p.value))
        .collect()
}

fn point(day: &str, key: &str, value: i64) -> (String, String, i64) {
    (day.to_owned(), key.to_owned(), value)
}

#[tokio::test]
async fn a_day_of_callbacks_and_tickets_rolls_up_exactly_whatever_the_order_and_duplicates() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;

    let callbacks = [
        wechat_event("in-1", NINE_AM, "subscribe", "qrscene_metro"),
        wechat_event("in-2", NINE_AM + MINUTE, "subscribe", ""),
        wechat_event("in-3", NINE_AM + 2 * MINUTE, "unsubscribe", ""),
        message("in-4", NINE_AM + 3 * MINUTE, "text"),
        message("in-5", NINE_AM + 4 * MINUTE, "text"),
        message("in-6", NINE_AM + 5 * MINUTE, "image"),
        wechat_event("in-7", NINE_AM + 6 * MINUTE, "CLICK", "MENU_GUIDE"),
        wechat_event("in-8", NINE_AM + 7 * MINUTE, "CLICK", "MENU_GUIDE"),
        // 00:01 on 1 December in the office, though still 30 November in UTC.
        message("in-9", NINE_AM + 15 * HOUR + MINUTE, "text"),
    ];
    // 23:59 on 30 November, delivered last of all (after the next day's).
    let late = message("in-10", NINE_AM + 15 * HOUR - MINUTE, "text");
    for inbound in &callbacks {
        let id = inbound.header.as_ref().unwrap().event_id.clone();
        publish_inbound(&app, inbound, &id).await;
    }
    // The same callback again under another message id: JetStream cannot drop it.
    publish_inbound(&app, &callbacks[3], "in-4-redelivered").await;

    let changes = [
        // t1 (water): answered within both deadlines and rated 5, published closing first.
        ticket("t1-close", "t1", "water", K::Closed, NINE_AM + 2 * HOUR),
        ticket("t1-open", "t1", "water", K::Opened, NINE_AM),
        ticket(
            "t1-ack",
            "t1",
            "water",
            K::Acknowledged,
            NINE_AM + 30 * MINUTE,
        ),
        ticket("t1-reply", "t1", "water", K::Replied, NINE_AM + HOUR),
        ticket("t1-rated", "t1", "water", K::Rated, NINE_AM + 3 * HOUR),
        // t2 (water): acknowledged late, after the sweeper marked it overdue.
        ticket("t2-open", "t2", "water", K::Opened, NINE_AM),
        ticket("t2-overdue", "t2", "water", K::Overdue, NINE_AM + HOUR),
        ticket("t2-ack", "t2", "water", K::Acknowledged, NINE_AM + 2 * HOUR),
        // t3 (roads): never acknowledged, both deadlines missed.
        ticket("t3-open", "t3", "roads", K::Opened, NINE_AM),
        ticket("t3-overdue-ack", "t3", "roads", K::Overdue, NINE_AM + HOUR),
        ticket(
            "t3-overdue-resolve",
            "t3",
            "roads",
            K::Overdue,
            NINE_AM + 3 * HOUR,
        ),
        // t4 (parks): replied to straight from open, which acknowledges it too.
        ticket("t4-open", "t4", "parks", K::Opened, NINE_AM),
        ticket("t4-reply", "t4", "parks", K::Replied, NINE_AM + 20 * MINUTE),
    ];
    let mut changes = changes.to_vec();
    changes[4].rating = 5;
    for change in &changes {
        let id = change.header.as_ref().unwrap().event_id.clone();
        publish_ticket(&app, change, &id).await;
    }
    publish_ticket(&app, &changes[2], "t1-ack-redelivered").await;
    publish_inbound(&app, &late, "in-10").await;

    wait_for_applied(&app, 10 + 13).await;

    assert_eq!(
        series(&app, "followers_new").await,
        [point("2026-11-30", "", 1), point("2026-11-30", "metro", 1)]
    );
    assert_eq!(
        series(&app, "followers_lost").await,
        [point("2026-11-30", "", 1)]
    );
    assert_eq!(
        series(&app, "messages").await,
        [
            point("2026-11-30", "image", 1),
            point("2026-11-30", "text", 3),
            point("2026-12-01", "text", 1),
        ]
    );
    assert_eq!(
        series(&app, "messages_by_hour").await,
        [
            point("2026-11-30", "09", 3),
            point("2026-11-30", "23", 1),
            point("2026-12-01", "00", 1),
        ]
    );
    assert_eq!(
        series(&app, "menu_clicks").await,
        [point("2026-11-30", "MENU_GUIDE", 2)]
    );
    assert_eq!(
        series(&app, "tickets_overdue").await,
        [
            point("2026-11-30", "roads", 2),
            point("2026-11-30", "water", 1)
        ]
    );

    let scorecard = scorecard_of_the_day(&app).await;
    let names: Vec<&str> = scorecard
        .departments
        .iter()
        .map(|d| d.department.as_str())
        .collect();
    assert_eq!(names, ["parks", "water", "roads"], "best compliance first");
    let parks = &scorecard.departments[0];
    assert_eq!(
        (parks.opened, parks.acknowledged, parks.answered),
        (1, 0, 1)
    );
    assert_eq!(parks.acknowledge_median_seconds, 1200.0);
    assert_eq!(parks.acknowledged_in_time, 1.0);
    let water = &scorecard.departments[1];
    assert_eq!(
        (
            water.opened,
            water.acknowledged,
            water.answered,
            water.closed,
            water.overdue,
            water.rated
        ),
        (2, 2, 1, 1, 1, 1)
    );
    assert_eq!(water.mean_rating, 5.0);
    // Acknowledged after 30 min and 2 h: nearest-rank median and p90.
    assert_eq!(water.acknowledge_median_seconds, 1800.0);
    assert_eq!(water.acknowledge_p90_seconds, 7200.0);
    assert_eq!(water.resolve_median_seconds, 7200.0);
    assert_eq!(water.acknowledged_in_time, 0.5);
    assert_eq!(water.resolved_in_time, 0.5);
    let roads = &scorecard.departments[2];
    assert_eq!((roads.opened, roads.overdue, roads.acknowledged), (1, 2, 0));
    assert_eq!(roads.acknowledged_in_time, 0.0);

    // A county's key reads its own account only: the city's is not found.
    let status = app
        .client
        .clone()
        .get_department_scorecard(authed(
            pb::GetDepartmentScorecardRequest {
                account: "chenzhou".to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            COUNTY_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let status = app
        .client
        .clone()
        .get_daily_series(authed(
            pb::GetDailySeriesRequest {
                account: "chenzhou".to_owned(),
                metric: "nonsense".to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-11-30".to_owned(),
            },
            VIEWER_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("metric:"), "{status:?}");
    app.stop().await;
}

/// PostgreSQL text cannot hold U+0000, and a raw NUL byte in a callback's CDATA
/// parses: a menu key carrying one once failed the insert of its rollup on every
/// delivery until the callback was dead-lettered. It is counted, without the NUL.
#[tokio::test]
async fn a_menu_key_scene_or_url_with_a_nul_character_is_counted_without_it() {
    let app = spawn_app().await;
    for (event_id, event, key) in [
        ("nul-1", "CLICK", "<![CDATA[MENU_\u{0}GUIDE]]>"),
        ("nul-2", "SCAN", "<![CDATA[metro\u{0}]]>"),
        ("nul-3", "VIEW", "<![CDATA[https://gov.example/\u{0}]]>"),
    ] {
        publish_inbound(&app, &wechat_event(event_id, NINE_AM, event, key), event_id).await;
    }
    wait_for_applied(&app, 3).await;

    assert_eq!(
        series(&app, "menu_clicks").await,
        [point("2026-11-30", "MENU_GUIDE", 1)]
    );
    assert_eq!(
        series(&app, "qr_scans").await,
        [point("2026-11-30", "metro", 1)]
    );
    assert_eq!(
        series(&app, "menu_views").await,
        [point("2026-11-30", "https://gov.example/", 1)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_ticket_still_inside_its_deadlines_is_neither_on_time_nor_late() {
    let app = spawn_app().await;
    let year_2100 = 4_102_444_800;
    let pending = |event_id: &str, ticket_id: &str, kind| ev::TicketChanged {
        acknowledge_due_at: ts(year_2100),
        resolve_due_at: ts(year_2100),
        ..ticket(event_id, ticket_id, "water", kind, NINE_AM)
    };
    // Water: one ticket opened and waiting (both deadlines far ahead), one
    // acknowledged in time and still being resolved, one late (due 10:00, not
    // acknowledged: judged late once the deadline passed).
    publish_ticket(
        &app,
        &pending("w1-open", "w1", ev::TicketChangeKind::Opened),
        "w1-open",
    )
    .await;
    publish_ticket(
        &app,
        &pending("w2-open", "w2", ev::TicketChangeKind::Opened),
        "w2-open",
    )
    .await;
    publish_ticket(
        &app,
        &ev::TicketChanged {
            header: Some(ev::EventHeader {
                event_id: "w2-ack".into(),
                account: "chenzhou".into(),
                occurred_at: ts(NINE_AM + 10 * MINUTE),
            }),
            ..pending("w2-ack", "w2", ev::TicketChangeKind::Acknowledged)
        },
        "w2-ack",
    )
    .await;
    let late = ticket(
        "w3-open",
        "w3",
        "water",
        ev::TicketChangeKind::Opened,
        NINE_AM,
    );
    publish_ticket(&app, &late, "w3-open").await;
    wait_for_applied(&app, 4).await;

    let scorecard = scorecard_of_the_day(&app).await;
    let water = &scorecard.departments[0];
    assert_eq!(water.tickets_in_range, 3);
    // Acknowledgement judged for w2 (done, in time) and w3 (due, not done): 1 of 2.
    assert_eq!(
        (water.acknowledge_judged, water.acknowledged_in_time),
        (2, 0.5)
    );
    // Resolution judged for w3 only (due 12:00, not closed): 0 of 1.
    assert_eq!((water.resolve_judged, water.resolved_in_time), (1, 0.0));
    app.stop().await;
}

#[tokio::test]
async fn a_reopened_ticket_is_judged_by_the_deadlines_of_its_first_round() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    // Each ticket acknowledged at 11:00 (due 10:00) and closed at 14:00 (due 12:00):
    // late twice. Reopened at 15:00 with a new round's deadlines, days ahead; the
    // reopen of o1 arrives first, that of o2 last (the consumer's lanes do not keep
    // order across kinds).
    for (ticket_id, reopen_first) in [("o1", true), ("o2", false)] {
        let step = |kind, at| {
            let event_id = format!("{ticket_id}-{kind:?}");
            (ticket(&event_id, ticket_id, "water", kind, at), event_id)
        };
        let (reopen, reopen_id) = step(K::Reopened, NINE_AM + 6 * HOUR);
        let reopen = ev::TicketChanged {
            acknowledge_due_at: ts(NINE_AM + 30 * HOUR),
            resolve_due_at: ts(NINE_AM + 100 * HOUR),
            ..reopen
        };
        if reopen_first {
            publish_ticket(&app, &reopen, &reopen_id).await;
        }
        for (kind, at) in [
            (K::Opened, NINE_AM),
            (K::Overdue, NINE_AM + HOUR),
            (K::Acknowledged, NINE_AM + 2 * HOUR),
            (K::Closed, NINE_AM + 5 * HOUR),
        ] {
            let (change, event_id) = step(kind, at);
            publish_ticket(&app, &change, &event_id).await;
        }
        if !reopen_first {
            publish_ticket(&app, &reopen, &reopen_id).await;
        }
    }
    wait_for_applied(&app, 10).await;
    let scorecard = scorecard_of_the_day(&app).await;
    let water = &scorecard.departments[0];
    assert_eq!(
        (
            water.overdue,
            water.acknowledged_in_time,
            water.resolved_in_time
        ),
        (2, 0.0, 0.0),
        "late in their first round, whatever the second one's deadlines"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_ticket_moved_on_after_missing_its_deadline_is_late_for_the_department_that_missed_it() {
    use ev::TicketChangeKind as K;
    use stats_svc::domain::inspection::InspectionRules;
    use stats_svc::jobs::inspection::{Clock, check_once};
    let app = spawn_app().await;
    // Water lets the 10:00 acknowledgement pass (escalated), then the ticket is
    // moved to roads (退单改派), which acknowledges at once.
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        ..ticket("m-overdue", "m1", "water", K::Overdue, NINE_AM + HOUR)
    };
    for (change, id) in [
        (
            ticket("m-open", "m1", "water", K::Opened, NINE_AM),
            "m-open",
        ),
        (overdue, "m-overdue"),
        (
            ticket("m-assign", "m1", "roads", K::Assigned, NINE_AM + 2 * HOUR),
            "m-assign",
        ),
        (
            ticket(
                "m-ack",
                "m1",
                "roads",
                K::Acknowledged,
                NINE_AM + 2 * HOUR + 10 * MINUTE,
            ),
            "m-ack",
        ),
    ] {
        publish_ticket(&app, &change, id).await;
    }
    wait_for_applied(&app, 4).await;
    let scorecard = scorecard_of_the_day(&app).await;
    let of = |name: &str| {
        scorecard
            .departments
            .iter()
            .find(|d| d.department == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", scorecard.departments))
            .clone()
    };
    let (water, roads) = (of("water"), of("roads"));
    assert_eq!(
        (water.acknowledge_judged, water.acknowledged_in_time),
        (1, 0.0),
        "water missed it"
    );
    assert_eq!(
        roads.acknowledge_judged, 0,
        "roads took it over late: not its lateness"
    );
    assert_eq!(roads.tickets_in_range, 1, "roads owns it now");

    // The overdue-share alarm names water, not roads.
    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: Clock = std::sync::Arc::new(move || now);
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    check_once(
        &db,
        // One ticket: below the default minimum of late tickets.
        &InspectionRules {
            overdue_min_late: 1,
            ..InspectionRules::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        office,
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .expect("inspection runs");
    let subjects: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM alarms WHERE rule = 'overdue_share' AND day = '2026-11-30'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(subjects, ["water"]);
    app.stop().await;
}

/// A missed deadline (the sweeper's OVERDUE), naming which.
fn missed(
    event_id: &str,
    ticket_id: &str,
    department: &str,
    deadline: ev::TicketDeadline,
    at: i64,
) -> ev::TicketChanged {
    ev::TicketChanged {
        deadline: deadline as i32,
        ..ticket(
            event_id,
            ticket_id,
            department,
            ev::TicketChangeKind::Overdue,
            at,
        )
    }
}

/// "工单 T 两次超期督办" is about the ticket's current round: a ticket open after
/// missing both deadlines of it alarms; one reopened after missing both in an earlier
/// round does not (interaction-svc's reopen clears the overdue marks and sets new
/// deadlines) until it misses both new ones; a closed one never. The changes arrive
/// out of order (a reopen before its close, a new round's misses before its reopen).
#[tokio::test]
async fn a_ticket_escalated_twice_in_its_current_round_alarms_while_open() {
    use ev::TicketChangeKind as K;
    use ev::TicketDeadline::{Acknowledge, Resolve};
    use stats_svc::domain::inspection::InspectionRules;
    use stats_svc::jobs::inspection::{Clock, check_once};
    let app = spawn_app().await;
    let first_round = |t: &str, department: &str| {
        [
            ticket(&format!("{t}-open"), t, department, K::Opened, NINE_AM),
            missed(
                &format!("{t}-ack"),
                t,
                department,
                Acknowledge,
                NINE_AM + HOUR,
            ),
            missed(
                &format!("{t}-res"),
                t,
                department,
                Resolve,
                NINE_AM + 3 * HOUR,
            ),
        ]
    };
    let mut changes = Vec::new();
    // o1: both missed, still open.
    changes.extend(first_round("o1", "water"));
    // c1: both missed, then closed for good.
    changes.extend(first_round("c1", "roads"));
    changes.push(ticket(
        "c1-close",
        "c1",
        "roads",
        K::Closed,
        NINE_AM + 4 * HOUR,
    ));
    // r1, r2, r3: both missed, closed, reopened (the reopen published before the
    // close); r2 then misses both new deadlines, r3 only the new acknowledgement.
    for t in ["r1", "r2", "r3"] {
        changes.extend(first_round(t, "water"));
        if t != "r1" {
            changes.push(missed(
                &format!("{t}-ack2"),
                t,
                "water",
                Acknowledge,
                NINE_AM + 5 * HOUR + 30 * MINUTE,
            ));
        }
        if t == "r2" {
            changes.push(missed(
                &format!("{t}-res2"),
                t,
                "water",
                Resolve,
                NINE_AM + 5 * HOUR + 50 * MINUTE,
            ));
        }
        changes.push(ticket(
            &format!("{t}-reopen"),
            t,
            "water",
            K::Reopened,
            NINE_AM + 5 * HOUR,
        ));
        changes.push(ticket(
            &format!("{t}-close"),
            t,
            "water",
            K::Closed,
            NINE_AM + 4 * HOUR,
        ));
    }
    for change in &changes {
        let id = change.header.as_ref().unwrap().event_id.clone();
        publish_ticket(&app, change, &id).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: Clock = std::sync::Arc::new(move || now);
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        office,
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let escalated: Vec<String> = sqlx::query_scalar(
        // The service's own hourly run, on the real date, may raise its own: that day's aside.
        "SELECT subject FROM alarms WHERE rule = 'escalated_twice' AND day = '2026-11-30'
          ORDER BY subject",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(escalated, ["o1", "r2"]);
    db.close().await;
    app.stop().await;
}

/// A ticket reopened before migration 0024 whose new round's misses were folded then
/// kept only each deadline's first miss (the earlier round's, before the reopen), and
/// no latest: its current round cannot be told from the row, so it alarms as before
/// the rounds were told apart (a false alarm rather than none, ever, for exactly the
/// tickets reopened and overdue twice). Likewise one whose new acknowledgement miss
/// was folded before the upgrade and its new resolution miss after. A closed one
/// still does not.
#[tokio::test]
async fn a_ticket_reopened_and_escalated_twice_before_the_upgrade_still_alarms() {
    use stats_svc::domain::inspection::InspectionRules;
    use stats_svc::jobs::inspection::{Clock, check_once};
    let app = spawn_app().await;
    let db = app.db().await;
    let t = |seconds: i64| chrono::DateTime::from_timestamp(seconds, 0).unwrap();
    // Rows as the previous release's fold leaves them (LEAST of each deadline's misses,
    // no `last_*_missed_at`); `last_resolve_missed_at` as this release adds a later miss.
    for (ticket, reopened, last_resolve_missed) in [
        ("pre-reopened", Some(NINE_AM + 5 * HOUR), None),
        (
            "half-upgraded",
            Some(NINE_AM + 5 * HOUR),
            Some(NINE_AM + 5 * HOUR + 50 * MINUTE),
        ),
        ("pre-closed", None, None),
    ] {
        sqlx::query(
            "INSERT INTO ticket_times (account, ticket_id, department, department_at,
                 opened_at, acknowledge_due_at, resolve_due_at, deadlines_at,
                 acknowledge_missed_at, acknowledge_missed_by, resolve_missed_at,
                 resolve_missed_by, closed_at, last_closed_at, last_reopened_at,
                 last_resolve_missed_at, overdue_count)
             VALUES ('chenzhou', $1, 'water', $2, $2, $3, $4, $2, $3, 'water', $4, 'water',
                     $5, $5, $6, $7, 4)",
        )
        .bind(ticket)
        .bind(t(NINE_AM))
        .bind(t(NINE_AM + HOUR))
        .bind(t(NINE_AM + 3 * HOUR))
        .bind(t(NINE_AM + 4 * HOUR))
        .bind(reopened.map(t))
        .bind(last_resolve_missed.map(t))
        .execute(&db)
        .await
        .unwrap();
    }

    let now = t(NINE_AM + 6 * HOUR);
    let clock: Clock = std::sync::Arc::new(move || now);
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    check_once(
        &db,
        &InspectionRules::default(),
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        office,
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .unwrap();
    let escalated: Vec<String> = sqlx::query_scalar(
        // The service's own hourly run, on the real date, may raise its own: that day's aside.
        "SELECT subject FROM alarms WHERE rule = 'escalated_twice' AND day = '2026-11-30'
          ORDER BY subject",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(escalated, ["half-upgraded", "pre-reopened"]);
    db.close().await;
    app.stop().await;
}

/// An install upgraded to the release that counts messages by office hour has days
/// before the upgrade with messages and no hours: the account page's hours chart said
/// nothing, and 90 days of messages read as the few since the upgrade. It now says
/// from when it counts; an account counted both ways from its start says nothing.
#[tokio::test]
async fn the_hours_chart_says_from_when_messages_were_counted_by_hour() {
    let app = spawn_app().await;
    let db = app.db().await;
    let now = chrono::Utc::now();
    let office = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = stats_svc::domain::rollup::office_day(now, office);
    for account in ["anren", "yizhang"] {
        app.publish(&crate::helpers::text_message(
            account,
            &format!("{account}-1"),
            now.timestamp(),
        ))
        .await;
        app.wait_for_overview(account, |o| o.messages == 1).await;
    }
    // 40 days ago the release before counted anren's messages by day only.
    sqlx::query(
        "INSERT INTO daily_counts (account, day, metric, key, value)
         VALUES ('anren', $1, 'messages', 'text', 12)",
    )
    .bind(today - chrono::Days::new(40))
    .execute(&db)
    .await
    .unwrap();

    let page = |account: &str, days: u32| {
        let url = format!(
            "http://127.0.0.1:{}/account/{account}?days={days}",
            app.http_port
        );
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let note = format!("按时段统计自 {} 起", today.format("%Y-%m-%d"));
    let anren = page("anren", 90).await;
    assert!(anren.contains(&note), "no word of when the hours begin");
    assert!(!page("yizhang", 90).await.contains("按时段统计自"));
    db.close().await;
    app.stop().await;
}

/// A department's desk key reads its own department's line of the scorecard and its
/// own key of the ticket series, on gRPC and on the account page (with its place among
/// every department), not every other department's counts, lateness and ratings; the
/// statistics office (`STATS_ALL_DEPARTMENTS`) reads them all.
#[tokio::test]
async fn a_departments_key_reads_its_own_departments_figures_only() {
    let app = spawn_app().await;
    for (id, department) in [("w1", "water"), ("r1", "roads"), ("r2", "roads")] {
        let open = format!("{id}-open");
        let ack = format!("{id}-ack");
        publish_ticket(
            &app,
            &ticket(&open, id, department, ev::TicketChangeKind::Opened, NINE_AM),
            &open,
        )
        .await;
        publish_ticket(
            &app,
            &ticket(
                &ack,
                id,
                department,
                ev::TicketChangeKind::Acknowledged,
                NINE_AM + 10 * MINUTE,
            ),
            &ack,
        )
        .await;
    }
    wait_for_applied(&app, 6).await;
    let scorecard = |key: &'static str| {
        let mut client = app.client.clone();
        async move {
            let mut departments: Vec<String> = client
                .get_department_scorecard(authed(
                    pb::GetDepartmentScorecardRequest {
                        account: "chenzhou".to_owned(),
                        from: "2026-11-30".to_owned(),
                        to: "2026-11-30".to_owned(),
                    },
                    key,
                ))
                .await
                .expect("scorecard answers")
                .into_inner()
                .departments
                .into_iter()
                .map(|d| d.department)
                .collect();
            departments.sort();
            departments
        }
    };
    assert_eq!(scorecard(VIEWER_KEY).await, ["roads", "water"]);
    assert_eq!(
        scorecard(WATER_DESK_KEY).await,
        ["water"],
        "the desk reads its own line"
    );
    let opened = app
        .client
        .clone()
        .get_daily_series(authed(
            pb::GetDailySeriesRequest {
                account: "chenzhou".to_owned(),
                metric: "tickets_opened".to_owned(),
                from: "2026-11-30".to_owned(),
                to: "2026-12-01".to_owned(),
            },
            WATER_DESK_KEY,
        ))
        .await
        .expect("series answers")
        .into_inner();
    let points: Vec<(String, i64)> = opened
        .points
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect();
    assert_eq!(points, [("water".to_owned(), 1)]);

    // The account page a session of the desk's key gets.
    let db = app.db().await;
    let page = stats_svc::app::dashboard::account_page(
        &db,
        &stats_svc::domain::inspection::InspectionRules::default(),
        &stats_svc::domain::AccountId::parse("chenzhou").unwrap(),
        chrono::DateTime::from_timestamp(NINE_AM + 3 * HOUR, 0).unwrap(),
        30,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        &work_calendar::WorkCalendar::default(),
        &stats_svc::domain::departments::DepartmentView::Own("water".to_owned()),
    )
    .await
    .unwrap();
    let lines: Vec<&str> = page
        .departments
        .iter()
        .map(|d| d.department.as_str())
        .collect();
    assert_eq!(lines, ["water"]);
    assert_eq!(page.department_place.map(|(_, listed)| listed), Some(2));
    db.close().await;
    app.stop().await;
}
