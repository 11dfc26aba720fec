//! The callback counters the alerts read are exported at 0 from start-up, so
//! `rate()` and `increase()` see a replica's first callbacks and its silence.

use wechat::message::InboundType;

use crate::helpers::spawn_app;
use crate::samples;

#[tokio::test]
async fn right_after_start_every_account_exports_the_alerted_outcomes_at_zero() {
    let app = spawn_app().await;

    for account in [&app.plain.id, &app.compat.id, &app.safe.id] {
        for (kind, outcome) in [
            ("text", "accepted"),
            ("text", "not_durable"),
            ("subscribe", "accepted"),
            ("unknown", "bad_signature"),
            ("unknown", "decrypt_failed"),
            ("unknown", "overloaded"),
            ("text", "wrong_recipient"),
            ("url_check", "bad_signature"),
        ] {
            let samples = app
                .metric_samples(
                    "gateway_callbacks_total",
                    &[("account", account), ("type", kind), ("outcome", outcome)],
                )
                .await;
            assert_eq!(samples, [0.0], "{account} {kind} {outcome}");
        }
        // One per type the parser can return: the wechat crate's list of labels.
        let accepted = app
            .metric_samples(
                "gateway_callbacks_total",
                &[("account", account), ("outcome", "accepted")],
            )
            .await;
        assert_eq!(accepted, vec![0.0; InboundType::LABELS.len()], "{account}");
    }
    let unknown = app
        .metric_samples(
            "gateway_callbacks_total",
            &[("account", "unknown"), ("outcome", "unknown_account")],
        )
        .await;
    assert_eq!(unknown, [0.0, 0.0], "callbacks and URL checks");
}

#[tokio::test]
async fn the_first_accepted_callback_steps_an_exported_series_from_zero_to_one() {
    let app = spawn_app().await;
    let accepted = [("account", app.plain.id.as_str()), ("outcome", "accepted")];
    let before = app
        .metric_samples("gateway_callbacks_total", &accepted)
        .await;

    let xml = samples::text("oFirst", 1, "hello");
    let (status, _) = app
        .post_text(&app.plain.id, &app.plain.plain_callback(&xml))
        .await;

    assert_eq!(status, 200);
    let after = app
        .metric_samples("gateway_callbacks_total", &accepted)
        .await;
    assert_eq!(before.iter().sum::<f64>(), 0.0);
    assert_eq!(after.iter().sum::<f64>(), 1.0);
    assert_eq!(after.len(), before.len(), "no series appears at 1");
}
