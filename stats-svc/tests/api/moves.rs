//! Tickets moved on (退单改派) before anyone acknowledged them: the department that
//! passed a ticket on is judged for its acknowledgement, so moving every ticket on
//! cannot make its rate; the department that took it over shortly before the
//! deadline is not charged for missing it.

use std::time::Duration;

use prost::Message as _;
use proto::events::v1 as ev;
use proto::stats::v1 as pb;

use crate::helpers::{TestApp, VIEWER_KEY, authed, spawn_app};

/// 09:00 on 30 November 2026, office time.
const NINE_AM: i64 = 1_796_000_400;
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A change of ticket `m1` (opened at 09:00, acknowledgement due 10:00, resolution
/// due 12:00) at `at`, owned by `department` after it.
fn change(id: &str, department: &str, kind: ev::TicketChangeKind, at: i64) -> ev::TicketChanged {
    ev::TicketChanged {
        header: Some(ev::EventHeader {
            event_id: id.to_owned(),
            account: "chenzhou".to_owned(),
            occurred_at: ts(at),
        }),
        kind: kind as i32,
        ticket_id: "m1".to_owned(),
        department: department.to_owned(),
        opened_at: ts(NINE_AM),
        acknowledge_due_at: ts(NINE_AM + HOUR),
        resolve_due_at: ts(NINE_AM + 3 * HOUR),
        ..Default::default()
    }
}

async fn wait_for_applied(app: &TestApp, count: i64) {
    let db = app.db().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&db)
            .await
            .unwrap();
        if applied >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {count} events applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_ticket_moved_on_unacknowledged_just_before_its_deadline_is_late_for_the_department_that_moved_it()
 {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    // Water sits on the ticket and passes it to roads at 09:55 (退单改派), five
    // minutes before the 10:00 acknowledgement; the sweeper escalates it at 10:00,
    // under roads; roads acknowledges at 10:30.
    let moved = ev::TicketChanged {
        previous_department: "water".to_owned(),
        ..change("m-assign", "roads", K::Assigned, NINE_AM + 55 * MINUTE)
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..change("m-overdue", "roads", K::Overdue, NINE_AM + HOUR)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        moved,
        overdue,
        change(
            "m-ack",
            "roads",
            K::Acknowledged,
            NINE_AM + HOUR + 30 * MINUTE,
        ),
    ];
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let scorecard = app
        .client
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
        .into_inner();
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
        "water passed it on unacknowledged: judged, late"
    );
    assert_eq!(
        (roads.acknowledge_judged, roads.acknowledged_in_time),
        (1, 1.0),
        "roads acknowledged within the grace after the move"
    );

    // The overdue-share alarm names water, not roads.
    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: stats_svc::jobs::inspection::Clock = std::sync::Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        // One ticket: below the default minimum of late tickets.
        &stats_svc::domain::inspection::InspectionRules {
            overdue_min_late: 1,
            ..Default::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
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

#[tokio::test]
async fn a_ticket_moved_twice_is_late_for_the_department_that_sat_on_it_and_passed_it_on() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    // Water passes the ticket to parks at 09:05; parks sits on it for fifty minutes and
    // passes it to roads at 09:55, five minutes before the 10:00 acknowledgement; the
    // sweeper escalates it at 10:00, under roads; roads acknowledges at 10:30.
    let move_to = |id: &str, from: &str, to: &str, at: i64| ev::TicketChanged {
        previous_department: from.to_owned(),
        ..change(id, to, K::Assigned, at)
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..change("m-overdue", "roads", K::Overdue, NINE_AM + HOUR)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        move_to("m-to-parks", "water", "parks", NINE_AM + 5 * MINUTE),
        move_to("m-to-roads", "parks", "roads", NINE_AM + 55 * MINUTE),
        overdue,
        change(
            "m-ack",
            "roads",
            K::Acknowledged,
            NINE_AM + HOUR + 30 * MINUTE,
        ),
    ];
    // Published last move first: the order events arrive in does not matter.
    for change in changes.iter().rev() {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let scorecard = app
        .client
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
        .into_inner();
    let judged = |name: &str| {
        scorecard
            .departments
            .iter()
            .find(|d| d.department == name)
            .map(|d| (d.acknowledge_judged, d.acknowledged_in_time))
    };
    assert_eq!(
        judged("water"),
        Some((1, 0.0)),
        "water passed it on unacknowledged"
    );
    assert_eq!(
        judged("parks"),
        Some((1, 0.0)),
        "parks sat on it and passed it on unacknowledged: {scorecard:?}"
    );
    assert_eq!(
        judged("roads"),
        Some((1, 1.0)),
        "roads acknowledged within the grace"
    );

    // Parks passed the ticket on inside the grace water's move gave it (to 11:05): the
    // escalation at 10:00 is water's, which moved it on with the deadline near.
    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: stats_svc::jobs::inspection::Clock = std::sync::Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        // One ticket: below the default minimum of late tickets.
        &stats_svc::domain::inspection::InspectionRules {
            overdue_min_late: 1,
            ..Default::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
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

/// Each missed deadline is charged on the overdue share to the department it is
/// whose: the acknowledgement, missed within the grace after water passed the ticket
/// on unacknowledged, to water; the resolution, missed two hours later while roads
/// held it, to roads (it was all water's before).
#[tokio::test]
async fn a_moved_tickets_later_resolution_miss_is_the_receivers_on_the_overdue_share() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    let moved = ev::TicketChanged {
        previous_department: "water".to_owned(),
        ..change("m-assign", "roads", K::Assigned, NINE_AM + 55 * MINUTE)
    };
    let missed = |id: &str, deadline: ev::TicketDeadline, at: i64| ev::TicketChanged {
        deadline: deadline as i32,
        overdue: true,
        ..change(id, "roads", K::Overdue, at)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        moved,
        missed(
            "m-overdue-ack",
            ev::TicketDeadline::Acknowledge,
            NINE_AM + HOUR,
        ),
        change(
            "m-ack",
            "roads",
            K::Acknowledged,
            NINE_AM + HOUR + 30 * MINUTE,
        ),
        missed(
            "m-overdue-resolve",
            ev::TicketDeadline::Resolve,
            NINE_AM + 3 * HOUR,
        ),
    ];
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: stats_svc::jobs::inspection::Clock = std::sync::Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        // One ticket: below the default minimum of late tickets.
        &stats_svc::domain::inspection::InspectionRules {
            overdue_min_late: 1,
            ..Default::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        &work_calendar::WorkCalendar::default(),
    )
    .await
    .expect("inspection runs");
    let subjects: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM alarms WHERE rule = 'overdue_share' AND day = '2026-11-30'
          ORDER BY subject",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(subjects, ["roads", "water"]);
    app.stop().await;
}

/// Water passes a ticket to parks at 09:05, the sweeper escalates it at 10:00 under
/// parks, parks passes it to roads at 11:00 and roads acknowledges at 11:10. On the
/// scorecard water and parks passed it on unacknowledged (late), roads answered
/// within the grace after the move. Parks passed it on inside the grace water's move
/// gave it (to 11:05), so it kept the ticket past no deadline of its own: the
/// escalation is water's on the overdue share, not parks', under which it was raised.
#[tokio::test]
async fn an_escalation_inside_the_grace_a_move_gave_is_overdue_for_the_department_that_moved_it() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    let move_to = |id: &str, from: &str, to: &str, at: i64| ev::TicketChanged {
        previous_department: from.to_owned(),
        ..change(id, to, K::Assigned, at)
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..change("m-overdue", "parks", K::Overdue, NINE_AM + HOUR)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        move_to("m-to-parks", "water", "parks", NINE_AM + 5 * MINUTE),
        overdue,
        move_to("m-to-roads", "parks", "roads", NINE_AM + 2 * HOUR),
        change(
            "m-ack",
            "roads",
            K::Acknowledged,
            NINE_AM + 2 * HOUR + 10 * MINUTE,
        ),
    ];
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let scorecard = app
        .client
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
        .into_inner();
    let judged = |name: &str| {
        scorecard
            .departments
            .iter()
            .find(|d| d.department == name)
            .map(|d| (d.acknowledge_judged, d.acknowledged_in_time))
    };
    assert_eq!(
        [judged("parks"), judged("water"), judged("roads")],
        [Some((1, 0.0)), Some((1, 0.0)), Some((1, 1.0))],
        "parks missed it, water passed it on, roads answered in the grace: {scorecard:?}"
    );

    // 11:30, before the resolution is due.
    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 2 * HOUR + 30 * MINUTE, 0).unwrap();
    let clock: stats_svc::jobs::inspection::Clock = std::sync::Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        &stats_svc::domain::inspection::InspectionRules {
            overdue_min_late: 1,
            ..Default::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
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

/// A→B→A before the deadline, A answering in time: A is judged once for the step, on
/// time (it answered the citizen), B late (it passed it on unacknowledged).
#[tokio::test]
async fn a_ticket_moved_away_and_back_is_judged_once_for_each_department() {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    let move_to = |id: &str, from: &str, to: &str, at: i64| ev::TicketChanged {
        previous_department: from.to_owned(),
        ..change(id, to, K::Assigned, at)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        move_to("m-to-parks", "water", "parks", NINE_AM + 5 * MINUTE),
        move_to("m-back", "parks", "water", NINE_AM + 20 * MINUTE),
        change("m-ack", "water", K::Acknowledged, NINE_AM + 30 * MINUTE),
    ];
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;
    let scorecard = app
        .client
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
        .into_inner();
    let judged = |name: &str| {
        scorecard
            .departments
            .iter()
            .find(|d| d.department == name)
            .map(|d| (d.acknowledge_judged, d.acknowledged_in_time))
    };
    assert_eq!(
        [judged("water"), judged("parks")],
        [Some((1, 1.0)), Some((1, 0.0))],
        "{scorecard:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_department_between_the_first_and_the_last_of_three_moves_is_charged_for_holding_the_ticket_past_its_deadline()
 {
    use ev::TicketChangeKind as K;
    let app = spawn_app().await;
    // Water passes the ticket to parks at 09:05 (parks has until 11:05, two office
    // hours on); the 10:00 deadline is escalated under parks; parks sits on it and
    // passes it to roads at 12:00, roads to streets at 12:30, and streets acknowledges
    // at 13:00. Published out of order: the moves are kept whatever order they come in.
    let move_to = |id: &str, from: &str, to: &str, at: i64| ev::TicketChanged {
        previous_department: from.to_owned(),
        ..change(id, to, K::Assigned, at)
    };
    let overdue = ev::TicketChanged {
        deadline: ev::TicketDeadline::Acknowledge as i32,
        overdue: true,
        ..change("m-overdue", "parks", K::Overdue, NINE_AM + HOUR)
    };
    let changes = [
        change("m-open", "water", K::Opened, NINE_AM),
        move_to(
            "m-to-streets",
            "roads",
            "streets",
            NINE_AM + 3 * HOUR + 30 * MINUTE,
        ),
        move_to("m-to-parks", "water", "parks", NINE_AM + 5 * MINUTE),
        overdue,
        change("m-ack", "streets", K::Acknowledged, NINE_AM + 4 * HOUR),
        move_to("m-to-roads", "parks", "roads", NINE_AM + 3 * HOUR),
    ];
    for change in &changes {
        let subject = format!("interaction.chenzhou.ticket.{:?}", change.kind()).to_lowercase();
        let id = change.header.as_ref().unwrap().event_id.clone();
        app.publish_on(&subject, &id, change.encode_to_vec()).await;
    }
    wait_for_applied(&app, changes.len() as i64).await;

    let scorecard = app
        .client
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
        .into_inner();
    let mut judged: Vec<(String, i64, f64)> = scorecard
        .departments
        .iter()
        .filter(|d| d.acknowledge_judged > 0)
        .map(|d| {
            (
                d.department.clone(),
                d.acknowledge_judged,
                d.acknowledged_in_time,
            )
        })
        .collect();
    judged.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        judged,
        [
            ("parks".to_owned(), 1, 0.0),
            ("roads".to_owned(), 1, 0.0),
            ("streets".to_owned(), 1, 1.0),
            ("water".to_owned(), 1, 0.0),
        ],
        "every department the ticket passed through is judged: {scorecard:?}"
    );

    // The overdue-share alarm names parks, which held the ticket past its own 11:05,
    // not roads, which passed it on inside the 14:00 its move gave it.
    let db = app.db().await;
    let now = chrono::DateTime::from_timestamp(NINE_AM + 6 * HOUR, 0).unwrap();
    let clock: stats_svc::jobs::inspection::Clock = std::sync::Arc::new(move || now);
    stats_svc::jobs::inspection::check_once(
        &db,
        &stats_svc::domain::inspection::InspectionRules {
            overdue_min_late: 1,
            ..Default::default()
        },
        &stats_svc::domain::install::Install::unnamed(),
        &clock,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
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
    assert_eq!(subjects, ["parks"]);
    app.stop().await;
}
