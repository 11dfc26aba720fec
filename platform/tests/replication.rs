//! `NATS_REPLICAS` against the existing streams: a count the server cannot keep is a
//! start-up error that names both counts, never a silently unreplicated stream.

use async_nats::jetstream;
use platform::nats::{self, NatsError, StreamSettings, WECHAT_INBOUND};
use platform::testing::TestNats;

#[tokio::test]
async fn asking_a_single_server_for_three_replicas_fails_naming_both_counts() {
    let test_nats = TestNats::new();
    let js = jetstream::new(test_nats.connect().await);
    let ns = &test_nats.namespace;
    nats::provision_streams(&js, ns, &[WECHAT_INBOUND])
        .await
        .expect("one replica on a single server");

    let three = StreamSettings {
        replicas: 3,
        ..StreamSettings::default()
    };
    let error = nats::provision_with(&js, ns, &[WECHAT_INBOUND], &three)
        .await
        .expect_err("a single server cannot keep three replicas");

    assert!(
        matches!(
            &error,
            NatsError::Replicas {
                current: 1,
                wanted: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("NATS_REPLICAS=3"), "{error}");
    // NATS 2.9 records the asked count anyway; the next start still sees one copy.
    let again = nats::provision_with(&js, ns, &[WECHAT_INBOUND], &three).await;
    assert!(
        matches!(
            again,
            Err(NatsError::Replicas {
                current: 1,
                wanted: 3,
                ..
            })
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_inbound_duplicate_window_follows_the_setting() {
    let test_nats = TestNats::new();
    let js = jetstream::new(test_nats.connect().await);
    let ns = &test_nats.namespace;
    nats::provision_streams(&js, ns, &[WECHAT_INBOUND])
        .await
        .unwrap();
    let wider = StreamSettings {
        inbound_duplicate_window: std::time::Duration::from_secs(300),
        ..StreamSettings::default()
    };
    nats::provision_with(&js, ns, &[WECHAT_INBOUND], &wider)
        .await
        .expect("the window of an existing stream can change");
    let mut stream = js.get_stream(ns.name(WECHAT_INBOUND.name)).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().config.duplicate_window,
        std::time::Duration::from_secs(300)
    );
}
