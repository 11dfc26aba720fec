//! The decision taken for every callback: what to answer at once (the passive
//! reply), whether a ticket opens, whether it is a rating.
//!
//! The reply path and the inbound consumer both call [`decide`] with the same rules
//! and the same facts, so the citizen's answer and the ticket agree. The rules
//! themselves (matching, validation) live in the `reply-rules` crate, which the
//! gateway shares to answer what no state can change.

use chrono::{DateTime, Utc};

pub use reply_rules::rules::{
    MAX_NEWS_ARTICLES, MAX_PATTERN_CHARS, MAX_PATTERNS, MAX_REPLY_TEXT_BYTES, MatchKind, NewsItem,
    ReplyContent, ReplyRule, RuleError, RuleSet, check_patterns, check_text, may_be_rating,
    parse_id,
};

use super::calendar::CUSTOMER_SERVICE_WINDOW;
use super::directory::{self, Directory, PendingAnswer};
use super::incoming::Incoming;
use super::rating;

/// How long after the rating question a lone digit still rates the ticket. The
/// question is sent inside the citizen's 48-hour window and is answered in it or not
/// at all: a digit days later answers something else (a greeting's "回复1查询…"), and
/// must not put a rating on a months-old ticket.
pub const RATING_ANSWER_WINDOW: chrono::Duration = CUSTOMER_SERVICE_WINDOW;

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
    /// Nobody can read the message (`CitizenMessage::unreadable`): the words asking
    /// the citizen to write instead.
    Unreadable(&'static str),
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
    /// A rule or the directory answered the message fully, so it opens no ticket;
    /// but if the citizen has a ticket still being handled, the message joins it. A
    /// follow-up to a complaint ("你们答复的社保卡补办办法不对", "公积金提取需要购房合同吗")
    /// must reach the department even when a keyword or a service card answers it.
    pub joins_active: bool,
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
        joins_active: false,
        rating: None,
        answered: None,
        asked_again: false,
    };
    // The gateway does not ask about these (gateway README, `not_asked`): a reply
    // decided for one would never reach the citizen.
    if !incoming.may_get_passive_reply() {
        return nothing;
    }
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
            // No rule, service or person can answer a recording nobody can play: no
            // ticket, not even joining one (a media_id in the thread helps no desk).
            if let Some(words) = message.unreadable() {
                return Decision {
                    reply: Reply::Unreadable(words),
                    ..nothing
                };
            }
            // A scan-code button's result is a menu action, like a click: a rule of its
            // key that answers it fully adds nothing to the citizen's active ticket, and
            // it asks no directory answer again.
            let from_menu = message.menu_key.is_some();
            if let Some((rule, matched)) = rules.answer(incoming) {
                return Decision {
                    reply: Reply::Rule(rule.reply.clone()),
                    ticket: !rule.resolves,
                    joins_active: rule.resolves && !from_menu,
                    answered: Some(by_rule(rule, matched)),
                    ..nothing
                };
            }
            let pending = facts.pending.filter(|p| {
                !from_menu && p.event_id != facts.event_id && p.is_followed_by(facts.at)
            });
            let service = facts
                .directory
                .and_then(|d| d.answer(&message.text))
                // The same service again: the card did not help.
                .filter(|m| pending.is_none_or(|p| p.service_id != m.service.id));
            match service {
                Some(found) => Decision {
                    reply: Reply::Directory(directory::service_reply(found.service)),
                    joins_active: true,
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
        Incoming::Subscribe { .. } | Incoming::Scan { .. } => match rules.answer(incoming) {
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
            let Some(category) = directory::category_key(key) else {
                return nothing;
            };
            // A menu button that answers nothing is a broken interaction channel
            // (domain.md §1.3): a category without services still gets an answer.
            let services = facts
                .directory
                .map(|d| d.category(category))
                .unwrap_or_default();
            Decision {
                reply: Reply::Directory(directory::category_reply(&services)),
                // The pointer elsewhere served no service: not the directory's answer.
                answered: (!services.is_empty()).then(|| AutoAnswer::Category {
                    category: category.to_owned(),
                    key: key.clone(),
                }),
                ..nothing
            }
        }
        _ => nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::DirectoryService;
    use reply_rules::testing::{rule, text};

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
                joins_active: false,
                rating: None,
                answered: None,
                asked_again: false,
            }
        );
    }

    #[test]
    fn a_resolving_rule_opens_no_ticket_but_its_message_joins_an_active_one() {
        let rules = RuleSet::new([rule(MatchKind::Contains, &["社保"], 0, 0, "see the menu")]);
        let decision = decide(&rules, &text("你们答复的社保卡补办办法不对"), false);
        assert_eq!(decision.reply, said("see the menu"));
        assert!(!decision.ticket);
        assert!(decision.joins_active);
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
    fn what_the_gateway_does_not_ask_about_is_decided_nothing_whatever_the_rules() {
        let everything = RuleSet::new([
            rule(MatchKind::Regex, &["."], 9, 0, "anything"),
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
        ]);
        let silent = [
            Incoming::Unsubscribe,
            Incoming::Location {
                latitude: 25.77,
                longitude: 113.01,
                precision: None,
            },
            Incoming::OtherInteraction,
            Incoming::Activity,
            Incoming::System,
        ];
        for incoming in &silent {
            assert!(!incoming.may_get_passive_reply(), "{incoming:?}");
            let decision = decide(&everything, incoming, true);
            assert_eq!(decision.reply, Reply::Nothing, "{incoming:?}");
            assert!(!decision.ticket, "{incoming:?}");
        }
    }

    #[test]
    fn a_digit_is_a_rating_only_when_one_was_requested() {
        let rules = RuleSet::new([rule(MatchKind::Exact, &["5"], 9, 0, "menu five")]);
        assert_eq!(
            decide(&rules, &text("５"), true),
            Decision {
                reply: Reply::RatingThanks,
                ticket: false,
                joins_active: false,
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
    fn a_voice_message_nobody_can_hear_asks_for_words_and_opens_no_ticket() {
        let silent = Incoming::Message(reply_rules::CitizenMessage {
            msg_type: "voice".into(),
            text: String::new(),
            body: "[语音] media_id=m".into(),
            location: None,
            menu_key: None,
        });
        assert_eq!(
            decide(&RuleSet::default(), &silent, true),
            Decision {
                reply: Reply::Unreadable(reply_rules::incoming::VOICE_UNREADABLE),
                ticket: false,
                joins_active: false,
                rating: None,
                answered: None,
                asked_again: false,
            }
        );
    }

    #[test]
    fn a_location_or_a_link_is_no_question_and_goes_to_a_person() {
        use reply_rules::testing::{link, location};
        let rules = RuleSet::new([
            rule(MatchKind::Contains, &["社保"], 0, 0, "social security"),
            rule(MatchKind::Exact, &["5"], 9, 0, "menu five"),
        ]);
        let directory = small_directory();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let facts = Facts {
            rating_requested: true,
            ..with_directory(&directory, None, at)
        };
        for incoming in [location("社保大厦"), link("社保卡补办"), location("5")] {
            let decision = super::decide(&rules, &incoming, &facts);
            assert_eq!(decision.reply, Reply::Acknowledgement, "{incoming:?}");
            assert!(decision.ticket && decision.answered.is_none() && decision.rating.is_none());
        }
    }

    #[test]
    fn a_scan_code_button_gets_its_keys_rule_or_a_person_and_a_follower_scan_the_greeting() {
        use reply_rules::testing::scan;
        let rules = RuleSet::new([
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
            rule(MatchKind::MenuClick, &["SCAN_PERMIT"], 0, 0, "permit"),
        ]);
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
        let facts = with_directory(&directory, Some(&pending), at);
        let decide = |incoming: &Incoming| super::decide(&rules, incoming, &facts);

        // A rule of the button's key answers either kind, and opens or joins nothing.
        for waits in [false, true] {
            let decision = decide(&scan("SCAN_PERMIT", waits, "社保卡"));
            assert_eq!(decision.reply, said("permit"), "waits: {waits}");
            assert!(!decision.ticket && !decision.joins_active, "waits: {waits}");
        }
        // Without one, a button that waits for the account's answer reaches a person
        // with the result (no earlier question brought along); a push button's result
        // was shown by WeChat's client.
        let decision = decide(&scan("SCAN_REPORT", true, "LAMP-0423"));
        assert_eq!(decision.reply, Reply::Acknowledgement);
        assert!(decision.ticket && !decision.asked_again);
        let decision = decide(&scan("SCAN_REPORT", false, "LAMP-0423"));
        assert_eq!((decision.reply, decision.ticket), (Reply::Nothing, false));

        let follower = Incoming::Scan {
            scene: "hall_3".into(),
        };
        let decision = decide(&follower);
        assert_eq!(decision.reply, said("welcome"));
        assert!(!decision.ticket);
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
            MatchKind::try_from(proto::interaction::v1::MatchKind::Regex as i32),
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
        // No new ticket, but a follow-up to one still being handled joins it.
        assert!(!decision.ticket && decision.joins_active);
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
        let decision = super::decide(&RuleSet::default(), &unknown, &facts);
        assert_eq!(
            decision.reply,
            Reply::Directory(ReplyContent::Text(directory::NO_SERVICES.into()))
        );
        assert_eq!((decision.answered, decision.ticket), (None, false));
        let other = Incoming::Click { key: "MAP".into() };
        assert_eq!(
            super::decide(&RuleSet::default(), &other, &facts).reply,
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

    #[test]
    fn what_the_gateway_answers_alone_is_what_decide_answers_in_any_state() {
        let rules = RuleSet::new([
            rule(MatchKind::Exact, &["5"], 9, 0, "menu five"),
            rule(MatchKind::Contains, &["社保"], 1, 0, "social security"),
            rule(MatchKind::Regex, &[r"^\d{6}$"], 0, 0, "postcode"),
            rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
            rule(MatchKind::MenuClick, &["HOTLINE"], 0, 0, "12345"),
        ]);
        let incomings = [
            text("社保卡丢了"),
            text("423000"),
            text("5"),
            text("你好"),
            Incoming::Subscribe { scene: None },
            Incoming::Click {
                key: "HOTLINE".into(),
            },
            Incoming::Click {
                key: "category:社保".into(),
            },
        ];
        for incoming in &incomings {
            let Some((rule, _)) = reply_rules::answer_without_state(&rules, incoming) else {
                continue;
            };
            for rating_requested in [false, true] {
                assert_eq!(
                    decide(&rules, incoming, rating_requested).reply,
                    Reply::Rule(rule.reply.clone()),
                    "{incoming:?}, rating requested: {rating_requested}"
                );
            }
        }
        assert!(reply_rules::answer_without_state(&rules, &text("5")).is_none());
    }

    proptest::proptest! {
        /// The same over generated callbacks and every state `decide` reads: the
        /// gateway's copy never answers differently from interaction-svc.
        #[test]
        fn whatever_the_gateway_answers_alone_decide_answers_alike(
            fragments in proptest::collection::vec(
                proptest::sample::select(vec![
                    "5", "５", " ", "12", "etc", "ETC", "社保", "补卡", "你好", "423000",
                    "HOTLINE", "category:housing_fund", "\n",
                ]),
                1..3,
            ),
            shape in 0..9u8,
            rating_requested: bool,
            with_directory: bool,
            pending_service in proptest::option::of(1..4u128),
        ) {
            let rules = RuleSet::new([
                rule(MatchKind::Exact, &["5"], 9, 0, "menu five"),
                rule(MatchKind::Exact, &["etc"], 4, 0, "etc"),
                rule(MatchKind::Contains, &["社保"], 1, 0, "social security"),
                rule(MatchKind::Regex, &[r"^\d{6}$"], 0, 0, "postcode"),
                rule(MatchKind::Subscribe, &[], 0, 0, "welcome"),
                rule(MatchKind::MenuClick, &["HOTLINE", "category:housing_fund"], 0, 0, "12345"),
            ]);
            let said = fragments.concat();
            let incoming = match shape {
                0 | 1 => text(&said),
                2 => Incoming::Click { key: said },
                3 => reply_rules::testing::location(&said),
                4 => reply_rules::testing::link(&said),
                5 => reply_rules::testing::scan(&said, false, &said),
                6 => reply_rules::testing::scan(&said, true, &said),
                7 => Incoming::Scan { scene: said },
                _ => Incoming::Subscribe { scene: None },
            };
            let directory = small_directory();
            let at = Utc::now();
            let pending = pending_service.map(|n| PendingAnswer {
                event_id: "earlier".into(),
                service_id: uuid::Uuid::from_u128(n),
                service_name: "社保卡补办".into(),
                msg_type: "text".into(),
                body: "社保卡".into(),
                answered_at: at,
            });
            let facts = Facts {
                rating_requested,
                directory: with_directory.then_some(&directory),
                pending: pending.as_ref(),
                event_id: "now",
                at,
            };
            if let Some((rule, _)) = reply_rules::answer_without_state(&rules, &incoming) {
                proptest::prop_assert_eq!(
                    super::decide(&rules, &incoming, &facts).reply,
                    Reply::Rule(rule.reply.clone())
                );
            }
        }
    }
}
