//! The convenience-service directory as interaction-svc answers from it: an account's
//! services (replicated from content-svc's `CONTENT` events), the matcher that finds
//! the one service a citizen's question is about, and a category's listing for a
//! menu click on `category:{key}`.
//!
//! Chinese has no spaces, and citizens split a service's name with their own words
//! ("公积金**怎么**提取" for 公积金提取), so the matcher does not look for whole terms:
//! an Aho-Corasick automaton over the character bigrams of every name, keyword and
//! synonym finds which of a term's bigrams the message holds. A service scores the
//! mean of two fractions:
//! - *term*: the best share of one of its terms' bigrams found in the message (the
//!   citizen named it);
//! - *explained*: the share of the message's bigrams that belong to the service's
//!   terms (the message is about it and little else).
//!
//! Filler words (怎么, 如何, 请问, 办理, …) are removed from both sides first, so they
//! neither dilute nor join a match. The best service answers when it scores at least
//! [`THRESHOLD`] and beats the runner-up by [`MARGIN`] (otherwise the question is
//! ambiguous, e.g. "公积金" alone, and a person answers it). Complaints and grievances
//! ("投诉", "态度差", "还没") and rejections ("没用", "人工") never get a service: they
//! are for a person.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::AhoCorasick;
use chrono::{DateTime, Duration, Utc};

use super::rules::{MAX_NEWS_ARTICLES, MAX_REPLY_TEXT_BYTES, NewsItem, ReplyContent};

/// The least score that answers a question.
pub const THRESHOLD: f32 = 0.6;
/// How far the best service must be ahead of the next one.
pub const MARGIN: f32 = 0.1;
/// A message within this time after a directory answer asks again: it opens a ticket.
pub const FOLLOW_UP_WINDOW: Duration = Duration::minutes(30);
/// The prefix of a menu CLICK key naming a category (`category:social_security`),
/// as content-svc's menus built from the directory send it.
pub const CATEGORY_KEY_PREFIX: &str = "category:";

/// The answer to a click on a category with no services: where else the citizen
/// gets the service (the menu's online hall, the 12345 hotline), as the listing's
/// own overflow line points to the hall.
pub const NO_SERVICES: &str =
    "该类办事服务正在整理中，请查看菜单中的办事大厅，或拨打12345政务服务便民热线咨询。";

/// Words that carry no subject, removed before matching (longest first).
const FILLERS: &[&str] = &[
    "怎么办理",
    "如何办理",
    "怎么样",
    "怎么办",
    "在哪里",
    "能不能",
    "可不可以",
    "问一下",
    "请问",
    "你好",
    "您好",
    "怎么",
    "如何",
    "怎样",
    "我想",
    "我要",
    "想要",
    "需要",
    "可以",
    "哪里",
    "在哪",
    "什么",
    "一下",
    "咨询",
    "办理",
    "谢谢",
    "麻烦",
    "吗",
    "呢",
    "啊",
    "吧",
    "呀",
    "了",
    "的",
];

/// A complaint or grievance: a person must hear it, whatever service it names.
const COMPLAINT_WORDS: &[&str] = &[
    "投诉",
    "举报",
    "态度",
    "不满",
    "差评",
    "曝光",
    "刁难",
    "推诿",
    "踢皮球",
    "推来推去",
    "乱收费",
    "不作为",
    "太差",
    "很差",
    "太慢",
    "还没",
    "还不",
    "一直没",
    "迟迟",
    "至今",
    "多次",
    "为什么",
];

/// The citizen refuses the directory's answer or asks for a person.
const REJECTION_WORDS: &[&str] = &[
    "没用",
    "没有用",
    "不是这个",
    "不是我要",
    "不对",
    "答非所问",
    "看不懂",
    "没解决",
    "不能解决",
    "人工",
    "客服",
    "真人",
];

/// One service as the directory shows it on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryService {
    pub id: uuid::Uuid,
    /// The category's key, e.g. `social_security`.
    pub category: String,
    pub name: String,
    pub description: String,
    /// An http(s) page; empty for a service reached only through a mini-program.
    pub url: String,
    pub keywords: Vec<String>,
    pub synonyms: Vec<String>,
}

/// The service a question is about, with the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMatch<'a> {
    pub service: &'a DirectoryService,
    pub score: f32,
    /// The term (name, keyword or synonym) that matched best.
    pub matched: &'a str,
}

/// An account's enabled services, ready to match.
#[derive(Debug, Default)]
pub struct Directory {
    services: Vec<DirectoryService>,
    /// Each service's terms as they were given, and their bigram ids.
    terms: Vec<Vec<(String, Vec<u32>)>>,
    /// Which services hold a bigram.
    holders: Vec<Vec<u32>>,
    automaton: Option<AhoCorasick>,
    /// Category key → service indexes, in name order.
    categories: BTreeMap<String, Vec<usize>>,
}

impl Directory {
    /// The directory over `services` (the disabled ones are left to the caller to
    /// omit). Services are ordered by category, name and id, so every replica builds
    /// the same directory and decides alike.
    pub fn new(mut services: Vec<DirectoryService>) -> Self {
        // Built here (start-up, a rebuild), not on a citizen's first message.
        platform::text::build_simplified_table();
        services.sort_by(|a, b| {
            (a.category.as_str(), a.name.as_str(), a.id).cmp(&(
                b.category.as_str(),
                b.name.as_str(),
                b.id,
            ))
        });
        let mut ids: HashMap<[char; 2], u32> = HashMap::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut holders: Vec<Vec<u32>> = Vec::new();
        let mut terms = Vec::with_capacity(services.len());
        let mut categories: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, service) in services.iter().enumerate() {
            categories
                .entry(service.category.clone())
                .or_default()
                .push(index);
            let mut own_terms = Vec::new();
            let mut all: Vec<u32> = Vec::new();
            let raw_terms = std::iter::once(&service.name)
                .chain(&service.keywords)
                .chain(&service.synonyms);
            for term in raw_terms {
                let mut grams: Vec<u32> = bigrams(&normalize(term))
                    .into_iter()
                    .map(|pair| {
                        *ids.entry(pair).or_insert_with(|| {
                            patterns.push(pair.iter().collect());
                            holders.push(Vec::new());
                            u32::try_from(patterns.len() - 1).unwrap_or(u32::MAX)
                        })
                    })
                    .collect();
                grams.sort_unstable();
                grams.dedup();
                if grams.is_empty() {
                    continue;
                }
                all.extend_from_slice(&grams);
                own_terms.push((term.clone(), grams));
            }
            all.sort_unstable();
            all.dedup();
            let service_index = u32::try_from(index).unwrap_or(u32::MAX);
            for gram in &all {
                holders[*gram as usize].push(service_index);
            }
            terms.push(own_terms);
        }
        // Every pattern is two characters, so overlapping search finds each occurrence.
        let automaton = (!patterns.is_empty())
            .then(|| AhoCorasick::new(&patterns).ok())
            .flatten();
        Self {
            services,
            terms,
            holders,
            automaton,
            categories,
        }
    }

    /// How many services it holds.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Every service a message's words point at, best first (ties: directory order).
    pub fn rank(&self, text: &str) -> Vec<ServiceMatch<'_>> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let normalized = normalize(text);
        let message_grams = {
            let mut grams = bigrams(&normalized);
            grams.sort_unstable();
            grams.dedup();
            grams.len()
        };
        if message_grams == 0 {
            return Vec::new();
        }
        let mut found: Vec<u32> = automaton
            .find_overlapping_iter(&normalized)
            .map(|m| m.pattern().as_u32())
            .collect();
        found.sort_unstable();
        found.dedup();
        let mut hits: BTreeMap<u32, u32> = BTreeMap::new();
        for gram in &found {
            for service in &self.holders[*gram as usize] {
                *hits.entry(*service).or_default() += 1;
            }
        }
        let mut ranked: Vec<ServiceMatch<'_>> = hits
            .into_iter()
            .map(|(index, explained)| {
                let index = index as usize;
                let (term, share) = self.terms[index]
                    .iter()
                    .map(|(term, grams)| {
                        let present = grams
                            .iter()
                            .filter(|g| found.binary_search(g).is_ok())
                            .count();
                        (term.as_str(), present as f32 / grams.len() as f32)
                    })
                    .fold(
                        ("", 0.0_f32),
                        |best, next| {
                            if next.1 > best.1 { next } else { best }
                        },
                    );
                let explained = explained as f32 / message_grams as f32;
                ServiceMatch {
                    service: &self.services[index],
                    score: (share + explained) / 2.0,
                    matched: term,
                }
            })
            .collect();
        // Stable: equal scores keep the directory's order.
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked
    }

    /// The one service that answers `text`, if the match is good and unambiguous and
    /// the message is neither a complaint nor a rejection.
    pub fn answer(&self, text: &str) -> Option<ServiceMatch<'_>> {
        if is_complaint(text) || is_rejection(text) {
            return None;
        }
        let ranked = self.rank(text);
        let mut ranked = ranked.into_iter();
        let best = ranked.next()?;
        let runner_up = ranked.next().map_or(0.0, |m| m.score);
        (best.score >= THRESHOLD && best.score - runner_up >= MARGIN).then_some(best)
    }

    /// The services of category `key`, in name order.
    pub fn category(&self, key: &str) -> Vec<&DirectoryService> {
        self.categories
            .get(key)
            .map(|indexes| indexes.iter().map(|i| &self.services[*i]).collect())
            .unwrap_or_default()
    }
}

/// The category a menu click key names (`category:{key}`), if it names one.
pub fn category_key(click_key: &str) -> Option<&str> {
    click_key
        .strip_prefix(CATEGORY_KEY_PREFIX)
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// Whether the message complains or reports a grievance.
pub fn is_complaint(text: &str) -> bool {
    let text = fold(text);
    COMPLAINT_WORDS.iter().any(|w| text.contains(w))
}

/// Whether the message rejects an answer or asks for a person.
pub fn is_rejection(text: &str) -> bool {
    let text = fold(text);
    REJECTION_WORDS.iter().any(|w| text.contains(w))
}

/// The passive reply for one service: a news card when it has a page, else text.
pub fn service_reply(service: &DirectoryService) -> ReplyContent {
    if service.url.trim().is_empty() {
        return ReplyContent::Text(clip(
            &format!("{}\n{}", service.name, service.description),
            MAX_REPLY_TEXT_BYTES,
        ));
    }
    ReplyContent::News(vec![card(service)])
}

/// The passive reply for a category click: news cards (an event's reply holds up to
/// eight) when every service has a page and they fit, else a text listing with links,
/// cut to WeChat's 2,048 bytes. An unknown or empty category (its services not
/// yet replicated, or all withdrawn) gets [`NO_SERVICES`]: the citizen tapped a menu
/// button and must not be left without an answer.
pub fn category_reply(services: &[&DirectoryService]) -> ReplyContent {
    if services.is_empty() {
        return ReplyContent::Text(NO_SERVICES.to_owned());
    }
    if services.len() <= MAX_NEWS_ARTICLES && services.iter().all(|s| !s.url.trim().is_empty()) {
        return ReplyContent::News(services.iter().map(|s| card(s)).collect());
    }
    const MORE: &str = "\n……更多服务请查看菜单中的办事大厅";
    let mut text = String::from("相关办事服务：");
    for (n, service) in services.iter().enumerate() {
        let line = if service.url.trim().is_empty() {
            format!("\n{}. {}", n + 1, service.name)
        } else {
            format!(
                "\n{}. <a href=\"{}\">{}</a>",
                n + 1,
                escape_attr(&service.url),
                service.name
            )
        };
        if text.len() + line.len() + MORE.len() > MAX_REPLY_TEXT_BYTES {
            text.push_str(MORE);
            break;
        }
        text.push_str(&line);
    }
    ReplyContent::Text(text)
}

fn card(service: &DirectoryService) -> NewsItem {
    NewsItem {
        title: clip(&service.name, 256),
        description: clip(&service.description, 1024),
        pic_url: String::new(),
        url: service.url.clone(),
    }
}

fn escape_attr(url: &str) -> String {
    url.replace('&', "&amp;").replace('"', "&quot;")
}

/// `text` cut to at most `max` bytes at a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// `text` as matched: width and case folded (`reply_rules::fold`, as the rules
/// are), traditional characters made simplified.
fn fold(text: &str) -> String {
    let text = reply_rules::fold(text);
    if text.is_ascii() {
        return text;
    }
    text.chars().map(platform::text::simplified).collect()
}

/// What both the terms and the message are matched as: letters, digits and CJK
/// only, fillers removed.
fn normalize(text: &str) -> String {
    let mut text: String = fold(text).chars().filter(|c| c.is_alphanumeric()).collect();
    for filler in FILLERS {
        if text.contains(filler) {
            text = text.replace(filler, "");
        }
    }
    text
}

fn bigrams(text: &str) -> Vec<[char; 2]> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(2).map(|w| [w[0], w[1]]).collect()
}

/// The last question the directory answered for a citizen, kept to recognise their
/// asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAnswer {
    /// The callback the directory answered.
    pub event_id: String,
    pub service_id: uuid::Uuid,
    pub service_name: String,
    pub msg_type: String,
    /// The citizen's question, as the ticket's thread would show it.
    pub body: String,
    pub answered_at: DateTime<Utc>,
}

impl PendingAnswer {
    /// Whether a message at `at` follows this answer closely enough to be asking again.
    pub fn is_followed_by(&self, at: DateTime<Utc>) -> bool {
        at >= self.answered_at && at - self.answered_at <= FOLLOW_UP_WINDOW
    }
}

/// The words a ticket is routed on: a citizen asking again is routed on their first
/// question too ("没用" alone names no department). The reply path's acknowledgement
/// and the consumer's ticket use this alike.
pub fn ticket_words<'a>(
    text: &'a str,
    asked_again: Option<&PendingAnswer>,
) -> std::borrow::Cow<'a, str> {
    match asked_again {
        Some(first) => format!("{} {text}", first.body).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// content-svc's seed for 临城市, the fixture of these tests.
    const SEED: &str = include_str!("../../../content-svc/seed/lincheng-directory.tsv");

    fn seed() -> Directory {
        let services = SEED
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .enumerate()
            .map(|(n, line)| {
                let f: Vec<&str> = line.split('\t').collect();
                let list = |s: &str| {
                    s.split('|')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                DirectoryService {
                    id: uuid::Uuid::from_u128(n as u128 + 1),
                    category: f[1].into(),
                    name: f[2].into(),
                    description: f[4].into(),
                    url: f[6].into(),
                    keywords: list(f[10]),
                    synonyms: list(f[11]),
                }
            })
            .collect();
        Directory::new(services)
    }

    fn answered(directory: &Directory, text: &str) -> Option<String> {
        directory.answer(text).map(|m| m.service.name.clone())
    }

    #[test]
    fn citizens_questions_find_their_service() {
        let d = seed();
        let cases = [
            ("社保卡丢了怎么补办", "社保卡补办"),
            ("公积金怎么提取", "公积金提取"),
            ("怎么提取公积金", "公积金提取"),
            ("请问住房公积金提取需要什么材料？", "公积金提取"),
            ("公积金贷款怎么申请", "公积金贷款"),
            ("医保怎么报销", "医保报销"),
            ("医疗保险报销", "医保报销"),
            ("异地就医怎么备案", "医保异地就医备案"),
            ("社保卡补办需要什么材料", "社保卡补办"),
            ("身份证丢了怎么办", "居民身份证办理"),
            ("孩子上小学怎么报名", "中小学入学报名"),
            ("退休了养老金怎么领", "养老保险待遇领取"),
            ("明天天气怎么样", "天气预报"),
            ("查一下违章", "交通违法查询与处理"),
            ("驾照到期了怎么换", "驾驶证换证"),
            ("办护照", "出入境证件办理"),
            ("个税怎么退税", "个人所得税汇算"),
            ("ＥＴＣ", ""),
        ];
        for (question, expected) in cases {
            let got = answered(&d, question).unwrap_or_default();
            assert_eq!(got, expected, "{question}: {:?}", d.rank(question).first());
        }
    }

    #[test]
    fn complaints_rejections_and_other_matters_are_left_to_a_person() {
        let d = seed();
        for message in [
            "我要投诉公积金中心态度差",
            "社保卡补办了一个月还没拿到",
            "交通违法罚款不合理，我要举报",
            "为什么公积金提取这么慢",
            "没用，转人工",
            "不是这个",
            "路灯坏了好几天了没人修",
            "小区门口垃圾没人清理",
            "我家楼下噪音太大",
            "公积金中心的电话是多少，打了好几次都没人接",
            "公积金",
            "",
            "？？？",
        ] {
            assert_eq!(answered(&d, message), None, "{message}");
        }
    }

    #[test]
    fn traditional_characters_are_read_as_simplified() {
        let d = seed();
        assert!(is_complaint("社保卡補辦一個月了，我要投訴"));
        assert!(is_rejection("沒用，轉人工"));
        assert_eq!(answered(&d, "社保卡補辦一個月了，我要投訴"), None);
        assert_eq!(
            answered(&d, "醫保怎麼報銷").as_deref(),
            Some("医保报销"),
            "{:?}",
            d.rank("醫保怎麼報銷").first()
        );
    }

    #[test]
    fn an_ambiguous_question_is_no_answer_even_when_every_candidate_is_close() {
        let d = seed();
        let ranked = d.rank("公积金");
        assert!(ranked.len() >= 3);
        assert!(ranked[0].score - ranked[1].score < MARGIN);
    }

    #[test]
    fn the_evidence_names_the_term_that_matched() {
        let d = seed();
        let m = d.answer("公积金怎么提取").unwrap();
        assert_eq!(m.matched, "公积金提取");
        assert!(m.score >= THRESHOLD);
    }

    #[test]
    fn a_category_lists_its_services_and_fits_wechats_limits() {
        let d = seed();
        let social = d.category("social_security");
        let names: Vec<&str> = social.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&"社保卡补办"));
        let ReplyContent::News(cards) = category_reply(&social) else {
            panic!("news cards")
        };
        assert_eq!(cards.len(), 3);
        assert!(cards.iter().all(|c| c.url.starts_with("https://")));
        // A mini-program-only service has no page for a card: the listing is text.
        let medical = d.category("medical_insurance");
        let ReplyContent::Text(text) = category_reply(&medical) else {
            panic!("a text listing")
        };
        assert!(text.contains("<a href=\"https://ybj.lincheng.example.gov.cn/bx\">医保报销</a>"));
        assert!(text.contains("医保异地就医备案"));
        assert!(d.category("nope").is_empty());
        assert_eq!(
            category_reply(&[]),
            ReplyContent::Text(NO_SERVICES.to_owned())
        );
        assert_eq!(
            category_key("category:social_security"),
            Some("social_security")
        );
        assert_eq!(category_key("category:"), None);
        assert_eq!(category_key("HOTLINE"), None);
    }

    #[test]
    fn a_long_category_is_cut_to_the_text_limit() {
        let services: Vec<DirectoryService> = (0..200)
            .map(|n| DirectoryService {
                id: uuid::Uuid::from_u128(n),
                category: "c".into(),
                name: format!("服务{n:03}"),
                description: String::new(),
                url: format!("https://example.gov.cn/s/{n}?a=1&b=2"),
                keywords: vec![],
                synonyms: vec![],
            })
            .collect();
        let d = Directory::new(services);
        let ReplyContent::Text(text) = category_reply(&d.category("c")) else {
            panic!("text")
        };
        assert!(text.len() <= MAX_REPLY_TEXT_BYTES);
        assert!(text.contains("&amp;b=2"));
        assert!(text.ends_with("办事大厅"));
    }

    #[test]
    fn a_service_without_a_page_answers_in_text() {
        let d = seed();
        let m = d.answer("异地就医怎么备案").unwrap();
        assert!(
            matches!(service_reply(m.service), ReplyContent::Text(t) if t.starts_with("医保异地就医备案"))
        );
        let m = d.answer("公积金怎么提取").unwrap();
        let ReplyContent::News(cards) = service_reply(m.service) else {
            panic!("a card")
        };
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "公积金提取");
        assert_eq!(cards[0].url, "https://gjj.lincheng.example.gov.cn/tq");
    }

    #[test]
    fn asking_again_means_within_the_window_after_the_answer() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let pending = PendingAnswer {
            event_id: "e".into(),
            service_id: uuid::Uuid::nil(),
            service_name: "公积金提取".into(),
            msg_type: "text".into(),
            body: "公积金怎么提取".into(),
            answered_at: at,
        };
        assert!(pending.is_followed_by(at + Duration::minutes(29)));
        assert!(pending.is_followed_by(at + FOLLOW_UP_WINDOW));
        assert!(!pending.is_followed_by(at + Duration::minutes(31)));
        assert!(!pending.is_followed_by(at - Duration::seconds(1)));
    }
}
