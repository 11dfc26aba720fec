//! When a lone digit is a rating: only while the rating question is fresh (within
//! `RATING_ANSWER_WINDOW` of it) and the citizen has not unfollowed since. Otherwise
//! the digit is an ordinary message, which a keyword rule for it answers.

use interaction_svc::domain::{Deadlines, TicketEvent, TicketId};
use interaction_svc::store::rules::RulesNotifier;
use interaction_svc::store::tickets;
use interaction_svc::store::tickets::citizen::{self as citizen_tickets, NewTicket, Placed};
use interaction_svc::store::tickets::lifecycle::{self, Cause};
use platform::ids::{AccountId, OpenId};
use proto::interaction::v1::TicketActionRequest;
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Citizen, eventually, text_of};
use crate::helpers::{ACCOUNT, SOCIAL_AGENT_KEY, TestApp, spawn_app};

const GUIDE: &str = "社保办理指南：https://rsj.lincheng.example.gov.cn/guide";

/// Saves the greeting's menu rule "1" (answers fully) and waits until the reply path
/// answers with it.
async fn menu_rule_one(app: &TestApp) {
    sqlx::query(
        "INSERT INTO reply_rules (id, account, match_kind, patterns, reply_text, resolves)
         VALUES ($1, $2, 'exact', '{1}', $3, true)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(ACCOUNT)
    .bind(GUIDE)
    .execute(&app.db)
    .await
    .expect("rule saved");
    RulesNotifier::new(app.nats().await, app.namespace().clone())
        .changed(ACCOUNT)
        .await;
    let nats = app.nats().await;
    let mut probe = Citizen::new();
    let nats = &nats;
    eventually("the rule is in effect", || {
        let one = probe.says("1");
        async move {
            let reply = app.passive_reply(nats, &one).await;
            (text_of(&reply) == Some(GUIDE)).then_some(())
        }
    })
    .await;
}

/// A closed ticket of `openid` whose rating was asked `hours_ago`.
async fn asked_to_rate(app: &TestApp, openid: &str, hours_ago: i32) -> uuid::Uuid {
    let ticket = app
        .insert_citizen_ticket(openid, "social-security", "closed", 60 * 24 * 200)
        .await;
    sqlx::query(
        "UPDATE tickets SET closed_at = now() - make_interval(hours => $2),
                            rating_requested_at = now() - make_interval(hours => $2)
          WHERE id = $1",
    )
    .bind(ticket)
    .bind(hours_ago)
    .execute(&app.db)
    .await
    .expect("ask for the rating");
    ticket
}

/// Publishes `digit` and waits until the rule's answer to it is announced (in the
/// transaction that applies it); returns the ticket's rating then.
async fn digit_applied(app: &TestApp, ticket: uuid::Uuid, announced_before: i64) -> Option<i16> {
    eventually("the digit is applied", || async {
        let announced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE subject LIKE 'interaction.%.autoreply.%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        (announced > announced_before).then_some(())
    })
    .await;
    sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
        .bind(ticket)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn rated_events(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE subject LIKE 'interaction.%.ticket.rated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_digit_long_after_the_rating_question_is_answered_by_the_rule_and_rates_nothing() {
    let app = spawn_app().await;
    menu_rule_one(&app).await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    // Asked in March, unanswered; the citizen writes "1" in November.
    let ticket = asked_to_rate(&app, &citizen.openid, 49).await;

    let one = citizen.says("1");
    let reply = app.passive_reply(&nats, &one).await;
    assert_eq!(text_of(&reply), Some(GUIDE), "{reply:?}");
    app.publish(&one).await;

    assert_eq!(digit_applied(&app, ticket, 0).await, None);
    assert_eq!(rated_events(&app).await, 0);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
        .bind(&citizen.openid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tickets, 1, "the rule answered fully: no new ticket");
}

#[tokio::test]
async fn a_digit_after_unfollowing_and_following_again_is_no_rating() {
    let app = spawn_app().await;
    menu_rule_one(&app).await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    // Asked an hour ago; the citizen unfollowed and followed again since.
    let ticket = asked_to_rate(&app, &citizen.openid, 1).await;
    app.publish(&citizen.does(CitizenAction::Unsubscribe)).await;
    app.publish(&citizen.does(CitizenAction::Subscribe)).await;
    eventually("the follow is applied", || async {
        let follows: Option<bool> = sqlx::query_scalar(
            "SELECT subscribed FROM followers WHERE account = $1 AND openid = $2",
        )
        .bind(ACCOUNT)
        .bind(&citizen.openid)
        .fetch_optional(&app.db)
        .await
        .unwrap();
        (follows == Some(true)).then_some(())
    })
    .await;

    let one = citizen.says("1");
    let reply = app.passive_reply(&nats, &one).await;
    assert_eq!(text_of(&reply), Some(GUIDE), "{reply:?}");
    app.publish(&one).await;

    assert_eq!(digit_applied(&app, ticket, 0).await, None);
    assert_eq!(rated_events(&app).await, 0);
}

#[tokio::test]
async fn a_digit_within_the_window_of_the_question_still_rates() {
    let app = spawn_app().await;
    menu_rule_one(&app).await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let ticket = asked_to_rate(&app, &citizen.openid, 47).await;

    let one = citizen.says("1");
    let reply = app.passive_reply(&nats, &one).await;
    assert!(
        text_of(&reply).is_some_and(|t| t.contains("感谢您的评价")),
        "{reply:?}"
    );
    app.publish(&one).await;
    let rating = eventually("the rating is recorded", || async {
        let rating: Option<i16> = sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&app.db)
            .await
            .unwrap();
        rating
    })
    .await;
    assert_eq!(rating, 1);
}

#[tokio::test]
async fn a_digit_while_the_rating_question_is_still_being_sent_rates_and_opens_no_ticket() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    // Closed, and the question committed as `sending`: WeChat has delivered it, but
    // the service has not recorded its answer (nor `rating_requested_at`) yet.
    let ticket = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "closed", 60)
        .await;
    sqlx::query("UPDATE tickets SET closed_at = now() - interval '1 second' WHERE id = $1;")
        .bind(ticket)
        .execute(&app.db)
        .await
        .expect("close");
    sqlx::query(
        "INSERT INTO ticket_messages
             (id, ticket_id, direction, author, msg_type, body, delivery, sending_since)
         VALUES ($1, $2, 'outbound', 'system', 'text', $3, 'sending', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(ticket)
    .bind(interaction_svc::delivery::RATING_QUESTION)
    .execute(&app.db)
    .await
    .expect("the question on its way");

    let five = citizen.says("5");
    let reply = app.passive_reply(&nats, &five).await;
    assert!(
        text_of(&reply).is_some_and(|t| t.contains("感谢您的评价")),
        "{reply:?}"
    );
    app.publish(&five).await;
    let rating = eventually("the rating is recorded", || async {
        let rating: Option<i16> = sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&app.db)
            .await
            .unwrap();
        rating
    })
    .await;
    assert_eq!(rating, 5);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
        .bind(&citizen.openid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tickets, 1, "the digit opened no ticket \"5\"");
}

/// The department reopens the ticket as the citizen's digit arrives: between the
/// consumer finding the ticket waiting for a rating and locking it. The digit rates
/// nothing any more (the reopened ticket is being worked on again); it is the
/// citizen's message to that ticket, not thanked and dropped.
#[tokio::test]
async fn a_digit_sent_as_the_ticket_is_reopened_joins_the_reopened_ticket() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let ticket = asked_to_rate(&app, &citizen.openid, 1).await;
    // The reopen holds the ticket's row while the digit is applied.
    let mut reopen = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
        .bind(ticket)
        .execute(&mut *reopen)
        .await
        .unwrap();
    app.publish(&citizen.says("2")).await;
    eventually("the digit waits for the ticket's row", || async {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = current_database() AND wait_event_type = 'Lock'
                               AND wait_event IN ('transactionid', 'tuple'))",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        waiting.then_some(())
    })
    .await;
    sqlx::query(
        "UPDATE tickets SET state = 'reopened', closed_at = NULL, rating_requested_at = NULL
          WHERE id = $1",
    )
    .bind(ticket)
    .execute(&mut *reopen)
    .await
    .unwrap();
    reopen.commit().await.unwrap();

    eventually("the digit joins the reopened ticket", || async {
        let joined: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ticket_messages
              WHERE ticket_id = $1 AND direction = 'inbound' AND body = '2'",
        )
        .bind(ticket)
        .fetch_one(&app.db)
        .await
        .unwrap();
        (joined == 1).then_some(())
    })
    .await;
    let (state, rating): (String, Option<i16>) =
        sqlx::query_as("SELECT state, rating FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), rating), ("reopened", None));
    assert_eq!(rated_events(&app).await, 0);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
        .bind(&citizen.openid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tickets, 1, "no ticket \"2\"");
}

/// B's question was asked; then the department reopened an older ticket A of the
/// same citizen and asks them something ("回复1或2"). The citizen's digit answers
/// A's agent: it joins A, and B is not rated (a reopen is a newer ticket for the
/// question, as an opening is).
#[tokio::test]
async fn a_digit_after_an_older_ticket_was_reopened_joins_it_and_rates_nothing() {
    let app = spawn_app().await;
    let mut citizen = Citizen::new();
    let older = asked_to_rate(&app, &citizen.openid, 3).await;
    let asked = asked_to_rate(&app, &citizen.openid, 1).await;
    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .reopen_ticket(TicketActionRequest {
            id: older.to_string(),
            note: String::new(),
        })
        .await
        .expect("A reopened");

    app.publish(&citizen.says("2")).await;
    let (joined, rating) = eventually("the digit is applied", || async {
        let joined: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_messages
                             WHERE ticket_id = $1 AND direction = 'inbound' AND body = '2')",
        )
        .bind(older)
        .fetch_one(&app.db)
        .await
        .unwrap();
        let rating: Option<i16> = sqlx::query_scalar("SELECT rating FROM tickets WHERE id = $1")
            .bind(asked)
            .fetch_one(&app.db)
            .await
            .unwrap();
        (joined || rating.is_some()).then_some((joined, rating))
    })
    .await;
    assert_eq!(rating, None, "B is not rated");
    assert!(joined, "the digit joins the reopened ticket");
    assert_eq!(rated_events(&app).await, 0);
}

/// Closes ticket `id` (locked, changed, committed) as a department's close does.
async fn close_in_own_transaction(app: &TestApp, id: uuid::Uuid) {
    let mut tx = app.db.begin().await.unwrap();
    let before = lifecycle::lock(&mut tx, TicketId(id), None).await.unwrap();
    lifecycle::change(
        &mut tx,
        &before,
        TicketEvent::Closed,
        Cause::now("social-security", "已办结"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// A consumer batch began (its transaction's clock reads T0) before a department
/// closed B (at T1); the batch then opened C for the citizen's message, its
/// `opened` entry stamped T0, before B's close. C was handled and closed again.
/// B's question is no longer B's to ask all the same: C opened after B's close (in
/// the order the database applied them), and asked now the question would take the
/// citizen's next digit for B.
#[tokio::test]
async fn a_ticket_opened_by_a_batch_begun_before_the_close_is_newer_for_the_question() {
    let app = spawn_app().await;
    let citizen = Citizen::new();
    let account = AccountId::parse(ACCOUNT).unwrap();
    let openid = OpenId::parse(&citizen.openid).unwrap();
    let answered = app
        .insert_citizen_ticket(&citizen.openid, "social-security", "answered", 60)
        .await;

    let mut batch = app.db.begin().await.unwrap();
    let began: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *batch)
        .await
        .unwrap();
    close_in_own_transaction(&app, answered).await;
    let now = chrono::Utc::now();
    let new = NewTicket {
        account: &account,
        openid: &openid,
        department: "social-security",
        category: "",
        summary: "楼道灯坏了",
        opened_at: began,
        deadlines: Deadlines {
            acknowledge_due_at: now + chrono::Duration::days(1),
            resolve_due_at: now + chrono::Duration::days(3),
        },
        event_id: "chenzhou:batch-begun-before-the-close",
    };
    let Placed::Opened(newer) = citizen_tickets::open_or_join(&mut batch, &new)
        .await
        .unwrap()
    else {
        panic!("B is closed: the message opens a ticket");
    };
    lifecycle::change(
        &mut batch,
        &newer,
        TicketEvent::Opened,
        Cause {
            actor: "citizen",
            note: "",
            event_id: Some("chenzhou:batch-begun-before-the-close:ticket.opened"),
            at: began,
        },
    )
    .await
    .unwrap();
    batch.commit().await.unwrap();
    let stamped: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT (SELECT at FROM ticket_transitions WHERE ticket_id = $2 AND action = 'opened'),
                (SELECT closed_at FROM tickets WHERE id = $1)",
    )
    .bind(answered)
    .bind(newer.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        stamped.0 < stamped.1,
        "C's opening is stamped before B's close: {stamped:?}"
    );
    // C is handled and closed again before B's question comes up.
    sqlx::query("UPDATE tickets SET state = 'answered' WHERE id = $1")
        .bind(newer.id)
        .execute(&app.db)
        .await
        .unwrap();
    close_in_own_transaction(&app, newer.id).await;

    let mut tx = app.db.begin().await.unwrap();
    let past_asking = tickets::rating_question_pending_or_asked(&mut tx, TicketId(answered))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        past_asking,
        "C opened after B's close: B's question is not asked"
    );
}
