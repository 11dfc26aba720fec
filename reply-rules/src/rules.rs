//! Auto-reply rules: what a rule looks like, how it is checked before it is saved,
//! and which rule answers a callback. interaction-svc decides every callback with
//! them (`interaction_svc::domain::rules::decide`); the gateway answers with them the
//! callbacks no state can change ([`answer_without_state`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use proto::events::v1 as ev;
use proto::interaction::v1 as pb;
use regex::Regex;

use crate::incoming::Incoming;
use crate::rating;

/// The most articles a news reply may hold (a passive reply to an event; a rule that
/// answers messages may hold one, WeChat's limit there: `RuleError::NewsForMessage`).
pub const MAX_NEWS_ARTICLES: usize = 8;
/// Regular expressions are compiled with this size limit, so a rule cannot make the
/// reply path slow.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// What triggers a rule (see `interaction.v1.MatchKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The whole message equals a keyword (trimmed, case-insensitive).
    Exact,
    /// The message contains a keyword (case-insensitive).
    Contains,
    /// The message matches the regular expression.
    Regex,
    /// A menu CLICK with this key, or a scan-code menu button (`scancode_push`,
    /// `scancode_waitmsg`) with it.
    MenuClick,
    /// The greeting sent on subscribe, and when a follower scans a parametric QR code.
    Subscribe,
}

impl MatchKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Contains => "contains",
            Self::Regex => "regex",
            Self::MenuClick => "menu_click",
            Self::Subscribe => "subscribe",
        }
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatchKind {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "exact" => Self::Exact,
            "contains" => Self::Contains,
            "regex" => Self::Regex,
            "menu_click" => Self::MenuClick,
            "subscribe" => Self::Subscribe,
            other => return Err(RuleError::UnknownKind(other.to_owned())),
        })
    }
}

impl TryFrom<i32> for MatchKind {
    type Error = RuleError;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match pb::MatchKind::try_from(value) {
            Ok(pb::MatchKind::Exact) => Ok(Self::Exact),
            Ok(pb::MatchKind::Contains) => Ok(Self::Contains),
            Ok(pb::MatchKind::Regex) => Ok(Self::Regex),
            Ok(pb::MatchKind::MenuClick) => Ok(Self::MenuClick),
            Ok(pb::MatchKind::Subscribe) => Ok(Self::Subscribe),
            Ok(pb::MatchKind::Unspecified) | Err(_) => {
                Err(RuleError::UnknownKind(value.to_string()))
            }
        }
    }
}

impl From<MatchKind> for pb::MatchKind {
    fn from(kind: MatchKind) -> Self {
        match kind {
            MatchKind::Exact => Self::Exact,
            MatchKind::Contains => Self::Contains,
            MatchKind::Regex => Self::Regex,
            MatchKind::MenuClick => Self::MenuClick,
            MatchKind::Subscribe => Self::Subscribe,
        }
    }
}

/// Why a rule cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("unknown match kind {0:?}")]
    UnknownKind(String),
    #[error("a {0} rule needs at least one non-blank pattern")]
    NoPattern(MatchKind),
    #[error("a regex rule takes exactly one pattern")]
    OneRegex,
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    #[error("a rule replies with text or with news, exactly one of them")]
    TextOrNews,
    #[error("a news reply holds 1 to {MAX_NEWS_ARTICLES} articles, each with a title and a url")]
    BadNews,
    #[error("account must not be empty")]
    NoAccount,
    #[error("department must not be empty")]
    NoDepartment,
    #[error("rule id {0:?} is not a UUID")]
    BadId(String),
    #[error("{0} must not hold control characters")]
    Control(&'static str),
    #[error("{field} is too long: at most {max} bytes of UTF-8 (WeChat's limit)")]
    TooLong { field: &'static str, max: usize },
    #[error(
        "at most {MAX_PATTERNS} patterns or keywords, each at most {MAX_PATTERN_CHARS} characters"
    )]
    TooManyPatterns,
    #[error("{0} must be an http:// or https:// URL")]
    BadUrl(&'static str),
    #[error("a passive reply holds at most one news article (WeChat's limit)")]
    NewsForMessage,
}

/// A passive reply's text, in UTF-8 bytes (WeChat drops a longer reply, and the
/// citizen gets nothing).
pub const MAX_REPLY_TEXT_BYTES: usize = 2048;
/// Keywords (or patterns) of one rule, and the characters of each.
pub const MAX_PATTERNS: usize = 50;
pub const MAX_PATTERN_CHARS: usize = 64;

/// Refuses control characters (NUL among them: PostgreSQL cannot store it, and
/// WeChat shows garbage); line breaks and tabs are text.
pub fn check_text(field: &'static str, value: &str) -> Result<(), RuleError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(RuleError::Control(field));
    }
    Ok(())
}

/// Checks keywords or patterns: bounded in number and length, plain text.
pub fn check_patterns(field: &'static str, patterns: &[String]) -> Result<(), RuleError> {
    if patterns.len() > MAX_PATTERNS
        || patterns
            .iter()
            .any(|p| p.chars().count() > MAX_PATTERN_CHARS)
    {
        return Err(RuleError::TooManyPatterns);
    }
    patterns.iter().try_for_each(|p| check_text(field, p))
}

fn check_url(field: &'static str, url: &str, required: bool) -> Result<(), RuleError> {
    check_text(field, url)?;
    let url = url.trim();
    if url.is_empty() && !required {
        return Ok(());
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || url.len() > 1024 {
        return Err(RuleError::BadUrl(field));
    }
    Ok(())
}

/// One article of a news reply (stored as JSON in `reply_rules.reply_news`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewsItem {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub pic_url: String,
    pub url: String,
}

/// What a rule answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyContent {
    Text(String),
    News(Vec<NewsItem>),
}

impl ReplyContent {
    /// The reply from a rule's stored (or requested) text and news: exactly one is set.
    pub fn from_parts(text: String, news: Vec<NewsItem>) -> Result<Self, RuleError> {
        match (text.trim().is_empty(), news.is_empty()) {
            (false, true) => Ok(Self::Text(text)),
            (true, false) => {
                let valid = news.len() <= MAX_NEWS_ARTICLES
                    && news
                        .iter()
                        .all(|n| !n.title.trim().is_empty() && !n.url.trim().is_empty());
                if valid {
                    Ok(Self::News(news))
                } else {
                    Err(RuleError::BadNews)
                }
            }
            _ => Err(RuleError::TextOrNews),
        }
    }

    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::News(_) => "news",
        }
    }
}

/// An auto-reply rule. Higher priority wins; among equals, the older rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRule {
    pub id: uuid::Uuid,
    pub account: String,
    pub kind: MatchKind,
    /// Keywords (exact, contains), one pattern (regex) or menu keys (menu_click).
    pub patterns: Vec<String>,
    pub priority: i32,
    pub reply: ReplyContent,
    /// The rule fully answers the citizen: no ticket opens.
    pub resolves: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl ReplyRule {
    /// Checks what a caller asks to save: patterns fit the kind, the regex compiles.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.account.trim().is_empty() {
            return Err(RuleError::NoAccount);
        }
        check_text("account", &self.account)?;
        check_patterns("patterns", &self.patterns)?;
        match &self.reply {
            ReplyContent::Text(text) => {
                check_text("text", text)?;
                if text.len() > MAX_REPLY_TEXT_BYTES {
                    return Err(RuleError::TooLong {
                        field: "text",
                        max: MAX_REPLY_TEXT_BYTES,
                    });
                }
            }
            ReplyContent::News(news) => {
                if news.len() > 1 {
                    return Err(RuleError::NewsForMessage);
                }
                for item in news {
                    check_text("news.title", &item.title)?;
                    check_text("news.description", &item.description)?;
                    if item.title.len() > 256 || item.description.len() > 1024 {
                        return Err(RuleError::TooLong {
                            field: "news",
                            max: 1024,
                        });
                    }
                    check_url("news.url", &item.url, true)?;
                    check_url("news.pic_url", &item.pic_url, false)?;
                }
            }
        }
        let patterns = self
            .patterns
            .iter()
            .filter(|p| !p.trim().is_empty())
            .count();
        match self.kind {
            MatchKind::Subscribe => {}
            MatchKind::Regex => {
                if patterns != 1 || self.patterns.len() != 1 {
                    return Err(RuleError::OneRegex);
                }
                compile(&self.patterns[0])?;
            }
            kind => {
                if patterns == 0 {
                    return Err(RuleError::NoPattern(kind));
                }
            }
        }
        Ok(())
    }
}

impl ReplyRule {
    /// A rule as the API sends it. The id is parsed when present (an update) and
    /// left nil otherwise; `created_at` is set by the store.
    pub fn from_proto(rule: pb::ReplyRule) -> Result<Self, RuleError> {
        let news = rule
            .news
            .into_iter()
            .map(|n| NewsItem {
                title: n.title,
                description: n.description,
                pic_url: n.pic_url,
                url: n.url,
            })
            .collect();
        Ok(Self {
            id: parse_id(&rule.id)?,
            account: rule.account.trim().to_owned(),
            kind: MatchKind::try_from(rule.r#match)?,
            patterns: rule.patterns,
            priority: rule.priority,
            reply: ReplyContent::from_parts(rule.text, news)?,
            resolves: rule.resolves,
            enabled: rule.enabled,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        })
    }

    /// The rule as the API returns it.
    pub fn to_proto(&self) -> pb::ReplyRule {
        let (text, news) = match &self.reply {
            ReplyContent::Text(text) => (text.clone(), Vec::new()),
            ReplyContent::News(news) => (
                String::new(),
                news.iter()
                    .map(|n| pb::NewsItem {
                        title: n.title.clone(),
                        description: n.description.clone(),
                        pic_url: n.pic_url.clone(),
                        url: n.url.clone(),
                    })
                    .collect(),
            ),
        };
        pb::ReplyRule {
            id: self.id.to_string(),
            account: self.account.clone(),
            r#match: pb::MatchKind::from(self.kind) as i32,
            patterns: self.patterns.clone(),
            priority: self.priority,
            text,
            news,
            resolves: self.resolves,
            enabled: self.enabled,
        }
    }
}

/// A rule id from the API; empty means none yet (nil).
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, RuleError> {
    if raw.trim().is_empty() {
        return Ok(uuid::Uuid::nil());
    }
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| RuleError::BadId(raw.to_owned()))
}

fn compile(pattern: &str) -> Result<Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| RuleError::BadRegex(e.to_string()))
}

/// An account's enabled rules in the order they are tried, regexes compiled.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Compiled>,
}

/// A rule ready to match: matching is case-insensitive, so every keyword is lowered
/// once here rather than for every callback.
#[derive(Debug, Clone)]
struct Compiled {
    rule: ReplyRule,
    regex: Option<Regex>,
    /// The keywords (or menu keys), trimmed, blanks left out, each with its
    /// [`fold`](crate::fold)ed form.
    keywords: Vec<(String, String)>,
}

impl Compiled {
    fn new(rule: ReplyRule) -> Option<Self> {
        let regex = match rule.kind {
            MatchKind::Regex => Some(compile(rule.patterns.first()?).ok()?),
            _ => None,
        };
        let keywords = rule
            .patterns
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| (p.to_owned(), crate::fold(p)))
            .collect();
        Some(Self {
            rule,
            regex,
            keywords,
        })
    }

    /// The keyword, pattern or key by which the rule answers `incoming` (empty for the
    /// subscribe greeting), if it does; `lowered` is the message's text
    /// [`fold`](crate::fold)ed.
    fn matches(&self, incoming: &Incoming, lowered: Option<&str>) -> Option<&str> {
        fn keyword(found: Option<&(String, String)>) -> Option<&str> {
            found.map(|(k, _)| k.as_str())
        }
        match (self.rule.kind, incoming) {
            (MatchKind::Subscribe, Incoming::Subscribe { .. } | Incoming::Scan { .. }) => Some(""),
            (MatchKind::MenuClick, _) => {
                let key = incoming.menu_key()?;
                keyword(self.keywords.iter().find(|(k, _)| k == key))
            }
            (MatchKind::Exact, Incoming::Message(_)) => {
                let text = lowered?.trim();
                if text.is_empty() {
                    return None;
                }
                keyword(self.keywords.iter().find(|(_, lower)| lower == text))
            }
            (MatchKind::Contains, Incoming::Message(_)) => {
                let text = lowered?;
                keyword(
                    self.keywords
                        .iter()
                        .find(|(_, lower)| text.contains(lower.as_str())),
                )
            }
            (MatchKind::Regex, Incoming::Message(m)) => (!m.text.is_empty()
                && self.regex.as_ref().is_some_and(|r| r.is_match(&m.text)))
            .then(|| self.rule.patterns[0].as_str()),
            _ => None,
        }
    }
}

impl RuleSet {
    /// Orders the enabled rules: higher priority first, then the older rule, then by
    /// id, so every replica decides the same way. A rule whose regex does not compile
    /// (saved before validation existed) is left out.
    pub fn new(rules: impl IntoIterator<Item = ReplyRule>) -> Self {
        let mut rules: Vec<ReplyRule> = rules.into_iter().collect();
        rules.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Self::in_order(rules)
    }

    /// The enabled rules, tried in the order given.
    fn in_order(rules: impl IntoIterator<Item = ReplyRule>) -> Self {
        let rules = rules
            .into_iter()
            .filter(|rule| rule.enabled)
            .filter_map(Compiled::new)
            .collect();
        Self { rules }
    }

    /// The rules as interaction-svc sends them to the gateways, in the order they are
    /// tried (the snapshot carries no creation times to sort by).
    pub fn to_snapshot(&self, account: &str) -> pb::ReplyRuleSnapshot {
        pb::ReplyRuleSnapshot {
            account: account.to_owned(),
            rules: self.rules.iter().map(|c| c.rule.to_proto()).collect(),
        }
    }

    /// The rules of a snapshot, tried in the order it lists them. A rule that cannot
    /// be read refuses the whole snapshot: a gateway that answered without it could
    /// give a reply that a rule before it would have replaced.
    pub fn from_snapshot(snapshot: pb::ReplyRuleSnapshot) -> Result<Self, RuleError> {
        let rules = snapshot
            .rules
            .into_iter()
            .map(ReplyRule::from_proto)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::in_order(rules))
    }

    /// How many rules are in effect.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is in effect.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that answers `incoming`, and what matched.
    pub fn answer(&self, incoming: &Incoming) -> Option<(&ReplyRule, &str)> {
        // Folded once for every rule: the rules' keywords are folded already.
        let lowered = incoming.message().map(|m| crate::fold(&m.text));
        self.rules
            .iter()
            .find_map(|c| Some((&c.rule, c.matches(incoming, lowered.as_deref())?)))
    }
}

/// Whether a message could be a rating: only then does anyone look for a ticket
/// waiting for one (a database read the common path avoids).
pub fn may_be_rating(incoming: &Incoming) -> Option<u8> {
    incoming.message().and_then(|m| rating::parse(&m.text))
}

/// The rule that answers `incoming` whatever else is known about the citizen, if one
/// does: the gateway answers these callbacks itself. That is a subscribe greeting (on
/// a follow or a follower's QR scan), a menu click (or scan-code button) or a message a
/// rule answers — unless the message is a lone digit, which
/// may rate the citizen's last ticket (only interaction-svc knows). `decide` in
/// interaction-svc tries a rating first and rules next, so for every callback this
/// answers, it gives the same reply.
pub fn answer_without_state<'r>(
    rules: &'r RuleSet,
    incoming: &Incoming,
) -> Option<(&'r ReplyRule, &'r str)> {
    match incoming {
        Incoming::Message(_) if may_be_rating(incoming).is_some() => None,
        Incoming::Message(_)
        | Incoming::Subscribe { .. }
        | Incoming::Scan { .. }
        | Incoming::Click { .. } => rules.answer(incoming),
        _ => None,
    }
}

impl ReplyContent {
    /// The passive reply the gateway renders for this content.
    pub fn to_passive_reply(&self) -> ev::PassiveReply {
        let body = match self {
            Self::Text(content) => ev::passive_reply::Body::Text(ev::TextReply {
                content: content.clone(),
            }),
            Self::News(news) => ev::passive_reply::Body::News(ev::NewsReply {
                articles: news
                    .iter()
                    .map(|n| ev::NewsArticle {
                        title: n.title.clone(),
                        description: n.description.clone(),
                        pic_url: n.pic_url.clone(),
                        url: n.url.clone(),
                    })
                    .collect(),
            }),
        };
        ev::PassiveReply { body: Some(body) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{rule, text};

    fn said<'a>(rules: &'a RuleSet, incoming: &Incoming) -> Option<&'a ReplyContent> {
        answer_without_state(rules, incoming).map(|(rule, _)| &rule.reply)
    }

    #[test]
    fn a_snapshot_keeps_the_order_the_rules_are_tried_in() {
        // Same priority: the older rule first, which a snapshot cannot sort by (it
        // carries no creation times), so it must keep the order it was given.
        let older = rule(MatchKind::Contains, &["社保"], 0, 100, "older");
        let newer = rule(MatchKind::Contains, &["社保"], 0, 1, "newer");
        let urgent = rule(MatchKind::Contains, &["社保卡"], 5, 0, "urgent");
        let mut disabled = rule(MatchKind::Contains, &["社保"], 9, 0, "disabled");
        disabled.enabled = false;
        let rules = RuleSet::new([newer, disabled, older, urgent]);
        let snapshot = rules.to_snapshot("city");
        assert_eq!(snapshot.account, "city");
        assert_eq!(snapshot.rules.len(), 3);
        let copy = RuleSet::from_snapshot(snapshot).unwrap();
        for words in ["社保卡丢了", "社保怎么交", "你好"] {
            assert_eq!(
                copy.answer(&text(words)).map(|(r, m)| (r.id, m)),
                rules.answer(&text(words)).map(|(r, m)| (r.id, m)),
                "{words}"
            );
        }
        assert_eq!(
            said(&copy, &text("社保怎么交")),
            Some(&ReplyContent::Text("older".into()))
        );
    }

    #[test]
    fn a_snapshot_with_an_unreadable_rule_is_refused_whole() {
        let mut snapshot =
            RuleSet::new([rule(MatchKind::Exact, &["ETC"], 0, 0, "etc")]).to_snapshot("city");
        snapshot.rules[0].r#match = 42;
        assert_eq!(
            RuleSet::from_snapshot(snapshot).unwrap_err(),
            RuleError::UnknownKind("42".into())
        );
    }

    #[test]
    fn keywords_match_what_a_full_width_input_method_types() {
        let rules = RuleSet::new([
            rule(MatchKind::Exact, &["ETC"], 9, 0, "etc"),
            rule(MatchKind::Contains, &["12345"], 0, 0, "hotline"),
        ]);
        assert_eq!(
            said(&rules, &text("ＥＴＣ")),
            Some(&ReplyContent::Text("etc".into()))
        );
        assert_eq!(
            said(&rules, &text("热线１２３４５")),
            Some(&ReplyContent::Text("hotline".into()))
        );
        assert_eq!(crate::fold("Ａｂ\u{3000}Ｃ"), "ab c");
    }

    #[test]
    fn a_lone_digit_and_system_callbacks_are_left_to_interaction_svc() {
        let rules = RuleSet::new([
            rule(MatchKind::Exact, &["5"], 9, 0, "menu five"),
            rule(MatchKind::Contains, &["办"], 0, 0, "how to"),
        ]);
        assert_eq!(said(&rules, &text("5")), None, "may rate a ticket");
        assert_eq!(said(&rules, &text("５")), None, "full-width digit");
        assert_eq!(
            said(&rules, &text("怎么办")),
            Some(&ReplyContent::Text("how to".into()))
        );
        assert_eq!(
            said(&rules, &text("你好")),
            None,
            "no rule: the directory or a person"
        );
        assert_eq!(said(&rules, &Incoming::System), None);
        assert_eq!(said(&rules, &Incoming::Unsubscribe), None);
    }

    #[test]
    fn greetings_and_menu_clicks_are_answered_from_the_rules() {
        let rules = RuleSet::new([
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
            rule(MatchKind::MenuClick, &["HOTLINE"], 0, 0, "12345"),
        ]);
        assert_eq!(
            said(&rules, &Incoming::Subscribe { scene: None }),
            Some(&ReplyContent::Text("welcome".into()))
        );
        let click = |key: &str| Incoming::Click { key: key.into() };
        assert_eq!(
            said(&rules, &click("HOTLINE")),
            Some(&ReplyContent::Text("12345".into()))
        );
        assert_eq!(said(&rules, &click("category:社保")), None);
    }

    #[test]
    fn scan_code_buttons_are_answered_by_their_keys_rule_and_a_follower_scan_by_the_greeting() {
        use crate::testing::scan;
        let rules = RuleSet::new([
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
            rule(MatchKind::MenuClick, &["SCAN_PERMIT"], 0, 0, "permit"),
            rule(MatchKind::Contains, &["http"], 0, 0, "a keyword"),
        ]);
        for waits in [false, true] {
            let matched = scan("SCAN_PERMIT", waits, "https://zw.example.cn/p/1");
            assert_eq!(
                said(&rules, &matched),
                Some(&ReplyContent::Text("permit".into())),
                "waits: {waits}"
            );
            let other = scan("SCAN_OTHER", waits, "https://zw.example.cn/p/1");
            assert_eq!(
                said(&rules, &other),
                None,
                "waits: {waits}: no rule's words"
            );
        }
        let follower = Incoming::Scan {
            scene: "hall_3".into(),
        };
        assert_eq!(
            said(&rules, &follower),
            Some(&ReplyContent::Text("welcome".into()))
        );
    }

    #[test]
    fn a_passive_reply_carries_the_rules_text_or_news() {
        let text = ReplyContent::Text("您好".into()).to_passive_reply();
        assert!(matches!(
            text.body,
            Some(ev::passive_reply::Body::Text(ev::TextReply { ref content })) if content == "您好"
        ));
        let news = ReplyContent::News(vec![NewsItem {
            title: "办事指南".into(),
            description: String::new(),
            pic_url: String::new(),
            url: "https://example.gov.cn/guide".into(),
        }])
        .to_passive_reply();
        let Some(ev::passive_reply::Body::News(news)) = news.body else {
            panic!("not news: {news:?}");
        };
        assert_eq!(news.articles.len(), 1);
        assert_eq!(news.articles[0].url, "https://example.gov.cn/guide");
    }
}
