//! Scans: a scan-code menu button is answered by the `menu_click` rule of its key; a
//! `scancode_waitmsg` button no rule answers (WeChat shows "消息接收中" and waits for
//! the account) reaches a person with the scan result; a follower scanning a
//! parametric QR code gets the subscribe greeting.

use prost::Message as _;
use proto::events::v1::{AnsweredInbound, AutoReplied};

use crate::citizen::{Callback, Citizen, GH_ID, eventually, inbound, text_of};
use crate::helpers::{ACCOUNT, TestApp, spawn_app};
use crate::places::rule_in_effect;

impl TestApp {
    /// What the AutoReplied events announced for `openid` say they answered, once
    /// one is announced.
    async fn answered_for(&self, openid: &str) -> Vec<AnsweredInbound> {
        let filter = format!("interaction.{ACCOUNT}.autoreply.>");
        eventually(&format!("AutoReplied for {openid}"), || async {
            let found: Vec<AnsweredInbound> = self
                .interaction_events(&filter, 0)
                .await
                .into_iter()
                .map(|m| AutoReplied::decode(m.payload).unwrap())
                .filter(|e| e.openid == openid)
                .map(|e| e.answered())
                .collect();
            (!found.is_empty()).then_some(found)
        })
        .await
    }
}

/// Citizen `openid`'s scan of `result` with scan-code button `key` (`event`:
/// `scancode_waitmsg` or `scancode_push`), `seconds` after now.
fn scan(openid: &str, seconds: i64, event: &str, key: &str, result: &str) -> Callback {
    let at = chrono::Utc::now().timestamp() + seconds;
    inbound(&format!(
        "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
         <FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{at}</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>\
         <EventKey><![CDATA[{key}]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]>\
         </ScanType><ScanResult><![CDATA[{result}]]></ScanResult></ScanCodeInfo></xml>"
    ))
}

#[tokio::test]
async fn a_scan_code_button_gets_its_keys_rule_or_reaches_a_person_with_the_result() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    const PERMIT: &str = "证照核验结果请以“临城政务”小程序为准。";
    rule_in_effect(&app, "menu_click", "SCAN_PERMIT", PERMIT, |c| {
        scan(&c.openid, 0, "scancode_waitmsg", "SCAN_PERMIT", "probe")
    })
    .await;
    let citizen = Citizen::new();

    // The push button's key is answered by its rule too; neither opens a ticket.
    let push = scan(&citizen.openid, 1, "scancode_push", "SCAN_PERMIT", "x");
    assert_eq!(
        text_of(&app.passive_reply(&nats, &push).await),
        Some(PERMIT)
    );
    app.publish(&push).await;
    let pusher = Citizen::new();
    let waiting = scan(&pusher.openid, 1, "scancode_waitmsg", "SCAN_PERMIT", "x");
    app.publish(&waiting).await;
    // A button the citizen pressed, as a click: not an answer to what they wrote.
    assert_eq!(
        app.answered_for(&pusher.openid).await,
        [AnsweredInbound::Event]
    );

    // A waiting button no rule answers: acknowledged, and a ticket carries the result.
    let report = scan(
        &citizen.openid,
        2,
        "scancode_waitmsg",
        "SCAN_REPORT",
        "LAMP-0423",
    );
    let reply = app.passive_reply(&nats, &report).await;
    assert!(
        text_of(&reply).is_some_and(|t| t.contains("已收到")),
        "{reply:?}"
    );
    app.publish(&report).await;
    let thread: Vec<String> = eventually("the scan reaches a ticket", || async {
        let thread: Vec<String> = sqlx::query_scalar(
            "SELECT m.body FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
              WHERE t.openid = $1 ORDER BY m.at, m.id",
        )
        .bind(&citizen.openid)
        .fetch_all(&app.db)
        .await
        .unwrap();
        (!thread.is_empty()).then_some(thread)
    })
    .await;
    assert_eq!(thread, ["[扫码] LAMP-0423 (qrcode)"]);
}

#[tokio::test]
async fn a_follower_scanning_a_parametric_qr_code_gets_the_greeting() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    const WELCOME: &str = "欢迎关注临城发布！回复“办事”查看办事指南。";
    rule_in_effect(&app, "subscribe", "", WELCOME, |c| {
        c.does(wechat_sim::traffic::CitizenAction::Subscribe)
    })
    .await;
    let citizen = Citizen::new();
    let at = chrono::Utc::now().timestamp();
    let scan = inbound(&format!(
        "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
         <FromUserName><![CDATA[{}]]></FromUserName><CreateTime>{at}</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event>\
         <EventKey><![CDATA[hall_3]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>",
        citizen.openid
    ));
    assert_eq!(
        text_of(&app.passive_reply(&nats, &scan).await),
        Some(WELCOME)
    );
    // Announced as the greeting of a follow is: stats count it, as an event's answer.
    app.publish(&scan).await;
    assert_eq!(
        app.answered_for(&citizen.openid).await,
        [AnsweredInbound::Event]
    );
}
