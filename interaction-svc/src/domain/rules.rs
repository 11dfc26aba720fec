//! Auto-reply rules and the decision taken for every callback: what to answer at
//! once (the passive reply), whether a ticket opens, whether it is a rating.
//!
//! The reply path and the inbound consumer both call [`decide`] with the same rules
//! and the same facts, so the citizen's answer and the ticket agree.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use proto::interaction::v1 as pb;
use regex::Regex;

use super::directory::{self, Directory, PendingAnswer};
use super::incoming::Incoming;
use super::rating;

/// The most articles a news reply may hold (a passive reply to an event; the gateway
/// cuts a reply to a user message to WeChat's limit of one).
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
    /// A menu CLICK with this key.
    MenuClick,
    /// The greeting sent on subscribe.
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

    /// The keyword, pattern or key by which the rule answers `incoming` (empty for the
    /// subscribe greeting), if it does.
    fn matches(&self, regex: Option<&Regex>, incoming: &Incoming) -> Option<&str> {
        let mut keywords = self
            .patterns
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty());
        match (self.kind, incoming) {
            (MatchKind::Subscribe, Incoming::Subscribe { .. }) => Some(""),
            (MatchKind::MenuClick, Incoming::Click { key }) => keywords.find(|k| k == key),
            (MatchKind::Exact, Incoming::Message(m)) => {
                let text = m.text.trim().to_lowercase();
                if text.is_empty() {
                    return None;
                }
                keywords.find(|k| k.to_lowercase() == text)
            }
            (MatchKind::Contains, Incoming::Message(m)) => {
                let text = m.text.to_lowercase();
                keywords.find(|k| text.contains(&k.to_lowercase()))
            }
            (MatchKind::Regex, Incoming::Message(m)) => (!m.text.is_empty()
                && regex.is_some_and(|r| r.is_match(&m.text)))
            .then(|| self.patterns[0].as_str()),
            _ => None,
        }
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
    rules: Vec<(ReplyRule, Option<Regex>)>,
}

impl RuleSet {
    /// Orders the enabled rules: higher priority first, then the older rule, then by
    /// id, so every replica decides the same way. A rule whose regex does not compile
    /// (saved before validation existed) is left out.
    pub fn new(rules: impl IntoIterator<Item = ReplyRule>) -> Self {
        let mut rules: Vec<(ReplyRule, Option<Regex>)> = rules
            .into_iter()
            .filter(|rule| rule.enabled)
            .filter_map(|rule| match rule.kind {
                MatchKind::Regex => {
                    let regex = compile(rule.patterns.first()?).ok()?;
                    Some((rule, Some(regex)))
                }
                _ => Some((rule, None)),
            })
            .collect();
        rules.sort_by(|(a, _), (b, _)| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Self { rules }
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
        self.rules
            .iter()
            .find_map(|(rule, regex)| Some((rule, rule.matches(regex.as_ref(), incoming)?)))
    }
}

/// The immediate answer to a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// No passive reply (`success`).
    Nothing,
    /// A rule's reply.
    Rule(ReplyContent),
    /// A directory service's card, or a category's listing.
    Directory(ReplyContent),
    /// Thanks for a rating.
    RatingThanks,
    /// "Received; {department} will answer by {deadline}" (see `default_reply`).
    Acknowledgement,
}

/// What answered a callback without a person (announced as `events.v1.AutoReplied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoAnswer {
    /// A reply rule; `matched` is its keyword, pattern or click key (empty for the
    /// subscribe greeting).
    Rule {
        rule_id: uuid::Uuid,
        matched: String,
    },
    /// One directory service answered the citizen's question.
    Service {
        service_id: uuid::Uuid,
        name: String,
        category: String,
        /// The service's term that matched best.
        matched: String,
    },
    /// A menu click on `category:{key}` listed the category's services.
    Category { category: String, key: String },
}

/// What to do with a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reply: Reply,
    /// The message opens a ticket or joins the citizen's active one.
    pub ticket: bool,
    /// The message is the rating of the citizen's last closed ticket.
    pub rating: Option<u8>,
    /// What answered without a person, if anything did.
    pub answered: Option<AutoAnswer>,
    /// The message follows a directory answer closely (`directory::FOLLOW_UP_WINDOW`)
    /// without being a new question the directory answers: the citizen asks again or
    /// rejects the answer, so the ticket it opens carries the earlier question.
    pub asked_again: bool,
}

/// The facts besides the rules that a decision rests on; the reply path and the
/// consumer gather the same ones, so they decide alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The citizen's most recent ticket is closed and waits for their rating.
    pub rating_requested: bool,
    /// The account's directory.
    pub directory: Option<&'a Directory>,
    /// The last question the directory answered for this citizen.
    pub pending: Option<&'a PendingAnswer>,
    /// The callback's event id. The gateway asks for the passive reply while the
    /// callback is already on its way to the consumer, so under load the reply path
    /// can find the directory answer recorded for this very callback: that is not an
    /// earlier answer, and the citizen is not asking again.
    pub event_id: &'a str,
    /// When the callback happened (WeChat's CreateTime), never the clock: a
    /// redelivery decides the same.
    pub at: DateTime<Utc>,
}

/// Decides the reply and the effect of `incoming`. Rules come first, then the
/// directory, then a person (a ticket).
pub fn decide(rules: &RuleSet, incoming: &Incoming, facts: &Facts<'_>) -> Decision {
    let nothing = Decision {
        reply: Reply::Nothing,
        ticket: false,
        rating: None,
        answered: None,
        asked_again: false,
    };
    let by_rule = |rule: &ReplyRule, matched: &str| AutoAnswer::Rule {
        rule_id: rule.id,
        matched: matched.to_owned(),
    };
    match incoming {
        Incoming::Message(message) => {
            if facts.rating_requested
                && let Some(value) = rating::parse(&message.text)
            {
                return Decision {
                    reply: Reply::RatingThanks,
                    rating: Some(value),
                    ..nothing
                };
            }
            if let Some((rule, matched)) = rules.answer(incoming) {
                return Decision {
                    reply: Reply::Rule(rule.reply.clone()),
                    ticket: !rule.resolves,
                    answered: Some(by_rule(rule, matched)),
                    ..nothing
                };
            }
            let pending = facts
                .pending
                .filter(|p| p.event_id != facts.event_id && p.is_followed_by(facts.at));
            let service = facts
                .directory
                .and_then(|d| d.answer(&message.text))
                // The same service again: the card did not help.
                .filter(|m| pending.is_none_or(|p| p.service_id != m.service.id));
            match service {
                Some(found) => Decision {
                    reply: Reply::Directory(directory::service_reply(found.service)),
                    answered: Some(AutoAnswer::Service {
                        service_id: found.service.id,
                        name: found.service.name.clone(),
                        category: found.service.category.clone(),
                        matched: found.matched.to_owned(),
                    }),
                    ..nothing
                },
                None => Decision {
                    reply: Reply::Acknowledgement,
                    ticket: true,
                    asked_again: pending.is_some(),
                    ..nothing
                },
            }
        }
        Incoming::Subscribe { .. } => match rules.answer(incoming) {
            Some((rule, matched)) => Decision {
                reply: Reply::Rule(rule.reply.clone()),
                answered: Some(by_rule(rule, matched)),
                ..nothing
            },
            None => nothing,
        },
        Incoming::Click { key } => {
            if let Some((rule, matched)) = rules.answer(incoming) {
                return Decision {
                    reply: Reply::Rule(rule.reply.clone()),
                    answered: Some(by_rule(rule, matched)),
                    ..nothing
                };
            }
            let listing = directory::category_key(key).and_then(|category| {
                let services = facts.directory?.category(category);
                Some((category, directory::category_reply(&services)?))
            });
            match listing {
                Some((category, reply)) => Decision {
                    reply: Reply::Directory(reply),
                    answered: Some(AutoAnswer::Category {
                        category: category.to_owned(),
                        key: key.clone(),
                    }),
                    ..nothing
                },
                None => nothing,
            }
        }
        _ => nothing,
    }
}

/// Whether a message could be a rating: only then does anyone look for a ticket
/// waiting for one (a database read the common path avoids).
pub fn may_be_rating(incoming: &Incoming) -> Option<u8> {
    incoming.message().and_then(|m| rating::parse(&m.text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::DirectoryService;
    use crate::domain::incoming::CitizenMessage;

    fn rule(kind: MatchKind, patterns: &[&str], priority: i32, age: i64, text: &str) -> ReplyRule {
        ReplyRule {
            id: uuid::Uuid::new_v4(),
            account: "city".into(),
            kind,
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            priority,
            reply: ReplyContent::Text(text.into()),
            resolves: true,
            enabled: true,
            created_at: DateTime::from_timestamp(1_700_000_000 - age, 0).unwrap(),
        }
    }

    fn text(words: &str) -> Incoming {
        Incoming::Message(CitizenMessage {
            msg_type: "text".into(),
            text: words.into(),
            body: words.into(),
            location: None,
        })
    }

    fn decide(rules: &RuleSet, incoming: &Incoming, rating_requested: bool) -> Decision {
        super::decide(
            rules,
            incoming,
            &Facts {
                rating_requested,
                ..Facts::default()
            },
        )
    }

    fn reply_of(rules: &RuleSet, incoming: &Incoming) -> Reply {
        decide(rules, incoming, false).reply
    }

    fn said(words: &str) -> Reply {
        Reply::Rule(ReplyContent::Text(words.into()))
    }

    #[test]
    fn higher_priority_wins_across_kinds_and_ties_go_to_the_older_rule() {
        let rules = RuleSet::new([
            rule(MatchKind::Contains, &["社保"], 1, 0, "contains-newer"),
            rule(MatchKind::Contains, &["社保"], 1, 100, "contains-older"),
            rule(MatchKind::Exact, &["社保查询"], 5, 0, "exact"),
            rule(MatchKind::Regex, &[r"^\d{18}$"], 3, 0, "id-number"),
        ]);
        assert_eq!(reply_of(&rules, &text(" 社保查询 ")), said("exact"));
        assert_eq!(
            reply_of(&rules, &text("社保怎么交")),
            said("contains-older")
        );
        assert_eq!(
            reply_of(&rules, &text("430102199001011234")),
            said("id-number")
        );
    }

    #[test]
    fn exact_and_contains_ignore_case_and_exact_needs_the_whole_message() {
        let rules = RuleSet::new([rule(MatchKind::Exact, &["ETC"], 0, 0, "etc")]);
        assert_eq!(reply_of(&rules, &text("etc")), said("etc"));
        assert_eq!(
            decide(&rules, &text("etc办理"), false),
            Decision {
                reply: Reply::Acknowledgement,
                ticket: true,
                rating: None,
                answered: None,
                asked_again: false,
            }
        );
    }

    #[test]
    fn a_rule_that_does_not_resolve_still_opens_a_ticket() {
        let mut partial = rule(MatchKind::Contains, &["投诉"], 0, 0, "we hear you");
        partial.resolves = false;
        let decision = decide(&RuleSet::new([partial]), &text("我要投诉"), false);
        assert_eq!(decision.reply, said("we hear you"));
        assert!(decision.ticket);
    }

    #[test]
    fn subscribe_and_menu_clicks_answer_without_tickets() {
        let rules = RuleSet::new([
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
            rule(MatchKind::MenuClick, &["HOTLINE", "CALL"], 0, 0, "12345"),
        ]);
        let subscribe = decide(&rules, &Incoming::Subscribe { scene: None }, false);
        assert_eq!(subscribe.reply, said("welcome"));
        assert!(!subscribe.ticket);
        let click = Incoming::Click { key: "CALL".into() };
        assert_eq!(reply_of(&rules, &click), said("12345"));
        let other = Incoming::Click { key: "MAP".into() };
        assert_eq!(reply_of(&rules, &other), Reply::Nothing);
        assert_eq!(
            reply_of(&RuleSet::default(), &Incoming::Unsubscribe),
            Reply::Nothing
        );
    }

    #[test]
    fn a_digit_is_a_rating_only_when_one_was_requested() {
        let rules = RuleSet::new([rule(MatchKind::Exact, &["5"], 9, 0, "menu five")]);
        assert_eq!(
            decide(&rules, &text("５"), true),
            Decision {
                reply: Reply::RatingThanks,
                ticket: false,
                rating: Some(5),
                answered: None,
                asked_again: false,
            }
        );
        assert_eq!(reply_of(&rules, &text("5")), said("menu five"));
        assert_eq!(
            decide(&RuleSet::default(), &text("5"), false).reply,
            Reply::Acknowledgement
        );
        assert_eq!(may_be_rating(&text("3")), Some(3));
    }

    #[test]
    fn disabled_rules_and_broken_regexes_are_left_out() {
        let mut disabled = rule(MatchKind::Contains, &["a"], 0, 0, "off");
        disabled.enabled = false;
        let broken = rule(MatchKind::Regex, &["("], 0, 0, "broken");
        assert!(RuleSet::new([disabled, broken]).is_empty());
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        assert_eq!(
            rule(MatchKind::Regex, &["("], 0, 0, "x")
                .validate()
                .map_err(|e| matches!(e, RuleError::BadRegex(_))),
            Err(true)
        );
        assert_eq!(
            rule(MatchKind::Exact, &[" "], 0, 0, "x").validate(),
            Err(RuleError::NoPattern(MatchKind::Exact))
        );
        assert_eq!(
            rule(MatchKind::Subscribe, &[], 0, 0, "x").validate(),
            Ok(())
        );
        assert_eq!(
            ReplyContent::from_parts(
                "hi".into(),
                vec![NewsItem {
                    title: "t".into(),
                    description: String::new(),
                    pic_url: String::new(),
                    url: "https://x".into()
                }]
            ),
            Err(RuleError::TextOrNews)
        );
        assert_eq!(
            ReplyContent::from_parts(String::new(), vec![]),
            Err(RuleError::TextOrNews)
        );
        assert_eq!("menu_click".parse(), Ok(MatchKind::MenuClick));
        assert_eq!(
            MatchKind::try_from(pb::MatchKind::Regex as i32),
            Ok(MatchKind::Regex)
        );
        assert!(MatchKind::try_from(0).is_err());
    }

    fn service(n: u128, category: &str, name: &str, keywords: &[&str]) -> DirectoryService {
        DirectoryService {
            id: uuid::Uuid::from_u128(n),
            category: category.into(),
            name: name.into(),
            description: format!("{name}的说明"),
            url: format!("https://example.gov.cn/{n}"),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            synonyms: vec![],
        }
    }

    fn small_directory() -> Directory {
        Directory::new(vec![
            service(1, "housing_fund", "公积金提取", &["提取公积金"]),
            service(2, "housing_fund", "公积金贷款", &["房贷"]),
            service(3, "social_security", "社保卡补办", &["社保卡", "补卡"]),
        ])
    }

    fn with_directory<'a>(
        directory: &'a Directory,
        pending: Option<&'a PendingAnswer>,
        at: DateTime<Utc>,
    ) -> Facts<'a> {
        Facts {
            rating_requested: false,
            directory: Some(directory),
            pending,
            at,
            event_id: "now",
        }
    }

    #[test]
    fn the_directory_answers_a_question_without_a_ticket_and_rules_keep_priority() {
        let directory = small_directory();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let facts = with_directory(&directory, None, at);
        let decision = super::decide(&RuleSet::default(), &text("公积金怎么提取"), &facts);
        assert!(!decision.ticket);
        let Reply::Directory(ReplyContent::News(cards)) = &decision.reply else {
            panic!("a card: {decision:?}")
        };
        assert_eq!(cards[0].title, "公积金提取");
        assert!(matches!(
            decision.answered,
            Some(AutoAnswer::Service { service_id, ref category, .. })
                if service_id == uuid::Uuid::from_u128(1) && category == "housing_fund"
        ));
        let rule = rule(MatchKind::Contains, &["公积金"], 0, 0, "rule first");
        let rule_id = rule.id;
        let rules = RuleSet::new([rule]);
        let decision = super::decide(&rules, &text("公积金怎么提取"), &facts);
        assert_eq!(decision.reply, said("rule first"));
        assert_eq!(
            decision.answered,
            Some(AutoAnswer::Rule {
                rule_id,
                matched: "公积金".into()
            })
        );
        // A complaint naming the service is for a person.
        let decision = super::decide(
            &RuleSet::default(),
            &text("我要投诉公积金中心态度差"),
            &facts,
        );
        assert_eq!(decision.reply, Reply::Acknowledgement);
        assert!(decision.ticket && decision.answered.is_none() && !decision.asked_again);
    }

    #[test]
    fn asking_again_or_rejecting_the_answer_opens_a_ticket_with_context() {
        let directory = small_directory();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let pending = PendingAnswer {
            event_id: "first".into(),
            service_id: uuid::Uuid::from_u128(1),
            service_name: "公积金提取".into(),
            msg_type: "text".into(),
            body: "公积金怎么提取".into(),
            answered_at: at,
        };
        let soon = with_directory(
            &directory,
            Some(&pending),
            at + chrono::Duration::minutes(5),
        );
        for again in ["公积金提取到底怎么弄", "没用", "我还是不明白", "人工"] {
            let decision = super::decide(&RuleSet::default(), &text(again), &soon);
            assert!(decision.ticket && decision.asked_again, "{again}");
            assert_eq!(decision.reply, Reply::Acknowledgement);
        }
        // The answer recorded for this very callback (the consumer was faster than
        // the reply path) is no earlier answer.
        let own = Facts {
            event_id: "first",
            at,
            ..soon
        };
        let decision = super::decide(&RuleSet::default(), &text("公积金怎么提取"), &own);
        assert!(!decision.ticket && matches!(decision.reply, Reply::Directory(_)));
        // A new question the directory answers is answered.
        let decision = super::decide(&RuleSet::default(), &text("社保卡丢了怎么补办"), &soon);
        assert!(!decision.ticket && matches!(decision.reply, Reply::Directory(_)));
        // Later, the same question is a new one.
        let later = with_directory(&directory, Some(&pending), at + chrono::Duration::hours(2));
        let decision = super::decide(&RuleSet::default(), &text("公积金怎么提取"), &later);
        assert!(!decision.ticket && !decision.asked_again);
        let decision = super::decide(&RuleSet::default(), &text("路灯坏了"), &later);
        assert!(decision.ticket && !decision.asked_again);
        // A rating is no asking again.
        let rating = Facts {
            rating_requested: true,
            ..soon
        };
        let decision = super::decide(&RuleSet::default(), &text("5"), &rating);
        assert_eq!((decision.rating, decision.ticket), (Some(5), false));
    }

    #[test]
    fn a_category_click_lists_the_category_unless_a_rule_claims_the_key() {
        let directory = small_directory();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let facts = with_directory(&directory, None, at);
        let click = Incoming::Click {
            key: "category:housing_fund".into(),
        };
        let decision = super::decide(&RuleSet::default(), &click, &facts);
        let Reply::Directory(ReplyContent::News(cards)) = &decision.reply else {
            panic!("cards: {decision:?}")
        };
        let titles: Vec<&str> = cards.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["公积金提取", "公积金贷款"]);
        assert_eq!(
            decision.answered,
            Some(AutoAnswer::Category {
                category: "housing_fund".into(),
                key: "category:housing_fund".into()
            })
        );
        assert!(!decision.ticket);
        let unknown = Incoming::Click {
            key: "category:weather".into(),
        };
        assert_eq!(
            super::decide(&RuleSet::default(), &unknown, &facts).reply,
            Reply::Nothing
        );
        let rules = RuleSet::new([rule(
            MatchKind::MenuClick,
            &["category:housing_fund"],
            0,
            0,
            "rule",
        )]);
        assert_eq!(super::decide(&rules, &click, &facts).reply, said("rule"));
    }
}
