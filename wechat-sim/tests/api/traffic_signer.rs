//! The signer's callbacks verify with the `wechat` crate, in every mode, for every action.

use std::collections::HashMap;

use wechat::crypto::MessageCrypto;
use wechat::message::InboundMessage;
use wechat::signature;
use wechat::xml;
use wechat_sim::traffic::{CallbackAccount, CallbackSigner, CitizenAction, Follower, Mode};

fn query(callback: &wechat_sim::traffic::SignedCallback) -> HashMap<String, String> {
    let (_, query) = callback.path_and_query.split_once('?').expect("a query");
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn signer(mode: Mode) -> CallbackSigner {
    CallbackSigner::new(CallbackAccount::demo().with_mode(mode)).expect("demo account is valid")
}

#[test]
fn plaintext_callbacks_carry_a_valid_signature_and_the_plain_xml() {
    let signer = signer(Mode::Plaintext);
    let mut follower = Follower::new("oPlainFollower0000000000001");
    for action in CitizenAction::every_kind() {
        let cb = signer.sign(&mut follower, &action).unwrap();
        let q = query(&cb);
        assert!(cb.path_and_query.starts_with("/wechat/demo?"));
        signature::verify_signature("demo-token", &q["timestamp"], &q["nonce"], &q["signature"])
            .unwrap_or_else(|e| panic!("{}: {e}", action.label()));
        assert_eq!(q["openid"], follower.openid);
        assert!(!q.contains_key("encrypt_type") && !q.contains_key("msg_signature"));
        assert_eq!(cb.body, cb.plain_xml.as_bytes());
        let inbound = InboundMessage::parse(&cb.body).unwrap();
        assert_eq!(inbound.header.to_user_name, "gh_demo00000001");
        assert_eq!(inbound.header.from_user_name, follower.openid);
    }
}

#[test]
fn safe_mode_callbacks_decrypt_and_verify_for_every_action() {
    let signer = signer(Mode::Safe);
    let crypto = MessageCrypto::new(
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wxdemo0000000001",
    )
    .unwrap();
    let mut follower = Follower::new("oSafeFollower00000000000001");
    for action in CitizenAction::every_kind() {
        let cb = signer.sign(&mut follower, &action).unwrap();
        let q = query(&cb);
        assert_eq!(q["encrypt_type"], "aes");
        signature::verify_signature("demo-token", &q["timestamp"], &q["nonce"], &q["signature"])
            .unwrap();
        let root = xml::parse(&cb.body).unwrap();
        // Safe mode: only the recipient and the ciphertext travel in the clear.
        assert_eq!(root.text_of("ToUserName"), Some("gh_demo00000001"));
        assert!(root.text_of("FromUserName").is_none() && root.text_of("MsgType").is_none());
        let encrypt = root.text_of("Encrypt").expect("an Encrypt element");
        signature::verify_msg_signature(
            "demo-token",
            &q["timestamp"],
            &q["nonce"],
            encrypt,
            &q["msg_signature"],
        )
        .unwrap_or_else(|e| panic!("{}: {e}", action.label()));
        let plain = crypto.decrypt(encrypt).unwrap();
        assert_eq!(plain, cb.plain_xml);
        let inbound = InboundMessage::parse(plain.as_bytes()).unwrap();
        assert_eq!(inbound.msg_id().is_some(), action.is_message());
    }
}

#[test]
fn compatible_mode_callbacks_carry_the_plain_fields_and_a_verifiable_encrypt() {
    let signer = signer(Mode::Compatible);
    let crypto = signer.crypto().unwrap().clone();
    let mut follower = Follower::new("oCompatFollower000000000001");
    for action in CitizenAction::every_kind() {
        let cb = signer.sign(&mut follower, &action).unwrap();
        let q = query(&cb);
        let root = xml::parse(&cb.body).unwrap();
        assert_eq!(root.text_of("FromUserName"), Some(follower.openid.as_str()));
        let encrypt = root.text_of("Encrypt").unwrap();
        signature::verify_msg_signature(
            "demo-token",
            &q["timestamp"],
            &q["nonce"],
            encrypt,
            &q["msg_signature"],
        )
        .unwrap();
        assert_eq!(crypto.decrypt(encrypt).unwrap(), cb.plain_xml);
        // The wechat crate reads the plain fields of a compatible-mode body too.
        InboundMessage::parse(&cb.body).unwrap();
    }
}

#[test]
fn message_ids_and_event_create_times_never_repeat_for_a_follower() {
    let signer = signer(Mode::Safe);
    let mut follower = Follower::new("oBusyFollower00000000000001");
    let text = CitizenAction::Text {
        content: "公交卡怎么充值".into(),
    };
    let click = CitizenAction::Click {
        key: "MENU_BUS".into(),
    };
    let mut msg_ids = std::collections::HashSet::new();
    let mut create_times = std::collections::HashSet::new();
    for _ in 0..50 {
        let a = signer
            .sign_at(&mut follower, &text, 1_700_000_000, "1")
            .unwrap();
        let b = signer
            .sign_at(&mut follower, &click, 1_700_000_000, "1")
            .unwrap();
        assert!(msg_ids.insert(a.msg_id.unwrap()));
        assert!(b.msg_id.is_none());
        assert!(create_times.insert(a.create_time));
        assert!(create_times.insert(b.create_time));
    }
}

#[test]
fn a_safe_account_with_a_bad_key_is_refused_but_a_plaintext_one_needs_none() {
    let mut account = CallbackAccount::demo();
    account.aes_key = "short".into();
    assert!(CallbackSigner::new(account.clone()).is_err());
    assert!(CallbackSigner::new(account.with_mode(Mode::Plaintext)).is_ok());
}
