//! Per-RPC telemetry on the admin port's `/metrics`.

use platform::testing::metric_value;
use proto::interaction::v1::ListTicketsRequest;

use crate::helpers::{SOCIAL_AGENT_KEY, spawn_app};

/// How many ListTickets calls ended with `code` on the metrics `page`.
fn list_tickets_calls(page: &str, code: &str) -> f64 {
    metric_value(
        page,
        "grpc_requests_total",
        &[
            ("service", "interaction.v1.InteractionService"),
            ("method", "ListTickets"),
            ("code", code),
        ],
    )
}

async fn metrics(admin_port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .expect("admin port reachable")
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_rpc_is_counted_on_the_metrics_page_by_method_and_status_code() {
    let app = spawn_app().await;
    let before = metrics(app.admin_port).await;

    app.client(Some(SOCIAL_AGENT_KEY))
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("an agent lists its queue");
    let refused = app
        .client(None)
        .await
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let after = metrics(app.admin_port).await;
    for code in ["Ok", "Unauthenticated"] {
        assert_eq!(
            list_tickets_calls(&after, code) - list_tickets_calls(&before, code),
            1.0,
            "one ListTickets call with {code} expected in\n{after}"
        );
    }
    assert!(
        after.contains(
            "grpc_request_seconds_count{service=\"interaction.v1.InteractionService\",method=\"ListTickets\"}"
        ),
        "{after}"
    );
    app.stop().await;
}
