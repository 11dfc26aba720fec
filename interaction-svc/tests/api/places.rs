//! A location or a link the citizen sends is no question: its label or title names a
//! place or a page, so no keyword rule and no directory service answers it, and it
//! reaches a person (opening or joining the citizen's ticket) with what it points at.

use interaction_svc::store::rules::RulesNotifier;
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Callback, Citizen, GH_ID, eventually, inbound, text_of};
use crate::helpers::{ACCOUNT, TestApp, spawn_app};

/// Saves a resolving rule of `kind` (`contains`, `menu_click`, …) answering `reply`
/// to `pattern`, and waits until the reply path answers `probe` with it.
pub async fn rule_in_effect(
    app: &TestApp,
    kind: &str,
    pattern: &str,
    reply: &str,
    probe: impl Fn(&mut Citizen) -> Callback,
) {
    sqlx::query(
        "INSERT INTO reply_rules (id, account, match_kind, patterns, reply_text, resolves)
         VALUES ($1, $2, $3, ARRAY[$4], $5, true)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(ACCOUNT)
    .bind(kind)
    .bind(pattern)
    .bind(reply)
    .execute(&app.db)
    .await
    .expect("rule saved");
    RulesNotifier::new(app.nats().await, app.namespace().clone())
        .changed(ACCOUNT)
        .await;
    let nats = app.nats().await;
    let (nats, probe) = (&nats, &probe);
    eventually("the rule is in effect", || async move {
        let callback = probe(&mut Citizen::new());
        let answer = app.passive_reply(nats, &callback).await;
        (text_of(&answer) == Some(reply)).then_some(())
    })
    .await;
}

/// The bodies of the thread of `openid`'s tickets, once it holds `at_least` messages.
async fn thread_of(app: &TestApp, openid: &str, at_least: usize) -> Vec<String> {
    eventually("the messages reach a ticket", || async {
        let thread: Vec<String> = sqlx::query_scalar(
            "SELECT m.body FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
              WHERE t.openid = $1 ORDER BY m.at, m.id",
        )
        .bind(openid)
        .fetch_all(&app.db)
        .await
        .unwrap();
        (thread.len() >= at_least).then_some(thread)
    })
    .await
}

/// A link the citizen shares, `seconds` after now.
fn link(openid: &str, seconds: i64, title: &str, description: &str) -> Callback {
    let at = chrono::Utc::now().timestamp() + seconds;
    inbound(&format!(
        "<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName>\
         <FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{at}</CreateTime>\
         <MsgType><![CDATA[link]]></MsgType><Title><![CDATA[{title}]]></Title>\
         <Description><![CDATA[{description}]]></Description>\
         <Url><![CDATA[https://mp.weixin.qq.com/s/shebao]]></Url><MsgId>{at}{seconds}</MsgId></xml>"
    ))
}

#[tokio::test]
async fn a_location_or_a_link_named_like_a_keyword_reaches_a_person_not_the_rule() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    const RULE: &str = "社保业务请点击菜单“社保服务”";
    rule_in_effect(&app, "contains", "社保", RULE, |c| c.says("社保怎么交")).await;
    let mut citizen = Citizen::new();

    let location = citizen.does(CitizenAction::Location {
        latitude: 25.77,
        longitude: 113.01,
        scale: 15,
        label: "社保大厦".into(),
    });
    let reply = app.passive_reply(&nats, &location).await;
    let said = text_of(&reply).unwrap_or_default();
    assert_ne!(said, RULE, "a place is no question about 社保");
    assert!(said.contains("已收到"), "acknowledged: {reply:?}");
    app.publish(&location).await;
    let thread = thread_of(&app, &citizen.openid, 1).await;
    assert_eq!(thread, ["[位置] 社保大厦 (25.77, 113.01)"]);

    // A link shared afterwards joins the ticket the location opened.
    let link = link(&citizen.openid, 5, "社保卡补办指南", "社保 公积金");
    let reply = app.passive_reply(&nats, &link).await;
    assert_ne!(text_of(&reply), Some(RULE), "{reply:?}");
    app.publish(&link).await;
    let thread = thread_of(&app, &citizen.openid, 2).await;
    assert_eq!(
        thread[1],
        "[链接] 社保卡补办指南 https://mp.weixin.qq.com/s/shebao"
    );
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE openid = $1")
        .bind(&citizen.openid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tickets, 1);
}
