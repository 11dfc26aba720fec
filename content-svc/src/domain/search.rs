//! Chinese search, the pure part: segmentation (jieba, with the directory's own
//! words added), synonym expansion, the query's checks, the `tsquery` text and
//! highlighted snippets. The index lives in PostgreSQL (`store::search`), with a
//! copy in memory (`search_index`).

use std::sync::Arc;

use jieba_rs::Jieba;
use unicode_normalization::UnicodeNormalization;

use super::screening::simplified;
use super::search_index::DocKind;

/// Why a query cannot be run. The messages are what the citizen or editor sees.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("query is empty: type what you are looking for, e.g. 社保卡补办")]
    Empty,
    #[error("query has no words to search for (only punctuation or symbols)")]
    NoWords,
    #[error("query is {len} characters long; at most {max} are searched")]
    TooLong { len: usize, max: usize },
}

/// What a hit must hold: a word, all of some parts, or any of them. Built from a
/// [`SearchQuery`]; run as a `tsquery` by PostgreSQL or by the in-memory index
/// (`domain::search_index`), which must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Word(String),
    All(Vec<Match>),
    Any(Vec<Match>),
}

impl Match {
    /// The `to_tsquery('simple', …)` text. Words hold only letters and digits (see
    /// [`Segmenter::words`]), so quoting them is enough.
    pub fn tsquery(&self) -> String {
        match self {
            Match::Word(word) => format!("'{word}'"),
            Match::All(parts) => parts
                .iter()
                .map(|part| match part {
                    Match::Any(alternatives) if alternatives.len() > 1 => {
                        format!("({})", part.tsquery())
                    }
                    _ => part.tsquery(),
                })
                .collect::<Vec<_>>()
                .join(" & "),
            Match::Any(parts) => parts
                .iter()
                .map(Match::tsquery)
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }
}

/// A word, or any of a word and its synonyms.
fn one_of(group: &[String]) -> Match {
    match group {
        [word] => Match::Word(word.clone()),
        _ => Match::Any(group.iter().cloned().map(Match::Word).collect()),
    }
}

/// Filters of a search.
#[derive(Debug, Clone)]
pub struct SearchFilter<'a> {
    pub account: &'a str,
    pub kind: Option<&'a str>,
    pub category: Option<&'a str>,
    pub limit: i64,
}

impl SearchFilter<'_> {
    /// The kinds of document the filter lets through. Articles have no category, so
    /// a category means services only (and articles of a category, nothing).
    pub fn kinds(&self) -> &'static [DocKind] {
        match (self.kind, self.category) {
            (Some("service"), _) => &[DocKind::Service],
            (Some(_), Some(category)) if !category.is_empty() => &[],
            (Some(_), _) => &[DocKind::Article],
            (None, Some(category)) if !category.is_empty() => &[DocKind::Service],
            (None, _) => &[DocKind::Service, DocKind::Article],
        }
    }
}

/// The longest query searched, in characters (a question, not a document).
pub const QUERY_MAX: usize = 100;

/// Names that mean the same thing: a query or document holding one is found by all.
pub const SYNONYMS: &[&[&str]] = &[
    &["医保", "医疗保险", "基本医疗保险"],
    &["公积金", "住房公积金"],
    &["社保", "社会保险"],
    &["社保卡", "社会保障卡"],
    &["违章", "交通违法"],
    &["驾照", "驾驶证"],
    &["个税", "个人所得税"],
    &["户口", "户籍"],
];

/// Words jieba does not know as one word but citizens type as one.
const EXTRA_WORDS: &[&str] = &[
    "社保卡",
    "医保",
    "公积金",
    "补办",
    "挂失",
    "异地就医",
    "低保",
    "个税",
    "12345",
    "不动产",
    "港澳通行证",
    "水电气",
    "办事大厅",
];

/// `text` with each character that NFKC makes one other character replaced by it:
/// full-width letters, digits and punctuation (１２３４５, ＡＢＣ) become half-width and
/// the ideographic space a space, as a citizen's input method may type either; and
/// traditional characters by simplified ones (醫保報銷 is 医保报销, screening's
/// table), as a citizen from Hong Kong or Taiwan may type them. One character for
/// one, so positions in the text stay those of the original.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut nfkc = std::iter::once(c).nfkc();
            let one = match (nfkc.next(), nfkc.next()) {
                (Some(one), None) => one,
                _ => c,
            };
            simplified(one)
        })
        .collect()
}

/// Whether [`fold`] changes `text` (its index entry, if any, predates the fold).
pub fn folds(text: &str) -> bool {
    fold(text) != text
}

/// A jieba segmenter with the install's words. Cheap to clone.
#[derive(Clone)]
pub struct Segmenter(Arc<Jieba>);

impl Default for Segmenter {
    fn default() -> Self {
        Self::new(std::iter::empty::<&str>())
    }
}

impl Segmenter {
    /// jieba's dictionary plus the synonym names, the built-in service words and
    /// `words` (the install's service, department and place names).
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut jieba = Jieba::new();
        let builtin = SYNONYMS.iter().flat_map(|g| g.iter()).chain(EXTRA_WORDS);
        for word in builtin.copied().chain(words) {
            let word = fold(word.trim());
            if word.chars().count() >= 2 {
                jieba.add_word(&word, None, None);
            }
        }
        Self(Arc::new(jieba))
    }

    /// The searchable words of `text` (search mode: 社保卡 also gives 社保), folded
    /// to half-width and lower case, without punctuation, each once, in order. Both
    /// documents and queries go through here, so １２３４５ finds 12345 and back.
    pub fn words(&self, text: &str) -> Vec<String> {
        let text = fold(text);
        let mut out: Vec<String> = Vec::new();
        for token in self.0.cut_for_search(&text, true) {
            let word: String = token
                .word
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            if !word.is_empty() && !out.contains(&word) {
                out.push(word);
            }
        }
        out
    }

    /// `text` segmented and joined by spaces, for `to_tsvector('simple', …)`.
    pub fn indexable(&self, text: &str) -> String {
        self.words(text).join(" ")
    }
}

/// Words that make a citizen's question a question (社保卡丢了怎么补办) without
/// saying what it is about: a hit need not hold them.
const QUESTION_WORDS: &[&str] = &[
    "怎么",
    "怎样",
    "如何",
    "什么",
    "哪里",
    "哪儿",
    "哪些",
    "多少",
    "需要",
    "可以",
    "能否",
    "是否",
    "怎么办",
    "怎么样",
    "咋办",
    "咋样",
    "为什么",
    "为啥",
    "请问",
    "能不能",
    "可不可以",
    "是不是",
    "有没有",
    "在哪",
    "在哪里",
    "多久",
    "多长时间",
    "什么时候",
    "哪个",
    "谁",
];

/// A checked query: its words, each with the synonyms it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Every word to look for (the query's and their synonyms'; one-character and
    /// question words only when the query has nothing else): any of them makes a
    /// hit when too few documents hold them all, and each is marked in snippets.
    pub terms: Vec<String>,
    /// What a hit holding all the query's words must hold: one of each group (a
    /// word and its synonyms). Search-mode sub-words (社保 of 社保卡), one-character
    /// words and question words are left out.
    pub groups: Vec<Vec<String>>,
    /// For each group, the search-mode sub-words its word is made of end to end
    /// (停电通知: 停电, 通知), each with its synonyms as a group of its own (社保卡补办,
    /// a service name and so one word of the dictionary: 社保卡 | 社会保障卡, 补办), or
    /// nothing when they do not make it up (社保卡: 社保 is not all of it). jieba keeps
    /// a word of its dictionary whole, and no document may hold 停电通知 as one word
    /// while many hold 停电 and 通知, nor 社会保障卡补办 as the query's word at all.
    pub pieces: Vec<Vec<Vec<String>>>,
}

impl SearchQuery {
    /// Segments and expands `raw`, or says why it cannot be searched.
    pub fn parse(segmenter: &Segmenter, raw: &str) -> Result<Self, QueryError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(QueryError::Empty);
        }
        let len = raw.chars().count();
        if len > QUERY_MAX {
            return Err(QueryError::TooLong {
                len,
                max: QUERY_MAX,
            });
        }
        let words = segmenter.words(raw);
        if words.is_empty() {
            return Err(QueryError::NoWords);
        }
        // A document holding 社保卡 was indexed with 社保 too (search mode), so the
        // sub-word adds nothing to "all words"; in "any word" it still finds 社保缴费.
        let compounds: Vec<&String> = words
            .iter()
            .filter(|w| {
                !words
                    .iter()
                    .any(|v| v.len() > w.len() && v.contains(w.as_str()))
            })
            .collect();
        let telling: Vec<&String> = compounds
            .iter()
            .copied()
            .filter(|w| w.chars().count() > 1 && !QUESTION_WORDS.contains(&w.as_str()))
            .collect();
        let required = if telling.is_empty() {
            compounds
        } else {
            telling
        };
        let pieces: Vec<Vec<Vec<String>>> = required
            .iter()
            .map(|w| {
                pieces(w, &words)
                    .iter()
                    .map(|piece| with_synonyms(piece))
                    .collect()
            })
            .collect();
        let groups: Vec<Vec<String>> = required
            .into_iter()
            .map(|word| with_synonyms(word))
            .collect();
        // Synonyms are added whole: the names are in the segmenter's dictionary, so a
        // document holding 社会保障卡 has it as one word. Their own sub-words (社会,
        // 保障, 保险) would make "any word" match most of an archive.
        // One-character words (丢, 了, 的) match most of an archive in "any word",
        // and question words (怎么办, with its own sub-word 怎么; 没有 of 有没有) say
        // nothing of what is asked: 护照丢了怎么办 is no hit for 社保卡丢了怎么办. A
        // query made only of them (税, 怎么办) keeps them, else it would search nothing.
        let asks = |w: &str| {
            words
                .iter()
                .any(|q| QUESTION_WORDS.contains(&q.as_str()) && q.contains(w))
        };
        let telling: Vec<String> = words
            .iter()
            .filter(|w| w.chars().count() > 1 && !asks(w))
            .cloned()
            .collect();
        let mut terms: Vec<String> = if !telling.is_empty() {
            telling
        } else if words.iter().any(|w| w.chars().count() > 1) {
            words
                .into_iter()
                .filter(|w| w.chars().count() > 1)
                .collect()
        } else {
            words
        };
        for group in SYNONYMS {
            if group.iter().any(|name| raw.contains(name)) {
                for name in *group {
                    if !terms.iter().any(|t| t == name) {
                        terms.push((*name).to_owned());
                    }
                }
            }
        }
        for word in groups.iter().chain(pieces.iter().flatten()).flatten() {
            if !terms.contains(word) {
                terms.push(word.clone());
            }
        }
        Ok(Self {
            terms,
            groups,
            pieces,
        })
    }

    /// The query's one character, when that is all it is (税, 车): no index word
    /// holds it inside a longer word (车辆), so the stages alone would miss titles.
    pub fn single_character(&self) -> Option<&str> {
        match self.terms.as_slice() {
            [one] if one.chars().count() == 1 => Some(one),
            _ => None,
        }
    }

    /// A document holding all the query's words: an AND of the groups, each an OR
    /// of a word and its synonyms.
    pub fn match_all(&self) -> Match {
        Match::All(self.groups.iter().map(|group| one_of(group)).collect())
    }

    /// A document holding all the query's words, each word that jieba kept whole
    /// (停电通知) also found by its sub-words together (`停电通知 | 停电 & 通知`);
    /// `None` when no word splits, so this is [`match_all`](Self::match_all).
    pub fn match_split(&self) -> Option<Match> {
        if self.pieces.iter().all(Vec::is_empty) {
            return None;
        }
        let groups = self.groups.iter().zip(&self.pieces).map(|(group, pieces)| {
            let mut alternatives: Vec<Match> = group.iter().cloned().map(Match::Word).collect();
            if !pieces.is_empty() {
                alternatives.push(Match::All(pieces.iter().map(|p| one_of(p)).collect()));
            }
            match alternatives.len() {
                1 => alternatives.remove(0),
                _ => Match::Any(alternatives),
            }
        });
        Some(Match::All(groups.collect()))
    }

    /// A document holding any term.
    pub fn match_any(&self) -> Match {
        Match::Any(self.terms.iter().cloned().map(Match::Word).collect())
    }

    /// [`match_all`](Self::match_all) as `to_tsquery('simple', …)` text.
    pub fn tsquery_all(&self) -> String {
        self.match_all().tsquery()
    }

    /// [`match_split`](Self::match_split) as `to_tsquery('simple', …)` text.
    pub fn tsquery_split(&self) -> Option<String> {
        self.match_split().map(|m| m.tsquery())
    }

    /// [`match_any`](Self::match_any) as `to_tsquery('simple', …)` text.
    pub fn tsquery_any(&self) -> String {
        self.match_any().tsquery()
    }

    /// Up to `width` characters of `text` around the first term found, with every
    /// term found marked `<em>…</em>`; the rest is escaped for HTML.
    pub fn snippet(&self, text: &str, width: usize) -> String {
        let lower = fold(text).to_lowercase();
        let chars: Vec<char> = text.chars().collect();
        let lower_chars: Vec<char> = lower.chars().collect();
        // Lowercasing may change the length of non-CJK text; fall back to the start.
        let first = if lower_chars.len() == chars.len() {
            self.terms
                .iter()
                .filter_map(|t| find_chars(&lower_chars, t))
                .min()
                .unwrap_or(0)
        } else {
            0
        };
        let start = first.saturating_sub(width / 4);
        let end = (start + width).min(chars.len());
        let piece: String = chars[start..end].iter().collect();
        let mut terms: Vec<&String> = self.terms.iter().collect();
        // Longer terms first, so 社保卡 is marked whole rather than 社保 inside it.
        terms.sort_by_key(|t| std::cmp::Reverse(t.chars().count()));
        // Terms are matched in the folded text (１２３４５ is 12345) and marked
        // around the characters as written; folding keeps one character for one.
        let folded: Vec<char> = fold(&piece).chars().collect();
        let terms: Vec<Vec<char>> = terms.iter().map(|t| t.chars().collect()).collect();
        let mut marked = String::with_capacity(piece.len() + 32);
        let mut i = 0;
        'outer: while i < folded.len() {
            for term in &terms {
                let end = i + term.len();
                let found = !term.is_empty()
                    && end <= folded.len()
                    && folded[i..end]
                        .iter()
                        .zip(term)
                        .all(|(c, t)| c.to_lowercase().eq(std::iter::once(*t)));
                if found {
                    let written: String = chars[start + i..start + end].iter().collect();
                    marked.push_str("<em>");
                    marked.push_str(&escape(&written));
                    marked.push_str("</em>");
                    i = end;
                    continue 'outer;
                }
            }
            marked.push_str(&escape(chars[start + i].encode_utf8(&mut [0; 4])));
            i += 1;
        }
        let prefix = if start > 0 { "…" } else { "" };
        let suffix = if end < chars.len() { "…" } else { "" };
        format!("{prefix}{marked}{suffix}")
    }
}

/// `word` and the names [`SYNONYMS`] gives it, `word` first.
fn with_synonyms(word: &str) -> Vec<String> {
    let mut group = vec![word.to_owned()];
    for names in SYNONYMS.iter().filter(|g| g.contains(&word)) {
        for name in *names {
            if !group.iter().any(|g| g == name) {
                group.push((*name).to_owned());
            }
        }
    }
    group
}

/// The fewest of `words` (two characters or more, other than `word`) that spell
/// `word` end to end, or none: 停电通知 is 停电 + 通知, not 停电 + 电通 + 通知.
fn pieces(word: &str, words: &[String]) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let candidates: Vec<Vec<char>> = words
        .iter()
        .filter(|w| w.as_str() != word && w.chars().count() >= 2 && word.contains(w.as_str()))
        .map(|w| w.chars().collect())
        .collect();
    // best[i]: the fewest pieces spelling chars[..i], and the piece ending there.
    let mut best: Vec<Option<(usize, usize)>> = vec![None; chars.len() + 1];
    best[0] = Some((0, 0));
    for start in 0..chars.len() {
        let Some((count, _)) = best[start] else {
            continue;
        };
        for (i, piece) in candidates.iter().enumerate() {
            let end = start + piece.len();
            if chars[start..].starts_with(piece)
                && best[end].is_none_or(|(fewest, _)| count + 1 < fewest)
            {
                best[end] = Some((count + 1, i));
            }
        }
    }
    let mut out = Vec::new();
    let mut end = chars.len();
    while end > 0 {
        let Some((_, i)) = best[end] else {
            return Vec::new();
        };
        out.push(candidates[i].iter().collect::<String>());
        end -= candidates[i].len();
    }
    out.reverse();
    out
}

fn find_chars(haystack: &[char], needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len()).find(|&i| haystack[i..i + needle.len()] == needle[..])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_queries_are_named() {
        let s = Segmenter::default();
        assert_eq!(SearchQuery::parse(&s, "  "), Err(QueryError::Empty));
        assert_eq!(
            SearchQuery::parse(&s, "？！。，…"),
            Err(QueryError::NoWords)
        );
        let long = "社".repeat(1_000);
        assert_eq!(
            SearchQuery::parse(&s, &long),
            Err(QueryError::TooLong {
                len: 1_000,
                max: QUERY_MAX
            })
        );
    }

    #[test]
    fn synonyms_expand_the_query() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "医疗保险报销").unwrap();
        assert!(q.terms.contains(&"医保".to_owned()), "{:?}", q.terms);
        assert!(q.terms.contains(&"报销".to_owned()), "{:?}", q.terms);
        let q = SearchQuery::parse(&s, "公积金怎么提取").unwrap();
        assert!(q.terms.contains(&"住房公积金".to_owned()), "{:?}", q.terms);
    }

    #[test]
    fn terms_are_safe_in_a_tsquery() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "社保卡' | !补办 & (x)").unwrap();
        for term in &q.terms {
            assert!(term.chars().all(char::is_alphanumeric), "{term:?}");
        }
        assert!(q.tsquery_any().contains("'社保卡'"), "{}", q.tsquery_any());
        assert!(q.tsquery_all().contains("'社保卡'"), "{}", q.tsquery_all());
    }

    #[test]
    fn all_words_is_an_and_of_each_word_or_its_synonyms() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "社保卡补办").unwrap();
        // 社保 (a search-mode sub-word of 社保卡) is left out of the AND, and the
        // synonym is added whole, not as 社会 | 保障 | 保障卡.
        assert_eq!(q.tsquery_all(), "('社保卡' | '社会保障卡') & '补办'");
        for word in ["社会", "保险", "保障"] {
            assert!(!q.terms.contains(&word.to_owned()), "{:?}", q.terms);
        }
        assert!(q.terms.contains(&"社保".to_owned()), "{:?}", q.terms);
        let q = SearchQuery::parse(&s, "公积金怎么提取").unwrap();
        assert_eq!(q.tsquery_all(), "('公积金' | '住房公积金') & '提取'");
        // A question word is not what a document is about: no hit by it alone.
        assert!(!q.tsquery_any().contains("'怎么'"), "{}", q.tsquery_any());
    }

    #[test]
    fn a_query_of_only_short_or_question_words_still_requires_them() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "怎么").unwrap();
        assert_eq!(q.tsquery_all(), "'怎么'");
    }

    #[test]
    fn a_word_jieba_keeps_whole_is_also_searched_by_its_sub_words() {
        let s = Segmenter::default();
        // 停电通知 is one word of jieba's dictionary; 电通 is one too, but 停电 and 通知
        // spell it end to end.
        let q = SearchQuery::parse(&s, "停电通知").unwrap();
        assert_eq!(q.tsquery_all(), "'停电通知'");
        assert_eq!(
            q.tsquery_split().as_deref(),
            Some("('停电通知' | '停电' & '通知')")
        );
        // Synonyms stay, and a word that does not split stays as it is.
        let q = SearchQuery::parse(&s, "医疗保险报销").unwrap();
        assert_eq!(
            q.tsquery_split().as_deref(),
            Some("('医疗保险' | '医保' | '基本医疗保险' | '医疗' & '保险') & '报销'")
        );
        // 社保 is not all of 社保卡: nothing to split.
        let q = SearchQuery::parse(&s, "社保卡补办").unwrap();
        assert_eq!(q.tsquery_split(), None);
    }

    #[test]
    fn a_service_name_kept_whole_is_split_into_its_words_and_their_synonyms() {
        // A service name is a word of the install's dictionary: jieba keeps it whole.
        let s = Segmenter::new(["社保卡补办"]);
        let q = SearchQuery::parse(&s, "社保卡补办").unwrap();
        assert_eq!(q.tsquery_all(), "'社保卡补办'");
        assert_eq!(
            q.tsquery_split().as_deref(),
            Some("('社保卡补办' | ('社保卡' | '社会保障卡') & '补办')")
        );
        assert!(q.terms.contains(&"社会保障卡".to_owned()), "{:?}", q.terms);
    }

    #[test]
    fn question_words_and_single_characters_are_not_what_a_hit_must_hold() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "社保卡丢了怎么办").unwrap();
        assert!(
            q.groups.iter().flatten().all(|w| w != "怎么办"),
            "{:?}",
            q.groups
        );
        assert!(
            q.terms.iter().all(|t| t.chars().count() > 1),
            "{:?}",
            q.terms
        );
        // Nor what any-word hits may hold alone (护照丢了怎么办 is no hit).
        for word in ["怎么", "怎么办"] {
            assert!(!q.terms.iter().any(|t| t == word), "{:?}", q.terms);
        }
        // The sub-words of a question word go with it (没有 of 有没有).
        let q = SearchQuery::parse(&s, "补办社保卡有没有费用").unwrap();
        assert!(
            q.terms.iter().all(|t| !"有没有".contains(t.as_str())),
            "{:?}",
            q.terms
        );
        // A query of question words only still searches for them.
        let q = SearchQuery::parse(&s, "怎么办").unwrap();
        assert!(q.terms.iter().any(|t| t == "怎么办"), "{:?}", q.terms);
        // A query of one character still searches for it.
        let q = SearchQuery::parse(&s, "税").unwrap();
        assert_eq!(q.terms, ["税"]);
    }

    #[test]
    fn traditional_text_is_searched_as_simplified() {
        let s = Segmenter::default();
        assert_eq!(s.words("醫保報銷"), s.words("医保报销"));
        let q = SearchQuery::parse(&s, "醫保報銷").unwrap();
        assert_eq!(
            q.tsquery_all(),
            SearchQuery::parse(&s, "医保报销").unwrap().tsquery_all()
        );
        assert_eq!(
            q.snippet("医保報銷须知", 80),
            "<em>医保</em><em>報銷</em>须知"
        );
    }

    #[test]
    fn full_width_text_is_searched_as_half_width() {
        let s = Segmenter::default();
        assert_eq!(s.words("拨打１２３４５热线"), s.words("拨打12345热线"));
        assert_eq!(s.words("ＡＢＣ"), ["abc"]);
        let q = SearchQuery::parse(&s, "１２３４５").unwrap();
        assert_eq!(q.tsquery_all(), "'12345'");
        assert_eq!(
            q.snippet("请拨打１２３４５", 80),
            "请拨打<em>１２３４５</em>"
        );
    }

    #[test]
    fn snippets_mark_the_terms_and_escape_html() {
        let s = Segmenter::default();
        let q = SearchQuery::parse(&s, "社保卡补办").unwrap();
        let snippet = q.snippet("<b>旧卡</b>遗失后补办新卡", 80);
        assert_eq!(snippet, "&lt;b&gt;旧卡&lt;/b&gt;遗失后<em>补办</em>新卡");
    }
}
