//! Every rejection: its own status and reason, a counted metric, nothing published.

use wechat::crypto::MessageCrypto;

use crate::helpers::{Callback, OTHER_AES_KEY, TestAccount, TestApp, spawn_app};
use crate::samples;

/// Posts `callback`, expects `status` and `reason`, the metric, and an empty stream.
async fn assert_rejected(
    app: &TestApp,
    path: &str,
    metric_account: &str,
    callback: &Callback,
    status: u16,
    reason: &str,
) {
    let labels = [("account", metric_account), ("outcome", reason)];
    let before = app.metric("gateway_callbacks_total", &labels).await;
    let (got_status, body) = app.post_text(path, callback).await;
    assert_eq!((got_status, body.as_str()), (status, reason));
    let after = app.metric("gateway_callbacks_total", &labels).await;
    assert_eq!(after - before, 1.0, "{reason} is counted once");
    assert!(app.stored().await.is_empty(), "{reason}: nothing published");
}

/// [`assert_rejected`] for a callback to the plain-mode account, counted under its id.
async fn assert_plain_rejected(app: &TestApp, callback: &Callback, status: u16, reason: &str) {
    assert_rejected(app, &app.plain.id, &app.plain.id, callback, status, reason).await;
}

/// [`assert_rejected`] for a callback to the safe-mode account, counted under its id.
async fn assert_safe_rejected(app: &TestApp, callback: &Callback, status: u16, reason: &str) {
    assert_rejected(app, &app.safe.id, &app.safe.id, callback, status, reason).await;
}

fn text() -> String {
    samples::text("oRejected", 42, "hello")
}

#[tokio::test]
async fn an_unknown_account_is_404_and_counted_without_its_name() {
    let app = spawn_app().await;
    let callback = app.plain.plain_callback(&text());
    assert_rejected(
        &app,
        "no-such-account",
        "unknown",
        &callback,
        404,
        "unknown_account",
    )
    .await;
    // A name from the URL never becomes a label (unbounded series from anyone's
    // requests), in any metric, nor does a URL check's.
    let response = app
        .http
        .get(app.url("no-such-account"))
        .query(&callback.query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let metrics = app
        .http
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("no-such-account"), "{metrics}");
    let url_checks = app
        .metric(
            "gateway_callbacks_total",
            &[
                ("account", "unknown"),
                ("type", "url_check"),
                ("outcome", "unknown_account"),
            ],
        )
        .await;
    assert_eq!(url_checks, 1.0, "counted as an unknown account's URL check");
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let big = samples::text("oBig", 1, &"x".repeat(300 * 1024));
    let callback = app.plain.plain_callback(&big);
    assert_plain_rejected(&app, &callback, 413, "body_too_large").await;
}

#[tokio::test]
async fn a_stale_timestamp_is_400() {
    let app = spawn_app().await;
    let mut callback = app.plain.plain_callback(&text());
    let old = (crate::helpers::now() - 3600).to_string();
    let nonce = TestAccount::query_value(&callback, "nonce");
    callback.set("timestamp", &old);
    callback.set(
        "signature",
        &wechat::signature::signature(&app.plain.token, &old, &nonce),
    );
    assert_plain_rejected(&app, &callback, 400, "stale_timestamp").await;
}

#[tokio::test]
async fn a_missing_signature_is_a_bad_query() {
    let app = spawn_app().await;
    let mut callback = app.plain.plain_callback(&text());
    callback.query.retain(|(n, _)| n != "signature");
    assert_plain_rejected(&app, &callback, 400, "bad_query").await;
}

#[tokio::test]
async fn a_bad_signature_is_401() {
    let app = spawn_app().await;
    let mut callback = app.plain.plain_callback(&text());
    callback.set("signature", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff");
    assert_plain_rejected(&app, &callback, 401, "bad_signature").await;
}

#[tokio::test]
async fn a_bad_msg_signature_is_401() {
    let app = spawn_app().await;
    let mut callback = app.safe.encrypted_callback(&text());
    callback.set("msg_signature", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff");
    assert_safe_rejected(&app, &callback, 401, "bad_msg_signature").await;
}

#[tokio::test]
async fn a_safe_callback_without_msg_signature_is_a_bad_query() {
    let app = spawn_app().await;
    let mut callback = app.safe.encrypted_callback(&text());
    callback.query.retain(|(n, _)| n != "msg_signature");
    assert_safe_rejected(&app, &callback, 400, "bad_query").await;
}

#[tokio::test]
async fn a_message_for_another_appid_is_403() {
    let app = spawn_app().await;
    let other = MessageCrypto::new(crate::helpers::AES_KEY, "wx_someone_else").unwrap();
    let callback = app.safe.encrypted_callback_with(&text(), &other);
    assert_safe_rejected(&app, &callback, 403, "appid_mismatch").await;
}

#[tokio::test]
async fn an_undecryptable_message_is_400() {
    let app = spawn_app().await;
    let wrong_key = MessageCrypto::new(OTHER_AES_KEY, &app.safe.appid).unwrap();
    let callback = app.safe.encrypted_callback_with(&text(), &wrong_key);
    assert_safe_rejected(&app, &callback, 400, "decrypt_failed").await;
}

#[tokio::test]
async fn malformed_xml_is_400() {
    let app = spawn_app().await;
    let callback = app
        .plain
        .plain_callback("<xml><ToUserName>gh_x</ToUserName><Content>");
    assert_plain_rejected(&app, &callback, 400, "malformed_xml").await;
    // Inside a correctly encrypted and signed envelope, too.
    let callback = app.safe.encrypted_callback("<xml><MsgType>text</xml>");
    assert_safe_rejected(&app, &callback, 400, "malformed_xml").await;
}

#[tokio::test]
async fn a_doctype_is_refused() {
    let app = spawn_app().await;
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
        <xml><ToUserName>gh_test0000001</ToUserName><FromUserName>o</FromUserName>\
        <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>";
    let callback = app.plain.plain_callback(xxe);
    assert_plain_rejected(&app, &callback, 400, "doctype_forbidden").await;
}

#[tokio::test]
async fn a_message_for_another_official_account_is_403() {
    let app = spawn_app().await;
    let xml = text().replace("gh_test0000001", "gh_someone_else");
    let callback = app.plain.plain_callback(&xml);
    assert_plain_rejected(&app, &callback, 403, "wrong_recipient").await;
}

/// A `FromUserName` every consumer refuses (`platform::ids::OpenId::parse`: blank,
/// over 128 bytes, or holding a control character) was published, then dead-lettered
/// once per consumer: an alert per consumer for one forged plaintext body. It is
/// refused at the door instead, with its own reason, and nothing is published.
#[tokio::test]
async fn a_sender_openid_no_consumer_can_read_is_400_and_never_published() {
    let app = spawn_app().await;
    let forged = [
        // A line break, as a character reference (outside CDATA).
        "o&#10;Forged",
        // A tab and an escape character, raw inside CDATA.
        "<![CDATA[o\tForged]]>",
        "<![CDATA[o\u{1b}Forged]]>",
        // Blank.
        "<![CDATA[ ]]>",
        // Longer than any openid.
        &"o".repeat(129),
    ];
    for (n, from) in (1..).zip(forged) {
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
             <FromUserName>{from}</FromUserName><CreateTime>1700000000</CreateTime>\
             <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>\
             <MsgId>{n}</MsgId></xml>"
        );
        let callback = app.plain.plain_callback(&xml);
        assert_plain_rejected(&app, &callback, 400, "bad_openid").await;
    }
    // In a safe-mode envelope too: the decrypted XML is what consumers read.
    let xml = "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
               <FromUserName>o&#13;&#10;Forged</FromUserName><CreateTime>1700000000</CreateTime>\
               <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>";
    let callback = app.safe.encrypted_callback(xml);
    assert_safe_rejected(&app, &callback, 400, "bad_openid").await;
}

/// Every consumer reads the event_id as a `platform::ids::EventId` (at most 512 bytes)
/// and dead-letters one it refuses. The `wechat` crate bounds an `EventKey` in it, not
/// a `publish_id`: a PUBLISHJOBFINISH whose `publish_id` is long (real ones are a few
/// digits) made an event_id no consumer reads, published then dead-lettered once per
/// consumer. Refused at the door like a bad openid.
#[tokio::test]
async fn an_event_id_no_consumer_can_read_is_400_and_never_published() {
    let app = spawn_app().await;
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
         <FromUserName><![CDATA[mphelper]]></FromUserName><CreateTime>1700000020</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>\
         <PublishEventInfo><publish_id>{}</publish_id><publish_status>0</publish_status>\
         </PublishEventInfo></xml>",
        "2".repeat(600)
    );
    let callback = app.plain.plain_callback(&xml);
    assert_plain_rejected(&app, &callback, 400, "bad_event_id").await;
}

/// A callback's `MsgType` (or an event's `Event`) is its subject's last token, and
/// nats-server answers a PUB line longer than its `max_control_line` (4 KiB) by
/// closing the connection: a 5,000-letter type cut the replica off NATS at each of
/// its publish attempts. Refused at the door, and the next callback is served.
#[tokio::test]
async fn a_type_name_longer_than_any_wechat_sends_is_400_and_nats_is_not_cut() {
    let app = spawn_app().await;
    let long = "a".repeat(5000);
    let head = "<xml><ToUserName><![CDATA[gh_test0000001]]></ToUserName>\
                <FromUserName><![CDATA[oLongType]]></FromUserName><CreateTime>1700000030</CreateTime>";
    let message = format!("{head}<MsgType><![CDATA[{long}]]></MsgType></xml>");
    let event = format!(
        "{head}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{long}]]></Event></xml>"
    );
    for xml in [message, event] {
        let callback = app.safe.encrypted_callback(&xml);
        assert_safe_rejected(&app, &callback, 400, "bad_type").await;
    }
    let callback = app
        .safe
        .encrypted_callback(&samples::text("oAfter", 1, "还在吗"));
    let (status, body) = app.post_text(&app.safe.id, &callback).await;
    assert_eq!((status, body.as_str()), (200, "success"));
}
