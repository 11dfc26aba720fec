//! The inbound consumer through faults of PostgreSQL: nothing lost, nothing applied twice.

use platform::testing::{ChaosProxy, TestDb};

use crate::citizen::{Citizen, eventually};
use crate::helpers::{TestApp, spawn_app_in};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("count query")
}

#[tokio::test]
async fn a_postgres_connection_cut_mid_transaction_loses_nothing_and_applies_nothing_twice() {
    let test_db = TestDb::new("interaction");
    let proxy = ChaosProxy::start(&test_db.url()).await;
    let app = spawn_app_in(test_db, proxy.url(), &[]).await;

    // Twelve citizens, two messages each: each message is a thread entry, each
    // citizen one ticket, whatever the deliveries.
    let mut citizens: Vec<Citizen> = (0..12).map(|_| Citizen::new()).collect();
    let mut callbacks = Vec::new();
    for round in 0..2 {
        for citizen in &mut citizens {
            callbacks.push(citizen.says(&format!("路灯坏了，第{round}次反映")));
        }
    }
    // Let a few kilobytes of the consumer's transactions through, then cut every
    // connection: the batch in flight dies between its statements (or between its
    // COMMIT and the answer), the pool reconnects once the link is back.
    proxy.cut_after(4_000);
    for callback in &callbacks {
        app.publish(callback).await;
    }
    eventually("the cut happened", || async {
        (proxy.accepted_connections() > 0 && proxy.open_connections() == 0).then_some(())
    })
    .await;
    proxy.restore();

    let applied = eventually("every event applied", || async {
        let n = count(&app, "SELECT count(*) FROM processed_events").await;
        (n == callbacks.len() as i64).then_some(n)
    })
    .await;
    assert_eq!(applied, 24);
    assert_eq!(count(&app, "SELECT count(*) FROM tickets").await, 12);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM ticket_messages WHERE direction = 'inbound'"
        )
        .await,
        24
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE subject LIKE '%.ticket.opened'"
        )
        .await,
        12
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM ticket_transitions WHERE action = 'opened'"
        )
        .await,
        12
    );
    app.stop().await;
}
