//! Auto-reply rules, shared by the two places that answer a citizen at once:
//! interaction-svc's reply path, which decides every callback, and the gateway, which
//! answers the callbacks a rule answers whatever the citizen's state
//! ([`rules::answer_without_state`]) without asking interaction-svc (issue 13).
//! One crate, so the two cannot classify a callback or match a keyword differently.

pub mod incoming;
pub mod rating;
pub mod rules;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use incoming::{CitizenMessage, Incoming};

/// Text as keywords are compared: full-width ASCII forms (what a Chinese input method
/// types in its full-width mode, `ＥＴＣ`, `１２３４５`) as their ASCII letters and
/// digits, the ideographic space as a space, then lowercase.
pub fn fold(text: &str) -> String {
    let wide = |c: char| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}');
    if !text.chars().any(wide) {
        // The common case, on the edge's hot path: the standard library's lowercase.
        return text.to_lowercase();
    }
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}
pub use rules::{
    MatchKind, NewsItem, ReplyContent, ReplyRule, RuleError, RuleSet, answer_without_state,
    may_be_rating,
};

/// The subject (before namespacing) of interaction-svc's notice that `account`'s
/// reply or routing rules changed. A core NATS notice, not under `interaction.>`:
/// that prefix belongs to the INTERACTION stream.
pub fn changed_subject(account: &str) -> String {
    format!("interaction-svc.rules.changed.{account}")
}

/// The subscription (before namespacing) to every account's change notices.
pub const CHANGED_WILDCARD: &str = "interaction-svc.rules.changed.*";

/// The subject (before namespacing) on which interaction-svc answers a request for
/// `account`'s rules with an encoded `interaction.v1.ReplyRuleSnapshot`.
pub fn snapshot_subject(account: &str) -> String {
    format!("interaction-svc.rules.snapshot.{account}")
}

/// The subscription (before namespacing) interaction-svc answers snapshots on.
pub const SNAPSHOT_WILDCARD: &str = "interaction-svc.rules.snapshot.*";
