//! Accepted callbacks: every type reaches the stream exactly once, in every mode.

use crate::helpers::{TestAccount, TestApp, by_event_id, spawn_app};
use crate::samples;

async fn every_type_is_stored_once_despite_three_deliveries(
    app: &TestApp,
    account: &TestAccount,
    encrypt: bool,
) {
    let samples = samples::all();
    for sample in &samples {
        // WeChat's retries repeat the callback, with a fresh signature each time.
        for attempt in 0..3 {
            let callback = if encrypt {
                account.encrypted_callback(&sample.xml)
            } else {
                account.plain_callback(&sample.xml)
            };
            let (status, body) = app.post_text(&account.id, &callback).await;
            assert_eq!(
                (status, body.as_str()),
                (200, "success"),
                "{} attempt {attempt}",
                sample.name
            );
        }
    }

    let stored = app.stored().await;
    assert_eq!(stored.len(), samples.len(), "one stored event per callback");
    let counts = by_event_id(&stored);
    for sample in &samples {
        let subject = app
            .nats
            .namespace
            .subject(&format!("wechat.inbound.{}.{}", account.id, sample.subject));
        let expected = sample.event_id.replace("{a}", &account.id);
        let (_, msg_id, inbound) = stored
            .iter()
            .find(|(s, msg_id, _)| {
                *s == subject
                    && match expected.strip_suffix('#') {
                        Some(prefix) => {
                            msg_id.starts_with(prefix) && msg_id.len() == prefix.len() + 40
                        }
                        None => *msg_id == expected,
                    }
            })
            .unwrap_or_else(|| panic!("{}: nothing on {subject} with {expected}", sample.name));
        assert_eq!(counts[msg_id], 1, "{}", sample.name);
        let header = inbound.header.clone().unwrap();
        assert_eq!(&header.event_id, msg_id, "{}", sample.name);
        assert_eq!(header.account, account.id);
        assert_eq!(
            inbound.raw_xml, sample.xml,
            "{}: the decrypted XML, unchanged",
            sample.name
        );
    }
}

#[tokio::test]
async fn every_message_and_event_type_reaches_the_stream_once_in_plaintext_mode() {
    let app = spawn_app().await;
    every_type_is_stored_once_despite_three_deliveries(&app, &app.plain, false).await;
    let duplicates = app
        .metric(
            "gateway_callbacks_total",
            &[("account", &app.plain.id), ("outcome", "duplicate")],
        )
        .await;
    assert_eq!(duplicates, 2.0 * samples::all().len() as f64);
}

#[tokio::test]
async fn every_message_and_event_type_reaches_the_stream_once_in_safe_mode() {
    let app = spawn_app().await;
    every_type_is_stored_once_despite_three_deliveries(&app, &app.safe, true).await;
    let accepted = app
        .metric(
            "gateway_callbacks_total",
            &[
                ("account", &app.safe.id),
                ("type", "CLICK"),
                ("outcome", "accepted"),
            ],
        )
        .await;
    assert_eq!(accepted, 1.0);
}

#[tokio::test]
async fn a_compatible_account_accepts_both_plain_and_encrypted_callbacks() {
    let app = spawn_app().await;
    let first = samples::text("oCompat", 1, "plain");
    let second = samples::text("oCompat", 2, "encrypted");
    let (status, _) = app
        .post_text(&app.compat.id, &app.compat.plain_callback(&first))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_text(&app.compat.id, &app.compat.encrypted_callback(&second))
        .await;
    assert_eq!(status, 200);
    let stored = app.stored().await;
    let raw: Vec<_> = stored.iter().map(|(_, _, i)| i.raw_xml.clone()).collect();
    assert_eq!(raw, [first, second]);
}

#[tokio::test]
async fn a_callback_encrypted_with_the_previous_key_is_accepted_during_rotation() {
    let app = spawn_app().await;
    let previous =
        wechat::crypto::MessageCrypto::new(crate::helpers::PREVIOUS_AES_KEY, &app.safe.appid)
            .unwrap();
    let xml = samples::text("oRotate", 7, "old key");
    let (status, _) = app
        .post_text(
            &app.safe.id,
            &app.safe.encrypted_callback_with(&xml, &previous),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.stored().await.len(), 1);
    // Counted per account (the log line is limited): the rotation's progress, until
    // WeChat stops sending under the old key.
    let labels = [("account", app.safe.id.as_str())];
    assert_eq!(
        app.metric("gateway_previous_key_decrypts_total", &labels)
            .await,
        1.0
    );
    let xml = samples::text("oRotate", 8, "new key");
    let (status, _) = app
        .post_text(&app.safe.id, &app.safe.encrypted_callback(&xml))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.metric("gateway_previous_key_decrypts_total", &labels)
            .await,
        1.0,
        "the current key is not counted"
    );
}

/// The previous-key counter of an account with a previous EncodingAESKey is made once
/// at start-up, not looked up (its label cloned) for each callback of a rotation: so
/// it is exported at 0 before the first such callback, and `rate()` sees its first
/// step. An account without a previous key has none.
#[tokio::test]
async fn the_previous_key_counter_is_exported_at_zero_from_start_up() {
    let app = spawn_app().await;
    for account in [&app.compat, &app.safe] {
        assert_eq!(
            app.metric_samples(
                "gateway_previous_key_decrypts_total",
                &[("account", account.id.as_str())]
            )
            .await,
            [0.0],
            "{}",
            account.id
        );
    }
    assert!(
        app.metric_samples(
            "gateway_previous_key_decrypts_total",
            &[("account", app.plain.id.as_str())]
        )
        .await
        .is_empty(),
        "a plaintext account has no previous key"
    );
}

#[tokio::test]
async fn the_url_check_echoes_echostr_only_with_a_good_signature() {
    let app = spawn_app().await;
    for account in [&app.plain, &app.safe] {
        let mut callback = account.plain_callback("");
        callback.set("echostr", "1616140317555161061");
        let response = app
            .http
            .get(app.url(&account.id))
            .query(&callback.query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "1616140317555161061");

        callback.set("signature", &"0".repeat(40));
        let response = app
            .http
            .get(app.url(&account.id))
            .query(&callback.query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), "bad_signature");
    }
}

/// A safe-mode POST's query never enters the replay ledger, so one captured (from a
/// proxy's log) served for 300 s as a signed URL check echoing whatever `echostr` it
/// was given. WeChat's `echostr` is a short string of digits: anything else is refused.
#[tokio::test]
async fn the_url_check_echoes_only_an_echostr_of_the_form_wechat_sends() {
    let app = spawn_app().await;
    for account in [&app.plain, &app.safe] {
        let get = |callback: &crate::helpers::Callback| {
            app.http
                .get(app.url(&account.id))
                .query(&callback.query)
                .send()
        };
        let labels = [
            ("account", account.id.as_str()),
            ("type", "url_check"),
            ("outcome", "bad_echostr"),
        ];
        let before = app.metric("gateway_callbacks_total", &labels).await;
        for echostr in [
            "<script>alert(1)</script>",
            "",
            "12345 6789",
            &"1".repeat(65),
        ] {
            let mut check = account.plain_callback("");
            check.set("echostr", echostr);
            let response = get(&check).await.unwrap();
            assert_eq!(
                (response.status().as_u16(), response.text().await.unwrap()),
                (400, "bad_echostr".to_owned()),
                "echostr {echostr:?}"
            );
        }
        let after = app.metric("gateway_callbacks_total", &labels).await;
        assert_eq!(after - before, 4.0, "each refusal is counted");

        for echostr in ["1616140317555161061", "abcXYZ0123456789"] {
            let mut check = account.plain_callback("");
            check.set("echostr", echostr);
            let response = get(&check).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), echostr);
        }
    }
}

/// A line break in a part of the event_id (here an `EventKey`, as `&#10;`) once
/// reached the `Nats-Msg-Id` header, whose builder panics on one: the handler died,
/// WeChat got no answer, and each retry died the same way.
#[tokio::test]
async fn an_event_key_with_a_line_break_is_stored_and_answered() {
    let app = spawn_app().await;
    let xml = "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
               <FromUserName><![CDATA[oBreak]]></FromUserName><CreateTime>1700000000</CreateTime>\
               <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\
               <EventKey>a&#10;b</EventKey></xml>";
    // Nobody answers on the reply subject: the missed-reply marker, whose id is the
    // event_id's too, is published before the answer.
    for attempt in 0..2 {
        let callback = app.safe.encrypted_callback(xml);
        let (status, body) = app.post_text(&app.safe.id, &callback).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "success"),
            "attempt {attempt}"
        );
    }
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1, "stored once, the retry a duplicate");
    let (_, msg_id, inbound) = &stored[0];
    assert!(!msg_id.contains(['\r', '\n']), "{msg_id:?}");
    assert_eq!(inbound.header.as_ref().unwrap().event_id, *msg_id);
    assert!(inbound.raw_xml.contains("a&#10;b"), "the XML as sent");
}
