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

/// The per-account series every accepted callback records (counted through handles
/// kept per account since 2026-12-07, no longer a `counter!` lookup per callback)
/// are exported as before: none before its first callback, then exactly the label
/// sets the callbacks took, each with its count.
#[tokio::test]
async fn the_per_callback_series_are_exported_with_their_first_callback_and_count_each() {
    use std::time::Duration;

    use proto::events::v1::{PassiveReply, TextReply, passive_reply};

    let app = spawn_app().await;
    let (plain, safe) = (app.plain.id.clone(), app.safe.id.clone());
    // The exported lines of the per-callback series of `plain` and `safe`, but for
    // the histograms' buckets and sums (their timing) and the series registered at 0
    // from start-up (`right_after_start_…` above).
    let series = || async {
        let text = app
            .http
            .get(format!("{}/metrics", app.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| {
                [
                    "gateway_callbacks_total{",
                    "gateway_replies_total{",
                    "gateway_replies_missed_total{",
                    "gateway_callback_seconds_count{",
                ]
                .iter()
                .any(|name| l.starts_with(name))
            })
            .filter(|l| {
                l.contains(&format!("account=\"{plain}\""))
                    || l.contains(&format!("account=\"{safe}\""))
            })
            .filter(|l| !l.ends_with(" 0"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(series().await, Vec::<String>::new(), "before any callback");

    app.responder(&plain, Duration::ZERO, |_| PassiveReply {
        body: Some(passive_reply::Body::Text(TextReply {
            content: "hi".into(),
        })),
    })
    .await;
    let first = app
        .plain
        .plain_callback(&samples::text("oSeries1", 9101, "one"));
    let second = app
        .plain
        .plain_callback(&samples::text("oSeries2", 9102, "two"));
    for callback in [&first, &second, &first] {
        let (status, body) = app.post_text(&plain, callback).await;
        assert_eq!(status, 200);
        assert!(body.contains("hi"), "{body}");
    }
    // No responder on the safe account: a missed-reply marker is stored.
    let xml = samples::text("oSeries3", 9103, "three");
    let (status, body) = app
        .post_text(&safe, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!((status, body.as_str()), (200, "success"));

    let line = |name: &str, labels: &[(&str, &str)], value: u64| {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}} {value}", labels.join(","))
    };
    let mut expected = vec![
        line("gateway_callback_seconds_count", &[("account", &plain)], 3),
        line("gateway_callback_seconds_count", &[("account", &safe)], 1),
        line(
            "gateway_callbacks_total",
            &[
                ("account", &plain),
                ("type", "text"),
                ("outcome", "accepted"),
            ],
            2,
        ),
        line(
            "gateway_callbacks_total",
            &[
                ("account", &plain),
                ("type", "text"),
                ("outcome", "duplicate"),
            ],
            1,
        ),
        line(
            "gateway_callbacks_total",
            &[
                ("account", &safe),
                ("type", "text"),
                ("outcome", "accepted"),
            ],
            1,
        ),
        line(
            "gateway_replies_missed_total",
            &[("account", &safe), ("stored", "yes")],
            1,
        ),
        line(
            "gateway_replies_total",
            &[("account", &plain), ("outcome", "answered")],
            2,
        ),
        line(
            "gateway_replies_total",
            &[("account", &plain), ("outcome", "cached")],
            1,
        ),
        line(
            "gateway_replies_total",
            &[("account", &safe), ("outcome", "no_responder")],
            1,
        ),
    ];
    expected.sort();
    assert_eq!(series().await, expected);
}
