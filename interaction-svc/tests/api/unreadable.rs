//! Messages nobody can read: a voice message WeChat did not transcribe is answered
//! with a request for words and opens no ticket.

use reply_rules::incoming::VOICE_UNREADABLE;
use wechat_sim::traffic::CitizenAction;

use crate::citizen::{Citizen, eventually, text_of};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_voice_message_without_recognition_asks_for_words_and_opens_no_ticket() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut citizen = Citizen::new();
    let voice = citizen.does(CitizenAction::Voice {
        media_id: "media_voice_0001".into(),
        format: "amr".into(),
        recognition: String::new(),
    });

    let reply = app.passive_reply(&nats, &voice).await;
    assert_eq!(text_of(&reply), Some(VOICE_UNREADABLE), "{reply:?}");

    // The citizen writes instead: that opens the ticket, and it holds only the words.
    app.publish(&voice).await;
    app.publish(&citizen.says("我家门口路灯坏了")).await;
    let thread: Vec<String> = eventually("the written message opens a ticket", || async {
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
    assert_eq!(thread, ["我家门口路灯坏了"]);
}
