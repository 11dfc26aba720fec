//! The sensitive-word gate: a lexicon of words by category and an allowlist,
//! matched in one Aho-Corasick pass over normalised text, every hit reported with
//! its position in the original text.
//!
//! The pass reports overlapping matches: a non-overlapping one (leftmost-longest)
//! let an allowed phrase or a flagged word swallow a flagged word that merely
//! overlapped it (allowed 中国共产党 hid 党内派系 in 中国共产党内派系). A flagged
//! word is let through only where an allowed phrase covers it whole, and one lying
//! within a longer flagged word's hit is not reported again (that hit marks the text).
//!
//! Normalisation maps each original character to at most one character, so a hit
//! maps back exactly: NFKC (full-width → half-width), lower case, traditional →
//! simplified (OpenCC's character table), and characters that are neither letters
//! nor digits (spaces, symbols, punctuation inserted between characters) dropped.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use unicode_normalization::UnicodeNormalization;

/// A category of the lexicon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Political,
    Violence,
    Vulgar,
    Advertising,
    Fraud,
    /// Typos and wrong official names (错别字, 错误提法).
    Wrong,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 6] = [
        Self::Political,
        Self::Violence,
        Self::Vulgar,
        Self::Advertising,
        Self::Fraud,
        Self::Wrong,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Political => "political",
            Self::Violence => "violence",
            Self::Vulgar => "vulgar",
            Self::Advertising => "advertising",
            Self::Fraud => "fraud",
            Self::Wrong => "wrong",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What a lexicon entry is: a word to flag, or one a government account uses routinely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Flag(Category),
    Allow,
}

/// A lexicon entry as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub word: String,
    pub kind: EntryKind,
}

/// A lexicon line or entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexiconError {
    /// A lexicon file's line that cannot be used: every error of a file names its
    /// line and word (an operator fixing a file of thousands must find it).
    #[error("line {line}: 「{word}」: {error}")]
    AtLine {
        line: usize,
        /// The word, or the whole line when it has no tab.
        word: String,
        error: Box<LexiconError>,
    },
    #[error("expected `category<TAB>word`")]
    NoTab,
    #[error(
        "category {0:?} is not one of political, violence, vulgar, advertising, fraud, wrong, allow"
    )]
    Category(String),
    #[error("word has no letters or digits once normalised")]
    EmptyWord,
    #[error("word is longer than 64 characters")]
    LongWord,
}

/// A lexicon file's line naming a word an earlier line named (the same word once
/// normalised: case, width, traditional → simplified). Not an error: earlier
/// releases loaded each line as an upsert, so an installed file with a repeated
/// line must still load; the later line wins, as it did then — except that an
/// `allow` never replaces a flag: 翻牆 allowed after 翻墙 flagged would otherwise
/// quietly unflag the word (before, the two spellings were two rows, both screened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    pub line: usize,
    pub word: String,
    /// The earlier line the later one repeats, and its word.
    pub first_line: usize,
    pub first: String,
    /// The line whose entry is kept.
    pub kept_line: usize,
}

impl std::fmt::Display for Repeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: 「{}」 is 「{}」 of line {} once normalised (case, width, traditional → \
             simplified): one entry, line {} is kept{}; keep one line",
            self.line,
            self.word,
            self.first,
            self.first_line,
            self.kept_line,
            if self.kept_line == self.first_line {
                " (an allow never unflags a word)"
            } else {
                ""
            }
        )
    }
}

/// A parsed lexicon file: one entry per word, and the lines that repeated a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexiconFile {
    pub entries: Vec<Entry>,
    pub repeats: Vec<Repeat>,
}

impl Entry {
    /// An entry from its category name (`allow` for the allowlist) and word.
    pub fn parse(category: &str, word: &str) -> Result<Self, LexiconError> {
        let kind = match category {
            "allow" => EntryKind::Allow,
            other => EntryKind::Flag(
                Category::parse(other).ok_or_else(|| LexiconError::Category(other.to_owned()))?,
            ),
        };
        let word = word.trim();
        if word.chars().count() > 64 {
            return Err(LexiconError::LongWord);
        }
        if normalize(word).0.is_empty() {
            return Err(LexiconError::EmptyWord);
        }
        Ok(Self {
            word: word.to_owned(),
            kind,
        })
    }

    /// The category name as stored (`allow` for the allowlist).
    pub fn category_name(&self) -> &'static str {
        match self.kind {
            EntryKind::Flag(c) => c.as_str(),
            EntryKind::Allow => "allow",
        }
    }
}

/// Parses a lexicon file: one `category<TAB>word` per line; `#` starts a comment.
/// A word is one entry however it is spelt (screening reads it normalised), so a
/// line naming a word an earlier line named replaces it (a [`Repeat`]); a line
/// that cannot be used is an error.
pub fn parse_lexicon(text: &str) -> Result<LexiconFile, LexiconError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut repeats = Vec::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |word: &str, error| LexiconError::AtLine {
            line: n + 1,
            word: word.trim().to_owned(),
            error: Box::new(error),
        };
        let (category, word) = line
            .split_once('\t')
            .ok_or_else(|| at(line, LexiconError::NoTab))?;
        let entry = Entry::parse(category.trim(), word).map_err(|error| at(word, error))?;
        match seen.entry(normalize(&entry.word).0) {
            std::collections::hash_map::Entry::Occupied(mut first) => {
                let (first_line, index) = *first.get();
                let unflags = entry.kind == EntryKind::Allow
                    && matches!(entries[index].kind, EntryKind::Flag(_));
                let word = entry.word.clone();
                let (first_word, kept_line) = if unflags {
                    (entries[index].word.clone(), first_line)
                } else {
                    first.insert((n + 1, index));
                    (std::mem::replace(&mut entries[index], entry).word, n + 1)
                };
                repeats.push(Repeat {
                    line: n + 1,
                    word,
                    first_line,
                    first: first_word,
                    kept_line,
                });
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((n + 1, entries.len()));
                entries.push(entry);
            }
        }
    }
    Ok(LexiconFile { entries, repeats })
}

/// One hit: where (field and character offsets in the original text), what was
/// written there, the lexicon word it matched and its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub field: &'static str,
    /// Offset of the first character, in characters of the original field.
    pub start: usize,
    /// Offset just past the last character.
    pub end: usize,
    /// The original text of the hit (with whatever was inserted in it).
    pub text: String,
    pub word: String,
    pub category: Category,
}

impl Hit {
    /// A stable key of the hit for overrides: the same word at the same place.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.field, self.start, self.word)
    }

    /// The field and word of a [`key`](Self::key), without the place: the same hit
    /// once an edit has moved it.
    pub fn field_and_word(key: &str) -> Option<(&str, &str)> {
        let mut parts = key.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(field), Some(_), Some(word)) => Some((field, word)),
            _ => None,
        }
    }
}

/// A compiled lexicon; cheap to share, rebuilt as a whole when the lexicon changes.
pub struct Screener {
    automaton: Option<AhoCorasick>,
    /// Per pattern: the word and its kind.
    patterns: Vec<Entry>,
}

impl std::fmt::Debug for Screener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screener")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Screener {
    /// Compiles `entries`. Allowlisted words join the same automaton; see
    /// [`screen`](Self::screen) for what they let through.
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut patterns: Vec<Entry> = Vec::with_capacity(entries.len());
        let mut normalized: Vec<String> = Vec::with_capacity(entries.len());
        let mut seen = HashMap::new();
        for entry in entries {
            let key = normalize(&entry.word).0;
            // The allowlist wins over a flag for the very same normalised word.
            if let Some(&i) = seen.get(&key) {
                if entry.kind == EntryKind::Allow {
                    patterns[i] = entry;
                }
                continue;
            }
            seen.insert(key.clone(), patterns.len());
            normalized.push(key);
            patterns.push(entry);
        }
        let automaton = (!normalized.is_empty()).then(|| {
            AhoCorasick::builder()
                // Standard: the only kind that reports overlapping matches.
                .match_kind(MatchKind::Standard)
                .build(&normalized)
                .expect("normalised lexicon words are non-empty literals")
        });
        Self {
            automaton,
            patterns,
        }
    }

    /// How many distinct words the screener holds (allowlist included).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the screener holds no word.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Screens one field's text: every flagged word found, overlapping ones
    /// included, except where an allowed phrase covers it whole or a longer flagged
    /// word's hit contains it; in order of position.
    pub fn screen(&self, field: &'static str, text: &str) -> Vec<Hit> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let (normalized, origin) = normalize(text);
        let originals: Vec<char> = text.chars().collect();
        // Byte offset in `normalized` → index in `origin`.
        let mut char_at = vec![0usize; normalized.len() + 1];
        for (i, (byte, _)) in normalized.char_indices().enumerate() {
            char_at[byte] = i;
        }
        char_at[normalized.len()] = origin.len();
        // Spans in bytes of `normalized`; a flagged one with its word and category.
        let mut allowed: Vec<(usize, usize)> = Vec::new();
        let mut flagged: Vec<(usize, usize, &Entry, Category)> = Vec::new();
        for m in automaton.find_overlapping_iter(&normalized) {
            let entry = &self.patterns[m.pattern().as_usize()];
            match entry.kind {
                EntryKind::Allow => allowed.push((m.start(), m.end())),
                EntryKind::Flag(category) => flagged.push((m.start(), m.end(), entry, category)),
            }
        }
        // By start, the longer first: whatever contains a span comes before it, so
        // one sweep keeping the furthest end seen tells whether it is contained.
        allowed.sort_unstable_by_key(|&(start, end)| (start, std::cmp::Reverse(end)));
        flagged.sort_unstable_by_key(|&(start, end, ..)| (start, std::cmp::Reverse(end)));
        let mut allowed = allowed.into_iter().peekable();
        let mut allowed_end = 0;
        let mut flagged_end = 0;
        let mut hits = Vec::new();
        for (start, end, entry, category) in flagged {
            while let Some(&(a_start, a_end)) = allowed.peek() {
                if a_start > start {
                    break;
                }
                allowed_end = allowed_end.max(a_end);
                allowed.next();
            }
            let covered = allowed_end >= end || flagged_end >= end;
            flagged_end = flagged_end.max(end);
            if covered {
                continue;
            }
            let first = char_at[start];
            let last = char_at[end] - 1;
            let (start, end) = (origin[first], origin[last] + 1);
            hits.push(Hit {
                field,
                start,
                end,
                text: originals[start..end].iter().collect(),
                word: entry.word.clone(),
                category,
            });
        }
        hits
    }

    /// Screens several fields.
    pub fn screen_all<'a>(
        &self,
        fields: impl IntoIterator<Item = (&'static str, &'a str)>,
    ) -> Vec<Hit> {
        fields
            .into_iter()
            .flat_map(|(field, text)| self.screen(field, text))
            .collect()
    }
}

/// `c` in simplified characters (OpenCC's one-to-one table): 醫 is 医. Search
/// (`domain::search::fold`) folds with the same table as screening.
pub fn simplified(c: char) -> char {
    platform::text::simplified(c)
}

/// Normalises `text` for matching; returns it with, per normalised character, the
/// index of the original character it came from.
pub fn normalize(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        let mut push = |c: char| {
            for c in c.to_lowercase() {
                let c = simplified(c);
                if c.is_alphanumeric() {
                    out.push(c);
                    origin.push(i);
                }
            }
        };
        // Unified ideographs are their own NFKC form and have no case: only the
        // traditional → simplified step applies (the common case, kept cheap).
        if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
            out.push(simplified(c));
            origin.push(i);
        } else if c.is_ascii() {
            push(c);
        } else {
            for n in std::iter::once(c).nfkc() {
                push(n);
            }
        }
    }
    (out, origin)
}

/// The starter lexicon shipped with content-svc (`lexicon/starter.tsv`).
pub const STARTER_LEXICON: &str = include_str!("../../lexicon/starter.tsv");

#[cfg(test)]
mod tests {
    use super::*;

    fn screener() -> Screener {
        Screener::new(parse_lexicon(STARTER_LEXICON).unwrap().entries)
    }

    #[test]
    fn a_word_hidden_with_full_width_letters_spaces_and_traditional_characters_is_found() {
        let text = "欢迎使用 ＶＰＮ 翻-牆 工具";
        let hits = screener().screen("body", text);
        assert_eq!(hits.len(), 1, "{hits:?}");
        let hit = &hits[0];
        assert_eq!(hit.word, "vpn翻墙");
        assert_eq!(hit.category, Category::Political);
        assert_eq!((hit.start, hit.end), (5, 12));
        assert_eq!(hit.text, "ＶＰＮ 翻-牆");
    }

    #[test]
    fn an_allowlisted_phrase_is_not_flagged() {
        let screener = Screener::new(vec![
            Entry::parse("political", "红旗").unwrap(),
            Entry::parse("allow", "五星红旗").unwrap(),
        ]);
        assert!(screener.screen("title", "五星红旗迎风飘扬").is_empty());
        assert_eq!(screener.screen("title", "一面红旗").len(), 1);
    }

    #[test]
    fn an_allowed_phrase_hides_only_the_flagged_words_it_covers_whole() {
        let screener = Screener::new(vec![
            Entry::parse("allow", "中国共产党").unwrap(),
            Entry::parse("political", "党内派系").unwrap(),
            Entry::parse("political", "共产").unwrap(),
        ]);
        // 党内派系 starts inside the allowed phrase and runs past it: reported.
        let hits = screener.screen("body", "中国共产党内派系");
        let found: Vec<_> = hits
            .iter()
            .map(|h| (h.word.as_str(), h.start, h.end))
            .collect();
        assert_eq!(found, vec![("党内派系", 4, 8)]);
        assert_eq!(hits[0].text, "党内派系");
        // 共产 lies within it: let through.
        assert!(screener.screen("body", "中国共产党领导").is_empty());
    }

    #[test]
    fn a_flagged_word_overlapping_another_is_reported_too() {
        let screener = Screener::new(vec![
            Entry::parse("fraud", "代开发票").unwrap(),
            Entry::parse("advertising", "发票优惠").unwrap(),
            Entry::parse("fraud", "开发").unwrap(),
        ]);
        let found: Vec<_> = screener
            .screen("body", "代开发票优惠")
            .into_iter()
            .map(|h| (h.word, h.category, h.start))
            .collect();
        // 开发 lies within 代开发票, whose hit already marks that text.
        assert_eq!(
            found,
            vec![
                ("代开发票".to_owned(), Category::Fraud, 0),
                ("发票优惠".to_owned(), Category::Advertising, 2)
            ]
        );
    }

    #[test]
    fn the_starter_lexicon_leaves_routine_government_words_alone() {
        let hits = screener().screen("body", "天安门广场升起五星红旗，中国共产党领导人民代表大会");
        assert!(hits.is_empty(), "{hits:?}");
    }

    #[test]
    fn typos_and_advertising_are_reported_with_category_and_position() {
        let hits = screener().screen("body", "全市上下再接再励，本产品是最佳选择");
        let found: Vec<_> = hits
            .iter()
            .map(|h| (h.word.as_str(), h.category, h.start))
            .collect();
        assert_eq!(
            found,
            vec![
                ("再接再励", Category::Wrong, 4),
                ("最佳选择", Category::Advertising, 13)
            ]
        );
    }

    #[test]
    fn bad_lexicon_lines_name_the_line_or_the_category() {
        assert_eq!(
            parse_lexicon("# c\nfoo").unwrap_err(),
            LexiconError::AtLine {
                line: 2,
                word: "foo".into(),
                error: Box::new(LexiconError::NoTab)
            }
        );
        assert!(matches!(
            parse_lexicon("gossip\tx"),
            Err(LexiconError::AtLine { line: 1, error, .. }) if matches!(*error, LexiconError::Category(_))
        ));
        assert_eq!(
            Entry::parse("vulgar", " ！ ").unwrap_err(),
            LexiconError::EmptyWord
        );
    }

    #[test]
    fn a_second_spelling_of_a_word_in_a_lexicon_file_replaces_the_first_naming_both_lines() {
        let file = parse_lexicon("political\t翻墙\n# c\nallow\t翻牆\nfraud\t翻墙").unwrap();
        assert_eq!(file.entries, [Entry::parse("fraud", "翻墙").unwrap()]);
        assert_eq!(
            file.repeats,
            [
                Repeat {
                    line: 3,
                    word: "翻牆".into(),
                    first_line: 1,
                    first: "翻墙".into(),
                    kept_line: 1,
                },
                Repeat {
                    line: 4,
                    word: "翻墙".into(),
                    first_line: 1,
                    first: "翻墙".into(),
                    kept_line: 4,
                }
            ]
        );
        assert!(
            file.repeats[0]
                .to_string()
                .contains("an allow never unflags")
        );
        let file = parse_lexicon("political\t翻墙\nallow\t翻牆").unwrap();
        assert_eq!(
            file.entries,
            [Entry::parse("political", "翻墙").unwrap()],
            "an allow after a flag of the same word keeps the flag"
        );
        let file = parse_lexicon("allow\t翻墙\npolitical\t翻牆").unwrap();
        assert_eq!(
            file.entries,
            [Entry::parse("political", "翻牆").unwrap()],
            "a flag after an allow wins, as a later line does"
        );
        let file = parse_lexicon("political\tVPN\nvulgar\tx\npolitical\tｖｐｎ").unwrap();
        assert_eq!(file.entries.len(), 2);
        assert_eq!(file.entries[0].word, "ｖｐｎ");
        assert!(
            file.repeats[0]
                .to_string()
                .starts_with("line 3: 「ｖｐｎ」")
        );
    }
    #[test]
    fn every_error_of_a_lexicon_file_names_its_line_and_word() {
        let error = parse_lexicon("#x\npolitcal\t词").unwrap_err().to_string();
        assert!(
            error.starts_with("line 2: ") && error.contains("「词」"),
            "{error}"
        );
        let error = parse_lexicon("political\t翻墙\n\nvulgar\t ！ ")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("line 3: ") && error.contains("「！」"),
            "{error}"
        );
    }
}
