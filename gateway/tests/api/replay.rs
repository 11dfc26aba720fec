//! Replay protection where the signature does not cover the body (plaintext mode,
//! and compatible mode without encryption): a captured signed URL cannot carry a
//! new body, on any replica, while WeChat's own retry (same body) still goes through.

use crate::helpers::{Callback, spawn_app, spawn_replica};
use crate::samples;

#[tokio::test]
async fn a_replayed_plaintext_signature_with_a_new_body_is_refused_on_every_replica() {
    let first = spawn_app().await;
    let second = spawn_replica(&first).await;
    for account in [&first.plain, &first.compat] {
        let original = account.plain_callback(&samples::text("oCitizen", 7001, "路灯坏了"));
        let (status, _) = first.post_text(&account.id, &original).await;
        assert_eq!(status, 200, "{}", account.id);
        // WeChat's retry reaches the other replica: the same body, accepted.
        let (status, _) = second.post_text(&account.id, &original).await;
        assert_eq!(status, 200, "{}: a retry is not a replay", account.id);

        let forged = Callback {
            query: original.query.clone(),
            body: samples::text("oAttacker", 7002, "伪造的留言"),
        };
        let labels = [
            ("account", account.id.as_str()),
            ("outcome", "replayed_signature"),
        ];
        let before = first.metric("gateway_callbacks_total", &labels).await;
        let (status, reason) = second.post_text(&account.id, &forged).await;
        assert_eq!((status, reason.as_str()), (403, "replayed_signature"));
        let (status, reason) = first.post_text(&account.id, &forged).await;
        assert_eq!((status, reason.as_str()), (403, "replayed_signature"));
        let after = first.metric("gateway_callbacks_total", &labels).await;
        assert!(
            after - before >= 1.0,
            "replays are counted by their own reason"
        );
    }
    // Only the two genuine messages were published, once each.
    let stored = first.stored().await;
    assert_eq!(
        stored.len(),
        2,
        "{:?}",
        stored.iter().map(|s| &s.1).collect::<Vec<_>>()
    );
    assert!(
        stored.iter().all(|(_, id, _)| id.contains("oCitizen")),
        "{stored:?}"
    );
}
