//! Retention: citizens' data past its period is removed by the sweeper (closed
//! tickets anonymised, long-gone followers deleted, old create request ids pruned),
//! and one citizen's data is erased on request by an admin (EraseCitizen).

use chrono::{Duration, Utc};
use interaction_svc::domain::retention::{ERASED_OPENID, RetentionPolicy};
use interaction_svc::jobs::sweeper::{RETENTION_TICKET_BATCH, retain};
use proto::interaction::v1::{
    CreateRoutingRuleRequest, EraseCitizenRequest, GetTicketRequest, TicketActionRequest,
};
use tonic::Code;

use crate::citizen::eventually;
use crate::helpers::{
    ACCOUNT, ADMIN_KEY, COUNTY_ADMIN_KEY, SOCIAL_AGENT_KEY, TestApp, spawn_app, spawn_app_with,
};

/// A service whose own sweeper keeps everything (its periods far beyond the test's
/// rows), so the passes a test runs itself are the only ones that remove anything.
async fn spawn_keeping_app() -> TestApp {
    spawn_app_with(&[
        ("TICKET_RETENTION", "36500d"),
        ("FOLLOWER_RETENTION", "36500d"),
    ])
    .await
}

impl TestApp {
    /// A ticket of `openid` closed `days_ago`, rated 4, with the citizen's message,
    /// an agent's answer and a history whose notes quote the citizen.
    async fn insert_closed_ticket(&self, openid: &str, days_ago: i32) -> uuid::Uuid {
        let id = self
            .insert_citizen_ticket(
                openid,
                "social-security",
                "closed",
                i64::from(60 * 24 * (days_ago + 3)),
            )
            .await;
        sqlx::query(
            "UPDATE tickets SET closed_at = now() - make_interval(days => $2), rating = 4,
                    assignee = '张三', first_answered_at = now() - make_interval(days => $2 + 1),
                    opened_event_id = $3 || ':' || $4 || ':1', rated_event_id = $3 || ':' || $4 || ':2'
              WHERE id = $1",
        )
        .bind(id)
        .bind(days_ago)
        .bind(ACCOUNT)
        .bind(openid)
        .execute(&self.db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO ticket_messages (id, ticket_id, direction, author, msg_type, body, at, delivery)
             VALUES ($1, $3, 'inbound', $4, 'text', '我住幸福小区3栋，电话13800000000，路灯不亮', now(), 'received'),
                    ($2, $3, 'outbound', 'social-security/张三', 'text', '王女士您好，幸福小区的路灯已修复', now(), 'sent')",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(uuid::Uuid::now_v7())
        .bind(id)
        .bind(openid)
        .execute(&self.db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO ticket_transitions (ticket_id, from_state, to_state, actor, action, note)
             VALUES ($1, NULL, 'open', 'citizen', 'opened', 'routed to social-security (consultation)'),
                    ($1, 'answered', 'closed', 'social-security/张三', 'closed', '已电话联系王女士（13800000000）')",
        )
        .bind(id)
        .execute(&self.db)
        .await
        .unwrap();
        id
    }

    async fn count_where(&self, sql: &str, openid: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(openid)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Rows that still hold `openid` anywhere, or any text of `ticket` (its summary,
    /// messages, notes) or the callbacks' ids that opened and rated it.
    async fn traces_of(&self, openid: &str, ticket: uuid::Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM tickets WHERE openid = $1)
                  + (SELECT count(*) FROM tickets
                      WHERE id = $2 AND (summary <> '' OR opened_event_id IS NOT NULL
                                         OR rated_event_id IS NOT NULL))
                  + (SELECT count(*) FROM ticket_messages
                      WHERE author = $1 OR (ticket_id = $2 AND body <> ''))
                  + (SELECT count(*) FROM ticket_transitions WHERE ticket_id = $2 AND note <> '')
                  + (SELECT count(*) FROM followers WHERE openid = $1)
                  + (SELECT count(*) FROM follower_tags WHERE openid = $1)
                  + (SELECT count(*) FROM directory_answers WHERE openid = $1)
                  + (SELECT count(*) FROM decided_replies WHERE openid = $1)
                  + (SELECT count(*) FROM citizen_erasures
                      WHERE citizen_sha256 = $1 OR reason LIKE '%' || $1 || '%')",
        )
        .bind(openid)
        .bind(ticket)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    /// The passive reply decided for a callback of `openid` (kept for a missed reply).
    async fn insert_decided_reply(&self, openid: &str, event_id: &str) {
        sqlx::query(
            "INSERT INTO decided_replies (event_id, account, openid, reply)
             VALUES ($1, $2, $3, convert_to('王女士您好，公积金提取请携带身份证', 'UTF8'))",
        )
        .bind(event_id)
        .bind(ACCOUNT)
        .bind(openid)
        .execute(&self.db)
        .await
        .unwrap();
    }

    async fn insert_unfollowed(&self, openid: &str, days_ago: i32, tags: &[&str]) {
        sqlx::query(
            "INSERT INTO followers (account, openid, subscribed, subscribed_at, unsubscribed_at)
             VALUES ($1, $2, false, now() - interval '2 years', now() - make_interval(days => $3))",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .bind(days_ago)
        .execute(&self.db)
        .await
        .unwrap();
        for tag in tags {
            sqlx::query("INSERT INTO follower_tags (account, openid, tag) VALUES ($1, $2, $3)")
                .bind(ACCOUNT)
                .bind(openid)
                .bind(tag)
                .execute(&self.db)
                .await
                .unwrap();
        }
    }

    async fn insert_directory_answer(&self, openid: &str) {
        sqlx::query(
            "INSERT INTO directory_answers (account, openid, event_id, service_id, service_name,
                                            msg_type, body, answered_at)
             VALUES ($1, $2, 'e-1', $3, '公积金提取', 'text', '公积金怎么提取', now())",
        )
        .bind(ACCOUNT)
        .bind(openid)
        .bind(uuid::Uuid::now_v7())
        .execute(&self.db)
        .await
        .unwrap();
    }
}

fn erase(openid: &str) -> EraseCitizenRequest {
    EraseCitizenRequest {
        account: ACCOUNT.into(),
        openid: openid.into(),
        reason: "依申请删除 2026-0042".into(),
    }
}

#[tokio::test]
async fn a_ticket_closed_longer_than_the_retention_keeps_its_skeleton_but_not_the_citizen() {
    let app = spawn_keeping_app().await;
    let old = app.insert_closed_ticket("o-old", 400).await;
    let recent = app.insert_closed_ticket("o-recent", 30).await;

    let report = retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        (
            report.tickets.tickets,
            report.tickets.messages,
            report.tickets.transitions
        ),
        (1, 2, 2)
    );

    let ticket = app
        .client(Some(ADMIN_KEY))
        .await
        .get_ticket(GetTicketRequest {
            id: old.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    // The skeleton the department and the statistics count stays.
    assert_eq!(ticket.openid, ERASED_OPENID);
    assert_eq!(ticket.summary, "");
    assert_eq!(
        (
            ticket.department.as_str(),
            ticket.rating,
            ticket.assignee.as_str()
        ),
        ("social-security", 4, "张三")
    );
    assert!(ticket.closed_at.is_some() && ticket.resolve_due_at.is_some());
    let thread: Vec<(&str, &str)> = ticket
        .thread
        .iter()
        .map(|m| (m.author.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        thread,
        [(ERASED_OPENID, ""), ("social-security/张三", "")],
        "who answered stays, no text does"
    );
    let history: Vec<(&str, &str, &str)> = ticket
        .history
        .iter()
        .map(|t| (t.actor.as_str(), t.action.as_str(), t.note.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            ("citizen", "opened", ""),
            ("social-security/张三", "closed", "")
        ]
    );
    assert_eq!(app.traces_of("o-old", old).await, 0);

    // The ticket closed 30 days ago is kept whole.
    let kept: (String, String) =
        sqlx::query_as("SELECT openid, summary FROM tickets WHERE id = $1")
            .bind(recent)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(kept, ("o-recent".to_owned(), "路灯不亮".to_owned()));
    let bodies: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ticket_messages WHERE ticket_id = $1 AND body <> ''",
    )
    .bind(recent)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(bodies, 2);
    // A second pass finds nothing more to do.
    let again = retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(again.tickets.tickets, 0);
}

#[tokio::test]
async fn a_pass_anonymises_a_bounded_batch_and_the_next_passes_take_the_rest() {
    let app = spawn_keeping_app().await;
    let total = RETENTION_TICKET_BATCH as usize + 20;
    sqlx::query(
        "INSERT INTO tickets (id, account, department, openid, state, summary, opened_at,
                              acknowledge_due_at, resolve_due_at, closed_at)
         SELECT gen_random_uuid(), $1, 'transport', 'o-' || n, 'closed', '噪音扰民',
                now() - interval '500 days', now() - interval '499 days',
                now() - interval '490 days', now() - interval '480 days'
           FROM generate_series(1, $2) AS n",
    )
    .bind(ACCOUNT)
    .bind(total as i32)
    .execute(&app.db)
    .await
    .unwrap();

    let first = retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(first.tickets.tickets, RETENTION_TICKET_BATCH as u64);
    let second = retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(second.tickets.tickets, 20);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE erased_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_sweepers_of_two_replicas_anonymise_a_closed_ticket_past_the_configured_period() {
    let settings = [("SWEEP_INTERVAL", "50ms"), ("TICKET_RETENTION", "7d")];
    let app = spawn_app_with(&settings).await;
    let replica = app.spawn_replica(&settings).await;
    let old = app.insert_closed_ticket("o-eight-days", 8).await;
    let recent = app.insert_closed_ticket("o-six-days", 6).await;

    eventually("the ticket closed 8 days ago is anonymised", || async {
        let openid: String = sqlx::query_scalar("SELECT openid FROM tickets WHERE id = $1")
            .bind(old)
            .fetch_one(&app.db)
            .await
            .unwrap();
        (openid == ERASED_OPENID).then_some(())
    })
    .await;
    replica.stop().await;
    let openid: String = sqlx::query_scalar("SELECT openid FROM tickets WHERE id = $1")
        .bind(recent)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(openid, "o-six-days");
}

#[tokio::test]
async fn an_anonymised_ticket_cannot_be_reopened() {
    let app = spawn_keeping_app().await;
    let old = app.insert_closed_ticket("o-old", 400).await;
    retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();

    let error = app
        .client(Some(SOCIAL_AGENT_KEY))
        .await
        .reopen_ticket(TicketActionRequest {
            id: old.to_string(),
            note: "市民来电".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert!(error.message().contains("erased"), "{}", error.message());
}

#[tokio::test]
async fn a_follower_gone_longer_than_the_period_is_deleted_unless_a_ticket_of_theirs_is_open() {
    let app = spawn_keeping_app().await;
    app.insert_unfollowed("o-gone", 40, &["志愿者"]).await;
    app.insert_unfollowed("o-gone-with-ticket", 40, &[]).await;
    app.insert_citizen_ticket("o-gone-with-ticket", "social-security", "acknowledged", 60)
        .await;
    app.insert_unfollowed("o-gone-lately", 10, &[]).await;
    app.insert_follower("o-following", Some(10)).await;

    let report = retain(&app.db, Utc::now(), &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(report.followers, 1);

    let left: Vec<String> = sqlx::query_scalar("SELECT openid FROM followers ORDER BY openid")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(left, ["o-following", "o-gone-lately", "o-gone-with-ticket"]);
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM follower_tags WHERE openid = $1",
            "o-gone"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_rule_request_id_older_than_thirty_days_is_pruned() {
    let app = spawn_app().await;
    let mut admin = app.client(Some(ADMIN_KEY)).await;
    for request_id in ["req-old", "req-new"] {
        admin
            .create_routing_rule(CreateRoutingRuleRequest {
                account: ACCOUNT.into(),
                keywords: vec![format!("社保{request_id}")],
                category: "consultation".into(),
                department: "social-security".into(),
                priority: 1,
                request_id: request_id.into(),
            })
            .await
            .unwrap();
    }
    sqlx::query("UPDATE rule_requests SET created_at = now() - interval '31 days' WHERE request_id = 'req-old'")
        .execute(&app.db)
        .await
        .unwrap();

    // The service's own sweeper may take it first: what counts is what is left.
    retain(
        &app.db,
        Utc::now() + Duration::seconds(1),
        &RetentionPolicy::default(),
    )
    .await
    .unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT request_id FROM rule_requests")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(left, ["req-new"]);
}

#[tokio::test]
async fn an_admin_erases_a_citizens_data_on_request_and_the_erasure_is_audited() {
    let app = spawn_app().await;
    let ticket = app.insert_closed_ticket("o-wang", 3).await;
    app.insert_follower("o-wang", Some(60)).await;
    sqlx::query("INSERT INTO follower_tags (account, openid, tag) VALUES ($1, 'o-wang', '低保户'), ($1, 'o-wang', '志愿者')")
        .bind(ACCOUNT)
        .execute(&app.db)
        .await
        .unwrap();
    app.insert_directory_answer("o-wang").await;
    app.insert_decided_reply("o-wang", "e-wang-1").await;
    app.insert_decided_reply("o-wang", "e-wang-2").await;
    let other = app.insert_closed_ticket("o-li", 3).await;
    app.insert_decided_reply("o-li", "e-li-1").await;

    let erased = app
        .client(Some(ADMIN_KEY))
        .await
        .erase_citizen(erase("o-wang"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            erased.followers,
            erased.follower_tags,
            erased.directory_answers,
            erased.tickets,
            erased.messages,
            erased.transitions,
            erased.decided_replies
        ),
        (1, 2, 1, 1, 2, 2, 2)
    );
    assert_eq!(app.traces_of("o-wang", ticket).await, 0);
    let skeleton: (String, String, Option<i16>) =
        sqlx::query_as("SELECT openid, department, rating FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        skeleton,
        (
            ERASED_OPENID.to_owned(),
            "social-security".to_owned(),
            Some(4)
        )
    );
    let untouched: String = sqlx::query_scalar("SELECT openid FROM tickets WHERE id = $1")
        .bind(other)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(untouched, "o-li");
    let kept: Vec<String> = sqlx::query_scalar("SELECT event_id FROM decided_replies")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(kept, ["e-li-1"]);

    // Who asked, when, why and how much, without the openid itself.
    let audit: (String, String, String, String, i32, i32, Option<i32>) = sqlx::query_as(
        "SELECT id::text, citizen_sha256, requested_by, reason, tickets, follower_tags,
                decided_replies
           FROM citizen_erasures",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audit.0, erased.erasure_id);
    let digest: String =
        sqlx::query_scalar("SELECT encode(sha256(convert_to($1 || ':o-wang', 'UTF8')), 'hex')")
            .bind(ACCOUNT)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (
            audit.1,
            audit.2.as_str(),
            audit.3.as_str(),
            audit.4,
            audit.5,
            audit.6
        ),
        (digest, "city-office", "依申请删除 2026-0042", 1, 2, Some(2))
    );
}

#[tokio::test]
async fn an_erasure_is_refused_while_a_ticket_of_the_citizen_is_open_and_changes_nothing() {
    let app = spawn_app().await;
    app.insert_closed_ticket("o-wang", 3).await;
    let open = app
        .insert_citizen_ticket("o-wang", "social-security", "acknowledged", 30)
        .await;
    app.insert_follower("o-wang", Some(60)).await;

    let error = app
        .client(Some(ADMIN_KEY))
        .await
        .erase_citizen(erase("o-wang"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert!(
        error.message().contains(&open.to_string()),
        "{}",
        error.message()
    );
    assert_eq!(
        app.count_where("SELECT count(*) FROM tickets WHERE openid = $1", "o-wang")
            .await,
        2
    );
    assert_eq!(
        app.count_where("SELECT count(*) FROM followers WHERE openid = $1", "o-wang")
            .await,
        1
    );
    let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM citizen_erasures")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(audits, 0);
}

#[tokio::test]
async fn only_an_admin_reaching_the_account_erases_and_a_reason_is_required() {
    let app = spawn_app().await;
    app.insert_follower("o-wang", Some(60)).await;

    let cases: [(Option<&'static str>, EraseCitizenRequest, Code); 4] = [
        (None, erase("o-wang"), Code::Unauthenticated),
        (
            Some(SOCIAL_AGENT_KEY),
            erase("o-wang"),
            Code::PermissionDenied,
        ),
        (Some(COUNTY_ADMIN_KEY), erase("o-wang"), Code::NotFound),
        (
            Some(ADMIN_KEY),
            EraseCitizenRequest {
                reason: "  ".into(),
                ..erase("o-wang")
            },
            Code::InvalidArgument,
        ),
    ];
    for (key, request, code) in cases {
        let error = app
            .client(key)
            .await
            .erase_citizen(request)
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{key:?}: {error:?}");
    }
    assert_eq!(
        app.count_where("SELECT count(*) FROM followers WHERE openid = $1", "o-wang")
            .await,
        1
    );
}

/// An erasure deletes the citizen's decided replies among a day of every citizen's
/// callbacks: it finds them by (account, openid), not by reading the whole table
/// inside the erasure's transaction.
#[tokio::test]
async fn an_erasure_finds_the_citizens_decided_replies_without_reading_every_callbacks() {
    let app = spawn_app().await;
    // A busy day: twenty thousand callbacks of other citizens, and two of Wang's.
    sqlx::query(
        "INSERT INTO decided_replies (event_id, account, openid, reply)
         SELECT 'e-' || n, $1, 'o-' || (n % 5000), '\\x00'::bytea
           FROM generate_series(1, 20000) AS n",
    )
    .bind(ACCOUNT)
    .execute(&app.db)
    .await
    .unwrap();
    app.insert_decided_reply("o-wang", "e-wang-1").await;
    app.insert_decided_reply("o-wang", "e-wang-2").await;
    sqlx::query("ANALYZE decided_replies")
        .execute(&app.db)
        .await
        .unwrap();

    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN DELETE FROM decided_replies WHERE account = $1 AND openid = $2",
    )
    .bind(ACCOUNT)
    .bind("o-wang")
    .fetch_all(&app.db)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(
        !plan.contains("Seq Scan") && plan.contains("decided_replies_citizen"),
        "the erasure's delete reads the citizen's rows by index:\n{plan}"
    );
}
