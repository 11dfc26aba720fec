//! Rules and messages for tests, here and in interaction-svc (feature `testing`).

use chrono::DateTime;

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
    })
}
