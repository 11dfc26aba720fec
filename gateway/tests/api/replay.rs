//! Replay protection where the signature does not cover the body (plaintext mode,
//! and compatible mode without encryption): a captured signed URL cannot carry a
//! new body, on any replica, while WeChat's own retry (same body) still goes through.

use std::time::Duration;

use async_nats::jetstream;
use sha2::Digest;

use crate::helpers::{
    Callback, ORIGINAL_ID, Options, TestAccount, spawn_app, spawn_app_with, spawn_replica,
};
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

/// Asserts that `forged` is refused as a replay on `account`.
async fn assert_replay_refused(app: &crate::helpers::TestApp, account: &str, forged: &Callback) {
    let (status, reason) = app.post_text(account, forged).await;
    assert_eq!((status, reason.as_str()), (403, "replayed_signature"));
}

#[tokio::test]
async fn a_signature_in_upper_case_is_the_same_signed_query() {
    let app = spawn_app().await;
    let original = app
        .plain
        .plain_callback(&samples::text("oCitizen", 7101, "路灯坏了"));
    assert_eq!(app.post_text(&app.plain.id, &original).await.0, 200);

    let mut forged = Callback {
        query: original.query.clone(),
        body: samples::text("oAttacker", 7102, "伪造的留言"),
    };
    let signature = crate::helpers::TestAccount::query_value(&original, "signature");
    forged.set("signature", &signature.to_ascii_uppercase());

    assert_replay_refused(&app, &app.plain.id, &forged).await;
}

/// A signature proves the Token, timestamp and nonce, not the account: two accounts
/// sharing a Token accept each other's signatures, so one must not carry a forged
/// body to the other (whose `gh_` id is public).
#[tokio::test]
async fn a_signature_captured_on_one_account_cannot_carry_a_body_to_another_with_the_same_token() {
    let app = spawn_app_with(Options {
        same_token: true,
        ..Options::default()
    })
    .await;
    let original = app
        .plain
        .plain_callback(&samples::text("oCitizen", 7401, "路灯坏了"));
    assert_eq!(app.post_text(&app.plain.id, &original).await.0, 200);

    let forged = Callback {
        query: original.query.clone(),
        body: samples::text("oAttacker", 7402, "伪造的留言"),
    };
    assert_replay_refused(&app, &app.compat.id, &forged).await;
    // Nor with the signature's digits in the other case.
    let mut shouted = Callback {
        query: original.query.clone(),
        body: forged.body.clone(),
    };
    let signature = crate::helpers::TestAccount::query_value(&original, "signature");
    shouted.set("signature", &signature.to_ascii_uppercase());
    assert_replay_refused(&app, &app.compat.id, &shouted).await;
    let stored = app.stored().await;
    assert!(
        stored.iter().all(|(_, id, _)| id.contains("oCitizen")),
        "{stored:?}"
    );
}

#[tokio::test]
async fn a_compatible_accounts_encrypted_callback_cannot_lend_its_query_to_a_plaintext_body() {
    let app = spawn_app().await;
    let original = app
        .compat
        .encrypted_callback(&samples::text("oCitizen", 7201, "路灯坏了"));
    assert_eq!(app.post_text(&app.compat.id, &original).await.0, 200);

    // The same signed query without the encryption's parameters, a plaintext body.
    let mut forged = Callback {
        query: original.query.clone(),
        body: samples::text("oAttacker", 7202, "伪造的留言"),
    };
    forged
        .query
        .retain(|(name, _)| name != "msg_signature" && name != "encrypt_type");

    assert_replay_refused(&app, &app.compat.id, &forged).await;
    let stored = app.stored().await;
    assert!(
        stored.iter().all(|(_, id, _)| id.contains("oCitizen")),
        "{stored:?}"
    );
}

/// WeChat's retry repeats the message, not necessarily its cipher (wechat-protocol.md
/// says only that retries repeat the content; every encryption draws a fresh random
/// prefix): a compatible account's encrypted callback sent again under the same
/// timestamp and nonce but encrypted afresh is the retry, not a replay. Its
/// `msg_signature` binds the new `<Encrypt>` to that timestamp and nonce, so nobody
/// without the Token can send one.
#[tokio::test]
async fn a_compatible_callback_encrypted_afresh_for_its_retry_is_accepted_on_every_replica() {
    let first = spawn_app().await;
    let second = spawn_replica(&first).await;
    let account = &first.compat;
    let xml = samples::text("oCitizen", 7301, "井盖丢了");
    let original = account.encrypted_callback(&xml);
    let (status, _) = first.post_text(&account.id, &original).await;
    assert_eq!(status, 200);

    // The same signed query (signature, timestamp, nonce), a new `<Encrypt>` of the
    // same message and its own msg_signature.
    let value = |name| TestAccount::query_value(&original, name);
    let encrypt = account.crypto.encrypt(&xml).unwrap();
    let mut retry = Callback {
        query: original.query.clone(),
        body: format!(
            "<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ),
    };
    assert_ne!(retry.body, original.body, "encrypted afresh");
    retry.set(
        "msg_signature",
        &wechat::signature::msg_signature(
            &account.token,
            &value("timestamp"),
            &value("nonce"),
            &encrypt,
        ),
    );
    for replica in ["first", "second"] {
        let (status, body) = match replica {
            "first" => first.post_text(&account.id, &retry).await,
            _ => second.post_text(&account.id, &retry).await,
        };
        assert_eq!(
            (status, body.as_str()),
            (200, "success"),
            "on the {replica} replica"
        );
    }
    let stored = first.stored().await;
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].1, format!("{}:oCitizen:7301", account.id));

    // The signature still lends itself to no plaintext body.
    let mut forged = Callback {
        query: original.query.clone(),
        body: samples::text("oAttacker", 7302, "伪造的留言"),
    };
    forged
        .query
        .retain(|(name, _)| name != "msg_signature" && name != "encrypt_type");
    assert_replay_refused(&first, &account.id, &forged).await;
    // Nor the message it carried, sent in plain under it: an encrypted callback's
    // signature is bound to encrypted bodies.
    forged.body = xml;
    assert_replay_refused(&first, &account.id, &forged).await;
}

/// During a rolling upgrade, WeChat's retry of a compatible account's encrypted
/// callback that an upgraded replica claimed (and answered late) may reach a replica
/// of the release before bb02cee: its rule takes a signature's callback only if
/// the entry is the body's SHA-256. An entry holding anything else made it answer the
/// byte-identical retry 403 `replayed_signature`, and the callback was never stored.
#[tokio::test]
async fn a_compatible_callback_claimed_here_is_a_retry_to_a_replica_of_the_previous_release() {
    let app = spawn_app().await;
    let account = &app.compat;
    let original = account.encrypted_callback(&samples::text("oCitizen", 7701, "井盖丢了"));
    assert_eq!(app.post_text(&account.id, &original).await.0, 200);

    // The previous release's claim, as it ran: create the key, else compare the
    // entry with the body's digest.
    let bucket = app.nats.namespace.name(gateway::replay::SIGNATURE_BUCKET);
    let ledger = app.jetstream().get_key_value(&bucket).await.unwrap();
    let key = TestAccount::query_value(&original, "signature").to_ascii_lowercase();
    let digest = sha2::Sha256::digest(original.body.as_bytes());
    let created = ledger
        .update(&key, bytes::Bytes::copy_from_slice(&digest), 0)
        .await;
    assert!(
        created.is_err(),
        "the upgraded replica claimed the signature"
    );
    let stored = ledger.get(&key).await.unwrap().expect("an entry");
    assert_eq!(
        stored.as_ref(),
        digest.as_slice(),
        "a replica of the previous release answers WeChat's byte-identical retry 403 replayed_signature"
    );

    // This release still takes that retry, and no plaintext body under the query.
    assert_eq!(app.post_text(&account.id, &original).await.0, 200);
    let mut forged = Callback {
        query: original.query.clone(),
        body: samples::text("oAttacker", 7702, "伪造的留言"),
    };
    forged
        .query
        .retain(|(name, _)| name != "msg_signature" && name != "encrypt_type");
    assert_replay_refused(&app, &account.id, &forged).await;
    assert_eq!(app.stored().await.len(), 1, "stored once");
}

#[tokio::test]
async fn a_url_checks_signed_query_cannot_carry_a_callback() {
    let app = spawn_app().await;
    let mut check = app.plain.plain_callback("");
    check.set("echostr", "1616140317555161061");
    let response = app
        .http
        .get(app.url(&app.plain.id))
        .query(&check.query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let forged = Callback {
        query: check.query.clone(),
        body: samples::text("oAttacker", 7302, "伪造的留言"),
    };

    assert_replay_refused(&app, &app.plain.id, &forged).await;
    // WeChat checking the URL again (its retry) still passes.
    let again = app
        .http
        .get(app.url(&app.plain.id))
        .query(&check.query)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

/// Creates the signature ledger's bucket as a gateway with another TIMESTAMP_WINDOW
/// left it, starts one with the default window (300 s) on it, and returns the
/// bucket stream's max age after start-up.
async fn ledger_max_age_after_start_over(left_by_earlier_release: Duration) -> Duration {
    let nats = platform::testing::TestNats::new();
    let mut js = jetstream::new(nats.connect().await);
    // Set-up, not the behaviour under test: async-nats gives up on a JetStream API
    // call after 5 s, and on a heavily loaded machine creating the stream once took
    // longer. The server answers late, not never: wait for its answer.
    js.set_timeout(Duration::from_secs(60));
    let bucket = nats.namespace.name(gateway::replay::SIGNATURE_BUCKET);
    js.get_or_create_stream(wechat::token::kv_bucket_stream(
        &bucket,
        "an earlier release's ledger",
        left_by_earlier_release,
    ))
    .await
    .unwrap();
    let _app = spawn_app_with(Options {
        extra: vec![("NATS_PREFIX", nats.prefix.as_str())],
        ..Options::default()
    })
    .await;
    let mut stream = js.get_stream(format!("KV_{bucket}")).await.unwrap();
    stream.info().await.unwrap().config.max_age
}

#[tokio::test]
async fn the_signature_ledger_keeps_entries_as_long_as_a_raised_timestamp_window_accepts_them() {
    // What TIMESTAMP_WINDOW=1s left: 2 x 1 s + 60 s.
    let max_age = ledger_max_age_after_start_over(Duration::from_secs(62)).await;
    assert_eq!(
        max_age,
        Duration::from_secs(2 * 300 + 60),
        "a signature must stay in the ledger while its timestamp is accepted (300 s either side)"
    );
}

#[tokio::test]
async fn a_longer_ledger_max_age_is_not_lowered_at_start_up() {
    // Replicas of a release with a longer window may still be running.
    let longer = Duration::from_secs(2 * 3600 + 60);
    assert_eq!(ledger_max_age_after_start_over(longer).await, longer);
}

/// The ledger is a stream of its own: it can fail while WECHAT_INBOUND takes
/// publishes. A check it cannot answer was a pass, so a replayed signature carried any
/// body in; the callback is now held like one not made durable (WeChat retries it).
#[tokio::test]
async fn a_plaintext_callback_the_ledger_cannot_check_is_held_not_accepted() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("CALLBACK_DEADLINE", "1500ms"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let bucket = app.nats.namespace.name(gateway::replay::SIGNATURE_BUCKET);
    app.jetstream()
        .delete_stream(format!("KV_{bucket}"))
        .await
        .unwrap();
    let callback = app
        .plain
        .plain_callback(&samples::text("oCitizen", 7501, "路灯坏了"));
    let started = tokio::time::Instant::now();
    let (status, _) = app.post_text(&app.plain.id, &callback).await;
    assert_eq!(status, 503, "no success: WeChat must retry");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "answered after {:?}, inside WeChat's deadline",
        started.elapsed()
    );
    assert!(app.stored().await.is_empty(), "nothing stored unchecked");
    let failed = app.metric("gateway_replay_check_failed_total", &[]).await;
    assert_eq!(failed, 1.0);
    let held = app
        .metric(
            "gateway_callbacks_total",
            &[("account", &app.plain.id), ("outcome", "not_durable")],
        )
        .await;
    assert_eq!(held, 1.0);
}

/// A callback held because the ledger cannot check it waits out WeChat's deadline
/// without its in-flight place: a ledger-only outage otherwise took every place, and
/// safe-mode accounts, which need no ledger, were refused `overloaded`.
#[tokio::test]
async fn a_callback_held_for_the_ledger_keeps_no_place_from_a_safe_account() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("MAX_IN_FLIGHT", "1"),
            ("CALLBACK_DEADLINE", "3s"),
            ("PUBLISH_DEADLINE", "1s"),
            ("REPLY_BUDGET", "300ms"),
        ],
        ..Options::default()
    })
    .await;
    let bucket = app.nats.namespace.name(gateway::replay::SIGNATURE_BUCKET);
    app.jetstream()
        .delete_stream(format!("KV_{bucket}"))
        .await
        .unwrap();
    let held = app
        .plain
        .plain_callback(&samples::text("oCitizen", 7601, "路灯坏了"));
    let others = async {
        // Once the ledger has failed the held callback, it is waiting out the deadline.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while app.metric("gateway_replay_check_failed_total", &[]).await < 1.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the ledger never failed"
            );
            tokio::task::yield_now().await;
        }
        let xml = samples::text("oSafe", 7602, "hi");
        app.post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
            .await
    };
    let ((held_status, _), (status, body)) =
        tokio::join!(app.post_text(&app.plain.id, &held), others);
    assert_eq!(
        held_status, 503,
        "the unchecked callback is held, not accepted"
    );
    assert_eq!(
        (status, body.as_str()),
        (200, "success"),
        "a safe-mode callback while another is held for the ledger"
    );
}

/// `echostr` is not signed: a captured URL check replayed within the timestamp window
/// reflected whatever `echostr` it was given. A safe-mode account's check now enters
/// the ledger like the others', and the echo is never sniffed as markup.
#[tokio::test]
async fn a_replayed_url_check_cannot_reflect_another_echostr_in_safe_mode_either() {
    let app = spawn_app().await;
    let mut check = app.safe.plain_callback("");
    check.set("echostr", "1616140317555161061");
    let get = |callback: &Callback| {
        app.http
            .get(app.url(&app.safe.id))
            .query(&callback.query)
            .send()
    };
    let first = get(&check).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        first
            .headers()
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("nosniff".to_owned())
    );
    assert_eq!(first.text().await.unwrap(), "1616140317555161061");
    // WeChat checking again (its retry) still passes.
    assert_eq!(get(&check).await.unwrap().status(), 200);

    let mut replayed = Callback {
        query: check.query.clone(),
        body: String::new(),
    };
    // Of WeChat's form (markup is refused before the ledger: `bad_echostr`).
    replayed.set("echostr", "4242424242");
    let answer = get(&replayed).await.unwrap();
    let status = answer.status();
    assert_eq!(
        (status.as_u16(), answer.text().await.unwrap()),
        (403, "replayed_signature".to_owned())
    );
}

/// The ledger fails closed, so one attempt given a quarter of `PUBLISH_DEADLINE` held
/// every plaintext and compatible callback through a JetStream stall of a second or two
/// (a leader change). A transient failure is tried again until half of it.
#[tokio::test]
async fn a_ledger_stalled_for_longer_than_one_attempt_still_checks_the_callback_in_time() {
    let proxy = platform::testing::ChaosProxy::start(&platform::testing::test_nats_url()).await;
    let app = spawn_app_with(Options {
        nats_url: Some(proxy.url().to_owned()),
        extra: vec![("PUBLISH_DEADLINE", "4s"), ("REPLY_BUDGET", "300ms")],
        ..Options::default()
    })
    .await;
    let callback = app
        .plain
        .plain_callback(&samples::text("oCitizen", 7701, "路灯坏了"));
    let stall = async {
        proxy.blackhole();
        // The stall's length is the scenario: past one attempt (1 s), within two.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        proxy.restore();
    };
    let ((status, body), ()) = tokio::join!(app.post_text(&app.plain.id, &callback), stall);
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(
        app.metric("gateway_replay_check_failed_total", &[]).await,
        0.0
    );
}
