//! The inbound protocol as a specification: official vectors (wechat-protocol.md
//! §3.4), every message and event type, dedup keys, replies, and hostile input.

use aes::Aes256;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use proptest::prelude::*;
use wechat::crypto::{AesKey, CryptoError, KeySlot, MessageCrypto};
use wechat::message::{
    Event, InboundEnvelope, InboundMessage, InboundType, MessageError, MsgId, Payload,
    PublishStatus, TemplateSendStatus, subject_token,
};
use wechat::reply::{Answering, Article, Reply, ReplyBody, ReplyError};
use wechat::signature::{self, SignatureError};
use wechat::xml::{self, Limits, XmlError};

const OA_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

// ---------------------------------------------------------------------------
// Official vectors A–F
// ---------------------------------------------------------------------------

#[test]
fn vector_a_plain_signature() {
    assert_eq!(
        signature::signature("test", "1410685589", "test"),
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    );
    assert_eq!(
        signature::verify_signature(
            "test",
            "1410685589",
            "test",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ),
        Ok(())
    );
    assert_eq!(
        signature::verify_signature(
            "test",
            "1410685590",
            "test",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ),
        Err(SignatureError::Mismatch)
    );
}

const B_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

#[test]
fn vector_b_real_inbound_message_verifies_and_decrypts() {
    assert_eq!(
        signature::msg_signature("spamtest", "1409735669", "1320562132", B_ENCRYPT),
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    );
    signature::verify_msg_signature(
        "spamtest",
        "1409735669",
        "1320562132",
        B_ENCRYPT,
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    )
    .unwrap();
    let crypto = MessageCrypto::new(OA_KEY, "wx2c2769f8efd9abc2").unwrap();
    let plain = crypto.decrypt(B_ENCRYPT).unwrap();
    let msg = InboundMessage::parse(plain.as_bytes()).unwrap();
    assert_eq!(msg.header.to_user_name, "gh_10f6c3c3ac5a");
    assert_eq!(msg.header.from_user_name, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(msg.header.create_time, 1409735668);
    let Payload::Text(text) = &msg.payload else {
        panic!("expected text, got {:?}", msg.payload)
    };
    assert_eq!(text.content, "abcdteT");
    assert_eq!(text.msg_id, MsgId(6054768590064713728));
}

const C_ENCRYPT: &str =
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";

#[test]
fn vector_c_deterministic_encryption_and_derived_signature() {
    let crypto = MessageCrypto::new(OA_KEY, "wxb11529c136998cb6").unwrap();
    assert_eq!(
        hex::encode(AesKey::from_encoding_aes_key(OA_KEY).unwrap().as_bytes()),
        "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
    );
    let encrypted = crypto
        .encrypt_with_random("我是中文abcd123", b"aaaabbbbccccdddd")
        .unwrap();
    assert_eq!(encrypted, C_ENCRYPT);
    assert_eq!(
        signature::msg_signature("pamtest", "1409304348", "xxxxxx", &encrypted),
        "82c962d39941aa48552f90ef55aa323dc620cc10"
    );
    assert_eq!(crypto.decrypt(C_ENCRYPT).unwrap(), "我是中文abcd123");
}

const D_ENCRYPT: &str = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";

#[test]
fn vector_d_pad_21_decrypts_and_a_wrong_appid_fails() {
    signature::verify_msg_signature(
        "pamtest",
        "1458300676",
        "260774613",
        D_ENCRYPT,
        "4f3ad57b6989f09f4eb392acce4f9e93942ed890",
    )
    .unwrap();
    let crypto = MessageCrypto::new(OA_KEY, "wxb11529c136998cb6").unwrap();
    let plain = crypto.decrypt(D_ENCRYPT).unwrap();
    let msg = InboundMessage::parse(plain.as_bytes()).unwrap();
    let Payload::Text(text) = &msg.payload else {
        panic!("expected text")
    };
    assert_eq!(text.content, "hello");
    assert_eq!(text.msg_id, MsgId(12345));
    // The unknown <URL> field is kept.
    assert_eq!(
        msg.fields.text_of("URL"),
        Some("http://wechat.laravel.so/server")
    );

    let wrong = MessageCrypto::new(OA_KEY, "wx0000000000000000").unwrap();
    let err = wrong.decrypt(D_ENCRYPT).unwrap_err();
    assert_eq!(
        err,
        CryptoError::AppIdMismatch {
            expected: "wx0000000000000000".into(),
            found: "wxb11529c136998cb6".into()
        }
    );
    assert_eq!(err.reason(), "appid_mismatch");
}

const E_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const E_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

#[test]
fn vector_e_wecom_pad_30_decrypts_with_the_corpid() {
    signature::verify_msg_signature(
        "QDG6eK",
        "1409659813",
        "1372623149",
        E_ENCRYPT,
        "477715d11cdb4164915debcba66cb864d751f3e6",
    )
    .unwrap();
    let crypto = MessageCrypto::new(E_KEY, "wx5823bf96d3bd56c7").unwrap();
    let msg = InboundMessage::parse(crypto.decrypt(E_ENCRYPT).unwrap().as_bytes()).unwrap();
    assert_eq!(msg.header.from_user_name, "mycreate");
    let Payload::Text(text) = &msg.payload else {
        panic!("expected text")
    };
    assert_eq!(text.content, "hello");
    assert_eq!(text.msg_id, MsgId(4561255354251345929));
    assert_eq!(msg.fields.text_of("AgentID"), Some("218"));

    // WeCom's encrypted echostr uses the same algorithm.
    let echostr =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    signature::verify_msg_signature(
        "QDG6eK",
        "1409659589",
        "263014780",
        echostr,
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    )
    .unwrap();
    assert_eq!(crypto.decrypt(echostr).unwrap(), "1616140317555161061");
}

const F_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const F_ENCRYPT: &str = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";
/// wechatpy test_encrypt_message's reply XML, lines joined by "\n".
const F_PLAIN: &str = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";

#[test]
fn vector_f_encrypted_reply_envelope() {
    let crypto = MessageCrypto::new(F_KEY, "wx49f0ab532d5d035a").unwrap();
    let envelope = crypto
        .seal_with_random(
            "123456",
            "1411525903",
            "461056294",
            F_PLAIN,
            b"1234567890123456",
        )
        .unwrap();
    assert_eq!(envelope.encrypt, F_ENCRYPT);
    assert_eq!(
        envelope.msg_signature,
        "407518b7649e86ef23978113f92d27afa9296533"
    );
    assert_eq!(
        envelope.to_xml(),
        format!(
            "<xml><Encrypt><![CDATA[{F_ENCRYPT}]]></Encrypt>\
             <MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\
             <TimeStamp>1411525903</TimeStamp><Nonce><![CDATA[461056294]]></Nonce></xml>"
        )
    );
    // And what wechat-sim does with it: verify, decrypt, read the reply.
    let reply = Reply::open_encrypted(envelope.to_xml().as_bytes(), &crypto, "123456").unwrap();
    assert_eq!(reply.to_user_name, "messense");
    assert_eq!(reply.from_user_name, "wx49f0ab532d5d035a");
    assert_eq!(reply.create_time, 1411525903);
    assert_eq!(
        reply.body,
        ReplyBody::Text {
            content: "test".into()
        }
    );
}

// ---------------------------------------------------------------------------
// Crypto behaviour and hostile ciphertexts
// ---------------------------------------------------------------------------

/// Encrypts raw plaintext bytes with no padding of its own, to forge bad pads.
fn encrypt_raw(encoding_key: &str, plain: &[u8]) -> String {
    use base64::Engine as _;
    let key = AesKey::from_encoding_aes_key(encoding_key).unwrap();
    let iv: [u8; 16] = key.as_bytes()[..16].try_into().unwrap();
    let ct = cbc::Encryptor::<Aes256>::new(key.as_bytes().into(), &iv.into())
        .encrypt_padded_vec_mut::<NoPadding>(plain);
    base64::engine::general_purpose::STANDARD.encode(ct)
}

/// Builds random ‖ len ‖ msg ‖ appid with the given trailing bytes.
fn framed(msg: &[u8], declared_len: u32, appid: &[u8], padding: &[u8]) -> Vec<u8> {
    let mut p = b"0123456789abcdef".to_vec();
    p.extend_from_slice(&declared_len.to_be_bytes());
    p.extend_from_slice(msg);
    p.extend_from_slice(appid);
    p.extend_from_slice(padding);
    p
}

const APPID: &str = "wxb11529c136998cb6"; // 18 bytes: 16 + 4 + 6 + 18 = 44, pad 20

fn oa_crypto() -> MessageCrypto {
    MessageCrypto::new(OA_KEY, APPID).unwrap()
}

#[test]
fn a_well_formed_forged_frame_decrypts() {
    let ct = encrypt_raw(OA_KEY, &framed(b"hello!", 6, APPID.as_bytes(), &[20; 20]));
    assert_eq!(oa_crypto().decrypt(&ct).unwrap(), "hello!");
}

#[test]
fn every_pad_length_from_1_to_32_round_trips() {
    let crypto = oa_crypto();
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..64 {
        let msg = "x".repeat(n);
        let ct = crypto.encrypt(&msg).unwrap();
        seen.insert(32 - (20 + n + APPID.len()) % 32);
        assert_eq!(crypto.decrypt(&ct).unwrap(), msg);
    }
    assert_eq!(seen, (1..=32).collect());
}

#[test]
fn pad_byte_zero_is_bad_padding() {
    let ct = encrypt_raw(OA_KEY, &framed(b"hello!", 6, APPID.as_bytes(), &[0; 20]));
    assert_eq!(oa_crypto().decrypt(&ct), Err(CryptoError::BadPadding));
}

#[test]
fn pad_byte_33_is_bad_padding() {
    let ct = encrypt_raw(OA_KEY, &framed(b"hello!", 6, APPID.as_bytes(), &[33; 52]));
    assert_eq!(oa_crypto().decrypt(&ct), Err(CryptoError::BadPadding));
}

#[test]
fn inconsistent_pad_bytes_are_bad_padding() {
    let mut pad = [20u8; 20];
    pad[3] = 7;
    let ct = encrypt_raw(OA_KEY, &framed(b"hello!", 6, APPID.as_bytes(), &pad));
    let err = oa_crypto().decrypt(&ct).unwrap_err();
    assert_eq!(err, CryptoError::BadPadding);
    assert_eq!(err.reason(), "bad_padding");
}

#[test]
fn a_length_field_past_the_end_is_refused() {
    let ct = encrypt_raw(
        OA_KEY,
        &framed(b"hello!", 1_000_000, APPID.as_bytes(), &[20; 20]),
    );
    assert_eq!(
        oa_crypto().decrypt(&ct),
        Err(CryptoError::BadLengthField {
            declared: 1_000_000,
            available: 24
        })
    );
}

#[test]
fn a_frame_shorter_than_its_header_is_refused() {
    let ct = encrypt_raw(OA_KEY, &[32u8; 32]);
    assert_eq!(
        oa_crypto().decrypt(&ct).unwrap_err().reason(),
        "bad_length_field"
    );
}

#[test]
fn a_non_utf8_message_is_refused() {
    let ct = encrypt_raw(
        OA_KEY,
        &framed(b"\xff\xfe\xfd!!!", 6, APPID.as_bytes(), &[20; 20]),
    );
    assert_eq!(oa_crypto().decrypt(&ct), Err(CryptoError::NotUtf8));
}

#[test]
fn bad_base64_is_refused() {
    assert_eq!(
        oa_crypto().decrypt("not base64!!"),
        Err(CryptoError::BadBase64)
    );
    assert_eq!(
        oa_crypto().decrypt(&C_ENCRYPT[..C_ENCRYPT.len() - 3]),
        Err(CryptoError::BadBase64)
    );
}

#[test]
fn a_length_that_is_not_whole_blocks_is_refused() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 20]);
    assert_eq!(
        oa_crypto().decrypt(&b64),
        Err(CryptoError::BadLength { len: 20 })
    );
    assert_eq!(
        oa_crypto().decrypt(""),
        Err(CryptoError::BadLength { len: 0 })
    );
}

#[test]
fn a_ciphertext_cut_by_a_block_is_refused() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut ct = engine.decode(D_ENCRYPT).unwrap();
    ct.truncate(ct.len() - 16);
    let err = oa_crypto().decrypt(&engine.encode(&ct)).unwrap_err();
    assert_eq!(err, CryptoError::BadPadding);
}

#[test]
fn an_encoding_aes_key_with_trailing_bits_or_bad_characters() {
    // Every official key has non-zero trailing bits; all must decode.
    assert!(AesKey::from_encoding_aes_key(OA_KEY).is_ok());
    assert!(AesKey::from_encoding_aes_key(E_KEY).is_ok());
    assert!(AesKey::from_encoding_aes_key(F_KEY).is_ok());
    assert_eq!(
        AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!"),
        Err(CryptoError::InvalidKey)
    );
}

#[test]
fn the_previous_key_decrypts_during_a_rotation() {
    let old = MessageCrypto::new(OA_KEY, "wxb11529c136998cb6").unwrap();
    let rotated = MessageCrypto::new(E_KEY, "wxb11529c136998cb6")
        .unwrap()
        .with_previous_key(OA_KEY)
        .unwrap();
    let from_old = old.encrypt("<xml/>").unwrap();
    assert_eq!(
        rotated.decrypt_with_slot(&from_old).unwrap(),
        ("<xml/>".to_owned(), KeySlot::Previous)
    );
    let from_new = rotated.encrypt("<xml/>").unwrap();
    assert_eq!(
        rotated.decrypt_with_slot(&from_new).unwrap().1,
        KeySlot::Current
    );
    // Without the previous key the old message fails on the current key's error.
    let no_previous = MessageCrypto::new(E_KEY, "wxb11529c136998cb6").unwrap();
    assert!(no_previous.decrypt(&from_old).is_err());
    // Encryption uses the current key: the old crypto cannot read it.
    assert!(old.decrypt(&from_new).is_err());
}

#[test]
fn a_reply_sealed_with_the_previous_key_opens_with_that_key() {
    let old = MessageCrypto::new(OA_KEY, "wxb11529c136998cb6").unwrap();
    let rotated = MessageCrypto::new(E_KEY, "wxb11529c136998cb6")
        .unwrap()
        .with_previous_key(OA_KEY)
        .unwrap();
    let sealed = rotated
        .seal_with_key(
            KeySlot::Previous,
            "pamtest",
            "1409304348",
            "xxxxxx",
            "<xml/>",
        )
        .unwrap();
    assert_eq!(old.decrypt(&sealed.encrypt).unwrap(), "<xml/>");
    let sealed = rotated
        .seal_with_key(
            KeySlot::Current,
            "pamtest",
            "1409304348",
            "xxxxxx",
            "<xml/>",
        )
        .unwrap();
    assert!(old.decrypt(&sealed.encrypt).is_err());
    // With no previous key there is only the current one to seal with.
    let plain = MessageCrypto::new(E_KEY, "wxb11529c136998cb6").unwrap();
    let sealed = plain.encrypt_with_key(KeySlot::Previous, "<xml/>").unwrap();
    assert_eq!(plain.decrypt(&sealed).unwrap(), "<xml/>");
}

#[test]
fn a_debug_print_never_shows_the_key() {
    let printed = format!("{:?}", oa_crypto());
    assert!(printed.contains(APPID));
    assert!(!printed.contains("69b71d79"));
    assert!(!printed.contains("[105"));
}

proptest! {
    #[test]
    fn encrypt_then_decrypt_returns_any_text(
        msg in any::<String>(),
        random in any::<[u8; 16]>(),
        extra in prop::sample::select(vec!["", "中文", "]]>", "\u{1d}", "\0", "<xml>&amp;</xml>"]),
    ) {
        let crypto = oa_crypto();
        let msg = format!("{msg}{extra}");
        let ct = crypto.encrypt_with_random(&msg, &random).unwrap();
        prop_assert_eq!(crypto.decrypt(&ct).unwrap(), msg);
    }

    #[test]
    fn signature_ignores_the_order_of_its_parts(
        a in "[ -~]{0,20}", b in "[ -~]{0,20}", c in "[ -~]{0,20}", d in "[ -~]{0,40}",
    ) {
        let sig = signature::signature(&a, &b, &c);
        prop_assert_eq!(&sig, &signature::signature(&c, &a, &b));
        prop_assert_eq!(&sig, &signature::signature(&b, &c, &a));
        let msg_sig = signature::msg_signature(&a, &b, &c, &d);
        prop_assert_eq!(&msg_sig, &signature::msg_signature(&d, &c, &b, &a));
        prop_assert!(signature::verify_msg_signature(&b, &d, &a, &c, &msg_sig).is_ok());
        prop_assert_eq!(sig.len(), 40);
        prop_assert!(sig.bytes().all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x)));
    }

    #[test]
    fn any_text_survives_the_cdata_writer_and_the_reader(text in any::<String>()) {
        let mut doc = String::from("<xml>");
        xml::push_cdata_element(&mut doc, "Content", &text);
        xml::push_text_element(&mut doc, "Plain", &text);
        doc.push_str("</xml>");
        let root = xml::parse(doc.as_bytes()).unwrap();
        prop_assert_eq!(root.text_of("Content"), Some(text.as_str()));
        prop_assert_eq!(root.text_of("Plain"), Some(text.as_str()));
    }

    #[test]
    fn a_text_reply_round_trips_any_content(content in "\\PC*[^\\s\\p{C}]\\PC*") {
        let reply = Reply {
            to_user_name: "openid".into(),
            from_user_name: "gh_x".into(),
            create_time: 1,
            body: ReplyBody::Text { content },
        };
        let xml = reply.to_xml(Answering::UserMessage).unwrap();
        prop_assert_eq!(Reply::parse(xml.as_bytes()).unwrap(), reply);
    }
}

#[test]
fn a_text_reply_of_only_characters_xml_forbids_is_empty() {
    let reply = Reply {
        to_user_name: "openid".into(),
        from_user_name: "gh_x".into(),
        create_time: 1,
        body: ReplyBody::Text {
            content: "\u{0}\u{0B} ".into(),
        },
    };
    assert_eq!(
        reply.to_xml(Answering::UserMessage).unwrap_err(),
        wechat::reply::ReplyError::EmptyText
    );
}

// ---------------------------------------------------------------------------
// Every message and event type
// ---------------------------------------------------------------------------

fn wrap(msg_type: &str, fields: &str) -> String {
    format!(
        "<xml>\n  <ToUserName><![CDATA[gh_3f8a1d2c9e01]]></ToUserName>\n  \
         <FromUserName><![CDATA[oAbCdEf-openid_123]]></FromUserName>\n  \
         <CreateTime>1714000000</CreateTime>\n  <MsgType><![CDATA[{msg_type}]]></MsgType>\n  \
         {fields}\n</xml>"
    )
}

fn event(name: &str, fields: &str) -> String {
    wrap(
        "event",
        &format!("<Event><![CDATA[{name}]]></Event>{fields}"),
    )
}

fn parse(doc: &str) -> InboundMessage {
    InboundMessage::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn event_kind(msg: &InboundMessage) -> &Event {
    match &msg.payload {
        Payload::Event { kind, .. } => kind,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn text_with_chinese_and_a_msgmenu_choice() {
    let msg = parse(&wrap(
        "text",
        "<Content><![CDATA[你好，路灯坏了 <a> & ]]]]><![CDATA[>]]></Content>\
         <MsgId>23456789012345678</MsgId><bizmsgmenuid>101</bizmsgmenuid>",
    ));
    let Payload::Text(t) = &msg.payload else {
        panic!()
    };
    assert_eq!(t.content, "你好，路灯坏了 <a> & ]]>");
    assert_eq!(t.msg_id, MsgId(23456789012345678));
    assert_eq!(t.bizmsgmenuid.as_deref(), Some("101"));
    assert_eq!(msg.kind(), ("msg", "text".to_owned()));
    assert!(msg.is_user_message());
}

#[test]
fn text_keeps_a_control_character_from_user_input() {
    let msg = parse(&wrap(
        "text",
        "<Content><![CDATA[a\u{1d}b\r\nc]]></Content><MsgId>1</MsgId>",
    ));
    let Payload::Text(t) = &msg.payload else {
        panic!()
    };
    assert_eq!(t.content, "a\u{1d}b\r\nc");
}

/// XML forbids U+0000 and PostgreSQL text cannot hold it, yet a raw NUL byte in text
/// or CDATA parses: it is dropped from every field, the kept document included, so no
/// service reading the message stores it.
#[test]
fn a_raw_nul_byte_is_dropped_from_every_field() {
    let msg = parse(&wrap(
        "text",
        "<Content><![CDATA[停\u{0}水\u{0}]]></Content><Idx>1\u{0}</Idx><MsgId>1</MsgId>",
    ));
    let Payload::Text(t) = &msg.payload else {
        panic!()
    };
    assert_eq!((t.content.as_str(), t.idx.as_deref()), ("停水", Some("1")));
    assert_eq!(msg.fields.text_of("Content"), Some("停水"));

    let click = parse(&event(
        "CLICK",
        "<EventKey><![CDATA[MENU_\u{0}A]]></EventKey>",
    ));
    assert_eq!(
        event_kind(&click),
        &Event::Click {
            key: "MENU_A".into()
        }
    );
    let view = parse(&event(
        "VIEW",
        "<EventKey>https://gov.example/\u{0}</EventKey>",
    ));
    assert!(matches!(event_kind(&view), Event::View { url, .. } if url == "https://gov.example/"));
    // A numeric reference to it stays refused, as XML says.
    assert!(
        InboundMessage::parse(wrap("text", "<Content>&#0;</Content><MsgId>1</MsgId>").as_bytes())
            .is_err()
    );
}

#[test]
fn text_containing_a_doctype_string_is_just_text() {
    let msg = parse(&wrap(
        "text",
        "<Content><![CDATA[<!DOCTYPE x [<!ENTITY a \"b\">]>]]></Content><MsgId>1</MsgId>",
    ));
    let Payload::Text(t) = &msg.payload else {
        panic!()
    };
    assert_eq!(t.content, "<!DOCTYPE x [<!ENTITY a \"b\">]>");
}

#[test]
fn image_message() {
    let msg = parse(&wrap(
        "image",
        "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x.jpg]]></PicUrl>\
         <MediaId><![CDATA[media_img]]></MediaId><MsgId>42</MsgId>",
    ));
    let Payload::Image(m) = &msg.payload else {
        panic!()
    };
    assert_eq!(
        (m.pic_url.as_str(), m.media_id.as_str(), m.msg_id),
        ("http://mmbiz.qpic.cn/x.jpg", "media_img", MsgId(42))
    );
}

#[test]
fn voice_message_with_recognition() {
    let msg = parse(&wrap(
        "voice",
        "<MediaId><![CDATA[m1]]></MediaId><Format><![CDATA[amr]]></Format>\
         <MediaId16K><![CDATA[m16]]></MediaId16K><Recognition><![CDATA[我要投诉噪音]]></Recognition>\
         <MsgId>43</MsgId>",
    ));
    let Payload::Voice(v) = &msg.payload else {
        panic!()
    };
    assert_eq!(v.format, "amr");
    assert_eq!(v.media_id_16k.as_deref(), Some("m16"));
    assert_eq!(v.recognition.as_deref(), Some("我要投诉噪音"));
    assert_eq!(v.msg_id, MsgId(43));
}

#[test]
fn voice_message_without_recognition() {
    let msg = parse(&wrap(
        "voice",
        "<MediaId><![CDATA[m1]]></MediaId><Format><![CDATA[speex]]></Format><MsgId>44</MsgId>",
    ));
    let Payload::Voice(v) = &msg.payload else {
        panic!()
    };
    assert_eq!(
        (v.media_id_16k.as_deref(), v.recognition.as_deref()),
        (None, None)
    );
}

#[test]
fn video_and_shortvideo_messages() {
    let fields = "<MediaId><![CDATA[v]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>45</MsgId>";
    let video = parse(&wrap("video", fields));
    let short = parse(&wrap("shortvideo", fields));
    assert!(matches!(&video.payload, Payload::Video(v) if v.thumb_media_id == "t"));
    assert!(matches!(&short.payload, Payload::ShortVideo(v) if v.media_id == "v"));
    assert_eq!(short.kind(), ("msg", "shortvideo".to_owned()));
}

#[test]
fn location_message() {
    let msg = parse(&wrap(
        "location",
        "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>\
         <Scale>20</Scale><Label><![CDATA[广州市天河区]]></Label><MsgId>46</MsgId>",
    ));
    let Payload::Location(l) = &msg.payload else {
        panic!()
    };
    assert_eq!(
        (l.latitude, l.longitude, l.scale),
        (23.134521, 113.358803, Some(20))
    );
    assert_eq!(l.label, "广州市天河区");
}

#[test]
fn link_message() {
    let msg = parse(&wrap(
        "link",
        "<Title><![CDATA[公告]]></Title><Description><![CDATA[d]]></Description>\
         <Url><![CDATA[https://example.gov.cn/a?b=1&c=2]]></Url><MsgId>47</MsgId>",
    ));
    let Payload::Link(l) = &msg.payload else {
        panic!()
    };
    assert_eq!(l.url, "https://example.gov.cn/a?b=1&c=2");
}

#[test]
fn plain_subscribe() {
    let msg = parse(&event("subscribe", "<EventKey><![CDATA[]]></EventKey>"));
    assert_eq!(
        event_kind(&msg),
        &Event::Subscribe {
            scene: None,
            ticket: None
        }
    );
    assert_eq!(msg.kind(), ("event", "subscribe".to_owned()));
    assert!(!msg.is_user_message());
}

#[test]
fn subscribe_through_a_parametric_qr_code_exposes_the_scene() {
    let msg = parse(&event(
        "subscribe",
        "<EventKey><![CDATA[qrscene_district_7]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
    ));
    assert_eq!(
        event_kind(&msg),
        &Event::Subscribe {
            scene: Some("district_7".into()),
            ticket: Some("TICKET".into())
        }
    );
}

#[test]
fn unsubscribe() {
    let msg = parse(&event("unsubscribe", "<EventKey><![CDATA[]]></EventKey>"));
    assert_eq!(event_kind(&msg), &Event::Unsubscribe);
}

#[test]
fn scan_by_a_follower() {
    let msg = parse(&event(
        "SCAN",
        "<EventKey><![CDATA[123]]></EventKey><Ticket><![CDATA[T]]></Ticket>",
    ));
    assert_eq!(
        event_kind(&msg),
        &Event::Scan {
            scene: "123".into(),
            ticket: Some("T".into())
        }
    );
    assert_eq!(msg.kind(), ("event", "scan".to_owned()));
}

#[test]
fn location_event() {
    let msg = parse(&event(
        "LOCATION",
        "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
    ));
    assert_eq!(
        event_kind(&msg),
        &Event::Location {
            latitude: 23.137466,
            longitude: 113.352425,
            precision: Some(119.38504)
        }
    );
}

#[test]
fn click_and_view_events() {
    let click = parse(&event(
        "CLICK",
        "<EventKey><![CDATA[MENU_TRAFFIC]]></EventKey>",
    ));
    assert_eq!(
        event_kind(&click),
        &Event::Click {
            key: "MENU_TRAFFIC".into()
        }
    );
    let view = parse(&event(
        "VIEW",
        "<EventKey><![CDATA[https://example.gov.cn/]]></EventKey><MenuId>208379533</MenuId>",
    ));
    assert_eq!(
        event_kind(&view),
        &Event::View {
            url: "https://example.gov.cn/".into(),
            menu_id: Some("208379533".into())
        }
    );
}

#[test]
fn scancode_events() {
    let fields = "<EventKey><![CDATA[scan_1]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>\
                  <ScanResult><![CDATA[https://x.cn/1]]></ScanResult></ScanCodeInfo>";
    let push = parse(&event("scancode_push", fields));
    let Event::ScanCodePush(s) = event_kind(&push) else {
        panic!()
    };
    assert_eq!(
        (s.key.as_str(), s.scan_type.as_str(), s.scan_result.as_str()),
        ("scan_1", "qrcode", "https://x.cn/1")
    );
    let wait = parse(&event("scancode_waitmsg", fields));
    assert!(matches!(event_kind(&wait), Event::ScanCodeWaitMsg(s) if s.scan_type == "qrcode"));
    // The nested element stays in the raw tree too.
    assert_eq!(
        wait.fields
            .child("ScanCodeInfo")
            .and_then(|i| i.text_of("ScanResult")),
        Some("https://x.cn/1")
    );
}

#[test]
fn picture_events() {
    let fields = "<EventKey><![CDATA[pics]]></EventKey><SendPicsInfo><Count>2</Count><PicList>\
                  <item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item>\
                  <item><PicMd5Sum><![CDATA[2c6f]]></PicMd5Sum></item></PicList></SendPicsInfo>";
    for name in ["pic_sysphoto", "pic_photo_or_album", "pic_weixin"] {
        let msg = parse(&event(name, fields));
        let pics = match (name, event_kind(&msg)) {
            ("pic_sysphoto", Event::PicSysPhoto(p))
            | ("pic_photo_or_album", Event::PicPhotoOrAlbum(p))
            | ("pic_weixin", Event::PicWeixin(p)) => p,
            (_, other) => panic!("{name} parsed as {other:?}"),
        };
        assert_eq!(pics.count, 2);
        assert_eq!(
            pics.pic_md5_sums,
            vec!["1b5f7c23b5bf75682a53e7b6d163e185", "2c6f"]
        );
        assert_eq!(msg.kind(), ("event", name.to_owned()));
    }
}

#[test]
fn location_select_event() {
    let msg = parse(&event(
        "location_select",
        "<EventKey><![CDATA[loc]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X>\
         <Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale>\
         <Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>",
    ));
    let Event::LocationSelect(l) = event_kind(&msg) else {
        panic!()
    };
    assert_eq!(
        (l.latitude, l.longitude, l.scale),
        (Some(23.0), Some(113.0), Some(15))
    );
    assert_eq!(l.label, " 广州市海珠区客村艺苑路 106号");
    assert_eq!(l.poiname, None);
}

#[test]
fn view_miniprogram_event() {
    let msg = parse(&event(
        "view_miniprogram",
        "<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId>MENUID</MenuId>",
    ));
    assert_eq!(
        event_kind(&msg),
        &Event::ViewMiniprogram {
            page_path: "pages/index/index".into(),
            menu_id: Some("MENUID".into())
        }
    );
}

const MASS_FIELDS: &str = "<MsgID>1000001625</MsgID><Status><![CDATA[send success]]></Status>\
    <TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>\
    <CopyrightCheckResult><Count>0</Count><ResultList/><CheckState>1</CheckState></CopyrightCheckResult>\
    <ArticleUrlResult><Count>2</Count><ResultList>\
    <item><ArticleIdx>1</ArticleIdx><ArticleUrl><![CDATA[https://mp.weixin.qq.com/s/a]]></ArticleUrl></item>\
    <item><ArticleIdx>2</ArticleIdx><ArticleUrl><![CDATA[https://mp.weixin.qq.com/s/b]]></ArticleUrl></item>\
    </ResultList></ArticleUrlResult>";

#[test]
fn mass_send_job_finish() {
    let msg = parse(&event("MASSSENDJOBFINISH", MASS_FIELDS));
    let Event::MassSendJobFinish(m) = event_kind(&msg) else {
        panic!()
    };
    assert_eq!(m.msg_id, MsgId(1000001625));
    assert!(m.succeeded());
    assert_eq!(
        (m.total_count, m.filter_count, m.sent_count, m.error_count),
        (Some(100), Some(80), Some(75), Some(5))
    );
    assert_eq!(m.article_urls.len(), 2);
    assert_eq!(m.article_urls[1].idx, 2);
    assert_eq!(m.article_urls[1].url, "https://mp.weixin.qq.com/s/b");
    assert_eq!(
        msg.fields
            .child("CopyrightCheckResult")
            .and_then(|c| c.text_of("CheckState")),
        Some("1")
    );
    assert_eq!(msg.kind(), ("event", "masssendjobfinish".to_owned()));
}

#[test]
fn template_send_job_finish_statuses() {
    let status = |s: &str| {
        let msg = parse(&event(
            "TEMPLATESENDJOBFINISH",
            &format!("<MsgID>200163836</MsgID><Status><![CDATA[{s}]]></Status>"),
        ));
        match event_kind(&msg) {
            Event::TemplateSendJobFinish(t) => {
                assert_eq!(t.msg_id, MsgId(200163836));
                t.status.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(status("success"), TemplateSendStatus::Success);
    assert_eq!(
        status("failed:user block"),
        TemplateSendStatus::Failed("user block".into())
    );
    assert_eq!(
        status("failed: system failed"),
        TemplateSendStatus::Failed("system failed".into())
    );
    assert_eq!(
        status("pending"),
        TemplateSendStatus::Other("pending".into())
    );
}

const PUBLISH_OK: &str = "<PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status>\
    <article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq1rKLFS1UbSjKTVcmdSZ1TV]]></article_id>\
    <article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[https://mp.weixin.qq.com/s/x]]></article_url></item>\
    </article_detail></PublishEventInfo>";

fn publish_event(info: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_4d00ed8d6399]]></ToUserName><FromUserName><![CDATA[mphelper]]></FromUserName>\
         <CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[PUBLISHJOBFINISH]]></Event>{info}</xml>"
    )
}

#[test]
fn publish_job_finish_success() {
    let msg = parse(&publish_event(PUBLISH_OK));
    let Event::PublishJobFinish(p) = event_kind(&msg) else {
        panic!()
    };
    assert_eq!(p.publish_id, "2247503051");
    assert_eq!(p.publish_status, PublishStatus::Success);
    assert_eq!(
        p.article_id.as_deref(),
        Some("b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq1rKLFS1UbSjKTVcmdSZ1TV")
    );
    assert_eq!(p.articles.len(), 1);
    assert_eq!(p.articles[0].url, "https://mp.weixin.qq.com/s/x");
    assert!(p.fail_idx.is_empty());
}

#[test]
fn publish_job_finish_with_failed_articles() {
    let msg = parse(&publish_event(
        "<PublishEventInfo><publish_id>2247503052</publish_id><publish_status>2</publish_status>\
         <fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo>",
    ));
    let Event::PublishJobFinish(p) = event_kind(&msg) else {
        panic!()
    };
    assert_eq!(p.publish_status, PublishStatus::OriginalityFailed);
    assert_eq!(p.fail_idx, vec![1, 2]);
    assert_eq!(PublishStatus::from_code(6), PublishStatus::Banned);
    assert_eq!(PublishStatus::from_code(9), PublishStatus::Other(9));
}

#[test]
fn an_unknown_event_is_kept_with_all_its_fields() {
    let msg = parse(&event(
        "kf_create_session",
        "<KfAccount><![CDATA[test1@test]]></KfAccount>",
    ));
    assert_eq!(event_kind(&msg), &Event::Unknown);
    assert_eq!(msg.fields.text_of("KfAccount"), Some("test1@test"));
    assert_eq!(msg.kind(), ("event", "kf_create_session".to_owned()));
}

#[test]
fn an_unknown_msg_type_is_kept_with_all_its_fields() {
    let msg = parse(&wrap(
        "miniprogrampage",
        "<Title><![CDATA[t]]></Title><AppId><![CDATA[wxapp]]></AppId><MsgId>9</MsgId>",
    ));
    assert_eq!(msg.payload, Payload::Unknown);
    assert_eq!(msg.header.msg_type, "miniprogrampage");
    assert_eq!(msg.fields.text_of("AppId"), Some("wxapp"));
    assert_eq!(msg.kind(), ("msg", "miniprogrampage".to_owned()));
    assert!(msg.is_user_message());
}

/// A document every typed message and event parses from: it carries each field some
/// type requires, and the parser reads only its own type's.
fn any_type(name: &str, is_event: bool) -> String {
    let fields = "<MsgId>1</MsgId><MsgID>2</MsgID><Location_X>23.1</Location_X>\
        <Location_Y>113.3</Location_Y><Latitude>23.1</Latitude><Longitude>113.3</Longitude>\
        <PublishEventInfo><publish_id>3</publish_id><publish_status>0</publish_status>\
        </PublishEventInfo>";
    if is_event {
        event(name, fields)
    } else {
        wrap(name, fields)
    }
}

#[test]
fn every_type_the_parser_reads_is_listed_with_its_wechat_name_as_label() {
    for &listed in InboundType::ALL {
        let Some(name) = listed.wire_name() else {
            continue;
        };
        let msg = parse(&any_type(name, listed.is_event()));
        assert_eq!(msg.inbound_type(), listed, "{name}");
        // Metric values alert rules read: the name WeChat sends, exactly.
        assert_eq!(listed.label(), name);
    }
    let unknown_msg = parse(&any_type("miniprogrampage", false));
    assert_eq!(unknown_msg.inbound_type().label(), "unknown_msg");
    let unknown_event = parse(&any_type("kf_create_session", true));
    assert_eq!(unknown_event.inbound_type().label(), "unknown_event");
    assert_eq!(
        InboundType::ALL
            .iter()
            .map(|t| t.label())
            .collect::<Vec<_>>(),
        InboundType::LABELS,
        "one label per type, in the same order"
    );
}

#[test]
fn subject_tokens_are_sanitised() {
    assert_eq!(
        subject_token("user.info modified*>"),
        "user_info_modified__"
    );
    assert_eq!(subject_token("SCAN"), "scan");
    assert_eq!(subject_token("事件"), "__");
    assert_eq!(subject_token(""), "unknown");
}

#[test]
fn a_missing_header_field_or_a_bad_msg_id_is_a_precise_error() {
    let no_from =
        "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
    assert_eq!(
        InboundMessage::parse(no_from.as_bytes()),
        Err(MessageError::MissingField("FromUserName"))
    );
    let bad_id = wrap("text", "<Content>x</Content><MsgId>12ab</MsgId>");
    let err = InboundMessage::parse(bad_id.as_bytes()).unwrap_err();
    assert_eq!(err.reason(), "invalid_field");
    let no_id = wrap("image", "<PicUrl>x</PicUrl>");
    assert_eq!(
        InboundMessage::parse(no_id.as_bytes()),
        Err(MessageError::MissingField("MsgId"))
    );
}

#[test]
fn the_envelope_gives_encrypt_and_to_user_name_before_decrypting() {
    let safe = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{B_ENCRYPT}]]></Encrypt></xml>"
    );
    let env = InboundEnvelope::parse(safe.as_bytes()).unwrap();
    assert_eq!(env.to_user_name.as_deref(), Some("gh_10f6c3c3ac5a"));
    assert_eq!(env.encrypt.as_deref(), Some(B_ENCRYPT));
    let plain = wrap("text", "<Content>x</Content><MsgId>1</MsgId>");
    assert_eq!(
        InboundEnvelope::parse(plain.as_bytes()).unwrap().encrypt,
        None
    );
}

// ---------------------------------------------------------------------------
// Dedup keys (ARCHITECTURE.md, wechat-protocol.md §4)
// ---------------------------------------------------------------------------

fn key_of(doc: &str) -> String {
    parse(doc).dedup_key("acct", doc.as_bytes())
}

#[test]
fn a_message_is_keyed_by_sender_and_msg_id() {
    assert_eq!(
        key_of(&wrap(
            "text",
            "<Content>x</Content><MsgId>6054768590064713728</MsgId>"
        )),
        "acct:oAbCdEf-openid_123:6054768590064713728"
    );
    assert_eq!(
        key_of(&wrap(
            "image",
            "<PicUrl>p</PicUrl><MediaId>m</MediaId><MsgId>7</MsgId>"
        )),
        "acct:oAbCdEf-openid_123:7"
    );
}

#[test]
fn an_event_without_a_key_has_no_trailing_separator() {
    assert_eq!(
        key_of(&event("subscribe", "<EventKey><![CDATA[]]></EventKey>")),
        "acct:oAbCdEf-openid_123:1714000000:subscribe"
    );
    assert_eq!(
        key_of(&event("unsubscribe", "")),
        "acct:oAbCdEf-openid_123:1714000000:unsubscribe"
    );
}

#[test]
fn a_long_event_key_is_hashed_so_the_key_stays_stable_and_short() {
    let url = |tail: &str| {
        format!(
            "https://gov.example.cn/oauth?redirect={}{tail}",
            "a".repeat(900)
        )
    };
    let view = |tail: &str| {
        key_of(&event(
            "VIEW",
            &format!("<EventKey><![CDATA[{}]]></EventKey>", url(tail)),
        ))
    };
    let first = view("1");
    assert!(first.len() <= 128, "{first}");
    assert!(first.starts_with("acct:oAbCdEf-openid_123:1714000000:VIEW:"));
    assert_eq!(first, view("1"), "a retry gets the same key");
    assert_ne!(first, view("2"));
}

#[test]
fn an_event_with_a_key_appends_it_as_sent() {
    assert_eq!(
        key_of(&event(
            "subscribe",
            "<EventKey><![CDATA[qrscene_7]]></EventKey><Ticket>T</Ticket>"
        )),
        "acct:oAbCdEf-openid_123:1714000000:subscribe:qrscene_7"
    );
    assert_eq!(
        key_of(&event("CLICK", "<EventKey><![CDATA[MENU_A]]></EventKey>")),
        "acct:oAbCdEf-openid_123:1714000000:CLICK:MENU_A"
    );
}

/// A NUL is dropped when the message is parsed, before its key is made: every
/// replica keys a retry of such a callback alike, as it keys the same callback
/// without the NUL.
#[test]
fn an_event_key_with_a_nul_is_keyed_without_it() {
    let with_nul = key_of(&event(
        "CLICK",
        "<EventKey><![CDATA[MENU_\u{0}A]]></EventKey>",
    ));
    assert_eq!(
        with_nul,
        key_of(&event("CLICK", "<EventKey><![CDATA[MENU_A]]></EventKey>"))
    );
}

#[test]
fn job_finish_events_append_their_job_id() {
    assert_eq!(
        key_of(&event("MASSSENDJOBFINISH", MASS_FIELDS)),
        "acct:oAbCdEf-openid_123:1714000000:MASSSENDJOBFINISH:1000001625"
    );
    assert_eq!(
        key_of(&event(
            "TEMPLATESENDJOBFINISH",
            "<MsgID>200163836</MsgID><Status>success</Status>"
        )),
        "acct:oAbCdEf-openid_123:1714000000:TEMPLATESENDJOBFINISH:200163836"
    );
    assert_eq!(
        key_of(&publish_event(PUBLISH_OK)),
        "acct:mphelper:1610969440:PUBLISHJOBFINISH:2247503051"
    );
}

#[test]
fn two_publish_results_in_one_second_get_different_keys() {
    let other = PUBLISH_OK.replace("2247503051", "2247503052");
    assert_ne!(
        key_of(&publish_event(PUBLISH_OK)),
        key_of(&publish_event(&other))
    );
}

#[test]
fn unknown_types_are_keyed_by_a_body_hash() {
    use sha1::{Digest, Sha1};
    let a = event("wxa_media_check", "<trace_id>t1</trace_id>");
    let b = event("wxa_media_check", "<trace_id>t2</trace_id>");
    let hash = hex::encode(Sha1::digest(a.as_bytes()));
    assert_eq!(
        key_of(&a),
        format!("acct:oAbCdEf-openid_123:1714000000:{hash}")
    );
    assert_ne!(key_of(&a), key_of(&b));
    let unknown_msg = wrap("miniprogrampage", "<MsgId>9</MsgId>");
    let hash = hex::encode(Sha1::digest(unknown_msg.as_bytes()));
    assert_eq!(
        key_of(&unknown_msg),
        format!("acct:oAbCdEf-openid_123:1714000000:{hash}")
    );
}

// ---------------------------------------------------------------------------
// Passive replies
// ---------------------------------------------------------------------------

fn inbound_text() -> InboundMessage {
    parse(&wrap("text", "<Content>hi</Content><MsgId>1</MsgId>"))
}

fn articles(n: usize) -> Vec<Article> {
    (0..n)
        .map(|i| Article {
            title: format!("标题{i}"),
            description: "d".into(),
            pic_url: "https://x.cn/p.jpg".into(),
            url: "https://x.cn/a".into(),
        })
        .collect()
}

#[test]
fn a_text_reply_swaps_the_addresses() {
    let inbound = inbound_text();
    let reply = Reply::to(
        &inbound,
        1714000001,
        ReplyBody::Text {
            content: "已收到 ]]> 谢谢\n<a href=\"https://x.cn\">查看</a>".into(),
        },
    );
    let xml = reply.to_xml(Answering::of(&inbound)).unwrap();
    assert_eq!(
        xml,
        "<xml><ToUserName><![CDATA[oAbCdEf-openid_123]]></ToUserName>\
         <FromUserName><![CDATA[gh_3f8a1d2c9e01]]></FromUserName><CreateTime>1714000001</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[已收到 ]]]]><![CDATA[> 谢谢\n<a href=\"https://x.cn\">查看</a>]]></Content></xml>"
    );
    assert_eq!(Reply::parse(xml.as_bytes()).unwrap(), reply);
}

#[test]
fn an_empty_text_reply_is_refused() {
    let reply = Reply::to(
        &inbound_text(),
        1,
        ReplyBody::Text {
            content: " \n".into(),
        },
    );
    assert_eq!(
        reply.to_xml(Answering::UserMessage),
        Err(ReplyError::EmptyText)
    );
}

#[test]
fn news_to_a_user_message_allows_one_article() {
    let inbound = inbound_text();
    let answering = Answering::of(&inbound);
    assert_eq!(answering, Answering::UserMessage);
    assert!(
        Reply::to(&inbound, 1, ReplyBody::News(articles(1)))
            .to_xml(answering)
            .is_ok()
    );
    let err = Reply::to(&inbound, 1, ReplyBody::News(articles(2)))
        .to_xml(answering)
        .unwrap_err();
    assert_eq!(err, ReplyError::TooManyArticles { max: 1, got: 2 });
    assert_eq!(err.reason(), "too_many_articles");
}

#[test]
fn news_to_an_event_allows_eight_articles() {
    let inbound = parse(&event("subscribe", ""));
    let answering = Answering::of(&inbound);
    assert_eq!(answering, Answering::Event);
    let ok = Reply::to(&inbound, 1, ReplyBody::News(articles(8)));
    let xml = ok.to_xml(answering).unwrap();
    assert_eq!(Reply::parse(xml.as_bytes()).unwrap(), ok);
    assert_eq!(
        Reply::to(&inbound, 1, ReplyBody::News(articles(9))).to_xml(answering),
        Err(ReplyError::TooManyArticles { max: 8, got: 9 })
    );
    assert_eq!(
        Reply::to(&inbound, 1, ReplyBody::News(vec![])).to_xml(answering),
        Err(ReplyError::NoArticles)
    );
}

#[test]
fn every_reply_type_round_trips_through_the_parser() {
    let inbound = parse(&event("CLICK", "<EventKey>k</EventKey>"));
    let bodies = vec![
        ReplyBody::Image {
            media_id: "img".into(),
        },
        ReplyBody::Voice {
            media_id: "voc".into(),
        },
        ReplyBody::Video {
            media_id: "vid".into(),
            title: "标题".into(),
            description: "说明".into(),
        },
        ReplyBody::Music {
            title: "t".into(),
            description: "d".into(),
            music_url: "https://x.cn/m.mp3".into(),
            hq_music_url: "https://x.cn/hq.mp3".into(),
            thumb_media_id: "thumb".into(),
        },
        ReplyBody::News(articles(3)),
        ReplyBody::TransferCustomerService { kf_account: None },
        ReplyBody::TransferCustomerService {
            kf_account: Some("kf2001@gh".into()),
        },
    ];
    for body in bodies {
        let reply = Reply::to(&inbound, 1714000002, body);
        let xml = reply.to_xml(Answering::Event).unwrap();
        assert_eq!(Reply::parse(xml.as_bytes()).unwrap(), reply, "{xml}");
    }
}

#[test]
fn a_reply_with_an_empty_media_id_is_refused() {
    let reply = Reply::to(
        &inbound_text(),
        1,
        ReplyBody::Image {
            media_id: String::new(),
        },
    );
    assert_eq!(
        reply.to_xml(Answering::UserMessage),
        Err(ReplyError::EmptyField("MediaId"))
    );
}

#[test]
fn an_encrypted_reply_opens_only_with_the_right_token() {
    let crypto = oa_crypto();
    let reply = Reply::to(
        &inbound_text(),
        1714000003,
        ReplyBody::Text {
            content: "您的工单已受理".into(),
        },
    );
    let body = reply
        .to_encrypted_xml(
            Answering::UserMessage,
            &crypto,
            "tok",
            "1714000003",
            "n0nce",
        )
        .unwrap();
    assert_eq!(
        Reply::open_encrypted(body.as_bytes(), &crypto, "tok").unwrap(),
        reply
    );
    assert_eq!(
        Reply::open_encrypted(body.as_bytes(), &crypto, "other").unwrap_err(),
        ReplyError::Signature(SignatureError::Mismatch)
    );
}

#[test]
fn a_reply_parser_refuses_a_wrong_article_count_or_type() {
    let bad_count = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>\
                     <MsgType>news</MsgType><ArticleCount>2</ArticleCount><Articles><item><Title>t</Title></item></Articles></xml>";
    assert_eq!(
        Reply::parse(bad_count.as_bytes()).unwrap_err().reason(),
        "invalid_field"
    );
    let bad_type = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>\
                    <MsgType>mpnews</MsgType></xml>";
    assert_eq!(
        Reply::parse(bad_type.as_bytes()),
        Err(ReplyError::UnknownType("mpnews".into()))
    );
}

// ---------------------------------------------------------------------------
// Hostile XML
// ---------------------------------------------------------------------------

fn xml_err(doc: &[u8]) -> XmlError {
    xml::parse(doc).expect_err("must be refused")
}

#[test]
fn a_doctype_with_an_external_entity_is_refused() {
    let doc = br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>&xxe;</ToUserName></xml>"#;
    assert_eq!(xml_err(doc), XmlError::DoctypeForbidden);
    assert_eq!(xml_err(doc).reason(), "doctype_forbidden");
    let err = InboundMessage::parse(doc).unwrap_err();
    assert_eq!(err.reason(), "doctype_forbidden");
}

#[test]
fn billion_laughs_is_refused_before_any_expansion() {
    let doc = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><Content>&lol9;</Content></xml>"#;
    assert_eq!(xml_err(doc), XmlError::DoctypeForbidden);
}

#[test]
fn an_undeclared_entity_is_refused_and_predefined_ones_resolve() {
    assert_eq!(
        xml_err(b"<xml><Content>&lol;</Content></xml>"),
        XmlError::EntityForbidden("lol".into())
    );
    let root = xml::parse(b"<xml><C>&lt;&gt;&amp;&apos;&quot;&#20013;&#x6587;</C></xml>").unwrap();
    assert_eq!(root.text_of("C"), Some("<>&'\"中文"));
}

#[test]
fn deep_nesting_is_refused() {
    let doc = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert_eq!(xml_err(doc.as_bytes()), XmlError::TooDeep { max: 16 });
}

#[test]
fn a_huge_element_count_is_refused() {
    let doc = format!("<xml>{}</xml>", "<a>1</a>".repeat(100_000));
    assert_eq!(
        xml_err(doc.as_bytes()),
        XmlError::TooManyElements { max: 1024 }
    );
}

#[test]
fn overlong_text_is_refused() {
    let limits = Limits {
        max_text_len: 10,
        ..Limits::default()
    };
    let err =
        xml::parse_with_limits(b"<xml><C><![CDATA[0123456789A]]></C></xml>", limits).unwrap_err();
    assert_eq!(err, XmlError::TextTooLong { max: 10 });
    let err = InboundMessage::parse_with_limits(b"<xml><C>01234&amp;56789</C></xml>", limits)
        .unwrap_err();
    assert_eq!(err.reason(), "text_too_long");
}

#[test]
fn truncated_documents_are_refused() {
    assert_eq!(
        xml_err(b"<xml><ToUserName><![CDATA[gh]]></ToUserName>"),
        XmlError::Truncated("xml".into())
    );
    assert_eq!(xml_err(b"<xml><ToUser").reason(), "malformed_xml");
    assert_eq!(xml_err(b"<xml><C><![CDATA[abc").reason(), "malformed_xml");
    assert_eq!(xml_err(b""), XmlError::Empty);
    assert_eq!(xml_err(b"  \n "), XmlError::Empty);
}

#[test]
fn other_malformed_documents_are_refused() {
    assert_eq!(xml_err(b"<xml><a></b></xml>").reason(), "malformed_xml");
    assert_eq!(xml_err(b"<xml></xml><xml></xml>").reason(), "malformed_xml");
    assert_eq!(xml_err(b"hello <xml></xml>").reason(), "malformed_xml");
    assert_eq!(xml_err(b"<xml>\xff\xfe</xml>"), XmlError::NotUtf8);
    assert_eq!(xml_err(b"<xml>&#0;</xml>").reason(), "malformed_xml");
}

#[test]
fn every_error_has_a_stable_reason_code() {
    let reasons = [
        CryptoError::BadBase64.reason(),
        CryptoError::BadLength { len: 1 }.reason(),
        CryptoError::InvalidKey.reason(),
        CryptoError::MessageTooLong.reason(),
        SignatureError::Mismatch.reason(),
        MessageError::MissingField("x").reason(),
        ReplyError::Crypto(CryptoError::BadPadding).reason(),
    ];
    assert_eq!(
        reasons,
        [
            "bad_base64",
            "bad_length",
            "bad_aes_key",
            "message_too_long",
            "bad_signature",
            "missing_field",
            "bad_padding"
        ]
    );
}

#[test]
fn a_doctype_in_any_case_or_place_and_a_stray_entity_declaration_are_refused() {
    assert_eq!(xml_err(b"<!doctype xml><xml/>"), XmlError::DoctypeForbidden);
    assert_eq!(
        xml_err(b"<xml><!DOCTYPE x></xml>"),
        XmlError::DoctypeForbidden
    );
    assert_eq!(
        xml_err(b"<xml><!ENTITY a \"b\"></xml>").reason(),
        "malformed_xml"
    );
    assert_eq!(xml_err(b"<xml>&amp").reason(), "malformed_xml");
}

#[test]
fn a_byte_order_mark_comments_and_attributes_are_tolerated() {
    let root = xml::parse(b"\xef\xbb\xbf<xml><!-- c --><A a='1'>1</A><?pi x?></xml>").unwrap();
    assert_eq!(root.text_of("A"), Some("1"));
}
