//! The deadline sweeper: overdue tickets are marked and escalated once, whatever the
//! number of replicas sweeping.

use chrono::{DateTime, Duration, FixedOffset, SubsecRound as _, Utc};
use interaction_svc::domain::DeadlinePolicy;
use interaction_svc::jobs::sweeper::{
    DECIDED_REPLY_RETENTION, DIRECTORY_ANSWER_RETENTION, PRUNE_BATCH, prune_decided_replies,
    prune_directory_answers, sweep_once, warn_closing_windows,
};
use platform::shutdown::Drain;
use prost::Message as _;
use proto::events::v1::{TicketChangeKind, TicketChanged, TicketDeadline};
use proto::interaction::v1::{
    AssignTicketRequest, GetTicketRequest, ListTicketsRequest, ReplyToTicketRequest,
    TicketActionRequest,
};

use crate::citizen::eventually;
use crate::helpers::{
    ACCOUNT, SOCIAL_AGENT_KEY, SUPERVISION_KEY, TestApp, spawn_app, spawn_app_with,
};

impl TestApp {
    /// Inserts `n` tickets in `state` whose acknowledgement deadline passed a minute ago
    /// and whose resolution deadline is tomorrow.
    async fn insert_late_tickets(&self, n: usize, state: &str) -> Vec<uuid::Uuid> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = self.insert_ticket("transport", state, 10).await;
            sqlx::query(
                "UPDATE tickets SET acknowledge_due_at = now() - interval '1 minute' WHERE id = $1",
            )
            .bind(id)
            .execute(&self.db)
            .await
            .unwrap();
            ids.push(id);
        }
        ids
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }
}

#[tokio::test]
async fn an_overdue_ticket_is_escalated_once_even_with_two_replicas() {
    let fast = [("SWEEP_INTERVAL", "50ms")];
    let app = spawn_app_with(&fast).await;
    let replica = app.spawn_replica(&fast).await;
    let late = app.insert_late_tickets(20, "open").await;
    // Acknowledged tickets are past their acknowledgement deadline by definition of
    // being acknowledged: only resolution can be late for them.
    let acknowledged = app.insert_late_tickets(1, "acknowledged").await;

    eventually("every late ticket is marked", || async {
        let marked = app
            .count(
                "SELECT count(*) FROM tickets WHERE acknowledge_overdue_at IS NOT NULL AND overdue",
            )
            .await;
        (marked == late.len() as i64).then_some(())
    })
    .await;
    replica.stop().await;

    let transitions = app
        .count(
            "SELECT count(*) FROM ticket_transitions WHERE action = 'overdue' AND actor = 'system'",
        )
        .await;
    let tickets_escalated = app
        .count("SELECT count(DISTINCT ticket_id) FROM ticket_transitions WHERE action = 'overdue'")
        .await;
    let events = app
        .count("SELECT count(*) FROM outbox WHERE subject LIKE 'interaction.%.ticket.overdue'")
        .await;
    assert_eq!((transitions, tickets_escalated, events), (20, 20, 20));
    let note: String =
        sqlx::query_scalar("SELECT note FROM ticket_transitions WHERE ticket_id = $1")
            .bind(late[0])
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        note,
        "acknowledge deadline passed; escalated to supervision"
    );
    let untouched = app
        .count(&format!(
            "SELECT count(*) FROM tickets WHERE id = '{}' AND NOT overdue",
            acknowledged[0]
        ))
        .await;
    assert_eq!(untouched, 1);

    let published = app
        .interaction_events(&format!("interaction.{ACCOUNT}.ticket.overdue"), 20)
        .await;
    assert_eq!(published.len(), 20);
    let event = TicketChanged::decode(published[0].payload.clone()).unwrap();
    assert_eq!(
        (event.kind(), event.actor.as_str()),
        (TicketChangeKind::Overdue, "system")
    );
    assert_eq!(event.deadline(), TicketDeadline::Acknowledge);
    assert!(event.overdue);
    assert_eq!(event.department, "transport", "the owner keeps the ticket");
}

#[tokio::test]
async fn concurrent_sweeps_escalate_each_deadline_of_each_ticket_once() {
    let app = spawn_app().await;
    // Deadlines stay in the future in real time, so the app's own background sweeper
    // cannot take any of them; only the sweeps below, run "ten days on", see them late.
    for _ in 0..30 {
        app.insert_ticket("transport", "open", 10).await;
    }
    // Ten days on, both deadlines of every ticket have passed.
    let later = Utc::now() + Duration::days(10);
    let sweeps = (0..4).map(|_| sweep_once(&app.db, later, "supervision"));
    let reports = futures::future::try_join_all(sweeps)
        .await
        .expect("sweeps succeed");
    let acknowledge: usize = reports.iter().map(|r| r.acknowledge_overdue).sum();
    let resolve: usize = reports.iter().map(|r| r.resolve_overdue).sum();
    assert_eq!((acknowledge, resolve), (30, 30));
    assert_eq!(
        app.count("SELECT count(*) FROM ticket_transitions WHERE action = 'overdue'")
            .await,
        60
    );
    let again = sweep_once(&app.db, later, "supervision").await.unwrap();
    assert_eq!(
        again.total(),
        0,
        "a marked deadline is never escalated again"
    );
}

impl TestApp {
    /// Inserts a social-security ticket closed nine days ago, whose first round was
    /// due eleven and ten days ago; `late`: it missed both deadlines and was
    /// escalated for them.
    async fn insert_closed_first_round(&self, late: bool) -> uuid::Uuid {
        let id = self
            .insert_ticket("social-security", "closed", 12 * 24 * 60)
            .await;
        sqlx::query(
            "UPDATE tickets SET closed_at = now() - interval '9 days',
                    acknowledge_due_at = now() - interval '11 days',
                    resolve_due_at = now() - interval '10 days',
                    acknowledge_overdue_at = CASE WHEN $2 THEN now() - interval '11 days' END,
                    resolve_overdue_at = CASE WHEN $2 THEN now() - interval '10 days' END,
                    overdue = $2
              WHERE id = $1",
        )
        .bind(id)
        .bind(late)
        .execute(&self.db)
        .await
        .unwrap();
        id
    }

    /// Reopens ticket `id` as the social-security agent.
    async fn reopen(&self, id: uuid::Uuid) {
        self.client(Some(SOCIAL_AGENT_KEY))
            .await
            .reopen_ticket(TicketActionRequest {
                id: id.to_string(),
                note: "市民不满意，重新办理".into(),
            })
            .await
            .expect("a closed ticket reopens");
    }
}

fn time(timestamp: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let timestamp = timestamp.expect("a timestamp");
    DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32).unwrap()
}

#[tokio::test]
async fn a_reopened_ticket_is_not_escalated_for_the_deadlines_its_first_round_met() {
    let app = spawn_app().await;
    let id = app.insert_closed_first_round(false).await;

    app.reopen(id).await;
    let report = sweep_once(&app.db, Utc::now(), "supervision")
        .await
        .unwrap();

    assert_eq!(report.total(), 0, "the new round is not due yet");
    let (overdue, marked, escalations): (bool, bool, i64) = sqlx::query_as(
        "SELECT overdue, acknowledge_overdue_at IS NOT NULL OR resolve_overdue_at IS NOT NULL,
                (SELECT count(*) FROM outbox WHERE subject LIKE 'interaction.%.ticket.overdue')
           FROM tickets WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((overdue, marked, escalations), (false, false, 0));
    // The reopening announces the new round's deadlines, counted from the reopening
    // by intake's policy (stats-svc judges the round by them).
    let events = app.outbox_ticket_events().await;
    let (_, reopened) = events
        .iter()
        .find(|(_, e)| e.kind() == TicketChangeKind::Reopened)
        .expect("the reopening is announced");
    let reopened_at = time(reopened.header.as_ref().unwrap().occurred_at);
    let due = DeadlinePolicy::default().deadlines(reopened_at, &reopened.category);
    assert_eq!(
        (
            time(reopened.acknowledge_due_at),
            time(reopened.resolve_due_at)
        ),
        (
            due.acknowledge_due_at.trunc_subsecs(6),
            due.resolve_due_at.trunc_subsecs(6)
        )
    );
    assert!(due.acknowledge_due_at > reopened_at && !reopened.overdue);
}

#[tokio::test]
async fn a_reopened_ticket_late_in_its_first_round_is_escalated_when_its_new_deadlines_pass() {
    let app = spawn_app().await;
    let id = app.insert_closed_first_round(true).await;

    app.reopen(id).await;

    let overdue: bool = sqlx::query_scalar("SELECT overdue FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!overdue, "the new round starts on time");
    // A month on, the reopened round needed an acknowledgement and a resolution too.
    let later = Utc::now() + Duration::days(30);
    let report = sweep_once(&app.db, later, "supervision").await.unwrap();
    assert_eq!((report.acknowledge_overdue, report.resolve_overdue), (1, 1));
}

#[tokio::test]
async fn an_unanswered_ticket_is_noted_once_before_the_citizens_window_closes() {
    let app = spawn_app().await;
    // Swept 13 hours on, so the service's own sweeper (at the real time) finds nothing
    // to note and holds no row these sweeps would skip.
    let later = Utc::now() + Duration::hours(13);
    // Wrote 30 hours ago: 43 hours before `later`, when the window closes in 5 hours,
    // within the 6-hour warning.
    app.insert_follower("o-closing", Some(30 * 60)).await;
    let closing = app
        .insert_citizen_ticket("o-closing", "transport", "acknowledged", 30 * 60)
        .await;
    // Wrote an hour ago: 34 hours left at `later`, nothing to say yet.
    app.insert_follower("o-recent", Some(60)).await;
    let recent = app
        .insert_citizen_ticket("o-recent", "transport", "open", 60)
        .await;

    assert_eq!(
        warn_closing_windows(&app.db, later, office())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        warn_closing_windows(&app.db, later, office())
            .await
            .unwrap(),
        0
    );

    let notes = |id: uuid::Uuid| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT note FROM ticket_transitions WHERE ticket_id = $1 AND action = 'window_closing'",
            )
            .bind(id)
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    let noted = notes(closing).await;
    assert_eq!(noted.len(), 1, "noted once: {noted:?}");
    let wrote: DateTime<Utc> = sqlx::query_scalar(
        "SELECT last_interaction_at FROM followers WHERE account = $1 AND openid = 'o-closing'",
    )
    .bind(ACCOUNT)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let closes = (wrote + Duration::hours(48)).with_timezone(&office());
    assert!(
        noted[0].contains(&format!(
            "48-hour window closes at {} (UTC+08:00)",
            closes.format("%Y-%m-%d %H:%M")
        )),
        "in office time: {}",
        noted[0]
    );
    assert!(notes(recent).await.is_empty());
    // The deadline is untouched: the window is not what the department is judged by.
    let overdue: bool = sqlx::query_scalar("SELECT overdue FROM tickets WHERE id = $1")
        .bind(closing)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!overdue);
}

/// The office's time zone (`INTERACTION_TIMEZONE`'s default).
fn office() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// Two replicas noting closing windows at once: replica B's pass has locked one
/// ticket and is writing its note (held there by a trigger on B's session) when
/// replica A notes the other ticket and commits. B's pass then comes to A's ticket,
/// no longer locked: it must see A's note and not write a second.
#[tokio::test]
async fn two_replicas_noting_closing_windows_together_note_each_ticket_once() {
    let app = spawn_app().await;
    let later = Utc::now() + Duration::hours(13);
    let mut tickets = Vec::new();
    for openid in ["o-closing-1", "o-closing-2"] {
        app.insert_follower(openid, Some(30 * 60)).await;
        tickets.push(
            app.insert_citizen_ticket(openid, "transport", "acknowledged", 30 * 60)
                .await,
        );
    }
    sqlx::raw_sql(
        "CREATE FUNCTION hold_replica_b() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF current_setting('application_name') = 'replica-b' THEN
                 PERFORM pg_advisory_lock(7301);
                 PERFORM pg_advisory_unlock(7301);
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER hold_replica_b BEFORE INSERT ON ticket_transitions
             FOR EACH ROW EXECUTE FUNCTION hold_replica_b();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let mut gate = app.db.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7301)")
        .execute(&mut *gate)
        .await
        .unwrap();

    let replica_b = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            (*app.db.connect_options())
                .clone()
                .application_name("replica-b"),
        )
        .await
        .unwrap();
    let b = tokio::spawn(async move { warn_closing_windows(&replica_b, later, office()).await });
    eventually("replica B waits inside its first note", || async {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE application_name = 'replica-b' AND wait_event = 'advisory'
                               AND datname = current_database())",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        waiting.then_some(())
    })
    .await;
    let by_a = warn_closing_windows(&app.db, later, office())
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_unlock(7301)")
        .execute(&mut *gate)
        .await
        .unwrap();
    let by_b = b.await.unwrap().unwrap();

    let notes: Vec<i64> = sqlx::query_scalar(
        "SELECT count(h.*) FROM unnest($1::uuid[]) AS t(id)
           LEFT JOIN ticket_transitions h ON h.ticket_id = t.id AND h.action = 'window_closing'
          GROUP BY t.id ORDER BY t.id",
    )
    .bind(&tickets)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        notes,
        [1, 1],
        "each ticket noted once (A noted {by_a}, B {by_b})"
    );
    assert_eq!(by_a + by_b, 2);
}

#[tokio::test]
async fn directory_answers_past_their_use_are_pruned() {
    let app = spawn_app().await;
    for (openid, hours_ago) in [("o-old", 25), ("o-fresh", 0)] {
        sqlx::query(
            "INSERT INTO directory_answers
                 (account, openid, event_id, service_id, service_name, msg_type, body, answered_at)
             VALUES ($1, $2, 'e', $3, '公积金提取', 'news', '{}',
                     now() - make_interval(hours => $4))",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .bind(uuid::Uuid::now_v7())
        .bind(hours_ago)
        .execute(&app.db)
        .await
        .unwrap();
    }
    prune_directory_answers(&app.db, Utc::now(), &Drain::new())
        .await
        .unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT openid FROM directory_answers")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(left, ["o-fresh"]);
}

impl TestApp {
    /// Inserts `n` decided replies of openids `o-{name}-{i}`, decided `hours_ago`.
    async fn insert_decided_replies(&self, name: &str, n: i64, hours_ago: i32) {
        sqlx::query(
            "INSERT INTO decided_replies (event_id, account, openid, reply, decided_at)
             SELECT $1::text || ':' || i, $2, 'o-' || $1::text || '-' || i,
                    convert_to('已收到，已转交交通运输局办理', 'UTF8'),
                    now() - make_interval(hours => $4)
               FROM generate_series(1, $3::bigint) AS i",
        )
        .bind(name)
        .bind(ACCOUNT)
        .bind(n)
        .bind(hours_ago)
        .execute(&self.db)
        .await
        .unwrap();
    }

    /// Inserts `n` directory answers of openids `o-{name}-{i}`, given `hours_ago`.
    async fn insert_directory_answers(&self, name: &str, n: i64, hours_ago: i32) {
        sqlx::query(
            "INSERT INTO directory_answers
                 (account, openid, event_id, service_id, service_name, msg_type, body, answered_at)
             SELECT $1, 'o-' || $2::text || '-' || i, 'e-' || i, $3, '公积金提取', 'news', '{}',
                    now() - make_interval(hours => $5)
               FROM generate_series(1, $4::bigint) AS i",
        )
        .bind(ACCOUNT)
        .bind(name)
        .bind(uuid::Uuid::now_v7())
        .bind(n)
        .bind(hours_ago)
        .execute(&self.db)
        .await
        .unwrap();
    }

    async fn openids_in(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar(&format!("SELECT openid FROM {table} ORDER BY openid"))
            .fetch_all(&self.db)
            .await
            .unwrap()
    }
}

/// More than two batches expired at once (a busy spell): one sweep deletes them all,
/// not one batch a sweep (33 rows/s, behind a consumer writing thousands a second).
/// The sweep runs 23 hours on, so rows decided 2 hours ago are past their day and
/// rows decided now are not; the service's own sweeper, on the real clock, takes none.
#[tokio::test]
async fn decided_replies_past_their_day_are_all_pruned_by_one_sweep_however_many() {
    let app = spawn_app().await;
    let expired = 2 * PRUNE_BATCH + 1;
    app.insert_decided_replies("old", expired, 2).await;
    app.insert_decided_replies("fresh", 2, 0).await;

    let later = Utc::now() + DECIDED_REPLY_RETENTION - Duration::hours(1);
    let deleted = prune_decided_replies(&app.db, later, &Drain::new())
        .await
        .unwrap();

    assert_eq!(deleted, expired as u64);
    assert_eq!(
        app.openids_in("decided_replies").await,
        ["o-fresh-1", "o-fresh-2"]
    );
}

#[tokio::test]
async fn directory_answers_past_their_use_are_all_pruned_by_one_sweep_however_many() {
    let app = spawn_app().await;
    let expired = 2 * PRUNE_BATCH + 1;
    app.insert_directory_answers("old", expired, 2).await;
    app.insert_directory_answers("fresh", 2, 0).await;

    let later = Utc::now() + DIRECTORY_ANSWER_RETENTION - Duration::hours(1);
    let deleted = prune_directory_answers(&app.db, later, &Drain::new())
        .await
        .unwrap();

    assert_eq!(deleted, expired as u64);
    assert_eq!(
        app.openids_in("directory_answers").await,
        ["o-fresh-1", "o-fresh-2"]
    );
}

/// Once the drain has begun, a prune finishes the batch it is on and stops, so a
/// long backlog does not hold up shutdown; the rest waits for a running replica.
#[tokio::test]
async fn a_prune_of_decided_replies_stops_between_batches_once_the_drain_begins() {
    let app = spawn_app().await;
    app.insert_decided_replies("old", 2 * PRUNE_BATCH + 1, 2)
        .await;
    let drain = Drain::new();
    drain.begin();

    let later = Utc::now() + DECIDED_REPLY_RETENTION - Duration::hours(1);
    let deleted = prune_decided_replies(&app.db, later, &drain).await.unwrap();

    assert_eq!(deleted, PRUNE_BATCH as u64);
    assert_eq!(
        app.count("SELECT count(*) FROM decided_replies").await,
        PRUNE_BATCH + 1
    );
}

/// WatchQueue tells the supervision office (督办) of every overdue ticket; it opens
/// and lists them (reads them across departments) but acts on none: answering,
/// assigning and acknowledging stay the owning department's.
#[tokio::test]
async fn the_supervision_office_reads_the_overdue_tickets_it_is_told_of_and_acts_on_none() {
    let app = spawn_app().await;
    let late = app.insert_late_tickets(1, "open").await[0];
    let on_time = app.insert_ticket("transport", "open", 10).await;
    sweep_once(&app.db, Utc::now(), "supervision")
        .await
        .unwrap();
    // Found overdue by this sweep, or by the service's own sweeper: a round of it in
    // flight holds the row, which this sweep then skips, and marks it when it commits.
    eventually("the late ticket is marked overdue", || async {
        let overdue: bool = sqlx::query_scalar("SELECT overdue FROM tickets WHERE id = $1")
            .bind(late)
            .fetch_one(&app.db)
            .await
            .unwrap();
        overdue.then_some(())
    })
    .await;
    let mut supervision = app.client(Some(SUPERVISION_KEY)).await;

    let read = supervision
        .get_ticket(GetTicketRequest {
            id: late.to_string(),
        })
        .await
        .expect("the overdue ticket it was told of opens")
        .into_inner();
    assert_eq!(
        (read.department.as_str(), read.overdue),
        ("transport", true)
    );
    assert!(!read.history.is_empty());
    let hidden = supervision
        .get_ticket(GetTicketRequest {
            id: on_time.to_string(),
        })
        .await
        .expect_err("a ticket on time is the department's alone");
    assert_eq!(hidden.code(), tonic::Code::NotFound, "{hidden:?}");

    let listed = supervision
        .list_tickets(ListTicketsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .expect("the overdue tickets of every department are listed")
        .into_inner();
    let ids: Vec<String> = listed.tickets.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, [late.to_string()]);
    let named = supervision
        .list_tickets(ListTicketsRequest {
            overdue_only: true,
            department: "transport".into(),
            ..Default::default()
        })
        .await
        .expect("one department's overdue tickets are listed")
        .into_inner();
    assert_eq!(named.tickets.len(), 1);
    let own_queue = supervision
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("its own queue is listed")
        .into_inner();
    assert!(own_queue.tickets.is_empty(), "{own_queue:?}");
    let other_queue = supervision
        .list_tickets(ListTicketsRequest {
            department: "transport".into(),
            ..Default::default()
        })
        .await
        .expect_err("another department's whole queue is not its to list");
    assert_eq!(other_queue.code(), tonic::Code::PermissionDenied);

    let acknowledged = supervision
        .acknowledge_ticket(TicketActionRequest {
            id: late.to_string(),
            note: String::new(),
        })
        .await
        .expect_err("acting stays the owner's");
    assert_eq!(
        acknowledged.code(),
        tonic::Code::NotFound,
        "{acknowledged:?}"
    );
    let assigned = supervision
        .assign_ticket(AssignTicketRequest {
            id: late.to_string(),
            department: String::new(),
            assignee: "王芳".into(),
            note: String::new(),
        })
        .await
        .expect_err("acting stays the owner's");
    assert_eq!(assigned.code(), tonic::Code::NotFound, "{assigned:?}");
    let replied = supervision
        .reply_to_ticket(ReplyToTicketRequest {
            id: late.to_string(),
            text: "请尽快处理".into(),
            ..Default::default()
        })
        .await
        .expect_err("acting stays the owner's");
    assert_eq!(replied.code(), tonic::Code::NotFound, "{replied:?}");
    let state: String = sqlx::query_scalar("SELECT state FROM tickets WHERE id = $1")
        .bind(late)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(state, "open");
}
