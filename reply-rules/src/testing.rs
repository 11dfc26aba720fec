//! Rules and messages for tests, here and in interaction-svc (feature `testing`).

use chrono::DateTime;
use wechat::message::InboundMessage;

use crate::incoming::{CitizenMessage, Incoming};
use crate::rules::{MatchKind, ReplyContent, ReplyRule};

/// An enabled rule of account `city` answering `text`, created `age` seconds before a
/// fixed instant (the older rule wins a tie of priorities).
pub fn rule(kind: MatchKind, patterns: &[&str], priority: i32, age: i64, text: &str) -> ReplyRule {
    ReplyRule {
        id: uuid::Uuid::new_v4(),
        account: "city".into(),
        kind,
        patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        priority,
        reply: ReplyContent::Text(text.into()),
        resolves: true,
        enabled: true,
        created_at: DateTime::from_timestamp(1_700_000_000 - age, 0).expect("a valid instant"),
    }
}

/// A citizen's text message.
pub fn text(words: &str) -> Incoming {
    Incoming::Message(CitizenMessage {
        msg_type: "text".into(),
        text: words.into(),
        body: words.into(),
        location: None,
        menu_key: None,
    })
}

/// A callback of citizen `o1` whose elements after `MsgType` are `body`, classified.
pub fn callback(msg_type: &str, body: &str) -> Incoming {
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    );
    Incoming::of(&InboundMessage::parse(xml.as_bytes()).expect("test XML parses"))
}

/// A location message labelled `label`.
pub fn location(label: &str) -> Incoming {
    callback(
        "location",
        &format!(
            "<Location_X>25.77</Location_X><Location_Y>113.01</Location_Y><Scale>15</Scale>\
             <Label><![CDATA[{label}]]></Label><MsgId>11</MsgId>"
        ),
    )
}

/// A link titled and described `title`.
pub fn link(title: &str) -> Incoming {
    callback(
        "link",
        &format!(
            "<Title><![CDATA[{title}]]></Title><Description><![CDATA[{title}]]></Description>\
             <Url><![CDATA[https://mp.weixin.qq.com/s/abc]]></Url><MsgId>12</MsgId>"
        ),
    )
}

/// A `scancode_push` (`waits` false) or `scancode_waitmsg` menu button `key`'s scan
/// of `result`.
pub fn scan(key: &str, waits: bool, result: &str) -> Incoming {
    let event = if waits {
        "scancode_waitmsg"
    } else {
        "scancode_push"
    };
    callback(
        "event",
        &format!(
            "<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey>\
             <ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>\
             <ScanResult><![CDATA[{result}]]></ScanResult></ScanCodeInfo>"
        ),
    )
}
