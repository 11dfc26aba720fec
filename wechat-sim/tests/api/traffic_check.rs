//! ReplyCheck accepts what WeChat accepts and names what it would refuse.

use wechat::crypto::MessageCrypto;
use wechat::reply::{Answering, Reply, ReplyBody};
use wechat_sim::traffic::{
    CallbackAccount, CallbackSigner, CheckedReply, CitizenAction, Follower, Mode, ReplyCheck,
    ReplyCheckError, SignedCallback,
};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn callback(mode: Mode) -> (CallbackSigner, SignedCallback) {
    let signer = CallbackSigner::new(CallbackAccount::demo().with_mode(mode)).unwrap();
    let mut follower = Follower::new("oCitizen00000000000000000001");
    let action = CitizenAction::Text {
        content: "医保卡怎么激活？".into(),
    };
    let cb = signer.sign(&mut follower, &action).unwrap();
    (signer, cb)
}

fn text_reply(to: &str, from: &str) -> Reply {
    Reply {
        to_user_name: to.into(),
        from_user_name: from.into(),
        create_time: 1_700_000_000,
        body: ReplyBody::Text {
            content: "请携带身份证到社保窗口办理。".into(),
        },
    }
}

fn sealed(reply: &Reply, appid: &str, token: &str) -> String {
    let crypto = MessageCrypto::new(KEY, appid).unwrap();
    reply
        .to_encrypted_xml(Answering::UserMessage, &crypto, token, "1700000000", "42")
        .unwrap()
}

#[test]
fn success_and_an_empty_body_mean_no_reply() {
    let (signer, cb) = callback(Mode::Safe);
    let check = ReplyCheck::new(&signer);
    assert_eq!(check.check(&cb, 200, b"success"), Ok(CheckedReply::NoReply));
    assert_eq!(check.check(&cb, 200, b""), Ok(CheckedReply::NoReply));
}

#[test]
fn a_good_encrypted_reply_is_accepted_and_opened() {
    let (signer, cb) = callback(Mode::Safe);
    let reply = text_reply(&cb.openid, &cb.original_id);
    let body = sealed(&reply, "wxdemo0000000001", "demo-token");
    let checked = ReplyCheck::new(&signer).check(&cb, 200, body.as_bytes());
    assert_eq!(
        checked,
        Ok(CheckedReply::Reply {
            reply,
            encrypted: true
        })
    );
}

#[test]
fn a_bad_msg_signature_is_refused() {
    let (signer, cb) = callback(Mode::Safe);
    let body = sealed(
        &text_reply(&cb.openid, &cb.original_id),
        "wxdemo0000000001",
        "other-token",
    );
    let err = ReplyCheck::new(&signer)
        .check(&cb, 200, body.as_bytes())
        .unwrap_err();
    assert!(matches!(err, ReplyCheckError::BadSignature(_)), "{err:?}");
}

#[test]
fn a_reply_sealed_for_another_appid_is_refused() {
    let (signer, cb) = callback(Mode::Safe);
    let body = sealed(
        &text_reply(&cb.openid, &cb.original_id),
        "wxsomeoneelse0001",
        "demo-token",
    );
    let err = ReplyCheck::new(&signer)
        .check(&cb, 200, body.as_bytes())
        .unwrap_err();
    assert_eq!(
        err,
        ReplyCheckError::WrongAppId {
            found: "wxsomeoneelse0001".into()
        }
    );
}

#[test]
fn unswapped_addresses_are_refused() {
    let (signer, cb) = callback(Mode::Safe);
    // Echoing the callback's own addresses instead of swapping them.
    let body = sealed(
        &text_reply(&cb.original_id, &cb.openid),
        "wxdemo0000000001",
        "demo-token",
    );
    let err = ReplyCheck::new(&signer)
        .check(&cb, 200, body.as_bytes())
        .unwrap_err();
    assert_eq!(err.reason(), "to_not_swapped");

    let body = sealed(
        &text_reply(&cb.openid, "gh_other"),
        "wxdemo0000000001",
        "demo-token",
    );
    let err = ReplyCheck::new(&signer)
        .check(&cb, 200, body.as_bytes())
        .unwrap_err();
    assert_eq!(err.reason(), "from_not_swapped");
}

#[test]
fn a_plaintext_reply_is_refused_in_safe_mode_but_fine_in_plaintext_mode() {
    let (signer, cb) = callback(Mode::Safe);
    let plain = text_reply(&cb.openid, &cb.original_id)
        .to_xml(Answering::UserMessage)
        .unwrap();
    assert_eq!(
        ReplyCheck::new(&signer).check(&cb, 200, plain.as_bytes()),
        Err(ReplyCheckError::PlaintextInSafeMode)
    );

    let (signer, cb) = callback(Mode::Plaintext);
    let plain = text_reply(&cb.openid, &cb.original_id)
        .to_xml(Answering::UserMessage)
        .unwrap();
    assert!(matches!(
        ReplyCheck::new(&signer).check(&cb, 200, plain.as_bytes()),
        Ok(CheckedReply::Reply {
            encrypted: false,
            ..
        })
    ));
}

#[test]
fn a_reply_without_create_time_or_with_an_error_status_is_refused() {
    let (signer, cb) = callback(Mode::Plaintext);
    let check = ReplyCheck::new(&signer);
    let no_time = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{}]]></FromUserName>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>",
        cb.openid, cb.original_id
    );
    assert_eq!(
        check.check(&cb, 200, no_time.as_bytes()),
        Err(ReplyCheckError::MissingCreateTime)
    );
    assert_eq!(
        check.check(&cb, 503, b"success"),
        Err(ReplyCheckError::Status(503))
    );
    assert_eq!(
        check.check(&cb, 200, b"ok").unwrap_err().reason(),
        "malformed"
    );
}
