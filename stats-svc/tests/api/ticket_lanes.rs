//! The ticket consumer's two lanes write ticket rows at once, each batch in one
//! transaction: two batches holding the same tickets in opposite orders must not
//! deadlock (each takes its rows in one order, the ticket's account and id).

use std::time::Duration;

use proto::events::v1::TicketChangeKind;
use sqlx::{Acquire as _, PgPool};
use stats_svc::domain::AccountId;
use stats_svc::domain::rollup::TicketFact;
use stats_svc::store::rollups;

use crate::helpers::spawn_app;

fn change(ticket_id: &str, minute: i64) -> TicketFact {
    let at = chrono::DateTime::from_timestamp(1_796_000_400 + minute * 60, 0).unwrap();
    TicketFact {
        event_id: format!("{ticket_id}-{minute}"),
        account: AccountId::parse("chenzhou").unwrap(),
        ticket_id: ticket_id.to_owned(),
        department: "water".to_owned(),
        kind: TicketChangeKind::Acknowledged,
        occurred_at: at,
        opened_at: None,
        acknowledge_due_at: None,
        resolve_due_at: None,
        rating: None,
        deadline: Default::default(),
        previous_department: String::new(),
    }
}

/// Records `facts` as one batch in its own transaction on its own connection; its
/// backend's pid, and the batch running.
async fn batch(
    db: PgPool,
    facts: Vec<TicketFact>,
) -> (i32, tokio::task::JoinHandle<Result<(), sqlx::Error>>) {
    let mut conn = db.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let mut tx = conn.begin().await?;
        rollups::record_tickets(&mut tx, facts).await?;
        tx.commit().await
    });
    (pid, task)
}

/// Waits until the backend `pid` waits on a lock.
async fn until_blocked(db: &PgPool, pid: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let blocked: bool = sqlx::query_scalar("SELECT cardinality(pg_blocking_pids($1)) > 0")
            .bind(pid)
            .fetch_one(db)
            .await
            .unwrap();
        if blocked {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backend {pid} never waited on a lock"
        );
        tokio::task::yield_now().await;
    }
}

/// Lane A's batch holds (t1, t2), lane B's (t2, t1). A third transaction holds t1, so
/// that A waits for it holding nothing and B waits for it holding whatever it took
/// first; when it commits, both go on. Taken in stream order, B held t2 and A got t1
/// and wanted t2: a deadlock, one batch rolled back (and redelivered). Taken in one
/// order, both commit.
#[tokio::test]
async fn two_batches_with_the_same_tickets_in_opposite_orders_both_commit() {
    let app = spawn_app().await;
    let db = app.db().await;
    let mut tx = db.begin().await.unwrap();
    rollups::record_tickets(&mut tx, vec![change("t1", 0), change("t2", 0)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut holder = db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM ticket_times WHERE ticket_id = 't1' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (a, lane_a) = batch(db.clone(), vec![change("t1", 1), change("t2", 1)]).await;
    until_blocked(&db, a).await;
    let (b, lane_b) = batch(db.clone(), vec![change("t2", 2), change("t1", 2)]).await;
    until_blocked(&db, b).await;
    holder.commit().await.unwrap();

    let (a, b) = (lane_a.await.unwrap(), lane_b.await.unwrap());
    assert!(
        a.is_ok() && b.is_ok(),
        "both batches commit: lane A {a:?}, lane B {b:?}"
    );
    let acknowledged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ticket_times WHERE acknowledged_at IS NOT NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(acknowledged, 2);
    db.close().await;
    app.stop().await;
}
